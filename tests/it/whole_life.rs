//! One incident's whole life with every real part: a burst of failed logins
//! and then quiet, through the detector Lambda's handler (the real engine,
//! the built-in rule pack and the SNS sink) into SNS in the moto emulator,
//! read back from an SQS queue subscribed to the topic; then the very
//! messages SNS delivered, through the notifier Lambda's service to a Slack
//! incoming webhook, the Slack Web API (bot token) and PagerDuty's Events API,
//! each a local stand-in. Retried batches and a shadow rule's burst ride
//! along and must reach none of them. Skipped (with a message) when
//! `MOTO_ENDPOINT` is not set; `.ci/run` always sets it.

use std::sync::Arc;

use lambda_runtime::{Context, LambdaEvent};
use logwarden::alert::Alert;
use logwarden::engine::{Engine, EngineConfig};
use logwarden::handler::{Delivery, handle};
use logwarden::ingest::Limits;
use logwarden::rules::RuleSet;
use logwarden::sinks::pagerduty::PagerDutyClient;
use logwarden::sinks::secret::SecretBacked;
use logwarden::sinks::slack::SlackClient;
use logwarden::sinks::slack::bot::Threads;
use logwarden::sinks::slack::notifier::{NotifierService, SlackDest, Webhook};
use logwarden::sinks::sns::SnsSink;
use logwarden::state::MemoryStore;
use logwarden::time::FixedClock;
use serde_json::{Value, json};

use crate::pagerduty::{KEY, events_api};
use crate::slack_bot::{TOKEN, bot, slack};
use crate::support::standin::{Reply, Req, StandIn};
use crate::support::{aws, b64gz, moto, payload, topic_with_queue, unique};

/// 2026-11-22T10:00:00Z.
const T: i64 = 1_795_341_600_000;

/// A trial rule, never delivered: five denied logins from one source.
const SHADOW_RULE: &str = "id: login-denied-trial\ntitle: Denied logins (trial)\n\
    severity: critical\nkind: threshold\nmode: shadow\n\
    match: [{regex: 'login denied for \\S+ from (?P<source_ip>\\S+)'}]\n\
    group_by: [source_ip]\nthreshold: 5\nwindow: 60s\n";

/// The built-in pack and the trial rule, as a rule directory holding both.
fn rules() -> Arc<RuleSet> {
    let mut all = RuleSet::builtin().unwrap().rules;
    let trial = RuleSet::from_sources(vec![("login-denied-trial.yaml".into(), SHADOW_RULE.into())])
        .unwrap();
    all.extend(trial.rules);
    all.sort_by(|a, b| a.id.cmp(&b.id));
    Arc::new(RuleSet::new(all))
}

/// CloudWatch Logs' direct Lambda event for `lines` of `group`, one a second from T.
fn awslogs(group: &str, lines: &[String]) -> Value {
    let events: Vec<(i64, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (T + i as i64 * 1_000, l.as_str()))
        .collect();
    json!({"awslogs": {"data": b64gz(&payload(group, "bastion", &events))}})
}

fn scheduled() -> Value {
    json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
           "time": "2026-11-22T10:10:00Z", "detail": {}})
}

/// One SNS record as the notifier Lambda receives it, from the notification
/// the queue got (same message id, subject, body).
fn sns_event(n: &Value) -> Value {
    json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": {
        "Type": "Notification", "MessageId": n["MessageId"], "TopicArn": n["TopicArn"],
        "Subject": n["Subject"], "Message": n["Message"], "Timestamp": n["Timestamp"],
        "MessageAttributes": n["MessageAttributes"]}}]})
}

/// An alert as SNS would have carried it, for alerts that never reached SNS.
fn as_notification(a: &Alert, id: &str) -> Value {
    json!({"MessageId": id, "Subject": "s", "Message": serde_json::to_string(a).unwrap()})
}

