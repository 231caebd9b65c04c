//! Rule files → compiled rules.
//!
//! One YAML rule per file (`<id>.yaml`), read in two stages as ripgrep reads
//! its configuration: raw (serde, every field optional so that one pass can
//! report every problem) → compiled (regexes built, durations parsed, the
//! detector of the rule's kind configured). Every error is collected with
//! `path:line: message`; none stops the others from being reported.

mod compile;
pub mod limits;
pub use crate::detect::matcher;
mod raw;
mod raw_yaml;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::detect::Detector;
pub use crate::detect::Kind;
pub use crate::detect::config::MAX_RULE_DURATION_MS;
use crate::detect::config::line_of;
use crate::detect::rule_regex::RegexCompile;
use crate::time::Millis;
pub use compile::TEST_EPOCH_MS;
use compile::compile;
pub use matcher::{Fields, Matcher};

/// The built-in rule pack (`detectors/`), compiled into the binary.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "failed-auth-burst.yaml",
        include_str!("../../detectors/failed-auth-burst.yaml"),
    ),
    (
        "missing-end.yaml",
        include_str!("../../detectors/missing-end.yaml"),
    ),
    (
        "invocation-timeout.yaml",
        include_str!("../../detectors/invocation-timeout.yaml"),
    ),
    (
        "out-of-memory.yaml",
        include_str!("../../detectors/out-of-memory.yaml"),
    ),
    (
        "runtime-exit.yaml",
        include_str!("../../detectors/runtime-exit.yaml"),
    ),
    (
        "init-failure.yaml",
        include_str!("../../detectors/init-failure.yaml"),
    ),
    (
        "duration-anomaly.yaml",
        include_str!("../../detectors/duration-anomaly.yaml"),
    ),
    (
        "memory-anomaly.yaml",
        include_str!("../../detectors/memory-anomaly.yaml"),
    ),
    (
        "invocation-spike.yaml",
        include_str!("../../detectors/invocation-spike.yaml"),
    ),
    (
        "memory-leak.yaml",
        include_str!("../../detectors/memory-leak.yaml"),
    ),
    (
        "password-spraying.yaml",
        include_str!("../../detectors/password-spraying.yaml"),
    ),
    (
        "unauthorized-access.yaml",
        include_str!("../../detectors/unauthorized-access.yaml"),
    ),
    (
        "secret-in-logs.yaml",
        include_str!("../../detectors/secret-in-logs.yaml"),
    ),
    (
        "brute-force-success.yaml",
        include_str!("../../detectors/brute-force-success.yaml"),
    ),
];

/// Whether a rule's alerts are delivered (`mode:` in a rule file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Delivered to the sinks (the default).
    #[default]
    Live,
    /// Evaluated and shown (replay, the detector's log), never delivered:
    /// a rule on trial.
    Shadow,
}

/// When a rule's incident resolves, from `resolve_after` or its kind's default
/// ([`crate::detect::Detect::resolve_after`], [`crate::detect::Detect::clear_run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolve {
    /// Event time with nothing folded into the incident after which it resolves.
    pub after_ms: Millis,
    /// Clear observations in a row (e.g. normal invocations) that resolve it
    /// sooner; `None` when only quiet time does (always so for an explicit
    /// `resolve_after`).
    pub clear_run: Option<u32>,
    /// Whether its resolution goes to the sinks (`notify_resolved`, default true).
    pub notify: bool,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Look today.
    Medium,
    /// Look now.
    High,
    /// Wake someone.
    Critical,
}

impl Severity {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl From<Severity> for crate::alert::AlertSeverity {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Low => Self::Low,
            Severity::Medium => Self::Medium,
            Severity::High => Self::High,
            Severity::Critical => Self::Critical,
        }
    }
}

/// A problem in a rule file, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct RuleError {
    /// The rule file.
    pub path: String,
    /// 1-based line (1 when the problem is the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Every problem found while loading a rule directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

/// A built-in rule file's text without its top-level `tests:` entry: the
/// lines from `tests:` at column 0 up to the next top-level key (a line
/// that starts with neither a space, a `#`, a `-` nor ends the file). Only
/// for the built-in files, whose layout a test pins
/// (`the_built_in_rules_compile_the_same_without_their_tests`).
fn without_tests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tests = false;
    for line in text.split_inclusive('\n') {
        let top_level = !line.starts_with([' ', '\t', '#', '-', '\n', '\r']);
        if top_level {
            in_tests = line.starts_with("tests:");
        }
        if !in_tests {
            out.push_str(line);
        }
    }
    out
}

