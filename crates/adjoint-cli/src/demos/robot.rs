//! `adjoint demo robot`: a neural feedback controller for a Puma 560 (first three joints),
//! trained by backpropagation through time through the differentiable simulator in
//! [`robot_sim`](super::robot_sim), against a derivative-free baseline (the cross-entropy
//! method) given about the same wall-clock time.
//!
//! Task: from a start posture near a home pose, bring the wrist centre to a random reachable
//! target (the forward kinematics of a random joint configuration) within 1.5 s, with little
//! torque. The controller sees `sin q, cos q, q̇`, the error to the target and the target, and
//! outputs torques bounded by `tanh` at half the Puma's rated limits.

use std::time::Instant;

use adjoint_core::{value_and_grad, DType, Params, Tensor};
use adjoint_nn::optim::{Adam, AdamConfig, Optimizer};
use adjoint_nn::train::{Chart, Series};
use adjoint_tensor::random::{self, Key};
use serde::Serialize;
use serde_json::json;

use super::common::{self, metrics, Common, DemoError, MetricsLog, Outcome, RunDir};
use super::robot_sim::{Arm, SIM_DTYPE};

/// Settings of the robot demo (saved as `config.json`).
#[derive(Clone, Debug, Serialize)]
pub struct RobotConfig {
    /// Joints simulated (from the base).
    pub joints: usize,
    /// BPTT iterations (Adam steps).
    pub iters: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Targets per BPTT batch.
    pub batch: usize,
    /// Simulation steps per rollout.
    pub steps: usize,
    /// Time step (s).
    pub dt: f64,
    /// Hidden width of the controller.
    pub hidden: usize,
    /// Weight of the torque penalty `mean((τ/τmax)²)`.
    pub torque_weight: f64,
    /// CEM population and elite count.
    pub cem_population: usize,
    /// CEM elites.
    pub cem_elites: usize,
    /// CEM generations (chosen so CEM's wall-clock is about BPTT's; both times are reported).
    pub cem_generations: usize,
    /// Targets per CEM evaluation.
    pub cem_batch: usize,
    /// Held-out targets for the learning curves and the table.
    pub eval_targets: usize,
    /// Seed.
    pub seed: u64,
}

impl RobotConfig {
    /// The defaults, adjusted by the common flags.
    pub fn from_common(c: &Common) -> RobotConfig {
        let mut cfg = RobotConfig {
            joints: 3,
            iters: 150,
            lr: 3e-3,
            batch: 32,
            steps: 150,
            dt: 0.01,
            hidden: 32,
            torque_weight: 1e-2,
            cem_population: 32,
            cem_elites: 6,
            cem_generations: 300,
            cem_batch: 8,
            eval_targets: 64,
            seed: c.seed,
        };
        if let Some(e) = c.epochs {
            cfg.cem_generations = cfg.cem_generations * e / cfg.iters.max(1);
            cfg.iters = e;
        }
        if let Some(lr) = c.lr {
            cfg.lr = lr;
        }
        if c.quick {
            cfg.iters = 3;
            cfg.cem_generations = 3;
            cfg.steps = 20;
            cfg.eval_targets = 8;
        }
        cfg
    }
}

/// Half the Puma 560's rated joint torques (N m), the controller's bound.
const TORQUE_LIMIT: [f64; 6] = [48.8, 93.2, 44.7, 11.0, 12.5, 12.0];
const HOME: [f64; 6] = [0.0, 0.7, -2.0, 0.0, 0.0, 0.0];
const TARGET_SPREAD: [f64; 6] = [1.0, 0.5, 0.6, 0.5, 0.5, 0.5];
const START_SPREAD: f64 = 0.2;

/// A two-hidden-layer tanh MLP whose parameters carry a leading population axis `P` (1 for
/// gradient training; the CEM baseline evaluates `P` candidates in one batched rollout).
#[derive(Clone, adjoint_derive::Params)]
#[params(crate = adjoint_core)]
pub struct Controller {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    w3: Tensor,
    b3: Tensor,
}

fn features_dim(n: usize) -> usize {
    3 * n + 6
}

