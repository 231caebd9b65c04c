//! `threshold`: at least N matching events per key within a sliding window of
//! event time (failed-auth bursts).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::config::{Cx, KindConfig, RawMatcher, check_field_names, compile_matchers};
use super::key::WINDOWS;
use super::kind::fold_into_open;
use super::{At, Detect, Detector, Finding, Key, Line, Matching, Scope, StateKey, Summary};
use crate::detect::matcher::{Fields, Matcher, field};

/// Configuration of a threshold rule.
#[derive(Debug, Clone)]
pub struct Threshold {
    /// Matchers; the first that matches wins.
    pub matchers: Vec<Matcher>,
    /// Fields forming the key; an event lacking one is not counted.
    pub group_by: Vec<String>,
    /// Events needed within the window.
    pub threshold: usize,
    /// Window length in milliseconds.
    pub window_ms: i64,
    /// Events with equal values of these fields within the window count once
    /// (sshd logs `Invalid user` and `Failed password` for one attempt).
    pub unique: Vec<String>,
    /// Lines that announce an attempt another line reports again, if set.
    pub attempt: Option<Attempt>,
}

/// Announcing lines kept per key ([`WindowState::announced`]).
pub const MAX_ANNOUNCED: usize = 256;

/// `attempt:` — sshd logs `Invalid user X` and PAM's `authentication
/// failure` *before* the `Failed password` line of the same attempt, from the
/// same process. An announcing line counts; the next reporting line of the
/// same connection (equal `join` fields) is then the same attempt and does not;
/// further reporting lines (one per password tried) count. Announcing lines of
/// one connection within one second are one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// A line that captures this field announces an attempt.
    pub announced_by: String,
    /// Fields naming the connection (e.g. `host`, `pid`); a line with none of
    /// them joins nothing and counts as usual.
    pub join: Vec<String>,
}

/// The fields of `attempt:`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttempt {
    announced_by: String,
    join: Vec<String>,
}

/// Recent events of one key: at most `threshold` of them are kept, which is all
/// the sliding-window test needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    /// `(time, event hash, unique-fields hash)`, sorted by time.
    pub events: Vec<(i64, u64, u64)>,
    /// Up to five recent lines, for evidence.
    pub samples: Vec<String>,
    /// Request ids of recent events.
    pub request_ids: Vec<String>,
    /// `(time, connection hash)` of announcing lines not yet reported again
    /// ([`Attempt`]), sorted by time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announced: Vec<(i64, u64)>,
}

/// Events of one key that reached the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst {
    /// Earliest event time in the window.
    pub first_seen: i64,
    /// Events counted.
    pub count: u64,
    /// Each counted event's hash, oldest first: the incident keeps them, so
    /// a redelivered event of the burst does not count into it again.
    pub events: Vec<u64>,
}

impl Threshold {
    /// Fields of the first matcher that matches the line, if any.
    pub fn observe(&self, body: &str, json: Option<&Value>) -> Option<Fields> {
        self.matchers.iter().find_map(|m| m.matches(body, json))
    }

    /// Whether any matcher needs the body as JSON.
    pub fn needs_json(&self) -> bool {
        self.matchers.iter().any(Matcher::needs_json)
    }

    /// The key of a matching event, `None` when a `group_by` field is missing.
    pub fn key(&self, fields: &Fields) -> Option<Key> {
        self.group_by
            .iter()
            .map(|g| field(fields, g).map(|v| (g.clone(), v.to_string())))
            .collect()
    }

    /// Hash of the `unique` fields, 0 when the rule has none or one is missing.
    pub fn unique_hash(&self, fields: &Fields) -> u64 {
        if self.unique.is_empty() {
            return 0;
        }
        let vals: Option<Vec<&str>> = self.unique.iter().map(|u| field(fields, u)).collect();
        vals.map_or(0, |v| super::stable_hash(&v))
    }

