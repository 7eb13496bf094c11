//! Optimizers over any [`Params`] value.
//!
//! An optimizer is itself a `Params` value (its moment estimates and step counter are leaves,
//! its hyperparameters are skipped fields), so `checkpoint::save(path, &(model, opt))` saves
//! both. State is allocated at construction from the parameters, so a freshly built optimizer
//! has the same structure as a saved one and loads from it. State tensors are stored per leaf
//! in leaf order (`exp_avg.0`, `exp_avg.1`, …), as PyTorch numbers its optimizer state.
//!
//! Each update follows PyTorch's single-tensor implementation operation for operation, so
//! trajectories agree with `torch.optim` to rounding (the tests check 20 steps to 1e-6 in
//! `f64`). The arithmetic runs in one fused pass per leaf (see `kernel.rs`), on concrete
//! values: an update is not itself differentiated (no meta-gradients through `step`); for that,
//! [`functional`] has the same updates as pure, differentiable functions of tensors.
//!
//! Per-leaf options — learning-rate multipliers, weight decay off for biases and norms,
//! frozen leaves — come from [`ParamGroups`], chosen by dotted leaf name.
//!
//! ```
//! use adjoint_core::{grad, Params, Tensor};
//! use adjoint_nn::optim::{Adam, AdamConfig, Optimizer};
//!
//! #[derive(Clone, Params)]
//! #[params(crate = adjoint_core)]
//! struct Line { w: Tensor, b: Tensor }
//! let mut model = Line { w: Tensor::scalar(0.0f64), b: Tensor::scalar(0.0f64) };
//! let mut opt = Adam::new(&model, AdamConfig { lr: 0.1, ..Default::default() });
//! let loss = |m: &Line| ((&m.w * 2.0 + &m.b) - 3.0).square().sum();
//! for _ in 0..200 {
//!     let g = grad(loss)(&model);
//!     model = opt.step(&model, &g);
//! }
//! assert!(loss(&model).item() < 1e-3);
//! ```

mod adagrad;
mod adam;
mod clip;
pub mod functional;
pub(crate) mod kernel;
mod lbfgs;
mod rmsprop;
mod sgd;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, clip_grad_value, global_norm, GradAccumulator};
pub use lbfgs::{Lbfgs, LbfgsConfig, LbfgsStep};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use sgd::{Sgd, SgdConfig};

use adjoint_core::{Params, Tensor};

