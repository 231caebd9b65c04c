//! Lambda platform lines: one CloudWatch Logs message → one typed [`Record`].
//!
//! Both Lambda log formats are recognised: the plain-text lines (`START`, `END`,
//! `REPORT`, `INIT_REPORT`, `Task timed out after …`, runtime exits, runtime
//! out-of-memory strings) and the JSON format (`platform.start`,
//! `platform.runtimeDone`, `platform.report`, `platform.initReport`, …).
//! Everything else is an application line ([`AppLine`]), whose body is found
//! after the Lambda text prefix `<ts>\t<request id>\t<LEVEL>\t` when present
//! (or the Python runtime's `[LEVEL]\t<ts>\t<request id>\t`). JSON-format
//! application logs keep the whole JSON text as body; their `timestamp`,
//! `level` and `requestId` are found by a substring scan, not a full parse.
//! An application line carrying a runtime's own out-of-memory message
//! (`JavaScript heap out of memory`, `java.lang.OutOfMemoryError`, …) becomes
//! [`Record::OutOfMemory`].
//!
//! Classification uses cheap prefix checks before anything else: most lines
//! are decided by their first byte.
//!
//! One file per record family: `text` (`START`, `END`, `REPORT` and the
//! subscription lines), `init` (`INIT_*`, `RESTORE_*`), `failure` (timeouts
//! and runtime exits), `json` (JSON-format platform events, read by the
//! strict one-pass `json_scan` when it can vouch for the answer, by serde
//! otherwise), `app` (application lines) and `oom` (runtime out-of-memory
//! strings); `fields` is the tokenizer the text lines share, with the
//! eight-bytes-at-a-time byte tests the JSON scans use.

mod app;
mod failure;
mod fields;
mod init;
mod json;
mod json_scan;
mod oom;
#[cfg(test)]
mod testutil;
mod text;

use std::borrow::Cow;

use fields::strip_word;

/// Outcome reported by Lambda for an invocation or an init/restore phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `success` in JSON; also the value when a text line carries no `Status:`.
    Success,
    /// `failure` (JSON format).
    Failure,
    /// `error`.
    Error,
    /// `timeout`.
    Timeout,
    /// Any other value Lambda may add later.
    Other,
}

/// Why a runtime exited without completing a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// `Runtime exited with error: signal: killed` (usually out of memory).
    SignalKilled,
    /// `Process exited before completing request`.
    ProcessExited,
    /// `Runtime exited with error: …` / `Runtime exited without providing a reason` / `Runtime.ExitError`.
    ExitError,
}

/// The metrics of a `REPORT` line or a JSON `platform.report` record.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<'a> {
    /// Request id of the invocation.
    pub request_id: Cow<'a, str>,
    /// `Duration` in milliseconds.
    pub duration_ms: f64,
    /// `Billed Duration` in milliseconds.
    pub billed_duration_ms: Option<u64>,
    /// `Memory Size` in MB.
    pub memory_size_mb: Option<u32>,
    /// `Max Memory Used` in MB.
    pub max_memory_used_mb: Option<u32>,
    /// `Init Duration` (cold start) in milliseconds.
    pub init_duration_ms: Option<f64>,
    /// `Restore Duration` (SnapStart) in milliseconds.
    pub restore_duration_ms: Option<f64>,
    /// `Billed Restore Duration` in milliseconds.
    pub billed_restore_duration_ms: Option<u64>,
    /// `Status` (absent on older runtimes: [`Status::Success`]).
    pub status: Status,
    /// `Error Type`, e.g. `Runtime.OutOfMemory`.
    pub error_type: Option<Cow<'a, str>>,
    /// `XRAY TraceId`.
    pub xray_trace_id: Option<Cow<'a, str>>,
}

/// A line that is not a platform line.
#[derive(Debug, Clone, PartialEq)]
pub struct AppLine<'a> {
    /// Timestamp from the Lambda text prefix or a JSON app log, as written.
    pub timestamp: Option<Cow<'a, str>>,
    /// Request id from the Lambda text prefix or a JSON app log (`requestId`).
    pub request_id: Option<Cow<'a, str>>,
    /// Level from the Lambda text prefix or a JSON app log (`level`).
    pub level: Option<Cow<'a, str>>,
    /// The text after the Lambda prefix (the whole message when there is none),
    /// trailing newline removed.
    pub body: &'a str,
    /// Whether `body` starts with `{` (a JSON object worth parsing for JSON matchers).
    pub body_is_json: bool,
}

