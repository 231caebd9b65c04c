//! The detector Lambda's handler, called directly with `LambdaEvent::new`.

use std::io::Write;
use std::sync::Arc;

use base64::Engine as _;
use lambda_runtime::{Context, LambdaEvent};
use logwarden::engine::{Engine, EngineConfig};
use logwarden::handler::{Delivery, DetectorService};
use logwarden::ingest::Limits;
use logwarden::rules::RuleSet;
use logwarden::state::MemoryStore;
use logwarden::time::FixedClock;
use serde_json::{Value, json};

fn b64gz(payload: &Value) -> String {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(payload.to_string().as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(enc.finish().unwrap())
}

fn payload(group: &str, stream: &str, events: &[(i64, &str)]) -> Value {
    json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group, "logStream": stream,
        "subscriptionFilters": ["f"], "policyLevel": "ACCOUNT_LEVEL_POLICY",
        "logEvents": events.iter().enumerate().map(|(i, (t, m))| json!({"id": i, "timestamp": t, "message": m})).collect::<Vec<_>>()
    })
}

const T: i64 = 1_795_341_600_000;

fn service(now: i64) -> DetectorService<MemoryStore> {
    let engine = Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        MemoryStore::new(),
        EngineConfig::default(),
    );
    DetectorService::new(
        engine,
        Limits::default(),
        "logwarden-detector".into(),
        Box::new(FixedClock(now)),
        Delivery::Log,
    )
}

async fn call(
    svc: &DetectorService<MemoryStore>,
    ev: Value,
) -> (Result<Value, String>, Vec<Value>) {
    let mut out = Vec::new();
    let r = svc
        .call(LambdaEvent::new(ev, Context::default()), &mut out)
        .await;
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (r.map_err(|e| e.to_string()), lines)
}

fn alerts(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l.get("rule").is_some()).collect()
}

fn oom_payload() -> Value {
    payload(
        "/aws/lambda/pdf",
        "s1",
        &[(
            T,
            "REPORT RequestId: r1\tDuration: 9.00 ms\tBilled Duration: 9 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\tStatus: error\tError Type: Runtime.OutOfMemory\n",
        )],
    )
}

#[tokio::test]
async fn awslogs_event_raises_alert_lines_and_metrics() {
    let svc = service(T);
    let (r, lines) = call(&svc, json!({"awslogs": {"data": b64gz(&oom_payload())}})).await;
    assert_eq!(r.unwrap(), Value::Null);
    let a = alerts(&lines);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["rule"], "out-of-memory");
    assert_eq!(a[0]["function"], "pdf");
    let emf = lines.last().unwrap();
    assert_eq!(emf["AlertsRaised"], 1);
    assert_eq!(emf["Batches"], 1);
    assert_eq!(
        emf["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "logwarden"
    );
    // The same batch again (a Lambda retry): no second alert.
    let (_, lines) = call(&svc, json!({"awslogs": {"data": b64gz(&oom_payload())}})).await;
    assert!(alerts(&lines).is_empty());
}

#[tokio::test]
async fn malformed_awslogs_is_counted_and_skipped_not_retried() {
    let svc = service(T);
    let (r, lines) = call(&svc, json!({"awslogs": {"data": "not base64!"}})).await;
    assert_eq!(r.unwrap(), Value::Null);
    assert_eq!(lines.last().unwrap()["DecodeFailures"], 1);
}

#[tokio::test]
async fn kinesis_reports_only_the_bad_record_as_failed() {
    let svc = service(T);
    let control = json!({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
        "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": T, "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]});
    let rec = |seq: &str, data: String| json!({"kinesis": {"data": data, "sequenceNumber": seq, "partitionKey": "p"}, "eventID": format!("shardId-0:{seq}")});
    let ev = json!({"Records": [
        rec("1", b64gz(&oom_payload())),
        rec("2", "H4sI-broken".into()),
        rec("3", b64gz(&control)),
    ]});
    let (r, lines) = call(&svc, ev).await;
    assert_eq!(
        r.unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "2"}]})
    );
    assert_eq!(alerts(&lines).len(), 1);
    let emf = lines.last().unwrap();
    assert_eq!(emf["DecodeFailures"], 1);
    assert_eq!(emf["ControlMessages"], 1);
}

