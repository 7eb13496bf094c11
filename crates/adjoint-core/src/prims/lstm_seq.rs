//! `lstm_seq`: a whole LSTM layer's recurrence as one primitive — all `T` steps forward in one
//! kernel (`adjoint_tensor::ops::rnn::lstm_seq`) — and `lstm_seq_grad`, backpropagation
//! through time in one kernel.
//!
//! Inputs: the input projections `gx` of every step (`[T, B, 4H]`, time-major; the product
//! `x·W_ihᵀ` of all steps stays one `matmul` outside), the hidden weights `w_hh` (`[4H, H]`,
//! PyTorch's layout), the initial states `h0`, `c0` (`[B, H]`) and optionally the gate bias
//! `[4H]`, added to every step's pre-activations inside the kernel's cell pass (a separate
//! `gx + bias` was a pass over all `T·B·4H` values; its cotangent is the sum of `d_gx`).
//! Outputs `(hs, cs, a)`: every hidden state and cell state (`[T, B, H]`) and every gate
//! activation `a_t = (σ(i), σ(f), tanh(g), σ(o))` of the pre-activations
//! `gx_t + h_{t-1}·w_hhᵀ` (`[T, B, 4H]`). `a` is what the reverse pass needs besides the states
//! (no activation is recomputed); it is an ordinary output with its own cotangent, so that the
//! pullback is a function of the primitive's inputs and outputs only and is itself an
//! ordinary differentiable function.
//!
//! Why one primitive for the sequence: with one `lstm_cell` per step, reverse mode pays per
//! step a tape node, a `[B, 4H]·W` product, a `[4H, H]` weight-gradient product and its
//! accumulation into the weight's cotangent. Here the reverse pass keeps the per-step product
//! that the recurrence needs (`d_h_{t-1} = d_a_t·W`) and computes the weight gradient as **one**
//! product over all `T·B` rows (`d_aᵀ·[h0; h_0 … h_{T-2}]`), as cuDNN does.
//!
//! Derivatives of any order: the first-order reverse rule binds `lstm_seq_grad`; everything
//! else (tangents of either primitive, the reverse pass's own cotangents) comes from the
//! composite forms [`lstm_seq_composite`] (a loop of `lstm_cell`) and
//! [`lstm_seq_grad_composite`] (the same backward recurrence with ordinary ops) through nested
//! `jvp`/`vjp`, as for the cells. Batching: with unbatched weights the `vmap` axis is folded into `B`;
//! otherwise (and always for `lstm_seq_grad`, whose weight gradient is per example) one call
//! per example.

use adjoint_tensor::ops::rnn;
use smallvec::smallvec;

use super::prelude::*;
use super::{composite_jvp, composite_vjp};
use crate::batching::by_loop;
use crate::primitive::{Outs, Primitive};
use crate::trace::bind_multi;

/// The `lstm_seq` primitive: `(gx, w_hh, h0, c0[, bias]) → (hs, cs, a)`.
#[derive(Debug, Clone, Copy)]
pub struct LstmSeq;

/// The reverse pass of [`LstmSeq`]: `(w_hh, h0, c0, hs, cs, a, dhs, dcs[, da]) →
/// (d_gx, d_w_hh, d_h0, d_c0[, d_bias])`. `gates` says
/// whether the cotangent `da` of the output `a` is an operand (it is absent, i.e. zero, when
/// only the states are used); `bias` whether the cotangent of a gate bias (`d_gx` summed over
/// the steps and the batch, `[4H]`) is a fifth output, summed inside the kernel.
#[derive(Debug, Clone, Copy)]
pub struct LstmSeqGrad {
    /// Whether the last operand is the cotangent of `a`.
    pub gates: bool,
    /// Whether the bias cotangent is an output.
    pub bias: bool,
}

