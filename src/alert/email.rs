//! The email rendering: plain text a person reads on a phone, and a subject
//! line SNS accepts (under 100 characters, one line).

use std::fmt::Write as _;

use super::Alert;
use super::visible::visible;

/// Longest subject SNS accepts for email (it must be under 100 characters).
pub const MAX_SUBJECT_CHARS: usize = 99;

/// `[HIGH] <title>` (a resolution: `[RESOLVED] <title>`), one line, at most
/// [`MAX_SUBJECT_CHARS`] characters. Line breaks and other controls in the
/// title are shown as escapes (`\r\n`), so a log line cannot add a header or
/// a line to the subject.
pub fn subject(a: &Alert) -> String {
    let tag = if a.status.is_resolved() {
        "RESOLVED".to_string()
    } else {
        visible(&a.severity.as_str().to_uppercase(), false).into_owned()
    };
    let raw = format!("[{tag}] {}", visible(&a.title, false));
    let one_line: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    super::truncate_chars(&one_line, MAX_SUBJECT_CHARS)
}

/// The body: the four W's first, then evidence, then where to look.
/// `region` completes "where" when the alert names none (an alert from
/// outside logwarden, or from a version before alerts carried it).
/// Control sequences from log content are shown as escapes.
pub fn body(a: &Alert, region: &str) -> String {
    let a = &super::visible::alert(a);
    if a.status.is_resolved() {
        return resolved_body(a, region);
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}", subject(a));
    let _ = writeln!(out);
    let span = if a.first_seen == a.last_seen {
        a.first_seen.clone()
    } else {
        format!("{} to {}", a.first_seen, a.last_seen)
    };
    let _ = writeln!(out, "WHEN   {span}");
    let _ = writeln!(out, "       count {}", a.count);
    let account = a
        .account_label()
        .unwrap_or_else(|| "unknown account".to_string());
    let region = a.region.as_deref().unwrap_or(region);
    let team = a
        .team
        .as_deref()
        .map(|t| format!(", team {t}"))
        .unwrap_or_default();
    let _ = writeln!(out, "WHERE  account {account}, region {region}{team}");
    let _ = writeln!(out, "       log group {}", a.log_group);
    if let Some(s) = &a.log_stream {
        let _ = writeln!(out, "       log stream {s}");
    }
    if let Some(f) = &a.function {
        let _ = writeln!(out, "       function {f}");
    }
    let mut who: Vec<String> = a.key.iter().map(|(k, v)| format!("{k} {v}")).collect();
    if !a.request_ids.is_empty() {
        let shown: Vec<&str> = a.request_ids.iter().take(5).map(String::as_str).collect();
        let more = a.request_ids.len().saturating_sub(5);
        let tail = if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        };
        who.push(format!("request {}{tail}", shown.join(", ")));
    }
    for (i, w) in who.iter().enumerate() {
        let _ = writeln!(out, "{}{w}", if i == 0 { "WHO    " } else { "       " });
    }
    if !a.summary.is_empty() {
        let _ = writeln!(out, "WHAT   {}", a.summary);
    }
    if !a.metrics.is_empty() {
        let m: Vec<String> = a.metrics.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "       {}", m.join(", "));
    }
    if !a.evidence.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Evidence:");
        for e in &a.evidence {
            for line in e.lines() {
                let _ = writeln!(out, "  > {}", line.replace('\t', "  "));
            }
        }
    }
    if let Some(l) = &a.links.log_stream {
        let _ = writeln!(out);
        let _ = writeln!(out, "Log stream:");
        let _ = writeln!(out, "{l}");
    }
    if let Some(l) = &a.links.insights {
        let _ = writeln!(out);
        let _ = writeln!(out, "Logs Insights:");
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "rule {} ({}), alert id {}", a.rule, a.kind, a.id);
    out
}

