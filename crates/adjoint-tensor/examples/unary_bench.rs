//! Elementwise kernels timed alone: `exp` (also in `f64`), `tanh`, `sigmoid`, `add` and a scalar
//! subtracted on either side, on 1M and 16M `f32` elements into fresh outputs, with the bytes
//! moved per second. Medians of interleaved samples; the pool size is `RAYON_NUM_THREADS`.
//!
//! `cargo run --release -p adjoint-tensor --example unary_bench [-- SAMPLES [N...]]` (sizes
//! default to 1M and 16M; a small `N` times the kernels in cache, without the memory system).

use std::time::Instant;

use adjoint_tensor::ops::binary::BinaryOp;
use adjoint_tensor::ops::unary::UnaryOp;
use adjoint_tensor::Array;

#[path = "common/mod.rs"]
mod common;
use common::{data_scaled, median};

/// One timed kernel and the bytes it moves.
type Case<'a> = (&'static str, usize, Box<dyn Fn() -> Array + 'a>);

fn main() {
    let samples: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    let sizes: Vec<usize> = std::env::args().skip(2).filter_map(|s| s.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1usize << 20, 1 << 24] } else { sizes };
    println!("threads {}", rayon::current_num_threads());
    for n in sizes {
        let x = data_scaled(1, &[n], 20.0);
        let y = data_scaled(2, &[n], 20.0);
        let two = Array::scalar(2f32);
        let x64 = x.cast(adjoint_tensor::DType::F64);
        let cases: [Case; 7] = [
            ("exp", 8 * n, Box::new(|| x.unary(UnaryOp::Exp))),
            ("exp f64", 16 * n, Box::new(|| x64.unary(UnaryOp::Exp))),
            ("tanh", 8 * n, Box::new(|| x.unary(UnaryOp::Tanh))),
            ("sigmoid", 8 * n, Box::new(|| x.unary(UnaryOp::Sigmoid))),
            ("add", 12 * n, Box::new(|| x.binary(&y, BinaryOp::Add))),
            ("x-2", 8 * n, Box::new(|| x.binary(&two, BinaryOp::Sub))),
            ("2-x", 8 * n, Box::new(|| two.binary(&x, BinaryOp::Sub))),
        ];
        // The machine's copy bandwidth: memcpy into a buffer that exists (streams when large).
        let (src, dst) = (x.to_vec::<f32>(), std::cell::RefCell::new(vec![0f32; n]));
        let copy: Case = (
            "memcpy",
            8 * n,
            Box::new(|| {
                dst.borrow_mut().copy_from_slice(&src);
                Array::scalar(0f32)
            }),
        );
        let cases: Vec<Case> = cases.into_iter().chain([copy]).collect();
        let mut times = vec![Vec::new(); cases.len()];
        // Small sizes: enough calls per sample to last about as long as a 4M-element one.
        let reps = ((1usize << 22) / n).max(1);
        for _ in 0..samples {
            for (c, t) in cases.iter().zip(&mut times) {
                let t0 = Instant::now();
                for _ in 0..reps {
                    std::hint::black_box((c.2)());
                }
                t.push(t0.elapsed().as_secs_f64() / reps as f64);
            }
        }
        for (c, t) in cases.iter().zip(times) {
            let m = median(t);
            println!("{:8} n={n:9}  {:9.1} µs  {:6.1} GB/s", c.0, m * 1e6, c.1 as f64 / m / 1e9);
        }
    }
}
