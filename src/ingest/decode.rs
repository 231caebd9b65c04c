//! base64 and capped gunzip: the only way bytes get inflated in this crate.
//!
//! `clippy.toml` forbids flate2's uncapped readers; everything that inflates
//! (`awslogs`/Kinesis/Firehose `data`, raw `.gz` files) goes through
//! [`gunzip_capped`], which stops as soon as the output passes the cap, so a
//! gzip bomb costs at most `cap + 1` bytes of memory and the time to inflate
//! them.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use flate2::{Crc, Decompress, FlushDecompress, Status};

use super::Limits;
use super::error::{Base64Problem, DecodeError, GzipPart};

/// Standard alphabet; padding optional (some producers strip it), and nothing
/// else tolerated: whitespace, URL-safe symbols and non-zero trailing bits are
/// errors, because they mean the text was mangled on the way.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// gzip magic bytes (RFC 1952 ID1, ID2).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Deflate cannot expand by more than about 1032:1, so the output of `n`
/// compressed bytes is at most this many times `n` (plus a little): a bound
/// for how much to reserve up front whatever the trailer claims.
const MAX_DEFLATE_RATIO: usize = 1032;

/// Smallest growth step of the output buffer when the first guess was short.
const MIN_GROW: usize = 32 << 10;

/// base64 → gunzip (multi-member, capped) of one record's `data`.
///
/// The text must use the standard alphabet; `=` padding may be present or
/// missing; nothing else (no whitespace) is accepted. The result is at most
/// `limits.max_decoded_bytes` long.
///
/// # Errors
/// [`DecodeError::Base64`], then any error of [`gunzip_capped`].
pub fn decode_data(b64: &str, limits: &Limits) -> Result<Vec<u8>, DecodeError> {
    let mut gz = Vec::new();
    let mut out = Vec::new();
    decode_data_into(b64, limits, &mut gz, &mut out)?;
    Ok(out)
}

/// [`decode_data`] into caller-owned buffers, so that decoding many records
/// reuses two allocations. Both buffers are cleared first; on success `out`
/// holds the payload.
pub(crate) fn decode_data_into(
    b64: &str,
    limits: &Limits,
    gz: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    gz.clear();
    out.clear();
    if !decode_base64_simd(b64.as_bytes(), gz) {
        gz.clear();
        BASE64
            .decode_vec(b64.as_bytes(), gz)
            .map_err(|e| DecodeError::Base64 {
                problem: Base64Problem::from(e),
            })?;
    }
    gunzip_capped(gz, limits.max_decoded_bytes, out)
}

/// base64 with SIMD (base64-simd, already in the tree through the AWS SDK):
/// the 64 `data` strings of the bench corpus (15.6 MB) decoded in 1.1 ms
/// against 3.7 ms with the `base64` crate. It takes the same strict
/// alphabet and also rejects non-zero trailing bits; anything it does not
/// take (whatever the reason) is decoded again by [`BASE64`], which says
/// exactly what is wrong, so errors are unchanged. Returns whether `src`
/// was decoded onto `dst`.
fn decode_base64_simd(src: &[u8], dst: &mut Vec<u8>) -> bool {
    let engine = if src.len().is_multiple_of(4) {
        &base64_simd::STANDARD
    } else {
        &base64_simd::STANDARD_NO_PAD
    };
    engine.decode_append(src, dst).is_ok()
}

