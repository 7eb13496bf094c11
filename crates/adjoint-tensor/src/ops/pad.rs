//! Padding: [`pad`](Array::pad) with a constant, by reflection, or by replicating the edge.
//!
//! ## Design choices
//! - Each dimension gets a lookup table from output position to source offset contribution
//!   (or "outside", for constant padding), built once per call; the kernel then walks the
//!   output in row-major order adding table entries, so every mode and every input layout
//!   share one loop with no per-element branching on the mode.
//! - `Reflect` follows NumPy's `'reflect'` / PyTorch's `'reflect'`: the edge element is not
//!   repeated, and a pad must be smaller than its dimension (no multiple bounces), which is
//!   what PyTorch enforces. `Replicate` needs a non-empty dimension wherever it pads.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::array::Array;
use crate::dtype::{DType, Element};
use crate::ensure;
use crate::error::{OrFail, Result};
use crate::layout::{numel, Layout};

/// How [`Array::pad`] fills the new elements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode {
    /// Fill with this value (converted to the array's dtype).
    Constant(f64),
    /// Mirror the array about its edge, without repeating the edge: `[1, 2, 3]` padded by 2 on
    /// each side is `[3, 2, 1, 2, 3, 2, 1]`.
    Reflect,
    /// Repeat the edge element: `[1, 2, 3]` padded by 2 is `[1, 1, 1, 2, 3, 3, 3]`.
    Replicate,
}

/// Per output position along one dim: the source offset contribution, or `None` for "constant".
fn dim_table(mode: PadMode, before: usize, size: usize, after: usize, stride: isize) -> Vec<Option<isize>> {
    (0..before + size + after)
        .map(|i| {
            let j = i as isize - before as isize;
            let last = size as isize - 1;
            let src = match mode {
                PadMode::Constant(_) => {
                    if j < 0 || j > last {
                        return None;
                    }
                    j
                }
                PadMode::Reflect => {
                    let j = j.abs();
                    if j > last {
                        2 * last - j
                    } else {
                        j
                    }
                }
                PadMode::Replicate => j.clamp(0, last),
            };
            Some(src * stride)
        })
        .collect()
}

fn pad_kernel<T: Element>(x: &Array, pads: &[(usize, usize)], mode: PadMode) -> Array {
    let l = x.layout();
    let out_shape: SmallVec<[usize; 6]> = pads.iter().zip(x.shape()).map(|(&(b, a), &d)| b + d + a).collect();
    let n = numel(&out_shape);
    let fill = match mode {
        PadMode::Constant(v) => T::from_f64(v),
        _ => T::default(),
    };
    let src = x.storage_slice::<T>();
    let mut out = crate::cache::take(n);
    let nd = out_shape.len();
    if nd == 0 {
        out.push(src[l.offset]);
    } else if n > 0 {
        let table = |k: usize| dim_table(mode, pads[k].0, l.shape[k], pads[k].1, l.strides[k]);
        let tables: Vec<Vec<Option<isize>>> = (0..nd - 1).map(table).collect();
        // A constant pad of a row whose elements are adjacent: fill, one copy, fill (the
        // table walk was a gather per element; `narrow`'s gradient is this pad). Such rows need
        // no table of the inner dim: for a long row it was a fresh allocation of 16 bytes per
        // output element, page-faulted in on every call (9% of the `ode` eval's gradient).
        let (before, size, width) = (pads[nd - 1].0, l.shape[nd - 1], out_shape[nd - 1]);
        let copy_rows = matches!(mode, PadMode::Constant(_)) && (l.strides[nd - 1] == 1 || size <= 1);
        let inner = if copy_rows { Vec::new() } else { table(nd - 1) };
        let mut idx = vec![0usize; nd - 1];
        loop {
            // Offset of the outer dims, or None when any of them is in a constant pad.
            let mut base = Some(l.offset as isize);
            for (k, &i) in idx.iter().enumerate() {
                base = match (base, tables[k][i]) {
                    (Some(b), Some(t)) => Some(b + t),
                    _ => None,
                };
            }
            match base {
                Some(b) if copy_rows => {
                    out.resize(out.len() + before, fill);
                    if size > 0 {
                        crate::ops::stream::extend(&mut out, &src[b as usize..b as usize + size]);
                    }
                    out.resize(out.len() + width - before - size, fill);
                }
                Some(b) => out.extend(inner.iter().map(|t| match t {
                    Some(t) => src[(b + t) as usize],
                    None => fill,
                })),
                None => out.resize(out.len() + width, fill),
            }
            let mut d = nd - 1;
            loop {
                if d == 0 {
                    return Array::from_parts(Arc::new(T::into_storage(out)), Layout::contiguous(&out_shape));
                }
                d -= 1;
                idx[d] += 1;
                if idx[d] < out_shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
    Array::from_parts(Arc::new(T::into_storage(out)), Layout::contiguous(&out_shape))
}

impl Array {
    /// Pad every dimension: `pads[d] = (before, after)` elements are added along dim `d`.
    ///
    /// ```
    /// use adjoint_tensor::{ops::pad::PadMode, Array};
    /// let x = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3]);
    /// assert_eq!(x.pad(&[(1, 2)], PadMode::Constant(0.0)).to_vec::<f32>(), vec![0.0, 1.0, 2.0, 3.0, 0.0, 0.0]);
    /// assert_eq!(x.pad(&[(2, 2)], PadMode::Reflect).to_vec::<f32>(), vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
    /// assert_eq!(x.pad(&[(1, 1)], PadMode::Replicate).to_vec::<f32>(), vec![1.0, 1.0, 2.0, 3.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn pad(&self, pads: &[(usize, usize)], mode: PadMode) -> Array {
        self.try_pad(pads, mode).or_fail()
    }

    /// Fallible [`pad`](Self::pad): one `(before, after)` per dim; `Reflect` pads must be
    /// smaller than their dim, `Replicate` cannot pad an empty dim.
    pub fn try_pad(&self, pads: &[(usize, usize)], mode: PadMode) -> Result<Array> {
        const OP: &str = "pad";
        let shape = self.shape();
        ensure!(
            pads.len() == self.rank(),
            OP,
            "needs one (before, after) pair per dim: got {} pairs {pads:?} for shape {shape:?}",
            pads.len()
        );
        for (k, (&(b, a), &d)) in pads.iter().zip(shape).enumerate() {
            match mode {
                PadMode::Reflect => ensure!(
                    (b == 0 && a == 0) || (b < d && a < d),
                    OP,
                    "reflect padding ({b}, {a}) must be smaller than dim {k} of size {d} (shape {shape:?})"
                ),
                PadMode::Replicate => ensure!(
                    (b == 0 && a == 0) || d > 0,
                    OP,
                    "cannot replicate-pad ({b}, {a}) the empty dim {k} (shape {shape:?})"
                ),
                PadMode::Constant(_) => {}
            }
        }
        Ok(match self.dtype() {
            DType::F32 => pad_kernel::<f32>(self, pads, mode),
            DType::F64 => pad_kernel::<f64>(self, pads, mode),
            DType::I64 => pad_kernel::<i64>(self, pads, mode),
            DType::Bool => pad_kernel::<bool>(self, pads, mode),
        })
    }
}
