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
    let mut bufs = Buffers::default();
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
        Some(b'{') => json_input(input, start, &opts.limits, &mut bufs, f),
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

/// Buffers reused by every unit of one input.
#[derive(Default)]
struct Buffers {
    /// base64-decoded (still gzipped) `data`.
    gz: Vec<u8>,
    /// Inflated payload JSON.
    out: Vec<u8>,
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

/// One element of a Firehose transformation event's `records`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FirehoseRecord<'a> {
    #[serde(borrow)]
    record_id: Option<Cow<'a, str>>,
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
    let whole_doc_error = match std::str::from_utf8(body) {
        Ok(text) => {
            let doc = Doc {
                whole: input,
                text,
                base: start,
            };
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

/// A JSON-lines application log (API Gateway access logs, structured app
/// logs saved one object per line): NDJSON whose first line is a JSON object
/// with none of the envelope or payload keys. It is read as a plain log, one
/// event per line, so the JSON matchers of the rules see each object.
fn is_json_lines_log(body: &[u8]) -> bool {
    let Some(first) = lines(body).map(<[u8]>::trim_ascii).find(|l| !l.is_empty()) else {
        return false;
    };
    looks_like_ndjson(body)
        && matches!(
            serde_json::from_slice::<Probe<'_>>(first),
            Ok(Probe {
                awslogs: None,
                kinesis: None,
                records: None,
                log_events: None
            })
        )
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

    if let Some(raw) = probe.awslogs {
        let here = doc.sub(raw.get());
        let unit = origin(if prefix.is_empty() { "awslogs" } else { "" });
        match serde_json::from_str::<AwsLogs<'_>>(raw.get()) {
            Ok(a) => decode_and_deliver(&a.data, &unit, limits, bufs, f),
            Err(e) => f(&unit, Err(here.json_error(&e))),
        }
        return Ok(InputForm::AwsLogs);
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
        for (i, (raw, rec)) in records.iter().zip(parsed).enumerate() {
            let unit = origin(&format!("record {i}"));
            let here = doc.sub(raw.get());
            match rec {
                Ok(KinesisRecord {
                    kinesis: Some(k), ..
                }) => decode_and_deliver(&k.data, &unit, limits, bufs, f),
                Ok(KinesisRecord { kinesis: None }) => {
                    f(&unit, Err(here.error_here("missing field `kinesis`")));
                }
                Err(e) => f(&unit, Err(here.json_error(&e))),
            }
        }
        return Ok(InputForm::Kinesis);
    }

    if let Some(raw) = probe.records {
        let records = records_of(doc, raw, "records")?;
        let parsed: Vec<_> = records
            .iter()
            .map(|r| serde_json::from_str::<FirehoseRecord<'_>>(r.get()))
            .collect();
        let any_data = parsed
            .iter()
            .any(|r| !matches!(r, Ok(FirehoseRecord { data: None, .. })));
        if !records.is_empty() && !any_data {
            return Err(not_recognised("a records array without data"));
        }
        for (i, (raw, rec)) in records.iter().zip(parsed).enumerate() {
            let here = doc.sub(raw.get());
            match rec {
                Ok(FirehoseRecord { record_id, data }) => {
                    let unit = match &record_id {
                        Some(id) => origin(&format!("recordId {id}")),
                        None => origin(&format!("record {i}")),
                    };
                    match data {
                        Some(data) => decode_and_deliver(&data, &unit, limits, bufs, f),
                        None => f(&unit, Err(here.error_here("missing field `data`"))),
                    }
                }
                Err(e) => f(&origin(&format!("record {i}")), Err(here.json_error(&e))),
            }
        }
        return Ok(InputForm::Firehose);
    }

    if probe.log_events.is_some() {
        let unit = origin(if prefix.is_empty() { "payload" } else { "" });
        match parse_payload_owned_with(doc.text.as_bytes(), limits.reference_parser) {
            Ok(p) => f(&unit, Ok(p)),
            Err(e) => f(&unit, Err(doc.relocate(e))),
        }
        return Ok(InputForm::Payload);
    }

    Err(not_recognised(&describe_object(doc.text)))
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
