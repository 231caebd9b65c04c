//! `sequence`: another rule's incident, then a matching event for the same
//! key within a span (a brute-force burst, then a successful login from the
//! same source).
//!
//! The first step is an incident of the rule it names (`steps: [{rule: …},
//! {match: […]}]`): the engine keeps that incident in the state store, keyed
//! by rule, log group and key, and loads it with the observation's state
//! ([`Detect::follows`]), so the sequence holds across batches, containers
//! and the DynamoDB store with no state of its own. The alert names the
//! incident it followed: its evidence starts with the first step's alert id
//! and time, and `metrics.seconds_after_first_step` says how long after.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::config::{Cx, KindConfig, RawMatcher, check_field_names, compile_matchers};
use super::matcher::{Matcher, field};
use super::{At, Detect, Detector, Key, Line, Matching, Scope, Summary};
use crate::time::rfc3339;

/// Configuration of a sequence rule.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// The rule whose incident is the first step.
    pub after: String,
    /// Matchers of the last step; the first that matches wins.
    pub matchers: Vec<Matcher>,
    /// Fields forming the key, the same as the first step's rule's.
    pub group_by: Vec<String>,
    /// Longest span from the first step's incident to the last step.
    pub within_ms: i64,
}

/// A line of the last step: its key and request id.
pub struct Step<'a> {
    /// Incident key.
    pub key: Key,
    /// Request id, when the line has one.
    pub request_id: Option<Cow<'a, str>>,
}

impl Detect for Sequence {
    type Obs<'a> = Step<'a>;

    fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    fn observe<'p>(
        &self,
        line: &Line<'p, '_>,
        m: &mut Matching<'_>,
        out: &mut impl FnMut(Step<'p>),
    ) {
        let Some(app) = line.app else { return };
        let Some(fields) = m.first_match(app.body) else {
            return;
        };
        let key: Option<Key> = self
            .group_by
            .iter()
            .map(|g| field(&fields, g).map(|v| (g.clone(), v.to_string())))
            .collect();
        if let Some(key) = key {
            out(Step {
                key,
                request_id: app.request_id.clone(),
            });
        }
    }

    fn key_of<'o>(obs: &'o Step<'_>) -> Option<&'o Key> {
        Some(&obs.key)
    }

    fn follows(&self) -> Option<&str> {
        Some(&self.after)
    }

    /// The last step completes the sequence when the first step's incident
    /// for the same key opened at most `within` before it.
    fn apply<S: Scope>(&self, step: &Step<'_>, at: &At<'_>, scope: &mut S) {
        let Some(first) = scope.incident_of(&self.after, at.group, &step.key) else {
            return;
        };
        let after_ms = at.ts - first.at;
        if !(0..=self.within_ms).contains(&after_ms) {
            return;
        }
        let mut f = at.keyed_finding(&step.key, step.request_id.as_deref());
        f.evidence.insert(
            0,
            format!(
                "{} incident {} opened at {}",
                self.after,
                first.id,
                rfc3339(first.at)
            ),
        );
        f.metrics = BTreeMap::from([(
            "seconds_after_first_step".to_string(),
            after_ms as f64 / 1_000.0,
        )]);
        scope.record(at.group, f, at.hash());
    }

    fn what(&self, s: &Summary<'_>) -> String {
        format!(
            "{} matched in {} {}, {} s after a {} incident for the same {}.",
            s.key_words().join(", "),
            s.log_group,
            s.span,
            s.metric("seconds_after_first_step"),
            self.after,
            self.group_by.join(", ")
        )
    }
}

/// One entry of `steps:`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    rule: Option<String>,
    #[serde(rename = "match")]
    matchers: Option<Vec<RawMatcher>>,
}

/// The fields of a `sequence` rule, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    steps: Option<Vec<RawStep>>,
    group_by: Option<Vec<String>>,
    within: Option<String>,
}

impl KindConfig for Config {
    fn compile(self, cx: &mut Cx<'_>) -> Option<Detector> {
        let mut steps = self.steps.unwrap_or_default().into_iter();
        let (after, raw) = match (steps.next(), steps.next(), steps.next()) {
            (
                Some(RawStep {
                    rule: Some(r),
                    matchers: None,
                }),
                Some(RawStep {
                    rule: None,
                    matchers: Some(m),
                }),
                None,
            ) if !m.is_empty() => (r, m),
            _ => {
                cx.needs(
                    "steps",
                    "kind:",
                    "a sequence rule needs `steps:` [{rule: <id>}, {match: [...]}]: \
                     another rule's incident, then matching lines",
                );
                (String::new(), Vec::new())
            }
        };
        let matchers = compile_matchers(cx, &raw);
        let group_by = self.group_by.unwrap_or_default();
        if group_by.is_empty() {
            cx.needs(
                "group_by",
                "kind:",
                "a sequence rule needs `group_by:` (the first step's rule's key)",
            );
        }
        let within_ms = cx.duration("within", self.within.as_deref(), 0);
        if within_ms <= 0 {
            cx.needs(
                "within",
                "kind:",
                "a sequence rule needs `within:` (e.g. 10m)",
            );
        }
        check_field_names(
            cx,
            Some(&raw),
            &matchers,
            &[],
            &[("group_by", group_by.clone())],
        );
        Some(Detector::Sequence(Sequence {
            after,
            matchers,
            group_by,
            within_ms,
        }))
    }
}
