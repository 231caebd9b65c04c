//! Alerts: the contract of the design (the SNS `default` body, the CLI's JSON
//! line, the notifier's input), their fingerprints, links and renderings.

pub mod accounts;
pub mod email;
pub mod links;
pub mod redact;
pub mod text;
pub mod visible;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::detect::{Key, Kind};

/// Most evidence lines an alert carries.
pub const MAX_EVIDENCE: usize = 5;
/// Longest evidence line, in characters.
pub const MAX_EVIDENCE_CHARS: usize = 512;
/// Most request ids an alert lists.
pub const MAX_REQUEST_IDS: usize = 20;

/// Console links for the 4th W: where to look.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Links {
    /// The log stream in the CloudWatch console, around the incident.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_stream: Option<String>,
    /// A Logs Insights query over the incident's time range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insights: Option<String>,
}

/// How urgent an alert is. Alerts may come from outside logwarden (the
/// notifier's input): a value that is none of the four is kept as written
/// and ranks with `low`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AlertSeverity {
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `critical`.
    Critical,
    /// Anything else, as written.
    Other(String),
}

impl AlertSeverity {
    /// The contract's spelling (or the text as written).
    pub fn as_str(&self) -> &str {
        match self {
            AlertSeverity::Low => "low",
            AlertSeverity::Medium => "medium",
            AlertSeverity::High => "high",
            AlertSeverity::Critical => "critical",
            AlertSeverity::Other(s) => s,
        }
    }

    /// Urgency: critical 3, high 2, medium 1, low and anything else 0.
    pub fn rank(&self) -> u8 {
        match self {
            AlertSeverity::Critical => 3,
            AlertSeverity::High => 2,
            AlertSeverity::Medium => 1,
            AlertSeverity::Low | AlertSeverity::Other(_) => 0,
        }
    }

    /// The text of a value from outside, to make visible in place.
    pub(crate) fn other_mut(&mut self) -> Option<&mut String> {
        match self {
            AlertSeverity::Other(s) => Some(s),
            _ => None,
        }
    }
}

impl PartialOrd for AlertSeverity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// By [`AlertSeverity::rank`], then by text (so that it agrees with `Eq`).
impl Ord for AlertSeverity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.rank(), self.as_str()).cmp(&(other.rank(), other.as_str()))
    }
}

impl From<&str> for AlertSeverity {
    fn from(s: &str) -> AlertSeverity {
        match s {
            "low" => AlertSeverity::Low,
            "medium" => AlertSeverity::Medium,
            "high" => AlertSeverity::High,
            "critical" => AlertSeverity::Critical,
            other => AlertSeverity::Other(other.to_string()),
        }
    }
}

/// What raised an alert: a rule of some kind, the storm digest, or (from
/// outside logwarden) anything else, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A rule's detector kind.
    Rule(Kind),
    /// The digest that folds an alert storm.
    Digest,
    /// Anything else, as written.
    Other(String),
}

impl AlertKind {
    /// The contract's spelling (or the text as written).
    pub fn as_str(&self) -> &str {
        match self {
            AlertKind::Rule(k) => k.as_str(),
            AlertKind::Digest => "digest",
            AlertKind::Other(s) => s,
        }
    }

