//! One-shot gunzip with libdeflate, the fast path of
//! [`super::decode::gunzip_capped`].
//!
//! Why C here: a CloudWatch Logs payload arrives whole (one gzip member of
//! ~100 KB–1 MB whose trailer gives the decoded size), so nothing needs a
//! streaming inflater. libdeflate inflates a whole buffer in one call; on the
//! bench corpus (64 payloads, 63.9 MB decoded) it took 38 ms against 72 ms
//! for flate2 + zlib-rs, the fastest streaming inflater measured, and gunzip
//! was a quarter of a single-threaded replay (perf). zune-inflate (pure
//! Rust, one-shot) took 73 ms.
//!
//! It only ever answers "done" or "not done": any error, a too-small output
//! (a trailer that lies, a payload past the cap) or input left after the
//! member sends the caller to the streaming path, which names the problem
//! exactly. So every error and every cap stays that path's, and a success
//! here is a gunzip that path would have made too (libdeflate checks the
//! header, the CRC-32 and the length like it does).

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// A libdeflate decompressor, freed on drop.
struct Decompressor(std::ptr::NonNull<libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Option<Decompressor> {
        // SAFETY: allocates a fresh decompressor (or returns null on OOM);
        // no arguments.
        let p = unsafe { libdeflate_alloc_decompressor() };
        std::ptr::NonNull::new(p).map(Decompressor)
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from libdeflate_alloc_decompressor and is
        // freed once, here.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

/// Gunzips `gz` into the spare capacity of `out`, writing at most `room`
/// bytes, when `gz` is one gzip member (followed by nothing or by zero bytes)
/// that inflates into that room. Returns whether it did; when it did not,
/// `out` is as it was.
pub(super) fn gunzip_single_member(gz: &[u8], room: usize, out: &mut Vec<u8>) -> bool {
    let Some(d) = Decompressor::new() else {
        return false;
    };
    let room = room.min(out.capacity() - out.len());
    let spare = out.spare_capacity_mut();
    let (mut used_in, mut made) = (0usize, 0usize);
    // SAFETY: `d` is a live decompressor; the input pointer and length come
    // from one slice; libdeflate writes at most `room` bytes from the output
    // pointer, and `room` is within `out`'s spare capacity. It reads no more
    // than `gz.len()` bytes and writes the two counts.
    let result = unsafe {
        libdeflate_gzip_decompress_ex(
            d.0.as_ptr(),
            gz.as_ptr().cast(),
            gz.len(),
            spare.as_mut_ptr().cast(),
            room,
            &mut used_in,
            &mut made,
        )
    };
    if result != libdeflate_result_LIBDEFLATE_SUCCESS || made > room || used_in > gz.len() {
        return false;
    }
    if !gz[used_in..].iter().all(|&b| b == 0) {
        // More members (or trailing garbage): the streaming path decides.
        return false;
    }
    // SAFETY: libdeflate reported success and wrote exactly `made` bytes,
    // all within the spare capacity (`made <= room <= spare.len()`).
    unsafe { out.set_len(out.len() + made) };
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testutil::{gzip, zeros_bomb};
    use super::*;

    fn text() -> Vec<u8> {
        (0..20_000)
            .flat_map(|i| format!("line {i}: START RequestId: {i:08x}\n").into_bytes())
            .collect()
    }

    /// Output room as `gunzip_capped` gives it: reserved capacity.
    fn with_room(prefix: &[u8], room: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(prefix.len() + room);
        out.extend_from_slice(prefix);
        out
    }

    #[test]
    fn one_member_is_inflated_after_what_out_holds() {
        let t = text();
        let gz = gzip(&t);
        let mut out = with_room(b"kept", t.len());
        assert!(gunzip_single_member(&gz, t.len(), &mut out));
        assert_eq!(&out[..4], b"kept");
        assert_eq!(&out[4..], &t[..]);

        // Zero bytes after the member are padding, as for the streaming path.
        let mut padded = gz.clone();
        padded.extend_from_slice(&[0; 7]);
        let mut out = with_room(b"", t.len());
        assert!(gunzip_single_member(&padded, t.len(), &mut out));
        assert_eq!(out, t);
    }

    #[test]
    fn anything_else_is_left_to_the_streaming_path_with_out_untouched() {
        let t = text();
        let gz = gzip(&t);
        let mut two = gz.clone();
        two.extend_from_slice(&gzip(b"second member"));
        let mut garbage = gz.clone();
        garbage.extend_from_slice(b"junk");
        let mut bad_crc = gz.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        let mut bad_len = gz.clone();
        let at = bad_len.len() - 4;
        bad_len[at] ^= 1;
        let truncated = gz[..gz.len() / 2].to_vec();
        let cases: [(&str, &[u8], usize); 8] = [
            ("two members", &two, 2 * t.len()),
            ("trailing garbage", &garbage, t.len()),
            ("CRC-32 mismatch", &bad_crc, t.len()),
            ("length mismatch", &bad_len, 2 * t.len()),
            ("truncated", &truncated, t.len()),
            ("not gzip", &t[..100], t.len()),
            ("empty", b"", t.len()),
            ("room one byte short (the cap)", &gz, t.len() - 1),
        ];
        for (what, input, room) in cases {
            let mut out = with_room(b"kept", room);
            assert!(!gunzip_single_member(input, room, &mut out), "{what}");
            assert_eq!(out, b"kept", "{what}");
        }
    }

    #[test]
    fn a_bomb_stops_at_the_room_given() {
        let bomb = zeros_bomb(1 << 20);
        let mut out = with_room(b"", 1 << 16);
        assert!(!gunzip_single_member(&bomb, 1 << 16, &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn the_room_is_never_more_than_the_spare_capacity() {
        let t = text();
        let gz = gzip(&t);
        // Asked for more room than was reserved: only the capacity counts.
        let mut out = Vec::with_capacity(16);
        assert!(out.capacity() < t.len());
        assert!(!gunzip_single_member(&gz, t.len(), &mut out));
        assert!(out.is_empty());
    }
}
