//! Plain log files: one event per line, timestamps from the line's prefix.
//!
//! Lines become [`LogEvent`]s of synthetic payloads (log group
//! [`FileOptions::log_group`] or `local`, log stream [`FileOptions::log_stream`]
//! or the input's name, owner empty), at most [`PLAIN_CHUNK_EVENTS`] per
//! payload so that downstream batches stay bounded whatever the file size.
//! Each message is the whole line (timestamp prefix included, `\r` of `\r\n`
//! removed), borrowed from the input; a line that is not UTF-8 is converted
//! lossily, that line only. A NUL or other control byte is a character of its
//! line like any other (a logger that wrote one garbled byte must not hide the
//! lines around it); only a file that is mostly such bytes is binary data
//! (more than 30 % of its first 8 KiB or of its whole). Empty and blank lines
//! are skipped. An event's id is its 1-based line number. Lines past
//! [`super::Limits::max_file_lines`] are not read: the unit after the last
//! chunk is [`DecodeError::TooManyLines`], at origin `line N` (the first line
//! not read).
//!
//! Timestamps, in order of preference:
//! 1. an ISO-8601/RFC 3339 prefix, optionally after `[`:
//!    `2026-11-22T10:00:01.123Z`, `2026-11-22 10:00:01,123`, `…+01:00`,
//!    `…+0100`; without a zone it is UTC;
//! 2. a syslog prefix `Nov 22 10:00:01` (UTC; the year, which syslog omits,
//!    is the UTC year of [`FileOptions::default_timestamp_ms`]);
//! 3. else the previous line's timestamp (continuation lines, stack traces,
//!    Lambda `START`/`END`/`REPORT` lines),
//! 4. else [`FileOptions::default_timestamp_ms`].

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDate};

use super::error::DecodeError;
use super::{FileOptions, LogEvent, MessageType, Payload};

/// Most events put in one payload of a plain log (PutLogEvents' batch limit).
pub const PLAIN_CHUNK_EVENTS: usize = 10_000;

/// UTF-8 byte order mark, skipped at the start of a file.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// How many leading bytes the first binary check looks at.
const BINARY_SAMPLE: usize = 8 << 10;

/// Share of odd bytes (control bytes other than tab, line breaks, form feed
/// and ESC; invalid UTF-8) from which text is binary data, in percent.
const BINARY_PERCENT: usize = 30;

/// Rejects binary data (a compressed or encrypted file that is not gzip, an
/// image, a core dump): input whose first 8 KiB, or whose whole, is more
/// than 30 % odd bytes (see [`BINARY_PERCENT`]). A few odd bytes, NULs
/// included, are a log with garbled lines, not binary data: those bytes
/// stay characters of their lines.
///
/// # Errors
/// [`DecodeError::NotRecognised`] naming the share of odd bytes.
pub(crate) fn binary_check(input: &[u8]) -> Result<(), DecodeError> {
    // The sample first: a big binary file is rejected without a full pass.
    let sample = &input[..input.len().min(BINARY_SAMPLE)];
    let parts: &[&[u8]] = if sample.len() == input.len() {
        &[input]
    } else {
        &[sample, input]
    };
    for part in parts {
        let odd = odd_bytes(part);
        if odd * 100 > part.len() * BINARY_PERCENT {
            let what = if part.len() == input.len() {
                "its"
            } else {
                "the first"
            };
            return Err(DecodeError::NotRecognised {
                found: format!(
                    "binary data: {}% of {what} {} bytes are control bytes or invalid UTF-8",
                    odd * 100 / part.len(),
                    part.len()
                ),
            });
        }
    }
    Ok(())
}

/// Bytes of `s` that text does not have: invalid UTF-8, and control bytes
/// other than tab, line feed, carriage return, form feed and ESC (colour
/// codes in captured console output).
fn odd_bytes(s: &[u8]) -> usize {
    s.utf8_chunks()
        .map(|chunk| {
            let controls = chunk
                .valid()
                .bytes()
                .filter(|&b| {
                    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)) || b == 0x7f
                })
                .count();
            chunk.invalid().len() + controls
        })
        .sum()
}

