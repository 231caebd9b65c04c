//! `baseline` with `metric: memory_trend`: a memory leak within one
//! execution environment (one log stream).
//!
//! An execution environment runs invocations one at a time and keeps its
//! process between them, so memory a handler never frees shows as `Max Memory
//! Used` rising from one warm invocation to the next. Per log stream the last
//! `points` warm values are kept (cold starts, which include the init phase,
//! are not); from `min_points` on, a least-squares line through them is
//! judged. It is a leak when the slope is positive, the rise is steady (and
//! not one jump: no step makes more than half of it) and the projection
//! reaches the memory size within `horizon` invocations.
//!
//! Steadiness (`monotonicity`) is the net rise over the window divided by the
//! sum of every step up: 1.0 for memory that never goes down, about 0 for a
//! sawtooth whose garbage collections give back what it took. A new log
//! stream (a new environment) starts over, and a change of memory size (a new
//! configuration) does too.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::Cx;
use super::key::Space;
use super::kind::DAY_MS;
use super::{At, Detect, Detector, Line, Matching, Scope, StateKey, Summary, stable_hash};
use crate::platform::{Record, Report, Status};

/// No single step may make more than this share of the rise.
const MAX_JUMP_SHARE: f64 = 0.5;

/// Points kept per stream at most, whatever the rule says.
pub const MAX_POINTS: usize = 100;

/// Configuration of a memory-trend rule.
#[derive(Debug, Clone)]
pub struct Leak {
    /// Warm invocations kept and fitted per stream.
    pub points: usize,
    /// Invocations needed before a stream is judged.
    pub min_points: usize,
    /// Minimum steadiness of the rise (see the module docs), in (0, 1].
    pub monotonicity: f64,
    /// The projected invocations to reach the memory size must be at most this.
    pub horizon: f64,
}

/// What is known about one log stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeakState {
    /// `Max Memory Used` of the last warm invocations, oldest first.
    pub used_mb: Vec<u32>,
    /// Event time of each.
    pub at: Vec<i64>,
    /// Hashes of the request ids of each, so a redelivered REPORT counts once.
    pub seen: Vec<u64>,
    /// Memory size the points were taken at.
    pub memory_size_mb: Option<u32>,
}

/// One REPORT as the leak detector sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryPoint {
    /// Event time.
    pub ts: i64,
    /// `Max Memory Used` in MB.
    pub used_mb: u32,
    /// `Memory Size` in MB.
    pub memory_size_mb: u32,
    /// The invocation was a cold start (`Init Duration` present).
    pub cold: bool,
}

impl Leak {
    /// Add one invocation to its stream and judge the stream. Returns the
    /// metrics explaining a leak.
    pub fn apply(
        &self,
        st: &mut LeakState,
        request_hash: u64,
        p: &MemoryPoint,
    ) -> Option<BTreeMap<String, f64>> {
        if p.cold || st.seen.contains(&request_hash) {
            return None;
        }
        if st.memory_size_mb != Some(p.memory_size_mb) {
            *st = LeakState {
                memory_size_mb: Some(p.memory_size_mb),
                ..LeakState::default()
            };
        }
        st.used_mb.push(p.used_mb);
        st.at.push(p.ts);
        st.seen.push(request_hash);
        let keep = self.points.clamp(2, MAX_POINTS);
        if st.used_mb.len() > keep {
            let drop = st.used_mb.len() - keep;
            st.used_mb.drain(..drop);
            st.at.drain(..drop);
            st.seen.drain(..drop);
        }
        if st.used_mb.len() < self.min_points.max(2) {
            return None;
        }
        let ys: Vec<f64> = st.used_mb.iter().map(|v| f64::from(*v)).collect();
        let slope = slope(&ys);
        let (up, net, jump) = ys
            .windows(2)
            .fold((0.0, 0.0, 0.0_f64), |(up, net, jump), w| {
                let d = w[1] - w[0];
                (up + d.max(0.0), net + d, jump.max(d))
            });
        // A rise that one step makes is a large input (memory-anomaly's
        // case), not memory piling up invocation after invocation.
        if slope <= 0.0 || up <= 0.0 || net / up < self.monotonicity || jump > MAX_JUMP_SHARE * net
        {
            return None;
        }
        let size = f64::from(p.memory_size_mb);
        let current = f64::from(p.used_mb);
        let to_limit = ((size - current) / slope).max(0.0);
        if to_limit > self.horizon {
            return None;
        }
        let mut m = BTreeMap::from([
            ("slope_mb_per_invocation".to_string(), round2(slope)),
            ("current_mb".to_string(), current),
            ("memory_size_mb".to_string(), size),
            ("invocations_to_limit".to_string(), to_limit.ceil()),
            ("monotonicity".to_string(), round2(net / up)),
        ]);
        if let (Some(first), Some(last)) = (st.at.first(), st.at.last())
            && st.at.len() > 1
            && last > first
        {
            let per_invocation = (last - first) as f64 / (st.at.len() - 1) as f64;
            m.insert(
                "minutes_to_limit".into(),
                round2(to_limit * per_invocation / 60_000.0),
            );
        }
        Some(m)
    }
}

