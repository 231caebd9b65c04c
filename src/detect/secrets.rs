//! The secret finder: which kinds of secret a line holds.
//!
//! One table of patterns serves two callers: redaction
//! ([`crate::alert::redact`]), which replaces every secret an alert would carry
//! out of the account, and the `secret-in-logs` rule (a [`SecretFinder`] of the
//! kinds it names), which reports them. Both ask the same patterns, so a line
//! reported here never leaves redaction with its secret. A cheap
//! case-insensitive literal pre-check (`may_hold_secret`) skips the regexes
//! for lines that hold none of the trigger substrings; the matching plane
//! ([`super::matcher::Plane`]) adds each pattern's required literals in front.

use std::sync::{LazyLock, OnceLock};

use regex::Regex;

/// The value of a `key = value` pair: a JSON-escaped quoted string
/// (`\"…\"`, a JSON document logged inside a JSON string), a quoted string,
/// a single-quoted string, or a bare word. Four capture groups, tried in order.
const VALUE: &str =
    r#"(?:\\+"((?:[^"\\]|\\[^"])*?)\\+"|"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s"'&,;}\]]+))"#;

/// Between a key and its value: an optional closing quote (escaped or not),
/// `:` or `=`.
const SEP: &str = r#"(?:\\*["'])?\s*[:=]\s*"#;

/// `(kind, pattern)`. The first capture group that took part in a match is
/// replaced; with none, the whole match.
pub(crate) static PATTERNS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    vec![
        (
            "private-key",
            r"-----BEGIN [A-Z ]*PRIVATE KEY[A-Z ]*-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY[A-Z ]*-----|$)"
                .into(),
        ),
        (
            "aws-access-key-id",
            r"(?:^|[^0-9A-Za-z])((?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AGPA|ANPA|ANVA|APKA)[0-9A-Z]{16})(?:[^0-9A-Za-z]|$)"
                .into(),
        ),
        (
            "aws-secret-key",
            format!(
                r#"(?i)(?:aws_?secret_?(?:access_?)?key|secret_?access_?key){SEP}(?:\\*["'])?([A-Za-z0-9/+=]{{40}})"#
            ),
        ),
        (
            "jwt",
            r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*".into(),
        ),
        (
            "bearer-token",
            r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})".into(),
        ),
        (
            "basic-auth",
            r#"(?i)authorization(?:\\*["'])?\s*[:=]\s*(?:\\*["'])?\s*basic\s+([A-Za-z0-9+/=]{4,})"#.into(),
        ),
        (
            "slack-token",
            r"\bxox[abposre]-[A-Za-z0-9-]{10,}|\bxapp-[0-9]-[A-Za-z0-9-]{10,}".into(),
        ),
        (
            "slack-webhook",
            r"(?i)hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+".into(),
        ),
        (
            "url-password",
            r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@".into(),
        ),
        // Case-insensitive names only: `\w` and the value classes are the
        // same sets either way, and `(?i)` over the whole pattern made its
        // Unicode classes the dearest thing redaction compiles (three times
        // the time). No `[\w-]*` before the name: it moved where a match
        // starts, never what is replaced (the value's group).
        (
            "password",
            format!(
                r"(?i:password|passwd|passphrase|pwd|secret|token|api_?key|apikey|credentials?)[\w-]*{SEP}{VALUE}"
            ),
        ),
        ("card-number", r"\b(?:\d[ -]?){12,18}\d\b".into()),
        (
            "email",
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}".into(),
        ),
    ]
});

/// Lower-case substrings at least one of which occurs (in any case) in any
/// line a pattern other than the email one can match.
pub(crate) const TRIGGERS: &[&str] = &[
    "private key",
    "akia",
    "asia",
    "abia",
    "acca",
    "aida",
    "aroa",
    "agpa",
    "anpa",
    "anva",
    "apka",
    "secret",
    "eyj",
    "bearer",
    "authorization",
    "xox",
    "xapp-",
    "hooks.slack",
    "://",
    "passw",
    "passphrase",
    "pwd",
    "token",
    "api_key",
    "apikey",
    "credential",
];

