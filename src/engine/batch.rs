//! Steps 2–4 of a batch (or a sweep): load the state every observation
//! touches in one read, apply, hand the alerts out through the outbox, and
//! save what changed in one write.

use std::collections::HashSet;
use std::sync::Arc;

use super::observe::{Obs, Observed};
use super::work::{BatchKeys, Work};
use super::{BatchOutcome, Engine, EngineError};
use crate::detect::Key;
use crate::ingest::Payload;
use crate::rules::{Kind, RuleSet};
use crate::state::{self, StateStore};

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
            _ => Vec::new(),
        };
        if batch.is_none() {
            self.add_rate_keys(read_time, &mut keys).await?;
        }
        self.add_stream_keys(batch.is_none(), read_time, &mut keys)
            .await?;
        keys.sort();
        keys.dedup();
        let loaded = self.store.load(&keys, read_time).await?;
        let mut work = Work::loaded(loaded);
        if let (Some((p, observed)), Some(bk)) = (batch, &batch_keys) {
            for o in observed {
                self.apply(&mut work, p, bk, o);
            }
        }
        self.deadlines(&mut work, watermark);
        if batch.is_none() {
            self.sweep_rates(&mut work, watermark);
        }
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

    /// Rates: the sweep lists every function's open buckets, so a minute
    /// is judged even when the function went quiet after it.
    async fn add_rate_keys(
        &mut self,
        read_time: i64,
        keys: &mut Vec<String>,
    ) -> Result<(), EngineError> {
        let rules = Arc::clone(&self.rules);
        for rule in rules.rules.iter().filter(|r| r.kind == Kind::Rate) {
            let prefix = state::rate_prefix(&rule.id);
            for k in self.store.keys_with_prefix(&prefix, read_time).await? {
                if let Some(group) = k.strip_prefix(&prefix) {
                    keys.push(state::incident_key(&rule.id, group, &Key::new()));
                }
                keys.push(k);
            }
        }
        Ok(())
    }

    /// Deadlines: a batch checks the streams it touched; the sweep (end of
    /// replay, the scheduled event) lists every open stream, so a stream
    /// that went quiet is still judged, at one Query per lifecycle rule.
    /// Each stream comes with its function's and its rule's incident key.
    async fn add_stream_keys(
        &mut self,
        sweep: bool,
        read_time: i64,
        keys: &mut Vec<String>,
    ) -> Result<(), EngineError> {
        let rules = Arc::clone(&self.rules);
        let mut streams: Vec<String> = Vec::new();
        if sweep {
            for rule in rules.rules.iter().filter(|r| r.kind == Kind::Lifecycle) {
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
        Ok(())
    }
}

/// The state keys a batch's observations touch, each once: per rule for the
/// event-independent ones, per distinct key for thresholds and patterns.
fn observed_keys(
    rules: &RuleSet,
    p: &Payload<'_>,
    bk: &BatchKeys,
    observed: &[Observed<'_>],
) -> Vec<String> {
    let mut keys = vec![bk.function.clone()];
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
    keys
}
