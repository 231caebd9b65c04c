//! The seam between the engine and the kinds: what a kind's file implements
//! ([`Detect`]) and what the engine lends it while it works ([`Scope`]).
//!
//! The engine only orchestrates: it reads each event once, asks every rule's
//! detector what the event means (an observation, [`Detect::observe`]), loads
//! the state those observations touch, applies them in event order
//! ([`Detect::apply`]) and turns findings into incidents and alerts. All it
//! knows of a kind's state is its key ([`StateKey`]) and that it is one of
//! the [`super::KindState`] variants.

use std::collections::BTreeMap;

use super::failure::Failed;
use super::key::{Space, StateKey};
use super::matcher::{Matcher, Memo, Plane, Scan};
use super::secrets::SecretFinder;
use super::{Finding, Key, KindState, stable_hash};
use crate::platform::{AppLine, Record};

/// A day in milliseconds: how long learned state outlives its last event.
pub const DAY_MS: i64 = 86_400_000;

/// One event as every rule sees it: classified once, shared by all rules.
pub struct Line<'p, 'r> {
    /// Event time.
    pub ts: i64,
    /// The platform record.
    pub rec: &'r Record<'p>,
    /// The application line, when the record is one.
    pub app: Option<&'r AppLine<'p>>,
    /// The failed invocation the record reports, if any.
    pub failed: Option<Failed<'r>>,
}

impl<'p, 'r> Line<'p, 'r> {
    /// The event at `ts` whose record is `rec`, classified.
    pub fn new(ts: i64, rec: &'r Record<'p>) -> Self {
        let app = match rec {
            Record::App(line) => Some(line),
            _ => None,
        };
        Line {
            ts,
            rec,
            app,
            failed: super::failure::classify(rec),
        }
    }
}

/// The shared matching plane, positioned on one line, for one rule.
pub struct Matching<'a> {
    /// The rule's index in the rule set.
    pub rule: usize,
    /// All rules' matchers.
    pub plane: &'a Plane,
    /// The line's prefilter hits.
    pub scan: &'a Scan,
    /// Matcher results already computed for the line.
    pub memo: &'a mut Memo,
}

impl Matching<'_> {
    /// The fields of the rule's first matcher that matches `body` (the
    /// plane's answer for this rule on this line).
    pub fn first_match(&mut self, body: &str) -> Option<super::matcher::Fields> {
        self.plane
            .first_match(self.rule, body, self.scan, self.memo)
    }
}

/// The event an observation came from, as a kind's transition needs it.
pub struct At<'a> {
    /// Event time.
    pub ts: i64,
    /// Event id.
    pub id: &'a str,
    /// The raw message.
    pub message: &'a str,
    /// Log group.
    pub group: &'a str,
    /// Log stream.
    pub stream: &'a str,
    /// The rule's [`Detect::batch_key`] for this batch, formatted once.
    pub batch_key: Option<&'a StateKey>,
}

impl At<'_> {
    /// The event's identity: the dedupe of a finding without a request id.
    pub fn hash(&self) -> u64 {
        let mut buf = itoa::Buffer::new();
        stable_hash(&[self.group, self.stream, self.id, buf.format(self.ts)])
    }

    /// A finding of this one event, without a key.
    pub fn finding(
        &self,
        count: u64,
        request_ids: Vec<String>,
        metrics: BTreeMap<String, f64>,
    ) -> Finding {
        Finding {
            key: Key::new(),
            first_seen: self.ts,
            last_seen: self.ts,
            count,
            log_stream: self.stream.to_string(),
            request_ids,
            evidence: vec![self.message.to_string()],
            metrics,
        }
    }

    /// A finding of this one event for `key`, without metrics.
    pub fn keyed_finding(&self, key: &Key, request_id: Option<&str>) -> Finding {
        let ids = request_id.iter().map(|r| r.to_string()).collect();
        let mut f = self.finding(1, ids, BTreeMap::new());
        f.key = key.clone();
        f
    }
}

