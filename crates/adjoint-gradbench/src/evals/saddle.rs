//! `saddle`: Pearlmutter & Siskind's saddle-point benchmark — `min over p₁ of max over p₂`
//! of `(x₁² + y₁²) - (x₂² + y₂²)`, both by gradient descent, the outer gradient
//! differentiating through the inner solver. The four functions pick the outer and inner
//! modes: `ff`, `fr`, `rf`, `rr`.
//!
//! Tensor tier, for the same reason as `particle`: reverse-over-reverse.
//!
//! Limits: all the descents of one run (the outer one and every inner one) share one
//! [`Budget`] of [`Limits::max_iterations`]; running out, or a non-finite objective (a start
//! such as `[1e300, 0]`), is an error.

use adjoint_core::Tensor;
use serde::Deserialize;
use serde_json::{json, Value};

use super::gd::{argmax, argmin, gradient, Mode};
use crate::limits::{Budget, Limits};
use crate::{parse, try_timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    start: [f64; 2],
}

/// `(x₁² + y₁²) - (x₂² + y₂²)` for `p1`, `p2` of shape `[2]`.
fn objective(p1: &Tensor, p2: &Tensor) -> Tensor {
    &(p1 * p1).sum() - &(p2 * p2).sum()
}

/// `max over p₂` of the objective, from `start`, with the inner gradient by `inner`; `NaN`,
/// with the reason recorded in `budget`, when the inner descent fails.
fn max_primal(inner: Mode, p1: &Tensor, start: &Tensor, budget: &Budget) -> Tensor {
    let f = |p2: &Tensor| objective(p1, p2);
    let g = |p2: &Tensor| gradient(inner, &f, p2);
    match argmax(&f, &g, start, budget) {
        Ok(p2) => objective(p1, &p2),
        Err(e) => {
            budget.fail(|| e);
            p1.sum() * f64::NAN
        }
    }
}

/// `[p₁, p₂]` at the saddle point found from `start`, within `limits`.
pub fn solve(outer: Mode, inner: Mode, start: [f64; 2], limits: &Limits) -> Result<Vec<f64>, String> {
    let budget = limits.budget();
    let s = Tensor::from_vec(start.to_vec(), &[2]);
    let f = |p1: &Tensor| max_primal(inner, p1, &s, &budget);
    let g = |p1: &Tensor| gradient(outer, &f, p1);
    let r1 = argmin(&f, &g, &s, &budget)?;
    let f2 = |p2: &Tensor| objective(&r1, p2);
    let g2 = |p2: &Tensor| gradient(inner, &f2, p2);
    let r2 = argmax(&f2, &g2, &s, &budget)?;
    Ok([r1.to_vec::<f64>(), r2.to_vec::<f64>()].concat())
}

/// Evaluate `ff`, `fr`, `rf` or `rr`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    let (outer, inner) = Mode::pair(function)?;
    let inp: Input = match parse("saddle", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    Some(try_timed(
        input,
        || solve(outer, inner, inp.start, limits).map_err(|e| format!("saddle.{function}: {e}")),
        |v| json!(v),
    ))
}
