//! Max and average pooling over `[N, C, H, W]` (2-D) and `[N, C, L]` (1-D), with their backward
//! kernels (PyTorch semantics, `ceil_mode = false`, no dilation).
//!
//! ## Design choices
//! - **Planes are independent**: every kernel walks one `(n, c)` plane at a time and writes only
//!   that plane's output, so large inputs split across rayon by plane with no synchronisation.
//! - **Padding is skipped, not materialised.** Windows are clipped to the image; for max pooling
//!   that is the same as padding with `-inf` (PyTorch's rule, and `padding ≤ kernel/2` keeps a
//!   real element in every window), for average pooling `count_include_pad` picks the divisor.
//! - **Max pooling records where each maximum came from** as a flat `h·W + w` index into its
//!   input plane (PyTorch's convention); the backward kernel scatter-adds through those indices,
//!   so it needs neither the input nor the pooling parameters. Ties go to the first maximum in
//!   row-major window order; a NaN in a window wins (NaN propagates).
//! - **The 2×2, stride-2 window has its own loop** (`max_2x2_plane`): the four candidates are
//!   read directly instead of clipping a window per output, with the same tie and NaN rule.
//! - **1-D pooling is 2-D pooling with `H = 1`**: the memory of `[N, C, L]` is that of
//!   `[N, C, 1, L]`.

use std::fmt::Debug;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::array::Array;
use crate::dtype::{DType, FloatElement};
use crate::ensure;
use crate::error::{OrFail, Result, TensorError};
use crate::ops::parallel;
use crate::ops::simd::{dispatch_simd, simd_builds};
use crate::storage::filled;

/// Window of a 2-D pooling (`[height, width]` order), as PyTorch's `max_pool2d`/`avg_pool2d`.
///
/// ```
/// use adjoint_tensor::ops::pool::Pool2dOptions;
/// let p = Pool2dOptions::new([2, 2]);
/// assert_eq!(p, Pool2dOptions { kernel: [2, 2], stride: [2, 2], padding: [0, 0] });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dOptions {
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit padding on both sides (at most half the kernel).
    pub padding: [usize; 2],
}

impl Pool2dOptions {
    /// Non-overlapping windows: stride equal to the kernel, no padding (PyTorch's default).
    pub fn new(kernel: [usize; 2]) -> Self {
        Pool2dOptions { kernel, stride: kernel, padding: [0, 0] }
    }
}

/// The old name of [`Pool2dOptions`] (renamed so it is not confused with the `Params` trait
/// of `adjoint-core`).
#[deprecated(since = "0.1.0", note = "renamed to `Pool2dOptions`")]
pub type Pool2dParams = Pool2dOptions;

/// Window of a 1-D pooling over `[N, C, L]`.
///
/// ```
/// use adjoint_tensor::ops::pool::Pool1dOptions;
/// assert_eq!(Pool1dOptions::new(3).stride, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool1dOptions {
    /// Window size.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Implicit padding on both sides (at most half the kernel).
    pub padding: usize,
}

impl Pool1dOptions {
    /// Non-overlapping windows: stride equal to the kernel, no padding.
    pub fn new(kernel: usize) -> Self {
        Pool1dOptions { kernel, stride: kernel, padding: 0 }
    }

    fn to_2d(self) -> Pool2dOptions {
        Pool2dOptions { kernel: [1, self.kernel], stride: [1, self.stride], padding: [0, self.padding] }
    }
}

/// Sizes of one pooling in 2-D terms.
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    p: Pool2dOptions,
    one_d: bool,
}

