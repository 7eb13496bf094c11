//! `gru_cell`: one GRU step fused (`adjoint_tensor::ops::rnn::gru_cell`), and `gru_cell_grad`,
//! its reverse pass giving the gradient of every gate and of the hidden state in one pass.
//!
//! Inputs: the input projection `gx` and the hidden projection `gh` of the gates (`[B, 3H]`,
//! gates `(r, z, n)`, biases included — `b_hn` must sit inside `gh` since PyTorch computes
//! `n = tanh(gx_n + r ⊙ gh_n)`) and the hidden state `h` (`[B, H]`); output `h'`. The design
//! is [`lstm_cell`](super::lstm_cell)'s: the pullback binds `gru_cell_grad` (activations
//! recomputed), higher-order rules come from the composite form [`gru_composite`] through
//! nested transforms, batching folds the `vmap` axis into the rows.

use adjoint_tensor::ops::rnn;
use smallvec::smallvec;

use super::prelude::*;
use super::{composite_jvp, composite_vjp};
use crate::batching::by_rows;
use crate::primitive::{Outs, Primitive};
use crate::trace::bind_multi;

/// The `gru_cell` primitive: `(gx, gh, h) → h'`.
#[derive(Debug, Clone, Copy)]
pub struct GruCell;

/// The reverse pass of [`GruCell`]: `(gx, gh, h, dh) → (d_gx, d_gh, d_h)`.
#[derive(Debug, Clone, Copy)]
pub struct GruCellGrad;

/// The GRU step with ordinary ops: `[h']` from `[gx, gh, h]` (PyTorch's equations). The
/// reference of the fused primitive and the source of its higher-order rules.
///
/// ```
/// use adjoint_core::{prims::gru_cell::gru_composite, Tensor};
/// let (g, h) = (Tensor::zeros(&[1, 6]).to_f64(), Tensor::ones(&[1, 2]).to_f64());
/// assert_eq!(gru_composite(&[g.clone(), g, h])[0].to_vec::<f64>(), vec![0.5; 2]);
/// ```
pub fn gru_composite(a: &[Tensor]) -> Vec<Tensor> {
    let h = a[2].shape()[1];
    let x = a[0].split(1, &[2 * h, h]);
    let y = a[1].split(1, &[2 * h, h]);
    let rz = (&x[0] + &y[0]).sigmoid().split(1, &[h, h]);
    let n = (&x[1] + &rz[0] * &y[1]).tanh();
    vec![&n + &rz[1] * (&a[2] - &n)]
}

/// `[d_gx, d_gh, d_h]` from `[gx, gh, h, dh]`: the reverse pass of [`gru_composite`] (by
/// `vjp`), the composite form of [`GruCellGrad`].
fn gru_grad_composite(a: &[Tensor]) -> Vec<Tensor> {
    let (_, pb) = crate::transforms::vjp(|p: &Vec<Tensor>| gru_composite(p), &a[..3].to_vec());
    pb(&vec![a[3].clone()])
}

impl SimplePrimitive for GruCell {
    fn name(&self) -> &'static str {
        "gru_cell"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::recurrent_cell("gru_cell", 3, a);
        a[2].clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        rnn::gru_cell(a[0], a[1], a[2])
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        composite_jvp(gru_composite, p, t).swap_remove(0)
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let wants = [wants[0], wants[1], wants[2]];
        Pullback::new(vec![p[0].clone(), p[1].clone(), p[2].clone()], move |r, c| {
            let g = bind_multi(&GruCellGrad, &[&r[0], &r[1], &r[2], c]);
            grads![
                wants[0].then(|| g[0].clone()),
                wants[1].then(|| g[1].clone()),
                wants[2].then(|| g[2].clone())
            ]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        let (mut o, mut ax) = by_rows(self, a, axes, size);
        (o.swap_remove(0), ax.swap_remove(0))
    }
}

impl Primitive for GruCellGrad {
    fn name(&self) -> &'static str {
        "gru_cell_grad"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        rules::recurrent_cell("gru_cell_grad", 3, a);
        smallvec![a[0].clone(), a[1].clone(), a[2].clone()]
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (dx, dy, dh) = rnn::gru_cell_grad(a[0], a[1], a[2], a[3]);
        smallvec![dx, dy, dh]
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _outs: &[Tensor]) -> Outs<Option<Tensor>> {
        composite_jvp(gru_grad_composite, p, t)
    }
    fn vjp(&self, p: &[&Tensor], _outs: &[Tensor], wants: &[bool]) -> Pullback {
        composite_vjp(gru_grad_composite, p, wants)
    }
    fn batch(
        &self,
        a: &[&Tensor],
        axes: &[Option<usize>],
        size: usize,
    ) -> (Outs<Tensor>, Outs<Option<usize>>) {
        by_rows(self, a, axes, size)
    }
}