/// Reads `input` as a plain log, calling `f` once per chunk with origin
/// `lines A-B` (1-based, inclusive) or `line A`.
pub(crate) fn for_each_plain(
    input: &[u8],
    name: &str,
    opts: &FileOptions,
    f: &mut dyn FnMut(&str, Result<&Payload<'_>, DecodeError>),
) {
    let syslog_year =
        DateTime::from_timestamp_millis(opts.default_timestamp_ms).map_or(1970, |t| t.year());
    let mut payload = Payload {
        message_type: MessageType::Data,
        owner: Cow::Borrowed(""),
        log_group: Cow::Borrowed(opts.log_group.as_deref().unwrap_or("local")),
        log_stream: Cow::Borrowed(opts.log_stream.as_deref().unwrap_or(name)),
        subscription_filters: Vec::new(),
        log_events: Vec::new(),
    };
    let mut last_ts = opts.default_timestamp_ms;
    let mut first_line = 0;
    let mut last_line = 0;

    let body = input.strip_prefix(BOM).unwrap_or(input);
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let number = index + 1;
        if number > opts.limits.max_file_lines {
            if !payload.log_events.is_empty() {
                f(&lines_origin(first_line, last_line), Ok(&payload));
            }
            f(
                &format!("line {number}"),
                Err(DecodeError::TooManyLines {
                    cap: opts.limits.max_file_lines,
                }),
            );
            return;
        }
        if let Some(ts) = line_timestamp(line, syslog_year) {
            last_ts = ts;
        }
        if payload.log_events.is_empty() {
            first_line = number;
        }
        last_line = number;
        payload.log_events.push(LogEvent {
            id: Cow::Owned(number.to_string()),
            timestamp: last_ts,
            message: String::from_utf8_lossy(line),
        });
        if payload.log_events.len() == PLAIN_CHUNK_EVENTS {
            f(&lines_origin(first_line, last_line), Ok(&payload));
            payload.log_events.clear();
        }
    }
    if !payload.log_events.is_empty() {
        f(&lines_origin(first_line, last_line), Ok(&payload));
    }
}

fn lines_origin(first: usize, last: usize) -> String {
    if first == last {
        format!("line {first}")
    } else {
        format!("lines {first}-{last}")
    }
}

/// The timestamp a line starts with, in ms since the epoch.
pub(crate) fn line_timestamp(line: &[u8], syslog_year: i32) -> Option<i64> {
    if line.first() == Some(&b'{') {
        return json_time(line);
    }
    iso_prefix(line).or_else(|| syslog_prefix(line, syslog_year))
}

/// The ISO-8601 time in a JSON log line's usual time field
/// (`"time": "…"`, spaces around the colon allowed).
fn json_time(line: &[u8]) -> Option<i64> {
    const KEYS: [&[u8]; 5] = [
        b"\"timestamp\"",
        b"\"@timestamp\"",
        b"\"time\"",
        b"\"requestTime\"",
        b"\"ts\"",
    ];
    KEYS.iter().find_map(|k| {
        let at = memchr::memmem::find(line, k)? + k.len();
        let rest = line[at..].trim_ascii_start().strip_prefix(b":")?;
        let value = rest.trim_ascii_start().strip_prefix(b"\"")?;
        iso_prefix(value)
    })
}

/// Value of the ASCII digits `s` (all of them digits), else `None`.
fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

/// `HH:MM:SS` at the start of `s`.
fn hms(s: &[u8]) -> Option<(u32, u32, u32)> {
    if s.len() < 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    Some((digits(&s[0..2])?, digits(&s[3..5])?, digits(&s[6..8])?))
}