/// Each pattern of [`PATTERNS`], compiled once per process when a line
/// first holds one of its kind's triggers ([`kind_may_match`]): redaction
/// and every [`SecretFinder`] share it (a `Regex` clone shares the compiled
/// program and brings its own scratch space). Compiling all twelve when the
/// rules load, and again for the first alert's redaction, was 18.8 M of
/// 326 M instructions of a replay of 8 text batches (callgrind); most kinds
/// never see a line that could hold them. No `RegexSet` beside them: the
/// triggers already say which can match, and compiling a set made the first
/// alert dearer (45 M instructions with the set, 29 M without).
static EACH: LazyLock<Vec<OnceLock<Option<Regex>>>> =
    LazyLock::new(|| PATTERNS.iter().map(|_| OnceLock::new()).collect());

/// Pattern `i` of [`PATTERNS`], compiled; `None` if it does not compile
/// (they are constants; `every_pattern_compiles` tests them).
pub(crate) fn compiled(i: usize) -> Option<&'static Regex> {
    EACH.get(i)?
        .get_or_init(|| Regex::new(&PATTERNS.get(i)?.1).ok())
        .as_ref()
}

/// The index in [`PATTERNS`] of `kind`.
fn index(kind: &str) -> Option<usize> {
    PATTERNS.iter().position(|p| p.0 == kind)
}

/// Per kind, lower-case substrings one of which occurs (in any ASCII case)
/// in every line its pattern matches: the [`TRIGGERS`] split by kind. The
/// card number's trigger is a digit run, the email's an `@`.
const KIND_TRIGGERS: &[(&str, &[&str])] = &[
    ("private-key", &["private key"]),
    (
        "aws-access-key-id",
        &[
            "akia", "asia", "abia", "acca", "aida", "aroa", "agpa", "anpa", "anva", "apka",
        ],
    ),
    ("aws-secret-key", &["secret"]),
    ("jwt", &["eyj"]),
    ("bearer-token", &["bearer"]),
    ("basic-auth", &["authorization"]),
    ("slack-token", &["xox", "xapp-"]),
    ("slack-webhook", &["hooks.slack"]),
    ("url-password", &["://"]),
    (
        "password",
        &[
            "passw",
            "passphrase",
            "pwd",
            "secret",
            "token",
            "api_key",
            "apikey",
            "credential",
        ],
    ),
];

/// Whether pattern `i` may match the line whose ASCII-lower-cased bytes are
/// `lower` (and whose text is `line`): one of its kind's triggers is in it.
/// A `false` is certain; a `true` still needs the pattern. A line holding
/// `ſ` or `K` (U+017F, U+212A: the only characters a case-insensitive
/// pattern matches for an ASCII `s` or `k`) may match any kind.
pub(crate) fn kind_may_match(i: usize, line: &str, lower: &[u8]) -> bool {
    if line.contains(['\u{17f}', '\u{212a}']) {
        return true;
    }
    match PATTERNS.get(i).map(|p| p.0) {
        Some("card-number") => PRECHECK
            .as_ref()
            .is_none_or(|(_, digits)| digits.is_match(line.as_bytes())),
        Some("email") => line.contains('@'),
        Some(kind) => KIND_TRIGGERS
            .iter()
            .find(|(k, _)| *k == kind)
            .is_none_or(|(_, triggers)| {
                triggers
                    .iter()
                    .any(|t| memchr::memmem::find(lower, t.as_bytes()).is_some())
            }),
        None => false,
    }
}

/// The cheap pre-check, in one pass each: any trigger in any ASCII case
/// (the same test as lower-casing the line and searching every trigger, at a
/// fraction of the cost: secret-in-logs runs it on every line), or a run of
/// 13 digits with single spaces or dashes between them, which every card
/// number the card pattern takes holds.
pub(crate) static PRECHECK: LazyLock<Option<(regex::bytes::Regex, regex::bytes::Regex)>> =
    LazyLock::new(|| {
        let any: Vec<String> = TRIGGERS.iter().map(|t| regex::escape(t)).collect();
        let triggers = regex::bytes::RegexBuilder::new(&any.join("|"))
            .case_insensitive(true)
            .unicode(false)
            .build()
            .ok()?;
        let digits = regex::bytes::Regex::new(r"(?-u:\d)(?:[ -]?(?-u:\d)){12}").ok()?;
        Some((triggers, digits))
    });

