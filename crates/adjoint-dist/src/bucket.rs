//! Gradient buckets: which leaves are reduced together, and the flat buffers they travel in.
//! Pure Rust (no MPI), so the plan is tested everywhere.
//!
//! As in PyTorch's DDP, leaves are taken in *reverse* order — the order in which a backward
//! pass finishes their gradients (the last layer first) — and packed into buckets of at most
//! `bucket_bytes` (a leaf larger than that gets a bucket of its own). A bucket holds one dtype
//! only, so a mixed `f32`/`f64` model gets one bucket per run of equal dtypes. Leaves that are
//! not floating point (step counters, indices) are not reduced.

use std::sync::Arc;

use adjoint_core::Tensor;
use adjoint_tensor::{Array, DType, Layout, Storage};

/// DDP's default bucket size, 25 MiB.
pub const DEFAULT_BUCKET_BYTES: usize = 25 * 1024 * 1024;

/// One bucket: leaves (by index in `Params::leaves` order) and their offsets in the flat
/// buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The element type of every leaf in the bucket.
    pub dtype: DType,
    /// Leaf indices, in the order they are packed.
    pub leaves: Vec<usize>,
    /// Start of each leaf in the flat buffer (elements).
    pub offsets: Vec<usize>,
    /// Elements in the bucket.
    pub len: usize,
}

/// The buckets of a model, in the order they are started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketPlan {
    /// The buckets.
    pub buckets: Vec<Bucket>,
    /// For each leaf, `Some((bucket, position in the bucket))`, or `None` when not reduced.
    pub slot: Vec<Option<(usize, usize)>>,
}

impl BucketPlan {
    /// A plan for leaves of the given dtypes and element counts (in leaf order).
    ///
    /// ```
    /// use adjoint_dist::BucketPlan;
    /// use adjoint_tensor::DType;
    /// // Three f64 leaves of 100, 10 and 100 elements (800, 80, 800 bytes); buckets of 900 B.
    /// let plan = BucketPlan::new(&[(DType::F64, 100), (DType::F64, 10), (DType::F64, 100)], 900);
    /// let leaves: Vec<Vec<usize>> = plan.buckets.iter().map(|b| b.leaves.clone()).collect();
    /// assert_eq!(leaves, vec![vec![2, 1], vec![0]]); // last layer first
    /// ```
    #[track_caller]
    pub fn new(leaves: &[(DType, usize)], bucket_bytes: usize) -> BucketPlan {
        assert!(bucket_bytes > 0, "adjoint-dist: BucketPlan: bucket_bytes must be at least 1");
        let mut buckets: Vec<Bucket> = Vec::new();
        let mut slot = vec![None; leaves.len()];
        for i in (0..leaves.len()).rev() {
            let (dtype, n) = leaves[i];
            if !matches!(dtype, DType::F32 | DType::F64) {
                continue;
            }
            let fits = buckets.last().is_some_and(|b| {
                b.dtype == dtype && b.len > 0 && (b.len + n) * dtype.size_in_bytes() <= bucket_bytes
            });
            if !fits {
                buckets.push(Bucket { dtype, leaves: Vec::new(), offsets: Vec::new(), len: 0 });
            }
            let k = buckets.len() - 1;
            let b = &mut buckets[k];
            slot[i] = Some((k, b.leaves.len()));
            b.leaves.push(i);
            b.offsets.push(b.len);
            b.len += n;
        }
        BucketPlan { buckets, slot }
    }

    /// A plan for the leaves of `leaves` (their dtypes and sizes).
    pub fn for_leaves(leaves: &[Tensor], bucket_bytes: usize) -> BucketPlan {
        let specs: Vec<(DType, usize)> = leaves.iter().map(|t| (t.dtype(), t.numel())).collect();
        BucketPlan::new(&specs, bucket_bytes)
    }
}

/// A bucket's buffer that becomes the storage of the mean gradients: `DataParallel` packs the
/// gradients into it, sums it over the ranks in place, and hands out views of it, so the mean
/// gradients are not copied out (W2: 2.7 MB, 0.25 ms a step). The next step packs into the
/// same buffer when those views are gone (the optimizer has consumed them, as in
/// `DataParallel::step`), else into a new one, leaving the old one to the views.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) struct SharedBuf(Arc<Storage>);

#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
impl SharedBuf {
    pub(crate) fn zeros(dtype: DType, len: usize) -> SharedBuf {
        SharedBuf(Arc::new(match dtype {
            DType::F32 => Storage::F32(adjoint_tensor::cache::take_filled(len, 0.0)),
            _ => Storage::F64(adjoint_tensor::cache::take_filled(len, 0.0)),
        }))
    }

    /// The buffer to write, a new one when views of the current one are still alive.
    pub(crate) fn unique(&mut self) -> &mut Storage {
        if Arc::get_mut(&mut self.0).is_none() {
            *self = SharedBuf::zeros(self.0.dtype(), self.0.len());
        }
        Arc::get_mut(&mut self.0).expect("a new buffer has one owner")
    }

    /// Copy `t` (a leaf of this buffer's dtype) in at `offset`.
    pub(crate) fn pack(&mut self, offset: usize, t: &Tensor) {
        match self.unique() {
            Storage::F32(v) => gather_into(&mut v[offset..offset + t.numel()], t),
            Storage::F64(v) => gather_into(&mut v[offset..offset + t.numel()], t),
            _ => unreachable!("bucket buffers are f32 or f64"),
        }
    }

    /// The `shape`-shaped elements from `offset`, as a view sharing this buffer.
    pub(crate) fn view(&self, offset: usize, shape: &[usize]) -> Tensor {
        let mut layout = Layout::contiguous(shape);
        layout.offset = offset;
        Tensor::from_array(Array::from_parts(self.0.clone(), layout))
    }
}