/// Optional `.123`/`,123456` fraction at the start of `s`: (milliseconds,
/// bytes used). Digits past the millisecond are dropped (truncation, like
/// CloudWatch's millisecond timestamps).
fn fraction(s: &[u8]) -> (u32, usize) {
    if s.len() < 2 || !matches!(s[0], b'.' | b',') || !s[1].is_ascii_digit() {
        return (0, 0);
    }
    let n = s[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut ms = 0;
    for i in 0..3 {
        let d = s
            .get(1 + i)
            .filter(|_| i < n)
            .map_or(0, |&b| u32::from(b - b'0'));
        ms = ms * 10 + d;
    }
    (ms, 1 + n)
}

/// ISO-8601/RFC 3339 date-time prefix (optionally after `[`).
fn iso_prefix(line: &[u8]) -> Option<i64> {
    let s = line.strip_prefix(b"[").unwrap_or(line);
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = i32::try_from(digits(&s[0..4])?).ok()?;
    let (month, day) = (digits(&s[5..7])?, digits(&s[8..10])?);
    let (hour, minute, second) = hms(&s[11..19])?;
    let (ms, used) = fraction(&s[19..]);
    let mut rest = &s[19 + used..];

    let mut offset_minutes: i64 = 0;
    match rest.first() {
        Some(b'Z' | b'z') => rest = &rest[1..],
        Some(&sign @ (b'+' | b'-')) => {
            if let Some(hh) = rest.get(1..3).and_then(digits) {
                // Minutes are optional (`+01`), with or without a colon.
                let mm_at = if rest.get(3) == Some(&b':') { 4 } else { 3 };
                let (mm, used) = match rest.get(mm_at..mm_at + 2).and_then(digits) {
                    Some(mm) => (mm, mm_at + 2),
                    None => (0, 3),
                };
                if hh > 23 || mm > 59 {
                    return None;
                }
                let minutes = i64::from(hh * 60 + mm);
                offset_minutes = if sign == b'-' { -minutes } else { minutes };
                rest = &rest[used..];
            }
        }
        _ => {}
    }
    // `2026-11-22T10:00:011` is not a timestamp followed by text.
    if rest.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let t =
        NaiveDate::from_ymd_opt(year, month, day)?.and_hms_milli_opt(hour, minute, second, ms)?;
    Some(t.and_utc().timestamp_millis() - offset_minutes * 60_000)
}

/// Traditional syslog prefix `Mmm dd HH:MM:SS` (day space- or zero-padded).
fn syslog_prefix(s: &[u8], year: i32) -> Option<i64> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    if s.len() < 15 || s[3] != b' ' || s[6] != b' ' {
        return None;
    }
    let month = MONTHS.iter().position(|m| m[..] == s[0..3])? as u32 + 1;
    let day = match s[4] {
        b' ' => digits(&s[5..6])?,
        _ => digits(&s[4..6])?,
    };
    let (hour, minute, second) = hms(&s[7..15])?;
    let (ms, used) = fraction(&s[15..]);
    if s.get(15 + used).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let t =
        NaiveDate::from_ymd_opt(year, month, day)?.and_hms_milli_opt(hour, minute, second, ms)?;
    Some(t.and_utc().timestamp_millis())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// 2026-11-22T10:00:00Z in ms.
    const T0: i64 = 1_795_341_600_000;

    fn ms(iso: &str) -> i64 {
        DateTime::parse_from_rfc3339(iso)
            .unwrap()
            .timestamp_millis()
    }

    /// (origin, [(id, timestamp, message)]) per payload.
    type Chunks = Vec<(String, Vec<(String, i64, String)>)>;

    fn collect(input: &[u8], opts: &FileOptions) -> Chunks {
        let mut out = Vec::new();
        for_each_plain(input, "app.log", opts, &mut |origin, p| {
            let p = p.unwrap();
            assert_eq!(p.message_type, MessageType::Data);
            assert_eq!(p.owner, "");
            out.push((
                origin.to_owned(),
                p.log_events
                    .iter()
                    .map(|e| (e.id.to_string(), e.timestamp, e.message.to_string()))
                    .collect(),
            ));
        });
        out
    }

    #[test]
    fn iso_forms() {
        assert_eq!(ms("2026-11-22T10:00:00Z"), T0);
        let cases: &[(&str, i64)] = &[
            ("2026-11-22T10:00:01.123Z rest", T0 + 1123),
            ("2026-11-22 10:00:01,123 INFO x", T0 + 1123),
            ("2026-11-22T10:00:01Z", T0 + 1000),
            ("2026-11-22T10:00:01", T0 + 1000),
            ("2026-11-22T11:00:01+01:00 x", T0 + 1000),
            ("2026-11-22T05:00:01.5-0500\tx", T0 + 1500),
            ("2026-11-22T12:00:01+02 x", T0 + 1000),
            ("2026-11-22T10:00:01.123456789Z", T0 + 1123),
            ("[2026-11-22 10:00:01,100] ERROR", T0 + 1100),
            ("2026-11-22t10:00:01z", T0 + 1000),
        ];
        for &(line, want) in cases {
            assert_eq!(line_timestamp(line.as_bytes(), 2026), Some(want), "{line}");
        }
        for line in [
            "2026-13-22T10:00:01Z",
            "2026-11-22T25:00:01Z",
            "2026-11-22",
            "2026-11-22T10:00",
            "2026-11-22T10:00:012",
            "20261122T100001Z",
            "x2026-11-22T10:00:01Z",
            "START RequestId: 1 Version: $LATEST",
        ] {
            assert_eq!(line_timestamp(line.as_bytes(), 2026), None, "{line}");
        }
    }

    #[test]
    fn syslog_forms() {
        let nov22 = T0 - 10 * 3_600_000;
        let cases: &[(&str, i64)] = &[
            ("Nov 22 10:00:01 host sshd[123]: Failed password", T0 + 1000),
            (
                "Nov  2 10:00:01 host x",
                nov22 - 20 * 86_400_000 + 36_001_000,
            ),
            (
                "Nov 02 10:00:01 host x",
                nov22 - 20 * 86_400_000 + 36_001_000,
            ),
            ("Nov 22 10:00:01", T0 + 1000),
        ];
        for &(line, want) in cases {
            assert_eq!(line_timestamp(line.as_bytes(), 2026), Some(want), "{line}");
        }
        for line in [
            "Foo 22 10:00:01 x",
            "Feb 30 10:00:01 x",
            "Nov 22 10:00 x",
            "nov 22 10:00:01",
        ] {
            assert_eq!(line_timestamp(line.as_bytes(), 2026), None, "{line}");
        }
    }

    #[test]
    fn plain_log_with_iso_syslog_and_bare_lines() {
        let default = ms("2026-01-01T00:00:00Z");
        let opts = FileOptions {
            default_timestamp_ms: default,
            ..FileOptions::default()
        };
        let input = b"no timestamp yet\n\
            2026-11-22T10:00:01.123Z first\n\
            \tat continuation\n\
            \n   \n\
            Nov 22 10:00:05 host sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2\n\
            END RequestId: x\n";
        let got = collect(input, &opts);
        assert_eq!(got.len(), 1);
        let (origin, events) = &got[0];
        assert_eq!(origin, "lines 1-7");
        let want = [
            ("1", default, "no timestamp yet"),
            ("2", T0 + 1123, "2026-11-22T10:00:01.123Z first"),
            ("3", T0 + 1123, "\tat continuation"),
            (
                "6",
                T0 + 5000,
                "Nov 22 10:00:05 host sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
            ),
            ("7", T0 + 5000, "END RequestId: x"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|&(id, ts, m)| (id.to_owned(), ts, m.to_owned()))
            .collect();
        assert_eq!(events, &want);
    }

    #[test]
    fn group_and_stream_default_and_override() {
        let mut seen = Vec::new();
        let opts = FileOptions::default();
        for_each_plain(b"x\n", "dir/app.log", &opts, &mut |_, p| {
            let p = p.unwrap();
            seen.push((p.log_group.to_string(), p.log_stream.to_string()));
        });
        let opts = FileOptions {
            log_group: Some("/aws/lambda/checkout".into()),
            log_stream: Some("stream-1".into()),
            ..FileOptions::default()
        };
        for_each_plain(b"x\n", "dir/app.log", &opts, &mut |_, p| {
            let p = p.unwrap();
            seen.push((p.log_group.to_string(), p.log_stream.to_string()));
        });
        assert_eq!(
            seen,
            [
                ("local".to_owned(), "dir/app.log".to_owned()),
                ("/aws/lambda/checkout".to_owned(), "stream-1".to_owned())
            ]
        );
    }

    #[test]
    fn crlf_bom_and_no_final_newline() {
        let got = collect(
            b"\xef\xbb\xbf2026-11-22T10:00:00Z a\r\nb\r\n\r\nc",
            &FileOptions::default(),
        );
        let events = &got[0].1;
        assert_eq!(
            events,
            &[
                ("1".to_owned(), T0, "2026-11-22T10:00:00Z a".to_owned()),
                ("2".to_owned(), T0, "b".to_owned()),
                ("4".to_owned(), T0, "c".to_owned()),
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_lossy_for_that_line_only() {
        let mut seen = Vec::new();
        for_each_plain(
            b"caf\xe9 latin-1\nok \xc3\xa9\n",
            "x",
            &FileOptions::default(),
            &mut |_, p| {
                let p = p.unwrap();
                for e in &p.log_events {
                    seen.push((e.message.to_string(), matches!(e.message, Cow::Borrowed(_))));
                }
            },
        );
        assert_eq!(
            seen,
            [
                ("caf\u{fffd} latin-1".to_owned(), false),
                ("ok é".to_owned(), true)
            ]
        );
    }

    #[test]
    fn big_files_are_chunked() {
        let mut input = Vec::new();
        for i in 0..(PLAIN_CHUNK_EVENTS + 5) {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let got = collect(&input, &FileOptions::default());
        let origins: Vec<_> = got.iter().map(|(o, e)| (o.as_str(), e.len())).collect();
        assert_eq!(
            origins,
            [("lines 1-10000", 10_000), ("lines 10001-10005", 5)]
        );
    }

    #[test]
    fn one_megabyte_line_is_one_borrowed_event() {
        let mut input = b"2026-11-22T10:00:00Z ".to_vec();
        input.resize(1 << 20, b'A');
        input.push(b'\n');
        let mut n = 0;
        for_each_plain(&input, "big", &FileOptions::default(), &mut |_, p| {
            let p = p.unwrap();
            assert_eq!(p.log_events.len(), 1);
            let e = &p.log_events[0];
            assert_eq!(e.message.len(), 1 << 20);
            assert!(matches!(e.message, Cow::Borrowed(_)));
            assert_eq!(e.timestamp, T0);
            n += 1;
        });
        assert_eq!(n, 1);
    }

    #[test]
    fn a_nul_is_a_character_of_its_line() {
        let got = collect(
            b"Nov 22 10:00:01 host a\0b\nnext\n",
            &FileOptions::default(),
        );
        let messages: Vec<&str> = got[0].1.iter().map(|e| e.2.as_str()).collect();
        assert_eq!(messages, ["Nov 22 10:00:01 host a\0b", "next"]);
    }

    #[test]
    fn lines_past_the_cap_are_reported_not_read() {
        let opts = FileOptions {
            limits: super::super::Limits {
                max_file_lines: 3,
                ..Default::default()
            },
            ..FileOptions::default()
        };
        let mut seen = Vec::new();
        for_each_plain(b"a\n\nc\nd\ne\n", "x", &opts, &mut |origin, p| {
            seen.push((
                origin.to_owned(),
                p.map(|p| p.log_events.len()).map_err(|e| e.to_string()),
            ));
        });
        assert_eq!(
            seen,
            [
                ("lines 1-3".to_owned(), Ok(2)),
                (
                    "line 4".to_owned(),
                    Err("plain log longer than the 3-line cap (--max-file-lines): \
                         the rest was not read"
                        .to_owned())
                ),
            ]
        );
        // Blank lines past the cap are nothing to report.
        let mut units = 0;
        for_each_plain(b"a\nb\nc\n\n \n", "x", &opts, &mut |_, p| {
            assert!(p.is_ok());
            units += 1;
        });
        assert_eq!(units, 1);
    }

    #[test]
    fn binary_means_mostly_odd_bytes_at_the_start_or_in_all() {
        let text = b"Nov 22 10:00:01 host sshd[1]: Accepted publickey for deploy\n".repeat(200);
        assert!(text.len() > BINARY_SAMPLE);
        binary_check(&text).unwrap();
        // A few NULs, control bytes and invalid bytes: still text.
        let mut garbled = text.clone();
        garbled[10] = 0;
        garbled[500..510].copy_from_slice(&[0, 1, 2, 0xff, 0xfe, 0x7f, 0, 0, 0, 0]);
        binary_check(&garbled).unwrap();
        // Colour codes are text.
        binary_check(&b"\x1b[31mERROR\x1b[0m boom\n".repeat(100)).unwrap();
        // Binary from the first byte.
        let err = binary_check(&[0xff; 20_000]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a recognised input: expected an awslogs/Kinesis/Firehose event, a \
             subscription payload, gzip, NDJSON or a plain log (binary data: 100% of the \
             first 8192 bytes are control bytes or invalid UTF-8)"
        );
        // Binary behind a page of text: most of the file.
        let mut behind = text.clone();
        behind.extend(std::iter::repeat_n(0u8, 3 * text.len()));
        let err = binary_check(&behind).unwrap_err();
        assert!(err.to_string().contains("75% of its"), "{err}");
    }
}
