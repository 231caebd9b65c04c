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
//! Lines as the AWS tools print them are taken apart, so the message is the
//! event as CloudWatch Logs holds it and the platform lines (`START`,
//! `REPORT`, …) are recognised:
//! - `aws logs tail` (detailed, its default): `<time> <stream> <message>`,
//!   `2026-11-22T10:00:00.123000+00:00 2026/11/22/[$LATEST]abc START …`;
//! - `aws logs tail --format short`: `<time> <message>` when the message is
//!   a Lambda platform line or a Lambda line that starts with its own time;
//! - `sam logs`: `<stream> <time> <message>`,
//!   `2023/06/02/[72]88ab… 2023-06-02T11:27:22.355000 RESTORE_START …`;
//! - a console or Logs Insights export (CSV): a first line naming the
//!   columns, `timestamp,message` (or `@timestamp,@logStream,@message`, in
//!   any order, quoted or not), then one row per event; the time is epoch
//!   milliseconds or ISO-8601, a quoted field may hold commas and `""`.
//!   A row whose message spans lines is not put back together.
//!
//! The stream named by a line is the event's log stream (a new payload
//! starts where it changes), unless [`FileOptions::log_stream`] names one.
//!
//! Timestamps, in order of preference:
//! 1. an ISO-8601/RFC 3339 prefix, optionally after `[`:
//!    `2026-11-22T10:00:01.123Z`, `2026-11-22 10:00:01,123`, `…+01:00`,
//!    `…+0100`; without a zone it is UTC;
//! 2. a syslog prefix `Nov 22 10:00:01` (UTC). Syslog omits the year: a
//!    date is put in the year of [`FileOptions::default_timestamp_ms`] (the
//!    file's modification time, the clock for stdin), or the year before
//!    when that would put it more than a day after that time, so `Dec 31`
//!    in a file written on Jan 5 is last year's and a file running across
//!    New Year keeps its order. [`FileOptions::syslog_year`] sets the year
//!    of the first date instead, and a date that goes back by more than six
//!    months from the one before is in the next year;
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
    let mut years = SyslogYears::new(opts);
    let mut payload = Payload {
        region: None,
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
    let csv = csv_columns(body);
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // The CSV header names the columns; it is no event.
        if csv.as_ref().is_some_and(|c| c.header_line == index) {
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
        let printed = match &csv {
            Some(c) => c.row(line),
            None => printed(line),
        };
        let message = match printed {
            Some(p) => {
                last_ts = p.timestamp.unwrap_or(last_ts);
                if let Some(stream) = p.stream.filter(|_| opts.log_stream.is_none()) {
                    if !payload.log_events.is_empty() && payload.log_stream.as_bytes() != stream {
                        f(&lines_origin(first_line, last_line), Ok(&payload));
                        payload.log_events.clear();
                    }
                    payload.log_stream = String::from_utf8_lossy(stream);
                }
                p.message
            }
            None => {
                if let Some(ts) = line_time(line, &mut years) {
                    last_ts = ts;
                }
                Cow::Borrowed(line)
            }
        };
        if payload.log_events.is_empty() {
            first_line = number;
        }
        last_line = number;
        payload.log_events.push(LogEvent {
            id: Cow::Owned(number.to_string()),
            timestamp: last_ts,
            message: match message {
                Cow::Borrowed(b) => String::from_utf8_lossy(b),
                Cow::Owned(v) => Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
            },
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
#[cfg(test)]
pub(crate) fn line_timestamp(line: &[u8], syslog_year: i32) -> Option<i64> {
    if line.first() == Some(&b'{') {
        return json_time(line);
    }
    iso_prefix(line).or_else(|| syslog_prefix(line, syslog_year))
}

/// The timestamp a line starts with, in ms since the epoch, a syslog date
/// placed in its year by `years`.
fn line_time(line: &[u8], years: &mut SyslogYears) -> Option<i64> {
    if line.first() == Some(&b'{') {
        return json_time(line);
    }
    iso_prefix(line).or_else(|| years.place(line))
}

/// A day, in ms: how far past the reference time a syslog date may be.
const DAY_MS: i64 = 86_400_000;

/// Puts syslog dates (which have no year) in a year, line after line.
#[derive(Debug)]
struct SyslogYears {
    /// The reference time (ms): a date lands at most a day after it.
    reference: i64,
    /// `--year`: the year of the first date, then of the dates after it.
    fixed: Option<i32>,
    /// The previous date placed under `fixed`.
    previous: Option<i64>,
}

impl SyslogYears {
    fn new(opts: &FileOptions) -> Self {
        SyslogYears {
            reference: opts.default_timestamp_ms,
            fixed: opts.syslog_year,
            previous: None,
        }
    }

    /// The syslog date `line` starts with, in its year.
    fn place(&mut self, line: &[u8]) -> Option<i64> {
        if let Some(year) = self.fixed {
            let mut t = syslog_prefix(line, year)?;
            // December, then January: the year turned. Six months back is
            // a new year, not lines out of order.
            if self.previous.is_some_and(|p| t < p - 183 * DAY_MS) {
                self.fixed = Some(year + 1);
                t = syslog_prefix(line, year + 1)?;
            }
            self.previous = Some(t);
            return Some(t);
        }
        let year = DateTime::from_timestamp_millis(self.reference).map_or(1970, |t| t.year());
        let t = syslog_prefix(line, year)?;
        if t > self.reference + DAY_MS {
            return syslog_prefix(line, year - 1);
        }
        Some(t)
    }
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
    iso_time(s).map(|(t, _)| t)
}

/// ISO-8601/RFC 3339 date-time at the start of `s`: ms since the epoch and
/// the bytes it takes.
fn iso_time(s: &[u8]) -> Option<(i64, usize)> {
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
    Some((
        t.and_utc().timestamp_millis() - offset_minutes * 60_000,
        s.len() - rest.len(),
    ))
}

/// A line as a tool printed it, taken apart.
#[derive(Debug, PartialEq)]
struct Printed<'l> {
    /// The event's time, when the line gives it.
    timestamp: Option<i64>,
    /// The log stream the line names.
    stream: Option<&'l [u8]>,
    /// The event's message, as CloudWatch Logs holds it.
    message: Cow<'l, [u8]>,
}

/// Starts of Lambda platform lines: after a bare time (`aws logs tail
/// --format short`) they say the line is a printed event.
const PLATFORM_STARTS: [&[u8]; 9] = [
    b"START RequestId:",
    b"END RequestId:",
    b"REPORT RequestId:",
    b"INIT_START ",
    b"INIT_REPORT ",
    b"RESTORE_START ",
    b"RESTORE_REPORT ",
    b"EXTENSION",
    b"TELEMETRY",
];

/// `line` as `aws logs tail` or `sam logs` prints an event (see the module
/// docs), else `None`: the line is the message.
fn printed(line: &[u8]) -> Option<Printed<'_>> {
    // sam logs: <stream> <time> <message>.
    if let Some(n) = lambda_stream(line)
        && line.get(n) == Some(&b' ')
        && let Some((t, m)) = iso_time(&line[n + 1..])
        && line.get(n + 1 + m) == Some(&b' ')
    {
        return Some(Printed {
            timestamp: Some(t),
            stream: Some(&line[..n]),
            message: Cow::Borrowed(&line[n + 2 + m..]),
        });
    }
    let (t, m) = iso_time(line)?;
    let rest = line.get(m..)?.strip_prefix(b" ")?;
    // aws logs tail: <time> <stream> <message>.
    if let Some(n) = lambda_stream(rest)
        && rest.get(n) == Some(&b' ')
    {
        return Some(Printed {
            timestamp: Some(t),
            stream: Some(&rest[..n]),
            message: Cow::Borrowed(&rest[n + 1..]),
        });
    }
    // aws logs tail --format short: <time> <message>, only for messages
    // that are Lambda's own (an application line that happens to start
    // with a time stays whole).
    let lambda_line = PLATFORM_STARTS.iter().any(|p| rest.starts_with(p))
        || iso_time(rest).is_some_and(|(_, k)| matches!(rest.get(k), Some(b' ' | b'\t')));
    lambda_line.then_some(Printed {
        timestamp: Some(t),
        stream: None,
        message: Cow::Borrowed(rest),
    })
}

/// Length of a Lambda log stream name at the start of `s`
/// (`2026/11/22/[$LATEST]0123abcd`: a date, `/`, then a `[version]` and an
/// id, no spaces).
fn lambda_stream(s: &[u8]) -> Option<usize> {
    let date = s.get(..11)?;
    let shape = date.iter().enumerate().all(|(i, &b)| {
        if matches!(i, 4 | 7 | 10) {
            b == b'/'
        } else {
            b.is_ascii_digit()
        }
    });
    if !shape || s.get(11) != Some(&b'[') {
        return None;
    }
    let n = s
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(s.len());
    s[11..n].contains(&b']').then_some(n)
}

/// The columns of a CSV export, from its header line.
#[derive(Debug, PartialEq)]
struct CsvColumns {
    /// Index of the header among the input's lines.
    header_line: usize,
    timestamp: usize,
    message: usize,
    stream: Option<usize>,
}

/// The columns when the first line that is not blank is a CSV header naming
/// `timestamp` and `message` (`@` prefixes, quotes and case ignored).
fn csv_columns(body: &[u8]) -> Option<CsvColumns> {
    let (header_line, line) = body
        .split(|&b| b == b'\n')
        .enumerate()
        .find(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > 200 {
        return None;
    }
    let names: Vec<Vec<u8>> = csv_fields(line)
        .into_iter()
        .map(|f| {
            let f = f.trim_ascii();
            f.strip_prefix(b"@").unwrap_or(f).to_ascii_lowercase()
        })
        .collect();
    let at = |name: &[u8]| names.iter().position(|n| n == name);
    Some(CsvColumns {
        header_line,
        timestamp: at(b"timestamp")?,
        message: at(b"message")?,
        stream: at(b"logstream"),
    })
}

impl CsvColumns {
    /// One row: its time, stream and message (a row without a message
    /// column is taken whole).
    fn row<'l>(&self, line: &'l [u8]) -> Option<Printed<'l>> {
        let mut fields = csv_fields(line);
        if self.message >= fields.len() {
            return None;
        }
        let ts = fields
            .get(self.timestamp)
            .and_then(|f| csv_time(f.trim_ascii()));
        let stream = self.stream.and_then(|i| match fields.get(i) {
            Some(Cow::Borrowed(b)) if !b.is_empty() => Some(*b),
            _ => None,
        });
        Some(Printed {
            timestamp: ts,
            stream,
            message: fields.swap_remove(self.message),
        })
    }
}

/// A CSV time: epoch seconds or milliseconds, or ISO-8601 (`2026-11-22
/// 10:00:00.123` is UTC).
fn csv_time(f: &[u8]) -> Option<i64> {
    if !f.is_empty() && f.iter().all(u8::is_ascii_digit) {
        let n: i64 = std::str::from_utf8(f).ok()?.parse().ok()?;
        return Some(if f.len() <= 10 { n * 1000 } else { n });
    }
    iso_time(f).map(|(t, _)| t)
}

/// The fields of one CSV line: quoted fields unquoted (`""` is `"`), borrowed
/// when nothing had to change. An unterminated quote runs to the end of the
/// line.
fn csv_fields(line: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if line.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            let mut owned: Option<Vec<u8>> = None;
            while j < line.len() {
                if line[j] == b'"' {
                    if line.get(j + 1) == Some(&b'"') {
                        owned
                            .get_or_insert_with(|| line[start..j].to_vec())
                            .push(b'"');
                        j += 2;
                        continue;
                    }
                    break;
                }
                if let Some(o) = owned.as_mut() {
                    o.push(line[j]);
                }
                j += 1;
            }
            out.push(owned.map_or(Cow::Borrowed(&line[start..j.min(line.len())]), Cow::Owned));
            // Past the closing quote, to the next comma.
            i = match line[j.min(line.len())..].iter().position(|&b| b == b',') {
                Some(k) => j + k + 1,
                None => return out,
            };
        } else {
            match line[i..].iter().position(|&b| b == b',') {
                Some(k) => {
                    out.push(Cow::Borrowed(&line[i..i + k]));
                    i += k + 1;
                }
                None => {
                    out.push(Cow::Borrowed(&line[i..]));
                    return out;
                }
            }
        }
    }
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
        // Written after its lines, as a log is: the syslog date is this year's.
        let default = ms("2026-12-01T00:00:00Z");
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

    /// (stream, timestamp, message) of each event, in order.
    fn events(input: &[u8], opts: &FileOptions) -> Vec<(String, i64, String)> {
        let mut out = Vec::new();
        for_each_plain(input, "saved.log", opts, &mut |_, p| {
            let p = p.unwrap();
            for e in &p.log_events {
                out.push((p.log_stream.to_string(), e.timestamp, e.message.to_string()));
            }
        });
        out
    }

    #[test]
    fn aws_logs_tail_lines_give_time_stream_and_the_message_as_logged() {
        let input = b"2026-11-22T10:00:00.123000+00:00 2026/11/22/[$LATEST]abc START RequestId: r1 Version: $LATEST\n\
2026-11-22T10:00:03.200000+00:00 2026/11/22/[$LATEST]abc REPORT RequestId: r1\tDuration: 3000.00 ms\tStatus: timeout\n\
2026-11-22T10:00:04.000000+00:00 2026/11/22/[$LATEST]def START RequestId: r2 Version: $LATEST\n";
        let got = events(input, &FileOptions::default());
        assert_eq!(
            got,
            [
                (
                    "2026/11/22/[$LATEST]abc".into(),
                    T0 + 123,
                    "START RequestId: r1 Version: $LATEST".into()
                ),
                (
                    "2026/11/22/[$LATEST]abc".into(),
                    T0 + 3200,
                    "REPORT RequestId: r1\tDuration: 3000.00 ms\tStatus: timeout".into()
                ),
                (
                    "2026/11/22/[$LATEST]def".into(),
                    T0 + 4000,
                    "START RequestId: r2 Version: $LATEST".into()
                ),
            ]
        );
        // An explicit --log-stream wins over the line's.
        let opts = FileOptions {
            log_stream: Some("mine".into()),
            ..FileOptions::default()
        };
        assert!(events(input, &opts).iter().all(|(s, _, _)| s == "mine"));
    }

    #[test]
    fn sam_logs_and_short_tail_lines_are_taken_apart_and_app_lines_stay_whole() {
        let input = b"2023/06/02/[72]88ab 2023-06-02T11:27:22.719000 RESTORE_REPORT Restore Duration: 398.97 ms\n\
2026-11-22T10:00:01 REPORT RequestId: r1\tDuration: 1.00 ms\n\
2026-11-22T10:00:02 2026-11-22T10:00:01.500Z r1 Task timed out after 3.00 seconds\n\
2026-11-22T10:00:03Z INFO START of the nightly job\n";
        let got = events(input, &FileOptions::default());
        let restore = ms("2023-06-02T11:27:22.719Z");
        assert_eq!(
            got,
            [
                (
                    "2023/06/02/[72]88ab".into(),
                    restore,
                    "RESTORE_REPORT Restore Duration: 398.97 ms".into()
                ),
                (
                    "2023/06/02/[72]88ab".into(),
                    T0 + 1000,
                    "REPORT RequestId: r1\tDuration: 1.00 ms".into()
                ),
                (
                    "2023/06/02/[72]88ab".into(),
                    T0 + 2000,
                    "2026-11-22T10:00:01.500Z r1 Task timed out after 3.00 seconds".into()
                ),
                (
                    "2023/06/02/[72]88ab".into(),
                    T0 + 3000,
                    "2026-11-22T10:00:03Z INFO START of the nightly job".into()
                ),
            ]
        );
    }

    #[test]
    fn csv_exports_give_time_stream_and_unquoted_message() {
        let input = b"\"@timestamp\",\"@logStream\",\"@message\"\n\
2026-11-22 10:00:00.123,2026/11/22/[$LATEST]abc,\"REPORT RequestId: r1\tStatus: error\tError Type: Runtime.OutOfMemory\"\n\
1795341601000,2026/11/22/[$LATEST]abc,\"said \"\"hi\"\", then, left\"\n";
        let got = events(input, &FileOptions::default());
        assert_eq!(
            got,
            [
                (
                    "2026/11/22/[$LATEST]abc".into(),
                    T0 + 123,
                    "REPORT RequestId: r1\tStatus: error\tError Type: Runtime.OutOfMemory".into()
                ),
                (
                    "2026/11/22/[$LATEST]abc".into(),
                    T0 + 1000,
                    "said \"hi\", then, left".into()
                ),
            ]
        );
        let plain = events(
            b"timestamp,message\n1795341600000,END RequestId: r1\n",
            &FileOptions::default(),
        );
        assert_eq!(
            plain,
            [("saved.log".into(), T0, "END RequestId: r1".into())]
        );
        // A first line that merely mentions the words is no header.
        let text = events(
            b"timestamp and message are logged\n",
            &FileOptions::default(),
        );
        assert_eq!(text.len(), 1);
        assert_eq!(text[0].2, "timestamp and message are logged");
    }

    #[test]
    fn syslog_dates_roll_back_a_year_past_the_reference_and_cross_new_year() {
        // A file written on 2027-01-05 12:00 UTC.
        let opts = FileOptions {
            default_timestamp_ms: ms("2027-01-05T12:00:00Z"),
            ..FileOptions::default()
        };
        let got = events(
            b"Dec 10 08:00:00 h a\nDec 31 23:59:59 h b\nJan  1 00:00:01 h c\nJan  6 11:00:00 h d\nJan  7 00:00:00 h e\n",
            &opts,
        );
        let times: Vec<i64> = got.iter().map(|e| e.1).collect();
        assert_eq!(
            times,
            [
                ms("2026-12-10T08:00:00Z"),
                ms("2026-12-31T23:59:59Z"),
                ms("2027-01-01T00:00:01Z"),
                // Within a day after the reference: this year.
                ms("2027-01-06T11:00:00Z"),
                // More than a day after it: a year before.
                ms("2026-01-07T00:00:00Z"),
            ]
        );
    }

    #[test]
    fn a_given_year_is_the_first_dates_and_turns_at_new_year() {
        let opts = FileOptions {
            default_timestamp_ms: ms("2027-06-01T00:00:00Z"),
            syslog_year: Some(2024),
            ..FileOptions::default()
        };
        let got = events(
            b"Dec 31 23:59:59 h a\nDec 31 23:59:58 h late\nJan  1 00:00:01 h b\nFeb  1 00:00:00 h c\n",
            &opts,
        );
        let times: Vec<i64> = got.iter().map(|e| e.1).collect();
        assert_eq!(
            times,
            [
                ms("2024-12-31T23:59:59Z"),
                ms("2024-12-31T23:59:58Z"),
                ms("2025-01-01T00:00:01Z"),
                ms("2025-02-01T00:00:00Z"),
            ]
        );
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
