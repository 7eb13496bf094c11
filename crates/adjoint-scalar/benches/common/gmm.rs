//! ADBench's GMM objective (SPEC.md §1), written once, generically over `Real`; shared by
//! the benchmark and the tests (`#[path]`-included).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use adjoint_scalar::Real;

/// The parsed input file.
pub struct GmmInput {
    pub d: usize,
    pub k: usize,
    pub n: usize,
    pub alphas: Vec<f64>,
    pub means: Vec<f64>,
    pub icf: Vec<f64>,
    pub x: Vec<f64>,
    pub gamma: f64,
    pub m: i32,
}

impl GmmInput {
    /// The independent variables packed as ADBench orders the gradient: α, μ, icf.
    pub fn params(&self) -> Vec<f64> {
        let mut p = self.alphas.clone();
        p.extend(&self.means);
        p.extend(&self.icf);
        p
    }
}

/// A synthetic input of ADBench's shape (deterministic; no file needed): `n` points in `d`
/// dimensions, `k` components, `γ = 1`, `m = 0`. For sizes with no ADBench file in the
/// repository (the small-`d` GradBench workloads).
pub fn synthetic(d: usize, k: usize, n: usize) -> GmmInput {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut draw =
        |count: usize, scale: f64| -> Vec<f64> { (0..count).map(|_| scale * (next() - 0.5)).collect() };
    let alphas = draw(k, 2.0);
    let means = draw(k * d, 2.0);
    let icf = draw(k * d * (d + 1) / 2, 1.0);
    let x = draw(n * d, 2.0);
    GmmInput { d, k, n, alphas, means, icf, x, gamma: 1.0, m: 0 }
}

/// Path of a file under the repository's `data/adbench/gmm/`.
/// `ADJOINT_REPO_ROOT` overrides the repository root (for running a prebuilt bench binary
/// elsewhere).
pub fn data_path(rel: &str) -> PathBuf {
    let root = std::env::var_os("ADJOINT_REPO_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    root.join("data/adbench/gmm").join(rel)
}

/// Read an ADBench GMM file (all n points stored; not the replicate-point format).
pub fn read_gmm(path: &Path) -> Result<GmmInput, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut tok = text.split_ascii_whitespace();
    let mut next = |what: &str| -> Result<f64, String> {
        let t = tok.next().ok_or_else(|| format!("{}: file ends before {what}", path.display()))?;
        t.parse::<f64>().map_err(|e| format!("{}: bad {what} {t:?}: {e}", path.display()))
    };
    let d = next("d")? as usize;
    let k = next("K")? as usize;
    let n = next("n")? as usize;
    let mut read =
        |count: usize, what: &str| -> Result<Vec<f64>, String> { (0..count).map(|_| next(what)).collect() };
    let alphas = read(k, "alpha")?;
    let means = read(k * d, "mean")?;
    let icf = read(k * d * (d + 1) / 2, "icf")?;
    let x = read(n * d, "x")?;
    let gm = read(2, "gamma and m")?;
    Ok(GmmInput { d, k, n, alphas, means, icf, x, gamma: gm[0], m: gm[1] as i32 })
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7); used only for the data-dependent constant.
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.5203681218851,
        -1259.1392167224028,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507343278686905,
        -0.13857109526572012,
        9.984_369_578_019_572e-6,
        1.5056327351493116e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// ADBench's π constant (defs.h), deliberately not the exact value.
#[allow(clippy::approx_constant)]
const PI_ADBENCH: f64 = 3.14159265359;

/// The objective of `gmm_objective` in ADBench's gmm.h, at parameters `p = [α, μ, icf]`.
///
/// Written with the fused operations of [`Real`] (`dot`, `sum_sq_matvec_lit`, `sum_slice`,
/// `log_sum_exp`): each records one n-ary node on the `Var` tape instead of one node per
/// binary operation, and folds the same binary operations for `f64` and `Dual`.
pub fn gmm_objective<T: Real>(inp: &GmmInput, p: &[T]) -> T {
    let (d, k, n) = (inp.d, inp.k, inp.n);
    let icf_len = d * (d + 1) / 2;
    let alphas = &p[..k];
    let means = &p[k..k + k * d];
    let icf = &p[k + k * d..];

    // Per component: exp of the diagonal and the sum of log-diagonal (q), as gmm.h does, and
    // Q = diag(exp q) + L (L strictly lower, stored column-major in icf) gathered row by row:
    // row r is [Q[r,0], …, Q[r,r]] at offset r(r+1)/2, so (Q·xc)[r] is one dot product.
    let mut qdiags = Vec::with_capacity(k * d);
    let mut sum_qs = Vec::with_capacity(k);
    let mut qrows = Vec::with_capacity(k * icf_len);
    for c in 0..k {
        let q = &icf[c * icf_len..c * icf_len + d];
        let l = &icf[c * icf_len + d..(c + 1) * icf_len];
        qdiags.extend(q.iter().map(|v| v.exp()));
        sum_qs.push(T::sum_slice(q));
        for row in 0..d {
            // Column `col` of L starts at col·(d−1) − col·(col−1)/2 and holds rows col+1.. .
            qrows.extend(
                (0..row).map(|col| l[col * (d - 1) - col * col.saturating_sub(1) / 2 + row - col - 1]),
            );
            qrows.push(qdiags[c * d + row]);
        }
    }

    // Q_c (x_i − μ_c) = Q_c x_i − Q_c μ_c, as the tensor-tier GradBench eval computes it:
    // Q_c μ_c once per component, and then row r of the difference is a linear combination with
    // constant weights (`dot_lit`: one partial per entry instead of two for `dot`) of
    // [(Q_c μ_c)_r, Q_c[r, 0..=r]] with weights [−1, x_i[0..=r]].
    let mut arows = Vec::with_capacity(k * (icf_len + d));
    for c in 0..k {
        let mu = &means[c * d..(c + 1) * d];
        for r in 0..d {
            let start = c * icf_len + r * (r + 1) / 2;
            let row = &qrows[start..start + r + 1];
            arows.push(T::dot(row, &mu[..r + 1]));
            arows.extend_from_slice(row);
        }
    }
    // Row r of component c is [(Q_c μ_c)_r, Q_c[r, 0..=r]]: r + 2 entries, a lower-trapezoidal
    // matrix with first row 2 and step 1, so ‖Q_c (x_i − μ_c)‖² is one `sum_sq_matvec_lit` of it
    // with [−1, x_i]. Packed once (consecutive on a `Var` tape), each (point, component) then
    // records one dense block node instead of a term per entry.
    let arows = T::pack(&arows);
    let base: Vec<T> = (0..k).map(|c| alphas[c] + sum_qs[c]).collect();
    let mut xa = vec![-1.0; d + 1];
    let mut main = vec![T::zero(); k];
    let mut lses = Vec::with_capacity(n);
    for i in 0..n {
        xa[1..].copy_from_slice(&inp.x[i * d..(i + 1) * d]);
        for (c, m) in main.iter_mut().enumerate() {
            let rows = &arows[c * (icf_len + d)..(c + 1) * (icf_len + d)];
            *m = T::dot_lit(&[base[c], T::sum_sq_matvec_lit(rows, &xa, 2, 1)], &[1.0, -0.5]);
        }
        lses.push(T::log_sum_exp(&main));
    }
    let slse = T::sum_slice(&lses);

    gmm_tail(inp, alphas, &qdiags, &sum_qs, icf, slse)
}

