//! `adjoint demo meta`: model-agnostic meta-learning (MAML, Finn et al. 2017) on the sinusoid
//! regression family, against first-order MAML and a network pretrained on all tasks jointly.
//!
//! Tasks are `y = A sin(x − φ)` with `A ∈ [0.1, 5]`, `φ ∈ [0, π]`, `x ∈ [−5, 5]`; each gives
//! `K = 10` support points. The network is a 1-40-40-1 ReLU MLP. Meta-training: one inner SGD
//! step of rate α = 0.01 on each task's support points, the query loss after it averaged over a
//! meta-batch of tasks, and Adam on that (the outer step is `adjoint_nn::train::train_step`:
//! gradient-health checks, and a non-finite loss stops the run as diverged). MAML differentiates
//! through the inner step (second order: `grad` of a loss that contains `grad`); FOMAML treats
//! the inner gradient as a constant; the pretrained baseline minimises the regression loss on
//! the same stream of tasks with one shared network. All three see the same tasks, the same
//! number of outer steps and the same outer optimizer.
//!
//! Evaluation, as in the paper: 1,000 held-out tasks; each model is fine-tuned on the task's
//! `K` points with 1 and 10 SGD steps of rate 0.01 and scored by the MSE on 100 fresh points of
//! the task. The figure `sinusoid_fit.png` is the paper's Figure 2 for one held-out task.
//! The maths (model, inner step, objectives, batching over tasks) is in [`maml`](super::maml).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use adjoint_core::{DType, Tensor};
use adjoint_nn::optim::{Adam, AdamConfig};
use adjoint_nn::train::{train_step, Chart, Series, StepConfig};
use adjoint_tensor::random::Key;
use serde::Serialize;
use serde_json::json;

use super::common::{self, metrics, Common, DemoError, MetricsLog, Outcome, RunDir};
use super::maml::{fomaml_loss, inner_grad, joint_loss, meta_loss_vmap, mse_after_steps, Mlp, Tasks};

/// The demo trains in f32 (the finite-difference test of the meta-gradient runs in f64).
const DT: DType = DType::F32;

/// Settings of the meta-learning demo (saved as `config.json`).
#[derive(Clone, Debug, Serialize)]
pub struct MetaConfig {
    /// Outer (meta) iterations of each method.
    pub meta_iters: usize,
    /// Tasks per meta-batch.
    pub meta_batch: usize,
    /// Adam learning rate of the outer step.
    pub meta_lr: f64,
    /// Inner SGD rate α (meta-training and test-time fine-tuning).
    pub inner_lr: f64,
    /// Shots: support points per task (the query set during meta-training has as many).
    pub k: usize,
    /// Hidden width of the 1-h-h-1 MLP.
    pub hidden: usize,
    /// Held-out evaluation tasks.
    pub eval_tasks: usize,
    /// Query points per held-out task.
    pub eval_points: usize,
    /// Inner steps at test time (MSE reported after 1 and after this many).
    pub eval_steps: usize,
    /// Seed.
    pub seed: u64,
}

impl MetaConfig {
    /// The defaults, adjusted by the common flags (`--epochs`: meta-iterations, `--lr`: the
    /// outer Adam rate).
    pub fn from_common(c: &Common) -> MetaConfig {
        let mut cfg = MetaConfig {
            meta_iters: 20_000,
            meta_batch: 25,
            meta_lr: 1e-3,
            inner_lr: 0.01,
            k: 10,
            hidden: 40,
            eval_tasks: 1000,
            eval_points: 100,
            eval_steps: 10,
            seed: c.seed,
        };
        if c.quick {
            cfg.meta_iters = 100;
            cfg.eval_tasks = 200;
            cfg.eval_points = 50;
        }
        if let Some(e) = c.epochs {
            cfg.meta_iters = e;
        }
        if let Some(lr) = c.lr {
            cfg.meta_lr = lr;
        }
        cfg
    }
}

/// The three ways of training the initial network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Maml,
    Fomaml,
    Pretrained,
}

impl Method {
    const ALL: [Method; 3] = [Method::Maml, Method::Fomaml, Method::Pretrained];
    fn key(self) -> &'static str {
        match self {
            Method::Maml => "maml",
            Method::Fomaml => "fomaml",
            Method::Pretrained => "pretrained",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Method::Maml => "MAML (second order)",
            Method::Fomaml => "first-order MAML",
            Method::Pretrained => "pretrained (joint regression)",
        }
    }
}

/// One trained method.
struct Trained {
    model: Mlp,
    /// `(iteration, training loss)` at each logged iteration.
    curve: Vec<(f64, f64)>,
    /// Wall-clock seconds of training.
    seconds: f64,
}

