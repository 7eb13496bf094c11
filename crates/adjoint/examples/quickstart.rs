//! Quickstart: fit a small model with `value_and_grad`, then take second derivatives.
//!
//! Run with `cargo run --release --example quickstart`.

use adjoint::prelude::*;
use adjoint::tensor::random::{normal, Key};

#[derive(Clone, Params)]
struct Mlp {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

fn forward(m: &Mlp, x: &Tensor) -> Tensor {
    let h = (x.matmul(&m.w1) + &m.b1).tanh();
    h.matmul(&m.w2) + &m.b2
}

fn main() {
    // Data: y = sin(3x) + noise, 256 points.
    let key = Key::new(0);
    let (k1, k2) = key.split2();
    let x = Tensor::linspace(-1.0, 1.0, 256).reshape(&[256, 1]);
    let noise = Tensor::from_array(normal(&k1, &[256, 1], DType::F32)) * 0.05;
    let y = (&x * 3.0).sin() + noise;

    let ks = k2.split(2);
    let init = |k: &adjoint::tensor::random::Key, shape: &[usize], scale: f64| {
        Tensor::from_array(normal(k, shape, DType::F32)) * scale
    };
    let mut model = Mlp {
        w1: init(&ks[0], &[1, 32], 1.0),
        b1: Tensor::zeros(&[32]),
        w2: init(&ks[1], &[32, 1], (1.0f64 / 32.0).sqrt()),
        b2: Tensor::zeros(&[1]),
    };

    let loss = |m: &Mlp| {
        let d = forward(m, &x) - &y;
        (&d * &d).mean()
    };
    let step = value_and_grad(loss);
    let lr = 0.1;
    for epoch in 0..=2000 {
        let (l, g) = step(&model);
        model = adjoint::params::zip_map(&model, &g, |p, g| p - g * lr);
        if epoch % 400 == 0 {
            println!("epoch {epoch:5}  mse {:.5}", l.item());
        }
    }

    // Higher order: the Hessian of a scalar function, and a Hessian-vector product.
    let f = |v: &Tensor| (v.sin() * v.exp()).sum();
    let v = Tensor::from_vec(vec![0.1f64, 0.5, -0.3], &[3]);
    println!("hessian of sum(sin(v)·exp(v)) at {:?}:\n{}", v.to_vec::<f64>(), hessian(f)(&v));
    println!(
        "hvp with [1, 0, 0]: {:?}",
        hvp(f, &v, &Tensor::from_vec(vec![1.0f64, 0.0, 0.0], &[3])).to_vec::<f64>()
    );
}
