//! `lse`: `LSE(x) = a + log Σ exp(x - a)` with `a = max x`, built from primitives (max,
//! subtract, exp, sum, log) and differentiated by reverse mode on the tensor tier.

use adjoint_core::{value_and_grad, Tensor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::tensor;
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    x: Vec<f64>,
}

/// The log-sum-exp trick, spelled out in primitives (not a fused builtin).
pub fn lse(x: &Tensor) -> Tensor {
    let a = x.max();
    &a + &(x - &a).exp().sum().log()
}

/// Evaluate `primal` or `gradient`.
pub fn evaluate(function: &str, input: &Value) -> Option<Result<Evaluated, String>> {
    let inp: Input = match parse("lse", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    if inp.x.is_empty() {
        return Some(Err("lse: x is empty".into()));
    }
    let x = tensor(&inp.x, &[inp.x.len()]);
    Some(Ok(match function {
        "primal" => timed(input, || lse(&x).item(), |v| json!(v)),
        "gradient" => timed(input, || value_and_grad(lse)(&x).1, |g| json!(g.to_vec::<f64>())),
        _ => return None,
    }))
}