/// Gunzips `gz` (one or more concatenated gzip members, as `gzip -c a b`
/// writes them) and appends the result to `out`.
///
/// At most `cap` bytes are appended: inflating stops as soon as the output
/// would pass the cap and [`DecodeError::TooLarge`] is returned, so memory
/// stays bounded by the cap whatever the input claims. Every member's CRC-32
/// and length are checked. Zero bytes after the last member are ignored
/// (tape-style padding, as `gzip -d` does); anything else there is
/// [`DecodeError::GzipTrailingData`]. Empty input is an error (there is no
/// payload in it). On error `out` keeps whatever was appended so far.
///
/// # Errors
/// [`DecodeError::TooLarge`], [`DecodeError::GzipHeader`] (not gzip, bad
/// method or flags), [`DecodeError::GzipTruncated`],
/// [`DecodeError::GzipCorrupt`], [`DecodeError::GzipTrailer`] (CRC-32 or
/// length mismatch) and [`DecodeError::GzipTrailingData`].
pub fn gunzip_capped(gz: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let base = out.len();
    reserve_for(gz, cap, out);
    // One member that fits what was reserved (the usual payload): one call.
    // At most `cap` bytes of room, so a payload past the cap does not fit
    // and goes on to the streaming path, which reports it.
    if super::whole::gunzip_single_member(gz, cap, out) {
        return Ok(());
    }

    let mut inflater = Decompress::new(false);
    let mut pos = 0;
    let mut member = 1;
    loop {
        let data_start = pos + parse_header(gz, pos, member)?;
        let member_start = out.len();
        let used = inflate_member(
            &mut inflater,
            &gz[data_start..],
            InflateCtx {
                data_start,
                total_len: gz.len(),
                member,
                base,
                cap,
            },
            out,
        )?;
        pos = data_start + used;
        check_trailer(gz, pos, member, &out[member_start..])?;
        pos += 8;

        let rest = &gz[pos..];
        if rest.is_empty() || rest.iter().all(|&b| b == 0) {
            return Ok(());
        }
        if rest[0] != GZIP_MAGIC[0] {
            return Err(DecodeError::GzipTrailingData {
                member,
                offset: pos,
            });
        }
        member += 1;
        inflater.reset(false);
    }
}

/// Reserves a first guess of the output size: the last member's ISIZE trailer
/// (exact for the usual single member), but never more than the cap allows nor
/// more than deflate could produce from this much input, since the trailer is
/// attacker-controlled (and garbage when the stream is truncated).
fn reserve_for(gz: &[u8], cap: usize, out: &mut Vec<u8>) {
    let isize_hint = match gz.len().checked_sub(4) {
        Some(at) if gz.len() >= 18 => {
            u32::from_le_bytes([gz[at], gz[at + 1], gz[at + 2], gz[at + 3]]) as usize
        }
        _ => 0,
    };
    let most = gz
        .len()
        .saturating_mul(MAX_DEFLATE_RATIO)
        .saturating_add(64);
    let hint = isize_hint
        .max(MIN_GROW)
        .min(most)
        .min(cap.saturating_add(1));
    out.reserve(hint);
}

/// Parses the member header at `gz[pos..]`; returns its length.
fn parse_header(gz: &[u8], pos: usize, member: usize) -> Result<usize, DecodeError> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    const RESERVED: u8 = 0xe0;

    let h = &gz[pos..];
    let bad = |problem: String| DecodeError::GzipHeader {
        member,
        offset: pos,
        problem,
    };
    let truncated = DecodeError::GzipTruncated {
        member,
        part: GzipPart::Header,
        offset: gz.len(),
    };
    if h.is_empty() {
        return Err(bad("no data (empty input)".to_owned()));
    }
    if h[0] != GZIP_MAGIC[0] || h.get(1).is_some_and(|&b| b != GZIP_MAGIC[1]) {
        let found: Vec<String> = h.iter().take(2).map(|b| format!("{b:02x}")).collect();
        return Err(bad(format!(
            "expected magic 1f 8b, found {} (not gzip data)",
            found.join(" ")
        )));
    }
    if h.len() < 10 {
        return Err(truncated);
    }
    if h[2] != 8 {
        return Err(bad(format!(
            "unsupported compression method {} (only 8, deflate, exists)",
            h[2]
        )));
    }
    let flags = h[3];
    if flags & RESERVED != 0 {
        return Err(bad(format!("reserved flag bits set ({flags:#04x})")));
    }
    let mut len = 10;
    if flags & FEXTRA != 0 {
        let xlen = h.get(len..len + 2).ok_or_else(|| truncated.clone())?;
        len += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    // Zero-terminated original file name and comment.
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let field = h.get(len..).ok_or_else(|| truncated.clone())?;
            len += memchr::memchr(0, field).ok_or_else(|| truncated.clone())? + 1;
        }
    }
    if flags & FHCRC != 0 {
        len += 2;
    }
    if len > h.len() {
        return Err(truncated);
    }
    Ok(len)
}

/// Where a member sits, for error messages and the cap.
struct InflateCtx {
    /// Offset of the member's deflate data in the gzip input.
    data_start: usize,
    /// Length of the whole gzip input.
    total_len: usize,
    /// 1-based member number.
    member: usize,
    /// Length of `out` before this gunzip started (the cap counts from there).
    base: usize,
    /// The cap.
    cap: usize,
}

