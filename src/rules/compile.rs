//! The compile stage: a raw rule → a [`Rule`], every problem located.
//!
//! The fields every rule has are checked here; the kind's own fields are
//! compiled by the kind ([`Kind::visit`]), which this file never names.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use super::raw::{FOREIGN, MODE_FROM, RawRule, RawTest};
use super::{Resolve, Rule, RuleError, RuleTest, Severity, TestEvent, limits, raw_yaml};
use crate::detect::config::{ConfigVisitor, Cx, KindConfig, bounded_duration};
use crate::detect::rule_regex::RegexCompile;
use crate::detect::{Detector, Kind};
use crate::time::{Millis, parse_duration, parse_rfc3339};

/// Events one inline test may generate with `repeat:`.
const TEST_EVENTS_MAX: usize = 100_000;

/// Start of inline-test time: events in `lines:` are one second apart from here.
pub const TEST_EPOCH_MS: Millis = 1_795_341_600_000; // 2026-11-22T10:00:00Z

/// The problems of `cx`, with the rule's path.
fn located(path: &str, cx: Cx<'_>) -> Vec<RuleError> {
    cx.problems
        .into_iter()
        .map(|(line, message)| RuleError {
            path: path.to_string(),
            line,
            message,
        })
        .collect()
}

/// The kind's configuration deserialised from its own entries, compiled.
struct Compile<'c, 'a> {
    cx: &'c mut Cx<'a>,
    kind: Kind,
    /// Every entry for a kind, the rule's kind's or not.
    present: Vec<(String, Value)>,
}

impl ConfigVisitor for Compile<'_, '_> {
    type Out = Option<Detector>;
    fn visit<C: KindConfig>(self) -> Option<Detector> {
        let own = self.kind.fields();
        let entries = self
            .present
            .iter()
            .filter(|(k, _)| own.contains(&k.as_str()))
            .map(|(k, v)| (Value::from(k.as_str()), v.clone()));
        // Each entry was type-checked as it was read (`raw`).
        match serde_yaml_ng::from_value::<C>(Value::Mapping(Mapping::from_iter(entries))) {
            Ok(config) => {
                reject_foreign(self.cx, self.kind, &self.present, config.mode());
                config.compile(self.cx)
            }
            Err(e) => {
                self.cx.err("kind:", raw_yaml::message(&e));
                None
            }
        }
    }
}

/// Reject fields that the rule's kind does not read (another kind's), so a
/// typo'd rule fails loudly instead of silently doing something else.
fn reject_foreign(cx: &mut Cx<'_>, kind: Kind, present: &[(String, Value)], mode: Option<&str>) {
    let own = kind.fields();
    let plain = format!("kind {}", kind.as_str());
    let mut what = plain.as_str();
    for name in FOREIGN.iter() {
        if *name == MODE_FROM {
            what = mode.unwrap_or(&plain);
        }
        if !own.contains(name) && present.iter().any(|(k, _)| k == name) {
            cx.err(
                &format!("{name}:"),
                format!("`{name}` does not apply to {what}"),
            );
        }
    }
}

pub(super) fn compile(
    path: &str,
    text: &str,
    regexes: RegexCompile,
) -> Result<Rule, Vec<RuleError>> {
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
    let mut cx = Cx::new(text, parsed.broken);
    cx.regexes = regexes;
    cx.problems.extend(parsed.errors);
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
        return Err(located(path, cx));
    };
    let realert_ms = cx.duration("realert", raw.realert.as_deref(), 600_000);

    let detector = kind.visit(Compile {
        cx: &mut cx,
        kind,
        present: raw.kind_values(text),
    });
    let explicit = raw
        .resolve_after
        .as_deref()
        .map(|v| cx.duration("resolve_after", Some(v), realert_ms));
    let tests = compile_tests(&mut cx, raw.tests);
    match detector {
        Some(detector) if cx.problems.is_empty() => Ok(Rule {
            resolve: Resolve {
                after_ms: explicit.unwrap_or_else(|| detector.resolve_after(realert_ms)),
                clear_run: explicit.map_or_else(|| detector.clear_run(), |_| None),
                notify: raw.notify_resolved.unwrap_or(true),
            },
            mode: raw.mode.unwrap_or_default(),
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
        _ => Err(located(path, cx)),
    }
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

fn compile_tests(cx: &mut Cx<'_>, raws: Vec<RawTest>) -> Vec<RuleTest> {
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
    let mut cursor = next_line_with(cx.text(), (0, 0), &["tests:"]).map_or((0, 0), |(_, c)| c);
    let mut total_events = 0usize;
    for t in raws {
        let line = match next_line_with(cx.text(), cursor, &["name:", &t.name]) {
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
