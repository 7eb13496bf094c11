//! The dense kernels, from `faer`, looped over leading batch dimensions. Inputs may be strided
//! views of any float dtype: they are read in row-major order as `f64` (borrowed, not copied,
//! when they already are contiguous `f64`), faer works on row-major views of those buffers, and
//! the results are cast back to the input's dtype.

use std::borrow::Cow;

use adjoint_tensor::{Array, DType};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
use faer::linalg::triangular_solve as tri;
use faer::{Mat, MatMut, MatRef, Par, Side};

/// Batch size and the per-matrix `(rows, cols)` of a `[..., r, c]` array.
pub(crate) fn dims(a: &Array) -> (usize, usize, usize) {
    let s = a.shape();
    let (r, c) = (s[s.len() - 2], s[s.len() - 1]);
    (s[..s.len() - 2].iter().product(), r, c)
}

/// The elements of `a` as `f64` in row-major order (borrowed when they already are).
pub(crate) fn data(a: &Array) -> Cow<'_, [f64]> {
    if a.dtype() == DType::F64
        && let Some(s) = a.as_slice::<f64>()
    {
        return Cow::Borrowed(s);
    }
    Cow::Owned(a.to_vec::<f64>())
}

/// The `i`-th `r × c` matrix of a row-major batch, as a faer view (no copy).
pub(crate) fn view(d: &[f64], i: usize, r: usize, c: usize) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(&d[i * r * c..(i + 1) * r * c], r, c)
}

/// The same, mutable.
pub(crate) fn view_mut(d: &mut [f64], i: usize, r: usize, c: usize) -> MatMut<'_, f64> {
    MatMut::from_row_major_slice_mut(&mut d[i * r * c..(i + 1) * r * c], r, c)
}

/// Append a faer matrix to a row-major buffer.
pub(crate) fn push(out: &mut Vec<f64>, m: MatRef<'_, f64>) {
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out.push(m[(i, j)]);
        }
    }
}

/// A row-major `f64` buffer as an array of `shape` and `dtype`.
pub(crate) fn finish(out: Vec<f64>, shape: &[usize], dtype: DType) -> Array {
    let a = Array::from_vec(out, shape);
    if dtype == DType::F64 {
        a
    } else {
        a.cast(dtype)
    }
}

fn par() -> Par {
    faer::get_global_parallelism()
}

/// LU with partial pivoting of one row-major `n × n` matrix, in place: afterwards `m` holds
/// `L` (unit diagonal, strictly below) and `U` (on and above the diagonal) with
/// `A[perm[i]] = (L U)[i]`. Returns the number of row transpositions.
fn lu_one(m: &mut [f64], n: usize, perm: &mut [usize], perm_inv: &mut [usize], buf: &mut MemBuffer) -> usize {
    let a = MatMut::from_row_major_slice_mut(m, n, n);
    let (info, _) = lu_in_place(a, perm, perm_inv, par(), MemStack::new(buf), Default::default());
    info.transposition_count
}

/// LAPACK-style pivots of a row permutation: row `i` was swapped with row `piv[i]`, in order.
fn pivots_of(perm: &[usize], out: &mut Vec<i64>) {
    let n = perm.len();
    let mut at: Vec<usize> = (0..n).collect(); // row at each position
    let mut pos: Vec<usize> = (0..n).collect(); // position of each row
    for i in 0..n {
        let j = pos[perm[i]];
        out.push(j as i64);
        let (ri, rj) = (at[i], at[j]);
        at.swap(i, j);
        pos[ri] = j;
        pos[rj] = i;
    }
}

/// `(lu, pivots, perm)` of each `A [..., n, n]`: packed factors with `A[perm] = L U`, `L` unit
/// lower triangular, and the LAPACK (SciPy `lu_factor`) pivots of the same permutation. A
/// singular `A` gives non-finite entries past its first zero pivot.
pub(crate) fn lu(a: &Array) -> (Array, Array, Array) {
    let (batch, n, _) = dims(a);
    let mut lu = a.to_vec::<f64>();
    let (mut pivots, mut perms) = (Vec::with_capacity(batch * n), Vec::with_capacity(batch * n));
    if n > 0 {
        let mut buf = MemBuffer::new(lu_in_place_scratch::<usize, f64>(n, n, par(), Default::default()));
        let (mut perm, mut inv) = (vec![0usize; n], vec![0usize; n]);
        for m in lu.chunks_exact_mut(n * n) {
            lu_one(m, n, &mut perm, &mut inv, &mut buf);
            perms.extend(perm.iter().map(|&p| p as i64));
            pivots_of(&perm, &mut pivots);
        }
    }
    let vec_shape = &a.shape()[..a.rank() - 1];
    (finish(lu, a.shape(), a.dtype()), Array::from_vec(pivots, vec_shape), Array::from_vec(perms, vec_shape))
}

