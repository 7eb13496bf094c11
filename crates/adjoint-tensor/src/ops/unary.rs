//! Elementwise functions of one array, and the elementwise engine the binary, comparison and
//! select kernels share.
//!
//! ## Design choices
//! - **One engine, three shapes of input.** A contiguous input is mapped slice to slice with a
//!   zipped iterator (no index arithmetic, so LLVM vectorizes it). Any other layout goes through
//!   [`Walk`], which merges dimensions that are contiguous with each other, then hands the
//!   kernel runs of the innermost dimension: a run with stride 1 takes the same slice kernel, a
//!   run with stride 0 (a broadcast) is a fill, anything else is a plain strided loop.
//! - **Output is written once.** The result buffer is allocated uninitialised and every element
//!   written exactly once, so large outputs are not zeroed first.
//! - **Parallel work is cut into fixed chunks** ([`CHUNK`] elements) above
//!   [`PAR_THRESHOLD`](crate::ops::PAR_THRESHOLD), so results never depend on the thread count.
//! - **Runtime SIMD dispatch.** The slice kernels are compiled three times (baseline, AVX2+FMA,
//!   AVX-512) and pick one at run time (the check is a cached atomic load). All compute
//!   bit-identical results: no FMA contraction but the explicit, exactly rounded `mul_add`s of
//!   the polynomials, no reassociation.
//! - **`exp` is a polynomial, not a libm call**, so it vectorizes: Cody–Waite range reduction
//!   and Cephes' minimax polynomial (f32) or Padé form (f64), within 1–2 ulp of the correctly
//!   rounded result over the whole range, with exact overflow, underflow, ±inf and NaN handling.
//!   `exp2`, `sigmoid` and `tanh` are built on it; the rest use `std`.
//! - **`into_unary` reuses the buffer** when the handle is the storage's only owner and the
//!   array is contiguous, as PyTorch's in-place ops would, without their aliasing hazards.

use std::mem::MaybeUninit;

use rayon::prelude::*;
use smallvec::SmallVec;

pub(crate) use super::fastmath::FastFloat;
use crate::array::Array;
use crate::dtype::{DType, Element};
use crate::error::{OrFail, Result, TensorError};
use crate::layout::Layout;
use crate::ops::simd::{dispatch_simd, simd_builds};
use crate::ops::{parallel, stream};

/// Elements per parallel task. Fixed (never derived from the thread count) so that every
/// result is identical whatever the size of the thread pool.
pub(crate) const CHUNK: usize = 1 << 15;

// ------------------------------------------------------------------------------------------
// The engine
// ------------------------------------------------------------------------------------------

/// A fresh vector of `n` elements, each written by `fill(start, chunk)`, which must write every
/// element of `chunk` (the elements `start..start + chunk.len()` of the output). Chunks go to
/// `rayon` when [`parallel`](crate::ops::parallel) says so. When the output is large enough to
/// be written around the cache ([`stream::enabled`], the test every kernel's `stream` flag
/// comes from), each chunk ends with [`stream::fence`].
pub(crate) fn build<U: Element>(n: usize, fill: impl Fn(usize, &mut [MaybeUninit<U>]) + Sync) -> Vec<U> {
    let mut v: Vec<U> = crate::cache::take(n);
    let spare = &mut v.spare_capacity_mut()[..n];
    let streamed = stream::enabled(n * std::mem::size_of::<U>());
    let task = |start: usize, c: &mut [MaybeUninit<U>]| {
        fill(start, c);
        if streamed {
            stream::fence();
        }
    };
    if parallel(n) {
        spare.par_chunks_mut(CHUNK).enumerate().for_each(|(i, c)| task(i * CHUNK, c));
    } else {
        task(0, spare);
    }
    // SAFETY: `fill` wrote every element of every chunk (its contract, kept by every caller in
    // this crate), and the chunks cover `0..n`. `U: Copy`, so nothing needs dropping if `fill`
    // panics before this point.
    unsafe { v.set_len(n) };
    v
}

