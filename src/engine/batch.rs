//! Steps 2–4 of a batch (or a sweep): load the state every observation
//! touches in one read, apply, hand the alerts out through the outbox, and
//! save what changed in one write.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::incidents::batch_fingerprint;
use super::observe::{Obs, Observed};
use super::work::{BatchKeys, Slot, Work};
use super::{BatchOutcome, Engine, EngineError};
use crate::detect::Key;
use crate::ingest::Payload;
use crate::rules::Kind;
use crate::state::{self, IncidentState, StateStore, StateValue, Versioned, Write};

impl<S: StateStore> Engine<S> {
    /// Steps 2–4 for a batch (or a sweep when `batch` is `None`).
    pub(super) async fn run(
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
}
