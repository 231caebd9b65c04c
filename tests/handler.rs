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
    assert!(r.unwrap_err().contains("expected a CloudWatch Logs (awslogs), Kinesis (Records), Firehose (records) or scheduled event"));
}
