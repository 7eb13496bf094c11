//! Micro benchmark (not a test): a chain of 10 small elementwise ops, forward and backward per
//! call, eager `value_and_grad` against `jit(value_and_grad)` (W1_chain-like). The jitted call
//! looks its signature up in the cache and replays the staged program op by op; fusion and a
//! compiled executor are later work, so no large win is expected yet.
//!
//! `cargo run --release -p adjoint-core --example jit_chain`

use std::hint::black_box;
use std::time::Instant;

use adjoint_core::{jit, jit_stats, value_and_grad, Tensor};

fn chain(x: &Tensor) -> Tensor {
    let mut y = x * 1.0001 + 0.0001;
    y = y.sin() * 0.5;
    y = y.exp() - 1.0;
    y = y.tanh() * 2.0;
    (y * x).sum()
}

/// Median over `rounds` of the mean time per call over `calls` calls, in microseconds.
fn per_call(rounds: usize, calls: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..calls {
        f();
    }
    let mut t: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            start.elapsed().as_secs_f64() * 1e6 / calls as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[rounds / 2]
}

fn main() {
    for n in [1usize, 1000] {
        let x = Tensor::from_vec((0..n).map(|i| i as f64 / n as f64).collect::<Vec<f64>>(), &[n]);
        let eager = value_and_grad(chain);
        let jitted = jit(value_and_grad(chain));
        let (a, b) = (eager(&x), jitted(&x));
        assert_eq!(a.0.item().to_bits(), b.0.item().to_bits());
        assert_eq!(a.1.to_vec::<f64>(), b.1.to_vec::<f64>());
        let te = per_call(21, 2000, || {
            black_box(eager(black_box(&x)));
        });
        let tj = per_call(21, 2000, || {
            black_box(jitted(black_box(&x)));
        });
        let ops = adjoint_core::make_ir(value_and_grad(chain))(&x);
        let ops_opt = adjoint_core::jit::passes::optimize(ops.clone());
        println!(
            "f64[{n}]: eager value_and_grad {te:.2} µs/call, jit(value_and_grad) {tj:.2} µs/call \
             (ratio {:.2}); staged program {} equations, {} after passes",
            te / tj,
            ops.eqns.len(),
            ops_opt.eqns.len()
        );
    }
    for s in jit_stats() {
        println!("jit at {}: {} trace(s), {} cache hits", s.location, s.traces, s.hits);
    }
}
