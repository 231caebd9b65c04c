//! Every command README.md shows that needs no AWS runs, from the repository
//! root, against the built binary, and exits as the README says (0 unless a
//! trailing `# … exit N` comment says otherwise), so an example cannot go
//! stale silently.
//!
//! Commands are the lines of ```` ```sh ````/`bash`/`shell` blocks, and the
//! `$ ` lines of ```` ```console ```` and bare ```` ``` ```` blocks (a
//! trailing `\` continues a line). A line runs when its program is
//! `logwarden` or `cargo run … --` (both mean the binary under test); other
//! programs (`.ci/run`, `aws`, `scripts/bench.sh`) are not run here. A line
//! that needs AWS or the network is left out and listed with the reason:
//! `backtest`, `state`, `sweep`, `notify`, `--sink sns`, `--state dynamodb`,
//! `--state-table`, `--sns-topic-arn`, or a `$VAR` the reader supplies. The
//! README is read when the test runs, so it checks whatever README is there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One command shown in the README.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    /// README line number of its first line.
    line: usize,
    /// The command as shown, continuation lines joined.
    text: String,
}

/// What the test does with a shown command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Run it (as a `bash` line, `logwarden` on PATH) and expect this exit code.
    Run { script: String, exit: i32 },
    /// Not run, for this reason.
    Skip(String),
}

/// The commands of README-like markdown, in order.
fn shown_commands(markdown: &str) -> Vec<Shown> {
    let mut out = Vec::new();
    // Inside a fence: `Some(Some(true))` every line is a command,
    // `Some(Some(false))` only `$ ` lines, `Some(None)` none (another language).
    let mut fence: Option<Option<bool>> = None;
    let mut open: Option<Shown> = None;
    for (i, raw) in markdown.lines().enumerate() {
        if let Some(info) = raw.trim_start().strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(match info.split_whitespace().next().unwrap_or("") {
                    "sh" | "bash" | "shell" => Some(true),
                    "console" | "" => Some(false),
                    _ => None,
                }),
            };
            open = None;
            continue;
        }
        let Some(Some(all_lines)) = fence else {
            continue;
        };
        let piece = if let Some(cmd) = open.as_mut() {
            cmd.text.push(' ');
            cmd.text.push_str(raw.trim());
            None
        } else if all_lines {
            let t = raw.trim();
            (!t.is_empty() && !t.starts_with('#')).then(|| t.to_string())
        } else {
            raw.strip_prefix("$ ").map(|t| t.trim().to_string())
        };
        if let Some(text) = piece {
            open = Some(Shown { line: i + 1, text });
        }
        let continued = open.as_ref().is_some_and(|c| c.text.ends_with('\\'));
        if continued {
            if let Some(c) = open.as_mut() {
                c.text.pop();
                let t = c.text.trim_end().len();
                c.text.truncate(t);
            }
        } else if let Some(c) = open.take() {
            out.push(c);
        }
    }
    out
}

/// `text` split at its first `#` that starts a shell comment (unquoted,
/// after whitespace): (command, comment).
fn split_comment(text: &str) -> (&str, Option<&str>) {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    for (i, c) in text.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => {
                return (text[..i].trim_end(), Some(text[i + 1..].trim()));
            }
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    (text.trim_end(), None)
}

/// The exit code a comment announces (`exit 1`, `exits 2`, `exit status 1`).
fn announced_exit(comment: &str) -> Option<i32> {
    let words: Vec<&str> = comment
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).find_map(|w| match w {
        ["exit" | "exits" | "status", n] => n.parse().ok(),
        _ => None,
    })
}

/// `cargo run [OPTIONS] --` (or a bare `cargo run`) replaced by `logwarden`,
/// or why not (another binary).
fn as_logwarden(command: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = command;
    while let Some(at) = rest.find("cargo run") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "cargo run".len()..];
        let end = after.find(['|', ';', '&']).unwrap_or(after.len());
        let (options, args) = match after[..end].find(" -- ") {
            Some(sep) => (&after[..sep], &after[sep + " -- ".len()..]),
            None if after[..end].trim_end().ends_with(" --") => {
                (after[..end].trim_end().trim_end_matches("--"), "")
            }
            None => (&after[..end], ""),
        };
        let opts: Vec<&str> = options.split_whitespace().collect();
        if let Some(i) = opts.iter().position(|o| *o == "--bin") {
            match opts.get(i + 1) {
                Some(&"logwarden") => {}
                other => return Err(format!("runs another binary ({other:?})")),
            }
        }
        out.push_str("logwarden ");
        out.push_str(args.trim_end());
        out.push(' ');
        rest = &after[end..];
    }
    out.push_str(rest);
    Ok(out.trim().to_string())
}

/// Why a command (already in `logwarden …` form) needs AWS or the network.
fn needs_aws(command: &str) -> Option<String> {
    let words: Vec<&str> = command
        .split_whitespace()
        .map(|w| w.trim_matches(['"', '\'']))
        .collect();
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or("");
        let after_logwarden = i > 0 && words[i - 1] == "logwarden";
        let reason = match *w {
            "backtest" if after_logwarden => "backtest reads CloudWatch Logs",
            "state" if after_logwarden => "state talks to DynamoDB",
            "sweep" if after_logwarden => "sweep reads the DynamoDB state table",
            "notify" if after_logwarden => "notify posts to a Slack webhook",
            "--sink" if next == "sns" => "--sink sns publishes to SNS",
            "--sink=sns" => "--sink sns publishes to SNS",
            "--state" if next == "dynamodb" => "--state dynamodb needs DynamoDB",
            "--state=dynamodb" => "--state dynamodb needs DynamoDB",
            "--state-table" => "--state-table needs DynamoDB",
            "--sns-topic-arn" => "--sns-topic-arn publishes to SNS",
            _ => continue,
        };
        return Some(reason.to_string());
    }
    None
}

