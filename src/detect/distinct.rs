//! `distinct`: at least N distinct values of one field per key within a
//! sliding window of event time (password spraying: one source failing for
//! many users; many failures for one user is a burst, which `threshold` sees).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::config::{Cx, KindConfig, RawMatcher, check_field_names, compile_matchers};
use super::key::WINDOWS;
use super::kind::fold_into_open;
use super::{At, Detect, Detector, Finding, Key, Line, Matching, Scope, StateKey, Summary};
use crate::detect::matcher::{Fields, Matcher, field};

/// Configuration of a distinct rule.
#[derive(Debug, Clone)]
pub struct Distinct {
    /// Matchers; the first that matches wins.
    pub matchers: Vec<Matcher>,
    /// Fields forming the key; an event lacking one is not counted.
    pub group_by: Vec<String>,
    /// The field whose distinct values are counted; an event lacking it is
    /// not counted.
    pub field: String,
    /// Distinct values needed within the window.
    pub threshold: usize,
    /// Window length in milliseconds.
    pub window_ms: i64,
}

/// Recent distinct values of one key. Values are kept as hashes (no user
/// names in the state store), each with the last time it was seen, and at
/// most `threshold` of them: the newest ones are all the sliding-window test
/// needs, so the state stays bounded whatever an attacker sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DistinctState {
    /// `(last seen, value hash)`, sorted by time.
    pub values: Vec<(i64, u64)>,
    /// Up to five lines, one per new value, for evidence.
    pub samples: Vec<String>,
    /// Request ids of those lines.
    pub request_ids: Vec<String>,
}

/// Distinct values of one key that reached the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    /// Earliest last-seen time of the values counted.
    pub first_seen: i64,
    /// Distinct values counted.
    pub distinct: u64,
}

impl Distinct {
    /// Fields of the first matcher that matches the line, if any.
    pub fn observe(&self, body: &str, json: Option<&Value>) -> Option<Fields> {
        self.matchers.iter().find_map(|m| m.matches(body, json))
    }

    /// Whether any matcher needs the body as JSON.
    pub fn needs_json(&self) -> bool {
        self.matchers.iter().any(Matcher::needs_json)
    }

    /// The key and the hash of the counted value of a matching event; `None`
    /// when a `group_by` field or the counted field is missing or empty.
    pub fn key_and_value(&self, fields: &Fields) -> Option<(Key, u64)> {
        let value = field(fields, &self.field).filter(|v| !v.is_empty())?;
        let key = self
            .group_by
            .iter()
            .map(|g| field(fields, g).map(|v| (g.clone(), v.to_string())))
            .collect::<Option<Key>>()?;
        Some((key, super::stable_hash(&["distinct", value])))
    }

    /// Count one event's value; `Some` when the window now holds `threshold`
    /// distinct values. A value seen again only moves its time forward, so a
    /// redelivered batch or a repeated user never counts twice.
    pub fn apply(
        &self,
        st: &mut DistinctState,
        ts: i64,
        value: u64,
        sample: &str,
        request_id: Option<&str>,
    ) -> Option<Spread> {
        let newest = st.values.last().map_or(ts, |v| v.0.max(ts));
        let floor = newest - self.window_ms;
        st.values.retain(|v| v.0 >= floor);
        if ts < floor {
            // Older than the window of what is already known: too late to count.
            return None;
        }
        match st.values.iter().position(|v| v.1 == value) {
            Some(i) => {
                let seen = st.values.remove(i).0.max(ts);
                let at = st.values.partition_point(|v| v.0 <= seen);
                st.values.insert(at, (seen, value));
                return None;
            }
            None => {
                let at = st.values.partition_point(|v| v.0 <= ts);
                st.values.insert(at, (ts, value));
            }
        }
        while st.values.len() > self.threshold {
            st.values.remove(0);
        }
        push_capped(&mut st.samples, sample.to_string(), 5);
        if let Some(r) = request_id {
            push_capped(&mut st.request_ids, r.to_string(), 5);
        }
        if st.values.len() >= self.threshold {
            let spread = Spread {
                first_seen: st.values.first().map_or(ts, |v| v.0),
                distinct: st.values.len() as u64,
            };
            st.values.clear();
            return Some(spread);
        }
        None
    }
}

/// A matching event: its key, the hash of its counted value, its request.
pub struct Seen<'a> {
    /// Incident key.
    pub key: Key,
    /// Hash of the counted value.
    pub value: u64,
    /// Request id, when the line has one.
    pub request_id: Option<Cow<'a, str>>,
}

impl Detect for Distinct {
    type Obs<'a> = Seen<'a>;

    fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// The rule's first matching matcher: its key and the counted value.
    fn observe<'p>(
        &self,
        line: &Line<'p, '_>,
        m: &mut Matching<'_>,
        out: &mut impl FnMut(Seen<'p>),
    ) {
        let Some(app) = line.app else { return };
        let Some(fields) = m.first_match(app.body) else {
            return;
        };
        let Some((key, value)) = self.key_and_value(&fields) else {
            return;
        };
        out(Seen {
            key,
            value,
            request_id: app.request_id.clone(),
        });
    }

