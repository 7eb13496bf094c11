//! Learning-rate schedules: step, multi-step, exponential, cosine with linear warm-up,
//! one-cycle and reduce-on-plateau.
//!
//! A [`Schedule`] is a function from the step (or epoch) count to a learning rate, written in
//! closed form, so resuming at step `t` needs no replay: `lr_at(t)` equals the learning rate
//! PyTorch's scheduler has after `t` calls to `scheduler.step()` (the tests compare with
//! `torch.optim.lr_scheduler` values). The one schedule driven by data, [`ReduceOnPlateau`],
//! is fed metrics through [`Schedule::observe`] and keeps its state in a `Params` leaf, so it
//! checkpoints with the model.
//!
//! ```
//! use adjoint_core::Tensor;
//! use adjoint_nn::optim::{Optimizer, Sgd, SgdConfig};
//! use adjoint_nn::schedule::{Schedule, WarmupCosine};
//! let w = Tensor::zeros(&[3]);
//! let mut opt = Sgd::new(&w, SgdConfig { lr: 0.1, ..Default::default() });
//! let sched = WarmupCosine { base_lr: 0.1, warmup_steps: 10, total_steps: 100, ..Default::default() };
//! for t in 0..100 {
//!     sched.apply(&mut opt, t);
//!     // … compute grads and call opt.step …
//! }
//! assert!(sched.lr_at(10) == 0.1 && sched.lr_at(99) < 1e-3);
//! ```

use adjoint_core::{Params, Tensor};

use crate::optim::Optimizer;

/// A learning rate as a function of the step (or epoch) count.
pub trait Schedule {
    /// The learning rate for step `t` (0-based: the rate used by the `t`-th update).
    fn lr_at(&self, t: usize) -> f64;

    /// The momentum (or Adam's β₁) for step `t`, for schedules that cycle it.
    fn momentum_at(&self, t: usize) -> Option<f64> {
        let _ = t;
        None
    }

    /// Feed a monitored metric (e.g. the validation loss after an epoch). Only metric-driven
    /// schedules use it.
    fn observe(&mut self, metric: f64) {
        let _ = metric;
    }

    /// Set `opt`'s learning rate (and momentum, where the schedule cycles it) for step `t`.
    fn apply<O: Optimizer>(&self, opt: &mut O, t: usize)
    where
        Self: Sized,
    {
        opt.set_lr(self.lr_at(t));
        if let Some(m) = self.momentum_at(t) {
            opt.set_momentum(m);
        }
    }
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr_at(&self, t: usize) -> f64 {
        (**self).lr_at(t)
    }
    fn momentum_at(&self, t: usize) -> Option<f64> {
        (**self).momentum_at(t)
    }
    fn observe(&mut self, metric: f64) {
        (**self).observe(metric)
    }
}

/// A fixed learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant(pub f64);

impl Schedule for Constant {
    fn lr_at(&self, _t: usize) -> f64 {
        self.0
    }
}

/// `base_lr · γ^⌊t / step_size⌋` (PyTorch's `StepLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    /// Learning rate at step 0.
    pub base_lr: f64,
    /// Steps between decays (at least 1).
    pub step_size: usize,
    /// Decay factor.
    pub gamma: f64,
}

impl Schedule for StepLr {
    fn lr_at(&self, t: usize) -> f64 {
        self.base_lr * self.gamma.powi((t / self.step_size.max(1)) as i32)
    }
}

/// `base_lr · γ^(number of milestones ≤ t)` (PyTorch's `MultiStepLR`).
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStepLr {
    /// Learning rate at step 0.
    pub base_lr: f64,
    /// Steps at which the rate is multiplied by `gamma`.
    pub milestones: Vec<usize>,
    /// Decay factor.
    pub gamma: f64,
}

impl Schedule for MultiStepLr {
    fn lr_at(&self, t: usize) -> f64 {
        self.base_lr * self.gamma.powi(self.milestones.iter().filter(|&&m| m <= t).count() as i32)
    }
}

/// `base_lr · γ^t` (PyTorch's `ExponentialLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialLr {
    /// Learning rate at step 0.
    pub base_lr: f64,
    /// Decay factor per step.
    pub gamma: f64,
}

impl Schedule for ExponentialLr {
    fn lr_at(&self, t: usize) -> f64 {
        self.base_lr * self.gamma.powi(t as i32)
    }
}

