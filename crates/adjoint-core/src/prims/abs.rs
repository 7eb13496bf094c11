//! `abs`: absolute value; derivative `sign(x)`, so the subgradient chosen at 0 is 0 (as PyTorch and JAX).

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `abs` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Abs;

impl SimplePrimitive for Abs {
    fn name(&self) -> &'static str {
        "abs"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Abs)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(t * x.sign())
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(x.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * r.sign())]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
