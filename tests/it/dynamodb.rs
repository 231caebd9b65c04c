//! Shared state in DynamoDB (moto): separate engine instances, each with its
//! own client, sharing only the table — as separate Lambda containers would.
//! They run in this one test process, so the tests say "engines", not
//! "processes"; tests/it/faults.rs kills real detector processes. Skipped when
//! `MOTO_ENDPOINT` is not set (a failure under `LOGWARDEN_REQUIRE_SERVICES=1`).

use crate::support;

use std::path::PathBuf;
use std::sync::Arc;

use logwarden::alert::Alert;
use logwarden::engine::{Engine, EngineConfig};
use logwarden::ingest::{self, Payload};
use logwarden::replay::{ReplayOptions, replay_with};
use logwarden::rules::RuleSet;
use logwarden::state::dynamodb::DynamoStore;
use serde_json::{Value, json};
use support::*;

const T: i64 = 1_795_341_600_000;

async fn table(conf: &aws_config::SdkConfig) -> String {
    let name = unique("lw-state");
    DynamoStore::create_table(&aws_sdk_dynamodb::Client::new(conf), &name)
        .await
        .unwrap();
    name
}

fn engine(conf: &aws_config::SdkConfig, table: &str) -> Engine<DynamoStore> {
    Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(conf), table),
        EngineConfig::default(),
    )
}

/// Process one payload given as JSON and confirm its alerts, as the handler does.
async fn process(e: &mut Engine<DynamoStore>, p: &Value) -> Vec<Alert> {
    let text = p.to_string();
    let payload: Payload<'_> = ingest::parse_payload(text.as_bytes()).unwrap();
    let o = e.process(&payload).await.unwrap();
    let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
    e.confirm(&ids).await.unwrap();
    o.alerts
}

fn sshd(t0: i64, n: usize, ip: &str, port0: usize) -> Vec<(i64, String)> {
    (0..n)
        .map(|i| {
            (
                t0 + i as i64 * 1000,
                format!(
                    "sshd[9]: Failed password for root from {ip} port {} ssh2",
                    port0 + i
                ),
            )
        })
        .collect()
}

fn p(group: &str, stream: &str, events: &[(i64, String)]) -> Value {
    let ev: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
    payload(group, stream, &ev)
}

#[tokio::test]
async fn failures_split_across_two_engines_alert_exactly_once() {
    let Some(ep) = moto("failures_split_across_two_engines_alert_exactly_once") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = table(&conf).await;
    let (mut a, mut b) = (engine(&conf, &t), engine(&conf, &t));
    let first = process(
        &mut a,
        &p("/aws/lambda/auth", "s1", &sshd(T, 6, "203.0.113.7", 1000)),
    )
    .await;
    let second = process(
        &mut b,
        &p(
            "/aws/lambda/auth",
            "s2",
            &sshd(T + 20_000, 6, "203.0.113.7", 2000),
        ),
    )
    .await;
    assert!(first.is_empty(), "6 failures are below the threshold");
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].rule, "failed-auth-burst");
    // Threshold reached at the 10th failure, 6 of them seen by engine 1: the
    // alert is the burst as it opened; the 2 after it count into the incident.
    assert_eq!(second[0].count, 10, "the burst is counted across engines");
    // More failures in engine 1 fold into the same incident.
    let more = process(
        &mut a,
        &p(
            "/aws/lambda/auth",
            "s1",
            &sshd(T + 30_000, 5, "203.0.113.7", 3000),
        ),
    )
    .await;
    assert!(more.is_empty());
}

#[tokio::test]
async fn start_in_one_engine_and_report_in_another_is_silent() {
    let Some(ep) = moto("start_in_one_engine_and_report_in_another_is_silent") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = table(&conf).await;
    let (mut a, mut b) = (engine(&conf, &t), engine(&conf, &t));
    let start = vec![(T, "START RequestId: r1 Version: $LATEST\n".to_string())];
    let end = vec![
        (T + 500, "END RequestId: r1\n".to_string()),
        (T + 500, "REPORT RequestId: r1\tDuration: 500.00 ms\tBilled Duration: 500 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\t\n".to_string()),
    ];
    assert!(
        process(&mut a, &p("/aws/lambda/up", "s", &start))
            .await
            .is_empty()
    );
    assert!(
        process(&mut b, &p("/aws/lambda/up", "s", &end))
            .await
            .is_empty()
    );
    // An hour later, a sweep from either engine finds nothing open.
    assert!(a.sweep(T + 3_600_000).await.unwrap().alerts.is_empty());
}

