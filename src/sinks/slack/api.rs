//! The Slack Web API with a bot token (`chat.postMessage`, `chat.update`),
//! for messages that follow an incident ([`super::bot`]).
//!
//! Slack answers HTTP 200 with `{"ok": false, "error": "…"}` for most
//! failures. `ratelimited` (also sent as HTTP 429 with `Retry-After`) and
//! Slack's own transient errors are retried under one deadline; every other
//! error (`channel_not_found`, `invalid_auth`, `not_in_channel`,
//! `message_not_found`, …) fails at once as [`SlackError::Api`] with Slack's
//! code: sending the same call again cannot change the answer.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{backoff, error_chain, http_client, retry_after};
use super::{RetryPolicy, SlackError, Timer, TokioTimer};

/// Slack's Web API base URL.
pub const API_URL: &str = "https://slack.com/api/";

/// `ok:false` errors a later try can get past.
const TRANSIENT: [&str; 5] = [
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// A Web API client for one bot token. Built once and shared; its `Debug`
/// output hides the token.
#[derive(Clone)]
pub struct SlackApi {
    http: reqwest::Client,
    base: reqwest::Url,
    token: String,
    policy: RetryPolicy,
    timer: Arc<dyn Timer>,
}

impl fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackApi")
            .field("base", &self.base.as_str())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The bot token inside a secret string: the string itself, or a JSON
/// object's `token` or `bot_token` field. Errors never quote the secret.
pub fn bot_token_from_secret(secret: &str) -> Result<String, String> {
    let token = crate::sinks::secret::credential_in(secret, &["token", "bot_token"])?;
    check_token(&token, "its bot token").map_err(|e| e.to_string())?;
    Ok(token)
}

fn check_token(token: &str, what: &str) -> Result<(), SlackError> {
    let bad = |reason: &str| SlackError::WebhookUrl {
        what: what.to_string(),
        reason: reason.to_string(),
    };
    if token.is_empty() {
        return Err(bad("is empty"));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("holds spaces or control characters (value not shown)"));
    }
    Ok(())
}

impl SlackApi {
    /// A client for `token`, calling methods under `base` (default [`API_URL`]).
    pub fn new(token: &str, base: Option<&str>) -> Result<SlackApi, SlackError> {
        let token = token.trim();
        check_token(token, "the Slack bot token")?;
        let mut base = super::parse_webhook_url(base.unwrap_or(API_URL), "Slack API URL")?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(SlackApi {
            http: http_client().map_err(SlackError::Client)?,
            base,
            token: token.to_string(),
            policy: RetryPolicy::default(),
            timer: Arc::new(TokioTimer),
        })
    }

    /// The same client with another retry policy.
    pub fn with_policy(mut self, policy: RetryPolicy) -> SlackApi {
        self.policy = policy;
        self
    }

    /// The same client with another clock and sleeper (tests).
    pub fn with_timer(mut self, timer: Arc<dyn Timer>) -> SlackApi {
        self.timer = timer;
        self
    }

    /// A deadline `budget` (or the policy's deadline, if shorter) from now.
    pub fn deadline(&self, budget: Duration) -> Instant {
        let now = self.timer.now();
        now.checked_add(budget.min(self.policy.deadline))
            .unwrap_or_else(|| now + Duration::from_secs(86_400))
    }

    /// Call `method` with a JSON body; the answer's JSON when `ok` is true.
    pub async fn call(
        &self,
        method: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Value, SlackError> {
        let url = self
            .base
            .join(method)
            .map_err(|e| SlackError::Client(format!("method {method}: {e}")))?;
        let payload = body.to_string();
        let start = self.timer.now();
        let mut attempts = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(self.timer.now());
            if remaining.is_zero() {
                return Err(self.give_up(method, attempts, start, "no time left".into()));
            }
            attempts += 1;
            let sent = self
                .http
                .post(url.clone())
                .bearer_auth(&self.token)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .body(payload.clone())
                .timeout(self.policy.request_timeout.min(remaining))
                .send()
                .await;
            let (wait, last) = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let ra = retry_after(resp.headers());
                    let text = body_start_json(resp).await;
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if v["ok"] == true {
                        return Ok(v);
                    }
                    let error = v["error"].as_str().unwrap_or("").to_string();
                    let retry = status == 429
                        || (500..600).contains(&status)
                        || TRANSIENT.contains(&error.as_str());
                    if !retry {
                        let error = if error.is_empty() {
                            format!("HTTP {status}: {}", one_line(&text))
                        } else {
                            error
                        };
                        tracing::error!(method, error = %error, attempts, "Slack refused the call; not retrying.");
                        return Err(SlackError::Api {
                            method: method.to_string(),
                            error,
                        });
                    }
                    let wait = ra.unwrap_or_else(|| backoff(&self.policy, attempts));
                    (wait, format!("HTTP {status} {error}"))
                }
                Err(e) => (
                    backoff(&self.policy, attempts),
                    error_chain(&e.without_url()),
                ),
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
                return Err(self.give_up(method, attempts, start, last));
            }
            tracing::warn!(method, attempts, wait_ms = wait.as_millis() as u64, failure = %last, "Slack call failed; retrying.");
            self.timer.sleep(wait).await;
        }
    }

    fn give_up(&self, method: &str, attempts: u32, start: Instant, last: String) -> SlackError {
        let elapsed_ms = self
            .timer
            .now()
            .saturating_duration_since(start)
            .as_millis() as u64;
        tracing::error!(method, attempts, elapsed_ms, failure = %last, "Gave up calling Slack.");
        SlackError::GaveUp {
            attempts,
            elapsed_ms,
            last: format!("{method}: {last}"),
        }
    }
}

/// A Web API answer: JSON that echoes the message (blocks and all), so
/// read whole, up to a cap that keeps a runaway answer out of memory.
async fn body_start_json(mut resp: reqwest::Response) -> String {
    const MAX: usize = 1 << 20;
    let mut buf = Vec::new();
    while buf.len() < MAX {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::alert::truncate_chars(s.trim(), 200)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_without_echoing_them() {
        assert_eq!(bot_token_from_secret(" xoxb-1-2\n").unwrap(), "xoxb-1-2");
        assert_eq!(
            bot_token_from_secret(r#"{"bot_token": "xoxb-1-2"}"#).unwrap(),
            "xoxb-1-2"
        );
        let e = bot_token_from_secret(r#"{"tok": "xoxb-SECRETPART"}"#).unwrap_err();
        assert!(e.contains("bot_token") && !e.contains("SECRETPART"), "{e}");
        let e = bot_token_from_secret("xoxb SECRETPART").unwrap_err();
        assert!(!e.contains("SECRETPART"), "{e}");
        let api = SlackApi::new("xoxb-SECRETPART", Some("http://127.0.0.1:9/api")).unwrap();
        assert!(!format!("{api:?}").contains("SECRETPART"));
        assert_eq!(api.base.as_str(), "http://127.0.0.1:9/api/");
        assert!(SlackApi::new("", None).is_err());
    }
}
