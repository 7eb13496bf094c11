//! Fused recurrent cells: the gate nonlinearities and the state update of one LSTM or GRU
//! step in one pass over memory, and their reverse passes giving every gate's gradient in one
//! pass.
//!
//! The cells' matrix products stay outside (`matmul`; the sequence kernels [`lstm_seq`] and
//! [`lstm_seq_grad`] run theirs on a weight packed once, `ops::packed`): a cell takes the
//! input projection `gx` and the hidden projection `gh` of all gates side by side
//! (`[B, G·H]`, PyTorch's gate order — LSTM `(i, f, g, o)`, GRU `(r, z, n)`) and the previous
//! state `[B, H]`. Taking the two projections
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

use gemm::Parallelism;

use super::fastmath::FastFloat;
use super::matmul::{gemm_into, gemm_parallelism, MatMut, MatRef, SendPtr};
use super::packed::PackedRhs;
use super::simd::{dispatch_simd, simd_builds};

mod steps;
use crate::{cache, Array, DType, Element};
use steps::{row_parts, run_parts, split_step, Lined};

/// Run `f(first_row, outs)` over blocks of rows; output `k` has `widths[k]` elements per row.
/// Blocks go to `rayon` when [`parallel`](super::parallel) says so for `work` (elements touched).
fn for_rows<T: Send, const N: usize>(
    rows: usize,
    outs: [(&mut [T], usize); N],
    work: usize,
    f: impl Fn(usize, [&mut [T]; N]) + Sync,
) {
    if rows == 0 || outs.iter().any(|(_, w)| *w == 0) {
        return;
    }
    if !super::parallel(work) {
        f(0, outs.map(|(o, _)| o));
        return;
    }
    let threads = rayon::current_num_threads();
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
    ($d:expr_2021, $f:ident($($a:expr_2021),*)) => {
        match $d {
            DType::F32 => $f::<f32>($($a),*),
            _ => $f::<f64>($($a),*),
        }
    };
}

mod cell;
pub use cell::{gru_cell, gru_cell_grad, lstm_cell, lstm_cell_grad};

/// A whole LSTM sequence (one layer, time-major): from the input projections `gx`
/// (`[T, B, 4H]`, biases included), the hidden weights `w_hh` (`[4H, H]`, PyTorch's layout)
/// and the initial states `h0`, `c0` (`[B, H]`), runs the `T` steps of [`lstm_cell`] with
/// `gh_t = h_{t-1}·w_hhᵀ` and returns `(hs, cs, a)`: every hidden state and cell state
/// (`[T, B, H]`) and every gate activation `a_t = (σ(i), σ(f), tanh(g), σ(o))` of the
/// pre-activations `gx_t + gh_t` (`[T, B, 4H]`, kept for the reverse pass [`lstm_seq_grad`],
/// which then needs no transcendental but `tanh(c_t)`).
///
/// Each step is the products `gx_t + h_{t-1}·w_hhᵀ` against `w_hhᵀ` packed once for the
/// sequence (`ops::packed`, written straight into `a`) and one pass of the cell over `[B, H]`
/// that overwrites the pre-activations with the activations; no per-step allocation. From
/// W4-like sizes on the batch rows are shared among the pool's threads, each running its
/// rows through the whole sequence with no barrier between steps (see `row_parts`); the
/// results are bitwise those of one thread.
///
/// ```
/// use adjoint_tensor::{ops::rnn, Array};
/// let gx = Array::from_vec(vec![0.0f64; 8], &[2, 1, 4]);
/// let w = Array::from_vec(vec![0.0f64; 4], &[4, 1]);
/// let one = Array::from_vec(vec![1.0f64], &[1, 1]);
/// let (hs, cs, a) = rnn::lstm_seq(&gx, &w, &one, &one);
/// assert_eq!(cs.to_vec::<f64>(), vec![0.5, 0.25]); // σ(0)·c each step
/// assert_eq!((hs.shape(), a.shape()), (&[2, 1, 1][..], &[2, 1, 4][..]));
/// ```
#[track_caller]
pub fn lstm_seq(gx: &Array, w_hh: &Array, h0: &Array, c0: &Array) -> (Array, Array, Array) {
    lstm_seq_bias(gx, w_hh, h0, c0, None)
}

