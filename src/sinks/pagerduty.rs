//! PagerDuty Events API v2: an incident that opens and closes itself.
//!
//! A firing alert is a `trigger` event and its resolution a `resolve` event,
//! both with `dedup_key` = the alert id, so PagerDuty folds a realert (and
//! every at-least-once copy) into the open incident and the resolution closes
//! it. Severity maps critical→critical, high→error, medium→warning, anything
//! else→info. The summary is one line of at most 1,024 characters; the four
//! W's go in `custom_details`; console links in `links`.
//!
//! Everything from the alert is redacted again ([`crate::alert::redact`]: the
//! input may come from outside logwarden) and control characters are shown as
//! escapes ([`crate::alert::visible`]). Shadow alerts are never sent.
//!
//! Delivery: `202` is success; `429`, `5xx`, connection errors and timeouts
//! are retried with jittered exponential backoff under one deadline (the
//! Slack client's [`RetryPolicy`]); `400` (an invalid event) and any other
//! status fail at once: sending it again cannot change the answer.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::slack::{RetryPolicy, Timer, TokioTimer};
use super::slack::{backoff, body_start, error_chain, http_client, retry_after};
use super::{AlertSink, SinkCause, SinkError};
use crate::alert::redact::{self, RedactOptions};
use crate::alert::{Alert, AlertSeverity, truncate_chars, visible};

/// The Events API v2 endpoint.
pub const EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Environment variable holding the integration's routing key.
pub const ROUTING_KEY_VAR: &str = "LOGWARDEN_PAGERDUTY_ROUTING_KEY";
/// Environment variable holding the ARN (or name) of a secret with the key.
pub const ROUTING_KEY_SECRET_VAR: &str = "LOGWARDEN_PAGERDUTY_ROUTING_KEY_SECRET_ARN";
/// Longest `payload.summary` PagerDuty accepts.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// Longest `dedup_key` PagerDuty accepts.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;

/// Errors of the PagerDuty sink.
#[derive(Debug, thiserror::Error)]
pub enum PagerDutyError {
    /// The routing key or URL is unusable (the key is never shown).
    #[error("{0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
    /// PagerDuty refused the event with a status a retry cannot change
    /// (400: invalid event; its body says which field).
    #[error("PagerDuty rejected the event: HTTP {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The start of PagerDuty's response body.
        body: String,
    },
    /// Retries ran out of time (429, 5xx, connection errors or timeouts).
    #[error(
        "PagerDuty did not accept the event after {attempts} attempt(s) in {elapsed_ms} ms: {last}"
    )]
    GaveUp {
        /// Requests made.
        attempts: u32,
        /// Time spent, waits included.
        elapsed_ms: u64,
        /// The last failure.
        last: String,
    },
    /// The routing key could not be read from Secrets Manager.
    #[error("secret {arn}: {reason}")]
    Secret {
        /// Secret ARN (or name).
        arn: String,
        /// What went wrong (never the secret's value).
        reason: String,
    },
}

/// PagerDuty's severity for an alert's.
pub fn severity(s: &AlertSeverity) -> &'static str {
    match s {
        AlertSeverity::Critical => "critical",
        AlertSeverity::High => "error",
        AlertSeverity::Medium => "warning",
        AlertSeverity::Low | AlertSeverity::Other(_) => "info",
    }
}

