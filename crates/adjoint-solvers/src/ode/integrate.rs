//! The Runge–Kutta driver shared by the forward solve, the re-integration of checkpointed
//! intervals and the backward (adjoint) solves.
//!
//! The state is a list of tensors (`[y]` for the user's ODE, `[a, p̄…]` or `[y, a, p̄…]` for the
//! adjoint systems). Stage combinations are tensor ops, so the solve is differentiable when
//! it runs on traced values (the `Direct` gradient); step sizes and the error norm are read
//! from plain values and are constants to every transform.
//!
//! Adaptive stepping follows SciPy's `RK45` (Hairer, Nørsett & Wanner II.4): the error norm
//! is the RMS of `err / (atol + rtol·max(|y|, |y_new|))`, a step is accepted when it is below
//! 1, the next step is scaled by `0.9·err^(-1/5)` within `[0.2, 10]` (at most 1 right after a
//! rejection), and the first step comes from SciPy's `select_initial_step`. Output times
//! between steps are filled by the method's dense output, so they do not change the steps.

use std::borrow::Cow;

use adjoint_core::Tensor;

use super::tableau::Tableau;

/// The state: a list of tensors integrated together.
pub(crate) type State = Vec<Tensor>;
/// The right-hand side `(state, t) -> d state / dt`.
pub(crate) type Rhs<'a> = dyn Fn(&[Tensor], f64) -> State + 'a;

const SAFETY: f64 = 0.9;
const MIN_FACTOR: f64 = 0.2;
const MAX_FACTOR: f64 = 10.0;
/// `-1 / (error estimator order + 1)` for the 5(4) pairs.
const EXPONENT: f64 = -1.0 / 5.0;

/// How steps are chosen.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Control {
    /// Equal steps of at most `dt` on each interval between output times.
    Fixed { dt: f64 },
    /// Error-controlled steps.
    Adaptive { rtol: f64, atol: f64 },
}

/// One accepted step, kept for dense interpolation: start time, signed size, start state and
/// stages (with the FSAL stage last for the adaptive pairs).
pub(crate) struct Step {
    pub t: f64,
    pub h: f64,
    pub y: State,
    pub k: Vec<State>,
}

/// The states at the output times and the solver's counters.
pub(crate) struct Run {
    pub outs: Vec<State>,
    pub accepted: usize,
    pub rejected: usize,
    pub nfev: usize,
    /// The accepted steps (when asked for).
    pub steps: Vec<Step>,
}

/// `y + h Σ w_i k_i` leaf by leaf (zero weights skipped).
pub(crate) fn lincomb(y: &[Tensor], ks: &[State], w: &[f64], h: f64) -> State {
    y.iter()
        .enumerate()
        .map(|(l, yl)| {
            let mut acc: Option<Tensor> = None;
            for (k, wi) in ks.iter().zip(w) {
                if *wi == 0.0 {
                    continue;
                }
                let term = &k[l] * (h * wi);
                acc = Some(match acc {
                    None => term,
                    Some(a) => a + term,
                });
            }
            match acc {
                None => yl.clone(),
                Some(a) => yl + a,
            }
        })
        .collect()
}

/// The plain values of a state, flattened.
fn values(s: &[Tensor]) -> Vec<f64> {
    let mut v = Vec::with_capacity(s.iter().map(|t| t.numel()).sum());
    for t in s {
        v.extend_from_slice(&leaf_values(t));
    }
    v
}

/// The plain values of one leaf, borrowed when they are contiguous `f64`.
fn leaf_values(t: &Tensor) -> Cow<'_, [f64]> {
    let a = t.value();
    match a.as_slice::<f64>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.to_vec()),
    }
}

