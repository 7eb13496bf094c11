//! libFuzzer entry for `harness/adbench.rs` (what is fuzzed and why is documented there).
#![no_main]

#[path = "../harness/adbench.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
