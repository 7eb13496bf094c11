//! Fused recurrent cells: the gate nonlinearities and the state update of one LSTM or GRU
//! step in one pass over memory, and their reverse passes giving every gate's gradient in one
//! pass.
//!
//! The matrix products stay outside (`matmul`): a cell takes the input projection `gx` and the
//! hidden projection `gh` of all gates side by side (`[B, G·H]`, PyTorch's gate order — LSTM
//! `(i, f, g, o)`, GRU `(r, z, n)`) and the previous state `[B, H]`. Taking the two projections
//! separately (rather than their sum) saves the caller an addition per step and is what the
//! GRU needs anyway (`n = tanh(gx_n + r ⊙ gh_n)`).
//!
//! The reverse passes recompute the gate activations from `gx + gh` instead of keeping them:
//! a few `exp` per element cost less than writing and re-reading a `[B, G·H]` residual, and
//! the recomputation uses the same functions (`sigmoid_fast`, `tanh_fast`) as the forward
//! pass, so both see identical activations. Rows are independent; above
//! [`PAR_THRESHOLD`](super::PAR_THRESHOLD) elements the rows are split across `rayon`.
//!
//! The inner loops index several equal-length gate slices with one counter (the form LLVM
//! vectorises once the slices are cut to length), hence `needless_range_loop` is allowed.
#![allow(clippy::needless_range_loop)]

use rayon::prelude::*;

use super::fastmath::FastFloat;
use super::PAR_THRESHOLD;
use crate::{cache, Array, DType, Element};

/// Run `f(first_row, outs)` over blocks of rows; output `k` has `widths[k]` elements per row.
/// Blocks go to `rayon` when `work` (elements touched) reaches [`PAR_THRESHOLD`].
fn for_rows<T: Send, const N: usize>(
    rows: usize,
    outs: [(&mut [T], usize); N],
    work: usize,
    f: impl Fn(usize, [&mut [T]; N]) + Sync,
) {
    if rows == 0 || outs.iter().any(|(_, w)| *w == 0) {
        return;
    }
    let threads = rayon::current_num_threads();
    if work < PAR_THRESHOLD || threads == 1 {
        f(0, outs.map(|(o, _)| o));
        return;
    }
    let per = rows.div_ceil(threads * 4).max(1);
    let mut chunks = outs.map(|(o, w)| o.chunks_mut(w * per));
    let blocks: Vec<[&mut [T]; N]> = (0..rows.div_ceil(per))
        .map(|_| std::array::from_fn(|k| chunks[k].next().expect("one chunk per block")))
        .collect();
    blocks.into_par_iter().enumerate().for_each(|(b, o)| f(b * per, o));
}

fn output<T: Element>(n: usize) -> Vec<T> {
    cache::take_filled(n, T::default())
}

#[track_caller]
fn check(op: &str, gates: usize, gx: &Array, gh: &Array, state: &Array, more: &[&Array]) -> (usize, usize) {
    let (s, d) = (gx.shape(), gx.dtype());
    let ok = s.len() == 2
        && s[1] % gates == 0
        && gh.shape() == s
        && state.shape() == [s[0], s[1] / gates]
        && more.iter().all(|m| m.shape() == state.shape())
        && [gh, state].iter().chain(more).all(|a| a.dtype() == d)
        && matches!(d, DType::F32 | DType::F64);
    if !ok {
        let shapes: Vec<(&[usize], DType)> =
            [gx, gh, state].into_iter().chain(more.iter().copied()).map(|a| (a.shape(), a.dtype())).collect();
        panic!("adjoint-tensor: {op}: needs float arrays [B, {gates}·H], [B, {gates}·H], [B, H]…, got {shapes:?}");
    }
    (s[0], s[1] / gates)
}

