//! Elementwise choice between two arrays by a mask (`where` in NumPy, JAX and PyTorch).
//!
//! ## Design choices
//! - The three operands broadcast together (NumPy rules) without copying: each becomes a
//!   stride-0 view of the common shape, and [`Walk`] merges their dimensions and walks them
//!   together. Equal-shape contiguous operands zip three slices instead.
//! - The choice is written as a branch-free select so the contiguous loop vectorizes; both
//!   sides are read, which is free for arrays already computed.
//! - No promotion: the two branches must share a dtype, which is the result's dtype.

use std::mem::MaybeUninit;

use crate::array::Array;
use crate::dtype::{DType, Element};
use crate::error::{OrFail, Result, TensorError};
use crate::layout::broadcast_shapes;
use crate::ops::simd::{dispatch_simd, simd_builds};
use crate::ops::unary::{build, Walk};

#[inline(always)]
fn select_generic<T: Copy>(out: &mut [MaybeUninit<T>], c: &[bool], t: &[T], f: &[T]) {
    for (((o, &c), &t), &f) in out.iter_mut().zip(c).zip(t).zip(f) {
        o.write(if c { t } else { f });
    }
}

simd_builds!(select_generic => select_avx2, select_avx512, [T: Copy], (out: &mut [MaybeUninit<T>], c: &[bool], t: &[T], f: &[T]));

#[inline]
fn select_slices<T: Copy>(out: &mut [MaybeUninit<T>], c: &[bool], t: &[T], f: &[T]) {
    dispatch_simd!(select_generic, select_avx2, select_avx512, (out, c, t, f))
}

/// `select` with one branch a single value (`where(x > 0, x, 0)`): `t` (or `f`) is `None`
/// for the branch that is the scalar `v`.
#[inline(always)]
fn select_scalar_generic<T: Copy>(out: &mut [MaybeUninit<T>], c: &[bool], s: &[T], v: T, s_on_true: bool) {
    if s_on_true {
        for ((o, &c), &t) in out.iter_mut().zip(c).zip(s) {
            o.write(if c { t } else { v });
        }
    } else {
        for ((o, &c), &f) in out.iter_mut().zip(c).zip(s) {
            o.write(if c { v } else { f });
        }
    }
}

simd_builds!(select_scalar_generic => select_scalar_avx2, select_scalar_avx512, [T: Copy], (out: &mut [MaybeUninit<T>], c: &[bool], s: &[T], v: T, s_on_true: bool));

/// `out[i] = if c[i] { s[i] } else { v }` (or the other way round when `!s_on_true`).
#[inline]
fn select_scalar<T: Copy>(out: &mut [MaybeUninit<T>], c: &[bool], s: &[T], v: T, s_on_true: bool) {
    dispatch_simd!(select_scalar_generic, select_scalar_avx2, select_scalar_avx512, (out, c, s, v, s_on_true))
}

fn select_typed<T: Element>(cond: &Array, on_true: &Array, on_false: &Array, shape: &[usize]) -> Array {
    let n = crate::layout::numel(shape);
    let all_same = cond.shape() == shape && on_true.shape() == shape && on_false.shape() == shape;
    let contiguous = (cond.as_slice::<bool>(), on_true.as_slice::<T>(), on_false.as_slice::<T>());
    let out = match contiguous {
        (Some(c), Some(t), Some(f)) if all_same => {
            build(n, |s, o| select_slices(o, &c[s..s + o.len()], &t[s..s + o.len()], &f[s..s + o.len()]))
        }
        _ => {
            let lc = cond.layout().broadcast_to(shape).expect("shapes broadcast");
            let lt = on_true.layout().broadcast_to(shape).expect("shapes broadcast");
            let lf = on_false.layout().broadcast_to(shape).expect("shapes broadcast");
            let (sc, st, sf) =
                (cond.storage_slice::<bool>(), on_true.storage_slice::<T>(), on_false.storage_slice::<T>());
            let walk = Walk::new([&lc, &lt, &lf]);
            let [ic, it, iff] = walk.inner_strides();
            walk.build_with(|o: &mut [MaybeUninit<T>], [oc, ot, of]| {
                let len = o.len();
                let (uc, ut, uf) = (oc as usize, ot as usize, of as usize);
                if (ic, it, iff) == (1, 1, 1) {
                    select_slices(o, &sc[uc..uc + len], &st[ut..ut + len], &sf[uf..uf + len]);
                } else if (ic, it, iff) == (1, 1, 0) {
                    select_scalar(o, &sc[uc..uc + len], &st[ut..ut + len], sf[uf], true);
                } else if (ic, it, iff) == (1, 0, 1) {
                    select_scalar(o, &sc[uc..uc + len], &sf[uf..uf + len], st[ut], false);
                } else {
                    for (i, y) in o.iter_mut().enumerate() {
                        let i = i as isize;
                        let c = sc[(oc + i * ic) as usize];
                        y.write(if c { st[(ot + i * it) as usize] } else { sf[(of + i * iff) as usize] });
                    }
                }
            })
        }
    };
    Array::from_vec(out, shape)
}

impl Array {
    /// Elementwise `if cond { on_true } else { on_false }`; the three broadcast together.
    ///
    /// `cond` must be `bool`; `on_true` and `on_false` must share a dtype, the result's.
    /// Panics, naming the dtypes, the shapes and the caller's line, otherwise.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let x = Array::from_vec(vec![-1.0f32, 2.0, -3.0], &[3]);
    /// let relu = Array::select(&x.greater(&Array::scalar(0.0f32)), &x, &Array::scalar(0.0f32));
    /// assert_eq!(relu.to_vec::<f32>(), vec![0.0, 2.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn select(cond: &Array, on_true: &Array, on_false: &Array) -> Array {
        Self::try_select(cond, on_true, on_false).or_fail()
    }

    /// Fallible [`select`](Self::select).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// let c = Array::zeros(&[2], DType::Bool);
    /// let e = Array::try_select(&c, &Array::zeros(&[3], DType::F32), &Array::zeros(&[3], DType::F32));
    /// assert!(e.unwrap_err().message.contains("[2], [3] and [3]"));
    /// ```
    pub fn try_select(cond: &Array, on_true: &Array, on_false: &Array) -> Result<Array> {
        crate::ensure!(
            cond.dtype() == DType::Bool,
            "select",
            "condition must be bool, got {} of shape {:?}",
            cond.dtype(),
            cond.shape()
        );
        crate::ensure!(
            on_true.dtype() == on_false.dtype(),
            "select",
            "branches have different dtypes: {} {:?} vs {} {:?}",
            on_true.dtype(),
            on_true.shape(),
            on_false.dtype(),
            on_false.shape()
        );
        let shape = broadcast_shapes(cond.shape(), on_true.shape())
            .and_then(|s| broadcast_shapes(&s, on_false.shape()))
            .ok_or_else(|| {
                TensorError::new(
                    "select",
                    format!(
                        "cannot broadcast shapes {:?}, {:?} and {:?}",
                        cond.shape(),
                        on_true.shape(),
                        on_false.shape()
                    ),
                )
            })?;
        Ok(match on_true.dtype() {
            DType::F32 => select_typed::<f32>(cond, on_true, on_false, &shape),
            DType::F64 => select_typed::<f64>(cond, on_true, on_false, &shape),
            DType::I64 => select_typed::<i64>(cond, on_true, on_false, &shape),
            DType::Bool => select_typed::<bool>(cond, on_true, on_false, &shape),
        })
    }
}
