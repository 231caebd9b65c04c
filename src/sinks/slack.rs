//! Slack: alerts as Block Kit messages posted to an incoming webhook.
//!
//! Three parts, each usable alone:
//! - rendering ([`blocks`], [`alarm_blocks`], [`message_blocks`]): pure functions
//!   from an alert, a CloudWatch alarm notification or any other text to the
//!   webhook's JSON body. Everything that may come from a log line is escaped
//!   (an attacker writes log lines), and Slack's size limits are respected,
//!   because one oversized or malformed block makes Slack reject the whole
//!   message with `400 invalid_blocks`;
//! - delivery ([`SlackClient`]): one POST per message, retried on 429, 5xx,
//!   connection errors and timeouts under one overall deadline;
//! - [`post_alert_lines`]: alert JSON lines (the CLI's `notify slack`) through
//!   the same rendering and delivery.
//!
//! The Lambda side (SNS events, the webhook URL from Secrets Manager) is in
//! [`notifier`].

pub mod notifier;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io::BufRead;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::alert::redact::{self, RedactOptions};
use crate::alert::visible::{self, visible};
use crate::alert::{Alert, MAX_EVIDENCE};

/// Longest header text Slack accepts.
pub const MAX_HEADER_CHARS: usize = 150;
/// Longest section (or context element) text Slack accepts.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Longest text of one section field Slack accepts.
pub const MAX_FIELD_CHARS: usize = 2000;
/// Most fields in one section.
pub const MAX_FIELDS: usize = 10;
/// Most blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Longest button URL Slack accepts.
pub const MAX_BUTTON_URL_CHARS: usize = 3000;
/// Longest `text` fallback we send: it is what notifications show, so short.
pub const MAX_FALLBACK_CHARS: usize = 300;

// ---------------------------------------------------------------------------
// Escaping
// ---------------------------------------------------------------------------

/// Escape Slack's three mrkdwn control characters (`&`, `<`, `>`).
///
/// Escaping `<` and `>` is what stops `<!channel>`, `<!here>`, `<@U…>` and
/// `<https://evil|click>` in a log line from becoming a mention or a link.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

/// Zero-width space: put between two backticks, it keeps them from forming
/// the ``` that would close the code block early (or open a new one).
const BACKTICK_BREAK: char = '\u{200B}';

/// `s` escaped for mrkdwn (and, when `code`, with no two backticks adjacent),
/// at most `max` characters; when cut, the last character is `…`. Cuts fall
/// between source characters, never inside an `&amp;` entity.
fn mrkdwn_capped(s: &str, max: usize, code: bool) -> String {
    let full = mrkdwn_pieces(s, code, usize::MAX);
    if full.chars().count() <= max {
        return full;
    }
    let mut out = mrkdwn_pieces(s, code, max.saturating_sub(1));
    out.push('…');
    out
}

/// Escape `s` piece by piece (one source character each) while the output
/// stays within `budget` characters.
fn mrkdwn_pieces(s: &str, code: bool, budget: usize) -> String {
    let mut out = String::new();
    let mut used = 0usize;
    let mut prev_backtick = false;
    for c in s.chars() {
        let mut piece = String::new();
        if code && c == '`' && prev_backtick {
            piece.push(BACKTICK_BREAK);
        }
        push_escaped(&mut piece, c);
        let n = piece.chars().count();
        if used + n > budget {
            break;
        }
        used += n;
        out.push_str(&piece);
        prev_backtick = c == '`';
    }
    out
}

/// Text for a `plain_text` object (the header): Slack parses no mentions or
/// links there, but `<` and `>` are swapped for look-alikes anyway, so the
/// header is safe whatever Slack does with plain text; entities are not used
/// because plain text would show them literally.
fn plain_capped(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            '\n' | '\r' | '\t' => ' ',
            c => c,
        })
        .collect();
    crate::alert::truncate_chars(&cleaned, max)
}

/// Slack rejects empty text objects.
fn or_dash(s: String) -> String {
    if s.trim().is_empty() { "—".into() } else { s }
}

// ---------------------------------------------------------------------------
// Block builders
// ---------------------------------------------------------------------------

fn header(text: &str) -> Value {
    json!({
        "type": "header",
        "text": {"type": "plain_text", "text": or_dash(plain_capped(text, MAX_HEADER_CHARS)), "emoji": true}
    })
}

/// A section whose text is already mrkdwn (escaped, within limits).
fn section(mrkdwn: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": or_dash(mrkdwn)}})
}