fn slices<'a, T: Element>(a: &'a [&'a Array]) -> Vec<&'a [T]> {
    a.iter().map(|x| x.as_slice::<T>().expect("contiguous arrays of the checked dtype")).collect()
}

macro_rules! by_dtype {
    ($d:expr, $f:ident($($a:expr),*)) => {
        match $d {
            DType::F32 => $f::<f32>($($a),*),
            _ => $f::<f64>($($a),*),
        }
    };
}

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
            let (xi, xf, xg, xo) = (&x[..h], &x[h..2 * h], &x[2 * h..3 * h], &x[3 * h..]);
            let (yi, yf, yg, yo) = (&y[..h], &y[h..2 * h], &y[2 * h..3 * h], &y[3 * h..]);
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
    let one = T::one();
    let (mut dg, mut dcp) = (output::<T>(b * 4 * h), output::<T>(b * h));
    for_rows(b, [(&mut dg, 4 * h), (&mut dcp, h)], b * h * 13, |r0, [dg, dcp]| {
        for (k, (dg, dcp)) in dg.chunks_exact_mut(4 * h).zip(dcp.chunks_exact_mut(h)).enumerate() {
            let r = r0 + k;
            let (x, y) = (&gx[r * 4 * h..(r + 1) * 4 * h], &gh[r * 4 * h..(r + 1) * 4 * h]);
            let rh = r * h..(r + 1) * h;
            let (cp, dh, dc) = (&cp[rh.clone()], &dh[rh.clone()], &dc[rh]);
            let (xi, xf, xg, xo) = (&x[..h], &x[h..2 * h], &x[2 * h..3 * h], &x[3 * h..]);
            let (yi, yf, yg, yo) = (&y[..h], &y[h..2 * h], &y[2 * h..3 * h], &y[3 * h..]);
            let (di, rest) = dg.split_at_mut(h);
            let (df, rest) = rest.split_at_mut(h);
            let (dgg, do_) = rest.split_at_mut(h);
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
            let (xr, xz, xn) = (&x[..h], &x[h..2 * h], &x[2 * h..]);
            let (yr, yz, yn) = (&y[..h], &y[h..2 * h], &y[2 * h..]);
            for j in 0..h {
                let rg = (xr[j] + yr[j]).sigmoid_fast();
                let z = (xz[j] + yz[j]).sigmoid_fast();
                let n = (xn[j] + rg * yn[j]).tanh_fast();
                ho[j] = n + z * (hp[j] - n);
            }
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
    let one = T::one();
    let (mut dx, mut dy, mut dhp) = (output::<T>(b * 3 * h), output::<T>(b * 3 * h), output::<T>(b * h));
    for_rows(b, [(&mut dx, 3 * h), (&mut dy, 3 * h), (&mut dhp, h)], b * h * 12, |r0, [dx, dy, dhp]| {
        let rows = dx.chunks_exact_mut(3 * h).zip(dy.chunks_exact_mut(3 * h)).zip(dhp.chunks_exact_mut(h));
        for (k, ((dx, dy), dhp)) in rows.enumerate() {
            let r = r0 + k;
            let (x, y) = (&gx[r * 3 * h..(r + 1) * 3 * h], &gh[r * 3 * h..(r + 1) * 3 * h]);
            let (hp, dh) = (&hp[r * h..(r + 1) * h], &dh[r * h..(r + 1) * h]);
            let (xr, xz, xn) = (&x[..h], &x[h..2 * h], &x[2 * h..]);
            let (yr, yz, yn) = (&y[..h], &y[h..2 * h], &y[2 * h..]);
            let (dxr, rest) = dx.split_at_mut(h);
            let (dxz, dxn) = rest.split_at_mut(h);
            let (dyr, rest) = dy.split_at_mut(h);
            let (dyz, dyn_) = rest.split_at_mut(h);
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
    });
    (Array::from_vec(dx, &[b, 3 * h]), Array::from_vec(dy, &[b, 3 * h]), Array::from_vec(dhp, &[b, h]))
}
