//! Where alerts go: stdout (text for people or one JSON object per line),
//! SNS ([`sns`], the detector Lambda's sink) and Slack ([`slack`], used by the
//! notifier Lambda subscribed to the topic and by `logwarden notify slack`).

pub mod slack;
pub mod sns;

use std::io::{self, Write};

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
                    serde_json::to_writer(&mut self.out, a)?;
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
