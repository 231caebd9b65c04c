//! Pass 1: every event classified once, and what it means for each rule.
//! Pure: no state is read here.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Instant;

use super::Engine;
use crate::detect::baseline::Sample;
use crate::detect::distinct::Distinct;
use crate::detect::failure::{Failed, Failure, classify};
use crate::detect::leak::MemoryPoint;
use crate::detect::matcher::{Memo, Plane, Scan};
use crate::detect::pattern::Pattern;
use crate::detect::threshold::Threshold;
use crate::detect::{Detector, Key};
use crate::ingest::{LogEvent, Payload};
use crate::lenient_json;
use crate::platform::{self, AppLine, Record, Report, Status};
use crate::rules::Rule;
use crate::state::StateStore;

/// An observation of pass 1. Request ids borrow from the batch's messages.
pub(super) enum Obs<'a> {
    Threshold {
        rule: usize,
        key: Key,
        unique: u64,
        request_id: Option<Cow<'a, str>>,
    },
    Failure {
        rule: usize,
        request_id: Option<Cow<'a, str>>,
        metrics: BTreeMap<String, f64>,
    },
    Baseline {
        rule: usize,
        request_id: Cow<'a, str>,
        sample: Sample,
    },
    Start {
        rule: usize,
        request_id: Cow<'a, str>,
    },
    End {
        rule: usize,
        request_id: Cow<'a, str>,
    },
    LearnTimeout {
        ms: i64,
    },
    RateStart {
        rule: usize,
        request_id: Cow<'a, str>,
    },
    RateReport {
        rule: usize,
        billed_ms: Option<u64>,
        memory_mb: Option<u32>,
    },
    Leak {
        rule: usize,
        request_id: Cow<'a, str>,
        point: MemoryPoint,
    },
    Distinct {
        rule: usize,
        key: Key,
        value: u64,
        request_id: Option<Cow<'a, str>>,
    },
    Pattern {
        rule: usize,
        key: Key,
        request_id: Option<Cow<'a, str>>,
    },
}

/// One event as every rule sees it.
struct Line<'p, 'r> {
    index: usize,
    event: &'p LogEvent<'p>,
    rec: &'r Record<'p>,
    app: Option<&'r AppLine<'p>>,
    failed: Option<&'r Failed<'r>>,
}

/// An observation and the index of the event it comes from.
pub(super) struct Observed<'a> {
    pub(super) event: usize,
    pub(super) obs: Obs<'a>,
}

