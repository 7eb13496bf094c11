//! Small matrix products against a right-hand side packed once and reused many times: the
//! recurrent weights of [`lstm_seq`](super::rnn::lstm_seq) and
//! [`lstm_seq_grad`](super::rnn::lstm_seq_grad), multiplied by a `[B, H]` state at every one of
//! `T` steps.
//!
//! Why not `gemm` there: each step's product is small (W4: 32 × 64 × 128 per gate and half),
//! and `gemm` packs both operands on every call — the weight's 128 rows 512 bytes apart (L1
//! set conflicts) and the same state once per gate. Measured on W4's sizes (Intel Xeon,
//! AVX-512), the per-step products ran at about 100 GFLOP/s on one thread and gained little
//! from a second. Here the weight's columns are packed once per sequence into panels of
//! [`NR`] contiguous columns (`k × NR`, zero-padded), the state is read in place, and a
//! register tile of `MR × NR` accumulators (16 vector registers at AVX-512 width) runs the
//! `k` loop; the destination may start from another matrix (`init`: the input projections)
//! so that no copy of it is made first.
//!
//! Every output element is `init + Σ_p a[i, p]·b[p, j]` accumulated in `p` order with fused
//! multiply-adds, whatever the tile, build or thread: the AVX-512, AVX2 and baseline builds
//! (the last calls the C library's `fma` on x86 CPUs without FMA, correct but slow) give
//! the same bits, and so does the naive loop in the tests.

use num_traits::Float;

/// Columns per packed panel (two 512-bit vectors of `f32`).
pub(crate) const NR: usize = 32;

/// A right-hand side `B` (`k × n` in segments of columns) packed for [`PackedRhs::product`].
#[derive(Debug, Clone)]
pub(crate) struct PackedRhs<T> {
    data: Vec<T>,
    k: usize,
    /// `(n, offset in data)` of each segment.
    segs: Vec<(usize, usize)>,
}

impl<T: Float> PackedRhs<T> {
    /// Packs the column ranges `segs` (start column, width) of the `k`-row matrix whose element
    /// `(p, j)` is `b[p·rs + j·cs]`; each segment becomes `⌈width / NR⌉` panels of `k × NR`.
    ///
    /// Panics (a caller bug) when an element lies outside `b`.
    pub(crate) fn new(b: &[T], (rs, cs): (usize, usize), k: usize, segs: &[(usize, usize)]) -> Self {
        let panels: usize = segs.iter().map(|&(_, n)| n.div_ceil(NR)).sum();
        let mut data = Vec::with_capacity(panels * k * NR);
        let mut out = Vec::with_capacity(segs.len());
        for &(col, n) in segs {
            out.push((n, data.len()));
            for panel in 0..n.div_ceil(NR) {
                for p in 0..k {
                    data.extend((0..NR).map(|jj| {
                        let j = panel * NR + jj;
                        if j < n {
                            b[p * rs + (col + j) * cs]
                        } else {
                            T::zero()
                        }
                    }));
                }
            }
        }
        PackedRhs { data, k, segs: out }
    }

    /// `dst[i, j] = init[i, j] + Σ_p a[i, p]·B_seg[p, j]` for the `m` rows `i` and the columns
    /// `j` of segment `seg`, where `init` is `dst` itself when `accumulate` and `init` is
    /// `None`, and zero when neither; `dst`, `init` and `a` are row-major with row strides
    /// `ldd`, the one paired with `init`, and `lda` (`a` is `m × k`).
    ///
    /// # Safety
    /// `a` must be valid for reads of `m` rows of `k` elements at stride `lda`, `init` for
    /// reads and `dst` for writes of `m` rows of the segment's width at their strides, and
    /// `dst` must not overlap `a` or the packed data (it may equal `init`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn product(
        &self,
        seg: usize,
        m: usize,
        dst: *mut T,
        ldd: usize,
        init: Option<(*const T, usize)>,
        accumulate: bool,
        a: *const T,
        lda: usize,
    ) {
        let (n, at) = self.segs[seg];
        let init = init.or(if accumulate { Some((dst.cast_const(), ldd)) } else { None });
        let job = Job { m, n, k: self.k, dst, ldd, init, a, lda, b: self.data[at..].as_ptr() };
        #[cfg(target_arch = "x86_64")]
        {
            if super::simd::has_avx512() {
                // SAFETY: the CPU has the AVX-512 subsets the build enables (checked); the
                // pointers are the caller's contract.
                return unsafe {
                    if size_of::<T>() == 4 {
                        run_avx512::<T, 8>(&job)
                    } else {
                        run_avx512::<T, 4>(&job)
                    }
                };
            }
            if super::simd::has_avx2_fma() {
                // SAFETY: the CPU has AVX2 and FMA (checked); the pointers are the caller's.
                return unsafe {
                    if size_of::<T>() == 4 {
                        run_avx2::<T, 2>(&job)
                    } else {
                        run_avx2::<T, 1>(&job)
                    }
                };
            }
        }
        // SAFETY: the caller's contract.
        unsafe { run::<T, 2>(&job) }
    }
}

