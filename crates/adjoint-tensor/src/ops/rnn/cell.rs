//! The single-step cells [`lstm_cell`], [`gru_cell`] and their reverse passes. Each row's
//! gate loop is one `#[inline(always)]` function compiled into the SIMD builds
//! (`simd_builds!`) and dispatched per row: there `sigmoid_fast`/`tanh_fast` vectorise at the
//! widest width and their fused multiply-adds are instructions (a closure run by `for_rows`
//! would be compiled for the baseline target, where `mul_add` is a libm call).
//!
//! The inner loops index several equal-length gate slices with one counter (the form LLVM
//! vectorises once the slices are cut to length), hence `needless_range_loop` is allowed.
#![allow(clippy::needless_range_loop)]

use super::{check, for_rows, output, slices};
use crate::ops::fastmath::FastFloat;
use crate::ops::simd::{dispatch_simd, simd_builds};
use crate::{Array, DType, Element};

/// One LSTM step: `a = gx + gh` split into `(i, f, g, o)`, `c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)`,
/// `h' = σ(o) ⊙ tanh(c')`. `gx`, `gh` are `[B, 4H]`, `c` is `[B, H]`; returns `(h', c')`.
///
/// ```
/// use adjoint_tensor::{ops::rnn, Array};
/// let z = Array::from_vec(vec![0.0f64; 4], &[1, 4]);
/// let (h, c) = rnn::lstm_cell(&z, &z, &Array::from_vec(vec![2.0f64], &[1, 1]));
/// assert_eq!(c.to_vec::<f64>(), vec![1.0]); // σ(0)·2 + σ(0)·tanh(0)
/// assert!((h.to_vec::<f64>()[0] - 0.5 * 1f64.tanh()).abs() < 1e-15);
/// ```
#[track_caller]
pub fn lstm_cell(gx: &Array, gh: &Array, c: &Array) -> (Array, Array) {
    let (b, h) = check("lstm_cell", 4, gx, gh, c, &[]);
    let ins = [gx.contiguous(), gh.contiguous(), c.contiguous()];
    let refs: Vec<&Array> = ins.iter().collect();
    by_dtype!(gx.dtype(), lstm_fwd(&refs, b, h))
}

fn lstm_fwd<T: FastFloat + Element>(ins: &[&Array], b: usize, h: usize) -> (Array, Array) {
    let s = slices::<T>(ins);
    let (gx, gh, cp) = (s[0], s[1], s[2]);
    let (mut ho, mut co) = (output::<T>(b * h), output::<T>(b * h));
    for_rows(b, [(&mut ho, h), (&mut co, h)], b * h * 6, |r0, [ho, co]| {
        for (k, (ho, co)) in ho.chunks_exact_mut(h).zip(co.chunks_exact_mut(h)).enumerate() {
            let r = r0 + k;
            let (x, y, cp) =
                (&gx[r * 4 * h..(r + 1) * 4 * h], &gh[r * 4 * h..(r + 1) * 4 * h], &cp[r * h..(r + 1) * h]);
            lstm_fwd_row(x, y, cp, ho, co);
        }
    });
    (Array::from_vec(ho, &[b, h]), Array::from_vec(co, &[b, h]))
}

/// The reverse pass of [`lstm_cell`]: from the cotangents `dh`, `dc` of `(h', c')` (`[B, H]`),
/// the cotangent of the gate pre-activations `[B, 4H]` (the same for `gx` and `gh`) and that
/// of `c`. The activations are recomputed from `gx + gh` and `c`.
///
/// ```
/// use adjoint_tensor::{ops::rnn, Array};
/// let z = Array::from_vec(vec![0.0f64; 4], &[1, 4]);
/// let (c, one) = (Array::from_vec(vec![2.0f64], &[1, 1]), Array::from_vec(vec![1.0f64], &[1, 1]));
/// let (dg, dc) = rnn::lstm_cell_grad(&z, &z, &c, &Array::from_vec(vec![0.0f64], &[1, 1]), &one);
/// assert_eq!(dc.to_vec::<f64>(), vec![0.5]); // ∂c'/∂c = σ(f)
/// assert_eq!(dg.to_vec::<f64>(), vec![0.0, 0.5, 0.5, 0.0]); // σ'(0)·2 for f, σ(i) for g
/// ```
#[track_caller]
pub fn lstm_cell_grad(gx: &Array, gh: &Array, c: &Array, dh: &Array, dc: &Array) -> (Array, Array) {
    let (b, h) = check("lstm_cell_grad", 4, gx, gh, c, &[dh, dc]);
    let ins = [gx.contiguous(), gh.contiguous(), c.contiguous(), dh.contiguous(), dc.contiguous()];
    let refs: Vec<&Array> = ins.iter().collect();
    by_dtype!(gx.dtype(), lstm_bwd(&refs, b, h))
}

