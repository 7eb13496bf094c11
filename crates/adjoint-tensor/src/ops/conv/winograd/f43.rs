//! The transforms of Winograd F(4×4, 3×3) (Lavin & Gray's points 0, ±1, ±2, ∞) for the
//! parent module's kernels: input and output transforms (forward and input gradient), and the
//! adjoint of the output transform with the kernel's back-transform (weight gradient).
//!
//! Each 4×4 output tile is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` for the 6×6 input patch `d` around it:
//! 36 products per tile and channel pair instead of 144 (4× fewer multiply-adds, against
//! F(2×2, 3×3)'s 2.25×), and per output element 36/16 transformed values instead of 16/4, so
//! the transformed input and the products take 44% less memory as well. The price is
//! accuracy: `Bᵀ` has entries up to 5 and `G` sixths and twenty-fourths, so the rounding error
//! grows over F(2×2, 3×3) (measured in `tests/conv_fast.rs`, which states the bound it checks);
//! `ADJOINT_CONV_WINOGRAD_TILE=2` selects F(2×2, 3×3) instead.
//!
//! The weight gradient is the exact adjoint of the algorithm: `Ū_ξ = Σ (A ȳ Aᵀ)_ξ · V_ξᵀ` over
//! tiles and images, then `ḡ = Gᵀ Ū G`; the tiles of `ȳ` do not overlap, so its 16 taps are the
//! 16 phases of the gradient plane unshifted.
//!
//! ## Layout
//! The tiles of a plane are numbered `s = i·tp + k` (tile row `i`, column `k`; `tp = tw + 1`,
//! the last column a padding slot), as in F(2×2, 3×3), and every transform runs on `W` = 16
//! consecutive tiles at once, the 36 taps of a tile in registers. The two NCHW ends are
//! contiguous copies of whole rows:
//! - **in**: padded input row `4i + r` is copied to row `i` of row phase `r` (rows `4·tp`
//!   floats long, padding left at zero), then one loop over the whole buffer splits the columns
//!   by `q mod 4` (a stride-4 loop the SIMD builds turn into permutes). Phase `(r, c)` then
//!   holds `padded[4i + r][4k + c]` at slot `i·tp + k`, and tap `(a, b)` of tile `s` is slot
//!   `s + (a div 4)·tp + b div 4` of phase `(a mod 4, b mod 4)`: contiguous loads.
//! - **out**: row `i` of every tile's 4×4 result is stored interleaved, `z_i[4s + j]`, so that
//!   output row `4·ty + i` is `z_i[4·ty·tp..][..ow]`.
#![allow(clippy::needless_range_loop)]

use super::Plan;
use crate::ops::simd::{dispatch_simd, simd_builds};

/// `G g Gᵀ` of one 3×3 kernel (row-major), written to `u[ξ·stride]` for `ξ = 6i + j`.
#[inline]
pub(super) fn kernel_transform(k: [f32; 9], u: &mut [f32], stride: usize) {
    let g1 = |g0: f32, g1: f32, g2: f32| -> [f32; 6] {
        [
            g0 / 4.0,
            -(g0 + g1 + g2) / 6.0,
            -(g0 - g1 + g2) / 6.0,
            g0 / 24.0 + g1 / 12.0 + g2 / 6.0,
            g0 / 24.0 - g1 / 12.0 + g2 / 6.0,
            g2,
        ]
    };
    // Down the columns, then across the rows.
    let cols: [[f32; 6]; 3] = std::array::from_fn(|j| g1(k[j], k[3 + j], k[6 + j]));
    for i in 0..6 {
        let row = g1(cols[0][i], cols[1][i], cols[2][i]);
        for (j, v) in row.into_iter().enumerate() {
            u[(6 * i + j) * stride] = v;
        }
    }
}

/// `W` lanes of one value: the transforms' arithmetic on whole vectors of slots, so that the
/// 36 taps of a tile stay in registers. (A loop over 52 slices, indexed per slot, is not
/// vectorised: LLVM gives up on the aliasing checks; these values are locals.)
#[derive(Clone, Copy)]
struct Lanes<const W: usize>([f32; W]);

