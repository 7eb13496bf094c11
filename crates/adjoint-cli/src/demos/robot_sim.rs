//! A differentiable rigid-body simulation of the first joints of a Puma 560, written once,
//! generic over the scalar type ([`Real`]).
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
//! - `q̈` by a Cholesky solve of the n×n system, and semi-implicit (symplectic) Euler steps;
//! - optionally a point [`Payload`] on the last link, folded into that link's mass, centre of
//!   mass and inertia (parallel-axis theorem), so its mass and offset are differentiable
//!   parameters like any other (system identification differentiates with respect to them).
//!
//! ## Why the scalar tier
//!
//! A 3-joint arm is a few hundred scalar operations per step. On the tensor tier every one of
//! them is a traced op with a fixed cost of microseconds, so a 150-step rollout of a batch cost
//! 0.25–1.6 s per gradient. Here the same equations are plain generic Rust over `T: Real`:
//!
//! - `f64` for the cross-entropy baseline and every evaluation (no tape at all);
//! - `adjoint_scalar::Var` for backpropagation through time (one 24-byte tape node per
//!   operation, one reverse sweep per rollout);
//! - `Dual`/`DualVec` for forward-mode checks and directional derivatives.
//!
//! One rollout is one task (no batch axis): batches are loops, and their gradients are summed.
//! The tests (`tests/robot_sim.rs`) check Newton–Euler against the Lagrangian by autodiff,
//! energy conservation, and reverse-mode gradients through a thousand steps against forward
//! mode and finite differences.

use std::path::Path;

use adjoint_scalar::Real;

/// A 3-vector.
pub type V3<T> = [T; 3];
/// A 3×3 matrix, row-major.
pub type M3<T> = [[T; 3]; 3];

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

/// A point mass carried by the last link, `offset` metres along that link's z axis from its
/// frame origin (for the Puma's third link, z points along the forearm towards the wrist).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Payload<T> {
    /// Mass (kg).
    pub mass: T,
    /// Position along the last link's z axis (m).
    pub offset: T,
}

impl Payload<f64> {
    /// The same payload as constants of another scalar type.
    pub fn lift<T: Real>(&self) -> Payload<T> {
        Payload { mass: T::lit(self.mass), offset: T::lit(self.offset) }
    }
}

/// Forward kinematics of one configuration (world frame).
pub struct Kinematics<T> {
    /// World rotation of frames 0..=n (frame 0 is the base).
    pub rot: Vec<M3<T>>,
    /// World origins of frames 0..=n.
    pub origin: Vec<V3<T>>,
    /// World centres of mass of links 1..=n.
    pub com: Vec<V3<T>>,
    /// World inertia of links 1..=n about their centres of mass.
    pub inertia: Vec<M3<T>>,
}

/// One link's constants in the scalar type `T`, with any payload folded in.
#[derive(Clone, Debug)]
struct LinkT<T> {
    d: T,
    a: T,
    ca: T,
    sa: T,
    m: T,
    r: V3<T>,
    inertia: M3<T>,
    armature: T,
    viscous: T,
    coulomb: T,
}

/// The dynamics of an [`Arm`] (plus payload) in one scalar type: every constant lifted once,
/// so a step does no conversions. Build it with [`Arm::model`].
#[derive(Clone, Debug)]
pub struct Model<T> {
    links: Vec<LinkT<T>>,
    gravity: T,
    friction: bool,
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

    /// The dynamics in scalar type `T`, with `payload` (if any) on the last link.
    pub fn model<T: Real>(&self, payload: Option<&Payload<T>>) -> Model<T> {
        let c = T::lit;
        let mut links: Vec<LinkT<T>> = self
            .links
            .iter()
            .map(|l| LinkT {
                d: c(l.d),
                a: c(l.a),
                ca: c(l.alpha.cos()),
                sa: c(l.alpha.sin()),
                m: c(l.m),
                r: l.r.map(c),
                inertia: l.inertia.map(|row| row.map(c)),
                armature: c(l.jm * l.g * l.g),
                viscous: c(l.b * l.g * l.g),
                coulomb: c(l.tc * l.g.abs()),
            })
            .collect();
        if let (Some(p), Some(last)) = (payload, links.last_mut()) {
            fold_point_mass(last, p.mass, [T::zero(), T::zero(), p.offset]);
        }
        Model { links, gravity: c(self.gravity), friction: self.friction }
    }
}