#[tokio::test]
async fn firehose_echoes_every_record_id_with_its_result() {
    let svc = service(T);
    let control =
        json!({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logEvents": []});
    let good = b64gz(&oom_payload());
    let ev = json!({"invocationId": "i", "records": [
        {"recordId": "a", "data": good},
        {"recordId": "b", "data": "%%%"},
        {"recordId": "c", "data": b64gz(&control)},
    ]});
    let (r, lines) = call(&svc, ev).await;
    let r = r.unwrap();
    let results: Vec<(&str, &str)> = r["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["recordId"].as_str().unwrap(),
                x["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [("a", "Ok"), ("b", "ProcessingFailed"), ("c", "Dropped")]
    );
    assert_eq!(r["records"][0]["data"], good);
    assert_eq!(alerts(&lines).len(), 1);
}

#[tokio::test]
async fn scheduled_event_sweeps_with_the_clock() {
    // START at T in a stream that then goes quiet; the sweep at T + 16 min finds it.
    let svc = service(T + 16 * 60_000);
    let p = payload(
        "/aws/lambda/upload",
        "s",
        &[(T, "START RequestId: lost-1 Version: $LATEST\n")],
    );
    let (_, lines) = call(&svc, json!({"awslogs": {"data": b64gz(&p)}})).await;
    assert!(
        alerts(&lines).is_empty(),
        "still running at the end of the batch"
    );
    let sched = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-22T10:16:00Z", "region": "us-east-1", "resources": [], "detail": {}});
    let (r, lines) = call(&svc, sched).await;
    assert_eq!(r.unwrap(), json!({"swept": true}));
    let a = alerts(&lines);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["rule"], "missing-end");
    assert_eq!(a[0]["request_ids"], json!(["lost-1"]));
}

#[tokio::test]
async fn an_unknown_event_is_an_error_that_says_what_was_expected() {
    let svc = service(T);
    let (r, _) = call(&svc, json!({"hello": "world"})).await;
    assert!(r.unwrap_err().contains("expected a CloudWatch Logs (awslogs), Kinesis (Records), Firehose (records), subscription payload (logEvents) or scheduled event; found a JSON object with keys hello"));
}

#[tokio::test]
async fn an_unknown_event_is_the_named_diagnostic_logwarden_unknown_event() {
    let svc = service(T);
    let mut out = Vec::new();
    let e = svc
        .call(
            LambdaEvent::new(json!({"hello": "world"}), Context::default()),
            &mut out,
        )
        .await
        .unwrap_err();
    let d = lambda_runtime::Diagnostic::from(e);
    assert_eq!(d.error_type, "Logwarden.UnknownEvent");
    assert!(d.error_message.starts_with("unrecognised event: "), "{d:?}");
}

// ------------------------------------------------------------------
// One envelope parser: the CLI and the handler answer the same bytes alike
// ------------------------------------------------------------------

/// What one side made of an event: alerts (rule, log group), and the
/// messages of the units it rejected, in order.
#[derive(Debug, PartialEq)]
struct Answer {
    alerts: std::collections::BTreeSet<(String, String)>,
    rejected: Vec<String>,
}

/// The CLI's answer: `logwarden replay --output json` over the bytes saved
/// as a file. A whole-input error is one rejected unit.
fn cli_answer(bytes: &str) -> Answer {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("event.json");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args(["replay", "--output", "json"])
        .arg(&path)
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let prefix = format!("logwarden: {}: ", path.display());
    let rejected: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        // `origin: message`, or the message alone for the whole input.
        .map(|l| {
            ["awslogs: ", "payload: "]
                .iter()
                .find_map(|o| l.strip_prefix(o))
                .or_else(|| {
                    l.strip_prefix("record")
                        .and_then(|r| r.split_once(": "))
                        .map(|(_, m)| m)
                })
                .map_or_else(|| found(l), found)
        })
        .collect();
    assert_eq!(
        out.status.code(),
        Some(if rejected.is_empty() { 0 } else { 1 }),
        "{stderr}"
    );
    Answer {
        alerts: stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|a| {
                (
                    a["rule"].as_str().unwrap().into(),
                    a["log_group"].as_str().unwrap().into(),
                )
            })
            .collect(),
        rejected,
    }
}

/// For an event neither side recognises, what each says it found: the CLI
/// lists every input form it reads (`… or a plain log (FOUND)`), the handler
/// the events it handles (`…; found FOUND`).
fn found(message: &str) -> String {
    if let Some(i) = message.find("a plain log (") {
        let rest = &message[i + "a plain log (".len()..];
        return rest.strip_suffix(')').unwrap_or(rest).to_string();
    }
    match message.split_once("; found ") {
        Some((_, f)) => f.to_string(),
        None => message.to_string(),
    }
}

/// A log writer the test reads back.
#[derive(Clone, Default)]
struct Log(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The handler's answer for the same bytes, as Lambda delivers them (raw
/// text), with the response it gave. A failed invocation is one rejected
/// unit (its message after `unrecognised event: `).
async fn handler_answer(bytes: &str) -> (Answer, Result<Value, String>) {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let svc = service(T);
    let raw = serde_json::value::RawValue::from_string(bytes.to_owned()).unwrap();
    let mut out = Vec::new();
    let r = svc
        .call(LambdaEvent::new(raw, Context::default()), &mut out)
        .await
        .map_err(|e| e.to_string());
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let mut rejected: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once(" error=").map(|(_, m)| m))
        // The message is the last field of the line.
        .map(|m| m.split(" record=").next().unwrap_or(m).to_string())
        .collect();
    if let Err(e) = &r {
        rejected.push(found(e.strip_prefix("unrecognised event: ").unwrap_or(e)));
    }
    if let Some(emf) = lines.last().filter(|l| l.get("_aws").is_some()) {
        let failures = emf["DecodeFailures"].as_u64().unwrap();
        assert_eq!(failures as usize, rejected.len(), "{text}");
    }
    let alerts = alerts(&lines)
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().into(),
                a["log_group"].as_str().unwrap().into(),
            )
        })
        .collect();
    (Answer { alerts, rejected }, r)
}

