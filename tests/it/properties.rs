//! Property tests for the surfaces the fuzzer covers (`fuzz/`): envelope
//! decoding, the platform parser and rule-file loading; and the replay of every
//! input the fuzzer ever crashed on (`tests/data/fuzz-regressions/<target>/`).
//!
//! The checks each generated input must pass are the fuzz targets' own
//! (`fuzz/oracles.rs`, included below), so a property here and a fuzz run
//! mean the same thing; generation adds what random bytes rarely reach:
//! valid payloads, near-valid payloads, and platform lines with known values.

#[allow(dead_code)] // not every check is used here
#[path = "../../fuzz/oracles.rs"]
mod oracles;

use std::borrow::Cow;
use std::path::Path;

use base64::Engine as _;
use logwarden::ingest::{
    InputForm, LogEvent, MAX_ABS_TIMESTAMP_MS as MAX_TS, MessageType, Payload,
};
use logwarden::platform::{self, Record, Report, Status};
use logwarden::rules::{BUILTIN, RuleSet};
use proptest::prelude::*;
use serde_json::json;

// ---- envelope decoding -------------------------------------------------------

/// Text that exercises the escapes of the JSON writer and readers: quotes,
/// backslashes, slashes, control characters, non-ASCII and astral characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[ -~]{0,40}",
        1 => any::<String>(),
        1 => prop::collection::vec(
            prop::sample::select(vec!["\"", "\\", "/", "\n", "\t", "\u{1}", "\u{7f}", "é", "€", "😀", "\u{2028}", "a"]),
            0..20
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn payload() -> impl Strategy<Value = Payload<'static>> {
    let event =
        ("[0-9]{1,56}", -MAX_TS..=MAX_TS, text()).prop_map(|(id, timestamp, message)| LogEvent {
            id: Cow::Owned(id),
            timestamp,
            message: Cow::Owned(message),
        });
    (
        prop::bool::weighted(0.9),
        "[0-9]{12}",
        text(),
        text(),
        prop::collection::vec(text(), 0..3),
        prop::collection::vec(event, 0..12),
    )
        .prop_map(
            |(data, owner, group, stream, filters, log_events)| Payload {
                region: None,
                message_type: if data {
                    MessageType::Data
                } else {
                    MessageType::Control
                },
                owner: Cow::Owned(owner),
                log_group: Cow::Owned(group),
                log_stream: Cow::Owned(stream),
                subscription_filters: filters.into_iter().map(Cow::Owned).collect(),
                log_events,
            },
        )
}

/// How a payload is written: compact or pretty, `/` escaped as `\/` or not.
#[derive(Debug, Clone, Copy)]
struct Layout {
    pretty: bool,
    escape_slashes: bool,
}

fn layout() -> impl Strategy<Value = Layout> {
    (any::<bool>(), any::<bool>()).prop_map(|(pretty, escape_slashes)| Layout {
        pretty,
        escape_slashes,
    })
}

/// The payload as CloudWatch Logs writes it.
fn to_json(p: &Payload<'_>, layout: Layout) -> String {
    let value = json!({
        "messageType": match p.message_type {
            MessageType::Data => "DATA_MESSAGE",
            MessageType::Control => "CONTROL_MESSAGE",
        },
        "owner": p.owner,
        "logGroup": p.log_group,
        "logStream": p.log_stream,
        "subscriptionFilters": p.subscription_filters,
        "logEvents": p.log_events.iter().map(|e| json!({
            "id": e.id,
            "timestamp": e.timestamp,
            "message": e.message,
        })).collect::<Vec<_>>(),
    });
    let text = if layout.pretty {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    }
    .unwrap_or_default();
    // `/` only occurs inside strings, where `\/` is a valid escape.
    if layout.escape_slashes {
        text.replace('/', "\\/")
    } else {
        text
    }
}

fn gzip_base64(json: &str) -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json.as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
}

