//! safetensors checkpoints: `tensors_from_bytes` (every tensor) and `from_bytes_with` into a
//! fixed template must return `Ok` or `Err` — never panic, abort, hang or over-allocate.
#![no_main]

use std::path::Path;

use adjoint_core::Tensor;
use adjoint_nn::checkpoint::{self, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = checkpoint::tensors_from_bytes(data);
    let template = (Tensor::zeros(&[2, 3]), Tensor::from_vec(vec![0i64; 4], &[4]), Tensor::scalar(0.0f64));
    let lenient = LoadOptions { allow_missing: true, allow_unexpected: true };
    let _ = checkpoint::from_bytes_with(Path::new("fuzz"), data, &template, lenient);
    let _ = checkpoint::from_bytes_with(Path::new("fuzz"), data, &template, LoadOptions::default());
});
