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

/// A bucket's flat buffer (used by `DataParallel`, tested here without MPI).
#[derive(Debug)]
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) enum Flat {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
impl Flat {
    pub(crate) fn zeros(dtype: DType, len: usize) -> Flat {
        match dtype {
            DType::F32 => Flat::F32(vec![0.0; len]),
            _ => Flat::F64(vec![0.0; len]),
        }
    }

    /// Copy `t` (a leaf of this buffer's dtype) in at `offset`.
    pub(crate) fn pack(&mut self, offset: usize, t: &Tensor) {
        match self {
            Flat::F32(v) => gather_into(&mut v[offset..offset + t.numel()], t),
            Flat::F64(v) => gather_into(&mut v[offset..offset + t.numel()], t),
        }
    }

    /// `shape`-shaped tensor from `offset`, multiplied by `scale` (in a buffer from the
    /// tensor crate's caching allocator, so the step does not page-fault a fresh one; a plain
    /// copy when `scale` is 1).
    pub(crate) fn unpack(&self, offset: usize, shape: &[usize], scale: f64) -> Tensor {
        fn scaled<T: adjoint_tensor::Element + std::ops::Mul<Output = T>>(
            src: &[T],
            s: Option<T>,
            shape: &[usize],
        ) -> Tensor {
            let mut out: Vec<T> = adjoint_tensor::cache::take(src.len());
            match s {
                Some(s) => out.extend(src.iter().map(|&x| x * s)),
                None => out.extend_from_slice(src),
            }
            Tensor::from_vec(out, shape)
        }
        let n: usize = shape.iter().product();
        match self {
            Flat::F32(v) => scaled(&v[offset..offset + n], (scale != 1.0).then_some(scale as f32), shape),
            Flat::F64(v) => scaled(&v[offset..offset + n], (scale != 1.0).then_some(scale), shape),
        }
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
/// storage: a contiguous tensor is one `memcpy`; a 2-D strided one (a weight gradient is
/// usually the transpose of a matrix product) is copied in tiles, with no temporary.
///
/// The tiles matter: the weight gradients of W2 are transposed views whose rows lie 2 KiB
/// apart, and a row-by-row gather (what `Tensor::to_vec` does, in 32 × 32 tiles, then a second
/// copy) keeps evicting its own source lines (they map to the same few L1 sets). Packing W2's
/// 2.7 MB gradient took 1.1 ms that way and 0.34 ms in 16 × 16 tiles when packing the same
/// gradient over and over; packed right after the backward pass that computed it (as in a
/// step: `bench-pack --fresh`), the 16 × 16 tiles took 0.95 ms. An `f32` transposed view
/// (first stride 1, the W2 case) is therefore copied in 8 × 8 blocks transposed in AVX
/// registers where the CPU has AVX: eight 32-byte loads and eight 32-byte stores per block
/// instead of 64 scalar loads. Other layouts and `f64` take the scalar 16 × 16 tiles.
pub fn gather_into<T: adjoint_tensor::Element>(dst: &mut [T], t: &Tensor) {
    const B: usize = 16;
    let a = t.value();
    assert_eq!(dst.len(), a.numel(), "adjoint-dist: gather_into: {} elements into {}", a.numel(), dst.len());
    if let Some(s) = a.as_slice::<T>() {
        dst.copy_from_slice(s);
        return;
    }
    let l = a.layout();
    if l.rank() != 2 || a.dtype() != T::DTYPE {
        dst.copy_from_slice(&a.to_vec::<T>());
        return;
    }
    let src = a.storage_slice::<T>();
    let (r, c) = (l.shape[0], l.shape[1]);
    let (s0, s1) = (l.strides[0], l.strides[1]);
    let off = l.offset as isize;
    // Full 8 × 8 blocks of an f32 transposed view in AVX registers; the edges below.
    let (mut r_done, mut c_done) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if T::DTYPE == adjoint_tensor::DType::F32
        && s0 == 1
        && s1 > 0
        && std::arch::is_x86_feature_detected!("avx")
    {
        (r_done, c_done) = (r / 8 * 8, c / 8 * 8);
        // SAFETY: `T` is `f32` (checked above); the layout keeps every element inside the
        // storage, and the blocks stay inside `r_done × c_done`.
        unsafe {
            let dst = std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<f32>(), dst.len());
            let src = std::slice::from_raw_parts(src.as_ptr().cast::<f32>(), src.len());
            transpose_blocks_avx(dst, src, l.offset, s1 as usize, r_done, c_done, c);
        }
    }
    let mut tiles = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
        for ib in rows.clone().step_by(B) {
            let ie = (ib + B).min(rows.end);
            for jb in cols.clone().step_by(B) {
                let je = (jb + B).min(cols.end);
                for i in ib..ie {
                    let row = off + i as isize * s0;
                    for (j, x) in (jb..je).zip(&mut dst[i * c + jb..i * c + je]) {
                        *x = src[(row + j as isize * s1) as usize];
                    }
                }
            }
        }
    };
    // Everything but the AVX blocks: the columns right of them, then the rows below them.
    tiles(0..r, c_done..c);
    tiles(r_done..r, 0..c_done);
}

/// Rows `0..r8` and columns `0..c8` (multiples of 8) of a 2-D `f32` view with strides
/// `(1, s1)` at `off` in `src` (a transposed matrix: storage row `j` is column `j`), written
/// row-major into `dst` (rows of `c` elements): each 8 × 8 block is eight loads of 8
/// consecutive elements (one per column), an in-register transpose, and eight stores of 8
/// (one per row). Blocks go down 16 rows at a time, so each 64-byte source line is used whole.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_blocks_avx(
    dst: &mut [f32],
    src: &[f32],
    off: usize,
    s1: usize,
    r8: usize,
    c8: usize,
    c: usize,
) {
    use std::arch::x86_64::*;
    if r8 == 0 || c8 == 0 {
        return;
    }
    assert!(off + (r8 - 1) + (c8 - 1) * s1 < src.len() && (r8 - 1) * c + c8 <= dst.len());
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for ib in (0..r8).step_by(16) {
        for jb in (0..c8).step_by(8) {
            for i0 in (ib..(ib + 16).min(r8)).step_by(8) {
                let p = s.add(off + i0 + jb * s1);
                let r0 = _mm256_loadu_ps(p);
                let r1 = _mm256_loadu_ps(p.add(s1));
                let r2 = _mm256_loadu_ps(p.add(2 * s1));
                let r3 = _mm256_loadu_ps(p.add(3 * s1));
                let r4 = _mm256_loadu_ps(p.add(4 * s1));
                let r5 = _mm256_loadu_ps(p.add(5 * s1));
                let r6 = _mm256_loadu_ps(p.add(6 * s1));
                let r7 = _mm256_loadu_ps(p.add(7 * s1));
                let t0 = _mm256_unpacklo_ps(r0, r1);
                let t1 = _mm256_unpackhi_ps(r0, r1);
                let t2 = _mm256_unpacklo_ps(r2, r3);
                let t3 = _mm256_unpackhi_ps(r2, r3);
                let t4 = _mm256_unpacklo_ps(r4, r5);
                let t5 = _mm256_unpackhi_ps(r4, r5);
                let t6 = _mm256_unpacklo_ps(r6, r7);
                let t7 = _mm256_unpackhi_ps(r6, r7);
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let q = d.add(i0 * c + jb);
                _mm256_storeu_ps(q, _mm256_permute2f128_ps::<0x20>(u0, u4));
                _mm256_storeu_ps(q.add(c), _mm256_permute2f128_ps::<0x20>(u1, u5));
                _mm256_storeu_ps(q.add(2 * c), _mm256_permute2f128_ps::<0x20>(u2, u6));
                _mm256_storeu_ps(q.add(3 * c), _mm256_permute2f128_ps::<0x20>(u3, u7));
                _mm256_storeu_ps(q.add(4 * c), _mm256_permute2f128_ps::<0x31>(u0, u4));
                _mm256_storeu_ps(q.add(5 * c), _mm256_permute2f128_ps::<0x31>(u1, u5));
                _mm256_storeu_ps(q.add(6 * c), _mm256_permute2f128_ps::<0x31>(u2, u6));
                _mm256_storeu_ps(q.add(7 * c), _mm256_permute2f128_ps::<0x31>(u3, u7));
            }
        }
    }
}

