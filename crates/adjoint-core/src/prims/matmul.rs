//! `matmul` of operands of rank ≥ 2 with equal batch dimensions (the `Tensor::matmul` method
//! handles 1-D operands and broadcasts batch dims first, so this rule never has to).
//! `d(AB) = dA·B + A·dB`; the transpose rules are `C̄·Bᵀ` and `Aᵀ·C̄`, transposes being views
//! that `gemm` reads through their strides without copying.

use super::prelude::*;

/// The `matmul` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Matmul;

fn mt(t: &Tensor) -> Tensor {
    let r = t.rank();
    t.transpose(r - 2, r - 1)
}

impl Primitive for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].matmul(a[1])
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let ta = t[0].map(|x| x.matmul(p[1]));
        let tb = t[1].map(|y| p[0].matmul(y));
        sum_tangents(ta, tb, out.shape())
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let (wa, wb) = (wants[0], wants[1]);
        Pullback::new((wb.then(|| p[0].clone()), wa.then(|| p[1].clone())), move |(a, b), c| {
            grads![b.as_ref().map(|b| c.matmul(&mt(b))), a.as_ref().map(|a| mt(a).matmul(c))]
        })
    }
}
