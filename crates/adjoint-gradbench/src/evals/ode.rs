//! `ode`: fourth-order Runge–Kutta for `y₀' = x₀`, `yᵢ' = xᵢ yᵢ₋₁`, `s` steps to `t = 2`;
//! the gradient is that of the last component of `y(2)` with respect to `x`.
//!
//! Scalar tier, reverse mode on the `Var` tape. Component `i` only ever reads component
//! `i - 1`, at the same stage of the same step, so the solver runs component by component:
//! [`component`] integrates one component through all `s` steps given the `4s` stage values
//! of the one before (the usual RK4 steps, reordered), and a component's working set is `4s`
//! numbers instead of whole length-`n` vectors.
//!
//! The gradient is one reverse sweep over that program, recorded in segments so the tape stays
//! in cache (at `n = 10⁵`, `s = 100` the whole program is ~1.2·10⁸ tape nodes): a plain `f64`
//! pass keeps the stage values entering each block of components (checkpoints); then, from the
//! last block back to the first, the block is recorded on a fresh [`Tape`] from its checkpoint
//! and swept, seeded with the adjoints of its outgoing stage values that the later block's sweep
//! produced — reverse mode with checkpointing. `∂/∂x` comes only from the tape.
//!
//! The tensor tier did the same work as `4s` stages of whole-vector ops with a shift by one
//! (`narrow` + `concat`): at `n = 10⁵` its reverse pass allocated and swept hundreds of
//! 800 KB vectors per step, 14× behind `manual`.

use adjoint_scalar::{Real, Tape, Var};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::limits::{product, Limits};
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    x: Vec<f64>,
    s: usize,
}

/// Component `i` through all `s` steps of size `h`, from `yᵢ(0) = 0`: its right-hand side is
/// `x` for `i = 0` (`prev = None`) and `x · yᵢ₋₁` otherwise, `yᵢ₋₁` read at the same stage
/// from `prev` (`4s` values). Writes this component's value at each stage — `y`, `y + h/2·k₁`,
/// `y + h/2·k₂`, `y + h·k₃` per step — into `stages` and returns `yᵢ(2)`.
///
/// Every stage slope is `k_q = x·u_q`, so the products `x·h/2`, `x·h`, `x·h/6` are formed once
/// per component and the step update `h/6·(k₁ + 2k₂ + 2k₃ + k₄)` is `(x·h/6)·(u₀ + u₃ + 2(u₁ + u₂))`:
/// the same RK4 step with 12 operations instead of 17 (rounding differs in the last bits).
fn component<T: Real>(x: T, prev: Option<&[T]>, h: f64, stages: &mut [T]) -> T {
    let (a, b, c) = (x * T::lit(h / 2.0), x * T::lit(h), x * T::lit(h / 6.0));
    let two = T::lit(2.0);
    let mut y = T::zero();
    for (step, out) in stages.chunks_exact_mut(4).enumerate() {
        let [u0, u1, u2, u3] = match prev {
            Some(u) => [u[4 * step], u[4 * step + 1], u[4 * step + 2], u[4 * step + 3]],
            None => [T::one(); 4],
        };
        out[0] = y;
        out[1] = y + a * u0;
        out[2] = y + a * u1;
        out[3] = y + b * u2;
        y += c * ((u0 + u3) + (u1 + u2) * two);
    }
    y
}

/// `y(2)` after `s` RK4 steps from `y(0) = 0`.
pub fn primal(x: &[f64], s: usize) -> Vec<f64> {
    let h = 2.0 / s as f64;
    let (mut prev, mut cur) = (vec![0.0; 4 * s], vec![0.0; 4 * s]);
    let mut y = Vec::with_capacity(x.len());
    for (i, &xi) in x.iter().enumerate() {
        y.push(component(xi, (i > 0).then_some(&prev[..]), h, &mut cur));
        std::mem::swap(&mut prev, &mut cur);
    }
    y
}