/// One event of an inline rule test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestEvent {
    /// Event time.
    pub timestamp: Millis,
    /// Log stream (default `test-stream`).
    pub log_stream: String,
    /// The message.
    pub message: String,
}

/// An inline test from a rule's `tests:` list.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTest {
    /// What it shows.
    pub name: String,
    /// Log group the events are in.
    pub log_group: String,
    /// The events, in order.
    pub events: Vec<TestEvent>,
    /// Watermark at the end of input (default: the last event time).
    pub now: Option<Millis>,
    /// How many alerts of this rule must fire.
    pub expect_alerts: usize,
    /// When given, the key of every alert.
    pub expect_key: Option<BTreeMap<String, String>>,
    /// When given, the count of the first alert.
    pub expect_count: Option<u64>,
    /// Line of the test in the rule file, for failure messages.
    pub line: usize,
}

/// One compiled rule: immutable, shared by every batch.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id (file name without `.yaml`).
    pub id: String,
    /// One-line title.
    pub title: String,
    /// Severity of its alerts.
    pub severity: Severity,
    /// Detector kind.
    pub kind: Kind,
    /// What it detects and what to do, for people.
    pub description: String,
    /// The same rule and key alert at most once per this span of event time.
    pub realert_ms: Millis,
    /// When its incidents resolve.
    pub resolve: Resolve,
    /// Live or shadow.
    pub mode: Mode,
    /// The configured detector.
    pub detector: Detector,
    /// Inline tests.
    pub tests: Vec<RuleTest>,
    /// Where it was loaded from.
    pub source: String,
}

/// All rules in force, compiled once.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Rules in id order.
    pub rules: Vec<Arc<Rule>>,
    /// Every rule's line matchers compiled together (built with the set).
    plane: Arc<crate::detect::matcher::Plane>,
}

impl RuleSet {
    /// A set of these rules (in the order given), with their matching plane.
    pub fn new(rules: Vec<Arc<Rule>>) -> RuleSet {
        let plane = crate::detect::matcher::Plane::new(
            rules
                .iter()
                .map(|r| (r.detector.matchers(), r.detector.secrets())),
        );
        RuleSet {
            rules,
            plane: Arc::new(plane),
        }
    }

    /// The matching plane: plane rule `i` is `rules[i]`.
    pub fn plane(&self) -> &crate::detect::matcher::Plane {
        &self.plane
    }