impl Geom {
    fn user_shape(&self, [a, b, h, w]: [usize; 4]) -> Vec<usize> {
        if self.one_d {
            vec![a, b, w]
        } else {
            vec![a, b, h, w]
        }
    }
    fn out_shape(&self) -> Vec<usize> {
        self.user_shape([self.n, self.c, self.oh, self.ow])
    }
    fn in_plane(&self) -> usize {
        self.h * self.w
    }
    fn out_plane(&self) -> usize {
        self.oh * self.ow
    }
    fn parallel(&self) -> bool {
        parallel(self.n * self.c * self.out_plane() * self.p.kernel[0] * self.p.kernel[1])
    }
    /// The window of output `(oh, ow)` clipped to the image: input rows `h0..h1`, columns
    /// `w0..w1`, and the window's area clipped to the padded image instead.
    #[inline]
    fn window(&self, oh: usize, ow: usize) -> (usize, usize, usize, usize, usize) {
        let clip = |o: usize, k: usize, s: usize, p: usize, size: usize| {
            let start = (o * s) as isize - p as isize;
            let end = (start + k as isize).min((size + p) as isize);
            let padded = (end - start) as usize;
            (start.max(0) as usize, (end.max(0) as usize).min(size), padded)
        };
        let p = &self.p;
        let (h0, h1, ah) = clip(oh, p.kernel[0], p.stride[0], p.padding[0], self.h);
        let (w0, w1, aw) = clip(ow, p.kernel[1], p.stride[1], p.padding[1], self.w);
        (h0, h1, w0, w1, ah * aw)
    }
}

/// The output shape of 2-D pooling for this input shape, checking it without running a kernel.
///
/// ```
/// use adjoint_tensor::ops::pool::{pool2d_output_shape, Pool2dOptions};
/// assert_eq!(pool2d_output_shape(&[1, 2, 4, 4], &Pool2dOptions::new([2, 2])).unwrap(), vec![1, 2, 2, 2]);
/// assert!(pool2d_output_shape(&[1, 2, 4], &Pool2dOptions::new([2, 2])).is_err());
/// ```
pub fn pool2d_output_shape(input: &[usize], p: &Pool2dOptions) -> Result<Vec<usize>> {
    geometry("pool2d", input, p, p, false).map(|g| g.out_shape())
}

fn geometry(
    op: &'static str,
    x: &[usize],
    p: &Pool2dOptions,
    shown: &dyn Debug,
    one_d: bool,
) -> Result<Geom> {
    let (rank, layout) = if one_d { (3, "[N, C, L]") } else { (4, "[N, C, H, W]") };
    ensure!(x.len() == rank, op, "input must be {layout}, got shape {x:?}");
    let [n, c, h, w] = if one_d { [x[0], x[1], 1, x[2]] } else { [x[0], x[1], x[2], x[3]] };
    ensure!(h >= 1 && w >= 1, op, "input {x:?} has an empty spatial dim");
    ensure!(
        p.kernel.iter().chain(&p.stride).all(|&v| v >= 1),
        op,
        "kernel and stride must be positive, got {shown:?} (input {x:?})"
    );
    ensure!(
        p.padding[0] <= p.kernel[0] / 2 && p.padding[1] <= p.kernel[1] / 2,
        op,
        "padding must be at most half the kernel size, got {shown:?} (input {x:?})"
    );
    let len = |size: usize, i: usize| {
        (size + 2 * p.padding[i]).checked_sub(p.kernel[i]).map(|r| r / p.stride[i] + 1)
    };
    let (Some(oh), Some(ow)) = (len(h, 0), len(w, 1)) else {
        return Err(TensorError::new(
            op,
            format!("kernel is larger than the padded input {x:?} with {shown:?}"),
        ));
    };
    Ok(Geom { n, c, h, w, oh, ow, p: *p, one_d })
}

fn check_float(op: &'static str, name: &str, a: &Array) -> Result<()> {
    ensure!(a.dtype().is_float(), op, "needs a float32 or float64 {name}, got {} {:?}", a.dtype(), a.shape());
    Ok(())
}

/// Run `f(plane_index, out_plane)` over `out` split into planes, in parallel when large.
fn planes<T: Send>(out: &mut [T], plane: usize, parallel: bool, f: impl Fn(usize, &mut [T]) + Sync) {
    if out.is_empty() || plane == 0 {
        return;
    }
    if parallel {
        out.par_chunks_mut(plane).enumerate().for_each(|(i, o)| f(i, o));
    } else {
        out.chunks_mut(plane).enumerate().for_each(|(i, o)| f(i, o));
    }
}

