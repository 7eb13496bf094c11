//! Normalisation ([`BatchNorm`], [`LayerNorm`], [`RmsNorm`]) and [`Dropout`]: the layers whose
//! behaviour depends on the training mode or on per-feature statistics.
//!
//! ## Batch norm's running statistics
//! `running_mean`, `running_var` and `num_batches_tracked` are [`Buffer`]s: shared cells that
//! transforms and optimizers never see, but that `Params::for_each_buffer` (and so checkpoints)
//! visit under PyTorch's names. A training pass normalises with the batch statistics (biased
//! variance) and updates the buffers with PyTorch's rule
//! `running = (1 - momentum)·running + momentum·batch` using the *unbiased* batch variance
//! (`momentum = None` gives the cumulative average). Buffers keep only concrete values, so a
//! training pass under `grad` updates them once per call with the primal statistics.
//! Evaluation uses the running statistics.

use adjoint_core::params::Buffer;
use adjoint_core::{Params, Tensor};
use adjoint_tensor::random::{bernoulli, Key};
use adjoint_tensor::DType;

use super::{setters, Ctx, Module};
use crate::init;

/// Options of a [`BatchNorm`].
#[derive(Clone, Debug)]
pub struct BatchNormConfig {
    /// Channels (axis 1 of the input).
    pub num_features: usize,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Weight of the new batch in the running statistics; `None` for a cumulative average
    /// (default `Some(0.1)`).
    pub momentum: Option<f64>,
    /// Learnable per-channel scale and shift (default true).
    pub affine: bool,
    /// Keep running statistics for evaluation (default true); without them evaluation also
    /// uses batch statistics.
    pub track_running_stats: bool,
    /// Parameter dtype (default `f32`).
    pub dtype: DType,
}
setters!(BatchNormConfig { eps: f64, momentum: Option<f64>, affine: bool, track_running_stats: bool, dtype: DType });

impl BatchNormConfig {
    /// PyTorch's defaults.
    pub fn new(num_features: usize) -> Self {
        BatchNormConfig {
            num_features,
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
            dtype: DType::F32,
        }
    }

    /// A layer with weight 1, bias 0, running mean 0 and running variance 1. Batch norm has no
    /// random init; the key is accepted for uniformity and unused.
    pub fn init(&self, _key: &Key) -> BatchNorm {
        let c = self.num_features;
        let d = self.dtype;
        BatchNorm {
            weight: self.affine.then(|| init::ones(&[c], d)),
            bias: self.affine.then(|| init::zeros(&[c], d)),
            running_mean: self.track_running_stats.then(|| Buffer::new(init::zeros(&[c], d))),
            running_var: self.track_running_stats.then(|| Buffer::new(init::ones(&[c], d))),
            num_batches_tracked: self.track_running_stats.then(|| Buffer::new(Tensor::scalar(0i64))),
            eps: self.eps,
            momentum: self.momentum,
        }
    }
}

/// Batch normalisation over axis 1 of `[N, C]`, `[N, C, L]` or `[N, C, H, W]`
/// (`nn.BatchNorm1d`/`2d`; [`BatchNorm1d`] and [`BatchNorm2d`] are aliases of this type).
///
/// ```
/// use adjoint_nn::layers::{BatchNorm2d, Ctx, Module};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let bn = BatchNorm2d::new(3, &Key::new(0));
/// let x = Tensor::arange(24).reshape(&[2, 3, 2, 2]);
/// let y = bn.forward_with(&x, &mut Ctx::train(Key::new(1)));
/// assert!(y.mean_axes(&[0, 2, 3], false).to_vec::<f32>().iter().all(|m| m.abs() < 1e-5));
/// // the running mean moved 10% of the way to the batch mean
/// let rm = bn.running_mean.as_ref().unwrap().get().to_vec::<f32>();
/// assert!((rm[0] - 0.1 * 7.5).abs() < 1e-5);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct BatchNorm {
    /// Per-channel scale `[C]`.
    pub weight: Option<Tensor>,
    /// Per-channel shift `[C]`.
    pub bias: Option<Tensor>,
    /// Running mean `[C]`.
    pub running_mean: Option<Buffer>,
    /// Running (unbiased) variance `[C]`.
    pub running_var: Option<Buffer>,
    /// Number of training batches seen (`i64` scalar).
    pub num_batches_tracked: Option<Buffer>,
    /// Added to the variance.
    #[params(skip)]
    pub eps: f64,
    /// Running-statistics momentum (`None`: cumulative average).
    #[params(skip)]
    pub momentum: Option<f64>,
}

/// `nn.BatchNorm1d`: [`BatchNorm`] on `[N, C]` or `[N, C, L]`.
pub type BatchNorm1d = BatchNorm;
/// `nn.BatchNorm2d`: [`BatchNorm`] on `[N, C, H, W]`.
pub type BatchNorm2d = BatchNorm;

impl BatchNorm {
    /// An `f32` layer with PyTorch's defaults.
    pub fn new(num_features: usize, key: &Key) -> BatchNorm {
        BatchNormConfig::new(num_features).init(key)
    }

