//! `gmm`: the ADBench Gaussian mixture log-posterior and its gradient.
//!
//! Tensor tier, vectorised over points and components, in one of two forms (both
//! differentiated by reverse mode; no derivative is written by hand):
//!
//! - **Expanded** ([`objective_expanded`], `d ≤` [`EXPANDED_MAX_D`]): `‖Qₖ(xᵢ − μₖ)‖²` is
//!   expanded through `Aₖ = QₖᵀQₖ`, so the `[k, n]` matrix of log-terms is one product of a
//!   `[k, d² + d + 1]` coefficient matrix (built from the parameters by ops on `k·d²` numbers)
//!   with constant per-point features. No array of `n·k·d` numbers is formed and nothing is
//!   reduced over `d`.
//! - **GEMM** ([`objective_gemm`], larger `d`): each `Qₖ` is gathered from `exp(qₖ)` and `lₖ`
//!   by one `index_select`, and `Qₖ (xᵢ − μₖ)` for all `i, k` is one matrix product
//!   `X · [Q₁ᵀ … Q_Kᵀ]` minus `μₖ Qₖᵀ` — an `n·K·d²` GEMM instead of `n·K` small triangular
//!   products.
//!
//! At `d = 2` the GEMM form spent its time in per-op overhead and in passes over `[n, k·d]`
//! arrays (about 25 ops forward, 40 backward, each over ≤ 2·10⁵ numbers) and trailed GradBench's
//! `manual` tool (0.61–0.76× at k = 5, 50, 100); the expanded form has a handful of ops on
//! `[k, n]` arrays plus tiny ones on the parameters. When those `[k, n]` arrays are small
//! (`k·n ≤` [`JIT_MAX_KN`]), the derivative is also run through [`adjoint_core::jit()`]
//! (`jit(value_and_grad(f))`: staged once per `evaluate`, its elementwise chains fused), which
//! trims what per-op overhead is left (0.72–0.96× the eager time there). Measurements and the choice of both thresholds are in
//! `benches/GRADBENCH.md`.

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

/// Largest `d` for which [`objective`] uses the expanded form. Measured (2026-12-04, one core,
/// GradBench's inputs, n = 1000, CPU time): at d = 2, 10 and 20 the expanded form took 0.3–0.6×
/// the time of the GEMM form; at d = 32 it was mixed at k = 5 and faster at k = 100; at d = 64 it
/// was 2× slower at k = 5 (its `[d² + d + 1, n]` features outgrow the caches). Its cancellation
/// (terms of the size of `‖Qₖxᵢ‖²` cancelling to `‖Qₖ(xᵢ − μₖ)‖²`) left gradients within 2e-12
/// (relative) of the GEMM form's at every d up to 64.
pub const EXPANDED_MAX_D: usize = 20;

/// Largest `k·n` for which [`evaluate`] runs the functions through `jit`. Measured
/// (2026-12-04, CPU time, three interleaved rounds on a loaded machine): at k·n = 5,000 and
/// 10,000 the jitted expanded form took 0.72–0.96× the eager time (0.84–1.09× at d = 10,
/// k = 10); at 25,000 and 50,000, 1.0–1.3×; at 100,000, 0.4–1.0×. Only the small case, where
/// per-op overhead dominates and jit wins clearly, is taken.
pub const JIT_MAX_KN: usize = 10_000;

