//! One optimisation step with health checks: [`train_step`] and [`train_step_with_aux`].
//!
//! The step is `value_and_grad` → per-parameter gradient norms → non-finite policy → clipping
//! by global norm → `Optimizer::step` → (every k steps) weight norms and update-to-weight
//! ratios → vanishing/exploding warnings. Custom loops (online forecasting, training through a
//! simulator) call it directly; [`Trainer`](super::Trainer) calls it for every batch.
//!
//! Gradient norms are computed per leaf (accumulated in f64), so they cost about one extra
//! pass over the gradients; the global norm and clipping reuse them.
//! Weight norms and update ratios need another two passes over the parameters, hence the
//! [`StepConfig::param_stats_every`] knob.

use std::fmt;

use adjoint_core::{value_and_grad_with_aux, Params, Tensor};

use crate::error::{NnError, Result};
use crate::optim::Optimizer;

/// What to do when the loss or a gradient is NaN or infinite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NonFinitePolicy {
    /// Return [`NnError::NonFinite`] naming the step and the parameter with the largest gradient
    /// (the default: a NaN should never go unnoticed).
    #[default]
    Stop,
    /// Leave the parameters and optimizer untouched, record a warning, and go on.
    Skip,
}

/// Settings of [`train_step`].
#[derive(Clone, Debug)]
pub struct StepConfig {
    /// Rescale gradients so that their global L2 norm is at most this.
    pub clip_grad_norm: Option<f64>,
    /// Non-finite loss or gradient policy.
    pub non_finite: NonFinitePolicy,
    /// Warn when a parameter's gradient norm is below this (vanishing gradients).
    pub vanishing_threshold: Option<f64>,
    /// Warn when a parameter's gradient norm is above this (exploding gradients).
    pub exploding_threshold: Option<f64>,
    /// Compute weight norms and update-to-weight ratios every this many steps (0: never).
    pub param_stats_every: usize,
}

impl Default for StepConfig {
    fn default() -> Self {
        StepConfig {
            clip_grad_norm: None,
            non_finite: NonFinitePolicy::Stop,
            vanishing_threshold: None,
            exploding_threshold: None,
            param_stats_every: 0,
        }
    }
}

/// Gradient statistics of one parameter (leaf) in one step.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamStats {
    /// Dotted name from [`Params::named_leaves`] (`"layers.0.weight"`; `"<root>"` for a model
    /// that is a single tensor).
    pub name: String,
    /// L2 norm of the gradient (before clipping).
    pub grad_norm: f64,
    /// L2 norm of the parameter before the update (on steps with parameter statistics).
    pub weight_norm: Option<f64>,
    /// ‖update‖ / ‖weight‖ (on steps with parameter statistics, when the weight is non-zero).
    /// Around 1e-3 is healthy for most layers; far below means the layer is not learning, far
    /// above means it is being overwritten.
    pub update_ratio: Option<f64>,
}

/// A gradient-health warning.
#[derive(Clone, Debug, PartialEq)]
pub enum GradWarning {
    /// A parameter's gradient norm fell below [`StepConfig::vanishing_threshold`].
    Vanishing {
        /// Parameter name.
        param: String,
        /// Its gradient norm.
        norm: f64,
        /// The threshold.
        threshold: f64,
    },
    /// A parameter's gradient norm rose above [`StepConfig::exploding_threshold`].
    Exploding {
        /// Parameter name.
        param: String,
        /// Its gradient norm.
        norm: f64,
        /// The threshold.
        threshold: f64,
    },
    /// The step was skipped under [`NonFinitePolicy::Skip`].
    NonFiniteSkipped {
        /// The diagnostic (loss value, largest gradient).
        detail: String,
    },
}

impl GradWarning {
    /// A short key (`"vanishing:layers.0.weight"`) to report each kind of problem once.
    pub fn key(&self) -> String {
        match self {
            GradWarning::Vanishing { param, .. } => format!("vanishing:{param}"),
            GradWarning::Exploding { param, .. } => format!("exploding:{param}"),
            GradWarning::NonFiniteSkipped { .. } => "non-finite".into(),
        }
    }
}

