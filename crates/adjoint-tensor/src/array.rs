//! [`Array`]: a typed n-dimensional array that shares its storage between views.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::dtype::{DType, Element};
use crate::ensure;
use crate::error::{OrFail, Result, TensorError};
use crate::layout::{numel, Layout, Shape};
use crate::storage::{filled, Storage};

/// Entries of the per-thread table of recent scalar constants (see [`Array::scalar_of`]).
pub const SCALAR_SLOTS: usize = 16;

/// An n-dimensional array: a shared [`Storage`] plus a [`Layout`].
///
/// Cloning is cheap (an `Arc` increment and a small inline layout). Views (`reshape`,
/// `permute`, `broadcast_to`, `slice`, `flip`, …) share the storage; kernels read any layout
/// and write fresh contiguous output.
///
/// ```
/// use adjoint_tensor::Array;
/// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
/// let t = a.transpose(0, 1);
/// assert_eq!(t.shape(), &[3, 2]);
/// assert_eq!(t.to_vec::<f32>(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// ```
#[derive(Clone, Debug)]
pub struct Array {
    storage: Arc<Storage>,
    layout: Layout,
}

impl Array {
    // ---------------------------------------------------------------- construction

    /// Wrap storage and a layout. The layout must stay inside the storage.
    pub fn from_parts(storage: Arc<Storage>, layout: Layout) -> Array {
        Array { storage, layout }
    }

    /// A contiguous array owning `data` with the given shape.
    #[track_caller]
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Array {
        Self::try_from_vec(data, shape).or_fail()
    }

    /// Fallible [`from_vec`](Self::from_vec): the length must equal the shape's element count.
    pub fn try_from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Array> {
        ensure!(
            data.len() == numel(shape),
            "from_vec",
            "{} elements do not fill shape {:?} ({} elements)",
            data.len(),
            shape,
            numel(shape)
        );
        Ok(Array { storage: Arc::new(T::into_storage(data)), layout: Layout::contiguous(shape) })
    }

    /// A contiguous array copied from a slice.
    #[track_caller]
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Array {
        Self::from_vec(data.to_vec(), shape)
    }

    /// A rank-0 array.
    pub fn scalar<T: Element>(x: T) -> Array {
        Array { storage: Arc::new(T::into_storage(vec![x])), layout: Layout::contiguous(&[]) }
    }