/// One classified CloudWatch Logs message.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    /// `START RequestId: X Version: V` / `platform.start`.
    Start {
        /// Request id.
        request_id: Cow<'a, str>,
        /// Function version, when given.
        version: Option<Cow<'a, str>>,
    },
    /// `END RequestId: X` (text format only).
    End {
        /// Request id.
        request_id: Cow<'a, str>,
    },
    /// `platform.runtimeDone` (JSON format): the handler finished.
    RuntimeDone {
        /// Request id.
        request_id: Cow<'a, str>,
        /// Outcome.
        status: Status,
        /// `errorType`, when present.
        error_type: Option<Cow<'a, str>>,
        /// `metrics.durationMs`, when present.
        duration_ms: Option<f64>,
    },
    /// `REPORT …` / `platform.report`.
    Report(Report<'a>),
    /// `Task timed out after N seconds`.
    Timeout {
        /// Request id from the line prefix, when present.
        request_id: Option<Cow<'a, str>>,
        /// The configured timeout, in seconds.
        seconds: f64,
    },
    /// The runtime exited before completing the request.
    RuntimeExit {
        /// Request id, when present.
        request_id: Option<Cow<'a, str>>,
        /// What the line says.
        reason: ExitReason,
        /// `Runtime.ExitError` or another error type, when present.
        error_type: Option<Cow<'a, str>>,
    },
    /// A runtime's own out-of-memory message (`JavaScript heap out of memory`, …).
    OutOfMemory {
        /// Request id from the Lambda text prefix, when present.
        request_id: Option<Cow<'a, str>>,
        /// Which known marker matched.
        marker: &'static str,
    },
    /// `INIT_START` / `platform.initStart`.
    InitStart {
        /// `Runtime Version`, when given.
        runtime_version: Option<Cow<'a, str>>,
    },
    /// `INIT_REPORT` / `platform.initReport`.
    InitReport {
        /// `Init Duration` in milliseconds.
        duration_ms: Option<f64>,
        /// `Phase` (`init` or `invoke`).
        phase: Option<Cow<'a, str>>,
        /// Outcome.
        status: Status,
        /// `Error Type`, when present.
        error_type: Option<Cow<'a, str>>,
    },
    /// `RESTORE_REPORT` / `platform.restoreReport`.
    RestoreReport {
        /// `Restore Duration` in milliseconds.
        duration_ms: Option<f64>,
        /// Outcome.
        status: Status,
        /// `Error Type`, when present.
        error_type: Option<Cow<'a, str>>,
    },
    /// Another platform line that no detector needs (`EXTENSION`, `LOGS`,
    /// `RESTORE_START`, `platform.extension`, `platform.initRuntimeDone`, …).
    OtherPlatform {
        /// The line's type word, e.g. `EXTENSION` or `platform.extension`.
        kind: Cow<'a, str>,
    },
    /// Anything else.
    App(AppLine<'a>),
}

/// Classify one CloudWatch Logs message. Never fails: what is not a platform
/// line is an application line.
///
/// Trailing `\r`/`\n` are ignored. Choices for malformed input:
/// - `START`/`END`/`REPORT` need a non-empty `RequestId:` right after the
///   keyword, otherwise the line is an application line (`START` alone,
///   `REPORT generated` …): without an id no detector can correlate it.
/// - A `REPORT` (text or JSON) with a request id but no readable duration is
///   still a [`Record::Report`], with `duration_ms` 0.0 and whatever else it
///   carries: it proves the invocation finished, which matters more to the
///   orphan detector than the missing metric.
/// - JSON `platform.*` events whose `record` has an unexpected shape, or that
///   lack the request id their typed variant needs, become
///   [`Record::OtherPlatform`]; JSON that does not parse is an application line.
/// - A missing `Status` (text) or `status` (JSON) is [`Status::Success`].
pub fn parse(message: &str) -> Record<'_> {
    let msg = message.trim_end_matches(['\n', '\r']);
    // Platform lines start with an upper-case keyword or `{`; anything else
    // goes straight to the application path.
    let platform = match msg.as_bytes().first() {
        Some(b'S') => text::parse_start(msg),
        Some(b'E') => parse_e(msg),
        Some(b'R') => parse_r(msg),
        Some(b'I') => init::parse_init(msg),
        Some(b'L') => text::other_platform(msg, "LOGS"),
        Some(b'T') => parse_t(msg),
        Some(b'{') => json::parse_json(msg),
        Some(b'0'..=b'9') => return app::parse_prefixed(msg),
        _ => None,
    };
    match platform {
        Some(record) => record,
        None => app::app(msg, app::unprefixed_app_line(msg)),
    }
}

