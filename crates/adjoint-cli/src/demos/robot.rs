//! `adjoint demo robot`: a neural feedback controller for a Puma 560 (first three joints),
//! trained by backpropagation through time through the differentiable simulator in
//! [`robot_sim`](super::robot_sim), against a derivative-free baseline (the cross-entropy
//! method) given the same wall-clock budget; then a payload of unknown mass is attached, is
//! identified from one second of logged motion ([`robot_sysid`](super::robot_sysid)), and the
//! controller is adapted to the identified arm, against CEM re-run from scratch on it with the
//! same budget as the adaptation.
//!
//! ## Budgets and determinism
//!
//! By default each method trains for a wall-clock budget (seconds of training, evaluation left
//! out) and reports the iterations it got done: that is the comparison the demo is about
//! (what does a gradient buy per second?). Its results then depend on the machine's speed and
//! load, and so do the recorded final metrics; `config.json` says so. `--epochs N` replaces the
//! budgets with fixed iteration counts (N Adam steps; CEM gets [`CEM_PER_BPTT`] generations
//! per step, the ratio of their costs measured on a 2-core machine) and the run is then
//! deterministic for its seed, as is `--quick`.
//!
//! The pieces: the task, controller and both training loops are in
//! [`robot_control`](super::robot_control); this file wires them, writes the report and plots,
//! and hands the registry its record.

use std::collections::BTreeMap;

use adjoint_core::Tensor;
use adjoint_nn::train::{Chart, Series};
use adjoint_scalar::Var;
use adjoint_tensor::random::Key;
use serde::Serialize;
use serde_json::json;

use super::common::{self, metrics, Common, DemoError, MetricsLog, Outcome, RunDir};
use super::robot_control::{
    evaluate, rollout, sample_tasks, train_bptt, train_cem, BpttSettings, Budget, CemSettings, Horizon, Net,
    Run, Task, Trace,
};
use super::robot_sim::{Arm, Model};
use super::robot_sysid::{self as sysid, SysidSettings};

/// CEM generations per BPTT step when budgets are iteration counts (`--epochs`): one BPTT step
/// (8 tasks recorded on the tape and swept) costs about half a CEM generation (32 candidates ×
/// 8 tasks of plain `f64` rollouts), measured on the 2-core build machine (30 s budgets: 379
/// steps against 184 generations).
pub const CEM_PER_BPTT: f64 = 0.5;

/// Settings of the robot demo (saved as `config.json`).
#[derive(Clone, Debug, Serialize)]
pub struct RobotConfig {
    /// Joints simulated (from the base).
    pub joints: usize,
    /// Hidden width of the controller.
    pub hidden: usize,
    /// The rollout: steps, time step, torque penalty.
    pub steps: usize,
    /// Time step (s).
    pub dt: f64,
    /// Weight of the torque penalty `mean((τ/τmax)²)`.
    pub torque_weight: f64,
    /// BPTT's budget (the same for CEM).
    pub budget: Budget,
    /// CEM's budget (the same seconds as BPTT's; its own iteration count).
    pub cem_budget: Budget,
    /// Adaptation budget (BPTT fine-tuning on the identified arm; CEM from scratch gets the
    /// same seconds).
    pub adapt_budget: Budget,
    /// CEM's adaptation budget.
    pub cem_adapt_budget: Budget,
    /// BPTT settings.
    pub bptt: BpttSettings,
    /// Adam learning rate of the adaptation.
    pub adapt_lr: f64,
    /// CEM settings.
    pub cem: CemSettings,
    /// The payload experiment.
    pub sysid: SysidSettings,
    /// Held-out targets for the learning curves and the table.
    pub eval_targets: usize,
    /// Seed.
    pub seed: u64,
    /// What the results depend on.
    pub timing: String,
}

