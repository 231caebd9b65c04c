//! The bad-input suite: every class of malformed or hostile input, built here
//! from one table ([`CLASSES`]), run alone and mixed with the good fixtures
//! through the real `logwarden` binary, and through the Lambda handler
//! in-process (awslogs, Kinesis, Firehose) and as the `logwarden-detector`
//! binary under a Runtime API stand-in.
//!
//! Semantics (what DESIGN's tolerance rules make of each class):
//!
//! | class | error? | why |
//! | --- | --- | --- |
//! | bad base64, truncated gzip, not JSON, wrong schema, wrong types | yes | nothing to detect on; the message names the position |
//! | gzip bomb (1 GiB of zeros), 10 MB decoded payload | yes | the decoded-size cap (default 8 MiB); stops at the cap, names it |
//! | invalid UTF-8 inside a message | yes | JSON must be UTF-8; the message names the byte offset |
//! | empty `logEvents`, unknown fields, a single 1 MB line | no | tolerated: processed like any payload |
//! | a record whose `data` is missing or not a string | yes | the record is bad, not the event: only it is skipped |
//!
//! Each class is one bad *unit* (a record's `data`). The CLI sees it in every
//! saved form: an awslogs event, a raw `.gz` payload (when it gets as far as
//! gzip), and a Kinesis event with the bad record between two good ones. The
//! good records and tolerated units carry an out-of-memory REPORT, so "processed"
//! is visible as an alert in a log group of the class's own.
//!
//! A 1 GiB bomb is built once per test process by streaming zeros through
//! flate2 (about half a second with zlib-rs optimised, see Cargo.toml).
//!
//! Memory and time: the binaries run under a small intermediate process
//! ([`spawn`]) that reads their own peak RSS with `wait4` and kills them
//! after [`TIME_LIMIT`]; every replay and detector run must stay within
//! [`MAX_RSS_BYTES`], including files of many payloads each under the cap.
//! `--nocapture` prints the figures.

use crate::support::runtime_api;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use lambda_runtime::{Context, LambdaEvent};
use logwarden::engine::{Engine, EngineConfig};
use logwarden::handler::{Delivery, DetectorService};
use logwarden::ingest::{DEFAULT_MAX_DECODED_BYTES, Limits};
use logwarden::rules::RuleSet;
use logwarden::state::MemoryStore;
use logwarden::time::FixedClock;
use runtime_api::{Outcome, RuntimeApi, lambda_env};
use serde_json::{Value, json};

/// Event time of every built event: the fixtures' earliest, so adding these
/// inputs to a replay of the fixtures does not move the watermark.
const T: i64 = 1_795_341_600_000;

/// Peak resident memory allowed for a whole replay or detector run.
const MAX_RSS_BYTES: u64 = 256 << 20;

/// A hang fails the test after this long instead of wedging CI.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// One bad unit: the `data` a record carries, at the level it is broken.
enum Unit {
    /// Broken before gzip: the base64 text itself.
    Base64(String),
    /// Broken at the gzip level (or a bomb).
    Gzip(Vec<u8>),
    /// Gzips fine; the decoded payload bytes are the problem (or are fine).
    Payload(Vec<u8>),
    /// The record itself is of the wrong shape: its `data` is this JSON
    /// value instead of a string, or absent (`None`).
    Record(Option<Value>),
}

impl Unit {
    /// The record's `data` (base64 text, unless the record is broken).
    fn data(&self) -> Option<Value> {
        match self {
            Unit::Base64(s) => Some(json!(s)),
            Unit::Gzip(gz) => Some(json!(b64(gz))),
            Unit::Payload(p) => Some(json!(b64(&gzip(p)))),
            Unit::Record(v) => v.clone(),
        }
    }

    /// The unit as a raw `.gz` file, when it has a gzip form.
    fn gz(&self) -> Option<Vec<u8>> {
        match self {
            Unit::Base64(_) | Unit::Record(_) => None,
            Unit::Gzip(gz) => Some(gz.clone()),
            Unit::Payload(p) => Some(gzip(p)),
        }
    }
}

/// What logwarden must make of a class.
enum Expect {
    /// A decode error whose message contains this (after the file and origin).
    Error(String),
    /// Processed: a batch of this many events, alerting as its events say.
    Processed { events: usize, alerts: usize },
}

/// One class of bad input.
struct Class {
    /// Short name; files and log groups are named after it.
    name: &'static str,
    /// Builds the unit and what must happen to it.
    build: fn() -> (Unit, Expect),
}