#[tokio::test]
async fn an_orphan_seen_by_two_engines_alerts_once() {
    let Some(ep) = moto("an_orphan_seen_by_two_engines_alerts_once") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = table(&conf).await;
    let (mut a, mut b) = (engine(&conf, &t), engine(&conf, &t));
    let first = vec![
        (T, "START RequestId: Y Version: $LATEST\n".to_string()),
        (
            T + 1_000,
            "START RequestId: Z Version: $LATEST\n".to_string(),
        ),
        (T + 2_000, "END RequestId: Z\n".to_string()),
    ];
    let later = vec![
        (
            T + 90_000,
            "START RequestId: W Version: $LATEST\n".to_string(),
        ),
        (T + 91_000, "END RequestId: W\n".to_string()),
    ];
    assert!(
        process(&mut a, &p("/aws/lambda/up", "s", &first))
            .await
            .is_empty()
    );
    let got = process(&mut b, &p("/aws/lambda/up", "s", &later)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rule, "missing-end");
    assert_eq!(got[0].request_ids, ["Y"]);
    // Engine 1's sweep later does not report it again: it resolves it (the
    // stream never completed an invocation after it, so after its realert
    // span), under the same id, once; engine 2's sweep finds it resolved.
    let swept = a.sweep(T + 3_600_000).await.unwrap().alerts;
    assert_eq!(swept.len(), 1, "{swept:?}");
    assert!(swept[0].status.is_resolved(), "{swept:?}");
    assert_eq!(swept[0].id, got[0].id);
    let ids = [swept[0].id.clone()];
    a.confirm(&ids).await.unwrap();
    assert!(b.sweep(T + 3_600_000).await.unwrap().alerts.is_empty());
    assert!(a.sweep(T + 7_200_000).await.unwrap().alerts.is_empty());
}

#[tokio::test]
async fn a_quiet_stream_is_found_by_the_sweep_of_another_engine() {
    let Some(ep) = moto("a_quiet_stream_is_found_by_the_sweep_of_another_engine") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = table(&conf).await;
    let (mut a, mut b) = (engine(&conf, &t), engine(&conf, &t));
    let start = vec![(T, "START RequestId: lost Version: $LATEST\n".to_string())];
    assert!(
        process(&mut a, &p("/aws/lambda/up", "quiet", &start))
            .await
            .is_empty()
    );
    assert!(
        b.sweep(T + 900_000).await.unwrap().alerts.is_empty(),
        "not yet past 900 s + grace"
    );
    let o = b.sweep(T + 961_000).await.unwrap();
    assert_eq!(o.alerts.len(), 1);
    assert_eq!(o.alerts[0].request_ids, ["lost"]);
}

#[tokio::test]
async fn the_same_batch_twice_alerts_once() {
    let Some(ep) = moto("the_same_batch_twice_alerts_once") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = table(&conf).await;
    let batch = p(
        "/aws/lambda/auth",
        "s1",
        &sshd(T, 12, "198.51.100.23", 1000),
    );
    let mut a = engine(&conf, &t);
    assert_eq!(process(&mut a, &batch).await.len(), 1);
    assert!(
        process(&mut a, &batch).await.is_empty(),
        "a Lambda retry of the same batch"
    );
    let mut b = engine(&conf, &t);
    let again = process(&mut b, &batch).await;
    assert!(
        again.is_empty(),
        "the retry landing in another container: {again:?}"
    );
}

fn fixture_files() -> Vec<PathBuf> {
    let (files, errors) =
        logwarden::replay::expand_paths(&[
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
        ]);
    assert!(errors.is_empty());
    files
}

