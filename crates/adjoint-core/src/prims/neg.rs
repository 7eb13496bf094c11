//! `neg`: negation; linear, its own transpose.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `neg` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Neg;

impl SimplePrimitive for Neg {
    fn name(&self) -> &'static str {
        "neg"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Neg)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        let t = t[0]?;
        Some(-t)
    }
    fn vjp(&self, _p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new((), |_, c| grads![Some(-c)])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
