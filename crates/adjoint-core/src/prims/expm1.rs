//! `expm1`: `exp(x) - 1`, accurate near 0; `d = (out + 1) dx`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `expm1` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Expm1;

impl SimplePrimitive for Expm1 {
    fn name(&self) -> &'static str {
        "expm1"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Expm1)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let t = t[0]?;
        Some(t * (out + 1.0))
    }
    fn vjp(&self, _p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * (&r + 1.0))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
