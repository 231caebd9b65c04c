//! Local replay: files and directories in name order through the same engine
//! the Lambda runs. One bad file or record never stops the rest; it is
//! reported and changes the exit code.
//!
//! The walk ([`walk_inputs`]) is ripgrep's: a path named on the command line
//! is read whatever it is (a FIFO, a device, `-` for stdin); what a directory
//! walk finds is read only if it is a regular file, and each directory and
//! each regular file is read once per run, however many symlinks or hard
//! links reach it (by device and inode), so a symlink loop ends and no event
//! counts twice. Every input is read up to [`Limits::max_file_bytes`].

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Read};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::alert::Alert;
use crate::alert::visible::visible;
use crate::engine::{BatchOutcome, Engine, EngineConfig, EngineError, Prepared};
use crate::ingest::{self, FileOptions, Limits};
use crate::rules::RuleSet;
use crate::runner::{RunError, Runner};
use crate::sinks::{AlertSink, FnSink};
use crate::state::{MemoryStore, StateStore};

/// A file in a directory listing entries (one name a line, `#` comments)
/// that a walk of that directory leaves out; naming such an entry on the
/// command line reads it. `fixtures/` uses it so that `replay fixtures/`
/// stays the bundled demo while `fixtures/real/` is replayed on its own.
pub const WALK_IGNORE_FILE: &str = ".logwarden-ignore";

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
    /// The year of syslog dates in plain logs (`--year`); `None` infers it
    /// from the file's modification time (the clock for stdin).
    pub year: Option<i32>,
}

/// One input that could not be read or decoded (whole or in part), or, as a
/// warning, one that was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    /// The file as [`shown_path`] writes it (`-` for stdin).
    pub input: String,
    /// Where inside it, when only part failed (`record 3`, `line 17`).
    pub origin: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for InputError {
    /// One line, whatever the file's name or content put in it: the origin
    /// (a Firehose `recordId`) and the message (a JSON key, a parser's quote
    /// of the input) come from the input too, so control characters are
    /// written as escapes, as [`visible`] writes alert fields.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let input = visible(&self.input, false);
        let message = visible(&self.message, false);
        match &self.origin {
            Some(o) => write!(f, "{input}: {}: {message}", visible(o, false)),
            None => write!(f, "{input}: {message}"),
        }
    }
}

