//! Literals that every match of a regex must contain, for the matching
//! plane's prefilter ([`super::matcher::Plane`]).
//!
//! A hand analysis of the regex's HIR (`regex-syntax`), as ripgrep derives
//! its inner literals: it answers "which strings must appear in any match",
//! not only at its start, so `(?:^|[^0-9A-Za-z])(?:AKIA|ASIA)…` still yields
//! `akia`/`asia`. The answer is a conjunction of sets: every set has at least
//! one member in any match. Literals are ASCII-lowercased and searched ASCII
//! case-insensitively, so `(?i)bearer` is `bearer`; a case-insensitive class
//! that also holds a non-ASCII character (`(?i)k` is `[Kk\u{212A}]`, the
//! Kelvin sign) yields that character's bytes as one more alternative. Every
//! simplification only weakens the filter (drops a set, or gives up with no
//! set: the matcher is then always a candidate), never makes it skip a match.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Most strings an exact set (the strings a sub-expression matches) may hold.
const MAX_EXACT: usize = 64;
/// Most distinct characters of a class that is expanded into strings.
const MAX_CLASS: usize = 4;
/// Shortest literal worth searching for: shorter ones occur everywhere.
const MIN_LEN: usize = 3;
/// Most sets kept for one regex (the most selective ones).
const MAX_SETS: usize = 3;

/// One set of alternatives: at least one of them occurs in any match.
pub type AnyOf = Vec<Vec<u8>>;

/// What any match of `pattern` (parsed as the `regex` crate parses it, with
/// default flags) must contain: each set has a member in the match. Empty
/// when nothing is known (or the pattern does not parse).
pub fn required(pattern: &str) -> Vec<AnyOf> {
    match regex_syntax::ParserBuilder::new()
        .nest_limit(super::config::MAX_REGEX_NESTING)
        .build()
        .parse(pattern)
    {
        Ok(hir) => required_of(&hir),
        Err(_) => Vec::new(),
    }
}

fn required_of(h: &Hir) -> Vec<AnyOf> {
    if let Some(e) = exact(h)
        && usable(&e)
    {
        return vec![minimal(e)];
    }
    match h.kind() {
        HirKind::Capture(c) => required_of(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required_of(&r.sub),
        HirKind::Concat(children) => concat(children),
        HirKind::Alternation(children) => {
            let mut union = AnyOf::new();
            for c in children {
                match best(required_of(c)) {
                    Some(set) => union.extend(set),
                    None => return Vec::new(),
                }
            }
            vec![minimal(union)]
        }
        _ => Vec::new(),
    }
}

/// A concatenation requires what each child requires, and the strings that
/// runs of adjacent exact children spell together.
fn concat(children: &[Hir]) -> Vec<AnyOf> {
    let mut sets = Vec::new();
    let mut run: Option<AnyOf> = None;
    let close = |run: &mut Option<AnyOf>, sets: &mut Vec<AnyOf>| {
        if let Some(r) = run.take()
            && usable(&r)
        {
            sets.push(minimal(r));
        }
    };
    for c in children {
        match exact(c) {
            Some(e) => {
                run = Some(match run.take() {
                    None => e,
                    Some(r) => match cross(&r, &e) {
                        Some(p) => p,
                        None => {
                            let mut done = Some(r);
                            close(&mut done, &mut sets);
                            e
                        }
                    },
                });
            }
            None => {
                close(&mut run, &mut sets);
                sets.extend(required_of(c));
            }
        }
    }
    close(&mut run, &mut sets);
    sets.sort_by_key(|s| std::cmp::Reverse(quality(s)));
    sets.dedup();
    sets.truncate(MAX_SETS);
    sets
}

/// The most selective set: longest shortest member, then fewest members.
fn best(sets: Vec<AnyOf>) -> Option<AnyOf> {
    sets.into_iter().max_by_key(quality)
}

fn quality(s: &AnyOf) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = s.iter().map(Vec::len).min().unwrap_or(0);
    (shortest.min(8), std::cmp::Reverse(s.len()))
}

fn usable(set: &AnyOf) -> bool {
    !set.is_empty() && set.iter().all(|s| s.len() >= MIN_LEN)
}

