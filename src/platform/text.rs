//! `START`, `END` and `REPORT` text lines, and the `EXTENSION`, `LOGS` and
//! `TELEMETRY` subscription lines.

use std::borrow::Cow;

use super::fields::{
    Key, leading_request_id, parse_f64, parse_status, parse_u32, parse_u64, set_once,
    skip_separators, strip_word,
};
use super::{Record, Report, Status};

pub(super) fn parse_start(msg: &str) -> Option<Record<'_>> {
    let (id, fields) = leading_request_id(strip_word(msg, "START")?)?;
    let mut version = None;
    for (key, value) in fields {
        if key == Key::Version && !value.is_empty() {
            version = Some(Cow::Borrowed(value));
            break;
        }
    }
    Some(Record::Start {
        request_id: Cow::Borrowed(id),
        version,
    })
}

/// `END RequestId: X` (after the keyword).
pub(super) fn end(rest: &str) -> Option<Record<'_>> {
    let (id, _) = leading_request_id(rest)?;
    Some(Record::End {
        request_id: Cow::Borrowed(id),
    })
}

/// `EXTENSION`, `LOGS`, `TELEMETRY` subscription lines. Requiring `Name:` keeps
/// an application line such as `LOGS rotated` out.
pub(super) fn other_platform<'a>(msg: &'a str, word: &'static str) -> Option<Record<'a>> {
    let rest = skip_separators(strip_word(msg, word)?);
    rest.starts_with("Name:").then_some(Record::OtherPlatform {
        kind: Cow::Borrowed(word),
    })
}

