//! The sharded update's state ([`DataParallelConfig::shard_update`](crate::DataParallelConfig::shard_update)):
//! which rows of each leaf this rank owns, its buffers, and the two halves of the exchange —
//! through the shared segment of [`crate::shm`] on one node (this rank's rows of the mean
//! gradient summed from every rank's gradient area; the new parameters gathered from every
//! rank's parameter area), or through `Dist`'s ring across nodes.

use adjoint_core::Tensor;
use adjoint_tensor::{DType, Element, Storage};

use crate::bucket::SharedBuf;
use crate::comm::{Dist, Float, Pending};
use crate::shm::Segment;
use crate::DistError;

/// Rows `(start, len)` of `rows` that rank `r` of `w` owns in a sharded update.
pub(crate) fn row_range(rows: usize, w: usize, r: usize) -> (usize, usize) {
    let (lo, hi) = (r * rows / w, (r + 1) * rows / w);
    (lo, hi - lo)
}

/// Whether a leaf of this dtype and shape is split by rows across `w` ranks.
pub(crate) fn shardable(dtype: DType, shape: &[usize], w: usize) -> bool {
    matches!(dtype, DType::F32 | DType::F64) && shape.first().is_some_and(|&rows| rows >= w)
}

/// Rows `lo..lo + len` of `t`, copied into a tensor of their own.
pub(crate) fn rows_of(t: &Tensor, lo: usize, len: usize) -> Tensor {
    let v = t.narrow(0, lo, len);
    match t.dtype() {
        DType::F32 => Tensor::from_vec(v.to_vec::<f32>(), v.shape()),
        _ => Tensor::from_vec(v.to_vec::<f64>(), v.shape()),
    }
}

/// One leaf of a sharded update. Rank `r` owns the rows [`row_range`]`(rows, w, r)`, a
/// contiguous range of the row-major leaf, so each buffer below is the whole leaf and rank
/// `r`'s rows are its part `r` for the ring reduce-scatter and all-gather.
pub(crate) struct ShardLeaf {
    /// Elements each rank owns (its rows times the row length), in rank order.
    pub(crate) parts: Vec<usize>,
    /// This rank's first element and the shape of its rows.
    pub(crate) start: usize,
    pub(crate) own_shape: Vec<usize>,
    /// The leaf's element type, and its byte offset in each rank's gradient and parameter
    /// areas of the shared segment (when there is one).
    pub(crate) dtype: DType,
    pub(crate) at: usize,
    /// The ring path's buffers (empty when the shared segment is used). The gradient: packed
    /// whole, reduce-scattered in place; this rank's rows of the mean are a view of it.
    pub(crate) grad: SharedBuf,
    /// The parameter, two buffers used in turn: this rank's updated rows are copied in, the
    /// all-gather fills in the others', and the new parameter is a view of the whole. The
    /// buffer of the step before last has no views left by then (unless the caller kept that
    /// parameter, when [`SharedBuf::unique`] takes a new one), so nothing is copied out.
    pub(crate) param: [SharedBuf; 2],
}

/// The state of a sharded update ([`DataParallelConfig::shard_update`]).
pub(crate) struct Sharding {
    /// For each leaf, `Some` when sharded.
    pub(crate) slot: Vec<Option<ShardLeaf>>,
    /// The sharded leaves in the order their collectives start (reverse leaf order, as the
    /// buckets: the backward sweep finishes the last leaves first).
    pub(crate) order: Vec<usize>,
    /// This rank's parameter leaves: its rows of the sharded leaves, the others whole.
    pub(crate) leaves: Vec<Tensor>,
    /// For each leaf of the optimizer: its full shape when it holds this rank's rows only.
    pub(crate) opt_full: Vec<Option<Vec<usize>>>,
    /// Which of the two parameter buffers the next all-gather fills.
    pub(crate) turn: usize,
    /// When every rank is on this node: the shared segment that replaces the rings, and the
    /// bytes of one area in it (each rank's segment is its gradient area, then its parameter
    /// area; see [`crate::shm`]).
    pub(crate) shm: Option<(Segment, usize)>,
}

