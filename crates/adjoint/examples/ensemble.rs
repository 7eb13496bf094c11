//! An ensemble trained at once: `vmap` over stacked model parameters.
//!
//! ```text
//! cargo run --release -p adjoint --example ensemble
//! ```
//!
//! Eight small MLPs, each from its own initialisation, are stored as **one** model whose leaves
//! have a leading axis of 8. The training step is written for a single model;
//! `vmap(value_and_grad(loss))` runs it for all eight in one batched pass (the data are shared,
//! `in_axes = None`), and the SGD update is an ordinary elementwise op on the stacked leaves.

use adjoint::prelude::*;
use adjoint::tensor::random::{normal, uniform, Key};

#[derive(Clone, Params)]
struct Mlp {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

/// Mean squared error of one model on the whole data set (`x` [n, 1], `y` [n, 1]).
fn loss(m: &Mlp, x: &Tensor, y: &Tensor) -> Tensor {
    let h = (x.matmul(&m.w1) + &m.b1).tanh();
    let p = h.matmul(&m.w2) + &m.b2;
    let d = p - y;
    (&d * &d).mean()
}

fn predict(m: &Mlp, x: &Tensor) -> Tensor {
    (x.matmul(&m.w1) + &m.b1).tanh().matmul(&m.w2) + &m.b2
}

fn main() {
    let (models, hidden, n) = (8, 16, 64);
    let randn = |seed: u64, shape: &[usize], scale: f64| {
        Tensor::from_array(normal(&Key::new(seed), shape, DType::F32)) * scale
    };
    // Stacked parameters: axis 0 indexes the model.
    let mut ens = Mlp {
        w1: randn(1, &[models, 1, hidden], 1.0),
        b1: randn(2, &[models, hidden], 0.5),
        w2: randn(3, &[models, hidden, 1], 0.3),
        b2: Tensor::zeros(&[models, 1]),
    };
    let x = Tensor::from_array(uniform(&Key::new(4), &[n, 1], -3.0, 3.0, DType::F32));
    let y = x.sin() + Tensor::from_array(normal(&Key::new(5), &[n, 1], DType::F32)) * 0.05;

    // One training step for all models: per-model losses [8] and a stacked gradient.
    let step = vmap_axes(
        |a: &(Mlp, Tensor, Tensor)| value_and_grad(|m: &Mlp| loss(m, &a.1, &a.2))(&a.0),
        [Some(0), None, None],
        0,
    );
    let lr = 0.1;
    let mut first = None;
    for it in 0..=500 {
        let (losses, g) = step(&(ens.clone(), x.clone(), y.clone()));
        if it % 100 == 0 {
            let l: Vec<String> = losses.to_vec::<f32>().iter().map(|v| format!("{v:.4}")).collect();
            println!("step {it:3}: per-model loss {}", l.join(" "));
        }
        first.get_or_insert_with(|| losses.clone());
        ens = adjoint::params::zip_map(&ens, &g, |p, g| p - g * lr);
    }

    // Every model learned, and their mean is the ensemble's prediction.
    let final_losses = vmap_axes(
        |a: &(Mlp, Tensor, Tensor)| loss(&a.0, &a.1, &a.2),
        [Some(0), None, None],
        0,
    )(&(ens.clone(), x.clone(), y.clone()));
    let (l0, l1) = (first.expect("ran").to_vec::<f32>(), final_losses.to_vec::<f32>());
    assert!(l0.iter().zip(&l1).all(|(a, b)| b < a), "every model's loss decreases");
    let preds =
        vmap_axes(|a: &(Mlp, Tensor)| predict(&a.0, &a.1), [Some(0), None], 0)(&(ens.clone(), x.clone()));
    let mean = preds.mean_axes(&[0], false);
    let d = &mean - &y;
    println!(
        "ensemble-mean MSE {:.4}; best single model {:.4}",
        (&d * &d).mean().item(),
        l1.iter().cloned().fold(f32::INFINITY, f32::min)
    );
    // The same model trained alone reaches the same parameters: vmap changes nothing per model.
    let m0 = Mlp {
        w1: ens.w1.narrow(0, 0, 1).squeeze(0),
        b1: ens.b1.narrow(0, 0, 1).squeeze(0),
        w2: ens.w2.narrow(0, 0, 1).squeeze(0),
        b2: ens.b2.narrow(0, 0, 1).squeeze(0),
    };
    println!("model 0 alone: loss {:.4} (in the ensemble: {:.4})", loss(&m0, &x, &y).item(), l1[0]);
}
