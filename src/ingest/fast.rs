//! The fast path of payload parsing: a single-pass scanner for the payload
//! shape CloudWatch Logs writes, straight into an [`OwnedPayload`].
//!
//! serde_json reads every string byte by byte through its escape scanner and
//! allocates each unescaped message; that was a quarter of replay's time.
//! This scanner finds the end of a string 16 bytes at a time, copies runs
//! between escapes whole and puts every string into one buffer. It accepts
//! only the exact wire shape — `messageType`, `owner`, `logGroup`,
//! `logStream`, `subscriptionFilters` and `logEvents` of
//! `{id, timestamp, message}`, with string ids and integer timestamps — and
//! returns `None` for anything else (unknown keys, integer ids, duplicates,
//! any syntax or escape it does not take, control bytes in strings). The
//! caller then parses with serde_json, the reference path, which gives the
//! same payload or the precise error: the fast path never decides that input
//! is bad.

use std::ops::Range;

use super::{MessageType, OwnedPayload};

/// Parse `text` on the fast path, or `None` to let the reference parser decide.
pub(super) fn parse(text: &str) -> Option<OwnedPayload> {
    parse_with(text, has_avx2())
}

/// [`parse`], with AVX2 blocks (if the CPU has AVX2) or without: tests
/// take both paths.
fn parse_with(text: &str, avx2: bool) -> Option<OwnedPayload> {
    let mut s = Scanner {
        text,
        b: text.as_bytes(),
        i: 0,
        // Unescaping only shrinks: the input length bounds the text; 32
        // more for the last block [`Scanner::copy_blocks`] stores.
        out: Vec::with_capacity(text.len() + 32),
        avx2: avx2 && has_avx2(),
    };
    let mut message_type = None;
    let (mut owner, mut log_group, mut log_stream) = (None, None, None);
    let mut filters = None;
    let mut events = None;
    s.object(|s, key| {
        match key {
            "messageType" if message_type.is_none() => {
                let v = s.string()?;
                message_type = Some(match &s.out[v.clone()] {
                    b"DATA_MESSAGE" => MessageType::Data,
                    b"CONTROL_MESSAGE" => MessageType::Control,
                    _ => return None,
                });
                s.out.truncate(v.start);
            }
            "owner" if owner.is_none() => owner = Some(s.string()?),
            "logGroup" if log_group.is_none() => log_group = Some(s.string()?),
            "logStream" if log_stream.is_none() => log_stream = Some(s.string()?),
            "subscriptionFilters" if filters.is_none() => {
                let mut v = Vec::new();
                s.array(|s| {
                    v.push(s.string()?);
                    Some(())
                })?;
                filters = Some(v);
            }
            "logEvents" if events.is_none() => {
                let mut v = Vec::with_capacity(1024);
                s.array(|s| {
                    v.push(s.event()?);
                    Some(())
                })?;
                events = Some(v);
            }
            _ => return None,
        }
        Some(())
    })?;
    s.end()?;
    let empty = s.out.len()..s.out.len();
    debug_assert!(std::str::from_utf8(&s.out).is_ok());
    // SAFETY: every byte of `out` is a byte of `text` (a `str`) copied in
    // runs that end before an ASCII byte, or the UTF-8 of an escape's
    // `char`; the document was read to its end, so every string is
    // complete and no run ends inside a character.
    let text = unsafe { String::from_utf8_unchecked(s.out) };
    Some(OwnedPayload {
        region: None,
        text,
        message_type: message_type?,
        owner: owner.unwrap_or_else(|| empty.clone()),
        log_group: log_group.unwrap_or_else(|| empty.clone()),
        log_stream: log_stream.unwrap_or(empty),
        filters: filters.unwrap_or_default(),
        events: events?,
    })
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
    /// Every string value, unescaped, one after another: UTF-8 once each
    /// string is complete (a block copy may stop inside a character).
    out: Vec<u8>,
    /// Copy 32-byte blocks: set only when the CPU has AVX2.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    avx2: bool,
}

