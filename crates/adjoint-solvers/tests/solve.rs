//! Implicit gradients of the solvers against unrolled differentiation (the same iteration
//! written with tensor ops and differentiated through, run to convergence), against finite
//! differences at order 2, and their memory, which must not depend on the iteration count.

use std::cell::Cell;

use adjoint_core::testing::{check_grads, BOTH};
use adjoint_core::{grad, memory, Tensor};
use adjoint_solvers::solve::{
    argmin, argmin_box, argmin_with, bicgstab, cg, fixed_point, gmres, root, root_with, Objective,
    RootSolvers, SolveOptions,
};

fn v(x: &[f64]) -> Tensor {
    Tensor::from_vec(x.to_vec(), &[x.len()])
}

fn tight() -> SolveOptions {
    SolveOptions { tol: 1e-14, max_iter: 500, memory: 10, strict: true }
}

fn assert_close(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
    for (x, y) in a.to_vec::<f64>().iter().zip(b.to_vec::<f64>()) {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}: {:?} vs {:?}",
            a.to_vec::<f64>(),
            b.to_vec::<f64>()
        );
    }
}

/// A symmetric positive definite 3×3 matrix depending on `p` (3 entries).
fn spd(p: &Tensor) -> Tensor {
    let base = Tensor::from_vec(vec![4.0f64, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0], &[3, 3]);
    let d = p.exp();
    let outer = d.reshape(&[3, 1]).matmul(&d.reshape(&[1, 3]));
    base + outer * 0.1
}

/// A general (non-symmetric) well-conditioned 3×3 matrix depending on `p`.
fn general(p: &Tensor) -> Tensor {
    let base = Tensor::from_vec(vec![4.0f64, 1.5, -0.5, -1.0, 3.0, 0.7, 0.3, -0.8, 2.5], &[3, 3]);
    base + p.sin().reshape(&[3, 1]).matmul(&v(&[0.3, -0.2, 0.1]).reshape(&[1, 3]))
}

/// `A⁻¹b` unrolled: Richardson iteration `x ← x + ω(b - Ax)`, differentiated through.
fn unrolled_linear(a: &Tensor, b: &Tensor) -> Tensor {
    let mut x = b.zeros_like();
    for _ in 0..400 {
        x = &x + (b - a.matmul(&x)) * 0.15;
    }
    x
}

#[test]
fn linear_solvers_match_unrolled_gradients() {
    let (p, b) = (v(&[0.1, -0.3, 0.2]), v(&[1.0, -2.0, 0.5]));
    let o = tight();
    let loss_u =
        |p: &Tensor, make: fn(&Tensor) -> Tensor| (unrolled_linear(&make(p), &b) * v(&[1.0, 2.0, 3.0])).sum();
    let gu_spd = grad(|p: &Tensor| loss_u(p, spd))(&p);
    let gu_gen = grad(|p: &Tensor| loss_u(p, general))(&p);
    let w = v(&[1.0, 2.0, 3.0]);
    let g_cg = grad(|p: &Tensor| (cg(|x: &Tensor, p: &Tensor| spd(p).matmul(x), &b, p, &o) * &w).sum())(&p);
    assert_close(&g_cg, &gu_spd, 1e-8, "cg");
    let g_gm =
        grad(|p: &Tensor| (gmres(|x: &Tensor, p: &Tensor| general(p).matmul(x), &b, p, &o) * &w).sum())(&p);
    assert_close(&g_gm, &gu_gen, 1e-8, "gmres");
    let g_bi =
        grad(|p: &Tensor| (bicgstab(|x: &Tensor, p: &Tensor| general(p).matmul(x), &b, p, &o) * &w).sum())(
            &p,
        );
    assert_close(&g_bi, &gu_gen, 1e-8, "bicgstab");
    // The gradient in b is A⁻ᵀ w.
    let gb =
        grad(|b: &Tensor| (gmres(|x: &Tensor, p: &Tensor| general(p).matmul(x), b, &p, &o) * &w).sum())(&b);
    let gbu = grad(|b: &Tensor| (unrolled_linear(&general(&p), b) * &w).sum())(&b);
    assert_close(&gb, &gbu, 1e-8, "gmres in b");
}

