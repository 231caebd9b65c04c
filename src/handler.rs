//! Lambda events → engine: what `logwarden-detector` does per invocation.
//!
//! Accepted events: the CloudWatch Logs subscription event (`awslogs`), the
//! Kinesis event (one subscription payload per record; failures reported as
//! `batchItemFailures` so only those records are retried), the Firehose
//! transformation event (each `recordId` echoed with `Ok`, `Dropped` or
//! `ProcessingFailed`), and the EventBridge scheduled event, which sweeps the
//! deadline detectors with the clock as watermark.
//!
//! The event is read by [`crate::ingest::read_event`], from the raw JSON text
//! Lambda delivered, the same reading the CLI gives the same bytes: a record
//! of the wrong shape (no `data`, `data` not a string, two `data` keys) is
//! counted and skipped by both, and the handler never re-parses an envelope.
//! (Not `aws_lambda_events`' `LogsEvent`: it rejects integer event ids, the
//! emulator sends them, and decodes without a size cap.)

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use crate::alert::Alert;
use crate::engine::{BatchOutcome, Engine, EngineError};
use crate::ingest::{self, DecodeError, Event, Limits, MessageType, OwnedPayload};
use crate::runner::{RunError, Runner};
use crate::silence::SilenceSet;
use crate::silence::cache::SilenceCache;
use crate::silence::table::SilenceTable;
use crate::sinks::sns::{SnsError, SnsSink};
use crate::sinks::{AlertSink, SinkCause, SinkError};
use crate::state::StateStore;
use crate::time::Clock;

/// The handler could not finish; Lambda should retry the invocation.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event is of no kind this function handles; a retry cannot help.
    #[error("unrecognised event: {0}")]
    Unrecognised(String),
    /// The state store failed; a retry may help.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Alerts could not be delivered; a retry re-sends exactly those.
    #[error(transparent)]
    Delivery(#[from] SnsError),
}

impl HandlerError {
    /// A short, stable name for the Lambda error type: what the invocation
    /// record, metric filters and a dead-letter queue show instead of a Rust
    /// type name.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::Unrecognised(_) => "Logwarden.UnknownEvent",
            HandlerError::Engine(_) => "Logwarden.StateFailed",
            HandlerError::Delivery(_) => "Logwarden.PublishFailed",
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Where the detector's alerts go.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// Publish to an SNS topic (`LOGWARDEN_TOPIC_ARN`).
    Sns(SnsSink),
    /// Write them as JSON lines to the function's log (no topic configured).
    Log,
}