    /// The built-in pack.
    pub fn builtin() -> Result<RuleSet, RuleErrors> {
        let files: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(name, text)| (format!("detectors/{name}"), (*text).to_string()))
            .collect();
        RuleSet::from_trusted(files)
    }

    /// The built-in pack without its inline tests: what detection needs
    /// (`replay`, `backtest`, `sweep`, the Lambda detector). The tests are
    /// about 89 % of the pack's YAML, and reading them was about half of
    /// the rule loading at every start (callgrind: the whole pack 101 M
    /// instructions, its YAML 56 M). `rules check` and `rules test` load
    /// them ([`RuleSet::builtin`], [`RuleSet::load_partial`]).
    pub fn builtin_for_detection() -> Result<RuleSet, RuleErrors> {
        let files: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(name, text)| (format!("detectors/{name}"), without_tests(text)))
            .collect();
        RuleSet::from_trusted(files)
    }

    /// Every `*.yaml`/`*.yml` file in `dir` (not recursive), in name order.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleErrors> {
        let (set, errors) = RuleSet::load_partial(Some(dir));
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(RuleErrors(errors))
        }
    }

    /// The rules of `dir` (the built-in pack when `None`) that compile, and
    /// every problem of the others: `rules check` runs the inline tests of
    /// the good rules even when another rule is broken.
    pub fn load_partial(dir: Option<&Path>) -> (RuleSet, Vec<RuleError>) {
        let (files, mut errors, regexes) = match dir {
            Some(d) => {
                let (files, errors) = read_sources(d);
                (files, errors, RegexCompile::AtLoad)
            }
            None => (
                BUILTIN
                    .iter()
                    .map(|(name, text)| (format!("detectors/{name}"), (*text).to_string()))
                    .collect(),
                Vec::new(),
                RegexCompile::OnFirstUse,
            ),
        };
        let (set, more) = RuleSet::compile_partial(files, regexes);
        errors.extend(more);
        errors.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        (set, errors)
    }

    /// Compile rule texts given as `(path, text)`; all errors are collected.
    pub fn from_sources(files: Vec<(String, String)>) -> Result<RuleSet, RuleErrors> {
        RuleSet::compile_sources(files, RegexCompile::AtLoad)
    }

    /// The built-in pack's texts: [`RuleSet::from_sources`], but each regex
    /// compiled when a line first needs it (see [`crate::detect::rule_regex`]).
    fn from_trusted(files: Vec<(String, String)>) -> Result<RuleSet, RuleErrors> {
        RuleSet::compile_sources(files, RegexCompile::OnFirstUse)
    }

    fn compile_sources(
        files: Vec<(String, String)>,
        regexes: RegexCompile,
    ) -> Result<RuleSet, RuleErrors> {
        let (set, mut errors) = RuleSet::compile_partial(files, regexes);
        if errors.is_empty() {
            Ok(set)
        } else {
            errors.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
            Err(RuleErrors(errors))
        }
    }

    fn compile_partial(
        files: Vec<(String, String)>,
        regexes: RegexCompile,
    ) -> (RuleSet, Vec<RuleError>) {
        let mut errors = Vec::new();
        let mut rules: Vec<Arc<Rule>> = Vec::new();
        let mut seen = HashSet::new();
        // `(path, line, rule id)` of each rule a sequence follows: it must exist.
        let mut follows: Vec<(String, usize, String)> = Vec::new();
        let compiled = compile_all(&files, regexes);
        for ((path, text), compiled) in files.into_iter().zip(compiled) {
            match compiled {
                Ok(rule) => {
                    if let Some(id) = rule.detector.follows() {
                        follows.push((path.clone(), line_of(&text, "rule:"), id.to_string()));
                    }
                    if !seen.insert(rule.id.clone()) {
                        errors.push(RuleError {
                            line: line_of(&text, "id:"),
                            path,
                            message: format!("duplicate rule id `{}`", rule.id),
                        });
                    } else {
                        rules.push(Arc::new(rule));
                    }
                }
                Err(mut es) => errors.append(&mut es),
            }
        }
        for (path, line, id) in follows {
            if !seen.contains(&id) {
                errors.push(RuleError {
                    path,
                    line,
                    message: format!("`steps` follows rule `{id}`, which is not in the rule set"),
                });
            }
        }
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        (RuleSet::new(rules), errors)
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// Whether [`compile_all`] may use a second thread ([`compile_serially`]).
static PARALLEL_COMPILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Compile rule files on the calling thread only, from now on. For the
/// Lambda detector: a function below 1,769 MB gets less than one vCPU
/// whatever `available_parallelism` says, so a second thread saves no time
/// there, and its malloc arena cost 1.1 MiB of peak RSS (`scripts/bench.sh`,
/// one 1 MB batch: 17.9 MiB with two threads, 16.7 MiB with one).
pub fn compile_serially() {
    PARALLEL_COMPILE.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// [`compile`] of every file, in order, on up to two threads: compiling the
/// rules' regexes is most of start-up (callgrind: 55 M instructions of a
/// replay's first 60 M), and a replay or a Lambda cold start waits for it.
fn compile_all(
    files: &[(String, String)],
    regexes: RegexCompile,
) -> Vec<Result<Rule, Vec<RuleError>>> {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if cores < 2 || files.len() < 2 || !PARALLEL_COMPILE.load(Ordering::Relaxed) {
        return files
            .iter()
            .map(|(path, text)| compile(path, text, regexes))
            .collect();
    }
    // Each thread takes the next file not yet taken: rule files differ in
    // cost (a rule of seven regexes beside one of none).
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some((path, text)) = files.get(i) else {
                return done;
            };
            done.push((i, compile(path, text, regexes)));
        }
    };
    let mut all = std::thread::scope(|scope| {
        let other = scope.spawn(work);
        let mut all = work();
        match other.join() {
            Ok(theirs) => all.extend(theirs),
            // It panicked compiling a file: resume that panic here.
            Err(panic) => std::panic::resume_unwind(panic),
        }
        all
    });
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, compiled)| compiled).collect()
}