/// The event for one alert: `resolve` for a resolution, `trigger` otherwise.
/// Pure; redacts and escapes everything taken from the alert.
pub fn event(alert: &Alert, routing_key: &str) -> Value {
    // The same id redacts the same way: a trigger and its resolve keep one
    // dedup_key.
    let a = &visible::alert(&super::fully_redacted(alert));
    let dedup_key = truncate_chars(&a.id, MAX_DEDUP_KEY_CHARS);
    if a.status.is_resolved() {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let summary = if a.summary.trim().is_empty() {
        a.title.clone()
    } else {
        format!("{} — {}", a.title, a.summary)
    };
    let source =
        a.function
            .as_deref()
            .filter(|f| !f.is_empty())
            .unwrap_or(if a.log_group.is_empty() {
                "logwarden"
            } else {
                &a.log_group
            });
    let mut payload = json!({
        "summary": truncate_chars(&summary, MAX_SUMMARY_CHARS),
        "source": source,
        "severity": severity(&a.severity),
        "group": a.log_group,
        "class": a.kind.as_str(),
        "custom_details": details(a),
    });
    if crate::time::parse_rfc3339(&a.first_seen).is_ok() {
        payload["timestamp"] = json!(a.first_seen);
    }
    if let Some(f) = a.function.as_deref().filter(|f| !f.is_empty()) {
        payload["component"] = json!(f);
    }
    let mut ev = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload,
        "client": "logwarden",
    });
    let links = links(a);
    if !links.is_empty() {
        ev["links"] = Value::Array(links);
    }
    ev
}

/// The four W's, from an alert already redacted and made visible.
fn details(a: &Alert) -> Value {
    let mut what = json!({
        "rule": a.rule,
        "kind": a.kind.as_str(),
        "title": a.title,
        "count": a.count,
        "alert_id": a.id,
    });
    if !a.summary.is_empty() {
        what["summary"] = json!(a.summary);
    }
    if !a.metrics.is_empty() {
        what["metrics"] = json!(a.metrics);
    }
    if !a.evidence.is_empty() {
        what["evidence"] = json!(a.evidence);
    }
    let mut r#where = json!({"log_group": a.log_group});
    for (k, v) in [
        ("account", &a.account),
        ("account_name", &a.account_name),
        ("team", &a.team),
        ("region", &a.region),
        ("log_stream", &a.log_stream),
        ("function", &a.function),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            r#where[k] = json!(v);
        }
    }
    let mut who = json!({"key": a.key});
    if !a.request_ids.is_empty() {
        who["request_ids"] = json!(a.request_ids);
    }
    json!({
        "what": what,
        "where": r#where,
        "who": who,
        "when": {"first_seen": a.first_seen, "last_seen": a.last_seen},
    })
}

/// `links` entries for the console links that are http(s) URLs.
fn links(a: &Alert) -> Vec<Value> {
    [
        ("Open log stream", &a.links.log_stream),
        ("Logs Insights", &a.links.insights),
    ]
    .into_iter()
    .filter_map(|(text, url)| {
        let url = url.as_deref()?;
        let parsed = reqwest::Url::parse(url).ok()?;
        matches!(parsed.scheme(), "https" | "http").then(|| json!({"href": url, "text": text}))
    })
    .collect()
}

/// The routing key inside a secret string: the string itself, or a JSON
/// object's `routing_key` field. Errors never quote the secret.
pub fn routing_key_from_secret(secret: &str) -> Result<String, String> {
    let key = super::secret::credential_in(secret, &["routing_key"])?;
    check_routing_key(&key, "its routing key").map_err(|e| e.to_string())?;
    Ok(key)
}

fn check_routing_key(key: &str, what: &str) -> Result<(), PagerDutyError> {
    if key.is_empty() {
        return Err(PagerDutyError::Config(format!("{what} is empty")));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(PagerDutyError::Config(format!(
            "{what} holds spaces or control characters (value not shown)"
        )));
    }
    Ok(())
}

/// One event PagerDuty accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Requests it took (1 = first try).
    pub attempts: u32,
    /// The `dedup_key` PagerDuty answered with.
    pub dedup_key: Option<String>,
}

/// Sends events to the Events API with one routing key, with retries.
/// Its `Debug` output hides the routing key, which is a credential.
#[derive(Clone)]
pub struct PagerDutyClient {
    http: reqwest::Client,
    url: reqwest::Url,
    routing_key: String,
    policy: RetryPolicy,
    timer: Arc<dyn Timer>,
}

