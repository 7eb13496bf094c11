//! The simulator behind `adjoint demo robot`: physics checks, gradients through long rollouts
//! (reverse mode on the `Var` tape against forward mode and finite differences), and payload
//! identification on simulated data.

use std::path::Path;

use adjoint_cli::demos::robot_control::{loss_and_grad, rollout, sample_tasks, Horizon, Net};
use adjoint_cli::demos::robot_sim::{cholesky_solve, Arm, Payload};
use adjoint_cli::demos::robot_sysid::{identify, measure, SysidSettings};
use adjoint_scalar::{gradient, Dual, Real, Var};
use adjoint_tensor::random::Key;

fn arm(joints: usize) -> Arm {
    Arm::puma560(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/robot_arm_dynamics_params.json"),
        joints,
    )
    .unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

#[test]
#[allow(clippy::needless_range_loop)] // matrix indices, as in the definitions
fn mass_matrix_is_symmetric_positive_definite_and_solve_inverts_it() {
    for payload in [None, Some(Payload { mass: 2.0, offset: 0.3 })] {
        let m = arm(3).model::<f64>(payload.as_ref());
        for q in [[0.3, -0.4, 1.1], [-1.0, 0.7, 0.2]] {
            let mm = m.mass_matrix(&m.kinematics(&q));
            for i in 0..3 {
                for j in 0..3 {
                    assert!((mm[i][j] - mm[j][i]).abs() < 1e-12);
                }
                assert!(mm[i][i] > 0.0);
            }
            let r = [1.0, -2.0, 0.5];
            let x = cholesky_solve(&mm, &r);
            for i in 0..3 {
                let back: f64 = (0..3).map(|j| mm[i][j] * x[j]).sum();
                assert!((back - r[i]).abs() < 1e-10, "{back} vs {}", r[i]);
            }
        }
    }
}

/// Newton–Euler's `C q̇ + g` must equal the Lagrangian's: `g = ∂V/∂q`, and the
/// Coriolis/centrifugal torque `Ṁ q̇ − ½ ∂(q̇ᵀ M q̇)/∂q` — `∂/∂q` by reverse mode (`Var`), `Ṁ q̇`
/// as the forward-mode (`Dual`) derivative of `M(q + s q̇) q̇` at `s = 0`. With and without a
/// payload (the payload is folded into the last link's inertia).
#[test]
fn newton_euler_matches_the_lagrangian() {
    let a = arm(3);
    let q = [0.3, -0.4, 1.1];
    let qd = [0.5, -0.8, 1.3];
    for payload in [None, Some(Payload { mass: 2.0, offset: 0.3 })] {
        let m = a.model::<f64>(payload.as_ref());
        let h = m.bias(&m.kinematics(&q), &qd);
        let mv = a.model::<Var>(payload.map(|p| p.lift()).as_ref());
        let g = gradient(|x: &[Var]| mv.energy(x, &[Var::constant(0.0); 3]), &q);
        let qdv: Vec<Var> = qd.iter().map(|&v| Var::constant(v)).collect();
        let dke = gradient(
            |x: &[Var]| {
                let mm = mv.mass_matrix(&mv.kinematics(x));
                let mut e = Var::constant(0.0);
                for i in 0..3 {
                    for j in 0..3 {
                        e += qdv[i] * mm[i][j] * qdv[j] * 0.5;
                    }
                }
                e
            },
            &q,
        );
        let md = a.model::<Dual<f64>>(payload.map(|p| p.lift()).as_ref());
        let qs: Vec<Dual<f64>> = (0..3).map(|i| Dual::new(q[i], qd[i])).collect();
        let mm = md.mass_matrix(&md.kinematics(&qs));
        for i in 0..3 {
            let mdot_qd: f64 = (0..3).map(|j| mm[i][j].eps * qd[j]).sum();
            let lagrange = mdot_qd - dke[i] + g[i];
            assert!(close(h[i], lagrange, 1e-9), "joint {i}: {} vs {lagrange}", h[i]);
        }
    }
}

/// With no torque and no friction the energy is conserved to the integrator's (first) order:
/// halving the step halves the drift.
#[test]
fn energy_is_conserved_to_first_order_without_torque_or_friction() {
    let mut a = arm(3);
    a.friction = false;
    let m = a.model::<f64>(Some(&Payload { mass: 1.5, offset: 0.2 }));
    let drift = |dt: f64, steps: usize| {
        let mut q = [0.2, -0.5, 0.9];
        let mut qd = [0.3, 0.0, -0.4];
        let e0 = m.energy(&q, &qd);
        let mut worst: f64 = 0.0;
        for _ in 0..steps {
            m.step(&mut q, &mut qd, &[0.0; 3], dt);
            worst = worst.max((m.energy(&q, &qd) - e0).abs());
        }
        worst / e0.abs().max(1.0)
    };
    let coarse = drift(0.002, 500);
    let fine = drift(0.001, 1000);
    assert!(coarse < 1e-2, "relative energy drift {coarse}");
    let ratio = coarse / fine;
    assert!((1.6..2.5).contains(&ratio), "drift ratio {ratio} (coarse {coarse}, fine {fine})");
}

/// The loss of an open-loop torque sequence through 1,000 steps (friction on), generic so that
/// every scalar type runs the same code.
fn open_loop<T: Real>(a: &Arm, tau: &[T]) -> T {
    let m = a.model::<T>(None);
    let mut q: Vec<T> = [0.1, -0.3, 0.6].iter().map(|&v| T::lit(v)).collect();
    let mut qd = vec![T::zero(); 3];
    for s in 0..1000 {
        let u = &tau[(s % 10) * 3..(s % 10) * 3 + 3];
        m.step(&mut q, &mut qd, u, 0.005);
    }
    let ee = m.end_effector(&q);
    let t = [0.3, 0.2, 0.5];
    (0..3).map(|i| (ee[i] - T::lit(t[i])) * (ee[i] - T::lit(t[i]))).sum()
}

/// Gradients through 1,000 simulation steps: the `Var` tape's gradient equals forward mode
/// (`Dual`, one directional derivative per input) to rounding, and central finite differences
/// to their truncation error.
#[test]
fn gradients_through_a_thousand_steps_match_forward_mode_and_finite_differences() {
    let a = arm(3);
    let tau: Vec<f64> = (0..30).map(|i| ((i as f64) * 0.7).sin() * 5.0).collect();
    let g = gradient(|x: &[Var]| open_loop(&a, x), &tau);
    for i in 0..30 {
        let xs: Vec<Dual<f64>> =
            tau.iter().enumerate().map(|(j, &v)| Dual::new(v, if i == j { 1.0 } else { 0.0 })).collect();
        let fwd = open_loop(&a, &xs).eps;
        assert!(close(g[i], fwd, 1e-9), "τ[{i}]: reverse {} vs forward {fwd}", g[i]);
        let hstep = 1e-5;
        let (mut p, mut m) = (tau.clone(), tau.clone());
        p[i] += hstep;
        m[i] -= hstep;
        let fd = (open_loop(&a, &p) - open_loop(&a, &m)) / (2.0 * hstep);
        assert!((fd - g[i]).abs() <= 1e-5 * (g[i].abs() + 1e-6), "τ[{i}]: fd {fd} vs ad {}", g[i]);
    }
}

/// The controller's BPTT gradient (one tape per task, summed) against finite differences in
/// random directions, through closed-loop rollouts with a payload.
#[test]
fn bptt_gradient_matches_finite_differences() {
    let a = arm(3);
    let pl = Payload { mass: 1.0, offset: 0.2 };
    let (mf, mv) = (a.model::<f64>(Some(&pl)), a.model::<Var>(Some(&pl.lift())));
    let net = Net { n: 3, hidden: 8 };
    let key = Key::new(7);
    let p = net.init(&key);
    let tasks = sample_tasks(&mf, &key.fold_in(1), 3);
    let h = Horizon { steps: 60, dt: 0.01, torque_weight: 1e-2 };
    let (l, g) = loss_and_grad(&mv, &net, &p, &tasks, &h);
    let f = |p: &[f64]| tasks.iter().map(|t| rollout(&mf, &net, p, t, &h, false).loss).sum::<f64>() / 3.0;
    assert!(close(l, f(&p), 1e-12));
    for d in 0..3 {
        let dir =
            adjoint_tensor::random::normal(&key.fold_in(10 + d), &[p.len()], adjoint_tensor::DType::F64)
                .to_vec::<f64>();
        let eps = 1e-6;
        let shifted = |s: f64| p.iter().zip(&dir).map(|(a, b)| a + s * b).collect::<Vec<_>>();
        let fd = (f(&shifted(eps)) - f(&shifted(-eps))) / (2.0 * eps);
        let ad: f64 = g.iter().zip(&dir).map(|(a, b)| a * b).sum();
        assert!((fd - ad).abs() <= 1e-6 * (ad.abs() + 1e-8), "direction {d}: fd {fd} vs ad {ad}");
    }
}

/// System identification recovers a known payload from one second of noisy simulated motion
/// (fixed seed) to within 5% in mass, and the fit brings the loss down to the noise level.
#[test]
fn system_identification_recovers_the_payload() {
    let a = arm(3);
    let s = SysidSettings::default();
    let log = measure(&a, &s, &Key::new(11));
    let found = identify(&a, &log, &s).unwrap();
    let e = found.payload;
    assert!((e.mass - s.truth.mass).abs() < 0.05 * s.truth.mass, "mass {} vs {}", e.mass, s.truth.mass);
    assert!(
        (e.offset - s.truth.offset).abs() < 0.05 * s.truth.offset,
        "offset {} vs {}",
        e.offset,
        s.truth.offset
    );
    let first = found.losses[0];
    let last = *found.losses.last().unwrap();
    // Noise of 1 mrad: the best achievable mean squared error is about 1 mrad².
    assert!(last < 2.0 && last < first / 10.0, "loss {first} -> {last}");
}
