//! The Runge–Kutta driver shared by the forward solve, the re-integration of checkpointed
//! intervals and the backward (adjoint) solves.
//!
//! The state is a list of leaves integrated together, generic over the leaf type ([`Leaf`]):
//! tensors (`[y]` for the user's ODE, `[a, p̄…]` or `[y, a, p̄…]` for the adjoint systems), or
//! the scalars of `adjoint-scalar` (one leaf per component, [`Sc`]). Stage combinations are the
//! leaves' own arithmetic, so the solve is differentiable when it runs on traced tensors or on
//! `Var`/`Dual` scalars (the `Direct` gradient); step sizes and the error norm are read from
//! plain values and are constants to every transform.
//!
//! Adaptive stepping follows SciPy's `RK45` (Hairer, Nørsett & Wanner II.4): the error norm
//! is the RMS of `err / (atol + rtol·max(|y|, |y_new|))` (for tensors formed and measured in
//! one pass, [`Leaf::err_sumsq`], never stored), a step is accepted when it is below
//! 1, the next step is scaled by `0.9·err^(-1/5)` within `[0.2, 10]` (at most 1 right after a
//! rejection), and the first step comes from SciPy's `select_initial_step` (or, with
//! `FirstStep::Refined`, that estimate iterated while its cap binds). Output times
//! between steps are filled by the method's dense output, so they do not change the steps.

use adjoint_core::Tensor;
use adjoint_scalar::Real;

use super::rosenbrock;
use super::tableau::Tableau;

/// A step rule: an explicit Runge–Kutta tableau, or the linearly implicit Rosenbrock 2(3)
/// pair for stiff problems.
#[derive(Clone, Copy)]
pub(crate) enum Scheme {
    Explicit(&'static Tableau),
    Rosenbrock23,
}

impl Scheme {
    /// Order of the error estimator (SciPy's `error_estimator_order`).
    fn error_order(self) -> f64 {
        match self {
            Scheme::Explicit(_) => 4.0,
            Scheme::Rosenbrock23 => 2.0,
        }
    }

