//! The reaching task, the controller, and the two ways of training it under one wall-clock
//! budget: backpropagation through time on the `Var` tape ([`train_bptt`]) and the
//! cross-entropy method on plain `f64` rollouts ([`train_cem`]).
//!
//! Task: from a start posture near a home pose, bring the end effector to a random reachable
//! target (the forward kinematics of a random joint configuration) within `steps · dt`
//! seconds, with little torque. The controller is a two-hidden-layer tanh MLP over
//! `sin q, cos q, q̇, error, target`, with outputs bounded by `tanh` at half the Puma's rated
//! torques. Its parameters are one flat `f64` vector; [`policy`] and [`rollout`] are generic
//! over [`Real`], so the same code gives `f64` costs (CEM, evaluation) and `Var` gradients.
//!
//! BPTT goes through adjoint-nn's one training path, [`train_step`]: the rollout's loss is a
//! `custom_vjp` tensor function whose forward pass records the rollouts on the scalar tape and
//! whose backward pass returns the tape's gradient, so the step gets the gradient-health
//! checks, the non-finite stop (`diverged at step N`), clipping by global norm and Adam. On top
//! of it: a horizon curriculum (short rollouts first, which keeps early gradients tame) and a
//! cosine learning-rate schedule, both driven by the fraction of the budget spent.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use adjoint_core::{custom_vjp, Tensor};
use adjoint_nn::optim::{Adam, AdamConfig};
use adjoint_nn::schedule::{Schedule, WarmupCosine};
use adjoint_nn::train::{train_step, StepConfig};
use adjoint_nn::NnError;
use adjoint_scalar::{Real, Tape, Var};
use adjoint_tensor::random::{self, Key};
use adjoint_tensor::DType;

use super::common::{self, metrics, DemoError};
use super::robot_sim::{Model, V3};

/// Half the Puma 560's rated joint torques (N m), the controller's bound.
pub const TORQUE_LIMIT: [f64; 6] = [48.8, 93.2, 44.7, 11.0, 12.5, 12.0];
const HOME: [f64; 6] = [0.0, 0.7, -2.0, 0.0, 0.0, 0.0];
const TARGET_SPREAD: [f64; 6] = [1.0, 0.5, 0.6, 0.5, 0.5, 0.5];
const START_SPREAD: f64 = 0.2;

/// One reaching task: a start posture (at rest) and a target point.
#[derive(Clone, Debug)]
pub struct Task {
    /// Start joint angles.
    pub q0: Vec<f64>,
    /// Target position of the end effector (m).
    pub target: V3<f64>,
}

/// `b` tasks drawn from `key`: starts within ±0.2 rad of home, targets the end effector of a
/// random configuration around home.
pub fn sample_tasks(model: &Model<f64>, key: &Key, b: usize) -> Vec<Task> {
    let n = model.dof();
    let (k1, k2) = key.split2();
    let around = |k: &Key, spread: &[f64]| -> Vec<f64> {
        let u = random::uniform(k, &[b, n], -1.0, 1.0, DType::F64).to_vec::<f64>();
        u.iter().enumerate().map(|(i, u)| u * spread[i % n] + HOME[i % n]).collect()
    };
    let q0 = around(&k1, &vec![START_SPREAD; n]);
    let qt = around(&k2, &TARGET_SPREAD[..n]);
    (0..b)
        .map(|i| Task {
            q0: q0[i * n..(i + 1) * n].to_vec(),
            target: model.end_effector(&qt[i * n..(i + 1) * n]),
        })
        .collect()
}

/// Layout of the controller's flat parameter vector: `w1 [F×H], b1 [H], w2 [H×H], b2 [H],
/// w3 [H×n], b3 [n]` (row-major, input index first).
#[derive(Clone, Copy, Debug)]
pub struct Net {
    /// Joints (outputs).
    pub n: usize,
    /// Hidden width.
    pub hidden: usize,
}

impl Net {
    /// Input features: `sin q, cos q, q̇, error, target`.
    pub fn features(&self) -> usize {
        3 * self.n + 6
    }

    /// The shapes of the six parameter blocks, in order.
    pub fn shapes(&self) -> [Vec<usize>; 6] {
        let (f, h, n) = (self.features(), self.hidden, self.n);
        [vec![f, h], vec![h], vec![h, h], vec![h], vec![h, n], vec![n]]
    }

