//! The dense kernels, from `faer`, looped over leading batch dimensions. Inputs may be strided
//! views of any float dtype: they are read in row-major order as `f64`, and the results are
//! cast back to the input's dtype.

use adjoint_tensor::{Array, DType};
use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};

/// Batch size and the per-matrix `(rows, cols)` of a `[..., r, c]` array.
fn dims(a: &Array) -> (usize, usize, usize) {
    let s = a.shape();
    let (r, c) = (s[s.len() - 2], s[s.len() - 1]);
    (s[..s.len() - 2].iter().product(), r, c)
}

fn mat(data: &[f64], off: usize, r: usize, c: usize) -> Mat<f64> {
    Mat::from_fn(r, c, |i, j| data[off + i * c + j])
}

fn push(out: &mut Vec<f64>, m: MatRef<'_, f64>) {
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out.push(m[(i, j)]);
        }
    }
}

fn finish(out: Vec<f64>, shape: &[usize], dtype: DType) -> Array {
    let a = Array::from_vec(out, shape);
    if dtype == DType::F64 {
        a
    } else {
        a.cast(dtype)
    }
}

/// `X` with `A X = B` by LU with partial pivoting (`A [..., n, n]`, `B [..., n, k]`).
pub(crate) fn solve(a: &Array, b: &Array) -> Array {
    let (batch, n, _) = dims(a);
    let (_, _, k) = dims(b);
    let (av, bv) = (a.to_vec::<f64>(), b.to_vec::<f64>());
    let mut out = Vec::with_capacity(batch * n * k);
    for i in 0..batch {
        let lu = mat(&av, i * n * n, n, n).partial_piv_lu();
        let x = lu.solve(mat(&bv, i * n * k, n, k));
        push(&mut out, x.as_ref());
    }
    finish(out, b.shape(), b.dtype())
}

/// The lower Cholesky factor of each `A` (NaN where `A` is not positive definite, as JAX).
pub(crate) fn cholesky(a: &Array) -> Array {
    let (batch, n, _) = dims(a);
    let av = a.to_vec::<f64>();
    let mut out = Vec::with_capacity(batch * n * n);
    for i in 0..batch {
        match mat(&av, i * n * n, n, n).llt(Side::Lower) {
            Ok(llt) => push(&mut out, llt.L()),
            Err(_) => out.extend(std::iter::repeat_n(f64::NAN, n * n)),
        }
    }
    finish(out, a.shape(), a.dtype())
}

/// `X` with `op(A) X = B`, `A` triangular (only its `lower` or upper triangle is read),
/// `op(A) = Aᵀ` when `transpose`.
pub(crate) fn triangular_solve(a: &Array, b: &Array, lower: bool, transpose: bool) -> Array {
    let (batch, n, _) = dims(a);
    let (_, _, k) = dims(b);
    let (av, bv) = (a.to_vec::<f64>(), b.to_vec::<f64>());
    let mut out = Vec::with_capacity(batch * n * k);
    for i in 0..batch {
        let m = mat(&av, i * n * n, n, n);
        let mut x = mat(&bv, i * n * k, n, k);
        // op(A) is lower triangular when A is lower and not transposed, or upper and transposed.
        match (lower, transpose) {
            (true, false) => m.solve_lower_triangular_in_place(x.as_mut()),
            (false, false) => m.solve_upper_triangular_in_place(x.as_mut()),
            (true, true) => m.transpose().solve_upper_triangular_in_place(x.as_mut()),
            (false, true) => m.transpose().solve_lower_triangular_in_place(x.as_mut()),
        }
        push(&mut out, x.as_ref());
    }
    finish(out, b.shape(), b.dtype())
}

/// `(sign, log|det A|)` of each `A` from its LU factors (sign 0 and `-inf` when singular).
pub(crate) fn slogdet(a: &Array) -> (Array, Array) {
    let (batch, n, _) = dims(a);
    let av = a.to_vec::<f64>();
    let (mut signs, mut logs) = (Vec::with_capacity(batch), Vec::with_capacity(batch));
    for i in 0..batch {
        let lu = mat(&av, i * n * n, n, n).partial_piv_lu();
        let (u, fwd) = (lu.U(), lu.P().arrays().0);
        // Parity of the row permutation by its cycles.
        let mut seen = vec![false; n];
        let mut sign = 1.0f64;
        for s in 0..n {
            if !seen[s] {
                let (mut j, mut len) = (s, 0);
                while !seen[j] {
                    seen[j] = true;
                    j = fwd[j];
                    len += 1;
                }
                if len % 2 == 0 {
                    sign = -sign;
                }
            }
        }
        let mut log = 0.0f64;
        for d in 0..n {
            let v = u[(d, d)];
            if v == 0.0 {
                // Singular: the factors past a zero pivot are 0/0 artefacts.
                (sign, log) = (0.0, f64::NEG_INFINITY);
                break;
            }
            sign *= v.signum();
            log += v.abs().ln();
        }
        signs.push(sign);
        logs.push(log);
    }
    let shape = &a.shape()[..a.rank() - 2];
    (finish(signs, shape, a.dtype()), finish(logs, shape, a.dtype()))
}