/// One optimisation algorithm. `step` returns the updated parameters (tensors are immutable
/// handles; the old ones are dropped by the caller).
pub trait Optimizer: Params {
    /// Apply one update from `grads` (same structure as `params`).
    fn step<P: Params>(&mut self, params: &P, grads: &P) -> P;
    /// The current learning rate.
    fn lr(&self) -> f64;
    /// Set the learning rate (schedules call this).
    fn set_lr(&mut self, lr: f64);
    /// The momentum (SGD, RMSprop) or first-moment decay β₁ (Adam), if the algorithm has one.
    fn momentum(&self) -> Option<f64> {
        None
    }
    /// Set the momentum or β₁ (one-cycle schedules cycle it); ignored by algorithms without
    /// one.
    fn set_momentum(&mut self, momentum: f64) {
        let _ = momentum;
    }
    /// One update of every leaf given as raw buffers ([`Flat`], one per leaf, in leaf order):
    /// each parameter is overwritten in place with its new value, from a gradient given as a
    /// scaled sum of parts, and optionally copied to a mirror in the same pass. The same
    /// arithmetic as [`step`](Self::step) on tensors holding the same values (the same bits),
    /// without the tensors: a data-parallel update reads the ranks' gradients where they lie
    /// and writes the new parameters where the other ranks read them (`adjoint-dist`'s sharded
    /// update), the role of PyTorch's fused multi-tensor optimizers.
    ///
    /// Returns `false`, changing nothing, when the algorithm has no such path (the default;
    /// Adam, AdamW and SGD have one). Panics, changing nothing, when the leaves do not match
    /// the optimizer's state.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// use adjoint_nn::optim::{Adam, AdamConfig, Flat, FlatLeaf, Optimizer};
    ///
    /// let w = Tensor::from_vec(vec![1.0f32, 2.0], &[2]);
    /// let mut opt = Adam::new(&w, AdamConfig::default());
    /// let mut flat_opt = opt.clone();
    /// // The gradient (0.5, -1) as the mean of two ranks' parts.
    /// let g = Tensor::from_vec(vec![0.5f32, -1.0], &[2]);
    /// let (a, b) = ([0.25f32, -3.0], [0.75f32, 1.0]);
    /// let mut p = [1.0f32, 2.0];
    /// let mut copy = [0.0f32; 2];
    /// let leaf = FlatLeaf { param: &mut p, grads: &[&a, &b], scale: 0.5, mirror: Some(&mut copy) };
    /// assert!(flat_opt.step_flat(&mut [Flat::F32(leaf)]));
    /// assert_eq!(opt.step(&w, &g).to_vec::<f32>(), p.to_vec());
    /// assert_eq!(copy, p);
    /// ```
    fn step_flat(&mut self, leaves: &mut [Flat<'_>]) -> bool {
        let _ = leaves;
        false
    }
}

/// One leaf of [`Optimizer::step_flat`] with elements `T`.
#[derive(Debug)]
pub struct FlatLeaf<'a, T> {
    /// The parameter (row-major, as the leaf's storage), overwritten with its new value.
    pub param: &'a mut [T],
    /// The gradient is `scale · (grads[0] + grads[1] + …)`, summed left to right and then
    /// scaled; each part has the parameter's length.
    pub grads: &'a [&'a [T]],
    /// Multiplies the sum of the parts (`1 / world size` for a mean over ranks).
    pub scale: T,
    /// When given (the parameter's length), also receives the new parameter, written in the
    /// same pass: where other processes read it, while `param` stays private.
    pub mirror: Option<&'a mut [T]>,
}

/// One leaf of [`Optimizer::step_flat`], by element type.
#[derive(Debug)]
pub enum Flat<'a> {
    /// An `f32` leaf.
    F32(FlatLeaf<'a, f32>),
    /// An `f64` leaf.
    F64(FlatLeaf<'a, f64>),
}

impl Flat<'_> {
    /// The parameter's number of elements.
    pub fn len(&self) -> usize {
        match self {
            Flat::F32(l) => l.param.len(),
            Flat::F64(l) => l.param.len(),
        }
    }

    /// Whether the parameter has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Options for one leaf (see [`ParamGroups`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeafOptions {
    /// Multiplies the optimizer's learning rate for this leaf.
    pub lr_scale: f64,
    /// Replaces the optimizer's weight decay for this leaf (`None`: use the optimizer's).
    pub weight_decay: Option<f64>,
    /// Leave this leaf unchanged (its state is not updated either).
    pub frozen: bool,
}

impl Default for LeafOptions {
    fn default() -> Self {
        LeafOptions { lr_scale: 1.0, weight_decay: None, frozen: false }
    }
}

/// Per-leaf options: PyTorch's parameter groups, chosen by dotted leaf name.
///
/// ```
/// use adjoint_core::{Params, Tensor};
/// use adjoint_nn::optim::{AdamW, AdamWConfig, ParamGroups};
///
/// #[derive(Clone, Params)]
/// #[params(crate = adjoint_core)]
/// struct Layer { weight: Tensor, bias: Tensor }
/// let net = vec![Layer { weight: Tensor::ones(&[2, 2]), bias: Tensor::zeros(&[2]) }];
/// // Weight decay on weights only.
/// let groups = ParamGroups::weight_decay_mask(&net, |name| !name.ends_with("bias"));
/// assert_eq!(groups.get(1).weight_decay, Some(0.0));
/// let opt = AdamW::new(&net, AdamWConfig::default()).with_groups(groups);
/// # let _ = opt;
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamGroups {
    leaves: Vec<LeafOptions>,
}

impl ParamGroups {
    /// The same default options for every leaf.
    pub fn uniform() -> ParamGroups {
        ParamGroups::default()
    }