/// A `*Label*\nvalue` field with the value escaped and the whole within
/// [`MAX_FIELD_CHARS`].
fn field(label: &str, value: &str) -> Value {
    let head = format!("*{label}*\n");
    let room = MAX_FIELD_CHARS.saturating_sub(head.chars().count());
    let text = format!("{head}{}", or_dash(mrkdwn_capped(value, room, false)));
    json!({"type": "mrkdwn", "text": text})
}

fn context(mrkdwn: String) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": or_dash(mrkdwn)}]})
}

/// A link button, or `None` when the URL is not one Slack would accept
/// (not http(s), or longer than [`MAX_BUTTON_URL_CHARS`]); a truncated URL
/// would be a broken link, so it is left out rather than cut.
fn button(label: &str, action_id: &str, url: &str) -> Option<Value> {
    if url.chars().count() > MAX_BUTTON_URL_CHARS {
        return None;
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return None;
    }
    Some(json!({
        "type": "button",
        "text": {"type": "plain_text", "text": label, "emoji": true},
        "action_id": action_id,
        "url": url,
    }))
}

/// Code-block sections for `lines` under a `*label*`, packed several lines to a
/// block while each block stays within [`MAX_SECTION_CHARS`].
fn code_sections(label: &str, lines: &[&str]) -> Vec<Value> {
    let open = format!("*{label}*\n```\n");
    let close = "\n```";
    let room = MAX_SECTION_CHARS - open.chars().count() - close.chars().count();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0usize;
    for line in lines {
        let piece = mrkdwn_capped(line, room, true);
        let n = piece.chars().count();
        if !cur.is_empty() && cur_len + 1 + n > room {
            out.push(section(format!("{open}{cur}{close}")));
            cur.clear();
            cur_len = 0;
        }
        if !cur.is_empty() {
            cur.push('\n');
            cur_len += 1;
        }
        // A blank line would leave an empty-looking block; keep one space.
        cur.push_str(if piece.is_empty() { " " } else { &piece });
        cur_len += n.max(1);
    }
    if !cur.is_empty() {
        out.push(section(format!("{open}{cur}{close}")));
    }
    out
}

fn severity_emoji(severity: &str) -> &'static str {
    match severity.to_ascii_lowercase().as_str() {
        "critical" => ":rotating_light:",
        "high" => ":red_circle:",
        "medium" => ":large_orange_circle:",
        "low" => ":large_blue_circle:",
        _ => ":white_circle:",
    }
}

