//! safetensors checkpoints: `tensors_from_bytes` (every tensor) and `from_bytes_with` into a
//! fixed template must return `Ok` or `Err` — never panic, abort, hang or over-allocate.
//!
//! The one body of this fuzz target: `fuzz_targets/checkpoint.rs` runs it under libFuzzer,
//! and the corpus replay test in CI includes this file (`#[path]`) and runs every kept input.

use std::path::Path;

use adjoint_core::Tensor;
use adjoint_nn::checkpoint::{self, LoadOptions};

/// One fuzz input.
pub fn run(data: &[u8]) {
    let _ = checkpoint::tensors_from_bytes(data);
    let template = (Tensor::zeros(&[2, 3]), Tensor::from_vec(vec![0i64; 4], &[4]), Tensor::scalar(0.0f64));
    let lenient = LoadOptions { allow_missing: true, allow_unexpected: true };
    let _ = checkpoint::from_bytes_with(Path::new("fuzz"), data, &template, lenient);
    let _ = checkpoint::from_bytes_with(Path::new("fuzz"), data, &template, LoadOptions::default());
}
