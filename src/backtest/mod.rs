//! Backtesting: a log group's history, pulled with CloudWatch Logs
//! `FilterLogEvents`, through the same engine `replay` and the Lambda run, so
//! people see what would have fired before they turn alerts on.
//!
//! History is fetched page by page (the SDK's paginator, standard retries with
//! backoff, throttles counted), then merged into event-time order and cut into
//! per-stream batches, as a subscription filter would have delivered them:
//! runs of consecutive events from one stream, at most [`MAX_BATCH_EVENTS`]
//! each. The deadline rules are swept at the end of the range.
//!
//! Batches are as long as event-time order allows (not, say, one per stream
//! per few seconds) because an alert's `count` covers the events of the batch
//! that raised it: the longest batches give what `replay` of whole saved
//! payloads gives. Streams that interleave closely make short batches; that
//! costs time, not correctness.

pub mod report;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_cloudwatchlogs::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsError;
use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsError;

use crate::engine::{BatchOutcome, Engine, EngineConfig, EngineError};
use crate::ingest::{LogEvent, MessageType, Payload};
use crate::rules::RuleSet;
use crate::runner::{RunError, Runner};
use crate::sinks::AlertSink;
use crate::state::MemoryStore;
use crate::time::Millis;

/// Most events in one batch handed to the engine (a subscription delivers at
/// most 10,000 events per batch too).
pub const MAX_BATCH_EVENTS: usize = 10_000;

/// Default attempts per `FilterLogEvents` request (the first try included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// The retry policy for history requests: the SDK's standard strategy
/// (exponential backoff with jitter, throttling errors retried) with more
/// attempts and a longer ceiling than the SDK default, because a backtest
/// reads many pages in a row and `FilterLogEvents` has a low per-account
/// request rate.
pub fn retry_config(max_attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(max_attempts.max(1))
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(20))
}

/// Counts request attempts that CloudWatch Logs answered with a throttling
/// error (each was retried after a backoff, or ended the backtest when the
/// attempts ran out).
#[derive(Debug, Clone, Default)]
pub struct ThrottleCounter(Arc<AtomicU64>);

impl ThrottleCounter {
    /// Throttled attempts so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for ThrottleCounter {
    fn name(&self) -> &'static str {
        "ThrottleCounter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Err(err)) = context.output_or_error() else {
            return Ok(());
        };
        let code = err.as_operation_error().and_then(|e| {
            e.downcast_ref::<FilterLogEventsError>()
                .and_then(|e| e.code())
                .or_else(|| {
                    e.downcast_ref::<DescribeLogGroupsError>()
                        .and_then(|e| e.code())
                })
        });
        if code.is_some_and(is_throttle_code) {
            self.0.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(code = ?code, "CloudWatch Logs throttled a request; retrying after backoff.");
        }
        Ok(())
    }
}

fn is_throttle_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded"
    )
}

/// A CloudWatch Logs client for backtesting: `conf` (credentials, region,
/// endpoint from the usual AWS environment) with the explicit retry policy
/// and the throttle counter.
pub fn client(
    conf: &aws_config::SdkConfig,
    max_attempts: u32,
    throttles: &ThrottleCounter,
) -> Client {
    let c = aws_sdk_cloudwatchlogs::config::Builder::from(conf)
        .retry_config(retry_config(max_attempts))
        .interceptor(throttles.clone())
        .build();
    Client::from_conf(c)
}

/// What to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Log group name.
    pub log_group: String,
    /// First event time included (ms).
    pub start: Millis,
    /// Last event time included (ms).
    pub end: Millis,
    /// Events per page to ask for (`None`: the service default, up to 10,000
    /// events or 1 MB).
    pub page_size: Option<i32>,
}

/// One event of history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// Event time (ms).
    pub timestamp: Millis,
    /// Index into [`History::streams`].
    pub stream: usize,
    /// CloudWatch Logs event id.
    pub id: String,
    /// The message.
    pub message: String,
}