const CLASSES: &[Class] = &[
    Class {
        name: "bad-base64",
        build: || {
            (
                Unit::Base64("H4sIAAAA%%notbase64".into()),
                Expect::Error("base64: invalid byte '%' at offset 8".into()),
            )
        },
    },
    Class {
        name: "truncated-gzip",
        build: || {
            let gz = gzip(&good_payload("truncated-gzip"));
            let cut = gz.len() / 2;
            (
                Unit::Gzip(gz[..cut].to_vec()),
                Expect::Error(format!(
                    "truncated gzip stream: compressed data of member 1 cut off at byte {cut}"
                )),
            )
        },
    },
    Class {
        name: "gzip-bomb",
        build: || (Unit::Gzip(bomb().to_vec()), Expect::Error(cap_message())),
    },
    Class {
        name: "not-json",
        build: || {
            (
                Unit::Payload(b"<html><body>502 Bad Gateway</body></html>\n".to_vec()),
                Expect::Error("payload JSON: expected value at line 1 column 1".into()),
            )
        },
    },
    Class {
        name: "wrong-schema",
        build: || {
            // Valid JSON, but an application log line rather than a payload.
            (
                Unit::Payload(br#"{"level":"info","msg":"checkout done","ms":41}"#.to_vec()),
                Expect::Error("payload JSON: missing field `messageType`".into()),
            )
        },
    },
    Class {
        name: "empty-log-events",
        build: || {
            let p = payload_with("empty-log-events", vec![]);
            (
                Unit::Payload(p.to_string().into_bytes()),
                Expect::Processed {
                    events: 0,
                    alerts: 0,
                },
            )
        },
    },
    Class {
        name: "invalid-utf8",
        build: || {
            // A message with Latin-1 bytes, as a broken logger writes them.
            let text = good_payload("invalid-utf8");
            let text = String::from_utf8(text).unwrap();
            let marker = "RequestId: r1";
            let at = text.find(marker).unwrap() + "RequestId: ".len();
            let mut bytes = text.into_bytes();
            bytes.splice(at..at, *b"caf\xe9 ");
            let offset = at + 3;
            (
                Unit::Payload(bytes),
                Expect::Error(format!(
                    "payload JSON: invalid UTF-8 at line 1 column {} (byte {offset})",
                    offset + 1
                )),
            )
        },
    },
    Class {
        name: "one-mb-line",
        build: || {
            // A function that logs its 1 MB input, then runs out of memory.
            let big = format!("received body: {}\n", "A".repeat(1 << 20));
            let p = payload_with(
                "one-mb-line",
                vec![event(0, &big), event(1, &oom_report("r1"))],
            );
            (
                Unit::Payload(p.to_string().into_bytes()),
                Expect::Processed {
                    events: 2,
                    alerts: 1,
                },
            )
        },
    },
    Class {
        name: "unknown-fields",
        build: || {
            let mut e = event(0, &oom_report("r1"));
            e["extractedFields"] = json!({"level": "error"});
            e["ingestionTime"] = json!(T + 5);
            let mut p = payload_with("unknown-fields", vec![e]);
            p["policyLevel"] = json!("ACCOUNT_LEVEL_POLICY");
            p["futureField"] = json!({"nested": [1, {"deep": null}]});
            (
                Unit::Payload(p.to_string().into_bytes()),
                Expect::Processed {
                    events: 1,
                    alerts: 1,
                },
            )
        },
    },
    Class {
        name: "timestamp-as-string",
        build: || {
            let mut e = event(0, &oom_report("r1"));
            e["timestamp"] = json!("2026-11-22T10:00:00Z");
            let p = payload_with("timestamp-as-string", vec![e]);
            (
                Unit::Payload(p.to_string().into_bytes()),
                Expect::Error(
                    "payload JSON: logEvents[0]: invalid type: string \"2026-11-22T10:00:00Z\""
                        .into(),
                ),
            )
        },
    },
    Class {
        name: "data-not-a-string",
        build: || {
            (
                Unit::Record(Some(json!(12345))),
                Expect::Error(
                    "input JSON: invalid type: integer `12345`, expected a string".into(),
                ),
            )
        },
    },
    Class {
        name: "data-missing",
        build: || {
            (
                Unit::Record(None),
                Expect::Error("input JSON: missing field `data`".into()),
            )
        },
    },
    Class {
        name: "ten-mb-payload",
        build: || {
            (
                Unit::Payload(ten_mb_payload()),
                Expect::Error(cap_message()),
            )
        },
    },
];

// ---------------------------------------------------------------- builders

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// 1 GiB of zeros, gzipped by streaming 1 MiB chunks (about 1 MiB of gzip);
/// built once per process.
fn bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            enc.write_all(&chunk).unwrap();
        }
        enc.finish().unwrap()
    })
}

fn cap_message() -> String {
    format!("decoded payload exceeds the {DEFAULT_MAX_DECODED_BYTES}-byte cap (gzip bomb?)")
}

fn group(name: &str) -> String {
    format!("/aws/lambda/bad-input-{name}")
}

fn oom_report(request: &str) -> String {
    format!(
        "REPORT RequestId: {request}\tDuration: 9.00 ms\tBilled Duration: 9 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\tStatus: error\tError Type: Runtime.OutOfMemory\n"
    )
}

fn event(i: i64, message: &str) -> Value {
    json!({"id": format!("{}", 37_000_000 + i), "timestamp": T + i, "message": message})
}

fn payload_with(name: &str, events: Vec<Value>) -> Value {
    json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group(name),
        "logStream": "2026/11/22/[$LATEST]bad-input", "subscriptionFilters": ["logwarden"],
        "logEvents": events,
    })
}

/// A payload whose one event raises one out-of-memory alert in `name`'s group.
fn good_payload(name: &str) -> Vec<u8> {
    payload_with(name, vec![event(0, &oom_report("r1"))])
        .to_string()
        .into_bytes()
}

/// A valid payload of just over 10 MB decoded (10 lines of 1 MiB, then an
/// out-of-memory REPORT), so that it alerts when the cap is raised.
fn ten_mb_payload() -> Vec<u8> {
    let line = format!("{}\n", "x".repeat(1 << 20));
    let mut events: Vec<Value> = (0..10).map(|i| event(i, &line)).collect();
    events.push(event(10, &oom_report("r1")));
    let p = payload_with("ten-mb-payload", events)
        .to_string()
        .into_bytes();
    assert!(p.len() > 10_000_000, "{} bytes", p.len());
    p
}

/// `{"data": data}` merged into `fields`, or `fields` alone without data.
fn with_data(mut fields: Value, data: Option<&Value>) -> Value {
    if let Some(d) = data {
        fields["data"] = d.clone();
    }
    fields
}

fn good_data(name: &str) -> Value {
    json!(b64(&gzip(&good_payload(name))))
}

fn awslogs_event(data: Option<&Value>) -> Value {
    json!({"awslogs": with_data(json!({}), data)})
}

/// Kinesis event: good (sequence 1), the bad unit (2), good (3).
fn kinesis_event(name: &str, bad: Option<&Value>) -> Value {
    let rec = |seq: usize, data: Option<&Value>| {
        json!({"kinesis": with_data(json!({"sequenceNumber": seq.to_string(), "partitionKey": "p"}), data),
               "eventID": format!("shardId-000000000000:{seq}"), "eventSource": "aws:kinesis"})
    };
    json!({"Records": [
        rec(1, Some(&good_data(&format!("{name}-k1")))),
        rec(2, bad),
        rec(3, Some(&good_data(&format!("{name}-k3")))),
    ]})
}

/// Firehose event: good (`a`), the bad unit (`b`), good (`c`).
fn firehose_event(name: &str, bad: Option<&Value>) -> Value {
    json!({"invocationId": "i", "records": [
        with_data(json!({"recordId": "a"}), Some(&good_data(&format!("{name}-f1")))),
        with_data(json!({"recordId": "b"}), bad),
        with_data(json!({"recordId": "c"}), Some(&good_data(&format!("{name}-f3")))),
    ]})
}

/// One CLI input file of a class and what must be said about it.
struct CliFile {
    path: PathBuf,
    /// Where inside the file the bad unit is (`awslogs`, `gzip`, `record 1`).
    origin: &'static str,
    /// Log groups whose alerts must be present.
    good_groups: Vec<String>,
}

