//! Side-by-side benchmark suite, adjoint's half. Prints one JSON object per line on stdout;
//! `benches/python/peers.py` prints the same lines for NumPy, PyTorch and JAX and
//! `benches/report.py` merges both into `BENCHMARKS.md`. Run everything with `benches/run.sh`.
//!
//! ```text
//! cargo run --release -p adjoint --example bench_suite -- [--quick] [--suite tensor|transforms|vmap|all]
//! ```
//!
//! Threads: the rayon pool is sized by `RAYON_NUM_THREADS` (the driver sets 1 or 2); each line
//! reports `rayon::current_num_threads()` so a mis-sized pool shows in the results.
//!
//! Timing: each workload is warmed up, then timed in samples of `inner` iterations (chosen so
//! one sample lasts at least a few milliseconds); the reported `sec` is the median over samples
//! of the time per iteration. The same procedure is implemented in `peers.py`.

use std::hint::black_box;
use std::time::Duration;

use adjoint::prelude::*;
use adjoint::tensor::random::{normal, uniform, Key};
use adjoint::tensor::Array;

struct Cfg {
    quick: bool,
    suite: String,
    threads: usize,
    only: Option<String>,
}

impl Cfg {
    fn samples(&self) -> usize {
        if self.quick {
            3
        } else {
            7
        }
    }
    fn min_sample(&self) -> Duration {
        Duration::from_millis(if self.quick { 2 } else { 10 })
    }
    fn want(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| name.contains(o))
    }
}

// The one timing loop of adjoint's benchmarks (see its module docs).
#[path = "../../adjoint-bench/src/timing.rs"]
#[allow(dead_code)] // each example uses part of it
mod timing;

/// Median seconds per call of `f`, and the number of timed calls.
fn measure<R>(cfg: &Cfg, f: impl FnMut() -> R) -> (f64, usize) {
    let plan = timing::Plan { warmups: 2, samples: cfg.samples(), min_sample: cfg.min_sample() };
    let s = timing::measure(plan, 1.0, f);
    (s.median_s, s.batch * s.samples)
}

#[allow(clippy::too_many_arguments)]
fn emit(
    cfg: &Cfg,
    suite: &str,
    name: &str,
    size: &str,
    sec: f64,
    reps: usize,
    metric: Option<(&str, f64)>,
    extra: &str,
) {
    let (mname, mval) = match metric {
        Some((m, work)) => (format!("\"{m}\""), format!("{:.6}", work / sec / 1e9)),
        None => ("null".to_string(), "null".to_string()),
    };
    println!(
        "{{\"lib\":\"adjoint\",\"suite\":\"{suite}\",\"name\":\"{name}\",\"size\":\"{size}\",\"threads\":{},\
         \"pool_threads\":{},\"sec\":{sec:.9e},\"reps\":{reps},\"metric\":{mname},\"value\":{mval}{extra}}}",
        cfg.threads,
        rayon::current_num_threads(),
    );
}

fn randn(key: u64, shape: &[usize]) -> Array {
    normal(&Key::new(key), shape, DType::F32)
}

