//! Preparing data: standardisation, train/validation/test splits, sliding windows.
//!
//! Statistics are fitted on training data only and then applied to validation and test data
//! ([`Standardizer`]); for time series, split in time order first ([`time_split`]) and window
//! each part separately ([`Windows`]), so that no window straddles two parts.

use adjoint_core::{Params, Tensor};
use adjoint_tensor::random::{permutation, Key};

use super::{index_tensor, take_rows, Dataset};
use crate::error::{NnError, Result};

/// Per-feature standardisation `(x - mean) / std`, with statistics over axis 0.
///
/// Fit it on the training data only; apply the same statistics to validation and test data.
/// Features with zero spread (a pixel that is always 0) get `std = 1`, so they map to 0 rather
/// than NaN. It is a [`Params`] value, so it can be checkpointed with the model.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::data::Standardizer;
/// let train = Tensor::from_vec(vec![1.0f32, 10.0, 3.0, 10.0], &[2, 2]);
/// let s = Standardizer::fit(&train)?;
/// assert_eq!(s.mean().to_vec::<f32>(), vec![2.0, 10.0]);
/// assert_eq!(s.std().to_vec::<f32>(), vec![1.0, 1.0]); // the constant column gets std 1
/// let test = Tensor::from_vec(vec![4.0f32, 10.0], &[1, 2]);
/// assert_eq!(s.transform(&test).to_vec::<f32>(), vec![2.0, 0.0]);
/// # Ok::<(), adjoint_nn::NnError>(())
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Standardizer {
    mean: Tensor,
    std: Tensor,
}

impl Standardizer {
    /// Fit to `x` (`[n, ...features]`, float): mean and population standard deviation over
    /// axis 0, computed in f64. Errors when `x` has no rows or holds NaN or infinite values
    /// (the message names the first such feature).
    pub fn fit(x: &Tensor) -> Result<Standardizer> {
        if x.rank() == 0 || x.shape()[0] == 0 || !x.is_float() {
            return Err(NnError::Other(format!(
                "Standardizer::fit: needs a float tensor with at least one row, got {} of shape {:?}",
                x.dtype(),
                x.shape()
            )));
        }
        let xd = x.to_f64();
        let bad = xd.sum_axes(&[0], false).to_vec::<f64>();
        if let Some(i) = bad.iter().position(|v| !v.is_finite()) {
            return Err(NnError::Other(format!(
                "Standardizer::fit: feature {i} (flat index over shape {:?}) has NaN or infinite values",
                &x.shape()[1..]
            )));
        }
        let mean = xd.mean_axes(&[0], false);
        let var = xd.var_axes(&[0], false);
        let std: Vec<f64> =
            var.to_vec::<f64>().into_iter().map(|v| if v > 1e-24 { v.sqrt() } else { 1.0 }).collect();
        let std = Tensor::from_vec(std, mean.shape());
        Ok(Standardizer { mean: mean.cast(x.dtype()), std: std.cast(x.dtype()) })
    }

    /// `(x - mean) / std`, broadcasting the statistics over `x`'s leading axes (so it applies to
    /// `[n, features]` rows and to `[n, window, features]` windows alike).
    #[track_caller]
    pub fn transform(&self, x: &Tensor) -> Tensor {
        (x - &self.mean.cast(x.dtype())) / &self.std.cast(x.dtype())
    }

    /// `x * std + mean` (back to the original units, e.g. for forecasts).
    #[track_caller]
    pub fn inverse_transform(&self, x: &Tensor) -> Tensor {
        x * &self.std.cast(x.dtype()) + &self.mean.cast(x.dtype())
    }

    /// Per-feature means.
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// Per-feature standard deviations (1 where the feature was constant).
    pub fn std(&self) -> &Tensor {
        &self.std
    }
}

/// Example indices of a train / validation / test split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Training examples.
    pub train: Vec<usize>,
    /// Validation examples.
    pub val: Vec<usize>,
    /// Test examples.
    pub test: Vec<usize>,
}

impl Split {
    /// The three parts of `value` (rows along axis 0 of every leaf): `(train, val, test)`.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// use adjoint_nn::data::time_split;
    /// let (tr, va, te) = time_split(10, 0.2, 0.1).apply(&Tensor::arange(10));
    /// assert_eq!((tr.shape()[0], va.shape()[0], te.shape()[0]), (7, 2, 1));
    /// assert_eq!(te.to_vec::<f32>(), vec![9.0]);
    /// ```
    pub fn apply<P: Params>(&self, value: &P) -> (P, P, P) {
        (take_rows(value, &self.train), take_rows(value, &self.val), take_rows(value, &self.test))
    }
}

#[track_caller]
fn split_sizes(n: usize, val: f64, test: f64) -> (usize, usize) {
    assert!(
        (0.0..=1.0).contains(&val) && (0.0..=1.0).contains(&test) && val + test <= 1.0,
        "adjoint-nn: split: fractions must lie in [0, 1] and sum to at most 1, got val {val}, test {test}"
    );
    let nv = (n as f64 * val).round() as usize;
    let nt = ((n as f64 * test).round() as usize).min(n - nv);
    (nv, nt)
}