impl RobotConfig {
    /// The defaults, adjusted by the common flags.
    pub fn from_common(c: &Common) -> RobotConfig {
        let timed = |s: f64| Budget { seconds: Some(s), max_iters: 1_000_000 };
        let mut cfg = RobotConfig {
            joints: 3,
            hidden: 32,
            steps: 150,
            dt: 0.01,
            torque_weight: 1e-2,
            budget: timed(75.0),
            cem_budget: timed(75.0),
            adapt_budget: timed(15.0),
            cem_adapt_budget: timed(15.0),
            bptt: BpttSettings { lr: 1e-2, batch: 8, clip: 10.0, start_fraction: 0.3 },
            adapt_lr: 1e-3,
            cem: CemSettings { population: 32, elites: 6, batch: 8, init_std: 0.1 },
            sysid: SysidSettings::default(),
            eval_targets: 64,
            seed: c.seed,
            timing: "wall-clock budgets (training seconds, evaluation excluded): iterations done, and so \
                     the results, depend on the machine's speed and load"
                .into(),
        };
        let fixed = |iters: usize| Budget { seconds: None, max_iters: iters };
        if let Some(e) = c.epochs {
            let a = (e / 5).max(1);
            let cem = |i: usize| fixed(((i as f64 * CEM_PER_BPTT).ceil() as usize).max(1));
            (cfg.budget, cfg.cem_budget) = (fixed(e), cem(e));
            (cfg.adapt_budget, cfg.cem_adapt_budget) = (fixed(a), cem(a));
            cfg.timing = "fixed iteration counts (--epochs): deterministic for the seed".into();
        }
        if let Some(lr) = c.lr {
            cfg.bptt.lr = lr;
            cfg.adapt_lr = lr / 10.0;
        }
        if c.quick {
            (cfg.budget, cfg.cem_budget) = (fixed(3), fixed(3));
            (cfg.adapt_budget, cfg.cem_adapt_budget) = (fixed(2), fixed(2));
            cfg.steps = 20;
            cfg.eval_targets = 8;
            cfg.bptt.batch = 4;
            cfg.sysid.max_iter = 10;
            cfg.timing = "fixed iteration counts (--quick): deterministic for the seed".into();
        }
        cfg
    }

    fn horizon(&self) -> Horizon {
        Horizon { steps: self.steps, dt: self.dt, torque_weight: self.torque_weight }
    }
}

/// One row of the table: a controller evaluated on the held-out tasks of one arm.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Method key (`bptt`, `cem`, …).
    pub key: String,
    /// What it is, for the table.
    pub label: String,
    /// Held-out loss.
    pub eval_loss: f64,
    /// Final distance to the target (cm), mean over held-out tasks.
    pub final_distance_cm: f64,
    /// `mean((τ/τmax)²)`.
    pub effort: f64,
    /// Training wall-clock (s).
    pub train_time_s: f64,
    /// Iterations done (Adam steps or CEM generations).
    pub iterations: usize,
}

/// The outcome of the demo, as printed and saved.
#[derive(Clone, Debug, Serialize)]
pub struct RobotReport {
    /// The table's rows.
    pub rows: Vec<Row>,
    /// Method name → its metrics (`bptt`, `cem`, `bptt_adapted`, `cem_new_payload`:
    /// `final_distance_cm`, `train_time_s`, …; `sysid`: `payload_mass_error`, …).
    pub methods: BTreeMap<String, BTreeMap<String, f64>>,
}

/// The controller's parameters as named tensors, for the checkpoint.
#[derive(Clone, adjoint_derive::Params)]
#[params(crate = adjoint_core)]
struct Controller {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    w3: Tensor,
    b3: Tensor,
}