/// A `$NAME` the reader is to supply; text in single quotes is literal.
fn reader_variable(command: &str) -> Option<String> {
    let unquoted: String = command.split('\'').step_by(2).collect::<Vec<_>>().join(" ");
    let re = regex::Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    re.captures(&unquoted).map(|c| c[1].to_string())
}

fn plan(shown: &Shown) -> Plan {
    let (command, comment) = split_comment(&shown.text);
    let first = command
        .split_whitespace()
        .find(|w| !w.contains('='))
        .unwrap_or("");
    if !(first == "logwarden" || command.contains("cargo run")) {
        return Plan::Skip(format!("not logwarden ({first})"));
    }
    let script = match as_logwarden(command) {
        Ok(s) => s,
        Err(why) => return Plan::Skip(why),
    };
    if let Some(why) = needs_aws(&script) {
        return Plan::Skip(why);
    }
    if let Some(var) = reader_variable(&script) {
        return Plan::Skip(format!("uses ${var}, which the reader supplies"));
    }
    let exit = comment.and_then(announced_exit).unwrap_or(0);
    Plan::Run { script, exit }
}

/// A directory holding `logwarden`, the binary under test, for PATH.
fn bin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_logwarden"),
        dir.path().join("logwarden"),
    )
    .unwrap();
    dir
}

fn run(script: &str, bin: &Path) -> std::process::Output {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .current_dir(root())
        .env("PATH", std::env::join_paths(dirs).unwrap())
        .env_remove("LOGWARDEN_MAX_DECODED_BYTES")
        .env_remove("LOGWARDEN_TOPIC_ARN")
        .env_remove("LOGWARDEN_STATE_TABLE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn every_readme_command_that_needs_no_aws_exits_as_shown() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let bin = bin_dir();
    let (mut ran, mut failures, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for shown in shown_commands(&readme) {
        match plan(&shown) {
            Plan::Skip(why) => {
                skipped.push(format!("README.md:{}: {}: {why}", shown.line, shown.text))
            }
            Plan::Run { script, exit } => {
                ran.push(format!("README.md:{}: {script} (exit {exit})", shown.line));
                let out = run(&script, bin.path());
                if out.status.code() != Some(exit) {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
                    failures.push(format!(
                        "README.md:{}: {}\n    exit {:?}, README says {exit}; stderr ends:\n    {}",
                        shown.line,
                        shown.text,
                        out.status.code(),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n    ")
                    ));
                }
            }
        }
    }
    eprintln!("ran:\n{}\nnot run:\n{}", ran.join("\n"), skipped.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of {} README command(s) failed:\n{}",
        failures.len(),
        ran.len(),
        failures.join("\n")
    );
    assert!(
        !ran.is_empty(),
        "README.md shows no command that runs without AWS"
    );
}

/// The parser and the selection on a README of every shape they handle: a
/// wrong pick (an AWS command run, a demo missed) would change this list.
#[test]
fn readme_commands_are_picked_and_planned_as_documented() {
    let md = "\
intro
```sh
cargo run --release -- replay fixtures/     # the demo
.ci/run                                      # CI
logwarden rules check detectors/broken   # exits 2
logwarden replay --output json fixtures/ | \\
  LOGWARDEN_SLACK_WEBHOOK_URL=\"$URL\" cargo run --release -- notify slack
logwarden state init --table t
logwarden replay --sink sns --sns-topic-arn arn fixtures/
cargo run --bin logwarden-detector
logwarden replay --log-stream '[$LATEST]x' fixtures/failures
logwarden replay --log-group \"$GROUP\" x.log
```
```
$ cargo run --quiet --release -- rules list
output line, not a command
logwarden replay [OPTIONS] <PATH>...
```
```console
$ logwarden replay --state dynamodb x
```
```yaml
$ logwarden not a command
```
";
    let got: Vec<(usize, Plan)> = shown_commands(md)
        .iter()
        .map(|s| (s.line, plan(s)))
        .collect();
    let run = |script: &str, exit| Plan::Run {
        script: script.into(),
        exit,
    };
    let skip = |why: &str| Plan::Skip(why.into());
    assert_eq!(
        got,
        [
            (3, run("logwarden replay fixtures/", 0)),
            (4, skip("not logwarden (.ci/run)")),
            (5, run("logwarden rules check detectors/broken", 2)),
            (6, skip("notify posts to a Slack webhook")),
            (8, skip("state talks to DynamoDB")),
            (9, skip("--sink sns publishes to SNS")),
            (
                10,
                skip("runs another binary (Some(\"logwarden-detector\"))")
            ),
            (
                11,
                run(
                    "logwarden replay --log-stream '[$LATEST]x' fixtures/failures",
                    0
                )
            ),
            (12, skip("uses $GROUP, which the reader supplies")),
            (15, run("logwarden rules list", 0)),
            (20, skip("--state dynamodb needs DynamoDB")),
        ]
    );
}
