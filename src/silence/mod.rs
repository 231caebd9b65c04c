//! Silences: a maintenance window or a pen test, lifted automatically.
//!
//! A [`Silence`] names a rule (or `*`), a key (a subset match: every pair it
//! gives equals the alert's), optionally a log group glob, and an expiry
//! (`until`, required, at most [`MAX_SPAN_MS`] after it was made). A firing
//! alert is silenced when a silence covers it and its `last_seen` (the event
//! time of the latest event it reports) is before `until`: windows compare
//! with event time, never the clock, so a replay of last week silences what
//! the Lambda silenced then.
//!
//! Silences live in a YAML file ([`mod@file`], `--silences FILE`) or in the
//! DynamoDB state table ([`table`]); the [`crate::runner::Runner`] applies
//! them. This module only holds the data and its checks: no I/O but the
//! file's and the table's own.

pub mod cache;
pub mod file;
pub mod table;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::detect::Key;
use crate::time::{Millis, parse_rfc3339, rfc3339};

/// The longest a silence may last: 90 days from when it is made.
pub const MAX_SPAN_MS: Millis = 90 * 24 * 3_600_000;

/// Why a silence could not be made, read or stored.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// A field is wrong; the text says which and how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// The file or table could not be read or written.
    #[error("{0}")]
    Store(String),
}

/// One silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Short unique id (`s-` and 8 hex digits).
    pub id: String,
    /// The rule id it silences, or `*` for every rule.
    pub rule: String,
    /// Pairs the alert's key must hold (a subset match); empty = any key.
    #[serde(default, skip_serializing_if = "Key::is_empty")]
    pub key: Key,
    /// Log group glob (`*` any run of characters, `?` one); absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    /// Event time it ends at (exclusive).
    #[serde(with = "as_rfc3339")]
    pub until: Millis,
    /// When it was made (the clock of whoever made it).
    #[serde(with = "as_rfc3339")]
    pub created: Millis,
    /// Why (required).
    pub reason: String,
    /// Who made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
}

/// What `silence add` asks for, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct NewSilence {
    /// Rule id or `*`.
    pub rule: String,
    /// `k=v` pairs.
    pub key: Key,
    /// Log group glob.
    pub log_group: Option<String>,
    /// The expiry.
    pub until: Option<Millis>,
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
}

impl NewSilence {
    /// The silence, checked, made at `now` with an id none of `taken` has.
    pub fn make(self, now: Millis, taken: &[Silence]) -> Result<Silence, SilenceError> {
        let bad = |m: String| Err(SilenceError::Invalid(m));
        if self.rule.trim().is_empty() {
            return bad("a silence needs --rule ID (or '*' for every rule)".into());
        }
        if self.reason.trim().is_empty() {
            return bad("a silence needs --reason TEXT (why it is silenced)".into());
        }
        let Some(until) = self.until else {
            return bad("a silence needs an expiry: --until RFC3339 or --for DURATION".into());
        };
        if until <= now {
            return bad(format!(
                "--until {} is not in the future (now is {})",
                rfc3339(until),
                rfc3339(now)
            ));
        }
        if until - now > MAX_SPAN_MS {
            return bad(format!(
                "a silence lasts at most 90 days: --until {} is past {}",
                rfc3339(until),
                rfc3339(now + MAX_SPAN_MS)
            ));
        }
        if let Some(g) = &self.log_group {
            check_glob(g)?;
        }
        Ok(Silence {
            id: new_id(&self, now, taken),
            rule: self.rule,
            key: self.key,
            log_group: self.log_group,
            until,
            created: now,
            reason: self.reason,
            by: self.by,
        })
    }
}

/// A `k=v` of `--key`.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not k=v (e.g. source_ip=203.0.113.7)")),
    }
}

/// A log group glob is a log group name with `*` and `?`; anything else
/// a shell would expand (`[`, `{`) is refused rather than taken literally.
fn check_glob(g: &str) -> Result<(), SilenceError> {
    if g.is_empty() {
        return Err(SilenceError::Invalid("--log-group is empty".into()));
    }
    if let Some(c) = g
        .chars()
        .find(|c| matches!(c, '[' | ']' | '{' | '}' | '\\'))
    {
        return Err(SilenceError::Invalid(format!(
            "--log-group `{g}`: `{c}` is not supported in a glob (use * and ?)"
        )));
    }
    Ok(())
}