#[test]
fn nonlinear_solvers_match_unrolled_gradients() {
    let p = v(&[0.4, 0.9, 1.3]);
    let o = tight();
    // Fixed point of a contraction coupling the coordinates.
    let f = |x: &Tensor, p: &Tensor| (x.roll1() * p * 0.5).cos() * 0.8 + p * 0.1;
    let unrolled_fp = |p: &Tensor| {
        let mut x = p.zeros_like();
        for _ in 0..300 {
            x = f(&x, p);
        }
        x
    };
    let w = v(&[1.0, -1.0, 2.0]);
    let gi = grad(|p: &Tensor| (fixed_point(f, &p.zeros_like(), p, &o) * &w).sum())(&p);
    let gu = grad(|p: &Tensor| (unrolled_fp(p) * &w).sum())(&p);
    assert_close(&gi, &gu, 1e-8, "fixed_point (Anderson)");
    let plain = SolveOptions { memory: 0, max_iter: 2000, ..o };
    let gp = grad(|p: &Tensor| (fixed_point(f, &p.zeros_like(), p, &plain) * &w).sum())(&p);
    assert_close(&gp, &gu, 1e-8, "fixed_point (plain)");

    // Root of x³ + p x - 1 coupled with a neighbour; unrolled Newton on the same system is
    // not elementwise, so unroll a damped fixed-point form instead: x ← x - 0.2 f(x).
    let r = |x: &Tensor, p: &Tensor| x * x * x + p * x - 1.0 + x.roll1() * 0.1;
    let unrolled_root = |p: &Tensor| {
        let mut x = p.ones_like() * 0.5;
        for _ in 0..600 {
            x = &x - r(&x, p) * 0.2;
        }
        x
    };
    let gi = grad(|p: &Tensor| (root(r, &(p.ones_like() * 0.5), p, &o) * &w).sum())(&p);
    let gu = grad(|p: &Tensor| (unrolled_root(p) * &w).sum())(&p);
    assert_close(&gi, &gu, 1e-8, "root");
    // The same root by the user's dense Newton and dense tangent solve (custom_root-style):
    // both are used (counted), and the gradient, first and second order, is root's.
    let calls = std::rc::Rc::new(std::cell::Cell::new((0, 0)));
    let (c1, c2) = (calls.clone(), calls.clone());
    let solvers = RootSolvers {
        solve: Some(std::rc::Rc::new(move |g: &dyn Fn(&Tensor) -> Tensor, x0: &Tensor| {
            c1.set((c1.get().0 + 1, c1.get().1));
            let mut x = x0.clone();
            for _ in 0..50 {
                x = &x - adjoint_solvers::linalg::solve(&adjoint_core::jacfwd(|y: &Tensor| g(y))(&x), &g(&x));
            }
            x
        })),
        tangent_solve: Some(std::rc::Rc::new(move |g: &dyn Fn(&Tensor) -> Tensor, b: &Tensor| {
            c2.set((c2.get().0, c2.get().1 + 1));
            adjoint_solvers::linalg::solve(&adjoint_core::jacfwd(|v: &Tensor| g(v))(b), b)
        })),
    };
    let with = |p: &Tensor| (root_with(r, &(p.ones_like() * 0.5), p, solvers.clone(), &o) * &w).sum();
    assert_close(&grad(with)(&p), &gu, 1e-8, "root_with (user solve and tangent solve)");
    assert!(calls.get().0 >= 1 && calls.get().1 >= 1, "{:?}", calls.get());
    let h_user = grad(|p: &Tensor| grad(with)(p).square().sum())(&p);
    let h_root = grad(|p: &Tensor| {
        grad(|p: &Tensor| (root(r, &(p.ones_like() * 0.5), p, &o) * &w).sum())(p).square().sum()
    })(&p);
    assert_close(&h_user, &h_root, 1e-7, "root_with second order");

    // Minimiser of a smooth, strongly convex, non-separable objective; unrolled gradient
    // descent.
    let obj = |x: &Tensor, p: &Tensor| {
        let q = (x * x * v(&[2.0, 1.5, 1.0])).sum() * 0.5 + (x * x.roll1()).sum() * 0.2;
        q + (x * x * x * x).sum() * 0.05 - (x * p).sum()
    };
    let unrolled_min = |p: &Tensor| {
        let mut x = p.zeros_like();
        for _ in 0..1500 {
            let g = grad(|y: &Tensor| obj(y, p))(&x);
            x = &x - g * 0.2;
        }
        x
    };
    let gi = grad(|p: &Tensor| (argmin(obj, &p.zeros_like(), p, &o) * &w).sum())(&p);
    let gu = grad(|p: &Tensor| (unrolled_min(p) * &w).sum())(&p);
    assert_close(&gi, &gu, 1e-8, "argmin");
    // The same minimiser found by adjoint-nn's L-BFGS, through argmin_with.
    let lbfgs = |obj: &Objective, x0: &Tensor| {
        use adjoint_nn::optim::{Lbfgs, LbfgsConfig};
        let cfg = LbfgsConfig {
            line_search: true,
            max_iter: 500,
            tolerance_grad: 1e-13,
            tolerance_change: 0.0,
            ..Default::default()
        };
        Lbfgs::new(x0, cfg).step(x0, |x| obj(x)).params
    };
    let gl = grad(|p: &Tensor| (argmin_with(obj, &p.zeros_like(), p, lbfgs, &o) * &w).sum())(&p);
    assert_close(&gl, &gu, 1e-8, "argmin_with L-BFGS");
    // With a box that binds the last coordinate: projected gradient descent unrolled.
    let (lo, hi) = (-0.2, 0.35);
    let unrolled_box = |p: &Tensor| {
        let mut x = p.zeros_like();
        for _ in 0..1500 {
            let g = grad(|y: &Tensor| obj(y, p))(&x);
            x = (&x - g * 0.2).maximum(&Tensor::scalar(lo)).minimum(&Tensor::scalar(hi));
        }
        x
    };
    let boxo = SolveOptions { max_iter: 5000, ..o };
    let xb = argmin_box(obj, &p.zeros_like(), &p, lo, hi, &boxo);
    assert!((xb.to_vec::<f64>()[2] - hi).abs() < 1e-12, "the box binds: {:?}", xb.to_vec::<f64>());
    let gi = grad(|p: &Tensor| (argmin_box(obj, &p.zeros_like(), p, lo, hi, &boxo) * &w).sum())(&p);
    let gu = grad(|p: &Tensor| (unrolled_box(p) * &w).sum())(&p);
    assert_close(&gi, &gu, 1e-8, "argmin_box");
}

