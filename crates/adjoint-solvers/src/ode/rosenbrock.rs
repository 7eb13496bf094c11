//! The Rosenbrock 2(3) pair of Shampine & Reichelt (MATLAB's `ode23s`, OrdinaryDiffEq.jl's
//! `Rosenbrock23`) for stiff problems: linearly implicit, L-stable, with a free continuous
//! extension.
//!
//! With `d = 1/(2+√2)`, `W = I − h d J` (`J = ∂f/∂y` at the step's start) and `T = ∂f/∂t`:
//!
//! ```text
//! k1 = W⁻¹ (f(t, y) + h d T)
//! F1 = f(t + h/2, y + h/2 k1)
//! k2 = W⁻¹ (F1 − k1) + k1
//! y_new = y + h k2                                   (second order)
//! F2 = f(t + h, y_new)
//! k3 = W⁻¹ (F2 − (6+√2)(k2 − F1) − 2(k1 − f(t, y)) + h d T)
//! err = h/6 (k1 − 2 k2 + k3)                         (third-order estimate)
//! y(t + θh) = y + h (θ(1−θ) k1 + θ(θ−2d) k2) / (1−2d)
//! ```
//!
//! Every quantity is a tensor op: `J` comes from [`jacfwd`] of the right-hand side over the
//! flattened state, `W` is factored once per step attempt by [`lu_factor`] and applied three
//! times by [`lu_solve`], so differentiating through the steps (`GradMethod::Direct`) and the
//! adjoint systems (whose right-hand side contains a VJP of `f`) work unchanged. `T` is a
//! forward difference in `t` (as MATLAB's `ode23s` does; `t` is a plain number). The cost is a
//! dense `n × n` Jacobian and LU per attempt, for `n` the total state size (for the adjoint
//! systems, the state plus the parameters' cotangents): meant for small and medium systems.

use adjoint_core::{jacfwd, Tensor};

use super::integrate::{lincomb, values, Attempt, ErrorEstimate, Rhs, State};
use crate::linalg::{lu_factor, lu_solve};

/// `d = 1 / (2 + √2)`.
const D: f64 = 0.292_893_218_813_452_5;
/// `6 + √2`.
const E32: f64 = 7.414_213_562_373_095;

/// `J` and `T` at a step's start, kept across rejected attempts of the same step.
#[derive(Default)]
pub(crate) struct Linearisation {
    at: Option<(Tensor, Tensor)>,
}

/// The leaves of a state, flattened and concatenated.
fn flat(s: &[Tensor]) -> Tensor {
    let parts: Vec<Tensor> = s.iter().map(|t| t.flatten()).collect();
    let refs: Vec<&Tensor> = parts.iter().collect();
    Tensor::concat(&refs, 0)
}

/// A flat vector cut back into leaves shaped like `like`.
fn unflat(v: &Tensor, like: &[Tensor]) -> State {
    let mut at = 0;
    like.iter()
        .map(|l| {
            let n = l.numel();
            let part = v.narrow(0, at, n).reshape(l.shape());
            at += n;
            part
        })
        .collect()
}

/// The continuous extension's weights for `[k1, k2]` (padded).
pub(crate) fn dense(th: f64) -> [f64; 7] {
    let s = 1.0 / (1.0 - 2.0 * D);
    [th * (1.0 - th) * s, th * (th - 2.0 * D) * s, 0.0, 0.0, 0.0, 0.0, 0.0]
}

/// One attempt of size `h` from `(t, y)` with `f0 = f(t, y)`.
pub(crate) fn attempt(
    rhs: &Rhs,
    t: f64,
    y: &[Tensor],
    f0: &[Tensor],
    h: f64,
    lin: &mut Linearisation,
) -> Attempt {
    let mut nfev = 0;
    let (j, dfdt) = lin
        .at
        .get_or_insert_with(|| {
            let y_flat = flat(y);
            let j = jacfwd(|v: &Tensor| flat(&rhs(&unflat(v, y), t)))(&y_flat);
            let delta = f64::EPSILON.sqrt() * t.abs().max(h.abs()).max(1e-8) * h.signum();
            let dfdt = (flat(&rhs(y, t + delta)) - flat(f0)) * (1.0 / delta);
            nfev += 1;
            (j, dfdt)
        })
        .clone();
    let n = j.shape()[0];
    let w = Tensor::eye(n, j.dtype()) - j * (h * D);
    let (lu, piv) = lu_factor(&w);
    let solve = |b: &Tensor| lu_solve(&lu, &piv, b, false);
    let (f0f, hdt) = (flat(f0), dfdt * (h * D));
    let k1 = solve(&(&f0f + &hdt));
    let y1 = lincomb(y, &[unflat(&k1, y)], &[0.5], h);
    let f1 = flat(&rhs(&y1, t + 0.5 * h));
    let k2 = solve(&(&f1 - &k1)) + &k1;
    let (k1s, k2s) = (unflat(&k1, y), unflat(&k2, y));
    let y_new = lincomb(y, std::slice::from_ref(&k2s), &[1.0], h);
    let f_new = rhs(&y_new, t + h);
    let f2 = flat(&f_new);
    let k3 = solve(&(f2 - (&k2 - &f1) * E32 - (&k1 - &f0f) * 2.0 + hdt));
    nfev += 2;
    let err = values(&[(k1 - k2 * 2.0 + k3) * (h / 6.0)]);
    Attempt { y_new, k: vec![k1s, k2s], err: ErrorEstimate::Values(err), f_new, nfev }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The extension starts at `y` (weights 0 at `θ = 0`) and ends at the step's result
    /// `y + h k2` (weights `[0, 1]` at `θ = 1`).
    #[test]
    fn dense_output_ends() {
        assert_eq!(dense(0.0)[..2], [0.0, 0.0]);
        let w = dense(1.0);
        assert!(w[0].abs() < 1e-15 && (w[1] - 1.0).abs() < 1e-15);
    }
}
