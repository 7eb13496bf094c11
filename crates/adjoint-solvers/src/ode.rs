//! ODE integrators with three ways to differentiate them.
//!
//! [`odeint`] solves `dy/dt = f(y, t, params)` from `y(ts[0]) = y0` and returns the states at
//! the output times `ts`, stacked: `[ts.len(), ...y0.shape]`. Methods ([`Method`]):
//! fixed-step classic RK4, and the adaptive 5(4) pairs of Dormand–Prince (SciPy's `RK45`) and
//! Tsitouras, with dense output at the output times (so output times do not change the steps)
//! and SciPy's step-size control; and for stiff problems the linearly implicit Rosenbrock 2(3)
//! pair of MATLAB's `ode23s` (each step factors `I − h d ∂f/∂y` with [`crate::linalg`]'s LU,
//! the Jacobian by forward mode).
//!
//! [`odeint_real`] runs the same solver over the scalar tier's generic scalars (`f64`, `Var`,
//! `Dual`): for small systems it is two orders of magnitude faster than tensor ops.
//!
//! [`odeint_event`] integrates until a function of the state crosses zero (a terminal event)
//! and differentiates the crossing's time and state by the implicit function theorem.
//!
//! Gradients with respect to `y0` and `params` ([`GradMethod`]):
//! - **Direct**: the solver's steps are tensor ops, so reverse mode differentiates through
//!   them (the exact derivative of the discrete solution, step sizes held fixed); the tape
//!   grows with the number of steps.
//! - **Adjoint**: the continuous adjoint `ȧ = -aᵀ∂f/∂y`, `p̄̇ = -aᵀ∂f/∂p`, solved backward
//!   between output times, as a [`custom_vjp`](adjoint_core::custom_vjp) over `(y0, params)`.
//!   The tape keeps only the states at the output times (checkpoints); each interval is
//!   re-integrated forward and interpolated with the dense output during the backward solve,
//!   so reverse-mode memory does not depend on the number of steps.
//! - **Backsolve**: the same adjoint, with `y` integrated backward together with it from the
//!   stored output state (as `jax.experimental.ode.odeint`); cheapest, but can be inaccurate
//!   when the backward `y` dynamics are unstable — always the case for stiff problems, whose
//!   fast decaying modes grow backward in time: use `Adjoint` or `Direct` with `Rosenbrock23`.
//!
//! The backward solves of both adjoint methods leave the parameter cotangent `p̄` — a pure
//! quadrature — out of their error control by default ([`AdjointNorm::Seminorm`]) and never form
//! its stage values: at GradBench's `ode` (`n = 10⁵`) the two together saved about a sixth of
//! the gradient's time (76 → 61 ms, one thread).
//!
//! The adjoint methods approximate the exact gradient to the solver's tolerances; Direct gives
//! the exact gradient of the approximate solution. At tight tolerances they agree.
//!
//! Step sizes are read from plain values, so odeint does not batch under `vmap` when step
//! control depends on the batch; batch inside `f` instead (a state of shape `[B, n]`).

mod event;
mod grad;
mod integrate;
mod real;
mod rosenbrock;
mod tableau;

use std::rc::Rc;

use adjoint_core::{Params, Tensor};

pub use event::{odeint_event, Event};
use integrate::{integrate, Control, Leaves, Run, Scheme};
pub use real::odeint_real;
use tableau::{DOPRI5, RK4, TSIT5};

/// The integration scheme.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// Classic 4th-order Runge–Kutta with equal steps of at most `dt` on each interval between
    /// output times.
    Rk4 {
        /// Largest step.
        dt: f64,
    },
    /// Dormand–Prince 5(4), adaptive (SciPy's `RK45`).
    Dopri5,
    /// Tsitouras 5(4), adaptive.
    Tsit5,
    /// The Rosenbrock 2(3) pair of Shampine & Reichelt (MATLAB's `ode23s`), adaptive and
    /// linearly implicit, for stiff problems: each step factors `I − h d ∂f/∂y` (a dense
    /// Jacobian of the whole state by forward mode), so it suits small and medium systems.
    Rosenbrock23,
}