#[tokio::test]
async fn a_burst_then_quiet_reaches_sqs_slack_and_pagerduty_as_one_firing_and_one_resolution() {
    let Some(ep) = moto("a_burst_then_quiet_reaches_sqs_slack_and_pagerduty") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-whole"), None).await;
    let delivery = Delivery::Sns(SnsSink::new(
        aws_sdk_sns::Client::new(&conf),
        t.topic_arn.clone(),
        "us-east-1".into(),
    ));
    let mut engine = Engine::new(rules(), MemoryStore::new(), EngineConfig::default());
    let limits = Limits::default();
    let burst = awslogs(
        "/ec2/bastion/sshd",
        &(0..12)
            .map(|i| {
                format!(
                    "sshd[{}]: Failed password for root from 203.0.113.7 port {} ssh2",
                    100 + i,
                    40_000 + i
                )
            })
            .collect::<Vec<_>>(),
    );
    let trial = awslogs(
        "/aws/lambda/login",
        &(0..6)
            .map(|i| format!("login denied for user{i} from 198.51.100.9"))
            .collect::<Vec<_>>(),
    );
    let during = FixedClock(T + 20_000);
    let later = FixedClock(T + 600_000);
    let mut run = async |event: &Value, clock: &FixedClock| {
        handle(&mut engine, event, &limits, clock, &delivery)
            .await
            .unwrap()
            .alerts
    };

    // The burst fires; Lambda delivers the batch again before the
    // incident resolves: nothing is sent again.
    let fired = run(&burst, &during).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(run(&burst, &during).await.is_empty());
    // The trial rule's burst is shown (the handler's alerts), not delivered.
    let shadow = run(&trial, &during).await;
    assert_eq!(shadow.len(), 1, "{shadow:?}");
    assert!(shadow[0].shadow && shadow[0].rule == "login-denied-trial");
    // The scheduled sweep 10 minutes on: both sources went quiet.
    let mut swept = run(&scheduled(), &later).await;
    swept.sort_by(|a, b| a.rule.cmp(&b.rule));
    let got: Vec<(&str, &str, bool)> = swept
        .iter()
        .map(|a| (a.id.as_str(), a.status.as_str(), a.shadow))
        .collect();
    assert_eq!(
        got,
        [
            (fired[0].id.as_str(), "resolved", false),
            (shadow[0].id.as_str(), "resolved", true)
        ]
    );
    // Every batch again, then the sweep again: nothing more.
    for (event, clock) in [(&burst, &during), (&trial, &during), (&scheduled(), &later)] {
        assert!(run(event, clock).await.is_empty());
    }

    // At the queue: one firing and one resolution under one id.
    let mut notifications = t.drain().await;
    let alerts: Vec<Alert> = notifications
        .iter()
        .map(|n| serde_json::from_str(n["Message"].as_str().unwrap()).unwrap())
        .collect();
    let seen: Vec<(&str, &str, u64)> = alerts
        .iter()
        .map(|a| (a.id.as_str(), a.status.as_str(), a.count))
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let firing = (fired[0].id.as_str(), "firing", fired[0].count);
    assert!(seen.contains(&firing), "{seen:?}");
    // The final count: every event of the burst, each once.
    assert!(
        seen.contains(&(fired[0].id.as_str(), "resolved", 12)),
        "{seen:?}"
    );
    assert!(alerts.iter().all(|a| a.rule == "failed-auth-burst"));
    // SNS does not promise order; the notifier gets them as the incident
    // happened.
    notifications.sort_by_key(|n| n["Message"].as_str().unwrap().contains("\"resolved\""));
    let resolution = alerts.iter().find(|a| a.status.is_resolved()).unwrap();
    assert_eq!(
        resolution.resolved_at.as_deref(),
        Some("2026-11-22T10:02:11.000Z")
    );

    // The notifiers: one posting to an incoming webhook, one with a bot
    // token and a PagerDuty routing key.
    let hook = StandIn::start(|_: &Req| Reply::json(200, json!("ok"))).await;
    let webhook = NotifierService::new(Webhook::ready(
        SlackClient::new(&hook.url("/services/T000/B000/XXXX")).unwrap(),
    ));
    let (api, state) = slack().await;
    let pd = StandIn::start(events_api).await;
    let botted = NotifierService::with_destinations(
        Some(SlackDest::Bot(SecretBacked::ready(bot(
            &api,
            TOKEN,
            "#alerts",
            Threads::memory(),
        )))),
        Some(SecretBacked::ready(
            PagerDutyClient::new(KEY, Some(&pd.url("/v2/enqueue"))).unwrap(),
        )),
    );
    // The shadow alerts, had anything published them, and what SNS
    // delivered, each message twice (SNS retries).
    let mut events: Vec<Value> = [&shadow[0], &swept[1]]
        .iter()
        .enumerate()
        .map(|(i, a)| sns_event(&as_notification(a, &format!("shadow-{i}"))))
        .collect();
    for n in &notifications {
        events.extend([sns_event(n), sns_event(n)]);
    }
    for ev in events {
        for svc in [&webhook, &botted] {
            svc.call(LambdaEvent::new(ev.clone(), Context::default()))
                .await
                .unwrap();
        }
    }

    // The webhook: the firing, then a resolved message naming it.
    let posts: Vec<Value> = hook.requests().iter().map(Req::json).collect();
    assert_eq!(posts.len(), 2, "{posts:#?}");
    let (first, last) = (posts[0].to_string(), posts[1].to_string());
    assert!(
        !first.contains("RESOLVED") && first.contains("203.0.113.7"),
        "{first}"
    );
    for part in [
        "RESOLVED",
        "failed-auth-burst",
        "source_ip = 203.0.113.7",
        "*First seen*\\n2026-11-22T10:00:00.000Z",
        "*Last seen*\\n2026-11-22T10:00:11.000Z",
        "*Count*\\n12",
        "*Resolved at*\\n2026-11-22T10:02:11.000Z",
        &format!("resolves the alert with id `{}`", fired[0].id),
    ] {
        assert!(last.contains(part), "{part} not in {last}");
    }

    // The bot: one message, posted, then updated, and a thread reply to it.
    let calls: Vec<(String, Value)> = api
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.json()))
        .collect();
    let paths: Vec<&str> = calls.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/chat.postMessage",
            "/api/chat.update",
            "/api/chat.postMessage"
        ]
    );
    let s = state.lock().unwrap();
    assert_eq!(s.messages.len(), 1, "one message in the channel");
    let ts = s.messages.keys().next().unwrap().clone();
    assert_eq!(
        calls[1].1["ts"],
        ts.as_str(),
        "the update is of that message"
    );
    assert_eq!(
        calls[2].1["thread_ts"],
        ts.as_str(),
        "the reply is in its thread"
    );
    assert!(s.messages[&ts]["blocks"].to_string().contains("RESOLVED"));
    assert_eq!(s.replies.len(), 1);
    assert!(
        s.replies[0]
            .1
            .starts_with(":white_check_mark: Resolved at 2026-11-22T10:02:11.000Z · 12 event(s)"),
        "{:?}",
        s.replies
    );

    // PagerDuty: trigger, then resolve, both keyed by the alert id.
    let events: Vec<Value> = pd.requests().iter().map(Req::json).collect();
    let got: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["event_action"].as_str().unwrap(),
                e["dedup_key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("trigger", fired[0].id.as_str()),
            ("resolve", fired[0].id.as_str())
        ]
    );
}
