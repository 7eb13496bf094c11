//! `eigh`: eigenvalues `w [..., n]` (ascending) and orthonormal eigenvectors `V [..., n, n]`
//! (columns, each with its entry of largest magnitude positive) of a symmetric
//! `A = V diag(w) Vᵀ`; the kernel reads `A`'s lower triangle (the public [`eigh`] symmetrises
//! its input first, as JAX does).
//!
//! With `K = Vᵀ dS V` (`dS` the symmetric tangent the lower triangle stands for):
//! `dw = diag(K)`, `dV = V (F ∘ K)` where `F_ij = 1/(w_j - w_i)` off the diagonal and 0 on it.
//! The transpose is `S̄ = V (diag(w̄) + F ∘ (Vᵀ V̄)) Vᵀ`, folded back onto the lower triangle.
//!
//! **Degenerate eigenvalues.** Where two eigenvalues are equal, their eigenvectors are any
//! orthonormal basis of the shared eigenspace, and `F` is infinite: derivatives that go
//! through the eigenvectors are then NaN or infinite (as in JAX and PyTorch). Derivatives of
//! the eigenvalues alone (a loss of `w` only) stay finite and correct, since the `F` term
//! vanishes when `V̄ = 0`; for nearly equal eigenvalues the eigenvector derivatives are
//! correct but large (ill-conditioned).

use adjoint_core::primitive::{Aval, Outs, Primitive, Pullback};
use adjoint_core::trace::bind_multi;
use adjoint_core::{grads, Array, Tensor};

use super::{batch_front_multi, check_square, diag_embed, diag_part, kernels, mt, tril, two};

/// The `eigh` primitive: `a -> (w, v)`.
#[derive(Debug, Clone, Copy)]
pub struct Eigh;

/// The symmetric matrix a lower triangle stands for: `tril(t) + tril₋₁(t)ᵀ`.
fn sym_of_lower(t: &Tensor) -> Tensor {
    tril(t, 1.0) + mt(&tril(t, 0.0))
}

/// The transpose of [`sym_of_lower`]: `tril(g) + tril₋₁(gᵀ)`.
fn lower_of_sym(g: &Tensor) -> Tensor {
    tril(g, 1.0) + tril(&mt(g), 0.0)
}

/// `F_ij = 1/(w_j - w_i)` off the diagonal, 0 on it.
fn gaps(w: &Tensor) -> Tensor {
    let r = w.rank();
    let diff = w.unsqueeze(r - 1) - w.unsqueeze(r);
    let eye = Tensor::eye(w.shape()[r - 1], w.dtype());
    (diff + &eye).recip() - eye
}

impl Primitive for Eigh {
    fn name(&self) -> &'static str {
        "eigh"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        check_square("eigh", &a[0]);
        let w = &a[0].shape[..a[0].rank() - 1];
        smallvec::smallvec![Aval::new(w, a[0].dtype), a[0].clone()]
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (w, v) = kernels::eigh(a[0]);
        smallvec::smallvec![w, v]
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], outs: &[Tensor]) -> Outs<Option<Tensor>> {
        let Some(da) = t[0] else { return smallvec::smallvec![None, None] };
        let (w, v) = (&outs[0], &outs[1]);
        let k = mt(v).matmul(&sym_of_lower(da)).matmul(v);
        let dv = v.matmul(&(gaps(w) * &k));
        smallvec::smallvec![Some(diag_part(&k)), Some(dv)]
    }
    fn vjp(&self, _p: &[&Tensor], outs: &[Tensor], _wants: &[bool]) -> Pullback {
        Pullback::multi((outs[0].clone(), outs[1].clone()), |(w, v), cts| {
            let inner = match (&cts[0], &cts[1]) {
                (None, None) => return grads![None],
                (Some(wb), None) => diag_embed(wb),
                (None, Some(vb)) => gaps(w) * mt(v).matmul(vb),
                (Some(wb), Some(vb)) => diag_embed(wb) + gaps(w) * mt(v).matmul(vb),
            };
            grads![Some(lower_of_sym(&v.matmul(&inner).matmul(&mt(v))))]
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

/// Eigenvalues (ascending) and eigenvectors (the columns of `v`) of the symmetric matrices
/// `a [..., n, n]`, as NumPy's `np.linalg.eigh`: `a = v diag(w) vᵀ`. The input is
/// symmetrised, `(a + aᵀ)/2`, so the gradient is symmetric. Each eigenvector is returned with
/// its entry of largest magnitude positive (NumPy keeps LAPACK's signs), so the result is
/// smooth under small perturbations; with **degenerate (repeated) eigenvalues** the eigenvectors of the shared
/// eigenspace are an arbitrary orthonormal basis and derivatives through them are not finite
/// (those of the eigenvalues alone are fine) — see the [module docs](self).
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::linalg::eigh;
/// let a = Tensor::from_vec(vec![2.0f64, 1.0, 1.0, 2.0], &[2, 2]);
/// let (w, v) = eigh(&a);
/// assert!((w.to_vec::<f64>()[0] - 1.0).abs() < 1e-12 && (w.to_vec::<f64>()[1] - 3.0).abs() < 1e-12);
/// assert_eq!(v.shape(), &[2, 2]);
/// // d λ_max / dA = v vᵀ for the top eigenvector v.
/// let g = grad(|a: &Tensor| eigh(a).0.narrow(0, 1, 1).sum())(&a).to_vec::<f64>();
/// assert!(g.iter().all(|x| (x - 0.5).abs() < 1e-12));
/// ```
#[track_caller]
pub fn eigh(a: &Tensor) -> (Tensor, Tensor) {
    check_square("eigh", &Aval::of(a));
    let sym = (a + mt(a)) * 0.5;
    two(bind_multi(&Eigh, &[&sym]))
}
