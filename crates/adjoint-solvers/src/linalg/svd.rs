//! `svd`: the thin singular value decomposition `A = U diag(s) Vᵀ` of `A [..., m, n]`, three
//! outputs as NumPy's `np.linalg.svd(a, full_matrices=False)`: `U [..., m, k]`, `s [..., k]`
//! (descending, non-negative) and `Vᵀ [..., k, n]`, `k = min(m, n)`. Each pair of singular
//! vectors has the sign that makes the entry of largest magnitude of `uᵢ` positive.
//!
//! With `K = Uᵀ dA V`, `D = diag(s)` and `F_ij = 1/(s_j² - s_i²)` (0 on the diagonal), as JAX's
//! `svd_jvp_rule`: `ds = diag(K)`, `dU = U (F ∘ (K D + D Kᵀ)) + (I - U Uᵀ) dA V D⁻¹` (the last
//! term when `m > n`), `dV = V (F ∘ (D K + Kᵀ D)) + (I - V Vᵀ) dAᵀ U D⁻¹` (when `n > m`). The
//! transpose: with `Ȳ = F ∘ (Uᵀ Ū)`, `Z̄ = F ∘ (Vᵀ V̄)`,
//! `K̄ = diag(s̄) + (Ȳ + Ȳᵀ) D + D (Z̄ + Z̄ᵀ)` and
//! `Ā = U K̄ Vᵀ + (I - U Uᵀ) Ū D⁻¹ Vᵀ + U D⁻¹ V̄ᵀ (I - V Vᵀ)`.
//!
//! **Degenerate singular values** (two equal, or a zero one with `m ≠ n`) make the singular
//! vectors non-unique: derivatives through them are then not finite (as for
//! [`eigh`](super::eigh)); derivatives of the singular values alone stay finite.

use adjoint_core::primitive::{misuse, Aval, Outs, Primitive, Pullback};
use adjoint_core::trace::bind_multi;
use adjoint_core::{grads, Array, Tensor};

use super::{batch_front_multi, diag_embed, diag_part, kernels, mt, three};

/// The `svd` primitive: `a -> (u, s, vt)`.
#[derive(Debug, Clone, Copy)]
pub struct Svd;

/// `F_ij = 1/(s_j² - s_i²)` off the diagonal, 0 on it.
fn gaps(s: &Tensor) -> Tensor {
    let r = s.rank();
    let (row, col) = (s.unsqueeze(r - 1), s.unsqueeze(r));
    let eye = Tensor::eye(s.shape()[r - 1], s.dtype());
    ((&row + &col) * (&row - &col) + &eye).recip() - eye
}

/// `1/s`, with 0 where `s = 0` (as JAX).
fn safe_recip(s: &Tensor) -> Tensor {
    let zero = s.eq_scalar(0.0);
    let one = Tensor::scalar_of(1.0, s.dtype());
    Tensor::select(&zero, &Tensor::scalar_of(0.0, s.dtype()), &Tensor::select(&zero, &one, s).recip())
}

