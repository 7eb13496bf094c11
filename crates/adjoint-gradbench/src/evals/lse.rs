//! `lse`: `LSE(x) = a + log Σ exp(x - a)` with `a = max x`, built from primitives (max,
//! subtract, exp, sum, log) and differentiated by reverse mode on the tensor tier.
//!
//! The shift `a` is held constant (`stop_gradient`), as in adjoint's own `logsumexp` and JAX's:
//! the identity holds for every `a`, so `∂LSE/∂a = 0` and the gradient is the same, but reverse
//! mode then skips `max`'s rule (a tie mask over all `n` elements, a division and a product:
//! four more full-length passes for an exactly-zero contribution). It is the maximum *of the
//! values* (`stop_gradient(x).max()`), so the mask is not even built while recording.
//!
//! `x` is held as chunks of [`CHUNK`] elements (a layout chosen when the input is read, like
//! building the tensor itself), and the sum runs chunk by chunk: each `x - a` is consumed by
//! `exp` while it is still in cache, and every temporary is a 256 KiB buffer that the allocator
//! reuses from call to call, where one 10 MB temporary per op (at `n = 1.28·10⁶`) is fresh
//! memory the kernel has to fault in and clear. The gradient comes back per chunk.

use adjoint_core::{stop_gradient, value_and_grad, Tensor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::tensor;
use crate::limits::Limits;
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    x: Vec<f64>,
}

/// Elements per chunk of `x` (256 KiB of `f64`).
pub const CHUNK: usize = 1 << 15;

/// The log-sum-exp trick over the concatenation of the chunks `xs`, spelled out in primitives.
/// The maximum is taken of the values (`stop_gradient` first), so no transform records it.
pub fn lse(xs: &[Tensor]) -> Tensor {
    let maxes: Vec<Tensor> = xs.iter().map(|x| stop_gradient(x).max()).collect();
    let a = Tensor::stack(&maxes.iter().collect::<Vec<_>>(), 0).max();
    let sum = xs.iter().map(|x| (x - &a).exp().sum()).reduce(|s, t| &s + &t).expect("x is not empty");
    &a + &sum.log()
}

/// Evaluate `primal` or `gradient`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    let inp: Input = match parse("lse", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    if inp.x.is_empty() {
        return Some(Err("lse: x is empty".into()));
    }
    // The chunks, the gradient and two chunk-sized temporaries per chunk.
    let n = inp.x.len() as u64;
    if let Err(e) = limits
        .check_steps("lse: x", n)
        .and_then(|_| limits.check_memory("lse: copies of x", n.saturating_mul(4), 8))
    {
        return Some(Err(e));
    }
    let xs: Vec<Tensor> = inp.x.chunks(CHUNK).map(|c| tensor(c, &[c.len()])).collect();
    Some(Ok(match function {
        "primal" => timed(input, || lse(&xs).item(), |v| json!(v)),
        "gradient" => timed(
            input,
            || value_and_grad(|xs: &Vec<Tensor>| lse(xs))(&xs).1,
            |g| json!(g.iter().flat_map(|c| c.to_vec::<f64>()).collect::<Vec<f64>>()),
        ),
        _ => return None,
    }))
}
