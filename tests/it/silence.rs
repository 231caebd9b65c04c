//! Silences through the real parts: kept in the DynamoDB state table (moto),
//! applied by the runner over a DynamoDB store, alerts read back from an SQS
//! queue subscribed to the SNS topic; and the CLI with a YAML file. The moto
//! tests are skipped (with a message) when `MOTO_ENDPOINT` is not set.

use crate::support;

use std::process::Command;
use std::sync::Arc;

use logwarden::alert::Alert;
use logwarden::detect::Key;
use logwarden::engine::{Engine, EngineConfig};
use logwarden::ingest::{LogEvent, MessageType, Payload};
use logwarden::rules::RuleSet;
use logwarden::runner::Runner;
use logwarden::silence::table::SilenceTable;
use logwarden::silence::{NewSilence, SilenceSet};
use logwarden::sinks::sns::SnsSink;
use logwarden::state::dynamodb::DynamoStore;
use support::*;

const T: i64 = 1_795_341_600_000;

/// Twelve failed sshd logins from one source, a second apart, from `at`.
fn burst(ip: &str, at: i64) -> Payload<'static> {
    Payload {
        message_type: MessageType::Data,
        owner: "123456789012".into(),
        region: None,
        log_group: "/ec2/bastion/sshd".into(),
        log_stream: "bastion".into(),
        subscription_filters: vec![],
        log_events: (0..12)
            .map(|i| LogEvent {
                id: format!("e{at}-{i}").into(),
                timestamp: at + i * 1_000,
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

async fn setup(conf: &aws_config::SdkConfig) -> (String, SilenceTable) {
    let name = unique("lw-silence");
    let client = aws_sdk_dynamodb::Client::new(conf);
    DynamoStore::create_table(&client, &name).await.unwrap();
    (name.clone(), SilenceTable::new(client, name))
}

fn engine(conf: &aws_config::SdkConfig, table: &str) -> Engine<DynamoStore> {
    Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(conf), table),
        EngineConfig::default(),
    )
}

fn sns(conf: &aws_config::SdkConfig, topic: &str) -> SnsSink {
    SnsSink::new(
        aws_sdk_sns::Client::new(conf),
        topic.to_string(),
        "us-east-1".into(),
    )
}

/// A silence of failed-auth-burst from `ip` until `T + until`, made just before T.
fn pen_test(ip: &str, until: i64) -> NewSilence {
    NewSilence {
        rule: "failed-auth-burst".into(),
        key: Key::from([("source_ip".into(), ip.into())]),
        log_group: Some("/ec2/*".into()),
        until: Some(T + until),
        reason: "pen test".into(),
        by: "ops".into(),
    }
}

fn firings(notifications: &[serde_json::Value]) -> Vec<Alert> {
    notifications
        .iter()
        .map(|n| serde_json::from_str::<Alert>(n["Message"].as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn burst_silence_burst_delivers_nothing_and_the_open_incident_alerts_once_at_expiry() {
    let Some(ep) =
        moto("burst_silence_burst_delivers_nothing_and_the_open_incident_alerts_once_at_expiry")
    else {
        return;
    };
    let conf = aws(&ep).await;
    let (name, table) = setup(&conf).await;
    let t = topic_with_queue(&conf, &unique("lw-silence"), None).await;
    let s = pen_test("203.0.113.7", 90_000).make(T - 1, &[]).unwrap();
    table.add(&s).await.unwrap();
    // The state table holds it, beside the detector's state.
    let silences = SilenceSet::new(table.list(i64::MIN).await.unwrap());
    assert_eq!(silences.silences, vec![s.clone()]);

    let mut e = engine(&conf, &name);
    let mut r = Runner::new(&mut e, sns(&conf, &t.topic_arn)).silences(silences.clone());
    assert_eq!(
        r.process(&burst("203.0.113.7", T))
            .await
            .unwrap()
            .alerts
            .len(),
        1
    );
    // Another burst within the incident while silenced: folded, nothing sent.
    r.process(&burst("203.0.113.7", T + 60_000)).await.unwrap();
    assert_eq!(r.silenced(), 1);
    assert!(
        t.drain().await.is_empty(),
        "nothing is delivered while silenced"
    );

    // The silence ends at T+90s; the incident is open until its last event
    // (T+71s) plus twice the window. Another container sweeps at T+100s.
    let mut e2 = engine(&conf, &name);
    let mut r2 = Runner::new(&mut e2, sns(&conf, &t.topic_arn)).silences(silences.clone());
    r2.sweep(T + 100_000).await.unwrap();
    // And the first one too, a little later: the parked alert was taken.
    r.sweep(T + 110_000).await.unwrap();
    let got = firings(&t.drain().await);
    assert_eq!(got.len(), 1, "once at expiry: {got:?}");
    assert_eq!(got[0].key["source_ip"], "203.0.113.7");
    assert_eq!(got[0].count, 24, "both bursts");
    assert!(!got[0].status.is_resolved());
    // Its resolution follows in its time.
    r.sweep(T + 600_000).await.unwrap();
    let got = firings(&t.drain().await);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].status.is_resolved());
}

#[tokio::test]
async fn a_removed_silence_lets_the_open_incident_alert_at_the_next_run() {
    let Some(ep) = moto("a_removed_silence_lets_the_open_incident_alert_at_the_next_run") else {
        return;
    };
    let conf = aws(&ep).await;
    let (name, table) = setup(&conf).await;
    let t = topic_with_queue(&conf, &unique("lw-unsilence"), None).await;
    let s = pen_test("203.0.113.8", 3_600_000).make(T - 1, &[]).unwrap();
    table.add(&s).await.unwrap();
    let mut e = engine(&conf, &name);
    let set = SilenceSet::new(table.list(i64::MIN).await.unwrap());
    let mut r = Runner::new(&mut e, sns(&conf, &t.topic_arn)).silences(set);
    r.process(&burst("203.0.113.8", T)).await.unwrap();
    assert!(t.drain().await.is_empty());
    table.remove(&s.id).await.unwrap();
    let e = table.remove(&s.id).await.unwrap_err().to_string();
    assert!(e.contains("no silence"), "{e}");
    let set = SilenceSet::new(table.list(i64::MIN).await.unwrap());
    assert!(set.silences.is_empty());
    r.set_silences(set);
    r.sweep(T + 30_000).await.unwrap();
    r.sweep(T + 40_000).await.unwrap();
    let got = firings(&t.drain().await);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].key["source_ip"], "203.0.113.8");
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args(args)
        .env_remove("LOGWARDEN_STATE_TABLE")
        .output()
        .unwrap()
}

