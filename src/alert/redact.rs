//! Secret redaction for everything an alert carries out of the account.
//!
//! Log lines are attacker- and developer-controlled: they leak credentials.
//! Anything that looks like one is replaced by `[REDACTED:<kind>]` before it
//! reaches stdout, SNS or Slack. [`alert`] applies it to every field of an
//! alert that can hold log content; the engine calls it once, where an alert
//! is finished, so every sink sees the same redacted alert. A cheap
//! case-insensitive literal pre-check skips the regexes for lines that hold
//! none of the trigger substrings.

use std::borrow::Cow;

use crate::detect::secrets::{PATTERNS, compiled, kind_may_match, luhn};
pub use crate::detect::secrets::{SecretFinder, secret_kinds, secrets_in};

use super::Alert;

/// What to redact beyond the secrets that are always redacted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedactOptions {
    /// Also redact email addresses (`[REDACTED:email]`). Off by default: an
    /// address is often what a person needs to act on an alert.
    pub emails: bool,
}

impl RedactOptions {
    /// The options from `LOGWARDEN_REDACT_EMAILS` (`true`/`false`, also
    /// `1`/`0`, `yes`/`no`; absent = false), for the Lambda functions.
    pub fn from_env() -> Result<RedactOptions, String> {
        RedactOptions::from_lookup(|n| std::env::var(n).ok())
    }

    /// [`RedactOptions::from_env`] with the variables read through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<RedactOptions, String> {
        let emails = match var("LOGWARDEN_REDACT_EMAILS") {
            None => false,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "false" | "0" | "no" | "off" => false,
                "true" | "1" | "yes" | "on" => true,
                _ => {
                    return Err(format!(
                        "LOGWARDEN_REDACT_EMAILS: `{v}` is not true or false"
                    ));
                }
            },
        };
        Ok(RedactOptions { emails })
    }
}

/// The finder's pre-check, and any `@` when emails are redacted too.
fn may_hold_secret(line: &str, opts: &RedactOptions) -> bool {
    (opts.emails && line.contains('@')) || crate::detect::secrets::may_hold_secret(line)
}

/// Replace every secret in `line` by `[REDACTED:<kind>]` (emails left alone).
pub fn redact(line: &str) -> Cow<'_, str> {
    redact_with(line, &RedactOptions::default())
}

/// Replace every secret in `line` by `[REDACTED:<kind>]`, and email
/// addresses too when `opts.emails`.
pub fn redact_with<'a>(line: &'a str, opts: &RedactOptions) -> Cow<'a, str> {
    if !may_hold_secret(line, opts) {
        return Cow::Borrowed(line);
    }
    // Only the kinds whose triggers the line holds are compiled and run.
    let lower = line.to_ascii_lowercase();
    let mut hits = Vec::new();
    for (i, (kind, _)) in PATTERNS.iter().enumerate() {
        if (*kind == "email" && !opts.emails) || !kind_may_match(i, line, lower.as_bytes()) {
            continue;
        }
        let Some(re) = compiled(i) else {
            // The patterns are constants covered by tests; if one ever failed
            // to compile, dropping the text is the only safe answer.
            return Cow::Owned("[REDACTED:unavailable]".into());
        };
        if re.is_match(line) {
            hits.push((*kind, re));
        }
    }
    if hits.is_empty() {
        return Cow::Borrowed(line);
    }
    let mut out = line.to_string();
    for (kind, re) in hits {
        let replaced = re.replace_all(&out, |caps: &regex::Captures<'_>| {
            let Some(whole) = caps.get(0) else {
                return String::new();
            };
            if kind == "card-number" && !luhn(whole.as_str()) {
                return whole.as_str().to_string();
            }
            let Some(g) = (1..caps.len()).find_map(|i| caps.get(i)) else {
                return format!("[REDACTED:{kind}]");
            };
            // A bare value that ends in backslashes ends before an escaped
            // quote: keep them, so the escaping around it still reads right.
            let secret = g.as_str().trim_end_matches('\\');
            if secret.is_empty() || secret.starts_with("[REDACTED:") {
                return whole.as_str().to_string();
            }
            let start = g.start() - whole.start();
            let end = start + secret.len();
            let w = whole.as_str();
            format!("{}[REDACTED:{kind}]{}", &w[..start], &w[end..])
        });
        if let Cow::Owned(s) = replaced {
            out = s;
        }
    }
    Cow::Owned(out)
}

