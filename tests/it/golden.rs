//! Golden tests: fixtures in, expected alerts out, compared as data.
//!
//! `LOGWARDEN_BLESS=1 cargo test --test it golden::` rewrites the expectations
//! (only `1` does; `0` or unset compares); review the diff before committing it.

use crate::support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use logwarden::alert::Alert;
use logwarden::engine::EngineConfig;
use logwarden::ingest::{self, FileOptions, Limits};
use logwarden::replay::{ReplayOptions, replay};
use logwarden::rules::RuleSet;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(paths: &[PathBuf]) -> (Vec<Alert>, logwarden::replay::ReplaySummary) {
    run_with(paths, 0, false)
}

/// Replay with `threads` decoders, optionally on the reference payload parser.
fn run_with(
    paths: &[PathBuf],
    threads: usize,
    reference_parser: bool,
) -> (Vec<Alert>, logwarden::replay::ReplaySummary) {
    let opts = ReplayOptions {
        limits: Limits {
            reference_parser,
            ..Limits::default()
        },
        log_group: None,
        log_stream: None,
        now: None,
        engine: EngineConfig {
            region: "eu-west-1".into(),
            ..EngineConfig::default()
        },
        threads,
        year: None,
    };
    let mut alerts = Vec::new();
    let summary = replay(
        Arc::new(RuleSet::builtin().unwrap()),
        paths,
        &opts,
        &mut |a| {
            alerts.extend_from_slice(a);
            Ok(())
        },
    )
    .unwrap();
    (alerts, summary)
}

fn check_golden(name: &str, alerts: &[Alert]) {
    let path = root().join("tests/golden").join(name);
    // Two empty lists compare equal: a run that raised nothing (rules not
    // loaded, fixtures not found) must fail here, not match an empty file.
    assert!(
        !alerts.is_empty(),
        "no alerts to compare with {}",
        path.display()
    );
    let got: Value = serde_json::to_value(alerts).unwrap();
    if support::bless() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        want.as_array().is_some_and(|w| !w.is_empty()),
        "{} holds no alerts",
        path.display()
    );
    if got != want {
        let got_rules: Vec<&Value> = got.as_array().unwrap().iter().map(|a| &a["rule"]).collect();
        let want_rules: Vec<&Value> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["rule"])
            .collect();
        panic!(
            "alerts differ from {}\n got rules:  {got_rules:?}\n want rules: {want_rules:?}\n got: {}",
            path.display(),
            serde_json::to_string_pretty(&got).unwrap()
        );
    }
}

/// `LOGWARDEN_BLESS=0` used to bless too (any value did), and a blessed run
/// compares the file with itself: only `1` may rewrite the goldens.
#[test]
fn only_bless_1_rewrites_the_goldens() {
    use std::ffi::OsStr;
    let on = |v: Option<&str>| support::flag_value("LOGWARDEN_BLESS", v.map(OsStr::new));
    assert!(on(Some("1")));
    for off in [None, Some(""), Some("0")] {
        assert!(!on(off), "{off:?} blesses");
    }
    for typo in ["true", "yes", "2", " 1"] {
        let r = std::panic::catch_unwind(|| on(Some(typo)));
        assert!(r.is_err(), "{typo:?} was taken as on or off");
    }
}

#[test]
fn fixtures_give_the_expected_alerts() {
    let (alerts, summary) = run(&[root().join("fixtures")]);
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    check_golden("fixtures.json", &alerts);
    // Every built-in rule is shown by the demo.
    let set = RuleSet::builtin().unwrap();
    for r in &set.rules {
        assert!(
            alerts.iter().any(|a| a.rule == r.id),
            "no fixture alert for {}",
            r.id
        );
    }
}