impl<const W: usize> Lanes<W> {
    #[inline(always)]
    fn load(s: &[f32], k: usize) -> Self {
        Lanes(s[k..k + W].try_into().expect("W lanes"))
    }
    #[inline(always)]
    fn store(self, s: &mut [f32], k: usize) {
        s[k..k + W].copy_from_slice(&self.0);
    }
    #[inline(always)]
    fn zip(mut self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        for i in 0..W {
            self.0[i] = f(self.0[i], o.0[i]);
        }
        self
    }
}

impl<const W: usize> std::ops::Add for Lanes<W> {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.zip(o, |a, b| a + b)
    }
}

impl<const W: usize> std::ops::Sub for Lanes<W> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.zip(o, |a, b| a - b)
    }
}

impl<const W: usize> std::ops::Mul<f32> for Lanes<W> {
    type Output = Self;
    #[inline(always)]
    fn mul(mut self, c: f32) -> Self {
        for v in self.0.iter_mut() {
            *v *= c;
        }
        self
    }
}

/// `Bᵀ x` of one 6-vector.
#[inline(always)]
fn bt6<const W: usize>([a0, a1, a2, a3, a4, a5]: [Lanes<W>; 6]) -> [Lanes<W>; 6] {
    [
        a0 * 4.0 - a2 * 5.0 + a4,
        (a3 + a4) - (a1 + a2) * 4.0,
        (a4 - a3) + (a1 - a2) * 4.0,
        (a4 - a2) + (a3 - a1) * 2.0,
        (a4 - a2) - (a3 - a1) * 2.0,
        a1 * 4.0 - a3 * 5.0 + a5,
    ]
}

/// `Aᵀ x` of one 6-vector.
#[inline(always)]
fn at6<const W: usize>([x0, x1, x2, x3, x4, x5]: [Lanes<W>; 6]) -> [Lanes<W>; 4] {
    let (s12, d12, s34, d34) = (x1 + x2, x1 - x2, x3 + x4, x3 - x4);
    [x0 + s12 + s34, d12 + d34 * 2.0, s12 + s34 * 4.0, d12 + d34 * 8.0 + x5]
}

/// Run `$block::<W>($args…, k)` over `$l` slots: blocks of `W` = 16 slots, then the rest
/// (if any) as one block of 8 or 16 (two of 8 below 16 slots) ending at the last slot, overlapping the blocks before it
/// instead of a scalar remainder (a slot computed twice gets the same value, and no output is
/// an input; 20 slots cost 24, not 32); one slot at a time only below 8 slots. A macro, not a
/// function taking a closure: a closure is not inlined into the SIMD build that calls it.
macro_rules! for_blocks {
    ($l:expr_2021, $block:ident($($arg:expr_2021),*)) => {{
        let l = $l;
        if l < 8 {
            for k in 0..l {
                $block::<1>($($arg,)* k);
            }
        } else {
            let mut k = 0;
            while l - k >= 16 {
                $block::<16>($($arg,)* k);
                k += 16;
            }
            match l - k {
                0 => {}
                1..=8 => $block::<8>($($arg,)* l - 8),
                _ if l >= 16 => $block::<16>($($arg,)* l - 16),
                _ => {
                    $block::<8>($($arg,)* 0);
                    $block::<8>($($arg,)* l - 8);
                }
            }
        }
    }};
}

/// `dst = src` for a short row, inside a SIMD build: [`for_blocks!`] of 16/8-float moves (a
/// `copy_from_slice` of a few dozen floats is a call to `memmove`, which dominated the
/// transforms).
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    let src = &src[..dst.len()];
    for_blocks!(dst.len(), copy_block(src, dst));
}

#[inline(always)]
fn copy_block<const W: usize>(src: &[f32], dst: &mut [f32], k: usize) {
    Lanes::<W>::load(src, k).store(dst, k);
}

/// Floats of the phase buffers of a plan's input planes: the row phases, then the 16 phases.
pub(super) fn phases_len(p: &Plan) -> usize {
    8 * row_phase_len(p)
}

/// One row phase: `th + 2` rows of `4·tp` floats.
fn row_phase_len(p: &Plan) -> usize {
    (p.th() + 2) * 4 * p.tp()
}

