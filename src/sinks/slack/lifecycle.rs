//! Messages for an incident's later life: the resolution (a message of its
//! own with a webhook, the update of the original with a bot token) and the
//! short thread replies a bot posts under the original for a realert or a
//! resolution.

use serde_json::{Value, json};

use super::MAX_FALLBACK_CHARS;
use super::blockkit::{body, button, context, field, header, mrkdwn_capped};
use crate::alert::Alert;
use crate::alert::visible;

/// The alert as renderers take it: every string redacted again (the input
/// may not come from logwarden's engine) and controls made visible.
fn ready(alert: &Alert) -> Alert {
    visible::alert(&crate::sinks::fully_redacted(alert))
}

fn key_text(a: &Alert) -> String {
    if a.key.is_empty() {
        "(per function)".to_string()
    } else {
        a.key
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The message for a resolution. It names the incident it closes: a header
/// `✅ RESOLVED · title`, then rule, key, first and last seen, count,
/// resolved at, log group and account, the console buttons, and the firing
/// alert's id (a resolution carries the same id). Escaped and redacted as
/// [`super::blocks`] is.
pub fn resolved_blocks(alert: &Alert) -> Value {
    let a = &ready(alert);
    let fallback = mrkdwn_capped(
        &format!("[RESOLVED] {}: {}", a.rule, a.title),
        MAX_FALLBACK_CHARS,
        false,
    );
    let resolved = a.resolved_at.as_deref().unwrap_or("(time not given)");
    let mut fields = vec![
        field("Rule", &format!("{} ({}, {})", a.rule, a.kind, a.severity)),
        field("Key", &key_text(a)),
        field("First seen", &a.first_seen),
        field("Last seen", &a.last_seen),
        field("Count", &a.count.to_string()),
        field("Resolved at", resolved),
        field("Log group", &a.log_group),
    ];
    if let Some(acc) = a.account.as_deref().filter(|s| !s.is_empty()) {
        fields.push(field("Account", acc));
    }
    let mut out = vec![
        header(&format!(":white_check_mark: RESOLVED · {}", a.title)),
        json!({"type": "section", "fields": fields}),
    ];
    let buttons: Vec<Value> = [
        ("Open log stream", "open_log_stream", &a.links.log_stream),
        ("Logs Insights", "open_logs_insights", &a.links.insights),
    ]
    .into_iter()
    .filter_map(|(label, action, url)| button(label, action, url.as_deref()?))
    .collect();
    if !buttons.is_empty() {
        out.push(json!({"type": "actions", "elements": buttons}));
    }
    out.push(context(format!(
        "logwarden · resolves the alert with id `{}`",
        mrkdwn_capped(&a.id.replace('`', "'"), 200, false)
    )));
    body(fallback, out)
}

/// The thread reply a bot posts under the original message: one line on a
/// realert (count and last seen so far) or a resolution (when, and the
/// incident's span and count).
pub fn thread_reply(alert: &Alert) -> String {
    let a = &ready(alert);
    let text = if a.status.is_resolved() {
        format!(
            ":white_check_mark: Resolved at {} · {} event(s) from {} to {}",
            a.resolved_at.as_deref().unwrap_or("(time not given)"),
            a.count,
            a.first_seen,
            a.last_seen
        )
    } else {
        format!(
            ":repeat: Still firing · {} event(s) since {}, last seen {}",
            a.count, a.first_seen, a.last_seen
        )
    };
    mrkdwn_capped(&text, MAX_FALLBACK_CHARS, false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::alert::AlertStatus;

    fn resolved() -> Alert {
        serde_json::from_value(json!({
            "id": "0123456789abcdef0123456789abcdef", "rule": "failed-auth-burst",
            "kind": "threshold", "severity": "high",
            "title": "Burst <!channel>\r\nfrom 203.0.113.7", "log_group": "/aws/lambda/auth",
            "key": {"source_ip": "<@U123> AKIAIOSFODNN7EXAMPLE"}, "count": 31,
            "first_seen": "2026-11-22T10:00:00.000Z", "last_seen": "2026-11-22T10:00:41.000Z",
            "status": "resolved", "resolved_at": "2026-11-22T10:02:41.000Z",
            "links": {"log_stream": "https://console.aws.amazon.com/x", "insights": "javascript:x"}
        }))
        .unwrap()
    }

    #[test]
    fn a_resolution_names_the_incident_and_escapes_what_came_from_logs() {
        let b = resolved_blocks(&resolved());
        let text = b.to_string();
        assert!(
            text.contains("RESOLVED · Burst ‹!channel›\\\\r\\\\nfrom"),
            "{text}"
        );
        for want in [
            "*Rule*\\nfailed-auth-burst (threshold, high)",
            "*First seen*\\n2026-11-22T10:00:00.000Z",
            "*Last seen*\\n2026-11-22T10:00:41.000Z",
            "*Count*\\n31",
            "*Resolved at*\\n2026-11-22T10:02:41.000Z",
            "id `0123456789abcdef0123456789abcdef`",
        ] {
            assert!(text.contains(want), "{want} not in {text}");
        }
        assert!(
            text.contains("&lt;@U123&gt;") && !text.contains("<@U123>"),
            "{text}"
        );
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"));
        assert!(text.contains("open_log_stream") && !text.contains("javascript"));
        assert_eq!(
            b["text"],
            "[RESOLVED] failed-auth-burst: Burst &lt;!channel&gt;\\r\\nfrom 203.0.113.7"
        );
    }

    #[test]
    fn a_secret_in_fields_logwarden_writes_itself_is_redacted_too() {
        let mut a = resolved();
        a.id = "id AKIAIOSFODNN7EXAMPLE".into();
        a.rule = "rule AKIAIOSFODNN7EXAMPLE".into();
        a.resolved_at = Some("AKIAIOSFODNN7EXAMPLE".into());
        let text = resolved_blocks(&a).to_string() + &thread_reply(&a);
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
    }

    #[test]
    fn thread_replies_say_what_changed() {
        let r = thread_reply(&resolved());
        assert_eq!(
            r,
            ":white_check_mark: Resolved at 2026-11-22T10:02:41.000Z · 31 event(s) from 2026-11-22T10:00:00.000Z to 2026-11-22T10:00:41.000Z"
        );
        let mut f = resolved();
        f.status = AlertStatus::Firing;
        assert!(thread_reply(&f).starts_with(":repeat: Still firing · 31 event(s) since"));
    }
}
