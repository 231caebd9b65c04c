//! Envelopes → subscription payloads: base64, capped gunzip, borrowed JSON.
//!
//! Every input form of the design is recognised here, per file: the Lambda
//! `awslogs` event, the Kinesis and Firehose events, a decoded payload, and, for
//! the CLI, raw `.gz` payloads, NDJSON of any of those and plain log files.
//!
//! - [`for_each_payload`] takes one whole input (a file, stdin, a Lambda event
//!   body), detects its form and hands every payload in it to a callback,
//!   each decoded once and borrowed from buffers it owns.
//! - [`decode_data`] decodes one record's `data` (base64 → gunzip), and
//!   [`gunzip_capped`] is the one gunzip of the crate (the decoded size is
//!   capped so a gzip bomb is an error, not an OOM).
//! - [`parse_payload`] reads a decoded payload, borrowing its strings.
//! - [`read_event`] reads the shape of one Lambda event (the same reading
//!   [`for_each_payload`] gives a saved one), so the Lambda handler asks here
//!   and never re-parses an envelope; [`decode_record`] decodes each record.
//!
//! Layout: `decode.rs` (base64, gzip), `payload.rs` (payload JSON),
//! `envelope.rs` (form detection, envelopes, NDJSON), `plain.rs` (plain logs),
//! `error.rs` ([`DecodeError`]), `whole.rs` (one-shot gunzip with libdeflate,
//! the fast path of [`gunzip_capped`]).

use std::borrow::Cow;

pub mod decode;
mod envelope;
mod error;
mod fast;
mod payload;
pub mod plain;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
mod whole;

pub use decode::{GZIP_MAGIC, decode_data, gunzip_capped};
pub use envelope::{
    Event, EventRecord, decode_payload, decode_record, for_each_owned_payload, for_each_payload,
    read_event,
};
pub use error::{Base64Problem, DecodeError, GzipPart};
pub use payload::{parse_payload, parse_payload_owned, parse_payload_reference};
pub use plain::PLAIN_CHUNK_EVENTS;

/// Default cap on the decoded size of one payload (8 MiB).
pub const DEFAULT_MAX_DECODED_BYTES: usize = 8 << 20;

/// Default cap on the bytes read from one input file (128 MiB).
pub const DEFAULT_MAX_FILE_BYTES: usize = 128 << 20;

/// Default cap on the lines read from one plain log (1,000,000).
pub const DEFAULT_MAX_FILE_LINES: usize = 1_000_000;

/// Largest event time accepted either side of the epoch, in milliseconds: the
/// end of year 9999. The detectors add windows and durations to event times;
/// a timestamp near `i64::MAX` from a hostile file would overflow them.
pub const MAX_ABS_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// `messageType` of a subscription payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// `DATA_MESSAGE`: log events.
    Data,
    /// `CONTROL_MESSAGE`: a reachability check, to be skipped.
    Control,
}

/// One log event of a payload.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent<'a> {
    /// Event id (a string of digits in AWS; moto sends an integer).
    pub id: Cow<'a, str>,
    /// Event time, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The message.
    pub message: Cow<'a, str>,
}

/// A decoded subscription payload (one log group, one log stream).
#[derive(Debug, Clone, PartialEq)]
pub struct Payload<'a> {
    /// Data or control message.
    pub message_type: MessageType,
    /// Account id.
    pub owner: Cow<'a, str>,
    /// AWS region the payload came from, when its envelope says
    /// (Kinesis `awsRegion`/`eventSourceARN`, Firehose `region`); `None`
    /// for a direct subscription, a bare payload or a plain log.
    pub region: Option<Cow<'a, str>>,
    /// Log group name.
    pub log_group: Cow<'a, str>,
    /// Log stream name.
    pub log_stream: Cow<'a, str>,
    /// Names of the subscription filters that matched.
    pub subscription_filters: Vec<Cow<'a, str>>,
    /// The events, in the order given.
    pub log_events: Vec<LogEvent<'a>>,
}

/// Size caps applied while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest decoded (gunzipped) payload accepted, in bytes.
    pub max_decoded_bytes: usize,
    /// Most bytes read from one whole input (a file, stdin; replay only):
    /// a bigger one is read up to the last line break before the cap.
    pub max_file_bytes: usize,
    /// Most lines read from one plain log; the lines past it are reported,
    /// not read.
    pub max_file_lines: usize,
    /// Parse payloads with the reference parser only (serde_json), never the
    /// fast path: for tests that compare the two.
    #[doc(hidden)]
    pub reference_parser: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_file_lines: DEFAULT_MAX_FILE_LINES,
            reference_parser: false,
        }
    }
}

/// How one whole input (a file, stdin) was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputForm {
    /// `{"awslogs":{"data":…}}`.
    AwsLogs,
    /// `{"Records":[{"kinesis":{"data":…}}]}`.
    Kinesis,
    /// `{"records":[{"recordId":…,"data":…}]}`.
    Firehose,
    /// A decoded subscription payload.
    Payload,
    /// A raw gzip payload.
    Gzip,
    /// One JSON document of any of the above per line.
    Ndjson,
    /// A plain log file, one event per line.
    Plain,
}

