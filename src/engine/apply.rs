//! Step 3: the state transitions of each observation, in event order.

use std::collections::BTreeMap;

use super::observe::{Obs, Observed};
use super::work::{BatchKeys, Work};
use super::{DAY_MS, Engine};
use crate::detect::lifecycle::Started;
use crate::detect::rate::Sample as RateSample;
use crate::detect::{Detector, Finding, Key, function_name, stable_hash};
use crate::ingest::{LogEvent, Payload};
use crate::state::{self, StateStore};

impl<S: StateStore> Engine<S> {
    /// Apply one observation to the batch's state: windows, streams,
    /// baselines and rates move on, and findings open or fold incidents.
    pub(super) fn apply(&self, work: &mut Work, p: &Payload<'_>, bk: &BatchKeys, o: &Observed<'_>) {
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
}
