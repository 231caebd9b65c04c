//! The tokenizer shared by the platform text lines: separators, `Key: value`
//! fields and the numbers they carry.

use super::Status;

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

pub(super) fn skip_separators(s: &str) -> &str {
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

pub(super) fn token_end(s: &str) -> usize {
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

const LANE_ONES: u64 = u64::from_le_bytes([1; 8]);
const LANE_HIGH: u64 = u64::from_le_bytes([0x80; 8]);

/// Eight bytes of `b` from `i`, first byte lowest, when that many are left.
#[inline(always)]
pub(super) fn lanes(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..)?.first_chunk().map(|c| u64::from_le_bytes(*c))
}

/// The high bit of every byte of `x` below `limit` (`limit` ≤ 0x7F), and
/// maybe of some bytes just above such a byte (the borrow of the
/// subtraction): a candidate mask that never misses, so callers check each
/// flagged byte. The first flagged byte is always exact.
#[inline(always)]
pub(super) fn below_mask(x: u64, limit: u8) -> u64 {
    x.wrapping_sub(LANE_ONES * u64::from(limit)) & !x & LANE_HIGH
}

/// Like [`below_mask`], for the bytes of `x` equal to `c`.
#[inline(always)]
pub(super) fn eq_mask(x: u64, c: u8) -> u64 {
    below_mask(x ^ (LANE_ONES * u64::from(c)), 1)
}

/// Index in `b` of the byte a flagged high bit of the lanes at `i` stands for.
#[inline(always)]
pub(super) fn lane_index(i: usize, mask: u64) -> usize {
    i + (mask.trailing_zeros() / 8) as usize
}

/// `msg` without `word`, if `word` is a whole keyword (followed by a separator
/// or the end): `STARTED` or `START_X` must not look like `START`.
pub(super) fn strip_word<'a>(msg: &'a str, word: &str) -> Option<&'a str> {
    let rest = msg.strip_prefix(word)?;
    let b = rest.as_bytes();
    (b.is_empty() || is_space(b[0]) || literal_escape_at(b, 0)).then_some(rest)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
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
pub(super) struct Fields<'a> {
    pub(super) rest: &'a str,
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
pub(super) fn leading_request_id(s: &str) -> Option<(&str, Fields<'_>)> {
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
pub(super) fn parse_f64(token: &str) -> Option<f64> {
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
pub(super) fn parse_u64(token: &str) -> Option<u64> {
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

pub(super) fn parse_u32(token: &str) -> Option<u32> {
    u32::try_from(parse_u64(token)?).ok()
}

pub(super) fn parse_status(value: &str) -> Status {
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
pub(super) fn set_once<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The lane masks never miss a byte and their first flag is exact, for
    /// every byte value in every lane (with a neighbour that borrows).
    #[test]
    fn lane_masks_never_miss_and_first_flag_is_exact() {
        let mut next = crate::testutil::xorshift(0x2545_F491_4F6C_DD1D);
        let interesting = [
            0x00, 0x01, 0x1F, 0x20, 0x21, b'"', b'#', b'\\', b':', b';', 0x7F, 0x80, 0xFF,
        ];
        for round in 0..200_000 {
            let bytes: [u8; 8] = if round % 2 == 0 {
                next().to_le_bytes()
            } else {
                std::array::from_fn(|_| interesting[(next() as usize) % interesting.len()])
            };
            let x = lanes(&bytes, 0).unwrap();
            for (mask, hit) in [
                (
                    below_mask(x, 0x20),
                    &(|c: u8| c < 0x20) as &dyn Fn(u8) -> bool,
                ),
                (eq_mask(x, b'"'), &|c| c == b'"'),
                (eq_mask(x, b':'), &|c| c == b':'),
            ] {
                for (k, &c) in bytes.iter().enumerate() {
                    if hit(c) {
                        assert_ne!(mask & (0x80 << (8 * k)), 0, "{bytes:?} {k}");
                    }
                }
                let first = bytes.iter().position(|&c| hit(c));
                let flagged = (mask != 0).then(|| lane_index(0, mask));
                assert_eq!(flagged, first, "{bytes:?}");
            }
        }
        assert_eq!(lanes(b"1234567", 0), None);
        assert_eq!(lanes(b"12345678", 1), None);
        assert_eq!(lanes(b"12345678", usize::MAX), None);
    }
}
