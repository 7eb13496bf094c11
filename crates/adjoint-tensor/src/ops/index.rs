//! Gather and scatter along an axis: [`gather`](Array::gather),
//! [`index_select`](Array::index_select) and their transposes
//! [`scatter_add`](Array::scatter_add) and [`index_add`](Array::index_add).
//!
//! ## Design choices
//! - **Indices are `I64` and checked before any element is read.** An index outside
//!   `0..size` (negative ones included) is a [`TensorError`] naming the op, the index, the axis
//!   and the shapes, never an out-of-bounds read. Negative indices do not wrap: wrapping hides
//!   off-by-one bugs and has no natural gradient story.
//! - **One kernel per direction.** `index_select` is `gather` with its 1-D index broadcast
//!   (stride 0) over the other dimensions, and `index_add` is `scatter_add` with the same
//!   broadcast view, so the index array is never copied or expanded.
//! - **Scatter accumulates serially in row-major index order**, so results with repeated
//!   indices are deterministic (float addition is not associative).
//! - `scatter_add`/`index_add` are out of place: the output is a fresh contiguous copy of
//!   `self` with `src` added in; they are the exact transposes (VJPs) of `gather`/`index_select`.

use std::ops::AddAssign;
use std::sync::Arc;

use crate::array::Array;
use crate::dtype::{DType, Element};
use crate::ensure;
use crate::error::{OrFail, Result, TensorError};
use crate::layout::{contiguous_strides, Layout};

/// Refuse index arrays that are not `I64`.
fn check_index_dtype(op: &'static str, index: &Array) -> Result<()> {
    ensure!(index.dtype() == DType::I64, op, "index must have dtype int64, got {}", index.dtype());
    Ok(())
}

/// Check every index value lies in `0..size`; `ctx` describes the shapes for the message.
fn check_index_range(
    op: &'static str,
    index: &Array,
    axis: usize,
    size: usize,
    ctx: impl Fn() -> String,
) -> Result<()> {
    let data = index.storage_slice::<i64>();
    let mut bad: Option<i64> = None;
    // A negative index reads as a huge `u64`, so one unsigned comparison checks both ends.
    let out_of_range = |v: i64| v as u64 >= size as u64;
    if let Some(run) = contiguous_run(index.layout(), data) {
        // Branch-free blocks that vectorise; the first offender is looked up only on failure.
        if run.chunks(4096).any(|c| c.iter().fold(false, |b, &v| b | out_of_range(v))) {
            bad = run.iter().copied().find(|&v| out_of_range(v));
        }
    } else {
        index.layout().for_each_offset(|o| {
            let v = data[o];
            if bad.is_none() && out_of_range(v) {
                bad = Some(v);
            }
        });
    }
    match bad {
        None => Ok(()),
        Some(v) => Err(TensorError::new(
            op,
            format!("index {v} is out of range 0..{size} for axis {axis} ({})", ctx()),
        )),
    }
}

fn check_axis(op: &'static str, x: &Array, axis: usize) -> Result<()> {
    ensure!(axis < x.rank(), op, "axis {axis} out of range for input of shape {:?}", x.shape());
    Ok(())
}

/// A view of a 1-D index (`[n]`) broadcast to `shape`, varying only along `axis`.
fn broadcast_index_layout(index: &Array, shape: &[usize], axis: usize) -> Layout {
    let mut strides: crate::layout::Strides = shape.iter().map(|_| 0isize).collect();
    strides[axis] = index.layout().strides[0];
    Layout { shape: shape.into(), strides, offset: index.layout().offset }
}

fn wrap<T: Element>(v: Vec<T>, shape: &[usize]) -> Array {
    Array::from_parts(Arc::new(T::into_storage(v)), Layout::contiguous(shape))
}

/// `out[i] = src[i with axis replaced by idx[i]]` for `i` over `idx_layout.shape`.
fn gather_kernel<T: Element>(src: &Array, axis: usize, idx_layout: &Layout, idx: &[i64]) -> Array {
    let data = src.storage_slice::<T>();
    let mut base = Layout {
        shape: idx_layout.shape.clone(),
        strides: src.layout().strides.clone(),
        offset: src.layout().offset,
    };
    base.strides[axis] = 0;
    let step = src.layout().strides[axis];
    let mut out = crate::cache::take(idx_layout.numel());
    Layout::for_each_offset2(&base, idx_layout, |b, io| {
        out.push(data[(b as isize + idx[io] as isize * step) as usize]);
    });
    wrap(out, &idx_layout.shape)
}