/// `K` layouts of one shape, with their dimensions merged wherever all `K` are contiguous
/// across them, walked as runs of the innermost dimension.
pub(crate) struct Walk<const K: usize> {
    shape: SmallVec<[usize; 6]>,
    strides: [SmallVec<[isize; 6]>; K],
    offsets: [isize; K],
}

impl<const K: usize> Walk<K> {
    /// Walk `layouts`, which must all have the same shape.
    pub(crate) fn new(layouts: [&Layout; K]) -> Self {
        let shape = &layouts[0].shape;
        debug_assert!(layouts.iter().all(|l| &l.shape == shape));
        // Innermost first; size-1 dims vanish.
        let mut dims: SmallVec<[usize; 6]> = SmallVec::new();
        let mut strides: [SmallVec<[isize; 6]>; K] = std::array::from_fn(|_| SmallVec::new());
        for d in (0..shape.len()).rev() {
            if shape[d] == 1 {
                continue;
            }
            if let Some(last) = dims.len().checked_sub(1) {
                let mergeable =
                    (0..K).all(|k| layouts[k].strides[d] == strides[k][last] * dims[last] as isize);
                if mergeable {
                    dims[last] *= shape[d];
                    continue;
                }
            }
            dims.push(shape[d]);
            for k in 0..K {
                strides[k].push(layouts[k].strides[d]);
            }
        }
        if dims.is_empty() {
            dims.push(1);
            for s in strides.iter_mut() {
                s.push(0);
            }
        }
        dims.reverse();
        for s in strides.iter_mut() {
            s.reverse();
        }
        Walk { shape: dims, strides, offsets: std::array::from_fn(|k| layouts[k].offset as isize) }
    }

    /// Stride of the innermost (merged) dimension of each layout.
    pub(crate) fn inner_strides(&self) -> [isize; K] {
        std::array::from_fn(|k| *self.strides[k].last().expect("rank >= 1"))
    }

    /// Call `f(pos, offsets, len)` for each run of the flat (row-major) element range
    /// `start..end` that lies within one innermost row: element `pos + i` of the walk is at
    /// `offsets[k] + i * inner_strides()[k]` in operand `k`.
    pub(crate) fn segments(&self, start: usize, end: usize, mut f: impl FnMut(usize, [isize; K], usize)) {
        if start >= end {
            return;
        }
        let nd = self.shape.len();
        let inner = self.shape[nd - 1];
        let mut idx: SmallVec<[usize; 6]> = SmallVec::from_elem(0, nd);
        let mut rem = start;
        for d in (0..nd).rev() {
            idx[d] = rem % self.shape[d];
            rem /= self.shape[d];
        }
        let mut base = self.offsets;
        for (k, b) in base.iter_mut().enumerate() {
            for d in 0..nd - 1 {
                *b += idx[d] as isize * self.strides[k][d];
            }
        }
        let mut col = idx[nd - 1];
        let mut pos = start;
        loop {
            let len = (inner - col).min(end - pos);
            let offs: [isize; K] = std::array::from_fn(|k| base[k] + col as isize * self.strides[k][nd - 1]);
            f(pos, offs, len);
            pos += len;
            if pos >= end {
                return;
            }
            col = 0;
            let mut d = nd - 1;
            loop {
                d -= 1;
                idx[d] += 1;
                for (k, b) in base.iter_mut().enumerate() {
                    *b += self.strides[k][d];
                }
                if idx[d] < self.shape[d] {
                    break;
                }
                for (k, b) in base.iter_mut().enumerate() {
                    *b -= self.strides[k][d] * self.shape[d] as isize;
                }
                idx[d] = 0;
            }
        }
    }
}

/// Side of the square tiles of [`Walk::build_tiled`].
const TILE: usize = 32;

impl<const K: usize> Walk<K> {
    /// True when walking row by row would stride through memory for some operand (it moves by
    /// more than one element along the innermost dimension but by one along the next, as a
    /// transposed view does): tiles then keep its cache lines in use.
    pub(crate) fn wants_tiles(&self) -> bool {
        let nd = self.shape.len();
        nd >= 2
            && self.shape[nd - 1] >= TILE
            && self.shape[nd - 2] >= TILE
            && (0..K).any(|k| self.strides[k][nd - 1].abs() > 1 && self.strides[k][nd - 2].abs() == 1)
    }