/// A random split of `0..n`: `round(n·val)` validation and `round(n·test)` test examples, the
/// rest for training, drawn from a permutation seeded by `seed`. Each part is sorted.
///
/// ```
/// use adjoint_nn::data::random_split;
/// let s = random_split(100, 0.2, 0.1, 0);
/// assert_eq!((s.train.len(), s.val.len(), s.test.len()), (70, 20, 10));
/// ```
#[track_caller]
pub fn random_split(n: usize, val: f64, test: f64, seed: u64) -> Split {
    let (nv, nt) = split_sizes(n, val, test);
    let p: Vec<usize> =
        permutation(&Key::new(seed), n).to_vec::<i64>().into_iter().map(|i| i as usize).collect();
    let mut test_idx = p[..nt].to_vec();
    let mut val_idx = p[nt..nt + nv].to_vec();
    let mut train = p[nt + nv..].to_vec();
    train.sort_unstable();
    val_idx.sort_unstable();
    test_idx.sort_unstable();
    Split { train, val: val_idx, test: test_idx }
}

/// A time-ordered split of `0..n`: the first examples train, the next `round(n·val)` validate,
/// the last `round(n·test)` test — the future is never used to predict the past.
#[track_caller]
pub fn time_split(n: usize, val: f64, test: f64) -> Split {
    let (nv, nt) = split_sizes(n, val, test);
    let ntr = n - nv - nt;
    Split { train: (0..ntr).collect(), val: (ntr..ntr + nv).collect(), test: (ntr + nv..n).collect() }
}

/// Sliding windows over a sequence: example `i` is `(inputs[s .. s+window], targets[s+window ..
/// s+window+horizon])` with `s = i·stride`, both along axis 0 (time).
///
/// A [`Dataset`] (windows are cut lazily, as views) and convertible to two dense tensors with
/// [`to_tensors`](Self::to_tensors).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::data::{Dataset, Windows};
/// let series = Tensor::arange(6).reshape(&[6, 1]);  // t = 0..5, one feature
/// let w = Windows::new(&series, 3, 1)?;            // 3 steps in, 1 step ahead
/// assert_eq!(w.len(), 3);
/// let (x, y) = w.get(1);
/// assert_eq!((x.to_vec::<f32>(), y.to_vec::<f32>()), (vec![1.0, 2.0, 3.0], vec![4.0]));
/// # Ok::<(), adjoint_nn::NnError>(())
/// ```
#[derive(Clone)]
pub struct Windows {
    inputs: Tensor,
    targets: Tensor,
    window: usize,
    horizon: usize,
    stride: usize,
}

impl Windows {
    /// Windows of `series` (`[T, ...]`) predicting its own next `horizon` steps.
    pub fn new(series: &Tensor, window: usize, horizon: usize) -> Result<Windows> {
        Windows::with_targets(series, series, window, horizon)
    }

    /// Windows of `inputs` (`[T, ...]`) with targets cut from `targets` (`[T, ...]`, e.g. one
    /// column of the inputs). Errors when the two lengths differ or the sequence is shorter
    /// than `window + horizon`. `window` must be at least 1 (a caller bug otherwise).
    #[track_caller]
    pub fn with_targets(inputs: &Tensor, targets: &Tensor, window: usize, horizon: usize) -> Result<Windows> {
        assert!(window >= 1, "adjoint-nn: Windows: window must be at least 1");
        let len = |t: &Tensor, what: &str| {
            t.shape()
                .first()
                .copied()
                .ok_or_else(|| NnError::Other(format!("Windows: {what} must have a time axis, got a scalar")))
        };
        let (ti, tt) = (len(inputs, "inputs")?, len(targets, "targets")?);
        if ti != tt {
            return Err(NnError::Other(format!(
                "Windows: inputs have {ti} time steps but targets have {tt}"
            )));
        }
        if ti < window + horizon {
            return Err(NnError::Other(format!(
                "Windows: a sequence of {ti} steps is too short for a window of {window} plus a horizon of {horizon}"
            )));
        }
        Ok(Windows { inputs: inputs.clone(), targets: targets.clone(), window, horizon, stride: 1 })
    }

    /// Step between window starts (default 1).
    #[track_caller]
    pub fn stride(mut self, stride: usize) -> Self {
        assert!(stride >= 1, "adjoint-nn: Windows::stride: stride must be at least 1");
        self.stride = stride;
        self
    }

    /// First time index of window `i`'s input and of its target.
    pub fn starts(&self, i: usize) -> (usize, usize) {
        let s = i * self.stride;
        (s, s + self.window)
    }

    /// All windows as `(inputs [N, window, ...], targets [N, horizon, ...])`.
    pub fn to_tensors(&self) -> (Tensor, Tensor) {
        let n = self.len();
        let gather = |t: &Tensor, off: usize, w: usize| {
            let idx: Vec<usize> =
                (0..n).flat_map(|i| (0..w).map(move |k| i * self.stride + off + k)).collect();
            let mut shape = vec![n, w];
            shape.extend_from_slice(&t.shape()[1..]);
            t.index_select(0, &index_tensor(&idx)).reshape(&shape)
        };
        (gather(&self.inputs, 0, self.window), gather(&self.targets, self.window, self.horizon))
    }
}

impl Dataset for Windows {
    type Item = (Tensor, Tensor);

    fn len(&self) -> usize {
        (self.inputs.shape()[0] - self.window - self.horizon) / self.stride + 1
    }

    #[track_caller]
    fn get(&self, i: usize) -> (Tensor, Tensor) {
        assert!(
            i < self.len(),
            "adjoint-nn: Windows::get: index {i} out of range for {} windows",
            self.len()
        );
        let (s, t) = self.starts(i);
        (self.inputs.narrow(0, s, self.window), self.targets.narrow(0, t, self.horizon))
    }
}
