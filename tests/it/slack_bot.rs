//! Slack with a bot token against a local stand-in of the Slack Web API
//! (`chat.postMessage`, `chat.update`), which answers as Slack does: HTTP 200
//! with `{"ok": false, "error": …}` for `invalid_auth`, `channel_not_found`
//! and `message_not_found`, HTTP 429 `ratelimited` with `Retry-After`.
//! Also the notifier with the bot and PagerDuty together: one incident, one
//! Slack message that follows it, one PagerDuty incident opened and closed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use logwarden::alert::{Alert, AlertStatus};
use logwarden::sinks::pagerduty::PagerDutyClient;
use logwarden::sinks::secret::SecretBacked;
use logwarden::sinks::slack::bot::{BotOutcome, SlackBot, Threads};
use logwarden::sinks::slack::notifier::{NotifierService, SlackDest};
use logwarden::sinks::slack::{SlackApi, SlackError};
use serde_json::{Value, json};

use crate::pagerduty::{KEY, events_api};
use crate::support::FakeTimer;
use crate::support::standin::{Reply, Req, StandIn};

pub(crate) const TOKEN: &str = "xoxb-0000-1111-SECRETTOKEN";
const CHANNEL_ID: &str = "C0LOGWARDEN";

/// What the stand-in holds: messages by ts, thread replies, scripted faults.
#[derive(Default)]
pub(crate) struct Slack {
    pub(crate) messages: HashMap<String, Value>,
    pub(crate) replies: Vec<(String, String)>,
    next_ts: u64,
    faults: VecDeque<Reply>,
}

fn fail(error: &str) -> Reply {
    Reply::json(200, json!({"ok": false, "error": error}))
}

/// The Web API's answers for the two methods logwarden calls.
fn web_api(state: &Arc<Mutex<Slack>>, req: &Req) -> Reply {
    let mut s = state.lock().unwrap();
    if let Some(f) = s.faults.pop_front() {
        return f;
    }
    if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return fail("invalid_auth");
    }
    let b = req.json();
    let channel = b["channel"].as_str().unwrap_or("");
    if channel != CHANNEL_ID && channel != "#alerts" {
        return fail("channel_not_found");
    }
    match req.path.as_str() {
        "/api/chat.postMessage" => {
            if let Some(thread) = b["thread_ts"].as_str() {
                if !s.messages.contains_key(thread) {
                    return fail("thread_not_found");
                }
                s.replies
                    .push((thread.to_string(), b["text"].as_str().unwrap_or("").into()));
            } else {
                if b["text"].as_str().unwrap_or("").is_empty() && !b["blocks"].is_array() {
                    return fail("no_text");
                }
                s.next_ts += 1;
                let ts = format!("1764806400.{:06}", s.next_ts);
                s.messages.insert(ts.clone(), b.clone());
                return Reply::json(
                    200,
                    json!({"ok": true, "channel": CHANNEL_ID, "ts": ts, "message": b}),
                );
            }
            s.next_ts += 1;
            let ts = format!("1764806400.{:06}", s.next_ts);
            Reply::json(200, json!({"ok": true, "channel": CHANNEL_ID, "ts": ts}))
        }
        "/api/chat.update" => {
            let ts = b["ts"].as_str().unwrap_or("").to_string();
            if !s.messages.contains_key(&ts) {
                return fail("message_not_found");
            }
            s.messages.insert(ts.clone(), b.clone());
            Reply::json(
                200,
                json!({"ok": true, "channel": CHANNEL_ID, "ts": ts, "text": b["text"]}),
            )
        }
        _ => fail("unknown_method"),
    }
}

pub(crate) async fn slack() -> (StandIn, Arc<Mutex<Slack>>) {
    let state = Arc::new(Mutex::new(Slack::default()));
    let s = Arc::clone(&state);
    (StandIn::start(move |req| web_api(&s, req)).await, state)
}

pub(crate) fn bot(srv: &StandIn, token: &str, channel: &str, threads: Threads) -> SlackBot {
    let api = SlackApi::new(token, Some(&srv.url("/api/")))
        .unwrap()
        .with_timer(FakeTimer::new());
    SlackBot::new(api, channel, threads)
}

