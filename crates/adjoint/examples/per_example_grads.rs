//! Per-example gradients with `vmap(grad(loss))`, and the clipped, noised average that
//! differentially private SGD (DP-SGD) takes in place of the ordinary batch gradient.
//!
//! ```text
//! cargo run --release -p adjoint --example per_example_grads
//! ```
//!
//! The loss is written for **one** example; `vmap` maps its gradient over the batch with the
//! parameters shared (`in_axes = None`) and the data batched on axis 0, giving a model-shaped
//! value whose every leaf has a leading batch axis: the gradient of each example.

use adjoint::prelude::*;
use adjoint::tensor::random::{normal, Key};

#[derive(Clone, Params)]
struct Mlp {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

/// Cross-entropy of one example: `x` [4], `label` one-hot [3].
fn loss(m: &Mlp, x: &Tensor, label: &Tensor) -> Tensor {
    let h = (x.matmul(&m.w1) + &m.b1).tanh();
    let logits = h.matmul(&m.w2) + &m.b2;
    -(logits.log_softmax(0) * label).sum()
}

fn randn(seed: u64, shape: &[usize], scale: f64) -> Tensor {
    Tensor::from_array(normal(&Key::new(seed), shape, DType::F32)) * scale
}

fn main() {
    let (batch, clip, noise) = (8, 1.0, 0.5);
    let model = Mlp {
        w1: randn(1, &[4, 16], 0.5),
        b1: Tensor::zeros(&[16]),
        w2: randn(2, &[16, 3], 0.5),
        b2: Tensor::zeros(&[3]),
    };
    let xs = randn(3, &[batch, 4], 1.0);
    let mut onehot = vec![0f32; batch * 3];
    for i in 0..batch {
        onehot[i * 3 + i % 3] = 1.0;
    }
    let labels = Tensor::from_vec(onehot, &[batch, 3]);

    // One batched pass: each leaf of `per` has shape [batch, ...].
    let per_example = vmap_axes(
        |a: &(Mlp, Tensor, Tensor)| grad(|m: &Mlp| loss(m, &a.1, &a.2))(&a.0),
        [None, Some(0), Some(0)],
        0,
    );
    let per = per_example(&(model.clone(), xs.clone(), labels.clone()));
    println!(
        "per-example gradient shapes: w1 {:?}, b1 {:?}, w2 {:?}, b2 {:?}",
        per.w1.shape(),
        per.b1.shape(),
        per.w2.shape(),
        per.b2.shape()
    );

    // Check one example against a plain gradient.
    let g3 =
        grad(|m: &Mlp| loss(m, &xs.narrow(0, 3, 1).squeeze(0), &labels.narrow(0, 3, 1).squeeze(0)))(&model);
    let diff = (per.w1.narrow(0, 3, 1).squeeze(0) - &g3.w1).abs().max().item();
    println!("example 3: max |vmap - single grad| over w1 = {diff:.2e}");
    assert!(diff < 1e-5);

    // Per-example norms over all leaves: Σ_leaves Σ_(non-batch axes) g².
    let mut sq = Tensor::zeros(&[batch]);
    per.for_each_tensor(&mut |g| {
        let axes: Vec<usize> = (1..g.rank()).collect();
        sq = &sq + (g * g).sum_axes(&axes, false);
    });
    let norms = sq.sqrt();
    println!(
        "per-example gradient norms: {:?}",
        norms.to_vec::<f32>().iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>()
    );

    // DP-SGD: clip each example's gradient to norm `clip`, average, add Gaussian noise.
    let scale = (Tensor::full(&[batch], clip) / &norms).minimum(&Tensor::ones(&[batch]));
    let key = Key::new(7);
    let mut k = 0;
    let private = per.map_tensors(&mut |g| {
        let mut s = vec![batch];
        s.extend(std::iter::repeat_n(1, g.rank() - 1));
        let clipped = (g * scale.reshape(&s)).sum_axes(&[0], false);
        k += 1;
        let z = Tensor::from_array(normal(&key.fold_in(k), clipped.shape(), DType::F32));
        (clipped + z * (noise * clip)) / batch as f64
    });
    let plain = grad(|m: &Mlp| {
        let f = vmap_axes(|a: &(Mlp, Tensor, Tensor)| loss(&a.0, &a.1, &a.2), [None, Some(0), Some(0)], 0);
        f(&(m.clone(), xs.clone(), labels.clone())).mean()
    })(&model);
    println!(
        "|mean gradient| = {:.4}, |clipped+noised mean| = {:.4} (w2)",
        (&plain.w2 * &plain.w2).sum().sqrt().item(),
        (&private.w2 * &private.w2).sum().sqrt().item()
    );
}
