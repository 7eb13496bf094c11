//! `relu`: `max(x, 0)` in one pass, and `relu_grad`, its derivative applied to a cotangent.
//!
//! - `relu(x)`: derivative `1` where `x > 0`, else `0` (so `0` at the kink, as PyTorch and
//!   JAX). Both rules are one `relu_grad` of the saved **output** `y` (positive exactly where
//!   `x` is): `dy = relu_grad(y, dx)`, `x̄ = relu_grad(y, ȳ)`.
//! - `relu_grad(y, g) = g` where `y > 0`, else `0`: linear in `g`, piecewise constant in `y`.
//!   Its own rules are `relu_grad(y, ·)` again for `g` and zero for `y` (the derivative of a
//!   step function almost everywhere), so every order of derivative of `relu` exists and is
//!   exact away from the kink.
//!
//! Before this primitive `relu` was `select(x > 0, x, 0)`: a comparison writing a mask, a
//! select reading three operands, and a select again in the reverse pass.

use adjoint_tensor::ops::binary::BinaryOp;
use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `relu` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Relu;

impl SimplePrimitive for Relu {
    fn name(&self) -> &'static str {
        "relu"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Relu)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        Some(out.relu_grad(t[0]?))
    }
    fn vjp(&self, _p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new(out.clone(), |y, c| grads![Some(y.relu_grad(c))])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}

/// The `relu_grad` primitive: `relu_grad(y, g)` is `g` where `y > 0`, else `0` (NumPy
/// broadcasting; float operands).
#[derive(Debug, Clone, Copy)]
pub struct ReluGrad;

impl SimplePrimitive for ReluGrad {
    fn name(&self) -> &'static str {
        "relu_grad"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::binary(SimplePrimitive::name(self), &a[0], &a[1], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].binary(a[1], BinaryOp::ReluGrad)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        // The mask's tangent contributes nothing (zero almost everywhere).
        Some(bcast(&p[0].relu_grad(t[1]?), out.shape()))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let sg = adjoint_tensor::Shape::from_slice(p[1].shape());
        let wg = wants[1];
        Pullback::new(p[0].clone(), move |y, c| grads![None, wg.then(|| unbroadcast(y.relu_grad(c), &sg))])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