fn firing(count: u64, last_seen: &str) -> Alert {
    let mut a = crate::support::golden_alerts()
        .into_iter()
        .find(|a| a.rule == "failed-auth-burst")
        .unwrap();
    a.count = count;
    a.last_seen = last_seen.into();
    a
}

fn resolved(count: u64) -> Alert {
    let mut a = firing(count, "2026-11-22T10:05:00.000Z");
    a.status = AlertStatus::Resolved;
    a.resolved_at = Some("2026-11-22T10:07:00.000Z".into());
    a
}

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn one_message_per_incident_updated_and_answered_in_its_thread() {
    let (srv, state) = slack().await;
    let b = bot(&srv, TOKEN, "#alerts", Threads::memory());
    let first = firing(31, "2026-11-22T10:01:41.000Z");
    assert_eq!(b.deliver(&first, T).await.unwrap(), BotOutcome::Posted);
    let realert = firing(58, "2026-11-22T10:03:00.000Z");
    assert_eq!(b.deliver(&realert, T).await.unwrap(), BotOutcome::Updated);
    let end = resolved(60);
    assert_eq!(b.deliver(&end, T).await.unwrap(), BotOutcome::Updated);
    // The resolution again (an SNS retry): the message already says so.
    assert_eq!(b.deliver(&end, T).await.unwrap(), BotOutcome::Unchanged);

    let paths: Vec<String> = srv.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/api/chat.postMessage",
            "/api/chat.update",
            "/api/chat.postMessage",
            "/api/chat.update",
            "/api/chat.postMessage"
        ]
    );
    let s = state.lock().unwrap();
    assert_eq!(s.messages.len(), 1, "one message in the channel");
    let (ts, msg) = s.messages.iter().next().unwrap();
    let text = msg["blocks"].to_string();
    assert!(text.contains("RESOLVED · Burst of failed"), "{text}");
    assert!(text.contains("*Count*\\n60"), "{text}");
    let replies: Vec<&str> = s.replies.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(s.replies.iter().filter(|(t, _)| t == ts).count(), 2);
    assert!(
        replies[0].starts_with(":repeat: Still firing · 58 event(s)"),
        "{replies:?}"
    );
    assert!(
        replies[1]
            .starts_with(":white_check_mark: Resolved at 2026-11-22T10:07:00.000Z · 60 event(s)"),
        "{replies:?}"
    );
    let update = srv.requests()[1].json();
    assert_eq!(
        update["channel"], CHANNEL_ID,
        "updates go to the channel id Slack answered"
    );
}

#[tokio::test]
async fn permanent_errors_fail_at_once_with_slacks_code() {
    let (srv, _) = slack().await;
    for (token, channel, code) in [
        ("xoxb-wrong-SECRETTOKEN", "#alerts", "invalid_auth"),
        (TOKEN, "#nowhere", "channel_not_found"),
    ] {
        let before = srv.requests().len();
        let e = bot(&srv, token, channel, Threads::memory())
            .deliver(&firing(31, "2026-11-22T10:01:41.000Z"), T)
            .await
            .unwrap_err();
        match &e {
            SlackError::Api { method, error } => {
                assert_eq!(
                    (method.as_str(), error.as_str()),
                    ("chat.postMessage", code)
                );
            }
            e => panic!("{e}"),
        }
        assert!(!e.is_transient());
        assert!(!e.to_string().contains("SECRETTOKEN"), "{e}");
        assert_eq!(srv.requests().len(), before + 1, "{code} is not retried");
    }
}

