//! Optimizers and schedules against PyTorch (fixtures from `tests/fixtures/gen_optim.py`, in
//! `f64`), L-BFGS on Rosenbrock functions, clipping, accumulation and parameter groups.

use adjoint_core::{grad, value_and_grad, Params, Tensor};
use adjoint_nn::optim::{
    clip_grad_norm, clip_grad_value, global_norm, Adagrad, AdagradConfig, Adam, AdamConfig, AdamW,
    AdamWConfig, GradAccumulator, Lbfgs, LbfgsConfig, LeafOptions, Optimizer, ParamGroups, RmsProp,
    RmsPropConfig, Sgd, SgdConfig,
};
use adjoint_nn::schedule::{
    Anneal, ExponentialLr, MultiStepLr, OneCycle, PlateauConfig, PlateauMode, ReduceOnPlateau, Schedule,
    StepLr, WarmupCosine,
};
use serde_json::Value;

const TOL: f64 = 1e-6;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

type Wb = (Tensor, Tensor);

struct Problem {
    x: Tensor,
    y: Tensor,
    start: Wb,
}

fn problem(fx: &Value) -> Problem {
    Problem {
        x: Tensor::from_vec(floats(&fx["x"]), &[6, 4]),
        y: Tensor::from_vec(floats(&fx["y"]), &[6, 3]),
        start: (Tensor::from_vec(floats(&fx["w0"]), &[3, 4]), Tensor::from_vec(floats(&fx["b0"]), &[3])),
    }
}

