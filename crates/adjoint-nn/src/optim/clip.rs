//! Gradient clipping (by global norm, by value) and gradient accumulation over any `Params`.
//!
//! Clipping functions return the clipped gradients together with the global L2 norm measured
//! *before* clipping, which is what a training log wants to record. When that norm is not
//! finite the gradients are returned unchanged, so the trainer's non-finite policy (stop with
//! a diagnostic, or skip the step) sees the problem instead of a silently zeroed update.

use adjoint_core::{params, Params, Tensor};

use super::kernel::map_leaf;

/// The L2 norm of all leaves together, `√Σ‖gᵢ‖²`, accumulated in `f64`.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::optim::global_norm;
/// let g = (Tensor::from_vec(vec![3.0f32], &[1]), Tensor::from_vec(vec![4.0f32], &[1]));
/// assert_eq!(global_norm(&g), 5.0);
/// ```
pub fn global_norm<P: Params>(grads: &P) -> f64 {
    let mut acc = 0.0f64;
    grads.for_each_tensor(&mut |t| {
        let a = t.value();
        if a.dtype().is_float() {
            acc += match (a.as_slice::<f32>(), a.as_slice::<f64>()) {
                (Some(s), _) => s.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>(),
                (_, Some(s)) => s.iter().map(|&x| x * x).sum::<f64>(),
                _ => a.to_vec::<f64>().iter().map(|x| x * x).sum::<f64>(),
            };
        }
    });
    acc.sqrt()
}

/// Scale the gradients so that their global L2 norm is at most `max_norm`, as PyTorch's
/// `clip_grad_norm_` (factor `max_norm / (norm + 1e-6)`, applied only when below 1).
/// Returns the clipped gradients and the norm before clipping.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::optim::clip_grad_norm;
/// let g = Tensor::from_vec(vec![3.0f64, 4.0], &[2]);
/// let (c, norm) = clip_grad_norm(&g, 1.0);
/// assert_eq!(norm, 5.0);
/// assert!((c.to_vec::<f64>()[0] - 0.6).abs() < 1e-6);
/// ```
#[track_caller]
pub fn clip_grad_norm<P: Params>(grads: &P, max_norm: f64) -> (P, f64) {
    assert!(max_norm >= 0.0, "adjoint-nn: clip_grad_norm: max_norm must be >= 0, got {max_norm}");
    let norm = global_norm(grads);
    if !norm.is_finite() {
        return (grads.map_tensors(&mut |t| t.clone()), norm);
    }
    let coef = max_norm / (norm + 1e-6);
    if coef >= 1.0 {
        return (grads.map_tensors(&mut |t| t.clone()), norm);
    }
    (grads.map_tensors(&mut |t| map_leaf(t, |x| x * coef)), norm)
}

/// Clamp every gradient element to `[-clip, clip]` (PyTorch's `clip_grad_value_`). Returns the
/// clipped gradients and the global L2 norm before clipping. NaN elements stay NaN.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::optim::clip_grad_value;
/// let g = Tensor::from_vec(vec![3.0f64, -0.5, -4.0], &[3]);
/// let (c, _) = clip_grad_value(&g, 1.0);
/// assert_eq!(c.to_vec::<f64>(), vec![1.0, -0.5, -1.0]);
/// ```
#[track_caller]
pub fn clip_grad_value<P: Params>(grads: &P, clip: f64) -> (P, f64) {
    assert!(clip >= 0.0, "adjoint-nn: clip_grad_value: clip must be >= 0, got {clip}");
    let norm = global_norm(grads);
    (grads.map_tensors(&mut |t| map_leaf(t, |x| if x.is_nan() { x } else { x.clamp(-clip, clip) })), norm)
}

/// Sums gradients over several micro-batches and hands back their mean every `every` pushes
/// (gradient accumulation: a large effective batch from small ones).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::optim::GradAccumulator;
/// let mut acc = GradAccumulator::new(2);
/// assert!(acc.push(&Tensor::scalar(1.0f64)).is_none());
/// let mean = acc.push(&Tensor::scalar(3.0f64)).unwrap();
/// assert_eq!(mean.item(), 2.0);
/// assert_eq!(acc.count(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct GradAccumulator<P> {
    sum: Option<P>,
    count: usize,
    every: usize,
}

impl<P: Params> GradAccumulator<P> {
    /// An accumulator that averages groups of `every` gradients (`every >= 1`).
    #[track_caller]
    pub fn new(every: usize) -> Self {
        assert!(every >= 1, "adjoint-nn: GradAccumulator::new: every must be at least 1");
        GradAccumulator { sum: None, count: 0, every }
    }

    /// Add one gradient; when it completes a group of `every`, return the group's mean and
    /// start a new group.
    #[track_caller]
    pub fn push(&mut self, grads: &P) -> Option<P> {
        self.add(grads);
        if self.count >= self.every {
            self.take_mean()
        } else {
            None
        }
    }

    /// Add one gradient without checking for a full group.
    #[track_caller]
    pub fn add(&mut self, grads: &P) {
        self.sum = Some(match self.sum.take() {
            None => grads.map_tensors(&mut |t| Tensor::from_array(t.value().clone())),
            Some(s) => params::zip_map(&s, grads, |a, b| a + &Tensor::from_array(b.value().clone())),
        });
        self.count += 1;
    }

    /// Gradients added since the last mean was taken.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The mean of the gradients added so far (`None` when there are none), without resetting.
    pub fn mean(&self) -> Option<P> {
        let n = self.count as f64;
        self.sum.as_ref().map(|s| s.map_tensors(&mut |t| map_leaf(t, |x| x / n)))
    }

    /// The mean of the gradients added so far, and reset (use it for a last, partial group).
    pub fn take_mean(&mut self) -> Option<P> {
        let m = self.mean();
        self.reset();
        m
    }

    /// Drop the gradients added so far.
    pub fn reset(&mut self) {
        self.sum = None;
        self.count = 0;
    }
}
