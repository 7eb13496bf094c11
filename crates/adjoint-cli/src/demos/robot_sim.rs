//! A differentiable rigid-body simulation of the first joints of a Puma 560.
//!
//! Joint-space dynamics `M(q) q̈ + C(q, q̇) q̇ + g(q) + friction = τ`, computed from the
//! identified parameters in `data/robot_arm_dynamics_params.json` (standard DH):
//!
//! - `M(q)` from the link Jacobians, `M = Σ mⱼ Jᵥⱼᵀ Jᵥⱼ + Jωⱼᵀ Iⱼʷ Jωⱼ`, plus the reflected motor
//!   inertia `Jm G²` on the diagonal (the armature);
//! - `C q̇ + g` by the recursive Newton–Euler algorithm with `q̈ = 0`, written in world
//!   coordinates (gravity enters as an upward base acceleration);
//! - friction on the link side: viscous `B G² q̇` and Coulomb `|G| Tc tanh(q̇ / 0.1 rad/s)` (smoothed
//!   so it is differentiable; `Tc` is the mean magnitude of the source's direction pair);
//! - `q̈` by a Cholesky solve of the n×n system, and semi-implicit (symplectic) Euler steps.
//!
//! Everything is ordinary adjoint tensor code over a batch axis `[B, ·]`, so `grad`, `jvp` and
//! `check_grads` go straight through any number of steps. The tensor tier is used (not the
//! scalar tier) because a controller is trained on a batch of targets at once: one tensor op
//! serves the whole batch, which amortises the per-op cost that a scalar tape would pay per
//! rollout, and the same code then runs under `check_grads`.

use std::path::Path;

use adjoint_core::{DType, Tensor};

/// Parameters of one link (standard DH), in SI units.
#[derive(Clone, Debug)]
pub struct Link {
    /// DH offset along z.
    pub d: f64,
    /// DH length along x.
    pub a: f64,
    /// DH twist.
    pub alpha: f64,
    /// Mass.
    pub m: f64,
    /// Centre of mass in the link frame.
    pub r: [f64; 3],
    /// Inertia about the centre of mass, in the link frame.
    pub inertia: [[f64; 3]; 3],
    /// Motor inertia.
    pub jm: f64,
    /// Gear ratio.
    pub g: f64,
    /// Viscous friction (motor side).
    pub b: f64,
    /// Mean Coulomb friction magnitude (motor side).
    pub tc: f64,
    /// Joint limits.
    pub qlim: [f64; 2],
}

/// The simulated arm: its links, gravity and whether friction is on.
#[derive(Clone, Debug)]
pub struct Arm {
    /// Links from the base.
    pub links: Vec<Link>,
    /// Gravitational acceleration (m/s²), acting along −z.
    pub gravity: f64,
    /// Include joint friction.
    pub friction: bool,
}

/// Forward kinematics of a batch of configurations (world frame).
pub struct Kinematics {
    /// World rotation of frames 0..=n, each `[B, 3, 3]` (frame 0 is the base).
    pub rot: Vec<Tensor>,
    /// World origins of frames 0..=n, each `[B, 3]`.
    pub origin: Vec<Tensor>,
    /// World centres of mass of links 1..=n, each `[B, 3]`.
    pub com: Vec<Tensor>,
    /// World inertia of links 1..=n about their centres of mass, each `[B, 3, 3]`.
    pub inertia: Vec<Tensor>,
}

fn field(v: &serde_json::Value, key: &str, link: usize) -> Result<f64, String> {
    v.get(key).and_then(|x| x.as_f64()).ok_or_else(|| format!("link {link}: missing number `{key}`"))
}

fn array(v: &serde_json::Value, key: &str, n: usize, link: usize) -> Result<Vec<f64>, String> {
    let a =
        v.get(key).and_then(|x| x.as_array()).ok_or_else(|| format!("link {link}: missing array `{key}`"))?;
    if a.len() != n {
        return Err(format!("link {link}: `{key}` has {} entries, expected {n}", a.len()));
    }
    a.iter().map(|x| x.as_f64().ok_or_else(|| format!("link {link}: `{key}` holds a non-number"))).collect()
}

