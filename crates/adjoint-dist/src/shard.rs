//! The sharded update's state ([`DataParallelConfig::shard_update`](crate::DataParallelConfig::shard_update)):
//! which rows of each leaf this rank owns, its buffers, and the two halves of the exchange —
//! through the shared segment of [`crate::shm`] on one node (this rank's rows of the mean
//! gradient summed from every rank's gradient area; the new parameters gathered from every
//! rank's parameter area), or through `Dist`'s ring across nodes.

use adjoint_core::Tensor;
use adjoint_nn::optim::{Flat, FlatLeaf, Optimizer};
use adjoint_tensor::{Array, DType, Element, Storage};

use crate::bucket::{gather_into, SharedBuf};
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
    /// `leaves` is out of date (placeholders): the update through [`flat_update`] works on the
    /// parameters themselves, and `leaves` is rebuilt from them when the tensor path needs it.
    pub(crate) stale: bool,
    /// The optimizer may have a flat path ([`Optimizer::step_flat`]): true until a step finds
    /// it has none.
    pub(crate) flat: bool,
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

/// Leaf `l`'s gradient `g` into rank `rank`'s gradient area of `seg`. When this rank's own rows
/// of `g` are contiguous, only the other ranks' rows are copied, and the returned view of `g`'s
/// own rows is what the sums read ([`grad_parts`]); otherwise all of `g` is copied and `None`
/// returned.
///
/// # Safety
///
/// As [`Segment::slice_mut`]: this rank's gradient area, which no rank reads before the
/// barrier that ends the backward pass.
pub(crate) unsafe fn put_gradient<T: Element>(
    seg: &Segment,
    rank: usize,
    l: &ShardLeaf,
    g: &Tensor,
) -> Option<Tensor> {
    let (n, rows) = (g.numel(), g.shape()[0]);
    let own_n: usize = l.own_shape.iter().product();
    let size = std::mem::size_of::<T>();
    if n > 0 {
        let row = n / rows;
        let (lo, hi) = (l.start / row, (l.start + own_n) / row);
        let own = g.narrow(0, lo, hi - lo);
        if own.value().as_slice::<T>().is_some() {
            // SAFETY: passed on from the caller; the ranges lie in the leaf's part of the area.
            unsafe {
                if lo > 0 {
                    gather_into(seg.slice_mut::<T>(rank, l.at, l.start), &g.narrow(0, 0, lo));
                }
                if hi < rows {
                    let at = l.at + (l.start + own_n) * size;
                    gather_into(
                        seg.slice_mut::<T>(rank, at, n - l.start - own_n),
                        &g.narrow(0, hi, rows - hi),
                    );
                }
            }
            return Some(own);
        }
    }
    // SAFETY: as above.
    unsafe { gather_into(seg.slice_mut::<T>(rank, l.at, n), g) };
    None
}

/// The parts of this rank's rows of leaf `l`'s gradient summed over the ranks, in rank order:
/// each rank's gradient area, and for this rank `own` (from [`put_gradient`]) when it kept them.
///
/// # Safety
///
/// Every rank wrote its gradient area before the barrier, and none writes it again while the
/// slices live (before the next step's second barrier).
pub(crate) unsafe fn grad_parts<'a, T: Element>(
    seg: &'a Segment,
    rank: usize,
    l: &ShardLeaf,
    own: Option<&'a Tensor>,
) -> Vec<&'a [T]> {
    let n: usize = l.own_shape.iter().product();
    let at = l.at + l.start * std::mem::size_of::<T>();
    (0..l.parts.len())
        .map(|q| match own.filter(|_| q == rank) {
            Some(t) => t.value().as_slice::<T>().expect("own rows kept only when contiguous"),
            // SAFETY: passed on from the caller.
            None => unsafe { seg.slice::<T>(q, at, n) },
        })
        .collect()
}

