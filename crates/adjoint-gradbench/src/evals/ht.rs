//! `ht`: hand tracking (ADBench's model) — the residuals between `n` observed 3-D points and a
//! skinned hand mesh posed by 26 parameters `theta` (global rotation and translation, then
//! finger angles), and their Jacobian.
//!
//! Two variants, chosen by the input: in the *simple* one (`us` empty) point `i` corresponds to
//! mesh vertex `correspondences[i]`; in the *complicated* one it corresponds to a point inside
//! triangle `correspondences[i]`, at barycentric coordinates `(u₀, u₁, 1 − u₀ − u₁)` with
//! `us[i] = [u₀, u₁]`, which are parameters too. The Jacobian has `3n` rows and 26 columns
//! (simple) or `2 + 26` (complicated: `∂/∂u₀`, `∂/∂u₁` of the point's own `us`, then `theta`);
//! as in GradBench's manual tool, the `us` columns hold each row's derivative with respect to
//! its own point's `us`, the only non-zeros of that block-diagonal part.
//!
//! Scalar tier, forward mode. All 3n residuals depend on the same 26 `theta`, so one pass with
//! `DualVec<f64, 26>` gives every row at once: the bone chain (22 small matrix products) is
//! pushed through once, then each mesh vertex the points need is skinned once — a weighted sum
//! over its few bones — and shared by all points on it. The `us` block is block-sparse (each
//! point's residual depends only on its own two `us`), so it comes from a second, tiny pass per
//! point with `DualVec<f64, 2>`.
//!
//! Precomputed outside the timed region, since none of it depends on `theta` or `us`: which
//! vertices are needed, and for each the list of (bone, weight × rest position) terms of its
//! skinning sum.

use std::ops::Mul;

use adjoint_scalar::{DualVec, Real};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::limits::{product, sum, Limits};
use crate::{parse, Evaluated, Runs};

/// Number of pose parameters.
const NTHETA: usize = 26;
/// Pose-parameter columns used by [`pose_params`]: global rotation, scale, translation, then
/// one per bone; the finger loop writes up to column 23.
const MIN_POSE_COLS: usize = 24;

type D26 = DualVec<f64, NTHETA>;
type D2 = DualVec<f64, 2>;