/// The rule files of `dir` as `(path, text)`, and the problems reading them.
fn read_sources(dir: &Path) -> (Vec<(String, String)>, Vec<RuleError>) {
    let shown = dir.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            let error = RuleError {
                path: shown,
                line: 1,
                message: format!("cannot read rule directory: {e}"),
            };
            return (Vec::new(), vec![error]);
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for p in paths {
        match limits::read_rule_file(&p) {
            Ok(text) => files.push((p.display().to_string(), text)),
            Err(message) => errors.push(RuleError {
                path: p.display().to_string(),
                line: 1,
                message,
            }),
        }
    }
    if files.is_empty() && errors.is_empty() {
        errors.push(RuleError {
            path: shown,
            line: 1,
            message: "no rule files (*.yaml) in this directory".into(),
        });
    }
    (files, errors)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_compile_the_same_without_their_tests() {
        let full = RuleSet::builtin().unwrap();
        let lean = RuleSet::builtin_for_detection().unwrap();
        assert_eq!(full.rules.len(), lean.rules.len());
        for (f, l) in full.rules.iter().zip(&lean.rules) {
            assert!(!f.tests.is_empty(), "{} has inline tests", f.id);
            assert!(l.tests.is_empty(), "{}", l.id);
            let mut f = (**f).clone();
            f.tests.clear();
            assert_eq!(format!("{f:?}"), format!("{l:?}"));
        }
        assert_eq!(format!("{:?}", full.plane()), format!("{:?}", lean.plane()));
    }

    /// The built-in pack compiles its regexes when a line first needs them
    /// (`detect::rule_regex`): this proves each one compiles, so deferring
    /// them loses no load error.
    #[test]
    fn every_built_in_regex_compiles() {
        let files: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(name, text)| (format!("detectors/{name}"), (*text).to_string()))
            .collect();
        let at_load = RuleSet::from_sources(files).unwrap();
        let deferred = RuleSet::builtin().unwrap();
        let plane = deferred.plane();
        let mut regexes = 0;
        for at in 0..plane.len() {
            let Some(re) = &plane.matcher(at).regex else {
                continue;
            };
            assert!(!re.is_compiled(), "{}", re.as_str());
            assert!(re.get().is_some(), "{}", re.as_str());
            let loaded = at_load.plane().matcher(at).regex.as_ref().unwrap();
            assert!(loaded.is_compiled());
            assert_eq!(loaded.as_str(), re.as_str());
            regexes += 1;
        }
        assert!(regexes >= 10, "{regexes}");
    }

    #[test]
    fn without_tests_cuts_only_the_top_level_tests_entry() {
        let text = "id: x\ntests:\n- name: a\n  events:\n    - tests: no\n# note\nkind: threshold\ntests_x: 1\n";
        assert_eq!(without_tests(text), "id: x\nkind: threshold\ntests_x: 1\n");
    }

    fn errs(path: &str, text: &str) -> Vec<String> {
        RuleSet::from_sources(vec![(path.into(), text.into())])
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn builtin_pack_has_exactly_the_contract_ids() {
        let set = RuleSet::builtin().unwrap();
        let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "brute-force-success",
                "duration-anomaly",
                "failed-auth-burst",
                "init-failure",
                "invocation-spike",
                "invocation-timeout",
                "memory-anomaly",
                "memory-leak",
                "missing-end",
                "out-of-memory",
                "password-spraying",
                "runtime-exit",
                "secret-in-logs",
                "unauthorized-access"
            ]
        );
        for r in &set.rules {
            assert!(!r.tests.is_empty(), "{} has no inline tests", r.id);
        }
    }

    #[test]
    fn yaml_syntax_error_has_its_line() {
        let e = errs("x/bad.yaml", "id: bad\ntitle: t\nseverity: [oops\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("x/bad.yaml:"), "{e:?}");
        assert!(!e[0].starts_with("x/bad.yaml:1:"), "{e:?}");
    }

    /// Regression (fuzz): a description with bare `\r` put the line of a
    /// later YAML error past the end of the file.
    #[test]
    fn yaml_error_line_counts_newlines_only() {
        for sep in ["\r", "\u{85}", "\u{2028}", "\u{2029}"] {
            let text = format!(
                "id: bad\ndescription: \"a{sep}b{sep}c{sep}d\"\ntitle: é€😀\nseverity: [oops\n"
            );
            let e = RuleSet::from_sources(vec![("x/bad.yaml".into(), text.clone())]).unwrap_err();
            assert_eq!(e.0.len(), 1, "{e}");
            // `severity` is on line 4 (libyaml alone says 7).
            assert_eq!(e.0[0].line, 4, "{sep:?}: {e}");
        }
        // The index is in bytes: multi-byte text before the error
        // (a tab cannot indent YAML), and many lines after it.
        let text = format!(
            "id: bad\ntitle: {}\nseverity: high\n\tkind: pattern\n{}",
            "😀".repeat(40),
            "x: y\n".repeat(60)
        );
        let e = RuleSet::from_sources(vec![("x/bad.yaml".into(), text)]).unwrap_err();
        assert_eq!(e.0[0].line, 4, "{e}");
    }

    /// Regression (fuzz): `max_duration` of 64 digits overflowed event time
    /// plus the deadline in the engine; every rule duration is now bounded.
    #[test]
    fn durations_longer_than_a_year_are_errors() {
        let base = "id: r\ntitle: t\nseverity: high\nkind: lifecycle\n";
        let huge = format!("{}s", "8".repeat(64));
        for (field, value) in [
            ("max_duration", huge.as_str()),
            ("grace", "367d"),
            ("realert", "9999999999h"),
        ] {
            let text = format!("{base}{field}: {value}\n");
            let e = errs("d/r.yaml", &text).join("\n");
            assert!(
                e.contains(&format!(
                    "d/r.yaml:5: {field}: `{value}` is longer than 366d"
                )),
                "{e}"
            );
        }
        let ok = format!("{base}max_duration: 366d\n");
        assert!(RuleSet::from_sources(vec![("d/r.yaml".into(), ok)]).is_ok());
        let test = format!(
            "{base}tests:\n  - name: far\n    events:\n      - {{t: '+{huge}', message: x}}\n    expect_alerts: 0\n"
        );
        let e = errs("d/r.yaml", &test).join("\n");
        assert!(e.contains("is longer than 366d"), "{e}");
    }

    #[test]
    fn all_problems_are_reported_with_lines() {
        let text = "id: wrong-name\ntitle: t\nseverity: high\nkind: threshold\nmatch:\n  - regex: 'a(b'\nwindow: 10 parsecs\nthreshold: 0\non: [timeout]\n";
        let e = errs("d/r.yaml", text);
        let joined = e.join("\n");
        assert!(
            joined.contains("d/r.yaml:1: id `wrong-name` must match the file name"),
            "{joined}"
        );
        assert!(joined.contains("d/r.yaml:6: invalid regex"), "{joined}");
        assert!(joined.contains("d/r.yaml:7: window:"), "{joined}");
        assert!(
            joined.contains("d/r.yaml:8: a threshold rule needs `threshold:` ≥ 1"),
            "{joined}"
        );
        assert!(
            joined.contains("d/r.yaml:9: `on` does not apply to kind threshold"),
            "{joined}"
        );
    }

    #[test]
    fn unknown_field_is_an_error_with_its_line() {
        let e = errs(
            "r.yaml",
            "id: r\ntitle: t\nseverity: low\nkind: failure\non: [timeout]\nthreshhold: 3\n",
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("r.yaml:6: unknown field `threshhold`"),
            "{e:?}"
        );
    }

    #[test]
    fn errors_from_several_files_are_all_collected() {
        let r = RuleSet::from_sources(vec![
            ("a.yaml".into(), "id: a\n".into()),
            (
                "b.yaml".into(),
                "id: b\ntitle: t\nseverity: low\nkind: rate\n".into(),
            ),
        ])
        .unwrap_err();
        let text = r.to_string();
        assert!(text.contains("a.yaml:1: missing `title`"), "{text}");
        assert!(
            text.contains("b.yaml:4: a rate rule needs `pricing:`"),
            "{text}"
        );
    }

    #[test]
    fn distinct_and_pattern_rules_say_what_they_lack() {
        let e = errs(
            "d.yaml",
            "id: d\ntitle: t\nseverity: low\nkind: distinct\nmatch:\n  - regex: 'x(?P<ip>\\S+)'\nthreshold: 1\nsecrets: [jwt]\n",
        )
        .join("\n");
        assert!(
            e.contains("d.yaml:4: a distinct rule needs `distinct:`"),
            "{e}"
        );
        assert!(
            e.contains("d.yaml:7: a distinct rule needs `threshold:` ≥ 2"),
            "{e}"
        );
        assert!(
            e.contains("d.yaml:4: a distinct rule needs `window:`"),
            "{e}"
        );
        assert!(
            e.contains("d.yaml:8: `secrets` does not apply to kind distinct"),
            "{e}"
        );
        let e = errs(
            "p.yaml",
            "id: p\ntitle: t\nseverity: low\nkind: pattern\nsecrets: [aws-access-key-id, passwords]\ndistinct: user\n",
        )
        .join("\n");
        assert!(
            e.contains(
                "p.yaml:5: unknown secret kind `passwords` (one of private-key, aws-access-key-id,"
            ),
            "{e}"
        );
        assert!(
            e.contains("p.yaml:6: `distinct` does not apply to kind pattern"),
            "{e}"
        );
        let e = errs("q.yaml", "id: q\ntitle: t\nseverity: low\nkind: pattern\n").join("\n");
        assert!(
            e.contains("q.yaml:4: a pattern rule needs a non-empty `match:` list or `secrets:`"),
            "{e}"
        );
    }

    #[test]
    fn test_events_take_relative_and_absolute_times() {
        let text = "id: r\ntitle: t\nseverity: low\nkind: failure\non: [timeout]\ntests:\n  - name: one\n    events:\n      - {t: '+90s', message: a}\n      - {t: '2026-11-22T10:05:00Z', message: b, stream: s2}\n    expect_alerts: 0\n";
        let set = RuleSet::from_sources(vec![("r.yaml".into(), text.into())]).unwrap();
        let t = &set.rules[0].tests[0];
        assert_eq!(t.events[0].timestamp, TEST_EPOCH_MS + 90_000);
        assert_eq!(t.events[1].timestamp, TEST_EPOCH_MS + 300_000);
        assert_eq!(t.events[1].log_stream, "s2");
        assert_eq!(t.line, 7);
    }

    #[test]
    fn repeated_test_events_are_spaced_and_numbered() {
        let text = "id: r\ntitle: t\nseverity: low\nkind: failure\non: [timeout]\ntests:\n  - name: one\n    events:\n      - {t: '+60s', message: 'START RequestId: a{n}', repeat: 3, every: 500ms}\n      - {t: '+2m', message: 'x{n}'}\n    expect_alerts: 0\n";
        let set = RuleSet::from_sources(vec![("r.yaml".into(), text.into())]).unwrap();
        let ev = &set.rules[0].tests[0].events;
        assert_eq!(ev.len(), 4);
        assert_eq!(ev[2].timestamp, TEST_EPOCH_MS + 61_000);
        assert_eq!(ev[2].message, "START RequestId: a2");
        assert_eq!(ev[3].message, "x{n}", "only repeated events are numbered");
        let e = errs(
            "r.yaml",
            &text
                .replace("every: 500ms", "every: soon")
                .replace("x{n}", "y"),
        );
        assert!(e[0].contains("every: `soon`"), "{e:?}");
    }

    #[test]
    fn rate_rules_need_prices_for_their_architectures() {
        let base = "id: r\ntitle: t\nseverity: low\nkind: rate\n";
        let e = errs("r.yaml", &format!("{base}window: 2h\nmin_rate: 5\n"));
        let joined = e.join("\n");
        assert!(
            joined.contains("r.yaml:5: a rate rule's `window`"),
            "{joined}"
        );
        assert!(
            joined.contains("r.yaml:4: a rate rule needs `pricing:`"),
            "{joined}"
        );
        let e = errs(
            "r.yaml",
            &format!(
                "{base}architecture: arm64\npricing:\n  request_usd: 0.0000002\n  gb_second_usd: {{x86_64: 0.0000166667}}\n"
            ),
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("r.yaml:5: architecture `arm64` has no price"),
            "{e:?}"
        );
        let e = errs(
            "r.yaml",
            "id: r\ntitle: t\nseverity: low\nkind: failure\non: [timeout]\nmin_rate: 3\npoints: 5\n",
        );
        assert!(
            e[0].contains("r.yaml:6: `min_rate` does not apply to kind failure"),
            "{e:?}"
        );
        assert!(e[1].contains("r.yaml:7: `points` does not apply"), "{e:?}");
    }

    #[test]
    fn memory_trend_compiles_to_the_leak_detector_and_rejects_baseline_fields() {
        let text =
            "id: r\ntitle: t\nseverity: low\nkind: baseline\nmetric: memory_trend\npoints: 30\n";
        let set = RuleSet::from_sources(vec![("r.yaml".into(), text.into())]).unwrap();
        match &set.rules[0].detector {
            Detector::Leak(l) => assert_eq!((l.points, l.min_points), (30, 10)),
            other => panic!("{other:?}"),
        }
        let e = errs("r.yaml", &format!("{text}factor: 2\nmin_points: 40\n"));
        let joined = e.join("\n");
        assert!(
            joined.contains(
                "r.yaml:7: `factor` does not apply to kind baseline with metric memory_trend"
            ),
            "{joined}"
        );
        assert!(
            joined.contains("r.yaml:8: `min_points` must be between 2 and `points`"),
            "{joined}"
        );
        let e = errs(
            "r.yaml",
            "id: r\ntitle: t\nseverity: low\nkind: baseline\nmetric: memory\nhorizon: 5\n",
        );
        assert!(
            e[0].contains("r.yaml:6: `horizon` does not apply to kind baseline"),
            "{e:?}"
        );
    }

    const THRESHOLD_HEAD: &str =
        "id: r\ntitle: t\nseverity: low\nkind: threshold\nthreshold: 2\nwindow: 1m\n";

    #[test]
    fn group_by_naming_a_field_no_matcher_captures_is_an_error() {
        let text = format!(
            "{THRESHOLD_HEAD}match:\n  - regex: 'from (?P<source_ip>\\S+)'\n  - json: {{outcome: failure}}\n    fields: {{user_name: [user.name]}}\ngroup_by: [source_ip, user]\n"
        );
        let e = errs("r.yaml", &text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "r.yaml:11: `group_by` names field `user`, which no matcher captures (captured: source_ip, user_name)"
            ),
            "{e:?}"
        );
        let fixed = text.replace(
            "group_by: [source_ip, user]",
            "group_by: [source_ip, user_name]",
        );
        assert!(RuleSet::from_sources(vec![("r.yaml".into(), fixed)]).is_ok());
    }

    #[test]
    fn a_sequence_names_an_existing_rule_and_two_steps() {
        let seq = |after: &str| {
            format!(
                "id: s\ntitle: t\nseverity: critical\nkind: sequence\nsteps:\n  - rule: {after}\n  - match:\n      - regex: 'ok from (?P<source_ip>\\S+)'\ngroup_by: [source_ip]\nwithin: 10m\n"
            )
        };
        let burst = "id: b\ntitle: t\nseverity: low\nkind: threshold\nmatch:\n  - regex: 'bad from (?P<source_ip>\\S+)'\ngroup_by: [source_ip]\nthreshold: 2\nwindow: 60s\n";
        let ok = RuleSet::from_sources(vec![
            ("s.yaml".into(), seq("b")),
            ("b.yaml".into(), burst.into()),
        ]);
        assert!(ok.is_ok(), "{ok:?}");
        let e = RuleSet::from_sources(vec![("s.yaml".into(), seq("nope"))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.yaml:6: `steps` follows rule `nope`, which is not in the rule set"),
            "{e}"
        );
        let one_step = "id: s\ntitle: t\nseverity: low\nkind: sequence\nsteps: [{rule: b}]\ngroup_by: [ip]\nwithin: 10m\n";
        let e = errs("s.yaml", one_step).join("\n");
        assert!(e.contains("a sequence rule needs `steps:`"), "{e}");
    }

    #[test]
    fn unique_and_distinct_fields_must_be_captured_too() {
        let text = format!(
            "{THRESHOLD_HEAD}match:\n  - regex: 'user (?P<user>\\S+)'\nunique: [session]\n"
        );
        let e = errs("r.yaml", &text).join("\n");
        assert!(
            e.contains("r.yaml:9: `unique` names field `session`, which no matcher captures (captured: user)"),
            "{e}"
        );
        let text = "id: d\ntitle: t\nseverity: low\nkind: distinct\nthreshold: 3\nwindow: 5m\nmatch:\n  - regex: 'x'\ndistinct: user\n";
        let e = errs("d.yaml", text).join("\n");
        assert!(
            e.contains("d.yaml:9: `distinct` names field `user`, which no matcher captures (no matcher captures any field)"),
            "{e}"
        );
    }

    #[test]
    fn a_secrets_rule_may_group_by_the_secret_kind_and_nothing_else() {
        let base = "id: p\ntitle: t\nseverity: low\nkind: pattern\nsecrets: [jwt]\n";
        let ok = format!("{base}group_by: [kind]\n");
        assert!(RuleSet::from_sources(vec![("p.yaml".into(), ok)]).is_ok());
        let e = errs("p.yaml", &format!("{base}group_by: [user]\n"));
        assert!(e[0].contains("(captured: kind)"), "{e:?}");
    }

    #[test]
    fn an_uncompiled_regex_does_not_also_report_its_captures_missing() {
        let text = format!("{THRESHOLD_HEAD}match:\n  - regex: '(?P<ip>a'\ngroup_by: [ip]\n");
        let e = errs("r.yaml", &text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("invalid regex"), "{e:?}");
    }

    #[test]
    fn missing_kind_error_lists_every_kind_including_rate() {
        let e = errs("r.yaml", "id: r\ntitle: t\nseverity: low\n");
        assert_eq!(
            e,
            [
                "r.yaml:1: missing `kind` (threshold, distinct, lifecycle, failure, baseline, rate, pattern or sequence)"
            ]
        );
        // Kind::ALL is the enum: serde's list of variants names the same kinds.
        let serde_says = serde_yaml_ng::from_str::<Kind>("nope")
            .unwrap_err()
            .to_string();
        let listed: Vec<String> = Kind::ALL
            .iter()
            .map(|k| format!("`{}`", k.as_str()))
            .collect();
        assert!(serde_says.contains(&listed.join(", ")), "{serde_says}");
        assert!(
            !serde_says.contains(&format!("{}, `", listed.join(", "))),
            "{serde_says}"
        );
    }

    #[test]
    fn an_unknown_field_does_not_hide_the_rules_other_errors() {
        let text = format!(
            "{THRESHOLD_HEAD}match:\n  - regex: 'a(b'\ngroup_by: [ip]\nthreshhold: 3\nseverity_level: x\n"
        );
        let e = errs("r.yaml", &text);
        let joined = e.join("\n");
        assert!(joined.contains("r.yaml:8: invalid regex"), "{joined}");
        assert!(
            joined.contains("r.yaml:10: unknown field `threshhold`"),
            "{joined}"
        );
        assert!(
            joined.contains("r.yaml:11: unknown field `severity_level`"),
            "{joined}"
        );
        assert_eq!(e.len(), 3, "{joined}");
    }

    #[test]
    fn a_field_of_the_wrong_type_is_not_also_reported_missing() {
        let text = "id: r\ntitle: [t]\nseverity: low\nkind: threshold\nthreshold: many\nwindow: 1m\nmatch: [{regex: x}]\nrealert: 3 parsecs\n";
        let e = errs("r.yaml", text);
        let joined = e.join("\n");
        assert!(joined.contains("r.yaml:2: title: invalid type"), "{joined}");
        assert!(
            joined.contains("r.yaml:5: threshold: invalid type"),
            "{joined}"
        );
        assert!(joined.contains("r.yaml:8: realert:"), "{joined}");
        assert!(!joined.contains("missing `title`"), "{joined}");
        assert!(!joined.contains("needs `threshold:`"), "{joined}");
        assert_eq!(e.len(), 3, "{joined}");
    }

    #[test]
    fn a_regex_longer_than_the_limit_is_rejected_before_it_is_compiled() {
        let long = "a|".repeat(limits::MAX_REGEX_BYTES / 2 + 1);
        let text = format!("{THRESHOLD_HEAD}match:\n  - regex: '{long}'\n");
        let e = errs("r.yaml", &text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&format!(
                "r.yaml:8: regex of {} bytes is longer than 16384 bytes (the regex length limit)",
                long.len()
            )),
            "{e:?}"
        );
        let deep = format!("{}a{}", "(".repeat(80), ")".repeat(80));
        let e = errs(
            "r.yaml",
            &format!("{THRESHOLD_HEAD}match:\n  - regex: '{deep}'\n"),
        );
        assert!(
            e[0].contains("exceed the maximum number of nested parentheses/brackets (64)"),
            "{e:?}"
        );
    }

    #[test]
    fn a_rule_file_over_the_size_limit_is_rejected_before_parsing() {
        let text = format!(
            "{THRESHOLD_HEAD}description: {}\n",
            "x".repeat(limits::MAX_RULE_FILE_BYTES)
        );
        assert_eq!(
            errs("r.yaml", &text),
            ["r.yaml:1: larger than 1048576 bytes (the rule file size limit)"]
        );
    }

    #[test]
    fn yaml_nested_deeper_than_the_limit_is_rejected_before_parsing() {
        let depth = 100_000;
        let text = format!(
            "{THRESHOLD_HEAD}\nmatch: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(
            errs("r.yaml", &text),
            ["r.yaml:8: YAML flow collections nested deeper than 64 (the nesting limit)"]
        );
    }

    #[test]
    fn more_inline_tests_than_the_limit_is_an_error_naming_it() {
        let one = "  - name: t\n    lines: [x]\n    expect_alerts: 0\n";
        let text = format!(
            "{THRESHOLD_HEAD}match: [{{regex: x}}]\ntests:\n{}",
            one.repeat(limits::MAX_TESTS_PER_RULE + 1)
        );
        assert_eq!(
            errs("r.yaml", &text),
            ["r.yaml:8: 1001 inline tests, more than 1000 (the inline test limit)"]
        );
        let text = format!(
            "{THRESHOLD_HEAD}match: [{{regex: x}}]\ntests:\n{}",
            one.repeat(limits::MAX_TESTS_PER_RULE)
        );
        let set = RuleSet::from_sources(vec![("r.yaml".into(), text)]).unwrap();
        let lines: Vec<usize> = set.rules[0].tests.iter().map(|t| t.line).collect();
        assert_eq!(lines[..3], [9, 12, 15], "each test on its own line");
        assert_eq!(lines[999], 9 + 999 * 3);
    }

    #[test]
    fn more_test_events_in_a_rule_than_the_limit_is_an_error_naming_it() {
        let one = "  - name: t{i}\n    events: [{t: '+0s', message: x, repeat: 60000}]\n    expect_alerts: 0\n";
        let tests: String = (0..4).map(|i| one.replace("{i}", &i.to_string())).collect();
        let text = format!("{THRESHOLD_HEAD}match: [{{regex: x}}]\ntests:\n{tests}");
        let e = errs("r.yaml", &text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("test `t3`: the rule's inline tests hold more than 200000 events (the inline test event limit)"),
            "{e:?}"
        );
    }
}
