//! The platform parser (text and JSON Lambda log lines) on any text.
//! The checks are in `../oracles.rs`, shared with `tests/it/properties.rs`.
#![no_main]

#[allow(dead_code)] // each target uses one of the checks
#[path = "../oracles.rs"]
mod oracles;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracles::platform(data));