    fn key_of<'o>(obs: &'o Seen<'_>) -> Option<&'o Key> {
        Some(&obs.key)
    }

    fn keyed_key(&self, rule: &str, group: &str, key: &Key) -> Option<StateKey> {
        Some(WINDOWS.keyed(rule, group, key))
    }

    /// Clear when no matching event for the key folds in for twice the window.
    fn resolve_after(&self, _realert_ms: i64) -> i64 {
        self.window_ms.saturating_mul(2)
    }

    /// A matching event's value counted in its key's window; enough distinct
    /// values open an incident.
    fn apply<S: Scope>(&self, seen: &Seen<'_>, at: &At<'_>, scope: &mut S) {
        let request_id = seen.request_id.as_deref();
        if fold_into_open(scope, at, &seen.key, request_id) {
            return;
        }
        let wkey = WINDOWS.keyed(scope.rule_id(), at.group, &seen.key);
        let st: &mut DistinctState = scope.state(&wkey, at.ts + self.window_ms);
        let Some(spread) = self.apply(st, at.ts, seen.value, at.message, request_id) else {
            return;
        };
        let f = Finding {
            key: seen.key.clone(),
            first_seen: spread.first_seen,
            last_seen: at.ts,
            count: spread.distinct,
            log_stream: at.stream.to_string(),
            request_ids: std::mem::take(&mut st.request_ids),
            evidence: std::mem::take(&mut st.samples),
            metrics: BTreeMap::from([
                (format!("distinct_{}", self.field), spread.distinct as f64),
                ("threshold".to_string(), self.threshold as f64),
            ]),
        };
        scope.record(at.group, f, at.hash());
    }

    fn what(&self, s: &Summary<'_>) -> String {
        format!(
            "{} distinct {} values in {} matching events from {} in {} {} (threshold {} within {} s).",
            s.metric(&format!("distinct_{}", self.field)),
            self.field,
            s.count,
            s.key_words().join(", "),
            s.log_group,
            s.span,
            self.threshold,
            self.window_ms / 1_000
        )
    }
}

fn push_capped(v: &mut Vec<String>, s: String, cap: usize) {
    if v.len() >= cap {
        v.remove(0);
    }
    v.push(s);
}

/// The fields of a `distinct` rule, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "match")]
    matchers: Option<Vec<RawMatcher>>,
    group_by: Option<Vec<String>>,
    threshold: Option<u64>,
    window: Option<String>,
    distinct: Option<String>,
}

