//! Every loss against PyTorch (f64 fixture `fixtures/losses.json`), every reduction, and
//! through `check_grads`; plus the initialisers' statistics.

#[path = "fixtures/fixture.rs"]
mod fixture;

use adjoint_core::testing::{check_grads, BOTH};
use adjoint_core::{grad, Tensor};
use adjoint_nn::init::{self, FanMode, Nonlinearity};
use adjoint_nn::loss::*;
use adjoint_tensor::random::{normal, Key};
use adjoint_tensor::DType;
use fixture::{assert_close, get, load, ti};

const TOL: f64 = 1e-12;

fn reductions() -> [(&'static str, Reduction); 3] {
    [("mean", Reduction::Mean), ("sum", Reduction::Sum), ("none", Reduction::None)]
}

#[test]
fn regression_losses_match_pytorch() {
    let fx = load("losses");
    let (x, y) = (get(&fx, "inputs", "x"), get(&fx, "inputs", "y"));
    for (r, red) in reductions() {
        let out = |n: &str| get(&fx, "outputs", &format!("{n}_{r}"));
        assert_close(&mse(&x, &y, red), &out("mse"), TOL);
        assert_close(&l1(&x, &y, red), &out("l1"), TOL);
        assert_close(&huber(&x, &y, 0.7, red), &out("huber"), TOL);
    }
    assert_close(&smooth_l1(&x, &y, 0.5, Reduction::Mean), &get(&fx, "outputs", "smooth_l1_mean"), TOL);
}

#[test]
fn classification_losses_match_pytorch() {
    let fx = load("losses");
    let logits = get(&fx, "inputs", "logits");
    let idx = ti(&fx["inputs"]["idx"]);
    let idx_ign = ti(&fx["inputs"]["idx_ign"]);
    let probs = get(&fx, "inputs", "probs");
    let (lsp, isp) = (get(&fx, "inputs", "logits_sp"), ti(&fx["inputs"]["idx_sp"]));
    let (bl, by, pw) = (get(&fx, "inputs", "bl"), get(&fx, "inputs", "by"), get(&fx, "inputs", "pw"));
    for (r, red) in reductions() {
        let out = |n: &str| get(&fx, "outputs", &format!("{n}_{r}"));
        let ce = CrossEntropy::reduction(red);
        assert_close(&cross_entropy(&logits, &idx, &ce), &out("ce"), TOL);
        let ign = CrossEntropy { ignore_index: Some(-100), ..ce.clone() };
        assert_close(&cross_entropy(&logits, &idx_ign, &ign), &out("ce_ignore"), TOL);
        let sm = CrossEntropy { label_smoothing: 0.2, ..ign.clone() };
        assert_close(&cross_entropy(&logits, &idx_ign, &sm), &out("ce_smooth_ignore"), TOL);
        let smp = CrossEntropy { label_smoothing: 0.1, ..ce.clone() };
        assert_close(&cross_entropy(&logits, &probs, &smp), &out("ce_probs_smooth"), TOL);
        assert_close(&cross_entropy(&lsp, &isp, &ce), &out("ce_spatial"), TOL);
        assert_close(&binary_cross_entropy_with_logits(&bl, &by, None, red), &out("bce"), TOL);
        assert_close(&binary_cross_entropy_with_logits(&bl, &by, Some(&pw), red), &out("bce_pw"), TOL);
        let n = Nll { reduction: red, ignore_index: Some(-100), weight: None };
        assert_close(&nll(&logits.log_softmax(1), &idx_ign, &n), &out("nll_ignore"), TOL);
        let cw = Some(get(&fx, "inputs", "cw"));
        let n = Nll { weight: cw.clone(), ..n };
        assert_close(&nll(&logits.log_softmax(1), &idx_ign, &n), &out("nll_weight"), TOL);
        let o = CrossEntropy { weight: cw.clone(), ..sm.clone() };
        assert_close(&cross_entropy(&logits, &idx_ign, &o), &out("ce_weight_smooth_ignore"), TOL);
        let o = CrossEntropy { weight: cw.clone(), ..smp.clone() };
        assert_close(&cross_entropy(&logits, &probs, &o), &out("ce_weight_probs"), TOL);
    }
}

#[test]
fn kl_div_matches_pytorch() {
    let fx = load("losses");
    let (logp, q, logt) = (get(&fx, "inputs", "logp"), get(&fx, "inputs", "q"), get(&fx, "inputs", "logt"));
    for (r, red) in reductions() {
        let out = |n: &str| get(&fx, "outputs", &format!("{n}_{r}"));
        assert_close(&kl_div(&logp, &q, false, red), &out("kl"), TOL);
        assert_close(&kl_div(&logp, &logt, true, red), &out("kl_logt"), TOL);
    }
    assert_close(&kl_div(&logp, &q, false, Reduction::BatchMean), &get(&fx, "outputs", "kl_batchmean"), TOL);
}

#[test]
fn losses_pass_check_grads() {
    let fx = load("losses");
    let (x, y) = (get(&fx, "inputs", "x"), get(&fx, "inputs", "y"));
    let yy = y.clone();
    check_grads(move |x: &Tensor| mse(x, &yy, Reduction::Mean), &x, 2, BOTH);
    let yy = y.clone();
    check_grads(move |x: &Tensor| l1(x, &yy, Reduction::Sum), &x, 2, BOTH);
    let yy = y.clone();
    check_grads(move |x: &Tensor| huber(x, &yy, 0.7, Reduction::None), &x, 2, BOTH);
    let logits = get(&fx, "inputs", "logits");
    let idx_ign = ti(&fx["inputs"]["idx_ign"]);
    let opts = CrossEntropy { ignore_index: Some(-100), label_smoothing: 0.2, ..Default::default() };
    let t = idx_ign.clone();
    check_grads(move |z: &Tensor| cross_entropy(z, &t, &opts), &logits, 2, BOTH);
    let cw = get(&fx, "inputs", "cw");
    let opts = CrossEntropy {
        label_smoothing: 0.3,
        weight: Some(cw),
        ignore_index: Some(-100),
        ..Default::default()
    };
    let t = idx_ign.clone();
    check_grads(move |z: &Tensor| cross_entropy(z, &t, &opts), &logits, 2, BOTH);
    let probs = get(&fx, "inputs", "probs");
    let opts = CrossEntropy { label_smoothing: 0.1, ..Default::default() };
    check_grads(move |z: &Tensor| cross_entropy(z, &probs, &opts), &logits, 2, BOTH);
    let (lsp, isp) = (get(&fx, "inputs", "logits_sp"), ti(&fx["inputs"]["idx_sp"]));
    check_grads(move |z: &Tensor| cross_entropy(z, &isp, &CrossEntropy::default()), &lsp, 2, BOTH);
    let t = idx_ign.clone();
    let n = Nll { reduction: Reduction::Sum, ignore_index: Some(-100), weight: None };
    check_grads(move |z: &Tensor| nll(z, &t, &n), &logits, 2, BOTH);
    let (bl, by, pw) = (get(&fx, "inputs", "bl"), get(&fx, "inputs", "by"), get(&fx, "inputs", "pw"));
    check_grads(
        move |(z, w): &(Tensor, Tensor)| binary_cross_entropy_with_logits(z, &by, Some(w), Reduction::Mean),
        &(bl, pw),
        2,
        BOTH,
    );
    let (logp, q) = (get(&fx, "inputs", "logp"), get(&fx, "inputs", "q"));
    // q holds an exact zero: the derivative in q there is -inf mathematically, so differentiate
    // in the input only, and in a strictly positive target separately.
    let qq = q.clone();
    check_grads(move |p: &Tensor| kl_div(p, &qq, false, Reduction::BatchMean), &logp, 2, BOTH);
    let qpos = q + 0.05;
    let lp = logp.clone();
    check_grads(move |q: &Tensor| kl_div(&lp, q, false, Reduction::Sum), &qpos, 2, BOTH);
    let logt = get(&fx, "inputs", "logt");
    check_grads(|(p, t): &(Tensor, Tensor)| kl_div(p, t, true, Reduction::Mean), &(logp, logt), 2, BOTH);
}

#[test]
fn stable_for_extreme_logits() {
    let logits = Tensor::from_vec(vec![1e4f64, -1e4, 0.0, 3e3, 3e3, -3e3], &[2, 3]);
    let t = Tensor::from_vec(vec![1i64, 2], &[2]);
    let l = cross_entropy(&logits, &t, &CrossEntropy::reduction(Reduction::None)).to_vec::<f64>();
    assert_eq!(l[0], 2e4);
    assert!((l[1] - (6e3 + 2f64.ln())).abs() < 1e-9);
    let g = grad(|z: &Tensor| cross_entropy(z, &t, &CrossEntropy::default()))(&logits).to_vec::<f64>();
    assert!(g.iter().all(|v| v.is_finite()));
    let z = Tensor::from_vec(vec![1e4f32, -1e4, 1e4, -1e4], &[4]);
    let y = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], &[4]);
    let l = binary_cross_entropy_with_logits(&z, &y, None, Reduction::None).to_vec::<f32>();
    assert_eq!(l, vec![0.0, 0.0, 1e4, 1e4]);
    // kl_div with a zero target probability: the term is 0, not NaN.
    let p = Tensor::from_vec(vec![-1.0f64, -0.5], &[1, 2]);
    let q = Tensor::from_vec(vec![0.0f64, 1.0], &[1, 2]);
    assert!((kl_div(&p, &q, false, Reduction::Sum).item() - 0.5).abs() < 1e-15);
}