/// `path` for people, on one line: control and deceptive characters as
/// [`visible`] escapes them (`\n`, `\x1b`, `\u202e`), and each byte that is
/// not UTF-8 as `\xNN`, so a file name can neither forge a line of output nor
/// drive the terminal, and two names never look the same.
pub fn shown_path(path: &Path) -> String {
    let mut out = String::new();
    for chunk in path.as_os_str().as_encoded_bytes().utf8_chunks() {
        out.push_str(&visible(chunk.valid(), false));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
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
    /// Alerts raised (firings, shadow ones included).
    pub alerts: usize,
    /// Incidents resolved with a message (resolutions raised).
    pub resolved: usize,
    /// Alerts of each shadow rule (firings and resolutions): what it would
    /// have sent, had it been live.
    pub shadow: std::collections::BTreeMap<String, u64>,
    /// Alerts silences kept back (firings parked, resolutions of parked
    /// firings), not delivered.
    pub silenced: u64,
    /// Events folded into incidents that had already alerted.
    pub suppressed: u64,
    /// Events whose JSON a strict parser rejected, read tolerantly.
    pub lenient_json: u64,
    /// STARTs not tracked because their stream held the most open
    /// invocations a stream keeps.
    pub open_invocations_dropped: u64,
    /// Inputs or parts of inputs that failed.
    pub errors: Vec<InputError>,
    /// Inputs the walk skipped, and why (not errors: the exit code stays).
    pub warnings: Vec<InputError>,
}

impl ReplaySummary {
    /// Count a batch's alerts: firings and resolutions.
    fn count(&mut self, alerts: &[Alert]) {
        let resolved = alerts.iter().filter(|a| a.status.is_resolved()).count();
        self.resolved += resolved;
        self.alerts += alerts.len() - resolved;
    }

    /// The replay's closing lines as the CLI writes them on stderr, each
    /// ending in a line break: warnings, input errors, then one summary line.
    pub fn closing_lines(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        // InputError's Display escapes names and input-borne text.
        for w in &self.warnings {
            let _ = writeln!(out, "logwarden: warning: {w}");
        }
        for e in &self.errors {
            let _ = writeln!(out, "logwarden: {e}");
        }
        // The tolerant-JSON and skipped counts only when there are some:
        // the line stays as it was for every replay of well-formed logs.
        let lenient = if self.lenient_json > 0 {
            format!(", {} lenient JSON event(s)", self.lenient_json)
        } else {
            String::new()
        };
        let skipped = if self.warnings.is_empty() {
            String::new()
        } else {
            format!(", {} skipped", self.warnings.len())
        };
        // Said only when it happened: a START flood (see `missing-end`).
        let untracked = match self.open_invocations_dropped {
            0 => String::new(),
            n => format!(", {n} open invocation(s) not tracked"),
        };
        // Resolutions and shadow rules, said only when there are some.
        let resolved = match self.resolved {
            0 => String::new(),
            n => format!(", {n} resolved"),
        };
        let silenced = match self.silenced {
            0 => String::new(),
            n => format!(", {n} silenced"),
        };
        let shadow = if self.shadow.is_empty() {
            String::new()
        } else {
            let per_rule: Vec<String> = self
                .shadow
                .iter()
                .map(|(rule, n)| format!("{rule} {n}"))
                .collect();
            let n: u64 = self.shadow.values().sum();
            format!(
                ", {n} shadow alert(s) not delivered ({})",
                per_rule.join(", ")
            )
        };
        let _ = writeln!(
            out,
            "logwarden: {} input(s), {} batch(es), {} event(s), {} alert(s){resolved}, {} suppressed, {} input error(s){lenient}{untracked}{skipped}{silenced}{shadow}",
            self.inputs,
            self.batches,
            self.events,
            self.alerts,
            self.suppressed,
            self.errors.len()
        );
        out
    }
}

/// How an input was reached, which decides how it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A regular file found by walking a directory: read only if it is still
    /// a regular file when opened (never blocks on a FIFO put in its place).
    Walked,
    /// A regular file named on the command line (or a name that could not
    /// be looked up: reading it reports why).
    Named,
    /// Stdin, or a FIFO or device named on the command line: read as it
    /// comes, once, so inputs are then decoded in order on one thread.
    Stream,
}

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// The path (`-` for stdin).
    pub path: PathBuf,
    /// How it was reached.
    pub kind: InputKind,
}

/// What [`walk_inputs`] found.
#[derive(Debug, Default)]
pub struct Inputs {
    /// The inputs, in the order given, directories in name order.
    pub files: Vec<InputFile>,
    /// Directories that could not be read, walked files that could not be
    /// looked up (a dangling symlink named like an input).
    pub errors: Vec<InputError>,
    /// What the walk skipped, and why.
    pub warnings: Vec<InputError>,
}

/// Expand paths: directories recursively in name order, `-` kept as stdin;
/// [`walk_inputs`] without the warnings and kinds.
pub fn expand_paths(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<InputError>) {
    let inputs = walk_inputs(paths);
    let files = inputs.files.into_iter().map(|f| f.path).collect();
    (files, inputs.errors)
}

/// The inputs of `paths`: each path named is an input (a directory is
/// walked recursively, in name order, skipping hidden entries and names
/// without an input ending, see [`INPUT_EXTENSIONS`], and the entries a
/// [`WALK_IGNORE_FILE`] in the directory lists). What the walk finds is
/// an input only if it is a regular file (a symlink to one included): a FIFO
/// would block the run and a device (`/dev/zero`) never ends, so they are
/// skipped with a warning. A directory or regular file already taken (by
/// device and inode: a symlink loop such as `self -> .`, a second link to the
/// same file, a path named twice) is skipped with a warning, so each is read
/// once and a loop ends.
pub fn walk_inputs(paths: &[PathBuf]) -> Inputs {
    let mut w = Walker::default();
    for p in paths {
        w.named(p);
    }
    w.inputs
}

