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

mod silenced;

use std::collections::BTreeMap;

use crate::alert::Alert;
use crate::engine::{BatchOutcome, Engine, EngineError, Pass1};
use crate::ingest::Payload;
use crate::silence::SilenceSet;
use crate::sinks::{AlertSink, SinkError};
use crate::state::StateStore;

pub use silenced::PARKED_PREFIX;

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
///
/// Silenced alerts ([`Runner::silences`]) never reach the sink either: they
/// are logged with the silence's id, counted ([`Runner::silenced`]) and
/// confirmed; a firing one is parked and goes out once when its silence
/// ends, if its incident is still open then (see `runner/silenced.rs`).
pub struct Runner<'e, S: StateStore, K> {
    engine: &'e mut Engine<S>,
    sink: K,
    show: Option<ShowShadow<'e>>,
    shadow: BTreeMap<String, u64>,
    silences: Option<SilenceSet>,
    silenced: u64,
    /// Held back (id, resolved) and released (parked, sent at expiry) since
    /// [`Runner::take_silence_changes`].
    held: Vec<(String, bool)>,
    released: Vec<Alert>,
}

impl<'e, S: StateStore, K: AlertSink> Runner<'e, S, K> {
    /// A runner delivering `engine`'s alerts to `sink`.
    pub fn new(engine: &'e mut Engine<S>, sink: K) -> Self {
        Runner {
            engine,
            sink,
            show: None,
            shadow: BTreeMap::new(),
            silences: None,
            silenced: 0,
            held: Vec::new(),
            released: Vec::new(),
        }
    }

    /// The runner, applying these silences (and delivering the alerts
    /// earlier runs parked, once their silence ends). Without, parked
    /// alerts are not looked for: no store read is added.
    pub fn silences(mut self, set: SilenceSet) -> Self {
        self.silences = Some(set);
        self
    }

    /// Replace the silences in force (the detector's once-a-minute read).
    pub fn set_silences(&mut self, set: SilenceSet) {
        self.silences = Some(set);
    }

    /// Alerts silenced so far (firings parked and resolutions of parked
    /// firings), not delivered.
    pub fn silenced(&self) -> u64 {
        self.silenced
    }

    /// What silences changed since the last call: the alerts of the
    /// outcomes held back (id, whether a resolution), and the parked alerts
    /// sent because their silence ended (in no outcome). The detector
    /// without a topic, which logs the outcomes' alerts, logs these instead.
    pub fn take_silence_changes(&mut self) -> (Vec<(String, bool)>, Vec<Alert>) {
        (
            std::mem::take(&mut self.held),
            std::mem::take(&mut self.released),
        )
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
        let w = self.engine.watermark().unwrap_or(i64::MIN);
        self.finish(o, w, false).await
    }

    /// Detect on a payload whose pass 1 was done ahead
    /// ([`crate::engine::Prepared`]), then publish and confirm its alerts.
    pub async fn process_prepared(&mut self, pass1: &Pass1<'_>) -> Result<BatchOutcome, RunError> {
        let o = self
            .engine
            .process_prepared(pass1)
            .await
            .map_err(RunError::Engine)?;
        let w = self.engine.watermark().unwrap_or(i64::MIN);
        self.finish(o, w, false).await
    }

    /// Sweep the deadline rules at watermark `now`, then publish and confirm.
    pub async fn sweep(&mut self, now: i64) -> Result<BatchOutcome, RunError> {
        let o = self.engine.sweep(now).await.map_err(RunError::Engine)?;
        self.finish(o, now, true).await
    }

    async fn finish(
        &mut self,
        o: BatchOutcome,
        watermark: i64,
        sweeping: bool,
    ) -> Result<BatchOutcome, RunError> {
        match self.deliver(&o.alerts, watermark, sweeping).await {
            Ok(()) => Ok(o),
            Err(Undelivered::Sink(e)) => Err(RunError::Sink(e)),
            Err(Undelivered::Store(e)) => Err(RunError::Engine(e)),
            Err(Undelivered::Unconfirmed(error)) => Err(RunError::Unconfirmed {
                error,
                outcome: Box::new(o),
            }),
        }
    }

