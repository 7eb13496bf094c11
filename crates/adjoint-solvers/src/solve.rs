//! Iterative linear solvers, roots, fixed points and optimisation layers, differentiated
//! **implicitly**.
//!
//! Each solver runs its iterations on plain values (nothing is recorded) and is wrapped in a
//! [`custom_vjp`](adjoint_core::custom_vjp) whose backward rule applies the implicit function
//! theorem at the solution: one linear solve with the transposed Jacobian, made of
//! vector-Jacobian products of the user's function. So
//! - the gradient is exact at convergence, not the derivative of the last iterate;
//! - reverse-mode memory does not grow with the iteration count (the tape keeps the solution
//!   and the inputs, nothing per iteration);
//! - the backward solve is itself one of these solvers, so second derivatives are implicit too,
//!   and forward mode works through the custom rule's linearity (see `adjoint_core::custom`).
//!
//! Functions take their parameters explicitly (`params: &P` with `P: Params`): a function
//! that closed over a traced parameter could not have that dependence differentiated
//! implicitly (adjoint refuses such closures with a message).
//!
//! Iterations read convergence tests as numbers, so these solvers are not batched by `vmap`
//! over their inputs; batch inside the function instead (a matvec over `[B, n]`).

mod krylov;
mod nonlinear;

pub use krylov::{bicgstab, cg, gmres};
pub use nonlinear::{argmin, argmin_box, fixed_point, root};

/// Options of the iterative solvers.
///
/// ```
/// use adjoint_solvers::solve::SolveOptions;
/// let o = SolveOptions { tol: 1e-12, ..SolveOptions::default() };
/// assert_eq!(o.max_iter, 1000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolveOptions {
    /// Stop when the residual norm is at most `tol` times the right-hand side's (linear
    /// solvers), or the step / residual norm is at most `tol` (nonlinear ones).
    pub tol: f64,
    /// Iteration cap (see [`strict`](Self::strict) for what happens when it is reached).
    pub max_iter: usize,
    /// GMRES restart length; Anderson history length for [`fixed_point`] (0: plain iteration).
    pub memory: usize,
    /// Panic when the iteration cap is reached before convergence (default: return the last
    /// iterate, as SciPy does, whose gradient is then only approximate).
    pub strict: bool,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions { tol: 1e-10, max_iter: 1000, memory: 20, strict: false }
    }
}

/// `Σ a·b` as `f64`.
pub(crate) fn vdot(a: &adjoint_core::Tensor, b: &adjoint_core::Tensor) -> f64 {
    (a * b).sum().item()
}

/// `‖a‖₂` as `f64`.
pub(crate) fn norm(a: &adjoint_core::Tensor) -> f64 {
    vdot(a, a).sqrt()
}

#[cold]
#[track_caller]
pub(crate) fn not_converged(what: &str, iters: usize, residual: f64) -> ! {
    panic!("adjoint: {what}: no convergence in {iters} iterations (residual {residual:.3e}); raise max_iter or tol")
}
