//! Inclusive scans along one axis: `cumsum` and `cumprod`.
//!
//! ## Design choices
//! - The input is made contiguous (a no-op when it already is) and viewed as `[p, k, q]`
//!   around the scanned axis. With `q > 1` each output row is the previous output row combined
//!   with an input row — a zipped slice loop that vectorizes; with `q == 1` it is a plain
//!   running scan per row.
//! - The `p` independent blocks go to `rayon` above [`PAR_THRESHOLD`](crate::ops::PAR_THRESHOLD) (with a second thread in the pool); each scan runs in
//!   order, so results never depend on the thread count.
//! - `bool` input scans as `int64` (as PyTorch does); `int64` arithmetic wraps.

use rayon::prelude::*;

use crate::array::Array;
use crate::dtype::DType;
use crate::error::{OrFail, Result};
use crate::ops::parallel;
use crate::ops::reduce::{Combine, Num, ProdC, SumC};
use crate::storage::filled;

fn scan_block<T: Num, C: Combine>(out: &mut [T], src: &[T], k: usize, q: usize) {
    if q == 1 {
        let mut acc = C::identity::<T>();
        for (o, &x) in out.iter_mut().zip(src) {
            acc = C::combine(acc, x);
            *o = acc;
        }
        return;
    }
    out[..q].copy_from_slice(&src[..q]);
    for r in 1..k {
        let (done, rest) = out.split_at_mut(r * q);
        let prev = &done[(r - 1) * q..];
        for ((o, &p), &x) in rest[..q].iter_mut().zip(prev).zip(&src[r * q..(r + 1) * q]) {
            *o = C::combine(p, x);
        }
    }
}

fn scan_typed<T: Num, C: Combine>(a: &Array, axis: usize) -> Array {
    let a = a.contiguous();
    let shape = a.shape();
    let n = a.numel();
    let src = a.as_slice::<T>().expect("contiguous");
    let (k, q) = (shape[axis], shape[axis + 1..].iter().product::<usize>());
    let block = k * q;
    let mut out = filled(n, C::identity::<T>());
    if n > 0 {
        if parallel(n) {
            out.par_chunks_mut(block)
                .zip(src.par_chunks(block))
                .for_each(|(o, s)| scan_block::<T, C>(o, s, k, q));
        } else {
            for (o, s) in out.chunks_mut(block).zip(src.chunks(block)) {
                scan_block::<T, C>(o, s, k, q);
            }
        }
    }
    Array::from_vec(out, shape)
}

impl Array {
    /// Running sum along `axis`: output `i` is the sum of inputs `0..=i` (same shape).
    /// Float and `int64` (`bool` counts as `int64`).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[2, 3]);
    /// assert_eq!(a.cumsum(1).to_vec::<i64>(), vec![1, 3, 6, 4, 9, 15]);
    /// assert_eq!(a.cumsum(0).to_vec::<i64>(), vec![1, 2, 3, 5, 7, 9]);
    /// ```
    #[track_caller]
    pub fn cumsum(&self, axis: usize) -> Array {
        self.try_cumsum(axis).or_fail()
    }

    /// Fallible [`cumsum`](Self::cumsum).
    pub fn try_cumsum(&self, axis: usize) -> Result<Array> {
        self.try_scan::<SumC>("cumsum", axis)
    }

    /// Running product along `axis`: output `i` is the product of inputs `0..=i`.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4]);
    /// assert_eq!(a.cumprod(0).to_vec::<f32>(), vec![1.0, 2.0, 6.0, 24.0]);
    /// ```
    #[track_caller]
    pub fn cumprod(&self, axis: usize) -> Array {
        self.try_cumprod(axis).or_fail()
    }

    /// Fallible [`cumprod`](Self::cumprod).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// let e = Array::zeros(&[2, 3], DType::F32).try_cumprod(2).unwrap_err();
    /// assert_eq!(e.op, "cumprod");
    /// assert!(e.message.contains("[2, 3]"));
    /// ```
    pub fn try_cumprod(&self, axis: usize) -> Result<Array> {
        self.try_scan::<ProdC>("cumprod", axis)
    }

    fn try_scan<C: Combine>(&self, op: &'static str, axis: usize) -> Result<Array> {
        crate::ensure!(axis < self.rank(), op, "axis {axis} out of range for shape {:?}", self.shape());
        Ok(match self.dtype() {
            DType::F32 => scan_typed::<f32, C>(self, axis),
            DType::F64 => scan_typed::<f64, C>(self, axis),
            DType::I64 => scan_typed::<i64, C>(self, axis),
            DType::Bool => scan_typed::<i64, C>(&self.cast(DType::I64), axis),
        })
    }
}