/// `(T, B, H)` from operands `[T, B, 4H]`, `[4H, H]`, `[B, H]`, `[B, H]`, then any of
/// `[T, B, H]` or `[T, B, 4H]` (`seq`), all of one float dtype.
#[track_caller]
fn check(op: &str, gx: &Aval, w: &Aval, states: &[Aval], seqs: &[Aval]) -> (usize, usize, usize) {
    let s = gx.shape.as_slice();
    let ok = s.len() == 3
        && s[2].is_multiple_of(4)
        && {
            let (t, b, h) = (s[0], s[1], s[2] / 4);
            w.shape.as_slice() == [4 * h, h]
                && states.iter().all(|x| x.shape.as_slice() == [b, h])
                && seqs.iter().all(|x| x.shape.as_slice() == [t, b, h] || x.shape.as_slice() == [t, b, 4 * h])
        }
        && [w].into_iter().chain(states).chain(seqs).all(|x| x.dtype == gx.dtype)
        && gx.dtype.is_float();
    if !ok {
        let got: Vec<String> = [gx, w].into_iter().chain(states).chain(seqs).map(|x| x.to_string()).collect();
        misuse(
            op,
            format!(
                "needs float operands of one dtype, [T, B, 4·H], [4·H, H], [B, H]…, got {}",
                got.join(", ")
            ),
        );
    }
    (s[0], s[1], s[2] / 4)
}

/// `(T, B, H)` of the composite forms' operands.
fn dims(gates: &Tensor, h0: &Tensor) -> (usize, usize, usize) {
    (gates.shape()[0], h0.shape()[0], h0.shape()[1])
}

/// Steps of a `[T, B, F]` tensor as `[B, F]` tensors.
fn steps(x: &Tensor) -> Vec<Tensor> {
    let (t, b, f) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    if t == 0 {
        return Vec::new();
    }
    x.split(0, &vec![1; t]).into_iter().map(|s| s.reshape(&[b, f])).collect()
}

/// `[T, B, F]` from `T` steps `[B, F]` (zeros when `T = 0`).
fn stacked(steps: &[Tensor], b: usize, f: usize, like: &Tensor) -> Tensor {
    if steps.is_empty() {
        return Tensor::full_of(&[0, b, f], 0.0, like.dtype());
    }
    let refs: Vec<&Tensor> = steps.iter().collect();
    Tensor::stack(&refs, 0)
}

/// The LSTM sequence with ordinary ops and `lstm_cell`: `[hs, cs, a]` from `[gx, w_hh, h0, c0]`.
/// The reference of the fused primitive and the source of its higher-order rules.
///
/// ```
/// use adjoint_core::{prims::lstm_seq::lstm_seq_composite, Tensor};
/// let (gx, w) = (Tensor::zeros(&[2, 1, 4]).to_f64(), Tensor::zeros(&[4, 1]).to_f64());
/// let s = Tensor::ones(&[1, 1]).to_f64();
/// let out = lstm_seq_composite(&[gx, w, s.clone(), s]);
/// assert_eq!(out[1].to_vec::<f64>(), vec![0.5, 0.25]); // σ(0)·c each step
/// assert_eq!(out[2].to_vec::<f64>()[..4], [0.5, 0.5, 0.0, 0.5]); // σ(0), σ(0), tanh(0), σ(0)
/// ```
pub fn lstm_seq_composite(a: &[Tensor]) -> Vec<Tensor> {
    let (_, b, h) = dims(&a[0], &a[2]);
    let wt = a[1].t();
    let (mut hp, mut cp) = (a[2].clone(), a[3].clone());
    let (mut hs, mut cs, mut acts) = (Vec::new(), Vec::new(), Vec::new());
    for x in steps(&a[0]) {
        let x = match a.get(4) {
            Some(bias) => x + bias,
            None => x,
        };
        let gh = hp.matmul(&wt);
        let p = (&x + &gh).split(1, &[h, h, h, h]);
        acts.push(Tensor::concat(&[&p[0].sigmoid(), &p[1].sigmoid(), &p[2].tanh(), &p[3].sigmoid()], 1));
        (hp, cp) = Tensor::lstm_cell(&x, &gh, &cp);
        hs.push(hp.clone());
        cs.push(cp.clone());
    }
    vec![stacked(&hs, b, h, &a[2]), stacked(&cs, b, h, &a[2]), stacked(&acts, b, 4 * h, &a[2])]
}

