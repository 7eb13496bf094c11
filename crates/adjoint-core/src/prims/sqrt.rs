//! `sqrt`: square root; `d √x = dx / (2√x)`, which is +∞ at 0 (as in PyTorch and JAX). For a norm use `Tensor::norm`, whose subgradient at 0 is 0.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `sqrt` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Sqrt;

impl Primitive for Sqrt {
    fn name(&self) -> &'static str {
        "sqrt"
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Sqrt)
    }
    #[allow(unused_variables)]
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(t / (out * 2.0))
    }
    #[allow(unused_variables)]
    fn vjp(&self, p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c / (&r * 2.0))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
