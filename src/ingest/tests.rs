//! Tests of [`for_each_payload`] over every input form, fixtures built at test
//! time as base64(gzip(json)).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::testutil::{LDG_PAYLOAD, awslogs_event, b64, data_of, gzip, payload_json};
use super::*;

/// What a payload delivered to the callback looked like.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    message_type: MessageType,
    owner: String,
    log_group: String,
    log_stream: String,
    region: Option<String>,
    /// (id, timestamp, message)
    events: Vec<(String, i64, String)>,
}

type Units = Vec<(String, Result<Seen, DecodeError>)>;

fn run_with(input: &[u8], opts: &FileOptions) -> (Result<InputForm, DecodeError>, Units) {
    let mut units = Vec::new();
    let form = for_each_payload(input, "input.log", opts, &mut |origin, p| {
        let seen = p.map(|p| Seen {
            message_type: p.message_type,
            owner: p.owner.to_string(),
            log_group: p.log_group.to_string(),
            log_stream: p.log_stream.to_string(),
            region: p.region.as_deref().map(str::to_string),
            events: p
                .log_events
                .iter()
                .map(|e| (e.id.to_string(), e.timestamp, e.message.to_string()))
                .collect(),
        });
        units.push((origin.to_owned(), seen));
    });
    (form, units)
}

fn run(input: &[u8]) -> (Result<InputForm, DecodeError>, Units) {
    run_with(input, &FileOptions::default())
}

fn ok(unit: &(String, Result<Seen, DecodeError>)) -> &Seen {
    match &unit.1 {
        Ok(s) => s,
        Err(e) => panic!("{}: {e}", unit.0),
    }
}

fn err(unit: &(String, Result<Seen, DecodeError>)) -> &DecodeError {
    match &unit.1 {
        Ok(s) => panic!("{}: expected an error, got {s:?}", unit.0),
        Err(e) => e,
    }
}

fn messages(seen: &Seen) -> Vec<&str> {
    seen.events.iter().map(|e| e.2.as_str()).collect()
}

#[test]
fn awslogs_event_is_one_payload() {
    let input = awslogs_event(&payload_json("/aws/lambda/checkout", &["a", "b"]));
    let (form, units) = run(input.as_bytes());
    assert_eq!(form, Ok(InputForm::AwsLogs));
    assert_eq!(units.len(), 1);
    assert_eq!(units[0].0, "awslogs");
    let p = ok(&units[0]);
    assert_eq!(p.message_type, MessageType::Data);
    assert_eq!(p.owner, "123456789012");
    assert_eq!(p.log_group, "/aws/lambda/checkout");
    assert_eq!(p.log_stream, "s1");
    assert_eq!(
        p.events,
        [
            ("1000".to_owned(), 1_700_000_000_000, "a".to_owned()),
            ("1001".to_owned(), 1_700_000_000_001, "b".to_owned())
        ]
    );
}

