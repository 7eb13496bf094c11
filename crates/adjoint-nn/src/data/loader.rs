//! [`DataLoader`]: batches of a [`Dataset`], optionally shuffled per epoch and prefetched on a
//! background thread.
//!
//! Prefetching uses a bounded channel, so at most `prefetch` batches are built ahead. Dropping a
//! [`Batches`] iterator early (a `break` out of the epoch, an error) tells the worker to stop,
//! disconnects the channel (which wakes a worker blocked on a full channel) and joins it, so no
//! thread outlives its iterator and nothing hangs. A panic inside the dataset on the worker is
//! re-raised on the consuming thread rather than silently ending the epoch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use adjoint_tensor::random::{permutation, Key};

use super::Dataset;

/// Batches over a [`Dataset`]: batch size, seeded per-epoch shuffling, drop-last and background
/// prefetch.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_nn::data::{DataLoader, TensorDataset};
/// let ds = TensorDataset::new(Tensor::arange(10));
/// let mut loader = DataLoader::new(ds, 4).shuffle(42).prefetch(2);
/// assert_eq!(loader.num_batches(), 3); // 4 + 4 + 2
/// let first: Vec<Tensor> = loader.iter().collect();   // epoch 0
/// let second: Vec<Tensor> = loader.iter().collect();  // epoch 1: a different order
/// assert_ne!(first[0].to_vec::<f32>(), second[0].to_vec::<f32>());
/// // Any epoch can be replayed exactly:
/// assert_eq!(loader.epoch(0).next().unwrap().to_vec::<f32>(), first[0].to_vec::<f32>());
/// ```
pub struct DataLoader<D: Dataset> {
    dataset: Arc<D>,
    batch_size: usize,
    seed: Option<u64>,
    drop_last: bool,
    prefetch: usize,
    next_epoch: usize,
    map: Option<(u64, BatchMap<D::Item>)>,
}

/// A per-batch transform with its own random key (see [`DataLoader::map_batches`]).
type BatchMap<T> = Arc<dyn Fn(T, &Key) -> T + Send + Sync>;

impl<D: Dataset> DataLoader<D> {
    /// Batches of `batch_size` examples in dataset order, no prefetch.
    #[track_caller]
    pub fn new(dataset: D, batch_size: usize) -> Self {
        Self::from_arc(Arc::new(dataset), batch_size)
    }

    /// Like [`new`](Self::new) for a dataset that is shared with other loaders.
    #[track_caller]
    pub fn from_arc(dataset: Arc<D>, batch_size: usize) -> Self {
        assert!(batch_size > 0, "adjoint-nn: DataLoader: batch_size must be at least 1");
        DataLoader {
            dataset,
            batch_size,
            seed: None,
            drop_last: false,
            prefetch: 0,
            next_epoch: 0,
            map: None,
        }
    }

    /// Shuffle every epoch; epoch `e` uses the permutation drawn from `Key::new(seed).fold_in(e)`.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Drop the last batch when it is smaller than the batch size.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Build up to `batches` batches ahead on a background thread (0: no thread, the default).
    pub fn prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches;
        self
    }

    /// Transform every batch with `f(batch, key)` (on the prefetch thread when there is one),
    /// e.g. random flips or crops for augmentation. Batch `b` of epoch `e` gets the key
    /// `Key::new(seed).fold_in(e).fold_in(b)`, so augmented epochs are reproducible too.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// use adjoint_nn::data::{DataLoader, TensorDataset};
    /// use adjoint_tensor::random::{normal, Key};
    /// let noisy = DataLoader::new(TensorDataset::new(Tensor::zeros(&[6, 2])), 3)
    ///     .map_batches(1, |x: Tensor, key: &Key| &x + &Tensor::from_array(normal(key, x.shape(), x.dtype())));
    /// let a: Vec<Vec<f32>> = noisy.epoch(0).map(|b| b.to_vec()).collect();
    /// let b: Vec<Vec<f32>> = noisy.epoch(0).map(|b| b.to_vec()).collect();
    /// assert_eq!(a, b);             // same epoch, same noise
    /// assert_ne!(a[0], a[1]);       // another batch, other noise
    /// ```
    pub fn map_batches(
        mut self,
        seed: u64,
        f: impl Fn(D::Item, &Key) -> D::Item + Send + Sync + 'static,
    ) -> Self {
        self.map = Some((seed, Arc::new(f)));
        self
    }

    /// The dataset.
    pub fn dataset(&self) -> &D {
        &self.dataset
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let n = self.dataset.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Examples per epoch (after drop-last).
    pub fn num_examples(&self) -> usize {
        if self.drop_last {
            self.num_batches() * self.batch_size
        } else {
            self.dataset.len()
        }
    }

    /// The epoch the next [`iter`](Self::iter) call will produce.
    pub fn next_epoch(&self) -> usize {
        self.next_epoch
    }

    /// Make the next [`iter`](Self::iter) produce epoch `epoch` (to resume a run).
    pub fn set_epoch(&mut self, epoch: usize) {
        self.next_epoch = epoch;
    }

    /// The batches of the next epoch (then advances the epoch counter).
    pub fn iter(&mut self) -> Batches<D::Item> {
        let e = self.next_epoch;
        self.next_epoch += 1;
        self.epoch(e)
    }

    /// The example order of epoch `epoch` (before batching and drop-last).
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        epoch_order(self.seed, epoch, self.dataset.len())
    }

    /// The batches of epoch `epoch`, without touching the epoch counter.
    pub fn epoch(&self, epoch: usize) -> Batches<D::Item> {
        let order = self.order(epoch);
        let mut chunks: Vec<Vec<usize>> = order.chunks(self.batch_size).map(|c| c.to_vec()).collect();
        if self.drop_last && chunks.last().is_some_and(|c| c.len() < self.batch_size) {
            chunks.pop();
        }
        let len = chunks.len();
        let ds = self.dataset.clone();
        let map = self.map.clone();
        let mut b = 0u64;
        let mut fetch: Fetch<D::Item> = Box::new(move |c| {
            let batch = ds.get_batch(&c);
            b += 1;
            match &map {
                Some((seed, f)) => f(batch, &Key::new(*seed).fold_in(epoch as u64).fold_in(b - 1)),
                None => batch,
            }
        });
        if self.prefetch == 0 {
            return Batches { inner: Inner::Direct { chunks: chunks.into_iter(), fetch }, remaining: len };
        }
        let (tx, rx) = sync_channel(self.prefetch);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_w = stop.clone();
        let handle = std::thread::Builder::new()
            .name("adjoint-prefetch".into())
            .spawn(move || {
                for c in chunks {
                    if stop_w.load(Ordering::Relaxed) {
                        break;
                    }
                    // A send error means the iterator was dropped: stop quietly.
                    if tx.send(fetch(c)).is_err() {
                        break;
                    }
                }
            })
            .expect("adjoint-nn: DataLoader: could not spawn the prefetch thread");
        Batches { inner: Inner::Prefetch { rx: Some(rx), handle: Some(handle), stop }, remaining: len }
    }
}

