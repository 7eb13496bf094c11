//! Data loading: datasets, batching, CSV files, standardisation, splits and sequence windows.
//!
//! ## Design
//! - **An example is a [`Params`] value** (a `Tensor`, a tuple `(x, y)`, a derived struct), and a
//!   batch has the *same type*, with every leaf stacked along a new leading axis. So a model's
//!   loss function takes a batch of exactly the type the dataset declares, with no separate
//!   "batch type" to keep in sync, and [`collate`] works for any structure.
//! - [`Dataset::get_batch`] has a default (`get` each index, then [`collate`]), which
//!   in-memory datasets override with one `index_select` per leaf ([`TensorDataset`]).
//! - Shuffling is counter-based ([`adjoint_tensor::random::permutation`] under
//!   `Key::new(seed).fold_in(epoch)`): epoch `e` of a loader always sees the same order, so a
//!   resumed run replays the same batches, and prefetching cannot change what is produced.
//! - Files are data: a malformed CSV row is a [`NnError::Parse`](crate::NnError::Parse) naming
//!   the file, line and field, never a panic. Caller bugs (batch size 0, mismatched leading
//!   dimensions) panic with the caller's line.
//!
//! ```
//! use adjoint_core::Tensor;
//! use adjoint_nn::data::{DataLoader, TensorDataset};
//!
//! let x = Tensor::from_vec((0..10).map(|i| i as f32).collect(), &[5, 2]);
//! let y = Tensor::from_vec(vec![0i64, 1, 0, 1, 1], &[5]);
//! let mut loader = DataLoader::new(TensorDataset::new((x, y)), 2).shuffle(7).drop_last(true);
//! let batches: Vec<(Tensor, Tensor)> = loader.iter().collect();
//! assert_eq!(batches.len(), 2);
//! assert_eq!(batches[0].0.shape(), &[2, 2]);
//! assert_eq!(batches[0].1.shape(), &[2]);
//! ```

mod csv;
mod loader;
pub mod pgm;
mod prep;

use adjoint_core::{Params, Tensor};

pub use csv::{parse_csv, read_csv, Columns, CsvOptions, CsvTable, Missing};
pub use loader::{epoch_order, Batches, DataLoader};
pub use prep::{random_split, time_split, Split, Standardizer, Windows};

/// A collection of examples addressed by index.
///
/// Implementations must be cheap to share across threads (a [`DataLoader`] with prefetch calls
/// `get_batch` from a background thread).
pub trait Dataset: Send + Sync + 'static {
    /// One example; a batch has the same type with a leading batch axis on every leaf.
    type Item: Params + Send + 'static;

    /// Number of examples.
    fn len(&self) -> usize;

    /// True when there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Example `index` (`index < len()`; out of range is a caller bug and may panic).
    fn get(&self, index: usize) -> Self::Item;

    /// The examples at `indices`, stacked along a new leading axis. The default calls
    /// [`get`](Self::get) for each index and then [`collate`]; override it when a whole batch can
    /// be gathered at once.
    fn get_batch(&self, indices: &[usize]) -> Self::Item {
        let examples: Vec<Self::Item> = indices.iter().map(|&i| self.get(i)).collect();
        collate(&examples)
    }
}

/// Stack examples into a batch: leaf `j` of the result is `stack([e[j] for e in examples], 0)`.
/// Non-tensor parts (skipped fields) are taken from the first example.
///
/// Panics (a caller bug) when `examples` is empty or the examples' structures or leaf shapes
/// differ.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::data::collate;
/// let a = (Tensor::from_vec(vec![1.0f32, 2.0], &[2]), Tensor::scalar(0i64));
/// let b = (Tensor::from_vec(vec![3.0f32, 4.0], &[2]), Tensor::scalar(1i64));
/// let (x, y) = collate(&[a, b]);
/// assert_eq!(x.shape(), &[2, 2]);
/// assert_eq!(y.to_vec::<i64>(), vec![0, 1]);
/// ```
#[track_caller]
pub fn collate<T: Params>(examples: &[T]) -> T {
    let Some(first) = examples.first() else {
        panic!("adjoint-nn: collate: no examples to stack");
    };
    let leaves: Vec<Vec<Tensor>> = examples.iter().map(|e| e.leaves()).collect();
    let n = leaves[0].len();
    if let Some((i, l)) = leaves.iter().enumerate().find(|(_, l)| l.len() != n) {
        panic!("adjoint-nn: collate: example {i} has {} tensor leaves, example 0 has {n}", l.len());
    }
    let mut j = 0;
    first.map_tensors(&mut |_| {
        let column: Vec<&Tensor> = leaves.iter().map(|l| &l[j]).collect();
        j += 1;
        Tensor::stack(&column, 0)
    })
}