/// `END …`, `EXTENSION …`, or a runtime exit written without a prefix.
fn parse_e(msg: &str) -> Option<Record<'_>> {
    if let Some(rest) = strip_word(msg, "END") {
        return text::end(rest);
    }
    if msg.starts_with("EXTENSION") {
        return text::other_platform(msg, "EXTENSION");
    }
    if msg.starts_with("Error: Runtime exited") {
        return failure::runtime_exit(None, msg);
    }
    None
}

/// `REPORT …`, `RequestId: X <what happened>`, the SnapStart restore lines or
/// a bare `Runtime.ExitError`.
fn parse_r(msg: &str) -> Option<Record<'_>> {
    if let Some(rest) = strip_word(msg, "REPORT") {
        return text::parse_report(rest);
    }
    if let Some(rest) = msg.strip_prefix("RequestId:") {
        return failure::parse_request_id_line(rest);
    }
    if let Some(rest) = strip_word(msg, "RESTORE_REPORT") {
        return Some(init::restore_report(rest));
    }
    if strip_word(msg, "RESTORE_START").is_some() {
        return Some(Record::OtherPlatform {
            kind: Cow::Borrowed("RESTORE_START"),
        });
    }
    if strip_word(msg, "Runtime.ExitError").is_some() {
        return failure::runtime_exit(None, msg);
    }
    None
}