/// (rule, log group, key) of each alert, sorted.
fn shape(alerts: &[Alert]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a.rule.clone(),
                a.log_group.clone(),
                serde_json::to_string(&a.key).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn replay_files(conf: aws_config::SdkConfig, table: String, files: Vec<PathBuf>) -> Vec<Alert> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut e = Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), table),
        EngineConfig::default(),
    );
    let opts = ReplayOptions {
        limits: Default::default(),
        log_group: None,
        log_stream: None,
        // One watermark for the final sweep of every instance.
        now: Some(logwarden::time::parse_rfc3339("2026-11-22T10:10:00Z").unwrap()),
        engine: EngineConfig::default(),
        threads: 1,
        year: None,
    };
    let mut alerts = Vec::new();
    let s = replay_with(&mut e, &rt, &files, &opts, &mut |a| {
        alerts.extend_from_slice(a);
        Ok(())
    })
    .unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    alerts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_instances_give_the_alerts_of_one() {
    let Some(ep) = moto("two_concurrent_instances_give_the_alerts_of_one") else {
        return;
    };
    let conf = aws(&ep).await;
    let files = fixture_files();
    let sequential_table = table(&conf).await;
    let shared_table = table(&conf).await;
    let (c1, t1, f1) = (conf.clone(), sequential_table, files.clone());
    let sequential = tokio::task::spawn_blocking(move || replay_files(c1, t1, f1))
        .await
        .unwrap();
    let (odd, even): (Vec<_>, Vec<_>) =
        files.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
    let odd: Vec<PathBuf> = odd.into_iter().map(|(_, f)| f).collect();
    let even: Vec<PathBuf> = even.into_iter().map(|(_, f)| f).collect();
    let (c2, t2) = (conf.clone(), shared_table.clone());
    let (c3, t3) = (conf.clone(), shared_table);
    let one = tokio::task::spawn_blocking(move || replay_files(c2, t2, odd));
    let two = tokio::task::spawn_blocking(move || replay_files(c3, t3, even));
    let mut concurrent = one.await.unwrap();
    concurrent.extend(two.await.unwrap());
    // Firings. Resolutions depend on each replay's own end (its sweep is at
    // its last event), but no incident resolves twice.
    let firing = |v: &[Alert]| -> Vec<Alert> {
        v.iter()
            .filter(|a| !a.status.is_resolved())
            .cloned()
            .collect()
    };
    let mut resolved: Vec<&str> = concurrent
        .iter()
        .filter(|a| a.status.is_resolved())
        .map(|a| a.id.as_str())
        .collect();
    let n = resolved.len();
    resolved.sort_unstable();
    resolved.dedup();
    assert_eq!(resolved.len(), n, "an incident resolved twice");
    let (concurrent, sequential) = (firing(&concurrent), firing(&sequential));
    assert_eq!(sequential.len(), 24);
    assert_eq!(shape(&concurrent), shape(&sequential));
}

/// Cost: DynamoDB requests per batch grow with the distinct keys a batch
/// touches, not with its events. Over the fixtures by default; point
/// `LOGWARDEN_COST_CORPUS` at a directory of batches (e.g. a corpus from
/// ../shared/bench/gen.py) to measure that instead.
#[test]
fn requests_per_batch_stay_small() {
    let Some(ep) = moto("requests_per_batch_stay_small") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let conf = rt.block_on(aws(&ep));
    let t = rt.block_on(table(&conf));
    let files = match std::env::var_os("LOGWARDEN_COST_CORPUS") {
        Some(dir) => {
            let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .starts_with("batch-")
                })
                .collect();
            v.sort();
            v
        }
        None => fixture_files(),
    };
    let mut e = Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), &t),
        EngineConfig::default(),
    );
    let opts = ReplayOptions {
        limits: Default::default(),
        log_group: None,
        log_stream: None,
        now: None,
        engine: EngineConfig::default(),
        threads: 1,
        year: None,
    };
    let s = replay_with(&mut e, &rt, &files, &opts, &mut |_| Ok(())).unwrap();
    let requests = e.store_mut().requests();
    let per_batch = requests as f64 / s.batches as f64;
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    eprintln!(
        "dynamodb cost: {} batches, {} events, {} requests, {per_batch:.2} requests/batch, {:.1} events/request, {:.0} input bytes/request",
        s.batches,
        s.events,
        requests,
        s.events as f64 / requests as f64,
        bytes as f64 / requests as f64
    );
    // Per batch: one read of every touched key, one transactional write,
    // plus a read and a write to confirm each batch's alerts, and the final sweep.
    assert!(per_batch <= 5.0, "{per_batch} requests per batch");
    assert!(s.events as f64 / requests as f64 > 5.0);
}

