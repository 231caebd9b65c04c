//! Process → publish → confirm, written once for replay, backtest, sweep and
//! the Lambda handler.
//!
//! The engine records each alert it hands out as pending with its incident
//! (the outbox) before the [`Runner`] publishes it; the runner then confirms
//! exactly the alerts the sink delivered. So no alert is lost and none is
//! sent twice by a retry:
//! - a failure before the publish leaves every alert pending, and the next
//!   run over the same events (a Lambda retry, a redelivered batch) hands
//!   them out again;
//! - a sink that delivers part of a batch names the rest; only the delivered
//!   ones are confirmed, and the retry sends only the rest;
//! - a failed confirm after a full delivery is [`RunError::Unconfirmed`]: the
//!   alerts went out, and the caller decides whether that fails the run
//!   (the Lambda does not fail the invocation, which would send them again).

use std::collections::BTreeMap;

use crate::alert::Alert;
use crate::engine::{BatchOutcome, Engine, EngineError, Pass1};
use crate::ingest::Payload;
use crate::sinks::{AlertSink, SinkError};
use crate::state::StateStore;

/// Why a run did not end with every alert delivered and confirmed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The engine (its state store) failed; nothing was published.
    #[error(transparent)]
    Engine(EngineError),
    /// The sink did not deliver every alert. The ones it delivered are
    /// confirmed (or, if that failed too, logged and sent again later); the
    /// rest stay pending.
    #[error(transparent)]
    Sink(SinkError),
    /// Every alert was delivered, but confirming them failed: they stay
    /// pending, and a later run over the same events sends them again.
    #[error("{error}")]
    Unconfirmed {
        /// The store's error.
        error: EngineError,
        /// What the run produced (its alerts went out).
        outcome: Box<BatchOutcome>,
    },
}

/// Where a runner shows the alerts of shadow rules (replay's stdout).
pub type ShowShadow<'e> = Box<dyn FnMut(&[Alert]) + Send + 'e>;

/// An engine and the sink its alerts go to.
///
/// It borrows the engine: its owner (the Lambda service, the CLI) keeps it
/// for the next batch, with the state it holds.
///
/// Alerts of shadow rules (`mode: shadow`) never reach the sink: they are
/// logged (one structured line each), shown where [`Runner::show_shadow`]
/// says, counted per rule ([`Runner::shadow_counts`]) and confirmed, so the
/// incident lives on as a live one would.
pub struct Runner<'e, S: StateStore, K> {
    engine: &'e mut Engine<S>,
    sink: K,
    show: Option<ShowShadow<'e>>,
    shadow: BTreeMap<String, u64>,
}

impl<'e, S: StateStore, K: AlertSink> Runner<'e, S, K> {
    /// A runner delivering `engine`'s alerts to `sink`.
    pub fn new(engine: &'e mut Engine<S>, sink: K) -> Self {
        Runner {
            engine,
            sink,
            show: None,
            shadow: BTreeMap::new(),
        }
    }

    /// The runner, also showing shadow alerts to `show` (never to the sink).
    pub fn show_shadow(mut self, show: ShowShadow<'e>) -> Self {
        self.show = Some(show);
        self
    }

    /// Alerts each shadow rule raised (would have sent), by rule id.
    pub fn shadow_counts(&self) -> &BTreeMap<String, u64> {
        &self.shadow
    }

    /// The engine.
    pub fn engine(&mut self) -> &mut Engine<S> {
        self.engine
    }

    /// The sink.
    pub fn sink(&mut self) -> &mut K {
        &mut self.sink
    }

    /// The sink, back.
    pub fn into_sink(self) -> K {
        self.sink
    }

    /// Detect on one payload, then publish and confirm its alerts.
    pub async fn process(&mut self, payload: &Payload<'_>) -> Result<BatchOutcome, RunError> {
        let o = self
            .engine
            .process(payload)
            .await
            .map_err(RunError::Engine)?;
        self.finish(o).await
    }