/// Inflates one raw deflate stream from `data` into `out`; returns how many
/// bytes of `data` it used.
fn inflate_member(
    inflater: &mut Decompress,
    data: &[u8],
    ctx: InflateCtx,
    out: &mut Vec<u8>,
) -> Result<usize, DecodeError> {
    loop {
        let produced = out.len() - ctx.base;
        // One byte of room past the cap: producing it proves the cap is passed.
        let room = ctx.cap.saturating_add(1).saturating_sub(produced);
        if room == 0 {
            return Err(DecodeError::TooLarge { cap: ctx.cap });
        }
        if out.len() == out.capacity() {
            // Grow geometrically (amortised O(n)), but never past cap + 1.
            let grow = (out.capacity() - ctx.base).max(MIN_GROW).min(room);
            out.reserve_exact(grow);
        }
        let used = inflater.total_in() as usize;
        let before_out = out.len();
        let status = inflater
            .decompress_vec(&data[used..], out, FlushDecompress::None)
            .map_err(|e| DecodeError::GzipCorrupt {
                member: ctx.member,
                offset: ctx.data_start + inflater.total_in() as usize,
                detail: e.message().unwrap_or("invalid deflate data").to_owned(),
            })?;
        let now_used = inflater.total_in() as usize;
        if out.len() - ctx.base > ctx.cap {
            return Err(DecodeError::TooLarge { cap: ctx.cap });
        }
        match status {
            Status::StreamEnd => return Ok(now_used),
            Status::Ok | Status::BufError => {
                let progressed = now_used != used || out.len() != before_out;
                if !progressed {
                    // Output room was available, so no progress means the
                    // inflater wants input that is not there.
                    return Err(if now_used >= data.len() {
                        DecodeError::GzipTruncated {
                            member: ctx.member,
                            part: GzipPart::Data,
                            offset: ctx.total_len,
                        }
                    } else {
                        DecodeError::GzipCorrupt {
                            member: ctx.member,
                            offset: ctx.data_start + now_used,
                            detail: "inflater stalled".to_owned(),
                        }
                    });
                }
            }
        }
    }
}

