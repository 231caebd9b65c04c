//! Lambda events → engine: what `logwarden-detector` does per invocation.
//!
//! Accepted events: the CloudWatch Logs subscription event (`awslogs`), the
//! Kinesis event (one subscription payload per record; failures reported as
//! `batchItemFailures` so only those records are retried), the Firehose
//! transformation event (each `recordId` echoed with `Ok`, `Dropped` or
//! `ProcessingFailed`), and the EventBridge scheduled event, which sweeps the
//! deadline detectors with the clock as watermark.
//!
//! The envelopes are small serde structs of our own: `aws_lambda_events`'
//! `LogsEvent` rejects integer event ids (the emulator sends them) and decodes
//! without a size cap, and the hot decode path is [`crate::ingest`]'s.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alert::Alert;
use crate::engine::{Engine, EngineError};
use crate::ingest::{self, DecodeError, Limits, MessageType};
use crate::sinks::sns::{SnsError, SnsSink};
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

/// Deliver, then tell the engine what went out, so a retry re-sends only the rest.
///
/// The order is record (the engine stored each alert as pending with its
/// incident before handing it out), publish, confirm. A failure before the
/// publish leaves the alerts pending, and the redelivered batch sends them; a
/// failed confirm after everything went out is logged but does not fail the
/// invocation: failing would make Lambda redeliver the batch and send every
/// alert of it a second time.
async fn deliver_and_confirm<S: StateStore>(
    engine: &mut Engine<S>,
    delivery: &Delivery,
    alerts: &[Alert],
) -> Result<(), Failure> {
    let result = delivery.deliver(alerts).await;
    let not_sent: &[String] = match &result {
        Ok(()) => &[],
        Err(e) => &e.failed,
    };
    let sent: Vec<String> = alerts
        .iter()
        .map(|a| a.id.clone())
        .filter(|id| !not_sent.contains(id))
        .collect();
    if let Err(e) = engine.confirm(&sent).await {
        match result {
            Ok(()) => {
                tracing::error!(
                    alerts = sent.len(),
                    error = %e,
                    "Alerts delivered but not confirmed in the state store; not failing the invocation, which would send them again."
                );
                return Ok(());
            }
            // Part of the batch must be retried anyway; the retry re-sends
            // the unconfirmed alerts too (at least once).
            Err(d) => {
                tracing::error!(error = %e, "Delivered alerts not confirmed in the state store; the retry will send them again.");
                return Err(Failure::Delivery(d));
            }
        }
    }
    result.map_err(Failure::Delivery)
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

// The envelope structs borrow from the event, and each record is read on its
// own: one record of the wrong shape (no `data`, `data` not a string) is a bad
// record like any other, counted and skipped, never a failed invocation that
// Lambda would retry (or, for Kinesis, a poison pill that blocks the shard).
// `Cow` (borrowed from the event) so a wrong type reads "expected a string",
// as the CLI says for the same record.

/// `awslogs` of a CloudWatch Logs event.
#[derive(Deserialize)]
struct AwsLogs<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// One element of a Kinesis event's `Records`.
#[derive(Deserialize)]
struct KinesisRecord<'a> {
    #[serde(borrow)]
    kinesis: KinesisData<'a>,
}

/// `Records[].kinesis`.
#[derive(Deserialize)]
struct KinesisData<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// One element of a Firehose event's `records`.
#[derive(Deserialize)]
struct FirehoseRecord<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// Reads one record of an event as `T`; the error says what is wrong with it.
fn record<'a, T: Deserialize<'a>>(value: &'a Value) -> Result<T, DecodeError> {
    T::deserialize(value).map_err(|e| DecodeError::EventRecord {
        message: e.to_string(),
    })
}

/// The string at `pointer` in `value`, if there is one.
fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

#[derive(Serialize)]
struct FirehoseResult<'a> {
    #[serde(rename = "recordId")]
    record_id: &'a str,
    result: &'static str,
    data: &'a str,
}

