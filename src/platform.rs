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

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Deserialize;

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
        Some(b'S') => parse_start(msg),
        Some(b'E') => parse_e(msg),
        Some(b'R') => parse_r(msg),
        Some(b'I') => parse_i(msg),
        Some(b'L') => other_platform(msg, "LOGS"),
        Some(b'T') => parse_t(msg),
        Some(b'{') => parse_json(msg),
        Some(b'0'..=b'9') => return parse_prefixed(msg),
        _ => None,
    };
    match platform {
        Some(record) => record,
        None => app(msg, unprefixed_app_line(msg)),
    }
}

// ---------------------------------------------------------------------------
// Text tokenizer shared by the platform text lines.

/// Separators between fields: Lambda uses TAB, sometimes `" \t"`, users
/// abbreviate with runs of spaces, and some fixtures carry a double-escaped
/// literal `\t` (backslash, `t`).
fn is_space(b: u8) -> bool {
    CLASS[usize::from(b)] == SPACE
}

const SPACE: u8 = 1;
const BACKSLASH: u8 = 2;

/// One table lookup per byte in the tokenizer loops instead of a chain of
/// comparisons.
static CLASS: [u8; 256] = {
    let mut table = [0; 256];
    table[b' ' as usize] = SPACE;
    table[b'\t' as usize] = SPACE;
    table[b'\n' as usize] = SPACE;
    table[b'\r' as usize] = SPACE;
    table[b'\\' as usize] = BACKSLASH;
    table
};

fn is_escape_letter(b: Option<&u8>) -> bool {
    matches!(b, Some(b't' | b'n' | b'r'))
}

fn literal_escape_at(b: &[u8], i: usize) -> bool {
    b.get(i) == Some(&b'\\') && is_escape_letter(b.get(i + 1))
}

fn skip_separators(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match CLASS[usize::from(c)] {
            SPACE => i += 1,
            BACKSLASH if is_escape_letter(b.get(i + 1)) => i += 2,
            _ => break,
        }
    }
    // `i` is always on an ASCII byte or at the end, hence a char boundary.
    s.get(i..).unwrap_or("")
}

fn token_end(s: &str) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    let b = s.as_bytes();
    let mut i = 0;
    // Request ids make up most token bytes: skip 8 bytes at a time while no
    // byte is `<= b' '` (covers every whitespace separator) or a backslash.
    // The bit tricks may over-report, never under-report; the byte loop below
    // then decides exactly.
    while let Some(chunk) = b.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
        let x = u64::from_ne_bytes(chunk);
        let low = x.wrapping_sub(ONES * 0x21) & !x & HIGH;
        let y = x ^ BACKSLASHES;
        let backslash = y.wrapping_sub(ONES) & !y & HIGH;
        if low | backslash != 0 {
            break;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        match CLASS[usize::from(c)] {
            SPACE => break,
            BACKSLASH if is_escape_letter(b.get(i + 1)) => break,
            _ => i += 1,
        }
    }
    i
}

/// `msg` without `word`, if `word` is a whole keyword (followed by a separator
/// or the end): `STARTED` or `START_X` must not look like `START`.
fn strip_word<'a>(msg: &'a str, word: &str) -> Option<&'a str> {
    let rest = msg.strip_prefix(word)?;
    let b = rest.as_bytes();
    (b.is_empty() || is_space(b[0]) || literal_escape_at(b, 0)).then_some(rest)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    RequestId,
    Version,
    Duration,
    BilledDuration,
    MemorySize,
    MaxMemoryUsed,
    InitDuration,
    RestoreDuration,
    BilledRestoreDuration,
    Status,
    ErrorType,
    XrayTraceId,
    Phase,
    RuntimeVersion,
}

/// Inlined so that each comparison is against a constant of known length
/// (a few loads) rather than a `memcmp` call.
#[inline(always)]
fn key_at(s: &[u8], name: &'static str, key: Key) -> Option<(Key, usize)> {
    s.starts_with(name.as_bytes()).then_some((key, name.len()))
}