/// `V = Bᵀ d B` for every tile of one input plane, written to `v[ξ·xi_stride + slot]`.
///
/// `phases` ([`phases_len`] floats) must hold zeros in its first half wherever a plane of this
/// plan writes nothing (the padding): it is used for nothing else, and every plane writes the
/// same places.
pub(super) fn input_transform(p: &Plan, plane: &[f32], v: &mut [f32], xi_stride: usize, phases: &mut [f32]) {
    dispatch_simd!(input_generic, input_avx2, input_avx512, (p, plane, v, xi_stride, phases))
}

simd_builds!(input_generic => input_avx2, input_avx512, [],
    (p: &Plan, plane: &[f32], v: &mut [f32], xi_stride: usize, phases: &mut [f32]));

#[inline(always)]
fn input_generic(p: &Plan, plane: &[f32], v: &mut [f32], xi_stride: usize, phases: &mut [f32]) {
    let (tp, t, rl) = (p.tp(), p.slots(), row_phase_len(p));
    let len = rl / 4;
    let cols = split(p, plane, (p.h, p.w), (p.ph, p.pw), phases);
    // Tap (a, b) of tile s: phase (a mod 4, b mod 4) at slot s + (a div 4)·tp + b div 4.
    let x: [&[f32]; 36] = {
        let mut q = 0;
        [(); 36].map(|_| {
            let (a, b) = (q / 6, q % 6);
            q += 1;
            &cols[(b % 4) * rl + (a % 4) * len + (a / 4) * tp + b / 4..][..t]
        })
    };
    let mut o = rows_mut::<36>(v, xi_stride, t);
    for_blocks!(t, in_block(&x, &mut o));
}

/// Split a `rows × cols` plane, zero-padded by `pad_r`/`pad_c` on the top/left, into the 16
/// phases: returns the phase buffer, phase `(r, c)` (padded `[4i + r][4k + c]` at slot
/// `i·tp + k`) at `[c·rl + r·rl/4..]`. `phases` keeps the invariant of [`input_transform`].
#[inline(always)]
fn split<'a>(
    p: &Plan,
    plane: &[f32],
    (rows, cols): (usize, usize),
    (pad_r, pad_c): (usize, usize),
    phases: &'a mut [f32],
) -> &'a [f32] {
    let (tp, rl) = (p.tp(), row_phase_len(p));
    let (by_row, by_col) = phases[..8 * rl].split_at_mut(4 * rl);
    // Padded row r to row r div 4 of row phase r mod 4 …
    for (y, row) in plane.chunks_exact(cols).take(rows).enumerate() {
        let r = y + pad_r;
        copy_row(&mut by_row[(r % 4) * rl + (r / 4) * 4 * tp + pad_c..][..cols], row);
    }
    // … then every row's columns to their column phase, in one loop over the whole buffer.
    let [c0, c1, c2, c3] = rows_mut::<4>(by_col, rl, rl);
    for (k, g) in by_row.chunks_exact(4).enumerate().take(rl) {
        c0[k] = g[0];
        c1[k] = g[1];
        c2[k] = g[2];
        c3[k] = g[3];
    }
    by_col
}

/// `m̄ = A ȳ Aᵀ` for every tile of one output-gradient plane (`oh × ow`), written to
/// `m[ξ·xi_stride + slot]`: the adjoint of the output transform, zero in the padding slots.
/// `phases` keeps the invariant of [`input_transform`] for gradient planes (a buffer of its own).
pub(super) fn grad_transform(p: &Plan, gy: &[f32], m: &mut [f32], xi_stride: usize, phases: &mut [f32]) {
    dispatch_simd!(grad_generic, grad_avx2, grad_avx512, (p, gy, m, xi_stride, phases))
}

simd_builds!(grad_generic => grad_avx2, grad_avx512, [],
    (p: &Plan, gy: &[f32], m: &mut [f32], xi_stride: usize, phases: &mut [f32]));

