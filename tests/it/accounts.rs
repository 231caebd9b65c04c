//! One security account watching many: Kinesis events from two regions
//! carrying payloads of three member accounts, through the detector's
//! handler. Every alert names its account, region and team, its links open
//! its region (through the access portal when one is set), and state is
//! kept per account and region.

use std::sync::Arc;

use lambda_runtime::{Context, LambdaEvent};
use logwarden::engine::{Engine, EngineConfig, PlaceSettings};
use logwarden::handler::{Delivery, DetectorService};
use logwarden::ingest::Limits;
use logwarden::rules::RuleSet;
use logwarden::state::MemoryStore;
use logwarden::time::FixedClock;
use serde_json::{Value, json};

use crate::support::b64gz;

const T: i64 = 1_795_341_600_000;
const CENTRAL: &str = "111111111111";
const ACCOUNTS: &str = r#"accounts:
  "222222222222": {name: payments-prod, team: payments}
  "333333333333": {name: search-prod, team: search}
  "444444444444": {name: identity-prod, team: identity}
"#;

fn config(portal: bool) -> EngineConfig {
    PlaceSettings {
        region: "us-east-1",
        home_region: Some("us-east-1"),
        home_account: Some(CENTRAL),
        accounts: Some((ACCOUNTS, "LOGWARDEN_ACCOUNTS")),
        access_portal_url: portal.then_some("https://d-1234567890.awsapps.com/start"),
        access_role: portal.then_some("SecurityResponder"),
    }
    .engine_config()
    .unwrap()
}

fn service(config: EngineConfig) -> DetectorService<MemoryStore> {
    let engine = Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        MemoryStore::new(),
        config,
    );
    DetectorService::new(
        engine,
        Limits::default(),
        "logwarden-detector".into(),
        Box::new(FixedClock(T + 3_600_000)),
        Delivery::Log,
    )
}

fn payload(owner: &str, group: &str, events: &[(i64, String)]) -> Value {
    json!({
        "messageType": "DATA_MESSAGE", "owner": owner, "logGroup": group,
        "logStream": "2026/11/22/[$LATEST]0123", "subscriptionFilters": ["logwarden-org"],
        "logEvents": events.iter().enumerate()
            .map(|(i, (t, m))| json!({"id": i.to_string(), "timestamp": t, "message": m}))
            .collect::<Vec<_>>()
    })
}

/// A Kinesis event of the central stream in `region`, one record per
/// payload. `arn_only` leaves `awsRegion` out: the region is then read from
/// `eventSourceARN`.
fn kinesis(region: &str, arn_only: bool, payloads: &[Value]) -> Value {
    let records: Vec<Value> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut r = json!({
                "kinesis": {"data": b64gz(p), "sequenceNumber": format!("{region}-{i}"), "partitionKey": "p"},
                "eventSource": "aws:kinesis",
                "eventID": format!("shardId-000000000000:{region}-{i}"),
                "eventSourceARN": format!("arn:aws:kinesis:{region}:{CENTRAL}:stream/logwarden-logs"),
            });
            if !arn_only {
                r["awsRegion"] = region.into();
            }
            r
        })
        .collect();
    json!({ "Records": records })
}

/// Ten failed logins from one address within a minute: one failed-auth-burst.
fn burst() -> Vec<(i64, String)> {
    (0..10)
        .map(|i| {
            (
                T + i * 1_000,
                format!(
                    "{{\"event\": \"login_failed\", \"source_ip\": \"203.0.113.7\", \"user\": \"u{i}\"}}"
                ),
            )
        })
        .collect()
}

async fn alerts(svc: &DetectorService<MemoryStore>, ev: Value) -> Vec<Value> {
    let ev_is_kinesis = ev.get("Records").is_some();
    let mut out = Vec::new();
    let r = svc
        .call(LambdaEvent::new(ev, Context::default()), &mut out)
        .await
        .unwrap();
    if ev_is_kinesis {
        assert_eq!(r, json!({"batchItemFailures": []}));
    }
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l.get("rule").is_some())
        .collect()
}

/// Four incidents, one per (account, region), of the same function, source
/// and time: A and B from eu-west-1, B and C from ap-southeast-2.
async fn four_incidents(portal: bool) -> Vec<Value> {
    let svc = service(config(portal));
    let g = "/aws/lambda/auth";
    let mut got = alerts(
        &svc,
        kinesis(
            "eu-west-1",
            false,
            &[
                payload("222222222222", g, &burst()),
                payload("333333333333", g, &burst()),
            ],
        ),
    )
    .await;
    got.extend(
        alerts(
            &svc,
            kinesis(
                "ap-southeast-2",
                true,
                &[
                    payload("333333333333", g, &burst()),
                    payload("444444444444", g, &burst()),
                ],
            ),
        )
        .await,
    );
    got
}

