//! A decoded payload with pass 1 done ahead of detection.
//!
//! Pass 1 (what each event means for each rule: platform parsing, the
//! matching plane, every detector's `observe`) reads no state, so it can run
//! where the payload is decoded. Replay's decoding threads do it for the
//! inputs ahead of detection; detection then does only steps 2–4, in input
//! order, on its one thread. Two thirds of detection's instructions were
//! pass 1 (callgrind, 8 text batches of the bench corpus), so this is what
//! lets replay use every core.

use std::sync::Arc;

use super::observe::{self, Observed};
use crate::ingest::{OwnedPayload, Payload};
use crate::rules::RuleSet;

/// Pass 1 of a payload: its view, what each event means for each rule of
/// `rules`, and how many events needed the tolerant JSON reading.
pub struct Pass1<'a> {
    /// The rules pass 1 was done with; `None`: it was not done.
    pub(super) rules: Option<Arc<RuleSet>>,
    pub(super) payload: Payload<'a>,
    pub(super) observed: Vec<Observed<'a>>,
    pub(super) lenient_json: u64,
}

// The observations borrow the payload's text: the two travel together
// between threads. `not_covariant`: the kinds' observation types are
// associated types, which the compiler cannot prove covariant.
self_cell::self_cell!(
    /// A decoded payload and its [`Pass1`], for [`super::Engine::process_prepared`].
    pub struct Prepared {
        owner: OwnedPayload,

        #[not_covariant]
        dependent: Pass1,
    }
);

impl Prepared {
    /// Pass 1 of `payload` with `rules` (the engine's, or the engine does
    /// pass 1 again); with `None`, the payload alone, for the engine to do
    /// pass 1 itself (when it profiles, say).
    pub fn of(rules: Option<&Arc<RuleSet>>, payload: OwnedPayload) -> Prepared {
        Prepared::new(payload, |owned| {
            let (observed, lenient_json) = match rules {
                Some(rules) => observe::observe(rules, owned.events(), None),
                None => (Vec::new(), 0),
            };
            Pass1 {
                rules: rules.cloned(),
                payload: owned.view(),
                observed,
                lenient_json,
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineConfig};
    use crate::ingest::{LogEvent, MessageType};
    use crate::state::MemoryStore;

    /// Failed logins (two crafted to need the tolerant JSON reading), a
    /// START without its END, and a timeout, from one stream.
    fn payload() -> OwnedPayload {
        let t = 1_795_341_600_000;
        let mut lines = super::super::tests::crafted_login_failures("NaN", "203.0.113.9");
        lines.push(
            "START RequestId: 9b2f0c1e-0bad-4a6e-9c1d-000000000bad Version: $LATEST\n".into(),
        );
        lines.push("2026-11-22T10:00:30.000Z 5e0d5b0c-0002-4a6e-9c1d-000000000002 Task timed out after 30.00 seconds\n".into());
        let p = Payload {
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            region: None,
            log_group: "/aws/lambda/auth".into(),
            log_stream: "s".into(),
            subscription_filters: vec![],
            log_events: lines
                .iter()
                .enumerate()
                .map(|(i, m)| LogEvent {
                    id: i.to_string().into(),
                    timestamp: t + i as i64 * 1_000,
                    message: m.as_str().into(),
                })
                .collect(),
        };
        OwnedPayload::from_payload(&p)
    }

    fn engine(rules: &Arc<RuleSet>) -> Engine<MemoryStore> {
        Engine::new(
            Arc::clone(rules),
            MemoryStore::new(),
            EngineConfig::default(),
        )
    }

    #[test]
    fn pass_1_done_ahead_gives_what_the_engine_gives_on_its_own() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let rules = Arc::new(RuleSet::builtin().unwrap());
        let owned = payload();
        let mut plain = engine(&rules);
        let expected = rt.block_on(plain.process(&owned.view())).unwrap();
        let later = 1_795_341_600_000 + 3_600_000;
        let end = rt.block_on(plain.sweep(later)).unwrap();
        assert!(
            expected
                .alerts
                .iter()
                .any(|a| a.rule == "failed-auth-burst"),
            "{:?}",
            expected.alerts
        );
        assert!(expected.lenient_json > 0);

        // Ahead with the engine's rules; with other rules (compiled again:
        // the engine does pass 1 itself); not done at all.
        let other = Arc::new(RuleSet::builtin().unwrap());
        for ahead in [Some(&rules), Some(&other), None] {
            let prepared = Prepared::of(ahead, payload());
            assert_eq!(
                prepared.with_dependent(|_, p| p.observed.is_empty()),
                ahead.is_none()
            );
            let mut e = engine(&rules);
            let got = prepared
                .with_dependent(|_, pass1| rt.block_on(e.process_prepared(pass1)))
                .unwrap();
            assert_eq!(got.alerts, expected.alerts);
            assert_eq!(got.events, expected.events);
            assert_eq!(got.lenient_json, expected.lenient_json);
            assert_eq!(got.suppressed, expected.suppressed);
            let swept = rt.block_on(e.sweep(later)).unwrap();
            assert_eq!(swept.alerts, end.alerts);
        }
        assert!(
            end.alerts.iter().any(|a| a.rule == "missing-end"),
            "{:?}",
            end.alerts
        );
    }
}
