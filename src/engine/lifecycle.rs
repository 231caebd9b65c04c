//! An incident's life after it fires: it folds further events in, realerts
//! under the same id, and resolves once its condition has stayed clear for
//! the rule's `resolve_after` in event time (or a run of clear observations
//! its kind reports). A resolution is the delivered firing alert with
//! `status: resolved`, the final count and `resolved_at`; it goes through
//! the same outbox (`pending`) as a firing, and only once the firing was
//! confirmed, so no sink sees a resolution without its firing.

use super::Engine;
use super::work::Work;
use crate::alert::{Alert, AlertStatus};
use crate::detect::kind::DAY_MS;
use crate::detect::{Finding, key};
use crate::rules::Rule;
use crate::state::{IncidentState, StateStore, StateValue};

/// What a new finding does to the incident stored at its key.
pub(super) enum Fate {
    /// Folds into it (within realert, or while it cannot resolve yet).
    Fold,
    /// Past realert and still unresolved: the same incident alerts again.
    Realert,
    /// It is over: a new incident opens, carrying the old one's
    /// undelivered resolution (if any) in its outbox.
    Replace(Option<Box<Alert>>, u64),
    /// It is over, but it fired in this batch: it resolves right after its
    /// firing goes out ([`Deferred`]), and a new incident opens.
    ReplaceFiredNow,
}

/// The resolution of an incident that fired and resolved in one batch: made
/// from its firing alert when the batch hands it out.
pub(super) struct Deferred {
    /// The draft of its firing.
    pub(super) draft: usize,
    /// Its incident key.
    pub(super) ikey: String,
    pub(super) count: u64,
    pub(super) last_seen: i64,
    pub(super) resolves_at: i64,
}

impl Deferred {
    /// The resolution of `fired`.
    pub(super) fn resolution(&self, fired: &Alert) -> Alert {
        resolution_of(fired.clone(), self.count, self.last_seen, self.resolves_at)
    }
}

impl IncidentState {
    /// Written before incidents resolved: it ends at `until`, as it did.
    pub(super) fn legacy(&self) -> bool {
        self.resolves_at == 0
    }

    /// Whether an event at `ts` folds into it (the kinds' open incident).
    pub(super) fn open_at(&self, ts: i64) -> bool {
        ts < self.until && !self.resolved && (self.legacy() || ts < self.resolves_at)
    }

    /// Whether it may resolve now: its firing went out (or it never will).
    fn resolvable(&self) -> bool {
        !self.legacy() && !self.resolved && self.pending.is_none()
    }

    /// A finding at its key: an event folded in moves its last event on and
    /// its resolution away.
    pub(super) fn extend(&mut self, r: &Rule, f: &Finding) {
        // A late event counts into a resolved incident; its resolution stays.
        if self.resolved {
            return;
        }
        self.last_seen = self.last_seen.max(f.last_seen);
        if !self.legacy() {
            self.resolves_at = self
                .resolves_at
                .max(self.last_seen.saturating_add(r.resolve.after_ms.max(1)));
            self.clear = 0;
        }
    }

    /// Event time the stored value is still needed until.
    pub(super) fn expires_at(&self) -> i64 {
        if self.legacy() {
            self.until
        } else {
            // A day past its resolution, so that a sweep long after the data
            // (or a sweeper that was down) still finds it.
            self.until.max(self.resolves_at).saturating_add(DAY_MS)
        }
    }

    /// Keep `ids` (event and finding dedupes) as counted, each once, the
    /// last `INCIDENT_REQUESTS_KEPT` of them.
    pub(super) fn remember<'a>(&mut self, ids: impl Iterator<Item = &'a u64>) {
        for id in ids {
            if self.requests.contains(id) {
                continue;
            }
            if self.requests.len() >= super::INCIDENT_REQUESTS_KEPT {
                self.requests.remove(0);
            }
            self.requests.push(*id);
        }
    }

    /// A new incident (id `id`) opened by `f`.
    pub(super) fn opened(r: &Rule, id: String, f: &Finding, dedupe: u64) -> IncidentState {
        IncidentState {
            id,
            until: f.last_seen.saturating_add(r.realert_ms.max(1)),
            count: f.count,
            requests: vec![dedupe],
            last_seen: f.last_seen,
            resolves_at: f.last_seen.saturating_add(r.resolve.after_ms.max(1)),
            ..IncidentState::default()
        }
    }
}

