//! Tolerant JSON reading, so that crafted JSON cannot blind a detector.
//!
//! Every field of a log line is attacker-controlled. A strict parser
//! (serde_json, RFC 8259) rejects a whole line for one bad spot: a lone
//! surrogate escape in a user name (`"\ud800admin"`, which Python's
//! `json.dumps` writes), `NaN` or `Infinity` (also Python's), a number out of
//! `f64` range (`1e400`), nesting past its recursion limit of 128, a line cut
//! off at the log service's size limit. A rejected line matched nothing, so
//! whoever controlled one field turned the JSON rules off for their own lines.
//! [`from_str`] reads such a line tolerantly instead, and the rest of its
//! fields still match: matching fails closed.
//!
//! What the tolerant reading does, and where it differs from strict JSON:
//! - a lone surrogate escape (high without its low half, or a low alone)
//!   becomes U+FFFD; a `\u` escape without four hex digits becomes U+FFFD and
//!   the text after it is kept; an unknown escape (`\x`) keeps its backslash;
//!   raw control characters inside strings are kept;
//! - a bare token that is not a JSON number, `true`, `false` or `null`
//!   (`NaN`, `Infinity`, `-Infinity`, `1e400`, `01`) is kept as a string of its
//!   text; valid numbers are read by serde_json itself, so they are the same
//!   `Number` the strict path yields;
//! - an array or object nested deeper than [`MAX_DEPTH`] is skipped whole: the
//!   member (or element) holding it is left out, everything around it is kept;
//! - duplicate keys: the last one wins, as with serde_json's `Value`; a member
//!   whose value was skipped is left out, so an earlier one of that name stands;
//! - trailing commas (`[1,]`, `{"a":1,}`) are accepted;
//! - text after the first complete value is ignored (a logger that appends
//!   text after the object still has its object read);
//! - a document cut off at the end (a line truncated at the size limit) is
//!   closed where it stops: members read so far are kept, an unterminated
//!   string value keeps what it has, a key without its value is left out.
//!
//! Still rejected (no value): empty input, a structure that is not JSON
//! (`{user: 1}`, `{"a" 1}`, `{"a":}`): nothing reliable can be read from it.
//!
//! Why a hand-written scanner: no maintained crate reads all of the above.
//! serde_json has no lenient mode (`arbitrary_precision` keeps big numbers but
//! not `NaN` or lone surrogates); `jiter` allows `NaN` but rejects lone
//! surrogates and deep nesting; `json-syntax`'s flexible mode replaces lone
//! surrogates but rejects `NaN`; `json-forensics` rewrites `NaN` to `0` (a
//! different value) and nothing else; `serde_json_lenient` accepts comments and
//! control characters but not lone surrogates. And none of them skips a
//! too-deep subtree while keeping the rest of the document. The scanner below
//! is one forward pass with an explicit stack (never recursion), so it is
//! linear in the input and cannot overflow the stack, whatever the nesting.
//!
//! It runs only after the strict parse failed, so valid JSON costs nothing
//! more than before.

use std::cell::Cell;

use serde_json::{Map, Number, Value};

/// Arrays and objects nested deeper than this are skipped. serde_json rejects
/// documents nested 128 deep, so every document the strict parser accepts is
/// read whole here too.
pub const MAX_DEPTH: usize = 128;

thread_local! {
    /// Tolerant reads done on this thread (see [`tolerant_reads`]).
    static TOLERANT_READS: Cell<u64> = const { Cell::new(0) };
}

/// How many documents [`from_str`] has had to read tolerantly on this thread.
///
/// A per-thread tally lets the engine count the lines that needed a tolerant
/// read (it compares the tally before and after each line) without threading
/// a counter through every detector and matcher, which are shared, immutable
/// and also parse a double-encoded `message` of their own.
pub fn tolerant_reads() -> u64 {
    TOLERANT_READS.with(Cell::get)
}

/// `text` as JSON: strictly when it is valid JSON (the fast, usual path),
/// otherwise read tolerantly (see the module docs). `None` when even the
/// tolerant reading finds no value.
pub fn from_str(text: &str) -> Option<Value> {
    read(text, false)
}

