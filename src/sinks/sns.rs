//! SNS: one message per alert, with a body per protocol (`MessageStructure=json`)
//! and message attributes subscribers filter on.
//!
//! `default`, `sqs`, `lambda`, `http` and `https` carry the alert JSON; `email`
//! carries the plain-text rendering. Many alerts go out with `PublishBatch`
//! (at most 10 per call). Throttling, 5xx and timeouts of a call are retried
//! by the SDK's standard retry strategy (budget: `handler::aws_retry_config`);
//! a call the SDK gave up on is not retried again here. Entries a successful
//! `PublishBatch` reports as failed are retried here with backoff
//! ([`SnsSink::entry_attempts`]). Whatever still fails is returned, so the
//! Lambda invocation fails and is retried (the engine's outbox re-emits
//! exactly those alerts).
//!
//! A publish whose response is lost after SNS accepted it (a timeout, a
//! dropped connection) is retried and reaches subscribers twice: delivery is
//! at least once. Every copy carries the same alert `id` (a fingerprint of
//! rule, log group, key and first event), which subscribers deduplicate on.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use crate::alert::{Alert, email};

/// SNS's limit on one message (body and attributes), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// Most entries in one `PublishBatch`.
pub const MAX_BATCH: usize = 10;

/// What a delivery attempt left undelivered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("SNS publish to {topic} failed for {} alert(s): {reason}", failed.len())]
pub struct SnsError {
    /// The topic.
    pub topic: String,
    /// Ids of the alerts not delivered.
    pub failed: Vec<String>,
    /// The last error seen.
    pub reason: String,
}

/// One alert as SNS will carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnsMessage {
    /// The `MessageStructure=json` document.
    pub message: String,
    /// Subject (email), one line under 100 characters.
    pub subject: String,
    /// String attributes for filter policies.
    pub attributes: Vec<(&'static str, String)>,
}

impl SnsMessage {
    /// Size as SNS counts it: message, subject and attribute names and values.
    pub fn size(&self) -> usize {
        self.message.len()
            + self.subject.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + "String".len() + v.len())
                .sum::<usize>()
    }
}

/// Render one alert for SNS, trimming evidence (then summary and request ids)
/// until the message fits in [`MAX_MESSAGE_BYTES`]: size never fails a publish.
pub fn render(alert: &Alert, region: &str) -> SnsMessage {
    let mut a = alert.clone();
    loop {
        let m = render_once(&a, region);
        if m.size() <= MAX_MESSAGE_BYTES {
            return m;
        }
        if a.evidence.pop().is_some() {
            continue;
        }
        if !a.request_ids.is_empty() {
            a.request_ids.clear();
            continue;
        }
        if a.summary.len() > 200 {
            a.summary = crate::alert::truncate_chars(&a.summary, 200);
            continue;
        }
        // Only the key can still be large (a capture from an attacker's line).
        for v in a.key.values_mut() {
            *v = crate::alert::truncate_chars(v, 256);
        }
        a.links = Default::default();
        return render_once(&a, region);
    }
}

fn render_once(a: &Alert, region: &str) -> SnsMessage {
    let json = serde_json::to_string(a).unwrap_or_default();
    let doc = serde_json::json!({
        "default": json,
        "sqs": json,
        "lambda": json,
        "http": json,
        "https": json,
        "email": email::body(a, region),
    });
    let mut attributes = vec![
        ("severity", a.severity.to_string()),
        ("rule", a.rule.clone()),
        ("kind", a.kind.to_string()),
        ("log_group", a.log_group.clone()),
    ];
    // SNS rejects empty attribute values: absent stays absent.
    if let Some(f) = a.function.as_ref().filter(|f| !f.is_empty()) {
        attributes.push(("function", f.clone()));
    }
    // Subscribers filter on it (e.g. page on firing only).
    attributes.push(("status", a.status.to_string()));
    // Routing by account, region and team (README, "Many accounts and regions").
    for (name, v) in [
        ("account", &a.account),
        ("region", &a.region),
        ("team", &a.team),
    ] {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            attributes.push((name, v.clone()));
        }
    }
    SnsMessage {
        message: doc.to_string(),
        subject: email::subject(a),
        attributes,
    }
}

fn attrs(m: &SnsMessage) -> HashMap<String, MessageAttributeValue> {
    m.attributes
        .iter()
        .filter_map(|(k, v)| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .ok()
                .map(|a| ((*k).to_string(), a))
        })
        .collect()
}

/// Publishes alerts to one topic.
#[derive(Debug, Clone)]
pub struct SnsSink {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    region: String,
    /// Attempts for entries a batch reports as failed.
    pub entry_attempts: u32,
    /// First backoff between those attempts (doubles each time).
    pub backoff: Duration,
}

