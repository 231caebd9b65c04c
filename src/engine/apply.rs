//! Step 3: the state transitions of each observation, in event order.

use std::collections::BTreeMap;

use super::observe::{Obs, Observed};
use super::work::{BatchKeys, Work};
use super::{DAY_MS, Engine};
use crate::detect::baseline::Sample;
use crate::detect::leak::MemoryPoint;
use crate::detect::lifecycle::Started;
use crate::detect::rate::Sample as RateSample;
use crate::detect::{Detector, Finding, Key, function_name, stable_hash};
use crate::ingest::{LogEvent, Payload};
use crate::state::{self, StateStore};

/// The event an observation comes from, as every kind's transition needs it.
struct At<'a> {
    ev: &'a LogEvent<'a>,
    ts: i64,
    group: &'a str,
    stream: &'a str,
    bk: &'a BatchKeys,
}

impl At<'_> {
    /// The event's identity: the dedupe of a finding without a request id.
    fn hash(&self) -> u64 {
        let mut buf = itoa::Buffer::new();
        stable_hash(&[self.group, self.stream, &self.ev.id, buf.format(self.ts)])
    }

    /// A finding of this one event, without a key.
    fn finding(
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
            evidence: vec![self.ev.message.to_string()],
            metrics,
        }
    }

    /// A finding of this one event for `key`, without metrics.
    fn keyed_finding(&self, key: &Key, request_id: Option<&str>) -> Finding {
        let ids = request_id.iter().map(|r| r.to_string()).collect();
        let mut f = self.finding(1, ids, BTreeMap::new());
        f.key = key.clone();
        f
    }
}

impl<S: StateStore> Engine<S> {
    /// Apply one observation to the batch's state: windows, streams,
    /// baselines and rates move on, and findings open or fold incidents.
    pub(super) fn apply(&self, work: &mut Work, p: &Payload<'_>, bk: &BatchKeys, o: &Observed<'_>) {
        let ev = &p.log_events[o.event];
        let at = At {
            ev,
            ts: ev.timestamp,
            group: p.log_group.as_ref(),
            stream: p.log_stream.as_ref(),
            bk,
        };
        match &o.obs {
            Obs::LearnTimeout { ms } => {
                let f = work.function(&bk.function, at.ts + 30 * DAY_MS);
                f.timeout_ms = Some(f.timeout_ms.map_or(*ms, |t| t.max(*ms)));
            }
            Obs::Threshold {
                rule,
                key,
                unique,
                request_id,
            } => self.apply_threshold(work, &at, *rule, key, *unique, request_id.as_deref()),
            Obs::Distinct {
                rule,
                key,
                value,
                request_id,
            } => self.apply_distinct(work, &at, *rule, key, *value, request_id.as_deref()),
            Obs::Pattern {
                rule,
                key,
                request_id,
            } => {
                let f = at.keyed_finding(key, request_id.as_deref());
                self.record(work, *rule, at.group, f, at.hash());
            }
            Obs::Failure {
                rule,
                request_id,
                metrics,
            } => {
                let ids = request_id.iter().map(|r| r.to_string()).collect();
                let f = at.finding(1, ids, metrics.clone());
                let dedupe = request_id
                    .as_deref()
                    .map_or_else(|| at.hash(), |r| stable_hash(&["req", r]));
                self.record(work, *rule, at.group, f, dedupe);
            }
            Obs::Baseline {
                rule,
                request_id,
                sample,
            } => self.apply_baseline(work, &at, *rule, request_id, sample),
            Obs::RateStart { rule, request_id } => {
                self.apply_rate_start(work, &at, *rule, request_id)
            }
            Obs::RateReport {
                rule,
                billed_ms,
                memory_mb,
            } => self.apply_rate_report(work, &at, *rule, *billed_ms, *memory_mb),
            Obs::Leak {
                rule,
                request_id,
                point,
            } => self.apply_leak(work, &at, *rule, request_id, point),
            Obs::Start { rule, request_id } => self.apply_start(work, &at, *rule, request_id),
            Obs::End { rule, request_id } => self.apply_end(work, &at, *rule, request_id),
        }
    }

    /// While an incident of the rule for `key` is open, every further event
    /// folds into it instead of feeding the window (threshold, distinct).
    fn fold_into_open(
        &self,
        work: &mut Work,
        at: &At<'_>,
        rule: usize,
        key: &Key,
        request_id: Option<&str>,
    ) -> bool {
        let ikey = state::incident_key(&self.rules.rules[rule].id, at.group, key);
        if !work.open_incident(&ikey, at.ts) {
            return false;
        }
        let f = at.keyed_finding(key, request_id);
        self.record(work, rule, at.group, f, at.hash());
        true
    }

    /// A matching event counted in its key's window; a burst opens an incident.
    fn apply_threshold(
        &self,
        work: &mut Work,
        at: &At<'_>,
        rule: usize,
        key: &Key,
        unique: u64,
        request_id: Option<&str>,
    ) {
        let r = &self.rules.rules[rule];
        let Detector::Threshold(t) = &r.detector else {
            return;
        };
        if self.fold_into_open(work, at, rule, key, request_id) {
            return;
        }
        let wkey = state::window_key(&r.id, at.group, key);
        let win = work.window(&wkey, at.ts + t.window_ms);
        if let Some(burst) = t.apply(win, at.ts, at.hash(), unique, &at.ev.message, request_id) {
            let f = Finding {
                key: key.clone(),
                first_seen: burst.first_seen,
                last_seen: at.ts,
                count: burst.count,
                log_stream: at.stream.to_string(),
                request_ids: std::mem::take(&mut win.request_ids),
                evidence: std::mem::take(&mut win.samples),
                metrics: BTreeMap::from([("threshold".to_string(), t.threshold as f64)]),
            };
            self.record(work, rule, at.group, f, at.hash());
        }
    }