/// `[d_gx, d_w_hh, d_h0, d_c0]` from `[w_hh, h0, c0, hs, cs, a, dhs, dcs(, da)]` with ordinary
/// ops: backpropagation through time written step by step from the saved activations `a` and
/// cell states `cs` — the same function of the same operands as [`LstmSeqGrad`]'s kernel
/// (`hs[T-1]` is not read), hence its composite form.
pub fn lstm_seq_grad_composite(a: &[Tensor]) -> Vec<Tensor> {
    let (w, h0, c0) = (&a[0], &a[1], &a[2]);
    let (t, b, h) = dims(&a[5], h0);
    let (hs, cs, acts) = (steps(&a[3]), steps(&a[4]), steps(&a[5]));
    let (dhs, dcs) = (steps(&a[6]), steps(&a[7]));
    let das = a.get(8).map(steps);
    let (mut dh, mut dc) = (h0.zeros_like(), c0.zeros_like());
    let mut dg = vec![h0.zeros_like(); t];
    for s in (0..t).rev() {
        let cp = if s == 0 { c0 } else { &cs[s - 1] };
        let q = acts[s].split(1, &[h, h, h, h]);
        let (i, f, g, o) = (&q[0], &q[1], &q[2], &q[3]);
        let tc = cs[s].tanh();
        let dhs_ = &dhs[s] + &dh;
        let dct = &dcs[s] + &dc + &dhs_ * o * (1.0 - &tc * &tc);
        let mut pre = [&dct * g, &dct * cp, &dct * i, &dhs_ * &tc];
        if let Some(das) = &das {
            let e = das[s].split(1, &[h, h, h, h]);
            for (p, e) in pre.iter_mut().zip(e) {
                *p = &*p + e;
            }
        }
        let [pi, pf, pg, po] = pre;
        let d = Tensor::concat(
            &[&(pi * i * (1.0 - i)), &(pf * f * (1.0 - f)), &(pg * (1.0 - g * g)), &(po * o * (1.0 - o))],
            1,
        );
        dh = d.matmul(w);
        dc = dct * f;
        dg[s] = d;
    }
    let d_a = stacked(&dg, b, 4 * h, h0);
    if t == 0 {
        return vec![d_a, w.zeros_like(), dh, dc];
    }
    let mut prev = vec![h0];
    prev.extend(hs.iter().take(t - 1));
    let prev = Tensor::concat(&prev, 0);
    let dw = d_a.reshape(&[t * b, 4 * h]).t().matmul(&prev);
    vec![d_a, dw, dh, dc]
}

/// [`lstm_seq_grad_composite`] and the bias cotangent `d_gx` summed over steps and batch: the
/// composite form of [`LstmSeqGrad`] with `bias`.
pub fn lstm_seq_grad_bias_composite(a: &[Tensor]) -> Vec<Tensor> {
    let mut g = lstm_seq_grad_composite(a);
    let d_bias = g[0].sum_axes(&[0, 1], false);
    g.push(d_bias);
    g
}

impl Primitive for LstmSeq {
    fn name(&self) -> &'static str {
        "lstm_seq"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        if a.len() != 4 && a.len() != 5 {
            misuse("lstm_seq", format!("needs 4 operands and an optional bias, got {}", a.len()));
        }
        let (t, b, h) = check("lstm_seq", &a[0], &a[1], &a[2..4], &[]);
        let d = a[0].dtype;
        if let Some(bias) = a.get(4)
            && (bias.shape.as_slice() != [4 * h] || bias.dtype != d)
        {
            misuse("lstm_seq", format!("the bias must be [4·H] = [{}] of {d}, got {bias}", 4 * h));
        }
        smallvec![Aval::new(&[t, b, h], d), Aval::new(&[t, b, h], d), a[0].clone()]
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (hs, cs, g) = rnn::lstm_seq_bias(a[0], a[1], a[2], a[3], a.get(4).copied());
        smallvec![hs, cs, g]
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _outs: &[Tensor]) -> Outs<Option<Tensor>> {
        composite_jvp(lstm_seq_composite, p, t)
    }
    fn vjp(&self, p: &[&Tensor], outs: &[Tensor], wants: &[bool]) -> Pullback {
        let has_bias = p.len() == 5;
        let want_bias = has_bias && wants[4];
        let want_gx = wants[0];
        let wants = [wants[0] || want_bias, wants[1], wants[2], wants[3]];
        let res =
            vec![p[1].clone(), p[2].clone(), p[3].clone(), outs[0].clone(), outs[1].clone(), outs[2].clone()];
        Pullback::multi(res, move |r, cts| {
            if cts.iter().all(Option::is_none) {
                return Grads::new();
            }
            let dhs = cts[0].clone().unwrap_or_else(|| r[3].zeros_like());
            let dcs = cts[1].clone().unwrap_or_else(|| r[4].zeros_like());
            let mut ops = vec![&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &dhs, &dcs];
            ops.extend(cts[2].as_ref());
            // The bias is added to every step and row: its cotangent is `d_gx` summed over
            // both, which the kernel sums as it forms `d_gx`.
            let mut g = bind_multi(&LstmSeqGrad { gates: cts[2].is_some(), bias: want_bias }, &ops);
            let d_bias = if want_bias { g.pop() } else { None };
            let mut g = g.into_iter().zip(wants).map(|(g, w)| w.then_some(g));
            let d_gx = g.next().flatten();
            let mut out =
                grads![d_gx.filter(|_| want_gx), g.next().flatten(), g.next().flatten(), g.next().flatten()];
            if has_bias {
                out.push(d_bias);
            }
            out
        })
    }
    fn batch(
        &self,
        a: &[&Tensor],
        axes: &[Option<usize>],
        size: usize,
    ) -> (Outs<Tensor>, Outs<Option<usize>>) {
        if axes[1].is_some() || axes.get(4).is_some_and(Option::is_some) || size == 0 {
            return by_loop(self, a, axes, size);
        }
        // Shared weights: the examples are more rows of one batch, [T, S·B, ·].
        let gx = crate::batching::to_front(a[0], axes[0], size);
        let (t, b, g) = (gx.shape()[1], gx.shape()[2], gx.shape()[3]);
        let gx = gx.permute(&[1, 0, 2, 3]).reshape(&[t, size * b, g]);
        let state = |k: usize| {
            let s = crate::batching::to_front(a[k], axes[k], size);
            let h = s.shape()[2];
            s.reshape(&[size * b, h])
        };
        let (h0, c0) = (state(2), state(3));
        let mut ops = vec![&gx, a[1], &h0, &c0];
        ops.extend(a.get(4).copied());
        bind_multi(self, &ops)
            .into_iter()
            .map(|o| {
                let f = o.shape()[2];
                (o.reshape(&[t, size, b, f]), Some(1))
            })
            .unzip()
    }
}

