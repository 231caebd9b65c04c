//! One whole input → its form → every payload in it ([`for_each_payload`]).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::decode::{GZIP_MAGIC, decode_data_into, gunzip_capped};
use super::error::{DecodeError, position_of_index};
use super::payload::{parse_payload_owned_with, utf8_error};
use super::plain::{binary_check, for_each_plain};
use super::{FileOptions, InputForm, Limits, OwnedPayload, Payload};

/// The callback of [`for_each_payload`].
type Sink<'f> = dyn FnMut(&str, Result<OwnedPayload, DecodeError>) + 'f;

/// UTF-8 byte order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Walk every payload in one whole input, in order, calling `f` with where it
/// came from inside the input (e.g. `record 3`, `line 17`) and the payload or
/// why that unit could not be decoded. Returns the recognised form, or an error
/// when the input as a whole is unreadable.
///
/// The form is detected from the content alone (`name` is only used as the
/// log stream of a plain log):
///
/// | form | recognised by | units and their origins |
/// | --- | --- | --- |
/// | [`InputForm::Gzip`] | starts with `1f 8b` | one payload (the gunzipped text must be payload JSON), `gzip` |
/// | [`InputForm::AwsLogs`] | one JSON object with `awslogs` | one, `awslogs` |
/// | [`InputForm::Kinesis`] | one JSON object with `Records` | `record N`, N = 0-based index in `Records` |
/// | [`InputForm::Firehose`] | one JSON object with `records` | `recordId X` (or `record N` without a `recordId`) |
/// | [`InputForm::Payload`] | one JSON object with `logEvents` | one, `payload` |
/// | [`InputForm::Ndjson`] | not one JSON document, but ≥ 2 non-empty lines all starting with `{` | `line L` (1-based), `line L record N`, `line L recordId X` |
/// | [`InputForm::Plain`] | anything else that is text | `lines A-B` (1-based), see [`super::plain`] |
///
/// Leading whitespace and a UTF-8 BOM are skipped before looking for `{`. A
/// JSON object with several of the keys is taken in the order of the table.
///
/// Each unit is decoded once, into buffers owned by this call; `f` gets a
/// payload borrowing from them (or from `input`) and must copy what it keeps.
/// A unit that fails is passed to `f` as `Err` (its message does not repeat
/// the origin) and the others still follow. `CONTROL_MESSAGE` payloads are
/// passed to `f` too, as [`super::MessageType::Control`]: skipping them is the
/// caller's choice.
///
/// # Errors
/// `Err` is returned, and `f` not called, only when the input as a whole is
/// none of the forms ([`DecodeError::NotRecognised`], or
/// [`DecodeError::InputJson`]/[`DecodeError::InvalidUtf8`] for broken JSON):
/// - a single JSON object with none of the keys above (NDJSON whose first
///   line has none of them is a JSON-lines application log, read as plain);
/// - input starting with `{` that is neither one JSON document nor NDJSON,
///   e.g. broken JSON on one line: a JSON error with line and column, never
///   silently a plain log;
/// - a `Records` or `records` array none of whose elements looks like a
///   Kinesis or Firehose record (an S3 or SNS event, say), or that is not an
///   array;
/// - a JSON array (one is not a batch; NDJSON is one object per line);
/// - binary data: a first 8 KiB, or a whole input, that is more than 30 %
///   control bytes or invalid UTF-8 (a compressed or encrypted file that is
///   not gzip). Plain logs with a few such bytes are fine: a NUL is a
///   character of its line, invalid UTF-8 is converted lossily.
///
/// Empty or blank input is a plain log without payloads.
pub fn for_each_payload(
    input: &[u8],
    name: &str,
    opts: &FileOptions,
    f: &mut dyn FnMut(&str, Result<&Payload<'_>, DecodeError>),
) -> Result<InputForm, DecodeError> {
    for_each_owned_payload(input, name, opts, &mut |origin, unit| match unit {
        Ok(p) => f(origin, Ok(&p.view())),
        Err(e) => f(origin, Err(e)),
    })
}

/// [`for_each_payload`] handing over each payload as an [`OwnedPayload`],
/// so it can be kept or sent to another thread without a copy.
///
/// # Errors
/// As [`for_each_payload`].
pub fn for_each_owned_payload(
    input: &[u8],
    name: &str,
    opts: &FileOptions,
    f: &mut Sink<'_>,
) -> Result<InputForm, DecodeError> {
    let mut bufs = Buffers::take();
    let form = owned_payloads(input, name, opts, &mut bufs, f);
    bufs.give_back();
    form
}

fn owned_payloads(
    input: &[u8],
    name: &str,
    opts: &FileOptions,
    bufs: &mut Buffers,
    f: &mut Sink<'_>,
) -> Result<InputForm, DecodeError> {
    if input.starts_with(&GZIP_MAGIC) {
        match gunzip_capped(input, opts.limits.max_decoded_bytes, &mut bufs.out) {
            Ok(()) => deliver(&bufs.out, "gzip", &opts.limits, f),
            Err(e) => f("gzip", Err(e)),
        }
        return Ok(InputForm::Gzip);
    }

    let start = if input.starts_with(BOM) { BOM.len() } else { 0 };
    let first = input[start..].iter().position(|b| !b.is_ascii_whitespace());
    match first.map(|i| input[start + i]) {
        None => Ok(InputForm::Plain),
        Some(b'{') if is_json_lines_log(&input[start..]) => {
            plain_owned(input, name, opts, f);
            Ok(InputForm::Plain)
        }
        Some(b'{') => json_input(input, start, &opts.limits, bufs, f),
        Some(b'[') if serde_json::from_slice::<serde::de::IgnoredAny>(&input[start..]).is_ok() => {
            Err(not_recognised(
                "a JSON array; NDJSON is one object per line",
            ))
        }
        Some(_) => {
            binary_check(input)?;
            plain_owned(input, name, opts, f);
            Ok(InputForm::Plain)
        }
    }
}

/// [`for_each_plain`], each chunk copied into an [`OwnedPayload`].
fn plain_owned(input: &[u8], name: &str, opts: &FileOptions, f: &mut Sink<'_>) {
    for_each_plain(input, name, opts, &mut |origin, unit| {
        f(origin, unit.map(OwnedPayload::from_payload));
    });
}

/// Buffers reused by every unit of one input, and by the next input the
/// same thread decodes.
#[derive(Default)]
struct Buffers {
    /// base64-decoded (still gzipped) `data`.
    gz: Vec<u8>,
    /// Inflated payload JSON.
    out: Vec<u8>,
}

thread_local! {
    /// The buffers of the thread's last input. A fresh 1 MB buffer per
    /// payload is fresh pages from the kernel each time, zeroed on first
    /// touch: page faults were 2.5 % of a single-threaded replay (perf).
    static SPARE: std::cell::Cell<Buffers> = std::cell::Cell::new(Buffers::default());
}

/// Largest buffers kept for the next input (both together): a usual
/// payload is at most about 1 MB inflated; a rare huge one is not kept.
const KEEP_AT_MOST: usize = 4 << 20;

impl Buffers {
    /// The spare buffers, emptied (the gzip path appends to `out`).
    fn take() -> Buffers {
        let mut bufs = SPARE.with(std::cell::Cell::take);
        bufs.gz.clear();
        bufs.out.clear();
        bufs
    }

    fn give_back(self) {
        if self.gz.capacity() + self.out.capacity() <= KEEP_AT_MOST {
            SPARE.with(|spare| spare.set(self));
        }
    }
}

/// Which of the JSON forms a document is. Each field is kept raw so that one
/// bad record can be reported alone and errors can point into the input.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    awslogs: Option<&'a RawValue>,
    #[serde(rename = "Records", borrow)]
    kinesis: Option<&'a RawValue>,
    #[serde(borrow)]
    records: Option<&'a RawValue>,
    #[serde(rename = "logEvents", borrow)]
    log_events: Option<&'a RawValue>,
    /// Firehose: the region of the delivery stream (its ARN says it too).
    #[serde(borrow)]
    region: Option<&'a RawValue>,
    #[serde(rename = "deliveryStreamArn", borrow)]
    delivery_stream_arn: Option<&'a RawValue>,
}