    /// A matching event's value counted in its key's window; enough distinct
    /// values open an incident.
    fn apply_distinct(
        &self,
        work: &mut Work,
        at: &At<'_>,
        rule: usize,
        key: &Key,
        value: u64,
        request_id: Option<&str>,
    ) {
        let r = &self.rules.rules[rule];
        let Detector::Distinct(d) = &r.detector else {
            return;
        };
        if self.fold_into_open(work, at, rule, key, request_id) {
            return;
        }
        let wkey = state::window_key(&r.id, at.group, key);
        let st = work.distinct(&wkey, at.ts + d.window_ms);
        if let Some(spread) = d.apply(st, at.ts, value, &at.ev.message, request_id) {
            let f = Finding {
                key: key.clone(),
                first_seen: spread.first_seen,
                last_seen: at.ts,
                count: spread.distinct,
                log_stream: at.stream.to_string(),
                request_ids: std::mem::take(&mut st.request_ids),
                evidence: std::mem::take(&mut st.samples),
                metrics: BTreeMap::from([
                    (format!("distinct_{}", d.field), spread.distinct as f64),
                    ("threshold".to_string(), d.threshold as f64),
                ]),
            };
            self.record(work, rule, at.group, f, at.hash());
        }
    }

    /// A successful invocation judged against the function's baseline.
    fn apply_baseline(
        &self,
        work: &mut Work,
        at: &At<'_>,
        rule: usize,
        request_id: &str,
        sample: &Sample,
    ) {
        let Detector::Baseline(b) = &self.rules.rules[rule].detector else {
            return;
        };
        let timeout = function_name(at.group)
            .and_then(|f| b.function_timeouts.get(f).copied())
            .or_else(|| work.learned_timeout(&at.bk.function));
        let st = work.baseline(&at.bk.baseline[rule], at.ts + 30 * DAY_MS);
        let rh = stable_hash(&["req", request_id]);
        if let Some(metrics) = b.apply(st, rh, sample, timeout) {
            let f = at.finding(1, vec![request_id.to_string()], metrics);
            self.record(work, rule, at.group, f, rh);
        }
    }

    /// A START counted in the function's rate; complete buckets are judged.
    fn apply_rate_start(&self, work: &mut Work, at: &At<'_>, rule: usize, request_id: &str) {
        let Detector::Rate(rt) = &self.rules.rules[rule].detector else {
            return;
        };
        let key = &at.bk.rate[rule];
        let st = work.rate(key, at.ts + 30 * DAY_MS);
        rt.start(st, at.ts, stable_hash(&["req", request_id]), || {
            RateSample {
                log_stream: at.stream.to_string(),
                line: at.ev.message.to_string(),
            }
        });
        self.close_rate(work, rule, at.group, key, None);
    }

    /// A REPORT's billed time and memory added to the function's rate.
    fn apply_rate_report(
        &self,
        work: &mut Work,
        at: &At<'_>,
        rule: usize,
        billed_ms: Option<u64>,
        memory_mb: Option<u32>,
    ) {
        let Detector::Rate(rt) = &self.rules.rules[rule].detector else {
            return;
        };
        let key = &at.bk.rate[rule];
        rt.report(
            work.rate(key, at.ts + 30 * DAY_MS),
            at.ts,
            billed_ms,
            memory_mb,
        );
        self.close_rate(work, rule, at.group, key, None);
    }

    /// A warm invocation's memory added to its execution environment's trend.
    fn apply_leak(
        &self,
        work: &mut Work,
        at: &At<'_>,
        rule: usize,
        request_id: &str,
        point: &MemoryPoint,
    ) {
        let Detector::Leak(l) = &self.rules.rules[rule].detector else {
            return;
        };
        // An execution environment lives hours at most.
        let st = work.leak(&at.bk.leak[rule], at.ts + DAY_MS / 4);
        let rh = stable_hash(&["req", request_id]);
        if let Some(metrics) = l.apply(st, rh, point) {
            let f = at.finding(1, vec![request_id.to_string()], metrics);
            self.record(work, rule, at.group, f, rh);
        }
    }

    /// A START opens an invocation in its stream (unless the stream is full).
    fn apply_start(&self, work: &mut Work, at: &At<'_>, rule: usize, request_id: &str) {
        let Detector::Lifecycle(l) = &self.rules.rules[rule].detector else {
            return;
        };
        let max = l.max_duration(
            function_name(at.group),
            work.learned_timeout(&at.bk.function),
        );
        let st = work.stream(&at.bk.stream[rule], at.ts + max + l.grace_ms + 3_600_000);
        if l.start(st, request_id, at.ts, &at.ev.message) == Started::Dropped {
            work.open_dropped += 1;
        }
    }

    /// An END, RUNTIME_DONE or REPORT closes its invocation.
    fn apply_end(&self, work: &mut Work, at: &At<'_>, rule: usize, request_id: &str) {
        let Detector::Lifecycle(l) = &self.rules.rules[rule].detector else {
            return;
        };
        let st = work.stream(&at.bk.stream[rule], at.ts + l.grace_ms + 3_600_000);
        l.end(st, request_id);
    }
}
