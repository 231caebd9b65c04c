//! `lifecycle`: invocations that log START but never END or REPORT.
//!
//! An invocation R started in stream S is an orphan when nothing closes it and
//! either (a) a later START of another request in S is seen — one execution
//! environment runs one invocation at a time — and the watermark passes that
//! START by the grace, or (b) the watermark passes R's start + the function's
//! maximum duration + the grace. START and END/REPORT of one request often
//! arrive in different batches: that alone is never an orphan.
//!
//! Every line of a stream is attacker-controlled, so a stream's state is
//! bounded and each event costs O(log n) in it: at most [`MAX_OPEN`] open
//! invocations holding at most [`MAX_OPEN_BYTES`]; a START past either limit
//! is not tracked but counted ([`StreamState::dropped`]) and reported with the
//! stream's next orphan alert. The oldest opens are the ones kept: a flood of
//! STARTs supersedes them, so they fall due after the grace and the flood
//! raises an alert instead of pushing every orphan out before it is judged.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use std::borrow::Cow;

use super::config::{Cx, KindConfig};
use super::key::Space;
use super::{
    At, Detect, Detector, Finding, Key, Line, Listed, Matching, Scope, StateKey, Summary,
    function_name, stable_hash,
};
use crate::platform::Record;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

/// Most open invocations one stream keeps. One execution environment runs
/// one invocation at a time, so even a few open at once is an anomaly; a
/// thousand leaves room for END/REPORT arriving batches late.
pub const MAX_OPEN: usize = 1_000;

/// Most bytes (as stored, JSON-escaped) the open invocations of one stream
/// hold: the stream's state is one DynamoDB item, at most 400 KB.
pub const MAX_OPEN_BYTES: usize = 256 * 1024;

/// Longest START line kept as evidence, in bytes. A real START line is under
/// 300 bytes; alerts show at most 512 characters of it, after redaction, which
/// this leaves room for.
pub const MAX_LINE_BYTES: usize = 2_048;

/// Field names, numbers and punctuation of one stored [`Open`].
const OPEN_OVERHEAD_BYTES: usize = 96;

const DONE_KEPT: usize = 256;

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
    /// The START line (its first [`MAX_LINE_BYTES`]).
    pub line: String,
}

/// What [`Lifecycle::start`] did with a START.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Now tracked as open.
    Opened,
    /// Already open, or already ended: nothing to track.
    Known,
    /// The stream holds [`MAX_OPEN`] invocations or [`MAX_OPEN_BYTES`]: not
    /// tracked, counted in [`StreamState::dropped`].
    Dropped,
}

/// Invocations of one log stream.
///
/// Stored as `{open: [Open…] (in arrival order), done: [hash…], dropped}`;
/// the indexes beside `open` are rebuilt when it is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "Stored")]
pub struct StreamState {
    /// Started, not ended, by arrival number (so in arrival order).
    open: BTreeMap<u64, Tracked>,
    /// `stable_hash(request id)` → arrival number of its open invocation.
    /// Keys are already hashes, so foldhash rather than SipHash.
    by_request: HashMap<u64, u64, foldhash::fast::RandomState>,
    /// (start, arrival number) of the opens no later START has superseded
    /// yet: a START at `ts` supersedes exactly those with start ≤ `ts`, a
    /// prefix of this set, so each open is visited once.
    waiting: BTreeSet<(i64, u64)>,
    /// Arrival number of the next open.
    next: u64,
    /// Stored size of `open`, as [`stored_size`] counts it.
    bytes: usize,
    /// Recently ended request ids (hashes), so that an END seen before its
    /// START (batches out of order) does not leave an orphan behind.
    done: VecDeque<u64>,
    /// How many times each hash is in `done` (stored state may repeat one):
    /// every START and END asks whether a hash is there, and scanning the
    /// deque cost 1.5 M Ir of the text corpus (callgrind).
    done_count: HashMap<u64, u32, foldhash::fast::RandomState>,
    /// STARTs not tracked because the stream was full, since the last alert
    /// that reported them.
    dropped: u64,
}