impl LstmSeqGrad {
    /// The composite form with this primitive's outputs.
    fn composite(&self) -> super::Composite {
        if self.bias {
            lstm_seq_grad_bias_composite
        } else {
            lstm_seq_grad_composite
        }
    }
}

impl Primitive for LstmSeqGrad {
    fn name(&self) -> &'static str {
        "lstm_seq_grad"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        let n = if self.gates { 9 } else { 8 };
        if a.len() != n {
            misuse("lstm_seq_grad", format!("needs {n} operands, got {}", a.len()));
        }
        let (t, b, h) = check("lstm_seq_grad", &a[5], &a[0], &a[1..3], &[]);
        let seq_ok =
            [3, 4, 6, 7].iter().all(|&k| a[k].shape.as_slice() == [t, b, h] && a[k].dtype == a[5].dtype)
                && a[8..].iter().all(|x| x == &a[5]);
        if !seq_ok {
            let got: Vec<String> = a.iter().map(|x| x.to_string()).collect();
            misuse(
                "lstm_seq_grad",
                format!("hs, cs, dhs, dcs must be [T, B, H] and da like a, got {}", got.join(", ")),
            );
        }
        let mut outs = smallvec![a[5].clone(), a[0].clone(), a[1].clone(), a[2].clone()];
        if self.bias {
            outs.push(Aval::new(&[4 * h], a[5].dtype));
        }
        outs
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (w, h0, c0, hs, cs, acts, dhs, dcs, da) =
            (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a.get(8).copied());
        if self.bias {
            let (d_gx, dw, dh0, dc0, db) = rnn::lstm_seq_grad_bias(w, h0, c0, hs, cs, acts, dhs, dcs, da);
            return smallvec![d_gx, dw, dh0, dc0, db];
        }
        let (d_gx, dw, dh0, dc0) = rnn::lstm_seq_grad(w, h0, c0, hs, cs, acts, dhs, dcs, da);
        smallvec![d_gx, dw, dh0, dc0]
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _outs: &[Tensor]) -> Outs<Option<Tensor>> {
        composite_jvp(self.composite(), p, t)
    }
    fn vjp(&self, p: &[&Tensor], _outs: &[Tensor], wants: &[bool]) -> Pullback {
        composite_vjp(self.composite(), p, wants)
    }
    fn batch(
        &self,
        a: &[&Tensor],
        axes: &[Option<usize>],
        size: usize,
    ) -> (Outs<Tensor>, Outs<Option<usize>>) {
        by_loop(self, a, axes, size)
    }
}
