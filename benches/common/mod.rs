//! Shared by the benches: a small deterministic generator of Lambda log events
//! shaped like the corpus of the project's end-to-end benchmark generator
//! (`gen.py` in the shared bench folder): per invocation START, 3–9
//! application lines of 80–400 bytes (JSON and text, ~6 % failed logins from
//! a few IPs), ~1 stack trace of 0.5–4 KB, END (JSON format: runtimeDone) and
//! REPORT; cold starts add INIT_START and `Init Duration`, ~1.5 % of
//! invocations time out. Same seed → same events. No randomness crate: a
//! splitmix64 is enough and keeps the benches' dependencies to criterion.
#![allow(dead_code)]

use std::borrow::Cow;

use logwarden::ingest::{LogEvent, MessageType, Payload};

/// 2026-11-22T10:00:00Z, the fixtures' epoch.
pub const T0_MS: i64 = 1_795_341_600_000;

/// Log group of the generated events.
pub const LOG_GROUP: &str = "/aws/lambda/checkout";

/// Log stream of the generated events.
pub const LOG_STREAM: &str = "2026/11/22/[$LATEST]7f1c2a9e0b3d4c5e8f90a1b2c3d4e5f6";

/// Lambda log format of the generated events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain-text platform lines, `<ts>\t<request id>\t<LEVEL>\t` app prefix.
    Text,
    /// JSON platform records and JSON application logs.
    Json,
}

/// One generated log event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Event time, ms since the epoch.
    pub timestamp: i64,
    /// The message.
    pub message: String,
}

/// splitmix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next_u64() % xs.len() as u64) as usize]
    }
}

const BAD_IPS: [&str; 6] = [
    "203.0.113.7",
    "198.51.100.23",
    "192.0.2.200",
    "203.0.113.99",
    "198.51.100.4",
    "192.0.2.17",
];
const BAD_WEIGHTS: [u64; 6] = [40, 25, 15, 10, 6, 4];
const USERS: [&str; 15] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar", "peggy", "trent", "victor",
];
const WORDS: [&str; 35] = [
    "order",
    "cart",
    "item",
    "sku",
    "price",
    "total",
    "customer",
    "session",
    "token",
    "cache",
    "hit",
    "miss",
    "retry",
    "backoff",
    "upstream",
    "latency",
    "region",
    "shard",
    "queue",
    "batch",
    "commit",
    "rollback",
    "checkout",
    "payment",
    "invoice",
    "shipping",
    "address",
    "warehouse",
    "inventory",
    "promo",
    "coupon",
    "currency",
    "tax",
    "refund",
    "ledger",
];
const PHRASES: [&str; 16] = [
    "cache miss for key",
    "retrying upstream call, attempt",
    "loaded cart items:",
    "applied promo code",
    "inventory reserved for sku",
    "payment authorised, amount",
    "connection pool size",
    "queue depth",
    "fetched price list version",
    "tax computed for region eu-west-",
    "shipping quote in ms:",
    "ledger entry",
    "session refreshed, ttl",
    "feature flag new_checkout=true, cohort",
    "db query took ms:",
    "http 200 from upstream in ms:",
];
const PATHS: [&str; 7] = [
    "/api/cart",
    "/api/checkout",
    "/api/login",
    "/api/orders",
    "/api/payment",
    "/api/inventory",
    "/health",
];
const STATUSES: [u32; 8] = [200, 200, 200, 201, 204, 400, 404, 500];
const EXC: [&str; 6] = [
    "ValueError",
    "KeyError",
    "TimeoutError",
    "ConnectionError",
    "botocore.exceptions.ClientError",
    "json.decoder.JSONDecodeError",
];
const MODULES: [&str; 7] = [
    "app",
    "handlers/checkout",
    "services/payment",
    "services/inventory",
    "lib/db",
    "lib/http_client",
    "models/order",
];
const TIMEOUT_MS: i64 = 3_000;

/// `2026-11-22T10:00:00.000Z` + `ms` (less than 14 hours).
pub fn iso(ms: i64) -> String {
    let h = 10 + ms / 3_600_000;
    let m = ms / 60_000 % 60;
    let s = ms / 1_000 % 60;
    format!("2026-11-22T{h:02}:{m:02}:{s:02}.{:03}Z", ms % 1_000)
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).expect("a str serializes")
}

struct Gen {
    r: Rng,
    format: Format,
    frames: Vec<String>,
}