impl Delivery {
    /// Deliver alerts; `Ok` = all delivered. On `Err`, the ones not named in
    /// the error were delivered.
    pub async fn deliver(&self, alerts: &[Alert]) -> Result<(), SnsError> {
        match self {
            Delivery::Sns(s) if !alerts.is_empty() => s.publish(alerts).await.map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// The detector's sink for the [`Runner`]: SNS, or nothing to publish when
/// the alerts only go to the function's log.
impl AlertSink for &Delivery {
    async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
        self.deliver(alerts).await.map_err(SinkError::from)
    }
}

/// A run as the handler answers for it. A confirm that failed after every
/// alert went out is logged but does not fail the invocation: failing would
/// make Lambda redeliver the batch and send every alert of it a second time.
fn settle(run: Result<BatchOutcome, RunError>) -> Result<BatchOutcome, HandlerError> {
    match run {
        Ok(o) => Ok(o),
        Err(RunError::Engine(e)) => Err(HandlerError::Engine(e)),
        Err(RunError::Sink(e)) => Err(HandlerError::Delivery(sns_error(e))),
        Err(RunError::Unconfirmed { error, outcome }) => {
            tracing::error!(
                alerts = outcome.alerts.len(),
                error = %error,
                "Alerts delivered but not confirmed in the state store; not failing the invocation, which would send them again."
            );
            Ok(*outcome)
        }
    }
}

/// The SNS error a failed [`Delivery`] reported (the only sink that fails).
fn sns_error(e: SinkError) -> SnsError {
    let SinkError {
        sink,
        failed,
        cause,
    } = e;
    match cause {
        SinkCause::Sns(e) => e,
        other => SnsError {
            topic: sink,
            failed,
            reason: other.to_string(),
        },
    }
}

/// Attempts per AWS SDK call (SNS, DynamoDB, Secrets Manager), the first included.
pub const AWS_MAX_ATTEMPTS: u32 = 5;
/// Backoff cap of the first SDK retry; it doubles per retry, and each wait is
/// a random fraction of the cap (full jitter).
pub const AWS_INITIAL_BACKOFF: std::time::Duration = std::time::Duration::from_millis(250);
/// Largest backoff cap between SDK retries.
pub const AWS_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest single SDK request (connect, send, response).
pub const AWS_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest SDK call, retries and waits included.
pub const AWS_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The SDK's retry policy, explicit rather than the SDK default (3 attempts,
/// 1 s initial backoff, 20 s cap): standard mode (throttling, 5xx, timeouts
/// and connection errors are retried; a retry quota stops retry storms),
/// [`AWS_MAX_ATTEMPTS`] attempts, backoff from [`AWS_INITIAL_BACKOFF`] up to
/// [`AWS_MAX_BACKOFF`]: at most about 3.75 s of waiting per call.
pub fn aws_retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(AWS_MAX_ATTEMPTS)
        .with_initial_backoff(AWS_INITIAL_BACKOFF)
        .with_max_backoff(AWS_MAX_BACKOFF)
}

/// The SDK's timeouts: a hung request is abandoned after
/// [`AWS_ATTEMPT_TIMEOUT`] (and retried), a call after [`AWS_OPERATION_TIMEOUT`],
/// well inside a Lambda timeout, so the invocation can still report its error.
pub fn aws_timeout_config() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(AWS_ATTEMPT_TIMEOUT)
        .operation_timeout(AWS_OPERATION_TIMEOUT)
        .build()
}

/// SDK configuration from the environment (credentials, region,
/// `AWS_ENDPOINT_URL`) with [`aws_retry_config`] and [`aws_timeout_config`].
pub async fn load_aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_retry_config())
        .timeout_config(aws_timeout_config())
        .load()
        .await
}

/// Counters of one invocation, emitted as a metrics line.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Counters {
    /// Payloads processed.
    pub batches: u64,
    /// Log events processed.
    pub events: u64,
    /// Records that could not be decoded (counted, logged, skipped).
    pub decode_failures: u64,
    /// Control messages skipped.
    pub control_messages: u64,
    /// Alerts raised.
    pub alerts_raised: u64,
    /// Events folded into incidents already alerted.
    pub alerts_suppressed: u64,
    /// Alerts folded into a digest by the alert-storm limit.
    pub alerts_folded: u64,
    /// STARTs not tracked because their stream held the most open
    /// invocations a stream keeps.
    pub open_invocations_dropped: u64,
    /// Batches from an ignored log group (logwarden's own: the recursion
    /// guard), skipped.
    pub ignored_batches: u64,
    /// Events whose JSON a strict parser rejected (a lone surrogate, `NaN`,
    /// `1e400`, deep nesting, a cut-off line), read tolerantly so that their
    /// fields still match.
    pub lenient_json_events: u64,
    /// Alerts silences kept back (each also logged with the silence's id).
    pub alerts_silenced: u64,
}

/// What one invocation produced.
#[derive(Debug, Default)]
pub struct Handled {
    /// The response body for Lambda.
    pub response: Value,
    /// Alerts to deliver.
    pub alerts: Vec<Alert>,
    /// Counters.
    pub counters: Counters,
}

#[derive(Serialize)]
struct FirehoseResult<'a> {
    #[serde(rename = "recordId")]
    record_id: Cow<'a, str>,
    result: &'static str,
    data: String,
}

/// Environment variable holding the tracing filter of all three binaries.
pub const LOG_FILTER_VAR: &str = "LOGWARDEN_LOG";