/// Memory points of one execution environment: `l|<rule>|<group>|<stream>`.
const TRENDS: Space = Space::with_tail("l");

/// A successful REPORT's memory, with its request id.
pub struct Point<'a> {
    /// Request id.
    pub request_id: Cow<'a, str>,
    /// The point.
    pub point: MemoryPoint,
}

impl Detect for Leak {
    type Obs<'a> = Point<'a>;

    /// A successful REPORT's memory: one point of its environment's trend.
    fn observe<'p>(
        &self,
        line: &Line<'p, '_>,
        _: &mut Matching<'_>,
        out: &mut impl FnMut(Point<'p>),
    ) {
        if let Record::Report(Report {
            request_id,
            status: Status::Success,
            max_memory_used_mb: Some(used),
            memory_size_mb: Some(size),
            init_duration_ms,
            restore_duration_ms,
            ..
        }) = line.rec
        {
            out(Point {
                request_id: request_id.clone(),
                point: MemoryPoint {
                    ts: line.ts,
                    used_mb: *used,
                    memory_size_mb: *size,
                    cold: init_duration_ms.is_some() || restore_duration_ms.is_some(),
                },
            });
        }
    }

    fn batch_key(&self, rule: &str, group: &str, stream: &str) -> Option<StateKey> {
        Some(TRENDS.stream_key(rule, group, stream))
    }

    /// A warm invocation's memory added to its execution environment's trend.
    fn apply<S: Scope>(&self, o: &Point<'_>, at: &At<'_>, scope: &mut S) {
        let Some(key) = at.batch_key else { return };
        // An execution environment lives hours at most.
        let st: &mut LeakState = scope.state(key, at.ts + DAY_MS / 4);
        let rh = stable_hash(&["req", &o.request_id]);
        if let Some(metrics) = self.apply(st, rh, &o.point) {
            let f = at.finding(1, vec![o.request_id.to_string()], metrics);
            scope.record(at.group, f, rh);
        }
    }

    /// How fast memory rises and when it runs out.
    fn what(&self, s: &Summary<'_>) -> String {
        format!(
            "Memory of one {} execution environment rose {:.1} MB per invocation to {:.0} MB of {:.0} MB; at this pace it runs out of memory in about {:.0} invocation(s) ({} report(s) {}).",
            s.place,
            s.metric("slope_mb_per_invocation"),
            s.metric("current_mb"),
            s.metric("memory_size_mb"),
            s.metric("invocations_to_limit"),
            s.count,
            s.span
        )
    }
}

/// Least-squares slope of `ys` against 0, 1, 2, …
fn slope(ys: &[f64]) -> f64 {
    let n = ys.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
    }
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The fields of a `baseline` rule with `metric: memory_trend`, as written
/// (read by [`super::baseline::Config`], which owns the kind).
#[derive(Debug)]
pub struct Config {
    /// `points`.
    pub points: Option<usize>,
    /// `min_points`.
    pub min_points: Option<usize>,
    /// `monotonicity`.
    pub monotonicity: Option<f64>,
    /// `horizon`.
    pub horizon: Option<f64>,
}