fn tensor_suite(cfg: &Cfg) {
    let q = cfg.quick;
    // --- matmul -----------------------------------------------------------------------------
    let sizes: &[usize] = if q { &[256, 1024] } else { &[256, 1024, 2048] };
    for &n in sizes {
        if !cfg.want("matmul") {
            break;
        }
        let a = randn(1, &[n, n]);
        let b = randn(2, &[n, n]);
        let (s, r) = measure(cfg, || a.matmul(&b));
        emit(
            cfg,
            "tensor",
            "matmul_f32",
            &n.to_string(),
            s,
            r,
            Some(("GFLOP/s", 2.0 * (n as f64).powi(3))),
            "",
        );
    }
    // --- copy bandwidth, add, exp ------------------------------------------------------------
    let sizes: &[(usize, &str)] =
        if q { &[(1 << 20, "1M"), (1 << 22, "4M")] } else { &[(1 << 20, "1M"), (1 << 24, "16M")] };
    for &(n, label) in sizes {
        let a = uniform(&Key::new(3), &[n], -3.0, 3.0, DType::F32);
        let b = uniform(&Key::new(4), &[n], -3.0, 3.0, DType::F32);
        let bytes = 4.0 * n as f64;
        if cfg.want("copy") {
            // Machine copy bandwidth: a copy into a buffer that already exists (no page faults),
            // with non-temporal stores when it is large (`memcpy` may not use them: see
            // `adjoint::tensor::ops::copy_slice`)...
            let src = a.to_vec::<f32>();
            let mut dst = vec![0f32; n];
            let (s, r) = measure(cfg, || {
                adjoint::tensor::ops::copy_slice(&mut dst, black_box(&src));
                dst[n / 2]
            });
            emit(cfg, "tensor", "copy_prealloc_f32", label, s, r, Some(("GB/s", 2.0 * bytes)), "");
            // ...and into a fresh allocation, as every out-of-place kernel does.
            let (s, r) = measure(cfg, || black_box(&src).to_vec());
            emit(cfg, "tensor", "copy_alloc_f32", label, s, r, Some(("GB/s", 2.0 * bytes)), "");
        }
        // The large size's add and exp are judged against the copy's bandwidth: each is timed
        // alternately with the copy above (`timing::measure_pair`), and the copy's bandwidth
        // from those same moments goes with the row, as `copy_paired_gbs`.
        let paired = n >= 1 << 22;
        let src = if paired { a.to_vec::<f32>() } else { Vec::new() };
        let mut dst = vec![0f32; src.len()];
        let mut with_copy = |op: &mut dyn FnMut() -> Array| -> (f64, usize, String) {
            if !paired {
                let (s, r) = measure(cfg, op);
                return (s, r, String::new());
            }
            let plan = timing::Plan { warmups: 2, samples: cfg.samples(), min_sample: cfg.min_sample() };
            let copy = || {
                adjoint::tensor::ops::copy_slice(&mut dst, black_box(&src));
                dst[n / 2]
            };
            let (o, c) = timing::measure_pair(plan, op, copy);
            let extra = format!(",\"copy_paired_gbs\":{:.6}", 2.0 * bytes / c.median_s / 1e9);
            (o.median_s, o.batch * o.samples, extra)
        };
        if cfg.want("add") {
            let (s, r, extra) = with_copy(&mut || a.add(&b));
            emit(cfg, "tensor", "add_f32", label, s, r, Some(("GB/s", 3.0 * bytes)), &extra);
        }
        if cfg.want("exp") {
            let (s, r, extra) = with_copy(&mut || a.exp());
            emit(cfg, "tensor", "exp_f32", label, s, r, Some(("GB/s", 2.0 * bytes)), &extra);
        }
    }
    // --- sum over the last axis ----------------------------------------------------------------
    if cfg.want("sum") {
        let n = if q { 2048 } else { 4096 };
        let x = randn(5, &[n, n]);
        let (s, r) = measure(cfg, || x.sum_axes(&[1], false));
        emit(
            cfg,
            "tensor",
            "sum_last_axis_f32",
            &format!("{n}x{n}"),
            s,
            r,
            Some(("GB/s", 4.0 * (n * n) as f64)),
            "",
        );
    }
    // --- conv2d forward ----------------------------------------------------------------------
    if cfg.want("conv") {
        let n = if q { 16 } else { 64 };
        let x = randn(6, &[n, 32, 28, 28]);
        let w = randn(7, &[64, 32, 3, 3]);
        let p = Conv2dOptions { padding: [1, 1], ..Default::default() };
        let (s, r) = measure(cfg, || x.conv2d(&w, &p));
        let flops = 2.0 * (n * 64 * 28 * 28 * 32 * 9) as f64;
        emit(
            cfg,
            "tensor",
            "conv2d_f32",
            &format!("{n}x32x28x28*64x32x3x3"),
            s,
            r,
            Some(("GFLOP/s", flops)),
            "",
        );
    }
}

const CHAIN: usize = 1000;

/// `CHAIN` scalar-tensor ops: alternating `* 1.0001` and `+ 0.0001`.
fn chain(x: &Tensor) -> Tensor {
    let mut y = x.clone();
    for _ in 0..CHAIN / 2 {
        y = y * 1.0001 + 0.0001;
    }
    y
}

