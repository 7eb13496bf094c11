//! 1-D and 2-D convolutions (PyTorch semantics: cross-correlation, NCHW, no bias) and the two
//! kernels their gradients need.
//!
//! ## Design choices
//! - **im2col + `gemm`, one image at a time.** For each image and group the receptive fields are
//!   unrolled into a `[C/groups·KH·KW, OH·OW]` buffer and multiplied by the weight matrix
//!   `[O/groups, C/groups·KH·KW]`, writing straight into the output. Doing it per image keeps the
//!   buffer small enough to stay in cache while `gemm` reads it (a whole-batch unroll would be
//!   `KH·KW` times the input).
//! - **Parallel over images, serial inside.** With at least as many images as threads, each rayon
//!   task takes whole images and calls a single-threaded `gemm`; the unroll buffer is allocated
//!   once per task, not per image. Small batches instead let `gemm` split each product.
//! - **Pointwise convolutions skip the unroll**: with a 1×1 kernel, stride 1 and no padding the
//!   input planes already are the `[C, H·W]` matrix.
//! - **Gradients reuse the same pieces.** The input gradient (a transposed convolution) is
//!   `Wᵀ · grad_out` per image followed by col2im, which scatter-adds the unrolled columns back
//!   onto the image; the weight gradient is `Σₙ grad_out · colᵀ`, each thread summing its share of
//!   the batch into its own buffer before the partial sums are added.
//! - **Winograd for `f32` 3×3 stride-1 convolutions** with at least 8 channels per group on both
//!   sides (`conv/winograd.rs`): all three kernels on F(4×4, 3×3) (4× fewer multiply-adds; its
//!   rounding error, up to about 11·ε·Σ|x||w| per element, is ~17× that of F(2×2, 3×3),
//!   measured in `tests/conv_fast.rs`) or F(2×2, 3×3) (2.25×), whichever a cost model of the
//!   tiles' padding favours for the plane size; the products go through `gemm`. Chosen by
//!   measurement on the issue-17 shapes (`cargo run --release -p adjoint-tensor --example
//!   conv_bench`, which A/Bs it against im2col and the two tiles against each other in one
//!   process); `f64` and every other shape keep im2col, so the core's `f64` gradient tables see
//!   the exact path. `ADJOINT_CONV_WINOGRAD=0` turns Winograd off,
//!   `ADJOINT_CONV_WINOGRAD_TILE=2` (or `4`) forces a tile.
//! - **1-D is 2-D with `H = 1`**: the memory of `[N, C, L]` is that of `[N, C, 1, L]`, so the 1-D
//!   functions only validate in their own terms and call the 2-D kernels.

use std::fmt::Debug;
use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use crate::array::Array;
use crate::dtype::{DType, FloatElement};
use crate::ensure;
use crate::error::{OrFail, Result};
use crate::ops::matmul::{gemm_into, gemm_into_uninit, gemm_par_work, gemm_parallelism, MatMut, MatRef};

mod winograd;

/// Run `f` with this thread's `f32` 3×3 stride-1 convolutions (forward and input gradient) on
/// Winograd F(m×m, 3×3), `m` = 2 or 4, whatever `ADJOINT_CONV_WINOGRAD_TILE` says: for tests
/// and benchmarks that compare the two algorithms in one process. Panics for another `m`.
///
/// ```
/// use adjoint_tensor::{ops::conv::{with_winograd_tile, Conv2dOptions}, Array, DType};
/// let x = Array::ones(&[1, 8, 6, 6], DType::F32);
/// let w = Array::ones(&[8, 8, 3, 3], DType::F32);
/// let p = Conv2dOptions { padding: [1, 1], ..Default::default() };
/// let a = with_winograd_tile(2, || x.conv2d(&w, &p));
/// let b = with_winograd_tile(4, || x.conv2d(&w, &p));
/// assert_eq!(a.shape(), b.shape());
/// ```
#[doc(hidden)]
pub fn with_winograd_tile<R>(m: usize, f: impl FnOnce() -> R) -> R {
    winograd::with_tile(m, f)
}