#[tokio::test]
async fn ratelimited_waits_for_retry_after_then_posts_and_gives_up_within_the_deadline() {
    let (srv, state) = slack().await;
    state.lock().unwrap().faults.extend([
        Reply::json(429, json!({"ok": false, "error": "ratelimited"}))
            .with_header("Retry-After", "3"),
        fail("ratelimited").with_header("Retry-After", "1"),
    ]);
    let timer = FakeTimer::new();
    let api = SlackApi::new(TOKEN, Some(&srv.url("/api")))
        .unwrap()
        .with_timer(timer.clone());
    let b = SlackBot::new(api, CHANNEL_ID, Threads::memory());
    assert_eq!(
        b.deliver(&firing(31, "2026-11-22T10:01:41.000Z"), T)
            .await
            .unwrap(),
        BotOutcome::Posted
    );
    assert_eq!(
        timer.sleeps(),
        [Duration::from_secs(3), Duration::from_secs(1)]
    );
    assert_eq!(srv.requests().len(), 3);

    // Rate limited for longer than the deadline: a clean, transient failure.
    state.lock().unwrap().faults.extend(std::iter::repeat_n(
        Reply::json(429, json!({"ok": false, "error": "ratelimited"}))
            .with_header("Retry-After", "4"),
        10,
    ));
    let timer = FakeTimer::new();
    let api = SlackApi::new(TOKEN, Some(&srv.url("/api")))
        .unwrap()
        .with_timer(timer.clone());
    let e = SlackBot::new(api, CHANNEL_ID, Threads::memory())
        .deliver(
            &firing(31, "2026-11-22T10:01:41.000Z"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, SlackError::GaveUp { .. }) && e.is_transient(),
        "{e}"
    );
    assert!(
        timer.slept() < Duration::from_secs(10),
        "{:?}",
        timer.sleeps()
    );
}

#[tokio::test]
async fn a_deleted_message_is_posted_again_and_its_new_ts_followed() {
    let (srv, state) = slack().await;
    let b = bot(&srv, TOKEN, CHANNEL_ID, Threads::memory());
    b.deliver(&firing(31, "2026-11-22T10:01:41.000Z"), T)
        .await
        .unwrap();
    state.lock().unwrap().messages.clear(); // someone deleted it in Slack
    let realert = firing(40, "2026-11-22T10:02:00.000Z");
    assert_eq!(b.deliver(&realert, T).await.unwrap(), BotOutcome::Reposted);
    assert_eq!(
        b.deliver(&resolved(41), T).await.unwrap(),
        BotOutcome::Updated
    );
    let s = state.lock().unwrap();
    assert_eq!(s.messages.len(), 1);
    let (ts, msg) = s.messages.iter().next().unwrap();
    assert!(msg["blocks"].to_string().contains("RESOLVED"));
    assert_eq!(s.replies.len(), 1);
    assert_eq!(
        &s.replies[0].0, ts,
        "the reply is in the new message's thread"
    );
}

#[tokio::test]
async fn two_containers_sharing_the_state_table_follow_one_message() {
    let Some(ep) =
        crate::support::moto("two_containers_sharing_the_state_table_follow_one_message")
    else {
        return;
    };
    let conf = crate::support::aws(&ep).await;
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let table = crate::support::unique("lw-slack");
    logwarden::state::dynamodb::DynamoStore::create_table(&ddb, &table)
        .await
        .unwrap();
    let (srv, state) = slack().await;
    let threads = || Threads::Dynamo {
        client: ddb.clone(),
        table: table.clone(),
    };
    let a = bot(&srv, TOKEN, "#alerts", threads());
    let b = bot(&srv, TOKEN, "#alerts", threads());
    assert_eq!(
        a.deliver(&firing(31, "2026-11-22T10:01:41.000Z"), T)
            .await
            .unwrap(),
        BotOutcome::Posted
    );
    assert_eq!(
        b.deliver(&resolved(33), T).await.unwrap(),
        BotOutcome::Updated
    );
    assert_eq!(
        a.deliver(&resolved(33), T).await.unwrap(),
        BotOutcome::Unchanged
    );
    {
        let s = state.lock().unwrap();
        assert_eq!(s.messages.len(), 1);
        assert_eq!(s.replies.len(), 1);
    }
    let item = ddb
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("slack|{}", resolved(33).id)),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("ts".into()),
        )
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    let expires: u64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expires > now + 86_400, "kept with a TTL: {expires}");
}

fn sns(message_id: &str, a: &Alert) -> Value {
    json!({"Records": [{"EventSource": "aws:sns", "Sns": {
        "MessageId": message_id, "Subject": "s", "Message": serde_json::to_string(a).unwrap()}}]})
}

