//! One table of derivative rules shared by every AD type.
//!
//! Each AD type says only how to apply the chain rule ([`Chain`]): given the value `v` of an
//! elementary function and its partial derivative(s) with respect to the primal argument(s),
//! `Dual` scales its tangent, `DualVec` scales `N` tangents, and `Var` records a tape node.
//! The macro [`impl_real!`] then writes `Float`, `FloatConst`, the operators and [`Real`] once
//! for all of them, so every rule below is stated exactly once. Partials are computed in the
//! type's own scalar `S` (for `Dual<Dual<f64>>`, `S = Dual<f64>`), which is what makes nested
//! types produce correct higher derivatives with no extra rules.

use num_traits::One;

use crate::real::Real;

/// The scalar one of an AD type (used by the macro).
#[inline]
pub fn s_one<X: Chain>() -> X::S {
    X::S::one()
}

/// How one AD type applies the chain rule. Internal: the public surface is `Real`.
pub trait Chain: Copy {
    /// The scalar the primal and partial derivatives live in.
    type S: Real;
    /// The primal value.
    fn re(&self) -> Self::S;
    /// A constant (zero derivative).
    fn cst(v: Self::S) -> Self;
    /// `g(self)` with value `v` and `g'(self) = d`.
    fn chain(self, v: Self::S, d: Self::S) -> Self;
    /// `g(self, o)` with value `v`, `∂g/∂self = da`, `∂g/∂o = db`.
    fn chain2(self, o: Self, v: Self::S, da: Self::S, db: Self::S) -> Self;
    /// `self + o` (overridden where adding tangents beats scaling them by one).
    #[inline]
    fn add_(self, o: Self) -> Self {
        self.chain2(o, self.re() + o.re(), Self::S::one(), Self::S::one())
    }
    /// `self - o`.
    #[inline]
    fn sub_(self, o: Self) -> Self {
        self.chain2(o, self.re() - o.re(), Self::S::one(), -Self::S::one())
    }
    /// `-self`.
    #[inline]
    fn neg_(self) -> Self {
        self.chain(-self.re(), -Self::S::one())
    }
    /// `g(x₁, …, xₘ)` with value `v` and `∂g/∂xᵢ = dᵢ`, given as the pairs `(xᵢ, dᵢ)`: the
    /// chain rule of the fused n-ary operations ([`rules::sum_slice`], [`rules::dot`], …).
    ///
    /// The default folds [`chain2`](Chain::chain2) over the terms (what the unfused code would
    /// record); `Var` overrides it to record one n-ary tape node, `Dual` to sum its tangents
    /// directly.
    #[inline]
    fn chain_n<I: Iterator<Item = (Self, Self::S)>>(v: Self::S, mut terms: I) -> Self {
        let Some((x, d)) = terms.next() else {
            return Self::cst(v);
        };
        terms.fold(x.chain(v, d), |acc, (x, d)| acc.chain2(x, v, Self::S::one(), d))
    }
    /// `Σᵣ (Σⱼ mᵣⱼ·wⱼ)²` over `rows` packed rows of `first + step·r` entries (the shape checked
    /// by the caller, `rules::sum_sq_matvec_lit`). The default applies the chain rule with a
    /// term per entry; `Var` records a dense block node when `m` is consecutive on its tape.
    #[inline]
    fn sum_sq_matvec_(m: &[Self], w: &[f64], first: usize, step: usize, rows: usize) -> Self {
        rules::sum_sq_matvec_terms(m, w, first, step, rows)
    }
    /// Copies of `xs` (see [`Real::pack`]); `Var` records them consecutively.
    #[inline]
    fn pack(xs: &[Self]) -> Vec<Self> {
        xs.to_vec()
    }
}

/// Derivative rules for the binary elementary functions, shared by the operators and `Float`.
pub(crate) mod rules {
    use super::Chain;
    use crate::real::Real;
    use num_traits::{Float, One, Zero};

    #[inline]
    pub fn mul<X: Chain>(a: X, b: X) -> X {
        let (x, y) = (a.re(), b.re());
        a.chain2(b, x * y, y, x)
    }

    #[inline]
    pub fn div<X: Chain>(a: X, b: X) -> X {
        let (x, y) = (a.re(), b.re());
        let inv = y.recip();
        let v = x * inv;
        a.chain2(b, v, inv, -v * inv)
    }

