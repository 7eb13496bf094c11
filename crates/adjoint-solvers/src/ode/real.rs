//! odeint on the scalar tier: the same solver over `adjoint-scalar`'s generic scalars.
//!
//! A tensor op costs about a microsecond however small the tensor, and an ODE of a few states
//! spends hundreds of ops per step; on `Var`'s arena tape an operation costs nanoseconds. So
//! small systems (a predator–prey model, a robot arm's few joints) are integrated here with
//! the right-hand side written over any [`Real`]: `f64` to solve, `Var` for reverse mode and
//! `Dual`/`DualVec` for forward mode through the steps (the `Direct` method; step sizes come
//! from plain values, as in [`odeint`](super::odeint)). The steps, step control and dense
//! output are the tensor solver's own (one driver, generic over the state's leaves).

use adjoint_scalar::Real;

use super::integrate::{integrate, Leaves, Sc};
use super::{check_times, Method, OdeOptions};

/// Solve `dy/dt = f(y, t, p)`, `y(ts[0]) = y0`, over scalars of any [`Real`] type; the states at
/// `ts`. Derivatives come from the scalar type (reverse with `Var`, forward with `Dual`), through
/// the solver's steps; `opts.grad` is not used. Explicit methods only (`Rosenbrock23` needs the
/// tensor tier's linear algebra: use [`odeint`](super::odeint)).
///
/// ```
/// use adjoint_scalar::{gradient, Real, Var};
/// use adjoint_solvers::ode::{odeint_real, OdeOptions};
/// // dy/dt = -k y: y(1) = exp(-k), d y(1) / dk = -exp(-k).
/// fn decay<T: Real>(y: &[T], _t: f64, k: &[T]) -> Vec<T> {
///     vec![-(y[0] * k[0])]
/// }
/// let o = OdeOptions { rtol: 1e-10, atol: 1e-12, ..OdeOptions::default() };
/// let ys = odeint_real(decay, &[1.0f64], &[0.0, 1.0], &[0.5], &o);
/// assert!((ys[1][0] - (-0.5f64).exp()).abs() < 1e-9);
/// let g = gradient(|k: &[Var]| odeint_real(decay, &[Var::constant(1.0)], &[0.0, 1.0], k, &o)[1][0], &[0.5]);
/// assert!((g[0] + (-0.5f64).exp()).abs() < 1e-8);
/// ```
#[track_caller]
pub fn odeint_real<T, F>(f: F, y0: &[T], ts: &[f64], p: &[T], opts: &OdeOptions) -> Vec<Vec<T>>
where
    T: Real,
    F: Fn(&[T], f64, &[T]) -> Vec<T>,
{
    check_times(ts);
    assert!(
        opts.method != Method::Rosenbrock23,
        "adjoint: odeint_real: Rosenbrock23 is available on tensors only (use ode::odeint)"
    );
    let n = y0.len();
    let (scheme, ctl) = opts.scheme();
    let rhs = |s: &[Sc<T>], t: f64| -> Vec<Sc<T>> {
        let y: Vec<T> = s.iter().map(|x| x.0).collect();
        let d = f(&y, t, p);
        assert!(d.len() == n, "adjoint: odeint_real: f returned {} components for a state of {n}", d.len());
        d.into_iter().map(Sc).collect()
    };
    let y0: Vec<Sc<T>> = y0.iter().map(|&v| Sc(v)).collect();
    let run = integrate(&rhs, Leaves::ALL, &y0, ts, scheme, ctl, opts.max_steps, false);
    run.outs.into_iter().map(|s| s.into_iter().map(|x| x.0).collect()).collect()
}
