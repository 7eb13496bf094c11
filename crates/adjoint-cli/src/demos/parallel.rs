//! Data-parallel training in the demos (`adjoint demo imaging|forecast --distributed` under
//! `mpirun`; the CLI's `distributed` feature). Without the feature, or without the flag, every
//! type here is the one-process case and costs nothing.
//!
//! A demo's training loop builds its global batch exactly as in a one-process run (same
//! permutation, same augmentation) and each rank takes the rows `j` of it with
//! `j mod world = rank`; gradients are weighted by the rank's share of the rows before the
//! mean over ranks, so the update is the one-process update for any batch length (up to
//! rounding), and `--distributed` on N ranks reproduces the run without it.

use adjoint_core::{Params, Tensor};
use adjoint_nn::optim::Optimizer;

use super::common::{self, DemoError};

/// The MPI world of a distributed run, or nothing.
#[derive(Clone, Default)]
pub struct Parallel {
    #[cfg(feature = "distributed")]
    dist: Option<std::rc::Rc<adjoint_dist::Dist>>,
}

impl std::fmt::Debug for Parallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parallel {{ rank: {}, world_size: {} }}", self.rank(), self.world_size())
    }
}

impl Parallel {
    /// One process.
    pub fn none() -> Parallel {
        Parallel::default()
    }

    /// Join the MPI job this process was started in (by `mpirun`).
    #[cfg(feature = "distributed")]
    pub fn init() -> Result<Parallel, String> {
        let dist = adjoint_dist::Dist::init().map_err(|e| e.to_string())?;
        Ok(Parallel { dist: Some(std::rc::Rc::new(dist)) })
    }

    /// The world, when distributed.
    #[cfg(feature = "distributed")]
    pub fn dist(&self) -> Option<&adjoint_dist::Dist> {
        self.dist.as_deref()
    }

    /// This process's rank (0 when not distributed).
    pub fn rank(&self) -> usize {
        #[cfg(feature = "distributed")]
        if let Some(d) = &self.dist {
            return d.rank();
        }
        0
    }

    /// Number of ranks (1 when not distributed).
    pub fn world_size(&self) -> usize {
        #[cfg(feature = "distributed")]
        if let Some(d) = &self.dist {
            return d.world_size();
        }
        1
    }

    /// Rank 0: the one that writes the run folder, checkpoints and the registry record.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// The rule by which rank `rank` picks its rows of every batch (recorded in the manifest).
    pub fn shard_rule(&self, rank: usize) -> String {
        format!("rows j of each global batch with j mod {} = {rank}", self.world_size())
    }

    /// This rank's rows of a global batch of `n` rows.
    pub fn rows(&self, n: usize) -> Vec<usize> {
        (self.rank()..n).step_by(self.world_size()).collect()
    }

    /// This rank's rows of `t` (a global batch along axis 0).
    pub fn shard(&self, t: &Tensor) -> Tensor {
        if self.world_size() == 1 {
            return t.clone();
        }
        let rows: Vec<i64> = self.rows(t.shape()[0]).iter().map(|&r| r as i64).collect();
        let n = rows.len();
        t.index_select(0, &Tensor::from_vec(rows, &[n]))
    }

    /// The weight of this rank's mean over its rows in the mean over the global batch of `n`
    /// rows, times the world size (1 when the rows divide evenly).
    pub fn weight(&self, n: usize) -> f64 {
        (self.rows(n).len() * self.world_size()) as f64 / n as f64
    }

    /// The global mean of a per-rank mean `value` over a batch of `n` rows.
    pub fn mean(&self, value: f64, n: usize) -> Result<f64, String> {
        #[cfg(feature = "distributed")]
        if let Some(d) = &self.dist {
            // A rank without rows (a last batch shorter than the world) has a NaN mean: it
            // contributes nothing.
            let mine = if self.rows(n).is_empty() { 0.0 } else { value * self.weight(n) };
            return d.mean(&[mine]).map(|v| v[0]).map_err(|e| e.to_string());
        }
        let _ = n;
        Ok(value)
    }

    /// Stop every rank after an error on this one (distributed), or do nothing.
    pub fn fail(&self, message: &str) {
        #[cfg(feature = "distributed")]
        if let Some(d) = &self.dist
            && d.world_size() > 1
        {
            d.abort(&message);
        }
        let _ = message;
    }
}

