//! `lifecycle`: invocations that log START but never END or REPORT.
//!
//! An invocation R started in stream S is an orphan when nothing closes it and
//! either (a) a later START of another request in S is seen — one execution
//! environment runs one invocation at a time — and the watermark passes that
//! START by the grace, or (b) the watermark passes R's start + the function's
//! maximum duration + the grace. START and END/REPORT of one request often
//! arrive in different batches: that alone is never an orphan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Configuration of a lifecycle rule.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// Delivery slack added to every deadline.
    pub grace_ms: i64,
    /// Maximum duration when neither configured nor learned (Lambda's 900 s).
    pub max_duration_ms: i64,
    /// Per function name, overriding what is learned.
    pub function_timeouts: BTreeMap<String, i64>,
}

/// An invocation that has started and not been seen to end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Open {
    /// Request id.
    pub request_id: String,
    /// Time of its START.
    pub start: i64,
    /// Time of a later START of another request in the same stream.
    pub superseded_at: Option<i64>,
    /// The START line.
    pub line: String,
}

/// Invocations of one log stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// Started, not ended.
    pub open: Vec<Open>,
    /// Recently ended request ids (hashes), so that an END seen before its
    /// START (batches out of order) does not leave an orphan behind.
    pub done: Vec<u64>,
}

const DONE_KEPT: usize = 256;

impl Lifecycle {
    /// The maximum duration of a function: configured, else learned from
    /// `Task timed out after N seconds`, else the rule default.
    pub fn max_duration(&self, function: Option<&str>, learned_timeout_ms: Option<i64>) -> i64 {
        function
            .and_then(|f| self.function_timeouts.get(f).copied())
            .or(learned_timeout_ms)
            .unwrap_or(self.max_duration_ms)
    }

    /// A START of `request_id` at `ts`.
    pub fn start(&self, st: &mut StreamState, request_id: &str, ts: i64, line: &str) {
        let h = super::stable_hash(&[request_id]);
        if st.done.contains(&h) || st.open.iter().any(|o| o.request_id == request_id) {
            return;
        }
        for o in st.open.iter_mut().filter(|o| o.start <= ts) {
            o.superseded_at.get_or_insert(ts);
        }
        st.open.push(Open {
            request_id: request_id.to_string(),
            start: ts,
            superseded_at: None,
            line: line.to_string(),
        });
    }

    /// END, REPORT or `platform.runtimeDone`/`platform.report` of `request_id`.
    pub fn end(&self, st: &mut StreamState, request_id: &str) {
        st.open.retain(|o| o.request_id != request_id);
        let h = super::stable_hash(&[request_id]);
        if !st.done.contains(&h) {
            if st.done.len() >= DONE_KEPT {
                st.done.remove(0);
            }
            st.done.push(h);
        }
    }

    /// Remove and return the orphans whose deadline the watermark has passed.
    pub fn due(&self, st: &mut StreamState, watermark: i64, max_duration_ms: i64) -> Vec<Open> {
        let grace = self.grace_ms;
        let (due, keep): (Vec<Open>, Vec<Open>) = st.open.drain(..).partition(|o| {
            o.superseded_at.is_some_and(|s| watermark >= s + grace)
                || watermark >= o.start + max_duration_ms + grace
        });
        st.open = keep;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Lifecycle {
        Lifecycle {
            grace_ms: 60_000,
            max_duration_ms: 900_000,
            function_timeouts: BTreeMap::from([("slow".to_string(), 30_000)]),
        }
    }

    #[test]
    fn superseded_start_is_due_after_grace() {
        let r = rule();
        let mut st = StreamState::default();
        r.start(&mut st, "Y", 0, "START Y");
        r.start(&mut st, "Z", 1_000, "START Z");
        r.end(&mut st, "Z");
        assert!(r.due(&mut st, 60_999, 900_000).is_empty());
        let due = r.due(&mut st, 61_000, 900_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].request_id, "Y");
        assert!(st.open.is_empty());
    }

    #[test]
    fn quiet_stream_is_due_after_max_duration_and_grace() {
        let r = rule();
        let mut st = StreamState::default();
        r.start(&mut st, "Y", 0, "START Y");
        assert!(r.due(&mut st, 959_999, 900_000).is_empty());
        assert_eq!(r.due(&mut st, 960_000, 900_000).len(), 1);
    }

    #[test]
    fn end_before_start_leaves_no_orphan() {
        let r = rule();
        let mut st = StreamState::default();
        r.end(&mut st, "Y");
        r.start(&mut st, "Y", 0, "START Y");
        assert!(st.open.is_empty());
    }

    #[test]
    fn configured_timeout_wins_over_learned() {
        let r = rule();
        assert_eq!(r.max_duration(Some("slow"), Some(3_000)), 30_000);
        assert_eq!(r.max_duration(Some("other"), Some(3_000)), 3_000);
        assert_eq!(r.max_duration(None, None), 900_000);
    }
}
