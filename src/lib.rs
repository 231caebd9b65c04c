//! logwarden: detection and alerting for AWS serverless logs.
//!
//! CloudWatch Logs subscription batches go in (directly from a subscription
//! filter, through Kinesis or Firehose, or saved to files); typed Lambda
//! platform records and application lines are matched by rule files; alerts
//! that answer when, where, who and what come out.
//!
//! # Layout
//! - [`ingest`]: envelopes → decoded subscription payloads (base64, capped gunzip, borrowed JSON).
//! - [`platform`]: one message → one typed Lambda record (text and JSON log formats).
//! - [`lenient_json`]: the tolerant JSON reading used when a strict parse fails, so crafted JSON cannot blind a rule.
//! - [`rules`]: rule files → compiled, immutable rules (errors collected with `path:line`).
//! - [`detect`]: one file per detector kind, each implementing [`detect::Detect`], listed once in
//!   `kinds!`; pure and synchronous, state passed in; typed state keys ([`detect::StateKey`]); the
//!   matching plane ([`detect::matcher::Plane`]) and the secret finder ([`detect::secrets`]).
//! - [`state`]: the [`state::StateStore`] trait, its in-memory and DynamoDB implementations, and
//!   [`state::Store`], the one store type the binaries build.
//! - [`alert`]: the alert contract, fingerprints, redaction, links and renderers.
//! - [`engine`]: ties them together: a batch in, alerts out, state loaded and saved once per batch;
//!   one file per step (observe, apply, incidents and outbox, finish, storm digest); names no kind.
//! - [`runner`]: process → publish → confirm, once, for replay, backtest, sweep and the Lambda handler;
//!   shadow alerts and silenced alerts (parked until their silence ends) never reach a sink.
//! - [`silence`]: silences as data (checks, YAML file, state-table items, the detector's
//!   once-a-minute cache); the runner applies them.
//! - [`sinks`]: where alerts go, each an [`sinks::AlertSink`]: stdout, SNS (per-protocol bodies),
//!   Slack (Block Kit by webhook, or a bot's message per incident; the notifier), PagerDuty.
//! - [`replay`]: files and directories through the engine, for the CLI.
//! - [`eval`]: alerts of a replay scored against labelled incidents (a truth file), per rule.
//! - [`backtest`]: a log group's history (CloudWatch Logs `FilterLogEvents`) through the engine, and its HTML report.
//! - [`handler`]: Lambda events (CloudWatch Logs, Kinesis, Firehose, schedule) through the engine.
//! - [`time`]: event-time helpers and the injected clock.
//! - `src/bin/`: the `logwarden` CLI and the `logwarden-detector` and `logwarden-notifier` Lambdas, thin.
//! - `detectors/`: the built-in rule pack, compiled in.
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod alert;
pub mod alloc;
pub mod backtest;
pub mod detect;
pub mod engine;
pub mod eval;
pub mod handler;
pub mod ingest;
pub mod lenient_json;
pub mod platform;
pub mod replay;
pub mod rules;
pub mod runner;
pub mod silence;
pub mod sinks;
pub mod state;
pub mod time;

#[cfg(test)]
mod testutil;
