//! Matrix products with NumPy's `matmul` semantics.
//!
//! ## Design choices
//! - **`gemm` does the work for `f32`/`f64`.** It takes a row and a column stride for each operand,
//!   so a transposed or sliced view (any positive strides) is multiplied in place, without the
//!   copy that a BLAS interface restricted to `N`/`T` layouts would need. Only matrix strides that
//!   are negative (flips) or zero (broadcast inside a matrix) make us copy the operand first.
//! - **Batch dimensions broadcast by offsets, not copies.** A broadcast batch dimension has
//!   stride 0, so every batch entry just starts at the same storage offset.
//! - **Parallelism goes where the work is.** One large product (`m·n·k ≥ 2²²`) lets `gemm` split
//!   it across the rayon pool; many small products run one per rayon task with a single-threaded
//!   `gemm`, which avoids `gemm`'s per-call threading overhead.
//! - **The result's layout is chosen per product.** `gemm` works on column-major results; a
//!   lone product with a narrow output or a transposed weight on the right is computed
//!   column-major and transposed into the row-major output (see [`column_major_result`]).
//! - **`i64` uses a plain loop** with wrapping arithmetic (as NumPy): integer products are for
//!   indices and counting, not for speed.

use gemm::Parallelism;
use rayon::prelude::*;
use smallvec::SmallVec;

use crate::array::Array;
use crate::dtype::{DType, FloatElement};
use crate::ensure;
use crate::error::{OrFail, Result, TensorError};
use crate::layout::{broadcast_shapes, Layout, Shape};
use crate::storage::filled;

/// Work (`m·n·k` multiply-adds) from which one product is worth splitting across threads, by
/// default: 2²² ≈ 161³. Measured on the LSTM step (W4: 64 products of 32×512×128 = 2.1 M MACs
/// per pass), splitting from 64³ made two threads slower than one (33–39 ms vs 25–27 ms);
/// from 2²² it is 25–29 ms, and the MLP, CNN and 1024³ steps are unchanged (benches/LOG.md).
pub(crate) const DEFAULT_GEMM_PAR_WORK: usize = 1 << 22;

/// Work from which one product is split across threads: `ADJOINT_GEMM_PAR_WORK` when set to a
/// number (read once; for measuring the threshold), otherwise [`DEFAULT_GEMM_PAR_WORK`].
pub(crate) fn gemm_par_work() -> usize {
    static WORK: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *WORK.get_or_init(|| crate::env::knob("ADJOINT_GEMM_PAR_WORK", DEFAULT_GEMM_PAR_WORK))
}

/// Products with at least this many rows copy an aliasing column-major right operand first
/// (see [`aliasing_columns`]); below it the copy costs more than it saves.
const COPY_RHS_MIN_ROWS: usize = 32;

/// True for a column-major right operand (`Wᵀ` of a row-major weight, as `Linear` multiplies)
/// whose columns lie a multiple of 256 elements apart, on a CPU where `gemm` packs such an
/// operand slowly. `gemm` packs it by reading down those columns, and with a power-of-two
/// distance every line it reads maps to the same few L1 sets. On the Intel Xeon measured, W2's
/// `[128, 512]·[512, 512]ᵀ` ran at 60 GFLOP/s against 98–106 for the same product with a
/// row-major operand (one thread; `examples/mlp_gemm_bench.rs`), and a row-major copy first
/// (`ops::transpose`, 50 µs for 512 × 512) brought it to 98 GFLOP/s including the copy. On the
/// AMD EPYC (Zen 1) measured, the uncopied operand loses nothing (2 threads: 989–997 µs
/// against 980–984 with `Wᵀ` already row-major) and the copy only adds its own time (1063–1099
/// µs; the W2 step 7.8–7.9 ms against 8.0–8.2), so AMD processors multiply it as it is. Other
/// distances (W2's 784) lose nothing measurable on either and are not copied.
fn aliasing_columns((rs, cs): (usize, usize)) -> bool {
    rs == 1 && cs > 1 && cs % 256 == 0 && !crate::ops::simd::is_amd()
}

