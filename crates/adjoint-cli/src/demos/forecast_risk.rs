//! Risk side of `adjoint demo forecast`: GARCH(1,1) by maximum likelihood, 99% Value-at-Risk
//! from a scale forecast, and Kupiec's proportion-of-failures test.
//!
//! **GARCH(1,1).** Returns `r_t` (percent) have conditional variance
//! `h_t = ω + α r²_{t−1} + β h_{t−1}`, started at `h_0` = the sample variance of the fitted
//! series (a constant, not a parameter). The parameters live in an unconstrained vector
//! `θ = (a, b, c)`: `ω = eᵃ`, persistence `α + β = σ(c)` and split `α = σ(c)·σ(b)`,
//! `β = σ(c)·(1 − σ(b))`, so every `θ` gives a stationary, positive model. The objective is
//! the Gaussian negative log-likelihood per observation (quasi-maximum likelihood: consistent
//! for `ω, α, β` under fat-tailed innovations too), written once over [`Real`] so the same code
//! gives the value in `f64` and the gradient on adjoint's scalar reverse-mode tape
//! ([`adjoint_scalar::value_and_gradient`]: a 2,000-day recursion is ~10k scalar nodes, far
//! cheaper than tensor ops). L-BFGS with a strong-Wolfe line search ([`Lbfgs`]) minimises it.
//!
//! **VaR.** A model gives a scale `s_t` for each day (GARCH: `√h_t`; an |return| forecaster:
//! its forecast). The predicted return distribution is `s_t · Z` where `Z` is the empirical
//! distribution of the standardised training residuals `r_t / s_t` (filtered historical
//! simulation): fat tails are taken from the data instead of assumed Gaussian. The one-day 99%
//! VaR is `−s_t · q₀.₀₁(Z)`; an exceedance is a day with `r_t < −VaR_t`.
//!
//! **Kupiec's POF test.** With `x` exceedances in `n` days and nominal rate `p`,
//! `LR = −2 ln[(1−p)^{n−x} p^x] + 2 ln[(1−x/n)^{n−x} (x/n)^x]` is χ²(1) under the null; its
//! p-value is `erfc(√(LR/2))`.

use adjoint_core::Tensor;
use adjoint_nn::optim::{Lbfgs, LbfgsConfig};
use adjoint_scalar::{Real, Var};

/// GARCH(1,1) parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Garch {
    /// Constant term ω.
    pub omega: f64,
    /// ARCH coefficient α (weight of yesterday's squared return).
    pub alpha: f64,
    /// GARCH coefficient β (weight of yesterday's variance).
    pub beta: f64,
}

/// `(ω, α, β)` from the unconstrained `θ = (a, b, c)` (see the module page).
pub fn transform<T: Real>(theta: &[T]) -> (T, T, T) {
    let sig = |x: T| T::one() / (T::one() + (-x).exp());
    let (persist, split) = (sig(theta[2]), sig(theta[1]));
    (theta[0].exp(), persist * split, persist * (T::one() - split))
}

/// The unconstrained `θ` of `g` (inverse of [`transform`]).
pub fn untransform(g: &Garch) -> [f64; 3] {
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let persist = g.alpha + g.beta;
    [g.omega.ln(), logit(g.alpha / persist), logit(persist)]
}

/// Gaussian negative log-likelihood per observation of `r` under GARCH(1,1) with parameters
/// `transform(theta)` and initial variance `h0`, constants `½ ln 2π` included.
pub fn nll<T: Real>(theta: &[T], r: &[f64], h0: f64) -> T {
    let (omega, alpha, beta) = transform(theta);
    let half_ln_2pi = T::lit(0.5 * (2.0 * std::f64::consts::PI).ln());
    let mut h = T::lit(h0);
    let mut total = T::zero();
    for (t, &rt) in r.iter().enumerate() {
        if t > 0 {
            h = omega + alpha * T::lit(r[t - 1] * r[t - 1]) + beta * h;
        }
        total += half_ln_2pi + T::lit(0.5) * (h.ln() + T::lit(rt * rt) / h);
    }
    total / T::lit(r.len() as f64)
}

/// The sample variance (mean square) of `r`, the recursion's start.
pub fn initial_variance(r: &[f64]) -> f64 {
    r.iter().map(|x| x * x).sum::<f64>() / r.len().max(1) as f64
}

