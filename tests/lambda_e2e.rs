//! End to end: the built `logwarden-detector` binary runs as Lambda runs it,
//! against a minimal Lambda Runtime API stand-in on 127.0.0.1, is invoked with
//! a real awslogs event, and the alert arrives in an SQS queue subscribed to
//! the SNS topic in moto. Skipped when `MOTO_ENDPOINT` is not set.

#[path = "support/runtime_api.rs"]
mod runtime_api;
mod support;

use std::time::Duration;

use runtime_api::{Outcome, RuntimeApi, lambda_env};
use serde_json::{Value, json};
use support::*;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn the_detector_binary_publishes_an_alert_that_reaches_sqs() {
    let Some(ep) = moto("the_detector_binary_publishes_an_alert_that_reaches_sqs") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-e2e"), None).await;
    let p = payload(
        "/aws/lambda/report-builder",
        "2026/11/22/[$LATEST]e2e",
        &[
            (
                1_795_341_600_000,
                "START RequestId: e2e-1 Version: $LATEST\n",
            ),
            (
                1_795_341_603_000,
                "2026-11-22T10:00:03.000Z e2e-1 Task timed out after 3.00 seconds\n",
            ),
            (1_795_341_603_001, "END RequestId: e2e-1\n"),
        ],
    );
    let mut api = RuntimeApi::start(
        vec![json!({"awslogs": {"data": b64gz(&p)}})],
        Duration::from_secs(30),
    )
    .await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_logwarden-detector"))
        .envs(lambda_env(api.addr))
        .env("LOGWARDEN_TOPIC_ARN", &t.topic_arn)
        .env("AWS_ENDPOINT_URL", &ep)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("LOGWARDEN_STATE_TABLE")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let outcome = api.next_outcome(Duration::from_secs(60)).await;
    child.kill().await.unwrap();
    match outcome {
        Some(Outcome::Response(v)) => assert_eq!(v, Value::Null),
        Some(Outcome::Error(e)) => panic!("the detector reported an error: {e}"),
        other => panic!("no response from the detector: {other:?}"),
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert!(
        out.contains("\"AlertsRaised\":1"),
        "EMF line missing: {out}"
    );
    let got = t.drain().await;
    assert_eq!(got.len(), 1, "{got:?}");
    let a: Value = serde_json::from_str(got[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(a["rule"], "invocation-timeout");
    assert_eq!(a["function"], "report-builder");
    assert_eq!(a["request_ids"], json!(["e2e-1"]));
}

#[tokio::test]
async fn a_bad_topic_setting_stops_the_detector_with_one_clear_line() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_logwarden-detector"))
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("LOGWARDEN_TOPIC_ARN", "my-topic")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("LOGWARDEN_TOPIC_ARN: `my-topic` is not an SNS topic ARN"),
        "{err}"
    );
}
