//! Control sequences made visible before an alert is rendered for people.
//!
//! A log line is attacker-controlled text. Printed as is, an ANSI escape
//! (`ESC[…`, `ESC]…`) drives the reader's terminal, a carriage return or line
//! break forges lines in a subject or a Slack field, and bidi overrides or
//! zero-width characters make text read differently from what it is. The
//! renderers (terminal text, email, Slack) show each such character as an
//! escape (`\x1b`, `\r`, `\u202e`) instead: nothing is dropped silently, so the
//! reader sees that something was there.

use std::borrow::Cow;

use super::Alert;

/// Characters that are not controls but change how surrounding text reads:
/// bidi marks, embeddings, overrides and isolates; zero-width and invisible
/// characters; the Unicode line and paragraph separators; the soft hyphen.
fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Whether [`visible`] writes `c` as an escape (`multiline`: line feeds stay).
pub fn needs_escape(c: char, multiline: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => !multiline,
        c => c.is_control() || is_deceptive(c),
    }
}

/// `s` with every control character (C0, DEL, C1) and every deceptive
/// formatting character written as a visible escape. Tabs stay; line feeds
/// stay only when `multiline`. Borrowed when nothing needed escaping.
pub fn visible(s: &str, multiline: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c, multiline)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c, multiline) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
    }
    Cow::Owned(out)
}

fn visible_in_place(s: &mut String, multiline: bool) {
    if let Cow::Owned(v) = visible(s, multiline) {
        *s = v;
    }
}

/// A copy of `a` ready to render: every text field through [`visible`],
/// one line each, except evidence, which keeps its line breaks (a stack trace
/// is several lines; renderers put evidence in blocks of its own).
pub fn alert(a: &Alert) -> Alert {
    let mut a = a.clone();
    for s in [
        &mut a.id,
        &mut a.rule,
        &mut a.title,
        &mut a.summary,
        &mut a.log_group,
        &mut a.first_seen,
        &mut a.last_seen,
    ] {
        visible_in_place(s, false);
    }
    for s in [
        a.kind.other_mut(),
        a.severity.other_mut(),
        a.status.other_mut(),
    ]
    .into_iter()
    .flatten()
    {
        visible_in_place(s, false);
    }
    for s in [
        &mut a.account,
        &mut a.log_stream,
        &mut a.function,
        &mut a.links.log_stream,
        &mut a.links.insights,
        &mut a.resolved_at,
        &mut a.region,
        &mut a.account_name,
        &mut a.team,
    ]
    .into_iter()
    .flatten()
    {
        visible_in_place(s, false);
    }
    if a.key
        .keys()
        .any(|k| matches!(visible(k, false), Cow::Owned(_)))
    {
        a.key = std::mem::take(&mut a.key)
            .into_iter()
            .map(|(k, v)| (visible(&k, false).into_owned(), v))
            .collect();
    }
    for v in a.key.values_mut() {
        visible_in_place(v, false);
    }
    for r in &mut a.request_ids {
        visible_in_place(r, false);
    }
    if a.metrics
        .keys()
        .any(|k| matches!(visible(k, false), Cow::Owned(_)))
    {
        a.metrics = std::mem::take(&mut a.metrics)
            .into_iter()
            .map(|(k, v)| (visible(&k, false).into_owned(), v))
            .collect();
    }
    for e in &mut a.evidence {
        visible_in_place(e, true);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in ["plain", "tab\tok", "ünïcödé 日本語 🙂", ""] {
            assert!(matches!(visible(s, false), Cow::Borrowed(_)), "{s}");
        }
        assert!(matches!(visible("a\nb", true), Cow::Borrowed(_)));
    }

    #[test]
    fn each_kind_of_control_is_shown_as_an_escape() {
        let cases = [
            ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
            ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
            ("ok\rFAKE", "ok\\rFAKE"),
            ("one\ntwo", "one\\ntwo"),
            ("nul\0del\x7f", "nul\\x00del\\x7f"),
            ("c1 \u{9b}31m \u{85}", "c1 \\x9b31m \\x85"),
            ("evil\u{202e}fdp.exe", "evil\\u202efdp.exe"),
            ("\u{2066}iso\u{2069}", "\\u2066iso\\u2069"),
            ("ad\u{200b}min", "ad\\u200bmin"),
            ("bom\u{feff}", "bom\\ufeff"),
            ("ls\u{2028}ps\u{2029}", "ls\\u2028ps\\u2029"),
        ];
        for (raw, want) in cases {
            assert_eq!(visible(raw, false), want, "{raw:?}");
        }
        assert_eq!(visible("a\r\nb", true), "a\\r\nb");
    }
}