/// One product: see [`PackedRhs::product`]; `b` points at the segment's first panel.
struct Job<T> {
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    ldd: usize,
    init: Option<(*const T, usize)>,
    a: *const T,
    lda: usize,
    b: *const T,
}

super::simd::avx512_build! {
    #[inline(never)]
    unsafe fn run_avx512<T: Float, const MR: usize>(job: &Job<T>) {
        // SAFETY: forwarded.
        unsafe { run::<T, MR>(job) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn run_avx2<T: Float, const MR: usize>(job: &Job<T>) {
    // SAFETY: forwarded.
    unsafe { run::<T, MR>(job) }
}

/// Rows of `a`'s `k` columns per pass: a panel's `KC × NR` block (16 KiB in `f32`) stays in
/// L1 while every row block runs against it.
const KC: usize = 128;

/// Passes over `KC` of the `k` columns (each pass after the first continues from the partial
/// sums the previous one stored, so the sums keep their order), then row blocks of `MR` (the
/// remaining rows one tile each), then panels of [`NR`] columns.
#[inline(always)]
unsafe fn run<T: Float, const MR: usize>(job: &Job<T>) {
    let mut k0 = 0;
    loop {
        let kc = KC.min(job.k - k0);
        let init = if k0 == 0 { job.init } else { Some((job.dst.cast_const(), job.ldd)) };
        let mut r = 0;
        while r < job.m {
            let rows = MR.min(job.m - r);
            for panel in 0..job.n.div_ceil(NR) {
                let cols = NR.min(job.n - panel * NR);
                // SAFETY: row block `r..r + rows`, columns `panel·NR..+cols` and `a`'s columns
                // `k0..k0 + kc` lie inside the caller's matrices; the block inside the packed
                // segment.
                unsafe {
                    let t = Tile {
                        k: kc,
                        a: job.a.add(r * job.lda + k0),
                        lda: job.lda,
                        b: job.b.add((panel * job.k + k0) * NR),
                        dst: job.dst.add(r * job.ldd + panel * NR),
                        ldd: job.ldd,
                        init: init.map(|(p, ld)| (p.add(r * ld + panel * NR), ld)),
                        cols,
                    };
                    if rows == MR {
                        tile::<T, MR>(&t);
                    } else {
                        for i in 0..rows {
                            let one = Tile { a: t.a.add(i * t.lda), dst: t.dst.add(i * t.ldd), ..t };
                            let one = Tile { init: t.init.map(|(p, ld)| (p.add(i * ld), ld)), ..one };
                            tile::<T, 1>(&one);
                        }
                    }
                }
            }
            r += rows;
        }
        k0 += kc;
        if k0 >= job.k {
            return;
        }
    }
}

/// One register tile: `R` rows of `a` against one packed panel, `cols ≤ NR` columns stored.
#[derive(Clone, Copy)]
struct Tile<T> {
    k: usize,
    a: *const T,
    lda: usize,
    b: *const T,
    dst: *mut T,
    ldd: usize,
    init: Option<(*const T, usize)>,
    cols: usize,
}

#[inline(always)]
unsafe fn tile<T: Float, const R: usize>(t: &Tile<T>) {
    // Whole `[T; NR]` rows move in and out of the accumulators (partial panels through a
    // zero-padded copy), so that every index into `acc` is a constant and LLVM keeps it in
    // vector registers.
    let mut acc = [[T::zero(); NR]; R];
    if let Some((p, ld)) = t.init {
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: row `r` of `init` has `cols` readable elements (caller).
            *row = unsafe { load_row(p.add(r * ld), t.cols) };
        }
    }
    for p in 0..t.k {
        // SAFETY: panel row `p` has `NR` elements; `a`'s rows have `k`.
        let b = unsafe { *(t.b.add(p * NR) as *const [T; NR]) };
        for (r, row) in acc.iter_mut().enumerate() {
            let x = unsafe { *t.a.add(r * t.lda + p) };
            for j in 0..NR {
                row[j] = x.mul_add(b[j], row[j]);
            }
        }
    }
    for (r, row) in acc.into_iter().enumerate() {
        // SAFETY: row `r` of `dst` has `cols` writable elements (caller).
        unsafe { store_row(t.dst.add(r * t.ldd), row, t.cols) };
    }
}

#[inline(always)]
unsafe fn load_row<T: Float>(p: *const T, cols: usize) -> [T; NR] {
    if cols == NR {
        // SAFETY: `NR` readable elements (caller); unaligned read.
        unsafe { (p as *const [T; NR]).read_unaligned() }
    } else {
        let mut row = [T::zero(); NR];
        // SAFETY: `cols` readable elements (caller).
        unsafe { std::ptr::copy_nonoverlapping(p, row.as_mut_ptr(), cols) };
        row
    }
}

#[inline(always)]
unsafe fn store_row<T: Float>(p: *mut T, row: [T; NR], cols: usize) {
    if cols == NR {
        // SAFETY: `NR` writable elements (caller); unaligned write.
        unsafe { (p as *mut [T; NR]).write_unaligned(row) }
    } else {
        // A copy of its own, so that the variable-length copy below does not keep the
        // accumulators in memory.
        let row = std::hint::black_box(row);
        // SAFETY: `cols` writable elements (caller).
        unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), p, cols) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The naive product with the same fused multiply-adds in the same order.
    fn naive(
        a: &[f32],
        b: &[f32],
        init: &[f32],
        (m, n, k): (usize, usize, usize),
        col: usize,
        ldb: usize,
    ) -> Vec<f32> {
        let mut out = init.to_vec();
        for i in 0..m {
            for j in 0..n {
                let mut acc = init[i * n + j];
                for p in 0..k {
                    acc = a[i * k + p].mul_add(b[p * ldb + col + j], acc);
                }
                out[i * n + j] = acc;
            }
        }
        out
    }

    proptest! {
        #[test]
        fn matches_the_naive_product_bitwise(
            m in 1usize..20, n in 1usize..80, k in 0usize..300, col in 0usize..5, seed in 0u64..1000,
            mode in 0usize..3,
        ) {
            let ldb = col + n + 3;
            let mut s = seed;
            let mut next = || {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            };
            let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
            let b: Vec<f32> = (0..k * ldb).map(|_| next()).collect();
            let init: Vec<f32> = (0..m * n).map(|_| next()).collect();
            let packed = PackedRhs::new(&b, (ldb, 1), k, &[(0, 1), (col, n)]);
            let mut dst = if mode == 1 { init.clone() } else { vec![f32::NAN; m * n] };
            let (from, accumulate) = match mode {
                0 => (Some((init.as_ptr(), n)), false),
                1 => (None, true),
                _ => (None, false),
            };
            // SAFETY: every matrix has the sizes the product reads and writes.
            unsafe { packed.product(1, m, dst.as_mut_ptr(), n, from, accumulate, a.as_ptr(), k) };
            let zero = vec![0.0; m * n];
            let want = naive(&a, &b, if mode == 2 { &zero } else { &init }, (m, n, k), col, ldb);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&dst), bits(&want));
        }
    }

    #[test]
    fn f64_and_a_column_major_rhs() {
        let (m, n, k) = (9, 37, 5);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        // B stored column-major: element (p, j) at j·k + p.
        let bt: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let packed = PackedRhs::new(&bt, (1, k), k, &[(0, n)]);
        let mut dst = vec![0.0; m * n];
        // SAFETY: sizes as above.
        unsafe { packed.product(0, m, dst.as_mut_ptr(), n, None, false, a.as_ptr(), k) };
        for i in 0..m {
            for j in 0..n {
                let want = (0..k).fold(0.0f64, |acc, p| a[i * k + p].mul_add(bt[j * k + p], acc));
                assert_eq!(dst[i * n + j].to_bits(), want.to_bits(), "({i}, {j})");
            }
        }
    }
}
