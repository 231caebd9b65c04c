//! `logwarden backtest` end to end against moto: history put with
//! `put_log_events`, pulled back with `FilterLogEvents` by the real binary,
//! compared with `replay` of the same events; the HTML report opened in a
//! real headless browser (Debian's `chromium`, installed by `.ci/run`).

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn logwarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args(args)
        .env("LOGWARDEN_LOG", "warn")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rfc3339(ms: i64) -> String {
    logwarden::time::rfc3339(ms)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Alert JSON lines, sorted by id so two runs compare as sets.
fn alerts(out: &Output) -> Vec<Value> {
    let mut v: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    v
}

/// The decoded subscription payloads among the bundled fixtures.
fn fixture_payloads() -> Vec<Value> {
    let mut out = Vec::new();
    for dir in ["auth", "baselines", "failures", "lifecycle", "envelopes"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for p in paths {
            let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(&p).unwrap()) else {
                continue;
            };
            if v.get("logEvents").is_some() && v["messageType"] == "DATA_MESSAGE" {
                out.push(v);
            }
        }
    }
    out
}

/// Shift every event so the latest is an hour ago (moto refuses events older
/// than 14 days) and rename each group with `suffix` (tests share one moto).
fn shifted(payloads: &[Value], suffix: &str) -> (Vec<Value>, i64) {
    let max = payloads
        .iter()
        .flat_map(|p| p["logEvents"].as_array().unwrap())
        .map(|e| e["timestamp"].as_i64().unwrap())
        .max()
        .unwrap();
    let delta = (now_ms() - 3_600_000 - max) / 1000 * 1000;
    let out = payloads
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p["logGroup"] = format!("{}-{suffix}", p["logGroup"].as_str().unwrap()).into();
            for e in p["logEvents"].as_array_mut().unwrap() {
                e["timestamp"] = (e["timestamp"].as_i64().unwrap() + delta).into();
            }
            p
        })
        .collect();
    (out, delta)
}

