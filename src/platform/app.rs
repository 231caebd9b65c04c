//! Application lines: the Lambda text prefix, the Python layout and JSON app logs.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::failure::timeout;
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