/// Max pooling of one plane with the common 2×2, stride-2, unpadded window: the four candidates
/// are read directly instead of through `Geom::window`, with the same rule as the general scan
/// (the first NaN in row-major window order wins, else the first maximum), in the widest SIMD
/// build the CPU runs.
fn max_2x2_plane<T: FloatElement>(
    g: &Geom,
    plane: &[T],
    o: &mut [MaybeUninit<T>],
    ix: &mut [MaybeUninit<i64>],
) {
    if g.ow < VECTOR_ROW {
        return max_2x2_scalar(g, plane, o, ix);
    }
    dispatch_simd!(max_2x2_body, max_2x2_avx2, max_2x2_avx512, (g, plane, o, ix))
}

/// [`max_2x2_plane`]'s body. Branch-free so that it vectorises: a candidate replaces the best so
/// far when that is not NaN and the candidate is not `<=` it — larger, or NaN — which is the
/// scan's rule (once a NaN is best nothing replaces it). Rows of fewer than [`VECTOR_ROW`]
/// outputs never fill a vector; they keep the branchy scalar loop, which was faster there
/// (`conv_bench`, `[64, 64, 14, 14]`: 0.60–0.69 against 0.82–0.84 ms on one thread; the
/// `[64, 32, 28, 28]` planes went from 1.16–1.39 to 0.84–0.91 ms).
#[inline(always)]
fn max_2x2_body<T: FloatElement>(
    g: &Geom,
    plane: &[T],
    o: &mut [MaybeUninit<T>],
    ix: &mut [MaybeUninit<i64>],
) {
    // `best == best`: not NaN; `!(c <= best)`: larger, or NaN (the negation is the point).
    #[allow(clippy::eq_op, clippy::neg_cmp_op_on_partial_ord)]
    let take = |best: T, c: T| best == best && !(c <= best);
    for oh in 0..g.oh {
        let (r0, r1) = (2 * oh * g.w, (2 * oh + 1) * g.w);
        let (top, bottom) = (&plane[r0..r0 + 2 * g.ow], &plane[r1..r1 + 2 * g.ow]);
        let (orow, irow) = (&mut o[oh * g.ow..(oh + 1) * g.ow], &mut ix[oh * g.ow..(oh + 1) * g.ow]);
        let (r0, r1) = (r0 as i64, r1 as i64);
        for ow in 0..g.ow {
            let (t0, t1, b0, b1) = (top[2 * ow], top[2 * ow + 1], bottom[2 * ow], bottom[2 * ow + 1]);
            let (mut best, mut at) = (t0, r0);
            if take(best, t1) {
                (best, at) = (t1, r0 + 1);
            }
            if take(best, b0) {
                (best, at) = (b0, r1);
            }
            if take(best, b1) {
                (best, at) = (b1, r1 + 1);
            }
            orow[ow].write(best);
            irow[ow].write(at + 2 * ow as i64);
        }
    }
}

/// The shortest output row [`max_2x2_body`] runs branch-free.
const VECTOR_ROW: usize = 8;

/// [`max_2x2_plane`] for short rows: each window scanned with branches (the generic build; in
/// the AVX-512 build this loop ran 2.7× slower on `[64, 64, 14, 14]`).
fn max_2x2_scalar<T: FloatElement>(
    g: &Geom,
    plane: &[T],
    o: &mut [MaybeUninit<T>],
    ix: &mut [MaybeUninit<i64>],
) {
    for oh in 0..g.oh {
        let (r0, r1) = (2 * oh * g.w, (2 * oh + 1) * g.w);
        let (top, bottom) = (&plane[r0..r0 + 2 * g.ow], &plane[r1..r1 + 2 * g.ow]);
        let (orow, irow) = (&mut o[oh * g.ow..(oh + 1) * g.ow], &mut ix[oh * g.ow..(oh + 1) * g.ow]);
        for (ow, ((t, b), (ov, iv))) in top
            .chunks_exact(2)
            .zip(bottom.chunks_exact(2))
            .zip(orow.iter_mut().zip(irow.iter_mut()))
            .enumerate()
        {
            let cands = [(t[0], r0), (t[1], r0 + 1), (b[0], r1), (b[1], r1 + 1)];
            let (mut best, mut at) = cands[0];
            if !best.is_nan() {
                for (v, j) in cands.into_iter().skip(1) {
                    if v.is_nan() {
                        (best, at) = (v, j);
                        break;
                    }
                    if v > best {
                        (best, at) = (v, j);
                    }
                }
            }
            ov.write(best);
            iv.write((at + 2 * ow) as i64);
        }
    }
}

