//! Rule files → compiled rules.
//!
//! One YAML rule per file (`<id>.yaml`), read in two stages as ripgrep reads
//! its configuration: raw (serde, every field optional so that one pass can
//! report every problem) → compiled (regexes built, durations parsed, the
//! detector of the rule's kind configured). Every error is collected with
//! `path:line: message`; none stops the others from being reported.

pub mod limits;
pub use crate::detect::matcher;
mod raw_yaml;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::RegexBuilder;
use serde::{Deserialize, Serialize};

use crate::detect::Detector;
use crate::detect::baseline::{Baseline, Metric};
use crate::detect::distinct::Distinct;
use crate::detect::failure::{Failure, FailureClass};
use crate::detect::leak::{self, Leak};
use crate::detect::lifecycle::Lifecycle;
use crate::detect::pattern::Pattern;
use crate::detect::rate::{Pricing, Rate};
use crate::detect::threshold::Threshold;
use crate::time::{Millis, parse_duration, parse_rfc3339};
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
];

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

/// Detector kinds: a closed set, one file in `src/detect/` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Count of matching events per key within a window.
    Threshold,
    /// Distinct values of a field per key within a window.
    Distinct,
    /// START without END/REPORT.
    Lifecycle,
    /// Timeouts, out of memory, runtime exits, init failures.
    Failure,
    /// Duration or memory against a learned per-function baseline.
    Baseline,
    /// Invocations per function against a learned rate.
    Rate,
    /// One matching event.
    Pattern,
}

impl Kind {
    /// Every kind, in the order error messages list them: the one list, so a
    /// new kind cannot be missing from an error that lists them.
    pub const ALL: [Kind; 7] = [
        Kind::Threshold,
        Kind::Distinct,
        Kind::Lifecycle,
        Kind::Failure,
        Kind::Baseline,
        Kind::Rate,
        Kind::Pattern,
    ];

