//! Per-event work of each detector kind, and one whole batch through the engine.
//!
//! - `threshold/observe_apply_{json,regex}`: one failed-login line through the
//!   built-in `failed-auth-burst` rule: body parsed as JSON (JSON case),
//!   matchers, key, unique hash, then `Threshold::apply` on the key's window
//!   (which fires and clears every 10th event, as a steady burst would);
//!   `threshold/apply`: the window update alone.
//! - `lifecycle/start_end`: `Lifecycle::start` then `end` of one request on a
//!   stream whose recently-ended list is full (the steady state);
//!   `lifecycle/start_full_stream`: a START on a stream already holding
//!   `MAX_OPEN` open invocations (a START flood: counted, not stored).
//! - `failure/classify_<record>`: `failure::classify` of an already parsed
//!   record (a successful REPORT, the common case, returns at once).
//! - `baseline/apply_{duration,memory}`: `Baseline::apply` on a warm baseline.
//! - `engine/process_{text,json}`: `Engine::process` of a decoded payload of
//!   ~2,000 events (START/END/REPORT, app lines, stack traces, a few timeouts
//!   and failed logins, generated like the end-to-end bench corpus) with the
//!   built-in rules, a fresh `MemoryStore` per batch and a current-thread
//!   tokio runtime; `engine/parse_only_{text,json}`: `platform::parse` of the
//!   same messages, for the share of the batch that is classification;
//!   `engine/process_text_{platform_lines,app_lines}`: the text batch split
//!   into its platform lines and its application lines, each processed alone.
//!   Throughput is bytes of message text. `engine/start_flood_40k`: one
//!   payload of 40,000 STARTs of one stream 1 ms apart, none ended (issue 13:
//!   it took ~4 s while each START scanned the stream's open invocations).
//!
//! Run: `cargo bench --bench detectors` (or e.g. `cargo bench --bench detectors -- engine/`).

mod common;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use logwarden::detect::baseline::{Baseline, BaselineState, Sample};
use logwarden::detect::failure::classify;
use logwarden::detect::lifecycle::{Lifecycle, MAX_OPEN, Started, StreamState};
use logwarden::detect::threshold::{Threshold, WindowState};
use logwarden::detect::{Detector, Key};
use logwarden::engine::{Engine, EngineConfig};
use logwarden::platform::{self, Record};
use logwarden::rules::RuleSet;
use logwarden::state::MemoryStore;
use serde_json::Value;

const RID: &str = "a1b2c3d4-0000-4a6e-9c1d-000000000000";

fn builtin() -> Arc<RuleSet> {
    Arc::new(RuleSet::builtin().expect("built-in rules compile"))
}

fn detector(set: &RuleSet, id: &str) -> Detector {
    set.get(id)
        .unwrap_or_else(|| panic!("built-in rule {id}"))
        .detector
        .clone()
}

fn bench_threshold(c: &mut Criterion) {
    let set = builtin();
    let Detector::Threshold(t) = detector(&set, "failed-auth-burst") else {
        panic!("failed-auth-burst is a threshold rule")
    };
    let json_line = format!(
        "2026-11-22T10:01:00.003Z\t{RID}\tWARN\t{{\"event\":\"login_failed\",\"user\":\"admin\",\"source_ip\":\"203.0.113.7\",\"reason\":\"bad_password\"}}\n"
    );
    let regex_line = "Nov 22 10:00:00 bastion sshd[4711]: Failed password for root from 203.0.113.7 port 50001 ssh2\n".to_string();

    fn step(
        t: &Threshold,
        st: &mut WindowState,
        n: &mut u64,
        body: &str,
        is_json: bool,
        request_id: Option<&str>,
    ) -> Option<(Key, u64)> {
        let json: Option<Value> = if is_json {
            serde_json::from_str(body).ok()
        } else {
            None
        };
        let fields = t.observe(body, json.as_ref())?;
        let key = t.key(&fields)?;
        let unique = t.unique_hash(&fields);
        *n += 1;
        let burst = t.apply(st, *n as i64 * 1_000, *n, unique, body, request_id);
        Some((key, burst.map_or(0, |b| b.count)))
    }

    let mut g = c.benchmark_group("threshold");
    for (name, line) in [
        ("observe_apply_json", &json_line),
        ("observe_apply_regex", &regex_line),
    ] {
        let Record::App(app) = platform::parse(line) else {
            panic!("{name}: an application line")
        };
        let (body, is_json, rid) = (app.body, app.body_is_json, app.request_id.clone());
        let mut st = WindowState::default();
        let mut n = 0;
        assert!(step(&t, &mut st, &mut n, body, is_json, rid.as_deref()).is_some());
        g.throughput(Throughput::Bytes(line.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                step(
                    &t,
                    &mut st,
                    &mut n,
                    black_box(body),
                    is_json,
                    rid.as_deref(),
                )
            })
        });
    }
    g.throughput(Throughput::Elements(1));
    let mut st = WindowState::default();
    let mut n = 0u64;
    g.bench_function("apply", |b| {
        b.iter(|| {
            n += 1;
            t.apply(
                &mut st,
                n as i64 * 1_000,
                n,
                0,
                black_box(&json_line),
                Some(RID),
            )
        })
    });
    g.finish();
}

