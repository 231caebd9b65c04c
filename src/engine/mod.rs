//! The engine: one decoded batch in, alerts out.
//!
//! Per batch: (1) every message is classified once ([`crate::platform`]) and
//! each rule says what the event means for it — pure, no state; (2) the state
//! of every key those observations touch (in a sweep: what each rule's
//! detector asks to list) is read in one [`StateStore::load`]; (3) observations are
//! applied in event order, deadlines evaluated against the watermark, and
//! incidents opened or folded (one incident, one alert per `realert`);
//! (4) what changed is written in one [`StateStore::save`]. A conflicting
//! write (another process changed a key) reruns the batch from step 1.
//!
//! The engine names no kind: each rule's detector says what an event means,
//! which state it touches and how it changes ([`crate::detect::Detect`]).
//!
//! Files by role: `observe.rs` is step 1, `batch.rs` steps 2–4 around
//! `apply.rs` (one observation handed to its rule's detector) and `work.rs`
//! (the batch's state values and keys); `incidents.rs` opens and folds
//! incidents and confirms the outbox; `lifecycle.rs` realerts and resolves
//! them; `finish.rs`
//! turns a draft into the redacted alert; `digest.rs` folds an alert storm;
//! `rule_tests.rs` runs a rule file's inline tests.

mod apply;
mod batch;
mod digest;
mod finish;
mod incidents;
mod lifecycle;
mod observe;
mod places;
mod prepared;
mod rule_tests;
mod work;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::alert::Alert;
use crate::alert::accounts::Accounts;
use crate::alert::links::AccessPortal;
use crate::alert::redact::RedactOptions;
use crate::detect::profile::Profile;
use crate::ingest::{MessageType, Payload};
use crate::rules::RuleSet;
use crate::state::{StateError, StateStore};

pub use places::PlaceSettings;
pub use prepared::{Pass1, Prepared};
pub use rule_tests::{TestOutcome, run_rule_tests, run_rule_tests_in};

const MAX_ATTEMPTS: usize = 5;
const INCIDENT_REQUESTS_KEPT: usize = 512;

/// What went wrong processing a batch. Decoding problems never get here:
/// they are the caller's, per record.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state store failed; a retry of the batch may help.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Settings that are not rules.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The default region (the detector's `AWS_REGION`, the CLI's
    /// `--region`): alerts of payloads whose envelope names no region are in it.
    pub region: String,
    /// The home region: the detector's own. `None`: the region of the first
    /// payload the engine reads (the CLI, so that replaying one region's
    /// events keeps their ids whatever `--region` says).
    pub home_region: Option<String>,
    /// The home account: the detector's own. `None`: the first account the
    /// engine reads becomes home. Payloads of the home account and region
    /// keep the state keys and alert ids a single-account deployment always
    /// had; every other (account, region) is a place of its own
    /// ([`crate::detect::Located`]).
    pub home_account: Option<String>,
    /// Names and teams of accounts (`account_name`, `team`).
    pub accounts: Arc<Accounts>,
    /// Links go through this IAM Identity Center portal, when set.
    pub access_portal: Option<AccessPortal>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            region: "us-east-1".into(),
            home_region: None,
            home_account: None,
            accounts: Arc::default(),
            access_portal: None,
        }
    }
}

/// Default of [`Safeguards::max_alerts_per_batch`].
pub const DEFAULT_MAX_ALERTS_PER_BATCH: usize = 20;

/// Rule id of the digest alert that folds an alert storm.
pub const DIGEST_RULE: &str = "alert-digest";

/// Defences against attacker-controlled log content (see the README's
/// "Attacker-controlled log content"): redaction, the alert-storm limit and
/// the log groups whose batches are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Safeguards {
    /// What is redacted beyond secrets (emails are optional).
    pub redact: RedactOptions,
    /// Alerts one batch (or sweep) hands out before the rest are folded into
    /// one digest alert; 0 = no limit.
    pub max_alerts_per_batch: usize,
    /// Log groups whose batches are ignored: logwarden's own, so that its
    /// log lines (which quote alerts) cannot raise alerts about alerts.
    pub ignore_log_groups: Vec<String>,
}

