//! The `logwarden-notifier` Lambda: SNS events from the alert topic → Slack
//! (incoming webhook, or a bot token: [`super::bot`]) and/or PagerDuty
//! ([`crate::sinks::pagerduty`]), as [`crate::sinks::destinations`] reads
//! them from the environment. Alerts of shadow rules go nowhere; a
//! resolution follows its firing (its own Slack message, the bot's update
//! and thread reply, PagerDuty's `resolve`).
//!
//! Each SNS record's `Message` is one of three things, told apart by
//! [`Notification::classify`]: an alert (the SNS `lambda` body is the alert
//! JSON), a CloudWatch alarm notification (alarms publish to the same
//! topic), or anything else, which is posted as escaped text in a code block
//! with a warning in the log: nothing on the topic crashes the function or
//! disappears silently.
//!
//! The webhook URL (like the bot token and the routing key) comes from the
//! environment or from a Secrets Manager secret ([`WebhookConfig`]). The secret is read once per container, on the
//! first invocation that has something to post ([`Webhook`]): a Secrets
//! Manager failure then fails that invocation, which SNS retries, and the next
//! invocation in the same container tries again. Read during init instead, a
//! throttled or briefly denied read would fail the whole container start.
//! Misconfiguration (neither or both variables) is still caught at start.
//!
//! Delivery is at least once. An invocation with several records posts them
//! all, then fails if any could not be posted, and SNS retries the whole
//! invocation. To keep that retry from posting the ones that succeeded a
//! second time, each container remembers what it posted (alert ids, else the
//! SNS message id); a retry that lands in another container may still
//! duplicate them in Slack.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::bot::{BotOutcome, SlackBot};
use super::{
    AlarmNotification, RetryPolicy, SlackClient, SlackError, alarm_blocks, blocks, message_blocks,
    parse_webhook_url,
};
use crate::alert::Alert;
use crate::sinks::pagerduty::{PagerDutyClient, PagerDutyError};
use crate::sinks::secret::SecretBacked;

/// Environment variable holding the webhook URL itself.
pub const WEBHOOK_URL_VAR: &str = "LOGWARDEN_SLACK_WEBHOOK_URL";
/// Environment variable holding the ARN (or name) of a secret with the URL.
pub const WEBHOOK_SECRET_VAR: &str = "LOGWARDEN_SLACK_WEBHOOK_SECRET_ARN";

/// Time kept back from the invocation's deadline so the function can return
/// its error (and SNS retry) instead of being killed mid-post.
const INVOCATION_MARGIN: Duration = Duration::from_secs(1);
/// Longest wait for Secrets Manager.
const SECRET_TIMEOUT: Duration = Duration::from_secs(10);
/// How many posted ids a container remembers.
const RECENT_IDS: usize = 10_000;
/// Longest unrecognised message copied into the log.
const MAX_LOGGED_MESSAGE: usize = 64 * 1024;

/// Errors of the notifier.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// The environment does not say where the webhook is. (The message
    /// names the variable; the binary prefixes `configuration:` once.)
    #[error("{0}")]
    Config(String),
    /// The event is not an SNS event (nor a bare alert); a retry cannot help.
    #[error("unrecognised event: {0}")]
    Unrecognised(String),
    /// The webhook URL could not be obtained (Secrets Manager); a retry may help.
    #[error("Slack webhook: {0}")]
    Webhook(#[source] SlackError),
    /// The PagerDuty routing key could not be obtained (Secrets Manager).
    #[error("PagerDuty routing key: {0}")]
    RoutingKey(#[source] PagerDutyError),
    /// Some alerts were not accepted by PagerDuty; the others were.
    #[error("{failed} of {total} message(s) not delivered (PagerDuty); first failure: {first}")]
    UndeliveredPagerDuty {
        /// Deliveries that failed.
        failed: usize,
        /// Messages in the event.
        total: usize,
        /// The first failure.
        first: PagerDutyError,
    },
    /// Some messages were not delivered; the others were.
    #[error("{failed} of {total} message(s) not delivered to Slack; first failure: {first}")]
    Undelivered {
        /// Messages not delivered.
        failed: usize,
        /// Messages in the event.
        total: usize,
        /// The first failure.
        first: SlackError,
    },
}

impl NotifierError {
    /// A short, stable name for the Lambda error type (what the invocation
    /// record, metrics filters and the DLQ show instead of a Rust type name).
    pub fn error_type(&self) -> &'static str {
        match self {
            NotifierError::Config(_) => "Logwarden.Config",
            NotifierError::Unrecognised(_) => "Logwarden.UnknownEvent",
            NotifierError::Webhook(_) => "Logwarden.WebhookUnavailable",
            NotifierError::RoutingKey(_) => "Logwarden.RoutingKeyUnavailable",
            NotifierError::Undelivered { .. } | NotifierError::UndeliveredPagerDuty { .. } => {
                "Logwarden.Undelivered"
            }
        }
    }
}