/// A model and its optimizer, replicated on every rank when distributed.
pub enum Replica<'p, M: Params + Clone, O: Optimizer + Clone> {
    /// One process.
    Local {
        /// The model.
        model: M,
        /// Its optimizer.
        opt: O,
    },
    /// Data-parallel (boxed: its bucket plan and buffers make it much larger than `Local`).
    #[cfg(feature = "distributed")]
    Dist(Box<adjoint_dist::DataParallel<'p, M, O>>),
    #[doc(hidden)]
    _Unused(std::marker::PhantomData<&'p ()>),
}

impl<'p, M: Params + Clone, O: Optimizer + Clone> Replica<'p, M, O> {
    /// Replicate rank 0's model and optimizer (collective when distributed).
    pub fn new(par: &'p Parallel, model: M, opt: O) -> Result<Self, String> {
        #[cfg(feature = "distributed")]
        if let Some(d) = par.dist() {
            let dp = adjoint_dist::DataParallel::new(d, model, opt, Default::default())
                .map_err(|e| e.to_string())?;
            return Ok(Replica::Dist(Box::new(dp)));
        }
        let _ = par;
        Ok(Replica::Local { model, opt })
    }

    /// The current model.
    pub fn model(&self) -> &M {
        match self {
            Replica::Local { model, .. } => model,
            #[cfg(feature = "distributed")]
            Replica::Dist(dp) => dp.params(),
            Replica::_Unused(_) => unreachable!(),
        }
    }

    /// One update from this rank's gradient `grads` over its rows of a batch of `n` rows; `f`
    /// transforms the global gradient before the optimizer (clipping).
    pub fn step(
        &mut self,
        par: &Parallel,
        grads: &M,
        n: usize,
        f: impl FnOnce(M) -> M,
    ) -> Result<(), String> {
        match self {
            Replica::Local { model, opt } => {
                *model = opt.step(model, &f(grads.clone()));
                Ok(())
            }
            #[cfg(feature = "distributed")]
            Replica::Dist(dp) => {
                let w = par.weight(n);
                let scaled = if par.rows(n).is_empty() {
                    // No rows here (a last batch shorter than the world): no contribution.
                    adjoint_core::params::zeros_like(grads)
                } else if w == 1.0 {
                    grads.clone()
                } else {
                    grads.map_tensors(&mut |t| t * w)
                };
                dp.step_with(&scaled, f).map_err(|e| e.to_string())
            }
            Replica::_Unused(_) => {
                let _ = (par, n);
                unreachable!()
            }
        }
    }

    /// One training step of `loss_fn` (this rank's mean loss over its rows of a global batch of
    /// `n` rows) at the current model; returns the global mean loss. One process: the step is
    /// [`adjoint_nn::train::train_step`] (gradient-health checks; a non-finite loss or gradient
    /// stops with "`what` diverged at step `step`"). Distributed: the rank's gradient is
    /// averaged over the ranks by [`Replica::step`] and a non-finite global loss stops the same
    /// way on every rank.
    pub fn train_step(
        &mut self,
        par: &Parallel,
        n: usize,
        (what, step): (&str, usize),
        loss_fn: impl Fn(&M) -> Tensor,
    ) -> Result<f64, DemoError> {
        if let Replica::Local { model, opt } = self {
            let config = adjoint_nn::train::StepConfig::default();
            let out = adjoint_nn::train::train_step(model, opt, step, &config, loss_fn)
                .map_err(|e| common::step_error(what, e))?;
            *model = out.model;
            return Ok(out.stats.loss);
        }
        let (loss, g) = adjoint_core::value_and_grad(loss_fn)(self.model());
        let loss = par.mean(loss.item(), n)?;
        common::check_finite(what, step, loss)?;
        self.step(par, &g, n, |g| g)?;
        Ok(loss)
    }

    /// The model and optimizer.
    pub fn into_parts(self) -> (M, O) {
        match self {
            Replica::Local { model, opt } => (model, opt),
            #[cfg(feature = "distributed")]
            Replica::Dist(dp) => dp.into_parts(),
            Replica::_Unused(_) => unreachable!(),
        }
    }
}
