//! `sigmoid`: logistic function, computed stably; `dσ = σ(1-σ) dx`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `sigmoid` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Sigmoid;

impl Primitive for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Sigmoid)
    }
    #[allow(unused_variables)]
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(t * (out * (1.0 - out)))
    }
    #[allow(unused_variables)]
    fn vjp(&self, p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * (&r * (1.0 - &r)))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