/// As [`from_str`], but a document that is cut off or followed by text is
/// `None`: only what is wrong inside values (lone surrogates, `NaN`, `1e400`,
/// deep nesting) is tolerated. For records whose mere presence means
/// something (Lambda platform events), where a fragment must not count.
pub fn from_str_whole(text: &str) -> Option<Value> {
    read(text, true)
}

fn read(text: &str, whole: bool) -> Option<Value> {
    match serde_json::from_str(text) {
        Ok(v) => Some(v),
        Err(_) => {
            let (v, complete) = scan(text)?;
            if whole && !complete {
                return None;
            }
            TOLERANT_READS.with(|n| n.set(n.get().saturating_add(1)));
            tracing::debug!(
                len = text.len(),
                "Read JSON that a strict parser rejects tolerantly."
            );
            Some(v)
        }
    }
}

/// The tolerant reading alone (see the module docs). For valid JSON it yields
/// the same value as serde_json.
pub fn parse_tolerant(text: &str) -> Option<Value> {
    scan(text).map(|(v, _)| v)
}

/// The first value in `text`, and whether it was whole: not cut off and
/// followed by nothing but whitespace.
fn scan(text: &str) -> Option<(Value, bool)> {
    let mut s = Scanner {
        text,
        pos: 0,
        cut: false,
    };
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let mut value = match s.value(&mut stack)? {
            Step::Opened => continue,
            Step::Read(value) => value,
        };
        // Attach the value to the innermost container, then close every
        // container that ends here; stop at the next member to read.
        loop {
            let Some(top) = stack.last_mut() else {
                // The first complete value; whatever follows is ignored.
                s.skip_ws();
                let whole = !s.cut && s.peek().is_none();
                return value.map(|v| (v, whole));
            };
            if let Some(v) = value.take() {
                match top {
                    Frame::Array(items) => items.push(v),
                    Frame::Object { map, key } => {
                        map.insert(std::mem::take(key), v);
                    }
                }
            }
            s.skip_ws();
            match (top, s.peek()) {
                // Cut off: close what is open.
                (_, None) => s.cut = true,
                (Frame::Array(_), Some(b']')) | (Frame::Object { .. }, Some(b'}')) => s.pos += 1,
                (Frame::Array(_), Some(b',')) => {
                    s.pos += 1;
                    s.skip_ws();
                    if s.peek() == Some(b']') {
                        s.pos += 1;
                    } else {
                        break;
                    }
                }
                (Frame::Object { key, .. }, Some(b',')) => {
                    s.pos += 1;
                    match s.member_key()? {
                        Key::Name(next) => {
                            *key = next;
                            break;
                        }
                        Key::Close => {}
                        Key::End => s.cut = true,
                    }
                }
                _ => return None,
            }
            value = stack.pop().map(Frame::into_value);
        }
    }
}

/// What reading one value did.
enum Step {
    /// A container was opened (pushed on the stack); its first member is next.
    Opened,
    /// A value was read, or left out (`None`: skipped for depth, or cut off).
    Read(Option<Value>),
}

/// An open container.
enum Frame {
    Array(Vec<Value>),
    /// An object and the key of the member being read.
    Object {
        map: Map<String, Value>,
        key: String,
    },
}

impl Frame {
    fn into_value(self) -> Value {
        match self {
            Frame::Array(items) => Value::Array(items),
            Frame::Object { map, .. } => Value::Object(map),
        }
    }
}

/// What comes where an object member may start.
enum Key {
    /// `"name":`, the member's value next.
    Name(String),
    /// `}`: the object ends (also after a trailing comma).
    Close,
    /// The input ends (a key cut off is left out).
    End,
}

const REPLACEMENT: char = '\u{FFFD}';