    /// Publish `alerts` (shadow ones only shown, silenced ones held back),
    /// then confirm the ones delivered or held back.
    ///
    /// Parked alerts are looked for (one store listing) by every sweep and
    /// by batches with alerts, not by the many batches without: a silence
    /// that ended is lifted by the next sweep at the latest.
    async fn deliver(
        &mut self,
        alerts: &[Alert],
        watermark: i64,
        sweeping: bool,
    ) -> Result<(), Undelivered> {
        if alerts.is_empty() && !(sweeping && self.silences.is_some()) {
            return Ok(());
        }
        let (shadow, live): (Vec<Alert>, Vec<Alert>) =
            alerts.iter().cloned().partition(|a| a.shadow);
        if !shadow.is_empty() {
            self.shadowed(&shadow);
        }
        let mut flushed = Vec::new();
        let live = match &self.silences {
            None => live,
            Some(set) => {
                let sorted = silenced::sort(self.engine, set, live, watermark)
                    .await
                    .map_err(|e| Undelivered::Store(e.into()))?;
                if !sorted.writes.is_empty() {
                    self.engine
                        .store_mut()
                        .save(sorted.writes)
                        .await
                        .map_err(|e| Undelivered::Store(e.into()))?;
                }
                self.held_back(&sorted.silenced);
                self.released
                    .extend(sorted.flushed.iter().map(|p| (*p.alert).clone()));
                flushed = sorted.flushed;
                sorted.live
            }
        };
        let published = if live.is_empty() {
            Ok(())
        } else {
            self.sink.publish(&live).await
        };
        let not_sent: &[String] = match &published {
            Ok(()) => &[],
            Err(e) => &e.failed,
        };
        self.repark(&flushed, not_sent).await;
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
    /// Log and count the alerts silences held back.
    fn held_back(&mut self, silenced: &[(Alert, String)]) {
        for (a, silence) in silenced {
            tracing::info!(
                rule = %a.rule,
                id = %a.id,
                status = %a.status.as_str(),
                log_group = %a.log_group,
                count = a.count,
                silence = %silence,
                "Silenced alert: not delivered."
            );
        }
        self.silenced += silenced.len() as u64;
        self.held.extend(
            silenced
                .iter()
                .map(|(a, _)| (a.id.clone(), a.status.is_resolved())),
        );
    }

    /// Park again the parked alerts taken for delivery that the sink did
    /// not deliver: the next run sends them.
    async fn repark(&mut self, flushed: &[crate::state::ParkedAlert], not_sent: &[String]) {
        let writes: Vec<_> = flushed
            .iter()
            .filter(|p| not_sent.contains(&p.alert.id))
            .map(silenced::repark)
            .collect();
        if writes.is_empty() {
            return;
        }
        if let Err(e) = self.engine.store_mut().save(writes).await {
            tracing::error!(error = %e, "Could not park again alerts whose silence ended and whose delivery failed; they are lost.");
        }
    }

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
    /// Parking or taking parked alerts failed; nothing was published.
    Store(EngineError),
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
        sent: Vec<Alert>,
    }

    impl AlertSink for Mock {
        async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
            self.calls += 1;
            if !self.down {
                self.sent.extend(
                    alerts
                        .iter()
                        .filter(|a| !self.refuse.contains(&a.id))
                        .cloned(),
                );
            }
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
        payload_at(lines, 1_795_341_600_000)
    }

    fn payload_at(lines: &[String], base: i64) -> Payload<'_> {
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
                    timestamp: base + i as i64 * 100,
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

    const T0: i64 = 1_795_341_600_000;

    /// A silence of failed-auth-burst for 203.0.113.0 until `T0 + until`.
    fn silence_of_one(until: i64) -> SilenceSet {
        let s = crate::silence::NewSilence {
            rule: "failed-auth-burst".into(),
            key: crate::detect::Key::from([("source_ip".into(), "203.0.113.0".into())]),
            log_group: Some("/aws/lambda/*".into()),
            until: Some(T0 + until),
            reason: "pen test".into(),
            by: "ops".into(),
        }
        .make(T0 - 1, &[])
        .unwrap();
        SilenceSet::new(vec![s])
    }

    fn sent(m: &Mock) -> Vec<(String, String)> {
        m.sent
            .iter()
            .map(|a| (a.key["source_ip"].clone(), a.status.as_str().to_string()))
            .collect()
    }

