//! Parameter initialisers, with PyTorch's formulas and names.
//!
//! ## Design choices
//! - **Pure functions of a key.** Every initialiser takes a [`Key`] and returns a fresh
//!   tensor; nothing is mutated in place (PyTorch's `nn.init.*_` write into a tensor). The same
//!   key gives the same values on any machine and thread count.
//! - **PyTorch's conventions**: fans follow `torch.nn.init._calculate_fan_in_and_fan_out`
//!   (`fan_in = shape[1]·receptive field`, `fan_out = shape[0]·receptive field`), gains follow
//!   `calculate_gain`, and [`kaiming_uniform`] with `Nonlinearity::LeakyRelu(√5)` is the default
//!   weight init of `nn.Linear` and `nn.Conv*d`. The numbers differ from PyTorch's (a different
//!   generator) but the distributions are the same, so training behaves comparably.
//! - Sampling happens in `f64` when asked for `f64`, otherwise directly in the requested dtype.
//!
//! ```
//! use adjoint_nn::init::{fans, kaiming_uniform, FanMode, Nonlinearity};
//! use adjoint_tensor::{random::Key, DType};
//! let w = kaiming_uniform(&Key::new(0), &[64, 32], FanMode::FanIn, Nonlinearity::Relu, DType::F32);
//! let bound = (6.0f64 / 32.0).sqrt();
//! assert!(w.to_vec::<f64>().iter().all(|v| v.abs() <= bound));
//! assert_eq!(fans(&[64, 32, 3, 3]), (32 * 9, 64 * 9));
//! ```

use adjoint_core::Tensor;
use adjoint_tensor::random::{self, Key};
use adjoint_tensor::DType;

/// Which fan a variance-scaling initialiser divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Number of inputs (`shape[1]·receptive field`): preserves the forward pass's variance.
    FanIn,
    /// Number of outputs (`shape[0]·receptive field`): preserves the backward pass's variance.
    FanOut,
}

/// The nonlinearity that follows a layer, for [`calculate_gain`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Identity / linear / convolution: gain 1.
    Linear,
    /// Sigmoid: gain 1.
    Sigmoid,
    /// Tanh: gain 5/3.
    Tanh,
    /// ReLU: gain √2.
    Relu,
    /// Leaky ReLU with the given negative slope: gain √(2 / (1 + slope²)).
    LeakyRelu(f64),
    /// SELU: gain 3/4.
    Selu,
}

/// PyTorch's `torch.nn.init.calculate_gain`.
///
/// ```
/// use adjoint_nn::init::{calculate_gain, Nonlinearity};
/// assert_eq!(calculate_gain(Nonlinearity::Relu), 2f64.sqrt());
/// assert_eq!(calculate_gain(Nonlinearity::Tanh), 5.0 / 3.0);
/// ```
pub fn calculate_gain(nl: Nonlinearity) -> f64 {
    match nl {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
        Nonlinearity::Selu => 0.75,
    }
}

/// `(fan_in, fan_out)` of a weight of `shape` (at least 2-D), as PyTorch computes them.
#[track_caller]
pub fn fans(shape: &[usize]) -> (usize, usize) {
    if shape.len() < 2 {
        panic!("adjoint-nn: init::fans: needs a weight of rank ≥ 2, got shape {shape:?}");
    }
    let receptive: usize = shape[2..].iter().product();
    (shape[1] * receptive, shape[0] * receptive)
}

fn fan(shape: &[usize], mode: FanMode) -> usize {
    let (i, o) = fans(shape);
    match mode {
        FanMode::FanIn => i,
        FanMode::FanOut => o,
    }
}

/// Uniform on `[low, high)`.
#[track_caller]
pub fn uniform(key: &Key, shape: &[usize], low: f64, high: f64, dtype: DType) -> Tensor {
    Tensor::from_array(random::uniform(key, shape, low, high, dtype))
}

/// Normal with the given mean and standard deviation.
#[track_caller]
pub fn normal(key: &Key, shape: &[usize], mean: f64, std: f64, dtype: DType) -> Tensor {
    let z = Tensor::from_array(random::normal(key, shape, dtype));
    Tensor::from_array((z * std + mean).to_array())
}

/// A constant tensor.
pub fn constant(shape: &[usize], value: f64, dtype: DType) -> Tensor {
    Tensor::full_of(shape, value, dtype)
}

/// Zeros.
pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
    constant(shape, 0.0, dtype)
}

/// Ones.
pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
    constant(shape, 1.0, dtype)
}

/// Glorot/Xavier uniform: `U(-a, a)` with `a = gain·√(6 / (fan_in + fan_out))`.
#[track_caller]
pub fn xavier_uniform(key: &Key, shape: &[usize], gain: f64, dtype: DType) -> Tensor {
    let (i, o) = fans(shape);
    let a = gain * (6.0 / (i + o) as f64).sqrt();
    uniform(key, shape, -a, a, dtype)
}