/// An open invocation with what removing it needs, computed when it was
/// inserted: hashing the request id and sizing the line again on every
/// END was most of `StreamState::remove` (3.8 M Ir on the text corpus,
/// callgrind).
#[derive(Debug, Clone)]
struct Tracked {
    open: Open,
    /// `stable_hash(request id)`.
    hash: u64,
    /// [`stored_size`] of the open.
    size: usize,
}

/// The stored form of a [`StreamState`].
#[derive(Deserialize)]
struct Stored {
    #[serde(default)]
    open: Vec<Open>,
    #[serde(default)]
    done: VecDeque<u64>,
    #[serde(default)]
    dropped: u64,
}

impl From<Stored> for StreamState {
    fn from(s: Stored) -> Self {
        let mut st = StreamState {
            dropped: s.dropped,
            done: s.done,
            ..StreamState::default()
        };
        while st.done.len() > DONE_KEPT {
            st.done.pop_front();
        }
        for &h in &st.done {
            *st.done_count.entry(h).or_default() += 1;
        }
        // State written before the limits existed may exceed them: the
        // excess is dropped and counted, as if it had arrived now.
        for o in s.open {
            let h = super::stable_hash(&[&o.request_id]);
            let size = stored_size(&o.request_id, &o.line);
            if st.by_request.contains_key(&h) {
                continue;
            }
            if !st.has_room(size) {
                st.dropped += 1;
                continue;
            }
            st.insert(h, size, o);
        }
        st
    }
}

impl Serialize for StreamState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Opens<'a>(&'a BTreeMap<u64, Tracked>);
        impl Serialize for Opens<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.values().map(|t| &t.open))
            }
        }
        let mut s = serializer.serialize_struct("StreamState", 3)?;
        s.serialize_field("open", &Opens(&self.open))?;
        s.serialize_field("done", &self.done)?;
        if self.dropped == 0 {
            s.skip_field("dropped")?;
        } else {
            s.serialize_field("dropped", &self.dropped)?;
        }
        s.end()
    }
}

/// Equal when the stored forms are: the arrival numbers are not stored.
impl PartialEq for StreamState {
    fn eq(&self, other: &Self) -> bool {
        self.open().eq(other.open()) && self.done == other.done && self.dropped == other.dropped
    }
}

/// Bytes one open invocation takes in the stored JSON, at most: `"` and `\`
/// are escaped in two bytes, other control characters in up to six.
fn stored_size(request_id: &str, line: &str) -> usize {
    // Branch-free per byte, so the sum vectorizes: the `match` this
    // replaces cost about 6 Ir a byte (callgrind).
    let json_len = |s: &str| {
        s.len()
            + s.bytes()
                .map(|b| usize::from(b == b'"' || b == b'\\') + 5 * usize::from(b < 0x20))
                .sum::<usize>()
    };
    json_len(request_id) + json_len(line) + OPEN_OVERHEAD_BYTES
}