/// Create the groups and streams of `payloads` and put their events.
async fn put_history(logs: &aws_sdk_cloudwatchlogs::Client, payloads: &[Value]) {
    let mut groups: Vec<&str> = payloads
        .iter()
        .map(|p| p["logGroup"].as_str().unwrap())
        .collect();
    groups.sort();
    groups.dedup();
    for g in groups {
        logs.create_log_group()
            .log_group_name(g)
            .send()
            .await
            .unwrap();
    }
    let mut streams = std::collections::BTreeSet::new();
    for p in payloads {
        let (g, s) = (
            p["logGroup"].as_str().unwrap(),
            p["logStream"].as_str().unwrap(),
        );
        if streams.insert((g.to_string(), s.to_string())) {
            logs.create_log_stream()
                .log_group_name(g)
                .log_stream_name(s)
                .send()
                .await
                .unwrap();
        }
        let mut events: Vec<(i64, String)> = p["logEvents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["timestamp"].as_i64().unwrap(),
                    e["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        events.sort_by_key(|e| e.0);
        put_events(logs, g, s, &events).await;
    }
}

async fn put_events(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    events: &[(i64, String)],
) {
    for chunk in events.chunks(5_000) {
        let r = logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(
                chunk
                    .iter()
                    .map(|(t, m)| {
                        InputLogEvent::builder()
                            .timestamp(*t)
                            .message(m)
                            .build()
                            .unwrap()
                    })
                    .collect(),
            ))
            .send()
            .await
            .unwrap();
        assert!(
            r.rejected_log_events_info().is_none(),
            "moto rejected events: {:?}",
            r.rejected_log_events_info()
        );
    }
}

/// `events N ... pages P` figures from backtest's summary line on stderr.
fn summary_figure(stderr: &str, what: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains(" event(s) in "))
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| w.starts_with(what))
        .unwrap_or_else(|| panic!("no `{what}` in: {line}"));
    words[i - 1].parse().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn backtest_prints_what_replay_prints_for_the_same_events() {
    let Some(endpoint) = support::moto("backtest_prints_what_replay_prints_for_the_same_events")
    else {
        return;
    };
    let suffix = support::unique("bt");
    let (payloads, _) = shifted(&fixture_payloads(), &suffix);
    let rt = runtime();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&rt.block_on(support::aws(&endpoint)));
    rt.block_on(put_history(&logs, &payloads));

    let mut by_group: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for p in &payloads {
        by_group
            .entry(p["logGroup"].as_str().unwrap().to_string())
            .or_default()
            .push(p);
    }
    assert!(by_group.len() >= 8, "{:?}", by_group.keys());
    let mut rules_fired = std::collections::BTreeSet::new();
    for (group, ps) in &by_group {
        let times: Vec<i64> = ps
            .iter()
            .flat_map(|p| p["logEvents"].as_array().unwrap())
            .map(|e| e["timestamp"].as_i64().unwrap())
            .collect();
        let (start, end) = (
            *times.iter().min().unwrap(),
            *times.iter().max().unwrap() + 300_000,
        );
        let dir = tempfile::tempdir().unwrap();
        for (i, p) in ps.iter().enumerate() {
            std::fs::write(
                dir.path().join(format!("{i:02}.json")),
                serde_json::to_vec(p).unwrap(),
            )
            .unwrap();
        }
        let replayed = logwarden(&[
            "replay",
            "--output",
            "json",
            "--now",
            &rfc3339(end),
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(
            replayed.status.code(),
            Some(0),
            "{}",
            text(&replayed.stderr)
        );
        let backtested = logwarden(&[
            "backtest",
            "--log-group",
            group,
            "--start",
            &rfc3339(start),
            "--end",
            &rfc3339(end),
            "--output",
            "json",
        ]);
        let stderr = text(&backtested.stderr);
        assert_eq!(backtested.status.code(), Some(0), "{group}: {stderr}");
        // Firings: backtest sweeps at --end, replay at its last event, so
        // more incidents may have resolved by the backtest's end.
        let firing = |v: Vec<Value>| -> Vec<Value> {
            v.into_iter()
                .filter(|a| a["status"] != "resolved")
                .collect()
        };
        let (want, got) = (firing(alerts(&replayed)), firing(alerts(&backtested)));
        assert_eq!(got, want, "{group}: backtest and replay disagree");
        let events: usize = ps
            .iter()
            .map(|p| p["logEvents"].as_array().unwrap().len())
            .sum();
        assert_eq!(
            summary_figure(&stderr, "event(s)"),
            events as u64,
            "{stderr}"
        );
        for a in &got {
            rules_fired.insert(a["rule"].as_str().unwrap().to_string());
        }
    }
    // The comparison means something only if the fixtures made things fire.
    for rule in [
        "failed-auth-burst",
        "duration-anomaly",
        "memory-anomaly",
        "missing-end",
        "invocation-timeout",
        "out-of-memory",
    ] {
        assert!(
            rules_fired.contains(rule),
            "{rule} never fired: {rules_fired:?}"
        );
    }
}

#[test]
fn history_longer_than_a_page_is_read_in_full() {
    let Some(endpoint) = support::moto("history_longer_than_a_page_is_read_in_full") else {
        return;
    };
    let group = format!("/aws/lambda/{}", support::unique("paging"));
    let base = now_ms() - 2 * 3_600_000;
    // 12,000 events over two streams (moto, like CloudWatch Logs, pages at
    // 10,000); 12 failed logins from one address at the very end.
    let mut a: Vec<(i64, String)> = (0..6_000)
        .map(|i| (base + i * 500, format!("INFO request {i} ok")))
        .collect();
    let b: Vec<(i64, String)> = (0..6_000)
        .map(|i| (base + i * 500 + 250, format!("INFO job {i} ok")))
        .collect();
    let late = base + 6_000 * 500;
    for i in 0..12 {
        a.push((
            late + i * 1_000,
            format!(r#"{{"event":"login_failed","user":"u{i}","source_ip":"198.51.100.23"}}"#),
        ));
    }
    let rt = runtime();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&rt.block_on(support::aws(&endpoint)));
    rt.block_on(async {
        logs.create_log_group()
            .log_group_name(&group)
            .send()
            .await
            .unwrap();
        for (s, evs) in [("stream-a", &a), ("stream-b", &b)] {
            logs.create_log_stream()
                .log_group_name(&group)
                .log_stream_name(s)
                .send()
                .await
                .unwrap();
            put_events(&logs, &group, s, evs).await;
        }
    });
    let (start, end) = (rfc3339(base), rfc3339(late + 60_000));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "backtest",
            "--log-group",
            &group,
            "--start",
            &start,
            "--end",
            &end,
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        logwarden(&args)
    };
    let default = run(&[]);
    let stderr = text(&default.stderr);
    assert_eq!(default.status.code(), Some(0), "{stderr}");
    assert_eq!(summary_figure(&stderr, "event(s)"), 12_012, "{stderr}");
    assert_eq!(summary_figure(&stderr, "stream(s)"), 2, "{stderr}");
    assert_eq!(summary_figure(&stderr, "page(s)"), 2, "{stderr}");
    let got = alerts(&default);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["rule"], "failed-auth-burst");
    assert_eq!(got[0]["key"]["source_ip"], "198.51.100.23");

    let small = run(&["--page-size", "1000"]);
    let stderr = text(&small.stderr);
    assert_eq!(small.status.code(), Some(0), "{stderr}");
    assert_eq!(summary_figure(&stderr, "event(s)"), 12_012, "{stderr}");
    assert_eq!(summary_figure(&stderr, "page(s)"), 13, "{stderr}");
    assert_eq!(alerts(&small), got);
}

