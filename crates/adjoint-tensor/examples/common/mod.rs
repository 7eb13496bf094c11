//! What the kernel benchmarks in `examples/` share: deterministic data and the median.
#![allow(dead_code)] // each example uses its own subset

use adjoint_tensor::Array;

/// `f32` values uniform in `[-scale/2, scale/2)` from an xorshift stream seeded by `seed`.
pub fn data_scaled(seed: u64, shape: &[usize], scale: f32) -> Array {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
        })
        .collect();
    Array::from_vec(v, shape)
}

/// [`data_scaled`] with `scale = 1`: uniform in `[-0.5, 0.5)`.
pub fn data(seed: u64, shape: &[usize]) -> Array {
    data_scaled(seed, shape, 1.0)
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
