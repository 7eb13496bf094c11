//! `sub`: subtraction; linear.

use adjoint_tensor::ops::binary::BinaryOp;

use super::prelude::*;

/// The `sub` primitive (NumPy broadcasting).
#[derive(Debug, Clone, Copy)]
pub struct Sub;

impl SimplePrimitive for Sub {
    fn name(&self) -> &'static str {
        "sub"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::binary(SimplePrimitive::name(self), &a[0], &a[1], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].binary(a[1], BinaryOp::Sub)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let s = out.shape();
        match (t[0], t[1]) {
            (Some(x), Some(y)) => Some(x - y),
            (Some(x), None) => Some(bcast(x, s)),
            (None, Some(y)) => Some(bcast(&-y, s)),
            (None, None) => None,
        }
    }
    fn vjp(&self, p: &[&Tensor], out: &Tensor, wants: &[bool]) -> Pullback {
        let (a, b) = (p[0], p[1]);
        if let Some(pb) = pass_through::<true>(p, out, wants) {
            return pb;
        }
        let (wa, wb) = (wants[0], wants[1]);
        let (sa, sb) =
            (adjoint_tensor::Shape::from_slice(a.shape()), adjoint_tensor::Shape::from_slice(b.shape()));
        Pullback::new((), move |_, c| {
            // Negate after summing: `-Σc` touches the operand's elements, not the result's.
            grads![wa.then(|| unbroadcast(c.clone(), &sa)), wb.then(|| -unbroadcast(c.clone(), &sb))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