/// The row permutation of LAPACK-style pivots (`[..., n]`, `i64`).
pub(crate) fn pivots_to_permutation(piv: &Array) -> Array {
    let n = piv.shape()[piv.rank() - 1];
    let p = piv.to_vec::<i64>();
    let mut out = Vec::with_capacity(p.len());
    if n > 0 {
        for row in p.chunks_exact(n) {
            let start = out.len();
            out.extend(0..n as i64);
            for (i, &j) in row.iter().enumerate() {
                let j = usize::try_from(j).ok().filter(|&j| j < n).unwrap_or_else(|| {
                    adjoint_core::primitive::misuse(
                        "lu_pivots_to_permutation",
                        format!("pivot {j} out of range for size {n}"),
                    )
                });
                out.swap(start + i, start + j);
            }
        }
    }
    Array::from_vec(out, piv.shape())
}

/// `X` with `op(A) X = B` from `A`'s packed LU factors and row permutation (`A[perm] = L U`):
/// a permutation and two triangular solves. `op(A) = Aᵀ` when `transpose`.
pub(crate) fn lu_solve(lu: &Array, perm: &Array, b: &Array, transpose: bool) -> Array {
    let (batch, n, _) = dims(lu);
    let k = b.shape()[b.rank() - 1];
    let (luv, bv, pv) = (data(lu), data(b), perm.to_vec::<i64>());
    let mut out = vec![0.0f64; batch * n * k];
    let mut tmp = if transpose { vec![0.0f64; n * k] } else { Vec::new() };
    for i in 0..batch {
        let (f, p) = (view(&luv, i, n, n), &pv[i * n..(i + 1) * n]);
        let (x, bi) = (&mut out[i * n * k..(i + 1) * n * k], &bv[i * n * k..(i + 1) * n * k]);
        if !transpose {
            // L U x = b[perm].
            for (r, &pr) in p.iter().enumerate() {
                let pr = pr as usize;
                x[r * k..(r + 1) * k].copy_from_slice(&bi[pr * k..(pr + 1) * k]);
            }
            let mut xm = MatMut::from_row_major_slice_mut(x, n, k);
            tri::solve_unit_lower_triangular_in_place(f, xm.as_mut(), par());
            tri::solve_upper_triangular_in_place(f, xm, par());
        } else {
            // Uᵀ Lᵀ (x[perm]) = b.
            tmp.copy_from_slice(bi);
            let mut tm = MatMut::from_row_major_slice_mut(&mut tmp, n, k);
            tri::solve_lower_triangular_in_place(f.transpose(), tm.as_mut(), par());
            tri::solve_unit_upper_triangular_in_place(f.transpose(), tm, par());
            for (r, &pr) in p.iter().enumerate() {
                let pr = pr as usize;
                x[pr * k..(pr + 1) * k].copy_from_slice(&tmp[r * k..(r + 1) * k]);
            }
        }
    }
    finish(out, b.shape(), b.dtype())
}