fn match_key(s: &str) -> Option<(Key, usize)> {
    let b = s.as_bytes();
    match b.first()? {
        b'B' => key_at(b, "Billed Duration:", Key::BilledDuration)
            .or_else(|| key_at(b, "Billed Restore Duration:", Key::BilledRestoreDuration)),
        b'D' => key_at(b, "Duration:", Key::Duration),
        b'E' => key_at(b, "Error Type:", Key::ErrorType),
        b'I' => key_at(b, "Init Duration:", Key::InitDuration),
        b'M' => key_at(b, "Memory Size:", Key::MemorySize)
            .or_else(|| key_at(b, "Max Memory Used:", Key::MaxMemoryUsed)),
        b'P' => key_at(b, "Phase:", Key::Phase),
        b'R' => key_at(b, "RequestId:", Key::RequestId)
            .or_else(|| key_at(b, "Restore Duration:", Key::RestoreDuration))
            .or_else(|| key_at(b, "Runtime Version:", Key::RuntimeVersion)),
        b'S' => key_at(b, "Status:", Key::Status),
        b'V' => key_at(b, "Version:", Key::Version),
        b'X' => key_at(b, "XRAY TraceId:", Key::XrayTraceId),
        _ => None,
    }
}

/// `Key: value` pairs of a platform text line, by hand rather than with a
/// regex: this runs on every REPORT. Keys are only recognised at the start of
/// a token, so `Duration:` never matches inside `Billed Duration:`; unknown
/// tokens (units, `SegmentId: …`, `Runtime Version ARN: …`) are skipped.
struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (Key, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let s = skip_separators(self.rest);
            if s.is_empty() {
                self.rest = s;
                return None;
            }
            if let Some((key, len)) = match_key(s) {
                let after = skip_separators(s.get(len..).unwrap_or(""));
                // An empty value (`Status:\tError Type: X`) must not swallow
                // the next key.
                if match_key(after).is_some() {
                    self.rest = after;
                    return Some((key, ""));
                }
                let end = token_end(after);
                let (value, rest) = after.split_at_checked(end).unwrap_or((after, ""));
                self.rest = rest;
                return Some((key, value));
            }
            let end = token_end(s);
            // `s` starts with a non-separator, so `end >= 1`; the guard keeps
            // the loop finite whatever happens.
            if end == 0 {
                self.rest = "";
                return None;
            }
            self.rest = s.get(end..).unwrap_or("");
        }
    }
}

/// The non-empty request id that must open `START`/`END`/`REPORT`, and the rest.
fn leading_request_id(s: &str) -> Option<(&str, Fields<'_>)> {
    let s = skip_separators(s);
    if !s.starts_with("RequestId:") {
        return None;
    }
    let mut fields = Fields { rest: s };
    match fields.next()? {
        (Key::RequestId, id) if !id.is_empty() => Some((id, fields)),
        _ => None,
    }
}

/// Leading decimal number of `token` (`12.34`, `9804` of `9804ms`). Only
/// digits and dots are accepted so that `inf`/`NaN` never parse.
fn parse_f64(token: &str) -> Option<f64> {
    let b = token.as_bytes();
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut fraction: Option<usize> = None;
    let mut end = 0;
    while let Some(&c) = b.get(end) {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
                digits += 1;
                if let Some(f) = fraction.as_mut() {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            b'.' => return None,
            _ => break,
        }
        end += 1;
    }
    // Clinger's fast path: with at most 15 digits both the mantissa and the
    // power of ten are exact in an f64, so one division is correctly rounded
    // (bit-identical to `str::parse`) and far cheaper.
    match POW10.get(fraction.unwrap_or(0)) {
        Some(&pow) if (1..=15).contains(&digits) => Some(mantissa as f64 / pow),
        // Over 308 digits parse as infinity, which would poison a baseline.
        _ => token
            .get(..end)?
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite()),
    }
}

static POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Leading unsigned integer of `token`; `None` without digits or on overflow.
fn parse_u64(token: &str) -> Option<u64> {
    let mut value: u64 = 0;
    let mut any = false;
    for c in token.bytes() {
        if !c.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        any = true;
    }
    any.then_some(value)
}

fn parse_u32(token: &str) -> Option<u32> {
    u32::try_from(parse_u64(token)?).ok()
}

fn parse_status(value: &str) -> Status {
    if value.eq_ignore_ascii_case("success") {
        Status::Success
    } else if value.eq_ignore_ascii_case("failure") {
        Status::Failure
    } else if value.eq_ignore_ascii_case("error") {
        Status::Error
    } else if value.eq_ignore_ascii_case("timeout") {
        Status::Timeout
    } else {
        Status::Other
    }
}

/// Later duplicates of a field (e.g. a stray `Duration:` from an unknown
/// `Foo Duration:`) must not overwrite the real one.
fn set_once<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

// ---------------------------------------------------------------------------
// Platform text lines.

fn parse_start(msg: &str) -> Option<Record<'_>> {
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

fn parse_e(msg: &str) -> Option<Record<'_>> {
    if let Some(rest) = strip_word(msg, "END") {
        let (id, _) = leading_request_id(rest)?;
        return Some(Record::End {
            request_id: Cow::Borrowed(id),
        });
    }
    if msg.starts_with("EXTENSION") {
        return other_platform(msg, "EXTENSION");
    }
    if msg.starts_with("Error: Runtime exited") {
        return runtime_exit(None, msg);
    }
    None
}

fn parse_r(msg: &str) -> Option<Record<'_>> {
    if let Some(rest) = strip_word(msg, "REPORT") {
        return parse_report(rest);
    }
    if let Some(rest) = msg.strip_prefix("RequestId:") {
        return parse_request_id_line(rest);
    }
    if let Some(rest) = strip_word(msg, "RESTORE_REPORT") {
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
        return Some(Record::RestoreReport {
            duration_ms,
            status: status.unwrap_or(Status::Success),
            error_type,
        });
    }
    if strip_word(msg, "RESTORE_START").is_some() {
        return Some(Record::OtherPlatform {
            kind: Cow::Borrowed("RESTORE_START"),
        });
    }
    if strip_word(msg, "Runtime.ExitError").is_some() {
        return runtime_exit(None, msg);
    }
    None
}

fn parse_i(msg: &str) -> Option<Record<'_>> {
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

fn parse_t(msg: &str) -> Option<Record<'_>> {
    if msg.starts_with(TIMED_OUT) {
        return timeout(None, msg);
    }
    other_platform(msg, "TELEMETRY")
}

/// `EXTENSION`, `LOGS`, `TELEMETRY` subscription lines. Requiring `Name:` keeps
/// an application line such as `LOGS rotated` out.
fn other_platform<'a>(msg: &'a str, word: &'static str) -> Option<Record<'a>> {
    let rest = skip_separators(strip_word(msg, word)?);
    rest.starts_with("Name:").then_some(Record::OtherPlatform {
        kind: Cow::Borrowed(word),
    })
}

fn parse_report(rest: &str) -> Option<Record<'_>> {
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

const TIMED_OUT: &str = "Task timed out after ";

/// `text` starts with [`TIMED_OUT`]; without a readable number it is not a
/// timeout line we can use.
fn timeout<'a>(request_id: Option<&'a str>, text: &'a str) -> Option<Record<'a>> {
    let after = text.strip_prefix(TIMED_OUT)?;
    let seconds = parse_f64(after.get(..token_end(after))?)?;
    Some(Record::Timeout {
        request_id: request_id.map(Cow::Borrowed),
        seconds,
    })
}

/// `RequestId: X <what happened>` (after the `RequestId:` key).
fn parse_request_id_line(rest: &str) -> Option<Record<'_>> {
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