    /// Number of parameters.
    pub fn dim(&self) -> usize {
        self.shapes().iter().map(|s| s.iter().product::<usize>()).sum()
    }

    /// Initial parameters: normal weights scaled by `1/√fan_in` (the last layer by 0.1 more, so
    /// the untrained controller is nearly passive), zero biases.
    pub fn init(&self, key: &Key) -> Vec<f64> {
        let ks = key.split(3);
        let mut out = Vec::with_capacity(self.dim());
        for (i, s) in self.shapes().iter().enumerate() {
            if s.len() == 1 {
                out.extend(std::iter::repeat_n(0.0, s[0]));
                continue;
            }
            let gain = if i == 4 { 0.1 } else { 1.0 } / (s[0] as f64).sqrt();
            out.extend(random::normal(&ks[i / 2], s, DType::F64).to_vec::<f64>().iter().map(|v| v * gain));
        }
        out
    }
}

fn dense<T: Real>(w: &[T], b: &[T], x: &[T], out: usize) -> Vec<T> {
    let mut y = b.to_vec();
    for (i, &xi) in x.iter().enumerate() {
        let row = &w[i * out..(i + 1) * out];
        for (yj, &wij) in y.iter_mut().zip(row) {
            *yj += xi * wij;
        }
    }
    y
}

/// The controller: torques for features `x`.
pub fn policy<T: Real>(net: &Net, p: &[T], x: &[T]) -> Vec<T> {
    let (f, h, n) = (net.features(), net.hidden, net.n);
    let mut at = 0;
    let mut take = |len: usize| {
        let s = &p[at..at + len];
        at += len;
        s
    };
    let (w1, b1, w2, b2, w3, b3) = (take(f * h), take(h), take(h * h), take(h), take(h * n), take(n));
    let a = dense(w1, b1, x, h).into_iter().map(T::tanh).collect::<Vec<_>>();
    let a = dense(w2, b2, &a, h).into_iter().map(T::tanh).collect::<Vec<_>>();
    dense(w3, b3, &a, n).into_iter().zip(TORQUE_LIMIT).map(|(o, l)| o.tanh() * T::lit(l)).collect()
}

/// Rollout settings.
#[derive(Clone, Copy, Debug)]
pub struct Horizon {
    /// Simulation steps.
    pub steps: usize,
    /// Time step (s).
    pub dt: f64,
    /// Weight of the torque penalty `mean((τ/τmax)²)`.
    pub torque_weight: f64,
}

/// What one rollout costs and where it ends.
pub struct Cost<T> {
    /// `mean |target − ee|²` over the last 30% of the steps, plus the weighted torque penalty.
    pub loss: T,
    /// `mean((τ/τmax)²)` over the steps.
    pub effort: f64,
    /// End-effector distance to the target after the last step (m).
    pub final_distance: f64,
    /// End-effector positions before each step (when asked for).
    pub path: Vec<V3<f64>>,
}

/// Run the controller on one task. `record` keeps the end-effector path.
pub fn rollout<T: Real>(
    model: &Model<T>,
    net: &Net,
    p: &[T],
    task: &Task,
    h: &Horizon,
    record: bool,
) -> Cost<T> {
    let n = model.dof();
    let c = T::lit;
    let mut q: Vec<T> = task.q0.iter().map(|&v| c(v)).collect();
    let mut qd = vec![T::zero(); n];
    let target = task.target.map(c);
    let settle = h.steps * 7 / 10;
    let (mut dist, mut effort) = (T::zero(), T::zero());
    let mut path = Vec::new();
    let mut x = Vec::with_capacity(net.features());
    for t in 0..h.steps {
        let k = model.kinematics(&q);
        let ee = k.origin[n];
        if record {
            path.push(ee.map(|v| v.value()));
        }
        let err: V3<T> = std::array::from_fn(|i| target[i] - ee[i]);
        x.clear();
        x.extend(q.iter().map(|v| v.sin()));
        x.extend(q.iter().map(|v| v.cos()));
        x.extend(qd.iter().map(|&v| v * c(0.3)));
        x.extend(err.iter().map(|&v| v * c(3.0)));
        x.extend(target);
        let tau = policy(net, p, &x);
        for (t, l) in tau.iter().zip(TORQUE_LIMIT) {
            let u = *t / c(l);
            effort += u * u;
        }
        if t >= settle {
            dist += err[0] * err[0] + err[1] * err[1] + err[2] * err[2];
        }
        model.step_at(&k, &mut q, &mut qd, &tau, h.dt);
    }
    let ee = model.end_effector(&q).map(|v| v.value());
    let final_distance = (0..3).map(|i| (ee[i] - task.target[i]).powi(2)).sum::<f64>().sqrt();
    let effort = effort / c((h.steps * n) as f64);
    let loss = dist / c((h.steps - settle) as f64) + effort * c(h.torque_weight);
    Cost { loss, effort: effort.value(), final_distance, path }
}

