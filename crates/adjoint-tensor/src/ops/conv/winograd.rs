//! Winograd F(2×2, 3×3) and F(4×4, 3×3) for `f32` 3×3 convolutions with stride 1 and no
//! dilation: forward, input gradient and weight gradient, on F(4×4, 3×3) (`winograd/f43.rs`)
//! where a cost model of the tiles' padding says it is faster (28×28 planes, not 14×14).
//!
//! ## Design choices
//! - **Why Winograd.** Each 2×2 output tile is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` for the 4×4 input
//!   patch `d` around it: 16 multiplies per tile and channel pair instead of 36, so the
//!   multiply-adds drop 2.25× and the rest is additions in the transforms. The 16 products over
//!   channels are 16 independent GEMMs `M_ξ = U_ξ · V_ξ` (`[O/g, C/g] × [C/g, tiles]`), which go
//!   to `gemm` per image: one image's transformed input and products (`16·C·tiles`,
//!   `16·O·tiles` floats) stay in the per-core cache. F(4×4, 3×3) is the same scheme with 36
//!   GEMMs and 6×6 patches (4× fewer multiply-adds; see its module for the accuracy it costs).
//! - **Blocks of images.** A task transforms a block of images whose tiles sit side by side in
//!   the GEMMs' columns (about [`BLOCK_COLS`] of them), so that small planes (14×14: 20 tiles
//!   of 4×4) still give `gemm` enough columns; the weight gradient sums image by image.
//! - **`f32` only.** The transforms are exact in binary arithmetic (coefficients 0, ±1, ±½), and
//!   the error is that of a 16-term instead of 9-term sum per channel plus a few additions of
//!   terms at most 4× the size of an input element: about `2^-23 · 8 · Σ|x||w|`, which is
//!   below the `f32` GEMM's own error scale. `f64` stays on the im2col path (the core's gradient
//!   tables compare to 1e-12 there).
//! - **Transforms are contiguous vector operations over all tiles of a plane.** The tile grid
//!   gets one padding slot per tile row (`tw + 1` slots per row), and the input plane is split
//!   once into its four (row, column) parity phases laid out on that grid; then each of the 16
//!   `d_ab` is a phase shifted by whole slots, and `Bᵀ d B` (and `Aᵀ m A`, `A ȳ Aᵀ`) become
//!   additions of whole slot vectors, compiled for AVX2 when the CPU has it. The padding slots
//!   cost `1/(tw + 1)` more GEMM columns; they are never written out, and hold zeros in the
//!   weight gradient so they add nothing there.
//! - **Gradients reuse the machinery.** The input gradient of a 3×3 stride-1 convolution is the
//!   forward convolution of `grad_out` with the flipped, transposed kernel and padding `2 − p`,
//!   so it runs through the same driver. The weight gradient is the exact adjoint of the
//!   forward algorithm (here for F(2×2, 3×3); F(4×4, 3×3) likewise with 36 products): `Ū_ξ = Σ_images (A ȳ Aᵀ)_ξ · V_ξᵀ` (16 GEMMs of `[O/g, tiles] × [tiles, C/g]`)
//!   followed by `ḡ = Gᵀ Ū G`, 2.25× fewer multiply-adds than `Σ grad_out · colᵀ`.

use gemm::Parallelism;
use rayon::prelude::*;

use super::Geom;
use crate::ops::matmul::{gemm_into, gemm_parallelism, MatMut, MatRef};
use crate::ops::simd::dispatch_avx2;

mod f43;

/// Whether the Winograd kernels serve this convolution (for `f32`; the caller checks the dtype).
///
/// Narrow channel counts stay on im2col: with `C/g` or `O/g` below 8 the 16 GEMMs are too thin
/// for the transforms to pay (a first layer with one input channel is such a case).
pub(super) fn fits(g: &Geom) -> bool {
    // Read on every call (not once): `examples/conv_bench.rs` toggles it between samples.
    crate::env::switch("ADJOINT_CONV_WINOGRAD", true)
        && (g.kh, g.kw, g.sh, g.sw, g.dh, g.dw) == (3, 3, 1, 1, 1, 1)
        && g.ph <= 2
        && g.pw <= 2
        && g.cg() >= 8
        && g.og() >= 8
        && g.n > 0
        && g.oh > 0
        && g.ow > 0
}