/// `awslogs` of a direct CloudWatch Logs → Lambda event.
#[derive(Deserialize)]
struct AwsLogs<'a> {
    /// `Cow`: some encoders escape `/` as `\/`, and base64 has slashes.
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// One element of a Kinesis event's `Records`.
#[derive(Deserialize)]
struct KinesisRecord<'a> {
    #[serde(borrow)]
    kinesis: Option<KinesisData<'a>>,
}

/// `Records[].kinesis`.
#[derive(Deserialize)]
struct KinesisData<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// One element of a Firehose transformation event's `records` (its
/// `recordId` is read apart, by [`firehose_id`]).
#[derive(Deserialize)]
struct FirehoseRecord<'a> {
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
}

/// Where a JSON text sits in the whole input, for relocating error positions.
#[derive(Clone, Copy)]
struct Doc<'i> {
    /// The whole input.
    whole: &'i [u8],
    /// The JSON text (the input after a BOM, or one NDJSON line).
    text: &'i str,
    /// Offset of `text` in `whole`.
    base: usize,
}

impl<'i> Doc<'i> {
    /// A slice of `text` (as serde_json's `RawValue` hands out) with its
    /// offset in `whole`.
    fn sub(&self, part: &'i str) -> Doc<'i> {
        let inner = (part.as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize);
        Doc {
            whole: self.whole,
            text: part,
            base: self.base + inner,
        }
    }

    /// Moves an error's position from `text` to `whole`.
    fn relocate(&self, e: DecodeError) -> DecodeError {
        e.relocate(self.whole, self.text.as_bytes(), self.base)
    }

    /// A JSON error about this document, positioned in `whole`.
    fn json_error(&self, e: &serde_json::Error) -> DecodeError {
        self.relocate(DecodeError::input_json(e))
    }

    /// `InputJson` with `message` at the start of this document.
    fn error_here(&self, message: &str) -> DecodeError {
        let (line, column) = position_of_index(self.whole, self.base + 1);
        DecodeError::InputJson {
            message: message.to_owned(),
            line,
            column,
        }
    }
}

/// Input whose first non-blank byte is `{`.
fn json_input(
    input: &[u8],
    start: usize,
    limits: &Limits,
    bufs: &mut Buffers,
    f: &mut Sink<'_>,
) -> Result<InputForm, DecodeError> {
    let body = &input[start..];
    let whole_doc_error = match super::utf8(body) {
        Ok(text) => {
            let doc = Doc {
                whole: input,
                text,
                base: start,
            };
            if !limits.reference_parser
                && let Some(data) = compact_awslogs_data(text)
            {
                decode_and_deliver(data, "awslogs", limits, bufs, &mut |o, p| {
                    f(o, p.map(|p| p.with_region(None)))
                });
                return Ok(InputForm::AwsLogs);
            }
            match serde_json::from_str::<Probe<'_>>(text) {
                Ok(probe) => return one_document(doc, &probe, "", limits, bufs, f),
                Err(e) => doc.json_error(&e),
            }
        }
        Err(e) => utf8_error("input JSON", body, &e).relocate(input, body, start),
    };
    if looks_like_ndjson(body) {
        ndjson(input, limits, bufs, f)
    } else {
        Err(whole_doc_error)
    }
}