/// A log group's events in a time range.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Log group name.
    pub log_group: String,
    /// Account owning the group, from its ARN (alerts carry it).
    pub account: Option<String>,
    /// Log stream names, in order of first appearance.
    pub streams: Vec<String>,
    /// Events in the order they were received.
    pub events: Vec<HistoryEvent>,
    /// Pages read.
    pub pages: usize,
}

impl History {
    /// Add one event, interning its stream name.
    pub fn push(&mut self, stream: &str, timestamp: Millis, id: String, message: String) {
        let stream = match self.streams.iter().rposition(|s| s == stream) {
            Some(i) => i,
            None => {
                self.streams.push(stream.to_string());
                self.streams.len() - 1
            }
        };
        self.events.push(HistoryEvent {
            timestamp,
            stream,
            id,
            message,
        });
    }

    /// Events as the engine wants them: in event-time order (ties keep the
    /// order received), cut into runs of one stream of at most `max_events`.
    /// Each item is `(stream index, events)`.
    pub fn batches(&self, max_events: usize) -> Vec<(usize, Vec<&HistoryEvent>)> {
        let mut order: Vec<&HistoryEvent> = self.events.iter().collect();
        order.sort_by_key(|e| e.timestamp);
        let mut out: Vec<(usize, Vec<&HistoryEvent>)> = Vec::new();
        for e in order {
            match out.last_mut() {
                Some((s, run)) if *s == e.stream && run.len() < max_events.max(1) => run.push(e),
                _ => out.push((e.stream, vec![e])),
            }
        }
        out
    }
}

/// Why a backtest could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The log group does not exist (in this account and region).
    #[error("log group `{0}` not found (check the name, the account and AWS_REGION)")]
    NoSuchGroup(String),
    /// A CloudWatch Logs request failed after its retries.
    #[error("log group `{group}`: {operation} failed{after}: {message}", after = after_pages(*.pages))]
    Aws {
        /// Log group.
        group: String,
        /// The API call.
        operation: &'static str,
        /// Pages read before the failure.
        pages: usize,
        /// The service's or the transport's explanation.
        message: String,
    },
    /// Delivering alerts failed.
    #[error("cannot deliver alerts: {0}")]
    Output(std::io::Error),
    /// The state store failed.
    #[error(transparent)]
    Engine(EngineError),
}

fn after_pages(pages: usize) -> String {
    if pages == 0 {
        String::new()
    } else {
        format!(" after {pages} page(s)")
    }
}

fn sdk_message<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &SdkError<E>) -> String {
    match e.as_service_error() {
        Some(s) => match (s.code(), s.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => s.to_string(),
        },
        None => {
            // Transport errors carry the useful part in their source chain.
            let mut text = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                text.push_str(": ");
                text.push_str(&s.to_string());
                src = s.source();
            }
            text
        }
    }
}

/// Fetch the history of `opts.log_group` between `opts.start` and `opts.end`
/// (both included). `on_page` is told the events and pages read so far.
pub async fn fetch(
    client: &Client,
    opts: &FetchOptions,
    on_page: &mut dyn FnMut(usize, usize),
) -> Result<History, BacktestError> {
    let group = opts.log_group.clone();
    let account = group_account(client, &group).await?;
    let mut history = History {
        log_group: group.clone(),
        account,
        ..History::default()
    };
    let mut req = client
        .filter_log_events()
        .log_group_name(&group)
        .start_time(opts.start)
        .end_time(opts.end);
    if let Some(n) = opts.page_size {
        req = req.limit(n);
    }
    let mut pages = req.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| match e.as_service_error() {
            Some(s) if s.is_resource_not_found_exception() => {
                BacktestError::NoSuchGroup(group.clone())
            }
            _ => BacktestError::Aws {
                group: group.clone(),
                operation: "FilterLogEvents",
                pages: history.pages,
                message: sdk_message(&e),
            },
        })?;
        history.pages += 1;
        for ev in page.events() {
            let (Some(ts), Some(msg)) = (ev.timestamp(), ev.message()) else {
                continue;
            };
            history.push(
                ev.log_stream_name().unwrap_or_default(),
                ts,
                ev.event_id().unwrap_or_default().to_string(),
                msg.to_string(),
            );
        }
        on_page(history.events.len(), history.pages);
    }
    Ok(history)
}

