//! libFuzzer entry for `harness/csv.rs` (what is fuzzed and why is documented there).
#![no_main]

#[path = "../harness/csv.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