/// Mean loss, effort and final distance (cm) of `p` over `tasks` (plain `f64`).
pub fn evaluate(model: &Model<f64>, net: &Net, p: &[f64], tasks: &[Task], h: &Horizon) -> (f64, f64, f64) {
    let mut s = (0.0, 0.0, 0.0);
    for t in tasks {
        let c = rollout(model, net, p, t, h, false);
        s = (s.0 + c.loss, s.1 + c.effort, s.2 + c.final_distance * 100.0);
    }
    let k = tasks.len().max(1) as f64;
    (s.0 / k, s.1 / k, s.2 / k)
}

/// Mean loss over `tasks` and its gradient with respect to the controller's parameters: one tape
/// scope per task (so the tape never holds more than one rollout), gradients summed.
pub fn loss_and_grad(
    model: &Model<Var>,
    net: &Net,
    p: &[f64],
    tasks: &[Task],
    h: &Horizon,
) -> (f64, Vec<f64>) {
    let mut g = vec![0.0; p.len()];
    let mut gt = vec![0.0; p.len()];
    let mut loss = 0.0;
    for t in tasks {
        let tape = Tape::new();
        let vars = tape.vars(p);
        let c = rollout(model, net, &vars, t, h, false);
        tape.gradient_into(c.loss, &vars, &mut gt);
        loss += c.loss.value();
        for (a, b) in g.iter_mut().zip(&gt) {
            *a += b;
        }
    }
    let k = tasks.len().max(1) as f64;
    g.iter_mut().for_each(|v| *v /= k);
    (loss / k, g)
}

/// How long a method may train: wall-clock seconds (evaluation excluded) or, when `seconds` is
/// `None`, exactly `max_iters` iterations (deterministic: `--epochs` and `--quick`).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Budget {
    /// Wall-clock limit, if any.
    pub seconds: Option<f64>,
    /// Iteration limit.
    pub max_iters: usize,
}

impl Budget {
    /// Fraction spent after `it` iterations and `elapsed` training seconds.
    fn progress(&self, it: usize, elapsed: f64) -> f64 {
        let by_iters = it as f64 / self.max_iters.max(1) as f64;
        match self.seconds {
            Some(s) => by_iters.max(elapsed / s),
            None => by_iters,
        }
        .min(1.0)
    }
}

/// A training run's record: `(training seconds, held-out loss)` points, iterations done,
/// training time (evaluation excluded), and per-evaluation metrics for the registry.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Held-out loss against training time.
    pub curve: Vec<(f64, f64)>,
    /// Iterations (Adam steps or CEM generations) done.
    pub iters: usize,
    /// Training wall-clock (s).
    pub time_s: f64,
    /// `(iteration, metrics)` at each evaluation.
    pub points: Vec<(u64, std::collections::BTreeMap<String, f64>)>,
}

/// Evaluations per run (the learning curve's resolution).
const EVALS: usize = 25;