impl SnsSink {
    /// A sink for `topic_arn`; `region` appears in email bodies.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String, region: String) -> Self {
        SnsSink {
            client,
            topic_arn,
            region,
            entry_attempts: 4,
            backoff: Duration::from_millis(100),
        }
    }

    /// The topic alerts go to.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// Publish every alert. `Ok` holds the ids delivered (all of them);
    /// `Err` names the ones that were not, after retries.
    pub async fn publish(&self, alerts: &[Alert]) -> Result<Vec<String>, SnsError> {
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        let mut reason = String::new();
        if let [one] = alerts {
            let m = render(one, &self.region);
            let r = self
                .client
                .publish()
                .topic_arn(&self.topic_arn)
                .message_structure("json")
                .message(m.message.clone())
                .subject(m.subject.clone())
                .set_message_attributes(Some(attrs(&m)))
                .send()
                .await;
            match r {
                Ok(_) => delivered.push(one.id.clone()),
                Err(e) => {
                    reason = aws_sdk_sns::error::DisplayErrorContext(&e).to_string();
                    failed.push(one.id.clone());
                }
            }
        } else {
            for chunk in alerts.chunks(MAX_BATCH) {
                match self.publish_batch(chunk).await {
                    Ok(ids) => delivered.extend(ids),
                    Err(e) => {
                        delivered.extend(
                            chunk
                                .iter()
                                .map(|a| a.id.clone())
                                .filter(|id| !e.failed.contains(id)),
                        );
                        failed.extend(e.failed);
                        reason = e.reason;
                    }
                }
            }
        }
        for id in &delivered {
            tracing::info!(topic = %self.topic_arn, alert = %id, "Published alert.");
        }
        if failed.is_empty() {
            Ok(delivered)
        } else {
            tracing::error!(topic = %self.topic_arn, failed = failed.len(), reason = %reason, "Alerts not published; the invocation will be retried.");
            Err(SnsError {
                topic: self.topic_arn.clone(),
                failed,
                reason,
            })
        }
    }

    async fn publish_batch(&self, chunk: &[Alert]) -> Result<Vec<String>, SnsError> {
        let mut pending: Vec<(usize, SnsMessage)> = chunk
            .iter()
            .enumerate()
            .map(|(i, a)| (i, render(a, &self.region)))
            .collect();
        let mut delivered = Vec::new();
        let mut reason = String::new();
        let mut wait = self.backoff;
        for attempt in 1..=self.entry_attempts.max(1) {
            let entries: Vec<PublishBatchRequestEntry> = pending
                .iter()
                .filter_map(|(i, m)| {
                    PublishBatchRequestEntry::builder()
                        .id(format!("a{i}"))
                        .message(m.message.clone())
                        .message_structure("json")
                        .subject(m.subject.clone())
                        .set_message_attributes(Some(attrs(m)))
                        .build()
                        .ok()
                })
                .collect();
            match self
                .client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    let failed_ids: Vec<String> =
                        out.failed().iter().map(|f| f.id().to_string()).collect();
                    for f in out.failed() {
                        reason = format!("{}: {}", f.code(), f.message().unwrap_or(""));
                    }
                    pending.retain(|(i, _)| {
                        let failed = failed_ids.contains(&format!("a{i}"));
                        if !failed {
                            delivered.push(chunk[*i].id.clone());
                        }
                        failed
                    });
                }
                Err(e) => {
                    // The SDK has used its own retry budget on this call
                    // (throttling, 5xx, timeouts); retrying it here as well
                    // would multiply the attempts. The invocation fails instead.
                    reason = aws_sdk_sns::error::DisplayErrorContext(&e).to_string();
                    break;
                }
            }
            if pending.is_empty() {
                return Ok(delivered);
            }
            if attempt < self.entry_attempts {
                tracing::warn!(topic = %self.topic_arn, pending = pending.len(), attempt, reason = %reason, "Retrying alerts SNS did not accept.");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Err(SnsError {
            topic: self.topic_arn.clone(),
            failed: pending.iter().map(|(i, _)| chunk[*i].id.clone()).collect(),
            reason,
        })
    }
}

/// The detector's sink: [`SnsSink::publish`], whose [`SnsError`] names the
/// alerts SNS did not take.
impl super::AlertSink for SnsSink {
    async fn publish(&mut self, alerts: &[Alert]) -> Result<(), super::SinkError> {
        SnsSink::publish(self, alerts).await.map(drop)?;
        Ok(())
    }
}

