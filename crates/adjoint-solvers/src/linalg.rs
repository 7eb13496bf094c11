//! Dense linear algebra with derivative rules: `solve`, `cholesky`, `triangular_solve`,
//! `cho_solve`, `lu_factor`/`lu_solve`/`lu`, `slogdet`, `det`, `inv`, `eigh`, `qr`, `svd`,
//! `matrix_exp`, `vector_norm` and `matrix_norm`.
//!
//! Matrices are the last two axes; leading axes are batch axes, broadcast between operands as
//! NumPy's `np.linalg` functions do. Kernels come from `faer` (computed in `f64`, returned in
//! the input's dtype). Each primitive lives in a file of its own with its shape, kernel, JVP,
//! VJP and batching rules: [`Lu`](lu::Lu) (three outputs) with
//! [`LuSolve`](lu_solve::LuSolve), which [`solve`] and [`inv`] bind so that a gradient reuses
//! the forward factorisation; [`TriangularSolve`](triangular_solve::TriangularSolve);
//! [`Cholesky`](cholesky::Cholesky); [`Slogdet`](slogdet::Slogdet);
//! [`Eigh`](eigh::Eigh); [`Qr`](qr::Qr); [`Svd`](svd::Svd);
//! [`MatrixExp`](matrix_exp::MatrixExp); and the integer
//! [`LuPivotsToPermutation`](lu_pivots::LuPivotsToPermutation). `cho_solve`, `lu_solve`, `lu`,
//! `det` and the norms are composites. The rules are written with these same differentiable ops,
//! so derivatives of any order, forward and reverse, and `vmap` all work.
//!
//! Conventions (as JAX): [`cholesky`] and [`eigh`] symmetrise their input, `(A + Aᵀ)/2`, so
//! their gradients are symmetric; a matrix that is not positive definite gives a Cholesky
//! factor of NaNs rather than a panic; a singular matrix gives non-finite values in `solve`,
//! `inv` and `lu_factor` (past the first zero pivot) and sign 0, `-inf` in `slogdet`. Misuse
//! (shapes, dtypes) panics with the op's name and the shapes.

pub mod cholesky;
pub mod eigh;
mod kernels;
pub mod lu;
pub mod lu_pivots;
pub mod lu_solve;
pub mod matrix_exp;
mod norm;
pub mod qr;
pub mod slogdet;
pub mod svd;
pub mod triangular_solve;

pub use eigh::eigh;
pub use lu::{lu, lu_factor};
pub use lu_solve::lu_solve;
pub use matrix_exp::matrix_exp;
pub use norm::{matrix_norm, vector_norm, MatrixNorm};
pub use qr::qr;
pub use svd::svd;

use adjoint_core::batching::{move_axis, to_front};
use adjoint_core::primitive::{misuse, Aval, Outs, Primitive, SimplePrimitive};
use adjoint_core::trace::{bind, bind_multi};
use adjoint_core::{DType, Tensor};
use adjoint_tensor::broadcast_shapes;

/// The transpose of the last two axes.
pub(crate) fn mt(t: &Tensor) -> Tensor {
    let r = t.rank();
    t.transpose(r - 2, r - 1)
}

