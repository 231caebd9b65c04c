//! Invocations that did not finish: `Task timed out after …` and runtime exits.

use std::borrow::Cow;

use super::fields::{parse_f64, skip_separators, token_end};
use super::{ExitReason, Record};

pub(super) const TIMED_OUT: &str = "Task timed out after ";

/// `text` starts with [`TIMED_OUT`]; without a readable number it is not a
/// timeout line we can use.
pub(super) fn timeout<'a>(request_id: Option<&'a str>, text: &'a str) -> Option<Record<'a>> {
    let after = text.strip_prefix(TIMED_OUT)?;
    let seconds = parse_f64(after.get(..token_end(after))?)?;
    Some(Record::Timeout {
        request_id: request_id.map(Cow::Borrowed),
        seconds,
    })
}

/// `RequestId: X <what happened>` (after the `RequestId:` key).
pub(super) fn parse_request_id_line(rest: &str) -> Option<Record<'_>> {
    let rest = skip_separators(rest);
    let (id, text) = rest.split_at_checked(token_end(rest))?;
    if id.is_empty() {
        return None;
    }
    let text = skip_separators(text);
    if text.starts_with(TIMED_OUT) {
        return timeout(Some(id), text);
    }
    runtime_exit(Some(id), text)
}

pub(super) fn runtime_exit<'a>(request_id: Option<&'a str>, text: &'a str) -> Option<Record<'a>> {
    let reason = if text.contains("signal: killed") {
        ExitReason::SignalKilled
    } else if text.contains("Process exited before completing request") {
        ExitReason::ProcessExited
    } else if text.contains("Runtime exited") || text.contains("Runtime.ExitError") {
        ExitReason::ExitError
    } else {
        return None;
    };
    Some(Record::RuntimeExit {
        request_id: request_id.map(Cow::Borrowed),
        reason,
        error_type: last_error_type(text).map(Cow::Borrowed),
    })
}

/// The last `Namespace.Name` token (`Runtime.ExitError`, `Extension.Crash`):
/// Lambda appends the error type after the human-readable text, separated by a
/// space or a newline.
fn last_error_type(text: &str) -> Option<&str> {
    let mut found = None;
    let mut rest = text;
    loop {
        rest = skip_separators(rest);
        let end = token_end(rest);
        let Some((token, tail)) = rest.split_at_checked(end) else {
            return found;
        };
        if end == 0 {
            return found;
        }
        if looks_like_error_type(token) {
            found = Some(token);
        }
        rest = tail;
    }
}