fn redact_in_place(s: &mut String, opts: &RedactOptions) {
    if let Cow::Owned(r) = redact_with(s, opts) {
        *s = r;
    }
}

/// Redact every field of `a` that can carry log content: title, summary,
/// key values, account, log group, log stream, function, request ids, metric
/// names and evidence; and leave out every link that holds a secret (see
/// [`links`]). A replacement can be longer than the secret: the caller caps
/// what must stay capped.
///
/// The id is left alone: it is a hash, computed from the raw key so that it
/// stays stable, and a hash does not reveal the secret.
pub fn alert(a: &mut Alert, opts: &RedactOptions) {
    redact_in_place(&mut a.title, opts);
    redact_in_place(&mut a.summary, opts);
    for v in a.key.values_mut() {
        redact_in_place(v, opts);
    }
    for s in [
        &mut a.log_stream,
        &mut a.function,
        &mut a.account,
        &mut a.region,
        &mut a.account_name,
        &mut a.team,
    ]
    .into_iter()
    .flatten()
    {
        redact_in_place(s, opts);
    }
    redact_in_place(&mut a.log_group, opts);
    for r in &mut a.request_ids {
        redact_in_place(r, opts);
    }
    if a.metrics.keys().any(|k| redact_with(k, opts) != k.as_str()) {
        a.metrics = std::mem::take(&mut a.metrics)
            .into_iter()
            .map(|(k, v)| (redact_with(&k, opts).into_owned(), v))
            .collect();
    }
    for e in &mut a.evidence {
        redact_in_place(e, opts);
    }
    links(a, opts);
}

/// Leave out every link of `a` that holds a secret in any of its decodings
/// ([`super::links::decodings`]): the console encodes the characters around
/// a secret in a name (`/`, `=`, `:`, spaces), so redaction of the link as
/// written misses it, and a link cannot be mended in place (its redacted
/// form would lead nowhere). The engine builds links from redacted values
/// only; this is the check that holds for any link, including those of an
/// alert that comes from elsewhere (the notifier's input).
pub fn links(a: &mut Alert, opts: &RedactOptions) {
    // The stream link's own time range, decoded, is a run of 13 digits that
    // the Luhn check takes for a card number one time in ten.
    let own: Vec<String> = match (
        crate::time::parse_rfc3339(&a.first_seen),
        crate::time::parse_rfc3339(&a.last_seen),
    ) {
        (Ok(first), Ok(last)) => super::links::time_range(first, last)
            .iter()
            .map(i64::to_string)
            .collect(),
        _ => Vec::new(),
    };
    for l in [&mut a.links.log_stream, &mut a.links.insights] {
        if l.as_deref()
            .is_some_and(|l| link_holds_secret(l, &own, opts))
        {
            *l = None;
        }
    }
}

/// Whether redaction with `opts` would change any decoding of `link` (with
/// the numbers in `own` left out), or `link` does not decode in the rounds
/// allowed.
fn link_holds_secret(link: &str, own: &[String], opts: &RedactOptions) -> bool {
    let Some(texts) = super::links::decodings(link) else {
        return true;
    };
    texts.iter().any(|t| {
        let t = without_numbers(t, own);
        redact_with(&t, opts) != t.as_ref()
    })
}