fn log_sum_exp_binary<T: Real>(v: &[T]) -> T {
    let mut mx = v[0];
    for &e in &v[1..] {
        mx = mx.max(e);
    }
    let s: T = v.iter().map(|&e| (e - mx).exp()).sum();
    s.ln() + mx
}

/// The same objective with one binary operation at a time (the version before the fused
/// operations): the reference for the tests and the benchmark's before/after.
pub fn gmm_objective_binary<T: Real>(inp: &GmmInput, p: &[T]) -> T {
    let (d, k, n) = (inp.d, inp.k, inp.n);
    let icf_len = d * (d + 1) / 2;
    let alphas = &p[..k];
    let means = &p[k..k + k * d];
    let icf = &p[k + k * d..];
    let half = T::lit(0.5);

    // Per component: exp of the diagonal and the sum of log-diagonal (q), as gmm.h does.
    let mut qdiags = Vec::with_capacity(k * d);
    let mut sum_qs = Vec::with_capacity(k);
    for c in 0..k {
        let q = &icf[c * icf_len..c * icf_len + d];
        qdiags.extend(q.iter().map(|v| v.exp()));
        sum_qs.push(q.iter().copied().sum::<T>());
    }

    let mut xc = vec![T::zero(); d];
    let mut lx = vec![T::zero(); d];
    let mut main = vec![T::zero(); k];
    let mut slse = T::zero();
    for i in 0..n {
        let xi = &inp.x[i * d..(i + 1) * d];
        for c in 0..k {
            let mu = &means[c * d..(c + 1) * d];
            for j in 0..d {
                xc[j] = T::lit(xi[j]) - mu[j];
            }
            // ‖Q_c (x_i − μ_c)‖² with Q lower triangular, l stored column-major.
            let qd = &qdiags[c * d..(c + 1) * d];
            let l = &icf[c * icf_len + d..(c + 1) * icf_len];
            for j in 0..d {
                lx[j] = qd[j] * xc[j];
            }
            let mut idx = 0;
            #[allow(clippy::needless_range_loop)]
            for col in 0..d {
                for row in col + 1..d {
                    lx[row] += l[idx] * xc[col];
                    idx += 1;
                }
            }
            let sq: T = lx.iter().map(|&v| v * v).sum();
            main[c] = alphas[c] + sum_qs[c] - half * sq;
        }
        slse += log_sum_exp_binary(&main);
    }

    gmm_tail(inp, alphas, &qdiags, &sum_qs, icf, slse)
}

/// Everything after the data term: `−n·lse(α)`, the constant and the Wishart prior.
fn gmm_tail<T: Real>(inp: &GmmInput, alphas: &[T], qdiags: &[T], sum_qs: &[T], icf: &[T], slse: T) -> T {
    let (d, k, n) = (inp.d, inp.k, inp.n);
    let icf_len = d * (d + 1) / 2;
    let half = T::lit(0.5);
    let constant = T::lit(-(n as f64) * d as f64 * 0.5 * (2.0 * PI_ADBENCH).ln());
    let lse_alphas = T::log_sum_exp(alphas);

    // Wishart prior.
    let gamma = T::lit(inp.gamma);
    let mut prior = T::zero();
    for c in 0..k {
        let qd = &qdiags[c * d..(c + 1) * d];
        let l = &icf[c * icf_len + d..(c + 1) * icf_len];
        let fro = T::sum_sq(qd) + T::sum_sq(l);
        prior += half * gamma * gamma * fro - T::lit(inp.m as f64) * sum_qs[c];
    }
    let nw = d as f64 + inp.m as f64 + 1.0;
    let mut lgd = 0.25 * (d * (d - 1)) as f64 * PI_ADBENCH.ln();
    for j in 1..=d {
        lgd += ln_gamma(0.5 * nw + 0.5 * (1.0 - j as f64));
    }
    let cst = nw * d as f64 * (inp.gamma.ln() - 0.5 * 2f64.ln()) - lgd;
    prior -= T::lit(k as f64 * cst);

    constant + slse - T::lit(n as f64) * lse_alphas + prior
}