/// The first [`MAX_LINE_BYTES`] of `line`, cut at a character boundary.
fn kept_line(line: &str) -> &str {
    if line.len() <= MAX_LINE_BYTES {
        return line;
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

impl StreamState {
    /// Open invocations, in arrival order.
    pub fn open(&self) -> impl Iterator<Item = &Open> {
        self.open.values().map(|t| &t.open)
    }

    /// Number of open invocations.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no invocation is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Stored size of the open invocations, in bytes (at most [`MAX_OPEN_BYTES`]).
    pub fn open_bytes(&self) -> usize {
        self.bytes
    }

    /// STARTs not tracked because the stream was full, not yet reported.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The count of [`StreamState::dropped`], now reported: it restarts at 0.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    fn has_room(&self, size: usize) -> bool {
        self.open.len() < MAX_OPEN && self.bytes + size <= MAX_OPEN_BYTES
    }

    fn insert(&mut self, hash: u64, size: usize, o: Open) {
        let seq = self.next;
        self.next += 1;
        if o.superseded_at.is_none() {
            self.waiting.insert((o.start, seq));
        }
        self.by_request.insert(hash, seq);
        self.bytes += size;
        self.open.insert(
            seq,
            Tracked {
                open: o,
                hash,
                size,
            },
        );
    }

    fn remove(&mut self, seq: u64) -> Option<Open> {
        let Tracked {
            open: o,
            hash,
            size,
        } = self.open.remove(&seq)?;
        self.by_request.remove(&hash);
        if o.superseded_at.is_none() {
            self.waiting.remove(&(o.start, seq));
        }
        self.bytes = self.bytes.saturating_sub(size);
        Some(o)
    }
}

impl Lifecycle {
    /// The maximum duration of a function: configured, else learned from
    /// `Task timed out after N seconds`, else the rule default.
    pub fn max_duration(&self, function: Option<&str>, learned_timeout_ms: Option<i64>) -> i64 {
        function
            .and_then(|f| self.function_timeouts.get(f).copied())
            .or(learned_timeout_ms)
            .unwrap_or(self.max_duration_ms)
    }

    /// A START of `request_id` at `ts`. It supersedes the earlier opens even
    /// when the stream is too full to track it.
    pub fn start(&self, st: &mut StreamState, request_id: &str, ts: i64, line: &str) -> Started {
        let h = super::stable_hash(&[request_id]);
        if st.done_count.contains_key(&h) || st.by_request.contains_key(&h) {
            // A hash shared with another open request (a 64-bit collision)
            // counts as known too, as it does for `done`.
            return Started::Known;
        }
        while let Some(&(start, seq)) = st.waiting.first()
            && start <= ts
        {
            st.waiting.pop_first();
            if let Some(t) = st.open.get_mut(&seq) {
                t.open.superseded_at = Some(ts);
            }
        }
        let line = kept_line(line);
        let size = stored_size(request_id, line);
        if !st.has_room(size) {
            st.dropped += 1;
            return Started::Dropped;
        }
        st.insert(
            h,
            size,
            Open {
                request_id: request_id.to_string(),
                start: ts,
                superseded_at: None,
                line: line.to_string(),
            },
        );
        Started::Opened
    }

    /// END, REPORT or `platform.runtimeDone`/`platform.report` of `request_id`.
    pub fn end(&self, st: &mut StreamState, request_id: &str) {
        let h = super::stable_hash(&[request_id]);
        if let Some(&seq) = st.by_request.get(&h)
            && st
                .open
                .get(&seq)
                .is_some_and(|t| t.open.request_id == request_id)
        {
            st.remove(seq);
        }
        if !st.done_count.contains_key(&h) {
            if st.done.len() >= DONE_KEPT
                && let Some(old) = st.done.pop_front()
                && let Some(n) = st.done_count.get_mut(&old)
            {
                *n -= 1;
                if *n == 0 {
                    st.done_count.remove(&old);
                }
            }
            st.done.push_back(h);
            *st.done_count.entry(h).or_default() += 1;
        }
    }

    /// Remove and return the orphans whose deadline the watermark has passed,
    /// in arrival order.
    pub fn due(&self, st: &mut StreamState, watermark: i64, max_duration_ms: i64) -> Vec<Open> {
        let grace = self.grace_ms;
        let due: Vec<u64> = st
            .open
            .iter()
            .filter(|(_, t)| {
                let o = &t.open;
                o.superseded_at.is_some_and(|s| watermark >= s + grace)
                    || watermark >= o.start + max_duration_ms + grace
            })
            .map(|(seq, _)| *seq)
            .collect();
        due.into_iter().filter_map(|seq| st.remove(seq)).collect()
    }
}

/// Open invocations of one log stream: `s|<rule>|<group>|<stream>`.
const STREAMS: Space = Space::with_tail("s");

/// What one event means for a lifecycle rule.
pub enum Step<'a> {
    /// START opens an invocation.
    Start(Cow<'a, str>),
    /// END, RUNTIME_DONE and REPORT close it.
    End(Cow<'a, str>),
}

impl Detect for Lifecycle {
    type Obs<'a> = Step<'a>;

    fn observe<'p>(
        &self,
        line: &Line<'p, '_>,
        _: &mut Matching<'_>,
        out: &mut impl FnMut(Step<'p>),
    ) {
        match line.rec {
            Record::Start { request_id, .. } => out(Step::Start(request_id.clone())),
            Record::End { request_id } | Record::RuntimeDone { request_id, .. } => {
                out(Step::End(request_id.clone()))
            }
            Record::Report(r) => out(Step::End(r.request_id.clone())),
            _ => {}
        }
    }

    fn batch_key(&self, rule: &str, group: &str, stream: &str) -> Option<StateKey> {
        Some(STREAMS.stream_key(rule, group, stream))
    }

    /// A START opens an invocation in its stream (unless the stream is
    /// full); an END, RUNTIME_DONE or REPORT closes it.
    fn apply<S: Scope>(&self, step: &Step<'_>, at: &At<'_>, scope: &mut S) {
        let Some(key) = at.batch_key else { return };
        match step {
            Step::Start(request_id) => {
                let max =
                    self.max_duration(function_name(at.group), scope.learned_timeout(at.group));
                let st: &mut StreamState =
                    scope.state(key, at.ts + max + self.grace_ms + 3_600_000);
                if self.start(st, request_id, at.ts, at.message) == Started::Dropped {
                    scope.dropped_start();
                }
            }
            Step::End(request_id) => {
                let st: &mut StreamState = scope.state(key, at.ts + self.grace_ms + 3_600_000);
                self.end(st, request_id);
                scope.clear(at.group, &Key::new(), Some(at.stream), at.ts);
            }
        }
    }

    /// The orphan's stream completing an invocation again resolves it (an
    /// execution environment that never logs again resolves after the
    /// realert span).
    fn clear_run(&self) -> Option<u32> {
        Some(1)
    }

    fn what(&self, s: &Summary<'_>) -> String {
        format!(
            "{} invocation(s) of {} logged START but no END or REPORT (first {}).",
            s.count, s.place, s.span
        )
    }

    /// Every open stream, so a stream that went quiet is still judged.
    fn listed(&self) -> Option<Listed> {
        Some(Listed {
            space: STREAMS,
            function_facts: true,
        })
    }

    /// Orphaned invocations whose deadline the watermark has passed.
    fn deadlines<S: Scope>(&self, scope: &mut S, watermark: i64) {
        let rule = scope.rule_id().to_string();
        for skey in scope.loaded::<StreamState>(&STREAMS.prefix(&rule)) {
            let Some(place) = STREAMS.parse(&rule, &skey) else {
                continue;
            };
            let (group, stream) = (place.group.to_string(), place.tail.to_string());
            let max = self.max_duration(function_name(&group), scope.learned_timeout(&group));
            let due = {
                let Some(st) = scope.existing::<StreamState>(&skey) else {
                    continue;
                };
                if st.is_empty() {
                    continue;
                }
                let due = self.due(st, watermark, max);
                if due.is_empty() {
                    continue;
                }
                due
            };
            scope.touch(&skey);
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
                scope.record(&group, f, stable_hash(&["req", &o.request_id]));
            }
            report_dropped(scope, &group, &skey);
        }
    }
}

/// STARTs a full stream could not track go into the alert its orphans
/// open (`open_invocations_dropped`), so the alert says it is incomplete.
/// While the incident is already open (no new alert) they wait in the
/// stream's state for the next one.
fn report_dropped<S: Scope>(scope: &mut S, group: &str, skey: &str) {
    if !scope.opened(group) {
        return;
    }
    let dropped = scope
        .existing::<StreamState>(skey)
        .map_or(0, StreamState::take_dropped);
    if dropped > 0 {
        scope.add_to_opened(group, "open_invocations_dropped", dropped as f64);
    }
}

/// The fields of a `lifecycle` rule, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    grace: Option<String>,
    max_duration: Option<String>,
    function_timeouts: Option<BTreeMap<String, String>>,
}

