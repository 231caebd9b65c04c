//! An alert does not depend on where batches split: the same events replayed
//! as one batch and as many small ones give the same alerts (ids, counts,
//! spans, evidence). The incident keeps counting after its alert went out.

use std::borrow::Cow;
use std::sync::Arc;

use logwarden::engine::{Engine, EngineConfig};
use logwarden::ingest::{LogEvent, MessageType, Payload};
use logwarden::rules::RuleSet;
use logwarden::state::MemoryStore;

const T0: i64 = 1_795_341_600_000; // 2026-11-22T10:00:00Z

/// `(group, stream, time, message)` of a mixed stream: a 30-try sshd burst,
/// an invalid-user burst logged with PAM and Invalid-user lines, and three
/// timed-out invocations of one function.
fn events() -> Vec<(&'static str, &'static str, i64, String)> {
    let mut ev = Vec::new();
    let ssh = "/ec2/bastion/auth";
    for i in 0..30 {
        ev.push((
            ssh,
            "bastion",
            T0 + i * 1_000,
            format!(
                "Nov 22 10:00:{i:02} bastion sshd[{}]: Failed password for root from 203.0.113.7 port {} ssh2",
                4000 + i,
                50_000 + i
            ),
        ));
    }
    for c in 0..4 {
        let pid = 5000 + c;
        let t = T0 + 40_000 + c * 8_000;
        ev.push((
            ssh,
            "bastion",
            t,
            format!(
                "bastion sshd[{pid}]: Invalid user admin from 198.51.100.23 port {}",
                40_000 + c
            ),
        ));
        ev.push((ssh, "bastion", t, format!("bastion sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.23 ")));
        for k in 0..3 {
            ev.push((ssh, "bastion", t + 2_000 + k * 2_000, format!("bastion sshd[{pid}]: Failed password for invalid user admin from 198.51.100.23 port {} ssh2", 40_000 + c)));
        }
    }
    let lambda = "/aws/lambda/report-builder";
    for r in 0..3 {
        ev.push((
            lambda,
            "2026/11/22/[$LATEST]5b5b",
            T0 + 100_000 + r * 31_000,
            format!("2026-11-22T10:01:{:02}.000Z 5e0d5b0c-0002-4a6e-9c1d-00000000000{r} Task timed out after 30.00 seconds", 40 + r),
        ));
    }
    ev.sort_by_key(|e| (e.0, e.2));
    ev
}

/// The alerts of replaying `events()` in batches of at most `size` events of
/// one group, each alert as the fields that must not depend on batching.
async fn replay(size: usize) -> Vec<String> {
    let rules = Arc::new(RuleSet::builtin().expect("built-in rules"));
    let mut engine = Engine::new(rules, MemoryStore::new(), EngineConfig::default());
    let ev = events();
    let mut out = Vec::new();
    for group in ev.chunk_by(|a, b| a.0 == b.0) {
        for (n, chunk) in group.chunks(size).enumerate() {
            let payload = Payload {
                region: None,
                message_type: MessageType::Data,
                owner: "123456789012".into(),
                log_group: chunk[0].0.into(),
                log_stream: chunk[0].1.into(),
                subscription_filters: vec![],
                log_events: chunk
                    .iter()
                    .enumerate()
                    .map(|(i, e)| LogEvent {
                        id: Cow::Owned(format!("{n}-{i}-{}", e.2)),
                        timestamp: e.2,
                        message: Cow::Owned(e.3.clone()),
                    })
                    .collect(),
            };
            let o = engine.process(&payload).await.expect("batch");
            let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
            engine.confirm(&ids).await.expect("confirm");
            out.extend(o.alerts.iter().map(line));
        }
    }
    // Where resolutions come out depends on batching (the engine resolves
    // what a batch touches as the watermark passes); after the sweep at the
    // end, which ones and what they say does not.
    let end = engine.watermark().expect("events");
    let o = engine.sweep(end).await.expect("sweep");
    out.extend(o.alerts.iter().map(line));
    out.sort();
    out
}

/// An alert as the fields that must not depend on batching.
fn line(a: &logwarden::alert::Alert) -> String {
    format!(
        "{} {} {} {:?} count={} {}..{} {:?} {:?} {:?}",
        a.id,
        a.status.as_str(),
        a.rule,
        a.key,
        a.count,
        a.first_seen,
        a.last_seen,
        a.resolved_at,
        a.evidence,
        a.request_ids
    )
}

#[tokio::test]
async fn alerts_are_the_same_whatever_the_batch_size() {
    let whole = replay(usize::MAX).await;
    let mut rules: Vec<&str> = whole
        .iter()
        .filter(|a| a.split(' ').nth(1) == Some("firing"))
        .map(|a| a.split(' ').nth(2).unwrap_or(""))
        .collect();
    rules.sort_unstable();
    assert_eq!(
        rules,
        [
            "failed-auth-burst",
            "failed-auth-burst",
            "invocation-timeout"
        ],
        "{whole:#?}"
    );
    // Each burst is counted once per attempt: 10 tries open it.
    assert!(
        whole
            .iter()
            .filter(|a| a.contains("firing failed-auth-burst"))
            .all(|a| a.contains("count=10 ")),
        "{whole:#?}"
    );
    // By the last event only the first burst has been quiet for twice its
    // window (10:00:29 + 2 min); the second (10:01:04) and the timeout
    // (realert 10 min) are still open.
    let resolved: Vec<&String> = whole.iter().filter(|a| a.contains(" resolved ")).collect();
    assert_eq!(resolved.len(), 1, "{whole:#?}");
    assert!(
        resolved[0].contains("203.0.113.7") && resolved[0].contains("count=30 "),
        "{resolved:?}"
    );
    for size in [1, 3, 7, 100] {
        assert_eq!(replay(size).await, whole, "batches of {size}");
    }
}
