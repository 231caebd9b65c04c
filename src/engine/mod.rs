//! The engine: one decoded batch in, alerts out.
//!
//! Per batch: (1) every message is classified once ([`crate::platform`]) and
//! each rule says what the event means for it — pure, no state; (2) the state
//! of every key those observations touch, plus the open streams for the
//! deadline rules, is read in one [`StateStore::load`]; (3) observations are
//! applied in event order, deadlines evaluated against the watermark, and
//! incidents opened or folded (one incident, one alert per `realert`);
//! (4) what changed is written in one [`StateStore::save`]. A conflicting
//! write (another process changed a key) reruns the batch from step 1.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::alert::redact::RedactOptions;
use crate::alert::{self, Alert, Links};
use crate::detect::baseline::{BaselineState, Sample};
use crate::detect::distinct::DistinctState;
use crate::detect::failure::classify;
use crate::detect::leak::{LeakState, MemoryPoint};
use crate::detect::lifecycle::{Started, StreamState};
use crate::detect::matcher::{Memo, Scan};
use crate::detect::profile::Profile;
use crate::detect::rate::{RateState, Sample as RateSample};
use crate::detect::threshold::WindowState;
use crate::detect::{Detector, Finding, Key, function_name, stable_hash};
use crate::ingest::{LogEvent, MessageType, Payload};
use crate::lenient_json;
use crate::platform::{self, Record, Report, Status};
use crate::rules::{Kind, Rule, RuleSet, TestEvent};
use crate::state::{
    self, FunctionState, IncidentState, StateError, StateStore, StateValue, Versioned, Write,
};

const DAY_MS: i64 = 86_400_000;
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
    /// AWS region for console links.
    pub region: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            region: "us-east-1".into(),
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
    /// invocations a stream keeps ([`crate::detect::lifecycle::MAX_OPEN`]).
    pub open_invocations_dropped: u64,
}

/// The detection engine over one state store.
pub struct Engine<S: StateStore> {
    rules: Arc<RuleSet>,
    store: S,
    config: EngineConfig,
    safeguards: Safeguards,
    watermark: i64,
    /// Per-rule figures, when asked for ([`Engine::with_profile`]).
    profile: Option<Profile>,
    /// Alert id handed out and not yet confirmed → the incident keys it
    /// stands for, each with the id of the alert pending there (one for an
    /// alert; every folded one for a digest).
    unconfirmed: HashMap<String, Vec<(String, String)>>,
}

/// An observation of pass 1. Request ids borrow from the batch's messages.
enum Obs<'a> {
    Threshold {
        rule: usize,
        key: Key,
        unique: u64,
        request_id: Option<Cow<'a, str>>,
    },
    Failure {
        rule: usize,
        request_id: Option<Cow<'a, str>>,
        metrics: BTreeMap<String, f64>,
    },
    Baseline {
        rule: usize,
        request_id: Cow<'a, str>,
        sample: Sample,
    },
    Start {
        rule: usize,
        request_id: Cow<'a, str>,
    },
    End {
        rule: usize,
        request_id: Cow<'a, str>,
    },
    LearnTimeout {
        ms: i64,
    },
    RateStart {
        rule: usize,
        request_id: Cow<'a, str>,
    },
    RateReport {
        rule: usize,
        billed_ms: Option<u64>,
        memory_mb: Option<u32>,
    },
    Leak {
        rule: usize,
        request_id: Cow<'a, str>,
        point: MemoryPoint,
    },
    Distinct {
        rule: usize,
        key: Key,
        value: u64,
        request_id: Option<Cow<'a, str>>,
    },
    Pattern {
        rule: usize,
        key: Key,
        request_id: Option<Cow<'a, str>>,
    },
}

/// One event as every rule sees it.
struct Line<'p, 'r> {
    index: usize,
    event: &'p LogEvent<'p>,
    rec: &'r Record<'p>,
    app: Option<&'r platform::AppLine<'p>>,
    failed: Option<&'r crate::detect::failure::Failed<'r>>,
}

struct Observed<'a> {
    event: usize,
    obs: Obs<'a>,
}

/// State keys that do not depend on the event, formatted once per batch
/// (formatting them per event was a tenth of the engine's time).
struct BatchKeys {
    function: String,
    /// Per rule: its incident key without a key part.
    incident: Vec<String>,
    /// Per rule: its stream key for the batch's stream.
    stream: Vec<String>,
    /// Per rule: its baseline key for the batch's log group.
    baseline: Vec<String>,
    /// Per rule: its rate key for the batch's log group.
    rate: Vec<String>,
    /// Per rule: its memory-trend key for the batch's stream.
    leak: Vec<String>,
}

impl BatchKeys {
    fn new(rules: &RuleSet, p: &Payload<'_>) -> Self {
        let empty = Key::new();
        let per_rule = |f: &dyn Fn(&Rule) -> String| rules.rules.iter().map(|r| f(r)).collect();
        BatchKeys {
            function: state::function_key(&p.log_group),
            incident: per_rule(&|r| state::incident_key(&r.id, &p.log_group, &empty)),
            stream: per_rule(&|r| state::stream_key(&r.id, &p.log_group, &p.log_stream)),
            baseline: per_rule(&|r| state::baseline_key(&r.id, &p.log_group)),
            rate: per_rule(&|r| state::rate_key(&r.id, &p.log_group)),
            leak: per_rule(&|r| state::leak_key(&r.id, &p.log_group, &p.log_stream)),
        }
    }
}

/// A value being worked on during one batch.
struct Slot {
    value: Option<StateValue>,
    version: u64,
    dirty: bool,
    expires_at: i64,
}

/// An alert being assembled during one batch.
struct Draft {
    rule: usize,
    log_group: String,
    key: Key,
    id: String,
    first_seen: i64,
    last_seen: i64,
    count: u64,
    log_stream: String,
    request_ids: Vec<String>,
    evidence: Vec<String>,
    metrics: BTreeMap<String, f64>,
}

/// The mutable side of one batch.
struct Work {
    slots: HashMap<String, Slot>,
    drafts: Vec<Draft>,
    open_drafts: HashMap<String, usize>,
    suppressed: u64,
    /// STARTs a full stream could not track.
    open_dropped: u64,
}

macro_rules! slot_as {
    ($name:ident, $variant:ident, $ty:ty) => {
        fn $name(&mut self, key: &str, expires_at: i64) -> &mut $ty {
            // Look up before inserting: `entry` would allocate the key every time.
            if !self.slots.contains_key(key) {
                self.slots.insert(
                    key.to_string(),
                    Slot {
                        value: None,
                        version: 0,
                        dirty: false,
                        expires_at,
                    },
                );
            }
            let Some(slot) = self.slots.get_mut(key) else {
                unreachable!("inserted just above")
            };
            slot.dirty = true;
            slot.expires_at = slot.expires_at.max(expires_at);
            if !matches!(slot.value, Some(StateValue::$variant(_))) {
                slot.value = Some(StateValue::$variant(<$ty>::default()));
            }
            match slot.value {
                Some(StateValue::$variant(ref mut v)) => v,
                // Set just above; a different variant cannot be here.
                _ => unreachable!(),
            }
        }
    };
}

impl Work {
    slot_as!(window, Window, WindowState);
    slot_as!(stream, Stream, StreamState);
    slot_as!(baseline, Baseline, BaselineState);
    slot_as!(function, Function, FunctionState);
    slot_as!(rate, Rate, RateState);
    slot_as!(leak, Leak, LeakState);
    slot_as!(distinct, Distinct, DistinctState);

