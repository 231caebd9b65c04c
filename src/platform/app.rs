//! Application lines: the Lambda text prefix, the Python layout and JSON app logs.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::failure::timeout;
use super::fields::{eq_mask, lane_index, lanes};
use super::oom::oom_marker;
use super::{AppLine, Record};

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
pub(super) fn app<'a>(msg: &'a str, line: AppLine<'a>) -> Record<'a> {
    match oom_marker(msg.as_bytes()) {
        Some(marker) => Record::OutOfMemory {
            request_id: line.request_id,
            marker,
        },
        None => Record::App(line),
    }
}

pub(super) fn unprefixed_app_line(msg: &str) -> AppLine<'_> {
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
pub(super) fn parse_prefixed(msg: &str) -> Record<'_> {
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

/// The keys a JSON app log is read for.
const KEYS: [&[u8]; 3] = [b"\"timestamp\":", b"\"requestId\":", b"\"level\":"];
const TIMESTAMP: usize = 0;
const REQUEST_ID: usize = 1;
const LEVEL: usize = 2;

static FINDERS: LazyLock<[Finder<'static>; 3]> = LazyLock::new(|| KEYS.map(Finder::new));

/// JSON-format application log: the fields detectors key on are found by a
/// substring scan, not a full parse; the body stays the whole JSON text.
///
/// A field is the string after the first occurrence of `"key":` anywhere in
/// the line (inside a value too). The runtimes' JSON logging writes
/// `{"timestamp":"…","level":"…",` first; for that start the first
/// occurrences are known without a search (see [`level_after_timestamp`]),
/// which saved two of the three memmem calls per line. A single walk over the
/// colons of the line for all three keys cost more than three memmem calls
/// (callgrind, 8-batch JSON corpus: 294.3 M against 291.6 M Ir).
fn json_app_line(msg: &str) -> AppLine<'_> {
    let b = msg.as_bytes();
    let find = |k: usize| FINDERS[k].find(b).map(|p| p + KEYS[k].len());
    // At offset 1 (after `{`) no earlier occurrence can exist.
    let ts_at = match b.strip_prefix(b"{") {
        Some(rest) if rest.starts_with(KEYS[TIMESTAMP]) => Some(1 + KEYS[TIMESTAMP].len()),
        _ => find(TIMESTAMP),
    };
    let ts = ts_at.and_then(|i| string_at(b, i));
    let level_at = match (ts_at, ts) {
        (Some(i), Some(value)) if i == 1 + KEYS[TIMESTAMP].len() => {
            level_after_timestamp(b, value).or_else(|| find(LEVEL))
        }
        _ => find(LEVEL),
    };
    AppLine {
        timestamp: ts.and_then(|value| value.decode(msg)),
        request_id: find(REQUEST_ID)
            .and_then(|i| string_at(b, i))
            .and_then(|value| value.decode(msg)),
        level: level_at
            .and_then(|i| string_at(b, i))
            .and_then(|value| value.decode(msg)),
        body: msg,
        body_is_json: true,
    }
}

/// Where the level value starts when the line goes on
/// `{"timestamp":<ws>"V","level":` with `V` free of escapes. That `"level":`
/// is the first one: a needle starts with a quote, and the quotes before it
/// are the key's two, which start `"timestamp` and `":`, and the two around
/// `V`, which holds no quote; the opening one would need `V` = `level`
/// followed by `:`, not `,`, and the closing one is followed by `,`.
fn level_after_timestamp(b: &[u8], ts: JsonString) -> Option<usize> {
    if ts.escaped {
        return None;
    }
    let after = ts.close + 1;
    let rest = b.get(after..)?.strip_prefix(b",")?;
    rest.starts_with(KEYS[LEVEL])
        .then_some(after + 1 + KEYS[LEVEL].len())
}

/// A JSON string in the line: its quotes, and whether it holds escapes.
#[derive(Clone, Copy)]
struct JsonString {
    open: usize,
    close: usize,
    escaped: bool,
}

impl JsonString {
    /// Borrowed unless the string has escapes, which are decoded with the
    /// real JSON rules (`None` if they are invalid).
    fn decode(self, msg: &str) -> Option<Cow<'_, str>> {
        if self.escaped {
            serde_json::from_str::<String>(msg.get(self.open..=self.close)?)
                .ok()
                .map(Cow::Owned)
        } else {
            msg.get(self.open + 1..self.close).map(Cow::Borrowed)
        }
    }
}

