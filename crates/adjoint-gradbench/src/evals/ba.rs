//! `ba`: bundle adjustment — reprojection errors of `p` observations of `m` points by `n`
//! cameras (ADBench's model: Rodrigues rotation, radial distortion), weighted by per-
//! observation `w`, plus the `1 - w²` weight terms; the sparse Jacobian in ADBench's CSR-like
//! layout.
//!
//! Scalar tier, forward mode: each observation's two residuals depend on 15 inputs (11
//! camera parameters, 3 point coordinates, 1 weight). Two forward passes chained by the chain
//! rule — `DualVec<f64, 6>` through the rotation, `DualVec<f64, 9>` through the projection
//! (see [`jacobian`]) — give that observation's whole 2 × 15 Jacobian block.
//!
//! As GradBench asks, the input is expanded to its full size (`p` observations) and all of
//! it is evaluated; only the output is abbreviated (first 30 entries and the last one).

use adjoint_scalar::{DualVec, Real};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::limits::{product, sum, Limits};
use crate::{parse, timed, Evaluated, Runs};

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

/// The point `x` in the camera's frame: rotate `x − C` by the Rodrigues vector `cam[0..3]`
/// (`C = cam[3..6]`).
fn to_camera<T: Real>(rot: &[T], xo: &[T; 3]) -> [T; 3] {
    rodrigues_rotate_point(rot, xo)
}

/// The weighted reprojection error of a point at `xcam` in the camera's frame, with the
/// intrinsics `intr = cam[6..11]` (focal length, principal point, two distortion terms).
fn project<T: Real>(xcam: &[T; 3], intr: &[T], w: T, feat: &[f64]) -> [T; 2] {
    let mut proj = [xcam[0] / xcam[2], xcam[1] / xcam[2]];
    let rsq = sqsum(&proj);
    let l = T::one() + intr[3] * rsq + intr[4] * rsq * rsq;
    proj = [proj[0] * l, proj[1] * l];
    let proj = [proj[0] * intr[0] + intr[1], proj[1] * intr[0] + intr[2]];
    [w * (proj[0] - T::lit(feat[0])), w * (proj[1] - T::lit(feat[1]))]
}

