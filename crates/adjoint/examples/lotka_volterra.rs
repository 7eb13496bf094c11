//! Fit a Lotka–Volterra model to the Hudson's Bay Company lynx–hare pelts (1900–1920) by
//! maximum likelihood, differentiating `adjoint::ode::odeint` with the continuous adjoint.
//!
//! Model (as in the Stan case study "Predator-Prey Population Dynamics", Carpenter 2018):
//! hares `u` and lynx `v` follow `u' = (α - βv)u`, `v' = (-γ + δu)v` from `(u0, v0)` in 1900,
//! and each year's pelts are lognormal around the solution: `log y ~ N(log z(t), σ_species)`.
//! All eight parameters are fitted on the log scale with Adam (written inline), on the scalar
//! tier (`ode::odeint_real` over `Var`: two states do not need tensors); the tensor solver's
//! likelihood and gradient (`ode::odeint` with the continuous adjoint) are checked against it
//! at the estimate, and the gradient is timed both ways. The case study reports posterior means
//! under weak priors; the maximum-likelihood estimates should be close to them (the noise
//! scales a little lower: a maximum-likelihood σ divides by n, not by n minus the fitted
//! parameters).
//!
//! Run with `cargo run --release -p adjoint --example lotka_volterra`.

use std::time::Instant;

use adjoint::ode::{odeint, odeint_real, GradMethod, OdeOptions};
use adjoint::prelude::*;
use adjoint::scalar::{value_and_gradient, Real, Var};

/// `[u, v]' ` with `p = [α, β, γ, δ]`.
fn lotka_volterra(z: &Tensor, _t: f64, p: &Tensor) -> Tensor {
    let (u, v) = (z.narrow(0, 0, 1), z.narrow(0, 1, 1));
    let q = |i| p.narrow(0, i, 1);
    let uv = &u * &v;
    let du = &u * q(0) - &uv * q(1);
    let dv = &uv * q(3) - &v * q(2);
    Tensor::concat(&[&du, &dv], 0)
}

/// The same right-hand side over any scalar.
fn lotka_volterra_real<T: Real>(z: &[T], _t: f64, p: &[T]) -> Vec<T> {
    vec![(p[0] - p[1] * z[1]) * z[0], (p[3] * z[0] - p[2]) * z[1]]
}

/// `(years, log pelts [n, 2] as (hare, lynx))`.
fn load() -> (Vec<f64>, Tensor) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/ecology_lynx_hare_1900_1920.csv");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let (mut years, mut logs) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<f64> = line.split(',').map(|x| x.trim().parse().expect("a number")).collect();
        years.push(f[0]);
        logs.extend([f[2].ln(), f[1].ln()]); // Year,Lynx,Hare -> (hare, lynx)
    }
    let n = years.len();
    (years, Tensor::from_vec(logs, &[n, 2]))
}

/// Negative log-likelihood (up to a constant) of `x = log [α, β, γ, δ, u0, v0, σ_u, σ_v]`.
fn nll(x: &Tensor, ts: &[f64], obs: &Tensor, o: &OdeOptions) -> Tensor {
    let e = x.exp();
    let z = odeint(lotka_volterra, &e.narrow(0, 4, 2), ts, &e.narrow(0, 0, 4), o);
    let log_sigma = x.narrow(0, 6, 2);
    let r = (z.log() - obs) / log_sigma.exp();
    r.square().sum() * 0.5 + log_sigma.sum() * ts.len() as f64
}

/// [`nll`] over any scalar (`obs` flattened as `[hare, lynx]` per year).
fn nll_real<T: Real>(x: &[T], ts: &[f64], obs: &[f64], o: &OdeOptions) -> T {
    let e: Vec<T> = x.iter().map(|v| v.exp()).collect();
    let z = odeint_real(lotka_volterra_real, &e[4..6], ts, &e[..4], o);
    let mut acc = T::zero();
    for (zt, ot) in z.iter().zip(obs.chunks(2)) {
        for k in 0..2 {
            let r = (zt[k].ln() - T::lit(ot[k])) / e[6 + k];
            acc += r * r * T::lit(0.5);
        }
    }
    acc + (x[6] + x[7]) * T::lit(ts.len() as f64)
}

