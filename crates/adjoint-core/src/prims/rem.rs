//! `rem`: remainder with the sign of the dividend (C `fmod`, `torch.fmod`): `∂/∂a = 1`, `∂/∂b = -trunc(a/b)`.

use adjoint_tensor::ops::binary::BinaryOp;

use super::prelude::*;

/// The `rem` primitive (NumPy broadcasting).
#[derive(Debug, Clone, Copy)]
pub struct Rem;

impl SimplePrimitive for Rem {
    fn name(&self) -> &'static str {
        "rem"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::binary(SimplePrimitive::name(self), &a[0], &a[1], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].binary(a[1], BinaryOp::Rem)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (a, b) = (p[0], p[1]);
        let s = out.shape();
        let ta = t[0].map(|x| bcast(x, s));
        let tb = t[1].map(|y| -(y * (a / b).trunc()));
        sum_tangents(ta, tb, s)
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let (a, b) = (p[0], p[1]);
        let (sa, sb) =
            (adjoint_tensor::Shape::from_slice(a.shape()), adjoint_tensor::Shape::from_slice(b.shape()));
        let (wa, wb) = (wants[0], wants[1]);
        Pullback::new((a.clone(), b.clone()), move |r, c| {
            let (a, b) = r;
            grads![
                wa.then(|| unbroadcast(c.clone(), &sa)),
                wb.then(|| unbroadcast(-(c * (a / b).trunc()), &sb))
            ]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