    /// `θ ↦ w_i(θ)` with `y(t + θh) = y + h Σ w_i(θ) k_i` over a recorded step's stages.
    pub(crate) fn dense(self, th: f64) -> [f64; 7] {
        match self {
            Scheme::Explicit(tab) => (tab.dense)(th),
            Scheme::Rosenbrock23 => rosenbrock::dense(th),
        }
    }
}

/// One attempted adaptive step.
pub(crate) struct Attempt<L = Tensor> {
    pub y_new: Vec<L>,
    /// The stages kept for dense output.
    pub k: Vec<Vec<L>>,
    /// The local error estimate.
    pub err: ErrorEstimate,
    /// `f(t + h, y_new)`.
    pub f_new: Vec<L>,
    pub nfev: usize,
}

/// A step attempt's local error estimate: its plain values (flattened over the controlled
/// leaves), or, where the driver measured it as it formed it, its norm already.
pub(crate) enum ErrorEstimate {
    Values(Vec<f64>),
    /// The RMS norm of [`error_norm`].
    Norm(f64),
}

/// The tensor state: a list of tensors integrated together.
pub(crate) type State = Vec<Tensor>;
/// The right-hand side `(state, t) -> d state / dt`.
pub(crate) type Rhs<'a, L = Tensor> = dyn Fn(&[L], f64) -> Vec<L> + 'a;

/// What the driver needs of a state's leaves: `acc + c·self`, `self + acc`, the plain values,
/// and (tensors only) the linearly implicit step.
pub(crate) trait Leaf: Clone {
    /// What the implicit step keeps across rejected attempts of one step.
    type Lin: Default;
    /// `acc + c·self` (`c·self` when there is no `acc`).
    fn scaled_add(&self, acc: Option<Self>, c: f64) -> Self;
    /// `self + other`.
    fn plus(&self, other: Self) -> Self;
    /// `y + Σ cᵢ·ksᵢ` as `y + ((c₀·k₀ + c₁·k₁) + …)` (at least one term).
    fn combine(y: &Self, ks: &[&Self], cs: &[f64]) -> Self {
        combine_by_ops(y, ks, cs)
    }
    /// `Σⱼ (eⱼ / (atol + rtol·max(|yⱼ|, |zⱼ|)))²` over the plain values of `e = Σ cᵢ·ksᵢ`
    /// (accumulated in `f64` in the order of the terms; `0` with no terms): a step's error
    /// estimate for this leaf, measured against its start `y` and end `z`. `tol` is
    /// `(rtol, atol)`.
    fn err_sumsq(ks: &[&Self], cs: &[f64], y: &Self, z: &Self, tol: (f64, f64)) -> f64 {
        err_sumsq_by_values(ks, cs, y, z, tol)
    }
    /// Call `f` with the plain values (borrowed where they are contiguous `f64`).
    fn with_values(&self, f: &mut dyn FnMut(&[f64]));
    /// Number of values.
    fn len(&self) -> usize;
    /// One attempt of the Rosenbrock 2(3) pair.
    fn rosenbrock(
        rhs: &Rhs<Self>,
        t: f64,
        y: &[Self],
        f0: &[Self],
        h: f64,
        lin: &mut Self::Lin,
    ) -> Attempt<Self>;
}

impl Leaf for Tensor {
    type Lin = rosenbrock::Linearisation;
    fn scaled_add(&self, acc: Option<Self>, c: f64) -> Self {
        let term = self * c;
        match acc {
            None => term,
            Some(a) => a + term,
        }
    }
    fn plus(&self, other: Self) -> Self {
        self + other
    }
    /// Plain values (no transform tracing them: the forward solve inside a custom VJP, the
    /// backward solves) are combined in one pass by [`Array::lincomb`], which gives the bits of
    /// the op-by-op form that traced values take.
    ///
    /// [`Array::lincomb`]: adjoint_tensor::Array::lincomb
    fn combine(y: &Self, ks: &[&Self], cs: &[f64]) -> Self {
        let same = |k: &&Tensor| k.shape() == y.shape() && k.dtype() == y.dtype();
        if y.is_tracer() || ks.iter().any(|k| k.is_tracer() || !same(k)) || !y.dtype().is_float() {
            return combine_by_ops(y, ks, cs);
        }
        let arrays: Vec<&adjoint_tensor::Array> = ks.iter().map(|k| k.value()).collect();
        Tensor::from_array(adjoint_tensor::Array::lincomb(Some(y.value()), &arrays, cs))
    }
    /// Float values of one dtype and shape (traced or not: only the values are read) in one
    /// pass by [`Array::lincomb_weighted_sumsq`](adjoint_tensor::Array::lincomb_weighted_sumsq),
    /// without forming the estimate (before, it was formed, copied into a flat vector and read
    /// again: four passes over the leaf and a fresh allocation per attempt); other values
    /// element by element.
    fn err_sumsq(ks: &[&Self], cs: &[f64], y: &Self, z: &Self, tol: (f64, f64)) -> f64 {
        let same = |k: &Tensor| k.shape() == y.shape() && k.dtype() == y.dtype();
        if ks.is_empty() || !y.dtype().is_float() || !same(z) || !ks.iter().all(|k| same(k)) {
            return err_sumsq_by_values(ks, cs, y, z, tol);
        }
        let arrays: Vec<&adjoint_tensor::Array> = ks.iter().map(|k| k.value()).collect();
        adjoint_tensor::Array::lincomb_weighted_sumsq(&arrays, cs, y.value(), z.value(), tol)
    }
    fn with_values(&self, f: &mut dyn FnMut(&[f64])) {
        let a = self.value();
        match a.as_slice::<f64>() {
            Some(s) => f(s),
            None => f(&a.to_vec::<f64>()),
        }
    }
    fn len(&self) -> usize {
        self.numel()
    }
    fn rosenbrock(rhs: &Rhs, t: f64, y: &[Self], f0: &[Self], h: f64, lin: &mut Self::Lin) -> Attempt {
        rosenbrock::attempt(rhs, t, y, f0, h, lin)
    }
}

/// [`Leaf::combine`] op by op, through the leaves' own arithmetic.
fn combine_by_ops<L: Leaf>(y: &L, ks: &[&L], cs: &[f64]) -> L {
    let mut acc: Option<L> = None;
    for (k, &c) in ks.iter().zip(cs) {
        acc = Some(k.scaled_add(acc, c));
    }
    y.plus(acc.expect("at least one term"))
}

/// A scalar of `adjoint-scalar` (`f64`, `Var`, `Dual`, …) as one leaf of a state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sc<T>(pub T);

impl<T: Real> Leaf for Sc<T> {
    type Lin = ();
    fn scaled_add(&self, acc: Option<Self>, c: f64) -> Self {
        let term = self.0 * T::lit(c);
        Sc(match acc {
            None => term,
            Some(a) => a.0 + term,
        })
    }
    fn plus(&self, other: Self) -> Self {
        Sc(self.0 + other.0)
    }
    fn with_values(&self, f: &mut dyn FnMut(&[f64])) {
        f(&[self.0.value()])
    }
    fn len(&self) -> usize {
        1
    }
    fn rosenbrock(_: &Rhs<Self>, _: f64, _: &[Self], _: &[Self], _: f64, _: &mut ()) -> Attempt<Self> {
        unreachable!("odeint_real refuses Rosenbrock23 before integrating")
    }
}

const SAFETY: f64 = 0.9;
const MIN_FACTOR: f64 = 0.2;
const MAX_FACTOR: f64 = 10.0;

/// How steps are chosen.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Control {
    /// Equal steps of at most `dt` on each interval between output times.
    Fixed { dt: f64 },
    /// Error-controlled steps; `refine`: the first step by `FirstStep::Refined`.
    Adaptive { rtol: f64, atol: f64, refine: bool },
}