/// `mean((tanh(x wᵀ + b) - y)²)`, as in the fixture script.
fn loss(p: &Wb, x: &Tensor, y: &Tensor) -> Tensor {
    ((x.matmul(&p.0.t()) + &p.1).tanh() - y).square().mean()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Run `opt` for as many steps as the fixture trajectory has and compare every step.
fn check_trajectory<O: Optimizer>(name: &str, make: impl FnOnce(&Wb) -> O) {
    let fx = fixture("optim");
    let pr = problem(&fx);
    let traj = fx["trajectories"][name].as_array().unwrap_or_else(|| panic!("no trajectory {name}"));
    assert_eq!(traj.len(), 20);
    let mut p = pr.start.clone();
    let mut opt = make(&p);
    for (k, want) in traj.iter().enumerate() {
        let g = grad(|p: &Wb| loss(p, &pr.x, &pr.y))(&p);
        p = opt.step(&p, &g);
        let dw = max_diff(&p.0.to_vec::<f64>(), &floats(&want["w"]));
        let db = max_diff(&p.1.to_vec::<f64>(), &floats(&want["b"]));
        assert!(dw < TOL && db < TOL, "{name}: step {}: |Δw| = {dw:e}, |Δb| = {db:e}", k + 1);
    }
    // The trajectory must actually move (a no-op optimizer cannot pass).
    assert!(max_diff(&p.0.to_vec::<f64>(), &pr.start.0.to_vec::<f64>()) > 1e-3, "{name} did not move");
}

#[test]
fn sgd_variants_match_pytorch() {
    let cfg = |lr, momentum, dampening, nesterov, weight_decay, maximize| SgdConfig {
        lr,
        momentum,
        dampening,
        nesterov,
        weight_decay,
        maximize,
    };
    check_trajectory("sgd", |p| Sgd::new(p, cfg(0.1, 0.0, 0.0, false, 0.0, false)));
    check_trajectory("sgd_momentum", |p| Sgd::new(p, cfg(0.1, 0.9, 0.0, false, 0.0, false)));
    check_trajectory("sgd_dampening_wd", |p| Sgd::new(p, cfg(0.1, 0.8, 0.3, false, 0.05, false)));
    check_trajectory("sgd_nesterov", |p| Sgd::new(p, cfg(0.1, 0.9, 0.0, true, 0.01, false)));
    check_trajectory("sgd_maximize", |p| Sgd::new(p, cfg(0.05, 0.5, 0.0, false, 0.0, true)));
}

#[test]
fn adam_and_adamw_match_pytorch() {
    check_trajectory("adam", |p| Adam::new(p, AdamConfig { lr: 0.05, ..Default::default() }));
    check_trajectory("adam_wd_amsgrad", |p| {
        Adam::new(
            p,
            AdamConfig {
                lr: 0.05,
                betas: (0.8, 0.99),
                weight_decay: 0.1,
                amsgrad: true,
                ..Default::default()
            },
        )
    });
    check_trajectory("adam_beta1_low", |p| {
        Adam::new(p, AdamConfig { lr: 0.05, betas: (0.3, 0.9), eps: 1e-6, ..Default::default() })
    });
    check_trajectory("adamw", |p| {
        AdamW::new(p, AdamWConfig { lr: 0.05, weight_decay: 0.1, ..Default::default() })
    });
    check_trajectory("adamw_amsgrad", |p| {
        AdamW::new(p, AdamWConfig { lr: 0.05, weight_decay: 0.3, amsgrad: true, ..Default::default() })
    });
}

#[test]
fn rmsprop_variants_match_pytorch() {
    check_trajectory("rmsprop", |p| RmsProp::new(p, RmsPropConfig { lr: 0.01, ..Default::default() }));
    check_trajectory("rmsprop_centered_momentum", |p| {
        RmsProp::new(
            p,
            RmsPropConfig {
                lr: 0.01,
                alpha: 0.9,
                momentum: 0.7,
                centered: true,
                weight_decay: 0.02,
                ..Default::default()
            },
        )
    });
    check_trajectory("rmsprop_momentum", |p| {
        RmsProp::new(p, RmsPropConfig { lr: 0.01, momentum: 0.5, ..Default::default() })
    });
    check_trajectory("rmsprop_centered", |p| {
        RmsProp::new(p, RmsPropConfig { lr: 0.01, centered: true, ..Default::default() })
    });
}

#[test]
fn adagrad_variants_match_pytorch() {
    check_trajectory("adagrad", |p| Adagrad::new(p, AdagradConfig { lr: 0.1, ..Default::default() }));
    check_trajectory("adagrad_decay_wd", |p| {
        Adagrad::new(
            p,
            AdagradConfig {
                lr: 0.1,
                lr_decay: 0.05,
                weight_decay: 0.02,
                initial_accumulator_value: 0.1,
                eps: 1e-8,
                ..Default::default()
            },
        )
    });
}

#[test]
fn parameter_groups_match_pytorch_param_groups() {
    // Leaf "1" is the bias: no weight decay and its own learning rate, as in the fixture's
    // PyTorch param groups.
    let bias_opts = |lr_scale| {
        move |name: &str| {
            if name == "1" {
                LeafOptions { lr_scale, weight_decay: Some(0.0), ..Default::default() }
            } else {
                LeafOptions::default()
            }
        }
    };
    check_trajectory("adamw_groups", |p| {
        AdamW::new(p, AdamWConfig { lr: 0.05, weight_decay: 0.1, ..Default::default() })
            .with_groups(ParamGroups::by_name(p, bias_opts(2.0)))
    });
    check_trajectory("sgd_groups", |p| {
        Sgd::new(p, SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 0.1, ..Default::default() })
            .with_groups(ParamGroups::by_name(p, bias_opts(2.0)))
    });
}

#[test]
fn weight_decay_mask_and_freezing_by_name() {
    #[derive(Clone, Params)]
    #[params(crate = adjoint_core)]
    struct Layer {
        weight: Tensor,
        bias: Tensor,
    }
    let net = vec![
        Layer { weight: Tensor::ones(&[2, 2]), bias: Tensor::ones(&[2]) },
        Layer { weight: Tensor::ones(&[2]), bias: Tensor::ones(&[1]) },
    ];
    let zero = adjoint_core::params::zeros_like(&net);
    // With zero gradients only decoupled weight decay moves a leaf.
    let groups = ParamGroups::weight_decay_mask(&net, |n| !n.ends_with("bias"));
    let mut opt = AdamW::new(&net, AdamWConfig { lr: 0.1, weight_decay: 0.5, ..Default::default() })
        .with_groups(groups);
    let out = opt.step(&net, &zero);
    assert_eq!(out[0].weight.to_vec::<f32>(), vec![0.95; 4]);
    assert_eq!(out[1].weight.to_vec::<f32>(), vec![0.95; 2]);
    assert_eq!(out[0].bias.to_vec::<f32>(), vec![1.0; 2]);
    assert_eq!(out[1].bias.to_vec::<f32>(), vec![1.0]);
    assert_eq!(out[0].weight.dtype(), adjoint_core::DType::F32);

    let ones = net.map_tensors(&mut |t| t.ones_like());
    let mut opt = Sgd::new(&net, SgdConfig { lr: 0.5, ..Default::default() })
        .with_groups(ParamGroups::freeze(&net, |n| n.starts_with("0.")));
    let out = opt.step(&net, &ones);
    assert_eq!(out[0].weight.to_vec::<f32>(), vec![1.0; 4]);
    assert_eq!(out[1].weight.to_vec::<f32>(), vec![0.5; 2]);
}