/// The example order of epoch `epoch` of `n` examples: `0..n` without a seed, else the
/// permutation drawn from `Key::new(seed).fold_in(epoch)`. The one definition of an epoch's
/// order, shared by [`DataLoader`] and adjoint-dist's `DistributedSampler` (so W ranks read
/// the batches one process reads).
///
/// ```
/// use adjoint_nn::data::epoch_order;
/// assert_eq!(epoch_order(None, 3, 4), vec![0, 1, 2, 3]);
/// let mut p = epoch_order(Some(7), 3, 4);
/// p.sort();
/// assert_eq!(p, vec![0, 1, 2, 3]);
/// ```
pub fn epoch_order(seed: Option<u64>, epoch: usize, n: usize) -> Vec<usize> {
    match seed {
        None => (0..n).collect(),
        Some(seed) => permutation(&Key::new(seed).fold_in(epoch as u64), n)
            .to_vec::<i64>()
            .into_iter()
            .map(|i| i as usize)
            .collect(),
    }
}

/// The batches of one epoch (an iterator; see [`DataLoader`]).
pub struct Batches<T: Send + 'static> {
    inner: Inner<T>,
    remaining: usize,
}

type Fetch<T> = Box<dyn FnMut(Vec<usize>) -> T + Send>;

enum Inner<T: Send + 'static> {
    Direct { chunks: std::vec::IntoIter<Vec<usize>>, fetch: Fetch<T> },
    Prefetch { rx: Option<Receiver<T>>, handle: Option<JoinHandle<()>>, stop: Arc<AtomicBool> },
}

impl<T: Send + 'static> Iterator for Batches<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let item = match &mut self.inner {
            Inner::Direct { chunks, fetch } => chunks.next().map(fetch),
            Inner::Prefetch { rx, handle, .. } => match rx.as_ref().and_then(|r| r.recv().ok()) {
                Some(b) => Some(b),
                None => {
                    // Channel closed: the worker finished or panicked. Re-raise a panic here.
                    if let Some(h) = handle.take()
                        && let Err(payload) = h.join()
                    {
                        std::panic::resume_unwind(payload);
                    }
                    None
                }
            },
        };
        if item.is_some() {
            self.remaining = self.remaining.saturating_sub(1);
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T: Send + 'static> ExactSizeIterator for Batches<T> {}

impl<T: Send + 'static> Drop for Batches<T> {
    fn drop(&mut self) {
        if let Inner::Prefetch { rx, handle, stop } = &mut self.inner {
            stop.store(true, Ordering::Relaxed);
            // Dropping the receiver wakes a worker blocked in `send` with an error.
            drop(rx.take());
            if let Some(h) = handle.take() {
                // A worker panic during an early drop is not re-raised (we may be unwinding).
                let _ = h.join();
            }
        }
    }
}

impl<T: Send + 'static> Batches<T> {
    /// True when this epoch's batches are built on a background thread.
    pub fn is_prefetching(&self) -> bool {
        matches!(self.inner, Inner::Prefetch { .. })
    }
}
