//! `neg`: negation; linear, its own transpose.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `neg` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Neg;

impl Primitive for Neg {
    fn name(&self) -> &'static str {
        "neg"
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Neg)
    }
    #[allow(unused_variables)]
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(-t)
    }
    #[allow(unused_variables)]
    fn vjp(&self, p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new((), |r, c| grads![Some(-c)])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
