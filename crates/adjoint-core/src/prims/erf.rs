//! `erf`: error function; `d erf x = 2/√π e^{-x²} dx`.

use adjoint_tensor::ops::unary::UnaryOp;

use super::prelude::*;

/// The `erf` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Erf;

impl SimplePrimitive for Erf {
    fn name(&self) -> &'static str {
        "erf"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].unary(UnaryOp::Erf)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        let (x, t) = (p[0], t[0]?);
        Some(t * (-(x * x)).exp() * std::f64::consts::FRAC_2_SQRT_PI)
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let x = p[0];
        Pullback::new(x.clone(), |r, c| {
            let r = r.clone();
            grads![Some(c * (-(&r * &r)).exp() * std::f64::consts::FRAC_2_SQRT_PI)]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
