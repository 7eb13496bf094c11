//! Prints the program `jit` runs for W2's step (`steps::mlp_jit`) with no transform active:
//! staged, optimised (`passes::optimize`) and fused (`passes::fuse`), one equation a line.
//!
//! ```text
//! cargo run --release -p adjoint-bench --example jit_ir [-- raw]
//! ```
//!
//! With `raw`, the optimised program before fusion.

#![allow(dead_code)]

#[path = "../src/steps.rs"]
mod steps;

use adjoint_core::jit::{make_ir, passes};
use adjoint_core::{value_and_grad, DType, Params, Tensor};
use adjoint_nn::layers::{Linear, Module, Relu};
use adjoint_nn::loss::{cross_entropy, CrossEntropy};
use adjoint_nn::optim::AdamConfig;
use adjoint_tensor::random::Key;

fn main() {
    let raw = std::env::args().nth(1).as_deref() == Some("raw");
    let k = Key::new(0).split(4);
    let model =
        (Linear::new(784, 512, &k[0]), Relu, Linear::new(512, 512, &k[1]), Relu, Linear::new(512, 10, &k[2]));
    let x = steps::randn(&k[3], &[128, 784], DType::F32);
    let y = Tensor::from_vec((0..128i64).map(|i| (7 * i) % 10).collect::<Vec<i64>>(), &[128]);
    let ce = CrossEntropy::default();
    let cfg = AdamConfig { lr: 1e-3, ..Default::default() };
    type M = (Linear, Relu, Linear, Relu, Linear);
    let loss = move |m: &M| cross_entropy(&Module::forward(m, &x), &y, &ce);
    let f = move |s: &(M, Vec<Tensor>, Vec<Tensor>, Tensor)| {
        let (l, g) = value_and_grad(&loss)(&s.0);
        let [p, m, v] = steps::adam_update(&s.0.leaves(), &g.leaves(), &s.1, &s.2, &s.3, &cfg);
        (s.0.with_leaves(&p), m, v, l)
    };
    let zeros: Vec<Tensor> = model.leaves().iter().map(|l| l.zeros_like()).collect();
    let state = (model, zeros.clone(), zeros, Tensor::zeros(&[2]));
    let ir = passes::optimize(make_ir(f)(&state));
    let ir = if raw { ir } else { passes::fuse(ir) };
    println!("{ir}");
}
