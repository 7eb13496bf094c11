//! RMSprop with optional momentum and centring, as `torch.optim.RMSprop`.

use adjoint_core::{Params, Tensor};

use super::kernel::{lerp, update_leaf};
use super::{check_state, count_tensor, read_count, step_leaves, zeros_per_leaf, Optimizer, ParamGroups};

/// Hyperparameters of [`RmsProp`] (PyTorch's names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average (default 0.99).
    pub alpha: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Momentum factor (default 0: no momentum buffers are kept).
    pub momentum: f64,
    /// Normalise by an estimate of the gradient's variance instead of its second moment.
    pub centered: bool,
    /// Maximise the objective instead of minimising it.
    pub maximize: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

/// RMSprop: `v ← αv + (1-α)g²; ḡ ← αḡ + (1-α)g (centred); a = √(v - ḡ²) + ε;
/// b ← μb + g/a, θ ← θ - ηb` (or `θ ← θ - η g/a` without momentum).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::optim::{Optimizer, RmsProp, RmsPropConfig};
/// let w = Tensor::from_vec(vec![1.0f64], &[1]);
/// let mut opt = RmsProp::new(&w, RmsPropConfig { lr: 0.01, ..Default::default() });
/// let w = opt.step(&w, &Tensor::from_vec(vec![2.0f64], &[1]));
/// // v = 0.01·4, so the step is 0.01 · 2 / 0.2 = 0.1.
/// assert!((w.item() - 0.9).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct RmsProp {
    /// Running averages of the squared gradient, one per leaf.
    pub square_avg: Vec<Tensor>,
    /// Running averages of the gradient (centred only; empty otherwise).
    pub grad_avg: Vec<Tensor>,
    /// Momentum buffers (`momentum > 0` only; empty otherwise).
    pub momentum_buffer: Vec<Tensor>,
    /// Updates applied so far (`i64` scalar).
    pub step: Tensor,
    /// Hyperparameters.
    #[params(skip)]
    pub config: RmsPropConfig,
    #[params(skip)]
    groups: ParamGroups,
    #[params(skip)]
    n_leaves: usize,
}

impl RmsProp {
    /// An optimizer for `params` (its state is allocated here).
    #[track_caller]
    pub fn new<P: Params>(params: &P, config: RmsPropConfig) -> RmsProp {
        assert!(config.lr >= 0.0, "adjoint-nn: RmsProp: invalid learning rate {}", config.lr);
        assert!(config.alpha >= 0.0, "adjoint-nn: RmsProp: invalid alpha {}", config.alpha);
        assert!(config.eps >= 0.0, "adjoint-nn: RmsProp: invalid eps {}", config.eps);
        assert!(config.momentum >= 0.0, "adjoint-nn: RmsProp: invalid momentum {}", config.momentum);
        RmsProp {
            square_avg: zeros_per_leaf(params),
            grad_avg: if config.centered { zeros_per_leaf(params) } else { Vec::new() },
            momentum_buffer: if config.momentum > 0.0 { zeros_per_leaf(params) } else { Vec::new() },
            step: count_tensor(0),
            config,
            groups: ParamGroups::default(),
            n_leaves: params.num_leaves(),
        }
    }

    /// Use per-leaf options (see [`ParamGroups`]).
    #[track_caller]
    pub fn with_groups(mut self, groups: ParamGroups) -> RmsProp {
        groups.check("RmsProp", self.n_leaves);
        self.groups = groups;
        self
    }

    /// Updates applied so far.
    pub fn steps_taken(&self) -> u64 {
        read_count(&self.step)
    }
}

impl Optimizer for RmsProp {
    #[track_caller]
    fn step<P: Params>(&mut self, params: &P, grads: &P) -> P {
        let (ps, gs) = step_leaves("RmsProp", params, grads, self.n_leaves);
        let c = self.config;
        check_state("RmsProp", "square_avg", &self.square_avg, &ps);
        let (centered, with_momentum) = (c.centered, c.momentum > 0.0);
        if centered {
            check_state("RmsProp", "grad_avg", &self.grad_avg, &ps);
        }
        if with_momentum {
            check_state("RmsProp", "momentum_buffer", &self.momentum_buffer, &ps);
        }
        let sign = if c.maximize { -1.0 } else { 1.0 };
        let (alpha, eps, mu) = (c.alpha, c.eps, c.momentum);
        let mut out = Vec::with_capacity(ps.len());
        for (i, (p, g)) in ps.iter().zip(&gs).enumerate() {
            let o = self.groups.get(i);
            if o.frozen {
                out.push(p.clone());
                continue;
            }
            let lr = c.lr * o.lr_scale;
            let wd = o.weight_decay.unwrap_or(c.weight_decay);
            // State slots: 0 square average, 1 gradient average (centred), then momentum.
            let mb = if centered { 2 } else { 1 };
            let f = move |x: f64, g: f64, s: &mut [f64; 4]| {
                let g = sign * g + wd * x;
                s[0] = s[0] * alpha + (1.0 - alpha) * g * g;
                let avg = if centered {
                    s[1] = lerp(s[1], g, 1.0 - alpha);
                    (s[0] + -s[1] * s[1]).sqrt()
                } else {
                    s[0].sqrt()
                } + eps;
                if with_momentum {
                    s[mb] = s[mb] * mu + g / avg;
                    x + s[mb] * -lr
                } else {
                    x + -lr * (g / avg)
                }
            };
            let mut states: Vec<&mut Tensor> = vec![&mut self.square_avg[i]];
            if centered {
                states.push(&mut self.grad_avg[i]);
            }
            if with_momentum {
                states.push(&mut self.momentum_buffer[i]);
            }
            out.push(update_leaf(p, g, &mut states, f));
        }
        self.step = count_tensor(read_count(&self.step) + 1);
        params.with_leaves(&out)
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn momentum(&self) -> Option<f64> {
        Some(self.config.momentum)
    }

    fn set_momentum(&mut self, momentum: f64) {
        if self.config.momentum > 0.0 {
            self.config.momentum = momentum;
        }
    }
}