impl Controller {
    fn new(key: &Key, n: usize, hidden: usize) -> Controller {
        let k = key.split(3);
        let f = features_dim(n);
        let layer = |k: &Key, i: usize, o: usize, scale: f64| {
            Tensor::from_array(random::normal(k, &[1, i, o], SIM_DTYPE)) * (scale / (i as f64).sqrt())
        };
        let z = |o: usize| Tensor::full_of(&[1, 1, o], 0.0, SIM_DTYPE);
        Controller {
            w1: layer(&k[0], f, hidden, 1.0),
            b1: z(hidden),
            w2: layer(&k[1], hidden, hidden, 1.0),
            b2: z(hidden),
            w3: layer(&k[2], hidden, n, 0.1),
            b3: z(n),
        }
    }

    /// `x: [P, B, F]` → torques `[P, B, n]`.
    fn forward(&self, x: &Tensor, limit: &Tensor) -> Tensor {
        let h = (x.matmul(&self.w1) + &self.b1).tanh();
        let h = (h.matmul(&self.w2) + &self.b2).tanh();
        (h.matmul(&self.w3) + &self.b3).tanh() * limit
    }
}

/// A batch of tasks: start postures and targets.
#[derive(Clone)]
pub struct Tasks {
    q0: Tensor,
    target: Tensor,
}

fn sample_tasks(arm: &Arm, key: &Key, b: usize) -> Tasks {
    let n = arm.dof();
    let (k1, k2) = key.split2();
    let around = |k: &Key, spread: &[f64]| {
        let u = Tensor::from_array(random::uniform(k, &[b, n], -1.0, 1.0, SIM_DTYPE));
        u * Tensor::from_vec(spread[..n].to_vec(), &[n]) + Tensor::from_vec(HOME[..n].to_vec(), &[n])
    };
    let q0 = around(&k1, &vec![START_SPREAD; n]);
    let target = arm.end_effector(&around(&k2, &TARGET_SPREAD));
    Tasks { q0, target }
}

/// Per-candidate costs `[P]` of a rollout, and the wrist paths `[steps, B, 3]` of candidate 0
/// when asked.
struct Rollout {
    loss: Tensor,
    effort: Tensor,
    path: Option<Vec<Tensor>>,
}

fn rollout(arm: &Arm, ctrl: &Controller, tasks: &Tasks, cfg: &RobotConfig, record: bool) -> Rollout {
    let n = arm.dof();
    let p = ctrl.w1.shape()[0];
    let b = tasks.q0.shape()[0];
    let tile = |t: &Tensor| {
        let d = t.shape()[1];
        t.unsqueeze(0).broadcast_to(&[p, b, d]).reshape(&[p * b, d])
    };
    let mut q = tile(&tasks.q0);
    let mut qd = q.zeros_like();
    let target = tile(&tasks.target);
    let limit = Tensor::from_vec(TORQUE_LIMIT[..n].to_vec(), &[n]);
    let settle = cfg.steps * 7 / 10;
    let mut dist = Tensor::full_of(&[p * b], 0.0, SIM_DTYPE);
    let mut effort = Tensor::full_of(&[p * b], 0.0, SIM_DTYPE);
    let mut path = record.then(Vec::new);
    for t in 0..cfg.steps {
        let k = arm.kinematics(&q);
        let ee = k.origin[n].clone();
        if let Some(path) = path.as_mut() {
            path.push(ee.narrow(0, 0, b));
        }
        let err = &target - &ee;
        let x = Tensor::concat(&[&q.sin(), &q.cos(), &(&qd * 0.3), &(&err * 3.0), &target], 1);
        let tau = ctrl.forward(&x.reshape(&[p, b, features_dim(n)]), &limit).reshape(&[p * b, n]);
        effort = effort + (&tau / &limit).square().mean_axes(&[1], false);
        if t >= settle {
            dist = dist + err.square().sum_axes(&[1], false);
        }
        let qdd = arm.acceleration_at(&k, &qd, &tau);
        qd = qd + qdd * cfg.dt;
        q = &q + &(&qd * cfg.dt);
    }
    let dist = (dist / (cfg.steps - settle) as f64).reshape(&[p, b]).mean_axes(&[1], false);
    let effort = (effort / cfg.steps as f64).reshape(&[p, b]).mean_axes(&[1], false);
    let loss = &dist + &(&effort * cfg.torque_weight);
    Rollout { loss, effort, path }
}

/// Distance (cm) from the wrist to the target at the final step, averaged over the tasks.
fn final_distance_cm(arm: &Arm, ctrl: &Controller, tasks: &Tasks, cfg: &RobotConfig) -> f64 {
    let r = rollout(arm, ctrl, tasks, cfg, true);
    let last = r.path.expect("recorded").pop().expect("at least one step");
    let d = (last - &tasks.target).square().sum_axes(&[1], false).sqrt().mean();
    d.item() * 100.0
}