#[test]
fn ignored_targets_get_no_gradient() {
    let logits = Tensor::from_array(normal(&Key::new(1), &[3, 4], DType::F64));
    let t = Tensor::from_vec(vec![2i64, -1, 0], &[3]);
    let opts = CrossEntropy { ignore_index: Some(-1), label_smoothing: 0.1, ..Default::default() };
    let g = grad(|z: &Tensor| cross_entropy(z, &t, &opts))(&logits).to_vec::<f64>();
    assert!(g[4..8].iter().all(|v| *v == 0.0));
    assert!(g[0..4].iter().any(|v| *v != 0.0));
}

#[test]
fn bad_targets_panic_with_a_message() {
    let logits = Tensor::zeros(&[2, 3]);
    let msg = |r: std::thread::Result<Tensor>| *r.unwrap_err().downcast::<String>().unwrap();
    let m = msg(std::panic::catch_unwind(|| {
        cross_entropy(&logits, &Tensor::from_vec(vec![0i64, 3], &[2]), &CrossEntropy::default())
    }));
    assert!(m.contains("target class 3") && m.contains("3 classes"), "{m}");
    let m = msg(std::panic::catch_unwind(|| {
        cross_entropy(&logits, &Tensor::from_vec(vec![0i64, 1, 2], &[3]), &CrossEntropy::default())
    }));
    assert!(m.contains("[2]") && m.contains("[3]"), "{m}");
    let m = msg(std::panic::catch_unwind(|| mse(&logits, &Tensor::zeros(&[3, 2]), Reduction::Mean)));
    assert!(m.contains("mse") && m.contains("[2, 3]"), "{m}");
}