#[test]
#[should_panic(expected = "Adam::step: leaf 1 (`1`) has shape [3] but its gradient has shape [2]")]
fn mismatched_gradient_is_a_caller_bug_with_the_leaf_name() {
    let p = (Tensor::zeros(&[2]), Tensor::zeros(&[3]));
    let mut opt = Adam::new(&p, AdamConfig::default());
    let _ = opt.step(&p, &(Tensor::zeros(&[2]), Tensor::zeros(&[2])));
}

#[test]
fn f32_updates_follow_f64_closely_and_reuse_state() {
    let fx = fixture("optim");
    let pr = problem(&fx);
    let to32 = |p: &Wb| p.map_tensors(&mut |t| t.cast(adjoint_core::DType::F32));
    let (x32, y32) = (pr.x.cast(adjoint_core::DType::F32), pr.y.cast(adjoint_core::DType::F32));
    let mut p = to32(&pr.start);
    let mut opt = Adam::new(&p, AdamConfig { lr: 0.05, ..Default::default() });
    for _ in 0..20 {
        let g = grad(|p: &Wb| loss(p, &x32, &y32))(&p);
        p = opt.step(&p, &g);
    }
    assert_eq!(p.0.dtype(), adjoint_core::DType::F32);
    assert_eq!(opt.exp_avg[0].dtype(), adjoint_core::DType::F32);
    let want = floats(&fx["trajectories"]["adam"][19]["w"]);
    let d = max_diff(&p.0.to_vec::<f64>(), &want);
    assert!(d < 1e-4, "f32 Adam drifted {d:e} from the f64 reference");
}

#[test]
fn large_leaves_take_the_parallel_path_and_agree_with_small_ones() {
    // 100k elements: chunked across rayon tasks; the same values in small leaves run serially.
    let n = 100_000;
    let vals: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin()).collect();
    let grads: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.11).cos()).collect();
    let big = Tensor::from_vec(vals.clone(), &[n]);
    let gbig = Tensor::from_vec(grads.clone(), &[n]);
    let small: Vec<Tensor> = vals.chunks(1000).map(|c| Tensor::from_slice(c, &[c.len()])).collect();
    let gsmall: Vec<Tensor> = grads.chunks(1000).map(|c| Tensor::from_slice(c, &[c.len()])).collect();
    let cfg = RmsPropConfig { lr: 0.01, momentum: 0.9, centered: true, ..Default::default() };
    let (mut ob, mut os) = (RmsProp::new(&big, cfg), RmsProp::new(&small, cfg));
    let (mut b, mut s) = (big, small);
    for _ in 0..3 {
        b = ob.step(&b, &gbig);
        s = os.step(&s, &gsmall);
    }
    let joined: Vec<f64> = s.iter().flat_map(|t| t.to_vec::<f64>()).collect();
    assert_eq!(b.to_vec::<f64>(), joined);
    assert_ne!(b.to_vec::<f64>(), vals);
}

fn lbfgs_closure<'a>(pr: &'a Problem) -> impl FnMut(&Wb) -> (f64, Wb) + 'a {
    move |p: &Wb| {
        // The fixture's L-BFGS objective adds a ridge term (see gen_optim.py).
        let ridged = |p: &Wb| loss(p, &pr.x, &pr.y) + (p.0.square().sum() + p.1.square().sum()) * 0.05;
        let (l, g) = value_and_grad(ridged)(p);
        (l.item(), g)
    }
}

