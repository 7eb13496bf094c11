//! A terminal event: integrate until a function of the state crosses zero, and differentiate
//! the crossing time and state.
//!
//! The crossing is located on plain values (the solver's steps, then bisection on the dense
//! output of the step where the event function changes sign). Its derivative comes from the
//! implicit function theorem: with `g(y(t*; θ), t*, θ) = 0`,
//!
//! ```text
//! dt*/dθ = −(∂g/∂y · dy/dθ + ∂g/∂θ) / D,   D = ∂g/∂y · f(y*, t*) + ∂g/∂t,
//! dy(t*)/dθ = dy/dθ|t* + f(y*, t*) dt*/dθ.
//! ```
//!
//! It is built from differentiable pieces (when `y0` or the parameters are traced; otherwise the
//! located state is returned as it is): `y_c = odeint(f, y0, [t0, t_c], θ)` to the located
//! time `t_c` (with `opts.grad`, so the adjoint methods keep their memory bound),
//! `t* = t_c − g(y_c, t_c, θ) / D` with `D` held constant, and `y* = y_c + f(y_c, t_c, θ)(t* − t_c)`.
//! Their values are those of the located crossing (`g(y_c) ≈ 0`), their first derivatives the
//! formulas above. Second derivatives miss the terms from `D`'s own dependence on `θ`, so
//! differentiate an event once (a gradient, a Jacobian), not twice. `∂g/∂t` is a forward
//! difference (`t` is a plain number); `D = 0` (the trajectory grazes the surface) has no
//! derivative and gives infinities.

use std::rc::Rc;

use adjoint_core::{stop_gradient, vjp, Params, Tensor};

use super::integrate::{integrate_until, Leaves};
use super::{check_times, odeint, OdeOptions};

/// Where [`odeint_event`] stopped.
#[derive(Clone, Debug)]
pub struct Event {
    /// The event's time (a scalar), or `t_max` when it did not fire.
    pub t: Tensor,
    /// The state at `t`.
    pub y: Tensor,
    /// Whether the event fired before `t_max`.
    pub fired: bool,
}

/// Solve `dy/dt = f(y, t, params)` from `y(t0) = y0` until `event(y, t, params)` (a scalar)
/// changes sign, or until `t_max`. The time and state of the crossing are differentiable in
/// `y0` and `params` (first order; see the module docs), with the gradient method of `opts`.
/// A zero of the event at `t0` itself does not count. Like [`odeint`], it does not batch
/// under `vmap` (the crossing time is found on plain values).
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::ode::{odeint_event, OdeOptions};
/// // A ball thrown up at v from height 1 under gravity 9.81: lands at t* = (v + √(v² + 2g)) / g.
/// let fall = |z: &Tensor, _t: f64, g: &Tensor| {
///     Tensor::concat(&[&z.narrow(0, 1, 1), &-g.reshape(&[1])], 0)
/// };
/// let height = |z: &Tensor, _t: f64, _g: &Tensor| z.narrow(0, 0, 1).sum();
/// let o = OdeOptions { rtol: 1e-10, atol: 1e-12, ..OdeOptions::default() };
/// let g = Tensor::scalar(9.81f64);
/// let land = |v: &Tensor| {
///     let z0 = Tensor::concat(&[&Tensor::from_vec(vec![1.0f64], &[1]), &v.reshape(&[1])], 0);
///     odeint_event(fall, &z0, 0.0, 10.0, &g, height, &o).t
/// };
/// let v = 3.0f64;
/// let root = (v * v + 2.0 * 9.81).sqrt();
/// assert!((land(&Tensor::scalar(v)).item() - (v + root) / 9.81).abs() < 1e-9);
/// let dt_dv = grad(land)(&Tensor::scalar(v)).item();
/// assert!((dt_dv - (1.0 + v / root) / 9.81).abs() < 1e-7);
/// ```
#[track_caller]
pub fn odeint_event<P, F, G>(
    f: F,
    y0: &Tensor,
    t0: f64,
    t_max: f64,
    params: &P,
    event: G,
    opts: &OdeOptions,
) -> Event
where
    P: Params + 'static,
    F: Fn(&Tensor, f64, &P) -> Tensor + 'static,
    G: Fn(&Tensor, f64, &P) -> Tensor,
{
    check_times(&[t0, t_max]);
    let f = Rc::new(f);
    let shared = |f: &Rc<F>| {
        let f = f.clone();
        move |y: &Tensor, t: f64, p: &P| f(y, t, p)
    };
    let scalar = |g: Tensor| -> f64 {
        assert!(
            g.numel() == 1,
            "adjoint: odeint_event: the event function must return one number (got shape {:?})",
            g.shape()
        );
        g.item()
    };
    // Locate the crossing on plain values.
    let (yd, pd) = (stop_gradient(y0), params.map_tensors(&mut |t| stop_gradient(t)));
    let (scheme, ctl) = opts.scheme();
    let rhs = |y: &[Tensor], t: f64| vec![f(&y[0], t, &pd)];
    let stop = |y: &[Tensor], t: f64| scalar(event(&y[0], t, &pd));
    let run = integrate_until(
        &rhs,
        Leaves::ALL,
        &[yd],
        &[t0, t_max],
        scheme,
        ctl,
        opts.max_steps,
        false,
        Some(&stop),
    );
    // Nothing to differentiate: the located state is the answer (no second solve).
    let traced = y0.is_tracer() || params.leaves().iter().any(Tensor::is_tracer);
    if !traced {
        let t = Tensor::full_of(&[], run.event.unwrap_or(t_max), y0.dtype());
        let y = run.outs.into_iter().last().expect("the end state").remove(0);
        return Event { t, y, fired: run.event.is_some() };
    }
    let last = |ys: Tensor| {
        let n = ys.shape()[0];
        ys.narrow(0, n - 1, 1).reshape(&ys.shape()[1..])
    };
    let Some(tc) = run.event else {
        let y = last(odeint(shared(&f), y0, &[t0, t_max], params, opts));
        return Event { t: Tensor::full_of(&[], t_max, y0.dtype()), y, fired: false };
    };
    let yc = last(odeint(shared(&f), y0, &[t0, tc], params, opts));
    // D = dg/dt along the trajectory at the crossing, a constant.
    let ycd = stop_gradient(&yc);
    let (g0, pb) = vjp(|y: &Tensor| event(y, tc, &pd).reshape(&[]), &ycd);
    let gy = pb(&Tensor::full_of(&[], 1.0, g0.dtype()));
    let dt = f64::EPSILON.sqrt() * tc.abs().max(1.0) * (t_max - t0).signum();
    let gt = (scalar(event(&ycd, tc + dt, &pd)) - g0.item()) / dt;
    let d = (gy * f(&ycd, tc, &pd)).sum().item() + gt;
    let t = Tensor::full_of(&[], tc, y0.dtype()) - event(&yc, tc, params).reshape(&[]) * (1.0 / d);
    let y = &yc + f(&yc, tc, params) * (&t - tc);
    Event { t, y, fired: true }
}