    /// A fresh vector of the walk's elements in row-major order, filled in `TILE × TILE` tiles
    /// of the two innermost dimensions: `run(out, offsets)` fills `out` from the run of
    /// `out.len()` elements starting at `offsets` (as for [`segments`](Self::segments)).
    pub(crate) fn build_tiled<U: Element>(
        &self,
        run: impl Fn(&mut [MaybeUninit<U>], [isize; K]) + Sync,
    ) -> Vec<U> {
        let nd = self.shape.len();
        let (rows, width) = (self.shape[nd - 2], self.shape[nd - 1]);
        let n: usize = self.shape.iter().product();
        let mut v: Vec<U> = crate::cache::take(n);
        if n == 0 {
            return v;
        }
        let spare = &mut v.spare_capacity_mut()[..n];
        // Rows `rb*TILE ..` of matrix `mi` (a flat index over the outer dimensions).
        let block = |mi: usize, rb: usize, out: &mut [MaybeUninit<U>]| {
            let mut base = self.offsets;
            let mut rem = mi;
            for d in (0..nd - 2).rev() {
                let i = (rem % self.shape[d]) as isize;
                rem /= self.shape[d];
                for (k, b) in base.iter_mut().enumerate() {
                    *b += i * self.strides[k][d];
                }
            }
            let r0 = rb * TILE;
            for c0 in (0..width).step_by(TILE) {
                let len = TILE.min(width - c0);
                for (r, row) in out.chunks_mut(width).enumerate() {
                    let offs: [isize; K] = std::array::from_fn(|k| {
                        base[k]
                            + (r0 + r) as isize * self.strides[k][nd - 2]
                            + c0 as isize * self.strides[k][nd - 1]
                    });
                    run(&mut row[c0..c0 + len], offs);
                }
            }
        };
        // As in [`build`]: a streamed output's tasks each end with a fence.
        let streamed = stream::enabled(n * std::mem::size_of::<U>());
        if parallel(n) {
            spare.par_chunks_mut(rows * width).enumerate().for_each(|(mi, m)| {
                m.par_chunks_mut(TILE * width).enumerate().for_each(|(rb, out)| {
                    block(mi, rb, out);
                    if streamed {
                        stream::fence();
                    }
                })
            });
        } else {
            for (mi, m) in spare.chunks_mut(rows * width).enumerate() {
                for (rb, out) in m.chunks_mut(TILE * width).enumerate() {
                    block(mi, rb, out);
                }
            }
            if streamed {
                stream::fence();
            }
        }
        // SAFETY: the tiles cover every element of every row of every matrix, and `run` writes
        // every element it is given; `U: Copy` needs no drop on unwinding.
        unsafe { v.set_len(n) };
        v
    }

    /// The walk's elements in row-major order: `run(out, offsets)` fills each run (see
    /// [`segments`](Self::segments)); tiled when [`wants_tiles`](Self::wants_tiles).
    pub(crate) fn build_with<U: Element>(
        &self,
        run: impl Fn(&mut [MaybeUninit<U>], [isize; K]) + Sync,
    ) -> Vec<U> {
        if self.wants_tiles() {
            return self.build_tiled(run);
        }
        let n: usize = self.shape.iter().product();
        build(n, |start, o| {
            self.segments(start, start + o.len(), |pos, offs, len| {
                run(&mut o[pos - start..pos - start + len], offs)
            })
        })
    }
}

#[inline(always)]
fn map_slice_generic<T: Copy, U, F: Fn(T) -> U>(out: &mut [MaybeUninit<U>], src: &[T], f: &F) {
    for (o, &x) in out.iter_mut().zip(src) {
        o.write(f(x));
    }
}

simd_builds!(map_slice_generic => map_slice_avx2, map_slice_avx512, [T: Copy, U, F: Fn(T) -> U], (out: &mut [MaybeUninit<U>], src: &[T], f: &F));

