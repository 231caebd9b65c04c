//! Alert JSON lines (the CLI's `notify slack`) through rendering and delivery.

use std::fmt;
use std::io::BufRead;

use super::{SlackClient, SlackError, SlackSink};
use crate::alert::Alert;
use crate::alert::redact::RedactOptions;
use crate::sinks::AlertSink;

/// What went wrong with one input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblemKind {
    /// Not an alert JSON object (or not UTF-8).
    Malformed,
    /// An alert that Slack did not accept.
    NotPosted,
}

/// One input line that was not posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number.
    pub line: usize,
    /// Malformed or not posted.
    pub kind: LineProblemKind,
    /// Why.
    pub message: String,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            LineProblemKind::Malformed => {
                write!(f, "line {}: not an alert: {}", self.line, self.message)
            }
            LineProblemKind::NotPosted => {
                write!(f, "line {}: not posted: {}", self.line, self.message)
            }
        }
    }
}

/// What [`post_alert_lines`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifySummary {
    /// Alerts Slack accepted.
    pub posted: usize,
    /// Alerts Slack did not accept (after retries where they could help).
    pub failed: usize,
    /// Non-blank lines that are not alert JSON.
    pub malformed: usize,
    /// Alerts of shadow rules: never delivered, only counted.
    pub shadow: usize,
    /// Every failed or malformed line, in input order.
    pub problems: Vec<LineProblem>,
}

impl NotifySummary {
    /// True when every non-blank line was posted.
    pub fn all_posted(&self) -> bool {
        self.failed == 0 && self.malformed == 0
    }
}

/// Post alert JSON lines (as `logwarden replay --output json` writes them)
/// to Slack, one message per alert, in order. Blank lines are skipped; a
/// malformed line or a failed post is recorded in the summary with its line
/// number (and logged) and the rest continue. Only a read error stops early.
pub async fn post_alert_lines<R: BufRead>(
    reader: R,
    client: &SlackClient,
) -> Result<NotifySummary, SlackError> {
    post_alert_lines_with(reader, client, &RedactOptions::default()).await
}

/// [`post_alert_lines`], redacting with `opts` (e.g. email addresses too).
pub async fn post_alert_lines_with<R: BufRead>(
    reader: R,
    client: &SlackClient,
    opts: &RedactOptions,
) -> Result<NotifySummary, SlackError> {
    let mut sink = SlackSink::new(client.clone(), *opts);
    deliver_alert_lines(reader, &mut sink).await
}

/// Alert JSON lines through any sink, as [`post_alert_lines`] does for Slack
/// (`logwarden notify pagerduty` uses it with the PagerDuty sink). Only a
/// read error stops early (it reads as [`SlackError::Read`]).
pub async fn deliver_alert_lines<R: BufRead, K: AlertSink>(
    mut reader: R,
    sink: &mut K,
) -> Result<NotifySummary, SlackError> {
    let mut summary = NotifySummary::default();
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        line += 1;
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| SlackError::Read { line, source })?;
        if n == 0 {
            break;
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(e) => {
                summary.malformed += 1;
                let message = format!("not UTF-8 ({e})");
                tracing::warn!(line, error = %message, "Skipped malformed alert line.");
                summary.problems.push(LineProblem {
                    line,
                    kind: LineProblemKind::Malformed,
                    message,
                });
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let alert: Alert = match serde_json::from_str(text) {
            Ok(a) => a,
            Err(e) => {
                summary.malformed += 1;
                tracing::warn!(line, error = %e, "Skipped malformed alert line.");
                summary.problems.push(LineProblem {
                    line,
                    kind: LineProblemKind::Malformed,
                    message: e.to_string(),
                });
                continue;
            }
        };
        if alert.shadow {
            summary.shadow += 1;
            tracing::info!(line, alert = %alert.id, rule = %alert.rule, "Shadow alert; not delivered.");
            continue;
        }
        match sink.publish(std::slice::from_ref(&alert)).await {
            Ok(_) => {
                summary.posted += 1;
                tracing::info!(line, alert = %alert.id, rule = %alert.rule, status = %alert.status, "Delivered alert.");
            }
            Err(e) => {
                summary.failed += 1;
                summary.problems.push(LineProblem {
                    line,
                    kind: LineProblemKind::NotPosted,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(summary)
}