    fn peek(&self, key: &str) -> Option<&StateValue> {
        self.slots.get(key).and_then(|s| s.value.as_ref())
    }

    fn learned_timeout(&self, function_key: &str) -> Option<i64> {
        match self.peek(function_key) {
            Some(StateValue::Function(f)) => f.timeout_ms,
            _ => None,
        }
    }

    fn open_incident(&self, ikey: &str, ts: i64) -> bool {
        matches!(self.peek(ikey), Some(StateValue::Incident(i)) if ts < i.until)
    }
}

impl<S: StateStore> Engine<S> {
    /// An engine over compiled rules and a store.
    pub fn new(rules: Arc<RuleSet>, store: S, config: EngineConfig) -> Self {
        Engine {
            rules,
            store,
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

    /// Process one decoded payload.
    pub async fn process(&mut self, p: &Payload<'_>) -> Result<BatchOutcome, EngineError> {
        if p.message_type == MessageType::Control {
            return Ok(BatchOutcome {
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
            return Ok(BatchOutcome {
                ignored: true,
                events: p.log_events.len(),
                ..BatchOutcome::default()
            });
        }
        let (observed, lenient_json) = self.observe(p);
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
                .run(Some((p, &observed)), self.watermark, read_time)
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

    /// Record that these alerts were delivered, so a retried batch does not
    /// send them again. Ids this engine did not hand out are ignored.
    pub async fn confirm(&mut self, ids: &[String]) -> Result<(), EngineError> {
        let pending: HashMap<String, String> = ids
            .iter()
            .filter_map(|id| self.unconfirmed.get(id))
            .flatten()
            .cloned()
            .collect();
        let mut keys: Vec<String> = pending.keys().cloned().collect();
        keys.sort();
        if keys.is_empty() {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let loaded = self.store.load(&keys, i64::MIN).await?;
            let writes: Vec<Write> = loaded
                .into_iter()
                .filter_map(|(key, Versioned { value, version, .. })| match value {
                    StateValue::Incident(mut inc)
                        if inc
                            .pending
                            .as_ref()
                            .is_some_and(|a| pending.get(&key) == Some(&a.id)) =>
                    {
                        inc.pending = None;
                        Some(Write {
                            key,
                            expires_at: inc.until,
                            value: Some(StateValue::Incident(inc)),
                            expected_version: version,
                        })
                    }
                    _ => None,
                })
                .collect();
            match self.store.save(writes).await {
                Err(StateError::Conflict { .. }) if attempt < MAX_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
                Ok(()) => break,
            }
        }
        self.unconfirmed.retain(|id, _| !ids.contains(id));
        Ok(())
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

    /// Pass 1: what each event means for each rule, and how many events
    /// needed the tolerant JSON reading. Pure but for reading the per-thread
    /// tally of tolerant reads ([`lenient_json::tolerant_reads`]) and, when
    /// profiling, the clock and the profile.
    fn observe<'p>(&mut self, p: &'p Payload<'_>) -> (Vec<Observed<'p>>, u64) {
        let mut out = Vec::new();
        let mut lenient = 0;
        let mut prof = self.profile.take();
        let plane = self.rules.plane();
        let (mut scan, mut memo) = (Scan::default(), Memo::default());
        for (i, ev) in p.log_events.iter().enumerate() {
            // The platform parser and the matchers (a double-encoded
            // `message`) read JSON too: the per-thread tally sees them all.
            let tolerant_before = lenient_json::tolerant_reads();
            let t0 = prof.as_ref().map(|_| Instant::now());
            let rec = platform::parse(&ev.message);
            let t1 = prof.as_ref().map(|_| Instant::now());
            let app = match &rec {
                Record::App(line) => {
                    plane.begin(line.body, line.body_is_json, &mut scan, &mut memo);
                    Some(line)
                }
                _ => None,
            };
            if let (Some(pr), Some(t0), Some(t1)) = (prof.as_mut(), t0, t1) {
                pr.platform += t1 - t0;
                pr.prefilter += t1.elapsed();
            }
            if let Record::Timeout { seconds, .. } = &rec {
                out.push(Observed {
                    event: i,
                    obs: Obs::LearnTimeout {
                        ms: (seconds * 1_000.0).round() as i64,
                    },
                });
            }
            let failed = classify(&rec);
            let line = Line {
                index: i,
                event: ev,
                rec: &rec,
                app,
                failed: failed.as_ref(),
            };
            for (ri, rule) in self.rules.rules.iter().enumerate() {
                let before = out.len();
                let started = prof.as_ref().map(|_| Instant::now());
                self.observe_rule(ri, rule, &line, (&scan, &mut memo), &mut out);
                if let (Some(pr), Some(started)) = (prof.as_mut(), started) {
                    let reads_lines =
                        !plane.rule_matchers(ri).is_empty() || rule.detector.secrets().is_some();
                    let tested = !reads_lines || app.is_some();
                    let hit = tested && (!reads_lines || plane.rule_candidate(ri, &scan));
                    pr.rule(ri)
                        .add(tested, hit, out.len() > before, started.elapsed());
                }
            }
            if lenient_json::tolerant_reads() != tolerant_before {
                lenient += 1;
            }
        }
        self.profile = prof;
        (out, lenient)
    }

    /// What one event means for one rule: observations pushed to `out`.
    fn observe_rule<'p>(
        &self,
        ri: usize,
        rule: &Rule,
        line: &Line<'p, '_>,
        (scan, memo): (&Scan, &mut Memo),
        out: &mut Vec<Observed<'p>>,
    ) {
        let plane = self.rules.plane();
        let (i, ev, rec, failed) = (line.index, line.event, line.rec, line.failed);
        let obs = match &rule.detector {
            Detector::Threshold(t) => {
                let Some(line) = line.app else { return };
                let Some(fields) = plane.first_match(ri, line.body, scan, memo) else {
                    return;
                };
                let Some(key) = t.key(&fields) else { return };
                Obs::Threshold {
                    rule: ri,
                    unique: t.unique_hash(&fields),
                    key,
                    request_id: line.request_id.clone(),
                }
            }
            Detector::Distinct(d) => {
                let Some(line) = line.app else { return };
                let Some(fields) = plane.first_match(ri, line.body, scan, memo) else {
                    return;
                };
                let Some((key, value)) = d.key_and_value(&fields) else {
                    return;
                };
                Obs::Distinct {
                    rule: ri,
                    key,
                    value,
                    request_id: line.request_id.clone(),
                }
            }
            Detector::Pattern(pat) => {
                let Some(line) = line.app else { return };
                let fields = plane.first_match(ri, line.body, scan, memo);
                let kinds = match &pat.secrets {
                    Some(f) => plane.secrets(ri, f, line.body, scan),
                    None => Vec::new(),
                };
                for key in pat.keys(fields, &kinds) {
                    out.push(Observed {
                        event: i,
                        obs: Obs::Pattern {
                            rule: ri,
                            key,
                            request_id: line.request_id.clone(),
                        },
                    });
                }
                return;
            }
            Detector::Failure(f) => {
                let Some(fail) = failed.as_ref().filter(|x| f.on.contains(&x.class)) else {
                    return;
                };
                let mut metrics = BTreeMap::new();
                if let Some(d) = fail.duration_ms {
                    metrics.insert("duration_ms".to_string(), d);
                }
                if let Some((used, size)) = fail.memory_mb {
                    metrics.insert("max_memory_used_mb".to_string(), f64::from(used));
                    metrics.insert("memory_size_mb".to_string(), f64::from(size));
                }
                Obs::Failure {
                    rule: ri,
                    request_id: fail
                        .request_id
                        .as_deref()
                        .map(|r| Cow::Owned(r.to_string())),
                    metrics,
                }
            }
            Detector::Baseline(_) => match &rec {
                Record::Report(r) if r.status == Status::Success && r.duration_ms > 0.0 => {
                    Obs::Baseline {
                        rule: ri,
                        request_id: r.request_id.clone(),
                        sample: Sample {
                            duration_ms: r.duration_ms,
                            max_memory_used_mb: r.max_memory_used_mb,
                            memory_size_mb: r.memory_size_mb,
                        },
                    }
                }
                _ => return,
            },
            Detector::Lifecycle(_) => match &rec {
                Record::Start { request_id, .. } => Obs::Start {
                    rule: ri,
                    request_id: request_id.clone(),
                },
                Record::End { request_id } | Record::RuntimeDone { request_id, .. } => Obs::End {
                    rule: ri,
                    request_id: request_id.clone(),
                },
                Record::Report(r) => Obs::End {
                    rule: ri,
                    request_id: r.request_id.clone(),
                },
                _ => return,
            },
            Detector::Rate(_) => match &rec {
                Record::Start { request_id, .. } => Obs::RateStart {
                    rule: ri,
                    request_id: request_id.clone(),
                },
                Record::Report(r) => Obs::RateReport {
                    rule: ri,
                    billed_ms: r.billed_duration_ms,
                    memory_mb: r.memory_size_mb,
                },
                _ => return,
            },
            Detector::Leak(_) => match &rec {
                Record::Report(Report {
                    request_id,
                    status: Status::Success,
                    max_memory_used_mb: Some(used),
                    memory_size_mb: Some(size),
                    init_duration_ms,
                    restore_duration_ms,
                    ..
                }) => Obs::Leak {
                    rule: ri,
                    request_id: request_id.clone(),
                    point: MemoryPoint {
                        ts: ev.timestamp,
                        used_mb: *used,
                        memory_size_mb: *size,
                        cold: init_duration_ms.is_some() || restore_duration_ms.is_some(),
                    },
                },
                _ => return,
            },
        };
        out.push(Observed { event: i, obs });
    }

    /// Steps 2–4 for a batch (or a sweep when `batch` is `None`).
    async fn run(
        &mut self,
        batch: Option<(&Payload<'_>, &[Observed<'_>])>,
        watermark: i64,
        read_time: i64,
    ) -> Result<BatchOutcome, EngineError> {
        let rules = Arc::clone(&self.rules);
        let mut keys: Vec<String> = Vec::new();
        let batch_keys = batch.map(|(p, _)| BatchKeys::new(&rules, p));
        if let (Some((p, observed)), Some(bk)) = (batch, &batch_keys) {
            keys.push(bk.function.clone());
            // Each key once: per rule for the event-independent ones, per
            // distinct key for thresholds.
            let mut seen = vec![false; rules.rules.len()];
            let mut seen_keys: HashSet<(usize, &Key)> = HashSet::new();
            for o in observed {
                match &o.obs {
                    Obs::Threshold { rule: r, key, .. } | Obs::Distinct { rule: r, key, .. } => {
                        if seen_keys.insert((*r, key)) {
                            let id = &rules.rules[*r].id;
                            keys.push(state::window_key(id, &p.log_group, key));
                            keys.push(state::incident_key(id, &p.log_group, key));
                        }
                    }
                    Obs::Failure { rule: r, .. }
                    | Obs::Baseline { rule: r, .. }
                    | Obs::Start { rule: r, .. }
                    | Obs::End { rule: r, .. } => {
                        if std::mem::replace(&mut seen[*r], true) {
                            continue;
                        }
                        match &o.obs {
                            Obs::Failure { .. } => keys.push(bk.incident[*r].clone()),
                            Obs::Baseline { .. } => {
                                keys.push(bk.baseline[*r].clone());
                                keys.push(bk.incident[*r].clone());
                            }
                            _ => keys.push(bk.stream[*r].clone()),
                        }
                    }
                    Obs::RateStart { rule: r, .. }
                    | Obs::RateReport { rule: r, .. }
                    | Obs::Leak { rule: r, .. } => {
                        if std::mem::replace(&mut seen[*r], true) {
                            continue;
                        }
                        keys.push(match &o.obs {
                            Obs::Leak { .. } => bk.leak[*r].clone(),
                            _ => bk.rate[*r].clone(),
                        });
                        keys.push(bk.incident[*r].clone());
                    }
                    Obs::Pattern { rule: r, key, .. } => {
                        if seen_keys.insert((*r, key)) {
                            let id = &rules.rules[*r].id;
                            keys.push(state::incident_key(id, &p.log_group, key));
                        }
                    }
                    Obs::LearnTimeout { .. } => {}
                }
            }
        }
        // Rates: the sweep lists every function's open buckets, so a minute
        // is judged even when the function went quiet after it.
        if batch.is_none() {
            for rule in rules.rules.iter().filter(|r| r.kind == Kind::Rate) {
                let prefix = state::rate_prefix(&rule.id);
                for k in self.store.keys_with_prefix(&prefix, read_time).await? {
                    if let Some(group) = k.strip_prefix(&prefix) {
                        keys.push(state::incident_key(&rule.id, group, &Key::new()));
                    }
                    keys.push(k);
                }
            }
        }
        // Deadlines: a batch checks the streams it touched; the sweep (end of
        // replay, the scheduled event) lists every open stream, so a stream
        // that went quiet is still judged, at one Query per lifecycle rule.
        let mut streams: Vec<String> = Vec::new();
        for rule in rules.rules.iter().filter(|r| r.kind == Kind::Lifecycle) {
            if batch.is_none() {
                streams.extend(
                    self.store
                        .keys_with_prefix(&state::stream_prefix(&rule.id), read_time)
                        .await?,
                );
            }
        }
        streams.extend(keys.iter().filter(|k| k.starts_with("s|")).cloned());
        for k in streams {
            if let Some((group, _)) = state::split_stream_key(&k)
                && let Some(rule) = k.split('|').nth(1)
            {
                keys.push(state::function_key(group));
                keys.push(state::incident_key(rule, group, &Key::new()));
            }
            keys.push(k);
        }
        keys.sort();
        keys.dedup();
        let loaded = self.store.load(&keys, read_time).await?;
        let mut work = Work {
            slots: loaded
                .into_iter()
                .map(
                    |(
                        k,
                        Versioned {
                            value,
                            version,
                            expires_at,
                        },
                    )| {
                        (
                            k,
                            Slot {
                                value: Some(value),
                                version,
                                dirty: false,
                                expires_at,
                            },
                        )
                    },
                )
                .collect(),
            drafts: Vec::new(),
            open_drafts: HashMap::new(),
            suppressed: 0,
            open_dropped: 0,
        };
        if let (Some((p, observed)), Some(bk)) = (batch, &batch_keys) {
            for o in observed {
                self.apply(&mut work, p, bk, o);
            }
        }
        self.deadlines(&mut work, watermark);
        if batch.is_none() {
            self.sweep_rates(&mut work, watermark);
        }

        // Outbox: each new alert is stored with its incident until a sink
        // confirms delivery; alerts still pending from an earlier attempt at
        // this batch (a retry after a failed publish) go out again.
        let account = batch.map(|(p, _)| p.owner.to_string());
        let batch_id = batch.map_or(0, |(p, _)| batch_fingerprint(p));
        let drafts = std::mem::take(&mut work.drafts);
        let mut opened: HashMap<usize, String> = work
            .open_drafts
            .iter()
            .map(|(k, i)| (*i, k.clone()))
            .collect();
        let mut alerts = Vec::new();
        let mut unconfirmed: Vec<(String, String)> = Vec::new();
        for (i, d) in drafts.into_iter().enumerate() {
            let alert = self.finish(d, account.as_deref());
            if let Some(ikey) = opened.remove(&i)
                && let Some(Slot {
                    value: Some(StateValue::Incident(inc)),
                    ..
                }) = work.slots.get_mut(&ikey)
            {
                inc.pending = Some(Box::new(alert.clone()));
                inc.pending_batch = batch_id;
                unconfirmed.push((alert.id.clone(), ikey));
            }
            alerts.push(alert);
        }
        let mut redeliver: Vec<(&String, &Slot)> = work
            .slots
            .iter()
            .filter(|(k, _)| !work.open_drafts.contains_key(*k))
            .collect();
        redeliver.sort_by(|a, b| a.0.cmp(b.0));
        for (ikey, slot) in redeliver {
            if let Some(StateValue::Incident(IncidentState {
                pending: Some(a),
                pending_batch,
                ..
            })) = &slot.value
                && *pending_batch == batch_id
            {
                unconfirmed.push((a.id.clone(), ikey.clone()));
                alerts.push((**a).clone());
            }
        }

        let writes: Vec<Write> = work
            .slots
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(k, s)| Write {
                key: k.clone(),
                value: s.value.clone(),
                expires_at: s.expires_at,
                expected_version: s.version,
            })
            .collect();
        self.store.save(writes).await?;
        let (alerts, folded) = self.fold_storm(alerts, unconfirmed);
        Ok(BatchOutcome {
            alerts,
            folded,
            suppressed: work.suppressed,
            open_invocations_dropped: work.open_dropped,
            ..BatchOutcome::default()
        })
    }

    fn apply(&self, work: &mut Work, p: &Payload<'_>, bk: &BatchKeys, o: &Observed<'_>) {
        let ev: &LogEvent<'_> = &p.log_events[o.event];
        let ts = ev.timestamp;
        let group = p.log_group.as_ref();
        let stream = p.log_stream.as_ref();
        let event_hash = || {
            let mut buf = itoa::Buffer::new();
            stable_hash(&[group, stream, &ev.id, buf.format(ts)])
        };
        let finding = |count: u64, request_ids: Vec<String>, metrics| Finding {
            key: Key::new(),
            first_seen: ts,
            last_seen: ts,
            count,
            log_stream: stream.to_string(),
            request_ids,
            evidence: vec![ev.message.to_string()],
            metrics,
        };
        // While an incident of the rule for `key` is open, every further event
        // folds into it instead of feeding the window (threshold, distinct).
        let fold_into_open = |work: &mut Work, rule: usize, key: &Key, request_id: Option<&str>| {
            let ikey = state::incident_key(&self.rules.rules[rule].id, group, key);
            if !work.open_incident(&ikey, ts) {
                return false;
            }
            let ids = request_id.iter().map(|r| r.to_string()).collect();
            let mut f = finding(1, ids, BTreeMap::new());
            f.key = key.clone();
            self.record(work, rule, group, f, event_hash());
            true
        };
        match &o.obs {
            Obs::LearnTimeout { ms } => {
                let f = work.function(&bk.function, ts + 30 * DAY_MS);
                f.timeout_ms = Some(f.timeout_ms.map_or(*ms, |t| t.max(*ms)));
            }
            Obs::Threshold {
                rule,
                key,
                unique,
                request_id,
            } => {
                let r = &self.rules.rules[*rule];
                let Detector::Threshold(t) = &r.detector else {
                    return;
                };
                if fold_into_open(work, *rule, key, request_id.as_deref()) {
                    return;
                }
                let wkey = state::window_key(&r.id, group, key);
                let win = work.window(&wkey, ts + t.window_ms);
                if let Some(burst) = t.apply(
                    win,
                    ts,
                    event_hash(),
                    *unique,
                    &ev.message,
                    request_id.as_deref(),
                ) {
                    let f = Finding {
                        key: key.clone(),
                        first_seen: burst.first_seen,
                        last_seen: ts,
                        count: burst.count,
                        log_stream: stream.to_string(),
                        request_ids: std::mem::take(&mut win.request_ids),
                        evidence: std::mem::take(&mut win.samples),
                        metrics: BTreeMap::from([("threshold".to_string(), t.threshold as f64)]),
                    };
                    self.record(work, *rule, group, f, event_hash());
                }
            }
            Obs::Distinct {
                rule,
                key,
                value,
                request_id,
            } => {
                let r = &self.rules.rules[*rule];
                let Detector::Distinct(d) = &r.detector else {
                    return;
                };
                if fold_into_open(work, *rule, key, request_id.as_deref()) {
                    return;
                }
                let wkey = state::window_key(&r.id, group, key);
                let st = work.distinct(&wkey, ts + d.window_ms);
                if let Some(spread) = d.apply(st, ts, *value, &ev.message, request_id.as_deref()) {
                    let f = Finding {
                        key: key.clone(),
                        first_seen: spread.first_seen,
                        last_seen: ts,
                        count: spread.distinct,
                        log_stream: stream.to_string(),
                        request_ids: std::mem::take(&mut st.request_ids),
                        evidence: std::mem::take(&mut st.samples),
                        metrics: BTreeMap::from([
                            (format!("distinct_{}", d.field), spread.distinct as f64),
                            ("threshold".to_string(), d.threshold as f64),
                        ]),
                    };
                    self.record(work, *rule, group, f, event_hash());
                }
            }
            Obs::Pattern {
                rule,
                key,
                request_id,
            } => {
                let ids = request_id.iter().map(|r| r.to_string()).collect();
                let mut f = finding(1, ids, BTreeMap::new());
                f.key = key.clone();
                self.record(work, *rule, group, f, event_hash());
            }
            Obs::Failure {
                rule,
                request_id,
                metrics,
            } => {
                let ids = request_id.iter().map(|r| r.to_string()).collect();
                let f = finding(1, ids, metrics.clone());
                let dedupe = request_id
                    .as_deref()
                    .map_or_else(event_hash, |r| stable_hash(&["req", r]));
                self.record(work, *rule, group, f, dedupe);
            }
            Obs::Baseline {
                rule,
                request_id,
                sample,
            } => {
                let r = &self.rules.rules[*rule];
                let Detector::Baseline(b) = &r.detector else {
                    return;
                };
                let timeout = function_name(group)
                    .and_then(|f| b.function_timeouts.get(f).copied())
                    .or_else(|| work.learned_timeout(&bk.function));
                let st = work.baseline(&bk.baseline[*rule], ts + 30 * DAY_MS);
                let rh = stable_hash(&["req", request_id]);
                if let Some(metrics) = b.apply(st, rh, sample, timeout) {
                    let f = finding(1, vec![request_id.to_string()], metrics);
                    self.record(work, *rule, group, f, rh);
                }
            }
            Obs::RateStart { rule, request_id } => {
                let r = &self.rules.rules[*rule];
                let Detector::Rate(rt) = &r.detector else {
                    return;
                };
                let key = &bk.rate[*rule];
                let st = work.rate(key, ts + 30 * DAY_MS);
                rt.start(st, ts, stable_hash(&["req", request_id]), || RateSample {
                    log_stream: stream.to_string(),
                    line: ev.message.to_string(),
                });
                self.close_rate(work, *rule, group, key, None);
            }
            Obs::RateReport {
                rule,
                billed_ms,
                memory_mb,
            } => {
                let r = &self.rules.rules[*rule];
                let Detector::Rate(rt) = &r.detector else {
                    return;
                };
                let key = &bk.rate[*rule];
                rt.report(work.rate(key, ts + 30 * DAY_MS), ts, *billed_ms, *memory_mb);
                self.close_rate(work, *rule, group, key, None);
            }
            Obs::Leak {
                rule,
                request_id,
                point,
            } => {
                let r = &self.rules.rules[*rule];
                let Detector::Leak(l) = &r.detector else {
                    return;
                };
                // An execution environment lives hours at most.
                let st = work.leak(&bk.leak[*rule], ts + DAY_MS / 4);
                let rh = stable_hash(&["req", request_id]);
                if let Some(metrics) = l.apply(st, rh, point) {
                    let f = finding(1, vec![request_id.to_string()], metrics);
                    self.record(work, *rule, group, f, rh);
                }
            }
            Obs::Start { rule, request_id } => {
                let r = &self.rules.rules[*rule];
                let Detector::Lifecycle(l) = &r.detector else {
                    return;
                };
                let max = l.max_duration(function_name(group), work.learned_timeout(&bk.function));
                let st = work.stream(&bk.stream[*rule], ts + max + l.grace_ms + 3_600_000);
                if l.start(st, request_id, ts, &ev.message) == Started::Dropped {
                    work.open_dropped += 1;
                }
            }
            Obs::End { rule, request_id } => {
                let r = &self.rules.rules[*rule];
                let Detector::Lifecycle(l) = &r.detector else {
                    return;
                };
                let st = work.stream(&bk.stream[*rule], ts + l.grace_ms + 3_600_000);
                l.end(st, request_id);
            }
        }
    }

    /// Orphaned invocations whose deadline the watermark has passed.
    fn deadlines(&self, work: &mut Work, watermark: i64) {
        for (ri, r) in self.rules.rules.iter().enumerate() {
            let Detector::Lifecycle(l) = &r.detector else {
                continue;
            };
            let prefix = state::stream_prefix(&r.id);
            let mut streams: Vec<String> = work
                .slots
                .iter()
                .filter(|(k, s)| {
                    k.starts_with(&prefix)
                        && matches!(&s.value, Some(StateValue::Stream(st)) if !st.is_empty())
                })
                .map(|(k, _)| k.clone())
                .collect();
            streams.sort();
            for skey in streams {
                let Some((group, stream)) = state::split_stream_key(&skey) else {
                    continue;
                };
                let (group, stream) = (group.to_string(), stream.to_string());
                let fkey = state::function_key(&group);
                let max = l.max_duration(function_name(&group), work.learned_timeout(&fkey));
                let due = {
                    let Some(Slot {
                        value: Some(StateValue::Stream(st)),
                        ..
                    }) = work.slots.get_mut(&skey)
                    else {
                        continue;
                    };
                    let due = l.due(st, watermark, max);
                    if due.is_empty() {
                        continue;
                    }
                    due
                };
                if let Some(s) = work.slots.get_mut(&skey) {
                    s.dirty = true;
                }
                for o in due {
                    let mut metrics = BTreeMap::from([("max_duration_ms".to_string(), max as f64)]);
                    if let Some(s) = o.superseded_at {
                        metrics.insert("next_start_after_ms".into(), (s - o.start) as f64);
                    }
                    let f = Finding {
                        key: Key::new(),
                        first_seen: o.start,
                        last_seen: o.start,
                        count: 1,
                        log_stream: stream.clone(),
                        request_ids: vec![o.request_id.clone()],
                        evidence: vec![o.line.clone()],
                        metrics,
                    };
                    self.record(work, ri, &group, f, stable_hash(&["req", &o.request_id]));
                }
                Self::report_dropped(work, &r.id, &group, &skey);
            }
        }
    }

    /// STARTs a full stream could not track go into the alert its orphans
    /// open (`open_invocations_dropped`), so the alert says it is incomplete.
    /// While the incident is already open (no new alert) they wait in the
    /// stream's state for the next one.
    fn report_dropped(work: &mut Work, rule: &str, group: &str, skey: &str) {
        let Some(&d) = work
            .open_drafts
            .get(&state::incident_key(rule, group, &Key::new()))
        else {
            return;
        };
        let Some(Slot {
            value: Some(StateValue::Stream(st)),
            ..
        }) = work.slots.get_mut(skey)
        else {
            return;
        };
        let dropped = st.take_dropped();
        if dropped > 0 {
            *work.drafts[d]
                .metrics
                .entry("open_invocations_dropped".to_string())
                .or_insert(0.0) += dropped as f64;
        }
    }

    /// Judge the complete buckets of every function's rate with the sweep's
    /// watermark, so a function that went quiet is still judged.
    fn sweep_rates(&self, work: &mut Work, watermark: i64) {
        for (ri, r) in self.rules.rules.iter().enumerate() {
            if !matches!(r.detector, Detector::Rate(_)) {
                continue;
            }
            let prefix = state::rate_prefix(&r.id);
            let mut keys: Vec<String> = work
                .slots
                .iter()
                .filter(|(k, s)| {
                    k.starts_with(&prefix) && matches!(&s.value, Some(StateValue::Rate(_)))
                })
                .map(|(k, _)| k.clone())
                .collect();
            keys.sort();
            for key in keys {
                if let Some(group) = key.strip_prefix(&prefix) {
                    let group = group.to_string();
                    self.close_rate(work, ri, &group, &key, Some(watermark));
                }
            }
        }
    }

    /// Judge the complete buckets of one function's rate: by the function's
    /// own latest event time during a batch (so minutes are judged as the
    /// data passes them, whatever other log groups' clocks say); in a sweep,
    /// those of a function quiet by the watermark (see [`crate::detect::rate::Rate::sweep`]).
    fn close_rate(&self, work: &mut Work, rule: usize, group: &str, key: &str, sweep: Option<i64>) {
        let Detector::Rate(rt) = &self.rules.rules[rule].detector else {
            return;
        };
        let spikes = {
            let Some(slot) = work.slots.get_mut(key) else {
                return;
            };
            let Some(StateValue::Rate(st)) = &mut slot.value else {
                return;
            };
            let before = st.closed_until;
            let spikes = match sweep {
                None => rt.close(st, function_name(group), st.clock),
                Some(watermark) => rt.sweep(st, function_name(group), watermark),
            };
            if st.closed_until != before {
                slot.dirty = true;
            }
            spikes
        };
        for s in spikes {
            let (log_stream, evidence) = match s.sample {
                Some(x) => (x.log_stream, vec![x.line]),
                None => (String::new(), Vec::new()),
            };
            let f = Finding {
                key: Key::new(),
                first_seen: s.bucket,
                last_seen: s.bucket + rt.bucket_ms - 1,
                count: s.count,
                log_stream,
                request_ids: Vec::new(),
                evidence,
                metrics: s.metrics,
            };
            let mut buf = itoa::Buffer::new();
            let dedupe = stable_hash(&["bucket", buf.format(s.bucket)]);
            self.record(work, rule, group, f, dedupe);
        }
    }

    /// Open an incident (a new alert) or fold a finding into the open one.
    fn record(&self, work: &mut Work, rule: usize, group: &str, f: Finding, dedupe: u64) {
        let r = &self.rules.rules[rule];
        let ikey = state::incident_key(&r.id, group, &f.key);
        let slot = work.slots.entry(ikey.clone()).or_insert(Slot {
            value: None,
            version: 0,
            dirty: false,
            expires_at: i64::MIN,
        });
        if let Some(StateValue::Incident(inc)) = &mut slot.value
            && f.last_seen < inc.until
        {
            {
                if inc.requests.contains(&dedupe) {
                    return;
                }
                if inc.requests.len() >= INCIDENT_REQUESTS_KEPT {
                    inc.requests.remove(0);
                }
                inc.requests.push(dedupe);
                inc.count += f.count;
                slot.dirty = true;
                let count = inc.count;
                match work.open_drafts.get(&ikey) {
                    Some(&d) => {
                        let d = &mut work.drafts[d];
                        d.count = count;
                        d.first_seen = d.first_seen.min(f.first_seen);
                        d.last_seen = d.last_seen.max(f.last_seen);
                        for id in f.request_ids {
                            if d.request_ids.len() < alert::MAX_REQUEST_IDS
                                && !d.request_ids.contains(&id)
                            {
                                d.request_ids.push(id);
                            }
                        }
                        for e in f.evidence {
                            if d.evidence.len() < alert::MAX_EVIDENCE {
                                d.evidence.push(e);
                            }
                        }
                    }
                    None => work.suppressed += 1,
                }
                return;
            }
        }
        let id = alert::fingerprint(&r.id, group, &f.key, f.first_seen);
        let until = f.last_seen.saturating_add(r.realert_ms.max(1));
        slot.value = Some(StateValue::Incident(IncidentState {
            id: id.clone(),
            until,
            count: f.count,
            requests: vec![dedupe],
            pending: None,
            pending_batch: 0,
        }));
        slot.dirty = true;
        slot.expires_at = slot.expires_at.max(until);
        work.open_drafts.insert(ikey, work.drafts.len());
        let mut request_ids = f.request_ids;
        request_ids.dedup();
        request_ids.truncate(alert::MAX_REQUEST_IDS);
        let mut evidence = f.evidence;
        evidence.truncate(alert::MAX_EVIDENCE);
        work.drafts.push(Draft {
            rule,
            log_group: group.to_string(),
            key: f.key,
            id,
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            count: f.count,
            log_stream: f.log_stream,
            request_ids,
            evidence,
            metrics: f.metrics,
        });
    }

    /// The alert of a draft, redacted: this is the one place an alert is
    /// finished, so every sink (and the outbox in the state store) gets the
    /// redacted alert. The id was computed from the raw key when the
    /// incident opened, so it stays stable whatever redaction does.
    ///
    /// The names and ids are redacted first, so that everything derived from
    /// them is too: the console links encode the characters around a secret
    /// (`/`, `=`, spaces), and redacting a finished link would miss it.
    fn finish(&self, mut d: Draft, account: Option<&str>) -> Alert {
        let opts = &self.safeguards.redact;
        for v in d
            .key
            .values_mut()
            .chain([&mut d.log_group, &mut d.log_stream])
            .chain(d.request_ids.iter_mut())
        {
            if let Cow::Owned(red) = alert::redact::redact_with(v, opts) {
                *v = red;
            }
        }
        let r: &Rule = &self.rules.rules[d.rule];
        let function = function_name(&d.log_group).map(str::to_string);
        let place = function.clone().unwrap_or_else(|| d.log_group.clone());
        let who: Vec<&str> = d.key.values().map(String::as_str).collect();
        let title = if who.is_empty() {
            format!("{} in {place}", r.title)
        } else {
            format!("{} ({}) in {place}", r.title, who.join(", "))
        };
        let region = &self.config.region;
        // A redacted value finds nothing in Logs Insights, nor does the kind
        // of a secret: filter on a request id instead.
        let secret_kind = matches!(&r.detector, Detector::Pattern(p) if p.secrets.is_some());
        let unredacted = |v: &&String| !v.contains("[REDACTED:");
        let needle = d
            .key
            .values()
            .next()
            .filter(|v| unredacted(v) && !secret_kind)
            .or_else(|| d.request_ids.iter().find(unredacted))
            .cloned();
        let links = alert::links::incident(
            region,
            &d.log_group,
            &d.log_stream,
            needle.as_deref(),
            (d.first_seen, d.last_seen),
            opts,
        );
        let mut out = Alert {
            summary: summary(r, &d, &place),
            id: d.id,
            rule: r.id.clone(),
            kind: crate::alert::AlertKind::Rule(r.kind),
            severity: r.severity.into(),
            title: alert::truncate_chars(&title, 99),
            account: account.filter(|a| !a.is_empty()).map(str::to_string),
            log_group: d.log_group,
            log_stream: Some(d.log_stream),
            function,
            key: d.key,
            request_ids: d.request_ids,
            count: d.count,
            first_seen: crate::time::rfc3339(d.first_seen),
            last_seen: crate::time::rfc3339(d.last_seen),
            metrics: d.metrics,
            evidence: d
                .evidence
                .iter()
                .map(|e| alert::evidence_line_with(e, opts))
                .collect(),
            links,
        };
        alert::redact::alert(&mut out, opts);
        for e in &mut out.evidence {
            if e.chars().count() > alert::MAX_EVIDENCE_CHARS {
                *e = alert::truncate_chars(e, alert::MAX_EVIDENCE_CHARS);
            }
        }
        out.title = alert::truncate_chars(&out.title, 99);
        out
    }

    /// The alert-storm limit: past [`Safeguards::max_alerts_per_batch`], the
    /// rest of a batch's alerts are folded into one digest alert. Which ones
    /// are kept does not depend on the order they were found in (highest
    /// severity, then earliest, then id), so a redelivered batch, whose
    /// alerts come back from the outbox in another order, folds the same
    /// ones into a digest with the same id. Folded alerts stay pending in
    /// their incidents until the digest is confirmed.
    fn fold_storm(
        &mut self,
        alerts: Vec<Alert>,
        unconfirmed: Vec<(String, String)>,
    ) -> (Vec<Alert>, usize) {
        let mut by_id: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (id, ikey) in unconfirmed {
            by_id.entry(id.clone()).or_default().push((ikey, id));
        }
        let max = self.safeguards.max_alerts_per_batch;
        if max == 0 || alerts.len() <= max + 1 {
            // One more than the limit is not folded: a digest of one alert
            // would say less than the alert.
            self.unconfirmed.extend(by_id);
            return (alerts, 0);
        }
        let mut order: Vec<usize> = (0..alerts.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&alerts[a], &alerts[b]);
            severity_rank(&b.severity)
                .cmp(&severity_rank(&a.severity))
                .then_with(|| a.first_seen.cmp(&b.first_seen))
                .then_with(|| a.id.cmp(&b.id))
        });
        let mut keep = vec![false; alerts.len()];
        for &i in &order[..max] {
            keep[i] = true;
        }
        let mut kept = Vec::with_capacity(max + 1);
        let mut folded = Vec::new();
        for (i, a) in alerts.into_iter().enumerate() {
            if keep[i] {
                kept.push(a)
            } else {
                folded.push(a)
            }
        }
        let total = kept.len() + folded.len();
        folded.sort_by(|a, b| a.id.cmp(&b.id));
        let digest = digest(&folded, total, max, &self.config.region);
        let mut pending = Vec::new();
        for a in &folded {
            pending.extend(by_id.remove(&a.id).unwrap_or_default());
        }
        self.unconfirmed.extend(by_id);
        self.unconfirmed.insert(digest.id.clone(), pending);
        tracing::warn!(
            alerts = total,
            folded = folded.len(),
            limit = max,
            digest = %digest.id,
            "Alert storm: folded the alerts past the per-batch limit into one digest."
        );
        let n = folded.len();
        kept.push(digest);
        (kept, n)
    }
}

