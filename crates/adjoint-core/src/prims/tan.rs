//! `tan`: tangent; `d tan x = (1 + tan² x) dx`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `tan` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Tan;

impl SimplePrimitive for Tan {
    fn name(&self) -> &'static str {
        "tan"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Tan)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let t = t[0]?;
        Some(t * (out * out + 1.0))
    }
    fn vjp(&self, _p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * (&r * &r + 1.0))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
