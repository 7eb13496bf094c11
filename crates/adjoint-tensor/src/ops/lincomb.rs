//! Linear combinations `y + c₀k₀ + c₁k₁ + …` of equal-shape float arrays in one pass.
//!
//! ## Design choices
//! - **The same bits as op by op.** Each element is `y + ((c₀k₀ + c₁k₁) + c₂k₂ + …)`, with
//!   every product and sum rounded as `mul` and `add` round them, in that order: a caller can
//!   take this path for plain values and the op-by-op path for traced ones (an ODE solver's
//!   stage combinations: `adjoint-solvers`' Runge–Kutta driver) and get identical results.
//!   The coefficients take the arrays' float type first (`c as f32` for `f32`), as a scalar
//!   operand does in a binary op.
//! - **One pass.** Op by op, `m` terms cost `2m` passes over memory and `2m` fresh arrays;
//!   here the sum is accumulated in the output, an L1-sized block ([`BLOCK`]) at a time, so
//!   each input is read once from memory and the output written back once. Above
//!   [`PAR_THRESHOLD`](super::PAR_THRESHOLD) elements the chunks go to `rayon`, as in the
//!   other elementwise kernels.

use std::mem::MaybeUninit;

use crate::array::Array;
use crate::dtype::{DType, FloatElement};
use crate::error::{OrFail, Result};
use crate::ops::simd::{dispatch_simd, simd_builds};
use crate::ops::unary::build;

/// Elements accumulated at a time.
const BLOCK: usize = 512;

#[inline(always)]
fn block_generic<T: FloatElement>(
    out: &mut [MaybeUninit<T>],
    at: usize,
    y: Option<&[T]>,
    ks: &[&[T]],
    cs: &[T],
) {
    let n = out.len();
    let k0 = &ks[0][at..at + n];
    for i in 0..n {
        out[i].write(k0[i] * cs[0]);
    }
    // SAFETY: every element was written just above; `MaybeUninit<T>` has `T`'s layout.
    let acc = unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) };
    for (k, &c) in ks.iter().zip(cs).skip(1) {
        let k = &k[at..at + n];
        for i in 0..n {
            acc[i] = acc[i] + k[i] * c;
        }
    }
    if let Some(y) = y {
        let y = &y[at..at + n];
        for i in 0..n {
            acc[i] = y[i] + acc[i];
        }
    }
}

simd_builds!(block_generic => block_avx2, block_avx512, [T: FloatElement], (out: &mut [MaybeUninit<T>], at: usize, y: Option<&[T]>, ks: &[&[T]], cs: &[T]));

/// Elements `at..at + out.len()` (at most [`BLOCK`]) of the combination of the whole inputs
/// `y`, `ks`, in the widest SIMD build the CPU runs.
fn block<T: FloatElement>(out: &mut [MaybeUninit<T>], at: usize, y: Option<&[T]>, ks: &[&[T]], cs: &[T]) {
    dispatch_simd!(block_generic, block_avx2, block_avx512, (out, at, y, ks, cs))
}

fn lincomb_typed<T: FloatElement>(y: Option<&Array>, ks: &[&Array], cs: &[f64]) -> Array {
    let shape = ks[0].shape().to_vec();
    let owned: Vec<Array> = y.into_iter().chain(ks.iter().copied()).map(Array::contiguous).collect();
    let slices: Vec<&[T]> = owned.iter().map(|a| a.as_slice::<T>().expect("contiguous")).collect();
    let (y, ks) = if y.is_some() { (Some(slices[0]), &slices[1..]) } else { (None, &slices[..]) };
    let cs: Vec<T> = cs.iter().map(|&c| T::from_f64(c)).collect();
    let n = ks[0].len();
    let out = build(n, |start, o: &mut [MaybeUninit<T>]| {
        for (j, ob) in o.chunks_mut(BLOCK).enumerate() {
            block(ob, start + j * BLOCK, y, ks, &cs);
        }
    });
    Array::from_vec(out, &shape)
}

/// Partial sums of [`Array::lincomb_weighted_sumsq`] per element slot of a group of 8 (summed
/// in a fixed order at the end, so the result does not depend on the SIMD build).
const LANES: usize = 8;