    /// Options for a layer.
    pub fn config(num_features: usize) -> BatchNormConfig {
        BatchNormConfig::new(num_features)
    }

    fn update_running(&self, mean: &Tensor, var: &Tensor, count: usize) {
        let (Some(rm), Some(rv), Some(nb)) =
            (&self.running_mean, &self.running_var, &self.num_batches_tracked)
        else {
            return;
        };
        let n = nb.get().item() as i64 + 1;
        nb.set(Tensor::scalar(n));
        let m = self.momentum.unwrap_or(1.0 / n as f64);
        let c = mean.numel();
        let mean = Tensor::from_array(mean.value().reshape(&[c]));
        let unbiased =
            Tensor::from_array(var.value().reshape(&[c])) * (count as f64 / (count.max(2) - 1) as f64);
        rm.set(rm.get() * (1.0 - m) + mean * m);
        rv.set(rv.get() * (1.0 - m) + unbiased * m);
    }
}

impl Module for BatchNorm {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
        let c = self.weight.as_ref().or(self.bias.as_ref()).map(|w| w.numel());
        let c = c.or_else(|| self.running_mean.as_ref().map(|b| b.get().numel()));
        if x.rank() < 2 || c.is_some_and(|c| x.shape()[1] != c) {
            panic!("adjoint-nn: BatchNorm: input {:?} must be [N, C, …] with C = {c:?}", x.shape());
        }
        let mut bshape = vec![1; x.rank()];
        bshape[1] = x.shape()[1];
        let axes: Vec<usize> = (0..x.rank()).filter(|&a| a != 1).collect();
        let use_batch = ctx.is_training() || self.running_mean.is_none();
        let (mean, var) = if use_batch {
            let mean = x.mean_axes(&axes, true);
            let var = x.var_axes(&axes, true);
            if ctx.is_training() {
                self.update_running(&mean, &var, x.numel() / x.shape()[1]);
            }
            (mean, var)
        } else {
            let rm = self.running_mean.as_ref().expect("checked").get().reshape(&bshape);
            let rv = self.running_var.as_ref().expect("running_var with running_mean").get().reshape(&bshape);
            (rm, rv)
        };
        let mut y = (x - mean) * (var + self.eps).rsqrt();
        if let Some(w) = &self.weight {
            y = y * w.reshape(&bshape);
        }
        if let Some(b) = &self.bias {
            y = y + b.reshape(&bshape);
        }
        y
    }
}

/// Options of a [`LayerNorm`].
#[derive(Clone, Debug)]
pub struct LayerNormConfig {
    /// The trailing dimensions that are normalised together.
    pub normalized_shape: Vec<usize>,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Learnable elementwise scale (default true).
    pub elementwise_affine: bool,
    /// Learnable shift, when affine (default true).
    pub bias: bool,
    /// Parameter dtype (default `f32`).
    pub dtype: DType,
}
setters!(LayerNormConfig { eps: f64, elementwise_affine: bool, bias: bool, dtype: DType });

impl LayerNormConfig {
    /// PyTorch's defaults.
    pub fn new(normalized_shape: &[usize]) -> Self {
        LayerNormConfig {
            normalized_shape: normalized_shape.to_vec(),
            eps: 1e-5,
            elementwise_affine: true,
            bias: true,
            dtype: DType::F32,
        }
    }

    /// A layer with weight 1 and bias 0 (the key is unused).
    pub fn init(&self, _key: &Key) -> LayerNorm {
        let s = &self.normalized_shape;
        LayerNorm {
            weight: self.elementwise_affine.then(|| init::ones(s, self.dtype)),
            bias: (self.elementwise_affine && self.bias).then(|| init::zeros(s, self.dtype)),
            normalized_shape: s.clone(),
            eps: self.eps,
        }
    }
}

/// Layer normalisation over the trailing `normalized_shape` axes (`nn.LayerNorm`), biased variance.
///
/// ```
/// use adjoint_nn::layers::{LayerNorm, Module};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let ln = LayerNorm::new(&[4], &Key::new(0));
/// let y = ln.forward(&Tensor::arange(8).reshape(&[2, 4]));
/// assert!(y.mean_axes(&[1], false).to_vec::<f32>().iter().all(|m| m.abs() < 1e-6));
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct LayerNorm {
    /// Scale, of `normalized_shape`.
    pub weight: Option<Tensor>,
    /// Shift, of `normalized_shape`.
    pub bias: Option<Tensor>,
    /// The normalised trailing dimensions.
    #[params(skip)]
    pub normalized_shape: Vec<usize>,
    /// Added to the variance.
    #[params(skip)]
    pub eps: f64,
}

impl LayerNorm {
    /// An `f32` layer with PyTorch's defaults.
    pub fn new(normalized_shape: &[usize], key: &Key) -> LayerNorm {
        LayerNormConfig::new(normalized_shape).init(key)
    }

    /// Options for a layer.
    pub fn config(normalized_shape: &[usize]) -> LayerNormConfig {
        LayerNormConfig::new(normalized_shape)
    }
}

