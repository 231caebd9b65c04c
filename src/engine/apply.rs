//! Step 3: the state transitions of each observation, in event order. The
//! kind's detector makes them ([`crate::detect::Detect::apply`]) through a
//! [`RuleScope`]: the batch's state and incidents as one rule sees them.

use super::Engine;
use super::observe::{Observed, Seen};
use super::work::{BatchKeys, Work};
use crate::detect::kind::DAY_MS;
use crate::detect::{At, Finding, Key, Opened, Scope, StateKey, StateOf};
use crate::ingest::Payload;
use crate::state::{StateStore, StateValue};

/// The batch's state and incidents as one rule sees them.
pub(super) struct RuleScope<'a, S: StateStore> {
    pub(super) engine: &'a Engine<S>,
    pub(super) work: &'a mut Work,
    pub(super) rule: usize,
    /// The batch's log group and its function key, when there is a batch:
    /// the function key of any other group is formatted when asked for.
    pub(super) batch: Option<(&'a str, &'a StateKey)>,
    /// The batch's log group and the rule's keyless incident key in it.
    pub(super) keyless: Option<(&'a str, &'a StateKey)>,
}

impl<S: StateStore> RuleScope<'_, S> {
    fn incident_key(&self, group: &str, key: &Key) -> StateKey {
        StateKey::incident(&self.engine.rules.rules[self.rule].id, group, key)
    }
}

impl<S: StateStore> Scope for RuleScope<'_, S> {
    fn rule_id(&self) -> &str {
        &self.engine.rules.rules[self.rule].id
    }

    fn state<T: StateOf>(&mut self, key: &StateKey, expires_at: i64) -> &mut T {
        self.work.state(key.as_str(), expires_at)
    }

    fn existing<T: StateOf>(&mut self, key: &str) -> Option<&mut T> {
        self.work.existing(key)
    }

    fn touch(&mut self, key: &str) {
        if let Some(s) = self.work.slots.get_mut(key) {
            s.dirty = true;
        }
    }

    fn loaded<T: StateOf>(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .work
            .slots
            .iter()
            .filter(|(k, s)| {
                k.starts_with(prefix)
                    && matches!(&s.value, Some(StateValue::Kind(v)) if T::of(v).is_some())
            })
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    fn learned_timeout(&self, group: &str) -> Option<i64> {
        match self.batch {
            Some((g, fkey)) if g == group => self.work.learned_timeout(fkey.as_str()),
            _ => self
                .work
                .learned_timeout(StateKey::function(group).as_str()),
        }
    }

    fn open_incident(&self, group: &str, key: &Key, ts: i64) -> bool {
        self.work
            .open_incident(self.incident_key(group, key).as_str(), ts)
    }

    fn incident_of(&self, rule: &str, group: &str, key: &Key) -> Option<Opened> {
        let other = self.engine.rules.rules.iter().find(|r| r.id == rule)?;
        let ikey = StateKey::incident(rule, group, key).into_string();
        match &self.work.slots.get(&ikey)?.value {
            // An incident is silent until its opening time + realert.
            Some(StateValue::Incident(inc)) => Some(Opened {
                id: inc.id.clone(),
                at: inc.until.saturating_sub(other.realert_ms.max(1)),
            }),
            _ => None,
        }
    }

    fn record(&mut self, group: &str, f: Finding, dedupe: u64) {
        self.engine
            .record(self.work, self.rule, group, f, (dedupe, &[]));
    }

    fn record_burst(&mut self, group: &str, f: Finding, dedupe: u64, counted: &[u64]) {
        self.engine
            .record(self.work, self.rule, group, f, (dedupe, counted));
    }

    fn dropped_start(&mut self) {
        self.work.open_dropped += 1;
    }

    fn opened(&self, group: &str) -> bool {
        let ikey = self.incident_key(group, &Key::new());
        self.work.open_drafts.contains_key(ikey.as_str())
    }

    fn clear(&mut self, group: &str, key: &Key, stream: Option<&str>, ts: i64) {
        let Some(run) = self.engine.rules.rules[self.rule].resolve.clear_run else {
            return;
        };
        let formatted;
        let ikey = match self.keyless {
            Some((g, k)) if g == group && key.is_empty() => k.as_str(),
            _ => {
                formatted = self.incident_key(group, key);
                formatted.as_str()
            }
        };
        let Some(slot) = self.work.slots.get_mut(ikey) else {
            return;
        };
        let Some(StateValue::Incident(inc)) = &mut slot.value else {
            return;
        };
        if inc.legacy() || inc.resolved || ts < inc.last_seen || ts >= inc.resolves_at {
            return;
        }
        let alert_stream = inc
            .fired
            .as_ref()
            .or(inc.pending.as_ref())
            .and_then(|a| a.log_stream.as_deref());
        if stream.is_some() && alert_stream.is_some() && stream != alert_stream {
            return;
        }
        inc.clear += 1;
        if inc.clear >= run {
            inc.resolves_at = ts.max(1);
        }
        slot.dirty = true;
    }

    fn add_to_opened(&mut self, group: &str, name: &str, value: f64) {
        let ikey = self.incident_key(group, &Key::new());
        if let Some(&d) = self.work.open_drafts.get(ikey.as_str()) {
            *self.work.drafts[d]
                .metrics
                .entry(name.to_string())
                .or_insert(0.0) += value;
        }
    }
}

impl<S: StateStore> Engine<S> {
    /// Apply one observation to the batch's state: the rule's detector moves
    /// its state on, and its findings open or fold incidents.
    pub(super) fn apply(&self, work: &mut Work, p: &Payload<'_>, bk: &BatchKeys, o: &Observed<'_>) {
        let ev = &p.log_events[o.event];
        match &o.seen {
            Seen::LearnTimeout(ms) => {
                let f = work.function(bk.function.as_str(), ev.timestamp + 30 * DAY_MS);
                f.timeout_ms = Some(f.timeout_ms.map_or(*ms, |t| t.max(*ms)));
            }
            Seen::Rule(rule, obs) => {
                work.step += 1;
                let at = At {
                    ts: ev.timestamp,
                    id: &ev.id,
                    message: &ev.message,
                    group: &p.log_group,
                    stream: &p.log_stream,
                    batch_key: bk.kind[*rule].as_ref(),
                };
                let mut scope = RuleScope {
                    engine: self,
                    work,
                    rule: *rule,
                    batch: Some((&p.log_group, &bk.function)),
                    keyless: Some((&p.log_group, &bk.incident[*rule])),
                };
                self.rules.rules[*rule].detector.apply(obs, &at, &mut scope);
            }
        }
    }
}