/// The account id in the log group's ARN; also proves the group exists
/// before any page is read.
async fn group_account(client: &Client, group: &str) -> Result<Option<String>, BacktestError> {
    let out = client
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await;
    match out {
        Ok(o) => {
            let found = o
                .log_groups()
                .iter()
                .find(|g| g.log_group_name() == Some(group));
            match found {
                None => Err(BacktestError::NoSuchGroup(group.to_string())),
                // arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*
                Some(g) => Ok(g
                    .arn()
                    .and_then(|a| a.split(':').nth(4))
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)),
            }
        }
        // Without logs:DescribeLogGroups the backtest still runs; alerts just
        // lack the account.
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("AccessDeniedException") => {
            tracing::warn!(log_group = %group, "No permission to describe the log group; alerts will not name the account.");
            Ok(None)
        }
        Err(e) => Err(BacktestError::Aws {
            group: group.to_string(),
            operation: "DescribeLogGroups",
            pages: 0,
            message: sdk_message(&e),
        }),
    }
}

/// Totals of one backtest.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BacktestSummary {
    /// Log streams with events.
    pub streams: usize,
    /// Log events processed.
    pub events: usize,
    /// Batches handed to the engine.
    pub batches: usize,
    /// Alerts raised (firings; resolutions are not counted).
    pub alerts: usize,
    /// Events folded into incidents that had already alerted.
    pub suppressed: u64,
    /// Alerts silences kept back (`--silences`).
    pub silenced: u64,
}

/// Run `history` through a fresh engine with the in-memory store (exactly as
/// `replay` does), each batch's alerts published to `sink` and confirmed by
/// a [`Runner`], then sweep the deadline rules at `end`. `recorder`, when
/// given, sees every batch and every alert delivered (for the HTML report).
/// With silences (`--silences`), the alerts they cover are counted, not
/// given to `sink`.
pub fn run<K: AlertSink>(
    rules: Arc<RuleSet>,
    history: &History,
    end: Millis,
    (engine_config, silences): (EngineConfig, Option<crate::silence::SilenceSet>),
    rt: &tokio::runtime::Runtime,
    mut recorder: Option<&mut report::Recorder>,
    sink: K,
) -> Result<BacktestSummary, BacktestError> {
    let mut engine = Engine::new(rules, MemoryStore::new(), engine_config);
    let mut runner = Runner::new(&mut engine, sink);
    if let Some(set) = silences {
        runner = runner.silences(set);
    }
    let mut summary = BacktestSummary {
        streams: history.streams.len(),
        ..BacktestSummary::default()
    };
    let owner = history.account.clone().unwrap_or_default();
    let mut delivered = |o: &BatchOutcome, recorder: &mut Option<&mut report::Recorder>| {
        summary.alerts += o.alerts.iter().filter(|a| !a.status.is_resolved()).count();
        if let Some(r) = recorder.as_deref_mut() {
            r.alerts(&o.alerts);
        }
    };
    for (stream, events) in history.batches(MAX_BATCH_EVENTS) {
        let payload = Payload {
            region: None,
            message_type: MessageType::Data,
            owner: Cow::Borrowed(&owner),
            log_group: Cow::Borrowed(&history.log_group),
            log_stream: Cow::Borrowed(&history.streams[stream]),
            subscription_filters: Vec::new(),
            log_events: events
                .iter()
                .map(|e| LogEvent {
                    id: Cow::Borrowed(&e.id),
                    timestamp: e.timestamp,
                    message: Cow::Borrowed(&e.message),
                })
                .collect(),
        };
        if let Some(r) = recorder.as_deref_mut() {
            r.batch(&payload);
        }
        let o = rt.block_on(runner.process(&payload))?;
        delivered(&o, &mut recorder);
        summary.batches += 1;
        summary.events += o.events;
        summary.suppressed += o.suppressed;
    }
    let o = rt.block_on(runner.sweep(end))?;
    delivered(&o, &mut recorder);
    summary.silenced = runner.silenced();
    Ok(summary)
}