/// State of one walk: what was taken, by (device, inode), with the path it
/// was taken as.
#[derive(Default)]
struct Walker {
    taken: HashMap<(u64, u64), PathBuf>,
    inputs: Inputs,
}

impl Walker {
    fn push(&mut self, path: &Path, kind: InputKind) {
        self.inputs.files.push(InputFile {
            path: path.to_path_buf(),
            kind,
        });
    }

    fn warn(&mut self, path: &Path, message: String) {
        self.inputs.warnings.push(InputError {
            input: shown_path(path),
            origin: None,
            message,
        });
    }

    /// A path named on the command line.
    fn named(&mut self, path: &Path) {
        if path.as_os_str() == "-" {
            self.push(path, InputKind::Stream);
            return;
        }
        match std::fs::metadata(path) {
            // Reading it says what is wrong, as for any input.
            Err(_) => self.push(path, InputKind::Named),
            Ok(m) if m.is_dir() => self.dir(path, &m),
            Ok(m) if m.is_file() => {
                if self.first_time(path, &m) {
                    self.push(path, InputKind::Named);
                }
            }
            Ok(_) => self.push(path, InputKind::Stream),
        }
    }

    /// Whether the directory or file `m` describes is taken for the first
    /// time (else warns that `path` is skipped).
    fn first_time(&mut self, path: &Path, m: &std::fs::Metadata) -> bool {
        match self.taken.entry((m.dev(), m.ino())) {
            Entry::Vacant(v) => {
                v.insert(path.to_path_buf());
                true
            }
            Entry::Occupied(o) => {
                let before = shown_path(o.get());
                let what = if m.is_dir() { "directory" } else { "file" };
                self.warn(
                    path,
                    format!("skipped: the same {what} as {before}, already read"),
                );
                false
            }
        }
    }

    fn dir(&mut self, dir: &Path, m: &std::fs::Metadata) {
        if !self.first_time(dir, m) {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.inputs.errors.push(InputError {
                    input: shown_path(dir),
                    origin: None,
                    message: format!("cannot read directory: {e}"),
                });
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let ignored = ignored_names(dir);
        for p in paths {
            if p.file_name().is_some_and(|n| {
                n.as_encoded_bytes().starts_with(b".")
                    || n.to_str().is_some_and(|n| ignored.iter().any(|i| i == n))
            }) {
                continue;
            }
            // Follows symlinks: a link to a directory is walked, a link to
            // a file is that file (and taken once, like any).
            let meta = std::fs::metadata(&p);
            if let Ok(m) = &meta
                && m.is_dir()
            {
                self.dir(&p, m);
                continue;
            }
            if !has_input_extension(&p) {
                continue;
            }
            match meta {
                Err(e) => self.inputs.errors.push(InputError {
                    input: shown_path(&p),
                    origin: None,
                    message: format!("cannot read: {e}"),
                }),
                Ok(m) if m.is_file() => {
                    if self.first_time(&p, &m) {
                        self.push(&p, InputKind::Walked);
                    }
                }
                Ok(m) => {
                    let what = file_type_name(m.file_type());
                    self.warn(&p, format!("skipped: {what}, not a regular file"));
                }
            }
        }
    }
}

/// The entry names `dir`'s [`WALK_IGNORE_FILE`] lists (none when there is
/// no such file or it cannot be read): one a line, a trailing `/` allowed,
/// blank lines and `#` comments skipped.
fn ignored_names(dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join(WALK_IGNORE_FILE)) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| l.trim().trim_end_matches('/'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn has_input_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| INPUT_EXTENSIONS.contains(&x))
}

/// `a FIFO`, `a socket`, … for a warning.
fn file_type_name(t: std::fs::FileType) -> &'static str {
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "something else"
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
    file: InputFile,
    units: Vec<(String, Result<Prepared, ingest::DecodeError>)>,
    /// Why the input as a whole could not be read, recognised or read to
    /// its end.
    errors: Vec<String>,
    /// Bytes of `units`, counted in the shared decode-ahead budget.
    held: usize,
    /// The payloads passed the budget and were dropped: detection decodes
    /// the input again itself.
    overflowed: bool,
}