/// The log-posterior for parameters `(alpha [k], mu [k,d], q [k,d], l [k,ld])`: the expanded
/// form ([`objective_expanded`]) for `d ≤` [`EXPANDED_MAX_D`], else [`objective_gemm`].
pub fn objective(c: &Consts, params: &(Tensor, Tensor, Tensor, Tensor)) -> Tensor {
    match &c.phi_t {
        Some(phi_t) => objective_expanded(c, phi_t, params),
        None => objective_gemm(c, params),
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
    // Q_k (x_i - mu_k) for all i, k: [n, k, d]. Reshaped to [n, k, d] before the difference
    // (as the peers do), so the reverse pass of the sum over d multiplies its broadcast
    // cotangent in place instead of first copying it out to [n, k·d].
    let w = qmat.reshape(&[k * d, d]).t();
    let xq = c.x.matmul(&w).reshape(&[n, k, d]);
    let muq = (&qmat * &mu.reshape(&[k, 1, d])).sum_axes(&[2], false);
    let diff = &xq - &muq;
    let sq = (&diff * &diff).sum_axes(&[2], false);
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
    let (n64, k64, d64) = (n as u64, k as u64, d as u64);
    limits.check_steps(&format!("gmm: n·k·d² = {n}·{k}·{d}²"), product(&[n64, k64, d64, d64]))?;
    let floats = if d <= EXPANDED_MAX_D {
        // The features Φᵀ (and a transposed copy for the backward GEMM), the [k, n] log-terms
        // and their adjoints (six), each Q_k, A_k and their adjoints.
        let p = sum(&[product(&[d64, d64]), d64, 1]);
        sum(&[product(&[2, p, n64]), product(&[6, n64, k64]), product(&[6, k64, d64, d64])])
    } else {
        // The [n, k·d] products and their adjoints (six), each Q_k and its adjoint, the index.
        sum(&[product(&[6, n64, k64, d64]), product(&[3, k64, d64, d64]), product(&[4, n64, k64])])
    };
    limits.check_memory(&format!("gmm: n·k·d = {n}·{k}·{d} distances"), floats, 8)?;
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
    type P = (Tensor, Tensor, Tensor, Tensor);
    let out =
        |(a, mu, q, l): P| json!({"alpha": a.to_vec::<f64>(), "mu": rows(&mu), "q": rows(&q), "l": rows(&l)});
    if consts.phi_t.is_some() && consts.k * consts.n <= JIT_MAX_KN {
        // Staged on the first (timed) run, replayed from the cache on the others.
        return Some(Ok(match function {
            "objective" => {
                let f = adjoint_core::jit(|p: &P| objective(&consts, p));
                timed(input, || f(&params).item(), |v| json!(v))
            }
            "jacobian" => {
                let f = adjoint_core::jit(value_and_grad(|p: &P| objective(&consts, p)));
                timed(input, || f(&params).1, out)
            }
            _ => return None,
        }));
    }
    Some(Ok(match function {
        "objective" => timed(input, || objective(&consts, &params).item(), |v| json!(v)),
        "jacobian" => timed(input, || value_and_grad(|p: &P| objective(&consts, p))(&params).1, out),
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_known_values() {
        // Γ(5) = 24, Γ(0.5) = √π, Γ(10.3) from tables (ln = 12.4370...).
        assert!((super::ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((super::ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-13);
        assert!((super::ln_gamma(1.0)).abs() < 1e-14);
    }

    /// A problem of GradBench's shape from a fixed LCG: x ~ U(-1, 1) + `shift` (points far from
    /// every mean when `shift` is large, where the expanded form cancels most), μ ~ U(0, 1),
    /// α, q, l ~ U(-0.5, 0.5).
    fn problem(d: usize, k: usize, n: usize, shift: f64) -> (Vec<f64>, [Vec<f64>; 4]) {
        let mut state = 12345u64 + (d * 1000 + k) as u64;
        let mut u = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let x = (0..n * d).map(|_| 2.0 * u() - 1.0 + shift).collect();
        let ld = d * (d - 1) / 2;
        let mut draw = |len: usize, lo: f64| (0..len).map(|_| u() + lo).collect::<Vec<f64>>();
        let p = [draw(k, -0.5), draw(k * d, 0.0), draw(k * d, -0.5), draw(k * ld, -0.5)];
        (x, p)
    }

    /// The log-posterior straight from its definition (GradBench's `gmm` README, ADBench's
    /// `gmm_objective`), one point and component at a time in plain `f64`: `Qₖ` built entry by
    /// entry, `Qₖ(xᵢ − μₖ)` by a triangular product.
    fn reference(d: usize, k: usize, n: usize, m: f64, gamma: f64, x: &[f64], p: &[Vec<f64>; 4]) -> f64 {
        let [alpha, mu, q, l] = p;
        let ld = d * (d - 1) / 2;
        let lse = |v: &[f64]| {
            let mx = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            mx + v.iter().map(|a| (a - mx).exp()).sum::<f64>().ln()
        };
        let qmat = |c: usize| {
            let mut qm = vec![0.0; d * d];
            let mut li = 0;
            for col in 0..d {
                qm[col * d + col] = q[c * d + col].exp();
                for row in col + 1..d {
                    qm[row * d + col] = l[c * ld + li];
                    li += 1;
                }
            }
            qm
        };
        let mut total = 0.0;
        for i in 0..n {
            let terms: Vec<f64> = (0..k)
                .map(|c| {
                    let qm = qmat(c);
                    let mut sq = 0.0;
                    for r in 0..d {
                        let v: f64 = (0..=r).map(|j| qm[r * d + j] * (x[i * d + j] - mu[c * d + j])).sum();
                        sq += v * v;
                    }
                    alpha[c] + q[c * d..(c + 1) * d].iter().sum::<f64>() - 0.5 * sq
                })
                .collect();
            total += lse(&terms);
        }
        let (df, nw) = (d as f64, d as f64 + m + 1.0);
        total -= n as f64 * lse(alpha) + n as f64 * df * 0.5 * (2.0 * std::f64::consts::PI).ln();
        let mut lmgamma = 0.25 * df * (df - 1.0) * std::f64::consts::PI.ln();
        for j in 1..=d {
            lmgamma += ln_gamma(0.5 * nw + 0.5 * (1.0 - j as f64));
        }
        for c in 0..k {
            let frob: f64 = q[c * d..(c + 1) * d].iter().map(|v| (2.0 * v).exp()).sum::<f64>()
                + l[c * ld..(c + 1) * ld].iter().map(|v| v * v).sum::<f64>();
            total += -0.5 * gamma * gamma * frob
                + m * q[c * d..(c + 1) * d].iter().sum::<f64>()
                + nw * df * (gamma.ln() - 0.5 * 2f64.ln())
                - lmgamma;
        }
        total
    }

    fn setup(d: usize, k: usize, n: usize, shift: f64) -> (Consts, P4, f64) {
        let (x, p) = problem(d, k, n, shift);
        let want = reference(d, k, n, 2.0, 1.5, &x, &p);
        let ld = d * (d - 1) / 2;
        let params =
            (tensor(&p[0], &[k]), tensor(&p[1], &[k, d]), tensor(&p[2], &[k, d]), tensor(&p[3], &[k, ld]));
        (Consts::new(d, k, n, 2.0, 1.5, tensor(&x, &[n, d])), params, want)
    }

    type P4 = (Tensor, Tensor, Tensor, Tensor);

    fn flat(g: &P4) -> Vec<f64> {
        [g.0.to_vec::<f64>(), g.1.to_vec(), g.2.to_vec(), g.3.to_vec()].concat()
    }

    fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: {g} vs {w}");
        }
    }

    #[test]
    fn both_forms_match_the_definition() {
        for (d, k, n, shift) in
            [(1, 3, 7, 0.0), (2, 5, 40, 0.0), (3, 4, 30, 0.0), (5, 3, 20, 0.0), (2, 3, 20, 30.0)]
        {
            let (c, p, want) = setup(d, k, n, shift);
            assert!(c.phi_t.is_some(), "d = {d} uses the expanded form");
            let e = objective_expanded(&c, c.phi_t.as_ref().unwrap(), &p).item();
            let g = objective_gemm(&c, &p).item();
            let what = format!("d={d} k={k} n={n} shift={shift}");
            assert_close(&format!("expanded {what}"), &[e], &[want], 1e-11);
            assert_close(&format!("gemm {what}"), &[g], &[want], 1e-12);
        }
        // Above EXPANDED_MAX_D, `objective` is the GEMM form.
        let (c, p, want) = setup(EXPANDED_MAX_D + 1, 2, 5, 0.0);
        assert!(c.phi_t.is_none());
        assert_close("gemm d > EXPANDED_MAX_D", &[objective(&c, &p).item()], &[want], 1e-12);
    }

    #[test]
    fn expanded_gradient_matches_the_gemm_forms() {
        for (d, k, n, shift) in [(2, 5, 40, 0.0), (3, 4, 30, 0.0), (2, 3, 20, 30.0)] {
            let (c, p, _) = setup(d, k, n, shift);
            let phi_t = c.phi_t.as_ref().unwrap();
            let ge = flat(&value_and_grad(|p: &P4| objective_expanded(&c, phi_t, p))(&p).1);
            let gg = flat(&value_and_grad(|p: &P4| objective_gemm(&c, p))(&p).1);
            // Points 30 away from every mean: terms of ~10³ cancel to ~10³ too (Q is O(1)), so
            // the loss is a few digits at most.
            assert_close(&format!("gradient d={d} k={k} shift={shift}"), &ge, &gg, 1e-9);
            let gj = flat(&adjoint_core::jit(value_and_grad(|p: &P4| objective(&c, p)))(&p).1);
            assert_close(&format!("jit gradient d={d} k={k}"), &gj, &ge, 1e-14);
        }
    }
}
