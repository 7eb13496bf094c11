//! `gmm`: the ADBench Gaussian mixture log-posterior and its gradient.
//!
//! Tensor tier, vectorised over points and components: each component's triangular factor
//! `Qₖ` is gathered from `exp(qₖ)` and `lₖ` by one `index_select`, and `Qₖ (xᵢ - μₖ)` for all
//! `i, k` is one matrix product `X · [Q₁ᵀ … Q_Kᵀ]` minus `μₖ Qₖᵀ` — an `n·K·d²` GEMM instead
//! of `n·K` small triangular products. Reverse mode differentiates it (two more GEMMs).

use adjoint_core::{value_and_grad, DType, Tensor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::tensor;
use crate::limits::{check_len, product, sum, Limits};
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    d: usize,
    k: usize,
    n: usize,
    x: Vec<Vec<f64>>,
    m: i64,
    gamma: f64,
    alpha: Vec<f64>,
    mu: Vec<Vec<f64>>,
    q: Vec<Vec<f64>>,
    l: Vec<Vec<f64>>,
}

/// Problem constants (everything that is not differentiated).
pub struct Consts {
    d: usize,
    k: usize,
    n: usize,
    m: f64,
    gamma: f64,
    x: Tensor,
    /// Where each entry of `Qₖ` (row-major `d × d`) comes from in `[exp(qₖ), lₖ, 0]`.
    q_index: Tensor,
}

impl Consts {
    /// Constants for `n` points `x` (`[n, d]`, f64), `k` components, Wishart `m` and `gamma`.
    pub fn new(d: usize, k: usize, n: usize, m: f64, gamma: f64, x: Tensor) -> Consts {
        let ld = d * (d - 1) / 2;
        let mut idx = vec![(d + ld) as i64; d * d];
        for r in 0..d {
            idx[r * d + r] = r as i64;
        }
        // ADBench packs the strictly lower triangle column by column.
        let mut li = 0;
        for col in 0..d {
            for row in col + 1..d {
                idx[row * d + col] = (d + li) as i64;
                li += 1;
            }
        }
        Consts { d, k, n, m, gamma, x, q_index: Tensor::from_vec(idx, &[d * d]) }
    }
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7; relative error ~1e-15). A constant of the problem.
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The log-posterior for parameters `(alpha [k], mu [k,d], q [k,d], l [k,ld])`.
pub fn objective(c: &Consts, params: &(Tensor, Tensor, Tensor, Tensor)) -> Tensor {
    let (alpha, mu, q, l) = params;
    let (d, k, n) = (c.d, c.k, c.n);
    let qdiag = q.exp();
    let sum_q = q.sum_axes(&[1], false);
    let packed = Tensor::concat(&[&qdiag, l, &Tensor::full_of(&[k, 1], 0.0, DType::F64)], 1);
    let qmat = packed.index_select(1, &c.q_index).reshape(&[k, d, d]);
    // (x_i - mu_k) Q_k^T for all i, k: [n, k*d]
    let w = qmat.reshape(&[k * d, d]).t();
    let xq = c.x.matmul(&w);
    let muq = (&qmat * &mu.reshape(&[k, 1, d])).sum_axes(&[2], false).reshape(&[1, k * d]);
    let diff = &xq - &muq;
    let sq = (&diff * &diff).reshape(&[n, k, d]).sum_axes(&[2], false);
    let main = &(alpha + &sum_q).reshape(&[1, k]) - &(sq * 0.5);
    let slse = main.logsumexp(&[1], false).sum();
    let lse_alpha = alpha.logsumexp(&[0], false);
    let constant = -(n as f64) * d as f64 * 0.5 * (2.0 * std::f64::consts::PI).ln();

    // Wishart prior.
    let nw = d as f64 + c.m + 1.0;
    let mut lgd = 0.25 * d as f64 * (d as f64 - 1.0) * std::f64::consts::PI.ln();
    for j in 1..=d {
        lgd += ln_gamma(0.5 * nw + 0.5 * (1.0 - j as f64));
    }
    let cst = nw * d as f64 * (c.gamma.ln() - 0.5 * 2f64.ln()) - lgd;
    let frob = (&qdiag * &qdiag).sum() + (l * l).sum();
    let prior = &(frob * (0.5 * c.gamma * c.gamma)) - &(sum_q.sum() * c.m);
    let ws = -prior + k as f64 * cst;

    &(&(slse + constant) - &(lse_alpha * n as f64)) + &ws
}

