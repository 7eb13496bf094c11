//! The simulator behind `adjoint demo robot`: physics checks and gradients through long rollouts.

use std::path::Path;

use adjoint_cli::demos::robot_sim::{cholesky_solve, Arm};
use adjoint_core::testing::{check_grads, BOTH};
use adjoint_core::{DType, Tensor};

fn arm(joints: usize) -> Arm {
    Arm::puma560(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/robot_arm_dynamics_params.json"),
        joints,
    )
    .unwrap()
}

fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape)
}

#[test]
fn mass_matrix_is_symmetric_positive_definite_and_solve_inverts_it() {
    let a = arm(3);
    let q = t(vec![0.3, -0.4, 1.1, -1.0, 0.7, 0.2], &[2, 3]);
    let m = a.mass_matrix(&a.kinematics(&q));
    let mv = m.to_vec::<f64>();
    for b in 0..2 {
        for i in 0..3 {
            for j in 0..3 {
                assert!((mv[b * 9 + i * 3 + j] - mv[b * 9 + j * 3 + i]).abs() < 1e-12);
            }
            assert!(mv[b * 9 + i * 4] > 0.0);
        }
    }
    let r = t(vec![1.0, -2.0, 0.5, 3.0, 0.1, -0.2], &[2, 3]);
    let x = cholesky_solve(&m, &r);
    let back = m.matmul(&x.unsqueeze(2)).squeeze(2).to_vec::<f64>();
    for (p, q) in back.iter().zip(r.to_vec::<f64>()) {
        assert!((p - q).abs() < 1e-10, "{p} vs {q}");
    }
}

/// Newton–Euler's `C q̇ + g` must equal the Lagrangian's: `g = ∂V/∂q` and, with `q̇` along one
/// joint, the Coriolis/centrifugal torque `Ṁ q̇ − ½ ∂(q̇ᵀ M q̇)/∂q` (both by autodiff here).
#[test]
fn newton_euler_matches_the_lagrangian() {
    let a = arm(3);
    let q = t(vec![0.3, -0.4, 1.1], &[1, 3]);
    let qd = t(vec![0.5, -0.8, 1.3], &[1, 3]);
    let h = a.bias(&a.kinematics(&q), &qd).to_vec::<f64>();
    let pot = |q: &Tensor| a.energy(q, &q.zeros_like()).sum();
    let g = adjoint_core::grad(pot)(&q).to_vec::<f64>();
    let ke = |q: &Tensor| {
        let m = a.mass_matrix(&a.kinematics(q));
        (qd.unsqueeze(1).matmul(&m).squeeze(1) * &qd).sum() * 0.5
    };
    let dke = adjoint_core::grad(ke)(&q).to_vec::<f64>();
    let mq = |q: &Tensor| a.mass_matrix(&a.kinematics(q)).matmul(&qd.unsqueeze(2)).squeeze(2);
    let (_, mdot_qd) = adjoint_core::jvp(mq, &q, &qd);
    let mdot_qd = mdot_qd.to_vec::<f64>();
    for i in 0..3 {
        let lagrange = mdot_qd[i] - dke[i] + g[i];
        assert!((h[i] - lagrange).abs() < 1e-9 * (1.0 + lagrange.abs()), "joint {i}: {} vs {lagrange}", h[i]);
    }
}

/// With no torque and no friction the energy is conserved to the integrator's (first) order:
/// halving the step halves the drift.
#[test]
fn energy_is_conserved_to_first_order_without_torque_or_friction() {
    let mut a = arm(3);
    a.friction = false;
    let drift = |dt: f64, steps: usize| {
        let mut q = t(vec![0.2, -0.5, 0.9], &[1, 3]);
        let mut qd = t(vec![0.3, 0.0, -0.4], &[1, 3]);
        let tau = Tensor::full_of(&[1, 3], 0.0, DType::F64);
        let e0 = a.energy(&q, &qd).item();
        let mut worst: f64 = 0.0;
        for _ in 0..steps {
            (q, qd) = a.step(&q, &qd, &tau, dt);
            worst = worst.max((a.energy(&q, &qd).item() - e0).abs());
        }
        worst / e0.abs().max(1.0)
    };
    let coarse = drift(0.002, 500);
    let fine = drift(0.001, 1000);
    assert!(coarse < 1e-2, "relative energy drift {coarse}");
    let ratio = coarse / fine;
    assert!((1.6..2.5).contains(&ratio), "drift ratio {ratio} (coarse {coarse}, fine {fine})");
}

/// Gradients through 1,000 simulation steps (friction on) pass `check_grads` in f64, both modes.
#[test]
fn gradients_through_a_thousand_steps_pass_check_grads() {
    let a = arm(3);
    let steps = 1000;
    let f = move |tau: &Tensor| {
        let mut q = t(vec![0.1, -0.3, 0.6], &[1, 3]);
        let mut qd = q.zeros_like();
        for s in 0..steps {
            let u = tau.narrow(0, s % 10, 1);
            (q, qd) = a.step(&q, &qd, &u, 0.005);
        }
        let target = t(vec![0.3, 0.2, 0.5], &[1, 3]);
        (a.end_effector(&q) - target).square().sum()
    };
    let tau = t((0..30).map(|i| ((i as f64) * 0.7).sin() * 5.0).collect(), &[10, 3]);
    check_grads(f, &tau, 1, BOTH);
}
