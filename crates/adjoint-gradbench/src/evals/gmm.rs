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
    /// For the expanded form ([`objective_expanded`]): `Φᵀ`, `[d² + d + 1, n]`, rows
    /// `x_a x_b` (`a, b < d`), then `x_a`, then ones.
    phi_t: Option<Tensor>,
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
        let phi_t = (d <= EXPANDED_MAX_D).then(|| {
            let xs = x.to_vec::<f64>();
            let p = d * d + d + 1;
            let mut phi = vec![1.0; p * n];
            for i in 0..n {
                let xi = &xs[i * d..(i + 1) * d];
                for a in 0..d {
                    for b in 0..d {
                        phi[(a * d + b) * n + i] = xi[a] * xi[b];
                    }
                    phi[(d * d + a) * n + i] = xi[a];
                }
            }
            Tensor::from_vec(phi, &[p, n])
        });
        Consts { d, k, n, m, gamma, x, q_index: Tensor::from_vec(idx, &[d * d]), phi_t }
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

/// Largest `d` for which [`objective`] uses the expanded form.
pub const EXPANDED_MAX_D: usize = 10;

/// The log-posterior for parameters `(alpha [k], mu [k,d], q [k,d], l [k,ld])`: the expanded
/// form ([`objective_expanded`]) for `d ≤` [`EXPANDED_MAX_D`], else [`objective_gemm`].
pub fn objective(c: &Consts, params: &(Tensor, Tensor, Tensor, Tensor)) -> Tensor {
    match (&c.phi_t, std::env::var("GMM_FORM").as_deref()) {
        (Some(phi_t), Ok("expanded") | Err(_)) => objective_expanded(c, phi_t, params),
        _ => objective_gemm(c, params),
    }
}

/// `Qₖ` for every component, `[k, d, d]`, from `exp(q)` and `l`.
fn q_matrices(c: &Consts, qdiag: &Tensor, l: &Tensor) -> Tensor {
    let (d, k) = (c.d, c.k);
    let packed = Tensor::concat(&[qdiag, l, &Tensor::full_of(&[k, 1], 0.0, DType::F64)], 1);
    packed.index_select(1, &c.q_index).reshape(&[k, d, d])
}

/// The log-posterior with the quadratic form expanded: `‖Qₖ(xᵢ − μₖ)‖² = xᵢᵀAₖxᵢ − 2xᵢᵀAₖμₖ +
/// μₖᵀAₖμₖ` with `Aₖ = QₖᵀQₖ`, so the whole `[k, n]` matrix of `αₖ + Σqₖ − ½‖Qₖ(xᵢ − μₖ)‖²` is
/// one product of a `[k, d² + d + 1]` coefficient matrix (built from the parameters by small
/// ops) with the constant features `Φᵀ = [xᵢ ⊗ xᵢ; xᵢ; 1]`. No `n·k·d` array is formed and
/// nothing is reduced over `d`, so a forward pass is one GEMM and a `logsumexp` over `k` and
/// the backward pass one more GEMM: at small `d` the per-op overhead and memory traffic of the
/// `[n, k·d]` formulation ([`objective_gemm`]) dominated. Points run along the last axis, so
/// `logsumexp` over axis 0 broadcasts its maximum along a leading axis and accumulates whole
/// rows. Reverse mode differentiates this formula like any other; nothing is hand-derived.
/// The expansion trades a little cancellation (terms of the size of `‖Qₖxᵢ‖²` cancel to
/// the size of `‖Qₖ(xᵢ − μₖ)‖²`) for speed; it is used only at small `d`.
pub fn objective_expanded(c: &Consts, phi_t: &Tensor, params: &(Tensor, Tensor, Tensor, Tensor)) -> Tensor {
    let (alpha, mu, q, l) = params;
    let (d, k) = (c.d, c.k);
    let qdiag = q.exp();
    let sum_q = q.sum_axes(&[1], false);
    let qmat = q_matrices(c, &qdiag, l);
    // A_k = Q_kᵀ Q_k, b_k = A_k μ_k, c_k = μ_kᵀ A_k μ_k.
    let a = (&qmat.reshape(&[k, d, d, 1]) * &qmat.reshape(&[k, d, 1, d])).sum_axes(&[1], false);
    let b = (&a * &mu.reshape(&[k, 1, d])).sum_axes(&[2], false);
    let cq = (&b * mu).sum_axes(&[1], false);
    let bias = &(alpha + &sum_q) - &(cq * 0.5);
    let coef = Tensor::concat(&[&(a.reshape(&[k, d * d]) * -0.5), &b, &bias.reshape(&[k, 1])], 1);
    let main = coef.matmul(phi_t);
    let slse = main.logsumexp(&[0], false).sum();
    finish(c, slse, alpha, &qdiag, &sum_q, l)
}