fn rows_to_tensor(rows: &[Vec<f64>], count: usize, width: usize, what: &str) -> Result<Tensor, String> {
    if rows.len() != count || rows.iter().any(|r| r.len() != width) {
        return Err(format!("gmm: {what} must be {count} rows of {width}"));
    }
    Ok(tensor(&rows.concat(), &[count, width]))
}

type Prepared = (Consts, (Tensor, Tensor, Tensor, Tensor));

fn prepare(inp: &Input, limits: &Limits) -> Result<Prepared, String> {
    let (d, k, n) = (inp.d, inp.k, inp.n);
    if d == 0 || k == 0 || n == 0 {
        return Err("gmm: need positive d, k, n".into());
    }
    check_len("gmm: alpha", "k", k as u64, inp.alpha.len())?;
    check_len("gmm: x", "n", n as u64, inp.x.len())?;
    check_len("gmm: mu", "k", k as u64, inp.mu.len())?;
    let x = rows_to_tensor(&inp.x, n, d, "x")?;
    let mu = rows_to_tensor(&inp.mu, k, d, "mu")?;
    let q = rows_to_tensor(&inp.q, k, d, "q")?;
    // d is now backed by data (k rows of d means).
    let ld = d * (d - 1) / 2;
    // The [n, k·d] products and their adjoints (six), each Q_k and its adjoint, the index.
    let (n64, k64, d64) = (n as u64, k as u64, d as u64);
    limits.check_steps(&format!("gmm: n·k·d² = {n}·{k}·{d}²"), product(&[n64, k64, d64, d64]))?;
    limits.check_memory(
        &format!("gmm: n·k·d = {n}·{k}·{d} distances"),
        sum(&[product(&[6, n64, k64, d64]), product(&[3, k64, d64, d64]), product(&[4, n64, k64])]),
        8,
    )?;
    let l =
        if ld == 0 { Tensor::full_of(&[k, 0], 0.0, DType::F64) } else { rows_to_tensor(&inp.l, k, ld, "l")? };
    let alpha = tensor(&inp.alpha, &[k]);
    Ok((Consts::new(d, k, n, inp.m as f64, inp.gamma, x), (alpha, mu, q, l)))
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let (r, c) = (t.shape()[0], t.shape()[1]);
    let v = t.to_vec::<f64>();
    (0..r).map(|i| v[i * c..(i + 1) * c].to_vec()).collect()
}

/// Evaluate `objective` or `jacobian`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    let (consts, params) = match parse::<Input>("gmm", input).and_then(|i| prepare(&i, limits)) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(match function {
        "objective" => timed(input, || objective(&consts, &params).item(), |v| json!(v)),
        "jacobian" => timed(
            input,
            || value_and_grad(|p: &(Tensor, Tensor, Tensor, Tensor)| objective(&consts, p))(&params).1,
            |(a, mu, q, l)| json!({"alpha": a.to_vec::<f64>(), "mu": rows(&mu), "q": rows(&q), "l": rows(&l)}),
        ),
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ln_gamma_matches_known_values() {
        // Γ(5) = 24, Γ(0.5) = √π, Γ(10.3) from tables (ln = 12.4370...).
        assert!((super::ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((super::ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-13);
        assert!((super::ln_gamma(1.0)).abs() < 1e-14);
    }
}
