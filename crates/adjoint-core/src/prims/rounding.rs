//! `floor`, `ceil`, `round`: piecewise constant, derivative zero (symbolic, never allocated).

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// A rounding primitive; the op is one of `Floor`, `Ceil`, `Round` (half to even).
#[derive(Debug, Clone, Copy)]
pub struct Rounding(pub UnaryOp);

impl SimplePrimitive for Rounding {
    fn name(&self) -> &'static str {
        match self.0 {
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            _ => "round",
        }
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(self.0)
    }
    fn jvp(&self, _p: &[&Tensor], _t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        None
    }
    fn vjp(&self, _p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new((), |_, _| grads![None])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
