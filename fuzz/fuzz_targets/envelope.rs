//! Envelope decoding: any bytes through the CLI's and the handler's entry point, fast parser against the serde_json reference.
//! The checks are in `../oracles.rs`, shared with `tests/it/properties.rs`.
#![no_main]

#[allow(dead_code)] // each target uses one of the checks
#[path = "../oracles.rs"]
mod oracles;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracles::envelope(data));