    /// Detect on a payload whose pass 1 was done ahead
    /// ([`crate::engine::Prepared`]), then publish and confirm its alerts.
    pub async fn process_prepared(&mut self, pass1: &Pass1<'_>) -> Result<BatchOutcome, RunError> {
        let o = self
            .engine
            .process_prepared(pass1)
            .await
            .map_err(RunError::Engine)?;
        self.finish(o).await
    }

    /// Sweep the deadline rules at watermark `now`, then publish and confirm.
    pub async fn sweep(&mut self, now: i64) -> Result<BatchOutcome, RunError> {
        let o = self.engine.sweep(now).await.map_err(RunError::Engine)?;
        self.finish(o).await
    }

    async fn finish(&mut self, o: BatchOutcome) -> Result<BatchOutcome, RunError> {
        match self.deliver(&o.alerts).await {
            Ok(()) => Ok(o),
            Err(Undelivered::Sink(e)) => Err(RunError::Sink(e)),
            Err(Undelivered::Unconfirmed(error)) => Err(RunError::Unconfirmed {
                error,
                outcome: Box::new(o),
            }),
        }
    }

    /// Publish `alerts` (shadow ones only shown), then confirm the ones
    /// delivered.
    async fn deliver(&mut self, alerts: &[Alert]) -> Result<(), Undelivered> {
        if alerts.is_empty() {
            return Ok(());
        }
        let (shadow, live): (Vec<Alert>, Vec<Alert>) =
            alerts.iter().cloned().partition(|a| a.shadow);
        if !shadow.is_empty() {
            self.shadowed(&shadow);
        }
        let published = if live.is_empty() {
            Ok(())
        } else {
            self.sink.publish(&live).await
        };
        let not_sent: &[String] = match &published {
            Ok(()) => &[],
            Err(e) => &e.failed,
        };
        let sent: Vec<String> = alerts
            .iter()
            .map(|a| a.id.clone())
            .filter(|id| !not_sent.contains(id))
            .collect();
        let confirmed = self.engine.confirm(&sent).await;
        match (published, confirmed) {
            (Ok(()), Ok(())) => Ok(()),
            (Ok(()), Err(e)) => Err(Undelivered::Unconfirmed(e)),
            (Err(d), Ok(())) => Err(Undelivered::Sink(d)),
            // Part of the batch is sent again anyway; the unconfirmed
            // alerts go with it (at least once).
            (Err(d), Err(e)) => {
                tracing::error!(error = %e, "Delivered alerts not confirmed in the state store; the retry will send them again.");
                Err(Undelivered::Sink(d))
            }
        }
    }
}

impl<S: StateStore, K> Runner<'_, S, K> {
    /// Log, show and count the alerts of shadow rules.
    fn shadowed(&mut self, shadow: &[Alert]) {
        for a in shadow {
            tracing::info!(
                rule = %a.rule,
                id = %a.id,
                status = %a.status.as_str(),
                log_group = %a.log_group,
                count = a.count,
                shadow = true,
                "Shadow rule alert: not delivered."
            );
            *self.shadow.entry(a.rule.clone()).or_default() += 1;
        }
        if let Some(show) = &mut self.show {
            show(shadow);
        }
    }
}

enum Undelivered {
    Sink(SinkError),
    Unconfirmed(EngineError),
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::engine::EngineConfig;
    use crate::ingest::{LogEvent, MessageType};
    use crate::rules::RuleSet;
    use crate::sinks::SinkCause;
    use crate::state::{MemoryStore, StateError, Versioned, Write};

    /// Records what it is given; refuses the ids in `refuse` (then forgets
    /// them), or everything with `down`.
    #[derive(Default)]
    struct Mock {
        refuse: Vec<String>,
        down: bool,
        calls: usize,
        delivered: Vec<String>,
    }