    /// "threshold, distinct, …, rate or pattern", for error messages.
    pub fn listed() -> String {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    }

    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Threshold => "threshold",
            Kind::Distinct => "distinct",
            Kind::Lifecycle => "lifecycle",
            Kind::Failure => "failure",
            Kind::Baseline => "baseline",
            Kind::Rate => "rate",
            Kind::Pattern => "pattern",
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
        RuleSet::from_sources(files)
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
        let (files, mut errors) = match dir {
            Some(d) => read_sources(d),
            None => (
                BUILTIN
                    .iter()
                    .map(|(name, text)| (format!("detectors/{name}"), (*text).to_string()))
                    .collect(),
                Vec::new(),
            ),
        };
        let (set, more) = RuleSet::compile_partial(files);
        errors.extend(more);
        errors.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        (set, errors)
    }

    /// Compile rule texts given as `(path, text)`; all errors are collected.
    pub fn from_sources(files: Vec<(String, String)>) -> Result<RuleSet, RuleErrors> {
        let (set, mut errors) = RuleSet::compile_partial(files);
        if errors.is_empty() {
            Ok(set)
        } else {
            errors.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
            Err(RuleErrors(errors))
        }
    }

    fn compile_partial(files: Vec<(String, String)>) -> (RuleSet, Vec<RuleError>) {
        let mut errors = Vec::new();
        let mut rules: Vec<Arc<Rule>> = Vec::new();
        let mut seen = HashSet::new();
        for (path, text) in files {
            match compile(&path, &text) {
                Ok(rule) => {
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
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        (RuleSet::new(rules), errors)
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.id == id)
    }
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

// ---- raw stage ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Option<String>,
    title: Option<String>,
    severity: Option<Severity>,
    kind: Option<Kind>,
    description: Option<String>,
    #[serde(rename = "match")]
    matchers: Option<Vec<RawMatcher>>,
    group_by: Option<Vec<String>>,
    threshold: Option<u64>,
    window: Option<String>,
    unique: Option<Vec<String>>,
    realert: Option<String>,
    on: Option<Vec<FailureClass>>,
    grace: Option<String>,
    max_duration: Option<String>,
    function_timeouts: Option<BTreeMap<String, String>>,
    metric: Option<RawMetric>,
    warmup: Option<u64>,
    factor: Option<f64>,
    sigmas: Option<f64>,
    timeout_fraction: Option<f64>,
    memory_fraction: Option<f64>,
    // kind rate
    min_rate: Option<u64>,
    architecture: Option<String>,
    function_architectures: Option<BTreeMap<String, String>>,
    pricing: Option<RawPricing>,
    // kind baseline, metric memory_trend
    points: Option<usize>,
    min_points: Option<usize>,
    monotonicity: Option<f64>,
    horizon: Option<f64>,
    distinct: Option<String>,
    secrets: Option<Vec<String>>,
    #[serde(default)]
    tests: Vec<RawTest>,
}

/// `metric:` of a baseline rule: the learned per-function baselines, or the
/// per-stream memory trend (a leak), which compiles to its own detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawMetric {
    Duration,
    Memory,
    MemoryTrend,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPricing {
    request_usd: Option<f64>,
    gb_second_usd: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatcher {
    regex: Option<String>,
    json: Option<BTreeMap<String, OneOrMany>>,
    fields: Option<BTreeMap<String, OneOrMany>>,
    exclude: Option<BTreeMap<String, OneOrMany>>,
}

/// `key: value` or `key: [v1, v2]`, scalars of any type compared as text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<serde_yaml_ng::Value>),
    One(serde_yaml_ng::Value),
}

impl OneOrMany {
    fn into_strings(self) -> Result<Vec<String>, String> {
        let items = match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(v) => vec![v],
        };
        items
            .into_iter()
            .map(|v| match v {
                serde_yaml_ng::Value::String(s) => Ok(s),
                serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
                serde_yaml_ng::Value::Bool(b) => Ok(b.to_string()),
                other => Err(format!("expected a string or number, found {other:?}")),
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: String,
    log_group: Option<String>,
    lines: Option<Vec<String>>,
    events: Option<Vec<RawTestEvent>>,
    now: Option<String>,
    expect_alerts: usize,
    expect_key: Option<BTreeMap<String, String>>,
    expect_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestEvent {
    /// RFC 3339, or `+90s` after the test's start time.
    t: String,
    message: String,
    stream: Option<String>,
    /// This event `repeat` times, `every` apart from `t` on (rate tests need
    /// hundreds of invocations); `{n}` in the message becomes 0, 1, 2, …
    repeat: Option<usize>,
    every: Option<String>,
}

/// Events one inline test may generate with `repeat:`.
const TEST_EVENTS_MAX: usize = 100_000;

/// Start of inline-test time: events in `lines:` are one second apart from here.
pub const TEST_EPOCH_MS: Millis = 1_795_341_600_000; // 2026-11-22T10:00:00Z

// ---- compile stage -------------------------------------------------------------

struct Ctx<'a> {
    path: &'a str,
    text: &'a str,
    errors: Vec<RuleError>,
    /// Top-level entries that did not deserialize (already reported).
    broken: Vec<String>,
}

impl Ctx<'_> {
    /// Report that the rule lacks `key`, unless `key` was given but could not
    /// be read: that is already reported, and "missing" would be wrong.
    fn needs(&mut self, key: &str, needle: &str, message: impl Into<String>) {
        if !self.is_broken(key) {
            self.err(needle, message);
        }
    }

    fn is_broken(&self, key: &str) -> bool {
        self.broken.iter().any(|b| b == key)
    }

    fn err(&mut self, needle: &str, message: impl Into<String>) {
        self.errors.push(RuleError {
            path: self.path.to_string(),
            line: line_of(self.text, needle),
            message: message.into(),
        });
    }

    fn duration(&mut self, key: &str, value: Option<&str>, default: Millis) -> Millis {
        match value {
            None => default,
            Some(v) => bounded_duration(v).unwrap_or_else(|e| {
                self.err(&format!("{key}:"), format!("{key}: {e}"));
                default
            }),
        }
    }
}

/// Longest duration a rule may give (a window, grace, timeout, realert, or
/// an inline test's `+offset`): 366 days.
pub const MAX_RULE_DURATION_MS: Millis = 366 * 86_400_000;

/// [`parse_duration`], at most [`MAX_RULE_DURATION_MS`]. Event time plus a
/// duration of nearly `i64::MAX` ms overflowed in the engine (found by the
/// `rules` fuzz target: `max_duration` of 64 digits).
fn bounded_duration(text: &str) -> Result<Millis, String> {
    let ms = parse_duration(text)?;
    if ms > MAX_RULE_DURATION_MS {
        return Err(format!("`{text}` is longer than 366d"));
    }
    Ok(ms)
}

/// A place in a rule's text: byte offset of a line start and its 0-based number.
type Cursor = (usize, usize);

/// From `at` on, the first line containing all `needles`: its 1-based number
/// and the cursor of the line after it.
fn next_line_with(text: &str, at: Cursor, needles: &[&str]) -> Option<(usize, Cursor)> {
    let (mut off, mut n) = at;
    for l in text.get(off..)?.split_inclusive('\n') {
        off += l.len();
        n += 1;
        if needles.iter().all(|x| l.contains(x)) {
            return Some((n, (off, n)));
        }
    }
    None
}

/// 1-based line of the first line containing `needle` (1 if none).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(1, |i| i + 1)
}

fn compile(path: &str, text: &str) -> Result<Rule, Vec<RuleError>> {
    let whole = |line: usize, message: String| {
        vec![RuleError {
            path: path.to_string(),
            line,
            message,
        }]
    };
    // Both before libyaml sees the text: its cost grows with the size and,
    // quadratically, with the flow nesting.
    if text.len() > limits::MAX_RULE_FILE_BYTES {
        return Err(whole(
            1,
            format!(
                "larger than {} bytes (the rule file size limit)",
                limits::MAX_RULE_FILE_BYTES
            ),
        ));
    }
    if let Some(at) = limits::flow_too_deep(text) {
        let line = memchr::memchr_iter(b'\n', &text.as_bytes()[..at]).count() + 1;
        return Err(whole(
            line,
            format!(
                "YAML flow collections nested deeper than {} (the nesting limit)",
                limits::MAX_YAML_FLOW_DEPTH
            ),
        ));
    }
    let parsed = raw_yaml::parse::<RawRule>(text).map_err(|(line, m)| whole(line, m))?;
    let raw = parsed.raw;
    let mut cx = Ctx {
        path,
        text,
        errors: Vec::new(),
        broken: parsed.broken,
    };
    for (line, message) in parsed.errors {
        cx.errors.push(RuleError {
            path: path.to_string(),
            line,
            message,
        });
    }
    let id = raw.id.clone().unwrap_or_default();
    if raw.id.is_none() {
        cx.needs("id", "", "missing `id`");
    } else if !id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || id.is_empty()
    {
        cx.err(
            "id:",
            format!("id `{id}` must be lowercase letters, digits and dashes"),
        );
    } else {
        let stem = Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        if stem != id {
            cx.err(
                "id:",
                format!("id `{id}` must match the file name (`{id}.yaml`)"),
            );
        }
    }
    let title = raw.title.clone().unwrap_or_default();
    if raw.title.is_none() {
        cx.needs("title", "", "missing `title`");
    } else if title.chars().count() >= 100 || title.contains('\n') {
        cx.err("title:", "title must be one line under 100 characters");
    }
    if raw.severity.is_none() {
        cx.needs(
            "severity",
            "",
            "missing `severity` (low, medium, high or critical)",
        );
    }
    let Some(kind) = raw.kind else {
        cx.needs("kind", "", format!("missing `kind` ({})", Kind::listed()));
        return Err(cx.errors);
    };
    let realert_ms = cx.duration("realert", raw.realert.as_deref(), 600_000);

    let detector = compile_detector(&mut cx, kind, &raw);
    let tests = compile_tests(&mut cx, raw.tests);
    match detector {
        Some(detector) if cx.errors.is_empty() => Ok(Rule {
            id,
            title,
            severity: raw.severity.unwrap_or(Severity::Medium),
            kind,
            description: raw.description.unwrap_or_default().trim().to_string(),
            realert_ms,
            detector,
            tests,
            source: path.to_string(),
        }),
        _ => Err(cx.errors),
    }
}

/// Reject fields that the rule's kind does not read, so a typo'd rule fails
/// loudly instead of silently doing something else.
fn reject_foreign(cx: &mut Ctx<'_>, kind: Kind, raw: &RawRule) {
    let present: [(&str, bool, &[Kind]); 14] = [
        (
            "match",
            raw.matchers.is_some(),
            &[Kind::Threshold, Kind::Distinct, Kind::Pattern],
        ),
        (
            "group_by",
            raw.group_by.is_some(),
            &[Kind::Threshold, Kind::Distinct, Kind::Pattern],
        ),
        (
            "threshold",
            raw.threshold.is_some(),
            &[Kind::Threshold, Kind::Distinct],
        ),
        (
            "window",
            raw.window.is_some(),
            &[Kind::Threshold, Kind::Distinct, Kind::Rate],
        ),
        ("unique", raw.unique.is_some(), &[Kind::Threshold]),
        ("on", raw.on.is_some(), &[Kind::Failure]),
        ("grace", raw.grace.is_some(), &[Kind::Lifecycle]),
        (
            "max_duration",
            raw.max_duration.is_some(),
            &[Kind::Lifecycle],
        ),
        (
            "function_timeouts",
            raw.function_timeouts.is_some(),
            &[Kind::Lifecycle, Kind::Baseline],
        ),
        ("metric", raw.metric.is_some(), &[Kind::Baseline]),
        (
            "warmup",
            raw.warmup.is_some(),
            &[Kind::Baseline, Kind::Rate],
        ),
        (
            "factor",
            raw.factor.is_some(),
            &[Kind::Baseline, Kind::Rate],
        ),
        (
            "sigmas",
            raw.sigmas.is_some(),
            &[Kind::Baseline, Kind::Rate],
        ),
        (
            "timeout_fraction",
            raw.timeout_fraction.is_some(),
            &[Kind::Baseline],
        ),
    ];
    for (name, is_set, kinds) in present {
        if is_set && !kinds.contains(&kind) {
            cx.err(
                &format!("{name}:"),
                format!("`{name}` does not apply to kind {}", kind.as_str()),
            );
        }
    }
    if raw.memory_fraction.is_some() && kind != Kind::Baseline {
        cx.err(
            "memory_fraction:",
            format!("`memory_fraction` does not apply to kind {}", kind.as_str()),
        );
    }
    for (name, is_set, only) in [
        ("distinct", raw.distinct.is_some(), Kind::Distinct),
        ("secrets", raw.secrets.is_some(), Kind::Pattern),
    ] {
        if is_set && kind != only {
            cx.err(
                &format!("{name}:"),
                format!("`{name}` does not apply to kind {}", kind.as_str()),
            );
        }
    }
    reject_foreign_rate_and_trend(cx, kind, raw);
}

/// The fields of kind `rate` and of `metric: memory_trend` elsewhere.
fn reject_foreign_rate_and_trend(cx: &mut Ctx<'_>, kind: Kind, raw: &RawRule) {
    let trend = kind == Kind::Baseline && raw.metric == Some(RawMetric::MemoryTrend);
    let fields = [
        ("min_rate", raw.min_rate.is_some(), kind == Kind::Rate),
        (
            "architecture",
            raw.architecture.is_some(),
            kind == Kind::Rate,
        ),
        (
            "function_architectures",
            raw.function_architectures.is_some(),
            kind == Kind::Rate,
        ),
        ("pricing", raw.pricing.is_some(), kind == Kind::Rate),
        ("points", raw.points.is_some(), trend),
        ("min_points", raw.min_points.is_some(), trend),
        ("monotonicity", raw.monotonicity.is_some(), trend),
        ("horizon", raw.horizon.is_some(), trend),
        // The learned baseline's fields mean nothing to a trend.
        ("warmup", trend && raw.warmup.is_some(), false),
        ("factor", trend && raw.factor.is_some(), false),
        ("sigmas", trend && raw.sigmas.is_some(), false),
        (
            "timeout_fraction",
            trend && raw.timeout_fraction.is_some(),
            false,
        ),
        (
            "memory_fraction",
            trend && raw.memory_fraction.is_some(),
            false,
        ),
        (
            "function_timeouts",
            trend && raw.function_timeouts.is_some(),
            false,
        ),
    ];
    for (name, is_set, applies) in fields {
        if is_set && !applies {
            let what = if trend {
                "kind baseline with metric memory_trend".to_string()
            } else {
                format!("kind {}", kind.as_str())
            };
            cx.err(
                &format!("{name}:"),
                format!("`{name}` does not apply to {what}"),
            );
        }
    }
}

fn compile_rate(cx: &mut Ctx<'_>, raw: &RawRule) -> Option<Detector> {
    let bucket_ms = cx.duration("window", raw.window.as_deref(), 60_000);
    if !(1_000..=3_600_000).contains(&bucket_ms) {
        cx.err(
            "window:",
            "a rate rule's `window` (bucket) must be between 1s and 1h",
        );
    }
    let factor = raw.factor.unwrap_or(5.0);
    if !(factor > 1.0 && factor.is_finite()) {
        cx.err("factor:", "`factor` must be greater than 1");
    }
    let sigmas = raw.sigmas.unwrap_or(6.0);
    if !(sigmas >= 0.0 && sigmas.is_finite()) {
        cx.err("sigmas:", "`sigmas` must be ≥ 0");
    }
    let Some(p) = &raw.pricing else {
        cx.needs(
            "pricing",
            "kind:",
            "a rate rule needs `pricing:` (request_usd and gb_second_usd per architecture)",
        );
        return None;
    };
    let request_usd = p.request_usd.unwrap_or(-1.0);
    if !(request_usd >= 0.0 && request_usd.is_finite()) {
        cx.err(
            "pricing:",
            "pricing.request_usd must be a price ≥ 0 in USD per request",
        );
    }
    let gb_second_usd = p.gb_second_usd.clone().unwrap_or_default();
    if gb_second_usd.is_empty() {
        cx.err(
            "pricing:",
            "pricing.gb_second_usd must give a USD price per GB-second for each architecture (x86_64, arm64)",
        );
    }
    for (arch, price) in &gb_second_usd {
        if !(*price >= 0.0 && price.is_finite()) {
            cx.err(
                &format!("{arch}:"),
                format!("pricing.gb_second_usd.{arch} must be ≥ 0"),
            );
        }
    }
    let architecture = raw.architecture.clone().unwrap_or_else(|| "x86_64".into());
    let function_architectures = raw.function_architectures.clone().unwrap_or_default();
    for (at, arch) in std::iter::once(("architecture:", &architecture)).chain(
        function_architectures
            .values()
            .map(|a| ("function_architectures:", a)),
    ) {
        if !gb_second_usd.is_empty() && !gb_second_usd.contains_key(arch) {
            cx.err(
                at,
                format!("architecture `{arch}` has no price in pricing.gb_second_usd"),
            );
        }
    }
    Some(Detector::Rate(Rate {
        bucket_ms,
        warmup: raw.warmup.unwrap_or(20),
        factor,
        sigmas,
        min_rate: raw.min_rate.unwrap_or(60),
        architecture,
        function_architectures,
        pricing: Pricing {
            request_usd,
            gb_second_usd,
        },
    }))
}

fn compile_leak(cx: &mut Ctx<'_>, raw: &RawRule) -> Option<Detector> {
    let points = raw.points.unwrap_or(20);
    if !(2..=leak::MAX_POINTS).contains(&points) {
        cx.err(
            "points:",
            format!("`points` must be between 2 and {}", leak::MAX_POINTS),
        );
    }
    let min_points = raw.min_points.unwrap_or(10);
    if !(2..=points).contains(&min_points) {
        cx.err("min_points:", "`min_points` must be between 2 and `points`");
    }
    let monotonicity = raw.monotonicity.unwrap_or(0.8);
    if !(monotonicity > 0.0 && monotonicity <= 1.0) {
        cx.err("monotonicity:", "`monotonicity` must be in (0, 1]");
    }
    let horizon = raw.horizon.unwrap_or(1_000.0);
    if !(horizon > 0.0 && horizon.is_finite()) {
        cx.err("horizon:", "`horizon` must be a number of invocations > 0");
    }
    Some(Detector::Leak(Leak {
        points,
        min_points,
        monotonicity,
        horizon,
    }))
}

fn compile_detector(cx: &mut Ctx<'_>, kind: Kind, raw: &RawRule) -> Option<Detector> {
    reject_foreign(cx, kind, raw);
    match kind {
        Kind::Threshold => {
            let matchers = compile_matchers(cx, raw.matchers.as_deref().unwrap_or_default());
            if raw.matchers.as_ref().is_none_or(|m| m.is_empty()) {
                cx.needs(
                    "match",
                    "kind:",
                    "a threshold rule needs a non-empty `match:` list",
                );
            }
            let group_by = raw.group_by.clone().unwrap_or_default();
            let threshold = raw.threshold.unwrap_or(0);
            if threshold == 0 {
                let at = if raw.threshold.is_some() {
                    "threshold:"
                } else {
                    "kind:"
                };
                cx.needs("threshold", at, "a threshold rule needs `threshold:` ≥ 1");
            }
            if threshold > 10_000 {
                cx.err("threshold:", "`threshold` above 10000 is not supported");
            }
            let window_ms = match raw.window.as_deref() {
                None => {
                    cx.needs(
                        "window",
                        "kind:",
                        "a threshold rule needs `window:` (e.g. 60s)",
                    );
                    0
                }
                Some(w) => cx.duration("window", Some(w), 0),
            };
            let unique = raw.unique.clone().unwrap_or_default();
            check_field_names(
                cx,
                raw,
                &matchers,
                &[],
                &[("group_by", group_by.clone()), ("unique", unique.clone())],
            );
            Some(Detector::Threshold(Threshold {
                matchers,
                group_by,
                threshold: threshold as usize,
                window_ms,
                unique,
            }))
        }
        Kind::Lifecycle => {
            let grace_ms = cx.duration("grace", raw.grace.as_deref(), 60_000);
            let max_duration_ms = cx.duration("max_duration", raw.max_duration.as_deref(), 900_000);
            let function_timeouts = function_timeouts(cx, raw);
            Some(Detector::Lifecycle(Lifecycle {
                grace_ms,
                max_duration_ms,
                function_timeouts,
            }))
        }
        Kind::Failure => {
            let on = raw.on.clone().unwrap_or_default();
            if on.is_empty() {
                cx.needs("on", "kind:", "a failure rule needs `on:` (timeout, out_of_memory, runtime_exit, init_failure)");
            }
            Some(Detector::Failure(Failure { on }))
        }
        Kind::Baseline => {
            let Some(raw_metric) = raw.metric else {
                cx.needs(
                    "metric",
                    "kind:",
                    "a baseline rule needs `metric:` (duration, memory or memory_trend)",
                );
                return None;
            };
            let metric = match raw_metric {
                RawMetric::Duration => Metric::Duration,
                RawMetric::Memory => Metric::Memory,
                RawMetric::MemoryTrend => return compile_leak(cx, raw),
            };
            let fraction = |cx: &mut Ctx<'_>, name: &str, v: Option<f64>, d: f64| {
                let v = v.unwrap_or(d);
                if !(v > 0.0 && v <= 1.0) {
                    cx.err(&format!("{name}:"), format!("`{name}` must be in (0, 1]"));
                }
                v
            };
            let timeout_fraction = fraction(cx, "timeout_fraction", raw.timeout_fraction, 0.9);
            let memory_fraction = fraction(cx, "memory_fraction", raw.memory_fraction, 0.9);
            let factor = raw.factor.unwrap_or(match metric {
                Metric::Duration => 3.0,
                Metric::Memory => 2.0,
            });
            if !(factor > 1.0 && factor.is_finite()) {
                cx.err("factor:", "`factor` must be greater than 1");
            }
            let sigmas = raw.sigmas.unwrap_or(4.0);
            if !(sigmas >= 0.0 && sigmas.is_finite()) {
                cx.err("sigmas:", "`sigmas` must be ≥ 0");
            }
            Some(Detector::Baseline(Baseline {
                metric,
                warmup: raw.warmup.unwrap_or(20),
                factor,
                sigmas,
                timeout_fraction,
                memory_fraction,
                function_timeouts: function_timeouts(cx, raw),
            }))
        }
        Kind::Rate => compile_rate(cx, raw),
        Kind::Distinct => compile_distinct(cx, raw),
        Kind::Pattern => compile_pattern(cx, raw),
    }
}

