//! `max` and `min` (elementwise, NaN-propagating), one primitive with a parameter: the
//! derivative goes to the operand that is selected; on a **tie** it is split equally (½ each),
//! the choice of JAX, which keeps `max(x, x) = x` with derivative 1.

use adjoint_tensor::ops::binary::BinaryOp;

use super::prelude::*;

/// The elementwise `max` (or, with `min`, `min`) primitive (NumPy broadcasting).
#[derive(Debug, Clone, Copy)]
pub struct MaxMin {
    /// `min` instead of `max`.
    pub min: bool,
}

impl MaxMin {
    /// Weight of the first operand: 1 where it wins, ½ on ties, 0 where it loses.
    fn weight(&self, a: &Tensor, b: &Tensor) -> Tensor {
        let wins = if self.min { a.less(b) } else { a.greater(b) }.cast(a.dtype());
        let ties = a.equal(b).cast(a.dtype());
        wins + ties * 0.5
    }
}

impl SimplePrimitive for MaxMin {
    fn name(&self) -> &'static str {
        if self.min {
            "min"
        } else {
            "max"
        }
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::binary(SimplePrimitive::name(self), &a[0], &a[1], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].binary(a[1], if self.min { BinaryOp::Min } else { BinaryOp::Max })
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let w = self.weight(p[0], p[1]);
        let ta = t[0].map(|x| x * &w);
        let tb = t[1].map(|y| y * (1.0 - &w));
        sum_tangents(ta, tb, out.shape())
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let (sa, sb) = (
            adjoint_tensor::Shape::from_slice(p[0].shape()),
            adjoint_tensor::Shape::from_slice(p[1].shape()),
        );
        let (wa, wb) = (wants[0], wants[1]);
        Pullback::new(self.weight(p[0], p[1]), move |w, c| {
            grads![wa.then(|| unbroadcast(c * w, &sa)), wb.then(|| unbroadcast(c * (1.0 - w), &sb))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