fn lstm_bwd<T: FastFloat + Element>(ins: &[&Array], b: usize, h: usize) -> (Array, Array) {
    let s = slices::<T>(ins);
    let (gx, gh, cp, dh, dc) = (s[0], s[1], s[2], s[3], s[4]);
    let (mut dg, mut dcp) = (output::<T>(b * 4 * h), output::<T>(b * h));
    for_rows(b, [(&mut dg, 4 * h), (&mut dcp, h)], b * h * 13, |r0, [dg, dcp]| {
        for (k, (dg, dcp)) in dg.chunks_exact_mut(4 * h).zip(dcp.chunks_exact_mut(h)).enumerate() {
            let r = r0 + k;
            let (x, y) = (&gx[r * 4 * h..(r + 1) * 4 * h], &gh[r * 4 * h..(r + 1) * 4 * h]);
            let rh = r * h..(r + 1) * h;
            let (cp, dh, dc) = (&cp[rh.clone()], &dh[rh.clone()], &dc[rh]);
            lstm_bwd_row([x, y, cp, dh, dc], dg, dcp);
        }
    });
    (Array::from_vec(dg, &[b, 4 * h]), Array::from_vec(dcp, &[b, h]))
}

/// One GRU step with PyTorch's equations: `(r, z) = σ(gx_rz + gh_rz)`,
/// `n = tanh(gx_n + r ⊙ gh_n)`, `h' = n + z ⊙ (h - n)`. `gx`, `gh` are `[B, 3H]` (biases
/// included: `gh_n` carries `b_hn`), `h` is `[B, H]`; returns `h'`.
///
/// ```
/// use adjoint_tensor::{ops::rnn, Array};
/// let z = Array::from_vec(vec![0.0f64; 3], &[1, 3]);
/// let h = rnn::gru_cell(&z, &z, &Array::from_vec(vec![2.0f64], &[1, 1]));
/// assert_eq!(h.to_vec::<f64>(), vec![1.0]); // n = 0, z = 1/2
/// ```
#[track_caller]
pub fn gru_cell(gx: &Array, gh: &Array, h: &Array) -> Array {
    let (b, n) = check("gru_cell", 3, gx, gh, h, &[]);
    let ins = [gx.contiguous(), gh.contiguous(), h.contiguous()];
    let refs: Vec<&Array> = ins.iter().collect();
    by_dtype!(gx.dtype(), gru_fwd(&refs, b, n))
}

fn gru_fwd<T: FastFloat + Element>(ins: &[&Array], b: usize, h: usize) -> Array {
    let s = slices::<T>(ins);
    let (gx, gh, hp) = (s[0], s[1], s[2]);
    let mut ho = output::<T>(b * h);
    for_rows(b, [(&mut ho, h)], b * h * 5, |r0, [ho]| {
        for (k, ho) in ho.chunks_exact_mut(h).enumerate() {
            let r = r0 + k;
            let (x, y, hp) =
                (&gx[r * 3 * h..(r + 1) * 3 * h], &gh[r * 3 * h..(r + 1) * 3 * h], &hp[r * h..(r + 1) * h]);
            gru_fwd_row(x, y, hp, ho);
        }
    });
    Array::from_vec(ho, &[b, h])
}

/// The reverse pass of [`gru_cell`]: from the cotangent `dh` of `h'`, the cotangents of `gx`
/// and `gh` (`[B, 3H]`; equal on the `r`, `z` gates) and of `h`.
///
/// ```
/// use adjoint_tensor::{ops::rnn, Array};
/// let z = Array::from_vec(vec![0.0f64; 3], &[1, 3]);
/// let one = Array::from_vec(vec![1.0f64], &[1, 1]);
/// let (dx, dh_gates, dh) = rnn::gru_cell_grad(&z, &z, &Array::from_vec(vec![2.0f64], &[1, 1]), &one);
/// assert_eq!(dh.to_vec::<f64>(), vec![0.5]); // ∂h'/∂h = z
/// assert_eq!(dx.to_vec::<f64>(), vec![0.0, 0.5, 0.5]); // z' = σ'(0)·(h - n) = 1/2; n: 1 - z
/// assert_eq!(dh_gates.to_vec::<f64>(), vec![0.0, 0.5, 0.25]); // n gate scaled by r = 1/2
/// ```
#[track_caller]
pub fn gru_cell_grad(gx: &Array, gh: &Array, h: &Array, dh: &Array) -> (Array, Array, Array) {
    let (b, n) = check("gru_cell_grad", 3, gx, gh, h, &[dh]);
    let ins = [gx.contiguous(), gh.contiguous(), h.contiguous(), dh.contiguous()];
    let refs: Vec<&Array> = ins.iter().collect();
    by_dtype!(gx.dtype(), gru_bwd(&refs, b, n))
}

