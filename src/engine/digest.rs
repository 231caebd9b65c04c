//! The alert-storm limit: the alerts of one batch past the limit folded into
//! one digest alert.

use std::collections::{BTreeMap, HashMap};

use super::{DIGEST_RULE, Engine};
use crate::alert::redact::RedactOptions;
use crate::alert::{self, Alert, Links};
use crate::detect::Key;
use crate::state::StateStore;

impl<S: StateStore> Engine<S> {
    /// The alert-storm limit: past [`Safeguards::max_alerts_per_batch`], the
    /// rest of a batch's alerts are folded into one digest alert. Which ones
    /// are kept does not depend on the order they were found in (highest
    /// severity, then earliest, then id), so a redelivered batch, whose
    /// alerts come back from the outbox in another order, folds the same
    /// ones into a digest with the same id. Folded alerts stay pending in
    /// their incidents until the digest is confirmed.
    ///
    /// Resolutions are neither folded nor counted against the limit: each
    /// closes an incident whose firing went out on its own (one folded into
    /// a digest resolves without a message), so there are never more of
    /// them than firings delivered, and a sink that opened an incident
    /// (PagerDuty, a Slack thread) needs its own to close it.
    pub(super) fn fold_storm(
        &mut self,
        alerts: Vec<Alert>,
        unconfirmed: Vec<(String, String)>,
    ) -> (Vec<Alert>, usize) {
        let mut by_id: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (id, ikey) in unconfirmed {
            by_id.entry(id.clone()).or_default().push((ikey, id));
        }
        let (resolutions, alerts): (Vec<Alert>, Vec<Alert>) =
            alerts.into_iter().partition(|a| a.status.is_resolved());
        let max = self.safeguards.max_alerts_per_batch;
        if max == 0 || alerts.len() <= max + 1 {
            // One more than the limit is not folded: a digest of one alert
            // would say less than the alert.
            self.unconfirmed.extend(by_id);
            let mut out = resolutions;
            out.extend(alerts);
            return (out, 0);
        }
        let mut order: Vec<usize> = (0..alerts.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&alerts[a], &alerts[b]);
            severity_rank(&b.severity)
                .cmp(&severity_rank(&a.severity))
                .then_with(|| a.first_seen.cmp(&b.first_seen))
                .then_with(|| a.id.cmp(&b.id))
        });
        let mut keep = vec![false; alerts.len()];
        for &i in &order[..max] {
            keep[i] = true;
        }
        let mut kept = Vec::with_capacity(max + 1);
        let mut folded = Vec::new();
        for (i, a) in alerts.into_iter().enumerate() {
            if keep[i] {
                kept.push(a)
            } else {
                folded.push(a)
            }
        }
        let total = kept.len() + folded.len();
        folded.sort_by(|a, b| a.id.cmp(&b.id));
        let digest = digest(&folded, total, max, &self.config.region);
        let mut pending = Vec::new();
        for a in &folded {
            pending.extend(by_id.remove(&a.id).unwrap_or_default());
        }
        self.unconfirmed.extend(by_id);
        self.unconfirmed.insert(digest.id.clone(), pending);
        tracing::warn!(
            alerts = total,
            folded = folded.len(),
            limit = max,
            digest = %digest.id,
            "Alert storm: folded the alerts past the per-batch limit into one digest."
        );
        let n = folded.len();
        kept.push(digest);
        let mut out = resolutions;
        out.extend(kept);
        (out, n)
    }
}

fn severity_rank(s: &crate::alert::AlertSeverity) -> u8 {
    s.rank()
}

/// Longest item naming one folded alert in a digest's evidence.
const DIGEST_ITEM_CHARS: usize = 160;

/// The digest of `folded` (sorted by id): severity the highest folded,
/// count the number folded, the folded rules in the summary and each folded
/// alert (rule, key or function, id) in the evidence. The id hashes the
/// folded ids, so the same storm gives the same digest.
fn digest(folded: &[Alert], total: usize, max: usize, region_home: &str) -> Alert {
    let common = |f: &dyn Fn(&Alert) -> Option<&str>| -> Option<String> {
        let first = f(folded.first()?)?;
        folded
            .iter()
            .all(|a| f(a) == Some(first))
            .then(|| first.to_string())
    };
    let log_group = common(&|a| Some(a.log_group.as_str()));
    let severity = folded
        .iter()
        .map(|a| &a.severity)
        .max_by_key(|s| severity_rank(s))
        .cloned()
        .unwrap_or(crate::alert::AlertSeverity::Low);
    let (first_seen, last_seen) = span(folded);
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for a in folded {
        *per_rule.entry(a.rule.as_str()).or_default() += 1;
    }
    let place = log_group.as_deref().unwrap_or("several log groups");
    let summary = summary(folded.len(), &per_rule, total, max, place);
    // The folded alerts' log group is redacted already; the link is checked
    // all the same, as every link is.
    let no_emails = RedactOptions::default();
    let insights = log_group.as_deref().and_then(|g| {
        let start = crate::time::parse_rfc3339(&first_seen).ok()?;
        let end = crate::time::parse_rfc3339(&last_seen).ok()?;
        let region = common(&|a| a.region.as_deref());
        let region = region.as_deref().unwrap_or(region_home);
        alert::links::group_insights(region, g, (start, end), &no_emails)
    });
    let mut out = Alert {
        id: digest_id(folded),
        rule: DIGEST_RULE.to_string(),
        kind: crate::alert::AlertKind::Digest,
        severity,
        title: alert::truncate_chars(
            &format!(
                "Alert storm: {} more alerts folded into one digest in {place}",
                folded.len()
            ),
            99,
        ),
        summary,
        account: common(&|a| a.account.as_deref()),
        log_group: log_group.clone().unwrap_or_else(|| "(several)".to_string()),
        log_stream: common(&|a| a.log_stream.as_deref()),
        function: common(&|a| a.function.as_deref()),
        key: Key::new(),
        request_ids: request_ids(folded),
        count: folded.len() as u64,
        first_seen,
        last_seen,
        metrics: BTreeMap::from([
            ("alerts_in_batch".to_string(), total as f64),
            ("alerts_folded".to_string(), folded.len() as f64),
            ("max_alerts_per_batch".to_string(), max as f64),
        ]),
        evidence: pack_evidence(&items(folded, &per_rule)),
        links: Links {
            log_stream: None,
            insights,
        },
        status: crate::alert::AlertStatus::Firing,
        resolved_at: None,
        region: common(&|a| a.region.as_deref()),
        account_name: common(&|a| a.account_name.as_deref()),
        team: common(&|a| a.team.as_deref()),
        shadow: false,
    };
    alert::redact::links(&mut out, &no_emails);
    out
}

