//! The init and restore phases: `INIT_START`, `INIT_REPORT`, `RESTORE_REPORT`
//! (their JSON twins are read in `json`).

use std::borrow::Cow;

use super::fields::{Fields, Key, parse_f64, parse_status, set_once, strip_word};
use super::{Record, Status};

pub(super) fn parse_init(msg: &str) -> Option<Record<'_>> {
    if let Some(rest) = strip_word(msg, "INIT_START") {
        let runtime_version = (Fields { rest })
            .find(|&(key, value)| key == Key::RuntimeVersion && !value.is_empty())
            .map(|(_, value)| Cow::Borrowed(value));
        return Some(Record::InitStart { runtime_version });
    }
    let rest = strip_word(msg, "INIT_REPORT")?;
    let mut duration_ms = None;
    let mut phase = None;
    let mut status = None;
    let mut error_type = None;
    for (key, value) in (Fields { rest }) {
        match key {
            Key::InitDuration => set_once(&mut duration_ms, parse_f64(value)),
            Key::Phase if !value.is_empty() => set_once(&mut phase, Some(Cow::Borrowed(value))),
            Key::Status => set_once(&mut status, Some(parse_status(value))),
            Key::ErrorType if !value.is_empty() => {
                set_once(&mut error_type, Some(Cow::Borrowed(value)));
            }
            _ => {}
        }
    }
    Some(Record::InitReport {
        duration_ms,
        phase,
        status: status.unwrap_or(Status::Success),
        error_type,
    })
}

/// `RESTORE_REPORT …` (after the keyword).
pub(super) fn restore_report(rest: &str) -> Record<'_> {
    let mut duration_ms = None;
    let mut status = None;
    let mut error_type = None;
    for (key, value) in (Fields { rest }) {
        match key {
            Key::RestoreDuration => set_once(&mut duration_ms, parse_f64(value)),
            Key::Status => set_once(&mut status, Some(parse_status(value))),
            Key::ErrorType if !value.is_empty() => {
                set_once(&mut error_type, Some(Cow::Borrowed(value)));
            }
            _ => {}
        }
    }
    Record::RestoreReport {
        duration_ms,
        status: status.unwrap_or(Status::Success),
        error_type,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::platform::parse;
    use crate::platform::testutil::*;

    #[test]
    fn init_start() {
        assert_eq!(
            parse(
                "INIT_START Runtime Version: nodejs:18.v30\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:f89c2641\n"
            ),
            Record::InitStart {
                runtime_version: Some(b("nodejs:18.v30"))
            }
        );
        assert_eq!(
            parse("INIT_START"),
            Record::InitStart {
                runtime_version: None
            }
        );
        assert_eq!(parse("INIT_STARTED"), plain_app("INIT_STARTED"));
    }

    #[test]
    fn init_report_syntax_error() {
        assert_eq!(
            parse(
                "INIT_REPORT Init Duration: 150.79 ms\tPhase: init\tStatus: error\tError Type: Runtime.UserCodeSyntaxError"
            ),
            Record::InitReport {
                duration_ms: Some(150.79),
                phase: Some(b("init")),
                status: Status::Error,
                error_type: Some(b("Runtime.UserCodeSyntaxError"))
            }
        );
    }

    #[test]
    fn init_report_timeout_spaces() {
        assert_eq!(
            parse("INIT_REPORT Init Duration: 9999.79 ms    Phase: init    Status: timeout"),
            Record::InitReport {
                duration_ms: Some(9999.79),
                phase: Some(b("init")),
                status: Status::Timeout,
                error_type: None
            }
        );
    }

    #[test]
    fn init_report_no_space_before_ms_extension_crash() {
        assert_eq!(
            parse(
                "INIT_REPORT Init Duration: 9804ms  Phase: init  Status: error  Error Type: Extension.Crash"
            ),
            Record::InitReport {
                duration_ms: Some(9804.0),
                phase: Some(b("init")),
                status: Status::Error,
                error_type: Some(b("Extension.Crash"))
            }
        );
    }

    #[test]
    fn init_report_invoke_phase_and_bare() {
        assert_eq!(
            parse(
                "INIT_REPORT Init Duration: 3.5 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.ExitError"
            ),
            Record::InitReport {
                duration_ms: Some(3.5),
                phase: Some(b("invoke")),
                status: Status::Error,
                error_type: Some(b("Runtime.ExitError"))
            }
        );
        assert_eq!(
            parse("INIT_REPORT"),
            Record::InitReport {
                duration_ms: None,
                phase: None,
                status: Status::Success,
                error_type: None
            }
        );
    }

    #[test]
    fn restore_lines() {
        assert_eq!(
            parse(
                "RESTORE_START Runtime Version: java:11.v20\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:b8b2"
            ),
            Record::OtherPlatform {
                kind: b("RESTORE_START")
            }
        );
        assert_eq!(
            parse("RESTORE_REPORT Restore Duration: 398.97 ms\n"),
            Record::RestoreReport {
                duration_ms: Some(398.97),
                status: Status::Success,
                error_type: None
            }
        );
        assert_eq!(
            parse("RESTORE_REPORT Restore Duration: 1236.04 ms Status: timeout"),
            Record::RestoreReport {
                duration_ms: Some(1236.04),
                status: Status::Timeout,
                error_type: None
            }
        );
        assert_eq!(
            parse(
                "RESTORE_REPORT Restore Duration: 1236.04 ms Status: error Error Type: Runtime.ExitError"
            ),
            Record::RestoreReport {
                duration_ms: Some(1236.04),
                status: Status::Error,
                error_type: Some(b("Runtime.ExitError"))
            }
        );
    }

    #[test]
    fn extension_logs_telemetry() {
        for (msg, kind) in [
            (
                "EXTENSION  Name: datadog-agent State: Ready Events: [INVOKE, SHUTDOWN]",
                "EXTENSION",
            ),
            (
                "EXTENSION\tName: x\tState: Registered\tEvents: []\n",
                "EXTENSION",
            ),
            (
                "LOGS Name: cloudwatch_lambda_agent State: Subscribed Types: [Platform]",
                "LOGS",
            ),
            (
                "TELEMETRY\tName: collector\tState: Subscribed\tTypes: [Platform, Function]",
                "TELEMETRY",
            ),
        ] {
            assert_eq!(
                parse(msg),
                Record::OtherPlatform { kind: b(kind) },
                "{msg:?}"
            );
        }
        for msg in ["LOGS rotated", "EXTENSIONS loaded", "TELEMETRY", "LOGS"] {
            assert_eq!(parse(msg), plain_app(msg), "{msg:?}");
        }
    }
}