#[inline(always)]
fn sumsq_generic<T: FloatElement>(
    block: std::ops::Range<usize>,
    ks: &[&[T]],
    cs: &[f64],
    y: &[T],
    z: &[T],
    tol: (f64, f64),
    lanes: &mut [f64; LANES],
) {
    let (at, n) = (block.start, block.len());
    let (rtol, atol) = tol;
    let mut e = [0f64; BLOCK];
    let e = &mut e[..n];
    let k0 = &ks[0][at..at + n];
    for i in 0..n {
        e[i] = k0[i].to_f64() * cs[0];
    }
    for (k, &c) in ks.iter().zip(cs).skip(1) {
        let k = &k[at..at + n];
        for i in 0..n {
            e[i] += k[i].to_f64() * c;
        }
    }
    let (y, z) = (&y[at..at + n], &z[at..at + n]);
    // The scaled estimate in place (an elementwise loop, vectorised), then its squares summed
    // in `LANES` running sums. `max` is a comparison, not `f64::max`, whose NaN rule keeps LLVM
    // from vectorising it: a NaN in `y` or `z` makes the term NaN, as a NaN estimate does.
    for i in 0..n {
        let (a, b) = (y[i].to_f64().abs(), z[i].to_f64().abs());
        e[i] /= atol + if a > b { a } else { b } * rtol;
    }
    let whole = n - n % LANES;
    for c in e[..whole].chunks_exact(LANES) {
        for l in 0..LANES {
            lanes[l] += c[l] * c[l];
        }
    }
    for (l, r) in e[whole..].iter().enumerate() {
        lanes[l] += r * r;
    }
}

simd_builds!(sumsq_generic => sumsq_avx2, sumsq_avx512, [T: FloatElement], (block: std::ops::Range<usize>, ks: &[&[T]], cs: &[f64], y: &[T], z: &[T], tol: (f64, f64), lanes: &mut [f64; LANES]));

fn sumsq_typed<T: FloatElement>(ks: &[&Array], cs: &[f64], y: &Array, z: &Array, tol: (f64, f64)) -> f64 {
    use rayon::prelude::*;
    let owned: Vec<Array> = [y, z].into_iter().chain(ks.iter().copied()).map(Array::contiguous).collect();
    let slices: Vec<&[T]> = owned.iter().map(|a| a.as_slice::<T>().expect("contiguous")).collect();
    let (y, z, ks) = (slices[0], slices[1], &slices[2..]);
    let n = y.len();
    // Fixed chunks and blocks, partial sums added in index order: the same result on any pool.
    let chunk = |start: usize, len: usize| -> f64 {
        let mut total = 0.0;
        for at in (start..start + len).step_by(BLOCK) {
            let m = BLOCK.min(start + len - at);
            let mut lanes = [0f64; LANES];
            let mut run = || {
                let lanes = &mut lanes;
                dispatch_simd!(
                    sumsq_generic,
                    sumsq_avx2,
                    sumsq_avx512,
                    (at..at + m, ks, cs, y, z, tol, lanes)
                )
            };
            run();
            total += lanes.iter().sum::<f64>();
        }
        total
    };
    let size = crate::ops::unary::CHUNK;
    if crate::ops::parallel(n) {
        let parts: Vec<f64> =
            (0..n.div_ceil(size)).into_par_iter().map(|c| chunk(c * size, size.min(n - c * size))).collect();
        parts.iter().sum()
    } else {
        (0..n.div_ceil(size)).map(|c| chunk(c * size, size.min(n - c * size))).sum()
    }
}

