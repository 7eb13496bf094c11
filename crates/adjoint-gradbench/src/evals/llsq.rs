//! `llsq`: `y(x) = ½ Σᵢ (sᵢ - Σⱼ xⱼ tᵢʲ)²` with `tᵢ = -1 + 2i/(n-1)`, `sᵢ = sign(tᵢ)`.
//!
//! Tensor tier: the powers `tᵢʲ` form a constant `n × m` matrix `P` (built inside the timed
//! function), so the residual is one matrix-vector product and reverse mode gives the
//! gradient through `matmul`'s rule.

use adjoint_core::{value_and_grad, Tensor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::tensor;
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    x: Vec<f64>,
    n: usize,
}

/// The constants `P[i, j] = tᵢʲ` and `s`.
fn design(n: usize, m: usize) -> (Tensor, Tensor) {
    let mut p = vec![0.0; n * m];
    let mut s = vec![0.0; n];
    for i in 0..n {
        let t = if n > 1 { -1.0 + i as f64 * 2.0 / (n as f64 - 1.0) } else { -1.0 };
        s[i] = if t > 0.0 {
            1.0
        } else if t < 0.0 {
            -1.0
        } else {
            0.0
        };
        let mut mul = 1.0;
        for v in &mut p[i * m..(i + 1) * m] {
            *v = mul;
            mul *= t;
        }
    }
    (tensor(&p, &[n, m]), tensor(&s, &[n]))
}

/// The objective for `x` of length `m`.
pub fn primal(x: &Tensor, n: usize) -> Tensor {
    let (p, s) = design(n, x.shape()[0]);
    let r = &s - &p.matmul(x);
    (&r * &r).sum() * 0.5
}

/// Evaluate `primal` or `gradient`.
pub fn evaluate(function: &str, input: &Value) -> Option<Result<Evaluated, String>> {
    let inp: Input = match parse("llsq", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    if inp.x.is_empty() || inp.n == 0 {
        return Some(Err("llsq: x and n must be non-empty".into()));
    }
    let x = tensor(&inp.x, &[inp.x.len()]);
    let n = inp.n;
    Some(Ok(match function {
        "primal" => timed(input, || primal(&x, n).item(), |v| json!(v)),
        "gradient" => {
            timed(input, || value_and_grad(|x: &Tensor| primal(x, n))(&x).1, |g| json!(g.to_vec::<f64>()))
        }
        _ => return None,
    }))
}