/// `out[i] = f(src[i])`, vectorized. `out` and `src` have equal lengths.
#[inline]
pub(crate) fn map_slice<T: Copy, U, F: Fn(T) -> U>(out: &mut [MaybeUninit<U>], src: &[T], f: &F) {
    debug_assert_eq!(out.len(), src.len());
    dispatch_simd!(map_slice_generic, map_slice_avx2, map_slice_avx512, (out, src, f))
}

#[inline(always)]
fn map_strided_generic<T: Copy, U, F: Fn(T) -> U>(
    out: &mut [MaybeUninit<U>],
    src: &[T],
    b: isize,
    s: isize,
    f: &F,
) {
    for (i, y) in out.iter_mut().enumerate() {
        y.write(f(src[(b + i as isize * s) as usize]));
    }
}

simd_builds!(map_strided_generic => map_strided_avx2, map_strided_avx512, [T: Copy, U, F: Fn(T) -> U], (out: &mut [MaybeUninit<U>], src: &[T], b: isize, s: isize, f: &F));

/// `out[i] = f(src[b + i·s])`: a strided row, in the same builds as [`map_slice`] (so that
/// `f`'s fused multiply-adds are instructions there too).
fn map_strided<T: Copy, U, F: Fn(T) -> U>(out: &mut [MaybeUninit<U>], src: &[T], b: isize, s: isize, f: &F) {
    dispatch_simd!(map_strided_generic, map_strided_avx2, map_strided_avx512, (out, src, b, s, f))
}

#[inline(always)]
fn map_inplace_generic<T: Copy, F: Fn(T) -> T>(xs: &mut [T], f: &F) {
    for x in xs.iter_mut() {
        *x = f(*x);
    }
}

simd_builds!(map_inplace_generic => map_inplace_avx2, map_inplace_avx512, [T: Copy, F: Fn(T) -> T], (xs: &mut [T], f: &F));

fn map_inplace<T: Copy, F: Fn(T) -> T>(xs: &mut [T], f: &F) {
    dispatch_simd!(map_inplace_generic, map_inplace_avx2, map_inplace_avx512, (xs, f))
}

#[inline(always)]
fn exp_runs_generic<T: FastFloat>(out: &mut [MaybeUninit<T>], src: &[T], stream: bool) {
    T::exp_run(out, src, stream)
}

simd_builds!(exp_runs_generic => exp_runs_avx2, exp_runs_avx512, [T: FastFloat], (out: &mut [MaybeUninit<T>], src: &[T], stream: bool));

/// [`FastFloat::exp_run`] in the SIMD builds.
/// `stream`: see [`map1_runs`].
pub(crate) fn exp_runs<T: FastFloat>(out: &mut [MaybeUninit<T>], src: &[T], stream: bool) {
    dispatch_simd!(exp_runs_generic, exp_runs_avx2, exp_runs_avx512, (out, src, stream))
}

/// `f` applied to every element of `a`, as a fresh contiguous array of `a`'s shape.
pub(crate) fn map1<T: Element, U: Element>(a: &Array, f: impl Fn(T) -> U + Sync) -> Array {
    map1_runs(a, &f, |o, s, _| map_slice(o, s, &f))
}

/// [`map1`] with `runs(out, src, stream)` computing `f` over each contiguous run (a
/// whole-slice kernel with the same results as mapping `f`, such as [`FastFloat::exp_run`]);
/// `stream` says to write the output around the cache ([`stream::enabled`]: it is large, and
/// the CPU can).
fn map1_runs<T: Element, U: Element>(
    a: &Array,
    f: &(impl Fn(T) -> U + Sync),
    runs: impl Fn(&mut [MaybeUninit<U>], &[T], bool) + Sync,
) -> Array {
    let n = a.numel();
    let stream = stream::enabled(n * std::mem::size_of::<U>());
    let out = if let Some(src) = a.as_slice::<T>() {
        build(n, |start, o| runs(o, &src[start..start + o.len()], stream))
    } else {
        let src = a.storage_slice::<T>();
        let walk = Walk::new([a.layout()]);
        let [s] = walk.inner_strides();
        walk.build_with(|o: &mut [MaybeUninit<U>], [b]| match s {
            1 => runs(o, &src[b as usize..b as usize + o.len()], stream),
            0 => o.fill(MaybeUninit::new(f(src[b as usize]))),
            _ => map_strided(o, src, b, s, f),
        })
    };
    Array::from_vec(out, a.shape())
}

