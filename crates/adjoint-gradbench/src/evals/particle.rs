//! `particle`: Pearlmutter & Siskind's charged-particle benchmark — gradient descent on the
//! control `w`, where the objective integrates the particle with naive Euler steps whose
//! acceleration is itself a gradient. Nested AD; the four functions pick the outer (argmin)
//! and inner (Euler) modes: `ff`, `fr`, `rf`, `rr`.
//!
//! Tensor tier: the `Var` tape is `f64`-only, so reverse-over-reverse needs tensors, and using
//! one implementation for all four keeps them comparable.

use adjoint_core::Tensor;
use serde::Deserialize;
use serde_json::{json, Value};

use super::gd::{argmin, gradient, Mode};
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    w: f64,
}

/// `Σ 1/‖p - x‖` over the charges `p` (each `[2]`), for `x` `[2]`.
fn accel(charges: &[Tensor; 2], x: &Tensor) -> Tensor {
    let mut a = Tensor::scalar(0.0f64);
    for p in charges {
        let d = p - x;
        a = &a + &(&d * &d).sum().sqrt().recip();
    }
    a
}

/// `x₀(t_f)²` for the control `w` (`[1]`), with the inner gradient by `inner`.
fn objective(inner: Mode, w: &Tensor) -> Tensor {
    let w0 = w.reshape(&[1]);
    let ten = Tensor::from_vec(vec![10.0f64], &[1]);
    let charges = [Tensor::concat(&[&ten, &(10.0 - &w0)], 0), Tensor::from_vec(vec![10.0f64, 0.0], &[2])];
    let mut x = Tensor::from_vec(vec![0.0f64, 8.0], &[2]);
    let mut xdot = Tensor::from_vec(vec![0.75f64, 0.0], &[2]);
    let dt = 0.1;
    loop {
        let xddot = -gradient(inner, &|x: &Tensor| accel(&charges, x), &x);
        x = &x + &(&xdot * dt);
        let (x1, v1) = (x.narrow(0, 1, 1), xdot.narrow(0, 1, 1));
        if x1.item() <= 0.0 {
            let dt_f = -(&x1 / &v1);
            let x_tf = &x + &(&xdot * &dt_f);
            let x0 = x_tf.narrow(0, 0, 1);
            return (&x0 * &x0).sum();
        }
        xdot = &xdot + &(&xddot * dt);
    }
}

/// The optimised control `w` from the start `w0`.
pub fn solve(outer: Mode, inner: Mode, w0: f64) -> f64 {
    let f = |w: &Tensor| objective(inner, w);
    let g = |w: &Tensor| gradient(outer, &f, w);
    argmin(&f, &g, &Tensor::from_vec(vec![w0], &[1])).item()
}

/// Evaluate `ff`, `fr`, `rf` or `rr`.
pub fn evaluate(function: &str, input: &Value) -> Option<Result<Evaluated, String>> {
    let (outer, inner) = Mode::pair(function)?;
    let inp: Input = match parse("particle", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(timed(input, || solve(outer, inner, inp.w), |w| json!(w))))
}
