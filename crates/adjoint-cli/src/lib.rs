//! # adjoint-cli
//!
//! The `adjoint` command. `adjoint demo [forecast|robot|imaging]` runs the end-to-end demos on
//! the real data in `data/`; each writes a run folder `runs/<name>-<timestamp>/` with its
//! configuration, metrics log, final checkpoint and plots.
//!
//! `adjoint runs audit` lives here too ([`audit`]): the store gathers and signs, this crate
//! draws the figures.
//!
//! The demos live in this library (not only in the binary) so that integration tests and
//! benchmarks can call their pieces — the robot simulator, the baselines — directly.

pub mod audit;
pub mod demos;