    /// The connection a line belongs to and whether it announces an attempt:
    /// `(0, _)` when the rule has no `attempt:` or the line names no
    /// connection.
    pub fn connection(&self, fields: &Fields) -> (u64, bool) {
        let Some(a) = &self.attempt else {
            return (0, false);
        };
        let vals: Vec<&str> = a
            .join
            .iter()
            .map(|j| field(fields, j).unwrap_or(""))
            .collect();
        if vals.iter().all(|v| v.is_empty()) {
            return (0, false);
        }
        let announces = field(fields, &a.announced_by).is_some_and(|v| !v.is_empty());
        (super::stable_hash(&vals).max(1), announces)
    }

    /// Whether a line of connection `conn` is an attempt already counted: a
    /// reporting line after an announcing one, or a second announcing line in
    /// the same second. Remembers announcing lines.
    pub fn seen_attempt(&self, st: &mut WindowState, ts: i64, conn: u64, announces: bool) -> bool {
        let floor = ts - self.window_ms;
        st.announced.retain(|e| e.0 >= floor);
        if announces {
            let sec = ts.div_euclid(1_000);
            if st
                .announced
                .iter()
                .any(|e| e.1 == conn && e.0.div_euclid(1_000) == sec)
            {
                return true;
            }
            let at = st.announced.partition_point(|e| e.0 <= ts);
            st.announced.insert(at, (ts, conn));
            // Bounded, so a flood of connections cannot grow one key's item:
            // a forgotten announcement only lets one later try count twice.
            if st.announced.len() > MAX_ANNOUNCED {
                st.announced.remove(0);
            }
            return false;
        }
        match st.announced.iter().position(|e| e.1 == conn && e.0 <= ts) {
            Some(i) => {
                st.announced.remove(i);
                true
            }
            None => false,
        }
    }

    /// Count one event; `Some` when the window now holds `threshold` events.
    /// The same event (same hash) seen again, e.g. a redelivered batch, is not
    /// counted twice.
    pub fn apply(
        &self,
        st: &mut WindowState,
        ts: i64,
        event_hash: u64,
        unique_hash: u64,
        sample: &str,
        request_id: Option<&str>,
    ) -> Option<Burst> {
        let floor = ts - self.window_ms;
        st.events.retain(|e| e.0 >= floor);
        if st.events.iter().any(|e| e.1 == event_hash)
            || (unique_hash != 0 && st.events.iter().any(|e| e.2 == unique_hash))
        {
            return None;
        }
        let at = st.events.partition_point(|e| e.0 <= ts);
        st.events.insert(at, (ts, event_hash, unique_hash));
        while st.events.len() > self.threshold {
            st.events.remove(0);
        }
        push_capped(&mut st.samples, sample.to_string(), 5);
        if let Some(r) = request_id {
            push_capped(&mut st.request_ids, r.to_string(), 5);
        }
        let first = st.events.first().map_or(ts, |e| e.0);
        let last = st.events.last().map_or(ts, |e| e.0);
        if st.events.len() >= self.threshold && last - first <= self.window_ms {
            let burst = Burst {
                first_seen: first,
                count: st.events.len() as u64,
                events: st.events.iter().map(|e| e.1).collect(),
            };
            st.events.clear();
            return Some(burst);
        }
        None
    }
}

/// A matching event: its key, the hash of its `unique` fields, its request.
pub struct Hit<'a> {
    /// Incident key.
    pub key: Key,
    /// [`Threshold::unique_hash`].
    pub unique: u64,
    /// Request id, when the line has one.
    pub request_id: Option<Cow<'a, str>>,
    /// [`Threshold::connection`]: the connection hash (0 = none) and whether
    /// the line announces an attempt.
    pub connection: (u64, bool),
}

impl Detect for Threshold {
    type Obs<'a> = Hit<'a>;

    fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// The rule's first matching matcher, with the key its fields give.
    fn observe<'p>(
        &self,
        line: &Line<'p, '_>,
        m: &mut Matching<'_>,
        out: &mut impl FnMut(Hit<'p>),
    ) {
        let Some(app) = line.app else { return };
        let Some(fields) = m.first_match(app.body) else {
            return;
        };
        let Some(key) = self.key(&fields) else { return };
        out(Hit {
            unique: self.unique_hash(&fields),
            connection: self.connection(&fields),
            key,
            request_id: app.request_id.clone(),
        });
    }