/// This rank's rows of leaf `l`'s mean gradient: the sum of its [`grad_parts`], in rank order,
/// times `scale`.
///
/// # Safety
///
/// As [`grad_parts`].
pub(crate) unsafe fn reduce_rows<T: Float + Element>(
    seg: &Segment,
    rank: usize,
    l: &ShardLeaf,
    own: Option<&Tensor>,
    scale: f64,
) -> Tensor {
    let n: usize = l.own_shape.iter().product();
    let mut out: Vec<T> = adjoint_tensor::cache::take(n);
    // SAFETY: passed on from the caller.
    let parts = unsafe { grad_parts::<T>(seg, rank, l, own) };
    // The mean's scale is folded into the last rank's sum (no pass of its own); a segment
    // exists only for 2 ranks or more, so there is a last sum.
    let (w, k) = (l.parts.len(), <T as Float>::from_f64(scale));
    debug_assert!(w >= 2);
    // The first two ranks' rows are summed into the fresh buffer in one pass (no copy first).
    {
        let (a, b) = (parts[0], parts[1]);
        let spare = &mut out.spare_capacity_mut()[..n];
        // Scaled here when they are the only two (`· 1` is exact: the same bits otherwise).
        let first = if w == 2 { k } else { <T as Float>::from_f64(1.0) };
        spare.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&x, &y))| {
            o.write((x + y) * first);
        });
        // SAFETY: the loop above wrote all `n` elements, and `take` gave at least `n`.
        unsafe { out.set_len(n) };
        for (q, part) in parts.iter().enumerate().skip(2) {
            let last = q + 1 == w;
            out.iter_mut().zip(*part).for_each(|(o, &x)| {
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

/// A leaf's buffers for [`flat_update`]: the parameter to update in place, its gradient's
/// parts, and where the other ranks read the new values (the sharded leaves' rows).
enum LeafBufs<'a> {
    F32(Bufs<'a, f32>),
    F64(Bufs<'a, f64>),
}

/// The parameter, its gradient's parts and its mirror (see [`LeafBufs`]).
type Bufs<'a, T> = (&'a mut [T], Vec<&'a [T]>, Option<&'a mut [T]>);

/// One leaf's [`Bufs`] for [`flat_update`]: with `l` (a sharded leaf), this rank's rows of
/// `a`, their gradient's [`grad_parts`] when `own` is given (else `mean`, this rank's rows of
/// the mean), and its rows of the parameter area as the mirror; otherwise all of `a` and
/// `mean`, no mirror.
///
/// # Safety
///
/// With `l`: no other rank reads this rank's rows of the parameter area, nor writes any
/// gradient area, while the buffers live.
unsafe fn leaf_bufs<'a, T: Element>(
    a: &'a mut Array,
    seg: &'a Segment,
    rank: usize,
    area: usize,
    l: Option<&ShardLeaf>,
    mean: &'a Tensor,
    own: Option<Option<&'a Tensor>>,
) -> Bufs<'a, T> {
    let whole = a.try_unique_slice_mut::<T>().expect("unique_array");
    let mean = || vec![mean.value().as_slice::<T>().expect("flat_applicable")];
    let Some(l) = l else { return (whole, mean(), None) };
    let n: usize = l.own_shape.iter().product();
    let at = area + l.at + l.start * std::mem::size_of::<T>();
    // SAFETY: passed on from the caller.
    unsafe {
        let grads = match own {
            Some(own) => grad_parts(seg, rank, l, own),
            None => mean(),
        };
        (&mut whole[l.start..l.start + n], grads, Some(seg.slice_mut(rank, at, n)))
    }
}

/// `t`'s value as an array that nothing else holds, to update in place: its own buffer when
/// `t` was the only holder (the usual case once a step's gradient is computed: the backward
/// pass has dropped its references), else a copy ([`Array::into_unique`]).
pub(crate) fn unique_array(t: Tensor) -> Array {
    let a = t.value().clone();
    drop(t);
    a.into_unique()
}

/// Whether [`flat_update`] can take these leaves: every parameter `f32`/`f64`, and every
/// gradient it would read as one tensor contiguous, of that type and length — `means[i]` for
/// the leaves that are not sharded, and for the sharded ones too when `own` is `None` (their
/// rows of the mean, as `step_with`'s `f` returned them).
pub(crate) fn flat_applicable(
    sh: &Sharding,
    params: &[Tensor],
    means: &[Tensor],
    own: Option<&[Option<Tensor>]>,
) -> bool {
    params.iter().enumerate().all(|(i, p)| {
        let n = match &sh.slot[i] {
            Some(_) if own.is_some() => return matches!(p.dtype(), DType::F32 | DType::F64),
            Some(l) => l.own_shape.iter().product(),
            None => p.numel(),
        };
        let g = means[i].value();
        match p.dtype() {
            DType::F32 => g.as_slice::<f32>().is_some_and(|s| s.len() == n),
            DType::F64 => g.as_slice::<f64>().is_some_and(|s| s.len() == n),
            _ => false,
        }
    })
}

/// The sharded update on shared memory in one pass per leaf ([`Optimizer::step_flat`]), on
/// `params` (the parameters' arrays from [`unique_array`], updated in place): each sharded
/// leaf's rows that this rank owns are updated and mirrored into this rank's parameter area in
/// the same pass, from its gradient's [`grad_parts`] read where they lie when `own` is given
/// (`step`: no mean gradient is formed), else from `means[i]`, this rank's rows of the mean
/// (`step_with`, after its `f`); leaves that are not sharded are updated whole from their
/// bucket's mean (`means[i]`). Then, after the barrier, the other ranks' rows are copied in
/// from their parameter areas. `false`, with nothing changed, when the optimizer has no flat
/// path. The leaves must pass [`flat_applicable`].
///
/// The same bits as the mean gradient then [`Optimizer::step`]: the parts are summed in rank
/// order and then scaled, as [`reduce_rows`] does.
pub(crate) fn flat_update<O: Optimizer>(
    opt: &mut O,
    dist: &Dist,
    poisoned: &mut bool,
    sh: &mut Sharding,
    params: &mut [Array],
    means: &[Tensor],
    own: Option<&[Option<Tensor>]>,
) -> Result<bool, DistError> {
    let Some((seg, area)) = &sh.shm else { return Ok(false) };
    let (rank, area) = (dist.rank(), *area);
    let scale = if own.is_some() { 1.0 / dist.world_size() as f64 } else { 1.0 };
    let mut bufs: Vec<LeafBufs<'_>> = Vec::with_capacity(params.len());
    for (i, a) in params.iter_mut().enumerate() {
        let (l, own) = (sh.slot[i].as_ref(), own.map(|o| o[i].as_ref()));
        // SAFETY: as `leaf_bufs` asks: this rank's parameter area, rows it owns, which no
        // other rank reads before the barrier below (they finished reading the last ones
        // before the barrier that ended this step's backward pass); every rank's gradient
        // area was written before that barrier and is not written before the next one.
        bufs.push(unsafe {
            match a.dtype() {
                DType::F32 => LeafBufs::F32(leaf_bufs(a, seg, rank, area, l, &means[i], own)),
                _ => LeafBufs::F64(leaf_bufs(a, seg, rank, area, l, &means[i], own)),
            }
        });
    }
    let mut leaves: Vec<Flat<'_>> = bufs
        .iter_mut()
        .zip(&sh.slot)
        .map(|(b, slot)| {
            // The buckets' means (and `f`'s) are divided by the world size already.
            let k = if slot.is_some() { scale } else { 1.0 };
            match b {
                LeafBufs::F32((param, grads, mirror)) => {
                    Flat::F32(FlatLeaf { param, grads, scale: k as f32, mirror: mirror.as_deref_mut() })
                }
                LeafBufs::F64((param, grads, mirror)) => {
                    Flat::F64(FlatLeaf { param, grads, scale: k, mirror: mirror.as_deref_mut() })
                }
            }
        })
        .collect();
    if !opt.step_flat(&mut leaves) {
        return Ok(false);
    }
    drop(leaves);
    drop(bufs);
    // `leaves` (this rank's rows as tensors, for `Optimizer::step`) is out of date now.
    sh.stale = true;
    shm_barrier(dist, poisoned, seg)?;
    // The other ranks' new rows.
    for (i, a) in params.iter_mut().enumerate() {
        let Some(l) = &sh.slot[i] else { continue };
        match l.dtype {
            DType::F32 => {
                copy_others::<f32>(seg, area + l.at, l, rank, a.try_unique_slice_mut().expect("unique_array"))
            }
            _ => {
                copy_others::<f64>(seg, area + l.at, l, rank, a.try_unique_slice_mut().expect("unique_array"))
            }
        }
    }
    Ok(true)
}

/// Into `dst` (a whole leaf), the rows of every rank but `rank` from their parameter areas
/// (the leaf at byte `at`).
fn copy_others<T: Element>(seg: &Segment, at: usize, l: &ShardLeaf, rank: usize, dst: &mut [T]) {
    let mut start = 0;
    for (q, &len) in l.parts.iter().enumerate() {
        if q != rank {
            // SAFETY: rank q wrote these rows before the barrier and writes them again only
            // after the next step's first barrier, which this rank reaches after this read.
            dst[start..start + len]
                .copy_from_slice(unsafe { seg.slice::<T>(q, at + start * std::mem::size_of::<T>(), len) });
        }
        start += len;
    }
}
