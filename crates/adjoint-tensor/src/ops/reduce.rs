//! Reductions over any set of axes (`sum`, `mean`, `prod`, `max`, `min`), `argmax`/`argmin`
//! and a stable `logsumexp`.
//!
//! ## Design choices
//! - **Two kernels cover every layout without per-element index arithmetic.** A reduction is
//!   planned as either *rows* — `m` outputs, each folding a contiguous run of `k` elements — or
//!   *columns* — `[p, k, q]` with the `q` outputs of each `p` contiguous, accumulated one input
//!   row at a time (so a reduction over a leading axis streams rows rather than striding
//!   element by element). The planner looks at the reduced axes moved last (rows), moved first
//!   (columns), and at a consecutive block of reduced axes in place (columns); only when none
//!   of those is a strided view of the input does it copy the permuted input to contiguous.
//! - **Contiguous folds keep 32 independent accumulators**, which LLVM turns into several SIMD
//!   registers (AVX2 when the CPU has it), and long runs are summed pairwise (halving until
//!   8192 elements), like NumPy: the error grows with `log n`, not `n`.
//! - **Deterministic parallelism.** Rows go to `rayon` in groups, long runs split in halves
//!   with `rayon::join`, columns in fixed blocks of [`COL_BLOCK`] outputs: the split depends
//!   only on the shape, so the result is bit-identical whatever the thread count.
//! - **Dtypes**: `sum`/`prod` of `bool` count in `int64`; `int64` arithmetic wraps; `mean`
//!   needs floats. `max`/`min` propagate NaN (NumPy's `max`, not `nanmax`) and refuse an empty
//!   axis (there is no identity); an empty `sum` is 0, `prod` 1, `mean` NaN.
//! - **Empty `axes` reduces nothing** and returns a contiguous copy (JAX's convention); use
//!   the `*_all` methods to reduce every axis.

use rayon::prelude::*;
use smallvec::SmallVec;

use crate::array::Array;
use crate::dtype::{DType, Element, FloatElement};
use crate::error::{OrFail, Result, TensorError};
use crate::layout::Layout;
use crate::ops::simd::dispatch_avx2;
use crate::ops::unary::map1;
use crate::ops::{parallel, PAR_THRESHOLD};
use crate::storage::filled;

/// Columns accumulated by one task of a column reduction (a multiple of the SIMD width).
pub(crate) const COL_BLOCK: usize = 2048;
/// Runs up to this length are folded in one pass; longer ones are split in halves.
const PAIRWISE_BLOCK: usize = 8192;
/// Independent accumulators in a contiguous fold.
const LANES: usize = 32;

mod num;

pub(crate) use num::{Combine, MaxC, MinC, Num, ProdC, SumC};

// ------------------------------------------------------------------------------------------
// Kernels
// ------------------------------------------------------------------------------------------

#[inline(always)]
fn fold_generic<T: Num, C: Combine>(x: &[T]) -> T {
    let mut acc = [C::identity::<T>(); LANES];
    // Two levels (16 values per lane, then the partial results) keep rounding errors of long
    // sums small, like NumPy's blocks of 128.
    let mut blocks = x.chunks_exact(LANES * 16);
    for b in &mut blocks {
        let mut part = [C::identity::<T>(); LANES];
        for c in b.chunks_exact(LANES) {
            for i in 0..LANES {
                part[i] = C::combine(part[i], c[i]);
            }
        }
        for i in 0..LANES {
            acc[i] = C::combine(acc[i], part[i]);
        }
    }
    let mut chunks = blocks.remainder().chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            acc[i] = C::combine(acc[i], c[i]);
        }
    }
    // Combining the lanes in sequence (not as a tree) is what lets LLVM keep them in full-width
    // registers: a tree makes its SLP vectorizer pick 2-wide vectors, 5x slower.
    let mut r = C::identity::<T>();
    for a in acc {
        r = C::combine(r, a);
    }
    for &v in chunks.remainder() {
        r = C::combine(r, v);
    }
    r
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fold_avx2<T: Num, C: Combine>(x: &[T]) -> T {
    fold_generic::<T, C>(x)
}