#[derive(Deserialize)]
struct Input {
    theta: Vec<f64>,
    data: DataIn,
    #[serde(default)]
    us: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
struct DataIn {
    model: ModelIn,
    correspondences: Vec<usize>,
    points: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
struct ModelIn {
    bone_names: Vec<String>,
    parents: Vec<i64>,
    base_relatives: Vec<Vec<Vec<f64>>>,
    inverse_base_absolutes: Vec<Vec<Vec<f64>>>,
    base_positions: Vec<Vec<f64>>,
    weights: Vec<Vec<f64>>,
    triangles: Vec<Vec<usize>>,
    is_mirrored: bool,
}

/// One bone of the model.
struct Bone {
    /// Index of the parent bone (always an earlier bone), or `None` for a root.
    parent: Option<usize>,
    /// Rest transform relative to the parent (4 × 4, row-major).
    base_relative: [[f64; 4]; 4],
    /// Inverse of the rest absolute transform (4 × 4, row-major).
    inverse_base_absolute: [[f64; 4]; 4],
}

/// The problem, prepared from the input.
pub struct Problem {
    theta: [f64; NTHETA],
    bones: Vec<Bone>,
    mirrored: bool,
    /// Skinning terms of each needed vertex: `terms[vert_start[v]..vert_start[v + 1]]`, each a
    /// bone and `weight × homogeneous rest position`.
    vert_start: Vec<usize>,
    terms: Vec<(usize, [f64; 4])>,
    points: Vec<[f64; 3]>,
    /// Per point, the needed-vertex indices it uses: one (simple) or the triangle's three.
    corr: Vec<[usize; 3]>,
    /// Per point barycentric parameters; `None` in the simple variant.
    us: Option<Vec<[f64; 2]>>,
}

impl Problem {
    fn n_points(&self) -> usize {
        self.points.len()
    }
    fn n_cols(&self) -> usize {
        NTHETA + if self.us.is_some() { 2 } else { 0 }
    }
}

fn mat4(m: &[Vec<f64>], what: &str) -> Result<[[f64; 4]; 4], String> {
    if m.len() != 4 || m.iter().any(|r| r.len() != 4) {
        return Err(format!("ht: {what} must be 4 × 4"));
    }
    Ok(std::array::from_fn(|r| std::array::from_fn(|c| m[r][c])))
}

fn prepare(inp: Input, limits: &Limits) -> Result<Problem, String> {
    let Input { theta, data, us } = inp;
    let DataIn { model, correspondences, points } = data;
    let theta: [f64; NTHETA] = theta
        .try_into()
        .map_err(|t: Vec<f64>| format!("ht: theta has {} entries, need {NTHETA}", t.len()))?;
    let nb = model.bone_names.len();
    if nb + 3 < MIN_POSE_COLS {
        return Err(format!("ht: need at least {} bones, got {nb}", MIN_POSE_COLS - 3));
    }
    if model.parents.len() != nb
        || model.base_relatives.len() != nb
        || model.inverse_base_absolutes.len() != nb
    {
        return Err("ht: parents, base_relatives and inverse_base_absolutes need one entry per bone".into());
    }
    let mut bones = Vec::with_capacity(nb);
    for i in 0..nb {
        let parent = match model.parents[i] {
            p if p < 0 => None,
            p if (p as usize) < i => Some(p as usize),
            p => return Err(format!("ht: bone {i}'s parent {p} is not an earlier bone")),
        };
        bones.push(Bone {
            parent,
            base_relative: mat4(&model.base_relatives[i], "base_relatives")?,
            inverse_base_absolute: mat4(&model.inverse_base_absolutes[i], "inverse_base_absolutes")?,
        });
    }
    let nv = model.base_positions.len();
    if model.weights.len() != nv
        || model.weights.iter().any(|w| w.len() != nb)
        || model.base_positions.iter().any(|p| p.len() != 4)
    {
        return Err("ht: base_positions must be n × 4 and weights n × bones".into());
    }
    if points.len() != correspondences.len() || points.iter().any(|p| p.len() != 3) {
        return Err("ht: need one 3-D point per correspondence".into());
    }
    let complicated = !us.is_empty();
    if complicated && (us.len() != points.len() || us.iter().any(|u| u.len() != 2)) {
        return Err("ht: us must hold two numbers per point".into());
    }
    // Skinning terms (at most one per vertex and bone), posed vertices as 26-wide duals, the
    // 3n × 28 Jacobian.
    let (np, nv64, nb64) = (points.len() as u64, nv as u64, nb as u64);
    limits.check_steps(
        &format!("ht: {np} points, {nv} vertices × {nb} bones"),
        sum(&[np, product(&[nv64, nb64])]),
    )?;
    limits.check_memory(
        &format!("ht: {np} points, {nv} vertices × {nb} bones"),
        sum(&[product(&[5, nv64, nb64]), product(&[100, nv64]), product(&[3 * 28, np])]),
        8,
    )?;

    // The needed vertices, numbered in order of first use.
    let mut local = vec![usize::MAX; nv];
    let mut needed = Vec::new();
    let mut use_vertex = |v: usize| -> Result<usize, String> {
        if v >= nv {
            return Err(format!("ht: vertex {v} out of range ({nv} vertices)"));
        }
        if local[v] == usize::MAX {
            local[v] = needed.len();
            needed.push(v);
        }
        Ok(local[v])
    };
    let mut corr = Vec::with_capacity(correspondences.len());
    for &c in &correspondences {
        if complicated {
            let t = model
                .triangles
                .get(c)
                .filter(|t| t.len() == 3)
                .ok_or_else(|| format!("ht: no triangle {c}"))?;
            corr.push([use_vertex(t[0])?, use_vertex(t[1])?, use_vertex(t[2])?]);
        } else {
            let v = use_vertex(c)?;
            corr.push([v, v, v]);
        }
    }
    let mut vert_start = Vec::with_capacity(needed.len() + 1);
    let mut terms = Vec::new();
    vert_start.push(0);
    for &v in &needed {
        let p = &model.base_positions[v];
        for (b, &w) in model.weights[v].iter().enumerate() {
            if w != 0.0 {
                terms.push((b, [w * p[0], w * p[1], w * p[2], w * p[3]]));
            }
        }
        vert_start.push(terms.len());
    }
    Ok(Problem {
        theta,
        bones,
        mirrored: model.is_mirrored,
        vert_start,
        terms,
        points: points.iter().map(|p| [p[0], p[1], p[2]]).collect(),
        corr,
        us: complicated.then(|| us.iter().map(|u| [u[0], u[1]]).collect()),
    })
}

/// A scalar the model can be evaluated in: `f64` for the objective, `DualVec` for derivatives.
trait Scalar: Real + Mul<f64, Output = Self> {}
impl<T: Real + Mul<f64, Output = T>> Scalar for T {}

/// A 3 × 4 affine transform (the top rows of a 4 × 4 one), row-major.
type Affine<T> = [[T; 4]; 3];

/// Everything [`pose`] computes, kept between runs so no run allocates.
struct Scratch<T> {
    /// Pose parameters, one `[x, y, z]` column each: rotation, scale, translation, bones.
    pose: Vec<[T; 3]>,
    /// Absolute transform of each bone, the global rotation folded in.
    absolutes: Vec<Affine<T>>,
    /// Per bone: (global rotation ·) absolute · inverse rest absolute.
    skin: Vec<Affine<T>>,
    /// Posed position of each needed vertex.
    verts: Vec<[T; 3]>,
}

impl<T: Scalar> Scratch<T> {
    fn new() -> Self {
        Scratch { pose: Vec::new(), absolutes: Vec::new(), skin: Vec::new(), verts: Vec::new() }
    }
}

/// ADBench's `to_pose_params`: columns 0–2 are the global rotation (angle-axis), a scale of
/// one and the translation; column `3 + b` holds bone `b`'s Euler angles, filled per finger.
fn pose_params<T: Scalar>(theta: &[T; NTHETA], n_bones: usize, pose: &mut Vec<[T; 3]>) {
    pose.clear();
    pose.resize(n_bones + 3, [T::zero(); 3]);
    pose[0] = [theta[0], theta[1], theta[2]];
    pose[1] = [T::one(); 3];
    pose[2] = [theta[3], theta[4], theta[5]];
    let mut i_theta = 6;
    let mut i_pose = 5;
    for _finger in 0..5 {
        for i in 2..=4 {
            pose[i_pose][0] = theta[i_theta];
            i_theta += 1;
            if i == 2 {
                pose[i_pose][1] = theta[i_theta];
                i_theta += 1;
            }
            i_pose += 1;
        }
        i_pose += 1;
    }
}

/// Rotation matrix of an angle-axis vector (identity below a norm of 1e-4, as ADBench).
fn angle_axis_to_rotation<T: Scalar>(a: &[T; 3]) -> [[T; 3]; 3] {
    let norm = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
    let (zero, one) = (T::zero(), T::one());
    if norm < T::lit(1e-4) {
        return [[one, zero, zero], [zero, one, zero], [zero, zero, one]];
    }
    let (x, y, z) = (a[0] / norm, a[1] / norm, a[2] / norm);
    let (s, c) = norm.sin_cos();
    let omc = one - c;
    [
        [x * x + (one - x * x) * c, x * y * omc - z * s, x * z * omc + y * s],
        [x * y * omc + z * s, y * y + (one - y * y) * c, y * z * omc - x * s],
        [x * z * omc - y * s, z * y * omc + x * s, z * z + (one - z * z) * c],
    ]
}

/// ADBench's `euler_angles_to_rotation_matrix`: `Rz · Ry · Rx` with angles `(x, z, y)` stored
/// in that order, multiplied out (the products with the matrices' zeros and ones dropped).
fn euler_to_rotation<T: Scalar>(xzy: &[T; 3]) -> [[T; 3]; 3] {
    let (sx, cx) = xzy[0].sin_cos();
    let (sy, cy) = xzy[2].sin_cos();
    let (sz, cz) = xzy[1].sin_cos();
    [
        [cz * cy, cz * sy * sx - sz * cx, sz * sx + cz * sy * cx],
        [sz * cy, cz * cx + sz * sy * sx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ]
}

/// Pose the model: fills `s.skin` with one affine map per bone taking a weighted rest
/// position to its (globally rotated, not yet translated) posed contribution, and returns the
/// global translation.
///
/// ADBench's chain is `absolute = parent's absolute · base_relative · [R 0; 0 1]`, then
/// `transform = absolute · inverse_base_absolute`, and the global rotation applied to the
/// skinned positions. Here the global rotation (with the scale and mirroring) is folded into
/// the roots' absolutes, so it reaches every bone through the chain at no extra cost per bone.
fn pose<T: Scalar>(pb: &Problem, theta: &[T; NTHETA], s: &mut Scratch<T>) -> [T; 3] {
    pose_params(theta, pb.bones.len(), &mut s.pose);
    // Global rotation, its columns scaled, and mirrored in x if the model is.
    let mut rg = angle_axis_to_rotation(&s.pose[0]);
    for row in &mut rg {
        for (c, v) in row.iter_mut().enumerate() {
            *v *= s.pose[1][c];
        }
    }
    if pb.mirrored {
        for row in &mut rg {
            row[0] = -row[0];
        }
    }
    let zero = T::zero();
    let global: Affine<T> = [
        [rg[0][0], rg[0][1], rg[0][2], zero],
        [rg[1][0], rg[1][1], rg[1][2], zero],
        [rg[2][0], rg[2][1], rg[2][2], zero],
    ];
    let nb = pb.bones.len();
    s.absolutes.resize(nb, [[zero; 4]; 3]);
    s.skin.resize(nb, [[zero; 4]; 3]);
    for (b, bone) in pb.bones.iter().enumerate() {
        // parent · base_relative, then · [R 0; 0 1] (which leaves column 3 alone).
        let base = &bone.base_relative;
        let mut pbase = [[zero; 4]; 3];
        {
            let parent = match bone.parent {
                None => &global,
                Some(p) => &s.absolutes[p],
            };
            for (q, pi) in pbase.iter_mut().zip(parent) {
                for (j, qj) in q.iter_mut().enumerate() {
                    *qj = pi[0] * base[0][j] + pi[1] * base[1][j] + pi[2] * base[2][j] + pi[3] * base[3][j];
                }
            }
        }
        let r = euler_to_rotation(&s.pose[b + 3]);
        let abs = &mut s.absolutes[b];
        for (a, q) in abs.iter_mut().zip(&pbase) {
            for (j, aj) in a.iter_mut().take(3).enumerate() {
                *aj = q[0] * r[0][j] + q[1] * r[1][j] + q[2] * r[2][j];
            }
            a[3] = q[3];
        }
        let inv = &bone.inverse_base_absolute;
        for (t, a) in s.skin[b].iter_mut().zip(&*abs) {
            for (j, tj) in t.iter_mut().enumerate() {
                *tj = a[0] * inv[0][j] + a[1] * inv[1][j] + a[2] * inv[2][j] + a[3] * inv[3][j];
            }
        }
    }
    s.pose[2]
}

/// Posed positions of all needed vertices into `s.verts`.
fn skin_vertices<T: Scalar>(pb: &Problem, theta: &[T; NTHETA], s: &mut Scratch<T>) {
    let trans = pose(pb, theta, s);
    let Scratch { skin, verts, .. } = s;
    verts.resize(pb.vert_start.len() - 1, trans);
    for (p, w) in verts.iter_mut().zip(pb.vert_start.windows(2)) {
        *p = trans;
        for &(b, c) in &pb.terms[w[0]..w[1]] {
            for (pr, gr) in p.iter_mut().zip(&skin[b]) {
                *pr += gr[0] * c[0] + gr[1] * c[1] + gr[2] * c[2] + gr[3] * c[3];
            }
        }
    }
}

/// Coordinate `j` of point `i`'s residual: observed minus model point, with `us` (in the
/// complicated variant) as plain numbers.
#[inline(always)]
fn residual<T: Scalar>(pb: &Problem, verts: &[[T; 3]], i: usize, j: usize) -> T {
    let [a, b, c] = pb.corr[i];
    let model = match &pb.us {
        None => verts[a][j],
        Some(us) => {
            let [u0, u1] = us[i];
            verts[a][j] * u0 + verts[b][j] * u1 + verts[c][j] * (1.0 - u0 - u1)
        }
    };
    T::lit(pb.points[i][j]) - model
}

/// The residuals, `3n` of them: point `i`'s at `3i..3i + 3`.
fn objective(pb: &Problem, s: &mut Scratch<f64>, out: &mut Vec<f64>) {
    skin_vertices(pb, &pb.theta, s);
    out.clear();
    for i in 0..pb.n_points() {
        for j in 0..3 {
            out.push(residual(pb, &s.verts, i, j));
        }
    }
}

/// The Jacobian, row-major: `3n` rows of [`Problem::n_cols`] entries.
fn jacobian(pb: &Problem, s: &mut Scratch<D26>, out: &mut Vec<f64>) {
    let theta: [D26; NTHETA] = std::array::from_fn(|k| D26::variable(pb.theta[k], k));
    skin_vertices(pb, &theta, s);
    out.clear();
    out.reserve(3 * pb.n_points() * pb.n_cols());
    for i in 0..pb.n_points() {
        match &pb.us {
            None => {
                for j in 0..3 {
                    out.extend_from_slice(&residual(pb, &s.verts, i, j).eps);
                }
            }
            Some(us) => {
                // ∂/∂us: the same residual with the vertices held fixed and us as variables.
                let [u0, u1] = [D2::variable(us[i][0], 0), D2::variable(us[i][1], 1)];
                let u2 = D2::lit(1.0) - u0 - u1;
                let [a, b, c] = pb.corr[i];
                for (j, &p) in pb.points[i].iter().enumerate() {
                    let [va, vb, vc] = [s.verts[a][j].re, s.verts[b][j].re, s.verts[c][j].re];
                    let eu = D2::lit(p) - (u0 * va + u1 * vb + u2 * vc);
                    out.extend_from_slice(&eu.eps);
                    out.extend_from_slice(&residual(pb, &s.verts, i, j).eps);
                }
            }
        }
    }
}

/// Evaluate `objective` or `jacobian`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    if function != "objective" && function != "jacobian" {
        return None;
    }
    let pb = match parse::<Input>("ht", input).and_then(|i| prepare(i, limits)) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    let runs = Runs::from_input(input);
    let mut out = Vec::new();
    let ((), timings) = if function == "objective" {
        let mut s = Scratch::new();
        runs.repeat(|| objective(&pb, &mut s, &mut out))
    } else {
        let mut s = Scratch::new();
        runs.repeat(|| jacobian(&pb, &mut s, &mut out))
    };
    let output = if function == "objective" {
        json!(out)
    } else {
        Value::Array(out.chunks(pb.n_cols()).map(|r| json!(r)).collect())
    };
    Some(Ok(Evaluated { output, timings }))
}