fn compile_distinct(cx: &mut Ctx<'_>, raw: &RawRule) -> Option<Detector> {
    let matchers = compile_matchers(cx, raw.matchers.as_deref().unwrap_or_default());
    if raw.matchers.as_ref().is_none_or(|m| m.is_empty()) {
        cx.needs(
            "match",
            "kind:",
            "a distinct rule needs a non-empty `match:` list",
        );
    }
    let field = raw.distinct.clone().unwrap_or_default();
    if field.is_empty() {
        let at = if raw.distinct.is_some() {
            "distinct:"
        } else {
            "kind:"
        };
        cx.needs(
            "distinct",
            at,
            "a distinct rule needs `distinct:`, the field whose values are counted (e.g. user)",
        );
    }
    let threshold = raw.threshold.unwrap_or(0);
    if threshold < 2 {
        let at = if raw.threshold.is_some() {
            "threshold:"
        } else {
            "kind:"
        };
        cx.needs(
            "threshold",
            at,
            "a distinct rule needs `threshold:` ≥ 2 (distinct values)",
        );
    }
    if threshold > 10_000 {
        cx.err("threshold:", "`threshold` above 10000 is not supported");
    }
    let window_ms = match raw.window.as_deref() {
        None => {
            cx.needs(
                "window",
                "kind:",
                "a distinct rule needs `window:` (e.g. 5m)",
            );
            0
        }
        Some(w) => cx.duration("window", Some(w), 0),
    };
    let group_by = raw.group_by.clone().unwrap_or_default();
    let counted = if field.is_empty() {
        vec![]
    } else {
        vec![field.clone()]
    };
    check_field_names(
        cx,
        raw,
        &matchers,
        &[],
        &[("group_by", group_by.clone()), ("distinct", counted)],
    );
    Some(Detector::Distinct(Distinct {
        matchers,
        group_by,
        field,
        threshold: threshold as usize,
        window_ms,
    }))
}