/// Iterations between logged training losses.
fn log_every(cfg: &MetaConfig) -> usize {
    (cfg.meta_iters / 60).max(1)
}

/// Train `init` with one method on the task stream of `key` (the same for every method).
fn train(
    method: Method,
    init: &Mlp,
    cfg: &MetaConfig,
    common: &Common,
    log: &mut MetricsLog,
    key: &Key,
) -> Result<Trained, DemoError> {
    let mut theta = init.clone();
    let mut opt = Adam::new(&theta, AdamConfig { lr: cfg.meta_lr, ..Default::default() });
    let alpha = Tensor::scalar_of(cfg.inner_lr, DT);
    let step_cfg = StepConfig::default();
    let pb = common::progress(cfg.meta_iters as u64, method.key(), common.quiet);
    let (mut curve, mut window, mut seen) = (Vec::new(), 0.0, 0usize);
    let start = Instant::now();
    for it in 0..cfg.meta_iters {
        let tasks = Tasks::sample(&key.fold_in(it as u64), cfg.meta_batch, cfg.k, cfg.k, DT);
        let out = match method {
            Method::Maml => {
                train_step(&theta, &mut opt, it, &step_cfg, |t: &Mlp| meta_loss_vmap(t, &tasks, &alpha))
            }
            Method::Fomaml => {
                let g = inner_grad(&theta.per_task(tasks.len()), &tasks.xs, &tasks.ys);
                train_step(&theta, &mut opt, it, &step_cfg, |t: &Mlp| fomaml_loss(t, &g, &tasks, &alpha))
            }
            Method::Pretrained => {
                train_step(&theta, &mut opt, it, &step_cfg, |t: &Mlp| joint_loss(t, &tasks))
            }
        }
        .map_err(|e| common::step_error(&format!("meta ({})", method.key()), e))?;
        theta = out.model;
        window += out.stats.loss;
        seen += 1;
        pb.inc(1);
        if (it + 1) % log_every(cfg) == 0 || it + 1 == cfg.meta_iters {
            let loss = window / seen as f64;
            (window, seen) = (0.0, 0);
            pb.set_message(format!("loss {loss:.3}"));
            curve.push(((it + 1) as f64, loss));
            log.log(json!({"method": method.key(), "iter": it + 1, "train_loss": loss}))?;
        }
    }
    pb.finish_and_clear();
    Ok(Trained { model: theta, curve, seconds: start.elapsed().as_secs_f64() })
}

/// The outcome of the demo, as printed and saved.
#[derive(Clone, Debug, Serialize)]
pub struct MetaReport {
    /// Method name (`maml`, `fomaml`, `pretrained`) → `mse_0_steps`, `mse_1_step`,
    /// `mse_10_steps` (mean over the held-out tasks), `train_time_s`, `meta_iterations`.
    pub methods: BTreeMap<String, BTreeMap<String, f64>>,
    /// Method name → mean held-out MSE after 0, 1, …, `eval_steps` inner steps.
    pub mse_by_steps: BTreeMap<String, Vec<f64>>,
    /// Held-out tasks and query points per task.
    pub eval_tasks: usize,
    /// Query points per held-out task.
    pub eval_points: usize,
}

/// The configuration this demo runs with, as recorded.
pub fn config(common: &Common) -> serde_json::Value {
    json!(MetaConfig::from_common(common))
}

