//! Alerts, alarm notifications and other messages → webhook bodies.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::blockkit::{
    body, button, code_sections, context, field, header, mrkdwn_capped, section, severity_emoji,
};
use super::{MAX_FALLBACK_CHARS, MAX_FIELDS, MAX_SECTION_CHARS};
use crate::alert::redact::{self, RedactOptions};
use crate::alert::visible::{self, visible};
use crate::alert::{Alert, MAX_EVIDENCE};

/// The webhook body for one alert: a `text` fallback (what notifications
/// show) and Block Kit `blocks`: a header with the severity and title, the
/// summary, fields (rule, function, log group, key, count, first and last
/// seen, account, log stream, requests), metrics, the evidence in a code
/// block, buttons to the log stream and Logs Insights, and a context line
/// with kind and id.
///
/// Pure; everything from the alert is redacted ([`crate::alert::redact`],
/// again: the input may not come from logwarden's engine), control sequences
/// are shown as escapes ([`crate::alert::visible`]), mentions and links are
/// escaped, and every Slack limit is held.
///
/// A resolution gets its own, shorter message: [`super::resolved_blocks`].
pub fn blocks(alert: &Alert) -> Value {
    if alert.status.is_resolved() {
        return super::resolved_blocks(alert);
    }
    let mut redacted = alert.clone();
    redact::alert(&mut redacted, &RedactOptions::default());
    let alert = &visible::alert(&redacted);
    let sev = alert.severity.as_str().to_uppercase();
    let fallback = mrkdwn_capped(
        &format!("[{sev}] {}: {}", alert.rule, alert.title),
        MAX_FALLBACK_CHARS,
        false,
    );
    let mut out = vec![header(&format!(
        "{} {sev} · {}",
        severity_emoji(alert.severity.as_str()),
        alert.title
    ))];
    if !alert.summary.trim().is_empty() {
        out.push(section(mrkdwn_capped(
            &alert.summary,
            MAX_SECTION_CHARS,
            false,
        )));
    }

    out.push(fields_section(alert));

    if !alert.metrics.is_empty() {
        let m: Vec<String> = alert
            .metrics
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let text = format!(
            "*Metrics*\n{}",
            mrkdwn_capped(&m.join("   "), MAX_SECTION_CHARS - 20, false)
        );
        out.push(section(text));
    }

    evidence(alert, &mut out);

    let (buttons, omitted) = link_buttons(alert);
    if !buttons.is_empty() {
        out.push(json!({"type": "actions", "elements": buttons}));
    }

    let mut ctx = format!(
        "logwarden · {} · id `{}`",
        mrkdwn_capped(alert.kind.as_str(), 100, false),
        mrkdwn_capped(&alert.id.replace('`', "'"), 200, false)
    );
    if !omitted.is_empty() {
        ctx.push_str(&format!(
            " · link omitted (unusable URL): {}",
            omitted.join(", ")
        ));
    }
    out.push(context(ctx));
    body(fallback, out)
}

