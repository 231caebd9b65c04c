//! Matchers (one entry of a rule's `match:` list, compiled) and the matching
//! plane that runs every rule's matchers together ([`Plane`]).
//!
//! A `regex` matcher searches the line body and turns named captures into
//! fields. A `json` matcher parses the body as a JSON object (also the object
//! inside a Lambda JSON log's `message`, or a double-encoded `message` string),
//! requires every listed path to hold one of the listed values, and extracts
//! `fields` from the first path present. `exclude` drops a match whose field
//! holds a listed value (sshd's PAM lines repeat its own `Failed password`).
//!
//! JSON the strict parser rejects (a lone surrogate, `NaN`, `1e400`, deep
//! nesting) is read tolerantly ([`crate::lenient_json`]) so that one crafted
//! field cannot turn a rule off: matching fails closed.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;

use super::rule_regex::RuleRegex;
use serde_json::Value;

use super::literals::{MAX_PROBES, Tier};

/// Fields extracted from one matching line, by name, in rule order.
pub type Fields = Vec<(String, String)>;

/// Look up `name` in extracted fields.
pub fn field<'f>(fields: &'f Fields, name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// One compiled matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub(crate) regex: Option<RuleRegex>,
    pub(crate) json: Vec<(String, Vec<String>)>,
    pub(crate) fields: Vec<(String, Vec<String>)>,
    pub(crate) exclude: Vec<(String, Vec<String>)>,
}

impl Matcher {
    /// Build from already validated parts.
    pub(crate) fn new(
        regex: Option<RuleRegex>,
        json: BTreeMap<String, Vec<String>>,
        fields: BTreeMap<String, Vec<String>>,
        exclude: BTreeMap<String, Vec<String>>,
    ) -> Self {
        Matcher {
            regex,
            json: json.into_iter().collect(),
            fields: fields.into_iter().collect(),
            exclude: exclude.into_iter().collect(),
        }
    }

    /// Names of the fields this matcher can extract: the regex's named
    /// captures and the `fields:` keys.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        let captures = self.regex.iter().flat_map(RuleRegex::capture_names);
        captures.chain(self.fields.iter().map(|(k, _)| k.as_str()))
    }

    /// Whether this matcher needs the body parsed as JSON.
    pub fn needs_json(&self) -> bool {
        !self.json.is_empty() || (self.regex.is_none() && !self.fields.is_empty())
    }

    /// Match a line body; `json` is the body parsed as JSON when it is an object.
    pub fn matches(&self, body: &str, json: Option<&Value>) -> Option<Fields> {
        let mut out = Fields::new();
        if let Some(re) = &self.regex {
            let re = re.get()?;
            // Most lines do not match: `is_match` answers that without
            // allocating capture slots (measured: a fifth of the per-line cost).
            if !re.is_match(body) {
                return None;
            }
            let caps = re.captures(body)?;
            for name in re.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    out.push((name.to_string(), m.as_str().to_string()));
                }
            }
        }
        if self.needs_json() || (!self.fields.is_empty() && json.is_some()) {
            let doc = json.and_then(|v| self.object_that_matches(v));
            match doc {
                Some(doc) => {
                    for (name, paths) in &self.fields {
                        if let Some(s) = paths.iter().find_map(|p| lookup(&doc, p)).and_then(scalar)
                        {
                            out.push((name.clone(), s.into_owned()));
                        }
                    }
                }
                None if self.needs_json() => return None,
                None => {}
            }
        }
        for (name, values) in &self.exclude {
            if let Some(v) = field(&out, name)
                && values.iter().any(|x| x == v)
            {
                return None;
            }
        }
        Some(out)
    }

    /// The JSON object the conditions hold in: the body itself, or the object
    /// in its `message` (Lambda JSON log format), possibly double-encoded.
    fn object_that_matches<'v>(&self, v: &'v Value) -> Option<Cow<'v, Value>> {
        if self.conditions_hold(v) {
            return Some(Cow::Borrowed(v));
        }
        match v.get("message") {
            Some(inner @ Value::Object(_)) if self.conditions_hold(inner) => {
                Some(Cow::Borrowed(inner))
            }
            Some(Value::String(s)) if s.trim_start().starts_with('{') => {
                // Tolerant when strict fails: a crafted double-encoded
                // message must not blind the rule either.
                let inner = crate::lenient_json::from_str(s)?;
                self.conditions_hold(&inner).then_some(Cow::Owned(inner))
            }
            _ => None,
        }
    }

    /// Whether `other` matches exactly the same lines with the same fields.
    fn same_as(&self, other: &Matcher) -> bool {
        self.regex.as_ref().map(RuleRegex::as_str) == other.regex.as_ref().map(RuleRegex::as_str)
            && self.json == other.json
            && self.fields == other.fields
            && self.exclude == other.exclude
    }

    /// Whether a match can use the body's JSON: its conditions, or fields
    /// read from it beside a regex.
    fn reads_json(&self) -> bool {
        self.needs_json() || !self.fields.is_empty()
    }

    fn conditions_hold(&self, v: &Value) -> bool {
        v.is_object()
            && self.json.iter().all(|(path, allowed)| {
                lookup(v, path).is_some_and(|found| value_in(found, allowed))
            })
    }
}

/// Every rule's line matchers and secret patterns compiled together, once
/// (when the [`crate::rules::RuleSet`] is built), so that a line costs one
/// prefilter pass whatever the size of the pack.
///
/// - Identical matchers of different rules are one matcher here, run at most
///   once per line (`failed-auth-burst` and `password-spraying` share theirs).
/// - One search of the lowercased line (Teddy, see `literals::Finder`, for fewer
///   probes than literals, each hit confirmed; every literal that occurs is
///   found, overlaps included, see `Plane::index`) finds which of the
///   pack's required literals a line holds ([`super::literals`] for regexes; values
///   and the last key of each condition for JSON matchers; each matcher keeps
///   its most selective sets). A matcher whose kept literal sets are not all
///   met cannot match and is not run; one with no literal known is always run.
/// - JSON values can hide behind escapes (`"login\u005ffailed"`), in the line
///   or in a double-encoded `message`: a line holding `\u` (any backslash when
///   a literal holds a character with a short escape: `"`, `\`, `/`, a
///   control character) makes every JSON matcher a candidate, so an escaped
///   value cannot blind a rule.
#[derive(Debug, Clone, Default)]
pub struct Plane {
    matchers: Vec<Matcher>,
    /// Per matcher: what a line needs for it to be a candidate.
    needs: Vec<Need>,
    /// Per rule (in rule-set order): its matchers, as indices into
    /// `matchers`, in the rule's order.
    rules: Vec<Vec<usize>>,
    /// Per rule: what each kind of its secret finder needs, in the finder's
    /// order (empty without a finder).
    secrets: Vec<Vec<Need>>,
    /// `needs` and `secrets` as bits of [`Scan::found`], what a line asks.
    need_bits: Vec<Test>,
    secret_bits: Vec<Vec<Test>>,
    /// Per rule, when each kind of its secret finder needs one set: their
    /// union, met exactly when one of the kinds is. One test where there
    /// were nine on every line for the built-in pack.
    secret_any: Vec<Option<Bits>>,
    /// The literals the needs name, each found in a line exactly when the
    /// line holds it: the first `long` by `finder`, the others (too short
    /// for it) by `short`, only when a need asks (see [`Plane::index`]).
    literals: Vec<Vec<u8>>,
    long: usize,
    short: Tier,
    /// Whether a line holding `ſ` or `K` makes every matcher a candidate
    /// (see [`Plane::fold_literals`]).
    fold_fallback: bool,
    finder: Tier,
    /// Whether a `\u` escape makes JSON matchers candidates (a JSON matcher
    /// exists).
    unicode_escape: bool,
    /// Whether any backslash must make JSON matchers candidates.
    any_backslash: bool,
    /// Per rule, when every one of its matchers needs a long literal: one
    /// such set per matcher, joined. A line holding none of them (and no
    /// escape) skips the rule at once: a line holding `status` was tested
    /// matcher by matcher for every rule, 30 tests.
    gates: Vec<Option<Bits>>,
}

