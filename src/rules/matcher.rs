//! Matchers: one entry of a rule's `match:` list, compiled.
//!
//! A `regex` matcher searches the line body and turns named captures into
//! fields. A `json` matcher parses the body as a JSON object (also the object
//! inside a Lambda JSON log's `message`, or a double-encoded `message` string),
//! requires every listed path to hold one of the listed values, and extracts
//! `fields` from the first path present. `exclude` drops a match whose field
//! holds a listed value (sshd's PAM lines repeat its own `Failed password`).
//!
//! JSON the strict parser rejects (a lone surrogate, `NaN`, `1e400`, deep
//! nesting) is read tolerantly ([`crate::lenient_json`]) so that one crafted
//! field cannot turn a rule off: matching fails closed.

use std::borrow::Cow;
use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// Fields extracted from one matching line, by name, in rule order.
pub type Fields = Vec<(String, String)>;

/// Look up `name` in extracted fields.
pub fn field<'f>(fields: &'f Fields, name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// One compiled matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub(crate) regex: Option<Regex>,
    pub(crate) json: Vec<(String, Vec<String>)>,
    pub(crate) fields: Vec<(String, Vec<String>)>,
    pub(crate) exclude: Vec<(String, Vec<String>)>,
}

impl Matcher {
    /// Build from already validated parts.
    pub(crate) fn new(
        regex: Option<Regex>,
        json: BTreeMap<String, Vec<String>>,
        fields: BTreeMap<String, Vec<String>>,
        exclude: BTreeMap<String, Vec<String>>,
    ) -> Self {
        Matcher {
            regex,
            json: json.into_iter().collect(),
            fields: fields.into_iter().collect(),
            exclude: exclude.into_iter().collect(),
        }
    }

    /// Names of the fields this matcher can extract: the regex's named
    /// captures and the `fields:` keys.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        let captures = self.regex.iter().flat_map(|r| r.capture_names().flatten());
        captures.chain(self.fields.iter().map(|(k, _)| k.as_str()))
    }

    /// Whether this matcher needs the body parsed as JSON.
    pub fn needs_json(&self) -> bool {
        !self.json.is_empty() || (self.regex.is_none() && !self.fields.is_empty())
    }

    /// Literal strings one of which must occur in a body for the JSON
    /// conditions to hold: a cheap check before parsing JSON.
    pub fn json_needles(&self) -> Vec<String> {
        self.json
            .first()
            .map(|(_, values)| values.clone())
            .unwrap_or_default()
    }

    /// Match a line body; `json` is the body parsed as JSON when it is an object.
    pub fn matches(&self, body: &str, json: Option<&Value>) -> Option<Fields> {
        let mut out = Fields::new();
        if let Some(re) = &self.regex {
            // Most lines do not match: `is_match` answers that without
            // allocating capture slots (measured: a fifth of the per-line cost).
            if !re.is_match(body) {
                return None;
            }
            let caps = re.captures(body)?;
            for name in re.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    out.push((name.to_string(), m.as_str().to_string()));
                }
            }
        }
        if self.needs_json() || (!self.fields.is_empty() && json.is_some()) {
            let doc = json.and_then(|v| self.object_that_matches(v));
            match doc {
                Some(doc) => {
                    for (name, paths) in &self.fields {
                        if let Some(s) = paths.iter().find_map(|p| lookup(&doc, p)).and_then(scalar)
                        {
                            out.push((name.clone(), s.into_owned()));
                        }
                    }
                }
                None if self.needs_json() => return None,
                None => {}
            }
        }
        for (name, values) in &self.exclude {
            if let Some(v) = field(&out, name)
                && values.iter().any(|x| x == v)
            {
                return None;
            }
        }
        Some(out)
    }

    /// The JSON object the conditions hold in: the body itself, or the object
    /// in its `message` (Lambda JSON log format), possibly double-encoded.
    fn object_that_matches<'v>(&self, v: &'v Value) -> Option<Cow<'v, Value>> {
        if self.conditions_hold(v) {
            return Some(Cow::Borrowed(v));
        }
        match v.get("message") {
            Some(inner @ Value::Object(_)) if self.conditions_hold(inner) => {
                Some(Cow::Borrowed(inner))
            }
            Some(Value::String(s)) if s.trim_start().starts_with('{') => {
                // Tolerant when strict fails: a crafted double-encoded
                // message must not blind the rule either.
                let inner = crate::lenient_json::from_str(s)?;
                self.conditions_hold(&inner).then_some(Cow::Owned(inner))
            }
            _ => None,
        }
    }

    fn conditions_hold(&self, v: &Value) -> bool {
        v.is_object()
            && self.json.iter().all(|(path, allowed)| {
                lookup(v, path).is_some_and(|found| value_in(found, allowed))
            })
    }
}