/// The tracing filter `value` of [`LOG_FILTER_VAR`] says, `default` when it
/// is unset or blank.
///
/// # Errors
/// A value that is not a filter. It is a configuration error naming the
/// variable and the value, not a silent fallback to the default that would
/// hide the logs someone asked for.
pub fn log_filter(
    value: Option<&std::ffi::OsStr>,
    default: &str,
) -> Result<tracing_subscriber::EnvFilter, String> {
    let Some(value) = value else {
        return Ok(tracing_subscriber::EnvFilter::new(default));
    };
    let Some(v) = value.to_str() else {
        return Err(format!(
            "{LOG_FILTER_VAR}: `{}` is not UTF-8",
            value.to_string_lossy().escape_debug()
        ));
    };
    if v.trim().is_empty() {
        return Ok(tracing_subscriber::EnvFilter::new(default));
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(v)
        .map_err(|e| {
            format!(
                "{LOG_FILTER_VAR}: `{}` is not a log filter ({e}); give a level (error, warn, info, debug, trace) and/or target=level pairs, e.g. `info,logwarden=debug`",
                v.escape_debug()
            )
        })
}

/// Whether log lines get ANSI colours: only when they go to a terminal
/// (never into a file or a pipe someone reads later), and never when
/// `NO_COLOR` is set to anything but the empty string (no-color.org).
pub fn log_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Tracing for a Lambda binary: JSON when the function's log format is JSON
/// (`AWS_LAMBDA_LOG_FORMAT`), plain otherwise (coloured only on a terminal,
/// see [`log_colour`]); no timestamps (CloudWatch adds them); filter from
/// [`LOG_FILTER_VAR`], default `info`.
///
/// The runtime's `lambda_runtime::layers::panic` target is off: it logs every
/// error a handler returns there, as a Rust `Debug` dump, though nothing
/// panicked. The binaries log their own line with the error's name instead,
/// and a real panic still reaches stderr through the standard panic hook.
///
/// # Errors
/// A bad [`LOG_FILTER_VAR`] (see [`log_filter`]), or a subscriber already set.
pub fn init_lambda_tracing() -> Result<(), String> {
    use std::io::IsTerminal as _;
    let quiet_runtime = "lambda_runtime::layers::panic=off"
        .parse()
        .map_err(|e| format!("built-in log filter: {e}"))?;
    let filter = log_filter(std::env::var_os(LOG_FILTER_VAR).as_deref(), "info")?
        .add_directive(quiet_runtime);
    let json_logs =
        std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // The fmt subscriber writes to stdout, as Lambda's own log lines go.
    let colour = log_colour(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let installed = if json_logs {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .without_time()
            .try_init()
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .without_time()
            .with_ansi(colour)
            .try_init()
    };
    installed.map_err(|e| format!("tracing: {e}"))
}

/// The variables the Lambda runtime reads at start (it panics on a missing
/// one, exit 101): checked first, so a binary started outside Lambda says so
/// in one line.
pub const LAMBDA_VARS: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Checks [`LAMBDA_VARS`] through `var`.
///
/// # Errors
/// One line naming every missing variable, or a memory size that is not a
/// number (the runtime parses it as `i32`).
pub fn check_lambda_environment(var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
    let missing: Vec<&str> = LAMBDA_VARS
        .iter()
        .copied()
        .filter(|n| var(n).is_none_or(|v| v.trim().is_empty()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "not running in AWS Lambda: {} not set (Lambda sets them; to run the rules locally use `logwarden replay`, to post alerts `logwarden notify`)",
            match missing.as_slice() {
                [one] => format!("{one} is"),
                more => format!("{} are", more.join(", ")),
            }
        ));
    }
    let memory = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    if memory.parse::<i32>().is_err() {
        return Err(format!(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE: `{}` is not a whole number of MB",
            memory.escape_debug()
        ));
    }
    Ok(())
}

/// The JSON text of an event body as the detector receives it: the raw text
/// in Lambda (`Box<RawValue>`, so the handler reads exactly the bytes the CLI
/// would), or a [`Value`] in tests.
pub trait EventJson {
    /// The event as JSON text.
    fn json_text(&self) -> Cow<'_, str>;
}

impl EventJson for Box<serde_json::value::RawValue> {
    fn json_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.get())
    }
}

