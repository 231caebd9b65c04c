//! Faults between logwarden and the services it depends on: SNS 5xx and
//! throttling, DynamoDB throttling, Slack 429 and 5xx, and the detector
//! process killed in the middle of a batch. A fault-injecting proxy
//! (`support/fault_proxy.rs`, real HTTP on 127.0.0.1) sits between logwarden
//! and the moto emulator or the Slack stand-in; alerts are counted where
//! subscribers see them: an SQS queue subscribed to the topic, read directly
//! from moto, and the Slack stand-in's record of what was posted.
//!
//! The AWS tests skip when `MOTO_ENDPOINT` is not set, the Slack tests when
//! `WEBHOOK_SINK` is not set (`.ci/run` starts both).

use crate::support;
use crate::support::fault_proxy;
use crate::support::runtime_api;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fault_proxy::*;
use logwarden::engine::{Engine, EngineConfig};
use logwarden::handler::{
    AWS_MAX_ATTEMPTS, Delivery, Handled, HandlerError, aws_retry_config, aws_timeout_config, handle,
};
use logwarden::ingest::{self, Limits};
use logwarden::rules::RuleSet;
use logwarden::sinks::slack::notifier::{NotifierError, NotifierService, Webhook};
use logwarden::sinks::slack::{RetryPolicy, SlackClient};
use logwarden::sinks::sns::SnsSink;
use logwarden::state::dynamodb::DynamoStore;
use logwarden::state::{MemoryStore, StateStore, StateValue};
use logwarden::time::FixedClock;
use runtime_api::{RuntimeApi, lambda_env};
use serde_json::{Value, json};
use support::*;

const T: i64 = 1_795_341_600_000;

/// SDK configuration through the proxy, with the retry and timeout policy
/// the binaries use.
async fn aws_via(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .retry_config(aws_retry_config())
        .timeout_config(aws_timeout_config())
        .load()
        .await
}

/// A topic with a queue and a state table in moto, and a proxy in front of it.
struct Rig {
    proxy: FaultProxy,
    via: aws_config::SdkConfig,
    topic: TopicWithQueue,
    table: String,
    group: String,
}

async fn rig(ep: &str, name: &str) -> Rig {
    let direct = aws(ep).await;
    let topic = topic_with_queue(&direct, &unique(name), None).await;
    let table = unique(name);
    DynamoStore::create_table(&aws_sdk_dynamodb::Client::new(&direct), &table)
        .await
        .unwrap();
    let proxy = FaultProxy::start(ep).await;
    let via = aws_via(&proxy.url()).await;
    Rig {
        proxy,
        via,
        topic,
        table,
        group: format!("/aws/lambda/{}", unique(name)),
    }
}