/// Linear warm-up from `base_lr · warmup_start_factor` to `base_lr` over `warmup_steps`, then
/// cosine decay to `min_lr` at `total_steps` (held after). PyTorch's
/// `SequentialLR([LinearLR(start_factor, total_iters=warmup), CosineAnnealingLR(T_max=total -
/// warmup, eta_min=min_lr)], milestones=[warmup])`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmupCosine {
    /// Peak learning rate (reached at the end of the warm-up).
    pub base_lr: f64,
    /// Warm-up steps (0: start the cosine immediately).
    pub warmup_steps: usize,
    /// Step at which the cosine reaches `min_lr`.
    pub total_steps: usize,
    /// Fraction of `base_lr` at step 0 (default 0).
    pub warmup_start_factor: f64,
    /// Final learning rate (default 0).
    pub min_lr: f64,
}

impl Default for WarmupCosine {
    fn default() -> Self {
        WarmupCosine { base_lr: 1e-3, warmup_steps: 0, total_steps: 1, warmup_start_factor: 0.0, min_lr: 0.0 }
    }
}

impl Schedule for WarmupCosine {
    fn lr_at(&self, t: usize) -> f64 {
        let w = self.warmup_steps;
        if t < w {
            let s = self.warmup_start_factor;
            return self.base_lr * (s + (1.0 - s) * t as f64 / w as f64);
        }
        let span = self.total_steps.saturating_sub(w);
        if span == 0 || t >= self.total_steps {
            return if span == 0 { self.base_lr } else { self.min_lr };
        }
        let frac = (t - w) as f64 / span as f64;
        self.min_lr + (self.base_lr - self.min_lr) * (1.0 + (std::f64::consts::PI * frac).cos()) / 2.0
    }
}

/// How [`OneCycle`] interpolates between its rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anneal {
    /// Half a cosine period (the default).
    Cos,
    /// A straight line.
    Linear,
}

/// The one-cycle policy (PyTorch's `OneCycleLR`): up from `max_lr / div_factor` to `max_lr`
/// over `pct_start` of the run, then down to `max_lr / div_factor / final_div_factor`; with
/// `three_phase`, back down symmetrically before the final annihilation. Momentum cycles
/// inversely between `max_momentum` and `base_momentum` when `cycle_momentum` is set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycle {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Length of the cycle in steps.
    pub total_steps: usize,
    /// Fraction of the cycle spent increasing the rate (default 0.3).
    pub pct_start: f64,
    /// Interpolation (default cosine).
    pub anneal: Anneal,
    /// Initial rate is `max_lr / div_factor` (default 25).
    pub div_factor: f64,
    /// Final rate is the initial rate divided by this (default 1e4).
    pub final_div_factor: f64,
    /// Use PyTorch's three-phase variant (default false).
    pub three_phase: bool,
    /// Cycle momentum / β₁ inversely to the rate (default true).
    pub cycle_momentum: bool,
    /// Momentum at the peak rate (default 0.85).
    pub base_momentum: f64,
    /// Momentum at the lowest rates (default 0.95).
    pub max_momentum: f64,
}

impl Default for OneCycle {
    fn default() -> Self {
        OneCycle {
            max_lr: 1e-3,
            total_steps: 1,
            pct_start: 0.3,
            anneal: Anneal::Cos,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }
}

impl OneCycle {
    /// `(lr, momentum)` at step `t` (held at the last step after the cycle).
    fn at(&self, t: usize) -> (f64, f64) {
        let total = self.total_steps as f64;
        let initial = self.max_lr / self.div_factor;
        let min_lr = initial / self.final_div_factor;
        let (bm, mm) = (self.base_momentum, self.max_momentum);
        // (end_step, start_lr, end_lr, start_momentum, end_momentum), as PyTorch's phases.
        let phases: Vec<(f64, f64, f64, f64, f64)> = if self.three_phase {
            vec![
                (self.pct_start * total - 1.0, initial, self.max_lr, mm, bm),
                (2.0 * self.pct_start * total - 2.0, self.max_lr, initial, bm, mm),
                (total - 1.0, initial, min_lr, mm, mm),
            ]
        } else {
            vec![
                (self.pct_start * total - 1.0, initial, self.max_lr, mm, bm),
                (total - 1.0, self.max_lr, min_lr, bm, mm),
            ]
        };
        let step = t.min(self.total_steps.saturating_sub(1)) as f64;
        let anneal = |a: f64, b: f64, pct: f64| match self.anneal {
            Anneal::Cos => b + (a - b) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0),
            Anneal::Linear => (b - a) * pct + a,
        };
        let mut start = 0.0;
        for (i, &(end, lr0, lr1, m0, m1)) in phases.iter().enumerate() {
            if step <= end || i == phases.len() - 1 {
                let pct = (step - start) / (end - start);
                return (anneal(lr0, lr1, pct), anneal(m0, m1, pct));
            }
            start = end;
        }
        unreachable!("the last phase always matches")
    }
}