/// Regression: an alert in flight (stored, not yet confirmed) was sent again by
/// another container whose batch touched the same incident.
#[tokio::test]
async fn an_unconfirmed_alert_is_resent_only_by_a_retry_of_its_own_batch() {
    let Some(ep) = moto("an_unconfirmed_alert_is_resent_only_by_a_retry_of_its_own_batch") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = table(&conf).await;
    let (mut a, mut b) = (engine(&conf, &t), engine(&conf, &t));
    let burst = p("/aws/lambda/auth", "s1", &sshd(T, 10, "192.0.2.9", 100));
    let text = burst.to_string();
    let payload = ingest::parse_payload(text.as_bytes()).unwrap();
    // Container A raises the alert and has not confirmed delivery yet.
    assert_eq!(a.process(&payload).await.unwrap().alerts.len(), 1);
    // Container B's batch folds into the same incident: it must not send it.
    let more = process(
        &mut b,
        &p(
            "/aws/lambda/auth",
            "s2",
            &sshd(T + 15_000, 3, "192.0.2.9", 900),
        ),
    )
    .await;
    assert!(more.is_empty(), "{more:?}");
    // A's delivery failed, so Lambda retries A's batch: now it goes out.
    let retry = a.process(&payload).await.unwrap();
    assert_eq!(retry.alerts.len(), 1);
    let ids: Vec<String> = retry.alerts.iter().map(|x| x.id.clone()).collect();
    a.confirm(&ids).await.unwrap();
    assert!(a.process(&payload).await.unwrap().alerts.is_empty());
}

#[tokio::test]
async fn a_burst_in_one_engine_then_a_login_in_another_is_brute_force_success() {
    let Some(ep) = moto("a_burst_in_one_engine_then_a_login_in_another_is_brute_force_success")
    else {
        return;
    };
    let conf = aws(&ep).await;
    let t = table(&conf).await;
    let (mut a, mut b) = (engine(&conf, &t), engine(&conf, &t));
    let g = "/ec2/bastion/auth";
    let burst = process(&mut a, &p(g, "s1", &sshd(T, 12, "203.0.113.7", 1000))).await;
    assert_eq!(burst.len(), 1, "{burst:?}");
    assert_eq!(burst[0].rule, "failed-auth-burst");
    let login = |t: i64, ip: &str| {
        vec![(
            t,
            format!("sshd[77]: Accepted password for root from {ip} port 2222 ssh2"),
        )]
    };
    // Another source's login, then the attacker's 4 minutes after the burst.
    let other = process(&mut b, &p(g, "s2", &login(T + 60_000, "198.51.100.1"))).await;
    assert!(other.is_empty(), "{other:?}");
    let got = process(&mut b, &p(g, "s2", &login(T + 240_000, "203.0.113.7"))).await;
    // The burst, quiet for twice its window, resolves (engine 2 read it for
    // the sequence); the sequence still sees it.
    let (resolved, got): (Vec<Alert>, Vec<Alert>) =
        got.into_iter().partition(|a| a.status.is_resolved());
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0].id, burst[0].id);
    assert_eq!(got.len(), 1, "{got:?}");
    let s = &got[0];
    assert_eq!(s.rule, "brute-force-success");
    let j = serde_json::to_value(s).unwrap();
    assert_eq!(
        (&j["kind"], &j["severity"]),
        (&json!("sequence"), &json!("critical"))
    );
    assert_eq!(s.key["source_ip"], "203.0.113.7");
    assert!(
        s.evidence[0].contains(&burst[0].id),
        "links the burst: {:?}",
        s.evidence
    );
    assert_eq!(s.metrics.get("seconds_after_first_step"), Some(&231.0));
    // A login long after the burst (in a fresh engine) stays silent.
    let mut c = engine(&conf, &t);
    let late = process(&mut c, &p(g, "s3", &login(T + 31 * 60_000, "203.0.113.7"))).await;
    assert!(late.is_empty(), "{late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_sweeping_one_table_at_once_resolve_an_incident_once() {
    let Some(ep) = moto("two_engines_sweeping_one_table_at_once_resolve_an_incident_once") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = table(&conf).await;
    let (mut a, mut b) = (engine(&conf, &t), engine(&conf, &t));
    let g = "/ec2/bastion/auth";
    let mut fired = Vec::new();
    for (i, ip) in ["203.0.113.7", "203.0.113.8", "203.0.113.9"]
        .iter()
        .enumerate()
    {
        let at = T + i as i64 * 20_000;
        fired.extend(process(&mut a, &p(g, "s1", &sshd(at, 12, ip, 1000 + i * 100))).await);
    }
    assert_eq!(fired.len(), 3, "{fired:?}");
    // Both scheduled sweeps at once, ten minutes on: each incident resolves
    // in one of them, never in both (a stale write conflicts and the
    // loser's rerun finds it resolved).
    let (ra, rb) = tokio::join!(a.sweep(T + 600_000), b.sweep(T + 600_000));
    let mut resolved: Vec<String> = ra
        .unwrap()
        .alerts
        .into_iter()
        .chain(rb.unwrap().alerts)
        .inspect(|r| assert!(r.status.is_resolved(), "{r:?}"))
        .map(|r| r.id)
        .collect();
    resolved.sort();
    let mut want: Vec<String> = fired.iter().map(|f| f.id.clone()).collect();
    want.sort();
    assert_eq!(resolved, want);
}