/// The cheap pre-check every pattern but the email one implies: a trigger in
/// any ASCII case, or a run of card-number digits.
pub(crate) fn may_hold_secret(line: &str) -> bool {
    match PRECHECK.as_ref() {
        Some((triggers, digits)) => {
            triggers.is_match(line.as_bytes()) || digits.is_match(line.as_bytes())
        }
        // Constant patterns covered by tests; without them, run the full ones.
        None => true,
    }
}

/// The kinds of secret [`crate::alert::redact::redact`] knows, in the order it tries them (the
/// names of `[REDACTED:<kind>]`), emails excluded: an address is not a secret.
pub fn secret_kinds() -> impl Iterator<Item = &'static str> {
    PATTERNS.iter().map(|p| p.0).filter(|k| *k != "email")
}

/// The kinds of secret in `line`, each once, in [`secret_kinds`] order:
/// exactly what [`crate::alert::redact::redact`] would replace, from the same patterns, so a line
/// reported here never leaves redaction with its secret (a value already
/// `[REDACTED:…]`, an empty one or a number failing the Luhn check is not
/// a secret).
pub fn secrets_in(line: &str) -> Vec<&'static str> {
    if !may_hold_secret(line) {
        return Vec::new();
    }
    let lower = line.to_ascii_lowercase();
    PATTERNS
        .iter()
        .enumerate()
        .filter(|(i, (kind, _))| *kind != "email" && kind_may_match(*i, line, lower.as_bytes()))
        .filter(|(i, (kind, _))| compiled(*i).is_some_and(|re| real_match(kind, re, line)))
        .map(|(_, (kind, _))| *kind)
        .collect()
}

/// The patterns of some kinds of secret: what a rule that looks for those
/// kinds runs on the lines the matching plane's prefilter lets through (no
/// `RegexSet`: the plane already says which patterns can match). Each is
/// compiled when a line first needs it (`compiled`). Fewer patterns than
/// [`secrets_in`] runs, same answers for the kinds chosen.
#[derive(Debug, Clone)]
pub struct SecretFinder {
    /// The chosen kinds and their index in [`PATTERNS`].
    each: Vec<(&'static str, usize)>,
}

/// The text of one secret pattern ([`SecretFinder::patterns`]).
#[derive(Debug, Clone, Copy)]
pub struct SecretPattern(&'static str);

impl SecretPattern {
    /// The pattern, as the `regex` crate reads it.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl SecretFinder {
    /// A finder of these kinds ([`secret_kinds`]); an unknown kind is an
    /// error naming it and the known ones.
    pub fn new(kinds: &[String]) -> Result<SecretFinder, String> {
        let mut chosen = Vec::new();
        for k in kinds {
            match PATTERNS
                .iter()
                .position(|p| p.0 == k.as_str() && p.0 != "email")
            {
                Some(i) => chosen.push((PATTERNS[i].0, i)),
                None => {
                    let known: Vec<&str> = secret_kinds().collect();
                    return Err(format!(
                        "unknown secret kind `{k}` (one of {})",
                        known.join(", ")
                    ));
                }
            }
        }
        // Keep redaction's order, whatever the rule's.
        chosen.sort_by_key(|&(_, i)| i);
        chosen.dedup_by_key(|&mut (_, i)| i);
        Ok(SecretFinder { each: chosen })
    }

    /// The chosen kinds of secret in `line`, each once, as [`secrets_in`],
    /// but an access key id only when it is leaked (`SecretFinder::key_id_leaked`):
    /// redaction still removes every key id, a report needs more.
    pub fn find(&self, line: &str) -> Vec<&'static str> {
        self.find_among(line, |_| true)
    }

    /// Whether the AWS access key id in `line` is a leak to report: the
    /// line also holds a secret access key, or it is a long-term user key
    /// (`AKIA…`) in anything but a CloudTrail record. A key id alone is not
    /// a credential; a temporary (`ASIA…`) one is useless without its secret
    /// and session token; ids of users, roles and groups (`AIDA…`, `AROA…`)
    /// are not keys; and every CloudTrail record names the caller's key in
    /// `userIdentity.accessKeyId`.
    fn key_id_leaked(&self, line: &str) -> bool {
        if secret_key_in(line) {
            return true;
        }
        let cloudtrail = line.contains("userIdentity") && line.contains("eventSource");
        !cloudtrail
            && index(KEY_ID).and_then(compiled).is_some_and(|re| {
                re.captures_iter(line)
                    .any(|c| c.get(1).is_some_and(|m| m.as_str().starts_with("AKIA")))
            })
    }

    /// The patterns of the chosen kinds, in the order [`SecretFinder::find`]
    /// reports them.
    pub fn patterns(&self) -> impl Iterator<Item = SecretPattern> + '_ {
        self.each
            .iter()
            .map(|&(_, i)| SecretPattern(PATTERNS[i].1.as_str()))
    }