/// Reads and decodes one input, handing each unit to `f` as it is decoded;
/// returns why the input as a whole could not be read, recognised or read
/// to its end.
fn decode_each(
    file: &InputFile,
    opts: &ReplayOptions,
    f: &mut dyn FnMut(&str, Result<ingest::OwnedPayload, ingest::DecodeError>),
) -> Vec<String> {
    let path = &file.path;
    let (bytes, mut cut) = match read_input(file, &opts.limits) {
        Ok(read) => read,
        Err(e) => return vec![format!("cannot read: {e}")],
    };
    let bytes = match gunzip_text(bytes, &opts.limits) {
        Ok((text, text_cut)) => {
            cut = cut.or(text_cut);
            text
        }
        Err(e) => return vec![e],
    };
    let fopts = FileOptions {
        limits: opts.limits,
        log_group: opts.log_group.clone(),
        log_stream: opts.log_stream.clone(),
        default_timestamp_ms: reference_ms(file),
        syslog_year: opts.year,
    };
    // The log stream of a plain log: alert renderers escape it.
    let name = match path.file_name() {
        Some(n) => n.to_string_lossy().into_owned(),
        None => "stdin".to_string(),
    };
    let mut errors: Vec<String> = ingest::for_each_owned_payload(&bytes, &name, &fopts, f)
        .err()
        .map(|e| e.to_string())
        .into_iter()
        .collect();
    errors.extend(cut);
    errors
}

/// Bytes of decompressed text looked at to tell a gzipped log from a
/// gzipped subscription payload.
const GZIP_PEEK: usize = 256;

/// A gzipped plain log (`auth.log.2.gz`, a CloudWatch Logs export to S3)
/// gunzipped, with a note when it stopped at the cap; any other input
/// unchanged. A gzip whose text starts with `{` or `[` (a subscription
/// payload) or `<` (an HTML error page in a payload's place), or is binary,
/// or cannot be inflated, stays as it is, for ingest to decode or report. The text is read up to
/// [`Limits::max_file_bytes`], like any input, up to its last line break
/// before the cap.
fn gunzip_text(bytes: Vec<u8>, limits: &Limits) -> Result<(Vec<u8>, Option<String>), String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok((bytes, None));
    }
    let mut peek = Vec::new();
    match ingest::decode::gunzip_capped(&bytes, GZIP_PEEK, &mut peek) {
        Ok(()) | Err(ingest::DecodeError::TooLarge { .. }) => {}
        Err(_) => return Ok((bytes, None)),
    }
    // JSON is a payload; markup is an HTTP error page saved in a payload's
    // place. Both are ingest's to decode or report.
    match peek.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[' | b'<') | None => return Ok((bytes, None)),
        Some(_) => {}
    }
    // Text, not binary (a gzip bomb of zeros): else ingest reports it as it
    // does any gzip that is no payload, without inflating it all here.
    let binary = peek
        .iter()
        .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)) || b == 0x7f);
    if binary {
        return Ok((bytes, None));
    }
    let cap = limits.max_file_bytes;
    let mut text = Vec::new();
    match ingest::decode::gunzip_capped(&bytes, cap, &mut text) {
        Ok(()) => Ok((text, None)),
        Err(ingest::DecodeError::TooLarge { .. }) => {
            text.truncate(cap);
            if let Some(end) = memchr::memrchr(b'\n', &text) {
                text.truncate(end + 1);
            }
            let note = format!(
                "stopped at the {cap}-byte cap (--max-file-bytes) on its gunzipped text: read its first {} bytes, the rest is not read",
                text.len()
            );
            Ok((text, Some(note)))
        }
        Err(e) => Err(format!("gzipped log: {e}")),
    }
}

