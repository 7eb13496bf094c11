//! `div`: division; `d(a/b) = da/b - (a/b) db/b`.

use adjoint_tensor::ops::binary::BinaryOp;

use super::prelude::*;

/// The `div` primitive (NumPy broadcasting).
#[derive(Debug, Clone, Copy)]
pub struct Div;

impl SimplePrimitive for Div {
    fn name(&self) -> &'static str {
        "div"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::binary(SimplePrimitive::name(self), &a[0], &a[1], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].binary(a[1], BinaryOp::Div)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let b = p[1];
        let s = out.shape();
        let ta = t[0].map(|x| x / b);
        let tb = t[1].map(|y| -(y * out / b));
        sum_tangents(ta, tb, s)
    }
    fn vjp(&self, p: &[&Tensor], out: &Tensor, wants: &[bool]) -> Pullback {
        let (a, b) = (p[0], p[1]);
        let (sa, sb) =
            (adjoint_tensor::Shape::from_slice(a.shape()), adjoint_tensor::Shape::from_slice(b.shape()));
        let (wa, wb) = (wants[0], wants[1]);
        Pullback::new((b.clone(), wb.then(|| out.clone())), move |r, c| {
            let (b, out) = r;
            grads![wa.then(|| unbroadcast(c / b, &sa)), out.as_ref().map(|o| unbroadcast(-(c * o / b), &sb))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