/// The fields section: rule, function, log group, key, count, first and last
/// seen, account, log stream and requests, at most [`MAX_FIELDS`].
fn fields_section(alert: &Alert) -> Value {
    let mut fields = vec![field("Rule", &format!("{} ({})", alert.rule, alert.kind))];
    if let Some(f) = &alert.function {
        fields.push(field("Function", f));
    }
    fields.push(field("Log group", &alert.log_group));
    let key = if alert.key.is_empty() {
        "(per function)".to_string()
    } else {
        alert
            .key
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    fields.push(field("Key", &key));
    fields.push(field("Count", &alert.count.to_string()));
    fields.push(field("First seen", &alert.first_seen));
    fields.push(field("Last seen", &alert.last_seen));
    // The account name first (a person knows `payments-prod`, not its id),
    // with its region and team: one field, as a section holds ten at most.
    if let Some(mut v) = alert.account_label() {
        if let Some(r) = &alert.region {
            v.push('\n');
            v.push_str(r);
        }
        if let Some(t) = &alert.team {
            v.push_str("\nteam ");
            v.push_str(t);
        }
        fields.push(field("Account", &v));
    }
    if let Some(s) = &alert.log_stream {
        fields.push(field("Log stream", s));
    }
    if !alert.request_ids.is_empty() {
        let shown: Vec<&str> = alert
            .request_ids
            .iter()
            .take(3)
            .map(String::as_str)
            .collect();
        let more = alert.request_ids.len().saturating_sub(shown.len());
        let mut r = shown.join("\n");
        if more > 0 {
            r.push_str(&format!("\n(+{more} more)"));
        }
        fields.push(field("Requests", &r));
    }
    fields.truncate(MAX_FIELDS);
    json!({"type": "section", "fields": fields})
}

/// The evidence in code blocks, and a note of the lines not shown.
fn evidence(alert: &Alert, out: &mut Vec<Value>) {
    if !alert.evidence.is_empty() {
        let shown: Vec<&str> = alert
            .evidence
            .iter()
            .take(MAX_EVIDENCE)
            .map(String::as_str)
            .collect();
        out.extend(code_sections("Evidence", &shown));
        let more = alert.evidence.len().saturating_sub(shown.len());
        if more > 0 {
            out.push(context(format!("+{more} more evidence lines not shown")));
        }
    }
}

/// Buttons to the log stream and Logs Insights, and the labels of the links
/// left out because Slack would not accept their URL.
fn link_buttons(alert: &Alert) -> (Vec<Value>, Vec<&'static str>) {
    let mut buttons = Vec::new();
    let mut omitted = Vec::new();
    for (label, action, url) in [
        (
            "Open log stream",
            "open_log_stream",
            &alert.links.log_stream,
        ),
        ("Logs Insights", "open_logs_insights", &alert.links.insights),
    ] {
        if let Some(u) = url {
            match button(label, action, u) {
                Some(b) => buttons.push(b),
                None => omitted.push(label),
            }
        }
    }
    (buttons, omitted)
}

/// A CloudWatch alarm state change as SNS delivers it (the fields logwarden
/// shows; others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmNotification {
    /// Alarm name.
    pub alarm_name: String,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub new_state_value: String,
    /// Previous state.
    #[serde(default)]
    pub old_state_value: Option<String>,
    /// Why the state changed (CloudWatch's sentence).
    #[serde(default)]
    pub new_state_reason: Option<String>,
    /// Alarm description, when the alarm has one.
    #[serde(default)]
    pub alarm_description: Option<String>,
    /// When the state changed.
    #[serde(default)]
    pub state_change_time: Option<String>,
    /// Region, as CloudWatch names it for people (e.g. `US East (N. Virginia)`).
    #[serde(default)]
    pub region: Option<String>,
    /// Account id.
    #[serde(default, rename = "AWSAccountId")]
    pub aws_account_id: Option<String>,
    /// Alarm ARN (gives the region code for the console link).
    #[serde(default)]
    pub alarm_arn: Option<String>,
}

/// The webhook body for a CloudWatch alarm notification: fallback text
/// `logwarden alarm: <name> is <STATE> — <reason>`, a header, the reason, a
/// few fields and a button to the alarm in the console (when the ARN names
/// the region).
pub fn alarm_blocks(alarm: &AlarmNotification) -> Value {
    let reason = alarm.new_state_reason.as_deref().unwrap_or("").trim();
    let mut fb = format!(
        "logwarden alarm: {} is {}",
        alarm.alarm_name, alarm.new_state_value
    );
    if !reason.is_empty() {
        fb.push_str(" — ");
        fb.push_str(reason);
    }
    let fallback = mrkdwn_capped(&fb, MAX_FALLBACK_CHARS, false);
    let emoji = match alarm.new_state_value.as_str() {
        "ALARM" => ":rotating_light:",
        "OK" => ":white_check_mark:",
        _ => ":grey_question:",
    };
    let mut out = vec![header(&format!(
        "{emoji} Alarm {} is {}",
        alarm.alarm_name, alarm.new_state_value
    ))];
    let mut text = format!(
        "*{}* is *{}*",
        mrkdwn_capped(&alarm.alarm_name, 300, false),
        mrkdwn_capped(&alarm.new_state_value, 50, false)
    );
    if let Some(old) = alarm.old_state_value.as_deref().filter(|s| !s.is_empty()) {
        text.push_str(&format!(" (was {})", mrkdwn_capped(old, 50, false)));
    }
    if !reason.is_empty() {
        let room = MAX_SECTION_CHARS.saturating_sub(text.chars().count() + 1);
        text.push('\n');
        text.push_str(&mrkdwn_capped(reason, room, false));
    }
    out.push(section(text));
    if let Some(d) = alarm
        .alarm_description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        out.push(section(mrkdwn_capped(d, MAX_SECTION_CHARS, false)));
    }
    let mut fields = Vec::new();
    for (label, v) in [
        ("Changed at", &alarm.state_change_time),
        ("Region", &alarm.region),
        ("Account", &alarm.aws_account_id),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            fields.push(field(label, v));
        }
    }
    if !fields.is_empty() {
        out.push(json!({"type": "section", "fields": fields}));
    }
    if let Some(b) = alarm_console_url(alarm).and_then(|u| button("Open alarm", "open_alarm", &u)) {
        out.push(json!({"type": "actions", "elements": [b]}));
    }
    body(fallback, out)
}

