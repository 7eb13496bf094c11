//! The products of one W2 MLP training step (784-512-512-10, batch 128, f32), each timed alone:
//! forward `x·Wᵀ`, the input gradient `g·W` and the weight gradient in both orientations
//! (`xᵀ·g` as the tape's matmul rule forms it, and `gᵀ·x` in the weight's own layout); also the
//! forward product with `Wᵀ` already row-major (`x·WᵀC`) and that row-major copy alone.
//! Medians of interleaved samples; the pool size is `RAYON_NUM_THREADS`.
//!
//! `cargo run --release -p adjoint-tensor --example mlp_gemm_bench [-- SAMPLES]`

use std::time::Instant;

use adjoint_tensor::Array;

#[path = "common/mod.rs"]
mod common;
use common::{data, median};

/// One timed product.
type Case<'a> = (&'static str, Box<dyn Fn() -> Array + 'a>);

fn main() {
    let samples: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    adjoint_tensor::threads::init(0).expect("first use of rayon");
    let b = 128;
    let layers = [(784, 512), (512, 512), (512, 10)];
    let mut total = [0.0f64; 6];
    println!("threads {}", rayon::current_num_threads());
    for (l, &(i, o)) in layers.iter().enumerate() {
        let x = data(1, &[b, i]);
        let w = data(2, &[o, i]);
        let g = data(3, &[b, o]);
        let wt = w.transpose(0, 1).contiguous();
        let cases: [Case; 6] = [
            ("fwd x·Wᵀ", Box::new(|| x.matmul(&w.transpose(0, 1)))),
            ("fwd x·WᵀC", Box::new(|| x.matmul(&wt))),
            ("copy Wᵀ", Box::new(|| w.transpose(0, 1).contiguous())),
            ("dx g·W", Box::new(|| g.matmul(&w))),
            ("dWᵀ xᵀ·g", Box::new(|| x.transpose(0, 1).matmul(&g))),
            ("dW gᵀ·x", Box::new(|| g.transpose(0, 1).matmul(&x))),
        ];
        let mut times = vec![Vec::new(); cases.len()];
        for _ in 0..samples {
            for (c, (_, f)) in cases.iter().enumerate() {
                let t = Instant::now();
                let r = f();
                times[c].push(t.elapsed().as_secs_f64());
                std::hint::black_box(r);
            }
        }
        for (c, (name, _)) in cases.iter().enumerate() {
            let t = median(std::mem::take(&mut times[c]));
            if c != 3 || l > 0 {
                total[c] += t;
            }
            let flops = 2.0 * (b * i * o) as f64;
            println!("{i:>4}x{o:<4} {name:<10} {:8.1} µs {:6.1} GFLOP/s", t * 1e6, flops / t * 1e-9);
        }
    }
    println!(
        "step products (fwd + dW + dx of layers 2-3): {:.2} ms with dW as xᵀ·g, {:.2} ms with gᵀ·x",
        (total[0] + total[4] + total[3]) * 1e3,
        (total[0] + total[5] + total[3]) * 1e3
    );
}