/// Hyper-parameters of [`Array::conv2d`], as PyTorch's `conv2d` (`[height, width]` order).
///
/// ```
/// use adjoint_tensor::ops::conv::Conv2dOptions;
/// let p = Conv2dOptions { padding: [1, 1], ..Default::default() };
/// assert_eq!(p.stride, [1, 1]);
/// assert_eq!(p.groups, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dOptions {
    /// Step between neighbouring output positions.
    pub stride: [usize; 2],
    /// Zeros added on both sides of each spatial dim.
    pub padding: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
    /// Channel groups: input and output channels split into `groups` independent convolutions.
    pub groups: usize,
}

/// The old name of [`Conv2dOptions`] (renamed so it is not confused with the `Params` trait
/// of `adjoint-core`).
#[deprecated(since = "0.1.0", note = "renamed to `Conv2dOptions`")]
pub type Conv2dParams = Conv2dOptions;

/// The old name of [`Conv1dOptions`].
#[deprecated(since = "0.1.0", note = "renamed to `Conv1dOptions`")]
pub type Conv1dParams = Conv1dOptions;

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }
    }
}

/// Hyper-parameters of [`Array::conv1d`], as PyTorch's `conv1d`.
///
/// ```
/// use adjoint_tensor::ops::conv::Conv1dOptions;
/// let p = Conv1dOptions { stride: 2, ..Default::default() };
/// assert_eq!((p.padding, p.dilation, p.groups), (0, 1, 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv1dOptions {
    /// Step between neighbouring output positions.
    pub stride: usize,
    /// Zeros added on both sides.
    pub padding: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
    /// Channel groups.
    pub groups: usize,
}

impl Default for Conv1dOptions {
    fn default() -> Self {
        Conv1dOptions { stride: 1, padding: 0, dilation: 1, groups: 1 }
    }
}

impl Conv1dOptions {
    /// The same convolution over `[N, C, 1, L]`.
    fn to_2d(self) -> Conv2dOptions {
        Conv2dOptions {
            stride: [1, self.stride],
            padding: [0, self.padding],
            dilation: [1, self.dilation],
            groups: self.groups,
        }
    }
}

/// Sizes of one convolution in 2-D terms (a 1-D one has `h = kh = oh = 1`).
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    groups: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    dh: usize,
    dw: usize,
    one_d: bool,
}