impl Gen {
    fn new(seed: u64, format: Format) -> Self {
        let mut r = Rng::new(seed);
        let frames = (0..60)
            .map(|_| {
                let w: Vec<&str> = (0..7).map(|_| *r.pick(&WORDS)).collect();
                format!(
                    "  File \"/var/task/{}.py\", line {}, in {}_{}\n    {} = {}.{}({}, {})\n",
                    r.pick(&MODULES),
                    r.range(10, 900),
                    w[0],
                    w[1],
                    w[2],
                    w[3],
                    w[4],
                    w[5],
                    w[6]
                )
            })
            .collect();
        Gen { r, format, frames }
    }

    fn uuid(&mut self) -> String {
        let h = format!("{:016x}{:016x}", self.r.next_u64(), self.r.next_u64());
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..]
        )
    }

    /// Templated padding (phrases plus a number) until `s` is `size` bytes.
    fn pad(&mut self, mut s: String, size: usize) -> String {
        let keep = s.len();
        while s.len() < size {
            s.push_str(&format!(
                " {} {};",
                self.r.pick(&PHRASES),
                self.r.range(0, 999)
            ));
        }
        s.truncate(size.max(keep));
        s.trim_end().to_string()
    }

    fn platform_start(&mut self, ms: i64, rid: &str) -> String {
        match self.format {
            Format::Text => format!("START RequestId: {rid} Version: $LATEST\n"),
            Format::Json => format!(
                r#"{{"time":"{}","type":"platform.start","record":{{"requestId":"{rid}","version":"$LATEST"}}}}"#,
                iso(ms)
            ),
        }
    }

    fn platform_init(&mut self, ms: i64) -> String {
        let arn = format!(
            "{:016x}{:016x}{:016x}{:016x}",
            self.r.next_u64(),
            self.r.next_u64(),
            self.r.next_u64(),
            self.r.next_u64()
        );
        match self.format {
            Format::Text => format!(
                "INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:{arn}\n"
            ),
            Format::Json => format!(
                r#"{{"time":"{}","type":"platform.initStart","record":{{"initializationType":"on-demand","phase":"init","runtimeVersion":"python:3.12.v38","runtimeVersionArn":"arn:aws:lambda:us-east-1::runtime:{arn}","functionName":"checkout","functionVersion":"$LATEST"}}}}"#,
                iso(ms)
            ),
        }
    }

    fn app(&mut self, ms: i64, rid: &str) -> String {
        let size = self.r.range(80, 400) as usize;
        let roll = self.r.unit();
        let user = *self.r.pick(&USERS);
        let mut level = "INFO";
        // (json fields without braces, or text)
        let (fields, text): (Option<String>, Option<String>) = if roll < 0.06 {
            level = "WARN";
            let mut w = self.r.range(1, BAD_WEIGHTS.iter().sum());
            let mut ip = BAD_IPS[0];
            for (i, bw) in BAD_WEIGHTS.iter().enumerate() {
                if w <= *bw {
                    ip = BAD_IPS[i];
                    break;
                }
                w -= bw;
            }
            if self.r.unit() < 0.6 {
                (
                    Some(format!(
                        r#""event":"login_failed","user":"{user}","source_ip":"{ip}""#
                    )),
                    None,
                )
            } else {
                (
                    None,
                    Some(format!(
                        "login failed for user={user} from {ip}: invalid password"
                    )),
                )
            }
        } else if roll < 0.12 {
            let ip = format!(
                "10.{}.{}.{}",
                self.r.range(0, 255),
                self.r.range(0, 255),
                self.r.range(1, 254)
            );
            if self.r.unit() < 0.6 {
                (
                    Some(format!(
                        r#""event":"login_ok","user":"{user}","source_ip":"{ip}""#
                    )),
                    None,
                )
            } else {
                (None, Some(format!("login ok for user={user} from {ip}")))
            }
        } else if roll < 0.55 {
            let path = *self.r.pick(&PATHS);
            let status = *self.r.pick(&STATUSES);
            let dur = self.r.range(50, 25_000) as f64 / 100.0;
            let trace = format!(
                "1-{:08x}-{:016x}{:08x}",
                self.r.next_u64() as u32,
                self.r.next_u64(),
                self.r.next_u64() as u32
            );
            (
                Some(format!(
                    r#""event":"request","path":"{path}","status":{status},"duration_ms":{dur},"user":"{user}","trace_id":"{trace}""#
                )),
                None,
            )
        } else {
            level = *self.r.pick(&["INFO", "INFO", "INFO", "DEBUG", "WARN"]);
            let word = *self.r.pick(&WORDS);
            let n = self.r.range(0, 99_999);
            (None, Some(format!("processing {word} {n} for {user}:")))
        };
        match self.format {
            Format::Json => {
                let message = match (&text, &fields) {
                    (Some(t), _) => js(t),
                    (None, Some(f)) => {
                        let event = f.split('"').nth(3).map_or_else(String::new, str::to_string);
                        js(&event)
                    }
                    (None, None) => js(""),
                };
                let mut rec = format!(
                    r#"{{"timestamp":"{}","level":"{level}","message":{message},"logger":"root","requestId":"{rid}""#,
                    iso(ms)
                );
                if let Some(f) = &fields {
                    rec.push(',');
                    rec.push_str(f);
                }
                let need = size.saturating_sub(rec.len() + r#","detail":""}"#.len());
                if need > 0 {
                    let detail = self.pad(String::new(), need);
                    rec.push_str(&format!(r#","detail":"{}""#, detail.trim()));
                }
                rec.push('}');
                rec
            }
            Format::Text => {
                let prefix = format!("{}\t{rid}\t{level}\t", iso(ms));
                let room = size.saturating_sub(prefix.len() + 1);
                let body = match (fields, text) {
                    (Some(f), _) => {
                        let body = format!(r#"{{{f},"detail":""#);
                        let padded = self.pad(body, room.saturating_sub(2));
                        format!("{padded}\"}}")
                    }
                    (None, Some(t)) => self.pad(t, room),
                    (None, None) => String::new(),
                };
                format!("{prefix}{body}\n")
            }
        }
    }

    fn stack(&mut self, ms: i64, rid: &str) -> String {
        // Triangular(500, 4096, mode 900), as the corpus generator draws it.
        let (lo, hi, mode) = (500.0_f64, 4096.0_f64, 900.0_f64);
        let u = self.r.unit();
        let c = (mode - lo) / (hi - lo);
        let size = if u < c {
            lo + ((hi - lo) * (mode - lo) * u).sqrt()
        } else {
            hi - ((hi - lo) * (hi - mode) * (1.0 - u)).sqrt()
        } as usize;
        let exc = *self.r.pick(&EXC);
        let n = self.r.range(3, 8);
        let words: Vec<&str> = (0..n).map(|_| *self.r.pick(&WORDS)).collect();
        let msg = format!("{exc}: {}", words.join(" "));
        let json = self.format == Format::Json;
        let mut used = msg.len() * 2 + if json { 220 } else { 120 };
        let mut frames = Vec::new();
        loop {
            let fr = self.r.pick(&self.frames).clone();
            let add = fr.len() + if json { 6 } else { 0 };
            if used + add > size {
                break;
            }
            used += add;
            frames.push(fr);
        }
        match self.format {
            Format::Json => {
                let trace: Vec<String> = frames.iter().map(|f| js(f)).collect();
                format!(
                    r#"{{"timestamp":"{}","level":"ERROR","message":{},"logger":"root","requestId":"{rid}","errorType":"{exc}","stackTrace":[{}]}}"#,
                    iso(ms),
                    js(&msg),
                    trace.join(",")
                )
            }
            Format::Text => format!(
                "{}\t{rid}\tERROR\t[ERROR] {msg}\nTraceback (most recent call last):\n{}{msg}\n",
                iso(ms),
                frames.concat()
            ),
        }
    }

    /// One invocation: its events and the time after it.
    fn invocation(&mut self, mut ms: i64, cold: bool) -> (Vec<Event>, i64, bool) {
        let rid = self.uuid();
        let mut out = Vec::new();
        let mut emit = |ms: i64, message: String| {
            out.push(Event {
                timestamp: T0_MS + ms,
                message,
            })
        };
        let mut init = None;
        if cold {
            let d = self.r.range(12_000, 45_000) as f64 / 100.0;
            init = Some(d);
            let line = self.platform_init(ms);
            emit(ms, line);
            ms += d as i64;
        }
        let t_start = ms;
        let line = self.platform_start(ms, &rid);
        emit(ms, line);
        let timeout = self.r.unit() < 0.015;
        for _ in 0..self.r.range(3, 9) {
            ms += self.r.range(0, 40) as i64;
            let line = self.app(ms, &rid);
            emit(ms, line);
        }
        for _ in 0..*self.r.pick(&[0, 1, 1, 1, 1, 2]) {
            ms += self.r.range(0, 5) as i64;
            let line = self.stack(ms, &rid);
            emit(ms, line);
        }
        let (dur, status) = if timeout {
            ms = t_start + TIMEOUT_MS;
            if self.format == Format::Text {
                emit(
                    ms,
                    format!(
                        "{} {rid} Task timed out after {:.2} seconds\n",
                        iso(ms),
                        TIMEOUT_MS as f64 / 1_000.0
                    ),
                );
            }
            (TIMEOUT_MS as f64, "timeout")
        } else {
            ms += self.r.range(1, 30) as i64;
            ((ms - t_start) as f64 + self.r.unit(), "success")
        };
        let billed = dur.ceil() as u64;
        let mem = self.r.range(60, 95);
        match self.format {
            Format::Text => {
                emit(ms, format!("END RequestId: {rid}\n"));
                let mut s = format!(
                    "REPORT RequestId: {rid}\tDuration: {dur:.2} ms\tBilled Duration: {billed} ms\tMemory Size: 128 MB\tMax Memory Used: {mem} MB\t"
                );
                if let Some(i) = init {
                    s.push_str(&format!("Init Duration: {i:.2} ms\t"));
                }
                s.push_str(if timeout { "Status: timeout\n" } else { "\n" });
                emit(ms, s);
            }
            Format::Json => {
                emit(
                    ms,
                    format!(
                        r#"{{"time":"{}","type":"platform.runtimeDone","record":{{"requestId":"{rid}","status":"{status}","metrics":{{"durationMs":{dur:.2},"producedBytes":0}}}}}}"#,
                        iso(ms)
                    ),
                );
                let init = init.map_or_else(String::new, |i| format!(r#","initDurationMs":{i}"#));
                emit(
                    ms,
                    format!(
                        r#"{{"time":"{}","type":"platform.report","record":{{"requestId":"{rid}","metrics":{{"durationMs":{dur:.2},"billedDurationMs":{billed},"memorySizeMB":128,"maxMemoryUsedMB":{mem}{init}}},"status":"{status}"}}}}"#,
                        iso(ms)
                    ),
                );
            }
        }
        (out, ms + self.r.range(5, 2_000) as i64, timeout)
    }
}

/// Whole invocations of one log stream, stopping before the invocation that
/// would take the count past `max_events` or the message bytes past
/// `max_message_bytes`.
pub fn events(
    format: Format,
    seed: u64,
    max_events: usize,
    max_message_bytes: usize,
) -> Vec<Event> {
    let mut g = Gen::new(seed, format);
    let mut out: Vec<Event> = Vec::new();
    let mut bytes = 0;
    let mut ms = 0;
    let mut cold = true;
    loop {
        let (inv, next, timed_out) = g.invocation(ms, cold);
        let add: usize = inv.iter().map(|e| e.message.len()).sum();
        if out.len() + inv.len() > max_events || bytes + add > max_message_bytes {
            return out;
        }
        bytes += add;
        out.extend(inv);
        ms = next;
        cold = timed_out;
    }
}

/// Total message bytes.
pub fn message_bytes(events: &[Event]) -> u64 {
    events.iter().map(|e| e.message.len() as u64).sum()
}

/// A decoded data payload borrowing the events' messages.
pub fn payload(events: &[Event]) -> Payload<'_> {
    Payload {
        region: None,
        message_type: MessageType::Data,
        owner: Cow::Borrowed("123456789012"),
        log_group: Cow::Borrowed(LOG_GROUP),
        log_stream: Cow::Borrowed(LOG_STREAM),
        subscription_filters: vec![Cow::Borrowed("logwarden")],
        log_events: events
            .iter()
            .enumerate()
            .map(|(i, e)| LogEvent {
                id: Cow::Owned(format!(
                    "3700000000000000000000000000000000000{}{i:06}",
                    e.timestamp
                )),
                timestamp: e.timestamp,
                message: Cow::Borrowed(e.message.as_str()),
            })
            .collect(),
    }
}

/// The subscription payload JSON (compact, as CloudWatch Logs sends it).
pub fn payload_json(events: &[Event]) -> Vec<u8> {
    let mut out = String::with_capacity(message_bytes(events) as usize * 11 / 10 + 256);
    out.push_str(&format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"{LOG_GROUP}","logStream":"{LOG_STREAM}","subscriptionFilters":["logwarden"],"logEvents":["#
    ));
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"id":"3700000000000000000000000000000000000{}{i:06}","timestamp":{},"message":{}}}"#,
            e.timestamp,
            e.timestamp,
            js(&e.message)
        ));
    }
    out.push_str("]}");
    out.into_bytes()
}

/// Short warm-up and measurement, so that a whole bench target runs in under
/// a minute on two cores; no plots.
pub fn quick() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_millis(1_500))
        .without_plots()
}