impl Safeguards {
    /// The detector Lambda's safeguards from its environment, read through
    /// `var` (`std::env::var` in the binary): `LOGWARDEN_REDACT_EMAILS`,
    /// `LOGWARDEN_MAX_ALERTS_PER_BATCH` and `LOGWARDEN_IGNORE_LOG_GROUPS`
    /// (comma-separated). The function's own log group,
    /// `/aws/lambda/<function>`, is always ignored: the recursion guard.
    pub fn for_lambda(
        function: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Safeguards, String> {
        let redact = RedactOptions::from_lookup(&var)?;
        let max_alerts_per_batch = match var("LOGWARDEN_MAX_ALERTS_PER_BATCH") {
            Some(v) => v.trim().parse::<usize>().map_err(|_| {
                format!(
                    "LOGWARDEN_MAX_ALERTS_PER_BATCH: `{v}` is not a number of alerts (0 = no limit)"
                )
            })?,
            None => DEFAULT_MAX_ALERTS_PER_BATCH,
        };
        let mut ignore_log_groups = vec![format!("/aws/lambda/{function}")];
        for g in var("LOGWARDEN_IGNORE_LOG_GROUPS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
        {
            if !ignore_log_groups.iter().any(|x| x == g) {
                ignore_log_groups.push(g.to_string());
            }
        }
        Ok(Safeguards {
            redact,
            max_alerts_per_batch,
            ignore_log_groups,
        })
    }
}

impl Default for Safeguards {
    fn default() -> Self {
        Safeguards {
            redact: RedactOptions::default(),
            max_alerts_per_batch: DEFAULT_MAX_ALERTS_PER_BATCH,
            ignore_log_groups: Vec::new(),
        }
    }
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Alerts opened by this batch, in the order they opened.
    pub alerts: Vec<Alert>,
    /// Events read.
    pub events: usize,
    /// Events folded into incidents alerted in an earlier batch.
    pub suppressed: u64,
    /// The payload was a CONTROL_MESSAGE and was skipped.
    pub control: bool,
    /// The payload came from an ignored log group (the recursion guard) and
    /// was skipped.
    pub ignored: bool,
    /// Alerts folded into the digest (the last alert of `alerts`) by the
    /// alert-storm limit.
    pub folded: usize,
    /// Events whose JSON a strict parser rejected (a lone surrogate, `NaN`,
    /// `1e400`, deep nesting, a cut-off line) and that were read tolerantly
    /// ([`crate::lenient_json`]) so that their fields still match.
    pub lenient_json: u64,
    /// STARTs not tracked because their stream already held the most open
    /// invocations a stream keeps (a limit of the kind's state).
    pub open_invocations_dropped: u64,
}

/// The detection engine over one state store.
pub struct Engine<S: StateStore> {
    rules: Arc<RuleSet>,
    store: S,
    config: EngineConfig,
    /// The home account ([`EngineConfig::home_account`], else the first read).
    home_account: Option<String>,
    /// The home region ([`EngineConfig::home_region`], else the first read).
    home_region: Option<String>,
    safeguards: Safeguards,
    watermark: i64,
    /// Per-rule figures, when asked for ([`Engine::with_profile`]).
    profile: Option<Profile>,
    /// Alert id handed out and not yet confirmed → the incident keys it
    /// stands for, each with the id of the alert pending there (one for an
    /// alert; every folded one for a digest).
    unconfirmed: HashMap<String, Vec<(String, String)>>,
}

impl<S: StateStore> Engine<S> {
    /// An engine over compiled rules and a store.
    pub fn new(rules: Arc<RuleSet>, store: S, config: EngineConfig) -> Self {
        Engine {
            rules,
            store,
            home_account: config.home_account.clone(),
            home_region: config.home_region.clone(),
            config,
            safeguards: Safeguards::default(),
            watermark: i64::MIN,
            profile: None,
            unconfirmed: HashMap::new(),
        }
    }

    /// The engine, counting what each rule costs ([`Engine::profile`]).
    pub fn with_profile(mut self) -> Self {
        self.profile = Some(Profile::default());
        self
    }

    /// What each rule cost so far, when built [`Engine::with_profile`].
    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    /// The engine with these safeguards (the default: secrets redacted, at
    /// most [`DEFAULT_MAX_ALERTS_PER_BATCH`] alerts per batch, no log group
    /// ignored).
    pub fn with_safeguards(mut self, safeguards: Safeguards) -> Self {
        self.safeguards = safeguards;
        self
    }

    /// The rules in force.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// The store (for inspection in tests and telemetry).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Largest event time seen so far.
    pub fn watermark(&self) -> Option<i64> {
        (self.watermark != i64::MIN).then_some(self.watermark)
    }

    /// The incident keys alert `id` stands for, while it is handed out and
    /// not yet confirmed (the runner parks silenced alerts with them).
    pub fn incident_keys(&self, id: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .unconfirmed
            .get(id)
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        keys.dedup();
        keys
    }

    /// Process one decoded payload.
    pub async fn process(&mut self, p: &Payload<'_>) -> Result<BatchOutcome, EngineError> {
        if let Some(skipped) = self.skipped(p) {
            return Ok(skipped);
        }
        let (observed, lenient_json) = self.observe(p);
        self.process_observed(p, &observed, lenient_json).await
    }

    /// Process a payload whose pass 1 was done ahead, maybe on another
    /// thread ([`Prepared`]): the same outcome as [`Engine::process`] on it.
    /// Pass 1 is done again here when it was done with other rules than
    /// this engine's, or when profiling (the profile times it).
    pub async fn process_prepared(
        &mut self,
        pass1: &Pass1<'_>,
    ) -> Result<BatchOutcome, EngineError> {
        let p = &pass1.payload;
        if let Some(skipped) = self.skipped(p) {
            return Ok(skipped);
        }
        let same_rules = pass1
            .rules
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, &self.rules));
        if self.profile.is_some() || !same_rules {
            return self.process(p).await;
        }
        self.process_observed(p, &pass1.observed, pass1.lenient_json)
            .await
    }