/// [`lstm_seq`] with a gate bias `[4H]` added to every step's pre-activations inside the cell
/// pass (`gx_t + h_{t-1}·w_hhᵀ + bias`), where they are in cache anyway: a layer's input
/// projection then needs no separate pass adding the bias to all `T·B` rows.
///
/// ```
/// use adjoint_tensor::{ops::rnn, Array};
/// let gx = Array::from_vec(vec![0.0f64; 4], &[1, 1, 4]);
/// let w = Array::from_vec(vec![0.0f64; 4], &[4, 1]);
/// let (zero, one) = (Array::from_vec(vec![0.0f64], &[1, 1]), Array::from_vec(vec![1.0f64], &[1, 1]));
/// // A large forget-gate bias keeps the cell: σ(40)·1 + σ(0)·tanh(0).
/// let bias = Array::from_vec(vec![0.0, 40.0, 0.0, 0.0], &[4]);
/// let (_, cs, _) = rnn::lstm_seq_bias(&gx, &w, &zero, &one, Some(&bias));
/// assert!((cs.to_vec::<f64>()[0] - 1.0).abs() < 1e-15);
/// ```
#[track_caller]
pub fn lstm_seq_bias(
    gx: &Array,
    w_hh: &Array,
    h0: &Array,
    c0: &Array,
    bias: Option<&Array>,
) -> (Array, Array, Array) {
    let (t, b, h) = check_seq("lstm_seq", gx, w_hh, h0, &[c0], &[]);
    if let Some(bias) = bias
        && (bias.shape() != [4 * h] || bias.dtype() != gx.dtype())
    {
        panic!(
            "adjoint-tensor: lstm_seq: the bias must be [4·H] = [{}] of {:?}, got {:?} of {:?}",
            4 * h,
            gx.dtype(),
            bias.shape(),
            bias.dtype()
        );
    }
    let mut ins = vec![gx.contiguous(), w_hh.contiguous(), h0.contiguous(), c0.contiguous()];
    ins.extend(bias.map(Array::contiguous));
    let refs: Vec<&Array> = ins.iter().collect();
    by_dtype!(gx.dtype(), lstm_seq_fwd(&refs, t, b, h))
}

/// Checks `[T, B, 4H]`, `[4H, H]`, `[B, H]`… (`states`), `[T, B, H]`… and `[T, B, 4H]`…
/// (`seqs`: hidden-size sequences then gate-size ones, told apart by their last dim) of one
/// float dtype; returns `(T, B, H)`.
#[track_caller]
fn check_seq(
    op: &str,
    gx: &Array,
    w: &Array,
    h0: &Array,
    states: &[&Array],
    seqs: &[&Array],
) -> (usize, usize, usize) {
    let (s, d) = (gx.shape(), gx.dtype());
    let ok = s.len() == 3
        && s[2] % 4 == 0
        && {
            let (t, b, h) = (s[0], s[1], s[2] / 4);
            w.shape() == [4 * h, h]
                && h0.shape() == [b, h]
                && states.iter().all(|x| x.shape() == [b, h])
                && seqs.iter().all(|x| x.shape() == [t, b, h] || x.shape() == [t, b, 4 * h])
        }
        && [w, h0].iter().chain(states).chain(seqs).all(|a| a.dtype() == d)
        && matches!(d, DType::F32 | DType::F64);
    if !ok {
        let shapes: Vec<(&[usize], DType)> = [gx, w, h0]
            .into_iter()
            .chain(states.iter().copied())
            .chain(seqs.iter().copied())
            .map(|a| (a.shape(), a.dtype()))
            .collect();
        panic!("adjoint-tensor: {op}: needs float arrays [T, B, 4·H], [4·H, H], [B, H]…, got {shapes:?}");
    }
    (s[0], s[1], s[2] / 4)
}

fn lstm_seq_fwd<T: FastFloat + Element>(
    ins: &[&Array],
    t: usize,
    b: usize,
    h: usize,
) -> (Array, Array, Array) {
    lstm_seq_fwd_generic::<T>(ins, t, b, h, split_step(t, b, h))
}