fn fold_block<T: Num, C: Combine>(x: &[T]) -> T {
    dispatch_avx2!(fold_generic::<T, C>, fold_avx2::<T, C>, (x))
}

/// Fold a contiguous run: pairwise above [`PAIRWISE_BLOCK`], in parallel above
/// [`PAR_THRESHOLD`]. The split points depend only on the length.
pub(crate) fn fold<T: Num, C: Combine>(x: &[T]) -> T {
    if x.len() <= PAIRWISE_BLOCK {
        return fold_block::<T, C>(x);
    }
    let (a, b) = x.split_at(x.len() / 2);
    let (ra, rb) = if parallel(x.len()) {
        rayon::join(|| fold::<T, C>(a), || fold::<T, C>(b))
    } else {
        (fold::<T, C>(a), fold::<T, C>(b))
    };
    C::combine(ra, rb)
}

/// `acc[j] = combine(acc[j], src[base + i*stride + j])` for `i < k`.
#[inline(always)]
fn accumulate_generic<T: Num, C: Combine>(acc: &mut [T], src: &[T], base: isize, k: usize, stride: isize) {
    let n = acc.len();
    for i in 0..k {
        let s = (base + i as isize * stride) as usize;
        for (a, &x) in acc.iter_mut().zip(&src[s..s + n]) {
            *a = C::combine(*a, x);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_avx2<T: Num, C: Combine>(
    acc: &mut [T],
    src: &[T],
    base: isize,
    k: usize,
    stride: isize,
) {
    accumulate_generic::<T, C>(acc, src, base, k, stride)
}

fn accumulate<T: Num, C: Combine>(acc: &mut [T], src: &[T], base: isize, k: usize, stride: isize) {
    dispatch_avx2!(accumulate_generic::<T, C>, accumulate_avx2::<T, C>, (acc, src, base, k, stride))
}

/// How to walk a reduction: see the module docs.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Output `i` folds `src[off + i*rs ..][..k]`.
    Rows { off: isize, m: usize, rs: isize, k: usize },
    /// Output `[i, j]` folds `src[off + i*sp + r*sk + j]` over `r < k`, `j < q`.
    Cols { off: isize, p: usize, sp: isize, k: usize, sk: isize, q: usize },
    /// Output `i` combines the folds of the `p` contiguous runs `src[off + r*sp + i*sm ..][..k]`,
    /// `r < p`, in order: reduced axes on both sides of one block of kept ones (a bias
    /// gradient, `[N, C, H, W]` summed to `[C]`), in one pass without a transposing copy.
    Mid { off: isize, p: usize, sp: isize, m: usize, sm: isize, k: usize },
}

/// Many rows shorter than [`LANES`] (the `d = 2` sums of a mixture model, a softmax over 5
/// classes): one loop over all of them, since [`fold`]'s per-call setup (dispatch, `LANES`
/// accumulators) costs more than the `k` combines. Same order as `fold` for such rows, so the
/// same result. Output `i` of `out` folds `src[off + i*rs ..][..k]`.
#[inline(always)]
fn fold_short_rows_generic<T: Num, C: Combine>(out: &mut [T], src: &[T], off: isize, rs: isize, k: usize) {
    for (i, o) in out.iter_mut().enumerate() {
        let s = (off + i as isize * rs) as usize;
        *o = src[s..s + k].iter().fold(C::identity::<T>(), |r, &v| C::combine(r, v));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fold_short_rows_avx2<T: Num, C: Combine>(
    out: &mut [T],
    src: &[T],
    off: isize,
    rs: isize,
    k: usize,
) {
    fold_short_rows_generic::<T, C>(out, src, off, rs, k)
}

fn fold_short_rows<T: Num, C: Combine>(out: &mut [T], src: &[T], off: isize, rs: isize, k: usize) {
    dispatch_avx2!(fold_short_rows_generic::<T, C>, fold_short_rows_avx2::<T, C>, (out, src, off, rs, k))
}

fn run_plan<T: Num, C: Combine>(src: &[T], plan: Plan) -> Vec<T> {
    match plan {
        // Short rows stay in the one-loop kernel at every size (before, `m·k` above
        // `PAR_THRESHOLD` fell through to one `fold` call per row: gmm's d = 2 sums at k = 50
        // cost 4× those at k = 25); large inputs are split into fixed groups of rows.
        Plan::Rows { off, m, rs, k } if k < LANES => {
            let mut out = filled(m, C::identity::<T>());
            if !parallel(m * k) {
                fold_short_rows::<T, C>(&mut out, src, off, rs, k);
            } else {
                let rows = PAR_THRESHOLD / k.max(1);
                out.par_chunks_mut(rows).enumerate().for_each(|(c, o)| {
                    fold_short_rows::<T, C>(o, src, off + (c * rows) as isize * rs, rs, k)
                });
            }
            out
        }
        Plan::Rows { off, m, rs, k } => {
            let row = |i: usize| {
                let s = (off + i as isize * rs) as usize;
                fold::<T, C>(&src[s..s + k])
            };
            if m > 1 && parallel(m * k) {
                (0..m).into_par_iter().with_min_len((PAR_THRESHOLD / k.max(1)).max(1)).map(row).collect()
            } else {
                (0..m).map(row).collect()
            }
        }
        Plan::Mid { off, p, sp, m, sm, k } => {
            let out = |i: usize| {
                (0..p).fold(C::identity::<T>(), |acc, r| {
                    let s = (off + r as isize * sp + i as isize * sm) as usize;
                    C::combine(acc, fold::<T, C>(&src[s..s + k]))
                })
            };
            if m > 1 && parallel(m * p * k) {
                (0..m).into_par_iter().map(out).collect()
            } else {
                (0..m).map(out).collect()
            }
        }
        Plan::Cols { off, p, sp, k, sk, q } => {
            let mut out = filled(p * q, C::identity::<T>());
            if out.is_empty() {
                return out;
            }
            let task = |i: usize, jb: usize, acc: &mut [T]| {
                accumulate::<T, C>(acc, src, off + i as isize * sp + (jb * COL_BLOCK) as isize, k, sk)
            };
            if parallel(p * q * k) {
                out.par_chunks_mut(q).enumerate().for_each(|(i, orow)| {
                    orow.par_chunks_mut(COL_BLOCK).enumerate().for_each(|(jb, acc)| task(i, jb, acc))
                });
            } else {
                for (i, orow) in out.chunks_mut(q).enumerate() {
                    for (jb, acc) in orow.chunks_mut(COL_BLOCK).enumerate() {
                        task(i, jb, acc);
                    }
                }
            }
            out
        }
    }
}

/// Pick a plan for reducing `red` (sorted) of `a`, keeping `kept` (sorted). Returns the array
/// to read (a copy when no view works) and the plan. `m` outputs of `k` elements, both > 0.
fn plan(a: &Array, kept: &[usize], red: &[usize], m: usize, k: usize) -> (Array, Plan) {
    let perm: SmallVec<[usize; 6]> = kept.iter().chain(red).copied().collect();
    let moved_last = a.layout().permute(&perm);
    if let Some(l) = moved_last.reshape(&[m, k])
        && (k == 1 || l.strides[1] == 1)
    {
        return (a.clone(), Plan::Rows { off: l.offset as isize, m, rs: l.strides[0], k });
    }
    if m > 1 {
        let perm: SmallVec<[usize; 6]> = red.iter().chain(kept).copied().collect();
        if let Some(l) = a.layout().permute(&perm).reshape(&[k, m])
            && l.strides[1] == 1
        {
            let plan = Plan::Cols { off: l.offset as isize, p: 1, sp: 0, k, sk: l.strides[0], q: m };
            return (a.clone(), plan);
        }
        let (first, last) = (red[0], red[red.len() - 1]);
        if last - first + 1 == red.len() {
            let shape = a.shape();
            let (p, q) =
                (shape[..first].iter().product::<usize>(), shape[last + 1..].iter().product::<usize>());
            if let Some(l) = a.layout().reshape(&[p, k, q])
                && q > 1
                && l.strides[2] == 1
            {
                let plan = Plan::Cols { off: l.offset as isize, p, sp: l.strides[0], k, sk: l.strides[1], q };
                return (a.clone(), plan);
            }
        }
    }
    // One block of kept axes between reduced ones, the last of them long enough for a
    // contiguous fold to pay: `[p, m, k]`, rows of `k` contiguous.
    if let (Some(&kf), Some(&kl)) = (kept.first(), kept.last())
        && kl - kf + 1 == kept.len()
        && kf > 0
        && kl + 1 < a.rank()
    {
        let shape = a.shape();
        let (p, kk) = (shape[..kf].iter().product::<usize>(), shape[kl + 1..].iter().product::<usize>());
        if kk >= LANES
            && let Some(l) = a.layout().reshape(&[p, m, kk])
            && l.strides[2] == 1
        {
            let plan = Plan::Mid { off: l.offset as isize, p, sp: l.strides[0], m, sm: l.strides[1], k: kk };
            return (a.clone(), plan);
        }
    }
    let c = Array::from_parts(a.storage().clone(), moved_last).contiguous();
    let off = c.layout().offset as isize;
    (c, Plan::Rows { off, m, rs: k as isize, k })
}

// ------------------------------------------------------------------------------------------
// The ops
// ------------------------------------------------------------------------------------------

/// A reduction; see [`Array::reduce`].
///
/// ```
/// use adjoint_tensor::{Array, ops::reduce::ReduceOp};
/// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
/// assert_eq!(a.reduce(ReduceOp::Prod, &[1], false).to_vec::<f32>(), vec![2.0, 12.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum (0 over nothing); `bool` counts as `int64`.
    Sum,
    /// Arithmetic mean (float only; NaN over nothing).
    Mean,
    /// Product (1 over nothing); `bool` counts as `int64`.
    Prod,
    /// Maximum, NaN-propagating; an empty axis is an error.
    Max,
    /// Minimum, NaN-propagating; an empty axis is an error.
    Min,
}

impl ReduceOp {
    /// The op's name in error messages (`"sum"`, `"mean"`, …).
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Prod => "prod",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        }
    }
}

/// Axis numbers, inline for up to 6.
type Axes = SmallVec<[usize; 6]>;

/// Check `axes` against `shape`; return the kept and the reduced axes, each sorted.
pub(crate) fn split_axes(op: &'static str, shape: &[usize], axes: &[usize]) -> Result<(Axes, Axes)> {
    let mut is_red: SmallVec<[bool; 6]> = SmallVec::from_elem(false, shape.len());
    for &ax in axes {
        crate::ensure!(ax < shape.len(), op, "axis {ax} out of range for shape {shape:?} (axes {axes:?})");
        crate::ensure!(!is_red[ax], op, "axis {ax} repeated in axes {axes:?} (shape {shape:?})");
        is_red[ax] = true;
    }
    let kept = (0..shape.len()).filter(|&d| !is_red[d]).collect();
    let red = (0..shape.len()).filter(|&d| is_red[d]).collect();
    Ok((kept, red))
}

fn out_shape(shape: &[usize], red: &[usize], keepdim: bool) -> SmallVec<[usize; 6]> {
    (0..shape.len())
        .filter_map(|d| match (red.contains(&d), keepdim) {
            (false, _) => Some(shape[d]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

fn reduce_typed<T: Num>(a: &Array, op: ReduceOp, kept: &[usize], red: &[usize], keepdim: bool) -> Array {
    let shape = a.shape();
    let m: usize = kept.iter().map(|&d| shape[d]).product();
    let k: usize = red.iter().map(|&d| shape[d]).product();
    let out_shape = out_shape(shape, red, keepdim);
    let out: Vec<T> = if m == 0 {
        Vec::new()
    } else if k == 0 {
        let v = match op {
            ReduceOp::Prod => 1.0,
            ReduceOp::Mean => f64::NAN,
            _ => 0.0, // Max/Min were refused before
        };
        vec![T::from_f64(v); m]
    } else {
        let (arr, plan) = plan(a, kept, red, m, k);
        let src = arr.storage_slice::<T>();
        match op {
            ReduceOp::Sum | ReduceOp::Mean => run_plan::<T, SumC>(src, plan),
            ReduceOp::Prod => run_plan::<T, ProdC>(src, plan),
            ReduceOp::Max => run_plan::<T, MaxC>(src, plan),
            ReduceOp::Min => run_plan::<T, MinC>(src, plan),
        }
    };
    let mut out = out;
    if op == ReduceOp::Mean && k > 0 {
        out.iter_mut().for_each(|x| *x = x.div_count(k));
    }
    Array::from_vec(out, &out_shape)
}

macro_rules! reduce_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        $(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self, axes: &[usize], keepdim: bool) -> Array {
                self.reduce(ReduceOp::$op, axes, keepdim)
            }
        )*
    };
}

impl Array {
    /// Reduce `axes` (any set, in any order) with `op`; with `keepdim` the reduced axes stay
    /// as size 1. Empty `axes` reduces nothing (a contiguous copy).
    ///
    /// Panics, naming the op, the axes, the shape and the caller's line, when an axis is out of
    /// range or repeated, for `Mean` of a non-float array, and for `Max`/`Min` over an empty
    /// axis; see [`try_reduce`](Self::try_reduce).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType, ops::reduce::ReduceOp};
    /// let a = Array::arange(0.0, 24.0, 1.0, DType::F64).reshape(&[2, 3, 4]);
    /// let s = a.reduce(ReduceOp::Sum, &[2, 0], true);
    /// assert_eq!(s.shape(), &[1, 3, 1]);
    /// assert_eq!(s.to_vec::<f64>(), vec![60.0, 92.0, 124.0]);
    /// ```
    #[track_caller]
    pub fn reduce(&self, op: ReduceOp, axes: &[usize], keepdim: bool) -> Array {
        self.try_reduce(op, axes, keepdim).or_fail()
    }

    /// Fallible [`reduce`](Self::reduce).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType, ops::reduce::ReduceOp};
    /// let a = Array::zeros(&[2, 0], DType::F32);
    /// assert_eq!(a.try_reduce(ReduceOp::Sum, &[1], false).unwrap().to_vec::<f32>(), vec![0.0, 0.0]);
    /// let e = a.try_reduce(ReduceOp::Max, &[1], false).unwrap_err();
    /// assert_eq!(e.op, "max");
    /// assert!(e.message.contains("[2, 0]"));
    /// ```
    pub fn try_reduce(&self, op: ReduceOp, axes: &[usize], keepdim: bool) -> Result<Array> {
        let name = op.name();
        let (kept, red) = split_axes(name, self.shape(), axes)?;
        crate::ensure!(
            op != ReduceOp::Mean || self.dtype().is_float(),
            name,
            "needs a float array, got {} of shape {:?}",
            self.dtype(),
            self.shape()
        );
        if matches!(op, ReduceOp::Max | ReduceOp::Min)
            && let Some(&d) = red.iter().find(|&&d| self.shape()[d] == 0)
        {
            return Err(TensorError::new(
                name,
                format!(
                    "cannot reduce axis {d} of size 0 (shape {:?}, axes {axes:?}): there is no identity",
                    self.shape()
                ),
            ));
        }
        let counts = matches!(op, ReduceOp::Sum | ReduceOp::Prod) && self.dtype() == DType::Bool;
        let a = if counts { self.cast(DType::I64) } else { self.clone() };
        if red.is_empty() {
            return Ok(a.contiguous());
        }
        Ok(match a.dtype() {
            DType::F32 => reduce_typed::<f32>(&a, op, &kept, &red, keepdim),
            DType::F64 => reduce_typed::<f64>(&a, op, &kept, &red, keepdim),
            DType::I64 => reduce_typed::<i64>(&a, op, &kept, &red, keepdim),
            DType::Bool => reduce_typed::<bool>(&a, op, &kept, &red, keepdim),
        })
    }

    reduce_methods! {
        /// Sum over `axes`; see [`ReduceOp::Sum`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// let a = Array::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[2, 3]);
        /// assert_eq!(a.sum_axes(&[0], false).to_vec::<i64>(), vec![5, 7, 9]);
        /// assert_eq!(a.sum_axes(&[1], true).shape(), &[2, 1]);
        /// ```
        sum_axes => Sum;
        /// Mean over `axes` (float only); see [`ReduceOp::Mean`].
        mean_axes => Mean;
        /// Product over `axes`; see [`ReduceOp::Prod`].
        prod_axes => Prod;
        /// Maximum over `axes`, NaN-propagating; see [`ReduceOp::Max`].
        max_axes => Max;
        /// Minimum over `axes`, NaN-propagating; see [`ReduceOp::Min`].
        min_axes => Min;
    }

    fn all_axes(&self) -> SmallVec<[usize; 6]> {
        (0..self.rank()).collect()
    }

    /// Sum of every element, as a rank-0 array (`int64` for `int64` and `bool` input).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![true, false, true], &[3]);
    /// assert_eq!(a.sum_all().item::<i64>(), 2);
    /// ```
    #[track_caller]
    pub fn sum_all(&self) -> Array {
        self.reduce(ReduceOp::Sum, &self.all_axes(), false)
    }

    /// Mean of every element (float only), as a rank-0 array.
    #[track_caller]
    pub fn mean_all(&self) -> Array {
        self.reduce(ReduceOp::Mean, &self.all_axes(), false)
    }

    /// Largest element (NaN if any is NaN), as a rank-0 array; panics when empty.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// assert_eq!(Array::from_vec(vec![3.0f32, 7.0, -1.0], &[3]).max_all().item::<f32>(), 7.0);
    /// ```
    #[track_caller]
    pub fn max_all(&self) -> Array {
        self.reduce(ReduceOp::Max, &self.all_axes(), false)
    }

    /// Smallest element (NaN if any is NaN), as a rank-0 array; panics when empty.
    #[track_caller]
    pub fn min_all(&self) -> Array {
        self.reduce(ReduceOp::Min, &self.all_axes(), false)
    }

    /// Index (`int64`) of the largest element along `axis`; the first one on ties, and NaN
    /// counts as larger than everything (NumPy's rule).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![1.0f32, 5.0, 5.0, 2.0, f32::NAN, 0.0], &[2, 3]);
    /// assert_eq!(a.argmax(1, false).to_vec::<i64>(), vec![1, 1]);
    /// assert_eq!(a.argmin(0, true).shape(), &[1, 3]);
    /// ```
    #[track_caller]
    pub fn argmax(&self, axis: usize, keepdim: bool) -> Array {
        self.try_argmax(axis, keepdim).or_fail()
    }

    /// Index (`int64`) of the smallest element along `axis`; the first one on ties, and NaN
    /// counts as smaller than everything.
    #[track_caller]
    pub fn argmin(&self, axis: usize, keepdim: bool) -> Array {
        self.try_argmin(axis, keepdim).or_fail()
    }

    /// Fallible [`argmax`](Self::argmax).
    pub fn try_argmax(&self, axis: usize, keepdim: bool) -> Result<Array> {
        self.arg_extreme("argmax", axis, keepdim, true)
    }

    /// Fallible [`argmin`](Self::argmin).
    pub fn try_argmin(&self, axis: usize, keepdim: bool) -> Result<Array> {
        self.arg_extreme("argmin", axis, keepdim, false)
    }

    fn arg_extreme(&self, op: &'static str, axis: usize, keepdim: bool, max: bool) -> Result<Array> {
        let (kept, red) = split_axes(op, self.shape(), &[axis])?;
        crate::ensure!(
            self.shape()[axis] > 0,
            op,
            "axis {axis} of shape {:?} is empty: there is no index to return",
            self.shape()
        );
        let out_shape = out_shape(self.shape(), &red, keepdim);
        let m: usize = kept.iter().map(|&d| self.shape()[d]).product();
        let k = self.shape()[axis];
        let perm: SmallVec<[usize; 6]> = kept.iter().chain(&red).copied().collect();
        let v = self.permute(&perm).reshape(&[m, k]);
        let out = match self.dtype() {
            DType::F32 => arg_rows::<f32>(&v, max),
            DType::F64 => arg_rows::<f64>(&v, max),
            DType::I64 => arg_rows::<i64>(&v, max),
            DType::Bool => arg_rows::<bool>(&v, max),
        };
        Ok(Array::from_vec(out, &out_shape))
    }

    /// `log(sum(exp(x)))` over `axes`, computed stably: the per-output maximum is subtracted
    /// first, so ±1e4 inputs stay finite; all `-inf` gives `-inf` and any `+inf` gives `+inf`
    /// (not NaN). Float only; an empty axis gives `-inf`.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![1e4f64, 1e4, f64::NEG_INFINITY, f64::NEG_INFINITY], &[2, 2]);
    /// let l = a.logsumexp(&[1], false).to_vec::<f64>();
    /// assert!((l[0] - (1e4 + 2f64.ln())).abs() < 1e-9);
    /// assert_eq!(l[1], f64::NEG_INFINITY);
    /// ```
    #[track_caller]
    pub fn logsumexp(&self, axes: &[usize], keepdim: bool) -> Array {
        self.try_logsumexp(axes, keepdim).or_fail()
    }

    /// Fallible [`logsumexp`](Self::logsumexp).
    pub fn try_logsumexp(&self, axes: &[usize], keepdim: bool) -> Result<Array> {
        let (_, red) = split_axes("logsumexp", self.shape(), axes)?;
        crate::ensure!(
            self.dtype().is_float(),
            "logsumexp",
            "needs a float array, got {} of shape {:?}",
            self.dtype(),
            self.shape()
        );
        if red.iter().any(|&d| self.shape()[d] == 0) {
            let shape = out_shape(self.shape(), &red, keepdim);
            return Ok(Array::full(&shape, f64::NEG_INFINITY, self.dtype()));
        }
        Ok(match self.dtype() {
            DType::F32 => logsumexp_typed::<f32>(self, axes, keepdim),
            _ => logsumexp_typed::<f64>(self, axes, keepdim),
        })
    }
}

fn logsumexp_typed<T: FloatElement>(a: &Array, axes: &[usize], keepdim: bool) -> Array {
    // A non-finite maximum is replaced by 0 so that -inf - -inf and inf - inf never occur.
    let shift = map1(&a.reduce(ReduceOp::Max, axes, true), |x: T| if x.is_finite() { x } else { T::zero() });
    let sum = a.sub(&shift).into_unary(crate::ops::unary::UnaryOp::Exp).reduce(ReduceOp::Sum, axes, keepdim);
    let log = sum.into_unary(crate::ops::unary::UnaryOp::Log);
    let shift = if keepdim { shift } else { shift.reshape(log.shape()) };
    log.add(&shift)
}

/// Argmax/argmin of each row of a `[m, k]` array (any strides), `k > 0`.
fn arg_rows<T: Element>(v: &Array, max: bool) -> Vec<i64> {
    let l: &Layout = v.layout();
    let (m, k) = (l.shape[0], l.shape[1]);
    let (off, rs, ks) = (l.offset as isize, l.strides[0], l.strides[1]);
    let src = v.storage_slice::<T>();
    #[allow(clippy::eq_op)] // x != x is the NaN test for any `T: PartialOrd`
    let row = |i: usize| {
        let base = off + i as isize * rs;
        let mut best = src[base as usize];
        let mut bi = 0usize;
        for j in 1..k {
            let x = src[(base + j as isize * ks) as usize];
            // NaN beats everything but an earlier NaN.
            let better = if max { x > best } else { x < best } || (x != x && best == best);
            if better {
                best = x;
                bi = j;
            }
        }
        bi as i64
    };
    if m > 1 && parallel(m * k) {
        (0..m).into_par_iter().with_min_len((PAR_THRESHOLD / k).max(1)).map(row).collect()
    } else {
        (0..m).map(row).collect()
    }
}
