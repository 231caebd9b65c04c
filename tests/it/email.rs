//! Snapshot tests of the email body (the SNS `email` protocol) for each
//! built-in rule, rendered from the golden fixture alerts.
//! `LOGWARDEN_BLESS=1 cargo test --test it email::` rewrites the snapshots (only
//! `1` does; `0` or unset compares); review the diff.

use crate::support;

use logwarden::alert::email;
use logwarden::rules::RuleSet;

#[test]
fn email_bodies_match_their_snapshots_for_every_builtin_rule() {
    let alerts = support::golden_alerts();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/email");
    let rules = RuleSet::builtin().unwrap().rules;
    assert!(!rules.is_empty(), "no built-in rules to compare");
    for rule in &rules {
        let a = alerts
            .iter()
            .find(|a| a.rule == rule.id)
            .unwrap_or_else(|| panic!("no fixture alert for {}", rule.id));
        let got = format!(
            "Subject: {}\n\n{}",
            email::subject(a),
            email::body(a, "eu-west-1")
        );
        let path = dir.join(format!("{}.txt", rule.id));
        if support::bless() {
            std::fs::write(&path, &got).unwrap();
        }
        let want =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            got,
            want,
            "email for {} differs from {}",
            rule.id,
            path.display()
        );
        assert!(
            got.lines().all(|l| !l.contains('\t')),
            "tabs do not survive mail clients"
        );
    }
}