#[inline(always)]
fn lstm_seq_fwd_generic<T: FastFloat + Element>(
    ins: &[&Array],
    t: usize,
    b: usize,
    h: usize,
    split: bool,
) -> (Array, Array, Array) {
    let s = slices::<T>(ins);
    let (gx, w, h0, c0) = (s[0], s[1], s[2], s[3]);
    let bias = s.get(4).copied();
    // `W_hhᵀ` packed once for the T products, one segment per gate: element `(p, j)` of
    // `W_hhᵀ` is `w[j·h + p]`; segment `q` holds gate `q`'s columns.
    let (bh, bg) = (b * h, b * 4 * h);
    // The outputs start on cache lines (see `Lined`): the parts then write disjoint lines
    // when a row is a whole number of lines.
    let (mut a, mut hs, mut cs) =
        (Lined::<T>::uninit(t * bg), Lined::<T>::uninit(t * bh), Lined::<T>::uninit(t * bh));
    let segs: Vec<(usize, usize)> = (0..4).map(|q| (q * h, h)).collect();
    let wt = PackedRhs::new(w, (1, h), h, &segs);
    assert!(gx.len() == t * bg && h0.len() == bh && c0.len() == bh && w.len() == 4 * h * h);
    let (a_all, hs_all, cs_all) = (SendPtr(a.ptr()), SendPtr(hs.ptr()), SendPtr(cs.ptr()));
    // Batch rows `rows` through all T steps: their four gates' products and their cells.
    let part = |rows: std::ops::Range<usize>| {
        let m = rows.len();
        if m == 0 || h == 0 {
            return;
        }
        for s in 0..t {
            // SAFETY: `a` and `gx` have `t × b × 4h` elements, `hs`/`cs` `t × b × h` (`Lined::uninit`
            // and asserted above); step `s` of rows `rows` reads only those rows of the previous
            // state (`h0`/`c0` or step `s − 1` of `hs`/`cs`, written by this part just before)
            // and writes only those rows of `a_s`, `hs_s`, `cs_s`: no other part touches them.
            unsafe {
                // The previous state of these rows only (the other parts may be writing theirs).
                let (hp, cp): (*const T, &[T]) = if s == 0 {
                    (h0.as_ptr().add(rows.start * h), &c0[rows.start * h..rows.end * h])
                } else {
                    let at = (s - 1) * bh + rows.start * h;
                    (
                        hs_all.get().add(at).cast_const(),
                        std::slice::from_raw_parts(cs_all.get().add(at), m * h),
                    )
                };
                let a_s = a_all.get().add(s * bg + rows.start * 4 * h);
                let (ho, co) = (hs_all.get().add(s * bh), cs_all.get().add(s * bh));
                for q in 0..4 {
                    let init = Some((gx.as_ptr().add(s * bg + rows.start * 4 * h + q * h), 4 * h));
                    wt.product(q, m, a_s.add(q * h), 4 * h, init, false, hp, h);
                }
                for r in rows.clone() {
                    let row = a_s.add((r - rows.start) * 4 * h);
                    let x: [&mut [T]; 4] =
                        std::array::from_fn(|q| std::slice::from_raw_parts_mut(row.add(q * h), h));
                    let at = r * h;
                    let (ho, co) = (
                        std::slice::from_raw_parts_mut(ho.add(at), h),
                        std::slice::from_raw_parts_mut(co.add(at), h),
                    );
                    // The bias joins the pre-activations inside the cell's (vectorised) loop, so
                    // it costs no pass of its own and no time on the step's critical path.
                    let bias = bias.map(|bias| std::array::from_fn(|q| &bias[q * h..(q + 1) * h]));
                    let own = (r - rows.start) * h;
                    cell_row(x, bias, &cp[own..own + h], ho, co);
                }
            }
        }
    };
    run_parts(&row_parts(b, split), part);
    // SAFETY: the parts wrote every row of every step of `a`, `hs`, `cs`.
    unsafe { [&mut a, &mut hs, &mut cs].into_iter().for_each(|o| o.assume_written()) };
    (hs.array(&[t, b, h]), cs.array(&[t, b, h]), a.array(&[t, b, 4 * h]))
}

/// [`lstm_seq_cell_row`] in the widest SIMD build the CPU runs (the cell's exponentials then
/// run 16 or 8 lanes wide on fused multiply-adds; the baseline build is SSE2). Every build
/// gives the same bits (see `simd::dispatch_simd`).
fn cell_row<T: FastFloat>(x: [&mut [T]; 4], bias: Option<[&[T]; 4]>, cp: &[T], ho: &mut [T], co: &mut [T]) {
    dispatch_simd!(lstm_seq_cell_row, cell_row_avx2, cell_row_avx512, (x, bias, cp, ho, co))
}