#[test]
fn controls_stay_silent() {
    let (alerts, _) = run(&[root().join("fixtures")]);
    let silent = [
        "/aws/lambda/inventory", // ±20 % jitter
    ];
    for g in silent {
        assert!(alerts.iter().all(|a| a.log_group != g), "{g} alerted");
    }
    // checkout: its 1.5x blip stays silent; only the 30 s run alerts.
    let checkout: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.log_group == "/aws/lambda/checkout")
        .collect();
    assert_eq!(checkout.len(), 1);
    assert_eq!(checkout[0].metrics["duration_ms"], 30412.0);
    // auth-api: 192.0.2.55 failed only twice; successful logins never count.
    assert!(
        alerts
            .iter()
            .all(|a| a.key.get("source_ip").map(String::as_str) != Some("192.0.2.55"))
    );
    // upload-handler: START/REPORT split across files and the still-running
    // invocation at the end are silent; only the orphan alerts.
    // The orphan fires once and, once its stream completes an invocation
    // again, resolves once under the same id.
    let (orphans, resolved): (Vec<&Alert>, Vec<&Alert>) = alerts
        .iter()
        .filter(|a| a.rule == "missing-end")
        .partition(|a| !a.status.is_resolved());
    assert_eq!(orphans.len(), 1);
    assert_eq!(
        orphans[0].request_ids,
        ["9b2f0c1e-0bad-4a6e-9c1d-000000000bad"]
    );
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].id, orphans[0].id);
}

#[test]
fn secrets_in_the_fixtures_never_reach_an_alert() {
    let (alerts, _) = run(&[root().join("fixtures")]);
    let secret: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.rule == "secret-in-logs")
        .collect();
    let kinds: Vec<&str> = secret.iter().map(|a| a.key["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["aws-access-key-id", "aws-secret-key", "url-password"]
    );
    let json = serde_json::to_string(&alerts).unwrap();
    for planted in [
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "Tr0ub4dor-3",
    ] {
        assert!(
            std::fs::read_to_string(root().join("fixtures/security/billing-sync-secrets.json"))
                .unwrap()
                .contains(planted),
            "the fixture plants {planted}"
        );
        assert!(!json.contains(planted), "{planted} reached an alert");
    }
    for a in secret {
        assert_eq!(a.function.as_deref(), Some("billing-sync"));
        assert!(a.log_stream.is_some() && !a.request_ids.is_empty());
    }
}

#[test]
fn alert_json_holds_the_contract_fields() {
    let (alerts, _) = run(&[root().join("fixtures")]);
    for a in &alerts {
        let v = serde_json::to_value(a).unwrap();
        for field in [
            "id",
            "rule",
            "kind",
            "severity",
            "title",
            "log_group",
            "key",
            "count",
            "first_seen",
            "last_seen",
        ] {
            assert!(v.get(field).is_some(), "{} lacks {field}", a.rule);
        }
        assert!(a.title.chars().count() < 100);
        assert!(a.evidence.len() <= 5 && a.evidence.iter().all(|e| e.chars().count() <= 512));
        assert!(["low", "medium", "high", "critical"].contains(&a.severity.as_str()));
        assert_eq!(a.id.len(), 32);
        assert!(
            a.links
                .log_stream
                .as_deref()
                .unwrap()
                .starts_with("https://eu-west-1.console.aws.amazon.com/")
        );
    }
}

#[test]
fn replaying_twice_in_one_run_alerts_once() {
    let dir = root().join("fixtures/failures");
    let (alerts, _) = run(&[dir.clone(), dir]);
    let (once, _) = run(&[root().join("fixtures/failures")]);
    assert_eq!(alerts, once);
}

fn payload_value(p: &ingest::Payload<'_>) -> Value {
    serde_json::json!({
        "messageType": format!("{:?}", p.message_type),
        "owner": p.owner, "logGroup": p.log_group, "logStream": p.log_stream,
        "events": p.log_events.iter().map(|e| serde_json::json!([e.id, e.timestamp, e.message])).collect::<Vec<_>>(),
    })
}

