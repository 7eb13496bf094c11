//! [`Trainer`]: epochs, progress, validation, early stopping, best checkpoint, JSONL, plots.
//!
//! The trainer is a small state machine rather than one closed `fit` call, so that every loop
//! shape can use it: [`Trainer::fit`] for the common epochs-over-a-loader case,
//! [`Trainer::train_epoch`] + [`Trainer::end_epoch`] when something must happen between epochs
//! (a learning-rate schedule, custom validation), and [`Trainer::step`] for loops with no
//! dataset at all (online updates as data arrives, a controller trained through a simulator).
//! All three share the step counter, the health checks, the JSONL log and the history that
//! [`Trainer::finish`] plots.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use adjoint_core::{Params, Tensor};
use adjoint_tensor::random::Key;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::log::{epoch_record, step_record, EpochPoint, History, JsonlLogger, Metrics, StepPoint};
use super::step::{train_step_with_aux, NonFinitePolicy, StepConfig, StepOutput, StepStats};
use crate::data::{batch_len, DataLoader, Dataset};
use crate::error::{NnError, Result};
use crate::optim::Optimizer;
use crate::schedule::Schedule;

/// Whether the monitored metric should go down or up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// Lower is better (losses).
    Minimize,
    /// Higher is better (accuracy).
    Maximize,
}

/// Stop when the monitored metric has not improved by more than `min_delta` for `patience`
/// epochs in a row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStopping {
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
}

/// What a loss function may need to know about its step (see [`Trainer::fit_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepInfo {
    /// The step being computed (1-based).
    pub step: usize,
    /// Its epoch (1-based).
    pub epoch: usize,
    /// A key for this step's randomness (dropout masks): `Key::new(seed).fold_in(step)`, with
    /// the trainer's [`seed`](Trainer::seed).
    pub key: Key,
}

/// How often a learning-rate [`Schedule`] advances (see [`Trainer::schedule`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// `lr_at(t)` with `t` the number of updates so far (warm-up, cosine, one-cycle).
    Step,
    /// `lr_at(e)` with `e` the number of epochs ended so far (step decay, plateau).
    Epoch,
}

/// Settings of a [`Trainer`] (also settable with its builder methods).
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Epochs [`Trainer::fit`] runs at most (default 10).
    pub epochs: usize,
    /// Per-step settings: clipping, non-finite policy, gradient-health thresholds (default:
    /// [`StepConfig::default`] with parameter statistics every 100 steps).
    pub step: StepConfig,
    /// Epoch metric that decides the best model and early stopping (default `"val_loss"`).
    pub monitor: String,
    /// Direction of `monitor` (default [`Goal::Minimize`]).
    pub goal: Goal,
    /// Early stopping (default off).
    pub early_stopping: Option<EarlyStopping>,
    /// Save the best model here (safetensors, via [`crate::checkpoint::save`]).
    pub checkpoint_best: Option<PathBuf>,
    /// Write JSONL records here.
    pub jsonl: Option<PathBuf>,
    /// Write `loss.{png,svg}` and `metrics.{png,svg}` here in [`Trainer::finish`].
    pub plot_dir: Option<PathBuf>,
    /// No progress bar and no epoch summaries (warnings are still printed once each).
    pub quiet: bool,
    /// Write a step record every this many steps (records with warnings, skips or parameter
    /// statistics are always written). Default 1.
    pub log_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            step: StepConfig { param_stats_every: 100, ..StepConfig::default() },
            monitor: "val_loss".into(),
            goal: Goal::Minimize,
            early_stopping: None,
            checkpoint_best: None,
            jsonl: None,
            plot_dir: None,
            quiet: false,
            log_every: 1,
        }
    }
}

/// The best model so far by the monitored metric.
#[derive(Clone, Debug)]
pub struct Best<M> {
    /// Epoch (1-based) where it was reached.
    pub epoch: usize,
    /// Value of the monitored metric.
    pub value: f64,
    /// The parameters at the end of that epoch.
    pub model: M,
}

