//! `ode`: `y₀' = x₀`, `yᵢ' = xᵢ yᵢ₋₁`, `y(0) = 0`, on `t ∈ [0, 2]`; the primal is `y(2)` by
//! fourth-order Runge–Kutta with `s` steps, the gradient is `∂yₙ₋₁(2)/∂x`.
//!
//! **Primal**: exactly the `s`-step RK4 GradBench specifies, in plain `f64`. Component `i`
//! only ever reads component `i - 1`, at the same stage of the same step, so the components
//! run in blocks of [`BLOCK`] ([`block`]): a block integrates through all `s` steps given the
//! `4s` stage values of the last component before it, and hands its own last component's on.
//! Within a step each stage is one vector operation over the block (a stage reads the previous
//! stage's values shifted by one component), so the loops vectorise and the working set stays
//! in L1 whatever `n` and `s` are. The earlier form — one component through all `s` steps at a
//! time — was a chain of dependent scalar operations: 3.5 ns per component-step at `n = 10⁵`,
//! `s = 100`, against 2.4 ns for manual's whole-vector loop.
//!
//! **Gradient**: the derivative of the *continuous* solution `y(2)`, by the continuous adjoint of
//! [`adjoint_solvers::ode::odeint`] (tensor tier, `f64`, [`adjoint_core::grad`]): odeint solves
//! `ẏ = x · (1, y₀, …, yₙ₋₂)` forward with the adaptive Tsitouras 5(4) pair, then integrates
//! `y`, `a = ∂L/∂y` (`ȧ = -aᵀ∂f/∂y`) and `x̄` (`x̄̇ = -aᵀ∂f/∂x`) backward from `t = 2`
//! (`Backsolve`; `y` is polynomial in `t`, so its backward integration is stable). The
//! vector-Jacobian products are reverse mode over the right-hand side; nothing is
//! hand-derived. This is what GradBench validates against: `manual`'s gradient is the closed
//! form of the continuous solution, `x₀⋯xₙ₋₁ · 2ⁿ/n! / xᵢ`, whatever `s` is, compared with
//! ADBench's `|a − b| / max(1, |a| + |b|) ≤ 10⁻⁴`. With [`OPTS`] (`rtol = 10⁻⁶`,
//! `atol = 10⁻⁹`) the result is within ~10⁻⁵ relative of that closed form (tests below); it is
//! not the derivative of the `s`-step RK4 primal, which differs from it by RK4's own
//! truncation error (at `s = 1` by far more than 10⁻⁴ on inputs where the value is not tiny).
//!
//! The cost therefore does not grow with `s`: the step count is set by the tolerances and the
//! few leading components that are not negligible (GradBench's inputs, `x ∈ [0, 1)`, need
//! 6–10 steps each way), and each step is a handful of length-`n` vector ops. The previous
//! implementation — reverse mode on the scalar `Var` tape through all `s` RK4 steps, checkpointed
//! in blocks — cost ~12 tape nodes per component per step (1.2·10⁸ nodes at `n = 10⁵`,
//! `s = 100`).

use adjoint_core::{grad, Tensor};
use adjoint_solvers::ode::{odeint, AdjointNorm, FirstStep, GradMethod, Method, OdeOptions};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::limits::{product, Limits};
use crate::{parse, timed, try_timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    x: Vec<f64>,
    s: usize,
}

/// Components per block: `y` (twice), the three step coefficients and three shifted stage rows
/// of `BLOCK + 1` values, 16 KB in all ([`ROWS`]).
pub const BLOCK: usize = 256;