/// `a.b.c` as a literal key first (flat ECS style), then as a nested path.
fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    if let Some(found) = v.get(path) {
        return Some(found);
    }
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn scalar(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// Scalars compare by their text (so `status: [401]` matches `"401"` and `401`);
/// an array holds when any element does (ECS `event.category: ["authentication"]`).
fn value_in(v: &Value, allowed: &[String]) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|i| value_in(i, allowed)),
        other => scalar(other).is_some_and(|s| allowed.iter().any(|a| a == s.as_ref())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(regex: Option<&str>, json: &[(&str, &[&str])], fields: &[(&str, &[&str])]) -> Matcher {
        let conv = |xs: &[(&str, &[&str])]| {
            xs.iter()
                .map(|(k, vs)| (k.to_string(), vs.iter().map(|s| s.to_string()).collect()))
                .collect()
        };
        Matcher::new(
            regex.map(|r| Regex::new(r).unwrap()),
            conv(json),
            conv(fields),
            BTreeMap::new(),
        )
    }

    #[test]
    fn regex_captures_become_fields() {
        let mt = m(Some(r"from (?P<source_ip>\S+)"), &[], &[]);
        let f = mt
            .matches("Failed password for root from 203.0.113.7 port 22", None)
            .unwrap();
        assert_eq!(field(&f, "source_ip"), Some("203.0.113.7"));
        assert!(mt.matches("Accepted password", None).is_none());
    }

    #[test]
    fn json_conditions_and_fields_flat_nested_and_inside_message() {
        let mt = m(
            None,
            &[
                ("event.outcome", &["failure"]),
                ("event.category", &["authentication"]),
            ],
            &[
                ("source_ip", &["source.ip", "ip"]),
                ("user", &["user.name"]),
            ],
        );
        let flat: Value = serde_json::from_str(
            r#"{"event.outcome":"failure","event.category":"authentication","source.ip":"1.2.3.4"}"#,
        )
        .unwrap();
        assert_eq!(
            field(&mt.matches("", Some(&flat)).unwrap(), "source_ip"),
            Some("1.2.3.4")
        );
        let nested: Value = serde_json::from_str(
            r#"{"event":{"outcome":"failure","category":["authentication"]},"source":{"ip":"5.6.7.8"},"user":{"name":"bob"}}"#,
        )
        .unwrap();
        let f = mt.matches("", Some(&nested)).unwrap();
        assert_eq!(field(&f, "source_ip"), Some("5.6.7.8"));
        assert_eq!(field(&f, "user"), Some("bob"));
        let wrapped: Value = serde_json::from_str(
            r#"{"level":"WARN","message":"{\"event\":{\"outcome\":\"failure\",\"category\":\"authentication\"},\"ip\":\"9.9.9.9\"}"}"#,
        )
        .unwrap();
        assert_eq!(
            field(&mt.matches("", Some(&wrapped)).unwrap(), "source_ip"),
            Some("9.9.9.9")
        );
        let success: Value =
            serde_json::from_str(r#"{"event":{"outcome":"success","category":"authentication"}}"#)
                .unwrap();
        assert!(mt.matches("", Some(&success)).is_none());
        assert!(mt.matches("not json", None).is_none());
    }

    #[test]
    fn a_double_encoded_message_a_strict_parser_rejects_still_matches() {
        // The outer line is valid JSON; the `message` string inside it holds
        // a lone surrogate in the user name and a NaN.
        let mt = m(
            None,
            &[("event", &["login_failed"])],
            &[("source_ip", &["source_ip"]), ("user", &["user"])],
        );
        let outer: Value = serde_json::from_str(
            r#"{"level":"WARN","message":"{\"event\":\"login_failed\",\"n\":NaN,\"source_ip\":\"192.0.2.9\",\"user\":\"\\ud800x\"}"}"#,
        )
        .unwrap();
        let f = mt.matches("", Some(&outer)).unwrap();
        assert_eq!(field(&f, "source_ip"), Some("192.0.2.9"));
        assert_eq!(field(&f, "user"), Some("\u{FFFD}x"));
    }

    #[test]
    fn numbers_match_by_text() {
        let mt = m(
            None,
            &[("status", &["401", "403"])],
            &[("source_ip", &["ip"])],
        );
        let v: Value = serde_json::from_str(r#"{"status":401,"ip":"1.1.1.1"}"#).unwrap();
        assert!(mt.matches("", Some(&v)).is_some());
        let v: Value = serde_json::from_str(r#"{"status":"200","ip":"1.1.1.1"}"#).unwrap();
        assert!(mt.matches("", Some(&v)).is_none());
    }

    #[test]
    fn exclude_drops_listed_values() {
        let mut mt = m(Some(r"pam_unix\((?P<service>[^:]+):auth\)"), &[], &[]);
        mt.exclude = vec![("service".into(), vec!["sshd".into()])];
        assert!(
            mt.matches("pam_unix(sshd:auth): authentication failure", None)
                .is_none()
        );
        assert!(
            mt.matches("pam_unix(login:auth): authentication failure", None)
                .is_some()
        );
    }
}
