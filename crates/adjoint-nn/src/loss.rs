//! Loss functions, numerically stable, with PyTorch's definitions and reductions.
//!
//! ## Design choices
//! - **Plain functions of tensors** returning a tensor (a scalar unless
//!   [`Reduction::None`]), so they compose with `grad`, `vmap` and higher derivatives; the
//!   options that PyTorch passes as keyword arguments live in small `Default` structs
//!   ([`CrossEntropy`], [`Nll`]).
//! - **Stability**: cross-entropy works from logits through `log_softmax` (a stopped-max
//!   `logsumexp`), binary cross-entropy from logits through `softplus(-x) = max(-x, 0) +
//!   log1p(e^{-|x|})`, and `kl_div` uses `xlogy` so that zero target probabilities contribute
//!   exactly zero (and finite derivatives).
//! - **Targets**: class indices are `i64` tensors; class probabilities are float tensors of the
//!   logits' shape. The class axis is axis 1, as in PyTorch (`[N, C]` or `[N, C, d1, …]`).
//! - Ignored targets (`ignore_index`) contribute zero loss and zero derivative, and a mean is
//!   taken over the targets that are not ignored (as PyTorch; all ignored gives NaN, also as
//!   PyTorch).
//!
//! ```
//! use adjoint_nn::loss::{cross_entropy, CrossEntropy};
//! use adjoint_core::Tensor;
//! let logits = Tensor::from_vec(vec![2.0f64, 0.0, 0.0, 0.0, 3.0, 0.0], &[2, 3]);
//! let target = Tensor::from_vec(vec![0i64, 1], &[2]);
//! let l = cross_entropy(&logits, &target, &CrossEntropy::default());
//! let lse = |a: f64| (a.exp() + 2.0).ln();
//! assert!((l.item() - 0.5 * ((lse(2.0) - 2.0) + (lse(3.0) - 3.0))).abs() < 1e-12);
//! ```

use adjoint_core::Tensor;
use adjoint_tensor::DType;

/// How per-element losses are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The average (over non-ignored targets for classification losses).
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// The sum divided by the batch size (`shape[0]`): the mathematically correct mean for
    /// [`kl_div`] (PyTorch's `'batchmean'`).
    BatchMean,
    /// No reduction: one loss per element (per target for classification losses).
    None,
}

#[track_caller]
fn reduce(loss: Tensor, r: Reduction) -> Tensor {
    match r {
        Reduction::Mean => loss.mean(),
        Reduction::Sum => loss.sum(),
        Reduction::BatchMean => {
            let n = if loss.rank() == 0 { 1 } else { loss.shape()[0] };
            loss.sum() / n as f64
        }
        Reduction::None => loss,
    }
}

#[track_caller]
fn same_shape(op: &str, a: &Tensor, b: &Tensor) {
    if a.shape() != b.shape() {
        panic!("adjoint-nn: {op}: input {:?} and target {:?} must have the same shape", a.shape(), b.shape());
    }
    if !a.dtype().is_float() {
        panic!("adjoint-nn: {op}: input must be float, got {}", a.dtype());
    }
}

/// Mean squared error `(x - y)²` (`nn.MSELoss`).
///
/// ```
/// use adjoint_nn::loss::{mse, Reduction};
/// use adjoint_core::Tensor;
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
/// let y = Tensor::from_vec(vec![0.0f64, 0.0], &[2]);
/// assert_eq!(mse(&x, &y, Reduction::Mean).item(), 2.5);
/// ```
#[track_caller]
pub fn mse(input: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    same_shape("mse", input, target);
    let d = input - target;
    reduce(&d * &d, reduction)
}

/// Mean absolute error `|x - y|` (`nn.L1Loss`); derivative 0 where `x = y`.
#[track_caller]
pub fn l1(input: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    same_shape("l1", input, target);
    reduce((input - target).abs(), reduction)
}

/// Huber loss (`nn.HuberLoss`): `½d²` where `|d| < δ`, else `δ(|d| - ½δ)`.
#[track_caller]
pub fn huber(input: &Tensor, target: &Tensor, delta: f64, reduction: Reduction) -> Tensor {
    same_shape("huber", input, target);
    if delta <= 0.0 {
        panic!("adjoint-nn: huber: delta must be positive, got {delta}");
    }
    let d = input - target;
    let a = d.abs();
    let quad = &d * &d * 0.5;
    let lin = (&a - 0.5 * delta) * delta;
    reduce(Tensor::select(&a.lt_scalar(delta), &quad, &lin), reduction)
}

/// Smooth L1 loss (`nn.SmoothL1Loss`): `½d²/β` where `|d| < β`, else `|d| - ½β`; equal to
/// `huber(δ = β) / β`.
#[track_caller]
pub fn smooth_l1(input: &Tensor, target: &Tensor, beta: f64, reduction: Reduction) -> Tensor {
    if beta == 0.0 {
        return l1(input, target, reduction);
    }
    huber(input, target, beta, reduction) / beta
}