/// What [`Trainer::end_epoch`] decided.
#[derive(Clone, Debug)]
pub struct EpochEnd {
    /// The epoch (1-based) that ended.
    pub epoch: usize,
    /// Its metrics, including `train_loss`, `examples_per_sec` (training time only) and
    /// `epoch_seconds` (from the epoch's first step to this call, validation included).
    pub metrics: Metrics,
    /// The monitored metric improved (a new best model).
    pub improved: bool,
    /// Early stopping says stop.
    pub stop: bool,
}

/// The result of a run.
pub struct FitResult<M> {
    /// Parameters after the last step.
    pub model: M,
    /// The best model by the monitored metric, if the metric was ever reported.
    pub best: Option<Best<M>>,
    /// Everything recorded.
    pub history: History,
    /// Training ended by early stopping.
    pub stopped_early: bool,
    /// Steps taken.
    pub steps: usize,
    /// Files written by [`Trainer::finish`] (plots).
    pub files: Vec<PathBuf>,
}

impl<M> FitResult<M> {
    /// The best model, or the final one when no best was recorded.
    pub fn best_model(&self) -> &M {
        self.best.as_ref().map_or(&self.model, |b| &b.model)
    }
}

/// Runs training with progress, validation, early stopping, checkpoints, logs and plots.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::data::{DataLoader, TensorDataset};
/// use adjoint_nn::optim::{Sgd, SgdConfig};
/// use adjoint_nn::train::{Goal, Metrics, Trainer};
///
/// // y = 2x: fit w.
/// let x = Tensor::linspace(-1.0, 1.0, 32).reshape(&[32, 1]);
/// let y = &x * 2.0;
/// let mut loader = DataLoader::new(TensorDataset::new((x.clone(), y.clone())), 8).shuffle(0);
/// let w = Tensor::zeros(&[1, 1]);
/// let mut opt = Sgd::new(&w, SgdConfig { lr: 0.5, ..Default::default() });
/// let mut trainer = Trainer::new().epochs(20).quiet(true).monitor("val_loss", Goal::Minimize);
/// let out = trainer.fit(w, &mut opt, &mut loader,
///     |w: &Tensor, (x, y): &(Tensor, Tensor)| (x.matmul(w) - y).square().mean(),
///     |w: &Tensor| Metrics::from([("val_loss".into(), (x.matmul(w) - &y).square().mean().item())]))?;
/// assert!((out.model.item() - 2.0).abs() < 1e-3);
/// # Ok::<(), adjoint_nn::NnError>(())
/// ```
pub struct Trainer<M> {
    /// Settings.
    pub config: TrainConfig,
    step: usize,
    epoch: usize,
    start: Instant,
    logger: Option<JsonlLogger>,
    history: History,
    best: Option<Best<M>>,
    stale: usize,
    stopped_early: bool,
    warned: HashSet<String>,
    warning_counts: BTreeMap<String, usize>,
    skipped: usize,
    ep: EpochAcc,
    schedule: Option<(Box<dyn Schedule + Send>, Every)>,
    seed: u64,
}

struct EpochAcc {
    loss_sum: f64,
    loss_n: usize,
    examples: usize,
    /// Seconds spent in training steps and loading their batches (not in validation).
    train_secs: f64,
    start: Option<Instant>,
}

impl EpochAcc {
    fn new() -> Self {
        EpochAcc { loss_sum: 0.0, loss_n: 0, examples: 0, train_secs: 0.0, start: None }
    }
}

impl<M: Params> Default for Trainer<M> {
    fn default() -> Self {
        Self::with_config(TrainConfig::default())
    }
}

impl<M: Params> Trainer<M> {
    /// A trainer with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// A trainer with these settings.
    pub fn with_config(config: TrainConfig) -> Self {
        Trainer {
            config,
            step: 0,
            epoch: 0,
            start: Instant::now(),
            logger: None,
            history: History::default(),
            best: None,
            stale: 0,
            stopped_early: false,
            warned: HashSet::new(),
            warning_counts: BTreeMap::new(),
            skipped: 0,
            ep: EpochAcc::new(),
            schedule: None,
            seed: 0,
        }
    }

    /// Seed of the per-step keys handed to loss functions ([`StepInfo::key`]; default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// What the next step will be: its number, epoch and key (for [`step`](Self::step) closures
    /// that need randomness, e.g. `Ctx::train(trainer.next_step_info().key)`).
    pub fn next_step_info(&self) -> StepInfo {
        let step = self.step + 1;
        StepInfo { step, epoch: self.epoch + 1, key: Key::new(self.seed).fold_in(step as u64) }
    }