impl fmt::Debug for PagerDutyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyClient")
            .field("url", &self.url.as_str())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl PagerDutyClient {
    /// A client for `routing_key`, posting to `url` (default [`EVENTS_URL`]).
    pub fn new(routing_key: &str, url: Option<&str>) -> Result<PagerDutyClient, PagerDutyError> {
        let routing_key = routing_key.trim();
        check_routing_key(routing_key, "the PagerDuty routing key")?;
        let url = url.unwrap_or(EVENTS_URL);
        let url = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
            .ok_or_else(|| {
                PagerDutyError::Config(format!("PagerDuty URL {url:?} is not an http(s) URL"))
            })?;
        Ok(PagerDutyClient {
            http: http_client().map_err(PagerDutyError::Client)?,
            url,
            routing_key: routing_key.to_string(),
            policy: RetryPolicy::default(),
            timer: Arc::new(TokioTimer),
        })
    }

    /// The same client with another retry policy.
    pub fn with_policy(mut self, policy: RetryPolicy) -> PagerDutyClient {
        self.policy = policy;
        self
    }

    /// The same client with another clock and sleeper (tests).
    pub fn with_timer(mut self, timer: Arc<dyn Timer>) -> PagerDutyClient {
        self.timer = timer;
        self
    }

    /// Send the event for `alert` within the policy's deadline.
    pub async fn send(&self, alert: &Alert) -> Result<Sent, PagerDutyError> {
        self.send_within(alert, self.policy.deadline).await
    }

    /// Send the event for `alert` within `budget` or the policy's deadline,
    /// whichever is shorter. `Retry-After` on a 429 is honoured when given.
    pub async fn send_within(
        &self,
        alert: &Alert,
        budget: Duration,
    ) -> Result<Sent, PagerDutyError> {
        let payload = event(alert, &self.routing_key).to_string();
        let start = self.timer.now();
        let deadline = start
            .checked_add(budget.min(self.policy.deadline))
            .unwrap_or_else(|| start + Duration::from_secs(86_400));
        let mut attempts = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(self.timer.now());
            if remaining.is_zero() {
                return Err(self.give_up(attempts, start, "no time left".into()));
            }
            attempts += 1;
            let sent = self
                .http
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(payload.clone())
                .timeout(self.policy.request_timeout.min(remaining))
                .send()
                .await;
            let (wait, last) = match sent {
                Ok(resp) if resp.status().is_success() => {
                    let text = body_start(resp).await;
                    let dedup_key = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v.get("dedup_key")?.as_str().map(str::to_string));
                    return Ok(Sent {
                        attempts,
                        dedup_key,
                    });
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let ra = retry_after(resp.headers());
                    let text = body_start(resp).await;
                    if status != 429 && !(500..600).contains(&status) {
                        tracing::error!(status, body = %text, attempts, "PagerDuty rejected the event; not retrying.");
                        return Err(PagerDutyError::Rejected { status, body: text });
                    }
                    let wait = ra.unwrap_or_else(|| backoff(&self.policy, attempts));
                    (wait, format!("HTTP {status}: {text}"))
                }
                Err(e) => (backoff(&self.policy, attempts), error_chain(&e)),
            };
            if self
                .timer
                .now()
                .checked_add(wait)
                .is_none_or(|t| t >= deadline)
            {
                let last = format!(
                    "{last}; next try in {} ms would pass the deadline",
                    wait.as_millis()
                );
                return Err(self.give_up(attempts, start, last));
            }
            tracing::warn!(attempts, wait_ms = wait.as_millis() as u64, failure = %last, "PagerDuty delivery failed; retrying.");
            self.timer.sleep(wait).await;
        }
    }

    fn give_up(&self, attempts: u32, start: Instant, last: String) -> PagerDutyError {
        let elapsed_ms = self
            .timer
            .now()
            .saturating_duration_since(start)
            .as_millis() as u64;
        tracing::error!(attempts, elapsed_ms, failure = %last, "Gave up sending to PagerDuty.");
        PagerDutyError::GaveUp {
            attempts,
            elapsed_ms,
            last,
        }
    }
}

