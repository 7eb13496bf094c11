//! `log`: natural logarithm; `d log x = dx / x` (infinite at 0, as in every framework).

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `log` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Log;

impl SimplePrimitive for Log {
    fn name(&self) -> &'static str {
        "log"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Log)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(t / x)
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(x.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c / &r)]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
