//! Rule matching on application lines: what the built-in rule pack costs per
//! line, and where that goes, per matcher kind.
//!
//! - `builtin/<case>`: every threshold rule of the built-in pack
//!   (`RuleSet::builtin()`; today `failed-auth-burst`) on one application line
//!   body, the way the engine does it: the matching plane's prefilter pass,
//!   the body parsed as JSON when a candidate JSON matcher reads it, then the
//!   candidate matchers in order (first match wins) and the group key. Cases: hits through each
//!   matcher family (sshd regex, PAM regex, JSON `event` after the Lambda text
//!   prefix, ECS inside a JSON-format log's `message`, API Gateway 401) and the
//!   common misses (a text line, a JSON request log the needle check rules
//!   out, one it lets through to a full JSON parse, a stack trace).
//! - `matcher/<kind>_<hit|miss>`: one matcher alone on an already parsed body:
//!   `regex` (sshd `Failed password`), `regex_pam` (lazy `.*?`), `json`
//!   (conditions only), `json_fields` (conditions plus field extraction),
//!   `json_in_message` (ECS paths inside `message`).
//! - `json_parse/<case>`: `serde_json::from_str::<Value>` of the body alone,
//!   the share of a JSON hit that is parsing.
//!
//! Throughput is bytes of the line body. Platform parsing is excluded (see
//! `benches/platform.rs`).
//!
//! Run: `cargo bench --bench rules` (or e.g. `cargo bench --bench rules -- builtin/`).

mod common;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use logwarden::detect::matcher::{Memo, Scan};
use logwarden::detect::{Detector, Key, threshold::Threshold};
use logwarden::platform::{self, Record};
use logwarden::rules::{Matcher, RuleSet};
use serde_json::Value;

const RID: &str = "a1b2c3d4-0000-4a6e-9c1d-000000000000";

/// The body of an application line, as the engine's rules see it.
fn body(message: &str) -> (&str, bool) {
    match platform::parse(message) {
        Record::App(line) => (line.body, line.body_is_json),
        other => panic!("not an application line: {other:?}"),
    }
}

/// The engine's per-line work for one threshold rule (see `Engine::observe`):
/// the matching plane's prefilter pass, then the rule's candidate matchers
/// (the body parsed as JSON once, only when a candidate reads JSON).
struct Prepared {
    set: Arc<RuleSet>,
    rule: usize,
    threshold: Threshold,
}

impl Prepared {
    fn observe(&self, body: &str, body_is_json: bool) -> Option<Key> {
        let plane = self.set.plane();
        let (mut scan, mut memo) = (Scan::default(), Memo::default());
        plane.begin(body, body_is_json, &mut scan, &mut memo);
        let fields = plane.first_match(self.rule, body, &scan, &mut memo)?;
        self.threshold.key(&fields)
    }
}

fn builtin_thresholds() -> Vec<Prepared> {
    let set = Arc::new(RuleSet::builtin().expect("built-in rules compile"));
    set.rules
        .iter()
        .enumerate()
        .filter_map(|(rule, r)| match &r.detector {
            Detector::Threshold(t) => Some(Prepared {
                set: Arc::clone(&set),
                rule,
                threshold: t.clone(),
            }),
            _ => None,
        })
        .collect()
}

fn stack_trace() -> String {
    let mut s = format!(
        "2026-11-22T10:01:00.003Z\t{RID}\tERROR\t[ERROR] ConnectionError: upstream closed the connection\nTraceback (most recent call last):\n"
    );
    let mut i = 0;
    while s.len() < 2_400 {
        s.push_str(&format!(
            "  File \"/var/task/services/payment.py\", line {}, in charge_{i}\n    result = client.charge(order_id, session=session)\n",
            100 + 37 * i
        ));
        i += 1;
    }
    s.push_str("ConnectionError: upstream closed the connection\n");
    s
}

/// (id, message, whether the built-in pack must match it).
fn cases() -> Vec<(&'static str, String, bool)> {
    vec![
        (
            "hit_sshd_failed_password",
            "Nov 22 10:00:00 bastion sshd[4711]: Failed password for root from 203.0.113.7 port 50001 ssh2".into(),
            true,
        ),
        (
            "hit_pam_failure",
            "login[9]: pam_unix(login:auth): authentication failure; logname= uid=0 euid=0 tty=tty1 ruser= rhost=192.0.2.200  user=alice".into(),
            true,
        ),
        (
            "hit_prefixed_json_event",
            format!(
                "2026-11-22T10:01:00.003Z\t{RID}\tWARN\t{{\"event\": \"login_failed\", \"source_ip\": \"203.0.113.7\", \"user\": \"admin\", \"reason\": \"bad_password\"}}\n"
            ),
            true,
        ),
        (
            "hit_json_format_ecs_in_message",
            format!(
                r#"{{"timestamp":"2026-11-22T10:00:00Z","level":"WARN","requestId":"{RID}","message":{{"event":{{"outcome":"failure","category":["authentication"]}},"source":{{"ip":"192.0.2.17"}},"user":{{"name":"erin"}}}}}}"#
            ),
            true,
        ),
        (
            "hit_apigw_401",
            r#"{"requestId":"a1","ip":"198.51.100.4","httpMethod":"POST","resourcePath":"/login","status":"401"}"#.into(),
            true,
        ),
        (
            "miss_prefixed_text",
            format!(
                "2026-11-22T10:01:00.003Z\t{RID}\tINFO\tprocessing cart 48213 for alice: cache miss for key 112; retrying upstream call, attempt 2; loaded cart items: 7;\n"
            ),
            false,
        ),
        (
            "miss_prefixed_json_no_needle",
            format!(
                "2026-11-22T10:01:00.003Z\t{RID}\tINFO\t{{\"event\":\"request\",\"path\":\"/api/cart\",\"status\":200,\"duration_ms\":41.52,\"user\":\"bob\",\"trace_id\":\"1-6553f1e2-0a8c7fd02c1e480aed55ef07\",\"detail\":\"cache miss for key 12; queue depth 7\"}}\n"
            ),
            false,
        ),
        (
            // `403` inside the trace id passes the needle check: a full parse, then no match.
            "miss_prefixed_json_needle",
            format!(
                "2026-11-22T10:01:00.003Z\t{RID}\tINFO\t{{\"event\":\"request\",\"path\":\"/api/cart\",\"status\":200,\"duration_ms\":41.52,\"user\":\"bob\",\"trace_id\":\"1-6553f403-0a8c7fd02c1e480aed55ef07\",\"detail\":\"cache miss for key 12; queue depth 7\"}}\n"
            ),
            false,
        ),
        (
            "miss_json_format_request",
            format!(
                r#"{{"timestamp":"2026-11-22T10:02:30.200Z","level":"INFO","message":"request","logger":"root","requestId":"{RID}","event":"request","path":"/api/cart","status":200,"duration_ms":41.5,"user":"bob"}}"#
            ),
            false,
        ),
        ("miss_stack_trace", stack_trace(), false),
    ]
}

