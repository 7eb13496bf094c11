//! `ode`: fourth-order Runge–Kutta for `y₀' = x₀`, `yᵢ' = xᵢ yᵢ₋₁`, `s` steps to `t = 2`;
//! the gradient is that of the last component of `y(2)` with respect to `x`.
//!
//! Tensor tier: each stage is a handful of whole-vector ops (a shift by one via `narrow` and
//! `concat`), so `4s` stages cost a few dozen tensor ops however large `n` is, and reverse
//! mode records them on the tape.

use adjoint_core::{value_and_grad, Tensor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::tensor;
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    x: Vec<f64>,
    s: usize,
}

/// `z₀ = x₀`, `zᵢ = xᵢ yᵢ₋₁`.
fn ode_fun(x: &Tensor, y: &Tensor) -> Tensor {
    let n = x.shape()[0];
    if n == 1 {
        return x.clone();
    }
    let head = x.narrow(0, 0, 1);
    let tail = &x.narrow(0, 1, n - 1) * &y.narrow(0, 0, n - 1);
    Tensor::concat(&[&head, &tail], 0)
}

/// `y(2)` after `s` RK4 steps from `y(0) = 0`.
pub fn primal(x: &Tensor, s: usize) -> Tensor {
    let h = 2.0 / s as f64;
    let mut y = x.zeros_like();
    for _ in 0..s {
        let k1 = ode_fun(x, &y);
        let k2 = ode_fun(x, &(&y + &(&k1 * (h / 2.0))));
        let k3 = ode_fun(x, &(&y + &(&k2 * (h / 2.0))));
        let k4 = ode_fun(x, &(&y + &(&k3 * h)));
        let sum = &(&(&k1 + &(&k2 * 2.0)) + &(&k3 * 2.0)) + &k4;
        y = &y + &(&sum * (h / 6.0));
    }
    y
}

/// Evaluate `primal` or `gradient`.
pub fn evaluate(function: &str, input: &Value) -> Option<Result<Evaluated, String>> {
    let inp: Input = match parse("ode", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    if inp.x.is_empty() || inp.s == 0 {
        return Some(Err("ode: x must be non-empty and s positive".into()));
    }
    let n = inp.x.len();
    let x = tensor(&inp.x, &[n]);
    let s = inp.s;
    Some(Ok(match function {
        "primal" => timed(input, || primal(&x, s), |y| json!(y.to_vec::<f64>())),
        "gradient" => timed(
            input,
            || value_and_grad(|x: &Tensor| primal(x, s).narrow(0, n - 1, 1).sum())(&x).1,
            |g| json!(g.to_vec::<f64>()),
        ),
        _ => return None,
    }))
}
