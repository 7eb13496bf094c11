//! Optimizers over any [`Params`] value.
//!
//! An optimizer is itself a `Params` value (its moment estimates and step counter are leaves,
//! its hyperparameters are skipped fields), so `checkpoint::save(path, &(model, opt))` saves
//! both. State is allocated at construction from the parameters, so a freshly built optimizer
//! has the same structure as a saved one and loads from it.

use adjoint_core::Params;

/// One optimisation algorithm. `step` returns the updated parameters (tensors are immutable
/// handles; the old ones are dropped by the caller).
pub trait Optimizer: Params {
    /// Apply one update from `grads` (same structure as `params`).
    fn step<P: Params>(&mut self, params: &P, grads: &P) -> P;
    /// The current learning rate.
    fn lr(&self) -> f64;
    /// Set the learning rate (schedules call this).
    fn set_lr(&mut self, lr: f64);
}