/// A good record's `data`: an out-of-memory REPORT in log group `group`.
fn good(group: &str) -> String {
    b64gz(&payload(
        group,
        "s1",
        &[(
            T,
            "REPORT RequestId: r1\tDuration: 9.00 ms\tBilled Duration: 9 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\tStatus: error\tError Type: Runtime.OutOfMemory\n",
        )],
    ))
}

/// The rule the good records raise.
fn oom(group: &str) -> (String, String) {
    ("out-of-memory".to_string(), group.to_string())
}

#[tokio::test]
async fn duplicate_data_keys_are_rejected_alike_by_the_cli_and_the_handler() {
    // Two `data` keys: ambiguous (serde_json's `Value` would keep the last,
    // the CLI's reading rejects it), so both reject the record, name it and
    // keep the others.
    let (a, b) = (good("/aws/lambda/first"), good("/aws/lambda/second"));
    let k = |seq: &str, data: &str| {
        format!(
            r#"{{"kinesis":{{"data":"{data}","sequenceNumber":"{seq}","partitionKey":"p"}},"eventID":"shardId-0:{seq}"}}"#
        )
    };
    let k_dup = format!(
        r#"{{"kinesis":{{"data":"{a}","data":"{b}","sequenceNumber":"2","partitionKey":"p"}},"eventID":"shardId-0:2"}}"#
    );
    let awslogs = format!(r#"{{"awslogs":{{"data":"{a}","data":"{b}"}}}}"#);
    let kinesis = format!(
        r#"{{"Records":[{},{k_dup},{}]}}"#,
        k("1", &good("/aws/lambda/k1")),
        k("3", &good("/aws/lambda/k3"))
    );
    let firehose = format!(
        r#"{{"invocationId":"i","records":[{{"recordId":"a","data":"{}"}},{{"recordId":"b","data":"{a}","data":"{b}"}},{{"recordId":"c","data":"{}"}}]}}"#,
        good("/aws/lambda/f1"),
        good("/aws/lambda/f3")
    );

    let (got, r) = handler_answer(&awslogs).await;
    assert_eq!(r.unwrap(), Value::Null);
    assert!(got.alerts.is_empty(), "{got:?}");
    assert_eq!(got.rejected.len(), 1, "{got:?}");
    assert!(
        got.rejected[0].contains("duplicate field `data`"),
        "{got:?}"
    );
    assert_eq!(got, cli_answer(&awslogs));

    let (got, r) = handler_answer(&kinesis).await;
    assert_eq!(
        r.unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "2"}]})
    );
    assert_eq!(
        got.alerts,
        [oom("/aws/lambda/k1"), oom("/aws/lambda/k3")].into()
    );
    assert!(
        got.rejected[0].contains("duplicate field `data`"),
        "{got:?}"
    );
    assert_eq!(got, cli_answer(&kinesis));

    let (got, r) = handler_answer(&firehose).await;
    let results: Vec<(String, String)> = r.unwrap()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["recordId"].as_str().unwrap().into(),
                x["result"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [("a", "Ok"), ("b", "ProcessingFailed"), ("c", "Ok")]
            .map(|(i, r)| (i.to_string(), r.to_string()))
    );
    assert_eq!(
        got.alerts,
        [oom("/aws/lambda/f1"), oom("/aws/lambda/f3")].into()
    );
    assert!(
        got.rejected[0].contains("duplicate field `data`"),
        "{got:?}"
    );
    assert_eq!(got, cli_answer(&firehose));
}

