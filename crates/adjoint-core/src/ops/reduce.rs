//! Reductions: sums, means, products, maxima and minima over any set of axes; arg-max/min;
//! cumulative sums; and the stable `logsumexp`.

use adjoint_tensor::DType;

use super::{fail, norm_axes};
use crate::prims::argminmax::ArgMinMax;
use crate::prims::cumsum::Cumsum;
use crate::prims::reduce_max::ReduceMax;
use crate::prims::reduce_prod::ReduceProd;
use crate::prims::reduce_sum::ReduceSum;
use crate::tensor::Tensor;
use crate::trace::bind;
use crate::transforms::stop_gradient;

impl Tensor {
    /// Sum of all elements (rank 0).
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// assert_eq!(Tensor::ones(&[2, 3]).sum().item(), 6.0);
    /// ```
    #[track_caller]
    pub fn sum(&self) -> Tensor {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.sum_axes(&axes, false)
    }

    /// Mean of all elements (rank 0).
    #[track_caller]
    pub fn mean(&self) -> Tensor {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.mean_axes(&axes, false)
    }

    /// Sum over `axes`; `keepdim` keeps them with size 1.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
    /// assert_eq!(t.sum_axes(&[0], false).to_vec::<f32>(), vec![4.0, 6.0]);
    /// assert_eq!(t.sum_axes(&[1], true).shape(), &[2, 1]);
    /// ```
    #[track_caller]
    pub fn sum_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let axes = norm_axes("sum_axes", axes, self.shape());
        if axes.is_empty() {
            return self.clone();
        }
        let x = if self.dtype().is_float() || self.dtype() == DType::I64 {
            self.clone()
        } else {
            self.cast(DType::I64)
        };
        bind(&ReduceSum { axes, keepdim }, &[&x])
    }

    /// Mean over `axes`.
    #[track_caller]
    pub fn mean_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let axes = norm_axes("mean_axes", axes, self.shape());
        let n: usize = axes.iter().map(|&a| self.shape()[a]).product();
        let x = if self.dtype().is_float() { self.clone() } else { self.cast(DType::F32) };
        x.sum_axes(&axes, keepdim) / n as f64
    }

    /// Product over `axes` (derivative exact also with zero factors).
    #[track_caller]
    pub fn prod_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let axes = norm_axes("prod_axes", axes, self.shape());
        if axes.is_empty() {
            return self.clone();
        }
        bind(&ReduceProd { axes, keepdim }, &[self])
    }

    /// Maximum over `axes` (ties share the derivative equally).
    #[track_caller]
    pub fn max_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let axes = norm_axes("max_axes", axes, self.shape());
        if axes.is_empty() {
            return self.clone();
        }
        bind(&ReduceMax { axes, keepdim }, &[self])
    }

    /// Minimum over `axes` (ties share the derivative equally).
    #[track_caller]
    pub fn min_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        if self.dtype() == DType::Bool {
            fail("min_axes", "needs a numeric tensor, got bool".into());
        }
        -(-self).max_axes(axes, keepdim)
    }

    /// Largest element (rank 0).
    #[track_caller]
    pub fn max(&self) -> Tensor {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.max_axes(&axes, false)
    }

    /// Smallest element (rank 0).
    #[track_caller]
    pub fn min(&self) -> Tensor {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.min_axes(&axes, false)
    }

    /// Index of the largest element along `axis` (`i64`, first on ties).
    #[track_caller]
    pub fn argmax(&self, axis: usize, keepdim: bool) -> Tensor {
        bind(&ArgMinMax { axis, keepdim, min: false }, &[self])
    }

    /// Index of the smallest element along `axis` (`i64`, first on ties).
    #[track_caller]
    pub fn argmin(&self, axis: usize, keepdim: bool) -> Tensor {
        bind(&ArgMinMax { axis, keepdim, min: true }, &[self])
    }

    /// Cumulative sum along `axis`.
    #[track_caller]
    pub fn cumsum(&self, axis: usize) -> Tensor {
        bind(&Cumsum { axis }, &[self])
    }

    /// `log Σ exp(x)` over `axes`, computed stably: the maximum is subtracted first and, being
    /// a constant of the formula, is held out of the derivative (`stop_gradient`), which keeps
    /// the gradient exactly `softmax(x)` and finite for inputs of any size.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let x = Tensor::from_vec(vec![1e4f32, 1e4], &[2]);
    /// assert!((x.logsumexp(&[0], false).item() - (1e4 + 2f64.ln())).abs() < 1e-2);
    /// ```
    #[track_caller]
    pub fn logsumexp(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let axes = norm_axes("logsumexp", axes, self.shape());
        if axes.iter().any(|&a| self.shape()[a] == 0) {
            // An empty sum: log 0 = -inf, no shift needed (and no maximum exists).
            return self.exp().sum_axes(&axes, keepdim).log();
        }
        // The shift carries no gradient: cut before the maximum, so no transform records the
        // maximum's rule (its tie mask is a pass over `self`) only to drop it.
        let m = stop_gradient(self).max_axes(&axes, true);
        // Rows that are entirely -inf (or +inf) would give inf - inf = NaN: shift by 0 there.
        let finite = m.abs().lt_scalar(f64::INFINITY);
        let m = Tensor::select(&finite, &m, &Tensor::scalar_of(0.0, m.dtype()));
        let s = (self - &m).exp().sum_axes(&axes, true).log() + &m;
        if keepdim {
            s
        } else {
            let shape: Vec<usize> =
                self.shape().iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect();
            s.reshape(&shape)
        }
    }
}
