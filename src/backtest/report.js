(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 900, H = 260, L = 60, R = 15, T = 10, B = 30;
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728"];
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var root = document.getElementById("charts");

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function iso(t) { return new Date(t).toISOString().replace(".000Z", "Z"); }
  function tick(t) { return new Date(t).toISOString().slice(0, 19).replace("T", " "); }
  function frame(kind, id, title, points) {
    var sec = document.createElement("section");
    sec.className = "chart";
    var h = document.createElement("h3");
    h.textContent = title;
    sec.appendChild(h);
    var svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "chart", "data-kind": kind, "data-rule": id, "data-points": points });
    sec.appendChild(svg);
    root.appendChild(sec);
    return { sec: sec, svg: svg };
  }
  function scales(t0, t1, ymax) {
    if (t1 <= t0) { t1 = t0 + 1; }
    if (!(ymax > 0)) { ymax = 1; }
    return {
      x: function (t) { return L + (t - t0) / (t1 - t0) * (W - L - R); },
      y: function (v) { return H - B - v / ymax * (H - T - B); },
      t0: t0, t1: t1, ymax: ymax
    };
  }
  function axes(svg, s) {
    el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, "class": "axis" }, svg);
    el("line", { x1: L, y1: T, x2: L, y2: H - B, "class": "axis" }, svg);
    for (var i = 0; i <= 3; i++) {
      var v = s.ymax * i / 3;
      var y = s.y(v);
      var ty = el("text", { x: L - 5, y: y + 3, "text-anchor": "end", "class": "tick" }, svg);
      ty.textContent = v >= 100 ? Math.round(v) : Math.round(v * 10) / 10;
      var t = s.t0 + (s.t1 - s.t0) * i / 3;
      var tx = el("text", { x: s.x(t), y: H - B + 15, "text-anchor": i === 0 ? "start" : (i === 3 ? "end" : "middle"), "class": "tick" }, svg);
      tx.textContent = tick(Math.round(t)) + (i === 0 ? " UTC" : "");
    }
  }
  function legend(sec, items) {
    var d = document.createElement("div");
    d.className = "legend";
    items.forEach(function (it) {
      var s = document.createElement("span");
      s.textContent = it[0];
      if (it[1]) { s.style.color = it[1]; }
      d.appendChild(s);
    });
    sec.appendChild(d);
  }

  var t0 = data.span[0], t1 = data.span[1];
  var drawn = 0;
  data.charts.forEach(function (c) {
    var pts = c.points;
    var f = frame(c.metric, c.rule, c.title, pts.length);
    var ymax = 0;
    pts.forEach(function (p) { ymax = Math.max(ymax, p.v, p.hi || 0, p.threshold || 0); });
    var s = scales(t0, t1, ymax * 1.1);
    axes(f.svg, s);
    // The band: one closed shape per stretch of points after warm-up.
    var d = "", mean = "", thr = "", run = [];
    function flush() {
      if (run.length) {
        d += "M" + run.map(function (p) { return s.x(p.t).toFixed(1) + "," + s.y(p.hi).toFixed(1); }).join("L");
        d += "L" + run.slice().reverse().map(function (p) { return s.x(p.t).toFixed(1) + "," + s.y(p.lo).toFixed(1); }).join("L") + "Z";
        mean += "M" + run.map(function (p) { return s.x(p.t).toFixed(1) + "," + s.y(p.mean).toFixed(1); }).join("L");
        thr += "M" + run.map(function (p) { return s.x(p.t).toFixed(1) + "," + s.y(p.threshold).toFixed(1); }).join("L");
      }
      run = [];
    }
    pts.forEach(function (p) { if (p.hi === null || p.lo === null) { flush(); } else { run.push(p); } });
    flush();
    if (d) {
      el("path", { d: d, "class": "band" }, f.svg);
      el("path", { d: mean, "class": "mean" }, f.svg);
      el("path", { d: thr, "class": "threshold" }, f.svg);
    }
    pts.forEach(function (p) {
      var circle = el("circle", { cx: s.x(p.t).toFixed(1), cy: s.y(p.v).toFixed(1), r: p.anomaly ? 5 : 2.5, "class": p.anomaly ? "pt anomaly" : "pt", "data-request-id": p.request_id }, f.svg);
      var tip = el("title", {}, circle);
      tip.textContent = iso(p.t) + "  " + p.v + " " + c.unit + "  request " + p.request_id + (p.anomaly ? "  ANOMALY" : "");
    });
    legend(f.sec, [["● invocation"], ["● anomaly (flagged by the detector)", "#d9534f"], ["▬ learned typical ± spread", "#4a90d9"], ["- - level flagged from", "#d9534f"],
      [c.sampled_every > 1 ? "(every " + c.sampled_every + "th point shown, all anomalies)" : ""]]);
    drawn++;
  });
  data.auth.forEach(function (c) {
    var n = 0, ymax = 0;
    c.series.forEach(function (sr) { n += sr.points.length; sr.points.forEach(function (p) { ymax = Math.max(ymax, p[1]); }); });
    var f = frame("auth", c.rule, c.title, n);
    var s = scales(t0, t1, ymax * 1.1);
    axes(f.svg, s);
    var items = [];
    c.series.forEach(function (sr, i) {
      var color = COLORS[i % COLORS.length];
      // A line joins adjacent buckets only: a bucket without lines is a gap
      // (a line across it would draw attempts that never happened).
      var d = "", prev = null;
      sr.points.forEach(function (p) {
        var xy = s.x(p[0]).toFixed(1) + "," + s.y(p[1]).toFixed(1);
        d += (prev !== null && p[0] - prev === c.bucket_ms ? "L" : "M") + xy;
        prev = p[0];
      });
      if (d.indexOf("L") >= 0) { el("path", { d: d, "class": "series", stroke: color, "data-key": sr.key }, f.svg); }
      sr.points.forEach(function (p) {
        var circle = el("circle", { cx: s.x(p[0]).toFixed(1), cy: s.y(p[1]).toFixed(1), r: 3, fill: color, "class": "pt src", "data-key": sr.key, "data-t": p[0] }, f.svg);
        el("title", {}, circle).textContent = sr.key + ": " + p[1] + " at " + iso(p[0]);
      });
      items.push([sr.key + " (" + sr.total + ")", color]);
    });
    c.alerts.forEach(function (t) {
      var m = el("line", { x1: s.x(t).toFixed(1), x2: s.x(t).toFixed(1), y1: T, y2: H - B, "class": "alert-mark" }, f.svg);
      el("title", {}, m).textContent = "alert at " + iso(t);
    });
    if (c.other_sources > 0) { items.push(["+ " + c.other_sources + " more source(s), " + c.other_events + " line(s)"]); }
    items.push(["(no line across a bucket without matching lines)"]);
    legend(f.sec, items);
    drawn++;
  });
  if (data.omitted.length) {
    var p = document.createElement("p");
    p.className = "omitted";
    p.textContent = "No chart for " + data.omitted.map(function (o) { return o.rule + " (" + o.why + ")"; }).join(", ") + " in this range.";
    root.appendChild(p);
  }
  document.body.setAttribute("data-rendered", String(drawn));
})();
