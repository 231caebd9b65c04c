//! Local replay: files and directories in name order through the same engine
//! the Lambda runs. One bad file or record never stops the rest; it is
//! reported and changes the exit code.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    /// Decoding threads (0: one per available core). Detection itself runs
    /// in input order on the calling thread whatever this is.
    pub threads: usize,
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
    /// STARTs not tracked because their stream held the most open
    /// invocations a stream keeps.
    pub open_invocations_dropped: u64,
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

/// Bytes of decoded payloads that the decoding threads may hold, together,
/// for inputs detection has not reached yet. The cap bounds one payload, not
/// a file of many (a Kinesis event of 150 records of 7 MiB each is 1.5 MB on
/// disk): an input that would pass this budget is dropped by its decoder and
/// decoded again by detection, one payload at a time.
pub const DECODE_AHEAD_BYTES: usize = 64 << 20;

/// One input decoded ahead of detection: its payloads (owned, so decoding
/// can run on another thread) or what went wrong, in input order.
struct DecodedInput {
    path: PathBuf,
    units: Vec<(String, Result<ingest::OwnedPayload, ingest::DecodeError>)>,
    /// The input as a whole could not be read or recognised.
    error: Option<String>,
    /// Bytes of `units`, counted in the shared decode-ahead budget.
    held: usize,
    /// The payloads passed the budget and were dropped: detection decodes
    /// the input again itself.
    overflowed: bool,
}

/// Reads and decodes one input, handing each unit to `f` as it is decoded;
/// returns why the input as a whole could not be read or recognised.
fn decode_each(
    path: &Path,
    opts: &ReplayOptions,
    f: &mut dyn FnMut(&str, Result<ingest::OwnedPayload, ingest::DecodeError>),
) -> Option<String> {
    let bytes = match read_input(path) {
        Ok(b) => b,
        Err(e) => return Some(format!("cannot read: {e}")),
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
    ingest::for_each_owned_payload(&bytes, &name, &fopts, f)
        .err()
        .map(|e| e.to_string())
}

/// Decodes one input ahead of detection, holding its payloads while the
/// shared `budget` (bytes held by all decoders) allows.
fn decode_input(path: &Path, opts: &ReplayOptions, budget: &AtomicUsize) -> DecodedInput {
    let mut units = Vec::new();
    let mut held = 0;
    let mut overflowed = false;
    let error = decode_each(path, opts, &mut |origin, unit| {
        if overflowed {
            return;
        }
        let size = unit.as_ref().map_or(0, ingest::OwnedPayload::heap_size);
        let before = budget.fetch_add(size, Ordering::Relaxed);
        if before.saturating_add(size) > DECODE_AHEAD_BYTES {
            budget.fetch_sub(size + held, Ordering::Relaxed);
            held = 0;
            units = Vec::new();
            overflowed = true;
            return;
        }
        held += size;
        units.push((origin.to_string(), unit));
    });
    DecodedInput {
        path: path.to_path_buf(),
        units,
        error,
        held,
        overflowed,
    }
}

/// Most decoding threads chosen by default. Detection runs on one thread, and
/// past a few decoders it is the bottleneck; each decoder can hold about two
/// decoded-size caps at once, so 8 keeps a directory of gzip bombs near
/// 160 MiB on any machine (measured by `tests/bad_input.rs`' figures).
pub const MAX_DEFAULT_THREADS: usize = 8;

/// Number of decoding threads for `requested` (0: one per available core, at
/// most [`MAX_DEFAULT_THREADS`]).
pub fn decode_threads(requested: usize) -> usize {
    match requested {
        0 => std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(MAX_DEFAULT_THREADS),
        n => n,
    }
}

/// Replay through a given engine (any state store), driving its futures on
/// `rt`. Inputs are decoded on `opts.threads` threads (with more than one,
/// a few inputs ahead of detection) and detected one after another in input
/// order, so alerts and state are the same whatever the thread count.
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
    let threads = decode_threads(opts.threads).min(files.len().max(1));
    let mut detect = |input: Input| -> Result<(), ReplayError> {
        let mut d = Detection::new(input.path());
        match input {
            Input::Decoded(decoded) if !decoded.overflowed => {
                for (origin, unit) in decoded.units {
                    d.unit(engine, rt, &mut summary, &origin, unit, &mut *publish);
                }
                d.error = decoded.error;
            }
            // Decoded here, one payload at a time: memory stays bounded
            // however many payloads the input holds.
            _ => {
                d.error = decode_each(input.path(), opts, &mut |origin, unit| {
                    d.unit(engine, rt, &mut summary, origin, unit, &mut *publish);
                });
            }
        }
        d.finish(&mut summary)?;
        if let Some(bar) = &progress {
            bar.inc(1);
        }
        Ok(())
    };
    if threads <= 1 || stdin_among(&files) {
        for path in &files {
            detect(Input::Path(path))?;
        }
    } else {
        decode_in_parallel(&files, opts, threads, &mut detect)?;
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

fn stdin_among(files: &[PathBuf]) -> bool {
    files.iter().any(|p| p.as_os_str() == "-")
}

/// Decode `files` on `threads` scoped threads, at most `2 × threads` inputs
/// ahead of detection (memory stays bounded), and hand them to `detect` in
/// input order on this thread.
fn decode_in_parallel(
    files: &[PathBuf],
    opts: &ReplayOptions,
    threads: usize,
    detect: &mut dyn FnMut(Input<'_>) -> Result<(), ReplayError>,
) -> Result<(), ReplayError> {
    use std::sync::{Condvar, Mutex, mpsc};

    let ahead = 2 * threads;
    let next = AtomicUsize::new(0);
    let budget = AtomicUsize::new(0);
    // The index of the input detection needs next, or `None` once detection
    // has stopped; decoders wait while they are `ahead` inputs past it. One
    // lock for both, so a decoder cannot miss the wake-up of a stop.
    let gate = (Mutex::new(Some(0usize)), Condvar::new());
    let set_gate = |value: Option<usize>| {
        let (lock, cv) = &gate;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = value;
        cv.notify_all();
    };
    let (tx, rx) = mpsc::channel::<(usize, DecodedInput)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, gate, budget) = (&next, &gate, &budget);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= files.len() {
                        return;
                    }
                    let (lock, cv) = gate;
                    let mut needed = lock.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        match *needed {
                            None => return,
                            Some(n) if i < n + ahead => break,
                            Some(_) => needed = cv.wait(needed).unwrap_or_else(|p| p.into_inner()),
                        }
                    }
                    drop(needed);
                    if tx.send((i, decode_input(&files[i], opts, budget))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting: BTreeMap<usize, DecodedInput> = BTreeMap::new();
        let mut result = Ok(());
        for want in 0..files.len() {
            let input = loop {
                if let Some(d) = waiting.remove(&want) {
                    break Some(d);
                }
                match rx.recv() {
                    Ok((i, d)) => {
                        waiting.insert(i, d);
                    }
                    Err(_) => break None,
                }
            };
            let Some(input) = input else { break };
            set_gate(Some(want + 1));
            let held = input.held;
            result = detect(Input::Decoded(input));
            budget.fetch_sub(held, Ordering::Relaxed);
            if result.is_err() {
                break;
            }
        }
        set_gate(None);
        drop(rx);
        result
    })
}