/// One accepted step, kept for dense interpolation: start time, signed size, start state and
/// stages (with the FSAL stage last for the adaptive pairs).
pub(crate) struct Step<L = Tensor> {
    pub t: f64,
    pub h: f64,
    pub y: Vec<L>,
    pub k: Vec<Vec<L>>,
}

/// The states at the output times and the solver's counters.
pub(crate) struct Run<L = Tensor> {
    pub outs: Vec<Vec<L>>,
    pub accepted: usize,
    pub rejected: usize,
    pub nfev: usize,
    /// The accepted steps (when asked for).
    pub steps: Vec<Step<L>>,
    /// The time the terminal event fired, if it did.
    pub event: Option<f64>,
}

/// `y + h Σ w_i k_i` leaf by leaf (zero weights skipped).
pub(crate) fn lincomb<L: Leaf>(y: &[L], ks: &[Vec<L>], w: &[f64], h: f64) -> Vec<L> {
    y.iter()
        .enumerate()
        .map(|(l, yl)| {
            let (terms, cs): (Vec<&L>, Vec<f64>) =
                ks.iter().zip(w).filter(|(_, wi)| **wi != 0.0).map(|(k, wi)| (&k[l], h * wi)).unzip();
            if terms.is_empty() {
                yl.clone()
            } else {
                L::combine(yl, &terms, &cs)
            }
        })
        .collect()
}

/// The plain values of a state, flattened.
pub(crate) fn values<L: Leaf>(s: &[L]) -> Vec<f64> {
    let mut out = Vec::new();
    for l in s {
        l.with_values(&mut |v| out.extend_from_slice(v));
    }
    out
}

/// [`Leaf::err_sumsq`] element by element on the plain values, in `f64`.
fn err_sumsq_by_values<L: Leaf>(ks: &[&L], cs: &[f64], y: &L, z: &L, tol: (f64, f64)) -> f64 {
    // A scalar leaf (`odeint_real`: one leaf per component) without allocating.
    let mut one = [0.0];
    let mut many = Vec::new();
    let e: &mut [f64] = if y.len() == 1 {
        &mut one
    } else {
        many.resize(y.len(), 0.0);
        &mut many
    };
    for (k, &c) in ks.iter().zip(cs) {
        k.with_values(&mut |v| {
            for (o, x) in e.iter_mut().zip(v) {
                *o += c * x;
            }
        });
    }
    let mut sum = 0.0;
    y.with_values(&mut |yv| z.with_values(&mut |zv| sum = scaled_sumsq(e, yv, zv, tol)));
    sum
}

/// `Σ (eⱼ / (atol + rtol·max(|yⱼ|, |zⱼ|)))²`, `tol = (rtol, atol)`.
fn scaled_sumsq(e: &[f64], y: &[f64], z: &[f64], (rtol, atol): (f64, f64)) -> f64 {
    let mut sum = 0.0;
    for ((e, y0), y1) in e.iter().zip(y).zip(z) {
        let r = e / (atol + y0.abs().max(y1.abs()) * rtol);
        sum += r * r;
    }
    sum
}

