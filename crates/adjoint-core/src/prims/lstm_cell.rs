//! `lstm_cell`: one LSTM step fused — gate nonlinearities and state update in one pass
//! (`adjoint_tensor::ops::rnn::lstm_cell`) — and `lstm_cell_grad`, its reverse pass giving the
//! gradient of all four gates and of the cell state in one pass.
//!
//! Inputs: the input projection `gx` and the hidden projection `gh` of the gates (`[B, 4H]`,
//! gates `(i, f, g, o)`; the matrix products stay `matmul`s) and the cell state `c` (`[B, H]`).
//! Outputs `(h', c')`. The pullback binds `lstm_cell_grad`, which recomputes the activations
//! from its inputs, so the tape keeps only `gx`, `gh`, `c`.
//!
//! Derivatives of any order: both primitives' other rules (the cell's tangents, the reverse
//! pass's own tangents and cotangents) come from the composite form [`lstm_composite`] —
//! ordinary ops — through a nested `jvp`/`vjp` ([`composite_jvp`](super::composite_jvp)).
//! Only first-order reverse mode, the training path, runs the fused kernels; `jit` stages both
//! primitives as they are, so a staged gradient runs the same kernels as an eager one.
//! Batching folds the `vmap` axis into the rows (`by_rows`).

use adjoint_tensor::ops::rnn;
use smallvec::smallvec;

use super::prelude::*;
use super::{composite_jvp, composite_vjp};
use crate::batching::by_rows;
use crate::primitive::{Outs, Primitive};
use crate::trace::bind_multi;

/// The `lstm_cell` primitive: `(gx, gh, c) → (h', c')`.
#[derive(Debug, Clone, Copy)]
pub struct LstmCell;

/// The reverse pass of [`LstmCell`]: `(gx, gh, c, dh, dc) → (d_gates, d_c)`; `d_gates`
/// (`[B, 4H]`) is the cotangent of both `gx` and `gh`.
#[derive(Debug, Clone, Copy)]
pub struct LstmCellGrad;

/// The LSTM step with ordinary ops: `[h', c']` from `[gx, gh, c]` (PyTorch's equations). The
/// reference of the fused primitive and the source of its higher-order rules.
///
/// ```
/// use adjoint_core::{prims::lstm_cell::lstm_composite, Tensor};
/// let (g, c) = (Tensor::zeros(&[2, 12]).to_f64(), Tensor::ones(&[2, 3]).to_f64());
/// let hc = lstm_composite(&[g.clone(), g, c]);
/// assert_eq!(hc[1].to_vec::<f64>(), vec![0.5; 6]); // σ(0)·1 + σ(0)·tanh(0)
/// ```
pub fn lstm_composite(a: &[Tensor]) -> Vec<Tensor> {
    let h = a[2].shape()[1];
    let g = &a[0] + &a[1];
    let parts = g.split(1, &[h, h, h, h]);
    let c = parts[1].sigmoid() * &a[2] + parts[0].sigmoid() * parts[2].tanh();
    vec![parts[3].sigmoid() * c.tanh(), c]
}

/// `[d_gates, d_c]` from `[gx, gh, c, dh, dc]`: the reverse pass of [`lstm_composite`] (by
/// `vjp`), the composite form of [`LstmCellGrad`].
fn lstm_grad_composite(a: &[Tensor]) -> Vec<Tensor> {
    let (_, pb) = crate::transforms::vjp(|p: &Vec<Tensor>| lstm_composite(p), &a[..3].to_vec());
    let mut g = pb(&a[3..].to_vec());
    let dc = g.pop().expect("three cotangents");
    vec![g.swap_remove(0), dc]
}

impl Primitive for LstmCell {
    fn name(&self) -> &'static str {
        "lstm_cell"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        rules::recurrent_cell("lstm_cell", 4, a);
        smallvec![a[2].clone(), a[2].clone()]
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (h, c) = rnn::lstm_cell(a[0], a[1], a[2]);
        smallvec![h, c]
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _outs: &[Tensor]) -> Outs<Option<Tensor>> {
        composite_jvp(lstm_composite, p, t)
    }
    fn vjp(&self, p: &[&Tensor], _outs: &[Tensor], wants: &[bool]) -> Pullback {
        let wants = [wants[0], wants[1], wants[2]];
        Pullback::multi(vec![p[0].clone(), p[1].clone(), p[2].clone()], move |r, cts| {
            if cts.iter().all(Option::is_none) {
                return Grads::new();
            }
            let ct = |k: usize| cts[k].clone().unwrap_or_else(|| r[2].zeros_like());
            let g = bind_multi(&LstmCellGrad, &[&r[0], &r[1], &r[2], &ct(0), &ct(1)]);
            grads![
                wants[0].then(|| g[0].clone()),
                wants[1].then(|| g[0].clone()),
                wants[2].then(|| g[1].clone())
            ]
        })
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

impl Primitive for LstmCellGrad {
    fn name(&self) -> &'static str {
        "lstm_cell_grad"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        rules::recurrent_cell("lstm_cell_grad", 4, a);
        smallvec![a[0].clone(), a[2].clone()]
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (dg, dc) = rnn::lstm_cell_grad(a[0], a[1], a[2], a[3], a[4]);
        smallvec![dg, dc]
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _outs: &[Tensor]) -> Outs<Option<Tensor>> {
        composite_jvp(lstm_grad_composite, p, t)
    }
    fn vjp(&self, p: &[&Tensor], _outs: &[Tensor], wants: &[bool]) -> Pullback {
        composite_vjp(lstm_grad_composite, p, wants)
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