impl<S: StateStore> Engine<S> {
    /// What finding `f` does to `inc`; an incident found over (due before
    /// the finding) is resolved here, its resolution added to `work`.
    pub(super) fn fate(
        &self,
        inc: &mut IncidentState,
        r: &Rule,
        f: &Finding,
        ikey: &str,
        work: (&mut Vec<(String, Alert)>, u64, bool),
    ) -> Fate {
        let (resolutions, batch, fired_now) = work;
        if inc.legacy() {
            return if f.last_seen < inc.until {
                Fate::Fold
            } else {
                Fate::Replace(None, 0)
            };
        }
        if inc.resolvable() && inc.resolves_at <= f.first_seen {
            if fired_now {
                inc.resolved = true;
                return Fate::ReplaceFiredNow;
            }
            if let Some(a) = close(inc, r, batch, f.first_seen) {
                resolutions.push((ikey.to_string(), a));
            }
        }
        // A late or redelivered event from before the resolution belongs to
        // the resolved incident (its requests keep it from counting twice).
        if inc.resolved && f.last_seen < inc.resolves_at {
            return Fate::Fold;
        }
        if inc.resolved {
            return match (inc.pending.take(), inc.previous.take()) {
                (Some(p), None) => Fate::Replace(Some(p), inc.pending_batch),
                (None, Some(p)) => Fate::Replace(Some(p), inc.previous_batch),
                (None, None) => Fate::Replace(None, 0),
                // Two undelivered resolutions at one key (a sink down for a
                // while): the finding counts into the old incident rather
                // than lose one of them.
                (pending, previous) => {
                    inc.pending = pending;
                    inc.previous = previous;
                    Fate::Fold
                }
            };
        }
        if f.last_seen < inc.until || inc.pending.is_some() {
            Fate::Fold
        } else {
            Fate::Realert
        }
    }

    /// Resolve every incident in `work` whose time has come by `watermark`
    /// (in key order, so a run's output does not depend on hashing).
    pub(super) fn resolve_due(&self, work: &mut Work, watermark: i64) {
        let mut due: Vec<&String> = work
            .slots
            .iter()
            // One that fired in this batch waits for its firing to go out.
            .filter(|(k, s)| {
                matches!(&s.value, Some(StateValue::Incident(i))
                    if i.resolvable() && i.resolves_at <= watermark)
                    && !work.open_drafts.contains_key(*k)
            })
            .map(|(k, _)| k)
            .collect();
        due.sort();
        let due: Vec<String> = due.into_iter().cloned().collect();
        for ikey in due {
            let Some(r) = self.rule_of_incident(&ikey) else {
                continue;
            };
            let Some(slot) = work.slots.get_mut(&ikey) else {
                continue;
            };
            let Some(StateValue::Incident(inc)) = &mut slot.value else {
                continue;
            };
            let resolution = close(inc, r, work.batch, watermark);
            slot.dirty = true;
            slot.expires_at = slot.expires_at.max(inc.expires_at());
            if let Some(a) = resolution {
                work.resolutions.push((ikey, a));
            }
        }
    }

    /// The rule whose incident `ikey` is.
    fn rule_of_incident(&self, ikey: &str) -> Option<&Rule> {
        self.rules
            .rules
            .iter()
            .find(|r| ikey.starts_with(&key::INCIDENT.prefix(&r.id)))
            .map(|r| &**r)
    }
}

/// Resolve `inc`: its resolution, when there is one to send (its firing
/// went out on its own and the rule notifies resolutions), goes to its
/// outbox and is returned.
fn close(inc: &mut IncidentState, r: &Rule, batch: u64, at: i64) -> Option<Alert> {
    inc.resolved = true;
    let fired = inc.fired.take()?;
    if !r.resolve.notify {
        return None;
    }
    let a = resolution_of(*fired, inc.count, inc.last_seen, inc.resolves_at);
    inc.pending = Some(Box::new(a.clone()));
    inc.pending_batch = batch;
    inc.pending_at = if batch == 0 { at.max(1) } else { 0 };
    Some(a)
}

