//! Attributions (`adjoint_nn::explain`): completeness of integrated gradients (exact on a linear
//! model, within a stated tolerance on an MLP), zero attribution on an ignored feature, and
//! closed forms.

use adjoint_core::{DType, Tensor};
use adjoint_nn::explain::{
    gradient_x_input, gradients, integrated_gradients, smoothgrad, IgOptions, PathRule, Target,
};
use adjoint_nn::layers::{Linear, Module};
use adjoint_tensor::random::{self, Key};

fn randn(key: u64, shape: &[usize]) -> Tensor {
    Tensor::from_array(random::normal(&Key::new(key), shape, DType::F64))
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "element {i}: {x} vs {y}");
    }
}

#[test]
fn linear_model_completeness_is_exact_and_matches_the_closed_form() {
    let w = randn(1, &[5]);
    let f = |x: &Tensor| (x * &w).sum() + 0.7;
    let x = randn(2, &[4, 5]);
    let base = randn(3, &[5]);
    for rule in [PathRule::Trapezoid, PathRule::Midpoint] {
        let ig = integrated_gradients(&f, &x, Some(&base), Target::Scalar, &IgOptions { steps: 3, rule });
        // Closed form: w ⊙ (x − baseline), whatever the number of steps.
        let want = (&w * &(&x - &base)).to_vec::<f64>();
        close(&ig.attributions.to_vec::<f64>(), &want, 1e-12);
        assert!(ig.max_completeness_error() < 1e-12, "{rule:?}: {}", ig.max_completeness_error());
        ig.check_completeness(1e-12).unwrap();
    }
}

#[test]
fn mlp_completeness_within_tolerance_and_improves_with_steps() {
    let k = Key::new(7);
    let (k1, k2) = k.split2();
    let mlp = (Linear::new(6, 16, &k1), Linear::new(16, 1, &k2));
    let to64 = |t: Tensor| t.cast(DType::F64);
    let f = |x: &Tensor| {
        let h = mlp.0.forward(&x.cast(DType::F32).unsqueeze(0)).tanh();
        to64(mlp.1.forward(&h))
    };
    let x = randn(4, &[8, 6]);
    let coarse =
        integrated_gradients(&f, &x, None, Target::Scalar, &IgOptions { steps: 4, ..Default::default() });
    let fine = integrated_gradients(&f, &x, None, Target::Scalar, &IgOptions::default());
    // Stated tolerance: 64 trapezoid steps sum to f(x) − f(0) within 1e-3 (relative to
    // max(1, |Δf|)); the model runs in f32, so the floor is f32 rounding, not the rule.
    fine.check_completeness(1e-3).unwrap();
    assert!(
        fine.max_completeness_error() < coarse.max_completeness_error(),
        "{} vs {}",
        fine.max_completeness_error(),
        coarse.max_completeness_error()
    );
    // A deliberately too-tight tolerance is reported, naming the example.
    if coarse.max_completeness_error() > 1e-12 {
        let e = coarse.check_completeness(1e-15).unwrap_err();
        assert!(e.contains("example"), "{e}");
    }
}

#[test]
fn an_ignored_feature_gets_zero_attribution_from_every_method() {
    // f uses features 0 and 2 only (nonlinearly).
    let f = |x: &Tensor| {
        let a = x.narrow(0, 0, 1).sum();
        let c = x.narrow(0, 2, 1).sum();
        (&a * &c).tanh() + a.exp()
    };
    let x = randn(5, &[6, 3]);
    let ig = integrated_gradients(&f, &x, None, Target::Scalar, &IgOptions::default()).attributions;
    let gxi = gradient_x_input(&f, &x, Target::Scalar);
    let sg = smoothgrad(&f, &x, Target::Scalar, 0.3, 4, &Key::new(9));
    for (name, a) in [("ig", ig), ("gxi", gxi), ("smoothgrad", sg)] {
        let v = a.to_vec::<f64>();
        for (i, row) in v.chunks(3).enumerate() {
            assert_eq!(row[1], 0.0, "{name}: example {i}: {row:?}");
            assert!(row[0] != 0.0, "{name}: example {i} uses feature 0: {row:?}");
        }
    }
}

#[test]
fn integrated_gradients_of_an_exponential_match_the_closed_form() {
    // f(x) = exp(w·x), zero baseline: IG_i = w_i x_i / (w·x) · (exp(w·x) − 1).
    let w = Tensor::from_vec(vec![0.5f64, -1.0, 2.0], &[3]);
    let f = |x: &Tensor| (x * &w).sum().exp();
    let x = Tensor::from_vec(vec![0.3f64, 0.2, 0.4, -0.5, 0.1, 0.25], &[2, 3]);
    let ig = integrated_gradients(
        &f,
        &x,
        None,
        Target::Scalar,
        &IgOptions { steps: 256, rule: PathRule::Midpoint },
    );
    let (xv, wv) = (x.to_vec::<f64>(), w.to_vec::<f64>());
    let mut want = Vec::new();
    for row in xv.chunks(3) {
        let s: f64 = row.iter().zip(&wv).map(|(a, b)| a * b).sum();
        want.extend(row.iter().zip(&wv).map(|(a, b)| a * b / s * (s.exp() - 1.0)));
    }
    close(&ig.attributions.to_vec::<f64>(), &want, 1e-5);
    // Σ x² with a zero baseline: the integrand is linear in α, so the trapezoid rule is exact.
    let sq = |x: &Tensor| (x * x).sum();
    let ig = integrated_gradients(
        &sq,
        &x,
        None,
        Target::Scalar,
        &IgOptions { steps: 1, rule: PathRule::Trapezoid },
    );
    close(&ig.attributions.to_vec::<f64>(), &(&x * &x).to_vec::<f64>(), 1e-14);
}

#[test]
fn target_index_explains_one_output_and_batches_like_single_calls() {
    let m = randn(11, &[3, 4]);
    // Output [3]: m @ x; Target::Index(c) explains row c, whose gradient is m[c].
    let f = |x: &Tensor| m.matmul(&x.unsqueeze(1)).squeeze(1);
    let x = randn(12, &[5, 4]);
    for c in 0..3 {
        let g = gradients(&f, &x, Target::Index(c)).to_vec::<f64>();
        let row = m.narrow(0, c, 1).to_vec::<f64>();
        for ex in g.chunks(4) {
            close(ex, &row, 1e-14);
        }
    }
    let batched = gradient_x_input(&f, &x, Target::Index(1)).to_vec::<f64>();
    for i in 0..5 {
        let one = gradient_x_input(&f, &x.narrow(0, i, 1), Target::Index(1)).to_vec::<f64>();
        close(&batched[i * 4..i * 4 + 4], &one, 1e-14);
    }
}

#[test]
#[should_panic(expected = "Target::Scalar needs a one-element output")]
fn a_vector_output_without_a_target_index_is_misuse() {
    let f = |x: &Tensor| x * 2.0;
    gradients(&f, &randn(1, &[2, 3]), Target::Scalar);
}
