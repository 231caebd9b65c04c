//! Pass 1: every event classified once, and what it means for each rule.
//! Pure: no state is read here.

use std::time::Instant;

use super::Engine;
use crate::detect::matcher::{Memo, Scan};
use crate::detect::profile::Profile;
use crate::detect::{Line, Matching, Obs};
use crate::ingest::Payload;
use crate::lenient_json;
use crate::platform::{self, Record};
use crate::rules::RuleSet;
use crate::state::StateStore;

/// What an event means: a timeout learned for its function, or an
/// observation of one rule. Request ids borrow from the batch's messages.
pub(super) enum Seen<'a> {
    /// `Task timed out after N seconds`: the function's timeout, in ms.
    LearnTimeout(i64),
    /// What the event means for the rule at this index.
    Rule(usize, Obs<'a>),
}

/// An observation and the index of the event it comes from.
pub(super) struct Observed<'a> {
    pub(super) event: usize,
    pub(super) seen: Seen<'a>,
}

impl<S: StateStore> Engine<S> {
    /// Pass 1: what each event means for each rule, and how many events
    /// needed the tolerant JSON reading ([`observe`] with this engine's
    /// rules and profile).
    pub(super) fn observe<'p>(&mut self, p: &'p Payload<'_>) -> (Vec<Observed<'p>>, u64) {
        let mut prof = self.profile.take();
        let events = p.log_events.iter().map(|e| (e.timestamp, &*e.message));
        let out = observe(&self.rules, events, prof.as_mut());
        self.profile = prof;
        out
    }
}

/// Pass 1 over `(timestamp, message)` events: what each means for each rule
/// of `rules`, and how many needed the tolerant JSON reading. Pure but for
/// reading the per-thread tally of tolerant reads
/// ([`lenient_json::tolerant_reads`]) and, when profiling, the clock and
/// `prof`; so it runs on any thread ([`super::Prepared`]).
pub(super) fn observe<'a>(
    rules: &RuleSet,
    events: impl Iterator<Item = (i64, &'a str)>,
    mut prof: Option<&mut Profile>,
) -> (Vec<Observed<'a>>, u64) {
    // Room for about one observation per event up front: growing from empty
    // copied the vector ten times a batch (0.9 M Ir of the text corpus,
    // callgrind).
    let mut out = Vec::with_capacity(events.size_hint().0);
    let mut lenient = 0;
    let plane = rules.plane();
    let (mut scan, mut memo) = (Scan::default(), Memo::default());
    for (i, (timestamp, message)) in events.enumerate() {
        // The platform parser and the matchers (a double-encoded
        // `message`) read JSON too: the per-thread tally sees them all.
        let tolerant_before = lenient_json::tolerant_reads();
        let t0 = prof.as_ref().map(|_| Instant::now());
        let rec = platform::parse(message);
        let t1 = prof.as_ref().map(|_| Instant::now());
        if let Record::App(line) = &rec {
            plane.begin(line.body, line.body_is_json, &mut scan, &mut memo);
        }
        if let (Some(pr), Some(t0), Some(t1)) = (prof.as_mut(), t0, t1) {
            pr.platform += t1 - t0;
            pr.prefilter += t1.elapsed();
        }
        if let Record::Timeout { seconds, .. } = &rec {
            out.push(Observed {
                event: i,
                seen: Seen::LearnTimeout((seconds * 1_000.0).round() as i64),
            });
        }
        let line = Line::new(timestamp, &rec);
        for (ri, rule) in rules.rules.iter().enumerate() {
            let before = out.len();
            let started = prof.as_ref().map(|_| Instant::now());
            let mut m = Matching {
                rule: ri,
                plane,
                scan: &scan,
                memo: &mut memo,
            };
            rule.detector.observe(&line, &mut m, &mut |obs| {
                out.push(Observed {
                    event: i,
                    seen: Seen::Rule(ri, obs),
                })
            });
            if let (Some(pr), Some(started)) = (prof.as_mut(), started) {
                let reads_lines =
                    !plane.rule_matchers(ri).is_empty() || rule.detector.secrets().is_some();
                let tested = !reads_lines || line.app.is_some();
                let hit = tested && (!reads_lines || plane.rule_candidate(ri, &scan));
                pr.rule(ri)
                    .add(tested, hit, out.len() > before, started.elapsed());
            }
        }
        if lenient_json::tolerant_reads() != tolerant_before {
            lenient += 1;
        }
    }
    (out, lenient)
}
