//! The integration tests: one test binary, `it`, of one module per area (as
//! ripgrep does). Each area used to be its own binary, and each of those
//! linked the AWS SDK and the whole crate again; one binary links them once.
//!
//! Run one area with a filter on its module path:
//! `cargo test --test it golden::`, `cargo test --test it bad_input:: -- --nocapture`.
//! The soak is `#[ignore]`d: `scripts/soak.sh` runs
//! `cargo test --test it soak:: -- --ignored`.
//!
//! The areas share one process, so nothing here may change what the process
//! shares: no `std::env::set_var`/`remove_var` (a child's environment is set
//! on its `Command`), no `set_current_dir` (children get `current_dir`), and
//! names of temporary resources come from `support::unique` (process id, a
//! process-wide counter and the clock), temporary files from `tempfile`, ports
//! from the kernel (`127.0.0.1:0`). `layout::` checks that no test file is
//! added beside this binary.

mod accounts;
mod attacker;
mod backtest;
mod bad_input;
mod batching;
mod cli;
mod dynamodb;
mod email;
mod eval;
mod faults;
mod golden;
mod handler;
mod kinesis_e2e;
mod lambda_e2e;
mod layout;
mod lifecycle;
mod pagerduty;
mod profile;
mod properties;
mod readme;
mod real;
mod security;
mod sequence;
mod silence;
mod slack;
mod slack_bot;
mod sns;
mod soak;
mod support;
mod whole_life;