fn gru_bwd<T: FastFloat + Element>(ins: &[&Array], b: usize, h: usize) -> (Array, Array, Array) {
    let s = slices::<T>(ins);
    let (gx, gh, hp, dh) = (s[0], s[1], s[2], s[3]);
    let (mut dx, mut dy, mut dhp) = (output::<T>(b * 3 * h), output::<T>(b * 3 * h), output::<T>(b * h));
    for_rows(b, [(&mut dx, 3 * h), (&mut dy, 3 * h), (&mut dhp, h)], b * h * 12, |r0, [dx, dy, dhp]| {
        let rows = dx.chunks_exact_mut(3 * h).zip(dy.chunks_exact_mut(3 * h)).zip(dhp.chunks_exact_mut(h));
        for (k, ((dx, dy), dhp)) in rows.enumerate() {
            let r = r0 + k;
            let (x, y) = (&gx[r * 3 * h..(r + 1) * 3 * h], &gh[r * 3 * h..(r + 1) * 3 * h]);
            let (hp, dh) = (&hp[r * h..(r + 1) * h], &dh[r * h..(r + 1) * h]);
            gru_bwd_row([x, y, hp, dh], dx, dy, dhp);
        }
    });
    (Array::from_vec(dx, &[b, 3 * h]), Array::from_vec(dy, &[b, 3 * h]), Array::from_vec(dhp, &[b, h]))
}

// ------------------------------------------------------------------------------------------
// One row of each cell, in the widest SIMD build the CPU runs
// ------------------------------------------------------------------------------------------

/// One row of [`lstm_cell`]: the gate projections `x`, `y` (`4H` each), the previous cell
/// state `cp`, and the new hidden and cell states.
fn lstm_fwd_row<T: FastFloat>(x: &[T], y: &[T], cp: &[T], ho: &mut [T], co: &mut [T]) {
    dispatch_simd!(lstm_fwd_row_generic, lstm_fwd_row_avx2, lstm_fwd_row_avx512, (x, y, cp, ho, co))
}

simd_builds!(lstm_fwd_row_generic => lstm_fwd_row_avx2, lstm_fwd_row_avx512, [T: FastFloat],
    (x: &[T], y: &[T], cp: &[T], ho: &mut [T], co: &mut [T]));

#[inline(always)]
fn lstm_fwd_row_generic<T: FastFloat>(x: &[T], y: &[T], cp: &[T], ho: &mut [T], co: &mut [T]) {
    let h = cp.len();
    let (xi, xf, xg, xo) = (&x[..h], &x[h..2 * h], &x[2 * h..3 * h], &x[3 * h..4 * h]);
    let (yi, yf, yg, yo) = (&y[..h], &y[h..2 * h], &y[2 * h..3 * h], &y[3 * h..4 * h]);
    let (ho, co) = (&mut ho[..h], &mut co[..h]);
    for j in 0..h {
        let i = (xi[j] + yi[j]).sigmoid_fast();
        let f = (xf[j] + yf[j]).sigmoid_fast();
        let g = (xg[j] + yg[j]).tanh_fast();
        let o = (xo[j] + yo[j]).sigmoid_fast();
        let c = f * cp[j] + i * g;
        co[j] = c;
        ho[j] = o * c.tanh_fast();
    }
}

/// One row of [`lstm_cell_grad`]: from `[x, y, cp, dh, dc]`, the gate cotangents `dg` (`4H`)
/// and `dcp`.
fn lstm_bwd_row<T: FastFloat>(ins: [&[T]; 5], dg: &mut [T], dcp: &mut [T]) {
    dispatch_simd!(lstm_bwd_row_generic, lstm_bwd_row_avx2, lstm_bwd_row_avx512, (ins, dg, dcp))
}

simd_builds!(lstm_bwd_row_generic => lstm_bwd_row_avx2, lstm_bwd_row_avx512, [T: FastFloat],
    (ins: [&[T]; 5], dg: &mut [T], dcp: &mut [T]));