/// The RMS over the flattened state of `err / (atol + rtol·max(|y|, |y_new|))`, on borrowed
/// values (the Rosenbrock step's estimate; the explicit pairs measure theirs as they form it).
fn error_norm<L: Leaf>(err: &[f64], y: &[L], y_new: &[L], tol: (f64, f64)) -> f64 {
    let (mut sum, mut at) = (0.0, 0);
    for (a, b) in y.iter().zip(y_new) {
        a.with_values(&mut |yv| {
            b.with_values(&mut |ynv| sum += scaled_sumsq(&err[at..at + yv.len()], yv, ynv, tol));
            at += yv.len();
        });
    }
    rms_of_sum(sum, at)
}

/// `sqrt(sum / n)`, `0` for no values.
fn rms_of_sum(sum: f64, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        (sum / n as f64).sqrt()
    }
}

/// Which leaves of a state the right-hand side reads and the step control measures. The
/// leaves from `reads` on are quadratures (the adjoint's parameter cotangent `p̄`): nothing
/// reads them, so their stage values are never formed ([`stage_input`]); and only the first
/// `controlled` leaves enter the error norm — with `controlled = reads`, the "seminorm" of
/// Kidger, Chen & Lyons (2021), which is also CVODES's default for quadratures.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Leaves {
    pub reads: usize,
    pub controlled: usize,
}

impl Leaves {
    /// Every leaf read and controlled.
    pub const ALL: Leaves = Leaves { reads: usize::MAX, controlled: usize::MAX };
}

/// The state a stage evaluates the right-hand side at: `y + h Σ wᵢ kᵢ` for the first `reads`
/// leaves, and the other leaves as they are in `y` — they are quadratures (the adjoint's
/// parameter cotangent `p̄`), which the right-hand side never reads, so forming their stage
/// values would only cost passes over them (a fifth of the backsolve adjoint's stage work).
fn stage_input<L: Leaf>(y: &[L], ks: &[Vec<L>], w: &[f64], h: f64, leaves: Leaves) -> Vec<L> {
    let reads = leaves.reads;
    if reads >= y.len() {
        return lincomb(y, ks, w, h);
    }
    let mut yi = lincomb(&y[..reads], ks, w, h);
    yi.extend_from_slice(&y[reads..]);
    yi
}

/// The stages of one step from `(t, y)` of size `h` (`k0`: the known first stage); the
/// right-hand side reads only `leaves.reads` leaves of its state ([`stage_input`]).
fn stages<L: Leaf>(
    rhs: &Rhs<L>,
    tab: &Tableau,
    t: f64,
    y: &[L],
    h: f64,
    k0: Option<Vec<L>>,
    leaves: Leaves,
) -> Vec<Vec<L>> {
    let mut k = Vec::with_capacity(tab.c.len() + 1);
    k.push(k0.unwrap_or_else(|| rhs(y, t)));
    for s in 1..tab.c.len() {
        let yi = stage_input(y, &k[..s], tab.a[s], h, leaves);
        k.push(rhs(&yi, t + tab.c[s] * h));
    }
    k
}

/// The explicit step of `tab` from `(t, y)` with known `f(t, y)`, its FSAL stage and the norm
/// of its error estimate under `tol = (rtol, atol)`.
#[allow(clippy::too_many_arguments)]
fn explicit<L: Leaf>(
    rhs: &Rhs<L>,
    tab: &Tableau,
    t: f64,
    y: &[L],
    f: &[L],
    h: f64,
    leaves: Leaves,
    tol: (f64, f64),
) -> Attempt<L> {
    let mut k = stages(rhs, tab, t, y, h, Some(f.to_vec()), leaves);
    let y_new = lincomb(y, &k, tab.b, h);
    k.push(rhs(&y_new, t + h));
    // The error of the controlled leaves only (see `Leaves`).
    let (mut sum, mut count) = (0.0, 0);
    for l in 0..y.len().min(leaves.controlled) {
        let (terms, cs): (Vec<&L>, Vec<f64>) =
            k.iter().zip(tab.e).filter(|(_, w)| **w != 0.0).map(|(ks, w)| (&ks[l], h * w)).unzip();
        sum += L::err_sumsq(&terms, &cs, &y[l], &y_new[l], tol);
        count += y[l].len();
    }
    let f_new = k.last().expect("FSAL stage").clone();
    Attempt { y_new, nfev: k.len() - 1, k, err: ErrorEstimate::Norm(rms_of_sum(sum, count)), f_new }
}