    /// A rank-0 array of `dtype` holding `x` converted.
    ///
    /// Scalar constants are what `x * 2.0` and most derivative rules create on every call, so
    /// each thread keeps the last few it made (a direct-mapped table of [`SCALAR_SLOTS`]
    /// entries keyed by the value's bits and the dtype) and hands out shared handles to them:
    /// a reference-count increment instead of two allocations and two frees. Sharing is safe
    /// because arrays are immutable values; the in-place paths (`try_unique_slice_mut`) only
    /// write into a buffer nothing else holds, which a cached scalar never is.
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// let a = Array::scalar_of(2.5, DType::F32);
    /// assert_eq!(a.to_vec::<f32>(), vec![2.5]);
    /// assert_eq!(Array::scalar_of(2.5, DType::F64).dtype(), DType::F64);
    /// ```
    pub fn scalar_of(x: f64, dtype: DType) -> Array {
        type Slot = Option<(u64, DType, Array)>;
        thread_local! {
            static SCALARS: std::cell::RefCell<[Slot; SCALAR_SLOTS]> =
                const { std::cell::RefCell::new([const { None }; SCALAR_SLOTS]) };
        }
        let bits = x.to_bits();
        let h = (bits ^ (bits >> 29) ^ (bits >> 47) ^ dtype as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let i = (h >> 60) as usize % SCALAR_SLOTS;
        SCALARS
            .try_with(|t| {
                let mut t = t.borrow_mut();
                match &t[i] {
                    Some((b, d, a)) if *b == bits && *d == dtype => a.clone(),
                    _ => {
                        let a = Self::full(&[], x, dtype);
                        t[i] = Some((bits, dtype, a.clone()));
                        a
                    }
                }
            })
            // During thread teardown the table is gone: build a fresh one.
            .unwrap_or_else(|_| Self::full(&[], x, dtype))
    }

    /// Every element equal to `value` (converted to `dtype`).
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Array {
        let n = numel(shape);
        let storage = match dtype {
            DType::F32 => Storage::F32(filled(n, value as f32)),
            DType::F64 => Storage::F64(filled(n, value)),
            DType::I64 => Storage::I64(filled(n, value as i64)),
            DType::Bool => Storage::Bool(filled(n, value != 0.0)),
        };
        Array { storage: Arc::new(storage.counted()), layout: Layout::contiguous(shape) }
    }

    /// All zeros.
    pub fn zeros(shape: &[usize], dtype: DType) -> Array {
        Self::full(shape, 0.0, dtype)
    }

    /// All ones.
    pub fn ones(shape: &[usize], dtype: DType) -> Array {
        Self::full(shape, 1.0, dtype)
    }

    /// Zeros with this array's shape and dtype.
    pub fn zeros_like(&self) -> Array {
        Self::zeros(self.shape(), self.dtype())
    }

    /// Ones with this array's shape and dtype.
    pub fn ones_like(&self) -> Array {
        Self::ones(self.shape(), self.dtype())
    }

    /// `start, start+step, …` below `end` (above, for a negative step), as NumPy's `arange`.
    #[track_caller]
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Array {
        Self::try_arange(start, end, step, dtype).or_fail()
    }

    /// Fallible [`arange`](Self::arange).
    pub fn try_arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Array> {
        ensure!(
            step != 0.0 && step.is_finite() && start.is_finite() && end.is_finite(),
            "arange",
            "needs finite bounds and a non-zero step, got start={start} end={end} step={step}"
        );
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Ok(Self::from_vec(v, &[n]).cast(dtype))
    }

    /// `n` evenly spaced values from `start` to `end` inclusive.
    pub fn linspace(start: f64, end: f64, n: usize, dtype: DType) -> Array {
        let v: Vec<f64> = match n {
            0 => vec![],
            1 => vec![start],
            _ => {
                let step = (end - start) / (n - 1) as f64;
                (0..n).map(|i| if i == n - 1 { end } else { start + i as f64 * step }).collect()
            }
        };
        Self::from_vec(v, &[n]).cast(dtype)
    }

    /// The `n × n` identity.
    pub fn eye(n: usize, dtype: DType) -> Array {
        let mut v = vec![0.0f64; n * n];
        for i in 0..n {
            v[i * n + i] = 1.0;
        }
        Self::from_vec(v, &[n, n]).cast(dtype)
    }

    // ---------------------------------------------------------------- inspection

    /// Dimensions.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    /// Number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// Element type.
    #[inline]
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// The layout (shape, strides, offset).
    #[inline]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The shared storage.
    #[inline]
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// True when the elements are a contiguous row-major run of the storage.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// Bytes of the storage behind this array (shared storage counts in full).
    pub fn storage_bytes(&self) -> usize {
        self.storage.size_in_bytes()
    }

    /// The elements as a slice when the array is contiguous and of type `T`.
    #[inline]
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        // The element count once (every op asks this of each operand).
        let s = T::slice(&self.storage)?;
        let n = self.numel();
        if n == 0 {
            return Some(&[]);
        }
        if !self.layout.is_contiguous() {
            return None;
        }
        let o = self.layout.offset;
        Some(&s[o..o + n])
    }

    /// The whole storage as a slice of `T` (offsets from the layout index into it).
    #[inline]
    #[track_caller]
    pub fn storage_slice<T: Element>(&self) -> &[T] {
        match T::slice(&self.storage) {
            Some(s) => s,
            None => crate::error::fail(TensorError::new(
                "storage_slice",
                format!("array has dtype {}, asked for {}", self.dtype(), T::DTYPE),
            )),
        }
    }

    /// Mutable access to the elements if this handle is the storage's only owner and the
    /// array is contiguous and covers the whole storage (used to reuse buffers in place).
    pub fn try_unique_slice_mut<T: Element>(&mut self) -> Option<&mut [T]> {
        if self.layout.offset != 0 || !self.is_contiguous() || self.numel() != self.storage.len() {
            return None;
        }
        Arc::get_mut(&mut self.storage).and_then(T::slice_mut)
    }