impl KindConfig for Config {
    fn compile(self, cx: &mut Cx<'_>) -> Option<Detector> {
        let matchers = compile_matchers(cx, self.matchers.as_deref().unwrap_or_default());
        if self.matchers.as_ref().is_none_or(|m| m.is_empty()) {
            cx.needs(
                "match",
                "kind:",
                "a distinct rule needs a non-empty `match:` list",
            );
        }
        let field = self.distinct.clone().unwrap_or_default();
        if field.is_empty() {
            let at = if self.distinct.is_some() {
                "distinct:"
            } else {
                "kind:"
            };
            cx.needs(
                "distinct",
                at,
                "a distinct rule needs `distinct:`, the field whose values are counted (e.g. user)",
            );
        }
        let (threshold, window_ms) = cx.threshold_and_window(
            self.threshold,
            self.window.as_deref(),
            2,
            "a distinct rule needs `threshold:` ≥ 2 (distinct values)",
            "a distinct rule needs `window:` (e.g. 5m)",
        );
        let group_by = self.group_by.clone().unwrap_or_default();
        let counted = if field.is_empty() {
            vec![]
        } else {
            vec![field.clone()]
        };
        check_field_names(
            cx,
            self.matchers.as_ref(),
            &matchers,
            &[],
            &[("group_by", group_by.clone()), ("distinct", counted)],
        );
        Some(Detector::Distinct(Distinct {
            matchers,
            group_by,
            field,
            threshold: threshold as usize,
            window_ms,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alert::Alert;
    use crate::engine::{Engine, EngineConfig};
    use crate::ingest::{LogEvent, MessageType, Payload};
    use crate::rules::RuleSet;
    use crate::state::MemoryStore;

    fn rule(threshold: usize, window_ms: i64) -> Distinct {
        Distinct {
            matchers: vec![],
            group_by: vec!["source_ip".into()],
            field: "user".into(),
            threshold,
            window_ms,
        }
    }

    #[test]
    fn fires_when_enough_distinct_values_fall_in_the_window() {
        let r = rule(3, 10_000);
        let mut st = DistinctState::default();
        assert!(r.apply(&mut st, 0, 1, "a", None).is_none());
        assert!(r.apply(&mut st, 1_000, 1, "a again", None).is_none());
        assert!(r.apply(&mut st, 2_000, 2, "b", None).is_none());
        let s = r.apply(&mut st, 9_000, 3, "c", Some("r")).unwrap();
        assert_eq!(
            s,
            Spread {
                first_seen: 1_000,
                distinct: 3
            }
        );
        assert_eq!(st.samples, ["a", "b", "c"]);
        assert!(st.values.is_empty(), "the incident starts over");
    }

    #[test]
    fn one_value_repeated_never_fires() {
        let r = rule(3, 10_000);
        let mut st = DistinctState::default();
        for i in 0..100 {
            assert!(r.apply(&mut st, i, 7, "x", None).is_none());
        }
        assert_eq!(st.values.len(), 1);
    }

    #[test]
    fn values_outside_the_window_slide_out() {
        let r = rule(3, 10_000);
        let mut st = DistinctState::default();
        for i in 0..20 {
            assert!(r.apply(&mut st, i * 6_000, i as u64, "x", None).is_none());
        }
        assert!(st.values.len() <= 2, "{:?}", st.values);
    }

    #[test]
    fn a_late_event_older_than_the_window_is_not_counted() {
        let r = rule(2, 10_000);
        let mut st = DistinctState::default();
        assert!(r.apply(&mut st, 100_000, 1, "a", None).is_none());
        assert!(r.apply(&mut st, 50_000, 2, "late", None).is_none());
        assert_eq!(st.values, [(100_000, 1)]);
    }

    #[test]
    fn state_is_bounded_by_the_threshold() {
        let r = rule(15, 300_000);
        let mut st = DistinctState::default();
        let mut fired = 0;
        for i in 0..10_000u64 {
            if r.apply(&mut st, i as i64, i, "x", None).is_some() {
                fired += 1;
            }
            assert!(st.values.len() < 15);
            assert!(st.samples.len() <= 5);
        }
        assert_eq!(fired, 10_000 / 15);
    }

    fn payload<'a>(ip_user: &'a [(String, String)]) -> Payload<'a> {
        Payload {
            region: None,
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: "/aws/ec2/bastion".into(),
            log_stream: "i-0abc".into(),
            subscription_filters: vec![],
            log_events: ip_user
                .iter()
                .enumerate()
                .map(|(i, (ip, user))| LogEvent {
                    id: i.to_string().into(),
                    timestamp: 1_795_341_600_000 + i as i64 * 1_000,
                    message: format!(
                        "sshd[{i}]: Failed password for {user} from {ip} port {} ssh2",
                        40_000 + i
                    )
                    .into(),
                })
                .collect(),
        }
    }

    async fn builtin_alerts(events: &[(String, String)]) -> Vec<Alert> {
        let set = Arc::new(RuleSet::builtin().unwrap());
        let mut engine = Engine::new(set, MemoryStore::new(), EngineConfig::default());
        engine.process(&payload(events)).await.unwrap().alerts
    }

    fn rules(alerts: &[Alert]) -> Vec<&str> {
        alerts.iter().map(|a| a.rule.as_str()).collect()
    }

    #[tokio::test]
    async fn thirty_failures_for_one_user_are_a_burst_not_spraying() {
        let events: Vec<(String, String)> = (0..30)
            .map(|_| ("203.0.113.7".to_string(), "root".to_string()))
            .collect();
        let alerts = builtin_alerts(&events).await;
        assert_eq!(rules(&alerts), ["failed-auth-burst"]);
    }

    #[tokio::test]
    async fn fifteen_users_once_each_from_one_ip_is_spraying() {
        let events: Vec<(String, String)> = (0..15)
            .map(|i| ("198.51.100.9".to_string(), format!("user{i:02}")))
            .collect();
        let alerts = builtin_alerts(&events).await;
        let spray: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.rule == "password-spraying")
            .collect();
        assert_eq!(spray.len(), 1, "{:?}", rules(&alerts));
        assert_eq!(spray[0].key["source_ip"], "198.51.100.9");
        assert_eq!(spray[0].count, 15);
        assert_eq!(spray[0].metrics["distinct_user"], 15.0);
        assert_eq!(spray[0].kind, "distinct");
    }

    #[tokio::test]
    async fn fourteen_users_or_fifteen_spread_over_sources_stay_silent() {
        let fourteen: Vec<(String, String)> = (0..14)
            .map(|i| ("198.51.100.9".to_string(), format!("user{i:02}")))
            .collect();
        assert!(!rules(&builtin_alerts(&fourteen).await).contains(&"password-spraying"));
        let spread: Vec<(String, String)> = (0..30)
            .map(|i| (format!("198.51.100.{}", i % 3), format!("user{i:02}")))
            .collect();
        assert!(!rules(&builtin_alerts(&spread).await).contains(&"password-spraying"));
    }

    #[tokio::test]
    async fn a_long_spray_is_one_alert_per_realert() {
        let events: Vec<(String, String)> = (0..120)
            .map(|i| ("192.0.2.50".to_string(), format!("u{i}")))
            .collect();
        let alerts = builtin_alerts(&events).await;
        let spray: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.rule == "password-spraying")
            .collect();
        assert_eq!(spray.len(), 1);
        // The alert is the spray as it opened; the rest count into the incident.
        assert_eq!(spray[0].count, 15);
    }
}