/// `text` with each whole run of digits that equals one of `numbers`
/// replaced by `#` (a run inside a longer one, or joined to another by a
/// space or dash as in a card number, stays).
fn without_numbers<'a>(text: &'a str, numbers: &[String]) -> Cow<'a, str> {
    let joins = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == ' ' || c == '-');
    let mut out = Cow::Borrowed(text);
    for n in numbers.iter().filter(|n| !n.is_empty()) {
        let replaced = {
            let src: &str = &out;
            let mut next = String::new();
            let mut done = 0;
            for (i, _) in src.match_indices(n.as_str()) {
                let end = i + n.len();
                if i < done
                    || joins(src[..i].chars().next_back())
                    || joins(src[end..].chars().next())
                {
                    continue;
                }
                next.push_str(&src[done..i]);
                next.push('#');
                done = end;
            }
            (done > 0).then(|| next + &src[done..])
        };
        if let Some(r) = replaced {
            out = Cow::Owned(r);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::secrets::{PRECHECK, TRIGGERS};

    fn r(s: &str) -> String {
        redact(s).into_owned()
    }

    #[test]
    fn patterns_compile() {
        assert!((0..PATTERNS.len()).all(|i| compiled(i).is_some()));
        assert!(PRECHECK.is_some());
    }

    #[test]
    fn the_precheck_finds_every_trigger_in_any_case_and_card_runs() {
        let o = RedactOptions::default();
        for t in TRIGGERS {
            assert!(may_hold_secret(&format!("a {t} b"), &o), "{t}");
            assert!(may_hold_secret(&t.to_ascii_uppercase(), &o), "{t}");
        }
        assert!(may_hold_secret("pay 4111-1111-1111-1 now", &o));
        assert!(!may_hold_secret("ids 4111 1111 1111 and 2026-11-22", &o));
        assert!(!may_hold_secret("INFO all good", &o));
        assert!(may_hold_secret(
            "mail a@b.example",
            &RedactOptions { emails: true }
        ));
    }

    #[test]
    fn each_kind_of_secret_is_redacted() {
        let cases = [
            (
                "key=AKIAIOSFODNN7EXAMPLE used",
                "AKIAIOSFODNN7EXAMPLE",
                "aws-access-key-id",
            ),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws-secret-key",
            ),
            (
                "Authorization: Bearer abcdefghijklmnop0123456789",
                "abcdefghijklmnop0123456789",
                "bearer-token",
            ),
            (
                "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "eyJhbGciOiJIUzI1NiJ9",
                "jwt",
            ),
            (
                "db postgres://app:hunter22@db.internal:5432/x",
                "hunter22",
                "url-password",
            ),
            ("login password=Sup3rS3cret! ok", "Sup3rS3cret!", "password"),
            ("{\"password\": \"letmein1\"}", "letmein1", "password"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
                "MIIEowIBAAKCAQEA",
                "private-key",
            ),
            (
                "token xoxb-1234567890-abcdefghij",
                "xoxb-1234567890-abcdefghij",
                "slack-token",
            ),
            (
                "card 4111 1111 1111 1111 charged",
                "4111 1111 1111 1111",
                "card-number",
            ),
        ];
        for (line, secret, kind) in cases {
            let out = r(line);
            assert!(!out.contains(secret), "{kind}: {out}");
            assert!(out.contains(&format!("[REDACTED:{kind}]")), "{kind}: {out}");
        }
    }

    /// Several real shapes per kind: `(line, secret that must vanish, kind)`.
    const SHAPES: &[(&str, &str, &str)] = &[
        (
            "AKIAIOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMPLE",
            "aws-access-key-id",
        ),
        (
            "key_id:ASIAY34FZKBOKMUTVV7A,",
            "ASIAY34FZKBOKMUTVV7A",
            "aws-access-key-id",
        ),
        (
            "{\"AccessKeyId\":\"AKIA2E0A8F3B244C9986\"}",
            "AKIA2E0A8F3B244C9986",
            "aws-access-key-id",
        ),
        (
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws-secret-key",
        ),
        (
            "{\"SecretAccessKey\": \"9drTJvcXLB89EXAMPLELB8923FB892xMFI+Z8sNqT\"}",
            "9drTJvcXLB89EXAMPLELB8923FB892xMFI+Z8sNqT",
            "aws-secret-key",
        ),
        (
            "msg=\"{\\\"aws_secret_key\\\":\\\"je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY\\\"}\"",
            "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
            "aws-secret-key",
        ),
        (
            "Authorization: Bearer abcdefghijklmnop0123456789",
            "abcdefghijklmnop0123456789",
            "bearer-token",
        ),
        (
            "AUTHORIZATION: BEARER ya29.a0AfH6SMBx-3kq_9Zz",
            "ya29.a0AfH6SMBx-3kq_9Zz",
            "bearer-token",
        ),
        (
            "{\"headers\":{\"authorization\":\"bearer gho_16C7e42F292c6912E7710c838347Ae178B4a\"}}",
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "bearer-token",
        ),
        (
            "Authorization: Basic dXNlcjpodW50ZXIy",
            "dXNlcjpodW50ZXIy",
            "basic-auth",
        ),
        (
            "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
            "jwt",
        ),
        (
            "id_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
            "eyJzdWIiOiJhZG1pbiJ9",
            "jwt",
        ),
        (
            "db postgres://app:hunter22@db.internal:5432/x",
            "hunter22",
            "url-password",
        ),
        (
            "REDIS_URL=redis://default:S3cr3t-P4ss@cache:6379",
            "S3cr3t-P4ss",
            "url-password",
        ),
        ("login password=Sup3rS3cret! ok", "Sup3rS3cret!", "password"),
        (
            "{\"password\": \"correct horse battery staple\"}",
            "correct horse battery",
            "password",
        ),
        ("PASSWORD: Tr0ub4dor&3", "Tr0ub4dor", "password"),
        (
            "{\"body\":\"{\\\"password\\\":\\\"pa ss\\\\\\\"word1\\\"}\"}",
            "pa ss",
            "password",
        ),
        ("DB_PASSWORD='x9!kQ#2z'", "x9!kQ#2z", "password"),
        (
            "client_secret=8Q~hbGx.Zf0u3Ewz",
            "8Q~hbGx.Zf0u3Ewz",
            "password",
        ),
        (
            "?api_key=sk_live_51HxYz2&x=1",
            "sk_live_51HxYz2",
            "password",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEA",
            "private-key",
        ),
        (
            "{\"key\":\"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0B\\n-----END PRIVATE KEY-----\\n\"}",
            "MIIEvQIBADANBgkqhkiG9w0B",
            "private-key",
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA (cut off",
            "b3BlbnNzaC1rZXktdjEAAAAA",
            "private-key",
        ),
        (
            "token xoxb-1234567890-abcdefghij",
            "xoxb-1234567890-abcdefghij",
            "slack-token",
        ),
        (
            "SLACK=xoxp-12345678901-12345678901-123456789012-abcdef",
            "xoxp-12345678901",
            "slack-token",
        ),
        (
            "posting to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "XXXXXXXXXXXXXXXXXXXXXXXX",
            "slack-webhook",
        ),
        (
            "card 4111 1111 1111 1111 charged",
            "4111 1111 1111 1111",
            "card-number",
        ),
        (
            "pan=5500-0000-0000-0004",
            "5500-0000-0000-0004",
            "card-number",
        ),
        (
            "{\"cc\":\"378282246310005\"}",
            "378282246310005",
            "card-number",
        ),
    ];

    #[test]
    fn every_shape_of_every_kind_is_redacted() {
        for (line, secret, kind) in SHAPES {
            let out = r(line);
            assert!(!out.contains(secret), "{kind}: {line} -> {out}");
            assert!(
                out.contains(&format!("[REDACTED:{kind}]")),
                "{kind}: {line} -> {out}"
            );
        }
    }

    #[test]
    fn redaction_is_idempotent_and_keeps_json_escaping() {
        for (line, _, _) in SHAPES {
            let once = r(line);
            assert_eq!(r(&once), once, "{line}");
        }
        // The escaped quotes around a redacted value survive.
        assert_eq!(
            r(r#"{"msg":"{\"password\":\"hunter2\"}"}"#),
            r#"{"msg":"{\"password\":\"[REDACTED:password]\"}"}"#
        );
        assert_eq!(r("password=abc\\\"x"), "password=[REDACTED:password]\\\"x");
    }

    #[test]
    fn key_names_in_any_case_are_found() {
        for line in [
            "PassWord=hunter22",
            "PASSWD: hunter22",
            "Api_Key=hunter22",
            "ToKeN=hunter22",
        ] {
            assert!(!r(line).contains("hunter22"), "{line}");
        }
    }

    #[test]
    fn emails_only_when_asked() {
        let line = "reset sent to Alice.Smith+x@example.co.uk for alice";
        assert_eq!(r(line), line);
        let on = RedactOptions { emails: true };
        let out = redact_with(line, &on);
        assert_eq!(out, "reset sent to [REDACTED:email] for alice");
    }

    #[test]
    fn utf8_around_secrets_stays_intact() {
        let line = "ünïcödé → password=пароль123 ✓ AKIAIOSFODNN7EXAMPLE日本";
        let out = r(line);
        assert_eq!(
            out,
            "ünïcödé → password=[REDACTED:password] ✓ [REDACTED:aws-access-key-id]日本"
        );
    }

    /// `s` and every round of undoing the console's encodings (`$XX` and
    /// Insights' `*XX` are `%XX`; percent-decoding) until nothing changes.
    /// Written apart from [`super::super::links::decodings`], so as not to
    /// trust it.
    fn all_decodings(s: &str) -> Vec<String> {
        let mut out = vec![s.to_string()];
        loop {
            let cur = out.last().unwrap().as_bytes().to_vec();
            let mut next = Vec::new();
            let mut i = 0;
            while i < cur.len() {
                let hex = |j: usize| cur.get(j).and_then(|&c| (c as char).to_digit(16));
                if matches!(cur[i], b'$' | b'*' | b'%')
                    && let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2))
                {
                    next.push((h * 16 + l) as u8);
                    i += 3;
                } else {
                    next.push(cur[i]);
                    i += 1;
                }
            }
            let next = String::from_utf8_lossy(&next).into_owned();
            if &next == out.last().unwrap() {
                return out;
            }
            out.push(next);
        }
    }

    #[test]
    fn alert_redacts_every_field_but_the_id() {
        use crate::alert::{Links, links};
        use crate::detect::Key;
        let s = "password=hunter22";
        let mut a = Alert {
            id: "0123".into(),
            rule: "r".into(),
            kind: "threshold".into(),
            severity: "high".into(),
            title: format!("t: {s}"),
            summary: format!("from {s}"),
            account: Some(s.into()),
            log_group: format!("/aws/lambda/{s}"),
            log_stream: Some(format!("2026/11/22/[$LATEST]{s}")),
            function: Some(s.into()),
            key: Key::from([("user".to_string(), s.to_string())]),
            request_ids: vec![s.into()],
            count: 1,
            first_seen: "2026-11-22T10:00:00.000Z".into(),
            last_seen: "2026-11-22T10:00:00.000Z".into(),
            metrics: [(s.to_string(), 1.0)].into(),
            evidence: vec![s.into()],
            // As the console encodes them: `/`, `[`, `=` and spaces around the
            // secret become `$252F`, `$255B`, `$253D`, `*20`.
            links: Links {
                log_stream: Some(links::log_stream_link(
                    "eu-west-1",
                    &format!("/aws/lambda/{s}"),
                    &format!("2026/11/22/[$LATEST]{s}"),
                    0,
                    0,
                )),
                insights: Some(links::insights_link(
                    "eu-west-1",
                    &format!("/aws/lambda/{s}"),
                    Some(&format!("user {s}")),
                    0,
                    0,
                )),
            },
            status: crate::alert::AlertStatus::Firing,
            resolved_at: None,
            region: None,
            account_name: None,
            team: None,
            shadow: false,
        };
        let before = serde_json::to_string(&a).unwrap();
        assert!(
            all_decodings(&before)
                .iter()
                .any(|d| d.contains("$LATEST]password=hunter22")),
            "the links do carry the secret, encoded: {before}"
        );
        alert(&mut a, &RedactOptions::default());
        let json = serde_json::to_string(&a).unwrap();
        for d in all_decodings(&json) {
            assert!(!d.contains("hunter22"), "{d}");
        }
        let red = "password=[REDACTED:password]";
        assert_eq!(a.id, "0123");
        assert_eq!(a.title, format!("t: {red}"));
        assert_eq!(a.summary, format!("from {red}"));
        assert_eq!(a.account.as_deref(), Some(red));
        assert_eq!(a.log_group, format!("/aws/lambda/{red}"));
        assert_eq!(
            a.log_stream.as_deref(),
            Some(format!("2026/11/22/[$LATEST]{red}").as_str())
        );
        assert_eq!(a.function.as_deref(), Some(red));
        assert_eq!(a.key["user"], red);
        assert_eq!(a.request_ids, [red]);
        assert!(a.metrics.contains_key(red));
        assert_eq!(a.evidence, [red]);
        // A link that holds a secret once decoded cannot be mended in place:
        // it is left out.
        assert_eq!(a.links, Links::default());
    }

    #[test]
    fn a_link_whose_time_range_reads_as_a_card_number_is_kept() {
        use crate::alert::links;
        use crate::detect::Key;
        // The first event time whose link starts at a Luhn-valid 13-digit number.
        let first = (1_795_341_600_000..1_795_341_600_100)
            .find(|t: &i64| {
                secrets_in(&links::time_range(*t, *t)[0].to_string()) == ["card-number"]
            })
            .unwrap();
        let l = links::incident(
            "eu-west-1",
            "/aws/lambda/f",
            "s",
            Some("203.0.113.7"),
            (first, first),
            &RedactOptions::default(),
        );
        let stream = l.log_stream.clone().unwrap();
        assert!(
            links::decodings(&stream)
                .unwrap()
                .iter()
                .any(|d| r(d) != *d),
            "decoded, the time range does read as a card number: {stream}"
        );
        let mut a = Alert {
            id: "0123".into(),
            rule: "r".into(),
            kind: "threshold".into(),
            severity: "high".into(),
            title: "t".into(),
            summary: String::new(),
            account: None,
            log_group: "/aws/lambda/f".into(),
            log_stream: Some("s".into()),
            function: None,
            key: Key::new(),
            request_ids: vec![],
            count: 1,
            first_seen: crate::time::rfc3339(first),
            last_seen: crate::time::rfc3339(first),
            metrics: Default::default(),
            evidence: vec![],
            links: l.clone(),
            status: crate::alert::AlertStatus::Firing,
            resolved_at: None,
            region: None,
            account_name: None,
            team: None,
            shadow: false,
        };
        alert(&mut a, &RedactOptions::default());
        assert_eq!(a.links, l);
        // Only those numbers: another card number in a link is one.
        a.links.insights = Some("https://x/?q=pan*3D4111111111111111".into());
        alert(&mut a, &RedactOptions::default());
        assert_eq!(a.links.insights, None);
        assert_eq!(a.links.log_stream, l.log_stream);
    }

    #[test]
    fn secrets_in_names_exactly_what_redaction_replaces() {
        let cases: [(&str, &[&str]); 7] = [
            ("key=AKIAIOSFODNN7EXAMPLE used", &["aws-access-key-id"]),
            (
                "GET https://bob:hunter22@example.com/ with Bearer abcdefghijklmnop",
                &["bearer-token", "url-password"],
            ),
            ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE", &["private-key"]),
            ("Authorization: Bearer [REDACTED:bearer-token]", &[]),
            ("mailto alice@example.com", &[]),
            ("order 4111 1111 1111 1112 shipped", &[]),
            ("card 4111 1111 1111 1111", &["card-number"]),
        ];
        for (line, want) in cases {
            let got = secrets_in(line);
            assert_eq!(got, want, "{line}");
            for kind in got {
                let red = redact(line);
                assert!(
                    red.contains(&format!("[REDACTED:{kind}]")),
                    "{line} → {red}"
                );
            }
        }
        let finder = SecretFinder::new(&["url-password".into(), "bearer-token".into()]).unwrap();
        for (line, want) in cases {
            let only: Vec<&str> = secrets_in(line)
                .into_iter()
                .filter(|k| ["url-password", "bearer-token"].contains(k))
                .collect();
            assert_eq!(finder.find(line), only, "{line}");
            assert_eq!(only.len(), want.iter().filter(|k| only.contains(k)).count());
        }
        let e = SecretFinder::new(&["jwt".into(), "email".into()]).unwrap_err();
        assert!(
            e.starts_with("unknown secret kind `email` (one of private-key,"),
            "{e}"
        );
        assert!(secret_kinds().any(|k| k == "private-key"));
        assert!(!secret_kinds().any(|k| k == "email"));
    }

    #[test]
    fn ordinary_lines_are_untouched() {
        for line in [
            "Failed password for root from 203.0.113.7 port 22 ssh2",
            "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms",
            "order 1234567890123 shipped", // 13 digits, fails Luhn
            "password reset requested for alice",
            "user alice@example.com logged in",
            "Tokenizer loaded 32000 entries",
            "START RequestId: 8f3c1a2e-1b2c-4d5e-8f90-123456789abc Version: $LATEST",
            "GET /api/orders?page=2 200 12ms",
        ] {
            assert_eq!(r(line), line);
        }
    }
}
