//! The Slack sink and the notifier against a real HTTP server on 127.0.0.1:
//! a tiny HTTP/1.1 server in the test records each request and answers from
//! a script. Retry timing is checked two ways: with the real clock and small
//! values (Retry-After: 1, a 1.5 s deadline), and with a fake timer that
//! records the waits without sleeping.
//!
//! Two tests use services CI starts and skip (with a note on stderr) without
//! them: `MOTO_ENDPOINT` (Secrets Manager in moto) and `WEBHOOK_SINK`
//! (tests/support/http_sink.py).

use crate::support;

use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lambda_runtime::{Context, LambdaEvent};
use logwarden::alert::Alert;
use logwarden::sinks::slack::notifier::{NotifierError, NotifierService, Webhook};
use logwarden::sinks::slack::{
    LineProblemKind, RetryPolicy, SlackClient, SlackError, post_alert_lines,
};
use serde_json::{Value, json};
use support::{FakeTimer, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------
// The scripted server
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Reply {
    /// Status, extra headers, body.
    Status(u16, Vec<(&'static str, &'static str)>, &'static str),
    /// Read the request, never answer.
    Hang,
}

fn ok() -> Reply {
    Reply::Status(200, vec![], "ok")
}

#[derive(Clone, Debug)]
struct Recorded {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Recorded {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Server {
    base: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    /// The webhook URL (a path that looks like a real one, with a "secret").
    fn url(&self) -> String {
        format!("{}/services/T000/B000/SECRETTOKEN", self.base)
    }
    fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

/// A server answering request `i` with `script[i]`, the last reply forever.
async fn server(script: Vec<Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let script = Arc::new(script);
    let rec = Arc::clone(&recorded);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (rec, count, script) = (Arc::clone(&rec), Arc::clone(&count), Arc::clone(&script));
            tokio::spawn(async move { serve(stream, rec, count, script).await });
        }
    });
    Server { base, recorded }
}

async fn serve(
    mut stream: TcpStream,
    rec: Arc<Mutex<Vec<Recorded>>>,
    count: Arc<AtomicUsize>,
    script: Arc<Vec<Reply>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let i = count.fetch_add(1, Ordering::SeqCst);
    rec.lock().unwrap().push(Recorded {
        path,
        headers,
        body: buf[head_end..head_end + len].to_vec(),
        at: Instant::now(),
    });
    match script[i.min(script.len() - 1)].clone() {
        Reply::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
        Reply::Status(status, extra, body) => {
            let mut resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in extra {
                resp.push_str(&format!("{k}: {v}\r\n"));
            }
            resp.push_str("\r\n");
            resp.push_str(body);
            let _ = stream.write_all(resp.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn alert(id: &str) -> Alert {
    serde_json::from_value(json!({
        "id": id,
        "rule": "failed-auth-burst",
        "kind": "threshold",
        "severity": "high",
        "title": "Burst of failed authentications (203.0.113.7) in auth",
        "summary": "31 failed logins from 203.0.113.7 within 41 s.",
        "account": "123456789012",
        "log_group": "/aws/lambda/auth",
        "log_stream": "2026/11/22/[$LATEST]0123",
        "function": "auth",
        "key": {"source_ip": "203.0.113.7"},
        "request_ids": ["r1"],
        "count": 31,
        "first_seen": "2026-11-22T10:00:00.000Z",
        "last_seen": "2026-11-22T10:00:41.000Z",
        "evidence": ["Failed password for root from 203.0.113.7 <!channel>"],
        "links": {
            "log_stream": "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/$252Faws$252Flambda$252Fauth",
            "insights": "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:logs-insights"
        }
    }))
    .unwrap()
}

fn alarm_message() -> String {
    json!({
        "AlarmName": "logwarden-notifier-errors",
        "AlarmDescription": null,
        "AWSAccountId": "123456789012",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 1 datapoint [2.0] was greater than the threshold (0.0).",
        "StateChangeTime": "2026-11-22T10:01:00.000+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:logwarden-notifier-errors",
        "OldStateValue": "OK"
    })
    .to_string()
}

fn sns_record(message_id: &str, subject: &str, message: &str) -> Value {
    json!({
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:logwarden-alerts:0d4f",
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:logwarden-alerts",
            "Subject": subject,
            "Message": message,
            "Timestamp": "2026-11-22T10:01:00.000Z",
            "MessageAttributes": {
                "severity": {"Type": "String", "Value": "high"},
                "rule": {"Type": "String", "Value": "failed-auth-burst"}
            }
        }
    })
}

fn sns_event(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

fn fast_policy(deadline_ms: u64) -> RetryPolicy {
    RetryPolicy {
        deadline: Duration::from_millis(deadline_ms),
        request_timeout: Duration::from_millis(500),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
    }
}

fn header_text(body: &Value) -> &str {
    body["blocks"][0]["text"]["text"].as_str().unwrap()
}

// ---------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------

#[tokio::test]
async fn alert_is_posted_as_block_kit_json() {
    let srv = server(vec![ok()]).await;
    let client = SlackClient::new(&srv.url()).unwrap();
    let d = client.post_alert(&alert("a1")).await.unwrap();
    assert_eq!(d.attempts, 1);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/services/T000/B000/SECRETTOKEN");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(
        body["text"],
        "[HIGH] failed-auth-burst: Burst of failed authentications (203.0.113.7) in auth"
    );
    assert_eq!(body["blocks"][0]["type"], "header");
    assert!(header_text(&body).contains("HIGH"));
    let blocks = body["blocks"].as_array().unwrap();
    let fields: Vec<&str> = blocks
        .iter()
        .find_map(|b| b["fields"].as_array())
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    for want in [
        "*Rule*\nfailed-auth-burst (threshold)",
        "*Function*\nauth",
        "*Log group*\n/aws/lambda/auth",
        "*Key*\nsource_ip = 203.0.113.7",
        "*Count*\n31",
        "*First seen*\n2026-11-22T10:00:00.000Z",
        "*Last seen*\n2026-11-22T10:00:41.000Z",
    ] {
        assert!(
            fields.contains(&want),
            "missing field {want:?} in {fields:?}"
        );
    }
    let evidence = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .find(|t| t.starts_with("*Evidence*"))
        .unwrap();
    assert_eq!(
        evidence,
        "*Evidence*\n```\nFailed password for root from 203.0.113.7 &lt;!channel&gt;\n```"
    );
    let buttons = blocks.iter().find(|b| b["type"] == "actions").unwrap()["elements"]
        .as_array()
        .unwrap();
    let urls: Vec<&str> = buttons.iter().map(|b| b["url"].as_str().unwrap()).collect();
    let a = alert("a1");
    assert_eq!(
        urls,
        [
            a.links.log_stream.as_deref().unwrap(),
            a.links.insights.as_deref().unwrap()
        ]
    );
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_then_succeeds() {
    let srv = server(vec![
        Reply::Status(429, vec![("Retry-After", "1")], "rate_limited"),
        ok(),
    ])
    .await;
    let client = SlackClient::new(&srv.url()).unwrap();
    let t0 = Instant::now();
    let d = client.post_alert(&alert("a1")).await.unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(d.attempts, 2);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].body, reqs[1].body,
        "the retry sends the same message"
    );
    // A lower bound on a real sleep cannot flake: the wait is at least 1 s.
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    // The real wait is 1 s; 5x headroom for a loaded 2-core machine. Longer
    // would mean Retry-After was misread (a minute, say), not a slow machine.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test]
async fn server_errors_forever_fail_cleanly_within_the_deadline() {
    let srv = server(vec![Reply::Status(500, vec![], "oops")]).await;
    // The injected clock: the deadline is counted in the client's own time,
    // so the number of attempts does not depend on the machine's speed.
    let timer = FakeTimer::new();
    let client = SlackClient::new(&srv.url())
        .unwrap()
        .with_policy(fast_policy(1_500))
        .with_timer(timer.clone());
    let err = client.post_alert(&alert("a1")).await.unwrap_err();
    let SlackError::GaveUp {
        attempts,
        last,
        elapsed_ms,
    } = &err
    else {
        panic!("expected GaveUp, got {err}");
    };
    assert!(
        timer.slept() < Duration::from_millis(1_500),
        "{:?}",
        timer.sleeps()
    );
    assert!(*elapsed_ms < 1_500, "gave up after {elapsed_ms} ms");
    // Waits of at most 100, 200, 400, 400 ms (1.1 s) always fit in 1.5 s.
    assert_eq!(timer.sleeps().len() + 1, *attempts as usize);
    assert!(*attempts >= 5, "{attempts} attempts");
    assert_eq!(srv.requests().len(), *attempts as usize);
    assert!(last.contains("HTTP 500: oops"), "{last}");
    assert!(err.is_transient());
    assert!(!err.to_string().contains("SECRETTOKEN"), "{err}");
}

#[tokio::test]
async fn client_error_is_not_retried_and_keeps_slacks_answer() {
    let srv = server(vec![Reply::Status(400, vec![], "invalid_payload"), ok()]).await;
    let client = SlackClient::new(&srv.url()).unwrap();
    let err = client.post_alert(&alert("a1")).await.unwrap_err();
    match &err {
        SlackError::Rejected { status, body } => {
            assert_eq!((*status, body.as_str()), (400, "invalid_payload"));
        }
        e => panic!("expected Rejected, got {e}"),
    }
    assert!(!err.is_transient());
    assert_eq!(srv.requests().len(), 1);
}

#[tokio::test]
async fn backoff_grows_with_jitter_and_stops_before_the_deadline() {
    let srv = server(vec![Reply::Status(503, vec![], "busy")]).await;
    let timer = FakeTimer::new();
    let client = SlackClient::new(&srv.url())
        .unwrap()
        .with_policy(RetryPolicy::default())
        .with_timer(timer.clone());
    let t0 = Instant::now();
    let err = client.post_alert(&alert("a1")).await.unwrap_err();
    let elapsed = t0.elapsed();
    let SlackError::GaveUp { attempts, .. } = err else {
        panic!("expected GaveUp, got {err}");
    };
    let sleeps = timer.sleeps();
    // Every wait went through the injected timer: a client that slept for
    // real would take at least the waits it asked for (over 3.8 s, see below).
    assert!(
        elapsed < timer.slept(),
        "took {elapsed:?}: the waits were real"
    );
    assert_eq!(sleeps.len() + 1, attempts as usize);
    assert_eq!(srv.requests().len(), attempts as usize);
    let p = RetryPolicy::default();
    for (i, s) in sleeps.iter().enumerate() {
        let cap = (p.initial_backoff * 2u32.pow(i as u32)).min(p.max_backoff);
        assert!(
            *s >= cap / 2 && *s <= cap,
            "wait {i}: {s:?} not in [{:?}, {cap:?}]",
            cap / 2
        );
    }
    let total: Duration = sleeps.iter().sum();
    assert!(total < p.deadline, "{total:?}");
    // 20 s with waits capped at 4 s: at least 5 retries, so the cap was reached.
    assert!(sleeps.len() >= 5, "{sleeps:?}");
    // Jitter: not every wait is exactly at its cap.
    assert!(sleeps.iter().any(|s| s.subsec_nanos() % 1_000_000 != 0));
}

#[tokio::test]
async fn retry_after_is_honoured_exactly_and_not_past_the_deadline() {
    let srv = server(vec![
        Reply::Status(429, vec![("Retry-After", "7")], "rate_limited"),
        ok(),
    ])
    .await;
    let timer = FakeTimer::new();
    let client = SlackClient::new(&srv.url())
        .unwrap()
        .with_timer(timer.clone());
    client.post_alert(&alert("a1")).await.unwrap();
    assert_eq!(timer.sleeps(), [Duration::from_secs(7)]);

    let srv = server(vec![Reply::Status(
        429,
        vec![("Retry-After", "3600")],
        "rate_limited",
    )])
    .await;
    let timer = FakeTimer::new();
    let client = SlackClient::new(&srv.url())
        .unwrap()
        .with_timer(timer.clone());
    let err = client
        .post_alert(&alert("a1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(timer.sleeps().is_empty(), "must not wait past the deadline");
    assert_eq!(srv.requests().len(), 1);
    assert!(err.contains("Retry-After 3600 s"), "{err}");
}

#[tokio::test]
async fn connection_refused_is_retried_until_the_deadline_without_leaking_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    // The injected clock: attempts under the 600 ms deadline do not depend
    // on how fast a refused connection comes back on a loaded machine.
    let timer = FakeTimer::new();
    let client = SlackClient::new(&format!("http://{addr}/services/T/B/SECRETTOKEN"))
        .unwrap()
        .with_policy(fast_policy(600))
        .with_timer(timer.clone());
    let err = client.post_alert(&alert("a1")).await.unwrap_err();
    let SlackError::GaveUp { attempts, .. } = &err else {
        panic!("expected GaveUp, got {err}");
    };
    // The first wait is at most 100 ms, so a second attempt always fits.
    assert!(*attempts >= 2, "{attempts}");
    assert_eq!(timer.sleeps().len() + 1, *attempts as usize);
    assert!(
        timer.slept() < Duration::from_millis(600),
        "{:?}",
        timer.sleeps()
    );
    assert!(!err.to_string().contains("SECRETTOKEN"), "{err}");
}

#[tokio::test]
async fn a_hanging_server_times_out_and_is_retried() {
    let srv = server(vec![Reply::Hang]).await;
    // The real clock: the request timeout is the HTTP client's own. A second
    // attempt needs the first 200 ms timeout plus a wait of at most 50 ms to
    // end inside the 2 s deadline, 8x headroom for a loaded machine. Without
    // the request timeout the first request would hold the whole deadline
    // and there would be one attempt, so no wall-clock bound is needed.
    let client = SlackClient::new(&srv.url())
        .unwrap()
        .with_policy(RetryPolicy {
            deadline: Duration::from_secs(2),
            request_timeout: Duration::from_millis(200),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(100),
        });
    let err = client.post_alert(&alert("a1")).await.unwrap_err();
    assert!(
        matches!(err, SlackError::GaveUp { attempts, .. } if attempts >= 2),
        "{err}"
    );
    assert!(srv.requests().len() >= 2);
}

// ---------------------------------------------------------------------------
// The notifier service, called as Lambda calls it
// ---------------------------------------------------------------------------

fn service(srv: &Server, policy: RetryPolicy) -> NotifierService {
    NotifierService::new(Webhook::ready(
        SlackClient::new(&srv.url()).unwrap().with_policy(policy),
    ))
}

async fn call(svc: &NotifierService, ev: Value) -> Result<Value, NotifierError> {
    svc.call(LambdaEvent::new(ev, Context::default())).await
}

#[tokio::test]
async fn sns_event_with_two_alerts_and_an_alarm_posts_three_messages() {
    let srv = server(vec![ok()]).await;
    let svc = service(&srv, RetryPolicy::default());
    let ev = sns_event(vec![
        sns_record(
            "m1",
            "[HIGH] failed-auth-burst",
            &json!(alert("a1")).to_string(),
        ),
        sns_record(
            "m2",
            "[HIGH] failed-auth-burst",
            &json!(alert("a2")).to_string(),
        ),
        sns_record(
            "m3",
            "ALARM: \"logwarden-notifier-errors\"",
            &alarm_message(),
        ),
    ]);
    let resp = call(&svc, ev).await.unwrap();
    assert_eq!(resp["posted"], 3);
    assert_eq!(resp["failed"], 0);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    let bodies: Vec<Value> = reqs.iter().map(Recorded::json).collect();
    assert!(header_text(&bodies[0]).contains("Burst of failed authentications"));
    assert!(bodies[0]["blocks"].to_string().contains("id `a1`"));
    assert!(bodies[1]["blocks"].to_string().contains("id `a2`"));
    assert_eq!(
        bodies[2]["text"],
        "logwarden alarm: logwarden-notifier-errors is ALARM — Threshold Crossed: 1 datapoint [2.0] was greater than the threshold (0.0)."
    );
}

#[tokio::test]
async fn unrecognised_message_is_posted_as_escaped_text() {
    let srv = server(vec![ok()]).await;
    let svc = service(&srv, RetryPolicy::default());
    let ev = sns_event(vec![sns_record(
        "m1",
        "hi",
        "deploy done <!channel> & more",
    )]);
    let resp = call(&svc, ev).await.unwrap();
    assert_eq!(
        (resp["posted"].as_u64(), resp["unrecognised"].as_u64()),
        (Some(1), Some(1))
    );
    let body = srv.requests()[0].json().to_string();
    assert!(
        body.contains("deploy done &lt;!channel&gt; &amp; more"),
        "{body}"
    );
    assert!(!body.contains("<!channel>"));
}

#[tokio::test]
async fn a_failed_post_fails_the_invocation_after_trying_the_others_and_the_retry_does_not_repost()
{
    // Message 1 is posted, message 2 is rejected, message 3 is posted; the
    // SNS retry of the invocation then only posts message 2.
    let srv = server(vec![ok(), Reply::Status(404, vec![], "no_service"), ok()]).await;
    let svc = service(&srv, fast_policy(1_000));
    let ev = sns_event(vec![
        sns_record("m1", "s", &json!(alert("a1")).to_string()),
        sns_record("m2", "s", &json!(alert("a2")).to_string()),
        sns_record("m3", "s", &alarm_message()),
    ]);
    let err = call(&svc, ev.clone()).await.unwrap_err();
    match &err {
        NotifierError::Undelivered {
            failed,
            total,
            first,
        } => {
            assert_eq!((*failed, *total), (1, 3));
            assert!(first.to_string().contains("404: no_service"), "{first}");
        }
        e => panic!("expected Undelivered, got {e}"),
    }
    assert_eq!(srv.requests().len(), 3, "the others were still tried");
    let resp = call(&svc, ev).await.unwrap();
    assert_eq!(resp["posted"], 1);
    assert_eq!(resp["duplicates"], 2);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 4);
    assert!(reqs[3].json()["blocks"].to_string().contains("id `a2`"));
}

#[tokio::test]
async fn a_resolution_after_its_firing_is_posted_as_its_own_message_naming_the_incident() {
    let srv = server(vec![ok()]).await;
    let svc = service(&srv, RetryPolicy::default());
    let firing = alert("a1");
    let mut resolved = firing.clone();
    resolved.status = logwarden::alert::AlertStatus::Resolved;
    resolved.resolved_at = Some("2026-11-22T10:12:00.000Z".into());
    let mut shadow = firing.clone();
    shadow.shadow = true;
    let ev = |id: &str, a: &Alert| sns_event(vec![sns_record(id, "s", &json!(a).to_string())]);
    assert_eq!(call(&svc, ev("m1", &firing)).await.unwrap()["posted"], 1);
    // Same id as the firing: not taken for a duplicate of it.
    assert_eq!(call(&svc, ev("m2", &resolved)).await.unwrap()["posted"], 1);
    // A retry of the resolution is.
    assert_eq!(
        call(&svc, ev("m2", &resolved)).await.unwrap()["duplicates"],
        1
    );
    let resp = call(&svc, ev("m3", &shadow)).await.unwrap();
    assert_eq!(
        (resp["posted"].as_u64(), resp["shadow"].as_u64()),
        (Some(0), Some(1))
    );
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2, "shadow alerts are never posted");
    let r = reqs[1].json();
    assert!(
        header_text(&r).starts_with(":white_check_mark: RESOLVED · Burst of failed"),
        "{r}"
    );
    let text = r["blocks"].to_string();
    for want in [
        "*Rule*\\nfailed-auth-burst",
        "*Key*\\nsource_ip = 203.0.113.7",
        "*First seen*",
        "*Last seen*",
        "*Count*\\n31",
        "id `a1`",
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
}

#[tokio::test]
async fn the_invocation_deadline_bounds_retries() {
    let srv = server(vec![Reply::Status(500, vec![], "oops")]).await;
    // The client alone would keep trying for 20 s; its waits go through the
    // injected clock, so the test does not wait and no speed matters.
    let timer = FakeTimer::new();
    let svc = NotifierService::new(Webhook::ready(
        SlackClient::new(&srv.url())
            .unwrap()
            .with_policy(RetryPolicy::default())
            .with_timer(timer.clone()),
    ));
    let mut ctx = Context::default();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // 6 s left, 1 s of which is kept back for returning the error: 5 s to post.
    ctx.deadline = now_ms + 6_000;
    let ev = sns_event(vec![sns_record("m1", "s", &json!(alert("a1")).to_string())]);
    let err = svc.call(LambdaEvent::new(ev, ctx)).await.unwrap_err();
    // Done within the invocation's 5 s; the client's own 20 s deadline would
    // have let it wait over 16 s (it stops only when the next wait, at most
    // 4 s, would pass 20 s).
    assert!(
        timer.slept() < Duration::from_secs(5),
        "{:?}",
        timer.sleeps()
    );
    assert!(timer.sleeps().len() >= 2, "{:?}", timer.sleeps());
    assert!(
        matches!(err, NotifierError::Undelivered { failed: 1, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn events_that_are_not_sns_are_refused() {
    let srv = server(vec![ok()]).await;
    let svc = service(&srv, RetryPolicy::default());
    let err = call(&svc, json!({"awslogs": {"data": "x"}}))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifierError::Unrecognised(_)), "{err}");
    assert!(srv.requests().is_empty());
}

// ---------------------------------------------------------------------------
// Alert lines (the CLI's `notify slack`)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn alert_lines_skip_blanks_report_bad_lines_by_number_and_continue() {
    let srv = server(vec![
        ok(),
        Reply::Status(400, vec![], "invalid_blocks"),
        ok(),
    ])
    .await;
    let client = SlackClient::new(&srv.url()).unwrap();
    let input = format!(
        "{}\n\n   \n{{\"not\": \"an alert\"}}\n{}\nnot json at all\n{}\n",
        json!(alert("a1")),
        json!(alert("a2")),
        json!(alert("a3")),
    );
    let s = post_alert_lines(Cursor::new(input), &client).await.unwrap();
    assert_eq!((s.posted, s.failed, s.malformed), (2, 1, 2));
    assert!(!s.all_posted());
    let problems: Vec<(usize, LineProblemKind)> = s
        .problems
        .iter()
        .map(|p| (p.line, p.kind.clone()))
        .collect();
    assert_eq!(
        problems,
        [
            (4, LineProblemKind::Malformed),
            (5, LineProblemKind::NotPosted),
            (6, LineProblemKind::Malformed),
        ]
    );
    assert!(
        s.problems[1]
            .to_string()
            .starts_with("line 5: not posted: ")
    );
    assert!(s.problems[1].to_string().contains("invalid_blocks"));
    let ids: Vec<String> = srv
        .requests()
        .iter()
        .map(|r| r.json()["blocks"].to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids[0].contains("id `a1`") && ids[1].contains("id `a2`") && ids[2].contains("id `a3`"));
}

#[tokio::test]
async fn alert_lines_report_non_utf8_lines() {
    let srv = server(vec![ok()]).await;
    let client = SlackClient::new(&srv.url()).unwrap();
    let mut input = b"\xff\xfe\n".to_vec();
    input.extend_from_slice(json!(alert("a1")).to_string().as_bytes());
    let s = post_alert_lines(Cursor::new(input), &client).await.unwrap();
    assert_eq!((s.posted, s.malformed), (1, 1));
    assert_eq!(s.problems[0].line, 1);
}

// ---------------------------------------------------------------------------
// The binary's start-up check
// ---------------------------------------------------------------------------

fn notifier_binary(env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_logwarden-notifier"));
    cmd.env_remove("LOGWARDEN_SLACK_WEBHOOK_URL")
        .env_remove("LOGWARDEN_SLACK_WEBHOOK_SECRET_ARN")
        .env_remove("AWS_LAMBDA_RUNTIME_API");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn notifier_binary_refuses_to_start_without_exactly_one_webhook_source() {
    for (env, want) in [
        (vec![], "set LOGWARDEN_SLACK_WEBHOOK_URL"),
        (
            vec![
                (
                    "LOGWARDEN_SLACK_WEBHOOK_URL",
                    "https://hooks.slack.com/services/T/B/SECRETTOKEN",
                ),
                (
                    "LOGWARDEN_SLACK_WEBHOOK_SECRET_ARN",
                    "arn:aws:secretsmanager:us-east-1:1:secret:x",
                ),
            ],
            "both LOGWARDEN_SLACK_WEBHOOK_URL and LOGWARDEN_SLACK_WEBHOOK_SECRET_ARN are set",
        ),
        (
            vec![(
                "LOGWARDEN_SLACK_WEBHOOK_URL",
                "hooks.slack.com/services/T/B/SECRETTOKEN",
            )],
            "LOGWARDEN_SLACK_WEBHOOK_URL is not a URL",
        ),
    ] {
        let out = notifier_binary(&env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("logwarden-notifier: configuration: ") && stderr.contains(want),
            "{stderr}"
        );
        assert!(!stderr.contains("SECRETTOKEN"), "{stderr}");
    }
}

// ---------------------------------------------------------------------------
// Services started by CI
// ---------------------------------------------------------------------------

#[tokio::test]
async fn webhook_url_is_read_once_from_secrets_manager() {
    let Some(endpoint) = support::moto("webhook_url_is_read_once_from_secrets_manager") else {
        return;
    };
    // Explicit region and dummy credentials: never fall through to IMDS.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let srv = server(vec![ok()]).await;

    // JSON secret with `webhook_url`.
    let name = unique("logwarden-test-slack");
    let arn = sm
        .create_secret()
        .name(&name)
        .secret_string(json!({"webhook_url": srv.url(), "channel": "#alerts"}).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let svc = NotifierService::new(Webhook::from_secret(sm.clone(), &arn, fast_policy(2_000)));
    let ev = |id: &str| sns_event(vec![sns_record(id, "s", &json!(alert(id)).to_string())]);
    assert_eq!(call(&svc, ev("s1")).await.unwrap()["posted"], 1);
    // Read once per container: with the secret gone, the next invocation
    // still posts with the URL it read.
    sm.delete_secret()
        .secret_id(&arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    assert_eq!(call(&svc, ev("s2")).await.unwrap()["posted"], 1);
    assert_eq!(srv.requests().len(), 2);

    // A secret that is the URL itself, addressed by name.
    let name = unique("logwarden-test-slack-plain");
    sm.create_secret()
        .name(&name)
        .secret_string(srv.url())
        .send()
        .await
        .unwrap();
    let svc = NotifierService::new(Webhook::from_secret(sm.clone(), &name, fast_policy(2_000)));
    assert_eq!(call(&svc, ev("s3")).await.unwrap()["posted"], 1);
    assert_eq!(srv.requests().len(), 3);

    // A missing secret fails the invocation (SNS retries), naming the secret.
    let missing = unique("logwarden-test-slack-missing");
    let svc = NotifierService::new(Webhook::from_secret(sm, &missing, fast_policy(2_000)));
    let err = call(&svc, ev("s4")).await.unwrap_err();
    assert!(
        matches!(&err, NotifierError::Webhook(e) if e.is_transient()),
        "{err}"
    );
    assert!(err.to_string().contains(&missing), "{err}");
    assert_eq!(srv.requests().len(), 3);
}

#[tokio::test]
async fn alert_posted_to_the_ci_http_sink_is_recorded_there() {
    let Some(sink) = support::webhook_sink("alert_posted_to_the_ci_http_sink_is_recorded_there")
    else {
        return;
    };
    // Our own path, so tests sharing the sink do not see each other's posts.
    let path = format!("/slack/{}", unique("notify"));
    let client = SlackClient::new(&format!("{sink}{path}")).unwrap();
    client.post_alert(&alert("sink-1")).await.unwrap();
    let recs: Value = reqwest::get(format!("{sink}/requests?path={path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recs = recs.as_array().unwrap();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["path"], path.as_str());
    assert_eq!(recs[0]["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(recs[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["blocks"][0]["type"], "header");
    assert!(body["blocks"].to_string().contains("id `sink-1`"));
}
