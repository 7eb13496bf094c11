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
    }
}