fn body(fallback: String, mut blocks: Vec<Value>) -> Value {
    blocks.truncate(MAX_BLOCKS);
    json!({"text": or_dash(fallback), "blocks": blocks})
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// The webhook body for one alert: a `text` fallback (what notifications
/// show) and Block Kit `blocks`: a header with the severity and title, the
/// summary, fields (rule, function, log group, key, count, first and last
/// seen, account, log stream, requests), metrics, the evidence in a code
/// block, buttons to the log stream and Logs Insights, and a context line
/// with kind and id.
///
/// Pure; everything from the alert is redacted ([`crate::alert::redact`],
/// again: the input may not come from logwarden's engine), control sequences
/// are shown as escapes ([`crate::alert::visible`]), mentions and links are
/// escaped, and every Slack limit is held.
pub fn blocks(alert: &Alert) -> Value {
    let mut redacted = alert.clone();
    redact::alert(&mut redacted, &RedactOptions::default());
    let alert = &visible::alert(&redacted);
    let sev = alert.severity.to_uppercase();
    let fallback = mrkdwn_capped(
        &format!("[{sev}] {}: {}", alert.rule, alert.title),
        MAX_FALLBACK_CHARS,
        false,
    );
    let mut out = vec![header(&format!(
        "{} {sev} · {}",
        severity_emoji(&alert.severity),
        alert.title
    ))];
    if !alert.summary.trim().is_empty() {
        out.push(section(mrkdwn_capped(
            &alert.summary,
            MAX_SECTION_CHARS,
            false,
        )));
    }

    let mut fields = vec![field("Rule", &format!("{} ({})", alert.rule, alert.kind))];
    if let Some(f) = &alert.function {
        fields.push(field("Function", f));
    }
    fields.push(field("Log group", &alert.log_group));
    let key = if alert.key.is_empty() {
        "(per function)".to_string()
    } else {
        alert
            .key
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    fields.push(field("Key", &key));
    fields.push(field("Count", &alert.count.to_string()));
    fields.push(field("First seen", &alert.first_seen));
    fields.push(field("Last seen", &alert.last_seen));
    if let Some(a) = alert.account.as_deref().filter(|a| !a.is_empty()) {
        fields.push(field("Account", a));
    }
    if let Some(s) = &alert.log_stream {
        fields.push(field("Log stream", s));
    }
    if !alert.request_ids.is_empty() {
        let shown: Vec<&str> = alert
            .request_ids
            .iter()
            .take(3)
            .map(String::as_str)
            .collect();
        let more = alert.request_ids.len().saturating_sub(shown.len());
        let mut r = shown.join("\n");
        if more > 0 {
            r.push_str(&format!("\n(+{more} more)"));
        }
        fields.push(field("Requests", &r));
    }
    fields.truncate(MAX_FIELDS);
    out.push(json!({"type": "section", "fields": fields}));

    if !alert.metrics.is_empty() {
        let m: Vec<String> = alert
            .metrics
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let text = format!(
            "*Metrics*\n{}",
            mrkdwn_capped(&m.join("   "), MAX_SECTION_CHARS - 20, false)
        );
        out.push(section(text));
    }

    if !alert.evidence.is_empty() {
        let shown: Vec<&str> = alert
            .evidence
            .iter()
            .take(MAX_EVIDENCE)
            .map(String::as_str)
            .collect();
        out.extend(code_sections("Evidence", &shown));
        let more = alert.evidence.len().saturating_sub(shown.len());
        if more > 0 {
            out.push(context(format!("+{more} more evidence lines not shown")));
        }
    }

    let mut buttons = Vec::new();
    let mut omitted = Vec::new();
    for (label, action, url) in [
        (
            "Open log stream",
            "open_log_stream",
            &alert.links.log_stream,
        ),
        ("Logs Insights", "open_logs_insights", &alert.links.insights),
    ] {
        if let Some(u) = url {
            match button(label, action, u) {
                Some(b) => buttons.push(b),
                None => omitted.push(label),
            }
        }
    }
    if !buttons.is_empty() {
        out.push(json!({"type": "actions", "elements": buttons}));
    }

    let mut ctx = format!(
        "logwarden · {} · id `{}`",
        mrkdwn_capped(&alert.kind, 100, false),
        mrkdwn_capped(&alert.id.replace('`', "'"), 200, false)
    );
    if !omitted.is_empty() {
        ctx.push_str(&format!(
            " · link omitted (unusable URL): {}",
            omitted.join(", ")
        ));
    }
    out.push(context(ctx));
    body(fallback, out)
}

/// A CloudWatch alarm state change as SNS delivers it (the fields logwarden
/// shows; others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmNotification {
    /// Alarm name.
    pub alarm_name: String,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub new_state_value: String,
    /// Previous state.
    #[serde(default)]
    pub old_state_value: Option<String>,
    /// Why the state changed (CloudWatch's sentence).
    #[serde(default)]
    pub new_state_reason: Option<String>,
    /// Alarm description, when the alarm has one.
    #[serde(default)]
    pub alarm_description: Option<String>,
    /// When the state changed.
    #[serde(default)]
    pub state_change_time: Option<String>,
    /// Region, as CloudWatch names it for people (e.g. `US East (N. Virginia)`).
    #[serde(default)]
    pub region: Option<String>,
    /// Account id.
    #[serde(default, rename = "AWSAccountId")]
    pub aws_account_id: Option<String>,
    /// Alarm ARN (gives the region code for the console link).
    #[serde(default)]
    pub alarm_arn: Option<String>,
}

/// The webhook body for a CloudWatch alarm notification: fallback text
/// `logwarden alarm: <name> is <STATE> — <reason>`, a header, the reason, a
/// few fields and a button to the alarm in the console (when the ARN names
/// the region).
pub fn alarm_blocks(alarm: &AlarmNotification) -> Value {
    let reason = alarm.new_state_reason.as_deref().unwrap_or("").trim();
    let mut fb = format!(
        "logwarden alarm: {} is {}",
        alarm.alarm_name, alarm.new_state_value
    );
    if !reason.is_empty() {
        fb.push_str(" — ");
        fb.push_str(reason);
    }
    let fallback = mrkdwn_capped(&fb, MAX_FALLBACK_CHARS, false);
    let emoji = match alarm.new_state_value.as_str() {
        "ALARM" => ":rotating_light:",
        "OK" => ":white_check_mark:",
        _ => ":grey_question:",
    };
    let mut out = vec![header(&format!(
        "{emoji} Alarm {} is {}",
        alarm.alarm_name, alarm.new_state_value
    ))];
    let mut text = format!(
        "*{}* is *{}*",
        mrkdwn_capped(&alarm.alarm_name, 300, false),
        mrkdwn_capped(&alarm.new_state_value, 50, false)
    );
    if let Some(old) = alarm.old_state_value.as_deref().filter(|s| !s.is_empty()) {
        text.push_str(&format!(" (was {})", mrkdwn_capped(old, 50, false)));
    }
    if !reason.is_empty() {
        let room = MAX_SECTION_CHARS.saturating_sub(text.chars().count() + 1);
        text.push('\n');
        text.push_str(&mrkdwn_capped(reason, room, false));
    }
    out.push(section(text));
    if let Some(d) = alarm
        .alarm_description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        out.push(section(mrkdwn_capped(d, MAX_SECTION_CHARS, false)));
    }
    let mut fields = Vec::new();
    for (label, v) in [
        ("Changed at", &alarm.state_change_time),
        ("Region", &alarm.region),
        ("Account", &alarm.aws_account_id),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            fields.push(field(label, v));
        }
    }
    if !fields.is_empty() {
        out.push(json!({"type": "section", "fields": fields}));
    }
    if let Some(b) = alarm_console_url(alarm).and_then(|u| button("Open alarm", "open_alarm", &u)) {
        out.push(json!({"type": "actions", "elements": [b]}));
    }
    body(fallback, out)
}