/// Checks the 8-byte trailer at `gz[pos..]` against the member's output.
fn check_trailer(gz: &[u8], pos: usize, member: usize, output: &[u8]) -> Result<(), DecodeError> {
    let Some(t) = gz.get(pos..pos + 8) else {
        return Err(DecodeError::GzipTruncated {
            member,
            part: GzipPart::Trailer,
            offset: gz.len(),
        });
    };
    let expected_crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let expected_len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
    let mut crc = Crc::new();
    crc.update(output);
    if crc.sum() != expected_crc {
        return Err(DecodeError::GzipTrailer {
            member,
            check: "CRC-32",
            expected: expected_crc,
            actual: crc.sum(),
        });
    }
    // ISIZE is the length modulo 2^32 (truncation intended).
    let actual_len = output.len() as u32;
    if actual_len != expected_len {
        return Err(DecodeError::GzipTrailer {
            member,
            check: "length",
            expected: expected_len,
            actual: actual_len,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::testutil::{b64, gzip, zeros_bomb};
    use super::*;
    use std::time::{Duration, Instant};

    /// Whenever the SIMD decoder takes a string, the reference decoder
    /// takes it too and gives the same bytes (the other way round is the
    /// fallback's job): random strings over the alphabet, padding and a few
    /// bytes outside it, and the edge cases of padding and trailing bits.
    #[test]
    fn the_simd_base64_never_accepts_what_the_reference_rejects() {
        let check = |text: &[u8]| {
            let mut fast = Vec::new();
            let took = decode_base64_simd(text, &mut fast);
            let reference = BASE64.decode(text);
            if took {
                assert_eq!(
                    reference.as_deref().ok(),
                    Some(&fast[..]),
                    "{:?}",
                    String::from_utf8_lossy(text)
                );
            }
            took
        };
        for case in [
            "", "QQ==", "QR==", "QQ", "QQ=", "QUI=", "QUJ=", "QUI", "====", "A===", "QQ==QQ==",
            "Q", "QUJD", "QUJD\n", " QUJD",
        ] {
            check(case.as_bytes());
        }
        assert!(check(b"QQ==") && check(b"QQ") && check(b"QUI") && check(b"QUJD"));
        assert!(!check(b"QR==") && !check(b"QUJ="));
        let alphabet =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n\x80";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut taken = 0;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 70) as usize;
            let mut text = Vec::with_capacity(len);
            let mut y = x;
            for _ in 0..len {
                y = y.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                // Mostly the alphabet, sometimes `=` or a stray byte.
                let r = (y >> 33) as usize;
                text.push(if r.is_multiple_of(16) {
                    alphabet[64 + r % 6]
                } else {
                    alphabet[r % 64]
                });
            }
            taken += usize::from(check(&text));
        }
        assert!(taken > 5_000, "{taken}");
    }

    fn limits(cap: usize) -> Limits {
        Limits {
            max_decoded_bytes: cap,
            ..Limits::default()
        }
    }

    #[test]
    fn round_trip_with_and_without_padding() {
        // A payload whose gzip length is not a multiple of 3, so that its
        // base64 has padding.
        let json = (0..)
            .map(|n| format!(r#"{{"a":{n}}}"#).into_bytes())
            .find(|j| !gzip(j).len().is_multiple_of(3))
            .unwrap();
        let json = json.as_slice();
        let text = b64(&gzip(json));
        assert!(text.ends_with('='));
        assert_eq!(decode_data(&text, &Limits::default()).unwrap(), json);
        let unpadded = text.trim_end_matches('=');
        assert_eq!(decode_data(unpadded, &Limits::default()).unwrap(), json);
    }

    #[test]
    fn bad_base64_names_offset() {
        let mut text = b64(&gzip(b"hello"));
        text.replace_range(5..6, "-");
        let err = decode_data(&text, &Limits::default()).unwrap_err();
        assert_eq!(err.to_string(), "base64: invalid byte '-' at offset 5");
        // Whitespace is not silently skipped.
        let err = decode_data("H4sI AAAA", &Limits::default()).unwrap_err();
        assert!(matches!(err, DecodeError::Base64 { .. }), "{err}");
        // One symbol too many.
        let err = decode_data("H4sIA", &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("invalid length"), "{err}");
    }

    #[test]
    fn multi_member_is_the_concatenation() {
        let mut gz = gzip(b"first member\n");
        gz.extend_from_slice(&gzip(b"second member\n"));
        let mut out = Vec::new();
        gunzip_capped(&gz, 1 << 20, &mut out).unwrap();
        assert_eq!(out, b"first member\nsecond member\n");
        // And through base64.
        assert_eq!(
            decode_data(&b64(&gz), &Limits::default()).unwrap(),
            b"first member\nsecond member\n"
        );
    }

    #[test]
    fn appends_to_out_and_caps_only_its_own_output() {
        let mut out = b"prefix:".to_vec();
        gunzip_capped(&gzip(b"12345"), 5, &mut out).unwrap();
        assert_eq!(out, b"prefix:12345");
        let err = gunzip_capped(&gzip(b"123456"), 5, &mut Vec::new()).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { cap: 5 });
    }

    #[test]
    fn cap_applies_across_members() {
        let mut gz = gzip(&[b'a'; 600]);
        gz.extend_from_slice(&gzip(&[b'b'; 600]));
        let err = gunzip_capped(&gz, 1000, &mut Vec::new()).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { cap: 1000 });
        gunzip_capped(&gz, 1200, &mut Vec::new()).unwrap();
    }

    #[test]
    fn gzip_bomb_fails_fast_with_bounded_memory() {
        // 64 MiB of zeros compressed by a real gzip: 64 members of 1 MiB each
        // (compressing 64 MiB in one go is slow in a debug build).
        let member = gzip(&vec![0u8; 1 << 20]);
        let bomb: Vec<u8> = member.repeat(64);
        assert!(bomb.len() < 100 << 10, "bomb is {} bytes", bomb.len());
        let text = b64(&bomb);
        let start = Instant::now();
        let err = decode_data(&text, &limits(8 << 20)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "decoded payload exceeds the 8388608-byte cap (gzip bomb?)"
        );
        assert!(start.elapsed() < Duration::from_secs(5));

        // 1 GiB of zeros in one member (1 MiB compressed): stops after the
        // cap, and the buffer never grows past cap + 1 byte of proof.
        let bomb = zeros_bomb((1 << 30) / 258);
        let start = Instant::now();
        let mut out = Vec::new();
        let err = gunzip_capped(&bomb, 8 << 20, &mut out).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { cap: 8 << 20 });
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(
            out.capacity() <= (8 << 20) + 1,
            "capacity {}",
            out.capacity()
        );
    }

    #[test]
    fn reserve_uses_the_trailer_but_respects_the_cap() {
        let data = vec![b'x'; 300_000];
        let gz = gzip(&data);
        let mut out = Vec::new();
        gunzip_capped(&gz, 1 << 20, &mut out).unwrap();
        assert_eq!(out.len(), 300_000);
        // One exact allocation (the trailer says 300000; +1 room not needed).
        assert!(out.capacity() >= 300_000 && out.capacity() <= 300_001 + MIN_GROW);

        // A forged trailer claiming 4 GiB reserves at most the cap + 1.
        let mut forged = gz.clone();
        let n = forged.len();
        forged[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut out = Vec::new();
        let err = gunzip_capped(&forged, 1 << 20, &mut out).unwrap_err();
        assert!(err.to_string().contains("length check"), "{err}");
        assert!(out.capacity() <= (1 << 20) + 1);
    }

    #[test]
    fn truncated_gzip_is_reported_as_such() {
        let gz = gzip(br#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#);
        for cut in [3, 9, 15, gz.len() - 8, gz.len() - 3] {
            let err = gunzip_capped(&gz[..cut], 1 << 20, &mut Vec::new()).unwrap_err();
            assert!(
                err.to_string().starts_with("truncated gzip stream"),
                "cut at {cut}: {err}"
            );
        }
        let err = gunzip_capped(&gz[..gz.len() - 3], 1 << 20, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::GzipTruncated {
                member: 1,
                part: GzipPart::Trailer,
                offset: gz.len() - 3
            }
        );
    }

    #[test]
    fn bad_header_and_corruption() {
        let err = gunzip_capped(b"{\"a\":1}", 100, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad gzip header (member 1, byte 0): expected magic 1f 8b, found 7b 22 (not gzip data)"
        );
        let err = gunzip_capped(b"", 100, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("empty input"), "{err}");

        let mut gz = gzip(b"hello hello hello");
        gz[2] = 7;
        let err = gunzip_capped(&gz, 100, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("compression method 7"), "{err}");

        // Flip a bit in the trailer's CRC.
        let mut gz = gzip(b"hello hello hello");
        let n = gz.len();
        gz[n - 8] ^= 1;
        let err = gunzip_capped(&gz, 100, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("CRC-32 check"), "{err}");

        // A corrupt block type (first byte of deflate data: BTYPE=11).
        let mut gz = gzip(b"hello hello hello");
        gz[10] |= 0b110;
        let err = gunzip_capped(&gz, 100, &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string().starts_with("corrupt gzip stream: member 1"),
            "{err}"
        );
    }

    #[test]
    fn trailing_zeros_ok_garbage_not() {
        let mut gz = gzip(b"data");
        gz.extend_from_slice(&[0, 0, 0, 0]);
        let mut out = Vec::new();
        gunzip_capped(&gz, 100, &mut out).unwrap();
        assert_eq!(out, b"data");
        let mut gz = gzip(b"data");
        let n = gz.len();
        gz.extend_from_slice(b"junk");
        let err = gunzip_capped(&gz, 100, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::GzipTrailingData {
                member: 1,
                offset: n
            }
        );
        // A second member cut inside its header.
        let mut gz = gzip(b"data");
        gz.extend_from_slice(&[0x1f, 0x8b, 8]);
        let err = gunzip_capped(&gz, 100, &mut Vec::new()).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::GzipTruncated {
                member: 2,
                part: GzipPart::Header,
                ..
            }
        ));
    }

    #[test]
    fn header_optional_fields_are_skipped() {
        // FEXTRA + FNAME + FCOMMENT + FHCRC around the same deflate data.
        let plain = gzip(b"payload");
        let mut gz = vec![0x1f, 0x8b, 8, 0x1e, 0, 0, 0, 0, 0, 255];
        gz.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
        gz.extend_from_slice(b"name.json\0a comment\0");
        gz.extend_from_slice(&[0xab, 0xcd]);
        gz.extend_from_slice(&plain[10..]);
        let mut out = Vec::new();
        gunzip_capped(&gz, 100, &mut out).unwrap();
        assert_eq!(out, b"payload");
        // Cut inside the file name.
        let err = gunzip_capped(&gz[..20], 100, &mut Vec::new()).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::GzipTruncated {
                part: GzipPart::Header,
                ..
            }
        ));
    }
}