fn transforms_suite(cfg: &Cfg) {
    let q = cfg.quick;
    // --- (a)/(b) per-op overhead on a 1-element f32 tensor ---------------------------------------
    if cfg.want("chain") {
        let x = Tensor::from_vec(vec![0.5f32], &[1]);
        let (s, r) = measure(cfg, || chain(&x));
        emit(
            cfg,
            "transforms",
            "chain_eager_nograd",
            "1000 ops",
            s,
            r,
            None,
            &format!(",\"us_per_op\":{:.6}", s / CHAIN as f64 * 1e6),
        );
        // Forward with the tape recording (reverse mode active), no backward pass.
        let (s, r) = measure(cfg, || {
            let (y, _pullback) = vjp(|x: &Tensor| chain(x).sum(), &x);
            y
        });
        emit(
            cfg,
            "transforms",
            "chain_fwd_taped",
            "1000 ops",
            s,
            r,
            None,
            &format!(",\"us_per_op\":{:.6}", s / CHAIN as f64 * 1e6),
        );
        // Forward plus backward.
        let g = grad(|x: &Tensor| chain(x).sum());
        let (s, r) = measure(cfg, || g(&x));
        emit(
            cfg,
            "transforms",
            "chain_fwd_bwd",
            "1000 ops",
            s,
            r,
            None,
            &format!(",\"us_per_op\":{:.6}", s / CHAIN as f64 * 1e6),
        );
    }
    // --- (c) gradient of sum(A @ B) w.r.t. A and B ---------------------------------------------
    if cfg.want("grad_matmul") {
        let n = if q { 512 } else { 1024 };
        let a = Tensor::from_array(randn(11, &[n, n]));
        let b = Tensor::from_array(randn(12, &[n, n]));
        let g = grad(|p: &(Tensor, Tensor)| p.0.matmul(&p.1).sum());
        let ab = (a.clone(), b.clone());
        let (s, r) = measure(cfg, || g(&ab));
        // forward matmul + two backward matmuls
        emit(
            cfg,
            "transforms",
            "grad_sum_matmul",
            &format!("{n}x{n}"),
            s,
            r,
            Some(("GFLOP/s", 6.0 * (n as f64).powi(3))),
            "",
        );
    }
    // --- (d) Hessian-vector product ----------------------------------------------------------
    if cfg.want("hvp") {
        let (m, n) = if q { (1000, 500) } else { (2000, 1000) };
        let a = Tensor::from_array(randn(13, &[m, n]));
        let x = Tensor::from_array(randn(14, &[n]));
        let v = Tensor::from_array(randn(15, &[n]));
        let f = |x: &Tensor| a.matmul(x).softplus().sum() + (x * x).sum() * 0.5;
        let size = format!("A {m}x{n}");
        let (s, r) = measure(cfg, || f(&x));
        emit(cfg, "transforms", "hvp_f_value", &size, s, r, None, "");
        let g = grad(f);
        let (s_grad, r) = measure(cfg, || g(&x));
        emit(cfg, "transforms", "hvp_f_grad", &size, s_grad, r, None, "");
        let (s, r) = measure(cfg, || hvp(f, &x, &v));
        emit(cfg, "transforms", "hvp", &size, s, r, None, &format!(",\"hvp_over_grad\":{:.4}", s / s_grad));
    }
}

/// One example's loss for the MLP 784-512-512-10: `x` [784], one-hot `y` [10].
fn mlp_loss_one(p: &[Tensor], x: &Tensor, y: &Tensor) -> Tensor {
    let h = (x.matmul(&p[0]) + &p[1]).relu();
    let h = (h.matmul(&p[2]) + &p[3]).relu();
    let o = h.matmul(&p[4]) + &p[5];
    -(o.log_softmax(0) * y).sum()
}

/// Mean loss over a batch: `x` [B, 784], `y` [B, 10].
fn mlp_loss_batch(p: &[Tensor], x: &Tensor, y: &Tensor) -> Tensor {
    let h = (x.matmul(&p[0]) + &p[1]).relu();
    let h = (h.matmul(&p[2]) + &p[3]).relu();
    let o = h.matmul(&p[4]) + &p[5];
    -(o.log_softmax(1) * y).sum() / x.shape()[0] as f64
}