fn main() {
    let (years, obs) = load();
    let ts: Vec<f64> = years.iter().map(|y| y - years[0]).collect();
    let o = OdeOptions { rtol: 1e-6, atol: 1e-6, grad: GradMethod::Adjoint, ..OdeOptions::default() };
    let obs_flat = obs.to_vec::<f64>();
    let objective = |x: &[f64]| value_and_gradient(|x: &[Var]| nll_real(x, &ts, &obs_flat, &o), x);

    // Start: generic rates, the first year's counts, σ = 0.5.
    let first = obs.narrow(0, 0, 1).exp().to_vec::<f64>();
    let start = [0.8f64, 0.04, 0.6, 0.02, first[0], first[1], 0.5, 0.5];
    let mut x: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let (mut m, mut v) = (vec![0.0; 8], vec![0.0; 8]);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    let t0 = Instant::now();
    let iters = 800;
    let mut last = f64::NAN;
    for it in 1..=iters {
        let lr = if it <= 600 { 0.02 } else { 0.004 };
        let (value, g) = objective(&x);
        last = value;
        for (i, gi) in g.into_iter().enumerate() {
            m[i] = b1 * m[i] + (1.0 - b1) * gi;
            v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
            let (mh, vh) = (m[i] / (1.0 - b1.powi(it)), v[i] / (1.0 - b2.powi(it)));
            x[i] -= lr * mh / (vh.sqrt() + eps);
        }
        if it % 200 == 0 {
            println!("iter {it:5}  negative log-likelihood {last:.6}");
        }
    }
    println!("{iters} Adam steps on the scalar tier in {:.2?} (final nll {last:.6})", t0.elapsed());
    // The tensor solver agrees at the estimate.
    let (vt, gt) = value_and_grad(|x: &Tensor| nll(x, &ts, &obs, &o))(&Tensor::from_vec(x.clone(), &[8]));
    let (vs, gs) = objective(&x);
    let gdiff = gt.to_vec::<f64>().iter().zip(&gs).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    println!("tensor odeint (adjoint) at the estimate: nll {:.9} vs {vs:.9}, max gradient difference {gdiff:.1e}\n", vt.item());

    let est: Vec<f64> = x.iter().map(|v| v.exp()).collect();
    // Posterior means stated in the text of the Stan case study (Carpenter 2018, section
    // "Comparing the fitted model to data"), and Howard (2009, fig. 2.10)'s least-squares
    // point estimates quoted there. The text does not state the initial populations.
    let stan = [Some(0.55), Some(0.028), Some(0.80), Some(0.024), None, None, Some(0.25), Some(0.25)];
    let howard = [Some(0.55), Some(0.028), Some(0.84), Some(0.026), None, None, None, None];
    let names = ["alpha", "beta", "gamma", "delta", "hare 1900", "lynx 1900", "sigma hare", "sigma lynx"];
    let cell = |v: &Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
    println!("{:<12} {:>12} {:>12} {:>12}", "parameter", "MLE (here)", "Stan mean", "Howard");
    for (i, n) in names.iter().enumerate() {
        println!("{n:<12} {:>12.4} {:>12} {:>12}", est[i], cell(&stan[i]), cell(&howard[i]));
    }

    // Gradient time per method at the estimate: 21 years, rtol 1e-6.
    {
        let reps = 2000;
        let _ = objective(&x);
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(objective(&x));
        }
        println!(
            "gradient of the nll on the scalar tier (odeint_real, Var): {:.1} µs",
            t.elapsed().as_secs_f64() * 1e6 / reps as f64
        );
    }
    println!("\ngradient of the nll, Dopri5, rtol = atol = 1e-6, {} output times:", ts.len());
    let at = Tensor::from_vec(x.clone(), &[8]);
    for g in [GradMethod::Direct, GradMethod::Adjoint, GradMethod::Backsolve] {
        let og = OdeOptions { grad: g, ..o };
        let f = value_and_grad(|x: &Tensor| nll(x, &ts, &obs, &og));
        let reps = 200;
        let _ = f(&at);
        let t = Instant::now();
        let mut grad0 = 0.0;
        for _ in 0..reps {
            grad0 = f(&at).1.to_vec::<f64>()[0];
        }
        println!(
            "  {:<10} {:>9.1} µs per gradient (d nll / d log alpha = {grad0:+.2e})",
            format!("{g:?}"),
            t.elapsed().as_secs_f64() * 1e6 / reps as f64
        );
    }
}
