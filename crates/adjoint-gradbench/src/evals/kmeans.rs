//! `kmeans`: `f(C) = Σᵢ minⱼ ‖Cⱼ - Pᵢ‖²`; `dir = J ⊘ diag(H)`.
//!
//! Tensor tier. Distances come from one matrix product (`‖p‖² - 2 p·c + ‖c‖²`); the
//! gradient `J` and the Hessian's diagonal come together from one forward-over-reverse pass,
//! `jvp(grad f, C, 1)`: the Hessian of this objective is diagonal, so `H·1` *is* its
//! diagonal (JAX's recipe, and GradBench's intended one).

use adjoint_core::{grad, jvp, Tensor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::tensor;
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    points: Vec<Vec<f64>>,
    centroids: Vec<Vec<f64>>,
}

/// The k-means cost of centroids `c` [k, d] for points `p` [n, d].
pub fn cost(p: &Tensor, p_sq: &Tensor, c: &Tensor) -> Tensor {
    let k = c.shape()[0];
    let c_sq = (c * c).sum_axes(&[1], false).reshape(&[1, k]);
    let dist = &(p_sq - &(p.matmul(&c.t()) * 2.0)) + &c_sq;
    dist.min_axes(&[1], false).sum()
}

fn flat(rows: &[Vec<f64>], what: &str) -> Result<(Vec<f64>, usize, usize), String> {
    let d = rows.first().map(Vec::len).ok_or_else(|| format!("kmeans: {what} is empty"))?;
    if d == 0 || rows.iter().any(|r| r.len() != d) {
        return Err(format!("kmeans: rows of {what} must all have the same positive length"));
    }
    Ok((rows.concat(), rows.len(), d))
}

/// Evaluate `cost` or `dir`.
pub fn evaluate(function: &str, input: &Value) -> Option<Result<Evaluated, String>> {
    let parsed = parse::<Input>("kmeans", input).and_then(|inp| {
        let (p, n, d) = flat(&inp.points, "points")?;
        let (c, k, dc) = flat(&inp.centroids, "centroids")?;
        if d != dc {
            return Err(format!("kmeans: points have {d} dimensions but centroids {dc}"));
        }
        Ok((tensor(&p, &[n, d]), tensor(&c, &[k, d])))
    });
    let (p, c) = match parsed {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    // A constant of the data, like the points themselves.
    let p_sq = (&p * &p).sum_axes(&[1], true);
    let (k, d) = (c.shape()[0], c.shape()[1]);
    Some(Ok(match function {
        "cost" => timed(input, || cost(&p, &p_sq, &c).item(), |v| json!(v)),
        "dir" => timed(
            input,
            || {
                let g = grad(|c: &Tensor| cost(&p, &p_sq, c));
                let (j, h) = jvp(|c: &Tensor| g(c), &c, &c.ones_like());
                &j / &h
            },
            |dir| {
                let v = dir.to_vec::<f64>();
                json!((0..k).map(|i| v[i * d..(i + 1) * d].to_vec()).collect::<Vec<_>>())
            },
        ),
        _ => return None,
    }))
}
