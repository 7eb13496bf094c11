//! Slice kernels for fused programs: one elementwise op over one block of a register file.
//!
//! A fused program (adjoint-core's `jit` fusion) runs a chain of elementwise ops block by
//! block over small slices that stay in L1. These functions are its instructions. The unary
//! and binary ones call **the same per-element functions** as [`Array::unary`] and
//! [`Array::binary`] (the closures of `float_unary`/`float_binary`, with the same AVX2
//! dispatch), so a fused program computes bit-identical results to the op-by-op kernels.
//! Comparisons write `1` or `0` in the float type (a fused program keeps masks in its float
//! registers) and [`BlockFloat::select_block`] reads them back.
//!
//! [`Array::unary`]: crate::Array::unary
//! [`Array::binary`]: crate::Array::binary

use std::mem::MaybeUninit;

use crate::dtype::FloatElement;
use crate::ops::binary::{float_binary, zip, Apply2, BinaryOp};
use crate::ops::compare::CompareOp;
use crate::ops::simd::{dispatch_simd, simd_builds};
use crate::ops::unary::{float_unary, map_slice, Apply, FastFloat, UnaryOp};

/// The float types a fused program runs on (`f32`, `f64`).
///
/// ```
/// use adjoint_tensor::ops::{block::BlockFloat, binary::BinaryOp, unary::UnaryOp};
/// let (x, y) = ([1.0f64, 2.0], [3.0f64, 4.0]);
/// let mut out = [0.0; 2];
/// f64::binary_block(BinaryOp::Mul, &x, &y, &mut out);
/// assert_eq!(out, [3.0, 8.0]);
/// f64::unary_block(UnaryOp::Neg, &x, &mut out);
/// assert_eq!(out, [-1.0, -2.0]);
/// ```
pub trait BlockFloat: FloatElement {
    /// `out[i] = op(x[i])`, exactly as [`Array::unary`](crate::Array::unary) computes it.
    /// Equal lengths.
    fn unary_block(op: UnaryOp, x: &[Self], out: &mut [Self]);
    /// `out[i] = op(a[i], b[i])`, exactly as [`Array::binary`](crate::Array::binary) computes
    /// it. Equal lengths.
    fn binary_block(op: BinaryOp, a: &[Self], b: &[Self], out: &mut [Self]);
    /// `op(x)` on one element, by the same per-element function as
    /// [`unary_block`](Self::unary_block), without the slice machinery (scalarised programs).
    fn unary_one(op: UnaryOp, x: Self) -> Self;
    /// `op(a, b)` on one element, as [`binary_block`](Self::binary_block) computes it.
    fn binary_one(op: BinaryOp, a: Self, b: Self) -> Self;
    /// `out[i] = 1` where `op(a[i], b[i])` holds, else `0`.
    fn compare_block(op: CompareOp, a: &[Self], b: &[Self], out: &mut [Self]) {
        let f = |c: bool| if c { Self::one() } else { Self::zero() };
        let it = out.iter_mut().zip(a.iter().zip(b));
        match op {
            CompareOp::Eq => it.for_each(|(o, (&x, &y))| *o = f(x == y)),
            CompareOp::Ne => it.for_each(|(o, (&x, &y))| *o = f(x != y)),
            CompareOp::Lt => it.for_each(|(o, (&x, &y))| *o = f(x < y)),
            CompareOp::Le => it.for_each(|(o, (&x, &y))| *o = f(x <= y)),
            CompareOp::Gt => it.for_each(|(o, (&x, &y))| *o = f(x > y)),
            CompareOp::Ge => it.for_each(|(o, (&x, &y))| *o = f(x >= y)),
        }
    }
    /// `out[i] = if c[i] != 0 { t[i] } else { f[i] }` (a mask from
    /// [`compare_block`](Self::compare_block)).
    fn select_block(c: &[Self], t: &[Self], f: &[Self], out: &mut [Self]) {
        for (o, ((&c, &t), &f)) in out.iter_mut().zip(c.iter().zip(t).zip(f)) {
            *o = if c != Self::zero() { t } else { f };
        }
    }
}

/// A block's output seen as uninitialised memory (it is written once, never read first).
fn uninit<T>(out: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout; the kernels only write initialised values.
    unsafe { &mut *(out as *mut [T] as *mut [MaybeUninit<T>]) }
}

struct Block1<'a, T>(&'a [T], &'a mut [T]);