impl From<NotifierError> for lambda_runtime::Diagnostic {
    fn from(e: NotifierError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// Where the webhook URL comes from, as the environment says.
#[derive(Clone, PartialEq, Eq)]
pub enum WebhookConfig {
    /// The URL itself ([`WEBHOOK_URL_VAR`]).
    Url(String),
    /// A Secrets Manager secret ARN or name ([`WEBHOOK_SECRET_VAR`]).
    SecretArn(String),
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookConfig::Url(_) => f.write_str("Url(<hidden>)"),
            WebhookConfig::SecretArn(a) => f.debug_tuple("SecretArn").field(a).finish(),
        }
    }
}

impl WebhookConfig {
    /// Read [`WEBHOOK_URL_VAR`] and [`WEBHOOK_SECRET_VAR`].
    pub fn from_env() -> Result<WebhookConfig, NotifierError> {
        let url = std::env::var(WEBHOOK_URL_VAR).ok();
        let arn = std::env::var(WEBHOOK_SECRET_VAR).ok();
        WebhookConfig::from_values(url.as_deref(), arn.as_deref())
    }

    /// Exactly one of the two must be set (an empty value counts as unset,
    /// as templates often pass empty parameters); a URL must be http(s).
    pub fn from_values(
        url: Option<&str>,
        secret_arn: Option<&str>,
    ) -> Result<WebhookConfig, NotifierError> {
        let url = url.map(str::trim).filter(|s| !s.is_empty());
        let arn = secret_arn.map(str::trim).filter(|s| !s.is_empty());
        match (url, arn) {
            (Some(_), Some(_)) => Err(NotifierError::Config(format!(
                "both {WEBHOOK_URL_VAR} and {WEBHOOK_SECRET_VAR} are set; set exactly one"
            ))),
            (None, None) => Err(NotifierError::Config(format!(
                "set {WEBHOOK_URL_VAR} (the Slack incoming webhook URL) or {WEBHOOK_SECRET_VAR} (a Secrets Manager secret holding it)"
            ))),
            (Some(u), None) => {
                parse_webhook_url(u, WEBHOOK_URL_VAR)
                    .map_err(|e| NotifierError::Config(e.to_string()))?;
                Ok(WebhookConfig::Url(u.to_string()))
            }
            (None, Some(a)) => Ok(WebhookConfig::SecretArn(a.to_string())),
        }
    }
}

/// The URL inside a secret string: the string itself, or a JSON object's
/// `url` or `webhook_url` field. Errors never quote the secret.
pub fn webhook_url_from_secret(secret: &str) -> Result<String, String> {
    let url = crate::sinks::secret::credential_in(secret, &["url", "webhook_url"])?;
    parse_webhook_url(&url, "its URL").map_err(|e| e.to_string())?;
    Ok(url)
}

/// Read the webhook URL from a Secrets Manager secret (see
/// [`webhook_url_from_secret`] for the accepted shapes).
pub async fn fetch_webhook_url(
    secrets: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<String, SlackError> {
    let err = |reason: String| SlackError::Secret {
        arn: arn.to_string(),
        reason,
    };
    // The Secrets Manager call is written out here rather than through
    // `secret::secret_string`: one more nested future made the notifier's
    // handler future too deep for rustc's layout query (`queries overflow
    // the depth limit` in a clean, non-incremental build).
    let out = tokio::time::timeout(
        SECRET_TIMEOUT,
        secrets.get_secret_value().secret_id(arn).send(),
    )
    .await
    .map_err(|_| {
        err(format!(
            "Secrets Manager did not answer within {} s",
            SECRET_TIMEOUT.as_secs()
        ))
    })?
    .map_err(|e| {
        err(format!(
            "GetSecretValue failed: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
        ))
    })?;
    let s = out
        .secret_string()
        .ok_or_else(|| err("has no SecretString (binary secrets are not supported)".into()))?;
    webhook_url_from_secret(s).map_err(err)
}

struct SecretSource {
    secrets: aws_sdk_secretsmanager::Client,
    arn: String,
    policy: RetryPolicy,
}

/// The notifier's Slack client: given at start, or built from a Secrets
/// Manager secret on first use and kept for the container's life.
pub struct Webhook {
    client: OnceCell<SlackClient>,
    secret: Option<SecretSource>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("client", &self.client.get())
            .field("secret", &self.secret.as_ref().map(|s| &s.arn))
            .finish()
    }
}

