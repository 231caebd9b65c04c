//! Decoded subscription payload → [`Payload`], borrowing from the JSON text.
//!
//! The schema (reference/lambda-log-formats.md §2) is read tolerantly: unknown
//! keys (`policyLevel`) are ignored, `owner`, `logGroup`, `logStream` and
//! `subscriptionFilters` may be missing (control messages omit some), and an
//! event `id` may be a string or an integer (moto sends integers).
//! `messageType`, `logEvents` and each event's `id`, `timestamp` and `message`
//! are required: without them there is nothing to detect on.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::error::{DecodeError, position_of_index};
use super::{LogEvent, MessageType, OwnedPayload, Payload};

/// Parse a decoded subscription payload, borrowing from `json`.
///
/// Strings without JSON escapes are borrowed; the others (typically messages
/// ending in `\n`) are unescaped into owned strings. Errors give the line and
/// column in `json`, and name the event (`logEvents[i]`, 0-based) when one
/// event is at fault. `json` must be UTF-8 ([`DecodeError::InvalidUtf8`]
/// otherwise) and hold exactly one JSON object.
///
/// # Errors
/// [`DecodeError::InvalidUtf8`], or [`DecodeError::PayloadJson`] for a syntax
/// error, a missing required field, a wrong type or an unknown `messageType`.
pub fn parse_payload(json: &[u8]) -> Result<Payload<'_>, DecodeError> {
    // Validating first gives a clear error (serde_json only says "invalid
    // unicode code point") and lets serde_json take the faster &str path.
    let text = super::utf8(json).map_err(|e| utf8_error("payload JSON", json, &e))?;
    parse_payload_reference(text)
}

/// Parse a decoded subscription payload into an [`OwnedPayload`]: the fast
/// scanner for the usual wire shape, else [`parse_payload`] (same result, and
/// the same errors).
///
/// # Errors
/// As [`parse_payload`].
pub fn parse_payload_owned(json: &[u8]) -> Result<OwnedPayload, DecodeError> {
    parse_payload_owned_with(json, false)
}

/// [`parse_payload_owned`], or only the reference parser when `reference`.
pub(crate) fn parse_payload_owned_with(
    json: &[u8],
    reference: bool,
) -> Result<OwnedPayload, DecodeError> {
    let text = super::utf8(json).map_err(|e| utf8_error("payload JSON", json, &e))?;
    if !reference && let Some(p) = super::fast::parse(text) {
        return Ok(p);
    }
    parse_payload_reference(text).map(|p| OwnedPayload::from_payload(&p))
}

/// The reference parser: serde_json over the whole schema, tolerant of what
/// the fast path declines (unknown keys, integer ids) and the source of every
/// payload error. Public so tests can compare the two paths.
#[doc(hidden)]
pub fn parse_payload_reference(text: &str) -> Result<Payload<'_>, DecodeError> {
    let raw: RawPayload<'_> =
        serde_json::from_str(text).map_err(|e| DecodeError::payload_json(&e))?;
    Ok(Payload {
        region: None,
        message_type: raw.message_type.0,
        owner: raw.owner,
        log_group: raw.log_group,
        log_stream: raw.log_stream,
        subscription_filters: raw.subscription_filters.into_iter().map(|s| s.0).collect(),
        log_events: raw.log_events.0,
    })
}

/// [`DecodeError::InvalidUtf8`] for `bytes`, pointing at the first bad byte.
pub(crate) fn utf8_error(what: &'static str, bytes: &[u8], e: &std::str::Utf8Error) -> DecodeError {
    let offset = e.valid_up_to();
    let (line, column) = position_of_index(bytes, offset + 1);
    DecodeError::InvalidUtf8 {
        what,
        line,
        column,
        offset,
    }
}

/// The payload as it is on the wire.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPayload<'a> {
    message_type: MessageTypeField,
    #[serde(default, borrow)]
    owner: Cow<'a, str>,
    #[serde(default, borrow)]
    log_group: Cow<'a, str>,
    #[serde(default, borrow)]
    log_stream: Cow<'a, str>,
    #[serde(default, borrow)]
    subscription_filters: Vec<BorrowedStr<'a>>,
    #[serde(borrow)]
    log_events: Events<'a>,
}