/// Writes every CLI form of `class` into `dir`.
fn write_class_files(dir: &Path, class: &Class, unit: &Unit, expect: &Expect) -> Vec<CliFile> {
    let name = class.name;
    let own = match expect {
        Expect::Processed { alerts, .. } if *alerts > 0 => vec![group(name)],
        _ => vec![],
    };
    let data = unit.data();
    let mut files = Vec::new();
    let path = dir.join(format!("{name}.awslogs.json"));
    std::fs::write(&path, awslogs_event(data.as_ref()).to_string()).unwrap();
    files.push(CliFile {
        path,
        origin: "awslogs",
        good_groups: own.clone(),
    });
    if let Some(gz) = unit.gz() {
        let path = dir.join(format!("{name}.gz"));
        std::fs::write(&path, gz).unwrap();
        files.push(CliFile {
            path,
            origin: "gzip",
            good_groups: own.clone(),
        });
    }
    let path = dir.join(format!("{name}.kinesis.json"));
    std::fs::write(&path, kinesis_event(name, data.as_ref()).to_string()).unwrap();
    let mut groups = vec![group(&format!("{name}-k1")), group(&format!("{name}-k3"))];
    groups.extend(own);
    files.push(CliFile {
        path,
        origin: "record 1",
        good_groups: groups,
    });
    files
}

// ------------------------------------------------------ running the binary

/// What a child process did, with its peak memory.
struct Run {
    /// Exit code; `None` when it was killed.
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Peak resident set size (`ru_maxrss`), bytes.
    max_rss: u64,
    elapsed: Duration,
}

/// Names the directory that turns [`measure_helper`] into the measuring
/// intermediate process.
const HELPER_DIR: &str = "LOGWARDEN_BAD_INPUT_HELPER_DIR";

/// A command running under the measuring intermediate.
///
/// Why an intermediate: Linux records the old address space's peak RSS in
/// the process's `maxrss` at exec, and std spawns with vfork, so a child
/// spawned by this test process reports at least the test process's own
/// peak (the payloads built here). This test binary, started afresh with
/// only [`measure_helper`] to run, is small; the command it spawns reports
/// its own peak (or the helper's few MiB, if that were larger).
struct Spawned {
    helper: std::process::Child,
    dir: tempfile::TempDir,
    start: Instant,
    what: String,
    /// Killed after this long.
    limit: Duration,
}

/// Starts `cmd` (program, arguments, environment and directory) under the
/// intermediate: this test binary running only [`measure_helper`].
fn spawn(cmd: &Command) -> Spawned {
    spawn_limited(cmd, TIME_LIMIT, None)
}

/// [`spawn`] with its own time limit instead of [`TIME_LIMIT`] and, when
/// given, a cap on the command's address space in bytes: for runs that hang
/// or read without end when they regress.
fn spawn_limited(cmd: &Command, limit: Duration, address_space: Option<u64>) -> Spawned {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("limit"), limit.as_millis().to_string()).unwrap();
    if let Some(bytes) = address_space {
        std::fs::write(dir.path().join("address_space"), bytes.to_string()).unwrap();
    }
    let mut argv = cmd.get_program().as_bytes().to_vec();
    for a in cmd.get_args() {
        argv.push(0);
        argv.extend_from_slice(a.as_bytes());
    }
    std::fs::write(dir.path().join("argv"), argv).unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap());
    helper
        .args([helper_test_name(), "--exact", "--ignored", "--quiet"])
        .env(HELPER_DIR, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => helper.env(k, v),
            None => helper.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        helper.current_dir(d);
    }
    Spawned {
        helper: helper.spawn().unwrap(),
        dir,
        start: Instant::now(),
        what: format!("{cmd:?}"),
        limit,
    }
}

impl Spawned {
    /// Waits for the command to end (`stop`: kills it first) and collects
    /// what it did. Panics if it ran into its time limit.
    fn finish(mut self, stop: bool) -> Run {
        let stdin = self.helper.stdin.take();
        if stop {
            drop(stdin);
        }
        let status = self.helper.wait().unwrap();
        let elapsed = self.start.elapsed();
        let read = |f: &str| {
            String::from_utf8_lossy(&std::fs::read(self.dir.path().join(f)).unwrap_or_default())
                .into_owned()
        };
        let result = read("result");
        let fields: Vec<&str> = result.split_whitespace().collect();
        assert!(
            status.success() && fields.len() == 3,
            "the measuring helper failed ({status}) for {}",
            self.what
        );
        assert_eq!(
            fields[2], "finished",
            "{} did not finish within {:?}",
            self.what, self.limit
        );
        Run {
            code: fields[0].parse().ok(),
            stdout: read("stdout"),
            stderr: read("stderr"),
            max_rss: fields[1].parse().unwrap(),
            elapsed,
        }
    }
}

/// The intermediate of [`spawn`]: runs the command written in
/// `$HELPER_DIR/argv` with its output in `stdout` and `stderr` there, kills
/// it when stdin closes or after its time limit (`$HELPER_DIR/limit`, in
/// milliseconds; [`TIME_LIMIT`] without it), with its address space capped
/// when `$HELPER_DIR/address_space` gives a size in bytes (so a run that
/// reads without end fails instead of taking the machine's memory), and
/// writes `result`:
/// exit code (`-` if killed), peak RSS in bytes, `finished` or `timeout`.
/// Without the variable (`cargo test -- --ignored`) it does nothing.
#[test]
#[ignore = "not a test: the measuring process `spawn` starts"]
fn measure_helper() {
    use std::sync::mpsc::{RecvTimeoutError, channel};
    enum Event {
        Exited,
        Stop,
    }
    let Some(dir) = std::env::var_os(HELPER_DIR).map(PathBuf::from) else {
        return;
    };
    let limit = std::fs::read_to_string(dir.join("limit"))
        .ok()
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(TIME_LIMIT, Duration::from_millis);
    let argv = std::fs::read(dir.join("argv")).unwrap();
    let mut argv = argv.split(|&b| b == 0).map(OsStr::from_bytes);
    let mut command = Command::new(argv.next().unwrap());
    if let Some(bytes) = std::fs::read_to_string(dir.join("address_space"))
        .ok()
        .and_then(|b| b.trim().parse::<libc::rlim_t>().ok())
    {
        use std::os::unix::process::CommandExt as _;
        let rlimit = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: bytes,
        };
        // SAFETY: setrlimit is async-signal-safe and touches no memory of
        // the parent.
        unsafe {
            command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_AS, &rlimit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let child = command
        .args(argv)
        .env_remove(HELPER_DIR)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (tx, events) = channel();
    let exited = tx.clone();
    std::thread::spawn(move || {
        // Wait for the exit but leave the child to be reaped below, so a
        // kill can never reach a recycled pid.
        // SAFETY: siginfo_t is plain data that waitid fills in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOWAIT;
        unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
        let _ = exited.send(Event::Exited);
    });
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = tx.send(Event::Stop);
    });
    let mut outcome = "finished";
    let stopped = match events.recv_timeout(limit) {
        Ok(Event::Exited) => false,
        Ok(Event::Stop) => true,
        Err(RecvTimeoutError::Timeout) => {
            outcome = "timeout";
            true
        }
        Err(RecvTimeoutError::Disconnected) => unreachable!(),
    };
    if stopped {
        // SAFETY: our own child, not reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        while !matches!(events.recv().unwrap(), Event::Exited) {}
    }
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status).to_string()
    } else {
        "-".to_string()
    };
    // Linux reports KiB.
    let rss = usage.ru_maxrss as u64 * 1024;
    std::fs::write(dir.join("result"), format!("{code} {rss} {outcome}")).unwrap();
    drop(child);
}