fn runtime_exit<'a>(request_id: Option<&'a str>, text: &'a str) -> Option<Record<'a>> {
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

// ---------------------------------------------------------------------------
// JSON platform events.

/// A string that stays borrowed from the message unless it contains escapes.
/// (`#[serde(borrow)]` on a bare `Option<Cow<str>>` field would always allocate.)
#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct JsonEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(default, borrow)]
    record: Option<JsonRecord<'a>>,
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
struct JsonRecord<'a> {
    #[serde(borrow)]
    request_id: Option<Str<'a>>,
    #[serde(borrow)]
    version: Option<Str<'a>>,
    #[serde(borrow)]
    status: Option<Str<'a>>,
    #[serde(borrow)]
    error_type: Option<Str<'a>>,
    #[serde(borrow)]
    phase: Option<Str<'a>>,
    #[serde(borrow)]
    runtime_version: Option<Str<'a>>,
    metrics: Option<JsonMetrics>,
}

/// Integers are read as `f64` too, so that `12.0` or `12` both work.
#[derive(Deserialize, Default)]
struct JsonMetrics {
    #[serde(rename = "durationMs")]
    duration_ms: Option<f64>,
    #[serde(rename = "billedDurationMs")]
    billed_duration_ms: Option<f64>,
    #[serde(rename = "memorySizeMB")]
    memory_size_mb: Option<f64>,
    #[serde(rename = "maxMemoryUsedMB")]
    max_memory_used_mb: Option<f64>,
    #[serde(rename = "initDurationMs")]
    init_duration_ms: Option<f64>,
    #[serde(rename = "restoreDurationMs")]
    restore_duration_ms: Option<f64>,
    #[serde(rename = "billedRestoreDurationMs")]
    billed_restore_duration_ms: Option<f64>,
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

fn parse_json(msg: &str) -> Option<Record<'_>> {
    if !has_platform_type(msg.as_bytes()) {
        return None;
    }
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

fn from_json(envelope: JsonEnvelope<'_>) -> Option<Record<'_>> {
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

// ---------------------------------------------------------------------------
// Application lines.

fn plain(msg: &str) -> AppLine<'_> {
    AppLine {
        timestamp: None,
        request_id: None,
        level: None,
        body: msg,
        body_is_json: msg.starts_with('{'),
    }
}

/// An application line, unless it carries a runtime's out-of-memory message.
fn app<'a>(msg: &'a str, line: AppLine<'a>) -> Record<'a> {
    match oom_marker(msg.as_bytes()) {
        Some(marker) => Record::OutOfMemory {
            request_id: line.request_id,
            marker,
        },
        None => Record::App(line),
    }
}

fn unprefixed_app_line(msg: &str) -> AppLine<'_> {
    match msg.as_bytes().first() {
        Some(b'{') => json_app_line(msg),
        Some(b'[') => python_prefixed(msg).unwrap_or_else(|| plain(msg)),
        _ => plain(msg),
    }
}

/// `<ts><sep><request id><sep><rest>` where `<ts>` starts like an ISO date.
struct Prefix<'a> {
    timestamp: &'a str,
    request_id: &'a str,
    rest: &'a str,
    tabs: bool,
}

fn split_prefix(msg: &str) -> Option<Prefix<'_>> {
    let b = msg.as_bytes();
    if !(b.get(..4)?.iter().all(u8::is_ascii_digit) && b.get(4) == Some(&b'-')) {
        return None;
    }
    let ts_end = memchr::memchr2(b'\t', b' ', b)?;
    let timestamp = msg.get(..ts_end)?;
    let after = msg.get(ts_end + 1..)?;
    let id_end = memchr::memchr2(b'\t', b' ', after.as_bytes())?;
    let request_id = after.get(..id_end)?;
    if request_id.is_empty() || !request_id.bytes().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    Some(Prefix {
        timestamp,
        request_id,
        rest: after.get(id_end + 1..)?,
        tabs: b.get(ts_end) == Some(&b'\t') && after.as_bytes().get(id_end) == Some(&b'\t'),
    })
}