impl Schedule for OneCycle {
    fn lr_at(&self, t: usize) -> f64 {
        self.at(t).0
    }
    fn momentum_at(&self, t: usize) -> Option<f64> {
        self.cycle_momentum.then(|| self.at(t).1)
    }
}

/// Whether [`ReduceOnPlateau`]'s metric should go down or up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// Configuration of [`ReduceOnPlateau`] (PyTorch's `ReduceLROnPlateau` names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauConfig {
    /// Direction of improvement (default `Min`).
    pub mode: PlateauMode,
    /// Multiplies the rate on a plateau (default 0.1).
    pub factor: f64,
    /// Observations without improvement tolerated before reducing (default 10).
    pub patience: usize,
    /// Least improvement that counts (default 1e-4).
    pub threshold: f64,
    /// `threshold` is relative to the best value (default true) or absolute.
    pub relative_threshold: bool,
    /// Observations to wait after a reduction before counting again (default 0).
    pub cooldown: usize,
    /// Lower bound on the rate (default 0).
    pub min_lr: f64,
    /// Reductions smaller than this are skipped (default 1e-8).
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        PlateauConfig {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            relative_threshold: true,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// Divide the rate by `1/factor` when the observed metric stops improving.
///
/// ```
/// use adjoint_nn::schedule::{PlateauConfig, ReduceOnPlateau, Schedule};
/// let mut s = ReduceOnPlateau::new(0.1, PlateauConfig { patience: 1, ..Default::default() });
/// for loss in [1.0, 0.9, 0.9, 0.9] {
///     s.observe(loss);
/// }
/// assert!((s.lr_at(0) - 0.01).abs() < 1e-15);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct ReduceOnPlateau {
    /// `[lr, best, bad observations, cooldown left]` as an `f64` tensor (a leaf, so the state
    /// checkpoints).
    pub state: Tensor,
    /// Configuration.
    #[params(skip)]
    pub config: PlateauConfig,
}

impl ReduceOnPlateau {
    /// A schedule starting at `lr`.
    #[track_caller]
    pub fn new(lr: f64, config: PlateauConfig) -> ReduceOnPlateau {
        assert!(
            config.factor < 1.0,
            "adjoint-nn: ReduceOnPlateau: factor must be < 1, got {}",
            config.factor
        );
        let worst = match config.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        ReduceOnPlateau { state: Tensor::from_vec(vec![lr, worst, 0.0, 0.0], &[4]), config }
    }

    /// The best metric seen so far.
    pub fn best(&self) -> f64 {
        self.state.to_vec::<f64>()[1]
    }

    fn is_better(&self, a: f64, best: f64) -> bool {
        let c = &self.config;
        match (c.mode, c.relative_threshold) {
            (PlateauMode::Min, true) => a < best * (1.0 - c.threshold),
            (PlateauMode::Min, false) => a < best - c.threshold,
            (PlateauMode::Max, true) => a > best * (c.threshold + 1.0),
            (PlateauMode::Max, false) => a > best + c.threshold,
        }
    }
}

impl Schedule for ReduceOnPlateau {
    /// The current rate (independent of `t`).
    fn lr_at(&self, _t: usize) -> f64 {
        self.state.to_vec::<f64>()[0]
    }

    fn observe(&mut self, metric: f64) {
        let s = self.state.to_vec::<f64>();
        let (mut lr, mut best, mut bad, mut cooldown) = (s[0], s[1], s[2] as usize, s[3] as usize);
        if self.is_better(metric, best) {
            best = metric;
            bad = 0;
        } else {
            bad += 1;
        }
        if cooldown > 0 {
            cooldown -= 1;
            bad = 0;
        }
        if bad > self.config.patience {
            let new_lr = (lr * self.config.factor).max(self.config.min_lr);
            if lr - new_lr > self.config.eps {
                lr = new_lr;
            }
            cooldown = self.config.cooldown;
            bad = 0;
        }
        self.state = Tensor::from_vec(vec![lr, best, bad as f64, cooldown as f64], &[4]);
    }
}
