//! ADBench's GMM objective, written once over `Real`: value against ADBench's golden number,
//! gradient in reverse mode against forward mode and against finite differences.

#[path = "../benches/common/gmm.rs"]
mod gmm;

use adjoint_scalar::jacobian_forward;
use adjoint_scalar::prelude::*;
use gmm::{data_path, gmm_objective, gmm_objective_binary, read_gmm, GmmInput};

struct Objective<'a>(&'a GmmInput);
impl VectorFn for Objective<'_> {
    fn eval<T: Real>(&self, p: &[T]) -> Vec<T> {
        vec![gmm_objective(self.0, p)]
    }
}

#[test]
fn golden_value_on_adbench_unit_test_input() {
    let inp = read_gmm(&data_path("test.txt")).unwrap();
    let v = gmm_objective(&inp, &inp.params());
    // ADBench test/cpp/modules/common/GmmTests.cpp (SPEC.md §5).
    assert!((v - 8.073_804_080_049_758).abs() < 1e-8, "objective {v}");
}

#[test]
fn gradient_on_test_input_matches_forward_and_finite_differences() {
    let inp = read_gmm(&data_path("test.txt")).unwrap();
    let p = inp.params();
    let (v, g) = value_and_gradient(|x: &[Var]| gmm_objective(&inp, x), &p);
    assert_eq!(v, gmm_objective(&inp, &p));
    let fwd = jacobian_forward(&Objective(&inp), &p);
    for i in 0..p.len() {
        assert!(
            (g[i] - fwd.data[i]).abs() <= 1e-12 * (1.0 + g[i].abs()),
            "entry {i}: {} vs {}",
            g[i],
            fwd.data[i]
        );
        let h = 1e-6;
        let (mut a, mut b) = (p.clone(), p.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (gmm_objective(&inp, &a) - gmm_objective(&inp, &b)) / (2.0 * h);
        assert!((g[i] - fd).abs() <= 1e-6 * (1.0 + fd.abs()), "entry {i}: {} vs fd {fd}", g[i]);
    }
}

#[test]
fn gradient_on_1k_d10_k5_spot_checks() {
    let inp = read_gmm(&data_path("1k/gmm_d10_K5.txt")).unwrap();
    assert_eq!((inp.d, inp.k, inp.n), (10, 5, 1000));
    let p = inp.params();
    assert_eq!(p.len(), 5 * 11 * 12 / 2);
    let g = gradient(|x: &[Var]| gmm_objective(&inp, x), &p);
    for i in [0, 4, 5, 30, 54, 55, 60, 70, 200, p.len() - 1] {
        let h = 1e-5;
        let (mut a, mut b) = (p.clone(), p.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (gmm_objective(&inp, &a) - gmm_objective(&inp, &b)) / (2.0 * h);
        assert!((g[i] - fd).abs() <= 1e-5 * (1.0 + fd.abs()), "entry {i}: {} vs fd {fd}", g[i]);
    }
}

/// The objective written with the fused operations (one n-ary node per dot product, squared
/// norm, log-sum-exp) against the one-binary-operation-at-a-time version: values and gradients.
#[test]
fn fused_objective_matches_the_binary_one() {
    for file in ["test.txt", "1k/gmm_d10_K5.txt"] {
        let inp = read_gmm(&data_path(file)).unwrap();
        let p = inp.params();
        let (v, g) = value_and_gradient(|x: &[Var]| gmm_objective(&inp, x), &p);
        let (vb, gb) = value_and_gradient(|x: &[Var]| gmm_objective_binary(&inp, x), &p);
        assert!((v - vb).abs() <= 1e-12 * vb.abs(), "{file}: {v} vs {vb}");
        assert_eq!(v, gmm_objective(&inp, &p), "{file}: Var and f64 values differ");
        let scale = gb.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        for (i, (a, b)) in g.iter().zip(&gb).enumerate() {
            assert!((a - b).abs() <= 1e-11 * scale, "{file} entry {i}: {a} vs {b}");
        }
    }
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let e = read_gmm(&data_path("no_such_file.txt")).err().unwrap();
    assert!(e.contains("no_such_file.txt"), "{e}");
}