impl EventJson for Value {
    fn json_text(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
}

/// Handle one Lambda event (its raw JSON text, or a [`Value`] in tests):
/// each payload (or the sweep) through a [`Runner`] delivering to `delivery`.
pub async fn handle<S: StateStore, E: EventJson + ?Sized>(
    engine: &mut Engine<S>,
    event: &E,
    limits: &Limits,
    clock: &dyn Clock,
    delivery: &Delivery,
) -> Result<Handled, HandlerError> {
    handle_silenced(engine, event, limits, clock, delivery, None).await
}

/// [`handle`], applying `silences` (the silences in the state table, as
/// [`DetectorService`] reads them at most once a minute).
pub async fn handle_silenced<S: StateStore, E: EventJson + ?Sized>(
    engine: &mut Engine<S>,
    event: &E,
    limits: &Limits,
    clock: &dyn Clock,
    delivery: &Delivery,
    silences: Option<SilenceSet>,
) -> Result<Handled, HandlerError> {
    let mut runner = Runner::new(engine, delivery);
    if let Some(set) = silences {
        runner = runner.silences(set);
    }
    let handled = handle_with(&mut runner, event, limits, clock).await;
    let silenced = runner.silenced();
    let (held, released) = runner.take_silence_changes();
    handled.map(|mut h| {
        h.counters.alerts_silenced = silenced;
        // What goes out is what is logged without a topic.
        h.alerts
            .retain(|a| !held.contains(&(a.id.clone(), a.status.is_resolved())));
        h.alerts.splice(0..0, released);
        h
    })
}

async fn handle_with<S: StateStore, E: EventJson + ?Sized>(
    runner: &mut Detector<'_, S>,
    event: &E,
    limits: &Limits,
    clock: &dyn Clock,
) -> Result<Handled, HandlerError> {
    let mut out = Handled::default();
    let text = event.json_text();
    let text: &str = &text;
    let event = ingest::read_event(text).map_err(|e| {
        HandlerError::Unrecognised(match e {
            DecodeError::NotRecognised { found } => format!(
                "expected a CloudWatch Logs (awslogs), Kinesis (Records), Firehose (records), subscription payload (logEvents) or scheduled event; found {found}"
            ),
            other => other.to_string(),
        })
    })?;
    match event {
        Event::AwsLogs(r) => {
            let payload = r.data.and_then(|data| ingest::decode_record(&data, limits));
            single(runner, payload, "awslogs", &mut out).await?;
            out.response = Value::Null;
        }
        Event::Payload => {
            let payload = ingest::decode_payload(text, limits);
            single(runner, payload, "payload", &mut out).await?;
            out.response = Value::Null;
        }
        Event::Kinesis(records) => {
            out.response = kinesis(runner, records, limits, &mut out).await;
        }
        Event::Firehose(records) => {
            out.response = firehose(runner, records, limits, &mut out).await?;
        }
        Event::Scheduled => {
            let o = settle(runner.sweep(clock.now_ms()).await)?;
            out.counters.alerts_raised += o.alerts.len() as u64;
            out.counters.alerts_folded += o.folded as u64;
            out.alerts.extend(o.alerts);
            out.response = serde_json::json!({ "swept": true });
        }
    }
    Ok(out)
}

/// The handler's runner: an engine delivering to the detector's sink.
type Detector<'e, S> = Runner<'e, S, &'e Delivery>;

enum Failure {
    /// A CONTROL_MESSAGE: nothing to do, not an error.
    Control,
    Decode(DecodeError),
    /// The store or the delivery failed: a retry can help.
    Run(HandlerError),
}

/// An event of one payload (`awslogs`, a decoded payload): a bad payload is
/// counted and skipped, never retried.
async fn single<S: StateStore>(
    runner: &mut Detector<'_, S>,
    payload: Result<OwnedPayload, DecodeError>,
    envelope: &str,
    out: &mut Handled,
) -> Result<(), HandlerError> {
    match process(runner, payload, out).await {
        Ok(()) | Err(Failure::Control) => Ok(()),
        Err(Failure::Decode(e)) => {
            out.counters.decode_failures += 1;
            tracing::warn!(envelope, error = %e, "Dropped malformed record.");
            Ok(())
        }
        Err(Failure::Run(e)) => Err(e),
    }
}

/// A Kinesis event: the `batchItemFailures` response. A record is named by
/// its sequence number (else `eventID`, else its index).
async fn kinesis<S: StateStore>(
    runner: &mut Detector<'_, S>,
    records: Vec<ingest::EventRecord<'_>>,
    limits: &Limits,
    out: &mut Handled,
) -> Value {
    let mut failures = Vec::new();
    let mut engine_failed = false;
    for r in records {
        let id = r.id.map_or_else(|| r.index.to_string(), Cow::into_owned);
        if engine_failed {
            // Records after a store failure are retried with it, in order.
            failures.push(serde_json::json!({ "itemIdentifier": id }));
            continue;
        }
        let region = r.region;
        let payload = r
            .data
            .and_then(|data| ingest::decode_record(&data, limits))
            .map(|p| p.with_region(region.as_deref()));
        match process(runner, payload, out).await {
            Ok(()) | Err(Failure::Control) => {}
            Err(Failure::Decode(e)) => {
                out.counters.decode_failures += 1;
                tracing::warn!(record = %id, error = %e, "Dropped malformed Kinesis record.");
                failures.push(serde_json::json!({ "itemIdentifier": id }));
            }
            Err(Failure::Run(e)) => {
                if let HandlerError::Delivery(_) = e {
                    tracing::error!(record = %id, error = %e, "Alerts not delivered; the record will be retried.");
                } else {
                    tracing::error!(record = %id, error = %e, "State store failed; the record will be retried.");
                }
                failures.push(serde_json::json!({ "itemIdentifier": id }));
                engine_failed = true;
            }
        }
    }
    serde_json::json!({ "batchItemFailures": failures })
}

/// A Firehose transformation event: every `recordId` echoed with its result.
async fn firehose<S: StateStore>(
    runner: &mut Detector<'_, S>,
    records: Vec<ingest::EventRecord<'_>>,
    limits: &Limits,
    out: &mut Handled,
) -> Result<Value, HandlerError> {
    let mut results = Vec::with_capacity(records.len());
    for r in records {
        // Without its recordId a record cannot be answered for; Firehose
        // never sends one, so it is only counted.
        let Some(record_id) = r.id else {
            out.counters.decode_failures += 1;
            tracing::warn!(
                record = r.index,
                "Firehose record without a recordId skipped."
            );
            continue;
        };
        let data = r.data.as_deref().unwrap_or_default().to_owned();
        let region = r.region;
        let payload = r
            .data
            .and_then(|data| ingest::decode_record(&data, limits))
            .map(|p| p.with_region(region.as_deref()));
        let result = match process(runner, payload, out).await {
            Ok(()) => "Ok",
            Err(Failure::Control) => "Dropped",
            Err(Failure::Decode(e)) => {
                out.counters.decode_failures += 1;
                tracing::warn!(record = %record_id, error = %e, "Malformed Firehose record.");
                "ProcessingFailed"
            }
            Err(Failure::Run(e)) => return Err(e),
        };
        results.push(FirehoseResult {
            record_id,
            result,
            data,
        });
    }
    Ok(serde_json::json!({ "records": results }))
}

/// Detects one decoded payload (or counts why there is none) and delivers
/// its alerts.
async fn process<S: StateStore>(
    runner: &mut Detector<'_, S>,
    payload: Result<OwnedPayload, DecodeError>,
    out: &mut Handled,
) -> Result<(), Failure> {
    let owned = payload.map_err(Failure::Decode)?;
    let payload = owned.view();
    if payload.message_type == MessageType::Control {
        out.counters.control_messages += 1;
        return Err(Failure::Control);
    }
    let first = payload.log_events.iter().map(|e| e.timestamp).min();
    let last = payload.log_events.iter().map(|e| e.timestamp).max();
    let o = settle(runner.process(&payload).await).map_err(Failure::Run)?;
    if o.ignored {
        out.counters.ignored_batches += 1;
        tracing::info!(
            log_group = %payload.log_group,
            events = o.events,
            "Ignored a batch from an ignored log group (recursion guard)."
        );
        return Ok(());
    }
    tracing::info!(
        account = %payload.owner,
        log_group = %payload.log_group,
        log_stream = %payload.log_stream,
        events = o.events,
        first = first.map(crate::time::rfc3339).unwrap_or_default(),
        last = last.map(crate::time::rfc3339).unwrap_or_default(),
        alerts = o.alerts.len(),
        "Processed batch."
    );
    out.counters.batches += 1;
    out.counters.events += o.events as u64;
    out.counters.alerts_raised += o.alerts.len() as u64;
    out.counters.alerts_suppressed += o.suppressed;
    out.counters.alerts_folded += o.folded as u64;
    out.counters.lenient_json_events += o.lenient_json;
    out.counters.open_invocations_dropped += o.open_invocations_dropped;
    out.alerts.extend(o.alerts);
    Ok(())
}

/// The counters as one CloudWatch Embedded Metric Format line.
pub fn emf_line(c: &Counters, function: &str, now_ms: i64) -> String {
    let names = [
        ("Batches", c.batches),
        ("Events", c.events),
        ("DecodeFailures", c.decode_failures),
        ("ControlMessages", c.control_messages),
        ("AlertsRaised", c.alerts_raised),
        ("AlertsSuppressed", c.alerts_suppressed),
        ("AlertsFolded", c.alerts_folded),
        ("IgnoredBatches", c.ignored_batches),
        ("LenientJsonEvents", c.lenient_json_events),
        ("OpenInvocationsDropped", c.open_invocations_dropped),
        ("Silenced", c.alerts_silenced),
    ];
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": "logwarden",
                "Dimensions": [["function"]],
                "Metrics": names.iter().map(|(n, _)| serde_json::json!({"Name": n, "Unit": "Count"})).collect::<Vec<_>>(),
            }]
        },
        "function": function,
    });
    if let Some(obj) = doc.as_object_mut() {
        for (n, v) in names {
            obj.insert(n.to_string(), Value::from(v));
        }
    }
    doc.to_string()
}

