//! Drivers: Jacobians (forward, reverse, coloured), Hessians and Hessian-vector products
//! against closed forms and against each other.

use adjoint_scalar::prelude::*;
use adjoint_scalar::{jacobian_coloured, jacobian_forward, jacobian_reverse, value_and_gradient_into};
use proptest::prelude::*;

struct Rosen;
impl ScalarFn for Rosen {
    fn eval<T: Real>(&self, x: &[T]) -> T {
        let mut s = T::zero();
        for i in (0..x.len()).step_by(2) {
            s += T::lit(100.0) * (x[i + 1] - x[i] * x[i]).powi(2) + (T::one() - x[i]).powi(2);
        }
        s
    }
}

/// Closed-form Hessian of the extended Rosenbrock function.
fn rosen_hessian(x: &[f64]) -> Matrix {
    let n = x.len();
    let mut h = Matrix::zeros(n, n);
    for i in (0..n).step_by(2) {
        h.data[i * n + i] = 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
        h.data[i * n + i + 1] = -400.0 * x[i];
        h.data[(i + 1) * n + i] = -400.0 * x[i];
        h.data[(i + 1) * n + i + 1] = 200.0;
    }
    h
}

/// `R^n -> R^m` with a known Jacobian: y_i = x_i * x_{i+1} (cyclic) and a sum of sines.
struct Ring(usize);
impl VectorFn for Ring {
    fn eval<T: Real>(&self, x: &[T]) -> Vec<T> {
        let n = x.len();
        let mut y: Vec<T> = (0..self.0.min(n)).map(|i| x[i] * x[(i + 1) % n]).collect();
        y.push(x.iter().map(|v| v.sin()).sum());
        y
    }
}

fn ring_jacobian(m: usize, x: &[f64]) -> Matrix {
    let n = x.len();
    let rows = m.min(n) + 1;
    let mut j = Matrix::zeros(rows, n);
    for i in 0..m.min(n) {
        j.data[i * n + i] += x[(i + 1) % n];
        j.data[i * n + (i + 1) % n] += x[i];
    }
    for (k, v) in x.iter().enumerate() {
        j.data[(rows - 1) * n + k] = v.cos();
    }
    j
}

fn assert_close(a: &Matrix, b: &Matrix, tol: f64) {
    assert_eq!((a.rows, a.cols), (b.rows, b.cols));
    for (k, (x, y)) in a.data.iter().zip(&b.data).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "entry {k}: {x} vs {y}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn jacobians_agree_with_closed_form(x in prop::collection::vec(-2.0f64..2.0, 1..20), m in 0usize..25) {
        let want = ring_jacobian(m, &x);
        assert_close(&jacobian_forward(&Ring(m), &x), &want, 1e-14);
        assert_close(&jacobian_reverse(&Ring(m), &x), &want, 1e-14);
        assert_close(&jacobian(&Ring(m), &x), &want, 1e-14);
    }

    #[test]
    fn rosenbrock_hessian_and_hvp(x in prop::collection::vec(-2.0f64..2.0, 1..8), v in prop::collection::vec(-1.0f64..1.0, 16)) {
        let x: Vec<f64> = x.iter().chain(x.iter()).copied().collect(); // even length
        let h = hessian(&Rosen, &x);
        let want = rosen_hessian(&x);
        assert_close(&h, &want, 1e-13);
        let v = &v[..x.len()];
        let hv = hessian_vector_product(&Rosen, &x, v);
        for i in 0..x.len() {
            let r: f64 = (0..x.len()).map(|j| want[(i, j)] * v[j]).sum();
            prop_assert!((hv[i] - r).abs() <= 1e-12 * (1.0 + r.abs()));
        }
    }
}

#[test]
fn coloured_jacobian_of_a_banded_function() {
    // y_i = x_{i-1} * x_i + x_i * x_{i+1}: tridiagonal, 3 colours (j mod 3) suffice.
    struct Band;
    impl VectorFn for Band {
        fn eval<T: Real>(&self, x: &[T]) -> Vec<T> {
            let n = x.len();
            (0..n)
                .map(|i| {
                    let l = if i > 0 { x[i - 1] } else { T::zero() };
                    let r = if i + 1 < n { x[i + 1] } else { T::zero() };
                    l * x[i] + x[i] * r
                })
                .collect()
        }
    }
    let x: Vec<f64> = (0..50).map(|i| (i as f64 * 0.37).sin()).collect();
    let colours: Vec<usize> = (0..50).map(|j| j % 3).collect();
    let mut pattern = Vec::new();
    for i in 0..50usize {
        for j in i.saturating_sub(1)..(i + 2).min(50) {
            pattern.push((i, j));
        }
    }
    let sparse = jacobian_coloured(&Band, &x, &colours, &pattern);
    assert_close(&sparse, &jacobian_reverse(&Band, &x), 0.0);
}

#[test]
fn gradient_drivers_agree() {
    let x = [0.3, -1.2, 2.0, 0.7];
    let f = |v: &[Var]| Rosen.eval(v);
    let (val, g) = value_and_gradient(f, &x);
    assert_eq!(val, Rosen.eval(&x));
    let mut out = [0.0; 4];
    assert_eq!(value_and_gradient_into(f, &x, &mut out), val);
    assert_eq!(out.to_vec(), g);
    let fwd = jacobian_forward(&Wrap, &x);
    assert_close(&Matrix { rows: 1, cols: 4, data: g.clone() }, &fwd, 1e-14);
    let want = [
        -400.0 * 0.3 * (-1.2 - 0.09) - 2.0 * 0.7,
        200.0 * (-1.2 - 0.09),
        -400.0 * 2.0 * (0.7 - 4.0) - 2.0 * (1.0 - 2.0),
        200.0 * (0.7 - 4.0),
    ];
    for (a, b) in g.iter().zip(want) {
        assert!((a - b).abs() < 1e-12);
    }
}

struct Wrap;
impl VectorFn for Wrap {
    fn eval<T: Real>(&self, x: &[T]) -> Vec<T> {
        vec![Rosen.eval(x)]
    }
}

#[test]
#[should_panic(expected = "hessian_vector_product: x has 2 entries, v has 3")]
fn hvp_length_mismatch_panics_with_shapes() {
    hessian_vector_product(&Rosen, &[1.0, 1.0], &[1.0, 0.0, 0.0]);
}

#[test]
fn empty_inputs() {
    assert_eq!(gradient(|_: &[Var]| Var::constant(1.0), &[]), Vec::<f64>::new());
    assert_eq!(hessian(&Rosen, &[]).data.len(), 0);
    assert_eq!(jacobian_forward(&Ring(0), &[]).cols, 0);
}
