//! 2-D convolution and its two transposes, each a primitive whose rules are written with the
//! other two — so convolutions differentiate to any order:
//! - `conv2d(x, w)`; `∂/∂x` is `conv2d_input_grad(ḡ, w)`, `∂/∂w` is `conv2d_weight_grad(x, ḡ)`;
//! - `conv2d_input_grad(g, w)` is linear in both: its transposes are `conv2d(c, w)` (for `g`)
//!   and `conv2d_weight_grad(c, g)` (for `w`);
//! - `conv2d_weight_grad(x, g)` is linear in both: transposes `conv2d_input_grad(g, c)` (for
//!   `x`) and `conv2d(x, c)` (for `g`).
//!
//! 1-D convolution is the composite with a unit height.
//!
//! Batching (`vmap`): with a shared weight the batch folds into `N` (one convolution over
//! `B·N` images). With a batched weight it becomes a grouped convolution: examples are
//! stacked along channels and each example's weight is its own group (`groups · B`), so the
//! whole batch is still one kernel call; the transposes batch the same way.

use adjoint_tensor::ops::conv::{conv2d_output_shape, Conv2dOptions};

use crate::batching::by_loop1;

use super::prelude::*;

/// `conv2d(input [N,C,H,W], weight [O,C/g,KH,KW]) -> [N,O,OH,OW]` (cross-correlation).
#[derive(Debug, Clone, Copy)]
pub struct Conv2d(pub Conv2dOptions);

/// The input-gradient of `conv2d` (a transposed convolution): `(grad_out, weight) -> input`.
#[derive(Debug, Clone)]
pub struct Conv2dInputGrad {
    /// Convolution parameters.
    pub params: Conv2dOptions,
    /// Shape of the convolution's input.
    pub input_shape: Vec<usize>,
}

/// The weight-gradient of `conv2d`: `(input, grad_out) -> weight`.
#[derive(Debug, Clone)]
pub struct Conv2dWeightGrad {
    /// Convolution parameters.
    pub params: Conv2dOptions,
    /// Shape of the convolution's weight.
    pub weight_shape: Vec<usize>,
}

pub(crate) fn conv2d(x: &Tensor, w: &Tensor, p: Conv2dOptions) -> Tensor {
    crate::trace::bind(&Conv2d(p), &[x, w])
}
pub(crate) fn input_grad(g: &Tensor, w: &Tensor, p: Conv2dOptions, input_shape: &[usize]) -> Tensor {
    crate::trace::bind(&Conv2dInputGrad { params: p, input_shape: input_shape.to_vec() }, &[g, w])
}
pub(crate) fn weight_grad(x: &Tensor, g: &Tensor, p: Conv2dOptions, weight_shape: &[usize]) -> Tensor {
    crate::trace::bind(&Conv2dWeightGrad { params: p, weight_shape: weight_shape.to_vec() }, &[x, g])
}

/// `[B, N, rest...]` → `[B·N, rest...]`.
fn fold_front(t: &Tensor) -> Tensor {
    let s = t.shape();
    let mut f = vec![s[0] * s[1]];
    f.extend_from_slice(&s[2..]);
    t.reshape(&f)
}

/// `[N, C, ...]` batched at `axis` (or shared) → `[N, B·C, ...]`.
fn fold_channels(t: &Tensor, axis: Option<usize>, size: usize) -> Tensor {
    let t = match axis {
        Some(a) => move_axis(t, a, 1),
        None => {
            let mut s = t.shape().to_vec();
            s.insert(1, size);
            t.unsqueeze(1).broadcast_to(&s)
        }
    };
    let s = t.shape();
    let mut f = vec![s[0], s[1] * s[2]];
    f.extend_from_slice(&s[3..]);
    t.reshape(&f)
}

/// `[N, B·C, ...]` → `[N, B, C, ...]`.
fn unfold_channels(t: &Tensor, size: usize) -> Tensor {
    let s = t.shape();
    let mut f = vec![s[0], size, s[1] / size];
    f.extend_from_slice(&s[2..]);
    t.reshape(&f)
}

/// `[B, N, ...]` from `[B·N, ...]`.
fn unfold_front(t: &Tensor, size: usize) -> Tensor {
    let s = t.shape();
    let mut f = vec![size, s[0] / size];
    f.extend_from_slice(&s[1..]);
    t.reshape(&f)
}

/// Float operands of one dtype, each of rank 4.
#[track_caller]
fn check_operands(op: &str, a: &Aval, b: &Aval) {
    if a.dtype != b.dtype || !a.dtype.is_float() {
        misuse(op, format!("needs float operands of one dtype, got {} and {}", a.dtype, b.dtype));
    }
    if a.rank() != 4 || b.rank() != 4 {
        misuse(
            op,
            format!("needs operands of rank 4, got {:?} and {:?}", a.shape.as_slice(), b.shape.as_slice()),
        );
    }
}

/// The output shape of `conv2d(input, weight)`, or the op's misuse message.
#[track_caller]
fn conv_out(op: &str, input: &[usize], weight: &[usize], p: &Conv2dOptions) -> Vec<usize> {
    match conv2d_output_shape(input, weight, p) {
        Ok(s) => s,
        Err(e) => misuse(op, e.message),
    }
}