fn compile_pattern(cx: &mut Ctx<'_>, raw: &RawRule) -> Option<Detector> {
    let matchers = compile_matchers(cx, raw.matchers.as_deref().unwrap_or_default());
    let kinds = raw.secrets.clone().unwrap_or_default();
    let secrets = if kinds.is_empty() {
        None
    } else {
        crate::detect::secrets::SecretFinder::new(&kinds)
            .map_err(|e| cx.err("secrets:", e))
            .ok()
    };
    if raw.matchers.as_ref().is_none_or(|m| m.is_empty())
        && kinds.is_empty()
        && !cx.is_broken("match")
        && !cx.is_broken("secrets")
    {
        cx.err(
            "kind:",
            "a pattern rule needs a non-empty `match:` list or `secrets:` kinds",
        );
    }
    let group_by = raw.group_by.clone().unwrap_or_default();
    // A secret finding is keyed by the secret's kind.
    let provided: &[&str] = if kinds.is_empty() {
        &[]
    } else {
        &[crate::detect::pattern::SECRET_KEY]
    };
    check_field_names(
        cx,
        raw,
        &matchers,
        provided,
        &[("group_by", group_by.clone())],
    );
    Some(Detector::Pattern(Pattern {
        matchers,
        group_by,
        secrets,
    }))
}