/// `arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME` → the alarm's console page.
fn alarm_console_url(alarm: &AlarmNotification) -> Option<String> {
    let arn = alarm.alarm_arn.as_deref()?;
    let region = arn
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))?;
    let mut name = String::new();
    for b in alarm.alarm_name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    Some(format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{name}"
    ))
}

/// The webhook body for a message that is neither an alert nor an alarm
/// notification: the subject and the message, escaped, in a code block
/// (cut to Slack's limits with a note of the full length), so nothing on
/// the topic is dropped silently.
pub fn message_blocks(subject: Option<&str>, message: &str) -> Value {
    let subject = subject.map(|s| visible(&redact::redact(s), false).into_owned());
    let subject = subject.as_deref();
    let message = redact::redact(message);
    let message = visible(&message, true);
    let message: &str = &message;
    let fallback = mrkdwn_capped(
        &format!(
            "logwarden: unrecognised message on the alert topic{}",
            subject.map(|s| format!(": {s}")).unwrap_or_default()
        ),
        MAX_FALLBACK_CHARS,
        false,
    );
    let mut out = vec![header(
        ":grey_question: Unrecognised message on the alert topic",
    )];
    if let Some(s) = subject.filter(|s| !s.trim().is_empty()) {
        out.push(section(format!(
            "*Subject:* {}",
            mrkdwn_capped(s, MAX_SECTION_CHARS - 20, false)
        )));
    }
    out.extend(code_sections("Message", &[message]));
    let total = message.chars().count();
    if total > MAX_SECTION_CHARS / 4 {
        out.push(context(format!(
            "{total} characters in all; see the notifier's log for the full message"
        )));
    }
    body(fallback, out)
}

// ---------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------

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
    /// exhausted retries and Secrets Manager failures, false for rejections
    /// and configuration errors.
    pub fn is_transient(&self) -> bool {
        matches!(self, SlackError::GaveUp { .. } | SlackError::Secret { .. })
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
        let http = reqwest::Client::builder()
            // A webhook that redirects is misconfigured; a 3xx is reported, not followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("logwarden/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SlackError::Client(error_chain(&e)))?;
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

    /// Exponential backoff with "equal jitter": after failure `n` (1-based),
    /// a random wait between half and all of `initial · 2^(n-1)`, capped.
    /// Jitter keeps many containers from retrying in lockstep.
    fn backoff(&self, n: u32) -> Duration {
        let cap = self
            .policy
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(20)))
            .min(self.policy.max_backoff);
        let half = cap / 2;
        half + half.mul_f64(unit_random())
    }
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
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The first KiB of a response body, one line: enough for Slack's
/// `invalid_payload`-style answers without reading an unbounded body.
async fn body_start(mut resp: reqwest::Response) -> String {
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
fn error_chain(e: &dyn std::error::Error) -> String {
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

// ---------------------------------------------------------------------------
// Alert lines (CLI)
// ---------------------------------------------------------------------------

/// What went wrong with one input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblemKind {
    /// Not an alert JSON object (or not UTF-8).
    Malformed,
    /// An alert that Slack did not accept.
    NotPosted,
}

/// One input line that was not posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number.
    pub line: usize,
    /// Malformed or not posted.
    pub kind: LineProblemKind,
    /// Why.
    pub message: String,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            LineProblemKind::Malformed => {
                write!(f, "line {}: not an alert: {}", self.line, self.message)
            }
            LineProblemKind::NotPosted => {
                write!(f, "line {}: not posted: {}", self.line, self.message)
            }
        }
    }
}

