//! Delivery through the real AWS SDK to SNS in the moto emulator, read back
//! from SQS queues subscribed to the topic. Skipped (with a message) when
//! `MOTO_ENDPOINT` is not set; `.ci/run` always sets it.

use crate::support;

use std::sync::Arc;

use logwarden::alert::{Alert, email};
use logwarden::engine::{Engine, EngineConfig};
use logwarden::handler::{Delivery, handle};
use logwarden::ingest::Limits;
use logwarden::rules::RuleSet;
use logwarden::sinks::sns::SnsSink;
use logwarden::state::MemoryStore;
use logwarden::time::FixedClock;
use serde_json::{Value, json};
use support::*;

fn sink(conf: &aws_config::SdkConfig, topic: &str) -> SnsSink {
    SnsSink::new(
        aws_sdk_sns::Client::new(conf),
        topic.to_string(),
        "us-east-1".into(),
    )
}

#[tokio::test]
async fn one_alert_arrives_with_envelope_subject_attributes_and_alert_json() {
    let Some(ep) = moto("one_alert_arrives_with_envelope_subject_attributes_and_alert_json") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-one"), None).await;
    let alert = golden_alerts()
        .into_iter()
        .find(|a| a.rule == "failed-auth-burst")
        .unwrap();
    let ids = sink(&conf, &t.topic_arn)
        .publish(std::slice::from_ref(&alert))
        .await
        .unwrap();
    assert_eq!(ids, std::slice::from_ref(&alert.id));
    let got = t.drain().await;
    assert_eq!(got.len(), 1, "{got:?}");
    let n = &got[0];
    assert_eq!(n["Type"], "Notification");
    assert_eq!(n["TopicArn"], t.topic_arn.as_str());
    assert_eq!(n["Subject"], email::subject(&alert).as_str());
    assert!(n["Subject"].as_str().unwrap().chars().count() <= 99);
    let back: Alert = serde_json::from_str(n["Message"].as_str().unwrap()).unwrap();
    assert_eq!(back, alert, "the sqs body is the alert JSON");
    let attrs = &n["MessageAttributes"];
    assert_eq!(
        attrs["severity"],
        json!({"Type": "String", "Value": "high"})
    );
    assert_eq!(attrs["rule"]["Value"], "failed-auth-burst");
    assert_eq!(attrs["kind"]["Value"], "threshold");
    assert_eq!(attrs["log_group"]["Value"], "/aws/lambda/auth-api");
    assert_eq!(attrs["function"]["Value"], "auth-api");
    assert_eq!(attrs["status"]["Value"], "firing");

    // moto records what was published per topic: the email body is plain text.
    let data: Value = moto_state(&ep).await;
    let topics = data["sns"]["Topic"].as_array().unwrap();
    let topic = topics
        .iter()
        .find(|tp| tp.to_string().contains(&t.topic_arn))
        .unwrap();
    let sent = topic["sent_notifications"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    let structure: Value = serde_json::from_str(sent[0][1].as_str().unwrap()).unwrap();
    let body = structure["email"].as_str().unwrap();
    assert!(
        body.starts_with("[HIGH] Burst of failed authentications (203.0.113.7) in auth-api\n"),
        "{body}"
    );
    assert!(
        serde_json::from_str::<Value>(body).is_err(),
        "email is not JSON"
    );
    assert!(body.contains("WHO    source_ip 203.0.113.7"));
}

#[tokio::test]
async fn a_resolution_arrives_with_status_resolved_and_its_own_subject() {
    let Some(ep) = moto("a_resolution_arrives_with_status_resolved_and_its_own_subject") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-res"), None).await;
    let mut alert = golden_alerts()
        .into_iter()
        .find(|a| a.rule == "failed-auth-burst")
        .unwrap();
    alert.status = logwarden::alert::AlertStatus::Resolved;
    alert.resolved_at = Some("2026-11-22T10:12:00.000Z".into());
    sink(&conf, &t.topic_arn)
        .publish(std::slice::from_ref(&alert))
        .await
        .unwrap();
    let got = t.drain().await;
    assert_eq!(got.len(), 1, "{got:?}");
    let n = &got[0];
    assert_eq!(n["MessageAttributes"]["status"]["Value"], "resolved");
    let subject = n["Subject"].as_str().unwrap();
    assert!(
        subject.starts_with("[RESOLVED] Burst of failed"),
        "{subject}"
    );
    let back: Alert = serde_json::from_str(n["Message"].as_str().unwrap()).unwrap();
    assert_eq!(back, alert, "same id, final count, resolved_at");
}

/// Records the number of entries of each `PublishBatch` call the client makes
/// (once per call, not per retry attempt).
#[derive(Debug, Clone, Default)]
struct BatchSizes(Arc<std::sync::Mutex<Vec<usize>>>);

impl aws_sdk_sns::config::Intercept for BatchSizes {
    fn name(&self) -> &'static str {
        "BatchSizes"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_sns::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_sdk_sns::config::ConfigBag,
    ) -> Result<(), aws_sdk_sns::error::BoxError> {
        if let Some(batch) = context
            .input()
            .downcast_ref::<aws_sdk_sns::operation::publish_batch::PublishBatchInput>()
        {
            let entries = batch.publish_batch_request_entries().len();
            self.0.lock().unwrap().push(entries);
        }
        Ok(())
    }
}