#[tokio::test]
async fn the_notifier_follows_an_incident_in_slack_and_at_pagerduty_and_sends_no_shadow() {
    let (srv, state) = slack().await;
    let pd = StandIn::start(events_api).await;
    let threads = Threads::memory();
    let svc = NotifierService::with_destinations(
        Some(SlackDest::Bot(SecretBacked::ready(bot(
            &srv,
            TOKEN,
            "#alerts",
            threads.clone(),
        )))),
        Some(SecretBacked::ready(
            PagerDutyClient::new(KEY, Some(&pd.url("/v2/enqueue"))).unwrap(),
        )),
    );
    let call = |ev: Value| svc.call(LambdaEvent::new(ev, Context::default()));
    let mut shadow = firing(5, "2026-11-22T10:01:41.000Z");
    shadow.shadow = true;
    let r = call(sns("m0", &shadow)).await.unwrap();
    assert_eq!(
        (
            r["shadow"].as_u64(),
            r["posted"].as_u64(),
            r["pagerduty"].as_u64()
        ),
        (Some(1), Some(0), Some(0))
    );
    let r = call(sns("m1", &firing(31, "2026-11-22T10:01:41.000Z")))
        .await
        .unwrap();
    assert_eq!(
        (r["posted"].as_u64(), r["pagerduty"].as_u64()),
        (Some(1), Some(1))
    );
    let r = call(sns("m2", &resolved(33))).await.unwrap();
    assert_eq!(
        (r["posted"].as_u64(), r["pagerduty"].as_u64()),
        (Some(1), Some(1))
    );
    // SNS retries the resolution: nothing is sent twice.
    let r = call(sns("m2", &resolved(33))).await.unwrap();
    assert_eq!(
        (
            r["posted"].as_u64(),
            r["pagerduty"].as_u64(),
            r["duplicates"].as_u64()
        ),
        (Some(0), Some(0), Some(2))
    );

    // Another container, sharing where the messages are, gets the same
    // retry: the message already shows it.
    let other = NotifierService::with_destinations(
        Some(SlackDest::Bot(SecretBacked::ready(bot(
            &srv, TOKEN, "#alerts", threads,
        )))),
        None,
    );
    let r = other
        .call(LambdaEvent::new(
            sns("m2", &resolved(33)),
            Context::default(),
        ))
        .await
        .unwrap();
    assert_eq!(
        (r["posted"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(1))
    );

    let s = state.lock().unwrap();
    assert_eq!(s.messages.len(), 1);
    assert_eq!(s.replies.len(), 1);
    let events: Vec<Value> = pd.requests().iter().map(Req::json).collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "resolve"]);
    assert_eq!(events[0]["dedup_key"], events[1]["dedup_key"]);
}

