//! GradBench's gradient-descent solver (`cpp/gradbench/gd.hpp`) over tensors, so that it can
//! itself be differentiated (the nested evals `particle` and `saddle` differentiate through
//! it), and gradients in either mode.
//!
//! Control flow reads primal values (`item`), exactly as the C++ solver compares doubles;
//! the derivative follows the path taken.
//!
//! Unlike the C++ solver, [`argmin`] stops with an error when the objective or gradient is not
//! finite (where the C++ loop would halve its step forever) and after the iterations of its
//! [`Budget`] are spent.

use adjoint_core::{grad, jvp, Tensor};

use crate::limits::{Budget, ITERATIONS_ENV};

/// Which AD mode computes a gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward mode: one `jvp` per input direction.
    Forward,
    /// Reverse mode: one `grad`.
    Reverse,
}

impl Mode {
    /// `"ff"` → (outer, inner) modes.
    pub fn pair(function: &str) -> Option<(Mode, Mode)> {
        let m = |c: u8| match c {
            b'f' => Some(Mode::Forward),
            b'r' => Some(Mode::Reverse),
            _ => None,
        };
        match function.as_bytes() {
            [a, b] => Some((m(*a)?, m(*b)?)),
            _ => None,
        }
    }
}

/// `∇f(x)` for `x` of shape `[n]`, by the given mode.
pub fn gradient(mode: Mode, f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor) -> Tensor {
    match mode {
        Mode::Reverse => grad(|x: &Tensor| f(x))(x),
        Mode::Forward => {
            let n = x.shape()[0];
            let cols: Vec<Tensor> = (0..n)
                .map(|i| {
                    let mut e = vec![0.0f64; n];
                    e[i] = 1.0;
                    jvp(|x: &Tensor| f(x), x, &Tensor::from_vec(e, &[n])).1.reshape(&[1])
                })
                .collect();
            let refs: Vec<&Tensor> = cols.iter().collect();
            Tensor::concat(&refs, 0)
        }
    }
}

fn magnitude(v: &Tensor) -> f64 {
    v.value().to_vec::<f64>().iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `argmin f` from `x0` by gradient descent with GradBench's step-size rule; an error once
/// `budget` is spent (each iteration takes one), when `f(x)` or `∇f(x)` at an accepted point
/// is not finite, or when a nested function recorded a failure in `budget` (that reason).
pub fn argmin(
    f: &dyn Fn(&Tensor) -> Tensor,
    g: &dyn Fn(&Tensor) -> Tensor,
    x0: &Tensor,
    budget: &Budget,
) -> Result<Tensor, String> {
    let mut x = x0.clone();
    let mut fx = f(&x);
    let mut gx = g(&x);
    let mut i = 0;
    let mut eta = 1e-5;
    loop {
        if let Some(e) = budget.failure() {
            return Err(e);
        }
        let g_norm = magnitude(&gx);
        if !g_norm.is_finite() || !fx.item().is_finite() {
            return Err(budget.failure().unwrap_or_else(|| {
                format!(
                    "gradient descent reached a non-finite objective ({}) or gradient ({:?}) at x = {:?}",
                    fx.item(),
                    gx.value().to_vec::<f64>(),
                    x.value().to_vec::<f64>()
                )
            }));
        }
        if !budget.take() {
            return Err(budget.failure().unwrap_or_else(|| {
                format!(
                    "gradient descent did not converge within the iteration limit of {} (set {ITERATIONS_ENV})",
                    budget.limit()
                )
            }));
        }
        if g_norm <= 1e-5 {
            return Ok(x);
        } else if i == 10 {
            eta *= 2.0;
            i = 0;
        } else {
            let x_prime = &x - &(&gx * eta);
            if magnitude(&(&x - &x_prime)) <= 1e-5 {
                return Ok(x);
            }
            let fx_prime = f(&x_prime);
            if fx_prime.item() < fx.item() {
                x = x_prime;
                fx = fx_prime;
                gx = g(&x);
                i += 1;
            } else {
                eta /= 2.0;
                i = 0;
            }
        }
    }
}

/// `argmax f` from `x0`: [`argmin`] of `-f`.
pub fn argmax(
    f: &dyn Fn(&Tensor) -> Tensor,
    g: &dyn Fn(&Tensor) -> Tensor,
    x0: &Tensor,
    budget: &Budget,
) -> Result<Tensor, String> {
    argmin(&|x: &Tensor| -f(x), &|x: &Tensor| -g(x), x0, budget)
}
