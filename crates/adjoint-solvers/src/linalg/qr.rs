//! `qr`: the reduced QR factorisation of `A [..., m, n]`, `m ≥ n`: `Q [..., m, n]` with
//! orthonormal columns and `R [..., n, n]` upper triangular with a non-negative diagonal (the
//! unique factorisation of a full-rank `A`; NumPy and JAX return LAPACK's signs instead).
//!
//! With `Y = dA R⁻¹`, `S = Qᵀ Y` and the skew-symmetric `Ω = tril₋₁(S) - tril₋₁(S)ᵀ`:
//! `dQ = Q (Ω - S) + Y` and `dR = (S - Ω) R` (as JAX's `qr_jvp_rule`). Its transpose, with
//! `G = R̄ Rᵀ - Qᵀ Q̄`, is `Ā = (Q̄ + Q (G + tril₋₁(Gᵀ - G))) R⁻ᵀ`. Both need `R` invertible
//! (`A` of full column rank).

use adjoint_core::primitive::{misuse, Aval, Outs, Primitive, Pullback};
use adjoint_core::trace::bind_multi;
use adjoint_core::{grads, Array, Tensor};

use super::triangular_solve::tri_solve;
use super::{batch_front_multi, kernels, mt, tril, two};

/// The `qr` primitive: `a -> (q, r)`.
#[derive(Debug, Clone, Copy)]
pub struct Qr;

/// `t R⁻¹` (`transpose`: `t R⁻ᵀ`) for an upper triangular `r`.
fn right_solve(t: &Tensor, r: &Tensor, transpose: bool) -> Tensor {
    mt(&tri_solve(r, &mt(t), false, !transpose))
}

impl Primitive for Qr {
    fn name(&self) -> &'static str {
        "qr"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        let x = &a[0];
        let r = x.rank();
        if r < 2 || !x.dtype.is_float() || x.shape[r - 2] < x.shape[r - 1] {
            misuse("qr", format!("needs float matrices [..., m, n] with m ≥ n, got {x}"));
        }
        let mut rs = x.shape.clone();
        rs[r - 2] = x.shape[r - 1];
        smallvec::smallvec![x.clone(), Aval { shape: rs, dtype: x.dtype }]
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (q, r) = kernels::qr(a[0]);
        smallvec::smallvec![q, r]
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], outs: &[Tensor]) -> Outs<Option<Tensor>> {
        let Some(da) = t[0] else { return smallvec::smallvec![None, None] };
        let (q, r) = (&outs[0], &outs[1]);
        let y = right_solve(da, r, false);
        let s = mt(q).matmul(&y);
        let lo = tril(&s, 0.0);
        let omega = &lo - mt(&lo);
        let dq = q.matmul(&(&omega - &s)) + y;
        let dr = (s - omega).matmul(r);
        smallvec::smallvec![Some(dq), Some(dr)]
    }
    fn vjp(&self, _p: &[&Tensor], outs: &[Tensor], _wants: &[bool]) -> Pullback {
        Pullback::multi((outs[0].clone(), outs[1].clone()), |(q, r), cts| {
            let g = match (&cts[0], &cts[1]) {
                (None, None) => return grads![None],
                (Some(qb), None) => -mt(q).matmul(qb),
                (None, Some(rb)) => rb.matmul(&mt(r)),
                (Some(qb), Some(rb)) => rb.matmul(&mt(r)) - mt(q).matmul(qb),
            };
            let sbar = &g + tril(&(mt(&g) - &g), 0.0);
            let qs = q.matmul(&sbar);
            let ybar = match &cts[0] {
                Some(qb) => qb + qs,
                None => qs,
            };
            grads![Some(right_solve(&ybar, r, true))]
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

/// The reduced QR factorisation `a = q r` of `a [..., m, n]` with `m ≥ n` (NumPy's
/// `np.linalg.qr(a, mode="reduced")`): `q [..., m, n]` with orthonormal columns, `r [..., n, n]`
/// upper triangular **with a non-negative diagonal** (unique for a full-rank `a`; NumPy keeps
/// LAPACK's signs, which may differ column by column). Differentiable (any order) where `a`
/// has full column rank.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::qr;
/// let a = Tensor::from_vec(vec![3.0f64, 1.0, 4.0, 2.0, 0.0, 2.0], &[3, 2]);
/// let (q, r) = qr(&a);
/// assert_eq!((q.shape(), r.shape()), (&[3usize, 2][..], &[2usize, 2][..]));
/// assert!((r.to_vec::<f64>()[0] - 5.0).abs() < 1e-12); // ‖first column‖
/// let back = q.matmul(&r).to_vec::<f64>();
/// assert!(back.iter().zip(a.to_vec::<f64>()).all(|(x, y)| (x - y).abs() < 1e-12));
/// ```
#[track_caller]
pub fn qr(a: &Tensor) -> (Tensor, Tensor) {
    two(bind_multi(&Qr, &[a]))
}
