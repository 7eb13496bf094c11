//! Convolution kernels A/B in one process: the Winograd kernels against the im2col path they
//! replace (`ADJOINT_CONV_WINOGRAD=0` toggled between interleaved samples), at 1 and 2 threads,
//! for the issue-17 shapes (the micro benchmark's layer and W3's two layers), and F(4×4, 3×3)
//! against F(2×2, 3×3) for all three kernels; then the im2col
//! GEMM alone and max pooling with indices. Medians; one line per kernel.
//!
//! `cargo run --release -p adjoint-tensor --example conv_bench [-- SAMPLES [forward|input|weight]]`
//! (with a kernel name: run only that kernel of the first shape, for a profiler).

use std::time::Instant;

use adjoint_tensor::ops::conv::{with_winograd_tile, Conv2dOptions};
use adjoint_tensor::ops::pool::Pool2dOptions;
use adjoint_tensor::Array;

#[path = "common/mod.rs"]
mod common;
use common::{data, median};

/// Interleaved samples of `a` (new) and `b` (old); returns medians in ms.
fn ab(samples: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    a();
    b();
    let (mut ta, mut tb) = (vec![], vec![]);
    for _ in 0..samples {
        let t = Instant::now();
        a();
        ta.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        b();
        tb.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (median(ta), median(tb))
}

fn with_fast<R>(on: bool, f: impl FnOnce() -> R) -> R {
    // Edition 2021: set_var is safe; the benchmark is single-threaded at this point.
    // TODO: Audit that the environment access only happens in single-threaded code.
    unsafe { std::env::set_var("ADJOINT_CONV_WINOGRAD", if on { "1" } else { "0" }) };
    f()
}

fn main() {
    let samples: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(15);
    let cases: [(&str, [usize; 4], [usize; 4]); 3] = [
        ("bench 64x32x28x28*64x32x3x3", [64, 32, 28, 28], [64, 32, 3, 3]),
        ("W3 conv2 64x32x14x14*64x32x3x3", [64, 32, 14, 14], [64, 32, 3, 3]),
        ("W3 conv1 64x1x28x28*32x1x3x3", [64, 1, 28, 28], [32, 1, 3, 3]),
    ];
    let p = Conv2dOptions { padding: [1, 1], ..Default::default() };
    if let Some(what) = std::env::args().nth(2) {
        // Profiling mode: one kernel of the first case, specialised path, `SAMPLES` times.
        let (_, xs, ws) = cases[0];
        let (x, w) = (data(1, &xs), data(2, &ws));
        let gy = data(3, x.conv2d(&w, &p).shape());
        for _ in 0..samples {
            drop(match what.as_str() {
                "forward" => x.conv2d(&w, &p),
                "input" => Array::conv2d_input_grad(&gy, &w, &xs, &p),
                _ => Array::conv2d_weight_grad(&x, &gy, &ws, &p),
            });
        }
        return;
    }
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            for (name, xs, ws) in cases {
                let (x, w) = (data(1, &xs), data(2, &ws));
                let gy = data(3, x.conv2d(&w, &p).shape());
                let flops = 2.0 * (gy.shape().iter().product::<usize>() * ws[1] * 9) as f64;
                let run = |what: &str, f: &dyn Fn() -> Array| {
                    let (new, old) = ab(samples, || drop(with_fast(true, f)), || drop(with_fast(false, f)));
                    println!(
                        "threads {threads} {name} {what:<11} new {new:8.3} ms ({:6.1} GFLOP/s)  im2col {old:8.3} ms  \
                         speedup {:.2}x",
                        flops / new / 1e6,
                        old / new
                    );
                };
                run("forward", &|| x.conv2d(&w, &p));
                run("input grad", &|| Array::conv2d_input_grad(&gy, &w, &xs, &p));
                run("weight grad", &|| Array::conv2d_weight_grad(&x, &gy, &ws, &p));
                // The two Winograd tiles against each other.
                let tiles = |what: &str, f: &dyn Fn() -> Array| {
                    let (f43, f23) = ab(
                        samples,
                        || drop(with_fast(true, || with_winograd_tile(4, f))),
                        || drop(with_fast(true, || with_winograd_tile(2, f))),
                    );
                    println!(
                        "threads {threads} {name} {what:<11} F(4x4,3x3) {f43:8.3} ms  F(2x2,3x3) {f23:8.3} ms  \
                         speedup {:.2}x",
                        f23 / f43
                    );
                };
                tiles("forward", &|| x.conv2d(&w, &p));
                tiles("input grad", &|| Array::conv2d_input_grad(&gy, &w, &xs, &p));
                tiles("weight grad", &|| Array::conv2d_weight_grad(&x, &gy, &ws, &p));
            }
            // The unroll's share: the same GEMMs on a pre-built column matrix.
            let cols = data(4, &[64, 288, 784]);
            let wm = data(5, &[64, 288]);
            let (g, _) = ab(samples, || drop(wm.matmul(&cols)), || ());
            println!("threads {threads} gemm alone [64,288]x[64,288,784] {g:8.3} ms");
            for (xs, k) in [([64, 32, 28, 28], 2), ([64, 64, 14, 14], 2)] {
                let x = data(6, &xs);
                let po = Pool2dOptions::new([k, k]);
                let (a, _) = ab(samples, || drop(x.max_pool2d_with_indices(&po)), || ());
                let bytes = (xs.iter().product::<usize>() * 4) as f64 * (1.0 + 2.0 / 4.0);
                println!("threads {threads} max_pool2d {xs:?} k{k} {a:8.3} ms ({:.1} GB/s)", bytes / a / 1e6);
            }
        });
    }
}
