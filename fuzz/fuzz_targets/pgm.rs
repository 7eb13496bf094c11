//! libFuzzer entry for `harness/pgm.rs` (what is fuzzed and why is documented there).
#![no_main]

#[path = "../harness/pgm.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