/// The name libtest knows [`measure_helper`] by in this binary: its module
/// path without the crate (`bad_input::measure_helper` in the `it` binary).
fn helper_test_name() -> &'static str {
    let full = concat!(module_path!(), "::measure_helper");
    full.split_once("::").map_or(full, |(_krate, path)| path)
}

/// Runs `cmd` to completion under the measuring intermediate.
fn run_measured(cmd: &Command) -> Run {
    spawn(cmd).finish(false)
}

/// `logwarden replay --output json ARGS PATHS` from the package root, with
/// the default cap.
fn logwarden(args: &[&str], paths: &[&Path]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logwarden"));
    cmd.args(["replay", "--output", "json"])
        .args(args)
        .args(paths)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("LOGWARDEN_MAX_DECODED_BYTES");
    run_measured(&cmd)
}

/// Alert lines of a `--output json` run: (log group, id).
fn alert_lines(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (
                v["log_group"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The stderr line reporting `file`, if any.
fn error_line<'a>(stderr: &'a str, file: &CliFile) -> Option<&'a str> {
    let prefix = format!("logwarden: {}: {}: ", file.path.display(), file.origin);
    stderr.lines().find(|l| l.starts_with(&prefix))
}

/// Checks one run's output for the files of one class: each bad unit
/// reported with its file, origin and problem, tolerated ones not reported,
/// the good records' alerts present, no panic.
fn check_class_output(run: &Run, class: &Class, files: &[CliFile], expect: &Expect) {
    let name = class.name;
    assert!(
        !run.stderr.contains("panicked"),
        "{name}: panic: {}",
        run.stderr
    );
    let groups: BTreeSet<String> = alert_lines(&run.stdout)
        .into_iter()
        .map(|(g, _)| g)
        .collect();
    for f in files {
        let line = error_line(&run.stderr, f);
        match expect {
            Expect::Error(msg) => {
                let line = line.unwrap_or_else(|| {
                    panic!(
                        "{name}: {} {} not reported: {}",
                        f.path.display(),
                        f.origin,
                        run.stderr
                    )
                });
                assert!(
                    line.contains(msg.as_str()),
                    "{name}: `{line}` lacks `{msg}`"
                );
            }
            Expect::Processed { .. } => {
                assert!(line.is_none(), "{name}: tolerated input reported: {line:?}");
            }
        }
        for g in &f.good_groups {
            assert!(
                groups.contains(g),
                "{name}: no alert from {g} ({}): {groups:?}",
                f.path.display()
            );
        }
    }
}

// ------------------------------------------------------------ CLI tests

#[test]
fn each_class_alone_through_the_cli_is_named_exits_right_and_keeps_the_good_records() {
    for class in CLASSES {
        let dir = tempfile::tempdir().unwrap();
        let (unit, expect) = (class.build)();
        let files = write_class_files(dir.path(), class, &unit, &expect);
        let paths: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
        let run = logwarden(&[], &paths);
        let want = match expect {
            Expect::Error(_) => 1,
            Expect::Processed { .. } => 0,
        };
        assert_eq!(
            run.code,
            Some(want),
            "{}: exit code; stderr: {}",
            class.name,
            run.stderr
        );
        check_class_output(&run, class, &files, &expect);
        if let Expect::Processed { events, .. } = expect {
            // awslogs + gzip + the Kinesis record: three batches of `events`,
            // plus the two good Kinesis records of one event each.
            let summary = format!("{} event(s)", 3 * events + 2);
            assert!(
                run.stderr.contains(&summary),
                "{}: {}",
                class.name,
                run.stderr
            );
        }
    }
}

/// Replays the fixtures alone: the alert ids the mixed replay must contain.
fn fixture_alerts() -> BTreeSet<String> {
    let run = logwarden(&[], &[Path::new("fixtures")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let ids: BTreeSet<String> = alert_lines(&run.stdout)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert!(ids.len() >= 10, "{ids:?}");
    ids
}

#[test]
fn every_class_mixed_with_the_fixtures_in_one_replay_keeps_every_good_alert_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut classes = Vec::new();
    for class in CLASSES {
        let (unit, expect) = (class.build)();
        let files = write_class_files(dir.path(), class, &unit, &expect);
        classes.push((class, files, expect));
    }
    let fixtures = fixture_alerts();
    // The bad inputs first and last, the fixtures in between.
    let run = logwarden(&[], &[dir.path(), Path::new("fixtures"), dir.path()]);
    eprintln!(
        "mixed replay: peak RSS {} MiB, {:?}",
        run.max_rss >> 20,
        run.elapsed
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    for (class, files, expect) in &classes {
        check_class_output(&run, class, files, expect);
    }
    // Every fixture alert is there, and nothing else outside the classes' groups.
    let alerts = alert_lines(&run.stdout);
    let others: BTreeSet<String> = alerts
        .iter()
        .filter(|(g, _)| !g.starts_with("/aws/lambda/bad-input-"))
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(others, fixtures);
    assert!(
        run.max_rss <= MAX_RSS_BYTES,
        "peak RSS {} MiB",
        run.max_rss >> 20
    );
}

#[test]
fn a_raised_cap_admits_the_ten_mb_payload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ten-mb.gz");
    std::fs::write(&path, gzip(&ten_mb_payload())).unwrap();
    let cap = (16 << 20).to_string();
    let run = logwarden(&["--max-decoded-bytes", &cap], &[&path]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let groups: Vec<String> = alert_lines(&run.stdout)
        .into_iter()
        .map(|(g, _)| g)
        .collect();
    assert_eq!(groups, [group("ten-mb-payload")]);
    assert!(run.stderr.contains("11 event(s)"), "{}", run.stderr);
    // The same through the environment variable; and the default refuses it.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logwarden"));
    cmd.args(["replay", "--output", "json"])
        .arg(&path)
        .env("LOGWARDEN_MAX_DECODED_BYTES", &cap);
    let run = run_measured(&cmd);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = logwarden(&[], &[&path]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains(&cap_message()), "{}", run.stderr);
}

#[test]
fn files_of_many_payloads_under_the_cap_are_detected_in_bounded_memory() {
    // The cap bounds one payload, not a file: two Kinesis events of 20
    // records of 7 MiB each (280 MiB decoded, 400 KB on disk) once sat in
    // memory until detection reached them. Decoders now hold payloads only
    // within a shared budget, and a file past it is decoded again by
    // detection, one record at a time.
    let line = format!("{}\n", "x".repeat(1 << 20));
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for file in 1..=2 {
        let name = format!("many-payloads-{file}");
        let big: Vec<Value> = (0..7).map(|i| event(i, &line)).collect();
        let payload = payload_with(&name, big).to_string();
        assert!(payload.len() < DEFAULT_MAX_DECODED_BYTES);
        let data = json!(b64(&gzip(payload.as_bytes())));
        let oom = payload_with(&name, vec![event(0, &oom_report("last"))]);
        let last = json!(b64(&gzip(oom.to_string().as_bytes())));
        let records: Vec<Value> = (0..20)
            .map(|i| {
                let d = if i == 19 { &last } else { &data };
                json!({"kinesis": {"data": d, "sequenceNumber": i.to_string()}})
            })
            .collect();
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, json!({"Records": records}).to_string()).unwrap();
        paths.push(path);
    }
    let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let run = logwarden(&["--threads", "2"], &paths);
    eprintln!(
        "many payloads: peak RSS {} MiB, {:?}",
        run.max_rss >> 20,
        run.elapsed
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("40 batch(es), 268 event(s)"),
        "{}",
        run.stderr
    );
    let groups: Vec<String> = alert_lines(&run.stdout)
        .into_iter()
        .map(|(g, _)| g)
        .collect();
    assert_eq!(groups, [group("many-payloads-1"), group("many-payloads-2")]);
    assert!(
        run.max_rss <= MAX_RSS_BYTES,
        "peak RSS {} MiB",
        run.max_rss >> 20
    );
}

#[test]
fn a_plain_log_with_a_one_mb_line_and_invalid_utf8_still_alerts_as_without_them() {
    // Plain logs are read line by line, invalid bytes converted lossily: a
    // huge or garbled line is one more event, not an error.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plain/bastion-auth.log");
    let text = std::fs::read(&fixture).unwrap();
    let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    let mut noisy = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        noisy.extend_from_slice(l);
        if i == 4 {
            noisy.extend_from_slice(b"Nov 22 10:07:05 bastion app[7]: body ");
            noisy.extend(std::iter::repeat_n(b'A', 1 << 20));
            noisy.extend_from_slice(b"\nNov 22 10:07:05 bastion app[7]: caf\xe9 \xff\xfe\n");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bastion-auth.log");
    std::fs::write(&path, noisy).unwrap();
    let clean = logwarden(&[], &[&fixture]);
    let run = logwarden(&[], &[&path]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let events = format!("{} event(s)", lines.len() + 2);
    assert!(run.stderr.contains(&events), "{}", run.stderr);
    assert!(!alert_lines(&clean.stdout).is_empty());
    assert_eq!(alert_lines(&run.stdout), alert_lines(&clean.stdout));
}

// -------------------------------------------------------- Lambda handler

fn service(limits: Limits) -> DetectorService<MemoryStore> {
    let engine = Engine::new(
        Arc::new(RuleSet::builtin().unwrap()),
        MemoryStore::new(),
        EngineConfig::default(),
    );
    DetectorService::new(
        engine,
        limits,
        "logwarden-detector".into(),
        Box::new(FixedClock(T)),
        Delivery::Log,
    )
}

/// A `tracing` writer into a shared buffer, to read what the handler logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one handler call returned, printed and logged.
struct Called {
    response: Value,
    /// Log groups of the alert lines.
    alert_groups: BTreeSet<String>,
    /// The EMF metrics line.
    metrics: Value,
    /// The handler's tracing output.
    log: String,
}

/// One invocation; panics if it fails (Lambda would retry it).
async fn call(svc: &DetectorService<MemoryStore>, event: Value) -> Called {
    use tracing::instrument::WithSubscriber as _;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let mut out = Vec::new();
    let response = svc
        .call(LambdaEvent::new(event, Context::default()), &mut out)
        .with_subscriber(subscriber)
        .await
        .unwrap_or_else(|e| panic!("the call failed (Lambda would retry): {e}"));
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let alert_groups = lines
        .iter()
        .filter(|l| l.get("rule").is_some())
        .map(|l| l["log_group"].as_str().unwrap().to_string())
        .collect();
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    Called {
        response,
        alert_groups,
        metrics: lines.last().unwrap().clone(),
        log,
    }
}

fn groups(names: &[String]) -> BTreeSet<String> {
    names.iter().map(|n| group(n)).collect()
}

#[tokio::test]
async fn each_class_through_the_handler_is_counted_and_skipped_and_only_its_record_fails() {
    for class in CLASSES {
        let name = class.name;
        let (unit, expect) = (class.build)();
        let data = unit.data();
        let (bad, own_alerts) = match &expect {
            Expect::Error(msg) => (Some(msg.as_str()), 0),
            Expect::Processed { alerts, .. } => (None, *alerts),
        };
        let own: Vec<String> = (own_alerts > 0)
            .then(|| name.to_string())
            .into_iter()
            .collect();
        let failures = u64::from(bad.is_some());

        // awslogs: the call succeeds (no retry), the record is counted.
        let svc = service(Limits::default());
        let c = call(&svc, awslogs_event(data.as_ref())).await;
        assert_eq!(c.response, Value::Null, "{name}");
        assert_eq!(c.metrics["DecodeFailures"], failures, "{name}");
        assert_eq!(c.alert_groups, groups(&own), "{name}");
        if let Some(msg) = bad {
            assert!(
                c.log.contains("Dropped malformed record.")
                    && c.log.contains("envelope=\"awslogs\"")
                    && c.log.contains(msg),
                "{name}: log does not name the problem: {}",
                c.log
            );
        }
        if let Expect::Processed { events, .. } = expect {
            assert_eq!(c.metrics["Batches"], 1, "{name}");
            assert_eq!(c.metrics["Events"], events, "{name}");
        }

        // Kinesis: only the bad record (sequence 2) is reported as failed,
        // and the good records' alerts are out.
        let svc = service(Limits::default());
        let c = call(&svc, kinesis_event(name, data.as_ref())).await;
        let want_failures: Vec<Value> = bad
            .map(|_| json!({"itemIdentifier": "2"}))
            .into_iter()
            .collect();
        assert_eq!(
            c.response,
            json!({"batchItemFailures": want_failures}),
            "{name}"
        );
        assert_eq!(c.metrics["DecodeFailures"], failures, "{name}");
        let mut want = own.clone();
        want.extend([format!("{name}-k1"), format!("{name}-k3")]);
        assert_eq!(c.alert_groups, groups(&want), "{name}");
        if let Some(msg) = bad {
            assert!(
                c.log.contains("record=2") && c.log.contains(msg),
                "{name}: log does not name the record and problem: {}",
                c.log
            );
        }

        // Firehose: ProcessingFailed for the bad record only.
        let svc = service(Limits::default());
        let c = call(&svc, firehose_event(name, data.as_ref())).await;
        let results: Vec<(&str, &str)> = c.response["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["recordId"].as_str().unwrap(),
                    r["result"].as_str().unwrap(),
                )
            })
            .collect();
        let middle = if bad.is_some() {
            "ProcessingFailed"
        } else {
            "Ok"
        };
        assert_eq!(results, [("a", "Ok"), ("b", middle), ("c", "Ok")], "{name}");
        assert_eq!(c.metrics["DecodeFailures"], failures, "{name}");
        let mut want = own.clone();
        want.extend([format!("{name}-f1"), format!("{name}-f3")]);
        assert_eq!(c.alert_groups, groups(&want), "{name}");
    }
}

#[tokio::test]
async fn the_handler_admits_the_ten_mb_payload_under_a_raised_cap() {
    let svc = service(Limits {
        max_decoded_bytes: 16 << 20,
        ..Limits::default()
    });
    let data = json!(b64(&gzip(&ten_mb_payload())));
    let c = call(&svc, awslogs_event(Some(&data))).await;
    assert_eq!(c.metrics["DecodeFailures"], 0);
    assert_eq!(c.metrics["Events"], 11);
    assert_eq!(c.alert_groups, groups(&["ten-mb-payload".to_string()]));
}

#[tokio::test]
async fn a_firehose_record_without_a_record_id_is_counted_and_the_others_answered() {
    let svc = service(Limits::default());
    let mut ev = firehose_event("no-record-id", Some(&good_data("no-record-id-f2")));
    ev["records"][1].as_object_mut().unwrap().remove("recordId");
    let c = call(&svc, ev).await;
    let ids: Vec<&str> = c.response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["recordId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(c.metrics["DecodeFailures"], 1);
    assert_eq!(
        c.alert_groups,
        groups(&["no-record-id-f1".to_string(), "no-record-id-f3".to_string()])
    );
}

#[tokio::test]
async fn a_records_event_of_another_service_is_unrecognised_not_a_batch_of_bad_records() {
    // An S3 notification sent to the detector by mistake: an error (the
    // event is not one this function handles), not three "bad records".
    let svc = service(Limits::default());
    let mut out = Vec::new();
    let ev = json!({"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "a"}}}]});
    let err = svc
        .call(LambdaEvent::new(ev, Context::default()), &mut out)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("without kinesis data"), "{err}");
}

// ------------------------------------- the detector binary, measured

#[test]
fn the_detector_binary_survives_every_class_in_bounded_memory() {
    let mut events = Vec::new();
    let mut expected = Vec::new();
    for class in CLASSES {
        let (unit, expect) = (class.build)();
        let data = unit.data();
        let bad = matches!(expect, Expect::Error(_));
        events.push(awslogs_event(data.as_ref()));
        expected.push(Value::Null);
        events.push(kinesis_event(class.name, data.as_ref()));
        let failed: Vec<Value> = bad
            .then(|| json!({"itemIdentifier": "2"}))
            .into_iter()
            .collect();
        expected.push(json!({"batchItemFailures": failed}));
    }
    let total = events.len();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut api = rt.block_on(RuntimeApi::start(events, TIME_LIMIT));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logwarden-detector"));
    cmd.envs(lambda_env(api.addr))
        .env_remove("LOGWARDEN_TOPIC_ARN")
        .env_remove("LOGWARDEN_STATE_TABLE")
        .env_remove("LOGWARDEN_MAX_DECODED_BYTES");
    let child = spawn(&cmd);
    let deadline = child.start + TIME_LIMIT;
    let got: Vec<Result<Value, String>> = (0..total)
        .map_while(|_| {
            rt.block_on(api.next_outcome(deadline.saturating_duration_since(Instant::now())))
        })
        .map(|o| match o {
            Outcome::Response(v) => Ok(v),
            Outcome::Error(e) => Err(e),
        })
        .collect();
    // The detector never exits by itself (it waits for the next event).
    let run = child.finish(true);
    let (stdout, stderr, max_rss, elapsed) = (run.stdout, run.stderr, run.max_rss, run.elapsed);
    eprintln!("detector: peak RSS {} MiB, {elapsed:?}", max_rss >> 20);
    assert_eq!(
        got.len(),
        total,
        "the detector answered {} of {total} events within {TIME_LIMIT:?}: {stderr}",
        got.len()
    );
    let got: Vec<Value> = got
        .into_iter()
        .map(|o| o.unwrap_or_else(|e| panic!("the detector returned an error: {e}")))
        .collect();
    assert_eq!(got, expected);
    assert!(
        !stdout.contains("panicked") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let failures: u64 = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("DecodeFailures").and_then(Value::as_u64))
        .sum();
    let bad = CLASSES
        .iter()
        .filter(|c| matches!((c.build)().1, Expect::Error(_)))
        .count() as u64;
    assert_eq!(failures, 2 * bad, "{stdout}");
    assert!(max_rss <= MAX_RSS_BYTES, "peak RSS {} MiB", max_rss >> 20);
}

#[test]
fn classes_cover_the_issue() {
    // Guard against the table silently shrinking.
    let names: BTreeMap<&str, bool> = CLASSES
        .iter()
        .map(|c| (c.name, matches!((c.build)().1, Expect::Error(_))))
        .collect();
    assert_eq!(names.len(), CLASSES.len(), "duplicate class names");
    for (n, bad) in [
        ("bad-base64", true),
        ("truncated-gzip", true),
        ("gzip-bomb", true),
        ("not-json", true),
        ("wrong-schema", true),
        ("empty-log-events", false),
        ("invalid-utf8", true),
        ("one-mb-line", false),
        ("unknown-fields", false),
        ("timestamp-as-string", true),
        ("ten-mb-payload", true),
        ("data-not-a-string", true),
        ("data-missing", true),
    ] {
        assert_eq!(names.get(n), Some(&bad), "{n}");
    }
}

// ------------------------------- directory walk, plain-file caps and names

/// Time one run of a walk test may take. In a debug build each ran in at
/// most 0.9 s alone and 1.7 s with the other walk tests in parallel (the
/// slowest: reading 128 MiB of `/dev/zero`); this is about five times that,
/// so a regression (a loop that never ends, a FIFO that blocks) fails the
/// test instead of wedging CI.
const WALK_LIMIT: Duration = Duration::from_secs(10);

/// Address space of a walk test's run: far above what a replay needs, far
/// below the machine, so a run reading `/dev/zero` without end fails
/// instead of taking every test's memory.
const WALK_ADDRESS_SPACE: u64 = 4 << 30;

/// `logwarden replay --output json ARGS PATHS` under [`WALK_LIMIT`] and
/// [`WALK_ADDRESS_SPACE`].
fn walk_replay(args: &[&str], paths: &[&Path]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logwarden"));
    cmd.args(["replay", "--output", "json"])
        .args(args)
        .args(paths)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("LOGWARDEN_MAX_DECODED_BYTES")
        .env_remove("LOGWARDEN_MAX_FILE_BYTES")
        .env_remove("LOGWARDEN_MAX_FILE_LINES");
    spawn_limited(&cmd, WALK_LIMIT, Some(WALK_ADDRESS_SPACE)).finish(false)
}

/// The plain sshd fixture: a failed-auth burst from one address.
fn bastion_log() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plain/bastion-auth.log"))
        .unwrap()
}

/// Events of [`bastion_log`]: its non-blank lines.
fn bastion_events() -> usize {
    bastion_log()
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count()
}

/// A directory `logs` holding `auth.log` (the bastion fixture).
fn logs_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("auth.log"), bastion_log()).unwrap();
    (dir, logs)
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The rules of a `--output json` run's alerts.
fn alert_rules(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["rule"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The summary says one input of the bastion log's events was read.
fn assert_read_once(run: &Run) {
    let once = format!("1 input(s), 1 batch(es), {} event(s)", bastion_events());
    assert!(run.stderr.contains(&once), "{}", run.stderr);
    assert_eq!(
        alert_rules(&run.stdout),
        ["failed-auth-burst"],
        "{}",
        run.stderr
    );
}

#[test]
fn a_symlink_loop_pair_finishes_and_reads_each_file_once() {
    // `x -> .` and `y -> .` made the walk's paths grow without end (x/y/x/…),
    // and memory with them.
    let (_dir, logs) = logs_dir();
    std::os::unix::fs::symlink(".", logs.join("x")).unwrap();
    std::os::unix::fs::symlink(".", logs.join("y")).unwrap();
    let run = walk_replay(&[], &[&logs]);
    eprintln!(
        "symlink loop pair: {:?}, peak RSS {} MiB",
        run.elapsed,
        run.max_rss >> 20
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_read_once(&run);
    for link in ["x", "y"] {
        let warning = format!("logwarden: warning: {}: skipped", logs.join(link).display());
        assert!(run.stderr.contains(&warning), "{link}: {}", run.stderr);
    }
    assert!(
        run.max_rss <= MAX_RSS_BYTES,
        "peak RSS {} MiB",
        run.max_rss >> 20
    );
}

#[test]
fn a_self_symlink_reads_its_directory_once() {
    // `self -> .` used to read auth.log 41 times (until ELOOP), so a burst
    // of 12 failures counted as 492.
    let (_dir, logs) = logs_dir();
    std::os::unix::fs::symlink(".", logs.join("self")).unwrap();
    let run = walk_replay(&[], &[&logs]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_read_once(&run);
}

#[test]
fn a_file_reached_twice_through_symlinks_is_read_once() {
    // A `current.log` link and a linked directory both reach auth.log:
    // read twice, every event would count twice toward a threshold.
    let (_dir, logs) = logs_dir();
    let sub = logs.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::rename(logs.join("auth.log"), sub.join("auth.log")).unwrap();
    std::os::unix::fs::symlink("sub/auth.log", logs.join("current.log")).unwrap();
    std::os::unix::fs::symlink("sub", logs.join("linked")).unwrap();
    let run = walk_replay(&[], &[&logs]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_read_once(&run);
}

#[test]
fn a_fifo_in_a_walked_directory_is_skipped_with_a_warning() {
    // Opening a FIFO found by the walk blocked the whole run for good.
    let (_dir, logs) = logs_dir();
    mkfifo(&logs.join("pipe.log"));
    let run = walk_replay(&["--threads", "2"], &[&logs]);
    eprintln!("FIFO in a walk: {:?}", run.elapsed);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_read_once(&run);
    let warning = format!(
        "logwarden: warning: {}: skipped: a FIFO, not a regular file",
        logs.join("pipe.log").display()
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
}

#[test]
fn a_device_link_in_a_walked_directory_is_skipped_with_a_warning() {
    // `zero.log -> /dev/zero` was read until memory ran out.
    let (_dir, logs) = logs_dir();
    std::os::unix::fs::symlink("/dev/zero", logs.join("zero.log")).unwrap();
    let run = walk_replay(&[], &[&logs]);
    eprintln!(
        "device link in a walk: {:?}, peak RSS {} MiB",
        run.elapsed,
        run.max_rss >> 20
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_read_once(&run);
    let warning = format!(
        "logwarden: warning: {}: skipped: a character device, not a regular file",
        logs.join("zero.log").display()
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    assert!(
        run.max_rss <= MAX_RSS_BYTES,
        "peak RSS {} MiB",
        run.max_rss >> 20
    );
}

#[test]
fn a_device_named_on_the_command_line_stops_at_the_byte_cap() {
    // Named explicitly, it is read (as `-` and a FIFO are), but no further
    // than the per-file cap; the other inputs are processed as usual.
    let (_dir, logs) = logs_dir();
    let zero = logs.join("zero.log");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let auth = logs.join("auth.log");
    for (args, cap) in [
        // The default cap: 128 MiB.
        (&[][..], 128 << 20),
        (&["--max-file-bytes", "1048576"][..], 1 << 20),
    ] {
        let run = walk_replay(args, &[&zero, &auth]);
        eprintln!(
            "/dev/zero named, cap {cap}: {:?}, peak RSS {} MiB",
            run.elapsed,
            run.max_rss >> 20
        );
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        let stopped = format!(
            "logwarden: {}: stopped at the {cap}-byte cap (--max-file-bytes)",
            zero.display()
        );
        assert!(run.stderr.contains(&stopped), "{}", run.stderr);
        assert_eq!(alert_rules(&run.stdout), ["failed-auth-burst"]);
        assert!(
            run.stderr
                .contains(&format!("{} event(s)", bastion_events())),
            "{}",
            run.stderr
        );
        assert!(
            run.max_rss <= MAX_RSS_BYTES,
            "peak RSS {} MiB",
            run.max_rss >> 20
        );
    }
}

#[test]
fn a_fifo_named_on_the_command_line_is_read() {
    let (_dir, logs) = logs_dir();
    let pipe = logs.join("pipe.log");
    mkfifo(&pipe);
    let mut writer = Command::new("sh")
        .arg("-c")
        .arg("cat auth.log > pipe.log")
        .current_dir(&logs)
        .spawn()
        .unwrap();
    let other = Path::new("fixtures/failures/payments-crash.json");
    let run = walk_replay(&["--threads", "2"], &[&pipe, other]);
    let _ = writer.kill();
    writer.wait().unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let rules = alert_rules(&run.stdout);
    assert!(
        rules.contains(&"failed-auth-burst".to_string()),
        "{rules:?}"
    );
    assert!(rules.contains(&"runtime-exit".to_string()), "{rules:?}");
    assert!(run.stderr.contains("2 input(s)"), "{}", run.stderr);
}

#[test]
fn a_plain_log_past_the_line_cap_is_read_up_to_it_and_reported() {
    let (_dir, logs) = logs_dir();
    let auth = logs.join("auth.log");
    let run = walk_replay(&["--max-file-lines", "10"], &[&auth]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains(" 10 event(s)"), "{}", run.stderr);
    let stopped = format!(
        "logwarden: {}: line 11: plain log longer than the 10-line cap (--max-file-lines)",
        auth.display()
    );
    assert!(run.stderr.contains(&stopped), "{}", run.stderr);
    // Under the cap, the whole file and no error.
    let lines = bastion_events().to_string();
    let run = walk_replay(&["--max-file-lines", &lines], &[&auth]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_read_once(&run);
}

#[test]
fn a_plain_log_with_one_nul_byte_still_alerts_as_without_it() {
    // One NUL used to make the whole log "binary data", its burst lost.
    let (_dir, logs) = logs_dir();
    let clean = walk_replay(&[], &[&logs.join("auth.log")]);
    let mut text = bastion_log();
    let at = text.iter().position(|&b| b == b'\n').unwrap() + 20;
    text.insert(at, 0);
    let nul = logs.join("nul.log");
    std::fs::write(&nul, &text).unwrap();
    let run = walk_replay(&[], &[&nul]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!alert_lines(&clean.stdout).is_empty());
    assert_eq!(
        alert_rules(&run.stdout),
        alert_rules(&clean.stdout),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{} event(s)", bastion_events())),
        "{}",
        run.stderr
    );
}

#[test]
fn a_mostly_binary_file_is_still_reported_as_binary() {
    // Pseudo-random bytes (a compressed or encrypted file), with and without
    // a page of log lines in front.
    let mut state: u32 = 0x2545_f491;
    let noise: Vec<u8> = (0..64 << 10)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    let (_dir, logs) = logs_dir();
    let random = logs.join("random.log");
    std::fs::write(&random, &noise).unwrap();
    let mut headed = bastion_log().repeat(8);
    assert!(
        headed.len() > 8 << 10,
        "the text alone fills the first 8 KiB"
    );
    headed.extend_from_slice(&noise);
    let behind_text = logs.join("behind-text.log");
    std::fs::write(&behind_text, &headed).unwrap();
    let run = walk_replay(&[], &[&random, &behind_text]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    for f in [&random, &behind_text] {
        let line = format!("logwarden: {}: not a recognised input", f.display());
        let reported = run
            .stderr
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("{} not reported: {}", f.display(), run.stderr));
        assert!(reported.contains("binary data"), "{reported}");
    }
    assert!(run.stderr.contains(" 0 event(s)"), "{}", run.stderr);
}

#[test]
fn file_names_with_control_characters_are_escaped_on_every_stderr_line() {
    // A name with a line break forged a summary line; an ESC byte reached
    // the terminal. Names (and what a file's content puts in a message) are
    // escaped as the text renderers escape alert fields.
    use std::os::unix::ffi::OsStringExt as _;
    let (_dir, logs) = logs_dir();
    let forged = "evil\nlogwarden: 0 input(s), 0 alert(s), 0 input error(s)\n.json";
    std::fs::write(logs.join(forged), "{broken").unwrap();
    mkfifo(&logs.join("esc\x1b]0;pwned\x07.log"));
    let latin1 = std::ffi::OsString::from_vec(b"caf\xe9\x1b[2J.json".to_vec());
    std::fs::write(logs.join(&latin1), "{broken").unwrap();
    std::fs::write(logs.join("keys.json"), r#"{"\u001b[31mred":1}"#).unwrap();
    let run = walk_replay(&[], &[&logs]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let shown = logs.display().to_string();
    for want in [
        format!(
            "logwarden: {shown}/evil\\nlogwarden: 0 input(s), 0 alert(s), 0 input error(s)\\n.json: "
        ),
        format!("logwarden: warning: {shown}/esc\\x1b]0;pwned\\x07.log: skipped"),
        format!("logwarden: {shown}/caf\\xe9\\x1b[2J.json: "),
        "keys \\x1b[31mred".to_string(),
    ] {
        assert!(
            run.stderr.contains(&want),
            "{want:?} not in {:?}",
            run.stderr
        );
    }
    for c in ['\x1b', '\x07', '\u{fffd}'] {
        assert!(!run.stderr.contains(c), "{c:?} on stderr: {:?}", run.stderr);
    }
    for line in run.stderr.lines() {
        assert!(line.starts_with("logwarden: "), "{line:?}");
    }
    assert!(
        !run.stderr.contains("\nlogwarden: 0 input(s)"),
        "a forged summary line: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("logwarden: 4 input(s)"),
        "{}",
        run.stderr
    );
}
