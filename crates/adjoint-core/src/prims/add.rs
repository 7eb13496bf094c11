//! `add`: addition; linear: the cotangent flows to both operands, summed over broadcast dims.

use adjoint_tensor::ops::binary::BinaryOp;

use super::prelude::*;

/// The `add` primitive (NumPy broadcasting).
#[derive(Debug, Clone, Copy)]
pub struct Add;

impl SimplePrimitive for Add {
    fn name(&self) -> &'static str {
        "add"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::binary(SimplePrimitive::name(self), &a[0], &a[1], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].binary(a[1], BinaryOp::Add)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let s = out.shape();
        match (t[0], t[1]) {
            (Some(x), Some(y)) => Some(x + y),
            (Some(x), None) => Some(bcast(x, s)),
            (None, Some(y)) => Some(bcast(y, s)),
            (None, None) => None,
        }
    }
    fn vjp(&self, p: &[&Tensor], out: &Tensor, wants: &[bool]) -> Pullback {
        let (a, b) = (p[0], p[1]);
        if let Some(pb) = pass_through::<false>(p, out, wants) {
            return pb;
        }
        let (wa, wb) = (wants[0], wants[1]);
        let (sa, sb) =
            (adjoint_tensor::Shape::from_slice(a.shape()), adjoint_tensor::Shape::from_slice(b.shape()));
        Pullback::new((), move |_, c| {
            grads![wa.then(|| unbroadcast(c.clone(), &sa)), wb.then(|| unbroadcast(c.clone(), &sb))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
