//! Attacker-controlled log content: logwarden must never become a channel for
//! the attacker. Secrets planted in log lines (and in the captured key) never
//! leave in any output; control sequences are shown, not obeyed; an alert
//! storm is folded into a digest; logwarden's own log groups are ignored.
//!
//! The SNS and Slack tests need the services `.ci/run` starts (`MOTO_ENDPOINT`,
//! `WEBHOOK_SINK`) and skip, saying so, without them.

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use lambda_runtime::{Context, LambdaEvent};
use logwarden::alert::{Alert, email, text};
use logwarden::engine::{DIGEST_RULE, Engine, EngineConfig, Safeguards};
use logwarden::handler::{Delivery, DetectorService};
use logwarden::ingest::{self, Limits};
use logwarden::rules::RuleSet;
use logwarden::state::MemoryStore;
use logwarden::time::FixedClock;
use serde_json::{Value, json};
use support::*;

const T: i64 = 1_795_341_600_000;

/// One secret of each kind, in real shapes: `(kind, what the log carries as
/// the key and in its lines, the part that must never leave)`.
/// Kinds among [`SECRETS`] that `secret-in-logs` alerts on (it leaves out
/// `password` pairs and card numbers, too common to alert on).
const SECRET_KINDS_ALERTED: usize = 7;

const SECRETS: &[(&str, &str, &str)] = &[
    (
        "aws-access-key-id",
        "AKIAIOSFODNN7EXAMPLE",
        "AKIAIOSFODNN7EXAMPLE",
    ),
    (
        "aws-access-key-id",
        "creds ASIAY34FZKBOKMUTVV7A",
        "ASIAY34FZKBOKMUTVV7A",
    ),
    (
        "aws-secret-key",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "aws-secret-key",
        r#"{"SecretAccessKey":"9drTJvcXLB89EXAMPLELB8923FB892xMFI+Z8sNqT"}"#,
        "9drTJvcXLB89EXAMPLELB8923FB892xMFI+Z8sNqT",
    ),
    (
        "bearer-token",
        "Authorization: Bearer 8f2b1c9d0e7a6b5c4d3e2f1a",
        "8f2b1c9d0e7a6b5c4d3e2f1a",
    ),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
        "eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    ),
    (
        "url-password",
        "https://deploy:Hunt3r-2-Pass@git.example.com/repo.git",
        "Hunt3r-2-Pass",
    ),
    ("password", "password=Sup3r-S3cret-99", "Sup3r-S3cret-99"),
    (
        "password",
        r#"{"Password":"c0rrect horse battery"}"#,
        "c0rrect horse",
    ),
    ("password", "PASSWD: Tr0ub4dor-and-3", "Tr0ub4dor-and-3"),
    (
        "private-key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx9Jd2kLq\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAx9Jd2kLq",
    ),
    (
        "slack-token",
        "xoxb-2048-5120-Zk9QxR2v8LmNpQrStUv",
        "Zk9QxR2v8LmNpQrStUv",
    ),
    ("card-number", "4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("card-number", "5500-0000-0000-0004", "5500-0000-0000-0004"),
];

/// Ten failed logins whose source (the rule's key) and text carry `planted`:
/// one alert per payload, with the secret in the key, title, summary and
/// evidence. Lines are JSON, so quotes and line breaks in `planted` arrive
/// JSON-escaped in the evidence and raw in the key.
fn storm_of_logins(group: &str, planted: &str, t0: i64) -> Value {
    let lines: Vec<(i64, String)> = (0..10)
        .map(|i| {
            (
                t0 + i * 1_000,
                json!({"event": "login_failed", "source_ip": planted, "user": planted,
                       "detail": format!("rejected login {i}: {planted}")})
                .to_string(),
            )
        })
        .collect();
    let events: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
    payload(group, "2026/11/22/[$LATEST]0123abcd", &events)
}

/// One payload per secret, as NDJSON (each batch raises one alert).
fn secrets_file(dir: &Path) -> std::path::PathBuf {
    let mut ndjson = String::new();
    for (i, (_, planted, _)) in SECRETS.iter().enumerate() {
        ndjson.push_str(
            &storm_of_logins("/aws/lambda/auth-api", planted, T + i as i64 * 60_000).to_string(),
        );
        ndjson.push('\n');
    }
    let path = dir.join("secrets.ndjson");
    std::fs::write(&path, ndjson).unwrap();
    path
}

fn logwarden(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logwarden"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for v in [
        "LOGWARDEN_MAX_DECODED_BYTES",
        "LOGWARDEN_REDACT_EMAILS",
        "LOGWARDEN_MAX_ALERTS_PER_BATCH",
        "LOGWARDEN_IGNORE_LOG_GROUPS",
        "LOGWARDEN_TOPIC_ARN",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

/// `replay --output json --sink sns` of `file` to `topic_arn` in moto at `ep`.
fn replay_to_sns(ep: &str, topic_arn: &str, file: &Path) -> Output {
    logwarden(
        &[
            "replay",
            "--output",
            "json",
            "--sink",
            "sns",
            "--sns-topic-arn",
            topic_arn,
            file.to_str().unwrap(),
        ],
        &[
            ("AWS_ENDPOINT_URL", ep),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    )
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Every secret is absent from `what`, which still says where one was.
fn assert_no_secret(what: &str, where_: &str) {
    for (kind, _, secret) in SECRETS {
        assert!(
            !what.contains(secret),
            "{kind} secret `{secret}` leaked in {where_}:\n{what}"
        );
        // The JSON-escaped form of the secret must not leak either.
        let escaped = serde_json::to_string(secret).unwrap();
        assert!(
            !what.contains(escaped.trim_matches('"')),
            "{kind} secret leaked (JSON-escaped) in {where_}"
        );
    }
}

fn parse_lines(s: &str) -> Vec<Alert> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn replay_text_and_json_never_show_a_planted_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = secrets_file(dir.path());
    let file = file.to_str().unwrap();
    let json_out = stdout(&logwarden(&["replay", "--output", "json", file], &[]));
    // Firings: the incidents that went quiet also resolve (copies of their
    // firings, checked for secrets with the rest of the output below).
    let (alerts, leaks): (Vec<Alert>, Vec<Alert>) = parse_lines(&json_out)
        .into_iter()
        .filter(|a| !a.status.is_resolved())
        .partition(|a| a.rule == "failed-auth-burst");
    // secret-in-logs sees the planted secrets too: one alert per kind it
    // watches (one incident per kind and log group), naming the kind only.
    let leaked: BTreeSet<&str> = leaks
        .iter()
        .filter(|a| a.rule == "secret-in-logs")
        .map(|a| a.key["kind"].as_str())
        .collect();
    assert_eq!(
        leaked,
        BTreeSet::from([
            "aws-access-key-id",
            "aws-secret-key",
            "bearer-token",
            "jwt",
            "private-key",
            "slack-token",
            "url-password"
        ]),
        "{json_out}"
    );
    // One alert per kind. The helper's payloads reuse event ids 0..9; replay
    // confirms each payload's alerts before the next, so a later payload is
    // not taken for a redelivery that must re-send a pending alert.
    assert_eq!(leaks.len(), SECRET_KINDS_ALERTED, "{json_out}");
    assert_eq!(leaked.len(), SECRET_KINDS_ALERTED, "{json_out}");
    assert_eq!(
        alerts.len(),
        SECRETS.len(),
        "one alert per planted secret:\n{json_out}"
    );
    assert_no_secret(&json_out, "replay --output json");
    for (a, (kind, _, _)) in alerts.iter().zip(SECRETS) {
        let marker = format!("[REDACTED:{kind}]");
        assert!(a.key["source_ip"].contains(&marker), "key of {kind}: {a:?}");
        assert!(a.title.contains(&marker), "title of {kind}: {}", a.title);
        assert!(a.summary.contains(&marker), "summary of {kind}");
        assert!(
            a.evidence.iter().all(|e| e.contains(&marker)),
            "evidence of {kind}: {:?}",
            a.evidence
        );
        assert!(a.evidence.iter().all(|e| e.chars().count() <= 512));
        assert_eq!(a.rule, "failed-auth-burst");
        assert_eq!(a.count, 10);
    }
    // Ids come from the raw key: distinct secrets of one kind stay distinct
    // incidents although their redacted keys look alike.
    let ids: BTreeSet<&str> = alerts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), SECRETS.len());

    let text_out = stdout(&logwarden(&["replay", file], &[]));
    assert_no_secret(&text_out, "replay text");
    // Each firing and each resolution of the bursts is one alert in the text.
    let bursts_printed = parse_lines(&json_out)
        .iter()
        .filter(|a| a.rule == "failed-auth-burst")
        .count();
    assert_eq!(
        text_out.matches("[HIGH] failed-auth-burst").count(),
        bursts_printed
    );
}

#[test]
fn alert_ids_are_the_same_with_and_without_redaction() {
    // The id is the fingerprint of the raw key, so ids stored by an older
    // version (or computed by another container) still match.
    let key = logwarden::detect::Key::from([("source_ip".to_string(), SECRETS[0].1.to_string())]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.json");
    std::fs::write(
        &path,
        storm_of_logins("/aws/lambda/auth-api", SECRETS[0].1, T).to_string(),
    )
    .unwrap();
    let mut out = parse_lines(&stdout(&logwarden(
        &["replay", "--output", "json", path.to_str().unwrap()],
        &[],
    )));
    out.retain(|a| a.rule == "failed-auth-burst");
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].id,
        logwarden::alert::fingerprint("failed-auth-burst", "/aws/lambda/auth-api", &key, T)
    );
    assert_eq!(out[0].key["source_ip"], "[REDACTED:aws-access-key-id]");
}