/// `group_by`, `unique` and `distinct` name fields of a matching line; a
/// field no matcher can capture is never there, so the rule never fires
/// (threshold, distinct) or never keys on it (pattern). `provided` are the
/// fields the kind supplies itself. Skipped when a matcher did not compile:
/// its captures are unknown, and its error is already reported.
fn check_field_names(
    cx: &mut Ctx<'_>,
    raw: &RawRule,
    matchers: &[Matcher],
    provided: &[&str],
    uses: &[(&str, Vec<String>)],
) {
    let raw_count = raw.matchers.as_ref().map_or(0, Vec::len);
    if cx.is_broken("match") || matchers.len() != raw_count {
        return;
    }
    let mut captured: Vec<&str> = matchers.iter().flat_map(Matcher::field_names).collect();
    captured.extend_from_slice(provided);
    captured.sort_unstable();
    captured.dedup();
    for (key, names) in uses {
        for name in names {
            if captured.contains(&name.as_str()) {
                continue;
            }
            let listed = if captured.is_empty() {
                "no matcher captures any field".to_string()
            } else {
                format!("captured: {}", captured.join(", "))
            };
            cx.err(
                &format!("{key}:"),
                format!(
                    "`{key}` names field `{name}`, which no matcher captures ({listed}); \
                     name it in a regex `(?P<{name}>...)` or a JSON matcher's `fields:`"
                ),
            );
        }
    }
}

