//! `map_real`: generic scalar functions as differentiable tensor ops, checked to second order
//! in both modes, and against closed forms.

use adjoint_core::testing::{check_grads, BOTH};
use adjoint_core::{grad, hessian, jvp, Tensor};
use adjoint_scalar::prelude::*;

#[derive(Clone)]
struct SinTimesX;
impl RealFn for SinTimesX {
    fn call<T: Real>(&self, x: T) -> T {
        x.sin() * x
    }
}

/// A function with a branch, a loop and a captured parameter.
#[derive(Clone)]
struct Piecewise {
    scale: f64,
}
impl RealFn for Piecewise {
    fn call<T: Real>(&self, x: T) -> T {
        let mut acc = T::zero();
        let mut term = T::one();
        for k in 1..6 {
            term *= x / T::lit(k as f64);
            acc += term;
        }
        if x > T::zero() {
            acc * T::lit(self.scale)
        } else {
            acc.tanh() + x.erf()
        }
    }
}

#[derive(Clone)]
struct Softplus;
impl RealFn for Softplus {
    fn call<T: Real>(&self, x: T) -> T {
        x.max(T::zero()) + (-x.abs()).exp().ln_1p()
    }
}

fn points() -> Tensor {
    Tensor::from_vec(vec![0.3f64, -1.2, 2.0, 0.7, -0.4, 1.1], &[2, 3])
}

#[test]
fn check_grads_order_two_both_modes() {
    let x = points();
    check_grads(|x: &Tensor| x.map_real(SinTimesX), &x, 2, BOTH);
    check_grads(|x: &Tensor| x.map_real(Piecewise { scale: 1.5 }), &x, 2, BOTH);
    check_grads(|x: &Tensor| x.map_real(Softplus), &x, 2, BOTH);
    // Composed with ordinary tensor ops on both sides.
    check_grads(|x: &Tensor| (x.exp() * 0.5).map_real(SinTimesX).sum() * x.sum(), &x, 2, BOTH);
}

#[test]
fn third_order_still_works() {
    let x = Tensor::from_vec(vec![0.4f64, -0.9], &[2]);
    check_grads(|x: &Tensor| x.map_real(SinTimesX), &x, 3, BOTH);
}

#[test]
fn closed_form_first_and_second_derivative() {
    let xs = [0.3f64, -1.2, 2.0];
    let x = Tensor::from_slice(&xs, &[3]);
    let g = grad(|x: &Tensor| x.map_real(SinTimesX).sum())(&x).to_vec::<f64>();
    let (_, t) = jvp(|x: &Tensor| x.map_real(SinTimesX), &x, &Tensor::ones(&[3]));
    let h = hessian(|x: &Tensor| x.map_real(SinTimesX).sum())(&x).to_vec::<f64>();
    for (i, &v) in xs.iter().enumerate() {
        let d1 = v.cos() * v + v.sin();
        let d2 = 2.0 * v.cos() - v.sin() * v;
        assert!((g[i] - d1).abs() < 1e-14);
        assert!((t.to_vec::<f64>()[i] - d1).abs() < 1e-14);
        for j in 0..3 {
            let want = if i == j { d2 } else { 0.0 };
            assert!((h[i * 3 + j] - want).abs() < 1e-13, "H[{i},{j}] = {} vs {want}", h[i * 3 + j]);
        }
    }
}

#[test]
fn f32_tensors() {
    let x = Tensor::from_vec(vec![0.5f32, -1.0], &[2]);
    let y = x.map_real(SinTimesX).to_vec::<f32>();
    assert_eq!(y, vec![0.5f32.sin() * 0.5, -(-1.0f32).sin()]);
    let g = grad(|x: &Tensor| x.map_real(SinTimesX).sum())(&x).to_vec::<f32>();
    assert!((g[0] - (0.5f32.cos() * 0.5 + 0.5f32.sin())).abs() < 1e-6);
}

#[test]
#[should_panic(expected = "map_real: needs a float tensor")]
fn integer_tensor_is_rejected() {
    let x = Tensor::from_vec(vec![1i64, 2], &[2]);
    let _ = x.map_real(SinTimesX);
}
