//! The `logwarden` binary as a user runs it: stdout/stderr split and exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn logwarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args(args)
        .current_dir(root())
        .env_remove("LOGWARDEN_MAX_DECODED_BYTES")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn replay_fixtures_exits_zero_and_json_prints_only_alerts() {
    let out = logwarden(&["replay", "--output", "json", "fixtures/"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // 24 firings; the end of replay sweeps, so the 13 incidents quiet by the
    // last event resolve.
    assert_eq!(lines.len(), 24 + 13, "{stdout}");
    let mut resolved = 0;
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["id"].is_string() && v["rule"].is_string(), "{l}");
        resolved += usize::from(v["status"] == "resolved");
    }
    assert_eq!(resolved, 13);
    assert!(text(&out.stderr).contains("24 alert(s), 13 resolved,"));
}

#[test]
fn text_output_answers_the_four_ws() {
    let out = logwarden(&["replay", "fixtures/failures/report-builder-timeout.json"]);
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    assert!(
        s.contains("[HIGH] invocation-timeout  Invocation timed out in report-builder"),
        "{s}"
    );
    assert!(s.contains("when   2026-11-22T10:02:40.010Z"), "{s}");
    assert!(s.contains("function report-builder"), "{s}");
    assert!(
        !s.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn malformed_inputs_are_named_on_stderr_the_rest_is_processed_and_exit_is_one() {
    let out = logwarden(&[
        "replay",
        "--output",
        "json",
        "tests/data/malformed",
        "fixtures/failures",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for f in [
        "bad-base64.json",
        "timestamp-as-string.json",
        "truncated-json.json",
        "truncated.gz",
    ] {
        assert!(
            err.contains(&format!("tests/data/malformed/{f}: ")),
            "{f} not reported: {err}"
        );
    }
    assert!(err.contains("truncated gzip"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The good inputs' alerts are all there.
    let rules: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["rule"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for r in [
        "invocation-timeout",
        "out-of-memory",
        "runtime-exit",
        "init-failure",
    ] {
        assert!(rules.iter().any(|x| x == r), "{r} missing: {rules:?}");
    }
}

#[test]
fn a_missing_file_is_an_input_error() {
    let out = logwarden(&["replay", "no/such/file.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no/such/file.json: cannot read"));
}

#[test]
fn stdin_is_read_with_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args(["replay", "--output", "json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = std::fs::read(root().join("fixtures/failures/payments-crash.json")).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &input).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("\"rule\":\"runtime-exit\""));
}

#[test]
fn usage_and_rule_errors_exit_two() {
    assert_eq!(logwarden(&["replay"]).status.code(), Some(2));
    assert_eq!(
        logwarden(&["replay", "--output", "xml", "fixtures"])
            .status
            .code(),
        Some(2)
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "id: broken\ntitle: t\nseverity: high\nkind: threshold\nmatch:\n  - regex: '(('\nwindow: 1s\nthreshold: 2\n").unwrap();
    let d = dir.path().to_str().unwrap();
    let out = logwarden(&["replay", "--rules", d, "fixtures"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("broken.yaml:6: invalid regex"),
        "{}",
        text(&out.stderr)
    );
    let out = logwarden(&["rules", "check", d]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rules_check_runs_inline_tests_and_list_shows_the_pack() {
    let out = logwarden(&["rules", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("14 rules,"));
    let out = logwarden(&["rules", "check", "detectors"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = logwarden(&["rules", "list"]);
    let s = text(&out.stdout);
    for id in [
        "failed-auth-burst",
        "missing-end",
        "invocation-timeout",
        "out-of-memory",
        "runtime-exit",
        "init-failure",
        "duration-anomaly",
        "memory-anomaly",
        "invocation-spike",
        "memory-leak",
        "password-spraying",
        "unauthorized-access",
        "secret-in-logs",
        "brute-force-success",
    ] {
        assert!(s.contains(id), "{id}");
    }
}

#[test]
fn a_failing_inline_test_is_reported_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.yaml"),
        "id: t\ntitle: t\nseverity: low\nkind: failure\non: [timeout]\ntests:\n  - name: wrong expectation\n    lines: ['Task timed out after 3.00 seconds']\n    expect_alerts: 2\n",
    )
    .unwrap();
    let out = logwarden(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let s = text(&out.stdout);
    assert!(
        s.contains("t.yaml:7: test `wrong expectation` failed: expected 2 alert(s), got 1"),
        "{s}"
    );
}

#[test]
fn plain_logs_take_group_and_stream_from_options() {
    let out = logwarden(&[
        "replay",
        "--output",
        "json",
        "--log-group",
        "/bastion/auth",
        "--log-stream",
        "host-1",
        "fixtures/plain/bastion-auth.log",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["log_group"], "/bastion/auth");
    assert_eq!(v["log_stream"], "host-1");
    // The alert is the burst as it opened (the threshold), whatever follows in the file.
    assert_eq!(v["count"], 10);
}

#[test]
fn help_teaches() {
    let s = text(&logwarden(&["replay", "--help"]).stdout);
    assert!(s.contains("Exit status"), "{s}");
    assert!(s.contains("--now"));
}

#[test]
fn json_lines_access_logs_are_read_as_plain_lines() {
    let out = logwarden(&[
        "replay",
        "--output",
        "json",
        "--log-group",
        "/aws/apigateway/shop",
        "tests/data/apigw-access.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["rule"], "failed-auth-burst");
    assert_eq!(v["key"]["source_ip"], "198.51.100.77");
    assert_eq!(v["count"], 10, "the alert is the burst as it opened");
    assert_eq!(v["first_seen"], "2026-11-22T10:00:00.000Z");
}

/// A tiny webhook stand-in on 127.0.0.1: answers 200 to every POST and
/// hands each body to the test.
fn webhook() -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/services/T000/B000/XXXX",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(sock);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let _ = tx.send(serde_json::from_slice(&body).unwrap());
                    r.get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .unwrap();
                }
            });
        }
    });
    (url, rx)
}

#[test]
fn notify_slack_posts_each_alert_line_and_reports_bad_lines() {
    let (url, rx) = webhook();
    let alerts = logwarden(&["replay", "--output", "json", "fixtures/failures"]);
    let mut input = alerts.stdout.clone();
    input.extend_from_slice(b"\nnot an alert\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args(["notify", "slack", "--webhook-url", &url, "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &input).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("line 6: not an alert"), "{err}");
    assert!(
        err.contains("4 posted, 0 not posted, 1 not alerts"),
        "{err}"
    );
    assert!(!err.contains("XXXX"), "the webhook URL is a secret: {err}");
    let posted: Vec<serde_json::Value> = rx.try_iter().collect();
    assert_eq!(posted.len(), 4);
    assert!(posted.iter().all(|b| b["blocks"][0]["type"] == "header"));
}

#[test]
fn thread_count_changes_nothing_in_the_output() {
    let run = |threads: &str| {
        let out = logwarden(&[
            "replay",
            "--threads",
            threads,
            "--output",
            "json",
            "fixtures/",
            "tests/data/malformed",
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let one = run("1");
    assert_eq!(one.0.lines().count(), 24 + 13, "{}", one.0);
    for threads in ["2", "4", "0"] {
        assert_eq!(run(threads), one, "--threads {threads}");
    }
    let out = logwarden(&["replay", "--threads", "many", "fixtures/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--threads"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn replay_help_states_the_per_file_caps_and_what_the_walk_skips() {
    let out = logwarden(&["replay", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    // Words as clap wraps them, one space apart.
    let help = text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for want in [
        "--max-file-bytes <BYTES>",
        "[default: 134217728]",
        "--max-file-lines <N>",
        "[default: 1000000]",
        "not a regular file (a FIFO, a socket, a device, or a symlink to one) is skipped with a warning",
    ] {
        assert!(help.contains(want), "{want:?} not in {help}");
    }
}

// ---- rules check: every problem at once, bounded work (issue 13) -------------

/// `rules check DIR` on the given files: exit code, stdout, stderr.
fn rules_check(files: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let out = logwarden(&["rules", "check", dir.path().to_str().unwrap()]);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn rules_check_reports_an_unknown_field_and_a_bad_regex_of_one_rule() {
    let (code, _, err) = rules_check(&[(
        "r.yaml",
        "id: r\ntitle: t\nseverity: low\nkind: threshold\nthreshhold: 3\nwindow: 1m\nmatch:\n  - regex: 'a(b'\n",
    )]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("r.yaml:5: unknown field `threshhold`"),
        "{err}"
    );
    assert!(err.contains("r.yaml:8: invalid regex"), "{err}");
}

#[test]
fn rules_check_reports_a_broken_rule_and_another_rules_failing_test() {
    let (code, out, err) = rules_check(&[
        (
            "a.yaml",
            "id: a\ntitle: t\nseverity: low\nkind: failure\non: [timeout]\ncolour: red\n",
        ),
        (
            "b.yaml",
            "id: b\ntitle: t\nseverity: low\nkind: failure\non: [timeout]\ntests:\n  - name: wrong expectation\n    lines: ['Task timed out after 3.00 seconds']\n    expect_alerts: 2\n",
        ),
    ]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("a.yaml:6: unknown field `colour`"), "{err}");
    assert!(
        out.contains("b.yaml:7: test `wrong expectation` failed: expected 2 alert(s), got 1"),
        "{out}"
    );
    assert!(out.contains("1 rules, 0 tests passed, 1 failed"), "{out}");
}

#[test]
fn rules_check_names_a_group_by_field_no_matcher_captures() {
    let (code, _, err) = rules_check(&[(
        "r.yaml",
        "id: r\ntitle: t\nseverity: low\nkind: threshold\nthreshold: 2\nwindow: 1m\nmatch:\n  - regex: 'from (?P<source_ip>\\S+) as (?P<user>\\S+)'\ngroup_by: [sourceip]\n",
    )]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("r.yaml:9: `group_by` names field `sourceip`, which no matcher captures (captured: source_ip, user)"),
        "{err}"
    );
}

#[test]
fn rules_check_missing_kind_lists_every_kind() {
    let (code, _, err) = rules_check(&[("r.yaml", "id: r\ntitle: t\nseverity: low\n")]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("r.yaml:1: missing `kind` (threshold, distinct, lifecycle, failure, baseline, rate, pattern or sequence)"),
        "{err}"
    );
}

#[test]
fn rules_check_names_each_limit() {
    const HEAD: &str =
        "id: r\ntitle: t\nseverity: low\nkind: threshold\nthreshold: 2\nwindow: 1m\n";
    let regex = format!("{HEAD}match:\n  - regex: '{}'\n", "ab|".repeat(3_000_000));
    let too_big = format!(
        "{HEAD}match: [{{regex: x}}]\ndescription: {}\n",
        "x".repeat(2 << 20)
    );
    let long_regex = format!("{HEAD}match:\n  - regex: '{}'\n", "ab|".repeat(6_000));
    let nested = format!(
        "{HEAD}match: {}x{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let test = "  - name: t\n    lines: [x]\n    expect_alerts: 0\n";
    let tests = format!(
        "{HEAD}match: [{{regex: x}}]\ntests:\n{}",
        test.repeat(20_000)
    );
    for (body, limit) in [
        (regex.as_str(), "(the rule file size limit)"),
        (too_big.as_str(), "(the rule file size limit)"),
        (long_regex.as_str(), "(the regex length limit)"),
        (nested.as_str(), "(the nesting limit)"),
        (tests.as_str(), "(the inline test limit)"),
    ] {
        let (code, _, err) = rules_check(&[("r.yaml", body)]);
        assert_eq!(code, Some(2), "{limit}: {err}");
        assert!(err.contains(limit), "{limit}: {err}");
    }
}

/// Lambda lines saved by `aws logs tail` or `sam logs` (time and stream in
/// front of each) raise what the bare lines raise, in the line's stream.
#[test]
fn lambda_lines_as_the_aws_tools_print_them_raise_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let tail = dir.path().join("tail.log");
    std::fs::write(
        &tail,
        "2026-11-22T10:00:00.100000+00:00 2026/11/22/[$LATEST]abc START RequestId: 0e1c Version: $LATEST\n\
         2026-11-22T10:00:02.900000+00:00 2026/11/22/[$LATEST]abc END RequestId: 0e1c\n\
         2026-11-22T10:00:02.900000+00:00 2026/11/22/[$LATEST]abc REPORT RequestId: 0e1c\tDuration: 2800.00 ms\tBilled Duration: 2800 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\tStatus: error\tError Type: Runtime.OutOfMemory\n",
    )
    .unwrap();
    let sam = dir.path().join("sam.log");
    std::fs::write(
        &sam,
        "2026/11/22/[$LATEST]def 2026-11-22T10:05:00.000000 START RequestId: 7f2a Version: $LATEST\n\
         2026/11/22/[$LATEST]def 2026-11-22T10:05:03.000000 END RequestId: 7f2a\n\
         2026/11/22/[$LATEST]def 2026-11-22T10:05:03.000000 REPORT RequestId: 7f2a\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tStatus: timeout\n",
    )
    .unwrap();
    for (file, rule, stream, first_seen) in [
        (
            &tail,
            "out-of-memory",
            "2026/11/22/[$LATEST]abc",
            "2026-11-22T10:00:02.900Z",
        ),
        (
            &sam,
            "invocation-timeout",
            "2026/11/22/[$LATEST]def",
            "2026-11-22T10:05:03.000Z",
        ),
    ] {
        let out = logwarden(&[
            "replay",
            "--output",
            "json",
            "--log-group",
            "/aws/lambda/checkout",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let alerts: Vec<serde_json::Value> = text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["rule"], rule);
        assert_eq!(alerts[0]["log_stream"], stream);
        assert_eq!(alerts[0]["first_seen"], first_seen);
        assert_eq!(alerts[0]["function"], "checkout");
    }
}

/// Syslog lines on stdin take their year from the clock (they used to get
/// 1970), and --year sets it.
#[test]
fn syslog_lines_on_stdin_get_a_year_from_the_clock_or_from_year() {
    let input = std::fs::read(root().join("fixtures/plain/bastion-auth.log")).unwrap();
    let run = |extra: &[&str]| -> String {
        let mut child = Command::new(env!("CARGO_BIN_EXE_logwarden"))
            .args(["replay", "--output", "json"])
            .args(extra)
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &input).unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let first: serde_json::Value =
            serde_json::from_str(text(&out.stdout).lines().next().expect("an alert")).unwrap();
        first["first_seen"].as_str().unwrap().to_string()
    };
    let now = chrono::Utc::now();
    let inferred = run(&[]);
    let year: i32 = inferred[..4].parse().unwrap();
    // Nov 22 is at most a day after the clock: this year or the one before.
    use chrono::Datelike as _;
    assert!(year == now.year() || year == now.year() - 1, "{inferred}");
    assert!(inferred.ends_with("-11-22T10:07:00.000Z"), "{inferred}");
    assert_eq!(run(&["--year", "2024"]), "2024-11-22T10:07:00.000Z");
}

/// A rotated, gzipped syslog file (`auth.log.2.gz`) is read as the plain log
/// it holds: the same alerts as the file itself.
#[test]
fn gzipped_plain_logs_raise_what_the_plain_file_raises() {
    use std::io::Write as _;
    let plain = root().join("fixtures/plain/bastion-auth.log");
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("auth.log.2.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let rules = |path: &std::path::Path| -> Vec<(String, String)> {
        let out = logwarden(&[
            "replay",
            "--output",
            "json",
            "--year",
            "2026",
            "--log-stream",
            "auth",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["rule"].to_string(), v["id"].to_string())
            })
            .collect()
    };
    let want = rules(&plain);
    assert!(!want.is_empty());
    assert_eq!(rules(&gz), want);
}

#[test]
fn replay_prints_a_shadow_rules_alerts_and_counts_what_it_would_have_sent() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("ssh-trial.yaml"),
        "id: ssh-trial\ntitle: Failed sshd logins (trial)\nseverity: high\nkind: threshold\n\
         mode: shadow\nmatch: [{regex: 'Failed password for \\S+ from (?P<source_ip>\\S+)'}]\n\
         group_by: [source_ip]\nthreshold: 5\nwindow: 60s\n",
    )
    .unwrap();
    let log = d.path().join("auth.log");
    let mut lines: Vec<String> = (0..6)
        .map(|i| {
            format!("2026-11-22T10:00:0{i}Z bastion sshd[1]: Failed password for root from 198.51.100.9 port 22 ssh2")
        })
        .collect();
    // Something much later, so that the end of replay finds the burst quiet.
    lines.push("2026-11-22T10:30:00Z bastion sshd[1]: Connection closed".into());
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let out = logwarden(&[
        "replay",
        "--profile",
        "--output",
        "json",
        "--rules",
        rules.to_str().unwrap(),
        "--log-group",
        "/ec2/bastion",
        log.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<(&str, bool)> = printed
        .iter()
        .map(|a| (a["status"].as_str().unwrap(), a["shadow"] == true))
        .collect();
    assert_eq!(statuses, [("firing", true), ("resolved", true)]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "1 alert(s), 1 resolved, 1 suppressed, 0 input error(s), 2 shadow alert(s) not delivered (ssh-trial 2)"
        ),
        "{stderr}"
    );
    let row = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("ssh-trial"))
        .expect("a profile row");
    assert_eq!(row.split_whitespace().nth(4), Some("2"), "{row}");
}
