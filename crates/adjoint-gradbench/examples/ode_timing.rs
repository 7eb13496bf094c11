//! Times the `ode` eval's primal and gradient at GradBench's sizes (single thread:
//! `RAYON_NUM_THREADS=1 cargo run --release -p adjoint-gradbench --example ode_timing`).
//! With arguments `N S`, only that size (for a profiler); with `ADJOINT_PROFILE=FILE`, one more
//! gradient per size runs under adjoint's profiler (table on stderr, trace in FILE).
#[path = "common/mod.rs"]
mod common;
use adjoint_gradbench::evals::ode;
use common::time;

fn main() {
    // GradBench draws x uniformly from [0, 1); a fixed LCG stands in for numpy's generator.
    let mut state = 31337u64;
    let mut rand = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
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
