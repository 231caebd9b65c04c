//! CloudWatch console links: the log stream around the incident, and a Logs
//! Insights query over the same time range.
//!
//! The console encodes a link's parts twice over (`/` is `$252F` in the
//! fragment, `*2F` in an Insights query), so redacting a finished link no
//! longer finds a secret in a name: the characters around it are gone.
//! [`incident`] therefore builds links from redacted values only, and
//! [`decodings`] lets redaction check a finished link the way the console
//! will read it.

use std::borrow::Cow;

use super::Links;
use super::redact::{self, RedactOptions};

/// How far before the first event and after the last a link's time range reaches.
pub const MARGIN_MS: i64 = 60_000;

/// Most rounds of decoding [`decodings`] undoes; a link still encoded after
/// them is not one this module built.
pub const MAX_DECODING_ROUNDS: usize = 8;

/// What redaction leaves in place of a secret.
const REDACTED: &str = "[REDACTED:";

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
/// fragment) encodes values as percent-encoding with `*` for `%`. `~` is
/// unreserved for percent-encoding but separates the state's parts, so it is
/// encoded too: a value cannot end itself and add a part (another source).
fn insights_value(s: &str) -> String {
    percent(s).replace('%', "*").replace('~', "*7E")
}

/// `value` when a link may name it: unchanged by redaction with `opts` and
/// no redaction mark in it. A link naming a redacted value would lead
/// nowhere (no log group or stream has that name, no line holds that text).
fn nameable<'a>(value: &'a str, opts: &RedactOptions) -> Option<&'a str> {
    if value.contains(REDACTED) || redact::redact_with(value, opts) != value {
        return None;
    }
    Some(value)
}

/// The links of an incident in `log_group` and `log_stream` from `start_ms`
/// to `end_ms`, its Insights query filtered by `needle`. None of them names
/// a value that held a secret (by redaction with `opts`): without the log
/// group there are no links, without the stream no stream link, and
/// without the needle the query is not filtered.
pub fn incident(
    region: &str,
    log_group: &str,
    log_stream: &str,
    needle: Option<&str>,
    (start_ms, end_ms): (i64, i64),
    opts: &RedactOptions,
) -> Links {
    let group = nameable(log_group, opts);
    let stream = nameable(log_stream, opts);
    let needle = needle.and_then(|n| nameable(n, opts));
    Links {
        log_stream: group
            .zip(stream)
            .map(|(g, s)| log_stream_link(region, g, s, start_ms, end_ms)),
        insights: group.map(|g| insights_link(region, g, needle, start_ms, end_ms)),
    }
}

/// [`insights_link`] without a filter, or `None` when the log group held a
/// secret (as [`incident`]).
pub fn group_insights(
    region: &str,
    log_group: &str,
    (start_ms, end_ms): (i64, i64),
    opts: &RedactOptions,
) -> Option<String> {
    nameable(log_group, opts).map(|g| insights_link(region, g, None, start_ms, end_ms))
}

/// The numbers a stream link of an incident from `first_ms` to `last_ms`
/// carries as its time range (`start=…&end=…`): redaction of a decoded link
/// must not take them for card numbers.
pub fn time_range(first_ms: i64, last_ms: i64) -> [i64; 2] {
    [first_ms - MARGIN_MS, last_ms + MARGIN_MS]
}

/// `link`, then each text it turns into as the console reads it, one round
/// of decoding at a time (`$XX` in the fragment and `*XX` in an Insights
/// query are `%XX`; then percent-decoding), until a round changes nothing.
/// `None` when [`MAX_DECODING_ROUNDS`] are not enough.
pub fn decodings(link: &str) -> Option<Vec<String>> {
    let mut out = vec![link.to_string()];
    for _ in 0..=MAX_DECODING_ROUNDS {
        let last = out.last()?;
        match decode_round(last) {
            Cow::Borrowed(_) => return Some(out),
            Cow::Owned(next) => out.push(next),
        }
    }
    None
}