/// A terminal event: integration stops at the first time the function of `(state, t)`
/// changes sign (a zero at the start does not count); the time is located on the dense
/// output to rounding.
pub(crate) type Stop<'a, L = Tensor> = dyn Fn(&[L], f64) -> f64 + 'a;

/// Integrate from `ts[0]` through the output times `ts` (monotonic, either direction), with
/// `leaves` saying which leaves of the state the right-hand side reads and the step control
/// measures ([`Leaves::ALL`]: every one).
#[allow(clippy::too_many_arguments)]
pub(crate) fn integrate<L: Leaf>(
    rhs: &Rhs<L>,
    leaves: Leaves,
    y0: &[L],
    ts: &[f64],
    scheme: Scheme,
    ctl: Control,
    max_steps: usize,
    record: bool,
) -> Run<L> {
    integrate_until(rhs, leaves, y0, ts, scheme, ctl, max_steps, record, None)
}

/// [`integrate`], stopping at the event `stop` when it fires: then `event` holds its time
/// and the last output is the state there.
#[allow(clippy::too_many_arguments)]
pub(crate) fn integrate_until<L: Leaf>(
    rhs: &Rhs<L>,
    leaves: Leaves,
    y0: &[L],
    ts: &[f64],
    scheme: Scheme,
    ctl: Control,
    max_steps: usize,
    record: bool,
    stop: Option<&Stop<L>>,
) -> Run<L> {
    let mut run =
        Run { outs: vec![y0.to_vec()], accepted: 0, rejected: 0, nfev: 0, steps: Vec::new(), event: None };
    match (ctl, scheme) {
        (Control::Fixed { dt }, Scheme::Explicit(tab)) => {
            fixed(rhs, leaves, y0, ts, tab, dt, max_steps, record, stop, &mut run)
        }
        (Control::Fixed { .. }, Scheme::Rosenbrock23) => {
            unreachable!("the Rosenbrock method is adaptive only")
        }
        (Control::Adaptive { rtol, atol, refine }, _) => {
            let tol = (rtol, atol);
            adaptive(rhs, leaves, y0, ts, scheme, tol, refine, max_steps, record, stop, &mut run)
        }
    }
    run
}

/// After an accepted step `(t, h)` from `y` with stages `k` to `y_new`: whether the event fired
/// within it (then its time and state are recorded in `run`); otherwise `g` (the event's last
/// non-zero value) moves to the step's end.
#[allow(clippy::too_many_arguments)]
fn event_in_step<L: Leaf>(
    stop: Option<&Stop<L>>,
    g: &mut Option<f64>,
    scheme: Scheme,
    (t, h): (f64, f64),
    y: &[L],
    k: &[Vec<L>],
    y_new: &[L],
    run: &mut Run<L>,
) -> bool {
    let (Some(stop), Some(g0)) = (stop, *g) else { return false };
    let dense = |th: f64| lincomb(y, k, &scheme.dense(th), h);
    let g1 = stop(y_new, t + h);
    match locate(stop, g0, g1, t, h, &dense) {
        Some(th) => {
            run.event = Some(t + th * h);
            run.outs.push(dense(th));
            true
        }
        None => {
            *g = Some(g1).filter(|v| *v != 0.0).or(*g);
            false
        }
    }
}

/// Whether the event, `g0` at the start of a step of size `h` from `t` and `g1` at its end,
/// fired within the step: then the fraction `θ` of the step where it changes sign, by
/// bisection on the step's dense output (`dense(θ)`) to rounding.
fn locate<L: Leaf>(
    stop: &Stop<L>,
    g0: f64,
    g1: f64,
    t: f64,
    h: f64,
    dense: &dyn Fn(f64) -> Vec<L>,
) -> Option<f64> {
    let fired = (g0 < 0.0 && g1 >= 0.0) || (g0 > 0.0 && g1 <= 0.0);
    if !fired {
        return None;
    }
    if g1 == 0.0 {
        return Some(1.0);
    }
    // Bisection in θ: g(θ=lo) has g0's sign, g(θ=hi) the other.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi || (hi - lo) * h.abs() <= 4.0 * f64::EPSILON * (t.abs() + h.abs()) {
            break;
        }
        let gm = stop(&dense(mid), t + mid * h);
        if gm == 0.0 {
            return Some(mid);
        }
        if (gm < 0.0) == (g0 < 0.0) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi)
}

