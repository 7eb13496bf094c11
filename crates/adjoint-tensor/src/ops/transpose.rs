//! Row-major copies of strided 2-D views — a transposed matrix above all (`Array::to_vec` and
//! `contiguous` of a weight gradient, a `Wᵀ` operand, a bucket of gradients to allreduce).
//!
//! ## Design choices
//! - **Small square tiles.** A transposed view's source rows lie a whole matrix row apart;
//!   when that distance is a multiple of 4 KiB / 8 (W2's 512-wide weights: 2 KiB), a row-by-row
//!   walk keeps evicting its own source lines, which map to the same few L1 sets. 16 × 16
//!   tiles keep every source line they touch in L1 until the tile is done.
//! - **`f32` transposes in AVX registers.** An `f32` view with strides `(1, s)` (storage row
//!   `j` is column `j`) is copied in 8 × 8 blocks: eight 32-byte loads, an in-register
//!   transpose, eight 32-byte stores, instead of 64 scalar loads and stores. Blocks go down 16
//!   rows at a time so each 64-byte source line is used whole. Measured on W2's gradients (2.7
//!   MB): 0.95 ms in scalar 16 × 16 tiles, 0.32–0.42 ms in AVX blocks (`adjoint-dist-worker
//!   bench-pack --fresh`, benches/LOG.md, issue 20). 16 × 16 AVX-512 blocks (whole-line loads
//!   and stores, with or without software prefetch) were tried on W2's `512 × 512` `Wᵀ` and
//!   were slower on one thread (131–138 µs against 108–112).
//! - **The destination is not zeroed first**: the copy writes every element of a buffer from
//!   the cache (`copy_2d_into_uninit`).
//! - **Rows split across the pool** above [`PAR_THRESHOLD`](super::PAR_THRESHOLD) elements
//!   (blocks of whole 16-row bands, so the tiles are the same): W2's `512 × 512` `Wᵀ` copy ran
//!   serially before every forward product (2% of the step's samples).

use std::mem::MaybeUninit;

use crate::dtype::{DType, Element};
use crate::layout::Layout;

/// Copy the 2-D view `l` of `src` into `dst` in row-major order (`dst.len()` = its element
/// count). Any strides, including negative ones, as long as the layout lies inside `src`.
///
/// ```
/// use adjoint_tensor::{ops::transpose::copy_2d_into, Array};
/// let a = Array::from_vec((0..6).map(|x| x as f32).collect::<Vec<_>>(), &[2, 3]).transpose(0, 1);
/// let mut dst = vec![0.0f32; 6];
/// copy_2d_into(&mut dst, a.storage_slice::<f32>(), a.layout());
/// assert_eq!(dst, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
/// ```
#[track_caller]
pub fn copy_2d_into<T: Element>(dst: &mut [T], src: &[T], l: &Layout) {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the copy writes only initialised `T`s.
    let dst = unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<MaybeUninit<T>>(), dst.len()) };
    copy_2d_into_uninit(dst, src, l)
}

/// [`copy_2d_into`] into memory not yet written (a buffer from the cache): every element of
/// `dst` is written.
#[track_caller]
pub(crate) fn copy_2d_into_uninit<T: Element>(dst: &mut [MaybeUninit<T>], src: &[T], l: &Layout) {
    if l.rank() == 2 && l.shape[0] >= 32 && super::parallel(l.shape[0] * l.shape[1]) {
        use rayon::prelude::*;
        let threads = rayon::current_num_threads();
        let (c, s0) = (l.shape[1], l.strides[0]);
        let band = l.shape[0].div_ceil(threads).next_multiple_of(16);
        assert_eq!(dst.len(), l.shape[0] * c, "copy_2d_into: {} elements into {}", l.shape[0] * c, dst.len());
        dst.par_chunks_mut(band * c).enumerate().for_each(|(k, d)| {
            let first = l.offset as isize + (k * band) as isize * s0;
            let mut part = l.clone();
            part.shape[0] = d.len() / c;
            part.offset = usize::try_from(first).expect("copy_2d_into: the layout lies inside the storage");
            copy_2d(d, src, &part, |x| x, true)
        });
        return;
    }
    copy_2d(dst, src, l, |x| x, true)
}

/// [`copy_2d_into_uninit`] with each element converted by `f` on the way (`Array::to_vec` into
/// another element type); the scalar tiles only.
#[track_caller]
pub(crate) fn copy_2d_map<S: Element, T: Element>(
    dst: &mut [MaybeUninit<T>],
    src: &[S],
    l: &Layout,
    f: impl Fn(S) -> T,
) {
    copy_2d(dst, src, l, f, false)
}

