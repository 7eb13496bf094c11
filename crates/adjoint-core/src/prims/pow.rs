//! `pow(a, b) = a^b`: `∂/∂a = b·a^(b-1)` (taken as 0 where `b == 0`, so `x^0` has derivative 0
//! even at `x = 0`); `∂/∂b = a^b·log a` (taken as 0 where `a == 0`, the limit for `b > 0`).

use adjoint_tensor::ops::binary::BinaryOp;

use super::prelude::*;

/// The `pow` primitive (NumPy broadcasting).
#[derive(Debug, Clone, Copy)]
pub struct Pow;

fn da(a: &Tensor, b: &Tensor) -> Tensor {
    let zero = b.eq_scalar(0.0);
    let d = b * a.pow(&(b - 1.0));
    Tensor::select(&zero, &Tensor::scalar_of(0.0, d.dtype()), &d)
}

fn db(a: &Tensor, out: &Tensor) -> Tensor {
    let zero = a.eq_scalar(0.0);
    let safe_a = Tensor::select(&zero, &Tensor::scalar_of(1.0, a.dtype()), a);
    Tensor::select(&zero, &Tensor::scalar_of(0.0, out.dtype()), &(out * safe_a.log()))
}

impl SimplePrimitive for Pow {
    fn name(&self) -> &'static str {
        "pow"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::binary(SimplePrimitive::name(self), &a[0], &a[1], true)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].binary(a[1], BinaryOp::Pow)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let (a, b) = (p[0], p[1]);
        let ta = t[0].map(|x| x * da(a, b));
        let tb = t[1].map(|y| y * db(a, out));
        sum_tangents(ta, tb, out.shape())
    }
    fn vjp(&self, p: &[&Tensor], out: &Tensor, wants: &[bool]) -> Pullback {
        let (a, b) = (p[0].clone(), p[1].clone());
        let (sa, sb) =
            (adjoint_tensor::Shape::from_slice(a.shape()), adjoint_tensor::Shape::from_slice(b.shape()));
        let (wa, wb) = (wants[0], wants[1]);
        Pullback::new((a, b, wb.then(|| out.clone())), move |(a, b, out), c| {
            grads![
                wa.then(|| unbroadcast(c * da(a, b), &sa)),
                out.as_ref().map(|o| unbroadcast(c * db(a, o), &sb))
            ]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
