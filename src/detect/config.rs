//! What every kind's configuration shares.
//!
//! A rule file is read in two stages: the rule loader ([`crate::rules`]) reads
//! the fields every rule has (`id`, `kind`, `severity`, …), then the kind's own
//! `Config` (a `#[serde(deny_unknown_fields)]` struct in `detect/<kind>.rs`)
//! is deserialised from the remaining entries and compiled by that kind
//! ([`KindConfig`]). The loader reaches a kind only through [`super::Kind`],
//! which delegates with one line per kind ([`super::Kind::visit`]).
//!
//! [`Cx`] collects every problem with its line, so one pass reports them all.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Detector;
use super::matcher::Matcher;
use super::rule_regex::{RegexCompile, RuleRegex};
use crate::time::{Millis, parse_duration};

/// Longest `regex:` of a matcher, in bytes (16 KiB).
pub const MAX_REGEX_BYTES: usize = 16 << 10;
/// Largest compiled regex, in bytes (`regex::RegexBuilder::size_limit`, 1 MiB).
pub const MAX_REGEX_COMPILED_BYTES: usize = 1 << 20;
/// Deepest nesting of groups and repetitions in one regex.
pub const MAX_REGEX_NESTING: u32 = 64;

/// Longest duration a rule may give (a window, grace, timeout, realert, or
/// an inline test's `+offset`): 366 days.
pub const MAX_RULE_DURATION_MS: Millis = 366 * 86_400_000;

/// A kind's own configuration: deserialised (with `deny_unknown_fields`)
/// from the rule's entries that are not common to every rule, then compiled.
pub trait KindConfig: DeserializeOwned {
    /// The detector, or `None` when the configuration cannot make one; every
    /// problem is reported to `cx`.
    fn compile(self, cx: &mut Cx<'_>) -> Option<Detector>;

    /// What the rule is, when more than its kind (`kind baseline with metric
    /// memory_trend`), for the errors on fields that do not apply to it.
    fn mode(&self) -> Option<&'static str> {
        None
    }
}

/// Something done with a kind's configuration type, whichever kind it is
/// ([`super::Kind::visit`] picks the type).
pub trait ConfigVisitor {
    /// The result.
    type Out;
    /// Do it with the configuration type `C`.
    fn visit<C: KindConfig>(self) -> Self::Out;
}

/// The fields a configuration type declares (as serde names them, renames
/// applied): what its derived `Deserialize` hands to `deserialize_struct`.
pub fn fields_of<'de, C: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The introspecting deserializer always fails after recording the list.
    let _ = C::deserialize(Introspect(&mut fields));
    fields
}

struct Introspect<'f>(&'f mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for Introspect<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The compile context of one rule: its text (to locate problems), the
/// problems found so far, and the entries that did not deserialize.
pub struct Cx<'a> {
    text: &'a str,
    /// `(1-based line, message)` of every problem, in the order found.
    pub problems: Vec<(usize, String)>,
    /// Top-level entries that did not deserialize (already reported).
    broken: Vec<String>,
    /// When the rule's regexes are compiled.
    pub regexes: RegexCompile,
}