/// Drive `step(iteration, progress) -> train loss` until the budget is spent, evaluating
/// `eval()` at every 1/[`EVALS`] of progress with its time left out of the budget.
fn budgeted(
    label: &str,
    budget: &Budget,
    quiet: bool,
    mut step: impl FnMut(usize, f64) -> Result<f64, DemoError>,
    mut eval: impl FnMut() -> f64,
) -> Result<Trace, DemoError> {
    let pb = common::progress(EVALS as u64, label, quiet);
    let mut trace = Trace { curve: vec![(0.0, eval())], ..Default::default() };
    let start = Instant::now();
    let mut eval_time = 0.0;
    let mut next_eval = 1;
    loop {
        let elapsed = start.elapsed().as_secs_f64() - eval_time;
        let p = budget.progress(trace.iters, elapsed);
        if p >= 1.0 {
            break;
        }
        let loss = step(trace.iters, p)?;
        trace.iters += 1;
        let elapsed = start.elapsed().as_secs_f64() - eval_time;
        let p = budget.progress(trace.iters, elapsed);
        if p * EVALS as f64 >= next_eval as f64 || p >= 1.0 {
            next_eval = (p * EVALS as f64).floor() as usize + 1;
            let t0 = Instant::now();
            let e = eval();
            eval_time += t0.elapsed().as_secs_f64();
            trace.curve.push((elapsed, e));
            trace.points.push((trace.iters as u64, metrics([("train_loss", loss), ("eval_loss", e)])));
            pb.set_position((p * EVALS as f64) as u64);
            pb.set_message(format!("it {} loss {loss:.4} eval {e:.4}", trace.iters));
        }
    }
    pb.finish_and_clear();
    trace.time_s = start.elapsed().as_secs_f64() - eval_time;
    Ok(trace)
}

/// BPTT settings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BpttSettings {
    /// Peak Adam learning rate (cosine decay to 5% of it over the budget).
    pub lr: f64,
    /// Tasks per gradient.
    pub batch: usize,
    /// Clip the gradient to this global norm.
    pub clip: f64,
    /// Curriculum: the horizon grows linearly from this fraction of the full one to all of it
    /// over the first half of the budget.
    pub start_fraction: f64,
}

/// What every training run shares: its name (progress bar, messages), the controller's
/// layout, the rollout, the budget, and whether to draw progress.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    /// Name in messages and on the progress bar.
    pub label: &'a str,
    /// The controller's layout.
    pub net: &'a Net,
    /// The full rollout.
    pub h: &'a Horizon,
    /// How long to train.
    pub budget: &'a Budget,
    /// No progress bar.
    pub quiet: bool,
}

/// Train `p` by BPTT within the run's budget on `model`; `tasks(it)` draws iteration `it`'s
/// batch and `eval(p)` scores the learning curve.
pub fn train_bptt(
    run: Run,
    model: &Model<Var>,
    p: &mut Vec<f64>,
    s: &BpttSettings,
    tasks: impl Fn(usize) -> Vec<Task>,
    eval: impl Fn(&[f64]) -> f64,
) -> Result<Trace, DemoError> {
    let Run { label, net, h, budget, quiet } = run;
    // `custom_vjp` keeps its functions (a jitted caller may hold them), so they own what they
    // read: the batch and horizon of the current iteration are shared through an `Rc`.
    let current: Rc<RefCell<(Vec<Task>, Horizon)>> = Rc::new(RefCell::new((Vec::new(), *h)));
    let (fwd_current, bwd_current) = (Rc::clone(&current), Rc::clone(&current));
    let (fwd_model, bwd_model) = (lift_model(model), model.clone());
    let net_copy = *net;
    let loss_fn = custom_vjp(
        move |x: &Tensor| {
            let (ts, hz) = &*fwd_current.borrow();
            let pv = x.to_vec::<f64>();
            let total: f64 = ts.iter().map(|t| rollout(&fwd_model, &net_copy, &pv, t, hz, false).loss).sum();
            Tensor::scalar(total / ts.len().max(1) as f64)
        },
        move |x: &Tensor| {
            let (ts, hz) = &*bwd_current.borrow();
            let (l, g) = loss_and_grad(&bwd_model, &net_copy, &x.to_vec::<f64>(), ts, hz);
            (Tensor::scalar(l), Tensor::from_vec(g, &[x.numel()]))
        },
        |g: &Tensor, ct: &Tensor| g * ct,
    );
    let mut params = Tensor::from_vec(p.clone(), &[p.len()]);
    let mut opt = Adam::new(&params, AdamConfig { lr: s.lr, ..Default::default() });
    let sched = WarmupCosine { base_lr: s.lr, total_steps: 1000, min_lr: 0.05 * s.lr, ..Default::default() };
    let cfg = StepConfig { clip_grad_norm: Some(s.clip), ..Default::default() };
    let params_cell = RefCell::new(params.clone());
    let trace = budgeted(
        label,
        budget,
        quiet,
        |it, progress| {
            let frac = (s.start_fraction + (1.0 - s.start_fraction) * (2.0 * progress)).min(1.0);
            let steps = ((h.steps as f64 * frac).round() as usize).max(4);
            *current.borrow_mut() = (tasks(it), Horizon { steps, ..*h });
            sched.apply(&mut opt, (progress * 1000.0) as usize);
            let out = train_step(&*params_cell.borrow(), &mut opt, it, &cfg, |x: &Tensor| loss_fn(x))
                .map_err(|e| diverged(label, e))?;
            *params_cell.borrow_mut() = out.model;
            Ok(out.stats.loss)
        },
        || eval(&params_cell.borrow().to_vec::<f64>()),
    )?;
    params = params_cell.into_inner();
    *p = params.to_vec::<f64>();
    Ok(trace)
}

