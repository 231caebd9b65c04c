//! `baseline`: a function's duration or memory against what it usually does.
//!
//! The typical value and its spread are exponentially weighted (alpha = 1/n
//! during warm-up, then 0.05), learned only from successful invocations that
//! were not flagged, so an attack does not teach the baseline to accept it.
//! A value is anomalous when it is at least `factor` × typical *and* more than
//! `sigmas` spreads above it (jitter of ±20 % and single 1.5× blips stay
//! silent), or, without warm-up, when it comes within `timeout_fraction` of the
//! function's known timeout (duration) or `memory_fraction` of its memory size.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a baseline rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// REPORT `Duration`.
    Duration,
    /// REPORT `Max Memory Used`.
    Memory,
}

/// Configuration of a baseline rule.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// What is watched.
    pub metric: Metric,
    /// Invocations learned before the ratio test applies.
    pub warmup: u64,
    /// Minimum ratio to the typical value.
    pub factor: f64,
    /// Minimum distance above typical, in spreads.
    pub sigmas: f64,
    /// Duration at or above this fraction of the known timeout is anomalous.
    pub timeout_fraction: f64,
    /// Memory at or above this fraction of the memory size is anomalous.
    pub memory_fraction: f64,
    /// Known timeouts per function name.
    pub function_timeouts: BTreeMap<String, i64>,
}

/// What has been learned about one function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineState {
    /// Invocations learned from.
    pub n: u64,
    /// Typical value (EWMA).
    pub mean: f64,
    /// Spread (EWMA of absolute deviation).
    pub dev: f64,
    /// Hashes of recently seen request ids, so a redelivered REPORT is not learned twice.
    pub recent: Vec<u64>,
}

/// The numbers of one REPORT that a baseline needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Duration in ms.
    pub duration_ms: f64,
    /// Max memory used in MB.
    pub max_memory_used_mb: Option<u32>,
    /// Memory size in MB.
    pub memory_size_mb: Option<u32>,
}

const RECENT_KEPT: usize = 64;
const ALPHA: f64 = 0.05;

impl Baseline {
    /// Judge one successful invocation and learn from it unless it is
    /// anomalous. Returns the metrics explaining an anomaly.
    pub fn apply(
        &self,
        st: &mut BaselineState,
        request_hash: u64,
        s: &Sample,
        timeout_ms: Option<i64>,
    ) -> Option<BTreeMap<String, f64>> {
        if st.recent.contains(&request_hash) {
            return None;
        }
        if st.recent.len() >= RECENT_KEPT {
            st.recent.remove(0);
        }
        st.recent.push(request_hash);
        let (x, limit) = match self.metric {
            Metric::Duration => (
                s.duration_ms,
                timeout_ms.map(|t| t as f64 * self.timeout_fraction),
            ),
            Metric::Memory => (
                f64::from(s.max_memory_used_mb?),
                s.memory_size_mb
                    .map(|m| f64::from(m) * self.memory_fraction),
            ),
        };
        let warm = st.n >= self.warmup && st.mean > 0.0;
        let spread = st.dev.max(0.05 * st.mean);
        let ratio_anomaly =
            warm && x >= self.factor * st.mean && x >= st.mean + self.sigmas * spread;
        let limit_anomaly = limit.is_some_and(|l| x >= l);
        if ratio_anomaly || limit_anomaly {
            let mut m = BTreeMap::new();
            match self.metric {
                Metric::Duration => {
                    m.insert("duration_ms".into(), round2(x));
                    if warm {
                        m.insert("baseline_ms".into(), round2(st.mean));
                    }
                    if let Some(t) = timeout_ms {
                        m.insert("timeout_ms".into(), t as f64);
                    }
                }
                Metric::Memory => {
                    m.insert("max_memory_used_mb".into(), x);
                    if let Some(size) = s.memory_size_mb {
                        m.insert("memory_size_mb".into(), f64::from(size));
                    }
                    if warm {
                        m.insert("baseline_mb".into(), round2(st.mean));
                    }
                }
            }
            return Some(m);
        }
        st.n += 1;
        let alpha = (1.0 / st.n as f64).max(ALPHA);
        let delta = x - st.mean;
        st.mean += alpha * delta;
        st.dev += alpha * (delta.abs() - st.dev);
        None
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule(metric: Metric) -> Baseline {
        Baseline {
            metric,
            warmup: 20,
            factor: if metric == Metric::Duration { 3.0 } else { 2.0 },
            sigmas: 4.0,
            timeout_fraction: 0.9,
            memory_fraction: 0.9,
            function_timeouts: BTreeMap::new(),
        }
    }

    fn dur(d: f64) -> Sample {
        Sample {
            duration_ms: d,
            max_memory_used_mb: Some(60),
            memory_size_mb: Some(256),
        }
    }

    /// Deterministic ±20 % jitter around `base`.
    fn jitter(i: u64, base: f64) -> f64 {
        base * (0.8 + 0.4 * ((i * 7919) % 101) as f64 / 100.0)
    }

    #[test]
    fn jitter_and_a_single_blip_stay_silent() {
        let r = rule(Metric::Duration);
        let mut st = BaselineState::default();
        for i in 0..200 {
            assert!(
                r.apply(&mut st, i, &dur(jitter(i, 3_000.0)), None)
                    .is_none(),
                "at {i}"
            );
        }
        assert!(r.apply(&mut st, 1_000, &dur(4_500.0), None).is_none());
    }

    #[test]
    fn ten_times_slower_fires_after_warmup_and_does_not_poison() {
        let r = rule(Metric::Duration);
        let mut st = BaselineState::default();
        assert!(r.apply(&mut st, 0, &dur(3_000.0), None).is_none());
        assert!(
            r.apply(&mut st, 1, &dur(30_000.0), None).is_none(),
            "no alert during warm-up"
        );
        let mut st = BaselineState::default();
        for i in 0..30 {
            r.apply(&mut st, i, &dur(jitter(i, 3_000.0)), None);
        }
        let before = st.mean;
        for i in 100..110 {
            let m = r.apply(&mut st, i, &dur(30_000.0), None).unwrap();
            assert_eq!(m["duration_ms"], 30_000.0);
        }
        assert_eq!(st.mean, before, "anomalies are not learned");
    }

    #[test]
    fn near_timeout_fires_without_warmup() {
        let r = rule(Metric::Duration);
        let mut st = BaselineState::default();
        let m = r.apply(&mut st, 1, &dur(2_800.0), Some(3_000)).unwrap();
        assert_eq!(m["timeout_ms"], 3_000.0);
    }

    #[test]
    fn memory_near_size_fires_and_redelivery_is_ignored() {
        let r = rule(Metric::Memory);
        let mut st = BaselineState::default();
        let s = Sample {
            duration_ms: 1.0,
            max_memory_used_mb: Some(240),
            memory_size_mb: Some(256),
        };
        assert!(r.apply(&mut st, 9, &s, None).is_some());
        assert!(
            r.apply(&mut st, 9, &s, None).is_none(),
            "same request again"
        );
    }
}