fn function_timeouts(cx: &mut Ctx<'_>, raw: &RawRule) -> BTreeMap<String, Millis> {
    raw.function_timeouts
        .iter()
        .flatten()
        .map(|(f, d)| {
            let ms = cx.duration(&format!("function_timeouts ({f})"), Some(d), 0);
            (f.clone(), ms)
        })
        .collect()
}

fn compile_matchers(cx: &mut Ctx<'_>, raws: &[RawMatcher]) -> Vec<Matcher> {
    let mut out = Vec::new();
    for raw in raws {
        let regex = match &raw.regex {
            None => None,
            // Checked before the regex is parsed: parsing an 8 MB pattern
            // took ~1 GB before the compiled size limit could reject it.
            Some(r) if r.len() > limits::MAX_REGEX_BYTES => {
                let first = r.lines().next().unwrap_or("regex:").to_string();
                cx.err(
                    &first,
                    format!(
                        "regex of {} bytes is longer than {} bytes (the regex length limit)",
                        r.len(),
                        limits::MAX_REGEX_BYTES
                    ),
                );
                None
            }
            Some(r) => match RegexBuilder::new(r)
                .size_limit(limits::MAX_REGEX_COMPILED_BYTES)
                .nest_limit(limits::MAX_REGEX_NESTING)
                .build()
            {
                Ok(re) => Some(re),
                Err(e) => {
                    let first = r.lines().next().unwrap_or("regex:").to_string();
                    cx.err(
                        &first,
                        format!("invalid regex: {}", one_line(&e.to_string())),
                    );
                    None
                }
            },
        };
        if raw.regex.is_none() && raw.json.is_none() {
            cx.err("match:", "each matcher needs `regex:` or `json:`");
            continue;
        }
        let mut strings = |what: &str, m: &Option<BTreeMap<String, OneOrMany>>| {
            let mut out = BTreeMap::new();
            for (k, v) in m.iter().flatten().map(|(k, v)| (k.clone(), v)) {
                let v = match v {
                    OneOrMany::Many(xs) => OneOrMany::Many(xs.clone()),
                    OneOrMany::One(x) => OneOrMany::One(x.clone()),
                };
                match v.into_strings() {
                    Ok(vs) => {
                        out.insert(k, vs);
                    }
                    Err(e) => cx.err(&format!("{k}:"), format!("{what}.{k}: {e}")),
                }
            }
            out
        };
        let json = strings("json", &raw.json);
        let fields = strings("fields", &raw.fields);
        let exclude = strings("exclude", &raw.exclude);
        if raw.regex.is_some() && regex.is_none() {
            continue;
        }
        out.push(Matcher::new(regex, json, fields, exclude));
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn compile_tests(cx: &mut Ctx<'_>, raws: Vec<RawTest>) -> Vec<RuleTest> {
    let mut out = Vec::new();
    if raws.len() > limits::MAX_TESTS_PER_RULE {
        cx.err(
            "tests:",
            format!(
                "{} inline tests, more than {} (the inline test limit)",
                raws.len(),
                limits::MAX_TESTS_PER_RULE
            ),
        );
        return out;
    }
    // Tests are found in file order, each after the one before: searching
    // every name from the top of the file made loading quadratic in the
    // number of tests (20,000 took 14 s).
    let mut cursor = next_line_with(cx.text, (0, 0), &["tests:"]).map_or((0, 0), |(_, c)| c);
    let mut total_events = 0usize;
    for t in raws {
        let line = match next_line_with(cx.text, cursor, &["name:", &t.name]) {
            Some((line, next)) => {
                cursor = next;
                line
            }
            None => cursor.1 + 1,
        };
        let mut events = Vec::new();
        let mut generated = 0usize;
        let mut over_limit = false;
        for (i, l) in t.lines.iter().flatten().enumerate() {
            events.push(TestEvent {
                timestamp: TEST_EPOCH_MS + i as Millis * 1_000,
                log_stream: "test-stream".into(),
                message: l.clone(),
            });
        }
        for e in t.events.iter().flatten() {
            let ts = if let Some(rel) = e.t.strip_prefix('+') {
                bounded_duration(rel).map(|d| TEST_EPOCH_MS + d)
            } else {
                parse_rfc3339(&e.t)
            };
            let every = match e.every.as_deref().map(parse_duration) {
                None => Ok(0),
                Some(Ok(ms)) => Ok(ms),
                Some(Err(msg)) => Err(format!("every: {msg}")),
            };
            let repeat = e.repeat.unwrap_or(1);
            if events.len() + repeat > TEST_EVENTS_MAX {
                cx.err(
                    &e.t,
                    format!("test `{}`: more than {TEST_EVENTS_MAX} events", t.name),
                );
                continue;
            }
            if total_events + events.len() + repeat > limits::MAX_TEST_EVENTS_PER_RULE {
                over_limit = true;
                cx.err(
                    &e.t,
                    format!(
                        "test `{}`: the rule's inline tests hold more than {} events (the inline test event limit)",
                        t.name,
                        limits::MAX_TEST_EVENTS_PER_RULE
                    ),
                );
                break;
            }
            match (ts, every) {
                (Ok(ts), Ok(every)) => {
                    for k in 0..repeat {
                        let message = if e.repeat.is_some() {
                            e.message.replace("{n}", &generated.to_string())
                        } else {
                            e.message.clone()
                        };
                        generated += 1;
                        events.push(TestEvent {
                            timestamp: ts + k as Millis * every,
                            log_stream: e.stream.clone().unwrap_or_else(|| "test-stream".into()),
                            message,
                        });
                    }
                }
                (Err(msg), _) => cx.err(&e.t, format!("test `{}`: t: {msg}", t.name)),
                (_, Err(msg)) => cx.err(&e.t, format!("test `{}`: {msg}", t.name)),
            }
        }
        if over_limit {
            break;
        }
        total_events += events.len();
        if events.is_empty() {
            cx.err(
                &t.name,
                format!("test `{}` has no `lines:` or `events:`", t.name),
            );
        }
        let now = t.now.as_deref().and_then(|n| match parse_rfc3339(n) {
            Ok(v) => Some(v),
            Err(msg) => {
                cx.err(n, format!("test `{}`: now: {msg}", t.name));
                None
            }
        });
        out.push(RuleTest {
            name: t.name,
            log_group: t
                .log_group
                .unwrap_or_else(|| "/aws/lambda/rule-test".into()),
            events,
            now,
            expect_alerts: t.expect_alerts,
            expect_key: t.expect_key,
            expect_count: t.expect_count,
            line,
        });
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
                "r.yaml:1: missing `kind` (threshold, distinct, lifecycle, failure, baseline, rate or pattern)"
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
