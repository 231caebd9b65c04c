//! The backtest's HTML report: one self-contained file (inline CSS, JS and
//! data; nothing loaded from the network).
//!
//! Charts are SVG drawn in the browser by a small inline script from JSON
//! embedded in the page; the alert list is plain HTML. Everything taken from
//! logs is attacker-controlled: the JSON is escaped so it cannot close its
//! `<script>` element, the script only ever sets `textContent`, and the table
//! is HTML-escaped. Alerts arrive redacted from the engine.
//!
//! The baseline band is recomputed with the detector's own code
//! ([`crate::detect::baseline::Baseline::apply`]) over the same REPORT lines
//! in the order the engine sees them, so the points it marks anomalous are
//! the ones the detector judged anomalous. Failed authentications are counted
//! with the threshold rules' own matchers.
//!
//! Only charts with data are drawn (a log group without Lambda REPORT lines
//! gets no duration or memory chart), and a count series joins adjacent
//! buckets only: an empty bucket is drawn as a gap rather than a line that
//! suggests attempts in between.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::alert::Alert;
use crate::detect::baseline::{Baseline, BaselineState, Metric, Sample};
use crate::detect::threshold::Threshold;
use crate::detect::{Detector, function_name, stable_hash};
use crate::ingest::Payload;
use crate::platform::{self, Record, Status};
use crate::rules::{Rule, RuleSet};
use crate::time::{Millis, rfc3339};

/// Most points drawn per chart; beyond this every k-th point is kept (and
/// every anomaly), so a busy function's report stays small.
pub const MAX_POINTS: usize = 5_000;

/// One REPORT as a baseline chart shows it.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    t: Millis,
    v: f64,
    /// Typical value before this invocation (after warm-up).
    mean: Option<f64>,
    /// Spread before this invocation (after warm-up).
    spread: Option<f64>,
    anomaly: bool,
    request_id: String,
}

struct BaselineTrack {
    rule: Arc<Rule>,
    config: Baseline,
    state: BaselineState,
    points: Vec<Point>,
}

struct AuthTrack {
    rule: Arc<Rule>,
    config: Threshold,
    /// Matching event times per source key.
    hits: BTreeMap<String, Vec<Millis>>,
}

/// Watches the batches and alerts of a backtest and renders the report.
pub struct Recorder {
    log_group: String,
    baselines: Vec<BaselineTrack>,
    auth: Vec<AuthTrack>,
    /// Learned from `Task timed out after N seconds`, as the engine does.
    timeout_ms: Option<Millis>,
    alerts: Vec<Alert>,
    span: Option<(Millis, Millis)>,
}

/// Totals shown at the top of the report.
#[derive(Debug, Clone, Default)]
pub struct ReportMeta {
    /// Requested range start (ms).
    pub start: Millis,
    /// Requested range end (ms).
    pub end: Millis,
    /// Log events read.
    pub events: usize,
    /// Log streams with events.
    pub streams: usize,
    /// `FilterLogEvents` pages read.
    pub pages: usize,
    /// Throttled requests (retried).
    pub throttles: u64,
    /// Rules run.
    pub rules: usize,
}

impl Recorder {
    /// A recorder for `log_group` with the rules the engine runs.
    pub fn new(rules: &RuleSet, log_group: &str) -> Self {
        let mut baselines = Vec::new();
        let mut auth = Vec::new();
        // The one place the report names detector kinds: which rules get a
        // chart, each track keeping its detector's settings.
        for r in &rules.rules {
            match &r.detector {
                Detector::Baseline(b) => baselines.push(BaselineTrack {
                    rule: Arc::clone(r),
                    config: b.clone(),
                    state: BaselineState::default(),
                    points: Vec::new(),
                }),
                Detector::Threshold(t) => auth.push(AuthTrack {
                    rule: Arc::clone(r),
                    config: t.clone(),
                    hits: BTreeMap::new(),
                }),
                _ => {}
            }
        }
        Recorder {
            log_group: log_group.to_string(),
            baselines,
            auth,
            timeout_ms: None,
            alerts: Vec::new(),
            span: None,
        }
    }