fn bench_lifecycle(c: &mut Criterion) {
    let set = builtin();
    let Detector::Lifecycle(l) = detector(&set, "missing-end") else {
        panic!("missing-end is a lifecycle rule")
    };
    let l: Lifecycle = l;
    let ids: Vec<String> = (0..1_024)
        .map(|i| format!("c793869b-ee49-415b-a5b6-{i:012x}"))
        .collect();
    let lines: Vec<String> = ids
        .iter()
        .map(|id| format!("START RequestId: {id} Version: $LATEST\n"))
        .collect();
    let mut st = StreamState::default();
    // Steady state: the recently-ended list is full.
    for (i, id) in ids.iter().enumerate() {
        l.start(&mut st, id, i as i64, &lines[i]);
        l.end(&mut st, id);
    }
    let mut g = c.benchmark_group("lifecycle");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut ts = 1_000_000i64;
    g.bench_function("start_end", |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            ts += 10;
            l.start(&mut st, black_box(&ids[i]), ts, &lines[i]);
            l.end(&mut st, black_box(&ids[i]));
        })
    });
    // A START flood: the stream holds `MAX_OPEN`, so every further START is
    // counted and not stored; none of these ids is ever stored or ended.
    let flood: Vec<String> = (0..MAX_OPEN + 1_024)
        .map(|i| format!("5e2a1c0d-f100-4d00-8000-{i:012x}"))
        .collect();
    let mut full = StreamState::default();
    for (i, id) in flood[..MAX_OPEN].iter().enumerate() {
        l.start(&mut full, id, i as i64, "START");
    }
    let late = &flood[MAX_OPEN..];
    let mut ts = MAX_OPEN as i64;
    assert_eq!(l.start(&mut full, &late[0], ts, "START"), Started::Dropped);
    g.bench_function("start_full_stream", |b| {
        b.iter(|| {
            i = (i + 1) % late.len();
            ts += 1;
            l.start(&mut full, black_box(&late[i]), ts, "START")
        })
    });
    g.finish();
}

fn bench_failure(c: &mut Criterion) {
    let cases = [
        (
            "classify_report_success",
            format!(
                "REPORT RequestId: {RID}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB\t\n"
            ),
            false,
        ),
        (
            "classify_report_timeout",
            format!(
                "REPORT RequestId: {RID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 41 MB\tStatus: timeout\n"
            ),
            true,
        ),
        (
            "classify_timeout_line",
            format!("2026-11-22T10:00:03.010Z {RID} Task timed out after 3.00 seconds\n"),
            true,
        ),
        (
            "classify_json_runtime_done_oom",
            format!(
                r#"{{"time":"2026-11-22T10:02:34.100Z","type":"platform.runtimeDone","record":{{"requestId":"{RID}","status":"error","errorType":"Runtime.OutOfMemory","metrics":{{"durationMs":3919.0}}}}}}"#
            ),
            true,
        ),
        (
            "classify_app_line",
            format!("2026-11-22T10:01:00.003Z\t{RID}\tINFO\tprocessing cart 48213 for alice\n"),
            false,
        ),
    ];
    let mut g = c.benchmark_group("failure");
    g.throughput(Throughput::Elements(1));
    for (name, line, fails) in &cases {
        let rec = platform::parse(line);
        assert_eq!(classify(&rec).is_some(), *fails, "{name}");
        g.bench_function(*name, |b| b.iter(|| classify(black_box(&rec))));
    }
    g.finish();
}