/// Fit GARCH(1,1) to `r` by (quasi-)maximum likelihood; returns the parameters and the
/// objective (NLL per observation) at them.
pub fn fit(r: &[f64]) -> (Garch, f64) {
    let h0 = initial_variance(r);
    let start = Garch { omega: h0 * 0.02, alpha: 0.08, beta: 0.9 };
    let theta0 = untransform(&start);
    let mut opt = Lbfgs::new(
        &Tensor::from_slice(&theta0, &[3]),
        LbfgsConfig { line_search: true, max_iter: 200, tolerance_grad: 1e-9, ..Default::default() },
    );
    let objective = |p: &Tensor| {
        let (v, g) = adjoint_scalar::value_and_gradient(|x: &[Var]| nll(x, r, h0), &p.to_vec::<f64>());
        (v, Tensor::from_slice(&g, &[3]))
    };
    let mut theta = Tensor::from_slice(&theta0, &[3]);
    for _ in 0..3 {
        theta = opt.step(&theta, objective).params;
    }
    let th = theta.to_vec::<f64>();
    let (omega, alpha, beta) = transform(&th);
    (Garch { omega, alpha, beta }, nll(&th, r, h0))
}

impl Garch {
    /// One-step-ahead variances `h_t` for `t = 0..r.len()` (each from `r[..t]`) and the
    /// forecast for the day after the last, started at `h0`.
    pub fn filter(&self, r: &[f64], h0: f64) -> Vec<f64> {
        let mut h = Vec::with_capacity(r.len() + 1);
        h.push(h0);
        for &rt in r {
            let prev = *h.last().expect("non-empty");
            h.push(self.omega + self.alpha * rt * rt + self.beta * prev);
        }
        h
    }

    /// Simulate `n` returns with Gaussian innovations from `seed` (tests).
    pub fn simulate(&self, n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut uniform = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut h = self.omega / (1.0 - self.alpha - self.beta);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            // Box–Muller.
            let z = (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
            let r = h.sqrt() * z;
            out.push(r);
            h = self.omega + self.alpha * r * r + self.beta * h;
        }
        out
    }
}

/// The `q`-quantile of `v` (linear interpolation between order statistics, as numpy's
/// default).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q * (s.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    if lo + 1 < s.len() {
        s[lo] + frac * (s[lo + 1] - s[lo])
    } else {
        s[lo]
    }
}

/// `P(X > x)` for `X ~ χ²(1)`: `erfc(√(x/2))`.
pub fn chi2_1_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    erfc(x.sqrt() / std::f64::consts::SQRT_2)
}

