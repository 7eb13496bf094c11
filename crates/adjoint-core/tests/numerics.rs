//! The stable formulations of `adjoint_core::numerics`, each at the extremes: `f32`, ±1e4, 0,
//! denormals. Values and first and second derivatives must be finite and right, and computing
//! them must not create a NaN or infinity anywhere — not even in a discarded intermediate — which
//! is checked by running everything under anomaly mode.

use adjoint_core::testing::{check_grads, BOTH};
use adjoint_core::{debug, grad, Tensor};

const DENORMAL: f32 = 1e-40; // below f32::MIN_POSITIVE (1.18e-38)

fn extremes() -> Vec<f32> {
    vec![-1e4, -88.0, -1.0, -DENORMAL, 0.0, DENORMAL, 1.0, 88.0, 1e4]
}

fn t(v: &[f32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()])
}

/// Value, gradient and diagonal of the Hessian of `sum(f(x))`, all under anomaly mode.
fn value_grad_hess(f: fn(&Tensor) -> Tensor, x: &Tensor) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    debug::detect_anomaly(|| {
        let v = f(x).to_vec::<f32>();
        let g = grad(|x: &Tensor| f(x).sum())(x).to_vec::<f32>();
        let h = grad(|x: &Tensor| grad(|x: &Tensor| f(x).sum())(x).sum())(x).to_vec::<f32>();
        (v, g, h)
    })
    .unwrap_or_else(|a| panic!("{a}"))
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(g.is_finite(), "{what}[{i}] = {g} is not finite");
        assert!((g as f64 - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w}");
    }
}

fn sigmoid64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp() / (1.0 + x.exp())
    }
}

#[test]
fn softplus_linear_branch_and_derivative_at_zero() {
    let xs = extremes();
    let (v, g, h) = value_grad_hess(Tensor::softplus, &t(&xs));
    let want_v: Vec<f64> =
        xs.iter().map(|&x| (x as f64).max(0.0) + (-(x as f64).abs()).exp().ln_1p()).collect();
    let want_g: Vec<f64> = xs.iter().map(|&x| sigmoid64(x as f64)).collect();
    let want_h: Vec<f64> = xs.iter().map(|&x| sigmoid64(x as f64) * (1.0 - sigmoid64(x as f64))).collect();
    assert_close(&v, &want_v, 1e-6, "softplus");
    assert_close(&g, &want_g, 1e-6, "softplus'");
    assert_close(&h, &want_h, 1e-6, "softplus''");
    assert_eq!(v[8], 1e4, "linear branch: exactly x for large x");
    assert_eq!(g[4], 0.5, "softplus'(0) = sigmoid(0) = 1/2");
}

#[test]
fn softplus_derivatives_check_in_f64() {
    let x = Tensor::from_vec(vec![-3.0f64, -0.5, 0.3, 2.0, 7.0], &[5]);
    check_grads(|x: &Tensor| x.softplus(), &x, 2, BOTH);
}

#[test]
fn sigmoid_saturates_without_nan() {
    let xs = extremes();
    let (v, g, h) = value_grad_hess(Tensor::sigmoid, &t(&xs));
    let want_v: Vec<f64> = xs.iter().map(|&x| sigmoid64(x as f64)).collect();
    let want_g: Vec<f64> = want_v.iter().map(|s| s * (1.0 - s)).collect();
    let want_h: Vec<f64> = want_v.iter().map(|s| s * (1.0 - s) * (1.0 - 2.0 * s)).collect();
    assert_close(&v, &want_v, 1e-6, "sigmoid");
    assert_close(&g, &want_g, 1e-6, "sigmoid'");
    assert_close(&h, &want_h, 1e-6, "sigmoid''");
    assert_eq!((v[0], v[8]), (0.0, 1.0));
}

