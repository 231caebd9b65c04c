//! Shared helpers for the integration tests that talk to real services.

pub mod fault_proxy;
pub mod runtime_api;
pub mod standin;

use std::io::Write;

use base64::Engine as _;
use serde_json::{Value, json};

/// Set to `1` (as `.ci/run` does) and a test whose service is missing fails
/// instead of skipping: CI must not pass on tests that never ran.
pub const REQUIRE_SERVICES: &str = "LOGWARDEN_REQUIRE_SERVICES";

/// Whether the on/off variable `name` is on: `1` is on; unset, empty or `0`
/// is off. Any other value panics, so a typo (`true`, `yes`) never silently
/// leaves a check off or turns one on.
pub fn flag(name: &str) -> bool {
    flag_value(name, std::env::var_os(name).as_deref())
}

/// [`flag`] of a given value (`None`: unset).
pub fn flag_value(name: &str, value: Option<&std::ffi::OsStr>) -> bool {
    match value.map(std::ffi::OsStr::to_str) {
        None | Some(Some("" | "0")) => false,
        Some(Some("1")) => true,
        Some(other) => panic!("{name} must be 1 (on) or 0/unset (off), not {other:?}"),
    }
}

/// The one place an integration test decides what to do without a service it
/// needs. `found` is the service when the environment has it. Without it:
/// under `LOGWARDEN_REQUIRE_SERVICES=1` the test fails, naming the test, the
/// service and how to get it; otherwise it is skipped (`None`) with a note
/// written straight to the process's stderr, not through `eprintln!`, which
/// libtest captures and hides for a test that returns normally.
pub fn need<T>(test: &str, service: &str, how: &str, found: Option<T>) -> Option<T> {
    if found.is_some() {
        return found;
    }
    if flag(REQUIRE_SERVICES) {
        panic!("{test} needs {service}, which is missing ({REQUIRE_SERVICES}=1): {how}");
    }
    // Best effort: a note that cannot be written changes nothing.
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: {service} is missing ({how}); {REQUIRE_SERVICES}=1 makes this a failure"
    );
    None
}

/// A non-empty environment variable.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The moto endpoint CI starts, or `None` after [`need`] decided to skip.
pub fn moto(test: &str) -> Option<String> {
    need(
        test,
        "the AWS emulator (MOTO_ENDPOINT)",
        "set MOTO_ENDPOINT; .ci/run starts moto and sets it",
        var("MOTO_ENDPOINT"),
    )
}

/// The Slack stand-in's base URL (no trailing `/`), or `None` after [`need`]
/// decided to skip.
pub fn webhook_sink(test: &str) -> Option<String> {
    need(
        test,
        "the Slack stand-in (WEBHOOK_SINK)",
        "set WEBHOOK_SINK; .ci/run starts tests/support/http_sink.py and sets it",
        var("WEBHOOK_SINK").map(|s| s.trim_end_matches('/').to_string()),
    )
}

/// A headless browser on `PATH`, or `None` after [`need`] decided to skip.
pub fn chromium(test: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file());
    need(
        test,
        "a headless browser (chromium on PATH)",
        ".ci/run installs Debian's chromium",
        found,
    )
}

/// Whether to rewrite golden files and snapshots: only on
/// `LOGWARDEN_BLESS=1`; `0` or unset compares (see [`flag`]).
pub fn bless() -> bool {
    flag("LOGWARDEN_BLESS")
}

/// A [`logwarden::sinks::slack::Timer`] that does not wait: its clock
/// advances by each requested sleep, which it records. Retry loops under a
/// deadline then behave the same on a loaded machine as on an idle one.
pub struct FakeTimer {
    start: std::time::Instant,
    slept: std::sync::Mutex<Vec<std::time::Duration>>,
}