/// The notifier binary as Lambda runs it, configured as the SAM template
/// does: bot token and routing key in Secrets Manager, the state table for
/// the messages' ts. Two notifier processes (two containers) share the table.
#[tokio::test]
async fn the_notifier_binary_reads_its_secrets_and_two_containers_follow_one_message() {
    use crate::support::runtime_api::{Outcome, RuntimeApi, lambda_env};
    let Some(ep) = crate::support::moto("the_notifier_binary_reads_its_secrets") else {
        return;
    };
    let conf = crate::support::aws(&ep).await;
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let mut arns = Vec::new();
    for (name, value) in [
        ("lw-bot", json!({"bot_token": TOKEN}).to_string()),
        ("lw-pd", KEY.to_string()),
    ] {
        let out = sm
            .create_secret()
            .name(crate::support::unique(name))
            .secret_string(value)
            .send()
            .await
            .unwrap();
        arns.push(out.arn().unwrap().to_string());
    }
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let table = crate::support::unique("lw-notifier");
    logwarden::state::dynamodb::DynamoStore::create_table(&ddb, &table)
        .await
        .unwrap();
    let (srv, state) = slack().await;
    let pd = StandIn::start(events_api).await;
    let mut outcomes = Vec::new();
    for (id, a) in [
        ("m1", firing(31, "2026-11-22T10:01:41.000Z")),
        ("m2", resolved(33)),
    ] {
        let mut api = RuntimeApi::start(vec![sns(id, &a)], Duration::from_secs(30)).await;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_logwarden-notifier"))
            .envs(lambda_env(api.addr))
            .env("LOGWARDEN_SLACK_BOT_TOKEN_SECRET_ARN", &arns[0])
            .env("LOGWARDEN_SLACK_CHANNEL", "#alerts")
            .env("LOGWARDEN_SLACK_API_URL", srv.url("/api/"))
            .env("LOGWARDEN_PAGERDUTY_ROUTING_KEY_SECRET_ARN", &arns[1])
            .env("LOGWARDEN_PAGERDUTY_URL", pd.url("/v2/enqueue"))
            .env("LOGWARDEN_STATE_TABLE", &table)
            .env("AWS_ENDPOINT_URL", &ep)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("LOGWARDEN_SLACK_WEBHOOK_URL")
            .env_remove("LOGWARDEN_SLACK_WEBHOOK_SECRET_ARN")
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        outcomes.push(api.next_outcome(Duration::from_secs(60)).await);
        child.kill().await.unwrap();
    }
    for o in &outcomes {
        match o {
            Some(Outcome::Response(v)) => {
                assert_eq!(
                    (v["posted"].as_u64(), v["pagerduty"].as_u64()),
                    (Some(1), Some(1)),
                    "{v}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let s = state.lock().unwrap();
    assert_eq!(
        s.messages.len(),
        1,
        "the second container updated the first's message"
    );
    assert!(
        s.messages.values().next().unwrap()["blocks"]
            .to_string()
            .contains("RESOLVED")
    );
    assert_eq!(s.replies.len(), 1);
    let actions: Vec<Value> = pd
        .requests()
        .iter()
        .map(|r| r.json()["event_action"].clone())
        .collect();
    assert_eq!(actions, [json!("trigger"), json!("resolve")]);
}

/// The messages of one incident's life exactly as they go out, recorded by
/// the stand-ins: the webhook bodies (firing, resolution), the bot's Web API
/// calls, and PagerDuty's trigger and resolve. Compared with
/// `tests/snapshots/destinations/`; README.md shows them and must show them
/// as they are (`LOGWARDEN_BLESS=1` rewrites the snapshots; review the diff).
#[tokio::test]
async fn the_messages_of_an_incident_match_their_snapshots_and_the_readme() {
    // The golden alert as fired; it resolves once no failure has come from
    // the source for twice the rule's 60 s window.
    let firing = crate::support::golden_alerts()
        .into_iter()
        .find(|a| a.rule == "failed-auth-burst")
        .unwrap();
    let mut resolved = firing.clone();
    resolved.status = AlertStatus::Resolved;
    resolved.count = 12;
    resolved.last_seen = "2026-11-22T10:01:19.503Z".into();
    resolved.resolved_at = Some("2026-11-22T10:03:19.503Z".into());

    let hook = StandIn::start(|_: &Req| Reply::json(200, json!("ok"))).await;
    let client =
        logwarden::sinks::slack::SlackClient::new(&hook.url("/services/T000/B000/XXXX")).unwrap();
    client.post_alert(&firing).await.unwrap();
    client.post_alert(&resolved).await.unwrap();
    let (srv, _) = slack().await;
    let b = bot(&srv, TOKEN, "C0LOGWARDEN", Threads::memory());
    b.deliver(&firing, T).await.unwrap();
    b.deliver(&resolved, T).await.unwrap();
    let pd = StandIn::start(events_api).await;
    let sink = logwarden::sinks::pagerduty::PagerDutySink::new(
        PagerDutyClient::new(KEY, Some(&pd.url("/v2/enqueue"))).unwrap(),
        Default::default(),
    );
    sink.send(&firing).await.unwrap();
    sink.send(&resolved).await.unwrap();

    let hooks = hook.requests();
    let calls: Vec<Value> = srv
        .requests()
        .iter()
        .map(|r| json!({"method": r.path.trim_start_matches("/api/"), "body": r.json()}))
        .collect();
    let events = pd.requests();
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap() + "\n";
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/destinations");
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let mut not_in_readme = Vec::new();
    for (name, got) in [
        ("slack-webhook-firing.json", pretty(&hooks[0].json())),
        ("slack-webhook-resolved.json", pretty(&hooks[1].json())),
        ("slack-bot-calls.json", pretty(&Value::Array(calls))),
        ("pagerduty-trigger.json", pretty(&events[0].json())),
        ("pagerduty-resolve.json", pretty(&events[1].json())),
    ] {
        let path = dir.join(name);
        if crate::support::bless() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(got, want, "{name} differs from {}", path.display());
        if name != "slack-bot-calls.json" && !readme.contains(&got) {
            not_in_readme.push(name);
        }
    }
    assert!(
        not_in_readme.is_empty(),
        "README.md does not show {not_in_readme:?} as sent"
    );
}
