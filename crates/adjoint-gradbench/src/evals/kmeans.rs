//! `kmeans`: `f(C) = Σᵢ minⱼ ‖Cⱼ - Pᵢ‖²`; `dir = J ⊘ diag(H)`.
//!
//! The minimum over `j` is piecewise smooth: on each piece it *is* one of the distances, and its
//! derivative is that distance's (the rule adjoint's `reduce_min` applies, through a mask built
//! from values only). So the program first finds, for every point, the active piece — its
//! nearest centroid `jᵢ` — from plain `f64` values (control flow, like the comparisons of a
//! loop-and-`if` minimum), and then evaluates `Σᵢ ‖C[jᵢ] - Pᵢ‖²` on the tensor tier, where
//! forward-over-reverse, `jvp(grad f, C, 1)`, gives the gradient `J` and the Hessian's
//! diagonal together (the Hessian of this objective is diagonal, so `H·1` *is* its diagonal:
//! JAX's recipe, and GradBench's intended one). Every derivative comes from adjoint's AD; no
//! cluster-mean formula is written down.
//!
//! The search ranks centroids by `‖c‖² - 2 p·c`, one `gemm` per block of points, then measures
//! the chosen distance directly (so `cost` matches a plain loop to the last bit). It is the
//! `n·k·d` part; the differentiated part is only `n·d`, summed over chunks of points so its
//! temporaries stay small. Differentiating the dense `[n, k]` distance matrix instead, as
//! before, took seconds at `n = 10⁴`, `k = 10³`: forward-over-reverse through it moves dozens
//! of 80 MB temporaries (the min's mask, its tangent, the transposed products), although all
//! but `n` of its `n·k` entries have zero derivative.

use adjoint_core::{grad, jvp, Array, Tensor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::tensor;
use crate::limits::{product, sum, Limits};
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    points: Vec<Vec<f64>>,
    centroids: Vec<Vec<f64>>,
}

/// Scores per block of the nearest-centroid search (`rows × k`, 128 KiB of `f64`): the block's
/// points, scores and the product's packing stay in L2 (at 512 KiB, k = 10, d = 16 took 1.3 ms).
const BLOCK_SCORES: usize = 1 << 14;

/// For each point, its nearest centroid and the squared distance to it.
///
/// The search ranks centroids by `‖c‖² - 2 p·c` (the distance less the point's own `‖p‖²`),
/// which for a block of points is one matrix product `[P, 1]·[-2Cᵀ; ‖C‖²]` (`gemm`, through
/// adjoint-tensor's `matmul`); first on ties. The distance to the chosen centroid is then
/// computed directly, `Σₗ (pₗ - cₗ)²` in order, so no cancellation reaches the cost.
fn nearest(p: &[f64], c: &[f64], d: usize, mut visit: impl FnMut(usize, usize, f64)) {
    let k = c.len() / d;
    // [-2Cᵀ; ‖C‖²], `[d + 1, k]`.
    let mut rhs = vec![0.0; (d + 1) * k];
    for (j, cj) in c.chunks_exact(d).enumerate() {
        for (l, &v) in cj.iter().enumerate() {
            rhs[l * k + j] = -2.0 * v;
        }
        rhs[d * k + j] = cj.iter().map(|v| v * v).sum();
    }
    let rhs = Array::from_vec(rhs, &[d + 1, k]);
    let rows = (BLOCK_SCORES / k).max(16);
    for (b, block) in p.chunks(rows * d).enumerate() {
        // `[P, 1]` in a buffer of adjoint's cache, moved into the array (no copy) and back to
        // the cache when it drops (before: one `Vec` per call from glibc, copied again by
        // `Array::from_slice`).
        let mut lhs: Vec<f64> = adjoint_tensor::cache::take(block.len() / d * (d + 1));
        for pi in block.chunks_exact(d) {
            lhs.extend_from_slice(pi);
            lhs.push(1.0);
        }
        let lhs = Array::from_vec(lhs, &[block.len() / d, d + 1]);
        let scores = lhs.matmul(&rhs);
        let scores = scores.as_slice::<f64>().expect("a fresh product is contiguous");
        for (r, (pi, row)) in block.chunks_exact(d).zip(scores.chunks_exact(k)).enumerate() {
            let arg = argmin(row);
            let cj = &c[arg * d..(arg + 1) * d];
            let dist = pi.iter().zip(cj).fold(0.0, |acc, (a, b)| acc + (a - b) * (a - b));
            visit(b * rows + r, arg, dist);
        }
    }
}