/// One forward-type Winograd convolution: `[n, c, h, w]` → `[n, o, oh, ow]`, 3×3 kernel,
/// stride 1, padding `ph`/`pw`, `groups` groups.
#[derive(Clone, Copy, Debug)]
struct Plan {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    groups: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
    /// Output tile side: 2 for F(2×2, 3×3), 4 for F(4×4, 3×3).
    m: usize,
}

impl Plan {
    fn forward(g: &Geom, m: usize) -> Plan {
        Plan {
            m,
            n: g.n,
            c: g.c,
            h: g.h,
            w: g.w,
            o: g.o,
            groups: g.groups,
            ph: g.ph,
            pw: g.pw,
            oh: g.oh,
            ow: g.ow,
        }
    }
    /// The transposed convolution that computes the input gradient: reads `grad_out`, writes
    /// the input's shape.
    fn input_grad(g: &Geom, m: usize) -> Plan {
        Plan {
            m,
            n: g.n,
            c: g.o,
            h: g.oh,
            w: g.ow,
            o: g.c,
            groups: g.groups,
            ph: 2 - g.ph,
            pw: 2 - g.pw,
            oh: g.h,
            ow: g.w,
        }
    }
    fn cg(&self) -> usize {
        self.c / self.groups
    }
    fn og(&self) -> usize {
        self.o / self.groups
    }
    fn th(&self) -> usize {
        self.oh.div_ceil(self.m)
    }
    fn tw(&self) -> usize {
        self.ow.div_ceil(self.m)
    }
    /// Taps per tile (`(m + 2)²`): the number of products, GEMMs and transformed planes.
    fn taps(&self) -> usize {
        (self.m + 2) * (self.m + 2)
    }
    /// Row stride of the tile grid: one padding slot per tile row, so that every transform
    /// works on contiguous vectors over all slots (the padding slots hold garbage forward and
    /// zeros in the weight gradient, and are never written out).
    fn tp(&self) -> usize {
        self.tw() + 1
    }
    /// Tile slots per plane (the GEMMs' `n`).
    fn slots(&self) -> usize {
        self.th() * self.tp()
    }
    /// Length of one phase plane: `th + 1` rows of `tp`, plus a row for the shifted reads of the
    /// padding slots.
    fn phase_len(&self) -> usize {
        (self.th() + 2) * self.tp()
    }
}

/// `U = G g Gᵀ` of one 3×3 kernel (row-major), written to `u[ξ·stride]`.
#[inline]
fn kernel_transform(k: [f32; 9], u: &mut [f32], stride: usize) {
    let mut t = [[0.0f32; 3]; 4];
    for j in 0..3 {
        let (g0, g1, g2) = (k[j], k[3 + j], k[6 + j]);
        t[0][j] = g0;
        t[1][j] = 0.5 * (g0 + g1 + g2);
        t[2][j] = 0.5 * (g0 - g1 + g2);
        t[3][j] = g2;
    }
    for (i, r) in t.iter().enumerate() {
        let v = [r[0], 0.5 * (r[0] + r[1] + r[2]), 0.5 * (r[0] - r[1] + r[2]), r[2]];
        for (j, v) in v.into_iter().enumerate() {
            u[(4 * i + j) * stride] = v;
        }
    }
}

/// The transformed kernels `[groups][taps][og][cg]` of a plan. `flip` builds the input gradient's
/// kernels from the forward weight: output `a` and input `b` of the plan are the forward's input
/// channel `a` and output channel `b`, with the taps rotated by 180°.
fn transform_weights(p: &Plan, wt: &[f32], flip: bool) -> Vec<f32> {
    let (og, cg) = (p.og(), p.cg());
    let size = p.taps() * og * cg;
    let mut u = vec![0.0f32; p.groups * size];
    for gi in 0..p.groups {
        let ug = &mut u[gi * size..(gi + 1) * size];
        for a in 0..og {
            for b in 0..cg {
                let mut k = [0.0f32; 9];
                if flip {
                    // Forward weight [gi·cg + b, a, :, :] (forward output b of this group, input a).
                    let src = &wt[((gi * cg + b) * og + a) * 9..][..9];
                    for (t, v) in k.iter_mut().enumerate() {
                        *v = src[8 - t];
                    }
                } else {
                    k.copy_from_slice(&wt[((gi * og + a) * cg + b) * 9..][..9]);
                }
                match p.m {
                    4 => f43::kernel_transform(k, &mut ug[a * cg + b..], og * cg),
                    _ => kernel_transform(k, &mut ug[a * cg + b..], og * cg),
                }
            }
        }
    }
    u
}

