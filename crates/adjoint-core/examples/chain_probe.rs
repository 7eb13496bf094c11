//! Per-op cost of the transforms suite's 1000-op scalar chain (`y * 1.0001 + 0.0001` on a
//! 1-element f32 tensor): eager, forward under `vjp` (tape kept), and the whole `grad` call.
//! Prints the fastest of 40 samples of 20 calls each — the dispatch overhead is CPU-bound, and
//! on a shared machine the minimum moves far less than the median between A/B builds.
//! `chain_probe count` instead runs 2,000 `grad` calls, and `chain_probe count-eager` 2,000 eager
//! chains, for `perf record` or `valgrind --tool=callgrind` (whose instruction counts compare
//! builds without the noise of timings).
//!
//! `cargo run --release -p adjoint-core --example chain_probe`
use adjoint_core::{grad, vjp, Tensor};
use std::time::Instant;

fn chain(x: &Tensor) -> Tensor {
    let mut y = x.clone();
    for _ in 0..500 {
        y = y * 1.0001 + 0.0001;
    }
    y
}

fn med(mut f: impl FnMut()) -> f64 {
    for _ in 0..50 {
        f();
    }
    let mut v = Vec::new();
    for _ in 0..40 {
        let t = Instant::now();
        for _ in 0..20 {
            f();
        }
        v.push(t.elapsed().as_secs_f64() / 20.0 / 1000.0 * 1e6);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[0]
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let x = Tensor::from_vec(vec![0.5f32], &[1]);
    let g = grad(|x: &Tensor| chain(x).sum());
    if mode == "count" {
        // 2000 gradient calls of 1000 ops: for `perf stat -e instructions`.
        for _ in 0..2000 {
            std::hint::black_box(g(&x));
        }
        return;
    }
    if mode == "count-eager" {
        for _ in 0..2000 {
            std::hint::black_box(chain(&x));
        }
        return;
    }
    let a = med(|| {
        std::hint::black_box(chain(&x));
    });
    let b = med(|| {
        let (y, _pb) = vjp(|x: &Tensor| chain(x).sum(), &x);
        std::hint::black_box(y);
    });
    let c = med(|| {
        std::hint::black_box(g(&x));
    });
    println!(
        "eager {a:.3} taped {b:.3} fwd+bwd {c:.3} us/op  sizes: Tensor {} Array {}",
        std::mem::size_of::<Tensor>(),
        std::mem::size_of::<adjoint_tensor::Array>()
    );
}