impl<'a> Scanner<'a> {
    fn skip_ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.i += 1;
        }
    }

    /// Next non-whitespace byte, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// After an element: `true` on `,`, `false` on `close`.
    fn list_next(&mut self, close: u8) -> Option<bool> {
        let c = self.peek()?;
        self.i += 1;
        match c {
            b',' => Some(true),
            c if c == close => Some(false),
            _ => None,
        }
    }

    /// Only whitespace may follow the document.
    fn end(&mut self) -> Option<()> {
        self.skip_ws();
        (self.i == self.b.len()).then_some(())
    }

    fn array(&mut self, mut each: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            each(self)?;
            if !self.list_next(b']')? {
                return Some(());
            }
        }
    }

    /// An object: `each` reads the value of every key (the scanner is just
    /// past the `:`).
    fn object(&mut self, mut each: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.expect(b':')?;
            each(self, key)?;
            if !self.list_next(b'}')? {
                return Some(());
            }
        }
    }

    fn event(&mut self) -> Option<(Range<usize>, i64, Range<usize>)> {
        let (mut id, mut timestamp, mut message) = (None, None, None);
        self.object(|s, key| {
            match key {
                "id" if id.is_none() => id = Some(s.string()?),
                // Out of range: declined, so the reference parser names it.
                "timestamp" if timestamp.is_none() => {
                    timestamp = Some(s.integer().filter(|t| {
                        t.unsigned_abs() <= super::MAX_ABS_TIMESTAMP_MS.unsigned_abs()
                    })?);
                }
                "message" if message.is_none() => message = Some(s.string()?),
                _ => return None,
            }
            Some(())
        })?;
        Some((id?, timestamp?, message?))
    }

    /// An integer that fits i64 (no sign other than `-`, no fraction or exponent).
    fn integer(&mut self) -> Option<i64> {
        self.skip_ws();
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let n = self.i - digits;
        // A leading zero is only valid alone; 18 digits always fit.
        if n == 0 || n > 18 || (n > 1 && self.b[digits] == b'0') {
            return None;
        }
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.text[start..self.i].parse().ok()
    }

    /// An object key: a string without escapes, borrowed from the input.
    fn key(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.i;
        let at = start + special(&self.b[start..])?;
        if self.b[at] != b'"' {
            return None;
        }
        self.i = at + 1;
        Some(&self.text[start..at])
    }

    /// A string value, unescaped onto `out`; its range there.
    fn string(&mut self) -> Option<Range<usize>> {
        self.expect(b'"')?;
        let begin = self.out.len();
        loop {
            let at = match self.copy_blocks() {
                Some(at) => at,
                None => {
                    let at = self.i + special(&self.b[self.i..])?;
                    self.out.extend_from_slice(&self.b[self.i..at]);
                    self.i = at;
                    at
                }
            };
            // At a special byte: `"`, `\` or a control byte (rejected).
            match self.b[at] {
                b'"' => {
                    self.i += 1;
                    return Some(begin..self.out.len());
                }
                b'\\' => self.escape()?,
                _ => return None,
            }
        }
    }

    /// Copies the string's bytes from `self.i` onto `out` a block at a time
    /// (32 bytes with AVX2, then 16) and unescapes its short escapes (`\"`,
    /// `\n`, …) on the way; stops at the first other special byte (`"`, a
    /// control byte, a `\u` or invalid escape) and returns its index with
    /// `self.i` there. `None` when 32 bytes or fewer of input are left (then
    /// `self.i` and `out` are where the copy got to, and the caller finishes
    /// with [`special`]).
    ///
    /// Each block is stored whole before it is searched and `out` then
    /// grows by the bytes before the special one (simdjson's string copy):
    /// no call per run. A short escape writes its byte over the stored
    /// backslash and the rest of the block is stored after it ([`copy_loop`]),
    /// so the `\"` of every quote in a Lambda JSON-format line costs a few
    /// instructions, not a return to [`Scanner::string`] and a `push`:
    /// this function went from 38.9 M to 27.9 M instructions over a replay
    /// of 8 JSON-format batches, 24.9 M to 18.6 M over 8 text-format ones
    /// (callgrind, inclusive).
    #[cfg(target_arch = "x86_64")]
    fn copy_blocks(&mut self) -> Option<usize> {
        let b = self.b;
        let out = &mut self.out;
        // Each input byte the loops read adds at most one byte to `out` (a
        // short escape reads two and adds one), so this room, checked once,
        // holds before every block store: [`copy_loop`]'s contract.
        if out.capacity() - out.len() < b.len() - self.i + 32 {
            return None;
        }
        let base = out.as_mut_ptr();
        let mut pos = (self.i, out.len());
        // SAFETY: the room above covers blocks of 32 and of 16 bytes from
        // `pos`, and `base` is `out`'s buffer with `pos.1 == out.len()`;
        // the AVX2 loop runs only when the CPU has AVX2 and BMI1 ([`has_avx2`]).
        let found = unsafe {
            let wide = if self.avx2 {
                copy_loop_avx2(b, base, &mut pos)
            } else {
                None
            };
            // The 32-byte loop leaves up to 64 bytes: 16-byte blocks next.
            wide.or_else(|| copy_loop::<Sse2>(b, base, &mut pos))
        };
        self.i = pos.0;
        // SAFETY: the loops leave `pos.1` where every byte of `out` below it
        // was written (a block or the rest of one stored whole before
        // `pos.1` passes any of it, or an escape's byte), inside the
        // capacity by the room above.
        unsafe { out.set_len(pos.1) };
        found
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn copy_blocks(&mut self) -> Option<usize> {
        None
    }

    /// One escape at `self.i` (the backslash), appended to `out`. A table,
    /// not a `match`: the jump table a `match` compiles to mispredicted on
    /// the `\t`…`\n` of every text-format line (perf annotate; callgrind's
    /// branch simulation: 81,578 indirect mispredictions in this function
    /// over 8 text batches, none with the table).
    fn escape(&mut self) -> Option<()> {
        let c = *self.b.get(self.i + 1)?;
        self.i += 2;
        match SHORT_ESCAPES[usize::from(c)] {
            0 if c == b'u' => self.unicode_escape(),
            0 => None,
            byte => {
                self.out.push(byte);
                Some(())
            }
        }
    }

    /// The rest of a `\u` escape (a surrogate pair takes two), appended to
    /// `out` as UTF-8.
    fn unicode_escape(&mut self) -> Option<()> {
        let hi = self.hex4()?;
        let ch = if (0xD800..0xDC00).contains(&hi) {
            if self.b.get(self.i..self.i + 2)? != b"\\u" {
                return None;
            }
            self.i += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
        } else {
            char::from_u32(hi)?
        };
        self.out
            .extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.b.get(self.i..self.i + 4)?;
        let mut v = 0;
        for &c in h {
            v = v * 16 + char::from(c).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }
}

/// One SIMD width of [`Scanner::copy_blocks`]'s loop.
#[cfg(target_arch = "x86_64")]
trait Block {
    /// Bytes per block.
    const W: usize;
    /// Stores the `W` bytes at `from` to `to` and returns their special
    /// mask (bit `k` set when byte `k` is `"`, `\\` or a control byte).
    ///
    /// # Safety
    /// `from..from + W` is readable, `to..to + W` writable, and the CPU
    /// has the block's instructions.
    unsafe fn copy(from: *const u8, to: *mut u8) -> u32;
}

/// 16-byte blocks: SSE2, part of every x86_64.
#[cfg(target_arch = "x86_64")]
struct Sse2;

#[cfg(target_arch = "x86_64")]
impl Block for Sse2 {
    const W: usize = 16;

    #[inline(always)]
    unsafe fn copy(from: *const u8, to: *mut u8) -> u32 {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128};
        // SAFETY: the caller's contract; neither intrinsic needs alignment.
        unsafe {
            let v = _mm_loadu_si128(from.cast::<__m128i>());
            _mm_storeu_si128(to.cast::<__m128i>(), v);
            special_mask(v) as u32
        }
    }
}

