//! What every fuzz input is checked against, one function per target.
//!
//! Shared by the fuzz targets (`fuzz_targets/*.rs`) and by
//! `tests/it/properties.rs`, which replays every saved crash input
//! (`tests/data/fuzz-regressions/<target>/`) through the same function, so a
//! regression test checks exactly what the fuzzer checked. A failed check is a
//! panic: that is how libFuzzer learns of it.

use std::borrow::Cow;
use std::future::Future;
use std::io::Write;
use std::task::{Context, Poll, Waker};

use base64::Engine as _;
use logwarden::ingest::{self, FileOptions, InputForm, Limits, LogEvent, Payload};
use logwarden::platform::{self, Record, Report};
use logwarden::rules::RuleSet;

/// Decoded-size cap while fuzzing: low, so gzip bombs cost microseconds.
pub const DECODED_CAP: usize = 64 << 10;

/// Rule files with more inline-test events than this are compiled but their
/// tests are not run (a fuzzer-made test of thousands of events is slow and
/// finds nothing the small ones do not).
pub const MAX_TEST_EVENTS: usize = 64;

/// One payload with every string owned, comparable with `==`.
pub type OwnedView = Payload<'static>;

/// Every unit [`ingest::for_each_payload`] handed out, in order: its origin
/// and the payload or the error text; or the error for the whole input.
pub type Units = Result<(InputForm, Vec<(String, Result<OwnedView, String>)>), String>;

fn own(s: &str) -> Cow<'static, str> {
    Cow::Owned(s.to_string())
}

/// `p` with every string copied.
pub fn owned(p: &Payload<'_>) -> OwnedView {
    Payload {
        region: None,
        message_type: p.message_type,
        owner: own(&p.owner),
        log_group: own(&p.log_group),
        log_stream: own(&p.log_stream),
        subscription_filters: p.subscription_filters.iter().map(|f| own(f)).collect(),
        log_events: p
            .log_events
            .iter()
            .map(|e| LogEvent {
                id: own(&e.id),
                timestamp: e.timestamp,
                message: own(&e.message),
            })
            .collect(),
    }
}

/// The options of the CLI and the handler, with the fuzzing cap.
pub fn options(reference_parser: bool) -> FileOptions {
    FileOptions {
        limits: Limits {
            max_decoded_bytes: DECODED_CAP,
            reference_parser,
            ..Limits::default()
        },
        log_group: None,
        log_stream: None,
        default_timestamp_ms: 0,
        syslog_year: None,
    }
}

/// Everything [`ingest::for_each_payload`] makes of `input`.
pub fn units(input: &[u8], reference_parser: bool) -> Units {
    let mut out = Vec::new();
    let form = ingest::for_each_payload(
        input,
        "fuzz.log",
        &options(reference_parser),
        &mut |origin, unit| {
            out.push((
                origin.to_string(),
                unit.map(owned).map_err(|e| e.to_string()),
            ));
        },
    )
    .map_err(|e| e.to_string())?;
    Ok((form, out))
}

/// `json` as a Lambda CloudWatch Logs event: gzip, base64 (padded), `awslogs.data`.
pub fn awslogs_event(json: &[u8]) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(json);
    let gz = gz.finish().unwrap_or_default();
    let data = base64::engine::general_purpose::STANDARD.encode(gz);
    format!(r#"{{"awslogs":{{"data":"{data}"}}}}"#)
}

/// Envelope decoding, on any bytes:
/// - the whole-input entry point of the CLI and the handler gives the same
///   units (payloads and errors) with the fast parser and with the serde_json
///   reference parser;
/// - so does the payload parser on the raw bytes;
/// - a payload that parses comes back unchanged through gzip, base64 and an
///   `awslogs` event.
///
/// Never panics on its own; any panic inside is a bug found.
pub fn envelope(input: &[u8]) {
    let fast = units(input, false);
    let reference = units(input, true);
    assert_eq!(
        fast, reference,
        "fast and reference paths disagree on the input"
    );

    let fast = ingest::parse_payload_owned(input)
        .map(|p| owned(&p.view()))
        .map_err(|e| e.to_string());
    let reference = ingest::parse_payload(input)
        .map(|p| owned(&p))
        .map_err(|e| e.to_string());
    assert_eq!(
        fast, reference,
        "fast and reference payload parsers disagree"
    );

    if let Ok(payload) = reference
        && input.len() <= DECODED_CAP
    {
        let event = awslogs_event(input);
        let got = units(event.as_bytes(), false);
        assert_eq!(
            got,
            Ok((
                InputForm::AwsLogs,
                vec![("awslogs".to_string(), Ok(payload))]
            )),
            "a parsed payload did not survive gzip + base64 + awslogs"
        );
    }
}

