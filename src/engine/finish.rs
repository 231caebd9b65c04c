//! Finishing: a draft becomes the alert every sink gets, redacted, with its
//! title, summary and console links.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::Engine;
use crate::alert::redact::RedactOptions;
use crate::alert::{self, Alert, Links};
use crate::detect::{Finding, Key, Located, Summary, function_name};
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

    /// Fold a finding of the step that opened the incident into the draft, which now
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
        let (account, region) = self.whose(&mut d, account);
        d.redact_names(opts);
        let r: &Rule = &self.rules.rules[d.rule];
        let function = function_name(&d.log_group).map(str::to_string);
        let place = function.clone().unwrap_or_else(|| d.log_group.clone());
        let title = title(r, &d, &place);
        let links = self.links(r, &d, &region);
        let links = match &self.config.access_portal {
            Some(portal) => portal.links(account.as_deref(), links),
            None => links,
        };
        let named = account.as_deref().and_then(|a| self.config.accounts.get(a));
        let mut out = Alert {
            summary: summary(r, &d, &place),
            id: d.id,
            rule: r.id.clone(),
            kind: crate::alert::AlertKind::Rule(r.kind),
            severity: r.severity.into(),
            title: alert::truncate_chars(&title, 99),
            account_name: named.map(|n| n.name.clone()),
            team: named.and_then(|n| n.team.clone()),
            account,
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
            status: crate::alert::AlertStatus::Firing,
            resolved_at: None,
            region: Some(region),
            shadow: r.mode == crate::rules::Mode::Shadow,
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

    /// The account and region of a draft, its log group made the bare name
    /// again: a place outside home names both ([`Located`]); home is the
    /// batch's account (none for a plain log) in the home region, and in a
    /// sweep, which has no batch, the home account.
    fn whose(&self, d: &mut Draft, batch_account: Option<&str>) -> (Option<String>, String) {
        let located = Located::parse(&d.log_group);
        let (account, region, group) = match located.region {
            Some(region) => (
                located.account.map(|a| a.into_owned()),
                region.to_string(),
                located.group.to_string(),
            ),
            None => (
                match batch_account {
                    Some(a) => Some(a).filter(|a| !a.is_empty()).map(str::to_string),
                    None => self.home_account.clone(),
                },
                self.home_region
                    .clone()
                    .unwrap_or_else(|| self.config.region.clone()),
                std::mem::take(&mut d.log_group),
            ),
        };
        d.log_group = group;
        (account, region)
    }

    /// The incident's console links. A redacted value finds nothing in Logs
    /// Insights, nor does the kind of a secret: filter on a request id instead.
    fn links(&self, r: &Rule, d: &Draft, region: &str) -> Links {
        let secret_kind = r.detector.secrets().is_some();
        let unredacted = |v: &&String| !v.contains("[REDACTED:");
        let needle = d
            .key
            .values()
            .next()
            .filter(|v| unredacted(v) && !secret_kind)
            .or_else(|| d.request_ids.iter().find(unredacted))
            .cloned();
        alert::links::incident(
            region,
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
    let what = r.detector.what(&Summary {
        count: d.count,
        key: &d.key,
        log_group: &d.log_group,
        metrics: &d.metrics,
        place,
        span: &span,
    });
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
