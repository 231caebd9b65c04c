//! Where alerts go: stdout (text for people or one JSON object per line),
//! SNS ([`sns`], the detector Lambda's sink), Slack ([`slack`]) and PagerDuty
//! ([`pagerduty`]), used by the notifier Lambda subscribed to the topic and by
//! `logwarden notify slack|pagerduty`.
//!
//! Every sink is an [`AlertSink`]: the runner (`src/runner.rs`) hands it each
//! batch's alerts and confirms in the engine exactly the ones it delivered.

pub mod destinations;
pub mod pagerduty;
pub mod secret;
pub mod slack;
pub mod sns;
mod stdout;

use std::future::Future;

use crate::alert::Alert;

pub use stdout::{OutputFormat, StdoutSink};

/// Somewhere alerts are delivered.
///
/// One required method. `Ok` means every alert of the batch was delivered;
/// `Err` names the sink and the alerts that were not (the others were), so
/// the runner confirms only those that went out and the engine's outbox
/// hands the rest out again. A sink keeps its own retries: by the time it
/// returns an error, retrying at once would not help.
pub trait AlertSink {
    /// Deliver `alerts`, in order.
    fn publish(&mut self, alerts: &[Alert]) -> impl Future<Output = Result<(), SinkError>>;
}

impl<K: AlertSink + ?Sized> AlertSink for &mut K {
    fn publish(&mut self, alerts: &[Alert]) -> impl Future<Output = Result<(), SinkError>> {
        (**self).publish(alerts)
    }
}

/// No sink configured: nothing to deliver, so everything is delivered.
impl<K: AlertSink> AlertSink for Option<K> {
    async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
        match self {
            Some(k) => k.publish(alerts).await,
            None => Ok(()),
        }
    }
}

/// Two sinks, one after the other: the second sees a batch only once the
/// first delivered all of it (the CLI's `--sink sns`: published, then printed).
#[derive(Debug)]
pub struct Both<A, B>(pub A, pub B);

impl<A: AlertSink, B: AlertSink> AlertSink for Both<A, B> {
    async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
        self.0.publish(alerts).await?;
        self.1.publish(alerts).await
    }
}

/// Counts each rule's alerts on their way to a sink (what `replay --profile`
/// reports per rule).
#[derive(Debug)]
pub struct PerRule<K> {
    rules: Vec<String>,
    /// Alerts handed to the sink, per rule, in the order of the rule ids given.
    pub counts: Vec<u64>,
    inner: K,
}

impl<K> PerRule<K> {
    /// Counting for the rules `rules` (ids), in front of `inner`.
    pub fn new(rules: Vec<String>, inner: K) -> Self {
        PerRule {
            counts: vec![0; rules.len()],
            rules,
            inner,
        }
    }
}

impl<K: AlertSink> AlertSink for PerRule<K> {
    async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
        for a in alerts {
            if let Some(i) = self.rules.iter().position(|id| *id == a.rule) {
                self.counts[i] += 1;
            }
        }
        self.inner.publish(alerts).await
    }
}

/// A function as a sink, all or nothing: an error means no alert of the
/// batch was delivered (what a closure writing to a stream can say).
pub struct FnSink<F>(pub F);

impl<F: FnMut(&[Alert]) -> std::io::Result<()>> AlertSink for FnSink<F> {
    async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
        (self.0)(alerts).map_err(|e| SinkError::io("output", alerts, e))
    }
}

/// Why a sink failed, as the sink itself said it.
#[derive(Debug, thiserror::Error)]
pub enum SinkCause {
    /// Writing to a stream failed.
    #[error(transparent)]
    Io(std::io::Error),
    /// SNS did not take every alert.
    #[error(transparent)]
    Sns(sns::SnsError),
    /// Slack did not take every alert.
    #[error(transparent)]
    Slack(slack::SlackError),
    /// PagerDuty did not take every alert.
    #[error(transparent)]
    PagerDuty(pagerduty::PagerDutyError),
}

/// Alerts a sink did not deliver. It reads as the sink's own error, which
/// names the sink (the SNS topic, Slack, the stream's error).
#[derive(Debug, thiserror::Error)]
#[error("{cause}")]
pub struct SinkError {
    /// The sink that failed (`stdout`, `output`, `slack`, the SNS topic ARN).
    pub sink: String,
    /// Ids of the alerts not delivered.
    pub failed: Vec<String>,
    /// What went wrong.
    pub cause: SinkCause,
}

impl SinkError {
    /// A stream failed: none of `alerts` counts as delivered.
    pub fn io(sink: &str, alerts: &[Alert], e: std::io::Error) -> SinkError {
        SinkError {
            sink: sink.to_string(),
            failed: alerts.iter().map(|a| a.id.clone()).collect(),
            cause: SinkCause::Io(e),
        }
    }

