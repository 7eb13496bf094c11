//! `tanh`: hyperbolic tangent; `d tanh x = (1 - tanh² x) dx`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `tanh` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Tanh;

impl Primitive for Tanh {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Tanh)
    }
    #[allow(unused_variables)]
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(t * (1.0 - out * out))
    }
    #[allow(unused_variables)]
    fn vjp(&self, p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * (1.0 - &r * &r))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
