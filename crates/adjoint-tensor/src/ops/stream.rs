//! Writing large fresh outputs around the cache: the one path the elementwise kernels use for
//! non-temporal stores.
//!
//! A plain store to a line that is not cached first reads that line from memory (a
//! read-for-ownership), so an elementwise kernel writing a fresh output far larger than the
//! caches moves the output twice: `add` on `f32` 16 bytes per element where 12 would do, `exp` 12
//! where a copy moves 8. It also evicts whatever the cache held, for an output nobody reads
//! back soon. Non-temporal stores (`vmovntdq`) write whole lines without reading them.
//!
//! [`fill`] takes a kernel written as "fill this slice starting at element `start`" and, when
//! asked to stream, runs it group by group into a local array that stays in registers, writes
//! that out with non-temporal stores; each task that streamed ends with one [`fence`] (an
//! `sfence`), which orders the stores before the output is handed to another thread. A short
//! head brings the output to a cache-line boundary and a remainder finishes it, both written
//! directly. Unstreamed, it is the kernel over the whole slice.
//!
//! Streaming is chosen per output, not per run: only [`build`](crate::ops::unary)'s callers
//! know the output's total size, and a run of a small output must stay cached for the next op.
//! Outputs of [`STREAM_BYTES`] and more stream; the non-temporal stores are AVX instructions, so
//! [`enabled`] also requires the CPU's AVX2 build. Measured on a Zen 1 host (`benches/LOG.md`,
//! 2026-12-06): `exp` on 16M `f32` on two threads 10.7–11.6 → 9.1–9.5 ms (75–81% of copy
//! bandwidth across runs, from 65–69%), `add` 11.6 → 8.3 ms. Staging the groups in a buffer in
//! L1 instead of registers cost `exp` 8% on one thread, and an earlier attempt that computed a
//! whole 4 KiB stretch and then streamed it out in one burst was slower than plain stores.

use std::mem::MaybeUninit;

/// Fresh outputs from this size on are far larger than the caches (8–32 MiB of L3 on the
/// machines measured): kernels write them with non-temporal stores.
pub(crate) const STREAM_BYTES: usize = 32 << 20;

/// Elements per streamed group of the binary ops and [`copy_slice`]: whole cache lines for
/// every element size up to 8 bytes.
pub(crate) const GROUP: usize = 64;

/// Runs shorter than this many groups are not streamed (see [`fill`]).
const MIN_GROUPS: usize = 4;

/// Whether an output of `bytes` should be streamed on this machine: large enough, and the CPU
/// runs the AVX2 build (whose `vmovntdq` [`fill`] uses).
pub(crate) fn enabled(bytes: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        bytes >= STREAM_BYTES && crate::ops::simd::has_avx2_fma()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = bytes;
        false
    }
}

/// `kernel(part, start)` fills `part`, the elements `start..start + part.len()` of `out`. With
/// `stream` (from [`enabled`]: only where the CPU has AVX), `out` is filled in groups of `G`
/// elements, each computed into a local array (which LLVM keeps in registers when the kernel
/// inlines) and written with non-temporal stores, left unfenced: the caller's task ends with
/// [`fence`] (the engine does this for every output that [`enabled`] says streams); otherwise
/// `kernel(out, 0)`. `G` elements must be whole cache lines (`G · size_of::<U>()` a multiple of
/// 64) for the group to stream, and
/// runs shorter than [`MIN_GROUPS`] groups are written plainly. The kernel must initialise
/// every element of its part, and be an `#[inline(always)]` closure: it is called from four
/// places, and out of line it would lose the caller's SIMD build.
#[inline(always)]
pub(crate) fn fill<U: Copy, const G: usize>(
    out: &mut [MaybeUninit<U>],
    stream: bool,
    kernel: impl Fn(&mut [MaybeUninit<U>], usize),
) {
    let size = std::mem::size_of::<U>();
    // A short run (a broadcast operand's row) is written plainly: its `sfence` would cost more
    // than streaming saves.
    if !stream || size == 0 || !(G * size).is_multiple_of(64) || out.len() < MIN_GROUPS * G {
        return kernel(out, 0);
    }
    let head = ((64 - out.as_ptr() as usize % 64) % 64 / size).min(out.len());
    let (first, rest) = out.split_at_mut(head);
    kernel(first, 0);
    let mut groups = rest.chunks_exact_mut(G);
    let mut start = head;
    for part in &mut groups {
        let mut y = [MaybeUninit::<U>::uninit(); G];
        kernel(&mut y, start);
        // SAFETY: `part` is `G` elements of `out` starting on a 64-byte boundary (after the
        // head, whole groups of whole lines); `y` was filled by `kernel`; `stream` is only set
        // where the CPU has AVX ([`enabled`]).
        unsafe { stream_bytes(part.as_mut_ptr().cast(), y.as_ptr().cast(), G * size) };
        start += G;
    }
    kernel(groups.into_remainder(), start);
}