#[test]
fn log1p_and_expm1_keep_tiny_values() {
    let xs = vec![-0.5f32, -DENORMAL, 0.0, DENORMAL, 1e-7, 1.0, 1e4];
    let (v, g, h) = value_grad_hess(Tensor::log1p, &t(&xs));
    assert_close(&v, &xs.iter().map(|&x| (x as f64).ln_1p()).collect::<Vec<_>>(), 1e-6, "log1p");
    assert_close(&g, &xs.iter().map(|&x| 1.0 / (1.0 + x as f64)).collect::<Vec<_>>(), 1e-6, "log1p'");
    assert_close(
        &h,
        &xs.iter().map(|&x| -1.0 / (1.0 + x as f64).powi(2)).collect::<Vec<_>>(),
        1e-6,
        "log1p''",
    );
    assert_eq!(v[3], DENORMAL, "log1p keeps a denormal (log(1 + x) would give 0)");
    // log(1 + 1e-7) in f32 would be 1.19e-7 (1 + 1e-7 rounds to 1 + 2^-23); log1p is exact to
    // the last bit.
    assert!((v[4] as f64 - 1e-7).abs() < 1e-13, "{}", v[4]);

    let xs = vec![-1e4f32, -88.0, -DENORMAL, 0.0, DENORMAL, 1e-7, 1.0, 80.0];
    let (v, g, h) = value_grad_hess(Tensor::expm1, &t(&xs));
    assert_close(&v, &xs.iter().map(|&x| (x as f64).exp_m1()).collect::<Vec<_>>(), 1e-6, "expm1");
    assert_close(&g, &xs.iter().map(|&x| (x as f64).exp()).collect::<Vec<_>>(), 1e-6, "expm1'");
    assert_close(&h, &xs.iter().map(|&x| (x as f64).exp()).collect::<Vec<_>>(), 1e-6, "expm1''");
    assert_eq!(v[4], DENORMAL);
    assert_eq!(v[0], -1.0);
}

#[test]
fn logsumexp_and_log_softmax_at_1e4() {
    let rows: Vec<f32> = vec![
        1e4, 1e4, -1e4, 0.0, /* row 2 */ -1e4, -1e4, -1e4, -1e4, /* row 3 */ 0.0, DENORMAL,
        -DENORMAL, 88.0,
    ];
    let x = Tensor::from_vec(rows.clone(), &[3, 4]);
    let lse = |x: &Tensor| x.logsumexp(&[1], false);
    let (v, g, h) = debug::detect_anomaly(|| {
        let v = lse(&x).to_vec::<f32>();
        let g = grad(|x: &Tensor| lse(x).sum())(&x).to_vec::<f32>();
        let h = grad(|x: &Tensor| grad(|x: &Tensor| lse(x).sum())(x).sum())(&x).to_vec::<f32>();
        (v, g, h)
    })
    .unwrap_or_else(|a| panic!("{a}"));
    let mut want_v = Vec::new();
    let mut want_g = Vec::new();
    for r in rows.chunks(4) {
        let m = r.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let s: f64 = r.iter().map(|&x| (x as f64 - m).exp()).sum();
        want_v.push(m + s.ln());
        want_g.extend(r.iter().map(|&x| (x as f64 - m).exp() / s));
    }
    assert_close(&v, &want_v, 1e-6, "logsumexp");
    assert_close(&g, &want_g, 1e-6, "grad logsumexp = softmax");
    assert!(h.iter().all(|x| x.is_finite()));

    let w = Tensor::from_vec((0..12).map(|i| i as f32 - 5.0).collect::<Vec<_>>(), &[3, 4]);
    let ls = debug::detect_anomaly(|| {
        let v = x.log_softmax(1).to_vec::<f32>();
        let g = grad(|x: &Tensor| (x.log_softmax(1) * &w).sum())(&x).to_vec::<f32>();
        let sm = x.softmax(1).to_vec::<f32>();
        (v, g, sm)
    })
    .unwrap_or_else(|a| panic!("{a}"));
    for (i, &v) in ls.0.iter().enumerate() {
        let want = rows[i] as f64 - want_v[i / 4];
        // x − lse(x) cancels: f32 resolves 1e4 only to ~1e-3, so the error scales with |x|.
        let tol = 1e-6 * (1.0 + (rows[i] as f64).abs() + want_v[i / 4].abs());
        assert!((v as f64 - want).abs() <= tol, "log_softmax[{i}] = {v}, want {want}");
    }
    assert!(ls.1.iter().all(|g| g.is_finite()));
    assert_close(&ls.2, &want_g, 1e-6, "softmax");
    // Ties at the max: the gradient is the softmax (1/2 each), not split by the max's rule.
    assert_eq!((g[0], g[1], g[2]), (0.5, 0.5, 0.0));
}

