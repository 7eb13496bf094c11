//! `ba`: bundle adjustment — reprojection errors of `p` observations of `m` points by `n`
//! cameras (ADBench's model: Rodrigues rotation, radial distortion), weighted by per-
//! observation `w`, plus the `1 - w²` weight terms; the sparse Jacobian in ADBench's CSR-like
//! layout.
//!
//! Scalar tier, forward mode: each observation's two residuals depend on 15 inputs (11
//! camera parameters, 3 point coordinates, 1 weight), so one pass with
//! `DualVec<f64, 15>` gives that observation's whole 2 × 15 Jacobian block.
//!
//! As GradBench asks, the input is expanded to its full size (`p` observations) and all of
//! it is evaluated; only the output is abbreviated (first 30 entries and the last one).

use adjoint_scalar::{DualVec, Real};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::limits::{product, sum, Limits};
use crate::{parse, timed, Evaluated};

const NCAM: usize = 11;

#[derive(Deserialize)]
struct Input {
    n: usize,
    m: usize,
    p: usize,
    cam: Vec<f64>,
    x: Vec<f64>,
    w: f64,
    feat: Vec<f64>,
}

/// The expanded problem, as ADBench's reader builds it.
pub struct Problem {
    n: usize,
    m: usize,
    p: usize,
    cams: Vec<f64>,
    x: Vec<f64>,
    w: Vec<f64>,
    obs: Vec<(usize, usize)>,
    feats: Vec<f64>,
}

fn sqsum<T: Real>(v: &[T]) -> T {
    v.iter().fold(T::zero(), |acc, &x| acc + x * x)
}

fn rodrigues_rotate_point<T: Real>(rot: &[T], pt: &[T; 3]) -> [T; 3] {
    let sqtheta = sqsum(rot);
    let cross = |a: &[T], b: &[T; 3]| {
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    };
    if sqtheta != T::zero() {
        let theta = sqtheta.sqrt();
        let (costheta, sintheta) = (theta.cos(), theta.sin());
        let inv = T::one() / theta;
        let w = [rot[0] * inv, rot[1] * inv, rot[2] * inv];
        let wx = cross(&w, pt);
        let tmp = (w[0] * pt[0] + w[1] * pt[1] + w[2] * pt[2]) * (T::one() - costheta);
        std::array::from_fn(|i| pt[i] * costheta + wx[i] * sintheta + w[i] * tmp)
    } else {
        let rx = cross(rot, pt);
        std::array::from_fn(|i| pt[i] + rx[i])
    }
}

/// The weighted reprojection error of point `x` seen by camera `cam` at `feat`.
pub fn reproj_error<T: Real>(cam: &[T], x: &[T], w: T, feat: &[f64]) -> [T; 2] {
    let xo = [x[0] - cam[3], x[1] - cam[4], x[2] - cam[5]];
    let xcam = rodrigues_rotate_point(&cam[0..3], &xo);
    let mut proj = [xcam[0] / xcam[2], xcam[1] / xcam[2]];
    let rsq = sqsum(&proj);
    let l = T::one() + cam[9] * rsq + cam[10] * rsq * rsq;
    proj = [proj[0] * l, proj[1] * l];
    let proj = [proj[0] * cam[6] + cam[7], proj[1] * cam[6] + cam[8]];
    [w * (proj[0] - T::lit(feat[0])), w * (proj[1] - T::lit(feat[1]))]
}

/// Residuals: `2p` reprojection errors and `p` weight errors.
pub fn objective(pb: &Problem) -> (Vec<f64>, Vec<f64>) {
    let mut reproj = Vec::with_capacity(2 * pb.p);
    for (i, &(c, pt)) in pb.obs.iter().enumerate() {
        let e = reproj_error(
            &pb.cams[c * NCAM..(c + 1) * NCAM],
            &pb.x[pt * 3..pt * 3 + 3],
            pb.w[i],
            &pb.feats[2 * i..2 * i + 2],
        );
        reproj.extend_from_slice(&e);
    }
    let w_err = pb.w.iter().map(|&w| 1.0 - w * w).collect();
    (reproj, w_err)
}

