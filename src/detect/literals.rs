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
//!
//! The searcher of those literals in a line (`Tier`) lives here too: it
//! finds them through fewer, shorter probes ([`probes`]) and confirms each.

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

/// [`required`] of an already parsed pattern.
pub(crate) fn required_of(h: &Hir) -> Vec<AnyOf> {
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

/// Fewer strings to search for than `lits`, at least [`PROBE_MIN`] bytes
/// each: while there are more than `max`, the longest string that two of
/// them share (at least `PROBE_MIN` long) replaces every one that holds it.
/// Each literal holds its probe, so wherever the literal occurs its probe
/// does, and a hit of the probe is confirmed by comparing the literal at the
/// offset. Literals shorter than `PROBE_MIN` are left alone: the caller
/// keeps them out. Returns the probes and, per literal, its probe's index
/// and the probe's offset in the literal.
pub fn probes(lits: &[Vec<u8>], max: usize) -> (Vec<Vec<u8>>, Vec<(usize, usize)>) {
    // Merged-away probes stay as `None`, so that indices and the cached
    // lengths of pairs stay valid: a merge computes only the new probe's
    // pairs (computing every pair each round was 30 M instructions of
    // building the built-in pack's plane, callgrind).
    let mut probes: Vec<Option<Vec<u8>>> = Vec::new();
    let mut of: Vec<(usize, usize)> = Vec::with_capacity(lits.len());
    for l in lits {
        let at = match probes.iter().position(|p| p.as_ref() == Some(l)) {
            Some(at) => at,
            None => {
                probes.push(Some(l.clone()));
                probes.len() - 1
            }
        };
        of.push((at, 0));
    }
    let mut live = probes.len();
    let mut shared = Shared::default();
    if live > max {
        for _ in 0..probes.len() {
            shared.add(&probes);
        }
    }
    while live > max {
        let Some((a, b)) = shared.longest(&probes) else {
            break;
        };
        let (Some(pa), Some(pb)) = (&probes[a], &probes[b]) else {
            break;
        };
        let common = common(pa, pb).to_vec();
        let merged = probes.len();
        for (i, p) in probes.iter_mut().enumerate() {
            let Some(off) = p.as_deref().and_then(|p| find(p, &common)) else {
                continue;
            };
            *p = None;
            live -= 1;
            for (q, back) in of.iter_mut() {
                if *q == i {
                    (*q, *back) = (merged, *back + off);
                }
            }
        }
        probes.push(Some(common));
        live += 1;
        shared.add(&probes);
    }
    let mut at = vec![0; probes.len()];
    let mut out = Vec::with_capacity(live);
    for (i, p) in probes.into_iter().enumerate() {
        if let Some(p) = p {
            at[i] = out.len();
            out.push(p);
        }
    }
    for (q, _) in of.iter_mut() {
        *q = at[*q];
    }
    (out, of)
}

/// The length of the longest common substring of each pair of probes:
/// `len[j][i]` for `i < j` (0 when shorter than `PROBE_MIN`).
#[derive(Default)]
struct Shared {
    len: Vec<Vec<usize>>,
    /// Per probe: its substrings of `PROBE_MIN` bytes and where they start,
    /// sorted.
    grams: Vec<Grams>,
}

type Grams = Vec<([u8; PROBE_MIN], usize)>;

fn grams(s: &[u8]) -> Grams {
    let mut g: Grams = s
        .windows(PROBE_MIN)
        .enumerate()
        .filter_map(|(i, w)| Some((w.try_into().ok()?, i)))
        .collect();
    g.sort_unstable();
    g
}

impl Shared {
    /// The pairs of the last of `probes` with those before it.
    fn add(&mut self, probes: &[Option<Vec<u8>>]) {
        let j = self.len.len();
        let mut row = vec![0; j];
        let b = probes[j].as_deref().unwrap_or_default();
        let mine = grams(b);
        for (i, a) in probes[..j].iter().enumerate() {
            if let Some(a) = a {
                row[i] = common_len(a, b, &mine).0;
            }
        }
        self.grams.push(mine);
        self.len.push(row);
    }

    /// The live pair sharing the longest substring, when `PROBE_MIN` long.
    fn longest(&self, probes: &[Option<Vec<u8>>]) -> Option<(usize, usize)> {
        let mut best = (PROBE_MIN - 1, None);
        for (j, row) in self.len.iter().enumerate() {
            if probes[j].is_none() {
                continue;
            }
            for (i, &n) in row.iter().enumerate() {
                if n > best.0 && probes[i].is_some() {
                    best = (n, Some((i, j)));
                }
            }
        }
        best.1
    }
}

/// The longest substring of `a` that `b` also holds (the first such), when
/// `PROBE_MIN` long or more.
fn common<'a>(a: &'a [u8], b: &[u8]) -> &'a [u8] {
    let (len, start) = common_len(a, b, &grams(b));
    &a[start..start + len]
}

