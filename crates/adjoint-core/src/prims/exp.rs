//! `exp`: `d exp(x) = exp(x) dx`; keeps the output as residual.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `exp` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Exp;

impl Primitive for Exp {
    fn name(&self) -> &'static str {
        "exp"
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Exp)
    }
    #[allow(unused_variables)]
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(t * out)
    }
    #[allow(unused_variables)]
    fn vjp(&self, p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(out.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * &r)]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