/// The sparse Jacobian in ADBench's layout: row starts, column indices, values.
pub struct Sparse {
    rows: Vec<usize>,
    cols: Vec<usize>,
    vals: Vec<f64>,
}

type D15 = DualVec<f64, 15>;

/// The Jacobian of [`objective`], one forward pass per observation.
pub fn jacobian(pb: &Problem) -> Sparse {
    let nnz = 31 * pb.p;
    let mut sp = Sparse {
        rows: Vec::with_capacity(3 * pb.p + 1),
        cols: Vec::with_capacity(nnz),
        vals: Vec::with_capacity(nnz),
    };
    sp.rows.push(0);
    let col_pt = NCAM * pb.n;
    let col_w = col_pt + 3 * pb.m;
    for (i, &(c, pt)) in pb.obs.iter().enumerate() {
        let cam: [D15; NCAM] = std::array::from_fn(|j| D15::variable(pb.cams[c * NCAM + j], j));
        let x: [D15; 3] = std::array::from_fn(|j| D15::variable(pb.x[pt * 3 + j], NCAM + j));
        let w = D15::variable(pb.w[i], 14);
        let e = reproj_error(&cam, &x, w, &pb.feats[2 * i..2 * i + 2]);
        for r in &e {
            let last = *sp.rows.last().unwrap_or(&0);
            sp.rows.push(last + 15);
            sp.cols.extend((0..NCAM).map(|j| NCAM * c + j));
            sp.cols.extend((0..3).map(|j| col_pt + 3 * pt + j));
            sp.cols.push(col_w + i);
            sp.vals.extend_from_slice(&r.eps);
        }
    }
    for (i, &w) in pb.w.iter().enumerate() {
        let wd = adjoint_scalar::derivative(|w| adjoint_scalar::Dual::constant(1.0) - w * w, w);
        let last = *sp.rows.last().unwrap_or(&0);
        sp.rows.push(last + 1);
        sp.cols.push(col_w + i);
        sp.vals.push(wd);
    }
    sp
}

fn expand(inp: Input, limits: &Limits, jacobian: bool) -> Result<Problem, String> {
    let Input { n, m, p, cam, x, w, feat } = inp;
    if n == 0 || m == 0 || p == 0 || cam.len() != NCAM || x.len() != 3 || feat.len() != 2 {
        return Err("ba: need positive n, m, p, 11 camera parameters, 3 coordinates and 2 features".into());
    }
    // The expanded problem (11n + 3m + 7p words: cameras, points, weights, observation pairs,
    // features), then 3p residuals or the Jacobian's 3p + 1 rows and 2·31p columns and values.
    let (n64, m64, p64) = (n as u64, m as u64, p as u64);
    limits.check_steps(&format!("ba: p = {p} observations"), p64)?;
    let out = if jacobian { 66 } else { 3 };
    limits.check_memory(
        &format!("ba: n = {n} cameras, m = {m} points, p = {p} observations"),
        sum(&[product(&[NCAM as u64, n64]), product(&[3, m64]), product(&[7 + out, p64])]),
        8,
    )?;
    Ok(Problem {
        n,
        m,
        p,
        cams: cam.repeat(n),
        x: x.repeat(m),
        w: vec![w; p],
        obs: (0..p).map(|i| (i % n, i % m)).collect(),
        feats: feat.repeat(p),
    })
}

fn abbreviate<T: Clone>(v: &[T]) -> Vec<T> {
    let mut out: Vec<T> = v.iter().take(30).cloned().collect();
    if let Some(last) = v.last() {
        out.push(last.clone());
    }
    out
}

/// Evaluate `objective` or `jacobian`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    let pb = match parse::<Input>("ba", input).and_then(|i| expand(i, limits, function == "jacobian")) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(match function {
        "objective" => timed(
            input,
            || objective(&pb),
            |(r, w)| {
                json!({
                    "reproj_error": {"elements": [r[0], r[1]], "repeated": r.len() / 2},
                    "w_err": {"element": w[0], "repeated": w.len()},
                })
            },
        ),
        "jacobian" => timed(
            input,
            || jacobian(&pb),
            |sp| json!({"rows": abbreviate(&sp.rows), "cols": abbreviate(&sp.cols), "vals": abbreviate(&sp.vals)}),
        ),
        _ => return None,
    }))
}