/// Which layout a lone 2-D product's result is computed in before it lands, row-major, in
/// the output: `true` for column-major, then transposed by [`copy_2d_into_uninit`] (`m·n`
/// elements, a few µs for W2's `[128, 512]`).
///
/// `gemm` computes column-major results (a row-major one is the transposed product) and packs
/// its left operand in column panels. A row-major result therefore costs two things a
/// column-major one does not, on the shapes `Linear` multiplies:
/// - **a narrow output** (`n < 16`, a classifier head's 10 columns): the transposed product has
///   `n` rows, fewer than one 16-lane register, so every tile of the kernel is mostly empty;
/// - **a column-major right operand** (`Wᵀ` of a row-major weight) with fewer result rows than
///   columns (a batch smaller than the layer): the transposed product packs `Wᵀ`'s `n × k`
///   elements across their storage order, where the column-major one packs the smaller `m × k`
///   left operand that way and reads `Wᵀ` as it lies — worth the transpose of the result when
///   the packing saved, `(n − m)·k`, is at least twice its `m·n` (W2's `[128, 784]·[784, 512]`:
///   301 k against 131 k; a square product never). It also makes the row-major copy of `Wᵀ`
///   that [`aliasing_columns`] takes unnecessary.
///
/// A narrow output whose left operand is row-major (the head's forward `x·Wᵀ`) stays
/// row-major: packing all of `x` across its storage order cost more (47 µs against 25 for
/// `[128, 512]·[512, 10]`) than the empty tiles.
///
/// Measured on the Intel Xeon (AVX-512) of benches/LOG.md, 2 threads, `examples/mlp_gemm_bench.rs`
/// against `ADJOINT_GEMM_ORIENT=0` (every result row-major, as before): W2's forward
/// `[128, 784]·[512, 784]ᵀ` 306–311 µs against 336, `[128, 512]·[512, 512]ᵀ` 237–240 against
/// 243–250 (with the aliasing copy), the head's weight gradient `[512, 128]·[128, 10]` 10 µs
/// against 22; the whole W2 training step 1.88–1.92 ms against 1.94–2.00 (three interleaved
/// pairs). Not measured on AMD processors.
fn column_major_result(
    (m, n, k): (usize, usize, usize),
    (lr, lc): (usize, usize),
    (rr, rc): (usize, usize),
) -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ON.get_or_init(|| crate::env::switch("ADJOINT_GEMM_ORIENT", true)) || k < 16 {
        return false;
    }
    let narrow = n < 16 && m >= 64 && !(lc == 1 && lr > 1);
    // The packing saved, `(n - m)·k` elements, against the result's transpose, `m·n` (counted
    // twice: a read and a write at a stride): a square product has nothing to gain.
    let wt = rr == 1 && rc > 1 && lc == 1 && lr > 1 && m >= 32 && n.saturating_sub(m) * k >= 2 * m * n;
    narrow || wt
}

/// A read-only matrix inside a slice: element `(i, j)` is `data[offset + i*rs + j*cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// A mutable matrix filling a slice from its start: element `(i, j)` is `data[i*rs + j*cs]`.
pub(crate) struct MatMut<'a, T> {
    pub data: &'a mut [T],
    pub rs: usize,
    pub cs: usize,
}

/// Matrix elements from which a matrix-vector product (`m = 1` or `n = 1`) is split across
/// threads: 2¹⁸ (1 MiB of `f32`, about 35 µs on one core). A product reads each element of the
/// matrix once, so it is bound by one core's share of memory bandwidth (26–30 GB/s for W6's
/// `[2000, 1000]` on the Intel Xeon of benches/LOG.md) and splitting its rows or columns across
/// the pool nearly doubles that; below this size the wake-up of the pool costs more than it
/// saves.
const GEMV_PAR_WORK: usize = 1 << 18;