    /// See one batch, in the order the engine processes them.
    pub fn batch(&mut self, p: &Payload<'_>) {
        let function = function_name(&p.log_group).map(str::to_string);
        for ev in &p.log_events {
            let ts = ev.timestamp;
            self.span = Some(match self.span {
                None => (ts, ts),
                Some((a, b)) => (a.min(ts), b.max(ts)),
            });
            match platform::parse(&ev.message) {
                Record::Timeout { seconds, .. } => {
                    let ms = (seconds * 1_000.0).round() as Millis;
                    self.timeout_ms = Some(self.timeout_ms.map_or(ms, |t| t.max(ms)));
                }
                Record::Report(r) if r.status == Status::Success && r.duration_ms > 0.0 => {
                    let sample = Sample {
                        duration_ms: r.duration_ms,
                        max_memory_used_mb: r.max_memory_used_mb,
                        memory_size_mb: r.memory_size_mb,
                    };
                    for track in &mut self.baselines {
                        let b = &track.config;
                        let v = match b.metric {
                            Metric::Duration => sample.duration_ms,
                            Metric::Memory => match sample.max_memory_used_mb {
                                Some(m) => f64::from(m),
                                None => continue,
                            },
                        };
                        let st = &track.state;
                        let warm = st.n >= b.warmup && st.mean > 0.0;
                        let fresh = !st.recent.contains(&stable_hash(&["req", &r.request_id]));
                        let spread = st.dev.max(0.05 * st.mean);
                        let mean_before = st.mean;
                        let timeout = function
                            .as_deref()
                            .and_then(|f| b.function_timeouts.get(f).copied())
                            .or(self.timeout_ms);
                        let anomaly = b
                            .apply(
                                &mut track.state,
                                stable_hash(&["req", &r.request_id]),
                                &sample,
                                timeout,
                            )
                            .is_some();
                        if fresh {
                            let (mean, spread_shown) = if warm {
                                (Some(round2(mean_before)), Some(round2(spread)))
                            } else {
                                (None, None)
                            };
                            track.points.push(Point {
                                t: ts,
                                v,
                                mean,
                                spread: spread_shown,
                                anomaly,
                                request_id: r.request_id.to_string(),
                            });
                        }
                    }
                }
                Record::App(line) => {
                    let mut parsed: Option<Option<Value>> = None;
                    for track in &mut self.auth {
                        let t = &track.config;
                        let json = if line.body_is_json {
                            parsed
                                .get_or_insert_with(|| crate::lenient_json::from_str(line.body))
                                .as_ref()
                        } else {
                            None
                        };
                        let Some(fields) = t.observe(line.body, json) else {
                            continue;
                        };
                        let Some(key) = t.key(&fields) else { continue };
                        let shown = if key.len() == 1 {
                            key.values().next().cloned().unwrap_or_default()
                        } else {
                            key.iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        };
                        track.hits.entry(shown).or_default().push(ts);
                    }
                }
                _ => {}
            }
        }
    }

    /// See alerts as they are delivered. The report lists firings: a
    /// resolution closes an incident already listed.
    pub fn alerts(&mut self, alerts: &[Alert]) {
        self.alerts
            .extend(alerts.iter().filter(|a| !a.status.is_resolved()).cloned());
    }

    /// The report's data, as embedded in the page. A rule whose chart would
    /// be empty (a duration chart on a group with no REPORT lines, a
    /// failed-login chart with no matching line) gets no chart, only a
    /// mention under `omitted`.
    pub fn data(&self, meta: &ReportMeta) -> Value {
        let function = function_name(&self.log_group).unwrap_or(&self.log_group);
        let mut charts = Vec::new();
        let mut omitted = Vec::new();
        for track in &self.baselines {
            match baseline_chart(track, function) {
                Some(c) => charts.push(c),
                None => omitted.push(json!({
                    "rule": track.rule.id,
                    "why": "no successful Lambda REPORT line",
                })),
            }
        }
        let mut auth = Vec::new();
        let (lo, hi) = self.span.unwrap_or((meta.start, meta.end));
        let bucket = bucket_ms(hi - lo);
        for track in &self.auth {
            if track.hits.is_empty() {
                omitted.push(json!({"rule": track.rule.id, "why": "no matching line"}));
                continue;
            }
            auth.push(self.auth_chart(track, bucket));
        }
        json!({
            "log_group": self.log_group,
            "function": function,
            "start": meta.start,
            "end": meta.end,
            "span": [lo, hi],
            "charts": charts,
            "auth": auth,
            "omitted": omitted,
        })
    }