/// The detector's silences, read at most once a minute.
type CachedSilences = tokio::sync::Mutex<SilenceCache<Box<dyn Clock>>>;

/// The detector function as Lambda runs it: built once per container, called
/// once per event. Alerts go to SNS, or, with no topic configured, out as JSON
/// log lines (one object per line); each invocation ends with an EMF metrics line.
pub struct DetectorService<S: StateStore> {
    engine: tokio::sync::Mutex<Engine<S>>,
    limits: Limits,
    function: String,
    clock: Box<dyn Clock>,
    delivery: Delivery,
    silences: Option<(SilenceTable, CachedSilences)>,
}

impl<S: StateStore> DetectorService<S> {
    /// The service, applying the silences in `table` (read at most once a
    /// minute by `clock`, see [`SilenceCache`]).
    pub fn with_silences(mut self, table: SilenceTable, clock: Box<dyn Clock>) -> Self {
        self.silences = Some((table, tokio::sync::Mutex::new(SilenceCache::new(clock))));
        self
    }

    /// A service over an engine; `function` names the EMF dimension.
    pub fn new(
        engine: Engine<S>,
        limits: Limits,
        function: String,
        clock: Box<dyn Clock>,
        delivery: Delivery,
    ) -> Self {
        DetectorService {
            engine: tokio::sync::Mutex::new(engine),
            limits,
            function,
            clock,
            delivery,
            silences: None,
        }
    }

