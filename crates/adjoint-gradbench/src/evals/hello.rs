//! `hello`: `square(x) = x²` and `double(x)`, its derivative by forward mode.

use serde_json::{json, Value};

use crate::{parse, Evaluated, Limits, Runs};

/// `x²`, generic so the same code is differentiated.
fn square<T: adjoint_scalar::Real>(x: T) -> T {
    x * x
}

/// Evaluate `square` or `double` (no `Runs` fields: one timed run; a scalar needs no limits).
pub fn evaluate(function: &str, input: &Value, _limits: &Limits) -> Option<Result<Evaluated, String>> {
    let x: f64 = match parse("hello", input) {
        Ok(x) => x,
        Err(e) => return Some(Err(e)),
    };
    let runs = Runs { min_runs: 1, min_seconds: 0.0 };
    let (out, timings) = match function {
        "square" => runs.repeat(|| square(x)),
        "double" => runs.repeat(|| adjoint_scalar::derivative(square, x)),
        _ => return None,
    };
    Some(Ok(Evaluated { output: json!(out), timings }))
}