impl fmt::Display for GradWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradWarning::Vanishing { param, norm, threshold } => {
                write!(f, "vanishing gradient: '{param}' has gradient norm {norm:.3e} < {threshold:.3e}")
            }
            GradWarning::Exploding { param, norm, threshold } => {
                write!(f, "exploding gradient: '{param}' has gradient norm {norm:.3e} > {threshold:.3e}")
            }
            GradWarning::NonFiniteSkipped { detail } => write!(f, "skipped a step: {detail}"),
        }
    }
}

/// What happened in one step.
#[derive(Clone, Debug)]
pub struct StepStats {
    /// The step number the caller passed.
    pub step: usize,
    /// The loss (before the update).
    pub loss: f64,
    /// Global L2 norm of the gradient, before clipping.
    pub grad_norm: f64,
    /// The gradient was rescaled by clipping.
    pub clipped: bool,
    /// The optimizer's learning rate at this step.
    pub lr: f64,
    /// The update was skipped (non-finite loss or gradient under [`NonFinitePolicy::Skip`]).
    pub skipped: bool,
    /// Per-parameter statistics, in leaf order (weight norms and update ratios only on steps
    /// selected by [`StepConfig::param_stats_every`]).
    pub params: Vec<ParamStats>,
    /// True when `params` carries weight norms and update ratios this step.
    pub has_param_stats: bool,
    /// Gradient-health warnings raised in this step.
    pub warnings: Vec<GradWarning>,
}

/// The result of a step: the updated model, the loss function's auxiliary output, statistics.
pub struct StepOutput<M, A = ()> {
    /// Parameters after the update (the input parameters when the step was skipped).
    pub model: M,
    /// Auxiliary output of the loss function (predictions, new state, metrics).
    pub aux: A,
    /// Statistics.
    pub stats: StepStats,
}

/// One step: gradient of `loss_fn` at `model`, health checks, clipping, `opt.step`.
///
/// `step` is the caller's step counter (used in messages and [`StepStats`]).
///
/// ```
/// use adjoint_core::{Params, Tensor};
/// use adjoint_nn::optim::Optimizer;
/// use adjoint_nn::train::{train_step, StepConfig};
///
/// #[derive(Clone, Params)]
/// #[params(crate = adjoint_core)]
/// struct Sgd { #[params(skip)] lr: f64 }
/// impl Optimizer for Sgd {
///     fn step<P: Params>(&mut self, p: &P, g: &P) -> P {
///         adjoint_core::params::zip_map(p, g, |p, g| p - &(g * self.lr))
///     }
///     fn lr(&self) -> f64 { self.lr }
///     fn set_lr(&mut self, lr: f64) { self.lr = lr }
/// }
///
/// let w = Tensor::scalar(3.0f64);
/// let mut opt = Sgd { lr: 0.25 };
/// let out = train_step(&w, &mut opt, 1, &StepConfig::default(), |w: &Tensor| (w * w).sum())?;
/// assert_eq!(out.model.item(), 1.5); // 3 - 0.25 · 6
/// assert_eq!(out.stats.grad_norm, 6.0);
/// # Ok::<(), adjoint_nn::NnError>(())
/// ```
pub fn train_step<M, O, F>(
    model: &M,
    opt: &mut O,
    step: usize,
    config: &StepConfig,
    loss_fn: F,
) -> Result<StepOutput<M>>
where
    M: Params,
    O: Optimizer,
    F: Fn(&M) -> Tensor,
{
    train_step_with_aux(model, opt, step, config, |m: &M| (loss_fn(m), ()))
}

