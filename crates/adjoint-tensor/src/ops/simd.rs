//! The SIMD builds of the elementwise kernels: each kernel is written once as an
//! `#[inline(always)]` scalar loop over slices and compiled three times — baseline, AVX2+FMA,
//! AVX-512 — by [`simd_builds!`](crate::simd_builds); [`dispatch_simd!`](crate::dispatch_simd)
//! picks the widest build the CPU runs, per call (the feature checks are cached atomic loads).
//! Exported for the kernels of other crates (adjoint-nn's one-pass optimizer).
//!
//! The builds differ only in vector width and in whether `mul_add` is one instruction, so all
//! give the same bits (see [`dispatch_simd!`](crate::dispatch_simd)). A closure called from a
//! build is inlined into it only when LLVM chooses to: per-element work that must run at the
//! build's width (or use its FMA) belongs in an `#[inline(always)]` function the build calls.

/// Call the AVX2 build of a kernel when the CPU has it, else the baseline build.
macro_rules! dispatch_avx2 {
    ($generic:expr_2021, $avx2:expr_2021, ($($arg:expr_2021),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                return unsafe { $avx2($($arg),*) };
            }
        }
        $generic($($arg),*)
    }};
}
pub(crate) use dispatch_avx2;

/// Declare the AVX-512 build of an elementwise kernel (see [`dispatch_simd`]): the `unsafe fn`
/// it wraps gets `#[target_feature]` for the subsets [`has_avx512`] checks, on x86-64 only.
#[doc(hidden)]
#[macro_export]
macro_rules! avx512_build {
    ($(#[$m:meta])* unsafe fn $($rest:tt)*) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma")]
        $(#[$m])*
        unsafe fn $($rest)*
    };
}
pub(crate) use crate::avx512_build;

/// Call the AVX-512 build of an elementwise kernel when the CPU has it, else the AVX2 build,
/// else the baseline build.
///
/// The builds differ only in vector width and in whether `mul_add` is one instruction: each
/// element goes through the same scalar IEEE operations (LLVM contracts nothing into FMA
/// without fast-math flags, `mul_add` is exactly rounded in every build, and an elementwise
/// loop has no reduction to reassociate), so all three give bit-identical results. Polynomial
/// kernels (`exp`, `tanh`, `sigmoid`) run about 1.5× faster at 16 lanes than at 8 on Zen 4,
/// which splits a 512-bit operation into two 256-bit halves but issues it as one.
#[doc(hidden)]
#[macro_export]
macro_rules! dispatch_simd {
    ($generic:expr_2021, $avx2:expr_2021, $avx512:expr_2021, ($($arg:expr_2021),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if $crate::ops::simd::has_avx512() {
                // SAFETY: the CPU supports the AVX-512 subsets the build enables (checked).
                return unsafe { $avx512($($arg),*) };
            }
            if $crate::ops::simd::has_avx2_fma() {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                return unsafe { $avx2($($arg),*) };
            }
        }
        $generic($($arg),*)
    }};
}
pub(crate) use crate::dispatch_simd;

/// Define the AVX2 and AVX-512 builds `$avx2`, `$avx512` of the `#[inline(always)]` kernel
/// `$generic`, for [`dispatch_simd`]: the generic parameters go in brackets, then the
/// arguments.
#[doc(hidden)]
#[macro_export]
macro_rules! simd_builds {
    ($generic:ident => $avx2:ident, $avx512:ident, [$($g:tt)*], ($($arg:ident: $ty:ty),* $(,)?)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2<$($g)*>($($arg: $ty),*) {
            $generic($($arg),*)
        }
        $crate::avx512_build! {
            unsafe fn $avx512<$($g)*>($($arg: $ty),*) {
                $generic($($arg),*)
            }
        }
    };
}
pub(crate) use crate::simd_builds;

/// Whether the CPU has AVX2 and FMA, which the AVX2 build of [`simd_builds`] enables
/// (cached by `std`). Public for the macros.
#[cfg(target_arch = "x86_64")]
#[doc(hidden)]
#[inline]
pub fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Whether this processor's CPUID vendor string is AMD's (cached). Some kernel choices were
/// measured to go opposite ways on the AMD (Zen 1) and Intel hosts: `jit`'s fused-kernel
/// prefetch and [`matmul`](crate::Array::matmul)'s copy of an aliasing column-major operand.
///
/// ```
/// println!("AMD: {}", adjoint_tensor::ops::simd::is_amd());
/// ```
pub fn is_amd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AMD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AMD.get_or_init(|| {
            let r = std::arch::x86_64::__cpuid(0);
            let mut v = [0u8; 12];
            v[..4].copy_from_slice(&r.ebx.to_le_bytes());
            v[4..8].copy_from_slice(&r.edx.to_le_bytes());
            v[8..].copy_from_slice(&r.ecx.to_le_bytes());
            &v == b"AuthenticAMD"
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU has every AVX-512 subset [`avx512_build`] enables (cached by `std`).
/// Public for the macros, which other crates' kernels (adjoint-nn's optimizer) use too.
#[cfg(target_arch = "x86_64")]
#[doc(hidden)]
#[inline]
pub fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
}