impl Arm {
    /// Read the first `joints` links of the Puma 560 from the parameter file.
    pub fn puma560(path: &Path, joints: usize) -> Result<Arm, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: invalid JSON: {e}", path.display()))?;
        let links = json
            .pointer("/puma560/links")
            .and_then(|l| l.as_array())
            .ok_or_else(|| format!("{}: no `puma560.links` array", path.display()))?;
        if joints == 0 || joints > links.len() {
            return Err(format!(
                "{}: asked for {joints} joints, the file has {}",
                path.display(),
                links.len()
            ));
        }
        let mut out = Vec::new();
        for (i, l) in links.iter().take(joints).enumerate() {
            let inert = array(l, "I", 6, i)?; // [Ixx, Iyy, Izz, Ixy, Iyz, Ixz]
            let r = array(l, "r", 3, i)?;
            let tc = array(l, "Tc", 2, i)?;
            let qlim = array(l, "qlim", 2, i)?;
            out.push(Link {
                d: field(l, "d", i)?,
                a: field(l, "a", i)?,
                alpha: field(l, "alpha", i)?,
                m: field(l, "m", i)?,
                r: [r[0], r[1], r[2]],
                inertia: [
                    [inert[0], inert[3], inert[5]],
                    [inert[3], inert[1], inert[4]],
                    [inert[5], inert[4], inert[2]],
                ],
                jm: field(l, "Jm", i)?,
                g: field(l, "G", i)?,
                b: field(l, "B", i)?,
                tc: 0.5 * (tc[0].abs() + tc[1].abs()),
                qlim: [qlim[0], qlim[1]],
            });
        }
        Ok(Arm { links: out, gravity: 9.81, friction: true })
    }

    /// Number of joints.
    pub fn dof(&self) -> usize {
        self.links.len()
    }

    /// Forward kinematics for joint angles `q: [B, n]`.
    pub fn kinematics(&self, q: &Tensor) -> Kinematics {
        let b = q.shape()[0];
        let dt = q.dtype();
        let eye = Tensor::eye(3, dt).unsqueeze(0).broadcast_to(&[b, 3, 3]);
        let zero = Tensor::full_of(&[b], 0.0, dt);
        let mut rot = vec![eye];
        let mut origin = vec![Tensor::full_of(&[b, 3], 0.0, dt)];
        let mut com = Vec::new();
        let mut inertia = Vec::new();
        for (j, l) in self.links.iter().enumerate() {
            let th = q.narrow(1, j, 1).squeeze(1);
            let (c, s) = (th.cos(), th.sin());
            let (ca, sa) = (l.alpha.cos(), l.alpha.sin());
            let cst = |v: f64| Tensor::full_of(&[b], v, dt);
            let local = Tensor::stack(
                &[&c, &(&s * -ca), &(&s * sa), &s, &(&c * ca), &(&c * -sa), &zero, &cst(sa), &cst(ca)],
                1,
            )
            .reshape(&[b, 3, 3]);
            let p = Tensor::stack(&[&(&c * l.a), &(&s * l.a), &cst(l.d)], 1);
            let prev = &rot[j];
            let o = &origin[j] + &prev.matmul(&p.unsqueeze(2)).squeeze(2);
            let r = prev.matmul(&local);
            let rc = Tensor::from_vec(l.r.to_vec(), &[3, 1]).cast(dt);
            com.push(&o + &r.matmul(&rc).squeeze(2));
            let i3 = Tensor::from_vec(l.inertia.concat(), &[3, 3]).cast(dt);
            inertia.push(r.matmul(&i3).matmul(&r.transpose(1, 2)));
            origin.push(o);
            rot.push(r);
        }
        Kinematics { rot, origin, com, inertia }
    }

    /// Joint axis `z_{j}` of frame `j` (the axis of joint `j + 1`), `[B, 3]`.
    fn axis(k: &Kinematics, j: usize) -> Tensor {
        k.rot[j].narrow(2, 2, 1).squeeze(2)
    }

    /// The joint-space inertia matrix `[B, n, n]`, including the motor armature.
    #[allow(clippy::needless_range_loop)] // joint indices, as in the equations
    pub fn mass_matrix(&self, k: &Kinematics) -> Tensor {
        let n = self.dof();
        let b = k.origin[0].shape()[0];
        let dt = k.origin[0].dtype();
        let zcol = Tensor::full_of(&[b, 3], 0.0, dt);
        let axes: Vec<Tensor> = (0..n).map(|j| Self::axis(k, j)).collect();
        let armature: Vec<f64> = self.links.iter().map(|l| l.jm * l.g * l.g).collect();
        let mut m = Tensor::from_vec(armature, &[n]).cast(dt).diag_embed_small();
        for (j, l) in self.links.iter().enumerate() {
            let mut jv = Vec::with_capacity(n);
            let mut jw = Vec::with_capacity(n);
            for kx in 0..n {
                if kx <= j {
                    jv.push(cross(&axes[kx], &(&k.com[j] - &k.origin[kx])));
                    jw.push(axes[kx].clone());
                } else {
                    jv.push(zcol.clone());
                    jw.push(zcol.clone());
                }
            }
            let jv = Tensor::stack(&jv.iter().collect::<Vec<_>>(), 2); // [B, 3, n]
            let jw = Tensor::stack(&jw.iter().collect::<Vec<_>>(), 2);
            let lin = jv.transpose(1, 2).matmul(&jv) * l.m;
            let ang = jw.transpose(1, 2).matmul(&k.inertia[j]).matmul(&jw);
            m = m + lin + ang;
        }
        m
    }

    /// `C(q, q̇) q̇ + g(q)` by recursive Newton–Euler with `q̈ = 0`, `[B, n]`.
    pub fn bias(&self, k: &Kinematics, qd: &Tensor) -> Tensor {
        let n = self.dof();
        let b = qd.shape()[0];
        let dt = qd.dtype();
        let up = Tensor::from_vec(vec![0.0, 0.0, self.gravity], &[1, 3]).cast(dt).broadcast_to(&[b, 3]);
        let mut w: Option<Tensor> = None;
        let mut wd: Option<Tensor> = None;
        let mut acc = up;
        let mut forces = Vec::with_capacity(n);
        let mut moments = Vec::with_capacity(n);
        for j in 0..n {
            let zq = Self::axis(k, j) * qd.narrow(1, j, 1);
            let w_new = match &w {
                Some(w) => w + &zq,
                None => zq.clone(),
            };
            let wd_new = match (&wd, &w) {
                (Some(wd), Some(w)) => wd + &cross(w, &zq),
                (None, Some(w)) => cross(w, &zq),
                (Some(wd), None) => wd.clone(),
                (None, None) => Tensor::full_of(&[b, 3], 0.0, dt),
            };
            let rigid =
                |base: &Tensor, d: &Tensor| base + &cross(&wd_new, d) + cross(&w_new, &cross(&w_new, d));
            acc = rigid(&acc, &(&k.origin[j + 1] - &k.origin[j]));
            let acc_c = rigid(&acc, &(&k.com[j] - &k.origin[j + 1]));
            forces.push(acc_c * self.links[j].m);
            let iw = k.inertia[j].matmul(&w_new.unsqueeze(2)).squeeze(2);
            let iwd = k.inertia[j].matmul(&wd_new.unsqueeze(2)).squeeze(2);
            moments.push(iwd + cross(&w_new, &iw));
            w = Some(w_new);
            wd = Some(wd_new);
        }
        let mut f: Option<Tensor> = None;
        let mut nm: Option<Tensor> = None;
        let mut tau = vec![Tensor::full_of(&[b], 0.0, dt); n];
        for j in (0..n).rev() {
            let mut m = &moments[j] + &cross(&(&k.com[j] - &k.origin[j]), &forces[j]);
            if let (Some(f), Some(nm)) = (&f, &nm) {
                m = m + nm + cross(&(&k.origin[j + 1] - &k.origin[j]), f);
            }
            tau[j] = (&m * &Self::axis(k, j)).sum_axes(&[1], false);
            f = Some(match &f {
                Some(f) => &forces[j] + f,
                None => forces[j].clone(),
            });
            nm = Some(m);
        }
        Tensor::stack(&tau.iter().collect::<Vec<_>>(), 1)
    }

    /// Joint friction torque for velocities `qd: [B, n]`.
    pub fn friction_torque(&self, qd: &Tensor) -> Tensor {
        let dt = qd.dtype();
        let visc: Vec<f64> = self.links.iter().map(|l| l.b * l.g * l.g).collect();
        let coul: Vec<f64> = self.links.iter().map(|l| l.tc * l.g.abs()).collect();
        let n = self.dof();
        let visc = Tensor::from_vec(visc, &[n]).cast(dt);
        let coul = Tensor::from_vec(coul, &[n]).cast(dt);
        qd * &visc + (qd * (1.0 / COULOMB_VELOCITY)).tanh() * &coul
    }

    /// Joint accelerations for torques `tau: [B, n]`.
    pub fn acceleration(&self, q: &Tensor, qd: &Tensor, tau: &Tensor) -> Tensor {
        self.acceleration_at(&self.kinematics(q), qd, tau)
    }

    /// [`acceleration`](Self::acceleration) with the kinematics of `q` already computed.
    pub fn acceleration_at(&self, k: &Kinematics, qd: &Tensor, tau: &Tensor) -> Tensor {
        let m = self.mass_matrix(k);
        let mut rhs = tau - &self.bias(k, qd);
        if self.friction {
            rhs = rhs - self.friction_torque(qd);
        }
        cholesky_solve(&m, &rhs)
    }

    /// One semi-implicit Euler step: `q̇ ← q̇ + dt q̈`, then `q ← q + dt q̇`.
    pub fn step(&self, q: &Tensor, qd: &Tensor, tau: &Tensor, dt: f64) -> (Tensor, Tensor) {
        let qdd = self.acceleration(q, qd, tau);
        let qd = qd + &(qdd * dt);
        let q = q + &(&qd * dt);
        (q, qd)
    }

    /// Total mechanical energy `½ q̇ᵀ M q̇ + Σ mⱼ g zⱼ`, `[B]`.
    pub fn energy(&self, q: &Tensor, qd: &Tensor) -> Tensor {
        let k = self.kinematics(q);
        let m = self.mass_matrix(&k);
        let kinetic = (qd.unsqueeze(1).matmul(&m).squeeze(1) * qd).sum_axes(&[1], false) * 0.5;
        let mut pot = kinetic.zeros_like();
        for (j, l) in self.links.iter().enumerate() {
            pot = pot + k.com[j].narrow(1, 2, 1).squeeze(1) * (l.m * self.gravity);
        }
        kinetic + pot
    }

    /// Position of the last frame's origin (the wrist centre for three joints), `[B, 3]`.
    pub fn end_effector(&self, q: &Tensor) -> Tensor {
        self.kinematics(q).origin.pop().expect("at least one link")
    }
}

