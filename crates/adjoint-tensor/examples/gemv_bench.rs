//! Matrix-vector products (W6's `A·x` and the gradient's `Aᵀ·g`, A `[2000, 1000]` f32) in every
//! orientation the tape forms them, each timed alone: medians of interleaved samples; the pool
//! size is `RAYON_NUM_THREADS`.
//!
//! `cargo run --release -p adjoint-tensor --example gemv_bench [-- SAMPLES]`

use std::time::Instant;

use adjoint_tensor::Array;

#[path = "common/mod.rs"]
mod common;
use common::{data, median};

/// One timed product.
type Case<'a> = (&'static str, Box<dyn Fn() -> Array + 'a>);

fn main() {
    let samples: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let (m, k) = (2000, 1000);
    adjoint_tensor::threads::init(0).expect("first use of rayon");
    println!("threads {}", rayon::current_num_threads());
    let a = data(1, &[m, k]);
    let x = data(2, &[k]);
    let g = data(3, &[m]);
    let a64 = a.cast(adjoint_tensor::DType::F64);
    let x64 = x.cast(adjoint_tensor::DType::F64);
    let half = a.narrow(1, 0, k / 2);
    let g2 = data(4, &[m / 2]);
    let top = a.narrow(0, 0, m / 2);
    let cases: [Case; 7] = [
        ("A·x (row dots)", Box::new(|| a.matmul(&x))),
        ("g·A (row axpys)", Box::new(|| g.matmul(&a))),
        ("Aᵀ·g (col-major lhs)", Box::new(|| a.transpose(0, 1).matmul(&g))),
        ("x·Aᵀ (col-major rhs)", Box::new(|| x.matmul(&a.transpose(0, 1)))),
        ("A·x f64", Box::new(|| a64.matmul(&x64))),
        ("g·A[:, :k/2]", Box::new(|| g.matmul(&half))),
        ("g·A[:m/2, :]", Box::new(|| g2.matmul(&top))),
    ];
    let mut times = vec![Vec::new(); cases.len()];
    for _ in 0..samples {
        for (c, (_, f)) in cases.iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(f());
            times[c].push(t.elapsed().as_secs_f64());
        }
    }
    for (c, (name, _)) in cases.iter().enumerate() {
        let t = median(std::mem::take(&mut times[c]));
        let bytes = (m * k * [4, 4, 4, 4, 8, 2, 2][c]) as f64;
        println!("{name:<24} {:8.1} µs  {:6.1} GB/s", t * 1e6, bytes / t / 1e9);
    }
}