/// The number of pieces of `k` a matrix-vector product (`m = 1` or `n = 1`) is cut into when its
/// matrix is laid out along the output (`Aᵀ·g` or `g·A` of a row-major `A`: each output element
/// sums a strided column), or `None` to leave it to the usual paths: one piece per
/// [`GEMV_PAR_WORK`] matrix elements, at most 4.
///
/// Cutting such a product's output, as [`RawProduct::split`] does for the other layout (`A·x`:
/// each output element a dot product of one contiguous row), makes each thread read a strip of
/// every row: W6's `g·A` ran at 20 GB/s per thread against 30 for whole rows
/// (`examples/gemv_bench.rs`). Cut along `k`, each piece reads contiguous rows into its own
/// partial output, and the partials are added in order. The count depends on the shape alone,
/// never on the thread count (this path is taken on one thread as well), so the result is the
/// same on any pool. The cap is measured: W6's `g·A` on two threads ran at 34–39 GB/s in two
/// pieces, 47–58 in four and 39–43 in eight (three interleaved rounds, with
/// [`keep_warm`](crate::threads::keep_warm)).
fn gemv_inner_parts(
    (m, n, k): (usize, usize, usize),
    lhs: (usize, usize),
    rhs: (usize, usize),
) -> Option<usize> {
    let along_output = (n == 1 && m >= 32 && lhs.0 == 1) || (m == 1 && n >= 32 && rhs.1 == 1);
    let parts = (m * n * k / GEMV_PAR_WORK).min(4).min(k / 16);
    (along_output && parts > 1).then_some(parts)
}