simd_builds!(lstm_seq_cell_row => cell_row_avx2, cell_row_avx512, [T: FastFloat],
    (x: [&mut [T]; 4], bias: Option<[&[T]; 4]>, cp: &[T], ho: &mut [T], co: &mut [T]));

/// One row of [`lstm_seq`]'s cell: the gate pre-activations (overwritten with the
/// activations), the previous cell state, and the new hidden and cell states. The mutable
/// slices are distinct arguments, so LLVM knows they do not alias and vectorizes the loop.
#[inline(always)]
fn lstm_seq_cell_row<T: FastFloat>(
    [xi, xf, xg, xo]: [&mut [T]; 4],
    bias: Option<[&[T]; 4]>,
    cp: &[T],
    ho: &mut [T],
    co: &mut [T],
) {
    let h = cp.len();
    let (xi, xf, xg, xo) = (&mut xi[..h], &mut xf[..h], &mut xg[..h], &mut xo[..h]);
    let (ho, co) = (&mut ho[..h], &mut co[..h]);
    // One loop per case (not `+ 0` without a bias: that would turn a `-0` pre-activation into
    // `+0` and change the bits of `tanh`).
    macro_rules! cell {
        ($j:ident => $pi:expr_2021, $pf:expr_2021, $pg:expr_2021, $po:expr_2021) => {
            for $j in 0..h {
                let i = ($pi).sigmoid_fast();
                let f = ($pf).sigmoid_fast();
                let g = ($pg).tanh_fast();
                let o = ($po).sigmoid_fast();
                let c = f * cp[$j] + i * g;
                (xi[$j], xf[$j], xg[$j], xo[$j]) = (i, f, g, o);
                co[$j] = c;
                ho[$j] = o * c.tanh_fast();
            }
        };
    }
    match bias {
        None => cell!(j => xi[j], xf[j], xg[j], xo[j]),
        Some([bi, bf, bg, bo]) => {
            let (bi, bf, bg, bo) = (&bi[..h], &bf[..h], &bg[..h], &bo[..h]);
            cell!(j => xi[j] + bi[j], xf[j] + bf[j], xg[j] + bg[j], xo[j] + bo[j])
        }
    }
}