/// A string that borrows when it can (plain `Cow` in a `Vec` would always copy).
#[derive(Deserialize)]
struct BorrowedStr<'a>(#[serde(borrow)] Cow<'a, str>);

/// `messageType`: only the two values AWS sends; anything else is named in
/// the error rather than guessed at.
struct MessageTypeField(MessageType);

impl<'de> Deserialize<'de> for MessageTypeField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MessageTypeField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("messageType DATA_MESSAGE or CONTROL_MESSAGE")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "DATA_MESSAGE" => Ok(MessageTypeField(MessageType::Data)),
                    "CONTROL_MESSAGE" => Ok(MessageTypeField(MessageType::Control)),
                    other => Err(E::custom(format_args!(
                        "unknown messageType {other:?} (expected DATA_MESSAGE or CONTROL_MESSAGE)"
                    ))),
                }
            }
        }
        d.deserialize_str(V)
    }
}

/// `logEvents`, deserialized one element at a time so that an error names the
/// event it is about.
struct Events<'a>(Vec<LogEvent<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Events<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Events<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of log events")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // The hint comes from the input: bound it.
                let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                loop {
                    let index = events.len();
                    match seq.next_element::<RawEvent<'de>>() {
                        Ok(Some(e)) => events.push(LogEvent {
                            id: e.id.0,
                            timestamp: e.timestamp,
                            message: e.message,
                        }),
                        Ok(None) => return Ok(Events(events)),
                        // serde_json re-reads the " at line L column C" that
                        // `err` ends with, so the position is kept, not doubled.
                        Err(err) => {
                            return Err(de::Error::custom(format_args!(
                                "logEvents[{index}]: {err}"
                            )));
                        }
                    }
                }
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// One log event as it is on the wire.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    id: EventId<'a>,
    #[serde(deserialize_with = "timestamp_ms")]
    timestamp: i64,
    #[serde(borrow)]
    message: Cow<'a, str>,
}

