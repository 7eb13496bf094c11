//! Forward mode: [`Dual<T>`] (one tangent) and [`DualVec<T, N>`] (`N` tangents).
//!
//! ## Nesting and perturbation confusion
//!
//! Higher derivatives nest the type: `Dual<Dual<f64>>` carries two independent
//! perturbations `ε₁` (inner) and `ε₂` (outer). The **nesting level is the tag**: every
//! perturbation lives at its own type, so the compiler refuses to mix an outer-level value
//! with an inner-level one. A value captured from an outer derivative must be lifted with
//! [`Dual::constant`] — which makes it a constant *of the new perturbation*, exactly the
//! treatment that avoids perturbation confusion (Siskind & Pearlmutter 2005). The classic
//! example `d/dx (x · d/dy (x + y))` at any `x` is `1`:
//!
//! ```
//! use adjoint_scalar::{derivative, Dual};
//! let d = derivative(|x: Dual<f64>| x * derivative(|y: Dual<Dual<f64>>| Dual::constant(x) + y, x), 2.0);
//! assert_eq!(d, 1.0);
//! ```
//!
//! The one thing types cannot catch is a user *choosing* the same level for both derivatives,
//! e.g. an inner `derivative` over `Dual<f64>` inside an outer one that also works in
//! `Dual<f64>`, with the closure capturing the outer value. Generic code avoids this
//! naturally: differentiate at the type you were given (`derivative(g, x)` with `x: T`
//! always opens a new level `Dual<T>`).
//!
//! Runtime tags (ForwardDiff.jl style) were rejected: they would make `Dual<f64>` 50% larger
//! and add a check to every operation, for a mistake the type system already rules out in
//! generic code.

use crate::chain::{impl_real, Chain};
use crate::real::Real;

/// A dual number `re + eps·ε` with `ε² = 0`: the value of a function and its directional
/// derivative, computed together in one forward pass.
///
/// ```
/// use adjoint_scalar::prelude::*;
/// let x = Dual::variable(0.5f64);
/// let y = (x * x).sin();
/// assert_eq!(y.re, 0.25f64.sin());
/// assert_eq!(y.eps, 0.25f64.cos() * 2.0 * 0.5);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dual<T> {
    /// The primal value.
    pub re: T,
    /// The tangent (directional derivative).
    pub eps: T,
}

impl<T: Real> Dual<T> {
    /// A dual number with the given value and tangent.
    #[inline]
    pub fn new(re: T, eps: T) -> Self {
        Dual { re, eps }
    }
    /// A constant: tangent zero. Use it to lift values from an outer level (see module docs).
    #[inline]
    pub fn constant(re: T) -> Self {
        Dual { re, eps: T::zero() }
    }
    /// The independent variable: tangent one.
    #[inline]
    pub fn variable(re: T) -> Self {
        Dual { re, eps: T::one() }
    }
}

impl<T: Real> Chain for Dual<T> {
    type S = T;
    #[inline]
    fn re(&self) -> T {
        self.re
    }
    #[inline]
    fn cst(v: T) -> Self {
        Dual { re: v, eps: T::zero() }
    }
    #[inline]
    fn chain(self, v: T, d: T) -> Self {
        Dual { re: v, eps: self.eps * d }
    }
    #[inline]
    fn chain2(self, o: Self, v: T, da: T, db: T) -> Self {
        Dual { re: v, eps: self.eps * da + o.eps * db }
    }
    #[inline]
    fn add_(self, o: Self) -> Self {
        Dual { re: self.re + o.re, eps: self.eps + o.eps }
    }
    #[inline]
    fn sub_(self, o: Self) -> Self {
        Dual { re: self.re - o.re, eps: self.eps - o.eps }
    }
    #[inline]
    fn neg_(self) -> Self {
        Dual { re: -self.re, eps: -self.eps }
    }
    #[inline]
    fn chain_n<I: Iterator<Item = (Self, T)>>(v: T, terms: I) -> Self {
        Dual { re: v, eps: terms.fold(T::zero(), |acc, (x, d)| acc + x.eps * d) }
    }
}

impl_real!([T: Real] Dual<T>);

/// A dual number with `N` tangents: `N` directional derivatives in one pass, e.g. `N` columns
/// of a Jacobian. The primal work is shared, so a chunk of `N` costs much less than `N` passes
/// of [`Dual`].
///
/// ```
/// use adjoint_scalar::DualVec;
/// let x = DualVec::<f64, 2>::variable(3.0, 0);
/// let y = DualVec::<f64, 2>::variable(2.0, 1);
/// let f = x * x * y;
/// assert_eq!(f.eps, [12.0, 9.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DualVec<T, const N: usize> {
    /// The primal value.
    pub re: T,
    /// The `N` tangents.
    pub eps: [T; N],
}