/// An input as detection gets it: decoded ahead, or to be decoded now.
enum Input<'p> {
    /// Not decoded yet.
    Path(&'p Path),
    /// Decoded by a decoding thread.
    Decoded(DecodedInput),
}

impl Input<'_> {
    fn path(&self) -> &Path {
        match self {
            Input::Path(p) => p,
            Input::Decoded(d) => &d.path,
        }
    }
}

/// Detection over one input: every payload in order, each payload's alerts
/// published and confirmed before the next payload is detected (so a later
/// payload that repeats an earlier one's event ids cannot make the engine
/// re-send alerts still pending), errors reported by [`Detection::finish`].
struct Detection {
    shown: String,
    batch_errors: Vec<InputError>,
    /// The store failed: the rest of the input is skipped.
    fatal: Option<EngineError>,
    /// Delivery failed: the rest of the input is skipped.
    output: Option<std::io::Error>,
    /// The input as a whole could not be read or recognised.
    error: Option<String>,
}

impl Detection {
    fn new(path: &Path) -> Self {
        Detection {
            shown: path.display().to_string(),
            batch_errors: Vec::new(),
            fatal: None,
            output: None,
            error: None,
        }
    }

    /// One unit of the input: detect on it, or record why it failed.
    fn unit<S: StateStore>(
        &mut self,
        engine: &mut Engine<S>,
        rt: &tokio::runtime::Runtime,
        summary: &mut ReplaySummary,
        origin: &str,
        unit: Result<ingest::OwnedPayload, ingest::DecodeError>,
        publish: &mut dyn FnMut(&[Alert]) -> std::io::Result<()>,
    ) {
        if self.fatal.is_some() || self.output.is_some() {
            return;
        }
        match unit {
            Err(e) => self.batch_errors.push(InputError {
                input: self.shown.clone(),
                origin: Some(origin.to_string()),
                message: e.to_string(),
            }),
            Ok(p) => match rt.block_on(engine.process(&p.view())) {
                Ok(o) => {
                    if !o.control {
                        summary.batches += 1;
                    }
                    summary.events += o.events;
                    summary.suppressed += o.suppressed;
                    summary.open_invocations_dropped += o.open_invocations_dropped;
                    if o.alerts.is_empty() {
                        return;
                    }
                    summary.alerts += o.alerts.len();
                    if let Err(e) = publish(&o.alerts) {
                        self.output = Some(e);
                        return;
                    }
                    let ids: Vec<String> = o.alerts.iter().map(|a| a.id.clone()).collect();
                    if let Err(e) = rt.block_on(engine.confirm(&ids)) {
                        self.fatal = Some(e);
                    }
                }
                Err(e) => self.fatal = Some(e),
            },
        }
    }

    /// Records the input's errors; a delivery or store failure stops the replay.
    fn finish(self, summary: &mut ReplaySummary) -> Result<(), ReplayError> {
        summary.inputs += 1;
        if let Some(e) = self.output {
            return Err(ReplayError::Output(e));
        }
        if let Some(e) = self.fatal {
            return Err(ReplayError::Engine(e));
        }
        if let Some(message) = self.error {
            summary.errors.push(InputError {
                input: self.shown,
                origin: None,
                message,
            });
        }
        summary.errors.extend(self.batch_errors);
        Ok(())
    }
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
