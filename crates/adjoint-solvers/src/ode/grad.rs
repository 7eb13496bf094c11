//! The continuous adjoint (checkpointed, or backsolve) as a custom VJP over `(y0, params)`.
//!
//! With `a(t) = ∂L/∂y(t)`, between output times `ȧ = -aᵀ ∂f/∂y` and `p̄̇ = -aᵀ ∂f/∂p`, both
//! solved backward from `t_i` to `t_{i-1}` with the forward method and tolerances; at each
//! output time `a` jumps by that output's cotangent. The vector-Jacobian products come from
//! [`vjp`] of the user's `f`, so the backward pass is itself made of adjoint ops (and
//! differentiable again).
//!
//! `y(t)` on the interval comes from
//! - `Adjoint`: the stored state at `t_{i-1}` integrated forward again, its steps kept for
//!   dense interpolation (memory of one interval's steps, off the tape);
//! - `Backsolve`: integrating `ẏ = f` backward together with the adjoint, from the stored
//!   state at `t_i`.

use std::rc::Rc;

use adjoint_core::{vjp, Params, Tensor};

use super::integrate::{integrate, interp, Leaves, State};
use super::{forward, AdjointNorm, GradMethod, OdeOptions};
use crate::solve::{implicit_solver, Solver};

fn clone_params<P: Params>(p: &P) -> P {
    p.map_tensors(&mut |t| t.clone())
}

/// odeint over fixed `ts` as a custom-VJP function of `(y0, params)`.
pub(crate) fn adjoint_solver<P, F>(f: Rc<F>, ts: Vec<f64>, o: OdeOptions) -> Solver<P>
where
    P: Params + 'static,
    F: Fn(&Tensor, f64, &P) -> Tensor + 'static,
{
    let (f1, ts1) = (f.clone(), ts.clone());
    let run = move |q: &(Tensor, P)| forward(&*f1, &q.0, &ts1, &q.1, &o);
    implicit_solver(run, move |ys: &Tensor, p: &P, ybar: &Tensor| backward(&*f, ys, p, ybar, &ts, &o))
}

/// Row `i` of a stacked `[T, ...]` tensor.
fn row(x: &Tensor, i: usize) -> Tensor {
    x.narrow(0, i, 1).reshape(&x.shape()[1..])
}

/// `(y0̄, p̄)` from the outputs `ys`, the parameters and the outputs' cotangent.
fn backward<P, F>(f: &F, ys: &Tensor, p: &P, ybar: &Tensor, ts: &[f64], o: &OdeOptions) -> (Tensor, P)
where
    P: Params,
    F: Fn(&Tensor, f64, &P) -> Tensor,
{
    let n = ts.len();
    let (scheme, ctl) = o.scheme();
    // The right-hand sides read `reads` leaves (`y` and `a`, or `a`); `p̄` is a quadrature,
    // measured by the step control only with `AdjointNorm::Full`.
    let leaves = |reads: usize| Leaves {
        reads,
        controlled: if o.adjoint_norm == AdjointNorm::Full { usize::MAX } else { reads },
    };
    // (f(y), -aᵀ∂f/∂y, -aᵀ∂f/∂p) at (y, a, t).
    let adj = |y: &Tensor, a: &Tensor, t: f64| -> (Tensor, Tensor, Vec<Tensor>) {
        let (fy, pb) = vjp(|q: &(Tensor, P)| f(&q.0, t, &q.1), &(y.clone(), clone_params(p)));
        // The products are linear in the cotangent and IEEE arithmetic is symmetric in sign, so
        // pulling back `-a` negates once (one state-sized pass) instead of every result.
        let (gy, gp) = pb(&-a);
        (fy, gy, gp.leaves())
    };
    let mut a = row(ybar, n - 1);
    let mut pbar: Vec<Tensor> = p.leaves().iter().map(|l| l.zeros_like()).collect();
    for i in (1..n).rev() {
        let back = [ts[i], ts[i - 1]];
        let state: State = std::iter::once(a).chain(pbar).collect();
        let mut end = match o.grad {
            GradMethod::Backsolve => {
                let rhs = |s: &[Tensor], t: f64| {
                    let (fy, ga, gp) = adj(&s[0], &s[1], t);
                    [fy, ga].into_iter().chain(gp).collect()
                };
                let start: State = std::iter::once(row(ys, i)).chain(state).collect();
                let mut end =
                    integrate(&rhs, leaves(2), &start, &back, scheme, ctl, o.max_steps, false).outs.pop();
                let mut end = end.take().expect("the end state");
                end.remove(0);
                end
            }
            _ => {
                let fwd = |s: &[Tensor], t: f64| vec![f(&s[0], t, p)];
                let y0 = [row(ys, i - 1)];
                let steps =
                    integrate(&fwd, Leaves::ALL, &y0, &[ts[i - 1], ts[i]], scheme, ctl, o.max_steps, true)
                        .steps;
                let rhs = |s: &[Tensor], t: f64| {
                    let y =
                        if steps.is_empty() { y0[0].clone() } else { interp(&steps, scheme, t).remove(0) };
                    let (_, ga, gp) = adj(&y, &s[0], t);
                    std::iter::once(ga).chain(gp).collect()
                };
                integrate(&rhs, leaves(1), &state, &back, scheme, ctl, o.max_steps, false)
                    .outs
                    .pop()
                    .expect("the end state")
            }
        };
        pbar = end.split_off(1);
        a = end.pop().expect("the adjoint") + row(ybar, i - 1);
    }
    (a, p.with_leaves(&pbar))
}
