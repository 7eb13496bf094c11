//! `sqrt`: square root; `d √x = dx / (2√x)`, which is +∞ at 0 (as in PyTorch and JAX). For a norm use `Tensor::norm`, whose subgradient at 0 is 0.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `sqrt` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Sqrt;

impl SimplePrimitive for Sqrt {
    fn name(&self) -> &'static str {
        "sqrt"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Sqrt)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let t = t[0]?;
        Some(t / (out * 2.0))
    }
    fn vjp(&self, _p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c / (&r * 2.0))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
