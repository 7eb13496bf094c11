//! Adagrad, as `torch.optim.Adagrad`.

use adjoint_core::{Params, Tensor};

use super::kernel::update_leaf;
use super::{check_state, count_tensor, read_count, step_leaves, Optimizer, ParamGroups};

/// Hyperparameters of [`Adagrad`] (PyTorch's names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Learning-rate decay: the step uses `lr / (1 + (t-1)·lr_decay)` (default 0).
    pub lr_decay: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sums (default 0).
    pub initial_accumulator_value: f64,
    /// Added to the denominator (default 1e-10).
    pub eps: f64,
    /// Maximise the objective instead of minimising it.
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// Adagrad: `s ← s + g²; θ ← θ - η_t g / (√s + ε)` with `η_t = η / (1 + (t-1)·decay)`.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::optim::{Adagrad, AdagradConfig, Optimizer};
/// let w = Tensor::from_vec(vec![1.0f64], &[1]);
/// let mut opt = Adagrad::new(&w, AdagradConfig { lr: 0.1, ..Default::default() });
/// let w = opt.step(&w, &Tensor::from_vec(vec![4.0f64], &[1]));
/// assert!((w.item() - 0.9).abs() < 1e-9);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Adagrad {
    /// Sums of squared gradients, one per leaf.
    pub sum: Vec<Tensor>,
    /// Updates applied so far (`i64` scalar).
    pub step: Tensor,
    /// Hyperparameters.
    #[params(skip)]
    pub config: AdagradConfig,
    #[params(skip)]
    groups: ParamGroups,
    #[params(skip)]
    n_leaves: usize,
}

impl Adagrad {
    /// An optimizer for `params` (its state is allocated here).
    #[track_caller]
    pub fn new<P: Params>(params: &P, config: AdagradConfig) -> Adagrad {
        assert!(config.lr >= 0.0, "adjoint-nn: Adagrad: invalid learning rate {}", config.lr);
        assert!(config.lr_decay >= 0.0, "adjoint-nn: Adagrad: invalid lr_decay {}", config.lr_decay);
        assert!(
            config.initial_accumulator_value >= 0.0,
            "adjoint-nn: Adagrad: invalid initial_accumulator_value {}",
            config.initial_accumulator_value
        );
        let sum = params
            .leaves()
            .iter()
            .map(|t| Tensor::full_of(t.shape(), config.initial_accumulator_value, t.dtype()))
            .collect();
        Adagrad {
            sum,
            step: count_tensor(0),
            config,
            groups: ParamGroups::default(),
            n_leaves: params.num_leaves(),
        }
    }

    /// Use per-leaf options (see [`ParamGroups`]).
    #[track_caller]
    pub fn with_groups(mut self, groups: ParamGroups) -> Adagrad {
        groups.check("Adagrad", self.n_leaves);
        self.groups = groups;
        self
    }

    /// Updates applied so far.
    pub fn steps_taken(&self) -> u64 {
        read_count(&self.step)
    }
}

impl Optimizer for Adagrad {
    #[track_caller]
    fn step<P: Params>(&mut self, params: &P, grads: &P) -> P {
        let (ps, gs) = step_leaves("Adagrad", params, grads, self.n_leaves);
        check_state("Adagrad", "sum", &self.sum, &ps);
        let c = self.config;
        let t = read_count(&self.step) + 1;
        let sign = if c.maximize { -1.0 } else { 1.0 };
        let eps = c.eps;
        let mut out = Vec::with_capacity(ps.len());
        for (i, (p, g)) in ps.iter().zip(&gs).enumerate() {
            let o = self.groups.get(i);
            if o.frozen {
                out.push(p.clone());
                continue;
            }
            let wd = o.weight_decay.unwrap_or(c.weight_decay);
            let clr = c.lr * o.lr_scale / (1.0 + (t - 1) as f64 * c.lr_decay);
            out.push(update_leaf(p, g, &mut [&mut self.sum[i]], |x, g, s| {
                let g = sign * g + wd * x;
                s[0] += g * g;
                x + -clr * (g / (s[0].sqrt() + eps))
            }));
        }
        self.step = count_tensor(t);
        params.with_leaves(&out)
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}
