//! `lstm`: the ADBench LSTM language-model loss and its gradient with respect to the main
//! and extra parameters.
//!
//! Scalar tier: the model is a long sequential loop over vectors of a few elements (the
//! character width, ~7), so the `Var` tape — a few nanoseconds per node, one reverse sweep —
//! beats tensor ops, whose per-op cost would dominate such tiny vectors.

// The model indexes several parallel slices (weights, biases, state) with one index; an
// index loop says that more plainly than zipped iterators.
#![allow(clippy::needless_range_loop)]

use adjoint_scalar::{Real, Tape, Var};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::limits::{product, Limits};
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    main_params: Vec<Vec<f64>>,
    extra_params: Vec<Vec<f64>>,
    state: Vec<Vec<f64>>,
    sequence: Vec<Vec<f64>>,
}

/// Sizes: `l` layers, `c` characters, `b` bits per character.
#[derive(Clone, Copy)]
pub struct Dims {
    l: usize,
    c: usize,
    b: usize,
}

fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// The loss; `main` is `[2l][4b]` and `extra` `[3][b]` flattened row-major; `state`
/// `[2l][b]` and `seq` `[c][b]` are data.
pub fn objective<T: Real>(dims: Dims, main: &[T], extra: &[T], state: &[f64], seq: &[f64]) -> T {
    let Dims { l, c, b } = dims;
    let mut st: Vec<T> = state.iter().map(|&v| T::lit(v)).collect();
    let mut ypred = vec![T::zero(); b];
    let mut total = T::zero();
    let (in_w, out_w, out_b) = (&extra[..b], &extra[b..2 * b], &extra[2 * b..3 * b]);
    for t in 0..c - 1 {
        let input = &seq[t * b..(t + 1) * b];
        for i in 0..b {
            ypred[i] = in_w[i] * T::lit(input[i]);
        }
        for layer in 0..l {
            let w = &main[8 * b * layer..8 * b * layer + 4 * b];
            let bias = &main[8 * b * layer + 4 * b..8 * b * (layer + 1)];
            let (hidden, cell) = st[2 * b * layer..2 * b * (layer + 1)].split_at_mut(b);
            for i in 0..b {
                let x = ypred[i];
                let forget = sigmoid(x * w[i] + bias[i]);
                let ingate = sigmoid(hidden[i] * w[b + i] + bias[b + i]);
                let outgate = sigmoid(x * w[2 * b + i] + bias[2 * b + i]);
                let change = (hidden[i] * w[3 * b + i] + bias[3 * b + i]).tanh();
                cell[i] = cell[i] * forget + ingate * change;
                hidden[i] = outgate * cell[i].tanh();
            }
            ypred.copy_from_slice(hidden);
        }
        for i in 0..b {
            ypred[i] = ypred[i] * out_w[i] + out_b[i];
        }
        let mut sum = T::zero();
        for &y in &ypred {
            sum += y.exp();
        }
        let lse = (sum + T::lit(2.0)).ln();
        let gold = &seq[(t + 1) * b..(t + 2) * b];
        for i in 0..b {
            total += (ypred[i] - lse) * T::lit(gold[i]);
        }
    }
    -total / T::lit(((c - 1) * b) as f64)
}

fn flatten(rows: &[Vec<f64>], count: usize, width: usize, what: &str) -> Result<Vec<f64>, String> {
    if rows.len() != count || rows.iter().any(|r| r.len() != width) {
        return Err(format!("lstm: {what} must be {count} rows of {width}"));
    }
    Ok(rows.concat())
}

type Prepared = (Dims, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

fn prepare(inp: Input, limits: &Limits, jacobian: bool) -> Result<Prepared, String> {
    let l = inp.main_params.len() / 2;
    let b = inp.main_params.first().map_or(0, |r| r.len() / 4);
    let c = inp.sequence.len();
    if l == 0 || b == 0 || c < 2 {
        return Err("lstm: need at least one layer, one bit and two characters".into());
    }
    // c·l·b cell updates of ~40 operations each (tape nodes for the jacobian).
    let work = product(&[c as u64, l as u64, b as u64]);
    limits.check_steps(&format!("lstm: {c} characters × {l} layers × {b} bits"), work)?;
    if jacobian {
        limits.check_tape(
            &format!("lstm: the jacobian's tape for {c} characters × {l} layers × {b} bits"),
            product(&[work, 40]),
        )?;
    }
    let main = flatten(&inp.main_params, 2 * l, 4 * b, "main_params")?;
    let extra = flatten(&inp.extra_params, 3, b, "extra_params")?;
    let state = flatten(&inp.state, 2 * l, b, "state")?;
    let seq = flatten(&inp.sequence, c, b, "sequence")?;
    Ok((Dims { l, c, b }, main, extra, state, seq))
}

/// Evaluate `objective` or `jacobian`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    let (dims, main, extra, state, seq) =
        match parse::<Input>("lstm", input).and_then(|i| prepare(i, limits, function == "jacobian")) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
    Some(Ok(match function {
        "objective" => timed(input, || objective(dims, &main, &extra, &state, &seq), |v| json!(v)),
        "jacobian" => timed(
            input,
            || {
                let tape = Tape::new();
                let vars: Vec<Var> = tape.vars(&[main.as_slice(), extra.as_slice()].concat());
                let (mv, ev) = vars.split_at(main.len());
                let y = objective(dims, mv, ev, &state, &seq);
                let mut g = vec![0.0; vars.len()];
                tape.gradient_into(y, &vars, &mut g);
                g
            },
            |g| json!(g),
        ),
        _ => return None,
    }))
}