simd_builds!(max_2x2_body => max_2x2_avx2, max_2x2_avx512, [T: FloatElement], (g: &Geom, plane: &[T], o: &mut [MaybeUninit<T>], ix: &mut [MaybeUninit<i64>]));

/// Max pooling's values and indices. Both outputs are written once, plane by plane, into
/// uninitialised buffers (zeroing both first was a serial pass before the parallel one).
fn max_kernel<T: FloatElement>(g: &Geom, x: &[T]) -> (Vec<T>, Vec<i64>) {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let len = g.n * g.c * op;
    let (mut out, mut idx): (Vec<T>, Vec<i64>) = (crate::cache::take(len), crate::cache::take(len));
    let body = |i: usize, (o, ix): (&mut [MaybeUninit<T>], &mut [MaybeUninit<i64>])| {
        let plane = &x[i * ip..(i + 1) * ip];
        if g.p == Pool2dOptions::new([2, 2]) {
            return max_2x2_plane(g, plane, o, ix);
        }
        for oh in 0..g.oh {
            for ow in 0..g.ow {
                let (h0, h1, w0, w1, _) = g.window(oh, ow);
                let mut best = h0 * g.w + w0;
                'scan: for h in h0..h1 {
                    for j in h * g.w + w0..h * g.w + w1 {
                        let v = plane[j];
                        if v > plane[best] || v.is_nan() {
                            best = j;
                            if v.is_nan() {
                                break 'scan;
                            }
                        }
                    }
                }
                o[oh * g.ow + ow].write(plane[best]);
                ix[oh * g.ow + ow].write(best as i64);
            }
        }
    };
    if len > 0 && op > 0 {
        let (o, ix) = (&mut out.spare_capacity_mut()[..len], &mut idx.spare_capacity_mut()[..len]);
        if g.parallel() {
            o.par_chunks_mut(op).zip(ix.par_chunks_mut(op)).enumerate().for_each(|(i, p)| body(i, p));
        } else {
            o.chunks_mut(op).zip(ix.chunks_mut(op)).enumerate().for_each(|(i, p)| body(i, p));
        }
    }
    // SAFETY: each plane's body writes all `op` values and indices of its plane (every output
    // position of the 2×2 loop or of the window scan), and the planes cover `0..len`; with
    // `len = 0` or `op = 0` there is nothing to write.
    unsafe {
        out.set_len(len);
        idx.set_len(len);
    }
    (out, idx)
}

fn avg_kernel<T: FloatElement>(g: &Geom, x: &[T], include_pad: bool) -> Vec<T> {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let mut out = filled(g.n * g.c * op, T::zero());
    planes(&mut out, op, g.parallel(), |i, o| {
        let plane = &x[i * ip..(i + 1) * ip];
        for oh in 0..g.oh {
            for ow in 0..g.ow {
                let (h0, h1, w0, w1, area) = g.window(oh, ow);
                let mut s = T::zero();
                for h in h0..h1 {
                    for &v in &plane[h * g.w + w0..h * g.w + w1] {
                        s = s + v;
                    }
                }
                let count = if include_pad { area } else { (h1 - h0) * (w1 - w0) };
                o[oh * g.ow + ow] = s / T::from_f64(count as f64);
            }
        }
    });
    out
}

fn avg_backward_kernel<T: FloatElement>(g: &Geom, gout: &[T], include_pad: bool) -> Vec<T> {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let mut dx = filled(g.n * g.c * ip, T::zero());
    planes(&mut dx, ip, g.parallel(), |i, d| {
        let go = &gout[i * op..(i + 1) * op];
        for oh in 0..g.oh {
            for ow in 0..g.ow {
                let (h0, h1, w0, w1, area) = g.window(oh, ow);
                let count = if include_pad { area } else { (h1 - h0) * (w1 - w0) };
                let share = go[oh * g.ow + ow] / T::from_f64(count as f64);
                for h in h0..h1 {
                    for v in &mut d[h * g.w + w0..h * g.w + w1] {
                        *v = *v + share;
                    }
                }
            }
        }
    });
    dx
}

