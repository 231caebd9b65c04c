//! `logwarden eval`: the rules scored against a truth file, through the binary.

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

/// Two files of fixtures/auth (not the brute-force-success one) raise one failed-auth-burst (203.0.113.7 in
/// /aws/lambda/auth-api) and one password-spraying alert. The truth labels
/// the burst, an attacker the rules do not see, and no spraying at all.
const TRUTH: &str = "\
incidents:
  - rule: failed-auth-burst
    key: {source_ip: 203.0.113.7}
    log_group: /aws/lambda/auth-api
    from: 2026-11-22T10:00:00Z
    to: 2026-11-22T10:05:00Z
  - rule: failed-auth-burst
    key: {source_ip: 192.0.2.77}
    from: 2026-11-22T10:00:00Z
    to: 2026-11-22T10:05:00Z
    note: labelled by hand
rules: [password-spraying]
";

fn truth_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    f
}

#[test]
fn eval_scores_each_rule_and_lists_misses_and_false_alerts() {
    let t = truth_file(TRUTH);
    let path = t.path().to_str().unwrap();
    let out = logwarden(&[
        "eval",
        "--truth",
        path,
        "fixtures/auth/auth-api-login-burst.json",
        "fixtures/auth/customer-portal-password-spraying.json",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .take(3)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[1],
        ["failed-auth-burst", "1", "0", "1", "1.00", "0.50", "0"]
    );
    assert_eq!(
        rows[2],
        ["password-spraying", "0", "1", "0", "0.00", "1.00", "0"]
    );
    assert!(
        stdout.contains(&format!(
            "miss: failed-auth-burst {{source_ip=192.0.2.77}} from 2026-11-22T10:00:00.000Z to 2026-11-22T10:05:00.000Z ({path}:7)"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("      note: labelled by hand"), "{stdout}");
    let false_alert = stdout
        .lines()
        .position(|l| l.starts_with("false alert: password-spraying {source_ip=203.0.113.150} in /aws/lambda/customer-portal"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let evidence = stdout.lines().nth(false_alert + 1).unwrap();
    assert!(evidence.trim_start().starts_with("evidence: "), "{stdout}");
    assert!(evidence.contains("203.0.113.150"), "{stdout}");

    let out = logwarden(&[
        "eval",
        "--truth",
        path,
        "--output",
        "json",
        "fixtures/auth/auth-api-login-burst.json",
        "fixtures/auth/customer-portal-password-spraying.json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let rules: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["rule"], "failed-auth-burst");
    assert_eq!(
        (rules[0]["tp"].as_u64(), rules[0]["fn"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(rules[0]["recall"], 0.5);
    assert_eq!(rules[1]["precision"], 0.0);
}

#[test]
fn eval_exits_three_under_a_bound_and_names_each_miss() {
    let t = truth_file(TRUTH);
    let path = t.path().to_str().unwrap();
    let out = logwarden(&[
        "eval",
        "--truth",
        path,
        "--min-recall",
        "0.9",
        "fixtures/auth/auth-api-login-burst.json",
        "fixtures/auth/customer-portal-password-spraying.json",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("failed-auth-burst: recall 0.50 is under --min-recall 0.9"),
        "{stderr}"
    );
    assert!(
        stderr.contains("miss: failed-auth-burst {source_ip=192.0.2.77}"),
        "{stderr}"
    );
    assert!(!stderr.contains("password-spraying:"), "{stderr}");

    let out = logwarden(&[
        "eval",
        "--truth",
        path,
        "--min-precision",
        "1",
        "fixtures/auth/auth-api-login-burst.json",
        "fixtures/auth/customer-portal-password-spraying.json",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("password-spraying: precision 0.00 is under --min-precision 1"),
        "{stderr}"
    );

    let out = logwarden(&[
        "eval",
        "--truth",
        path,
        "--min-recall",
        "0.5",
        "--min-precision",
        "0",
        "fixtures/auth/auth-api-login-burst.json",
        "fixtures/auth/customer-portal-password-spraying.json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_bad_truth_file_is_named_with_its_line_and_exits_two() {
    let t = truth_file(&TRUTH.replace("    note:", "    notes:"));
    let path = t.path().to_str().unwrap();
    let out = logwarden(&[
        "eval",
        "--truth",
        path,
        "fixtures/auth/auth-api-login-burst.json",
        "fixtures/auth/customer-portal-password-spraying.json",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with(&format!("{path}:11: ")), "{stderr}");
    assert!(stderr.contains("notes"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = logwarden(&[
        "eval",
        "--truth",
        "no/such/truth.yaml",
        "fixtures/auth/auth-api-login-burst.json",
        "fixtures/auth/customer-portal-password-spraying.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("no/such/truth.yaml:1: cannot read"));

    let out = logwarden(&[
        "eval",
        "--truth",
        path,
        "--min-recall",
        "2",
        "fixtures/auth/auth-api-login-burst.json",
        "fixtures/auth/customer-portal-password-spraying.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn eval_help_teaches_with_a_truth_file() {
    let out = logwarden(&["eval", "--help"]);
    let help = text(&out.stdout);
    assert!(out.status.success());
    for want in [
        "incidents:",
        "    - rule: failed-auth-burst",
        "key: {source_ip:",
        "from:",
        "--min-recall",
        "Exit status",
    ] {
        assert!(help.contains(want), "{want}: {help}");
    }
}

#[test]
fn a_rule_the_rule_set_lacks_is_a_truth_file_error() {
    let t = truth_file(&TRUTH.replace("rules: [password-spraying]", "rules: [password-spray]"));
    let path = t.path().to_str().unwrap();
    let out = logwarden(&[
        "eval",
        "--truth",
        path,
        "fixtures/auth/auth-api-login-burst.json",
        "fixtures/auth/customer-portal-password-spraying.json",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "{path}:1: rule `password-spray` is not in the rule set"
        )),
        "{stderr}"
    );
}
