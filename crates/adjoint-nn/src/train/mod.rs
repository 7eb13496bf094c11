//! Training: one health-checked step ([`train_step`]), a [`Trainer`] for whole runs, JSONL
//! metrics ([`JsonlLogger`], [`History`]) and loss/metric plots ([`Chart`]).
//!
//! ## Design
//! - **Two levels.** [`train_step`] is a plain function — gradient, health checks, clipping,
//!   optimizer update — that any custom loop can call (online updates, training through a
//!   simulator, truncated backprop through time). [`Trainer`] adds epochs, a progress bar,
//!   validation, early stopping, the best model, logs and plots on top of it, and exposes its
//!   pieces ([`Trainer::step`], [`Trainer::train_epoch`], [`Trainer::end_epoch`],
//!   [`Trainer::finish`]) so a loop can take what it needs.
//! - **Models are values.** A step takes the parameters by reference and returns new ones;
//!   keeping the best model is a clone of tensor handles, not a copy of the weights.
//! - **Failures are loud and located.** A NaN or infinite loss or gradient either stops with
//!   [`NnError::NonFinite`](crate::NnError::NonFinite) naming the step and the parameter with
//!   the largest gradient, or skips the step and records why ([`NonFinitePolicy`]). Vanishing
//!   and exploding gradients produce warnings against thresholds the user sets, printed once
//!   per parameter and logged every time.
//! - **Progress is for people, logs are for programs.** The `indicatif` bar is drawn only on a
//!   terminal (and never when quiet); the JSONL log has every step and epoch, and the plots are
//!   drawn from the same records ([`History::from_jsonl`] reads a log back).

mod log;
mod plot;
mod step;
mod trainer;

use adjoint_core::{DType, Params, Tensor};

pub use log::{epoch_record, step_record, EpochPoint, History, JsonlLogger, Metrics, StepPoint};
pub use plot::{register_fonts, Chart, Series};
pub use step::{
    train_step, train_step_with_aux, GradWarning, NonFinitePolicy, ParamStats, StepConfig, StepOutput,
    StepStats,
};
pub use trainer::{Best, EarlyStopping, EpochEnd, Every, FitResult, Goal, StepInfo, TrainConfig, Trainer};

use crate::data::{batch_len, DataLoader, Dataset};

/// Fraction of predictions `argmax(logits, axis 1)` equal to `labels` (`i64`). Works for
/// classification (`[B, C]` logits, `[B]` labels) and per-pixel segmentation (`[B, C, H, W]`
/// logits, `[B, H, W]` labels).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::train::accuracy;
/// let logits = Tensor::from_vec(vec![2.0f32, 1.0, 0.0, 3.0, 5.0, 1.0], &[3, 2]);
/// let labels = Tensor::from_vec(vec![0i64, 1, 1], &[3]);
/// assert!((accuracy(&logits, &labels) - 2.0 / 3.0).abs() < 1e-12);
/// ```
#[track_caller]
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> f64 {
    let pred = logits.argmax(1, false);
    assert_eq!(
        pred.shape(),
        labels.shape(),
        "adjoint-nn: accuracy: argmax of logits {:?} over axis 1 does not match labels {:?}",
        logits.shape(),
        labels.shape()
    );
    if labels.numel() == 0 {
        return f64::NAN;
    }
    let hits = pred.equal(&labels.cast(pred.dtype())).cast(DType::F64).sum().item();
    hits / labels.numel() as f64
}

/// Mean of `f`'s metrics over one pass of `loader` (epoch 0's order), weighting each batch by
/// its number of examples. Typical validation:
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::data::{DataLoader, TensorDataset};
/// use adjoint_nn::train::{evaluate, Metrics};
/// let loader = DataLoader::new(TensorDataset::new(Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])), 2);
/// let m = evaluate(&(), &loader, |_, x: &Tensor| Metrics::from([("mean".to_string(), x.mean().item())]));
/// assert_eq!(m["mean"], 2.0); // (1.5·2 + 3·1) / 3
/// ```
pub fn evaluate<M, D, F>(model: &M, loader: &DataLoader<D>, f: F) -> Metrics
where
    D: Dataset,
    F: Fn(&M, &D::Item) -> Metrics,
{
    let mut sums = Metrics::new();
    let mut n = 0usize;
    for batch in loader.epoch(0) {
        let k = batch_len(&batch);
        for (name, v) in f(model, &batch) {
            *sums.entry(name).or_default() += v * k as f64;
        }
        n += k;
    }
    if n > 0 {
        for v in sums.values_mut() {
            *v /= n as f64;
        }
    }
    sums
}

/// L2 norm of every leaf of `value`, by dotted name (for logging weights or gradients
/// yourself).
pub fn leaf_norms<P: Params>(value: &P) -> Vec<(String, f64)> {
    value.named_leaves().into_iter().map(|(n, t)| (n, step::leaf_norm(&t))).collect()
}