/// The copy; `avx` (only for the identity `f`) allows the `f32` register transposes.
#[track_caller]
fn copy_2d<S: Element, T: Element>(
    dst: &mut [MaybeUninit<T>],
    src: &[S],
    l: &Layout,
    f: impl Fn(S) -> T,
    avx: bool,
) {
    const B: usize = 16;
    assert_eq!(l.rank(), 2, "copy_2d_into: a 2-D layout, got shape {:?}", l.shape.as_slice());
    let (r, c) = (l.shape[0], l.shape[1]);
    assert_eq!(dst.len(), r * c, "copy_2d_into: {} elements into {}", r * c, dst.len());
    if r == 0 || c == 0 {
        return;
    }
    let (s0, s1) = (l.strides[0], l.strides[1]);
    let off = l.offset as isize;
    let at = |i: usize, j: usize| off + i as isize * s0 + j as isize * s1;
    // Every corner inside the storage bounds every element (strides are linear).
    for (i, j) in [(0, 0), (r - 1, 0), (0, c - 1), (r - 1, c - 1)] {
        let o = at(i, j);
        assert!(
            o >= 0 && (o as usize) < src.len(),
            "copy_2d_into: layout {l:?} leaves a storage of {}",
            src.len()
        );
    }
    let (mut r_done, mut c_done) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if avx
        && S::DTYPE == DType::F32
        && T::DTYPE == DType::F32
        && s0 == 1
        && s1 > 0
        && std::arch::is_x86_feature_detected!("avx")
    {
        (r_done, c_done) = (r / 8 * 8, c / 8 * 8);
        // SAFETY: `S` and `T` are `f32` (checked above, `Element` types are distinct); the corners
        // checked above keep every element of the view inside `src`, and the blocks stay inside
        // `r_done × c_done` of a `dst` of `r × c`; the kernel only writes `dst`.
        unsafe {
            let dst = std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<f32>(), dst.len());
            let src = std::slice::from_raw_parts(src.as_ptr().cast::<f32>(), src.len());
            transpose_blocks_avx(dst, src, l.offset, s1 as usize, r_done, c_done, c);
        }
    }
    let mut tiles = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
        for ib in rows.clone().step_by(B) {
            let ie = (ib + B).min(rows.end);
            for jb in cols.clone().step_by(B) {
                let je = (jb + B).min(cols.end);
                for i in ib..ie {
                    for (j, x) in (jb..je).zip(&mut dst[i * c + jb..i * c + je]) {
                        x.write(f(src[at(i, j) as usize]));
                    }
                }
            }
        }
    };
    // Everything but the AVX blocks: the columns right of them, then the rows below them.
    tiles(0..r, c_done..c);
    tiles(r_done..r, 0..c_done);
}