fn gather_dispatch(src: &Array, axis: usize, idx_layout: &Layout, idx: &[i64]) -> Array {
    match src.dtype() {
        DType::F32 => gather_kernel::<f32>(src, axis, idx_layout, idx),
        DType::F64 => gather_kernel::<f64>(src, axis, idx_layout, idx),
        DType::I64 => gather_kernel::<i64>(src, axis, idx_layout, idx),
        DType::Bool => gather_kernel::<bool>(src, axis, idx_layout, idx),
    }
}

/// The index elements as one slice when `layout` is contiguous.
fn contiguous_run<'a>(layout: &Layout, idx: &'a [i64]) -> Option<&'a [i64]> {
    if layout.numel() == 0 {
        return None; // (an empty view's offset may lie past its storage)
    }
    layout.contiguous_range().map(|r| &idx[r])
}

/// A contiguous copy of `base` with `out[i with axis replaced by idx[i]] += src[i]`.
fn scatter_add_kernel<T: Element + AddAssign>(
    base: &Array,
    axis: usize,
    idx_layout: &Layout,
    idx: &[i64],
    src: &Array,
) -> Array {
    if let Some(out) = scatter_add_rows::<T>(base, axis, idx_layout, idx, src) {
        return wrap(out, base.shape());
    }
    let mut out: Vec<T> = start_values(base);
    let cs = contiguous_strides(base.shape());
    let step = cs[axis] as usize;
    let s = src.storage_slice::<T>();
    let mut dst = Layout { shape: idx_layout.shape.clone(), strides: cs, offset: 0 };
    dst.strides[axis] = 0;
    Layout::for_each_offset3(&dst, idx_layout, src.layout(), |d, io, so| {
        out[d + idx[io] as usize * step] += s[so];
    });
    wrap(out, base.shape())
}

/// A contiguous copy of `base`, the start of an out-of-place add: a broadcast value (the zeros
/// of a reverse rule) filled without a per-element walk. (An empty view may carry an offset past
/// its empty storage: never read it.)
fn start_values<T: Element>(base: &Array) -> Vec<T> {
    if base.numel() == 0 {
        return Vec::new();
    }
    match broadcast_value::<T>(base) {
        Some(v) => {
            let mut out = crate::cache::take(base.numel());
            out.resize(base.numel(), v);
            out
        }
        None => base.to_vec(),
    }
}

/// The one value of a non-empty array broadcast from a single element (all strides 0).
fn broadcast_value<T: Element>(a: &Array) -> Option<T> {
    let l = a.layout();
    (a.numel() > 0 && l.strides.iter().all(|&s| s == 0)).then(|| a.storage_slice::<T>()[l.offset])
}