/// The `data` of a Lambda event written as CloudWatch Logs writes it,
/// `{"awslogs":{"data":"…"}}` (trailing blanks allowed), whose text has
/// nothing to unescape: what the probe and [`AwsLogs`] would read, found in
/// one SSE2 pass instead of serde_json's two (the probe skips the string, the
/// second parse reads it): 7.7 M of the 314.8 M instructions of a replay of
/// 8 text batches (callgrind). Any
/// other spelling (spaces, other keys, an escape) is `None`: the probe reads
/// it.
pub(super) fn compact_awslogs_data(text: &str) -> Option<&str> {
    const HEAD: &str = r#"{"awslogs":{"data":""#;
    let data = text
        .strip_prefix(HEAD)?
        .trim_end_matches([' ', '\t', '\n', '\r'])
        .strip_suffix(r#""}}"#)?;
    super::fast::special(data.as_bytes())
        .is_none()
        .then_some(data)
}

/// A JSON-lines application log (API Gateway access logs, structured app
/// logs saved one object per line): NDJSON whose first line is a JSON object
/// with none of the envelope or payload keys. It is read as a plain log, one
/// event per line, so the JSON matchers of the rules see each object.
fn is_json_lines_log(body: &[u8]) -> bool {
    let Some(first) = lines(body).map(<[u8]>::trim_ascii).find(|l| !l.is_empty()) else {
        return false;
    };
    if !looks_like_ndjson(body) {
        return false;
    }
    match serde_json::from_slice::<Probe<'_>>(first) {
        Ok(p) => {
            p.awslogs.is_none()
                && p.kinesis.is_none()
                && p.records.is_none()
                && p.log_events.is_none()
        }
        // A first line a strict parser rejects (one `NaN` or lone surrogate
        // an attacker wrote into a field) must not turn a whole JSON-lines log
        // into a bad input and hide its burst: read it tolerantly, as the
        // matchers do, and ask the same question of what it holds.
        Err(_) => std::str::from_utf8(first)
            .ok()
            .and_then(crate::lenient_json::parse_tolerant)
            .and_then(|v| match v {
                serde_json::Value::Object(m) => Some(
                    !["awslogs", "Records", "records", "logEvents"]
                        .iter()
                        .any(|k| m.contains_key(*k)),
                ),
                _ => None,
            })
            .unwrap_or(false),
    }
}