/// How [`odeint`] is differentiated (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradMethod {
    /// Differentiate through the solver's steps.
    Direct,
    /// Continuous adjoint with checkpoints at the output times.
    Adjoint,
    /// Continuous adjoint with `y` re-integrated backward.
    Backsolve,
}

/// Options of [`odeint`].
///
/// ```
/// use adjoint_solvers::ode::{GradMethod, Method, OdeOptions};
/// let o = OdeOptions { method: Method::Tsit5, rtol: 1e-8, ..OdeOptions::default() };
/// assert_eq!(o.grad, GradMethod::Adjoint);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OdeOptions {
    /// The scheme.
    pub method: Method,
    /// Relative tolerance of the adaptive methods.
    pub rtol: f64,
    /// Absolute tolerance of the adaptive methods.
    pub atol: f64,
    /// Most steps per solve (forward, or each backward interval); odeint panics beyond it.
    pub max_steps: usize,
    /// How gradients are computed.
    pub grad: GradMethod,
    /// What the backward solves of the adjoint methods measure for step control.
    pub adjoint_norm: AdjointNorm,
    /// How the adaptive methods choose each solve's first step.
    pub first_step: FirstStep,
}

/// How an adaptive solve (forward or backward) chooses its first step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstStep {
    /// SciPy's `select_initial_step` (Hairer, Nørsett & Wanner II.4): `h = min(100·h0, h1)`
    /// with `h0 = 0.01·‖y0‖/‖f(y0)‖` (10⁻⁶ when `y0` or `f(y0)` is about zero) and `h1` from a
    /// difference estimate of the second derivative over `h0`. With `Dopri5` the steps, and the
    /// solution to rounding, are SciPy's `RK45`.
    Scipy,
    /// SciPy's estimate, then up to three more rounds while its cap `100·h0` binds, each
    /// measuring the second derivative again over the larger trial step (as CVODE iterates its
    /// initial step); one right-hand side evaluation per round. From `y0 = 0` SciPy's rule
    /// starts at 10⁻⁴ of whatever scale and grows ×10 per step; here the first step is the
    /// estimate `h1` itself (the `ode` eval of GradBench: 5 forward steps instead of 8).
    Refined,
}

/// Which part of the adjoint state the backward solves' error control measures
/// ([`GradMethod::Adjoint`] and [`GradMethod::Backsolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdjointNorm {
    /// The state `y` (backsolve) and the adjoint `a` only. The parameter cotangent
    /// `p̄ = -∫ aᵀ∂f/∂p dt` is a quadrature: nothing in the system depends on it, so its error
    /// cannot grow through the dynamics, and measuring it only makes the steps smaller (Kidger,
    /// Chen & Lyons, "Hey, that's not an ODE: Faster ODE Adjoints via Seminorms", ICML 2021:
    /// the same accuracy with fewer steps; CVODES leaves quadratures out of error control by
    /// default too). Also skips forming `p̄`'s error estimate on every step.
    Seminorm,
    /// Every component, `p̄` included (torchdiffeq's default).
    Full,
}

impl Default for OdeOptions {
    fn default() -> Self {
        OdeOptions {
            method: Method::Dopri5,
            rtol: 1e-6,
            atol: 1e-9,
            max_steps: 100_000,
            grad: GradMethod::Adjoint,
            adjoint_norm: AdjointNorm::Seminorm,
            first_step: FirstStep::Scipy,
        }
    }
}

impl OdeOptions {
    fn scheme(&self) -> (Scheme, Control) {
        let refine = self.first_step == FirstStep::Refined;
        let adaptive = Control::Adaptive { rtol: self.rtol, atol: self.atol, refine };
        match self.method {
            Method::Rk4 { dt } => (Scheme::Explicit(&RK4), Control::Fixed { dt }),
            Method::Dopri5 => (Scheme::Explicit(&DOPRI5), adaptive),
            Method::Tsit5 => (Scheme::Explicit(&TSIT5), adaptive),
            Method::Rosenbrock23 => (Scheme::Rosenbrock23, adaptive),
        }
    }
}

/// Counters of one forward solve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OdeStats {
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected step attempts.
    pub rejected: usize,
    /// Evaluations of `f`.
    pub nfev: usize,
}