#[inline(always)]
fn grad_generic(p: &Plan, gy: &[f32], m: &mut [f32], xi_stride: usize, phases: &mut [f32]) {
    let (t, rl) = (p.slots(), row_phase_len(p));
    let len = rl / 4;
    let cols = split(p, gy, (p.oh, p.ow), (0, 0), phases);
    // ȳ (i, j) of tile s: phase (i, j) at slot s (the tiles of ȳ do not overlap).
    let x: [&[f32]; 16] = {
        let mut q = 0;
        [(); 16].map(|_| {
            let (i, j) = (q / 4, q % 4);
            q += 1;
            &cols[j * rl + i * len..][..t]
        })
    };
    let mut o = rows_mut::<36>(m, xi_stride, t);
    for_blocks!(t, grad_block(&x, &mut o));
}

/// `A y` of one 4-vector (`A` = `Aᵀ`'s transpose, 6×4).
#[inline(always)]
fn a6<const W: usize>([y0, y1, y2, y3]: [Lanes<W>; 4]) -> [Lanes<W>; 6] {
    let (s02, s13) = (y0 + y2, y1 + y3);
    let (e, f) = (y0 + y2 * 4.0, (y1 + y3 * 4.0) * 2.0);
    [y0, s02 + s13, s02 - s13, e + f, e - f, y3]
}

/// `A ȳ Aᵀ` of the `W` tiles from slot `k` (`ȳ_ij = x[4i + j]`), stored to
/// `o[6a + b][k..k + W]`.
#[inline(always)]
fn grad_block<const W: usize>(x: &[&[f32]; 16], o: &mut [&mut [f32]; 36], k: usize) {
    let zero = Lanes([0.0; W]);
    // Down the columns (t[j][a] = Σ_i A[a][i] ȳ_ij), then across the rows.
    let mut t = [[zero; 6]; 4];
    for j in 0..4 {
        let ld = |i: usize| Lanes::load(x[4 * i + j], k);
        t[j] = a6([ld(0), ld(1), ld(2), ld(3)]);
    }
    for a in 0..6 {
        let r = a6([t[0][a], t[1][a], t[2][a], t[3][a]]);
        for b in 0..6 {
            r[b].store(o[6 * a + b], k);
        }
    }
}

/// `ḡ = Gᵀ Ū G` of one kernel's 36 summed products `Ū` (`uu[6a + b]`): the weight gradient
/// from the transformed domain, row-major 3×3.
pub(super) fn kernel_grad(uu: [f32; 36]) -> [f32; 9] {
    let gt = |u: [f32; 6]| -> [f32; 3] {
        [
            u[0] / 4.0 - (u[1] + u[2]) / 6.0 + (u[3] + u[4]) / 24.0,
            (u[2] - u[1]) / 6.0 + (u[3] - u[4]) / 12.0,
            (u[3] + u[4] - u[1] - u[2]) / 6.0 + u[5],
        ]
    };
    // Gᵀ down the columns, then across the rows.
    let cols: [[f32; 3]; 6] = std::array::from_fn(|b| gt(std::array::from_fn(|a| uu[6 * a + b])));
    let mut k = [0.0f32; 9];
    for r in 0..3 {
        let row = gt(std::array::from_fn(|b| cols[b][r]));
        k[3 * r..3 * r + 3].copy_from_slice(&row);
    }
    k
}

/// The `K` rows `r·stride`, each `len` long, of `buf`.
fn rows_mut<const K: usize>(buf: &mut [f32], stride: usize, len: usize) -> [&mut [f32]; K] {
    let mut it = buf.chunks_mut(stride);
    std::array::from_fn(|_| &mut it.next().expect("row in buffer")[..len])
}

/// `(Bᵀ d B)` of the `W` tiles from slot `k` (`d_ab = x[6a + b]`), stored to
/// `o[6i + j][k..k + W]`.
#[inline(always)]
fn in_block<const W: usize>(x: &[&[f32]; 36], o: &mut [&mut [f32]; 36], k: usize) {
    let zero = Lanes([0.0; W]);
    // Down the columns (t[b][i] = Σ_a Bᵀ[i][a] d_ab), then across the rows.
    let mut t = [[zero; 6]; 6];
    for b in 0..6 {
        let ld = |a: usize| Lanes::load(x[6 * a + b], k);
        t[b] = bt6([ld(0), ld(1), ld(2), ld(3), ld(4), ld(5)]);
    }
    for i in 0..6 {
        let r = bt6([t[0][i], t[1][i], t[2][i], t[3][i], t[4][i], t[5][i]]);
        for j in 0..6 {
            r[j].store(o[6 * i + j], k);
        }
    }
}

