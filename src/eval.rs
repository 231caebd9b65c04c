//! Scoring rules against labelled incidents (`logwarden eval`).
//!
//! A truth file names the incidents a responder wants raised; the inputs are
//! replayed through the same engine, runner and sink path as `logwarden
//! replay` ([`collect_alerts`]), and each alert is matched against the
//! incidents ([`score`]): same rule, the incident's key a subset of the
//! alert's, the same log group when the incident names one, and the alert's
//! `first_seen` within `[from, to]`. Per rule: true positives (incidents
//! matched), false positives (alerts matching no incident), false negatives
//! (incidents no alert matched), precision and recall. Several alerts on one
//! incident count once; the others are listed as duplicates.
//!
//! ```yaml
//! incidents:
//!   - rule: failed-auth-burst
//!     key: {source_ip: 203.0.113.7}   # subset of the alert's key
//!     log_group: /ec2/bastion/sshd     # optional
//!     from: 2026-11-22T10:00:00Z       # first_seen in [from, to]
//!     to: 2026-11-22T10:15:00Z
//!     note: why a responder wants it  # optional, shown with a miss
//! rules: [secret-in-logs]            # optional: also score these (every alert false)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::alert::visible::visible;
use crate::detect::{Key, key_text};
use crate::engine::{Engine, Safeguards};
use crate::replay::{ReplayError, ReplayOptions, ReplaySummary, replay_to};
use crate::rules::RuleSet;
use crate::runner::Runner;
use crate::sinks::FnSink;
use crate::state::MemoryStore;
use crate::time::{Millis, parse_rfc3339, rfc3339};

/// A truth file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct TruthError {
    /// The file, as given.
    pub path: String,
    /// 1-based line (1 when the whole file is at fault).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One labelled incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Rule id that should raise it.
    pub rule: String,
    /// Key fields the alert's key must contain (a subset).
    pub key: Key,
    /// Log group the alert must have, when named.
    pub log_group: Option<String>,
    /// Earliest `first_seen` that matches (ms).
    pub from: Millis,
    /// Latest `first_seen` that matches (ms).
    pub to: Millis,
    /// Why a responder wants it (free text, shown with a miss).
    pub note: Option<String>,
    /// Line of the truth file where it starts.
    pub line: usize,
}

/// A parsed truth file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Truth {
    /// The incidents, in file order.
    pub incidents: Vec<Incident>,
    /// Rules scored: those named by an incident or in `rules:`, in name order.
    pub rules: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTruth {
    #[serde(default)]
    incidents: Vec<RawIncident>,
    #[serde(default)]
    rules: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIncident {
    rule: String,
    #[serde(default)]
    key: BTreeMap<String, serde_yaml_ng::Value>,
    log_group: Option<String>,
    from: serde_yaml_ng::Value,
    to: serde_yaml_ng::Value,
    note: Option<String>,
}

impl Truth {
    /// Parse a truth file's text; `path` only names it in errors. Every
    /// problem found is returned, each with its line.
    pub fn parse(text: &str, path: &str) -> Result<Truth, Vec<TruthError>> {
        let err = |line: usize, message: String| TruthError {
            path: path.to_string(),
            line,
            message,
        };
        let raw: RawTruth = serde_yaml_ng::from_str(text).map_err(|e| {
            let line = e.location().map_or(1, |l| l.line());
            vec![err(line, e.to_string())]
        })?;
        let lines = item_lines(text);
        let mut truth = Truth::default();
        let mut errors = Vec::new();
        for (i, r) in raw.incidents.into_iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(1);
            match Incident::from_raw(r, line) {
                Ok(inc) => {
                    truth.rules.insert(inc.rule.clone());
                    truth.incidents.push(inc);
                }
                Err(msgs) => errors.extend(msgs.into_iter().map(|m| err(line, m))),
            }
        }
        for r in raw.rules {
            if r.is_empty() {
                errors.push(err(1, "rules: an empty rule id".to_string()));
            }
            truth.rules.insert(r);
        }
        if truth.rules.is_empty() && errors.is_empty() {
            errors.push(err(
                1,
                "no incidents and no rules: nothing to score (see `logwarden eval --help`)"
                    .to_string(),
            ));
        }
        if errors.is_empty() {
            Ok(truth)
        } else {
            Err(errors)
        }
    }

    /// The rules named that `known` (the rule set's ids) lacks, each as an
    /// error at the line of its first incident (line 1 for `rules:`): a
    /// misspelt id would otherwise score as all misses.
    pub fn unknown_rules(&self, known: &[&str], path: &str) -> Vec<TruthError> {
        self.rules
            .iter()
            .filter(|r| !known.contains(&r.as_str()))
            .map(|r| TruthError {
                path: path.to_string(),
                line: self
                    .incidents
                    .iter()
                    .find(|i| i.rule == *r)
                    .map_or(1, |i| i.line),
                message: format!("rule `{r}` is not in the rule set (see `logwarden rules list`)"),
            })
            .collect()
    }

    /// Read and parse the truth file at `path`.
    pub fn load(path: &Path) -> Result<Truth, Vec<TruthError>> {
        let shown = crate::replay::shown_path(path);
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![TruthError {
                path: shown.clone(),
                line: 1,
                message: format!("cannot read: {e}"),
            }]
        })?;
        Truth::parse(&text, &shown)
    }
}