/// Add a point mass `mp` at `p` (link frame) to a link: combined mass, centre of mass, and the
/// inertia about the new centre by the parallel-axis theorem.
fn fold_point_mass<T: Real>(l: &mut LinkT<T>, mp: T, p: V3<T>) {
    let m = l.m + mp;
    let c: V3<T> = std::array::from_fn(|i| (l.r[i] * l.m + p[i] * mp) / m);
    let shift = |mass: T, at: &V3<T>| -> M3<T> {
        let d: V3<T> = std::array::from_fn(|i| at[i] - c[i]);
        let dd = dot(&d, &d);
        std::array::from_fn(|i| {
            std::array::from_fn(|j| mass * (if i == j { dd } else { T::zero() } - d[i] * d[j]))
        })
    };
    let (a, b) = (shift(l.m, &l.r), shift(mp, &p));
    l.inertia = std::array::from_fn(|i| std::array::from_fn(|j| l.inertia[i][j] + a[i][j] + b[i][j]));
    l.m = m;
    l.r = c;
}

/// `a · b`.
pub fn dot<T: Real>(a: &V3<T>, b: &V3<T>) -> T {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// `a × b`.
pub fn cross<T: Real>(a: &V3<T>, b: &V3<T>) -> V3<T> {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn add<T: Real>(a: &V3<T>, b: &V3<T>) -> V3<T> {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn sub<T: Real>(a: &V3<T>, b: &V3<T>) -> V3<T> {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn scale<T: Real>(a: &V3<T>, s: T) -> V3<T> {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// `m v`.
fn mat_vec<T: Real>(m: &M3<T>, v: &V3<T>) -> V3<T> {
    std::array::from_fn(|i| dot(&m[i], v))
}

/// `a b`.
fn mat_mul<T: Real>(a: &M3<T>, b: &M3<T>) -> M3<T> {
    std::array::from_fn(|i| {
        std::array::from_fn(|j| a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j])
    })
}

/// `a b aᵀ` (a rotation of an inertia tensor).
fn rotate<T: Real>(a: &M3<T>, b: &M3<T>) -> M3<T> {
    let ab = mat_mul(a, b);
    std::array::from_fn(|i| std::array::from_fn(|j| dot(&ab[i], &a[j])))
}

impl<T: Real> Model<T> {
    /// The same model in another scalar type, every constant mapped by `f` (e.g. the `f64`
    /// values of a `Var` model).
    pub fn map<U: Real>(&self, f: impl Fn(T) -> U + Copy) -> Model<U> {
        let links = self
            .links
            .iter()
            .map(|l| LinkT {
                d: f(l.d),
                a: f(l.a),
                ca: f(l.ca),
                sa: f(l.sa),
                m: f(l.m),
                r: l.r.map(f),
                inertia: l.inertia.map(|row| row.map(f)),
                armature: f(l.armature),
                viscous: f(l.viscous),
                coulomb: f(l.coulomb),
            })
            .collect();
        Model { links, gravity: f(self.gravity), friction: self.friction }
    }

    /// Number of joints.
    pub fn dof(&self) -> usize {
        self.links.len()
    }

    /// Forward kinematics for joint angles `q`.
    pub fn kinematics(&self, q: &[T]) -> Kinematics<T> {
        let n = self.dof();
        let (z, o) = (T::zero(), T::one());
        let mut rot = Vec::with_capacity(n + 1);
        let mut origin = Vec::with_capacity(n + 1);
        rot.push([[o, z, z], [z, o, z], [z, z, o]]);
        origin.push([z, z, z]);
        let mut com = Vec::with_capacity(n);
        let mut inertia = Vec::with_capacity(n);
        for (j, l) in self.links.iter().enumerate() {
            let (c, s) = (q[j].cos(), q[j].sin());
            let local = [[c, -s * l.ca, s * l.sa], [s, c * l.ca, -c * l.sa], [z, l.sa, l.ca]];
            let p = [c * l.a, s * l.a, l.d];
            let prev = &rot[j];
            let org = add(&origin[j], &mat_vec(prev, &p));
            let r = mat_mul(prev, &local);
            com.push(add(&org, &mat_vec(&r, &l.r)));
            inertia.push(rotate(&r, &l.inertia));
            origin.push(org);
            rot.push(r);
        }
        Kinematics { rot, origin, com, inertia }
    }

    /// The joint-space inertia matrix (row-major `n × n`), including the motor armature.
    pub fn mass_matrix(&self, k: &Kinematics<T>) -> Vec<Vec<T>> {
        let n = self.dof();
        let axes: Vec<V3<T>> = (0..n).map(|j| axis(k, j)).collect();
        let mut m = vec![vec![T::zero(); n]; n];
        for (i, l) in self.links.iter().enumerate() {
            m[i][i] = l.armature;
        }
        for (j, l) in self.links.iter().enumerate() {
            let jv: Vec<V3<T>> = (0..=j).map(|a| cross(&axes[a], &sub(&k.com[j], &k.origin[a]))).collect();
            let iz: Vec<V3<T>> = (0..=j).map(|a| mat_vec(&k.inertia[j], &axes[a])).collect();
            for a in 0..=j {
                for b in 0..=a {
                    let v = l.m * dot(&jv[a], &jv[b]) + dot(&axes[a], &iz[b]);
                    m[a][b] += v;
                    if a != b {
                        m[b][a] += v;
                    }
                }
            }
        }
        m
    }

    /// `C(q, q̇) q̇ + g(q)` by recursive Newton–Euler with `q̈ = 0`.
    pub fn bias(&self, k: &Kinematics<T>, qd: &[T]) -> Vec<T> {
        let n = self.dof();
        let z = T::zero();
        let mut w = [z, z, z];
        let mut wd = [z, z, z];
        let mut acc = [z, z, self.gravity];
        let mut forces = Vec::with_capacity(n);
        let mut moments = Vec::with_capacity(n);
        for (j, l) in self.links.iter().enumerate() {
            let zq = scale(&axis(k, j), qd[j]);
            wd = add(&wd, &cross(&w, &zq));
            w = add(&w, &zq);
            let rigid = |base: &V3<T>, d: &V3<T>| add(&add(base, &cross(&wd, d)), &cross(&w, &cross(&w, d)));
            acc = rigid(&acc, &sub(&k.origin[j + 1], &k.origin[j]));
            let acc_c = rigid(&acc, &sub(&k.com[j], &k.origin[j + 1]));
            forces.push(scale(&acc_c, l.m));
            let iw = mat_vec(&k.inertia[j], &w);
            let iwd = mat_vec(&k.inertia[j], &wd);
            moments.push(add(&iwd, &cross(&w, &iw)));
        }
        let mut f = [z, z, z];
        let mut nm = [z, z, z];
        let mut tau = vec![z; n];
        for j in (0..n).rev() {
            let mut m = add(&moments[j], &cross(&sub(&k.com[j], &k.origin[j]), &forces[j]));
            if j + 1 < n {
                m = add(&add(&m, &nm), &cross(&sub(&k.origin[j + 1], &k.origin[j]), &f));
            }
            tau[j] = dot(&m, &axis(k, j));
            f = add(&forces[j], &f);
            nm = m;
        }
        tau
    }

    /// Joint friction torque for velocities `qd`.
    pub fn friction_torque(&self, qd: &[T]) -> Vec<T> {
        let inv_v = T::lit(1.0 / COULOMB_VELOCITY);
        self.links.iter().zip(qd).map(|(l, &v)| v * l.viscous + (v * inv_v).tanh() * l.coulomb).collect()
    }

    /// Joint accelerations for torques `tau`, with the kinematics of `q` already computed.
    pub fn acceleration_at(&self, k: &Kinematics<T>, qd: &[T], tau: &[T]) -> Vec<T> {
        let m = self.mass_matrix(k);
        let h = self.bias(k, qd);
        let mut rhs: Vec<T> = tau.iter().zip(&h).map(|(&t, &h)| t - h).collect();
        if self.friction {
            for (r, f) in rhs.iter_mut().zip(self.friction_torque(qd)) {
                *r -= f;
            }
        }
        cholesky_solve(&m, &rhs)
    }

    /// Joint accelerations for torques `tau`.
    pub fn acceleration(&self, q: &[T], qd: &[T], tau: &[T]) -> Vec<T> {
        self.acceleration_at(&self.kinematics(q), qd, tau)
    }

    /// One semi-implicit Euler step in place: `q̇ ← q̇ + dt q̈`, then `q ← q + dt q̇`.
    pub fn step(&self, q: &mut [T], qd: &mut [T], tau: &[T], dt: f64) {
        let k = self.kinematics(q);
        self.step_at(&k, q, qd, tau, dt);
    }

    /// [`step`](Self::step) with the kinematics of `q` already computed.
    pub fn step_at(&self, k: &Kinematics<T>, q: &mut [T], qd: &mut [T], tau: &[T], dt: f64) {
        let qdd = self.acceleration_at(k, qd, tau);
        let dt = T::lit(dt);
        for ((q, v), a) in q.iter_mut().zip(qd.iter_mut()).zip(qdd) {
            *v += a * dt;
            *q += *v * dt;
        }
    }

    /// Total mechanical energy `½ q̇ᵀ M q̇ + Σ mⱼ g zⱼ`.
    pub fn energy(&self, q: &[T], qd: &[T]) -> T {
        let k = self.kinematics(q);
        let m = self.mass_matrix(&k);
        let mut e = T::zero();
        for (i, row) in m.iter().enumerate() {
            for (j, &mij) in row.iter().enumerate() {
                e += T::lit(0.5) * qd[i] * mij * qd[j];
            }
        }
        for (j, l) in self.links.iter().enumerate() {
            e += k.com[j][2] * l.m * self.gravity;
        }
        e
    }

    /// Position of the last frame's origin (the end effector).
    pub fn end_effector(&self, q: &[T]) -> V3<T> {
        *self.kinematics(q).origin.last().expect("at least one link")
    }
}

/// Joint axis `z_j` of frame `j` (the axis of joint `j + 1`).
fn axis<T: Real>(k: &Kinematics<T>, j: usize) -> V3<T> {
    let r = &k.rot[j];
    [r[0][2], r[1][2], r[2][2]]
}

/// Solve `M x = r` for a small symmetric positive-definite `M` by Cholesky.
#[allow(clippy::needless_range_loop)] // the textbook recurrences, index for index
pub fn cholesky_solve<T: Real>(m: &[Vec<T>], r: &[T]) -> Vec<T> {
    let n = r.len();
    let mut l = vec![vec![T::zero(); n]; n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = m[i][j];
            for k in 0..j {
                s -= l[i][k] * l[j][k];
            }
            l[i][j] = if i == j { s.sqrt() } else { s / l[j][j] };
        }
    }
    let mut y = vec![T::zero(); n];
    for i in 0..n {
        let mut s = r[i];
        for k in 0..i {
            s -= l[i][k] * y[k];
        }
        y[i] = s / l[i][i];
    }
    let mut x = vec![T::zero(); n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k][i] * x[k];
        }
        x[i] = s / l[i][i];
    }
    x
}

/// Velocity scale of the smoothed Coulomb friction `tanh(q̇ / v)`. Sharper smoothing makes the
/// friction stiff (slope `|G| Tc / v`): with `v = 0.01` the explicit velocity update chatters
/// around zero velocity at `dt = 5 ms` and the rollout stops being differentiable in any useful
/// sense (finite differences and exact derivatives part ways). At `0.1 rad/s` the stiffness
/// times `dt / M` stays below 1 for every joint at the step sizes used here.
pub const COULOMB_VELOCITY: f64 = 0.1;