/// Tracing for a Lambda binary: JSON when the function's log format is JSON
/// (`AWS_LAMBDA_LOG_FORMAT`), plain otherwise; no timestamps (CloudWatch adds
/// them); filter from `LOGWARDEN_LOG`, default `info`.
pub fn init_lambda_tracing() {
    let json_logs =
        std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if json_logs {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .without_time()
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .without_time()
            .with_ansi(false)
            .init();
    }
}

/// Handle one Lambda event.
pub async fn handle<S: StateStore>(
    engine: &mut Engine<S>,
    event: &Value,
    limits: &Limits,
    clock: &dyn Clock,
    delivery: &Delivery,
) -> Result<Handled, HandlerError> {
    let mut out = Handled::default();
    if let Some(awslogs) = event.get("awslogs") {
        let result = match record::<AwsLogs<'_>>(awslogs) {
            Ok(a) => process_data(engine, &a.data, limits, delivery, &mut out).await,
            Err(e) => Err(Failure::Decode(e)),
        };
        match result {
            Err(Failure::Engine(e)) => return Err(HandlerError::Engine(e)),
            Err(Failure::Delivery(e)) => return Err(HandlerError::Delivery(e)),
            Err(e) => count_failure(&mut out, "awslogs", &e),
            Ok(()) => {}
        }
        out.response = Value::Null;
    } else if let Some(records) = event.get("Records") {
        let records = records
            .as_array()
            .ok_or_else(|| HandlerError::Unrecognised("Records is not an array".into()))?;
        if !records.is_empty() && records.iter().all(|r| r.get("kinesis").is_none()) {
            return Err(HandlerError::Unrecognised(
                "a Records event without kinesis data (S3, SNS, SQS…?)".into(),
            ));
        }
        let mut failures = Vec::new();
        let mut engine_failed = None;
        for (i, r) in records.iter().enumerate() {
            let id = str_at(r, "/kinesis/sequenceNumber")
                .or_else(|| str_at(r, "/eventID"))
                .map_or_else(|| i.to_string(), str::to_owned);
            if engine_failed.is_some() {
                // Records after a store failure are retried with it, in order.
                failures.push(serde_json::json!({ "itemIdentifier": id }));
                continue;
            }
            let result = match record::<KinesisRecord<'_>>(r) {
                Ok(k) => process_data(engine, &k.kinesis.data, limits, delivery, &mut out).await,
                Err(e) => Err(Failure::Decode(e)),
            };
            match result {
                Ok(()) | Err(Failure::Control) => {}
                Err(Failure::Decode(e)) => {
                    out.counters.decode_failures += 1;
                    tracing::warn!(record = %id, error = %e, "Dropped malformed Kinesis record.");
                    failures.push(serde_json::json!({ "itemIdentifier": id }));
                }
                Err(Failure::Engine(e)) => {
                    tracing::error!(record = %id, error = %e, "State store failed; the record will be retried.");
                    failures.push(serde_json::json!({ "itemIdentifier": id }));
                    engine_failed = Some(e.to_string());
                }
                Err(Failure::Delivery(e)) => {
                    tracing::error!(record = %id, error = %e, "Alerts not delivered; the record will be retried.");
                    failures.push(serde_json::json!({ "itemIdentifier": id }));
                    engine_failed = Some(e.to_string());
                }
            }
        }
        out.response = serde_json::json!({ "batchItemFailures": failures });
    } else if let Some(records) = event.get("records") {
        let records = records
            .as_array()
            .ok_or_else(|| HandlerError::Unrecognised("records is not an array".into()))?;
        let mut results = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            // Without its recordId a record cannot be answered for; Firehose
            // never sends one, so it is only counted.
            let Some(record_id) = str_at(r, "/recordId") else {
                out.counters.decode_failures += 1;
                tracing::warn!(record = i, "Firehose record without a recordId skipped.");
                continue;
            };
            let result = match record::<FirehoseRecord<'_>>(r) {
                Ok(f) => process_data(engine, &f.data, limits, delivery, &mut out).await,
                Err(e) => Err(Failure::Decode(e)),
            };
            let result = match result {
                Ok(()) => "Ok",
                Err(Failure::Control) => "Dropped",
                Err(Failure::Decode(e)) => {
                    out.counters.decode_failures += 1;
                    tracing::warn!(record = %record_id, error = %e, "Malformed Firehose record.");
                    "ProcessingFailed"
                }
                Err(Failure::Engine(e)) => return Err(HandlerError::Engine(e)),
                Err(Failure::Delivery(e)) => return Err(HandlerError::Delivery(e)),
            };
            results.push(FirehoseResult {
                record_id,
                result,
                data: str_at(r, "/data").unwrap_or_default(),
            });
        }
        out.response = serde_json::json!({ "records": results });
    } else if event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        let o = engine.sweep(clock.now_ms()).await?;
        match deliver_and_confirm(engine, delivery, &o.alerts).await {
            Err(Failure::Delivery(e)) => return Err(HandlerError::Delivery(e)),
            Err(Failure::Engine(e)) => return Err(HandlerError::Engine(e)),
            _ => {}
        }
        out.counters.alerts_raised += o.alerts.len() as u64;
        out.counters.alerts_folded += o.folded as u64;
        out.alerts.extend(o.alerts);
        out.response = serde_json::json!({ "swept": true });
    } else {
        return Err(HandlerError::Unrecognised(
            "expected a CloudWatch Logs (awslogs), Kinesis (Records), Firehose (records) or scheduled event".into(),
        ));
    }
    Ok(out)
}