impl<T: Real, const N: usize> DualVec<T, N> {
    /// A value with the given tangents.
    #[inline]
    pub fn new(re: T, eps: [T; N]) -> Self {
        DualVec { re, eps }
    }
    /// A constant: all tangents zero.
    #[inline]
    pub fn constant(re: T) -> Self {
        DualVec { re, eps: [T::zero(); N] }
    }
    /// The `k`-th of `N` independent variables: tangent `e_k`.
    ///
    /// Panics if `k >= N`.
    #[inline]
    #[track_caller]
    pub fn variable(re: T, k: usize) -> Self {
        assert!(k < N, "DualVec::variable: direction {k} out of range for N = {N}");
        let mut eps = [T::zero(); N];
        eps[k] = T::one();
        DualVec { re, eps }
    }
}

impl<T: Real, const N: usize> Chain for DualVec<T, N> {
    type S = T;
    #[inline]
    fn re(&self) -> T {
        self.re
    }
    #[inline]
    fn cst(v: T) -> Self {
        DualVec { re: v, eps: [T::zero(); N] }
    }
    #[inline]
    fn chain(self, v: T, d: T) -> Self {
        let mut eps = self.eps;
        for e in &mut eps {
            *e *= d;
        }
        DualVec { re: v, eps }
    }
    #[inline]
    fn chain2(self, o: Self, v: T, da: T, db: T) -> Self {
        let mut eps = self.eps;
        for (e, f) in eps.iter_mut().zip(o.eps) {
            *e = *e * da + f * db;
        }
        DualVec { re: v, eps }
    }
    #[inline]
    fn add_(self, o: Self) -> Self {
        let mut eps = self.eps;
        for (e, f) in eps.iter_mut().zip(o.eps) {
            *e += f;
        }
        DualVec { re: self.re + o.re, eps }
    }
    #[inline]
    fn sub_(self, o: Self) -> Self {
        let mut eps = self.eps;
        for (e, f) in eps.iter_mut().zip(o.eps) {
            *e -= f;
        }
        DualVec { re: self.re - o.re, eps }
    }
}

impl_real!([T: Real, const N: usize] DualVec<T, N>);

/// Mixed arithmetic with a plain scalar on the right (`x * 2.0`) or, for `f64`/`f32`, on the
/// left (`2.0 * x`).
macro_rules! scalar_ops {
    ([$($gen:tt)*] $ty:ty, $s:ty) => {
        impl<$($gen)*> ::std::ops::Add<$s> for $ty {
            type Output = Self;
            #[inline]
            fn add(self, o: $s) -> Self { self + <Self as Chain>::cst(o) }
        }
        impl<$($gen)*> ::std::ops::Sub<$s> for $ty {
            type Output = Self;
            #[inline]
            fn sub(self, o: $s) -> Self { self - <Self as Chain>::cst(o) }
        }
        impl<$($gen)*> ::std::ops::Mul<$s> for $ty {
            type Output = Self;
            #[inline]
            fn mul(self, o: $s) -> Self { self.chain(self.re() * o, o) }
        }
        impl<$($gen)*> ::std::ops::Div<$s> for $ty {
            type Output = Self;
            #[inline]
            #[allow(clippy::suspicious_arithmetic_impl)]
            fn div(self, o: $s) -> Self { let r = o.recip(); self.chain(self.re() * r, r) }
        }
    };
}
scalar_ops!([T: Real] Dual<T>, T);
scalar_ops!([T: Real, const N: usize] DualVec<T, N>, T);

macro_rules! scalar_left_ops {
    ($s:ty) => {
        impl ::std::ops::Add<Dual<$s>> for $s {
            type Output = Dual<$s>;
            #[inline]
            fn add(self, o: Dual<$s>) -> Dual<$s> {
                o + self
            }
        }
        impl ::std::ops::Sub<Dual<$s>> for $s {
            type Output = Dual<$s>;
            #[inline]
            fn sub(self, o: Dual<$s>) -> Dual<$s> {
                Dual::constant(self) - o
            }
        }
        impl ::std::ops::Mul<Dual<$s>> for $s {
            type Output = Dual<$s>;
            #[inline]
            fn mul(self, o: Dual<$s>) -> Dual<$s> {
                o * self
            }
        }
        impl ::std::ops::Div<Dual<$s>> for $s {
            type Output = Dual<$s>;
            #[inline]
            fn div(self, o: Dual<$s>) -> Dual<$s> {
                Dual::constant(self) / o
            }
        }
    };
}
scalar_left_ops!(f64);
scalar_left_ops!(f32);
