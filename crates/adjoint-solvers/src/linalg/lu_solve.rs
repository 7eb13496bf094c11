//! `lu_solve` with a factorisation computed once: `X = op(A)⁻¹ B` from the LU factors of `A`
//! (`op(A) = Aᵀ` with `transpose`). This is what [`solve`](super::solve) and
//! [`inv`](super::inv) bind, after the pattern of JAX's `custom_linear_solve`: the operands
//! are `(a, lu, perm, b)` where `lu, perm` are the factors of `a` with their derivative
//! stopped, and the rules differentiate through `a` and `b` only —
//! `dX = op(A)⁻¹ (dB - op(dA) X)`, `B̄ = op(A)⁻ᵀ X̄`, `Ā = -B̄ Xᵀ` (or `-X B̄ᵀ` when
//! transposed) — with solves that reuse the same factors. So a gradient costs one
//! factorisation, not two, and derivatives of any order still follow `a`.
//!
//! The public [`lu_solve`] (SciPy's, on factors from [`lu_factor`](super::lu_factor)) is a
//! composite instead: a permutation and two triangular solves, differentiable in the factors.

use adjoint_core::primitive::{misuse, Aval, Pullback, SimplePrimitive};
use adjoint_core::trace::bind;
use adjoint_core::{grads, stop_gradient, Array, DType, Tensor};

use super::lu::{lu_raw, unit_lower};
use super::lu_pivots::pivots_to_permutation;
use super::triangular_solve::tri_solve;
use super::{
    batch_front, broadcast_pair, check_rhs, check_square, kernels, mt, permute_rows, unpermute_rows, unvector,
};

/// The `lu_solve` primitive (operands `a, lu, perm, b`; see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct LuSolve {
    /// Solve with `Aᵀ`.
    pub transpose: bool,
}

/// `A⁻¹ B` for operands with equal batch dimensions: one factorisation (with its derivative
/// stopped) and one [`LuSolve`].
pub(crate) fn solve_raw(a: &Tensor, b: &Tensor) -> Tensor {
    let (lu, _, perm) = lu_raw(&stop_gradient(a));
    bind(&LuSolve { transpose: false }, &[a, &lu, &perm, b])
}

impl SimplePrimitive for LuSolve {
    fn name(&self) -> &'static str {
        "lu_solve"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        check_square("lu_solve", &a[0]);
        let (m, lu, perm) = (&a[0], &a[1], &a[2]);
        let r = m.rank();
        if lu != m || perm.dtype != DType::I64 || perm.shape[..] != m.shape[..r - 1] {
            misuse("lu_solve", format!("factors {lu} and permutation {perm} do not fit the matrices {m}"));
        }
        check_rhs("lu_solve", m, &a[3]);
        a[3].clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        kernels::lu_solve(a[1], a[2], a[3], self.transpose)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], x: &Tensor) -> Option<Tensor> {
        let op = |m: &Tensor| if self.transpose { mt(m) } else { m.clone() };
        let rhs = match (t[0], t[3]) {
            (None, None) => return None,
            (Some(da), Some(db)) => db - op(da).matmul(x),
            (Some(da), None) => -(op(da).matmul(x)),
            (None, Some(db)) => db.clone(),
        };
        Some(bind(self, &[p[0], p[1], p[2], &rhs]))
    }
    fn vjp(&self, p: &[&Tensor], x: &Tensor, wants: &[bool]) -> Pullback {
        let transpose = self.transpose;
        let res = ((p[0].clone(), p[1].clone(), p[2].clone()), wants[0].then(|| x.clone()));
        Pullback::new(res, move |((a, lu, perm), x), c| {
            let bbar = bind(&LuSolve { transpose: !transpose }, &[a, lu, perm, c]);
            let abar =
                x.as_ref().map(|x| if transpose { -(x.matmul(&mt(&bbar))) } else { -(bbar.matmul(&mt(x))) });
            grads![abar, None, None, Some(bbar)]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        match (axes[0], axes[1], axes[2], axes[3]) {
            // One matrix, a batch of right-hand sides: the batch becomes more columns.
            (None, None, None, Some(bx)) if size > 0 => {
                let r = a[3].rank() - 1; // per-example rank of b, ≥ 2
                let b = adjoint_core::batching::move_axis(a[3], bx, r - 1); // [..., n, B, k]
                let s = b.shape().to_vec();
                let mut folded = s[..r - 1].to_vec();
                folded.push(s[r - 1] * s[r]);
                let x = bind(self, &[a[0], a[1], a[2], &b.reshape(&folded)]);
                (x.reshape(&s), Some(r - 1))
            }
            _ => batch_front(self, a, axes, size),
        }
    }
}

/// `X` with `A X = B` (or `Aᵀ X = B` when `transpose`) from `A`'s factors `(lu, piv)` as
/// returned by [`lu_factor`](super::lu_factor), as SciPy's `scipy.linalg.lu_solve`. `b` a vector
/// `[n]` or matrices `[..., n, k]`, batch dimensions broadcast as in [`solve`](super::solve).
/// Differentiable in `lu` and `b` (a permutation and two triangular solves).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::{lu_factor, lu_solve};
/// let a = Tensor::from_vec(vec![1.0f64, 2.0, 4.0, 3.0], &[2, 2]);
/// let (lu, piv) = lu_factor(&a);
/// let x = lu_solve(&lu, &piv, &Tensor::from_vec(vec![5.0f64, 10.0], &[2]), false);
/// assert!((x.to_vec::<f64>()[0] - 1.0).abs() < 1e-12 && (x.to_vec::<f64>()[1] - 2.0).abs() < 1e-12);
/// let y = lu_solve(&lu, &piv, &Tensor::from_vec(vec![9.0f64, 8.0], &[2]), true); // Aᵀ y = b
/// assert!((y.to_vec::<f64>()[0] - 1.0).abs() < 1e-12 && (y.to_vec::<f64>()[1] - 2.0).abs() < 1e-12);
/// ```
#[track_caller]
pub fn lu_solve(lu: &Tensor, piv: &Tensor, b: &Tensor, transpose: bool) -> Tensor {
    let (f, b, vector) = broadcast_pair("lu_solve", lu, b);
    let r = f.rank();
    let vshape = &f.shape()[..r - 1];
    if piv.dtype() != DType::I64
        || adjoint_tensor::broadcast_shapes(piv.shape(), vshape).as_deref() != Some(vshape)
    {
        misuse(
            "lu_solve",
            format!("pivots {:?} ({}) do not fit factors {:?}", piv.shape(), piv.dtype(), f.shape()),
        );
    }
    let perm = pivots_to_permutation(&piv.broadcast_to(vshape));
    let l = unit_lower(&f);
    let x = if transpose {
        // Aᵀ = Uᵀ Lᵀ P: solve Uᵀ y = b, Lᵀ z = y, then x[perm] = z.
        let y = tri_solve(&f, &b, false, true);
        unpermute_rows(&tri_solve(&l, &y, true, true), &perm)
    } else {
        // P A = L U: solve L y = b[perm], then U x = y.
        let y = tri_solve(&l, &permute_rows(&b, &perm), true, false);
        tri_solve(&f, &y, false, false)
    };
    unvector(x, vector)
}