fn check_metric(what: &str, v: f64) {
    assert!(
        v.is_finite() && v >= 0.0,
        "{what} is {v}, not a finite non-negative number"
    );
}

fn check_metrics(r: &Record<'_>) {
    match r {
        Record::Report(Report {
            request_id,
            duration_ms,
            init_duration_ms,
            restore_duration_ms,
            ..
        }) => {
            assert!(!request_id.is_empty(), "REPORT without a request id");
            check_metric("Duration", *duration_ms);
            init_duration_ms.map(|v| check_metric("Init Duration", v));
            restore_duration_ms.map(|v| check_metric("Restore Duration", v));
        }
        Record::Start { request_id, .. } | Record::End { request_id } => {
            assert!(!request_id.is_empty(), "START/END without a request id");
        }
        Record::RuntimeDone {
            duration_ms: Some(v),
            ..
        } => check_metric("runtimeDone durationMs", *v),
        Record::Timeout { seconds, .. } => check_metric("timeout seconds", *seconds),
        Record::InitReport {
            duration_ms: Some(v),
            ..
        }
        | Record::RestoreReport {
            duration_ms: Some(v),
            ..
        } => check_metric("init/restore duration", *v),
        Record::App(a) => assert!(
            !a.body.ends_with(['\n', '\r']),
            "an application body kept its line ending"
        ),
        _ => {}
    }
}

/// The platform parser, on any text (invalid UTF-8 is converted lossily):
/// - it never panics;
/// - a trailing `\n` or `\r\n` does not change the record;
/// - START/END/REPORT carry a request id; durations are finite and not negative.
pub fn platform(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let record = platform::parse(&text);
    check_metrics(&record);
    for ending in ["\n", "\r\n"] {
        let with = format!("{text}{ending}");
        assert_eq!(
            platform::parse(&with),
            record,
            "a trailing {ending:?} changed the record"
        );
    }
}

/// Poll `f` to completion without a runtime: the in-memory engine never
/// waits on anything, so `None` (still pending) means it unexpectedly did.
fn block_on<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// The file name a rule text wants (`<id>.yaml`), so that rules whose only
/// fault would be their name still compile and run their inline tests.
pub fn rule_path(text: &str) -> String {
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .map(|v| v.trim().trim_matches(['"', '\'']))
        .filter(|v| {
            !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        .unwrap_or("rule");
    format!("rules/{id}.yaml")
}

/// Rule-file loading, on any text (input that is not UTF-8 is skipped: the
/// loader reads files as UTF-8 and reports that itself):
/// - it never panics;
/// - every error names the file and a line inside it (`path:line: message`);
/// - a rule that compiles runs its inline tests (when small) without panicking.
pub fn rules(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let path = rule_path(text);
    let lines = text.lines().count().max(1);
    match RuleSet::from_sources(vec![(path.clone(), text.to_string())]) {
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an empty error list");
            for e in &errors.0 {
                assert_eq!(e.path, path, "error names another file: {e}");
                assert!(
                    (1..=lines + 1).contains(&e.line),
                    "error line {} outside the file's {lines} lines: {e}",
                    e.line
                );
                assert!(!e.message.is_empty(), "an error without a message");
                assert!(e.to_string().starts_with(&format!("{path}:{}: ", e.line)));
            }
        }
        Ok(set) => {
            for rule in &set.rules {
                let events: usize = rule.tests.iter().map(|t| t.events.len()).sum();
                if events <= MAX_TEST_EVENTS {
                    let outcomes = block_on(logwarden::engine::run_rule_tests(rule));
                    let outcomes =
                        outcomes.unwrap_or_else(|| panic!("inline tests of {} waited", rule.id));
                    assert_eq!(
                        outcomes.len(),
                        rule.tests.len(),
                        "one outcome per inline test"
                    );
                }
            }
        }
    }
}