/// The lower Cholesky factor of each `A` (NaN where `A` is not positive definite, as JAX).
pub(crate) fn cholesky(a: &Array) -> Array {
    let (batch, n, _) = dims(a);
    let av = data(a);
    let mut out = Vec::with_capacity(batch * n * n);
    for i in 0..batch {
        match view(&av, i, n, n).llt(Side::Lower) {
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
    let av = data(a);
    let mut out = b.to_vec::<f64>();
    for i in 0..batch {
        let m = view(&av, i, n, n);
        let x = view_mut(&mut out, i, n, k);
        // op(A) is lower triangular when A is lower and not transposed, or upper and transposed.
        match (lower, transpose) {
            (true, false) => tri::solve_lower_triangular_in_place(m, x, par()),
            (false, false) => tri::solve_upper_triangular_in_place(m, x, par()),
            (true, true) => tri::solve_upper_triangular_in_place(m.transpose(), x, par()),
            (false, true) => tri::solve_lower_triangular_in_place(m.transpose(), x, par()),
        }
    }
    finish(out, b.shape(), b.dtype())
}

/// `(sign, log|det A|)` of each `A` from its LU factors (sign 0 and `-inf` when singular).
pub(crate) fn slogdet(a: &Array) -> (Array, Array) {
    let (batch, n, _) = dims(a);
    let mut m = a.to_vec::<f64>();
    let (mut signs, mut logs) = (Vec::with_capacity(batch), Vec::with_capacity(batch));
    let mut buf = MemBuffer::new(lu_in_place_scratch::<usize, f64>(n, n, par(), Default::default()));
    let (mut perm, mut inv) = (vec![0usize; n], vec![0usize; n]);
    for i in 0..batch {
        let f = &mut m[i * n * n..(i + 1) * n * n];
        let swaps = if n > 0 { lu_one(f, n, &mut perm, &mut inv, &mut buf) } else { 0 };
        let (mut sign, mut log) = (if swaps % 2 == 1 { -1.0f64 } else { 1.0 }, 0.0f64);
        for d in 0..n {
            let v = f[d * n + d];
            if v == 0.0 || v.is_nan() {
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

/// For each column of `u`, the sign (±1) that makes its entry of largest magnitude positive:
/// how eigenvectors and singular vectors are made unique, deterministic and smooth under small
/// perturbations.
fn column_signs(u: MatRef<'_, f64>) -> Vec<f64> {
    (0..u.ncols())
        .map(|j| {
            let big =
                (0..u.nrows()).map(|i| u[(i, j)]).fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
            if big < 0.0 {
                -1.0
            } else {
                1.0
            }
        })
        .collect()
}

/// Eigenvalues (ascending) and eigenvectors (columns, each with its entry of largest magnitude
/// positive) of each symmetric `A`, reading its lower triangle. A failed decomposition (which faer reports only for non-finite input)
/// gives NaNs.
pub(crate) fn eigh(a: &Array) -> (Array, Array) {
    let (batch, n, _) = dims(a);
    let av = data(a);
    let (mut w, mut v) = (Vec::with_capacity(batch * n), Vec::with_capacity(batch * n * n));
    for i in 0..batch {
        match view(&av, i, n, n).self_adjoint_eigen(Side::Lower) {
            Ok(e) => {
                w.extend(e.S().column_vector().iter().copied());
                let u = e.U();
                let sign = column_signs(u);
                for r in 0..n {
                    v.extend((0..n).map(|j| u[(r, j)] * sign[j]));
                }
            }
            Err(_) => {
                w.extend(std::iter::repeat_n(f64::NAN, n));
                v.extend(std::iter::repeat_n(f64::NAN, n * n));
            }
        }
    }
    (finish(w, &a.shape()[..a.rank() - 1], a.dtype()), finish(v, a.shape(), a.dtype()))
}

/// The reduced QR factors of each `A [..., m, n]` (`m ≥ n`): `Q [..., m, n]` with orthonormal
/// columns and `R [..., n, n]` upper triangular with a non-negative diagonal (which makes the
/// factorisation unique for a full-rank `A`).
pub(crate) fn qr(a: &Array) -> (Array, Array) {
    let (batch, m, n) = dims(a);
    let av = data(a);
    let (mut qs, mut rs) = (Vec::with_capacity(batch * m * n), Vec::with_capacity(batch * n * n));
    for i in 0..batch {
        let f = view(&av, i, m, n).qr();
        let (q, r) = (f.compute_thin_Q(), f.thin_R());
        let sign: Vec<f64> = (0..n).map(|j| if r[(j, j)] < 0.0 { -1.0 } else { 1.0 }).collect();
        for row in 0..m {
            qs.extend((0..n).map(|j| q[(row, j)] * sign[j]));
        }
        for row in 0..n {
            rs.extend((0..n).map(|j| if j >= row { r[(row, j)] * sign[row] } else { 0.0 }));
        }
    }
    let mut rshape = a.shape().to_vec();
    let rank = rshape.len();
    rshape[rank - 2] = n;
    (finish(qs, a.shape(), a.dtype()), finish(rs, &rshape, a.dtype()))
}

/// The thin SVD `(U [..., m, k], s [..., k], Vᵀ [..., k, n])` of each `A [..., m, n]`, singular
/// values descending, each pair of singular vectors signed so that the entry of largest
/// magnitude of `uᵢ` is positive (NaNs where faer's iteration fails, on non-finite input).
pub(crate) fn svd(a: &Array) -> (Array, Array, Array) {
    let (batch, m, n) = dims(a);
    let k = m.min(n);
    let av = data(a);
    let (mut us, mut ss, mut vts) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..batch {
        match view(&av, i, m, n).thin_svd() {
            Ok(f) => {
                let (u, s, v) = (f.U(), f.S().column_vector(), f.V());
                let sign = column_signs(u);
                for r in 0..m {
                    us.extend((0..k).map(|j| u[(r, j)] * sign[j]));
                }
                ss.extend((0..k).map(|j| s[j]));
                for j in 0..k {
                    vts.extend((0..n).map(|c| v[(c, j)] * sign[j]));
                }
            }
            Err(_) => {
                us.extend(std::iter::repeat_n(f64::NAN, m * k));
                ss.extend(std::iter::repeat_n(f64::NAN, k));
                vts.extend(std::iter::repeat_n(f64::NAN, k * n));
            }
        }
    }
    let batch_shape = &a.shape()[..a.rank() - 2];
    let shape = |tail: &[usize]| [batch_shape, tail].concat();
    (
        finish(us, &shape(&[m, k]), a.dtype()),
        finish(ss, &shape(&[k]), a.dtype()),
        finish(vts, &shape(&[k, n]), a.dtype()),
    )
}

/// The matrix exponential of each `A [..., n, n]`: scaling and squaring with the degree-13
/// Padé approximant (Higham 2005, as SciPy's `expm` for large norms).
pub(crate) fn matrix_exp(a: &Array) -> Array {
    let (batch, n, _) = dims(a);
    let av = data(a);
    let mut out = Vec::with_capacity(batch * n * n);
    for i in 0..batch {
        push(&mut out, expm_one(view(&av, i, n, n)).as_ref());
    }
    finish(out, a.shape(), a.dtype())
}

const PADE13: [f64; 14] = [
    64764752532480000.0,
    32382376266240000.0,
    7771770303897600.0,
    1187353796428800.0,
    129060195264000.0,
    10559470521600.0,
    670442572800.0,
    33522128640.0,
    1323241920.0,
    40840800.0,
    960960.0,
    16380.0,
    182.0,
    1.0,
];

fn expm_one(a: MatRef<'_, f64>) -> Mat<f64> {
    let n = a.nrows();
    if n == 0 {
        return Mat::zeros(0, 0);
    }
    // The 1-norm decides the scaling: ‖A / 2ˢ‖₁ ≤ θ₁₃.
    let norm1 = (0..n).map(|j| (0..n).map(|i| a[(i, j)].abs()).sum::<f64>()).fold(0.0, f64::max);
    if !norm1.is_finite() {
        return Mat::from_fn(n, n, |_, _| f64::NAN);
    }
    const THETA13: f64 = 5.371920351148152;
    let s = if norm1 > THETA13 { (norm1 / THETA13).log2().ceil() as i32 } else { 0 };
    let a = a * faer::Scale(0.5f64.powi(s));
    let b = &PADE13;
    let id = Mat::<f64>::identity(n, n);
    let a2 = &a * &a;
    let a4 = &a2 * &a2;
    let a6 = &a4 * &a2;
    let u_in = &a6 * (&a6 * faer::Scale(b[13]) + &a4 * faer::Scale(b[11]) + &a2 * faer::Scale(b[9]))
        + &a6 * faer::Scale(b[7])
        + &a4 * faer::Scale(b[5])
        + &a2 * faer::Scale(b[3])
        + &id * faer::Scale(b[1]);
    let u = &a * &u_in;
    let v = &a6 * (&a6 * faer::Scale(b[12]) + &a4 * faer::Scale(b[10]) + &a2 * faer::Scale(b[8]))
        + &a6 * faer::Scale(b[6])
        + &a4 * faer::Scale(b[4])
        + &a2 * faer::Scale(b[2])
        + &id * faer::Scale(b[0]);
    let p = &v + &u;
    let q = &v - &u;
    use faer::linalg::solvers::Solve;
    let mut r = q.partial_piv_lu().solve(p);
    for _ in 0..s {
        r = &r * &r;
    }
    r
}
