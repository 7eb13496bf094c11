//! `llsq`: `y(x) = ½ Σᵢ (sᵢ - Σⱼ xⱼ tᵢʲ)²` with `tᵢ = -1 + 2i/(n-1)`, `sᵢ = sign(tᵢ)`.
//!
//! Tensor tier: the powers `tᵢʲ` form a constant matrix, so the residual is one
//! vector-matrix product and reverse mode gives the gradient through `matmul`'s rule (one more
//! product, with the transpose read through its strides).
//!
//! The powers are built inside the timed function, transposed (`Pᵀ[j, i] = tᵢʲ`) so that row
//! `j` is row `j - 1` times `t` elementwise: one vectorisable pass per power instead of a
//! loop-carried product per entry, and no copy into a tensor (`from_vec` takes the buffer).
//! They are built a block of rows at a time (1 MiB), each block consumed by its product while
//! still in cache, rather than as one `n × m` matrix (16 MB at `n = 16392`) written out to
//! memory and read back; the gradient is accumulated block by block the same way.

use adjoint_core::{grad, Tensor};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::limits::{product, Limits};
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    x: Vec<f64>,
    n: usize,
}

/// Powers per block of rows (1 MiB of `f64`: a block is built and multiplied while in cache).
const BLOCK_POWERS: usize = 1 << 17;

/// For rows `lo..hi`: the constants `Pᵀ[j, i] = tᵢʲ` (`[m, hi - lo]`) and `s` (`[hi - lo]`).
fn design(lo: usize, hi: usize, n: usize, m: usize) -> (Tensor, Tensor) {
    let t: Vec<f64> =
        (lo..hi).map(|i| if n > 1 { -1.0 + i as f64 * 2.0 / (n as f64 - 1.0) } else { -1.0 }).collect();
    let s: Vec<f64> = t
        .iter()
        .map(|&t| {
            if t > 0.0 {
                1.0
            } else if t < 0.0 {
                -1.0
            } else {
                0.0
            }
        })
        .collect();
    let w = hi - lo;
    let mut pt = vec![1.0; w * m];
    for j in 1..m {
        let (done, rest) = pt.split_at_mut(j * w);
        for ((p, &q), &t) in rest[..w].iter_mut().zip(&done[(j - 1) * w..]).zip(&t) {
            *p = q * t;
        }
    }
    (Tensor::from_vec(pt, &[m, w]), Tensor::from_vec(s, &[w]))
}

/// Rows `lo..hi`'s share of the objective, `½ Σᵢ (sᵢ - Σⱼ xⱼ tᵢʲ)²`.
pub fn block_objective(x: &Tensor, lo: usize, hi: usize, n: usize) -> Tensor {
    let (pt, s) = design(lo, hi, n, x.shape()[0]);
    let r = &s - &x.matmul(&pt);
    (&r * &r).sum() * 0.5
}

/// The row blocks `lo..hi` covering `0..n` for `x` of length `m`.
fn blocks(n: usize, m: usize) -> impl Iterator<Item = (usize, usize)> {
    let rows = (BLOCK_POWERS / m).max(1);
    (0..n).step_by(rows).map(move |lo| (lo, (lo + rows).min(n)))
}

/// The objective for `x` of length `m`: the sum of the blocks' shares.
pub fn primal(x: &Tensor, n: usize) -> f64 {
    blocks(n, x.shape()[0]).map(|(lo, hi)| block_objective(x, lo, hi, n).item()).sum()
}

/// The gradient: the sum of the blocks' gradients, each by reverse mode on its own (a
/// derivative is linear, so this is the gradient of the sum). Each block's tape, with its
/// powers as residual, is released before the next block is built, so the working set stays
/// one block.
pub fn gradient(x: &Tensor, n: usize) -> Tensor {
    blocks(n, x.shape()[0])
        .map(|(lo, hi)| grad(|x: &Tensor| block_objective(x, lo, hi, n))(x))
        .reduce(|a, b| &a + &b)
        .expect("n is positive")
}

/// Evaluate `primal` or `gradient`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    let inp: Input = match parse("llsq", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    if inp.x.is_empty() || inp.n == 0 {
        return Some(Err("llsq: x and n must be non-empty".into()));
    }
    // n rows of m powers each, built one block of at least a row at a time.
    let (n, m) = (inp.n as u64, inp.x.len() as u64);
    let block = (BLOCK_POWERS as u64).max(m);
    let checked =
        limits.check_steps(&format!("llsq: n = {n} rows × {m} powers"), product(&[n, m])).and_then(|_| {
            limits.check_memory(&format!("llsq: a block of powers for {m} unknowns"), product(&[block, 4]), 8)
        });
    if let Err(e) = checked {
        return Some(Err(e));
    }
    let x = Tensor::from_slice(&inp.x, &[inp.x.len()]);
    let n = inp.n;
    Some(Ok(match function {
        "primal" => timed(input, || primal(&x, n), |v| json!(v)),
        "gradient" => timed(input, || gradient(&x, n), |g| json!(g.to_vec::<f64>())),
        _ => return None,
    }))
}