impl From<RunError> for BacktestError {
    /// A sink's failure is the output's; the store's, before or after the
    /// publish, is the engine's.
    fn from(e: RunError) -> Self {
        match e {
            RunError::Sink(e) => BacktestError::Output(e.into_io()),
            RunError::Engine(e) | RunError::Unconfirmed { error: e, .. } => {
                BacktestError::Engine(e)
            }
        }
    }
}

/// The range `--start` to `--end` ([`parse_time`] each), or what is wrong
/// with it, naming the option.
pub fn parse_range(start: &str, end: &str, now: Millis) -> Result<(Millis, Millis), String> {
    match (parse_time(start, now), parse_time(end, now)) {
        (Err(e), _) => Err(format!("--start: {e}")),
        (_, Err(e)) => Err(format!("--end: {e}")),
        (Ok(s), Ok(e)) if s > e => Err(format!(
            "--start {} is after --end {}",
            crate::time::rfc3339(s),
            crate::time::rfc3339(e)
        )),
        (Ok(s), Ok(e)) => Ok((s, e)),
    }
}

/// Parse a `--start`/`--end` value: RFC 3339 (`2026-11-22T10:00:00Z`), `now`,
/// or a span before `now` such as `-24h`, `-90m`, `-7d`.
pub fn parse_time(text: &str, now: Millis) -> Result<Millis, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Some(span) = t.strip_prefix('-') {
        let ms = crate::time::parse_duration(span).map_err(|e| {
            format!("`{text}`: {e}; expected RFC 3339, `now` or a span before now like -24h")
        })?;
        return Ok(now - ms);
    }
    crate::time::parse_rfc3339(t).map_err(|e| {
        format!("{e}; expected RFC 3339 (2026-11-22T10:00:00Z), `now` or a span like -24h")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_absolute_relative_and_now() {
        let now = 1_795_400_000_000;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("-24h", now), Ok(now - 86_400_000));
        assert_eq!(parse_time("-90m", now), Ok(now - 5_400_000));
        assert_eq!(
            parse_time("2026-11-22T10:00:00Z", now),
            Ok(1_795_341_600_000)
        );
        let bad = parse_time("yesterday", now).unwrap_err();
        assert!(
            bad.contains("yesterday") && bad.contains("RFC 3339"),
            "{bad}"
        );
        let bad = parse_time("-24", now).unwrap_err();
        assert!(bad.contains("-24"), "{bad}");
    }

    #[test]
    fn batches_are_time_ordered_runs_of_one_stream() {
        let mut h = History::default();
        h.push("a", 30, "3".into(), "a3".into());
        h.push("a", 10, "1".into(), "a1".into());
        h.push("b", 20, "2".into(), "b2".into());
        h.push("b", 40, "4".into(), "b4".into());
        h.push("b", 40, "5".into(), "b5".into());
        h.push("b", 50, "6".into(), "b6".into());
        let got: Vec<(usize, Vec<&str>)> = h
            .batches(2)
            .into_iter()
            .map(|(s, evs)| (s, evs.iter().map(|e| e.message.as_str()).collect()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, vec!["a1"]),
                (1, vec!["b2"]),
                (0, vec!["a3"]),
                (1, vec!["b4", "b5"]),
                (1, vec!["b6"]),
            ]
        );
        assert_eq!(h.streams, vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn throttle_codes() {
        assert!(is_throttle_code("ThrottlingException"));
        assert!(!is_throttle_code("ResourceNotFoundException"));
    }
}
