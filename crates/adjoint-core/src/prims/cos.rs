//! `cos`: cosine; `d cos x = -sin x dx`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `cos` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Cos;

impl Primitive for Cos {
    fn name(&self) -> &'static str {
        "cos"
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Cos)
    }
    #[allow(unused_variables)]
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(-(t * x.sin()))
    }
    #[allow(unused_variables)]
    fn vjp(&self, p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(x.clone(), |r, c| {
            let r = r.clone();
            grads![Some(-(c * r.sin()))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
