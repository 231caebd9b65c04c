//! A matcher's regex: compiled once per process, and for the built-in pack
//! only when a line first needs it.
//!
//! Compiling the built-in pack's ten distinct matcher regexes (Unicode `\S`,
//! `\d`, `\w` classes, forward and reverse automata) was 21.8 M of the
//! 43.1 M instructions of a replay that reads no input (callgrind), every
//! start of the CLI and of the Lambda detector, though on most logs no line
//! ever reaches most of them (on the bench corpus, none does). A rule file
//! of the user's is compiled when it is loaded, so that a regex the `regex`
//! crate rejects (a syntax error, or a compiled program over the size
//! limit) is a load error naming the file and line; the built-in pack's
//! regexes are each compiled by a test
//! (`every_built_in_regex_compiles`), so deferring theirs loses no error.

use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};
use regex_syntax::hir::{Hir, HirKind};

use super::config::{MAX_REGEX_COMPILED_BYTES, MAX_REGEX_NESTING};
use super::literals::{AnyOf, required_of};

/// When a rule's regexes are compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegexCompile {
    /// At load: a regex the `regex` crate rejects is a load error.
    AtLoad,
    /// When a line first needs it, after a syntax check at load. Only for
    /// rules whose every regex is known to compile (the built-in pack).
    OnFirstUse,
}

/// A matcher's regex.
#[derive(Debug, Clone)]
pub struct RuleRegex {
    pattern: Box<str>,
    /// Names of its capture groups, in group order.
    names: Vec<String>,
    /// What every match contains ([`super::literals::required`]), for the
    /// plane: read from the same parse as the names.
    required: Vec<AnyOf>,
    /// The compiled regex, once compiled; `None` inside if compiling failed,
    /// which a deferred regex never does (see the module docs). A clone
    /// brings its own scratch space.
    compiled: OnceLock<Option<Regex>>,
}