/// PagerDuty as an [`AlertSink`]: each alert redacted (with the sink's
/// options) and sent, one after another; shadow alerts are skipped.
#[derive(Debug, Clone)]
pub struct PagerDutySink {
    client: PagerDutyClient,
    redact: RedactOptions,
}

impl PagerDutySink {
    /// A sink sending through `client`, redacting with `redact` first.
    pub fn new(client: PagerDutyClient, redact: RedactOptions) -> PagerDutySink {
        PagerDutySink { client, redact }
    }

    /// Redact and send one alert; `Ok(None)` for a shadow alert, not sent.
    pub async fn send(&self, alert: &Alert) -> Result<Option<Sent>, PagerDutyError> {
        if alert.shadow {
            tracing::info!(alert = %alert.id, rule = %alert.rule, "Shadow alert; not sent to PagerDuty.");
            return Ok(None);
        }
        let mut alert = alert.clone();
        redact::alert(&mut alert, &self.redact);
        self.client.send(&alert).await.map(Some)
    }
}

impl AlertSink for PagerDutySink {
    /// Every alert is tried, in order; a failed one does not stop the rest.
    async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
        let mut failed = Vec::new();
        let mut last = None;
        for a in alerts {
            if let Err(e) = self.send(a).await {
                failed.push(a.id.clone());
                last = Some(e);
            }
        }
        match last {
            None => Ok(()),
            Some(e) => Err(SinkError {
                sink: "pagerduty".to_string(),
                failed,
                cause: SinkCause::PagerDuty(e),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        serde_json::from_value(json!({
            "id": "0123456789abcdef0123456789abcdef", "rule": "failed-auth-burst",
            "kind": "threshold", "severity": "high",
            "title": "Burst\r\nof <!channel> failures", "summary": "31 failures.\u{202e}",
            "account": "123456789012", "region": "eu-west-1",
            "log_group": "/aws/lambda/auth", "log_stream": "s", "function": "auth",
            "key": {"source_ip": "203.0.113.7"}, "request_ids": ["r1"], "count": 31,
            "first_seen": "2026-11-22T10:00:00.000Z", "last_seen": "2026-11-22T10:00:41.000Z",
            "evidence": ["password=hunter2 AKIAIOSFODNN7EXAMPLE"],
            "links": {"log_stream": "https://console.aws.amazon.com/x", "insights": "javascript:alert(1)"},
        }))
        .unwrap()
    }

    #[test]
    fn a_firing_is_a_trigger_with_the_four_ws_and_escaped_fields() {
        let ev = event(&alert(), "KEY");
        assert_eq!(ev["event_action"], "trigger");
        assert_eq!(ev["dedup_key"], "0123456789abcdef0123456789abcdef");
        assert_eq!(ev["routing_key"], "KEY");
        let p = &ev["payload"];
        assert_eq!(p["severity"], "error");
        assert_eq!(p["source"], "auth");
        assert_eq!(p["timestamp"], "2026-11-22T10:00:00.000Z");
        let summary = p["summary"].as_str().unwrap();
        assert!(!summary.chars().any(char::is_control), "{summary:?}");
        assert!(
            summary.starts_with("Burst\\r\\nof <!channel> failures — 31 failures.\\u202e"),
            "{summary}"
        );
        let d = &p["custom_details"];
        assert_eq!(d["where"]["region"], "eu-west-1");
        assert_eq!(d["where"]["account"], "123456789012");
        assert_eq!(d["who"]["key"]["source_ip"], "203.0.113.7");
        assert_eq!(d["who"]["request_ids"][0], "r1");
        assert_eq!(d["when"]["last_seen"], "2026-11-22T10:00:41.000Z");
        assert_eq!(d["what"]["count"], 31);
        let text = ev.to_string();
        assert!(
            !text.contains("AKIAIOSFODNN7EXAMPLE") && !text.contains("hunter2"),
            "{text}"
        );
        assert_eq!(
            ev["links"],
            json!([{"href": "https://console.aws.amazon.com/x", "text": "Open log stream"}])
        );
    }

    #[test]
    fn a_resolution_is_a_resolve_with_the_same_dedup_key() {
        let mut a = alert();
        a.status = crate::alert::AlertStatus::Resolved;
        a.resolved_at = Some("2026-11-22T10:12:00.000Z".into());
        let ev = event(&a, "KEY");
        assert_eq!(
            ev,
            json!({"routing_key": "KEY", "event_action": "resolve",
                   "dedup_key": "0123456789abcdef0123456789abcdef"})
        );
    }

    #[test]
    fn severities_map_and_summaries_are_capped() {
        for (ours, theirs) in [
            ("critical", "critical"),
            ("high", "error"),
            ("medium", "warning"),
            ("low", "info"),
            ("weird", "info"),
        ] {
            assert_eq!(severity(&AlertSeverity::from(ours)), theirs);
        }
        let mut a = alert();
        a.summary = "s".repeat(5_000);
        a.first_seen = "not a time".into();
        let ev = event(&a, "K");
        assert_eq!(
            ev["payload"]["summary"].as_str().unwrap().chars().count(),
            MAX_SUMMARY_CHARS
        );
        assert!(ev["payload"].get("timestamp").is_none());
    }

    /// Every string of `v` with the path that leads to it.
    fn strings<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
        match v {
            Value::String(s) => out.push((path, s)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| strings(x, format!("{path}[{i}]"), out)),
            Value::Object(o) => o
                .iter()
                .for_each(|(k, x)| strings(x, format!("{path}.{k}"), out)),
            _ => {}
        }
    }

    #[test]
    fn hostile_values_in_every_field_arrive_escaped_and_redacted() {
        let evil = "\u{1b}[31m<!here>\r\nX\u{202e}AKIAIOSFODNN7EXAMPLE";
        let mut v = serde_json::to_value(alert()).unwrap();
        for f in [
            "id",
            "rule",
            "kind",
            "severity",
            "title",
            "summary",
            "account",
            "region",
            "log_group",
            "log_stream",
            "function",
            "first_seen",
            "last_seen",
        ] {
            v[f] = json!(evil);
        }
        v["key"] = json!({evil: evil});
        v["request_ids"] = json!([evil]);
        v["evidence"] = json!([evil]);
        v["metrics"] = json!({evil: 1.0});
        v["account_name"] = json!(evil);
        v["team"] = json!(evil);
        let a: Alert = serde_json::from_value(v).unwrap();
        let ev = event(&a, "K");
        let mut all = Vec::new();
        strings(&ev, String::new(), &mut all);
        for (path, s) in &all {
            assert!(!s.contains("AKIAIOSFODNN7EXAMPLE"), "{path}: {s:?}");
            assert!(
                !s.chars()
                    .any(|c| c.is_control() && c != '\n' || c == '\u{202e}'),
                "{path}: {s:?}"
            );
            if s.contains('\n') {
                assert!(
                    path.contains("evidence"),
                    "a line break outside evidence: {path}"
                );
            }
        }
        assert!(all.len() > 20, "{all:?}");
        assert_eq!(
            ev["payload"]["severity"], "info",
            "an unknown severity is info"
        );
    }

    #[test]
    fn routing_keys_are_checked_without_echoing_them() {
        assert_eq!(routing_key_from_secret(" R0UT1NG\n").unwrap(), "R0UT1NG");
        assert_eq!(
            routing_key_from_secret(r#"{"routing_key": "R0UT1NG"}"#).unwrap(),
            "R0UT1NG"
        );
        let e = routing_key_from_secret(r#"{"key": "SECRETPART"}"#).unwrap_err();
        assert!(
            e.contains("routing_key") && !e.contains("SECRETPART"),
            "{e}"
        );
        let e = routing_key_from_secret("SECRET PART").unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
        let e = PagerDutyClient::new("", None).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let c = PagerDutyClient::new("SECRETPART", None).unwrap();
        assert!(!format!("{c:?}").contains("SECRETPART"));
        assert!(PagerDutyClient::new("k", Some("ftp://x")).is_err());
    }
}