/// `y(2)` after `s` RK4 steps from `y(0) = 0`.
pub fn primal(x: &[f64], s: usize) -> Vec<f64> {
    let h = 2.0 / s as f64;
    // Component 0's right-hand side is `x₀ · 1`: a "component −1" that is 1 at every stage.
    let (mut before, mut after) = (vec![1.0; 4 * s], vec![0.0; 4 * s]);
    let mut y = vec![0.0; x.len()];
    let mut rows = vec![0.0; ROWS * (BLOCK + 1)];
    for (xb, yb) in x.chunks(BLOCK).zip(y.chunks_mut(BLOCK)) {
        block(xb, h, &before, &mut after, yb, &mut rows);
        std::mem::swap(&mut before, &mut after);
    }
    y
}

/// The rows [`block`] works in: the three step coefficients, `y` twice and three stage rows.
const ROWS: usize = 8;

/// Components `x.len() ≤ BLOCK` through all steps of size `h`, from `y = 0`, in the widest
/// SIMD build the CPU runs. `before` holds the stage values (`y`, `y + h/2·k₁`, `y + h/2·k₂`,
/// `y + h·k₃` per step) of the component before the block; the block writes its last
/// component's into `after` and its values at `t = 2` into `y`. `rows` is scratch space
/// (`ROWS · (BLOCK + 1)` values, reused from block to block: no zeroing per block).
fn block(x: &[f64], h: f64, before: &[f64], after: &mut [f64], y: &mut [f64], rows: &mut [f64]) {
    adjoint_tensor::dispatch_simd!(block_body, block_avx2, block_avx512, (x, h, before, after, y, rows))
}

adjoint_tensor::simd_builds!(block_body => block_avx2, block_avx512, [],
    (x: &[f64], h: f64, before: &[f64], after: &mut [f64], y: &mut [f64], rows: &mut [f64]));

/// [`block`]'s body. Each stage slope is `k_q = x·u_q` with `u_q` the stage value of the
/// component before, so the products `x·h/2`, `x·h`, `x·h/6` are formed once per component and
/// the step update `h/6·(k₁ + 2k₂ + 2k₃ + k₄)` is `(x·h/6)·(u₀ + u₃ + 2(u₁ + u₂))`: the same RK4
/// step with 12 operations instead of 17 (rounding differs from the textbook order in the last
/// bits). The rows `u₀…u₃` are stored shifted by one (`u[q][i]` is component `i − 1`'s, slot 0
/// the component before the block), so every stage is a plain loop over the block.
#[inline(always)]
fn block_body(x: &[f64], h: f64, before: &[f64], after: &mut [f64], y: &mut [f64], rows: &mut [f64]) {
    let m = x.len();
    debug_assert!(m <= BLOCK && y.len() == m && before.len() == after.len());
    let mut rows = rows.chunks_exact_mut(BLOCK + 1).map(|r| &mut r[..=m]);
    let mut row = || rows.next().expect("ROWS rows");
    let (a, b, c) = (row(), row(), row());
    for i in 0..m {
        (a[i], b[i], c[i]) = (x[i] * (h / 2.0), x[i] * h, x[i] * (h / 6.0));
    }
    let (a, b, c) = (&a[..m], &b[..m], &c[..m]);
    // `u0` is `y` itself, shifted: this step's values in `u0`, the next step's built in `next`.
    let (mut u0, mut next) = (row(), row());
    u0[1..].fill(0.0);
    let (u1, u2, u3) = (row(), row(), row());
    for (from, to) in before.chunks_exact(4).zip(after.chunks_exact_mut(4)) {
        (u0[0], u1[0], u2[0], u3[0]) = (from[0], from[1], from[2], from[3]);
        {
            let (yv, u0s, u1o) = (&u0[1..=m], &u0[..m], &mut u1[1..=m]);
            for i in 0..m {
                u1o[i] = yv[i] + a[i] * u0s[i];
            }
        }
        {
            let (yv, u1s, u2o) = (&u0[1..=m], &u1[..m], &mut u2[1..=m]);
            for i in 0..m {
                u2o[i] = yv[i] + a[i] * u1s[i];
            }
        }
        {
            let (yv, u2s, u3o) = (&u0[1..=m], &u2[..m], &mut u3[1..=m]);
            for i in 0..m {
                u3o[i] = yv[i] + b[i] * u2s[i];
            }
        }
        {
            let (yv, p0, p1, p2, p3) = (&u0[1..=m], &u0[..m], &u1[..m], &u2[..m], &u3[..m]);
            let yn = &mut next[1..=m];
            for i in 0..m {
                yn[i] = yv[i] + c[i] * ((p0[i] + p3[i]) + (p1[i] + p2[i]) * 2.0);
            }
        }
        (to[0], to[1], to[2], to[3]) = (u0[m], u1[m], u2[m], u3[m]);
        std::mem::swap(&mut u0, &mut next);
    }
    y.copy_from_slice(&u0[1..=m]);
}

