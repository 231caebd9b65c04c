//! Stdout: alerts as text for people or one JSON object per line.

use std::io::{self, Write};

use super::{AlertSink, SinkError};
use crate::alert::{Alert, text};

/// How alerts are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// For people (colour only on a terminal).
    Text,
    /// One alert object per line, nothing else.
    Json,
}

/// Writes alerts to a stream.
pub struct StdoutSink<W: Write> {
    out: W,
    format: OutputFormat,
    color: bool,
}

impl<W: Write> StdoutSink<W> {
    /// A sink writing `format` to `out`; `color` only applies to text.
    pub fn new(out: W, format: OutputFormat, color: bool) -> Self {
        StdoutSink { out, format, color }
    }

    /// Write alerts and flush, so they are seen as they are found.
    pub fn publish(&mut self, alerts: &[Alert]) -> io::Result<()> {
        for a in alerts {
            match self.format {
                OutputFormat::Json => {
                    let mut ser =
                        serde_json::Serializer::with_formatter(&mut self.out, TerminalSafeJson);
                    serde::Serialize::serialize(a, &mut ser)?;
                    self.out.write_all(b"\n")?;
                }
                OutputFormat::Text => {
                    self.out.write_all(text::render(a, self.color).as_bytes())?;
                    self.out.write_all(b"\n")?;
                }
            }
        }
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Compact JSON that also escapes, as `\uXXXX`, what JSON leaves raw but a
/// terminal may obey or that disguises text: DEL, the C1 controls (U+009B is
/// a one-character CSI to some terminals), bidi and zero-width characters.
/// The data is unchanged: a JSON parser reads the same string back.
struct TerminalSafeJson;

impl serde_json::ser::Formatter for TerminalSafeJson {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if crate::alert::visible::needs_escape(c, true) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

impl<W: Write> AlertSink for StdoutSink<W> {
    async fn publish(&mut self, alerts: &[Alert]) -> Result<(), SinkError> {
        StdoutSink::publish(self, alerts).map_err(|e| SinkError::io("stdout", alerts, e))
    }
}