impl Primitive for Svd {
    fn name(&self) -> &'static str {
        "svd"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        let x = &a[0];
        let r = x.rank();
        if r < 2 || !x.dtype.is_float() {
            misuse("svd", format!("needs float matrices [..., m, n], got {x}"));
        }
        let (m, n) = (x.shape[r - 2], x.shape[r - 1]);
        let k = m.min(n);
        let batch = &x.shape[..r - 2];
        let with = |tail: &[usize]| {
            let mut s = batch.to_vec();
            s.extend_from_slice(tail);
            Aval::new(&s, x.dtype)
        };
        smallvec::smallvec![with(&[m, k]), with(&[k]), with(&[k, n])]
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (u, s, vt) = kernels::svd(a[0]);
        smallvec::smallvec![u, s, vt]
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], outs: &[Tensor]) -> Outs<Option<Tensor>> {
        let Some(da) = t[0] else { return smallvec::smallvec![None, None, None] };
        let (u, s, vt) = (&outs[0], &outs[1], &outs[2]);
        let (ut, v) = (mt(u), mt(vt));
        let r = s.rank();
        let (row, col) = (s.unsqueeze(r - 1), s.unsqueeze(r)); // s_j, s_i
        let k = ut.matmul(da).matmul(&v);
        let f = gaps(s);
        let kd = &k * &row;
        let dk = &col * &k;
        let mut du = u.matmul(&(&f * (&kd + mt(&kd))));
        let mut dv = v.matmul(&(&f * (&dk + mt(&dk))));
        let ra = p[0].rank();
        let (m, n) = (p[0].shape()[ra - 2], p[0].shape()[ra - 1]);
        let sinv = safe_recip(s).unsqueeze(r - 1);
        if m > n {
            let dav = da.matmul(&v);
            du = du + (&dav - u.matmul(&ut.matmul(&dav))) * &sinv;
        }
        if n > m {
            let dau = mt(da).matmul(u);
            dv = dv + (&dau - v.matmul(&vt.matmul(&dau))) * &sinv;
        }
        smallvec::smallvec![Some(du), Some(diag_part(&k)), Some(mt(&dv))]
    }
    fn vjp(&self, p: &[&Tensor], outs: &[Tensor], _wants: &[bool]) -> Pullback {
        let r = p[0].rank();
        let (m, n) = (p[0].shape()[r - 2], p[0].shape()[r - 1]);
        let res = (outs[0].clone(), outs[1].clone(), outs[2].clone());
        Pullback::multi(res, move |(u, s, vt), cts| {
            if cts.iter().all(Option::is_none) {
                return grads![None];
            }
            let v = mt(vt);
            let rs = s.rank();
            let (row, col) = (s.unsqueeze(rs - 1), s.unsqueeze(rs));
            let f = gaps(s);
            let sinv = safe_recip(s).unsqueeze(rs - 1);
            let mut kbar = match &cts[1] {
                Some(sb) => diag_embed(sb),
                None => f.zeros_like(),
            };
            let mut extra: Option<Tensor> = None;
            if let Some(ub) = &cts[0] {
                let y = &f * mt(u).matmul(ub);
                kbar = kbar + (&y + mt(&y)) * &row;
                if m > n {
                    let w = (ub - u.matmul(&mt(u).matmul(ub))) * &sinv;
                    extra = Some(w.matmul(vt));
                }
            }
            if let Some(vtb) = &cts[2] {
                let vb = mt(vtb);
                let z = &f * mt(&v).matmul(&vb);
                kbar = kbar + &col * (&z + mt(&z));
                if n > m {
                    let w = (&vb - v.matmul(&vt.matmul(&vb))) * &sinv; // (I - V Vᵀ) V̄ D⁻¹
                    let term = u.matmul(&mt(&w));
                    extra = Some(match extra {
                        Some(e) => e + term,
                        None => term,
                    });
                }
            }
            let abar = u.matmul(&kbar).matmul(vt);
            grads![Some(match extra {
                Some(e) => abar + e,
                None => abar,
            })]
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

/// The thin singular value decomposition `a = u diag(s) vt` of `a [..., m, n]`, as NumPy's
/// `np.linalg.svd(a, full_matrices=False)`: `u [..., m, k]`, `s [..., k]` descending and
/// non-negative, `vt [..., k, n]` with `k = min(m, n)`. Each pair of singular vectors has the
/// sign that makes the largest entry of `u`'s column positive (NumPy keeps LAPACK's signs).
/// Differentiable to any order where the singular values are distinct and non-zero; first
/// derivatives of `s` alone are finite everywhere — see the [module docs](self).
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::linalg::svd;
/// let a = Tensor::from_vec(vec![3.0f64, 0.0, 0.0, -2.0, 0.0, 0.0], &[3, 2]);
/// let (u, s, vt) = svd(&a);
/// assert_eq!((u.shape(), s.to_vec::<f64>(), vt.shape()), (&[3usize, 2][..], vec![3.0, 2.0], &[2usize, 2][..]));
/// // d s₀ / dA = u₀ v₀ᵀ.
/// let g = grad(|a: &Tensor| svd(a).1.narrow(0, 0, 1).sum())(&a).to_vec::<f64>();
/// assert_eq!(g, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
/// ```
#[track_caller]
pub fn svd(a: &Tensor) -> (Tensor, Tensor, Tensor) {
    three(bind_multi(&Svd, &[a]))
}