/// Elements an output-transform call aims at: the products of several output channels are
/// transformed together (their rows are contiguous), so that a call covers a few hundred tiles
/// and its four result rows stay in L1/L2.
const CHUNK: usize = 512;

/// How many output channels one output-transform call takes, for GEMM rows `cols` long.
pub(super) fn output_chunk(p: &Plan, cols: usize) -> usize {
    (CHUNK / cols).clamp(1, p.og())
}

/// Scratch floats the output transform needs, for GEMM rows up to `cols` long (a call's
/// `output_chunk(p, c)·c` is at most `max(CHUNK, c)` for any `c`, including a last block's
/// shorter rows).
pub(super) fn scratch_len(cols: usize) -> usize {
    16 * CHUNK.max(cols)
}

/// `Y = Aᵀ m A` for `l` consecutive tiles of the products (`m[ξ·xi_stride..][..l]`): row `i`
/// of tile `s`'s result goes to `z[i·4l + 4s..][..4]`; returns `z` (`scratch[..16·l]`).
pub(super) fn output_transform<'s>(
    m: &[f32],
    xi_stride: usize,
    l: usize,
    scratch: &'s mut [f32],
) -> &'s [f32] {
    let z = &mut scratch[..16 * l];
    output_into(m, xi_stride, l, z);
    z
}

fn output_into(m: &[f32], xi_stride: usize, l: usize, z: &mut [f32]) {
    dispatch_simd!(output_generic, output_avx2, output_avx512, (m, xi_stride, l, z))
}

simd_builds!(output_generic => output_avx2, output_avx512, [],
    (m: &[f32], xi_stride: usize, l: usize, z: &mut [f32]));

#[inline(always)]
fn output_generic(m: &[f32], xi_stride: usize, l: usize, z: &mut [f32]) {
    let x: [&[f32]; 36] = {
        let mut it = m.chunks(xi_stride);
        std::array::from_fn(|_| &it.next().expect("tap row")[..l])
    };
    let mut z = rows_mut::<4>(z, 4 * l, 4 * l);
    for_blocks!(l, out_block(&x, &mut z));
}

/// `Aᵀ m A` of the `W` tiles from slot `k`, rows interleaved into `z[i][4k..4k + 4W]`.
#[inline(always)]
fn out_block<const W: usize>(x: &[&[f32]; 36], z: &mut [&mut [f32]; 4], k: usize) {
    let zero = Lanes([0.0; W]);
    let mut t = [[zero; 4]; 6];
    for b in 0..6 {
        let ld = |a: usize| Lanes::load(x[6 * a + b], k);
        t[b] = at6([ld(0), ld(1), ld(2), ld(3), ld(4), ld(5)]);
    }
    for i in 0..4 {
        let r = at6([t[0][i], t[1][i], t[2][i], t[3][i], t[4][i], t[5][i]]);
        let dst = &mut z[i][4 * k..4 * (k + W)];
        for w in 0..W {
            for j in 0..4 {
                dst[4 * w + j] = r[j].0[w];
            }
        }
    }
}

/// Write one output plane from the interleaved rows `z` of [`output_transform`] (`l` tiles),
/// this plane's tile `s` being tile `col + s` there: output row `4·ty + i` is
/// `z[i·4l + 4(col + ty·tp)..][..ow]`.
pub(super) fn scatter_tiles(p: &Plan, z: &[f32], l: usize, col: usize, out: &mut [f32]) {
    dispatch_simd!(scatter_generic, scatter_avx2, scatter_avx512, (p, z, l, col, out))
}

simd_builds!(scatter_generic => scatter_avx2, scatter_avx512, [],
    (p: &Plan, z: &[f32], l: usize, col: usize, out: &mut [f32]));

#[inline(always)]
fn scatter_generic(p: &Plan, z: &[f32], l: usize, col: usize, out: &mut [f32]) {
    for (oy, row) in out.chunks_exact_mut(p.ow).take(p.oh).enumerate() {
        let (ty, i) = (oy / 4, oy % 4);
        copy_row(row, &z[i * 4 * l + 4 * (col + ty * p.tp())..]);
    }
}
