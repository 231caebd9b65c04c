//! YAML text → raw rule, reporting every top-level entry that does not fit.
//!
//! serde stops at the first problem, so an unknown field used to hide every
//! other error of the rule. When the whole file does not deserialize, each
//! top-level entry is tried on its own: the ones that fail are reported (each
//! on its own line, by parsing that entry's lines alone, which gives serde's
//! exact location) and left out, and the rest is deserialized as usual so the
//! compile stage can report its own errors too.

use serde::de::DeserializeOwned;
use serde_yaml_ng::{Mapping, Value};

/// A problem found in the YAML stage: 1-based line and message.
pub(super) type Located = (usize, String);

/// The raw rule (with the entries that did not fit left out), the problems,
/// and the keys of the entries left out.
pub(super) struct Parsed<T> {
    pub raw: T,
    pub errors: Vec<Located>,
    pub broken: Vec<String>,
}

/// Deserialize `text`; `Err` only when nothing of it can be used (a YAML
/// syntax error, or a file that is not a mapping).
pub(super) fn parse<T: DeserializeOwned>(text: &str) -> Result<Parsed<T>, Located> {
    let first = match serde_yaml_ng::from_str::<T>(text) {
        Ok(raw) => {
            return Ok(Parsed {
                raw,
                errors: Vec::new(),
                broken: Vec::new(),
            });
        }
        Err(e) => e,
    };
    let whole = || (line(text, &first), message(&first));
    let Ok(Value::Mapping(map)) = serde_yaml_ng::from_str::<Value>(text) else {
        return Err(whole());
    };
    let starts = entry_lines(text, &map);
    let mut kept = Mapping::new();
    let mut errors = Vec::new();
    let mut broken = Vec::new();
    for (i, (k, v)) in map.iter().enumerate() {
        let one = Mapping::from_iter([(k.clone(), v.clone())]);
        let Err(e) = serde_yaml_ng::from_value::<T>(Value::Mapping(one)) else {
            kept.insert(k.clone(), v.clone());
            continue;
        };
        broken.push(k.as_str().unwrap_or_default().to_string());
        errors.push(locate::<T>(text, &starts, i).unwrap_or_else(|| {
            let at = starts.get(i).copied().flatten().map_or(1, |s| s.0);
            (at, message(&e))
        }));
    }
    match serde_yaml_ng::from_value::<T>(Value::Mapping(kept)) {
        Ok(raw) if !errors.is_empty() => Ok(Parsed {
            raw,
            errors,
            broken,
        }),
        _ => Err(whole()),
    }
}

/// 1-based line of a YAML error, counted in `\n` as editors count. libyaml's
/// own line number also counts a lone `\r`, NEL and the Unicode line and
/// paragraph separators as line breaks, so a file with them got a line past
/// its end (found by the `rules` fuzz target). Its index is in bytes.
pub(super) fn line(text: &str, e: &serde_yaml_ng::Error) -> usize {
    e.location().map_or(1, |l| {
        let before = text.as_bytes().get(..l.index()).unwrap_or(text.as_bytes());
        memchr::memchr_iter(b'\n', before).count() + 1
    })
}

/// serde's text without its trailing "at line L column C", which `path:line:`
/// already says.
pub(super) fn message(e: &serde_yaml_ng::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// For each top-level entry, in order: its first line (1-based) and byte
/// offset, when its key can be found at the start of a line.
fn entry_lines(text: &str, map: &Mapping) -> Vec<Option<(usize, usize)>> {
    let mut lines = text.split_inclusive('\n').scan((0usize, 0usize), |at, l| {
        let here = *at;
        *at = (at.0 + 1, at.1 + l.len());
        Some((here.0 + 1, here.1, l))
    });
    map.keys()
        .map(|k| {
            let key = k.as_str()?;
            lines
                .by_ref()
                .find(|(_, _, l)| starts_entry(l, key))
                .map(|(n, off, _)| (n, off))
        })
        .collect()
}

fn starts_entry(line: &str, key: &str) -> bool {
    let rest = ["", "\"", "'"].iter().find_map(|q| {
        line.strip_prefix(q)?
            .strip_prefix(key)?
            .strip_prefix(q)
            .map(str::trim_start)
    });
    rest.is_some_and(|r| r.starts_with(':'))
}

/// The problem of entry `i`, located by parsing its lines alone.
fn locate<T: DeserializeOwned>(
    text: &str,
    starts: &[Option<(usize, usize)>],
    i: usize,
) -> Option<Located> {
    let (first_line, from) = starts.get(i).copied().flatten()?;
    let to = starts
        .iter()
        .skip(i + 1)
        .find_map(|s| s.map(|s| s.1))
        .unwrap_or(text.len());
    let slice = text.get(from..to)?;
    let e = serde_yaml_ng::from_str::<T>(slice).err()?;
    Some((first_line + line(slice, &e) - 1, message(&e)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct R {
        a: Option<u32>,
        b: Option<Vec<String>>,
        c: Option<u32>,
    }

    #[test]
    fn every_entry_that_does_not_fit_is_reported_on_its_line() {
        let text = "a: 1\nx: 2\nb:\n  - ok\n  - [nested]\nc: 3\n";
        let p = parse::<R>(text).unwrap();
        assert_eq!(p.raw.a, Some(1));
        assert_eq!(p.raw.c, Some(3));
        assert!(p.raw.b.is_none());
        assert_eq!(p.broken, ["x", "b"]);
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
        assert_eq!(p.errors[0].0, 2);
        assert!(
            p.errors[0].1.starts_with("unknown field `x`"),
            "{:?}",
            p.errors
        );
        assert_eq!(p.errors[1].0, 5, "{:?}", p.errors);
    }

    #[test]
    fn a_syntax_error_or_a_non_mapping_is_one_error() {
        assert_eq!(parse::<R>("a: [1\n").err().unwrap().0, 1);
        assert!(parse::<R>("- a\n").is_err());
        assert!(parse::<R>("a: 1\nc: 2\n").unwrap().errors.is_empty());
    }
}
