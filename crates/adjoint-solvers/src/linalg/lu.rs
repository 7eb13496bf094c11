//! `lu`: LU factorisation with partial pivoting of `A [..., n, n]`, three outputs as JAX's
//! `lax.linalg.lu`: the packed factors `lu` (`L` unit lower triangular strictly below the
//! diagonal, `U` on and above it), the LAPACK pivots (`i64`, as SciPy's `lu_factor`) and the
//! row permutation (`i64`) with `A[perm] = L U`.
//!
//! With `X = P dA` (rows permuted) and `M = L⁻¹ X U⁻¹`, the tangent of the packed factors is
//! `dL + dU = L tril₋₁(M) + triu(M) U` (JAX's `lu_jvp_rule`). Its transpose maps `C̄` to
//! `Pᵀ L⁻ᵀ (tril₋₁(Lᵀ C̄) + triu(C̄ Uᵀ)) U⁻ᵀ`. Both use triangular solves, so derivatives
//! of any order work; the pivots and permutation are piecewise constant (no derivative).

use adjoint_core::primitive::{Aval, Outs, Primitive, Pullback};
use adjoint_core::trace::bind_multi;
use adjoint_core::{grads, Array, DType, Tensor};

use super::triangular_solve::tri_solve;
use super::{
    batch_front_multi, check_square, eye_like, kernels, mt, permute_rows, three, tril, triu, unpermute_rows,
};

/// The `lu` primitive: `a -> (lu, pivots, perm)`.
#[derive(Debug, Clone, Copy)]
pub struct Lu;

/// `L` (unit diagonal) from packed factors.
pub(crate) fn unit_lower(lu: &Tensor) -> Tensor {
    tril(lu, 0.0) + eye_like(lu)
}

/// `m U⁻¹` for an upper triangular `u` (a solve from the right, as `(U⁻ᵀ mᵀ)ᵀ`).
fn right_solve_upper(m: &Tensor, u: &Tensor, transpose: bool) -> Tensor {
    mt(&tri_solve(u, &mt(m), false, !transpose))
}

/// `(lu, pivots, perm)` of `a` (one primitive call).
pub(crate) fn lu_raw(a: &Tensor) -> (Tensor, Tensor, Tensor) {
    three(bind_multi(&Lu, &[a]))
}

impl Primitive for Lu {
    fn name(&self) -> &'static str {
        "lu"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        check_square("lu", &a[0]);
        let v = &a[0].shape[..a[0].rank() - 1];
        smallvec::smallvec![a[0].clone(), Aval::new(v, DType::I64), Aval::new(v, DType::I64)]
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (lu, piv, perm) = kernels::lu(a[0]);
        smallvec::smallvec![lu, piv, perm]
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], outs: &[Tensor]) -> Outs<Option<Tensor>> {
        let d = t[0].map(|da| {
            let (lu, perm) = (&outs[0], &outs[2]);
            let (l, u) = (unit_lower(lu), triu(lu));
            let m = right_solve_upper(&tri_solve(&l, &permute_rows(da, perm), true, false), &u, false);
            l.matmul(&tril(&m, 0.0)) + triu(&m).matmul(&u)
        });
        smallvec::smallvec![d, None, None]
    }
    fn vjp(&self, _p: &[&Tensor], outs: &[Tensor], _wants: &[bool]) -> Pullback {
        Pullback::multi((outs[0].clone(), outs[2].clone()), |(lu, perm), cts| {
            let Some(c) = &cts[0] else { return grads![None] };
            let (l, u) = (unit_lower(lu), triu(lu));
            let mbar = tril(&mt(&l).matmul(c), 0.0) + triu(&c.matmul(&mt(&u)));
            let x = right_solve_upper(&tri_solve(&l, &mbar, true, true), &u, true);
            grads![Some(unpermute_rows(&x, perm))]
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

/// The LU factorisation of `a [..., n, n]` with partial pivoting, as SciPy's
/// `scipy.linalg.lu_factor`: the packed factors `lu` (unit lower triangular `L` strictly below
/// the diagonal, `U` on and above it) and the `i64` pivots (row `i` was interchanged with row
/// `piv[i]`). Differentiable in `a` (any order); a singular `a` gives non-finite factors past
/// its first zero pivot rather than a panic. Use with [`lu_solve`](super::lu_solve).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::lu_factor;
/// let (lu, piv) = lu_factor(&Tensor::from_vec(vec![1.0f64, 2.0, 4.0, 3.0], &[2, 2]));
/// assert_eq!(lu.to_vec::<f64>(), vec![4.0, 3.0, 0.25, 1.25]);
/// assert_eq!(piv.to_vec::<i64>(), vec![1, 1]);
/// ```
#[track_caller]
pub fn lu_factor(a: &Tensor) -> (Tensor, Tensor) {
    let (lu, piv, _) = lu_raw(a);
    (lu, piv)
}

/// `(p, l, u)` with `a = p l u` as SciPy's `scipy.linalg.lu`: `p` a permutation matrix, `l`
/// unit lower triangular, `u` upper triangular (square `a [..., n, n]`; differentiable in `a`).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::lu;
/// let a = Tensor::from_vec(vec![1.0f64, 2.0, 4.0, 3.0], &[2, 2]);
/// let (p, l, u) = lu(&a);
/// assert_eq!(p.to_vec::<f64>(), vec![0.0, 1.0, 1.0, 0.0]);
/// assert_eq!(l.to_vec::<f64>(), vec![1.0, 0.0, 0.25, 1.0]);
/// assert_eq!(p.matmul(&l).matmul(&u).to_vec::<f64>(), a.to_vec::<f64>());
/// ```
#[track_caller]
pub fn lu(a: &Tensor) -> (Tensor, Tensor, Tensor) {
    let (f, _, perm) = lu_raw(a);
    // p[j, i] = 1 where perm[i] = j, so that (p x)[perm[i]] = x[i].
    let n = a.shape()[a.rank() - 1];
    let rows = Tensor::from_vec((0..n as i64).collect::<Vec<_>>(), &[n, 1]);
    let p = perm.unsqueeze(perm.rank() - 1).equal(&rows).cast(a.dtype());
    (p, unit_lower(&f), triu(&f))
}
