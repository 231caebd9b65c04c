//! `baseline`: a function's duration or memory against what it usually does.
//!
//! The typical value and its spread are exponentially weighted (alpha = 1/n
//! during warm-up, then 0.05), learned only from successful invocations that
//! were not flagged, so an attack does not teach the baseline to accept it.
//! A value is anomalous when it is at least `factor` × typical *and* more than
//! `sigmas` spreads above it (jitter of ±20 % and single 1.5× blips stay
//! silent), or, without warm-up, when it comes within `timeout_fraction` of the
//! function's known timeout (duration) or `memory_fraction` of its memory size.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::{Cx, KindConfig};
use super::key::Space;
use super::kind::DAY_MS;
use super::{
    At, Detect, Detector, Key, Line, Matching, Scope, StateKey, Summary, function_name, leak,
    stable_hash,
};
use crate::platform::{Record, Status};

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
/// Normal invocations in a row that resolve an anomaly.
const NORMAL_RUN: u32 = 5;
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

/// Baselines: `b|<rule>|<group>`.
const BASELINES: Space = Space::per_group("b");

/// A successful invocation's request id and figures.
pub struct Invocation<'a> {
    /// Request id.
    pub request_id: Cow<'a, str>,
    /// Its duration and memory.
    pub sample: Sample,
}

impl Detect for Baseline {
    type Obs<'a> = Invocation<'a>;

    /// A successful invocation's duration and memory, a baseline's sample.
    fn observe<'p>(
        &self,
        line: &Line<'p, '_>,
        _: &mut Matching<'_>,
        out: &mut impl FnMut(Invocation<'p>),
    ) {
        if let Record::Report(r) = line.rec
            && r.status == Status::Success
            && r.duration_ms > 0.0
        {
            out(Invocation {
                request_id: r.request_id.clone(),
                sample: Sample {
                    duration_ms: r.duration_ms,
                    max_memory_used_mb: r.max_memory_used_mb,
                    memory_size_mb: r.memory_size_mb,
                },
            });
        }
    }

    fn batch_key(&self, rule: &str, group: &str, _stream: &str) -> Option<StateKey> {
        Some(BASELINES.key(rule, group))
    }

    /// A successful invocation judged against the function's baseline.
    fn apply<S: Scope>(&self, o: &Invocation<'_>, at: &At<'_>, scope: &mut S) {
        let Some(key) = at.batch_key else { return };
        let timeout = function_name(at.group)
            .and_then(|f| self.function_timeouts.get(f).copied())
            .or_else(|| scope.learned_timeout(at.group));
        let st: &mut BaselineState = scope.state(key, at.ts + 30 * DAY_MS);
        let rh = stable_hash(&["req", &o.request_id]);
        match self.apply(st, rh, &o.sample, timeout) {
            Some(metrics) => {
                let f = at.finding(1, vec![o.request_id.to_string()], metrics);
                scope.record(at.group, f, rh);
            }
            None => scope.clear(at.group, &Key::new(), None, at.ts),
        }
    }

    /// A run of normal invocations resolves an anomaly (a function that
    /// stops being invoked resolves after the realert span).
    fn clear_run(&self) -> Option<u32> {
        Some(NORMAL_RUN)
    }