enum Failure {
    /// A CONTROL_MESSAGE: nothing to do, not an error.
    Control,
    Decode(DecodeError),
    Engine(EngineError),
    Delivery(SnsError),
}

fn count_failure(out: &mut Handled, what: &str, f: &Failure) {
    if let Failure::Decode(e) = f {
        out.counters.decode_failures += 1;
        tracing::warn!(envelope = what, error = %e, "Dropped malformed record.");
    }
}

async fn process_data<S: StateStore>(
    engine: &mut Engine<S>,
    b64: &str,
    limits: &Limits,
    delivery: &Delivery,
    out: &mut Handled,
) -> Result<(), Failure> {
    let json = ingest::decode_data(b64, limits).map_err(Failure::Decode)?;
    let owned = ingest::parse_payload_owned(&json).map_err(Failure::Decode)?;
    drop(json);
    let payload = owned.view();
    if payload.message_type == MessageType::Control {
        out.counters.control_messages += 1;
        return Err(Failure::Control);
    }
    let first = payload.log_events.iter().map(|e| e.timestamp).min();
    let last = payload.log_events.iter().map(|e| e.timestamp).max();
    let o = engine.process(&payload).await.map_err(Failure::Engine)?;
    if o.ignored {
        out.counters.ignored_batches += 1;
        tracing::info!(
            log_group = %payload.log_group,
            events = o.events,
            "Ignored a batch from an ignored log group (recursion guard)."
        );
        return Ok(());
    }
    deliver_and_confirm(engine, delivery, &o.alerts).await?;
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
        ("OpenInvocationsDropped", c.open_invocations_dropped),
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

/// The detector function as Lambda runs it: built once per container, called
/// once per event. Alerts go to SNS, or, with no topic configured, out as JSON
/// log lines (one object per line); each invocation ends with an EMF metrics line.
pub struct DetectorService<S: StateStore> {
    engine: tokio::sync::Mutex<Engine<S>>,
    limits: Limits,
    function: String,
    clock: Box<dyn Clock>,
    delivery: Delivery,
}

impl<S: StateStore> DetectorService<S> {
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
        }
    }

    /// Handle one invocation, writing alert and metric lines to `out`.
    /// An error means Lambda should retry (store failure) or that the event is
    /// not one this function handles.
    pub async fn call(
        &self,
        event: lambda_runtime::LambdaEvent<Value>,
        out: &mut dyn std::io::Write,
    ) -> Result<Value, HandlerError> {
        let mut engine = self.engine.lock().await;
        let handled = handle(
            &mut engine,
            &event.payload,
            &self.limits,
            self.clock.as_ref(),
            &self.delivery,
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