#[test]
fn the_cli_adds_lists_applies_and_removes_silences_in_a_yaml_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("silences.yaml");
    let f = file.to_str().unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/auth/bastion-brute-force-success.json"
    );
    let add = cli(&[
        "silence",
        "add",
        "--rule",
        "failed-auth-burst",
        "--log-group",
        "/ec2/*",
        "--for",
        "1h",
        "--reason",
        "pen test",
        "--by",
        "alice",
        "--silences",
        f,
    ]);
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let id = String::from_utf8(add.stdout).unwrap().trim().to_string();
    assert!(id.starts_with("s-") && id.len() == 10, "{id}");
    let list = cli(&["silence", "list", "--silences", f]);
    let out = String::from_utf8(list.stdout).unwrap();
    assert!(
        out.starts_with(&id) && out.contains("by=alice") && out.contains("reason=pen test"),
        "{out}"
    );

    let replay = |silences: bool| {
        let mut args = vec!["replay", "--output", "json", fixture];
        if silences {
            args.extend(["--silences", f]);
        }
        let o = cli(&args);
        assert!(o.status.success());
        (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    let (loud, loud_err) = replay(false);
    assert!(loud.contains("\"rule\":\"failed-auth-burst\""), "{loud}");
    assert!(!loud_err.contains("silenced"), "{loud_err}");
    let (quiet, quiet_err) = replay(true);
    assert!(!quiet.contains("\"rule\":\"failed-auth-burst\""), "{quiet}");
    assert!(
        quiet.contains("\"rule\":\"brute-force-success\""),
        "other rules still alert: {quiet}"
    );
    assert!(
        quiet_err.contains(", 2 silenced"),
        "the firing and its resolution: {quiet_err}"
    );

    let rm = cli(&["silence", "remove", &id, "--silences", f]);
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    let again = cli(&["silence", "remove", &id, "--silences", f]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no silence"));
    let (after, _) = replay(true);
    assert_eq!(after, loud);
}

#[test]
fn the_cli_refuses_a_silence_without_expiry_or_longer_than_90_days() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.yaml");
    let f = f.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--for", "91d", "--reason", "x"], "at most 90 days"),
        (&["--reason", "x"], "needs an expiry"),
        (&["--for", "1h"], "needs --reason"),
        (
            &["--until", "2020-01-01T00:00:00Z", "--reason", "x"],
            "not in the future",
        ),
    ];
    for (extra, said) in cases {
        let mut args = vec!["silence", "add", "--rule", "*", "--silences", f];
        args.extend_from_slice(extra);
        let o = cli(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(said), "{extra:?}: {err}");
    }
    assert!(!dir.path().join("s.yaml").exists(), "nothing written");
}

#[tokio::test]
async fn the_cli_keeps_silences_in_the_state_table() {
    let Some(ep) = moto("the_cli_keeps_silences_in_the_state_table") else {
        return;
    };
    let conf = aws(&ep).await;
    let (name, table) = setup(&conf).await;
    let add = cli(&[
        "silence",
        "add",
        "--rule",
        "*",
        "--key",
        "source_ip=203.0.113.9",
        "--for",
        "2h",
        "--reason",
        "load test",
        "--state-table",
        &name,
    ]);
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let id = String::from_utf8(add.stdout).unwrap().trim().to_string();
    let stored = table.list(i64::MIN).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, id);
    assert_eq!(stored[0].rule, "*");
    assert_eq!(stored[0].until - stored[0].created, 7_200_000);
    let list = cli(&["silence", "list", "--state-table", &name]);
    assert!(String::from_utf8_lossy(&list.stdout).starts_with(&id));
    let rm = cli(&["silence", "remove", &id, "--state-table", &name]);
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    assert!(table.list(i64::MIN).await.unwrap().is_empty());
    let again = cli(&["silence", "remove", &id, "--state-table", &name]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