impl Geom {
    /// Input channels per group.
    fn cg(&self) -> usize {
        self.c / self.groups
    }
    /// Output channels per group.
    fn og(&self) -> usize {
        self.o / self.groups
    }
    /// Rows of the unrolled input of one group (`cg·kh·kw`).
    fn ck(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    /// Output positions per plane.
    fn l(&self) -> usize {
        self.oh * self.ow
    }
    fn hw(&self) -> usize {
        self.h * self.w
    }
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
    /// Length of the unroll buffer (none for pointwise convolutions).
    fn col_len(&self) -> usize {
        if self.pointwise() {
            0
        } else {
            self.ck() * self.l()
        }
    }
    fn user_shape(&self, [a, b, h, w]: [usize; 4]) -> Vec<usize> {
        if self.one_d {
            vec![a, b, w]
        } else {
            vec![a, b, h, w]
        }
    }
    fn out_shape(&self) -> Vec<usize> {
        self.user_shape([self.n, self.o, self.oh, self.ow])
    }
    fn input_shape(&self) -> Vec<usize> {
        self.user_shape([self.n, self.c, self.h, self.w])
    }
    fn weight_shape(&self) -> Vec<usize> {
        self.user_shape([self.o, self.cg(), self.kh, self.kw])
    }
    /// Multiply-adds of the whole batch.
    fn work(&self) -> usize {
        self.n * self.o * self.l() * self.ck()
    }
    /// Whether to give whole images to rayon tasks (else `gemm` splits each product).
    fn image_parallel(&self) -> bool {
        let threads = rayon::current_num_threads();
        threads > 1 && self.n >= threads && self.work() >= gemm_par_work()
    }
    /// The input row read by output row `oh` at kernel row `ki`, if inside the image.
    #[inline]
    fn input_row(&self, oh: usize, ki: usize) -> Option<usize> {
        let ih = (oh * self.sh + ki * self.dh) as isize - self.ph as isize;
        (ih >= 0 && (ih as usize) < self.h).then_some(ih as usize)
    }
    /// The output columns `lo..hi` whose kernel column `kj` falls inside the image, and the input
    /// column read at `lo`.
    #[inline]
    fn valid_cols(&self, kj: usize) -> (usize, usize, usize) {
        let off = (kj * self.dw) as isize - self.pw as isize;
        let lo = if off < 0 { ((-off) as usize).div_ceil(self.sw) } else { 0 };
        let end = self.w as isize - off;
        let hi = if end > 0 { (end as usize).div_ceil(self.sw) } else { 0 };
        let lo = lo.min(self.ow);
        let hi = hi.min(self.ow).max(lo);
        (lo, hi, ((lo * self.sw) as isize + off).max(0) as usize)
    }
}

/// Output length of one spatial dim, or `None` when the dilated kernel exceeds the padded input.
fn out_len(size: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
    let eff = (k - 1) * d + 1;
    (size + 2 * p).checked_sub(eff).map(|r| r / s + 1)
}

/// The output shape of `conv2d` for these input and weight shapes, checking them without
/// running the kernel (the autodiff layer validates calls this way before tracing).
///
/// ```
/// use adjoint_tensor::ops::conv::{conv2d_output_shape, Conv2dOptions};
/// let p = Conv2dOptions { padding: [1, 1], ..Default::default() };
/// assert_eq!(conv2d_output_shape(&[2, 3, 8, 8], &[4, 3, 3, 3], &p).unwrap(), vec![2, 4, 8, 8]);
/// assert!(conv2d_output_shape(&[2, 3, 8, 8], &[4, 2, 3, 3], &p).is_err());
/// ```
pub fn conv2d_output_shape(input: &[usize], weight: &[usize], p: &Conv2dOptions) -> Result<Vec<usize>> {
    geometry("conv2d", input, weight, p, p, false).map(|g| g.out_shape())
}

/// Validate a convolution given the caller's shapes (`[N, C, L]`/`[O, C/g, K]` when `one_d`)
/// and work out its sizes. `shown` is the caller's params, for messages.
fn geometry(
    op: &'static str,
    x: &[usize],
    wt: &[usize],
    p: &Conv2dOptions,
    shown: &dyn Debug,
    one_d: bool,
) -> Result<Geom> {
    let rank = if one_d { 3 } else { 4 };
    let layout = if one_d { "[N, C, L]" } else { "[N, C, H, W]" };
    let wlayout = if one_d { "[O, C/groups, K]" } else { "[O, C/groups, KH, KW]" };
    ensure!(x.len() == rank, op, "input must be {layout}, got shape {x:?}");
    ensure!(wt.len() == rank, op, "weight must be {wlayout}, got shape {wt:?} (input {x:?})");
    let g4 = |s: &[usize]| if one_d { [s[0], s[1], 1, s[2]] } else { [s[0], s[1], s[2], s[3]] };
    let ([n, c, h, w], [o, wc, kh, kw]) = (g4(x), g4(wt));
    ensure!(
        p.groups >= 1 && p.stride.iter().chain(&p.dilation).all(|&v| v >= 1),
        op,
        "stride, dilation and groups must be positive, got {shown:?} (input {x:?}, weight {wt:?})"
    );
    let gr = p.groups;
    ensure!(
        c % gr == 0 && o % gr == 0,
        op,
        "input channels ({c}) and output channels ({o}) must be divisible by groups ({gr}) (input \
         {x:?}, weight {wt:?})"
    );
    ensure!(
        wc * gr == c,
        op,
        "weight {wt:?} takes {wc} channels per group × {gr} groups = {} input channels, but input \
         {x:?} has {c}",
        wc * gr
    );
    ensure!(kh >= 1 && kw >= 1, op, "kernel dims of weight {wt:?} must be positive (input {x:?})");
    let oh = out_len(h, kh, p.stride[0], p.padding[0], p.dilation[0]);
    let ow = out_len(w, kw, p.stride[1], p.padding[1], p.dilation[1]);
    let (Some(oh), Some(ow)) = (oh, ow) else {
        return Err(crate::TensorError::new(
            op,
            format!("kernel of weight {wt:?} (dilated) is larger than the padded input {x:?} with {shown:?}"),
        ));
    };
    Ok(Geom {
        n,
        c,
        h,
        w,
        o,
        kh,
        kw,
        oh,
        ow,
        groups: gr,
        sh: p.stride[0],
        sw: p.stride[1],
        ph: p.padding[0],
        pw: p.padding[1],
        dh: p.dilation[0],
        dw: p.dilation[1],
        one_d,
    })
}

fn check_dtypes(op: &'static str, (na, a): (&str, &Array), (nb, b): (&str, &Array)) -> Result<()> {
    ensure!(
        a.dtype() == b.dtype(),
        op,
        "dtypes differ: {na} {:?} is {}, {nb} {:?} is {}",
        a.shape(),
        a.dtype(),
        b.shape(),
        b.dtype()
    );
    ensure!(
        a.dtype().is_float(),
        op,
        "needs float32 or float64 arrays, got {} ({na} {:?}, {nb} {:?})",
        a.dtype(),
        a.shape(),
        b.shape()
    );
    Ok(())
}

fn check_grad_shape(op: &'static str, g: &Geom, grad_out: &Array) -> Result<()> {
    ensure!(
        grad_out.shape() == g.out_shape().as_slice(),
        op,
        "grad_out has shape {:?}, but the convolution of input {:?} with weight {:?} gives {:?}",
        grad_out.shape(),
        g.input_shape(),
        g.weight_shape(),
        g.out_shape()
    );
    Ok(())
}

/// Unroll one group's input planes `x` (`[cg, h, w]`) into `col` (`[cg·kh·kw, oh·ow]`).
fn im2col<T: FloatElement>(g: &Geom, x: &[T], col: &mut [T]) {
    let (l, hw, ow) = (g.l(), g.hw(), g.ow);
    let mut rows = col.chunks_exact_mut(l);
    for c in 0..g.cg() {
        let plane = &x[c * hw..(c + 1) * hw];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = rows.next().expect("col holds cg·kh·kw rows");
                let (lo, hi, start) = g.valid_cols(kj);
                for (oh, seg) in row.chunks_exact_mut(ow).enumerate() {
                    let Some(ih) = g.input_row(oh, ki) else {
                        seg.fill(T::zero());
                        continue;
                    };
                    seg[..lo].fill(T::zero());
                    seg[hi..].fill(T::zero());
                    if hi == lo {
                        continue;
                    }
                    let xrow = &plane[ih * g.w..(ih + 1) * g.w];
                    if g.sw == 1 {
                        seg[lo..hi].copy_from_slice(&xrow[start..start + hi - lo]);
                    } else {
                        for (t, d) in seg[lo..hi].iter_mut().enumerate() {
                            *d = xrow[start + t * g.sw];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: add each unrolled column back onto the input planes `dx`.
fn col2im<T: FloatElement>(g: &Geom, col: &[T], dx: &mut [T]) {
    let (l, hw, ow) = (g.l(), g.hw(), g.ow);
    let mut rows = col.chunks_exact(l);
    for c in 0..g.cg() {
        let plane = &mut dx[c * hw..(c + 1) * hw];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = rows.next().expect("col holds cg·kh·kw rows");
                let (lo, hi, start) = g.valid_cols(kj);
                for (oh, seg) in row.chunks_exact(ow).enumerate() {
                    let Some(ih) = g.input_row(oh, ki) else { continue };
                    if hi == lo {
                        continue;
                    }
                    let xrow = &mut plane[ih * g.w..(ih + 1) * g.w];
                    if g.sw == 1 {
                        for (d, &s) in xrow[start..start + hi - lo].iter_mut().zip(&seg[lo..hi]) {
                            *d = *d + s;
                        }
                    } else {
                        for (t, &s) in seg[lo..hi].iter().enumerate() {
                            let d = &mut xrow[start + t * g.sw];
                            *d = *d + s;
                        }
                    }
                }
            }
        }
    }
}

/// Run `body(buffer, image, chunk)` for each image's chunk of `out`, in parallel when it pays;
/// `body` gets the `Parallelism` its `gemm` calls should use. `out` is the fresh output's
/// uninitialised memory: `body` must write every element of its chunk.
fn for_each_image<T: FloatElement>(
    g: &Geom,
    out: &mut [MaybeUninit<T>],
    per_image: usize,
    body: impl Fn(&mut [T], usize, &mut [MaybeUninit<T>], Parallelism) + Sync,
) {
    if out.is_empty() || per_image == 0 {
        return;
    }
    if g.image_parallel() {
        out.par_chunks_mut(per_image)
            .enumerate()
            .for_each_init(|| vec![T::zero(); g.col_len()], |col, (i, o)| body(col, i, o, Parallelism::None));
    } else {
        let mut col = vec![T::zero(); g.col_len()];
        let par = gemm_parallelism(g.og(), g.l(), g.ck());
        for (i, o) in out.chunks_mut(per_image).enumerate() {
            body(&mut col, i, o, par);
        }
    }
}

/// A fresh output of `n` elements, each image's chunk written by [`for_each_image`]'s `body`
/// (no serial zeroing pass before the parallel work: the chunks are written where they are
/// computed).
fn per_image_output<T: FloatElement>(
    g: &Geom,
    n: usize,
    per_image: usize,
    body: impl Fn(&mut [T], usize, &mut [MaybeUninit<T>], Parallelism) + Sync,
) -> Vec<T> {
    let mut out: Vec<T> = crate::cache::take(n);
    for_each_image(g, &mut out.spare_capacity_mut()[..n], per_image, body);
    // SAFETY: the chunks of `per_image` elements cover `0..n` (`n` is a multiple of it, or 0),
    // and `body` writes every element of its chunk (the contract of `for_each_image`).
    unsafe { out.set_len(n) };
    out
}

/// `chunk`, whose every element has just been written, as initialised values.
fn assume_init<T>(chunk: &mut [MaybeUninit<T>]) -> &mut [T] {
    // SAFETY: the caller wrote every element; `MaybeUninit<T>` has `T`'s layout.
    unsafe { std::slice::from_raw_parts_mut(chunk.as_mut_ptr().cast::<T>(), chunk.len()) }
}

fn forward<T: FloatElement>(g: &Geom, x: &[T], wt: &[T]) -> Vec<T> {
    let (og, ck, l, cghw) = (g.og(), g.ck(), g.l(), g.cg() * g.hw());
    // Each group's product writes its whole `og × l` block of the image's output.
    per_image_output(g, g.n * g.o * l, g.o * l, |col, i, out_i, par| {
        let x_i = &x[i * g.c * g.hw()..(i + 1) * g.c * g.hw()];
        for gi in 0..g.groups {
            let x_g = &x_i[gi * cghw..(gi + 1) * cghw];
            let rhs = if g.pointwise() {
                MatRef { data: x_g, offset: 0, rs: l, cs: 1 }
            } else {
                im2col(g, x_g, col);
                MatRef { data: &*col, offset: 0, rs: l, cs: 1 }
            };
            gemm_into_uninit(
                (og, l, ck),
                &mut out_i[gi * og * l..(gi + 1) * og * l],
                (l, 1),
                MatRef { data: wt, offset: gi * og * ck, rs: ck, cs: 1 },
                rhs,
                par,
            );
        }
    })
}

fn input_grad<T: FloatElement>(g: &Geom, gout: &[T], wt: &[T]) -> Vec<T> {
    let (og, ck, l, cghw) = (g.og(), g.ck(), g.l(), g.cg() * g.hw());
    per_image_output(g, g.n * g.c * g.hw(), g.c * g.hw(), |col, i, dx_i, par| {
        // col2im adds into the image: zero it here, in the task that fills it.
        dx_i.iter_mut().for_each(|e| {
            e.write(T::zero());
        });
        let dx_i = assume_init(dx_i);
        for gi in 0..g.groups {
            let dx_g = &mut dx_i[gi * cghw..(gi + 1) * cghw];
            // Wᵀ of this group: element (r, o) is wt[o·ck + r].
            let wt_t = MatRef { data: wt, offset: gi * og * ck, rs: 1, cs: ck };
            let gout_g = MatRef { data: gout, offset: (i * g.o + gi * og) * l, rs: l, cs: 1 };
            if g.pointwise() {
                gemm_into((ck, l, og), MatMut { data: dx_g, rs: l, cs: 1 }, false, wt_t, gout_g, par);
            } else {
                gemm_into((ck, l, og), MatMut { data: &mut *col, rs: l, cs: 1 }, false, wt_t, gout_g, par);
                col2im(g, col, dx_g);
            }
        }
    })
}

fn weight_grad<T: FloatElement>(g: &Geom, x: &[T], gout: &[T]) -> Vec<T> {
    let (og, ck, l, cghw) = (g.og(), g.ck(), g.l(), g.cg() * g.hw());
    let size = g.o * ck;
    let partial = |images: std::ops::Range<usize>, par: Parallelism| -> Vec<T> {
        let mut dw = vec![T::zero(); size];
        let mut col = vec![T::zero(); g.col_len()];
        for i in images {
            for gi in 0..g.groups {
                let x_off = i * g.c * g.hw() + gi * cghw;
                // colᵀ: element (t, r) is col[r·l + t].
                let col_t = if g.pointwise() {
                    MatRef { data: x, offset: x_off, rs: 1, cs: l }
                } else {
                    im2col(g, &x[x_off..x_off + cghw], &mut col);
                    MatRef { data: &col, offset: 0, rs: 1, cs: l }
                };
                gemm_into(
                    (og, ck, l),
                    MatMut { data: &mut dw[gi * og * ck..(gi + 1) * og * ck], rs: ck, cs: 1 },
                    true,
                    MatRef { data: gout, offset: (i * g.o + gi * og) * l, rs: l, cs: 1 },
                    col_t,
                    par,
                );
            }
        }
        dw
    };
    if size == 0 {
        return vec![];
    }
    if !g.image_parallel() {
        return partial(0..g.n, gemm_parallelism(og, ck, l));
    }
    let tasks = rayon::current_num_threads().min(g.n);
    let per = g.n.div_ceil(tasks);
    (0..tasks)
        .into_par_iter()
        .map(|t| partial(t * per..((t + 1) * per).min(g.n), Parallelism::None))
        .reduce_with(|mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                *x = *x + y;
            }
            a
        })
        .unwrap_or_else(|| vec![T::zero(); size])
}

/// Apply a kernel to two contiguous arrays and wrap its output.
fn run<T: FloatElement>(
    kernel: fn(&Geom, &[T], &[T]) -> Vec<T>,
    g: &Geom,
    a: &Array,
    b: &Array,
    shape: &[usize],
) -> Array {
    let (a, b) = (a.as_slice().expect("contiguous"), b.as_slice().expect("contiguous"));
    Array::from_vec(kernel(g, a, b), shape)
}

fn conv_forward(
    op: &'static str,
    x: &Array,
    wt: &Array,
    p: &Conv2dOptions,
    shown: &dyn Debug,
    one_d: bool,
) -> Result<Array> {
    check_dtypes(op, ("input", x), ("weight", wt))?;
    let g = geometry(op, x.shape(), wt.shape(), p, shown, one_d)?;
    let (xc, wc) = (x.contiguous(), wt.contiguous());
    Ok(match x.dtype() {
        DType::F32 if winograd::fits(&g) => run::<f32>(winograd::forward, &g, &xc, &wc, &g.out_shape()),
        DType::F32 => run::<f32>(forward, &g, &xc, &wc, &g.out_shape()),
        DType::F64 => run::<f64>(forward, &g, &xc, &wc, &g.out_shape()),
        _ => unreachable!("checked float"),
    })
}

fn conv_input_grad(
    op: &'static str,
    gout: &Array,
    wt: &Array,
    input_shape: &[usize],
    p: &Conv2dOptions,
    shown: &dyn Debug,
    one_d: bool,
) -> Result<Array> {
    check_dtypes(op, ("grad_out", gout), ("weight", wt))?;
    let g = geometry(op, input_shape, wt.shape(), p, shown, one_d)?;
    check_grad_shape(op, &g, gout)?;
    let (gc, wc) = (gout.contiguous(), wt.contiguous());
    Ok(match gout.dtype() {
        DType::F32 if winograd::fits(&g) => run::<f32>(winograd::input_grad, &g, &gc, &wc, input_shape),
        DType::F32 => run::<f32>(input_grad, &g, &gc, &wc, input_shape),
        DType::F64 => run::<f64>(input_grad, &g, &gc, &wc, input_shape),
        _ => unreachable!("checked float"),
    })
}

fn conv_weight_grad(
    op: &'static str,
    x: &Array,
    gout: &Array,
    weight_shape: &[usize],
    p: &Conv2dOptions,
    shown: &dyn Debug,
    one_d: bool,
) -> Result<Array> {
    check_dtypes(op, ("input", x), ("grad_out", gout))?;
    let g = geometry(op, x.shape(), weight_shape, p, shown, one_d)?;
    check_grad_shape(op, &g, gout)?;
    let (xc, gc) = (x.contiguous(), gout.contiguous());
    Ok(match x.dtype() {
        DType::F32 if winograd::fits(&g) => run::<f32>(winograd::weight_grad, &g, &xc, &gc, weight_shape),
        DType::F32 => run::<f32>(weight_grad, &g, &xc, &gc, weight_shape),
        DType::F64 => run::<f64>(weight_grad, &g, &xc, &gc, weight_shape),
        _ => unreachable!("checked float"),
    })
}

impl Array {
    /// 2-D convolution (cross-correlation, as PyTorch's `conv2d` without bias).
    ///
    /// `self` is `[N, C, H, W]`, `weight` is `[O, C/groups, KH, KW]`; the result is
    /// `[N, O, OH, OW]` with `OH = (H + 2·padding − dilation·(KH − 1) − 1) / stride + 1` (and
    /// likewise `OW`). `f32` and `f64`. Panics, naming the shapes and the caller's line, on
    /// wrong ranks, dtypes, channel counts that do not match `groups`, non-positive
    /// stride/dilation/groups, or a kernel larger than the padded input.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// use adjoint_tensor::ops::conv::Conv2dOptions;
    /// let x = Array::from_vec((0..9).map(|v| v as f32).collect(), &[1, 1, 3, 3]);
    /// let w = Array::from_vec(vec![1.0f32; 4], &[1, 1, 2, 2]);
    /// let y = x.conv2d(&w, &Conv2dOptions::default());
    /// assert_eq!(y.shape(), &[1, 1, 2, 2]);
    /// assert_eq!(y.to_vec::<f32>(), vec![8.0, 12.0, 20.0, 24.0]);
    /// ```
    #[track_caller]
    pub fn conv2d(&self, weight: &Array, p: &Conv2dOptions) -> Array {
        self.try_conv2d(weight, p).or_fail()
    }

    /// Fallible [`conv2d`](Self::conv2d).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// use adjoint_tensor::ops::conv::Conv2dOptions;
    /// let x = Array::zeros(&[1, 3, 8, 8], DType::F32);
    /// let w = Array::zeros(&[4, 2, 3, 3], DType::F32);
    /// let err = x.try_conv2d(&w, &Conv2dOptions::default()).unwrap_err();
    /// assert_eq!(err.op, "conv2d");
    /// ```
    pub fn try_conv2d(&self, weight: &Array, p: &Conv2dOptions) -> Result<Array> {
        conv_forward("conv2d", self, weight, p, p, false)
    }

    /// Gradient of `conv2d` with respect to its input: the `x̄` with
    /// `⟨conv2d(x, w), grad_out⟩ = ⟨x, x̄⟩` for every `x` (a transposed convolution).
    ///
    /// `grad_out` must have the shape `conv2d` gives for `input_shape` and `weight`.
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// use adjoint_tensor::ops::conv::Conv2dOptions;
    /// let w = Array::ones(&[1, 1, 2, 2], DType::F64);
    /// let g = Array::ones(&[1, 1, 2, 2], DType::F64);
    /// let dx = Array::conv2d_input_grad(&g, &w, &[1, 1, 3, 3], &Conv2dOptions::default());
    /// assert_eq!(dx.to_vec::<f64>(), vec![1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn conv2d_input_grad(
        grad_out: &Array,
        weight: &Array,
        input_shape: &[usize],
        p: &Conv2dOptions,
    ) -> Array {
        Self::try_conv2d_input_grad(grad_out, weight, input_shape, p).or_fail()
    }

    /// Fallible [`conv2d_input_grad`](Self::conv2d_input_grad).
    pub fn try_conv2d_input_grad(
        grad_out: &Array,
        weight: &Array,
        input_shape: &[usize],
        p: &Conv2dOptions,
    ) -> Result<Array> {
        conv_input_grad("conv2d_input_grad", grad_out, weight, input_shape, p, p, false)
    }

    /// Gradient of `conv2d` with respect to its weight: the `w̄` with
    /// `⟨conv2d(x, w), grad_out⟩ = ⟨w, w̄⟩` for every `w`.
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// use adjoint_tensor::ops::conv::Conv2dOptions;
    /// let x = Array::from_vec((0..9).map(|v| v as f64).collect(), &[1, 1, 3, 3]);
    /// let g = Array::ones(&[1, 1, 2, 2], DType::F64);
    /// let dw = Array::conv2d_weight_grad(&x, &g, &[1, 1, 2, 2], &Conv2dOptions::default());
    /// assert_eq!(dw.to_vec::<f64>(), vec![8.0, 12.0, 20.0, 24.0]);
    /// ```
    #[track_caller]
    pub fn conv2d_weight_grad(
        input: &Array,
        grad_out: &Array,
        weight_shape: &[usize],
        p: &Conv2dOptions,
    ) -> Array {
        Self::try_conv2d_weight_grad(input, grad_out, weight_shape, p).or_fail()
    }

    /// Fallible [`conv2d_weight_grad`](Self::conv2d_weight_grad).
    pub fn try_conv2d_weight_grad(
        input: &Array,
        grad_out: &Array,
        weight_shape: &[usize],
        p: &Conv2dOptions,
    ) -> Result<Array> {
        conv_weight_grad("conv2d_weight_grad", input, grad_out, weight_shape, p, p, false)
    }

    /// 1-D convolution (as PyTorch's `conv1d` without bias): `self` is `[N, C, L]`, `weight` is
    /// `[O, C/groups, K]`, the result `[N, O, OL]`. Panics as [`conv2d`](Self::conv2d).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// use adjoint_tensor::ops::conv::Conv1dOptions;
    /// let x = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[1, 1, 4]);
    /// let w = Array::from_vec(vec![1.0f32, -1.0], &[1, 1, 2]);
    /// let p = Conv1dOptions { padding: 1, ..Default::default() };
    /// assert_eq!(x.conv1d(&w, &p).to_vec::<f32>(), vec![-1.0, -1.0, -1.0, -1.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn conv1d(&self, weight: &Array, p: &Conv1dOptions) -> Array {
        self.try_conv1d(weight, p).or_fail()
    }