/// `xs[i] = f(xs[i])` through a whole-slice kernel `runs(out, src)`, whose output may not
/// alias its input: each stretch is copied to a stack buffer first (it stays in L1).
fn inplace_runs<T: Copy + Default>(xs: &mut [T], runs: &impl Fn(&mut [MaybeUninit<T>], &[T], bool)) {
    const STRETCH: usize = 512;
    let mut buf = [T::default(); STRETCH];
    for c in xs.chunks_mut(STRETCH) {
        let src = &mut buf[..c.len()];
        src.copy_from_slice(c);
        // SAFETY: `MaybeUninit<T>` has `T`'s layout; `runs` writes initialised values only.
        // In place the destination line is in the cache already (just read): nothing to stream.
        runs(unsafe { &mut *(c as *mut [T] as *mut [MaybeUninit<T>]) }, src, false);
    }
}

/// Where a unary function sends its results: a fresh array, the input's own buffer, or a
/// block of a fused program ([`crate::ops::block`]).
pub(crate) trait Apply<T> {
    type Out;
    fn apply<F: Fn(T) -> T + Sync>(self, f: F) -> Self::Out;
    /// [`apply`](Apply::apply), with `runs(out, src)` doing contiguous stretches: a
    /// whole-slice kernel with exactly `f`'s results, faster than mapping it.
    fn apply_runs<F, R>(self, f: F, runs: R) -> Self::Out
    where
        F: Fn(T) -> T + Sync,
        R: Fn(&mut [MaybeUninit<T>], &[T], bool) + Sync;
}

struct Fresh<'a>(&'a Array);

impl<T: Element> Apply<T> for Fresh<'_> {
    type Out = Array;
    fn apply<F: Fn(T) -> T + Sync>(self, f: F) -> Array {
        map1(self.0, f)
    }
    fn apply_runs<F, R>(self, f: F, runs: R) -> Array
    where
        F: Fn(T) -> T + Sync,
        R: Fn(&mut [MaybeUninit<T>], &[T], bool) + Sync,
    {
        map1_runs(self.0, &f, runs)
    }
}

struct InPlace(Array);

impl InPlace {
    /// `each(chunk)` over the buffer (in parallel chunks when large) when this handle is its
    /// only owner; false, with nothing done, otherwise.
    fn each<T: Element>(&mut self, each: impl Fn(&mut [T]) + Sync + Send) -> bool {
        match self.0.try_unique_slice_mut::<T>() {
            Some(xs) if parallel(xs.len()) => xs.par_chunks_mut(CHUNK).for_each(each),
            Some(xs) => each(xs),
            None => return false,
        }
        true
    }
}

impl<T: Element> Apply<T> for InPlace {
    type Out = Array;
    fn apply<F: Fn(T) -> T + Sync>(mut self, f: F) -> Array {
        if self.each(|c| map_inplace(c, &f)) {
            self.0
        } else {
            map1(&self.0, f)
        }
    }
    fn apply_runs<F, R>(mut self, f: F, runs: R) -> Array
    where
        F: Fn(T) -> T + Sync,
        R: Fn(&mut [MaybeUninit<T>], &[T], bool) + Sync,
    {
        if self.each(|c| inplace_runs(c, &runs)) {
            self.0
        } else {
            map1_runs(&self.0, &f, runs)
        }
    }
}

// ------------------------------------------------------------------------------------------
// The ops
// ------------------------------------------------------------------------------------------