fn controller(net: &Net, p: &[f64]) -> Controller {
    let mut at = 0;
    let mut t: Vec<Tensor> = net
        .shapes()
        .iter()
        .map(|s| {
            let len: usize = s.iter().product();
            at += len;
            Tensor::from_vec(p[at - len..at].to_vec(), s)
        })
        .collect();
    let mut next = || t.remove(0);
    Controller { w1: next(), b1: next(), w2: next(), b2: next(), w3: next(), b3: next() }
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

fn log_trace(log: &mut MetricsLog, method: &str, t: &Trace) -> Result<(), String> {
    for ((it, m), (time, _)) in t.points.iter().zip(t.curve.iter().skip(1)) {
        log.log(json!({"method": method, "iter": it, "time_s": time, "metrics": m}))?;
    }
    Ok(())
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
    let h = cfg.horizon();
    let net = Net { n: arm.dof(), hidden: cfg.hidden };
    let nominal: Model<f64> = arm.model(None);
    let eval = sample_tasks(&nominal, &key.fold_in(1), cfg.eval_targets);
    let init = net.init(&key.fold_in(2));
    let base = Run { label: "bptt", net: &net, h: &h, budget: &cfg.budget, quiet: common.quiet };

    // Phase 1: the nominal arm, BPTT against CEM with the same budget.
    let nominal_var: Model<Var> = arm.model(None);
    let (nominal_ref, key_ref) = (&nominal, &key);
    let train_tasks = |salt: u64, b: usize| {
        move |it: usize| sample_tasks(nominal_ref, &key_ref.fold_in(salt + it as u64), b)
    };
    let eval_on = |m: &Model<f64>, tasks: &[Task]| {
        let m = m.clone();
        let tasks = tasks.to_vec();
        move |p: &[f64]| evaluate(&m, &net, p, &tasks, &h).0
    };
    let mut bptt = init.clone();
    let bptt_trace = train_bptt(
        base,
        &nominal_var,
        &mut bptt,
        &cfg.bptt,
        train_tasks(1_000_000, cfg.bptt.batch),
        eval_on(&nominal, &eval),
    )?;
    log_trace(&mut log, "bptt", &bptt_trace)?;
    let mut cem = init.clone();
    let cem_trace = train_cem(
        Run { label: "cem", budget: &cfg.cem_budget, ..base },
        &nominal,
        &mut cem,
        &cfg.cem,
        &key.fold_in(3),
        train_tasks(2_000_000, cfg.cem.batch),
        eval_on(&nominal, &eval),
    )?;
    log_trace(&mut log, "cem", &cem_trace)?;

    // Phase 2: a payload of unknown mass; identify it from one second of logged motion.
    let s = &cfg.sysid;
    let started = std::time::Instant::now();
    let logged = sysid::measure(&arm, s, &key.fold_in(4));
    let found = sysid::identify(&arm, &logged, s)?;
    let sysid_time = started.elapsed().as_secs_f64();
    let est = found.payload;
    log.log(json!({"method": "sysid", "losses": found.losses, "estimate": est, "truth": s.truth}))?;

    // Phase 3: adapt to the identified arm; CEM from scratch on it with the same budget. Both
    // are scored on the true arm (the identified one is only their simulator).
    let truth: Model<f64> = arm.model(Some(&s.truth));
    let ident: Model<f64> = arm.model(Some(&est));
    let ident_var: Model<Var> = arm.model(Some(&est.lift()));
    let ident_ref = &ident;
    let ident_tasks =
        |salt: u64, b: usize| move |it: usize| sample_tasks(ident_ref, &key_ref.fold_in(salt + it as u64), b);
    let mut adapted = bptt.clone();
    let adapt = BpttSettings { lr: cfg.adapt_lr, start_fraction: 1.0, ..cfg.bptt.clone() };
    let adapt_trace = train_bptt(
        Run { label: "adapt", budget: &cfg.adapt_budget, ..base },
        &ident_var,
        &mut adapted,
        &adapt,
        ident_tasks(3_000_000, cfg.bptt.batch),
        eval_on(&truth, &eval),
    )?;
    log_trace(&mut log, "bptt_adapted", &adapt_trace)?;
    let mut cem_new = init.clone();
    let cem_new_trace = train_cem(
        Run { label: "cem-new", budget: &cfg.cem_adapt_budget, ..base },
        &ident,
        &mut cem_new,
        &cfg.cem,
        &key.fold_in(5),
        ident_tasks(4_000_000, cfg.cem.batch),
        eval_on(&truth, &eval),
    )?;
    log_trace(&mut log, "cem_new_payload", &cem_new_trace)?;
    log.finish()?;

    let row = |key: &str, label: &str, m: &Model<f64>, p: &[f64], t: Option<&Trace>| {
        let (eval_loss, effort, final_distance_cm) = evaluate(m, &net, p, &eval, &h);
        Row {
            key: key.into(),
            label: label.into(),
            eval_loss,
            final_distance_cm,
            effort,
            train_time_s: t.map_or(0.0, |t| t.time_s),
            iterations: t.map_or(0, |t| t.iters),
        }
    };
    let rows = vec![
        row("untrained", "untrained", &nominal, &init, None),
        row("bptt", "BPTT (adjoint grad)", &nominal, &bptt, Some(&bptt_trace)),
        row("cem", "CEM", &nominal, &cem, Some(&cem_trace)),
        row("bptt_new_payload", "BPTT, payload, not adapted", &truth, &bptt, None),
        row("bptt_adapted", "BPTT adapted to identified payload", &truth, &adapted, Some(&adapt_trace)),
        row(
            "cem_new_payload",
            "CEM from scratch, identified payload",
            &truth,
            &cem_new,
            Some(&cem_new_trace),
        ),
    ];
    let mut methods: BTreeMap<String, BTreeMap<String, f64>> = rows
        .iter()
        .map(|r| {
            let m = metrics([
                ("eval_loss", r.eval_loss),
                ("final_distance_cm", r.final_distance_cm),
                ("effort", r.effort),
                ("train_time_s", r.train_time_s),
                ("iterations", r.iterations as f64),
            ]);
            (r.key.clone(), m)
        })
        .collect();
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
    methods.insert(
        "sysid".into(),
        metrics([
            ("payload_mass_error", rel(est.mass, s.truth.mass)),
            ("payload_offset_error", rel(est.offset, s.truth.offset)),
            ("estimated_mass_kg", est.mass),
            ("true_mass_kg", s.truth.mass),
            ("estimated_offset_m", est.offset),
            ("true_offset_m", s.truth.offset),
            ("final_loss", *found.losses.last().unwrap_or(&f64::NAN)),
            ("evaluations", found.losses.len() as f64),
            ("time_s", sysid_time),
        ]),
    );
    let report = RobotReport { rows, methods };
    let table = common::table(
        &["method", "eval loss", "final distance (cm)", "mean (τ/τmax)²", "train time (s)", "iterations"],
        &report
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.label.clone(),
                    format!("{:.5}", r.eval_loss),
                    format!("{:.2}", r.final_distance_cm),
                    format!("{:.4}", r.effort),
                    format!("{:.1}", r.train_time_s),
                    r.iterations.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let sysid_text = format!(
        "System identification ({:.1} s log, noise {} rad, L-BFGS, {} evaluations, {:.2} s):\n\
         - payload mass: estimated {:.4} kg, true {:.4} kg (relative error {:.2}%)\n\
         - payload offset: estimated {:.4} m, true {:.4} m (relative error {:.2}%)\n",
        s.duration,
        s.noise,
        found.losses.len(),
        sysid_time,
        est.mass,
        s.truth.mass,
        100.0 * rel(est.mass, s.truth.mass),
        est.offset,
        s.truth.offset,
        100.0 * rel(est.offset, s.truth.offset),
    );
    dir.write("results.md", &format!("{table}\n{sysid_text}"))?;
    dir.write_json("results.json", &report)?;

    let mut meta = BTreeMap::new();
    meta.insert("demo".to_string(), "robot".to_string());
    meta.insert("seed".to_string(), cfg.seed.to_string());
    adjoint_nn::checkpoint::save(dir.file("controller.safetensors"), &controller(&net, &bptt), &meta)
        .map_err(|e| e.to_string())?;
    plots(&dir, &cfg, &nominal, &net, &bptt, &eval, [&bptt_trace, &cem_trace, &adapt_trace, &cem_new_trace])?;
    Chart::new("Payload identification: output error vs L-BFGS evaluation")
        .x_label("objective evaluation (line-search trials included)")
        .y_label("mean squared angle error (mrad²)")
        .log_y(true)
        .series(Series::new(
            "loss through the simulator",
            found.losses.iter().enumerate().map(|(i, &l)| (i as f64, l)).collect(),
        ))
        .save(dir.file("sysid_loss"))
        .map_err(|e| e.to_string())?;
    println!(
        "robot: reaching with a Puma 560 ({} joints, {} steps of {} s)\n{table}\n{sysid_text}",
        cfg.joints, cfg.steps, cfg.dt
    );
    println!("robot: run folder {}", dir.path.display());
    let mut final_metrics = BTreeMap::new();
    for (k, m) in &report.methods {
        for (name, v) in m {
            if !name.contains("time") {
                final_metrics.insert(format!("{k}_{name}"), *v);
            }
        }
    }
    let checkpoints = vec![(dir.file("controller.safetensors"), "controller".to_string())];
    let train = sample_tasks(&nominal, &key.fold_in(1_000_000), 64);
    let mut ev = evaluation(&nominal, &net, &bptt, (&eval, &train), &h);
    ev.data =
        vec![super::evaluate::data_record(&data_file, "arm model; held-out targets drawn from the seed")?];
    Ok(Outcome {
        dir,
        data_files: vec![data_file],
        epochs: bptt_trace.points.clone(),
        final_metrics,
        checkpoints,
        evaluations: vec![("controller".into(), ev)],
    })
}

/// Learning curves (both phases) and the trained controller's wrist paths.
fn plots(
    dir: &RunDir,
    cfg: &RobotConfig,
    model: &Model<f64>,
    net: &Net,
    p: &[f64],
    eval: &[Task],
    [bptt, cem, adapt, cem_new]: [&Trace; 4],
) -> Result<(), String> {
    Chart::new("Robot reaching: held-out loss vs training time")
        .x_label("wall-clock seconds (evaluation excluded)")
        .y_label("loss")
        .log_y(true)
        .series(Series::new("BPTT through the simulator", bptt.curve.clone()))
        .series(Series::new("CEM (derivative-free)", cem.curve.clone()))
        .save(dir.file("learning_curves"))
        .map_err(|e| e.to_string())?;
    Chart::new("New payload: held-out loss on the true arm vs training time")
        .x_label("wall-clock seconds (evaluation excluded)")
        .y_label("loss")
        .log_y(true)
        .series(Series::new("BPTT adapted (from the trained controller)", adapt.curve.clone()))
        .series(Series::new("CEM from scratch", cem_new.curve.clone()))
        .save(dir.file("adaptation_curves"))
        .map_err(|e| e.to_string())?;
    let h = cfg.horizon();
    for (plane, (a, b), stem) in
        [("top view (x, y)", (0, 1), "trajectory_xy"), ("side view (x, z)", (0, 2), "trajectory_xz")]
    {
        let mut chart = Chart::new(format!("Wrist paths of the trained controller, {plane}"))
            .x_label(if a == 0 { "x (m)" } else { "" })
            .y_label(if b == 1 { "y (m)" } else { "z (m)" });
        for (i, task) in eval.iter().take(4).enumerate() {
            let path = rollout(model, net, p, task, &h, true).path;
            chart =
                chart.series(Series::new(format!("path {i}"), path.iter().map(|v| (v[a], v[b])).collect()));
            let (tx, ty, d) = (task.target[a], task.target[b], 0.02);
            chart = chart.series(Series::new(
                format!("target {i}"),
                vec![(tx - d, ty), (tx + d, ty), (tx, ty), (tx, ty - d), (tx, ty + d)],
            ));
        }
        chart.save(dir.file(stem)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The trained controller's evaluation record: final distance per held-out task, sliced by
/// target region (left/right of the base, above/below the median target height), and the drift
/// of the target coordinates between training and held-out tasks.
fn evaluation(
    model: &Model<f64>,
    net: &Net,
    p: &[f64],
    (eval, train): (&[Task], &[Task]),
    h: &Horizon,
) -> adjoint_store::Evaluation {
    let d: Vec<f64> =
        eval.iter().map(|t| rollout(model, net, p, t, h, false).final_distance * 100.0).collect();
    let mut zs: Vec<f64> = eval.iter().map(|t| t.target[2]).collect();
    zs.sort_by(f64::total_cmp);
    let median_z = zs[zs.len() / 2];
    let rows: Vec<(String, Vec<f64>)> = eval
        .iter()
        .zip(&d)
        .map(|(t, &dist)| {
            let side = if t.target[1] >= 0.0 { "left" } else { "right" };
            let height = if t.target[2] >= median_z { "high" } else { "low" };
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
    ev.features = ["target x", "target y", "target z"]
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let col = |ts: &[Task]| ts.iter().map(|t| t.target[j]).collect::<Vec<f64>>();
            adjoint_store::FeatureDistribution::from_samples(name, &col(train), &col(eval), 5)
        })
        .collect();
    ev
}
