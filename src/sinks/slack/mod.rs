//! Slack: alerts as Block Kit messages posted to an incoming webhook, or
//! with a bot token ([`bot`]) as one message per incident that is updated as
//! the incident goes on and answered in its thread.
//!
//! Three parts, each usable alone:
//! - rendering ([`blocks`], [`alarm_blocks`], [`message_blocks`]): pure functions
//!   from an alert, a CloudWatch alarm notification or any other text to the
//!   webhook's JSON body. Everything that may come from a log line is escaped
//!   (an attacker writes log lines), and Slack's size limits are respected,
//!   because one oversized or malformed block makes Slack reject the whole
//!   message with `400 invalid_blocks`;
//! - delivery ([`SlackClient`]): one POST per message, retried on 429, 5xx,
//!   connection errors and timeouts under one overall deadline;
//! - [`SlackSink`]: the [`crate::sinks::AlertSink`] (redact, render, post);
//! - [`post_alert_lines`]: alert JSON lines (the CLI's `notify slack`) through
//!   the same rendering and delivery.
//!
//! The Lambda side (SNS events, the webhook URL from Secrets Manager) is in
//! [`notifier`].

pub mod bot;
pub mod notifier;

mod api;
mod blockkit;
mod client;
mod lifecycle;
mod lines;
mod render;
mod sink;

pub use api::{API_URL, SlackApi, bot_token_from_secret};
pub use blockkit::escape;
pub use client::{
    Delivery, RetryPolicy, SlackClient, SlackError, SleepFuture, Timer, TokioTimer,
    parse_webhook_url,
};
pub(crate) use client::{backoff, body_start, error_chain, http_client, retry_after};
pub use lifecycle::{resolved_blocks, thread_reply};
pub use lines::{
    LineProblem, LineProblemKind, NotifySummary, deliver_alert_lines, post_alert_lines,
    post_alert_lines_with,
};
pub use render::{AlarmNotification, alarm_blocks, blocks, message_blocks};
pub use sink::SlackSink;

/// Longest header text Slack accepts.
pub const MAX_HEADER_CHARS: usize = 150;
/// Longest section (or context element) text Slack accepts.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Longest text of one section field Slack accepts.
pub const MAX_FIELD_CHARS: usize = 2000;
/// Most fields in one section.
pub const MAX_FIELDS: usize = 10;
/// Most blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Longest button URL Slack accepts.
pub const MAX_BUTTON_URL_CHARS: usize = 3000;
/// Longest `text` fallback we send: it is what notifications show, so short.
pub const MAX_FALLBACK_CHARS: usize = 300;