#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
impl Flat {
    /// A `shape`-shaped tensor from `world` blocks of `block` elements: rank `r`'s rows of it
    /// (its share of `shape[0]`, as `DataParallel` splits rows) start at `offset` in block `r`.
    pub(crate) fn unpack_rows(&self, block: usize, offset: usize, shape: &[usize], world: usize) -> Tensor {
        fn gather<T: adjoint_tensor::Element>(
            v: &[T],
            block: usize,
            offset: usize,
            shape: &[usize],
            world: usize,
        ) -> Tensor {
            let row: usize = shape[1..].iter().product();
            let mut out: Vec<T> = adjoint_tensor::cache::take(shape[0] * row);
            for r in 0..world {
                let len = (r + 1) * shape[0] / world - r * shape[0] / world;
                let at = r * block + offset;
                out.extend_from_slice(&v[at..at + len * row]);
            }
            Tensor::from_vec(out, shape)
        }
        match self {
            Flat::F32(v) => gather(v, block, offset, shape, world),
            Flat::F64(v) => gather(v, block, offset, shape, world),
        }
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

    #[test]
    fn pack_then_unpack_round_trips() {
        let t = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]);
        let mut f = Flat::zeros(DType::F64, 6);
        f.pack(2, &t);
        assert_eq!(f.unpack(2, &[2, 2], 0.5).to_vec::<f64>(), vec![0.5, 1.0, 1.5, 2.0]);
        let mut g = Flat::zeros(DType::F32, 2);
        g.pack(0, &Tensor::from_vec(vec![4.0f32, 8.0], &[2]));
        assert_eq!(g.unpack(0, &[2], 0.25).to_vec::<f32>(), vec![1.0, 2.0]);
    }
}