/// What a line must hold for a matcher (or a secret pattern) to be run.
#[derive(Debug, Clone, Default, PartialEq)]
struct Need {
    /// The regex's required literals: each set needs one of its ids found.
    regex: Vec<Vec<usize>>,
    /// The JSON conditions' literals, likewise; escapes may hide them.
    json: Vec<Vec<usize>>,
    /// Whether the matcher has JSON conditions (the escape fallback applies).
    json_escapable: bool,
}

/// A [`Need`] as bits of a line's [`Scan::found`]: a set is met when the
/// line holds one of its bits, a test per set instead of a look-up per
/// literal (the secret kinds ask every line about ten key prefixes and six
/// key names). Testing the needs, beside the searches, was 14.3 M
/// instructions of the text icount corpus walking the sets literal by
/// literal, 9.7 M as bits with the rules' gates (callgrind).
#[derive(Debug, Clone, Default)]
struct Test {
    /// The regex's sets, then from `json_at` the JSON conditions' sets.
    sets: Box<[Bits]>,
    json_at: usize,
    json_escapable: bool,
}

/// Literals as bits: literal `i` is bit `i % 64` of word `i / 64`.
#[derive(Debug, Clone, Default)]
struct Bits {
    /// The first word the set touches (most sets touch one): its index,
    /// its bits, and which of those are short literals (searched for only
    /// when asked).
    word: usize,
    bits: u64,
    short: u64,
    /// The same for the other words it touches.
    rest: Box<[(usize, u64, u64)]>,
}

impl Bits {
    fn of(ids: &[usize], long: usize) -> Bits {
        let mut parts: Vec<(usize, u64, u64)> = Vec::new();
        for &i in ids {
            let (w, bit) = (i / 64, 1u64 << (i % 64));
            let short = if i >= long { bit } else { 0 };
            match parts.iter_mut().find(|p| p.0 == w) {
                Some(p) => (p.1, p.2) = (p.1 | bit, p.2 | short),
                None => parts.push((w, bit, short)),
            }
        }
        let (word, bits, short) = parts.first().copied().unwrap_or_default();
        Bits {
            word,
            bits,
            short,
            rest: parts.into_iter().skip(1).collect(),
        }
    }

    fn parts(&self) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
        std::iter::once((self.word, self.bits, self.short)).chain(self.rest.iter().copied())
    }

    /// Whether `found` holds one of the long literals.
    #[inline(always)]
    fn long_in(&self, found: &[Cell<u64>]) -> bool {
        found[self.word].get() & self.bits != 0
            || self
                .rest
                .iter()
                .any(|&(w, bits, _)| found[w].get() & bits != 0)
    }
}

impl Test {
    fn of(need: &Need, long: usize) -> Test {
        let sets = need.regex.iter().chain(&need.json);
        Test {
            sets: sets.map(|s| Bits::of(s, long)).collect(),
            json_at: need.regex.len(),
            json_escapable: need.json_escapable,
        }
    }
}

/// The literals one line holds, from [`Plane::scan`]; reused line to line.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The literals found, as bits ([`Bits`]): the long ones by the scan,
    /// a short one once a need asks about it.
    found: Vec<Cell<u64>>,
    /// The short literals were searched for.
    short_searched: Cell<bool>,
    escaped: bool,
    /// The line, ASCII-lowercased (the literals are lowercase).
    lower: Vec<u8>,
    /// No prefilter: everything is a candidate.
    all: bool,
}

/// One line's answers so far: each matcher run at most once, the body parsed
/// as JSON at most once (only when a candidate matcher reads JSON).
#[derive(Debug, Clone, Default)]
pub struct Memo {
    /// Per matcher: the line it was answered for (its count from 1, see
    /// `line`) and its answer. A stale stamp, not a vector cleared and
    /// refilled on every line.
    results: Vec<(u64, Option<Fields>)>,
    line: u64,
    json: Option<Option<Value>>,
    is_json: bool,
}

