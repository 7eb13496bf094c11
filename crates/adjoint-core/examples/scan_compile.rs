//! Micro benchmark (not a test): what staging a loop costs under `jit`. A 1,000-step tensor
//! loop (a 64-wide carry, a few elementwise ops per step, scalar-tier-like sizes) written as a
//! Rust `for` loop (which `jit` unrolls: 1,000 × the body's equations) and as a `scan` (one
//! equation). Reports the first call of `jit(value_and_grad(·))` (trace + passes + one run)
//! and a later call, each against eager, in one process, as ratios.
//!
//! `cargo run --release -p adjoint-core --example scan_compile [steps]`

use std::time::Instant;

use adjoint_core::{jit, make_ir, scan, value_and_grad, Tensor};

fn step(c: &Tensor, x: &Tensor) -> Tensor {
    ((c * 0.999 + x).sin() * 1.01).tanh()
}

fn unrolled(p: &(Tensor, Tensor)) -> Tensor {
    let mut c = p.0.clone();
    for i in 0..p.1.shape()[0] {
        c = step(&c, &p.1.narrow(0, i, 1).squeeze(0));
    }
    c.sum()
}

fn scanned(p: &(Tensor, Tensor)) -> Tensor {
    scan(|c: &Tensor, x: &Tensor| (step(c, x), ()), &p.0, &p.1).0.sum()
}

fn ms(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

/// Median of 5 timings of `f`, in milliseconds.
fn median(mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..5).map(|_| ms(&mut f)).collect();
    t.sort_by(f64::total_cmp);
    t[2]
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let p = (Tensor::linspace(-1.0, 1.0, 64).to_f64(), (Tensor::linspace(0.0, 1.0, n).to_f64() * 0.01));
    let eqns = |f: fn(&(Tensor, Tensor)) -> Tensor| make_ir(value_and_grad(f))(&p).eqns.len();
    println!(
        "steps {n}: staged equations of value_and_grad: unrolled {}, scan {}",
        eqns(unrolled),
        eqns(scanned)
    );
    for (name, f) in [("unrolled", unrolled as fn(&(Tensor, Tensor)) -> Tensor), ("scan", scanned)] {
        let eager = median(|| {
            value_and_grad(f)(&p);
        });
        let jf = jit(value_and_grad(f));
        let first = ms(|| {
            jf(&p);
        });
        let later = median(|| {
            jf(&p);
        });
        println!(
            "{name:>8}: eager {eager:.2} ms/call; jit first call {first:.2} ms ({:.1}× eager), later calls {later:.2} ms ({:.2}× eager)",
            first / eager,
            later / eager
        );
    }
}
