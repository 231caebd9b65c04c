//! [`DecodeError`]: why one unit of input could not be decoded.
//!
//! Every message says *what* failed and *where* inside the unit (byte offset,
//! gzip member, JSON line/column, `logEvents[i]`). It never repeats the unit's
//! origin (`record 3`, `line 17`): [`super::for_each_payload`] hands the origin
//! to its callback separately, so callers print `{file}: {origin}: {error}`.
//! The messages are self-contained and no variant exposes a `source()`, so
//! printing a chain (`{:#}` in anyhow) never shows a cause twice.

use std::fmt;

/// What went wrong decoding one unit of input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The `data` text is not valid base64 (standard alphabet, padding optional).
    #[error("base64: {problem}")]
    Base64 {
        /// The first problem found.
        problem: Base64Problem,
    },

    /// Inflating produced more than the cap: stopped early, nothing is kept.
    #[error("decoded payload exceeds the {cap}-byte cap (gzip bomb?)")]
    TooLarge {
        /// The cap in force ([`super::Limits::max_decoded_bytes`]).
        cap: usize,
    },

    /// A gzip member header is invalid (wrong magic, method or flags).
    #[error("bad gzip header (member {member}, byte {offset}): {problem}")]
    GzipHeader {
        /// 1-based gzip member number.
        member: usize,
        /// Offset of the member's first byte in the gzip data.
        offset: usize,
        /// What is wrong with it.
        problem: String,
    },

    /// The gzip data ends before its last member is complete.
    #[error("truncated gzip stream: {part} of member {member} cut off at byte {offset}")]
    GzipTruncated {
        /// 1-based gzip member number.
        member: usize,
        /// Which part of the member was cut off.
        part: GzipPart,
        /// Length of the gzip data (where it stops).
        offset: usize,
    },

    /// The deflate data of a member is corrupt.
    #[error("corrupt gzip stream: member {member} near byte {offset}: {detail}")]
    GzipCorrupt {
        /// 1-based gzip member number.
        member: usize,
        /// Approximate offset in the gzip data where inflating failed.
        offset: usize,
        /// The inflater's diagnosis.
        detail: String,
    },

    /// A member's trailer (CRC-32 or length) disagrees with its data.
    #[error(
        "corrupt gzip stream: member {member} fails its {check} check \
         (trailer says {expected:#010x}, data gives {actual:#010x})"
    )]
    GzipTrailer {
        /// 1-based gzip member number.
        member: usize,
        /// `CRC-32` or `length`.
        check: &'static str,
        /// Value stored in the trailer.
        expected: u32,
        /// Value computed from the inflated data.
        actual: u32,
    },

    /// Bytes after the last complete member that are neither another member
    /// nor zero padding.
    #[error("unexpected data after gzip member {member}, at byte {offset}")]
    GzipTrailingData {
        /// 1-based number of the last complete member.
        member: usize,
        /// Offset of the unexpected bytes in the gzip data.
        offset: usize,
    },

    /// JSON text that is not UTF-8 (serde_json would only say "invalid unicode
    /// code point", so it is checked first, and that also lets parsing borrow).
    #[error("{what}: invalid UTF-8 at line {line} column {column} (byte {offset})")]
    InvalidUtf8 {
        /// `payload JSON` or `input JSON`.
        what: &'static str,
        /// 1-based line.
        line: usize,
        /// Column as serde_json counts it (bytes, 1-based).
        column: usize,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },

    /// A subscription payload (the decoded `data`) is not valid JSON or does not
    /// have the payload's schema.
    #[error("payload JSON: {message} at line {line} column {column}")]
    PayloadJson {
        /// What serde_json or the schema says, e.g. `logEvents[2]: invalid type…`.
        message: String,
        /// 1-based line in the payload.
        line: usize,
        /// Column in that line (bytes, 1-based).
        column: usize,
    },

    /// The input itself (an envelope or an NDJSON line) is not valid JSON or a
    /// record of it lacks a required field. Line and column are in the whole
    /// input.
    #[error("input JSON: {message} at line {line} column {column}")]
    InputJson {
        /// What serde_json or the schema says.
        message: String,
        /// 1-based line in the input.
        line: usize,
        /// Column in that line (bytes, 1-based).
        column: usize,
    },

    /// The input as a whole matches none of the forms.
    #[error(
        "not a recognised input: expected an awslogs/Kinesis/Firehose event, \
         a subscription payload, gzip, NDJSON or a plain log ({found})"
    )]
    NotRecognised {
        /// What was found instead, e.g. `binary data: 64% of its 9000
        /// bytes are control bytes or invalid UTF-8`.
        found: String,
    },

    /// A plain log has more lines than the cap: the lines before it were
    /// read, the rest was not.
    #[error("plain log longer than the {cap}-line cap (--max-file-lines): the rest was not read")]
    TooManyLines {
        /// The cap in force ([`super::Limits::max_file_lines`]).
        cap: usize,
    },
}

/// What is wrong with a base64 text (offsets are in the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Problem {
    /// A byte outside the standard alphabet (also a misplaced `=`, whitespace
    /// or a URL-safe `-`/`_`: only the standard alphabet is accepted).
    InvalidByte {
        /// Offset of the byte.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// A length no base64 text can have (one symbol too many or too few).
    InvalidLength {
        /// Number of base64 symbols.
        symbols: usize,
    },
    /// The last symbol carries bits that decode to nothing.
    InvalidLastSymbol {
        /// Offset of the symbol.
        offset: usize,
        /// The symbol.
        byte: u8,
    },
    /// Padding of the wrong length.
    InvalidPadding,
}