/// How long after the sweep that made a resolution another sweep re-sends
/// it while it is still unconfirmed: a sweep whose delivery failed is made
/// good by a later one, never by one running at the same time.
pub(super) const SWEEP_RESEND_MS: i64 = 5 * 60_000;

/// Whether a sweep at `now` re-sends `inc`'s pending alert made by a sweep.
pub(super) fn sweep_resends(inc: &IncidentState, now: i64) -> bool {
    inc.pending_at == 0 || inc.pending_at.saturating_add(SWEEP_RESEND_MS) <= now
}

/// The resolution of firing alert `a`: the same alert, resolved, with the
/// incident's final count and last event.
fn resolution_of(mut a: Alert, count: u64, last_seen: i64, resolves_at: i64) -> Alert {
    a.status = AlertStatus::Resolved;
    a.count = count;
    a.last_seen = crate::time::rfc3339(last_seen);
    a.resolved_at = Some(crate::time::rfc3339(resolves_at));
    a
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::EngineConfig;
    use crate::ingest::{LogEvent, MessageType, Payload};
    use crate::rules::RuleSet;
    use crate::state::MemoryStore;

    const T: i64 = 1_795_341_600_000;

    /// A threshold rule: 3 `fail from <ip>` within 10 s; `extra` lines added.
    fn rules(extra: &str) -> Arc<RuleSet> {
        let text = format!(
            "id: burst\ntitle: Burst\nseverity: high\nkind: threshold\n\
             match: [{{regex: 'fail from (?P<ip>\\S+)'}}]\ngroup_by: [ip]\n\
             threshold: 3\nwindow: 10s\nrealert: 1m\n{extra}"
        );
        Arc::new(RuleSet::from_sources(vec![("burst.yaml".into(), text)]).unwrap())
    }

    fn engine(extra: &str) -> Engine<MemoryStore> {
        Engine::new(rules(extra), MemoryStore::new(), EngineConfig::default())
    }

    /// One batch of `fail from 192.0.2.1` at these offsets (ms after T), in
    /// stream `s`; `n` names the batch.
    fn batch(n: usize, at: &[i64]) -> Payload<'static> {
        Payload {
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            region: None,
            log_group: "/aws/lambda/auth".into(),
            log_stream: "s".into(),
            subscription_filters: vec![],
            log_events: at
                .iter()
                .enumerate()
                .map(|(i, t)| LogEvent {
                    id: format!("{n}-{i}").into(),
                    timestamp: T + t,
                    message: "fail from 192.0.2.1".into(),
                })
                .collect(),
        }
    }

    /// Process, confirm every alert, return them.
    async fn run(e: &mut Engine<MemoryStore>, p: &Payload<'_>) -> Vec<Alert> {
        let o = e.process(p).await.unwrap();
        let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
        e.confirm(&ids).await.unwrap();
        o.alerts
    }

    async fn sweep(e: &mut Engine<MemoryStore>, now: i64) -> Vec<Alert> {
        let o = e.sweep(T + now).await.unwrap();
        let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
        e.confirm(&ids).await.unwrap();
        o.alerts
    }

    #[tokio::test]
    async fn a_burst_then_quiet_fires_once_and_resolves_once_under_its_id() {
        let mut e = engine("");
        let fired = run(&mut e, &batch(0, &[0, 1_000, 2_000, 3_000])).await;
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].status, AlertStatus::Firing);
        // Twice the window (20 s) after the last event: not yet at 22.9 s.
        assert!(sweep(&mut e, 22_999).await.is_empty());
        let resolved = sweep(&mut e, 23_000).await;
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        let r = &resolved[0];
        assert_eq!(r.id, fired[0].id);
        assert_eq!(r.status, AlertStatus::Resolved);
        assert_eq!(r.count, 4);
        assert_eq!(r.last_seen, crate::time::rfc3339(T + 3_000));
        assert_eq!(r.resolved_at, Some(crate::time::rfc3339(T + 23_000)));
        assert_eq!(
            (&r.title, &r.first_seen),
            (&fired[0].title, &fired[0].first_seen)
        );
        // Once.
        assert!(sweep(&mut e, 3_600_000).await.is_empty());
    }

    #[tokio::test]
    async fn a_flap_within_resolve_after_stays_one_incident() {
        let mut e = engine("resolve_after: 30s\n");
        let fired = run(&mut e, &batch(0, &[0, 1_000, 2_000])).await;
        assert_eq!(fired.len(), 1);
        // Quiet for 25 s (clear for less than resolve_after), then again.
        assert!(run(&mut e, &batch(1, &[27_000, 28_000])).await.is_empty());
        assert!(sweep(&mut e, 57_999).await.is_empty());
        let resolved = sweep(&mut e, 58_000).await;
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        assert_eq!(
            (resolved[0].id.as_str(), resolved[0].count),
            (fired[0].id.as_str(), 5)
        );
    }

    #[tokio::test]
    async fn past_realert_an_unresolved_incident_realerts_under_its_id() {
        let mut e = engine("resolve_after: 5m\n");
        let fired = run(&mut e, &batch(0, &[0, 1_000, 2_000])).await;
        let again = run(&mut e, &batch(1, &[70_000, 71_000, 72_000])).await;
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!(again[0].id, fired[0].id);
        assert_eq!(
            (again[0].status.clone(), again[0].count),
            (AlertStatus::Firing, 6)
        );
    }

    #[tokio::test]
    async fn a_burst_after_the_resolution_is_a_new_incident() {
        let mut e = engine("");
        let first = run(&mut e, &batch(0, &[0, 1_000, 2_000])).await;
        // 40 s later, in one batch: the first incident resolves (at 22 s),
        // then the new burst opens another.
        let next = run(&mut e, &batch(1, &[40_000, 41_000, 42_000])).await;
        let got: Vec<(&str, &str)> = next
            .iter()
            .map(|a| (a.id.as_str(), a.status.as_str()))
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], (first[0].id.as_str(), "resolved"));
        assert_eq!(got[1].1, "firing");
        assert_ne!(got[1].0, first[0].id);
    }

    #[tokio::test]
    async fn notify_resolved_false_closes_the_incident_without_a_message() {
        let mut e = engine("notify_resolved: false\n");
        let first = run(&mut e, &batch(0, &[0, 1_000, 2_000])).await;
        assert_eq!(first.len(), 1);
        assert!(sweep(&mut e, 60_000).await.is_empty());
        // Closed all the same: a burst within the realert span is a new incident.
        let next = run(&mut e, &batch(1, &[30_000, 31_000, 32_000])).await;
        assert_eq!(next.len(), 1, "{next:?}");
        assert_eq!(next[0].status, AlertStatus::Firing);
        assert_ne!(next[0].id, first[0].id);
    }

    #[tokio::test]
    async fn no_resolution_goes_out_before_its_firing_was_delivered() {
        let mut e = engine("");
        let o = e.process(&batch(0, &[0, 1_000, 2_000])).await.unwrap();
        assert_eq!(o.alerts.len(), 1);
        // Not confirmed (the sink failed): the sweep holds the resolution back.
        assert!(e.sweep(T + 60_000).await.unwrap().alerts.is_empty());
        e.confirm(&[o.alerts[0].id.clone()]).await.unwrap();
        let resolved = sweep(&mut e, 60_000).await;
        assert_eq!(resolved.len(), 1);
        assert!(resolved[0].status.is_resolved());
    }

    #[tokio::test]
    async fn a_retried_batch_resends_an_unconfirmed_resolution_and_nothing_delivered() {
        let mut e = engine("");
        let first = run(&mut e, &batch(0, &[0, 1_000, 2_000])).await;
        let p = batch(1, &[40_000, 41_000, 42_000]);
        let o = e.process(&p).await.unwrap();
        assert_eq!(o.alerts.len(), 2, "{:?}", o.alerts);
        // Only the resolution was delivered: the retry sends the new firing only.
        e.confirm(&[first[0].id.clone()]).await.unwrap();
        let retry = e.process(&p).await.unwrap();
        let ids: Vec<(&str, &str)> = retry
            .alerts
            .iter()
            .map(|a| (a.id.as_str(), a.status.as_str()))
            .collect();
        assert_eq!(ids, [(o.alerts[1].id.as_str(), "firing")]);
        // Nothing delivered is sent again; a redelivery after a full
        // delivery sends nothing.
        e.confirm(&[o.alerts[1].id.clone()]).await.unwrap();
        assert!(e.process(&p).await.unwrap().alerts.is_empty());
    }

    #[tokio::test]
    async fn an_undelivered_sweep_resolution_goes_out_again_with_a_later_sweep_only() {
        let mut e = engine("");
        run(&mut e, &batch(0, &[0, 1_000, 2_000])).await;
        let r = e.sweep(T + 60_000).await.unwrap().alerts;
        assert_eq!(r.len(), 1);
        // Not confirmed (the sink failed). A sweep at the same time (another
        // container) or soon after must not send it again while in flight ...
        assert!(e.sweep(T + 60_000).await.unwrap().alerts.is_empty());
        assert!(
            e.sweep(T + 60_000 + SWEEP_RESEND_MS - 1)
                .await
                .unwrap()
                .alerts
                .is_empty()
        );
        // ... a sweep well after does, once confirmed never again.
        let again = sweep(&mut e, 60_000 + SWEEP_RESEND_MS).await;
        assert_eq!(again, r);
        assert!(sweep(&mut e, 3_600_000).await.is_empty());
    }

    #[tokio::test]
    async fn a_late_event_of_a_resolved_incident_does_not_swallow_the_next_burst() {
        let mut e = engine("");
        let first = run(&mut e, &batch(0, &[0, 1_000, 2_000])).await;
        assert_eq!(sweep(&mut e, 30_000).await.len(), 1, "resolved at 22 s");
        // A late event from before the resolution (another stream behind):
        // counted into the resolved incident, nothing sent.
        assert!(run(&mut e, &batch(1, &[21_000])).await.is_empty());
        // A burst right after the resolution time is a new incident.
        let next = run(&mut e, &batch(2, &[23_000, 24_000, 25_000])).await;
        assert_eq!(next.len(), 1, "{next:?}");
        assert_ne!(next[0].id, first[0].id);
        assert_eq!(next[0].status, AlertStatus::Firing);
    }

    #[tokio::test]
    async fn a_batch_redelivered_before_the_resolution_is_not_counted_twice() {
        let mut e = engine("");
        let p = batch(0, &[0, 1_000, 2_000, 3_000]);
        assert_eq!(run(&mut e, &p).await.len(), 1);
        // Lambda or Kinesis delivers the same batch again before the sweep.
        assert!(run(&mut e, &p).await.is_empty());
        let resolved = sweep(&mut e, 60_000).await;
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        assert_eq!(resolved[0].count, 4, "the redelivered events counted again");
    }

    #[test]
    fn per_kind_defaults_follow_the_kind() {
        let set = RuleSet::builtin().unwrap();
        let of = |id: &str| set.get(id).unwrap().resolve;
        assert_eq!(of("failed-auth-burst").after_ms, 120_000);
        assert_eq!(of("password-spraying").after_ms, 600_000);
        assert_eq!(of("invocation-spike").after_ms, 120_000);
        let timeout = set.get("invocation-timeout").unwrap();
        assert_eq!(timeout.resolve.after_ms, timeout.realert_ms);
        assert_eq!(of("duration-anomaly").clear_run, Some(5));
        assert_eq!(of("missing-end").clear_run, Some(1));
        assert_eq!(of("failed-auth-burst").clear_run, None);
        assert!(set.rules.iter().all(|r| r.resolve.notify));
        // An explicit resolve_after is quiet time only.
        let r = rules("resolve_after: 45s\n");
        assert_eq!(r.rules[0].resolve.after_ms, 45_000);
        assert_eq!(r.rules[0].resolve.clear_run, None);
    }
}
