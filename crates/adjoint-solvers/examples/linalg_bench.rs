//! `solve` and `cholesky` of a 1000×1000 f64 matrix and their gradients, timed with the
//! benchmarks' one timing loop; `benches/python/linalg_peers.py` times NumPy the same way.
//!
//! ```text
//! cargo run --release -p adjoint-solvers --example linalg_bench
//! ```

use std::time::Duration;

use adjoint_core::{grad, Tensor};
use adjoint_solvers::linalg::{cholesky, solve};

#[path = "../../adjoint-bench/src/timing.rs"]
#[allow(dead_code)] // the example uses part of it
mod timing;

fn main() {
    let n = 1000;
    let m = Tensor::from_vec(
        (0..n * n).map(|k| ((k * 7919 % 1000) as f64 / 1000.0) - 0.5).collect::<Vec<_>>(),
        &[n, n],
    );
    let a = m.matmul(&m.t()) + Tensor::eye(n, adjoint_core::DType::F64) * n as f64;
    let b = Tensor::ones(&[n, 1]).to_f64();
    let plan = timing::Plan { warmups: 2, samples: 7, min_sample: Duration::from_millis(50) };
    let report = |name: &str, s: timing::Stats| {
        println!("{{\"lib\":\"adjoint\",\"name\":\"{name}\",\"n\":{n},\"median_s\":{:.6},\"p10_s\":{:.6},\"p90_s\":{:.6}}}", s.median_s, s.p10_s, s.p90_s)
    };
    report("solve", timing::measure(plan, 1.0, || solve(&a, &b)));
    report("cholesky", timing::measure(plan, 1.0, || cholesky(&a)));
    report("solve_grad_a", timing::measure(plan, 1.0, || grad(|a: &Tensor| solve(a, &b).sum())(&a)));
    report("cholesky_grad", timing::measure(plan, 1.0, || grad(|a: &Tensor| cholesky(a).sum())(&a)));
}