/// What an alert's summary sentence is made of.
pub struct Summary<'a> {
    /// Events or invocations the incident stands for.
    pub count: u64,
    /// The incident key.
    pub key: &'a Key,
    /// Log group.
    pub log_group: &'a str,
    /// The alert's numbers.
    pub metrics: &'a BTreeMap<String, f64>,
    /// The function, else the log group.
    pub place: &'a str,
    /// `at <time>` or `between <time> and <time>`.
    pub span: &'a str,
}

impl Summary<'_> {
    /// The key as `name value` pairs.
    pub fn key_words(&self) -> Vec<String> {
        self.key.iter().map(|(k, v)| format!("{k} {v}")).collect()
    }

    /// A metric, 0 when absent.
    pub fn metric(&self, name: &str) -> f64 {
        self.metrics.get(name).copied().unwrap_or(0.0)
    }
}

/// A kind's state type: one variant of [`KindState`] (the `kinds!` list
/// implements it).
pub trait StateOf: Default + Sized {
    /// The value as stored.
    fn wrap(self) -> KindState;
    /// This kind's state, when `v` is one.
    fn of(v: &KindState) -> Option<&Self>;
    /// This kind's state, when `v` is one.
    fn of_mut(v: &mut KindState) -> Option<&mut Self>;
}

/// The state and incidents of one rule during one batch or sweep, as the
/// engine lends them to the rule's detector.
pub trait Scope {
    /// The rule's id.
    fn rule_id(&self) -> &str;
    /// The state at `key`, created empty when absent (or of another type),
    /// marked changed; it lives at least until `expires_at`.
    fn state<T: StateOf>(&mut self, key: &StateKey, expires_at: i64) -> &mut T;
    /// The state at `key` as loaded, without marking it changed.
    fn existing<T: StateOf>(&mut self, key: &str) -> Option<&mut T>;
    /// Mark the state at `key` changed.
    fn touch(&mut self, key: &str);
    /// Keys in the batch starting with `prefix` whose state is a `T`, sorted.
    fn loaded<T: StateOf>(&self, prefix: &str) -> Vec<String>;
    /// The timeout learned for the function of `group`.
    fn learned_timeout(&self, group: &str) -> Option<i64>;
    /// Whether the rule's incident for `key` in `group` is open at `ts`.
    fn open_incident(&self, group: &str, key: &Key, ts: i64) -> bool;
    /// The incident of rule `rule` (the one [`Detect::follows`] names) for
    /// `key` in `group`, as stored or opened earlier in the batch.
    fn incident_of(&self, _rule: &str, _group: &str, _key: &Key) -> Option<Opened> {
        None
    }
    /// Open an incident (a new alert) or fold the finding into the open one;
    /// `dedupe` identifies what it counts, so nothing counts twice.
    fn record(&mut self, group: &str, f: Finding, dedupe: u64);
    /// [`Scope::record`] of a finding that counts several events: `counted`
    /// identifies each of them (`dedupe` among them) and is kept with the
    /// incident, so that none of them, redelivered, folds into it again.
    fn record_burst(&mut self, group: &str, f: Finding, dedupe: u64, counted: &[u64]);
    /// Count a START an execution environment's full state could not track.
    fn dropped_start(&mut self);
    /// Whether this batch opened the rule's keyless incident in `group`.
    fn opened(&self, group: &str) -> bool;
    /// Add `value` to metric `name` of the alert this batch opened for the
    /// rule's keyless incident in `group`.
    fn add_to_opened(&mut self, group: &str, name: &str, value: f64);
    /// The rule's condition for `key` in `group` was seen clear at `ts` (a
    /// normal invocation, a completed one in `stream`): a run of
    /// [`Detect::clear_run`] of them resolves the open incident. With a
    /// `stream`, only one in the stream of the incident's alert counts.
    fn clear(&mut self, _group: &str, _key: &Key, _stream: Option<&str>, _ts: i64) {}
}