    /// The elements in row-major order, converted to `T`.
    ///
    /// The vector comes from the buffer cache ([`crate::cache::take`]), like every kernel's
    /// output: `cast` and `contiguous` build their storage from it, so the buffer they free later
    /// is one of the cache's sizes and is reused (a plain `Vec` of the exact length would be a
    /// "foreign" buffer, freed to the system on every step). Its capacity may exceed its length.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).transpose(0, 1);
    /// assert_eq!(a.to_vec::<f64>(), vec![1.0, 3.0, 2.0, 4.0]);
    /// ```
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        if self.dtype() == T::DTYPE {
            let src = T::slice(&self.storage).expect("dtype checked");
            let n = self.numel();
            if self.layout.rank() == 2 && self.layout.strides[1] != 1 && n >= 1024 {
                let mut out: Vec<T> = crate::cache::take(n);
                crate::ops::transpose::copy_2d_into_uninit(
                    &mut out.spare_capacity_mut()[..n],
                    src,
                    &self.layout,
                );
                // SAFETY: the copy wrote all `n` elements.
                unsafe { out.set_len(n) };
                return out;
            }
            return self.gather_converted(src, |x| x);
        }
        match &*self.storage {
            Storage::F32(v) => self.gather_converted(v, |x| T::from_f64(x as f64)),
            Storage::F64(v) => self.gather_converted(v, T::from_f64),
            Storage::I64(v) => self.gather_converted(v, |x| T::from_f64(x as f64)),
            Storage::Bool(v) => self.gather_converted(v, |x| T::from_f64(x.to_f64())),
        }
    }

    /// The elements of `src` under this array's layout, in row-major order, each converted by
    /// `f`, into a vector from the buffer cache.
    fn gather_converted<S: Element, T: Element>(&self, src: &[S], f: impl Fn(S) -> T) -> Vec<T> {
        let n = self.numel();
        let mut out: Vec<T> = crate::cache::take(n);
        if n == 0 {
            return out;
        }
        if let Some(s) = self.layout.contiguous_range().map(|r| &src[r]) {
            out.extend(s.iter().map(|&x| f(x)));
        } else if self.layout.rank() == 2 && self.layout.strides[1] != 1 && n >= 1024 {
            crate::ops::transpose::copy_2d_map(&mut out.spare_capacity_mut()[..n], src, &self.layout, f);
            // SAFETY: the copy wrote all `n` elements.
            unsafe { out.set_len(n) };
        } else {
            self.layout.for_each_offset(|o| out.push(f(src[o])));
        }
        out
    }

    /// The single element of a one-element array, converted to `T`.
    #[track_caller]
    pub fn item<T: Element>(&self) -> T {
        self.try_item().or_fail()
    }

    /// Fallible [`item`](Self::item).
    pub fn try_item<T: Element>(&self) -> Result<T> {
        ensure!(self.numel() == 1, "item", "needs exactly one element, shape is {:?}", self.shape());
        let o = self.layout.offset;
        Ok(match &*self.storage {
            Storage::F32(v) => T::from_f64(v[o] as f64),
            Storage::F64(v) => T::from_f64(v[o]),
            Storage::I64(v) => T::from_f64(v[o] as f64),
            Storage::Bool(v) => T::from_f64(v[o].to_f64()),
        })
    }

    /// A contiguous array with the same elements (no copy when already contiguous).
    pub fn contiguous(&self) -> Array {
        if self.is_contiguous() {
            return self.clone();
        }
        self.copied()
    }

    /// This array as the only owner of a contiguous storage it covers whole, so that
    /// [`try_unique_slice_mut`](Self::try_unique_slice_mut) succeeds: itself when it already is
    /// (nothing copied), else a contiguous copy. For updating in place a value that nobody else
    /// should see change: an optimizer's state, a parameter once its gradient is computed.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![1.0f32, 2.0], &[2]);
    /// let held = a.clone();
    /// let mut u = a.into_unique(); // `held` shares the storage: `u` is a copy
    /// u.try_unique_slice_mut::<f32>().expect("unique")[0] = 5.0;
    /// assert_eq!((u.to_vec::<f32>(), held.to_vec::<f32>()), (vec![5.0, 2.0], vec![1.0, 2.0]));
    /// ```
    pub fn into_unique(mut self) -> Array {
        let whole = self.layout.offset == 0 && self.is_contiguous() && self.numel() == self.storage.len();
        if whole && Arc::get_mut(&mut self.storage).is_some() {
            return self;
        }
        self.copied()
    }

    /// The elements in a new contiguous storage.
    fn copied(&self) -> Array {
        let storage = match &*self.storage {
            Storage::F32(_) => Storage::F32(self.to_vec()),
            Storage::F64(_) => Storage::F64(self.to_vec()),
            Storage::I64(_) => Storage::I64(self.to_vec()),
            Storage::Bool(_) => Storage::Bool(self.to_vec()),
        };
        Array { storage: Arc::new(storage.counted()), layout: Layout::contiguous(self.shape()) }
    }

    // ---------------------------------------------------------------- views

    fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        ensure!(axis < self.rank(), op, "axis {axis} out of range for shape {:?}", self.shape());
        Ok(())
    }

    fn with_layout(&self, layout: Layout) -> Array {
        Array { storage: self.storage.clone(), layout }
    }

    /// Same elements with a new shape; a view when the layout allows, else a copy.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Array {
        self.try_reshape(shape).or_fail()
    }

    /// Fallible [`reshape`](Self::reshape).
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Array> {
        ensure!(
            numel(shape) == self.numel(),
            "reshape",
            "cannot reshape {:?} ({} elements) to {:?} ({} elements)",
            self.shape(),
            self.numel(),
            shape,
            numel(shape)
        );
        Ok(match self.layout.reshape(shape) {
            Some(l) => self.with_layout(l),
            None => self.contiguous().with_layout(Layout::contiguous(shape)),
        })
    }

    /// Reorder dimensions: output dim `i` is input dim `perm[i]`.
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Array {
        self.try_permute(perm).or_fail()
    }

    /// Fallible [`permute`](Self::permute).
    pub fn try_permute(&self, perm: &[usize]) -> Result<Array> {
        let mut seen: SmallVec<[bool; 6]> = SmallVec::from_elem(false, self.rank());
        let ok = perm.len() == self.rank()
            && perm.iter().all(|&p| p < self.rank() && !std::mem::replace(&mut seen[p], true));
        ensure!(ok, "permute", "{perm:?} is not a permutation of the axes of shape {:?}", self.shape());
        Ok(self.with_layout(self.layout.permute(perm)))
    }

    /// Swap two axes.
    #[track_caller]
    pub fn transpose(&self, a: usize, b: usize) -> Array {
        self.try_transpose(a, b).or_fail()
    }

    /// Fallible [`transpose`](Self::transpose).
    pub fn try_transpose(&self, a: usize, b: usize) -> Result<Array> {
        self.check_axis("transpose", a)?;
        self.check_axis("transpose", b)?;
        let mut perm: SmallVec<[usize; 6]> = (0..self.rank()).collect();
        perm.swap(a, b);
        Ok(self.with_layout(self.layout.permute(&perm)))
    }

    /// Broadcast to `shape` without copying (NumPy rules).
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Array {
        self.try_broadcast_to(shape).or_fail()
    }

    /// Fallible [`broadcast_to`](Self::broadcast_to).
    pub fn try_broadcast_to(&self, shape: &[usize]) -> Result<Array> {
        match self.layout.broadcast_to(shape) {
            Some(l) => Ok(self.with_layout(l)),
            None => Err(TensorError::new(
                "broadcast_to",
                format!("cannot broadcast shape {:?} to {:?}", self.shape(), shape),
            )),
        }
    }

    /// PyTorch's name for [`broadcast_to`](Self::broadcast_to).
    #[track_caller]
    pub fn expand(&self, shape: &[usize]) -> Array {
        self.try_broadcast_to(shape).map_err(|e| TensorError::new("expand", e.message)).or_fail()
    }

    /// Insert a size-1 axis at `axis` (`0..=rank`).
    #[track_caller]
    pub fn unsqueeze(&self, axis: usize) -> Array {
        self.try_unsqueeze(axis).or_fail()
    }

    /// Fallible [`unsqueeze`](Self::unsqueeze).
    pub fn try_unsqueeze(&self, axis: usize) -> Result<Array> {
        ensure!(axis <= self.rank(), "unsqueeze", "axis {axis} out of range for shape {:?}", self.shape());
        Ok(self.with_layout(self.layout.unsqueeze(axis)))
    }

    /// Remove the size-1 axis `axis`.
    #[track_caller]
    pub fn squeeze(&self, axis: usize) -> Array {
        self.try_squeeze(axis).or_fail()
    }

    /// Fallible [`squeeze`](Self::squeeze).
    pub fn try_squeeze(&self, axis: usize) -> Result<Array> {
        self.check_axis("squeeze", axis)?;
        ensure!(self.shape()[axis] == 1, "squeeze", "axis {axis} of shape {:?} is not 1", self.shape());
        Ok(self.with_layout(self.layout.squeeze(axis)))
    }

    /// `len` elements from `start` along `axis`.
    #[track_caller]
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Array {
        self.try_slice(axis, start, start + len, 1)
            .map_err(|e| TensorError::new("narrow", e.message))
            .or_fail()
    }

    /// Elements `start, start+step, …` below `end` along `axis` (a view).
    #[track_caller]
    pub fn slice(&self, axis: usize, start: usize, end: usize, step: usize) -> Array {
        self.try_slice(axis, start, end, step).or_fail()
    }

    /// Fallible [`slice`](Self::slice).
    pub fn try_slice(&self, axis: usize, start: usize, end: usize, step: usize) -> Result<Array> {
        self.check_axis("slice", axis)?;
        let d = self.shape()[axis];
        ensure!(
            start <= end && end <= d && step >= 1,
            "slice",
            "range {start}..{end} step {step} invalid for axis {axis} of shape {:?}",
            self.shape()
        );
        Ok(self.with_layout(self.layout.slice(axis, start, end, step)))
    }

    /// Reverse the order of elements along `axis` (a view).
    #[track_caller]
    pub fn flip(&self, axis: usize) -> Array {
        self.try_flip(axis).or_fail()
    }

    /// Fallible [`flip`](Self::flip).
    pub fn try_flip(&self, axis: usize) -> Result<Array> {
        self.check_axis("flip", axis)?;
        Ok(self.with_layout(self.layout.flip(axis)))
    }

    /// A contiguous owned copy of the shape as a `Shape`.
    pub fn shape_vec(&self) -> Shape {
        self.layout.shape.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_vec_buffers_come_from_the_cache_and_go_back_to_it() {
        if !crate::cache::enabled() {
            return;
        }
        // An odd size, so that no parallel test asks for this class in between.
        let n = 77_777;
        let a = Array::arange(0.0, n as f64, 1.0, DType::F32);
        for (i, src) in [a.clone(), a.reshape(&[7, 11_111]).transpose(0, 1), a.reshape(&[11_111, 7]).flip(0)]
            .into_iter()
            .enumerate()
        {
            // Same dtype (contiguous, 2-D gather, strided walk) and a conversion.
            let v: Vec<f32> = src.to_vec();
            let ptr = v.as_ptr();
            crate::cache::give(v);
            let w: Vec<f32> = crate::cache::take(n);
            assert_eq!(w.as_ptr(), ptr, "case {i}: to_vec's buffer is one of the cache's sizes");
            let c = src.cast(DType::F64);
            let expect: Vec<f64> = src.to_vec::<f32>().iter().map(|&x| x as f64).collect();
            assert_eq!(c.to_vec::<f64>(), expect, "case {i}");
            crate::cache::give(w);
        }
    }

    #[test]
    fn cached_scalars_hold_their_values_and_are_never_written_in_place() {
        // More distinct values than slots, twice, in every dtype: each call gives its own value
        // whether it hit the table or replaced an entry.
        let values: Vec<f64> = (0..3 * SCALAR_SLOTS).map(|i| i as f64 * 0.37 - 2.0).collect();
        for _ in 0..2 {
            for &x in values.iter().chain(&[0.0, -0.0, f64::INFINITY]) {
                assert_eq!(Array::scalar_of(x, DType::F64).to_vec::<f64>()[0].to_bits(), x.to_bits());
                assert_eq!(Array::scalar_of(x, DType::F32).to_vec::<f32>(), vec![x as f32]);
                assert_eq!(Array::scalar_of(x, DType::I64).to_vec::<i64>(), vec![x as i64]);
                assert_eq!(Array::scalar_of(x, DType::Bool).dtype(), DType::Bool);
            }
        }
        assert!(Array::scalar_of(f64::NAN, DType::F32).to_vec::<f32>()[0].is_nan());
        // The table holds a handle, so the buffer is shared: no in-place write can reach it.
        let mut a = Array::scalar_of(7.25, DType::F32);
        let b = Array::scalar_of(7.25, DType::F32);
        assert!(a.try_unique_slice_mut::<f32>().is_none());
        assert_eq!(b.to_vec::<f32>(), vec![7.25]);
    }

    #[test]
    fn live_bytes_follow_storages() {
        // Other tests allocate in parallel, so only a lower bound is checked while `a` lives.
        let a = Array::zeros(&[123_457], DType::F64);
        assert!(crate::storage::live_bytes() >= 123_457 * 8);
        let b = a.cast(DType::F32);
        assert!(crate::storage::live_bytes() >= 123_457 * 12);
        drop((a, b));
    }

    #[test]
    fn views_share_storage() {
        let a = Array::arange(0.0, 12.0, 1.0, DType::F32).reshape(&[3, 4]);
        let b = a.slice(1, 1, 4, 2).flip(0);
        assert!(Arc::ptr_eq(a.storage(), b.storage()));
        assert_eq!(b.to_vec::<f32>(), vec![9.0, 11.0, 5.0, 7.0, 1.0, 3.0]);
    }

    #[test]
    fn creation() {
        assert_eq!(Array::linspace(0.0, 1.0, 5, DType::F64).to_vec::<f64>(), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(Array::eye(2, DType::I64).to_vec::<i64>(), vec![1, 0, 0, 1]);
        assert_eq!(Array::arange(5.0, 0.0, -2.0, DType::I64).to_vec::<i64>(), vec![5, 3, 1]);
        assert_eq!(Array::scalar(3.5f64).item::<f64>(), 3.5);
    }

    #[test]
    fn strided_2d_views_copy_in_row_major_order() {
        // Large enough for the tiled path; sizes not multiples of the tile; transposed, with a
        // step, flipped and offset views. Expected values computed from the indices.
        let (r, c) = (45usize, 70usize);
        let a = Array::arange(0.0, (r * c) as f64, 1.0, DType::F64).reshape(&[r, c]);
        let t = a.transpose(0, 1);
        let got = t.to_vec::<f64>();
        for j in 0..c {
            for i in 0..r {
                assert_eq!(got[j * r + i], (i * c + j) as f64);
            }
        }
        let v = a.slice(1, 3, 70, 2).flip(0).transpose(0, 1); // [34, 45]
        let got = v.to_vec::<f32>();
        assert_eq!(got.len(), 34 * 45);
        for jj in 0..34 {
            for ii in 0..45 {
                assert_eq!(got[jj * 45 + ii], ((44 - ii) * c + 3 + 2 * jj) as f32);
            }
        }
    }

    #[test]
    fn misuse_names_op_shape_and_line() {
        let a = Array::zeros(&[2, 3], DType::F32);
        let err = std::panic::catch_unwind(|| a.reshape(&[4])).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("reshape") && msg.contains("[2, 3]") && msg.contains("array.rs"), "{msg}");
        assert_eq!(a.try_squeeze(0).unwrap_err().op, "squeeze");
    }
}