/// The compact spelling CloudWatch Logs writes is read without the probe;
/// every other spelling of the same event (spaces, an escaped `/`, another
/// key) through it, and each gives the same payload. The reference parser
/// never takes the shortcut.
#[test]
fn every_spelling_of_an_awslogs_event_reads_the_same() {
    let json = payload_json("/aws/lambda/checkout", &["a\tb\n", "caf\u{e9}"]);
    let data = data_of(&json);
    assert!(data.contains('/') || data.contains('+'), "{data}");
    let compact = format!(r#"{{"awslogs":{{"data":"{data}"}}}}"#);
    assert_eq!(compact, awslogs_event(&json));
    assert!(super::envelope::compact_awslogs_data(&compact).is_some());
    let (form, expected) = run(compact.as_bytes());
    assert_eq!(form, Ok(InputForm::AwsLogs));
    assert_eq!(expected.len(), 1);
    assert_eq!(messages(ok(&expected[0])), ["a\tb\n", "caf\u{e9}"]);
    let reference = FileOptions {
        limits: Limits {
            reference_parser: true,
            ..Limits::default()
        },
        ..FileOptions::default()
    };
    for spelling in [
        format!("{compact} \n"),
        format!(r#"{{ "awslogs": {{ "data": "{data}" }} }}"#),
        format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, data.replace('/', "\\/")),
        format!(r#"{{"awslogs":{{"data":"{data}","extra":1}}}}"#),
    ] {
        assert_eq!(
            run(spelling.as_bytes()),
            (form.clone(), expected.clone()),
            "{spelling}"
        );
        assert_eq!(
            run_with(spelling.as_bytes(), &reference),
            (form.clone(), expected.clone()),
            "{spelling}"
        );
    }
    // Not taken: what the probe must judge.
    for other in [
        format!(r#"{{"awslogs":{{"data":"{data}"}}}} x"#),
        r#"{"awslogs":{"data":"a"b"}}"#.to_owned(),
        r#"{"awslogs":{"data":"a\u0000b"}}"#.to_owned(),
        "{\"awslogs\":{\"data\":\"a\u{1}b\"}}".to_owned(),
    ] {
        assert!(
            super::envelope::compact_awslogs_data(&other).is_none(),
            "{other}"
        );
    }
}

#[test]
fn ldg_sample_from_the_reference() {
    // The reference quotes the LDG event's base64 only in part, so the event is
    // built from the decoded payload it shows, verbatim.
    let (form, units) = run(awslogs_event(LDG_PAYLOAD).as_bytes());
    assert_eq!(form, Ok(InputForm::AwsLogs));
    let p = ok(&units[0]);
    assert_eq!(p.owner, "123456789012");
    assert_eq!(p.log_group, "/aws/lambda/echo-nodejs");
    assert_eq!(
        p.log_stream,
        "2019/03/13/[$LATEST]94fa867e5374431291a7fc14e2f56ae7"
    );
    assert_eq!(
        p.events,
        [(
            "34622316099697884706540976068822859012661220141643892546".to_owned(),
            1_552_518_348_220,
            "REPORT RequestId: 6234bffe-149a-b642-81ff-2e8e376d8aff\tDuration: 46.84 ms\tBilled Duration: 47 ms \tMemory Size: 192 MB\tMax Memory Used: 72 MB\t\n"
                .to_owned()
        )]
    );
}

#[test]
fn aws_documentation_event_decodes() {
    // The complete `awslogs.data` of the AWS documentation's sample event (the
    // one whose first bytes the reference quotes). Produced by a real gzip,
    // not ours; it decodes to the `testLogGroup` payload, not to the payload
    // the page prints beside it.
    const DATA: &str = "H4sIAAAAAAAAAHWPwQqCQBCGX0Xm7EFtK+smZBEUgXoLCdMhFtKV3akI8d0bLYmibvPPN3wz00CJxmQnTO41whwWQRIctmEcB6sQbFC3CjW3XW8kxpOpP+OC22d1Wml1qZkQGtoMsScxaczKN3plG8zlaHIta5KqWsozoTYw3/djzwhpLwivWFGHGpAFe7DL68JlBUk+l7KSN7tCOEJ4M3/qOI49vMHj+zCKdlFqLaU2ZHV2a4Ct/an0/ivdX8oYc1UVX860fQDQiMdxRQEAAA==";
    let input = format!(r#"{{"awslogs":{{"data":"{DATA}"}}}}"#);
    let (form, units) = run(input.as_bytes());
    assert_eq!(form, Ok(InputForm::AwsLogs));
    let p = ok(&units[0]);
    assert_eq!(p.log_group, "testLogGroup");
    assert_eq!(p.log_stream, "testLogStream");
    assert_eq!(
        messages(p),
        ["[ERROR] First test message", "[ERROR] Second test message"]
    );
    assert_eq!(p.events[0].0, "eventId1");
}

#[test]
fn kinesis_bad_middle_record_does_not_stop_the_others() {
    let good = |g: &str| data_of(&payload_json(g, &["m"]));
    let input = format!(
        r#"{{"Records":[
  {{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"s1","data":"{}"}},"eventSource":"aws:kinesis"}},
  {{"kinesis":{{"data":"not*base64"}},"eventSource":"aws:kinesis"}},
  {{"kinesis":{{"data":"{}"}},"eventSource":"aws:kinesis"}}]}}"#,
        good("g0"),
        good("g2")
    );
    let (form, units) = run(input.as_bytes());
    assert_eq!(form, Ok(InputForm::Kinesis));
    let origins: Vec<_> = units.iter().map(|u| u.0.as_str()).collect();
    assert_eq!(origins, ["record 0", "record 1", "record 2"]);
    assert_eq!(ok(&units[0]).log_group, "g0");
    assert_eq!(
        err(&units[1]).to_string(),
        "base64: invalid byte '*' at offset 3"
    );
    assert_eq!(ok(&units[2]).log_group, "g2");
}