impl<T: Copy> Apply<T> for Block1<'_, T> {
    type Out = ();
    fn apply<F: Fn(T) -> T + Sync>(self, f: F) {
        map_slice(uninit(self.1), self.0, &f)
    }
    fn apply_runs<F, R>(self, _f: F, runs: R)
    where
        F: Fn(T) -> T + Sync,
        R: Fn(&mut [MaybeUninit<T>], &[T], bool) + Sync,
    {
        runs(uninit(self.1), self.0, false)
    }
}

struct Block2<'a, T>(&'a [T], &'a [T], &'a mut [T]);

impl<T: Copy> Apply2<T> for Block2<'_, T> {
    type Out = ();
    fn apply2<F: Fn(T, T) -> T + Sync>(self, _name: &'static str, f: F) {
        zip(uninit(self.2), self.0, self.1, &f, false)
    }
}

/// One element through the kernels' per-element functions.
struct One<T>(T);

impl<T: Copy> Apply<T> for One<T> {
    type Out = T;
    #[inline(always)]
    fn apply<F: Fn(T) -> T + Sync>(self, f: F) -> T {
        f(self.0)
    }
    #[inline(always)]
    fn apply_runs<F, R>(self, f: F, _runs: R) -> T
    where
        F: Fn(T) -> T + Sync,
        R: Fn(&mut [MaybeUninit<T>], &[T], bool) + Sync,
    {
        f(self.0)
    }
}

struct One2<T>(T, T);

impl<T: Copy> Apply2<T> for One2<T> {
    type Out = T;
    #[inline(always)]
    fn apply2<F: Fn(T, T) -> T + Sync>(self, _name: &'static str, f: F) -> T {
        f(self.0, self.1)
    }
}

#[inline(always)]
fn one_generic<T: FastFloat>(op: UnaryOp, x: T) -> T {
    float_unary::<T, _>(op, One(x))
}

#[inline(always)]
fn one_into<T: FastFloat>(op: UnaryOp, x: T, out: &mut T) {
    *out = one_generic(op, x);
}

simd_builds!(one_into => one_avx2, one_avx512, [T: FastFloat], (op: UnaryOp, x: T, out: &mut T));

/// `op(x)` on one element. The ops built on fused multiply-adds (`exp`, `exp2`, `tanh`,
/// `sigmoid`) run in the SIMD builds, where `mul_add` is one instruction (the baseline build
/// calls libm for it: the same bits, several times slower); the others inline here.
#[inline]
fn one<T: FastFloat>(op: UnaryOp, x: T) -> T {
    if matches!(op, UnaryOp::Exp | UnaryOp::Exp2 | UnaryOp::Tanh | UnaryOp::Sigmoid) {
        return one_fused(op, x);
    }
    one_generic(op, x)
}

fn one_fused<T: FastFloat>(op: UnaryOp, x: T) -> T {
    let mut out = x;
    one_dispatch(op, x, &mut out);
    out
}

fn one_dispatch<T: FastFloat>(op: UnaryOp, x: T, out: &mut T) {
    dispatch_simd!(one_into, one_avx2, one_avx512, (op, x, out))
}

fn unary<T: FastFloat>(op: UnaryOp, x: &[T], out: &mut [T]) {
    debug_assert_eq!(x.len(), out.len());
    float_unary::<T, _>(op, Block1(x, out))
}

fn binary<T: FastFloat>(op: BinaryOp, a: &[T], b: &[T], out: &mut [T]) {
    debug_assert!(a.len() == out.len() && b.len() == out.len());
    float_binary::<T, _>(Block2(a, b, out), op)
}

impl BlockFloat for f32 {
    fn unary_block(op: UnaryOp, x: &[f32], out: &mut [f32]) {
        unary(op, x, out)
    }
    fn binary_block(op: BinaryOp, a: &[f32], b: &[f32], out: &mut [f32]) {
        binary(op, a, b, out)
    }
    #[inline]
    fn unary_one(op: UnaryOp, x: f32) -> f32 {
        one(op, x)
    }
    #[inline]
    fn binary_one(op: BinaryOp, a: f32, b: f32) -> f32 {
        float_binary::<f32, _>(One2(a, b), op)
    }
}

impl BlockFloat for f64 {
    fn unary_block(op: UnaryOp, x: &[f64], out: &mut [f64]) {
        unary(op, x, out)
    }
    fn binary_block(op: BinaryOp, a: &[f64], b: &[f64], out: &mut [f64]) {
        binary(op, a, b, out)
    }
    #[inline]
    fn unary_one(op: UnaryOp, x: f64) -> f64 {
        one(op, x)
    }
    #[inline]
    fn binary_one(op: BinaryOp, a: f64, b: f64) -> f64 {
        float_binary::<f64, _>(One2(a, b), op)
    }
}
