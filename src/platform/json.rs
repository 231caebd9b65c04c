//! JSON-format platform events (`platform.start`, `platform.report`, …).

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Deserialize;

use super::fields::parse_status;
use super::{Record, Report, Status};

/// A string that stays borrowed from the message unless it contains escapes.
/// (`#[serde(borrow)]` on a bare `Option<Cow<str>>` field would always allocate.)
#[derive(Deserialize)]
pub(super) struct Str<'a>(#[serde(borrow)] pub(super) Cow<'a, str>);

#[derive(Deserialize)]
pub(super) struct JsonEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Str<'a>,
    #[serde(default, borrow)]
    pub(super) record: Option<JsonRecord<'a>>,
}

/// Fallback when `record` has a shape we do not expect: the type alone still
/// says it is a platform event.
#[derive(Deserialize)]
struct JsonKind<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct JsonRecord<'a> {
    #[serde(borrow)]
    pub(super) request_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) version: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) status: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) error_type: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) phase: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) runtime_version: Option<Str<'a>>,
    pub(super) metrics: Option<JsonMetrics>,
}

/// Integers are read as `f64` too, so that `12.0` or `12` both work.
#[derive(Deserialize, Default)]
pub(super) struct JsonMetrics {
    #[serde(rename = "durationMs")]
    pub(super) duration_ms: Option<f64>,
    #[serde(rename = "billedDurationMs")]
    pub(super) billed_duration_ms: Option<f64>,
    #[serde(rename = "memorySizeMB")]
    pub(super) memory_size_mb: Option<f64>,
    #[serde(rename = "maxMemoryUsedMB")]
    pub(super) max_memory_used_mb: Option<f64>,
    #[serde(rename = "initDurationMs")]
    pub(super) init_duration_ms: Option<f64>,
    #[serde(rename = "restoreDurationMs")]
    pub(super) restore_duration_ms: Option<f64>,
    #[serde(rename = "billedRestoreDurationMs")]
    pub(super) billed_restore_duration_ms: Option<f64>,
}

/// A JSON duration, unless negative (serde_json never yields NaN or
/// infinity): a negative duration would drag a learned baseline down.
fn to_ms(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v >= 0.0)
}

fn to_u64(v: Option<f64>) -> Option<u64> {
    // `as` saturates, which is what we want for absurd values.
    v.filter(|v| v.is_finite() && *v >= 0.0).map(|v| v as u64)
}

fn to_u32(v: Option<f64>) -> Option<u32> {
    v.filter(|v| v.is_finite() && *v >= 0.0).map(|v| v as u32)
}

static PLATFORM_VALUE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\"platform."));

/// Whether `"type"` is followed by a `"platform.…"` value somewhere. Lambda
/// writes compact JSON (`"type":"platform.`), but fixtures produced with
/// Python's `json.dumps` put spaces after `:`, so the key is checked backwards
/// from each `"platform.` hit: one pass either way.
fn has_platform_type(b: &[u8]) -> bool {
    PLATFORM_VALUE.find_iter(b).any(|pos| {
        let before = b.get(..pos).unwrap_or_default().trim_ascii_end();
        before
            .strip_suffix(b":")
            .is_some_and(|k| k.trim_ascii_end().ends_with(b"\"type\""))
    })
}

pub(super) fn parse_json(msg: &str) -> Option<Record<'_>> {
    if !has_platform_type(msg.as_bytes()) {
        return None;
    }
    match super::json_scan::envelope(msg) {
        Some(envelope) => from_json(envelope),
        None => parse_json_serde(msg),
    }
}

/// What serde makes of a line that has a platform type; the answer
/// [`super::json_scan`] must match whenever it gives one.
pub(super) fn parse_json_serde(msg: &str) -> Option<Record<'_>> {
    match serde_json::from_str::<JsonEnvelope<'_>>(msg) {
        Ok(envelope) => from_json(envelope),
        // Valid JSON, unexpected shape.
        Err(e) if e.is_data() => {
            let kind = serde_json::from_str::<JsonKind<'_>>(msg).ok()?.kind.0;
            kind.starts_with("platform.")
                .then_some(Record::OtherPlatform { kind })
        }
        Err(_) => tolerant_json(msg),
    }
}