    /// Fallible [`conv1d`](Self::conv1d).
    pub fn try_conv1d(&self, weight: &Array, p: &Conv1dOptions) -> Result<Array> {
        conv_forward("conv1d", self, weight, &p.to_2d(), p, true)
    }

    /// Gradient of `conv1d` with respect to its input (see
    /// [`conv2d_input_grad`](Self::conv2d_input_grad)).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// use adjoint_tensor::ops::conv::Conv1dOptions;
    /// let w = Array::from_vec(vec![1.0f64, -1.0], &[1, 1, 2]);
    /// let g = Array::ones(&[1, 1, 3], DType::F64);
    /// let dx = Array::conv1d_input_grad(&g, &w, &[1, 1, 4], &Conv1dOptions::default());
    /// assert_eq!(dx.to_vec::<f64>(), vec![1.0, 0.0, 0.0, -1.0]);
    /// ```
    #[track_caller]
    pub fn conv1d_input_grad(
        grad_out: &Array,
        weight: &Array,
        input_shape: &[usize],
        p: &Conv1dOptions,
    ) -> Array {
        Self::try_conv1d_input_grad(grad_out, weight, input_shape, p).or_fail()
    }

    /// Fallible [`conv1d_input_grad`](Self::conv1d_input_grad).
    pub fn try_conv1d_input_grad(
        grad_out: &Array,
        weight: &Array,
        input_shape: &[usize],
        p: &Conv1dOptions,
    ) -> Result<Array> {
        conv_input_grad("conv1d_input_grad", grad_out, weight, input_shape, &p.to_2d(), p, true)
    }