/// Row-wise cross product of `[B, 3]` tensors.
pub fn cross(a: &Tensor, b: &Tensor) -> Tensor {
    let c = |t: &Tensor, i: usize| t.narrow(1, i, 1);
    let (a0, a1, a2) = (c(a, 0), c(a, 1), c(a, 2));
    let (b0, b1, b2) = (c(b, 0), c(b, 1), c(b, 2));
    Tensor::concat(&[&(&a1 * &b2 - &a2 * &b1), &(&a2 * &b0 - &a0 * &b2), &(&a0 * &b1 - &a1 * &b0)], 1)
}

/// Solve `M x = r` for symmetric positive-definite `M: [B, n, n]`, `r: [B, n]`, by Cholesky on
/// the entries (n is small, so each entry is a `[B]` tensor and the solve is O(n³) ops).
#[allow(clippy::needless_range_loop)] // the textbook recurrences, index for index
pub fn cholesky_solve(m: &Tensor, r: &Tensor) -> Tensor {
    let n = r.shape()[1];
    let e = |i: usize, j: usize| m.narrow(1, i, 1).narrow(2, j, 1).squeeze(2).squeeze(1);
    let mut l: Vec<Vec<Option<Tensor>>> = vec![vec![None; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = e(i, j);
            for k in 0..j {
                s = s - l[i][k].as_ref().unwrap() * l[j][k].as_ref().unwrap();
            }
            l[i][j] = Some(if i == j { s.sqrt() } else { s / l[j][j].as_ref().unwrap() });
        }
    }
    let mut y: Vec<Tensor> = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = r.narrow(1, i, 1).squeeze(1);
        for (k, yk) in y.iter().enumerate() {
            s = s - l[i][k].as_ref().unwrap() * yk;
        }
        y.push(s / l[i][i].as_ref().unwrap());
    }
    let mut x: Vec<Option<Tensor>> = vec![None; n];
    for i in (0..n).rev() {
        let mut s = y[i].clone();
        for k in i + 1..n {
            s = s - l[k][i].as_ref().unwrap() * x[k].as_ref().unwrap();
        }
        x[i] = Some(s / l[i][i].as_ref().unwrap());
    }
    let x: Vec<Tensor> = x.into_iter().map(|t| t.unwrap()).collect();
    Tensor::stack(&x.iter().collect::<Vec<_>>(), 1)
}

/// `diag` for a small 1-D tensor, as a constant (the armature never carries derivatives).
trait DiagEmbed {
    fn diag_embed_small(&self) -> Tensor;
}

impl DiagEmbed for Tensor {
    fn diag_embed_small(&self) -> Tensor {
        let n = self.shape()[0];
        let v = self.to_vec::<f64>();
        let mut d = vec![0.0; n * n];
        for i in 0..n {
            d[i * n + i] = v[i];
        }
        Tensor::from_vec(d, &[n, n]).cast(self.dtype())
    }
}

/// `DType` used by the simulator (f64: physics wants it and the batch is small).
pub const SIM_DTYPE: DType = DType::F64;

/// Velocity scale of the smoothed Coulomb friction `tanh(q̇ / v)`. Sharper smoothing makes the
/// friction stiff (slope `|G| Tc / v`): with `v = 0.01` the explicit velocity update chatters
/// around zero velocity at `dt = 5 ms` and the rollout stops being differentiable in any useful
/// sense (finite differences and exact derivatives part ways). At `0.1 rad/s` the stiffness
/// times `dt / M` stays below 1 for every joint at the step sizes used here.
pub const COULOMB_VELOCITY: f64 = 0.1;
