//! Delivery: one POST per message to the webhook, retried under one deadline.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::blocks;
use crate::alert::Alert;

/// Errors of the Slack sink.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// The webhook URL is unusable (its value is never shown: it is a secret).
    #[error("{what} {reason}")]
    WebhookUrl {
        /// What held the URL (`webhook URL`, an environment variable, a secret).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
    /// Slack answered with a status that a retry cannot change (4xx other
    /// than 429); its body says why (`invalid_payload`, `no_service`, …).
    #[error("Slack rejected the message: HTTP {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The start of Slack's response body.
        body: String,
    },
    /// Retries ran out of time (429, 5xx, connection errors or timeouts).
    #[error(
        "Slack did not accept the message after {attempts} attempt(s) in {elapsed_ms} ms: {last}"
    )]
    GaveUp {
        /// Requests made.
        attempts: u32,
        /// Time spent, waits included.
        elapsed_ms: u64,
        /// The last failure.
        last: String,
    },
    /// The webhook URL could not be read from Secrets Manager.
    #[error("secret {arn}: {reason}")]
    Secret {
        /// Secret ARN (or name).
        arn: String,
        /// What went wrong (never the secret's value).
        reason: String,
    },
    /// The Slack Web API refused a call with an error a retry cannot
    /// change (`channel_not_found`, `invalid_auth`, `message_not_found`, …).
    #[error("Slack {method} failed: {error}")]
    Api {
        /// The Web API method.
        method: String,
        /// Slack's error code (or the HTTP status and body).
        error: String,
    },
    /// The store of posted messages (their `ts`) failed.
    #[error("Slack message store: {0}")]
    Store(String),
    /// Reading alert lines failed.
    #[error("reading line {line}: {source}")]
    Read {
        /// 1-based line number.
        line: usize,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl SlackError {
    /// Whether trying the same message again later can help: true for
    /// exhausted retries, Secrets Manager and message store failures, false
    /// for rejections and configuration errors.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SlackError::GaveUp { .. } | SlackError::Secret { .. } | SlackError::Store(_)
        )
    }
}

/// How hard [`SlackClient`] tries to deliver one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Overall time for one message, requests and waits included.
    pub deadline: Duration,
    /// Longest single request (connect, send, response).
    pub request_timeout: Duration,
    /// Backoff cap after the first failure; doubles with each retry.
    pub initial_backoff: Duration,
    /// Largest backoff cap.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 20 s overall, 5 s per request, backoff from 250 ms up to 4 s.
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(20),
            request_timeout: Duration::from_secs(5),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

/// A boxed future, as [`Timer::sleep`] returns.
pub type SleepFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The clock and the sleeper of the retry loop, injected so tests can run
/// retries without waiting.
pub trait Timer: Send + Sync {
    /// A monotonic now.
    fn now(&self) -> Instant;
    /// Wait for `d`.
    fn sleep(&self, d: Duration) -> SleepFuture<'_>;
}

/// The real clock and `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioTimer;

impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) -> SleepFuture<'_> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// One delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Requests it took (1 = first try).
    pub attempts: u32,
}

/// Posts webhook bodies to one Slack incoming webhook, with retries.
///
/// Built once (per container, per CLI run) and shared: it holds a pooled
/// HTTP client. Its `Debug` output hides the URL, which is a credential.
#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    url: reqwest::Url,
    policy: RetryPolicy,
    timer: Arc<dyn Timer>,
}

impl fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackClient")
            .field("host", &self.url.host_str())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Check a webhook URL without ever echoing it: `what` names its source in
/// the error.
pub fn parse_webhook_url(url: &str, what: &str) -> Result<reqwest::Url, SlackError> {
    let bad = |reason: &str| SlackError::WebhookUrl {
        what: what.to_string(),
        reason: reason.to_string(),
    };
    let url = url.trim();
    if url.is_empty() {
        return Err(bad("is empty"));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| bad(&format!("is not a URL ({e}; value not shown)")))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(bad("is not an http(s) URL with a host (value not shown)"));
    }
    Ok(parsed)
}

impl SlackClient {
    /// A client for `webhook_url` with the default [`RetryPolicy`] and the real timer.
    pub fn new(webhook_url: &str) -> Result<SlackClient, SlackError> {
        let url = parse_webhook_url(webhook_url, "webhook URL")?;
        let http = http_client().map_err(SlackError::Client)?;
        Ok(SlackClient {
            http,
            url,
            policy: RetryPolicy::default(),
            timer: Arc::new(TokioTimer),
        })
    }

    /// The same client with another retry policy.
    pub fn with_policy(mut self, policy: RetryPolicy) -> SlackClient {
        self.policy = policy;
        self
    }

    /// The same client with another clock and sleeper (tests).
    pub fn with_timer(mut self, timer: Arc<dyn Timer>) -> SlackClient {
        self.timer = timer;
        self
    }

    /// The retry policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Render and post one alert.
    pub async fn post_alert(&self, alert: &Alert) -> Result<Delivery, SlackError> {
        self.post(&blocks(alert)).await
    }

    /// Post one webhook body within the policy's deadline.
    pub async fn post(&self, body: &Value) -> Result<Delivery, SlackError> {
        self.post_within(body, self.policy.deadline).await
    }