/// An elementwise function of one array; see [`Array::unary`].
///
/// ```
/// use adjoint_tensor::{Array, ops::unary::UnaryOp};
/// let a = Array::from_vec(vec![-2.0f32, 0.5], &[2]);
/// assert_eq!(a.unary(UnaryOp::Abs).to_vec::<f32>(), vec![2.0, 0.5]);
/// assert_eq!(UnaryOp::Sigmoid.name(), "sigmoid");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x` (float, int64; int64 wraps).
    Neg,
    /// `|x|` (float, int64; int64 wraps at `i64::MIN`).
    Abs,
    /// `-1`, `0` or `1`; NaN stays NaN and `±0` stays `±0` (float, int64).
    Sign,
    /// `e^x`.
    Exp,
    /// `2^x`.
    Exp2,
    /// Natural logarithm.
    Log,
    /// `ln(1 + x)`, accurate near 0.
    Log1p,
    /// `e^x - 1`, accurate near 0.
    Expm1,
    /// Square root.
    Sqrt,
    /// `1 / sqrt(x)`.
    Rsqrt,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic function `1 / (1 + e^-x)`, computed without overflow for any `x`.
    Sigmoid,
    /// Error function.
    Erf,
    /// Round toward -inf.
    Floor,
    /// Round toward +inf.
    Ceil,
    /// Round half to even, as NumPy's `round` (`0.5 → 0`, `1.5 → 2`).
    Round,
    /// `1 / x`.
    Recip,
    /// `x * x` (float, int64; int64 wraps).
    Square,
    /// `max(x, 0)`; NaN stays NaN (float, int64).
    Relu,
}

impl UnaryOp {
    /// Every op, in declaration order.
    pub const ALL: [UnaryOp; 22] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Exp,
        UnaryOp::Exp2,
        UnaryOp::Log,
        UnaryOp::Log1p,
        UnaryOp::Expm1,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Tan,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Erf,
        UnaryOp::Floor,
        UnaryOp::Ceil,
        UnaryOp::Round,
        UnaryOp::Recip,
        UnaryOp::Square,
        UnaryOp::Relu,
    ];

    /// The op's name in error messages (the method name: `"exp"`, `"sigmoid"`, …).
    pub fn name(self) -> &'static str {
        use UnaryOp::*;
        match self {
            Neg => "neg",
            Abs => "abs",
            Sign => "sign",
            Exp => "exp",
            Exp2 => "exp2",
            Log => "log",
            Log1p => "log1p",
            Expm1 => "expm1",
            Sqrt => "sqrt",
            Rsqrt => "rsqrt",
            Sin => "sin",
            Cos => "cos",
            Tan => "tan",
            Tanh => "tanh",
            Sigmoid => "sigmoid",
            Erf => "erf",
            Floor => "floor",
            Ceil => "ceil",
            Round => "round",
            Recip => "recip",
            Square => "square",
            Relu => "relu",
        }
    }

    /// True for the ops defined on int64 as well as floats.
    pub fn supports_int(self) -> bool {
        matches!(self, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Square | UnaryOp::Relu)
    }
}

#[inline(always)]
pub(crate) fn float_unary<T: FastFloat, A: Apply<T>>(op: UnaryOp, a: A) -> A::Out {
    use UnaryOp::*;
    let (zero, one) = (T::zero(), T::one());
    match op {
        Neg => a.apply(|x: T| -x),
        Abs => a.apply(|x: T| x.abs()),
        Sign => a.apply(move |x: T| {
            if x > zero {
                one
            } else if x < zero {
                -one
            } else {
                x
            }
        }),
        Exp => a.apply_runs(T::exp_fast, exp_runs::<T>),
        Exp2 => a.apply(T::exp2_fast),
        Log => a.apply(|x: T| x.ln()),
        Log1p => a.apply(|x: T| x.ln_1p()),
        Expm1 => a.apply(|x: T| x.exp_m1()),
        Sqrt => a.apply(|x: T| x.sqrt()),
        Rsqrt => a.apply(move |x: T| one / x.sqrt()),
        Sin => a.apply(|x: T| x.sin()),
        Cos => a.apply(|x: T| x.cos()),
        Tan => a.apply(|x: T| x.tan()),
        Tanh => a.apply(T::tanh_fast),
        Sigmoid => a.apply(T::sigmoid_fast),
        // erf(±0) = ±0 exactly (and `special::erf_f64` does not terminate at 0: reported).
        Erf => a.apply(move |x: T| if x == zero { x } else { x.erf() }),
        Floor => a.apply(|x: T| x.floor()),
        Ceil => a.apply(|x: T| x.ceil()),
        Round => a.apply(T::round_even),
        Recip => a.apply(move |x: T| one / x),
        Square => a.apply(|x: T| x * x),
        // NaN <= 0 is false, so NaN passes through; -0 becomes +0.
        Relu => a.apply(move |x: T| if x <= zero { zero } else { x }),
    }
}