fn bench_builtin(c: &mut Criterion) {
    let rules = builtin_thresholds();
    assert!(!rules.is_empty(), "the built-in pack has a threshold rule");
    let mut g = c.benchmark_group("builtin");
    for (name, message, hit) in cases() {
        let (body, is_json) = body(&message);
        let matched = rules.iter().any(|r| r.observe(body, is_json).is_some());
        assert_eq!(matched, hit, "{name}");
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let body = black_box(body);
                rules
                    .iter()
                    .filter_map(|r| r.observe(body, is_json))
                    .count()
            })
        });
    }
    g.finish();
}

/// A one-matcher threshold rule, compiled through the public loader.
fn custom_matcher(yaml_match: &str) -> Matcher {
    let text = format!(
        "id: bench\ntitle: bench\nseverity: low\nkind: threshold\ndescription: bench\nmatch:\n{yaml_match}\nthreshold: 10\nwindow: 60s\n"
    );
    let set = RuleSet::from_sources(vec![("bench.yaml".into(), text)])
        .unwrap_or_else(|e| panic!("bench rule: {e}"));
    match &set.rules[0].detector {
        Detector::Threshold(t) => t.matchers[0].clone(),
        _ => unreachable!("a threshold rule"),
    }
}

fn bench_matchers(c: &mut Criterion) {
    let builtin = builtin_thresholds();
    let m = &builtin[0].threshold.matchers;
    // Built-in failed-auth-burst matchers, by position in detectors/failed-auth-burst.yaml.
    let regex_sshd = &m[0];
    let regex_pam = &m[3];
    let json_fields = &m[5];
    let json_ecs = &m[7];
    let json_only = custom_matcher(
        "  - json: {event: [login_failed, login_failure, authentication_failed, auth_failed]}",
    );

    let all = cases();
    let msg = |id: &str| {
        all.iter()
            .find(|c| c.0 == id)
            .map(|c| c.1.clone())
            .expect("case exists")
    };
    let sshd = msg("hit_sshd_failed_password");
    let miss_text = msg("miss_prefixed_text");
    let pam = msg("hit_pam_failure");
    let trace = msg("miss_stack_trace");
    let login_json = msg("hit_prefixed_json_event");
    let request_json = msg("miss_prefixed_json_needle");
    let ecs = msg("hit_json_format_ecs_in_message");

    let parsed = |message: &str| -> Value {
        serde_json::from_str(body(message).0).expect("JSON body parses")
    };
    let login_v = parsed(&login_json);
    let request_v = parsed(&request_json);
    let ecs_v = parsed(&ecs);

    // (id, matcher, message, parsed body, expected hit)
    let cases: Vec<(&str, &Matcher, &str, Option<&Value>, bool)> = vec![
        ("regex_hit", regex_sshd, &sshd, None, true),
        ("regex_miss", regex_sshd, &miss_text, None, false),
        ("regex_miss_stack_trace", regex_sshd, &trace, None, false),
        ("regex_pam_hit", regex_pam, &pam, None, true),
        ("regex_pam_miss", regex_pam, &miss_text, None, false),
        ("regex_pam_miss_stack_trace", regex_pam, &trace, None, false),
        ("json_hit", &json_only, &login_json, Some(&login_v), true),
        (
            "json_miss",
            &json_only,
            &request_json,
            Some(&request_v),
            false,
        ),
        (
            "json_fields_hit",
            json_fields,
            &login_json,
            Some(&login_v),
            true,
        ),
        (
            "json_fields_miss",
            json_fields,
            &request_json,
            Some(&request_v),
            false,
        ),
        ("json_in_message_hit", json_ecs, &ecs, Some(&ecs_v), true),
        (
            "json_in_message_miss",
            json_ecs,
            &request_json,
            Some(&request_v),
            false,
        ),
    ];
    let mut g = c.benchmark_group("matcher");
    for (name, matcher, message, json, hit) in cases {
        let body = body(message).0;
        assert_eq!(matcher.matches(body, json).is_some(), hit, "{name}");
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| matcher.matches(black_box(body), black_box(json)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("json_parse");
    for (name, message) in [
        ("prefixed_json_login", &login_json),
        ("prefixed_json_request", &request_json),
        ("json_format_ecs", &ecs),
    ] {
        let body = body(message).0;
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| serde_json::from_str::<Value>(black_box(body)).ok())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = bench_builtin, bench_matchers
}
criterion_main!(benches);
