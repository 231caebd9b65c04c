//! The integration tests stay one binary: Cargo makes a test binary of every
//! `tests/*.rs` and `tests/*/main.rs`, and each such binary links the crate
//! and the AWS SDK again (minutes of build on a 2-core CI machine). A new
//! area is a module of `tests/it/` (a `mod` line in `tests/it/main.rs`).

use std::path::Path;

/// The test targets Cargo would find in a `tests/` directory: `NAME.rs`
/// files and `NAME/main.rs` directories, by name, sorted.
fn test_targets(tests: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            if p.is_dir() {
                p.join("main.rs").is_file()
            } else {
                p.extension().is_some_and(|x| x == "rs")
            }
        })
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}

#[test]
fn the_integration_tests_are_one_binary() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    assert_eq!(
        test_targets(&tests),
        ["it"],
        "every integration test is a module of tests/it/ (see tests/it/main.rs)"
    );
}

#[test]
fn a_test_file_or_directory_beside_the_binary_is_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("it")).unwrap();
    std::fs::write(dir.path().join("it/main.rs"), "").unwrap();
    std::fs::create_dir_all(dir.path().join("support")).unwrap();
    std::fs::write(dir.path().join("support/http_sink.py"), "").unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("notes.md"), "").unwrap();
    assert_eq!(test_targets(dir.path()), ["it"]);
    std::fs::write(dir.path().join("profile.rs"), "").unwrap();
    std::fs::create_dir_all(dir.path().join("more")).unwrap();
    std::fs::write(dir.path().join("more/main.rs"), "").unwrap();
    assert_eq!(test_targets(dir.path()), ["it", "more", "profile.rs"]);
}