/// The outcome of the demo, as printed and saved.
#[derive(Clone, Debug, Serialize)]
pub struct RobotReport {
    /// Rows: method, eval loss, final distance (cm), mean (τ/τmax)², wall-clock (s).
    pub rows: Vec<(String, f64, f64, f64, f64)>,
    /// Method name → its metrics (`bptt`, `cem`: `final_distance_cm`, `train_time_s`,
    /// `eval_loss`, `effort`).
    pub methods: std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>,
}

/// Flatten the leaves of a population-1 controller into one vector.
fn flatten(c: &Controller) -> Vec<f64> {
    c.leaves().iter().flat_map(|t| t.to_vec::<f64>()).collect()
}

/// A population-`p` controller from `p` parameter vectors `[p][dim]` laid out like [`flatten`].
fn unflatten(template: &Controller, rows: &[Vec<f64>]) -> Controller {
    let p = rows.len();
    let mut offset = 0;
    template.map_tensors(&mut |t| {
        let numel = t.numel();
        let mut data = Vec::with_capacity(p * numel);
        for r in rows {
            data.extend_from_slice(&r[offset..offset + numel]);
        }
        offset += numel;
        let mut shape = t.shape().to_vec();
        shape[0] = p;
        Tensor::from_vec(data, &shape)
    })
}

/// The configuration this demo runs with, as recorded.
pub fn config(common: &Common) -> serde_json::Value {
    json!(RobotConfig::from_common(common))
}

/// The data files the demo reads (the registry's data access policy is checked on them before
/// a run is recorded).
pub fn data_files() -> [std::path::PathBuf; 1] {
    [common::data_dir().join("robot_arm_dynamics_params.json")]
}

