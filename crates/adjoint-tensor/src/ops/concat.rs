//! Joining arrays: [`concat`](Array::concat) along an existing axis and
//! [`stack`](Array::stack) along a new one.
//!
//! ## Design choices
//! - The output is one fresh contiguous buffer. When every input is contiguous the copy is a
//!   sequence of `memcpy`-like slice extensions (one run per input per outer index); otherwise
//!   each input is written through a destination view of the output (output strides, shifted
//!   offset), so any input layout — transposed, stepped, flipped, broadcast — costs one pass.
//! - `stack` is `concat` of size-1 views (`unsqueeze`), so it shares the kernel and never copies
//!   the inputs first.
//! - No type promotion: mixed dtypes are an error, as are empty lists, since the output dtype
//!   and shape would be ambiguous.

use std::sync::Arc;

use crate::array::Array;
use crate::dtype::{DType, Element};
use crate::ensure;
use crate::error::{OrFail, Result};
use crate::layout::{contiguous_strides, numel, Layout};
use crate::storage::filled;

fn shapes_of(arrays: &[&Array]) -> Vec<Vec<usize>> {
    arrays.iter().map(|a| a.shape().to_vec()).collect()
}

fn concat_kernel<T: Element>(arrays: &[&Array], axis: usize, out_shape: &[usize]) -> Array {
    let n = numel(out_shape);
    let outer: usize = out_shape[..axis].iter().product();
    let out = if arrays.iter().all(|a| a.is_contiguous()) {
        let mut out = crate::cache::take(n);
        let parts: Vec<(&[T], usize)> = arrays
            .iter()
            .map(|a| match a.numel() {
                // An empty view may carry an offset past its empty storage: never slice it.
                0 => (&[][..], 0),
                _ => (
                    a.as_slice::<T>().expect("contiguous, dtype checked"),
                    a.shape()[axis..].iter().product(),
                ),
            })
            .collect();
        for o in 0..outer {
            for &(s, chunk) in &parts {
                crate::ops::stream::extend(&mut out, &s[o * chunk..(o + 1) * chunk]);
            }
        }
        out
    } else {
        let mut out = filled(n, T::default());
        let cs = contiguous_strides(out_shape);
        let mut pos = 0usize;
        for a in arrays {
            let dst =
                Layout { shape: a.shape().into(), strides: cs.clone(), offset: pos * cs[axis] as usize };
            let src = a.storage_slice::<T>();
            Layout::for_each_offset2(&dst, a.layout(), |d, s| out[d] = src[s]);
            pos += a.shape()[axis];
        }
        out
    };
    Array::from_parts(Arc::new(T::into_storage(out)), Layout::contiguous(out_shape))
}

/// Shared checks and dispatch; `op` names the public function for messages.
fn concat_impl(op: &'static str, arrays: &[&Array], axis: usize) -> Result<Array> {
    let first = arrays[0];
    let rank = first.rank();
    ensure!(
        axis < rank,
        op,
        "axis {axis} out of range for arrays of rank {rank} (shapes {:?})",
        shapes_of(arrays)
    );
    let mut out_shape = first.shape_vec();
    out_shape[axis] = 0;
    for a in arrays {
        ensure!(
            a.dtype() == first.dtype(),
            op,
            "all arrays need the same dtype, got {} and {} (shapes {:?})",
            first.dtype(),
            a.dtype(),
            shapes_of(arrays)
        );
        ensure!(
            a.rank() == rank
                && a.shape().iter().zip(first.shape()).enumerate().all(|(d, (x, y))| d == axis || x == y),
            op,
            "shapes {:?} must agree except on axis {axis}",
            shapes_of(arrays)
        );
        out_shape[axis] += a.shape()[axis];
    }
    Ok(match first.dtype() {
        DType::F32 => concat_kernel::<f32>(arrays, axis, &out_shape),
        DType::F64 => concat_kernel::<f64>(arrays, axis, &out_shape),
        DType::I64 => concat_kernel::<i64>(arrays, axis, &out_shape),
        DType::Bool => concat_kernel::<bool>(arrays, axis, &out_shape),
    })
}

impl Array {
    /// Join arrays along an existing `axis` (NumPy's `concatenate`, PyTorch's `cat`).
    ///
    /// All arrays need the same dtype and rank, and the same shape except on `axis`.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![1.0f32, 2.0], &[1, 2]);
    /// let b = Array::from_vec(vec![3.0f32, 4.0, 5.0, 6.0], &[2, 2]);
    /// let c = Array::concat(&[&a, &b], 0);
    /// assert_eq!(c.shape(), &[3, 2]);
    /// assert_eq!(c.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    /// ```
    #[track_caller]
    pub fn concat(arrays: &[&Array], axis: usize) -> Array {
        Self::try_concat(arrays, axis).or_fail()
    }

    /// Fallible [`concat`](Self::concat).
    pub fn try_concat(arrays: &[&Array], axis: usize) -> Result<Array> {
        ensure!(!arrays.is_empty(), "concat", "needs at least one array");
        concat_impl("concat", arrays, axis)
    }

    /// Join arrays of identical shape along a new `axis` (`0..=rank`).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![1i64, 2], &[2]);
    /// let b = Array::from_vec(vec![3i64, 4], &[2]);
    /// let s = Array::stack(&[&a, &b], 1);
    /// assert_eq!(s.shape(), &[2, 2]);
    /// assert_eq!(s.to_vec::<i64>(), vec![1, 3, 2, 4]);
    /// ```
    #[track_caller]
    pub fn stack(arrays: &[&Array], axis: usize) -> Array {
        Self::try_stack(arrays, axis).or_fail()
    }

    /// Fallible [`stack`](Self::stack).
    pub fn try_stack(arrays: &[&Array], axis: usize) -> Result<Array> {
        const OP: &str = "stack";
        ensure!(!arrays.is_empty(), OP, "needs at least one array");
        let first = arrays[0];
        ensure!(
            arrays.iter().all(|a| a.shape() == first.shape()),
            OP,
            "all arrays need the same shape, got {:?}",
            shapes_of(arrays)
        );
        ensure!(
            axis <= first.rank(),
            OP,
            "axis {axis} out of range 0..={} for arrays of shape {:?}",
            first.rank(),
            first.shape()
        );
        let views: Vec<Array> = arrays.iter().map(|a| a.unsqueeze(axis)).collect();
        let refs: Vec<&Array> = views.iter().collect();
        concat_impl(OP, &refs, axis)
    }
}