/// [`scatter_add_kernel`] along the last axis with contiguous index and source rows that match
/// the output's rows (max pooling's reverse rule): row `r` of the output takes row `r` of the
/// source, so groups of rows go to rayon, and each group writes its rows' start values (the
/// broadcast value or `base`'s rows) and adds into them while they are in cache — one pass
/// over the output, split across the pool (before: a serial fill or copy of the whole output,
/// then the parallel adds, a second pass). `None` when the operands do not have that form.
fn scatter_add_rows<T: Element + AddAssign>(
    base: &Array,
    axis: usize,
    idx_layout: &Layout,
    idx: &[i64],
    src: &Array,
) -> Option<Vec<T>> {
    let rank = base.shape().len();
    let (ix, sv) = (contiguous_run(idx_layout, idx)?, src.as_slice::<T>()?);
    let same_rows = idx_layout.shape[..rank - 1] == base.shape()[..rank - 1];
    if axis + 1 != rank || !same_rows || src.shape() != &idx_layout.shape[..] || base.numel() == 0 {
        return None;
    }
    let (w_in, w_out) = (idx_layout.shape[rank - 1], base.shape()[rank - 1]);
    let fill = broadcast_value::<T>(base);
    let rows = if fill.is_some() { None } else { Some(base.as_slice::<T>()?) };
    let n = base.numel();
    let mut out: Vec<T> = crate::cache::take(n);
    let spare = &mut out.spare_capacity_mut()[..n];
    // Rows per task: about `PAR_THRESHOLD` source elements (at least one row).
    let per = crate::ops::PAR_THRESHOLD.checked_div(w_in).unwrap_or(usize::MAX).max(1);
    let group = |(g, o): (usize, &mut [std::mem::MaybeUninit<T>])| {
        let (start, len) = (g * per * w_out, o.len());
        match (fill, rows) {
            (Some(v), _) => o.iter_mut().for_each(|e| {
                e.write(v);
            }),
            (None, Some(b)) => o.iter_mut().zip(&b[start..start + len]).for_each(|(e, &v)| {
                e.write(v);
            }),
            (None, None) => unreachable!("a fill value or base rows"),
        }
        // SAFETY: every element of `o` was written just above; `MaybeUninit<T>` has `T`'s layout.
        let o = unsafe { std::slice::from_raw_parts_mut(o.as_mut_ptr().cast::<T>(), o.len()) };
        if w_in == 0 {
            return;
        }
        let first = start / w_out;
        let (i, v) = (&ix[first * w_in..], &sv[first * w_in..]);
        for (orow, (irow, vrow)) in o.chunks_mut(w_out).zip(i.chunks(w_in).zip(v.chunks(w_in))) {
            for (&j, &x) in irow.iter().zip(vrow) {
                orow[j as usize] += x;
            }
        }
    };
    let chunk = per.saturating_mul(w_out).max(1);
    if crate::ops::parallel(sv.len()) {
        use rayon::prelude::*;
        spare.par_chunks_mut(chunk).enumerate().for_each(group);
    } else {
        spare.chunks_mut(chunk).enumerate().for_each(group);
    }
    // SAFETY: the groups cover `0..n` and each wrote all of its elements.
    unsafe { out.set_len(n) };
    Some(out)
}

/// `(outer, inner)`: the element counts before and after `axis` of `shape`.
fn around(shape: &[usize], axis: usize) -> (usize, usize) {
    (shape[..axis].iter().product(), shape[axis + 1..].iter().product())
}

/// [`Array::index_select`] of a contiguous array by a contiguous index: whole runs of `inner`
/// elements copied (the general walk went element by element through three layouts: 2 ns per
/// element for the `kmeans` eval's `[2048, 8]` row gathers).
fn select_runs<T: Element>(x: &Array, axis: usize, idx: &[i64]) -> Option<Array> {
    let data = x.as_slice::<T>()?;
    let (outer, inner) = around(x.shape(), axis);
    let size = x.shape()[axis];
    let mut out: Vec<T> = crate::cache::take(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            out.extend_from_slice(&data[(o * size + i as usize) * inner..][..inner]);
        }
    }
    let mut shape = x.shape_vec();
    shape[axis] = idx.len();
    Some(wrap(out, &shape))
}

/// [`Array::index_add`] with a contiguous index and source: `base`'s values (a broadcast value
/// filled, or a copy), then whole runs of `inner` elements added.
fn add_runs<T: Element + AddAssign>(base: &Array, axis: usize, idx: &[i64], src: &Array) -> Option<Array> {
    let sv = src.as_slice::<T>()?;
    if base.numel() == 0 {
        return None;
    }
    let mut out: Vec<T> = start_values(base);
    let (outer, inner) = around(base.shape(), axis);
    let size = base.shape()[axis];
    for o in 0..outer {
        for (r, &i) in idx.iter().enumerate() {
            let from = &sv[(o * idx.len() + r) * inner..][..inner];
            for (a, &b) in out[(o * size + i as usize) * inner..][..inner].iter_mut().zip(from) {
                *a += b;
            }
        }
    }
    Some(wrap(out, base.shape()))
}