#[test]
fn emails_are_redacted_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.json");
    let planted = "mallory.attacker+x@evil.example";
    std::fs::write(
        &path,
        storm_of_logins("/aws/lambda/auth-api", planted, T).to_string(),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let off = stdout(&logwarden(&["replay", "--output", "json", p], &[]));
    assert!(off.contains(planted), "emails stay by default: {off}");
    let on = stdout(&logwarden(
        &["replay", "--output", "json", "--redact-emails", p],
        &[],
    ));
    assert!(!on.contains("mallory"), "{on}");
    assert!(on.contains("[REDACTED:email]"));
    let env = stdout(&logwarden(
        &["replay", "--output", "json", p],
        &[("LOGWARDEN_REDACT_EMAILS", "true")],
    ));
    assert!(!env.contains("mallory") && env.contains("[REDACTED:email]"));
}

#[test]
fn ordinary_log_lines_are_not_redacted() {
    // The login burst fixture: passwords are mentioned, none is present.
    let out = stdout(&logwarden(
        &["replay", "--output", "json", "fixtures/auth/"],
        &[],
    ));
    let alerts = parse_lines(&out);
    assert!(!alerts.is_empty());
    assert!(!out.contains("[REDACTED"), "{out}");
    assert!(
        alerts
            .iter()
            .flat_map(|a| &a.evidence)
            .any(|e| e.contains(r#""user": "admin", "reason": "bad_password"}"#)),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// Console links
// ---------------------------------------------------------------------------

/// Where a planted secret goes in [`links_file`]: the log group name, the
/// log stream name, or the request id (with the key, so that the request id
/// is what the Insights link would filter on).
const PLACES: [&str; 3] = ["log group", "log stream", "request id"];

/// One payload per planted secret and place: ten failed logins (one alert
/// each, from a source of its own) with the secret in the log group (`/aws/lambda/<secret>`), the log
/// stream (`2026/11/22/[$LATEST]<secret>`) or the request id (and the source
/// the rule keys on, so that the link falls back to the request id).
fn links_file(dir: &Path) -> std::path::PathBuf {
    let mut ndjson = String::new();
    let mut n = 0;
    for (i, (_, planted, _)) in SECRETS.iter().enumerate() {
        // A source per secret: one incident each, whatever the realert period.
        let source_ip = format!("198.51.100.{i}");
        for place in PLACES {
            let (group, stream, source) = match place {
                "log group" => (
                    format!("/aws/lambda/{planted}"),
                    "2026/11/22/[$LATEST]0123abcd".to_string(),
                    source_ip.as_str(),
                ),
                "log stream" => (
                    "/aws/lambda/auth-api".to_string(),
                    format!("2026/11/22/[$LATEST]{planted}"),
                    source_ip.as_str(),
                ),
                _ => (
                    "/aws/lambda/auth-api".to_string(),
                    "2026/11/22/[$LATEST]0123abcd".to_string(),
                    *planted,
                ),
            };
            let request_id = if place == "request id" {
                planted.to_string()
            } else {
                "c0ffee00-0000-4a6e-9c1d-000000000001".to_string()
            };
            let t0 = T + n * 60_000;
            n += 1;
            let lines: Vec<(i64, String)> = (0..10)
                .map(|i| {
                    (
                        t0 + i * 1_000,
                        json!({"event": "login_failed", "source_ip": source,
                               "requestId": request_id, "user": "alice"})
                        .to_string(),
                    )
                })
                .collect();
            let events: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
            ndjson.push_str(&payload(&group, &stream, &events).to_string());
            ndjson.push('\n');
        }
    }
    let path = dir.join("links.ndjson");
    std::fs::write(&path, ndjson).unwrap();
    path
}

/// One round of undoing what a console link encodes: the fragment's `$XX`
/// and Insights' `*XX` are `%XX`, then percent-decoding. Written here, apart
/// from the library's own decoder, so that the test does not trust it.
fn undo_console_encoding(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if matches!(b[i], b'$' | b'*' | b'%')
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// [`assert_no_secret`] on `what` and on every round of undoing the
/// console's encodings until nothing changes.
fn assert_no_secret_decoded(what: &str, where_: &str) {
    let mut s = what.to_string();
    for round in 0.. {
        assert_no_secret(&s, &format!("{where_} (decoded {round} times)"));
        let next = undo_console_encoding(&s);
        if next == s {
            break;
        }
        s = next;
    }
}

#[test]
fn the_decoder_of_this_test_undoes_every_console_encoding() {
    let mut s = "x$252Fpassword$253DSup3r-S3cret-99$255D*20c0rrect*20horse".to_string();
    loop {
        let next = undo_console_encoding(&s);
        if next == s {
            break;
        }
        s = next;
    }
    assert_eq!(s, "x/password=Sup3r-S3cret-99] c0rrect horse");
}

#[test]
fn console_links_never_carry_a_secret_from_a_name_or_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = links_file(dir.path());
    let file = file.to_str().unwrap();
    let json_out = stdout(&logwarden(&["replay", "--output", "json", file], &[]));
    let all = parse_lines(&json_out);
    let alerts: Vec<&Alert> = all
        .iter()
        .filter(|a| a.rule == "failed-auth-burst" && !a.status.is_resolved())
        .collect();
    assert_eq!(alerts.len(), SECRETS.len() * PLACES.len(), "{json_out}");
    for a in &all {
        for l in [&a.links.log_stream, &a.links.insights]
            .into_iter()
            .flatten()
        {
            assert_no_secret_decoded(l, &format!("a link of {}", a.rule));
        }
    }
    assert_no_secret_decoded(&json_out, "replay --output json");
    // Links that would name a redacted value lead nowhere and are left out;
    // the others stay.
    for (i, a) in alerts.iter().enumerate() {
        let (kind, place) = (SECRETS[i / PLACES.len()].0, PLACES[i % PLACES.len()]);
        let marker = format!("[REDACTED:{kind}]");
        match place {
            "log group" => {
                assert!(a.log_group.contains(&marker), "{kind}: {}", a.log_group);
                assert_eq!(a.links, Default::default(), "{kind} in the group");
            }
            "log stream" => {
                let s = a.log_stream.as_deref().unwrap();
                assert!(s.contains(&marker), "{kind}: {s}");
                assert_eq!(a.links.log_stream, None, "{kind} in the stream");
                let q = a.links.insights.as_deref().unwrap();
                let needle = format!("*22198.51.100.{}*22", i / PLACES.len());
                assert!(q.contains(&needle), "{kind}: {q}");
            }
            _ => {
                assert!(a.request_ids[0].contains(&marker), "{kind}: {a:?}");
                assert!(a.links.log_stream.is_some(), "{kind} in the request id");
                let q = a.links.insights.as_deref().unwrap();
                assert!(!q.contains("filter"), "no needle is left: {q}");
            }
        }
    }
    let text_out = stdout(&logwarden(&["replay", file], &[]));
    assert_no_secret_decoded(&text_out, "replay text");
    // Each firing and each resolution of the bursts is one alert in the text.
    assert_eq!(
        text_out.matches("[HIGH] failed-auth-burst").count(),
        all.iter().filter(|a| a.rule == "failed-auth-burst").count()
    );
}

#[tokio::test]
async fn sns_never_carries_a_secret_from_a_name_or_request_id() {
    let Some(ep) = moto("sns_never_carries_a_secret_from_a_name_or_request_id") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-links"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = links_file(dir.path());
    let out = replay_to_sns(&ep, &t.topic_arn, &file);
    let printed = stdout(&out);
    assert_no_secret_decoded(&printed, "replay --sink sns stdout");
    let published = parse_lines(&printed).len();
    assert!(published >= SECRETS.len() * PLACES.len(), "{printed}");
    let got = t.drain().await;
    assert_eq!(got.len(), published);
    for n in &got {
        assert_no_secret_decoded(&n.to_string(), "the SNS notification");
    }
    let data: Value = moto_state(&ep).await;
    let topic = data["sns"]["Topic"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tp| tp.to_string().contains(&t.topic_arn))
        .unwrap();
    let sent = topic["sent_notifications"].as_array().unwrap();
    assert_eq!(sent.len(), published);
    let mut links_seen = 0;
    for s in sent {
        let structure: Value = serde_json::from_str(s[1].as_str().unwrap()).unwrap();
        let email = structure["email"].as_str().unwrap();
        links_seen += email.matches(".console.aws.amazon.com/").count();
        assert_no_secret_decoded(email, "the SNS email body");
        assert_no_secret_decoded(&s.to_string(), "the published SNS request");
    }
    assert!(
        links_seen > SECRETS.len(),
        "the emails carry the safe links"
    );
}

#[tokio::test]
async fn slack_buttons_never_carry_a_secret_from_a_name_or_request_id() {
    let Some(sink) = webhook_sink("slack_buttons_never_carry_a_secret_from_a_name_or_request_id")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = links_file(dir.path());
    let alerts = stdout(&logwarden(
        &["replay", "--output", "json", file.to_str().unwrap()],
        &[],
    ));
    // ... and alert JSON from elsewhere whose links carry every secret,
    // console-encoded: the notifier checks links too.
    let mut raw = alert_full_of_secrets();
    raw.links.log_stream = Some(logwarden::alert::links::log_stream_link(
        "us-east-1",
        &format!("/aws/lambda/{}", SECRETS[2].1),
        &format!("2026/11/22/[$LATEST]{}", SECRETS[7].1),
        T,
        T,
    ));
    raw.links.insights = Some(logwarden::alert::links::insights_link(
        "us-east-1",
        &format!("/aws/lambda/{}", SECRETS[0].1),
        Some(SECRETS[8].1),
        T,
        T,
    ));
    let raw = serde_json::to_string(&raw).unwrap();
    let input = dir.path().join("alerts.ndjson");
    std::fs::write(&input, format!("{alerts}{raw}\n")).unwrap();
    let path = format!("/slack/{}", unique("attack-links"));
    let bodies = notify_slack(&sink, &path, &input).await;
    assert_eq!(bodies.len(), parse_lines(&alerts).len() + 1);
    let mut buttons = 0;
    for b in &bodies {
        assert_no_secret_decoded(b, "the Slack webhook body");
        buttons += b.matches(".console.aws.amazon.com/").count();
    }
    assert!(buttons > SECRETS.len(), "the safe links stay as buttons");
}

/// An alert whose every text field carries every planted secret (as a
/// notifier could receive it from anything publishing to the topic).
fn alert_full_of_secrets() -> Alert {
    let all: Vec<&str> = SECRETS.iter().map(|s| s.1).collect();
    let joined = all.join(" | ");
    Alert {
        id: "0123456789abcdef0123456789abcdef".into(),
        rule: "failed-auth-burst".into(),
        kind: "threshold".into(),
        severity: "high".into(),
        title: format!("Burst ({})", SECRETS[0].1),
        summary: joined.clone(),
        account: Some("123456789012".into()),
        log_group: "/aws/lambda/auth-api".into(),
        log_stream: Some(SECRETS[7].1.into()),
        function: Some("auth-api".into()),
        key: all
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("k{i:02}"), s.to_string()))
            .collect(),
        request_ids: all.iter().map(|s| s.to_string()).collect(),
        count: 10,
        first_seen: "2026-11-22T10:00:00.000Z".into(),
        last_seen: "2026-11-22T10:00:09.000Z".into(),
        metrics: Default::default(),
        evidence: all.iter().map(|s| format!("line with {s}")).collect(),
        links: Default::default(),
        status: logwarden::alert::AlertStatus::Firing,
        resolved_at: None,
        region: None,
        account_name: None,
        team: None,
        shadow: false,
    }
}

#[tokio::test]
async fn sns_message_subject_and_attributes_never_show_a_planted_secret() {
    let Some(ep) = moto("sns_message_subject_and_attributes_never_show_a_planted_secret") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-attack"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = secrets_file(dir.path());
    let out = replay_to_sns(&ep, &t.topic_arn, &file);
    let printed = stdout(&out);
    assert_no_secret(&printed, "replay --sink sns stdout");
    let got = t.drain().await;
    // Each firing, and the resolutions replay's end printed too.
    let resolved = parse_lines(&printed)
        .iter()
        .filter(|a| a.status.is_resolved())
        .count();
    assert_eq!(
        got.len(),
        SECRETS.len() + SECRET_KINDS_ALERTED + resolved,
        "{got:?}"
    );
    for n in &got {
        let message = n["Message"].as_str().unwrap();
        let subject = n["Subject"].as_str().unwrap();
        let attrs = n["MessageAttributes"].to_string();
        assert_no_secret(message, "the SNS message (sqs/default body)");
        assert_no_secret(subject, "the SNS subject");
        assert_no_secret(&attrs, "the SNS message attributes");
        let a: Alert = serde_json::from_str(message).unwrap();
        if a.rule == "secret-in-logs" {
            // Names the kind of secret only; its evidence is redacted.
            assert!(subject.contains(&a.key["kind"]), "{subject}");
            assert!(
                a.evidence.iter().all(|e| e.contains("[REDACTED:")),
                "{message}"
            );
            continue;
        }
        assert!(subject.contains("[REDACTED:"), "{subject}");
        assert!(a.key["source_ip"].contains("[REDACTED:"));
    }
    // The email body (and every other protocol's) as published, from moto's record.
    let data: Value = moto_state(&ep).await;
    let topic = data["sns"]["Topic"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tp| tp.to_string().contains(&t.topic_arn))
        .unwrap();
    let sent = topic["sent_notifications"].as_array().unwrap();
    assert_eq!(sent.len(), got.len());
    for s in sent {
        let structure: Value = serde_json::from_str(s[1].as_str().unwrap()).unwrap();
        let email = structure["email"].as_str().unwrap();
        assert_no_secret(email, "the SNS email body");
        assert!(email.contains("[REDACTED:"), "{email}");
        assert_no_secret(&s.to_string(), "the published SNS request");
    }
}

async fn sink_bodies(sink: &str, path: &str) -> Vec<String> {
    let recs: Value = reqwest::get(format!("{sink}/requests?path={path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    recs.as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_string())
        .collect()
}

/// `logwarden notify slack` of the alert lines in `input`, posting to the
/// stand-in under `path`; what the stand-in received there.
async fn notify_slack(sink: &str, path: &str, input: &std::path::Path) -> Vec<String> {
    let out = logwarden(
        &[
            "notify",
            "slack",
            "--webhook-url",
            &format!("{sink}{path}"),
            input.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sink_bodies(sink, path).await
}

#[tokio::test]
async fn slack_body_never_shows_a_planted_secret() {
    let Some(sink) = webhook_sink("slack_body_never_shows_a_planted_secret") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = secrets_file(dir.path());
    // The engine's alerts, as `replay | notify slack` posts them ...
    let alerts = stdout(&logwarden(
        &["replay", "--output", "json", file.to_str().unwrap()],
        &[],
    ));
    // ... and unredacted alert JSON from elsewhere: Slack rendering redacts too.
    let raw = serde_json::to_string(&alert_full_of_secrets()).unwrap();
    assert!(
        raw.contains(SECRETS[0].2),
        "the raw alert does carry secrets"
    );
    let input = dir.path().join("alerts.ndjson");
    std::fs::write(&input, format!("{alerts}{raw}\n")).unwrap();
    let path = format!("/slack/{}", unique("attack"));
    let bodies = notify_slack(&sink, &path, &input).await;
    let resolved = parse_lines(&alerts)
        .iter()
        .filter(|a| a.status.is_resolved())
        .count();
    assert_eq!(
        bodies.len(),
        SECRETS.len() + SECRET_KINDS_ALERTED + resolved + 1
    );
    for b in &bodies {
        assert_no_secret(b, "the Slack webhook body");
        assert!(b.contains("[REDACTED:"), "{b}");
        let v: Value = serde_json::from_str(b).unwrap();
        assert!(v["blocks"].is_array());
    }

    // Emails: posted as they are by default, redacted with --redact-emails.
    let mut a = alert_full_of_secrets();
    a.key = [("user".to_string(), "eve@evil.example".to_string())].into();
    let input = dir.path().join("email.ndjson");
    std::fs::write(&input, serde_json::to_string(&a).unwrap() + "\n").unwrap();
    for (flag, want_email) in [(None, true), (Some("--redact-emails"), false)] {
        let path = format!("/slack/{}", unique("attack-email"));
        let url = format!("{sink}{path}");
        let mut args = vec!["notify", "slack", "--webhook-url", &url];
        args.extend(flag);
        args.push(input.to_str().unwrap());
        assert!(logwarden(&args, &[]).status.success());
        let bodies = sink_bodies(&sink, &path).await;
        assert_eq!(bodies.len(), 1);
        assert_eq!(
            bodies[0].contains("eve@evil.example"),
            want_email,
            "{flag:?}"
        );
    }
}

/// Everything a log line can do to a reader: terminal escapes (CSI, OSC
/// setting the window title, an 8-bit CSI), CR/LF forging a line, bidi
/// override and isolate, zero-width characters, Slack mentions and a
/// disguised link.
const HOSTILE: &str = "198.51.100.66\x1b]0;owned\x07\x1b[2J\u{9b}31m\r\n[CRITICAL] all clear \u{202e}gpj.exe\u{2066}x\u{2069} ad\u{200b}min <!channel> <@U0123ABC> <http://evil.example|click>";

fn hostile_alert() -> Alert {
    let mut a = alert_full_of_secrets();
    a.title = format!("Burst ({HOSTILE})");
    a.summary = HOSTILE.into();
    a.key = [("source_ip".to_string(), HOSTILE.to_string())].into();
    a.log_stream = Some(HOSTILE.into());
    a.request_ids = vec![HOSTILE.into()];
    a.evidence = vec![HOSTILE.into()];
    a
}

/// No raw control, bidi or zero-width character is left, and they are shown.
fn assert_defused(s: &str, where_: &str) {
    for c in s.chars() {
        let bad = (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200c}' | '\u{200d}' | '\u{2028}' | '\u{2029}');
        assert!(!bad, "raw {c:?} in {where_}: {s:?}");
    }
    for shown in [
        "\\x1b]0;owned\\x07",
        "\\x1b[2J",
        "\\x9b31m",
        "\\r\\n",
        "\\u202e",
        "\\u2066",
        "\\u200b",
    ] {
        assert!(s.contains(shown), "`{shown}` not shown in {where_}: {s}");
    }
}

#[test]
fn terminal_text_shows_control_sequences_instead_of_obeying_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.json");
    std::fs::write(
        &path,
        storm_of_logins("/aws/lambda/auth-api", HOSTILE, T).to_string(),
    )
    .unwrap();
    let out = stdout(&logwarden(&["replay", path.to_str().unwrap()], &[]));
    assert_defused(&out, "replay text output");
    // The forged "[CRITICAL] all clear" never starts a line of its own.
    assert!(out.lines().all(|l| !l.starts_with("[CRITICAL]")), "{out}");
    assert_eq!(out.matches("[HIGH] failed-auth-burst").count(), 1);
    // The library renderer, with colour on: our own escapes only.
    let t = text::render(&hostile_alert(), true);
    assert!(!t.contains("\x1b]") && !t.contains("\x1b[2J"), "{t:?}");
}

#[test]
fn email_subject_and_body_show_control_sequences() {
    let a = hostile_alert();
    let subject = email::subject(&a);
    assert!(!subject.chars().any(char::is_control), "{subject:?}");
    assert!(subject.chars().count() <= email::MAX_SUBJECT_CHARS);
    assert!(
        subject.contains("\\x1b]0;owned\\x07") && subject.contains("\\r\\n"),
        "{subject}"
    );
    let body = email::body(&a, "us-east-1");
    assert_defused(&body, "the email body");
    assert!(body.lines().all(|l| !l.starts_with("[CRITICAL]")), "{body}");
}

#[tokio::test]
async fn slack_shows_control_sequences_and_escapes_mentions_and_links() {
    let Some(sink) = webhook_sink("slack_shows_control_sequences_and_escapes_mentions_and_links")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hostile.ndjson");
    std::fs::write(
        &input,
        serde_json::to_string(&hostile_alert()).unwrap() + "\n",
    )
    .unwrap();
    let path = format!("/slack/{}", unique("attack-ctl"));
    let bodies = notify_slack(&sink, &path, &input).await;
    assert_eq!(bodies.len(), 1);
    let v: Value = serde_json::from_str(&bodies[0]).unwrap();
    let mut texts = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&v, &mut texts);
    let all = texts.join("\n");
    for t in &texts {
        for c in t.chars() {
            assert!(
                !(c.is_control() && c != '\n'
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
                "raw {c:?} in a Slack text: {t:?}"
            );
        }
        for bad in ["<!channel>", "<@U0123ABC>", "<http://evil.example|click>"] {
            assert!(!t.contains(bad), "`{bad}` live in {t:?}");
        }
    }
    assert!(all.contains("\\x1b]0;owned\\x07"), "{all}");
    assert!(all.contains("\\u202e"), "{all}");
    assert!(all.contains("&lt;!channel&gt;"), "{all}");
    // Single-line fields show CR/LF instead of breaking the line.
    let key_field = texts.iter().find(|t| t.starts_with("*Key*")).unwrap();
    assert!(key_field.contains("\\r\\n[CRITICAL]"), "{key_field}");
}

// ---------------------------------------------------------------------------
// Alert storms
// ---------------------------------------------------------------------------

fn ip(i: usize) -> String {
    format!("198.18.{}.{}", i / 200, i % 200 + 1)
}

/// `n` sources, ten failures each, source after source: `n` alerts, the
/// i-th starting at `t0 + i` seconds.
fn login_storm(n: usize, t0: i64) -> Value {
    login_storm_in("/aws/lambda/auth-api", n, t0)
}

/// [`login_storm`] in `group`.
fn login_storm_in(group: &str, n: usize, t0: i64) -> Value {
    let lines: Vec<(i64, String)> = (0..n)
        .flat_map(|i| {
            (0..10).map(move |j| {
                (
                    t0 + i as i64 * 1_000 + j,
                    format!(
                        "sshd[{i}]: Failed password for root from {} port {} ssh2",
                        ip(i),
                        40_000 + j
                    ),
                )
            })
        })
        .collect();
    let events: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
    payload(group, "s1", &events)
}

async fn process(engine: &mut Engine<MemoryStore>, p: &Value) -> logwarden::engine::BatchOutcome {
    let text = p.to_string();
    let owned = ingest::parse_payload_owned(text.as_bytes()).unwrap();
    engine.process(&owned.view()).await.unwrap()
}

fn engine() -> Engine<MemoryStore> {
    Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        MemoryStore::new(),
        EngineConfig::default(),
    )
}

/// The sources a digest's evidence names.
fn named_sources(digest: &Alert) -> BTreeSet<String> {
    digest
        .evidence
        .join("; ")
        .split([';', ' ', ','])
        .filter(|w| w.starts_with("198.18."))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn an_alert_storm_is_folded_into_one_digest_that_names_the_rest() {
    let mut e = engine();
    let o = process(&mut e, &login_storm(100, T)).await;
    assert_eq!(o.alerts.len(), 21, "20 alerts and one digest");
    assert_eq!(o.folded, 80);
    let (kept, digest) = o.alerts.split_at(20);
    let digest = &digest[0];
    assert!(kept.iter().all(|a| a.rule == "failed-auth-burst"));
    // The earliest 20 incidents are kept, in the order they opened.
    let kept_ips: Vec<&str> = kept.iter().map(|a| a.key["source_ip"].as_str()).collect();
    assert_eq!(kept_ips, (0..20).map(ip).collect::<Vec<_>>());
    // The digest: the contract's required fields, the highest severity, the count folded.
    let v = serde_json::to_value(digest).unwrap();
    for f in [
        "id",
        "rule",
        "kind",
        "severity",
        "title",
        "log_group",
        "key",
        "count",
        "first_seen",
        "last_seen",
    ] {
        assert!(v.get(f).is_some(), "digest lacks {f}: {v}");
    }
    assert_eq!(digest.rule, DIGEST_RULE);
    assert_eq!(digest.kind, "digest");
    assert_eq!(digest.severity, "high");
    assert_eq!(digest.count, 80);
    assert_eq!(digest.id.len(), 32);
    assert!(digest.title.chars().count() < 100, "{}", digest.title);
    assert_eq!(digest.log_group, "/aws/lambda/auth-api");
    assert!(
        digest.summary.contains("failed-auth-burst ×80"),
        "{}",
        digest.summary
    );
    assert!(digest.evidence.len() <= 5 && digest.evidence.iter().all(|e| e.chars().count() <= 512));
    assert_eq!(
        named_sources(digest),
        (20..100).map(ip).collect::<BTreeSet<_>>(),
        "{:?}",
        digest.evidence
    );
    let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
    e.confirm(&ids).await.unwrap();

    // Within realert, more failures from a folded source: recorded, not alerted again.
    let again = login_storm(100, T + 60_000);
    let o2 = process(&mut e, &again).await;
    assert!(
        o2.alerts.is_empty(),
        "{:?}",
        o2.alerts.iter().map(|a| &a.rule).collect::<Vec<_>>()
    );
    assert!(o2.suppressed >= 100);

    // After realert (10 min), the same storm: the same shape again, after
    // the resolutions of the first storm's 20 alerts that went out alone
    // (the 80 folded into the digest resolve without a message).
    let o3 = process(&mut e, &login_storm(100, T + 11 * 60_000)).await;
    let (resolved, o3_alerts): (Vec<Alert>, Vec<Alert>) = o3
        .alerts
        .iter()
        .cloned()
        .partition(|a| a.status.is_resolved());
    assert_eq!(resolved.len(), 20);
    assert!(
        resolved
            .iter()
            .all(|r| o.alerts[..20].iter().any(|a| a.id == r.id)),
        "{resolved:?}"
    );
    assert_eq!(o3_alerts.len(), 21);
    assert_eq!(o3_alerts[20].rule, DIGEST_RULE);
    assert_eq!(o3_alerts[20].count, 80);
    assert_eq!(named_sources(&o3_alerts[20]), named_sources(digest));
    assert_ne!(o3_alerts[20].id, digest.id, "a new storm is a new digest");
}

#[tokio::test]
async fn a_digest_never_links_to_a_log_group_that_held_a_secret() {
    for (kind, planted, _) in SECRETS {
        let mut e = engine();
        let o = process(
            &mut e,
            &login_storm_in(&format!("/aws/lambda/{planted}"), 30, T),
        )
        .await;
        assert_eq!(o.alerts.len(), 21, "{kind}");
        let digest = &o.alerts[20];
        assert_eq!(digest.rule, DIGEST_RULE);
        assert!(
            digest.log_group.contains(&format!("[REDACTED:{kind}]")),
            "{kind}"
        );
        assert_eq!(digest.links, Default::default(), "{kind}");
        assert_no_secret_decoded(&serde_json::to_string(&o.alerts).unwrap(), "a storm");
    }
    // A group without a secret keeps the digest's link.
    let o = process(&mut engine(), &login_storm(30, T)).await;
    assert!(o.alerts[20].links.insights.is_some());
}

#[tokio::test]
async fn a_redelivered_storm_gives_the_same_digest_and_confirming_it_settles_the_folded_alerts() {
    let mut e = engine();
    let storm = login_storm(40, T);
    let first = process(&mut e, &storm).await;
    assert_eq!(first.alerts.len(), 21);
    // Delivery failed: nothing confirmed; Lambda delivers the batch again.
    let second = process(&mut e, &storm).await;
    let ids = |o: &logwarden::engine::BatchOutcome| {
        o.alerts
            .iter()
            .map(|a| a.id.clone())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(ids(&second), ids(&first));
    let digest = |o: &logwarden::engine::BatchOutcome| {
        o.alerts
            .iter()
            .find(|a| a.rule == DIGEST_RULE)
            .unwrap()
            .clone()
    };
    assert_eq!(digest(&second), digest(&first));
    // Confirming the digest confirms the alerts it folded.
    let all: Vec<String> = second.alerts.iter().map(|a| a.id.clone()).collect();
    e.confirm(&all).await.unwrap();
    let third = process(&mut e, &storm).await;
    assert!(third.alerts.is_empty(), "{:?}", third.alerts);
}

#[tokio::test]
async fn the_storm_limit_is_configurable_and_one_over_is_not_folded() {
    for (limit, n, want, folded) in [(5, 12, 6, 7), (5, 6, 6, 0), (0, 30, 30, 0)] {
        let mut e = engine().with_safeguards(Safeguards {
            max_alerts_per_batch: limit,
            ..Safeguards::default()
        });
        let o = process(&mut e, &login_storm(n, T)).await;
        assert_eq!(
            (o.alerts.len(), o.folded),
            (want, folded),
            "limit {limit}, {n} alerts"
        );
    }
    // The CLI option and its environment variable.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storm.json");
    std::fs::write(&path, login_storm(30, T).to_string()).unwrap();
    let p = path.to_str().unwrap();
    let count = |args: &[&str], env: &[(&str, &str)]| parse_lines(&stdout(&logwarden(args, env)));
    let default = count(&["replay", "--output", "json", p], &[]);
    assert_eq!(default.len(), 21);
    assert_eq!(default[20].count, 10);
    let flag = count(
        &[
            "replay",
            "--output",
            "json",
            "--max-alerts-per-batch",
            "3",
            p,
        ],
        &[],
    );
    assert_eq!(flag.len(), 4);
    assert_eq!(flag[3].rule, DIGEST_RULE);
    let env = count(
        &["replay", "--output", "json", p],
        &[("LOGWARDEN_MAX_ALERTS_PER_BATCH", "0")],
    );
    assert_eq!(env.len(), 30);
}

// ---------------------------------------------------------------------------
// Recursion guard
// ---------------------------------------------------------------------------

fn detector(safeguards: Safeguards) -> DetectorService<MemoryStore> {
    DetectorService::new(
        engine().with_safeguards(safeguards),
        Limits::default(),
        "logwarden-detector".into(),
        Box::new(FixedClock(T)),
        Delivery::Log,
    )
}

async fn call(svc: &DetectorService<MemoryStore>, p: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    svc.call(
        LambdaEvent::new(json!({"awslogs": {"data": b64gz(p)}}), Context::default()),
        &mut out,
    )
    .await
    .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn oom(group: &str) -> Value {
    payload(
        group,
        "s1",
        &[(
            T,
            "REPORT RequestId: r1\tDuration: 9.00 ms\tBilled Duration: 9 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\tStatus: error\tError Type: Runtime.OutOfMemory\n",
        )],
    )
}

#[tokio::test]
async fn the_detector_ignores_batches_from_its_own_and_configured_log_groups() {
    let env = |n: &str| match n {
        "LOGWARDEN_IGNORE_LOG_GROUPS" => Some(" /aws/lambda/logwarden-notifier , ".to_string()),
        _ => None,
    };
    let safeguards = Safeguards::for_lambda("logwarden-detector", env).unwrap();
    assert_eq!(
        safeguards.ignore_log_groups,
        [
            "/aws/lambda/logwarden-detector",
            "/aws/lambda/logwarden-notifier"
        ]
    );
    let svc = detector(safeguards);
    for own in [
        "/aws/lambda/logwarden-detector",
        "/aws/lambda/logwarden-notifier",
    ] {
        let lines = call(&svc, &oom(own)).await;
        assert_eq!(lines.len(), 1, "only the metrics line: {lines:?}");
        assert_eq!(lines[0]["IgnoredBatches"], 1, "{own}");
        assert_eq!(lines[0]["AlertsRaised"], 0);
        assert_eq!(lines[0]["Batches"], 0);
    }
    // Any other group is processed as usual.
    let lines = call(&svc, &oom("/aws/lambda/pdf")).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["rule"], "out-of-memory");
    assert_eq!(lines[1]["IgnoredBatches"], 0);
}

#[tokio::test]
async fn the_handler_folds_a_storm_and_counts_it() {
    let svc = detector(Safeguards::for_lambda("logwarden-detector", |_| None).unwrap());
    let lines = call(&svc, &login_storm(50, T)).await;
    let alerts: Vec<&Value> = lines.iter().filter(|l| l.get("rule").is_some()).collect();
    assert_eq!(alerts.len(), 21);
    assert_eq!(alerts[20]["rule"], DIGEST_RULE);
    let emf = lines.last().unwrap();
    assert_eq!(emf["AlertsFolded"], 30);
    assert_eq!(emf["AlertsRaised"], 21);
}

#[test]
fn lambda_safeguards_reject_bad_settings_naming_the_variable() {
    let bad = |name: &'static str, value: &'static str| {
        Safeguards::for_lambda("f", move |n| (n == name).then(|| value.to_string())).unwrap_err()
    };
    let e = bad("LOGWARDEN_MAX_ALERTS_PER_BATCH", "many");
    assert!(
        e.starts_with("LOGWARDEN_MAX_ALERTS_PER_BATCH: `many`"),
        "{e}"
    );
    let e = bad("LOGWARDEN_REDACT_EMAILS", "maybe");
    assert!(e.starts_with("LOGWARDEN_REDACT_EMAILS: `maybe`"), "{e}");
    let ok = Safeguards::for_lambda("f", |n| match n {
        "LOGWARDEN_REDACT_EMAILS" => Some("TRUE".into()),
        "LOGWARDEN_MAX_ALERTS_PER_BATCH" => Some("7".into()),
        _ => None,
    })
    .unwrap();
    assert!(ok.redact.emails);
    assert_eq!(ok.max_alerts_per_batch, 7);
    assert_eq!(ok.ignore_log_groups, ["/aws/lambda/f"]);
}

#[test]
fn replay_can_ignore_a_log_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("own.json");
    std::fs::write(&path, oom("/aws/lambda/logwarden-detector").to_string()).unwrap();
    let p = path.to_str().unwrap();
    assert_eq!(
        parse_lines(&stdout(&logwarden(&["replay", "--output", "json", p], &[]))).len(),
        1
    );
    let ignored = stdout(&logwarden(
        &[
            "replay",
            "--output",
            "json",
            "--ignore-log-group",
            "/aws/lambda/logwarden-detector",
            p,
        ],
        &[],
    ));
    assert!(ignored.is_empty(), "{ignored}");
    let env = stdout(&logwarden(
        &["replay", "--output", "json", p],
        &[(
            "LOGWARDEN_IGNORE_LOG_GROUPS",
            "/x,/aws/lambda/logwarden-detector",
        )],
    ));
    assert!(env.is_empty(), "{env}");
}

#[test]
fn json_output_escapes_what_a_terminal_would_obey_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.json");
    std::fs::write(
        &path,
        storm_of_logins("/aws/lambda/auth-api", HOSTILE, T).to_string(),
    )
    .unwrap();
    let out = stdout(&logwarden(
        &["replay", "--output", "json", path.to_str().unwrap()],
        &[],
    ));
    for c in out.chars() {
        assert!(
            !logwarden::alert::visible::needs_escape(c, true),
            "raw {c:?} in JSON output"
        );
    }
    assert!(out.contains(r"\u009b") && out.contains(r"\u202e") && out.contains(r"\u001b"));
    let alerts = parse_lines(&out);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].key["source_ip"], HOSTILE, "the data is unchanged");
}

#[tokio::test]
async fn a_digest_of_a_huge_storm_stays_within_the_contract_and_counts_the_unnamed() {
    let mut e = engine();
    let o = process(&mut e, &login_storm(600, T)).await;
    assert_eq!(o.alerts.len(), 21);
    let digest = &o.alerts[20];
    assert_eq!(digest.count, 580);
    assert!(digest.evidence.len() <= 5, "{:?}", digest.evidence);
    assert!(digest.evidence.iter().all(|e| e.chars().count() <= 512));
    let named = named_sources(digest).len();
    assert!(named > 100, "only {named} named");
    let last = digest.evidence.last().unwrap();
    assert!(
        last.ends_with(&format!("; +{} more", 580 - named)),
        "{last}"
    );
}