impl Incident {
    fn from_raw(r: RawIncident, line: usize) -> Result<Incident, Vec<String>> {
        let mut errors = Vec::new();
        if r.rule.is_empty() {
            errors.push("incident: `rule` is empty".to_string());
        }
        let mut key = Key::new();
        for (k, v) in r.key {
            match scalar(&v) {
                Some(s) => {
                    key.insert(k, s);
                }
                None => errors.push(format!("key `{k}`: a value must be a string or number")),
            }
        }
        let mut time = |field: &str, v: &serde_yaml_ng::Value| match scalar(v)
            .ok_or_else(|| "not a string".to_string())
            .and_then(|s| parse_rfc3339(&s))
        {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(format!(
                    "`{field}`: an RFC 3339 time is needed (2026-11-22T10:00:00Z): {e}"
                ));
                None
            }
        };
        let from = time("from", &r.from);
        let to = time("to", &r.to);
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            errors.push("`from` is after `to`".to_string());
        }
        match (from, to) {
            (Some(from), Some(to)) if errors.is_empty() => Ok(Incident {
                rule: r.rule,
                key,
                log_group: r.log_group,
                from,
                to,
                note: r.note,
                line,
            }),
            _ => Err(errors),
        }
    }

    /// Whether `alert` is this incident.
    pub fn matches(&self, alert: &Alert, first_seen: Option<Millis>) -> bool {
        alert.rule == self.rule
            && self
                .log_group
                .as_ref()
                .is_none_or(|g| *g == alert.log_group)
            && self.key.iter().all(|(k, v)| alert.key.get(k) == Some(v))
            && first_seen.is_some_and(|t| self.from <= t && t <= self.to)
    }

    /// One line for people: rule, key, group and window.
    fn describe(&self) -> String {
        let group = self
            .log_group
            .as_ref()
            .map(|g| format!(" in {g}"))
            .unwrap_or_default();
        format!(
            "{} {{{}}}{group} from {} to {}",
            self.rule,
            key_text(&self.key),
            rfc3339(self.from),
            rfc3339(self.to)
        )
    }
}

fn scalar(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// 1-based lines where the items of the top-level `incidents:` list start:
/// the lines at the list's item indentation that begin with `- `.
fn item_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut indent: Option<usize> = None;
    for (i, l) in text.lines().enumerate() {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let ind = l.len() - trimmed.len();
        if ind == 0 && !trimmed.starts_with('-') {
            inside = trimmed.starts_with("incidents:");
            indent = None;
            continue;
        }
        if !inside || !(trimmed.starts_with("- ") || trimmed == "-") {
            continue;
        }
        match indent {
            None => {
                indent = Some(ind);
                out.push(i + 1);
            }
            Some(n) if n == ind => out.push(i + 1),
            _ => {}
        }
    }
    out
}

