//! Activation functions and numerically careful composites.
//!
//! Stable formulations used (each tested at ±1e4 in f32):
//! - `softplus(x) = x + log1p(exp(-x))` for `x > 0`, `log1p(exp(x))` otherwise (double where):
//!   no overflow, linear branch for large `x`, derivative `σ(x)` (½ at 0);
//! - `log_softmax(x) = (x - m) - log Σ exp(x - m)` and `softmax = exp(x - m) / Σ exp(x - m)`
//!   with `m` the stopped max (as in [`Tensor::logsumexp`]);
//! - `sigmoid` is a primitive evaluated as `1/(1+e^{-x})` or `e^x/(1+e^x)` by sign;
//! - `xlogy(x, y) = 0` where `x = 0`, via the where-safe pattern (both branches safe);
//! - `norm(x)` has subgradient 0 at 0, again where-safe.

use adjoint_tensor::DType;

use crate::tensor::Tensor;
use crate::trace::bind;
use crate::transforms::stop_gradient;

impl Tensor {
    /// `max(x, 0)`; derivative 0 at 0 (as PyTorch). A primitive: one pass forward, one
    /// [`relu_grad`](Self::relu_grad) backward.
    ///
    /// ```
    /// use adjoint_core::{grad, Tensor};
    /// let x = Tensor::from_vec(vec![-1.0f64, 0.0, 2.0], &[3]);
    /// assert_eq!(x.relu().to_vec::<f64>(), vec![0.0, 0.0, 2.0]);
    /// let g = grad(|x: &Tensor| x.relu().sum())(&x);
    /// assert_eq!(g.to_vec::<f64>(), vec![0.0, 0.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn relu(&self) -> Tensor {
        bind(&crate::prims::relu::Relu, &[self])
    }

    /// ReLU's derivative applied to `g`: `g` where `self > 0`, else 0 (broadcasting), with
    /// `self` ReLU's input or output. Differentiable in `g` (linear) and with zero derivative
    /// in `self`.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let y = Tensor::from_vec(vec![0.0f32, 3.0], &[2]);
    /// let g = Tensor::from_vec(vec![5.0f32, 7.0], &[2]);
    /// assert_eq!(y.relu_grad(&g).to_vec::<f32>(), vec![0.0, 7.0]);
    /// ```
    #[track_caller]
    pub fn relu_grad(&self, g: &Tensor) -> Tensor {
        bind(&crate::prims::relu::ReluGrad, &[self, g])
    }

    /// `x` for `x > 0`, `slope·x` otherwise.
    #[track_caller]
    pub fn leaky_relu(&self, slope: f64) -> Tensor {
        Tensor::select(&self.gt_scalar(0.0), self, &(self * slope))
    }

    /// `log(1 + eˣ)`, stable for any input.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let y = Tensor::from_vec(vec![-1e4f32, 0.0, 1e4], &[3]).softplus().to_vec::<f32>();
    /// assert_eq!(y[0], 0.0);
    /// assert!((y[1] - 2f32.ln()).abs() < 1e-6);
    /// assert_eq!(y[2], 1e4);
    /// ```
    #[track_caller]
    pub fn softplus(&self) -> Tensor {
        // Double where (see `crate::numerics`): each branch only ever sees inputs on which its
        // `exp` cannot overflow, and the derivative is σ(x) everywhere, ½ at 0. (The former
        // `relu(x) + log1p(exp(-|x|))` had derivative 0 at exactly 0, from relu'(0) = |·|'(0) = 0.)
        let pos = self.gt_scalar(0.0);
        let zero = Tensor::scalar_of(0.0, self.dtype());
        let xp = Tensor::select(&pos, self, &zero);
        let xn = Tensor::select(&pos, &zero, self);
        Tensor::select(&pos, &(&xp + (-&xp).exp().log1p()), &xn.exp().log1p())
    }

    /// `x·σ(x)` (swish).
    #[track_caller]
    pub fn silu(&self) -> Tensor {
        self * self.sigmoid()
    }

    /// GELU, exact form `x·Φ(x) = ½x(1 + erf(x/√2))` (PyTorch's default).
    #[track_caller]
    pub fn gelu(&self) -> Tensor {
        self * ((self * std::f64::consts::FRAC_1_SQRT_2).erf() + 1.0) * 0.5
    }

    /// GELU, tanh approximation.
    #[track_caller]
    pub fn gelu_tanh(&self) -> Tensor {
        let c = (2.0 / std::f64::consts::PI).sqrt();
        let inner = (self + self * self * self * 0.044715) * c;
        self * (inner.tanh() + 1.0) * 0.5
    }

    /// Softmax along `axis`: `exp(x − m) / Σ exp(x − m)` with `m` the stopped max.
    #[track_caller]
    pub fn softmax(&self, axis: usize) -> Tensor {
        let e = self.max_shifted(axis).exp();
        &e / e.sum_axes(&[axis], true)
    }

    /// Log-softmax along `axis`, stable: `(x − m) − log Σ exp(x − m)` with `m` the stopped max.
    /// (Not `x − logsumexp(x)`: in `f32` that loses the digits of the result to the magnitude of
    /// `x`, e.g. 2e-4 at `x = 1e4`; subtracting the max first keeps it exact.)
    #[track_caller]
    pub fn log_softmax(&self, axis: usize) -> Tensor {
        let z = self.max_shifted(axis);
        &z - z.exp().sum_axes(&[axis], true).log()
    }

    /// `x − stop_gradient(max x)` along `axis` (0 where the max is not finite): the shift that
    /// keeps `exp` from overflowing. Softmax is invariant to it, so stopping its gradient is
    /// exact and keeps the max's tie-breaking out of the derivative.
    #[track_caller]
    fn max_shifted(&self, axis: usize) -> Tensor {
        if self.shape().get(axis) == Some(&0) {
            return self.clone();
        }
        let m = stop_gradient(&self.max_axes(&[axis], true));
        let finite = m.abs().lt_scalar(f64::INFINITY);
        let m = Tensor::select(&finite, &m, &Tensor::scalar_of(0.0, m.dtype()));
        self - m
    }

    /// `x·log(y)`, defined as 0 where `x = 0` (also its derivative stays finite there).
    #[track_caller]
    pub fn xlogy(&self, y: &Tensor) -> Tensor {
        let zero = self.eq_scalar(0.0);
        let safe_y = Tensor::select(&zero, &Tensor::scalar_of(1.0, y.dtype()), y);
        Tensor::select(&zero, &Tensor::scalar_of(0.0, self.dtype()), &(self * safe_y.log()))
    }

    /// Euclidean norm of all elements, with subgradient 0 at 0 (not NaN).
    ///
    /// ```
    /// use adjoint_core::{grad, Tensor};
    /// let g = grad(|x: &Tensor| x.norm())(&Tensor::zeros(&[3]));
    /// assert_eq!(g.to_vec::<f32>(), vec![0.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn norm(&self) -> Tensor {
        let sq = (self * self).sum();
        let zero = sq.eq_scalar(0.0);
        let safe = Tensor::select(&zero, &Tensor::scalar_of(1.0, sq.dtype()), &sq);
        Tensor::select(&zero, &Tensor::scalar_of(0.0, sq.dtype()), &safe.sqrt())
    }

    /// Variance over `axes` (population, as `unbiased = false`).
    #[track_caller]
    pub fn var_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let m = self.mean_axes(axes, true);
        let d = self - m;
        (&d * &d).mean_axes(axes, keepdim)
    }

    /// True when the tensor holds floats.
    pub fn is_float(&self) -> bool {
        self.dtype().is_float()
    }

    /// Cast to `f64` (handy in tests and gradient checks).
    #[track_caller]
    pub fn to_f64(&self) -> Tensor {
        self.cast(DType::F64)
    }
}