/// `arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME` → the alarm's console page.
fn alarm_console_url(alarm: &AlarmNotification) -> Option<String> {
    let arn = alarm.alarm_arn.as_deref()?;
    let region = arn
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))?;
    let mut name = String::new();
    for b in alarm.alarm_name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    Some(format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{name}"
    ))
}

/// The webhook body for a message that is neither an alert nor an alarm
/// notification: the subject and the message, escaped, in a code block
/// (cut to Slack's limits with a note of the full length), so nothing on
/// the topic is dropped silently.
pub fn message_blocks(subject: Option<&str>, message: &str) -> Value {
    let subject = subject.map(|s| visible(&redact::redact(s), false).into_owned());
    let subject = subject.as_deref();
    let message = redact::redact(message);
    let message = visible(&message, true);
    let message: &str = &message;
    let fallback = mrkdwn_capped(
        &format!(
            "logwarden: unrecognised message on the alert topic{}",
            subject.map(|s| format!(": {s}")).unwrap_or_default()
        ),
        MAX_FALLBACK_CHARS,
        false,
    );
    let mut out = vec![header(
        ":grey_question: Unrecognised message on the alert topic",
    )];
    if let Some(s) = subject.filter(|s| !s.trim().is_empty()) {
        out.push(section(format!(
            "*Subject:* {}",
            mrkdwn_capped(s, MAX_SECTION_CHARS - 20, false)
        )));
    }
    out.extend(code_sections("Message", &[message]));
    let total = message.chars().count();
    if total > MAX_SECTION_CHARS / 4 {
        out.push(context(format!(
            "{total} characters in all; see the notifier's log for the full message"
        )));
    }
    body(fallback, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Links;
    use crate::detect::Key;
    use crate::sinks::slack::*;

    fn alert() -> Alert {
        Alert {
            id: "0123456789abcdef0123456789abcdef".into(),
            rule: "failed-auth-burst".into(),
            kind: "threshold".into(),
            severity: "high".into(),
            title: "Burst of failed authentications (203.0.113.7) in auth".into(),
            summary: "31 failed logins from 203.0.113.7 within 41 s.".into(),
            account: Some("123456789012".into()),
            log_group: "/aws/lambda/auth".into(),
            log_stream: Some("2026/11/22/[$LATEST]0123".into()),
            function: Some("auth".into()),
            key: Key::from([("source_ip".to_string(), "203.0.113.7".to_string())]),
            request_ids: vec!["r1".into(), "r2".into(), "r3".into(), "r4".into()],
            count: 31,
            first_seen: "2026-11-22T10:00:00.000Z".into(),
            last_seen: "2026-11-22T10:00:41.000Z".into(),
            metrics: [("duration_ms".to_string(), 30412.0)].into(),
            evidence: vec![
                "Failed password for root from 203.0.113.7".into(),
                "Failed password for admin from 203.0.113.7".into(),
            ],
            links: Links {
                log_stream: Some("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups".into()),
                insights: Some("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:logs-insights".into()),
            },
            status: crate::alert::AlertStatus::Firing,
            resolved_at: None,
            region: None,
            account_name: None,
            team: None,
            shadow: false,
        }
    }

    fn blocks_of<'a>(v: &'a Value, ty: &str) -> Vec<&'a Value> {
        v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == ty)
            .collect()
    }

    /// Every text a person sees, for escaping assertions.
    fn all_text(v: &Value) -> Vec<String> {
        let mut out = vec![];
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        if k == "text"
                            && let Some(s) = x.as_str()
                        {
                            out.push(s.to_string());
                        }
                        if k != "url" {
                            walk(x, out);
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(v, &mut out);
        out
    }

    /// Every limit this module promises, checked on any body.
    fn assert_within_limits(v: &Value) {
        let bl = v["blocks"].as_array().unwrap();
        assert!(
            !bl.is_empty() && bl.len() <= MAX_BLOCKS,
            "{} blocks",
            bl.len()
        );
        assert!(v["text"].as_str().unwrap().chars().count() <= MAX_FALLBACK_CHARS);
        for b in bl {
            match b["type"].as_str().unwrap() {
                "header" => {
                    let t = b["text"]["text"].as_str().unwrap();
                    assert!(t.chars().count() <= MAX_HEADER_CHARS, "header {}", t.len());
                    assert_eq!(b["text"]["type"], "plain_text");
                }
                "section" => {
                    if let Some(t) = b["text"]["text"].as_str() {
                        assert!(
                            t.chars().count() <= MAX_SECTION_CHARS,
                            "section {}",
                            t.chars().count()
                        );
                        assert!(!t.is_empty());
                    }
                    if let Some(fs) = b["fields"].as_array() {
                        assert!(fs.len() <= MAX_FIELDS);
                        for f in fs {
                            let t = f["text"].as_str().unwrap();
                            assert!(
                                t.chars().count() <= MAX_FIELD_CHARS,
                                "field {}",
                                t.chars().count()
                            );
                        }
                    }
                }
                "actions" => {
                    for e in b["elements"].as_array().unwrap() {
                        assert!(e["url"].as_str().unwrap().chars().count() <= MAX_BUTTON_URL_CHARS);
                    }
                }
                "context" => {
                    for e in b["elements"].as_array().unwrap() {
                        assert!(e["text"].as_str().unwrap().chars().count() <= MAX_SECTION_CHARS);
                    }
                }
                other => panic!("unexpected block type {other}"),
            }
        }
    }

    #[test]
    fn alert_renders_header_fields_evidence_buttons_and_fallback() {
        let v = blocks(&alert());
        assert_eq!(
            v["text"],
            "[HIGH] failed-auth-burst: Burst of failed authentications (203.0.113.7) in auth"
        );
        let bl = v["blocks"].as_array().unwrap();
        assert_eq!(bl[0]["type"], "header");
        assert_eq!(
            bl[0]["text"]["text"],
            ":red_circle: HIGH · Burst of failed authentications (203.0.113.7) in auth"
        );
        assert_eq!(
            bl[1]["text"]["text"],
            "31 failed logins from 203.0.113.7 within 41 s."
        );
        let fields: Vec<&str> = bl[2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Rule*\nfailed-auth-burst (threshold)",
                "*Function*\nauth",
                "*Log group*\n/aws/lambda/auth",
                "*Key*\nsource_ip = 203.0.113.7",
                "*Count*\n31",
                "*First seen*\n2026-11-22T10:00:00.000Z",
                "*Last seen*\n2026-11-22T10:00:41.000Z",
                "*Account*\n123456789012",
                "*Log stream*\n2026/11/22/[$LATEST]0123",
                "*Requests*\nr1\nr2\nr3\n(+1 more)",
            ]
        );
        assert_eq!(bl[3]["text"]["text"], "*Metrics*\nduration_ms = 30412");
        assert_eq!(
            bl[4]["text"]["text"],
            "*Evidence*\n```\nFailed password for root from 203.0.113.7\nFailed password for admin from 203.0.113.7\n```"
        );
        let actions = blocks_of(&v, "actions");
        let buttons = actions[0]["elements"].as_array().unwrap();
        assert_eq!(buttons.len(), 2);
        assert_eq!(buttons[0]["text"]["text"], "Open log stream");
        assert_eq!(
            buttons[0]["url"],
            alert().links.log_stream.unwrap().as_str()
        );
        assert_eq!(buttons[1]["text"]["text"], "Logs Insights");
        assert_eq!(buttons[1]["url"], alert().links.insights.unwrap().as_str());
        assert_ne!(buttons[0]["action_id"], buttons[1]["action_id"]);
        let ctx = blocks_of(&v, "context");
        assert_eq!(
            ctx[0]["elements"][0]["text"],
            "logwarden · threshold · id `0123456789abcdef0123456789abcdef`"
        );
        assert_within_limits(&v);
    }

    #[test]
    fn minimal_alert_has_no_empty_blocks() {
        let mut a = alert();
        a.summary.clear();
        a.function = None;
        a.account = None;
        a.log_stream = None;
        a.key = Key::new();
        a.request_ids.clear();
        a.metrics.clear();
        a.evidence.clear();
        a.links = Links::default();
        a.log_group = String::new();
        let v = blocks(&a);
        let types: Vec<&str> = v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["header", "section", "context"]);
        let fields = v["blocks"][1]["fields"].as_array().unwrap();
        assert_eq!(fields[1]["text"], "*Log group*\n—");
        assert_eq!(fields[2]["text"], "*Key*\n(per function)");
        assert_within_limits(&v);
    }

    #[test]
    fn log_content_cannot_mention_link_or_inject_entities() {
        let mut a = alert();
        let evil = "hi <!channel> <!here> <@U0123ABC> <https://evil.example|click> & AT&amp;T";
        a.title = evil.into();
        a.summary = evil.into();
        a.key = Key::from([("user".to_string(), evil.to_string())]);
        a.evidence = vec![evil.into()];
        a.log_stream = Some(evil.into());
        a.request_ids = vec![evil.into()];
        a.metrics = [(evil.to_string(), 1.0)].into();
        a.kind = evil.into();
        a.id = evil.into();
        let v = blocks(&a);
        for t in all_text(&v) {
            for bad in ["<!", "<@", "<http", "|click>"] {
                assert!(!t.contains(bad), "`{bad}` survived in {t:?}");
            }
            assert!(!t.contains('<') && !t.contains('>'), "{t:?}");
        }
        // mrkdwn texts carry entities; the plain-text header uses look-alikes.
        let ev = &blocks_of(&v, "section").last().unwrap()["text"]["text"];
        assert!(ev.as_str().unwrap().contains(
            "hi &lt;!channel&gt; &lt;!here&gt; &lt;@U0123ABC&gt; &lt;https://evil.example|click&gt; &amp; AT&amp;amp;T"
        ), "{ev}");
        assert!(
            v["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("‹!channel›"),
        );
        assert!(v["text"].as_str().unwrap().contains("&lt;!channel&gt;"));
    }

    #[test]
    fn evidence_cannot_close_the_code_block() {
        let mut a = alert();
        a.evidence = vec![
            "```\n<!channel> *bold* outside".into(),
            "````````".into(),
            "ends with `".into(),
        ];
        let v = blocks(&a);
        let ev = blocks_of(&v, "section")
            .into_iter()
            .map(|b| b["text"]["text"].as_str().unwrap_or(""))
            .find(|t| t.starts_with("*Evidence*"))
            .unwrap()
            .to_string();
        let inner = ev
            .strip_prefix("*Evidence*\n```\n")
            .unwrap()
            .strip_suffix("\n```")
            .unwrap();
        assert!(!inner.contains("``"), "{inner:?}");
        assert!(inner.contains("&lt;!channel&gt; *bold* outside"));
        assert_eq!(
            inner.matches('`').count(),
            3 + 8 + 1,
            "backticks kept, only split"
        );
    }

    #[test]
    fn huge_evidence_keys_and_links_stay_within_slack_limits() {
        let mut a = alert();
        // Escaping multiplies `<` by four: the cap must apply after escaping.
        a.evidence = (0..40)
            .map(|i| format!("{i} {}", "<".repeat(5_000)))
            .collect();
        a.key = (0..500)
            .map(|i| (format!("k{i}"), "&".repeat(100)))
            .collect();
        a.title = "T".repeat(1_000);
        a.summary = ">".repeat(10_000);
        a.request_ids = vec!["r".repeat(5_000)];
        a.log_group = "g".repeat(5_000);
        a.links.insights = Some(format!("https://example.com/?q={}", "x".repeat(5_000)));
        a.links.log_stream = Some("javascript:alert(1)".into());
        let v = blocks(&a);
        assert_within_limits(&v);
        let header = v["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), MAX_HEADER_CHARS);
        assert!(header.ends_with('…'));
        // No entity cut in half at a truncation point.
        for t in all_text(&v) {
            let t = t.trim_end_matches(['…', '`', '\n']);
            assert!(
                !t.ends_with("&am")
                    && !t.ends_with("&l")
                    && !t.ends_with("&g")
                    && !t.ends_with('&'),
                "{t:?}"
            );
        }
        // Only the contract's five evidence lines are shown, and that is said.
        let texts = all_text(&v);
        assert!(
            texts
                .iter()
                .any(|t| t == "+35 more evidence lines not shown")
        );
        assert!(
            !texts.iter().any(|t| t.contains("\n5 &lt;")),
            "line 5 must not be shown"
        );
        // Unusable URLs: no button, and a note instead.
        assert!(blocks_of(&v, "actions").is_empty());
        assert!(
            texts
                .iter()
                .any(|t| t.contains("link omitted (unusable URL): Open log stream, Logs Insights"))
        );
    }

    #[test]
    fn short_evidence_lines_share_one_block_long_ones_split() {
        let mut a = alert();
        a.evidence = vec!["a".repeat(1_400), "b".repeat(1_400), "c".repeat(1_400)];
        let v = blocks(&a);
        let ev: Vec<&str> = blocks_of(&v, "section")
            .into_iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .filter(|t| t.starts_with("*Evidence*"))
            .collect();
        assert_eq!(ev.len(), 2);
        assert!(ev[0].contains(&"a".repeat(1_400)) && ev[0].contains(&"b".repeat(1_400)));
        assert!(ev[1].contains(&"c".repeat(1_400)));
        assert_within_limits(&v);
    }

    fn alarm() -> AlarmNotification {
        serde_json::from_value(json!({
            "AlarmName": "logwarden-detector-errors",
            "AlarmDescription": null,
            "AWSAccountId": "123456789012",
            "NewStateValue": "ALARM",
            "NewStateReason": "Threshold Crossed: 1 datapoint [3.0 (22/11/26 10:00:00)] was greater than the threshold (0.0).",
            "StateChangeTime": "2026-11-22T10:01:00.000+0000",
            "Region": "US East (N. Virginia)",
            "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:logwarden-detector-errors",
            "OldStateValue": "OK",
            "Trigger": {"MetricName": "Errors"}
        }))
        .unwrap()
    }

    #[test]
    fn alarm_renders_name_state_reason_and_console_button() {
        let v = alarm_blocks(&alarm());
        assert_eq!(
            v["text"],
            "logwarden alarm: logwarden-detector-errors is ALARM — Threshold Crossed: 1 datapoint [3.0 (22/11/26 10:00:00)] was greater than the threshold (0.0)."
        );
        assert_eq!(
            v["blocks"][0]["text"]["text"],
            ":rotating_light: Alarm logwarden-detector-errors is ALARM"
        );
        assert!(
            v["blocks"][1]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("*logwarden-detector-errors* is *ALARM* (was OK)\nThreshold Crossed")
        );
        let actions = blocks_of(&v, "actions");
        assert_eq!(
            actions[0]["elements"][0]["url"],
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/logwarden-detector-errors"
        );
        assert_within_limits(&v);
    }

    #[test]
    fn alarm_text_is_escaped_and_capped() {
        let mut a = alarm();
        a.alarm_name = "<!channel> x".into();
        a.new_state_reason = Some("<@U1> ".repeat(2_000));
        a.alarm_arn = Some("not an arn".into());
        let v = alarm_blocks(&a);
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .starts_with("logwarden alarm: &lt;!channel&gt; x is ALARM")
        );
        for t in all_text(&v) {
            assert!(!t.contains('<'), "{t:?}");
        }
        assert!(blocks_of(&v, "actions").is_empty());
        assert_within_limits(&v);
    }

    #[test]
    fn unknown_message_is_escaped_in_a_code_block() {
        let v = message_blocks(Some("hello <!here>"), "plain ``` text <@U1> &");
        assert_eq!(
            v["text"],
            "logwarden: unrecognised message on the alert topic: hello &lt;!here&gt;"
        );
        let code = v["blocks"][2]["text"]["text"].as_str().unwrap();
        assert_eq!(
            code,
            "*Message*\n```\nplain `\u{200B}`\u{200B}` text &lt;@U1&gt; &amp;\n```"
        );
        let big = message_blocks(None, &"<".repeat(100_000));
        assert_within_limits(&big);
        assert!(
            all_text(&big)
                .iter()
                .any(|t| t.starts_with("100000 characters in all"))
        );
    }
}