#[tokio::test]
async fn an_incident_stored_by_the_previous_version_still_folds_and_never_resolves() {
    let Some(ep) =
        moto("an_incident_stored_by_the_previous_version_still_folds_and_never_resolves")
    else {
        return;
    };
    let conf = aws(&ep).await;
    let t = table(&conf).await;
    let g = "/ec2/bastion/auth";
    // The item the version before resolutions wrote for a burst's incident.
    let key = logwarden::detect::StateKey::incident(
        "failed-auth-burst",
        g,
        &[("source_ip".to_string(), "203.0.113.7".to_string())].into(),
    )
    .into_string();
    let old = r#"{"type":"incident","id":"0123456789abcdef0123456789abcdef","until":UNTIL,"count":10,"requests":[1]}"#
        .replace("UNTIL", &(T + 600_000).to_string());
    let mut store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), &t);
    logwarden::state::StateStore::save(
        &mut store,
        vec![logwarden::state::Write {
            key,
            value: Some(serde_json::from_str(&old).unwrap()),
            expires_at: T + 600_000,
            expected_version: 0,
        }],
    )
    .await
    .unwrap();
    let mut a = engine(&conf, &t);
    // Within its realert span, a new burst folds into it, as before.
    let got = process(
        &mut a,
        &p(g, "s1", &sshd(T + 60_000, 12, "203.0.113.7", 1000)),
    )
    .await;
    assert!(got.is_empty(), "{got:?}");
    // It has no resolution to give: the sweep sends nothing for it.
    assert!(a.sweep(T + 3_600_000).await.unwrap().alerts.is_empty());
    // Past its span, the next burst is a new incident, which does resolve.
    let next = process(
        &mut a,
        &p(g, "s1", &sshd(T + 4_000_000, 12, "203.0.113.7", 2000)),
    )
    .await;
    assert_eq!(next.len(), 1, "{next:?}");
    assert_ne!(next[0].id, "0123456789abcdef0123456789abcdef");
    let later = a.sweep(T + 5_000_000).await.unwrap().alerts;
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!(
        (later[0].id.as_str(), later[0].status.is_resolved()),
        (next[0].id.as_str(), true)
    );
}