impl fmt::Display for Base64Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Base64Problem::InvalidByte { offset, byte } => {
                write!(f, "invalid byte {} at offset {offset}", ShowByte(byte))
            }
            Base64Problem::InvalidLength { symbols } => write!(
                f,
                "invalid length: {symbols} symbols cannot be base64 (truncated?)"
            ),
            Base64Problem::InvalidLastSymbol { offset, byte } => write!(
                f,
                "invalid last symbol {} at offset {offset} (truncated or corrupted?)",
                ShowByte(byte)
            ),
            Base64Problem::InvalidPadding => f.write_str("invalid padding"),
        }
    }
}

impl From<base64::DecodeError> for Base64Problem {
    fn from(e: base64::DecodeError) -> Self {
        match e {
            base64::DecodeError::InvalidByte(offset, byte) => {
                Base64Problem::InvalidByte { offset, byte }
            }
            base64::DecodeError::InvalidLength(symbols) => Base64Problem::InvalidLength { symbols },
            base64::DecodeError::InvalidLastSymbol(offset, byte) => {
                Base64Problem::InvalidLastSymbol { offset, byte }
            }
            base64::DecodeError::InvalidPadding => Base64Problem::InvalidPadding,
        }
    }
}

/// Which part of a gzip member was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipPart {
    /// The 10-byte header or its optional fields.
    Header,
    /// The deflate-compressed data.
    Data,
    /// The 8-byte CRC-32 + length trailer.
    Trailer,
}

impl fmt::Display for GzipPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GzipPart::Header => "header",
            GzipPart::Data => "compressed data",
            GzipPart::Trailer => "trailer",
        })
    }
}

/// Shows a byte as `'x'` when printable ASCII, else as `0x1f`.
struct ShowByte(u8);

impl fmt::Display for ShowByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", self.0 as char)
        } else {
            write!(f, "{:#04x}", self.0)
        }
    }
}

impl DecodeError {
    /// Turns a serde_json error about a payload into [`DecodeError::PayloadJson`].
    pub(crate) fn payload_json(e: &serde_json::Error) -> Self {
        let (message, line, column) = split_json_error(e);
        DecodeError::PayloadJson {
            message,
            line,
            column,
        }
    }

    /// Turns a serde_json error about the input into [`DecodeError::InputJson`].
    pub(crate) fn input_json(e: &serde_json::Error) -> Self {
        let (message, line, column) = split_json_error(e);
        DecodeError::InputJson {
            message,
            line,
            column,
        }
    }

    /// Moves a JSON position reported relative to `sub` (a slice of `whole`
    /// starting at byte `base`) to a position in `whole`, so that errors about
    /// an NDJSON line or an envelope record point into the file a person opens.
    /// Other variants are returned unchanged.
    pub(crate) fn relocate(mut self, whole: &[u8], sub: &[u8], base: usize) -> Self {
        match &mut self {
            DecodeError::PayloadJson { line, column, .. }
            | DecodeError::InputJson { line, column, .. } => {
                if let Some(idx) = index_of_position(sub, *line, *column) {
                    (*line, *column) = position_of_index(whole, base.saturating_add(idx));
                }
            }
            DecodeError::InvalidUtf8 {
                line,
                column,
                offset,
                ..
            } => {
                *offset = base.saturating_add(*offset);
                (*line, *column) = position_of_index(whole, offset.saturating_add(1));
            }
            _ => {}
        }
        self
    }
}

/// Splits serde_json's `"<message> at line L column C"` into its parts: the
/// message is kept without the position so the variant can print it once.
fn split_json_error(e: &serde_json::Error) -> (String, usize, usize) {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full
        .strip_suffix(suffix.as_str())
        .unwrap_or(&full)
        .to_owned();
    (message, e.line(), e.column())
}

/// serde_json's position of index `i` (its `position_of_index`): line is
/// 1-based, column is `i` minus the start of its line. Error positions are
/// computed for the byte after the offending one, which makes columns 1-based.
pub(crate) fn position_of_index(text: &[u8], i: usize) -> (usize, usize) {
    let i = i.min(text.len());
    let head = &text[..i];
    let start_of_line = memchr::memrchr(b'\n', head).map_or(0, |p| p + 1);
    let line = 1 + memchr::memchr_iter(b'\n', &head[..start_of_line]).count();
    (line, i - start_of_line)
}

/// Inverse of [`position_of_index`]; `None` when the position is not in `text`.
fn index_of_position(text: &[u8], line: usize, column: usize) -> Option<usize> {
    let start_of_line = if line <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', text).nth(line - 2)? + 1
    };
    let i = start_of_line.checked_add(column)?;
    (i <= text.len()).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let text = b"ab\ncde\n\nf";
        for i in 0..=text.len() {
            let (line, column) = position_of_index(text, i);
            assert_eq!(index_of_position(text, line, column), Some(i), "index {i}");
        }
    }

    #[test]
    fn messages_say_what_and_where() {
        let e = DecodeError::Base64 {
            problem: Base64Problem::InvalidByte {
                offset: 17,
                byte: b'-',
            },
        };
        assert_eq!(e.to_string(), "base64: invalid byte '-' at offset 17");
        let e = DecodeError::TooLarge { cap: 8 << 20 };
        assert_eq!(
            e.to_string(),
            "decoded payload exceeds the 8388608-byte cap (gzip bomb?)"
        );
        let e = DecodeError::GzipTruncated {
            member: 1,
            part: GzipPart::Data,
            offset: 40,
        };
        assert_eq!(
            e.to_string(),
            "truncated gzip stream: compressed data of member 1 cut off at byte 40"
        );
    }
}
