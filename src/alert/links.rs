//! CloudWatch console links: the log stream around the incident, and a Logs
//! Insights query over the same time range.

/// The console's fragment encoding: percent-encode, then `%` → `$25`.
fn console_component(s: &str) -> String {
    percent(s).replace('%', "$25")
}

/// RFC 3986 unreserved characters stay; everything else is %XX.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Insights' rison-like query state (`~(key~'value…)`, left as is in the
/// fragment) encodes values as percent-encoding with `*` for `%`.
fn insights_value(s: &str) -> String {
    percent(s).replace('%', "*")
}

/// Link to `log_stream` of `log_group`, from a minute before `start_ms` to a minute after `end_ms`.
pub fn log_stream_link(
    region: &str,
    log_group: &str,
    log_stream: &str,
    start_ms: i64,
    end_ms: i64,
) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}$3Fstart$3D{}$26end$3D{}",
        console_component(log_group),
        console_component(log_stream),
        start_ms - 60_000,
        end_ms + 60_000
    )
}

/// Link to a Logs Insights query over `log_group`, filtered by `needle` when given.
pub fn insights_link(
    region: &str,
    log_group: &str,
    needle: Option<&str>,
    start_ms: i64,
    end_ms: i64,
) -> String {
    let filter = needle
        .map(|n| format!(" | filter @message like \"{}\"", n.replace('"', "")))
        .unwrap_or_default();
    let query = format!(
        "fields @timestamp, @logStream, @message{filter} | sort @timestamp asc | limit 200"
    );
    let start = crate::time::rfc3339(start_ms - 60_000);
    let end = crate::time::rfc3339(end_ms + 60_000);
    let detail = format!(
        "~(end~'{}~start~'{}~timeType~'ABSOLUTE~tz~'UTC~editorString~'{}~source~(~'{}))",
        insights_value(&end),
        insights_value(&start),
        insights_value(&query),
        insights_value(log_group)
    );
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:logs-insights$3FqueryDetail$3D{detail}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_link_escapes_lambda_stream_names() {
        let l = log_stream_link(
            "eu-west-1",
            "/aws/lambda/checkout",
            "2026/11/22/[$LATEST]abc",
            120_000,
            180_000,
        );
        assert!(l.starts_with("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Flambda$252Fcheckout/log-events/2026$252F11$252F22$252F$255B$2524LATEST$255Dabc"), "{l}");
        assert!(l.ends_with("$3Fstart$3D60000$26end$3D240000"), "{l}");
        assert!(!l.contains(' ') && !l.contains('['));
    }

    #[test]
    fn insights_link_names_group_and_range() {
        let l = insights_link("us-east-1", "/aws/lambda/f", Some("203.0.113.7"), 0, 0);
        assert!(l.contains("logs-insights$3FqueryDetail$3D"));
        assert!(l.contains("203.0.113.7"));
        assert!(
            l.contains("$3D~(end~'2026") || l.contains("$3D~(end~'1970"),
            "{l}"
        );
        assert!(l.contains("~source~(~'*2Faws*2Flambda*2Ff))"), "{l}");
        assert!(!l.contains(' ') && !l.contains('"'));
    }
}