    /// `a % b = a - b·trunc(a/b)`: derivative 1 in `a`, `-trunc(a/b)` in `b`.
    #[inline]
    pub fn rem<X: Chain>(a: X, b: X) -> X {
        let (x, y) = (a.re(), b.re());
        a.chain2(b, x % y, X::S::one(), -(x / y).trunc())
    }

    #[inline]
    pub fn powf<X: Chain>(a: X, b: X) -> X {
        let (x, y) = (a.re(), b.re());
        let v = x.powf(y);
        let da = if y.is_zero() { X::S::zero() } else { y * x.powf(y - X::S::one()) };
        let db = if x.is_zero() { X::S::zero() } else { v * x.ln() };
        a.chain2(b, v, da, db)
    }

    /// Ties split the derivative evenly; a NaN argument is ignored, as in `f64::max`.
    #[inline]
    pub fn max<X: Chain>(a: X, b: X) -> X {
        let (x, y) = (a.re(), b.re());
        if x > y || y.is_nan() {
            a
        } else if y > x || x.is_nan() {
            b
        } else {
            let h = X::S::lit(0.5);
            a.chain2(b, x, h, h)
        }
    }

    #[inline]
    pub fn min<X: Chain>(a: X, b: X) -> X {
        let (x, y) = (a.re(), b.re());
        if x < y || y.is_nan() {
            a
        } else if y < x || x.is_nan() {
            b
        } else {
            let h = X::S::lit(0.5);
            a.chain2(b, x, h, h)
        }
    }

    #[inline]
    pub fn hypot<X: Chain>(a: X, b: X) -> X {
        let (x, y) = (a.re(), b.re());
        let v = x.hypot(y);
        if v.is_zero() {
            return a.chain2(b, v, X::S::zero(), X::S::zero());
        }
        a.chain2(b, v, x / v, y / v)
    }

    /// Length check shared by the two-slice fused operations.
    #[track_caller]
    #[inline]
    pub fn same_len(op: &str, a: usize, b: usize) {
        if a != b {
            panic!("{op}: slices of lengths {a} and {b} (must be equal)");
        }
    }

    /// `Σ xᵢ`, summed left to right from zero (as `Iterator::sum` does for `f64`).
    #[inline]
    pub fn sum_slice<X: Chain>(xs: &[X]) -> X {
        let v = xs.iter().fold(X::S::zero(), |acc, x| acc + x.re());
        X::chain_n(v, xs.iter().map(|&x| (x, X::S::one())))
    }

    /// `Σ aᵢ·bᵢ`; `∂/∂aᵢ = bᵢ`, `∂/∂bᵢ = aᵢ`.
    #[track_caller]
    #[inline]
    pub fn dot<X: Chain>(a: &[X], b: &[X]) -> X {
        same_len("Real::dot", a.len(), b.len());
        let v = a.iter().zip(b).fold(X::S::zero(), |acc, (x, y)| acc + x.re() * y.re());
        X::chain_n(v, a.iter().zip(b).flat_map(|(&x, &y)| [(x, y.re()), (y, x.re())]))
    }

    /// `Σ aᵢ·wᵢ` with constant weights; `∂/∂aᵢ = wᵢ`.
    #[track_caller]
    #[inline]
    pub fn dot_lit<X: Chain>(a: &[X], w: &[f64]) -> X {
        same_len("Real::dot_lit", a.len(), w.len());
        let v = a.iter().zip(w).fold(X::S::zero(), |acc, (x, &c)| acc + x.re() * X::S::lit(c));
        X::chain_n(v, a.iter().zip(w).map(|(&x, &c)| (x, X::S::lit(c))))
    }

    /// `Σ xᵢ²`; `∂/∂xᵢ = 2xᵢ`.
    #[inline]
    pub fn sum_sq<X: Chain>(xs: &[X]) -> X {
        let v = xs.iter().fold(X::S::zero(), |acc, x| acc + x.re() * x.re());
        X::chain_n(v, xs.iter().map(|&x| (x, x.re() + x.re())))
    }