#[test]
fn missing_log_group_is_one_clear_line_and_exit_one() {
    let Some(_) = support::moto("missing_log_group_is_one_clear_line_and_exit_one") else {
        return;
    };
    let group = format!("/aws/lambda/{}", support::unique("absent"));
    let out = logwarden(&["backtest", "--log-group", &group, "--start", "-1h"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&group) && stderr.contains("not found"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_times_are_usage_errors_naming_the_option() {
    // No service needed: times are checked before anything is fetched.
    for (args, needle) in [
        (vec!["--start", "yesterday"], "--start"),
        (
            vec!["--start", "-1h", "--end", "2026-13-01T00:00:00Z"],
            "--end",
        ),
        (vec!["--start", "-1h", "--end", "-2h"], "is after --end"),
        (vec!["--start", "-5x"], "unknown unit"),
    ] {
        let mut all = vec!["backtest", "--log-group", "/aws/lambda/x"];
        all.extend(args.iter());
        let out = logwarden(&all);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// The page as the browser has it after its scripts ran, in a window
/// 1280 px wide (a laptop screen; the alert table must read well there).
fn rendered_dom(browser: &Path, page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = text(&out.stdout);
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium failed: {}",
        text(&out.stderr)
    );
    dom
}

/// The `<svg ...>...</svg>` elements of one kind, in order.
fn svgs<'a>(dom: &'a str, kind: &str) -> Vec<&'a str> {
    let tag = format!("data-kind=\"{kind}\"");
    dom.match_indices("<svg")
        .map(|(i, _)| &dom[i..i + dom[i..].find("</svg>").unwrap()])
        .filter(|s| s[..s.find('>').unwrap()].contains(&tag))
        .collect()
}

/// The opening tags `<name ...>` in `markup`, in order.
fn tags<'a>(markup: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name} ");
    markup
        .match_indices(&open)
        .map(|(i, _)| &markup[i..i + markup[i..].find('>').unwrap()])
        .collect()
}

/// The value of attribute `name` in an opening tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    Some(&tag[i..i + tag[i..].find('"')?])
}

/// No chart is drawn without points: every chart's SVG has at least one
/// point, and says so in `data-points`.
fn assert_no_chart_without_points(dom: &str) {
    let charts: Vec<&str> = dom
        .match_indices("<svg")
        .map(|(i, _)| &dom[i..i + dom[i..].find("</svg>").unwrap()])
        .filter(|s| attr(s, "class") == Some("chart"))
        .collect();
    for svg in charts {
        let open = &svg[..svg.find('>').unwrap()];
        let n: usize = attr(open, "data-points").unwrap().parse().unwrap();
        assert!(
            n > 0 && svg.matches("<circle").count() > 0,
            "a chart without points: {open}"
        );
    }
}