/// The RMS over every element of the state of `err / (atol + rtol·max(|y|, |y_new|))`, with
/// `err = h Σ e_i k_i` the embedded error estimate. Leaf by leaf on borrowed values, so a step
/// copies nothing (this runs once per step attempt over the whole state).
fn error_norm(y: &[Tensor], y_new: &[Tensor], k: &[State], e: &[f64], h: f64, tol: (f64, f64)) -> f64 {
    let (rtol, atol) = tol;
    let (mut sum, mut count) = (0.0, 0usize);
    let mut err = Vec::new();
    for (l, (yl, ynl)) in y.iter().zip(y_new).enumerate() {
        let (yv, ynv) = (leaf_values(yl), leaf_values(ynl));
        err.clear();
        err.resize(yv.len(), 0.0);
        for (ks, &w) in k.iter().zip(e) {
            if w != 0.0 {
                for (acc, kj) in err.iter_mut().zip(leaf_values(&ks[l]).iter()) {
                    *acc += kj * w;
                }
            }
        }
        for ((ej, yj), ynj) in err.iter().zip(yv.iter()).zip(ynv.iter()) {
            let r = ej * h / (atol + yj.abs().max(ynj.abs()) * rtol);
            sum += r * r;
        }
        count += yv.len();
    }
    if count == 0 {
        0.0
    } else {
        (sum / count as f64).sqrt()
    }
}

fn rms(x: impl Iterator<Item = f64>, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    (x.map(|v| v * v).sum::<f64>() / n as f64).sqrt()
}

/// The stages of one step from `(t, y)` of size `h` (`k0`: the known first stage).
fn stages(rhs: &Rhs, tab: &Tableau, t: f64, y: &[Tensor], h: f64, k0: Option<State>) -> Vec<State> {
    let mut k = Vec::with_capacity(tab.c.len() + 1);
    k.push(k0.unwrap_or_else(|| rhs(y, t)));
    for s in 1..tab.c.len() {
        let yi = lincomb(y, &k[..s], tab.a[s], h);
        k.push(rhs(&yi, t + tab.c[s] * h));
    }
    k
}

/// Integrate from `ts[0]` through the output times `ts` (monotonic, either direction).
#[allow(clippy::too_many_arguments)]
pub(crate) fn integrate(
    rhs: &Rhs,
    y0: &[Tensor],
    ts: &[f64],
    tab: &Tableau,
    ctl: Control,
    max_steps: usize,
    record: bool,
) -> Run {
    let mut run = Run { outs: vec![y0.to_vec()], accepted: 0, rejected: 0, nfev: 0, steps: Vec::new() };
    match ctl {
        Control::Fixed { dt } => fixed(rhs, y0, ts, tab, dt, max_steps, record, &mut run),
        Control::Adaptive { rtol, atol } => {
            adaptive(rhs, y0, ts, tab, (rtol, atol), max_steps, record, &mut run)
        }
    }
    run
}

#[allow(clippy::too_many_arguments)]
fn fixed(
    rhs: &Rhs,
    y0: &[Tensor],
    ts: &[f64],
    tab: &Tableau,
    dt: f64,
    max: usize,
    record: bool,
    run: &mut Run,
) {
    assert!(dt > 0.0, "adjoint: odeint: the fixed step dt must be positive (got {dt})");
    let mut y = y0.to_vec();
    for w in ts.windows(2) {
        let delta = w[1] - w[0];
        let n = ((delta.abs() / dt) - 1e-9).ceil().max(1.0) as usize;
        let h = delta / n as f64;
        for j in 0..n {
            too_many(run.accepted, max);
            let t = w[0] + j as f64 * h;
            let k = stages(rhs, tab, t, &y, h, None);
            run.nfev += k.len();
            let y_new = lincomb(&y, &k, tab.b, h);
            if record {
                run.steps.push(Step { t, h, y: y.clone(), k });
            }
            run.accepted += 1;
            y = y_new;
        }
        run.outs.push(y.clone());
    }
}

/// SciPy's `select_initial_step` for a method whose error estimator has order 4.
fn initial_step(
    rhs: &Rhs,
    t0: f64,
    y0: &[Tensor],
    f0: &[Tensor],
    dir: f64,
    span: f64,
    tol: (f64, f64),
) -> f64 {
    let (rtol, atol) = tol;
    let (yv, fv) = (values(y0), values(f0));
    let n = yv.len();
    let scale: Vec<f64> = yv.iter().map(|y| atol + y.abs() * rtol).collect();
    let d0 = rms(yv.iter().zip(&scale).map(|(y, s)| y / s), n);
    let d1 = rms(fv.iter().zip(&scale).map(|(f, s)| f / s), n);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 } else { 0.01 * d0 / d1 };
    let h0 = h0.min(span);
    let y1 = lincomb(y0, &[f0.to_vec()], &[1.0], h0 * dir);
    let f1 = values(&rhs(&y1, t0 + h0 * dir));
    let d2 = rms(f1.iter().zip(&fv).zip(&scale).map(|((a, b), s)| (a - b) / s), n) / h0;
    let h1 =
        if d1 <= 1e-15 && d2 <= 1e-15 { (h0 * 1e-3).max(1e-6) } else { (0.01 / d1.max(d2)).powf(1.0 / 5.0) };
    (100.0 * h0).min(h1).min(span)
}

