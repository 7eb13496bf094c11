//! The [`Real`] trait: what generic scalar code is written against.
//!
//! `Real` is `num_traits::Float` plus the few things numerical code needs that `Float` lacks
//! (`erf`, literals, the primal value). Because it *extends* `Float`, a function written over
//! `T: Float` (with `FloatConst`/`FromPrimitive` if it uses them) is already generic enough
//! to be called with `Dual`, `DualVec` or `Var`; nothing has to be rewritten.

use std::fmt::{Debug, Display};
use std::iter::{Product, Sum};

use num_traits::{Float, FloatConst, FromPrimitive, NumAssign};

/// A real scalar: `f32`, `f64`, or one of the automatic-differentiation types
/// ([`Dual`](crate::Dual), [`DualVec`](crate::DualVec), [`Var`](crate::Var)) over them.
///
/// All `Float` functions are differentiable; non-smooth ones use these derivatives
/// (subgradients) at their kinks, the same choices as JAX:
///
/// | function | derivative used |
/// |---|---|
/// | `abs(x)` | `sign(x)`, and `0` at `x = 0` |
/// | `max(a, b)` / `min(a, b)` | `1` for the selected argument; `½` each on a tie |
/// | `floor`, `ceil`, `round`, `trunc`, `signum` | `0` |
/// | `powf(x, y)` | `∂/∂y = 0` where `x = 0` (the limit from the right) |
/// | `hypot(x, y)` | `0` at the origin |
///
/// Comparisons (`==`, `<`, …) read the primal value only, so `if`, `while` and `match` on
/// values behave exactly as they do in `f64` and the derivative follows the branch taken.
///
/// ```
/// use adjoint_scalar::{derivative, Real};
/// fn soft_clip<T: Real>(x: T) -> T {
///     if x > T::lit(1.0) { T::lit(1.0) + (x - T::lit(1.0)).tanh() } else { x }
/// }
/// assert_eq!(derivative(soft_clip, 0.5), 1.0);
/// assert!((derivative(soft_clip, 1.5) - (1.0 - 0.5f64.tanh().powi(2))).abs() < 1e-15);
/// ```
pub trait Real:
    Float + FloatConst + FromPrimitive + NumAssign + Sum + Product + Default + Debug + Display + 'static
{
    /// A constant from an `f64` literal (rounded to `f32` for `f32`-based types); it carries no
    /// derivative.
    fn lit(x: f64) -> Self;

    /// The primal value as `f64`, with every derivative part dropped.
    fn value(&self) -> f64;

    /// The error function `erf(x) = 2/√π ∫₀ˣ e^{-t²} dt`.
    fn erf(self) -> Self;

    /// The complementary error function `1 - erf(x)`.
    fn erfc(self) -> Self {
        Self::one() - self.erf()
    }

    /// `log(1 + x)`, accurate for small `x` (an alias of `Float::ln_1p`).
    fn log1p(self) -> Self {
        self.ln_1p()
    }

    /// `exp(x) - 1`, accurate for small `x` (an alias of `Float::exp_m1`).
    fn expm1(self) -> Self {
        self.exp_m1()
    }

    /// `Σ xᵢ`, left to right from zero. A fused operation: [`Var`](crate::Var) records it as
    /// one tape node whatever the length (see [the fused operations](crate::tape#fused-n-ary-nodes)).
    ///
    /// ```
    /// use adjoint_scalar::prelude::*;
    /// let g = gradient(|x: &[Var]| Var::sum_slice(x) * x[0], &[2.0, 3.0]);
    /// assert_eq!(g, vec![7.0, 2.0]);
    /// assert_eq!(f64::sum_slice(&[1.0, 2.0]), 3.0);
    /// ```
    fn sum_slice(xs: &[Self]) -> Self {
        xs.iter().fold(Self::zero(), |acc, &x| acc + x)
    }

    /// The dot product `Σ aᵢ·bᵢ` (fused). Panics if the lengths differ.
    ///
    /// ```
    /// use adjoint_scalar::prelude::*;
    /// let g = gradient(|x: &[Var]| Var::dot(&x[..2], &x[2..]), &[1.0, 2.0, 3.0, 4.0]);
    /// assert_eq!(g, vec![3.0, 4.0, 1.0, 2.0]);
    /// ```
    #[track_caller]
    fn dot(a: &[Self], b: &[Self]) -> Self {
        crate::chain::rules::same_len("Real::dot", a.len(), b.len());
        a.iter().zip(b).fold(Self::zero(), |acc, (&x, &y)| acc + x * y)
    }

    /// The linear combination `Σ aᵢ·wᵢ` with constant weights (fused). Panics if the lengths
    /// differ.
    ///
    /// ```
    /// use adjoint_scalar::prelude::*;
    /// let g = gradient(|x: &[Var]| Var::dot_lit(x, &[1.0, -0.5]), &[1.0, 2.0]);
    /// assert_eq!(g, vec![1.0, -0.5]);
    /// ```
    #[track_caller]
    fn dot_lit(a: &[Self], w: &[f64]) -> Self {
        crate::chain::rules::same_len("Real::dot_lit", a.len(), w.len());
        a.iter().zip(w).fold(Self::zero(), |acc, (&x, &c)| acc + x * Self::lit(c))
    }

    /// The squared Euclidean norm `Σ xᵢ²` (fused).
    ///
    /// ```
    /// use adjoint_scalar::prelude::*;
    /// assert_eq!(gradient(|x: &[Var]| Var::sum_sq(x), &[1.0, -2.0]), vec![2.0, -4.0]);
    /// ```
    fn sum_sq(xs: &[Self]) -> Self {
        xs.iter().fold(Self::zero(), |acc, &x| acc + x * x)
    }

    /// `ln Σ exp(xᵢ)`, computed stably (shifted by the largest `xᵢ`); fused, with the softmax
    /// as its partials. The empty slice gives `-∞`.
    ///
    /// ```
    /// use adjoint_scalar::prelude::*;
    /// let (v, g) = value_and_gradient(|x: &[Var]| Var::log_sum_exp(x), &[0.0, 0.0]);
    /// assert_eq!((v, g), (2f64.ln(), vec![0.5, 0.5]));
    /// assert_eq!(f64::log_sum_exp(&[1000.0, 1000.0]), 1000.0 + 2f64.ln());
    /// ```
    fn log_sum_exp(xs: &[Self]) -> Self {
        let m = crate::chain::rules::lse_shift(xs.iter().copied());
        let s = xs.iter().fold(Self::zero(), |acc, &x| acc + (x - m).exp());
        s.ln() + m
    }
}

impl Real for f64 {
    #[inline]
    fn lit(x: f64) -> f64 {
        x
    }
    #[inline]
    fn value(&self) -> f64 {
        *self
    }
    #[inline]
    fn erf(self) -> f64 {
        adjoint_tensor::special::erf_f64(self)
    }
}

impl Real for f32 {
    #[inline]
    fn lit(x: f64) -> f32 {
        x as f32
    }
    #[inline]
    fn value(&self) -> f64 {
        *self as f64
    }
    #[inline]
    fn erf(self) -> f32 {
        adjoint_tensor::special::erf_f64(self as f64) as f32
    }
}

/// `sign(x)` with `0` at `0` (and NaN for NaN): the subgradient of `|x|` used throughout.
#[inline]
pub(crate) fn sign0<T: Real>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else if x.is_nan() {
        x
    } else {
        T::zero()
    }
}