/// Drop members that contain another member: wherever they occur, so does
/// the shorter one.
fn minimal(mut set: AnyOf) -> AnyOf {
    set.sort_by_key(Vec::len);
    set.dedup();
    let mut out: AnyOf = Vec::with_capacity(set.len());
    for s in set {
        if !out.iter().any(|o| contains(&s, o)) {
            out.push(s);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// The strings `h` matches, ASCII-lowercased, when they are few.
fn exact(h: &Hir) -> Option<AnyOf> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(vec![Vec::new()]),
        HirKind::Literal(l) => Some(vec![l.0.to_ascii_lowercase()]),
        HirKind::Class(c) => class(c),
        HirKind::Capture(c) => exact(&c.sub),
        HirKind::Repetition(r) => {
            let max = r.max?;
            if max > 3 {
                return None;
            }
            let sub = exact(&r.sub)?;
            let mut out = AnyOf::new();
            let mut power = vec![Vec::new()];
            for k in 0..=max {
                if k >= r.min {
                    out.extend(power.iter().cloned());
                }
                power = cross(&power, &sub)?;
            }
            dedup_capped(out)
        }
        HirKind::Concat(children) => {
            let mut acc = vec![Vec::new()];
            for c in children {
                acc = cross(&acc, &exact(c)?)?;
            }
            Some(acc)
        }
        HirKind::Alternation(children) => {
            let mut out = AnyOf::new();
            for c in children {
                out.extend(exact(c)?);
            }
            dedup_capped(out)
        }
    }
}

fn class(c: &Class) -> Option<AnyOf> {
    let mut out = AnyOf::new();
    match c {
        Class::Unicode(u) => {
            let mut n = 0u32;
            for r in u.ranges() {
                n += u32::from(r.end()) - u32::from(r.start()) + 1;
                if n > 2 * MAX_CLASS as u32 {
                    return None;
                }
                for ch in r.start()..=r.end() {
                    let mut buf = [0u8; 4];
                    out.push(ch.encode_utf8(&mut buf).as_bytes().to_ascii_lowercase());
                }
            }
        }
        Class::Bytes(b) => {
            let mut n = 0usize;
            for r in b.ranges() {
                n += usize::from(r.end() - r.start()) + 1;
                if n > 2 * MAX_CLASS {
                    return None;
                }
                for byte in r.start()..=r.end() {
                    out.push(vec![byte.to_ascii_lowercase()]);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    // An empty class matches nothing; say nothing rather than "impossible".
    (!out.is_empty() && out.len() <= MAX_CLASS).then_some(out)
}

fn cross(a: &AnyOf, b: &AnyOf) -> Option<AnyOf> {
    if a.len().saturating_mul(b.len()) > MAX_EXACT {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.push(s);
        }
    }
    dedup_capped(out)
}

fn dedup_capped(mut v: AnyOf) -> Option<AnyOf> {
    v.sort();
    v.dedup();
    (v.len() <= MAX_EXACT).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(p: &str) -> Vec<Vec<String>> {
        required(p)
            .into_iter()
            .map(|s| {
                s.into_iter()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn literals_inside_the_pattern_not_only_at_its_start() {
        assert_eq!(
            req(r"(?:^|[^0-9A-Za-z])((?:AKIA|ASIA)[0-9A-Z]{16})"),
            [["akia", "asia"]]
        );
        assert_eq!(
            req(r"Invalid user (?P<user>\S*) from (?P<ip>[0-9.]+)"),
            vec![vec!["invalid user "], vec![" from "]]
        );
    }

    #[test]
    fn case_insensitive_patterns_give_lowercase_literals_and_unicode_folds() {
        assert_eq!(req(r"(?i)\bbearer\s+(\S+)"), [["bearer"]]);
        // `k` also matches the Kelvin sign: both spellings are kept.
        let r = req(r"(?i)hooks\.slack\.com/");
        assert_eq!(r.len(), 1);
        assert!(r[0].contains(&"hooks.slack.com/".to_string()), "{r:?}");
        assert!(
            r[0].iter().any(|l| l.contains('\u{212A}')),
            "the Kelvin sign spelling is missing: {r:?}"
        );
    }

    #[test]
    fn optional_parts_and_alternations() {
        assert_eq!(req(r"\bAccessDenied(?:Exception)?\b"), [["accessdenied"]]);
        assert_eq!(req(r"x(?:abc|de)y"), [["xdey", "xabcy"]]);
        // An alternative with nothing required makes the whole unknown.
        assert!(req(r"abc|\d+").is_empty());
        assert!(req(r"\w+").is_empty());
        assert!(req(r"a?b").is_empty());
    }
}
