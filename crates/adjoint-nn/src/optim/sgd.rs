//! Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight
//! decay, as `torch.optim.SGD`.

use adjoint_core::{Params, Tensor};

use super::kernel::{check_flat, check_flat_state, FlatLeaves, InF64, StepLeaves, TensorLeaves, MAX_STATE};
use super::{
    check_state, count_tensor, read_count, step_leaves, zeros_per_leaf, Flat, Optimizer, ParamGroups,
};

/// Hyperparameters of [`Sgd`] (PyTorch's names and defaults; `lr` defaults to 1e-3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0: plain SGD, no momentum buffers are kept).
    pub momentum: f64,
    /// Dampening of the gradient added to the momentum buffer.
    pub dampening: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Maximise the objective instead of minimising it.
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

/// SGD: `d = g + λθ; b = μb + (1-τ)d (b = d on the first step); d = d + μb (Nesterov) or b;
/// θ ← θ - η d`.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::optim::{Optimizer, Sgd, SgdConfig};
/// let w = Tensor::from_vec(vec![1.0f64, -2.0], &[2]);
/// let mut opt = Sgd::new(&w, SgdConfig { lr: 0.5, momentum: 0.9, ..Default::default() });
/// let w = opt.step(&w, &Tensor::from_vec(vec![1.0f64, 1.0], &[2]));
/// assert_eq!(w.to_vec::<f64>(), vec![0.5, -2.5]);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Sgd {
    /// Momentum buffers, one per leaf (none when `momentum == 0`).
    pub momentum_buffer: Vec<Tensor>,
    /// Updates applied so far (`i64` scalar).
    pub step: Tensor,
    /// Hyperparameters.
    #[params(skip)]
    pub config: SgdConfig,
    #[params(skip)]
    groups: ParamGroups,
    #[params(skip)]
    n_leaves: usize,
}

impl Sgd {
    /// An optimizer for `params` (its state is allocated here).
    #[track_caller]
    pub fn new<P: Params>(params: &P, config: SgdConfig) -> Sgd {
        assert!(config.lr >= 0.0, "adjoint-nn: Sgd: invalid learning rate {}", config.lr);
        assert!(config.momentum >= 0.0, "adjoint-nn: Sgd: invalid momentum {}", config.momentum);
        assert!(config.weight_decay >= 0.0, "adjoint-nn: Sgd: invalid weight decay {}", config.weight_decay);
        assert!(
            !config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
            "adjoint-nn: Sgd: Nesterov momentum requires a momentum and zero dampening"
        );
        let momentum_buffer = if config.momentum != 0.0 { zeros_per_leaf(params) } else { Vec::new() };
        Sgd {
            momentum_buffer,
            step: count_tensor(0),
            config,
            groups: ParamGroups::default(),
            n_leaves: params.num_leaves(),
        }
    }

    /// Use per-leaf options (see [`ParamGroups`]).
    #[track_caller]
    pub fn with_groups(mut self, groups: ParamGroups) -> Sgd {
        groups.check("Sgd", self.n_leaves);
        self.groups = groups;
        self
    }

    /// Updates applied so far.
    pub fn steps_taken(&self) -> u64 {
        read_count(&self.step)
    }
}

impl Sgd {
    /// One update of every leaf of `leaves` (PyTorch's order of operations, in `f64`), and the
    /// step counter.
    fn update(&mut self, leaves: &mut impl StepLeaves) {
        let c = self.config;
        let first = read_count(&self.step) == 0;
        let sign = if c.maximize { -1.0 } else { 1.0 };
        for i in 0..leaves.len() {
            let o = self.groups.get(i);
            if o.frozen {
                leaves.keep(i);
                continue;
            }
            let lr = c.lr * o.lr_scale;
            let wd = o.weight_decay.unwrap_or(c.weight_decay);
            let (mu, damp, nesterov) = (c.momentum, c.dampening, c.nesterov);
            if mu != 0.0 {
                let rule = InF64(|x: f64, g: f64, s: &mut [f64; MAX_STATE]| {
                    let d = sign * g + wd * x;
                    s[0] = if first { d } else { s[0] * mu + d * (1.0 - damp) };
                    let d = if nesterov { d + s[0] * mu } else { s[0] };
                    x + d * -lr
                });
                leaves.update(i, &mut [&mut self.momentum_buffer[i]], &rule);
            } else {
                let rule = InF64(|x: f64, g: f64, _: &mut [f64; MAX_STATE]| x + (sign * g + wd * x) * -lr);
                leaves.update(i, &mut [], &rule);
            }
        }
        self.step = count_tensor(read_count(&self.step) + 1);
    }
}

impl Optimizer for Sgd {
    #[track_caller]
    fn step<P: Params>(&mut self, params: &P, grads: &P) -> P {
        let (ps, gs) = step_leaves("Sgd", params, grads, self.n_leaves);
        if self.config.momentum != 0.0 {
            check_state("Sgd", "momentum_buffer", &self.momentum_buffer, &ps);
        }
        let mut leaves = TensorLeaves { ps: &ps, gs: &gs, out: Vec::with_capacity(ps.len()) };
        self.update(&mut leaves);
        params.with_leaves(&leaves.out)
    }

    #[track_caller]
    fn step_flat(&mut self, leaves: &mut [Flat<'_>]) -> bool {
        check_flat("Sgd", self.n_leaves, leaves);
        if self.config.momentum != 0.0 {
            check_flat_state("Sgd", "momentum_buffer", &self.momentum_buffer, leaves);
        }
        self.update(&mut FlatLeaves(leaves));
        true
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
        if self.config.momentum != 0.0 {
            self.config.momentum = momentum;
        }
    }
}
