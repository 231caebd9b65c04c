//! `pattern`: every matching event is a finding of its own (an AccessDenied,
//! a secret in a log line). There is no window: the engine folds the findings
//! of one key into one incident per `realert`, so a loop of denied calls is
//! one alert, not one per line.

use serde_json::Value;

use std::borrow::Cow;

use super::matcher::{Fields, Matcher};
use super::secrets::SecretFinder;
use super::{At, Detect, Key, Line, Matching, Scope, Summary};
use serde::Deserialize;

use super::Detector;
use super::config::{Cx, KindConfig, RawMatcher, check_field_names, compile_matchers};

/// Configuration of a pattern rule: `match:` entries, `secrets:` kinds, or both.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// Matchers; the first that matches wins.
    pub matchers: Vec<Matcher>,
    /// Fields forming the key of a matcher's finding; the ones a line lacks
    /// are left out of its key (an S3 `AccessDenied` names no principal).
    pub group_by: Vec<String>,
    /// Kinds of secret ([`super::secrets::secret_kinds`]) that make a line a finding,
    /// keyed `{kind: <kind>}`: the redaction patterns, so the alert's own
    /// redaction always removes what was found. `None` when the rule has none.
    pub secrets: Option<crate::detect::secrets::SecretFinder>,
}

/// Name of the key field of a secret finding.
pub const SECRET_KEY: &str = "kind";

impl Pattern {
    /// Whether any matcher needs the body as JSON.
    pub fn needs_json(&self) -> bool {
        self.matchers.iter().any(Matcher::needs_json)
    }

    /// The keys this line is a finding for: the key of the first matcher that
    /// matches, then one key per configured kind of secret found in it.
    pub fn observe(&self, body: &str, json: Option<&Value>) -> Vec<Key> {
        let fields = self.matchers.iter().find_map(|m| m.matches(body, json));
        let kinds = self
            .secrets
            .as_ref()
            .map(|f| f.find(body))
            .unwrap_or_default();
        self.keys(fields, &kinds)
    }

    /// The findings of a line, from its first match's fields and the kinds
    /// of secret found in it (what [`Pattern::observe`] answers).
    pub fn keys(&self, fields: Option<Fields>, kinds: &[&str]) -> Vec<Key> {
        let mut out = Vec::new();
        if let Some(fields) = fields {
            out.push(self.key(&fields));
        }
        for kind in kinds {
            out.push(secret_key(kind));
        }
        out
    }

    /// The `group_by` fields the line has.
    pub fn key(&self, fields: &Fields) -> Key {
        self.group_by
            .iter()
            .filter_map(|g| {
                crate::detect::matcher::field(fields, g)
                    .filter(|v| !v.is_empty())
                    .map(|v| (g.clone(), v.to_string()))
            })
            .collect()
    }
}

/// The key of a secret finding: the secret's kind.
fn secret_key(kind: &str) -> Key {
    Key::from([(SECRET_KEY.to_string(), kind.to_string())])
}

/// A finding's key and the line's request id.
pub struct Found<'a> {
    /// Incident key.
    pub key: Key,
    /// Request id, when the line has one.
    pub request_id: Option<Cow<'a, str>>,
}

impl Detect for Pattern {
    type Obs<'a> = Found<'a>;

    fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    fn secrets(&self) -> Option<&SecretFinder> {
        self.secrets.as_ref()
    }

    /// One observation for a matching matcher, one per secret found.
    fn observe<'p>(
        &self,
        line: &Line<'p, '_>,
        m: &mut Matching<'_>,
        out: &mut impl FnMut(Found<'p>),
    ) {
        let Some(app) = line.app else { return };
        let fields = m.first_match(app.body);
        let kinds = match &self.secrets {
            Some(f) => m.plane.secrets(m.rule, f, app.body, m.scan),
            None => Vec::new(),
        };
        // Straight to `out`, not through [`Pattern::keys`]: its `Vec` per
        // line and rule cost 1.3 M Ir of the text corpus (callgrind).
        let found = |key| Found {
            key,
            request_id: app.request_id.clone(),
        };
        if let Some(fields) = fields {
            out(found(self.key(&fields)));
        }
        for kind in &kinds {
            out(found(secret_key(kind)));
        }
    }

    fn key_of<'o>(obs: &'o Found<'_>) -> Option<&'o Key> {
        Some(&obs.key)
    }

    /// Every matching event is a finding.
    fn apply<S: Scope>(&self, found: &Found<'_>, at: &At<'_>, scope: &mut S) {
        let f = at.keyed_finding(&found.key, found.request_id.as_deref());
        scope.record(at.group, f, at.hash());
    }

    fn what(&self, s: &Summary<'_>) -> String {
        if s.key.is_empty() {
            format!(
                "{} matching event(s) in {} {}.",
                s.count, s.log_group, s.span
            )
        } else {
            format!(
                "{} matching event(s) with {} in {} {}.",
                s.count,
                s.key_words().join(", "),
                s.log_group,
                s.span
            )
        }
    }
}