    /// How far the duration or memory is from the typical.
    fn what(&self, s: &Summary<'_>) -> String {
        let (m, place, span, count) = (s.metrics, s.place, s.span, s.count);
        match (
            m.get("duration_ms"),
            m.get("baseline_ms"),
            m.get("max_memory_used_mb"),
        ) {
            (Some(x), Some(b), _) if *b > 0.0 => format!(
                "{place} ran {x:.0} ms against a typical {b:.0} ms ({:.1}×), {count} time(s) {span}.",
                x / b,
            ),
            (Some(x), _, _) => {
                format!("{place} ran {x:.0} ms, close to its timeout, {count} time(s) {span}.")
            }
            (_, _, Some(used)) => format!(
                "{place} used {used:.0} MB of {:.0} MB, {count} time(s) {span}.",
                s.metric("memory_size_mb"),
            ),
            _ => format!("{count} anomalous invocation(s) of {place} {span}."),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `metric:` of a baseline rule: the learned per-function baselines, or the
/// per-stream memory trend (a leak), which compiles to its own detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawMetric {
    Duration,
    Memory,
    MemoryTrend,
}

/// A baseline rule with `metric: memory_trend`, in error messages.
const TREND: &str = "kind baseline with metric memory_trend";

/// The fields of a `baseline` rule, as written; `metric: memory_trend` takes
/// the fields of [`leak::Config`] instead of the learned baseline's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    metric: Option<RawMetric>,
    warmup: Option<u64>,
    factor: Option<f64>,
    sigmas: Option<f64>,
    timeout_fraction: Option<f64>,
    memory_fraction: Option<f64>,
    function_timeouts: Option<BTreeMap<String, String>>,
    points: Option<usize>,
    min_points: Option<usize>,
    monotonicity: Option<f64>,
    horizon: Option<f64>,
}

impl Config {
    /// Fields of the other metric: the trend's on a learned baseline, the
    /// learned baseline's on a trend.
    fn reject_other_metric(&self, cx: &mut Cx<'_>) {
        let trend = self.metric == Some(RawMetric::MemoryTrend);
        let fields = [
            ("points", self.points.is_some(), trend),
            ("min_points", self.min_points.is_some(), trend),
            ("monotonicity", self.monotonicity.is_some(), trend),
            ("horizon", self.horizon.is_some(), trend),
            // The learned baseline's fields mean nothing to a trend.
            ("warmup", trend && self.warmup.is_some(), false),
            ("factor", trend && self.factor.is_some(), false),
            ("sigmas", trend && self.sigmas.is_some(), false),
            (
                "timeout_fraction",
                trend && self.timeout_fraction.is_some(),
                false,
            ),
            (
                "memory_fraction",
                trend && self.memory_fraction.is_some(),
                false,
            ),
            (
                "function_timeouts",
                trend && self.function_timeouts.is_some(),
                false,
            ),
        ];
        let what = if trend { TREND } else { "kind baseline" };
        for (name, is_set, applies) in fields {
            if is_set && !applies {
                cx.err(
                    &format!("{name}:"),
                    format!("`{name}` does not apply to {what}"),
                );
            }
        }
    }
}

impl KindConfig for Config {
    fn mode(&self) -> Option<&'static str> {
        (self.metric == Some(RawMetric::MemoryTrend)).then_some(TREND)
    }

    fn compile(self, cx: &mut Cx<'_>) -> Option<Detector> {
        self.reject_other_metric(cx);
        let Some(raw_metric) = self.metric else {
            cx.needs(
                "metric",
                "kind:",
                "a baseline rule needs `metric:` (duration, memory or memory_trend)",
            );
            return None;
        };
        let metric = match raw_metric {
            RawMetric::Duration => Metric::Duration,
            RawMetric::Memory => Metric::Memory,
            RawMetric::MemoryTrend => {
                return leak::Config {
                    points: self.points,
                    min_points: self.min_points,
                    monotonicity: self.monotonicity,
                    horizon: self.horizon,
                }
                .compile(cx);
            }
        };
        let fraction = |cx: &mut Cx<'_>, name: &str, v: Option<f64>, d: f64| {
            let v = v.unwrap_or(d);
            if !(v > 0.0 && v <= 1.0) {
                cx.err(&format!("{name}:"), format!("`{name}` must be in (0, 1]"));
            }
            v
        };
        let timeout_fraction = fraction(cx, "timeout_fraction", self.timeout_fraction, 0.9);
        let memory_fraction = fraction(cx, "memory_fraction", self.memory_fraction, 0.9);
        let factor = self.factor.unwrap_or(match metric {
            Metric::Duration => 3.0,
            Metric::Memory => 2.0,
        });
        if !(factor > 1.0 && factor.is_finite()) {
            cx.err("factor:", "`factor` must be greater than 1");
        }
        let sigmas = self.sigmas.unwrap_or(4.0);
        if !(sigmas >= 0.0 && sigmas.is_finite()) {
            cx.err("sigmas:", "`sigmas` must be ≥ 0");
        }
        Some(Detector::Baseline(Baseline {
            metric,
            warmup: self.warmup.unwrap_or(20),
            factor,
            sigmas,
            timeout_fraction,
            memory_fraction,
            function_timeouts: cx.function_timeouts(self.function_timeouts.as_ref()),
        }))
    }
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