/// The `\n`-separated lines of `body`, found with memchr: a byte-wise
/// `split` over every 1 MB event was a twentieth of replay's time.
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', body)
        .chain(std::iter::once(body.len()))
        .map(move |end| {
            let line = &body[start.min(end)..end];
            start = end + 1;
            line
        })
}

/// At least two non-empty lines, all starting with `{` (after indentation).
fn looks_like_ndjson(body: &[u8]) -> bool {
    let mut lines = lines(body)
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    let mut count = 0;
    lines.all(|l| {
        count += 1;
        l[0] == b'{'
    }) && count >= 2
}

/// One JSON object per line.
fn ndjson(
    input: &[u8],
    limits: &Limits,
    bufs: &mut Buffers,
    f: &mut Sink<'_>,
) -> Result<InputForm, DecodeError> {
    let mut first = true;
    let mut line_start = 0;
    for (index, raw) in input.split(|&b| b == b'\n').enumerate() {
        let base = line_start;
        line_start += raw.len() + 1;
        let lead = if index == 0 && raw.starts_with(BOM) {
            BOM.len()
        } else {
            0
        };
        // Without `\r` (CRLF files), so a line cut inside a string reads as
        // cut off rather than as a string holding a control character.
        let line = &raw[lead..];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        let origin = format!("line {}", index + 1);
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(e) => {
                let err = utf8_error("input JSON", line, &e).relocate(input, line, base + lead);
                f(&origin, Err(err));
                first = false;
                continue;
            }
        };
        let doc = Doc {
            whole: input,
            text,
            base: base + lead,
        };
        let result = serde_json::from_str::<Probe<'_>>(text)
            .map_err(|e| doc.json_error(&e))
            .and_then(|probe| one_document(doc, &probe, &origin, limits, bufs, f));
        match result {
            Ok(_) => {}
            // See for_each_payload: a JSON log file is one error, not millions.
            Err(DecodeError::NotRecognised { found }) if first => {
                return Err(not_recognised(&format!("{origin}: {found}")));
            }
            Err(e) => f(&origin, Err(e)),
        }
        first = false;
    }
    Ok(InputForm::Ndjson)
}

/// One record of a document to decode: its origin and its `data` (or why it
/// has none).
type Unit<'a> = (String, Option<String>, Result<Cow<'a, str>, DecodeError>);

