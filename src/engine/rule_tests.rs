//! The inline tests of a rule file (`tests:`), each run on a fresh engine.

use std::sync::Arc;

use super::{Engine, EngineConfig};
use crate::alert::Alert;
use crate::detect::StateKey;
use crate::ingest::{LogEvent, MessageType, Payload};
use crate::rules::{Rule, RuleSet, RuleTest, TestEvent};
use crate::state::{self, StateStore, StateValue};

/// Result of one inline rule test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    /// Rule id.
    pub rule: String,
    /// Test name.
    pub name: String,
    /// Where the rule lives, and the test's line.
    pub location: String,
    /// `None` when it passed, else what was wrong.
    pub failure: Option<String>,
}

/// Run the inline tests of one rule, each on a fresh engine holding only that rule.
pub async fn run_rule_tests(rule: &Arc<Rule>) -> Vec<TestOutcome> {
    run_rule_tests_in(&RuleSet::new(Vec::new()), rule).await
}

/// Run the inline tests of one rule of `set`, each on a fresh engine holding
/// that rule and the rule it follows ([`crate::detect::Detect::follows`]),
/// whose incidents are its first step.
pub async fn run_rule_tests_in(set: &RuleSet, rule: &Arc<Rule>) -> Vec<TestOutcome> {
    let mut rules: Vec<Arc<Rule>> = rule
        .detector
        .follows()
        .and_then(|id| set.rules.iter().find(|r| r.id == id))
        .into_iter()
        .cloned()
        .collect();
    rules.push(Arc::clone(rule));
    let set = Arc::new(RuleSet::new(rules));
    let mut out = Vec::new();
    for t in &rule.tests {
        let (alerts, count, error) = run_test(&set, rule, t).await;
        let mine: Vec<&Alert> = alerts.iter().filter(|a| a.rule == rule.id).collect();
        out.push(TestOutcome {
            rule: rule.id.clone(),
            name: t.name.clone(),
            location: format!("{}:{}", rule.source, t.line),
            failure: judge(t, &mine, count, error),
        });
    }
    out
}

/// One test's events through a fresh engine, a batch per run of one log
/// stream, then a sweep: every alert, the count of the first alert's
/// incident at the end, and the last error if there was one.
async fn run_test(
    set: &Arc<RuleSet>,
    rule: &Arc<Rule>,
    t: &RuleTest,
) -> (Vec<Alert>, Option<u64>, Option<String>) {
    let set = Arc::clone(set);
    let mut engine = Engine::new(set, state::MemoryStore::new(), EngineConfig::default());
    let mut alerts = Vec::new();
    let mut error = None;
    for chunk in t
        .events
        .chunk_by(|a: &TestEvent, b: &TestEvent| a.log_stream == b.log_stream)
    {
        let payload = Payload {
            region: None,
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: t.log_group.as_str().into(),
            log_stream: chunk[0].log_stream.as_str().into(),
            subscription_filters: vec![],
            log_events: chunk
                .iter()
                .enumerate()
                .map(|(i, e)| LogEvent {
                    id: format!("{}-{i}", e.timestamp).into(),
                    timestamp: e.timestamp,
                    message: e.message.as_str().into(),
                })
                .collect(),
        };
        match engine.process(&payload).await {
            Ok(o) => {
                let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
                if let Err(e) = engine.confirm(&ids).await {
                    error = Some(e.to_string());
                }
                alerts.extend(o.alerts);
            }
            Err(e) => error = Some(e.to_string()),
        }
    }
    let now = t.now.or(engine.watermark()).unwrap_or(0);
    match engine.sweep(now).await {
        Ok(o) => alerts.extend(o.alerts),
        Err(e) => error = Some(e.to_string()),
    }
    let count = match alerts.iter().find(|a| a.rule == rule.id) {
        Some(a) => incident_count(&mut engine, &rule.id, a).await,
        None => None,
    };
    (alerts, count, error)
}

/// The count of `alert`'s incident in the engine's state: every event it
/// stands for, also those after the alert went out (the alert holds what
/// opened it, so that it does not depend on where batches split).
async fn incident_count(
    engine: &mut Engine<state::MemoryStore>,
    rule: &str,
    alert: &Alert,
) -> Option<u64> {
    let key = StateKey::incident(rule, &alert.log_group, &alert.key).into_string();
    let loaded = engine.store.load(&[key], i64::MIN).await.ok()?;
    loaded.into_values().find_map(|v| match v.value {
        StateValue::Incident(inc) => Some(inc.count),
        _ => None,
    })
}

/// What was wrong with the rule's alerts (`mine`), `None` when the test passed.
fn judge(
    t: &RuleTest,
    mine: &[&Alert],
    count: Option<u64>,
    error: Option<String>,
) -> Option<String> {
    if let Some(e) = error {
        Some(e)
    } else if mine.len() != t.expect_alerts {
        Some(format!(
            "expected {} alert(s), got {}",
            t.expect_alerts,
            mine.len()
        ))
    } else if let Some(k) = t
        .expect_key
        .as_ref()
        .filter(|k| mine.iter().any(|a| &a.key != *k))
    {
        Some(format!(
            "expected key {k:?}, got {:?}",
            mine.iter().map(|a| &a.key).collect::<Vec<_>>()
        ))
    } else {
        t.expect_count
            .filter(|c| count != Some(*c))
            .map(|c| format!("expected count {c}, got {count:?}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_builtin_inline_test_passes() {
        let set = RuleSet::builtin().unwrap();
        let mut n = 0;
        for r in &set.rules {
            for o in run_rule_tests_in(&set, r).await {
                n += 1;
                assert!(
                    o.failure.is_none(),
                    "{} {} ({}): {:?}",
                    o.rule,
                    o.name,
                    o.location,
                    o.failure
                );
            }
        }
        assert!(n >= 16, "only {n} inline tests");
    }
}