/// Rows `indices` (along axis 0) of every leaf of `value`, in that order.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::data::take_rows;
/// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4]);
/// assert_eq!(take_rows(&x, &[3, 0]).to_vec::<f32>(), vec![3.0, 0.0]);
/// ```
#[track_caller]
pub fn take_rows<P: Params>(value: &P, indices: &[usize]) -> P {
    let idx = index_tensor(indices);
    value.map_tensors(&mut |t| {
        assert!(t.rank() >= 1, "adjoint-nn: take_rows: a leaf is a scalar (shape []), it has no rows");
        t.index_select(0, &idx)
    })
}

pub(crate) fn index_tensor(indices: &[usize]) -> Tensor {
    Tensor::from_vec(indices.iter().map(|&i| i as i64).collect::<Vec<i64>>(), &[indices.len()])
}

/// Number of examples in a batch: the leading dimension of its first leaf (0 when it has none).
pub fn batch_len<P: Params>(batch: &P) -> usize {
    let mut n = None;
    batch.for_each_tensor(&mut |t| {
        if n.is_none() {
            n = Some(t.shape().first().copied().unwrap_or(1));
        }
    });
    n.unwrap_or(0)
}

/// An in-memory dataset: example `i` is row `i` (along axis 0) of every leaf of a [`Params`]
/// value, such as `(features, labels)`. Batches are gathered with one `index_select` per leaf.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::data::{Dataset, TensorDataset};
/// let ds = TensorDataset::new((Tensor::zeros(&[4, 3]), Tensor::from_vec(vec![0i64, 1, 2, 3], &[4])));
/// assert_eq!(ds.len(), 4);
/// let (x, y) = ds.get(2);
/// assert_eq!((x.shape(), y.item()), (&[3usize][..], 2.0));
/// ```
#[derive(Clone)]
pub struct TensorDataset<T> {
    value: T,
    len: usize,
}

impl<T: Params> TensorDataset<T> {
    /// Wrap `value`; every leaf must have the same leading dimension (a caller bug otherwise).
    #[track_caller]
    pub fn new(value: T) -> Self {
        let mut shapes: Vec<Vec<usize>> = Vec::new();
        value.for_each_tensor(&mut |t| shapes.push(t.shape().to_vec()));
        assert!(!shapes.is_empty(), "adjoint-nn: TensorDataset::new: the value has no tensor leaves");
        if let Some(s) = shapes.iter().find(|s| s.is_empty()) {
            panic!("adjoint-nn: TensorDataset::new: a leaf is a scalar (shape {s:?}); every leaf needs a leading example axis");
        }
        let len = shapes[0][0];
        if shapes.iter().any(|s| s[0] != len) {
            panic!("adjoint-nn: TensorDataset::new: leaves have different leading dimensions: {shapes:?}");
        }
        TensorDataset { value, len }
    }

    /// The wrapped value (all examples).
    pub fn tensors(&self) -> &T {
        &self.value
    }
}

impl<T: Params + Send + Sync + 'static> Dataset for TensorDataset<T> {
    type Item = T;

    fn len(&self) -> usize {
        self.len
    }

    #[track_caller]
    fn get(&self, index: usize) -> T {
        assert!(
            index < self.len,
            "adjoint-nn: TensorDataset::get: index {index} out of range for {} examples",
            self.len
        );
        self.value.map_tensors(&mut |t| t.narrow(0, index, 1).squeeze(0))
    }

    fn get_batch(&self, indices: &[usize]) -> T {
        take_rows(&self.value, indices)
    }
}

/// The examples of `dataset` at `indices` (PyTorch's `Subset`), e.g. one part of a [`Split`].
pub struct Subset<D> {
    dataset: std::sync::Arc<D>,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// A view of `dataset` restricted to `indices` (each must be `< dataset.len()`).
    #[track_caller]
    pub fn new(dataset: std::sync::Arc<D>, indices: Vec<usize>) -> Self {
        if let Some(&i) = indices.iter().find(|&&i| i >= dataset.len()) {
            panic!("adjoint-nn: Subset::new: index {i} out of range for a dataset of {}", dataset.len());
        }
        Subset { dataset, indices }
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    type Item = D::Item;
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> D::Item {
        self.dataset.get(self.indices[index])
    }
    fn get_batch(&self, indices: &[usize]) -> D::Item {
        let mapped: Vec<usize> = indices.iter().map(|&i| self.indices[i]).collect();
        self.dataset.get_batch(&mapped)
    }
}