/// The weighted reprojection error of point `x` seen by camera `cam` at `feat`.
pub fn reproj_error<T: Real>(cam: &[T], x: &[T], w: T, feat: &[f64]) -> [T; 2] {
    let xo = [x[0] - cam[3], x[1] - cam[4], x[2] - cam[5]];
    project(&to_camera(&cam[0..3], &xo), &cam[6..11], w, feat)
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
#[derive(Default)]
pub struct Sparse {
    rows: Vec<usize>,
    cols: Vec<usize>,
    vals: Vec<f64>,
}

type D6 = DualVec<f64, 6>;
type D9 = DualVec<f64, 9>;

/// The Jacobian of [`objective`]: forward mode per observation, in two stages chained by the
/// chain rule (Jacobian preaccumulation, as in [`preaccumulate`](adjoint_scalar::preaccumulate)
/// for reverse mode). Stage one differentiates `to_camera` with respect to the rotation and
/// `x` (6 tangents; `∂/∂C = −∂/∂x`), stage two `project` with respect to the camera-frame
/// point, the 5 intrinsics and `w` (9 tangents). Carrying all 15 tangents through both stages
/// (one `DualVec<f64, 15>` pass, the previous version) does about twice the arithmetic.
pub fn jacobian(pb: &Problem) -> Sparse {
    let mut sp = Sparse::default();
    jacobian_into(pb, &mut sp);
    sp
}

/// [`jacobian`] into `sp`, reusing its buffers: every entry is overwritten, and once they have
/// the right sizes nothing is allocated — so repeated runs do not pay for fresh pages, as
/// GradBench's C++ tools, which keep one output object across runs, do not either.
pub fn jacobian_into(pb: &Problem, sp: &mut Sparse) {
    let p = pb.p;
    let Sparse { rows, cols, vals } = sp;
    // Rows: 2 reprojection rows of 15 non-zeros per observation, then p weight rows of 1.
    rows.clear();
    rows.extend((0..=2 * p).map(|r| 15 * r));
    rows.extend((1..=p).map(|k| 30 * p + k));
    cols.resize(31 * p, 0);
    vals.resize(31 * p, 0.0);
    let col_pt = NCAM * pb.n;
    let col_w = col_pt + 3 * pb.m;
    let blocks = cols[..30 * p].chunks_exact_mut(30).zip(vals[..30 * p].chunks_exact_mut(30));
    for (i, ((&(c, pt), feat), (cb, vb))) in
        pb.obs.iter().zip(pb.feats.chunks_exact(2)).zip(blocks).enumerate()
    {
        let cam = &pb.cams[c * NCAM..(c + 1) * NCAM];
        let x = &pb.x[pt * 3..pt * 3 + 3];
        // Stage one: x_cam(rot, x), tangents 0..3 rotation, 3..6 the point.
        let rot: [D6; 3] = std::array::from_fn(|j| D6::variable(cam[j], j));
        let xo: [D6; 3] = std::array::from_fn(|j| D6::variable(x[j], 3 + j) - cam[3 + j]);
        let xcam = to_camera(&rot, &xo);
        // Stage two: e(x_cam, intrinsics, w), tangents 0..3 x_cam, 3..8 intrinsics, 8 w.
        let xc: [D9; 3] = std::array::from_fn(|j| D9::variable(xcam[j].re, j));
        let intr: [D9; 5] = std::array::from_fn(|j| D9::variable(cam[6 + j], 3 + j));
        let w = D9::variable(pb.w[i], 8);
        let e = project(&xc, &intr, w, feat);
        for (r, (cr, vr)) in e.iter().zip(cb.chunks_exact_mut(15).zip(vb.chunks_exact_mut(15))) {
            for (j, col) in cr.iter_mut().enumerate() {
                *col = match j {
                    0..NCAM => NCAM * c + j,
                    11..14 => col_pt + 3 * pt + j - NCAM,
                    _ => col_w + i,
                };
            }
            // ∂e/∂(rot, x) = ∂e/∂x_cam · ∂x_cam/∂(rot, x); ∂e/∂C = −∂e/∂x.
            let chained: [f64; 6] =
                std::array::from_fn(|k| (0..3).map(|j| r.eps[j] * xcam[j].eps[k]).sum::<f64>());
            vr[0..3].copy_from_slice(&chained[0..3]);
            for k in 0..3 {
                vr[3 + k] = -chained[3 + k];
                vr[11 + k] = chained[3 + k];
            }
            vr[6..11].copy_from_slice(&r.eps[3..8]);
            vr[14] = r.eps[8];
        }
    }
    for (i, (&w, (col, val))) in
        pb.w.iter().zip(cols[30 * p..].iter_mut().zip(&mut vals[30 * p..])).enumerate()
    {
        *col = col_w + i;
        *val = adjoint_scalar::derivative(|w| adjoint_scalar::Dual::constant(1.0) - w * w, w);
    }
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
        "jacobian" => {
            let mut sp = Sparse::default();
            let ((), timings) = Runs::from_input(input).repeat(|| jacobian_into(&pb, &mut sp));
            let output = json!({"rows": abbreviate(&sp.rows), "cols": abbreviate(&sp.cols), "vals": abbreviate(&sp.vals)});
            Evaluated { output, timings }
        }
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The staged Jacobian equals one `DualVec<f64, 15>` pass through the whole residual, up to
    /// the rounding of the chain rule's sums.
    #[test]
    fn staged_jacobian_matches_a_single_forward_pass() {
        let inp = Input {
            n: 3,
            m: 4,
            p: 7,
            cam: vec![0.3, -0.2, 0.5, 1.0, 2.0, -3.0, 480.0, 12.0, -7.0, 2e-3, -3e-5],
            x: vec![0.5, -0.4, 4.0],
            w: 0.7,
            feat: vec![-10.0, 20.0],
        };
        let pb = expand(inp, &Limits::default(), true).unwrap();
        let sp = jacobian(&pb);
        type D15 = DualVec<f64, 15>;
        for (i, &(c, pt)) in pb.obs.iter().enumerate() {
            let cam: [D15; NCAM] = std::array::from_fn(|j| D15::variable(pb.cams[c * NCAM + j], j));
            let x: [D15; 3] = std::array::from_fn(|j| D15::variable(pb.x[pt * 3 + j], NCAM + j));
            let w = D15::variable(pb.w[i], 14);
            let e = reproj_error(&cam, &x, w, &pb.feats[2 * i..2 * i + 2]);
            for (r, er) in e.iter().enumerate() {
                let got = &sp.vals[30 * i + 15 * r..30 * i + 15 * r + 15];
                for (g, want) in got.iter().zip(&er.eps) {
                    assert!(
                        (g - want).abs() <= 1e-12 * want.abs().max(1.0),
                        "obs {i} row {r}: {got:?} vs {:?}",
                        er.eps
                    );
                }
            }
        }
    }
}