    /// The outcome of a payload that is not detected on: a control message,
    /// or a batch of an ignored log group.
    fn skipped(&self, p: &Payload<'_>) -> Option<BatchOutcome> {
        if p.message_type == MessageType::Control {
            return Some(BatchOutcome {
                control: true,
                ..BatchOutcome::default()
            });
        }
        if self
            .safeguards
            .ignore_log_groups
            .iter()
            .any(|g| *g == p.log_group)
        {
            tracing::debug!(log_group = %p.log_group, "Ignored a batch from an ignored log group.");
            return Some(BatchOutcome {
                ignored: true,
                events: p.log_events.len(),
                ..BatchOutcome::default()
            });
        }
        None
    }

    /// Steps 2–4 on a payload and its pass 1.
    async fn process_observed(
        &mut self,
        p: &Payload<'_>,
        observed: &[observe::Observed<'_>],
        lenient_json: u64,
    ) -> Result<BatchOutcome, EngineError> {
        let located = self.locate(p);
        let p = located.as_ref().unwrap_or(p);
        if let Some(max) = p.log_events.iter().map(|e| e.timestamp).max() {
            self.watermark = self.watermark.max(max);
        }
        // State is read as of the batch's oldest event: a window that expired by
        // the global watermark (another stream ran ahead) still counts here.
        let read_time = p
            .log_events
            .iter()
            .map(|e| e.timestamp)
            .min()
            .unwrap_or(self.watermark);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .run(Some((p, observed)), self.watermark, read_time)
                .await
            {
                Err(EngineError::State(StateError::Conflict { key })) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(key = %key, attempt, "State changed concurrently; processing the batch again.");
                }
                Ok(mut out) => {
                    out.events = p.log_events.len();
                    out.lenient_json = lenient_json;
                    return Ok(out);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The payload as the state sees it: `None` when it comes from the home
    /// account and region (its log group is its place), else the payload
    /// with its log group replaced by its place's text
    /// ([`crate::detect::Located`]). Only the alert ([`Engine::finish`])
    /// reads the group back.
    fn locate<'a>(&mut self, p: &'a Payload<'_>) -> Option<Payload<'a>> {
        let owner = p.owner.as_ref();
        if self.home_account.is_none() && !owner.is_empty() {
            self.home_account = Some(owner.to_string());
        }
        let home_account = owner.is_empty() || self.home_account.as_deref() == Some(owner);
        let region = p.region.as_deref().unwrap_or(&self.config.region);
        let home_region = self.home_region.get_or_insert_with(|| region.to_string());
        if home_account && region == home_region.as_str() {
            return None;
        }
        let b = |s: &'a Cow<'_, str>| Cow::Borrowed(s.as_ref());
        Some(Payload {
            message_type: p.message_type,
            owner: b(&p.owner),
            region: p.region.as_ref().map(b),
            log_group: crate::detect::Located::text(owner, region, &p.log_group).into(),
            log_stream: b(&p.log_stream),
            subscription_filters: p.subscription_filters.iter().map(b).collect(),
            log_events: p
                .log_events
                .iter()
                .map(|e| crate::ingest::LogEvent {
                    id: b(&e.id),
                    timestamp: e.timestamp,
                    message: b(&e.message),
                })
                .collect(),
        })
    }

    /// Evaluate deadline rules with `now` as the watermark (end of input, or
    /// the scheduled sweep with the clock), without new events.
    ///
    /// State is read as of the last event seen (when there was one), deadlines
    /// are judged at `now`: a sweep long after the data (`replay --now`, a
    /// sweeper that was down) still finds the invocations left open then,
    /// whose state has since passed its expiry.
    pub async fn sweep(&mut self, now: i64) -> Result<BatchOutcome, EngineError> {
        let read_time = if self.watermark == i64::MIN {
            now
        } else {
            self.watermark.min(now)
        };
        self.watermark = self.watermark.max(now);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.run(None, self.watermark, read_time).await {
                Err(EngineError::State(StateError::Conflict { .. })) if attempt < MAX_ATTEMPTS => {}
                other => return other,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ingest::LogEvent;
    use crate::state;

    #[tokio::test]
    async fn a_sweep_long_after_the_data_still_finds_the_orphan() {
        // Regression: the sweep read state as of its own time, by which the
        // open invocation's state had expired, so `replay --now <a day later>`
        // (or a sweeper that was down) reported nothing.
        let set = Arc::new(RuleSet::builtin().unwrap());
        let mut engine = Engine::new(set, state::MemoryStore::new(), EngineConfig::default());
        let t = 1_795_341_600_000;
        let payload = Payload {
            region: None,
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: "/aws/lambda/checkout".into(),
            log_stream: "s".into(),
            subscription_filters: vec![],
            log_events: vec![LogEvent {
                id: "1".into(),
                timestamp: t,
                message: "START RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3 Version: $LATEST\n"
                    .into(),
            }],
        };
        assert!(engine.process(&payload).await.unwrap().alerts.is_empty());
        let o = engine.sweep(t + 86_400_000).await.unwrap();
        let rules: Vec<&str> = o.alerts.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(rules, ["missing-end"]);
    }

    #[tokio::test]
    async fn a_spike_in_the_last_minute_before_silence_is_judged_by_the_sweep() {
        let set = Arc::new(RuleSet::builtin().unwrap());
        let mut engine = Engine::new(set, state::MemoryStore::new(), EngineConfig::default());
        let t = 1_795_341_600_000;
        let mut messages = Vec::new();
        for m in 0..26_i64 {
            let n = if m == 25 { 300 } else { 10 };
            for k in 0..n {
                messages.push((
                    t + m * 60_000 + k * (60_000 / n),
                    format!("START RequestId: r-{m}-{k} Version: $LATEST\n"),
                ));
            }
        }
        let payload = Payload {
            region: None,
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: "/aws/lambda/image-api".into(),
            log_stream: "s".into(),
            subscription_filters: vec![],
            log_events: messages
                .iter()
                .enumerate()
                .map(|(i, (ts, m))| LogEvent {
                    id: i.to_string().into(),
                    timestamp: *ts,
                    message: m.as_str().into(),
                })
                .collect(),
        };
        let o = engine.process(&payload).await.unwrap();
        assert!(
            o.alerts.iter().all(|a| a.rule != "invocation-spike"),
            "minute 25 is not complete yet"
        );
        // The same batch again (a retried delivery) counts nothing twice.
        engine.process(&payload).await.unwrap();
        let o = engine.sweep(t + 28 * 60_000).await.unwrap();
        let spikes: Vec<&Alert> = o
            .alerts
            .iter()
            .filter(|a| a.rule == "invocation-spike")
            .collect();
        assert_eq!(spikes.len(), 1, "{:?}", o.alerts);
        assert_eq!(spikes[0].count, 300);
        assert_eq!(spikes[0].metrics["baseline_per_min"], 10.0);
        let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
        engine.confirm(&ids).await.unwrap();
        let later = engine.sweep(t + 40 * 60_000).await.unwrap();
        // No second spike: the one spike resolves (two normal minutes after it).
        let later: Vec<&Alert> = later
            .alerts
            .iter()
            .filter(|a| a.rule == "invocation-spike")
            .collect();
        assert_eq!(later.len(), 1, "{later:?}");
        assert!(later[0].status.is_resolved());
        assert_eq!(later[0].id, spikes[0].id);
    }

    /// Ten login failures from `ip` whose JSON a strict parser rejects, one
    /// crafted form per call, each line in one of the three places a JSON body
    /// is found: the whole message, after the Lambda text prefix, inside a
    /// Lambda JSON-format log's `message` (as an object, then double-encoded).
    pub(crate) fn crafted_login_failures(form: &str, ip: &str) -> Vec<String> {
        (0..10)
            .map(|i| {
                let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
                let body = match form {
                    "lone surrogate" => format!(
                        r#"{{"event":"login_failed","source_ip":"{ip}","user":"\ud800admin{i}"}}"#
                    ),
                    "NaN" => format!(
                        r#"{{"event":"login_failed","risk":NaN,"source_ip":"{ip}","user":"u{i}"}}"#
                    ),
                    "1e400" => format!(
                        r#"{{"event":"login_failed","attempt":1e400,"source_ip":"{ip}","user":"u{i}"}}"#
                    ),
                    _ => format!(
                        r#"{{"event":"login_failed","ctx":{deep},"source_ip":"{ip}","user":"u{i}"}}"#
                    ),
                };
                match i % 4 {
                    0 => body,
                    1 => format!(
                        "2026-11-22T10:00:0{i}.000Z\t11111111-0000-4000-8000-00000000000{i}\tWARN\t{body}"
                    ),
                    2 => format!(
                        r#"{{"timestamp":"2026-11-22T10:00:0{i}Z","level":"WARN","requestId":"r{i}","message":{body}}}"#
                    ),
                    _ => format!(
                        r#"{{"timestamp":"2026-11-22T10:00:0{i}Z","level":"WARN","requestId":"r{i}","message":{}}}"#,
                        serde_json::to_string(&body).unwrap()
                    ),
                }
            })
            .collect()
    }

    #[tokio::test]
    async fn crafted_json_in_login_failures_does_not_blind_failed_auth_burst() {
        let t = 1_795_341_600_000;
        for (n, form) in ["lone surrogate", "NaN", "1e400", "deep nesting"]
            .into_iter()
            .enumerate()
        {
            let ip = format!("203.0.113.{}", 10 + n);
            let lines = crafted_login_failures(form, &ip);
            for line in &lines {
                let body = line.rsplit('\t').next().unwrap();
                if !body.contains(r#"\"event"#) {
                    assert!(
                        serde_json::from_str::<serde_json::Value>(body).is_err(),
                        "{form}: the strict parser must reject {line}"
                    );
                }
            }
            let set = Arc::new(RuleSet::builtin().unwrap());
            let mut engine = Engine::new(set, state::MemoryStore::new(), EngineConfig::default());
            let payload = Payload {
                region: None,
                message_type: MessageType::Data,
                owner: "123456789012".into(),
                log_group: "/aws/lambda/auth".into(),
                log_stream: "s".into(),
                subscription_filters: vec![],
                log_events: lines
                    .iter()
                    .enumerate()
                    .map(|(i, m)| LogEvent {
                        id: i.to_string().into(),
                        timestamp: t + i as i64 * 1_000,
                        message: m.as_str().into(),
                    })
                    .collect(),
            };
            let o = engine.process(&payload).await.unwrap();
            let bursts: Vec<&Alert> = o
                .alerts
                .iter()
                .filter(|a| a.rule == "failed-auth-burst")
                .collect();
            assert_eq!(bursts.len(), 1, "{form}: {:?}", o.alerts);
            assert_eq!(bursts[0].key.get("source_ip"), Some(&ip), "{form}");
            assert_eq!(bursts[0].count, 10, "{form}");
            assert_eq!(
                o.lenient_json, 10,
                "{form}: every line needed the tolerant read"
            );
        }
    }

    #[tokio::test]
    async fn valid_json_lines_are_not_counted_as_lenient() {
        let set = Arc::new(RuleSet::builtin().unwrap());
        let mut engine = Engine::new(set, state::MemoryStore::new(), EngineConfig::default());
        let payload = Payload {
            region: None,
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: "/aws/lambda/auth".into(),
            log_stream: "s".into(),
            subscription_filters: vec![],
            log_events: vec![LogEvent {
                id: "1".into(),
                timestamp: 1_795_341_600_000,
                message:
                    r#"{"event":"login_failed","source_ip":"192.0.2.1","user":"\ud83d\ude00"}"#
                        .into(),
            }],
        };
        assert_eq!(engine.process(&payload).await.unwrap().lenient_json, 0);
    }
}