impl Webhook {
    /// A webhook whose client is ready (URL from the environment, tests).
    pub fn ready(client: SlackClient) -> Webhook {
        Webhook {
            client: OnceCell::new_with(Some(client)),
            secret: None,
        }
    }

    /// A webhook whose URL is read from secret `arn` on first use; the
    /// client then posts with `policy`.
    pub fn from_secret(
        secrets: aws_sdk_secretsmanager::Client,
        arn: impl Into<String>,
        policy: RetryPolicy,
    ) -> Webhook {
        Webhook {
            client: OnceCell::new(),
            secret: Some(SecretSource {
                secrets,
                arn: arn.into(),
                policy,
            }),
        }
    }

    /// The client, reading the secret if this is the first use. A failed
    /// read is not remembered: the next call tries again.
    pub async fn client(&self) -> Result<&SlackClient, SlackError> {
        self.client
            .get_or_try_init(|| async {
                let Some(s) = &self.secret else {
                    return Err(SlackError::Client("no webhook configured".into()));
                };
                let url = fetch_webhook_url(&s.secrets, &s.arn).await?;
                let client = SlackClient::new(&url)?.with_policy(s.policy);
                tracing::info!(secret = %s.arn, "Read the Slack webhook URL from Secrets Manager.");
                Ok(client)
            })
            .await
    }
}

/// What one SNS message is.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// A logwarden alert.
    Alert(Box<Alert>),
    /// A CloudWatch alarm state change.
    Alarm(AlarmNotification),
    /// Anything else, kept as text.
    Other {
        /// The SNS subject, if any.
        subject: Option<String>,
        /// The message as received.
        message: String,
        /// Why it is neither an alert nor an alarm.
        why: String,
    },
}

impl Notification {
    /// Tell an alert from an alarm notification from anything else.
    pub fn classify(subject: Option<&str>, message: &str) -> Notification {
        let other = |why: String| Notification::Other {
            subject: subject.map(str::to_string),
            message: message.to_string(),
            why,
        };
        let v: Value = match serde_json::from_str(message) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return other("JSON, but not an object".into()),
            Err(e) => return other(format!("not JSON ({e})")),
        };
        if v.get("AlarmName").is_some() && v.get("NewStateValue").is_some() {
            return match serde_json::from_value(v) {
                Ok(a) => Notification::Alarm(a),
                Err(e) => other(format!("alarm-like but unreadable ({e})")),
            };
        }
        match serde_json::from_value::<Alert>(v) {
            Ok(a) => Notification::Alert(Box::new(a)),
            Err(e) => other(format!("not an alert ({e})")),
        }
    }

    /// The webhook body for it.
    pub fn body(&self) -> Value {
        match self {
            Notification::Alert(a) => blocks(a),
            Notification::Alarm(a) => alarm_blocks(a),
            Notification::Other {
                subject, message, ..
            } => message_blocks(subject.as_deref(), message),
        }
    }

    /// `alert`, `alarm` or `other`, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Notification::Alert(_) => "alert",
            Notification::Alarm(_) => "alarm",
            Notification::Other { .. } => "other",
        }
    }
}

