//! `logwarden replay --profile`: what each rule cost, printed after the summary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

fn logwarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .env_remove("LOGWARDEN_MAX_DECODED_BYTES")
        .output()
        .unwrap()
}

struct Row {
    tested: u64,
    hits: u64,
    matches: u64,
    alerts: u64,
    share: f64,
}

/// The profile table's rule rows, by rule id.
fn rows(stderr: &str) -> BTreeMap<String, Row> {
    let table = stderr
        .split("logwarden: profile\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no profile in {stderr}"));
    let mut out = BTreeMap::new();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() != 6 || cols[0].starts_with('(') {
            continue;
        }
        let n = |i: usize| {
            cols[i]
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{line}: {e}"))
        };
        let share = cols[5].trim_end_matches('%').parse::<f64>().unwrap();
        out.insert(
            cols[0].to_string(),
            Row {
                tested: n(1),
                hits: n(2),
                matches: n(3),
                alerts: n(4),
                share,
            },
        );
    }
    out
}

#[test]
fn replay_profile_prints_consistent_figures_for_every_rule() {
    let out = logwarden(&["replay", "--profile", "--output", "json", "fixtures/"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The profile comes after the summary line.
    let summary = stderr.find("24 alert(s)").expect("summary");
    assert!(
        stderr.find("logwarden: profile").unwrap() > summary,
        "{stderr}"
    );
    let rows = rows(&stderr);
    assert_eq!(rows.len(), 14, "{stderr}");
    let alerts_out = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
    assert_eq!(rows.values().map(|r| r.alerts).sum::<u64>(), alerts_out);
    for (id, r) in &rows {
        assert!(r.matches <= r.hits && r.hits <= r.tested, "{id}: {stderr}");
        assert!(
            r.alerts == 0 || r.matches > 0,
            "{id} alerted without a match"
        );
        assert!((0.0..=100.0).contains(&r.share), "{id}");
    }
    // Line rules see application lines only, and the prefilter keeps most
    // of them away from the matchers.
    let all = rows["missing-end"].tested;
    let auth = &rows["failed-auth-burst"];
    assert!(auth.tested < all && auth.hits < auth.tested, "{stderr}");
    assert!(auth.alerts > 0 && rows["secret-in-logs"].alerts > 0);
    // Rules sharing matchers see the same lines through the same prefilter.
    let spray = &rows["password-spraying"];
    assert_eq!((auth.tested, auth.hits), (spray.tested, spray.hits));
    assert!(stderr.contains("detection time: "), "{stderr}");
}

#[test]
fn without_profile_no_table_is_printed() {
    let out = logwarden(&["replay", "--output", "json", "fixtures/auth"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("profile"));
}