/// Copy the elements of `t` (of type `T`) into `dst` in row-major order, straight from its
/// storage: a contiguous tensor is one `memcpy`; a 2-D strided one (a transposed view) goes
/// through adjoint-tensor's tiled and, for `f32`, AVX-blocked transpose
/// ([`adjoint_tensor::ops::transpose::copy_2d_into`]), with no temporary. Packing W2's 2.7 MB
/// gradient right after the backward pass took 0.95 ms in scalar 16 × 16 tiles and
/// 0.32–0.42 ms in AVX blocks (`bench-pack --fresh`).
pub fn gather_into<T: adjoint_tensor::Element>(dst: &mut [T], t: &Tensor) {
    let a = t.value();
    assert_eq!(dst.len(), a.numel(), "adjoint-dist: gather_into: {} elements into {}", a.numel(), dst.len());
    if let Some(s) = a.as_slice::<T>() {
        dst.copy_from_slice(s);
    } else if a.layout().rank() == 2 && a.dtype() == T::DTYPE {
        adjoint_tensor::ops::transpose::copy_2d_into(dst, a.storage_slice::<T>(), a.layout());
    } else {
        dst.copy_from_slice(&a.to_vec::<T>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_float_leaf_in_exactly_one_bucket_within_the_size() {
        let specs = [
            (DType::F32, 1000),
            (DType::F64, 3),
            (DType::I64, 1),
            (DType::F64, 5000),
            (DType::F64, 7),
            (DType::F32, 10),
            (DType::F32, 20),
        ];
        let plan = BucketPlan::new(&specs, 4096);
        for (i, (dtype, n)) in specs.iter().enumerate() {
            let placed: Vec<usize> =
                (0..plan.buckets.len()).filter(|&k| plan.buckets[k].leaves.contains(&i)).collect();
            if *dtype == DType::I64 {
                assert!(placed.is_empty() && plan.slot[i].is_none());
                continue;
            }
            assert_eq!(placed.len(), 1, "leaf {i}");
            let (k, pos) = plan.slot[i].unwrap();
            let b = &plan.buckets[k];
            assert_eq!((k, b.leaves[pos], b.dtype), (placed[0], i, *dtype));
            // Only a leaf alone may exceed the bucket size.
            assert!(b.len * dtype.size_in_bytes() <= 4096 || b.leaves.len() == 1, "bucket {k}: {b:?}");
            assert!(*n <= b.len);
        }
        // Offsets tile each bucket.
        for b in &plan.buckets {
            let mut end = 0;
            for (&l, &o) in b.leaves.iter().zip(&b.offsets) {
                assert_eq!(o, end);
                end += specs[l].1;
            }
            assert_eq!(end, b.len);
        }
        // Started in reverse leaf order.
        let order: Vec<usize> = plan.buckets.iter().flat_map(|b| b.leaves.clone()).collect();
        assert_eq!(order, vec![6, 5, 4, 3, 1, 0]);
    }

    #[test]
    fn gather_into_copies_strided_views_in_row_major_order() {
        // Transposed (the weight-gradient case), sliced, flipped, 3-D, and both dtypes; sizes
        // not multiples of the tile.
        let a = Tensor::from_vec((0..37 * 21).map(|i| i as f32).collect::<Vec<f32>>(), &[37, 21]);
        let views = [a.transpose(0, 1), a.clone(), a.reshape(&[21, 37]).transpose(0, 1), a.flip(0)];
        for t in views {
            let mut dst = vec![0.0f32; t.numel()];
            gather_into(&mut dst, &t);
            assert_eq!(dst, t.to_vec::<f32>(), "{:?}", t.shape());
        }
        // The AVX path (f32, first stride 1): whole 8 × 8 blocks only, rows that end in half a
        // 16-row band, and an offset view with edges on both sides.
        let m = Tensor::from_vec((0..40 * 64).map(|i| i as f32).collect::<Vec<f32>>(), &[40, 64]);
        let views =
            [m.transpose(0, 1), m.narrow(1, 0, 24).transpose(0, 1), m.transpose(0, 1).narrow(1, 3, 29)];
        for t in views {
            let mut dst = vec![-1.0f32; t.numel()];
            gather_into(&mut dst, &t);
            assert_eq!(dst, t.to_vec::<f32>(), "{:?}", t.shape());
        }
        let b = Tensor::from_vec((0..2 * 3 * 4).map(f64::from).collect::<Vec<f64>>(), &[2, 3, 4]);
        let t = b.transpose(0, 2);
        let mut dst = vec![0.0f64; 24];
        gather_into(&mut dst, &t);
        assert_eq!(dst, t.to_vec::<f64>());
    }

    #[test]
    fn shared_buffers_are_reused_only_once_their_views_are_gone() {
        let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
        let mut b = SharedBuf::zeros(DType::F32, 6);
        b.pack(2, &t);
        let v = b.view(2, &[2, 2]);
        assert_eq!(v.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
        // A view is alive: packing must not write under it.
        b.pack(2, &Tensor::from_vec(vec![5.0f32; 4], &[2, 2]));
        assert_eq!(v.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(b.view(2, &[2, 2]).to_vec::<f32>(), vec![5.0; 4]);
        // No view left: the same buffer is written again.
        drop(v);
        let before = Arc::as_ptr(&b.0);
        b.pack(0, &Tensor::from_vec(vec![6.0f32, 7.0], &[2]));
        assert_eq!(Arc::as_ptr(&b.0), before);
        assert_eq!(b.view(0, &[2]).to_vec::<f32>(), vec![6.0, 7.0]);
    }
}