/// Order the non-temporal stores made so far before any later store, so that another thread
/// that sees the later one (the pool's "task done") also sees the streamed data. The engine
/// calls it once per task of a streamed output ([`build`](crate::ops::unary), the tiled walk,
/// [`copy_slice`]), not [`fill`] per run: an `sfence` waits for the write-combining buffers to
/// drain, and a broadcast product written in runs of 2 KiB (per-example outer products, `[B, m,
/// 1] · [B, 1, n]`) spent a quarter of its time in them (a standalone kernel, two threads: 9.3
/// against 7.4 ms for 205 MB).
#[inline]
pub(crate) fn fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `sfence` has no preconditions (SSE, part of x86-64).
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// Copy `bytes` (a multiple of 32) from `src` to the 32-byte aligned `dst` with non-temporal
/// stores.
///
/// # Safety
/// Both ranges are valid and do not overlap, `dst` is 32-byte aligned, the CPU has AVX.
#[inline(always)]
unsafe fn stream_bytes(dst: *mut u8, src: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract.
    unsafe {
        use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm256_stream_si256};
        for k in (0..bytes).step_by(32) {
            _mm256_stream_si256(dst.add(k).cast(), _mm256_loadu_si256(src.add(k).cast::<__m256i>()));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: the caller's contract.
    unsafe {
        std::ptr::copy_nonoverlapping(src, dst, bytes)
    }
}

#[inline(always)]
fn copy_generic<T: Copy>(dst: &mut [MaybeUninit<T>], src: &[T], stream: bool) {
    if !stream {
        // LLVM turns the loop below into a `memcpy` call anyway; [`copy_to`] picks the one that
        // is fast for this pair of addresses.
        return copy_to(dst, src);
    }
    fill::<T, GROUP>(
        dst,
        stream,
        #[inline(always)]
        |part, s| {
            let src = &src[s..s + part.len()];
            for (o, &x) in part.iter_mut().zip(src) {
                o.write(x);
            }
        },
    )
}

/// `dst ← src` (equal lengths): `memcpy`, except where `dst` lies 1–63 bytes after `src`
/// modulo 4 KiB, where it is an explicit vector loop.
///
/// glibc's `memcpy` copies mid-sized blocks (from ~2 KiB up to its non-temporal threshold) with
/// `rep movsb`, and on AMD Zen 4 `rep movsb` runs ~12× slower when the destination sits just
/// after the source in the page (presumably 4 KiB aliasing of each load with an earlier store):
/// 0.8 MB of `f64` in 234–243 µs against 16–20 µs at every other offset measured, when
/// `(dst − src) mod 4096` was 1–15 bytes (`benches/LOG.md`, 2026-12-07). That is exactly the
/// relation of a shift by one element between page-aligned buffers — `concat([c, y[..n-1]])`
/// and `narrow`'s gradient (a pad in front), a third of the `ode` eval's gradient. A plain
/// 32-byte load/store loop copies those in 18–25 µs. The loop is used for distances up to a
/// cache line (1–63 bytes, a margin over the 1–15 measured slow) and only from
/// [`ALIAS_MIN_BYTES`] up (glibc's `rep movsb` threshold is 2–8 KiB depending on the CPU).
#[inline]
pub(crate) fn copy_to<T: Copy>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    assert_eq!(dst.len(), src.len(), "copy_to: lengths differ");
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(src);
        let gap = (dst.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize) % 4096;
        if bytes >= ALIAS_MIN_BYTES && (1..64).contains(&gap) && crate::ops::simd::has_avx2_fma() {
            // SAFETY: the lengths are equal, `&mut` and `&` never overlap, the CPU has AVX2.
            return unsafe { copy_vectors(dst.as_mut_ptr().cast(), src.as_ptr().cast(), bytes) };
        }
    }
    // SAFETY: `MaybeUninit<T>` has `T`'s layout; the lengths are equal; `&mut` and `&` never
    // overlap.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<T>(), src.len()) };
}