/// One edit of a text: a byte replaced, deleted or inserted (kept when the
/// result is still UTF-8 or not: both are inputs).
#[derive(Debug, Clone)]
enum Edit {
    Replace(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Insert(prop::sample::Index, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        prop::sample::select(b"{}[]\":,\\/0123456789-eE.tnu \n".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        any::<prop::sample::Index>().prop_map(Edit::Delete),
        (any::<prop::sample::Index>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        match e {
            Edit::Replace(i, c) if !b.is_empty() => {
                let i = i.index(b.len());
                b[i] = *c;
            }
            Edit::Delete(i) if !b.is_empty() => {
                let i = i.index(b.len());
                b.remove(i);
            }
            Edit::Insert(i, c) => {
                let i = i.index(b.len() + 1);
                b.insert(i, *c);
            }
            _ => {}
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes: no panic, fast path == reference path, payloads round-trip.
    #[test]
    fn envelope_checks_hold_for_arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..2048)) {
        oracles::envelope(&input);
    }

    /// A valid payload, gzipped and base64-encoded into an `awslogs` event and
    /// a two-record Kinesis event, decodes to the same events on both paths.
    #[test]
    fn generated_payload_round_trips_through_gzip_base64(p in payload(), layout in layout()) {
        let json = to_json(&p, layout);
        let data = gzip_base64(&json);
        for reference in [false, true] {
            let awslogs = format!(r#"{{"awslogs":{{"data":"{data}"}}}}"#);
            prop_assert_eq!(
                oracles::units(awslogs.as_bytes(), reference),
                Ok((InputForm::AwsLogs, vec![("awslogs".to_string(), Ok(p.clone()))]))
            );
            let kinesis = format!(
                r#"{{"Records":[{{"kinesis":{{"data":"{data}"}}}},{{"kinesis":{{"data":"{data}"}}}}]}}"#
            );
            prop_assert_eq!(
                oracles::units(kinesis.as_bytes(), reference),
                Ok((
                    InputForm::Kinesis,
                    vec![
                        ("record 0".to_string(), Ok(p.clone())),
                        ("record 1".to_string(), Ok(p.clone())),
                    ]
                ))
            );
        }
        // The decoded payload as a file of its own, through every check.
        oracles::envelope(json.as_bytes());
    }

    /// A valid payload with a few bytes edited: the fast scanner and serde_json
    /// agree on the payload or on the error (where random bytes rarely reach).
    #[test]
    fn fast_parser_agrees_with_reference_on_near_valid_payloads(
        p in payload(),
        layout in layout(),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let input = apply(&to_json(&p, layout), &edits);
        oracles::envelope(&input);
    }
}

// ---- platform parser -----------------------------------------------------------

fn request_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[A-Za-z0-9._:$-]{1,40}",
    ]
}

/// A duration as Lambda writes it in text (two decimals) and the value that text means.
fn text_ms() -> impl Strategy<Value = (String, f64)> {
    (0u64..10_000_000_000).prop_map(|hundredths| {
        let s = format!("{}.{:02}", hundredths / 100, hundredths % 100);
        let v = s.parse().unwrap();
        (s, v)
    })
}

#[derive(Debug, Clone)]
struct Metrics {
    request_id: String,
    duration: (String, f64),
    billed: u64,
    memory: u32,
    used: u32,
    init: Option<(String, f64)>,
}

fn metrics() -> impl Strategy<Value = Metrics> {
    (
        request_id(),
        text_ms(),
        0u64..1_000_000_000,
        128u32..=10_240,
        any::<prop::sample::Index>(),
        prop::option::of(text_ms()),
    )
        .prop_map(
            |(request_id, duration, billed, memory, used, init)| Metrics {
                request_id,
                duration,
                billed,
                memory,
                used: used.index(memory as usize + 1) as u32,
                init,
            },
        )
}

fn expected_report(m: &Metrics, duration: f64, init: Option<f64>) -> Report<'static> {
    Report {
        request_id: Cow::Owned(m.request_id.clone()),
        duration_ms: duration,
        billed_duration_ms: Some(m.billed),
        memory_size_mb: Some(m.memory),
        max_memory_used_mb: Some(m.used),
        init_duration_ms: init,
        restore_duration_ms: None,
        billed_restore_duration_ms: None,
        status: Status::Success,
        error_type: None,
        xray_trace_id: None,
    }
}

fn ending() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "\n", "\r\n", "\t\n"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// REPORT, START and END text lines rendered from generated values parse back to them.
    #[test]
    fn text_platform_lines_parse_back(m in metrics(), version in "[$A-Za-z0-9]{1,10}", end in ending()) {
        let init = m.init.as_ref().map(|(s, _)| format!("Init Duration: {s} ms\t")).unwrap_or_default();
        let line = format!(
            "REPORT RequestId: {}\tDuration: {} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t{init}{end}",
            m.request_id, m.duration.0, m.billed, m.memory, m.used
        );
        prop_assert_eq!(
            platform::parse(&line),
            Record::Report(expected_report(&m, m.duration.1, m.init.as_ref().map(|i| i.1)))
        );
        let start = format!("START RequestId: {} Version: {version}{end}", m.request_id);
        prop_assert_eq!(
            platform::parse(&start),
            Record::Start { request_id: Cow::Borrowed(m.request_id.as_str()), version: Some(Cow::Borrowed(version.as_str())) }
        );
        let end_line = format!("END RequestId: {}{end}", m.request_id);
        prop_assert_eq!(
            platform::parse(&end_line),
            Record::End { request_id: Cow::Borrowed(m.request_id.as_str()) }
        );
    }