/// The fields of a `pattern` rule, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "match")]
    matchers: Option<Vec<RawMatcher>>,
    group_by: Option<Vec<String>>,
    secrets: Option<Vec<String>>,
}

impl KindConfig for Config {
    fn compile(self, cx: &mut Cx<'_>) -> Option<Detector> {
        let matchers = compile_matchers(cx, self.matchers.as_deref().unwrap_or_default());
        let kinds = self.secrets.clone().unwrap_or_default();
        let secrets = if kinds.is_empty() {
            None
        } else {
            super::secrets::SecretFinder::new(&kinds)
                .map_err(|e| cx.err("secrets:", e))
                .ok()
        };
        if self.matchers.as_ref().is_none_or(|m| m.is_empty())
            && kinds.is_empty()
            && !cx.is_broken("match")
            && !cx.is_broken("secrets")
        {
            cx.err(
                "kind:",
                "a pattern rule needs a non-empty `match:` list or `secrets:` kinds",
            );
        }
        let group_by = self.group_by.clone().unwrap_or_default();
        // A secret finding is keyed by the secret's kind.
        let provided: &[&str] = if kinds.is_empty() { &[] } else { &[SECRET_KEY] };
        check_field_names(
            cx,
            self.matchers.as_ref(),
            &matchers,
            provided,
            &[("group_by", group_by.clone())],
        );
        Some(Detector::Pattern(Pattern {
            matchers,
            group_by,
            secrets,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::{Engine, EngineConfig};
    use crate::ingest::{LogEvent, MessageType, Payload};
    use crate::rules::RuleSet;
    use crate::state::MemoryStore;

    fn secrets_rule(kinds: &[&str]) -> Pattern {
        Pattern {
            matchers: vec![],
            group_by: vec![],
            secrets: Some(
                crate::detect::secrets::SecretFinder::new(
                    &kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                )
                .unwrap(),
            ),
        }
    }

    #[test]
    fn a_line_with_two_kinds_of_secret_is_two_findings() {
        let p = secrets_rule(&["aws-access-key-id", "url-password"]);
        let keys = p.observe(
            "connecting to postgres://app:hunter22@db:5432/x with AKIAIOSFODNN7EXAMPLE",
            None,
        );
        let kinds: Vec<&str> = keys.iter().map(|k| k[SECRET_KEY].as_str()).collect();
        assert_eq!(kinds, ["aws-access-key-id", "url-password"]);
    }

    #[test]
    fn only_the_configured_kinds_count() {
        let p = secrets_rule(&["private-key"]);
        assert!(p.observe("key=AKIAIOSFODNN7EXAMPLE", None).is_empty());
        assert!(p.observe("nothing to see here", None).is_empty());
    }

    #[test]
    fn missing_group_by_fields_are_left_out_of_the_key() {
        let re = regex::Regex::new(r"\((?P<code>AccessDenied)\) when calling the (?P<action>\w+)")
            .unwrap();
        let p = Pattern {
            matchers: vec![Matcher::new(
                Some(re.into()),
                Default::default(),
                Default::default(),
                Default::default(),
            )],
            group_by: vec!["principal".into(), "action".into()],
            secrets: None,
        };
        let keys = p.observe(
            "An error occurred (AccessDenied) when calling the GetObject operation: Access Denied",
            None,
        );
        assert_eq!(
            keys,
            [Key::from([("action".to_string(), "GetObject".to_string())])]
        );
    }

    fn payload<'a>(group: &'a str, lines: &'a [String]) -> Payload<'a> {
        Payload {
            region: None,
            message_type: MessageType::Data,
            owner: "123456789012".into(),
            log_group: group.into(),
            log_stream: "2026/11/22/[$LATEST]0123456789abcdef".into(),
            subscription_filters: vec![],
            log_events: lines
                .iter()
                .enumerate()
                .map(|(i, l)| LogEvent {
                    id: i.to_string().into(),
                    timestamp: 1_795_341_600_000 + i as i64 * 1_000,
                    message: l.as_str().into(),
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn secret_alerts_name_kind_and_place_and_never_hold_the_secret() {
        let planted = [
            "AKIAZZQWERTY12345678",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzPLANTED1",
            "MIIEowIBAAKCAQEAplantedkeymaterial",
            "s3cr3t-Pl4nted",
            "eyJzdWIiOiJwbGFudGVkLXVzZXIifQ",
        ];
        let lines = vec![
            format!(
                "2026-11-22T10:00:00.000Z\tc0ffee00-0000-4000-8000-000000000001\tINFO\tusing credentials {} / aws_secret_access_key={}",
                planted[0], planted[1]
            ),
            format!(
                "2026-11-22T10:00:01.000Z\tc0ffee00-0000-4000-8000-000000000002\tINFO\tloaded -----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
                planted[2]
            ),
            format!(
                "2026-11-22T10:00:02.000Z\tc0ffee00-0000-4000-8000-000000000003\tINFO\tGET https://admin:{}@internal.example.com/health",
                planted[3]
            ),
            format!(
                "{{\"level\":\"INFO\",\"requestId\":\"c0ffee00-0000-4000-8000-000000000004\",\"message\":\"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.{}.c2lnbmF0dXJlLXBsYW50ZWQ\"}}",
                planted[4]
            ),
        ];
        let set = Arc::new(RuleSet::builtin().unwrap());
        let mut engine = Engine::new(set, MemoryStore::new(), EngineConfig::default());
        let out = engine
            .process(&payload("/aws/lambda/billing", &lines))
            .await
            .unwrap();
        let mine: Vec<_> = out
            .alerts
            .iter()
            .filter(|a| a.rule == "secret-in-logs")
            .collect();
        let mut kinds: Vec<&str> = mine.iter().map(|a| a.key[SECRET_KEY].as_str()).collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "aws-access-key-id",
                "aws-secret-key",
                "bearer-token",
                "jwt",
                "private-key",
                "url-password"
            ]
        );
        for a in &mine {
            assert!(a.title.contains(&a.key[SECRET_KEY]), "{}", a.title);
            assert_eq!(a.function.as_deref(), Some("billing"));
            assert_eq!(
                a.log_stream.as_deref(),
                Some("2026/11/22/[$LATEST]0123456789abcdef")
            );
            assert_eq!(a.request_ids.len(), 1, "{a:?}");
            assert!(a.request_ids[0].starts_with("c0ffee00-"), "{a:?}");
            assert!(a.evidence[0].contains("[REDACTED:"), "{a:?}");
        }
        let json = serde_json::to_string(&out.alerts).unwrap();
        for s in planted {
            assert!(!json.contains(s), "{s} leaked: {json}");
        }
    }

    #[tokio::test]
    async fn a_leaking_loop_is_one_alert_per_kind() {
        let lines: Vec<String> = (0..50)
            .map(|i| format!("retry {i} with key AKIAIOSFODNN7EXAMPLE"))
            .collect();
        let set = Arc::new(RuleSet::builtin().unwrap());
        let mut engine = Engine::new(set, MemoryStore::new(), EngineConfig::default());
        let out = engine
            .process(&payload("/aws/lambda/loop", &lines))
            .await
            .unwrap();
        let mine: Vec<_> = out
            .alerts
            .iter()
            .filter(|a| a.rule == "secret-in-logs")
            .collect();
        assert_eq!(mine.len(), 1);
        // The alert is the first line; the other 49 fold into its incident.
        assert_eq!(mine[0].count, 1);
        assert_eq!(out.suppressed, 49);
    }

    #[tokio::test]
    async fn access_denied_shapes_extract_principal_action_resource() {
        let lines = vec![
            // AWS SDK for JavaScript v3 / Java, in the Lambda text format.
            "2026-11-22T10:00:00.000Z\t5e1a0000-0000-4000-8000-000000000001\tERROR\tAccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/orders-role/orders is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/orders because no identity-based policy allows the dynamodb:PutItem action".to_string(),
            // boto3, S3 without details.
            "[ERROR] ClientError: An error occurred (AccessDenied) when calling the GetObject operation: Access Denied".to_string(),
            // Lambda JSON error.
            r#"{"errorType":"AccessDeniedException","errorMessage":"User: arn:aws:sts::123456789012:assumed-role/r/f is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:123456789012:key/1234abcd because no resource-based policy allows the kms:Decrypt action"}"#.to_string(),
            // CloudTrail-shaped JSON.
            r#"{"eventSource":"s3.amazonaws.com","eventName":"PutObject","errorCode":"AccessDenied","userIdentity":{"arn":"arn:aws:iam::123456789012:user/ci"},"resources":[{"ARN":"arn:aws:s3:::builds/x"}]}"#.to_string(),
            "INFO all good, access granted".to_string(),
        ];
        let set = Arc::new(RuleSet::builtin().unwrap());
        let mut engine = Engine::new(set, MemoryStore::new(), EngineConfig::default());
        let out = engine
            .process(&payload("/aws/lambda/orders", &lines))
            .await
            .unwrap();
        let keys: Vec<&Key> = out
            .alerts
            .iter()
            .filter(|a| a.rule == "unauthorized-access")
            .map(|a| &a.key)
            .collect();
        let k = |pairs: &[(&str, &str)]| -> Key {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            keys,
            [
                &k(&[
                    ("action", "dynamodb:PutItem"),
                    (
                        "principal",
                        "arn:aws:sts::123456789012:assumed-role/orders-role/orders"
                    ),
                    (
                        "resource",
                        "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
                    ),
                ]),
                &k(&[("action", "GetObject")]),
                &k(&[
                    ("action", "kms:Decrypt"),
                    ("principal", "arn:aws:sts::123456789012:assumed-role/r/f"),
                    (
                        "resource",
                        "arn:aws:kms:us-east-1:123456789012:key/1234abcd"
                    ),
                ]),
                &k(&[
                    ("action", "PutObject"),
                    ("principal", "arn:aws:iam::123456789012:user/ci"),
                ]),
            ]
        );
    }
}