impl<'a> Cx<'a> {
    /// A context for the rule `text`, whose entries `broken` did not deserialize.
    pub fn new(text: &'a str, broken: Vec<String>) -> Cx<'a> {
        Cx {
            text,
            problems: Vec::new(),
            broken,
            regexes: RegexCompile::AtLoad,
        }
    }

    /// The rule's text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Report that the rule lacks `key`, unless `key` was given but could not
    /// be read: that is already reported, and "missing" would be wrong.
    pub fn needs(&mut self, key: &str, needle: &str, message: impl Into<String>) {
        if !self.is_broken(key) {
            self.err(needle, message);
        }
    }

    /// Whether the entry `key` was given but did not deserialize.
    pub fn is_broken(&self, key: &str) -> bool {
        self.broken.iter().any(|b| b == key)
    }

    /// A problem on the first line containing `needle` (line 1 if none).
    pub fn err(&mut self, needle: &str, message: impl Into<String>) {
        let line = line_of(self.text, needle);
        self.problems.push((line, message.into()));
    }

    /// The duration `value` of entry `key`, `default` when absent or wrong
    /// (a wrong one is reported).
    pub fn duration(&mut self, key: &str, value: Option<&str>, default: Millis) -> Millis {
        match value {
            None => default,
            Some(v) => bounded_duration(v).unwrap_or_else(|e| {
                self.err(&format!("{key}:"), format!("{key}: {e}"));
                default
            }),
        }
    }

    /// `threshold:` (at least `min`, at most 10000) and the required
    /// `window:` of a counting kind (threshold, distinct); `needs_threshold`
    /// and `needs_window` say what is missing. 0 stands for a missing or
    /// wrong value (each reported).
    pub fn threshold_and_window(
        &mut self,
        threshold: Option<u64>,
        window: Option<&str>,
        min: u64,
        needs_threshold: &str,
        needs_window: &str,
    ) -> (u64, Millis) {
        let count = threshold.unwrap_or(0);
        if count < min {
            let at = if threshold.is_some() {
                "threshold:"
            } else {
                "kind:"
            };
            self.needs("threshold", at, needs_threshold);
        }
        if count > 10_000 {
            self.err("threshold:", "`threshold` above 10000 is not supported");
        }
        let window_ms = match window {
            None => {
                self.needs("window", "kind:", needs_window);
                0
            }
            Some(w) => self.duration("window", Some(w), 0),
        };
        (count, window_ms)
    }

    /// `function_timeouts: {name: duration}`, each checked.
    pub fn function_timeouts(
        &mut self,
        raw: Option<&BTreeMap<String, String>>,
    ) -> BTreeMap<String, Millis> {
        raw.into_iter()
            .flatten()
            .map(|(f, d)| {
                let ms = self.duration(&format!("function_timeouts ({f})"), Some(d), 0);
                (f.clone(), ms)
            })
            .collect()
    }
}

/// 1-based line of the first line containing `needle` (1 if none).
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(1, |i| i + 1)
}

/// [`parse_duration`], at most [`MAX_RULE_DURATION_MS`]. Event time plus a
/// duration of nearly `i64::MAX` ms overflowed in the engine (found by the
/// `rules` fuzz target: `max_duration` of 64 digits).
pub fn bounded_duration(text: &str) -> Result<Millis, String> {
    let ms = parse_duration(text)?;
    if ms > MAX_RULE_DURATION_MS {
        return Err(format!("`{text}` is longer than 366d"));
    }
    Ok(ms)
}

/// One entry of a rule's `match:` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatcher {
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

/// The matchers of a `match:` list; each problem is reported and its matcher
/// left out.
pub fn compile_matchers(cx: &mut Cx<'_>, raws: &[RawMatcher]) -> Vec<Matcher> {
    let mut out = Vec::new();
    for raw in raws {
        let regex = match &raw.regex {
            None => None,
            // Checked before the regex is parsed: parsing an 8 MB pattern
            // took ~1 GB before the compiled size limit could reject it.
            Some(r) if r.len() > MAX_REGEX_BYTES => {
                let first = r.lines().next().unwrap_or("regex:").to_string();
                cx.err(
                    &first,
                    format!(
                        "regex of {} bytes is longer than {} bytes (the regex length limit)",
                        r.len(),
                        MAX_REGEX_BYTES
                    ),
                );
                None
            }
            Some(r) => match RuleRegex::new(r, cx.regexes) {
                Ok(re) => Some(re),
                Err(e) => {
                    let first = r.lines().next().unwrap_or("regex:").to_string();
                    cx.err(&first, format!("invalid regex: {}", one_line(&e)));
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

/// `group_by`, `unique` and `distinct` name fields of a matching line; a
/// field no matcher can capture is never there, so the rule never fires
/// (threshold, distinct) or never keys on it (pattern). `provided` are the
/// fields the kind supplies itself. Skipped when a matcher did not compile:
/// its captures are unknown, and its error is already reported.
pub fn check_field_names(
    cx: &mut Cx<'_>,
    raw: Option<&Vec<RawMatcher>>,
    matchers: &[Matcher],
    provided: &[&str],
    uses: &[(&str, Vec<String>)],
) {
    let raw_count = raw.map_or(0, Vec::len);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct C {
        a: Option<u32>,
        #[serde(rename = "match")]
        b: Option<String>,
    }

    #[test]
    fn fields_of_lists_the_serde_names() {
        assert_eq!(fields_of::<C>(), ["a", "match"]);
    }

    #[test]
    fn durations_over_a_year_are_refused() {
        assert!(bounded_duration("366d").is_ok());
        assert!(
            bounded_duration("367d")
                .unwrap_err()
                .contains("longer than 366d")
        );
    }
}
