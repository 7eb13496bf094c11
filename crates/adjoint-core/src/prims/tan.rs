//! `tan`: tangent; `d tan x = (1 + tan² x) dx`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `tan` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Tan;

impl Primitive for Tan {
    fn name(&self) -> &'static str {
        "tan"
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Tan)
    }
    #[allow(unused_variables)]
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(t * (out * out + 1.0))
    }
    #[allow(unused_variables)]
    fn vjp(&self, p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * (&r * &r + 1.0))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