    fn key_of<'o>(obs: &'o Hit<'_>) -> Option<&'o Key> {
        Some(&obs.key)
    }

    fn keyed_key(&self, rule: &str, group: &str, key: &Key) -> Option<StateKey> {
        Some(WINDOWS.keyed(rule, group, key))
    }

    /// Clear when no matching event for the key folds in for twice the window.
    fn resolve_after(&self, _realert_ms: i64) -> i64 {
        self.window_ms.saturating_mul(2)
    }

    /// A matching event counted in its key's window; a burst opens an incident.
    fn apply<S: Scope>(&self, hit: &Hit<'_>, at: &At<'_>, scope: &mut S) {
        let request_id = hit.request_id.as_deref();
        let wkey = WINDOWS.keyed(scope.rule_id(), at.group, &hit.key);
        // Before folding into an open incident: an attempt counts once there too.
        if let (conn @ 1.., announces) = hit.connection {
            let win: &mut WindowState = scope.state(&wkey, at.ts + self.window_ms);
            if self.seen_attempt(win, at.ts, conn, announces) {
                return;
            }
        }
        if fold_into_open(scope, at, &hit.key, request_id) {
            return;
        }
        let win: &mut WindowState = scope.state(&wkey, at.ts + self.window_ms);
        let Some(burst) = self.apply(win, at.ts, at.hash(), hit.unique, at.message, request_id)
        else {
            return;
        };
        let f = Finding {
            key: hit.key.clone(),
            first_seen: burst.first_seen,
            last_seen: at.ts,
            count: burst.count,
            log_stream: at.stream.to_string(),
            request_ids: std::mem::take(&mut win.request_ids),
            evidence: std::mem::take(&mut win.samples),
            metrics: BTreeMap::from([("threshold".to_string(), self.threshold as f64)]),
        };
        scope.record_burst(at.group, f, at.hash(), &burst.events);
    }

    fn what(&self, s: &Summary<'_>) -> String {
        format!(
            "{} matching events from {} in {} {} (threshold {} within {} s).",
            s.count,
            s.key_words().join(", "),
            s.log_group,
            s.span,
            self.threshold,
            self.window_ms / 1_000
        )
    }
}

fn push_capped(v: &mut Vec<String>, s: String, cap: usize) {
    if v.len() >= cap {
        v.remove(0);
    }
    v.push(s);
}

/// The fields of a `threshold` rule, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "match")]
    matchers: Option<Vec<RawMatcher>>,
    group_by: Option<Vec<String>>,
    threshold: Option<u64>,
    window: Option<String>,
    unique: Option<Vec<String>>,
    attempt: Option<RawAttempt>,
}