/// The inputs of one row of [`lstm_seq_grad`]'s cell pass (each `H` long): the gate
/// activations, the cotangents of the pre-activations from outside (`da`), the previous and
/// this step's cell state, the cotangents of `h` and `c` from outside, and `dh` from the next
/// step.
struct GradRow<'a, T> {
    gates: [&'a [T]; 4],
    extra: [&'a [T]; 4],
    cp: &'a [T],
    c: &'a [T],
    dh_in: &'a [T],
    dc_in: &'a [T],
    dhn: &'a [T],
}

/// [`grad_row_generic`] in the widest SIMD build the CPU runs.
fn grad_row<T: FastFloat>(x: &GradRow<'_, T>, d: [&mut [T]; 4], dcn: &mut [T]) {
    dispatch_simd!(grad_row_generic, grad_row_avx2, grad_row_avx512, (x, d, dcn))
}

simd_builds!(grad_row_generic => grad_row_avx2, grad_row_avx512, [T: FastFloat],
    (x: &GradRow<'_, T>, d: [&mut [T]; 4], dcn: &mut [T]));

/// One row of the cell's reverse pass: the four gate cotangents and `dc` for the step before.
#[inline(always)]
fn grad_row_generic<T: FastFloat>(x: &GradRow<'_, T>, [di, df, dgg, do_]: [&mut [T]; 4], dcn: &mut [T]) {
    let h = dcn.len();
    let one = T::one();
    let [xi, xf, xg, xo] = x.gates.map(|g| &g[..h]);
    let [ei, ef, eg, eo] = x.extra.map(|e| &e[..h]);
    let (cp, c, dh_in, dc_in, dhn) = (&x.cp[..h], &x.c[..h], &x.dh_in[..h], &x.dc_in[..h], &x.dhn[..h]);
    let (di, df, dgg, do_) = (&mut di[..h], &mut df[..h], &mut dgg[..h], &mut do_[..h]);
    for j in 0..h {
        let (i, f, g, o) = (xi[j], xf[j], xg[j], xo[j]);
        let tc = c[j].tanh_fast();
        let dh = dh_in[j] + dhn[j];
        let dct = dc_in[j] + dcn[j] + dh * o * (one - tc * tc);
        di[j] = (dct * g + ei[j]) * i * (one - i);
        df[j] = (dct * cp[j] + ef[j]) * f * (one - f);
        dgg[j] = (dct * i + eg[j]) * (one - g * g);
        do_[j] = (dh * tc + eo[j]) * o * (one - o);
        dcn[j] = dct * f;
    }
}

/// The reverse pass of [`lstm_seq`]: from the weights `w_hh`, the initial states `h0`, `c0`,
/// the forward's `hs`, `cs`, `a` and the cotangents `dhs`, `dcs` (`[T, B, H]`) and `da`
/// (`[T, B, 4H]`, `None` for zero) of its three outputs, returns `(d_gx, d_w_hh, d_h0, d_c0)`:
/// the cotangent of every gate pre-activation (`[T, B, 4H]`, which is that of `gx`), of
/// `w_hh`, of `h0` and of `c0`.
///
/// Backpropagation through time runs one [`lstm_cell_grad`]-like pass and one `[B, 4H]·W`
/// product per step, from the last step to the first; the weight gradient is then **one**
/// product `d_aᵀ·[h0; h_0 … h_{T-2}]` over all `T·B` rows (split across the pool when large)
/// instead of `T` small ones. The activations are read from `a`, `tanh(c_t)` is recomputed
/// from `cs`; `hs[T-1]` is not read. As in [`lstm_seq`], from W4-like sizes on the batch
/// rows are shared among the pool's threads, each running the cells and the `dh` product of
/// its rows through all steps, with results bitwise those of one thread.
///
/// ```
/// use adjoint_tensor::{ops::rnn, Array};
/// let z = |s: &[usize]| Array::from_vec(vec![0.0f64; s.iter().product()], s);
/// let one = Array::from_vec(vec![1.0f64], &[1, 1]);
/// let (hs, cs, a) = rnn::lstm_seq(&z(&[1, 1, 4]), &z(&[4, 1]), &one, &one);
/// let (da, dw, dh0, dc0) = rnn::lstm_seq_grad(&z(&[4, 1]), &one, &one, &hs, &cs, &a, &z(&[1, 1, 1]), &Array::from_vec(vec![1.0f64], &[1, 1, 1]), None);
/// assert_eq!(dc0.to_vec::<f64>(), vec![0.5]); // ∂c_0/∂c_{-1} = σ(f)
/// assert_eq!(da.to_vec::<f64>(), vec![0.0, 0.25, 0.5, 0.0]); // σ'(0)·c_{-1} for f, σ(i) for g
/// assert_eq!((dw.to_vec::<f64>(), dh0.to_vec::<f64>()), (vec![0.0, 0.25, 0.5, 0.0], vec![0.0]));
/// ```
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn lstm_seq_grad(
    w_hh: &Array,
    h0: &Array,
    c0: &Array,
    hs: &Array,
    cs: &Array,
    a: &Array,
    dhs: &Array,
    dcs: &Array,
    da: Option<&Array>,
) -> (Array, Array, Array, Array) {
    let (d_gx, dw, dh0, dc0, _) = seq_grad(w_hh, h0, c0, hs, cs, a, dhs, dcs, da, false);
    (d_gx, dw, dh0, dc0)
}

/// [`lstm_seq_grad`] and the cotangent of a gate bias added to every step (`[4H]`): `d_gx`
/// summed over the steps and the batch, inside the kernel — each row's gate cotangents are
/// added to a per-row sum while they are in cache, and the rows' sums are added in row order
/// at the end, so the result is the same on any pool (a separate sum over `d_gx` read all
/// `T·B·4H` values back from memory: ~2.5% of the W4 step).
///
/// ```
/// use adjoint_tensor::{ops::rnn, Array};
/// let z = |s: &[usize]| Array::from_vec(vec![0.0f64; s.iter().product()], s);
/// let one = Array::from_vec(vec![1.0f64], &[1, 1]);
/// let (hs, cs, a) = rnn::lstm_seq(&z(&[2, 1, 4]), &z(&[4, 1]), &one, &one);
/// let dcs = Array::from_vec(vec![1.0f64, 1.0], &[2, 1, 1]);
/// let (d_gx, .., d_bias) = rnn::lstm_seq_grad_bias(&z(&[4, 1]), &one, &one, &hs, &cs, &a, &z(&[2, 1, 1]), &dcs, None);
/// assert_eq!(d_bias.to_vec::<f64>(), d_gx.sum_axes(&[0, 1], false).to_vec::<f64>());
/// ```
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn lstm_seq_grad_bias(
    w_hh: &Array,
    h0: &Array,
    c0: &Array,
    hs: &Array,
    cs: &Array,
    a: &Array,
    dhs: &Array,
    dcs: &Array,
    da: Option<&Array>,
) -> (Array, Array, Array, Array, Array) {
    let (d_gx, dw, dh0, dc0, d_bias) = seq_grad(w_hh, h0, c0, hs, cs, a, dhs, dcs, da, true);
    (d_gx, dw, dh0, dc0, d_bias.expect("asked for the bias cotangent"))
}

/// The five outputs of [`lstm_seq_grad_bias`], the last only with `bias`.
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn seq_grad(
    w_hh: &Array,
    h0: &Array,
    c0: &Array,
    hs: &Array,
    cs: &Array,
    a: &Array,
    dhs: &Array,
    dcs: &Array,
    da: Option<&Array>,
    bias: bool,
) -> SeqGrad {
    let mut seqs = vec![hs, cs, dhs, dcs];
    seqs.extend(da);
    let (t, b, h) = check_seq("lstm_seq_grad", a, w_hh, h0, &[c0], &seqs);
    let ok = hs.shape() == [t, b, h] && cs.shape() == hs.shape() && dhs.shape() == hs.shape();
    let ok = ok && dcs.shape() == hs.shape() && da.is_none_or(|d| d.shape() == a.shape());
    if !ok {
        panic!(
            "adjoint-tensor: lstm_seq_grad: hs, cs, dhs, dcs must be [{t}, {b}, {h}] and da [{t}, {b}, {}]",
            4 * h
        );
    }
    let ins: Vec<Array> =
        [w_hh, h0, c0, hs, cs, a, dhs, dcs].into_iter().chain(da).map(Array::contiguous).collect();
    let refs: Vec<&Array> = ins.iter().collect();
    by_dtype!(a.dtype(), lstm_seq_bwd(&refs, t, b, h, bias))
}

/// `(d_gx, d_w_hh, d_h0, d_c0, d_bias)`.
type SeqGrad = (Array, Array, Array, Array, Option<Array>);

fn lstm_seq_bwd<T: FastFloat + Element>(ins: &[&Array], t: usize, b: usize, h: usize, bias: bool) -> SeqGrad {
    lstm_seq_bwd_generic::<T>(ins, t, b, h, split_step(t, b, h), bias)
}

#[inline(always)]
fn lstm_seq_bwd_generic<T: FastFloat + Element>(
    ins: &[&Array],
    t: usize,
    b: usize,
    h: usize,
    split: bool,
    bias: bool,
) -> SeqGrad {
    let s = slices::<T>(ins);
    let (w, h0, c0, hs, cs, a, dhs, dcs) = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    let da = s.get(8).copied();
    let (bh, bg) = (b * h, b * 4 * h);
    // Line-aligned outputs, as in `lstm_seq`: the parts write disjoint lines.
    let mut d_a = Lined::<T>::uninit(t * bg);
    // Read before written (the last step adds the cotangents from after the sequence: none).
    let (mut dh_next, mut dc_next) = (Lined::<T>::zeroed(bh), Lined::<T>::zeroed(bh));
    // With `bias`: each row's gate cotangents summed over the steps (`[B, 4H]`).
    let mut row_sums = Lined::<T>::zeroed(if bias { bg } else { 0 });
    let sums_all = SendPtr(row_sums.ptr());
    let no_da = output::<T>(if da.is_some() { 0 } else { 4 * h });
    assert!(w.len() == 4 * h * h);
    let (d_all, dcn_all, dhn_all) = (SendPtr(d_a.ptr()), SendPtr(dc_next.ptr()), SendPtr(dh_next.ptr()));
    // `W` (`[4H, H]`) packed once for the T products `dh = dg_s·W`.
    let wp = PackedRhs::new(w, (h, 1), 4 * h, &[(0, h)]);
    // Batch rows `rows` from the last step to the first: step `s`'s cells (the four gate
    // cotangents and `dc` for the step before), then the product `dh = dg_s·W` for the step
    // before, over those rows only.
    let part = |rows: std::ops::Range<usize>| {
        if rows.is_empty() || h == 0 {
            return;
        }
        for s in (0..t).rev() {
            let dg_s = unsafe { d_all.get().add(s * bg) };
            let cp_all = if s == 0 { c0 } else { &cs[(s - 1) * bh..s * bh] };
            for r in rows.clone() {
                let x = &a[s * bg + r * 4 * h..s * bg + (r + 1) * 4 * h];
                let e = da.map_or(&no_da[..], |d| &d[s * bg + r * 4 * h..s * bg + (r + 1) * 4 * h]);
                let rh = r * h..(r + 1) * h;
                let rs = s * bh + rh.start..s * bh + rh.end;
                // SAFETY: `d_a` has `t × b × 4h` elements, `dc_next`/`dh_next` `b × h`, `w`
                // `4h × h` (asserted above). This part alone reads and writes rows `rows` of
                // `dg_s`, `dc_next` and `dh_next` (the rows of `dh_next` by its own product
                // of the step after, finished before).
                let (d, dcn, dhn) = unsafe {
                    let row = dg_s.add(r * 4 * h);
                    let d: [&mut [T]; 4] =
                        std::array::from_fn(|q| std::slice::from_raw_parts_mut(row.add(q * h), h));
                    (
                        d,
                        std::slice::from_raw_parts_mut(dcn_all.get().add(rh.start), h),
                        std::slice::from_raw_parts(dhn_all.get().add(rh.start).cast_const(), h),
                    )
                };
                let row = GradRow {
                    gates: std::array::from_fn(|q| &x[q * h..(q + 1) * h]),
                    extra: std::array::from_fn(|q| &e[q * h..(q + 1) * h]),
                    cp: &cp_all[rh.clone()],
                    c: &cs[rs.clone()],
                    dh_in: &dhs[rs.clone()],
                    dc_in: &dcs[rs],
                    dhn,
                };
                grad_row(&row, d, dcn);
                if bias {
                    // SAFETY: `row_sums` has `b × 4h` elements when `bias`; this part alone
                    // reads and writes row `r` of it, and row `r` of `dg_s` was just written.
                    let (sum, g) = unsafe {
                        (
                            std::slice::from_raw_parts_mut(sums_all.get().add(r * 4 * h), 4 * h),
                            std::slice::from_raw_parts(dg_s.add(r * 4 * h).cast_const(), 4 * h),
                        )
                    };
                    for (acc, &v) in sum.iter_mut().zip(g) {
                        *acc = *acc + v;
                    }
                }
            }
            // SAFETY: as above; the product reads rows `rows` of `dg_s` (written just above)
            // and writes the same rows of `dh_next`.
            unsafe {
                let (dst, lhs) =
                    (dhn_all.get().add(rows.start * h), dg_s.add(rows.start * 4 * h).cast_const());
                wp.product(0, rows.len(), dst, h, None, false, lhs, 4 * h)
            };
        }
    };
    run_parts(&row_parts(b, split), part);
    // SAFETY: the cells of every step wrote every gate cotangent of every row.
    unsafe { d_a.assume_written() };
    // d_w = Σ_t d_a_tᵀ·h_{t-1}: step 0 against h0, steps 1.. against hs[..T-1] in one product.
    let mut dw = output::<T>(4 * h * h);
    if t > 0 && h > 0 && b > 0 {
        let lhs = |offset| MatRef { data: d_a.slice(), offset, rs: 1, cs: 4 * h };
        let rows = |data| MatRef { data, offset: 0, rs: h, cs: 1 };
        let dst = MatMut { data: &mut dw, rs: h, cs: 1 };
        gemm_into((4 * h, h, b), dst, false, lhs(0), rows(h0), Parallelism::None);
        let k = (t - 1) * b;
        if k > 0 {
            let dst = MatMut { data: &mut dw, rs: h, cs: 1 };
            gemm_into((4 * h, h, k), dst, true, lhs(bg), rows(hs), gemm_parallelism(4 * h, h, k));
        }
    }
    // The rows' sums added in row order (whatever the parts were).
    let d_bias = bias.then(|| {
        let rows = row_sums.slice();
        let mut out = output::<T>(4 * h);
        for row in rows.chunks_exact(4 * h.max(1)).take(b) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o = *o + v;
            }
        }
        Array::from_vec(out, &[4 * h])
    });
    (
        d_a.array(&[t, b, 4 * h]),
        Array::from_vec(dw, &[4 * h, h]),
        dh_next.array(&[b, h]),
        dc_next.array(&[b, h]),
        d_bias,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data<T: Element + FastFloat>(seed: u64, shape: &[usize], scale: f64) -> Array {
        let n: usize = shape.iter().product();
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let v: Vec<f64> = (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
            })
            .collect();
        Array::from_vec(v, shape).cast(T::DTYPE)
    }

    fn bits(a: &Array) -> Vec<u64> {
        a.cast(DType::F64).to_vec::<f64>().iter().map(|x| x.to_bits()).collect()
    }

    /// Forward and reverse sequence kernels, rows shared among the pool (or not), in a pool of
    /// `threads`.
    fn run<T: Element + FastFloat>(threads: usize, (t, b, h): (usize, usize, usize)) -> Vec<Vec<u64>> {
        run_split::<T>(threads, (t, b, h), true)
    }

    fn run_split<T: Element + FastFloat>(
        threads: usize,
        (t, b, h): (usize, usize, usize),
        split: bool,
    ) -> Vec<Vec<u64>> {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let gx = data::<T>(1, &[t, b, 4 * h], 1.0);
            let w = data::<T>(2, &[4 * h, h], 0.5);
            let (h0, c0) = (data::<T>(3, &[b, h], 0.5), data::<T>(4, &[b, h], 0.5));
            let (dhs, dcs) = (data::<T>(5, &[t, b, h], 1.0), data::<T>(6, &[t, b, h], 0.3));
            let da = data::<T>(7, &[t, b, 4 * h], 0.2);
            let (hs, cs, a) = lstm_seq_fwd_generic::<T>(&[&gx, &w, &h0, &c0], t, b, h, split);
            let mut out = vec![bits(&hs), bits(&cs), bits(&a)];
            for extra in [None, Some(&da)] {
                let mut ins = vec![&w, &h0, &c0, &hs, &cs, &a, &dhs, &dcs];
                ins.extend(extra);
                let (d_a, dw, dh, dc, db) = lstm_seq_bwd_generic::<T>(&ins, t, b, h, split, true);
                out.extend([bits(&d_a), bits(&dw), bits(&dh), bits(&dc), bits(&db.unwrap())]);
            }
            // The public entry points (rows shared from `SPLIT_WORK` on).
            let (hs2, _, _) = lstm_seq(&gx, &w, &h0, &c0);
            out.push(bits(&hs2));
            out
        })
    }

    /// The parts cover the batch rows once, in order, one per thread (at most one per row),
    /// sizes within one row of each other; unsplit is one part.
    #[test]
    fn row_parts_cover_the_batch_evenly() {
        for threads in 1..=3 {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                for b in 0..50 {
                    assert_eq!(row_parts(b, false), vec![0..b]);
                    let parts = row_parts(b, true);
                    assert!(!parts.is_empty() && parts.len() <= threads.max(1), "{threads} {b}: {parts:?}");
                    assert_eq!(parts[0].start, 0);
                    assert_eq!(parts.last().unwrap().end, b);
                    assert!(parts.windows(2).all(|w| w[0].end == w[1].start), "{parts:?}");
                    let (lo, hi) = (parts.iter().map(|p| p.len()).min(), parts.iter().map(|p| p.len()).max());
                    assert_eq!(parts.len(), threads.min(b.max(1)), "{threads} {b}: {parts:?}");
                    assert!(hi.unwrap() - lo.unwrap() <= 1 && (b == 0 || lo.unwrap() > 0), "{parts:?}");
                }
            });
        }
    }

    #[test]
    fn row_parts_on_two_threads_match_one_thread_bitwise() {
        let sizes = [
            (1, 1, 1),
            (2, 1, 3),
            (3, 2, 17),
            (5, 3, 33),
            (4, 5, 48),
            (7, 4, 100),
            (3, 32, 128),
            (2, 3, 130),
            (2, 17, 24),
            (3, 40, 16),
        ];
        for size in sizes {
            for _ in 0..3 {
                assert_eq!(run::<f32>(1, size), run::<f32>(2, size), "f32 {size:?}");
                assert_eq!(run::<f64>(1, size), run::<f64>(2, size), "f64 {size:?}");
            }
            assert_eq!(run::<f32>(1, size), run::<f32>(3, size), "f32 {size:?}, 3 threads");
            // Each row's arithmetic does not depend on the cut either.
            assert_eq!(run_split::<f32>(1, size, false), run::<f32>(2, size), "f32 {size:?}, unsplit");
            assert_eq!(run_split::<f64>(1, size, false), run::<f64>(2, size), "f64 {size:?}, unsplit");
        }
    }
}
