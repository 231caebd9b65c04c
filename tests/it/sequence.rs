//! `brute-force-success` (kind `sequence`) over the built-in pack: a
//! failed-auth-burst incident, then a successful login from the same source
//! within 10 minutes, whichever batches the lines come in.

use std::borrow::Cow;
use std::sync::Arc;

use logwarden::alert::Alert;
use logwarden::engine::{Engine, EngineConfig};
use logwarden::ingest::{LogEvent, MessageType, Payload};
use logwarden::rules::RuleSet;
use logwarden::state::MemoryStore;

const T0: i64 = 1_795_341_600_000; // 2026-11-22T10:00:00Z

fn burst(ip: &str) -> Vec<(i64, String)> {
    (0..10)
        .map(|i| {
            (
                T0 + i * 2_000,
                format!("Nov 22 10:00:{:02} bastion sshd[{}]: Failed password for invalid user admin from {ip} port {} ssh2", i * 2, 600 + i, 40_000 + i),
            )
        })
        .collect()
}

/// Every alert of replaying `events` in batches of `size`.
async fn run(events: &[(i64, String)], size: usize) -> Vec<Alert> {
    let rules = Arc::new(RuleSet::builtin().expect("built-in rules"));
    let mut engine = Engine::new(rules, MemoryStore::new(), EngineConfig::default());
    let mut out = Vec::new();
    for (n, chunk) in events.chunks(size).enumerate() {
        let payload = Payload {
            region: None,
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: "/ec2/bastion/auth".into(),
            log_stream: "bastion".into(),
            subscription_filters: vec![],
            log_events: chunk
                .iter()
                .enumerate()
                .map(|(i, (t, m))| LogEvent {
                    id: Cow::Owned(format!("{n}-{i}")),
                    timestamp: *t,
                    message: Cow::Owned(m.clone()),
                })
                .collect(),
        };
        let o = engine.process(&payload).await.expect("batch");
        let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
        engine.confirm(&ids).await.expect("confirm");
        out.extend(o.alerts);
    }
    out
}

/// The firings of `rule` (a burst that went quiet also resolves).
fn of<'a>(alerts: &'a [Alert], rule: &str) -> Vec<&'a Alert> {
    alerts
        .iter()
        .filter(|a| a.rule == rule && !a.status.is_resolved())
        .collect()
}

#[tokio::test]
async fn each_success_form_after_a_burst_is_one_critical_alert_linking_the_burst() {
    let ip = "203.0.113.7";
    for success in [
        format!(
            "Nov 22 10:03:00 bastion sshd[700]: Accepted password for admin from {ip} port 40100 ssh2"
        ),
        format!(
            "Nov 22 10:03:00 bastion sshd[700]: Accepted publickey for admin from {ip} port 40100 ssh2: RSA SHA256:abc"
        ),
        format!(
            "Nov 22 10:03:00 bastion sshd[700]: Accepted keyboard-interactive/pam for admin from {ip} port 40100 ssh2"
        ),
        format!(
            "Nov 22 10:03:00 ftp vsftpd[700]: pam_unix(vsftpd:session): session opened for user admin by (uid=0) rhost={ip}"
        ),
        format!(r#"{{"event":"login_success","source_ip":"{ip}","user":"admin"}}"#),
        format!(
            r#"{{"event":{{"outcome":"success","category":["authentication"]}},"source":{{"ip":"{ip}"}}}}"#
        ),
    ] {
        let mut ev = burst(ip);
        ev.push((T0 + 180_000, success.clone()));
        for size in [1, 4, 100] {
            let alerts = run(&ev, size).await;
            let b = of(&alerts, "failed-auth-burst");
            let s = of(&alerts, "brute-force-success");
            assert_eq!(
                (b.len(), s.len()),
                (1, 1),
                "{success} in batches of {size}: {alerts:#?}"
            );
            assert_eq!(s[0].key["source_ip"], ip);
            assert!(s[0].evidence[0].contains(&b[0].id), "{:?}", s[0].evidence);
            assert_eq!(s[0].metrics.get("seconds_after_first_step"), Some(&162.0));
        }
    }
}

#[tokio::test]
async fn a_success_without_a_burst_late_or_from_elsewhere_stays_silent() {
    let ip = "203.0.113.8";
    let login = |t: i64, from: &str| {
        (
            t,
            format!("bastion sshd[700]: Accepted password for admin from {from} port 40100 ssh2"),
        )
    };
    let alone = vec![login(T0, ip), login(T0 + 60_000, ip)];
    assert!(of(&run(&alone, 100).await, "brute-force-success").is_empty());
    let mut late = burst(ip);
    late.push(login(T0 + 30 * 60_000, ip));
    assert!(of(&run(&late, 100).await, "brute-force-success").is_empty());
    let mut elsewhere = burst(ip);
    elsewhere.push(login(T0 + 60_000, "198.51.100.1"));
    assert!(of(&run(&elsewhere, 100).await, "brute-force-success").is_empty());
    // Nine tries are no burst, so their login is not a brute-force success.
    let mut nine = burst(ip);
    nine.truncate(9);
    nine.push(login(T0 + 60_000, ip));
    assert!(run(&nine, 100).await.is_empty());
}