/// Run the demo.
pub fn run(common: &Common) -> Result<Outcome, DemoError> {
    let cfg = RobotConfig::from_common(common);
    let [data_file] = data_files();
    let arm = Arm::puma560(&data_file, cfg.joints)?;
    let dir = RunDir::create(&common.out, "robot")?;
    dir.write_json("config.json", &json!({ "demo": "robot", "config": cfg, "data": [data_file] }))?;
    let mut log = MetricsLog::create(&dir)?;
    let key = Key::new(cfg.seed);
    let eval = sample_tasks(&arm, &key.fold_in(1), cfg.eval_targets);
    let init = Controller::new(&key.fold_in(2), arm.dof(), cfg.hidden);
    let eval_loss = |c: &Controller| rollout(&arm, c, &eval, &cfg, false).loss.item();

    // Backpropagation through time with Adam.
    let mut ctrl = init.clone();
    let mut opt = Adam::new(&ctrl, AdamConfig { lr: cfg.lr, ..Default::default() });
    let pb = common::progress(cfg.iters as u64, "bptt", common.quiet);
    let mut bptt_curve = vec![(0.0, eval_loss(&ctrl))];
    let mut epochs = Vec::new();
    let start = Instant::now();
    let mut eval_time = 0.0;
    for it in 0..cfg.iters {
        let tasks = sample_tasks(&arm, &key.fold_in(1000 + it as u64), cfg.batch);
        let (loss, g) =
            value_and_grad(|c: &Controller| rollout(&arm, c, &tasks, &cfg, false).loss.sum())(&ctrl);
        common::check_finite("robot BPTT", it, loss.item())?;
        let (g, norm) = adjoint_nn::optim::clip_grad_norm(&g, 10.0);
        ctrl = opt.step(&ctrl, &g);
        pb.inc(1);
        pb.set_message(format!("loss {:.4}", loss.item()));
        if it % 10 == 9 || it + 1 == cfg.iters {
            let t0 = Instant::now();
            let e = eval_loss(&ctrl);
            eval_time += t0.elapsed().as_secs_f64();
            let t = start.elapsed().as_secs_f64() - eval_time;
            bptt_curve.push((t, e));
            epochs.push((
                (it + 1) as u64,
                metrics([("train_loss", loss.item()), ("eval_loss", e), ("grad_norm", norm)]),
            ));
            log.log(json!({"method": "bptt", "iter": it + 1, "time_s": t, "train_loss": loss.item(),
                "grad_norm": norm, "eval_loss": e}))?;
        }
    }
    pb.finish_and_clear();
    let bptt_time = start.elapsed().as_secs_f64() - eval_time;

    // Cross-entropy method over the same controller's parameters, forward rollouts only.
    let mut mean = flatten(&init);
    let dim = mean.len();
    let mut std = vec![0.1; dim];
    let mut best = init.clone();
    let pb = common::progress(cfg.cem_generations as u64, "cem", common.quiet);
    let mut cem_curve = vec![(0.0, eval_loss(&init))];
    let start = Instant::now();
    let mut eval_time = 0.0;
    for gen in 0..cfg.cem_generations {
        let kg = key.fold_in(500_000 + gen as u64);
        let eps = random::normal(&kg, &[cfg.cem_population, dim], DType::F64).to_vec::<f64>();
        let rows: Vec<Vec<f64>> = (0..cfg.cem_population)
            .map(|i| (0..dim).map(|j| mean[j] + std[j] * eps[i * dim + j]).collect())
            .collect();
        let tasks = sample_tasks(&arm, &kg.fold_in(7), cfg.cem_batch);
        let losses = rollout(&arm, &unflatten(&init, &rows), &tasks, &cfg, false).loss.to_vec::<f64>();
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]));
        let elites = &order[..cfg.cem_elites];
        for j in 0..dim {
            let m = elites.iter().map(|&e| rows[e][j]).sum::<f64>() / elites.len() as f64;
            let v = elites.iter().map(|&e| (rows[e][j] - m).powi(2)).sum::<f64>() / elites.len() as f64;
            mean[j] = m;
            std[j] = v.sqrt() + 0.01 * (1.0 - gen as f64 / cfg.cem_generations as f64);
        }
        best = unflatten(&init, std::slice::from_ref(&mean));
        pb.inc(1);
        pb.set_message(format!("best {:.4}", losses[order[0]]));
        if gen % 20 == 19 || gen + 1 == cfg.cem_generations {
            let t0 = Instant::now();
            let e = eval_loss(&best);
            eval_time += t0.elapsed().as_secs_f64();
            let t = start.elapsed().as_secs_f64() - eval_time;
            cem_curve.push((t, e));
            log.log(json!({"method": "cem", "generation": gen + 1, "time_s": t, "eval_loss": e}))?;
        }
    }
    pb.finish_and_clear();
    let cem_time = start.elapsed().as_secs_f64() - eval_time;
    log.finish()?;

    let mut rows = Vec::new();
    for (name, c, t) in
        [("untrained", &init, 0.0), ("BPTT (adjoint grad)", &ctrl, bptt_time), ("CEM", &best, cem_time)]
    {
        let r = rollout(&arm, c, &eval, &cfg, false);
        rows.push((
            name.to_string(),
            r.loss.item(),
            final_distance_cm(&arm, c, &eval, &cfg),
            r.effort.item(),
            t,
        ));
    }
    let methods = [("untrained", &rows[0]), ("bptt", &rows[1]), ("cem", &rows[2])]
        .into_iter()
        .map(|(k, r)| {
            let m = metrics([
                ("eval_loss", r.1),
                ("final_distance_cm", r.2),
                ("effort", r.3),
                ("train_time_s", r.4),
            ]);
            (k.to_string(), m)
        })
        .collect();
    let report = RobotReport { rows, methods };
    let table = common::table(
        &["method", "eval loss", "final distance (cm)", "mean (τ/τmax)²", "train time (s)"],
        &report
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.0.clone(),
                    format!("{:.5}", r.1),
                    format!("{:.2}", r.2),
                    format!("{:.4}", r.3),
                    format!("{:.1}", r.4),
                ]
            })
            .collect::<Vec<_>>(),
    );
    dir.write("results.md", &table)?;
    dir.write_json("results.json", &report)?;

    let mut meta = std::collections::BTreeMap::new();
    meta.insert("demo".to_string(), "robot".to_string());
    meta.insert("seed".to_string(), cfg.seed.to_string());
    adjoint_nn::checkpoint::save(dir.file("controller.safetensors"), &ctrl, &meta)
        .map_err(|e| e.to_string())?;

    Chart::new("Robot reaching: held-out loss vs training time")
        .x_label("wall-clock seconds (evaluation excluded)")
        .y_label("loss")
        .log_y(true)
        .series(Series::new("BPTT through the simulator", bptt_curve))
        .series(Series::new("CEM (derivative-free)", cem_curve))
        .save(dir.file("learning_curves"))
        .map_err(|e| e.to_string())?;
    let paths = rollout(&arm, &ctrl, &eval, &cfg, true).path.expect("recorded");
    let targets = eval.target.to_vec::<f64>();
    for (plane, (a, b), stem) in
        [("top view (x, y)", (0, 1), "trajectory_xy"), ("side view (x, z)", (0, 2), "trajectory_xz")]
    {
        let mut chart = Chart::new(format!("Wrist paths of the trained controller, {plane}"))
            .x_label(if a == 0 { "x (m)" } else { "" })
            .y_label(if b == 1 { "y (m)" } else { "z (m)" });
        for task in 0..4.min(cfg.eval_targets) {
            let pts: Vec<(f64, f64)> = paths
                .iter()
                .map(|p| {
                    let v = p.narrow(0, task, 1).to_vec::<f64>();
                    (v[a], v[b])
                })
                .collect();
            chart = chart.series(Series::new(format!("path {task}"), pts));
            let (tx, ty) = (targets[task * 3 + a], targets[task * 3 + b]);
            let d = 0.02;
            chart = chart.series(Series::new(
                format!("target {task}"),
                vec![(tx - d, ty), (tx + d, ty), (tx, ty), (tx, ty - d), (tx, ty + d)],
            ));
        }
        chart.save(dir.file(stem)).map_err(|e| e.to_string())?;
    }
    println!(
        "robot: reaching with a Puma 560 ({} joints, {} steps of {} s)\n{table}",
        cfg.joints, cfg.steps, cfg.dt
    );
    println!("robot: run folder {}", dir.path.display());
    let r = &report.rows;
    let final_metrics = metrics([
        ("untrained_eval_loss", r[0].1),
        ("bptt_eval_loss", r[1].1),
        ("bptt_final_distance_cm", r[1].2),
        ("bptt_effort", r[1].3),
        ("cem_eval_loss", r[2].1),
        ("cem_final_distance_cm", r[2].2),
        ("cem_effort", r[2].3),
    ]);
    let checkpoints = vec![(dir.file("controller.safetensors"), "controller".to_string())];
    let train = sample_tasks(&arm, &key.fold_in(1000), cfg.batch.max(64));
    let mut eval = evaluation(&arm, &ctrl, (&eval, &train), &cfg);
    eval.data =
        vec![super::evaluate::data_record(&data_file, "arm model; held-out targets drawn from the seed")?];
    Ok(Outcome {
        dir,
        data_files: vec![data_file],
        epochs,
        final_metrics,
        checkpoints,
        evaluations: vec![("controller".into(), eval)],
    })
}