/// Wait for every rank with the shared segment's stores ordered around the barrier (a
/// failure poisons the replica, as a failed collective does).
pub(crate) fn shm_barrier(dist: &Dist, poisoned: &mut bool, seg: &Segment) -> Result<(), DistError> {
    seg.sync();
    let r = dist.barrier();
    seg.sync();
    if r.is_err() {
        *poisoned = true;
    }
    r
}

/// This rank's rows of leaf `l`'s mean gradient: the sum over the ranks' gradient areas, in
/// rank order, times `scale`.
pub(crate) fn reduce_rows<T: Float + Element>(seg: &Segment, l: &ShardLeaf, scale: f64) -> Tensor {
    let n: usize = l.own_shape.iter().product();
    let at = l.at + l.start * std::mem::size_of::<T>();
    let mut out: Vec<T> = adjoint_tensor::cache::take(n);
    // SAFETY: every rank wrote its gradient area before the barrier, and none writes it again
    // before the next step's second barrier, which this rank reaches after this read.
    // The mean's scale is folded into the last rank's sum (no pass of its own); a segment
    // exists only for 2 ranks or more, so there is a last sum.
    let (w, k) = (l.parts.len(), <T as Float>::from_f64(scale));
    debug_assert!(w >= 2);
    // The first two ranks' rows are summed into the fresh buffer in one pass (no copy first).
    unsafe {
        let (a, b) = (seg.slice::<T>(0, at, n), seg.slice::<T>(1, at, n));
        let spare = &mut out.spare_capacity_mut()[..n];
        // Scaled here when they are the only two (`· 1` is exact: the same bits otherwise).
        let first = if w == 2 { k } else { <T as Float>::from_f64(1.0) };
        spare.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&x, &y))| {
            o.write((x + y) * first);
        });
        out.set_len(n);
        for q in 2..w {
            let last = q + 1 == w;
            out.iter_mut().zip(seg.slice::<T>(q, at, n)).for_each(|(o, &x)| {
                *o = if last { (*o + x) * k } else { *o + x };
            });
        }
    }
    Tensor::from_vec(out, &l.own_shape)
}

/// Leaf `l`'s new parameter, `shape`: each rank's rows from its parameter area (leaf at byte
/// `at`).
pub(crate) fn gather_rows<T: Float + Element>(
    seg: &Segment,
    at: usize,
    l: &ShardLeaf,
    shape: &[usize],
) -> Tensor {
    let n: usize = shape.iter().product();
    let mut out: Vec<T> = adjoint_tensor::cache::take(n);
    let mut start = 0;
    for (q, &len) in l.parts.iter().enumerate() {
        // SAFETY: rank q wrote these rows before the barrier and writes them again only after
        // the next step's first barrier, which this rank reaches after this read.
        out.extend_from_slice(unsafe { seg.slice::<T>(q, at + start * std::mem::size_of::<T>(), len) });
        start += len;
    }
    Tensor::from_vec(out, shape)
}

/// The two halves of a ring allreduce that a sharded update runs apart.
#[derive(Clone, Copy)]
pub(crate) enum Half {
    ReduceScatter(f64),
    AllGather,
}

/// Start `op` over the whole of `buf`, cut into the ranks' `parts`.
///
/// # Safety
///
/// As [`Dist::start_ring_allreduce`]: `buf` is lent to the ring until it completes.
pub(crate) unsafe fn start_ring(
    dist: &Dist,
    buf: &mut SharedBuf,
    op: Half,
    parts: &[usize],
    what: &str,
) -> Result<Pending, DistError> {
    // SAFETY: passed on to the caller.
    unsafe {
        match (buf.unique(), op) {
            (Storage::F32(v), Half::ReduceScatter(scale)) => {
                dist.start_ring_reduce_scatter(v, parts, scale, what)
            }
            (Storage::F64(v), Half::ReduceScatter(scale)) => {
                dist.start_ring_reduce_scatter(v, parts, scale, what)
            }
            (Storage::F32(v), Half::AllGather) => dist.start_ring_allgather(v, parts, what),
            (Storage::F64(v), Half::AllGather) => dist.start_ring_allgather(v, parts, what),
            _ => unreachable!("sharded leaves are f32 or f64"),
        }
    }
}