    /// Post one webhook body within `budget` or the policy's deadline,
    /// whichever is shorter (the notifier passes the invocation's time left).
    ///
    /// 2xx is success. 429 waits for `Retry-After` (seconds; backoff when
    /// absent) and retries; 5xx, connection errors and timeouts retry with
    /// exponential backoff and jitter; a wait that would end past the
    /// deadline is not started. Any other status fails at once with Slack's
    /// body ([`SlackError::Rejected`]).
    pub async fn post_within(
        &self,
        body: &Value,
        budget: Duration,
    ) -> Result<Delivery, SlackError> {
        let payload = body.to_string();
        let start = self.timer.now();
        let deadline = start
            .checked_add(budget.min(self.policy.deadline))
            .unwrap_or_else(|| start + Duration::from_secs(86_400));
        let mut attempts = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(self.timer.now());
            if remaining.is_zero() {
                return Err(self.give_up(
                    attempts,
                    start,
                    "no time left before the deadline".into(),
                ));
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
                    tracing::debug!(
                        attempts,
                        status = resp.status().as_u16(),
                        "Posted message to Slack."
                    );
                    return Ok(Delivery { attempts });
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after(resp.headers());
                    let text = body_start(resp).await;
                    if status.as_u16() == 429 {
                        let wait = retry_after.unwrap_or_else(|| self.backoff(attempts));
                        let what = match retry_after {
                            Some(ra) => {
                                format!("HTTP 429 (Retry-After {} s): {text}", ra.as_secs())
                            }
                            None => format!("HTTP 429: {text}"),
                        };
                        (wait, what)
                    } else if status.is_server_error() {
                        (
                            self.backoff(attempts),
                            format!("HTTP {}: {text}", status.as_u16()),
                        )
                    } else {
                        tracing::error!(
                            status = status.as_u16(),
                            body = %text,
                            attempts,
                            "Slack rejected the message; not retrying."
                        );
                        return Err(SlackError::Rejected {
                            status: status.as_u16(),
                            body: text,
                        });
                    }
                }
                // reqwest's message would include the URL, which is a secret.
                Err(e) => (self.backoff(attempts), error_chain(&e.without_url())),
            };
            let resume = self.timer.now().checked_add(wait);
            if resume.is_none_or(|t| t >= deadline) {
                return Err(self.give_up(
                    attempts,
                    start,
                    format!(
                        "{last}; next try in {} ms would pass the deadline",
                        wait.as_millis()
                    ),
                ));
            }
            tracing::warn!(
                attempts,
                wait_ms = wait.as_millis() as u64,
                failure = %last,
                "Slack delivery failed; retrying."
            );
            self.timer.sleep(wait).await;
        }
    }

    fn give_up(&self, attempts: u32, start: Instant, last: String) -> SlackError {
        let elapsed_ms = self
            .timer
            .now()
            .saturating_duration_since(start)
            .as_millis() as u64;
        tracing::error!(attempts, elapsed_ms, failure = %last, "Gave up posting to Slack.");
        SlackError::GaveUp {
            attempts,
            elapsed_ms,
            last,
        }
    }

    fn backoff(&self, n: u32) -> Duration {
        backoff(&self.policy, n)
    }
}

/// The one HTTP client logwarden's webhooks and APIs use (reqwest on the
/// SDK's rustls stack). An endpoint that redirects is misconfigured: a 3xx
/// is reported, not followed.
pub(crate) fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("logwarden/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| error_chain(&e))
}

/// Exponential backoff with "equal jitter": after failure `n` (1-based),
/// a random wait between half and all of `initial · 2^(n-1)`, capped.
/// Jitter keeps many containers from retrying in lockstep.
pub(crate) fn backoff(policy: &RetryPolicy, n: u32) -> Duration {
    let cap = policy
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(20)))
        .min(policy.max_backoff);
    let half = cap / 2;
    half + half.mul_f64(unit_random())
}

/// A number in [0, 1): std's per-instance random hash keys, no extra crate.
fn unit_random() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `Retry-After` in seconds (what Slack sends); an HTTP date is not used by
/// Slack and falls back to backoff.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The first KiB of a response body, one line: enough for Slack's
/// `invalid_payload`-style answers without reading an unbounded body.
pub(crate) async fn body_start(mut resp: reqwest::Response) -> String {
    const MAX: usize = 1024;
    let mut buf = Vec::new();
    while buf.len() < MAX {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    buf.truncate(MAX);
    let text = String::from_utf8_lossy(&buf);
    let one_line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.is_empty() {
        "(empty body)".into()
    } else {
        one_line
    }
}

/// An error and its sources on one line (reqwest's top-level message alone
/// says only "error sending request").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_url_is_checked_without_echoing_it() {
        let e = parse_webhook_url(
            "ftp://hooks.example/T000/B000/SECRETVALUE",
            "LOGWARDEN_SLACK_WEBHOOK_URL",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("LOGWARDEN_SLACK_WEBHOOK_URL"), "{e}");
        assert!(!e.contains("SECRETVALUE"), "{e}");
        assert!(parse_webhook_url("  ", "x").is_err());
        assert!(parse_webhook_url("https://hooks.slack.com/services/T/B/X", "x").is_ok());
        let c = SlackClient::new("https://hooks.slack.com/services/T/B/SECRETVALUE").unwrap();
        assert!(!format!("{c:?}").contains("SECRETVALUE"));
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let c = SlackClient::new("http://127.0.0.1:9/")
            .unwrap()
            .with_policy(RetryPolicy {
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(800),
                ..RetryPolicy::default()
            });
        for (n, cap) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 800), (60, 800)] {
            for _ in 0..20 {
                let b = c.backoff(n).as_millis();
                assert!(
                    b >= cap / 2 && b <= cap,
                    "retry {n}: {b} ms not in [{}, {cap}]",
                    cap / 2
                );
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, " 7 ".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
