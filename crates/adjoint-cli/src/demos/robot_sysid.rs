//! System identification: the mass and position of an unknown payload on the last link, from
//! one second of logged joint motion, by gradient-based optimisation through the simulator.
//!
//! The log is made by the simulator itself with the true payload (the real robot's role): a
//! known open-loop excitation torque — the gravity torque that holds the home pose for the
//! nominal arm, plus a few sinusoids per joint — drives the arm for one second from rest at
//! home, and the joint angles are recorded at every step with Gaussian noise from a fixed seed.
//!
//! The estimate minimises the output error `mean (q_sim(θ) − q_log)²` over the whole second,
//! with `q_sim` rolled out through the simulator on the `Var` tape (two inputs, one sweep per
//! evaluation) and L-BFGS with a strong-Wolfe line search from adjoint-nn. The mass is
//! parametrised as `exp(θ₀)` so that every step of the line search stays physical (a negative
//! mass would make the mass matrix indefinite); the offset is `θ₁` in metres.

use adjoint_core::Tensor;
use adjoint_nn::optim::{Lbfgs, LbfgsConfig};
use adjoint_scalar::num_traits::Float;
use adjoint_scalar::{Real, Tape};
use adjoint_tensor::random::{self, Key};
use adjoint_tensor::DType;

use super::robot_sim::{Arm, Payload};

/// Settings of the identification experiment.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SysidSettings {
    /// The payload that made the log (what should be found).
    pub truth: Payload<f64>,
    /// The starting guess.
    pub guess: Payload<f64>,
    /// Length of the log (s).
    pub duration: f64,
    /// Simulation and logging step (s).
    pub dt: f64,
    /// Standard deviation of the noise on the logged angles (rad).
    pub noise: f64,
    /// L-BFGS iterations at most.
    pub max_iter: usize,
}

impl Default for SysidSettings {
    fn default() -> Self {
        SysidSettings {
            truth: Payload { mass: 2.5, offset: 0.3 },
            guess: Payload { mass: 1.0, offset: 0.1 },
            duration: 1.0,
            dt: 0.01,
            noise: 1e-3,
            max_iter: 60,
        }
    }
}

/// Home pose the log starts from (at rest).
const START: [f64; 3] = [0.0, 0.7, -2.0];
/// Excitation sinusoids per joint: amplitude (N m) and frequency (Hz).
const WAVES: [[(f64, f64); 2]; 3] =
    [[(20.0, 0.7), (8.0, 2.3)], [(30.0, 0.9), (10.0, 2.9)], [(15.0, 1.3), (6.0, 3.1)]];

/// The known excitation torque at time `t`: `hold` (gravity compensation of the nominal arm at
/// the start pose) plus the sinusoids.
fn excitation(hold: &[f64], t: f64) -> Vec<f64> {
    hold.iter()
        .enumerate()
        .map(|(j, h)| {
            h + WAVES[j % 3]
                .iter()
                .map(|(a, f)| a * (2.0 * std::f64::consts::PI * f * t + j as f64).sin())
                .sum::<f64>()
        })
        .collect()
}

/// Joint angles at every step (row per step) of the excited arm carrying `payload`.
pub fn simulate<T: Real>(arm: &Arm, payload: &Payload<T>, s: &SysidSettings) -> Vec<Vec<T>> {
    let nominal = arm.model::<f64>(None);
    let n = arm.dof();
    let q0 = &START[..n];
    let hold = nominal.bias(&nominal.kinematics(q0), &vec![0.0; n]);
    let model = arm.model(Some(payload));
    let mut q: Vec<T> = q0.iter().map(|&v| T::lit(v)).collect();
    let mut qd = vec![T::zero(); n];
    let steps = (s.duration / s.dt).round() as usize;
    let mut out = Vec::with_capacity(steps);
    for k in 0..steps {
        let tau: Vec<T> = excitation(&hold, k as f64 * s.dt).into_iter().map(T::lit).collect();
        model.step(&mut q, &mut qd, &tau, s.dt);
        out.push(q.clone());
    }
    out
}

/// The log: the true payload's motion plus noise drawn from `key`.
pub fn measure(arm: &Arm, s: &SysidSettings, key: &Key) -> Vec<Vec<f64>> {
    let clean = simulate(arm, &s.truth, s);
    let n = arm.dof();
    let noise = random::normal(key, &[clean.len(), n], DType::F64).to_vec::<f64>();
    clean
        .iter()
        .enumerate()
        .map(|(k, q)| q.iter().enumerate().map(|(j, v)| v + s.noise * noise[k * n + j]).collect())
        .collect()
}

/// Output-error loss (mean squared angle error, in mrad²) of a payload against the log.
pub fn loss<T: Real>(arm: &Arm, payload: &Payload<T>, log: &[Vec<f64>], s: &SysidSettings) -> T {
    let sim = simulate(arm, payload, s);
    let mut acc = T::zero();
    let mut count = 0usize;
    for (row, obs) in sim.iter().zip(log) {
        for (q, o) in row.iter().zip(obs) {
            let e = (*q - T::lit(*o)) * T::lit(1e3);
            acc += e * e;
            count += 1;
        }
    }
    acc / T::lit(count.max(1) as f64)
}

fn payload_of(theta: &[f64]) -> Payload<f64> {
    Payload { mass: theta[0].exp(), offset: theta[1] }
}

/// What identification found.
#[derive(Clone, Debug)]
pub struct Identified {
    /// The estimate.
    pub payload: Payload<f64>,
    /// Loss at every objective evaluation, in order.
    pub losses: Vec<f64>,
    /// L-BFGS iterations.
    pub iterations: usize,
}

/// Identify the payload from `log` by L-BFGS through the simulator.
pub fn identify(arm: &Arm, log: &[Vec<f64>], s: &SysidSettings) -> Result<Identified, String> {
    let theta0 = vec![s.guess.mass.ln(), s.guess.offset];
    let cfg = LbfgsConfig {
        max_iter: s.max_iter,
        line_search: true,
        tolerance_grad: 1e-9,
        tolerance_change: 1e-12,
        ..Default::default()
    };
    let mut opt = Lbfgs::new(&Tensor::from_vec(theta0.clone(), &[2]), cfg);
    let mut losses = Vec::new();
    let r = opt.step(&Tensor::from_vec(theta0, &[2]), |t: &Tensor| {
        let th = t.to_vec::<f64>();
        let tape = Tape::new();
        let v = tape.vars(&th);
        let l = loss(arm, &Payload { mass: v[0].exp(), offset: v[1] }, log, s);
        let mut g = vec![0.0; 2];
        tape.gradient_into(l, &v, &mut g);
        losses.push(l.value());
        (l.value(), Tensor::from_vec(g, &[2]))
    });
    let theta = r.params.to_vec::<f64>();
    if !theta.iter().all(|v| v.is_finite()) || losses.iter().any(|l| !l.is_finite()) {
        return Err(format!("robot system identification diverged: parameters {theta:?}"));
    }
    Ok(Identified { payload: payload_of(&theta), losses, iterations: r.iterations })
}
