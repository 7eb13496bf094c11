//! The functional optimizers against the stateful ones step for step, and their derivatives
//! (through updates) against finite differences.

use adjoint_core::{grad, Params, Tensor};
use adjoint_nn::optim::functional::{adam, momentum, sgd, AdamState, MomentumState};
use adjoint_nn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

#[derive(Clone, Params)]
#[params(crate = adjoint_core)]
struct Model {
    w: Tensor,
    b: Tensor,
}

fn start() -> Model {
    Model { w: Tensor::from_vec(vec![0.3f64, -0.7, 1.1], &[3]), b: Tensor::scalar(0.2f64) }
}

/// A non-quadratic loss, so moments and steps differ from step to step.
fn loss(m: &Model) -> Tensor {
    let x = Tensor::from_vec(vec![1.0f64, -2.0, 0.5], &[3]);
    ((&m.w * &x).sum() + &m.b - 1.0).square() + m.w.square().square().sum() * 0.1 + m.b.tanh()
}

fn flat(m: &Model) -> Vec<f64> {
    m.leaves().iter().flat_map(|l| l.to_vec::<f64>()).collect()
}

fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}: {a:?} vs {b:?}");
    }
}

#[test]
fn trajectories_match_the_stateful_optimizers() {
    let lr = 0.05;
    for cfg in [
        AdamConfig { lr, ..Default::default() },
        AdamConfig { lr, weight_decay: 0.01, betas: (0.8, 0.99), ..Default::default() },
    ] {
        let (mut a, mut b) = (start(), start());
        let mut opt = Adam::new(&a, cfg);
        let mut st = AdamState::new(&b);
        for step in 0..25 {
            a = opt.step(&a, &grad(loss)(&a));
            (b, st) = adam(&b, &grad(loss)(&b), &st, &Tensor::scalar(lr), &cfg);
            close(&flat(&b), &flat(&a), 1e-12, &format!("adam {cfg:?} step {step}"));
        }
    }
    for cfg in [
        SgdConfig { lr, momentum: 0.9, ..Default::default() },
        SgdConfig { lr, momentum: 0.9, nesterov: true, weight_decay: 0.01, ..Default::default() },
        SgdConfig { lr, momentum: 0.5, dampening: 0.3, ..Default::default() },
    ] {
        let (mut a, mut b) = (start(), start());
        let mut opt = Sgd::new(&a, cfg);
        let mut st = MomentumState::new(&b);
        for step in 0..25 {
            a = opt.step(&a, &grad(loss)(&a));
            (b, st) = momentum(&b, &grad(loss)(&b), &st, &Tensor::scalar(lr), &cfg);
            close(&flat(&b), &flat(&a), 1e-12, &format!("momentum {cfg:?} step {step}"));
        }
    }
    let (mut a, mut b) = (start(), start());
    let mut opt = Sgd::new(&a, SgdConfig { lr, ..Default::default() });
    for step in 0..25 {
        a = opt.step(&a, &grad(loss)(&a));
        b = sgd(&b, &grad(loss)(&b), &Tensor::scalar(lr));
        close(&flat(&b), &flat(&a), 1e-12, &format!("sgd step {step}"));
    }
}

/// The loss after `k` updates of `update` from `m0`, as a function of the learning rate.
fn unrolled(k: usize, which: &str, lr: &Tensor, m0: &Model) -> Tensor {
    let mut m = m0.clone();
    let (mut sa, mut sm) = (AdamState::new(m0), MomentumState::new(m0));
    for _ in 0..k {
        let g = grad(loss)(&m);
        m = match which {
            "sgd" => sgd(&m, &g, lr),
            "momentum" => {
                let (n, s) = momentum(
                    &m,
                    &g,
                    &sm,
                    lr,
                    &SgdConfig { momentum: 0.9, nesterov: true, ..Default::default() },
                );
                sm = s;
                n
            }
            _ => {
                let (n, s) = adam(&m, &g, &sa, lr, &AdamConfig::default());
                sa = s;
                n
            }
        };
    }
    loss(&m)
}

#[test]
fn hypergradients_and_meta_gradients_match_finite_differences() {
    let h = 1e-6;
    for which in ["sgd", "momentum", "adam"] {
        // d loss(θ_k) / d lr, through k updates (second order: the updates contain gradients).
        let at = |lr: f64| unrolled(4, which, &Tensor::scalar(lr), &start()).item();
        let fd = (at(0.05 + h) - at(0.05 - h)) / (2.0 * h);
        let g = grad(|lr: &Tensor| unrolled(4, which, lr, &start()))(&Tensor::scalar(0.05f64)).item();
        close(&[g], &[fd], 1e-6, &format!("{which}: d loss / d lr"));
        // MAML-style: d loss(θ after 2 steps) / d θ₀.
        let g0 = grad(|m: &Model| unrolled(2, which, &Tensor::scalar(0.05f64), m))(&start());
        let x0 = flat(&start());
        for (i, gi) in flat(&g0).iter().enumerate() {
            let shifted = |d: f64| {
                let mut x = x0.clone();
                x[i] += d;
                let m = Model { w: Tensor::from_vec(x[..3].to_vec(), &[3]), b: Tensor::scalar(x[3]) };
                unrolled(2, which, &Tensor::scalar(0.05f64), &m).item()
            };
            let fd = (shifted(h) - shifted(-h)) / (2.0 * h);
            close(&[*gi], &[fd], 1e-6, &format!("{which}: d loss / d θ₀[{i}]"));
        }
    }
}
