//! Finishing: a draft becomes the alert every sink gets, redacted, with its
//! title, summary and console links.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::Engine;
use crate::alert::redact::RedactOptions;
use crate::alert::{self, Alert, Links};
use crate::detect::{Detector, Finding, Key, function_name};
use crate::rules::Rule;
use crate::state::StateStore;

/// An alert being assembled during one batch.
pub(super) struct Draft {
    pub(super) rule: usize,
    pub(super) log_group: String,
    pub(super) key: Key,
    pub(super) id: String,
    pub(super) first_seen: i64,
    pub(super) last_seen: i64,
    pub(super) count: u64,
    pub(super) log_stream: String,
    pub(super) request_ids: Vec<String>,
    pub(super) evidence: Vec<String>,
    pub(super) metrics: BTreeMap<String, f64>,
}

impl Draft {
    /// The draft of the alert a finding opens, as incident `id`.
    pub(super) fn new(rule: usize, group: &str, id: String, f: Finding) -> Draft {
        let mut request_ids = f.request_ids;
        request_ids.dedup();
        request_ids.truncate(alert::MAX_REQUEST_IDS);
        let mut evidence = f.evidence;
        evidence.truncate(alert::MAX_EVIDENCE);
        Draft {
            rule,
            log_group: group.to_string(),
            key: f.key,
            id,
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            count: f.count,
            log_stream: f.log_stream,
            request_ids,
            evidence,
            metrics: f.metrics,
        }
    }

    /// Redact the key's values, the names and the request ids in place.
    fn redact_names(&mut self, opts: &RedactOptions) {
        for v in self
            .key
            .values_mut()
            .chain([&mut self.log_group, &mut self.log_stream])
            .chain(self.request_ids.iter_mut())
        {
            if let Cow::Owned(red) = alert::redact::redact_with(v, opts) {
                *v = red;
            }
        }
    }

    /// Fold a later finding of the same incident into the draft, which now
    /// stands for `count` events: its span widens, its request ids and
    /// evidence grow up to the alert's limits.
    pub(super) fn fold(&mut self, count: u64, f: Finding) {
        self.count = count;
        self.first_seen = self.first_seen.min(f.first_seen);
        self.last_seen = self.last_seen.max(f.last_seen);
        for id in f.request_ids {
            if self.request_ids.len() < alert::MAX_REQUEST_IDS && !self.request_ids.contains(&id) {
                self.request_ids.push(id);
            }
        }
        for e in f.evidence {
            if self.evidence.len() < alert::MAX_EVIDENCE {
                self.evidence.push(e);
            }
        }
    }
}

impl<S: StateStore> Engine<S> {
    /// The alert of a draft, redacted: this is the one place an alert is
    /// finished, so every sink (and the outbox in the state store) gets the
    /// redacted alert. The id was computed from the raw key when the
    /// incident opened, so it stays stable whatever redaction does.
    ///
    /// The names and ids are redacted first, so that everything derived from
    /// them is too: the console links encode the characters around a secret
    /// (`/`, `=`, spaces), and redacting a finished link would miss it.
    pub(super) fn finish(&self, mut d: Draft, account: Option<&str>) -> Alert {
        let opts = &self.safeguards.redact;
        d.redact_names(opts);
        let r: &Rule = &self.rules.rules[d.rule];
        let function = function_name(&d.log_group).map(str::to_string);
        let place = function.clone().unwrap_or_else(|| d.log_group.clone());
        let title = title(r, &d, &place);
        let links = self.links(r, &d);
        let mut out = Alert {
            summary: summary(r, &d, &place),
            id: d.id,
            rule: r.id.clone(),
            kind: crate::alert::AlertKind::Rule(r.kind),
            severity: r.severity.into(),
            title: alert::truncate_chars(&title, 99),
            account: account.filter(|a| !a.is_empty()).map(str::to_string),
            log_group: d.log_group,
            log_stream: Some(d.log_stream),
            function,
            key: d.key,
            request_ids: d.request_ids,
            count: d.count,
            first_seen: crate::time::rfc3339(d.first_seen),
            last_seen: crate::time::rfc3339(d.last_seen),
            metrics: d.metrics,
            evidence: d
                .evidence
                .iter()
                .map(|e| alert::evidence_line_with(e, opts))
                .collect(),
            links,
        };
        alert::redact::alert(&mut out, opts);
        for e in &mut out.evidence {
            if e.chars().count() > alert::MAX_EVIDENCE_CHARS {
                *e = alert::truncate_chars(e, alert::MAX_EVIDENCE_CHARS);
            }
        }
        out.title = alert::truncate_chars(&out.title, 99);
        out
    }

    /// The incident's console links. A redacted value finds nothing in Logs
    /// Insights, nor does the kind of a secret: filter on a request id instead.
    fn links(&self, r: &Rule, d: &Draft) -> Links {
        let secret_kind = matches!(&r.detector, Detector::Pattern(p) if p.secrets.is_some());
        let unredacted = |v: &&String| !v.contains("[REDACTED:");
        let needle = d
            .key
            .values()
            .next()
            .filter(|v| unredacted(v) && !secret_kind)
            .or_else(|| d.request_ids.iter().find(unredacted))
            .cloned();
        alert::links::incident(
            &self.config.region,
            &d.log_group,
            &d.log_stream,
            needle.as_deref(),
            (d.first_seen, d.last_seen),
            &self.safeguards.redact,
        )
    }
}