/// The demo reads no data files: its tasks are drawn from the seed.
pub fn data_files() -> [std::path::PathBuf; 0] {
    []
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Run the demo.
pub fn run(common: &Common) -> Result<Outcome, DemoError> {
    let cfg = MetaConfig::from_common(common);
    let dir = RunDir::create(&common.out, "meta")?;
    dir.write_json("config.json", &json!({ "demo": "meta", "config": cfg, "data": [] }))?;
    let mut log = MetricsLog::create(&dir)?;
    let key = Key::new(cfg.seed);
    let init = Mlp::new(&key.fold_in(1), cfg.hidden, DT);
    let mut trained = Vec::new();
    for m in Method::ALL {
        trained.push((m, train(m, &init, &cfg, common, &mut log, &key.fold_in(2))?));
    }
    log.finish()?;

    // Held-out tasks: a stream no training step draws from.
    let eval = Tasks::sample(&key.fold_in(3), cfg.eval_tasks, cfg.k, cfg.eval_points, DT);
    let mut methods = BTreeMap::new();
    let mut mse_by_steps = BTreeMap::new();
    let mut per_task = BTreeMap::new();
    for (m, t) in &trained {
        let by_step = mse_after_steps(&t.model, &eval, cfg.inner_lr, cfg.eval_steps);
        let means: Vec<f64> = by_step.iter().map(|v| mean(v)).collect();
        methods.insert(
            m.key().to_string(),
            metrics([
                ("mse_0_steps", means[0]),
                ("mse_1_step", means[1.min(cfg.eval_steps)]),
                ("mse_10_steps", means[cfg.eval_steps.min(10)]),
                ("train_time_s", t.seconds),
                ("meta_iterations", cfg.meta_iters as f64),
            ]),
        );
        mse_by_steps.insert(m.key().to_string(), means);
        per_task.insert(m.key(), by_step);
    }
    let report =
        MetaReport { methods, mse_by_steps, eval_tasks: cfg.eval_tasks, eval_points: cfg.eval_points };
    let rows: Vec<Vec<String>> = trained
        .iter()
        .map(|(m, _)| {
            let r = &report.methods[m.key()];
            vec![
                m.label().to_string(),
                format!("{:.3}", r["mse_0_steps"]),
                format!("{:.3}", r["mse_1_step"]),
                format!("{:.3}", r["mse_10_steps"]),
                format!("{:.1}", r["train_time_s"]),
            ]
        })
        .collect();
    let table = common::table(
        &["method", "MSE before", "MSE after 1 step", "MSE after 10 steps", "train time (s)"],
        &rows,
    );
    let summary = format!(
        "Sinusoid regression, K = {} shots: mean squared error on {} held-out tasks ({} query points each) \
         after fine-tuning on the K points with SGD (rate {}). Each method: {} outer Adam steps (rate {}) \
         on meta-batches of {} tasks; MAML and FOMAML with one inner step of rate {} during training.\n\n{table}\n\
         Paper reference (70,000 meta-iterations): MAML about 0.3-0.6 after 1 step, pretrained about 2-3.\n",
        cfg.k,
        cfg.eval_tasks,
        cfg.eval_points,
        cfg.inner_lr,
        cfg.meta_iters,
        cfg.meta_lr,
        cfg.meta_batch,
        cfg.inner_lr
    );
    dir.write("results.md", &summary)?;
    dir.write_json("results.json", &report)?;

    let mut checkpoints = Vec::new();
    for (m, t) in &trained {
        let meta = BTreeMap::from([
            ("demo".to_string(), "meta".to_string()),
            ("method".to_string(), m.key().to_string()),
            ("seed".to_string(), cfg.seed.to_string()),
        ]);
        let file = dir.file(&format!("{}.safetensors", m.key()));
        adjoint_nn::checkpoint::save(&file, &t.model, &meta).map_err(|e| e.to_string())?;
        checkpoints.push((file, format!("{}-init", m.key())));
    }

    let mut chart =
        Chart::new("Meta-training loss (query loss after the inner step; joint MSE for pretrained)")
            .x_label("outer iteration")
            .y_label("loss")
            .log_y(true);
    let mut steps_chart = Chart::new(format!("Held-out MSE vs test-time SGD steps (K = {})", cfg.k))
        .x_label("inner steps")
        .y_label("MSE")
        .log_y(true);
    for (m, t) in &trained {
        chart = chart.series(Series::new(m.label(), t.curve.clone()));
        let pts = report.mse_by_steps[m.key()].iter().enumerate().map(|(i, v)| (i as f64, *v)).collect();
        steps_chart = steps_chart.series(Series::new(m.label(), pts));
    }
    chart.save(dir.file("training_loss")).map_err(|e| e.to_string())?;
    steps_chart.save(dir.file("mse_vs_steps")).map_err(|e| e.to_string())?;
    let models: Vec<(&str, &Mlp)> =
        trained.iter().filter(|(m, _)| *m != Method::Fomaml).map(|(m, t)| (m.label(), &t.model)).collect();
    fit_png(&dir.file("sinusoid_fit.png"), &eval, 0, &models, &cfg)?;

    println!("meta: {summary}");
    println!("meta: run folder {}", dir.path.display());
    let mut final_metrics = BTreeMap::new();
    for (m, r) in &report.methods {
        for k in ["mse_0_steps", "mse_1_step", "mse_10_steps"] {
            final_metrics.insert(format!("{m}_{k}"), r[k]);
        }
    }
    let mut epochs: BTreeMap<u64, BTreeMap<String, f64>> = BTreeMap::new();
    for (m, t) in &trained {
        for (it, loss) in &t.curve {
            epochs.entry(*it as u64).or_default().insert(format!("{}_train_loss", m.key()), *loss);
        }
    }
    let ev = evaluation(&per_task["maml"], &eval, &cfg);
    Ok(Outcome {
        dir,
        data_files: Vec::new(),
        epochs: epochs.into_iter().collect(),
        final_metrics,
        checkpoints,
        evaluations: vec![("maml-init".into(), ev)],
    })
}

/// The MAML initialisation's evaluation record: post-update MSE (1 step) per held-out task,
/// sliced by amplitude band (MSE grows with the amplitude), and the drift of amplitude and
/// phase between a training meta-batch stream and the held-out tasks.
fn evaluation(by_step: &[Vec<f64>], eval: &Tasks, cfg: &MetaConfig) -> adjoint_store::Evaluation {
    let one = &by_step[1.min(by_step.len() - 1)];
    let ten = &by_step[cfg.eval_steps.min(10).min(by_step.len() - 1)];
    let mut ev = adjoint_store::Evaluation::new(
        "sinusoid regression, held-out tasks (MAML initialisation, K-shot SGD fine-tuning)",
        "mse_1_step",
        false,
        metrics([("mse_1_step", mean(one)), ("mse_10_steps", mean(ten))]),
    );
    let rows: Vec<(String, Vec<f64>)> = eval
        .amplitude
        .iter()
        .zip(one.iter().zip(ten))
        .map(|(a, (o, t))| {
            let band = super::evaluate::band(*a, (5.0 / 3.0, 10.0 / 3.0), ["small", "medium", "large"]);
            (band.to_string(), vec![*o, *t])
        })
        .collect();
    ev.slices = super::evaluate::mean_slices("amplitude", &["mse_1_step", "mse_10_steps"], &rows);
    let train = Tasks::sample(&Key::new(cfg.seed).fold_in(2).fold_in(0), eval.len(), 1, 1, DT);
    ev.features = vec![
        adjoint_store::FeatureDistribution::from_samples("amplitude", &train.amplitude, &eval.amplitude, 5),
        adjoint_store::FeatureDistribution::from_samples("phase", &train.phase, &eval.phase, 5),
    ];
    ev
}

/// Figure 2 of the paper for held-out task `i`: for each model, a panel with the true
/// function, the K support points, and the model before and after 1 and 10 SGD steps.
fn fit_png(
    path: &Path,
    eval: &Tasks,
    i: usize,
    models: &[(&str, &Mlp)],
    cfg: &MetaConfig,
) -> Result<(), String> {
    use plotters::prelude::*;
    adjoint_nn::train::register_fonts().map_err(|e| e.to_string())?;
    let task = eval.one(i);
    let n = 200;
    let grid: Vec<f64> = (0..n).map(|j| -5.0 + 10.0 * j as f64 / (n - 1) as f64).collect();
    let xg = Tensor::from_vec(grid.clone(), &[1, n, 1]).cast(DT);
    let truth = task.truth(0, &grid);
    let support: Vec<(f64, f64)> = task
        .xs
        .cast(DType::F64)
        .to_vec::<f64>()
        .into_iter()
        .zip(task.ys.cast(DType::F64).to_vec::<f64>())
        .collect();
    let alpha = Tensor::scalar_of(cfg.inner_lr, DT);
    let root = BitMapBackend::new(path, (1400, 520)).into_drawing_area();
    let e = |x: DrawingAreaErrorKind<_>| format!("{}: {x}", path.display());
    root.fill(&WHITE).map_err(e)?;
    let panels = root.split_evenly((1, models.len()));
    let colors = [RGBColor(44, 160, 44), RGBColor(255, 127, 14), RGBColor(148, 103, 189)];
    for ((name, model), area) in models.iter().zip(&panels) {
        let mut c = ChartBuilder::on(area)
            .caption(format!("{name}, K = {}", cfg.k), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(-5.0..5.0, -6.0..6.0)
            .map_err(e)?;
        c.configure_mesh().label_style(("sans-serif", 13)).draw().map_err(e)?;
        let line = |ys: Vec<f64>| grid.iter().copied().zip(ys).collect::<Vec<(f64, f64)>>();
        c.draw_series(LineSeries::new(line(truth.clone()), RED.stroke_width(3)))
            .map_err(e)?
            .label("ground truth")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(3)));
        let mut p = model.per_task(1);
        let mut done = 0;
        for (j, steps) in [0usize, 1, cfg.eval_steps].into_iter().enumerate() {
            p = super::maml::adapt(&p, &task.xs, &task.ys, &alpha, steps - done);
            done = steps;
            let ys = p.forward(&xg).cast(DType::F64).to_vec::<f64>();
            let color = colors[j];
            let label = match steps {
                0 => "pre-update".to_string(),
                1 => "1 grad step".to_string(),
                s => format!("{s} grad steps"),
            };
            c.draw_series(LineSeries::new(line(ys), color.stroke_width(2)))
                .map_err(e)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        c.draw_series(support.iter().map(|&pt| TriangleMarker::new(pt, 7, BLUE.filled())))
            .map_err(e)?
            .label("K points used for the update")
            .legend(|(x, y)| TriangleMarker::new((x + 9, y), 6, BLUE.filled()));
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)
}
