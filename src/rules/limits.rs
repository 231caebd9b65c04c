//! Bounds on what one rule file may ask the loader to do.
//!
//! Each is checked before the step it protects: the file size before the
//! file is read whole, the YAML flow nesting before libyaml parses it (its
//! scanner visits every open flow level for every token, so nesting `n` deep
//! costs `n²`: 100,000 levels took 19 s), the pattern length before a regex is
//! parsed (an 8 MB alternation peaked at ~1 GB RSS before `size_limit`
//! rejected it), and the number of inline tests before they are built. The
//! built-in rules use a fraction of each: the largest file is 22 KB, the
//! longest regex under 600 bytes, the deepest flow nesting 2, the most tests
//! in one rule 10.

use std::io::Read;
use std::path::Path;

/// The regex limits live with the matchers that compile regexes.
pub use crate::detect::config::{MAX_REGEX_BYTES, MAX_REGEX_COMPILED_BYTES, MAX_REGEX_NESTING};

/// Largest rule file, in bytes (1 MiB).
pub const MAX_RULE_FILE_BYTES: usize = 1 << 20;

/// Deepest nesting of YAML flow collections (`[...]`, `{...}`).
pub const MAX_YAML_FLOW_DEPTH: usize = 64;

/// Most inline tests in one rule.
pub const MAX_TESTS_PER_RULE: usize = 1_000;

/// Most events all inline tests of one rule may hold together (after `repeat:`).
pub const MAX_TEST_EVENTS_PER_RULE: usize = 200_000;

/// Read a rule file, refusing one larger than [`MAX_RULE_FILE_BYTES`] before
/// reading it whole (and, should it grow meanwhile, after at most one byte more).
pub fn read_rule_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let too_big = || format!("larger than {MAX_RULE_FILE_BYTES} bytes (the rule file size limit)");
    if let Ok(meta) = file.metadata()
        && meta.len() > MAX_RULE_FILE_BYTES as u64
    {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(MAX_RULE_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() > MAX_RULE_FILE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| format!("cannot read: not UTF-8 ({e})"))
}

/// The first place where YAML flow collections nest deeper than
/// [`MAX_YAML_FLOW_DEPTH`], as a byte offset, found without parsing.
///
/// A scan, not a YAML parser: it follows what changes the flow level (an
/// opening bracket where a node can start, a closing one, quoted scalars and
/// comments inside flow collections). An opening bracket inside a scalar may
/// be counted too, which only matters for text with dozens of unbalanced
/// ones; a file that gets past the scan with deep nesting anyway is still
/// bounded by [`MAX_RULE_FILE_BYTES`] and, once parsed, by serde_yaml_ng's
/// own recursion limit (128).
pub fn flow_too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    // Whether a node may start here: after indentation, whitespace, a
    // sequence entry or mapping value indicator, or another flow indicator.
    let mut node_start = true;
    // In block context, inside a plain scalar: brackets are text.
    let mut plain = false;
    // Column of the last key or `-` on this line: a block scalar's lines are
    // those indented deeper.
    let (mut line_start, mut parent_col) = (0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if depth == 0 && plain && c != b'\n' && !(c == b':' && is_space(b.get(i + 1))) {
            if c == b'#' && i > 0 && is_space(b.get(i - 1)) {
                plain = false;
                i = line_end(b, i);
            } else {
                i += 1;
            }
            continue;
        }
        match c {
            b'[' | b'{' if node_start || depth > 0 => {
                depth += 1;
                if depth > MAX_YAML_FLOW_DEPTH {
                    return Some(i);
                }
                node_start = true;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                node_start = false;
            }
            b',' if depth > 0 => node_start = true,
            b'#' if node_start => {
                i = line_end(b, i);
                continue;
            }
            b'"' | b'\'' if node_start => {
                i = quoted_end(b, i);
                node_start = false;
                continue;
            }
            b'|' | b'>' if node_start && depth == 0 => {
                i = block_scalar_end(b, i, parent_col);
                line_start = i;
                continue;
            }
            b'\n' => {
                node_start = true;
                plain = false;
                line_start = i + 1;
                parent_col = 0;
            }
            b':' => {
                plain = false;
                node_start = true;
            }
            b' ' | b'\t' | b'\r' => node_start = true,
            b'-' if node_start && depth == 0 => parent_col = i - line_start,
            b'?' if node_start => {}
            // An anchor, tag or alias name: the node (if any) starts after it.
            b'&' | b'!' | b'*' if node_start => {
                while i < b.len() && !is_space(b.get(i)) {
                    i += 1;
                }
                continue;
            }
            _ if depth == 0 && node_start => {
                parent_col = i - line_start;
                plain = true;
                node_start = false;
            }
            _ => node_start = false,
        }
        i += 1;
    }
    None
}

fn is_space(c: Option<&u8>) -> bool {
    matches!(c, None | Some(b' ' | b'\t' | b'\r' | b'\n'))
}

fn line_end(b: &[u8], from: usize) -> usize {
    memchr::memchr(b'\n', &b[from..]).map_or(b.len(), |n| from + n)
}

/// Index of the first line after the block scalar (`|`, `>`) at `at`: its
/// lines are blank or indented deeper than `parent_col`.
fn block_scalar_end(b: &[u8], at: usize, parent_col: usize) -> usize {
    let mut i = (line_end(b, at) + 1).min(b.len());
    while i < b.len() {
        let indent = b[i..].iter().take_while(|c| **c == b' ').count();
        let next = line_end(b, i);
        let blank = b[i + indent..next].iter().all(|c| c.is_ascii_whitespace());
        if !blank && indent <= parent_col {
            return i;
        }
        i = (next + 1).min(b.len());
    }
    b.len()
}

/// Index just past the quoted scalar starting at `start`.
fn quoted_end(b: &[u8], start: usize) -> usize {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && b.get(i + 1) == Some(&b'\'') => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flow_depth_counts_brackets_where_nodes_start() {
        let deep = format!("a: {}{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(flow_too_deep(&deep), Some(3 + 64));
        let ok = format!("a: {}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(flow_too_deep(&ok), None);
        // Brackets inside plain and quoted scalars are text, not nesting.
        let regexes = "regex: '[a-z][0-9]'\ntitle: a [b [c [d\n".repeat(100);
        assert_eq!(flow_too_deep(&regexes), None);
        // Closing brackets inside a quoted scalar do not close anything.
        let hidden = format!("a: {}", "[\"]\", ".repeat(65));
        assert!(flow_too_deep(&hidden).is_some());
        let hidden = format!("a: {}", "['x'']', ".repeat(65));
        assert!(flow_too_deep(&hidden).is_some());
        // Anchors and tags before a collection.
        let tagged = format!("a: &x !t {}", "{k: ".repeat(65));
        assert!(flow_too_deep(&tagged).is_some());
    }

    #[test]
    fn builtin_rules_are_within_every_limit() {
        for (name, text) in super::super::BUILTIN {
            assert!(text.len() <= MAX_RULE_FILE_BYTES / 10, "{name}");
            assert_eq!(flow_too_deep(text), None, "{name}");
        }
    }
}
