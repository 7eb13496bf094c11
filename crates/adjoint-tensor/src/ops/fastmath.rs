//! Vectorisable transcendental functions (`exp` and those built on it) for the elementwise
//! kernels: branch-free polynomial forms that LLVM turns into SIMD code, accurate to about
//! 1 ulp, where calling libm per element would not vectorise.
//!
//! The polynomial steps and the range reduction are fused multiply-adds (`mul_add`): one
//! rounding instead of two, and half the operations in the dependency chain. `mul_add` is
//! exactly rounded wherever it runs, so every build gives the same bits; it is one instruction
//! only where FMA is enabled — the kernels' AVX2+FMA and AVX-512 builds (`simd_builds!`), the
//! per-element paths that go through them (`BlockFloat::unary_one`, the strided map), and every
//! aarch64 build. Elsewhere (a baseline x86-64 build on a CPU without FMA) it is a call to
//! libm's `fma`: the same bits, several times slower. Measured on `exp` f32, 1M elements, one
//! thread (Xeon, AVX-512): 480–720 µs with separate multiplies and adds, 326–357 µs fused.

use std::mem::MaybeUninit;

use crate::dtype::FloatElement;
use crate::ops::stream;

/// Float operations with a vectorizable implementation of our own.
pub(crate) trait FastFloat: FloatElement {
    /// `e^x`, within 1–2 ulp, written to vectorize.
    fn exp_fast(self) -> Self;
    /// `2^x`, within 1–2 ulp, written to vectorize.
    fn exp2_fast(self) -> Self;
    /// `out[i] = src[i].exp_fast()`, bit for bit, over a contiguous run (`out` and `src` of
    /// equal length), faster than mapping [`exp_fast`](FastFloat::exp_fast): see [`exp_run`].
    /// With `stream` ([`stream::enabled`]), the results are written around the cache.
    fn exp_run(out: &mut [MaybeUninit<Self>], src: &[Self], stream: bool);
    /// Round half to even.
    fn round_even(self) -> Self;
    /// Hyperbolic tangent within a few ulp, written to vectorize (Cephes: an odd polynomial
    /// below 0.625, `1 - 2 / (e^2|x| + 1)` above, both computed and one selected).
    fn tanh_fast(self) -> Self;

    /// `1 / (1 + e^-x)` without overflow: `e^-|x|` never exceeds 1.
    #[inline(always)]
    fn sigmoid_fast(self) -> Self {
        let e = (-self.abs()).exp_fast();
        let s = Self::one() / (Self::one() + e);
        if self >= Self::zero() {
            s
        } else {
            e * s
        }
    }
}

/// `y * 2^n` for `n` within ±300 of the exponent range, as two exact power-of-two scalings
/// (one would overflow the exponent field near the ends of the range).
#[inline(always)]
fn scale_f32(y: f32, n: i32) -> f32 {
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    let p1 = f32::from_bits((n1.wrapping_add(127) as u32).wrapping_shl(23));
    let p2 = f32::from_bits((n2.wrapping_add(127) as u32).wrapping_shl(23));
    y * p1 * p2
}

#[inline(always)]
fn scale_f64(y: f64, n: i64) -> f64 {
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    let p1 = f64::from_bits((n1.wrapping_add(1023) as u64).wrapping_shl(52));
    let p2 = f64::from_bits((n2.wrapping_add(1023) as u64).wrapping_shl(52));
    y * p1 * p2
}

/// `e^r` for `|r| <= ln2/2`: `1 + r + c2·r² + … + c6·r⁶`. The coefficients minimise the
/// largest relative error over the interval (3.8e-9 with the coefficients rounded to f32, a
/// twentieth of an ulp); they were fitted by `benches/python/fit_exp_poly.py`. Cephes'
/// degree-7 form took two more operations for accuracy that rounding the result throws away.
///
/// Evaluated in Estrin's form, `(1 + r) + r²·((c2 + c3·r) + r²·((c4 + c5·r) + c6·r²))`: seven
/// operations where Horner's form takes six, but a dependency chain four deep instead of six.
/// The kernel is bound by that chain's latency, not by arithmetic, on Zen 1 (whose 256-bit
/// operations are two micro-ops each, so few groups fit in flight): `exp` on 16k `f32` in
/// cache went from 16.1 to 14.7 µs with this form and groups of 32 (`unary_bench`).
#[inline(always)]
fn exp_poly_f32(r: f32) -> f32 {
    let r2 = r * r;
    let a = r + 1.0;
    let b = 1.666_652_1e-1f32.mul_add(r, 0.499_999_94);
    let c = 8.368_708e-3f32.mul_add(r, 4.166_839e-2);
    let c = 1.381_459_3e-3f32.mul_add(r2, c);
    c.mul_add(r2, b).mul_add(r2, a)
}