#[allow(clippy::too_many_arguments)]
fn adaptive(
    rhs: &Rhs,
    y0: &[Tensor],
    ts: &[f64],
    tab: &Tableau,
    tol: (f64, f64),
    max: usize,
    record: bool,
    run: &mut Run,
) {
    let (rtol, atol) = tol;
    assert!(rtol > 0.0 && atol >= 0.0, "adjoint: odeint: need rtol > 0 and atol >= 0");
    let (t0, tend) = (ts[0], *ts.last().expect("at least one output time"));
    let mut next = 1;
    while next < ts.len() && ts[next] == t0 {
        run.outs.push(y0.to_vec());
        next += 1;
    }
    if next == ts.len() {
        return;
    }
    let dir = (tend - t0).signum();
    let (mut t, mut y) = (t0, y0.to_vec());
    let mut f = rhs(&y, t);
    let mut h_abs = initial_step(rhs, t, &y, &f, dir, (tend - t0).abs(), tol);
    run.nfev += 2;
    while next < ts.len() {
        too_many(run.accepted, max);
        let min_step = 10.0 * (t.abs() * f64::EPSILON).max(f64::MIN_POSITIVE);
        h_abs = h_abs.max(min_step);
        let mut rejected = false;
        let (t_new, h, y_new, k) = loop {
            if h_abs < min_step {
                panic!("adjoint: odeint: step size too small at t = {t} (the problem may be stiff)");
            }
            let mut t_new = t + dir * h_abs;
            if dir * (t_new - tend) > 0.0 {
                t_new = tend;
            }
            let h = t_new - t;
            h_abs = h.abs();
            let mut k = stages(rhs, tab, t, &y, h, Some(f.clone()));
            let y_new = lincomb(&y, &k, tab.b, h);
            k.push(rhs(&y_new, t_new));
            run.nfev += k.len() - 1;
            let en = error_norm(&y, &y_new, &k, tab.e, h, tol);
            if en < 1.0 {
                let mut factor =
                    if en == 0.0 { MAX_FACTOR } else { MAX_FACTOR.min(SAFETY * en.powf(EXPONENT)) };
                if rejected {
                    factor = factor.min(1.0);
                }
                h_abs *= factor;
                break (t_new, h, y_new, k);
            }
            h_abs *= MIN_FACTOR.max(SAFETY * en.powf(EXPONENT));
            rejected = true;
            run.rejected += 1;
        };
        run.accepted += 1;
        while next < ts.len() && dir * (ts[next] - t_new) <= 0.0 {
            let to = ts[next];
            let out =
                if to == t_new { y_new.clone() } else { lincomb(&y, &k, &(tab.dense)((to - t) / h), h) };
            run.outs.push(out);
            next += 1;
        }
        f = k.last().expect("FSAL stage").clone();
        if record {
            run.steps.push(Step { t, h, y, k });
        }
        t = t_new;
        y = y_new;
    }
}

/// The state at `t` from recorded steps (dense output of the step that contains `t`).
pub(crate) fn interp(steps: &[Step], tab: &Tableau, t: f64) -> State {
    let i = steps.partition_point(|s| (t - (s.t + s.h)) * s.h.signum() > 0.0).min(steps.len() - 1);
    let s = &steps[i];
    lincomb(&s.y, &s.k, &(tab.dense)((t - s.t) / s.h), s.h)
}

#[track_caller]
fn too_many(steps: usize, max: usize) {
    if steps >= max {
        panic!("adjoint: odeint: more than max_steps = {max} steps; raise max_steps or loosen rtol/atol");
    }
}