/// The complementary error function, accurate in the tail (continued fraction for `x > 2`,
/// `1 − erf` below, where the subtraction loses nothing that matters).
pub fn erfc(x: f64) -> f64 {
    if x < 2.0 {
        return 1.0 - adjoint_tensor::special::erf_f64(x);
    }
    // Lentz's continued fraction erfc(x) = e^{−x²}/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))).
    let tiny = 1e-300;
    let mut f = x;
    let (mut c, mut d) = (x, 0.0);
    for k in 1..200 {
        let a = k as f64 / 2.0;
        d = x + a * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = x + a / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (std::f64::consts::PI.sqrt() * f)
}

/// Kupiec's proportion-of-failures test: `x` exceedances in `n` days against nominal rate
/// `p`; returns `(LR, p-value)`.
pub fn kupiec(n: usize, x: usize, p: f64) -> (f64, f64) {
    let (nf, xf) = (n as f64, x as f64);
    // x ln(x/n) with 0 ln 0 = 0.
    let xlny = |a: f64, b: f64| if a == 0.0 { 0.0 } else { a * b.ln() };
    let null = xlny(nf - xf, 1.0 - p) + xlny(xf, p);
    let alt = xlny(nf - xf, 1.0 - xf / nf) + xlny(xf, xf / nf);
    let lr = (2.0 * (alt - null)).max(0.0);
    (lr, chi2_1_sf(lr))
}

/// Exceedances of 99% VaR: `scale_train`/`r_train` calibrate the residual quantile, then day
/// `i` of the test is an exceedance when `r_test[i] < q · scale_test[i]`. Returns the VaR
/// values (positive numbers) and the exceedance flags.
pub fn var99(
    r_train: &[f64],
    scale_train: &[f64],
    r_test: &[f64],
    scale_test: &[f64],
) -> (Vec<f64>, Vec<bool>) {
    let z: Vec<f64> = r_train.iter().zip(scale_train).map(|(r, s)| r / s).collect();
    let q = quantile(&z, 0.01);
    let var: Vec<f64> = scale_test.iter().map(|s| -q * s).collect();
    let hit = r_test.iter().zip(&var).map(|(r, v)| *r < -v).collect();
    (var, hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nll_matches_a_hand_computation() {
        // ω = 0.1, α = 0.2, β = 0.7; r = (1, −2, 0.5), h0 = 1.5.
        let g = Garch { omega: 0.1, alpha: 0.2, beta: 0.7 };
        let theta = untransform(&g);
        let (o, a, b) = transform(&theta);
        assert!((o - 0.1).abs() < 1e-14 && (a - 0.2).abs() < 1e-14 && (b - 0.7).abs() < 1e-14);
        let r = [1.0, -2.0, 0.5];
        // h1 = 0.1 + 0.2·1 + 0.7·1.5 = 1.35; h2 = 0.1 + 0.2·4 + 0.7·1.35 = 1.845.
        let hs = [1.5, 1.35, 1.845];
        let c = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let hand = hs.iter().zip(&r).map(|(h, x)| c + 0.5 * (f64::ln(*h) + x * x / h)).sum::<f64>() / 3.0;
        assert!((nll(&theta, &r, 1.5) - hand).abs() < 1e-14);
        assert_eq!(g.filter(&r, 1.5)[..3].iter().zip(hs).filter(|(a, b)| (*a - b).abs() > 1e-14).count(), 0);
    }

    #[test]
    fn gradient_matches_central_differences() {
        let r = Garch { omega: 0.05, alpha: 0.1, beta: 0.85 }.simulate(300, 7);
        let h0 = initial_variance(&r);
        let theta = [-2.0, -1.5, 2.5];
        let (_, g) = adjoint_scalar::value_and_gradient(|x: &[Var]| nll(x, &r, h0), &theta);
        for i in 0..3 {
            let eps = 1e-6;
            let (mut p, mut m) = (theta, theta);
            p[i] += eps;
            m[i] -= eps;
            let fd = (nll(&p, &r, h0) - nll(&m, &r, h0)) / (2.0 * eps);
            assert!((g[i] - fd).abs() < 1e-7 * (1.0 + fd.abs()), "θ{i}: {} vs {fd}", g[i]);
        }
    }

    #[test]
    fn fit_recovers_simulated_parameters() {
        let truth = Garch { omega: 0.05, alpha: 0.08, beta: 0.9 };
        let r = truth.simulate(20_000, 42);
        let (g, _) = fit(&r);
        assert!((g.alpha - truth.alpha).abs() < 0.02, "{g:?}");
        assert!((g.beta - truth.beta).abs() < 0.03, "{g:?}");
        let uncond = |g: &Garch| g.omega / (1.0 - g.alpha - g.beta);
        assert!((uncond(&g) / uncond(&truth) - 1.0).abs() < 0.15, "{g:?}");
    }

    #[test]
    fn kupiec_matches_hand_and_scipy_values() {
        // n = 250, x = 5, p = 0.01: LR = −2[245 ln .99 + 5 ln .01] + 2[245 ln .98 + 5 ln .02].
        let hand = -2.0 * (245.0 * 0.99f64.ln() + 5.0 * 0.01f64.ln())
            + 2.0 * (245.0 * 0.98f64.ln() + 5.0 * 0.02f64.ln());
        let (lr, p) = kupiec(250, 5, 0.01);
        assert!((lr - hand).abs() < 1e-12);
        // Fixture: scipy.stats.chi2.sf(LR, 1) for these cases, from
        // crates/adjoint-cli/tests/fixtures/kupiec_scipy.py (its output: kupiec_scipy.txt).
        for &(n, x, p_ref) in KUPIEC_SCIPY {
            let (_, p) = kupiec(n, x, 0.01);
            assert!((p - p_ref).abs() < 1e-9 * p_ref.max(1e-3), "n={n} x={x}: {p} vs {p_ref}");
        }
        assert!(p > 0.05 && p < 0.5, "{p}");
        assert_eq!(kupiec(100, 1, 0.01).0, 0.0);
        // Known χ²(1) tail values: P(χ² > 3.841459) = 0.05, P(χ² > 6.634897) = 0.01.
        assert!((chi2_1_sf(3.841458820694124) - 0.05).abs() < 1e-12);
        assert!((chi2_1_sf(6.634896601021214) - 0.01).abs() < 1e-12);
        assert!((chi2_1_sf(30.0) / 4.320463057827488e-08 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn var_and_quantile() {
        assert_eq!(quantile(&[3.0, 1.0, 2.0, 4.0], 0.5), 2.5);
        let r_train: Vec<f64> = (0..1000).map(|i| (i as f64 - 500.0) / 100.0).collect();
        let (var, hit) = var99(&r_train, &vec![1.0; 1000], &[-5.0, -4.0, 0.0], &[1.0, 1.0, 1.0]);
        assert!((var[0] - 4.9001).abs() < 1e-9, "{var:?}");
        assert_eq!(hit, [true, false, false]);
    }

    /// `(n, x, scipy.stats.chi2.sf(LR, 1))` at p = 0.01.
    const KUPIEC_SCIPY: &[(usize, usize, f64)] = &[
        (250, 5, 0.1618549171960387),
        (250, 0, 0.02498150305344973),
        (1268, 13, 0.9283304949449374),
        (1268, 20, 0.05671203394247351),
        (1268, 25, 0.0021418690674511014),
        (1268, 40, 7.572712972665509e-10),
        (3804, 60, 0.0009652516282681639),
    ];
}