fn severity_rank(s: &crate::alert::AlertSeverity) -> u8 {
    s.rank()
}

/// Longest item naming one folded alert in a digest's evidence.
const DIGEST_ITEM_CHARS: usize = 160;

/// The digest of `folded` (sorted by id): severity the highest folded,
/// count the number folded, the folded rules in the summary and each folded
/// alert (rule, key or function, id) in the evidence. The id hashes the
/// folded ids, so the same storm gives the same digest.
fn digest(folded: &[Alert], total: usize, max: usize, region: &str) -> Alert {
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, DIGEST_RULE.as_bytes());
    for a in folded {
        sha2::Digest::update(&mut h, [0u8]);
        sha2::Digest::update(&mut h, a.id.as_bytes());
    }
    let id: String = sha2::Digest::finalize(h)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let common = |f: &dyn Fn(&Alert) -> Option<&str>| -> Option<String> {
        let first = f(folded.first()?)?;
        folded
            .iter()
            .all(|a| f(a) == Some(first))
            .then(|| first.to_string())
    };
    let log_group = common(&|a| Some(a.log_group.as_str()));
    let severity = folded
        .iter()
        .map(|a| &a.severity)
        .max_by_key(|s| severity_rank(s))
        .cloned()
        .unwrap_or(crate::alert::AlertSeverity::Low);
    let first_seen = folded
        .iter()
        .map(|a| a.first_seen.as_str())
        .min()
        .unwrap_or_default()
        .to_string();
    let last_seen = folded
        .iter()
        .map(|a| a.last_seen.as_str())
        .max()
        .unwrap_or_default()
        .to_string();
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for a in folded {
        *per_rule.entry(a.rule.as_str()).or_default() += 1;
    }
    let rules: Vec<String> = per_rule.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
    let place = log_group.as_deref().unwrap_or("several log groups");
    let summary = format!(
        "One batch raised {total} alerts in {place}; past the limit of {max} alerts per batch, \
         {} more are folded into this digest: {}. Each is recorded as usual (it realerts \
         after its rule's realert period); find why so many fired at once.",
        folded.len(),
        rules.join(", ")
    );
    // Evidence: every folded alert by rule and key (`rule (n): key; key; …`),
    // packed into the contract's five lines of 512 characters; what does not
    // fit is counted in a `+N more` at the end.
    let mut listed: Vec<(&str, String)> = folded
        .iter()
        .map(|a| {
            let who = if a.key.is_empty() {
                a.function.clone().unwrap_or_else(|| a.log_group.clone())
            } else {
                a.key.values().cloned().collect::<Vec<_>>().join(",")
            };
            (a.rule.as_str(), who)
        })
        .collect();
    listed.sort();
    let items: Vec<String> = listed
        .iter()
        .enumerate()
        .map(|(i, (rule, who))| {
            let item = if i == 0 || listed[i - 1].0 != *rule {
                format!(
                    "{rule} ({}): {who}",
                    per_rule.get(rule).copied().unwrap_or(0)
                )
            } else {
                who.clone()
            };
            alert::truncate_chars(&item, DIGEST_ITEM_CHARS)
        })
        .collect();
    const MORE_ROOM: usize = 16;
    let mut evidence: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut shown = 0;
    for item in &items {
        let last = evidence.len() + 1 == alert::MAX_EVIDENCE;
        let room = alert::MAX_EVIDENCE_CHARS - if last { MORE_ROOM } else { 0 };
        let sep = if line.is_empty() { 0 } else { 2 };
        if line.chars().count() + sep + item.chars().count() > room {
            if last {
                break;
            }
            evidence.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(item);
        shown += 1;
    }
    if shown < items.len() {
        line.push_str(&format!("; +{} more", items.len() - shown));
    }
    if !line.is_empty() {
        evidence.push(line);
    }
    let mut request_ids: Vec<String> = Vec::new();
    for r in folded.iter().flat_map(|a| &a.request_ids) {
        if request_ids.len() < alert::MAX_REQUEST_IDS && !request_ids.contains(r) {
            request_ids.push(r.clone());
        }
    }
    // The folded alerts' log group is redacted already; the link is checked
    // all the same, as every link is.
    let no_emails = RedactOptions::default();
    let insights = log_group.as_deref().and_then(|g| {
        let start = crate::time::parse_rfc3339(&first_seen).ok()?;
        let end = crate::time::parse_rfc3339(&last_seen).ok()?;
        alert::links::group_insights(region, g, (start, end), &no_emails)
    });
    let mut out = Alert {
        id,
        rule: DIGEST_RULE.to_string(),
        kind: crate::alert::AlertKind::Digest,
        severity,
        title: alert::truncate_chars(
            &format!(
                "Alert storm: {} more alerts folded into one digest in {place}",
                folded.len()
            ),
            99,
        ),
        summary,
        account: common(&|a| a.account.as_deref()),
        log_group: log_group.clone().unwrap_or_else(|| "(several)".to_string()),
        log_stream: common(&|a| a.log_stream.as_deref()),
        function: common(&|a| a.function.as_deref()),
        key: Key::new(),
        request_ids,
        count: folded.len() as u64,
        first_seen,
        last_seen,
        metrics: BTreeMap::from([
            ("alerts_in_batch".to_string(), total as f64),
            ("alerts_folded".to_string(), folded.len() as f64),
            ("max_alerts_per_batch".to_string(), max as f64),
        ]),
        evidence,
        links: Links {
            log_stream: None,
            insights,
        },
    };
    alert::redact::links(&mut out, &no_emails);
    out
}