#[tokio::test]
async fn every_alert_names_its_account_region_and_team() {
    let got = four_incidents(false).await;
    let whose: Vec<(&str, &str, &str, &str)> = got
        .iter()
        .map(|a| {
            assert_eq!(a["rule"], "failed-auth-burst");
            (
                a["account"].as_str().unwrap(),
                a["region"].as_str().unwrap(),
                a["account_name"].as_str().unwrap(),
                a["team"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        whose,
        [
            ("222222222222", "eu-west-1", "payments-prod", "payments"),
            ("333333333333", "eu-west-1", "search-prod", "search"),
            ("333333333333", "ap-southeast-2", "search-prod", "search"),
            (
                "444444444444",
                "ap-southeast-2",
                "identity-prod",
                "identity"
            ),
        ]
    );
    // Same rule, group, key and first event time: four incidents, four ids.
    let mut ids: Vec<&str> = got.iter().map(|a| a["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "{ids:?}");
    for a in &got {
        assert_eq!(a["log_group"], "/aws/lambda/auth");
        assert_eq!(a["count"], 10);
        let region = a["region"].as_str().unwrap();
        for link in [&a["links"]["log_stream"], &a["links"]["insights"]] {
            let link = link.as_str().unwrap();
            let console =
                format!("https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#");
            assert!(link.starts_with(&console), "{link}");
        }
    }
}

#[tokio::test]
async fn with_an_access_portal_links_sign_into_the_alerts_account() {
    let got = four_incidents(true).await;
    assert_eq!(got.len(), 4);
    for a in &got {
        let (account, region) = (
            a["account"].as_str().unwrap(),
            a["region"].as_str().unwrap(),
        );
        for link in [&a["links"]["log_stream"], &a["links"]["insights"]] {
            let link = link.as_str().unwrap();
            let head = format!(
                "https://d-1234567890.awsapps.com/start/#/console?account_id={account}&role_name=SecurityResponder&destination="
            );
            let dest = link.strip_prefix(&head).unwrap_or_else(|| panic!("{link}"));
            let decoded = logwarden::alert::links::decodings(dest).unwrap();
            let console =
                format!("https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#");
            assert!(decoded[1].starts_with(&console), "{}", decoded[1]);
        }
    }
    // The same incidents have the same ids with or without the portal.
    let plain: Vec<Value> = four_incidents(false).await;
    let ids = |v: &[Value]| v.iter().map(|a| a["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&got), ids(&plain));
}

#[tokio::test]
async fn a_region_that_is_not_a_region_code_is_not_put_in_a_link() {
    let svc = service(config(false));
    let mut ev = kinesis(
        "eu-west-1",
        false,
        &[payload("222222222222", "/aws/lambda/auth", &burst())],
    );
    ev["Records"][0]["awsRegion"] = "evil.example/#".into();
    ev["Records"][0]["eventSourceARN"] = "arn:aws:kinesis:evil.example:1:stream/x".into();
    let got = alerts(&svc, ev).await;
    assert_eq!(got.len(), 1);
    // Unknown region: the home region, never the hostile text.
    assert_eq!(got[0]["region"], "us-east-1");
    assert!(!got[0].to_string().contains("evil"), "{}", got[0]);
}

/// REPORT lines of `n` invocations around `ms`, ±10 %, from `start`.
fn reports(start: i64, n: i64, ms: f64) -> Vec<(i64, String)> {
    (0..n)
        .map(|i| {
            let d = ms * (0.9 + 0.2 * ((i * 7 % 11) as f64 / 10.0));
            (
                start + i * 10_000,
                format!(
                    "REPORT RequestId: r{start}-{i}\tDuration: {d:.2} ms\tBilled Duration: {} ms\tMemory Size: 512 MB\tMax Memory Used: 90 MB\t\n",
                    d.ceil()
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_same_function_in_two_accounts_keeps_two_baselines() {
    let svc = service(config(false));
    let g = "/aws/lambda/checkout";
    // payments' checkout takes ~100 ms, search's ~3 s: one baseline for both
    // would see search's every invocation as 30 times too slow.
    let warm = kinesis(
        "eu-west-1",
        false,
        &[
            payload("222222222222", g, &reports(T, 25, 100.0)),
            payload("333333333333", g, &reports(T, 25, 3_000.0)),
        ],
    );
    let got = alerts(&svc, warm).await;
    assert!(got.is_empty(), "{got:#?}");
    // Ten times search's own baseline: one alert, for search, against ~3 s.
    let slow = vec![(
        T + 600_000,
        "REPORT RequestId: slow\tDuration: 30000.00 ms\tBilled Duration: 30000 ms\tMemory Size: 512 MB\tMax Memory Used: 90 MB\t\n".to_string(),
    )];
    let got = alerts(
        &svc,
        kinesis("eu-west-1", false, &[payload("333333333333", g, &slow)]),
    )
    .await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["rule"], "duration-anomaly");
    assert_eq!(got[0]["account"], "333333333333");
    assert_eq!(got[0]["team"], "search");
    let baseline = got[0]["metrics"]["baseline_ms"].as_f64().unwrap();
    assert!((2_500.0..3_500.0).contains(&baseline), "{baseline}");
}

#[tokio::test]
async fn the_home_account_in_the_home_region_keeps_the_single_account_ids() {
    // A central detector (home account set) and a single-account one (home
    // learnt from the first payload) give the home account's incident one id.
    let home = payload(CENTRAL, "/aws/lambda/auth", &burst());
    let central = alerts(
        &service(config(false)),
        kinesis("us-east-1", false, std::slice::from_ref(&home)),
    )
    .await;
    let single = alerts(
        &service(EngineConfig::default()),
        json!({"awslogs": {"data": b64gz(&home)}}),
    )
    .await;
    assert_eq!(central.len(), 1);
    assert_eq!(central[0]["id"], single[0]["id"]);
    assert_eq!(central[0]["account"], CENTRAL);
    assert_eq!(single[0]["region"], "us-east-1");
    // The CLI's home region is the first one read: a replay of one region's
    // events keeps its ids whatever the default region (`--region`) is.
    let from_eu = kinesis("eu-west-1", false, std::slice::from_ref(&home));
    let cli_default = alerts(&service(EngineConfig::default()), from_eu.clone()).await;
    let cli_eu = EngineConfig {
        region: "eu-west-1".into(),
        ..EngineConfig::default()
    };
    let cli_eu = alerts(&service(cli_eu), from_eu).await;
    assert_eq!(cli_default[0]["id"], cli_eu[0]["id"]);
    assert_eq!(cli_default[0]["id"], single[0]["id"]);
    assert_eq!(cli_default[0]["region"], "eu-west-1");
    // The same payload from another region is another incident.
    let other = alerts(
        &service(config(false)),
        kinesis("eu-west-1", false, &[home]),
    )
    .await;
    assert_ne!(other[0]["id"], central[0]["id"]);
}

#[tokio::test]
async fn a_deadline_alert_of_the_sweep_names_the_member_account_too() {
    // The sweep has no batch: the account and region come back from the
    // place in the state key, and the accounts map names them.
    let svc = service(config(false));
    let start = vec![(
        T,
        "START RequestId: 9b2f0c1e-0bad-4a6e-9c1d-000000000bad Version: $LATEST\n".to_string(),
    )];
    let got = alerts(
        &svc,
        kinesis(
            "ap-southeast-2",
            false,
            &[payload("444444444444", "/aws/lambda/upload", &start)],
        ),
    )
    .await;
    assert!(got.is_empty(), "{got:#?}");
    let sweep = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": CENTRAL, "time": "2026-11-22T11:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
    let got = alerts(&svc, sweep).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let a = &got[0];
    assert_eq!(a["rule"], "missing-end");
    assert_eq!(a["log_group"], "/aws/lambda/upload");
    assert_eq!(a["function"], "upload");
    assert_eq!(
        (&a["account"], &a["region"], &a["team"]),
        (
            &json!("444444444444"),
            &json!("ap-southeast-2"),
            &json!("identity")
        )
    );
    let link = a["links"]["log_stream"].as_str().unwrap();
    assert!(
        link.starts_with("https://ap-southeast-2.console.aws.amazon.com/"),
        "{link}"
    );
}

#[test]
fn the_cli_checks_the_accounts_map_and_the_portal_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("accounts.yaml");
    std::fs::write(
        &map,
        "accounts:\n  \"123456789012\": {name: ok}\n  \"1234\": {name: short}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_logwarden"))
            .args(["replay", "--output", "json"])
            .args(args)
            .arg("fixtures/envelopes/kinesis-event.json")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("LOGWARDEN_ACCOUNTS")
            .env_remove("LOGWARDEN_ACCESS_PORTAL_URL")
            .env_remove("LOGWARDEN_ACCESS_ROLE")
            .output()
            .unwrap()
    };
    let out = run(&["--accounts", map.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3: account id `1234`", map.display())),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let out = run(&[
        "--access-portal-url",
        "http://d-1.awsapps.com/start",
        "--access-role",
        "R",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must start with https://"));
    // A good map names the account in every alert of the replay.
    std::fs::write(
        &map,
        "accounts:\n  \"123456789012\": {name: payments-prod, team: payments}\n",
    )
    .unwrap();
    let out = run(&["--accounts", map.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!alerts.is_empty());
    for a in &alerts {
        assert_eq!(
            (&a["team"], &a["region"]),
            (&json!("payments"), &json!("eu-west-1"))
        );
    }
}