    /// The error as an I/O error, for callers that report delivery failures
    /// as one (replay, backtest): a stream's own error is handed back as it
    /// was, any other sink's is wrapped with its message unchanged.
    pub fn into_io(self) -> std::io::Error {
        match self.cause {
            SinkCause::Io(e) => e,
            SinkCause::Sns(e) => std::io::Error::other(e),
            SinkCause::Slack(e) => std::io::Error::other(e),
            SinkCause::PagerDuty(e) => std::io::Error::other(e),
        }
    }
}

impl From<sns::SnsError> for SinkError {
    fn from(e: sns::SnsError) -> Self {
        SinkError {
            sink: e.topic.clone(),
            failed: e.failed.clone(),
            cause: SinkCause::Sns(e),
        }
    }
}

/// `alert` with every string redacted, object keys included, and then its
/// links checked ([`crate::alert::redact::alert`]). That function leaves the
/// fields logwarden writes itself alone (id, rule, kind, times), but a
/// destination's input may come from anyone; redacting before escaping also
/// keeps a secret's edges visible to the finder.
pub(crate) fn fully_redacted(alert: &Alert) -> Alert {
    let mut v = serde_json::to_value(alert).unwrap_or(serde_json::Value::Null);
    redact_strings(&mut v);
    let mut a: Alert = serde_json::from_value(v).unwrap_or_else(|_| alert.clone());
    crate::alert::redact::alert(&mut a, &Default::default());
    a
}

/// Every string of `v`, object keys included, redacted in place.
fn redact_strings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(r) = crate::alert::redact::redact(s) {
                *s = r;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_strings),
        serde_json::Value::Object(o) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                if let Some(mut x) = o.remove(&k) {
                    redact_strings(&mut x);
                    o.insert(crate::alert::redact::redact(&k).into_owned(), x);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn alert(id: &str, rule: &str) -> Alert {
        serde_json::from_value(serde_json::json!({
            "id": id, "rule": rule, "kind": "threshold", "severity": "high",
            "title": "t", "log_group": "/aws/lambda/f", "key": {}, "count": 1,
            "first_seen": "2026-11-22T10:00:00.000Z", "last_seen": "2026-11-22T10:00:00.000Z",
        }))
        .unwrap()
    }

    /// Takes nothing while `down`; counts what it took.
    struct Flaky {
        down: bool,
        took: usize,
    }

    impl AlertSink for Flaky {
        async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
            if self.down {
                let e = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
                return Err(SinkError::io("flaky", alerts, e));
            }
            self.took += alerts.len();
            Ok(())
        }
    }

    #[tokio::test]
    async fn both_hands_the_second_sink_only_what_the_first_delivered_in_full() {
        let alerts = [alert("a", "r1"), alert("b", "r2")];
        let first = Flaky {
            down: true,
            took: 0,
        };
        let second = Flaky {
            down: false,
            took: 0,
        };
        let mut both = Both(first, second);
        let e = both.publish(&alerts).await.unwrap_err();
        assert_eq!(e.failed, ["a", "b"]);
        assert_eq!(both.1.took, 0);
        both.0.down = false;
        both.publish(&alerts).await.unwrap();
        assert_eq!((both.0.took, both.1.took), (2, 2));
        let mut none: Option<Flaky> = None;
        none.publish(&alerts).await.unwrap();
    }

    #[tokio::test]
    async fn a_stream_error_comes_back_as_it_was_and_reads_the_same() {
        let alerts = [alert("a", "r1")];
        let mut sink =
            FnSink(|_: &[Alert]| Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)));
        let e = sink.publish(&alerts).await.unwrap_err();
        let shown = e.to_string();
        assert_eq!(e.failed, ["a"]);
        let io = e.into_io();
        assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe);
        assert_eq!(io.to_string(), shown);
        let sns = SinkError::from(sns::SnsError {
            topic: "arn:aws:sns:us-east-1:1:t".into(),
            failed: vec!["a".into()],
            reason: "throttled".into(),
        });
        assert_eq!(sns.sink, "arn:aws:sns:us-east-1:1:t");
        let want = "SNS publish to arn:aws:sns:us-east-1:1:t failed for 1 alert(s): throttled";
        assert_eq!(sns.to_string(), want);
        assert_eq!(sns.into_io().to_string(), want);
    }

    #[tokio::test]
    async fn per_rule_counts_every_alert_handed_on_by_rule() {
        let alerts = [
            alert("a", "r1"),
            alert("b", "r2"),
            alert("c", "r2"),
            alert("d", "other"),
        ];
        let inner = Flaky {
            down: false,
            took: 0,
        };
        let mut sink = PerRule::new(vec!["r1".into(), "r2".into()], inner);
        sink.publish(&alerts).await.unwrap();
        assert_eq!(sink.counts, [1, 2]);
        assert_eq!(sink.inner.took, 4);
    }
}