fn int_unary<A: Apply<i64, Out = Array>>(op: UnaryOp, a: A) -> Array {
    use UnaryOp::*;
    match op {
        Neg => a.apply(|x: i64| x.wrapping_neg()),
        Abs => a.apply(|x: i64| x.wrapping_abs()),
        Sign => a.apply(|x: i64| x.signum()),
        Square => a.apply(|x: i64| x.wrapping_mul(x)),
        Relu => a.apply(|x: i64| x.max(0)),
        _ => unreachable!("checked by check_unary"),
    }
}

fn check_unary(a: &Array, op: UnaryOp) -> Result<()> {
    let ok = match a.dtype() {
        DType::F32 | DType::F64 => true,
        DType::I64 => op.supports_int(),
        DType::Bool => false,
    };
    crate::ensure!(
        ok,
        op.name(),
        "needs a {} array, got {} of shape {:?}",
        if op.supports_int() { "float or int64" } else { "float" },
        a.dtype(),
        a.shape()
    );
    Ok(())
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        $(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self) -> Array {
                self.unary(UnaryOp::$op)
            }
        )*
    };
}

impl Array {
    /// Apply `op` to every element, into a fresh contiguous array of the same shape and dtype.
    ///
    /// Panics (naming the op, the dtype and the caller's line) for a float-only op on an
    /// `int64` or `bool` array; see [`try_unary`](Self::try_unary).
    ///
    /// ```
    /// use adjoint_tensor::{Array, ops::unary::UnaryOp};
    /// let a = Array::from_vec(vec![0.0f64, 1.0], &[2]);
    /// let e = a.unary(UnaryOp::Exp).to_vec::<f64>();
    /// assert_eq!(e[0], 1.0);
    /// assert!((e[1] - std::f64::consts::E).abs() < 1e-15);
    /// ```
    #[track_caller]
    pub fn unary(&self, op: UnaryOp) -> Array {
        self.try_unary(op).or_fail()
    }

    /// Fallible [`unary`](Self::unary).
    ///
    /// ```
    /// use adjoint_tensor::{Array, ops::unary::UnaryOp};
    /// let i = Array::from_vec(vec![-3i64, 4], &[2]);
    /// assert_eq!(i.try_unary(UnaryOp::Abs).unwrap().to_vec::<i64>(), vec![3, 4]);
    /// let e = i.try_unary(UnaryOp::Exp).unwrap_err();
    /// assert_eq!(e.op, "exp");
    /// assert!(e.message.contains("int64"));
    /// ```
    pub fn try_unary(&self, op: UnaryOp) -> Result<Array> {
        check_unary(self, op)?;
        Ok(match self.dtype() {
            DType::F32 => float_unary::<f32, _>(op, Fresh(self)),
            DType::F64 => float_unary::<f64, _>(op, Fresh(self)),
            DType::I64 => int_unary(op, Fresh(self)),
            DType::Bool => unreachable!("checked by check_unary"),
        })
    }

    /// Like [`unary`](Self::unary), but writes into this array's own buffer when this handle
    /// is its only owner and the array is contiguous (no allocation); otherwise allocates.
    ///
    /// ```
    /// use adjoint_tensor::{Array, ops::unary::UnaryOp};
    /// let a = Array::from_vec(vec![1.0f32, 4.0, 9.0], &[3]);
    /// let p = a.storage().as_ref() as *const _;
    /// let r = a.into_unary(UnaryOp::Sqrt);
    /// assert_eq!(r.to_vec::<f32>(), vec![1.0, 2.0, 3.0]);
    /// assert_eq!(r.storage().as_ref() as *const _, p); // same buffer
    /// ```
    #[track_caller]
    pub fn into_unary(self, op: UnaryOp) -> Array {
        check_unary(&self, op).or_fail();
        match self.dtype() {
            DType::F32 => float_unary::<f32, _>(op, InPlace(self)),
            DType::F64 => float_unary::<f64, _>(op, InPlace(self)),
            DType::I64 => int_unary(op, InPlace(self)),
            DType::Bool => unreachable!("checked by check_unary"),
        }
    }

