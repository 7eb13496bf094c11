//! `log1p`: `log(1 + x)`, accurate near 0; `d = dx / (1 + x)`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `log1p` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Log1p;

impl SimplePrimitive for Log1p {
    fn name(&self) -> &'static str {
        "log1p"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Log1p)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(t / (x + 1.0))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(x.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c / (&r + 1.0))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