    /// Matching lines per source and bucket, sorted by time. Only buckets
    /// with lines are listed; the page draws a line only between adjacent
    /// buckets, so an empty bucket is a gap, never a slope.
    fn auth_chart(&self, track: &AuthTrack, bucket: Millis) -> Value {
        let mut series: Vec<(usize, Value)> = track
            .hits
            .iter()
            .map(|(key, times)| {
                let mut counts: BTreeMap<Millis, u64> = BTreeMap::new();
                for t in times {
                    *counts.entry(t - t.rem_euclid(bucket)).or_default() += 1;
                }
                let points: Vec<Value> = counts.iter().map(|(t, c)| json!([t, c])).collect();
                (
                    times.len(),
                    json!({"key": key, "total": times.len(), "points": points}),
                )
            })
            .collect();
        // The busiest sources first; a chart of hundreds of lines says nothing.
        series.sort_by_key(|s| std::cmp::Reverse(s.0));
        let shown_sources = series.len().min(10);
        let other: usize = series.iter().skip(10).map(|s| s.0).sum();
        let marks: Vec<Value> = self
            .alerts
            .iter()
            .filter(|a| a.rule == track.rule.id)
            .filter_map(|a| crate::time::parse_rfc3339(&a.first_seen).ok())
            .map(|t| json!(t))
            .collect();
        json!({
            "rule": track.rule.id,
            "title": format!("{} per {} (matching lines per {}) — rule {}",
                track.rule.title, track.config.group_by.join(", "), span_text(bucket), track.rule.id),
            "bucket_ms": bucket,
            "series": series.into_iter().take(shown_sources).map(|s| s.1).collect::<Vec<_>>(),
            "other_sources": track.hits.len().saturating_sub(shown_sources),
            "other_events": other,
            "alerts": marks,
        })
    }

    /// The whole report page.
    pub fn render(&self, meta: &ReportMeta) -> String {
        let data = script_json(&self.data(meta));
        let mut alerts = self.alerts.clone();
        alerts.sort_by(|a, b| a.first_seen.cmp(&b.first_seen));
        let mut rows = String::new();
        for a in &alerts {
            let key = a
                .key
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            let evidence = a.evidence.first().map(String::as_str).unwrap_or("");
            rows.push_str(&format!(
                "<tr class=\"alert sev-{sev}\"><td class=\"first\">{first}</td><td class=\"sev\">{sev}</td>\
                 <td class=\"rule\">{rule}</td><td class=\"what\"><b>{title}</b><div class=\"summary\">{summary}</div>\
                 <code>{evidence}</code></td><td class=\"key\">{key}</td><td class=\"count\">{count}</td>\
                 <td class=\"stream\">{stream}</td></tr>\n",
                sev = esc(a.severity.as_str()),
                first = esc(&a.first_seen),
                rule = esc(&a.rule),
                title = esc(&a.title),
                summary = esc(&a.summary),
                evidence = esc(evidence),
                key = esc(&key),
                count = a.count,
                stream = esc(a.log_stream.as_deref().unwrap_or("")),
            ));
        }
        if alerts.is_empty() {
            rows.push_str("<tr><td colspan=\"7\">No alerts would have fired.</td></tr>\n");
        }
        let head = format!(
            "{events} events from {streams} stream(s), {pages} page(s), {throttles} throttled request(s), \
             {rules} rule(s), {n} alert(s); {start} to {end}",
            events = meta.events,
            streams = meta.streams,
            pages = meta.pages,
            throttles = meta.throttles,
            rules = meta.rules,
            n = alerts.len(),
            start = rfc3339(meta.start),
            end = rfc3339(meta.end),
        );
        fill(
            TEMPLATE,
            &[
                (
                    "title",
                    &esc(&format!("logwarden backtest: {}", self.log_group)),
                ),
                ("head", &esc(&head)),
                ("rows", &rows),
                ("count", &alerts.len().to_string()),
                ("style", STYLE),
                ("script", SCRIPT),
                ("data", &data),
            ],
        )
    }
}