/// Per-task buffers for a block of `images`: transformed input `[taps][cg][images·slots]`,
/// products `[taps][m_rows][images·slots]`, and scratch for one plane's transforms (its phase
/// planes and temporaries).
struct Bufs {
    v: Vec<f32>,
    m: Vec<f32>,
    scratch: Vec<f32>,
    /// F(4×4, 3×3)'s phase buffers for input planes and for output-gradient planes: zero at
    /// creation, then written only at the places every plane of its kind writes, so the
    /// padding stays zero without a fill per plane.
    phases: Vec<f32>,
    grad_phases: Vec<f32>,
}

impl Bufs {
    fn new(p: &Plan, m_rows: usize, images: usize) -> Bufs {
        let cols = images * p.slots();
        let scratch = match p.m {
            4 => f43::scratch_len(cols),
            _ => 4 * p.phase_len() + 12 * p.slots(),
        };
        let take = |n| crate::cache::take_filled(n, 0.0f32);
        let phases = if p.m == 4 { f43::phases_len(p) } else { 0 };
        Bufs {
            v: take(p.taps() * p.cg() * cols),
            m: take(p.taps() * m_rows * cols),
            scratch: take(scratch),
            phases: take(phases),
            grad_phases: take(phases),
        }
    }
}

impl Drop for Bufs {
    /// Back to the tensor cache: a convolution's buffers are the same sizes every step.
    fn drop(&mut self) {
        for v in [&mut self.v, &mut self.m, &mut self.scratch, &mut self.phases, &mut self.grad_phases] {
            crate::cache::give(std::mem::take(v));
        }
    }
}

#[inline(always)]
fn combine(dst: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = f(x, y);
    }
}

#[inline(always)]
fn combine3(dst: &mut [f32], a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) {
    for (((d, &x), &y), &z) in dst.iter_mut().zip(a).zip(b).zip(c) {
        *d = f(x, y, z);
    }
}

/// Split `plane` (`rows × cols`, zero-padded by `pad_r`/`pad_c` on the top/left) into the `m²`
/// phase planes `P[ra·m + cb][i·tp + j] = padded[m·i + ra][m·j + cb]`, `m` the plan's tile
/// side: phase `φ` is `phases[φ·phase_len..][..phase_len]`, zero where the padded plane is outside
/// `plane`. (F(2×2, 3×3) only: F(4×4, 3×3) lays its input out by rows, `winograd/f43.rs`.)
#[inline(always)]
fn split_phases(
    p: &Plan,
    plane: &[f32],
    (rows, cols): (usize, usize),
    (pad_r, pad_c): (usize, usize),
    phases: &mut [f32],
) {
    let (tp, len, m) = (p.tp(), p.phase_len(), p.m);
    phases[..m * m * len].fill(0.0);
    // Padded columns q = x + pad_c below m·tp land in phase q % m at slot q / m: a few
    // columns one by one up to the first multiple of m, then whole groups of m.
    let width = (m * tp).min(cols + pad_c);
    let q0 = pad_c.next_multiple_of(m).min(width);
    let groups = (width - q0) / m;
    for (y, row) in plane.chunks_exact(cols).take(rows).enumerate() {
        let r = y + pad_r;
        let (i, ra) = (r / m, r % m);
        if i * tp >= len {
            break;
        }
        let base = ra * m * len + i * tp;
        let mut put = |q: usize| phases[base + (q % m) * len + q / m] = row[q - pad_c];
        (pad_c..q0).for_each(&mut put);
        (q0 + groups * m..width).for_each(&mut put);
        let src = &row[q0 - pad_c..][..groups * m];
        let dst = &mut phases[base + q0 / m..];
        deinterleave::<2>(src, dst, len);
    }
}

/// `dst[j·stride + k] = src[M·k + j]`: the `M` phases of a row's whole groups of `M` columns.
#[inline(always)]
fn deinterleave<const M: usize>(src: &[f32], dst: &mut [f32], stride: usize) {
    let n = src.len() / M;
    let mut rows: [&mut [f32]; M] = {
        let mut it = dst.chunks_mut(stride);
        std::array::from_fn(|_| it.next().expect("phase"))
    };
    for r in rows.iter_mut() {
        *r = &mut std::mem::take(r)[..n];
    }
    for (k, group) in src.chunks_exact(M).enumerate() {
        for j in 0..M {
            rows[j][k] = group[j];
        }
    }
}