/// Options of [`cross_entropy`] (PyTorch's keyword arguments and defaults).
#[derive(Clone, Debug)]
pub struct CrossEntropy {
    /// Reduction (default mean; with class weights the mean divides by the summed weights of
    /// the kept targets, as PyTorch).
    pub reduction: Reduction,
    /// A class index whose targets are skipped (index targets only; default `None`, PyTorch
    /// uses -100 which never matches a valid class either).
    pub ignore_index: Option<i64>,
    /// Mix the target with the uniform distribution: `(1 - ε)·target + ε/C` (default 0).
    pub label_smoothing: f64,
    /// Per-class weights `[C]` (default none).
    pub weight: Option<Tensor>,
}

impl Default for CrossEntropy {
    fn default() -> Self {
        CrossEntropy { reduction: Reduction::Mean, ignore_index: None, label_smoothing: 0.0, weight: None }
    }
}

impl CrossEntropy {
    /// Defaults with another reduction.
    pub fn reduction(reduction: Reduction) -> Self {
        CrossEntropy { reduction, ..Default::default() }
    }
}

/// Options of [`nll`].
#[derive(Clone, Debug, Default)]
pub struct Nll {
    /// Reduction (default mean, over the summed weights of the kept targets).
    pub reduction: Reduction,
    /// A class index whose targets are skipped.
    pub ignore_index: Option<i64>,
    /// Per-class weights `[C]` (default none).
    pub weight: Option<Tensor>,
}

#[track_caller]
fn check_logits(op: &str, logits: &Tensor, weight: Option<&Tensor>) {
    if logits.rank() < 1 || !logits.dtype().is_float() {
        panic!(
            "adjoint-nn: {op}: input must be float [N, C, …] or [C], got {} {:?}",
            logits.dtype(),
            logits.shape()
        );
    }
    let c = logits.shape()[class_axis(logits)];
    if let Some(w) = weight
        && w.shape() != [c]
    {
        panic!("adjoint-nn: {op}: class weight must have shape [{c}], got {:?}", w.shape());
    }
}

/// The class axis of PyTorch's convention: 1, or 0 for an unbatched `[C]` input.
fn class_axis(logits: &Tensor) -> usize {
    usize::from(logits.rank() > 1)
}

/// `weight` reshaped to broadcast along the class axis of `like`.
fn class_shaped(weight: &Tensor, like: &Tensor) -> Tensor {
    let mut shape = vec![1; like.rank()];
    shape[class_axis(like)] = weight.numel();
    weight.reshape(&shape)
}

/// Per-target pieces of an index-target loss: `-w[y]·logp[y]` (zero where ignored), the kept
/// mask, and the per-target weights `w[y]` (1 without class weights, 0 where ignored), whose
/// sum is the divisor of a mean. `logp` is `[N, C, …]`, `target` `[N, …]` (`i64`).
#[track_caller]
fn pick_targets(
    op: &str,
    logp: &Tensor,
    target: &Tensor,
    ignore: Option<i64>,
    weight: Option<&Tensor>,
) -> (Tensor, Tensor, Tensor) {
    let ax = class_axis(logp);
    let mut expect = logp.shape().to_vec();
    let c = expect.remove(ax);
    if target.shape() != expect.as_slice() {
        panic!(
            "adjoint-nn: {op}: class-index target must have shape {expect:?} for input {:?}, got {:?}",
            logp.shape(),
            target.shape()
        );
    }
    let t = target.to_vec::<i64>();
    if let Some(bad) = t.iter().find(|&&v| (v < 0 || v >= c as i64) && Some(v) != ignore) {
        panic!("adjoint-nn: {op}: target class {bad} is out of range for {c} classes");
    }
    let keep: Vec<bool> = t.iter().map(|&v| Some(v) != ignore).collect();
    let safe: Vec<i64> = t.iter().map(|&v| if Some(v) == ignore { 0 } else { v }).collect();
    let keep = Tensor::from_vec(keep, target.shape());
    let safe = Tensor::from_vec(safe, target.shape());
    let zero = Tensor::scalar_of(0.0, logp.dtype());
    let w = match weight {
        Some(w) => {
            w.cast(logp.dtype()).index_select(0, &safe.reshape(&[safe.numel()])).reshape(target.shape())
        }
        None => Tensor::full_of(target.shape(), 1.0, logp.dtype()),
    };
    let w = Tensor::select(&keep, &w, &zero);
    let picked = -logp.gather(ax, &safe.unsqueeze(ax)).squeeze(ax);
    let picked = Tensor::select(&keep, &(picked * &w), &zero);
    (picked, keep, w)
}

#[track_caller]
fn reduce_kept(loss: Tensor, weights: &Tensor, r: Reduction) -> Tensor {
    match r {
        Reduction::Mean => loss.sum() / weights.sum(),
        other => reduce(loss, other),
    }
}