/// [`copy_to`] uses its vector loop from this size: at or below glibc's smallest `rep movsb`
/// threshold.
#[cfg(target_arch = "x86_64")]
const ALIAS_MIN_BYTES: usize = 2048;

/// Copy `bytes` from `src` to `dst` with 32-byte unaligned loads and stores (four per
/// iteration, the loads first), the tail byte by byte.
///
/// # Safety
/// Both ranges are valid for `bytes` and do not overlap; the CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn copy_vectors(dst: *mut u8, src: *const u8, bytes: usize) {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm256_storeu_si256};
    let mut k = 0;
    // SAFETY: every access is within `bytes` of its base (the caller's contract).
    unsafe {
        while k + 128 <= bytes {
            let (s, d) = (src.add(k).cast::<__m256i>(), dst.add(k).cast::<__m256i>());
            let (a, b) = (_mm256_loadu_si256(s), _mm256_loadu_si256(s.add(1)));
            let (c, e) = (_mm256_loadu_si256(s.add(2)), _mm256_loadu_si256(s.add(3)));
            _mm256_storeu_si256(d, a);
            _mm256_storeu_si256(d.add(1), b);
            _mm256_storeu_si256(d.add(2), c);
            _mm256_storeu_si256(d.add(3), e);
            k += 128;
        }
        while k + 32 <= bytes {
            _mm256_storeu_si256(dst.add(k).cast(), _mm256_loadu_si256(src.add(k).cast()));
            k += 32;
        }
        while k < bytes {
            *dst.add(k) = *src.add(k);
            k += 1;
        }
    }
}

/// `out.extend_from_slice(src)` through [`copy_to`].
#[inline]
pub(crate) fn extend<T: Copy>(out: &mut Vec<T>, src: &[T]) {
    out.reserve(src.len());
    let len = out.len();
    copy_to(&mut out.spare_capacity_mut()[..src.len()], src);
    // SAFETY: `copy_to` initialised the `src.len()` elements after `len`, within capacity.
    unsafe { out.set_len(len + src.len()) };
}

crate::ops::simd::simd_builds!(copy_generic => copy_avx2, copy_avx512, [T: Copy],
    (dst: &mut [MaybeUninit<T>], src: &[T], stream: bool));

/// `dst.copy_from_slice(src)`, writing a `dst` of [`STREAM_BYTES`] or more around the cache
/// with non-temporal stores (as the elementwise kernels write their large outputs), split over
/// the pool's threads past [`PAR_THRESHOLD`](crate::ops::PAR_THRESHOLD) elements.
///
/// `memcpy` chooses non-temporal stores only past a threshold derived from the last-level
/// cache's size (glibc: three quarters of it per thread). A VM that reports a large shared
/// cache (480 MiB on the Intel host of 2026-12-07, a 190 MB threshold) thus copies 64 MB with
/// plain stores, each line read from memory before it is written: 15 GB/s against 27.5 with
/// non-temporal stores, on one thread (`benches/LOG.md`). The benchmark suite measures the
/// machine's copy bandwidth with this.
///
/// ```
/// let src = vec![1.5f32; 1000];
/// let mut dst = vec![0.0f32; 1000];
/// adjoint_tensor::ops::copy_slice(&mut dst, &src);
/// assert_eq!(dst, src);
/// ```
///
/// # Panics
/// If the lengths differ.
#[track_caller]
pub fn copy_slice<T: Copy + Send + Sync>(dst: &mut [T], src: &[T]) {
    use rayon::prelude::*;
    assert_eq!(dst.len(), src.len(), "copy_slice: destination and source lengths differ");
    let stream = enabled(std::mem::size_of_val(dst));
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and every element written is initialised.
    let out: &mut [MaybeUninit<T>] = unsafe { &mut *(dst as *mut [T] as *mut [MaybeUninit<T>]) };
    let run = |o: &mut [MaybeUninit<T>], s: usize| {
        let src = &src[s..s + o.len()];
        crate::ops::simd::dispatch_simd!(copy_generic, copy_avx2, copy_avx512, (o, src, stream))
    };
    let task = |o: &mut [MaybeUninit<T>], s: usize| {
        run(o, s);
        if stream {
            fence();
        }
    };
    if crate::ops::parallel(out.len()) {
        let chunk = crate::ops::unary::CHUNK;
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, o)| task(o, i * chunk));
    } else {
        task(out, 0);
    }
}