    /// The number of rows of a packed matrix of `len` entries whose row `r` holds
    /// `first + step·r` of them, checking that they fill it exactly and that `w` (`wlen`
    /// entries) is long enough for the longest row. Panics naming `op` otherwise.
    #[track_caller]
    pub fn trapezoid_rows(op: &str, len: usize, wlen: usize, first: usize, step: usize) -> usize {
        if len == 0 {
            return 0;
        }
        if first == 0 && step == 0 {
            panic!("{op}: rows of no entries (first = step = 0) cannot hold {len} entries");
        }
        let (mut rows, mut total) = (0, 0);
        while total < len {
            total += first + step * rows;
            rows += 1;
        }
        if total != len {
            panic!(
                "{op}: {len} entries do not fill whole rows of first + step·r = {first} + {step}·r entries"
            );
        }
        let longest = first + step * (rows - 1);
        if longest > wlen {
            panic!("{op}: the longest row has {longest} entries but w has {wlen}");
        }
        rows
    }

    /// `Σᵣ (Σⱼ mᵣⱼ·wⱼ)²` over the packed rows of `m` (row `r`: `first + step·r` entries, times
    /// the first that many `w`s); `∂/∂mᵣⱼ = 2·lᵣ·wⱼ` with `lᵣ` the row's product.
    #[track_caller]
    #[inline]
    pub fn sum_sq_matvec_lit<X: Chain>(m: &[X], w: &[f64], first: usize, step: usize) -> X {
        let rows = trapezoid_rows("Real::sum_sq_matvec_lit", m.len(), w.len(), first, step);
        if rows == 0 {
            return X::cst(X::S::zero());
        }
        X::sum_sq_matvec_(m, w, first, step, rows)
    }

    /// `(offset, length)` of each of the `rows` rows of a packed trapezoid whose row `r` holds
    /// `first + step·r` entries. The tape's block node and its sweep walk the same layout with
    /// explicit loops: through this adapter the GMM gradient took 5–10% longer.
    #[inline]
    pub fn trapezoid(first: usize, step: usize, rows: usize) -> impl Iterator<Item = (usize, usize)> {
        (0..rows).map(move |r| (r * first + step * (r * r.saturating_sub(1) / 2), first + step * r))
    }

    /// [`sum_sq_matvec_lit`] through [`Chain::chain_n`], one term per entry (the shape already
    /// checked, `rows ≥ 1`).
    pub fn sum_sq_matvec_terms<X: Chain>(m: &[X], w: &[f64], first: usize, step: usize, rows: usize) -> X {
        let mut twice_l = Vec::with_capacity(rows);
        let mut v = X::S::zero();
        for (o, len) in trapezoid(first, step, rows) {
            let l =
                m[o..o + len].iter().zip(w).fold(X::S::zero(), |acc, (x, &c)| acc + x.re() * X::S::lit(c));
            v += l * l;
            twice_l.push(l + l);
        }
        let terms = trapezoid(first, step, rows).zip(twice_l).flat_map(|((o, len), c)| {
            m[o..o + len].iter().zip(w).map(move |(&x, &wj)| (x, c * X::S::lit(wj)))
        });
        X::chain_n(v, terms)
    }

    /// `ln Σ exp(xᵢ)`, shifted by the largest `xᵢ`; `∂/∂xᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m)`
    /// (the softmax). The empty sum gives `-∞`.
    #[inline]
    pub fn log_sum_exp<X: Chain>(xs: &[X]) -> X {
        let m = lse_shift(xs.iter().map(|x| x.re()));
        let s = xs.iter().fold(X::S::zero(), |acc, x| acc + (x.re() - m).exp());
        let inv = s.recip();
        X::chain_n(s.ln() + m, xs.iter().map(|&x| (x, (x.re() - m).exp() * inv)))
    }

    /// The shift of a log-sum-exp: the largest value, or zero when that is not finite (all
    /// `-∞`, or an `∞`/NaN that the result propagates anyway).
    #[inline]
    pub fn lse_shift<S: Real>(mut xs: impl Iterator<Item = S>) -> S {
        let Some(first) = xs.next() else { return S::zero() };
        let m = xs.fold(first, |m, x| if x > m { x } else { m });
        if m.is_finite() {
            m
        } else {
            S::zero()
        }
    }

