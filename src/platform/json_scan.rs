//! One strict pass over a JSON platform event, for the common shape.
//!
//! Lambda writes its `platform.*` events as plain JSON: no escapes, short
//! numbers, shallow nesting. Deserializing them with serde cost about
//! 3,100 instructions per event (callgrind, 8-batch JSON corpus: 14.2 M Ir
//! in serde for 4,571 events); this pass reads the same fields directly.
//!
//! It only answers when the answer is certainly the one serde gives: the
//! whole line must be valid JSON within a subset (strings without escapes or
//! control bytes, numbers of at most [`MAX_DIGITS`] digits and no exponent,
//! nesting at most [`MAX_DEPTH`] deep), no typed field may repeat (serde
//! rejects duplicates), and every typed field must hold the type serde
//! expects (a string, or a non-negative number in `metrics`). Anything else
//! is `None`, and the caller asks serde: a line outside the subset costs one
//! extra partial pass, never a different result.

use std::borrow::Cow;

use super::fields::{below_mask, eq_mask, lane_index, lanes};
use super::json::{JsonEnvelope, JsonMetrics, JsonRecord, Str};

/// Far below serde_json's recursion limit (128), far above Lambda's events
/// (4 levels: `record.spans[].…`).
const MAX_DEPTH: u32 = 32;

/// Up to 15 significant digits an `f64` holds any integer exactly, so the
/// value serde computes (`significand / 10^k`, one correctly rounded
/// division) is the correctly rounded one, which `str::parse` gives too.
const MAX_DIGITS: usize = 15;

/// The envelope serde would deserialize from `msg`, or `None` when this pass
/// cannot be sure (see the module docs).
pub(super) fn envelope(msg: &str) -> Option<JsonEnvelope<'_>> {
    let mut scan = Scan { s: msg, i: 0 };
    let mut kind = None;
    let mut record = None;
    scan.object(|scan, key| match key {
        "type" if kind.is_none() => {
            kind = Some(scan.string()?);
            Some(())
        }
        "record" if record.is_none() => {
            record = Some(scan.record()?);
            Some(())
        }
        "type" | "record" => None,
        _ => scan.skip_value(1),
    })?;
    scan.skip_ws();
    (scan.i == msg.len()).then_some(())?;
    Some(JsonEnvelope {
        kind: Str(Cow::Borrowed(kind?)),
        record,
    })
}

