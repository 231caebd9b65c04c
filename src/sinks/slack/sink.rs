//! Slack as an [`AlertSink`]: each alert redacted, rendered as Block Kit and
//! posted with the client's retries, one after another.

use super::{SlackClient, SlackError};
use crate::alert::Alert;
use crate::alert::redact::{self, RedactOptions};
use crate::sinks::{AlertSink, SinkCause, SinkError};

/// Posts alerts to one Slack incoming webhook.
#[derive(Debug, Clone)]
pub struct SlackSink {
    client: SlackClient,
    redact: RedactOptions,
}

impl SlackSink {
    /// A sink posting through `client`, redacting secrets (and, with
    /// `redact`'s options, email addresses) before rendering.
    pub fn new(client: SlackClient, redact: RedactOptions) -> SlackSink {
        SlackSink { client, redact }
    }

    /// Redact and post one alert: [`SlackClient::post_alert`].
    /// A shadow alert is not posted (shadow rules are never delivered).
    pub async fn post(&self, alert: &Alert) -> Result<(), SlackError> {
        if alert.shadow {
            tracing::info!(alert = %alert.id, rule = %alert.rule, "Shadow alert; not posted to Slack.");
            return Ok(());
        }
        let mut alert = alert.clone();
        redact::alert(&mut alert, &self.redact);
        self.client.post_alert(&alert).await.map(drop)
    }
}

impl AlertSink for SlackSink {
    /// Every alert is tried, in order; a failed one does not stop the rest.
    /// The error is the last failure, with every alert that was not posted.
    async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
        let mut failed = Vec::new();
        let mut last = None;
        for a in alerts {
            if let Err(e) = self.post(a).await {
                failed.push(a.id.clone());
                last = Some(e);
            }
        }
        match last {
            None => Ok(()),
            Some(e) => Err(SinkError {
                sink: "slack".to_string(),
                failed,
                cause: SinkCause::Slack(e),
            }),
        }
    }
}