/// `e^r` for `|r| <= ln2/2` (Cephes `exp` Padé form).
#[inline(always)]
fn exp_poly_f64(r: f64) -> f64 {
    let xx = r * r;
    let px = r * 1.261_771_930_748_105_9e-4f64.mul_add(xx, 3.029_944_077_074_419_6e-2).mul_add(xx, 1.0);
    let qx = 3.001_985_051_386_644_6e-6f64
        .mul_add(xx, 2.524_483_403_496_841e-3)
        .mul_add(xx, 2.272_655_482_081_550_3e-1)
        .mul_add(xx, 2.0);
    1.0 + 2.0 * px / (qx - px)
}

// Adding 1.5·2^(mantissa bits) rounds to an integer (ties to even) and leaves it in the low
// mantissa bits, so the integer part needs no float→int conversion.
const ROUND_F32: f32 = 12_582_912.0;
const ROUND_F64: f64 = 6_755_399_441_055_744.0;

/// `exp`'s range reduction, shared by `exp_fast` and [`exp_run`]'s quick path (so both give
/// the same bits): `t = x·log2(e) + ROUND`, whose low mantissa bits hold `n = round(x·log2 e)`,
/// and `r = x − n·ln 2` with ln 2 split in a short head (exact products) and a tail
/// (Cody–Waite).
#[inline(always)]
fn reduce_f32(x: f32) -> (f32, f32) {
    let t = x.mul_add(std::f32::consts::LOG2_E, ROUND_F32);
    let n = t - ROUND_F32;
    (t, n.mul_add(2.121_944_4e-4, n.mul_add(-0.693_359_4, x)))
}

#[inline(always)]
fn reduce_f64(x: f64) -> (f64, f64) {
    let t = x.mul_add(std::f64::consts::LOG2_E, ROUND_F64);
    let n = t - ROUND_F64;
    (t, n.mul_add(-1.428_606_820_309_417_2e-6, n.mul_add(-6.931_457_519_531_25e-1, x)))
}

/// How many lanes [`exp_run`] checks together: four AVX2 vectors, two AVX-512 vectors; in
/// `f32` two 64-byte cache lines, in `f64` four. Independent chains for the out-of-order core
/// to overlap; 8 was three times slower than 16 (LLVM's code), 32 is faster than 16 on Zen 1.
const EXP_GROUP: usize = 32;

/// How far ahead of the group being computed [`exp_groups`] prefetches its input when the
/// output streams: 32 groups of `f32` (16 of `f64`). `exp` is compute-bound on Zen 1 while the
/// hardware prefetcher lets loads of an array far larger than the caches miss; on two threads
/// 16M `f32` took 8.7–9.2 ms without it and 8.2–8.3 ms with any distance from 2 to 8 KiB
/// (1 KiB: 8.5; `benches/LOG.md`, 2026-12-07).
const PREFETCH_BYTES: usize = 4096;