#[test]
fn initialisers_have_the_right_statistics() {
    let k = Key::new(5);
    let shape = [200, 100, 3];
    let (fi, fo) = init::fans(&shape);
    assert_eq!((fi, fo), (300, 600));
    let stats = |t: &Tensor| {
        let v = t.to_vec::<f64>();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let s = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
        let max = v.iter().fold(0f64, |a, x| a.max(x.abs()));
        (m, s, max)
    };
    let close = |a: f64, b: f64| (a / b - 1.0).abs() < 0.03;
    let xu = init::xavier_uniform(&k, &shape, 2.0, DType::F64);
    let (m, s, max) = stats(&xu);
    let a = 2.0 * (6.0 / 900.0f64).sqrt();
    assert!(m.abs() < 0.01 && close(s, a / 3f64.sqrt()) && max <= a);
    let (_, s, _) = stats(&init::xavier_normal(&k, &shape, 1.0, DType::F64));
    assert!(close(s, (2.0 / 900.0f64).sqrt()));
    let ku = init::kaiming_uniform(&k, &shape, FanMode::FanOut, Nonlinearity::Relu, DType::F64);
    let (_, s, max) = stats(&ku);
    let b = 2f64.sqrt() * (3.0 / 600.0f64).sqrt();
    assert!(close(s, b / 3f64.sqrt()) && max <= b);
    let kn = init::kaiming_normal(&k, &shape, FanMode::FanIn, Nonlinearity::LeakyRelu(0.2), DType::F32);
    assert_eq!(kn.dtype(), DType::F32);
    let (_, s, _) = stats(&kn);
    assert!(close(s, (2.0 / 1.04f64).sqrt() / 300f64.sqrt()));
    // orthogonal: rows orthonormal when rows < cols, columns when rows > cols.
    for shape in [[3usize, 2, 4], [10, 3, 1]] {
        let q = init::orthogonal(&k, &shape, 1.5, DType::F64);
        let m = q.reshape(&[shape[0], shape[1] * shape[2]]);
        let g = if shape[0] < shape[1] * shape[2] { m.matmul(&m.t()) } else { m.t().matmul(&m) };
        let n = g.shape()[0];
        let gv = g.to_vec::<f64>();
        for i in 0..n {
            for j in 0..n {
                let want = if i == j { 2.25 } else { 0.0 };
                assert!((gv[i * n + j] - want).abs() < 1e-12, "{shape:?} ({i},{j}) {}", gv[i * n + j]);
            }
        }
    }
    assert_eq!(init::calculate_gain(Nonlinearity::LeakyRelu(5f64.sqrt())), (1.0f64 / 3.0).sqrt());
}