    /// Handle one invocation, writing alert and metric lines to `out`.
    /// An error means Lambda should retry (store failure) or that the event is
    /// not one this function handles.
    pub async fn call<E: EventJson>(
        &self,
        event: lambda_runtime::LambdaEvent<E>,
        out: &mut dyn std::io::Write,
    ) -> Result<Value, HandlerError> {
        let silences = match &self.silences {
            // Every silence the table holds: they compare with event time,
            // and a late event from inside a window is still silenced.
            Some((table, cache)) => Some(
                cache
                    .lock()
                    .await
                    .get(|| table.list(i64::MIN))
                    .await
                    .clone(),
            ),
            None => None,
        };
        let mut engine = self.engine.lock().await;
        let handled = handle_silenced(
            &mut engine,
            &event.payload,
            &self.limits,
            self.clock.as_ref(),
            &self.delivery,
            silences,
        )
        .await?;
        let log_alerts = matches!(self.delivery, Delivery::Log);
        for a in handled.alerts.iter().filter(|_| log_alerts) {
            if let Ok(line) = serde_json::to_string(a) {
                // A failed write to the log stream cannot be retried usefully.
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = writeln!(
            out,
            "{}",
            emf_line(&handled.counters, &self.function, self.clock.now_ms())
        );
        Ok(handled.response)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn log_colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some(OsStr::new(""))));
        assert!(!log_colour(true, Some(OsStr::new("1"))));
        assert!(!log_colour(false, None));
    }