/// Decodes one input ahead of detection, holding its payloads while the
/// shared `budget` (bytes held by all decoders) allows.
fn decode_input(
    file: &InputFile,
    opts: &ReplayOptions,
    rules: Option<&Arc<RuleSet>>,
    budget: &AtomicUsize,
) -> DecodedInput {
    let mut units = Vec::new();
    let mut held = 0;
    let mut overflowed = false;
    let errors = decode_each(file, opts, &mut |origin, unit| {
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
        units.push((origin.to_string(), unit.map(|p| Prepared::of(rules, p))));
    });
    DecodedInput {
        file: file.clone(),
        units,
        errors,
        held,
        overflowed,
    }
}

/// Most decoding threads chosen by default. Detection runs on one thread, and
/// past a few decoders it is the bottleneck; each decoder can hold about two
/// decoded-size caps at once, so 8 keeps a directory of gzip bombs near
/// 160 MiB on any machine (measured by `tests/it/bad_input.rs`' figures).
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
/// `rt`, giving each batch's alerts to `publish`: [`replay_to`] with the
/// function as the sink.
pub fn replay_with<S: StateStore>(
    engine: &mut Engine<S>,
    rt: &tokio::runtime::Runtime,
    paths: &[PathBuf],
    opts: &ReplayOptions,
    publish: &mut dyn FnMut(&[Alert]) -> std::io::Result<()>,
) -> Result<ReplaySummary, ReplayError> {
    replay_to(&mut Runner::new(engine, FnSink(publish)), rt, paths, opts)
}