/// Messages starting with a digit: `<ts> <id> Task timed out …` (space or
/// tab separated) or the runtime prefix `<ts>\t<id>\t<LEVEL>\t<body>`.
fn parse_prefixed(msg: &str) -> Record<'_> {
    let Some(prefix) = split_prefix(msg) else {
        return app(msg, plain(msg));
    };
    if let Some(record) = timeout(Some(prefix.request_id), prefix.rest) {
        return record;
    }
    // Space-separated prefixes are only trusted for the timeout line: plenty
    // of application loggers start with `2024-01-01 12:00:00 …`.
    let line = if prefix.tabs {
        with_level(prefix.timestamp, prefix.request_id, prefix.rest, None)
    } else {
        plain(msg)
    };
    app(msg, line)
}

fn looks_like_level(s: &str) -> bool {
    (1..=16).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_uppercase())
}

/// Node/Java-style `<LEVEL>\t<body>` after the prefix; `level` is already
/// known for the Python layout.
fn with_level<'a>(
    timestamp: &'a str,
    request_id: &'a str,
    rest: &'a str,
    level: Option<&'a str>,
) -> AppLine<'a> {
    let (level, body) = match level {
        Some(level) => (Some(level), rest),
        None => match rest.split_once('\t') {
            Some((level, body)) if looks_like_level(level) => (Some(level), body),
            _ => (None, rest),
        },
    };
    AppLine {
        timestamp: Some(Cow::Borrowed(timestamp)),
        request_id: Some(Cow::Borrowed(request_id)),
        level: level.map(Cow::Borrowed),
        body,
        body_is_json: body.starts_with('{'),
    }
}

/// The Python runtime's logging layout `[LEVEL]\t<ts>\t<request id>\t<body>`.
fn python_prefixed(msg: &str) -> Option<AppLine<'_>> {
    let inner = msg.strip_prefix('[')?;
    // The level is short: look for `]` in a bounded window, not the whole line.
    let close = memchr::memchr(b']', inner.as_bytes().get(..17).unwrap_or(inner.as_bytes()))?;
    let level = inner.get(..close)?;
    let rest = inner.get(close + 1..)?.strip_prefix('\t')?;
    if !looks_like_level(level) {
        return None;
    }
    let prefix = split_prefix(rest)?;
    prefix.tabs.then(|| {
        with_level(
            prefix.timestamp,
            prefix.request_id,
            prefix.rest,
            Some(level),
        )
    })
}

static LEVEL_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\"level\":"));
static REQUEST_ID_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\"requestId\":"));
static TIMESTAMP_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\"timestamp\":"));

/// JSON-format application log: the fields detectors key on are found by a
/// substring scan, not a full parse; the body stays the whole JSON text.
fn json_app_line(msg: &str) -> AppLine<'_> {
    AppLine {
        timestamp: json_string_field(msg, &TIMESTAMP_KEY),
        request_id: json_string_field(msg, &REQUEST_ID_KEY),
        level: json_string_field(msg, &LEVEL_KEY),
        body: msg,
        body_is_json: true,
    }
}