/// Index of the first smallest element: the minimum over eight independent lanes (vectorises),
/// then the first position holding it.
fn argmin(row: &[f64]) -> usize {
    // `if v < m` (not `f64::min`, whose NaN rule blocks the plain vector minimum).
    let smaller = |m: f64, v: f64| if v < m { v } else { m };
    let mut lanes = [f64::INFINITY; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(f64::INFINITY, |m, &v| smaller(m, v));
    for ch in chunks {
        for (m, &v) in lanes.iter_mut().zip(ch) {
            *m = smaller(*m, v);
        }
    }
    let best = lanes.iter().fold(tail, |m, &v| smaller(m, v));
    row.iter().position(|&v| v == best).unwrap_or(0)
}

/// The k-means cost of centroids `c` `[k, d]` for points `p` `[n, d]` (plain `f64`).
pub fn cost(p: &[f64], c: &[f64], d: usize) -> f64 {
    let mut total = 0.0;
    nearest(p, c, d, |_, _, dist| total += dist);
    total
}

/// Points per chunk of the differentiated sum (256 KiB per `[rows, d]` temporary at `d = 16`).
pub const CHUNK_POINTS: usize = 2048;

/// `Σᵢ ‖C[jᵢ] - Pᵢ‖²`: the cost on the piece where point `i`'s nearest centroid is `jᵢ`;
/// equal to the cost there, and differentiable in `c` `[k, d]`. The points come in chunks `ps`
/// (`[rows, d]`) with their centroid indices `assigns` (`i64` `[rows]`), and the sum runs
/// chunk by chunk, so every temporary stays small and in cache.
pub fn assigned_cost(ps: &[Tensor], assigns: &[Tensor], c: &Tensor) -> Tensor {
    ps.iter()
        .zip(assigns)
        .map(|(p, a)| {
            let diff = &c.index_select(0, a) - p;
            (&diff * &diff).sum()
        })
        .reduce(|s, t| &s + &t)
        .expect("there are points")
}

/// `J ⊘ diag(H)` for centroids `c` (data `[k, d]`): the active pieces from [`nearest`], then
/// `jvp(grad assigned_cost, C, 1)`.
pub fn dir(p_data: &[f64], ps: &[Tensor], c_data: &[f64], c: &Tensor) -> Tensor {
    let d = c.shape()[1];
    let mut assign = vec![0i64; p_data.len() / d];
    nearest(p_data, c_data, d, |i, j, _| assign[i] = j as i64);
    let assigns: Vec<Tensor> =
        assign.chunks(CHUNK_POINTS).map(|a| Tensor::from_slice(a, &[a.len()])).collect();
    let g = grad(|c: &Tensor| assigned_cost(ps, &assigns, c));
    let (j, h) = jvp(|c: &Tensor| g(c), c, &c.ones_like());
    &j / &h
}

fn flat(rows: &[Vec<f64>], what: &str) -> Result<(Vec<f64>, usize, usize), String> {
    let d = rows.first().map(Vec::len).ok_or_else(|| format!("kmeans: {what} is empty"))?;
    if d == 0 || rows.iter().any(|r| r.len() != d) {
        return Err(format!("kmeans: rows of {what} must all have the same positive length"));
    }
    Ok((rows.concat(), rows.len(), d))
}

/// Evaluate `cost` or `dir`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    let parsed = parse::<Input>("kmeans", input).and_then(|inp| {
        let (p, _, d) = flat(&inp.points, "points")?;
        let (c, k, dc) = flat(&inp.centroids, "centroids")?;
        if d != dc {
            return Err(format!("kmeans: points have {d} dimensions but centroids {dc}"));
        }
        // n·k·d for the search; copies of the points and centroids, a block of scores.
        let (n, k64, d64) = ((p.len() / d) as u64, k as u64, d as u64);
        limits.check_steps(&format!("kmeans: n·k·d = {n}·{k}·{d}"), product(&[n, k64, d64]))?;
        let scores = (BLOCK_SCORES as u64).max(product(&[16, k64]));
        limits.check_memory(
            &format!("kmeans: {n} points and {k} centroids of {d} dimensions"),
            sum(&[product(&[4, n, d64]), product(&[4, k64, d64 + 1]), scores, n]),
            8,
        )?;
        Ok((p, c, k, d))
    });
    let (p_data, c_data, k, d) = match parsed {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(match function {
        "cost" => timed(input, || cost(&p_data, &c_data, d), |v| json!(v)),
        "dir" => {
            let ps: Vec<Tensor> =
                p_data.chunks(CHUNK_POINTS * d).map(|b| tensor(b, &[b.len() / d, d])).collect();
            let c = tensor(&c_data, &[k, d]);
            timed(
                input,
                || dir(&p_data, &ps, &c_data, &c),
                |dir| {
                    let v = dir.to_vec::<f64>();
                    json!((0..k).map(|i| v[i * d..(i + 1) * d].to_vec()).collect::<Vec<_>>())
                },
            )
        }
        _ => return None,
    }))
}