    /// [`SecretFinder::find`] asking only the kinds (by their index in
    /// [`SecretFinder::patterns`]) that `candidate` says may occur in `line`:
    /// the same answer whenever every kind left out cannot match.
    pub fn find_among(&self, line: &str, candidate: impl Fn(usize) -> bool) -> Vec<&'static str> {
        if !may_hold_secret(line) {
            return Vec::new();
        }
        self.each
            .iter()
            .enumerate()
            .filter(|(k, _)| candidate(*k))
            .filter(|(_, (kind, i))| compiled(*i).is_some_and(|re| real_match(kind, re, line)))
            .map(|(_, (kind, _))| *kind)
            .filter(|k| *k != KEY_ID || self.key_id_leaked(line))
            .collect()
    }
}

/// The kind of an AWS access key id.
const KEY_ID: &str = "aws-access-key-id";

/// Whether `line` holds an AWS secret access key (redaction's pattern).
fn secret_key_in(line: &str) -> bool {
    const KIND: &str = "aws-secret-key";
    index(KIND)
        .and_then(compiled)
        .is_some_and(|re| real_match(KIND, re, line))
}

/// Whether `re` (the pattern of `kind`) matches a real secret in `line`: a
/// value already `[REDACTED:…]`, an empty one or a number failing the Luhn
/// check is not one.
fn real_match(kind: &str, re: &Regex, line: &str) -> bool {
    re.captures_iter(line).any(|caps| {
        let Some(whole) = caps.get(0) else {
            return false;
        };
        if kind == "card-number" {
            return luhn(whole.as_str());
        }
        match (1..caps.len()).find_map(|i| caps.get(i)) {
            None => true,
            Some(g) => {
                let secret = g.as_str().trim_end_matches('\\');
                !secret.is_empty() && !secret.starts_with("[REDACTED:")
            }
        }
    })
}