    /// Options for each leaf of `params` from its dotted name.
    pub fn by_name<P: Params>(params: &P, mut f: impl FnMut(&str) -> LeafOptions) -> ParamGroups {
        let mut leaves = Vec::new();
        params.for_each_named("", &mut |name, _| leaves.push(f(name)));
        ParamGroups { leaves }
    }

    /// Weight decay only on the leaves for which `decay(name)` is true (the others get a weight
    /// decay of 0), e.g. `|name| !name.ends_with("bias")`.
    pub fn weight_decay_mask<P: Params>(params: &P, mut decay: impl FnMut(&str) -> bool) -> ParamGroups {
        Self::by_name(params, |name| LeafOptions {
            weight_decay: if decay(name) { None } else { Some(0.0) },
            ..LeafOptions::default()
        })
    }

    /// Freeze the leaves for which `frozen(name)` is true.
    pub fn freeze<P: Params>(params: &P, mut frozen: impl FnMut(&str) -> bool) -> ParamGroups {
        Self::by_name(params, |name| LeafOptions { frozen: frozen(name), ..LeafOptions::default() })
    }

    /// The options of leaf `i` (defaults when the groups are uniform).
    pub fn get(&self, i: usize) -> LeafOptions {
        self.leaves.get(i).copied().unwrap_or_default()
    }

    /// Number of leaves with explicit options (0 for uniform groups).
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// True for uniform groups.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    #[track_caller]
    pub(crate) fn check(&self, optimizer: &str, n_leaves: usize) {
        assert!(
            self.leaves.is_empty() || self.leaves.len() == n_leaves,
            "adjoint-nn: {optimizer}::with_groups: groups for {} leaves given to an optimizer built for {n_leaves}",
            self.leaves.len()
        );
    }
}

/// The leaves of `params` and `grads`, checked against each other and against the number of
/// leaves the optimizer was built for. A mismatch is a caller bug: panic naming the leaf.
#[track_caller]
pub(crate) fn step_leaves<P: Params>(
    optimizer: &str,
    params: &P,
    grads: &P,
    n_state: usize,
) -> (Vec<Tensor>, Vec<Tensor>) {
    let ps = params.leaves();
    let gs = grads.leaves();
    assert!(
        ps.len() == gs.len() && ps.len() == n_state,
        "adjoint-nn: {optimizer}::step: {} parameter leaves and {} gradient leaves for an optimizer built for {n_state}",
        ps.len(),
        gs.len()
    );
    for (i, (p, g)) in ps.iter().zip(&gs).enumerate() {
        if p.shape() != g.shape() {
            let name = params.named_leaves().swap_remove(i).0;
            panic!(
                "adjoint-nn: {optimizer}::step: leaf {i} (`{name}`) has shape {:?} but its gradient has shape {:?}",
                p.shape(),
                g.shape()
            );
        }
    }
    (ps, gs)
}

/// Zeros shaped like each leaf of `params` (one state buffer per leaf).
pub(crate) fn zeros_per_leaf<P: Params>(params: &P) -> Vec<Tensor> {
    params.leaves().iter().map(|t| Tensor::from_array(t.value().zeros_like())).collect()
}

/// Check a state buffer against its leaf (a checkpoint loaded for another model is the usual
/// cause of a mismatch).
#[track_caller]
pub(crate) fn check_state(optimizer: &str, what: &str, state: &[Tensor], params: &[Tensor]) {
    for (i, (s, p)) in state.iter().zip(params).enumerate() {
        assert!(
            s.shape() == p.shape(),
            "adjoint-nn: {optimizer}::step: state `{what}.{i}` has shape {:?} but the parameter has shape {:?}",
            s.shape(),
            p.shape()
        );
    }
}

/// The step counter as stored in the optimizer (an `i64` scalar, so it checkpoints).
pub(crate) fn read_count(step: &Tensor) -> u64 {
    step.value().item::<f64>().max(0.0) as u64
}

/// A step counter tensor.
pub(crate) fn count_tensor(n: u64) -> Tensor {
    Tensor::scalar(n as i64)
}
