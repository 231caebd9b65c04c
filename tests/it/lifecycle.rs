//! An incident's life through the real AWS SDK: SNS in the moto emulator,
//! read back from an SQS queue subscribed to the topic. Skipped (with a
//! message) when `MOTO_ENDPOINT` is not set; `.ci/run` always sets it.

use crate::support;

use std::sync::{Arc, Mutex};

use logwarden::alert::Alert;
use logwarden::engine::{Engine, EngineConfig};
use logwarden::ingest::{LogEvent, MessageType, Payload};
use logwarden::rules::RuleSet;
use logwarden::runner::Runner;
use logwarden::sinks::sns::SnsSink;
use logwarden::state::MemoryStore;
use serde_json::Value;
use support::*;

const T: i64 = 1_795_341_600_000;

/// Twelve failed sshd logins from one source, a second apart.
fn burst(ip: &str) -> Payload<'static> {
    Payload {
        message_type: MessageType::Data,
        owner: "123456789012".into(),
        region: None,
        log_group: "/ec2/bastion/sshd".into(),
        log_stream: "bastion".into(),
        subscription_filters: vec![],
        log_events: (0..12)
            .map(|i| LogEvent {
                id: format!("e{i}").into(),
                timestamp: T + i * 1_000,
                message: format!(
                    "sshd[{}]: Failed password for root from {ip} port {} ssh2",
                    100 + i,
                    40_000 + i
                )
                .into(),
            })
            .collect(),
    }
}

fn sns(conf: &aws_config::SdkConfig, topic: &str) -> SnsSink {
    SnsSink::new(
        aws_sdk_sns::Client::new(conf),
        topic.to_string(),
        "us-east-1".into(),
    )
}

/// The alerts in the queue's notifications, in arrival order.
fn alerts_of(notifications: &[Value]) -> Vec<Alert> {
    notifications
        .iter()
        .map(|n| serde_json::from_str(n["Message"].as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_burst_then_quiet_is_one_firing_and_one_resolution_at_the_queue() {
    let Some(ep) = moto("a_burst_then_quiet_is_one_firing_and_one_resolution_at_the_queue") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-life"), None).await;
    let rules = Arc::new(RuleSet::builtin().unwrap());
    let mut engine = Engine::new(rules, MemoryStore::new(), EngineConfig::default());
    let mut runner = Runner::new(&mut engine, sns(&conf, &t.topic_arn));
    let p = burst("203.0.113.7");
    assert_eq!(runner.process(&p).await.unwrap().alerts.len(), 1);
    // The scheduled sweep, 10 minutes on: quiet for twice the window.
    assert_eq!(runner.sweep(T + 600_000).await.unwrap().alerts.len(), 1);
    // Lambda or Kinesis delivers the batch again, the sweep runs again:
    // neither the firing nor the resolution is sent twice.
    assert!(runner.process(&p).await.unwrap().alerts.is_empty());
    assert!(runner.sweep(T + 660_000).await.unwrap().alerts.is_empty());
    let got = alerts_of(&t.drain().await);
    let seen: Vec<(&str, &str, u64)> = got
        .iter()
        .map(|a| (a.id.as_str(), a.status.as_str(), a.count))
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].1, "firing");
    assert_eq!(seen[1], (seen[0].0, "resolved", 12));
    assert_eq!(
        got[1].resolved_at.as_deref(),
        Some("2026-11-22T10:02:11.000Z")
    );
    assert_eq!(got[1].last_seen, "2026-11-22T10:00:11.000Z");
}

#[tokio::test]
async fn a_shadow_rule_delivers_nothing_and_is_shown_and_counted() {
    let Some(ep) = moto("a_shadow_rule_delivers_nothing_and_is_shown_and_counted") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-shadow"), None).await;
    let rule = "id: ssh-trial\ntitle: Failed sshd logins (trial)\nseverity: high\n\
                kind: threshold\nmode: shadow\n\
                match: [{regex: 'Failed password for \\S+ from (?P<source_ip>\\S+)'}]\n\
                group_by: [source_ip]\nthreshold: 5\nwindow: 60s\n";
    let rules =
        Arc::new(RuleSet::from_sources(vec![("ssh-trial.yaml".into(), rule.into())]).unwrap());
    let mut engine = Engine::new(rules, MemoryStore::new(), EngineConfig::default());
    let shown: Arc<Mutex<Vec<Alert>>> = Arc::default();
    let show = Arc::clone(&shown);
    let mut runner = Runner::new(&mut engine, sns(&conf, &t.topic_arn))
        .show_shadow(Box::new(move |a| show.lock().unwrap().extend_from_slice(a)));
    let fired = runner.process(&burst("198.51.100.9")).await.unwrap().alerts;
    assert_eq!(fired.len(), 1);
    assert!(fired[0].shadow);
    let resolved = runner.sweep(T + 600_000).await.unwrap().alerts;
    assert_eq!(resolved.len(), 1);
    assert!(resolved[0].shadow && resolved[0].status.is_resolved());
    assert_eq!(runner.shadow_counts().get("ssh-trial"), Some(&2));
    drop(runner);
    let shown = shown.lock().unwrap().clone();
    assert_eq!(shown.len(), 2);
    assert!(shown.iter().all(|a| a.shadow && a.rule == "ssh-trial"));
    let json = serde_json::to_value(&shown[0]).unwrap();
    assert_eq!(json["shadow"], true);
    assert!(t.drain().await.is_empty(), "a shadow alert reached SNS");
}