/// What [`post_alert_lines`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifySummary {
    /// Alerts Slack accepted.
    pub posted: usize,
    /// Alerts Slack did not accept (after retries where they could help).
    pub failed: usize,
    /// Non-blank lines that are not alert JSON.
    pub malformed: usize,
    /// Every failed or malformed line, in input order.
    pub problems: Vec<LineProblem>,
}

impl NotifySummary {
    /// True when every non-blank line was posted.
    pub fn all_posted(&self) -> bool {
        self.failed == 0 && self.malformed == 0
    }
}

/// Post alert JSON lines (as `logwarden replay --output json` writes them)
/// to Slack, one message per alert, in order. Blank lines are skipped; a
/// malformed line or a failed post is recorded in the summary with its line
/// number (and logged) and the rest continue. Only a read error stops early.
pub async fn post_alert_lines<R: BufRead>(
    reader: R,
    client: &SlackClient,
) -> Result<NotifySummary, SlackError> {
    post_alert_lines_with(reader, client, &RedactOptions::default()).await
}

/// [`post_alert_lines`], redacting with `opts` (e.g. email addresses too).
pub async fn post_alert_lines_with<R: BufRead>(
    mut reader: R,
    client: &SlackClient,
    opts: &RedactOptions,
) -> Result<NotifySummary, SlackError> {
    let mut summary = NotifySummary::default();
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        line += 1;
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| SlackError::Read { line, source })?;
        if n == 0 {
            break;
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(e) => {
                summary.malformed += 1;
                let message = format!("not UTF-8 ({e})");
                tracing::warn!(line, error = %message, "Skipped malformed alert line.");
                summary.problems.push(LineProblem {
                    line,
                    kind: LineProblemKind::Malformed,
                    message,
                });
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let mut alert: Alert = match serde_json::from_str(text) {
            Ok(a) => a,
            Err(e) => {
                summary.malformed += 1;
                tracing::warn!(line, error = %e, "Skipped malformed alert line.");
                summary.problems.push(LineProblem {
                    line,
                    kind: LineProblemKind::Malformed,
                    message: e.to_string(),
                });
                continue;
            }
        };
        redact::alert(&mut alert, opts);
        match client.post_alert(&alert).await {
            Ok(_) => {
                summary.posted += 1;
                tracing::info!(line, alert = %alert.id, rule = %alert.rule, "Posted alert to Slack.");
            }
            Err(e) => {
                summary.failed += 1;
                summary.problems.push(LineProblem {
                    line,
                    kind: LineProblemKind::NotPosted,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Links;
    use crate::detect::Key;

    fn alert() -> Alert {
        Alert {
            id: "0123456789abcdef0123456789abcdef".into(),
            rule: "failed-auth-burst".into(),
            kind: "threshold".into(),
            severity: "high".into(),
            title: "Burst of failed authentications (203.0.113.7) in auth".into(),
            summary: "31 failed logins from 203.0.113.7 within 41 s.".into(),
            account: Some("123456789012".into()),
            log_group: "/aws/lambda/auth".into(),
            log_stream: Some("2026/11/22/[$LATEST]0123".into()),
            function: Some("auth".into()),
            key: Key::from([("source_ip".to_string(), "203.0.113.7".to_string())]),
            request_ids: vec!["r1".into(), "r2".into(), "r3".into(), "r4".into()],
            count: 31,
            first_seen: "2026-11-22T10:00:00.000Z".into(),
            last_seen: "2026-11-22T10:00:41.000Z".into(),
            metrics: [("duration_ms".to_string(), 30412.0)].into(),
            evidence: vec![
                "Failed password for root from 203.0.113.7".into(),
                "Failed password for admin from 203.0.113.7".into(),
            ],
            links: Links {
                log_stream: Some("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups".into()),
                insights: Some("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:logs-insights".into()),
            },
        }
    }

    fn blocks_of<'a>(v: &'a Value, ty: &str) -> Vec<&'a Value> {
        v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == ty)
            .collect()
    }

    /// Every text a person sees, for escaping assertions.
    fn all_text(v: &Value) -> Vec<String> {
        let mut out = vec![];
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        if k == "text"
                            && let Some(s) = x.as_str()
                        {
                            out.push(s.to_string());
                        }
                        if k != "url" {
                            walk(x, out);
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(v, &mut out);
        out
    }

    /// Every limit this module promises, checked on any body.
    fn assert_within_limits(v: &Value) {
        let bl = v["blocks"].as_array().unwrap();
        assert!(
            !bl.is_empty() && bl.len() <= MAX_BLOCKS,
            "{} blocks",
            bl.len()
        );
        assert!(v["text"].as_str().unwrap().chars().count() <= MAX_FALLBACK_CHARS);
        for b in bl {
            match b["type"].as_str().unwrap() {
                "header" => {
                    let t = b["text"]["text"].as_str().unwrap();
                    assert!(t.chars().count() <= MAX_HEADER_CHARS, "header {}", t.len());
                    assert_eq!(b["text"]["type"], "plain_text");
                }
                "section" => {
                    if let Some(t) = b["text"]["text"].as_str() {
                        assert!(
                            t.chars().count() <= MAX_SECTION_CHARS,
                            "section {}",
                            t.chars().count()
                        );
                        assert!(!t.is_empty());
                    }
                    if let Some(fs) = b["fields"].as_array() {
                        assert!(fs.len() <= MAX_FIELDS);
                        for f in fs {
                            let t = f["text"].as_str().unwrap();
                            assert!(
                                t.chars().count() <= MAX_FIELD_CHARS,
                                "field {}",
                                t.chars().count()
                            );
                        }
                    }
                }
                "actions" => {
                    for e in b["elements"].as_array().unwrap() {
                        assert!(e["url"].as_str().unwrap().chars().count() <= MAX_BUTTON_URL_CHARS);
                    }
                }
                "context" => {
                    for e in b["elements"].as_array().unwrap() {
                        assert!(e["text"].as_str().unwrap().chars().count() <= MAX_SECTION_CHARS);
                    }
                }
                other => panic!("unexpected block type {other}"),
            }
        }
    }

    #[test]
    fn alert_renders_header_fields_evidence_buttons_and_fallback() {
        let v = blocks(&alert());
        assert_eq!(
            v["text"],
            "[HIGH] failed-auth-burst: Burst of failed authentications (203.0.113.7) in auth"
        );
        let bl = v["blocks"].as_array().unwrap();
        assert_eq!(bl[0]["type"], "header");
        assert_eq!(
            bl[0]["text"]["text"],
            ":red_circle: HIGH · Burst of failed authentications (203.0.113.7) in auth"
        );
        assert_eq!(
            bl[1]["text"]["text"],
            "31 failed logins from 203.0.113.7 within 41 s."
        );
        let fields: Vec<&str> = bl[2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Rule*\nfailed-auth-burst (threshold)",
                "*Function*\nauth",
                "*Log group*\n/aws/lambda/auth",
                "*Key*\nsource_ip = 203.0.113.7",
                "*Count*\n31",
                "*First seen*\n2026-11-22T10:00:00.000Z",
                "*Last seen*\n2026-11-22T10:00:41.000Z",
                "*Account*\n123456789012",
                "*Log stream*\n2026/11/22/[$LATEST]0123",
                "*Requests*\nr1\nr2\nr3\n(+1 more)",
            ]
        );
        assert_eq!(bl[3]["text"]["text"], "*Metrics*\nduration_ms = 30412");
        assert_eq!(
            bl[4]["text"]["text"],
            "*Evidence*\n```\nFailed password for root from 203.0.113.7\nFailed password for admin from 203.0.113.7\n```"
        );
        let actions = blocks_of(&v, "actions");
        let buttons = actions[0]["elements"].as_array().unwrap();
        assert_eq!(buttons.len(), 2);
        assert_eq!(buttons[0]["text"]["text"], "Open log stream");
        assert_eq!(
            buttons[0]["url"],
            alert().links.log_stream.unwrap().as_str()
        );
        assert_eq!(buttons[1]["text"]["text"], "Logs Insights");
        assert_eq!(buttons[1]["url"], alert().links.insights.unwrap().as_str());
        assert_ne!(buttons[0]["action_id"], buttons[1]["action_id"]);
        let ctx = blocks_of(&v, "context");
        assert_eq!(
            ctx[0]["elements"][0]["text"],
            "logwarden · threshold · id `0123456789abcdef0123456789abcdef`"
        );
        assert_within_limits(&v);
    }

    #[test]
    fn minimal_alert_has_no_empty_blocks() {
        let mut a = alert();
        a.summary.clear();
        a.function = None;
        a.account = None;
        a.log_stream = None;
        a.key = Key::new();
        a.request_ids.clear();
        a.metrics.clear();
        a.evidence.clear();
        a.links = Links::default();
        a.log_group = String::new();
        let v = blocks(&a);
        let types: Vec<&str> = v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["header", "section", "context"]);
        let fields = v["blocks"][1]["fields"].as_array().unwrap();
        assert_eq!(fields[1]["text"], "*Log group*\n—");
        assert_eq!(fields[2]["text"], "*Key*\n(per function)");
        assert_within_limits(&v);
    }

    #[test]
    fn log_content_cannot_mention_link_or_inject_entities() {
        let mut a = alert();
        let evil = "hi <!channel> <!here> <@U0123ABC> <https://evil.example|click> & AT&amp;T";
        a.title = evil.into();
        a.summary = evil.into();
        a.key = Key::from([("user".to_string(), evil.to_string())]);
        a.evidence = vec![evil.into()];
        a.log_stream = Some(evil.into());
        a.request_ids = vec![evil.into()];
        a.metrics = [(evil.to_string(), 1.0)].into();
        a.kind = evil.into();
        a.id = evil.into();
        let v = blocks(&a);
        for t in all_text(&v) {
            for bad in ["<!", "<@", "<http", "|click>"] {
                assert!(!t.contains(bad), "`{bad}` survived in {t:?}");
            }
            assert!(!t.contains('<') && !t.contains('>'), "{t:?}");
        }
        // mrkdwn texts carry entities; the plain-text header uses look-alikes.
        let ev = &blocks_of(&v, "section").last().unwrap()["text"]["text"];
        assert!(ev.as_str().unwrap().contains(
            "hi &lt;!channel&gt; &lt;!here&gt; &lt;@U0123ABC&gt; &lt;https://evil.example|click&gt; &amp; AT&amp;amp;T"
        ), "{ev}");
        assert!(
            v["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("‹!channel›"),
        );
        assert!(v["text"].as_str().unwrap().contains("&lt;!channel&gt;"));
    }

    #[test]
    fn evidence_cannot_close_the_code_block() {
        let mut a = alert();
        a.evidence = vec![
            "```\n<!channel> *bold* outside".into(),
            "````````".into(),
            "ends with `".into(),
        ];
        let v = blocks(&a);
        let ev = blocks_of(&v, "section")
            .into_iter()
            .map(|b| b["text"]["text"].as_str().unwrap_or(""))
            .find(|t| t.starts_with("*Evidence*"))
            .unwrap()
            .to_string();
        let inner = ev
            .strip_prefix("*Evidence*\n```\n")
            .unwrap()
            .strip_suffix("\n```")
            .unwrap();
        assert!(!inner.contains("``"), "{inner:?}");
        assert!(inner.contains("&lt;!channel&gt; *bold* outside"));
        assert_eq!(
            inner.matches('`').count(),
            3 + 8 + 1,
            "backticks kept, only split"
        );
    }

    #[test]
    fn huge_evidence_keys_and_links_stay_within_slack_limits() {
        let mut a = alert();
        // Escaping multiplies `<` by four: the cap must apply after escaping.
        a.evidence = (0..40)
            .map(|i| format!("{i} {}", "<".repeat(5_000)))
            .collect();
        a.key = (0..500)
            .map(|i| (format!("k{i}"), "&".repeat(100)))
            .collect();
        a.title = "T".repeat(1_000);
        a.summary = ">".repeat(10_000);
        a.request_ids = vec!["r".repeat(5_000)];
        a.log_group = "g".repeat(5_000);
        a.links.insights = Some(format!("https://example.com/?q={}", "x".repeat(5_000)));
        a.links.log_stream = Some("javascript:alert(1)".into());
        let v = blocks(&a);
        assert_within_limits(&v);
        let header = v["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), MAX_HEADER_CHARS);
        assert!(header.ends_with('…'));
        // No entity cut in half at a truncation point.
        for t in all_text(&v) {
            let t = t.trim_end_matches(['…', '`', '\n']);
            assert!(
                !t.ends_with("&am")
                    && !t.ends_with("&l")
                    && !t.ends_with("&g")
                    && !t.ends_with('&'),
                "{t:?}"
            );
        }
        // Only the contract's five evidence lines are shown, and that is said.
        let texts = all_text(&v);
        assert!(
            texts
                .iter()
                .any(|t| t == "+35 more evidence lines not shown")
        );
        assert!(
            !texts.iter().any(|t| t.contains("\n5 &lt;")),
            "line 5 must not be shown"
        );
        // Unusable URLs: no button, and a note instead.
        assert!(blocks_of(&v, "actions").is_empty());
        assert!(
            texts
                .iter()
                .any(|t| t.contains("link omitted (unusable URL): Open log stream, Logs Insights"))
        );
    }

    #[test]
    fn short_evidence_lines_share_one_block_long_ones_split() {
        let mut a = alert();
        a.evidence = vec!["a".repeat(1_400), "b".repeat(1_400), "c".repeat(1_400)];
        let v = blocks(&a);
        let ev: Vec<&str> = blocks_of(&v, "section")
            .into_iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .filter(|t| t.starts_with("*Evidence*"))
            .collect();
        assert_eq!(ev.len(), 2);
        assert!(ev[0].contains(&"a".repeat(1_400)) && ev[0].contains(&"b".repeat(1_400)));
        assert!(ev[1].contains(&"c".repeat(1_400)));
        assert_within_limits(&v);
    }

    fn alarm() -> AlarmNotification {
        serde_json::from_value(json!({
            "AlarmName": "logwarden-detector-errors",
            "AlarmDescription": null,
            "AWSAccountId": "123456789012",
            "NewStateValue": "ALARM",
            "NewStateReason": "Threshold Crossed: 1 datapoint [3.0 (22/11/26 10:00:00)] was greater than the threshold (0.0).",
            "StateChangeTime": "2026-11-22T10:01:00.000+0000",
            "Region": "US East (N. Virginia)",
            "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:logwarden-detector-errors",
            "OldStateValue": "OK",
            "Trigger": {"MetricName": "Errors"}
        }))
        .unwrap()
    }

    #[test]
    fn alarm_renders_name_state_reason_and_console_button() {
        let v = alarm_blocks(&alarm());
        assert_eq!(
            v["text"],
            "logwarden alarm: logwarden-detector-errors is ALARM — Threshold Crossed: 1 datapoint [3.0 (22/11/26 10:00:00)] was greater than the threshold (0.0)."
        );
        assert_eq!(
            v["blocks"][0]["text"]["text"],
            ":rotating_light: Alarm logwarden-detector-errors is ALARM"
        );
        assert!(
            v["blocks"][1]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("*logwarden-detector-errors* is *ALARM* (was OK)\nThreshold Crossed")
        );
        let actions = blocks_of(&v, "actions");
        assert_eq!(
            actions[0]["elements"][0]["url"],
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/logwarden-detector-errors"
        );
        assert_within_limits(&v);
    }

    #[test]
    fn alarm_text_is_escaped_and_capped() {
        let mut a = alarm();
        a.alarm_name = "<!channel> x".into();
        a.new_state_reason = Some("<@U1> ".repeat(2_000));
        a.alarm_arn = Some("not an arn".into());
        let v = alarm_blocks(&a);
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .starts_with("logwarden alarm: &lt;!channel&gt; x is ALARM")
        );
        for t in all_text(&v) {
            assert!(!t.contains('<'), "{t:?}");
        }
        assert!(blocks_of(&v, "actions").is_empty());
        assert_within_limits(&v);
    }

    #[test]
    fn unknown_message_is_escaped_in_a_code_block() {
        let v = message_blocks(Some("hello <!here>"), "plain ``` text <@U1> &");
        assert_eq!(
            v["text"],
            "logwarden: unrecognised message on the alert topic: hello &lt;!here&gt;"
        );
        let code = v["blocks"][2]["text"]["text"].as_str().unwrap();
        assert_eq!(
            code,
            "*Message*\n```\nplain `\u{200B}`\u{200B}` text &lt;@U1&gt; &amp;\n```"
        );
        let big = message_blocks(None, &"<".repeat(100_000));
        assert_within_limits(&big);
        assert!(
            all_text(&big)
                .iter()
                .any(|t| t.starts_with("100000 characters in all"))
        );
    }

    #[test]
    fn escape_and_caps_never_split_an_entity() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(mrkdwn_capped("<<<", 9, false), "&lt;&lt;…");
        assert_eq!(mrkdwn_capped("<<<", 12, false), "&lt;&lt;&lt;");
        assert_eq!(mrkdwn_capped("abc", 2, false), "a…");
        assert_eq!(mrkdwn_capped("``", 10, true), "`\u{200B}`");
    }

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