/// Replay through a runner (any state store, any sink), driving its futures
/// on `rt`. Inputs are decoded on `opts.threads` threads (with more than one,
/// a few inputs ahead of detection) and detected one after another in input
/// order, so alerts and state are the same whatever the thread count.
pub fn replay_to<S: StateStore, K: AlertSink>(
    runner: &mut Runner<'_, S, K>,
    rt: &tokio::runtime::Runtime,
    paths: &[PathBuf],
    opts: &ReplayOptions,
) -> Result<ReplaySummary, ReplayError> {
    let Inputs {
        files,
        errors,
        warnings,
    } = walk_inputs(paths);
    let mut summary = ReplaySummary {
        errors,
        warnings,
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
    // The decoding threads also do pass 1 ([`Prepared`]) with these rules,
    // but for a profile, which times pass 1 where detection runs.
    let rules = (runner.engine().profile().is_none()).then(|| Arc::clone(runner.engine().rules()));
    let mut detect = |input: Input| -> Result<(), ReplayError> {
        let mut d = Detection::new(&input.file().path);
        match input {
            Input::Decoded(decoded) if !decoded.overflowed => {
                for (origin, unit) in decoded.units {
                    d.prepared(runner, rt, &mut summary, &origin, unit);
                }
                d.errors = decoded.errors;
            }
            // Decoded here, one payload at a time: memory stays bounded
            // however many payloads the input holds.
            _ => {
                d.errors = decode_each(input.file(), opts, &mut |origin, unit| {
                    d.unit(runner, rt, &mut summary, origin, unit);
                });
            }
        }
        d.finish(&mut summary)?;
        if let Some(bar) = &progress {
            bar.inc(1);
        }
        Ok(())
    };
    // A stream cannot be read again when the decode-ahead budget drops its
    // payloads, nor read ahead out of order (stdin, a FIFO's writer).
    if threads <= 1 || files.iter().any(|f| f.kind == InputKind::Stream) {
        for file in &files {
            detect(Input::File(file))?;
        }
    } else {
        decode_in_parallel(&files, opts, rules.as_ref(), threads, &mut detect)?;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(now) = opts.now.or(runner.engine().watermark()) {
        let o = rt.block_on(runner.sweep(now))?;
        summary.count(&o.alerts);
    }
    summary.shadow = runner.shadow_counts().clone();
    summary.silenced = runner.silenced();
    Ok(summary)
}

/// Decode `files` on `threads` scoped threads, at most `2 × threads` inputs
/// ahead of detection (memory stays bounded), and hand them to `detect` in
/// input order on this thread.
fn decode_in_parallel(
    files: &[InputFile],
    opts: &ReplayOptions,
    rules: Option<&Arc<RuleSet>>,
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
                    if tx
                        .send((i, decode_input(&files[i], opts, rules, budget)))
                        .is_err()
                    {
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
    File(&'p InputFile),
    /// Decoded by a decoding thread.
    Decoded(DecodedInput),
}

impl Input<'_> {
    fn file(&self) -> &InputFile {
        match self {
            Input::File(f) => f,
            Input::Decoded(d) => &d.file,
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
    /// The store or the delivery failed: the rest of the input is skipped.
    stop: Option<ReplayError>,
    /// Why the input as a whole could not be read, recognised or read to
    /// its end.
    errors: Vec<String>,
}

impl Detection {
    fn new(path: &Path) -> Self {
        Detection {
            shown: shown_path(path),
            batch_errors: Vec::new(),
            stop: None,
            errors: Vec::new(),
        }
    }

    /// One unit of the input: detect on it, publish and confirm its alerts,
    /// or record why it failed.
    fn unit<S: StateStore, K: AlertSink>(
        &mut self,
        runner: &mut Runner<'_, S, K>,
        rt: &tokio::runtime::Runtime,
        summary: &mut ReplaySummary,
        origin: &str,
        unit: Result<ingest::OwnedPayload, ingest::DecodeError>,
    ) {
        if self.stop.is_some() {
            return;
        }
        match unit {
            Err(e) => self.decode_error(origin, e),
            Ok(p) => {
                let outcome = rt.block_on(runner.process(&p.view()));
                self.outcome(summary, outcome);
            }
        }
    }

    /// [`Detection::unit`] for a unit decoded, and its pass 1 done, ahead.
    fn prepared<S: StateStore, K: AlertSink>(
        &mut self,
        runner: &mut Runner<'_, S, K>,
        rt: &tokio::runtime::Runtime,
        summary: &mut ReplaySummary,
        origin: &str,
        unit: Result<Prepared, ingest::DecodeError>,
    ) {
        if self.stop.is_some() {
            return;
        }
        match unit {
            Err(e) => self.decode_error(origin, e),
            Ok(p) => {
                let outcome =
                    p.with_dependent(|_, pass1| rt.block_on(runner.process_prepared(pass1)));
                self.outcome(summary, outcome);
            }
        }
    }

    fn decode_error(&mut self, origin: &str, e: ingest::DecodeError) {
        self.batch_errors.push(InputError {
            input: self.shown.clone(),
            origin: Some(origin.to_string()),
            message: e.to_string(),
        });
    }

    fn outcome(&mut self, summary: &mut ReplaySummary, outcome: Result<BatchOutcome, RunError>) {
        match outcome {
            Ok(o) => {
                if !o.control {
                    summary.batches += 1;
                }
                summary.events += o.events;
                summary.suppressed += o.suppressed;
                summary.lenient_json += o.lenient_json;
                summary.open_invocations_dropped += o.open_invocations_dropped;
                summary.count(&o.alerts);
            }
            Err(e) => self.stop = Some(e.into()),
        }
    }

    /// Records the input's errors; a delivery or store failure stops the replay.
    fn finish(self, summary: &mut ReplaySummary) -> Result<(), ReplayError> {
        summary.inputs += 1;
        if let Some(e) = self.stop {
            return Err(e);
        }
        let whole = self.errors.into_iter().map(|message| InputError {
            input: self.shown.clone(),
            origin: None,
            message,
        });
        summary.errors.extend(whole);
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

impl From<RunError> for ReplayError {
    /// A sink's failure is the output's; the store's, before or after the
    /// publish, stops the replay as a store failure.
    fn from(e: RunError) -> Self {
        match e {
            RunError::Sink(e) => ReplayError::Output(e.into_io()),
            RunError::Engine(e) | RunError::Unconfirmed { error: e, .. } => ReplayError::Engine(e),
        }
    }
}

/// Reads one input, at most `limits.max_file_bytes` of it: a bigger one is
/// cut after its last line break before the cap (so a plain log or NDJSON
/// keeps whole lines), and the second value says so. A walked file is opened
/// without blocking and read only if it is still a regular file.
fn read_input(file: &InputFile, limits: &Limits) -> std::io::Result<(Vec<u8>, Option<String>)> {
    let cap = limits.max_file_bytes;
    let room = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let mut buf = Vec::new();
    if file.kind == InputKind::Stream && file.path.as_os_str() == "-" {
        std::io::stdin().lock().take(room).read_to_end(&mut buf)?;
    } else {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        if file.kind == InputKind::Walked {
            // Swapped for a FIFO since the walk, it must not block the run.
            options.custom_flags(libc::O_NONBLOCK);
        }
        let f = options.open(&file.path)?;
        let m = f.metadata()?;
        if file.kind == InputKind::Walked && !m.is_file() {
            return Err(std::io::Error::other(format!(
                "{}, not a regular file (it changed since the walk)",
                file_type_name(m.file_type())
            )));
        }
        if m.is_file() {
            // One allocation of the right size (the cap's, at most).
            let size = usize::try_from(m.len()).unwrap_or(usize::MAX);
            buf.reserve_exact(size.min(cap).saturating_add(1));
        }
        f.take(room).read_to_end(&mut buf)?;
    }
    if buf.len() <= cap {
        return Ok((buf, None));
    }
    buf.truncate(cap);
    let whole_lines = match memchr::memrchr(b'\n', &buf) {
        Some(end) => {
            buf.truncate(end + 1);
            ", up to its last line break before the cap"
        }
        None => "",
    };
    let note = format!(
        "stopped at the {cap}-byte cap (--max-file-bytes): read its first {} bytes{whole_lines}, \
         not the rest",
        buf.len()
    );
    Ok((buf, Some(note)))
}

/// The time an input was written, for lines without a time and syslog
/// dates without a year: a file's modification time; the clock for stdin, a
/// FIFO or a device, which are written as they are read.
fn reference_ms(file: &InputFile) -> i64 {
    match file.kind {
        InputKind::Stream => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        InputKind::Walked | InputKind::Named => mtime_ms(&file.path),
    }
}

fn mtime_ms(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt as _;

    #[test]
    fn shown_path_escapes_controls_and_bytes_that_are_not_utf8() {
        let cases: [(&[u8], &str); 4] = [
            (b"logs/app.log", "logs/app.log"),
            (b"a\nlogwarden: 0 input(s)", "a\\nlogwarden: 0 input(s)"),
            (b"esc\x1b[2J\x07.log", "esc\\x1b[2J\\x07.log"),
            (b"caf\xe9/\xff\xfe.json", "caf\\xe9/\\xff\\xfe.json"),
        ];
        for (raw, want) in cases {
            let path = Path::new(std::ffi::OsStr::from_bytes(raw));
            assert_eq!(shown_path(path), want, "{raw:?}");
        }
    }

    #[test]
    fn input_errors_are_one_line_whatever_the_input_put_in_them() {
        let e = InputError {
            input: shown_path(Path::new("a\nb.json")),
            origin: Some("recordId x\ny".to_string()),
            message: "a JSON object with keys \u{1b}[31mred, \u{202e}txt".to_string(),
        };
        assert_eq!(
            e.to_string(),
            "a\\nb.json: recordId x\\ny: a JSON object with keys \\x1b[31mred, \\u202etxt"
        );
    }

    #[test]
    fn the_walk_takes_each_directory_and_file_once_and_only_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a.log"), "x\n").unwrap();
        std::fs::write(d.join("b.txt"), "x\n").unwrap();
        std::fs::write(d.join("notes.md"), "not an input\n").unwrap();
        std::fs::write(d.join(".hidden.log"), "x\n").unwrap();
        std::os::unix::fs::symlink(".", d.join("loop")).unwrap();
        std::os::unix::fs::symlink("sub", d.join("sub-again")).unwrap();
        std::os::unix::fs::symlink("sub/a.log", d.join("current.log")).unwrap();
        std::os::unix::fs::symlink("/dev/null", d.join("null.log")).unwrap();
        std::os::unix::fs::symlink("missing", d.join("dangling.log")).unwrap();
        let inputs = walk_inputs(&[d.to_path_buf(), PathBuf::from("-"), d.join("sub/a.log")]);
        let files: Vec<(PathBuf, InputKind)> =
            inputs.files.into_iter().map(|f| (f.path, f.kind)).collect();
        assert_eq!(
            files,
            [
                (d.join("b.txt"), InputKind::Walked),
                (d.join("current.log"), InputKind::Walked),
                (PathBuf::from("-"), InputKind::Stream),
            ]
        );
        let warned: Vec<String> = inputs
            .warnings
            .iter()
            .map(|w| {
                format!(
                    "{}: {}",
                    w.input.strip_prefix(&shown_path(d)).unwrap(),
                    w.message
                )
            })
            .collect();
        let top = shown_path(d);
        assert_eq!(
            warned,
            [
                format!("/loop: skipped: the same directory as {top}, already read"),
                "/null.log: skipped: a character device, not a regular file".to_string(),
                // Walked, then named.
                format!("/sub/a.log: skipped: the same file as {top}/current.log, already read"),
                format!("/sub-again: skipped: the same directory as {top}/sub, already read"),
                format!("/sub/a.log: skipped: the same file as {top}/current.log, already read"),
            ]
        );
        assert_eq!(inputs.errors.len(), 1, "{:?}", inputs.errors);
        assert!(inputs.errors[0].input.ends_with("/dangling.log"));
        assert!(inputs.errors[0].message.starts_with("cannot read: "));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzipped_logs_are_gunzipped_and_gzipped_payloads_left_to_ingest() {
        let limits = Limits::default();
        let log = b"Nov 22 10:07:00 bastion sshd[3100]: Invalid user oracle from 198.51.100.23\n";
        assert_eq!(gunzip_text(gzip(log), &limits), Ok((log.to_vec(), None)));
        for kept in [
            gzip(b"  {\"messageType\":\"DATA_MESSAGE\"}"),
            gzip(b"[1]"),
            gzip(b"<html><body>502 Bad Gateway</body></html>\n"),
            gzip(b""),
            log.to_vec(),
            // Gzip magic, then garbage: ingest says what is wrong, as before.
            vec![0x1f, 0x8b, 0, 0],
            // Binary inside (a bomb of zeros): left whole, not inflated here.
            gzip(&[0u8; 4096]),
        ] {
            assert_eq!(gunzip_text(kept.clone(), &limits), Ok((kept, None)));
        }
        // Past the cap: whole lines up to it, and a note.
        let small = Limits {
            max_file_bytes: 100,
            ..Limits::default()
        };
        let (text, note) = gunzip_text(gzip(&log.repeat(3)), &small).unwrap();
        assert_eq!(text, log.to_vec());
        assert!(note.unwrap().contains("100-byte cap"));
        // A gzipped log cut short is an input error.
        let mut cut = gzip(&log.repeat(50));
        cut.truncate(cut.len() - 20);
        assert!(
            gunzip_text(cut, &limits)
                .unwrap_err()
                .starts_with("gzipped log: ")
        );
    }

    #[test]
    fn a_walk_leaves_out_what_the_ignore_file_lists_and_a_named_path_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("real")).unwrap();
        std::fs::write(d.join("real/sample.log"), "x\n").unwrap();
        std::fs::write(d.join("skip.log"), "x\n").unwrap();
        std::fs::write(d.join("keep.log"), "x\n").unwrap();
        std::fs::write(
            d.join(WALK_IGNORE_FILE),
            "# not the demo\nreal/\n\nskip.log\n",
        )
        .unwrap();
        let walked = |paths: &[PathBuf]| -> Vec<PathBuf> {
            let inputs = walk_inputs(paths);
            assert!(inputs.warnings.is_empty() && inputs.errors.is_empty());
            inputs.files.into_iter().map(|f| f.path).collect()
        };
        assert_eq!(walked(&[d.to_path_buf()]), [d.join("keep.log")]);
        assert_eq!(walked(&[d.join("real")]), [d.join("real/sample.log")]);
        assert_eq!(walked(&[d.join("skip.log")]), [d.join("skip.log")]);
    }
}