    /// `atan2(a, b)`: the angle of the point `(b, a)`.
    #[inline]
    pub fn atan2<X: Chain>(a: X, b: X) -> X {
        let (y, x) = (a.re(), b.re());
        let r = x * x + y * y;
        if r.is_zero() {
            return a.chain2(b, y.atan2(x), X::S::zero(), X::S::zero());
        }
        a.chain2(b, y.atan2(x), x / r, -y / r)
    }
}

/// Implements the operators, `num_traits` plumbing, `Float`, `FloatConst` and `Real` for a
/// type implementing [`Chain`]. Use: `impl_real!([generics] Type);`.
macro_rules! impl_real {
    ([$($gen:tt)*] $ty:ty) => {
        impl<$($gen)*> ::std::ops::Add for $ty {
            type Output = Self;
            #[inline]
            fn add(self, o: Self) -> Self { $crate::chain::Chain::add_(self, o) }
        }
        impl<$($gen)*> ::std::ops::Sub for $ty {
            type Output = Self;
            #[inline]
            fn sub(self, o: Self) -> Self { $crate::chain::Chain::sub_(self, o) }
        }
        impl<$($gen)*> ::std::ops::Mul for $ty {
            type Output = Self;
            #[inline]
            fn mul(self, o: Self) -> Self { $crate::chain::rules::mul(self, o) }
        }
        impl<$($gen)*> ::std::ops::Div for $ty {
            type Output = Self;
            #[inline]
            fn div(self, o: Self) -> Self { $crate::chain::rules::div(self, o) }
        }
        impl<$($gen)*> ::std::ops::Rem for $ty {
            type Output = Self;
            #[inline]
            fn rem(self, o: Self) -> Self { $crate::chain::rules::rem(self, o) }
        }
        impl<$($gen)*> ::std::ops::Neg for $ty {
            type Output = Self;
            #[inline]
            fn neg(self) -> Self { $crate::chain::Chain::neg_(self) }
        }
        impl<$($gen)*> ::std::ops::AddAssign for $ty {
            #[inline]
            fn add_assign(&mut self, o: Self) { *self = *self + o }
        }
        impl<$($gen)*> ::std::ops::SubAssign for $ty {
            #[inline]
            fn sub_assign(&mut self, o: Self) { *self = *self - o }
        }
        impl<$($gen)*> ::std::ops::MulAssign for $ty {
            #[inline]
            fn mul_assign(&mut self, o: Self) { *self = *self * o }
        }
        impl<$($gen)*> ::std::ops::DivAssign for $ty {
            #[inline]
            fn div_assign(&mut self, o: Self) { *self = *self / o }
        }
        impl<$($gen)*> ::std::ops::RemAssign for $ty {
            #[inline]
            fn rem_assign(&mut self, o: Self) { *self = *self % o }
        }
        impl<$($gen)*> PartialEq for $ty {
            /// Compares primal values only.
            #[inline]
            fn eq(&self, o: &Self) -> bool { $crate::chain::Chain::re(self) == $crate::chain::Chain::re(o) }
        }
        impl<$($gen)*> PartialOrd for $ty {
            /// Compares primal values only.
            #[inline]
            fn partial_cmp(&self, o: &Self) -> Option<::std::cmp::Ordering> {
                $crate::chain::Chain::re(self).partial_cmp(&$crate::chain::Chain::re(o))
            }
        }
        impl<$($gen)*> ::std::fmt::Display for $ty {
            /// Shows the primal value.
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&$crate::chain::Chain::re(self), f)
            }
        }
        impl<$($gen)*> Default for $ty {
            fn default() -> Self { <Self as $crate::chain::Chain>::cst(Default::default()) }
        }
        impl<$($gen)*> ::num_traits::Zero for $ty {
            #[inline]
            fn zero() -> Self { <Self as $crate::chain::Chain>::cst(::num_traits::Zero::zero()) }
            #[inline]
            fn is_zero(&self) -> bool { ::num_traits::Zero::is_zero(&$crate::chain::Chain::re(self)) }
        }
        impl<$($gen)*> ::num_traits::One for $ty {
            #[inline]
            fn one() -> Self { <Self as $crate::chain::Chain>::cst(::num_traits::One::one()) }
        }
        impl<$($gen)*> ::num_traits::Num for $ty {
            type FromStrRadixErr = <<Self as $crate::chain::Chain>::S as ::num_traits::Num>::FromStrRadixErr;
            fn from_str_radix(s: &str, radix: u32) -> Result<Self, Self::FromStrRadixErr> {
                ::num_traits::Num::from_str_radix(s, radix).map(<Self as $crate::chain::Chain>::cst)
            }
        }
        impl<$($gen)*> ::num_traits::ToPrimitive for $ty {
            fn to_i64(&self) -> Option<i64> { $crate::chain::Chain::re(self).to_i64() }
            fn to_u64(&self) -> Option<u64> { $crate::chain::Chain::re(self).to_u64() }
            fn to_f64(&self) -> Option<f64> { $crate::chain::Chain::re(self).to_f64() }
        }
        impl<$($gen)*> ::num_traits::NumCast for $ty {
            fn from<P: ::num_traits::ToPrimitive>(n: P) -> Option<Self> {
                <<Self as $crate::chain::Chain>::S as ::num_traits::NumCast>::from(n)
                    .map(<Self as $crate::chain::Chain>::cst)
            }
        }
        impl<$($gen)*> ::num_traits::FromPrimitive for $ty {
            fn from_i64(n: i64) -> Option<Self> {
                <<Self as $crate::chain::Chain>::S as ::num_traits::FromPrimitive>::from_i64(n)
                    .map(<Self as $crate::chain::Chain>::cst)
            }
            fn from_u64(n: u64) -> Option<Self> {
                <<Self as $crate::chain::Chain>::S as ::num_traits::FromPrimitive>::from_u64(n)
                    .map(<Self as $crate::chain::Chain>::cst)
            }
            fn from_f64(n: f64) -> Option<Self> {
                <<Self as $crate::chain::Chain>::S as ::num_traits::FromPrimitive>::from_f64(n)
                    .map(<Self as $crate::chain::Chain>::cst)
            }
        }
        impl<$($gen)*> ::std::iter::Sum for $ty {
            fn sum<I: Iterator<Item = Self>>(it: I) -> Self {
                it.fold(::num_traits::Zero::zero(), |a, b| a + b)
            }
        }
        impl<$($gen)*> ::std::iter::Product for $ty {
            fn product<I: Iterator<Item = Self>>(it: I) -> Self {
                it.fold(::num_traits::One::one(), |a, b| a * b)
            }
        }
        impl<$($gen)*> ::num_traits::FloatConst for $ty {
            $crate::chain::impl_real!(@consts E FRAC_1_PI FRAC_1_SQRT_2 FRAC_2_PI FRAC_2_SQRT_PI FRAC_PI_2
                FRAC_PI_3 FRAC_PI_4 FRAC_PI_6 FRAC_PI_8 LN_10 LN_2 LOG10_E LOG2_E PI SQRT_2 TAU LOG10_2 LOG2_10);
        }
        impl<$($gen)*> ::num_traits::Float for $ty {
            $crate::chain::impl_real!(@csts nan infinity neg_infinity neg_zero min_value min_positive_value
                max_value epsilon);
            $crate::chain::impl_real!(@preds is_nan is_infinite is_finite is_normal is_subnormal
                is_sign_positive is_sign_negative);
            $crate::chain::impl_real!(@flat floor ceil round trunc signum);
            fn classify(self) -> ::std::num::FpCategory { $crate::chain::Chain::re(&self).classify() }
            fn integer_decode(self) -> (u64, i16, i8) { $crate::chain::Chain::re(&self).integer_decode() }
            #[inline]
            fn fract(self) -> Self { let x = self.re(); self.chain(x.fract(), $crate::chain::s_one::<Self>()) }
            #[inline]
            fn abs(self) -> Self { let x = self.re(); self.chain(x.abs(), $crate::real::sign0(x)) }
            #[inline]
            fn mul_add(self, a: Self, b: Self) -> Self { self * a + b }
            #[inline]
            fn recip(self) -> Self { let x = self.re(); let v = x.recip(); self.chain(v, -v * v) }
            #[inline]
            fn powi(self, n: i32) -> Self {
                let x = self.re();
                if n == 0 { return <Self as $crate::chain::Chain>::cst($crate::chain::s_one::<Self>()); }
                let p = x.powi(n - 1);
                self.chain(x.powi(n), p * <Self as $crate::chain::Chain>::S::lit(n as f64))
            }
            #[inline]
            fn powf(self, n: Self) -> Self { $crate::chain::rules::powf(self, n) }
            #[inline]
            fn sqrt(self) -> Self {
                let x = self.re();
                let v = x.sqrt();
                self.chain(v, (v + v).recip())
            }
            #[inline]
            fn cbrt(self) -> Self {
                let x = self.re();
                let v = x.cbrt();
                self.chain(v, (<Self as $crate::chain::Chain>::S::lit(3.0) * v * v).recip())
            }
            #[inline]
            fn exp(self) -> Self { let v = self.re().exp(); self.chain(v, v) }
            #[inline]
            fn exp2(self) -> Self {
                let v = self.re().exp2();
                self.chain(v, v * <<Self as $crate::chain::Chain>::S as ::num_traits::FloatConst>::LN_2())
            }
            #[inline]
            fn exp_m1(self) -> Self { let x = self.re(); self.chain(x.exp_m1(), x.exp()) }
            #[inline]
            fn ln(self) -> Self { let x = self.re(); self.chain(x.ln(), x.recip()) }
            #[inline]
            fn ln_1p(self) -> Self { let x = self.re(); self.chain(x.ln_1p(), (x + $crate::chain::s_one::<Self>()).recip()) }
            #[inline]
            fn log(self, base: Self) -> Self { self.ln() / base.ln() }
            #[inline]
            fn log2(self) -> Self {
                let x = self.re();
                self.chain(x.log2(), (x * <<Self as $crate::chain::Chain>::S as ::num_traits::FloatConst>::LN_2()).recip())
            }
            #[inline]
            fn log10(self) -> Self {
                let x = self.re();
                self.chain(x.log10(), (x * <<Self as $crate::chain::Chain>::S as ::num_traits::FloatConst>::LN_10()).recip())
            }
            #[inline]
            fn to_degrees(self) -> Self {
                let k = <<Self as $crate::chain::Chain>::S as $crate::real::Real>::lit(180.0 / ::std::f64::consts::PI);
                self.chain(self.re().to_degrees(), k)
            }
            #[inline]
            fn to_radians(self) -> Self {
                let k = <<Self as $crate::chain::Chain>::S as $crate::real::Real>::lit(::std::f64::consts::PI / 180.0);
                self.chain(self.re().to_radians(), k)
            }
            #[inline]
            fn max(self, o: Self) -> Self { $crate::chain::rules::max(self, o) }
            #[inline]
            fn min(self, o: Self) -> Self { $crate::chain::rules::min(self, o) }
            #[allow(deprecated)]
            fn abs_sub(self, o: Self) -> Self {
                if self <= o { ::num_traits::Zero::zero() } else { self - o }
            }
            #[inline]
            fn hypot(self, o: Self) -> Self { $crate::chain::rules::hypot(self, o) }
            #[inline]
            fn sin(self) -> Self { let x = self.re(); self.chain(x.sin(), x.cos()) }
            #[inline]
            fn cos(self) -> Self { let x = self.re(); self.chain(x.cos(), -x.sin()) }
            #[inline]
            fn sin_cos(self) -> (Self, Self) {
                let (s, c) = self.re().sin_cos();
                (self.chain(s, c), self.chain(c, -s))
            }
            #[inline]
            fn tan(self) -> Self {
                let v = self.re().tan();
                self.chain(v, v * v + $crate::chain::s_one::<Self>())
            }
            #[inline]
            fn asin(self) -> Self {
                let x = self.re();
                self.chain(x.asin(), ($crate::chain::s_one::<Self>() - x * x).sqrt().recip())
            }
            #[inline]
            fn acos(self) -> Self {
                let x = self.re();
                self.chain(x.acos(), -($crate::chain::s_one::<Self>() - x * x).sqrt().recip())
            }
            #[inline]
            fn atan(self) -> Self { let x = self.re(); self.chain(x.atan(), (x * x + $crate::chain::s_one::<Self>()).recip()) }
            #[inline]
            fn atan2(self, o: Self) -> Self { $crate::chain::rules::atan2(self, o) }
            #[inline]
            fn sinh(self) -> Self { let x = self.re(); self.chain(x.sinh(), x.cosh()) }
            #[inline]
            fn cosh(self) -> Self { let x = self.re(); self.chain(x.cosh(), x.sinh()) }
            #[inline]
            fn tanh(self) -> Self {
                let v = self.re().tanh();
                self.chain(v, $crate::chain::s_one::<Self>() - v * v)
            }
            #[inline]
            fn asinh(self) -> Self { let x = self.re(); self.chain(x.asinh(), (x * x + $crate::chain::s_one::<Self>()).sqrt().recip()) }
            #[inline]
            fn acosh(self) -> Self {
                let x = self.re();
                self.chain(x.acosh(), (x * x - $crate::chain::s_one::<Self>()).sqrt().recip())
            }
            #[inline]
            fn atanh(self) -> Self {
                let x = self.re();
                self.chain(x.atanh(), ($crate::chain::s_one::<Self>() - x * x).recip())
            }
            fn copysign(self, sign: Self) -> Self {
                if self.re().is_sign_negative() == sign.re().is_sign_negative() { self } else { -self }
            }
        }
        impl<$($gen)*> $crate::real::Real for $ty {
            #[inline]
            fn lit(x: f64) -> Self { <Self as $crate::chain::Chain>::cst($crate::real::Real::lit(x)) }
            #[inline]
            fn value(&self) -> f64 { $crate::real::Real::value(&$crate::chain::Chain::re(self)) }
            #[inline]
            fn erf(self) -> Self {
                let x = self.re();
                let d = <<Self as $crate::chain::Chain>::S as ::num_traits::FloatConst>::FRAC_2_SQRT_PI()
                    * (-(x * x)).exp();
                self.chain($crate::real::Real::erf(x), d)
            }
            #[inline]
            fn erfc(self) -> Self {
                let x = self.re();
                let d = <<Self as $crate::chain::Chain>::S as ::num_traits::FloatConst>::FRAC_2_SQRT_PI()
                    * (-(x * x)).exp();
                self.chain($crate::real::Real::erfc(x), -d)
            }
            #[inline]
            fn sum_slice(xs: &[Self]) -> Self { $crate::chain::rules::sum_slice(xs) }
            #[inline]
            #[track_caller]
            fn dot(a: &[Self], b: &[Self]) -> Self { $crate::chain::rules::dot(a, b) }
            #[inline]
            #[track_caller]
            fn dot_lit(a: &[Self], w: &[f64]) -> Self { $crate::chain::rules::dot_lit(a, w) }
            #[inline]
            fn sum_sq(xs: &[Self]) -> Self { $crate::chain::rules::sum_sq(xs) }
            #[inline]
            fn log_sum_exp(xs: &[Self]) -> Self { $crate::chain::rules::log_sum_exp(xs) }
            #[inline]
            #[track_caller]
            fn sum_sq_matvec_lit(m: &[Self], w: &[f64], first: usize, step: usize) -> Self {
                $crate::chain::rules::sum_sq_matvec_lit(m, w, first, step)
            }
            #[inline]
            fn pack(xs: &[Self]) -> Vec<Self> { <Self as $crate::chain::Chain>::pack(xs) }
        }
    };
    (@consts $($c:ident)*) => {
        $(
            #[allow(non_snake_case)]
            #[inline]
            fn $c() -> Self {
                <Self as $crate::chain::Chain>::cst(<<Self as $crate::chain::Chain>::S as ::num_traits::FloatConst>::$c())
            }
        )*
    };
    (@csts $($c:ident)*) => {
        $(
            #[inline]
            fn $c() -> Self {
                <Self as $crate::chain::Chain>::cst(<<Self as $crate::chain::Chain>::S as ::num_traits::Float>::$c())
            }
        )*
    };
    (@preds $($c:ident)*) => {
        $( #[inline] fn $c(self) -> bool { $crate::chain::Chain::re(&self).$c() } )*
    };
    (@flat $($c:ident)*) => {
        $( #[inline] fn $c(self) -> Self { <Self as $crate::chain::Chain>::cst($crate::chain::Chain::re(&self).$c()) } )*
    };
}
pub(crate) use impl_real;