/// Every line segment of every failed-login chart joins one source's counts
/// in two adjacent buckets: a line never crosses a bucket without matching
/// lines. Each vertex is matched to the point drawn there (same source,
/// same position), whose `data-t` is its bucket. Returns the segments seen.
fn assert_no_line_across_an_empty_bucket(dom: &str, data: &Value) -> usize {
    let mut segments = 0;
    for chart in data["auth"].as_array().unwrap() {
        let bucket = chart["bucket_ms"].as_i64().unwrap();
        let rule = format!("data-rule=\"{}\"", chart["rule"].as_str().unwrap());
        let svg = svgs(dom, "auth")
            .into_iter()
            .find(|s| s[..s.find('>').unwrap()].contains(&rule))
            .unwrap();
        let points: Vec<(&str, &str, &str, i64)> = tags(svg, "circle")
            .into_iter()
            .map(|c| {
                (
                    attr(c, "data-key").unwrap(),
                    attr(c, "cx").unwrap(),
                    attr(c, "cy").unwrap(),
                    attr(c, "data-t").unwrap().parse().unwrap(),
                )
            })
            .collect();
        for path in tags(svg, "path") {
            if attr(path, "class") != Some("series") {
                continue;
            }
            let key = attr(path, "data-key").unwrap();
            for run in attr(path, "d")
                .unwrap()
                .split('M')
                .filter(|r| !r.is_empty())
            {
                let times: Vec<i64> = run
                    .split('L')
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        points
                            .iter()
                            .find(|p| p.0 == key && p.1 == x && p.2 == y)
                            .unwrap_or_else(|| panic!("no point of {key} at {xy}"))
                            .3
                    })
                    .collect();
                for w in times.windows(2) {
                    assert_eq!(
                        w[1] - w[0],
                        bucket,
                        "{key}: a line from {} to {} crosses a bucket without lines",
                        rfc3339(w[0]),
                        rfc3339(w[1])
                    );
                    segments += 1;
                }
            }
        }
    }
    segments
}

