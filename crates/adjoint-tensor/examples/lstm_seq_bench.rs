//! LSTM sequence kernels at W4's size (T 64, B 32, H 128): `lstm_seq`, `lstm_seq_grad`, and the
//! per-step `[B, H]·W_hhᵀ` product alone (T products), medians of interleaved samples.
//!
//! `cargo run --release -p adjoint-tensor --example lstm_seq_bench [-- SAMPLES]`

use std::time::Instant;

use adjoint_tensor::ops::rnn;

#[path = "common/mod.rs"]
mod common;
use common::{data_scaled as data, median};

fn main() {
    let samples: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    let (t, b, h) = (64, 32, 128);
    let gx = data(1, &[t, b, 4 * h], 1.0);
    let w = data(2, &[4 * h, h], 0.18);
    let (h0, c0) = (data(3, &[b, h], 0.0), data(4, &[b, h], 0.0));
    let dhs = data(5, &[t, b, h], 1.0);
    let dcs = data(6, &[t, b, h], 0.0);
    let wt = w.transpose(0, 1);
    let (mut f, mut g, mut m) = (vec![], vec![], vec![]);
    for _ in 0..samples {
        let s = Instant::now();
        let (hs, cs, a) = rnn::lstm_seq(&gx, &w, &h0, &c0);
        f.push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        let r = rnn::lstm_seq_grad(&w, &h0, &c0, &hs, &cs, &a, &dhs, &dcs, None);
        g.push(s.elapsed().as_secs_f64());
        drop(r);
        let s = Instant::now();
        for _ in 0..t {
            std::hint::black_box(h0.matmul(&wt));
        }
        m.push(s.elapsed().as_secs_f64());
    }
    println!("lstm_seq       {:8.3} ms", median(f) * 1e3);
    println!("lstm_seq_grad  {:8.3} ms", median(g) * 1e3);
    println!("T x h·W_hhᵀ    {:8.3} ms", median(m) * 1e3);
}