/// Tape nodes per block, roughly (12 per component per step): small enough to stay in cache,
/// large enough that the per-block seeding (`8s` nodes) is a few percent.
const BLOCK_NODES: usize = 40_000;

/// `∂yₙ₋₁(2)/∂x` by reverse mode, recorded block by block (see the module docs).
pub fn gradient(x: &[f64], s: usize) -> Vec<f64> {
    let (n, m, h) = (x.len(), 4 * s, 2.0 / s as f64);
    let block = (BLOCK_NODES / (12 * s)).clamp(1, n);
    let blocks = n.div_ceil(block);
    // Forward in f64: the stage values entering block b (those of component b·block - 1).
    let mut checkpoints = vec![0.0; blocks * m];
    let (mut prev, mut cur) = (vec![0.0; m], vec![0.0; m]);
    for (i, &xi) in x.iter().enumerate() {
        if i > 0 && i % block == 0 {
            checkpoints[(i / block) * m..][..m].copy_from_slice(&prev);
        }
        component(xi, (i > 0).then_some(&prev[..]), h, &mut cur);
        std::mem::swap(&mut prev, &mut cur);
    }
    // Reverse, last block first. `bar` holds the adjoints of the stage values leaving the block
    // being swept (from the sweep of the block after it).
    let mut g = vec![0.0; n];
    let mut bar = vec![0.0; m];
    let zero = Var::constant(0.0);
    let (mut prev_v, mut cur_v) = (vec![zero; m], vec![zero; m]);
    let mut adj = vec![0.0; block + m];
    for b in (0..blocks).rev() {
        let (lo, hi) = (b * block, ((b + 1) * block).min(n));
        let tape = Tape::new();
        let mut wrt = tape.vars(&x[lo..hi]);
        if b > 0 {
            for (v, &c) in prev_v.iter_mut().zip(&checkpoints[b * m..][..m]) {
                *v = tape.var(c);
                wrt.push(*v);
            }
        }
        let mut last = zero;
        for (q, i) in (lo..hi).enumerate() {
            last = component(wrt[q], (i > 0).then_some(&prev_v[..]), h, &mut cur_v);
            std::mem::swap(&mut prev_v, &mut cur_v);
        }
        // The block's output: yₙ₋₁(2) for the last block, else its outgoing stage values
        // weighted by their adjoints (a vector-Jacobian product as one scalar).
        let seed = if b + 1 == blocks {
            last
        } else {
            prev_v.iter().zip(&bar).filter(|(_, w)| **w != 0.0).fold(zero, |acc, (&v, &w)| acc + v * w)
        };
        let out = &mut adj[..wrt.len()];
        tape.gradient_into(seed, &wrt, out);
        g[lo..hi].copy_from_slice(&out[..hi - lo]);
        if b > 0 {
            bar.copy_from_slice(&out[hi - lo..]);
        }
    }
    g
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
    // Per run: n·s component steps. Memory: two rows of 4s stage values (primal); at most one
    // checkpoint of 4s stage values per component, plus working rows and the tape (gradient).
    let (n, s) = (inp.x.len() as u64, inp.s as u64);
    let rows = if function == "gradient" { n.saturating_add(12) } else { 2 };
    let checked = limits
        .check_steps(&format!("ode: n = {n} components × s = {s} steps"), product(&[n, s]))
        .and_then(|_| {
            limits.check_memory(
                &format!("ode: stage values for s = {s} steps (4·s per row, {rows} rows)"),
                product(&[4, s, rows]),
                8,
            )
        });
    if let Err(e) = checked {
        return Some(Err(e));
    }
    let (x, s) = (inp.x, inp.s);
    Some(Ok(match function {
        "primal" => timed(input, || primal(&x, s), |y| json!(y)),
        "gradient" => timed(input, || gradient(&x, s), |g| json!(g)),
        _ => return None,
    }))
}