/// `V = Bᵀ d B` for every tile of one input plane, written to `v[ξ·xi_stride + slot]`.
#[inline(always)]
fn input_transform_generic(p: &Plan, plane: &[f32], v: &mut [f32], xi_stride: usize, scratch: &mut [f32]) {
    let (tp, len, t) = (p.tp(), p.phase_len(), p.slots());
    let (phases, tmp) = scratch.split_at_mut(4 * len);
    split_phases(p, plane, (p.h, p.w), (p.ph, p.pw), phases);
    // d_ab over all slots: phase (a%2, b%2) shifted by (a/2) rows and (b/2) columns.
    let d = |a: usize, b: usize| &phases[((a % 2) * 2 + b % 2) * len + (a / 2) * tp + b / 2..][..t];
    let (t0, rest) = tmp.split_at_mut(t);
    let (t1, rest) = rest.split_at_mut(t);
    let (t2, rest) = rest.split_at_mut(t);
    let t3 = &mut rest[..t];
    for i in 0..4 {
        // Bᵀ down the rows: row i is (d0 − d2, d1 + d2, d2 − d1, d1 − d3)[i], for each column b.
        for (b, tb) in [&mut *t0, &mut *t1, &mut *t2, &mut *t3].into_iter().enumerate() {
            match i {
                0 => combine(tb, d(0, b), d(2, b), |x, y| x - y),
                1 => combine(tb, d(1, b), d(2, b), |x, y| x + y),
                2 => combine(tb, d(2, b), d(1, b), |x, y| x - y),
                _ => combine(tb, d(1, b), d(3, b), |x, y| x - y),
            }
        }
        // … then across, the same combinations of the columns.
        let (v0, rest) = v[4 * i * xi_stride..].split_at_mut(xi_stride);
        let (v1, rest) = rest.split_at_mut(xi_stride);
        let (v2, v3) = rest.split_at_mut(xi_stride);
        combine(&mut v0[..t], t0, t2, |x, y| x - y);
        combine(&mut v1[..t], t1, t2, |x, y| x + y);
        combine(&mut v2[..t], t2, t1, |x, y| x - y);
        combine(&mut v3[..t], t1, t3, |x, y| x - y);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn input_transform_avx2(
    p: &Plan,
    plane: &[f32],
    v: &mut [f32],
    xi_stride: usize,
    scratch: &mut [f32],
) {
    input_transform_generic(p, plane, v, xi_stride, scratch)
}

fn input_transform(p: &Plan, plane: &[f32], v: &mut [f32], xi_stride: usize, scratch: &mut [f32]) {
    dispatch_avx2!(input_transform_generic, input_transform_avx2, (p, plane, v, xi_stride, scratch))
}

/// `Y = Aᵀ m A` for every tile of one output plane, reading `m[ξ·xi_stride + slot]`.
#[inline(always)]
fn output_transform_generic(p: &Plan, m: &[f32], xi_stride: usize, out: &mut [f32], scratch: &mut [f32]) {
    let (tp, t) = (p.tp(), p.slots());
    let mm = |xi: usize| &m[xi * xi_stride..][..t];
    let mut bufs = scratch[..12 * t].chunks_exact_mut(t);
    let mut next = || bufs.next().expect("12 temporaries");
    // Aᵀ down the rows: s0 = m0 + m1 + m2, s1 = m1 − m2 − m3, per column j.
    let s0: [&mut [f32]; 4] = std::array::from_fn(|_| next());
    let s1: [&mut [f32]; 4] = std::array::from_fn(|_| next());
    let y: [&mut [f32]; 4] = std::array::from_fn(|_| next());
    let [s00, s01, s02, s03] = s0;
    let [s10, s11, s12, s13] = s1;
    for (j, (a, b)) in
        [(&mut *s00, &mut *s10), (&mut *s01, &mut *s11), (&mut *s02, &mut *s12), (&mut *s03, &mut *s13)]
            .into_iter()
            .enumerate()
    {
        combine3(a, mm(j), mm(4 + j), mm(8 + j), |x, y, z| x + y + z);
        combine3(b, mm(4 + j), mm(8 + j), mm(12 + j), |x, y, z| x - y - z);
    }
    // … then across: y·0 = s0 + s1 + s2, y·1 = s1 − s2 − s3.
    let [y00, y01, y10, y11] = y;
    combine3(y00, s00, s01, s02, |x, y, z| x + y + z);
    combine3(y01, s01, s02, s03, |x, y, z| x - y - z);
    combine3(y10, s10, s11, s12, |x, y, z| x + y + z);
    combine3(y11, s11, s12, s13, |x, y, z| x - y - z);
    for ty in 0..p.th() {
        for (dy, (ya, yb)) in [(&*y00, &*y01), (&*y10, &*y11)].into_iter().enumerate() {
            let oy = 2 * ty + dy;
            if oy >= p.oh {
                break;
            }
            let (ya, yb) = (&ya[ty * tp..][..p.tw()], &yb[ty * tp..][..p.tw()]);
            let orow = &mut out[oy * p.ow..(oy + 1) * p.ow];
            let mut pairs = orow.chunks_exact_mut(2);
            for ((d, &a), &b) in (&mut pairs).zip(ya).zip(yb) {
                d[0] = a;
                d[1] = b;
            }
            if let [last] = pairs.into_remainder() {
                *last = ya[p.tw() - 1];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn output_transform_avx2(p: &Plan, m: &[f32], xi_stride: usize, out: &mut [f32], scratch: &mut [f32]) {
    output_transform_generic(p, m, xi_stride, out, scratch)
}

fn output_transform(p: &Plan, m: &[f32], xi_stride: usize, out: &mut [f32], scratch: &mut [f32]) {
    dispatch_avx2!(output_transform_generic, output_transform_avx2, (p, m, xi_stride, out, scratch))
}

/// `m̄ = A ȳ Aᵀ` for every tile of one output-gradient plane (the adjoint of the output
/// transform), written to `m[ξ·xi_stride + slot]`; zero in the padding slots.
#[inline(always)]
fn grad_transform_generic(p: &Plan, gy: &[f32], m: &mut [f32], xi_stride: usize, scratch: &mut [f32]) {
    let (len, t) = (p.phase_len(), p.slots());
    let (phases, tmp) = scratch.split_at_mut(4 * len);
    // ȳ_(dy,dx) for every slot: the phase planes of the unpadded gradient plane.
    split_phases(p, gy, (p.oh, p.ow), (0, 0), phases);
    let yb = |dy: usize, dx: usize| &phases[(dy * 2 + dx) * len..][..t];
    let (r0, rest) = tmp.split_at_mut(t);
    let r1 = &mut rest[..t];
    for i in 0..4 {
        // r = A ȳ: row i is (ȳ0, ȳ0 + ȳ1, ȳ0 − ȳ1, −ȳ1)[i], for both columns.
        for (dx, r) in [&mut *r0, &mut *r1].into_iter().enumerate() {
            match i {
                0 => r.copy_from_slice(yb(0, dx)),
                1 => combine(r, yb(0, dx), yb(1, dx), |x, y| x + y),
                2 => combine(r, yb(0, dx), yb(1, dx), |x, y| x - y),
                _ => combine(r, yb(1, dx), yb(1, dx), |x, _| -x),
            }
        }
        // … then m̄ = r Aᵀ: columns (r0, r0 + r1, r0 − r1, −r1).
        let (m0, rest) = m[4 * i * xi_stride..].split_at_mut(xi_stride);
        let (m1, rest) = rest.split_at_mut(xi_stride);
        let (m2, m3) = rest.split_at_mut(xi_stride);
        m0[..t].copy_from_slice(r0);
        combine(&mut m1[..t], r0, r1, |x, y| x + y);
        combine(&mut m2[..t], r0, r1, |x, y| x - y);
        combine(&mut m3[..t], r1, r1, |x, _| -x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn grad_transform_avx2(p: &Plan, gy: &[f32], m: &mut [f32], xi_stride: usize, scratch: &mut [f32]) {
    grad_transform_generic(p, gy, m, xi_stride, scratch)
}

fn grad_transform(p: &Plan, gy: &[f32], m: &mut [f32], xi_stride: usize, scratch: &mut [f32]) {
    dispatch_avx2!(grad_transform_generic, grad_transform_avx2, (p, gy, m, xi_stride, scratch))
}

/// Transform every input plane of one image's group into `bufs.v`, at column `col` of rows
/// `cols` long.
fn transform_group_input(p: &Plan, x_g: &[f32], bufs: &mut Bufs, col: usize, cols: usize) {
    let (cg, hw) = (p.cg(), p.h * p.w);
    for c in 0..cg {
        let (plane, v) = (&x_g[c * hw..(c + 1) * hw], &mut bufs.v[c * cols + col..]);
        match p.m {
            4 => f43::input_transform(p, plane, v, cg * cols, &mut bufs.phases),
            _ => input_transform(p, plane, v, cg * cols, &mut bufs.scratch),
        }
    }
}

/// Transform the products of one group of a block of images into its output planes.
fn transform_group_output(p: &Plan, gi: usize, out_b: &mut [f32], bufs: &mut Bufs, cols: usize) {
    let (og, t, ohw) = (p.og(), p.slots(), p.oh * p.ow);
    let images = cols / t;
    if p.m == 4 {
        // A chunk of output channels at a time: their product rows are contiguous, all images.
        let k = f43::output_chunk(p, cols);
        for a0 in (0..og).step_by(k) {
            let rows = k.min(og - a0);
            let l = rows * cols;
            let y = f43::output_transform(&bufs.m[a0 * cols..], og * cols, l, &mut bufs.scratch);
            for a in 0..rows {
                for i in 0..images {
                    let plane = &mut out_b[(i * p.o + gi * og + a0 + a) * ohw..][..ohw];
                    f43::scatter_tiles(p, y, l, a * cols + i * t, plane);
                }
            }
        }
        return;
    }
    for i in 0..images {
        for a in 0..og {
            let plane = &mut out_b[(i * p.o + gi * og + a) * ohw..][..ohw];
            output_transform(p, &bufs.m[a * cols + i * t..], og * cols, plane, &mut bufs.scratch);
        }
    }
}

/// A block of images of a forward-type plan: `out_b` (`[images, o, oh, ow]`) from `x_b`
/// (`[images, c, h, w]`). The images' tiles sit side by side in the GEMMs' columns, so that
/// small planes still give the GEMMs enough columns.
fn conv_block(p: &Plan, u: &[f32], x_b: &[f32], out_b: &mut [f32], bufs: &mut Bufs, par: Parallelism) {
    let (cg, og, t, taps) = (p.cg(), p.og(), p.slots(), p.taps());
    let (chw, hw, ohw) = (p.c * p.h * p.w, p.h * p.w, p.oh * p.ow);
    let images = out_b.len() / (p.o * ohw);
    let cols = images * t;
    for gi in 0..p.groups {
        for i in 0..images {
            transform_group_input(p, &x_b[i * chw + gi * cg * hw..][..cg * hw], bufs, i * t, cols);
        }
        for xi in 0..taps {
            gemm_into(
                (og, cols, cg),
                MatMut { data: &mut bufs.m[xi * og * cols..(xi + 1) * og * cols], rs: cols, cs: 1 },
                false,
                MatRef { data: u, offset: (gi * taps + xi) * og * cg, rs: cg, cs: 1 },
                MatRef { data: &bufs.v, offset: xi * cg * cols, rs: cols, cs: 1 },
                par,
            );
        }
        transform_group_output(p, gi, out_b, bufs, cols);
    }
}

/// GEMM columns a block of images aims at: enough for `gemm`'s packing to pay, few enough that
/// the block's transformed input and products stay near the core's L2.
const BLOCK_COLS: usize = 128;

/// Run a forward-type plan over the batch, in parallel over blocks of images when
/// `image_parallel`.
fn run_plan(p: &Plan, u: &[f32], x: &[f32], image_parallel: bool) -> Vec<f32> {
    let (chw, ohw) = (p.c * p.h * p.w, p.o * p.oh * p.ow);
    let n_out = p.n * ohw;
    // The output is zeroed block by block inside the tasks, just before the block writes it
    // (while it sits in the core's cache), not by one serial fill of the whole tensor first:
    // that fill was 6% of the 1-thread time and did not get faster with a second thread.
    let mut out: Vec<f32> = crate::cache::take(n_out);
    let zeroed = |o: &mut [std::mem::MaybeUninit<f32>]| -> &mut [f32] {
        for v in o.iter_mut() {
            v.write(0.0);
        }
        // SAFETY: every element was just initialised, and `MaybeUninit<f32>` has `f32`'s layout.
        unsafe { &mut *(o as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) }
    };
    let spare = &mut out.spare_capacity_mut()[..n_out];
    let mut images = (BLOCK_COLS / p.slots()).clamp(1, p.n);
    if image_parallel {
        // At least one block per thread; then one task per thread, each taking an equal run of
        // blocks with one set of buffers (`for_each_init` would build buffers per rayon split:
        // megabytes zero-filled a dozen times per call, 10% of the 2-thread time).
        let threads = rayon::current_num_threads();
        images = images.min(p.n.div_ceil(threads));
        let blocks = p.n.div_ceil(images);
        let per = blocks.div_ceil(threads.min(blocks));
        spare.par_chunks_mut(per * images * ohw).enumerate().for_each(|(task, out_t)| {
            let mut bufs = Bufs::new(p, p.og(), images);
            for (i, o) in out_t.chunks_mut(images * ohw).enumerate() {
                let b = task * per + i;
                let x_b = &x[b * images * chw..][..o.len() / ohw * chw];
                conv_block(p, u, x_b, zeroed(o), &mut bufs, Parallelism::None);
            }
        });
    } else {
        let mut bufs = Bufs::new(p, p.og(), images);
        let par = gemm_parallelism(p.og(), images * p.slots(), p.cg());
        for (b, o) in spare.chunks_mut(images * ohw).enumerate() {
            conv_block(p, u, &x[b * images * chw..][..o.len() / ohw * chw], zeroed(o), &mut bufs, par);
        }
    }
    // SAFETY: the chunks above cover `spare` (the first `n_out` elements), and `zeroed`
    // initialised each of them.
    unsafe { out.set_len(n_out) };
    out
}

thread_local! {
    /// A tile forced on this thread by [`with_tile`].
    static FORCED_TILE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Run `f` with the forward-type kernels of this thread on F(m×m, 3×3), `m` 2 or 4, whatever
/// the environment says (the choice is made on the calling thread, before any parallel work).
pub(super) fn with_tile<R>(m: usize, f: impl FnOnce() -> R) -> R {
    assert!(m == 2 || m == 4, "with_winograd_tile: tile {m} is not 2 or 4");
    /// Puts the previous setting back, also when `f` panics.
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED_TILE.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(FORCED_TILE.with(|t| t.replace(Some(m))));
    f()
}

/// Time of F(4×4, 3×3) per padded output element relative to F(2×2, 3×3), measured with
/// `conv_bench` on the 28×28 layer (where both tiles pad little: F(4×4) 1.17–1.28× faster,
/// i.e. 0.78–0.85 of F(2×2)'s time, at both thread counts; 2026-12-06).
const F43_RELATIVE_COST: f64 = 0.8;

/// The output tile of a forward-type kernel writing `oh × ow` planes: the one with the lower
/// modelled cost, `relative cost × padded grid / real grid` (a 14×14 plane pads to 16×20 slots
/// for 4×4 tiles but 14×16 for 2×2: F(2×2) wins there, measured 0.80–0.98×); forced by
/// `ADJOINT_CONV_WINOGRAD_TILE=2` or `4` (read per call: `conv_bench` toggles it) or
/// [`with_tile`].
fn forward_tile(oh: usize, ow: usize) -> usize {
    if let Some(m) = FORCED_TILE.with(|t| t.get()) {
        return m;
    }
    match crate::env::knob("ADJOINT_CONV_WINOGRAD_TILE", 0usize) {
        m @ (2 | 4) => return m,
        0 => {}
        other => eprintln!("adjoint: ADJOINT_CONV_WINOGRAD_TILE={other} is not 2 or 4; choosing by shape"),
    }
    // Slots per plane: tile rows × (tile columns + the padding slot), in output elements.
    let padded = |m: usize| (oh.div_ceil(m) * m * (ow.div_ceil(m) + 1) * m) as f64;
    if F43_RELATIVE_COST * padded(4) < padded(2) {
        4
    } else {
        2
    }
}

/// `conv2d` forward (`[n, o, oh, ow]`); `fits(g)` must hold.
pub(super) fn forward(g: &Geom, x: &[f32], wt: &[f32]) -> Vec<f32> {
    let p = Plan::forward(g, forward_tile(g.oh, g.ow));
    let u = transform_weights(&p, wt, false);
    run_plan(&p, &u, x, g.image_parallel())
}

/// `conv2d` input gradient (`[n, c, h, w]`); `fits(g)` must hold.
pub(super) fn input_grad(g: &Geom, gout: &[f32], wt: &[f32]) -> Vec<f32> {
    let p = Plan::input_grad(g, forward_tile(g.h, g.w));
    let u = transform_weights(&p, wt, true);
    run_plan(&p, &u, gout, g.image_parallel())
}

/// `conv2d` weight gradient (`[o, cg, 3, 3]`); `fits(g)` must hold. The tile is the forward
/// pass's (F(4×4, 3×3) where it is faster): the exact adjoint of that algorithm.
pub(super) fn weight_grad(g: &Geom, x: &[f32], gout: &[f32]) -> Vec<f32> {
    let p = Plan::forward(g, forward_tile(g.oh, g.ow));
    let (cg, og, t, taps) = (p.cg(), p.og(), p.slots(), p.taps());
    let (chw, hw, ohw) = (p.c * p.h * p.w, p.h * p.w, p.oh * p.ow);
    let size = p.groups * taps * og * cg;
    // Ū summed over a range of images.
    let partial = |images: std::ops::Range<usize>, par: Parallelism| -> Vec<f32> {
        let mut du = vec![0.0f32; size];
        let mut bufs = Bufs::new(&p, og, 1);
        for i in images {
            for gi in 0..p.groups {
                transform_group_input(&p, &x[i * chw + gi * cg * hw..][..cg * hw], &mut bufs, 0, t);
                for a in 0..og {
                    let plane = &gout[(i * p.o + gi * og + a) * ohw..][..ohw];
                    let m = &mut bufs.m[a * t..];
                    match p.m {
                        4 => f43::grad_transform(&p, plane, m, og * t, &mut bufs.grad_phases),
                        _ => grad_transform(&p, plane, m, og * t, &mut bufs.scratch),
                    }
                }
                for xi in 0..taps {
                    let off = (gi * taps + xi) * og * cg;
                    gemm_into(
                        (og, cg, t),
                        MatMut { data: &mut du[off..off + og * cg], rs: cg, cs: 1 },
                        true,
                        MatRef { data: &bufs.m, offset: xi * og * t, rs: t, cs: 1 },
                        MatRef { data: &bufs.v, offset: xi * cg * t, rs: 1, cs: t },
                        par,
                    );
                }
            }
        }
        du
    };
    let du = if g.image_parallel() {
        let tasks = rayon::current_num_threads().min(p.n);
        let per = p.n.div_ceil(tasks);
        (0..tasks)
            .into_par_iter()
            .map(|k| partial(k * per..((k + 1) * per).min(p.n), Parallelism::None))
            .reduce_with(|mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            })
            .unwrap_or_else(|| vec![0.0; size])
    } else {
        partial(0..p.n, gemm_parallelism(og, cg, t))
    };
    // ḡ = Gᵀ Ū G per kernel.
    let mut dw = vec![0.0f32; p.o * cg * 9];
    for gi in 0..p.groups {
        for a in 0..og {
            for b in 0..cg {
                let k = &mut dw[((gi * og + a) * cg + b) * 9..][..9];
                let at = |xi: usize| du[((gi * taps + xi) * og + a) * cg + b];
                if p.m == 4 {
                    k.copy_from_slice(&f43::kernel_grad(std::array::from_fn(at)));
                    continue;
                }
                let uu: [f32; 16] = std::array::from_fn(at);
                // Gᵀ Ū: 3×4.
                let mut r = [[0.0f32; 4]; 3];
                for j in 0..4 {
                    let (u0, u1, u2, u3) = (uu[j], uu[4 + j], uu[8 + j], uu[12 + j]);
                    r[0][j] = u0 + 0.5 * (u1 + u2);
                    r[1][j] = 0.5 * (u1 - u2);
                    r[2][j] = 0.5 * (u1 + u2) + u3;
                }
                for (i, row) in r.iter().enumerate() {
                    k[3 * i] = row[0] + 0.5 * (row[1] + row[2]);
                    k[3 * i + 1] = 0.5 * (row[1] - row[2]);
                    k[3 * i + 2] = 0.5 * (row[1] + row[2]) + row[3];
                }
            }
        }
    }
    dw
}