/// Identity of a batch, the same when Lambda or Kinesis delivers it again:
/// group, stream, first and last event id and the event count. Never 0 (the sweep's).
fn batch_fingerprint(p: &Payload<'_>) -> u64 {
    let first = p.log_events.first().map_or("", |e| e.id.as_ref());
    let last = p.log_events.last().map_or("", |e| e.id.as_ref());
    let n = p.log_events.len().to_string();
    stable_hash(&["batch", &p.log_group, &p.log_stream, first, last, &n]).max(1)
}

/// Two to four sentences: what happened, how much, and what the rule says to do.
fn summary(r: &Rule, d: &Draft, place: &str) -> String {
    let span = if d.first_seen == d.last_seen {
        format!("at {}", crate::time::rfc3339(d.first_seen))
    } else {
        format!(
            "between {} and {}",
            crate::time::rfc3339(d.first_seen),
            crate::time::rfc3339(d.last_seen)
        )
    };
    let key: Vec<String> = d.key.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let what = match &r.detector {
        Detector::Threshold(t) => format!(
            "{} matching events from {} in {} {span} (threshold {} within {} s).",
            d.count,
            key.join(", "),
            d.log_group,
            t.threshold,
            t.window_ms / 1_000
        ),
        Detector::Distinct(x) => format!(
            "{} distinct {} values in {} matching events from {} in {} {span} (threshold {} within {} s).",
            d.metrics
                .get(&format!("distinct_{}", x.field))
                .copied()
                .unwrap_or(0.0),
            x.field,
            d.count,
            key.join(", "),
            d.log_group,
            x.threshold,
            x.window_ms / 1_000
        ),
        Detector::Pattern(_) if key.is_empty() => {
            format!("{} matching event(s) in {} {span}.", d.count, d.log_group)
        }
        Detector::Pattern(_) => format!(
            "{} matching event(s) with {} in {} {span}.",
            d.count,
            key.join(", "),
            d.log_group
        ),
        Detector::Failure(_) => format!("{} failed invocation(s) of {place} {span}.", d.count),
        Detector::Lifecycle(_) => format!(
            "{} invocation(s) of {place} logged START but no END or REPORT (first {span}).",
            d.count
        ),
        Detector::Baseline(_) => {
            let m = &d.metrics;
            match (
                m.get("duration_ms"),
                m.get("baseline_ms"),
                m.get("max_memory_used_mb"),
            ) {
                (Some(x), Some(b), _) if *b > 0.0 => format!(
                    "{place} ran {x:.0} ms against a typical {b:.0} ms ({:.1}×), {} time(s) {span}.",
                    x / b,
                    d.count
                ),
                (Some(x), _, _) => format!(
                    "{place} ran {x:.0} ms, close to its timeout, {} time(s) {span}.",
                    d.count
                ),
                (_, _, Some(used)) => format!(
                    "{place} used {used:.0} MB of {:.0} MB, {} time(s) {span}.",
                    m.get("memory_size_mb").copied().unwrap_or(0.0),
                    d.count
                ),
                _ => format!("{} anomalous invocation(s) of {place} {span}.", d.count),
            }
        }
        Detector::Rate(_) => {
            let m = &d.metrics;
            let rate = m.get("rate_per_min").copied().unwrap_or(0.0);
            let base = m.get("baseline_per_min").copied().unwrap_or(0.0);
            let cost = m
                .get("projected_extra_cost_per_hour_usd")
                .copied()
                .unwrap_or(0.0);
            format!(
                "{place} was invoked {rate:.0} times a minute against a typical {base:.1} ({} invocation(s) {span}); at this rate it costs about ${cost:.2} more per hour.",
                d.count
            )
        }
        Detector::Leak(_) => {
            let m = &d.metrics;
            let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
            format!(
                "Memory of one {place} execution environment rose {:.1} MB per invocation to {:.0} MB of {:.0} MB; at this pace it runs out of memory in about {:.0} invocation(s) ({} report(s) {span}).",
                get("slope_mb_per_invocation"),
                get("current_mb"),
                get("memory_size_mb"),
                get("invocations_to_limit"),
                d.count
            )
        }
    };
    let advice: String = r
        .description
        .split_inclusive(". ")
        .take(2)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if advice.is_empty() {
        what
    } else {
        format!("{what} {advice}")
    }
}