/// Options for reading one whole input.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    /// Size caps.
    pub limits: Limits,
    /// Log group for plain log files.
    pub log_group: Option<String>,
    /// Log stream for plain log files.
    pub log_stream: Option<String>,
    /// Time for plain lines that carry no timestamp, ms since the epoch
    /// (the file's modification time; the clock for stdin). Syslog dates,
    /// which have no year, are placed in the year that puts them at most a
    /// day after it.
    pub default_timestamp_ms: i64,
    /// The year of the first syslog date (`--year`), instead of inferring
    /// it; later dates that go back by months (December, then January) are
    /// in the next year.
    pub syslog_year: Option<i32>,
}

/// A [`Payload`] that owns its text, so it can be decoded on one thread and
/// detected on another: every string in one buffer, events as ranges.
#[derive(Debug, Clone)]
pub struct OwnedPayload {
    pub(crate) text: String,
    pub(crate) message_type: MessageType,
    pub(crate) owner: std::ops::Range<usize>,
    pub(crate) region: Option<String>,
    pub(crate) log_group: std::ops::Range<usize>,
    pub(crate) log_stream: std::ops::Range<usize>,
    pub(crate) filters: Vec<std::ops::Range<usize>>,
    pub(crate) events: Vec<(std::ops::Range<usize>, i64, std::ops::Range<usize>)>,
}

impl OwnedPayload {
    /// Copy `p` (one allocation for all its text, one for its events).
    pub fn from_payload(p: &Payload<'_>) -> Self {
        let size = p.owner.len()
            + p.log_group.len()
            + p.log_stream.len()
            + p.subscription_filters
                .iter()
                .map(|f| f.len())
                .sum::<usize>()
            + p.log_events
                .iter()
                .map(|e| e.id.len() + e.message.len())
                .sum::<usize>();
        let mut text = String::with_capacity(size);
        let mut put = |s: &str| {
            let start = text.len();
            text.push_str(s);
            start..text.len()
        };
        let owner = put(&p.owner);
        let log_group = put(&p.log_group);
        let log_stream = put(&p.log_stream);
        let filters = p.subscription_filters.iter().map(|f| put(f)).collect();
        let events = p
            .log_events
            .iter()
            .map(|e| (put(&e.id), e.timestamp, put(&e.message)))
            .collect();
        OwnedPayload {
            text,
            message_type: p.message_type,
            owner,
            region: p.region.as_deref().map(str::to_string),
            log_group,
            log_stream,
            filters,
            events,
        }
    }

    /// The payload with the region its envelope names (a valid region code
    /// only: see [`region_code`]).
    pub fn with_region(mut self, region: Option<&str>) -> Self {
        self.region = region.and_then(region_code).map(str::to_string);
        self
    }

    /// Bytes it holds on the heap (its text and its event table).
    pub fn heap_size(&self) -> usize {
        self.text.capacity()
            + self.filters.capacity() * std::mem::size_of::<std::ops::Range<usize>>()
            + self.events.capacity()
                * std::mem::size_of::<(std::ops::Range<usize>, i64, std::ops::Range<usize>)>()
    }

    /// Each event's timestamp and message, in order, borrowed from the
    /// payload itself (not from a [`OwnedPayload::view`]).
    pub fn events(&self) -> impl Iterator<Item = (i64, &str)> {
        self.events
            .iter()
            .map(|(_, timestamp, message)| (*timestamp, &self.text[message.clone()]))
    }

    /// The payload, borrowing from `self`.
    pub fn view(&self) -> Payload<'_> {
        let s = |r: &std::ops::Range<usize>| Cow::Borrowed(&self.text[r.clone()]);
        Payload {
            message_type: self.message_type,
            owner: s(&self.owner),
            region: self.region.as_deref().map(Cow::Borrowed),
            log_group: s(&self.log_group),
            log_stream: s(&self.log_stream),
            subscription_filters: self.filters.iter().map(s).collect(),
            log_events: self
                .events
                .iter()
                .map(|(id, timestamp, message)| LogEvent {
                    id: s(id),
                    timestamp: *timestamp,
                    message: s(message),
                })
                .collect(),
        }
    }
}

/// `bytes` as UTF-8 text, or the standard library's error (which says where).
///
/// simdutf8 validates first: std's `from_utf8` was 3.5 M instructions of
/// 249.5 M for the 8 text batches of the icount corpus (one pass over each
/// payload, 0.44 per byte). Invalid input is validated again by std, so the
/// error is exactly std's.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(bytes),
    }
}

/// `region` when it is an AWS region code (`eu-west-1`, `us-gov-west-1`):
/// lower-case words joined by `-`, ending in a number. Regions end up in
/// console host names, so anything else is dropped, not passed on.
pub fn region_code(region: &str) -> Option<&str> {
    let mut parts = region.split('-');
    let first = parts.next()?;
    let ok = region.len() <= 32
        && first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && {
            let rest: Vec<&str> = parts.collect();
            rest.len() >= 2
                && rest
                    .last()
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                && rest[..rest.len() - 1]
                    .iter()
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        };
    ok.then_some(region)
}