    /// Gradient of `conv1d` with respect to its weight (see
    /// [`conv2d_weight_grad`](Self::conv2d_weight_grad)).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// use adjoint_tensor::ops::conv::Conv1dOptions;
    /// let x = Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[1, 1, 4]);
    /// let g = Array::ones(&[1, 1, 3], DType::F64);
    /// let dw = Array::conv1d_weight_grad(&x, &g, &[1, 1, 2], &Conv1dOptions::default());
    /// assert_eq!(dw.to_vec::<f64>(), vec![6.0, 9.0]);
    /// ```
    #[track_caller]
    pub fn conv1d_weight_grad(
        input: &Array,
        grad_out: &Array,
        weight_shape: &[usize],
        p: &Conv1dOptions,
    ) -> Array {
        Self::try_conv1d_weight_grad(input, grad_out, weight_shape, p).or_fail()
    }

    /// Fallible [`conv1d_weight_grad`](Self::conv1d_weight_grad).
    pub fn try_conv1d_weight_grad(
        input: &Array,
        grad_out: &Array,
        weight_shape: &[usize],
        p: &Conv1dOptions,
    ) -> Result<Array> {
        conv_weight_grad("conv1d_weight_grad", input, grad_out, weight_shape, &p.to_2d(), p, true)
    }
}