impl SimplePrimitive for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        if a[0].dtype != a[1].dtype || !a[0].dtype.is_float() {
            misuse(
                "conv2d",
                format!("needs float operands of one dtype, got {} and {}", a[0].dtype, a[1].dtype),
            );
        }
        Aval::new(&conv_out("conv2d", &a[0].shape, &a[1].shape, &self.0), a[0].dtype)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].conv2d(a[1], &self.0)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let tx = t[0].map(|tx| conv2d(tx, p[1], self.0));
        let tw = t[1].map(|tw| conv2d(p[0], tw, self.0));
        sum_tangents(tx, tw, out.shape())
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let (xs, ws, prm) = (
            adjoint_tensor::Shape::from_slice(p[0].shape()),
            adjoint_tensor::Shape::from_slice(p[1].shape()),
            self.0,
        );
        let (wx, ww) = (wants[0], wants[1]);
        Pullback::new((ww.then(|| p[0].clone()), wx.then(|| p[1].clone())), move |(x, w), c| {
            grads![
                w.as_ref().map(|w| input_grad(c, w, prm, &xs)),
                x.as_ref().map(|x| weight_grad(x, c, prm, &ws))
            ]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        if size == 0 {
            return by_loop1(self, a, axes);
        }
        let p = self.0;
        match axes[1] {
            None => {
                let x = fold_front(&move_axis(a[0], axes[0].expect("batched"), 0));
                (unfold_front(&conv2d(&x, a[1], p), size), Some(0))
            }
            Some(wa) => {
                let w = fold_front(&move_axis(a[1], wa, 0));
                let x = fold_channels(a[0], axes[0], size);
                let q = Conv2dOptions { groups: p.groups * size, ..p };
                (unfold_channels(&conv2d(&x, &w, q), size), Some(1))
            }
        }
    }
}

impl SimplePrimitive for Conv2dInputGrad {
    fn name(&self) -> &'static str {
        "conv2d_input_grad"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let op = "conv2d_input_grad";
        check_operands(op, &a[0], &a[1]);
        let expect = conv_out(op, &self.input_shape, &a[1].shape, &self.params);
        if a[0].shape.as_slice() != expect.as_slice() {
            misuse(
                op,
                format!(
                    "output gradient {:?} does not fit input {:?} and weight {:?} (expected {expect:?})",
                    a[0].shape.as_slice(),
                    self.input_shape,
                    a[1].shape.as_slice()
                ),
            );
        }
        Aval::new(&self.input_shape, a[0].dtype)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        Array::conv2d_input_grad(a[0], a[1], &self.input_shape, &self.params)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let tg = t[0].map(|tg| input_grad(tg, p[1], self.params, &self.input_shape));
        let tw = t[1].map(|tw| input_grad(p[0], tw, self.params, &self.input_shape));
        sum_tangents(tg, tw, out.shape())
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let (ws, prm) = (adjoint_tensor::Shape::from_slice(p[1].shape()), self.params);
        let (wg, ww) = (wants[0], wants[1]);
        Pullback::new((ww.then(|| p[0].clone()), wg.then(|| p[1].clone())), move |(g, w), c| {
            grads![w.as_ref().map(|w| conv2d(c, w, prm)), g.as_ref().map(|g| weight_grad(c, g, prm, &ws))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        if size == 0 {
            return by_loop1(self, a, axes);
        }
        let (p, s) = (self.params, &self.input_shape);
        match axes[1] {
            None => {
                let g = fold_front(&move_axis(a[0], axes[0].expect("batched"), 0));
                let shape = [size * s[0], s[1], s[2], s[3]];
                (unfold_front(&input_grad(&g, a[1], p, &shape), size), Some(0))
            }
            Some(wa) => {
                let w = fold_front(&move_axis(a[1], wa, 0));
                let g = fold_channels(a[0], axes[0], size);
                let q = Conv2dOptions { groups: p.groups * size, ..p };
                let shape = [s[0], size * s[1], s[2], s[3]];
                (unfold_channels(&input_grad(&g, &w, q, &shape), size), Some(1))
            }
        }
    }
}

impl SimplePrimitive for Conv2dWeightGrad {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let op = "conv2d_weight_grad";
        check_operands(op, &a[0], &a[1]);
        let expect = conv_out(op, &a[0].shape, &self.weight_shape, &self.params);
        if a[1].shape.as_slice() != expect.as_slice() {
            misuse(
                op,
                format!(
                    "output gradient {:?} does not fit input {:?} and weight {:?} (expected {expect:?})",
                    a[1].shape.as_slice(),
                    a[0].shape.as_slice(),
                    self.weight_shape
                ),
            );
        }
        Aval::new(&self.weight_shape, a[0].dtype)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        Array::conv2d_weight_grad(a[0], a[1], &self.weight_shape, &self.params)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let tx = t[0].map(|tx| weight_grad(tx, p[1], self.params, &self.weight_shape));
        let tg = t[1].map(|tg| weight_grad(p[0], tg, self.params, &self.weight_shape));
        sum_tangents(tx, tg, out.shape())
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let (xs, prm) = (adjoint_tensor::Shape::from_slice(p[0].shape()), self.params);
        let (wx, wg) = (wants[0], wants[1]);
        Pullback::new((wg.then(|| p[0].clone()), wx.then(|| p[1].clone())), move |(x, g), c| {
            grads![g.as_ref().map(|g| input_grad(g, c, prm, &xs)), x.as_ref().map(|x| conv2d(x, c, prm))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        // The weight gradient sums over N, so the batch cannot fold into N: group it.
        if size == 0 {
            return by_loop1(self, a, axes);
        }
        let (p, s) = (self.params, &self.weight_shape);
        let x = fold_channels(a[0], axes[0], size);
        let g = fold_channels(a[1], axes[1], size);
        let q = Conv2dOptions { groups: p.groups * size, ..p };
        let shape = [size * s[0], s[1], s[2], s[3]];
        (unfold_front(&weight_grad(&x, &g, q, &shape), size), Some(0))
    }
}