/// Ids posted by this container, oldest forgotten first.
#[derive(Default)]
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    fn insert(&mut self, id: String) {
        if self.set.insert(id.clone()) {
            self.order.push_back(id);
            while self.order.len() > RECENT_IDS {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// One message taken from the event.
struct Incoming {
    message_id: Option<String>,
    subject: Option<String>,
    message: String,
}

/// Counters of one invocation (also its response body).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NotifyCounters {
    /// Messages in the event.
    pub messages: usize,
    /// Posted to Slack.
    pub posted: usize,
    /// Sent to PagerDuty.
    pub pagerduty: usize,
    /// Alerts of shadow rules: delivered nowhere.
    pub shadow: usize,
    /// Already delivered by this container (an SNS retry), not delivered
    /// again (counted once per destination).
    pub duplicates: usize,
    /// Deliveries that failed, per destination (the invocation fails so SNS
    /// retries).
    pub failed: usize,
    /// Posted as plain text because they were neither alert nor alarm.
    pub unrecognised: usize,
    /// Records without an SNS message (logged and skipped).
    pub malformed_records: usize,
}

/// Where Slack messages go.
#[derive(Debug)]
pub enum SlackDest {
    /// An incoming webhook: one message per alert.
    Webhook(Webhook),
    /// A bot token: one message per incident, updated and answered in its
    /// thread ([`super::bot`]).
    Bot(SecretBacked<SlackBot>),
}

/// The Slack destination, ready to post.
enum SlackTarget<'a> {
    Webhook(&'a SlackClient),
    Bot(&'a SlackBot),
}

/// The notifier function as Lambda runs it: built once per container,
/// called once per event.
pub struct NotifierService {
    slack: Option<SlackDest>,
    pagerduty: Option<SecretBacked<PagerDutyClient>>,
    recent: Mutex<RecentIds>,
    redact: crate::alert::redact::RedactOptions,
}

impl std::fmt::Debug for NotifierService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifierService")
            .field("slack", &self.slack)
            .field("pagerduty", &self.pagerduty)
            .finish_non_exhaustive()
    }
}

impl NotifierService {
    /// A service posting to `webhook`.
    pub fn new(webhook: Webhook) -> NotifierService {
        NotifierService::with_destinations(Some(SlackDest::Webhook(webhook)), None)
    }

    /// A service delivering to Slack (`slack`), PagerDuty (`pagerduty`) or both.
    pub fn with_destinations(
        slack: Option<SlackDest>,
        pagerduty: Option<SecretBacked<PagerDutyClient>>,
    ) -> NotifierService {
        NotifierService {
            slack,
            pagerduty,
            recent: Mutex::new(RecentIds::default()),
            redact: Default::default(),
        }
    }

    /// Redact alerts with `opts` before posting (secrets are always
    /// redacted; this adds e.g. email addresses, `LOGWARDEN_REDACT_EMAILS`).
    pub fn with_redaction(mut self, opts: crate::alert::redact::RedactOptions) -> NotifierService {
        self.redact = opts;
        self
    }

    /// Handle one invocation: every message goes to every destination (or
    /// is found already delivered there), then the invocation fails if any
    /// was not delivered, so that SNS retries it. Alerts of shadow rules go
    /// nowhere; PagerDuty gets alerts only. The response is the
    /// [`NotifyCounters`] as JSON.
    pub async fn call(
        &self,
        event: lambda_runtime::LambdaEvent<Value>,
    ) -> Result<Value, NotifierError> {
        let end = (event.context.deadline > 0).then(|| event.context.deadline());
        let (messages, malformed_records) = messages(&event.payload)?;
        let mut c = NotifyCounters {
            messages: messages.len(),
            malformed_records,
            ..NotifyCounters::default()
        };
        if messages.is_empty() {
            tracing::info!(malformed_records, "Nothing to post.");
            return Ok(json!(c));
        }
        let slack = match &self.slack {
            None => None,
            Some(SlackDest::Webhook(w)) => Some(SlackTarget::Webhook(
                w.client().await.map_err(NotifierError::Webhook)?,
            )),
            Some(SlackDest::Bot(b)) => Some(SlackTarget::Bot(b.get().await.map_err(|e| {
                NotifierError::Webhook(SlackError::Secret {
                    arn: e.arn,
                    reason: e.reason,
                })
            })?)),
        };
        let pagerduty = match &self.pagerduty {
            None => None,
            Some(p) => Some(p.get().await.map_err(|e| {
                NotifierError::RoutingKey(PagerDutyError::Secret {
                    arn: e.arn,
                    reason: e.reason,
                })
            })?),
        };
        let (mut slack_failure, mut pd_failure) = (None, None);
        for m in messages {
            let n = self.classify(&m, &mut c);
            if let Notification::Alert(a) = &n
                && a.shadow
            {
                c.shadow += 1;
                tracing::info!(alert = %a.id, rule = %a.rule, "Shadow alert; not delivered.");
                continue;
            }
            if let Some(t) = &slack
                && let Err(e) = self.to_slack(t, &n, &m, time_left(end), &mut c).await
            {
                slack_failure.get_or_insert(e);
            }
            if let (Some(pd), Notification::Alert(a)) = (pagerduty, &n)
                && let Err(e) = self.to_pagerduty(pd, a, time_left(end), &mut c).await
            {
                pd_failure.get_or_insert(e);
            }
        }
        tracing::info!(
            messages = c.messages,
            posted = c.posted,
            pagerduty = c.pagerduty,
            duplicates = c.duplicates,
            shadow = c.shadow,
            failed = c.failed,
            unrecognised = c.unrecognised,
            malformed_records = c.malformed_records,
            "Notified."
        );
        let (failed, total) = (c.failed, c.messages);
        match (slack_failure, pd_failure) {
            (None, None) => Ok(json!(c)),
            (Some(first), _) => Err(NotifierError::Undelivered {
                failed,
                total,
                first,
            }),
            (None, Some(first)) => Err(NotifierError::UndeliveredPagerDuty {
                failed,
                total,
                first,
            }),
        }
    }

    /// What a message is, alerts redacted; an unrecognised one is counted
    /// and logged.
    fn classify(&self, m: &Incoming, c: &mut NotifyCounters) -> Notification {
        let mut n = Notification::classify(m.subject.as_deref(), &m.message);
        if let Notification::Alert(a) = &mut n {
            crate::alert::redact::alert(a, &self.redact);
        }
        if let Notification::Other { why, message, .. } = &n {
            c.unrecognised += 1;
            tracing::warn!(
                message_id = m.message_id.as_deref().unwrap_or(""),
                subject = m.subject.as_deref().unwrap_or(""),
                why = %why,
                body = %crate::alert::truncate_chars(message, MAX_LOGGED_MESSAGE),
                "Message is neither an alert nor an alarm; posting it as text."
            );
        }
        n
    }

    async fn to_slack(
        &self,
        target: &SlackTarget<'_>,
        n: &Notification,
        m: &Incoming,
        budget: Duration,
        c: &mut NotifyCounters,
    ) -> Result<(), SlackError> {
        let id = match n {
            // A realert and the resolution share the firing's id: what the
            // incident has reached tells them apart, a retry does not.
            Notification::Alert(a) => Some(format!(
                "alert:{}:{}:{}:{}",
                a.id, a.status, a.last_seen, a.count
            )),
            _ => m.message_id.as_ref().map(|id| format!("sns:{id}")),
        };
        if id.as_deref().is_some_and(|id| self.already_posted(id)) {
            c.duplicates += 1;
            tracing::info!(
                id = id.as_deref().unwrap_or(""),
                "Already posted by this container; not posting again."
            );
            return Ok(());
        }
        // `None`: the message already shows this (an earlier try, or
        // another container, did it).
        let done = match (target, n) {
            (SlackTarget::Webhook(client), n) => client
                .post_within(&n.body(), budget)
                .await
                .map(|d| Some(format!("{} attempt(s)", d.attempts))),
            (SlackTarget::Bot(bot), Notification::Alert(a)) => {
                bot.deliver(a, budget).await.map(|o| match o {
                    BotOutcome::Unchanged => None,
                    o => Some(format!("{o:?}")),
                })
            }
            (SlackTarget::Bot(bot), n) => bot
                .post_message(&n.body(), budget)
                .await
                .map(|()| Some("posted".to_string())),
        };
        match done {
            Ok(None) => {
                c.duplicates += 1;
                tracing::info!(
                    id = id.as_deref().unwrap_or(""),
                    "The incident's Slack message already shows this; not posting again."
                );
                Ok(())
            }
            Ok(Some(how)) => {
                c.posted += 1;
                tracing::info!(kind = n.kind(), id = id.as_deref().unwrap_or(""), how = %how, "Posted to Slack.");
                if let Some(id) = id {
                    self.remember(id);
                }
                Ok(())
            }
            Err(e) => {
                // The Slack clients have logged the failure at ERROR already.
                c.failed += 1;
                Err(e)
            }
        }
    }

    async fn to_pagerduty(
        &self,
        client: &PagerDutyClient,
        a: &Alert,
        budget: Duration,
        c: &mut NotifyCounters,
    ) -> Result<(), PagerDutyError> {
        let id = format!(
            "pagerduty:{}:{}:{}:{}",
            a.id, a.status, a.last_seen, a.count
        );
        if self.already_posted(&id) {
            c.duplicates += 1;
            return Ok(());
        }
        match client.send_within(a, budget).await {
            Ok(sent) => {
                c.pagerduty += 1;
                tracing::info!(alert = %a.id, status = %a.status, attempts = sent.attempts, "Sent to PagerDuty.");
                self.remember(id);
                Ok(())
            }
            Err(e) => {
                c.failed += 1;
                Err(e)
            }
        }
    }

    fn already_posted(&self, id: &str) -> bool {
        self.recent.lock().map(|r| r.contains(id)).unwrap_or(false)
    }

    fn remember(&self, id: String) {
        if let Ok(mut r) = self.recent.lock() {
            r.insert(id);
        }
    }
}

/// Time left in the invocation, less the margin; unbounded without a
/// deadline (the client's own deadline still applies).
fn time_left(end: Option<SystemTime>) -> Duration {
    match end {
        None => Duration::MAX,
        Some(end) => end
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .saturating_sub(INVOCATION_MARGIN),
    }
}

/// The messages of an SNS event (and how many records had none), or a bare
/// alert object invoked directly (handy for a manual test invoke).
fn messages(event: &Value) -> Result<(Vec<Incoming>, usize), NotifierError> {
    if let Some(records) = event.get("Records") {
        let records = records
            .as_array()
            .ok_or_else(|| NotifierError::Unrecognised("Records is not a list".into()))?;
        let mut out = Vec::with_capacity(records.len());
        let mut malformed = 0;
        for (i, r) in records.iter().enumerate() {
            let sns = r.get("Sns");
            match sns.and_then(|s| s.get("Message")).and_then(Value::as_str) {
                Some(message) => out.push(Incoming {
                    message_id: sns
                        .and_then(|s| s.get("MessageId"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    subject: sns
                        .and_then(|s| s.get("Subject"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    message: message.to_string(),
                }),
                None => {
                    malformed += 1;
                    let source = r.get("EventSource").and_then(Value::as_str).unwrap_or("");
                    tracing::warn!(
                        record = i,
                        event_source = source,
                        "Record has no Sns.Message; skipped."
                    );
                }
            }
        }
        return Ok((out, malformed));
    }
    if event.get("rule").is_some() && event.get("id").is_some() {
        return Ok((
            vec![Incoming {
                message_id: None,
                subject: None,
                message: event.to_string(),
            }],
            0,
        ));
    }
    Err(NotifierError::Unrecognised(
        "expected an SNS event ({\"Records\":[{\"Sns\":{\"Message\":…}}]}) or an alert object"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_webhook_source_must_be_set() {
        let both = WebhookConfig::from_values(Some("https://hooks.slack.com/x"), Some("arn"))
            .unwrap_err()
            .to_string();
        assert!(
            both.contains("both") && both.contains(WEBHOOK_SECRET_VAR),
            "{both}"
        );
        let neither = WebhookConfig::from_values(None, Some("  "))
            .unwrap_err()
            .to_string();
        assert!(neither.contains(WEBHOOK_URL_VAR) && neither.contains(WEBHOOK_SECRET_VAR));
        assert!(!neither.contains('\n'));
        assert_eq!(
            WebhookConfig::from_values(Some(""), Some("arn:aws:secretsmanager:x")).unwrap(),
            WebhookConfig::SecretArn("arn:aws:secretsmanager:x".into())
        );
        let bad = WebhookConfig::from_values(Some("hooks.slack.com/T/B/SECRETPART"), None)
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains(WEBHOOK_URL_VAR) && !bad.contains("SECRETPART"),
            "{bad}"
        );
        let ok = WebhookConfig::from_values(Some("https://hooks.slack.com/T/B/SECRETPART"), None)
            .unwrap();
        assert!(!format!("{ok:?}").contains("SECRETPART"));
    }

    #[test]
    fn secret_may_be_the_url_or_json_with_url_or_webhook_url() {
        let u = "https://hooks.slack.com/services/T0/B0/xyz";
        assert_eq!(webhook_url_from_secret(&format!(" {u}\n")).unwrap(), u);
        assert_eq!(
            webhook_url_from_secret(&json!({"url": u}).to_string()).unwrap(),
            u
        );
        assert_eq!(
            webhook_url_from_secret(&json!({"webhook_url": u, "channel": "#x"}).to_string())
                .unwrap(),
            u
        );
        let e = webhook_url_from_secret(r#"{"hook": "https://hooks.slack.com/SECRETPART"}"#)
            .unwrap_err();
        assert!(
            e.contains("webhook_url") && !e.contains("SECRETPART"),
            "{e}"
        );
        let e = webhook_url_from_secret(r#"{"url": "SECRETPART"#).unwrap_err();
        assert!(
            e.contains("does not parse") && !e.contains("SECRETPART"),
            "{e}"
        );
        let e = webhook_url_from_secret("SECRETPART").unwrap_err();
        assert!(!e.contains("SECRETPART"), "{e}");
    }

    #[test]
    fn classify_tells_alerts_alarms_and_others_apart() {
        let alert = json!({"id": "a1", "rule": "r", "kind": "failure", "severity": "high",
            "title": "t", "log_group": "g", "key": {}, "count": 1,
            "first_seen": "2026-11-22T10:00:00.000Z", "last_seen": "2026-11-22T10:00:00.000Z",
            "some_future_field": true});
        assert_eq!(
            Notification::classify(None, &alert.to_string()).kind(),
            "alert"
        );
        let alarm = json!({"AlarmName": "x", "NewStateValue": "ALARM", "NewStateReason": "r"});
        assert_eq!(
            Notification::classify(None, &alarm.to_string()).kind(),
            "alarm"
        );
        for other in [
            "hello",
            "[1,2]",
            r#"{"rule": "r"}"#,
            r#"{"AlarmName": 1, "NewStateValue": "OK"}"#,
        ] {
            match Notification::classify(Some("s"), other) {
                Notification::Other {
                    message,
                    subject,
                    why,
                } => {
                    assert_eq!(message, other);
                    assert_eq!(subject.as_deref(), Some("s"));
                    assert!(!why.is_empty());
                }
                n => panic!("{other} classified as {}", n.kind()),
            }
        }
    }

    #[test]
    fn records_without_a_message_are_counted_and_bare_alerts_accepted() {
        let ev = json!({"Records": [
            {"EventSource": "aws:sns", "Sns": {"Message": "m", "MessageId": "1", "Subject": "s"}},
            {"EventSource": "aws:sqs", "body": "x"}
        ]});
        let (m, bad) = messages(&ev).unwrap();
        assert_eq!((m.len(), bad), (1, 1));
        assert_eq!(m[0].message_id.as_deref(), Some("1"));
        assert!(messages(&json!({"id": "x", "rule": "r"})).unwrap().0.len() == 1);
        assert!(matches!(
            messages(&json!({"hello": 1})),
            Err(NotifierError::Unrecognised(_))
        ));
    }

    #[test]
    fn lambda_sees_a_named_error_type_and_the_message() {
        let d = lambda_runtime::Diagnostic::from(NotifierError::Unrecognised("x".into()));
        assert_eq!(d.error_type, "Logwarden.UnknownEvent");
        assert_eq!(d.error_message, "unrecognised event: x");
    }

    #[test]
    fn recent_ids_forget_the_oldest() {
        let mut r = RecentIds::default();
        for i in 0..RECENT_IDS + 5 {
            r.insert(i.to_string());
        }
        assert!(!r.contains("0") && !r.contains("4"));
        assert!(r.contains("5") && r.contains(&(RECENT_IDS + 4).to_string()));
        assert_eq!(r.set.len(), RECENT_IDS);
    }

    #[test]
    fn time_left_keeps_a_margin_and_never_goes_negative() {
        assert_eq!(time_left(None), Duration::MAX);
        let past = SystemTime::now() - Duration::from_secs(5);
        assert_eq!(time_left(Some(past)), Duration::ZERO);
        // Bounded by the time this test itself takes, not by a guess at how
        // fast the machine is: a fixed 1 s slack fails whenever the thread is
        // descheduled that long on a loaded machine.
        let before = SystemTime::now();
        let left = time_left(Some(before + Duration::from_secs(10)));
        let took = before.elapsed().unwrap_or_default();
        assert!(
            left <= Duration::from_secs(9) && left >= Duration::from_secs(9).saturating_sub(took),
            "{left:?} after {took:?}"
        );
    }
}