fn payloads_of(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    ingest::for_each_payload(&bytes, &name, &FileOptions::default(), &mut |origin, p| {
        out.push(payload_value(
            p.unwrap_or_else(|e| panic!("{name}: {origin}: {e}")),
        ));
    })
    .unwrap();
    out
}

/// The committed envelopes are what scripts/envelopes.py makes of their
/// readable `.payload` sources: they cannot drift apart.
#[test]
fn envelopes_decode_to_their_readable_sources() {
    let dir = root().join("fixtures/envelopes");
    let src = |n: &str| payloads_of(&dir.join(n));
    assert_eq!(
        payloads_of(&dir.join("awslogs-sso-callback.json")),
        src("awslogs-sso-callback.payload")
    );
    assert_eq!(
        payloads_of(&dir.join("raw-apigateway-401.gz")),
        src("raw-apigateway-401.payload")
    );
    assert_eq!(
        payloads_of(&dir.join("firehose-event.json")),
        src("firehose-quote-java.payload")
    );
    let mut kinesis = src("kinesis-0-pdf-render.payload");
    kinesis.extend(src("kinesis-1-control.payload"));
    assert_eq!(payloads_of(&dir.join("kinesis-event.json")), kinesis);
}

/// The optimised replay (fast payload parser, parallel decoding) against the
/// straightforward one (serde_json only, one thread) on the fixtures: same
/// alerts, same totals.
#[test]
fn fast_paths_match_the_reference_path_on_the_fixtures() {
    let paths = [root().join("fixtures")];
    let (want, want_summary) = run_with(&paths, 1, true);
    for threads in [1, 2, 3] {
        let (got, got_summary) = run_with(&paths, threads, false);
        assert_eq!(got, want, "threads {threads}");
        assert_eq!(got_summary, want_summary, "threads {threads}");
    }
    assert!(want.len() >= 10, "the fixtures alert");
}

#[path = "../../benches/common/mod.rs"]
mod common;

/// A generated corpus shaped like the benchmark's (text and JSON log formats,
/// three streams, batches in time order per stream) as `awslogs` events.
fn generated_corpus(dir: &Path) -> Vec<String> {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut jsons = Vec::new();
    for k in 0..8u64 {
        let format = if k % 2 == 0 {
            common::Format::Text
        } else {
            common::Format::Json
        };
        let events = common::events(format, k + 1, 800, 400_000);
        let shift = (k / 4) as i64 * 3_600_000;
        let stream = format!("2026/11/22/[$LATEST]stream{}", k % 4);
        let json = serde_json::json!({
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": common::LOG_GROUP,
            "logStream": stream,
            "subscriptionFilters": ["logwarden"],
            "logEvents": events.iter().enumerate().map(|(i, e)| serde_json::json!({
                "id": format!("37{:020}{i:06}", e.timestamp + shift),
                "timestamp": e.timestamp + shift,
                "message": e.message,
            })).collect::<Vec<_>>(),
        })
        .to_string();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json.as_bytes()).unwrap();
        let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        let event = serde_json::json!({"awslogs": {"data": data}}).to_string();
        std::fs::write(dir.join(format!("batch-{k:04}.json")), event).unwrap();
        jsons.push(json);
    }
    jsons
}

/// The same on generated batches like the benchmark's, where the fast parser
/// meets every escape the Lambda formats produce: each payload parses to the
/// same value, and the replays give the same alerts.
#[test]
fn fast_paths_match_the_reference_path_on_a_generated_corpus() {
    let dir = tempfile::tempdir().unwrap();
    for json in generated_corpus(dir.path()) {
        let fast = ingest::parse_payload_owned(json.as_bytes()).unwrap();
        let reference = ingest::parse_payload_reference(&json).unwrap();
        assert_eq!(fast.view(), reference);
    }
    let paths = [dir.path().to_path_buf()];
    let (want, want_summary) = run_with(&paths, 1, true);
    let (got, got_summary) = run_with(&paths, 2, false);
    assert!(want_summary.errors.is_empty(), "{:?}", want_summary.errors);
    assert_eq!(got_summary, want_summary);
    assert_eq!(got, want);
    let rules: std::collections::BTreeSet<&str> = want.iter().map(|a| a.rule.as_str()).collect();
    assert!(
        rules.len() >= 2,
        "the corpus alerts on several rules: {rules:?}"
    );
}