    /// `platform.report` and `platform.start` JSON records rendered from
    /// generated values parse back to them. Durations are what Lambda writes
    /// (milliseconds with at most three decimals): serde_json, without its
    /// `float_roundtrip` feature, may read a 17-digit number one ulp off.
    #[test]
    fn json_platform_records_parse_back(
        m in metrics(),
        duration in (0u64..1_000_000_000_000).prop_map(|t| t as f64 / 1000.0),
        init in prop::option::of((0u64..1_000_000_000).prop_map(|t| t as f64 / 1000.0)),
        pretty in any::<bool>(),
    ) {
        let mut metrics = json!({
            "durationMs": duration,
            "billedDurationMs": m.billed,
            "memorySizeMB": m.memory,
            "maxMemoryUsedMB": m.used,
        });
        if let Some(i) = init {
            metrics["initDurationMs"] = json!(i);
        }
        let render = |v: serde_json::Value| {
            if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap()
        };
        let report = render(json!({
            "time": "2026-11-22T10:00:00.000Z",
            "type": "platform.report",
            "record": {"requestId": m.request_id, "status": "success", "metrics": metrics},
        }));
        prop_assert_eq!(platform::parse(&report), Record::Report(expected_report(&m, duration, init)));
        let start = render(json!({
            "time": "2026-11-22T10:00:00.000Z",
            "type": "platform.start",
            "record": {"requestId": m.request_id, "version": "$LATEST"},
        }));
        prop_assert_eq!(
            platform::parse(&start),
            Record::Start { request_id: Cow::Borrowed(m.request_id.as_str()), version: Some(Cow::Borrowed("$LATEST")) }
        );
    }

    /// Any text, and text built from platform-line fragments: no panic, line
    /// endings ignored, request ids present, durations finite and not negative.
    #[test]
    fn platform_checks_hold_for_arbitrary_text(s in any::<String>()) {
        oracles::platform(s.as_bytes());
    }

    #[test]
    fn platform_checks_hold_for_platform_like_text(parts in prop::collection::vec(prop::sample::select(vec![
        "START", "END", "REPORT", "INIT_START", "INIT_REPORT", "RESTORE_REPORT", "EXTENSION", "LOGS",
        "RequestId:", "Duration:", "Billed Duration:", "Memory Size:", "Max Memory Used:", "Init Duration:",
        "Status:", "timeout", "error", "Error Type:", "Runtime.OutOfMemory", "Task timed out after", "seconds",
        "ms", "MB", "1", "12.5", "-3", "1e309", "99999999999999999999999999", "NaN", ".", " ", "\t", "\\t", "\n",
        "2026-11-22T10:00:00.000Z", "abc-123", "{", "}", "\"type\":", "\"platform.report\"", "\"record\":",
        "\"requestId\":", "\"r\"", "\"metrics\":", "\"durationMs\":", ",", "[ERROR]", "INFO",
    ]), 0..24)) {
        oracles::platform(parts.concat().as_bytes());
    }
}

