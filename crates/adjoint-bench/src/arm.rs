//! `W5_arm_bptt`: backpropagation through 500 steps of a 2-link planar arm
//! (`benches/WORKLOADS.md` gives the exact model). The same dynamics are written twice, once
//! over tensors (tensor tier: every scalar operation is a traced op on a 1-element tensor) and
//! once generic over [`Real`] (scalar tier: the `Var` tape records one 24-byte node per
//! operation). Both are checked against each other and against finite differences below.

use adjoint_core::Tensor;
use adjoint_scalar::Real;

/// Steps of the rollout (rows of τ).
pub const STEPS: usize = 500;
const DT: f64 = 0.01;
const G: f64 = 9.81;
const L1: f64 = 1.0;
const L2: f64 = 1.0;
const M1: f64 = 1.0;
const M2: f64 = 1.0;
const TARGET: (f64, f64) = (1.0, 1.0);
const REG: f64 = 1e-3;

/// The torques W5 is timed at: 0.1 · N(0, 1) from key 5, row-major `[STEPS, 2]`.
pub fn torques() -> Vec<f64> {
    let tau = adjoint_tensor::random::normal(
        &adjoint_tensor::random::Key::new(5),
        &[STEPS, 2],
        adjoint_core::DType::F64,
    );
    tau.to_vec::<f64>().iter().map(|t| 0.1 * t).collect()
}

/// The loss for τ given row-major as `[steps, 2]`, on the scalar tier.
pub fn loss_real<T: Real>(tau: &[T]) -> T {
    let c = T::lit;
    let (mut q1, mut q2, mut v1, mut v2) = (c(0.0), c(0.0), c(0.0), c(0.0));
    for row in tau.chunks_exact(2) {
        let (c2, s2) = (q2.cos(), q2.sin());
        let m11 = c((M1 + M2) * L1 * L1 + M2 * L2 * L2) + c(2.0 * M2 * L1 * L2) * c2;
        let m12 = c(M2 * L2 * L2) + c(M2 * L1 * L2) * c2;
        let m22 = c(M2 * L2 * L2);
        let h = c(M2 * L1 * L2) * s2;
        let cq1 = -h * (c(2.0) * v1 * v2 + v2 * v2);
        let cq2 = h * v1 * v1;
        let c12 = (q1 + q2).cos();
        let g1 = c((M1 + M2) * G * L1) * q1.cos() + c(M2 * G * L2) * c12;
        let g2 = c(M2 * G * L2) * c12;
        let r1 = row[0] - cq1 - g1;
        let r2 = row[1] - cq2 - g2;
        let det = m11 * m22 - m12 * m12;
        let a1 = (m22 * r1 - m12 * r2) / det;
        let a2 = (m11 * r2 - m12 * r1) / det;
        v1 += c(DT) * a1;
        v2 += c(DT) * a2;
        q1 += c(DT) * v1;
        q2 += c(DT) * v2;
    }
    let q12 = q1 + q2;
    let px = c(L1) * q1.cos() + c(L2) * q12.cos();
    let py = c(L1) * q1.sin() + c(L2) * q12.sin();
    let (ex, ey) = (px - c(TARGET.0), py - c(TARGET.1));
    let reg: T = tau.iter().map(|&t| t * t).sum();
    ex * ex + ey * ey + c(REG) * reg
}

/// The same loss on the tensor tier, for τ of shape `[steps, 2]` (any float dtype).
pub fn loss_tensor(tau: &Tensor) -> Tensor {
    let steps = tau.shape()[0];
    let zero = Tensor::full_of(&[1], 0.0, tau.dtype());
    let mut c = (zero.clone(), zero.clone(), zero.clone(), zero);
    for t in 0..steps {
        c = step_tensor(&c, &tau.narrow(0, t, 1).reshape(&[2]));
    }
    final_loss(&c, tau)
}

/// One step of the rollout on the tensor tier: the carry `(q1, q2, v1, v2)` of `[1]` tensors
/// and the step's torques `[2]` give the next carry. [`loss_tensor`] unrolls it in a Rust loop;
/// [`loss_scan`] stages it once as a [`scan`](adjoint_core::scan).
fn step_tensor(c: &(Tensor, Tensor, Tensor, Tensor), tau: &Tensor) -> (Tensor, Tensor, Tensor, Tensor) {
    let (q1, q2, v1, v2) = c;
    let (c2, s2) = (q2.cos(), q2.sin());
    let m11 = &c2 * (2.0 * M2 * L1 * L2) + ((M1 + M2) * L1 * L1 + M2 * L2 * L2);
    let m12 = &c2 * (M2 * L1 * L2) + M2 * L2 * L2;
    let m22 = M2 * L2 * L2;
    let h = &s2 * (M2 * L1 * L2);
    let cq1 = -(&h * &(&(v1 * v2) * 2.0 + v2 * v2));
    let cq2 = &h * &(v1 * v1);
    let c12 = (q1 + q2).cos();
    let g1 = q1.cos() * ((M1 + M2) * G * L1) + &c12 * (M2 * G * L2);
    let g2 = &c12 * (M2 * G * L2);
    let r1 = &(&tau.narrow(0, 0, 1) - &cq1) - &g1;
    let r2 = &(&tau.narrow(0, 1, 1) - &cq2) - &g2;
    let det = &m11 * m22 - &m12 * &m12;
    let a1 = &(&r1 * m22 - &m12 * &r2) / &det;
    let a2 = &(&m11 * &r2 - &m12 * &r1) / &det;
    let v1 = v1 + &(a1 * DT);
    let v2 = v2 + &(a2 * DT);
    let q1 = q1 + &(&v1 * DT);
    let q2 = q2 + &(&v2 * DT);
    (q1, q2, v1, v2)
}

