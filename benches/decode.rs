//! Decoding one subscription record of about 1 MB (decoded), as CloudWatch
//! Logs delivers them: base64 of gzip of the payload JSON.
//!
//! - `decode_data/<format>`: base64 → capped gunzip (`ingest::decode_data`).
//! - `gunzip_capped/<format>`: the gunzip alone, into a reused buffer, so that
//!   `decode_data` minus this is base64 and allocation.
//! - `parse_payload/<format>`: the decoded JSON → borrowed `Payload`
//!   (`ingest::parse_payload`; messages with escapes, e.g. a trailing `\n`,
//!   are unescaped into owned strings).
//!
//! `<format>` is `text` or `json` (the Lambda log format of the generated
//! events; JSON-format messages carry escaped quotes). Throughput is bytes of
//! decoded payload JSON, as the end-to-end bench counts MB/s. The record is
//! generated in the bench (deterministic generator, gzip level 6, standard
//! base64).
//!
//! Run: `cargo bench --bench decode`.

mod common;

use std::hint::black_box;
use std::io::Write as _;

use base64::Engine as _;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;
use logwarden::ingest::{
    DEFAULT_MAX_DECODED_BYTES, Limits, decode_data, gunzip_capped, parse_payload,
};

const TARGET: usize = 1_000_000;

/// A payload JSON of at most [`TARGET`] bytes, whole invocations only.
fn payload_json(format: common::Format) -> Vec<u8> {
    let mut budget = TARGET;
    loop {
        let events = common::events(format, 7, usize::MAX, budget);
        let json = common::payload_json(&events);
        if json.len() <= TARGET {
            return json;
        }
        budget = budget * TARGET / json.len() * 99 / 100;
    }
}

fn record(json: &[u8]) -> (Vec<u8>, String) {
    let mut enc = GzEncoder::new(Vec::new(), Compression::new(6));
    enc.write_all(json).expect("gzip to memory");
    let gz = enc.finish().expect("gzip to memory");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&gz);
    (gz, b64)
}

fn bench_decode(c: &mut Criterion) {
    let limits = Limits::default();
    let inputs: Vec<(&str, Vec<u8>)> = [
        ("text", common::Format::Text),
        ("json", common::Format::Json),
    ]
    .into_iter()
    .map(|(name, f)| (name, payload_json(f)))
    .collect();
    let records: Vec<(&str, &[u8], Vec<u8>, String)> = inputs
        .iter()
        .map(|(name, json)| {
            let (gz, b64) = record(json);
            (*name, json.as_slice(), gz, b64)
        })
        .collect();
    for (_, json, _, b64) in &records {
        assert_eq!(decode_data(b64, &limits).expect("decodes"), *json);
    }

    let mut g = c.benchmark_group("decode_data");
    for (name, json, _, b64) in &records {
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function(*name, |b| b.iter(|| decode_data(black_box(b64), &limits)));
    }
    g.finish();

    let mut g = c.benchmark_group("gunzip_capped");
    for (name, json, gz, _) in &records {
        g.throughput(Throughput::Bytes(json.len() as u64));
        let mut out = Vec::with_capacity(json.len());
        g.bench_function(*name, |b| {
            b.iter(|| {
                out.clear();
                gunzip_capped(black_box(gz), DEFAULT_MAX_DECODED_BYTES, &mut out)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("parse_payload");
    for (name, json, _, _) in &records {
        let events = parse_payload(json)
            .expect("payload parses")
            .log_events
            .len();
        assert!(events > 1_000, "{name}: {events} events");
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function(*name, |b| b.iter(|| parse_payload(black_box(json))));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = bench_decode
}
criterion_main!(benches);
