//! `sign`: −1, 0 or +1; piecewise constant, so its derivative is zero everywhere it exists.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `sign` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Sign;

impl SimplePrimitive for Sign {
    fn name(&self) -> &'static str {
        "sign"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Sign)
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
