//! Test fixtures, built at test time: base64(gzip(json)) with padding.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;

use base64::Engine as _;

/// The decoded sample of reference/lambda-log-formats.md §1a (LDG), verbatim.
pub(crate) const LDG_PAYLOAD: &str = r#"{ "messageType": "DATA_MESSAGE", "owner": "123456789012",
  "logGroup": "/aws/lambda/echo-nodejs",
  "logStream": "2019/03/13/[$LATEST]94fa867e5374431291a7fc14e2f56ae7",
  "subscriptionFilters": ["LambdaStream_cloudwatchlogs-node"],
  "logEvents": [ { "id": "34622316099697884706540976068822859012661220141643892546",
                   "timestamp": 1552518348220,
                   "message": "REPORT RequestId: 6234bffe-149a-b642-81ff-2e8e376d8aff\tDuration: 46.84 ms\tBilled Duration: 47 ms \tMemory Size: 192 MB\tMax Memory Used: 72 MB\t\n" } ] }"#;

/// gzip of `data` (one member).
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Standard base64 with padding.
pub(crate) fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// base64(gzip(json)): a record's `data`.
pub(crate) fn data_of(json: &str) -> String {
    b64(&gzip(json.as_bytes()))
}

/// A small DATA_MESSAGE payload with the given group and messages.
pub(crate) fn payload_json(group: &str, messages: &[&str]) -> String {
    let events: Vec<String> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                r#"{{"id":"{}","timestamp":{},"message":{}}}"#,
                1000 + i,
                1_700_000_000_000_i64 + i as i64,
                serde_json::to_string(m).unwrap()
            )
        })
        .collect();
    format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"{group}","logStream":"s1","subscriptionFilters":["f"],"logEvents":[{}]}}"#,
        events.join(",")
    )
}

/// `{"awslogs":{"data":…}}` around `json`.
pub(crate) fn awslogs_event(json: &str) -> String {
    format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, data_of(json))
}

/// gzip of `1 + 258 * matches` zero bytes, written by hand as one
/// fixed-Huffman deflate block: a literal 0, then `matches` copies of
/// (length 258, distance 1), 13 bits each. Making a 1 GiB bomb this way takes
/// milliseconds, where compressing 1 GiB of zeros would take minutes in a
/// debug build. The trailer is correct (checked by `zeros_bomb_is_valid_gzip`).
pub(crate) fn zeros_bomb(matches: usize) -> Vec<u8> {
    /// LSB-first bit writer, as deflate packs its bits.
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        fn put(&mut self, value: u64, len: u32) {
            self.acc |= value << self.n;
            self.n += len;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// Huffman codes are stored most significant bit first.
        fn code(&mut self, code: u64, len: u32) {
            let reversed = (0..len).fold(0, |r, i| (r << 1) | ((code >> i) & 1));
            self.put(reversed, len);
        }
    }
    let mut bits = Bits {
        out: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255],
        acc: 0,
        n: 0,
    };
    bits.out.reserve(matches * 13 / 8 + 32);
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE = 01, fixed Huffman codes
    bits.code(0x30, 8); // literal 0
    for _ in 0..matches {
        bits.code(0xc5, 8); // symbol 285: length 258
        bits.code(0, 5); // distance code 0: distance 1
    }
    bits.code(0, 7); // symbol 256: end of block
    if bits.n > 0 {
        bits.out.push(bits.acc as u8);
    }

    // CRC-32 of the zeros by squaring: crc(2k zeros) = combine(crc(k), crc(k)).
    let mut crc = flate2::Crc::new();
    crc.update(&[0]);
    let mut power = flate2::Crc::new();
    power.update(&[0; 258]);
    let mut m = matches;
    while m > 0 {
        if m & 1 == 1 {
            crc.combine(&power);
        }
        let mut doubled = flate2::Crc::new();
        doubled.combine(&power);
        doubled.combine(&power);
        power = doubled;
        m >>= 1;
    }
    let len = 1 + 258 * matches;
    bits.out.extend_from_slice(&crc.sum().to_le_bytes());
    bits.out.extend_from_slice(&(len as u32).to_le_bytes());
    bits.out
}

#[test]
fn zeros_bomb_is_valid_gzip() {
    for matches in [0, 1, 2, 1000, 4097] {
        let mut out = Vec::new();
        super::gunzip_capped(&zeros_bomb(matches), 1 << 21, &mut out).unwrap();
        assert_eq!(out.len(), 1 + 258 * matches);
        assert!(out.iter().all(|&b| b == 0));
    }
}