/// The parallelism `gemm` should use for one `m×k · k×n` product.
pub(crate) fn gemm_parallelism(m: usize, n: usize, k: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    let work = m.saturating_mul(n).saturating_mul(k);
    let gemv = m.min(n) == 1 && m.max(n) >= 32;
    if threads > 1 && (work >= gemm_par_work() || (gemv && work >= GEMV_PAR_WORK)) {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

fn last_index(rows: usize, cols: usize, offset: usize, rs: usize, cs: usize) -> usize {
    offset + (rows - 1) * rs + (cols - 1) * cs
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` when `accumulate`), for `m×k · k×n`.
///
/// Bounds are checked once here, so callers stay safe code.
pub(crate) fn gemm_into<T: FloatElement>(
    (m, n, k): (usize, usize, usize),
    dst: MatMut<'_, T>,
    accumulate: bool,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    par: Parallelism,
) {
    if !accumulate {
        // SAFETY: `MaybeUninit<T>` has `T`'s layout, and `gemm_into_uninit` only writes
        // initialised values of `T`, so the slice stays initialised.
        let uninit = unsafe {
            std::slice::from_raw_parts_mut(
                dst.data.as_mut_ptr().cast::<std::mem::MaybeUninit<T>>(),
                dst.data.len(),
            )
        };
        return gemm_into_uninit((m, n, k), uninit, (dst.rs, dst.cs), lhs, rhs, par);
    }
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let len = dst.data.len();
    product_checked((m, n, k), (dst.data.as_mut_ptr(), len, dst.rs, dst.cs), true, lhs, rhs, par)
}

/// `dst = lhs · rhs` into memory not yet written (a fresh output buffer), for `m×k · k×n`: `gemm`
/// does not read `dst` when it is not accumulating, so the buffer need not be zeroed first.
/// Every element of the `m×n` matrix under `(rs, cs)` is written, also when `k = 0` (zeros).
pub(crate) fn gemm_into_uninit<T: FloatElement>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [std::mem::MaybeUninit<T>],
    (rs, cs): (usize, usize),
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                dst[i * rs + j * cs].write(T::zero());
            }
        }
        return;
    }
    let len = dst.len();
    product_checked((m, n, k), (dst.as_mut_ptr().cast::<T>(), len, rs, cs), false, lhs, rhs, par)
}

/// The bounds checks and the dispatch of [`gemm_into`] and [`gemm_into_uninit`] (`m, n, k > 0`):
/// `dst` is `len` elements from the pointer, exclusively the caller's.
fn product_checked<T: FloatElement>(
    (m, n, k): (usize, usize, usize),
    (dst, len, drs, dcs): (*mut T, usize, usize, usize),
    accumulate: bool,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    par: Parallelism,
) {
    assert!(last_index(m, n, 0, drs, dcs) < len, "gemm_into: dst out of bounds");
    assert!(last_index(m, k, lhs.offset, lhs.rs, lhs.cs) < lhs.data.len(), "gemm_into: lhs out of bounds");
    assert!(last_index(k, n, rhs.offset, rhs.rs, rhs.cs) < rhs.data.len(), "gemm_into: rhs out of bounds");
    let raw = RawProduct {
        dst: SendPtr(dst),
        dst_strides: (drs, dcs),
        lhs: SendPtr(lhs.data.as_ptr().wrapping_add(lhs.offset) as *mut T),
        lhs_strides: (lhs.rs, lhs.cs),
        rhs: SendPtr(rhs.data.as_ptr().wrapping_add(rhs.offset) as *mut T),
        rhs_strides: (rhs.rs, rhs.cs),
        accumulate,
    };
    if let Some(parts) = gemv_inner_parts((m, n, k), raw.lhs_strides, raw.rhs_strides) {
        let parallel = matches!(par, Parallelism::Rayon(t) if t > 1);
        // SAFETY: the product was checked above; `dst` is the caller's alone.
        return unsafe { raw.split_inner((m, n, k), parts, parallel) };
    }
    match par {
        Parallelism::Rayon(threads) if threads > 1 && split_products() => {
            // SAFETY: the blocks are disjoint parts of the product checked above.
            unsafe { raw.split(m, n, k, threads) }
        }
        // SAFETY: every element gemm touches lies inside the buffers (checked above, strides are
        // non-negative); `dst` is the caller's alone (borrowed mutably), so it aliases neither
        // input; gemm reads it only when accumulating (then it is initialised); `T` is f32 or
        // f64, both supported by gemm.
        _ => unsafe { raw.block(0..m, 0..n, k, par) },
    }
}

/// `dst (+)= lhs · rhs` for an `m×k · k×n` product addressed by raw pointers and `(row, column)`
/// strides: the one place that calls `gemm`, for [`gemm_into`] and for kernels whose threads
/// write interleaved columns of one buffer (`ops::rnn`).
///
/// # Safety
/// Every element of the three matrices under those strides must lie inside its allocation, `T`
/// must be `f32` or `f64`, and no other thread may write the elements of `dst` this call writes
/// or the inputs while it runs.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_raw<T: FloatElement>(
    (m, n, k): (usize, usize, usize),
    dst: *mut T,
    (dr, dc): (usize, usize),
    accumulate: bool,
    lhs: *const T,
    (lr, lc): (usize, usize),
    rhs: *const T,
    (rr, rc): (usize, usize),
    par: Parallelism,
) {
    // SAFETY: the caller's contract is gemm's.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dc as isize,
            dr as isize,
            accumulate,
            lhs,
            lc as isize,
            lr as isize,
            rhs,
            rc as isize,
            rr as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            par,
        )
    }
}

/// Whether a product split across threads is cut into one independent single-threaded `gemm`
/// per thread ([`RawProduct::split`]) rather than handed to `gemm`'s own threading.
/// `ADJOINT_GEMM_SPLIT=0` selects `gemm`'s (for measuring).
fn split_products() -> bool {
    static SPLIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SPLIT.get_or_init(|| crate::env::switch("ADJOINT_GEMM_SPLIT", true))
}

/// A raw pointer that may cross to another rayon thread: for kernels whose threads write
/// disjoint parts of one buffer (the blocks of a split product, `ops::rnn`'s row parts).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub(crate) *mut T);
// SAFETY: only used for disjoint parts of one bounds-checked buffer (see each use).
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// One bounds-checked product `dst (+)= lhs · rhs`, addressed by raw pointers and strides so that
/// it can be cut into blocks of rows or columns of `dst`.
#[derive(Clone, Copy)]
struct RawProduct<T> {
    dst: SendPtr<T>,
    dst_strides: (usize, usize),
    lhs: SendPtr<T>,
    lhs_strides: (usize, usize),
    rhs: SendPtr<T>,
    rhs_strides: (usize, usize),
    accumulate: bool,
}

impl<T: FloatElement> RawProduct<T> {
    /// `dst[rows, cols] (+)= lhs[rows, :] · rhs[:, cols]`.
    ///
    /// # Safety
    /// The product must have been bounds-checked for the full `m×n` with this `k`, and `rows`,
    /// `cols` must lie inside it; no other thread may touch this block of `dst`.
    unsafe fn block(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        k: usize,
        par: Parallelism,
    ) {
        let (dr, dc) = self.dst_strides;
        let (lr, lc) = self.lhs_strides;
        let (rr, rc) = self.rhs_strides;
        // SAFETY: the caller guarantees the block lies in the checked product.
        unsafe {
            gemm_raw(
                (rows.len(), cols.len(), k),
                self.dst.0.add(rows.start * dr + cols.start * dc),
                (dr, dc),
                self.accumulate,
                self.lhs.0.add(rows.start * lr),
                (lr, lc),
                self.rhs.0.add(cols.start * rc),
                (rr, rc),
                par,
            )
        }
    }

    /// A matrix-vector product (`m = 1` or `n = 1`) as `parts` products over consecutive ranges
    /// of `k`: the first into `dst`, the others into partial vectors added to it in order (see
    /// [`gemv_inner_parts`]); the pieces run on the pool when `parallel`.
    ///
    /// # Safety
    /// As [`block`](Self::block), for the whole `m×n` product.
    unsafe fn split_inner(&self, (m, n, k): (usize, usize, usize), parts: usize, parallel: bool) {
        let len = m.max(n);
        let step = k.div_ceil(parts);
        let ranges: Vec<std::ops::Range<usize>> =
            (0..k).step_by(step).map(|s| s..(s + step).min(k)).collect();
        let mut partial: Vec<T> = vec![T::zero(); (ranges.len() - 1) * len];
        let scratch = SendPtr(partial.as_mut_ptr());
        let this = *self;
        let piece = move |(i, r): (usize, &std::ops::Range<usize>)| {
            let (lr, lc) = this.lhs_strides;
            let (rr, rc) = this.rhs_strides;
            let (dst, strides, accumulate) = if i == 0 {
                (this.dst.get(), this.dst_strides, this.accumulate)
            } else {
                // SAFETY: partial vector `i - 1` of `len` elements inside `partial`.
                (unsafe { scratch.get().add((i - 1) * len) }, (n, 1), false)
            };
            // SAFETY: the piece reads columns `r` of lhs and rows `r` of rhs, inside the checked
            // product; it writes `dst` (piece 0, the caller's) or its own partial vector.
            unsafe {
                gemm_raw(
                    (m, n, r.len()),
                    dst,
                    strides,
                    accumulate,
                    this.lhs.get().add(r.start * lc),
                    (lr, lc),
                    this.rhs.get().add(r.start * rr),
                    (rr, rc),
                    Parallelism::None,
                )
            }
        };
        if parallel {
            ranges.par_iter().enumerate().for_each(piece);
            crate::threads::keep_warm();
        } else {
            ranges.iter().enumerate().for_each(piece);
        }
        let step = if n == 1 { self.dst_strides.0 } else { self.dst_strides.1 };
        for p in partial.chunks_exact(len) {
            for (i, &v) in p.iter().enumerate() {
                // SAFETY: element `i` of the output vector, inside the checked `dst`.
                unsafe {
                    let d = self.dst.get().add(i * step);
                    *d = *d + v;
                }
            }
        }
    }

    /// The product cut along the longer side of `dst` into `threads` blocks (multiples of 16
    /// rows or columns, the kernels' register tile), each one single-threaded `gemm` on its own
    /// rayon task: no barrier between the threads and no shared packed panel, at the price of
    /// packing the uncut operand once per thread.
    ///
    /// # Safety
    /// As [`block`](Self::block), for the whole `m×n` product.
    unsafe fn split(&self, m: usize, n: usize, k: usize, threads: usize) {
        let long = m.max(n);
        let step = long.div_ceil(threads).next_multiple_of(16).min(long);
        let blocks: Vec<std::ops::Range<usize>> =
            (0..long).step_by(step).map(|s| s..(s + step).min(long)).collect();
        let this = *self;
        blocks.into_par_iter().for_each(move |b| {
            // SAFETY: blocks are disjoint and inside the checked product (caller's guarantee).
            unsafe {
                if m >= n {
                    this.block(b, 0..n, k, Parallelism::None)
                } else {
                    this.block(0..m, b, k, Parallelism::None)
                }
            }
        });
        crate::threads::keep_warm();
    }
}

/// The matrix strides of the last two dims, or `None` when they need a copy first (negative, or
/// zero along a dim longer than 1). Size-1 dims get a harmless stride.
fn matrix_strides(l: &Layout) -> Option<(usize, usize)> {
    let r = l.rank();
    let (rows, cols) = (l.shape[r - 2], l.shape[r - 1]);
    let (rs, cs) = (l.strides[r - 2], l.strides[r - 1]);
    let fix = |d: usize, s: isize, other: usize| -> Option<usize> {
        if d <= 1 {
            Some(other.max(1))
        } else if s > 0 {
            Some(s as usize)
        } else {
            None
        }
    };
    let cs2 = fix(cols, cs, 1)?;
    let rs2 = fix(rows, rs, cols.max(1) * cs2)?;
    Some((rs2, cs2))
}

/// Everything the kernels need about one broadcast batched product.
struct Plan {
    m: usize,
    n: usize,
    k: usize,
    /// Storage offsets of each batch entry's lhs and rhs matrix.
    offsets: Vec<(usize, usize)>,
    lhs_strides: (usize, usize),
    rhs_strides: (usize, usize),
    /// A lone product computed column-major, then transposed ([`column_major_result`]).
    col_result: bool,
}

impl Array {
    /// Matrix product with NumPy's `matmul` semantics.
    ///
    /// - both 2-D: the ordinary product `[m, k] · [k, n] → [m, n]`;
    /// - a 1-D operand is promoted to a matrix (`[k]` → `[1, k]` on the left, `[k, 1]` on the
    ///   right) and the added dim is removed from the result, so vector · vector is a scalar;
    /// - leading (batch) dims broadcast: `[b, 1, m, k] · [c, k, n] → [b, c, m, n]`.
    ///
    /// `f32` and `f64` go through `gemm` (transposed and strided views are not copied); `i64`
    /// uses a plain loop with wrapping arithmetic. Panics, naming both shapes and the caller's
    /// line, on a dtype mismatch, a bool operand, a rank-0 operand, mismatched inner dims or
    /// batch dims that do not broadcast.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// let b = Array::from_vec(vec![1.0f32, 0.0, 1.0], &[3]);
    /// assert_eq!(a.matmul(&b).to_vec::<f32>(), vec![4.0, 10.0]);
    /// // Aᵀ·A without copying the transpose.
    /// let ata = a.transpose(0, 1).matmul(&a);
    /// assert_eq!(ata.shape(), &[3, 3]);
    /// assert_eq!(ata.to_vec::<f32>()[0], 17.0);
    /// ```
    #[track_caller]
    pub fn matmul(&self, rhs: &Array) -> Array {
        self.try_matmul(rhs).or_fail()
    }

    /// Fallible [`matmul`](Self::matmul).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::zeros(&[2, 3], adjoint_tensor::DType::F64);
    /// let err = a.try_matmul(&a).unwrap_err();
    /// assert_eq!(err.op, "matmul");
    /// assert!(err.message.contains("[2, 3]"));
    /// ```
    pub fn try_matmul(&self, rhs: &Array) -> Result<Array> {
        const OP: &str = "matmul";
        let (sa, sb) = (self.shape(), rhs.shape());
        ensure!(
            self.dtype() == rhs.dtype(),
            OP,
            "dtypes differ: lhs {sa:?} is {}, rhs {sb:?} is {}",
            self.dtype(),
            rhs.dtype()
        );
        ensure!(
            self.dtype() != DType::Bool,
            OP,
            "bool arrays cannot be multiplied (lhs {sa:?}, rhs {sb:?}); cast them first"
        );
        ensure!(
            self.rank() >= 1 && rhs.rank() >= 1,
            OP,
            "operands must have at least one dim, got lhs {sa:?} and rhs {sb:?}"
        );
        let mut a = if self.rank() == 1 { self.unsqueeze(0) } else { self.clone() };
        let mut b = if rhs.rank() == 1 { rhs.unsqueeze(1) } else { rhs.clone() };
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
        let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
        ensure!(k == k2, OP, "inner dims differ: lhs {sa:?} has {k} columns but rhs {sb:?} has {k2} rows");
        let batch = broadcast_shapes(&a.shape()[..ra - 2], &b.shape()[..rb - 2]).ok_or_else(|| {
            TensorError::new(OP, format!("batch dims of lhs {sa:?} and rhs {sb:?} do not broadcast"))
        })?;

        let mut out_shape: Shape = batch.clone();
        if self.rank() > 1 {
            out_shape.push(m);
        }
        if rhs.rank() > 1 {
            out_shape.push(n);
        }

        if matrix_strides(a.layout()).is_none() {
            a = a.contiguous();
        }
        if matrix_strides(b.layout()).is_none() {
            b = b.contiguous();
        }
        let lone = a.rank() == 2 && b.rank() == 2;
        let col_result = lone
            && matches!((matrix_strides(a.layout()), matrix_strides(b.layout())),
                (Some(ls), Some(rs)) if column_major_result((m, n, k), ls, rs));
        if !col_result
            && b.rank() == 2
            && m >= COPY_RHS_MIN_ROWS
            && matrix_strides(b.layout()).is_some_and(aliasing_columns)
        {
            b = b.contiguous();
        }
        let full = |bat: &Shape, r: usize, c: usize| -> Shape {
            let mut s = bat.clone();
            s.extend([r, c]);
            s
        };
        let la = a.layout().broadcast_to(&full(&batch, m, k)).expect("batch dims broadcast");
        let lb = b.layout().broadcast_to(&full(&batch, k, n)).expect("batch dims broadcast");
        let nb = batch.len();
        let batch_layout = |l: &Layout| Layout {
            shape: batch.clone(),
            strides: SmallVec::from_slice(&l.strides[..nb]),
            offset: l.offset,
        };
        let mut offsets = Vec::with_capacity(crate::layout::numel(&batch));
        Layout::for_each_offset2(&batch_layout(&la), &batch_layout(&lb), |oa, ob| offsets.push((oa, ob)));
        let plan = Plan {
            m,
            n,
            k,
            offsets,
            lhs_strides: matrix_strides(&la).expect("checked"),
            rhs_strides: matrix_strides(&lb).expect("checked"),
            col_result,
        };
        let out = match self.dtype() {
            DType::F32 => Array::from_vec(matmul_float::<f32>(&a, &b, &plan), &out_shape),
            DType::F64 => Array::from_vec(matmul_float::<f64>(&a, &b, &plan), &out_shape),
            DType::I64 => Array::from_vec(matmul_int(&a, &b, &plan), &out_shape),
            DType::Bool => unreachable!("rejected above"),
        };
        Ok(out)
    }
}

fn matmul_float<T: FloatElement>(a: &Array, b: &Array, p: &Plan) -> Vec<T> {
    let (m, n, k) = (p.m, p.n, p.k);
    let mn = m * n;
    let total = p.offsets.len() * mn;
    if mn == 0 || k == 0 {
        return filled(total, T::zero());
    }
    // Not zeroed first: every product writes its whole `m×n` block without reading it.
    let mut out_buf: Vec<T> = crate::cache::take(total);
    let out = &mut out_buf.spare_capacity_mut()[..total];
    let (ad, bd) = (a.storage_slice::<T>(), b.storage_slice::<T>());
    let one = |dst: &mut [std::mem::MaybeUninit<T>], (oa, ob): (usize, usize), par: Parallelism| {
        gemm_into_uninit(
            (m, n, k),
            dst,
            (n, 1),
            MatRef { data: ad, offset: oa, rs: p.lhs_strides.0, cs: p.lhs_strides.1 },
            MatRef { data: bd, offset: ob, rs: p.rhs_strides.0, cs: p.rhs_strides.1 },
            par,
        )
    };
    let work = mn * k;
    let threads = rayon::current_num_threads();
    if p.col_result {
        let mut scratch: Vec<T> = crate::cache::take(mn);
        let (oa, ob) = p.offsets[0];
        gemm_into_uninit(
            (m, n, k),
            &mut scratch.spare_capacity_mut()[..mn],
            (1, m),
            MatRef { data: ad, offset: oa, rs: p.lhs_strides.0, cs: p.lhs_strides.1 },
            MatRef { data: bd, offset: ob, rs: p.rhs_strides.0, cs: p.rhs_strides.1 },
            gemm_parallelism(m, n, k),
        );
        // SAFETY: `gemm_into_uninit` wrote all `m·n` elements under strides `(1, m)`.
        unsafe { scratch.set_len(mn) };
        let col_major = Layout {
            shape: SmallVec::from_slice(&[m, n]),
            strides: SmallVec::from_slice(&[1, m as isize]),
            offset: 0,
        };
        crate::ops::transpose::copy_2d_into_uninit(out, &scratch, &col_major);
        crate::cache::give(scratch);
    } else if work >= gemm_par_work() || p.offsets.len() == 1 {
        let par = gemm_parallelism(m, n, k);
        for (dst, &o) in out.chunks_mut(mn).zip(&p.offsets) {
            one(dst, o, par);
        }
    } else if threads > 1 && work * p.offsets.len() >= gemm_par_work() {
        out.par_chunks_mut(mn).zip(&p.offsets).for_each(|(dst, &o)| one(dst, o, Parallelism::None));
    } else {
        for (dst, &o) in out.chunks_mut(mn).zip(&p.offsets) {
            one(dst, o, Parallelism::None);
        }
    }
    // SAFETY: the chunks of `mn` cover `0..total` (one per offset) and each product wrote its
    // whole chunk (`gemm_into_uninit`'s contract); `T: Copy` needs no drop on a panic before this.
    unsafe { out_buf.set_len(total) };
    out_buf
}

fn matmul_int(a: &Array, b: &Array, p: &Plan) -> Vec<i64> {
    let (m, n, k) = (p.m, p.n, p.k);
    let mut out = filled(p.offsets.len() * m * n, 0i64);
    if m * n == 0 {
        return out;
    }
    let (ad, bd) = (a.storage_slice::<i64>(), b.storage_slice::<i64>());
    let ((ars, acs), (brs, bcs)) = (p.lhs_strides, p.rhs_strides);
    for (dst, &(oa, ob)) in out.chunks_mut(m * n).zip(&p.offsets) {
        for i in 0..m {
            let row = &mut dst[i * n..(i + 1) * n];
            for l in 0..k {
                let x = ad[oa + i * ars + l * acs];
                let brow = ob + l * brs;
                for (j, d) in row.iter_mut().enumerate() {
                    *d = d.wrapping_add(x.wrapping_mul(bd[brow + j * bcs]));
                }
            }
        }
    }
    out
}