fn scatter_add_dispatch(
    op: &'static str,
    base: &Array,
    axis: usize,
    idx_layout: &Layout,
    idx: &[i64],
    src: &Array,
) -> Result<Array> {
    Ok(match base.dtype() {
        DType::F32 => scatter_add_kernel::<f32>(base, axis, idx_layout, idx, src),
        DType::F64 => scatter_add_kernel::<f64>(base, axis, idx_layout, idx, src),
        DType::I64 => scatter_add_kernel::<i64>(base, axis, idx_layout, idx, src),
        DType::Bool => return Err(TensorError::new(op, "cannot add arrays of dtype bool")),
    })
}

impl Array {
    /// Pick elements along `axis` at the positions in `index` (PyTorch's `torch.gather`).
    ///
    /// `index` is `I64` with the same rank as `self`; the output has `index`'s shape and, for
    /// `axis == 0`, `out[i][j][k] = self[index[i][j][k]][j][k]`. Along the other axes `index`
    /// may be shorter than `self` (never longer).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let x = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
    /// let i = Array::from_vec(vec![0i64, 0, 1, 0], &[2, 2]);
    /// assert_eq!(x.gather(1, &i).to_vec::<f32>(), vec![1.0, 1.0, 4.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn gather(&self, axis: usize, index: &Array) -> Array {
        self.try_gather(axis, index).or_fail()
    }

    /// Fallible [`gather`](Self::gather).
    pub fn try_gather(&self, axis: usize, index: &Array) -> Result<Array> {
        const OP: &str = "gather";
        check_axis(OP, self, axis)?;
        check_index_dtype(OP, index)?;
        let (xs, is) = (self.shape(), index.shape());
        ensure!(
            is.len() == xs.len() && is.iter().zip(xs).enumerate().all(|(d, (&i, &x))| d == axis || i <= x),
            OP,
            "index shape {is:?} must have the rank of input shape {xs:?} and be no larger off axis {axis}"
        );
        check_index_range(OP, index, axis, xs[axis], || format!("input shape {xs:?}, index shape {is:?}"))?;
        Ok(gather_dispatch(self, axis, index.layout(), index.storage_slice::<i64>()))
    }

    /// The slices at positions `index` (1-D, `I64`) along `axis`, in that order
    /// (PyTorch's `index_select`, NumPy's `take` with an axis).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let x = Array::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[3, 2]);
    /// let i = Array::from_vec(vec![2i64, 0, 2], &[3]);
    /// let y = x.index_select(0, &i);
    /// assert_eq!(y.shape(), &[3, 2]);
    /// assert_eq!(y.to_vec::<i64>(), vec![5, 6, 1, 2, 5, 6]);
    /// ```
    #[track_caller]
    pub fn index_select(&self, axis: usize, index: &Array) -> Array {
        self.try_index_select(axis, index).or_fail()
    }

    /// Fallible [`index_select`](Self::index_select).
    pub fn try_index_select(&self, axis: usize, index: &Array) -> Result<Array> {
        const OP: &str = "index_select";
        check_axis(OP, self, axis)?;
        check_index_dtype(OP, index)?;
        let (xs, is) = (self.shape(), index.shape());
        ensure!(is.len() == 1, OP, "index must be 1-D, got shape {is:?} (input shape {xs:?})");
        check_index_range(OP, index, axis, xs[axis], || format!("input shape {xs:?}, index shape {is:?}"))?;
        if let Some(ix) = contiguous_run(index.layout(), index.storage_slice::<i64>()) {
            let fast = match self.dtype() {
                DType::F32 => select_runs::<f32>(self, axis, ix),
                DType::F64 => select_runs::<f64>(self, axis, ix),
                DType::I64 => select_runs::<i64>(self, axis, ix),
                DType::Bool => select_runs::<bool>(self, axis, ix),
            };
            if let Some(out) = fast {
                return Ok(out);
            }
        }
        let mut out_shape = self.shape_vec();
        out_shape[axis] = is[0];
        let view = broadcast_index_layout(index, &out_shape, axis);
        Ok(gather_dispatch(self, axis, &view, index.storage_slice::<i64>()))
    }

    /// `self` with `src` added at the positions `index` along `axis` (out-of-place
    /// `torch.Tensor.scatter_add`): for `axis == 0`, `out[index[i][j]][j] += src[i][j]`.
    ///
    /// `index` (`I64`) and `src` have the same shape, of `self`'s rank, no larger than `self`
    /// off `axis`. Repeated indices accumulate. This is the transpose of [`gather`](Self::gather).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// let z = Array::zeros(&[3], DType::F64);
    /// let i = Array::from_vec(vec![0i64, 2, 0], &[3]);
    /// let s = Array::from_vec(vec![1.0f64, 2.0, 3.0], &[3]);
    /// assert_eq!(z.scatter_add(0, &i, &s).to_vec::<f64>(), vec![4.0, 0.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn scatter_add(&self, axis: usize, index: &Array, src: &Array) -> Array {
        self.try_scatter_add(axis, index, src).or_fail()
    }

    /// Fallible [`scatter_add`](Self::scatter_add).
    pub fn try_scatter_add(&self, axis: usize, index: &Array, src: &Array) -> Result<Array> {
        const OP: &str = "scatter_add";
        check_axis(OP, self, axis)?;
        check_index_dtype(OP, index)?;
        let (xs, is, ss) = (self.shape(), index.shape(), src.shape());
        ensure!(
            src.dtype() == self.dtype(),
            OP,
            "src dtype {} differs from input dtype {}",
            src.dtype(),
            self.dtype()
        );
        ensure!(is == ss, OP, "index shape {is:?} and src shape {ss:?} must be equal (input shape {xs:?})");
        ensure!(
            is.len() == xs.len() && is.iter().zip(xs).enumerate().all(|(d, (&i, &x))| d == axis || i <= x),
            OP,
            "index shape {is:?} must have the rank of input shape {xs:?} and be no larger off axis {axis}"
        );
        check_index_range(OP, index, axis, xs[axis], || format!("input shape {xs:?}, index shape {is:?}"))?;
        scatter_add_dispatch(OP, self, axis, index.layout(), index.storage_slice::<i64>(), src)
    }

    /// `self` with the slices of `src` along `axis` added at positions `index` (1-D, `I64`)
    /// (out-of-place `torch.index_add`). Repeated indices accumulate. This is the transpose of
    /// [`index_select`](Self::index_select).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// let z = Array::zeros(&[2, 2], DType::F32);
    /// let i = Array::from_vec(vec![1i64, 1, 0], &[3]);
    /// let s = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// assert_eq!(z.index_add(1, &i, &s).to_vec::<f32>(), vec![3.0, 3.0, 6.0, 9.0]);
    /// ```
    #[track_caller]
    pub fn index_add(&self, axis: usize, index: &Array, src: &Array) -> Array {
        self.try_index_add(axis, index, src).or_fail()
    }

    /// Fallible [`index_add`](Self::index_add).
    pub fn try_index_add(&self, axis: usize, index: &Array, src: &Array) -> Result<Array> {
        const OP: &str = "index_add";
        check_axis(OP, self, axis)?;
        check_index_dtype(OP, index)?;
        let (xs, is, ss) = (self.shape(), index.shape(), src.shape());
        ensure!(
            src.dtype() == self.dtype(),
            OP,
            "src dtype {} differs from input dtype {}",
            src.dtype(),
            self.dtype()
        );
        ensure!(is.len() == 1, OP, "index must be 1-D, got shape {is:?} (input shape {xs:?})");
        ensure!(
            ss.len() == xs.len()
                && ss.iter().zip(xs).enumerate().all(|(d, (&s, &x))| if d == axis {
                    s == is[0]
                } else {
                    s == x
                }),
            OP,
            "src shape {ss:?} must equal input shape {xs:?} except on axis {axis}, where it must be the \
             index length {}",
            is[0]
        );
        check_index_range(OP, index, axis, xs[axis], || format!("input shape {xs:?}, index shape {is:?}"))?;
        if let Some(ix) = contiguous_run(index.layout(), index.storage_slice::<i64>()) {
            let fast = match self.dtype() {
                DType::F32 => add_runs::<f32>(self, axis, ix, src),
                DType::F64 => add_runs::<f64>(self, axis, ix, src),
                DType::I64 => add_runs::<i64>(self, axis, ix, src),
                DType::Bool => None,
            };
            if let Some(out) = fast {
                return Ok(out);
            }
        }
        let view = broadcast_index_layout(index, ss, axis);
        scatter_add_dispatch(OP, self, axis, &view, index.storage_slice::<i64>(), src)
    }
}
