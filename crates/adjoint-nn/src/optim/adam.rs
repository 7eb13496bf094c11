//! Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay), with
//! optional AMSGrad, as `torch.optim.Adam` / `torch.optim.AdamW`. One update function serves
//! both; the two types differ only in how weight decay enters and in its default.

use adjoint_core::{Params, Tensor};

use adjoint_tensor::FloatElement;

use super::kernel::{
    check_flat, check_flat_state, lerp, ElementRule, FlatLeaves, StepLeaves, TensorLeaves, MAX_STATE,
};
use super::{
    check_state, count_tensor, read_count, step_leaves, zeros_per_leaf, Flat, Optimizer, ParamGroups,
};

/// Hyperparameters of [`Adam`] (PyTorch's names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay rates of the first and second moment estimates (default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Use the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
    /// Maximise the objective instead of minimising it.
    pub maximize: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
        }
    }
}

/// Hyperparameters of [`AdamW`]: as [`AdamConfig`], but weight decay is decoupled
/// (`θ ← θ(1 - ηλ)` before the Adam update) and defaults to 0.01.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay rates of the moment estimates (default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// Decoupled weight decay (default 0.01).
    pub weight_decay: f64,
    /// Use the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
    /// Maximise the objective instead of minimising it.
    pub maximize: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
            maximize: false,
        }
    }
}

impl From<AdamWConfig> for AdamConfig {
    fn from(c: AdamWConfig) -> AdamConfig {
        AdamConfig {
            lr: c.lr,
            betas: c.betas,
            eps: c.eps,
            weight_decay: c.weight_decay,
            amsgrad: c.amsgrad,
            maximize: c.maximize,
        }
    }
}

struct AdamState<'a> {
    exp_avg: &'a mut [Tensor],
    exp_avg_sq: &'a mut [Tensor],
    max_exp_avg_sq: &'a mut [Tensor],
    step: &'a mut Tensor,
}

/// Adam's update of one element (PyTorch's order of operations), evaluated in the leaf's own
/// precision: `state[0]` is the first moment, `state[1]` the second.
#[derive(Clone, Copy)]
struct AdamRule {
    sign: f64,
    lr: f64,
    wd: f64,
    decoupled: bool,
    b1: f64,
    b2: f64,
    step_size: f64,
    bias_correction2_sqrt: f64,
    eps: f64,
}

impl AdamRule {
    /// The decayed parameter and gradient, and the updated moments.
    #[inline(always)]
    fn moments<S: FloatElement>(&self, x: S, g: S, s: &mut [S; MAX_STATE]) -> S {
        let c = S::from_f64;
        let mut g = c(self.sign) * g;
        let mut x = x;
        if self.wd != 0.0 {
            if self.decoupled {
                x = x * c(1.0 - self.lr * self.wd);
            } else {
                g = g + c(self.wd) * x;
            }
        }
        s[0] = lerp(s[0], g, c(1.0 - self.b1));
        s[1] = s[1] * c(self.b2) + c(1.0 - self.b2) * g * g;
        x
    }

    /// The step from the decayed parameter `x` with second moment `second`.
    #[inline(always)]
    fn update<S: FloatElement>(&self, x: S, first: S, second: S) -> S {
        let c = S::from_f64;
        let denom = second.sqrt() / c(self.bias_correction2_sqrt) + c(self.eps);
        x + c(-self.step_size) * (first / denom)
    }
}

impl ElementRule for AdamRule {
    #[inline(always)]
    fn apply<S: FloatElement>(&self, x: S, g: S, s: &mut [S; MAX_STATE]) -> S {
        let x = self.moments(x, g, s);
        self.update(x, s[0], s[1])
    }
}

/// Adam with AMSGrad: `state[2]` is the running maximum of the second moment.
struct AmsGrad(AdamRule);

impl ElementRule for AmsGrad {
    #[inline(always)]
    fn apply<S: FloatElement>(&self, x: S, g: S, s: &mut [S; MAX_STATE]) -> S {
        let x = self.0.moments(x, g, s);
        s[2] = s[2].max(s[1]);
        self.0.update(x, s[0], s[2])
    }
}