pub(super) fn parse_report(rest: &str) -> Option<Record<'_>> {
    let (id, fields) = leading_request_id(rest)?;
    let mut duration_ms = None;
    let mut status = None;
    let mut report = Report {
        request_id: Cow::Borrowed(id),
        duration_ms: 0.0,
        billed_duration_ms: None,
        memory_size_mb: None,
        max_memory_used_mb: None,
        init_duration_ms: None,
        restore_duration_ms: None,
        billed_restore_duration_ms: None,
        status: Status::Success,
        error_type: None,
        xray_trace_id: None,
    };
    for (key, value) in fields {
        match key {
            Key::Duration => set_once(&mut duration_ms, parse_f64(value)),
            Key::BilledDuration => set_once(&mut report.billed_duration_ms, parse_u64(value)),
            Key::MemorySize => set_once(&mut report.memory_size_mb, parse_u32(value)),
            Key::MaxMemoryUsed => set_once(&mut report.max_memory_used_mb, parse_u32(value)),
            Key::InitDuration => set_once(&mut report.init_duration_ms, parse_f64(value)),
            Key::RestoreDuration => set_once(&mut report.restore_duration_ms, parse_f64(value)),
            Key::BilledRestoreDuration => {
                set_once(&mut report.billed_restore_duration_ms, parse_u64(value));
            }
            Key::Status => set_once(&mut status, Some(parse_status(value))),
            Key::ErrorType if !value.is_empty() => {
                set_once(&mut report.error_type, Some(Cow::Borrowed(value)));
            }
            Key::XrayTraceId if !value.is_empty() => {
                set_once(&mut report.xray_trace_id, Some(Cow::Borrowed(value)));
            }
            _ => {}
        }
    }
    report.duration_ms = duration_ms.unwrap_or(0.0);
    report.status = status.unwrap_or(Status::Success);
    Some(Record::Report(report))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::platform::parse;
    use crate::platform::testutil::*;

    #[test]
    fn start_latest() {
        let msg = format!("START RequestId: {ID} Version: $LATEST");
        assert_eq!(
            parse(&msg),
            Record::Start {
                request_id: b(ID),
                version: Some(b("$LATEST"))
            }
        );
    }

    #[test]
    fn start_numeric_version_and_trailing_newline() {
        assert_eq!(
            parse("START RequestId: db27-1 Version: 72\n"),
            Record::Start {
                request_id: b("db27-1"),
                version: Some(b("72"))
            }
        );
        assert_eq!(
            parse("START RequestId: db27-1 Version: 72\r\n"),
            Record::Start {
                request_id: b("db27-1"),
                version: Some(b("72"))
            }
        );
    }

    #[test]
    fn start_without_version() {
        assert_eq!(
            parse("START RequestId: abc"),
            Record::Start {
                request_id: b("abc"),
                version: None
            }
        );
    }

    #[test]
    fn start_double_escaped() {
        assert_eq!(
            parse(r"START RequestId: abc\tVersion: $LATEST\n"),
            Record::Start {
                request_id: b("abc"),
                version: Some(b("$LATEST"))
            }
        );
    }

    #[test]
    fn start_alone_or_malformed_is_app() {
        for msg in [
            "START",
            "START ",
            "START RequestId:",
            "START RequestId:   ",
            "STARTED the job",
            "START the engines",
            "START_X RequestId: a",
        ] {
            assert_eq!(parse(msg), plain_app(msg), "{msg:?}");
        }
    }

    #[test]
    fn end() {
        let msg = format!("END RequestId: {ID}\n");
        assert_eq!(parse(&msg), Record::End { request_id: b(ID) });
        assert_eq!(parse("END"), plain_app("END"));
        assert_eq!(parse("END of story"), plain_app("END of story"));
    }

    #[test]
    fn report_basic_with_space_before_tab() {
        let r = report(
            "REPORT RequestId: 6234bffe-149a-b642-81ff-2e8e376d8aff\tDuration: 46.84 ms\tBilled Duration: 47 ms \tMemory Size: 192 MB\tMax Memory Used: 72 MB\t\n",
        );
        assert_eq!(
            r,
            Report {
                request_id: b("6234bffe-149a-b642-81ff-2e8e376d8aff"),
                duration_ms: 46.84,
                billed_duration_ms: Some(47),
                memory_size_mb: Some(192),
                max_memory_used_mb: Some(72),
                init_duration_ms: None,
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
    fn report_single_space_between_fields() {
        let r = report(
            "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms\tBilled Duration: 100 ms Memory Size: 128 MB\tMax Memory Used: 18 MB",
        );
        assert_eq!(r.duration_ms, 12.34);
        assert_eq!(r.billed_duration_ms, Some(100));
        assert_eq!(r.memory_size_mb, Some(128));
        assert_eq!(r.max_memory_used_mb, Some(18));
    }

    #[test]
    fn report_cold_start() {
        let r = report(
            "REPORT RequestId: d1cf0ccb-xmpl-46e6-950d-04c96c9b1c5d\tDuration: 4157.16 ms\tBilled Duration: 4200 ms\tMemory Size: 256 MB\tMax Memory Used: 99 MB\tInit Duration: 841.60 ms\t",
        );
        assert_eq!(r.request_id, "d1cf0ccb-xmpl-46e6-950d-04c96c9b1c5d");
        assert_eq!(r.duration_ms, 4157.16);
        assert_eq!(r.init_duration_ms, Some(841.60));
        assert_eq!(r.status, Status::Success);
    }

    #[test]
    fn report_xray_same_line() {
        let msg = format!(
            "REPORT RequestId: {ID}\tDuration: 128.83 ms\tBilled Duration: 200 ms\tMemory Size: 128 MB\tMax Memory Used: 74 MB\tInit Duration: 166.62 ms\tXRAY TraceId: 1-5d9d007f-0a8c7fd02xmpl480aed55ef0\tSegmentId: 3d752xmpl1bbe37e\tSampled: true"
        );
        let r = report(&msg);
        assert_eq!(r.init_duration_ms, Some(166.62));
        assert_eq!(
            r.xray_trace_id.as_deref(),
            Some("1-5d9d007f-0a8c7fd02xmpl480aed55ef0")
        );
        assert_eq!(r.max_memory_used_mb, Some(74));
    }

    #[test]
    fn report_xray_after_newline() {
        let r = report(
            "REPORT RequestId: 8edab1f8-7d34-4a8e-a965-15ccbbb78d4c\tDuration: 0.62 ms\tBilled Duration: 100 ms\tMemory Size: 128 MB\tMax Memory Used: 98 MB\t\nXRAY TraceId: 1-5d83c0ad-b8eb33a0b1de97d804fac890\tSegmentId: 31255c3b19bd3637\tSampled: true",
        );
        assert_eq!(r.max_memory_used_mb, Some(98));
        assert_eq!(
            r.xray_trace_id.as_deref(),
            Some("1-5d83c0ad-b8eb33a0b1de97d804fac890")
        );
    }

    #[test]
    fn report_snapstart() {
        let r = report(
            "REPORT RequestId: 55bc566d-1e2c-11e7-93e6-6705ceb4c1cc\tDuration: 469.40 ms\tBilled Duration: 500 ms\tMemory Size: 1024 MB\tMax Memory Used: 21 MB\tRestore Duration: 474.16 ms\tBilled Restore Duration: 75 ms",
        );
        assert_eq!(r.duration_ms, 469.40);
        assert_eq!(r.billed_duration_ms, Some(500));
        assert_eq!(r.memory_size_mb, Some(1024));
        assert_eq!(r.restore_duration_ms, Some(474.16));
        assert_eq!(r.billed_restore_duration_ms, Some(75));
        assert_eq!(r.init_duration_ms, None);
    }

    #[test]
    fn report_out_of_memory() {
        let r = report(
            "REPORT RequestId: 806ab12b-e660-4a4a-8d9a-eee01e457f98\tDuration: 376256.59 ms\tBilled Duration: 376257 ms\tMemory Size: 10239 MB\tMax Memory Used: 10239 MB\tInit Duration: 551.73 ms\tStatus: error\tError Type: Runtime.OutOfMemory",
        );
        assert_eq!(r.duration_ms, 376256.59);
        assert_eq!(r.billed_duration_ms, Some(376257));
        assert_eq!(r.memory_size_mb, Some(10239));
        assert_eq!(r.max_memory_used_mb, Some(10239));
        assert_eq!(r.init_duration_ms, Some(551.73));
        assert_eq!(r.status, Status::Error);
        assert_eq!(r.error_type.as_deref(), Some("Runtime.OutOfMemory"));
    }

    #[test]
    fn report_invalid_entrypoint() {
        let r = report(
            "REPORT RequestId: 83269395-33ee-45a8-8a99-38f67b6faf72\tDuration: 11.48 ms\tBilled Duration: 12 ms\tMemory Size: 128 MB\tMax Memory Used: 10 MB\tStatus: error\tError Type: Runtime.InvalidEntrypoint",
        );
        assert_eq!(r.status, Status::Error);
        assert_eq!(r.error_type.as_deref(), Some("Runtime.InvalidEntrypoint"));
    }

    #[test]
    fn report_timeout_tab_separated() {
        let r = report(
            "REPORT RequestId: abc\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 50 MB\tStatus: timeout",
        );
        assert_eq!(r.status, Status::Timeout);
        assert_eq!(r.error_type, None);
    }

    #[test]
    fn report_abbreviated_with_spaces() {
        let r = report(
            "REPORT RequestId: abc  Duration: 120000 ms  Max Memory Used: 512 MB  Status: timeout",
        );
        assert_eq!(r.duration_ms, 120000.0);
        assert_eq!(r.billed_duration_ms, None);
        assert_eq!(r.memory_size_mb, None);
        assert_eq!(r.max_memory_used_mb, Some(512));
        assert_eq!(r.status, Status::Timeout);
    }

    #[test]
    fn report_double_escaped_fixture() {
        let r = report(
            r"REPORT RequestId: 7e4d2a1b-1111-2222-3333-444455556666\tDuration: 1.76 ms\tBilled Duration: 2 ms\tMemory Size: 1024 MB\tMax Memory Used: 68 MB\tInit Duration: 200.50 ms\tStatus: error\tError Type: Runtime.OutOfMemory\t\n",
        );
        assert_eq!(r.request_id, "7e4d2a1b-1111-2222-3333-444455556666");
        assert_eq!(r.duration_ms, 1.76);
        assert_eq!(r.billed_duration_ms, Some(2));
        assert_eq!(r.memory_size_mb, Some(1024));
        assert_eq!(r.max_memory_used_mb, Some(68));
        assert_eq!(r.init_duration_ms, Some(200.50));
        assert_eq!(r.status, Status::Error);
        assert_eq!(r.error_type.as_deref(), Some("Runtime.OutOfMemory"));
    }

    #[test]
    fn report_double_escaped_xray() {
        let r = report(
            r"REPORT RequestId: a\tDuration: 1 ms\tMax Memory Used: 98 MB\t\nXRAY TraceId: 1-5d83\tSegmentId: 3125\tSampled: true",
        );
        assert_eq!(r.max_memory_used_mb, Some(98));
        assert_eq!(r.xray_trace_id.as_deref(), Some("1-5d83"));
    }

    #[test]
    fn report_without_duration() {
        // A REPORT with an id proves the invocation ended; keep it, with 0 ms.
        let r = report("REPORT RequestId: x");
        assert_eq!(r.request_id, "x");
        assert_eq!(r.duration_ms, 0.0);
        assert_eq!(r.billed_duration_ms, None);
        assert_eq!(r.status, Status::Success);
        let r = report("REPORT RequestId: x\tDuration: garbage ms");
        assert_eq!(r.duration_ms, 0.0);
        // No id: nothing to correlate, an application line.
        assert_eq!(parse("REPORT"), plain_app("REPORT"));
        assert_eq!(
            parse("REPORT Duration: 5 ms"),
            plain_app("REPORT Duration: 5 ms")
        );
        assert_eq!(
            parse("REPORT generated in 5 ms"),
            plain_app("REPORT generated in 5 ms")
        );
    }

    #[test]
    fn report_empty_values_do_not_swallow_next_key() {
        let r = report("REPORT RequestId: a\tDuration: 2 ms\tStatus:\tError Type: Runtime.Unknown");
        assert_eq!(r.status, Status::Other);
        assert_eq!(r.error_type.as_deref(), Some("Runtime.Unknown"));
        let r = report("REPORT RequestId: a\tDuration:\tBilled Duration: 3 ms");
        assert_eq!(r.duration_ms, 0.0);
        assert_eq!(r.billed_duration_ms, Some(3));
        // `RequestId:` followed directly by a key has no id.
        assert!(matches!(
            parse("REPORT RequestId: Duration: 1 ms"),
            Record::App(_)
        ));
    }

    #[test]
    fn number_parsing_matches_std() {
        for text in [
            "0",
            "1",
            "46.84",
            "0.62",
            "376256.59",
            "9999.79",
            "1.",
            ".5",
            "000012.3400",
            "123456789012345",
            "1234567890.12345",
            "0.000000000000001",
            "1234567890123456",
            "12345678901234567890",
            "18446744073709551616",
            "3.141592653589793238",
            "601.10",
            "128.83",
            "1236.04",
            "474.16",
            "0.1",
            "0.3",
            "2.524",
        ] {
            assert_eq!(parse_f64(text), text.parse::<f64>().ok(), "{text}");
            assert_eq!(parse_f64(&format!("{text} ms")), text.parse::<f64>().ok());
        }
        let mut state: u64 = 12345;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let int = state >> 40;
            let frac = (state >> 8) % 100_000;
            let text = format!("{int}.{frac:05}");
            assert_eq!(parse_f64(&text), text.parse::<f64>().ok(), "{text}");
        }
        for text in ["", ".", "..", "1.2.3", "ms", "-1", "inf", "NaN", "+1"] {
            assert_eq!(parse_f64(text), None, "{text}");
        }
        assert_eq!(parse_u64("47"), Some(47));
        assert_eq!(parse_u64("47ms"), Some(47));
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_u32("10239"), Some(10239));
    }

    #[test]
    fn report_unknown_status_and_fields() {
        let r = report(
            "REPORT RequestId: a\tDuration: 1.5 ms\tShiny New Field: 3 ms\tStatus: exploded\tFoo Duration: 99 ms",
        );
        assert_eq!(r.duration_ms, 1.5);
        assert_eq!(r.status, Status::Other);
    }
}