/// When delivery fails, a parallel replay stops with the error: the decoders
/// waiting ahead are released, nothing hangs.
#[test]
fn a_delivery_failure_stops_a_parallel_replay() {
    let opts = ReplayOptions {
        limits: Limits::default(),
        log_group: None,
        log_stream: None,
        now: None,
        engine: EngineConfig::default(),
        threads: 2,
        year: None,
    };
    let paths = [root().join("fixtures")];
    let (mut failed, mut after_failure) = (false, 0);
    let err = replay(
        Arc::new(RuleSet::builtin().unwrap()),
        &paths,
        &opts,
        &mut |alerts| {
            if failed {
                after_failure += 1;
            }
            if alerts.is_empty() {
                Ok(())
            } else {
                failed = true;
                Err(std::io::Error::other("stdout closed"))
            }
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("stdout closed"), "{err}");
    assert_eq!(after_failure, 0, "replay went on after the failure");
}

#[test]
fn spike_and_leak_fire_once_and_their_controls_stay_silent() {
    let (alerts, _) = run(&[root().join("fixtures")]);
    // image-api: ~10 a minute for half an hour (±20 % jitter) is silent; the
    // 400 extra invocations of minute 30 are one alert, priced.
    let (spikes, resolved): (Vec<&Alert>, Vec<&Alert>) = alerts
        .iter()
        .filter(|a| a.rule == "invocation-spike")
        .partition(|a| !a.status.is_resolved());
    assert_eq!(spikes.len(), 1);
    // Two normal minutes after it, the spike resolves, once, with its count.
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0].id.as_str(), resolved[0].count),
        (spikes[0].id.as_str(), spikes[0].count)
    );
    let s = spikes[0];
    assert_eq!(s.log_group, "/aws/lambda/image-api");
    assert_eq!(s.metrics["rate_per_min"], s.count as f64);
    assert!(s.count >= 400, "{}", s.count);
    let base = s.metrics["baseline_per_min"];
    assert!((8.0..=12.0).contains(&base), "{base}");
    // 512 MB × ~240 ms billed at the x86_64 price, plus the request price.
    let per_invocation = 0.5 * s.metrics["avg_billed_ms"] / 1000.0 * 0.0000166667 + 0.0000002;
    let want = (s.metrics["rate_per_min"] - base) * 60.0 * per_invocation;
    assert!(
        (s.metrics["projected_extra_cost_per_hour_usd"] - want).abs() < 0.0001,
        "{:?}",
        s.metrics
    );
    assert!(s.summary.contains("more per hour"), "{}", s.summary);
    // report-cache: the garbage-collected environment is silent, the leaking one alerts once.
    let leaks: Vec<&Alert> = alerts.iter().filter(|a| a.rule == "memory-leak").collect();
    assert_eq!(leaks.len(), 1);
    assert_eq!(
        leaks[0].log_stream.as_deref(),
        Some("2026/11/22/[$LATEST]1eac1eac1eac1eac1eac1eac1eac1eac")
    );
    for m in [
        "slope_mb_per_invocation",
        "current_mb",
        "memory_size_mb",
        "invocations_to_limit",
    ] {
        assert!(
            leaks[0].metrics.contains_key(m),
            "{m}: {:?}",
            leaks[0].metrics
        );
    }
    assert!(
        alerts
            .iter()
            .filter(|a| a.log_group == "/aws/lambda/report-cache")
            .all(|a| a.rule == "memory-leak"),
        "only the leak alerts for report-cache"
    );
}