/// An `n × n` mask: `1` strictly inside the `lower` (or upper) triangle, `diag` on the diagonal,
/// `0` elsewhere (a constant).
pub(crate) fn tri_mask(n: usize, lower: bool, diag: f64, dtype: DType) -> Tensor {
    let v: Vec<f64> = (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            if i == j {
                diag
            } else if (i > j) == lower {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(v, &[n, n]).cast(dtype)
}

/// The identity with `a`'s matrix size and dtype.
pub(crate) fn eye_like(a: &Tensor) -> Tensor {
    Tensor::eye(a.shape()[a.rank() - 1], a.dtype())
}

/// `a [..., n, n]` of a float dtype.
#[track_caller]
pub(crate) fn check_square(op: &str, a: &Aval) {
    let r = a.rank();
    if r < 2 || a.shape[r - 1] != a.shape[r - 2] || !a.dtype.is_float() {
        misuse(op, format!("needs float square matrices [..., n, n], got {a}"));
    }
}

/// `b [..., n, k]` with `a`'s batch dimensions and dtype.
#[track_caller]
pub(crate) fn check_rhs(op: &str, a: &Aval, b: &Aval) {
    let r = a.rank();
    if b.rank() != r
        || b.shape[..r - 2] != a.shape[..r - 2]
        || b.shape[r - 2] != a.shape[r - 1]
        || b.dtype != a.dtype
    {
        misuse(
            op,
            format!("right-hand side {b} does not fit the matrices {a} (expected [..., n, k] of one dtype)"),
        );
    }
}

/// Every argument with its batch axis in front (an unbatched one as a stride-0 view).
pub(crate) fn to_front_all(a: &[&Tensor], axes: &[Option<usize>], size: usize) -> Vec<Tensor> {
    a.iter().zip(axes).map(|(t, ax)| to_front(t, *ax, size)).collect()
}

/// The batching rule of the linalg primitives: the batch becomes one more leading axis, which
/// the kernels loop over.
pub(crate) fn batch_front<P: SimplePrimitive>(
    p: &P,
    a: &[&Tensor],
    axes: &[Option<usize>],
    size: usize,
) -> (Tensor, Option<usize>) {
    let xs = to_front_all(a, axes, size);
    let refs: Vec<&Tensor> = xs.iter().collect();
    (bind(p, &refs), Some(0))
}

/// [`batch_front`] for a primitive with several outputs, each batched on axis 0.
pub(crate) fn batch_front_multi<P: Primitive>(
    p: &P,
    a: &[&Tensor],
    axes: &[Option<usize>],
    size: usize,
) -> (Outs<Tensor>, Outs<Option<usize>>) {
    let xs = to_front_all(a, axes, size);
    let refs: Vec<&Tensor> = xs.iter().collect();
    let outs = bind_multi(p, &refs);
    let axes = outs.iter().map(|_| Some(0)).collect();
    (outs, axes)
}

/// The two outputs of a two-output primitive.
pub(crate) fn two(mut o: Outs<Tensor>) -> (Tensor, Tensor) {
    let second = o.pop().expect("two outputs");
    (o.pop().expect("two outputs"), second)
}

/// The three outputs of a three-output primitive.
pub(crate) fn three(o: Outs<Tensor>) -> (Tensor, Tensor, Tensor) {
    let mut o = o.into_iter();
    let mut next = || o.next().expect("three outputs");
    (next(), next(), next())
}

/// The lower triangle of matrices, with the diagonal scaled by `diag` (0: strictly lower).
pub(crate) fn tril(t: &Tensor, diag: f64) -> Tensor {
    let n = t.shape()[t.rank() - 1];
    t * tri_mask(n, true, diag, t.dtype())
}

/// The upper triangle of matrices, diagonal included.
pub(crate) fn triu(t: &Tensor) -> Tensor {
    let n = t.shape()[t.rank() - 1];
    t * tri_mask(n, false, 1.0, t.dtype())
}

/// Broadcast the batch axes of `a [..., n, n]` and `b` (a vector `[n]` — NumPy 2's rule: only
/// a 1-D `b` is a vector — or matrices `[..., n, k]`); returns them and whether `b` was a vector.
#[track_caller]
pub(crate) fn broadcast_pair(op: &str, a: &Tensor, b: &Tensor) -> (Tensor, Tensor, bool) {
    check_square(op, &Aval::of(a));
    let vector = b.rank() == 1;
    let b = if vector { b.unsqueeze(1) } else { b.clone() };
    let (ra, rb) = (a.rank(), b.rank());
    let Some(batch) = broadcast_shapes(&a.shape()[..ra - 2], &b.shape()[..rb.max(2) - 2]) else {
        misuse(op, format!("batch dimensions of {:?} and {:?} do not broadcast", a.shape(), b.shape()))
    };
    let n = a.shape()[ra - 1];
    if rb < 2 || b.shape()[rb - 2] != n {
        misuse(op, format!("right-hand side {:?} does not fit matrices {:?}", b.shape(), a.shape()));
    }
    let mut sa = batch.to_vec();
    sa.extend([n, n]);
    let mut sb = batch.to_vec();
    sb.extend([n, b.shape()[rb - 1]]);
    (a.broadcast_to(&sa), b.broadcast_to(&sb), vector)
}

pub(crate) fn unvector(x: Tensor, vector: bool) -> Tensor {
    if vector {
        x.squeeze(x.rank() - 1)
    } else {
        x
    }
}

/// Rows of `b [..., n, k]` picked by `perm [..., n]`: `out[i] = b[perm[i]]`.
pub(crate) fn permute_rows(b: &Tensor, perm: &Tensor) -> Tensor {
    let r = b.rank();
    b.gather(r - 2, &perm.unsqueeze(r - 1).broadcast_to(b.shape()))
}

/// The inverse of [`permute_rows`]: `out[perm[i]] = x[i]`.
pub(crate) fn unpermute_rows(x: &Tensor, perm: &Tensor) -> Tensor {
    let r = x.rank();
    let idx = perm.unsqueeze(r - 1).broadcast_to(x.shape());
    Tensor::full_of(x.shape(), 0.0, x.dtype()).scatter_add(r - 2, &idx, x)
}

/// The diagonals `[..., n]` of matrices `[..., n, n]`.
pub(crate) fn diag_part(m: &Tensor) -> Tensor {
    let r = m.rank();
    (m * eye_like(m)).sum_axes(&[r - 1], false)
}

/// Diagonal matrices `[..., n, n]` from their diagonals `[..., n]`.
pub(crate) fn diag_embed(d: &Tensor) -> Tensor {
    let n = d.shape()[d.rank() - 1];
    d.unsqueeze(d.rank()) * Tensor::eye(n, d.dtype())
}

/// `X` with `A X = B` (LU with partial pivoting). `b` is a vector `[n]` or matrices
/// `[..., n, k]`; batch dimensions broadcast as NumPy's.
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::linalg::solve;
/// let a = Tensor::from_vec(vec![2.0f64, 1.0, 1.0, 3.0], &[2, 2]);
/// let x = solve(&a, &Tensor::from_vec(vec![3.0f64, 5.0], &[2]));
/// assert!((x.to_vec::<f64>()[0] - 0.8).abs() < 1e-12 && (x.to_vec::<f64>()[1] - 1.4).abs() < 1e-12);
/// let g = grad(|b: &Tensor| solve(&a, b).sum())(&Tensor::ones(&[2]).to_f64()); // A⁻ᵀ 1
/// assert!((g.to_vec::<f64>()[0] - 0.4).abs() < 1e-12);
/// ```
#[track_caller]
pub fn solve(a: &Tensor, b: &Tensor) -> Tensor {
    let (rb, n) = (b.rank(), a.shape().last().copied().unwrap_or(0));
    if a.rank() == 2 && rb > 2 && b.shape()[rb - 2] == n {
        // One matrix, right-hand sides with batch dimensions: one factorisation, and the
        // batch becomes more columns ([..., n, k] -> [n, ...·k]).
        check_square("solve", &Aval::of(a));
        let front = move_axis(b, rb - 2, 0);
        let s = front.shape().to_vec();
        let x = lu_solve::solve_raw(a, &front.reshape(&[n, b.numel() / n.max(1)]));
        return move_axis(&x.reshape(&s), 0, rb - 2);
    }
    let (a, b, vector) = broadcast_pair("solve", a, b);
    unvector(lu_solve::solve_raw(&a, &b), vector)
}

/// The lower Cholesky factor `L` of a symmetric positive definite `A = L Lᵀ` (of
/// `(A + Aᵀ)/2`, so the gradient is symmetric).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::cholesky;
/// let l = cholesky(&Tensor::from_vec(vec![4.0f64, 2.0, 2.0, 5.0], &[2, 2]));
/// assert_eq!(l.to_vec::<f64>(), vec![2.0, 0.0, 1.0, 2.0]);
/// ```
#[track_caller]
pub fn cholesky(a: &Tensor) -> Tensor {
    check_square("cholesky", &Aval::of(a));
    let sym = (a + mt(a)) * 0.5;
    bind(&cholesky::Cholesky, &[&sym])
}

/// `X` with `op(A) X = B` for a triangular `A`: only its `lower` (or upper) triangle is read,
/// `op(A) = Aᵀ` when `transpose`. `b` as in [`solve`].
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::triangular_solve;
/// let l = Tensor::from_vec(vec![2.0f64, 0.0, 1.0, 4.0], &[2, 2]);
/// let x = triangular_solve(&l, &Tensor::from_vec(vec![2.0f64, 9.0], &[2]), true, false);
/// assert_eq!(x.to_vec::<f64>(), vec![1.0, 2.0]);
/// ```
#[track_caller]
pub fn triangular_solve(a: &Tensor, b: &Tensor, lower: bool, transpose: bool) -> Tensor {
    let (a, b, vector) = broadcast_pair("triangular_solve", a, b);
    unvector(triangular_solve::tri_solve(&a, &b, lower, transpose), vector)
}

/// `X` with `L Lᵀ X = B` given the Cholesky factor `L` (two triangular solves).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::{cho_solve, cholesky};
/// let a = Tensor::from_vec(vec![4.0f64, 2.0, 2.0, 5.0], &[2, 2]);
/// let x = cho_solve(&cholesky(&a), &Tensor::from_vec(vec![6.0f64, 7.0], &[2]));
/// assert!((x.to_vec::<f64>()[0] - 1.0).abs() < 1e-12 && (x.to_vec::<f64>()[1] - 1.0).abs() < 1e-12);
/// ```
#[track_caller]
pub fn cho_solve(l: &Tensor, b: &Tensor) -> Tensor {
    let (l, b, vector) = broadcast_pair("cho_solve", l, b);
    let y = triangular_solve::tri_solve(&l, &b, true, false);
    unvector(triangular_solve::tri_solve(&l, &y, true, true), vector)
}

/// `(sign, log|det A|)` over the last two axes.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::slogdet;
/// let (s, l) = slogdet(&Tensor::from_vec(vec![0.0f64, 2.0, 3.0, 0.0], &[2, 2]));
/// assert_eq!(s.item(), -1.0);
/// assert!((l.item() - 6f64.ln()).abs() < 1e-12);
/// ```
#[track_caller]
pub fn slogdet(a: &Tensor) -> (Tensor, Tensor) {
    two(bind_multi(&slogdet::Slogdet, &[a]))
}

/// The determinant over the last two axes (`sign · exp(log|det|)`).
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::linalg::det;
/// let a = Tensor::from_vec(vec![2.0f64, 1.0, 1.0, 3.0], &[2, 2]);
/// assert!((det(&a).item() - 5.0).abs() < 1e-12);
/// // d det / dA = det · A⁻ᵀ = [[3, -1], [-1, 2]].
/// let g = grad(|a: &Tensor| det(a))(&a).to_vec::<f64>();
/// assert!((g[0] - 3.0).abs() < 1e-12 && (g[1] + 1.0).abs() < 1e-12);
/// ```
#[track_caller]
pub fn det(a: &Tensor) -> Tensor {
    let (s, l) = slogdet(a);
    s * l.exp()
}

/// The inverse over the last two axes (a solve with the identity).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::inv;
/// let i = inv(&Tensor::from_vec(vec![2.0f64, 0.0, 0.0, 4.0], &[2, 2]));
/// assert_eq!(i.to_vec::<f64>(), vec![0.5, 0.0, 0.0, 0.25]);
/// ```
#[track_caller]
pub fn inv(a: &Tensor) -> Tensor {
    check_square("inv", &Aval::of(a));
    let e = eye_like(a).broadcast_to(a.shape());
    lu_solve::solve_raw(a, &e)
}