/// Delivers the units of one JSON document. `prefix` is the NDJSON origin
/// (`line L`) or empty for a whole-input document.
fn one_document<'i>(
    doc: Doc<'i>,
    probe: &Probe<'i>,
    prefix: &str,
    limits: &Limits,
    bufs: &mut Buffers,
    f: &mut Sink<'_>,
) -> Result<InputForm, DecodeError> {
    let origin = |unit: &str| {
        if prefix.is_empty() {
            unit.to_owned()
        } else if unit.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix} {unit}")
        }
    };
    let (form, units): (_, Vec<Unit<'_>>) = match split_event(doc, probe)? {
        Event::AwsLogs(r) => (
            InputForm::AwsLogs,
            vec![(
                origin(if prefix.is_empty() { "awslogs" } else { "" }),
                None,
                r.data,
            )],
        ),
        Event::Kinesis(rs) => (
            InputForm::Kinesis,
            rs.into_iter()
                .map(|r| (origin(&format!("record {}", r.index)), r.region, r.data))
                .collect(),
        ),
        Event::Firehose(rs) => (
            InputForm::Firehose,
            rs.into_iter()
                .map(|r| {
                    let unit = match &r.id {
                        Some(id) => origin(&format!("recordId {id}")),
                        None => origin(&format!("record {}", r.index)),
                    };
                    (unit, r.region, r.data)
                })
                .collect(),
        ),
        Event::Payload => {
            let unit = origin(if prefix.is_empty() { "payload" } else { "" });
            match parse_payload_owned_with(doc.text.as_bytes(), limits.reference_parser) {
                Ok(p) => f(&unit, Ok(p)),
                Err(e) => f(&unit, Err(doc.relocate(e))),
            }
            return Ok(InputForm::Payload);
        }
        Event::Scheduled => {
            return Err(not_recognised(
                "an EventBridge scheduled event: the detector sweeps on it; `logwarden sweep` does the same here",
            ));
        }
    };
    for (unit, region, data) in units {
        match data {
            Ok(data) => decode_and_deliver(&data, &unit, limits, bufs, &mut |o, p| {
                f(o, p.map(|p| p.with_region(region.as_deref())))
            }),
            Err(e) => f(&unit, Err(e)),
        }
    }
    Ok(form)
}

/// What one Lambda event (one JSON document) is, read without decoding any
/// record: the one reading of envelope shapes, shared by the CLI
/// ([`for_each_payload`]) and the Lambda handler, so the same bytes get the
/// same answer from both.
#[derive(Debug)]
pub enum Event<'a> {
    /// `{"awslogs":{"data":…}}`: one record.
    AwsLogs(EventRecord<'a>),
    /// `{"Records":[{"kinesis":{"data":…}}]}`: one record per element.
    Kinesis(Vec<EventRecord<'a>>),
    /// `{"records":[{"recordId":…,"data":…}]}`: one record per element.
    Firehose(Vec<EventRecord<'a>>),
    /// A decoded subscription payload: the document itself
    /// ([`decode_payload`] reads it).
    Payload,
    /// An EventBridge scheduled event (`detail-type` `Scheduled Event`): the
    /// detector's sweep, not log data.
    Scheduled,
}

/// One record of an [`Event`], its `data` not decoded yet ([`decode_record`]).
#[derive(Debug)]
pub struct EventRecord<'a> {
    /// 0-based position in the event's records (0 for `awslogs`).
    pub index: usize,
    /// What the event source calls the record: Kinesis `kinesis.sequenceNumber`
    /// (else `eventID`), Firehose `recordId`; `None` for `awslogs`, or when the
    /// record has none that is a string.
    pub id: Option<Cow<'a, str>>,
    /// The record's `data` (base64 text), or why the record has none: a
    /// missing field, a wrong type, a duplicate key (ambiguous, so rejected
    /// rather than taking the first or the last), with its position.
    pub data: Result<Cow<'a, str>, DecodeError>,
    /// The AWS region the record comes from: Kinesis `awsRegion` (else the
    /// region of `eventSourceARN`), Firehose `region` (else the region of
    /// `deliveryStreamArn`); `None` for `awslogs` or when absent or not a
    /// region code ([`super::region_code`]).
    pub region: Option<String>,
}

/// Reads one Lambda event, as the detector receives it: a JSON object with
/// `awslogs`, `Records` (Kinesis), `records` (Firehose) or `logEvents` (a
/// decoded payload), taken in that order, or a scheduled event.
///
/// A record of the wrong shape is not an error of the event: it comes back
/// as an [`EventRecord`] whose `data` is the error, as the CLI reports it.
///
/// # Errors
/// The event as a whole is not one of those: not a JSON object, a duplicate
/// top-level key, `Records`/`records` not an array, a `Records` array of
/// another service (S3, SNS, SQS), or an object with none of the keys.
pub fn read_event(text: &str) -> Result<Event<'_>, DecodeError> {
    let doc = Doc {
        whole: text.as_bytes(),
        text,
        base: 0,
    };
    if !text.trim_start().starts_with('{') {
        let what = match text.trim_start().bytes().next() {
            Some(b'[') => "a JSON array",
            Some(b'"') => "a JSON string",
            None => "nothing",
            _ => "a JSON value that is not an object",
        };
        return Err(not_recognised(what));
    }
    let probe = serde_json::from_str::<Probe<'_>>(text).map_err(|e| doc.json_error(&e))?;
    split_event(doc, &probe)
}

