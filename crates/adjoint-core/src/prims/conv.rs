//! 2-D convolution and its two transposes, each a primitive whose rules are written with the
//! other two — so convolutions differentiate to any order:
//! - `conv2d(x, w)`; `∂/∂x` is `conv2d_input_grad(ḡ, w)`, `∂/∂w` is `conv2d_weight_grad(x, ḡ)`;
//! - `conv2d_input_grad(g, w)` is linear in both: its transposes are `conv2d(c, w)` (for `g`)
//!   and `conv2d_weight_grad(c, g)` (for `w`);
//! - `conv2d_weight_grad(x, g)` is linear in both: transposes `conv2d_input_grad(g, c)` (for
//!   `x`) and `conv2d(x, c)` (for `g`).
//!
//! 1-D convolution is the composite with a unit height.

use adjoint_tensor::ops::conv::Conv2dParams;

use super::prelude::*;

/// `conv2d(input [N,C,H,W], weight [O,C/g,KH,KW]) -> [N,O,OH,OW]` (cross-correlation).
#[derive(Debug, Clone, Copy)]
pub struct Conv2d(pub Conv2dParams);

/// The input-gradient of `conv2d` (a transposed convolution): `(grad_out, weight) -> input`.
#[derive(Debug, Clone)]
pub struct Conv2dInputGrad {
    /// Convolution parameters.
    pub params: Conv2dParams,
    /// Shape of the convolution's input.
    pub input_shape: Vec<usize>,
}

/// The weight-gradient of `conv2d`: `(input, grad_out) -> weight`.
#[derive(Debug, Clone)]
pub struct Conv2dWeightGrad {
    /// Convolution parameters.
    pub params: Conv2dParams,
    /// Shape of the convolution's weight.
    pub weight_shape: Vec<usize>,
}

pub(crate) fn conv2d(x: &Tensor, w: &Tensor, p: Conv2dParams) -> Tensor {
    crate::trace::bind(&Conv2d(p), &[x, w])
}
pub(crate) fn input_grad(g: &Tensor, w: &Tensor, p: Conv2dParams, input_shape: &[usize]) -> Tensor {
    crate::trace::bind(&Conv2dInputGrad { params: p, input_shape: input_shape.to_vec() }, &[g, w])
}
pub(crate) fn weight_grad(x: &Tensor, g: &Tensor, p: Conv2dParams, weight_shape: &[usize]) -> Tensor {
    crate::trace::bind(&Conv2dWeightGrad { params: p, weight_shape: weight_shape.to_vec() }, &[x, g])
}

impl Primitive for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d"
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
}

impl Primitive for Conv2dInputGrad {
    fn name(&self) -> &'static str {
        "conv2d_input_grad"
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
}

impl Primitive for Conv2dWeightGrad {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
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
}