/// Replay `paths` as `logwarden replay` does (in-memory state, the given
/// safeguards) and return every alert raised, in order, with the summary.
pub fn collect_alerts(
    rules: Arc<RuleSet>,
    paths: &[PathBuf],
    opts: &ReplayOptions,
    safeguards: Safeguards,
) -> Result<(Vec<Alert>, ReplaySummary), ReplayError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ReplayError::Output)?;
    let mut engine =
        Engine::new(rules, MemoryStore::new(), opts.engine.clone()).with_safeguards(safeguards);
    let mut alerts = Vec::new();
    let sink = FnSink(|batch: &[Alert]| {
        alerts.extend_from_slice(batch);
        Ok(())
    });
    let mut runner = Runner::new(&mut engine, sink);
    let summary = replay_to(&mut runner, &rt, paths, opts)?;
    // A resolution closes an incident already alerted: not a second alert.
    alerts.retain(|a| !a.status.is_resolved());
    Ok((alerts, summary))
}

/// The score of one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleScore {
    /// Rule id.
    pub rule: String,
    /// Incidents matched by at least one alert.
    pub tp: usize,
    /// Alerts matching no incident.
    pub fp: usize,
    /// Incidents no alert matched.
    pub r#fn: usize,
    /// tp / (tp + fp); 1 when the rule raised no alert.
    pub precision: f64,
    /// tp / (tp + fn); 1 when no incident is labelled for the rule.
    pub recall: f64,
    /// Alerts on an incident another alert already matched.
    pub duplicates: usize,
    /// The incidents missed (not in the JSON object).
    #[serde(skip)]
    pub misses: Vec<Incident>,
    /// The false alerts (not in the JSON object).
    #[serde(skip)]
    pub false_alerts: Vec<Alert>,
    /// The duplicate alerts, with the line of the incident they repeat.
    #[serde(skip)]
    pub duplicate_alerts: Vec<(Alert, usize)>,
    /// Alerts of the rule with an incident's key and group whose
    /// `first_seen` is outside its window, by incident line (for a miss).
    #[serde(skip)]
    pub near: BTreeMap<usize, Vec<Alert>>,
}

/// The score of every rule the truth file names, in rule order, and the
/// alerts of rules it does not name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// One score per scored rule.
    pub rules: Vec<RuleScore>,
    /// Alerts of rules the truth file does not name, per rule.
    pub unscored: BTreeMap<String, usize>,
}

/// Score `alerts` against `truth`.
pub fn score(truth: &Truth, alerts: &[Alert]) -> Report {
    let mut report = Report::default();
    for a in alerts {
        if !truth.rules.contains(&a.rule) {
            *report.unscored.entry(a.rule.clone()).or_default() += 1;
        }
    }
    for rule in &truth.rules {
        let incidents: Vec<&Incident> =
            truth.incidents.iter().filter(|i| i.rule == *rule).collect();
        let mut hit = vec![false; incidents.len()];
        let mut s = RuleScore {
            rule: rule.clone(),
            tp: 0,
            fp: 0,
            r#fn: 0,
            precision: 1.0,
            recall: 1.0,
            duplicates: 0,
            misses: Vec::new(),
            false_alerts: Vec::new(),
            duplicate_alerts: Vec::new(),
            near: BTreeMap::new(),
        };
        for a in alerts.iter().filter(|a| a.rule == *rule) {
            let t = parse_rfc3339(&a.first_seen).ok();
            let matching: Vec<usize> = (0..incidents.len())
                .filter(|&i| incidents[i].matches(a, t))
                .collect();
            // A first alert on an incident counts; one on an incident already
            // matched is a duplicate (an alert spanning two incidents takes
            // the first still open).
            match matching.iter().find(|&&i| !hit[i]).or(matching.first()) {
                None => {
                    s.fp += 1;
                    s.false_alerts.push(a.clone());
                    for inc in &incidents {
                        let mut wide = (*inc).clone();
                        wide.from = Millis::MIN;
                        wide.to = Millis::MAX;
                        if wide.matches(a, Some(0)) {
                            s.near.entry(inc.line).or_default().push(a.clone());
                        }
                    }
                }
                Some(&i) if hit[i] => {
                    s.duplicates += 1;
                    s.duplicate_alerts.push((a.clone(), incidents[i].line));
                }
                Some(&i) => hit[i] = true,
            }
        }
        for (i, inc) in incidents.iter().enumerate() {
            if hit[i] {
                s.tp += 1;
            } else {
                s.r#fn += 1;
                s.misses.push((*inc).clone());
            }
        }
        if s.tp + s.fp > 0 {
            s.precision = s.tp as f64 / (s.tp + s.fp) as f64;
        }
        if s.tp + s.r#fn > 0 {
            s.recall = s.tp as f64 / (s.tp + s.r#fn) as f64;
        }
        report.rules.push(s);
    }
    report
}