    /// The text of a value from outside, to make visible in place.
    pub(crate) fn other_mut(&mut self) -> Option<&mut String> {
        match self {
            AlertKind::Other(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for AlertKind {
    fn from(s: &str) -> AlertKind {
        if s == "digest" {
            return AlertKind::Digest;
        }
        match Kind::ALL.into_iter().find(|k| k.as_str() == s) {
            Some(k) => AlertKind::Rule(k),
            None => AlertKind::Other(s.to_string()),
        }
    }
}

/// Where an incident is in its life: `firing` when it opens (and on each
/// realert), `resolved` once its condition has stayed clear. Alerts may come
/// from outside logwarden (the notifier's input): an alert without a status
/// is firing, and a value that is neither is kept as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum AlertStatus {
    /// `firing`.
    #[default]
    Firing,
    /// `resolved`.
    Resolved,
    /// Anything else, as written.
    Other(String),
}

impl AlertStatus {
    /// The contract's spelling (or the text as written).
    pub fn as_str(&self) -> &str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Other(s) => s,
        }
    }

    /// Whether this is a resolution.
    pub fn is_resolved(&self) -> bool {
        *self == AlertStatus::Resolved
    }

    /// The text of a value from outside, to make visible in place.
    pub(crate) fn other_mut(&mut self) -> Option<&mut String> {
        match self {
            AlertStatus::Other(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for AlertStatus {
    fn from(s: &str) -> AlertStatus {
        match s {
            "firing" => AlertStatus::Firing,
            "resolved" => AlertStatus::Resolved,
            other => AlertStatus::Other(other.to_string()),
        }
    }
}

/// Strings at the edges: these enums are written and read as their text.
macro_rules! text_enum {
    ($t:ty) => {
        impl From<String> for $t {
            fn from(s: String) -> $t {
                <$t>::from(s.as_str())
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                String::deserialize(d).map(<$t>::from)
            }
        }
    };
}

text_enum!(AlertSeverity);
text_enum!(AlertKind);
text_enum!(AlertStatus);

/// One alert, exactly as the design's contract spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable fingerprint: same incident ⇒ same id, across retries and containers.
    pub id: String,
    /// Rule id.
    pub rule: String,
    /// Detector kind (or `digest`).
    pub kind: AlertKind,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: AlertSeverity,
    /// One line, under 100 characters.
    pub title: String,
    /// Two to four sentences a person can act on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// AWS account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Log group.
    pub log_group: String,
    /// Log stream of the event that raised it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_stream: Option<String>,
    /// Lambda function name, for `/aws/lambda/…` groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// What identifies the incident (`{}` for per-function rules).
    pub key: Key,
    /// Request ids involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
    /// Events or invocations counted.
    pub count: u64,
    /// RFC 3339 time of the first event.
    pub first_seen: String,
    /// RFC 3339 time of the last event.
    pub last_seen: String,
    /// Numbers that explain it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// At most five sample lines, each at most 512 characters, secrets redacted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// Console links.
    #[serde(default, skip_serializing_if = "links_empty")]
    pub links: Links,
    /// `firing` or `resolved` (always written; read as `firing` when absent).
    #[serde(default)]
    pub status: AlertStatus,
    /// RFC 3339 event time the incident resolved (resolutions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// AWS region of the log group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The account's name, when an accounts map names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// The team that owns the account, when an accounts map names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Raised by a shadow rule (`mode: shadow`): shown, never delivered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

impl Alert {
    /// The account as people know it: `payments-prod (123456789012)` when
    /// the accounts map names it, else the id; `None` when unknown.
    pub fn account_label(&self) -> Option<String> {
        let id = self.account.as_deref().filter(|a| !a.is_empty());
        match (self.account_name.as_deref().filter(|n| !n.is_empty()), id) {
            (Some(name), Some(id)) => Some(format!("{name} ({id})")),
            (Some(name), None) => Some(name.to_string()),
            (None, id) => id.map(str::to_string),
        }
    }
}

fn links_empty(l: &Links) -> bool {
    l.log_stream.is_none() && l.insights.is_none()
}

/// The fingerprint: hex of SHA-256 over rule, log group, canonical key and the
/// event time the incident started. Event time, not the clock, so a retried
/// batch or another container computes the same id.
pub fn fingerprint(rule: &str, log_group: &str, key: &Key, first_seen_ms: i64) -> String {
    let mut h = Sha256::new();
    for part in [
        rule,
        log_group,
        &crate::detect::key_text(key),
        &first_seen_ms.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An evidence line as alerts carry it: one trailing newline dropped,
/// secrets redacted, at most [`MAX_EVIDENCE_CHARS`] characters.
pub fn evidence_line(raw: &str) -> String {
    evidence_line_with(raw, &redact::RedactOptions::default())
}

/// [`evidence_line`], redacting with `opts`. Redaction runs on the whole
/// line before the cut, so a secret that straddles the cap is still found.
pub fn evidence_line_with(raw: &str, opts: &redact::RedactOptions) -> String {
    let line = raw.trim_end_matches(['\n', '\r']);
    let red = redact::redact_with(line, opts);
    truncate_chars(&red, MAX_EVIDENCE_CHARS)
}

/// At most `max` characters, the last one `…` when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_distinguishes_incidents() {
        let k = Key::from([("source_ip".to_string(), "203.0.113.7".to_string())]);
        let a = fingerprint("failed-auth-burst", "/aws/lambda/x", &k, 1);
        assert_eq!(a.len(), 32);
        assert_eq!(a, fingerprint("failed-auth-burst", "/aws/lambda/x", &k, 1));
        assert_ne!(a, fingerprint("failed-auth-burst", "/aws/lambda/x", &k, 2));
        assert_ne!(a, fingerprint("failed-auth-burst", "/aws/lambda/y", &k, 1));
        // Pinned: ids are stored and compared across versions.
        assert_eq!(
            fingerprint("r", "g", &Key::new(), 0),
            "ddc30fe57a96e81ac09c4aa6627aa54d"
        );
    }

    #[test]
    fn evidence_is_trimmed_redacted_and_capped() {
        assert_eq!(evidence_line("hello\n"), "hello");
        let long = "x".repeat(2_000);
        let e = evidence_line(&long);
        assert_eq!(e.chars().count(), MAX_EVIDENCE_CHARS);
        assert!(e.ends_with('…'));
        assert!(!evidence_line("key AKIAIOSFODNN7EXAMPLE").contains("AKIAIOSFODNN7EXAMPLE"));
    }

    #[test]
    fn optional_fields_are_absent_and_required_present() {
        let a = Alert {
            id: "i".into(),
            rule: "r".into(),
            kind: "failure".into(),
            severity: "high".into(),
            title: "t".into(),
            summary: String::new(),
            account: None,
            log_group: "g".into(),
            log_stream: None,
            function: None,
            key: Key::new(),
            request_ids: vec![],
            count: 1,
            first_seen: "2026-11-22T10:00:00.000Z".into(),
            last_seen: "2026-11-22T10:00:00.000Z".into(),
            metrics: BTreeMap::new(),
            evidence: vec![],
            links: Links::default(),
            status: AlertStatus::Firing,
            resolved_at: None,
            region: None,
            account_name: None,
            team: None,
            shadow: false,
        };
        let v: serde_json::Value = serde_json::to_value(&a).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "count",
                "first_seen",
                "id",
                "key",
                "kind",
                "last_seen",
                "log_group",
                "rule",
                "severity",
                "status",
                "title"
            ]
        );
        assert_eq!(v["key"], serde_json::json!({}));
        assert_eq!(v["status"], "firing");

        // The optional fields, once set, are written under their contract names.
        let a = Alert {
            status: AlertStatus::Resolved,
            resolved_at: Some("2026-11-22T10:12:00.000Z".into()),
            region: Some("eu-west-1".into()),
            account_name: Some("payments-prod".into()),
            team: Some("payments".into()),
            shadow: true,
            ..a
        };
        let v: serde_json::Value = serde_json::to_value(&a).unwrap();
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["resolved_at"], "2026-11-22T10:12:00.000Z");
        assert_eq!(v["region"], "eu-west-1");
        assert_eq!(v["account_name"], "payments-prod");
        assert_eq!(v["team"], "payments");
        assert_eq!(v["shadow"], true);
        let back: Alert = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn an_alert_without_status_is_firing_and_an_unknown_status_is_kept() {
        let mut v = serde_json::json!({
            "id": "i", "rule": "r", "kind": "failure", "severity": "high", "title": "t",
            "log_group": "g", "key": {}, "count": 1,
            "first_seen": "2026-11-22T10:00:00.000Z", "last_seen": "2026-11-22T10:00:00.000Z"
        });
        let a: Alert = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(a.status, AlertStatus::Firing);
        assert!(!a.shadow);
        v["status"] = "acknowledged".into();
        let a: Alert = serde_json::from_value(v).unwrap();
        assert_eq!(a.status, AlertStatus::Other("acknowledged".into()));
        assert_eq!(serde_json::to_value(&a).unwrap()["status"], "acknowledged");
        assert!(!a.status.is_resolved());
    }
}
