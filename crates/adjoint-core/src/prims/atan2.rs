//! `atan2`: `atan2(y, x)`: `∂/∂y = x/(x²+y²)`, `∂/∂x = -y/(x²+y²)`.

use adjoint_tensor::ops::binary::BinaryOp;

use super::prelude::*;

/// The `atan2` primitive (NumPy broadcasting).
#[derive(Debug, Clone, Copy)]
pub struct Atan2;

impl SimplePrimitive for Atan2 {
    fn name(&self) -> &'static str {
        "atan2"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::binary(SimplePrimitive::name(self), &a[0], &a[1], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].binary(a[1], BinaryOp::Atan2)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (a, b) = (p[0], p[1]);
        let s = out.shape();
        let den = a * a + b * b;
        let ta = t[0].map(|y| y * b / &den);
        let tb = t[1].map(|x| -(x * a / &den));
        sum_tangents(ta, tb, s)
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let (a, b) = (p[0], p[1]);
        let (sa, sb) =
            (adjoint_tensor::Shape::from_slice(a.shape()), adjoint_tensor::Shape::from_slice(b.shape()));
        let (wa, wb) = (wants[0], wants[1]);
        Pullback::new((a.clone(), b.clone()), move |r, c| {
            let (a, b) = r;
            let den = a * a + b * b;
            grads![wa.then(|| unbroadcast(c * b / &den, &sa)), wb.then(|| unbroadcast(-(c * a / &den), &sb))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