/// A platform event that is whole but that a strict parser rejects: a lone
/// surrogate escape, `NaN`, `1e400` or deep nesting in some field must not
/// turn a genuine record into an application line (a `platform.report` the
/// lifecycle and timeout rules never see). Read tolerantly
/// ([`crate::lenient_json`]); a cut-off line or one with text after the
/// object stays an application line, as a fragment proves nothing. A record
/// whose typed fields do not fit (`"durationMs":NaN`) is
/// [`Record::OtherPlatform`], as with valid JSON.
fn tolerant_json(msg: &str) -> Option<Record<'static>> {
    let v = crate::lenient_json::from_str_whole(msg)?;
    // Owned strings ('static): the value is dropped here, the record kept.
    if let Ok(envelope) = JsonEnvelope::deserialize(v.clone()) {
        return from_json(envelope);
    }
    let kind = JsonKind::deserialize(v).ok()?.kind.0;
    kind.starts_with("platform.")
        .then_some(Record::OtherPlatform { kind })
}

#[derive(Clone, Copy)]
enum JsonType {
    Start,
    RuntimeDone,
    Report,
    InitStart,
    InitReport,
    RestoreReport,
    Other,
}

pub(super) fn from_json(envelope: JsonEnvelope<'_>) -> Option<Record<'_>> {
    let kind = envelope.kind.0;
    let json_type = match kind.strip_prefix("platform.")? {
        "start" => JsonType::Start,
        "runtimeDone" => JsonType::RuntimeDone,
        "report" => JsonType::Report,
        "initStart" => JsonType::InitStart,
        "initReport" => JsonType::InitReport,
        "restoreReport" => JsonType::RestoreReport,
        _ => JsonType::Other,
    };
    let record = envelope.record.unwrap_or_default();
    let metrics = record.metrics.unwrap_or_default();
    let status = record
        .status
        .as_ref()
        .map_or(Status::Success, |s| parse_status(&s.0));
    let error_type = record.error_type.map(|s| s.0);
    let request_id = record.request_id.map(|s| s.0).filter(|s| !s.is_empty());
    Some(match (json_type, request_id) {
        (JsonType::Start, Some(request_id)) => Record::Start {
            request_id,
            version: record.version.map(|s| s.0),
        },
        (JsonType::RuntimeDone, Some(request_id)) => Record::RuntimeDone {
            request_id,
            status,
            error_type,
            duration_ms: to_ms(metrics.duration_ms),
        },
        (JsonType::Report, Some(request_id)) => Record::Report(Report {
            request_id,
            duration_ms: to_ms(metrics.duration_ms).unwrap_or(0.0),
            billed_duration_ms: to_u64(metrics.billed_duration_ms),
            memory_size_mb: to_u32(metrics.memory_size_mb),
            max_memory_used_mb: to_u32(metrics.max_memory_used_mb),
            init_duration_ms: to_ms(metrics.init_duration_ms),
            restore_duration_ms: to_ms(metrics.restore_duration_ms),
            billed_restore_duration_ms: to_u64(metrics.billed_restore_duration_ms),
            status,
            error_type,
            xray_trace_id: None,
        }),
        (JsonType::InitStart, _) => Record::InitStart {
            runtime_version: record.runtime_version.map(|s| s.0),
        },
        (JsonType::InitReport, _) => Record::InitReport {
            duration_ms: to_ms(metrics.duration_ms),
            phase: record.phase.map(|s| s.0),
            status,
            error_type,
        },
        (JsonType::RestoreReport, _) => Record::RestoreReport {
            duration_ms: to_ms(metrics.duration_ms),
            status,
            error_type,
        },
        _ => Record::OtherPlatform { kind },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::platform::parse;
    use crate::platform::testutil::*;

    #[test]
    fn json_start() {
        let msg = r#"{"time":"2024-05-20T16:29:45.008Z","type":"platform.start","record":{"requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715","version":"$LATEST"}}"#;
        let record = parse(msg);
        assert_eq!(
            record,
            Record::Start {
                request_id: b("4b142fc3-17b8-4cdb-a46b-a8dbe7918715"),
                version: Some(b("$LATEST"))
            }
        );
        let Record::Start {
            request_id,
            version,
        } = record
        else {
            unreachable!()
        };
        assert!(matches!(request_id, Cow::Borrowed(_)));
        assert!(matches!(version, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn json_start_without_version_and_escaped_id() {
        assert_eq!(
            parse(r#"{"time":"t","type":"platform.start","record":{"requestId":"a\u002db"}}"#),
            Record::Start {
                request_id: Cow::Owned("a-b".to_owned()),
                version: None
            }
        );
    }

    #[test]
    fn json_runtime_done() {
        let msg = r#"{"time":"2024-05-20T16:29:45.019Z","type":"platform.runtimeDone","record":{"requestId":"4b142fc3-x","status":"success","spans":[{"name":"responseLatency","start":"2024-05-20T16:29:45.008Z","durationMs":2.215},{"name":"runtimeOverhead","start":"...","durationMs":8.686}],"metrics":{"durationMs":11.185,"producedBytes":40}}}"#;
        assert_eq!(
            parse(msg),
            Record::RuntimeDone {
                request_id: b("4b142fc3-x"),
                status: Status::Success,
                error_type: None,
                duration_ms: Some(11.185)
            }
        );
        for (status, expected) in [
            ("failure", Status::Failure),
            ("error", Status::Error),
            ("timeout", Status::Timeout),
            ("weird", Status::Other),
        ] {
            let msg = format!(
                r#"{{"time":"t","type":"platform.runtimeDone","record":{{"requestId":"r","status":"{status}","errorType":"Runtime.Unknown"}}}}"#
            );
            assert_eq!(
                parse(&msg),
                Record::RuntimeDone {
                    request_id: b("r"),
                    status: expected,
                    error_type: Some(b("Runtime.Unknown")),
                    duration_ms: None
                }
            );
        }
    }

    #[test]
    fn json_report_full() {
        let msg = r#"{"time":"2024-05-20T16:29:45.022Z","type":"platform.report","record":{"requestId":"4b142fc3-17b8","status":"success","metrics":{"durationMs":11.642,"billedDurationMs":12,"memorySizeMB":128,"maxMemoryUsedMB":67,"initDurationMs":174.055}}}"#;
        let r = report(msg);
        assert_eq!(
            r,
            Report {
                request_id: b("4b142fc3-17b8"),
                duration_ms: 11.642,
                billed_duration_ms: Some(12),
                memory_size_mb: Some(128),
                max_memory_used_mb: Some(67),
                init_duration_ms: Some(174.055),
                restore_duration_ms: None,
                billed_restore_duration_ms: None,
                status: Status::Success,
                error_type: None,
                xray_trace_id: None,
            }
        );
        assert!(matches!(r.request_id, Cow::Borrowed(_)));
    }

    #[test]
    fn json_report_timeout_with_spaces() {
        // Python json.dumps layout (`": "`), as in DD fixtures.
        let msg = r#"{"time": "2024-10-18T19:38:39.661Z", "type": "platform.report", "record": {"requestId": "b441820a", "metrics": {"durationMs": 30000.0, "billedDurationMs": 30000, "memorySizeMB": 128, "maxMemoryUsedMB": 74, "initDurationMs": 985.413}, "status": "timeout"}}"#;
        let r = report(msg);
        assert_eq!(r.status, Status::Timeout);
        assert_eq!(r.duration_ms, 30000.0);
        assert_eq!(r.billed_duration_ms, Some(30000));
        assert_eq!(r.init_duration_ms, Some(985.413));
    }

    #[test]
    fn json_report_snapstart_and_error() {
        let r = report(
            r#"{"time":"t","type":"platform.report","record":{"requestId":"r","status":"error","errorType":"Runtime.OutOfMemory","metrics":{"durationMs":469.4,"billedDurationMs":500,"memorySizeMB":1024,"maxMemoryUsedMB":1024,"restoreDurationMs":474.16,"billedRestoreDurationMs":75}}}"#,
        );
        assert_eq!(r.status, Status::Error);
        assert_eq!(r.error_type.as_deref(), Some("Runtime.OutOfMemory"));
        assert_eq!(r.restore_duration_ms, Some(474.16));
        assert_eq!(r.billed_restore_duration_ms, Some(75));
        assert_eq!(r.max_memory_used_mb, Some(1024));
    }

    #[test]
    fn json_report_managed_instances() {
        let r = report(
            r#"{"time":"2026-01-08T18:22:35.343Z","type":"platform.report","record":{"requestId":"4f423807","metrics":{"durationMs":2.524},"spans":[{"name":"responseLatency","start":"2026-01-08T18:22:35.342Z","durationMs":0.642}],"status":"success"}}"#,
        );
        assert_eq!(r.duration_ms, 2.524);
        assert_eq!(r.billed_duration_ms, None);
        assert_eq!(r.memory_size_mb, None);
        assert_eq!(r.max_memory_used_mb, None);
        assert_eq!(r.status, Status::Success);
    }

    /// Found while writing the fuzz checks: a text duration of more than 308
    /// digits parsed as infinity, and JSON took negative durations.
    #[test]
    fn durations_are_finite_and_not_negative() {
        let huge = format!("1{}", "0".repeat(400));
        let line = format!("REPORT RequestId: r\tDuration: {huge} ms\tInit Duration: {huge}.5 ms");
        let r = report(&line);
        assert_eq!(r.duration_ms, 0.0);
        assert_eq!(r.init_duration_ms, None);
        assert!(matches!(
            parse(&format!(
                "2026-11-22T10:00:00.000Z r Task timed out after {huge} seconds"
            )),
            Record::App(_)
        ));
        let r = report(
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":-5.5,"initDurationMs":-1,"restoreDurationMs":-0.1}}}"#,
        );
        assert_eq!(r.duration_ms, 0.0);
        assert_eq!((r.init_duration_ms, r.restore_duration_ms), (None, None));
        for kind in ["runtimeDone", "initReport", "restoreReport"] {
            let msg = format!(
                r#"{{"type":"platform.{kind}","record":{{"requestId":"r","metrics":{{"durationMs":-3}}}}}}"#
            );
            match parse(&msg) {
                Record::RuntimeDone { duration_ms, .. }
                | Record::InitReport { duration_ms, .. }
                | Record::RestoreReport { duration_ms, .. } => {
                    assert_eq!(duration_ms, None, "{kind}")
                }
                other => panic!("{kind}: {other:?}"),
            }
        }
    }

    #[test]
    fn json_report_odd_values() {
        let r = report(
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"billedDurationMs":-1,"memorySizeMB":12.0,"maxMemoryUsedMB":null}}}"#,
        );
        assert_eq!(r.duration_ms, 0.0);
        assert_eq!(r.billed_duration_ms, None);
        assert_eq!(r.memory_size_mb, Some(12));
        assert_eq!(r.max_memory_used_mb, None);
        assert_eq!(r.status, Status::Success);
    }

    #[test]
    fn json_init_start_and_report() {
        assert_eq!(
            parse(
                r#"{"time":"2024-05-20T16:29:44.833Z","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init","runtimeVersion":"nodejs:18.v28","runtimeVersionArn":"arn:aws:lambda:eu-west-3::runtime:b475","functionName":"F","functionVersion":"$LATEST"}}"#
            ),
            Record::InitStart {
                runtime_version: Some(b("nodejs:18.v28"))
            }
        );
        assert_eq!(
            parse(
                r#"{"time":"2024-05-20T16:29:45.007Z","type":"platform.initReport","record":{"initializationType":"on-demand","phase":"init","status":"success","metrics":{"durationMs":173.778}}}"#
            ),
            Record::InitReport {
                duration_ms: Some(173.778),
                phase: Some(b("init")),
                status: Status::Success,
                error_type: None
            }
        );
        assert_eq!(
            parse(
                r#"{"time":"t","type":"platform.initReport","record":{"phase":"invoke","status":"error","errorType":"Runtime.UserCodeSyntaxError","metrics":{"durationMs":150.79}}}"#
            ),
            Record::InitReport {
                duration_ms: Some(150.79),
                phase: Some(b("invoke")),
                status: Status::Error,
                error_type: Some(b("Runtime.UserCodeSyntaxError"))
            }
        );
        assert_eq!(
            parse(
                r#"{"time":"t","type":"platform.initReport","record":{"phase":"init","status":"timeout"}}"#
            ),
            Record::InitReport {
                duration_ms: None,
                phase: Some(b("init")),
                status: Status::Timeout,
                error_type: None
            }
        );
    }

    #[test]
    fn json_restore_report() {
        assert_eq!(
            parse(
                r#"{"time":"t","type":"platform.restoreReport","record":{"status":"success","metrics":{"durationMs":398.97}}}"#
            ),
            Record::RestoreReport {
                duration_ms: Some(398.97),
                status: Status::Success,
                error_type: None
            }
        );
        assert_eq!(
            parse(
                r#"{"time":"t","type":"platform.restoreReport","record":{"status":"error","errorType":"Runtime.ExitError","metrics":{"durationMs":1236.04}}}"#
            ),
            Record::RestoreReport {
                duration_ms: Some(1236.04),
                status: Status::Error,
                error_type: Some(b("Runtime.ExitError"))
            }
        );
    }

    #[test]
    fn json_other_platform_types() {
        for (msg, kind) in [
            (
                r#"{"time":"2024-05-20T16:29:45.006Z","type":"platform.initRuntimeDone","record":{"initializationType":"on-demand","phase":"init","status":"success"}}"#,
                "platform.initRuntimeDone",
            ),
            (
                r#"{"time":"t","type":"platform.extension","record":{"name":"ext","state":"Ready","events":["INVOKE","SHUTDOWN"]}}"#,
                "platform.extension",
            ),
            (
                r#"{"time":"t","type":"platform.telemetrySubscription","record":{"name":"ext","state":"Subscribed","types":["platform","function"]}}"#,
                "platform.telemetrySubscription",
            ),
            (
                r#"{"time":"t","type":"platform.logsDropped","record":{"reason":"Consumer seems to have fallen behind","droppedRecords":123,"droppedBytes":12345}}"#,
                "platform.logsDropped",
            ),
            (
                r#"{"time":"t","type":"platform.restoreStart","record":{"runtimeVersion":"java:11.v20","functionName":"f","functionVersion":"3"}}"#,
                "platform.restoreStart",
            ),
            (
                r#"{"time":"t","type":"platform.restoreRuntimeDone","record":{"status":"success"}}"#,
                "platform.restoreRuntimeDone",
            ),
            (
                r#"{"time":"t","type":"platform.end","record":{"requestId":"r"}}"#,
                "platform.end",
            ),
            (
                r#"{"type":"platform.fault","record":"some text"}"#,
                "platform.fault",
            ),
        ] {
            assert_eq!(parse(msg), Record::OtherPlatform { kind: b(kind) }, "{msg}");
        }
    }

    #[test]
    fn json_platform_with_unexpected_record() {
        // Known types with an unusable record are still platform events.
        for (msg, kind) in [
            (
                r#"{"time":"t","type":"platform.start","record":{"version":"1"}}"#,
                "platform.start",
            ),
            (
                r#"{"time":"t","type":"platform.report","record":{"requestId":7}}"#,
                "platform.report",
            ),
            (
                r#"{"time":"t","type":"platform.report"}"#,
                "platform.report",
            ),
            (
                r#"{"type":"platform.runtimeDone","record":{"requestId":""}}"#,
                "platform.runtimeDone",
            ),
        ] {
            assert_eq!(parse(msg), Record::OtherPlatform { kind: b(kind) }, "{msg}");
        }
    }

    #[test]
    fn json_platform_records_a_strict_parser_rejects_are_still_read() {
        // Regression: one lone surrogate, NaN or 1e400 anywhere made the whole
        // record an application line.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            parse(&format!(
                r#"{{"time":"t","type":"platform.start","record":{{"requestId":"r1","version":"\ud800v"}},"x":NaN,"y":{deep}}}"#
            )),
            Record::Start {
                request_id: b("r1"),
                version: Some(b("\u{FFFD}v")),
            }
        );
        let Record::Report(r) = parse(
            r#"{"time":"t","type":"platform.report","record":{"requestId":"r2","status":"timeout","errorType":"\udc00","metrics":{"durationMs":3000.5,"other":1e400}}}"#,
        ) else {
            unreachable!("not a report")
        };
        assert_eq!(r.request_id, "r2");
        assert_eq!(r.status, Status::Timeout);
        assert_eq!(r.duration_ms, 3000.5);
        assert_eq!(r.error_type.as_deref(), Some("\u{FFFD}"));
        // Typed fields that do not fit: still a platform event.
        assert_eq!(
            parse(
                r#"{"type":"platform.report","record":{"requestId":"r3","metrics":{"durationMs":NaN}}}"#
            ),
            Record::OtherPlatform {
                kind: b("platform.report")
            }
        );
    }

    #[test]
    fn json_not_platform_is_app() {
        for msg in [
            r#"{"time":"t","type":"function","record":"hello"}"#,
            r#"{"time":"t","type":"extension","record":"hi"}"#,
            r#"{"type":"platformer","x":"\"platform.start"}"#,
            r#"{"event":{"type":"platform.start"},"level":"INFO"}"#,
            r#"{"type":"platform.start","record":{"requestId":"r"}"#,
            r#"{"type":"platform.start" trailing"#,
            "{not json",
            "{",
            "{}",
        ] {
            let line = app_line(msg);
            assert_eq!(line.body, msg);
            assert!(line.body_is_json, "{msg}");
        }
        assert_eq!(
            app_line(r#"{"event":{"type":"platform.start"},"level":"INFO"}"#)
                .level
                .as_deref(),
            Some("INFO")
        );
    }
}