/// Decodes one record's `data` (base64 → capped gunzip → payload), exactly
/// as the CLI does for the same record.
///
/// # Errors
/// As [`super::decode_data`] and [`super::parse_payload`].
pub fn decode_record(data: &str, limits: &Limits) -> Result<OwnedPayload, DecodeError> {
    let mut bufs = Buffers::default();
    decode_data_into(data, limits, &mut bufs.gz, &mut bufs.out)?;
    parse_payload_owned_with(&bufs.out, limits.reference_parser)
}

/// Reads an [`Event::Payload`] document (the whole event text).
///
/// # Errors
/// As [`super::parse_payload`].
pub fn decode_payload(text: &str, limits: &Limits) -> Result<OwnedPayload, DecodeError> {
    parse_payload_owned_with(text.as_bytes(), limits.reference_parser)
}

/// The ids of an envelope record, read apart from its `data` and leniently
/// (raw values, checked one by one), so that a record whose `data` is bad
/// can still be answered for by its id.
#[derive(Deserialize)]
struct RecordIds<'a> {
    #[serde(rename = "recordId", borrow)]
    record_id: Option<&'a RawValue>,
    #[serde(rename = "eventID", borrow)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    kinesis: Option<&'a RawValue>,
    #[serde(rename = "awsRegion", borrow)]
    aws_region: Option<&'a RawValue>,
    #[serde(rename = "eventSourceARN", borrow)]
    event_source_arn: Option<&'a RawValue>,
}

/// `Records[].kinesis`, for its sequence number only.
#[derive(Deserialize)]
struct KinesisIds<'a> {
    #[serde(rename = "sequenceNumber", borrow)]
    sequence_number: Option<&'a RawValue>,
}

/// The string a raw JSON value holds, if it is a string.
fn string_of(raw: Option<&RawValue>) -> Option<Cow<'static, str>> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
        .map(Cow::Owned)
}

/// Kinesis: `kinesis.sequenceNumber`, else `eventID`.
fn kinesis_id(raw: &RawValue) -> Option<Cow<'static, str>> {
    let ids = serde_json::from_str::<RecordIds<'_>>(raw.get()).ok()?;
    ids.kinesis
        .and_then(|k| serde_json::from_str::<KinesisIds<'_>>(k.get()).ok())
        .and_then(|k| string_of(k.sequence_number))
        .or_else(|| string_of(ids.event_id))
}

/// Kinesis: `awsRegion`, else the region of `eventSourceARN`.
fn kinesis_region(raw: &RawValue) -> Option<String> {
    let ids = serde_json::from_str::<RecordIds<'_>>(raw.get()).ok()?;
    region_of(ids.aws_region, ids.event_source_arn)
}

/// A region field, else the region part of an ARN
/// (`arn:aws:kinesis:REGION:ACCOUNT:…`), when it is a region code.
fn region_of(region: Option<&RawValue>, arn: Option<&RawValue>) -> Option<String> {
    let code = |r: &str| super::region_code(r).map(str::to_string);
    string_of(region)
        .and_then(|r| code(&r))
        .or_else(|| string_of(arn).and_then(|a| a.split(':').nth(3).and_then(code)))
}

/// Firehose: `recordId`.
fn firehose_id(raw: &RawValue) -> Option<Cow<'static, str>> {
    let ids = serde_json::from_str::<RecordIds<'_>>(raw.get()).ok()?;
    string_of(ids.record_id)
}