#[test]
fn second_order_through_implicit_solvers() {
    // check_grads: order 2, forward and reverse, against finite differences.
    let o = tight();
    check_grads(
        move |p: &Tensor| {
            fixed_point(|x: &Tensor, p: &Tensor| (x * p * 0.5).cos() * 0.8, &p.zeros_like(), p, &o)
        },
        &v(&[0.4, 0.9]),
        2,
        BOTH,
    );
    check_grads(
        move |p: &Tensor| cg(|x: &Tensor, p: &Tensor| spd(p).matmul(x), &v(&[1.0, 0.5, -1.0]), p, &o),
        &v(&[0.1, -0.3, 0.2]),
        2,
        BOTH,
    );
    check_grads(
        move |p: &Tensor| root(|x: &Tensor, p: &Tensor| x * x * x + p * x - 1.0, &p.ones_like(), p, &o),
        &v(&[0.7, 1.4]),
        2,
        BOTH,
    );
}

#[test]
fn reverse_mode_memory_does_not_grow_with_the_iteration_count() {
    // The same fixed point reached in few (Anderson) or many (plain, slow contraction)
    // iterations: the tape holds the same residuals either way.
    let f = |x: &Tensor, p: &Tensor| (x * p).cos() * 0.95;
    let p = Tensor::from_vec((0..256).map(|i| 0.2 + i as f64 / 512.0).collect::<Vec<_>>(), &[256]);
    let held = |o: SolveOptions| {
        let live = Cell::new(0);
        memory::reset_peak();
        grad(|p: &Tensor| {
            let y = fixed_point(f, &p.zeros_like(), p, &o).sum();
            live.set(memory::live_residual_bytes());
            y
        })(&p);
        (live.get(), memory::peak_residual_bytes())
    };
    let few = held(SolveOptions { tol: 1e-12, memory: 5, max_iter: 10_000, strict: true });
    let many = held(SolveOptions { tol: 1e-12, memory: 0, max_iter: 10_000, strict: true });
    assert_eq!(few, many, "(live after forward, peak) bytes: Anderson {few:?}, plain {many:?}");
    assert!(few.0 <= 4 * 256 * 8, "only the solution and the parameters are kept: {few:?}");
}

#[test]
fn strict_options_report_non_convergence() {
    let o = SolveOptions { tol: 1e-14, max_iter: 3, memory: 0, strict: true };
    let err = std::panic::catch_unwind(|| {
        fixed_point(
            |x: &Tensor, p: &Tensor| (x * p).cos(),
            &Tensor::scalar(0.0f64),
            &Tensor::scalar(0.9f64),
            &o,
        )
    })
    .expect_err("must not converge in 3 iterations");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("fixed_point: no convergence in 3 iterations"), "{msg}");
}

trait Roll {
    fn roll1(&self) -> Tensor;
}
impl Roll for Tensor {
    /// The vector rotated by one position (a coupling between coordinates).
    fn roll1(&self) -> Tensor {
        let n = self.shape()[0];
        Tensor::concat(&[&self.narrow(0, 1, n - 1), &self.narrow(0, 0, 1)], 0)
    }
}
