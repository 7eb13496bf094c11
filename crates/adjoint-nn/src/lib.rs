//! # adjoint-nn
//!
//! Layers, losses, optimizers, data loading and a training loop, built on adjoint's transforms.
//! A model is a [`Params`](adjoint_core::Params) value, its gradient is a model-shaped value, and
//! optimizers update `Params`.

// The derive macro names `::adjoint::…`; let it resolve inside this crate too.
extern crate adjoint_core as adjoint;

pub mod checkpoint;
pub mod data;
pub mod error;
pub mod init;
pub mod layers;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod train;

pub use error::{NnError, Result};