/// The string value after the first occurrence of `"key":`. Borrowed unless
/// the value has escapes; a value that is not a string is `None`.
fn json_string_field<'a>(msg: &'a str, key: &Finder<'_>) -> Option<Cow<'a, str>> {
    let b = msg.as_bytes();
    let mut i = key.find(b)? + key.needle().len();
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let open = i;
    i += 1;
    let mut escaped = false;
    loop {
        match *b.get(i)? {
            b'"' => break,
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    if escaped {
        // Decode `"…"` (both quotes included) with the real JSON rules.
        serde_json::from_str::<String>(msg.get(open..=i)?)
            .ok()
            .map(Cow::Owned)
    } else {
        msg.get(open + 1..i).map(Cow::Borrowed)
    }
}

// ---------------------------------------------------------------------------
// Runtime out-of-memory strings.

/// The markers, as reported in [`Record::OutOfMemory::marker`].
const OOM_GO: &str = "fatal error: runtime: out of memory";
const OOM_JAVA: &str = "java.lang.OutOfMemoryError";
const OOM_NODE: &str = "JavaScript heap out of memory";
const OOM_PYTHON: &str = "MemoryError";
const OOM_RUBY: &str = "failed to allocate memory (NoMemoryError)";

// All five markers contain `out of memory` or `MemoryError`, and both are
// rare in ordinary logs: two memmem passes (with SIMD prefilters on rare
// bytes) and a constant-time check around each hit replace five scans.
static OUT_OF_MEMORY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("out of memory"));
static MEMORY_ERROR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("MemoryError"));

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The first runtime out-of-memory marker in `b`, if any.
fn oom_marker(b: &[u8]) -> Option<&'static str> {
    let out_of_memory = OUT_OF_MEMORY.find_iter(b).find_map(|pos| {
        let before = b.get(..pos).unwrap_or_default();
        if before.ends_with(b"fatal error: runtime: ") {
            Some((pos, OOM_GO))
        } else if before.ends_with(b"JavaScript heap ") {
            Some((pos, OOM_NODE))
        } else {
            None
        }
    });
    let memory_error = MEMORY_ERROR.find_iter(b).find_map(|pos| {
        let before = b.get(..pos).unwrap_or_default();
        let after = b.get(pos + OOM_PYTHON.len()..).unwrap_or_default();
        if before.ends_with(b"java.lang.OutOf") {
            Some((pos, OOM_JAVA))
        } else if before.ends_with(b"failed to allocate memory (No") && after.starts_with(b")") {
            Some((pos, OOM_RUBY))
        } else if !before.last().is_some_and(|&c| is_ident(c))
            && !after.first().is_some_and(|&c| is_ident(c))
        {
            // Python's `MemoryError` as a word, not `NoMemoryErrorHandler`.
            Some((pos, OOM_PYTHON))
        } else {
            None
        }
    });
    match (out_of_memory, memory_error) {
        (Some(a), Some(m)) => Some(if a.0 <= m.0 { a.1 } else { m.1 }),
        (a, m) => a.or(m).map(|(_, marker)| marker),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const ID: &str = "c793869b-ee49-115b-a5b6-4fd21e8dedac";

    fn report(msg: &str) -> Report<'_> {
        match parse(msg) {
            Record::Report(r) => r,
            other => panic!("expected Report for {msg:?}, got {other:?}"),
        }
    }

    fn app_line(msg: &str) -> AppLine<'_> {
        match parse(msg) {
            Record::App(line) => line,
            other => panic!("expected App for {msg:?}, got {other:?}"),
        }
    }

    fn plain_app(msg: &str) -> Record<'_> {
        Record::App(AppLine {
            timestamp: None,
            request_id: None,
            level: None,
            body: msg,
            body_is_json: msg.starts_with('{'),
        })
    }

    fn b(s: &str) -> Cow<'_, str> {
        Cow::Borrowed(s)
    }

    // --- START / END -------------------------------------------------------

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

    // --- REPORT ------------------------------------------------------------

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

    // --- Timeouts and runtime exits ----------------------------------------

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

    // --- Runtime out-of-memory strings -------------------------------------

    #[test]
    fn oom_markers_plain() {
        for (msg, marker) in [
            (
                "fatal error: runtime: out of memory\n\ngoroutine 1 [running]:",
                OOM_GO,
            ),
            (
                "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
                OOM_JAVA,
            ),
            (
                "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
                OOM_NODE,
            ),
            ("MemoryError", OOM_PYTHON),
            (
                "[ERROR] MemoryError\nTraceback (most recent call last):",
                OOM_PYTHON,
            ),
            (
                "Traceback:\nMemoryError: Unable to allocate 8 GiB",
                OOM_PYTHON,
            ),
            ("{\"errorType\": \"MemoryError\"}", OOM_PYTHON),
            (
                "/var/task/app.rb:3:in `*': failed to allocate memory (NoMemoryError)",
                OOM_RUBY,
            ),
        ] {
            assert_eq!(
                parse(msg),
                Record::OutOfMemory {
                    request_id: None,
                    marker
                },
                "{msg:?}"
            );
        }
        assert_eq!(OOM_GO, "fatal error: runtime: out of memory");
        assert_eq!(OOM_JAVA, "java.lang.OutOfMemoryError");
        assert_eq!(OOM_NODE, "JavaScript heap out of memory");
        assert_eq!(OOM_RUBY, "failed to allocate memory (NoMemoryError)");
    }

    #[test]
    fn oom_after_lambda_prefix() {
        assert_eq!(
            parse(&format!(
                "2024-01-01T00:00:00.000Z\t{ID}\tERROR\tjava.lang.OutOfMemoryError: Java heap space\n"
            )),
            Record::OutOfMemory {
                request_id: Some(b(ID)),
                marker: OOM_JAVA
            }
        );
        assert_eq!(
            parse(&format!(
                "[ERROR]\t2024-01-01T00:00:00.000Z\t{ID}\tMemoryError"
            )),
            Record::OutOfMemory {
                request_id: Some(b(ID)),
                marker: OOM_PYTHON
            }
        );
        assert_eq!(
            parse(
                "{\"timestamp\":\"t\",\"level\":\"ERROR\",\"requestId\":\"r-1\",\"message\":\"JavaScript heap out of memory\"}"
            ),
            Record::OutOfMemory {
                request_id: Some(b("r-1")),
                marker: OOM_NODE
            }
        );
    }

    #[test]
    fn oom_first_marker_wins() {
        assert_eq!(
            parse("MemoryError then fatal error: runtime: out of memory"),
            Record::OutOfMemory {
                request_id: None,
                marker: OOM_PYTHON
            }
        );
        assert_eq!(
            parse("x NoMemoryErrorHandler; fatal error: runtime: out of memory; MemoryError"),
            Record::OutOfMemory {
                request_id: None,
                marker: OOM_GO
            }
        );
    }

    #[test]
    fn oom_no_false_positives() {
        for msg in [
            "NoMemoryErrorHandler registered",
            "MemoryErrors are bad",
            "handle_MemoryError()",
            "MemoryError2",
            "out of memory",
            "ran out of memory?",
            "(NoMemoryError)",
            "OutOfMemory",
            "Memory Size: 128 MB",
        ] {
            assert_eq!(parse(msg), plain_app(msg), "{msg:?}");
        }
    }

    // --- INIT / RESTORE ----------------------------------------------------

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

    // --- JSON platform events ----------------------------------------------

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

    // --- Application lines -------------------------------------------------

    #[test]
    fn app_text_prefix_multiline() {
        let msg =
            format!("2019-06-07T19:11:20.563Z\t{ID}\tINFO\tEVENT\n{{\n  \"key\": \"value\"\n}}\n");
        let line = app_line(&msg);
        assert_eq!(
            line,
            AppLine {
                timestamp: Some(b("2019-06-07T19:11:20.563Z")),
                request_id: Some(b(ID)),
                level: Some(b("INFO")),
                body: "EVENT\n{\n  \"key\": \"value\"\n}",
                body_is_json: false,
            }
        );
    }

    #[test]
    fn app_text_prefix_json_body() {
        let msg = format!("2024-01-01T00:00:00.000Z\t{ID}\tERROR\t{{\"event\":\"login_failed\"}}");
        let line = app_line(&msg);
        assert_eq!(line.level.as_deref(), Some("ERROR"));
        assert_eq!(line.body, "{\"event\":\"login_failed\"}");
        assert!(line.body_is_json);
    }

    #[test]
    fn app_text_prefix_without_level() {
        let line = app_line("2024-01-01T00:00:00.000Z\tundefined\tjust a message\twith tab");
        assert_eq!(line.request_id.as_deref(), Some("undefined"));
        assert_eq!(line.level, None);
        assert_eq!(line.body, "just a message\twith tab");
        let line = app_line("2024-01-01T00:00:00.000Z\tabc\t");
        assert_eq!(line.request_id.as_deref(), Some("abc"));
        assert_eq!(line.body, "");
    }

    #[test]
    fn app_python_prefix() {
        let msg = format!("[WARNING]\t2024-01-01T00:00:00.123Z\t{ID}\tdisk almost full\n");
        let line = app_line(&msg);
        assert_eq!(
            line,
            AppLine {
                timestamp: Some(b("2024-01-01T00:00:00.123Z")),
                request_id: Some(b(ID)),
                level: Some(b("WARNING")),
                body: "disk almost full",
                body_is_json: false,
            }
        );
        for msg in [
            "[ERROR] Runtime.ImportModuleError: Unable to import module 'app'",
            "[INFO]\tnot a timestamp\tx\ty",
            "[info]\t2024-01-01T00:00:00Z\tid\tbody",
            "[",
        ] {
            assert_eq!(parse(msg), plain_app(msg), "{msg:?}");
        }
    }

    #[test]
    fn app_not_a_prefix() {
        for msg in [
            "2024-01-01 12:00:00 INFO started",
            "2024-01-01T00:00:00Z started",
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00Z\t\tINFO\tempty id",
            "2024-01-01T00:00:00Z\tid with space\tINFO\tx",
            "20x4-01-01T00:00:00Z\tid\tINFO\tx",
            "2024_01-01T00:00:00Z\tid\tINFO\tx",
            "12345",
            "2024-01-01T00:00:00Z\tabc",
            "2024-01-01T00:00:00Z abc INFO hello",
        ] {
            assert_eq!(parse(msg), plain_app(msg), "{msg:?}");
        }
    }

    #[test]
    fn app_json_format() {
        let msg = r#"{"timestamp":"2024-05-20T16:29:45.009Z","level":"INFO","requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715","message":"ENV 2024-05-20T16:29:42.891Z"}"#;
        let line = app_line(msg);
        assert_eq!(
            line,
            AppLine {
                timestamp: Some(b("2024-05-20T16:29:45.009Z")),
                request_id: Some(b("4b142fc3-17b8-4cdb-a46b-a8dbe7918715")),
                level: Some(b("INFO")),
                body: msg,
                body_is_json: true,
            }
        );
        assert!(matches!(line.request_id, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn app_json_format_odd_fields() {
        let line = app_line(r#"{"level": "WARN", "requestId": "a\"b", "timestamp": 17}"#);
        assert_eq!(line.level.as_deref(), Some("WARN"));
        assert_eq!(line.request_id, Some(Cow::Owned("a\"b".to_owned())));
        assert_eq!(line.timestamp, None);
        let line = app_line(r#"{"level":"INF"#);
        assert_eq!(line.level, None);
        let line = app_line(r#"{"level":"a\"#);
        assert_eq!(line.level, None);
        let line = app_line(r#"{"level":"\x"}"#);
        assert_eq!(line.level, None);
    }

    #[test]
    fn app_plain() {
        for msg in [
            "hello world",
            "[AWS Parameters and Secrets Lambda Extension] 2024/04/11 12:00:00 INFO ready",
            "  START RequestId: a",
            "\tREPORT RequestId: a\tDuration: 1 ms",
        ] {
            assert_eq!(parse(msg), plain_app(msg), "{msg:?}");
        }
        assert_eq!(parse("hello\r\n"), plain_app("hello"));
    }

    // --- Robustness --------------------------------------------------------

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
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
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