/// `out[i] = src[i].exp_fast()` over a contiguous run, bit for bit, in groups of
/// [`EXP_GROUP`] lanes. `quick(x)` gives the same reduction and polynomial as `exp_fast`, but
/// applies `2^n` by adding `n` to the exponent field (one integer add, exact while the result
/// stays normal) instead of `exp_fast`'s clamp and two multiplications, which must also be
/// right for results that overflow or are subnormal; with it a key, and the group's result
/// stands where `ok` holds for the largest key of the group. A group with any input outside
/// the range (huge, tiny, NaN) is redone by `exp_fast`. On `f32` this is 17 vector operations
/// per vector instead of 26: the difference between compute-bound and memory-bound for `exp`
/// on large arrays.
///
/// The check is a maximum (from the key type's default, its least value here) so that, in
/// `f32`, it is two integer operations on the reduction's `t` (see `exp_run` for `f32`), off the
/// ports that the multiply-adds use: 3.5% faster in cache on Zen 1 than a float compare per
/// vector in a standalone copy of the kernel, inside the noise in the library.
///
/// With `stream` the run goes through [`stream::fill`], one group of [`EXP_GROUP`] at a time
/// (two cache lines of `f32`, four of `f64`) written with non-temporal stores, and the input is
/// prefetched [`PREFETCH_BYTES`] ahead.
#[inline(always)]
fn exp_run<T: FastFloat, K: Copy + Ord + Default>(
    out: &mut [MaybeUninit<T>],
    src: &[T],
    stream: bool,
    quick: impl Fn(T) -> (T, K),
    ok: impl Fn(K) -> bool,
) {
    debug_assert_eq!(out.len(), src.len());
    // `inline(always)`: the closure must be compiled inside the caller's SIMD build (it is called
    // from four places in `fill`, and a closure LLVM leaves out of line has the baseline target
    // features: `mul_add` as a libm call, 26× slower).
    stream::fill::<T, EXP_GROUP>(
        out,
        stream,
        #[inline(always)]
        |part, start| exp_groups(part, &src[start..start + part.len()], stream, &quick, &ok),
    )
}

/// [`exp_run`]'s kernel on one part: whole groups of [`EXP_GROUP`], then `exp_fast` on the rest.
#[inline(always)]
fn exp_groups<T: FastFloat, K: Copy + Ord + Default>(
    out: &mut [MaybeUninit<T>],
    src: &[T],
    prefetch: bool,
    quick: &impl Fn(T) -> (T, K),
    ok: &impl Fn(K) -> bool,
) {
    let mut outs = out.chunks_exact_mut(EXP_GROUP);
    let mut srcs = src.chunks_exact(EXP_GROUP);
    for (o, s) in (&mut outs).zip(&mut srcs) {
        if prefetch {
            prefetch_group::<T>(s.as_ptr());
        }
        let mut y = [T::zero(); EXP_GROUP];
        let mut acc = K::default();
        for i in 0..EXP_GROUP {
            let (v, k) = quick(s[i]);
            y[i] = v;
            acc = acc.max(k);
        }
        if !ok(acc) {
            for i in 0..EXP_GROUP {
                y[i] = s[i].exp_fast();
            }
        }
        for i in 0..EXP_GROUP {
            o[i].write(y[i]);
        }
    }
    for (o, &x) in outs.into_remainder().iter_mut().zip(srcs.remainder()) {
        o.write(x.exp_fast());
    }
}