/// Glorot/Xavier normal: `N(0, σ²)` with `σ = gain·√(2 / (fan_in + fan_out))`.
#[track_caller]
pub fn xavier_normal(key: &Key, shape: &[usize], gain: f64, dtype: DType) -> Tensor {
    let (i, o) = fans(shape);
    normal(key, shape, 0.0, gain * (2.0 / (i + o) as f64).sqrt(), dtype)
}

/// He/Kaiming uniform: `U(-b, b)` with `b = gain·√(3 / fan)` and `gain = calculate_gain(nl)`.
/// `Nonlinearity::LeakyRelu(5f64.sqrt())` with `FanMode::FanIn` is PyTorch's default for
/// `nn.Linear` and convolution weights.
#[track_caller]
pub fn kaiming_uniform(key: &Key, shape: &[usize], mode: FanMode, nl: Nonlinearity, dtype: DType) -> Tensor {
    let b = calculate_gain(nl) * (3.0 / fan(shape, mode) as f64).sqrt();
    uniform(key, shape, -b, b, dtype)
}

/// He/Kaiming normal: `N(0, σ²)` with `σ = gain / √fan`.
#[track_caller]
pub fn kaiming_normal(key: &Key, shape: &[usize], mode: FanMode, nl: Nonlinearity, dtype: DType) -> Tensor {
    normal(key, shape, 0.0, calculate_gain(nl) / (fan(shape, mode) as f64).sqrt(), dtype)
}

/// A (semi-)orthogonal matrix times `gain` (Saxe et al. 2013; `torch.nn.init.orthogonal_`):
/// the weight is viewed as `shape[0] × rest`, a Gaussian matrix is orthonormalised (QR with the
/// signs of `R`'s diagonal made positive), so rows (or columns, whichever are fewer) are
/// orthonormal.
///
/// ```
/// use adjoint_nn::init::orthogonal;
/// use adjoint_tensor::{random::Key, DType};
/// let q = orthogonal(&Key::new(3), &[4, 6], 1.0, DType::F64);
/// let qqt = q.matmul(&q.t()).to_vec::<f64>();
/// for i in 0..4 { for j in 0..4 {
///     assert!((qqt[i * 4 + j] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
/// } }
/// ```
#[track_caller]
pub fn orthogonal(key: &Key, shape: &[usize], gain: f64, dtype: DType) -> Tensor {
    if shape.len() < 2 {
        panic!("adjoint-nn: init::orthogonal: needs a weight of rank ≥ 2, got shape {shape:?}");
    }
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    // Orthonormalise the columns of a tall `m × n` matrix (m ≥ n).
    let (m, n) = if rows < cols { (cols, rows) } else { (rows, cols) };
    let a = random::normal(key, &[m, n], DType::F64).to_vec::<f64>();
    let q = gram_schmidt(&a, m, n);
    // q is m × n column-orthonormal; the result is rows × cols.
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            out[i * cols + j] = gain * if rows < cols { q[j * n + i] } else { q[i * n + j] };
        }
    }
    Tensor::from_vec(out, shape).cast(dtype)
}

/// Q of the thin QR of a row-major `m × n` matrix (m ≥ n) with positive `diag(R)`, by
/// Gram–Schmidt with re-orthogonalisation ("twice is enough"), which is as accurate as
/// Householder for the well-conditioned Gaussian matrices drawn here.
fn gram_schmidt(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut q = vec![0.0; m * n];
    for j in 0..n {
        let mut v: Vec<f64> = (0..m).map(|i| a[i * n + j]).collect();
        for _ in 0..2 {
            for k in 0..j {
                let d: f64 = (0..m).map(|i| q[i * n + k] * v[i]).sum();
                for (i, vi) in v.iter_mut().enumerate() {
                    *vi -= d * q[i * n + k];
                }
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for i in 0..m {
            q[i * n + j] = v[i] / norm;
        }
    }
    q
}

/// Split `key` into `n` keys (one per parameter of a layer), a convenience for constructors.
pub(crate) fn keys(key: &Key, n: usize) -> Vec<Key> {
    key.split(n)
}

/// PyTorch's default init of a `Linear`/`Conv` weight and bias: weight
/// `kaiming_uniform(a = √5)` (that is `U(±1/√fan_in)`), bias `U(±1/√fan_in)`.
pub(crate) fn torch_default_weight_bias(
    key: &Key,
    weight_shape: &[usize],
    bias: bool,
    dtype: DType,
) -> (Tensor, Option<Tensor>) {
    let k = keys(key, 2);
    let w = kaiming_uniform(&k[0], weight_shape, FanMode::FanIn, Nonlinearity::LeakyRelu(5f64.sqrt()), dtype);
    let b = bias.then(|| {
        let (fan_in, _) = fans(weight_shape);
        let bound = if fan_in > 0 { 1.0 / (fan_in as f64).sqrt() } else { 0.0 };
        uniform(&k[1], &[weight_shape[0]], -bound, bound, dtype)
    });
    (w, b)
}