/// `detail-type` of an EventBridge event.
#[derive(Deserialize)]
struct EventBridge<'a> {
    #[serde(rename = "detail-type", borrow)]
    detail_type: Option<Cow<'a, str>>,
}

/// The [`Event`] a probed document is (see [`read_event`]).
fn split_event<'i>(doc: Doc<'i>, probe: &Probe<'i>) -> Result<Event<'i>, DecodeError> {
    if let Some(raw) = probe.awslogs {
        let here = doc.sub(raw.get());
        let data = serde_json::from_str::<AwsLogs<'_>>(raw.get())
            .map(|a| a.data)
            .map_err(|e| here.json_error(&e));
        return Ok(Event::AwsLogs(EventRecord {
            index: 0,
            id: None,
            data,
            region: None,
        }));
    }

    if let Some(raw) = probe.kinesis {
        let records = records_of(doc, raw, "Records")?;
        let parsed: Vec<_> = records
            .iter()
            .map(|r| serde_json::from_str::<KinesisRecord<'_>>(r.get()))
            .collect();
        let any_kinesis = parsed
            .iter()
            .any(|r| !matches!(r, Ok(KinesisRecord { kinesis: None })));
        if !records.is_empty() && !any_kinesis {
            return Err(not_recognised(
                "a Records event without kinesis data (S3, SNS, SQS…?)",
            ));
        }
        let records = records
            .iter()
            .zip(parsed)
            .enumerate()
            .map(|(index, (raw, rec))| {
                let here = doc.sub(raw.get());
                let data = match rec {
                    Ok(KinesisRecord { kinesis: Some(k) }) => Ok(k.data),
                    Ok(KinesisRecord { kinesis: None }) => {
                        Err(here.error_here("missing field `kinesis`"))
                    }
                    Err(e) => Err(here.json_error(&e)),
                };
                EventRecord {
                    index,
                    id: kinesis_id(raw),
                    data,
                    region: kinesis_region(raw),
                }
            })
            .collect();
        return Ok(Event::Kinesis(records));
    }

    if let Some(raw) = probe.records {
        let records = records_of(doc, raw, "records")?;
        let region = region_of(probe.region, probe.delivery_stream_arn);
        let parsed: Vec<_> = records
            .iter()
            .map(|r| serde_json::from_str::<FirehoseRecord<'_>>(r.get()))
            .collect();
        let any_data = parsed
            .iter()
            .any(|r| !matches!(r, Ok(FirehoseRecord { data: None })));
        if !records.is_empty() && !any_data {
            return Err(not_recognised("a records array without data"));
        }
        let records = records
            .iter()
            .zip(parsed)
            .enumerate()
            .map(|(index, (raw, rec))| {
                let here = doc.sub(raw.get());
                let data = match rec {
                    Ok(FirehoseRecord { data: Some(data) }) => Ok(data),
                    Ok(FirehoseRecord { data: None }) => {
                        Err(here.error_here("missing field `data`"))
                    }
                    Err(e) => Err(here.json_error(&e)),
                };
                EventRecord {
                    index,
                    id: firehose_id(raw),
                    data,
                    region: region.clone(),
                }
            })
            .collect();
        return Ok(Event::Firehose(records));
    }

    if probe.log_events.is_some() {
        return Ok(Event::Payload);
    }

    match serde_json::from_str::<EventBridge<'_>>(doc.text) {
        Ok(EventBridge {
            detail_type: Some(t),
        }) if t == "Scheduled Event" => Ok(Event::Scheduled),
        _ => Err(not_recognised(&describe_object(doc.text))),
    }
}

/// The elements of a `Records`/`records` array, or an error for the whole
/// input when it is not an array.
fn records_of<'a>(
    doc: Doc<'a>,
    raw: &'a RawValue,
    key: &str,
) -> Result<Vec<&'a RawValue>, DecodeError> {
    serde_json::from_str::<Vec<&RawValue>>(raw.get()).map_err(|e| {
        let mut err = doc.sub(raw.get()).json_error(&e);
        if let DecodeError::InputJson { message, .. } = &mut err {
            *message = format!("{key}: {message}");
        }
        err
    })
}