/// The string value starting at `i` (after optional whitespace); `None` for
/// a value that is not a string or is cut off.
fn string_at(b: &[u8], mut i: usize) -> Option<JsonString> {
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
        // Values are ids and timestamps of 20 to 40 bytes: skip eight bytes
        // at a time while none is a quote or a backslash (the first flagged
        // byte is exact); fewer than eight left, the byte loop does it.
        while let Some(x) = lanes(b, i) {
            let mask = eq_mask(x, b'"') | eq_mask(x, b'\\');
            if mask != 0 {
                i = lane_index(i, mask);
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => break,
            // A backslash hides the byte after it, whatever it is.
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    Some(JsonString {
        open,
        close: i,
        escaped,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::platform::parse;
    use crate::platform::testutil::*;

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

    /// The three-memmem reading this file used before the quote walk: the
    /// reference the walk must agree with.
    fn reference_field<'a>(msg: &'a str, key: &[u8]) -> Option<Cow<'a, str>> {
        let b = msg.as_bytes();
        let mut i = memchr::memmem::find(b, key)? + key.len();
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
            serde_json::from_str::<String>(msg.get(open..=i)?)
                .ok()
                .map(Cow::Owned)
        } else {
            msg.get(open + 1..i).map(Cow::Borrowed)
        }
    }

    fn assert_like_reference(msg: &str) {
        let line = json_app_line(msg);
        assert_eq!(
            (line.timestamp, line.request_id, line.level),
            (
                reference_field(msg, b"\"timestamp\":"),
                reference_field(msg, b"\"requestId\":"),
                reference_field(msg, b"\"level\":"),
            ),
            "{msg:?}"
        );
    }

    #[test]
    fn app_json_first_occurrence_wins_anywhere() {
        let pad = "x".repeat(300);
        for (msg, level) in [
            // `\"level\":` is no key; `\"level":` (an escaped quote, then an
            // unescaped one) is, and comes first.
            (
                r#"{"msg":"say \"level\":\"FAKE\"","level":"INFO"}"#,
                Some("INFO"),
            ),
            (r#"{"k\"level":"FAKE","level":"INFO"}"#, Some("FAKE")),
            (r#"{"a":"\"level":"x","level":"INFO"}"#, Some("x")),
            // The first occurrence is not a string: no level, no second look.
            (r#"{"level":3,"level":"INFO"}"#, None),
            (r#"{"level":"WARN","level":"INFO"}"#, Some("WARN")),
            // Space before the colon is not the key.
            (r#"{"level" :"WARN","x":{"level":"INFO"}}"#, Some("INFO")),
            (r#"{"level":  "WARN"}"#, Some("WARN")),
            (r#"{"level":"WA\u0052N"}"#, Some("WARN")),
            (r#"{"LEVEL":"WARN"}"#, None),
            // The runtimes' layout, read without a search, and its near misses.
            (r#"{"timestamp":"t","level":"INFO"}"#, Some("INFO")),
            (r#"{"timestamp": "t","level":"INFO"}"#, Some("INFO")),
            (r#"{"timestamp":"level","level":"INFO"}"#, Some("INFO")),
            (
                r#"{"timestamp":"t\",\"level\":\"x","level":"INFO"}"#,
                Some("INFO"),
            ),
            (
                r#"{"timestamp":"a\"level":"FAKE","level":"INFO"}"#,
                Some("FAKE"),
            ),
            (
                r#"{"timestamp":"t", "level":"INFO","x":{"level":"X"}}"#,
                Some("INFO"),
            ),
            (r#"{"timestamp":7,"level":"INFO"}"#, Some("INFO")),
            (r#"{"timestamp":"t","level":7,"y":{"level":"X"}}"#, None),
            (r#"{"timestamp":"t","level":"IN"#, None),
            (r#"{"timestamp":"t""#, None),
            (r#"{ "timestamp":"t","level":"INFO"}"#, Some("INFO")),
        ] {
            assert_eq!(app_line(msg).level.as_deref(), level, "{msg}");
            assert_like_reference(msg);
        }
        // Past the quote window, and straddling its end.
        for cut in 240..270 {
            let head = "x".repeat(cut);
            let msg = format!(r#"{{"message":"{head}","requestId":"r1","level":"ERROR"}}"#);
            let line = app_line(&msg);
            assert_eq!(line.request_id.as_deref(), Some("r1"), "{cut}");
            assert_eq!(line.level.as_deref(), Some("ERROR"), "{cut}");
            assert_like_reference(&msg);
        }
        let msg = format!(r#"{{"message":"{pad}","message2":"{pad} \"level\":\"x"}}"#);
        assert_eq!(app_line(&msg).level, None);
        assert_like_reference(&msg);
    }

    #[test]
    fn app_json_mangled_lines_match_reference() {
        let base = [
            r#"{"timestamp":"2026-11-22T10:00:00.013Z","level":"INFO","message":"request","logger":"root","requestId":"9b0a6817-f91c-45fd-a0a5-951807e30f11","event":"request","status":201}"#,
            r#"{"level": "WARN", "requestId": "a\"b", "timestamp": 17, "message": "\"level\": \"x\""}"#,
        ];
        let mut next = crate::testutil::xorshift(0x9E37_79B9_7F4A_7C15);
        let specials = [b'"', b'\\', b':', b',', b' ', b'l', b'r', b't', b'{', 0xE6];
        for msg in base {
            for _ in 0..3_000 {
                let mut bytes = msg.as_bytes().to_vec();
                if next().is_multiple_of(2) {
                    let pad = "y".repeat((next() % 300) as usize);
                    bytes.splice(1..1, format!(r#""p":"{pad}","#).into_bytes());
                }
                crate::testutil::mangle(&mut bytes, &specials, &mut next);
                assert_like_reference(&String::from_utf8_lossy(&bytes));
            }
        }
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
}