impl<S: StateStore> Engine<S> {
    /// Pass 1: what each event means for each rule, and how many events
    /// needed the tolerant JSON reading. Pure but for reading the per-thread
    /// tally of tolerant reads ([`lenient_json::tolerant_reads`]) and, when
    /// profiling, the clock and the profile.
    pub(super) fn observe<'p>(&mut self, p: &'p Payload<'_>) -> (Vec<Observed<'p>>, u64) {
        let mut out = Vec::new();
        let mut lenient = 0;
        let mut prof = self.profile.take();
        let plane = self.rules.plane();
        let (mut scan, mut memo) = (Scan::default(), Memo::default());
        for (i, ev) in p.log_events.iter().enumerate() {
            // The platform parser and the matchers (a double-encoded
            // `message`) read JSON too: the per-thread tally sees them all.
            let tolerant_before = lenient_json::tolerant_reads();
            let t0 = prof.as_ref().map(|_| Instant::now());
            let rec = platform::parse(&ev.message);
            let t1 = prof.as_ref().map(|_| Instant::now());
            let app = match &rec {
                Record::App(line) => {
                    plane.begin(line.body, line.body_is_json, &mut scan, &mut memo);
                    Some(line)
                }
                _ => None,
            };
            if let (Some(pr), Some(t0), Some(t1)) = (prof.as_mut(), t0, t1) {
                pr.platform += t1 - t0;
                pr.prefilter += t1.elapsed();
            }
            if let Record::Timeout { seconds, .. } = &rec {
                out.push(Observed {
                    event: i,
                    obs: Obs::LearnTimeout {
                        ms: (seconds * 1_000.0).round() as i64,
                    },
                });
            }
            let failed = classify(&rec);
            let line = Line {
                index: i,
                event: ev,
                rec: &rec,
                app,
                failed: failed.as_ref(),
            };
            for (ri, rule) in self.rules.rules.iter().enumerate() {
                let before = out.len();
                let started = prof.as_ref().map(|_| Instant::now());
                self.observe_rule(ri, rule, &line, (&scan, &mut memo), &mut out);
                if let (Some(pr), Some(started)) = (prof.as_mut(), started) {
                    let reads_lines =
                        !plane.rule_matchers(ri).is_empty() || rule.detector.secrets().is_some();
                    let tested = !reads_lines || app.is_some();
                    let hit = tested && (!reads_lines || plane.rule_candidate(ri, &scan));
                    pr.rule(ri)
                        .add(tested, hit, out.len() > before, started.elapsed());
                }
            }
            if lenient_json::tolerant_reads() != tolerant_before {
                lenient += 1;
            }
        }
        self.profile = prof;
        (out, lenient)
    }

    /// What one event means for one rule: observations pushed to `out`.
    fn observe_rule<'p>(
        &self,
        ri: usize,
        rule: &Rule,
        line: &Line<'p, '_>,
        (scan, memo): (&Scan, &mut Memo),
        out: &mut Vec<Observed<'p>>,
    ) {
        let plane = self.rules.plane();
        let obs = match &rule.detector {
            Detector::Threshold(t) => line
                .app
                .and_then(|app| threshold_obs(ri, t, app, plane, scan, memo)),
            Detector::Distinct(d) => line
                .app
                .and_then(|app| distinct_obs(ri, d, app, plane, scan, memo)),
            Detector::Pattern(pat) => {
                let Some(app) = line.app else { return };
                for key in pattern_keys(ri, pat, app, plane, scan, memo) {
                    out.push(Observed {
                        event: line.index,
                        obs: Obs::Pattern {
                            rule: ri,
                            key,
                            request_id: app.request_id.clone(),
                        },
                    });
                }
                return;
            }
            Detector::Failure(f) => failure_obs(ri, f, line.failed),
            Detector::Baseline(_) => baseline_obs(ri, line.rec),
            Detector::Lifecycle(_) => lifecycle_obs(ri, line.rec),
            Detector::Rate(_) => rate_obs(ri, line.rec),
            Detector::Leak(_) => leak_obs(ri, line.rec, line.event.timestamp),
        };
        if let Some(obs) = obs {
            out.push(Observed {
                event: line.index,
                obs,
            });
        }
    }
}

/// A threshold rule's first matching matcher, with the key its fields give.
fn threshold_obs<'p>(
    ri: usize,
    t: &Threshold,
    app: &AppLine<'p>,
    plane: &Plane,
    scan: &Scan,
    memo: &mut Memo,
) -> Option<Obs<'p>> {
    let fields = plane.first_match(ri, app.body, scan, memo)?;
    let key = t.key(&fields)?;
    Some(Obs::Threshold {
        rule: ri,
        unique: t.unique_hash(&fields),
        key,
        request_id: app.request_id.clone(),
    })
}

/// A distinct rule's first matching matcher: its key and the counted value.
fn distinct_obs<'p>(
    ri: usize,
    d: &Distinct,
    app: &AppLine<'p>,
    plane: &Plane,
    scan: &Scan,
    memo: &mut Memo,
) -> Option<Obs<'p>> {
    let fields = plane.first_match(ri, app.body, scan, memo)?;
    let (key, value) = d.key_and_value(&fields)?;
    Some(Obs::Distinct {
        rule: ri,
        key,
        value,
        request_id: app.request_id.clone(),
    })
}