fn max_backward_kernel<T: FloatElement>(gout: &[T], idx: &[i64], planes_n: usize, ip: usize) -> Vec<T> {
    let mut dx = filled(planes_n * ip, T::zero());
    let op = gout.len().checked_div(planes_n).unwrap_or(0);
    planes(&mut dx, ip, parallel(gout.len()), |i, d| {
        for (&gv, &j) in gout[i * op..(i + 1) * op].iter().zip(&idx[i * op..(i + 1) * op]) {
            d[j as usize] = d[j as usize] + gv;
        }
    });
    dx
}

fn max_pool(
    op: &'static str,
    x: &Array,
    p: &Pool2dOptions,
    shown: &dyn Debug,
    one_d: bool,
) -> Result<(Array, Array)> {
    check_float(op, "input", x)?;
    let g = geometry(op, x.shape(), p, shown, one_d)?;
    let xc = x.contiguous();
    let (out, idx) = match x.dtype() {
        DType::F32 => {
            let (o, i) = max_kernel::<f32>(&g, xc.as_slice().unwrap());
            (Array::from_vec(o, &g.out_shape()), i)
        }
        DType::F64 => {
            let (o, i) = max_kernel::<f64>(&g, xc.as_slice().unwrap());
            (Array::from_vec(o, &g.out_shape()), i)
        }
        _ => unreachable!("checked float"),
    };
    Ok((out, Array::from_vec(idx, &g.out_shape())))
}

fn avg_pool(
    op: &'static str,
    x: &Array,
    p: &Pool2dOptions,
    include_pad: bool,
    shown: &dyn Debug,
    one_d: bool,
) -> Result<Array> {
    check_float(op, "input", x)?;
    let g = geometry(op, x.shape(), p, shown, one_d)?;
    let xc = x.contiguous();
    Ok(match x.dtype() {
        DType::F32 => {
            Array::from_vec(avg_kernel::<f32>(&g, xc.as_slice().unwrap(), include_pad), &g.out_shape())
        }
        DType::F64 => {
            Array::from_vec(avg_kernel::<f64>(&g, xc.as_slice().unwrap(), include_pad), &g.out_shape())
        }
        _ => unreachable!("checked float"),
    })
}

fn avg_pool_backward(
    op: &'static str,
    gout: &Array,
    input_shape: &[usize],
    p: &Pool2dOptions,
    include_pad: bool,
    shown: &dyn Debug,
    one_d: bool,
) -> Result<Array> {
    check_float(op, "grad_out", gout)?;
    let g = geometry(op, input_shape, p, shown, one_d)?;
    ensure!(
        gout.shape() == g.out_shape().as_slice(),
        op,
        "grad_out has shape {:?}, but pooling input {input_shape:?} with {shown:?} gives {:?}",
        gout.shape(),
        g.out_shape()
    );
    let gc = gout.contiguous();
    Ok(match gout.dtype() {
        DType::F32 => {
            Array::from_vec(avg_backward_kernel::<f32>(&g, gc.as_slice().unwrap(), include_pad), input_shape)
        }
        DType::F64 => {
            Array::from_vec(avg_backward_kernel::<f64>(&g, gc.as_slice().unwrap(), include_pad), input_shape)
        }
        _ => unreachable!("checked float"),
    })
}