/// 32-byte blocks: AVX2, when the CPU has it. Halves the blocks of a long
/// run; with it (and the escape bytes read without bounds checks),
/// [`Scanner::string`] went from 27.9 M to 21.4 M instructions over a
/// replay of 8 JSON-format batches and from 18.6 M to 13.8 M over 8
/// text-format ones (callgrind, inclusive).
#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Block for Avx2 {
    const W: usize = 32;

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn copy(from: *const u8, to: *mut u8) -> u32 {
        use std::arch::x86_64::{
            __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
            _mm256_or_si256, _mm256_set1_epi8, _mm256_storeu_si256,
        };
        // SAFETY: the caller's contract; neither memory intrinsic needs
        // alignment, the others only compute on registers.
        unsafe {
            let v = _mm256_loadu_si256(from.cast::<__m256i>());
            _mm256_storeu_si256(to.cast::<__m256i>(), v);
            // The same test as [`special_mask`], 32 lanes wide.
            let below = _mm256_set1_epi8(0x1f);
            let ctrl = _mm256_cmpeq_epi8(_mm256_max_epu8(v, below), below);
            let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8));
            let backslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8));
            _mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(quote, backslash), ctrl)) as u32
        }
    }
}

/// Whether this CPU has AVX2 and BMI1 (every AVX2 CPU has both); `std`
/// caches the answer after the first call.
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("bmi1")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx2() -> bool {
    false
}