#[test]
fn kinesis_record_without_data_is_one_error() {
    let input = format!(
        "{{\"Records\":[{{\"kinesis\":{{\"data\":\"{}\"}}}},\n  {{\"kinesis\":{{}}}},\n  {{\"eventSource\":\"x\"}}]}}",
        data_of(&payload_json("g", &["m"]))
    );
    let (form, units) = run(input.as_bytes());
    assert_eq!(form, Ok(InputForm::Kinesis));
    assert!(units[0].1.is_ok());
    let e = err(&units[1]);
    assert!(
        matches!(e, DecodeError::InputJson { message, line: 2, .. } if message == "missing field `data`"),
        "{e}"
    );
    assert_eq!(
        err(&units[2]).to_string(),
        "input JSON: missing field `kinesis` at line 3 column 3"
    );
}

#[test]
fn records_of_another_service_are_not_recognised() {
    let (form, units) = run(br#"{"Records":[{"eventSource":"aws:s3","s3":{}}]}"#);
    assert!(
        matches!(&form, Err(DecodeError::NotRecognised { found }) if found.contains("without kinesis")),
        "{form:?}"
    );
    assert!(units.is_empty());
    let (form, _) = run(br#"{"Records":"nope"}"#);
    assert!(
        matches!(&form, Err(DecodeError::InputJson { message, .. }) if message.starts_with("Records: invalid type")),
        "{form:?}"
    );
    // No records at all is a valid, empty Kinesis event.
    assert_eq!(run(br#"{"Records":[]}"#), (Ok(InputForm::Kinesis), vec![]));
}

#[test]
fn firehose_records_are_named_by_record_id() {
    let input = format!(
        r#"{{"invocationId":"invoked123","deliveryStreamArn":"aws:lambda:events","region":"us-west-2",
 "records":[{{"data":"{}","recordId":"49546986683135544286507457936321625675700192471156785154","approximateArrivalTimestamp":1507217624302}},
            {{"data":"{}"}}]}}"#,
        data_of(&payload_json("g1", &["x"])),
        data_of(&payload_json("g2", &["y"]))
    );
    let (form, units) = run(input.as_bytes());
    assert_eq!(form, Ok(InputForm::Firehose));
    assert_eq!(
        units[0].0,
        "recordId 49546986683135544286507457936321625675700192471156785154"
    );
    assert_eq!(ok(&units[0]).log_group, "g1");
    assert_eq!(units[1].0, "record 1");
    assert_eq!(messages(ok(&units[1])), ["y"]);
    // Every record is in the event's region.
    assert_eq!(ok(&units[0]).region.as_deref(), Some("us-west-2"));
    assert_eq!(ok(&units[1]).region.as_deref(), Some("us-west-2"));
}

#[test]
fn kinesis_records_carry_their_region_and_a_hostile_one_is_dropped() {
    let rec = |extra: &str| {
        format!(
            r#"{{"kinesis":{{"data":"{}"}}{extra}}}"#,
            data_of(&payload_json("g", &["x"]))
        )
    };
    let input = format!(
        r#"{{"Records":[{},{},{},{}]}}"#,
        rec(r#","awsRegion":"eu-west-1","eventSourceARN":"arn:aws:kinesis:us-east-1:1:stream/s""#),
        rec(r#","eventSourceARN":"arn:aws:kinesis:ap-southeast-2:1:stream/s""#),
        rec(r#","awsRegion":"evil.example/#x","eventSourceARN":"arn:aws:kinesis:EU:1:stream/s""#),
        rec("")
    );
    let (form, units) = run(input.as_bytes());
    assert_eq!(form, Ok(InputForm::Kinesis));
    let regions: Vec<Option<&str>> = units.iter().map(|u| ok(u).region.as_deref()).collect();
    assert_eq!(
        regions,
        [Some("eu-west-1"), Some("ap-southeast-2"), None, None]
    );
    // A direct subscription and a bare payload name no region.
    let (_, units) = run(awslogs_event(&payload_json("g", &["x"])).as_bytes());
    assert_eq!(ok(&units[0]).region, None);
}

#[test]
fn region_codes_are_words_and_a_number() {
    for ok in [
        "us-east-1",
        "eu-central-2",
        "us-gov-west-1",
        "ap-southeast-4",
        "cn-north-1",
    ] {
        assert_eq!(region_code(ok), Some(ok));
    }
    for bad in [
        "",
        "us",
        "us-east",
        "US-EAST-1",
        "us-east-1/x",
        "us-east-1.evil",
        "u-east-1",
        "us--1",
        "us-east-x",
    ] {
        assert_eq!(region_code(bad), None, "{bad}");
    }
}

#[test]
fn policy_level_and_integer_ids_through_every_envelope() {
    let json = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"policyLevel":"ACCOUNT_LEVEL_POLICY","logEvents":[{"id":7,"timestamp":1,"message":"a"},{"id":8,"timestamp":2,"message":"b"}]}"#;
    for input in [awslogs_event(json), json.to_owned()] {
        let (form, units) = run(input.as_bytes());
        assert!(form.is_ok(), "{form:?}");
        let p = ok(&units[0]);
        let ids: Vec<_> = p.events.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(ids, ["7", "8"]);
    }
    let (form, units) = run(json.as_bytes());
    assert_eq!(form, Ok(InputForm::Payload));
    assert_eq!(units[0].0, "payload");
}

#[test]
fn control_messages_are_passed_on_as_control() {
    let json = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1600110003794,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
    let (form, units) = run(awslogs_event(json).as_bytes());
    assert_eq!(form, Ok(InputForm::AwsLogs));
    let p = ok(&units[0]);
    assert_eq!(p.message_type, MessageType::Control);
    assert_eq!(p.events.len(), 1);
}

#[test]
fn multi_member_gzip_decodes_as_the_concatenation() {
    let json = payload_json("g", &["one", "two"]);
    let (a, b) = json.split_at(json.len() / 2);
    let mut gz = gzip(a.as_bytes());
    gz.extend_from_slice(&gzip(b.as_bytes()));
    let expect = run(json.as_bytes()).1;

    let (form, units) = run(&gz);
    assert_eq!(form, Ok(InputForm::Gzip));
    assert_eq!(units[0].0, "gzip");
    assert_eq!(units[0].1, expect[0].1);

    let input = format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, b64(&gz));
    let (_, units) = run(input.as_bytes());
    assert_eq!(units[0].1, expect[0].1);
}

#[test]
fn gzip_bomb_in_an_event_is_a_cap_error_and_fast() {
    // 64 MiB of zeros in one gzip member (see testutil::zeros_bomb).
    let bomb = super::testutil::zeros_bomb((64 << 20) / 258);
    let input = format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, b64(&bomb));
    let opts = FileOptions {
        limits: Limits {
            max_decoded_bytes: 8 << 20,
            ..Limits::default()
        },
        ..FileOptions::default()
    };
    let start = Instant::now();
    let (form, units) = run_with(input.as_bytes(), &opts);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(form, Ok(InputForm::AwsLogs));
    assert_eq!(*err(&units[0]), DecodeError::TooLarge { cap: 8 << 20 });

    // The same bomb as a raw .gz file.
    let (form, units) = run_with(&bomb, &opts);
    assert_eq!(form, Ok(InputForm::Gzip));
    assert_eq!(*err(&units[0]), DecodeError::TooLarge { cap: 8 << 20 });
}

#[test]
fn truncated_gzip_bad_base64_and_not_json() {
    let gz = gzip(payload_json("g", &["m"]).as_bytes());
    let cut = format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, b64(&gz[..gz.len() / 2]));
    let (form, units) = run(cut.as_bytes());
    assert_eq!(form, Ok(InputForm::AwsLogs));
    assert!(
        err(&units[0])
            .to_string()
            .starts_with("truncated gzip stream: compressed data of member 1"),
        "{}",
        err(&units[0])
    );

    let (_, units) = run(br#"{"awslogs":{"data":"H4sI$$$$"}}"#);
    assert_eq!(
        err(&units[0]).to_string(),
        "base64: invalid byte '$' at offset 4"
    );

    let input = format!(
        r#"{{"awslogs":{{"data":"{}"}}}}"#,
        data_of("hello, not JSON")
    );
    let (_, units) = run(input.as_bytes());
    assert_eq!(
        err(&units[0]).to_string(),
        "payload JSON: expected value at line 1 column 1"
    );

    // Raw .gz input cut short.
    let (form, units) = run(&gz[..gz.len() - 5]);
    assert_eq!(form, Ok(InputForm::Gzip));
    assert!(matches!(
        err(&units[0]),
        DecodeError::GzipTruncated {
            part: GzipPart::Trailer,
            ..
        }
    ));

    // An awslogs object without data.
    let (form, units) = run(br#"{"awslogs":{"type":"x"}}"#);
    assert_eq!(form, Ok(InputForm::AwsLogs));
    assert_eq!(
        err(&units[0]).to_string(),
        "input JSON: missing field `data` at line 1 column 23"
    );
}

#[test]
fn wrong_schema_is_an_error_for_the_whole_input() {
    let (form, units) = run(br#"{"level":"info","msg":"hello","time":"2026-11-22T10:00:00Z"}"#);
    assert_eq!(
        form.unwrap_err().to_string(),
        "not a recognised input: expected an awslogs/Kinesis/Firehose event, a subscription \
         payload, gzip, NDJSON or a plain log (a JSON object with keys level, msg, time)"
    );
    assert!(units.is_empty());
    let (form, _) = run(b"{}");
    assert!(matches!(form, Err(DecodeError::NotRecognised { .. })));
}

#[test]
fn timestamp_as_string_names_the_event() {
    let json = r#"{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[
 {"id":"1","timestamp":1,"message":"a"},
 {"id":"2","timestamp":"1700000000000","message":"b"}]}"#;
    // As a decoded payload file: the position is in the file.
    let (form, units) = run(json.as_bytes());
    assert_eq!(form, Ok(InputForm::Payload));
    let e = err(&units[0]).to_string();
    assert!(
        e.starts_with("payload JSON: logEvents[1]: invalid type: string"),
        "{e}"
    );
    assert!(e.ends_with("at line 3 column 38"), "{e}");
    // Inside an awslogs event: the position is in the decoded payload.
    let (_, units) = run(awslogs_event(json).as_bytes());
    let e = err(&units[0]).to_string();
    assert!(e.contains("logEvents[1]"), "{e}");
}

#[test]
fn empty_log_events_is_a_payload_without_events() {
    let json = r#"{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[]}"#;
    let (form, units) = run(awslogs_event(json).as_bytes());
    assert_eq!(form, Ok(InputForm::AwsLogs));
    assert!(ok(&units[0]).events.is_empty());
}

#[test]
fn raw_gz_payload() {
    let gz = gzip(LDG_PAYLOAD.as_bytes());
    let (form, units) = run(&gz);
    assert_eq!(form, Ok(InputForm::Gzip));
    assert_eq!(ok(&units[0]).log_group, "/aws/lambda/echo-nodejs");
    // gzip of something that is not a payload.
    let (form, units) = run(&gzip(b"plain text\n"));
    assert_eq!(form, Ok(InputForm::Gzip));
    assert!(matches!(err(&units[0]), DecodeError::PayloadJson { .. }));
}

#[test]
fn ndjson_of_mixed_forms_with_one_bad_line() {
    let kinesis = format!(
        r#"{{"Records":[{{"kinesis":{{"data":"{}"}}}},{{"kinesis":{{"data":"{}"}}}}]}}"#,
        data_of(&payload_json("k0", &["k0"])),
        data_of(&payload_json("k1", &["k1"]))
    );
    let firehose = format!(
        r#"{{"records":[{{"recordId":"r1","data":"{}"}}]}}"#,
        data_of(&payload_json("fh", &["fh"]))
    );
    let lines = [
        awslogs_event(&payload_json("aw", &["aw"])),
        kinesis,
        String::new(),
        r#"{"awslogs": {"data": "H4sI"#.to_owned(), // cut off
        firehose,
        payload_json("pl", &["pl"]),
        r#"{"Records":[{"kinesis":{"data":"!!"}}]}"#.to_owned(),
    ];
    let input = lines.join("\r\n") + "\n";
    let (form, units) = run(input.as_bytes());
    assert_eq!(form, Ok(InputForm::Ndjson));
    let got: Vec<(&str, Result<&str, String>)> = units
        .iter()
        .map(|(o, r)| {
            (
                o.as_str(),
                r.as_ref()
                    .map(|p| p.log_group.as_str())
                    .map_err(ToString::to_string),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("line 1", Ok("aw")),
            ("line 2 record 0", Ok("k0")),
            ("line 2 record 1", Ok("k1")),
            (
                "line 4",
                Err("input JSON: EOF while parsing a string at line 4 column 26".to_owned())
            ),
            ("line 5 recordId r1", Ok("fh")),
            ("line 6", Ok("pl")),
            (
                "line 7 record 0",
                Err("base64: invalid byte '!' at offset 0".to_owned())
            ),
        ]
    );
}

#[test]
fn json_lines_application_logs_are_a_plain_log_with_their_times() {
    let input = b"{\"level\":\"info\",\"msg\":\"a\",\"time\":\"2026-11-22T10:00:01Z\"}\n{\"level\":\"info\",\"msg\":\"b\"}\n";
    let (form, units) = run(input);
    assert_eq!(form.unwrap(), InputForm::Plain);
    assert_eq!(units.len(), 1);
    let p = units[0].1.as_ref().unwrap();
    assert_eq!(p.events.len(), 2);
    assert_eq!(p.events[0].1, 1_795_341_601_000);
    assert_eq!(
        p.events[1].1, 1_795_341_601_000,
        "inherits the previous time"
    );
    assert!(p.events[1].2.contains("\"msg\":\"b\""));
    // A single such object is still not a recognised input.
    assert!(run(b"{\"level\":\"info\",\"msg\":\"a\"}\n").0.is_err());
}

#[test]
fn broken_json_is_a_json_error_not_a_plain_log() {
    let (form, units) = run(br#"{"awslogs":{"data":"abc"}"#);
    assert_eq!(
        form.unwrap_err().to_string(),
        "input JSON: EOF while parsing an object at line 1 column 25"
    );
    assert!(units.is_empty());
    // Pretty-printed and broken on line 3 (after a BOM and blank lines).
    let (form, _) = run(b"\xef\xbb\xbf\n{\n  \"awslogs\": {\"data\": \"abc\"},,\n}\n");
    assert_eq!(
        form.unwrap_err().to_string(),
        "input JSON: key must be a string at line 3 column 30"
    );
    // Invalid UTF-8 in a one-document JSON input.
    let (form, _) = run(b"{\"awslogs\":{\"data\":\"\xff\"}}");
    assert_eq!(
        form.unwrap_err().to_string(),
        "input JSON: invalid UTF-8 at line 1 column 21 (byte 20)"
    );
    // A valid document with trailing text on the next line.
    let (form, _) = run(b"{\"awslogs\":{\"data\":\"\"}}\nplain text\n");
    assert_eq!(
        form.unwrap_err().to_string(),
        "input JSON: trailing characters at line 2 column 1"
    );
}

#[test]
fn ndjson_line_with_invalid_utf8_is_reported_alone() {
    let good = payload_json("g", &["m"]);
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(b"{\"x\":\"\xff\"}\n");
    bytes.extend_from_slice(format!("{good}\n").as_bytes());
    let (form, units) = run(&bytes);
    assert_eq!(form, Ok(InputForm::Ndjson));
    assert_eq!(units.len(), 3);
    assert!(units[0].1.is_ok() && units[2].1.is_ok());
    assert_eq!(units[1].0, "line 2");
    assert!(
        matches!(
            err(&units[1]),
            DecodeError::InvalidUtf8 {
                line: 2,
                column: 7,
                ..
            }
        ),
        "{}",
        err(&units[1])
    );
}

#[test]
fn plain_log_through_for_each_payload() {
    let opts = FileOptions {
        log_group: Some("/aws/lambda/auth".to_owned()),
        // 2026-11-23T02:13Z: written after its lines, so Nov 22 is this year's.
        default_timestamp_ms: 1_795_400_000_000,
        ..FileOptions::default()
    };
    let input = b"Nov 22 10:00:01 host sshd[123]: Failed password for root from 203.0.113.7 port 22 ssh2\r\n\
        2026-11-22T10:00:02.500Z\tabc\tERROR\tboom\r\n\
        \r\n\
        caf\xe9\r\n";
    let (form, units) = run_with(input, &opts);
    assert_eq!(form, Ok(InputForm::Plain));
    assert_eq!(units.len(), 1);
    assert_eq!(units[0].0, "lines 1-4");
    let p = ok(&units[0]);
    assert_eq!(p.log_group, "/aws/lambda/auth");
    assert_eq!(p.log_stream, "input.log");
    assert_eq!(p.owner, "");
    let t = 1_795_341_600_000; // 2026-11-22T10:00:00Z
    assert_eq!(
        p.events,
        [
            (
                "1".to_owned(),
                t + 1000,
                "Nov 22 10:00:01 host sshd[123]: Failed password for root from 203.0.113.7 port 22 ssh2"
                    .to_owned()
            ),
            ("2".to_owned(), t + 2500, "2026-11-22T10:00:02.500Z\tabc\tERROR\tboom".to_owned()),
            ("4".to_owned(), t + 2500, "caf\u{fffd}".to_owned()),
        ]
    );
}

#[test]
fn empty_blank_binary_and_array_inputs() {
    assert_eq!(run(b""), (Ok(InputForm::Plain), vec![]));
    assert_eq!(run(b"\n \r\n\t\n"), (Ok(InputForm::Plain), vec![]));

    // One NUL is a character of its line, not binary data.
    let (form, units) = run(b"some text\0more\nnext\n");
    assert_eq!(form, Ok(InputForm::Plain));
    assert_eq!(messages(ok(&units[0])), ["some text\0more", "next"]);
    // All NULs are.
    let (form, units) = run(&[0; 100]);
    assert_eq!(
        form.unwrap_err(),
        DecodeError::NotRecognised {
            found: "binary data: 100% of its 100 bytes are control bytes or invalid UTF-8"
                .to_owned()
        }
    );
    assert!(units.is_empty());

    // Mostly binary without NUL (e.g. another compressor's output).
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
        .collect();
    let (form, _) = run(&noise);
    assert!(
        matches!(&form, Err(DecodeError::NotRecognised { found }) if found.starts_with("binary data")),
        "{form:?}"
    );

    let (form, _) = run(b"[{\"awslogs\":{\"data\":\"\"}}]");
    assert!(
        matches!(&form, Err(DecodeError::NotRecognised { found }) if found.contains("JSON array")),
        "{form:?}"
    );
    // A log line that merely starts with '[' is a plain log.
    let (form, units) = run(b"[INFO] started\n");
    assert_eq!(form, Ok(InputForm::Plain));
    assert_eq!(units.len(), 1);
}

#[test]
fn escaped_slashes_in_data_are_unescaped() {
    let data = data_of(&payload_json("g", &["m"]));
    assert!(data.contains('/') || data.contains('+'));
    let input = format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, data.replace('/', "\\/"));
    let (_, units) = run(input.as_bytes());
    assert_eq!(ok(&units[0]).log_group, "g");
}

#[test]
fn one_megabyte_message_in_a_payload_is_borrowed() {
    let big = "x".repeat(1 << 20);
    let json = payload_json("g", &[&big]);
    let input = awslogs_event(&json);
    let mut n = 0;
    let form = for_each_payload(
        input.as_bytes(),
        "e",
        &FileOptions::default(),
        &mut |_, p| {
            let p = p.unwrap();
            assert_eq!(p.log_events[0].message.len(), 1 << 20);
            // No escapes: borrowed from the decoded buffer, not copied.
            assert!(matches!(p.log_events[0].message, Cow::Borrowed(_)));
            n += 1;
        },
    );
    assert_eq!(form, Ok(InputForm::AwsLogs));
    assert_eq!(n, 1);
}

/// Deterministic xorshift, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Every valid sample, cut short at many points, with bytes flipped, dropped,
/// duplicated and inserted: for_each_payload must never panic.
#[test]
fn mangled_inputs_never_panic() {
    let json = payload_json("g", &["START RequestId: 1 Version: $LATEST", "msg \"q\"\n"]);
    let gz = gzip(json.as_bytes());
    let mut two_members = gz.clone();
    two_members.extend_from_slice(&gzip(b" "));
    let samples: Vec<Vec<u8>> = vec![
        awslogs_event(&json).into_bytes(),
        awslogs_event(LDG_PAYLOAD).into_bytes(),
        format!(
            r#"{{"Records":[{{"kinesis":{{"data":"{}"}}}},{{"kinesis":{{"data":"{}"}}}}]}}"#,
            b64(&gz),
            b64(&two_members)
        )
        .into_bytes(),
        format!(
            r#"{{"records":[{{"recordId":"a","data":"{}"}}]}}"#,
            b64(&gz)
        )
        .into_bytes(),
        json.clone().into_bytes(),
        LDG_PAYLOAD.as_bytes().to_vec(),
        gz.clone(),
        two_members.clone(),
        format!("{}\n{}\n", awslogs_event(&json), json).into_bytes(),
        b"2026-11-22T10:00:01.123Z a\nNov 22 10:00:01 h x\n\xef\xbb\xbfplain\r\n".to_vec(),
    ];
    let opts = FileOptions {
        limits: Limits {
            max_decoded_bytes: 4096,
            ..Limits::default()
        },
        ..FileOptions::default()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0;
    let mut check = |input: &[u8]| {
        let mut calls = 0;
        let _ = for_each_payload(input, "fuzz", &opts, &mut |_, _| calls += 1);
        runs += 1;
    };
    for sample in &samples {
        check(sample);
        // Every truncation of small samples, a spread of them for big ones.
        let step = (sample.len() / 300).max(1);
        for cut in (0..sample.len()).step_by(step) {
            check(&sample[..cut]);
        }
        for _ in 0..300 {
            let mut m = sample.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(m.len());
                match rng.below(5) {
                    0 => {
                        if let Some(b) = m.get_mut(at) {
                            *b ^= 1 << rng.below(8);
                        }
                    }
                    1 => {
                        if at < m.len() {
                            m.remove(at);
                        }
                    }
                    2 => m.insert(at, rng.next() as u8),
                    3 => {
                        let end = (at + rng.below(16)).min(m.len());
                        let dup = m[at..end].to_vec();
                        m.splice(at..at, dup);
                    }
                    _ => {
                        let special = [b'{', b'}', b'"', b'\\', b'\n', 0, 0x1f, 0x8b, 0xff, b'='];
                        if let Some(b) = m.get_mut(at) {
                            *b = special[rng.below(special.len())];
                        }
                    }
                }
            }
            check(&m);
        }
    }
    // Mangled gzip inside valid base64 inside a valid envelope, too.
    for _ in 0..500 {
        let mut g = gz.clone();
        let at = rng.below(g.len());
        g[at] ^= 1 << rng.below(8);
        check(format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, b64(&g)).as_bytes());
    }
    // Nesting deeper than serde_json's recursion limit is an error, not a
    // stack overflow.
    check("{\"a\":[".repeat(50_000).as_bytes());
    check(format!("{}\n{{}}", "{\"Records\":[".repeat(50_000)).as_bytes());
    check("[".repeat(100_000).as_bytes());
    assert!(runs > 3000, "{runs}");
}

/// `utf8` answers what std's `from_utf8` answers, error position included,
/// over text of every kind of character, cut and corrupted at random.
#[test]
fn utf8_agrees_with_std_on_valid_and_invalid_text() {
    let base = "plain ascii line\t{\"k\":\"v\"} é ß € 𝄞 \u{17f}\u{212a} end\n".repeat(9);
    let mut next = crate::testutil::xorshift(0x9e37_79b9_7f4a_7c15);
    let mut invalid = 0;
    for _ in 0..20_000 {
        let mut bytes = base.as_bytes().to_vec();
        let len = (next() as usize) % (bytes.len() + 1);
        bytes.truncate(len);
        for _ in 0..(next() % 3) {
            if !bytes.is_empty() {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
        }
        let ours = utf8(&bytes);
        let std = std::str::from_utf8(&bytes);
        invalid += usize::from(std.is_err());
        assert_eq!(ours, std, "{bytes:?}");
    }
    assert!(invalid > 1_000, "{invalid}");
}

/// A thread keeps its payload buffers for its next input: whatever the
/// input before it (an event, a raw gzip, a bad one), each input decodes
/// as it does alone.
#[test]
fn inputs_decoded_one_after_another_on_a_thread_do_not_see_each_other() {
    let first = payload_json("first", &["a longer message than the next one", "two"]);
    let second = payload_json("s", &["x"]);
    let inputs: Vec<Vec<u8>> = vec![
        awslogs_event(&first).into_bytes(),
        gzip(second.as_bytes()),
        gzip(first.as_bytes()),
        awslogs_event(&second).into_bytes(),
        b"{\"awslogs\":{\"data\":\"not base64!\"}}".to_vec(),
        gzip(second.as_bytes()),
    ];
    let alone: Vec<_> = inputs
        .iter()
        .map(|i| std::thread::scope(|s| s.spawn(|| run(i)).join().unwrap()))
        .collect();
    for (input, expect) in inputs.iter().zip(&alone) {
        assert_eq!(&run(input), expect);
    }
}
