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
pub use nonlinear::{
    argmin, argmin_box, argmin_with, fixed_point, root, root_with, Objective, RootSolvers, UserSolve,
};

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

/// A solver of `(b or x0, params)`: the function the public entry points wrap.
pub(crate) type Solver<P> = std::rc::Rc<dyn Fn(&(adjoint_core::Tensor, P)) -> adjoint_core::Tensor>;

/// A weak handle on a [`Solver`], for its own `fwd` to call it.
type SolverSlot<P> = std::rc::Rc<
    std::cell::RefCell<Option<std::rc::Weak<dyn Fn(&(adjoint_core::Tensor, P)) -> adjoint_core::Tensor>>>,
>;

/// The custom-VJP solver shared by every entry point: `iterate` solves on plain values;
/// under reverse mode the forward pass calls the solver itself one level down (so every level
/// is differentiated implicitly), keeps the solution and the parameters, and `bwd(x*, p, x̄)`
/// returns the cotangents of `(b or x0, p)`.
pub(crate) fn implicit_solver<P: adjoint_core::Params + 'static>(
    iterate: impl Fn(&(adjoint_core::Tensor, P)) -> adjoint_core::Tensor + 'static,
    bwd: impl Fn(&adjoint_core::Tensor, &P, &adjoint_core::Tensor) -> (adjoint_core::Tensor, P) + 'static,
) -> Solver<P> {
    use std::cell::RefCell;
    use std::rc::Rc;
    let slot: SolverSlot<P> = Rc::new(RefCell::new(None));
    let s1 = slot.clone();
    let fwd = move |q: &(adjoint_core::Tensor, P)| {
        let solver =
            s1.borrow().as_ref().and_then(|w| w.upgrade()).expect("the solver is alive while it runs");
        let x = solver(q);
        (x.clone(), (x, krylov::clone_params(&q.1)))
    };
    let solver: Solver<P> = Rc::new(adjoint_core::custom_vjp(
        iterate,
        fwd,
        move |r: &(adjoint_core::Tensor, P), xbar: &adjoint_core::Tensor| bwd(&r.0, &r.1, xbar),
    ));
    *slot.borrow_mut() = Some(Rc::downgrade(&solver));
    solver
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