/// An event id: a string (AWS: ~56 decimal digits) or an integer (moto).
struct EventId<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for EventId<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = EventId<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event id (string or integer)")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(EventId(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(EventId(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(EventId(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(EventId(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(EventId(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `timestamp`: an integer number of milliseconds, at most
/// [`super::MAX_ABS_TIMESTAMP_MS`] either side of the epoch. A string or a
/// float is an error rather than a guess: the detectors run on event time.
fn timestamp_ms<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(
                "an integer timestamp: milliseconds since the epoch, \
                 no further from it than the end of year 9999",
            )
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            if v.unsigned_abs() <= super::MAX_ABS_TIMESTAMP_MS.unsigned_abs() {
                Ok(v)
            } else {
                Err(E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            match i64::try_from(v) {
                Ok(v) => self.visit_i64(v),
                Err(_) => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
            }
        }
    }
    d.deserialize_i64(V)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::testutil::LDG_PAYLOAD;
    use super::*;

    #[test]
    fn ldg_sample_borrows_what_it_can() {
        let p = parse_payload(LDG_PAYLOAD.as_bytes()).unwrap();
        assert_eq!(p.message_type, MessageType::Data);
        assert_eq!(p.owner, "123456789012");
        assert_eq!(p.log_group, "/aws/lambda/echo-nodejs");
        assert!(matches!(p.log_group, Cow::Borrowed(_)));
        assert!(matches!(p.subscription_filters[0], Cow::Borrowed(_)));
        assert_eq!(p.subscription_filters, ["LambdaStream_cloudwatchlogs-node"]);
        assert_eq!(p.log_events.len(), 1);
        let e = &p.log_events[0];
        assert!(matches!(e.id, Cow::Borrowed(_)));
        assert_eq!(e.timestamp, 1_552_518_348_220);
        // Escapes (\t, \n) force an owned, unescaped copy.
        assert!(matches!(e.message, Cow::Owned(_)));
        assert!(e.message.starts_with("REPORT RequestId: 6234bffe"));
        assert!(e.message.ends_with("Max Memory Used: 72 MB\t\n"));
    }

    #[test]
    fn unknown_fields_integer_ids_and_missing_optionals() {
        let json = br#"{"messageType":"DATA_MESSAGE","policyLevel":"ACCOUNT_LEVEL_POLICY",
            "logGroup":"g","logStream":"s",
            "logEvents":[{"id":1,"timestamp":1000,"message":"a","extra":true},
                         {"id":"2","timestamp":2000,"message":"b"}]}"#;
        let p = parse_payload(json).unwrap();
        assert_eq!(p.owner, "");
        assert!(p.subscription_filters.is_empty());
        assert_eq!(p.log_events[0].id, "1");
        assert_eq!(p.log_events[1].id, "2");
        assert_eq!(p.log_events[1].timestamp, 2000);
        assert!(matches!(p.log_events[0].message, Cow::Borrowed("a")));
    }

    #[test]
    fn control_message_is_parsed_as_control() {
        // airbnb/streamalert's control message: no logGroup/logStream at all.
        let json = br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logEvents":[{"id":"100","timestamp":1512601480749,"message":"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}"#;
        let p = parse_payload(json).unwrap();
        assert_eq!(p.message_type, MessageType::Control);
        assert_eq!(p.log_group, "");
        assert_eq!(p.log_events.len(), 1);
    }

    #[test]
    fn empty_log_events_is_fine() {
        let p = parse_payload(
            br#"{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[]}"#,
        )
        .unwrap();
        assert!(p.log_events.is_empty());
    }

    #[test]
    fn timestamp_as_string_names_the_event() {
        let json = br#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"a"},{"id":"2","timestamp":"2026-11-22T10:00:00Z","message":"b"}]}"#;
        let err = parse_payload(json).unwrap_err();
        let DecodeError::PayloadJson {
            message,
            line,
            column,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert!(
            message.starts_with("logEvents[1]: invalid type: string"),
            "{message}"
        );
        assert!(message.contains("integer timestamp"), "{message}");
        // Just after the offending value.
        assert_eq!((*line, *column), (1, 126));
        // The position appears once.
        assert_eq!(err.to_string().matches(" at line ").count(), 1, "{err}");
    }

    #[test]
    fn float_and_out_of_range_timestamps_are_errors() {
        for ts in [
            "1.5",
            "18446744073709551615",
            "null",
            "9223372036854775806",
            "-253402300800000",
        ] {
            let json = format!(
                r#"{{"messageType":"DATA_MESSAGE","logEvents":[{{"id":"1","timestamp":{ts},"message":"a"}}]}}"#
            );
            let err = parse_payload(json.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("logEvents[0]"), "{ts}: {err}");
        }
    }

    #[test]
    fn missing_log_events_and_unknown_message_type() {
        let err = parse_payload(br#"{"messageType":"DATA_MESSAGE","owner":"1234"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "payload JSON: missing field `logEvents` at line 1 column 45"
        );
        let err = parse_payload(br#"{"messageType":"DATA","logEvents":[]}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("payload JSON: unknown messageType \"DATA\""),
            "{err}"
        );
        let err = parse_payload(br#"{"logEvents":[]}"#).unwrap_err();
        assert!(
            err.to_string().contains("missing field `messageType`"),
            "{err}"
        );
    }

    #[test]
    fn not_json_and_invalid_utf8() {
        let err = parse_payload(b"hello").unwrap_err();
        assert!(
            err.to_string().starts_with("payload JSON: expected value"),
            "{err}"
        );
        let err =
            parse_payload(b"{\"messageType\":\"DATA_MESSAGE\",\n\"owner\":\"\xff\"}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "payload JSON: invalid UTF-8 at line 2 column 10 (byte 40)"
        );
        let err = parse_payload(b"").unwrap_err();
        assert!(err.to_string().contains("EOF"), "{err}");
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let json = br#"{"messageType":"DATA_MESSAGE","logGroup":"\/aws\/lambda\/x","logEvents":[{"id":"1","timestamp":5,"message":"caf\u00e9 \"q\""}]}"#;
        let p = parse_payload(json).unwrap();
        assert_eq!(p.log_group, "/aws/lambda/x");
        assert_eq!(p.log_events[0].message, "café \"q\"");
    }
}