/// Another rule's incident, as a kind that follows it sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The id of the alert that opened it.
    pub id: String,
    /// Event time it opened at (the finding's last event).
    pub at: i64,
}

/// State a sweep lists for a rule, so that what went quiet is still judged.
#[derive(Debug, Clone, Copy)]
pub struct Listed {
    /// The space listed.
    pub space: Space,
    /// Whether judging it needs the function's learned timeout.
    pub function_facts: bool,
}

/// What a kind's file implements. Every method but `observe`, `apply` and
/// `what` has a default that fits a kind without that part.
pub trait Detect {
    /// What one event means for the rule, before any state is read.
    /// Request ids borrow from the batch's messages.
    type Obs<'a>;

    /// The rule's line matchers (empty for kinds that read platform records).
    fn matchers(&self) -> &[Matcher] {
        &[]
    }

    /// The rule's secret finder, when it looks for secrets.
    fn secrets(&self) -> Option<&SecretFinder> {
        None
    }

    /// What the event means for the rule: zero or more observations to `out`.
    fn observe<'p>(
        &self,
        line: &Line<'p, '_>,
        m: &mut Matching<'_>,
        out: &mut impl FnMut(Self::Obs<'p>),
    );

    /// The incident key an observation is about, when it has one: its state
    /// is then loaded per key ([`Detect::keyed_key`]) rather than per rule.
    fn key_of<'o>(_obs: &'o Self::Obs<'_>) -> Option<&'o Key> {
        None
    }

    /// The state key of the rule that does not depend on the event, formatted
    /// once per batch.
    fn batch_key(&self, _rule: &str, _group: &str, _stream: &str) -> Option<StateKey> {
        None
    }

    /// The state key of the rule for an incident key.
    fn keyed_key(&self, _rule: &str, _group: &str, _key: &Key) -> Option<StateKey> {
        None
    }

    /// The rule whose incident for the same key this rule reads
    /// ([`Scope::incident_of`]): the engine loads it with the observation's state.
    fn follows(&self) -> Option<&str> {
        None
    }

    /// The state transitions of one observation, in event order.
    fn apply<S: Scope>(&self, obs: &Self::Obs<'_>, at: &At<'_>, scope: &mut S);

    /// What happened and how much, in the words of the kind.
    fn what(&self, s: &Summary<'_>) -> String;

    /// What the sweep lists for this rule.
    fn listed(&self) -> Option<Listed> {
        None
    }

    /// Judge deadlines against the watermark (every batch and sweep).
    fn deadlines<S: Scope>(&self, _scope: &mut S, _watermark: i64) {}

    /// Judge what went quiet (sweeps only), after every rule's deadlines.
    fn sweep<S: Scope>(&self, _scope: &mut S, _watermark: i64) {}

    /// The default `resolve_after`: event time with nothing folded into an
    /// incident after which it resolves. By default the realert span: a
    /// single-event kind is clear when the event does not recur within it.
    fn resolve_after(&self, realert_ms: i64) -> i64 {
        realert_ms
    }

    /// How many clear observations in a row ([`Scope::clear`]) resolve an
    /// incident before `resolve_after` passes; `None` for kinds that report
    /// none.
    fn clear_run(&self) -> Option<u32> {
        None
    }
}

/// While the rule's incident for `key` is open, a further event folds into
/// it instead of feeding the key's window (the windowed kinds share this).
pub fn fold_into_open<S: Scope>(
    scope: &mut S,
    at: &At<'_>,
    key: &Key,
    request_id: Option<&str>,
) -> bool {
    if !scope.open_incident(at.group, key, at.ts) {
        return false;
    }
    let f = at.keyed_finding(key, request_id);
    scope.record(at.group, f, at.hash());
    true
}