#[test]
fn lbfgs_matches_pytorch_fixed_step_and_strong_wolfe() {
    let fx = fixture("optim");
    let pr = problem(&fx);
    for (name, cfg) in [
        ("fixed", LbfgsConfig { lr: 0.5, max_iter: 3, history_size: 4, ..Default::default() }),
        (
            "strong_wolfe",
            LbfgsConfig {
                lr: 1.0,
                max_iter: 3,
                max_eval: Some(12),
                history_size: 5,
                line_search: true,
                ..Default::default()
            },
        ),
    ] {
        let traj = fx["lbfgs"][name].as_array().expect("lbfgs trajectory");
        let mut p = pr.start.clone();
        let mut opt = Lbfgs::new(&p, cfg);
        for (k, want) in traj.iter().enumerate() {
            let r = opt.step(&p, lbfgs_closure(&pr));
            p = r.params;
            let dw = max_diff(&p.0.to_vec::<f64>(), &floats(&want["w"]));
            let db = max_diff(&p.1.to_vec::<f64>(), &floats(&want["b"]));
            let dl = (r.loss - want["loss"].as_f64().unwrap()).abs();
            assert!(dw < TOL && db < TOL && dl < TOL, "L-BFGS {name}: step {}: {dw:e} {db:e} {dl:e}", k + 1);
        }
    }
}

#[test]
fn lbfgs_matches_pytorch_on_rosenbrock_including_evaluation_counts() {
    // Rosenbrock's curved valley drives the strong-Wolfe search through its zoom phase.
    let fx = fixture("optim");
    let traj = fx["lbfgs"]["rosenbrock"].as_array().expect("rosenbrock trajectory");
    let mut z = Tensor::from_vec(vec![-1.5f64, 2.0], &[2]);
    let mut opt = Lbfgs::new(
        &z,
        LbfgsConfig { lr: 1.0, max_iter: 5, history_size: 10, line_search: true, ..Default::default() },
    );
    for (k, want) in traj.iter().enumerate() {
        let r = opt.step(&z, |p: &Tensor| {
            let (l, g) = value_and_grad(rosenbrock)(p);
            (l.item(), g)
        });
        z = r.params;
        let dz = max_diff(&z.to_vec::<f64>(), &floats(&want["z"]));
        let dl = (r.loss - want["loss"].as_f64().unwrap()).abs();
        assert!(dz < TOL && dl < TOL, "Rosenbrock L-BFGS step {}: |Δz| = {dz:e}, |Δloss| = {dl:e}", k + 1);
        assert_eq!(opt.func_evals(), want["evals"].as_u64().unwrap(), "evaluations after step {}", k + 1);
    }
}

#[test]
fn lbfgs_keeps_f32_leaves_and_leaves_integer_leaves_alone() {
    // Minimise Σ (w - 2)² over an f32 leaf, with an i64 leaf riding along.
    let p = (Tensor::from_vec(vec![0.0f32, 5.0, -1.0], &[3]), Tensor::scalar(7i64));
    let mut opt = Lbfgs::new(&p, LbfgsConfig { line_search: true, ..Default::default() });
    let r = opt.step(&p, |q: &(Tensor, Tensor)| {
        let w = q.0.cast(adjoint_core::DType::F64);
        let loss = (w.to_vec::<f64>().iter().map(|v| (v - 2.0) * (v - 2.0))).sum::<f64>();
        let g = w.to_vec::<f64>().iter().map(|v| 2.0 * (v - 2.0) as f32).collect::<Vec<f32>>();
        (loss, (Tensor::from_vec(g, &[3]), q.1.zeros_like()))
    });
    assert_eq!(r.params.0.dtype(), adjoint_core::DType::F32);
    assert_eq!(r.params.0.to_vec::<f32>(), vec![2.0; 3]);
    assert_eq!(r.params.1.dtype(), adjoint_core::DType::I64);
    assert_eq!(r.params.1.item(), 7.0);
}

#[test]
#[should_panic(expected = "Sgd::with_groups: groups for 1 leaves given to an optimizer built for 2")]
fn groups_for_another_structure_are_a_caller_bug() {
    let p = (Tensor::zeros(&[2]), Tensor::zeros(&[3]));
    let _ =
        Sgd::new(&p, SgdConfig::default()).with_groups(ParamGroups::freeze(&Tensor::zeros(&[1]), |_| false));
}

