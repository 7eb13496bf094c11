//! Times the `ode` eval's primal and gradient at GradBench's sizes (single thread:
//! `RAYON_NUM_THREADS=1 cargo run --release -p adjoint-gradbench --example ode_timing`).
//! With arguments `N S`, only that size (for a profiler); with `ADJOINT_PROFILE=FILE`, one more
//! gradient per size runs under adjoint's profiler (table on stderr, trace in FILE).
#[path = "common/mod.rs"]
mod common;
use adjoint_gradbench::evals::ode;
use common::{numbers, time, uniform};

fn main() {
    let mut rand = uniform();
    let args = numbers();
    let (ns, ss) = match args[..] {
        [n, s] => (vec![n], vec![s]),
        _ => (vec![1000, 10000, 100000], vec![1, 10, 100]),
    };
    let (mut tp, mut tg) = (0.0, 0.0);
    for &n in &ns {
        let x: Vec<f64> = (0..n).map(|_| rand()).collect();
        for &s in &ss {
            // `ODE_ONLY=gradient` skips the primal (a profile of the gradient alone).
            let only_grad = std::env::var("ODE_ONLY").is_ok_and(|v| v == "gradient");
            let p = if only_grad { 0.0 } else { time(|| ode::primal(&x, s)) };
            let g = time(|| ode::gradient(&x, s));
            // `ADJOINT_PROFILE=FILE`: one more gradient, profiled per primitive (table on stderr).
            adjoint_core::profile::from_env(|| ode::gradient(&x, s));
            println!("n={n:6} s={s:3}  primal {:10.3} ms  gradient {:10.3} ms", p * 1e3, g * 1e3);
            tp += p;
            tg += g;
        }
    }
    println!(
        "sum: primal {:.3} ms, gradient {:.3} ms, score 1/sum = {:.3} 1/s",
        tp * 1e3,
        tg * 1e3,
        1.0 / (tp + tg)
    );
}
