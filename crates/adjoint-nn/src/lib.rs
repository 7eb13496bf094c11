//! # adjoint-nn
//!
//! Layers, losses, optimizers, data loading and a training loop, built on adjoint's transforms.
//!
//! ## Design
//! - **A model is a value.** Layers are plain structs deriving
//!   [`Params`](adjoint_core::Params); a model is any composition of them (your own struct,
//!   a `Vec`, a tuple). `grad(loss)(&model)` returns a model-shaped gradient, so nothing
//!   registers parameters, and `vmap`, `jvp` and `hessian` apply to whole models as they do to
//!   tensors. Forward passes are ordinary methods ([`layers::Module`]); training-time
//!   behaviour (dropout, batch-norm statistics) is selected by an explicit [`layers::Ctx`], not
//!   by hidden global state, and running statistics live in [`Buffer`](adjoint_core::params::Buffer)s
//!   that checkpoints save but gradients ignore.
//! - **Layers are composites.** Every layer is written with differentiable tensor ops (the
//!   recurrent cells cut their gates with one `split`), so every layer differentiates to any
//!   order and batches under `vmap` without rules of its own. Layers whose numbers users
//!   compare with PyTorch (initialisation, LSTM/GRU gate order, batch-norm momentum) follow
//!   PyTorch's conventions, and the tests hold them to PyTorch fixtures.
//! - **Optimizers are values too** ([`optim`]): their state is a `Params` value, so a
//!   checkpoint of `(model, optimizer)` resumes exactly. Updates follow PyTorch's formulas
//!   operation for operation in one fused pass per leaf, on concrete values.
//! - **One training path, safe by default** ([`train`]): [`train::train_step`] (gradient,
//!   health checks, clipping, update) is the unit every loop uses, and [`train::Trainer`]
//!   builds whole runs from it; a non-finite loss or gradient stops with the step and the
//!   parameter named, or is skipped and recorded, by policy.
//! - **Files are untrusted** ([`checkpoint`], [`data`]): checkpoints are safetensors written
//!   atomically and loaded strictly into a template; CSV, PGM and checkpoint readers return
//!   [`NnError`] naming the file and the problem, and are fuzzed; they never panic on bad input.
//! - **Attributions are transforms of the model** ([`explain`]): gradient × input, integrated
//!   gradients (with its completeness check) and SmoothGrad take any `Fn(&Tensor) -> Tensor`
//!   written for one example and batch it with `vmap(grad(…))`.
//! - **Deterministic data** ([`data`]): loaders shuffle with adjoint's counter-based PRNG from a
//!   seed and an epoch, so a run reproduces on any thread count.

pub mod checkpoint;
pub mod data;
pub mod error;
pub mod explain;
pub mod init;
pub mod layers;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod train;

pub use error::{NnError, Result};
