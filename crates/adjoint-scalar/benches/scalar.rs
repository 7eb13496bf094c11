//! `cargo bench -p adjoint-scalar`: the Var tape's cost per node, ADBench GMM gradient over
//! objective time, and a 100-variable Rosenbrock Hessian (forward-over-reverse) vs its gradient.

#[path = "common/gmm.rs"]
mod gmm;

use std::hint::black_box;
use std::time::Duration;

use adjoint_scalar::prelude::*;
use adjoint_scalar::value_and_gradient_into;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const CHAIN: usize = 1_000_000;

/// `y ← y·c + x` repeated: 2 nodes per step (`len` nodes in all), then one sweep.
fn chain_of(len: usize, x0: f64) -> f64 {
    let tape = Tape::new();
    let x = tape.var(x0);
    let c = tape.var(0.999_999);
    let mut y = x;
    for _ in 0..len / 2 {
        y = y * c + x;
    }
    let mut g = [0.0];
    tape.gradient_into(y, &[x], &mut g);
    g[0]
}

/// The same arithmetic in plain f64, for the overhead ratio.
fn chain_f64(x: f64) -> f64 {
    let c = black_box(0.999_999);
    let mut y = x;
    for _ in 0..CHAIN / 2 {
        y = y * c + x;
    }
    y
}

fn bench_chain(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("var_chain");
    g.throughput(Throughput::Elements(CHAIN as u64));
    g.bench_function("record_and_sweep_1M_nodes", |b| b.iter(|| chain_of(CHAIN, black_box(0.5))));
    g.bench_function("f64_same_arithmetic_1M", |b| b.iter(|| chain_f64(black_box(0.5))));
    // 100k nodes (2.4 MB of tape) stay in cache: the cost without the memory-bandwidth wall.
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("record_and_sweep_100k_nodes", |b| b.iter(|| chain_of(100_000, black_box(0.5))));
    g.finish();
}

fn bench_gmm(cr: &mut Criterion) {
    let inp = gmm::read_gmm(&gmm::data_path("1k/gmm_d10_K5.txt")).expect("GMM input");
    let p = inp.params();
    let mut out = vec![0.0; p.len()];
    let mut g = cr.benchmark_group("gmm_1k_d10_K5");
    g.bench_function("objective_f64", |b| b.iter(|| gmm::gmm_objective(&inp, black_box(&p))));
    g.bench_function("gradient_var", |b| {
        b.iter(|| value_and_gradient_into(|x: &[Var]| gmm::gmm_objective(&inp, x), black_box(&p), &mut out))
    });
    // The same objective with one binary operation at a time (no fused operations): before/after.
    g.bench_function("objective_f64_binary", |b| b.iter(|| gmm::gmm_objective_binary(&inp, black_box(&p))));
    g.bench_function("gradient_var_binary", |b| {
        b.iter(|| {
            value_and_gradient_into(|x: &[Var]| gmm::gmm_objective_binary(&inp, x), black_box(&p), &mut out)
        })
    });
    g.finish();
}

/// GradBench's small-`d` gmm workloads (`d = 2`, `n = 1000`, `k = 5, 50, 100`) on the scalar
/// tier, with synthetic data of the same shape (issue 22: which tier to use at small `d`).
fn bench_gmm_small_d(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("gmm_synthetic_d2_n1000");
    for k in [5, 50, 100] {
        let inp = gmm::synthetic(2, k, 1000);
        let p = inp.params();
        let mut out = vec![0.0; p.len()];
        g.bench_function(format!("objective_f64_k{k}"), |b| {
            b.iter(|| gmm::gmm_objective(&inp, black_box(&p)))
        });
        g.bench_function(format!("gradient_var_k{k}"), |b| {
            b.iter(|| {
                value_and_gradient_into(|x: &[Var]| gmm::gmm_objective(&inp, x), black_box(&p), &mut out)
            })
        });
    }
    g.finish();
}

struct Rosen;
impl ScalarFn for Rosen {
    fn eval<T: Real>(&self, x: &[T]) -> T {
        let mut s = T::zero();
        for i in (0..x.len()).step_by(2) {
            s += T::lit(100.0) * (x[i + 1] - x[i] * x[i]).powi(2) + (T::one() - x[i]).powi(2);
        }
        s
    }
}

fn bench_rosenbrock(cr: &mut Criterion) {
    let x: Vec<f64> = (0..100).map(|i| 0.5 + 0.01 * i as f64).collect();
    let mut out = vec![0.0; 100];
    let mut g = cr.benchmark_group("rosenbrock_100");
    g.bench_function("objective_f64", |b| b.iter(|| Rosen.eval(black_box(&x))));
    g.bench_function("gradient_var", |b| {
        b.iter(|| value_and_gradient_into(|v: &[Var]| Rosen.eval(v), black_box(&x), &mut out))
    });
    g.bench_function("hvp_dual_var", |b| b.iter(|| hessian_vector_product(&Rosen, black_box(&x), &x)));
    g.bench_function("hessian_dual_var", |b| b.iter(|| hessian(&Rosen, black_box(&x))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_chain, bench_gmm, bench_gmm_small_d, bench_rosenbrock
}
criterion_main!(benches);