    /// Logical negation of a `bool` array.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let m = Array::from_vec(vec![true, false], &[2]);
    /// assert_eq!(m.logical_not().to_vec::<bool>(), vec![false, true]);
    /// ```
    #[track_caller]
    pub fn logical_not(&self) -> Array {
        self.try_logical_not().or_fail()
    }

    /// Fallible [`logical_not`](Self::logical_not).
    pub fn try_logical_not(&self) -> Result<Array> {
        if self.dtype() != DType::Bool {
            return Err(TensorError::new(
                "logical_not",
                format!("needs a bool array, got {} of shape {:?}", self.dtype(), self.shape()),
            ));
        }
        Ok(map1(self, |x: bool| !x))
    }

    unary_methods! {
        /// `-x`; see [`UnaryOp::Neg`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// assert_eq!(Array::from_vec(vec![1i64, -2], &[2]).neg().to_vec::<i64>(), vec![-1, 2]);
        /// ```
        neg => Neg;
        /// `|x|`; see [`UnaryOp::Abs`].
        abs => Abs;
        /// Sign of each element; see [`UnaryOp::Sign`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// let a = Array::from_vec(vec![-3.0f32, 0.0, 2.0], &[3]);
        /// assert_eq!(a.sign().to_vec::<f32>(), vec![-1.0, 0.0, 1.0]);
        /// ```
        sign => Sign;
        /// `e^x`; see [`UnaryOp::Exp`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// let a = Array::from_vec(vec![0.0f32, f32::NEG_INFINITY, 100.0], &[3]);
        /// assert_eq!(a.exp().to_vec::<f32>(), vec![1.0, 0.0, f32::INFINITY]);
        /// ```
        exp => Exp;
        /// `2^x`; see [`UnaryOp::Exp2`].
        exp2 => Exp2;
        /// Natural logarithm; see [`UnaryOp::Log`].
        log => Log;
        /// `ln(1 + x)`; see [`UnaryOp::Log1p`].
        log1p => Log1p;
        /// `e^x - 1`; see [`UnaryOp::Expm1`].
        expm1 => Expm1;
        /// Square root; see [`UnaryOp::Sqrt`].
        sqrt => Sqrt;
        /// `1 / sqrt(x)`; see [`UnaryOp::Rsqrt`].
        rsqrt => Rsqrt;
        /// Sine; see [`UnaryOp::Sin`].
        sin => Sin;
        /// Cosine; see [`UnaryOp::Cos`].
        cos => Cos;
        /// Tangent; see [`UnaryOp::Tan`].
        tan => Tan;
        /// Hyperbolic tangent; see [`UnaryOp::Tanh`].
        tanh => Tanh;
        /// Logistic sigmoid, finite for any input; see [`UnaryOp::Sigmoid`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// let a = Array::from_vec(vec![-1e4f32, 0.0, 1e4], &[3]);
        /// assert_eq!(a.sigmoid().to_vec::<f32>(), vec![0.0, 0.5, 1.0]);
        /// ```
        sigmoid => Sigmoid;
        /// Error function; see [`UnaryOp::Erf`].
        erf => Erf;
        /// Round toward -inf; see [`UnaryOp::Floor`].
        floor => Floor;
        /// Round toward +inf; see [`UnaryOp::Ceil`].
        ceil => Ceil;
        /// Round half to even; see [`UnaryOp::Round`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// let a = Array::from_vec(vec![0.5f64, 1.5, 2.5, -0.5], &[4]);
        /// assert_eq!(a.round().to_vec::<f64>(), vec![0.0, 2.0, 2.0, -0.0]);
        /// ```
        round => Round;
        /// `1 / x`; see [`UnaryOp::Recip`].
        recip => Recip;
        /// `x * x`; see [`UnaryOp::Square`].
        square => Square;
        /// `max(x, 0)`; see [`UnaryOp::Relu`].
        relu => Relu;
    }
}
