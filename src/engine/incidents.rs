//! Incidents: a finding opens one (a new alert) or folds into the open one;
//! the outbox's confirmation of delivered alerts.

use std::collections::HashMap;

use super::finish::Draft;
use super::lifecycle::{Deferred, Fate};
use super::work::{Slot, Work};
use super::{Engine, EngineError, MAX_ATTEMPTS};
use crate::alert::{self, Alert};
use crate::detect::{Finding, StateKey, stable_hash};
use crate::ingest::Payload;
use crate::state::{IncidentState, StateError, StateStore, StateValue, Versioned, Write};

impl<S: StateStore> Engine<S> {
    /// Record that these alerts were delivered, so a retried batch does not
    /// send them again. Ids this engine did not hand out are ignored.
    pub async fn confirm(&mut self, ids: &[String]) -> Result<(), EngineError> {
        // Incident key → the ids pending there that were delivered, each
        // with whether it went out on its own (not folded into a digest).
        let mut pending: HashMap<String, Vec<(String, bool)>> = HashMap::new();
        for id in ids {
            for (ikey, pid) in self.unconfirmed.get(id).into_iter().flatten() {
                pending
                    .entry(ikey.clone())
                    .or_default()
                    .push((pid.clone(), pid == id));
            }
        }
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
                .filter_map(|(key, Versioned { value, version, .. })| {
                    let StateValue::Incident(mut inc) = value else {
                        return None;
                    };
                    let ids = pending.get(&key)?;
                    delivered(&mut inc, ids).then(|| Write {
                        expires_at: inc.expires_at(),
                        key,
                        value: Some(StateValue::Incident(inc)),
                        expected_version: version,
                    })
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
        let batch_id = work.batch;
        let drafts = std::mem::take(&mut work.drafts);
        let deferred = std::mem::take(&mut work.deferred);
        let mut opened: HashMap<usize, String> = work
            .open_drafts
            .iter()
            .map(|(k, i)| (*i, k.clone()))
            .collect();
        let mut alerts = Vec::new();
        let mut unconfirmed: Vec<(String, String)> = Vec::new();
        // Resolutions first: a key whose incident resolved and opened again
        // in one batch tells the old one's end before the new one's start.
        for (ikey, a) in std::mem::take(&mut work.resolutions) {
            unconfirmed.push((a.id.clone(), ikey));
            alerts.push(a);
        }
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
            let resolved = deferred.iter().find(|x| x.draft == i).map(|x| {
                let a = x.resolution(&alert);
                // Its outbox: the incident now at its key, when that has room.
                if let Some(Slot {
                    value: Some(StateValue::Incident(inc)),
                    ..
                }) = work.slots.get_mut(&x.ikey)
                    && inc.previous.is_none()
                {
                    inc.previous = Some(Box::new(a.clone()));
                    inc.previous_batch = batch_id;
                    unconfirmed.push((a.id.clone(), x.ikey.clone()));
                }
                a
            });
            alerts.push(alert);
            alerts.extend(resolved);
        }
        redeliver(work, batch_id, &mut alerts, &mut unconfirmed);
        (alerts, unconfirmed)
    }

    /// Open an incident (a new alert: the finding as it is), fold a finding
    /// into the open one (its count, not the alert already opened), or
    /// realert it under its id ([`super::lifecycle::Fate`]). `dedupe`
    /// identifies the finding, `counted` every event it counts: the incident
    /// keeps both, so a redelivered event never counts into it twice.
    pub(super) fn record(
        &self,
        work: &mut Work,
        rule: usize,
        group: &str,
        f: Finding,
        (dedupe, counted): (u64, &[u64]),
    ) {
        let r = &self.rules.rules[rule];
        let ikey = StateKey::incident(&r.id, group, &f.key).into_string();
        let slot = work.slots.entry(ikey.clone()).or_insert(Slot {
            value: None,
            version: 0,
            dirty: false,
            expires_at: i64::MIN,
        });
        let mut carried = (None, 0);
        if let Some(StateValue::Incident(inc)) = &mut slot.value {
            let resolved_before = work.resolutions.len();
            let fired_now = work.open_drafts.contains_key(&ikey);
            let lot = (&mut work.resolutions, work.batch, fired_now);
            match self.fate(inc, r, &f, &ikey, lot) {
                Fate::Replace(previous, batch) => carried = (previous, batch),
                Fate::ReplaceFiredNow => {
                    if r.resolve.notify
                        && let Some(&draft) = work.open_drafts.get(&ikey)
                    {
                        work.deferred.push(Deferred {
                            draft,
                            ikey: ikey.clone(),
                            count: inc.count,
                            last_seen: inc.last_seen,
                            resolves_at: inc.resolves_at,
                        });
                    }
                    carried = (inc.previous.take(), inc.previous_batch);
                }
                fate => {
                    if work.resolutions.len() > resolved_before {
                        slot.dirty = true;
                    }
                    if inc.requests.contains(&dedupe) {
                        return;
                    }
                    inc.remember(counted.iter().chain([&dedupe]));
                    slot.dirty = true;
                    inc.count += f.count;
                    inc.extend(r, &f);
                    let count = inc.count;
                    if matches!(fate, Fate::Realert) {
                        inc.until = f.last_seen.saturating_add(r.realert_ms.max(1));
                        slot.expires_at = slot.expires_at.max(inc.expires_at());
                        let id = inc.id.clone();
                        let mut d = Draft::new(rule, group, id, f);
                        d.count = count;
                        work.opened_at_step.insert(ikey.clone(), work.step);
                        work.open_drafts.insert(ikey, work.drafts.len());
                        work.drafts.push(d);
                        return;
                    }
                    slot.expires_at = slot.expires_at.max(inc.expires_at());
                    // The alert is what opened the incident (the findings of that one
                    // step, e.g. every orphan one deadline judged), even when this
                    // batch opened it: an alert that grew with the rest of its batch
                    // would depend on where batches split. The incident's count goes on.
                    match work.open_drafts.get(&ikey) {
                        Some(&d) if work.opened_at_step.get(&ikey) == Some(&work.step) => {
                            work.drafts[d].fold(count, f)
                        }
                        _ => work.suppressed += 1,
                    }
                    return;
                }
            }
        }
        let id = alert::fingerprint(&r.id, group, &f.key, f.first_seen);
        let mut inc = IncidentState::opened(r, id.clone(), &f, dedupe);
        inc.remember(counted.iter());
        (inc.previous, inc.previous_batch) = carried;
        slot.dirty = true;
        slot.expires_at = slot.expires_at.max(inc.expires_at());
        slot.value = Some(StateValue::Incident(inc));
        work.opened_at_step.insert(ikey.clone(), work.step);
        work.open_drafts.insert(ikey, work.drafts.len());
        work.drafts.push(Draft::new(rule, group, id, f));
    }
}

/// The alerts still pending from an earlier attempt at batch `batch_id`
/// (none handed out again by this attempt), in key order: a replaced
/// incident's resolution, then the incident's own alert.
fn redeliver(
    work: &Work,
    batch_id: u64,
    alerts: &mut Vec<Alert>,
    unconfirmed: &mut Vec<(String, String)>,
) {
    let mut pending: Vec<(&String, &Slot)> = work.slots.iter().collect();
    pending.sort_by(|a, b| a.0.cmp(b.0));
    for (ikey, slot) in pending {
        let Some(StateValue::Incident(inc)) = &slot.value else {
            continue;
        };
        let reopened = work.open_drafts.contains_key(ikey);
        let in_flight = batch_id == 0 && !super::lifecycle::sweep_resends(inc, work.now);
        let outbox = [
            (inc.previous.as_ref(), inc.previous_batch, false),
            (
                inc.pending.as_ref(),
                inc.pending_batch,
                reopened || in_flight,
            ),
        ];
        for (a, batch, replaced) in outbox {
            let Some(a) = a else { continue };
            if replaced
                || batch != batch_id
                || alerts.iter().any(|x| x.id == a.id && x.status == a.status)
            {
                continue;
            }
            unconfirmed.push((a.id.clone(), ikey.clone()));
            alerts.push((**a).clone());
        }
    }
}

/// Clear what was delivered from `inc`'s outbox (`delivered`: the ids, each
/// with whether it went out on its own); whether anything changed. A firing
/// delivered on its own is kept as the base of its resolution; one folded
/// into a digest resolves without a message.
fn delivered(inc: &mut IncidentState, delivered: &[(String, bool)]) -> bool {
    let find = |a: &Option<Box<Alert>>| {
        a.as_ref()
            .and_then(|a| delivered.iter().find(|(id, _)| *id == a.id))
            .map(|(_, alone)| *alone)
    };
    let mut changed = false;
    if let Some(alone) = find(&inc.pending) {
        let a = inc.pending.take();
        if !inc.legacy() && a.as_ref().is_some_and(|a| !a.status.is_resolved()) {
            inc.fired = a.filter(|_| alone);
        }
        inc.pending_at = 0;
        changed = true;
    }
    if find(&inc.previous).is_some() {
        inc.previous = None;
        inc.previous_batch = 0;
        changed = true;
    }
    changed
}

/// Identity of a batch, the same when Lambda or Kinesis delivers it again:
/// group, stream, first and last event id and the event count. Never 0 (the sweep's).
pub(super) fn batch_fingerprint(p: &Payload<'_>) -> u64 {
    let first = p.log_events.first().map_or("", |e| e.id.as_ref());
    let last = p.log_events.last().map_or("", |e| e.id.as_ref());
    let n = p.log_events.len().to_string();
    stable_hash(&["batch", &p.log_group, &p.log_stream, first, last, &n]).max(1)
}
