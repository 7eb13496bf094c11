//! Attributions: which input features a model's output depends on, for any
//! `Fn(&Tensor) -> Tensor` model.
//!
//! Three methods, as Captum users know them:
//!
//! * [`gradient_x_input`]: `x ⊙ ∂f/∂x` (exact for a linear model with a zero baseline).
//! * [`integrated_gradients`]: `(x − x₀) ⊙ ∫₀¹ ∂f/∂x(x₀ + α(x − x₀)) dα`, the integral by the
//!   trapezoid rule (or midpoint Riemann sum) over `steps` intervals. Its *completeness*
//!   property — the attributions of one example sum to `f(x) − f(x₀)` — is checked and the
//!   error returned ([`IntegratedGradients::completeness_error`]): for a linear model it is zero
//!   up to rounding, for a smooth model it falls as `O(1/steps²)` with the trapezoid rule.
//! * [`smoothgrad`]: the gradient averaged over `samples` noisy copies `x + N(0, σ²)` (noise
//!   from adjoint's counter-based PRNG, so it is reproducible from the key).
//!
//! ## Conventions
//!
//! `f` is written for **one example** and is batched with [`vmap`](fn@adjoint_core::vmap): `x` is a batch `[B, …]` and
//! `f` sees one `[…]` slice. Like Captum's `target`, [`Target`] picks the scalar that is
//! explained: [`Target::Scalar`] for a model with a one-element output (a regression, a
//! logit), [`Target::Index`] for the `i`-th element of a flattened vector output (a class
//! score, one of several forecasts). Attributions have the shape and dtype of `x`. The gradient
//! is taken with [`grad`], so `f` may be any differentiable adjoint code (layers, loops,
//! branches on values).
//!
//! ```
//! use adjoint_core::Tensor;
//! use adjoint_nn::explain::{integrated_gradients, IgOptions, Target};
//! // f(x) = 2·x₀ + 3·x₁ (ignores x₂): attributions against a zero baseline are exactly w ⊙ x.
//! let w = Tensor::from_vec(vec![2.0f64, 3.0, 0.0], &[3]);
//! let f = |x: &Tensor| (x * &w).sum();
//! let x = Tensor::from_vec(vec![1.0f64, 2.0, 5.0], &[1, 3]);
//! let ig = integrated_gradients(&f, &x, None, Target::Scalar, &IgOptions::default());
//! assert_eq!(ig.attributions.to_vec::<f64>(), vec![2.0, 6.0, 0.0]);
//! assert!(ig.max_completeness_error() < 1e-12);
//! ```

use adjoint_core::{grad, vmap, Tensor};
use adjoint_tensor::random::{self, Key};

/// Which scalar of the model's output is explained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The output has exactly one element (shape `[]`, `[1]`, `[1, 1]`, …).
    Scalar,
    /// Element `i` of the flattened output (a class, one of several outputs).
    Index(usize),
}

/// The explained scalar of `y` (one example's output).
#[track_caller]
fn pick(y: Tensor, target: Target) -> Tensor {
    let flat = y.flatten();
    let n = flat.shape()[0];
    match target {
        Target::Scalar => {
            assert!(n == 1, "adjoint: explain: Target::Scalar needs a one-element output, got {n} elements; use Target::Index");
            flat.sum()
        }
        Target::Index(i) => {
            assert!(
                i < n,
                "adjoint: explain: Target::Index({i}) is out of range for an output of {n} elements"
            );
            flat.narrow(0, i, 1).sum()
        }
    }
}

/// The per-example gradient `∂f/∂x` of the explained scalar, for a batch `x: [B, …]`.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::explain::{gradients, Target};
/// let f = |x: &Tensor| (x * x).sum(); // ∂f/∂x = 2x
/// let x = Tensor::from_vec(vec![1.0f64, -2.0, 3.0, 0.5], &[2, 2]);
/// assert_eq!(gradients(&f, &x, Target::Scalar).to_vec::<f64>(), vec![2.0, -4.0, 6.0, 1.0]);
/// ```
#[track_caller]
pub fn gradients<F: Fn(&Tensor) -> Tensor>(f: &F, x: &Tensor, target: Target) -> Tensor {
    vmap(grad(|xi: &Tensor| pick(f(xi), target)))(x)
}

/// The explained scalar of `f` for each example of `x: [B, …]`, as a `[B]` tensor.
#[track_caller]
pub fn outputs<F: Fn(&Tensor) -> Tensor>(f: &F, x: &Tensor, target: Target) -> Tensor {
    vmap(|xi: &Tensor| pick(f(xi), target))(x)
}

/// Gradient × input: `x ⊙ ∂f/∂x` per example.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::explain::{gradient_x_input, Target};
/// let f = |x: &Tensor| (x * x).sum();
/// let x = Tensor::from_vec(vec![1.0f64, -2.0], &[1, 2]);
/// assert_eq!(gradient_x_input(&f, &x, Target::Scalar).to_vec::<f64>(), vec![2.0, 8.0]);
/// ```
#[track_caller]
pub fn gradient_x_input<F: Fn(&Tensor) -> Tensor>(f: &F, x: &Tensor, target: Target) -> Tensor {
    x * &gradients(f, x, target)
}

/// How the path integral of [`integrated_gradients`] is approximated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathRule {
    /// Trapezoid rule on `steps + 1` points (`α = 0, 1/steps, …, 1`); error `O(1/steps²)`.
    Trapezoid,
    /// Midpoint Riemann sum on `steps` points (`α = (k + ½)/steps`); error `O(1/steps²)`.
    Midpoint,
}

