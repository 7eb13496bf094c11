//! `expm1`: `exp(x) - 1`, accurate near 0; `d = (out + 1) dx`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `expm1` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Expm1;

impl Primitive for Expm1 {
    fn name(&self) -> &'static str {
        "expm1"
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Expm1)
    }
    #[allow(unused_variables)]
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(t * (out + 1.0))
    }
    #[allow(unused_variables)]
    fn vjp(&self, p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * (&r + 1.0))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
