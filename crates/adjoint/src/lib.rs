//! # adjoint
//!
//! Differentiable programming for Rust. Write ordinary Rust over [`Tensor`]s — loops,
//! branches, recursion, your own structs — and differentiate it: gradients, Jacobians and
//! Hessians to any order, in reverse and forward mode, batched with `vmap`, with custom rules and
//! checkpointing — and compiled with [`jit`], which stages a function into a program once per
//! input signature ([`make_ir`] shows it) and composes with every transform in both orders.
//!
//! ```
//! use adjoint::prelude::*;
//!
//! #[derive(Clone, Params)]
//! struct Model { w: Tensor, b: Tensor }
//!
//! let m = Model { w: Tensor::from_vec(vec![0.5f64, -0.5], &[2]), b: Tensor::scalar(0.1f64) };
//! let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]);
//! let loss = |m: &Model| ((x.matmul(&m.w) + &m.b).tanh() * 2.0).sum();
//! let g = grad(loss)(&m);               // a Model-shaped gradient
//! assert_eq!(g.w.shape(), &[2]);
//!
//! let fast = jit(grad(loss));           // staged once, then run from the cache
//! assert_eq!(fast(&m).w.to_vec::<f64>(), g.w.to_vec::<f64>());
//! ```
//!
//! The layers underneath: `adjoint-tensor` (arrays and kernels, re-exported as [`tensor`]),
//! `adjoint-core` (primitives and transforms), `adjoint-solvers` ([`linalg`], [`solve`], [`ode`])
//! and the scalar tier `adjoint-scalar` ([`scalar`]: `Var`, `Dual`, generic `Real` code at a few
//! nanoseconds per operation). See each crate's documentation for the design. With the `dist`
//! feature (Open MPI needed to build), `adjoint-dist` is here as [`dist`]: data-parallel training
//! over MPI (`DataParallel`, `DistributedSampler`).

pub use adjoint_core::*;
#[cfg(feature = "dist")]
pub use adjoint_dist as dist;
pub use adjoint_scalar as scalar;
pub use adjoint_solvers::{linalg, ode, solve};
pub use adjoint_tensor as tensor;

/// Everything a typical program needs: `use adjoint::prelude::*`.
pub mod prelude {
    pub use adjoint_core::testing::{check_grads, Mode, BOTH};
    pub use adjoint_core::{
        checkpoint, custom_jvp, custom_vjp, fori_loop, grad, hessian, hvp, jacfwd, jacrev, jit, jit_donate,
        jit_stats, jvp, make_ir, stop_gradient, value_and_grad, value_and_grad_with_aux, vjp, vmap,
        vmap_axes, Axes, Conv1dOptions, Conv2dOptions, DType, Params, Pool2dOptions, Tensor,
    };
}