/// The length of the longest substring of `a` that `b` (with its `grams`)
/// also holds, and where it starts in `a`; 0 when shorter than
/// `PROBE_MIN`. Such a substring starts with a `PROBE_MIN`-byte one, so
/// only where those meet is it measured (the built-in pack's probes took
/// 10.9 M instructions with a table of all common suffixes per pair, 2.4 M
/// this way, callgrind).
fn common_len(a: &[u8], b: &[u8], grams: &Grams) -> (usize, usize) {
    let mut best = (0, 0);
    for (i, w) in a.windows(PROBE_MIN).enumerate() {
        let from = grams.partition_point(|(g, _)| g.as_slice() < w);
        for &(_, j) in grams[from..].iter().take_while(|(g, _)| g.as_slice() == w) {
            let n = a[i..]
                .iter()
                .zip(&b[j..])
                .take_while(|(x, y)| x == y)
                .count();
            if n > best.0 {
                best = (n, i);
            }
        }
    }
    best
}

/// Shortest probe: Teddy fingerprints the first (up to) four bytes of each
/// string, and one of three bytes makes every line stop it far more often
/// (a Teddy loop alone over the bench corpus's 95k lowercased app lines:
/// 55 literals with five of three bytes 23.3 ms, 50 of four bytes or more
/// 16.3 ms).
pub const PROBE_MIN: usize = 4;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A searcher of some of the plane's literals through probes.
#[derive(Debug, Clone, Default)]
pub(super) struct Tier {
    pub(super) finder: Option<Finder>,
    /// Per probe: the literals to confirm where it starts.
    pub(super) hits: Vec<Vec<Hit>>,
}

/// A literal that holds a probe `back` bytes from its start: where the
/// probe starts, the literal may.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    lit: usize,
    back: usize,
    /// The literal is the probe: nothing to confirm.
    exact: bool,
}

/// Most probes for the packed searcher: aho-corasick takes its slim Teddy
/// (8 buckets) up to 32 strings and the fat one (16) above, which searched
/// half again as slowly (a Teddy loop alone over the bench corpus's 95k
/// lowercased app lines: 16.3 ms fat, 10.9 ms slim, both with four-byte
/// fingerprints).
pub(super) const MAX_PROBES: usize = 32;

impl Tier {
    /// The searcher of `literals[ids]` through at most `max` probes
    /// ([`probes`]).
    pub(super) fn new(literals: &[Vec<u8>], ids: std::ops::Range<usize>, max: usize) -> Tier {
        let base = ids.start;
        let (probes, of) = probes(&literals[ids], max);
        // Leftmost-longest reports one probe per start: the probes that are
        // its prefixes start there too.
        let hits = probes
            .iter()
            .map(|p| {
                of.iter()
                    .enumerate()
                    .filter(|(_, (q, _))| p.starts_with(&probes[*q]))
                    .map(|(lit, &(q, back))| Hit {
                        lit: base + lit,
                        back,
                        exact: back == 0 && literals[base + lit].len() == probes[q].len(),
                    })
                    .collect()
            })
            .collect();
        Tier {
            finder: Finder::new(&probes),
            hits,
        }
    }