impl KindConfig for Config {
    fn compile(self, cx: &mut Cx<'_>) -> Option<Detector> {
        let grace_ms = cx.duration("grace", self.grace.as_deref(), 60_000);
        let max_duration_ms = cx.duration("max_duration", self.max_duration.as_deref(), 900_000);
        let function_timeouts = cx.function_timeouts(self.function_timeouts.as_ref());
        Some(Detector::Lifecycle(Lifecycle {
            grace_ms,
            max_duration_ms,
            function_timeouts,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule() -> Lifecycle {
        Lifecycle {
            grace_ms: 60_000,
            max_duration_ms: 900_000,
            function_timeouts: BTreeMap::from([("slow".to_string(), 30_000)]),
        }
    }

    fn rid(i: usize) -> String {
        format!("{i:08x}-0000-4000-8000-{i:012x}")
    }

    fn start_line(id: &str) -> String {
        format!("START RequestId: {id} Version: $LATEST\n")
    }

    /// `n` STARTs of one stream 1 ms apart, none ended.
    fn flood(r: &Lifecycle, st: &mut StreamState, n: usize) -> Vec<Started> {
        (0..n)
            .map(|i| {
                let id = rid(i);
                r.start(st, &id, i as i64, &start_line(&id))
            })
            .collect()
    }

    /// The indexes agree with `open`: each open is found by its request id,
    /// `waiting` holds exactly the opens not superseded, `bytes` is their size.
    fn assert_consistent(st: &StreamState) {
        let mut counts: HashMap<u64, u32> = HashMap::new();
        for &h in &st.done {
            *counts.entry(h).or_default() += 1;
        }
        assert_eq!(counts.len(), st.done_count.len());
        assert!(counts.iter().all(|(h, n)| st.done_count.get(h) == Some(n)));
        assert_eq!(st.by_request.len(), st.open.len());
        for (seq, t) in &st.open {
            let o = &t.open;
            assert_eq!(t.hash, crate::detect::stable_hash(&[&o.request_id]));
            assert_eq!(t.size, stored_size(&o.request_id, &o.line));
            assert_eq!(
                st.by_request
                    .get(&crate::detect::stable_hash(&[&o.request_id])),
                Some(seq)
            );
        }
        let waiting: BTreeSet<(i64, u64)> = st
            .open
            .iter()
            .filter(|(_, t)| t.open.superseded_at.is_none())
            .map(|(seq, t)| (t.open.start, *seq))
            .collect();
        assert_eq!(st.waiting, waiting);
        let bytes: usize = st.open().map(|o| stored_size(&o.request_id, &o.line)).sum();
        assert_eq!(st.bytes, bytes);
        assert!(st.len() <= MAX_OPEN && st.bytes <= MAX_OPEN_BYTES);
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
        assert!(st.is_empty());
        assert_consistent(&st);
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
        assert_eq!(r.start(&mut st, "Y", 0, "START Y"), Started::Known);
        assert!(st.is_empty());
    }

    #[test]
    fn configured_timeout_wins_over_learned() {
        let r = rule();
        assert_eq!(r.max_duration(Some("slow"), Some(3_000)), 30_000);
        assert_eq!(r.max_duration(Some("other"), Some(3_000)), 3_000);
        assert_eq!(r.max_duration(None, None), 900_000);
    }

    #[test]
    fn a_start_earlier_than_an_open_one_supersedes_only_what_started_before_it() {
        // Arrival order Y(10), X(5), Z(7): X supersedes nothing (Y started
        // after it); Z supersedes X only.
        let r = rule();
        let mut st = StreamState::default();
        r.start(&mut st, "Y", 10, "START Y");
        r.start(&mut st, "X", 5, "START X");
        r.start(&mut st, "Z", 7, "START Z");
        let sup: Vec<(&str, Option<i64>)> = st
            .open()
            .map(|o| (o.request_id.as_str(), o.superseded_at))
            .collect();
        assert_eq!(sup, [("Y", None), ("X", Some(7)), ("Z", None)]);
        assert_consistent(&st);
    }

    #[test]
    fn an_end_closes_its_invocation_wherever_it_sits() {
        let r = rule();
        let mut st = StreamState::default();
        flood(&r, &mut st, 10);
        r.end(&mut st, &rid(4));
        r.end(&mut st, &rid(9));
        assert_eq!(st.len(), 8);
        assert!(
            st.open()
                .all(|o| o.request_id != rid(4) && o.request_id != rid(9))
        );
        assert_consistent(&st);
        // Arrival order is kept; the latest START left supersedes nothing new.
        let due = r.due(&mut st, 1_000_000_000, 900_000);
        let ids: Vec<String> = due.into_iter().map(|o| o.request_id).collect();
        let want: Vec<String> = [0, 1, 2, 3, 5, 6, 7, 8].map(rid).to_vec();
        assert_eq!(ids, want);
    }

    #[test]
    fn a_start_flood_keeps_the_stream_at_its_cap_and_counts_the_rest() {
        // Regression (issue 13): every START scanned every open invocation,
        // so 200,000 STARTs of one stream took ~50 s.
        let r = rule();
        let mut st = StreamState::default();
        let n = 20_000;
        let outcomes = flood(&r, &mut st, n);
        assert_eq!(st.len(), MAX_OPEN);
        assert_eq!(st.dropped(), (n - MAX_OPEN) as u64);
        assert!(outcomes[..MAX_OPEN].iter().all(|s| *s == Started::Opened));
        assert!(outcomes[MAX_OPEN..].iter().all(|s| *s == Started::Dropped));
        // Each open was superseded once, by the START after it: only the
        // newest START is left waiting, so the next START visits one entry.
        assert!(
            st.waiting.is_empty(),
            "the newest kept START was superseded"
        );
        assert!(st.open().all(|o| o.superseded_at == Some(o.start + 1)));
        assert_consistent(&st);
        assert_eq!(st.take_dropped(), (n - MAX_OPEN) as u64);
        assert_eq!(st.dropped(), 0);
    }

    #[test]
    fn a_start_flood_still_falls_due_after_the_grace() {
        // The oldest opens are kept, so a flood that never stops cannot push
        // them out before they are judged: they fall due, and the stream has
        // room again.
        let r = rule();
        let mut st = StreamState::default();
        flood(&r, &mut st, 5_000);
        assert!(r.due(&mut st, 60_000, 900_000).is_empty());
        let due = r.due(&mut st, MAX_OPEN as i64 + 60_000, 900_000);
        let ids: Vec<String> = due.iter().map(|o| o.request_id.clone()).collect();
        let want: Vec<String> = (0..MAX_OPEN).map(rid).collect();
        assert_eq!(ids, want);
        assert!(st.is_empty());
        assert_eq!(
            r.start(&mut st, "next", 70_000, "START next"),
            Started::Opened
        );
        assert_consistent(&st);
    }

    #[test]
    fn a_dropped_start_still_supersedes_the_open_ones() {
        let r = rule();
        let mut st = StreamState::default();
        flood(&r, &mut st, MAX_OPEN);
        assert_eq!(st.waiting.len(), 1);
        let late = rid(MAX_OPEN);
        assert_eq!(
            r.start(&mut st, &late, 5_000, &start_line(&late)),
            Started::Dropped
        );
        let last = st.open().last().unwrap();
        assert_eq!(last.superseded_at, Some(5_000));
        // Its END closes nothing and is remembered like any other.
        r.end(&mut st, &late);
        assert_eq!(st.len(), MAX_OPEN);
        assert_consistent(&st);
    }

    #[test]
    fn starts_arriving_in_decreasing_time_order_are_each_visited_once() {
        // None supersedes another, so all wait; one START later than all of
        // them supersedes every one, and the waiting set empties.
        let r = rule();
        let mut st = StreamState::default();
        for i in 0..500 {
            let id = rid(i);
            r.start(&mut st, &id, 1_000 - i as i64, &start_line(&id));
        }
        assert_eq!(st.waiting.len(), 500);
        r.start(&mut st, "late", 2_000, "START late");
        assert_eq!(st.waiting.len(), 1);
        assert!(st.open().take(500).all(|o| o.superseded_at == Some(2_000)));
        assert_consistent(&st);
    }

    #[test]
    fn long_start_lines_are_cut_and_bounded_in_bytes() {
        // Every byte escaped six times over in JSON: the stored form would be
        // 6 × the line. The stream's stored JSON stays within the item limit.
        let r = rule();
        let mut st = StreamState::default();
        let tail = "\u{1}".repeat(200_000);
        let mut dropped = 0;
        for i in 0..200 {
            let id = rid(i);
            let line = format!("START RequestId: {id} Version: $LATEST {tail}é");
            if r.start(&mut st, &id, i as i64, &line) == Started::Dropped {
                dropped += 1;
            }
        }
        assert!(st.open().all(|o| o.line.len() <= MAX_LINE_BYTES));
        assert!(st.open().all(|o| o.line.starts_with("START RequestId: ")));
        assert!(dropped > 0 && st.len() + dropped == 200);
        assert_eq!(st.dropped(), dropped as u64);
        assert_consistent(&st);
        let json = serde_json::to_string(&st).unwrap();
        assert!(json.len() <= MAX_OPEN_BYTES, "{}", json.len());
        // A multi-byte character across the cut is not split.
        let line = format!("{}é", "a".repeat(MAX_LINE_BYTES - 1));
        assert_eq!(kept_line(&line).len(), MAX_LINE_BYTES - 1);
    }

    #[test]
    fn a_huge_request_id_is_dropped_not_stored() {
        let r = rule();
        let mut st = StreamState::default();
        let id = "r".repeat(MAX_OPEN_BYTES);
        assert_eq!(r.start(&mut st, &id, 0, &start_line(&id)), Started::Dropped);
        assert!(st.is_empty());
        assert_eq!(st.dropped(), 1);
    }

    #[test]
    fn the_stored_form_round_trips_and_rebuilds_the_indexes() {
        let r = rule();
        let mut st = StreamState::default();
        flood(&r, &mut st, MAX_OPEN + 3);
        r.end(&mut st, &rid(7));
        r.end(&mut st, &rid(MAX_OPEN - 1));
        let json = serde_json::to_string(&st).unwrap();
        assert!(json.starts_with(r#"{"open":[{"request_id":"#), "{json:.80}");
        assert!(
            json.ends_with(r#","dropped":3}"#),
            "{}",
            &json[json.len() - 40..]
        );
        let mut back: StreamState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, st);
        assert_consistent(&back);
        // The rebuilt indexes work: an END closes, a START is known.
        r.end(&mut back, &rid(8));
        assert!(back.open().all(|o| o.request_id != rid(8)));
        assert_eq!(
            r.start(&mut back, &rid(9), 9, "START again"),
            Started::Known
        );
        assert_consistent(&back);
        // Nothing dropped: the field is left out.
        let json = serde_json::to_string(&StreamState::default()).unwrap();
        assert_eq!(json, r#"{"open":[],"done":[]}"#);
    }

    #[test]
    fn state_stored_before_the_cap_is_cut_to_it_when_read() {
        let open: Vec<Open> = (0..MAX_OPEN + 500)
            .map(|i| Open {
                request_id: rid(i),
                start: i as i64,
                superseded_at: Some(i as i64 + 1),
                line: start_line(&rid(i)),
            })
            .collect();
        let json = serde_json::json!({"open": open, "done": (0..300).collect::<Vec<u64>>()});
        let st: StreamState = serde_json::from_value(json).unwrap();
        assert_eq!(st.len(), MAX_OPEN);
        assert_eq!(st.dropped(), 500);
        assert_eq!(st.open().last().unwrap().request_id, rid(MAX_OPEN - 1));
        assert_eq!(st.done.len(), DONE_KEPT);
        assert_eq!(st.done.front(), Some(&44));
        assert_consistent(&st);
    }

    #[test]
    fn ended_ids_pushed_out_of_done_are_forgotten_even_when_stored_twice() {
        let r = rule();
        let h = |i: usize| crate::detect::stable_hash(&[&rid(i)]);
        // A stored `done` holding request 0 twice, and full.
        let mut done = vec![h(0), h(0)];
        done.extend((1..DONE_KEPT - 1).map(h));
        let json = serde_json::json!({"open": [], "done": done});
        let mut st: StreamState = serde_json::from_value(json).unwrap();
        assert_consistent(&st);
        assert_eq!(r.start(&mut st, &rid(0), 1, "START"), Started::Known);
        // One END pushes one copy out: request 0 is still done.
        r.end(&mut st, &rid(DONE_KEPT));
        assert_consistent(&st);
        assert_eq!(r.start(&mut st, &rid(0), 2, "START"), Started::Known);
        // The second copy goes too: a START of request 0 now opens it.
        r.end(&mut st, &rid(DONE_KEPT + 1));
        assert_consistent(&st);
        assert_eq!(r.start(&mut st, &rid(0), 3, "START"), Started::Opened);
        assert_consistent(&st);
    }
}
