//! Sorting along an axis: [`sort`](Array::sort), [`argsort`](Array::argsort) and
//! [`topk`](Array::topk).
//!
//! ## Design choices
//! - **One total order.** Elements compare by value with NaN greater than everything (so NaN
//!   sorts last ascending, as in NumPy, and first descending, as in PyTorch), and ties break
//!   by original position. With that order every sort is *stable* in both directions even
//!   though the kernel uses the faster unstable sorts, and results never depend on the
//!   algorithm or thread count.
//! - **`topk` selects before it sorts** (`select_nth_unstable` then a sort of the `k` winners),
//!   so it is `O(n + k log k)` per lane rather than a full sort.
//! - Lanes are independent: the kernel writes them axis-last into one buffer (in parallel
//!   with `rayon` above [`PAR_THRESHOLD`](crate::ops::PAR_THRESHOLD) elements), then moves
//!   the axis back into place.

use std::cmp::Ordering;
use std::sync::Arc;

use rayon::prelude::*;
use smallvec::SmallVec;

use crate::array::Array;
use crate::dtype::{DType, Element};
use crate::ensure;
use crate::error::{OrFail, Result};
use crate::layout::{Layout, Shape};
use crate::ops::parallel;

/// Compare with NaN (any value unequal to itself) greater than every other value.
#[inline]
fn cmp_nan_last<T: Element>(a: &T, b: &T) -> Ordering {
    match a.partial_cmp(b) {
        Some(o) => o,
        #[allow(clippy::eq_op)]
        None => match (a != a, b != b) {
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => Ordering::Equal,
        },
    }
}

/// Sorted (or top-`k`) values and indices of every lane, written axis-last: `[outer…, k]`.
fn lanes_kernel<T: Element>(
    x: &Array,
    axis: usize,
    k: usize,
    descending: bool,
    want_values: bool,
) -> (Vec<T>, Vec<i64>) {
    let l = x.layout();
    let n = l.shape[axis];
    let step = l.strides[axis];
    let mut outer = l.clone();
    outer.shape.remove(axis);
    outer.strides.remove(axis);
    let lanes = outer.numel();
    if lanes == 0 || k == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut bases = Vec::with_capacity(lanes);
    outer.for_each_offset(|o| bases.push(o));
    let data = x.storage_slice::<T>();

    let mut vals: Vec<T> = if want_values { vec![T::default(); lanes * k] } else { Vec::new() };
    let mut idxs = vec![0i64; lanes * k];

    let one_lane = |base: usize, vout: &mut [T], iout: &mut [i64], buf: &mut Vec<(T, usize)>| {
        buf.clear();
        buf.extend((0..n).map(|i| (data[(base as isize + i as isize * step) as usize], i)));
        let cmp = |a: &(T, usize), b: &(T, usize)| {
            let c = if descending { cmp_nan_last(&b.0, &a.0) } else { cmp_nan_last(&a.0, &b.0) };
            c.then(a.1.cmp(&b.1))
        };
        if k < n {
            buf.select_nth_unstable_by(k, cmp);
            buf.truncate(k);
        }
        buf.sort_unstable_by(cmp);
        for (j, &(v, i)) in buf.iter().enumerate() {
            iout[j] = i as i64;
            if want_values {
                vout[j] = v;
            }
        }
    };

    let par = lanes > 1 && parallel(lanes * n);
    if want_values {
        if par {
            vals.par_chunks_mut(k)
                .zip(idxs.par_chunks_mut(k))
                .zip(bases.par_iter())
                .for_each_init(Vec::new, |buf, ((v, i), &b)| one_lane(b, v, i, buf));
        } else {
            let mut buf = Vec::with_capacity(n);
            for ((v, i), &b) in vals.chunks_mut(k).zip(idxs.chunks_mut(k)).zip(&bases) {
                one_lane(b, v, i, &mut buf);
            }
        }
    } else if par {
        idxs.par_chunks_mut(k)
            .zip(bases.par_iter())
            .for_each_init(Vec::new, |buf, (i, &b)| one_lane(b, &mut [], i, buf));
    } else {
        let mut buf = Vec::with_capacity(n);
        for (i, &b) in idxs.chunks_mut(k).zip(&bases) {
            one_lane(b, &mut [], i, &mut buf);
        }
    }
    (vals, idxs)
}

