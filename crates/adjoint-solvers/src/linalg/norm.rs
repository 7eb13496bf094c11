//! Vector and matrix norms, as NumPy's `np.linalg.norm`: composites of differentiable ops (no
//! primitive of their own). The Euclidean and Frobenius norms have subgradient 0 at 0 (not
//! NaN); the max-type norms share the derivative between tied entries.

use adjoint_core::primitive::misuse;
use adjoint_core::Tensor;

/// `sqrt(s)` with derivative 0 where `s = 0` (instead of an infinite one).
fn safe_sqrt(s: &Tensor) -> Tensor {
    let zero = s.eq_scalar(0.0);
    let safe = Tensor::select(&zero, &Tensor::scalar_of(1.0, s.dtype()), s);
    Tensor::select(&zero, &Tensor::scalar_of(0.0, s.dtype()), &safe.sqrt())
}

/// The `ord`-norm of the vectors along the last axis of `x [..., n]` (`np.linalg.norm(x, ord,
/// axis=-1)`): `ord = 2` Euclidean, `1` sum of magnitudes, `f64::INFINITY` largest magnitude,
/// `f64::NEG_INFINITY` smallest, any other `ord > 0` `(Σ|x|^ord)^(1/ord)`.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::vector_norm;
/// let x = Tensor::from_vec(vec![3.0f64, -4.0], &[2]);
/// assert_eq!(vector_norm(&x, 2.0).item(), 5.0);
/// assert_eq!(vector_norm(&x, 1.0).item(), 7.0);
/// assert_eq!(vector_norm(&x, f64::INFINITY).item(), 4.0);
/// ```
#[track_caller]
pub fn vector_norm(x: &Tensor, ord: f64) -> Tensor {
    if x.rank() == 0 || !x.dtype().is_float() {
        misuse(
            "vector_norm",
            format!("needs a float tensor [..., n], got {} of shape {:?}", x.dtype(), x.shape()),
        );
    }
    let last = x.rank() - 1;
    if ord == 2.0 {
        safe_sqrt(&(x * x).sum_axes(&[last], false))
    } else if ord == 1.0 {
        x.abs().sum_axes(&[last], false)
    } else if ord == f64::INFINITY {
        x.abs().max_axes(&[last], false)
    } else if ord == f64::NEG_INFINITY {
        x.abs().min_axes(&[last], false)
    } else if ord > 0.0 {
        x.abs().powf(ord).sum_axes(&[last], false).powf(1.0 / ord)
    } else {
        misuse("vector_norm", format!("ord must be positive or ±inf, got {ord}"))
    }
}

/// Which matrix norm [`matrix_norm`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixNorm {
    /// Frobenius: `sqrt(Σ a_ij²)` (NumPy's `"fro"`).
    Fro,
    /// Largest column sum of magnitudes (NumPy's `1`).
    One,
    /// Largest row sum of magnitudes (NumPy's `inf`).
    Inf,
    /// Spectral: the largest singular value (NumPy's `2`).
    Two,
    /// Nuclear: the sum of the singular values (NumPy's `"nuc"`).
    Nuc,
}

/// A norm of the matrices `a [..., m, n]` over their last two axes (`np.linalg.norm(a, ord,
/// axis=(-2, -1))`). `Two` and `Nuc` go through [`svd`](super::svd): differentiable where the
/// singular values involved are distinct (and, for `Nuc`, non-zero).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::{matrix_norm, MatrixNorm};
/// let a = Tensor::from_vec(vec![1.0f64, -2.0, 3.0, 4.0], &[2, 2]);
/// assert_eq!(matrix_norm(&a, MatrixNorm::Fro).item(), 30f64.sqrt());
/// assert_eq!(matrix_norm(&a, MatrixNorm::One).item(), 6.0);
/// assert_eq!(matrix_norm(&a, MatrixNorm::Inf).item(), 7.0);
/// let d = Tensor::from_vec(vec![3.0f64, 0.0, 0.0, -2.0], &[2, 2]);
/// assert!((matrix_norm(&d, MatrixNorm::Two).item() - 3.0).abs() < 1e-12);
/// assert!((matrix_norm(&d, MatrixNorm::Nuc).item() - 5.0).abs() < 1e-12);
/// ```
#[track_caller]
pub fn matrix_norm(a: &Tensor, ord: MatrixNorm) -> Tensor {
    let r = a.rank();
    if r < 2 || !a.dtype().is_float() {
        misuse(
            "matrix_norm",
            format!("needs float matrices [..., m, n], got {} of shape {:?}", a.dtype(), a.shape()),
        );
    }
    match ord {
        MatrixNorm::Fro => safe_sqrt(&(a * a).sum_axes(&[r - 2, r - 1], false)),
        MatrixNorm::One => a.abs().sum_axes(&[r - 2], false).max_axes(&[r - 2], false),
        MatrixNorm::Inf => a.abs().sum_axes(&[r - 1], false).max_axes(&[r - 2], false),
        MatrixNorm::Two => super::svd(a).1.narrow(r - 2, 0, 1).squeeze(r - 2),
        MatrixNorm::Nuc => super::svd(a).1.sum_axes(&[r - 2], false),
    }
}
