//! `saddle`: Pearlmutter & Siskind's saddle-point benchmark — `min over p₁ of max over p₂`
//! of `(x₁² + y₁²) - (x₂² + y₂²)`, both by gradient descent, the outer gradient
//! differentiating through the inner solver. The four functions pick the outer and inner
//! modes: `ff`, `fr`, `rf`, `rr`.
//!
//! Tensor tier, for the same reason as `particle`: reverse-over-reverse.

use adjoint_core::Tensor;
use serde::Deserialize;
use serde_json::{json, Value};

use super::gd::{argmax, argmin, gradient, Mode};
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    start: [f64; 2],
}

/// `(x₁² + y₁²) - (x₂² + y₂²)` for `p1`, `p2` of shape `[2]`.
fn objective(p1: &Tensor, p2: &Tensor) -> Tensor {
    &(p1 * p1).sum() - &(p2 * p2).sum()
}

/// `max over p₂` of the objective, from `start`, with the inner gradient by `inner`.
fn max_primal(inner: Mode, p1: &Tensor, start: &Tensor) -> Tensor {
    let f = |p2: &Tensor| objective(p1, p2);
    let g = |p2: &Tensor| gradient(inner, &f, p2);
    let p2 = argmax(&f, &g, start);
    objective(p1, &p2)
}

/// `[p₁, p₂]` at the saddle point found from `start`.
pub fn solve(outer: Mode, inner: Mode, start: [f64; 2]) -> Vec<f64> {
    let s = Tensor::from_vec(start.to_vec(), &[2]);
    let f = |p1: &Tensor| max_primal(inner, p1, &s);
    let g = |p1: &Tensor| gradient(outer, &f, p1);
    let r1 = argmin(&f, &g, &s);
    let f2 = |p2: &Tensor| objective(&r1, p2);
    let g2 = |p2: &Tensor| gradient(inner, &f2, p2);
    let r2 = argmax(&f2, &g2, &s);
    [r1.to_vec::<f64>(), r2.to_vec::<f64>()].concat()
}

/// Evaluate `ff`, `fr`, `rf` or `rr`.
pub fn evaluate(function: &str, input: &Value) -> Option<Result<Evaluated, String>> {
    let (outer, inner) = Mode::pair(function)?;
    let inp: Input = match parse("saddle", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(timed(input, || solve(outer, inner, inp.start), |v| json!(v))))
}