fn rosenbrock(x: &Tensor) -> Tensor {
    let n = x.shape()[0];
    let a = x.narrow(0, 0, n - 1);
    let b = x.narrow(0, 1, n - 1);
    ((b - a.square()).square() * 100.0 + (a * -1.0 + 1.0).square()).sum()
}

#[test]
fn lbfgs_minimises_rosenbrock_2d_and_10d() {
    for (start, n) in [(vec![-1.5, 2.0], 2usize), (vec![0.0; 10], 10)] {
        let mut x = Tensor::from_vec(start, &[n]);
        let mut opt = Lbfgs::new(
            &x,
            // PyTorch's default tolerance_change (1e-9) stops at |x - 1| ~ 1e-6 on this valley.
            LbfgsConfig {
                max_iter: 100,
                line_search: true,
                tolerance_grad: 1e-12,
                tolerance_change: 1e-15,
                ..Default::default()
            },
        );
        let mut evals = 0;
        for _ in 0..10 {
            let r = opt.step(&x, |p: &Tensor| {
                let (l, g) = value_and_grad(rosenbrock)(p);
                (l.item(), g)
            });
            evals += r.evals;
            x = r.params;
        }
        let v = x.to_vec::<f64>();
        assert!(
            v.iter().all(|c| (c - 1.0).abs() < 1e-8),
            "{n}-D Rosenbrock ended at {v:?} after {evals} evals"
        );
        let f = rosenbrock(&x).item();
        assert!(f < 1e-14, "{n}-D Rosenbrock value {f:e}");
        assert!(evals < 1000, "{n}-D Rosenbrock took {evals} evaluations");
    }
}

#[test]
fn clip_grad_norm_scales_like_pytorch() {
    let g = (Tensor::from_vec(vec![3.0f64, 0.0], &[2]), Tensor::from_vec(vec![4.0f32], &[1]));
    assert_eq!(global_norm(&g), 5.0);
    let (c, norm) = clip_grad_norm(&g, 2.0);
    assert_eq!(norm, 5.0);
    let coef = 2.0 / (5.0 + 1e-6);
    assert!((c.0.to_vec::<f64>()[0] - 3.0 * coef).abs() < 1e-15);
    assert!((c.1.to_vec::<f64>()[0] - 4.0 * coef).abs() < 1e-6);
    assert_eq!(c.1.dtype(), adjoint_core::DType::F32);
    assert!((global_norm(&c) - 2.0).abs() < 1e-6);
    // Below the threshold: unchanged.
    let (c, _) = clip_grad_norm(&g, 10.0);
    assert_eq!(c.0.to_vec::<f64>(), vec![3.0, 0.0]);
    // Non-finite norm: returned unchanged for the trainer's policy to see.
    let bad = Tensor::from_vec(vec![f64::INFINITY, 1.0], &[2]);
    let (c, norm) = clip_grad_norm(&bad, 1.0);
    assert!(norm.is_infinite());
    assert_eq!(c.to_vec::<f64>(), vec![f64::INFINITY, 1.0]);
}

#[test]
fn clip_grad_value_clamps_elements_and_reports_the_norm() {
    let g = vec![Tensor::from_vec(vec![0.5f64, -3.0, 2.0], &[3]), Tensor::from_vec(vec![-0.1f32, 7.0], &[2])];
    let (c, norm) = clip_grad_value(&g, 1.0);
    assert!((norm - (0.25f64 + 9.0 + 4.0 + 0.01 + 49.0).sqrt()).abs() < 1e-6);
    assert_eq!(c[0].to_vec::<f64>(), vec![0.5, -1.0, 1.0]);
    assert_eq!(c[1].to_vec::<f32>(), vec![-0.1, 1.0]);
}

#[test]
fn grad_accumulator_averages_groups() {
    let mut acc = GradAccumulator::new(3);
    let g = |a: f64, b: f64| (Tensor::scalar(a), Tensor::from_vec(vec![b, -b], &[2]));
    assert!(acc.push(&g(1.0, 2.0)).is_none());
    assert!(acc.push(&g(2.0, 4.0)).is_none());
    let m = acc.push(&g(6.0, 9.0)).expect("third push completes the group");
    assert_eq!(m.0.item(), 3.0);
    assert_eq!(m.1.to_vec::<f64>(), vec![5.0, -5.0]);
    assert_eq!(acc.count(), 0);
    acc.add(&g(1.0, 1.0));
    let partial = acc.take_mean().expect("a partial group");
    assert_eq!(partial.0.item(), 1.0);
    assert!(acc.mean().is_none());
}