fn vmap_suite(cfg: &Cfg) {
    // --- per-example gradients of the MLP 784-512-512-10 over a batch of 128 ---------------------
    if cfg.want("mlp") {
        let b = 128;
        let dims = [784, 512, 512, 10];
        let mut params = Vec::new();
        for (i, w) in dims.windows(2).enumerate() {
            let scale = (2.0 / w[0] as f64).sqrt();
            params.push(Tensor::from_array(randn(20 + i as u64, &[w[0], w[1]])) * scale);
            params.push(Tensor::zeros(&[w[1]]));
        }
        let x = Tensor::from_array(randn(30, &[b, 784]));
        let labels: Vec<usize> = (0..b).map(|i| (i * 7) % 10).collect();
        let mut onehot = vec![0f32; b * 10];
        for (i, &l) in labels.iter().enumerate() {
            onehot[i * 10 + l] = 1.0;
        }
        let y = Tensor::from_vec(onehot, &[b, 10]);
        let size = "784-512-512-10, batch 128";
        let g = grad(|p: &Vec<Tensor>| mlp_loss_batch(p, &x, &y));
        let (s_batched, r) = measure(cfg, || g(&params));
        emit(cfg, "vmap", "mlp_grad_batched", size, s_batched, r, None, "");
        let per_example = vmap_axes(
            |a: &(Vec<Tensor>, Tensor, Tensor)| grad(|p: &Vec<Tensor>| mlp_loss_one(p, &a.1, &a.2))(&a.0),
            [None, Some(0), Some(0)],
            0,
        );
        let args = (params.clone(), x.clone(), y.clone());
        let (s, r) = measure(cfg, || per_example(&args));
        emit(
            cfg,
            "vmap",
            "mlp_per_example_grads",
            size,
            s,
            r,
            None,
            &format!(",\"over_batched_grad\":{:.4}", s / s_batched),
        );
    }
    // --- Jacobian of a 100 -> 100 function: batched jacrev vs the loop over rows ----------------
    if cfg.want("jac") {
        let n = 100;
        let w1 = Tensor::from_array(randn(40, &[n, n])) * 0.1;
        let b1 = Tensor::from_array(randn(41, &[n]));
        let w2 = Tensor::from_array(randn(42, &[n, n])) * 0.1;
        let x = Tensor::from_array(randn(43, &[n]));
        let f = |x: &Tensor| w2.matmul(&(w1.matmul(x) + &b1).tanh());
        let size = "100->100";
        let jr = jacrev(f);
        let (s_batched, r) = measure(cfg, || jr(&x));
        emit(cfg, "vmap", "jacrev_batched", size, s_batched, r, None, "");
        let (s, r) = measure(cfg, || {
            let (y, pb) = vjp(f, &x);
            let rows: Vec<Tensor> = (0..y.numel())
                .map(|i| {
                    let mut e = vec![0f32; n];
                    e[i] = 1.0;
                    pb(&Tensor::from_vec(e, &[n]))
                })
                .collect();
            let refs: Vec<&Tensor> = rows.iter().collect();
            Tensor::stack(&refs, 0)
        });
        emit(
            cfg,
            "vmap",
            "jacrev_loop",
            size,
            s,
            r,
            None,
            &format!(",\"loop_over_batched\":{:.4}", s / s_batched),
        );
        let jf = jacfwd(f);
        let (s, r) = measure(cfg, || jf(&x));
        emit(cfg, "vmap", "jacfwd_batched", size, s, r, None, "");
    }
}

fn main() {
    let _ = adjoint::threads::init(0);
    let mut cfg =
        Cfg { quick: false, suite: "all".into(), threads: rayon::current_num_threads(), only: None };
    let usage = |msg: String| -> ! {
        eprintln!("bench_suite: {msg} (usage: bench_suite [--quick] [--suite all|tensor|transforms|vmap] [--only SUBSTRING])");
        std::process::exit(2)
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => cfg.quick = true,
            "--suite" => cfg.suite = args.next().unwrap_or_else(|| usage("--suite needs a value".into())),
            "--only" => cfg.only = Some(args.next().unwrap_or_else(|| usage("--only needs a value".into()))),
            "--bench" => {} // passed by `cargo bench`
            other => usage(format!("unknown argument {other:?}")),
        }
    }
    if !["all", "tensor", "transforms", "vmap"].contains(&cfg.suite.as_str()) {
        usage(format!("unknown suite {:?}", cfg.suite));
    }
    if cfg.suite == "all" || cfg.suite == "tensor" {
        tensor_suite(&cfg);
    }
    if cfg.suite == "all" || cfg.suite == "transforms" {
        transforms_suite(&cfg);
    }
    if cfg.suite == "all" || cfg.suite == "vmap" {
        vmap_suite(&cfg);
    }
}