/// Added to a copy of the page: measures the alert table as the browser
/// laid it out and leaves the figures in `<pre id="layout">` for
/// `--dump-dom`. Lines of a cell = distinct tops of its text's line boxes.
const MEASURE_TABLE: &str = r##"<script>
(function () {
  var heads = Array.prototype.map.call(document.querySelectorAll("#alerts thead th"), function (th) { return th.textContent; });
  var out = { viewport: window.innerWidth, page: document.documentElement.scrollWidth, cells: [] };
  document.querySelectorAll("#alerts tbody tr.alert").forEach(function (tr) {
    ["First seen", "Severity"].forEach(function (name) {
      var td = tr.children[heads.indexOf(name)];
      var r = document.createRange();
      r.selectNodeContents(td);
      var tops = {};
      Array.prototype.forEach.call(r.getClientRects(), function (b) { if (b.width > 0) { tops[Math.round(b.top)] = 1; } });
      out.cells.push({ column: name, text: td.textContent, lines: Object.keys(tops).length });
    });
  });
  var pre = document.createElement("pre");
  pre.id = "layout";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"##;

/// The severity and first-seen cells of every alert row sit on one line in
/// a 1280 px window, and the page does not scroll sideways.
fn assert_alert_table_reads_at_1280px(browser: &Path, page: &Path, alerts: usize) {
    let html = std::fs::read_to_string(page).unwrap();
    let measured = page.with_file_name("measured.html");
    std::fs::write(
        &measured,
        html.replacen("</body>", &format!("{MEASURE_TABLE}</body>"), 1),
    )
    .unwrap();
    let dom = rendered_dom(browser, &measured);
    let start = dom
        .find("<pre id=\"layout\">")
        .expect("the measuring script did not run")
        + "<pre id=\"layout\">".len();
    let layout: Value =
        serde_json::from_str(&dom[start..start + dom[start..].find("</pre>").unwrap()]).unwrap();
    assert_eq!(layout["viewport"], 1280, "{layout}");
    assert!(
        layout["page"].as_i64().unwrap() <= 1280,
        "the page scrolls sideways: {layout}"
    );
    let cells = layout["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2 * alerts, "{layout}");
    for c in cells {
        assert_eq!(c["lines"], 1, "a cell wraps at 1280 px: {c}");
    }
}

#[test]
fn report_renders_charts_in_a_real_browser() {
    let Some(endpoint) = support::moto("report_renders_charts_in_a_real_browser") else {
        return;
    };
    let Some(browser) = support::chromium("report_renders_charts_in_a_real_browser") else {
        return;
    };
    let suffix = support::unique("report");
    // The checkout fixture (duration anomalies) and the auth fixture's lines
    // in one group, plus a failed login carrying markup: log text is
    // attacker-controlled and must stay text.
    let mut payloads: Vec<Value> = fixture_payloads()
        .into_iter()
        .filter(|p| {
            let g = p["logGroup"].as_str().unwrap();
            g == "/aws/lambda/checkout" || g == "/aws/lambda/auth-api"
        })
        .collect();
    assert_eq!(payloads.len(), 2);
    let hostile = r#"{"event":"login_failed","user":"<img src=x onerror=alert(1)></script><b id=pwned>","source_ip":"<svg id=pwned2>"}"#;
    let auth_payload = payloads
        .iter_mut()
        .find(|p| p["logStream"].as_str().unwrap().ends_with("a1b2c3d4e5f6"))
        .unwrap();
    let events = auth_payload["logEvents"].as_array_mut().unwrap();
    let t0 = events[0]["timestamp"].as_i64().unwrap();
    for i in 0..10 {
        events.push(
            serde_json::json!({"id": format!("h{i}"), "timestamp": t0 + i, "message": hostile}),
        );
    }
    for p in &mut payloads {
        p["logGroup"] = "/aws/lambda/checkout".into();
    }
    let (payloads, _) = shifted(&payloads, &suffix);
    let group = payloads[0]["logGroup"].as_str().unwrap().to_string();
    let rt = runtime();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&rt.block_on(support::aws(&endpoint)));
    rt.block_on(put_history(&logs, &payloads));

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = logwarden(&[
        "backtest",
        "--log-group",
        &group,
        "--start",
        "-1d",
        "--output",
        "json",
        "--report",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Firings: the report marks where incidents opened.
    let fired: Vec<Value> = alerts(&out)
        .into_iter()
        .filter(|a| a["status"] == "firing")
        .collect();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("<img") && !html.contains("<b id=pwned") && !html.contains("<svg id"),
        "log text reached the page as markup"
    );
    assert!(
        !html.contains(" src=\"") && !html.contains("<link"),
        "the report loads nothing"
    );
    // The data the page embeds, as the script reads it.
    let start = html.find("id=\"report-data\">").unwrap() + "id=\"report-data\">".len();
    let data: Value =
        serde_json::from_str(&html[start..start + html[start..].find("</script>").unwrap()])
            .unwrap();

    let dom = rendered_dom(&browser, &page);
    let charts = data["charts"].as_array().unwrap();
    let auth = data["auth"].as_array().unwrap();
    assert_eq!(charts.len(), 2, "duration and memory");
    assert!(
        dom.contains(&format!("data-rendered=\"{}\"", charts.len() + auth.len())),
        "the script did not finish"
    );
    assert!(
        !dom.contains("id=\"pwned") && !dom.contains("<img") && !dom.contains("<b id"),
        "markup from logs rendered"
    );

    // Duration: one circle per data point, anomalies marked, the band drawn,
    // and every duration alert's invocation among the marked points.
    let duration = &charts.iter().find(|c| c["metric"] == "duration").unwrap()["points"];
    let duration = duration.as_array().unwrap();
    let reports = payloads
        .iter()
        .flat_map(|p| p["logEvents"].as_array().unwrap())
        .filter(|e| {
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("REPORT RequestId:")
        })
        .count();
    assert_eq!(
        reports,
        41 + 20,
        "the checkout and auth-api fixtures' REPORT lines"
    );
    assert_eq!(duration.len(), reports, "one point per REPORT line");
    let svg = svgs(&dom, "duration");
    assert_eq!(svg.len(), 1);
    let svg = svg[0];
    assert_eq!(svg.matches("<circle").count(), duration.len());
    let anomalies: Vec<&str> = duration
        .iter()
        .filter(|p| p["anomaly"] == true)
        .map(|p| p["request_id"].as_str().unwrap())
        .collect();
    assert!(!anomalies.is_empty());
    assert_eq!(svg.matches("class=\"pt anomaly\"").count(), anomalies.len());
    let band = svg.find("class=\"band\"").expect("no baseline band");
    assert!(svg[..band].rfind("d=\"M").is_some(), "empty band path");
    let duration_alerts: Vec<&Value> = fired
        .iter()
        .filter(|a| a["rule"] == "duration-anomaly")
        .collect();
    assert!(!duration_alerts.is_empty());
    for a in duration_alerts {
        let rid = a["request_ids"][0].as_str().unwrap();
        assert!(anomalies.contains(&rid), "alert for {rid} not marked");
        assert!(svg.contains(&format!("data-request-id=\"{rid}\"")));
    }
    let memory = charts.iter().find(|c| c["metric"] == "memory").unwrap()["points"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(svgs(&dom, "memory")[0].matches("<circle").count(), memory);

    // Failed authentications: one circle per (source, bucket), a mark per alert.
    let fa = auth
        .iter()
        .find(|c| c["rule"] == "failed-auth-burst")
        .unwrap();
    let points: usize = fa["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["points"].as_array().unwrap().len())
        .sum();
    assert!(points > 0);
    let svg = svgs(&dom, "auth")
        .into_iter()
        .find(|s| s.contains("data-rule=\"failed-auth-burst\""))
        .unwrap();
    assert_eq!(svg.matches("<circle").count(), points);
    let auth_alerts = fired
        .iter()
        .filter(|a| a["rule"] == "failed-auth-burst")
        .count();
    assert!(auth_alerts >= 2, "the fixture burst and the hostile one");
    assert_eq!(svg.matches("class=\"alert-mark\"").count(), auth_alerts);
    // The hostile source is a legend entry, as text.
    assert!(
        dom.contains("&lt;svg id=pwned2&gt;"),
        "hostile key not shown as text"
    );

    // The alert table lists every alert.
    assert_eq!(dom.matches("<tr class=\"alert ").count(), fired.len());
    for a in &fired {
        assert!(dom.contains(a["first_seen"].as_str().unwrap()));
    }
    assert_no_chart_without_points(&dom);
    assert_no_line_across_an_empty_bucket(&dom, &data);
    assert_alert_table_reads_at_1280px(&browser, &page, fired.len());
}

/// sshd history in a group that is not a Lambda function: failed passwords
/// from one source in two bursts three hours apart, and a slower source in
/// three adjacent 5-minute buckets. The report must draw no duration or
/// memory chart (there is no REPORT line), no line from the first burst to
/// the second, and a table that reads at 1280 px.
#[test]
fn report_on_sshd_history_draws_only_charts_with_data_and_no_line_across_a_gap() {
    let test = "report_on_sshd_history_draws_only_charts_with_data_and_no_line_across_a_gap";
    let Some(endpoint) = support::moto(test) else {
        return;
    };
    let Some(browser) = support::chromium(test) else {
        return;
    };
    let group = format!("/var/log/secure-{}", support::unique("sshd"));
    // A long stream name, as agents make them: log text that must not widen the table.
    let stream =
        "ip-10-20-30-40.eu-west-1.compute.internal/var/log/secure/bastion-i-0123456789abcdef0";
    // On a 5-minute boundary, so the slow source's tries fall in adjacent buckets.
    let base = (now_ms() - 5 * 3_600_000) / 300_000 * 300_000;
    let line = |t: i64, pid: i64, user: &str, ip: &str| {
        (
            t,
            format!(
                "{} bastion sshd[{pid}]: Failed password for {user} from {ip} port {} ssh2",
                rfc3339(t),
                40_000 + pid
            ),
        )
    };
    let mut events: Vec<(i64, String)> = Vec::new();
    for burst in [base, base + 3 * 3_600_000] {
        for i in 0..12 {
            events.push(line(burst + i * 1_000, 100 + i, "root", "203.0.113.7"));
        }
    }
    for i in 0..3 {
        events.push(line(
            base + 3_600_000 + i * 300_000,
            500 + i,
            "admin",
            "198.51.100.23",
        ));
    }
    events.push((
        base + 2 * 3_600_000,
        "bastion sshd[900]: Accepted publickey for deploy from 192.0.2.10 port 50000 ssh2".into(),
    ));
    events.sort_by_key(|e| e.0);
    let rt = runtime();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&rt.block_on(support::aws(&endpoint)));
    rt.block_on(async {
        logs.create_log_group()
            .log_group_name(&group)
            .send()
            .await
            .unwrap();
        logs.create_log_stream()
            .log_group_name(&group)
            .log_stream_name(stream)
            .send()
            .await
            .unwrap();
        put_events(&logs, &group, stream, &events).await;
    });

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = logwarden(&[
        "backtest",
        "--log-group",
        &group,
        "--start",
        "-1d",
        "--output",
        "json",
        "--report",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (fired, resolved): (Vec<Value>, Vec<Value>) = alerts(&out)
        .into_iter()
        .partition(|a| a["status"] == "firing");
    assert_eq!(fired.len(), 2, "one alert per burst: {fired:?}");
    // Each burst, quiet by the end of the range, resolves once.
    assert_eq!(resolved.len(), 2, "{resolved:?}");
    assert!(fired.iter().all(|a| a["rule"] == "failed-auth-burst"));
    let html = std::fs::read_to_string(&page).unwrap();
    let start = html.find("id=\"report-data\">").unwrap() + "id=\"report-data\">".len();
    let data: Value =
        serde_json::from_str(&html[start..start + html[start..].find("</script>").unwrap()])
            .unwrap();
    assert_eq!(
        data["charts"],
        serde_json::json!([]),
        "no REPORT line, no baseline chart"
    );
    let omitted: Vec<&str> = data["omitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["rule"].as_str().unwrap())
        .collect();
    for rule in ["duration-anomaly", "memory-anomaly"] {
        assert!(
            omitted.contains(&rule),
            "{rule} not listed as omitted: {omitted:?}"
        );
    }
    let auth = data["auth"].as_array().unwrap();
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(auth[0]["bucket_ms"], 300_000);

    let dom = rendered_dom(&browser, &page);
    assert!(
        dom.contains("data-rendered=\"1\""),
        "the script did not finish"
    );
    assert_eq!(svgs(&dom, "duration").len() + svgs(&dom, "memory").len(), 0);
    assert!(
        dom.contains("No chart for duration-anomaly"),
        "omitted charts not named"
    );
    assert_no_chart_without_points(&dom);
    // The burst source's two points, three hours apart, stay unjoined; the
    // slow source's three adjacent buckets are joined by two segments.
    let svg = svgs(&dom, "auth")[0];
    assert_eq!(svg.matches("<circle").count(), 2 + 3);
    assert_eq!(assert_no_line_across_an_empty_bucket(&dom, &data), 2);
    assert_alert_table_reads_at_1280px(&browser, &page, fired.len());
}

/// A stand-in for CloudWatch Logs in front of moto that answers the first
/// `budget` FilterLogEvents requests with the service's throttling error and
/// forwards everything else, one request per connection.
fn throttling_proxy(rt: &tokio::runtime::Runtime, moto: &str, budget: usize) -> String {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let upstream = moto.trim_start_matches("http://").to_string();
    let left = Arc::new(AtomicUsize::new(budget));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let (upstream, left) = (upstream.clone(), Arc::clone(&left));
            tokio::spawn(async move {
                // The whole request: headers, then Content-Length bytes of body.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match client.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match client.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let throttle = head.contains("Logs_20140328.FilterLogEvents")
                    && left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                if throttle {
                    let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
                    let resp = format!(
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(resp.as_bytes()).await;
                    return;
                }
                // Forward with `Connection: close`, relay the response to EOF.
                let mut lines: Vec<&str> = head.trim_end().split("\r\n").collect();
                lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
                lines.push("Connection: close");
                let mut req = (lines.join("\r\n") + "\r\n\r\n").into_bytes();
                req.extend_from_slice(&buf[head_end..]);
                let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                if up.write_all(&req).await.is_err() {
                    return;
                }
                let mut resp = Vec::new();
                let _ = up.read_to_end(&mut resp).await;
                let _ = client.write_all(&resp).await;
            });
        }
    });
    format!("http://{addr}")
}

/// The SDK's sleeper, recording every wait it is asked for (then waiting).
#[derive(Debug, Clone, Default)]
struct RecordedSleeps(std::sync::Arc<std::sync::Mutex<Vec<std::time::Duration>>>);

impl aws_sdk_cloudwatchlogs::config::AsyncSleep for RecordedSleeps {
    fn sleep(&self, d: std::time::Duration) -> aws_sdk_cloudwatchlogs::config::Sleep {
        self.0.lock().unwrap().push(d);
        aws_sdk_cloudwatchlogs::config::Sleep::new(tokio::time::sleep(d))
    }
}

#[test]
fn throttled_requests_are_retried_with_backoff_and_counted() {
    let Some(endpoint) = support::moto("throttled_requests_are_retried_with_backoff_and_counted")
    else {
        return;
    };
    let suffix = support::unique("throttle");
    let payloads: Vec<Value> = fixture_payloads()
        .into_iter()
        .filter(|p| p["logGroup"] == "/aws/lambda/auth-api")
        .collect();
    let (payloads, _) = shifted(&payloads, &suffix);
    let group = payloads[0]["logGroup"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&rt.block_on(support::aws(&endpoint)));
    rt.block_on(put_history(&logs, &payloads));
    let run = |url: &str, extra: &[&str]| {
        let mut args = vec![
            "backtest",
            "--log-group",
            &group,
            "--start",
            "-1d",
            "--page-size",
            "30",
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_logwarden"))
            .args(&args)
            .env("AWS_ENDPOINT_URL", url)
            .output()
            .unwrap()
    };
    let direct = run(&endpoint, &[]);
    assert_eq!(direct.status.code(), Some(0), "{}", text(&direct.stderr));
    let want = alerts(&direct);
    assert!(!want.is_empty());

    // Three throttles across the pages: retried, counted, same alerts.
    let proxy = throttling_proxy(&rt, &endpoint, 3);
    let out = run(&proxy, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(summary_figure(&stderr, "throttled"), 3, "{stderr}");
    assert_eq!(summary_figure(&stderr, "page(s)"), 3, "{stderr}");
    assert_eq!(alerts(&out), want);

    // The backoff: the client the binary builds (`backtest::client`), whose
    // SDK sleeper is replaced by one that records each wait (and still
    // waits), behind a proxy that throttles the first three requests. The
    // waits are checked as asked for, not as measured, so load cannot flake it.
    let waits = RecordedSleeps::default();
    let conf = rt
        .block_on(support::aws(&throttling_proxy(&rt, &endpoint, 3)))
        .to_builder()
        .sleep_impl(aws_sdk_cloudwatchlogs::config::SharedAsyncSleep::new(
            waits.clone(),
        ))
        // Neither may add sleeps of its own to the record.
        .timeout_config(aws_sdk_cloudwatchlogs::config::timeout::TimeoutConfig::disabled())
        .stalled_stream_protection(
            aws_sdk_cloudwatchlogs::config::StalledStreamProtectionConfig::disabled(),
        )
        .build();
    let throttles = logwarden::backtest::ThrottleCounter::default();
    let client = logwarden::backtest::client(&conf, 10, &throttles);
    let opts = logwarden::backtest::FetchOptions {
        log_group: group.clone(),
        start: now_ms() - 86_400_000,
        end: now_ms(),
        page_size: Some(30),
    };
    let history = rt
        .block_on(logwarden::backtest::fetch(&client, &opts, &mut |_, _| {}))
        .unwrap();
    assert_eq!(history.pages, 3);
    assert_eq!(throttles.get(), 3);
    // The HTTP client asks the same sleeper for its connection-pool timers
    // (minutes long); the retry waits are those under the 20 s backoff ceiling.
    let ceiling = logwarden::backtest::retry_config(10).max_backoff();
    let waits: Vec<std::time::Duration> = waits
        .0
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|w| *w <= ceiling)
        .collect();
    assert_eq!(waits.len(), 3, "one wait before each retry: {waits:?}");
    // Full jitter: each wait is a random part of its cap, which starts at
    // 200 ms and doubles per retry of the same request.
    for (i, (w, cap_ms)) in waits.iter().zip([200, 400, 800]).enumerate() {
        assert!(
            *w <= std::time::Duration::from_millis(cap_ms),
            "wait {i}: {w:?} over its {cap_ms} ms cap: {waits:?}"
        );
    }
    // All three under 1 ms has a chance of about 1 in 10^8; all zero means no backoff.
    let total: std::time::Duration = waits.iter().sum();
    assert!(
        total >= std::time::Duration::from_millis(1),
        "no backoff between retries: {waits:?}"
    );

    // Throttled past the attempts: one clear line, exit 1, nothing printed.
    let proxy = throttling_proxy(&rt, &endpoint, 1_000);
    let out = run(&proxy, &["--max-attempts", "2"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ThrottlingException") && stderr.contains(&group),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty());
}