impl Plane {
    /// The plane of these rules' matchers and secret finders, in rule order.
    pub fn new<'r>(
        rules: impl IntoIterator<Item = (&'r [Matcher], Option<&'r super::secrets::SecretFinder>)>,
    ) -> Plane {
        let mut plane = Plane::default();
        let mut lits = Literals::default();
        for (matchers, finder) in rules {
            let mut mine = Vec::with_capacity(matchers.len());
            for m in matchers {
                let at = match plane.matchers.iter().position(|x| x.same_as(m)) {
                    Some(at) => at,
                    None => {
                        plane.needs.push(lits.need_of(m));
                        plane.matchers.push(m.clone());
                        plane.matchers.len() - 1
                    }
                };
                mine.push(at);
            }
            plane.rules.push(mine);
            plane.secrets.push(
                finder
                    .map(|f| {
                        f.patterns()
                            .map(|re| Need {
                                regex: lits.ids(super::literals::required(re.as_str())),
                                ..Need::default()
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            );
        }
        plane.unicode_escape = plane.needs.iter().any(|n| n.json_escapable);
        plane.any_backslash = lits.short_escapes;
        plane.fold_literals(lits.all);
        // A set of short literals is not searched for unless asked: only a
        // set the finder answers can say "nothing found".
        let long = plane.long;
        let answered = |m: usize| {
            let n = &plane.needs[m];
            n.regex
                .iter()
                .chain(&n.json)
                .find(|s| s.iter().all(|&i| i < long))
        };
        plane.gates = plane
            .rules
            .iter()
            .map(|ms| {
                let sets: Option<Vec<&Vec<usize>>> = ms.iter().map(|&m| answered(m)).collect();
                let ids: Option<Vec<usize>> =
                    sets.map(|s| s.into_iter().flatten().copied().collect());
                ids.map(|ids| Bits::of(&ids, long))
            })
            .collect();
        plane
    }

    /// Take the literal table: literals holding `ſ` (U+017F, which folds to
    /// `s`) or `K` (U+212A, the Kelvin sign, which folds to `k`) become their
    /// ASCII spelling, and a line holding either character makes every
    /// matcher a candidate ([`has_fold_char`]). A `(?i)` regex yields one literal per
    /// spelling (`secret_access_key` has 2^4 with `ſ`, times `K`), over a
    /// hundred for the built-in pack, and lines holding either character are
    /// rare; the fallback keeps the filter sound with a small table.
    fn fold_literals(&mut self, all: Vec<Vec<u8>>) {
        const LONG_S: &[u8] = "\u{17f}".as_bytes();
        const KELVIN: &[u8] = "\u{212a}".as_bytes();
        let mut table = Literals::default();
        let mut folded_any = false;
        let mut map = Vec::with_capacity(all.len());
        for lit in all {
            let folded = fold(&lit, LONG_S, b"s");
            let folded = fold(&folded, KELVIN, b"k");
            folded_any |= folded != lit;
            map.push(table.id(folded));
        }
        let remap = |sets: &mut Vec<Vec<usize>>| {
            for set in sets.iter_mut() {
                for i in set.iter_mut() {
                    *i = map[*i];
                }
                set.sort_unstable();
                set.dedup();
            }
        };
        for n in self
            .needs
            .iter_mut()
            .chain(self.secrets.iter_mut().flatten())
        {
            remap(&mut n.regex);
            remap(&mut n.json);
        }
        self.fold_fallback = folded_any;
        let table = self.keep_best_sets(table.all);
        self.index(table);
    }

    /// Number the literals, those [`super::literals::PROBE_MIN`] long or more
    /// first, and build their searchers. Those are found through fewer
    /// probes ([`super::literals::probes`]) that the packed searcher takes
    /// in its slim form with four-byte fingerprints; each hit is confirmed,
    /// so a literal is found exactly where it occurs and every need answers
    /// as with one searcher of all literals. Shorter ones (`401`, `://`)
    /// have a searcher of their own, run on a line only when a need first
    /// asks about one: in the main one they would make it stop on most
    /// lines. On the text icount corpus (callgrind) the built-in pack's
    /// packed search went from 28.6 M instructions (fat Teddy, 55 literals,
    /// three-byte fingerprints) to 13.6 M (slim, 32 probes, four bytes), the
    /// short literals' searcher costs 6.8 M; a memmem search per short
    /// literal asked instead cost 8.1 M (`xox` and `://` are asked on every
    /// line).
    fn index(&mut self, table: Vec<Vec<u8>>) {
        let min = super::literals::PROBE_MIN;
        let mut order: Vec<usize> = (0..table.len()).collect();
        order.sort_by_key(|&i| table[i].len() < min);
        let mut id = vec![0; table.len()];
        for (new, &old) in order.iter().enumerate() {
            id[old] = new;
        }
        self.literals = order.iter().map(|&i| table[i].clone()).collect();
        let long = self.literals.iter().filter(|l| l.len() >= min).count();
        for n in self
            .needs
            .iter_mut()
            .chain(self.secrets.iter_mut().flatten())
        {
            for sets in [&mut n.regex, &mut n.json] {
                for set in sets.iter_mut() {
                    for i in set.iter_mut() {
                        *i = id[*i];
                    }
                    set.sort_unstable();
                }
                // The sets the finder answers first: a short literal costs
                // a search of its own, often spared.
                sets.sort_by_key(|s| s.iter().any(|&i| i >= long));
            }
        }
        self.long = long;
        self.finder = Tier::new(&self.literals, 0..long, MAX_PROBES);
        self.short = Tier::new(&self.literals, long..self.literals.len(), usize::MAX);
        self.need_bits = self.needs.iter().map(|n| Test::of(n, long)).collect();
        self.secret_bits = self
            .secrets
            .iter()
            .map(|s| s.iter().map(|n| Test::of(n, long)).collect())
            .collect();
        self.secret_any = self
            .secrets
            .iter()
            .map(|kinds| {
                let one = |n: &Need| n.regex.len() == 1 && n.json.is_empty();
                kinds.iter().all(one).then(|| {
                    let ids: Vec<usize> = kinds.iter().flat_map(|n| n.regex.concat()).collect();
                    Bits::of(&ids, long)
                })
            })
            .collect();
    }

    /// Keep one set per need, its most selective (longest shortest literal,
    /// then fewest), and only the literals those sets name. Every set of a
    /// need must be met for a candidate, so one is enough to be sound; the
    /// others, often short words (`event`, `status`, ` from `), would only make
    /// the searcher stop more often, and each literal more in the table makes
    /// every byte of every line dearer to search.
    fn keep_best_sets(&mut self, table: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let quality = |set: &Vec<usize>| {
            let shortest = set.iter().map(|&i| table[i].len()).min().unwrap_or(0);
            (shortest.min(12), std::cmp::Reverse(set.len()))
        };
        for n in self
            .needs
            .iter_mut()
            .chain(self.secrets.iter_mut().flatten())
        {
            let mut sets: Vec<(bool, Vec<usize>)> = n
                .regex
                .drain(..)
                .map(|s| (false, s))
                .chain(n.json.drain(..).map(|s| (true, s)))
                .collect();
            sets.sort_by_key(|(_, s)| std::cmp::Reverse(quality(s)));
            // A short best set (`status`) is common; the next one with it
            // (`401`/`403`) keeps the matcher from being a candidate on
            // every line that holds the word.
            let keep = match sets.first() {
                Some((_, s)) if quality(s).0 < 8 => 2,
                _ => 1,
            };
            for (json, set) in sets.into_iter().take(keep) {
                if json {
                    n.json.push(set)
                } else {
                    n.regex.push(set)
                }
            }
            drop_implied(&mut n.regex, &table);
            drop_implied(&mut n.json, &table);
        }
        let mut used = vec![None; table.len()];
        let mut kept = Vec::new();
        for n in self
            .needs
            .iter_mut()
            .chain(self.secrets.iter_mut().flatten())
        {
            for i in n.regex.iter_mut().chain(n.json.iter_mut()).flatten() {
                *i = *used[*i].get_or_insert_with(|| {
                    kept.push(table[*i].clone());
                    kept.len() - 1
                });
            }
        }
        kept
    }

    /// Start a line: find the literals `body` holds and forget the previous
    /// line's answers. `is_json`: the body looks like a JSON object.
    pub fn begin(&self, body: &str, is_json: bool, scan: &mut Scan, memo: &mut Memo) {
        self.scan(body, scan);
        memo.line += 1;
        memo.results.resize(self.matchers.len(), (0, None));
        memo.json = None;
        memo.is_json = is_json;
    }

    /// The fields of the first of rule `rule`'s matchers that matches the
    /// line given to [`Plane::begin`]: what the rule's own matchers, run in
    /// order, would answer.
    pub fn first_match(
        &self,
        rule: usize,
        body: &str,
        scan: &Scan,
        memo: &mut Memo,
    ) -> Option<Fields> {
        if !scan.all
            && !scan.escaped
            && self
                .gates
                .get(rule)
                .is_some_and(|g| g.as_ref().is_some_and(|g| !g.long_in(&scan.found)))
        {
            return None;
        }
        for &at in self.rule_matchers(rule) {
            // A matcher shared by rules is tested once a line.
            if memo.results[at].0 != memo.line {
                let result = if self.candidate(at, scan) {
                    self.run(at, body, memo)
                } else {
                    None
                };
                memo.results[at] = (memo.line, result);
            }
            if let Some(fields) = &memo.results[at].1 {
                return Some(fields.clone());
            }
        }
        None
    }

    fn run(&self, at: usize, body: &str, memo: &mut Memo) -> Option<Fields> {
        let m = &self.matchers[at];
        if let Some(re) = &m.regex
            && !re.get().is_some_and(|re| re.is_match(body))
        {
            return None;
        }
        let json = if m.reads_json() && memo.is_json {
            memo.json
                .get_or_insert_with(|| crate::lenient_json::from_str(body))
                .as_ref()
        } else {
            None
        };
        m.matches(body, json)
    }

    /// The kinds of secret of rule `rule`'s `finder` in the line given to
    /// [`Plane::begin`]: what `finder.find(body)` answers.
    pub fn secrets(
        &self,
        rule: usize,
        finder: &super::secrets::SecretFinder,
        body: &str,
        scan: &Scan,
    ) -> Vec<&'static str> {
        let needs = self.secret_bits.get(rule).map_or(&[][..], Vec::as_slice);
        let none = || match self.secret_any.get(rule) {
            Some(Some(union)) => !scan.all && !self.holds_any(union, scan),
            _ => !needs.iter().any(|n| self.met(n, scan)),
        };
        if needs.len() == finder.patterns().count() && none() {
            return Vec::new();
        }
        finder.find_among(body, |k| needs.get(k).is_none_or(|n| self.met(n, scan)))
    }

    /// Find the literals `body` holds.
    pub fn scan(&self, body: &str, scan: &mut Scan) {
        // One word at least: an empty set tests word 0.
        let words = self.literals.len() / 64 + 1;
        scan.found.resize(words, Cell::new(0));
        scan.found.iter().for_each(|w| w.set(0));
        scan.short_searched.set(false);
        scan.escaped = false;
        scan.all = false;
        if self.literals.is_empty() {
            return;
        }
        if self.long > 0 && self.finder.finder.is_none() {
            scan.all = true;
            return;
        }
        let bytes = body.as_bytes();
        let (non_ascii, backslash) = lowercase(bytes, &mut scan.lower);
        if non_ascii && self.fold_fallback && has_fold_char(bytes) {
            scan.all = true;
            return;
        }
        self.finder
            .search(&scan.lower, &self.literals, |i| scan.mark(i));
        scan.escaped =
            backslash && (self.any_backslash || (self.unicode_escape && has_unicode_escape(bytes)));
    }

    /// The matchers of rule `rule`, as plane indices, in the rule's order.
    pub fn rule_matchers(&self, rule: usize) -> &[usize] {
        self.rules.get(rule).map_or(&[], Vec::as_slice)
    }

    /// The matcher at plane index `at`.
    pub fn matcher(&self, at: usize) -> &Matcher {
        &self.matchers[at]
    }

    /// Number of distinct matchers.
    pub fn len(&self) -> usize {
        self.matchers.len()
    }

    /// Whether no rule has a line matcher.
    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    /// Whether matcher `at` can match the scanned line.
    #[inline]
    pub fn candidate(&self, at: usize, scan: &Scan) -> bool {
        self.met(&self.need_bits[at], scan)
    }

    /// Whether the scanned line holds one of `set`'s literals; the short
    /// ones are searched for the first time one is asked about.
    #[inline(always)]
    fn holds_any(&self, set: &Bits, scan: &Scan) -> bool {
        set.long_in(&scan.found)
            || ((set.short != 0 || !set.rest.is_empty())
                && set
                    .parts()
                    .any(|(w, bits, short)| short != 0 && self.holds_short(w, scan) & bits != 0))
    }

    /// Word `w` of the found literals, once the short ones are searched
    /// (all at once, the first time one is asked about).
    #[cold]
    #[inline(never)]
    fn holds_short(&self, w: usize, scan: &Scan) -> u64 {
        if !scan.short_searched.replace(true) {
            if self.short.finder.is_none() {
                // No searcher: every short literal may be there.
                (self.long..self.literals.len()).for_each(|i| scan.mark(i));
            }
            self.short
                .search(&scan.lower, &self.literals, |i| scan.mark(i));
        }
        scan.found[w].get()
    }

    #[inline]
    fn met(&self, test: &Test, scan: &Scan) -> bool {
        if scan.all {
            return true;
        }
        let (regex, json) = test.sets.split_at(test.json_at);
        let all = |sets: &[Bits]| sets.iter().all(|s| self.holds_any(s, scan));
        all(regex) && ((test.json_escapable && scan.escaped) || all(json))
    }

    /// Whether anything of rule `rule` (a matcher, a secret kind) can match
    /// the scanned line.
    pub fn rule_candidate(&self, rule: usize, scan: &Scan) -> bool {
        self.rule_matchers(rule)
            .iter()
            .any(|&m| self.candidate(m, scan))
            || self
                .secret_bits
                .get(rule)
                .is_some_and(|s| s.iter().any(|n| self.met(n, scan)))
    }
}

impl Scan {
    /// Record that the line holds literal `i` (bit `i % 64` of word `i / 64`).
    fn mark(&self, i: usize) {
        let w = &self.found[i / 64];
        w.set(w.get() | 1 << (i % 64));
    }
}

/// The plane's literal table while it is built.
#[derive(Default)]
struct Literals {
    all: Vec<Vec<u8>>,
    /// A JSON literal holds a character with a short escape (`\"`, `\/`, …).
    short_escapes: bool,
}

impl Literals {
    fn id(&mut self, lit: Vec<u8>) -> usize {
        match self.all.iter().position(|l| *l == lit) {
            Some(i) => i,
            None => {
                self.all.push(lit);
                self.all.len() - 1
            }
        }
    }

    fn ids(&mut self, sets: Vec<super::literals::AnyOf>) -> Vec<Vec<usize>> {
        sets.into_iter()
            .map(|set| set.into_iter().map(|l| self.id(l)).collect())
            .collect()
    }

    fn need_of(&mut self, m: &Matcher) -> Need {
        let regex = m
            .regex
            .as_ref()
            .map(|re| self.ids(re.required().to_vec()))
            .unwrap_or_default();
        let mut json = Vec::new();
        for (path, values) in &m.json {
            // The last key of the path is in the text (`a.b.c` is looked up
            // as that key, then as nested `c`); so is one of the values.
            let key = path.rsplit('.').next().unwrap_or(path);
            for set in [vec![key.to_string()], values.clone()] {
                if set
                    .iter()
                    .any(|v| v.bytes().any(|b| b < 0x20 || b"\"\\/".contains(&b)))
                {
                    self.short_escapes = true;
                }
                if set.iter().all(|v| json_literal(v)) {
                    let set = set
                        .iter()
                        .map(|v| v.as_bytes().to_ascii_lowercase())
                        .collect();
                    json.extend(self.ids(vec![set]));
                }
            }
        }
        Need {
            regex,
            json,
            json_escapable: !m.json.is_empty(),
        }
    }
}

/// Drop the sets that another set implies: every member of the other holds
/// a member of this one (`eyj` beside `.eyj`), so wherever the other is met
/// this one is too, and the need asks the same with one set fewer.
fn drop_implied(sets: &mut Vec<Vec<usize>>, table: &[Vec<u8>]) {
    let holds =
        |hay: usize, needle: usize| memchr::memmem::find(&table[hay], &table[needle]).is_some();
    let implies = |a: &[usize], b: &[usize]| a.iter().all(|&x| b.iter().any(|&y| holds(x, y)));
    let mut k = 0;
    while k < sets.len() {
        if (0..sets.len()).any(|i| i != k && implies(&sets[i], &sets[k])) {
            sets.remove(k);
        } else {
            k += 1;
        }
    }
}

/// Whether `v`, as a condition's value, must occur in the raw text of a line
/// whose JSON holds it: a string (unescaped), `true`, `false` or an integer
/// does; a value a float prints as (`401.0` from `4.01e2`) need not.
fn json_literal(v: &str) -> bool {
    v.len() >= 3
        && !(v.parse::<f64>().is_ok() && v.bytes().any(|b| !b.is_ascii_digit() && b != b'-'))
}

/// `a.b.c` as a literal key first (flat ECS style), then as a nested path.
fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    if let Some(found) = v.get(path) {
        return Some(found);
    }
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn scalar(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// Scalars compare by their text (so `status: [401]` matches `"401"` and `401`);
/// an array holds when any element does (ECS `event.category: ["authentication"]`).
fn value_in(v: &Value, allowed: &[String]) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|i| value_in(i, allowed)),
        other => scalar(other).is_some_and(|s| allowed.iter().any(|a| a == s.as_ref())),
    }
}