#[tokio::test]
async fn other_envelope_shapes_get_the_same_answer_from_the_cli_and_the_handler() {
    let g = good("/aws/lambda/g");
    // (event, units rejected, alerts raised)
    let cases = [
        // Good events of every form, a decoded payload included.
        (format!(r#"{{"awslogs":{{"data":"{g}"}}}}"#), 0, 1),
        (
            format!(r#"{{"Records":[{{"kinesis":{{"data":"{g}","sequenceNumber":"1"}}}}]}}"#),
            0,
            1,
        ),
        (
            format!(r#"{{"records":[{{"recordId":"a","data":"{g}"}}]}}"#),
            0,
            1,
        ),
        (
            payload(
                "/aws/lambda/p",
                "s",
                &[(
                    T,
                    "2026-11-22T10:00:00.000Z r1 Task timed out after 3.00 seconds\n",
                )],
            )
            .to_string(),
            0,
            1,
        ),
        // Records of the wrong shape.
        (r#"{"awslogs":{"data":12345}}"#.to_string(), 1, 0),
        (r#"{"awslogs":{}}"#.to_string(), 1, 0),
        (
            format!(
                r#"{{"Records":[{{"kinesis":{{"data":"{g}","sequenceNumber":"1"}}}},{{"eventID":"x"}}]}}"#
            ),
            1,
            1,
        ),
        (
            format!(
                r#"{{"records":[{{"recordId":"a","data":"{g}"}},{{"recordId":"b","data":null}}]}}"#
            ),
            1,
            1,
        ),
        // Data that does not decode.
        (r#"{"awslogs":{"data":"not base64!"}}"#.to_string(), 1, 0),
        // Events that are not one of ours, as a whole.
        (
            format!(r#"{{"awslogs":{{"data":"{g}"}},"awslogs":{{"data":"{g}"}}}}"#),
            1,
            0,
        ),
        (
            r#"{"Records":[{"eventSource":"aws:s3","s3":{}}]}"#.to_string(),
            1,
            0,
        ),
        (r#"{"Records":{"kinesis":{}}}"#.to_string(), 1, 0),
    ];
    for (bytes, rejected, alerts) in &cases {
        let (got, _) = handler_answer(bytes).await;
        assert_eq!(
            (got.rejected.len(), got.alerts.len()),
            (*rejected, *alerts),
            "{bytes}: {got:?}"
        );
        assert_eq!(got, cli_answer(bytes), "{bytes}");
    }
}