#[tokio::test]
async fn many_alerts_go_out_in_batches_of_ten_exactly_once() {
    let Some(ep) = moto("many_alerts_go_out_in_batches_of_ten_exactly_once") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-many"), None).await;
    let mut alerts = golden_alerts();
    assert_eq!(alerts.len(), 24);
    alerts.truncate(12);
    let sizes = BatchSizes::default();
    let client = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&conf)
            .interceptor(sizes.clone())
            .build(),
    );
    let ids = SnsSink::new(client, t.topic_arn.clone(), "us-east-1".into())
        .publish(&alerts)
        .await
        .unwrap();
    assert_eq!(ids.len(), 12);
    // SNS takes at most 10 entries per PublishBatch: 12 alerts are two calls.
    assert_eq!(
        *sizes.0.lock().unwrap(),
        [10, 2],
        "PublishBatch entries per call"
    );
    let got = t.drain().await;
    let mut got_ids: Vec<String> = got
        .iter()
        .map(|n| {
            serde_json::from_str::<Alert>(n["Message"].as_str().unwrap())
                .unwrap()
                .id
        })
        .collect();
    got_ids.sort();
    let mut want: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();
    want.sort();
    assert_eq!(got_ids, want);
}

#[tokio::test]
async fn a_severity_filter_policy_lets_only_high_alerts_through() {
    let Some(ep) = moto("a_severity_filter_policy_lets_only_high_alerts_through") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(
        &conf,
        &unique("lw-filter"),
        Some(r#"{"severity":["high","critical"]}"#),
    )
    .await;
    let alerts = golden_alerts();
    sink(&conf, &t.topic_arn).publish(&alerts).await.unwrap();
    let got = t.drain().await;
    let want = alerts
        .iter()
        .filter(|a| a.severity == "high" || a.severity == "critical")
        .count();
    assert!(want > 0 && want < alerts.len());
    assert_eq!(got.len(), want);
    assert!(got.iter().all(|n| {
        ["high", "critical"].contains(
            &n["MessageAttributes"]["severity"]["Value"]
                .as_str()
                .unwrap_or(""),
        )
    }));
}

#[tokio::test]
async fn a_failed_publish_is_retried_with_the_batch_and_nothing_is_sent_twice() {
    let Some(ep) = moto("a_failed_publish_is_retried_with_the_batch_and_nothing_is_sent_twice")
    else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-retry"), None).await;
    let mut engine = Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        MemoryStore::new(),
        EngineConfig::default(),
    );
    let p = payload(
        "/aws/lambda/pdf",
        "s1",
        &[(
            1_795_341_600_000,
            "REPORT RequestId: r1\tDuration: 9.00 ms\tBilled Duration: 9 ms\tMemory Size: 128 MB\tMax Memory Used: 100 MB\tStatus: error\tError Type: Runtime.OutOfMemory\n",
        )],
    );
    let event = json!({"awslogs": {"data": b64gz(&p)}});
    let clock = FixedClock(0);
    let limits = Limits::default();
    // First attempt: the topic does not exist, so the publish fails and the invocation errors.
    let mut bad = sink(&conf, "arn:aws:sns:us-east-1:123456789012:no-such-topic");
    bad.entry_attempts = 1;
    let r = handle(&mut engine, &event, &limits, &clock, &Delivery::Sns(bad)).await;
    let err = r
        .expect_err("publish to a missing topic must fail the invocation")
        .to_string();
    assert!(err.contains("no-such-topic"), "{err}");
    // Lambda retries the same event: the pending alert goes out now, once.
    let good = Delivery::Sns(sink(&conf, &t.topic_arn));
    let h = handle(&mut engine, &event, &limits, &clock, &good)
        .await
        .unwrap();
    assert_eq!(h.alerts.len(), 1);
    // A further retry (or redelivery) sends nothing.
    let h = handle(&mut engine, &event, &limits, &clock, &good)
        .await
        .unwrap();
    assert!(h.alerts.is_empty());
    let got = t.drain().await;
    assert_eq!(got.len(), 1);
    let a: Alert = serde_json::from_str(got[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(a.rule, "out-of-memory");
}

#[tokio::test]
async fn the_cli_publishes_with_sink_sns() {
    let Some(ep) = moto("the_cli_publishes_with_sink_sns") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-cli"), None).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args([
            "replay",
            "--output",
            "json",
            "--sink",
            "sns",
            "--sns-topic-arn",
            &t.topic_arn,
            "fixtures/failures",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_ENDPOINT_URL", &ep)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(printed, 4);
    assert_eq!(t.drain().await.len(), 4);
}

#[test]
fn sink_sns_without_a_topic_is_a_usage_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args(["replay", "--sink", "sns", "fixtures/failures"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("LOGWARDEN_TOPIC_ARN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sink sns needs --sns-topic-arn"));
}
