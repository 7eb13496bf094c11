//! Cost of anomaly mode (`adjoint::debug`) on an MLP training step.
//!
//! ```text
//! cargo run --release -p adjoint --example anomaly_overhead -- [off|on] [--quick]
//! ```
//!
//! `off` runs the step as a normal program does (anomaly mode not requested, so `bind` pays one
//! relaxed atomic load); `on` runs the same step inside [`adjoint::debug::detect_anomaly`], where
//! every primitive's output is scanned for NaN/inf and the call site of each op is recorded.
//! Two workloads: a small MLP (per-op overhead dominates) and the 784-512-512-10 MLP of the
//! benchmark suite (kernels dominate). Prints one JSON line per workload: median seconds per
//! step over samples, as in `bench_suite.rs`. The results and the command that produced them are
//! in `benches/ANOMALY.md`.

use std::hint::black_box;
use std::time::Duration;

use adjoint::prelude::*;
use adjoint::tensor::random::{normal, Key};

// The one timing loop of adjoint's benchmarks (see its module docs).
#[path = "../../adjoint-bench/src/timing.rs"]
#[allow(dead_code)] // each example uses part of it
mod timing;

/// Median seconds per call of `f`.
fn measure(quick: bool, f: impl FnMut()) -> f64 {
    let plan = timing::Plan {
        warmups: 2,
        samples: if quick { 5 } else { 11 },
        min_sample: Duration::from_millis(if quick { 20 } else { 100 }),
    };
    timing::measure(plan, 1.0, f).median_s
}

fn mlp(dims: &[usize], seed: u64) -> Vec<Tensor> {
    let mut p = Vec::new();
    for (i, w) in dims.windows(2).enumerate() {
        let scale = (2.0 / w[0] as f64).sqrt();
        let k = Key::new(seed + i as u64);
        p.push(Tensor::from_array(normal(&k, &[w[0], w[1]], DType::F32)) * scale);
        p.push(Tensor::zeros(&[w[1]]));
    }
    p
}

fn loss(p: &[Tensor], x: &Tensor, y: &Tensor) -> Tensor {
    let mut h = x.clone();
    let n = p.len() / 2;
    for i in 0..n {
        h = h.matmul(&p[2 * i]) + &p[2 * i + 1];
        if i + 1 < n {
            h = h.tanh();
        }
    }
    -(h.log_softmax(1) * y).sum() / x.shape()[0] as f64
}

/// One SGD step: gradient of the loss, then `p - lr * g`.
fn step(p: &[Tensor], x: &Tensor, y: &Tensor) -> Vec<Tensor> {
    let g = grad(|p: &Vec<Tensor>| loss(p, x, y))(&p.to_vec());
    p.iter().zip(&g).map(|(w, g)| w - &(g * 0.01)).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let on = args.iter().any(|a| a == "on");
    let quick = args.iter().any(|a| a == "--quick");
    for (name, dims, batch) in
        [("mlp_small", vec![16, 32, 32, 4], 8), ("mlp_784", vec![784, 512, 512, 10], 128)]
    {
        let p = mlp(&dims, 1);
        let x = Tensor::from_array(normal(&Key::new(99), &[batch, dims[0]], DType::F32));
        let labels: Vec<f32> = (0..batch * dims[dims.len() - 1])
            .map(|i| if i % dims[dims.len() - 1] == 0 { 1.0 } else { 0.0 })
            .collect();
        let y = Tensor::from_vec(labels, &[batch, dims[dims.len() - 1]]);
        let sec = measure(quick, || {
            black_box(run(on, &p, &x, &y));
        });
        println!(
            "{{\"name\":\"{name}\",\"anomaly\":\"{}\",\"sec\":{sec:.9}}}",
            if on { "on" } else { "off" }
        );
    }
}

fn run(on: bool, p: &[Tensor], x: &Tensor, y: &Tensor) -> Vec<Tensor> {
    if on {
        adjoint::debug::detect_anomaly(|| step(p, x, y)).expect("no anomaly in a healthy step")
    } else {
        step(p, x, y)
    }
}
