//! Incidents: a finding opens one (a new alert) or folds into the open one;
//! the outbox's confirmation of delivered alerts.

use std::collections::HashMap;

use super::finish::Draft;
use super::work::{Slot, Work};
use super::{Engine, EngineError, INCIDENT_REQUESTS_KEPT, MAX_ATTEMPTS};
use crate::alert::{self, Alert};
use crate::detect::{Finding, StateKey, stable_hash};
use crate::ingest::Payload;
use crate::state::{IncidentState, StateError, StateStore, StateValue, Versioned, Write};

impl<S: StateStore> Engine<S> {
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

    /// Outbox: each new alert is stored with its incident until a sink
    /// confirms delivery; alerts still pending from an earlier attempt at
    /// this batch (a retry after a failed publish) go out again. The alerts,
    /// and each one's id with the incident key it is pending in.
    pub(super) fn hand_out(
        &self,
        work: &mut Work,
        batch: Option<&Payload<'_>>,
    ) -> (Vec<Alert>, Vec<(String, String)>) {
        let account = batch.map(|p| p.owner.to_string());
        let batch_id = batch.map_or(0, batch_fingerprint);
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
        redeliver(work, batch_id, &mut alerts, &mut unconfirmed);
        (alerts, unconfirmed)
    }

    /// Open an incident (a new alert: the finding as it is) or fold a finding
    /// into the open one (its count, not the alert already opened).
    pub(super) fn record(
        &self,
        work: &mut Work,
        rule: usize,
        group: &str,
        f: Finding,
        dedupe: u64,
    ) {
        let r = &self.rules.rules[rule];
        let ikey = StateKey::incident(&r.id, group, &f.key).into_string();
        let slot = work.slots.entry(ikey.clone()).or_insert(Slot {
            value: None,
            version: 0,
            dirty: false,
            expires_at: i64::MIN,
        });
        if let Some(StateValue::Incident(inc)) = &mut slot.value
            && f.last_seen < inc.until
        {
            if inc.requests.contains(&dedupe) {
                return;
            }
            if inc.requests.len() >= INCIDENT_REQUESTS_KEPT {
                inc.requests.remove(0);
            }
            inc.requests.push(dedupe);
            // The alert is what opened the incident (the findings of that one
            // step, e.g. every orphan one deadline judged), even when this
            // batch opened it: an alert that grew with the rest of its batch
            // would depend on where batches split. The incident's count goes on.
            inc.count += f.count;
            slot.dirty = true;
            let count = inc.count;
            match work.open_drafts.get(&ikey) {
                Some(&d) if work.opened_at_step.get(&ikey) == Some(&work.step) => {
                    work.drafts[d].fold(count, f)
                }
                _ => work.suppressed += 1,
            }
            return;
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
        work.opened_at_step.insert(ikey.clone(), work.step);
        work.open_drafts.insert(ikey, work.drafts.len());
        work.drafts.push(Draft::new(rule, group, id, f));
    }
}

/// The alerts still pending from an earlier attempt at batch `batch_id`
/// (none opened again by this attempt), in key order.
fn redeliver(
    work: &Work,
    batch_id: u64,
    alerts: &mut Vec<Alert>,
    unconfirmed: &mut Vec<(String, String)>,
) {
    let mut pending: Vec<(&String, &Slot)> = work
        .slots
        .iter()
        .filter(|(k, _)| !work.open_drafts.contains_key(*k))
        .collect();
    pending.sort_by(|a, b| a.0.cmp(b.0));
    for (ikey, slot) in pending {
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
}

/// Identity of a batch, the same when Lambda or Kinesis delivers it again:
/// group, stream, first and last event id and the event count. Never 0 (the sweep's).
fn batch_fingerprint(p: &Payload<'_>) -> u64 {
    let first = p.log_events.first().map_or("", |e| e.id.as_ref());
    let last = p.log_events.last().map_or("", |e| e.id.as_ref());
    let n = p.log_events.len().to_string();
    stable_hash(&["batch", &p.log_group, &p.log_stream, first, last, &n]).max(1)
}