/// [`copy_loop`] with 32-byte blocks, compiled for AVX2, and for BMI1 so the
/// bit steps between escapes are one instruction each (`blsr`, `blsi`,
/// `andn`).
///
/// # Safety
/// [`copy_loop`]'s contract with `W = 32`, and the CPU has AVX2 and BMI1.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1")]
unsafe fn copy_loop_avx2(b: &[u8], base: *mut u8, pos: &mut (usize, usize)) -> Option<usize> {
    // SAFETY: the same contract, passed on.
    unsafe { copy_loop::<Avx2>(b, base, pos) }
}

/// The loop of [`Scanner::copy_blocks`] with blocks of `B::W` bytes, from
/// `pos = (src, dst)`: input index and `out` length. Returns the index of
/// the special byte it stopped at, or `None` when `2 * B::W` bytes or
/// fewer of input are left; `pos` is where it got to either way.
///
/// One mask per block, however many escapes it holds: after a short escape
/// the rest of the block is stored again one byte further left (a load
/// and a store that nothing waits for) and the next special byte comes
/// from the same mask, so the next escape does not wait for a load, a
/// compare and a `movemask` as it did when each escape started a block.
/// Instruction counts stayed level (callgrind), but that wait was the cost:
/// `replay --threads 1` over the 64-batch JSON-format bench corpus took
/// 141.1 ms of CPU instead of 151.7 (text format: 132.4 instead of 133.4;
/// medians of 15 interleaved runs each, `perf stat -e task-clock`, AVX2).
/// Likewise the next block's start is a rare branch, not a select on the
/// block's last escape: 137.2 ms instead of 140.2 (JSON), 127.2 instead
/// of 131.4 (text; medians of 20).
///
/// # Safety
/// `base` points to an allocation of `cap` bytes with `pos.1 + (b.len() -
/// pos.0) + B::W <= cap`, and the CPU has `B`'s instructions.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn copy_loop<B: Block>(b: &[u8], base: *mut u8, pos: &mut (usize, usize)) -> Option<usize> {
    let (mut blk, dst) = *pos;
    // Input index minus `out` index: one more after each short escape.
    // Wrapping: `out` may hold more bytes than `b` has before `blk`.
    let mut shift = blk.wrapping_sub(dst);
    // Stores go to `q - shift` for the input index `q` of their first
    // byte, with `q + W <= b.len()`. Since `shift` never falls, `q -
    // shift - dst <= q - pos.0`, so every store ends before `dst + (b.len()
    // - pos.0) + W`, inside the allocation by the contract.
    //
    // Blocks end `W + 1` bytes before the input does, so a store of the
    // rest of a block after an escape in its last byte (starting at `blk +
    // W + 1`) still reads inside `b`.
    while blk + 2 * B::W < b.len() {
        // SAFETY: reads `blk..blk + W` inside `b`; writes as above.
        let mut mask = unsafe { B::copy(b.as_ptr().add(blk), base.add(blk.wrapping_sub(shift))) };
        // Where the next block starts: after an escape in this block's
        // last byte, one byte later.
        let mut next = blk + B::W;
        while mask != 0 {
            let k = mask.trailing_zeros() as usize;
            let at = blk + k;
            // SAFETY: `k < W`, so `at + 1 <= blk + W < b.len()`.
            let (c, second) = unsafe { (*b.get_unchecked(at), *b.get_unchecked(at + 1)) };
            let short = match c {
                b'\\' => SHORT_ESCAPES[usize::from(second)],
                _ => 0,
            };
            if short == 0 {
                *pos = (at, at.wrapping_sub(shift));
                return Some(at);
            }
            // SAFETY: `out` index `at - shift` is below the end of the
            // block store above. The store of the rest of the block reads
            // `at + 2..at + 2 + W`, inside `b` as `at + 2 + W <= blk + 2 * W
            // + 1 <= b.len()`; its mask is not needed (the compiler drops
            // the test).
            unsafe {
                *base.add(at.wrapping_sub(shift)) = short;
                shift = shift.wrapping_add(1);
                B::copy(
                    b.as_ptr().add(at + 2),
                    base.add((at + 2).wrapping_sub(shift)),
                );
            }
            if k == B::W - 1 {
                // The escape's second byte starts the next block: skip it.
                // A branch, rare (one escape in 32 at most), and not a
                // select, so the next block's load does not wait for this
                // block's escapes.
                std::hint::cold_path();
                next = at + 2;
            }
            // Both bytes of the escape (the second may be `"` or `\\`),
            // from the lowest bit rather than `k`: one step fewer between
            // one escape and the next.
            let lowest = mask & mask.wrapping_neg();
            mask = mask & (mask - 1) & !(lowest << 1);
        }
        blk = next;
    }
    *pos = (blk, blk.wrapping_sub(shift));
    None
}