impl Rig {
    /// A fresh engine (a new Lambda container) on the shared table, via the proxy.
    fn engine(&self) -> Engine<DynamoStore> {
        Engine::new(
            Arc::new(RuleSet::builtin().unwrap()),
            DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.via), &self.table),
            EngineConfig::default(),
        )
    }

    fn delivery(&self) -> Delivery {
        Delivery::Sns(SnsSink::new(
            aws_sdk_sns::Client::new(&self.via),
            self.topic.topic_arn.clone(),
            "us-east-1".into(),
        ))
    }

    /// One invocation of the detector's handler with `event`.
    async fn invoke(
        &self,
        engine: &mut Engine<DynamoStore>,
        event: &Value,
    ) -> Result<Handled, HandlerError> {
        let clock = FixedClock(T);
        handle(engine, event, &Limits::default(), &clock, &self.delivery()).await
    }

    /// Alert ids now in the queue, with how many times each arrived.
    async fn arrived(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for m in self.topic.drain().await {
            let a: Value = serde_json::from_str(m["Message"].as_str().unwrap()).unwrap();
            *out.entry(a["id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        out
    }
}

/// A subscription payload with a burst of 10 failed sshd logins (the
/// built-in `failed-auth-burst` threshold) from each of `ips`: one alert each.
fn bursts(group: &str, stream: &str, ips: &[String]) -> Value {
    let mut lines = Vec::new();
    for (n, ip) in ips.iter().enumerate() {
        for i in 0..10 {
            lines.push((
                T + n as i64 * 10 + i * 1000,
                format!(
                    "sshd[9]: Failed password for root from {ip} port {} ssh2",
                    40_000 + i
                ),
            ));
        }
    }
    lines.sort_by_key(|(t, _)| *t);
    let ev: Vec<(i64, &str)> = lines.iter().map(|(t, m)| (*t, m.as_str())).collect();
    payload(group, stream, &ev)
}

fn ips(first: u8, n: u8) -> Vec<String> {
    (first..first + n)
        .map(|i| format!("198.51.100.{i}"))
        .collect()
}

fn awslogs(p: &Value) -> Value {
    json!({"awslogs": {"data": b64gz(p)}})
}

fn kinesis(payloads: &[Value]) -> Value {
    json!({"Records": payloads.iter().enumerate().map(|(i, p)| json!({
        "eventID": format!("shardId-000000000000:{i}"),
        "kinesis": {"data": b64gz(p), "sequenceNumber": format!("4959{i:04}")},
    })).collect::<Vec<_>>()})
}

/// The alert ids these payloads should raise, found independently of any
/// fault: a fresh engine on memory state, nothing delivered.
async fn expected_ids(payloads: &[Value]) -> Vec<String> {
    let mut e = Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        MemoryStore::new(),
        EngineConfig::default(),
    );
    let mut ids = Vec::new();
    for p in payloads {
        let text = p.to_string();
        let parsed = ingest::parse_payload(text.as_bytes()).unwrap();
        ids.extend(
            e.process(&parsed)
                .await
                .unwrap()
                .alerts
                .into_iter()
                .map(|a| a.id),
        );
    }
    ids.sort();
    ids
}

fn once_each(ids: &[String]) -> BTreeMap<String, usize> {
    ids.iter().map(|id| (id.clone(), 1)).collect()
}

#[tokio::test]
async fn sns_internal_errors_are_retried_and_each_alert_arrives_once() {
    let Some(ep) = moto("sns_internal_errors_are_retried_and_each_alert_arrives_once") else {
        return;
    };
    let r = rig(&ep, "lw-f-sns5xx").await;
    let p = bursts(&r.group, "s1", &ips(1, 3));
    let want = expected_ids(std::slice::from_ref(&p)).await;
    assert_eq!(want.len(), 3);
    r.proxy.add(Rule::next(
        "PublishBatch",
        2,
        Fault::Reply(sns_internal_error()),
    ));
    let mut e = r.engine();
    let h = r.invoke(&mut e, &awslogs(&p)).await.unwrap();
    assert_eq!(h.counters.alerts_raised, 3);
    assert_eq!(r.arrived().await, once_each(&want));
    assert_eq!(r.proxy.count("PublishBatch"), 3, "{:?}", r.proxy.log());
    assert_eq!(r.proxy.reached("PublishBatch"), 1);
}

#[tokio::test]
async fn sns_throttling_is_retried_and_the_alert_arrives_once() {
    let Some(ep) = moto("sns_throttling_is_retried_and_the_alert_arrives_once") else {
        return;
    };
    let r = rig(&ep, "lw-f-snsthr").await;
    // One alert: the single `Publish` path.
    let p = bursts(&r.group, "s1", &ips(1, 1));
    let want = expected_ids(std::slice::from_ref(&p)).await;
    r.proxy
        .add(Rule::next("Publish", 3, Fault::Reply(sns_throttling())));
    let mut e = r.engine();
    r.invoke(&mut e, &awslogs(&p)).await.unwrap();
    assert_eq!(r.arrived().await, once_each(&want));
    assert_eq!(r.proxy.count("Publish"), 4, "{:?}", r.proxy.log());
    assert_eq!(r.proxy.reached("Publish"), 1);
}

#[tokio::test]
async fn sns_faults_past_the_retry_budget_fail_the_invocation_and_the_redelivery_sends_only_the_rest()
 {
    let Some(ep) = moto("sns_faults_past_the_retry_budget_fail_the_invocation") else {
        return;
    };
    let r = rig(&ep, "lw-f-snsbudget").await;
    // 12 alerts: two PublishBatch calls (10 + 2). The second fails on every attempt.
    let p = bursts(&r.group, "s1", &ips(1, 12));
    let want = expected_ids(std::slice::from_ref(&p)).await;
    assert_eq!(want.len(), 12);
    let attempts = AWS_MAX_ATTEMPTS as usize;
    r.proxy
        .add(Rule::next("PublishBatch", attempts, Fault::Reply(sns_internal_error())).after(1));
    let mut e = r.engine();
    let started = Instant::now();
    let err = r.invoke(&mut e, &awslogs(&p)).await.unwrap_err();
    let spent = started.elapsed();
    let HandlerError::Delivery(d) = err else {
        panic!("expected a delivery error, got {err}");
    };
    assert_eq!(d.failed.len(), 2, "{d}");
    // Bounded: one call, then the SDK's attempts for the second; no retries on top.
    assert_eq!(r.proxy.count("PublishBatch"), 1 + attempts);
    // The SDK waits at most its backoff caps between the attempts (3.75 s);
    // the proxy answers the failing ones at once. The bound is about real
    // requests to moto, so 5x headroom for a loaded 2-core machine.
    let waits: Duration = (0..AWS_MAX_ATTEMPTS - 1)
        .map(|k| {
            (logwarden::handler::AWS_INITIAL_BACKOFF * 2u32.pow(k))
                .min(logwarden::handler::AWS_MAX_BACKOFF)
        })
        .sum();
    assert!(
        spent < waits * 5,
        "{spent:?}, the waits are at most {waits:?}"
    );
    eprintln!(
        "SNS retry budget: {attempts} PublishBatch attempts for the failing chunk, invocation failed after {spent:?}"
    );
    let first = r.arrived().await;
    assert_eq!(first.len(), 10);
    assert!(first.values().all(|n| *n == 1), "{first:?}");
    assert!(d.failed.iter().all(|id| !first.contains_key(id)));

    // Lambda redelivers the batch, to another container: only the two go out.
    let mut e2 = r.engine();
    let h = r.invoke(&mut e2, &awslogs(&p)).await.unwrap();
    assert_eq!(h.alerts.len(), 2);
    let second = r.arrived().await;
    assert_eq!(second.keys().cloned().collect::<Vec<_>>(), {
        let mut f = d.failed.clone();
        f.sort();
        f
    });
    let mut all = first;
    for (id, n) in second {
        *all.entry(id).or_insert(0) += n;
    }
    assert_eq!(all, once_each(&want));
}

#[tokio::test]
async fn dynamodb_throttling_is_retried_and_each_alert_arrives_once() {
    let Some(ep) = moto("dynamodb_throttling_is_retried_and_each_alert_arrives_once") else {
        return;
    };
    let r = rig(&ep, "lw-f-ddbthr").await;
    let p = bursts(&r.group, "s1", &ips(1, 3));
    let want = expected_ids(std::slice::from_ref(&p)).await;
    r.proxy.add(Rule::next(
        "BatchGetItem",
        2,
        Fault::Reply(dynamodb_throttled()),
    ));
    r.proxy.add(Rule::next(
        "TransactWriteItems",
        2,
        Fault::Reply(dynamodb_throttled()),
    ));
    let mut e = r.engine();
    r.invoke(&mut e, &awslogs(&p)).await.unwrap();
    assert_eq!(r.arrived().await, once_each(&want));
    let log = r.proxy.log();
    let rejected = |a: &str| {
        log.iter()
            .filter(|s| s.action == a && s.outcome == Outcome::Rejected(400))
            .count()
    };
    assert_eq!(rejected("BatchGetItem"), 2, "{log:?}");
    assert_eq!(rejected("TransactWriteItems"), 2, "{log:?}");
    // The save before the publish and the confirm after it.
    assert_eq!(r.proxy.reached("TransactWriteItems"), 2, "{log:?}");
    assert_pending_cleared(&r).await;
}

#[tokio::test]
async fn a_transaction_cancelled_for_throttling_is_retried_and_each_alert_arrives_once() {
    let Some(ep) = moto("a_transaction_cancelled_for_throttling_is_retried") else {
        return;
    };
    let r = rig(&ep, "lw-f-ddbtxn").await;
    let p = bursts(&r.group, "s1", &ips(1, 2));
    let want = expected_ids(std::slice::from_ref(&p)).await;
    r.proxy.add(Rule::next(
        "TransactWriteItems",
        3,
        Fault::Reply(dynamodb_transaction_throttled()),
    ));
    let mut e = r.engine();
    r.invoke(&mut e, &awslogs(&p)).await.unwrap();
    assert_eq!(r.arrived().await, once_each(&want));
    assert_eq!(
        r.proxy.count("TransactWriteItems"),
        3 + 2,
        "{:?}",
        r.proxy.log()
    );
    assert_pending_cleared(&r).await;
}

#[tokio::test]
async fn dynamodb_throttling_past_the_budget_fails_before_anything_is_published() {
    let Some(ep) = moto("dynamodb_throttling_past_the_budget_fails_before_anything_is_published")
    else {
        return;
    };
    let r = rig(&ep, "lw-f-ddbbudget").await;
    let p = bursts(&r.group, "s1", &ips(1, 3));
    let want = expected_ids(std::slice::from_ref(&p)).await;
    r.proxy.add(Rule::next(
        "TransactWriteItems",
        AWS_MAX_ATTEMPTS as usize,
        Fault::Reply(dynamodb_throttled()),
    ));
    let mut e = r.engine();
    let started = Instant::now();
    let err = r.invoke(&mut e, &awslogs(&p)).await.unwrap_err();
    eprintln!(
        "DynamoDB retry budget: invocation failed after {:?}",
        started.elapsed()
    );
    assert!(matches!(err, HandlerError::Engine(_)), "{err}");
    assert!(
        err.to_string().contains("ProvisionedThroughputExceeded"),
        "{err}"
    );
    assert_eq!(r.proxy.count("PublishBatch"), 0);
    assert_eq!(
        r.proxy.count("TransactWriteItems"),
        AWS_MAX_ATTEMPTS as usize
    );
    assert!(r.arrived().await.is_empty());

    let mut e2 = r.engine();
    r.invoke(&mut e2, &awslogs(&p)).await.unwrap();
    assert_eq!(r.arrived().await, once_each(&want));
}

#[tokio::test]
async fn a_confirm_that_fails_after_delivery_does_not_fail_the_invocation_or_resend() {
    let Some(ep) = moto("a_confirm_that_fails_after_delivery_does_not_fail_the_invocation") else {
        return;
    };
    let r = rig(&ep, "lw-f-confirm").await;
    let p = bursts(&r.group, "s1", &ips(1, 2));
    let want = expected_ids(std::slice::from_ref(&p)).await;
    // The first TransactWriteItems (the outbox save) passes; the confirm's never does.
    r.proxy.add(
        Rule::next(
            "TransactWriteItems",
            AWS_MAX_ATTEMPTS as usize,
            Fault::Reply(dynamodb_throttled()),
        )
        .after(1),
    );
    let mut e = r.engine();
    let h = r.invoke(&mut e, &awslogs(&p)).await.unwrap();
    assert_eq!(h.alerts.len(), 2);
    assert_eq!(
        r.proxy.count("TransactWriteItems"),
        1 + AWS_MAX_ATTEMPTS as usize
    );
    assert_eq!(r.arrived().await, once_each(&want));
}

#[tokio::test]
async fn a_lost_sns_response_is_retried_and_arrives_twice_with_the_same_alert_id() {
    let Some(ep) = moto("a_lost_sns_response_is_retried_and_arrives_twice_with_the_same_alert_id")
    else {
        return;
    };
    let r = rig(&ep, "lw-f-snslost").await;
    let p = bursts(&r.group, "s1", &ips(1, 2));
    let want = expected_ids(std::slice::from_ref(&p)).await;
    // SNS accepts the batch, the answer is lost: the SDK retries, SNS publishes again.
    r.proxy.add(Rule::next(
        "PublishBatch",
        1,
        Fault::ReplyAfterForward(sns_internal_error()),
    ));
    let mut e = r.engine();
    r.invoke(&mut e, &awslogs(&p)).await.unwrap();
    assert_eq!(r.proxy.reached("PublishBatch"), 2);
    let twice: BTreeMap<String, usize> = want.iter().map(|id| (id.clone(), 2)).collect();
    assert_eq!(
        r.arrived().await,
        twice,
        "at least once, deduplicable by id"
    );
}

/// No incident in the table still holds an alert waiting for confirmation.
async fn assert_pending_cleared(r: &Rig) {
    let mut store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws(&std::env::var("MOTO_ENDPOINT").unwrap()).await),
        &r.table,
    );
    let keys = store
        .keys_with_prefix("i|failed-auth-burst|", i64::MIN)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let loaded = store.load(&keys, i64::MIN).await.unwrap();
    for (k, v) in loaded {
        match v.value {
            StateValue::Incident(inc) => assert!(inc.pending.is_none(), "{k} still pending"),
            other => panic!("{k}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------- Slack ----

/// An SNS event carrying these alerts, as the notifier receives it.
fn sns_event(alerts: &[logwarden::alert::Alert]) -> Value {
    json!({"Records": alerts.iter().enumerate().map(|(i, a)| json!({
        "EventSource": "aws:sns",
        "Sns": {"MessageId": format!("m-{i}"), "Subject": a.title,
                "Message": serde_json::to_string(a).unwrap()},
    })).collect::<Vec<_>>()})
}

/// How many posts the Slack stand-in recorded at `path` for each alert id.
async fn posted(sink: &str, path: &str, ids: &[String]) -> BTreeMap<String, usize> {
    let recs: Value = reqwest::get(format!("{sink}/requests?path={path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for r in recs.as_array().unwrap() {
        let body = r["body"].as_str().unwrap();
        let hits: Vec<&String> = ids.iter().filter(|id| body.contains(id.as_str())).collect();
        assert_eq!(hits.len(), 1, "a post names exactly one alert: {body}");
        *out.entry(hits[0].clone()).or_insert(0) += 1;
    }
    out
}

/// Three fixture alerts that name no other alert (a brute-force-success
/// names its burst's id), so a fault keyed on one id hits one post.
fn three_alerts() -> Vec<logwarden::alert::Alert> {
    golden_alerts()
        .into_iter()
        .filter(|a| a.rule != "brute-force-success")
        .take(3)
        .collect()
}

async fn notify(service: &NotifierService, event: &Value) -> Result<Value, NotifierError> {
    service
        .call(lambda_runtime::LambdaEvent::new(
            event.clone(),
            lambda_runtime::Context::default(),
        ))
        .await
}

#[tokio::test]
async fn slack_429_honours_retry_after_then_5xx_and_each_alert_is_posted_once() {
    let Some(sink) =
        webhook_sink("slack_429_honours_retry_after_then_5xx_and_each_alert_is_posted_once")
    else {
        return;
    };
    let proxy = FaultProxy::start(&sink).await;
    let path = format!("/{}", unique("faults-slack-429"));
    proxy.add(Rule::next(&path, 1, Fault::Reply(slack_rate_limited(1))));
    proxy.add(Rule::next(
        &path,
        1,
        Fault::Reply(http_status(503, "service unavailable")),
    ));
    let client = SlackClient::new(&format!("{}{path}", proxy.url())).unwrap();
    let service = NotifierService::new(Webhook::ready(client));
    let alerts = three_alerts();
    let ids: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();
    let started = Instant::now();
    let out = notify(&service, &sns_event(&alerts)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 not honoured ({:?})",
        started.elapsed()
    );
    eprintln!(
        "Slack 429 (Retry-After 1) + 503: 3 alerts posted in {:?}",
        started.elapsed()
    );
    assert_eq!(out["posted"], 3, "{out}");
    assert_eq!(proxy.count(&path), 5, "{:?}", proxy.log());
    assert_eq!(posted(&sink, &path, &ids).await, once_each(&ids));
}

#[tokio::test]
async fn slack_faults_past_the_budget_fail_the_invocation_and_the_retry_posts_only_the_rest() {
    let Some(sink) = webhook_sink("slack_faults_past_the_budget_fail_the_invocation") else {
        return;
    };
    let proxy = FaultProxy::start(&sink).await;
    let path = format!("/{}", unique("faults-slack-budget"));
    let alerts = three_alerts();
    let ids: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();
    // Slack keeps failing the second alert for longer than the client's deadline.
    proxy.add(
        Rule::next(
            &path,
            10_000,
            Fault::Reply(http_status(503, "service unavailable")),
        )
        .with_body(&ids[1]),
    );
    let policy = RetryPolicy {
        deadline: Duration::from_secs(2),
        request_timeout: Duration::from_secs(1),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
    };
    // The injected clock: the 2 s deadline is counted in the client's own
    // time, so how many retries fit does not depend on the machine's speed.
    let timer = FakeTimer::new();
    let client = SlackClient::new(&format!("{}{path}", proxy.url()))
        .unwrap()
        .with_policy(policy)
        .with_timer(timer.clone());
    let service = NotifierService::new(Webhook::ready(client));
    let event = sns_event(&alerts);
    let started = Instant::now();
    let err = notify(&service, &event).await.unwrap_err();
    assert!(
        timer.slept() < policy.deadline,
        "waited {:?} past the deadline",
        timer.sleeps()
    );
    match &err {
        NotifierError::Undelivered { failed, total, .. } => assert_eq!((*failed, *total), (1, 3)),
        other => panic!("{other}"),
    }
    let tries = proxy
        .log()
        .iter()
        .filter(|s| s.outcome == Outcome::Rejected(503))
        .count();
    // Waits of 50-100, 100-200, then 200-400 ms each, stopping before one
    // would pass the 2 s deadline: 7 tries if every wait is the longest, 12
    // if every wait is the shortest.
    assert!(
        (7..=12).contains(&tries),
        "retries bounded by the deadline: {tries}"
    );
    assert_eq!(timer.sleeps().len() + 1, tries, "each retry waited once");
    eprintln!(
        "Slack budget (2 s deadline): {tries} attempts for the failing alert, invocation failed after {:?}",
        started.elapsed()
    );
    let first = posted(&sink, &path, &ids).await;
    assert_eq!(first, once_each(&[ids[0].clone(), ids[2].clone()]));

    // SNS retries the invocation; the same container posts only the missing one.
    proxy.clear();
    let out = notify(&service, &event).await.unwrap();
    assert_eq!(
        (out["posted"].as_u64(), out["duplicates"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(posted(&sink, &path, &ids).await, once_each(&ids));
}

#[tokio::test]
async fn a_lost_slack_response_is_posted_again() {
    let Some(sink) = webhook_sink("a_lost_slack_response_is_posted_again") else {
        return;
    };
    let proxy = FaultProxy::start(&sink).await;
    let path = format!("/{}", unique("faults-slack-lost"));
    proxy.add(Rule::next(
        &path,
        1,
        Fault::ReplyAfterForward(http_status(502, "bad gateway")),
    ));
    let client = SlackClient::new(&format!("{}{path}", proxy.url())).unwrap();
    let service = NotifierService::new(Webhook::ready(client));
    let alerts = three_alerts();
    let ids: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();
    notify(&service, &sns_event(&alerts[..1])).await.unwrap();
    // Slack has no idempotency key: the first post landed, its answer did
    // not, the retry lands again. At least once, not exactly once.
    let got = posted(&sink, &path, &ids).await;
    assert_eq!(got, BTreeMap::from([(ids[0].clone(), 2)]));
}

// --------------------------------------------------- killed mid-batch ----

/// The real `logwarden-detector` binary with DynamoDB state, SNS and the
/// state table reached through the proxy, invoked once with `event`.
struct Detector {
    child: tokio::process::Child,
    api: RuntimeApi,
}

async fn start_detector(r: &Rig, event: &Value) -> Detector {
    let api = RuntimeApi::start(vec![event.clone()], Duration::from_secs(60)).await;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_logwarden-detector"))
        .envs(lambda_env(api.addr))
        .env("LOGWARDEN_TOPIC_ARN", &r.topic.topic_arn)
        .env("LOGWARDEN_STATE_TABLE", &r.table)
        .env("AWS_ENDPOINT_URL", r.proxy.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Detector { child, api }
}

impl Detector {
    /// SIGKILL, as Lambda does on a timeout or a crash: no cleanup runs.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    async fn response(mut self) -> Value {
        let got = self.api.next_outcome(Duration::from_secs(60)).await;
        self.child.kill().await.unwrap();
        match got {
            Some(runtime_api::Outcome::Response(v)) => v,
            Some(runtime_api::Outcome::Error(e)) => panic!("the detector reported an error: {e}"),
            None => panic!("the detector did not answer within 60 s"),
        }
    }
}

/// Two Kinesis records of two alerts each; the detector is killed while the
/// second record's `PublishBatch` is held by the proxy (`fault`), then a new
/// process gets the same event. Returns what arrived and what was expected.
async fn kill_mid_batch(
    ep: &str,
    name: &str,
    fault: Fault,
) -> (BTreeMap<String, usize>, Vec<String>, Vec<String>, Rig) {
    let r = rig(ep, name).await;
    let a = bursts(&r.group, "stream-a", &ips(1, 2));
    let b = bursts(&r.group, "stream-b", &ips(3, 2));
    let want_a = expected_ids(std::slice::from_ref(&a)).await;
    let want_b = expected_ids(std::slice::from_ref(&b)).await;
    let event = kinesis(&[a, b]);
    r.proxy.add(Rule::next("PublishBatch", 1, fault).after(1));
    let first = start_detector(&r, &event).await;
    r.proxy.wait_held(Duration::from_secs(60)).await;
    first.kill().await;
    let second = start_detector(&r, &event).await;
    let resp = second.response().await;
    assert_eq!(resp, json!({"batchItemFailures": []}));
    let arrived = r.arrived().await;
    (arrived, want_a, want_b, r)
}

#[tokio::test]
async fn detector_killed_before_its_publish_reached_sns_then_redelivered_sends_each_alert_once() {
    let Some(ep) = moto("detector_killed_before_its_publish_reached_sns") else {
        return;
    };
    let (arrived, want_a, want_b, r) = kill_mid_batch(&ep, "lw-f-kill", Fault::Hold).await;
    let mut want: Vec<String> = want_a.iter().chain(&want_b).cloned().collect();
    want.sort();
    assert_eq!(want.len(), 4);
    assert_eq!(arrived, once_each(&want));
    // Record a's alerts went out once, before the kill; the new process
    // published only record b's.
    assert_eq!(r.proxy.reached("PublishBatch"), 2, "{:?}", r.proxy.log());
    assert_pending_cleared(&r).await;
}

#[tokio::test]
async fn detector_killed_after_sns_accepted_then_redelivered_sends_those_again_with_the_same_ids() {
    let Some(ep) = moto("detector_killed_after_sns_accepted") else {
        return;
    };
    let (arrived, want_a, want_b, r) =
        kill_mid_batch(&ep, "lw-f-killafter", Fault::HoldAfterForward).await;
    // SNS published record b's alerts, then the process died before it could
    // record that: they go out again, with the same ids. Record a's, confirmed
    // before the kill, do not.
    let mut want: BTreeMap<String, usize> = once_each(&want_a);
    want.extend(want_b.iter().map(|id| (id.clone(), 2)));
    assert_eq!(arrived, want);
    assert_pending_cleared(&r).await;
}
