//! The text rendering for people: the four W's first, evidence after.

use std::fmt::Write as _;

use super::Alert;

/// Render one alert as a few lines of text; ANSI colour only when `color`.
/// Control sequences from log content are shown as escapes
/// ([`super::visible`]): a log line must not drive the reader's terminal.
pub fn render(a: &Alert, color: bool) -> String {
    let a = &super::visible::alert(a);
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let sev_code = match a.severity.as_str() {
        "critical" => "1;97;41",
        "high" => "1;31",
        "medium" => "1;33",
        _ => "1;36",
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}  {}",
        paint(
            sev_code,
            &format!("[{}]", a.severity.as_str().to_uppercase())
        ),
        paint("1", &a.rule),
        a.title
    );
    let span = if a.first_seen == a.last_seen {
        a.first_seen.clone()
    } else {
        format!("{} → {}", a.first_seen, a.last_seen)
    };
    let _ = writeln!(out, "  when   {span}  (count {})", a.count);
    let mut wher = Vec::new();
    if let Some(acc) = a.account_label() {
        wher.push(format!("account {acc}"));
    }
    if let Some(r) = &a.region {
        wher.push(format!("region {r}"));
    }
    if let Some(t) = &a.team {
        wher.push(format!("team {t}"));
    }
    wher.push(a.log_group.clone());
    if let Some(s) = &a.log_stream {
        wher.push(s.clone());
    }
    if let Some(f) = &a.function {
        wher.push(format!("function {f}"));
    }
    let _ = writeln!(out, "  where  {}", wher.join("  "));
    let mut who: Vec<String> = a.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !a.request_ids.is_empty() {
        let shown: Vec<&str> = a.request_ids.iter().take(3).map(String::as_str).collect();
        let more = a.request_ids.len().saturating_sub(3);
        let tail = if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        };
        who.push(format!("requests {}{tail}", shown.join(", ")));
    }
    if !who.is_empty() {
        let _ = writeln!(out, "  who    {}", who.join("  "));
    }
    if !a.summary.is_empty() {
        let _ = writeln!(out, "  what   {}", a.summary);
    }
    if !a.metrics.is_empty() {
        let m: Vec<String> = a.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "  metrics {}", m.join("  "));
    }
    for e in &a.evidence {
        let first = e.lines().next().unwrap_or("");
        let _ = writeln!(out, "  {} {}", paint("2", "|"), first);
    }
    if let Some(l) = &a.links.log_stream {
        let _ = writeln!(out, "  logs   {l}");
    }
    out
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
            title: "Burst of failed authentications from 203.0.113.7".into(),
            summary: "12 failed logins.".into(),
            account: Some("123456789012".into()),
            log_group: "/aws/lambda/auth".into(),
            log_stream: Some("s1".into()),
            function: Some("auth".into()),
            key: Key::from([("source_ip".to_string(), "203.0.113.7".to_string())]),
            request_ids: vec!["r1".into()],
            count: 12,
            first_seen: "2026-11-22T10:00:00.000Z".into(),
            last_seen: "2026-11-22T10:00:11.000Z".into(),
            metrics: Default::default(),
            evidence: vec!["Failed password for root from 203.0.113.7".into()],
            links: Links {
                log_stream: Some("https://x".into()),
                insights: None,
            },
            status: crate::alert::AlertStatus::Firing,
            resolved_at: None,
            region: None,
            account_name: None,
            team: None,
            shadow: false,
        }
    }

    #[test]
    fn plain_text_answers_the_four_ws_without_colour() {
        let t = render(&alert(), false);
        assert!(
            t.starts_with("[HIGH] failed-auth-burst  Burst of failed"),
            "{t}"
        );
        assert!(
            t.contains("when   2026-11-22T10:00:00.000Z → 2026-11-22T10:00:11.000Z  (count 12)")
        );
        assert!(t.contains("where  account 123456789012  /aws/lambda/auth  s1  function auth"));
        assert!(t.contains("who    source_ip=203.0.113.7  requests r1"));
        let named = Alert {
            region: Some("eu-west-1".into()),
            account_name: Some("payments-prod".into()),
            team: Some("payments".into()),
            ..alert()
        };
        let t = render(&named, false);
        assert!(
            t.contains("where  account payments-prod (123456789012)  region eu-west-1  team payments  /aws/lambda/auth"),
            "{t}"
        );
        assert!(t.contains("| Failed password"));
        assert!(!t.contains('\x1b'));
    }

    #[test]
    fn colour_only_when_asked() {
        assert!(render(&alert(), true).contains("\x1b[1;31m[HIGH]"));
    }
}
