//! `platform::parse` per kind of CloudWatch Logs message: what classifying one
//! line costs, by line kind, with throughput in bytes of the message.
//!
//! Bench ids are `parse/<kind>`: text-format START, END, REPORT (plain, with
//! `Init Duration`, with `Status: error` and `Error Type`), the timeout line,
//! JSON-format `platform.start`, `platform.runtimeDone` and `platform.report`,
//! application lines (Lambda text prefix with a text or JSON body, the JSON
//! log format, no prefix at all) and a ~2.5 KB stack trace.
//!
//! Run: `cargo bench --bench platform` (all), or with a filter, e.g.
//! `cargo bench --bench platform -- parse/text_report`. Warm-up and
//! measurement times are short by default (0.5 s / 1.5 s per bench); pass
//! `--warm-up-time`/`--measurement-time` for steadier numbers.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logwarden::platform::{self, Record};

const RID: &str = "c793869b-ee49-415b-a5b6-4fd21e8dedac";

/// A Python traceback after the Lambda text prefix, about 2.5 KB, one event.
fn stack_trace_line() -> String {
    let modules = [
        "app",
        "handlers/checkout",
        "services/payment",
        "lib/db",
        "lib/http_client",
    ];
    let names = ["charge", "reserve", "query", "fetch", "commit", "retry"];
    let mut s = format!(
        "2026-11-22T10:01:00.003Z\t{RID}\tERROR\t[ERROR] ConnectionError: upstream payment gateway closed the connection\nTraceback (most recent call last):\n"
    );
    let mut i = 0;
    while s.len() < 2_400 {
        let m = modules[i % modules.len()];
        let n = names[i % names.len()];
        s.push_str(&format!(
            "  File \"/var/task/{m}.py\", line {}, in {n}_order\n    result = client.{n}(order_id, session=session)\n",
            100 + 37 * i
        ));
        i += 1;
    }
    s.push_str("ConnectionError: upstream payment gateway closed the connection\n");
    s
}

fn cases() -> Vec<(&'static str, String)> {
    vec![
        (
            "text_start",
            format!("START RequestId: {RID} Version: $LATEST\n"),
        ),
        ("text_end", format!("END RequestId: {RID}\n")),
        (
            "text_report",
            format!(
                "REPORT RequestId: {RID}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB\t\n"
            ),
        ),
        (
            "text_report_init",
            format!(
                "REPORT RequestId: {RID}\tDuration: 4157.16 ms\tBilled Duration: 4158 ms\tMemory Size: 256 MB\tMax Memory Used: 99 MB\tInit Duration: 841.60 ms\t\n"
            ),
        ),
        (
            "text_report_status_error",
            format!(
                "REPORT RequestId: {RID}\tDuration: 376256.59 ms\tBilled Duration: 376257 ms\tMemory Size: 10239 MB\tMax Memory Used: 10239 MB\tInit Duration: 551.73 ms\tStatus: error\tError Type: Runtime.OutOfMemory\n"
            ),
        ),
        (
            "text_timeout",
            format!("2026-11-22T10:00:03.010Z {RID} Task timed out after 3.00 seconds\n"),
        ),
        (
            "json_platform_start",
            format!(
                r#"{{"time":"2026-11-22T10:02:30.181Z","type":"platform.start","record":{{"requestId":"{RID}","version":"$LATEST"}}}}"#
            ),
        ),
        (
            "json_platform_runtime_done",
            format!(
                r#"{{"time":"2026-11-22T10:02:34.100Z","type":"platform.runtimeDone","record":{{"requestId":"{RID}","status":"success","metrics":{{"durationMs":3919.0,"producedBytes":40}}}}}}"#
            ),
        ),
        (
            "json_platform_report",
            format!(
                r#"{{"time":"2026-11-22T10:02:34.102Z","type":"platform.report","record":{{"requestId":"{RID}","status":"success","metrics":{{"durationMs":11.642,"billedDurationMs":12,"memorySizeMB":128,"maxMemoryUsedMB":67,"initDurationMs":174.055}}}}}}"#
            ),
        ),
        (
            "app_prefixed_text",
            format!(
                "2026-11-22T10:01:00.003Z\t{RID}\tINFO\tprocessing cart 48213 for alice: cache miss for key 112; retrying upstream call, attempt 2; loaded cart items: 7;\n"
            ),
        ),
        (
            "app_prefixed_json",
            format!(
                "2026-11-22T10:01:00.003Z\t{RID}\tWARN\t{{\"event\":\"login_failed\",\"user\":\"admin\",\"source_ip\":\"203.0.113.7\",\"detail\":\"session refreshed, ttl 300; queue depth 12\"}}\n"
            ),
        ),
        (
            "app_json_format",
            format!(
                r#"{{"timestamp":"2026-11-22T10:02:30.200Z","level":"INFO","message":"resizing 48 MB TIFF to 12 sizes","logger":"root","requestId":"{RID}","event":"request","path":"/api/cart","status":200,"duration_ms":41.5}}"#
            ),
        ),
        (
            "app_plain",
            "Nov 22 10:00:00 bastion sshd[4711]: Failed password for root from 203.0.113.7 port 50001 ssh2".to_string(),
        ),
        ("app_stack_trace", stack_trace_line()),
    ]
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, line) in cases() {
        // Guard against a case silently changing kind (a bench of the wrong path).
        let rec = platform::parse(&line);
        let kind_ok = match name {
            "text_start" | "json_platform_start" => matches!(rec, Record::Start { .. }),
            "text_end" => matches!(rec, Record::End { .. }),
            "json_platform_runtime_done" => matches!(rec, Record::RuntimeDone { .. }),
            n if n.contains("report") => matches!(rec, Record::Report(_)),
            "text_timeout" => matches!(rec, Record::Timeout { .. }),
            _ => matches!(rec, Record::App(_)),
        };
        assert!(kind_ok, "{name} parsed as {rec:?}");
        g.throughput(Throughput::Bytes(line.len() as u64));
        g.bench_function(name, |b| b.iter(|| platform::parse(black_box(&line))));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = bench_parse
}
criterion_main!(benches);