#[allow(clippy::too_many_arguments)]
fn fixed<L: Leaf>(
    rhs: &Rhs<L>,
    leaves: Leaves,
    y0: &[L],
    ts: &[f64],
    tab: &'static Tableau,
    dt: f64,
    max: usize,
    record: bool,
    stop: Option<&Stop<L>>,
    run: &mut Run<L>,
) {
    assert!(dt > 0.0, "adjoint: odeint: the fixed step dt must be positive (got {dt})");
    let mut y = y0.to_vec();
    let mut g = stop.map(|s| s(&y, ts[0]));
    for w in ts.windows(2) {
        let delta = w[1] - w[0];
        let n = ((delta.abs() / dt) - 1e-9).ceil().max(1.0) as usize;
        let h = delta / n as f64;
        for j in 0..n {
            too_many(run.accepted, max);
            let t = w[0] + j as f64 * h;
            let k = stages(rhs, tab, t, &y, h, None, leaves);
            run.nfev += k.len();
            let y_new = lincomb(&y, &k, tab.b, h);
            run.accepted += 1;
            let fired = event_in_step(stop, &mut g, Scheme::Explicit(tab), (t, h), &y, &k, &y_new, run);
            if record {
                run.steps.push(Step { t, h, y: y.clone(), k });
            }
            if fired {
                return;
            }
            y = y_new;
        }
        run.outs.push(y.clone());
    }
}

/// SciPy's `select_initial_step` for a method whose error estimator has order `order`, refined
/// while its cap binds (see the body), and the number of right-hand side evaluations it took.
#[allow(clippy::too_many_arguments)]
fn initial_step<L: Leaf>(
    rhs: &Rhs<L>,
    leaves: Leaves,
    t0: f64,
    y0: &[L],
    f0: &[L],
    dir: f64,
    span: f64,
    tol: (f64, f64),
    order: f64,
    rounds: usize,
) -> (f64, usize) {
    let (rtol, atol) = tol;
    let c = y0.len().min(leaves.controlled);
    // RMS norms over the controlled leaves, read in place (collecting them was a fresh
    // allocation per solve, page-faulted in: 2–3% of the `ode` eval's gradient).
    let n: usize = y0[..c].iter().map(Leaf::len).sum();
    // `rms((a − b) / (atol + rtol·|y0|))` (`b = 0` when absent) over the controlled leaves.
    let scaled_rms = |a: &[L], b: Option<&[L]>| {
        let mut sum = 0.0;
        for (l, y) in y0[..c].iter().enumerate() {
            y.with_values(&mut |yv| {
                a[l].with_values(&mut |av| {
                    let mut add = |bv: Option<&[f64]>| {
                        for (j, (y, v)) in yv.iter().zip(av).enumerate() {
                            let r = (v - bv.map_or(0.0, |b| b[j])) / (atol + y.abs() * rtol);
                            sum += r * r;
                        }
                    };
                    match b {
                        None => add(None),
                        Some(b) => b[l].with_values(&mut |bv| add(Some(bv))),
                    }
                })
            });
        }
        rms_of_sum(sum, n)
    };
    let d0 = scaled_rms(y0, None);
    let d1 = scaled_rms(f0, None);
    let mut h0 = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 } else { 0.01 * d0 / d1 };
    h0 = h0.min(span);
    // SciPy's estimate, then (`FirstStep::Refined`, not SciPy) up to `rounds` more while its
    // cap `100·h0` binds: the second derivative measured again over the larger trial step, as
    // CVODE's iterated initial step does. From `y0 = 0` SciPy's `h0` is an arbitrary 10⁻⁶, and
    // the cap then made the first four steps a ×10-per-step ramp from 10⁻⁴ (half the steps of
    // the `ode` eval's forward solve); a round costs one evaluation of the right-hand side.
    let mut round = 0;
    loop {
        let y1 = stage_input(y0, &[f0.to_vec()], &[1.0], h0 * dir, leaves);
        let f1 = rhs(&y1, t0 + h0 * dir);
        let d2 = scaled_rms(&f1, Some(f0)) / h0;
        let h1 = if d1 <= 1e-15 && d2 <= 1e-15 {
            (h0 * 1e-3).max(1e-6)
        } else {
            (0.01 / d1.max(d2)).powf(1.0 / (order + 1.0))
        };
        let h = (100.0 * h0).min(h1).min(span);
        if round == rounds || h < 100.0 * h0 || h >= span {
            return (h, round + 1);
        }
        (h0, round) = (h, round + 1);
    }
}