/// base64 → gunzip → payload → `f`, errors included.
fn decode_and_deliver(
    data: &str,
    origin: &str,
    limits: &Limits,
    bufs: &mut Buffers,
    f: &mut Sink<'_>,
) {
    match decode_data_into(data, limits, &mut bufs.gz, &mut bufs.out) {
        Ok(()) => deliver(&bufs.out, origin, limits, f),
        Err(e) => f(origin, Err(e)),
    }
}

/// Parses a decoded payload and hands it to `f`.
fn deliver(json: &[u8], origin: &str, limits: &Limits, f: &mut Sink<'_>) {
    match parse_payload_owned_with(json, limits.reference_parser) {
        Ok(p) => f(origin, Ok(p)),
        Err(e) => f(origin, Err(e)),
    }
}

fn not_recognised(found: &str) -> DecodeError {
    DecodeError::NotRecognised {
        found: found.to_owned(),
    }
}

/// `a JSON object with keys a, b, c` (the first few), to tell a person what
/// was given instead of an event.
fn describe_object(text: &str) -> String {
    const SHOWN: usize = 6;
    let keys = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
        .map(|m| m.keys().take(SHOWN + 1).cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    if keys.is_empty() {
        return "an empty JSON object".to_owned();
    }
    let more = if keys.len() > SHOWN { ", …" } else { "" };
    let shown: Vec<&str> = keys.iter().take(SHOWN).map(String::as_str).collect();
    format!("a JSON object with keys {}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_error(r: &EventRecord<'_>) -> String {
        match &r.data {
            Ok(d) => panic!("expected an error, got data {d}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_duplicate_data_key_is_a_bad_record_named_with_its_position() {
        let Ok(Event::AwsLogs(r)) = read_event(r#"{"awslogs":{"data":"QQ==","data":"Qg=="}}"#)
        else {
            panic!("not an awslogs event");
        };
        assert_eq!(
            data_error(&r),
            "input JSON: duplicate field `data` at line 1 column 32"
        );
    }

    #[test]
    fn records_keep_their_ids_when_their_data_is_bad() {
        let ev = r#"{"Records":[
            {"kinesis":{"data":"QQ==","sequenceNumber":"1"},"eventID":"e1"},
            {"kinesis":{"data":5,"sequenceNumber":"2"}},
            {"kinesis":{"data":"QQ==","data":"QQ=="},"eventID":"e3"},
            {"kinesis":{"data":"QQ==","sequenceNumber":4}}]}"#;
        let Ok(Event::Kinesis(rs)) = read_event(ev) else {
            panic!("not a Kinesis event");
        };
        let ids: Vec<_> = rs.iter().map(|r| r.id.as_deref()).collect();
        assert_eq!(ids, [Some("1"), Some("2"), Some("e3"), None]);
        assert!(data_error(&rs[1]).contains("expected a string"));
        assert!(data_error(&rs[2]).contains("duplicate field `data`"));

        let ev = r#"{"records":[{"recordId":"a","data":null},{"data":"QQ=="}]}"#;
        let Ok(Event::Firehose(rs)) = read_event(ev) else {
            panic!("not a Firehose event");
        };
        assert_eq!(rs[0].id.as_deref(), Some("a"));
        assert!(data_error(&rs[0]).contains("missing field `data`"));
        assert_eq!((rs[1].id.as_deref(), rs[1].index), (None, 1));
    }

    #[test]
    fn an_event_that_is_none_of_ours_is_an_error_of_the_whole_event() {
        for (ev, want) in [
            (r#"[{"awslogs":{}}]"#, "a JSON array"),
            (r#""awslogs""#, "a JSON string"),
            (
                r#"{"awslogs":{},"awslogs":{}}"#,
                "duplicate field `awslogs`",
            ),
            (r#"{"Records":[{"s3":{}}]}"#, "without kinesis data"),
            (r#"{"hello":1}"#, "a JSON object with keys hello"),
        ] {
            let e = read_event(ev).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(want), "{ev}: {e}");
        }
        assert!(matches!(
            read_event(r#"{"detail-type":"Scheduled Event","source":"aws.events"}"#),
            Ok(Event::Scheduled)
        ));
        assert!(matches!(
            read_event(r#"{"logEvents":[]}"#),
            Ok(Event::Payload)
        ));
    }
}
