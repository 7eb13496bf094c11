//! `exp`: `d exp(x) = exp(x) dx`; keeps the output as residual.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `exp` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Exp;

impl SimplePrimitive for Exp {
    fn name(&self) -> &'static str {
        "exp"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Exp)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let t = t[0]?;
        Some(t * out)
    }
    fn vjp(&self, _p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * &r)]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
