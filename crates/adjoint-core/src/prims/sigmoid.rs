//! `sigmoid`: logistic function, computed stably; `dσ = σ(1-σ) dx`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `sigmoid` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Sigmoid;

impl SimplePrimitive for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Sigmoid)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let t = t[0]?;
        Some(t * (out * (1.0 - out)))
    }
    fn vjp(&self, _p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * (&r * (1.0 - &r)))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