/// Result of one inline rule test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    /// Rule id.
    pub rule: String,
    /// Test name.
    pub name: String,
    /// Where the rule lives, and the test's line.
    pub location: String,
    /// `None` when it passed, else what was wrong.
    pub failure: Option<String>,
}

/// Run the inline tests of one rule, each on a fresh engine holding only that rule.
pub async fn run_rule_tests(rule: &Arc<Rule>) -> Vec<TestOutcome> {
    let mut out = Vec::new();
    for t in &rule.tests {
        let set = Arc::new(RuleSet::new(vec![Arc::clone(rule)]));
        let mut engine = Engine::new(set, state::MemoryStore::new(), EngineConfig::default());
        let mut alerts = Vec::new();
        let mut error = None;
        for chunk in t
            .events
            .chunk_by(|a: &TestEvent, b: &TestEvent| a.log_stream == b.log_stream)
        {
            let payload = Payload {
                message_type: MessageType::Data,
                owner: "123456789012".into(),
                log_group: t.log_group.as_str().into(),
                log_stream: chunk[0].log_stream.as_str().into(),
                subscription_filters: vec![],
                log_events: chunk
                    .iter()
                    .enumerate()
                    .map(|(i, e)| LogEvent {
                        id: format!("{}-{i}", e.timestamp).into(),
                        timestamp: e.timestamp,
                        message: e.message.as_str().into(),
                    })
                    .collect(),
            };
            match engine.process(&payload).await {
                Ok(o) => {
                    let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
                    if let Err(e) = engine.confirm(&ids).await {
                        error = Some(e.to_string());
                    }
                    alerts.extend(o.alerts);
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        let now = t.now.or(engine.watermark()).unwrap_or(0);
        match engine.sweep(now).await {
            Ok(o) => alerts.extend(o.alerts),
            Err(e) => error = Some(e.to_string()),
        }
        let mine: Vec<&Alert> = alerts.iter().filter(|a| a.rule == rule.id).collect();
        let failure = if let Some(e) = error {
            Some(e)
        } else if mine.len() != t.expect_alerts {
            Some(format!(
                "expected {} alert(s), got {}",
                t.expect_alerts,
                mine.len()
            ))
        } else if let Some(k) = t
            .expect_key
            .as_ref()
            .filter(|k| mine.iter().any(|a| &a.key != *k))
        {
            Some(format!(
                "expected key {k:?}, got {:?}",
                mine.iter().map(|a| &a.key).collect::<Vec<_>>()
            ))
        } else {
            t.expect_count
                .filter(|c| mine.first().map(|a| a.count) != Some(*c))
                .map(|c| {
                    format!(
                        "expected count {c}, got {:?}",
                        mine.first().map(|a| a.count)
                    )
                })
        };
        out.push(TestOutcome {
            rule: rule.id.clone(),
            name: t.name.clone(),
            location: format!("{}:{}", rule.source, t.line),
            failure,
        });
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_builtin_inline_test_passes() {
        let set = RuleSet::builtin().unwrap();
        let mut n = 0;
        for r in &set.rules {
            for o in run_rule_tests(r).await {
                n += 1;
                assert!(
                    o.failure.is_none(),
                    "{} {} ({}): {:?}",
                    o.rule,
                    o.name,
                    o.location,
                    o.failure
                );
            }
        }
        assert!(n >= 16, "only {n} inline tests");
    }

    #[tokio::test]
    async fn a_sweep_long_after_the_data_still_finds_the_orphan() {
        // Regression: the sweep read state as of its own time, by which the
        // open invocation's state had expired, so `replay --now <a day later>`
        // (or a sweeper that was down) reported nothing.
        let set = Arc::new(RuleSet::builtin().unwrap());
        let mut engine = Engine::new(set, state::MemoryStore::new(), EngineConfig::default());
        let t = 1_795_341_600_000;
        let payload = Payload {
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
        assert!(later.alerts.iter().all(|a| a.rule != "invocation-spike"));
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