#[track_caller]
fn trailing_axes(layer: &str, x: &Tensor, normalized: &[usize]) -> Vec<usize> {
    let k = normalized.len();
    if x.rank() < k || &x.shape()[x.rank() - k..] != normalized {
        panic!("adjoint-nn: {layer}: input {:?} does not end in normalized_shape {normalized:?}", x.shape());
    }
    (x.rank() - k..x.rank()).collect()
}

impl Module for LayerNorm {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        let axes = trailing_axes("LayerNorm", x, &self.normalized_shape);
        let mean = x.mean_axes(&axes, true);
        let var = x.var_axes(&axes, true);
        let mut y = (x - mean) * (var + self.eps).rsqrt();
        if let Some(w) = &self.weight {
            y = y * w;
        }
        if let Some(b) = &self.bias {
            y = y + b;
        }
        y
    }
}

/// Options of an [`RmsNorm`].
#[derive(Clone, Debug)]
pub struct RmsNormConfig {
    /// The trailing dimensions that are normalised together.
    pub normalized_shape: Vec<usize>,
    /// Added to the mean square; `None` (default) uses the input dtype's machine epsilon, as
    /// PyTorch.
    pub eps: Option<f64>,
    /// Learnable elementwise scale (default true).
    pub elementwise_affine: bool,
    /// Parameter dtype (default `f32`).
    pub dtype: DType,
}
setters!(RmsNormConfig { eps: Option<f64>, elementwise_affine: bool, dtype: DType });

impl RmsNormConfig {
    /// PyTorch's defaults.
    pub fn new(normalized_shape: &[usize]) -> Self {
        RmsNormConfig {
            normalized_shape: normalized_shape.to_vec(),
            eps: None,
            elementwise_affine: true,
            dtype: DType::F32,
        }
    }

    /// A layer with weight 1 (the key is unused).
    pub fn init(&self, _key: &Key) -> RmsNorm {
        RmsNorm {
            weight: self.elementwise_affine.then(|| init::ones(&self.normalized_shape, self.dtype)),
            normalized_shape: self.normalized_shape.clone(),
            eps: self.eps,
        }
    }
}

/// Root-mean-square normalisation `x / √(mean(x²) + eps) · weight` over the trailing
/// `normalized_shape` axes (`nn.RMSNorm`).
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct RmsNorm {
    /// Scale, of `normalized_shape`.
    pub weight: Option<Tensor>,
    /// The normalised trailing dimensions.
    #[params(skip)]
    pub normalized_shape: Vec<usize>,
    /// Added to the mean square (`None`: machine epsilon of the input dtype).
    #[params(skip)]
    pub eps: Option<f64>,
}

impl RmsNorm {
    /// An `f32` layer with PyTorch's defaults.
    pub fn new(normalized_shape: &[usize], key: &Key) -> RmsNorm {
        RmsNormConfig::new(normalized_shape).init(key)
    }

    /// Options for a layer.
    pub fn config(normalized_shape: &[usize]) -> RmsNormConfig {
        RmsNormConfig::new(normalized_shape)
    }
}

impl Module for RmsNorm {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        let axes = trailing_axes("RmsNorm", x, &self.normalized_shape);
        let eps =
            self.eps.unwrap_or(if x.dtype() == DType::F64 { f64::EPSILON } else { f32::EPSILON as f64 });
        let y = x * ((x * x).mean_axes(&axes, true) + eps).rsqrt();
        match &self.weight {
            Some(w) => y * w,
            None => y,
        }
    }
}

/// Inverted dropout (`nn.Dropout`): in training, each element is zeroed with probability `p`
/// and the survivors scaled by `1/(1-p)`; in evaluation, the identity. The mask is drawn from
/// the pass's [`Ctx`] key, so a seed reproduces it exactly.
///
/// ```
/// use adjoint_nn::layers::{Ctx, Dropout, Module};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let d = Dropout::new(0.5);
/// let x = Tensor::ones(&[1000]);
/// assert_eq!(d.forward(&x).to_vec::<f32>(), x.to_vec::<f32>());
/// let y = d.forward_with(&x, &mut Ctx::train(Key::new(0))).to_vec::<f32>();
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// ```
#[derive(Clone, Copy, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Dropout {
    /// Probability of dropping an element.
    #[params(skip)]
    pub p: f64,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1]`.
    #[track_caller]
    pub fn new(p: f64) -> Dropout {
        if !(0.0..=1.0).contains(&p) {
            panic!("adjoint-nn: Dropout: p must lie in [0, 1], got {p}");
        }
        Dropout { p }
    }
}

impl Module for Dropout {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
        if !ctx.is_training() || self.p == 0.0 {
            return x.clone();
        }
        if self.p == 1.0 {
            return x * 0.0;
        }
        let keep = Tensor::from_array(bernoulli(&ctx.next_key(), 1.0 - self.p, x.shape()));
        Tensor::select(&keep, &(x * (1.0 / (1.0 - self.p))), &Tensor::scalar_of(0.0, x.dtype()))
    }
}
