//! Local replay: files and directories in name order through the same engine
//! the Lambda runs. One bad file or record never stops the rest; it is
//! reported and changes the exit code.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::alert::Alert;
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::ingest::{self, FileOptions, Limits};
use crate::rules::RuleSet;
use crate::state::{MemoryStore, StateStore};

/// File name endings read when walking a directory; files named explicitly
/// are always read.
pub const INPUT_EXTENSIONS: &[&str] = &["json", "ndjson", "jsonl", "gz", "log", "txt"];

/// What replay needs besides the paths.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Decoding caps.
    pub limits: Limits,
    /// Log group for plain log files.
    pub log_group: Option<String>,
    /// Log stream for plain log files.
    pub log_stream: Option<String>,
    /// Watermark at end of input (default: the last event time).
    pub now: Option<i64>,
    /// Engine settings.
    pub engine: EngineConfig,
}

/// One input that could not be read or decoded (whole or in part).
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    /// The file (`-` for stdin).
    pub input: String,
    /// Where inside it, when only part failed (`record 3`, `line 17`).
    pub origin: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.origin {
            Some(o) => write!(f, "{}: {o}: {}", self.input, self.message),
            None => write!(f, "{}: {}", self.input, self.message),
        }
    }
}

/// Totals of one replay.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReplaySummary {
    /// Inputs read.
    pub inputs: usize,
    /// Payloads processed.
    pub batches: usize,
    /// Log events processed.
    pub events: usize,
    /// Alerts raised.
    pub alerts: usize,
    /// Events folded into incidents that had already alerted.
    pub suppressed: u64,
    /// Inputs or parts of inputs that failed.
    pub errors: Vec<InputError>,
}

/// Expand paths: directories recursively in name order, `-` kept as stdin.
pub fn expand_paths(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<InputError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" || !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        walk(p, &mut out, &mut errors);
    }
    (out, errors)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(InputError {
                input: dir.display().to_string(),
                origin: None,
                message: format!("cannot read directory: {e}"),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out, errors);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| INPUT_EXTENSIONS.contains(&x))
        {
            out.push(p);
        }
    }
}

/// Replay `paths` through a fresh engine with the in-memory store, giving each
/// batch's alerts to `publish` as soon as they are found.
pub fn replay(
    rules: Arc<RuleSet>,
    paths: &[PathBuf],
    opts: &ReplayOptions,
    publish: &mut dyn FnMut(&[Alert]) -> std::io::Result<()>,
) -> Result<ReplaySummary, ReplayError> {
    let mut engine = Engine::new(rules, MemoryStore::new(), opts.engine.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ReplayError::Output)?;
    replay_with(&mut engine, &rt, paths, opts, publish)
}

/// Replay through a given engine (any state store), driving its futures on
/// `rt` from the synchronous decode callback: payloads borrow each file's
/// buffers, so they are processed where they are decoded.
pub fn replay_with<S: StateStore>(
    engine: &mut Engine<S>,
    rt: &tokio::runtime::Runtime,
    paths: &[PathBuf],
    opts: &ReplayOptions,
    publish: &mut dyn FnMut(&[Alert]) -> std::io::Result<()>,
) -> Result<ReplaySummary, ReplayError> {
    let (files, walk_errors) = expand_paths(paths);
    let mut summary = ReplaySummary {
        errors: walk_errors,
        ..ReplaySummary::default()
    };
    let progress = (files.len() > 1 && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(files.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} files {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    for path in &files {
        let shown = path.display().to_string();
        summary.inputs += 1;
        let bytes = match read_input(path) {
            Ok(b) => b,
            Err(e) => {
                summary.errors.push(InputError {
                    input: shown,
                    origin: None,
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let fopts = FileOptions {
            limits: opts.limits,
            log_group: opts.log_group.clone(),
            log_stream: opts.log_stream.clone(),
            default_timestamp_ms: mtime_ms(path),
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("stdin")
            .to_string();
        let mut batch_errors: Vec<InputError> = Vec::new();
        let mut fatal: Option<EngineError> = None;
        let mut pending: Vec<Alert> = Vec::new();
        let form = {
            let engine = &mut *engine;
            let summary = &mut summary;
            let mut f = |origin: &str, unit: Result<&ingest::Payload<'_>, ingest::DecodeError>| {
                match unit {
                    Err(e) => batch_errors.push(InputError {
                        input: shown.clone(),
                        origin: Some(origin.to_string()),
                        message: e.to_string(),
                    }),
                    Ok(p) => {
                        if fatal.is_some() {
                            return;
                        }
                        match rt.block_on(engine.process(p)) {
                            Ok(o) => {
                                if !o.control {
                                    summary.batches += 1;
                                }
                                summary.events += o.events;
                                summary.suppressed += o.suppressed;
                                pending.extend(o.alerts);
                            }
                            Err(e) => fatal = Some(e),
                        }
                    }
                }
            };
            ingest::for_each_payload(&bytes, &name, &fopts, &mut f)
        };
        summary.alerts += pending.len();
        publish(&pending).map_err(ReplayError::Output)?;
        let ids: Vec<String> = pending.iter().map(|a| a.id.clone()).collect();
        rt.block_on(engine.confirm(&ids))
            .map_err(ReplayError::Engine)?;
        if let Some(e) = fatal {
            return Err(ReplayError::Engine(e));
        }
        if let Err(e) = form {
            summary.errors.push(InputError {
                input: shown.clone(),
                origin: None,
                message: e.to_string(),
            });
        }
        summary.errors.extend(batch_errors);
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(now) = opts.now.or(engine.watermark()) {
        let o = rt
            .block_on(engine.sweep(now))
            .map_err(ReplayError::Engine)?;
        summary.alerts += o.alerts.len();
        publish(&o.alerts).map_err(ReplayError::Output)?;
        let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
        rt.block_on(engine.confirm(&ids))
            .map_err(ReplayError::Engine)?;
    }
    Ok(summary)
}

/// Replay could not go on at all.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Delivering alerts failed (stdout closed, SNS unreachable).
    #[error("cannot deliver alerts: {0}")]
    Output(std::io::Error),
    /// The state store failed.
    #[error(transparent)]
    Engine(EngineError),
}

fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf)?;
        return Ok(buf);
    }
    std::fs::read(path)
}

fn mtime_ms(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}