/// A baseline rule's chart: one point per REPORT (sampled down to
/// [`MAX_POINTS`], every anomaly kept), or `None` when there is none.
fn baseline_chart(track: &BaselineTrack, function: &str) -> Option<Value> {
    if track.points.is_empty() {
        return None;
    }
    let b = &track.config;
    let (metric, unit, what) = match b.metric {
        Metric::Duration => ("duration", "ms", "Duration"),
        Metric::Memory => ("memory", "MB", "Max memory used"),
    };
    let stride = track.points.len().div_ceil(MAX_POINTS).max(1);
    let points: Vec<Value> = track
        .points
        .iter()
        .enumerate()
        .filter(|(i, p)| i % stride == 0 || p.anomaly)
        .map(|(_, p)| {
            let (lo, hi) = match (p.mean, p.spread) {
                (Some(m), Some(s)) => (Some(round2((m - s).max(0.0))), Some(round2(m + s))),
                _ => (None, None),
            };
            // The level the detector flags from: `factor` × typical and
            // `sigmas` spreads above it, whichever is higher.
            let threshold = p
                .mean
                .zip(p.spread)
                .map(|(m, s)| round2((b.factor * m).max(m + b.sigmas * s)));
            json!({
                "t": p.t, "v": p.v, "mean": p.mean, "lo": lo, "hi": hi,
                "threshold": threshold, "anomaly": p.anomaly, "request_id": p.request_id,
            })
        })
        .collect();
    Some(json!({
        "metric": metric,
        "rule": track.rule.id,
        "title": format!("{what} of {function} ({unit}) — rule {}", track.rule.id),
        "unit": unit,
        "sampled_every": stride,
        "points": points,
    }))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Bucket width for counts over `span`: the smallest of 1 min, 5 min, 15 min,
/// 1 h, 6 h, 1 day giving at most 120 buckets.
fn bucket_ms(span: Millis) -> Millis {
    const STEPS: [Millis; 6] = [60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 120)
        .unwrap_or(86_400_000)
}

fn span_text(ms: Millis) -> String {
    match ms {
        m if m % 86_400_000 == 0 => format!("{} day", m / 86_400_000),
        m if m % 3_600_000 == 0 => format!("{} h", m / 3_600_000),
        m => format!("{} min", m / 60_000),
    }
}

/// Substitute `{{name}}` placeholders in one pass, so text from logs that
/// happens to contain a placeholder is never substituted itself.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find("}}").and_then(|j| {
            values
                .iter()
                .find(|(k, _)| *k == &after[..j])
                .map(|v| (j, v.1))
        }) {
            Some((j, v)) => {
                out.push_str(v);
                rest = &after[j + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// HTML-escape text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside `<script type="application/json">`: no `<`, `>` or `&`
/// (so no `</script>` or `<!--`), written as JSON escapes.
fn script_json(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

const TEMPLATE: &str = include_str!("report.html");

const STYLE: &str = include_str!("report.css");

/// Draws the charts from the embedded data. Only `textContent` and
/// attributes are set: nothing from the data is parsed as HTML.
const SCRIPT: &str = include_str!("report.js");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_log_text_inert() {
        assert_eq!(
            esc(r#"<img src=x onerror="a">&'"#),
            "&lt;img src=x onerror=&quot;a&quot;&gt;&amp;&#39;"
        );
        let v = json!({"k": "</script><script>alert(1)</script>"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>'), "{s}");
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn placeholders_in_values_are_not_substituted() {
        let out = fill(
            "<p>{{a}}</p><i>{{b}}</i>{{c}}",
            &[("a", "{{b}}"), ("b", "x")],
        );
        assert_eq!(out, "<p>{{b}}</p><i>x</i>{{c}}");
    }

    /// sshd lines in a group that is not a Lambda function: no REPORT line,
    /// so the duration and memory rules get no chart, only a mention.
    #[test]
    fn rules_without_data_get_no_chart_on_a_non_lambda_group() {
        use crate::ingest::{LogEvent, MessageType};
        let rules = RuleSet::builtin().unwrap();
        let mut rec = Recorder::new(&rules, "/var/log/secure");
        let lines: Vec<String> = (0..3)
            .map(|i| format!("sshd[{i}]: Failed password for root from 203.0.113.7 port {i} ssh2"))
            .collect();
        rec.batch(&Payload {
            region: None,
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: "/var/log/secure".into(),
            log_stream: "bastion".into(),
            subscription_filters: vec![],
            log_events: lines
                .iter()
                .enumerate()
                .map(|(i, l)| LogEvent {
                    id: i.to_string().into(),
                    timestamp: 1_795_341_600_000 + i as i64 * 3_600_000,
                    message: l.as_str().into(),
                })
                .collect(),
        });
        let data = rec.data(&ReportMeta::default());
        assert_eq!(data["charts"], json!([]));
        let auth = data["auth"].as_array().unwrap();
        assert_eq!(auth.len(), 1);
        assert_eq!(auth[0]["rule"], "failed-auth-burst");
        // One point per bucket with lines, none for the empty hours between.
        assert_eq!(auth[0]["series"][0]["points"].as_array().unwrap().len(), 3);
        let omitted: Vec<&str> = data["omitted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["rule"].as_str().unwrap())
            .collect();
        for rule in ["duration-anomaly", "memory-anomaly"] {
            assert!(omitted.contains(&rule), "{omitted:?}");
        }
        assert!(!omitted.contains(&"failed-auth-burst"), "{omitted:?}");
    }

    #[test]
    fn buckets_fit_the_span() {
        assert_eq!(bucket_ms(30 * 60_000), 60_000);
        assert_eq!(bucket_ms(24 * 3_600_000), 900_000);
        assert_eq!(bucket_ms(30 * 86_400_000), 21_600_000);
    }
}