/// The `f64` model with the same constants as a `Var` one (constants carry no tape nodes).
fn lift_model(model: &Model<Var>) -> Model<f64> {
    model.map(|v| v.value())
}

/// A failed training step as the demo's error: a non-finite loss or gradient stops the run,
/// which is recorded as failed with `diverged_at_step`.
fn diverged(label: &str, e: NnError) -> DemoError {
    match e {
        NnError::NonFinite { what, step, detail } => DemoError {
            message: format!(
                "robot {label} diverged at step {step}: non-finite {what} ({detail}); stopped, and the run is recorded as failed (try a lower --lr)"
            ),
            metrics: metrics([("diverged_at_step", step as f64)]),
        },
        other => DemoError::from(format!("robot {label}: {other}")),
    }
}

/// CEM settings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CemSettings {
    /// Candidates per generation.
    pub population: usize,
    /// Elites kept.
    pub elites: usize,
    /// Tasks each candidate is scored on.
    pub batch: usize,
    /// Initial standard deviation around the starting parameters.
    pub init_std: f64,
}

/// Cross-entropy method over the controller's parameters from `p` (forward `f64` rollouts
/// only), sampling from `key`; `tasks` and `eval` as for [`train_bptt`].
pub fn train_cem(
    run: Run,
    model: &Model<f64>,
    p: &mut Vec<f64>,
    s: &CemSettings,
    key: &Key,
    tasks: impl Fn(usize) -> Vec<Task>,
    eval: impl Fn(&[f64]) -> f64,
) -> Result<Trace, DemoError> {
    let Run { label, net, h, budget, quiet } = run;
    let dim = p.len();
    let mean = RefCell::new(p.clone());
    let mut std = vec![s.init_std; dim];
    let trace = budgeted(
        label,
        budget,
        quiet,
        |generation, progress| {
            let eps = random::normal(&key.fold_in(generation as u64), &[s.population, dim], DType::F64)
                .to_vec::<f64>();
            let m = mean.borrow().clone();
            let rows: Vec<Vec<f64>> = (0..s.population)
                .map(|i| (0..dim).map(|j| m[j] + std[j] * eps[i * dim + j]).collect())
                .collect();
            let ts = tasks(generation);
            let losses: Vec<f64> = rows
                .iter()
                .map(|r| {
                    ts.iter().map(|t| rollout(model, net, r, t, h, false).loss).sum::<f64>() / ts.len() as f64
                })
                .collect();
            let mut order: Vec<usize> = (0..rows.len()).collect();
            order.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]));
            let elites = &order[..s.elites];
            let mut next = vec![0.0; dim];
            for j in 0..dim {
                let mu = elites.iter().map(|&e| rows[e][j]).sum::<f64>() / elites.len() as f64;
                let var =
                    elites.iter().map(|&e| (rows[e][j] - mu).powi(2)).sum::<f64>() / elites.len() as f64;
                next[j] = mu;
                std[j] = var.sqrt() + 0.01 * (1.0 - progress);
            }
            *mean.borrow_mut() = next;
            let best = losses[order[0]];
            common::check_finite(&format!("robot {label}"), generation, best)?;
            Ok(best)
        },
        || eval(&mean.borrow()),
    )?;
    *p = mean.into_inner();
    Ok(trace)
}