/// The earliest first and the latest last time of the folded alerts.
fn span(folded: &[Alert]) -> (String, String) {
    let first_seen = folded
        .iter()
        .map(|a| a.first_seen.as_str())
        .min()
        .unwrap_or_default()
        .to_string();
    let last_seen = folded
        .iter()
        .map(|a| a.last_seen.as_str())
        .max()
        .unwrap_or_default()
        .to_string();
    (first_seen, last_seen)
}

/// How many alerts the batch raised, how many are folded, of which rules.
fn summary(
    folded: usize,
    per_rule: &BTreeMap<&str, usize>,
    total: usize,
    max: usize,
    place: &str,
) -> String {
    let rules: Vec<String> = per_rule.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
    format!(
        "One batch raised {total} alerts in {place}; past the limit of {max} alerts per batch, \
         {folded} more are folded into this digest: {}. Each is recorded as usual (it realerts \
         after its rule's realert period); find why so many fired at once.",
        rules.join(", ")
    )
}

/// The digest's id: a hash of the folded alerts' ids.
fn digest_id(folded: &[Alert]) -> String {
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, DIGEST_RULE.as_bytes());
    for a in folded {
        sha2::Digest::update(&mut h, [0u8]);
        sha2::Digest::update(&mut h, a.id.as_bytes());
    }
    sha2::Digest::finalize(h)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every folded alert by rule and key (or function), sorted: the first of
/// each rule as `rule (n): key`, the others as `key`.
fn items(folded: &[Alert], per_rule: &BTreeMap<&str, usize>) -> Vec<String> {
    let mut listed: Vec<(&str, String)> = folded
        .iter()
        .map(|a| {
            let who = if a.key.is_empty() {
                a.function.clone().unwrap_or_else(|| a.log_group.clone())
            } else {
                a.key.values().cloned().collect::<Vec<_>>().join(",")
            };
            (a.rule.as_str(), who)
        })
        .collect();
    listed.sort();
    listed
        .iter()
        .enumerate()
        .map(|(i, (rule, who))| {
            let item = if i == 0 || listed[i - 1].0 != *rule {
                format!(
                    "{rule} ({}): {who}",
                    per_rule.get(rule).copied().unwrap_or(0)
                )
            } else {
                who.clone()
            };
            alert::truncate_chars(&item, DIGEST_ITEM_CHARS)
        })
        .collect()
}

/// Evidence: the items (`rule (n): key; key; …`) packed into the contract's
/// five lines of 512 characters; what does not fit is counted in a
/// `+N more` at the end.
fn pack_evidence(items: &[String]) -> Vec<String> {
    const MORE_ROOM: usize = 16;
    let mut evidence: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut shown = 0;
    for item in items {
        let last = evidence.len() + 1 == alert::MAX_EVIDENCE;
        let room = alert::MAX_EVIDENCE_CHARS - if last { MORE_ROOM } else { 0 };
        let sep = if line.is_empty() { 0 } else { 2 };
        if line.chars().count() + sep + item.chars().count() > room {
            if last {
                break;
            }
            evidence.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(item);
        shown += 1;
    }
    if shown < items.len() {
        line.push_str(&format!("; +{} more", items.len() - shown));
    }
    if !line.is_empty() {
        evidence.push(line);
    }
    evidence
}

/// The folded alerts' request ids, each once, up to the alert's limit.
fn request_ids(folded: &[Alert]) -> Vec<String> {
    let mut request_ids: Vec<String> = Vec::new();
    for r in folded.iter().flat_map(|a| &a.request_ids) {
        if request_ids.len() < alert::MAX_REQUEST_IDS && !request_ids.contains(r) {
            request_ids.push(r.clone());
        }
    }
    request_ids
}