/// `bytes` ASCII-lowercased into `out`, and whether `bytes` holds a
/// non-ASCII byte and a backslash: one pass where there were four (the
/// copy, a search for a backslash, for `\u`, for the first byte of `ſ`
/// and `K`).
fn lowercase(bytes: &[u8], out: &mut Vec<u8>) -> (bool, bool) {
    out.clear();
    #[cfg(target_arch = "x86_64")]
    if bytes.len() >= 16 {
        return lowercase_sse2(bytes, out);
    }
    out.extend(bytes.iter().map(u8::to_ascii_lowercase));
    (!bytes.is_ascii(), bytes.contains(&b'\\'))
}

/// [`lowercase`] 16 bytes at a time, for at least 16 bytes. Over the text
/// icount corpus's app lines (callgrind), the plain lowercasing loop and
/// the searches for a backslash and for `ſ`/`K` were 8.7 M instructions,
/// this is 4.9 M.
#[cfg(target_arch = "x86_64")]
fn lowercase_sse2(bytes: &[u8], out: &mut Vec<u8>) -> (bool, bool) {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128, _mm_storeu_si128,
    };
    let n = bytes.len();
    out.reserve(n);
    // SAFETY: SSE2 is part of the x86_64 baseline. Every load reads
    // `bytes[at..at + 16]` and every store writes `out`'s spare capacity
    // at `at..at + 16`, with `at + 16 <= n` (the last block is the final
    // 16 bytes, overlapping the one before: lowercasing reads only
    // `bytes`, so writing a byte twice writes the same value); `out` was
    // empty with room for `n`, and all `n` bytes are written before
    // `set_len(n)`.
    unsafe {
        let src = bytes.as_ptr();
        let dst = out.as_mut_ptr();
        // `A`..=`Z` shifted to -128..=-103, below -102 as signed bytes.
        let shift = _mm_set1_epi8(0x80u8.wrapping_sub(b'A') as i8);
        let limit = _mm_set1_epi8(-128 + 26);
        let case = _mm_set1_epi8(0x20);
        let back = _mm_set1_epi8(b'\\' as i8);
        let (mut high, mut backslash) = (_mm_setzero_si128(), _mm_setzero_si128());
        let mut block = |at: usize| {
            let v = _mm_loadu_si128(src.add(at).cast::<__m128i>());
            let upper = _mm_cmplt_epi8(_mm_add_epi8(v, shift), limit);
            let low = _mm_or_si128(v, _mm_and_si128(upper, case));
            _mm_storeu_si128(dst.add(at).cast::<__m128i>(), low);
            high = _mm_or_si128(high, v);
            backslash = _mm_or_si128(backslash, _mm_cmpeq_epi8(v, back));
        };
        let mut at = 0;
        while at + 16 <= n {
            block(at);
            at += 16;
        }
        if at < n {
            block(n - 16);
        }
        out.set_len(n);
        (
            _mm_movemask_epi8(high) != 0,
            _mm_movemask_epi8(backslash) != 0,
        )
    }
}