/// One Adam/AdamW step over all leaves.
#[track_caller]
#[allow(clippy::too_many_arguments)]
fn adam_step<P: Params>(
    name: &str,
    st: AdamState<'_>,
    c: &AdamConfig,
    decoupled: bool,
    groups: &ParamGroups,
    n_leaves: usize,
    params: &P,
    grads: &P,
) -> P {
    let (ps, gs) = step_leaves(name, params, grads, n_leaves);
    check_state(name, "exp_avg", st.exp_avg, &ps);
    check_state(name, "exp_avg_sq", st.exp_avg_sq, &ps);
    if c.amsgrad {
        check_state(name, "max_exp_avg_sq", st.max_exp_avg_sq, &ps);
    }
    let mut leaves = TensorLeaves { ps: &ps, gs: &gs, out: Vec::with_capacity(ps.len()) };
    adam_update(st, c, decoupled, groups, &mut leaves);
    params.with_leaves(&leaves.out)
}

/// [`Optimizer::step_flat`] for Adam/AdamW.
#[track_caller]
fn adam_step_flat(
    name: &str,
    st: AdamState<'_>,
    c: &AdamConfig,
    decoupled: bool,
    groups: &ParamGroups,
    leaves: &mut [Flat<'_>],
) {
    check_flat(name, st.exp_avg.len(), leaves);
    check_flat_state(name, "exp_avg", st.exp_avg, leaves);
    check_flat_state(name, "exp_avg_sq", st.exp_avg_sq, leaves);
    if c.amsgrad {
        check_flat_state(name, "max_exp_avg_sq", st.max_exp_avg_sq, leaves);
    }
    adam_update(st, c, decoupled, groups, &mut FlatLeaves(leaves));
}

/// Adam's update of every leaf of `leaves`, and the step counter.
fn adam_update(
    st: AdamState<'_>,
    c: &AdamConfig,
    decoupled: bool,
    groups: &ParamGroups,
    leaves: &mut impl StepLeaves,
) {
    let t = read_count(st.step) + 1;
    let (b1, b2) = c.betas;
    let bias_correction1 = 1.0 - b1.powf(t as f64);
    let bias_correction2_sqrt = (1.0 - b2.powf(t as f64)).sqrt();
    let sign = if c.maximize { -1.0 } else { 1.0 };
    let (eps, amsgrad) = (c.eps, c.amsgrad);
    for i in 0..leaves.len() {
        let o = groups.get(i);
        if o.frozen {
            leaves.keep(i);
            continue;
        }
        let lr = c.lr * o.lr_scale;
        let wd = o.weight_decay.unwrap_or(c.weight_decay);
        let rule = AdamRule {
            sign,
            lr,
            wd,
            decoupled,
            b1,
            b2,
            step_size: lr / bias_correction1,
            bias_correction2_sqrt,
            eps,
        };
        if amsgrad {
            let states = &mut [&mut st.exp_avg[i], &mut st.exp_avg_sq[i], &mut st.max_exp_avg_sq[i]];
            leaves.update(i, states, &AmsGrad(rule));
        } else {
            leaves.update(i, &mut [&mut st.exp_avg[i], &mut st.exp_avg_sq[i]], &rule);
        }
    }
    *st.step = count_tensor(t);
}

macro_rules! adam_type {
    ($(#[$doc:meta])* $name:ident, $config:ident, $decoupled:expr_2021) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Params)]
        #[params(crate = adjoint_core)]
        pub struct $name {
            /// First moment estimates, one per leaf.
            pub exp_avg: Vec<Tensor>,
            /// Second moment estimates, one per leaf.
            pub exp_avg_sq: Vec<Tensor>,
            /// Running maxima of the second moment (AMSGrad only; empty otherwise).
            pub max_exp_avg_sq: Vec<Tensor>,
            /// Updates applied so far (`i64` scalar).
            pub step: Tensor,
            /// Hyperparameters.
            #[params(skip)]
            pub config: $config,
            #[params(skip)]
            groups: ParamGroups,
            #[params(skip)]
            n_leaves: usize,
        }

        impl $name {
            /// An optimizer for `params` (its state is allocated here).
            #[track_caller]
            pub fn new<P: Params>(params: &P, config: $config) -> $name {
                let name = stringify!($name);
                assert!(config.lr >= 0.0, "adjoint-nn: {name}: invalid learning rate {}", config.lr);
                assert!(config.eps >= 0.0, "adjoint-nn: {name}: invalid eps {}", config.eps);
                let (b1, b2) = config.betas;
                assert!((0.0..1.0).contains(&b1), "adjoint-nn: {name}: invalid beta1 {b1}");
                assert!((0.0..1.0).contains(&b2), "adjoint-nn: {name}: invalid beta2 {b2}");
                assert!(
                    config.weight_decay >= 0.0,
                    "adjoint-nn: {name}: invalid weight decay {}",
                    config.weight_decay
                );
                $name {
                    exp_avg: zeros_per_leaf(params),
                    exp_avg_sq: zeros_per_leaf(params),
                    max_exp_avg_sq: if config.amsgrad { zeros_per_leaf(params) } else { Vec::new() },
                    step: count_tensor(0),
                    config,
                    groups: ParamGroups::default(),
                    n_leaves: params.num_leaves(),
                }
            }

            /// Use per-leaf options (see [`ParamGroups`]).
            #[track_caller]
            pub fn with_groups(mut self, groups: ParamGroups) -> $name {
                groups.check(stringify!($name), self.n_leaves);
                self.groups = groups;
                self
            }

            /// Updates applied so far.
            pub fn steps_taken(&self) -> u64 {
                read_count(&self.step)
            }

            /// The hyperparameters as [`AdamConfig`], the state to update and the groups.
            fn parts(&mut self) -> (AdamConfig, AdamState<'_>, &ParamGroups) {
                let st = AdamState {
                    exp_avg: &mut self.exp_avg,
                    exp_avg_sq: &mut self.exp_avg_sq,
                    max_exp_avg_sq: &mut self.max_exp_avg_sq,
                    step: &mut self.step,
                };
                (self.config.into(), st, &self.groups)
            }
        }

        impl Optimizer for $name {
            #[track_caller]
            fn step<P: Params>(&mut self, params: &P, grads: &P) -> P {
                let n_leaves = self.n_leaves;
                let (c, st, groups) = self.parts();
                adam_step(stringify!($name), st, &c, $decoupled, groups, n_leaves, params, grads)
            }

            #[track_caller]
            fn step_flat(&mut self, leaves: &mut [Flat<'_>]) -> bool {
                let (c, st, groups) = self.parts();
                adam_step_flat(stringify!($name), st, &c, $decoupled, groups, leaves);
                true
            }

            fn lr(&self) -> f64 {
                self.config.lr
            }

            fn set_lr(&mut self, lr: f64) {
                self.config.lr = lr;
            }

            fn momentum(&self) -> Option<f64> {
                Some(self.config.betas.0)
            }

            fn set_momentum(&mut self, momentum: f64) {
                self.config.betas.0 = momentum;
            }
        }
    };
}

adam_type!(
    /// Adam: `g ← g + λθ; m ← β₁m + (1-β₁)g; v ← β₂v + (1-β₂)g²;
    /// θ ← θ - η/(1-β₁ᵗ) · m / (√v/√(1-β₂ᵗ) + ε)`.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// use adjoint_nn::optim::{Adam, AdamConfig, Optimizer};
    /// let w = Tensor::from_vec(vec![1.0f64, -2.0], &[2]);
    /// let mut opt = Adam::new(&w, AdamConfig { lr: 0.1, ..Default::default() });
    /// // The first Adam step moves every coordinate by about lr, against the gradient's sign.
    /// let w = opt.step(&w, &Tensor::from_vec(vec![3.0f64, -0.5], &[2]));
    /// let v = w.to_vec::<f64>();
    /// assert!((v[0] - 0.9).abs() < 1e-6 && (v[1] + 1.9).abs() < 1e-6);
    /// ```
    Adam,
    AdamConfig,
    false
);

adam_type!(
    /// AdamW: Adam with decoupled weight decay, `θ ← θ(1 - ηλ)` before the Adam update.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// use adjoint_nn::optim::{AdamW, AdamWConfig, Optimizer};
    /// let w = Tensor::from_vec(vec![1.0f64], &[1]);
    /// let mut opt = AdamW::new(&w, AdamWConfig { lr: 0.1, weight_decay: 0.5, ..Default::default() });
    /// let w = opt.step(&w, &Tensor::from_vec(vec![0.0f64], &[1]));
    /// assert!((w.item() - 0.95).abs() < 1e-12); // only the decay moved it
    /// ```
    AdamW,
    AdamWConfig,
    true
);