    /// Call `found` with each literal `lower` holds (maybe more than once).
    /// Every start of a probe is reported: each search finds the leftmost
    /// start at or after `at`, and the next begins one byte later; a literal
    /// holding the probe is confirmed in place.
    pub(super) fn search(&self, lower: &[u8], literals: &[Vec<u8>], mut found: impl FnMut(usize)) {
        let Some(finder) = &self.finder else {
            return;
        };
        let mut at = 0;
        while let Some((probe, start)) = finder.find(lower, at) {
            for h in &self.hits[probe] {
                if h.exact
                    || start
                        .checked_sub(h.back)
                        .is_some_and(|s| lower[s..].starts_with(&literals[h.lit]))
                {
                    found(h.lit);
                }
            }
            at = start + 1;
        }
    }
}

/// The searcher of the plane's probes (ASCII-lowercase) in a lowercased
/// line, leftmost-longest.
#[derive(Debug, Clone)]
pub(super) enum Finder {
    /// Teddy (SIMD, aho-corasick's packed searcher) for up to 128 literals:
    /// it skips the bytes that cannot start a literal many at a time. On the
    /// bench corpus an overlapping Aho-Corasick DFA search, byte by byte, was
    /// 24 % of a single-threaded replay (perf), more than gunzip; the DFA's
    /// own Teddy prefilter is limited to 64 literals.
    Packed(aho_corasick::packed::Searcher),
    /// A DFA for larger tables (rule packs beyond the built-in one).
    Dfa(aho_corasick::AhoCorasick),
}

impl Finder {
    /// None when there is nothing to search for or no searcher can be built
    /// (then every matcher is a candidate, which is sound).
    fn new(literals: &[Vec<u8>]) -> Option<Finder> {
        if literals.is_empty() {
            return None;
        }
        let packed = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
            .heuristic_pattern_limits(false)
            .builder()
            .extend(literals)
            .build();
        if let Some(p) = packed {
            return Some(Finder::Packed(p));
        }
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(literals)
            .ok()
            .map(Finder::Dfa)
    }

    /// The leftmost-longest literal starting at or after `at`: its id and
    /// start.
    fn find(&self, hay: &[u8], at: usize) -> Option<(usize, usize)> {
        if at >= hay.len() {
            return None;
        }
        let m = match self {
            Finder::Packed(p) => p.find_in(hay, aho_corasick::Span::from(at..hay.len())),
            Finder::Dfa(ac) => ac.find(aho_corasick::Input::new(hay).span(at..hay.len())),
        }?;
        Some((m.pattern().as_usize(), m.start()))
    }
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
    fn each_literal_holds_its_probe_and_the_probes_are_few_and_long() {
        let lits: Vec<Vec<u8>> = [
            "authentication",
            "authentication failure;",
            "]: authentication failure;",
            "secretaccesskey",
            "secret_access_key",
            "aws_secret",
            "login_failed",
            "login_failure",
            "akia",
            "asia",
        ]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
        let (probes, of) = probes(&lits, 5);
        assert!(probes.len() <= 5, "{probes:?}");
        assert!(probes.iter().all(|p| p.len() >= PROBE_MIN), "{probes:?}");
        for (l, &(p, off)) in lits.iter().zip(&of) {
            assert_eq!(&l[off..off + probes[p].len()], &probes[p][..], "{l:?}");
        }
        // Within the limit nothing is merged.
        let (same, of) = super::probes(&lits, 10);
        assert_eq!(same, lits);
        assert!(of.iter().enumerate().all(|(i, &o)| o == (i, 0)));
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
