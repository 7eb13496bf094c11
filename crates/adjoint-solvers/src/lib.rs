//! # adjoint-solvers
//!
//! Differentiate through solvers, not only through layers: dense linear algebra
//! ([`linalg`]) and iterative linear solvers, roots, fixed points and optimisation layers
//! ([`solve`]); ODE integrators with adjoint gradients ([`ode`]). The `adjoint` facade
//! re-exports them as `adjoint::linalg` and `adjoint::solve`.
//!
//! ## Design
//! - Dense decompositions are primitives of their own (one file each, with shape, eval, JVP,
//!   VJP and batching rules, exactly like `adjoint-core`'s); their kernels come from `faer`.
//!   Rules are written with differentiable ops, so derivatives of any order work.
//! - Solvers are differentiated *implicitly* (implicit function theorem, adjoint methods):
//!   one extra linear solve instead of differentiating through the iterations, so memory does
//!   not grow with the iteration count.
//! - This is a crate of its own so that `faer`'s compile time is paid only by users who need
//!   it.

pub mod linalg;
pub mod ode;
pub mod solve;