impl RuleRegex {
    /// `pattern`, compiled now or checked now and compiled on first use.
    /// The error is the `regex` crate's message.
    pub fn new(pattern: &str, when: RegexCompile) -> Result<RuleRegex, String> {
        let compiled = OnceLock::new();
        if when == RegexCompile::AtLoad {
            let _ = compiled.set(Some(compile_regex(pattern)?));
        }
        // One parse gives the capture names and the required literals; the
        // syntax check of a deferred regex.
        let hir = regex_syntax::ParserBuilder::new()
            .nest_limit(MAX_REGEX_NESTING)
            .build()
            .parse(pattern)
            .map_err(|e| e.to_string())?;
        let mut names = Vec::new();
        capture_names(&hir, &mut names);
        Ok(RuleRegex {
            pattern: pattern.into(),
            names,
            required: required_of(&hir),
            compiled,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Names of the capture groups, in group order.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// The compiled regex (compiled now if it was deferred); `None` only if
    /// a deferred regex failed to compile, then it matches nothing.
    pub fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| compile_regex(&self.pattern).ok())
            .as_ref()
    }

    /// The literal sets every match contains ([`super::literals::required`]).
    pub fn required(&self) -> &[AnyOf] {
        &self.required
    }

    /// Whether it has been compiled.
    pub fn is_compiled(&self) -> bool {
        self.compiled.get().is_some()
    }
}

impl From<Regex> for RuleRegex {
    fn from(re: Regex) -> RuleRegex {
        RuleRegex {
            pattern: re.as_str().into(),
            names: re.capture_names().flatten().map(str::to_owned).collect(),
            required: super::literals::required(re.as_str()),
            compiled: OnceLock::from(Some(re)),
        }
    }
}

/// The capture names of `h`, left to right: the order of their groups'
/// opening parentheses, which is the order of their indices.
fn capture_names(h: &Hir, out: &mut Vec<String>) {
    match h.kind() {
        HirKind::Capture(c) => {
            if let Some(name) = &c.name {
                out.push(name.to_string());
            }
            capture_names(&c.sub, out);
        }
        HirKind::Repetition(r) => capture_names(&r.sub, out),
        HirKind::Concat(hs) | HirKind::Alternation(hs) => {
            hs.iter().for_each(|h| capture_names(h, out));
        }
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => {}
    }
}

/// A matcher's regex, compiled once per process however many rules hold
/// it (`failed-auth-burst` and `password-spraying` share five): a clone
/// shares the compiled program and brings its own scratch space. Rule files
/// compile on two threads; one waits for the other's compile of the same
/// pattern. The second compile of those five was 8.7 M of the 55.7 M
/// instructions of loading the built-in pack (callgrind).
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex};

    type Slot = Arc<OnceLock<Result<Regex, String>>>;
    /// Most patterns remembered: rule packs are tens of rules; a process
    /// that compiles more distinct ones (a test suite) compiles the rest
    /// every time.
    const MOST: usize = 512;
    static SEEN: LazyLock<Mutex<HashMap<String, Slot>>> = LazyLock::new(Default::default);

    let build = || {
        RegexBuilder::new(pattern)
            .size_limit(MAX_REGEX_COMPILED_BYTES)
            .nest_limit(MAX_REGEX_NESTING)
            .build()
            .map_err(|e| e.to_string())
    };
    let slot = {
        // A poisoned lock (a panic elsewhere while holding it) only loses
        // the sharing.
        let Ok(mut seen) = SEEN.lock() else {
            return build();
        };
        match seen.get(pattern) {
            Some(slot) => Arc::clone(slot),
            None if seen.len() < MOST => {
                let slot = Slot::default();
                seen.insert(pattern.to_owned(), Arc::clone(&slot));
                slot
            }
            None => return build(),
        }
    };
    slot.get_or_init(build).clone()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_regex_asked_for_again_is_the_same_regex_and_an_error_the_same_error() {
        let p = r"Failed (?P<what>\S+) for (?P<user>\S+) from (?P<ip>\S+)";
        let (a, b) = (compile_regex(p).unwrap(), compile_regex(p).unwrap());
        assert_eq!(a.as_str(), p);
        let line = "Failed password for root from 203.0.113.7";
        assert_eq!(
            a.captures(line).unwrap()["ip"],
            b.captures(line).unwrap()["ip"]
        );
        let first = compile_regex("(unclosed").unwrap_err();
        assert!(first.contains("unclosed group"), "{first}");
        assert_eq!(compile_regex("(unclosed").unwrap_err(), first);
        let big = r"\w{500}\w{500}";
        let too_big = compile_regex(big).unwrap_err();
        assert!(too_big.contains("size limit"), "{too_big}");
        assert_eq!(compile_regex(big).unwrap_err(), too_big);
    }

    #[test]
    fn a_deferred_regex_names_its_captures_as_the_compiled_one_does() {
        for p in [
            r"(?P<a>x)(y)(?:(?P<b>z)|(?P<c>w(?P<d>v)))+",
            r"no captures",
            r"(?<a>[^:)]+)\((?P<b>\d+)\)*",
        ] {
            let now = RuleRegex::new(p, RegexCompile::AtLoad).unwrap();
            let later = RuleRegex::new(p, RegexCompile::OnFirstUse).unwrap();
            assert!(now.is_compiled() && !later.is_compiled(), "{p}");
            let names = |r: &RuleRegex| r.capture_names().map(str::to_owned).collect::<Vec<_>>();
            assert_eq!(names(&later), names(&now), "{p}");
            let required = super::super::literals::required(p);
            assert_eq!(now.required(), required.as_slice(), "{p}");
            assert_eq!(later.required(), required.as_slice(), "{p}");
            let compiled = later.get().unwrap();
            assert!(later.is_compiled());
            let from_regex: Vec<_> = compiled.capture_names().flatten().collect();
            assert_eq!(names(&later), from_regex, "{p}");
        }
    }

    #[test]
    fn a_syntax_error_is_an_error_either_way_and_the_size_limit_at_load() {
        for when in [RegexCompile::AtLoad, RegexCompile::OnFirstUse] {
            let e = RuleRegex::new("(unclosed", when).unwrap_err();
            assert!(e.contains("unclosed group"), "{when:?}: {e}");
            let deep = format!("{}x{}", "(".repeat(100), ")".repeat(100));
            let e = RuleRegex::new(&deep, when).unwrap_err();
            assert!(e.contains("nest"), "{when:?}: {e}");
        }
        let e = RuleRegex::new(r"\w{500}\w{500}", RegexCompile::AtLoad).unwrap_err();
        assert!(e.contains("size limit"), "{e}");
        // Deferred, the same pattern passes the syntax check and matches
        // nothing: why only the built-in pack (every regex proven to
        // compile) defers.
        let late = RuleRegex::new(r"\w{500}\w{500}", RegexCompile::OnFirstUse).unwrap();
        assert!(late.get().is_none());
    }
}