impl Array {
    /// `y + Σ cᵢ·ksᵢ` (just the sum when `y` is `None`) in one pass, with the bits of the
    /// op-by-op form `y + ((c₀·k₀ + c₁·k₁) + …)` (see the module docs). Panics on misuse; see
    /// [`try_lincomb`](Self::try_lincomb).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let y = Array::from_vec(vec![1.0f64, 2.0], &[2]);
    /// let (a, b) = (Array::from_vec(vec![1.0f64, 1.0], &[2]), Array::from_vec(vec![0.5f64, -1.0], &[2]));
    /// let z = Array::lincomb(Some(&y), &[&a, &b], &[2.0, 4.0]);
    /// assert_eq!(z.to_vec::<f64>(), vec![5.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn lincomb(y: Option<&Array>, ks: &[&Array], cs: &[f64]) -> Array {
        Array::try_lincomb(y, ks, cs).or_fail()
    }

    /// `Σⱼ (eⱼ / (atol + rtol·max(|yⱼ|, |zⱼ|)))²` with `e = Σᵢ cᵢ·ksᵢ`, in one pass without
    /// forming `e`: the squared weighted norm of a Runge–Kutta step's error estimate (`y` the
    /// step's start, `z` its end), as SciPy's and Hairer's step control measure it. `e` is
    /// accumulated in `f64` in the order of the terms; the squares are summed in fixed groups
    /// (the same result on any thread pool). `tol` is `(rtol, atol)`. Panics on misuse (at
    /// least one term, as many coefficients as terms, float arrays of one dtype and shape).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let k = Array::from_vec(vec![2.0f64, -4.0], &[2]);
    /// let (y, z) = (Array::from_vec(vec![1.0f64, 0.0], &[2]), Array::from_vec(vec![0.0f64, 3.0], &[2]));
    /// // e = 0.5·k = (1, -2); scales 0 + 1·max(1, 0) = 1 and 0 + 1·max(0, 3) = 3.
    /// let s = Array::lincomb_weighted_sumsq(&[&k], &[0.5], &y, &z, (1.0, 0.0));
    /// assert!((s - (1.0 + 4.0 / 9.0)).abs() < 1e-15);
    /// ```
    #[track_caller]
    pub fn lincomb_weighted_sumsq(ks: &[&Array], cs: &[f64], y: &Array, z: &Array, tol: (f64, f64)) -> f64 {
        let check = || -> Result<()> {
            crate::ensure!(
                !ks.is_empty() && ks.len() == cs.len(),
                "lincomb_weighted_sumsq",
                "got {} terms and {} coefficients",
                ks.len(),
                cs.len()
            );
            let first = ks[0];
            for a in [y, z].into_iter().chain(ks.iter().copied()) {
                crate::ensure!(
                    a.dtype() == first.dtype() && a.shape() == first.shape() && a.dtype().is_float(),
                    "lincomb_weighted_sumsq",
                    "needs float arrays of one dtype and shape, got {} {:?} and {} {:?}",
                    first.dtype(),
                    first.shape(),
                    a.dtype(),
                    a.shape()
                );
            }
            Ok(())
        };
        check().or_fail();
        match ks[0].dtype() {
            DType::F32 => sumsq_typed::<f32>(ks, cs, y, z, tol),
            DType::F64 => sumsq_typed::<f64>(ks, cs, y, z, tol),
            _ => unreachable!("checked: float"),
        }
    }

    /// Fallible [`lincomb`](Self::lincomb): at least one term, as many coefficients as terms,
    /// and every array of one float dtype and one shape.
    pub fn try_lincomb(y: Option<&Array>, ks: &[&Array], cs: &[f64]) -> Result<Array> {
        crate::ensure!(!ks.is_empty(), "lincomb", "needs at least one term");
        crate::ensure!(
            ks.len() == cs.len(),
            "lincomb",
            "got {} terms and {} coefficients",
            ks.len(),
            cs.len()
        );
        let first = ks[0];
        for a in y.into_iter().chain(ks.iter().copied()) {
            crate::ensure!(
                a.dtype() == first.dtype() && a.shape() == first.shape() && a.dtype().is_float(),
                "lincomb",
                "needs float arrays of one dtype and shape, got {} {:?} and {} {:?}",
                first.dtype(),
                first.shape(),
                a.dtype(),
                a.shape()
            );
        }
        Ok(match first.dtype() {
            DType::F32 => lincomb_typed::<f32>(y, ks, cs),
            DType::F64 => lincomb_typed::<f64>(y, ks, cs),
            _ => unreachable!("checked: float"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Bit for bit the op-by-op form, for both float types, with and without `y`, sizes
        /// across the block and parallel thresholds, and one strided term.
        #[test]
        fn matches_op_by_op(n in 0usize..1500, m in 1usize..7, with_y: bool, f32_: bool, seed: u64) {
            let dtype = if f32_ { DType::F32 } else { DType::F64 };
            let arr = |s: u64| {
                let v: Vec<f64> = (0..n as u64).map(|i| {
                    let z = (i ^ seed.wrapping_add(s)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    (z >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
                }).collect();
                Array::from_vec(v, &[n]).cast(dtype)
            };
            let y = arr(99);
            let mut ks: Vec<Array> = (0..m as u64).map(arr).collect();
            // One term a strided view (every other element of a longer array).
            ks[0] = Array::from_vec((0..2 * n).map(|i| i as f64 * 0.37 - 3.0).collect::<Vec<_>>(), &[n, 2])
                .cast(dtype).narrow(1, 0, 1).reshape(&[n]);
            let cs: Vec<f64> = (0..m).map(|i| 0.1 + i as f64 * 0.731 - 1.3).collect();
            let refs: Vec<&Array> = ks.iter().collect();
            let got = Array::lincomb(with_y.then_some(&y), &refs, &cs);
            let scalar = |c: f64| Array::full(&[], c, dtype);
            let mut acc = ks[0].mul(&scalar(cs[0]));
            for (k, &c) in ks.iter().zip(&cs).skip(1) {
                acc = acc.add(&k.mul(&scalar(c)));
            }
            let want = if with_y { y.add(&acc) } else { acc };
            let bits = |a: &Array| a.cast(DType::F64).to_vec::<f64>().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&want));
        }
    }

    /// Past the parallel threshold (chunks split across `rayon`, each in blocks).
    #[test]
    fn large_arrays_match_op_by_op() {
        let n = 200_003;
        let k = |s: f64| Array::from_vec((0..n).map(|i| (i as f64 * s).sin()).collect::<Vec<_>>(), &[n]);
        let (y, a, b) = (k(0.1), k(0.37), k(1.3));
        let got = Array::lincomb(Some(&y), &[&a, &b], &[0.3, -1.7]);
        let want = y.add(&a.mul(&Array::scalar(0.3f64)).add(&b.mul(&Array::scalar(-1.7f64))));
        assert_eq!(got.to_vec::<f64>(), want.to_vec::<f64>());
    }

    /// The fused weighted sum of squares against the formula evaluated element by element in
    /// `f64` (terms accumulated in order), for both float types, sizes across the block, lane
    /// and parallel boundaries, one strided term, and the same bits on 1, 2 and 3 threads.
    #[test]
    fn weighted_sumsq_matches_the_formula_on_any_pool() {
        for (n, dtype) in [
            (0, DType::F64),
            (7, DType::F64),
            (1029, DType::F32),
            (200_003, DType::F64),
            (70_001, DType::F32),
        ] {
            let arr = |s: f64| {
                Array::from_vec((0..n).map(|i| ((i as f64 + 1.0) * s).sin() * 3.0).collect::<Vec<_>>(), &[n])
                    .cast(dtype)
            };
            let (y, z) = (arr(0.11), arr(0.29));
            let strided =
                Array::from_vec((0..2 * n).map(|i| (i as f64 * 0.37).cos()).collect::<Vec<_>>(), &[n, 2])
                    .cast(dtype)
                    .narrow(1, 1, 1)
                    .reshape(&[n]);
            let ks = [arr(0.7), strided, arr(1.9)];
            let cs = [0.25, -1.5, 3.0];
            let (rtol, atol) = (1e-3, 1e-6);
            let vals = |a: &Array| a.cast(DType::F64).to_vec::<f64>();
            let (yv, zv, kv): (Vec<f64>, Vec<f64>, Vec<Vec<f64>>) =
                (vals(&y), vals(&z), ks.iter().map(vals).collect());
            let want: f64 = (0..n)
                .map(|j| {
                    let e = kv[0][j] * cs[0] + kv[1][j] * cs[1] + kv[2][j] * cs[2];
                    let r = e / (atol + yv[j].abs().max(zv[j].abs()) * rtol);
                    r * r
                })
                .sum();
            let refs: Vec<&Array> = ks.iter().collect();
            let mut bits = Vec::new();
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let got = pool.install(|| Array::lincomb_weighted_sumsq(&refs, &cs, &y, &z, (rtol, atol)));
                assert!((got - want).abs() <= 1e-12 * want.abs(), "n = {n} {dtype:?}: {got} against {want}");
                bits.push(got.to_bits());
            }
            assert!(bits.iter().all(|b| *b == bits[0]), "n = {n}: the sum depends on the pool");
        }
    }

    #[test]
    fn misuse_is_an_error() {
        let a = Array::from_vec(vec![1.0f64, 2.0], &[2]);
        let b = Array::from_vec(vec![1.0f32, 2.0], &[2]);
        assert!(Array::try_lincomb(None, &[], &[]).is_err());
        assert!(Array::try_lincomb(None, &[&a], &[1.0, 2.0]).is_err());
        assert!(Array::try_lincomb(Some(&b), &[&a], &[1.0]).is_err());
        assert!(Array::try_lincomb(None, &[&a, &a.reshape(&[2, 1])], &[1.0, 1.0]).is_err());
        let i = Array::from_vec(vec![1i64, 2], &[2]);
        assert!(Array::try_lincomb(None, &[&i], &[1.0]).is_err());
        let bad = |f: &dyn Fn() -> f64| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
        assert!(bad(&|| Array::lincomb_weighted_sumsq(&[&a], &[1.0], &a, &b, (1.0, 0.0))), "mixed dtypes");
        assert!(bad(&|| Array::lincomb_weighted_sumsq(&[], &[], &a, &a, (1.0, 0.0))), "no terms");
        assert!(
            bad(&|| Array::lincomb_weighted_sumsq(&[&a, &a], &[1.0], &a, &a, (1.0, 0.0))),
            "terms without coefficients"
        );
    }
}
