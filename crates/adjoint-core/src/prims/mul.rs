//! `mul`: multiplication; `d(ab) = b da + a db`; keeps only the operands the reverse pass needs.

use adjoint_tensor::ops::binary::BinaryOp;

use super::prelude::*;

/// The `mul` primitive (NumPy broadcasting).
#[derive(Debug, Clone, Copy)]
pub struct Mul;

impl SimplePrimitive for Mul {
    fn name(&self) -> &'static str {
        "mul"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::binary(SimplePrimitive::name(self), &a[0], &a[1], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].binary(a[1], BinaryOp::Mul)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (a, b) = (p[0], p[1]);
        let s = out.shape();
        let ta = t[0].map(|x| x * b);
        let tb = t[1].map(|y| a * y);
        sum_tangents(ta, tb, s)
    }
    fn vjp(&self, p: &[&Tensor], out: &Tensor, wants: &[bool]) -> Pullback {
        let (a, b) = (p[0], p[1]);
        let (wa, wb) = (wants[0], wants[1]);
        // Every wanted operand has the output's shape (no sum over broadcast dims to undo): keep
        // only the other operand, not the shapes (a smaller closure, copied once into its box).
        if (!wa || a.shape() == out.shape())
            && (!wb || b.shape() == out.shape())
            && !(wa && wb && a.is_same(b))
        {
            return match (wa, wb) {
                (true, true) => {
                    Pullback::new((a.clone(), b.clone()), |(a, b), c| grads![Some(c * b), Some(c * a)])
                }
                (true, false) => Pullback::new(b.clone(), |b, c| grads![Some(c * b), None]),
                (false, true) => Pullback::new(a.clone(), |a, c| grads![None, Some(c * a)]),
                (false, false) => Pullback::new((), |_, _| grads![None, None]),
            };
        }
        let (sa, sb) =
            (adjoint_tensor::Shape::from_slice(a.shape()), adjoint_tensor::Shape::from_slice(b.shape()));
        if wa && wb && a.is_same(b) {
            // `x * x`: both cotangents are `c * x`; one product, handed to both operands.
            return Pullback::new(a.clone(), move |x, c| {
                let g = unbroadcast(c * x, &sa);
                grads![Some(g.clone()), Some(g)]
            });
        }
        Pullback::new((wb.then(|| a.clone()), wa.then(|| b.clone())), move |r, c| {
            let (ra, rb) = r;
            grads![rb.as_ref().map(|b| unbroadcast(c * b, &sa)), ra.as_ref().map(|a| unbroadcast(c * a, &sb))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