/// A resolution's body: short, it closes an incident the reader has seen.
/// What cleared, when, the incident's span and count, where, then the links.
/// `a` is already made visible.
fn resolved_body(a: &Alert, region: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", subject(a));
    let _ = writeln!(out);
    let resolved = a.resolved_at.as_deref().unwrap_or("(time not given)");
    let _ = writeln!(out, "RESOLVED  {resolved}");
    let _ = writeln!(out, "RULE      {} ({}, {})", a.rule, a.kind, a.severity);
    let key: Vec<String> = a.key.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let key = if key.is_empty() {
        "(per function)".to_string()
    } else {
        key.join(", ")
    };
    let _ = writeln!(out, "KEY       {key}");
    let _ = writeln!(out, "SEEN      {} to {}", a.first_seen, a.last_seen);
    let _ = writeln!(out, "COUNT     {}", a.count);
    let account = a.account.as_deref().unwrap_or("unknown account");
    let _ = writeln!(out, "WHERE     account {account}, region {region}");
    let _ = writeln!(out, "          log group {}", a.log_group);
    for (label, link) in [
        ("Log stream", &a.links.log_stream),
        ("Logs Insights", &a.links.insights),
    ] {
        if let Some(l) = link {
            let _ = writeln!(out);
            let _ = writeln!(out, "{label}:");
            let _ = writeln!(out, "{l}");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "alert id {} (the firing alert's id)", a.id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Links;
    use crate::detect::Key;

    fn alert(title: &str) -> Alert {
        Alert {
            id: "0123456789abcdef0123456789abcdef".into(),
            rule: "invocation-timeout".into(),
            kind: "failure".into(),
            severity: "high".into(),
            title: title.into(),
            summary: "1 failed invocation(s).".into(),
            account: Some("123456789012".into()),
            log_group: "/aws/lambda/f".into(),
            log_stream: Some("s".into()),
            function: Some("f".into()),
            key: Key::new(),
            request_ids: vec!["r1".into()],
            count: 1,
            first_seen: "2026-11-22T10:00:00.000Z".into(),
            last_seen: "2026-11-22T10:00:00.000Z".into(),
            metrics: Default::default(),
            evidence: vec!["Task timed out after 3.00 seconds".into()],
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
    fn subject_is_one_short_line() {
        let s = subject(&alert(&format!("evil\r\nBcc: x {}", "y".repeat(300))));
        assert!(s.chars().count() <= MAX_SUBJECT_CHARS);
        assert!(!s.chars().any(char::is_control), "{s:?}");
        assert!(s.starts_with("[HIGH] evil\\r\\nBcc: x yyy"), "{s}");
    }

    #[test]
    fn body_leads_with_the_four_ws() {
        let b = body(&alert("Invocation timed out in f"), "eu-west-1");
        let when = b.find("WHEN").unwrap();
        let wher = b
            .find("WHERE  account 123456789012, region eu-west-1")
            .unwrap();
        let who = b.find("WHO    request r1").unwrap();
        let what = b.find("WHAT").unwrap();
        assert!(when < wher && wher < who && who < what, "{b}");
        assert!(b.contains("  > Task timed out after 3.00 seconds"));
    }

    fn resolved(title: &str) -> Alert {
        let mut a = alert(title);
        a.status = crate::alert::AlertStatus::Resolved;
        a.resolved_at = Some("2026-11-22T10:12:00.000Z".into());
        a.last_seen = "2026-11-22T10:02:00.000Z".into();
        a.count = 7;
        a.key = Key::from([("source_ip".to_string(), "203.0.113.7\r\nBcc: x".to_string())]);
        a.links.log_stream = Some("https://console.aws.amazon.com/x".into());
        a
    }

    #[test]
    fn a_resolution_has_its_own_one_line_subject_and_a_short_body() {
        let s = subject(&resolved(&format!("evil\r\nBcc: x {}", "y".repeat(300))));
        assert!(s.starts_with("[RESOLVED] evil\\r\\nBcc: x yyy"), "{s}");
        assert!(s.chars().count() <= MAX_SUBJECT_CHARS);
        assert!(!s.chars().any(char::is_control), "{s:?}");
        let b = body(&resolved("Invocation timed out in f"), "eu-west-1");
        assert!(
            b.starts_with("[RESOLVED] Invocation timed out in f\n\n"),
            "{b}"
        );
        for want in [
            "RESOLVED  2026-11-22T10:12:00.000Z\n",
            "RULE      invocation-timeout (failure, high)\n",
            "KEY       source_ip 203.0.113.7\\r\\nBcc: x\n",
            "SEEN      2026-11-22T10:00:00.000Z to 2026-11-22T10:02:00.000Z\n",
            "COUNT     7\n",
            "WHERE     account 123456789012, region eu-west-1\n",
            "Log stream:\nhttps://console.aws.amazon.com/x\n",
            "alert id 0123456789abcdef0123456789abcdef",
        ] {
            assert!(b.contains(want), "{want:?} not in\n{b}");
        }
        assert!(!b.contains("Evidence"), "a resolution is short: {b}");
        // A firing alert with the same fields still renders as before.
        let mut firing = resolved("t");
        firing.status = crate::alert::AlertStatus::Firing;
        assert!(body(&firing, "r").starts_with("[HIGH] t\n\nWHEN"));
    }
}