/// One line naming an alert for people: rule, key, group, stream, first seen
/// and the first evidence line, each escaped (every field comes from logs).
fn describe_alert(a: &Alert) -> String {
    let stream = a
        .log_stream
        .as_ref()
        .map(|s| format!(" stream {}", visible(s, false)))
        .unwrap_or_default();
    let evidence = a
        .evidence
        .first()
        .map(|e| format!("\n      evidence: {}", visible(e, false)))
        .unwrap_or_default();
    format!(
        "{} {{{}}} in {}{stream} first_seen {}{evidence}",
        visible(&a.rule, false),
        visible(&key_text(&a.key), false),
        visible(&a.log_group, false),
        visible(&a.first_seen, false),
    )
}

impl Report {
    /// The text report: a table, then each miss, false alert and duplicate.
    /// `truth` names the truth file in the misses' locations.
    pub fn render_text(&self, truth: &str) -> String {
        let mut out = String::new();
        let width = self
            .rules
            .iter()
            .map(|r| r.rule.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "{:width$}  {:>3}  {:>3}  {:>3}  {:>9}  {:>6}  {:>4}",
            "rule", "tp", "fp", "fn", "precision", "recall", "dup"
        );
        for r in &self.rules {
            let _ = writeln!(
                out,
                "{:width$}  {:>3}  {:>3}  {:>3}  {:>9.2}  {:>6.2}  {:>4}",
                r.rule, r.tp, r.fp, r.r#fn, r.precision, r.recall, r.duplicates
            );
        }
        for r in &self.rules {
            for m in &r.misses {
                let _ = writeln!(out, "miss: {} ({truth}:{})", m.describe(), m.line);
                if let Some(n) = &m.note {
                    let _ = writeln!(out, "      note: {}", n.trim());
                }
                for a in r.near.get(&m.line).into_iter().flatten() {
                    let _ = writeln!(out, "      outside the window: {}", describe_alert(a));
                }
            }
            for a in &r.false_alerts {
                let _ = writeln!(out, "false alert: {}", describe_alert(a));
            }
            for (a, line) in &r.duplicate_alerts {
                let _ = writeln!(out, "duplicate of {truth}:{line}: {}", describe_alert(a));
            }
        }
        for (rule, n) in &self.unscored {
            let _ = writeln!(
                out,
                "not scored: {} alert(s) of {} (the truth file does not name the rule)",
                n,
                visible(rule, false)
            );
        }
        out
    }