impl Config {
    /// The leak detector; problems are reported to `cx`.
    pub fn compile(self, cx: &mut Cx<'_>) -> Option<Detector> {
        let points = self.points.unwrap_or(20);
        if !(2..=MAX_POINTS).contains(&points) {
            cx.err(
                "points:",
                format!("`points` must be between 2 and {MAX_POINTS}"),
            );
        }
        let min_points = self.min_points.unwrap_or(10);
        if !(2..=points).contains(&min_points) {
            cx.err("min_points:", "`min_points` must be between 2 and `points`");
        }
        let monotonicity = self.monotonicity.unwrap_or(0.8);
        if !(monotonicity > 0.0 && monotonicity <= 1.0) {
            cx.err("monotonicity:", "`monotonicity` must be in (0, 1]");
        }
        let horizon = self.horizon.unwrap_or(1_000.0);
        if !(horizon > 0.0 && horizon.is_finite()) {
            cx.err("horizon:", "`horizon` must be a number of invocations > 0");
        }
        Some(Detector::Leak(Leak {
            points,
            min_points,
            monotonicity,
            horizon,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule() -> Leak {
        Leak {
            points: 20,
            min_points: 10,
            monotonicity: 0.8,
            horizon: 1_000.0,
        }
    }

    fn pt(i: i64, used: u32) -> MemoryPoint {
        MemoryPoint {
            ts: i * 10_000,
            used_mb: used,
            memory_size_mb: 512,
            cold: false,
        }
    }

    /// Feed `used` as invocations 0, 1, …; returns the first alert's index and metrics.
    fn feed(r: &Leak, st: &mut LeakState, used: &[u32]) -> Option<(usize, BTreeMap<String, f64>)> {
        used.iter()
            .enumerate()
            .find_map(|(i, u)| r.apply(st, i as u64, &pt(i as i64, *u)).map(|m| (i, m)))
    }

    #[test]
    fn a_steady_rise_fires_after_min_points_with_a_projection() {
        let r = rule();
        let mut st = LeakState::default();
        // 8 MB per invocation from 100 MB, with a flat step now and then.
        let used: Vec<u32> = (0..30)
            .map(|i| 100 + 8 * i - if i % 4 == 0 { 3 } else { 0 })
            .collect();
        let (at, m) = feed(&r, &mut st, &used).unwrap();
        assert_eq!(at, 9, "judged from the tenth invocation on");
        assert!((7.0..9.0).contains(&m["slope_mb_per_invocation"]), "{m:?}");
        assert_eq!(m["current_mb"], f64::from(used[9]));
        assert_eq!(m["memory_size_mb"], 512.0);
        let want = ((512.0 - f64::from(used[9])) / m["slope_mb_per_invocation"]).ceil();
        assert!((m["invocations_to_limit"] - want).abs() <= 1.0, "{m:?}");
        assert!(m["minutes_to_limit"] > 0.0);
    }

    #[test]
    fn a_gc_sawtooth_and_jitter_stay_silent() {
        let r = rule();
        let mut st = LeakState::default();
        // Up 20 MB a call, collected every fifth call.
        let saw: Vec<u32> = (0..60).map(|i| 150 + 20 * (i % 5)).collect();
        assert!(feed(&r, &mut st, &saw).is_none());
        let mut st = LeakState::default();
        let jitter: Vec<u32> = (0..60).map(|i| 200 + ((i * 7919) % 41) as u32).collect();
        assert!(feed(&r, &mut st, &jitter).is_none());
    }

    #[test]
    fn one_jump_is_not_a_leak() {
        let r = rule();
        let mut st = LeakState::default();
        // Flat with small wobble, then one large input: memory-anomaly's case.
        let mut used: Vec<u32> = (0..22).map(|i| 90 + (i % 4)).collect();
        used.extend([231, 240]);
        assert!(feed(&r, &mut st, &used).is_none());
    }

    #[test]
    fn a_slow_rise_far_from_the_limit_stays_silent() {
        let r = rule();
        let mut st = LeakState::default();
        // 0.2 MB per invocation: ~2000 invocations to go, beyond the horizon.
        let slow: Vec<u32> = (0..40).map(|i| 100 + i / 5).collect();
        assert!(feed(&r, &mut st, &slow).is_none());
    }

    #[test]
    fn points_are_bounded_cold_starts_skipped_and_size_changes_start_over() {
        let r = rule();
        let mut st = LeakState::default();
        let cold = MemoryPoint {
            cold: true,
            ..pt(0, 400)
        };
        assert!(r.apply(&mut st, 1_000, &cold).is_none());
        assert!(st.used_mb.is_empty(), "cold starts are not points");
        for i in 0..50 {
            r.apply(&mut st, i, &pt(i as i64, 100));
        }
        assert_eq!(st.used_mb.len(), 20);
        assert_eq!(st.seen.len(), 20);
        assert!(r.apply(&mut st, 49, &pt(49, 500)).is_none(), "redelivery");
        assert_eq!(st.used_mb.len(), 20);
        let bigger = MemoryPoint {
            memory_size_mb: 1024,
            ..pt(60, 100)
        };
        r.apply(&mut st, 60, &bigger);
        assert_eq!(st.used_mb, vec![100]);
    }

    #[test]
    fn state_round_trips_as_stored_json() {
        let r = rule();
        let mut st = LeakState::default();
        feed(&r, &mut st, &[100, 104, 108]);
        let v = crate::state::StateValue::Kind(crate::detect::KindState::Leak(st));
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.starts_with(r#"{"type":"leak""#), "{text}");
        assert_eq!(
            serde_json::from_str::<crate::state::StateValue>(&text).unwrap(),
            v
        );
    }
}
