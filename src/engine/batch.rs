//! Steps 2–4 of a batch (or a sweep): load the state every observation
//! touches in one read, apply, hand the alerts out through the outbox, and
//! save what changed in one write.

use std::collections::HashSet;
use std::sync::Arc;

use super::apply::RuleScope;
use super::observe::{Observed, Seen};
use super::work::{BatchKeys, Work};
use super::{BatchOutcome, Engine, EngineError};
use crate::detect::{Detector, Key, StateKey};
use crate::ingest::Payload;
use crate::rules::RuleSet;
use crate::state::StateStore;

impl<S: StateStore> Engine<S> {
    /// Steps 2–4 for a batch (or a sweep when `batch` is `None`).
    pub(super) async fn run(
        &mut self,
        batch: Option<(&Payload<'_>, &[Observed<'_>])>,
        watermark: i64,
        read_time: i64,
    ) -> Result<BatchOutcome, EngineError> {
        let rules = Arc::clone(&self.rules);
        let batch_keys = batch.map(|(p, _)| BatchKeys::new(&rules, p));
        let mut keys = match (batch, &batch_keys) {
            (Some((p, observed)), Some(bk)) => observed_keys(&rules, p, bk, observed),
            _ => self.listed_keys(read_time).await?,
        };
        keys.sort();
        keys.dedup();
        let loaded = self.store.load(&keys, read_time).await?;
        let mut work = Work::loaded(loaded);
        work.batch = batch.map_or(0, |(p, _)| super::incidents::batch_fingerprint(p));
        work.now = watermark;
        if let (Some((p, observed)), Some(bk)) = (batch, &batch_keys) {
            for o in observed {
                self.apply(&mut work, p, bk, o);
            }
        }
        let at_batch = batch
            .zip(batch_keys.as_ref())
            .map(|((p, _), bk)| (p.log_group.as_ref(), &bk.function));
        self.judge(&mut work, at_batch, watermark, batch.is_none());
        // A batch resolves what its own events have passed (its oldest
        // event: another stream may be behind the watermark and still fold
        // into an incident), the sweep what its watermark has.
        let clear_until = if batch.is_some() {
            read_time
        } else {
            watermark
        };
        self.resolve_due(&mut work, clear_until);
        let (alerts, unconfirmed) = self.hand_out(&mut work, batch.map(|(p, _)| p));
        self.store.save(work.writes()).await?;
        let (alerts, folded) = self.fold_storm(alerts, unconfirmed);
        Ok(BatchOutcome {
            alerts,
            folded,
            suppressed: work.suppressed,
            open_invocations_dropped: work.open_dropped,
            ..BatchOutcome::default()
        })
    }

    /// Deadlines of every rule against the watermark; in a sweep, then what
    /// went quiet ([`crate::detect::Detect::sweep`]).
    fn judge(
        &self,
        work: &mut Work,
        batch: Option<(&str, &StateKey)>,
        watermark: i64,
        sweep: bool,
    ) {
        for quiet in [false, true] {
            if quiet && !sweep {
                break;
            }
            for (ri, r) in self.rules.rules.iter().enumerate() {
                work.step += 1;
                let mut scope = RuleScope {
                    engine: self,
                    work,
                    rule: ri,
                    batch,
                    keyless: None,
                };
                if quiet {
                    r.detector.sweep(&mut scope, watermark);
                } else {
                    r.detector.deadlines(&mut scope, watermark);
                }
            }
        }
    }

    /// The sweep lists what each rule asks for ([`crate::detect::Detect::listed`]):
    /// e.g. every state of the rule in its space, so what went quiet is
    /// still judged, at one Query per rule. Each listed key comes with its
    /// rule's incident key and, when the kind needs it, its function's.
    async fn listed_keys(&mut self, read_time: i64) -> Result<Vec<String>, EngineError> {
        let rules = Arc::clone(&self.rules);
        let mut keys = Vec::new();
        for rule in &rules.rules {
            // Every incident of the rule, so that one whose source went quiet resolves.
            keys.extend(
                self.store
                    .keys_with_prefix(&crate::detect::key::INCIDENT.prefix(&rule.id), read_time)
                    .await?,
            );
            let Some(listed) = rule.detector.listed() else {
                continue;
            };
            let prefix = listed.space.prefix(&rule.id);
            for k in self.store.keys_with_prefix(&prefix, read_time).await? {
                if let Some(place) = listed.space.parse(&rule.id, &k) {
                    if listed.function_facts {
                        keys.push(StateKey::function(place.group).into_string());
                    }
                    keys.push(StateKey::incident(&rule.id, place.group, &Key::new()).into_string());
                }
                keys.push(k);
            }
        }
        Ok(keys)
    }
}

/// The state keys a batch's observations touch, each once: per rule for the
/// event-independent ones, per distinct incident key for observations that
/// carry one ([`crate::detect::Detect::key_of`]), each with the rule's
/// incident key.
fn observed_keys(
    rules: &RuleSet,
    p: &Payload<'_>,
    bk: &BatchKeys,
    observed: &[Observed<'_>],
) -> Vec<String> {
    let mut keys = vec![bk.function.as_str().to_string()];
    let mut seen = vec![false; rules.rules.len()];
    // foldhash: SipHash over every observation's key was visible in the profile.
    let mut seen_keys: HashSet<(usize, &Key), foldhash::fast::RandomState> = HashSet::default();
    for o in observed {
        let Seen::Rule(r, obs) = &o.seen else {
            continue;
        };
        let rule = &rules.rules[*r];
        match Detector::key_of(obs) {
            Some(key) => {
                if seen_keys.insert((*r, key)) {
                    if let Some(k) = rule.detector.keyed_key(&rule.id, &p.log_group, key) {
                        keys.push(k.into_string());
                    }
                    keys.push(StateKey::incident(&rule.id, &p.log_group, key).into_string());
                    if let Some(other) = rule.detector.follows() {
                        keys.push(StateKey::incident(other, &p.log_group, key).into_string());
                    }
                }
            }
            None => {
                if std::mem::replace(&mut seen[*r], true) {
                    continue;
                }
                if let Some(k) = &bk.kind[*r] {
                    keys.push(k.as_str().to_string());
                }
                keys.push(bk.incident[*r].as_str().to_string());
            }
        }
    }
    keys
}
