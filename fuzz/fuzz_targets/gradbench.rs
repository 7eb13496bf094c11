//! libFuzzer entry for `harness/gradbench.rs` (what is fuzzed and why is documented there).
#![no_main]

#[path = "../harness/gradbench.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