struct Scan<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Scan<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    /// The four bytes JSON (and serde_json) allows between tokens.
    fn skip_ws(&mut self) {
        while matches!(self.bytes().get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes().get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string without escapes or control bytes (serde rejects the latter;
    /// the former it would decode, which this pass leaves to it). Inlined
    /// into the object loops (about ten calls per event): 0.5 M Ir fewer on
    /// the 8-batch JSON corpus (callgrind, 288.1-288.4 M against 288.7-288.9 M).
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let b = self.bytes();
        let start = self.i;
        let mut end = start;
        // Eight bytes at a time while none can end the string; the first
        // flagged byte is exact. Fewer than eight left: byte by byte.
        loop {
            let Some(x) = lanes(b, end) else {
                end += b
                    .get(end..)?
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
                break;
            };
            let mask = eq_mask(x, b'"') | eq_mask(x, b'\\') | below_mask(x, 0x20);
            if mask != 0 {
                end = lane_index(end, mask);
                break;
            }
            end += 8;
        }
        (b.get(end) == Some(&b'"')).then_some(())?;
        self.i = end + 1;
        // Both ends are ASCII bytes of a `&str`, hence char boundaries.
        self.s.get(start..end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with at most [`MAX_DIGITS`] digits, no
    /// exponent: the text of the number.
    fn number(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let b = self.bytes();
        let start = self.i;
        let mut i = start + usize::from(b.get(start) == Some(&b'-'));
        let int_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let int_digits = i - int_start;
        // serde rejects a leading zero; an empty integer part is no number.
        if int_digits == 0 || (int_digits > 1 && b.get(int_start) == Some(&b'0')) {
            return None;
        }
        let mut digits = int_digits;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let frac_start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            (i > frac_start).then_some(())?;
            digits += i - frac_start;
        }
        if digits > MAX_DIGITS || matches!(b.get(i), Some(b'e' | b'E')) {
            return None;
        }
        self.i = i;
        self.s.get(start..i)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.skip_ws();
        let rest = self.s.get(self.i..)?;
        rest.starts_with(word).then(|| self.i += word.len())
    }

    /// `{ "key": <value>, … }`, where `value` reads the value after each key
    /// (and decides what a repeated key means).
    fn object(&mut self, mut value: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            value(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: u32) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.skip_value(depth + 1)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Validates and skips one value nested `depth` levels deep.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|scan, _| scan.skip_value(depth + 1)),
            b'[' => self.array(depth),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number().map(drop),
        }
    }

    fn record(&mut self) -> Option<JsonRecord<'a>> {
        let mut r = JsonRecord::default();
        self.object(|scan, key| {
            let slot = match key {
                "requestId" => &mut r.request_id,
                "version" => &mut r.version,
                "status" => &mut r.status,
                "errorType" => &mut r.error_type,
                "phase" => &mut r.phase,
                "runtimeVersion" => &mut r.runtime_version,
                "metrics" if r.metrics.is_none() => {
                    r.metrics = Some(scan.metrics()?);
                    return Some(());
                }
                "metrics" => return None,
                _ => return scan.skip_value(2),
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(Str(Cow::Borrowed(scan.string()?)));
            Some(())
        })?;
        Some(r)
    }

    fn metrics(&mut self) -> Option<JsonMetrics> {
        let mut m = JsonMetrics::default();
        self.object(|scan, key| {
            let slot = match key {
                "durationMs" => &mut m.duration_ms,
                "billedDurationMs" => &mut m.billed_duration_ms,
                "memorySizeMB" => &mut m.memory_size_mb,
                "maxMemoryUsedMB" => &mut m.max_memory_used_mb,
                "initDurationMs" => &mut m.init_duration_ms,
                "restoreDurationMs" => &mut m.restore_duration_ms,
                "billedRestoreDurationMs" => &mut m.billed_restore_duration_ms,
                _ => return scan.skip_value(3),
            };
            if slot.is_some() {
                return None;
            }
            // Negative values (`-0` becomes `0.0` in serde, not `-0.0`) are
            // left to serde.
            let text = scan.number()?;
            (!text.starts_with('-')).then_some(())?;
            *slot = Some(text.parse().ok()?);
            Some(())
        })?;
        Some(m)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::platform::json::{from_json, parse_json, parse_json_serde};
    use crate::platform::{Record, parse};

    /// What the scan answers, checked against serde whenever it answers.
    fn fast(msg: &str) -> Option<Record<'_>> {
        let record = from_json(envelope(msg)?);
        assert_eq!(record, parse_json_serde(msg), "{msg:?}");
        record
    }

    const LAMBDA: &[&str] = &[
        r#"{"time":"2026-11-22T10:00:00.000Z","type":"platform.start","record":{"requestId":"9b0a6817-f91c-45fd-a0a5-951807e30f11","version":"$LATEST"}}"#,
        r#"{"time":"2026-11-22T10:00:00.088Z","type":"platform.runtimeDone","record":{"requestId":"9b0a6817","status":"success","metrics":{"durationMs":88.99,"producedBytes":0}}}"#,
        r#"{"time":"2026-11-22T10:00:00.088Z","type":"platform.report","record":{"requestId":"9b0a6817","metrics":{"durationMs":88.99,"billedDurationMs":89,"memorySizeMB":128,"maxMemoryUsedMB":79,"initDurationMs":174.055,"restoreDurationMs":1.5,"billedRestoreDurationMs":2},"status":"timeout","errorType":"Sandbox.Timedout"}}"#,
        r#"{"time":"t","type":"platform.runtimeDone","record":{"requestId":"4b","status":"success","spans":[{"name":"responseLatency","start":"2024-05-20T16:29:45.008Z","durationMs":2.215},{"name":"x","durationMs":8.686}],"metrics":{"durationMs":11.185,"producedBytes":40}}}"#,
        r#"{"time":"t","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init","runtimeVersion":"nodejs:18.v28","functionVersion":"$LATEST"}}"#,
        r#"{"time":"t","type":"platform.initReport","record":{"phase":"init","status":"error","errorType":"Runtime.ExitError","metrics":{"durationMs":173.778}}}"#,
        r#"{"time":"t","type":"platform.restoreReport","record":{"status":"timeout","metrics":{"durationMs":1.0}}}"#,
        r#"{"time":"t","type":"platform.extension","record":{"name":"ext","state":"Ready","events":["INVOKE","SHUTDOWN"],"ok":true,"no":false,"none":null,"n":-12.5}}"#,
        r#"{"time": "2024-10-18T19:38:39.661Z", "type": "platform.report", "record": {"requestId": "b441820a", "metrics": {"durationMs": 30000.0, "billedDurationMs": 30000}, "status": "timeout"}}"#,
        r#"{"type":"platform.report"}"#,
        r#"{"type":"platform.start","record":{}}"#,
        "{ \"type\" :\t\"platform.start\" ,\r\n\"record\" : { \"requestId\" : \"r\" , \"metrics\" : { } } } \t\r\n",
        r#"{"type":"platform.end","record":{"requestId":"r"}}"#,
        r#"{"type":"platform.runtimeDone","record":{"requestId":""}}"#,
        "{\"type\":\"platform.\u{1F600}\",\"record\":{\"requestId\":\"日本\"}}",
        r#"{"type":"platform.start","record":{"requestId":"日本","version":"ü"}}"#,
        r#"{"type":"platformer"}"#,
        r#"{"type":"function","record":{"x":1}}"#,
    ];

    #[test]
    fn lambda_events_are_read_without_serde() {
        for msg in LAMBDA {
            assert!(envelope(msg).is_some(), "{msg}");
            let _ = fast(msg);
        }
        let Some(Record::Report(r)) = fast(LAMBDA[2]) else {
            panic!("not a report");
        };
        assert_eq!(r.duration_ms, 88.99);
        assert_eq!(r.billed_duration_ms, Some(89));
        assert_eq!(r.init_duration_ms, Some(174.055));
        assert!(matches!(r.request_id, Cow::Borrowed("9b0a6817")));
        assert_eq!(r.error_type.as_deref(), Some("Sandbox.Timedout"));
        assert_eq!(fast(LAMBDA[16]), None);
    }

    /// Lines this pass must leave to serde, each for its own reason; the
    /// result through `parse` is serde's.
    #[test]
    fn lines_outside_the_subset_go_to_serde() {
        let deep = format!(
            r#"{{"type":"platform.x","record":{{"a":{}{}}}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        for msg in [
            // Duplicates: serde rejects the envelope or the record.
            r#"{"type":"platform.start","type":"platform.report","record":{"requestId":"r"}}"#,
            r#"{"type":"platform.start","record":{"requestId":"r"},"record":{"requestId":"s"}}"#,
            r#"{"type":"platform.start","record":{"requestId":"r","requestId":"s"}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":1,"durationMs":2}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{},"metrics":{}}}"#,
            // Escapes: in a key, in a value, in an ignored value.
            r#"{"typ\u0065":"platform.start","record":{"requestId":"r"},"type":"platform.x"}"#,
            r#"{"type":"platform.start","record":{"requestId":"a\u002db"}}"#,
            r#"{"type":"platform.start","record":{"requestId":"r"},"time":"\"type\":\"platform.report"}"#,
            r#"{"type":"platform.start","record":{"requestId":"r","x":"\ud800"}}"#,
            // Types serde would reject or read differently.
            r#"{"type":"platform.start","record":null}"#,
            r#"{"type":"platform.start","record":"text"}"#,
            r#"{"type":"platform.start","record":["r","1"]}"#,
            r#"{"type":"platform.start","record":{"requestId":null}}"#,
            r#"{"type":"platform.start","record":{"requestId":7}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":"5"}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":null}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":null}}"#,
            r#"{"type":7,"x":"\"type\":\"platform.start"}"#,
            // Numbers outside the subset.
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":-0}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":-5.5}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":1e3}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":1234567890.1234567}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"x":1e400}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":01}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":1.}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":.5}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":NaN}}}"#,
            r#"{"type":"platform.report","record":{"requestId":"r"},"x":-}"#,
            // Not JSON, or not only JSON.
            r#"{"type":"platform.start","record":{"requestId":"r"}"#,
            r#"{"type":"platform.start","record":{"requestId":"r"}} x"#,
            r#"{"type":"platform.start","record":{"requestId":"r"}}{}"#,
            r#"{"type":"platform.start","record":{"requestId":"r",}}"#,
            r#"{"type":"platform.start","record":{"requestId":"r"},"x":truex}"#,
            r#"{"type":"platform.start","record":{"requestId":"r"},"x":[1,]}"#,
            r#"{"type":"platform.start","record":{"requestId":"r"},"x":[1 2]}"#,
            "{\"type\":\"platform.start\",\"record\":{\"requestId\":\"r\tx\"}}",
            "{\"type\":\"platform.start\",\u{b}\"record\":{\"requestId\":\"r\"}}",
            "{\"type\":\"platform.start\",\u{a0}\"record\":{\"requestId\":\"r\"}}",
            &deep,
        ] {
            assert!(envelope(msg).is_none(), "{msg}");
            assert_eq!(parse_json(msg), parse_json_serde(msg), "{msg}");
        }
        // Spot checks of what serde makes of some of them.
        assert!(matches!(
            parse(
                r#"{"type":"platform.start","type":"platform.report","record":{"requestId":"r"}}"#
            ),
            Record::App(_)
        ));
        assert_eq!(
            parse(r#"{"type":"platform.start","record":{"requestId":"r","requestId":"s"}}"#),
            Record::OtherPlatform {
                kind: Cow::Borrowed("platform.start")
            }
        );
        assert_eq!(
            parse(r#"{"type":"platform.start","record":{"requestId":"a\u002db"}}"#),
            Record::Start {
                request_id: Cow::Owned("a-b".to_owned()),
                version: None
            }
        );
    }

    #[test]
    fn numbers_read_as_serde_reads_them() {
        let mut next = crate::testutil::xorshift(0x2545_F491_4F6C_DD1D);
        for _ in 0..20_000 {
            let int = next() % 10u64.pow((next() % 10) as u32 + 1);
            let frac_len = (next() % 6) as usize;
            let frac = next() % 10u64.pow(frac_len as u32);
            let text = if frac_len == 0 {
                int.to_string()
            } else {
                format!("{int}.{frac:0frac_len$}")
            };
            let msg = format!(
                r#"{{"type":"platform.report","record":{{"requestId":"r","metrics":{{"durationMs":{text},"memorySizeMB":{text}}}}}}}"#
            );
            assert!(envelope(&msg).is_some(), "{msg}");
            let Some(Record::Report(r)) = fast(&msg) else {
                panic!("{msg}");
            };
            let serde: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(r.duration_ms.to_bits(), serde.to_bits(), "{text}");
        }
    }

    /// Deterministic corruption of the Lambda events: wherever the scan
    /// answers, it answers as serde does.
    #[test]
    fn mangled_events_match_serde() {
        let mut next = crate::testutil::xorshift(0x9E37_79B9_7F4A_7C15);
        let specials = [
            b'\t', b' ', b'\\', b'"', b'{', b'}', b'[', b']', b':', b',', b'\n', b'0', b'-', b'.',
            b'e', 0x0b,
        ];
        let (mut answered, mut refused) = (0, 0);
        for msg in LAMBDA {
            for _ in 0..2_000 {
                let mut bytes = msg.as_bytes().to_vec();
                crate::testutil::mangle(&mut bytes, &specials, &mut next);
                let line = String::from_utf8_lossy(&bytes);
                if envelope(&line).is_some() {
                    let _ = fast(&line);
                    answered += 1;
                } else {
                    refused += 1;
                }
            }
        }
        // Both sides of the comparison were exercised.
        assert!(answered > 5_000 && refused > 5_000, "{answered} {refused}");
    }
}