// ---- rule files ----------------------------------------------------------------

/// A built-in rule file with one line replaced, deleted or duplicated.
fn mutated_rule() -> impl Strategy<Value = String> {
    (
        prop::sample::select(BUILTIN.to_vec()),
        any::<prop::sample::Index>(),
        0..3u8,
        prop_oneof![
            Just(String::new()),
            "[ -~]{0,30}",
            prop::sample::select(vec![
                "threshold: -1",
                "window: 0s",
                "window: forever",
                "realert: 1y",
                "kind: rate",
                "kind: nope",
                "severity: urgent",
                "match: 7",
                "  - regex: '('",
                "  - regex: '(?P<x>a)'",
                "group_by: [nope]",
                "tests: {}",
                "tests:",
                "  - name: x",
                "    expect_alerts: -1",
                "    lines: [1, 2]",
                "id: Other_Id",
                "&a [*a, *a]",
                "- *b",
                "? [a]",
                "!!binary AA==",
                "factor: .nan",
                "sigmas: -.inf",
                "warmup: 1e9",
                "\t",
                "'",
                "\"",
                "{",
                "[",
            ])
            .prop_map(str::to_string),
        ],
    )
        .prop_map(|((_, text), at, op, new)| {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            let i = at
                .index(lines.len().max(1))
                .min(lines.len().saturating_sub(1));
            match op {
                0 if !lines.is_empty() => lines[i] = new,
                1 if !lines.is_empty() => {
                    lines.remove(i);
                }
                _ => {
                    let line = lines.get(i).cloned().unwrap_or_default();
                    lines.insert(i, line);
                }
            }
            lines.join("\n")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary text as a rule file: no panic; every error is `path:line: message`
    /// with the line inside the file.
    #[test]
    fn rule_loader_checks_hold_for_arbitrary_text(s in any::<String>()) {
        oracles::rules(s.as_bytes());
    }

    /// Near-valid rule files (a built-in rule with one line changed): the same,
    /// and a rule that still compiles runs its inline tests without panicking.
    #[test]
    fn rule_loader_checks_hold_for_mutated_rules(text in mutated_rule()) {
        oracles::rules(text.as_bytes());
    }
}

/// The mutation strategy above is worth something only if most mutations
/// still parse as YAML far enough to reach the compile stage: a built-in rule
/// with a bad value is reported on that value's line.
#[test]
fn rule_error_points_at_the_bad_line() {
    let (name, text) = BUILTIN
        .iter()
        .find(|(n, _)| *n == "failed-auth-burst.yaml")
        .unwrap();
    let bad = text.replacen("window: 60s", "window: forever", 1);
    assert_ne!(&bad, text, "the rule has no `window: 60s` line any more");
    let line = bad.lines().position(|l| l.starts_with("window:")).unwrap() + 1;
    let errors = RuleSet::from_sources(vec![(format!("detectors/{name}"), bad)]).unwrap_err();
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.line == line && e.message.contains("window")),
        "{errors}"
    );
    oracles::rules(text.as_bytes());
}

// ---- fuzz regressions ------------------------------------------------------------

/// Every input a fuzz target once failed on, through the target's checks.
/// Every directory there names a target, and there is at least one input:
/// a renamed or emptied directory must fail, not pass having checked nothing.
#[test]
fn fuzz_regressions_pass_their_targets_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions");
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 3] = [
        ("envelope", oracles::envelope),
        ("platform", oracles::platform),
        ("rules", oracles::rules),
    ];
    let mut replayed = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some((target, check)) = targets.iter().find(|(t, _)| *t == name) else {
            panic!(
                "{}: no fuzz target is called {name} (targets: envelope, platform, rules)",
                dir.display()
            );
        };
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&input));
            assert!(
                outcome.is_ok(),
                "{} fails the {target} checks again",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no fuzz regression inputs under {}",
        root.display()
    );
}