    /// One JSON object per scored rule, one per line.
    pub fn render_json(&self) -> String {
        let mut out = String::new();
        for r in &self.rules {
            if let Ok(line) = serde_json::to_string(r) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    /// Why the bounds are not met, one line each (empty: they are): each
    /// rule under a bound, each of its misses (under `min_recall`) and false
    /// alerts (under `min_precision`).
    pub fn unmet(
        &self,
        min_precision: Option<f64>,
        min_recall: Option<f64>,
        truth: &str,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rules {
            if let Some(p) = min_precision
                && r.precision < p
            {
                out.push(format!(
                    "{}: precision {:.2} is under --min-precision {p}",
                    r.rule, r.precision
                ));
                for a in &r.false_alerts {
                    out.push(format!(
                        "  false alert: {}",
                        describe_alert(a).replace('\n', " ")
                    ));
                }
            }
            if let Some(m) = min_recall
                && r.recall < m
            {
                out.push(format!(
                    "{}: recall {:.2} is under --min-recall {m}",
                    r.rule, r.recall
                ));
                for i in &r.misses {
                    out.push(format!("  miss: {} ({truth}:{})", i.describe(), i.line));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(rule: &str, key: &[(&str, &str)], group: &str, first_seen: &str) -> Alert {
        let key: serde_json::Map<String, serde_json::Value> = key
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        serde_json::from_value(serde_json::json!({
            "id": "0", "rule": rule, "kind": "threshold", "severity": "high",
            "title": "t", "log_group": group, "key": key, "count": 1,
            "first_seen": first_seen, "last_seen": first_seen, "status": "firing",
            "evidence": [format!("evidence of {rule}")],
        }))
        .unwrap()
    }

    const TRUTH: &str = "\
# two incidents
incidents:
  - rule: failed-auth-burst
    key: {source_ip: 203.0.113.7}
    log_group: /ec2/bastion/sshd
    from: 2026-11-22T10:00:00Z
    to: 2026-11-22T10:15:00Z

  - rule: failed-auth-burst
    key: {source_ip: 198.51.100.9}
    from: 2026-11-22T11:00:00Z
    to: 2026-11-22T11:15:00Z
    note: the second attacker
rules: [secret-in-logs]
";

    #[test]
    fn a_truth_file_parses_with_the_line_of_each_incident() {
        let t = Truth::parse(TRUTH, "t.yaml").unwrap();
        assert_eq!(t.incidents.len(), 2);
        assert_eq!(t.incidents[0].line, 3);
        assert_eq!(t.incidents[1].line, 9);
        assert_eq!(
            t.incidents[0].log_group.as_deref(),
            Some("/ec2/bastion/sshd")
        );
        assert_eq!(t.incidents[1].note.as_deref(), Some("the second attacker"));
        let rules: Vec<&str> = t.rules.iter().map(String::as_str).collect();
        assert_eq!(rules, ["failed-auth-burst", "secret-in-logs"]);
    }

    #[test]
    fn rules_the_rule_set_lacks_are_named_with_their_line() {
        let t = Truth::parse(
            &TRUTH.replace("rules: [secret-in-logs]", "rules: [secret-in-log]"),
            "t.yaml",
        )
        .unwrap();
        assert!(
            t.unknown_rules(&["failed-auth-burst", "secret-in-logs"], "t.yaml")[0]
                .to_string()
                .starts_with("t.yaml:1: rule `secret-in-log` is not in the rule set")
        );
        let e = t.unknown_rules(&["secret-in-log"], "t.yaml");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 3);
    }

    #[test]
    fn bad_truth_files_are_reported_with_path_and_line() {
        let unknown = TRUTH.replace("    note:", "    nots:");
        let e = Truth::parse(&unknown, "t.yaml").unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].to_string().starts_with("t.yaml:13:"), "{}", e[0]);
        assert!(e[0].message.contains("nots"), "{}", e[0]);

        let backwards = TRUTH.replace("to: 2026-11-22T11:15:00Z", "to: 2026-11-22T10:15:00Z");
        let bad_time = backwards.replace("from: 2026-11-22T10:00:00Z", "from: yesterday");
        let e = Truth::parse(&bad_time, "t.yaml").unwrap_err();
        let shown: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown[0].starts_with("t.yaml:3: `from`"), "{shown:?}");
        assert!(
            shown[1].starts_with("t.yaml:9: `from` is after `to`"),
            "{shown:?}"
        );

        let e = Truth::parse("incidents: [", "t.yaml").unwrap_err();
        assert_eq!(e[0].path, "t.yaml");
        let e = Truth::parse("incidents: []\n", "t.yaml").unwrap_err();
        assert!(e[0].message.contains("nothing to score"), "{}", e[0]);
    }

    #[test]
    fn alerts_are_scored_per_rule_with_duplicates_counted_once() {
        let t = Truth::parse(TRUTH, "t.yaml").unwrap();
        let alerts = vec![
            // The first incident, twice: one tp and one duplicate.
            alert(
                "failed-auth-burst",
                &[("source_ip", "203.0.113.7")],
                "/ec2/bastion/sshd",
                "2026-11-22T10:01:00.000Z",
            ),
            alert(
                "failed-auth-burst",
                &[("source_ip", "203.0.113.7")],
                "/ec2/bastion/sshd",
                "2026-11-22T10:09:00.000Z",
            ),
            // The second incident's key, but an hour late: false, and near.
            alert(
                "failed-auth-burst",
                &[("source_ip", "198.51.100.9")],
                "/x",
                "2026-11-22T12:30:00.000Z",
            ),
            // The first incident's key in another group: false.
            alert(
                "failed-auth-burst",
                &[("source_ip", "203.0.113.7")],
                "/other",
                "2026-11-22T10:01:00.000Z",
            ),
            alert(
                "secret-in-logs",
                &[],
                "/aws/lambda/a",
                "2026-11-22T10:01:00.000Z",
            ),
            alert(
                "missing-end",
                &[],
                "/aws/lambda/a",
                "2026-11-22T10:01:00.000Z",
            ),
        ];
        let r = score(&t, &alerts);
        let auth = &r.rules[0];
        assert_eq!((auth.tp, auth.fp, auth.r#fn, auth.duplicates), (1, 2, 1, 1));
        assert!((auth.precision - 1.0 / 3.0).abs() < 1e-9);
        assert!((auth.recall - 0.5).abs() < 1e-9);
        assert_eq!(auth.misses[0].line, 9);
        assert_eq!(auth.near[&9].len(), 1);
        let secret = &r.rules[1];
        assert_eq!((secret.tp, secret.fp, secret.r#fn), (0, 1, 0));
        assert_eq!((secret.precision, secret.recall), (0.0, 1.0));
        assert_eq!(r.unscored["missing-end"], 1);

        let text = r.render_text("t.yaml");
        assert!(text.contains("miss: failed-auth-burst {source_ip=198.51.100.9} from 2026-11-22T11:00:00.000Z to 2026-11-22T11:15:00.000Z (t.yaml:9)"), "{text}");
        assert!(text.contains("note: the second attacker"), "{text}");
        assert!(
            text.contains("outside the window: failed-auth-burst {source_ip=198.51.100.9} in /x"),
            "{text}"
        );
        assert!(
            text.contains("false alert: failed-auth-burst {source_ip=203.0.113.7} in /other"),
            "{text}"
        );
        assert!(
            text.contains("evidence: evidence of secret-in-logs"),
            "{text}"
        );
        assert!(
            text.contains("duplicate of t.yaml:3: failed-auth-burst"),
            "{text}"
        );
        assert!(
            text.contains("not scored: 1 alert(s) of missing-end"),
            "{text}"
        );

        let json: Vec<serde_json::Value> = r
            .render_json()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(json.len(), 2);
        assert_eq!(json[0]["rule"], "failed-auth-burst");
        assert_eq!(json[0]["tp"], 1);
        assert_eq!(json[0]["fp"], 2);
        assert_eq!(json[0]["fn"], 1);
        assert_eq!(json[0]["recall"], 0.5);
    }

    #[test]
    fn bounds_name_each_miss_and_false_alert() {
        let t = Truth::parse(TRUTH, "t.yaml").unwrap();
        let alerts = vec![alert(
            "failed-auth-burst",
            &[("source_ip", "203.0.113.7")],
            "/ec2/bastion/sshd",
            "2026-11-22T10:01:00.000Z",
        )];
        let r = score(&t, &alerts);
        assert!(r.unmet(Some(1.0), None, "t.yaml").is_empty());
        let unmet = r.unmet(Some(1.0), Some(0.9), "t.yaml");
        assert_eq!(unmet.len(), 2, "{unmet:?}");
        assert!(unmet[0].contains("recall 0.50 is under --min-recall 0.9"));
        assert!(unmet[1].contains("miss: failed-auth-burst {source_ip=198.51.100.9}"));
        assert!(unmet[1].ends_with("(t.yaml:9)"));
    }

    #[test]
    fn hostile_alert_fields_are_escaped_in_the_text_report() {
        let t = Truth::parse("rules: [x]\n", "t.yaml").unwrap();
        let mut a = alert(
            "x",
            &[("k", "v\nfalse alert: forged")],
            "/g\x1b[2J",
            "2026-11-22T10:01:00Z",
        );
        a.evidence = vec!["line\rmore".to_string()];
        let text = score(&t, &[a]).render_text("t.yaml");
        let forged = text
            .lines()
            .filter(|l| l.starts_with("false alert:"))
            .count();
        assert_eq!(forged, 1, "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text}");
    }
}
