//! PagerDuty Events API v2 against a local stand-in that answers as the real
//! API does: 202 with `{"status":"success","message":"Event processed",
//! "dedup_key":…}`, 400 for an invalid event, and scripted 429 and 500.

use std::collections::VecDeque;
use std::io::Write;

use logwarden::alert::{Alert, AlertStatus};
use logwarden::sinks::AlertSink;
use logwarden::sinks::pagerduty::{PagerDutyClient, PagerDutyError, PagerDutySink};
use logwarden::sinks::slack::RetryPolicy;
use serde_json::{Value, json};

use crate::support::FakeTimer;
use crate::support::standin::{Reply, Req, StandIn};

pub const KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32";

/// The Events API's own checks, as documented: routing key, action, and for
/// a trigger a payload with summary, source and a known severity.
pub fn events_api(req: &Req) -> Reply {
    let ev = req.json();
    let invalid = |why: &str| {
        Reply::json(
            400,
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": [why]}),
        )
    };
    if req.method != "POST" || req.path != "/v2/enqueue" {
        return Reply::json(404, json!({"status": "not found"}));
    }
    if ev["routing_key"] != KEY {
        return invalid("Invalid routing key");
    }
    let action = ev["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        return invalid("'event_action' is invalid");
    }
    if action == "trigger" {
        let p = &ev["payload"];
        let summary = p["summary"].as_str().unwrap_or("");
        if summary.is_empty() || summary.chars().count() > 1024 {
            return invalid("'payload.summary' is missing or too long");
        }
        if p["source"].as_str().unwrap_or("").is_empty() {
            return invalid("'payload.source' is missing");
        }
        if !["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap_or(""))
        {
            return invalid("'payload.severity' is invalid");
        }
    } else if ev["dedup_key"].as_str().unwrap_or("").is_empty() {
        return invalid("'dedup_key' is required for resolve");
    }
    Reply::json(
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": ev["dedup_key"]}),
    )
}

/// [`events_api`] after the scripted faults, one per request.
fn with_faults(faults: Vec<Reply>) -> impl FnMut(&Req) -> Reply + Send + 'static {
    let mut faults = VecDeque::from(faults);
    move |req| faults.pop_front().unwrap_or_else(|| events_api(req))
}

fn alert(status: AlertStatus, shadow: bool) -> Alert {
    let mut a = crate::support::golden_alerts()
        .into_iter()
        .find(|a| a.rule == "failed-auth-burst")
        .unwrap();
    a.status = status;
    a.shadow = shadow;
    if a.status.is_resolved() {
        a.resolved_at = Some("2026-11-22T10:12:00.000Z".into());
    }
    a
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        deadline: std::time::Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn firing_then_resolution_open_and_close_one_incident_and_shadow_sends_nothing() {
    let pd = StandIn::start(events_api).await;
    let client = PagerDutyClient::new(KEY, Some(&pd.url("/v2/enqueue"))).unwrap();
    let mut sink = PagerDutySink::new(client, Default::default());
    let firing = alert(AlertStatus::Firing, false);
    let resolved = alert(AlertStatus::Resolved, false);
    let shadow = alert(AlertStatus::Firing, true);
    sink.publish(&[firing.clone(), shadow, resolved])
        .await
        .unwrap();
    let reqs = pd.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let (t, r) = (reqs[0].json(), reqs[1].json());
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(r["event_action"], "resolve");
    assert_eq!(t["dedup_key"], firing.id.as_str());
    assert_eq!(r["dedup_key"], firing.id.as_str());
    assert_eq!(t["payload"]["severity"], "error", "high maps to error");
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    let d = &t["payload"]["custom_details"];
    for w in ["what", "where", "who", "when"] {
        assert!(d[w].is_object(), "custom_details lacks {w}: {d}");
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_with_backoff_then_delivered() {
    let pd = StandIn::start(with_faults(vec![
        Reply::json(429, json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly.  Please retry later."}))
            .with_header("Retry-After", "2"),
        Reply::json(500, json!({"status": "error"})),
        Reply::json(502, json!({"status": "error"})),
    ]))
    .await;
    let timer = FakeTimer::new();
    let client = PagerDutyClient::new(KEY, Some(&pd.url("/v2/enqueue")))
        .unwrap()
        .with_policy(fast())
        .with_timer(timer.clone());
    let a = alert(AlertStatus::Firing, false);
    let sent = client.send(&a).await.unwrap();
    assert_eq!(sent.attempts, 4);
    assert_eq!(sent.dedup_key.as_deref(), Some(a.id.as_str()));
    let sleeps = timer.sleeps();
    assert_eq!(sleeps.len(), 3, "{sleeps:?}");
    assert_eq!(
        sleeps[0],
        std::time::Duration::from_secs(2),
        "Retry-After is honoured"
    );
    assert!(sleeps[2] >= sleeps[1] / 2, "backoff grows: {sleeps:?}");
    assert_eq!(pd.requests().len(), 4);
}

#[tokio::test]
async fn an_invalid_event_is_not_retried_and_errors_forever_give_up_within_the_deadline() {
    let pd = StandIn::start(events_api).await;
    let timer = FakeTimer::new();
    let client = PagerDutyClient::new("WRONGKEY", Some(&pd.url("/v2/enqueue")))
        .unwrap()
        .with_timer(timer.clone());
    let e = client
        .send(&alert(AlertStatus::Firing, false))
        .await
        .unwrap_err();
    match &e {
        PagerDutyError::Rejected { status, body } => {
            assert_eq!(*status, 400);
            assert!(body.contains("Invalid routing key"), "{body}");
        }
        e => panic!("{e}"),
    }
    assert_eq!(pd.requests().len(), 1, "400 is not retried");
    assert!(!e.to_string().contains("WRONGKEY"));

    let down = StandIn::start(|_: &Req| Reply::json(503, json!({"status": "unavailable"}))).await;
    let timer = FakeTimer::new();
    let client = PagerDutyClient::new(KEY, Some(&down.url("/v2/enqueue")))
        .unwrap()
        .with_policy(fast())
        .with_timer(timer.clone());
    let e = client
        .send(&alert(AlertStatus::Firing, false))
        .await
        .unwrap_err();
    assert!(matches!(e, PagerDutyError::GaveUp { .. }), "{e}");
    assert!(timer.slept() < std::time::Duration::from_secs(10));
    let n = down.requests().len();
    assert!((2..30).contains(&n), "{n} attempts");
}

#[tokio::test]
async fn notify_pagerduty_sends_alert_lines_as_the_notifier_does() {
    let pd = StandIn::start(events_api).await;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for a in [
        alert(AlertStatus::Firing, false),
        alert(AlertStatus::Firing, true),
        alert(AlertStatus::Resolved, false),
    ] {
        writeln!(f, "{}", serde_json::to_string(&a).unwrap()).unwrap();
    }
    let url = pd.url("/v2/enqueue");
    let path = f.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_logwarden"))
            .args(["notify", "pagerduty", "--url", &url])
            .arg(&path)
            .env("LOGWARDEN_PAGERDUTY_ROUTING_KEY", KEY)
            .env_remove("LOGWARDEN_REDACT_EMAILS")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("2 sent, 0 not sent, 0 not alerts, 1 shadow (never delivered)"),
        "{stderr}"
    );
    let actions: Vec<Value> = pd
        .requests()
        .iter()
        .map(|r| r.json()["event_action"].clone())
        .collect();
    assert_eq!(actions, [json!("trigger"), json!("resolve")]);
    assert!(!stderr.contains(KEY));
}