/// Prefetch the cache lines of the group [`PREFETCH_BYTES`] after the one at `group` (past
/// the end of the input the hint does nothing: prefetches do not fault).
#[inline(always)]
fn prefetch_group<T>(group: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let ahead = group.cast::<i8>().wrapping_add(PREFETCH_BYTES);
        for line in (0..EXP_GROUP * std::mem::size_of::<T>()).step_by(64) {
            // SAFETY: a prefetch is a hint: it reads nothing the program sees and never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = group;
}

impl FastFloat for f32 {
    #[inline(always)]
    fn exp_run(out: &mut [MaybeUninit<f32>], src: &[f32], stream: bool) {
        // n within [-125, 125]: with the polynomial in [0.70, 1.42] the result's biased
        // exponent stays within [1, 252]. While `t` lies in [2^23, 2^24) its bits less
        // ROUND_F32's are n exactly; any other `t` (|x| beyond ~2^22, ±inf, NaN) gives a key that
        // is negative or far above 250, so unsigned it fails the check.
        exp_run(
            out,
            src,
            stream,
            |x: f32| {
                let (t, r) = reduce_f32(x);
                // `t`'s low mantissa bits hold n (ROUND_F32's own bits vanish in the shift). The
                // key is `n + 125`, unsigned.
                let y = f32::from_bits(exp_poly_f32(r).to_bits().wrapping_add(t.to_bits().wrapping_shl(23)));
                (y, t.to_bits().wrapping_sub(ROUND_F32.to_bits().wrapping_sub(125)))
            },
            |key: u32| key <= 250,
        )
    }

    #[inline(always)]
    fn exp_fast(self) -> f32 {
        // Outside [-104, 89] the result is 0 or inf anyway; clamping keeps n in range.
        let (t, r) = reduce_f32(self.clamp(-104.0, 89.0));
        let ni = (t.to_bits() as i32).wrapping_sub(ROUND_F32.to_bits() as i32);
        scale_f32(exp_poly_f32(r), ni)
    }

    #[inline(always)]
    fn exp2_fast(self) -> f32 {
        let x = self.clamp(-151.0, 129.0);
        let t = x + ROUND_F32;
        let n = t - ROUND_F32;
        let ni = (t.to_bits() as i32).wrapping_sub(ROUND_F32.to_bits() as i32);
        scale_f32(exp_poly_f32((x - n) * std::f32::consts::LN_2), ni)
    }

    #[inline(always)]
    fn round_even(self) -> f32 {
        self.round_ties_even()
    }

    #[inline(always)]
    fn tanh_fast(self) -> f32 {
        let a = self.abs();
        let big = 1.0 - 2.0 / ((2.0 * a).exp_fast() + 1.0);
        let z = self * self;
        let mut p = -5.704_988_7e-3f32;
        p = p.mul_add(z, 2.063_909e-2);
        p = p.mul_add(z, -5.373_971_6e-2);
        p = p.mul_add(z, 1.333_144_2e-1);
        p = p.mul_add(z, -3.333_328e-1);
        let small = (p * z).mul_add(self, self);
        if a >= 0.625 {
            big.copysign(self)
        } else {
            small
        }
    }
}

impl FastFloat for f64 {
    #[inline(always)]
    fn exp_run(out: &mut [MaybeUninit<f64>], src: &[f64], stream: bool) {
        // |x| <= 707 keeps n within [-1020, 1020] (biased exponents within [1, 2046]).
        exp_run(
            out,
            src,
            stream,
            |x: f64| {
                let (t, r) = reduce_f64(x);
                let y = f64::from_bits(exp_poly_f64(r).to_bits().wrapping_add(t.to_bits().wrapping_shl(52)));
                // The key is |x|'s bits, which order like |x| (NaN above ±inf).
                (y, (x.to_bits() & !(1 << 63)) as i64)
            },
            |key: i64| key <= 707f64.to_bits() as i64,
        )
    }

    #[inline(always)]
    fn exp_fast(self) -> f64 {
        let (t, r) = reduce_f64(self.clamp(-746.0, 710.0));
        let ni = (t.to_bits() as i64).wrapping_sub(ROUND_F64.to_bits() as i64);
        scale_f64(exp_poly_f64(r), ni)
    }

    #[inline(always)]
    fn exp2_fast(self) -> f64 {
        let x = self.clamp(-1076.0, 1025.0);
        let t = x + ROUND_F64;
        let n = t - ROUND_F64;
        let ni = (t.to_bits() as i64).wrapping_sub(ROUND_F64.to_bits() as i64);
        // (x - n) is exact; multiplying by ln 2 in two parts keeps the reduced argument exact
        // enough for 1-ulp results.
        let f = x - n;
        let r = f.mul_add(6.931_457_519_531_25e-1, f * 1.428_606_820_309_417_2e-6);
        scale_f64(exp_poly_f64(r), ni)
    }

    #[inline(always)]
    fn round_even(self) -> f64 {
        self.round_ties_even()
    }

    #[inline(always)]
    fn tanh_fast(self) -> f64 {
        let a = self.abs();
        let big = 1.0 - 2.0 / ((2.0 * a).exp_fast() + 1.0);
        let z = self * self;
        let p = (-9.643_991_794_250_523e-1f64)
            .mul_add(z, -9.928_772_310_019_185e1)
            .mul_add(z, -1.614_687_684_417_079_5e3);
        let q = (z + 1.128_116_784_916_329_3e2)
            .mul_add(z, 2.235_488_390_601_004_6e3)
            .mul_add(z, 4.844_063_053_251_255e3);
        let small = (self * z).mul_add(p / q, self);
        if a >= 0.625 {
            big.copysign(self)
        } else {
            small
        }
    }
}