/// `Task timed out after …` without a prefix, or a `TELEMETRY` subscription line.
fn parse_t(msg: &str) -> Option<Record<'_>> {
    if msg.starts_with(failure::TIMED_OUT) {
        return failure::timeout(None, msg);
    }
    text::other_platform(msg, "TELEMETRY")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::oom::OOM_NODE;
    use super::*;
    use crate::platform::testutil::*;

    #[test]
    fn empty_and_newlines() {
        assert_eq!(parse(""), plain_app(""));
        assert_eq!(parse("\n"), plain_app(""));
        assert_eq!(parse("\r\n\n"), plain_app(""));
        assert_eq!(parse(" "), plain_app(" "));
    }

    #[test]
    fn odd_unicode() {
        for msg in [
            "START RequestId: é Version: ü",
            "REPORT RequestId: 日本\tDuration: ١٢ ms",
            "REPORT RequestId: a\tDuration: 1 ms\tStatus: \u{FFFD}",
            "2024-日本\tx\tINFO\tbody",
            "2024-01-01T00:00:00Z\t日本\tINFO\tbody",
            "[INFO]\t2024-01-01T00:00:00Z\tid\t\u{0}\u{FEFF}",
            "{\"type\":\"platform.\u{1F600}\"}",
            "\u{0}",
            "e\u{301}",
            "RequestId: \u{1F600} signal: killed",
            "Task timed out after \u{1F600}",
        ] {
            let _ = parse(msg);
        }
        assert_eq!(
            parse("START RequestId: é Version: ü"),
            Record::Start {
                request_id: b("é"),
                version: Some(b("ü"))
            }
        );
        assert_eq!(
            report("REPORT RequestId: 日本\tDuration: ١٢ ms").duration_ms,
            0.0
        );
        assert_eq!(
            parse("{\"type\":\"platform.\u{1F600}\"}"),
            Record::OtherPlatform {
                kind: b("platform.\u{1F600}")
            }
        );
    }

    #[test]
    fn very_long_lines() {
        let filler = "x".repeat(1 << 20);
        let msg = format!("2024-01-01T00:00:00.000Z\t{ID}\tINFO\t{filler}");
        assert_eq!(app_line(&msg).body.len(), filler.len());
        let msg = format!("{filler} JavaScript heap out of memory");
        assert_eq!(
            parse(&msg),
            Record::OutOfMemory {
                request_id: None,
                marker: OOM_NODE
            }
        );
        let msg = format!("REPORT RequestId: a\tDuration: 1 ms\t{filler}");
        let r = report(&msg);
        assert_eq!(r.duration_ms, 1.0);
        let digits = "9".repeat(1 << 20);
        let msg =
            format!("REPORT RequestId: a\tDuration: {digits} ms\tBilled Duration: {digits} ms");
        let r = report(&msg);
        // Infinity would become a function's learned baseline: no duration.
        assert_eq!(r.duration_ms, 0.0);
        assert_eq!(r.billed_duration_ms, None);
        let json = format!(
            r#"{{"time":"t","type":"platform.report","record":{{"requestId":"a","pad":"{filler}","metrics":{{"durationMs":5}}}}}}"#
        );
        assert_eq!(report(&json).duration_ms, 5.0);
        let spaces = " ".repeat(1 << 20);
        let _ = parse(&format!("REPORT{spaces}"));
        let _ = parse(&format!("{{{spaces}"));
        let many = "MemoryErrorX".repeat(1 << 16);
        assert!(matches!(parse(&many), Record::App(_)));
        let nested = "[".repeat(100_000);
        let _ = parse(&format!("{{\"type\":\"platform.x\",\"record\":{nested}"));
    }

    const SAMPLES: &[&str] = &[
        "START RequestId: c793869b-ee49-115b-a5b6-4fd21e8dedac Version: $LATEST\n",
        "END RequestId: c793869b-ee49-115b-a5b6-4fd21e8dedac\n",
        "REPORT RequestId: 6234bffe-149a-b642-81ff-2e8e376d8aff\tDuration: 46.84 ms\tBilled Duration: 47 ms \tMemory Size: 192 MB\tMax Memory Used: 72 MB\t\n",
        "REPORT RequestId: c793869b\tDuration: 128.83 ms\tBilled Duration: 200 ms\tMemory Size: 128 MB\tMax Memory Used: 74 MB\tInit Duration: 166.62 ms\tXRAY TraceId: 1-5d9d007f-0a8c7fd02xmpl480aed55ef0\tSegmentId: 3d752xmpl1bbe37e\tSampled: true",
        "REPORT RequestId: 8edab1f8\tDuration: 0.62 ms\tMax Memory Used: 98 MB\t\nXRAY TraceId: 1-5d83c0ad\tSegmentId: 31255c3b19bd3637\tSampled: true",
        "REPORT RequestId: 55bc566d\tDuration: 469.40 ms\tBilled Duration: 500 ms\tMemory Size: 1024 MB\tMax Memory Used: 21 MB\tRestore Duration: 474.16 ms\tBilled Restore Duration: 75 ms",
        "REPORT RequestId: 806ab12b\tDuration: 376256.59 ms\tBilled Duration: 376257 ms\tMemory Size: 10239 MB\tMax Memory Used: 10239 MB\tInit Duration: 551.73 ms\tStatus: error\tError Type: Runtime.OutOfMemory",
        "REPORT RequestId: abc  Duration: 120000 ms  Max Memory Used: 512 MB  Status: timeout",
        r"REPORT RequestId: 7e4d\tDuration: 1.76 ms\tBilled Duration: 2 ms\tStatus: error\tError Type: Runtime.OutOfMemory\t\n",
        "2021-02-23T04:41:47.519Z 72be2647-3758-4464-a79d-0ac9e518cab2 Task timed out after 601.10 seconds",
        "2020-06-09T15:02:26.150Z\t7c9567b5\tTask timed out after 3.00 seconds",
        "Task timed out after 30.03 seconds",
        "RequestId: 16f8d3a2-26fc-11e8-bca6-73dbc61c39e7 Process exited before completing request",
        "RequestId: abc Error: Runtime exited with error: signal: killed\nRuntime.ExitError",
        "RequestId: req-1 Error: Runtime exited without providing a reason Runtime.ExitError",
        "Error: Runtime exited with error: exit status 1\nRuntime.ExitError",
        "Runtime.ExitError\nError: Runtime exited with error: exit status 1",
        "fatal error: runtime: out of memory",
        "2024-01-01T00:00:00.000Z\tabc\tERROR\tjava.lang.OutOfMemoryError: Java heap space",
        "FATAL ERROR: JavaScript heap out of memory",
        "[ERROR] MemoryError",
        "app.rb:3: failed to allocate memory (NoMemoryError)",
        "INIT_START Runtime Version: nodejs:18.v30\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:f89c",
        "INIT_REPORT Init Duration: 150.79 ms\tPhase: init\tStatus: error\tError Type: Runtime.UserCodeSyntaxError",
        "INIT_REPORT Init Duration: 9804ms  Phase: init  Status: error  Error Type: Extension.Crash",
        "RESTORE_START Runtime Version: java:11.v20\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:b8b2",
        "RESTORE_REPORT Restore Duration: 1236.04 ms Status: error Error Type: Runtime.ExitError",
        "EXTENSION  Name: datadog-agent State: Ready Events: [INVOKE, SHUTDOWN]",
        "LOGS Name: cloudwatch_lambda_agent State: Subscribed Types: [Platform]",
        r#"{"time":"2024-05-20T16:29:45.008Z","type":"platform.start","record":{"requestId":"4b142fc3","version":"$LATEST"}}"#,
        r#"{"time":"t","type":"platform.runtimeDone","record":{"requestId":"4b","status":"success","metrics":{"durationMs":11.185,"producedBytes":40}}}"#,
        r#"{"time":"t","type":"platform.report","record":{"requestId":"4b","status":"timeout","metrics":{"durationMs":11.642,"billedDurationMs":12,"memorySizeMB":128,"maxMemoryUsedMB":67,"initDurationMs":174.055,"restoreDurationMs":1.5,"billedRestoreDurationMs":2}}}"#,
        r#"{"time":"t","type":"platform.initStart","record":{"runtimeVersion":"nodejs:18.v28"}}"#,
        r#"{"time":"t","type":"platform.initReport","record":{"phase":"init","status":"error","errorType":"Runtime.ExitError","metrics":{"durationMs":173.778}}}"#,
        r#"{"time":"t","type":"platform.restoreReport","record":{"status":"timeout","metrics":{"durationMs":1.0}}}"#,
        r#"{"time":"t","type":"platform.logsDropped","record":{"reason":"x","droppedRecords":1}}"#,
        r#"{"timestamp":"2024-05-20T16:29:45.009Z","level":"INFO","requestId":"4b142fc3","message":"ENV"}"#,
        "2019-06-07T19:11:20.563Z\tc793869b\tINFO\tEVENT\n{\n  \"key\": \"value\"\n}\n",
        "[INFO]\t2024-01-01T00:00:00.123Z\tabc\tbody text",
        "plain text ünïcødé 日本語 \u{1F600}",
    ];

    #[test]
    fn truncated_prefixes_never_panic() {
        for sample in SAMPLES {
            for (i, _) in sample.char_indices().chain([(sample.len(), ' ')]) {
                let (head, tail) = sample.split_at(i);
                let _ = parse(head);
                let _ = parse(tail);
            }
        }
    }

    #[test]
    fn samples_are_not_app_lines_except_app_samples() {
        // The last four samples are the application lines.
        let apps: Vec<&str> = SAMPLES
            .iter()
            .copied()
            .filter(|s| matches!(parse(s), Record::App(_)))
            .collect();
        assert_eq!(apps, SAMPLES[SAMPLES.len() - 4..]);
    }

    #[test]
    fn mangled_bytes_never_panic() {
        // Deterministic pseudo-random corruption of every sample.
        let mut next = crate::testutil::xorshift(0x9E37_79B9_7F4A_7C15);
        let specials = [
            b'\t', b' ', b'\\', b'"', b'{', b'}', b':', b'\n', 0xE6, 0x80,
        ];
        for sample in SAMPLES {
            for _ in 0..200 {
                let mut bytes = sample.as_bytes().to_vec();
                for _ in 0..3 {
                    let pos = (next() as usize) % bytes.len().max(1);
                    let byte = specials[(next() as usize) % specials.len()];
                    if let Some(slot) = bytes.get_mut(pos) {
                        *slot = byte;
                    }
                }
                let _ = parse(&String::from_utf8_lossy(&bytes));
            }
        }
    }
}