/// The options [`gradient`] solves with: odeint's default tolerances, which keep the gradient
/// ~10⁻⁵ relative (≲ 10⁻⁷ in GradBench's measure) from the closed form, a thousandfold inside
/// GradBench's 10⁻⁴; `Backsolve` skips the forward re-integration and dense interpolation that
/// `Adjoint` does per interval; `FirstStep::Refined` starts the forward solve from `y(0) = 0`
/// at its estimated step instead of SciPy's ×10-per-step ramp from 10⁻⁴ (5 steps instead of 8
/// at `n = 10⁵`).
pub const OPTS: OdeOptions = OdeOptions {
    method: Method::Tsit5,
    rtol: 1e-6,
    atol: 1e-9,
    max_steps: 10_000,
    grad: GradMethod::Backsolve,
    adjoint_norm: AdjointNorm::Seminorm,
    first_step: FirstStep::Refined,
};

/// `∂yₙ₋₁(2)/∂x` of the continuous solution, by odeint's gradient with `opts` (see the module
/// docs).
pub fn gradient_with(x: &[f64], opts: &OdeOptions) -> Vec<f64> {
    let n = x.len();
    let y0 = Tensor::from_vec(vec![0.0f64; n], &[n]);
    // ẏ = x · (1, y₀, …, yₙ₋₂): the state shifted by one with a 1 in front (one copy).
    let one = Tensor::from_vec(vec![1.0f64], &[1]);
    let rhs = move |y: &Tensor, _t: f64, x: &Tensor| x * Tensor::concat(&[&one, &y.narrow(0, 0, n - 1)], 0);
    let opts = *opts;
    let last = move |x: &Tensor| {
        odeint(rhs.clone(), &y0, &[0.0, 2.0], x, &opts).narrow(0, 1, 1).narrow(1, n - 1, 1).sum()
    };
    grad(last)(&Tensor::from_slice(x, &[n])).to_vec::<f64>()
}

/// `∂yₙ₋₁(2)/∂x` of the ODE's continuous solution, with [`OPTS`]; `s` (the primal's step
/// count) does not enter.
pub fn gradient(x: &[f64], _s: usize) -> Vec<f64> {
    gradient_with(x, &OPTS)
}

/// Refuse inputs whose continuous solution leaves `f64`: `yₖ(2) = ∏_{i≤k} xᵢ · 2^{k+1}/(k+1)!`,
/// so the largest `ln |yₖ(2)|` is a running sum; the solver cannot integrate through an
/// overflow (its steps shrink to nothing), and the answer would be infinite anyway.
fn check_magnitude(x: &[f64]) -> Result<(), String> {
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(format!("ode: x[{i}] = {} is not finite", x[i]));
    }
    let mut log = 0.0f64;
    for (k, v) in x.iter().enumerate() {
        log += (2.0 * v.abs()).ln() - ((k + 1) as f64).ln();
        if log > 600.0 {
            return Err(format!(
                "ode: the solution overflows f64 (|y_{k}(2)| ≈ e^{log:.0}); inputs this large have no finite gradient"
            ));
        }
    }
    Ok(())
}

