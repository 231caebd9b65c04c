//! Incidents: a finding opens one (a new alert) or folds into the open one;
//! the deadlines and rate buckets a batch or sweep judges; the outbox's
//! confirmation of delivered alerts.

use std::collections::{BTreeMap, HashMap};

use super::finish::Draft;
use super::work::{Slot, Work};
use super::{Engine, EngineError, INCIDENT_REQUESTS_KEPT, MAX_ATTEMPTS};
use crate::alert::{self, Alert};
use crate::detect::{Detector, Finding, Key, function_name, stable_hash};
use crate::ingest::Payload;
use crate::state::{self, IncidentState, StateError, StateStore, StateValue, Versioned, Write};

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

    /// Orphaned invocations whose deadline the watermark has passed.
    pub(super) fn deadlines(&self, work: &mut Work, watermark: i64) {
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
    pub(super) fn sweep_rates(&self, work: &mut Work, watermark: i64) {
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
    pub(super) fn close_rate(
        &self,
        work: &mut Work,
        rule: usize,
        group: &str,
        key: &str,
        sweep: Option<i64>,
    ) {
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
    pub(super) fn record(
        &self,
        work: &mut Work,
        rule: usize,
        group: &str,
        f: Finding,
        dedupe: u64,
    ) {
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
                Some(&d) => work.drafts[d].fold(count, f),
                None => work.suppressed += 1,
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
