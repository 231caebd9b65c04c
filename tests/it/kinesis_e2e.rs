//! The scale path end to end in moto: `put_log_events` → subscription filter →
//! Kinesis (real gzip payloads, moto's integer event ids) → the detector's
//! Kinesis handler with DynamoDB state → SNS → an SQS queue. Skipped when
//! `MOTO_ENDPOINT` is not set.
//!
//! The stream sits behind a CloudWatch Logs destination, as in the central
//! account of an organisation. moto keeps destinations and their policies but
//! does not deliver through them (its `put_subscription_filter` takes a
//! stream, a function or a log group, not a destination ARN), so the
//! subscription writes to the stream itself, and the detector runs as the
//! central account's: the log group's account (moto's) is a member named by
//! the accounts map.

use crate::support;

use std::sync::Arc;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use base64::Engine as _;
use logwarden::alert::Alert;
use logwarden::engine::{Engine, PlaceSettings};
use logwarden::handler::{Delivery, handle};
use logwarden::ingest::Limits;
use logwarden::rules::RuleSet;
use logwarden::sinks::sns::SnsSink;
use logwarden::state::dynamodb::DynamoStore;
use logwarden::time::FixedClock;
use serde_json::json;
use support::*;

#[tokio::test]
async fn log_events_through_kinesis_become_one_alert_in_sqs() {
    let Some(ep) = moto("log_events_through_kinesis_become_one_alert_in_sqs") else {
        return;
    };
    let conf = aws(&ep).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let kinesis = aws_sdk_kinesis::Client::new(&conf);
    let name = unique("lw-kin");
    let group = format!("/aws/lambda/{name}");

    kinesis
        .create_stream()
        .stream_name(&name)
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let stream_arn = kinesis
        .describe_stream()
        .stream_name(&name)
        .send()
        .await
        .unwrap()
        .stream_description()
        .unwrap()
        .stream_arn()
        .to_string();
    let destination = logs
        .put_destination()
        .destination_name(&name)
        .target_arn(&stream_arn)
        .role_arn("arn:aws:iam::123456789012:role/cwl-to-kinesis")
        .send()
        .await
        .unwrap()
        .destination()
        .unwrap()
        .clone();
    let destination_arn = destination.arn().unwrap().to_string();
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*",
        "Action": ["logs:PutSubscriptionFilter", "logs:PutAccountPolicy"],
        "Resource": destination_arn,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-exampleorgid"}}}]});
    logs.put_destination_policy()
        .destination_name(&name)
        .access_policy(policy.to_string())
        .send()
        .await
        .unwrap();
    let listed = logs
        .describe_destinations()
        .destination_name_prefix(&name)
        .send()
        .await
        .unwrap();
    let d = &listed.destinations()[0];
    assert_eq!(d.target_arn(), Some(stream_arn.as_str()));
    assert!(d.access_policy().unwrap().contains("aws:PrincipalOrgID"));
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("s1")
        .send()
        .await
        .unwrap();
    logs.put_subscription_filter()
        .log_group_name(&group)
        .filter_name("to-kinesis")
        .filter_pattern("")
        .destination_arn(&stream_arn)
        .role_arn("arn:aws:iam::123456789012:role/cwl-to-kinesis")
        .send()
        .await
        .unwrap();
    // Recent event times: CloudWatch Logs (and moto) refuse events older than 14 days.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let events: Vec<InputLogEvent> = (0..12)
        .map(|i| {
            InputLogEvent::builder()
                .timestamp(now - 60_000 + i * 1_000)
                .message(format!(
                    "sshd[7]: Failed password for root from 192.0.2.77 port {} ssh2",
                    4000 + i
                ))
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("s1")
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();

    // Read the stream as the event source mapping would.
    let shard = kinesis
        .list_shards()
        .stream_name(&name)
        .send()
        .await
        .unwrap()
        .shards()[0]
        .shard_id()
        .to_string();
    let iter = kinesis
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id(&shard)
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_string();
    let records = kinesis
        .get_records()
        .shard_iterator(iter)
        .send()
        .await
        .unwrap();
    assert!(
        !records.records().is_empty(),
        "moto delivered nothing to the stream"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut lambda_records: Vec<serde_json::Value> = records
        .records()
        .iter()
        .map(|r| {
            assert_eq!(&r.data().as_ref()[..2], &[0x1f, 0x8b], "real gzip payloads");
            json!({"kinesis": {"data": b64.encode(r.data().as_ref()), "sequenceNumber": r.sequence_number(), "partitionKey": r.partition_key()},
                   "eventSource": "aws:kinesis", "eventID": format!("{shard}:{}", r.sequence_number()),
                   "awsRegion": "us-east-1", "eventSourceARN": stream_arn})
        })
        .collect();
    lambda_records.push(json!({"kinesis": {"data": b64.encode(b"not gzip at all"), "sequenceNumber": "bad-1"}, "eventSource": "aws:kinesis"}));
    let event = json!({ "Records": lambda_records });

    let table = unique("lw-kin-state");
    DynamoStore::create_table(&aws_sdk_dynamodb::Client::new(&conf), &table)
        .await
        .unwrap();
    let mut engine = Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), &table),
        PlaceSettings {
            region: "us-east-1",
            home_region: Some("us-east-1"),
            home_account: Some("111111111111"),
            accounts: Some((
                r#"accounts: {"123456789012": {name: payments-prod, team: payments}}"#,
                "LOGWARDEN_ACCOUNTS",
            )),
            ..PlaceSettings::default()
        }
        .engine_config()
        .unwrap(),
    );
    let t = topic_with_queue(&conf, &unique("lw-kin-topic"), None).await;
    let delivery = Delivery::Sns(SnsSink::new(
        aws_sdk_sns::Client::new(&conf),
        t.topic_arn.clone(),
        "us-east-1".into(),
    ));
    let h = handle(
        &mut engine,
        &event,
        &Limits::default(),
        &FixedClock(now),
        &delivery,
    )
    .await
    .unwrap();
    assert_eq!(
        h.response,
        json!({"batchItemFailures": [{"itemIdentifier": "bad-1"}]}),
        "only the bad record is retried"
    );
    assert_eq!(h.counters.decode_failures, 1);
    let got = t.drain().await;
    assert_eq!(got.len(), 1, "{got:?}");
    let a: Alert = serde_json::from_str(got[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(a.rule, "failed-auth-burst");
    assert_eq!(a.log_group, group);
    assert_eq!(a.key["source_ip"], "192.0.2.77");
    assert_eq!(a.count, 10, "the alert is the burst as it opened");
    assert_eq!(a.account.as_deref(), Some("123456789012"));
    assert_eq!(a.account_name.as_deref(), Some("payments-prod"));
    assert_eq!(a.region.as_deref(), Some("us-east-1"));
    let attrs = &got[0]["MessageAttributes"];
    assert_eq!(attrs["team"]["Value"], "payments", "{attrs}");
    assert_eq!(attrs["account"]["Value"], "123456789012", "{attrs}");
    // The event source mapping retries the batch: nothing new goes out.
    let h = handle(
        &mut engine,
        &event,
        &Limits::default(),
        &FixedClock(now),
        &delivery,
    )
    .await
    .unwrap();
    assert!(h.alerts.is_empty());
    assert!(t.drain().await.is_empty());
}