fn looks_like_error_type(token: &str) -> bool {
    let b = token.as_bytes();
    b.first().is_some_and(u8::is_ascii_uppercase)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.contains(&b'.')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::platform::parse;
    use crate::platform::testutil::*;

    #[test]
    fn timeout_space_prefix() {
        assert_eq!(
            parse(
                "2021-02-23T04:41:47.519Z 72be2647-3758-4464-a79d-0ac9e518cab2 Task timed out after 601.10 seconds\n"
            ),
            Record::Timeout {
                request_id: Some(b("72be2647-3758-4464-a79d-0ac9e518cab2")),
                seconds: 601.10
            }
        );
        assert_eq!(
            parse(
                "2020-06-09T15:02:26.150Z 7c9567b5-107b-4a6c-8798-0157ac21db52 Task timed out after 3.00 seconds"
            ),
            Record::Timeout {
                request_id: Some(b("7c9567b5-107b-4a6c-8798-0157ac21db52")),
                seconds: 3.0
            }
        );
    }

    #[test]
    fn timeout_tab_prefix() {
        assert_eq!(
            parse("2020-06-09T15:02:26.150Z\t7c9567b5-107b\tTask timed out after 3.00 seconds"),
            Record::Timeout {
                request_id: Some(b("7c9567b5-107b")),
                seconds: 3.0
            }
        );
    }

    #[test]
    fn timeout_without_prefix() {
        assert_eq!(
            parse("Task timed out after 30.03 seconds"),
            Record::Timeout {
                request_id: None,
                seconds: 30.03
            }
        );
        assert_eq!(
            parse("RequestId: abc Task timed out after 3.00 seconds"),
            Record::Timeout {
                request_id: Some(b("abc")),
                seconds: 3.0
            }
        );
    }

    #[test]
    fn timeout_without_number_is_app() {
        for msg in [
            "Task timed out after ",
            "Task timed out after soon",
            "Task timed out after .",
        ] {
            assert_eq!(parse(msg), plain_app(msg), "{msg:?}");
        }
        let line = app_line("2020-06-09T15:02:26.150Z\tabc\tTask timed out after lunch");
        assert_eq!(line.request_id.as_deref(), Some("abc"));
        assert_eq!(line.body, "Task timed out after lunch");
    }

    #[test]
    fn process_exited() {
        assert_eq!(
            parse(
                "RequestId: 16f8d3a2-26fc-11e8-bca6-73dbc61c39e7 Process exited before completing request\n"
            ),
            Record::RuntimeExit {
                request_id: Some(b("16f8d3a2-26fc-11e8-bca6-73dbc61c39e7")),
                reason: ExitReason::ProcessExited,
                error_type: None
            }
        );
    }

    #[test]
    fn signal_killed() {
        assert_eq!(
            parse(&format!(
                "RequestId: {ID} Error: Runtime exited with error: signal: killed\nRuntime.ExitError"
            )),
            Record::RuntimeExit {
                request_id: Some(b(ID)),
                reason: ExitReason::SignalKilled,
                error_type: Some(b("Runtime.ExitError"))
            }
        );
        assert_eq!(
            parse(
                r"RequestId: a Error: Runtime exited with error: signal: killed\nRuntime.ExitError"
            ),
            Record::RuntimeExit {
                request_id: Some(b("a")),
                reason: ExitReason::SignalKilled,
                error_type: Some(b("Runtime.ExitError"))
            }
        );
    }

    #[test]
    fn exited_without_reason() {
        assert_eq!(
            parse(
                "RequestId: req-1 Error: Runtime exited without providing a reason Runtime.ExitError"
            ),
            Record::RuntimeExit {
                request_id: Some(b("req-1")),
                reason: ExitReason::ExitError,
                error_type: Some(b("Runtime.ExitError"))
            }
        );
    }

    #[test]
    fn exit_status_without_request_id() {
        let expected = Record::RuntimeExit {
            request_id: None,
            reason: ExitReason::ExitError,
            error_type: Some(b("Runtime.ExitError")),
        };
        assert_eq!(
            parse("Error: Runtime exited with error: exit status 1\nRuntime.ExitError"),
            expected
        );
        assert_eq!(
            parse("Runtime.ExitError\nError: Runtime exited with error: exit status 1"),
            expected
        );
        assert_eq!(parse("Runtime.ExitError\n"), expected);
        assert_eq!(
            parse("Error: Runtime exited with error: exit status 1"),
            Record::RuntimeExit {
                request_id: None,
                reason: ExitReason::ExitError,
                error_type: None
            }
        );
        assert_eq!(
            parse(
                "RequestId: a Error: Runtime exited with error: exit status 2\nRuntime.ExitError"
            ),
            Record::RuntimeExit {
                request_id: Some(b("a")),
                reason: ExitReason::ExitError,
                error_type: Some(b("Runtime.ExitError"))
            }
        );
    }

    #[test]
    fn request_id_lines_that_are_not_exits() {
        for msg in [
            "RequestId: abc all good",
            "RequestId:",
            "RequestId: ",
            "Runtime.ExitErrorHandler installed",
            "Error: something else",
        ] {
            assert_eq!(parse(msg), plain_app(msg), "{msg:?}");
        }
    }
}