    #[tokio::test]
    async fn burst_silence_burst_delivers_nothing_then_the_open_incident_alerts_once_at_expiry() {
        let lines = lines();
        let mut e = engine(MemoryStore::new());
        let mut r = Runner::new(&mut e, Mock::default()).silences(silence_of_one(90_000));
        r.process(&payload_at(&lines, T0)).await.unwrap();
        assert_eq!(r.silenced(), 1);
        // Another burst from the silenced source, within its incident.
        r.process(&payload_at(&lines, T0 + 60_000)).await.unwrap();
        let firings = |m: &Mock| {
            sent(m)
                .into_iter()
                .filter(|(ip, _)| ip == "203.0.113.0")
                .count()
        };
        assert_eq!(firings(r.sink()), 0, "{:?}", sent(r.sink()));
        assert_eq!(r.sink().sent.len(), 2, "the other two sources");
        // The silence ends at T0+90s; the incident is open until ~T0+183s.
        r.sweep(T0 + 100_000).await.unwrap();
        assert_eq!(
            sent(r.sink()).last(),
            Some(&("203.0.113.0".to_string(), "firing".to_string()))
        );
        r.sweep(T0 + 110_000).await.unwrap();
        assert_eq!(firings(r.sink()), 1, "once");
        // Its resolution follows its (delivered) firing.
        r.sweep(T0 + 600_000).await.unwrap();
        let ours: Vec<(String, String)> = sent(r.sink())
            .into_iter()
            .filter(|(ip, _)| ip == "203.0.113.0")
            .collect();
        assert_eq!(ours.len(), 2, "{ours:?}");
        assert_eq!(ours[1].1, "resolved");
        assert!(
            r.engine()
                .store_mut()
                .keys_with_prefix(PARKED_PREFIX, i64::MIN)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_incident_resolved_while_silenced_sends_neither_firing_nor_resolution() {
        let lines = lines();
        let mut e = engine(MemoryStore::new());
        let mut r = Runner::new(&mut e, Mock::default()).silences(silence_of_one(600_000));
        r.process(&payload_at(&lines, T0)).await.unwrap();
        r.sweep(T0 + 300_000).await.unwrap();
        assert_eq!(r.silenced(), 2, "the firing and its resolution");
        r.sweep(T0 + 700_000).await.unwrap();
        let m = r.into_sink();
        assert!(
            sent(&m).iter().all(|(ip, _)| ip != "203.0.113.0"),
            "{:?}",
            sent(&m)
        );
        assert_eq!(m.sent.len(), 4, "the others' firings and resolutions");
    }

    #[tokio::test]
    async fn a_removed_silence_lets_the_open_incident_alert_at_the_next_run() {
        let lines = lines();
        let mut e = engine(MemoryStore::new());
        let mut r = Runner::new(&mut e, Mock::default()).silences(silence_of_one(600_000));
        r.process(&payload_at(&lines, T0)).await.unwrap();
        assert_eq!(r.sink().sent.len(), 2);
        r.set_silences(SilenceSet::default());
        r.sweep(T0 + 30_000).await.unwrap();
        assert_eq!(r.sink().sent.len(), 3);
        assert_eq!(sent(r.sink())[2].0, "203.0.113.0");
        r.sweep(T0 + 40_000).await.unwrap();
        assert_eq!(r.sink().sent.len(), 3, "once");
    }

    #[tokio::test]
    async fn a_failed_delivery_at_expiry_parks_the_alert_again() {
        let lines = lines();
        let mut e = engine(MemoryStore::new());
        let mut r = Runner::new(&mut e, Mock::default()).silences(silence_of_one(30_000));
        r.process(&payload_at(&lines, T0)).await.unwrap();
        r.sink().down = true;
        assert!(r.sweep(T0 + 40_000).await.is_err());
        r.sink().down = false;
        r.sweep(T0 + 50_000).await.unwrap();
        assert_eq!(
            sent(r.sink())
                .iter()
                .filter(|(ip, _)| ip == "203.0.113.0")
                .count(),
            1
        );
    }

    /// Counts its listings.
    struct Lists(MemoryStore, Arc<std::sync::atomic::AtomicUsize>);

    impl StateStore for Lists {
        async fn load(
            &mut self,
            keys: &[String],
            now: i64,
        ) -> Result<std::collections::HashMap<String, Versioned>, StateError> {
            self.0.load(keys, now).await
        }

        async fn save(&mut self, writes: Vec<Write>) -> Result<(), StateError> {
            self.0.save(writes).await
        }

        async fn keys_with_prefix(
            &mut self,
            prefix: &str,
            now: i64,
        ) -> Result<Vec<String>, StateError> {
            if prefix == PARKED_PREFIX {
                self.1.fetch_add(1, Ordering::Relaxed);
            }
            self.0.keys_with_prefix(prefix, now).await
        }
    }

    #[tokio::test]
    async fn a_batch_without_alerts_does_not_look_for_parked_alerts_and_a_sweep_does() {
        let lists = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut e = engine(Lists(MemoryStore::new(), Arc::clone(&lists)));
        let mut r = Runner::new(&mut e, Mock::default()).silences(silence_of_one(90_000));
        let quiet = vec!["an ordinary line".to_string(); 5];
        r.process(&payload_at(&quiet, T0)).await.unwrap();
        assert_eq!(lists.load(Ordering::Relaxed), 0);
        r.process(&payload_at(&lines(), T0)).await.unwrap();
        assert_eq!(lists.load(Ordering::Relaxed), 1);
        r.sweep(T0 + 1_000).await.unwrap();
        assert_eq!(lists.load(Ordering::Relaxed), 2);
    }
}