/// Whether `bytes` holds `\u` or `\U` (as the literal `\u` was searched,
/// ASCII case-insensitively).
fn has_unicode_escape(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', bytes).any(|i| bytes.get(i + 1).is_some_and(|b| b | 0x20 == b'u'))
}

/// Whether `bytes` holds `ſ` (U+017F) or `K` (U+212A).
fn has_fold_char(bytes: &[u8]) -> bool {
    memchr::memchr2_iter(0xC5, 0xE2, bytes).any(|i| {
        let rest = &bytes[i..];
        rest.starts_with("\u{17f}".as_bytes()) || rest.starts_with("\u{212a}".as_bytes())
    })
}

/// `lit` with every `from` replaced by `to`.
fn fold(lit: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lit.len());
    let mut rest = lit;
    while let Some(at) = memchr::memmem::find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::literals;
    use super::*;

    fn m(regex: Option<&str>, json: &[(&str, &[&str])], fields: &[(&str, &[&str])]) -> Matcher {
        let conv = |xs: &[(&str, &[&str])]| {
            xs.iter()
                .map(|(k, vs)| (k.to_string(), vs.iter().map(|s| s.to_string()).collect()))
                .collect()
        };
        Matcher::new(
            regex.map(|r| regex::Regex::new(r).unwrap().into()),
            conv(json),
            conv(fields),
            BTreeMap::new(),
        )
    }

    /// Which matchers of `ms` the plane makes candidates on `line`.
    fn candidates(ms: &[Matcher], line: &str) -> Vec<usize> {
        let plane = Plane::new([(ms, None)]);
        let mut scan = Scan::default();
        plane.scan(line, &mut scan);
        (0..plane.len())
            .filter(|&at| plane.candidate(at, &scan))
            .collect()
    }

    #[test]
    fn overlapping_and_prefix_literals_are_all_found() {
        // `abcd` hides `abc` (its prefix) and overlaps `cdef`; `bcdexyz`
        // starts inside `abcd` but is not in the line.
        let ms: Vec<Matcher> = ["abcd", "cdef", "abc", "bcdexyz", "zzzz"]
            .iter()
            .map(|r| m(Some(r), &[], &[]))
            .collect();
        assert_eq!(candidates(&ms, "xxABCDEFyy"), vec![0, 1, 2]);
        assert_eq!(candidates(&ms, "bcdexyz abc"), vec![2, 3]);
        assert_eq!(candidates(&ms, "nothing here"), Vec::<usize>::new());
    }

    #[test]
    fn a_long_s_or_kelvin_sign_makes_every_matcher_a_candidate() {
        // `(?i)` lets `ſ` stand for `s` and `K` for `k`; the table holds only
        // the ASCII spelling, so such a line is searched by every matcher.
        let ms = vec![
            m(Some("(?i)secret_key"), &[], &[]),
            m(Some("other"), &[], &[]),
        ];
        assert_eq!(candidates(&ms, "plain line"), Vec::<usize>::new());
        assert_eq!(candidates(&ms, "SECRET_KEY=1"), vec![0]);
        for line in ["\u{17f}ecret_key=1", "secret_\u{212a}ey=1"] {
            assert!(ms[0].matches(line, None).is_some(), "{line}");
            assert_eq!(candidates(&ms, line), vec![0, 1], "{line}");
        }
    }

    #[test]
    fn the_built_in_pack_is_searched_by_the_packed_searcher() {
        let set = crate::rules::RuleSet::builtin().unwrap();
        let plane = set.plane();
        assert!(
            matches!(plane.finder.finder, Some(literals::Finder::Packed(_))),
            "{} literals: {:?}",
            plane.literals.len(),
            plane.literals
        );
        // Slim Teddy with four-byte fingerprints: at most 32 probes, none
        // shorter than four bytes.
        let (probes, _) = literals::probes(&plane.literals[..plane.long], MAX_PROBES);
        assert_eq!(plane.finder.hits.len(), probes.len());
        assert!(probes.len() <= 32, "{probes:?}");
        assert!(probes.iter().all(|p| p.len() >= 4), "{probes:?}");
        assert!(plane.literals[plane.long..].iter().all(|l| l.len() < 4));
    }

    #[test]
    fn a_set_that_another_implies_is_not_searched_for() {
        // Wherever `.eyj` is, so is `eyj`: the need keeps `.eyj` alone.
        let ms = vec![m(Some(r"eyJ[a-z]{8,}\.eyJ[a-z]{8,}"), &[], &[])];
        let plane = Plane::new([(ms.as_slice(), None)]);
        assert_eq!(plane.literals, vec![b".eyj".to_vec()]);
        assert_eq!(plane.needs[0].regex, vec![vec![0]]);
    }

    #[test]
    fn merged_and_short_literals_are_found_exactly_where_the_line_holds_them() {
        // More literals than probes, sharing substrings, so that they are
        // merged; and short ones, searched apart.
        let mut lits: Vec<String> = Vec::new();
        for stem in ["secret_access", "login_fail", "accepted ", "denied"] {
            for tail in ["", "_key", "ure", " for x", "exception", "ed"] {
                lits.push(format!("{stem}{tail}"));
                lits.push(format!("x{stem}{tail}"));
            }
        }
        lits.extend(["401", "403", "xox", "tok", "abcd", "bcde"].map(String::from));
        let ms: Vec<Matcher> = lits.iter().map(|l| m(Some(l), &[], &[])).collect();
        let plane = Plane::new([(ms.as_slice(), None)]);
        let (probes, _) = literals::probes(&plane.literals[..plane.long], MAX_PROBES);
        assert!(
            probes.len() <= MAX_PROBES && plane.long > MAX_PROBES,
            "{probes:?}"
        );
        assert_eq!(plane.literals.len() - plane.long, 4);
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut scan = Scan::default();
        let pieces = [
            "ed", "x", " ", "4", "0", "AcCe", "_", "for", "bc", "o", "ure",
        ];
        for _ in 0..5_000 {
            let mut line = String::new();
            for _ in 0..rng.below(6) {
                if rng.below(2) == 0 {
                    line += &lits[rng.below(lits.len())];
                } else {
                    line += pieces[rng.below(pieces.len())];
                }
            }
            let line = if rng.below(2) == 0 {
                line.to_uppercase()
            } else {
                line
            };
            plane.scan(&line, &mut scan);
            for (at, lit) in lits.iter().enumerate() {
                let held = line.to_ascii_lowercase().contains(lit.as_str());
                assert_eq!(plane.candidate(at, &scan), held, "{lit:?} in {line:?}");
            }
        }
    }

    #[test]
    fn sets_across_words_of_bits_are_met_exactly_where_the_line_holds_them() {
        // Over a hundred literals: sets whose members lie in different
        // words of bits, short members among them, and needs of two sets.
        let lit = |k: usize| format!("lit{k:03}x");
        let mut specs: Vec<Vec<Vec<String>>> = (0..100).map(|k| vec![vec![lit(k)]]).collect();
        for k in 0..20 {
            specs.push(vec![vec![lit(k), lit(99 - k)]]);
            specs.push(vec![vec![lit(70 + k), ["q7z", "w8y"][k % 2].to_string()]]);
            specs.push(vec![vec![lit(k)], vec![lit(80 + k)]]);
        }
        let regex = |spec: &Vec<Vec<String>>| {
            let sets: Vec<String> = spec
                .iter()
                .map(|s| format!("(?:{})", s.join("|")))
                .collect();
            sets.join("(?s:.*)")
        };
        let ms: Vec<Matcher> = specs.iter().map(|s| m(Some(&regex(s)), &[], &[])).collect();
        let rules: Vec<&[Matcher]> = ms.chunks(7).collect();
        let plane = Plane::new(rules.iter().map(|r| (*r, None)));
        assert!(plane.literals.len() > 64, "{}", plane.literals.len());
        assert!(
            plane
                .need_bits
                .iter()
                .any(|t| t.sets.iter().any(|b| !b.rest.is_empty()))
        );
        let mut rng = Rng(0x5851_f42d_4c95_7f2d);
        let (mut scan, mut memo) = (Scan::default(), Memo::default());
        for _ in 0..3_000 {
            let mut line = String::new();
            for _ in 0..rng.below(5) {
                match rng.below(3) {
                    0 => line += &lit(rng.below(100)),
                    1 => line += ["q7z", "w8y", "LIT0", "x ", "7z"][rng.below(5)],
                    _ => line += &lit(rng.below(100)).to_uppercase(),
                }
            }
            plane.begin(&line, false, &mut scan, &mut memo);
            let lower = line.to_ascii_lowercase();
            for (at, spec) in specs.iter().enumerate() {
                let held = spec
                    .iter()
                    .all(|s| s.iter().any(|l| lower.contains(l.as_str())));
                assert_eq!(plane.candidate(at, &scan), held, "{spec:?} in {line:?}");
            }
            for (ri, r) in rules.iter().enumerate() {
                let direct = r.iter().find_map(|m| m.matches(&line, None));
                let via = plane.first_match(ri, &line, &scan, &mut memo);
                assert_eq!(via, direct, "rule {ri} on {line:?}");
            }
        }
    }

    #[test]
    fn lowercase_answers_as_the_plain_loop_at_every_length_and_offset() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let alphabet: Vec<char> = "aZ@[`{\\\u{7f}\u{80}ſK09 _\"\n".chars().collect();
        let mut out = Vec::new();
        for len in 0..80 {
            for _ in 0..40 {
                let line: String = (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect();
                let b = line.as_bytes();
                let got = lowercase(b, &mut out);
                assert_eq!(out, b.to_ascii_lowercase(), "{line:?}");
                assert_eq!(got, (!b.is_ascii(), b.contains(&b'\\')), "{line:?}");
            }
        }
    }

    #[test]
    fn regex_captures_become_fields() {
        let mt = m(Some(r"from (?P<source_ip>\S+)"), &[], &[]);
        let f = mt
            .matches("Failed password for root from 203.0.113.7 port 22", None)
            .unwrap();
        assert_eq!(field(&f, "source_ip"), Some("203.0.113.7"));
        assert!(mt.matches("Accepted password", None).is_none());
    }

    #[test]
    fn json_conditions_and_fields_flat_nested_and_inside_message() {
        let mt = m(
            None,
            &[
                ("event.outcome", &["failure"]),
                ("event.category", &["authentication"]),
            ],
            &[
                ("source_ip", &["source.ip", "ip"]),
                ("user", &["user.name"]),
            ],
        );
        let flat: Value = serde_json::from_str(
            r#"{"event.outcome":"failure","event.category":"authentication","source.ip":"1.2.3.4"}"#,
        )
        .unwrap();
        assert_eq!(
            field(&mt.matches("", Some(&flat)).unwrap(), "source_ip"),
            Some("1.2.3.4")
        );
        let nested: Value = serde_json::from_str(
            r#"{"event":{"outcome":"failure","category":["authentication"]},"source":{"ip":"5.6.7.8"},"user":{"name":"bob"}}"#,
        )
        .unwrap();
        let f = mt.matches("", Some(&nested)).unwrap();
        assert_eq!(field(&f, "source_ip"), Some("5.6.7.8"));
        assert_eq!(field(&f, "user"), Some("bob"));
        let wrapped: Value = serde_json::from_str(
            r#"{"level":"WARN","message":"{\"event\":{\"outcome\":\"failure\",\"category\":\"authentication\"},\"ip\":\"9.9.9.9\"}"}"#,
        )
        .unwrap();
        assert_eq!(
            field(&mt.matches("", Some(&wrapped)).unwrap(), "source_ip"),
            Some("9.9.9.9")
        );
        let success: Value =
            serde_json::from_str(r#"{"event":{"outcome":"success","category":"authentication"}}"#)
                .unwrap();
        assert!(mt.matches("", Some(&success)).is_none());
        assert!(mt.matches("not json", None).is_none());
    }

    #[test]
    fn a_double_encoded_message_a_strict_parser_rejects_still_matches() {
        // The outer line is valid JSON; the `message` string inside it holds
        // a lone surrogate in the user name and a NaN.
        let mt = m(
            None,
            &[("event", &["login_failed"])],
            &[("source_ip", &["source_ip"]), ("user", &["user"])],
        );
        let outer: Value = serde_json::from_str(
            r#"{"level":"WARN","message":"{\"event\":\"login_failed\",\"n\":NaN,\"source_ip\":\"192.0.2.9\",\"user\":\"\\ud800x\"}"}"#,
        )
        .unwrap();
        let f = mt.matches("", Some(&outer)).unwrap();
        assert_eq!(field(&f, "source_ip"), Some("192.0.2.9"));
        assert_eq!(field(&f, "user"), Some("\u{FFFD}x"));
    }

    #[test]
    fn numbers_match_by_text() {
        let mt = m(
            None,
            &[("status", &["401", "403"])],
            &[("source_ip", &["ip"])],
        );
        let v: Value = serde_json::from_str(r#"{"status":401,"ip":"1.1.1.1"}"#).unwrap();
        assert!(mt.matches("", Some(&v)).is_some());
        let v: Value = serde_json::from_str(r#"{"status":"200","ip":"1.1.1.1"}"#).unwrap();
        assert!(mt.matches("", Some(&v)).is_none());
    }

    #[test]
    fn exclude_drops_listed_values() {
        let mut mt = m(Some(r"pam_unix\((?P<service>[^:]+):auth\)"), &[], &[]);
        mt.exclude = vec![("service".into(), vec!["sshd".into()])];
        assert!(
            mt.matches("pam_unix(sshd:auth): authentication failure", None)
                .is_none()
        );
        assert!(
            mt.matches("pam_unix(login:auth): authentication failure", None)
                .is_some()
        );
    }

    /// The plane's answer for every rule with line matchers, and the answer
    /// of running the rule's own matchers (and secret finder) directly.
    fn both(set: &crate::rules::RuleSet, body: &str, is_json: bool) -> Vec<(String, String)> {
        let plane = set.plane();
        let (mut scan, mut memo) = (Scan::default(), Memo::default());
        plane.begin(body, is_json, &mut scan, &mut memo);
        let json = if is_json {
            crate::lenient_json::from_str(body)
        } else {
            None
        };
        let mut out = Vec::new();
        for (ri, r) in set.rules.iter().enumerate() {
            let direct = r
                .detector
                .matchers()
                .iter()
                .find_map(|m| m.matches(body, json.as_ref()));
            let via = plane.first_match(ri, body, &scan, &mut memo);
            let mut d = format!("{direct:?}");
            let mut v = format!("{via:?}");
            if let Some(f) = r.detector.secrets() {
                d += &format!(" {:?}", f.find(body));
                v += &format!(" {:?}", plane.secrets(ri, f, body, &scan));
            }
            out.push((d, v));
        }
        out
    }

    fn assert_same(set: &crate::rules::RuleSet, body: &str) -> usize {
        let mut matched = 0;
        for is_json in [false, true] {
            for (i, (d, v)) in both(set, body, is_json).into_iter().enumerate() {
                assert_eq!(
                    d, v,
                    "rule {} on {body:?} (json: {is_json})",
                    set.rules[i].id
                );
                matched += usize::from(d != "None" && d != "None []");
            }
        }
        matched
    }

    /// Lines that match the built-in pack's line rules, in their shapes.
    const SEEDS: &[&str] = &[
        "Failed password for root from 203.0.113.7 port 22 ssh2",
        "Failed publickey for invalid user admin from 2001:db8::1 port 5022",
        "Invalid user oracle from 198.51.100.4 port 4242",
        "pam_unix(login:auth): authentication failure; logname= uid=0 euid=0 tty=/dev/tty1 ruser= rhost=192.0.2.55  user=root",
        r#"{"level":"WARN","event":"login_failed","user":"trent","source_ip":"203.0.113.7"}"#,
        r#"{"action":"auth_failed","username":"bob","ip":"10.0.0.1"}"#,
        r#"{"event":{"outcome":"failure","category":["authentication"]},"source":{"ip":"5.6.7.8"},"user":{"name":"eve"}}"#,
        r#"{"status":401,"ip":"1.1.1.1","user":"carol"}"#,
        r#"{"level":"WARN","message":"{\"event\":\"login_failure\",\"source_ip\":\"192.0.2.9\",\"user\":\"x\"}"}"#,
        "User: arn:aws:sts::123456789012:assumed-role/r/f is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:123456789012:key/1",
        "An error occurred (AccessDenied) when calling the GetObject operation: Access Denied",
        r#"{"errorType":"AccessDeniedException","errorMessage":"nope"}"#,
        r#"{"eventName":"PutObject","errorCode":"AccessDenied","userIdentity":{"arn":"arn:aws:iam::1:user/ci"}}"#,
        r#"{"name":"AccessDenied","Code":"AccessDeniedException","operation":"x"}"#,
        "using key AKIAIOSFODNN7EXAMPLE and aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl",
        "authorization: Basic dXNlcjpwYXNz",
        "token xoxb-1234567890-abcdefghij and https://hooks.slack.com/services/T000/B000/XXXX",
        "GET https://admin:s3cr3t@internal.example.com/health",
        "INFO all good, nothing to see here",
        r#"{"level":"INFO","message":"request","status":200,"path":"/api/orders","duration_ms":401.5}"#,
    ];

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// One hostile rewrite of `line`: case changes, `\u` escapes of single
    /// characters, Unicode case folds (Kelvin sign, long s), a double
    /// encoding into `message`, truncation, or insertions of noise.
    fn mutate(line: &str, rng: &mut Rng) -> String {
        let chars: Vec<char> = line.chars().collect();
        let mut out = String::new();
        match rng.below(7) {
            0 => {
                for c in chars {
                    if rng.below(3) == 0 {
                        out.extend(if c.is_ascii_lowercase() {
                            c.to_uppercase().collect::<Vec<_>>()
                        } else {
                            c.to_lowercase().collect()
                        });
                    } else {
                        out.push(c);
                    }
                }
            }
            1 => {
                for c in chars {
                    if c.is_ascii_alphanumeric() && rng.below(4) == 0 {
                        out += &format!("\\u{:04x}", c as u32);
                    } else {
                        out.push(c);
                    }
                }
            }
            2 => {
                for c in chars {
                    match c {
                        'k' | 'K' if rng.below(2) == 0 => out.push('\u{212A}'),
                        's' | 'S' if rng.below(2) == 0 => out.push('\u{17F}'),
                        _ => out.push(c),
                    }
                }
            }
            3 => {
                out = serde_json::json!({"level": "WARN", "message": line}).to_string();
            }
            4 => {
                let cut = rng.below(chars.len() + 1);
                out = chars[..cut].iter().collect();
            }
            5 => {
                let at = rng.below(chars.len() + 1);
                out = chars[..at].iter().collect();
                out += ["\\", "\\u", "\"", " ", "{", "\u{FFFD}"][rng.below(6)];
                out.extend(&chars[at..]);
            }
            _ => {
                // Splice two seeds.
                let other = SEEDS[rng.below(SEEDS.len())];
                let at = rng.below(chars.len() + 1);
                out = chars[..at].iter().collect();
                out += other;
            }
        }
        out
    }

    #[test]
    fn the_plane_answers_what_every_matcher_answers_run_directly() {
        let set = crate::rules::RuleSet::builtin().unwrap();
        let mut matched = 0;
        for seed in SEEDS {
            matched += assert_same(&set, seed);
        }
        // Every seed but the quiet ones matches something directly.
        assert!(matched >= SEEDS.len(), "{matched}");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut line = SEEDS[rng.below(SEEDS.len())].to_string();
            for _ in 0..=rng.below(3) {
                line = mutate(&line, &mut rng);
            }
            assert_same(&set, &line);
        }
    }

    #[test]
    fn the_plane_answers_what_every_matcher_answers_on_the_fixtures() {
        let set = crate::rules::RuleSet::builtin().unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut lines = Vec::new();
        let mut dirs = vec![root];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                let docs: Vec<Value> = match serde_json::from_str::<Value>(&text) {
                    Ok(v) => vec![v],
                    Err(_) => text
                        .lines()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect(),
                };
                let events = docs
                    .iter()
                    .filter_map(|v| v.get("logEvents")?.as_array())
                    .flatten();
                let messages = events.filter_map(|e| e.get("message")?.as_str());
                lines.extend(messages.map(str::to_string));
                if p.extension().is_some_and(|x| x == "log") {
                    lines.extend(text.lines().map(str::to_string));
                }
            }
        }
        assert!(lines.len() > 100, "{}", lines.len());
        let mut matched = 0;
        for l in &lines {
            let body = match crate::platform::parse(l) {
                crate::platform::Record::App(a) => a.body.to_string(),
                _ => l.clone(),
            };
            matched += assert_same(&set, &body);
        }
        assert!(matched > 10, "{matched}");
    }

    #[test]
    fn an_escaped_json_value_does_not_blind_the_plane() {
        let set = crate::rules::RuleSet::builtin().unwrap();
        let ri = set
            .rules
            .iter()
            .position(|r| r.id == "failed-auth-burst")
            .unwrap();
        let body = r#"{"event":"login\u005ffailed","source_ip":"203.0.113.7","user":"x"}"#;
        let (mut scan, mut memo) = (Scan::default(), Memo::default());
        set.plane().begin(body, true, &mut scan, &mut memo);
        let f = set.plane().first_match(ri, body, &scan, &mut memo).unwrap();
        assert_eq!(field(&f, "source_ip"), Some("203.0.113.7"));
    }

    #[test]
    fn identical_matchers_of_two_rules_are_one_in_the_plane() {
        let set = crate::rules::RuleSet::builtin().unwrap();
        let ids = |id: &str| {
            let ri = set.rules.iter().position(|r| r.id == id).unwrap();
            set.plane().rule_matchers(ri).to_vec()
        };
        assert_eq!(ids("failed-auth-burst"), ids("password-spraying"));
        assert_eq!(ids("failed-auth-burst").len(), 9);
        // A quiet line costs the prefilter pass only: no matcher is a candidate.
        let (mut scan, mut memo) = (Scan::default(), Memo::default());
        set.plane().begin(
            "INFO all good, nothing to see here",
            false,
            &mut scan,
            &mut memo,
        );
        assert!((0..set.plane().len()).all(|m| !set.plane().candidate(m, &scan)));
    }
}