/// Whether `text` matches glob `g` (`*` any run, `?` one character).
pub fn glob_matches(g: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (g.chars().collect(), text.chars().collect());
    // Classic two-pointer match with one backtrack point: linear enough for
    // names, and no recursion an attacker-chosen name could blow up.
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match g.get(gi) {
            Some('*') => {
                star = Some((gi, ti));
                gi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                gi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    gi = sg + 1;
                    ti = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

/// A short id: 8 hex digits of a hash of what it silences and when, made
/// again (with a counter) while one of `taken` has it.
fn new_id(s: &NewSilence, now: Millis, taken: &[Silence]) -> String {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    (0u32..)
        .map(|n| {
            let h = state.hash_one((&s.rule, &s.key, &s.log_group, s.until, &s.reason, now, n));
            format!("s-{:08x}", h as u32)
        })
        .find(|id| !taken.iter().any(|t| t.id == *id))
        .unwrap_or_default()
}

impl Silence {
    /// Whether it covers `a` (rule, key, log group), whatever the time.
    pub fn matches(&self, a: &Alert) -> bool {
        (self.rule == "*" || self.rule == a.rule)
            && self.key.iter().all(|(k, v)| a.key.get(k) == Some(v))
            && self
                .log_group
                .as_deref()
                .is_none_or(|g| glob_matches(g, &a.log_group))
    }

    /// Whether it is in force at event time `at`.
    pub fn active_at(&self, at: Millis) -> bool {
        at < self.until
    }

    /// One line for `silence list`.
    pub fn line(&self) -> String {
        let key: Vec<String> = self.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{}  rule={}  key={{{}}}  log_group={}  until={}  by={}  reason={}",
            self.id,
            self.rule,
            key.join(","),
            self.log_group.as_deref().unwrap_or("*"),
            rfc3339(self.until),
            if self.by.is_empty() { "-" } else { &self.by },
            self.reason
        )
    }
}

/// The silences in force, as the runner consults them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SilenceSet {
    /// The silences (any order).
    pub silences: Vec<Silence>,
}

impl SilenceSet {
    /// A set of these silences.
    pub fn new(silences: Vec<Silence>) -> Self {
        SilenceSet { silences }
    }

    /// The silence covering `a` at its event time (`last_seen`), if any; of
    /// several, the one lasting longest (the alert waits for all of them).
    pub fn covering(&self, a: &Alert) -> Option<&Silence> {
        let at = parse_rfc3339(&a.last_seen)
            .or_else(|_| parse_rfc3339(&a.first_seen))
            .ok()?;
        self.silences
            .iter()
            .filter(|s| s.active_at(at) && s.matches(a))
            .max_by_key(|s| s.until)
    }
}

mod as_rfc3339 {
    use crate::time::{Millis, parse_rfc3339, rfc3339};

    pub fn serialize<S: serde::Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*ms))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: Millis = 1_795_341_600_000;

    fn new(until: Option<Millis>) -> NewSilence {
        NewSilence {
            rule: "failed-auth-burst".into(),
            key: Key::from([("source_ip".into(), "203.0.113.7".into())]),
            log_group: Some("/aws/lambda/*".into()),
            until,
            reason: "pen test".into(),
            by: "ops".into(),
        }
    }

    #[test]
    fn an_expiry_is_required_and_at_most_90_days_on() {
        let e = new(None).make(NOW, &[]).unwrap_err().to_string();
        assert!(e.contains("needs an expiry"), "{e}");
        let e = new(Some(NOW + MAX_SPAN_MS + 1))
            .make(NOW, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 90 days"), "{e}");
        let e = new(Some(NOW - 1)).make(NOW, &[]).unwrap_err().to_string();
        assert!(e.contains("not in the future"), "{e}");
        let s = new(Some(NOW + MAX_SPAN_MS)).make(NOW, &[]).unwrap();
        assert_eq!(s.until - s.created, MAX_SPAN_MS);
    }

    #[test]
    fn a_reason_and_a_supported_glob_are_required() {
        let mut n = new(Some(NOW + 1));
        n.reason = " ".into();
        let e = n.make(NOW, &[]).unwrap_err().to_string();
        assert!(e.contains("--reason"), "{e}");
        let mut n = new(Some(NOW + 1));
        n.log_group = Some("/aws/[ab]".into());
        let e = n.make(NOW, &[]).unwrap_err().to_string();
        assert!(e.contains("not supported in a glob"), "{e}");
    }

    #[test]
    fn ids_are_short_and_unique() {
        let mut taken = Vec::new();
        for _ in 0..50 {
            let s = new(Some(NOW + 1)).make(NOW, &taken).unwrap();
            assert_eq!(s.id.len(), 10, "{}", s.id);
            assert!(taken.iter().all(|t: &Silence| t.id != s.id));
            taken.push(s);
        }
    }

    #[test]
    fn globs_match_names() {
        assert!(glob_matches("/aws/lambda/*", "/aws/lambda/checkout"));
        assert!(glob_matches("*check*", "/aws/lambda/checkout"));
        assert!(glob_matches("/aws/lambda/c?eckout", "/aws/lambda/checkout"));
        assert!(!glob_matches("/aws/lambda/*", "/ec2/sshd"));
        assert!(!glob_matches(
            "/aws/lambda/c?eckout",
            "/aws/lambda/cheeckout"
        ));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("a*b", "a-b-c"));
    }

    #[test]
    fn a_silence_covers_by_rule_key_subset_group_and_event_time() {
        let s = new(Some(NOW + 60_000)).make(NOW, &[]).unwrap();
        let set = SilenceSet::new(vec![s.clone()]);
        let mut a: Alert = serde_json::from_value(serde_json::json!({
            "id": "a1", "rule": "failed-auth-burst", "kind": "threshold", "severity": "high",
            "title": "t", "log_group": "/aws/lambda/auth",
            "key": {"source_ip": "203.0.113.7", "user": "root"}, "count": 10,
            "first_seen": rfc3339(NOW), "last_seen": rfc3339(NOW + 59_999)
        }))
        .unwrap();
        assert_eq!(set.covering(&a).map(|s| s.id.as_str()), Some(s.id.as_str()));
        a.last_seen = rfc3339(NOW + 60_000);
        assert!(set.covering(&a).is_none(), "ended at until");
        a.last_seen = rfc3339(NOW);
        a.key.insert("source_ip".into(), "198.51.100.1".into());
        assert!(set.covering(&a).is_none(), "another key");
        a.key.insert("source_ip".into(), "203.0.113.7".into());
        a.log_group = "/ec2/sshd".into();
        assert!(set.covering(&a).is_none(), "another group");
        a.log_group = "/aws/lambda/auth".into();
        a.rule = "secret-in-logs".into();
        assert!(set.covering(&a).is_none(), "another rule");
        let mut any = s;
        any.rule = "*".into();
        assert!(SilenceSet::new(vec![any]).covering(&a).is_some());
    }
}