/// Cross-entropy from unnormalised `logits` (`nn.CrossEntropyLoss`): `target` holds class
/// indices (`i64`, shape `[N, …]`) or class probabilities (float, the logits' shape).
///
/// ```
/// use adjoint_nn::loss::{cross_entropy, CrossEntropy, Reduction};
/// use adjoint_core::Tensor;
/// let logits = Tensor::from_vec(vec![1e4f32, 0.0, -1e4, 0.0], &[2, 2]);
/// let probs = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], &[2, 2]);
/// let l = cross_entropy(&logits, &probs, &CrossEntropy::reduction(Reduction::None));
/// assert_eq!(l.to_vec::<f32>(), vec![0.0, 0.0]); // no overflow
/// ```
#[track_caller]
pub fn cross_entropy(logits: &Tensor, target: &Tensor, opts: &CrossEntropy) -> Tensor {
    check_logits("cross_entropy", logits, opts.weight.as_ref());
    let ax = class_axis(logits);
    let c = logits.shape()[ax] as f64;
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        panic!("adjoint-nn: cross_entropy: label_smoothing must lie in [0, 1], got {eps}");
    }
    let logp = logits.log_softmax(ax);
    // Σ_c w_c·logp_c-weighted terms use the class-weighted log-probabilities.
    let wlogp = match &opts.weight {
        Some(w) => &logp * class_shaped(&w.cast(logp.dtype()), &logp),
        None => logp.clone(),
    };
    if target.dtype().is_float() {
        if target.shape() != logits.shape() {
            panic!(
                "adjoint-nn: cross_entropy: probability target {:?} must have the logits' shape {:?}",
                target.shape(),
                logits.shape()
            );
        }
        let t = if eps > 0.0 { target * (1.0 - eps) + eps / c } else { target.clone() };
        let loss = -(t.cast(logp.dtype()) * &wlogp).sum_axes(&[ax], false);
        return reduce(loss, opts.reduction);
    }
    if target.dtype() != DType::I64 {
        panic!(
            "adjoint-nn: cross_entropy: target must be i64 class indices or float probabilities, got {}",
            target.dtype()
        );
    }
    let (nll, keep, w) =
        pick_targets("cross_entropy", &logp, target, opts.ignore_index, opts.weight.as_ref());
    let loss = if eps > 0.0 {
        let smooth = -wlogp.sum_axes(&[ax], false);
        let smooth = Tensor::select(&keep, &smooth, &Tensor::scalar_of(0.0, logp.dtype()));
        nll * (1.0 - eps) + smooth * (eps / c)
    } else {
        nll
    };
    reduce_kept(loss, &w, opts.reduction)
}

/// Negative log-likelihood of log-probabilities `logp` (`[N, C, …]`) at class indices
/// `target` (`nn.NLLLoss`).
#[track_caller]
pub fn nll(logp: &Tensor, target: &Tensor, opts: &Nll) -> Tensor {
    check_logits("nll", logp, opts.weight.as_ref());
    if target.dtype() != DType::I64 {
        panic!("adjoint-nn: nll: target must be i64 class indices, got {}", target.dtype());
    }
    let (loss, _, w) = pick_targets("nll", logp, target, opts.ignore_index, opts.weight.as_ref());
    reduce_kept(loss, &w, opts.reduction)
}

/// Binary cross-entropy from logits (`nn.BCEWithLogitsLoss`):
/// `(1 - y)·x + (1 + (w - 1)·y)·softplus(-x)`, with `w = pos_weight` (broadcast over the last
/// axis, or `None` for 1). Stable for logits of any size.
///
/// ```
/// use adjoint_nn::loss::{binary_cross_entropy_with_logits, Reduction};
/// use adjoint_core::Tensor;
/// let x = Tensor::from_vec(vec![100.0f32, -100.0], &[2]);
/// let y = Tensor::from_vec(vec![1.0f32, 0.0], &[2]);
/// assert!(binary_cross_entropy_with_logits(&x, &y, None, Reduction::Sum).item() < 1e-40);
/// ```
#[track_caller]
pub fn binary_cross_entropy_with_logits(
    logits: &Tensor,
    target: &Tensor,
    pos_weight: Option<&Tensor>,
    reduction: Reduction,
) -> Tensor {
    same_shape("binary_cross_entropy_with_logits", logits, target);
    let sp = (-logits).softplus();
    let neg = (-target + 1.0) * logits;
    let loss = match pos_weight {
        Some(w) => neg + (target * (w - 1.0) + 1.0) * sp,
        None => neg + sp,
    };
    reduce(loss, reduction)
}

/// Kullback–Leibler divergence `KL(target ‖ input)` with `input` given as log-probabilities
/// (`nn.KLDivLoss`): pointwise `target·(log target - input)`, or with `log_target`,
/// `e^target·(target - input)`. Use [`Reduction::BatchMean`] for the true KL per example.
#[track_caller]
pub fn kl_div(input: &Tensor, target: &Tensor, log_target: bool, reduction: Reduction) -> Tensor {
    same_shape("kl_div", input, target);
    let loss =
        if log_target { target.exp() * (target - input) } else { target.xlogy(target) - target * input };
    reduce(loss, reduction)
}