fn max_pool_backward(
    op: &'static str,
    gout: &Array,
    indices: &Array,
    input_shape: &[usize],
    one_d: bool,
) -> Result<Array> {
    check_float(op, "grad_out", gout)?;
    let (rank, layout) = if one_d { (3, "[N, C, L]") } else { (4, "[N, C, H, W]") };
    let (gs, is) = (gout.shape(), indices.shape());
    ensure!(
        input_shape.len() == rank && gs.len() == rank,
        op,
        "input shape {input_shape:?} and grad_out {gs:?} must be {layout}"
    );
    ensure!(
        indices.dtype() == DType::I64 && is == gs,
        op,
        "indices must be int64 of the grad_out shape {gs:?}, got {} {is:?}",
        indices.dtype()
    );
    ensure!(
        gs[..2] == input_shape[..2],
        op,
        "grad_out {gs:?} and input shape {input_shape:?} differ in batch or channels"
    );
    let ip: usize = input_shape[2..].iter().product();
    let idx = indices.to_vec::<i64>();
    if let Some(&bad) = idx.iter().find(|&&j| j < 0 || j as usize >= ip) {
        return Err(TensorError::new(
            op,
            format!("index {bad} is outside an input plane of {ip} elements (input shape {input_shape:?})"),
        ));
    }
    let planes_n = input_shape[0] * input_shape[1];
    let gc = gout.contiguous();
    Ok(match gout.dtype() {
        DType::F32 => Array::from_vec(
            max_backward_kernel::<f32>(gc.as_slice().unwrap(), &idx, planes_n, ip),
            input_shape,
        ),
        DType::F64 => Array::from_vec(
            max_backward_kernel::<f64>(gc.as_slice().unwrap(), &idx, planes_n, ip),
            input_shape,
        ),
        _ => unreachable!("checked float"),
    })
}

impl Array {
    /// 2-D max pooling over `[N, C, H, W]` (padding counts as `-inf`, as PyTorch).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// use adjoint_tensor::ops::pool::Pool2dOptions;
    /// let x = Array::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4]);
    /// let y = x.max_pool2d(&Pool2dOptions::new([2, 2]));
    /// assert_eq!(y.to_vec::<f32>(), vec![5.0, 7.0, 13.0, 15.0]);
    /// ```
    #[track_caller]
    pub fn max_pool2d(&self, p: &Pool2dOptions) -> Array {
        self.try_max_pool2d(p).or_fail()
    }

    /// Fallible [`max_pool2d`](Self::max_pool2d).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// use adjoint_tensor::ops::pool::Pool2dOptions;
    /// let x = Array::zeros(&[1, 1, 4, 4], DType::F32);
    /// let p = Pool2dOptions { kernel: [2, 2], stride: [1, 1], padding: [2, 0] };
    /// assert_eq!(x.try_max_pool2d(&p).unwrap_err().op, "max_pool2d");
    /// ```
    pub fn try_max_pool2d(&self, p: &Pool2dOptions) -> Result<Array> {
        max_pool("max_pool2d", self, p, p, false).map(|(o, _)| o)
    }

    /// 2-D max pooling that also returns, for each output, the flat index `h·W + w` of its
    /// maximum inside its input plane (`int64`, PyTorch's convention; first maximum on ties).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// use adjoint_tensor::ops::pool::Pool2dOptions;
    /// let x = Array::from_vec(vec![1.0f64, 9.0, 3.0, 4.0], &[1, 1, 2, 2]);
    /// let (y, i) = x.max_pool2d_with_indices(&Pool2dOptions::new([2, 2]));
    /// assert_eq!((y.to_vec::<f64>(), i.to_vec::<i64>()), (vec![9.0], vec![1]));
    /// ```
    #[track_caller]
    pub fn max_pool2d_with_indices(&self, p: &Pool2dOptions) -> (Array, Array) {
        self.try_max_pool2d_with_indices(p).or_fail()
    }

    /// Fallible [`max_pool2d_with_indices`](Self::max_pool2d_with_indices).
    pub fn try_max_pool2d_with_indices(&self, p: &Pool2dOptions) -> Result<(Array, Array)> {
        max_pool("max_pool2d_with_indices", self, p, p, false)
    }