/// A pattern rule's keys: one for a matching matcher, one per secret found.
fn pattern_keys(
    ri: usize,
    pat: &Pattern,
    app: &AppLine<'_>,
    plane: &Plane,
    scan: &Scan,
    memo: &mut Memo,
) -> Vec<Key> {
    let fields = plane.first_match(ri, app.body, scan, memo);
    let kinds = match &pat.secrets {
        Some(f) => plane.secrets(ri, f, app.body, scan),
        None => Vec::new(),
    };
    pat.keys(fields, &kinds)
}

/// A failed invocation of a class the rule is on, with the figures it carries.
fn failure_obs<'p>(ri: usize, f: &Failure, failed: Option<&Failed<'_>>) -> Option<Obs<'p>> {
    let fail = failed.filter(|x| f.on.contains(&x.class))?;
    let mut metrics = BTreeMap::new();
    if let Some(d) = fail.duration_ms {
        metrics.insert("duration_ms".to_string(), d);
    }
    if let Some((used, size)) = fail.memory_mb {
        metrics.insert("max_memory_used_mb".to_string(), f64::from(used));
        metrics.insert("memory_size_mb".to_string(), f64::from(size));
    }
    Some(Obs::Failure {
        rule: ri,
        request_id: fail
            .request_id
            .as_deref()
            .map(|r| Cow::Owned(r.to_string())),
        metrics,
    })
}

/// A successful invocation's duration and memory, a baseline's sample.
fn baseline_obs<'p>(ri: usize, rec: &Record<'p>) -> Option<Obs<'p>> {
    match rec {
        Record::Report(r) if r.status == Status::Success && r.duration_ms > 0.0 => {
            Some(Obs::Baseline {
                rule: ri,
                request_id: r.request_id.clone(),
                sample: Sample {
                    duration_ms: r.duration_ms,
                    max_memory_used_mb: r.max_memory_used_mb,
                    memory_size_mb: r.memory_size_mb,
                },
            })
        }
        _ => None,
    }
}

/// START opens an invocation; END, RUNTIME_DONE and REPORT close it.
fn lifecycle_obs<'p>(ri: usize, rec: &Record<'p>) -> Option<Obs<'p>> {
    match rec {
        Record::Start { request_id, .. } => Some(Obs::Start {
            rule: ri,
            request_id: request_id.clone(),
        }),
        Record::End { request_id } | Record::RuntimeDone { request_id, .. } => Some(Obs::End {
            rule: ri,
            request_id: request_id.clone(),
        }),
        Record::Report(r) => Some(Obs::End {
            rule: ri,
            request_id: r.request_id.clone(),
        }),
        _ => None,
    }
}

/// START counts an invocation; REPORT carries its billed time and memory.
fn rate_obs<'p>(ri: usize, rec: &Record<'p>) -> Option<Obs<'p>> {
    match rec {
        Record::Start { request_id, .. } => Some(Obs::RateStart {
            rule: ri,
            request_id: request_id.clone(),
        }),
        Record::Report(r) => Some(Obs::RateReport {
            rule: ri,
            billed_ms: r.billed_duration_ms,
            memory_mb: r.memory_size_mb,
        }),
        _ => None,
    }
}

/// A successful REPORT's memory: one point of its environment's trend.
fn leak_obs<'p>(ri: usize, rec: &Record<'p>, ts: i64) -> Option<Obs<'p>> {
    match rec {
        Record::Report(Report {
            request_id,
            status: Status::Success,
            max_memory_used_mb: Some(used),
            memory_size_mb: Some(size),
            init_duration_ms,
            restore_duration_ms,
            ..
        }) => Some(Obs::Leak {
            rule: ri,
            request_id: request_id.clone(),
            point: MemoryPoint {
                ts,
                used_mb: *used,
                memory_size_mb: *size,
                cold: init_duration_ms.is_some() || restore_duration_ms.is_some(),
            },
        }),
        _ => None,
    }
}