    /// Drive the optimizer's learning rate (and momentum, for schedules that cycle it) with
    /// `schedule`: before every step the trainer sets `lr_at(t)`, with `t` counted in steps or
    /// epochs; after every epoch it feeds the monitored metric to
    /// [`Schedule::observe`] (which reduce-on-plateau uses).
    pub fn schedule(mut self, schedule: impl Schedule + Send + 'static, every: Every) -> Self {
        self.schedule = Some((Box::new(schedule), every));
        self
    }

    fn apply_schedule<O: Optimizer>(&self, opt: &mut O) {
        if let Some((s, every)) = &self.schedule {
            let t = match every {
                Every::Step => self.step,
                Every::Epoch => self.epoch,
            };
            opt.set_lr(s.lr_at(t));
            if let Some(m) = s.momentum_at(t) {
                opt.set_momentum(m);
            }
        }
    }

    /// Epochs for [`fit`](Self::fit).
    pub fn epochs(mut self, n: usize) -> Self {
        self.config.epochs = n;
        self
    }
    /// Hide the progress bar and epoch summaries.
    pub fn quiet(mut self, yes: bool) -> Self {
        self.config.quiet = yes;
        self
    }
    /// Log records to this JSONL file.
    pub fn log_jsonl(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.jsonl = Some(path.into());
        self
    }
    /// Draw loss and metric curves into this directory at the end.
    pub fn plots(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.plot_dir = Some(dir.into());
        self
    }
    /// Save the best model to this safetensors file.
    pub fn checkpoint_best(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.checkpoint_best = Some(path.into());
        self
    }
    /// The metric that decides the best model and early stopping.
    pub fn monitor(mut self, metric: &str, goal: Goal) -> Self {
        self.config.monitor = metric.to_string();
        self.config.goal = goal;
        self
    }
    /// Stop after `patience` epochs without an improvement larger than `min_delta`.
    pub fn early_stopping(mut self, patience: usize, min_delta: f64) -> Self {
        self.config.early_stopping = Some(EarlyStopping { patience, min_delta });
        self
    }
    /// Clip gradients to this global norm.
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.config.step.clip_grad_norm = Some(max_norm);
        self
    }
    /// Non-finite loss/gradient policy.
    pub fn non_finite(mut self, policy: NonFinitePolicy) -> Self {
        self.config.step.non_finite = policy;
        self
    }
    /// Warn when a parameter's gradient norm is below `vanishing` or above `exploding`.
    pub fn grad_thresholds(mut self, vanishing: Option<f64>, exploding: Option<f64>) -> Self {
        self.config.step.vanishing_threshold = vanishing;
        self.config.step.exploding_threshold = exploding;
        self
    }
    /// Record weight norms and update-to-weight ratios every `k` steps (0: never).
    pub fn param_stats_every(mut self, k: usize) -> Self {
        self.config.step.param_stats_every = k;
        self
    }

    /// Steps taken so far.
    pub fn global_step(&self) -> usize {
        self.step
    }
    /// Epochs ended so far.
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }
    /// Everything recorded so far.
    pub fn history(&self) -> &History {
        &self.history
    }
    /// The best model so far.
    pub fn best(&self) -> Option<&Best<M>> {
        self.best.as_ref()
    }

    fn log(&mut self, record: &serde_json::Value) -> Result<()> {
        if self.logger.is_none()
            && let Some(p) = &self.config.jsonl
        {
            self.logger = Some(JsonlLogger::create(p)?);
        }
        match &mut self.logger {
            Some(l) => l.write(record),
            None => Ok(()),
        }
    }

    /// One optimisation step outside any loader (online learning, simulators): runs
    /// [`train_step`](super::train_step) with this trainer's settings and records it. The step
    /// counts toward the current epoch's `train_loss`.
    pub fn step<O, F>(&mut self, model: &M, opt: &mut O, loss_fn: F) -> Result<StepOutput<M>>
    where
        O: Optimizer,
        F: Fn(&M) -> Tensor,
    {
        self.step_with_aux(model, opt, 0, |m: &M| (loss_fn(m), ()))
    }

    /// Like [`step`](Self::step) with auxiliary outputs; `examples` is the number of examples
    /// the step saw (for throughput; 0 if not meaningful).
    pub fn step_with_aux<O, A, F>(
        &mut self,
        model: &M,
        opt: &mut O,
        examples: usize,
        loss_fn: F,
    ) -> Result<StepOutput<M, A>>
    where
        O: Optimizer,
        A: Params,
        F: Fn(&M) -> (Tensor, A),
    {
        self.ep.start.get_or_insert_with(Instant::now);
        self.apply_schedule(opt);
        let step = self.step + 1;
        let t0 = Instant::now();
        let result = train_step_with_aux(model, opt, step, &self.config.step, loss_fn);
        self.ep.train_secs += t0.elapsed().as_secs_f64();
        let out = match result {
            Ok(o) => o,
            Err(e) => {
                self.step = step;
                return Err(self.log_error(e));
            }
        };
        self.step = step;
        self.record(&out.stats, examples, None)?;
        Ok(out)
    }

    /// Log a failed step (an `"error"` record, flushed) and hand the error back.
    fn log_error(&mut self, e: NnError) -> NnError {
        let rec =
            json!({"kind": "error", "step": self.step, "epoch": self.epoch + 1, "message": e.to_string()});
        let logged = self.log(&rec).and_then(|_| self.logger.as_mut().map_or(Ok(()), |l| l.flush()));
        match logged {
            Ok(()) => e,
            Err(log_err) => NnError::Other(format!("{e} (and writing the log failed: {log_err})")),
        }
    }

    fn record(&mut self, stats: &StepStats, examples: usize, pb: Option<&ProgressBar>) -> Result<()> {
        let time = self.start.elapsed().as_secs_f64();
        let epoch = self.epoch + 1;
        self.history.steps.push(StepPoint {
            step: stats.step,
            epoch,
            loss: stats.loss,
            lr: stats.lr,
            grad_norm: stats.grad_norm,
        });
        if stats.skipped {
            self.skipped += 1;
        } else if stats.loss.is_finite() {
            self.ep.loss_sum += stats.loss;
            self.ep.loss_n += 1;
        }
        self.ep.examples += examples;
        for w in &stats.warnings {
            let key = w.key();
            *self.warning_counts.entry(key.clone()).or_default() += 1;
            if self.warned.insert(key) {
                let msg = format!(
                    "adjoint-nn: step {}: warning: {w} (reported once; all in the JSONL log)",
                    stats.step
                );
                match pb {
                    Some(pb) => pb.suspend(|| eprintln!("{msg}")),
                    None => eprintln!("{msg}"),
                }
            }
        }
        let every = self.config.log_every.max(1);
        if stats.step.is_multiple_of(every)
            || !stats.warnings.is_empty()
            || stats.skipped
            || stats.has_param_stats
        {
            self.log(&step_record(stats, epoch, time))?;
        }
        Ok(())
    }

    /// One pass over `loader` (its next epoch), with a progress bar. Returns the parameters after
    /// the last step. Call [`end_epoch`](Self::end_epoch) afterwards.
    pub fn train_epoch<O, D, F>(
        &mut self,
        model: M,
        opt: &mut O,
        loader: &mut DataLoader<D>,
        loss_fn: F,
    ) -> Result<M>
    where
        O: Optimizer,
        D: Dataset,
        F: Fn(&M, &D::Item) -> Tensor,
    {
        self.train_epoch_with(model, opt, loader, |m: &M, b: &D::Item, _: &StepInfo| loss_fn(m, b))
    }

    /// Like [`train_epoch`](Self::train_epoch) for a loss function that also takes the
    /// [`StepInfo`] (its key for dropout, the step for curricula).
    pub fn train_epoch_with<O, D, F>(
        &mut self,
        model: M,
        opt: &mut O,
        loader: &mut DataLoader<D>,
        loss_fn: F,
    ) -> Result<M>
    where
        O: Optimizer,
        D: Dataset,
        F: Fn(&M, &D::Item, &StepInfo) -> Tensor,
    {
        self.ep.start.get_or_insert_with(Instant::now);
        let pb = if self.config.quiet {
            ProgressBar::hidden()
        } else {
            let pb = ProgressBar::new(loader.num_batches() as u64);
            let style = ProgressStyle::with_template("{msg} [{wide_bar}] {pos}/{len} [{elapsed}<{eta}]")
                .expect("valid template")
                .progress_chars("=> ");
            pb.set_style(style);
            pb
        };
        let title = if self.config.epochs > 0 {
            format!("epoch {}/{}", self.epoch + 1, self.config.epochs)
        } else {
            format!("epoch {}", self.epoch + 1)
        };
        pb.set_message(title.clone());
        let started = Instant::now();
        let mut seen = 0usize;
        let mut model = model;
        for batch in loader.iter() {
            let n = batch_len(&batch);
            self.apply_schedule(opt);
            let info = self.next_step_info();
            let step = info.step;
            let out = train_step_with_aux(&model, opt, step, &self.config.step, |m: &M| {
                (loss_fn(m, &batch, &info), ())
            });
            self.step = step;
            let out = match out {
                Ok(o) => o,
                Err(e) => {
                    pb.abandon();
                    return Err(self.log_error(e));
                }
            };
            self.record(&out.stats, n, Some(&pb))?;
            model = out.model;
            seen += n;
            if !pb.is_hidden() {
                let rate = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!("{title} loss {:.4} {:.0} ex/s", out.stats.loss, rate));
            }
            pb.inc(1);
        }
        pb.finish_and_clear();
        self.ep.train_secs += started.elapsed().as_secs_f64();
        Ok(model)
    }

    /// Close the current epoch with its validation `metrics`: adds `train_loss` (mean step loss),
    /// `examples_per_sec` and `epoch_seconds`, logs, keeps the best model (and saves it when
    /// [`TrainConfig::checkpoint_best`] is set), and applies early stopping.
    ///
    /// Errors when early stopping or a checkpoint is configured but the monitored metric is
    /// missing, and when saving the checkpoint fails.
    pub fn end_epoch(&mut self, model: &M, metrics: Metrics) -> Result<EpochEnd> {
        let secs = self.ep.start.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let mut all = Metrics::new();
        if self.ep.loss_n > 0 {
            all.insert("train_loss".into(), self.ep.loss_sum / self.ep.loss_n as f64);
        }
        if self.ep.examples > 0 && self.ep.train_secs > 0.0 {
            all.insert("examples_per_sec".into(), self.ep.examples as f64 / self.ep.train_secs);
        }
        all.insert("epoch_seconds".into(), secs);
        all.extend(metrics);
        self.ep = EpochAcc::new();
        self.epoch += 1;
        let epoch = self.epoch;
        let time = self.start.elapsed().as_secs_f64();
        self.history.epochs.push(EpochPoint { epoch, step: self.step, time, metrics: all.clone() });
        self.log(&epoch_record(epoch, self.step, time, &all))?;

        let needs_metric = self.config.early_stopping.is_some() || self.config.checkpoint_best.is_some();
        let value = all.get(&self.config.monitor).copied();
        if value.is_none() && needs_metric {
            return Err(NnError::Other(format!(
                "Trainer: the monitored metric '{}' is not among epoch {epoch}'s metrics ({}); \
                 return it from validation or set Trainer::monitor",
                self.config.monitor,
                all.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if let (Some((s, _)), Some(v)) = (&mut self.schedule, value) {
            s.observe(v);
        }
        let mut improved = false;
        if let Some(v) = value.filter(|v| v.is_finite()) {
            let delta = self.config.early_stopping.map_or(0.0, |e| e.min_delta);
            improved = match &self.best {
                None => true,
                Some(b) => match self.config.goal {
                    Goal::Minimize => v < b.value - delta,
                    Goal::Maximize => v > b.value + delta,
                },
            };
            if improved {
                self.best = Some(Best { epoch, value: v, model: model.map_tensors(&mut |t| t.clone()) });
                if let Some(path) = self.config.checkpoint_best.clone() {
                    self.save_best(&path, model, epoch, v)?;
                }
            }
        }
        if improved {
            self.stale = 0;
        } else {
            self.stale += 1;
        }
        let stop = self.config.early_stopping.is_some_and(|e| self.stale >= e.patience);
        if stop {
            self.stopped_early = true;
        }
        if !self.config.quiet {
            let shown: Vec<String> = all
                .iter()
                .filter(|(k, _)| k.as_str() != "epoch_seconds")
                .map(
                    |(k, v)| {
                        if k == "examples_per_sec" {
                            format!("{k} {v:.0}")
                        } else {
                            format!("{k} {v:.4}")
                        }
                    },
                )
                .collect();
            let mark = if improved { " *" } else { "" };
            let tail = if stop { " (early stop)" } else { "" };
            eprintln!("epoch {epoch}: {} ({secs:.1} s){mark}{tail}", shown.join("  "));
        }
        Ok(EpochEnd { epoch, metrics: all, improved, stop })
    }

    fn save_best(&mut self, path: &std::path::Path, model: &M, epoch: usize, value: f64) -> Result<()> {
        let meta: BTreeMap<String, String> = [
            ("epoch".to_string(), epoch.to_string()),
            ("step".to_string(), self.step.to_string()),
            ("monitor".to_string(), self.config.monitor.clone()),
            ("value".to_string(), value.to_string()),
        ]
        .into();
        crate::checkpoint::save(path, model, &meta)
    }

    /// End the run: writes an `"end"` record, flushes the log and draws the plots. Returns the
    /// final model, the best one and the history.
    pub fn finish(&mut self, model: M) -> Result<FitResult<M>> {
        let best = self.best.as_ref().map(|b| json!({"epoch": b.epoch, "value": b.value}));
        let rec = json!({
            "kind": "end", "step": self.step, "epochs": self.epoch, "stopped_early": self.stopped_early,
            "skipped_steps": self.skipped, "monitor": self.config.monitor, "best": best,
            "warnings": self.warning_counts,
            "time": self.start.elapsed().as_secs_f64(),
        });
        self.log(&rec)?;
        if let Some(l) = &mut self.logger {
            l.flush()?;
        }
        let files = match &self.config.plot_dir {
            Some(dir) => self.history.plot(dir)?,
            None => Vec::new(),
        };
        Ok(FitResult {
            model,
            best: self.best.as_ref().map(|b| Best {
                epoch: b.epoch,
                value: b.value,
                model: b.model.map_tensors(&mut |t| t.clone()),
            }),
            history: self.history.clone(),
            stopped_early: self.stopped_early,
            steps: self.step,
            files,
        })
    }

    /// Train for [`TrainConfig::epochs`] epochs over `train` (or until early stopping),
    /// validating after each with `validate` (return the metrics, e.g. `val_loss`; an empty map
    /// when there is no validation), then [`finish`](Self::finish).
    pub fn fit<O, D, F, V>(
        &mut self,
        model: M,
        opt: &mut O,
        train: &mut DataLoader<D>,
        loss_fn: F,
        validate: V,
    ) -> Result<FitResult<M>>
    where
        O: Optimizer,
        D: Dataset,
        F: Fn(&M, &D::Item) -> Tensor,
        V: FnMut(&M) -> Metrics,
    {
        self.fit_with(model, opt, train, |m: &M, b: &D::Item, _: &StepInfo| loss_fn(m, b), validate)
    }

    /// Like [`fit`](Self::fit) for a loss function that also takes the [`StepInfo`], e.g. for
    /// dropout: `|m, (x, y), info| loss(&m.forward_with(x, &mut Ctx::train(info.key)), y)`.
    pub fn fit_with<O, D, F, V>(
        &mut self,
        model: M,
        opt: &mut O,
        train: &mut DataLoader<D>,
        loss_fn: F,
        mut validate: V,
    ) -> Result<FitResult<M>>
    where
        O: Optimizer,
        D: Dataset,
        F: Fn(&M, &D::Item, &StepInfo) -> Tensor,
        V: FnMut(&M) -> Metrics,
    {
        let mut model = model;
        for _ in 0..self.config.epochs {
            model = self.train_epoch_with(model, opt, train, &loss_fn)?;
            let metrics = validate(&model);
            if self.end_epoch(&model, metrics)?.stop {
                break;
            }
        }
        self.finish(model)
    }
}