struct Scanner<'a> {
    text: &'a str,
    /// Byte offset; always at a char boundary and at most `text.len()`: it
    /// only ever stops on ASCII bytes or at the end.
    pos: usize,
    /// The input ended inside the document.
    cut: bool,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Read one value, or open a container for its members to be read.
    /// `None`: not JSON.
    fn value(&mut self, stack: &mut Vec<Frame>) -> Option<Step> {
        self.skip_ws();
        let value = match self.peek() {
            None if stack.is_empty() => return None,
            // Cut off where a value was due: the member is left out.
            None => {
                self.cut = true;
                None
            }
            Some(b'{' | b'[') if stack.len() >= MAX_DEPTH => {
                self.skip_container();
                None
            }
            Some(b'{') => {
                self.pos += 1;
                match self.member_key()? {
                    Key::Name(key) => {
                        stack.push(Frame::Object {
                            map: Map::new(),
                            key,
                        });
                        return Some(Step::Opened);
                    }
                    Key::Close => Some(Value::Object(Map::new())),
                    Key::End => {
                        self.cut = true;
                        Some(Value::Object(Map::new()))
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                self.skip_ws();
                match self.peek() {
                    Some(b']') => {
                        self.pos += 1;
                        Some(Value::Array(Vec::new()))
                    }
                    None => {
                        self.cut = true;
                        Some(Value::Array(Vec::new()))
                    }
                    Some(_) => {
                        stack.push(Frame::Array(Vec::new()));
                        return Some(Step::Opened);
                    }
                }
            }
            Some(b'"') => {
                let (text, closed) = self.string();
                self.cut |= !closed;
                Some(Value::String(text))
            }
            Some(_) => Some(self.bare()?),
        };
        Some(Step::Read(value))
    }

    /// After `{` or `,` in an object.
    fn member_key(&mut self) -> Option<Key> {
        self.skip_ws();
        match self.peek() {
            None => Some(Key::End),
            Some(b'}') => {
                self.pos += 1;
                Some(Key::Close)
            }
            Some(b'"') => {
                let (key, closed) = self.string();
                self.skip_ws();
                match self.peek() {
                    _ if !closed => Some(Key::End),
                    None => Some(Key::End),
                    Some(b':') => {
                        self.pos += 1;
                        Some(Key::Name(key))
                    }
                    Some(_) => None,
                }
            }
            Some(_) => None,
        }
    }

    /// A string at its opening quote, and whether it was closed.
    fn string(&mut self) -> (String, bool) {
        self.pos += 1;
        let bytes = self.text.as_bytes();
        let mut out = String::new();
        loop {
            let rest = bytes.get(self.pos..).unwrap_or_default();
            let Some(off) = memchr::memchr2(b'"', b'\\', rest) else {
                out.push_str(self.text.get(self.pos..).unwrap_or_default());
                self.pos = bytes.len();
                return (out, false);
            };
            let end = self.pos + off;
            out.push_str(self.text.get(self.pos..end).unwrap_or_default());
            self.pos = end + 1;
            if bytes.get(end) == Some(&b'"') {
                return (out, true);
            }
            self.escape(&mut out);
        }
    }

    /// After a backslash inside a string.
    fn escape(&mut self, out: &mut String) {
        let Some(c) = self.peek() else { return };
        let plain = match c {
            b'"' | b'\\' | b'/' => Some(char::from(c)),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'u' => None,
            // Unknown: keep the backslash; what follows is copied as text.
            _ => {
                out.push('\\');
                return;
            }
        };
        self.pos += 1;
        if let Some(ch) = plain {
            out.push(ch);
            return;
        }
        let Some(unit) = self.hex4() else {
            out.push(REPLACEMENT);
            return;
        };
        if (0xD800..0xDC00).contains(&unit) {
            let back = self.pos;
            if self.text.as_bytes().get(self.pos..self.pos + 2) == Some(b"\\u") {
                self.pos += 2;
                if let Some(low) = self.hex4().filter(|l| (0xDC00..0xE000).contains(l)) {
                    let cp = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    out.push(char::from_u32(cp).unwrap_or(REPLACEMENT));
                    return;
                }
            }
            // A high surrogate alone: what follows is read on its own.
            self.pos = back;
        }
        // A lone low surrogate is not a char either.
        out.push(char::from_u32(unit).unwrap_or(REPLACEMENT));
    }

    /// Four hex digits, consumed only when all four are there.
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.as_bytes().get(self.pos..self.pos + 4)?;
        let mut v = 0;
        for &d in digits {
            v = v * 16 + char::from(d).to_digit(16)?;
        }
        self.pos += 4;
        Some(v)
    }

    /// A value that is not a string or a container: `true`, `false`, `null`,
    /// a number, or any other bare token, kept as its text.
    fn bare(&mut self) -> Option<Value> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(
                c,
                b',' | b'}' | b']' | b':' | b'"' | b'{' | b'[' | b' ' | b'\t' | b'\n' | b'\r'
            ) {
                break;
            }
            self.pos += 1;
        }
        let token = self.text.get(start..self.pos).filter(|t| !t.is_empty())?;
        Some(match token {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            _ if token.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                // serde_json's own number reading: the same `Number` as the
                // strict path; what it refuses (`1e400`, `-Infinity`) is text.
                serde_json::from_str::<Number>(token)
                    .map_or_else(|_| Value::String(token.to_string()), Value::Number)
            }
            _ => Value::String(token.to_string()),
        })
    }

    /// Skip an array or object at its opening bracket, however deep, without
    /// building anything: bracket counting outside strings, one pass.
    fn skip_container(&mut self) {
        let bytes = self.text.as_bytes();
        let mut depth = 0_usize;
        while let Some(&c) = bytes.get(self.pos) {
            self.pos += 1;
            match c {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                b'"' => self.skip_string(),
                _ => {}
            }
        }
        self.cut = true;
    }

    /// After a string's opening quote: to just past its closing quote.
    fn skip_string(&mut self) {
        let bytes = self.text.as_bytes();
        loop {
            let rest = bytes.get(self.pos..).unwrap_or_default();
            match memchr::memchr2(b'"', b'\\', rest) {
                None => {
                    self.pos = bytes.len();
                    self.cut = true;
                    return;
                }
                Some(off) => {
                    let at = self.pos + off;
                    if bytes.get(at) == Some(&b'"') {
                        self.pos = at + 1;
                        return;
                    }
                    // The escaped byte is ASCII in valid escapes; a multi-byte
                    // char after `\` leaves pos on a continuation byte, which
                    // no delimiter search stops on, so the next stop is ASCII.
                    self.pos = (at + 2).min(bytes.len());
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn tolerant(text: &str) -> Value {
        parse_tolerant(text).unwrap()
    }

    /// How many arrays or objects are nested, iteratively (a deep value
    /// must not be measured by recursion either).
    fn depth(v: &Value) -> usize {
        let mut n = 0;
        let mut cur = Some(v);
        while let Some(v) = cur {
            cur = match v {
                Value::Array(items) => items.first(),
                Value::Object(map) => map.values().next(),
                _ => break,
            };
            n += 1;
        }
        n
    }

    #[test]
    fn lone_surrogates_become_replacement_chars_and_pairs_stay_whole() {
        assert!(serde_json::from_str::<Value>(r#"{"user":"\ud800admin"}"#).is_err());
        assert_eq!(
            tolerant(r#"{"user":"\ud800admin"}"#),
            json!({"user": "\u{FFFD}admin"})
        );
        // A low half alone, a high half before a non-surrogate escape, a high
        // half at the end, and a valid pair (U+1F600) beside them.
        assert_eq!(
            tolerant(r#"{"a":"\udc00x","b":"\ud800\u0041","c":"x\ud800","d":"\ud83d\ude00"}"#),
            json!({"a": "\u{FFFD}x", "b": "\u{FFFD}A", "c": "x\u{FFFD}", "d": "\u{1F600}"})
        );
        // Broken escapes keep the text around them.
        assert_eq!(
            tolerant(r#"{"a":"\u12G4","b":"\q","c":"é\é"}"#),
            json!({"a": "\u{FFFD}12G4", "b": "\\q", "c": "é\\é"})
        );
        // Raw control characters inside strings are kept.
        assert_eq!(tolerant("{\"a\":\"x\ty\u{1}\"}"), json!({"a": "x\ty\u{1}"}));
    }

    #[test]
    fn non_finite_and_out_of_range_numbers_are_kept_as_text() {
        for bad in [
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-1e400",
            "01",
            "undefined",
        ] {
            let text = format!(r#"{{"event":"login_failed","n":{bad},"ip":"192.0.2.1"}}"#);
            assert!(serde_json::from_str::<Value>(&text).is_err(), "{bad}");
            assert_eq!(
                tolerant(&text),
                json!({"event": "login_failed", "n": bad, "ip": "192.0.2.1"}),
                "{bad}"
            );
        }
        // Valid numbers beside them are serde_json's own.
        assert_eq!(
            tolerant(r#"[NaN,401,-7,2.5,18446744073709551616,true,false,null]"#),
            json!([
                "NaN",
                401,
                -7,
                2.5,
                18_446_744_073_709_551_616.0_f64,
                true,
                false,
                null
            ])
        );
    }

    #[test]
    fn subtrees_nested_past_the_limit_are_skipped_and_the_rest_is_kept() {
        let deep = format!("{}\"x\\\"]{{\"{}", "[".repeat(300), "]".repeat(300));
        let text = format!(r#"{{"event":"login_failed","ctx":{deep},"ip":"192.0.2.1"}}"#);
        assert!(serde_json::from_str::<Value>(&text).is_err());
        let v = tolerant(&text);
        assert_eq!(v["event"], "login_failed");
        assert_eq!(
            v["ip"], "192.0.2.1",
            "the member after the deep one is read"
        );
        // The object is level 1; arrays down to MAX_DEPTH are kept, the one
        // below is left out.
        assert_eq!(depth(&v["ctx"]), MAX_DEPTH - 1);
        // A deep object holding a member next to its too-deep one keeps it.
        let text = format!(
            r#"{}"keep":1,"drop":{}"#,
            r#"{"a":"#.repeat(MAX_DEPTH - 1) + "{",
            "{}".to_string() + &"}".repeat(MAX_DEPTH)
        );
        let v = tolerant(&text);
        let mut inner = &v;
        for _ in 0..MAX_DEPTH - 1 {
            inner = &inner["a"];
        }
        assert_eq!(inner, &json!({"keep": 1}));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_like_serde_json() {
        let text = r#"{"user":"a","user":"b","n":NaN}"#;
        assert_eq!(tolerant(text)["user"], "b");
        let strict: Value = serde_json::from_str(r#"{"user":"a","user":"b"}"#).unwrap();
        assert_eq!(strict["user"], "b");
        // A member whose value was skipped (an array one level past the
        // limit) is left out: the earlier one stands.
        let text = format!(
            r#"{}{{"user":"a","user":[1]}}{}"#,
            r#"{"a":"#.repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        let mut inner = &tolerant(&text);
        for _ in 0..MAX_DEPTH - 1 {
            inner = &inner["a"];
        }
        assert_eq!(inner, &json!({"user": "a"}));
    }

    #[test]
    fn trailing_text_trailing_commas_and_a_cut_off_end_are_tolerated() {
        assert_eq!(
            tolerant(r#"{"event":"login_failed"} (sent by auth)"#),
            json!({"event": "login_failed"})
        );
        assert_eq!(
            tolerant(r#"{"a":[1,2,],"b":{"c":1,},}"#),
            json!({"a": [1, 2], "b": {"c": 1}})
        );
        // Cut off inside a value, a key, after a colon, inside an array.
        assert_eq!(
            tolerant(r#"{"ip":"192.0.2.1","user":"aaaaa"#),
            json!({"ip": "192.0.2.1", "user": "aaaaa"})
        );
        assert_eq!(
            tolerant(r#"{"ip":"192.0.2.1","us"#),
            json!({"ip": "192.0.2.1"})
        );
        assert_eq!(
            tolerant(r#"{"ip":"192.0.2.1","user":"#),
            json!({"ip": "192.0.2.1"})
        );
        assert_eq!(
            tolerant(r#"{"a":{"b":[1,"x\"#),
            json!({"a": {"b": [1, "x"]}})
        );
        assert_eq!(tolerant("{"), json!({}));
    }

    #[test]
    fn from_str_whole_tolerates_bad_values_but_not_fragments() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for text in [
            r#"{"a":"\ud800","b":NaN,"c":1e400}"#.to_string(),
            format!(r#"{{"a":{deep},"b":1}}"#),
            "{\"a\":[1,],}\n".to_string(),
        ] {
            assert!(from_str_whole(&text).is_some(), "{text}");
        }
        for text in [
            r#"{"a":"\ud800","b":1"#,
            r#"{"a":"\ud800"} trailing"#,
            r#"{"a":"x"#,
            r#"{"a":["#,
            r#"{"a":"#,
            r#"{"a""#,
            r#"{"a":[[[[[[1"#,
        ] {
            assert_eq!(from_str_whole(text), None, "{text}");
            assert!(from_str(text).is_some(), "{text}");
        }
        let cut = "[".repeat(200);
        assert_eq!(from_str_whole(&format!(r#"{{"a":{cut}"#)), None);
    }

    #[test]
    fn what_is_not_json_structure_is_still_rejected() {
        for text in [
            "",
            "   ",
            "{not json",
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{"a":1 "b":2}"#,
            "[,1]",
            r#"{"a":[1}"#,
        ] {
            assert_eq!(parse_tolerant(text), None, "{text}");
            assert_eq!(from_str(text), None, "{text}");
        }
    }

    #[test]
    fn from_str_counts_only_the_tolerant_reads() {
        let before = tolerant_reads();
        assert_eq!(from_str(r#"{"a":1}"#), Some(json!({"a": 1})));
        assert_eq!(from_str("{not json"), None);
        assert_eq!(
            tolerant_reads(),
            before,
            "strict reads and failures are not counted"
        );
        assert_eq!(from_str(r#"{"a":NaN}"#), Some(json!({"a": "NaN"})));
        assert_eq!(tolerant_reads(), before + 1);
    }

    #[test]
    fn a_megabyte_of_open_brackets_is_read_quickly_without_overflowing_the_stack() {
        // Recursion would overflow the stack long before a million levels;
        // the explicit stack stops at MAX_DEPTH and skips the rest in one
        // pass. The time bound only turns a regression into a failure
        // instead of a hang: a linear pass takes milliseconds.
        let mb = 1 << 20;
        for (unit, kind) in [("[", "array"), ("{\"a\":", "object"), ("[{\"a\":", "mixed")] {
            let text = unit.repeat(mb / unit.len());
            let started = Instant::now();
            let v = from_str(&text).unwrap();
            let took = started.elapsed();
            assert!(took < Duration::from_secs(10), "{kind}: {took:?}");
            assert_eq!(depth(&v), MAX_DEPTH, "{kind}");
        }
        // Closed again after the limit: still one pass, still the same depth.
        let text = format!("{}{}", "[".repeat(mb / 2), "]".repeat(mb / 2));
        assert_eq!(depth(&from_str(&text).unwrap()), MAX_DEPTH);
    }

    /// Any JSON value serde_json can write, with awkward strings and numbers.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\"\\\\/\u{0}-\u{1f}\u{7f}\u{FFFD}\u{1F600}a-z]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[a-z.\"\\\\\u{e9}]{0,6}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn valid_json_reads_the_same_as_serde_json(v in any_json()) {
            for text in [serde_json::to_string(&v).unwrap(), serde_json::to_string_pretty(&v).unwrap()] {
                let strict: Value = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(scan(&text), Some((strict, true)), "{}", text);
            }
        }

        #[test]
        fn any_text_is_read_without_panicking(text in any::<String>()) {
            let _ = parse_tolerant(&text);
            let _ = parse_tolerant(&format!("{{\"a\":{text}"));
        }

        #[test]
        fn valid_json_cut_anywhere_still_reads(v in any_json(), cut in any::<prop::sample::Index>()) {
            let text = serde_json::to_string(&v).unwrap();
            let mut at = cut.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            // Numbers and literals cut in half may be text or rejected; no panic.
            let _ = parse_tolerant(&text[..at]);
        }
    }
}