#[inline(always)]
fn lstm_bwd_row_generic<T: FastFloat>([x, y, cp, dh, dc]: [&[T]; 5], dg: &mut [T], dcp: &mut [T]) {
    let h = cp.len();
    let one = T::one();
    let (cp, dh, dc, dcp) = (&cp[..h], &dh[..h], &dc[..h], &mut dcp[..h]);
    let (xi, xf, xg, xo) = (&x[..h], &x[h..2 * h], &x[2 * h..3 * h], &x[3 * h..4 * h]);
    let (yi, yf, yg, yo) = (&y[..h], &y[h..2 * h], &y[2 * h..3 * h], &y[3 * h..4 * h]);
    let (di, rest) = dg.split_at_mut(h);
    let (df, rest) = rest.split_at_mut(h);
    let (dgg, do_) = rest.split_at_mut(h);
    let do_ = &mut do_[..h];
    for j in 0..h {
        let i = (xi[j] + yi[j]).sigmoid_fast();
        let f = (xf[j] + yf[j]).sigmoid_fast();
        let g = (xg[j] + yg[j]).tanh_fast();
        let o = (xo[j] + yo[j]).sigmoid_fast();
        let tc = (f * cp[j] + i * g).tanh_fast();
        let dct = dc[j] + dh[j] * o * (one - tc * tc);
        di[j] = dct * g * i * (one - i);
        df[j] = dct * cp[j] * f * (one - f);
        dgg[j] = dct * i * (one - g * g);
        do_[j] = dh[j] * tc * o * (one - o);
        dcp[j] = dct * f;
    }
}

/// One row of [`gru_cell`]: the projections `x`, `y` (`3H` each), the previous state `hp` and
/// the new one.
fn gru_fwd_row<T: FastFloat>(x: &[T], y: &[T], hp: &[T], ho: &mut [T]) {
    dispatch_simd!(gru_fwd_row_generic, gru_fwd_row_avx2, gru_fwd_row_avx512, (x, y, hp, ho))
}

simd_builds!(gru_fwd_row_generic => gru_fwd_row_avx2, gru_fwd_row_avx512, [T: FastFloat],
    (x: &[T], y: &[T], hp: &[T], ho: &mut [T]));

#[inline(always)]
fn gru_fwd_row_generic<T: FastFloat>(x: &[T], y: &[T], hp: &[T], ho: &mut [T]) {
    let h = hp.len();
    let (xr, xz, xn) = (&x[..h], &x[h..2 * h], &x[2 * h..3 * h]);
    let (yr, yz, yn) = (&y[..h], &y[h..2 * h], &y[2 * h..3 * h]);
    let ho = &mut ho[..h];
    for j in 0..h {
        let rg = (xr[j] + yr[j]).sigmoid_fast();
        let z = (xz[j] + yz[j]).sigmoid_fast();
        let n = (xn[j] + rg * yn[j]).tanh_fast();
        ho[j] = n + z * (hp[j] - n);
    }
}

/// One row of [`gru_cell_grad`]: from `[x, y, hp, dh]`, the cotangents of `gx`, `gh` (`3H`
/// each) and `h`.
fn gru_bwd_row<T: FastFloat>(ins: [&[T]; 4], dx: &mut [T], dy: &mut [T], dhp: &mut [T]) {
    dispatch_simd!(gru_bwd_row_generic, gru_bwd_row_avx2, gru_bwd_row_avx512, (ins, dx, dy, dhp))
}

simd_builds!(gru_bwd_row_generic => gru_bwd_row_avx2, gru_bwd_row_avx512, [T: FastFloat],
    (ins: [&[T]; 4], dx: &mut [T], dy: &mut [T], dhp: &mut [T]));

#[inline(always)]
fn gru_bwd_row_generic<T: FastFloat>([x, y, hp, dh]: [&[T]; 4], dx: &mut [T], dy: &mut [T], dhp: &mut [T]) {
    let h = hp.len();
    let one = T::one();
    let (dh, dhp) = (&dh[..h], &mut dhp[..h]);
    let (xr, xz, xn) = (&x[..h], &x[h..2 * h], &x[2 * h..3 * h]);
    let (yr, yz, yn) = (&y[..h], &y[h..2 * h], &y[2 * h..3 * h]);
    let (dxr, rest) = dx.split_at_mut(h);
    let (dxz, dxn) = rest.split_at_mut(h);
    let (dyr, rest) = dy.split_at_mut(h);
    let (dyz, dyn_) = rest.split_at_mut(h);
    let (dxn, dyn_) = (&mut dxn[..h], &mut dyn_[..h]);
    for j in 0..h {
        let rg = (xr[j] + yr[j]).sigmoid_fast();
        let z = (xz[j] + yz[j]).sigmoid_fast();
        let n = (xn[j] + rg * yn[j]).tanh_fast();
        let dn = dh[j] * (one - z) * (one - n * n);
        let da_r = dn * yn[j] * rg * (one - rg);
        let da_z = dh[j] * (hp[j] - n) * z * (one - z);
        dxr[j] = da_r;
        dyr[j] = da_r;
        dxz[j] = da_z;
        dyz[j] = da_z;
        dxn[j] = dn;
        dyn_[j] = dn * rg;
        dhp[j] = dh[j] * z;
    }
}
