//! `slogdet`: `(sign, log|det A|)` of `A [..., n, n]`, two outputs from one LU factorisation.
//! The sign is piecewise constant (no derivative); `d log|det A| = tr(A⁻¹ dA)`, whose transpose
//! is `Ā = c · A⁻ᵀ` — both written with `solve`.

use adjoint_core::grads;
use adjoint_core::primitive::{Aval, Outs, Primitive, Pullback};
use adjoint_core::{Array, Tensor};

use super::lu_solve::solve_raw;
use super::{batch_front_multi, check_square, eye_like, kernels, mt};

/// The `slogdet` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Slogdet;

impl Primitive for Slogdet {
    fn name(&self) -> &'static str {
        "slogdet"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        check_square("slogdet", &a[0]);
        let s = &a[0].shape[..a[0].rank() - 2];
        smallvec::smallvec![Aval::new(s, a[0].dtype), Aval::new(s, a[0].dtype)]
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (s, l) = kernels::slogdet(a[0]);
        smallvec::smallvec![s, l]
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _outs: &[Tensor]) -> Outs<Option<Tensor>> {
        let dl = t[0].map(|da| {
            let r = da.rank();
            (solve_raw(p[0], da) * eye_like(p[0])).sum_axes(&[r - 2, r - 1], false)
        });
        smallvec::smallvec![None, dl]
    }
    fn vjp(&self, p: &[&Tensor], _outs: &[Tensor], _wants: &[bool]) -> Pullback {
        Pullback::multi(p[0].clone(), |a, cts| {
            let Some(c) = &cts[1] else { return grads![None] };
            let inv_t = solve_raw(&mt(a), &eye_like(a).broadcast_to(a.shape()));
            grads![Some(c.unsqueeze(c.rank()).unsqueeze(c.rank() + 1) * inv_t)]
        })
    }
    fn batch(
        &self,
        a: &[&Tensor],
        axes: &[Option<usize>],
        size: usize,
    ) -> (Outs<Tensor>, Outs<Option<usize>>) {
        batch_front_multi(self, a, axes, size)
    }
}