#[test]
fn xlogy_is_zero_at_x_zero_with_finite_gradients() {
    let x = t(&[0.0, 0.0, DENORMAL, 1e4, 2.0]);
    let y = t(&[0.0, 1e4, DENORMAL, 1e4, 0.5]);
    let (v, gx, gy) = debug::detect_anomaly(|| {
        let v = x.xlogy(&y).to_vec::<f32>();
        let gx = grad(|x: &Tensor| x.xlogy(&y).sum())(&x).to_vec::<f32>();
        let gy = grad(|y: &Tensor| x.xlogy(y).sum())(&y).to_vec::<f32>();
        (v, gx, gy)
    })
    .unwrap_or_else(|a| panic!("{a}"));
    let xs = [0.0f64, 0.0, DENORMAL as f64, 1e4, 2.0];
    let ys = [0.0f64, 1e4, DENORMAL as f64, 1e4, 0.5];
    let want_v: Vec<f64> =
        xs.iter().zip(&ys).map(|(&x, &y)| if x == 0.0 { 0.0 } else { x * y.ln() }).collect();
    let want_gx: Vec<f64> = xs.iter().zip(&ys).map(|(&x, &y)| if x == 0.0 { 0.0 } else { y.ln() }).collect();
    let want_gy: Vec<f64> = xs.iter().zip(&ys).map(|(&x, &y)| if x == 0.0 { 0.0 } else { x / y }).collect();
    assert_close(&v, &want_v, 1e-5, "xlogy");
    assert_close(&gx, &want_gx, 1e-5, "d xlogy / dx");
    assert_close(&gy, &want_gy, 1e-5, "d xlogy / dy");
}

#[test]
fn norm_has_subgradient_zero_at_zero() {
    for (xs, want) in [
        (vec![0.0f32, 0.0, 0.0], vec![0.0f64, 0.0, 0.0]),
        (vec![3e3, -4e3, 0.0], vec![0.6, -0.8, 0.0]),
        (vec![1e4, -1e4, 1e4], vec![1.0 / 3f64.sqrt(), -1.0 / 3f64.sqrt(), 1.0 / 3f64.sqrt()]),
        // The squares of denormals underflow to 0: the norm is 0 and so is the subgradient.
        (vec![DENORMAL, -DENORMAL, 0.0], vec![0.0, 0.0, 0.0]),
    ] {
        let x = t(&xs);
        let (g, h) = debug::detect_anomaly(|| {
            let g = grad(|x: &Tensor| x.norm())(&x).to_vec::<f32>();
            let h = grad(|x: &Tensor| grad(|x: &Tensor| x.norm())(x).sum())(&x).to_vec::<f32>();
            (g, h)
        })
        .unwrap_or_else(|a| panic!("{xs:?}: {a}"));
        assert_close(&g, &want, 1e-6, "grad norm");
        assert!(h.iter().all(|v| v.is_finite()), "{h:?}");
    }
}

/// log(x) where `mask`, else 0, written with the double where: the masked positions see 1.
fn masked_log(x: &Tensor, mask: &Tensor) -> Tensor {
    let x_safe = Tensor::select(mask, x, &Tensor::scalar_of(1.0, x.dtype()));
    Tensor::select(mask, &x_safe.log(), &Tensor::scalar_of(0.0, x.dtype()))
}

#[test]
fn double_where_keeps_masked_gradients_finite() {
    let x = t(&[0.0, -1e4, -DENORMAL, 1.0, 1e4]);
    let mask = x.gt_scalar(0.0);
    let g = debug::detect_anomaly(|| grad(|x: &Tensor| masked_log(x, &mask).sum())(&x))
        .unwrap_or_else(|a| panic!("{a}"))
        .to_vec::<f32>();
    assert_eq!(g[0], 0.0);
    assert_eq!(g[1], 0.0);
    assert_eq!(g[3], 1.0);
    assert!((g[4] - 1e-4).abs() < 1e-9);
    assert_eq!(g[2], 0.0, "a negative denormal is masked out");

    // The single where is what the pattern fixes: NaN in the gradient, reported by anomaly mode.
    let naive = |x: &Tensor| Tensor::select(&mask, &x.log(), &Tensor::scalar_of(0.0, x.dtype())).sum();
    let g = grad(naive)(&x).to_vec::<f32>();
    assert!(g[0].is_nan(), "the masked-out 0 gets 0 · (1/0) = NaN: {g:?}");
    let a = debug::detect_anomaly(|| grad(naive)(&x)).unwrap_err();
    assert_eq!(a.primitive, "log");
}

#[test]
fn softmax_and_log_softmax_derivatives_check_in_f64() {
    let x = Tensor::from_vec(vec![-3.0f64, -0.5, 0.3, 2.0, 7.0, 1.0], &[2, 3]);
    check_grads(|x: &Tensor| x.log_softmax(1), &x, 2, BOTH);
    check_grads(|x: &Tensor| x.softmax(0), &x, 2, BOTH);
    // Exact ties give exactly equal probabilities (exp(0) / n).
    let tie = Tensor::from_vec(vec![1e4f32, 1e4, 1e4, 1e4], &[1, 4]);
    assert_eq!(tie.softmax(1).to_vec::<f32>(), vec![0.25; 4]);
    assert_eq!(tie.log_softmax(1).to_vec::<f32>(), vec![-(4f32.ln()); 4]);
}
