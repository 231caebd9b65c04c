//! Runtime out-of-memory strings in application lines.

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// The markers, as reported in [`Record::OutOfMemory::marker`].
const OOM_GO: &str = "fatal error: runtime: out of memory";
const OOM_JAVA: &str = "java.lang.OutOfMemoryError";
pub(super) const OOM_NODE: &str = "JavaScript heap out of memory";
const OOM_PYTHON: &str = "MemoryError";
const OOM_RUBY: &str = "failed to allocate memory (NoMemoryError)";

// Both markers' words share `emory` (`out of memory`, `MemoryError`): one
// memmem pass finds the candidates of both, where two passes cost 6.0 M Ir
// of the text corpus (callgrind).
static EMORY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("emory"));

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The marker of an `out of memory` at `pos`, if its context makes it one.
fn out_of_memory_at(b: &[u8], pos: usize) -> Option<&'static str> {
    let before = b.get(..pos).unwrap_or_default();
    if before.ends_with(b"fatal error: runtime: ") {
        Some(OOM_GO)
    } else if before.ends_with(b"JavaScript heap ") {
        Some(OOM_NODE)
    } else {
        None
    }
}

/// The marker of a `MemoryError` at `pos`, if its context makes it one.
fn memory_error_at(b: &[u8], pos: usize) -> Option<&'static str> {
    let before = b.get(..pos).unwrap_or_default();
    let after = b.get(pos + OOM_PYTHON.len()..).unwrap_or_default();
    if before.ends_with(b"java.lang.OutOf") {
        Some(OOM_JAVA)
    } else if before.ends_with(b"failed to allocate memory (No") && after.starts_with(b")") {
        Some(OOM_RUBY)
    } else if !before.last().is_some_and(|&c| is_ident(c))
        && !after.first().is_some_and(|&c| is_ident(c))
    {
        // Python's `MemoryError` as a word, not `NoMemoryErrorHandler`.
        Some(OOM_PYTHON)
    } else {
        None
    }
}

/// The first runtime out-of-memory marker in `b`, if any: the first
/// `out of memory` and the first `MemoryError` whose context makes them a
/// marker, whichever starts first.
pub(super) fn oom_marker(b: &[u8]) -> Option<&'static str> {
    const OUT_OF_M: usize = "out of m".len();
    let (mut out_of_memory, mut memory_error) = (None, None);
    for e in EMORY.find_iter(b) {
        if out_of_memory.is_none()
            && let Some(pos) = e.checked_sub(OUT_OF_M)
            && b[pos..].starts_with(b"out of memory")
        {
            out_of_memory = out_of_memory_at(b, pos).map(|m| (pos, m));
        }
        if memory_error.is_none()
            && let Some(pos) = e.checked_sub(1)
            && b[pos..].starts_with(OOM_PYTHON.as_bytes())
        {
            memory_error = memory_error_at(b, pos).map(|m| (pos, m));
        }
        if out_of_memory.is_some() && memory_error.is_some() {
            break;
        }
    }
    match (out_of_memory, memory_error) {
        (Some(a), Some(m)) => Some(if a.0 <= m.0 { a.1 } else { m.1 }),
        (a, m) => a.or(m).map(|(_, marker)| marker),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::platform::testutil::*;
    use crate::platform::{Record, parse};

    #[test]
    fn oom_markers_plain() {
        for (msg, marker) in [
            (
                "fatal error: runtime: out of memory\n\ngoroutine 1 [running]:",
                OOM_GO,
            ),
            (
                "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
                OOM_JAVA,
            ),
            (
                "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
                OOM_NODE,
            ),
            ("MemoryError", OOM_PYTHON),
            (
                "[ERROR] MemoryError\nTraceback (most recent call last):",
                OOM_PYTHON,
            ),
            (
                "Traceback:\nMemoryError: Unable to allocate 8 GiB",
                OOM_PYTHON,
            ),
            ("{\"errorType\": \"MemoryError\"}", OOM_PYTHON),
            (
                "/var/task/app.rb:3:in `*': failed to allocate memory (NoMemoryError)",
                OOM_RUBY,
            ),
        ] {
            assert_eq!(
                parse(msg),
                Record::OutOfMemory {
                    request_id: None,
                    marker
                },
                "{msg:?}"
            );
        }
        assert_eq!(OOM_GO, "fatal error: runtime: out of memory");
        assert_eq!(OOM_JAVA, "java.lang.OutOfMemoryError");
        assert_eq!(OOM_NODE, "JavaScript heap out of memory");
        assert_eq!(OOM_RUBY, "failed to allocate memory (NoMemoryError)");
    }

    #[test]
    fn oom_after_lambda_prefix() {
        assert_eq!(
            parse(&format!(
                "2024-01-01T00:00:00.000Z\t{ID}\tERROR\tjava.lang.OutOfMemoryError: Java heap space\n"
            )),
            Record::OutOfMemory {
                request_id: Some(b(ID)),
                marker: OOM_JAVA
            }
        );
        assert_eq!(
            parse(&format!(
                "[ERROR]\t2024-01-01T00:00:00.000Z\t{ID}\tMemoryError"
            )),
            Record::OutOfMemory {
                request_id: Some(b(ID)),
                marker: OOM_PYTHON
            }
        );
        assert_eq!(
            parse(
                "{\"timestamp\":\"t\",\"level\":\"ERROR\",\"requestId\":\"r-1\",\"message\":\"JavaScript heap out of memory\"}"
            ),
            Record::OutOfMemory {
                request_id: Some(b("r-1")),
                marker: OOM_NODE
            }
        );
    }

    #[test]
    fn oom_first_marker_wins() {
        assert_eq!(
            parse("MemoryError then fatal error: runtime: out of memory"),
            Record::OutOfMemory {
                request_id: None,
                marker: OOM_PYTHON
            }
        );
        assert_eq!(
            parse("x NoMemoryErrorHandler; fatal error: runtime: out of memory; MemoryError"),
            Record::OutOfMemory {
                request_id: None,
                marker: OOM_GO
            }
        );
    }

    #[test]
    fn oom_no_false_positives() {
        for msg in [
            "NoMemoryErrorHandler registered",
            "MemoryErrors are bad",
            "handle_MemoryError()",
            "MemoryError2",
            "out of memory",
            "ran out of memory?",
            "(NoMemoryError)",
            "OutOfMemory",
            "Memory Size: 128 MB",
        ] {
            assert_eq!(parse(msg), plain_app(msg), "{msg:?}");
        }
    }
}