/// Rows `0..r8` and columns `0..c8` (multiples of 8) of a 2-D `f32` view with strides
/// `(1, s1)` at `off` in `src` (a transposed matrix: storage row `j` is column `j`), written
/// row-major into `dst` (rows of `c` elements): each 8 × 8 block is eight loads of 8
/// consecutive elements (one per column), an in-register transpose, and eight stores of 8
/// (one per row).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_blocks_avx(
    dst: &mut [f32],
    src: &[f32],
    off: usize,
    s1: usize,
    r8: usize,
    c8: usize,
    c: usize,
) {
    use std::arch::x86_64::*;
    if r8 == 0 || c8 == 0 {
        return;
    }
    assert!(off + (r8 - 1) + (c8 - 1) * s1 < src.len() && (r8 - 1) * c + c8 <= dst.len());
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for ib in (0..r8).step_by(16) {
        for jb in (0..c8).step_by(8) {
            for i0 in (ib..(ib + 16).min(r8)).step_by(8) {
                // SAFETY: rows i0..i0+8 ≤ r8 and columns jb..jb+8 ≤ c8 lie inside both slices
                // (asserted above).
                unsafe {
                    let p = s.add(off + i0 + jb * s1);
                    let r0 = _mm256_loadu_ps(p);
                    let r1 = _mm256_loadu_ps(p.add(s1));
                    let r2 = _mm256_loadu_ps(p.add(2 * s1));
                    let r3 = _mm256_loadu_ps(p.add(3 * s1));
                    let r4 = _mm256_loadu_ps(p.add(4 * s1));
                    let r5 = _mm256_loadu_ps(p.add(5 * s1));
                    let r6 = _mm256_loadu_ps(p.add(6 * s1));
                    let r7 = _mm256_loadu_ps(p.add(7 * s1));
                    let t0 = _mm256_unpacklo_ps(r0, r1);
                    let t1 = _mm256_unpackhi_ps(r0, r1);
                    let t2 = _mm256_unpacklo_ps(r2, r3);
                    let t3 = _mm256_unpackhi_ps(r2, r3);
                    let t4 = _mm256_unpacklo_ps(r4, r5);
                    let t5 = _mm256_unpackhi_ps(r4, r5);
                    let t6 = _mm256_unpacklo_ps(r6, r7);
                    let t7 = _mm256_unpackhi_ps(r6, r7);
                    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                    let q = d.add(i0 * c + jb);
                    _mm256_storeu_ps(q, _mm256_permute2f128_ps::<0x20>(u0, u4));
                    _mm256_storeu_ps(q.add(c), _mm256_permute2f128_ps::<0x20>(u1, u5));
                    _mm256_storeu_ps(q.add(2 * c), _mm256_permute2f128_ps::<0x20>(u2, u6));
                    _mm256_storeu_ps(q.add(3 * c), _mm256_permute2f128_ps::<0x20>(u3, u7));
                    _mm256_storeu_ps(q.add(4 * c), _mm256_permute2f128_ps::<0x31>(u0, u4));
                    _mm256_storeu_ps(q.add(5 * c), _mm256_permute2f128_ps::<0x31>(u1, u5));
                    _mm256_storeu_ps(q.add(6 * c), _mm256_permute2f128_ps::<0x31>(u2, u6));
                    _mm256_storeu_ps(q.add(7 * c), _mm256_permute2f128_ps::<0x31>(u3, u7));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Array;

    /// Every element lands where the strided walk puts it: transposes with sizes on and off the
    /// 8 × 8 blocks, sliced (offset, wider stride), flipped and plain strided views, f32 and f64.
    #[test]
    fn matches_the_elementwise_walk() {
        // The last three cross PAR_THRESHOLD, so the rows are split across the pool.
        for (r, c) in [
            (1, 1),
            (7, 9),
            (8, 8),
            (16, 24),
            (17, 33),
            (64, 40),
            (100, 3),
            (300, 230),
            (515, 129),
            (512, 512),
        ] {
            let base = Array::arange(0.0, (r * c * 3) as f64, 1.0, DType::F32).reshape(&[c * 3, r]);
            let views = [
                base.narrow(0, 0, c).transpose(0, 1),
                base.narrow(0, c, c).transpose(0, 1),
                base.reshape(&[r, c * 3]).narrow(1, 1, c),
                base.narrow(0, 0, c).transpose(0, 1).flip(1),
                base.narrow(0, 0, c).transpose(0, 1).flip(0),
            ];
            for (k, v) in views.iter().enumerate() {
                let want: Vec<f32> = {
                    let mut w = Vec::new();
                    v.layout().for_each_offset(|o| w.push(v.storage_slice::<f32>()[o]));
                    w
                };
                let mut got = vec![-1.0f32; r * c];
                copy_2d_into(&mut got, v.storage_slice::<f32>(), v.layout());
                assert_eq!(got, want, "f32 {r}x{c} view {k}");
                // `to_vec` copies into a cached buffer without zeroing it: leave NaN-filled ones.
                for _ in 0..4 {
                    drop(Array::from_vec(vec![f32::NAN; r * c], &[r * c]));
                }
                assert_eq!(v.to_vec::<f32>(), want, "to_vec f32 {r}x{c} view {k}");
                let mut conv = Vec::<f64>::with_capacity(r * c);
                copy_2d_map(
                    &mut conv.spare_capacity_mut()[..r * c],
                    v.storage_slice::<f32>(),
                    v.layout(),
                    |x| x as f64,
                );
                // SAFETY: the copy wrote all `r * c` elements.
                unsafe { conv.set_len(r * c) };
                assert_eq!(
                    conv,
                    want.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                    "f32→f64 {r}x{c} view {k}"
                );
                let v64 = v.cast(DType::F64);
                let t = v.transpose(0, 1).cast(DType::F64).transpose(0, 1);
                for a in [&v64, &t] {
                    let mut g64 = vec![-1.0f64; r * c];
                    copy_2d_into(&mut g64, a.storage_slice::<f64>(), a.layout());
                    assert_eq!(
                        g64,
                        want.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                        "f64 {r}x{c} view {k}"
                    );
                }
            }
        }
    }
}