pub(crate) fn luhn(s: &str) -> bool {
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A CloudTrail record as CloudWatch Logs delivers it (shape of the AWS
    /// documentation's examples): every record names the caller's key id.
    const CLOUDTRAIL: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROA5XMPLE7K3Q2Z4B6NQ:ci-deploy","arn":"arn:aws:sts::123456789012:assumed-role/deploy/ci-deploy","accountId":"123456789012","accessKeyId":"ASIA5XMPLE7K3Q2Z4B6N","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA5XMPLE7K3Q2Z4B6NQ","arn":"arn:aws:iam::123456789012:role/deploy","accountId":"123456789012","userName":"deploy"},"attributes":{"creationDate":"2026-11-22T09:58:00Z","mfaAuthenticated":"false"}}},"eventTime":"2026-11-22T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2.13.0","requestParameters":null,"responseElements":null,"requestID":"8D2A3B1C0E9F7A65","eventID":"3c1f2a0e-8d1b-4f6e-9a7c-2b5d4e6f8a9b","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}"#;

    /// Lines holding every kind, in several cases and spellings.
    const EXAMPLES: &[&str] = &[
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "using AKIAIOSFODNN7EXAMPLE now",
        "id ASIA5XMPLE7K3Q2Z4B6N",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SECRET_KEY: \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
        "SecretAccessKey=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig",
        "Authorization: Bearer abcdefgh12345678",
        "BEARER abcdefgh12345678",
        "authorization=Basic dXNlcjpwYXNz",
        "AUTHORIZATION: basic dXNlcjpwYXNz",
        "xoxb-1234567890-abcdefghij",
        "xapp-1-A0123456789-abcdef",
        "https://hooks.slack.com/services/T000/B000/XXXX",
        "HOOKS.SLACK.COM/workflows/abc",
        "postgres://admin:hunter2@db.internal:5432/app",
        "password=hunter2",
        "PASSWD: hunter2",
        "Passphrase=\"correct horse\"",
        "pwd=hunter2",
        "client_secret=abc123",
        "access_token: abc123",
        "API_KEY=abc123",
        "apikey=abc123",
        "credentials=abc123",
        "card 4111 1111 1111 1111 on file",
        "card 4111-1111-1111-1111",
        "mail alice@example.com",
        "\u{17f}ecret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY token",
        "api_\u{212a}ey=abc123",
        "nothing to see here",
    ];

    #[test]
    fn every_pattern_compiles() {
        assert!((0..PATTERNS.len()).all(|i| compiled(i).is_some()));
        assert_eq!(KIND_TRIGGERS.len() + 2, PATTERNS.len());
        for (kind, triggers) in KIND_TRIGGERS {
            assert!(index(kind).is_some(), "{kind}");
            // Each kind's triggers are among the pre-check's.
            assert!(triggers.iter().all(|t| TRIGGERS.contains(t)), "{kind}");
        }
    }

    /// The triggers never skip a pattern that matches: every kind whose
    /// pattern matches an example line is let through for it.
    #[test]
    fn a_kind_whose_pattern_matches_is_never_skipped() {
        let mut seen = std::collections::BTreeSet::new();
        for line in EXAMPLES {
            let lower = line.to_ascii_lowercase();
            for i in 0..PATTERNS.len() {
                if compiled(i).unwrap().is_match(line) {
                    seen.insert(PATTERNS[i].0);
                    assert!(
                        kind_may_match(i, line, lower.as_bytes()),
                        "{} skipped for {line:?}",
                        PATTERNS[i].0
                    );
                }
            }
        }
        // The examples reach every kind.
        assert_eq!(seen.len(), PATTERNS.len(), "{seen:?}");
        let lower = b"nothing to see here";
        assert!((0..PATTERNS.len()).all(|i| !kind_may_match(i, "nothing to see here", lower)));
    }

    fn finder() -> SecretFinder {
        SecretFinder::new(&[KEY_ID.to_string(), "aws-secret-key".to_string()]).unwrap()
    }

    #[test]
    fn a_key_id_in_a_cloudtrail_record_is_not_reported_but_still_redacted() {
        assert!(finder().find(CLOUDTRAIL).is_empty());
        assert!(finder().find_among(CLOUDTRAIL, |_| true).is_empty());
        let long_term = CLOUDTRAIL.replace("ASIA5XMPLE7K3Q2Z4B6N", "AKIA5XMPLE7K3Q2Z4B6N");
        assert!(finder().find(&long_term).is_empty());
        assert_eq!(secrets_in(CLOUDTRAIL), [KEY_ID]);
        let red = crate::alert::redact::redact(CLOUDTRAIL);
        assert!(!red.contains("ASIA5XMPLE7K3Q2Z4B6N"), "{red}");
    }

    #[test]
    fn a_temporary_or_principal_id_alone_is_not_a_leak() {
        assert!(
            finder()
                .find("assumed role, key ASIA5XMPLE7K3Q2Z4B6N")
                .is_empty()
        );
        assert!(finder().find("role id AROA5XMPLE7K3Q2Z4B6N").is_empty());
    }

    #[test]
    fn a_long_term_id_in_application_output_or_an_id_beside_its_secret_is() {
        assert_eq!(
            finder().find("using AKIAIOSFODNN7EXAMPLE for upload"),
            [KEY_ID]
        );
        let pair = "aws_access_key_id=ASIA5XMPLE7K3Q2Z4B6N aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(finder().find(pair), [KEY_ID, "aws-secret-key"]);
        assert_eq!(
            finder().find_among(pair, |_| true),
            [KEY_ID, "aws-secret-key"]
        );
        // A CloudTrail record that carries a secret key is a leak, id and all.
        let leaked = CLOUDTRAIL.replace(
            r#""requestParameters":null"#,
            r#""requestParameters":{"secretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#,
        );
        assert_eq!(finder().find(&leaked), [KEY_ID, "aws-secret-key"]);
    }
}