fn bench_baseline(c: &mut Criterion) {
    let set = builtin();
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Elements(1));
    for (name, id) in [
        ("apply_duration", "duration-anomaly"),
        ("apply_memory", "memory-anomaly"),
    ] {
        let Detector::Baseline(bl) = detector(&set, id) else {
            panic!("{id} is a baseline rule")
        };
        let bl: Baseline = bl;
        // Jittered samples around 300 ms / 70 MB: a warm baseline that stays silent.
        let samples: Vec<Sample> = (0..64u64)
            .map(|i| Sample {
                duration_ms: 300.0 * (0.8 + 0.4 * ((i * 7_919) % 101) as f64 / 100.0),
                max_memory_used_mb: Some(60 + (i % 20) as u32),
                memory_size_mb: Some(256),
            })
            .collect();
        let mut st = BaselineState::default();
        let mut n = 0u64;
        for _ in 0..200 {
            n += 1;
            bl.apply(&mut st, n, &samples[(n % 64) as usize], Some(30_000));
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                bl.apply(
                    &mut st,
                    n,
                    black_box(&samples[(n % 64) as usize]),
                    Some(30_000),
                )
            })
        });
    }
    g.finish();
}

/// `Engine::process` of `payload`, on a fresh engine (empty state) each time.
fn bench_process(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: String,
    rt: &tokio::runtime::Runtime,
    rules: &Arc<RuleSet>,
    payload: &logwarden::ingest::Payload<'_>,
) {
    g.bench_function(id, |b| {
        b.iter_batched(
            || {
                Engine::new(
                    Arc::clone(rules),
                    MemoryStore::new(),
                    EngineConfig::default(),
                )
            },
            |mut engine| {
                let out = rt.block_on(engine.process(black_box(payload)));
                (engine, out)
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench_engine(c: &mut Criterion) {
    let rules = builtin();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let mut g = c.benchmark_group("engine");
    for (name, format) in [
        ("text", common::Format::Text),
        ("json", common::Format::Json),
    ] {
        let events = common::events(format, 1, 2_000, usize::MAX);
        let payload = common::payload(&events);
        let bytes = common::message_bytes(&events);
        g.throughput(Throughput::Bytes(bytes));
        // One run outside timing: the payload is processed without error.
        let mut engine = Engine::new(
            Arc::clone(&rules),
            MemoryStore::new(),
            EngineConfig::default(),
        );
        let out = rt
            .block_on(engine.process(&payload))
            .expect("batch processes");
        assert_eq!(out.events, events.len());
        bench_process(&mut g, format!("process_{name}"), &rt, &rules, &payload);
        if format == common::Format::Text {
            // The same batch split in two: platform lines only, application lines only.
            for (part, want_app) in [("platform_lines", false), ("app_lines", true)] {
                let mut part_payload = common::payload(&events);
                part_payload
                    .log_events
                    .retain(|e| matches!(platform::parse(&e.message), Record::App(_)) == want_app);
                let part_bytes: u64 = part_payload
                    .log_events
                    .iter()
                    .map(|e| e.message.len() as u64)
                    .sum();
                g.throughput(Throughput::Bytes(part_bytes));
                bench_process(
                    &mut g,
                    format!("process_{name}_{part}"),
                    &rt,
                    &rules,
                    &part_payload,
                );
            }
            g.throughput(Throughput::Bytes(bytes));
        }
        g.bench_function(format!("parse_only_{name}"), |b| {
            b.iter(|| {
                payload
                    .log_events
                    .iter()
                    .filter(|e| !matches!(platform::parse(black_box(&e.message)), Record::App(_)))
                    .count()
            })
        });
    }
    // A START flood in one payload. Few samples: one iteration is a whole
    // 40,000-event batch.
    let flood: Vec<common::Event> = (0..40_000)
        .map(|i| common::Event {
            timestamp: 1_795_341_600_000 + i,
            message: format!("START RequestId: {i:08x}-0000-4000-8000-{i:012x} Version: $LATEST\n"),
        })
        .collect();
    let payload = common::payload(&flood);
    g.throughput(Throughput::Elements(flood.len() as u64));
    g.sample_size(10);
    bench_process(&mut g, "start_flood_40k".into(), &rt, &rules, &payload);
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = bench_threshold, bench_lifecycle, bench_failure, bench_baseline, bench_engine
}
criterion_main!(benches);