/// Extra rounds of [`initial_step`]'s estimate while its `100·h0` cap binds
/// (`FirstStep::Refined`).
const REFINE: usize = 3;

#[allow(clippy::too_many_arguments)]
fn adaptive<L: Leaf>(
    rhs: &Rhs<L>,
    leaves: Leaves,
    y0: &[L],
    ts: &[f64],
    scheme: Scheme,
    tol: (f64, f64),
    refine: bool,
    max: usize,
    record: bool,
    stop: Option<&Stop<L>>,
    run: &mut Run<L>,
) {
    let (rtol, atol) = tol;
    assert!(rtol > 0.0 && atol >= 0.0, "adjoint: odeint: need rtol > 0 and atol >= 0");
    let exponent = -1.0 / (scheme.error_order() + 1.0);
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
    let mut g = stop.map(|s| s(&y, t));
    let mut f = rhs(&y, t);
    let rounds = if refine { REFINE } else { 0 };
    let (mut h_abs, evals) =
        initial_step(rhs, leaves, t, &y, &f, dir, (tend - t0).abs(), tol, scheme.error_order(), rounds);
    run.nfev += 1 + evals;
    let mut linear = L::Lin::default();
    while next < ts.len() {
        too_many(run.accepted, max);
        let min_step = 10.0 * (t.abs() * f64::EPSILON).max(f64::MIN_POSITIVE);
        h_abs = h_abs.max(min_step);
        let mut rejected = false;
        let (t_new, h, att) = loop {
            if h_abs < min_step {
                panic!("adjoint: odeint: step size too small at t = {t} (the problem may be stiff: try Method::Rosenbrock23)");
            }
            let mut t_new = t + dir * h_abs;
            if dir * (t_new - tend) > 0.0 {
                t_new = tend;
            }
            let h = t_new - t;
            h_abs = h.abs();
            let att = match scheme {
                Scheme::Explicit(tab) => explicit(rhs, tab, t, &y, &f, h, leaves, tol),
                Scheme::Rosenbrock23 => L::rosenbrock(rhs, t, &y, &f, h, &mut linear),
            };
            run.nfev += att.nfev;
            let c = y.len().min(leaves.controlled);
            let en = match &att.err {
                ErrorEstimate::Norm(en) => *en,
                ErrorEstimate::Values(err) => error_norm(err, &y[..c], &att.y_new[..c], tol),
            };
            if en < 1.0 {
                let mut factor =
                    if en == 0.0 { MAX_FACTOR } else { MAX_FACTOR.min(SAFETY * en.powf(exponent)) };
                if rejected {
                    factor = factor.min(1.0);
                }
                h_abs *= factor;
                break (t_new, h, att);
            }
            h_abs *= MIN_FACTOR.max(SAFETY * en.powf(exponent));
            rejected = true;
            run.rejected += 1;
        };
        run.accepted += 1;
        linear = L::Lin::default();
        let Attempt { y_new, k, f_new, .. } = att;
        if event_in_step(stop, &mut g, scheme, (t, h), &y, &k, &y_new, run) {
            if record {
                run.steps.push(Step { t, h, y, k });
            }
            return;
        }
        while next < ts.len() && dir * (ts[next] - t_new) <= 0.0 {
            let to = ts[next];
            let out =
                if to == t_new { y_new.clone() } else { lincomb(&y, &k, &scheme.dense((to - t) / h), h) };
            run.outs.push(out);
            next += 1;
        }
        f = f_new;
        if record {
            run.steps.push(Step { t, h, y, k });
        }
        t = t_new;
        y = y_new;
    }
}

/// The state at `t` from recorded steps (dense output of the step that contains `t`).
pub(crate) fn interp<L: Leaf>(steps: &[Step<L>], scheme: Scheme, t: f64) -> Vec<L> {
    let i = steps.partition_point(|s| (t - (s.t + s.h)) * s.h.signum() > 0.0).min(steps.len() - 1);
    let s = &steps[i];
    lincomb(&s.y, &s.k, &scheme.dense((t - s.t) / s.h), s.h)
}

#[track_caller]
fn too_many(steps: usize, max: usize) {
    if steps >= max {
        panic!("adjoint: odeint: more than max_steps = {max} steps; raise max_steps or loosen rtol/atol");
    }
}