/// The log-posterior as `[n, k·d]` products: `Qₖ(xᵢ − μₖ)` for all `i, k` is `X · [Q₁ᵀ … Q_Kᵀ]`
/// minus `μₖ Qₖᵀ`, squared and summed over `d`.
pub fn objective_gemm(c: &Consts, params: &(Tensor, Tensor, Tensor, Tensor)) -> Tensor {
    let (alpha, mu, q, l) = params;
    let (d, k, n) = (c.d, c.k, c.n);
    let qdiag = q.exp();
    let sum_q = q.sum_axes(&[1], false);
    let qmat = q_matrices(c, &qdiag, l);
    // (x_i - mu_k) Q_k^T for all i, k: [n, k*d]
    let w = qmat.reshape(&[k * d, d]).t();
    let xq = c.x.matmul(&w);
    let muq = (&qmat * &mu.reshape(&[k, 1, d])).sum_axes(&[2], false).reshape(&[1, k * d]);
    let diff = &xq - &muq;
    let sq = (&diff * &diff).reshape(&[n, k, d]).sum_axes(&[2], false);
    let main = &(alpha + &sum_q).reshape(&[1, k]) - &(sq * 0.5);
    let slse = main.logsumexp(&[1], false).sum();
    finish(c, slse, alpha, &qdiag, &sum_q, l)
}

/// The log-posterior from `slse = Σᵢ logsumexp_k(…)`: the normalisation and the Wishart prior.
fn finish(c: &Consts, slse: Tensor, alpha: &Tensor, qdiag: &Tensor, sum_q: &Tensor, l: &Tensor) -> Tensor {
    let (d, k, n) = (c.d, c.k, c.n);
    let lse_alpha = alpha.logsumexp(&[0], false);
    let constant = -(n as f64) * d as f64 * 0.5 * (2.0 * std::f64::consts::PI).ln();

    // Wishart prior.
    let nw = d as f64 + c.m + 1.0;
    let mut lgd = 0.25 * d as f64 * (d as f64 - 1.0) * std::f64::consts::PI.ln();
    for j in 1..=d {
        lgd += ln_gamma(0.5 * nw + 0.5 * (1.0 - j as f64));
    }
    let cst = nw * d as f64 * (c.gamma.ln() - 0.5 * 2f64.ln()) - lgd;
    let frob = (qdiag * qdiag).sum() + (l * l).sum();
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
    if std::env::var("GMM_MODE").as_deref() == Ok("jit") {
        let out = |(a, mu, q, l): (Tensor, Tensor, Tensor, Tensor)| json!({"alpha": a.to_vec::<f64>(), "mu": rows(&mu), "q": rows(&q), "l": rows(&l)});
        return Some(Ok(match function {
            "objective" => {
                let f = adjoint_core::jit(|p: &(Tensor, Tensor, Tensor, Tensor)| objective(&consts, p));
                timed(input, || f(&params).item(), |v| json!(v))
            }
            "jacobian" => {
                let f = adjoint_core::jit(value_and_grad(|p: &(Tensor, Tensor, Tensor, Tensor)| {
                    objective(&consts, p)
                }));
                timed(input, || f(&params).1, out)
            }
            _ => return None,
        }));
    }
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