/// What each short escape (`\n`, `\"`, …) stands for, by the byte after the
/// backslash; 0 for the others (`\u` and invalid ones).
const SHORT_ESCAPES: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'n' as usize] = b'\n';
    t[b't' as usize] = b'\t';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'/' as usize] = b'/';
    t[b'r' as usize] = b'\r';
    t[b'b' as usize] = 0x08;
    t[b'f' as usize] = 0x0c;
    t
};

/// Index of the first `"`, `\` or control byte (< 0x20) in `b`.
///
/// Sixteen bytes per step with SSE2 (part of every x86_64): three compares,
/// one mask. A portable 16-byte block loop was not vectorised by the compiler
/// and measured slower than serde_json's own scanner; other targets take the
/// byte loop.
#[inline]
pub(super) fn special(b: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128};
        let mut base = 0;
        // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are
        // available; every load reads 16 bytes at `base` with
        // `base + 16 <= b.len()`, inside `b`, and `_mm_loadu_si128` has no
        // alignment requirement.
        unsafe {
            while base + 16 <= b.len() {
                let v = _mm_loadu_si128(b.as_ptr().add(base).cast::<__m128i>());
                let mask = special_mask(v);
                if mask != 0 {
                    return Some(base + mask.trailing_zeros() as usize);
                }
                base += 16;
            }
        }
        b[base..]
            .iter()
            .position(|&c| is_special(c))
            .map(|p| base + p)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        b.iter().position(|&c| is_special(c))
    }
}

/// Bit `k` set when byte `k` of `v` is special (`"`, `\\` or a control
/// byte): the one test [`special`] and [`Sse2`] blocks share.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special_mask(v: std::arch::x86_64::__m128i) -> i32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline; these intrinsics only
    // compute on the register.
    unsafe {
        let below = _mm_set1_epi8(0x1f);
        // c <= 0x1f  <=>  max(c, 0x1f) == 0x1f (unsigned)
        let ctrl = _mm_cmpeq_epi8(_mm_max_epu8(v, below), below);
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), ctrl))
    }
}

