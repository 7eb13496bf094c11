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

    /// `Σᵣ (Σⱼ mᵣⱼ·wⱼ)²`: the squared norm of a matrix of variables times a constant vector —
    /// the quadratic form `‖L(x − μ)‖²` of a Gaussian log-density — with the matrix packed row
    /// by row: row `r` holds `first + step·r` entries and takes the first that many `w`s
    /// (`step = 0`: a dense `rows × first` matrix; `step = 1`: a lower-trapezoidal one, such as
    /// a triangular factor with a column in front). Fused: each row's product `lᵣ` is summed
    /// left to right from zero, then `Σ lᵣ²` likewise, so `f64` gives the same bits as
    /// `dot_lit` per row followed by `sum_sq`.
    ///
    /// [`Var`](crate::Var) records it as one *dense block node* when `m`'s variables are
    /// consecutive on the tape ([`pack`](Real::pack) makes them so, once, for a matrix used
    /// many times): `rows + J` numbers instead of a term per entry, and a sweep that adds an
    /// outer product into a contiguous stretch of adjoints (see [the tape's
    /// docs](crate::tape#dense-block-nodes)). Otherwise it records one n-ary node.
    ///
    /// Panics if `m` does not fill whole rows or `w` is shorter than the longest row.
    ///
    /// ```
    /// use adjoint_scalar::prelude::*;
    /// // Rows [m0, m1] and [m2, m3, m4] (first = 2, step = 1) times w = [1, 2, 3].
    /// let w = [1.0, 2.0, 3.0];
    /// let f = |m: &[Var]| Var::sum_sq_matvec_lit(&Var::pack(m), &w, 2, 1);
    /// let (v, g) = value_and_gradient(f, &[1.0, 1.0, 1.0, 0.0, 1.0]);
    /// // l = [1 + 2, 1 + 0 + 3] = [3, 4]: v = 25, ∂v/∂mᵣⱼ = 2·lᵣ·wⱼ.
    /// assert_eq!(v, 25.0);
    /// assert_eq!(g, vec![6.0, 12.0, 8.0, 16.0, 24.0]);
    /// assert_eq!(f64::sum_sq_matvec_lit(&[1.0, 1.0, 1.0, 0.0, 1.0], &w, 2, 1), 25.0);
    /// ```
    #[track_caller]
    fn sum_sq_matvec_lit(m: &[Self], w: &[f64], first: usize, step: usize) -> Self {
        let (mut acc, mut o, mut r) = (Self::zero(), 0, 0);
        while o < m.len() {
            let len = first + step * r;
            if len == 0 || o + len > m.len() || len > w.len() {
                // Not whole rows or `w` too short: panics with the reason (an empty first row
                // of a valid shape passes).
                crate::chain::rules::trapezoid_rows("Real::sum_sq_matvec_lit", m.len(), w.len(), first, step);
            }
            let l = m[o..o + len].iter().zip(w).fold(Self::zero(), |a, (&x, &c)| a + x * Self::lit(c));
            acc += l * l;
            o += len;
            r += 1;
        }
        acc
    }

    /// Copies of `xs` for fused operations that read a matrix of variables many times
    /// ([`sum_sq_matvec_lit`](Real::sum_sq_matvec_lit)): [`Var`](crate::Var) records them as
    /// consecutive tape nodes (one identity node each, none when they already are), which is
    /// what lets those operations record a dense block node; every other type copies.
    ///
    /// ```
    /// use adjoint_scalar::prelude::*;
    /// let g = gradient(|x: &[Var]| { let p = Var::pack(&[x[1], x[0]]); p[0] * 3.0 + p[1] }, &[1.0, 2.0]);
    /// assert_eq!(g, vec![1.0, 3.0]);
    /// ```
    fn pack(xs: &[Self]) -> Vec<Self> {
        xs.to_vec()
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