/// The trained controller's evaluation record: final distance per held-out task, sliced by
/// target region (left/right of the base, above/below the median target height), and the drift
/// of the target coordinates between training and held-out tasks.
fn evaluation(
    arm: &Arm,
    ctrl: &Controller,
    (eval, train): (&Tasks, &Tasks),
    cfg: &RobotConfig,
) -> adjoint_store::Evaluation {
    let mut path = rollout(arm, ctrl, eval, cfg, true).path.expect("recorded");
    let last = path.pop().expect("at least one step");
    let d = ((last - &eval.target).square().sum_axes(&[1], false).sqrt() * 100.0)
        .cast(DType::F64)
        .to_vec::<f64>();
    let tg = eval.target.cast(DType::F64).to_vec::<f64>();
    let mut zs: Vec<f64> = tg.chunks(3).map(|t| t[2]).collect();
    zs.sort_by(f64::total_cmp);
    let median_z = zs[zs.len() / 2];
    let rows: Vec<(String, Vec<f64>)> = tg
        .chunks(3)
        .zip(&d)
        .map(|(t, &dist)| {
            let side = if t[1] >= 0.0 { "left" } else { "right" };
            let height = if t[2] >= median_z { "high" } else { "low" };
            (format!("{side}-{height}"), vec![dist])
        })
        .collect();
    let mean = d.iter().sum::<f64>() / d.len().max(1) as f64;
    let mut ev = adjoint_store::Evaluation::new(
        "robot reaching, held-out targets (BPTT controller)",
        "final_distance_cm",
        false,
        metrics([("final_distance_cm", mean)]),
    );
    ev.slices = super::evaluate::mean_slices("region", &["final_distance_cm"], &rows);
    let tt = train.target.cast(DType::F64).to_vec::<f64>();
    ev.features = ["target x", "target y", "target z"]
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let col = |v: &[f64]| v.chunks(3).map(|t| t[j]).collect::<Vec<f64>>();
            adjoint_store::FeatureDistribution::from_samples(name, &col(&tt), &col(&tg), 5)
        })
        .collect();
    ev
}
