//! Numerics: the stable formulations adjoint uses, and the where-safe pattern.
//!
//! Float formulas that are exact on paper overflow, cancel or divide by zero in `f32`, and a
//! formula whose *value* is fine can still have a NaN *gradient*. Each composite below is written
//! so that both its value and its derivative (every order, both modes) stay finite at the
//! extremes — `±1e4` in `f32`, exact zeros, denormals — and each is tested there
//! (`crates/adjoint-core/tests/numerics.rs`, which also runs them under
//! [`detect_anomaly`](crate::debug::detect_anomaly), so not even a discarded intermediate may
//! overflow).
//!
//! | op | formulation | why |
//! |----|-------------|-----|
//! | [`logsumexp`](crate::Tensor::logsumexp) | `m + log Σ exp(x − m)`, `m = stop_gradient(max x)`, `m = 0` on rows with no finite max | no overflow; the gradient is exactly `softmax(x)` (the max is a constant of the formula, so its tie-breaking never enters the derivative) |
//! | [`log_softmax`](crate::Tensor::log_softmax) | `(x − m) − log Σ exp(x − m)`, `m` the stopped max | never `log(0)` of an underflowed softmax; `x − m` is exact, so no digits are lost to the size of `x` (`x − logsumexp(x)` loses 2e-4 at `x = 1e4` in `f32`) |
//! | [`softmax`](crate::Tensor::softmax) | `exp(x − m) / Σ exp(x − m)` | no overflow; exact ties give exactly equal probabilities |
//! | [`softplus`](crate::Tensor::softplus) | `x + log1p(exp(−x))` for `x > 0`, `log1p(exp(x))` otherwise, each branch fed a where-safe input | no overflow of `exp`; linear branch for large `x`; derivative `σ(x)` everywhere, `½` at 0 |
//! | [`log1p`](crate::Tensor::log1p), [`expm1`](crate::Tensor::expm1) | primitives (libm) | `log(1 + x)` and `exp(x) − 1` lose every digit for tiny `x` |
//! | [`sigmoid`](crate::Tensor::sigmoid) | primitive: `1/(1+e^{−x})` for `x ≥ 0`, `e^x/(1+e^x)` otherwise; derivative `σ(1−σ)` | no `inf/inf` |
//! | [`xlogy`](crate::Tensor::xlogy) | `0` where `x = 0`, else `x·log(y)`, with `y` replaced by 1 where `x = 0` | `0·log 0 = 0` (entropy, KL) with a finite gradient |
//! | [`norm`](crate::Tensor::norm) | `sqrt(Σx²)` with the sum replaced by 1 where it is 0, then the result by 0 | subgradient 0 at 0 instead of `0/0` |
//!
//! ## The where-safe (double-where) pattern
//!
//! `select(mask, f(x), g(x))` has the right value but not always the right gradient: the
//! reverse rule sends a zero cotangent into the branch that was not taken, and `0 · inf = NaN`
//! when that branch's derivative is infinite there (`sqrt` at 0, `log` at 0, `exp` of a large
//! number). The fix is to make the untaken branch see a harmless input, so nothing infinite is
//! ever computed:
//!
//! ```
//! use adjoint_core::{grad, Tensor};
//!
//! // sqrt(x) where x > 0, else 0 — with a finite gradient at x = 0.
//! fn safe_sqrt(x: &Tensor) -> Tensor {
//!     let pos = x.gt_scalar(0.0);
//!     let one = Tensor::scalar_of(1.0, x.dtype());
//!     let x_safe = Tensor::select(&pos, x, &one); // first where: a safe input everywhere
//!     Tensor::select(&pos, &x_safe.sqrt(), &Tensor::scalar_of(0.0, x.dtype())) // second where
//! }
//! let x = Tensor::from_vec(vec![0.0f32, 4.0], &[2]);
//! let g = grad(|x: &Tensor| safe_sqrt(x).sum())(&x).to_vec::<f32>();
//! assert_eq!(g, vec![0.0, 0.25]);
//!
//! // The naive single where gives NaN at 0:
//! let naive = |x: &Tensor| Tensor::select(&x.gt_scalar(0.0), &x.sqrt(), &x.zeros_like()).sum();
//! assert!(grad(naive)(&x).to_vec::<f32>()[0].is_nan());
//! ```
//!
//! [`xlogy`](crate::Tensor::xlogy), [`norm`](crate::Tensor::norm) and
//! [`softplus`](crate::Tensor::softplus) are written this way. Masked reductions (attention
//! masks, padded sequences) should mask the *input* to the unsafe op, not only its output.