impl FakeTimer {
    pub fn new() -> std::sync::Arc<FakeTimer> {
        std::sync::Arc::new(FakeTimer {
            start: std::time::Instant::now(),
            slept: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Every sleep asked for, in order.
    pub fn sleeps(&self) -> Vec<std::time::Duration> {
        self.slept.lock().unwrap().clone()
    }

    /// The time the clock has advanced: the sleeps added up.
    pub fn slept(&self) -> std::time::Duration {
        self.sleeps().iter().sum()
    }
}

impl logwarden::sinks::slack::Timer for FakeTimer {
    fn now(&self) -> std::time::Instant {
        self.start + self.slept()
    }
    fn sleep(&self, d: std::time::Duration) -> logwarden::sinks::slack::SleepFuture<'_> {
        self.slept.lock().unwrap().push(d);
        Box::pin(async {})
    }
}

/// SDK configuration for the emulator, with dummy credentials.
pub async fn aws(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// A name no other test (or earlier run against the same emulator) uses:
/// the process id and the clock tell runs apart, and a process-wide counter
/// tells apart two calls in this process (every area of the tests shares
/// it) that read the same clock value.
pub fn unique(prefix: &str) -> String {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Hex runs behind letters: no run of 13 digits, so a name never looks
    // like a card number to redaction (pid-n-nanos in decimal once did).
    format!(
        "{prefix}-p{:x}-n{n}-t{:x}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// Everything moto holds (`/moto-api/data.json`), as JSON: what SNS
/// recorded per topic (`sent_notifications`, each protocol's body) is only
/// there.
///
/// moto checks that each attribute of each object serialises, then
/// serialises them all at once. An object another test adds in between (a
/// log stream that `backtest` or `kinesis_e2e` creates, now that they run in
/// this process beside the SNS tests) makes that fail with a 500. That race
/// is moto's, not logwarden's, and over in milliseconds: ask again, a few
/// times.
pub async fn moto_state(endpoint: &str) -> Value {
    let url = format!("{endpoint}/moto-api/data.json");
    let mut last = String::new();
    for attempt in 0..5u64 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
        }
        let response = reqwest::get(&url).await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        match serde_json::from_str(&body) {
            Ok(state) if status.is_success() => return state,
            _ => last = format!("{status}: {}", body.chars().take(300).collect::<String>()),
        }
    }
    panic!("{url} failed 5 times; last: {last}");
}

/// A topic with an SQS queue subscribed to it (envelope delivery, optional filter policy).
pub struct TopicWithQueue {
    pub topic_arn: String,
    pub queue_url: String,
    pub sqs: aws_sdk_sqs::Client,
}

pub async fn topic_with_queue(
    conf: &aws_config::SdkConfig,
    name: &str,
    filter: Option<&str>,
) -> TopicWithQueue {
    let sns = aws_sdk_sns::Client::new(conf);
    let sqs = aws_sdk_sqs::Client::new(conf);
    let topic_arn = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    let mut sub = sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn);
    if let Some(f) = filter {
        sub = sub.attributes("FilterPolicy", f);
    }
    sub.send().await.unwrap();
    TopicWithQueue {
        topic_arn,
        queue_url,
        sqs,
    }
}

impl TopicWithQueue {
    /// Every message body now in the queue (drains it).
    pub async fn drain(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let r = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let msgs = r.messages();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// base64(gzip(json)) with padding, as CloudWatch Logs sends it.
pub fn b64gz(payload: &Value) -> String {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(payload.to_string().as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(enc.finish().unwrap())
}

/// A subscription payload of one group and stream.
pub fn payload(group: &str, stream: &str, events: &[(i64, &str)]) -> Value {
    json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group, "logStream": stream,
        "subscriptionFilters": ["f"],
        "logEvents": events.iter().enumerate().map(|(i, (t, m))| json!({"id": i.to_string(), "timestamp": t, "message": m})).collect::<Vec<_>>()
    })
}

/// The alerts of the golden fixture run.
pub fn golden_alerts() -> Vec<logwarden::alert::Alert> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/fixtures.json");
    let all: Vec<logwarden::alert::Alert> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // The firings (the goldens end with the resolutions of replay's sweep).
    all.into_iter()
        .filter(|a| !a.status.is_resolved())
        .collect()
}