/// One round of [`decodings`]; invalid UTF-8 becomes U+FFFD.
fn decode_round(s: &str) -> Cow<'_, str> {
    let hex = |b: Option<&u8>| b.and_then(|&c| (c as char).to_digit(16));
    let b = s.as_bytes();
    if !b.windows(3).any(|w| {
        matches!(w[0], b'$' | b'*' | b'%') && hex(w.get(1)).is_some() && hex(w.get(2)).is_some()
    }) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if matches!(c, b'$' | b'*' | b'%')
            && let (Some(h), Some(l)) = (hex(b.get(i + 1)), hex(b.get(i + 2)))
        {
            // Two hex digits: at most 255.
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
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
        start_ms - MARGIN_MS,
        end_ms + MARGIN_MS
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
    let start = crate::time::rfc3339(start_ms - MARGIN_MS);
    let end = crate::time::rfc3339(end_ms + MARGIN_MS);
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

/// The IAM Identity Center access portal that links go through, so that
/// one click signs a responder into the alert's account with `role` and
/// lands on the console page: `URL/#/console?account_id=ID&role_name=ROLE&destination=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPortal {
    url: String,
    role: String,
}

impl AccessPortal {
    /// A portal at `url` (an `https://` URL without query, fragment or
    /// credentials, e.g. `https://d-1234567890.awsapps.com/start`) signing in
    /// with the permission set's role `role` (IAM role name characters:
    /// letters, digits and `+=,.@_-`, at most 64).
    ///
    /// # Errors
    /// Which of the two is wrong, and why.
    pub fn new(url: &str, role: &str) -> Result<AccessPortal, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("access portal URL `{url}` must start with https://"))?;
        let rest = rest.trim_end_matches('/');
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        let path_ok = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
        if !host_ok || !path_ok {
            return Err(format!(
                "access portal URL `{url}` must be https://HOST[/PATH] (no query, fragment, port or credentials)"
            ));
        }
        let role_ok = (1..=64).contains(&role.len())
            && role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
        if !role_ok {
            return Err(format!(
                "access role `{role}` is not an IAM role name (1-64 of letters, digits and +=,.@_-)"
            ));
        }
        Ok(AccessPortal {
            url: format!("https://{rest}"),
            role: role.to_string(),
        })
    }

    /// `console` through the portal into `account`; `None` when `account` is
    /// not an account id (12 digits), so the link stays direct.
    pub fn wrap(&self, account: &str, console: &str) -> Option<String> {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(format!(
            "{}/#/console?account_id={account}&role_name={}&destination={}",
            self.url,
            percent(&self.role),
            percent(console)
        ))
    }

    /// Both links of an incident through the portal into `account` (each
    /// left direct when it cannot go through, see [`AccessPortal::wrap`]).
    pub fn links(&self, account: Option<&str>, links: Links) -> Links {
        let Some(account) = account else { return links };
        let via = |l: Option<String>| l.map(|l| self.wrap(account, &l).unwrap_or(l));
        Links {
            log_stream: via(links.log_stream),
            insights: via(links.insights),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portal_url_and_role_are_checked() {
        assert!(
            AccessPortal::new("https://d-1234567890.awsapps.com/start/", "SecurityAudit").is_ok()
        );
        for bad in [
            "http://d-1.awsapps.com/start",
            "https://evil.example@d-1.awsapps.com/start",
            "https://d-1.awsapps.com/start?x=1",
            "https://d-1.awsapps.com/start#/x",
            "https://d-1.awsapps.com:8443/start",
            "https:// d-1.awsapps.com",
            "https://",
        ] {
            let e = AccessPortal::new(bad, "R").unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        for bad in ["", "a b", "role&x=1", "r/x", &"r".repeat(65)] {
            let e = AccessPortal::new("https://d-1.awsapps.com/start", bad).unwrap_err();
            assert!(e.starts_with("access role"), "{e}");
        }
    }

    #[test]
    fn portal_links_sign_into_the_account_and_encode_the_destination() {
        let p = AccessPortal::new("https://d-1234567890.awsapps.com/start/", "Sec.Read+1").unwrap();
        let console = log_stream_link("eu-west-1", "/aws/lambda/a&b", "s#1", 0, 1);
        let l = p.wrap("123456789012", &console).unwrap();
        let (head, dest) = l.split_once("&destination=").unwrap();
        assert_eq!(
            head,
            "https://d-1234567890.awsapps.com/start/#/console?account_id=123456789012&role_name=Sec.Read%2B1"
        );
        // One parameter: nothing of the console URL is left unencoded.
        assert!(!dest.contains(['&', '#', '?', '/', '=']), "{dest}");
        assert_eq!(decodings(dest).unwrap()[1], console);
        assert!(decodings(&l).is_some());
        // An account that is not an id (a hostile owner) keeps the link direct.
        assert_eq!(p.wrap("1234&x=1", &console), None);
        let links = p.links(
            Some("123456789012"),
            Links {
                log_stream: Some(console.clone()),
                insights: None,
            },
        );
        assert_eq!(links.log_stream.as_deref(), Some(l.as_str()));
        assert_eq!(links.insights, None);
    }

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

    #[test]
    fn an_insights_value_cannot_end_itself_and_add_a_source() {
        let l = insights_link("us-east-1", "/g", Some("x~source~(~'/secret-group)"), 0, 0);
        assert_eq!(l.matches("~source~").count(), 1, "{l}");
        assert!(
            l.contains("x*7Esource*7E*28*7E*27*2Fsecret-group*29"),
            "{l}"
        );
    }

    #[test]
    fn incident_links_never_name_a_value_that_held_a_secret() {
        let o = RedactOptions::default();
        let group = "/aws/lambda/f";
        let stream = "2026/11/22/[$LATEST]abc";
        let range = (120_000, 180_000);
        let clean = incident("eu-west-1", group, stream, Some("203.0.113.7"), range, &o);
        assert_eq!(
            clean.log_stream.as_deref(),
            Some(log_stream_link("eu-west-1", group, stream, 120_000, 180_000).as_str())
        );
        assert_eq!(
            clean.insights.as_deref(),
            Some(insights_link("eu-west-1", group, Some("203.0.113.7"), 120_000, 180_000).as_str())
        );
        // Raw or already redacted, a secret in the group leaves no link.
        for g in [
            "/aws/lambda/password=hunter22",
            "/aws/lambda/[REDACTED:password]",
        ] {
            let l = incident("eu-west-1", g, stream, None, range, &o);
            assert_eq!(l, Links::default(), "{g}");
        }
        let l = incident(
            "eu-west-1",
            group,
            "s/AKIAIOSFODNN7EXAMPLE",
            None,
            range,
            &o,
        );
        assert_eq!(l.log_stream, None);
        assert_eq!(
            l.insights.as_deref(),
            Some(insights_link("eu-west-1", group, None, 120_000, 180_000).as_str())
        );
        let l = incident("eu-west-1", group, stream, Some("token=abc123"), range, &o);
        assert!(l.log_stream.is_some());
        assert!(!l.insights.unwrap_or_default().contains("filter"));
        // An address is nameable unless emails are redacted.
        let mail = Some("alice@example.com");
        let kept = incident("eu-west-1", group, stream, mail, range, &o);
        assert!(
            kept.insights
                .unwrap_or_default()
                .contains("alice*40example.com")
        );
        let on = RedactOptions { emails: true };
        let gone = incident("eu-west-1", group, stream, mail, range, &on);
        assert!(!gone.insights.unwrap_or_default().contains("filter"));
        assert_eq!(
            group_insights("eu-west-1", "/aws/lambda/password=x", range, &o),
            None
        );
        assert_eq!(
            group_insights("eu-west-1", group, range, &o).as_deref(),
            Some(insights_link("eu-west-1", group, None, 120_000, 180_000).as_str())
        );
    }

    #[test]
    fn decodings_undo_each_console_encoding_one_round_at_a_time() {
        let l = log_stream_link("us-east-1", "/g", "[$LATEST]pass word=x", 60_000, 60_000);
        let d = decodings(&l).unwrap();
        assert_eq!(d.len(), 3, "{d:?}");
        assert_eq!(d[0], l);
        assert!(
            d[1].ends_with(
                "#logsV2:log-groups/log-group/%2Fg/log-events/%5B%24LATEST%5Dpass%20word%3Dx?start=0&end=120000"
            ),
            "{}",
            d[1]
        );
        assert!(
            d[2].ends_with(
                "#logsV2:log-groups/log-group//g/log-events/[$LATEST]pass word=x?start=0&end=120000"
            ),
            "{}",
            d[2]
        );
        let q = insights_link("us-east-1", "/g", Some("a=b"), 0, 0);
        let d = decodings(&q).unwrap();
        assert!(
            d.last()
                .unwrap()
                .contains(r#"filter @message like "a=b" | sort"#),
            "{d:?}"
        );
        assert_eq!(decodings("plain").unwrap(), ["plain"]);
        // Invalid UTF-8 once decoded is shown, not an error.
        assert_eq!(decodings("%FF").unwrap()[1], "\u{fffd}");
        // Encoded deeper than any link this module builds: no answer.
        let mut deep = "=".to_string();
        for _ in 0..=MAX_DECODING_ROUNDS {
            deep = percent(&deep);
        }
        assert_eq!(decodings(&deep), None);
        deep = decode_round(&deep).into_owned();
        assert!(decodings(&deep).is_some());
    }
}