impl KindConfig for Config {
    fn compile(self, cx: &mut Cx<'_>) -> Option<Detector> {
        let matchers = compile_matchers(cx, self.matchers.as_deref().unwrap_or_default());
        if self.matchers.as_ref().is_none_or(|m| m.is_empty()) {
            cx.needs(
                "match",
                "kind:",
                "a threshold rule needs a non-empty `match:` list",
            );
        }
        let group_by = self.group_by.clone().unwrap_or_default();
        let (threshold, window_ms) = cx.threshold_and_window(
            self.threshold,
            self.window.as_deref(),
            1,
            "a threshold rule needs `threshold:` ≥ 1",
            "a threshold rule needs `window:` (e.g. 60s)",
        );
        let unique = self.unique.clone().unwrap_or_default();
        let attempt = self.attempt.map(|a| Attempt {
            announced_by: a.announced_by,
            join: a.join,
        });
        let mut uses = vec![("group_by", group_by.clone()), ("unique", unique.clone())];
        if let Some(a) = &attempt {
            let mut named = a.join.clone();
            named.push(a.announced_by.clone());
            uses.push(("attempt", named));
        }
        check_field_names(cx, self.matchers.as_ref(), &matchers, &[], &uses);
        Some(Detector::Threshold(Threshold {
            matchers,
            group_by,
            threshold: threshold as usize,
            window_ms,
            unique,
            attempt,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule(threshold: usize, window_ms: i64) -> Threshold {
        Threshold {
            matchers: vec![],
            group_by: vec!["source_ip".into()],
            threshold,
            window_ms,
            unique: vec![],
            attempt: None,
        }
    }

    #[test]
    fn fires_when_threshold_events_fall_in_window() {
        let r = rule(3, 10_000);
        let mut st = WindowState::default();
        assert!(r.apply(&mut st, 0, 1, 0, "a", None).is_none());
        assert!(r.apply(&mut st, 5_000, 2, 0, "b", None).is_none());
        let b = r.apply(&mut st, 9_000, 3, 0, "c", Some("r")).unwrap();
        assert_eq!(
            b,
            Burst {
                first_seen: 0,
                count: 3,
                events: vec![1, 2, 3]
            }
        );
        assert_eq!(st.samples, ["a", "b", "c"]);
    }

    #[test]
    fn scattered_events_never_fire() {
        let r = rule(3, 10_000);
        let mut st = WindowState::default();
        for i in 0..20 {
            assert!(
                r.apply(&mut st, i * 6_000, i as u64, 0, "x", None)
                    .is_none()
            );
        }
    }

    #[test]
    fn the_same_event_twice_counts_once() {
        let r = rule(2, 10_000);
        let mut st = WindowState::default();
        assert!(r.apply(&mut st, 0, 7, 0, "a", None).is_none());
        assert!(r.apply(&mut st, 0, 7, 0, "a", None).is_none());
        assert!(r.apply(&mut st, 1, 8, 0, "b", None).is_some());
    }

    #[test]
    fn unique_fields_count_one_attempt_once() {
        let r = rule(2, 10_000);
        let mut st = WindowState::default();
        assert!(r.apply(&mut st, 0, 1, 42, "Invalid user", None).is_none());
        assert!(
            r.apply(&mut st, 1, 2, 42, "Failed password", None)
                .is_none()
        );
        assert!(
            r.apply(&mut st, 2, 3, 43, "Failed password", None)
                .is_some()
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod attempt_tests {
    use super::*;

    fn rule() -> Threshold {
        Threshold {
            matchers: vec![],
            group_by: vec![],
            threshold: 100,
            window_ms: 60_000,
            unique: vec![],
            attempt: Some(Attempt {
                announced_by: "announce".into(),
                join: vec!["host".into(), "pid".into()],
            }),
        }
    }

    #[test]
    fn a_reporting_line_after_an_announcing_one_is_the_same_attempt() {
        let r = rule();
        let mut st = WindowState::default();
        // Invalid user + PAM failure (same second), then three Failed lines.
        assert!(!r.seen_attempt(&mut st, 1_000, 7, true));
        assert!(r.seen_attempt(&mut st, 1_400, 7, true));
        assert!(r.seen_attempt(&mut st, 3_000, 7, false));
        assert!(!r.seen_attempt(&mut st, 5_000, 7, false));
        assert!(!r.seen_attempt(&mut st, 7_000, 7, false));
        // Another connection is not absorbed.
        assert!(!r.seen_attempt(&mut st, 7_000, 8, false));
        assert!(st.announced.is_empty());
    }

    #[test]
    fn announcements_kept_are_bounded() {
        let r = rule();
        let mut st = WindowState::default();
        for c in 1..=(MAX_ANNOUNCED as u64 + 10) {
            assert!(!r.seen_attempt(&mut st, 1_000, c, true));
        }
        assert_eq!(st.announced.len(), MAX_ANNOUNCED);
    }

    #[test]
    fn announcing_lines_in_different_seconds_are_different_attempts() {
        let r = rule();
        let mut st = WindowState::default();
        assert!(!r.seen_attempt(&mut st, 1_000, 7, true));
        assert!(!r.seen_attempt(&mut st, 3_000, 7, true));
        // An announcement older than the window no longer absorbs anything.
        assert!(!r.seen_attempt(&mut st, 200_000, 7, false));
    }
}
