//! The third-party samples in `fixtures/real/`: each sample's alerts, as
//! `logwarden replay --output json` prints them, against its golden file in
//! `tests/golden/real/` (the same path, `.json`), and the rules' score on them
//! (`logwarden eval --output json` with `fixtures/real/truth.yaml`) against
//! `tests/golden/real/eval.json`. A sample that raises nothing has `[]`: the
//! truth file says whether that is right.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary with a fixed region, so console links do not depend on
/// the environment.
fn logwarden(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_logwarden"))
        .args(args)
        .current_dir(root())
        .env("AWS_REGION", "us-east-1")
        .env_remove("LOGWARDEN_MAX_DECODED_BYTES")
        .output()
        .unwrap()
}

fn json_lines(out: &[u8]) -> Value {
    let text = String::from_utf8(out.to_vec()).unwrap();
    Value::Array(
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

/// Compares `got` with the golden file `name` under tests/golden/real
/// (rewritten under `LOGWARDEN_BLESS=1`).
fn check(name: &Path, got: &Value) {
    let path = root().join("tests/golden/real").join(name);
    if support::bless() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(got).unwrap() + "\n").unwrap();
    }
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (a sample without a golden file)", path.display())
        }))
        .unwrap();
    assert_eq!(
        got,
        &want,
        "{} differs; got:\n{}",
        path.display(),
        serde_json::to_string_pretty(got).unwrap()
    );
}

/// The samples, relative to fixtures/real, as a replay of the directory reads them.
fn samples() -> Vec<PathBuf> {
    let dir = root().join("fixtures/real");
    let (files, errors) = logwarden::replay::expand_paths(std::slice::from_ref(&dir));
    assert!(errors.is_empty(), "{errors:?}");
    files
        .into_iter()
        .map(|f| f.strip_prefix(&dir).unwrap().to_path_buf())
        .collect()
}

#[test]
fn each_real_sample_raises_its_golden_alerts() {
    let samples = samples();
    assert!(samples.len() >= 8, "{samples:?}");
    let mut alerts = 0;
    for s in &samples {
        let path = Path::new("fixtures/real").join(s);
        let out = logwarden(&["replay", "--output", "json", path.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            s.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let got = json_lines(&out.stdout);
        alerts += got.as_array().unwrap().len();
        check(&s.with_extension("json"), &got);
    }
    // Empty goldens compare equal to a run that read nothing: the set as a
    // whole must raise what it is known to raise.
    assert!(alerts >= 4, "{alerts} alerts from {samples:?}");
    // No golden file is left without its sample.
    let mut stack = vec![root().join("tests/golden/real")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(root().join("tests/golden/real")).unwrap();
            if rel == Path::new("eval.json") {
                continue;
            }
            assert!(
                samples.iter().any(|s| s.with_extension("json") == rel),
                "{} has no sample in fixtures/real",
                p.display()
            );
        }
    }
}

#[test]
fn the_rules_score_on_the_real_samples_is_the_recorded_one() {
    let out = logwarden(&[
        "eval",
        "--truth",
        "fixtures/real/truth.yaml",
        "--output",
        "json",
        "fixtures/real",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = json_lines(&out.stdout);
    assert!(got.as_array().unwrap().len() >= 3, "{got}");
    check(Path::new("eval.json"), &got);
}