/// [`gradient`], with a failure of the adaptive solver (step size underflow, too many steps)
/// as an error instead of a panic: the input, not the caller, is at fault.
pub fn try_gradient(x: &[f64], s: usize) -> Result<Vec<f64>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gradient(x, s))).map_err(|e| {
        let msg = e.downcast_ref::<String>().map(String::as_str).or(e.downcast_ref::<&str>().copied());
        format!("ode: the adaptive solver failed on this input: {}", msg.unwrap_or("(no message)"))
    })
}

/// Evaluate `primal` or `gradient`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    let inp: Input = match parse("ode", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    if inp.x.is_empty() || inp.s == 0 {
        return Some(Err("ode: x must be non-empty and s positive".into()));
    }
    // Per run, the primal takes n·s component steps and keeps two rows of 4s stage values; the
    // gradient (odeint's adjoint) does not depend on s and keeps a few dozen n-vectors.
    let (n, s) = (inp.x.len() as u64, inp.s as u64);
    let checked = match function {
        "gradient" => {
            limits.check_memory(&format!("ode: 32 vectors of n = {n} values"), product(&[32, n]), 8)
        }
        _ => limits
            .check_steps(&format!("ode: n = {n} components × s = {s} steps"), product(&[n, s]))
            .and_then(|_| {
                limits.check_memory(
                    &format!("ode: stage values for s = {s} steps (2 rows of 4·s)"),
                    product(&[8, s]),
                    8,
                )
            }),
    };
    if let Err(e) = checked {
        return Some(Err(e));
    }
    let (x, s) = (inp.x, inp.s);
    Some(Ok(match function {
        "primal" => timed(input, || primal(&x, s), |y| json!(y)),
        "gradient" => {
            if let Err(e) = check_magnitude(&x) {
                return Some(Err(e));
            }
            match try_timed(input, || try_gradient(&x, s), |g| json!(g)) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            }
        }
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The primal one component at a time through all `s` steps (the previous implementation):
    /// the same operations in the same order as [`block_body`], without blocks or vectors.
    fn primal_by_component(x: &[f64], s: usize) -> Vec<f64> {
        let h = 2.0 / s as f64;
        let (mut prev, mut cur) = (vec![1.0; 4 * s], vec![0.0; 4 * s]);
        let mut out = Vec::new();
        for &xi in x {
            let (a, b, c) = (xi * (h / 2.0), xi * h, xi * (h / 6.0));
            let mut y = 0.0;
            for (u, st) in prev.chunks_exact(4).zip(cur.chunks_exact_mut(4)) {
                st.copy_from_slice(&[y, y + a * u[0], y + a * u[1], y + b * u[2]]);
                y += c * ((u[0] + u[3]) + (u[1] + u[2]) * 2.0);
            }
            out.push(y);
            std::mem::swap(&mut prev, &mut cur);
        }
        out
    }

    /// Textbook RK4 on whole vectors (`k₁ = f(y)`, `k₂ = f(y + h/2·k₁)`, …, as GradBench's
    /// manual tool runs it).
    fn primal_textbook(x: &[f64], s: usize) -> Vec<f64> {
        let h = 2.0 / s as f64;
        let f = |y: &[f64]| -> Vec<f64> {
            (0..x.len()).map(|i| x[i] * if i == 0 { 1.0 } else { y[i - 1] }).collect()
        };
        let axpy =
            |y: &[f64], c: f64, k: &[f64]| -> Vec<f64> { y.iter().zip(k).map(|(y, k)| y + c * k).collect() };
        let mut y = vec![0.0; x.len()];
        for _ in 0..s {
            let k1 = f(&y);
            let k2 = f(&axpy(&y, h / 2.0, &k1));
            let k3 = f(&axpy(&y, h / 2.0, &k2));
            let k4 = f(&axpy(&y, h, &k3));
            for i in 0..y.len() {
                y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
            }
        }
        y
    }

    /// The blocked, vectorised primal gives the component-by-component result bit for bit (block
    /// edges, a partial last block, one component) and the textbook RK4 to rounding.
    #[test]
    fn primal_matches_both_references() {
        for n in [1, 2, 7, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17] {
            for s in [1, 2, 5, 33] {
                let x = xs(n, 0.5);
                let got = primal(&x, s);
                let bits = |v: &[f64]| v.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&primal_by_component(&x, s)), "n={n} s={s}");
                for (i, (g, t)) in got.iter().zip(primal_textbook(&x, s)).enumerate() {
                    assert!((g - t).abs() <= 1e-13 * t.abs().max(1e-300), "n={n} s={s} [{i}]: {g} vs {t}");
                }
            }
        }
    }

    /// `x` with entries in `[lo, lo + 2)`, deterministic.
    fn xs(n: usize, lo: f64) -> Vec<f64> {
        (0..n).map(|i| lo + ((i * 37 + 11) % 17) as f64 / 8.0).collect()
    }

    /// manual's closed form: `yᵢ(t) = x₀⋯xᵢ · tⁱ⁺¹/(i+1)!`, so `∂yₙ₋₁(2)/∂xᵢ = x₀⋯xₙ₋₁ · 2ⁿ/n! / xᵢ`.
    fn closed_form(x: &[f64]) -> Vec<f64> {
        let y = x.iter().enumerate().fold(1.0, |acc, (i, xi)| acc * xi * 2.0 / (i + 1) as f64);
        x.iter().map(|xi| y / xi).collect()
    }

    /// GradBench's `difference` (ADBench's): `|a − b| / max(1, |a| + |b|)`; valid when ≤ 10⁻⁴.
    fn difference(a: f64, b: f64) -> f64 {
        (a - b).abs() / (a.abs() + b.abs()).max(1.0)
    }

    /// Against the closed form where the values are not negligible (`|∂yₙ₋₁/∂xᵢ|` from ~5·10⁻⁴ to
    /// ~10): at most 2·10⁻⁵ relative (seen: 7·10⁻⁶) and 10⁻⁶ in GradBench's measure (seen: 10⁻⁷).
    #[test]
    fn gradient_matches_the_closed_form() {
        for n in 5..=12 {
            for lo in [0.5, 1.5] {
                let x = xs(n, lo);
                let (g, c) = (gradient(&x, 1), closed_form(&x));
                for (i, (g, c)) in g.iter().zip(&c).enumerate() {
                    assert!((g - c).abs() <= 2e-5 * c.abs(), "n={n} lo={lo} [{i}]: {g} vs closed form {c}");
                    assert!(difference(*g, *c) <= 1e-6, "n={n} lo={lo} [{i}]: {g} vs closed form {c}");
                }
            }
        }
    }

    /// Against central differences of the primal with many steps (`s = 1000`: RK4's error is
    /// far below the differences' own), at most 2·10⁻⁵ relative.
    #[test]
    fn gradient_matches_finite_differences() {
        let x = xs(8, 0.75);
        let g = gradient(&x, 3);
        let h = 1e-5;
        for i in 0..x.len() {
            let at = |d: f64| {
                let mut xd = x.clone();
                xd[i] += d;
                *primal(&xd, 1000).last().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!((g[i] - fd).abs() <= 2e-5 * fd.abs(), "[{i}]: AD {} vs finite differences {fd}", g[i]);
        }
    }

    /// A GradBench-sized input (`x` uniform in `[0, 1)`): the closed form underflows to zero
    /// past the first few hundred components and so does the adjoint; valid in GradBench's measure.
    #[test]
    fn gradbench_sized_input_is_valid() {
        let mut state = 31337u64;
        let x: Vec<f64> = (0..2000)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        let (g, c) = (gradient(&x, 10), closed_form(&x));
        assert!(g.iter().zip(&c).all(|(g, c)| g.is_finite() && difference(*g, *c) <= 1e-4));
    }
}