/// A shared sink publishes as well: [`SnsSink::publish`] needs no `&mut`.
impl super::AlertSink for &SnsSink {
    async fn publish(&mut self, alerts: &[Alert]) -> Result<(), super::SinkError> {
        SnsSink::publish(self, alerts).await.map(drop)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Links;
    use crate::detect::Key;

    fn alert() -> Alert {
        Alert {
            id: "abc".into(),
            rule: "failed-auth-burst".into(),
            kind: "threshold".into(),
            severity: "high".into(),
            title: "Burst".into(),
            summary: "s".into(),
            account: Some("123456789012".into()),
            log_group: "/aws/lambda/f".into(),
            log_stream: Some("s".into()),
            function: None,
            key: Key::from([("source_ip".to_string(), "1.2.3.4".to_string())]),
            request_ids: vec![],
            count: 10,
            first_seen: "2026-11-22T10:00:00.000Z".into(),
            last_seen: "2026-11-22T10:00:00.000Z".into(),
            metrics: Default::default(),
            evidence: vec!["line".into()],
            links: Links::default(),
            status: crate::alert::AlertStatus::Firing,
            resolved_at: None,
            region: None,
            account_name: None,
            team: None,
            shadow: false,
        }
    }

    #[test]
    fn every_protocol_gets_its_body_and_empty_attributes_are_left_out() {
        let m = render(&alert(), "eu-west-1");
        let doc: serde_json::Value = serde_json::from_str(&m.message).unwrap();
        for p in ["default", "sqs", "lambda", "http", "https"] {
            let a: Alert = serde_json::from_str(doc[p].as_str().unwrap()).unwrap();
            assert_eq!(a, alert());
        }
        let email = doc["email"].as_str().unwrap();
        assert!(email.starts_with("[HIGH] Burst\n"), "{email}");
        assert!(
            serde_json::from_str::<serde_json::Value>(email).is_err(),
            "email is plain text"
        );
        let names: Vec<&str> = m.attributes.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            ["severity", "rule", "kind", "log_group", "status", "account"]
        );
        assert_eq!(m.attributes[4].1, "firing");
        assert_eq!(m.subject, "[HIGH] Burst");
    }

    #[test]
    fn a_resolution_says_so_in_its_attribute_subject_and_email() {
        let mut a = alert();
        a.status = crate::alert::AlertStatus::Resolved;
        a.resolved_at = Some("2026-11-22T10:12:00.000Z".into());
        let m = render(&a, "eu-west-1");
        assert!(m.attributes.contains(&("status", "resolved".to_string())));
        assert_eq!(m.subject, "[RESOLVED] Burst");
        let doc: serde_json::Value = serde_json::from_str(&m.message).unwrap();
        let email = doc["email"].as_str().unwrap();
        assert!(
            email.contains("RESOLVED  2026-11-22T10:12:00.000Z"),
            "{email}"
        );
        let back: Alert = serde_json::from_str(doc["sqs"].as_str().unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn account_region_and_team_are_attributes_for_routing() {
        let mut a = alert();
        a.region = Some("eu-west-1".into());
        a.team = Some("payments".into());
        a.account_name = Some("payments-prod".into());
        let m = render(&a, "us-east-1");
        let got: Vec<(&str, &str)> = m.attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            got[5..],
            [
                ("account", "123456789012"),
                ("region", "eu-west-1"),
                ("team", "payments")
            ]
        );
        // The email names the account by its name, in the alert's own region.
        let doc: serde_json::Value = serde_json::from_str(&m.message).unwrap();
        let email = doc["email"].as_str().unwrap();
        assert!(
            email.contains(
                "WHERE  account payments-prod (123456789012), region eu-west-1, team payments"
            ),
            "{email}"
        );
        a.account = None;
        a.region = Some(String::new());
        a.team = None;
        let names: Vec<&str> = render(&a, "eu-west-1")
            .attributes
            .iter()
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(names, ["severity", "rule", "kind", "log_group", "status"]);
    }

    #[test]
    fn an_oversized_alert_is_trimmed_to_fit_never_refused() {
        let mut a = alert();
        a.evidence = vec!["x".repeat(512); 5];
        a.key.insert("user".into(), "u".repeat(400_000));
        let m = render(&a, "eu-west-1");
        assert!(m.size() <= MAX_MESSAGE_BYTES, "{}", m.size());
        let doc: serde_json::Value = serde_json::from_str(&m.message).unwrap();
        let back: Alert = serde_json::from_str(doc["default"].as_str().unwrap()).unwrap();
        assert_eq!(back.id, "abc");
        assert!(back.evidence.is_empty());
    }

    #[test]
    fn evidence_goes_first_when_trimming() {
        let mut a = alert();
        a.evidence = vec!["e".repeat(512); 5];
        a.summary = "s".repeat(41_000);
        let m = render(&a, "r");
        assert!(m.size() <= MAX_MESSAGE_BYTES);
        let doc: serde_json::Value = serde_json::from_str(&m.message).unwrap();
        let back: Alert = serde_json::from_str(doc["default"].as_str().unwrap()).unwrap();
        assert!(back.evidence.len() < 5);
        assert_eq!(
            back.summary.len(),
            41_000,
            "summary kept while evidence could go"
        );
    }
}