/// Options of [`integrated_gradients`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IgOptions {
    /// Intervals of the path (at least 1).
    pub steps: usize,
    /// Quadrature rule.
    pub rule: PathRule,
}

impl Default for IgOptions {
    /// 64 trapezoid steps.
    fn default() -> Self {
        IgOptions { steps: 64, rule: PathRule::Trapezoid }
    }
}

/// What [`integrated_gradients`] returns.
#[derive(Clone, Debug)]
pub struct IntegratedGradients {
    /// Attributions, shaped like the input batch.
    pub attributions: Tensor,
    /// `f(x) − f(baseline)` per example, `[B]`.
    pub delta: Tensor,
    /// `|Σ attributions − (f(x) − f(baseline))|` per example, `[B]` (the completeness check).
    pub completeness_error: Tensor,
}

impl IntegratedGradients {
    /// The largest completeness error over the batch (as `f64`).
    pub fn max_completeness_error(&self) -> f64 {
        self.completeness_error.cast(adjoint_core::DType::F64).to_vec::<f64>().into_iter().fold(0.0, f64::max)
    }

    /// Errors (naming the worst example) unless every completeness error is within `tol`, a
    /// tolerance relative to `max(1, |f(x) − f(baseline)|)`.
    pub fn check_completeness(&self, tol: f64) -> Result<(), String> {
        let err = self.completeness_error.cast(adjoint_core::DType::F64).to_vec::<f64>();
        let delta = self.delta.cast(adjoint_core::DType::F64).to_vec::<f64>();
        for (i, (e, d)) in err.iter().zip(&delta).enumerate() {
            if e.is_nan() || *e > tol * d.abs().max(1.0) {
                return Err(format!(
                    "integrated gradients: example {i}: attributions sum differs from f(x) − f(baseline) = {d} by {e} (tolerance {tol} relative); use more steps"
                ));
            }
        }
        Ok(())
    }
}

/// Integrated gradients of the explained scalar of `f` for each example of `x: [B, …]`, against
/// `baseline` (one example `[…]` shared by all, or a batch `[B, …]`; zeros when `None`).
///
/// Panics (naming the problem) on `steps == 0` or a baseline whose shape fits neither.
#[track_caller]
pub fn integrated_gradients<F: Fn(&Tensor) -> Tensor>(
    f: &F,
    x: &Tensor,
    baseline: Option<&Tensor>,
    target: Target,
    opts: &IgOptions,
) -> IntegratedGradients {
    assert!(opts.steps >= 1, "adjoint: integrated_gradients: steps must be at least 1");
    let zero;
    let base = match baseline {
        Some(b) => b,
        None => {
            zero = x.zeros_like();
            &zero
        }
    };
    let base = if base.shape() == x.shape() {
        base.clone()
    } else if base.shape() == &x.shape()[1..] {
        base.unsqueeze(0).broadcast_to(x.shape())
    } else {
        panic!(
            "adjoint: integrated_gradients: baseline shape {:?} fits neither the batch {:?} nor one example",
            base.shape(),
            x.shape()
        )
    };
    let diff = x - &base;
    let m = opts.steps;
    let points: Vec<(f64, f64)> = match opts.rule {
        PathRule::Trapezoid => (0..=m)
            .map(|k| (k as f64 / m as f64, if k == 0 || k == m { 0.5 / m as f64 } else { 1.0 / m as f64 }))
            .collect(),
        PathRule::Midpoint => (0..m).map(|k| ((k as f64 + 0.5) / m as f64, 1.0 / m as f64)).collect(),
    };
    let mut avg = x.zeros_like();
    for (alpha, weight) in points {
        let xa = &base + &(&diff * alpha);
        avg = avg + gradients(f, &xa, target) * weight;
    }
    let attributions = &diff * &avg;
    let delta = outputs(f, x, target) - outputs(f, &base, target);
    let b = x.shape()[0];
    let sums = attributions.reshape(&[b, x.numel() / b.max(1)]).sum_axes(&[1], false);
    let completeness_error = (&sums - &delta).abs();
    IntegratedGradients { attributions, delta, completeness_error }
}

/// SmoothGrad: the gradient of the explained scalar averaged over `samples` copies of `x` with
/// Gaussian noise of standard deviation `sigma` added (noise drawn from `key`). Multiply by `x`
/// for SmoothGrad × input.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::explain::{smoothgrad, Target};
/// use adjoint_tensor::random::Key;
/// // The gradient of a linear model is the same everywhere, noise or not.
/// let w = Tensor::from_vec(vec![1.0f64, -1.0], &[2]);
/// let g = smoothgrad(&|x: &Tensor| (x * &w).sum(), &Tensor::full_of(&[3, 2], 1.0, adjoint_core::DType::F64),
///                    Target::Scalar, 0.5, 8, &Key::new(0));
/// assert_eq!(g.to_vec::<f64>(), vec![1.0, -1.0, 1.0, -1.0, 1.0, -1.0]);
/// ```
#[track_caller]
pub fn smoothgrad<F: Fn(&Tensor) -> Tensor>(
    f: &F,
    x: &Tensor,
    target: Target,
    sigma: f64,
    samples: usize,
    key: &Key,
) -> Tensor {
    assert!(samples >= 1, "adjoint: smoothgrad: samples must be at least 1");
    let mut acc = x.zeros_like();
    for s in 0..samples {
        let noise = Tensor::from_array(random::normal(&key.fold_in(s as u64), x.shape(), x.dtype()));
        acc = acc + gradients(f, &(x + &(noise * sigma)), target);
    }
    acc / samples as f64
}
