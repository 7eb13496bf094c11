//! `tanh`: hyperbolic tangent; `d tanh x = (1 - tanh² x) dx`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `tanh` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Tanh;

impl SimplePrimitive for Tanh {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Tanh)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let t = t[0]?;
        Some(t * (1.0 - out * out))
    }
    fn vjp(&self, _p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * (1.0 - &r * &r))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