/// Solve `dy/dt = f(y, t, params)`, `y(ts[0]) = y0`; the states at `ts`, stacked on a new
/// leading axis. Differentiable in `y0` and `params` by the method in `opts.grad`.
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::ode::{odeint, OdeOptions};
/// // dy/dt = -k y: y(1) = exp(-k), d y(1) / dk = -exp(-k).
/// let o = OdeOptions { rtol: 1e-10, atol: 1e-12, ..OdeOptions::default() };
/// let y0 = Tensor::from_vec(vec![1.0f64], &[1]);
/// let ys = odeint(|y: &Tensor, _t, k: &Tensor| -(y * k), &y0, &[0.0, 1.0], &Tensor::scalar(0.5f64), &o);
/// assert_eq!(ys.shape(), &[2, 1]);
/// assert!((ys.to_vec::<f64>()[1] - (-0.5f64).exp()).abs() < 1e-9);
/// let dk = grad(|k: &Tensor| odeint(|y: &Tensor, _t, k: &Tensor| -(y * k), &y0, &[0.0, 1.0], k, &o).sum())(
///     &Tensor::scalar(0.5f64),
/// );
/// assert!((dk.item() + (-0.5f64).exp()).abs() < 1e-8);
/// ```
pub fn odeint<P, F>(f: F, y0: &Tensor, ts: &[f64], params: &P, opts: &OdeOptions) -> Tensor
where
    P: Params + 'static,
    F: Fn(&Tensor, f64, &P) -> Tensor + 'static,
{
    check_times(ts);
    match opts.grad {
        GradMethod::Direct => forward(&f, y0, ts, params, opts),
        GradMethod::Adjoint | GradMethod::Backsolve => {
            let solver = grad::adjoint_solver(Rc::new(f), ts.to_vec(), *opts);
            solver(&(y0.clone(), params.map_tensors(&mut |t| t.clone())))
        }
    }
}

/// The counters of the forward solve [`odeint`] would run (on plain values).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::ode::{odeint_stats, OdeOptions};
/// let y0 = Tensor::from_vec(vec![1.0f64], &[1]);
/// let s = odeint_stats(|y: &Tensor, _t, _p: &()| -y, &y0, &[0.0, 1.0], &(), &OdeOptions::default());
/// assert!(s.accepted > 0 && s.nfev >= 6 * s.accepted);
/// ```
pub fn odeint_stats<P, F>(f: F, y0: &Tensor, ts: &[f64], params: &P, opts: &OdeOptions) -> OdeStats
where
    P: Params,
    F: Fn(&Tensor, f64, &P) -> Tensor,
{
    check_times(ts);
    let run = solve(&f, y0, ts, params, opts);
    OdeStats { accepted: run.accepted, rejected: run.rejected, nfev: run.nfev }
}

fn solve<P>(
    f: &dyn Fn(&Tensor, f64, &P) -> Tensor,
    y0: &Tensor,
    ts: &[f64],
    p: &P,
    opts: &OdeOptions,
) -> Run {
    let (scheme, ctl) = opts.scheme();
    let rhs = |y: &[Tensor], t: f64| vec![f(&y[0], t, p)];
    integrate(&rhs, Leaves::ALL, std::slice::from_ref(y0), ts, scheme, ctl, opts.max_steps, false)
}

/// The forward solve with tensor ops, stacked.
fn forward<P>(
    f: &dyn Fn(&Tensor, f64, &P) -> Tensor,
    y0: &Tensor,
    ts: &[f64],
    p: &P,
    opts: &OdeOptions,
) -> Tensor {
    let run = solve(f, y0, ts, p, opts);
    let outs: Vec<&Tensor> = run.outs.iter().map(|s| &s[0]).collect();
    Tensor::stack(&outs, 0)
}

#[track_caller]
fn check_times(ts: &[f64]) {
    assert!(!ts.is_empty(), "adjoint: odeint: ts must hold at least the start time");
    let up = ts.windows(2).all(|w| w[1] >= w[0]);
    let down = ts.windows(2).all(|w| w[1] <= w[0]);
    assert!(up || down, "adjoint: odeint: ts must be monotonic (got {ts:?})");
    assert!(ts.iter().all(|t| t.is_finite()), "adjoint: odeint: ts must be finite");
}
