//! Secret redaction for everything an alert carries out of the account.
//!
//! Log lines are attacker- and developer-controlled: they leak credentials.
//! Anything that looks like one is replaced by `[REDACTED:<kind>]` before it
//! reaches stdout, SNS or Slack. A cheap literal pre-check skips the regexes
//! for the vast majority of lines, which hold none of the trigger substrings.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

/// `(kind, pattern, the capture group to replace: 0 = whole match)`.
const PATTERNS: &[(&str, &str, usize)] = &[
    (
        "private-key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
        0,
    ),
    (
        "aws-access-key-id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        0,
    ),
    (
        "aws-secret-key",
        r#"(?i)(?:aws_?secret_?access_?key|secret_?key|secretaccesskey)["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})"#,
        1,
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        0,
    ),
    (
        "bearer-token",
        r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{16,})",
        1,
    ),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", 0),
    (
        "url-password",
        r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@",
        1,
    ),
    (
        "password",
        r#"(?i)\b(?:password|passwd|pwd|secret|token|api_?key)["']?\s*[:=]\s*["']?([^\s"'&,;}]{3,})"#,
        1,
    ),
    ("card-number", r"\b(?:\d[ -]?){12,18}\d\b", 0),
];

/// Substrings at least one of which occurs in any line a pattern can match.
const TRIGGERS: &[&str] = &[
    "PRIVATE KEY",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "ecret",
    "ECRET",
    "eyJ",
    "earer",
    "EARER",
    "xox",
    "://",
    "assw",
    "ASSW",
    "pwd",
    "PWD",
    "oken",
    "OKEN",
    "pi_key",
    "piKey",
    "pikey",
    "PI_KEY",
];

struct Compiled {
    set: RegexSet,
    each: Vec<(&'static str, Regex, usize)>,
}

static COMPILED: LazyLock<Option<Compiled>> = LazyLock::new(|| {
    let set = RegexSet::new(PATTERNS.iter().map(|p| p.1)).ok()?;
    let each = PATTERNS
        .iter()
        .map(|(k, p, g)| Regex::new(p).ok().map(|r| (*k, r, *g)))
        .collect::<Option<Vec<_>>>()?;
    Some(Compiled { set, each })
});

fn may_hold_secret(line: &str) -> bool {
    TRIGGERS.iter().any(|t| line.contains(t))
        || line.bytes().filter(u8::is_ascii_digit).count() >= 13
}

/// Replace every secret in `line` by `[REDACTED:<kind>]`.
pub fn redact(line: &str) -> Cow<'_, str> {
    if !may_hold_secret(line) {
        return Cow::Borrowed(line);
    }
    let Some(c) = COMPILED.as_ref() else {
        // The patterns are constants covered by tests; if they ever failed to
        // compile, dropping the line is the only safe answer.
        return Cow::Owned("[REDACTED:unavailable]".into());
    };
    let hits = c.set.matches(line);
    if !hits.matched_any() {
        return Cow::Borrowed(line);
    }
    let mut out = line.to_string();
    for i in hits.iter() {
        let (kind, re, group) = &c.each[i];
        if *kind == "card-number" {
            out = re
                .replace_all(&out, |caps: &regex::Captures<'_>| {
                    let m = &caps[0];
                    if luhn(m) {
                        format!("[REDACTED:{kind}]")
                    } else {
                        m.to_string()
                    }
                })
                .into_owned();
            continue;
        }
        out = re
            .replace_all(&out, |caps: &regex::Captures<'_>| {
                let whole = caps.get(0).map_or("", |m| m.as_str());
                match caps.get(*group) {
                    Some(g) if *group > 0 => {
                        let start = g.start() - caps.get(0).map_or(0, |m| m.start());
                        format!(
                            "{}[REDACTED:{kind}]{}",
                            &whole[..start],
                            &whole[start + g.len()..]
                        )
                    }
                    _ => format!("[REDACTED:{kind}]"),
                }
            })
            .into_owned();
    }
    Cow::Owned(out)
}

fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        redact(s).into_owned()
    }

    #[test]
    fn patterns_compile() {
        assert!(COMPILED.is_some());
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

    #[test]
    fn ordinary_lines_are_untouched() {
        for line in [
            "Failed password for root from 203.0.113.7 port 22 ssh2",
            "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms",
            "order 1234567890123 shipped", // 13 digits, fails Luhn
            "password reset requested for alice",
        ] {
            assert_eq!(r(line), line);
        }
    }
}
