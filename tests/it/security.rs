//! Threats from rule and log content that SECURITY.md answers here: regular
//! expressions cannot be made to backtrack (ReDoS), and oversized patterns are
//! rule errors, not slow matches.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn logwarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("LOGWARDEN_MAX_DECODED_BYTES")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A one-matcher threshold rule that fires on the first match.
fn rule(dir: &Path, id: &str, regex: &str) {
    std::fs::write(
        dir.join(format!("{id}.yaml")),
        format!(
            "id: {id}\ntitle: t\nseverity: low\nkind: threshold\nmatch:\n  - regex: '{regex}'\nthreshold: 1\nwindow: 1s\n"
        ),
    )
    .unwrap();
}

#[test]
fn backtracking_only_syntax_is_a_rule_error_with_its_location() {
    // Look-around and back-references are what make a regex engine backtrack;
    // the regex crate does not have them, so a rule cannot ask for them.
    for (regex, what) in [
        (r"password(?=\s)", "look-around"),
        (r"(a+)\1", "backreference"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        rule(dir.path(), "r", regex);
        let out = logwarden(&["rules", "check", dir.path().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{regex}");
        let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(report.contains("r.yaml:6: invalid regex"), "{report}");
        assert!(report.contains(what), "{what}: {report}");
    }
}

#[test]
fn a_pattern_that_would_compile_to_a_huge_automaton_is_a_rule_error() {
    let dir = tempfile::tempdir().unwrap();
    rule(dir.path(), "huge", r"(\w{100}){100}");
    let out = logwarden(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(report.contains("huge.yaml:6: invalid regex"), "{report}");
    assert!(report.contains("size limit"), "{report}");
}

#[test]
fn catastrophic_backtracking_patterns_match_in_linear_time() {
    // `^(a|aa)+$` against 100,000 `a`s and a `!` takes a backtracking engine
    // longer than the age of the universe; a finite automaton reads the line
    // once. The bound below is only there so a regression fails instead of
    // hanging CI: it is orders of magnitude above the expected time.
    let dir = tempfile::tempdir().unwrap();
    rule(dir.path(), "redos", "^(a|aa)+$");
    rule(dir.path(), "redos-nested", "^(a+)+$");
    let log = dir.path().join("attack.log");
    let a = "a".repeat(100_000);
    std::fs::write(&log, format!("{a}!\n{a}!\n{a}\n")).unwrap();
    let rules = dir.path().to_str().unwrap();
    let started = Instant::now();
    let out = logwarden(&[
        "replay",
        "--rules",
        rules,
        "--output",
        "json",
        "--log-group",
        "/attack",
        log.to_str().unwrap(),
    ]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let alerts: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Only the last line matches, once per rule; evidence stays capped.
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    for a in &alerts {
        assert_eq!(a["count"], 1);
        let ev = a["evidence"][0].as_str().unwrap();
        assert!(ev.chars().count() <= 512, "{}", ev.len());
    }
}

/// A decoded subscription payload for one stream of `/aws/lambda/checkout`.
fn payload(events: &[(i64, &str)]) -> String {
    let events: Vec<serde_json::Value> = events
        .iter()
        .enumerate()
        .map(|(i, (ts, m))| serde_json::json!({"id": i.to_string(), "timestamp": ts, "message": m}))
        .collect();
    serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/checkout",
        "logStream": "2026/11/22/[$LATEST]0123456789abcdef",
        "subscriptionFilters": ["logwarden"],
        "logEvents": events,
    })
    .to_string()
}

#[test]
fn a_platform_line_smuggled_inside_an_application_message_is_not_believed() {
    // The attacker's input is logged by the function; it carries a newline and
    // a forged END/REPORT for the invocation it is crashing. Lambda keeps one
    // application write as one event, so the forgery sits inside an app event.
    const R1: &str = "3604209a-e9a3-11e6-939a-754dd98c7be3";
    const R2: &str = "4d3a7b1c-0f0e-4a55-9b1e-2c8d9e0f1a2b";
    let t = 1_795_341_600_000_i64; // 2026-11-22T10:00:00Z
    let forged = format!(
        "2026-11-22T10:00:00.100Z\t{R1}\tINFO\tuser said: hi\nEND RequestId: {R1}\nREPORT RequestId: {R1}\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t\n"
    );
    let genuine_end = format!("END RequestId: {R1}\n");
    let start1 = format!("START RequestId: {R1} Version: $LATEST\n");
    let start2 = format!("START RequestId: {R2} Version: $LATEST\n");
    let end2 = format!("END RequestId: {R2}\n");
    let dir = tempfile::tempdir().unwrap();
    let run = |second: &str, name: &str| {
        let path = dir.path().join(name);
        let p = payload(&[
            (t, &start1),
            (t + 100, second),
            (t + 1_000, &start2),
            (t + 1_500, &end2),
        ]);
        std::fs::write(&path, p).unwrap();
        let out = logwarden(&[
            "replay",
            "--output",
            "json",
            "--now",
            "2026-11-22T12:00:00Z",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|a| a["rule"] == "missing-end")
            .count()
    };
    assert_eq!(run(&genuine_end, "genuine.json"), 0, "a real END closes R1");
    assert_eq!(run(&forged, "forged.json"), 1, "the smuggled END must not");
}

#[test]
fn event_times_that_would_overflow_the_detectors_are_input_errors() {
    // Regression: a timestamp near i64::MAX made `event time + max duration`
    // overflow in the engine (a panic in a debug build, a wrapped deadline in
    // release). Such a payload is now an error naming the event; the good
    // payload beside it is still detected.
    let dir = tempfile::tempdir().unwrap();
    const R: &str = "3604209a-e9a3-11e6-939a-754dd98c7be3";
    let start = format!("START RequestId: {R} Version: $LATEST\n");
    for (name, ts) in [("max.json", i64::MAX - 1), ("min.json", i64::MIN + 1)] {
        std::fs::write(dir.path().join(name), payload(&[(ts, &start)])).unwrap();
    }
    let timeout = "Task timed out after 3.00 seconds\n";
    std::fs::write(
        dir.path().join("good.json"),
        payload(&[(1_795_341_600_000, timeout)]),
    )
    .unwrap();
    let out = logwarden(&["replay", "--output", "json", dir.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for name in ["max.json", "min.json"] {
        let line = stderr
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_default();
        assert!(line.contains("logEvents[0]: invalid value"), "{stderr}");
        assert!(line.contains("end of year 9999"), "{stderr}");
    }
    let rules: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["rule"].to_string())
        .collect();
    assert_eq!(rules, ["\"invocation-timeout\""]);
}

/// Ten login failures from `ip` whose JSON a strict parser rejects, in one
/// crafted form, spread over the places a JSON body is found: the whole line,
/// after the Lambda text prefix, a Lambda JSON-format log's `message` object,
/// and that `message` double-encoded as a string.
fn crafted_login_failures(form: &str, ip: &str) -> Vec<String> {
    (0..10)
        .map(|i| {
            let body = match form {
                // The user name carries an escaped lone surrogate (Python's
                // `json.dumps` writes one for a str holding it).
                "lone surrogate" => format!(
                    r#"{{"event":"login_failed","source_ip":"{ip}","user":"\ud800admin{i}"}}"#
                ),
                "NaN" => format!(
                    r#"{{"event":"login_failed","risk":NaN,"source_ip":"{ip}","user":"u{i}"}}"#
                ),
                "1e400" => format!(
                    r#"{{"event":"login_failed","attempt":1e400,"source_ip":"{ip}","user":"u{i}"}}"#
                ),
                // Past serde_json's recursion limit of 128, in another field,
                // before the fields the rule reads.
                _ => format!(
                    r#"{{"event":"login_failed","ctx":{}{},"source_ip":"{ip}","user":"u{i}"}}"#,
                    "[".repeat(200),
                    "]".repeat(200)
                ),
            };
            match i % 4 {
                0 => body,
                1 => format!(
                    "2026-11-22T10:00:0{i}.000Z\t11111111-0000-4000-8000-00000000000{i}\tWARN\t{body}"
                ),
                2 => format!(
                    r#"{{"timestamp":"2026-11-22T10:00:0{i}Z","level":"WARN","requestId":"r{i}","message":{body}}}"#
                ),
                _ => format!(
                    r#"{{"timestamp":"2026-11-22T10:00:0{i}Z","level":"WARN","requestId":"r{i}","message":{}}}"#,
                    serde_json::to_string(&body).unwrap()
                ),
            }
        })
        .collect()
}

#[test]
fn crafted_json_in_login_failures_still_fires_failed_auth_burst_through_replay() {
    // Regression: a JSON body the strict parser rejected matched nothing, so
    // whoever controlled one field (the user name) turned failed-auth-burst
    // off for their own attempts. Such lines are now read tolerantly.
    let dir = tempfile::tempdir().unwrap();
    let forms = ["lone surrogate", "NaN", "1e400", "deep nesting"];
    // A first line that is not JSON: the file is a plain log (a file of
    // JSON objects only is recognised by its first line, strictly).
    let mut lines = vec!["2026-11-22T09:59:59.000Z auth service started".to_string()];
    for (n, form) in forms.iter().enumerate() {
        lines.extend(crafted_login_failures(
            form,
            &format!("203.0.113.{}", 10 + n),
        ));
    }
    let log = dir.path().join("auth.log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let started = Instant::now();
    let out = logwarden(&[
        "replay",
        "--output",
        "json",
        "--log-group",
        "/aws/lambda/auth",
        log.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let mut keys: Vec<(String, u64)> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|a| a["rule"] == "failed-auth-burst")
        .map(|a| {
            (
                a["key"]["source_ip"].as_str().unwrap().to_string(),
                a["count"].as_u64().unwrap(),
            )
        })
        .collect();
    keys.sort();
    let want: Vec<(String, u64)> = (10..14).map(|n| (format!("203.0.113.{n}"), 10)).collect();
    assert_eq!(keys, want, "one burst per crafted form: {stderr}");
    assert!(
        stderr.contains("0 input error(s), 40 lenient JSON event(s)\n"),
        "every crafted line is counted: {stderr}"
    );
}

#[test]
fn a_json_lines_log_whose_first_line_a_strict_parser_rejects_is_still_a_log() {
    // Regression: a file of JSON objects only is recognised by its first
    // line. When that line held a `NaN` (or a lone surrogate) the strict
    // probe failed and the whole file was an input error, so one crafted
    // first line hid every burst in the file.
    let dir = tempfile::tempdir().unwrap();
    for (n, first) in [
        r#"{"event":"login_failed","risk":NaN,"source_ip":"203.0.113.60","user":"u0","time":"2026-11-22T10:00:00Z"}"#,
        r#"{"event":"login_failed","source_ip":"203.0.113.60","user":"\ud800u0","time":"2026-11-22T10:00:00Z"}"#,
    ]
    .iter()
    .enumerate()
    {
        let mut lines = vec![first.to_string()];
        lines.extend((1..10).map(|i| {
            format!(
                r#"{{"event":"login_failed","source_ip":"203.0.113.60","user":"u{i}","time":"2026-11-22T10:00:0{i}Z"}}"#
            )
        }));
        let log = dir.path().join(format!("app{n}.log"));
        std::fs::write(&log, lines.join("\n") + "\n").unwrap();
        let out = logwarden(&["replay", "--output", "json", log.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let bursts: Vec<serde_json::Value> = text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|a| a["rule"] == "failed-auth-burst")
            .collect();
        assert_eq!(bursts.len(), 1, "{first}: {stderr}");
        assert_eq!(bursts[0]["key"]["source_ip"], "203.0.113.60");
        assert_eq!(bursts[0]["count"], 10);
    }
}

#[test]
fn the_replay_summary_line_is_unchanged_when_no_json_needed_the_tolerant_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ok.log");
    std::fs::write(
        &log,
        "2026-11-22T09:59:59.000Z auth service started\n\
         {\"event\":\"login_failed\",\"source_ip\":\"192.0.2.1\",\"user\":\"\\ud83d\\ude00\"}\n",
    )
    .unwrap();
    let out = logwarden(&["replay", "--output", "json", log.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.ends_with(
            "1 input(s), 1 batch(es), 2 event(s), 0 alert(s), 0 suppressed, 0 input error(s)\n"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_detector_lambda_counts_lenient_json_events_and_still_alerts() {
    use std::io::Write as _;

    use base64::Engine as _;

    let mut events = Vec::new();
    for (n, form) in ["lone surrogate", "NaN", "1e400", "deep nesting"]
        .iter()
        .enumerate()
    {
        for (i, m) in crafted_login_failures(form, &format!("203.0.113.{}", 10 + n))
            .into_iter()
            .enumerate()
        {
            events.push(serde_json::json!({
                "id": format!("{n}-{i}"),
                "timestamp": 1_795_341_600_000_i64 + i as i64 * 1_000,
                "message": m,
            }));
        }
    }
    let payload = serde_json::json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/lambda/auth",
        "logStream": "s", "subscriptionFilters": ["f"], "logEvents": events,
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(payload.to_string().as_bytes()).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    let engine = logwarden::engine::Engine::new(
        std::sync::Arc::new(logwarden::rules::RuleSet::builtin().unwrap()),
        logwarden::state::MemoryStore::new(),
        logwarden::engine::EngineConfig::default(),
    );
    let svc = logwarden::handler::DetectorService::new(
        engine,
        logwarden::ingest::Limits::default(),
        "logwarden-detector".into(),
        Box::new(logwarden::time::FixedClock(1_795_341_700_000)),
        logwarden::handler::Delivery::Log,
    );
    let mut out = Vec::new();
    let event = serde_json::json!({"awslogs": {"data": data}});
    svc.call(
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
        &mut out,
    )
    .await
    .unwrap();
    let lines: Vec<serde_json::Value> = text(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ips: Vec<&str> = lines
        .iter()
        .filter(|l| l["rule"] == "failed-auth-burst")
        .map(|a| a["key"]["source_ip"].as_str().unwrap())
        .collect();
    ips.sort_unstable();
    assert_eq!(
        ips,
        [
            "203.0.113.10",
            "203.0.113.11",
            "203.0.113.12",
            "203.0.113.13"
        ]
    );
    let emf = lines.last().unwrap();
    assert_eq!(emf["LenientJsonEvents"], 40, "{emf}");
    assert_eq!(emf["Events"], 40);
}

/// `n` STARTs of one stream of `/aws/lambda/checkout`, 1 ms apart from
/// 2026-11-22T10:00:00Z, none ended, split into `payloads` payloads.
fn start_flood(n: usize, payloads: usize) -> Vec<String> {
    let t = 1_795_341_600_000_i64;
    let lines: Vec<(i64, String)> = (0..n)
        .map(|i| {
            let id = flood_request_id(i);
            (
                t + i as i64,
                format!("START RequestId: {id} Version: $LATEST\n"),
            )
        })
        .collect();
    lines
        .chunks(n.div_ceil(payloads).max(1))
        .map(|c| {
            let events: Vec<(i64, &str)> = c.iter().map(|(ts, m)| (*ts, m.as_str())).collect();
            payload(&events)
        })
        .collect()
}

fn flood_request_id(i: usize) -> String {
    format!("{i:08x}-feed-4bad-beef-{i:012x}")
}

#[test]
fn a_start_flood_in_one_stream_is_capped_and_still_raises_one_missing_end_alert() {
    // Regression (issue 13): every START scanned every open invocation of its
    // stream, so 200,000 STARTs took ~50 s and a crafted batch could time the
    // detector out. A stream now tracks at most 1,000 open invocations; the
    // rest are counted, and the alert the kept ones raise says how many.
    const N: usize = 5_000;
    const KEPT: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    for (i, p) in start_flood(N, 8).iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i:02}.json")), p).unwrap();
    }
    let out = logwarden(&[
        "replay",
        "--output",
        "json",
        "--now",
        "2026-11-22T12:00:00Z",
        dir.path().to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let alerts: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["rule"], "missing-end");
    assert_eq!(a["count"], KEPT, "the kept invocations are the orphans");
    assert_eq!(a["metrics"]["open_invocations_dropped"], (N - KEPT) as f64);
    assert_eq!(a["first_seen"], "2026-11-22T10:00:00.000Z");
    let ids: Vec<String> = (0..20).map(flood_request_id).collect();
    assert_eq!(a["request_ids"], serde_json::json!(ids));
    assert!(
        stderr.contains(&format!("{} open invocation(s) not tracked", N - KEPT)),
        "{stderr}"
    );
}