    /// 2-D average pooling over `[N, C, H, W]`. With `count_include_pad` the divisor is the
    /// whole window, padding included; without, only the elements inside the image count.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// use adjoint_tensor::ops::pool::Pool2dOptions;
    /// let x = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    /// let p = Pool2dOptions { kernel: [2, 2], stride: [2, 2], padding: [1, 1] };
    /// assert_eq!(x.avg_pool2d(&p, true).to_vec::<f32>(), vec![0.25, 0.5, 0.75, 1.0]);
    /// assert_eq!(x.avg_pool2d(&p, false).to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn avg_pool2d(&self, p: &Pool2dOptions, count_include_pad: bool) -> Array {
        self.try_avg_pool2d(p, count_include_pad).or_fail()
    }

    /// Fallible [`avg_pool2d`](Self::avg_pool2d).
    pub fn try_avg_pool2d(&self, p: &Pool2dOptions, count_include_pad: bool) -> Result<Array> {
        avg_pool("avg_pool2d", self, p, count_include_pad, p, false)
    }

    /// Gradient of [`avg_pool2d`](Self::avg_pool2d): each output's gradient is shared evenly
    /// (by the same divisor) over its window.
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// use adjoint_tensor::ops::pool::Pool2dOptions;
    /// let g = Array::ones(&[1, 1, 1, 1], DType::F32);
    /// let dx = Array::avg_pool2d_backward(&g, &[1, 1, 2, 2], &Pool2dOptions::new([2, 2]), true);
    /// assert_eq!(dx.to_vec::<f32>(), vec![0.25; 4]);
    /// ```
    #[track_caller]
    pub fn avg_pool2d_backward(
        grad_out: &Array,
        input_shape: &[usize],
        p: &Pool2dOptions,
        count_include_pad: bool,
    ) -> Array {
        Self::try_avg_pool2d_backward(grad_out, input_shape, p, count_include_pad).or_fail()
    }

    /// Fallible [`avg_pool2d_backward`](Self::avg_pool2d_backward).
    pub fn try_avg_pool2d_backward(
        grad_out: &Array,
        input_shape: &[usize],
        p: &Pool2dOptions,
        count_include_pad: bool,
    ) -> Result<Array> {
        avg_pool_backward("avg_pool2d_backward", grad_out, input_shape, p, count_include_pad, p, false)
    }

    /// Gradient of [`max_pool2d`](Self::max_pool2d): each output's gradient is added at the
    /// position `indices` (from [`max_pool2d_with_indices`](Self::max_pool2d_with_indices))
    /// recorded for it.
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// use adjoint_tensor::ops::pool::Pool2dOptions;
    /// let x = Array::from_vec(vec![1.0f64, 9.0, 3.0, 4.0], &[1, 1, 2, 2]);
    /// let (_, idx) = x.max_pool2d_with_indices(&Pool2dOptions::new([2, 2]));
    /// let dx = Array::max_pool2d_backward(&Array::ones(&[1, 1, 1, 1], DType::F64), &idx, x.shape());
    /// assert_eq!(dx.to_vec::<f64>(), vec![0.0, 1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn max_pool2d_backward(grad_out: &Array, indices: &Array, input_shape: &[usize]) -> Array {
        Self::try_max_pool2d_backward(grad_out, indices, input_shape).or_fail()
    }

    /// Fallible [`max_pool2d_backward`](Self::max_pool2d_backward).
    pub fn try_max_pool2d_backward(
        grad_out: &Array,
        indices: &Array,
        input_shape: &[usize],
    ) -> Result<Array> {
        max_pool_backward("max_pool2d_backward", grad_out, indices, input_shape, false)
    }

    /// 1-D max pooling over `[N, C, L]`.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// use adjoint_tensor::ops::pool::Pool1dOptions;
    /// let x = Array::from_vec(vec![3.0f32, 1.0, 4.0, 1.0, 5.0], &[1, 1, 5]);
    /// let p = Pool1dOptions { kernel: 2, stride: 1, padding: 0 };
    /// assert_eq!(x.max_pool1d(&p).to_vec::<f32>(), vec![3.0, 4.0, 4.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn max_pool1d(&self, p: &Pool1dOptions) -> Array {
        self.try_max_pool1d(p).or_fail()
    }

    /// Fallible [`max_pool1d`](Self::max_pool1d).
    pub fn try_max_pool1d(&self, p: &Pool1dOptions) -> Result<Array> {
        max_pool("max_pool1d", self, &p.to_2d(), p, true).map(|(o, _)| o)
    }

    /// 1-D max pooling that also returns the index of each maximum along `L`.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// use adjoint_tensor::ops::pool::Pool1dOptions;
    /// let x = Array::from_vec(vec![3.0f32, 1.0, 4.0, 1.0], &[1, 1, 4]);
    /// let (_, i) = x.max_pool1d_with_indices(&Pool1dOptions::new(2));
    /// assert_eq!(i.to_vec::<i64>(), vec![0, 2]);
    /// ```
    #[track_caller]
    pub fn max_pool1d_with_indices(&self, p: &Pool1dOptions) -> (Array, Array) {
        self.try_max_pool1d_with_indices(p).or_fail()
    }

    /// Fallible [`max_pool1d_with_indices`](Self::max_pool1d_with_indices).
    pub fn try_max_pool1d_with_indices(&self, p: &Pool1dOptions) -> Result<(Array, Array)> {
        max_pool("max_pool1d_with_indices", self, &p.to_2d(), p, true)
    }

    /// 1-D average pooling over `[N, C, L]` (see [`avg_pool2d`](Self::avg_pool2d)).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// use adjoint_tensor::ops::pool::Pool1dOptions;
    /// let x = Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[1, 1, 4]);
    /// assert_eq!(x.avg_pool1d(&Pool1dOptions::new(2), true).to_vec::<f64>(), vec![1.5, 3.5]);
    /// ```
    #[track_caller]
    pub fn avg_pool1d(&self, p: &Pool1dOptions, count_include_pad: bool) -> Array {
        self.try_avg_pool1d(p, count_include_pad).or_fail()
    }

    /// Fallible [`avg_pool1d`](Self::avg_pool1d).
    pub fn try_avg_pool1d(&self, p: &Pool1dOptions, count_include_pad: bool) -> Result<Array> {
        avg_pool("avg_pool1d", self, &p.to_2d(), count_include_pad, p, true)
    }

    /// Gradient of [`avg_pool1d`](Self::avg_pool1d).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// use adjoint_tensor::ops::pool::Pool1dOptions;
    /// let g = Array::ones(&[1, 1, 2], DType::F64);
    /// let dx = Array::avg_pool1d_backward(&g, &[1, 1, 4], &Pool1dOptions::new(2), true);
    /// assert_eq!(dx.to_vec::<f64>(), vec![0.5; 4]);
    /// ```
    #[track_caller]
    pub fn avg_pool1d_backward(
        grad_out: &Array,
        input_shape: &[usize],
        p: &Pool1dOptions,
        count_include_pad: bool,
    ) -> Array {
        Self::try_avg_pool1d_backward(grad_out, input_shape, p, count_include_pad).or_fail()
    }

    /// Fallible [`avg_pool1d_backward`](Self::avg_pool1d_backward).
    pub fn try_avg_pool1d_backward(
        grad_out: &Array,
        input_shape: &[usize],
        p: &Pool1dOptions,
        count_include_pad: bool,
    ) -> Result<Array> {
        avg_pool_backward(
            "avg_pool1d_backward",
            grad_out,
            input_shape,
            &p.to_2d(),
            count_include_pad,
            p,
            true,
        )
    }

    /// Gradient of [`max_pool1d`](Self::max_pool1d), through the indices of
    /// [`max_pool1d_with_indices`](Self::max_pool1d_with_indices).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// let idx = Array::from_vec(vec![0i64, 2], &[1, 1, 2]);
    /// let g = Array::from_vec(vec![1.0f32, 2.0], &[1, 1, 2]);
    /// let dx = Array::max_pool1d_backward(&g, &idx, &[1, 1, 4]);
    /// assert_eq!(dx.to_vec::<f32>(), vec![1.0, 0.0, 2.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn max_pool1d_backward(grad_out: &Array, indices: &Array, input_shape: &[usize]) -> Array {
        Self::try_max_pool1d_backward(grad_out, indices, input_shape).or_fail()
    }

    /// Fallible [`max_pool1d_backward`](Self::max_pool1d_backward).
    pub fn try_max_pool1d_backward(
        grad_out: &Array,
        indices: &Array,
        input_shape: &[usize],
    ) -> Result<Array> {
        max_pool_backward("max_pool1d_backward", grad_out, indices, input_shape, true)
    }
}