#[inline]
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn special_finds_the_first_in_every_position() {
        for len in 0..40 {
            for at in 0..len {
                for c in [b'"', b'\\', b'\n', 0u8, 0x1f] {
                    let mut v = vec![b'a'; len];
                    v[at] = c;
                    assert_eq!(special(&v), Some(at), "len {len} at {at} byte {c}");
                }
            }
            assert_eq!(special(&vec![b'x'; len]), None);
            assert_eq!(special(&vec![0x80; len]), None, "UTF-8 continuation bytes");
        }
    }

    #[test]
    fn declines_what_it_does_not_take() {
        for json in [
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":1,"timestamp":1,"message":"a"}]}"#,
            r#"{"messageType":"DATA_MESSAGE","extra":1,"logEvents":[]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1.5,"message":"a"}]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":01,"message":"a"}]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"\ud800"}]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"a","x":2}]}"#,
            r#"{"messageType":"DATA_MESSAGE","messageType":"DATA_MESSAGE","logEvents":[]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[]} x"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[],}"#,
            r#"{"messageType":"DATA","logEvents":[]}"#,
            r#"{"logEvents":[]}"#,
            "{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"id\":\"1\",\"timestamp\":1,\"message\":\"a\tb\"}]}",
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"\x"}]}"#,
        ] {
            assert!(parse(json).is_none(), "{json}");
        }
    }

    /// Block copies stop at every position of a block, inside multi-byte
    /// characters and next to escapes, at the end of the input too.
    #[test]
    fn strings_of_every_length_and_mix_read_as_the_reference_reads_them() {
        let pieces = [
            "a", "é", "😀", "\"", "\\", "\n", "\t", "\u{7}", "/", "ab", "€",
        ];
        for (len, avx2) in (0..70).flat_map(|len| [(len, false), (len, true)]) {
            for seed in 0..pieces.len() {
                let message: String = (0..len)
                    .map(|i| pieces[(i * 7 + seed * 3 + i / 5) % pieces.len()])
                    .collect();
                let json = format!(
                    r#"{{"messageType":"DATA_MESSAGE","logEvents":[{{"id":"1","timestamp":1,"message":{}}},{{"id":"2","timestamp":2,"message":{}}}]}}"#,
                    serde_json::to_string(&message).unwrap(),
                    serde_json::to_string(&message.chars().rev().collect::<String>()).unwrap(),
                );
                let reference = super::super::parse_payload_reference(&json).unwrap();
                let owned = parse_with(&json, avx2).unwrap();
                assert_eq!(owned.view(), reference, "{json}");
                assert_eq!(owned.view().log_events[0].message, message);
            }
        }
    }

    /// Every escape (valid or not, and a control byte) at every offset
    /// of a 16- and 32-byte block: straddling the block end, as the last
    /// byte of a block, in the scalar tail at the end of the input.
    #[test]
    fn escapes_at_every_block_offset_read_as_the_reference_reads_them() {
        let tails = [
            r#"\""#,
            r#"\\"#,
            r#"\n\t"#,
            r#"\/\b\f\r"#,
            r#"\u00e9"#,
            r#"\u20ac"#,
            r#"\ud83d\ude00"#,
            r#"\u0000"#,
            r#"\ud800"#,
            r#"\ud83dx"#,
            r#"\udc00"#,
            r#"\u12"#,
            r#"\u12g4"#,
            r#"\x"#,
            r#"\'"#,
            "\t",
            "\u{1f}",
            "\u{7f}é",
            r#"\"\"\"\\\n"#,
            r#"\"#,
        ];
        for n in 0..80 {
            for tail in tails {
                for after in ["", "b", &"bcdefghijklmnopqrstuvwxyz0123456789".repeat(3)] {
                    let message = format!("{}{tail}{after}", "a".repeat(n));
                    // Last in the document too: within 32 bytes of its end.
                    for suffix in ["]}", r#",{"id":"2","timestamp":2,"message":"z"}]}"#] {
                        let json = format!(
                            r#"{{"messageType":"DATA_MESSAGE","logEvents":[{{"id":"1","timestamp":1,"message":"{message}"}}{suffix}"#
                        );
                        let reference = super::super::parse_payload_reference(&json);
                        for avx2 in [false, true] {
                            let owned = parse_with(&json, avx2);
                            match &reference {
                                Ok(p) => assert_eq!(owned.unwrap().view(), *p, "{json}"),
                                Err(_) => assert!(owned.is_none(), "{json}"),
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn takes_the_wire_shape_with_escapes() {
        let json = r#" { "messageType" : "DATA_MESSAGE", "owner":"1", "logGroup":"\/aws\/lambda\/x",
            "logStream":"s", "subscriptionFilters":["f"],
            "logEvents":[{"id":"9","timestamp":-5,"message":"caf\u00e9 \ud83d\ude00 \"q\"\t\\\n"}] } "#;
        let owned = parse(json).unwrap();
        let p = owned.view();
        assert_eq!(p.log_group, "/aws/lambda/x");
        assert_eq!(p.log_events[0].timestamp, -5);
        assert_eq!(p.log_events[0].message, "café 😀 \"q\"\t\\\n");
        assert_eq!(p.log_stream, "s");
        assert_eq!(p.owner, "1");
        assert_eq!(p.subscription_filters, ["f"]);
        let reference = super::super::parse_payload_reference(json).unwrap();
        assert_eq!(p, reference);
    }
}
