//! `particle`: Pearlmutter & Siskind's charged-particle benchmark — gradient descent on the
//! control `w`, where the objective integrates the particle with naive Euler steps whose
//! acceleration is itself a gradient. Nested AD; the four functions pick the outer (argmin)
//! and inner (Euler) modes: `ff`, `fr`, `rf`, `rr`.
//!
//! Tensor tier: the `Var` tape is `f64`-only, so reverse-over-reverse needs tensors, and using
//! one implementation for all four keeps them comparable.
//!
//! Limits: the Euler steps of every objective evaluation and the descent's own iterations
//! share one [`Budget`] of [`Limits::max_iterations`] per run, and a trajectory that becomes
//! non-finite (a `w` such as `1e300` puts a charge at infinity) stops the solve: either is an
//! error, where the loop `while x₁ > 0` would otherwise never end.

use adjoint_core::Tensor;
use serde::Deserialize;
use serde_json::{json, Value};

use super::gd::{argmin, gradient, Mode};
use crate::limits::{Budget, Limits, ITERATIONS_ENV};
use crate::{parse, try_timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    w: f64,
}

/// `Σ 1/‖p - x‖` over the charges `p` (each `[2]`), for `x` `[2]`.
fn accel(charges: &[Tensor; 2], x: &Tensor) -> Tensor {
    let mut a = Tensor::scalar(0.0f64);
    for p in charges {
        let d = p - x;
        a = &a + &(&d * &d).sum().sqrt().recip();
    }
    a
}

/// Euler steps one trajectory may take (`t ≤ 1000`; the benchmark's trajectories land within a
/// few hundred). A particle that escapes upwards (a large `w` removes the charge that pushes it
/// down) would otherwise fly forever.
pub const MAX_EULER_STEPS: usize = 10_000;

/// `x₀(t_f)²` for the control `w` (`[1]`), with the inner gradient by `inner`; `NaN`, with the
/// reason recorded in `budget`, when the budget runs out, the particle has not landed within
/// [`MAX_EULER_STEPS`], or the trajectory is not finite.
fn objective(inner: Mode, w: &Tensor, budget: &Budget) -> Tensor {
    let w0 = w.reshape(&[1]);
    let ten = Tensor::from_vec(vec![10.0f64], &[1]);
    let charges = [Tensor::concat(&[&ten, &(10.0 - &w0)], 0), Tensor::from_vec(vec![10.0f64, 0.0], &[2])];
    let mut x = Tensor::from_vec(vec![0.0f64, 8.0], &[2]);
    let mut xdot = Tensor::from_vec(vec![0.75f64, 0.0], &[2]);
    let dt = 0.1;
    for _ in 0..MAX_EULER_STEPS {
        if !budget.take() {
            budget.fail(|| {
                format!(
                    "the iteration limit of {} (descent and Euler steps; set {ITERATIONS_ENV}) was reached at w = {:?}",
                    budget.limit(),
                    w.item()
                )
            });
            return w.sum() * f64::NAN;
        }
        let xddot = -gradient(inner, &|x: &Tensor| accel(&charges, x), &x);
        x = &x + &(&xdot * dt);
        let (x1, v1) = (x.narrow(0, 1, 1), xdot.narrow(0, 1, 1));
        if !x.value().to_vec::<f64>().iter().chain(&xddot.value().to_vec::<f64>()).all(|v| v.is_finite()) {
            budget.fail(|| format!("the trajectory is not finite for w = {:?}", w.item()));
            return w.sum() * f64::NAN;
        }
        if x1.item() <= 0.0 {
            let dt_f = -(&x1 / &v1);
            let x_tf = &x + &(&xdot * &dt_f);
            let x0 = x_tf.narrow(0, 0, 1);
            return (&x0 * &x0).sum();
        }
        xdot = &xdot + &(&xddot * dt);
    }
    budget.fail(|| {
        format!(
            "the particle has not reached the ground after {MAX_EULER_STEPS} Euler steps (t = {}) for w = {:?}",
            MAX_EULER_STEPS as f64 * dt,
            w.item()
        )
    });
    w.sum() * f64::NAN
}

/// The optimised control `w` from the start `w0`, within `limits`.
pub fn solve(outer: Mode, inner: Mode, w0: f64, limits: &Limits) -> Result<f64, String> {
    let budget = limits.budget();
    let f = |w: &Tensor| objective(inner, w, &budget);
    let g = |w: &Tensor| gradient(outer, &f, w);
    let w = argmin(&f, &g, &Tensor::from_vec(vec![w0], &[1]), &budget)?;
    Ok(w.item())
}

/// Evaluate `ff`, `fr`, `rf` or `rr`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    let (outer, inner) = Mode::pair(function)?;
    let inp: Input = match parse("particle", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    Some(try_timed(
        input,
        || solve(outer, inner, inp.w, limits).map_err(|e| format!("particle.{function}: {e}")),
        |w| json!(w),
    ))
}