    #[test]
    fn a_bad_log_filter_names_the_variable_and_the_value() {
        assert!(log_filter(None, "info").is_ok());
        assert!(log_filter(Some(OsStr::new(" ")), "info").is_ok());
        assert!(log_filter(Some(OsStr::new("info,logwarden=debug")), "info").is_ok());
        let e = log_filter(Some(OsStr::new("debug=\nloud")), "info").unwrap_err();
        assert!(
            e.starts_with("LOGWARDEN_LOG: `debug=\\nloud` is not a log filter ("),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn outside_lambda_every_missing_variable_is_named_in_one_line() {
        let e = check_lambda_environment(|_| None).unwrap_err();
        for v in LAMBDA_VARS {
            assert!(e.contains(v), "{e}");
        }
        let only_memory = |n: &str| {
            (n == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .then(|| "lots".to_string())
                .or_else(|| Some("x".to_string()))
        };
        let e = check_lambda_environment(only_memory).unwrap_err();
        assert_eq!(
            e,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE: `lots` is not a whole number of MB"
        );
        assert!(
            check_lambda_environment(|n| Some(
                if n.ends_with("SIZE") { "128" } else { "x" }.into()
            ))
            .is_ok()
        );
    }

    /// A memory store whose saves fail from the `fail_from`-th on.
    struct FailsLater {
        inner: crate::state::MemoryStore,
        saves: usize,
        fail_from: usize,
    }

    impl StateStore for FailsLater {
        async fn load(
            &mut self,
            keys: &[String],
            now: i64,
        ) -> Result<
            std::collections::HashMap<String, crate::state::Versioned>,
            crate::state::StateError,
        > {
            self.inner.load(keys, now).await
        }

        async fn save(
            &mut self,
            writes: Vec<crate::state::Write>,
        ) -> Result<(), crate::state::StateError> {
            self.saves += 1;
            if self.saves >= self.fail_from {
                return Err(crate::state::StateError::Unavailable("down".into()));
            }
            self.inner.save(writes).await
        }

        async fn keys_with_prefix(
            &mut self,
            prefix: &str,
            now: i64,
        ) -> Result<Vec<String>, crate::state::StateError> {
            self.inner.keys_with_prefix(prefix, now).await
        }
    }

    #[tokio::test]
    async fn a_confirm_that_fails_after_delivery_does_not_fail_the_invocation() {
        let events: Vec<Value> = (0..30)
            .map(|i| {
                serde_json::json!({
                    "id": i.to_string(),
                    "timestamp": 1_795_341_600_000i64 + i * 100,
                    "message": format!("Failed password for root from 203.0.113.{} port 22 ssh2", i % 3),
                })
            })
            .collect();
        let event = serde_json::json!({
            "messageType": "DATA_MESSAGE", "owner": "123456789012",
            "logGroup": "/aws/lambda/auth", "logStream": "s", "subscriptionFilters": [],
            "logEvents": events,
        });
        let rules = std::sync::Arc::new(crate::rules::RuleSet::builtin().unwrap());
        // The batch's own save succeeds; the confirm's save fails.
        let store = FailsLater {
            inner: crate::state::MemoryStore::new(),
            saves: 0,
            fail_from: 2,
        };
        let mut engine = Engine::new(rules, store, Default::default());
        let clock = crate::time::FixedClock(0);
        let limits = Limits::default();
        let h = handle(&mut engine, &event, &limits, &clock, &Delivery::Log)
            .await
            .unwrap();
        assert_eq!(h.alerts.len(), 3);
        assert_eq!(h.counters.alerts_raised, 3);
        assert_eq!(h.counters.batches, 1);
        // Not confirmed, so still pending: a redelivery sends them again
        // (at least once) once the store takes writes.
        engine.store_mut().fail_from = usize::MAX;
        let again = handle(&mut engine, &event, &limits, &clock, &Delivery::Log)
            .await
            .unwrap();
        let ids = |h: &Handled| h.alerts.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&again), ids(&h));
    }

    #[test]
    fn every_handler_error_has_a_stable_name() {
        let d = lambda_runtime::Diagnostic::from(HandlerError::Unrecognised("x".into()));
        assert_eq!(d.error_type, "Logwarden.UnknownEvent");
        assert_eq!(d.error_message, "unrecognised event: x");
        let e = HandlerError::Engine(EngineError::State(crate::state::StateError::Unavailable(
            "x".into(),
        )));
        assert_eq!(e.error_type(), "Logwarden.StateFailed");
        let e = HandlerError::Delivery(SnsError {
            topic: "t".into(),
            failed: vec!["a".into()],
            reason: "throttled".into(),
        });
        assert_eq!(e.error_type(), "Logwarden.PublishFailed");
    }

    #[tokio::test]
    async fn a_silenced_alert_is_counted_in_the_silenced_metric_and_not_logged_as_an_alert() {
        let events: Vec<Value> = (0..30)
            .map(|i| {
                serde_json::json!({
                    "id": i.to_string(),
                    "timestamp": 1_795_341_600_000i64 + i * 100,
                    "message": format!("Failed password for root from 203.0.113.{} port 22 ssh2", i % 3),
                })
            })
            .collect();
        let event = serde_json::json!({
            "messageType": "DATA_MESSAGE", "owner": "123456789012",
            "logGroup": "/aws/lambda/auth", "logStream": "s", "subscriptionFilters": [],
            "logEvents": events,
        });
        let silence = crate::silence::NewSilence {
            rule: "*".into(),
            key: crate::detect::Key::from([("source_ip".into(), "203.0.113.1".into())]),
            log_group: None,
            until: Some(1_795_341_700_000),
            reason: "pen test".into(),
            by: String::new(),
        }
        .make(1_795_341_500_000, &[])
        .unwrap();
        let rules = std::sync::Arc::new(crate::rules::RuleSet::builtin().unwrap());
        let mut engine = Engine::new(rules, crate::state::MemoryStore::new(), Default::default());
        let clock = crate::time::FixedClock(0);
        let set = SilenceSet::new(vec![silence]);
        let h = handle_silenced(
            &mut engine,
            &event,
            &Limits::default(),
            &clock,
            &Delivery::Log,
            Some(set),
        )
        .await
        .unwrap();
        assert_eq!(h.counters.alerts_silenced, 1);
        assert_eq!(h.alerts.len(), 2);
        assert!(h.alerts.iter().all(|a| a.key["source_ip"] != "203.0.113.1"));
        let emf: Value = serde_json::from_str(&emf_line(&h.counters, "f", 0)).unwrap();
        assert_eq!(emf["Silenced"], 1);
        let names = &emf["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert!(
            names
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["Name"] == "Silenced")
        );
    }
}