/// Wrap an axis-last buffer `[outer…, k]` as a contiguous array with the lane axis at `axis`.
fn axis_last_to_array<T: Element>(v: Vec<T>, x_shape: &[usize], axis: usize, k: usize) -> Array {
    let mut last_shape: Shape = x_shape.into();
    last_shape.remove(axis);
    last_shape.push(k);
    let a = Array::from_parts(Arc::new(T::into_storage(v)), Layout::contiguous(&last_shape));
    let r = x_shape.len();
    let perm: SmallVec<[usize; 6]> = (0..r)
        .map(|i| match i.cmp(&axis) {
            Ordering::Less => i,
            Ordering::Equal => r - 1,
            Ordering::Greater => i - 1,
        })
        .collect();
    a.permute(&perm).contiguous()
}

fn sort_impl<T: Element>(
    x: &Array,
    axis: usize,
    k: usize,
    descending: bool,
    want_values: bool,
) -> (Array, Array) {
    let (v, i) = lanes_kernel::<T>(x, axis, k, descending, want_values);
    let idx = axis_last_to_array(i, x.shape(), axis, k);
    let vals = if want_values { axis_last_to_array(v, x.shape(), axis, k) } else { idx.clone() };
    (vals, idx)
}

fn dispatch(x: &Array, axis: usize, k: usize, descending: bool, want_values: bool) -> (Array, Array) {
    match x.dtype() {
        DType::F32 => sort_impl::<f32>(x, axis, k, descending, want_values),
        DType::F64 => sort_impl::<f64>(x, axis, k, descending, want_values),
        DType::I64 => sort_impl::<i64>(x, axis, k, descending, want_values),
        DType::Bool => sort_impl::<bool>(x, axis, k, descending, want_values),
    }
}

fn check_axis(op: &'static str, x: &Array, axis: usize) -> Result<()> {
    ensure!(axis < x.rank(), op, "axis {axis} out of range for shape {:?}", x.shape());
    Ok(())
}

impl Array {
    /// Sort along `axis`: the sorted values and their `I64` positions in `self`.
    ///
    /// Stable in both directions (equal elements keep their order); NaN is treated as larger
    /// than every number, so it sorts last ascending and first descending.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let x = Array::from_vec(vec![3.0f32, f32::NAN, 1.0, 3.0], &[4]);
    /// let (v, i) = x.sort(0, false);
    /// assert_eq!(&v.to_vec::<f32>()[..3], &[1.0, 3.0, 3.0]);
    /// assert!(v.to_vec::<f32>()[3].is_nan());
    /// assert_eq!(i.to_vec::<i64>(), vec![2, 0, 3, 1]);
    /// ```
    #[track_caller]
    pub fn sort(&self, axis: usize, descending: bool) -> (Array, Array) {
        self.try_sort(axis, descending).or_fail()
    }

    /// Fallible [`sort`](Self::sort).
    pub fn try_sort(&self, axis: usize, descending: bool) -> Result<(Array, Array)> {
        check_axis("sort", self, axis)?;
        Ok(dispatch(self, axis, self.shape()[axis], descending, true))
    }

    /// The `I64` positions that sort `self` along `axis` (stable; see [`sort`](Self::sort)).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let x = Array::from_vec(vec![2i64, 1, 2, 0], &[4]);
    /// assert_eq!(x.argsort(0, true).to_vec::<i64>(), vec![0, 2, 1, 3]);
    /// ```
    #[track_caller]
    pub fn argsort(&self, axis: usize, descending: bool) -> Array {
        self.try_argsort(axis, descending).or_fail()
    }

    /// Fallible [`argsort`](Self::argsort).
    pub fn try_argsort(&self, axis: usize, descending: bool) -> Result<Array> {
        check_axis("argsort", self, axis)?;
        Ok(dispatch(self, axis, self.shape()[axis], descending, false).1)
    }

    /// The `k` largest (or smallest) elements along `axis`, sorted (largest first when
    /// `largest`), and their `I64` positions. Ties keep their original order; NaN counts as
    /// the largest value.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let x = Array::from_vec(vec![1.0f64, 5.0, 3.0, 4.0], &[4]);
    /// let (v, i) = x.topk(2, 0, true);
    /// assert_eq!(v.to_vec::<f64>(), vec![5.0, 4.0]);
    /// assert_eq!(i.to_vec::<i64>(), vec![1, 3]);
    /// ```
    #[track_caller]
    pub fn topk(&self, k: usize, axis: usize, largest: bool) -> (Array, Array) {
        self.try_topk(k, axis, largest).or_fail()
    }

    /// Fallible [`topk`](Self::topk): `k` must not exceed the size of `axis`.
    pub fn try_topk(&self, k: usize, axis: usize, largest: bool) -> Result<(Array, Array)> {
        check_axis("topk", self, axis)?;
        let n = self.shape()[axis];
        ensure!(k <= n, "topk", "k = {k} exceeds size {n} of axis {axis} (shape {:?})", self.shape());
        Ok(dispatch(self, axis, k, largest, true))
    }
}