/// The rule's title, the key's values and where.
fn title(r: &Rule, d: &Draft, place: &str) -> String {
    let who: Vec<&str> = d.key.values().map(String::as_str).collect();
    if who.is_empty() {
        format!("{} in {place}", r.title)
    } else {
        format!("{} ({}) in {place}", r.title, who.join(", "))
    }
}

/// Two to four sentences: what happened, how much, and what the rule says to do.
fn summary(r: &Rule, d: &Draft, place: &str) -> String {
    let span = if d.first_seen == d.last_seen {
        format!("at {}", crate::time::rfc3339(d.first_seen))
    } else {
        format!(
            "between {} and {}",
            crate::time::rfc3339(d.first_seen),
            crate::time::rfc3339(d.last_seen)
        )
    };
    let what = what(r, d, place, &span);
    let advice: String = r
        .description
        .split_inclusive(". ")
        .take(2)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if advice.is_empty() {
        what
    } else {
        format!("{what} {advice}")
    }
}

/// What happened and how much, in the words of the rule's kind.
fn what(r: &Rule, d: &Draft, place: &str, span: &str) -> String {
    let key: Vec<String> = d.key.iter().map(|(k, v)| format!("{k} {v}")).collect();
    match &r.detector {
        Detector::Threshold(t) => format!(
            "{} matching events from {} in {} {span} (threshold {} within {} s).",
            d.count,
            key.join(", "),
            d.log_group,
            t.threshold,
            t.window_ms / 1_000
        ),
        Detector::Distinct(x) => format!(
            "{} distinct {} values in {} matching events from {} in {} {span} (threshold {} within {} s).",
            d.metrics
                .get(&format!("distinct_{}", x.field))
                .copied()
                .unwrap_or(0.0),
            x.field,
            d.count,
            key.join(", "),
            d.log_group,
            x.threshold,
            x.window_ms / 1_000
        ),
        Detector::Pattern(_) if key.is_empty() => {
            format!("{} matching event(s) in {} {span}.", d.count, d.log_group)
        }
        Detector::Pattern(_) => format!(
            "{} matching event(s) with {} in {} {span}.",
            d.count,
            key.join(", "),
            d.log_group
        ),
        Detector::Failure(_) => format!("{} failed invocation(s) of {place} {span}.", d.count),
        Detector::Lifecycle(_) => format!(
            "{} invocation(s) of {place} logged START but no END or REPORT (first {span}).",
            d.count
        ),
        Detector::Baseline(_) => baseline_what(d, place, span),
        Detector::Rate(_) => rate_what(d, place, span),
        Detector::Leak(_) => leak_what(d, place, span),
    }
}

/// A baseline's: how far the duration or memory is from the typical.
fn baseline_what(d: &Draft, place: &str, span: &str) -> String {
    let m = &d.metrics;
    match (
        m.get("duration_ms"),
        m.get("baseline_ms"),
        m.get("max_memory_used_mb"),
    ) {
        (Some(x), Some(b), _) if *b > 0.0 => format!(
            "{place} ran {x:.0} ms against a typical {b:.0} ms ({:.1}×), {} time(s) {span}.",
            x / b,
            d.count
        ),
        (Some(x), _, _) => format!(
            "{place} ran {x:.0} ms, close to its timeout, {} time(s) {span}.",
            d.count
        ),
        (_, _, Some(used)) => format!(
            "{place} used {used:.0} MB of {:.0} MB, {} time(s) {span}.",
            m.get("memory_size_mb").copied().unwrap_or(0.0),
            d.count
        ),
        _ => format!("{} anomalous invocation(s) of {place} {span}.", d.count),
    }
}

/// A rate's: invocations a minute against the typical, and what they cost.
fn rate_what(d: &Draft, place: &str, span: &str) -> String {
    let m = &d.metrics;
    let rate = m.get("rate_per_min").copied().unwrap_or(0.0);
    let base = m.get("baseline_per_min").copied().unwrap_or(0.0);
    let cost = m
        .get("projected_extra_cost_per_hour_usd")
        .copied()
        .unwrap_or(0.0);
    format!(
        "{place} was invoked {rate:.0} times a minute against a typical {base:.1} ({} invocation(s) {span}); at this rate it costs about ${cost:.2} more per hour.",
        d.count
    )
}

/// A memory trend's: how fast memory rises and when it runs out.
fn leak_what(d: &Draft, place: &str, span: &str) -> String {
    let m = &d.metrics;
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
    format!(
        "Memory of one {place} execution environment rose {:.1} MB per invocation to {:.0} MB of {:.0} MB; at this pace it runs out of memory in about {:.0} invocation(s) ({} report(s) {span}).",
        get("slope_mb_per_invocation"),
        get("current_mb"),
        get("memory_size_mb"),
        get("invocations_to_limit"),
        d.count
    )
}