#[test]
fn optimizer_momentum_hooks() {
    let w = Tensor::zeros(&[2]);
    let mut adam = Adam::new(&w, AdamConfig::default());
    adam.set_momentum(0.85);
    assert_eq!(adam.config.betas.0, 0.85);
    let mut sgd = Sgd::new(&w, SgdConfig { momentum: 0.9, ..Default::default() });
    OneCycle { max_lr: 0.5, total_steps: 10, ..Default::default() }.apply(&mut sgd, 0);
    assert_eq!(sgd.momentum(), Some(0.95));
    assert!((sgd.lr() - 0.02).abs() < 1e-15);
}

// ---------------------------------------------------------------------------- schedules

fn check_lrs(name: &str, got: impl Fn(usize) -> f64, want: &[f64]) {
    assert!(want.len() >= 20, "{name}: short fixture");
    for (t, w) in want.iter().enumerate() {
        let g = got(t);
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1e-3), "{name}: step {t}: got {g}, PyTorch {w}");
    }
}

#[test]
fn schedules_match_pytorch_lr_scheduler() {
    let fx = fixture("schedules");
    let s = StepLr { base_lr: 0.1, step_size: 3, gamma: 0.5 };
    check_lrs("step", |t| s.lr_at(t), &floats(&fx["step"]));
    let s = MultiStepLr { base_lr: 0.1, milestones: vec![2, 5, 11], gamma: 0.3 };
    check_lrs("multistep", |t| s.lr_at(t), &floats(&fx["multistep"]));
    let s = ExponentialLr { base_lr: 0.1, gamma: 0.9 };
    check_lrs("exponential", |t| s.lr_at(t), &floats(&fx["exponential"]));
    let s = WarmupCosine {
        base_lr: 0.1,
        warmup_steps: 5,
        total_steps: 30,
        warmup_start_factor: 0.1,
        min_lr: 0.001,
    };
    check_lrs("warmup_cosine", |t| s.lr_at(t), &floats(&fx["warmup_cosine"]));

    let s = OneCycle { max_lr: 0.5, total_steps: 40, ..Default::default() };
    check_lrs("one_cycle", |t| s.lr_at(t), &floats(&fx["one_cycle"]["lr"]));
    check_lrs("one_cycle momentum", |t| s.momentum_at(t).unwrap(), &floats(&fx["one_cycle"]["momentum"]));
    let s = OneCycle {
        max_lr: 0.5,
        total_steps: 30,
        pct_start: 0.25,
        anneal: Anneal::Linear,
        three_phase: true,
        div_factor: 10.0,
        final_div_factor: 100.0,
        ..Default::default()
    };
    check_lrs("one_cycle_three_linear", |t| s.lr_at(t), &floats(&fx["one_cycle_three_linear"]["lr"]));
    check_lrs(
        "one_cycle_three_linear momentum",
        |t| s.momentum_at(t).unwrap(),
        &floats(&fx["one_cycle_three_linear"]["momentum"]),
    );
}

#[test]
fn reduce_on_plateau_matches_pytorch() {
    let fx = fixture("schedules");
    let metrics = floats(&fx["plateau_metrics"]);
    for (name, cfg) in [
        (
            "plateau_min",
            PlateauConfig { patience: 2, factor: 0.5, cooldown: 1, min_lr: 0.01, ..Default::default() },
        ),
        (
            "plateau_max_abs",
            PlateauConfig {
                mode: PlateauMode::Max,
                patience: 1,
                factor: 0.3,
                threshold: 0.02,
                relative_threshold: false,
                ..Default::default()
            },
        ),
    ] {
        let want = floats(&fx[name]);
        let mut s = ReduceOnPlateau::new(0.1, cfg);
        let mut got = vec![s.lr_at(0)];
        for &m in &metrics {
            s.observe(m);
            got.push(s.lr_at(0));
        }
        assert!(
            want.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-15),
            "{name}: got {got:?}, PyTorch {want:?}"
        );
        assert!(got.last() < got.first(), "{name}: the fixture must exercise a reduction");
    }
}