/// Like [`train_step`] for a loss function that also returns auxiliary values (any
/// [`Params`], returned as plain values in [`StepOutput::aux`]).
pub fn train_step_with_aux<M, O, A, F>(
    model: &M,
    opt: &mut O,
    step: usize,
    config: &StepConfig,
    loss_fn: F,
) -> Result<StepOutput<M, A>>
where
    M: Params,
    O: Optimizer,
    A: Params,
    F: Fn(&M) -> (Tensor, A),
{
    let ((loss, aux), grads) = value_and_grad_with_aux(&loss_fn)(model);
    assert!(
        loss.numel() == 1,
        "adjoint-nn: train_step: the loss must be a single value, got shape {:?}",
        loss.shape()
    );
    let loss_v = loss.item();
    let names: Vec<String> = model.named_leaves().into_iter().map(|(n, _)| display_name(n)).collect();
    let g_leaves = grads.leaves();
    let grad_norms: Vec<f64> = g_leaves.iter().map(leaf_norm).collect();
    let grad_norm = grad_norms.iter().map(|n| n * n).sum::<f64>().sqrt();
    let mut params: Vec<ParamStats> = names
        .iter()
        .zip(&grad_norms)
        .map(|(n, &g)| ParamStats { name: n.clone(), grad_norm: g, weight_norm: None, update_ratio: None })
        .collect();
    let mut stats = StepStats {
        step,
        loss: loss_v,
        grad_norm,
        clipped: false,
        lr: opt.lr(),
        skipped: false,
        params: Vec::new(),
        has_param_stats: false,
        warnings: Vec::new(),
    };

    if !loss_v.is_finite() || !grad_norm.is_finite() {
        let what = if loss_v.is_finite() { "gradient" } else { "loss" };
        let detail = non_finite_detail(loss_v, &params);
        match config.non_finite {
            NonFinitePolicy::Stop => return Err(NnError::NonFinite { what: what.into(), step, detail }),
            NonFinitePolicy::Skip => {
                stats.skipped = true;
                stats
                    .warnings
                    .push(GradWarning::NonFiniteSkipped { detail: format!("non-finite {what}: {detail}") });
                stats.params = params;
                let same = model.map_tensors(&mut |t| t.clone());
                return Ok(StepOutput { model: same, aux, stats });
            }
        }
    }

    for p in &params {
        if let Some(t) = config.vanishing_threshold
            && p.grad_norm < t
        {
            stats.warnings.push(GradWarning::Vanishing {
                param: p.name.clone(),
                norm: p.grad_norm,
                threshold: t,
            });
        }
        if let Some(t) = config.exploding_threshold
            && p.grad_norm > t
        {
            stats.warnings.push(GradWarning::Exploding {
                param: p.name.clone(),
                norm: p.grad_norm,
                threshold: t,
            });
        }
    }

    let grads = match config.clip_grad_norm {
        Some(max) if grad_norm > max => {
            stats.clipped = true;
            let scale = max / (grad_norm + 1e-6);
            grads.map_tensors(&mut |g| g * scale)
        }
        _ => grads,
    };
    let new_model = opt.step(model, &grads);

    if config.param_stats_every > 0 && step.is_multiple_of(config.param_stats_every) {
        stats.has_param_stats = true;
        let old = model.leaves();
        let new = new_model.leaves();
        for ((p, w), w1) in params.iter_mut().zip(&old).zip(&new) {
            let wn = leaf_norm(w);
            let un = leaf_norm(&(w1 - w));
            p.weight_norm = Some(wn);
            p.update_ratio = (wn > 0.0).then(|| un / wn);
        }
    }
    stats.params = params;
    Ok(StepOutput { model: new_model, aux, stats })
}

fn display_name(n: String) -> String {
    if n.is_empty() {
        "<root>".into()
    } else {
        n
    }
}

/// L2 norm of a leaf, as f64 (NaN or inf when the leaf holds such values).
/// Accumulated in f64 (as [`crate::optim::global_norm`], which clipping uses too).
pub(crate) fn leaf_norm(t: &Tensor) -> f64 {
    crate::optim::global_norm(t)
}

/// "loss = NaN; largest gradient: 'layers.1.weight' (norm inf)". Non-finite norms rank above all
/// finite ones; among equals the first leaf wins.
fn non_finite_detail(loss: f64, params: &[ParamStats]) -> String {
    let rank = |x: f64| if x.is_nan() { f64::INFINITY } else { x };
    let mut best: Option<&ParamStats> = None;
    for p in params {
        if best.is_none_or(|b| rank(p.grad_norm) > rank(b.grad_norm)) {
            best = Some(p);
        }
    }
    let nonfinite: Vec<&str> =
        params.iter().filter(|p| !p.grad_norm.is_finite()).map(|p| p.name.as_str()).collect();
    let mut s = format!("loss = {loss}");
    match best {
        Some(b) => s.push_str(&format!("; largest gradient: '{}' (norm {})", b.name, b.grad_norm)),
        None => s.push_str("; the model has no parameters"),
    }
    if !nonfinite.is_empty() {
        s.push_str(&format!("; non-finite gradients in: {}", nonfinite.join(", ")));
    }
    s
}