    impl AlertSink for Mock {
        async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
            self.calls += 1;
            let ids = alerts.iter().map(|a| a.id.clone());
            let failed: Vec<String> = if self.down {
                ids.collect()
            } else {
                let (failed, ok): (Vec<String>, Vec<String>) =
                    ids.partition(|id| self.refuse.contains(id));
                self.delivered.extend(ok);
                failed
            };
            self.refuse.clear();
            if failed.is_empty() {
                return Ok(());
            }
            Err(SinkError {
                sink: "mock".into(),
                failed,
                cause: SinkCause::Io(std::io::Error::other("mock refused")),
            })
        }
    }

    /// Three bursts of failed logins: one alert per source IP.
    fn lines() -> Vec<String> {
        (0..30)
            .map(|i| {
                format!(
                    "Failed password for root from 203.0.113.{} port 22 ssh2",
                    i % 3
                )
            })
            .collect()
    }

    fn payload(lines: &[String]) -> Payload<'_> {
        Payload {
            region: None,
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: "/aws/lambda/auth".into(),
            log_stream: "2026/11/22/[$LATEST]0123".into(),
            subscription_filters: vec![],
            log_events: lines
                .iter()
                .enumerate()
                .map(|(i, l)| LogEvent {
                    id: i.to_string().into(),
                    timestamp: 1_795_341_600_000 + i as i64 * 100,
                    message: l.as_str().into(),
                })
                .collect(),
        }
    }

    fn engine<S: StateStore>(store: S) -> Engine<S> {
        Engine::new(
            Arc::new(RuleSet::builtin().unwrap()),
            store,
            EngineConfig::default(),
        )
    }

    #[tokio::test]
    async fn a_partial_delivery_confirms_the_rest_and_the_next_run_sends_only_the_refused() {
        let lines = lines();
        let p = payload(&lines);
        let mut e = engine(MemoryStore::new());
        let mut probe = engine(MemoryStore::new());
        let all: Vec<String> = probe
            .process(&p)
            .await
            .unwrap()
            .alerts
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(all.len(), 3, "{all:?}");

        let refused = all[1].clone();
        let mock = Mock {
            refuse: vec![refused.clone()],
            ..Mock::default()
        };
        let mut r = Runner::new(&mut e, mock);
        let err = r.process(&p).await.unwrap_err();
        let RunError::Sink(d) = err else {
            panic!("expected a sink error, got {err}");
        };
        assert_eq!(d.failed, std::slice::from_ref(&refused));
        assert_eq!(d.to_string(), "mock refused");
        assert_eq!(r.sink().delivered, [all[0].clone(), all[2].clone()]);

        // The same events again (a retry): only the refused alert goes out.
        let o = r.process(&p).await.unwrap();
        let again: Vec<&str> = o.alerts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(again, [refused.as_str()]);
        // Confirmed now: a third run sends nothing, and the sink is not called.
        let o = r.process(&p).await.unwrap();
        assert!(o.alerts.is_empty(), "{:?}", o.alerts);
        let mock = r.into_sink();
        assert_eq!(mock.calls, 2);
        assert_eq!(mock.delivered.len(), 3);
    }

    #[tokio::test]
    async fn a_sink_that_fails_confirms_nothing_and_every_alert_is_sent_again() {
        let lines = lines();
        let p = payload(&lines);
        let mut e = engine(MemoryStore::new());
        let down = Mock {
            down: true,
            ..Mock::default()
        };
        let err = Runner::new(&mut e, down).process(&p).await.unwrap_err();
        let RunError::Sink(d) = err else {
            panic!("expected a sink error, got {err}");
        };
        assert_eq!(d.failed.len(), 3);
        let mut r = Runner::new(&mut e, Mock::default());
        let o = r.process(&p).await.unwrap();
        let mut sent: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
        sent.sort();
        let mut failed = d.failed;
        failed.sort();
        assert_eq!(sent, failed);
        assert_eq!(r.sink().delivered.len(), 3);
    }

    #[tokio::test]
    async fn a_shadow_rules_alerts_never_reach_the_sink_and_are_confirmed() {
        let text = "id: trial\ntitle: Trial\nseverity: high\nkind: threshold\nmode: shadow\n\
                    match: [{regex: 'from (?P<ip>\\S+) port'}]\ngroup_by: [ip]\n\
                    threshold: 5\nwindow: 60s\n";
        let mut rules = RuleSet::builtin().unwrap().rules;
        rules.extend(
            RuleSet::from_sources(vec![("trial.yaml".into(), text.into())])
                .unwrap()
                .rules,
        );
        let mut e = Engine::new(
            Arc::new(RuleSet::new(rules)),
            MemoryStore::new(),
            EngineConfig::default(),
        );
        let lines = lines();
        let p = payload(&lines);
        let shown = Arc::new(std::sync::Mutex::new(Vec::new()));
        let show = Arc::clone(&shown);
        let mut r = Runner::new(&mut e, Mock::default())
            .show_shadow(Box::new(move |a| show.lock().unwrap().extend_from_slice(a)));
        let o = r.process(&p).await.unwrap();
        assert_eq!(o.alerts.len(), 6, "3 live and 3 shadow: {:?}", o.alerts);
        assert_eq!(r.shadow_counts().get("trial"), Some(&3));
        // The retry sends nothing: the shadow alerts were confirmed too.
        assert!(r.process(&p).await.unwrap().alerts.is_empty());
        let mock = r.into_sink();
        assert_eq!(mock.delivered.len(), 3);
        assert_eq!(mock.calls, 1);
        let shown = shown.lock().unwrap();
        assert_eq!(shown.len(), 3);
        assert!(shown.iter().all(|a| a.shadow && a.rule == "trial"));
        assert!(
            o.alerts
                .iter()
                .filter(|a| mock.delivered.contains(&a.id))
                .all(|a| !a.shadow)
        );
    }

    /// A store whose writes fail while `broken` is set.
    struct Breaks {
        inner: MemoryStore,
        broken: Arc<AtomicBool>,
    }

    impl StateStore for Breaks {
        async fn load(
            &mut self,
            keys: &[String],
            now: i64,
        ) -> Result<std::collections::HashMap<String, Versioned>, StateError> {
            self.inner.load(keys, now).await
        }

        async fn save(&mut self, writes: Vec<Write>) -> Result<(), StateError> {
            if self.broken.load(Ordering::Relaxed) {
                return Err(StateError::Unavailable("down".into()));
            }
            self.inner.save(writes).await
        }

        async fn keys_with_prefix(
            &mut self,
            prefix: &str,
            now: i64,
        ) -> Result<Vec<String>, StateError> {
            self.inner.keys_with_prefix(prefix, now).await
        }
    }

    /// Breaks the store as it publishes: detection has written its state,
    /// the confirm finds the store down.
    struct BreakOnPublish(Arc<AtomicBool>, Mock);

    impl AlertSink for BreakOnPublish {
        async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
            self.0.store(true, Ordering::Relaxed);
            self.1.publish(alerts).await
        }
    }

    #[tokio::test]
    async fn a_failed_confirm_after_a_full_delivery_is_unconfirmed_with_the_outcome() {
        let lines = lines();
        let p = payload(&lines);
        let broken = Arc::new(AtomicBool::new(false));
        let mut e = engine(Breaks {
            inner: MemoryStore::new(),
            broken: Arc::clone(&broken),
        });
        let err = Runner::new(&mut e, BreakOnPublish(Arc::clone(&broken), Mock::default()))
            .process(&p)
            .await
            .unwrap_err();
        let RunError::Unconfirmed { error, outcome } = err else {
            panic!("expected an unconfirmed run, got {err}");
        };
        assert_eq!(outcome.alerts.len(), 3);
        assert!(error.to_string().contains("down"), "{error}");
        // Still pending: once the store is back, the same events send them again.
        broken.store(false, Ordering::Relaxed);
        let o = Runner::new(&mut e, Mock::default())
            .process(&p)
            .await
            .unwrap();
        assert_eq!(o.alerts.len(), 3);
    }
}