/// The loss of the final carry and τ (shared by [`loss_tensor`] and [`loss_scan`]).
fn final_loss(c: &(Tensor, Tensor, Tensor, Tensor), tau: &Tensor) -> Tensor {
    let (q1, q2) = (&c.0, &c.1);
    let q12 = q1 + q2;
    let px = q1.cos() * L1 + q12.cos() * L2;
    let py = q1.sin() * L1 + q12.sin() * L2;
    let ex = px - TARGET.0;
    let ey = py - TARGET.1;
    (&ex * &ex + &ey * &ey).sum() + (tau * tau).sum() * REG
}

/// The same loss with the rollout as one [`scan`](adjoint_core::scan) over the rows of τ: under
/// `jit` the 500 steps are one equation (compile time independent of the horizon), and reverse
/// mode runs the body's VJP program in a reverse scan.
pub fn loss_scan(tau: &Tensor) -> Tensor {
    let zero = Tensor::full_of(&[1], 0.0, tau.dtype());
    let init = (zero.clone(), zero.clone(), zero.clone(), zero);
    let (end, ()) = adjoint_core::scan(|c, x: &Tensor| (step_tensor(c, x), ()), &init, tau);
    final_loss(&end, tau)
}

#[cfg(test)]
mod tests {
    use super::*;
    use adjoint_core::{value_and_grad, DType};
    use adjoint_scalar::value_and_gradient;

    fn some_tau(steps: usize) -> Vec<f64> {
        (0..2 * steps).map(|i| ((i as f64) * 0.37).sin() * 2.0).collect()
    }

    #[test]
    fn tiers_agree_with_each_other_and_with_finite_differences() {
        let steps = 40;
        let tau = some_tau(steps);
        let (l_s, g_s) = value_and_gradient(loss_real, &tau);
        let t = Tensor::from_slice(&tau, &[steps, 2]);
        let (l_t, g_t) = value_and_grad(loss_tensor)(&t);
        let g_t = g_t.to_vec::<f64>();
        assert!((l_s - l_t.item()).abs() <= 1e-12 * l_s.abs().max(1.0), "{l_s} vs {}", l_t.item());
        for (a, b) in g_s.iter().zip(&g_t) {
            assert!((a - b).abs() <= 1e-10 * a.abs().max(1e-3), "{a} vs {b}");
        }
        let h = 1e-6;
        for i in [0, 1, 17, 2 * steps - 2, 2 * steps - 1] {
            let (mut p, mut m) = (tau.clone(), tau.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (loss_real(&p) - loss_real(&m)) / (2.0 * h);
            assert!((fd - g_s[i]).abs() <= 1e-6 * fd.abs().max(1e-3), "τ[{i}]: fd {fd} vs ad {}", g_s[i]);
        }
    }

    #[test]
    fn the_scan_rollout_matches_the_unrolled_one_eager_and_under_jit() {
        let steps = 40;
        let t = Tensor::from_slice(&some_tau(steps), &[steps, 2]);
        let (l0, g0) = value_and_grad(loss_tensor)(&t);
        let (l1, g1) = value_and_grad(loss_scan)(&t);
        let (l2, g2) = adjoint_core::jit(value_and_grad(loss_scan))(&t);
        let g0 = g0.to_vec::<f64>();
        for (l, g) in [(l1, g1), (l2, g2)] {
            assert!((l.item() - l0.item()).abs() <= 1e-12 * l0.item().abs(), "{} vs {}", l.item(), l0.item());
            for (a, b) in g0.iter().zip(g.to_vec::<f64>()) {
                assert!((a - b).abs() <= 1e-10 * a.abs().max(1e-3), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn gravity_pulls_the_unactuated_arm_down() {
        // With τ = 0 the arm, starting horizontal at q = 0, falls.
        let tau = vec![0.0; 2 * 20];
        let l = loss_real(&tau);
        // Start at p = (2, 0): loss (2-1)² + (0-1)² = 2; falling lowers y, so the loss grows.
        assert!(l > 2.0, "{l}");
        let t = Tensor::from_slice(&tau, &[20, 2]).cast(DType::F32);
        assert!((loss_tensor(&t).item() - l).abs() < 1e-4);
    }
}
