//! [`DataParallel`]: one model replica per rank, gradients averaged by bucketed non-blocking
//! allreduce, rank 0's parameters and optimizer state broadcast at the start.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use adjoint_core::{Params, Tensor};
use adjoint_nn::checkpoint;
use adjoint_nn::optim::Optimizer;
use adjoint_tensor::{Array, DType, Storage};

use crate::bucket::{gather_into, BucketPlan, SharedBuf, DEFAULT_BUCKET_BYTES};
use crate::comm::{settle, Dist, Pending};
use crate::shard::{
    flat_applicable, flat_update, gather_rows, put_gradient, reduce_rows, row_range, rows_of, shardable,
    shm_barrier, start_ring, unique_array, Half, ShardLeaf, Sharding,
};
use crate::shm::Segment;
use crate::DistError;

mod saving;
use saving::decode;

/// Options of [`DataParallel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataParallelConfig {
    /// Largest bucket of gradients sent in one allreduce (default 25 MiB, as DDP).
    pub bucket_bytes: usize,
    /// Shard the optimizer update across the ranks (ZeRO stage 1; default off). Each
    /// floating-point leaf with at least `world_size` rows (its first dimension) is split by
    /// rows: its gradient is reduce-scattered (each rank receives the mean of its rows only),
    /// each rank runs the optimizer on its rows and keeps the optimizer state of its rows only,
    /// and the updated rows are all-gathered into the full parameters. The communication
    /// volume is that of an allreduce; the update's compute and the optimizer state per rank
    /// are divided by the world size. Other leaves (scalars, leaves with fewer rows than
    /// ranks) are allreduced and updated on every rank as without sharding.
    ///
    /// Needs an element-wise optimizer (SGD, Adam, AdamW, RMSprop, Adagrad — not L-BFGS):
    /// its state tensors that have the shape of a sharded parameter are split the same way,
    /// the rest (step counters) are kept whole. While sharded,
    /// [`optimizer`](DataParallel::optimizer) is this rank's part and the `f` of
    /// [`step_with`](DataParallel::step_with) and [`train_step`](DataParallel::train_step) sees
    /// this rank's rows of the mean gradient (element-wise transformations only: a global
    /// gradient norm cannot be computed from a shard); checkpoints hold the full state
    /// ([`full_optimizer`](DataParallel::full_optimizer) gathers it), so a sharded run resumes
    /// with or without sharding, on any number of ranks.
    pub shard_update: bool,
    /// With a sharded update and every rank on one node, move the reduce-scatter and the
    /// all-gather through memory the ranks share (`MPI_Win_allocate_shared`: plain loads and
    /// stores, one pass per byte) instead of the ring of point-to-point messages (default
    /// on). Worlds that span nodes use the ring whatever this says.
    pub shared_memory: bool,
}

impl Default for DataParallelConfig {
    fn default() -> Self {
        DataParallelConfig { bucket_bytes: DEFAULT_BUCKET_BYTES, shard_update: false, shared_memory: true }
    }
}

/// Data-parallel training of `params` with optimizer `opt` on every rank of `dist`.
///
/// - **Start.** [`new`](Self::new) broadcasts rank 0's parameters *and* optimizer state (as
///   checkpoint bytes, so every dtype and buffer travels), so all replicas start equal whatever
///   each rank initialised.
/// - **Step.** [`train_step`](Self::train_step) computes this rank's gradient and starts each
///   bucket's non-blocking allreduce the moment the backward sweep has finished its leaves
///   (last layers first), so the wire overlaps the rest of the sweep; [`step`](Self::step)
///   does the same from a gradient already computed (buckets start as they are packed). Both
///   wait for all buckets within the deadline, divide by the world size and apply the
///   optimizer. Every replica applies the same update to the same values, so they stay equal
///   bit for bit.
/// - **Accumulation.** [`no_sync`](Self::no_sync) adds a micro-batch's gradient locally with no
///   communication; the next `step` adds its own and reduces the sum once (DDP's `no_sync`:
///   gradients are summed over micro-batches and averaged over ranks).
/// - **Checkpoints.** [`save_checkpoint`](Self::save_checkpoint) writes on rank 0 only;
///   [`resume`](Self::resume) reads on rank 0 and broadcasts, so a run saved on N ranks resumes
///   on any M.
///
/// ```no_run
/// use adjoint_core::{value_and_grad, Tensor};
/// use adjoint_dist::{DataParallel, DataParallelConfig, Dist};
/// use adjoint_nn::optim::{Adam, AdamConfig};
///
/// let dist = Dist::init()?; // under `mpirun -np N`
/// let w = Tensor::zeros(&[3]);
/// let opt = Adam::new(&w, AdamConfig::default());
/// let mut dp = DataParallel::new(&dist, w, opt, DataParallelConfig::default())?;
/// for _ in 0..10 {
///     // each rank: the loss of its own shard of the batch
///     let (loss, g) = value_and_grad(|w: &Tensor| (w - 1.0).square().mean())(dp.params());
///     dp.step(&g)?;
///     let mean_loss = dist.mean(&[loss.item()])?[0];
///     # let _ = mean_loss;
/// }
/// # Ok::<(), adjoint_dist::DistError>(())
/// ```
pub struct DataParallel<'d, P: Params, O: Optimizer> {
    dist: &'d Dist,
    params: P,
    opt: O,
    plan: BucketPlan,
    accum: Option<P>,
    /// One buffer per bucket: the gradients are packed into it, summed in place
    /// ([`Dist::start_ring_allreduce`]) and handed out as views (no copy out).
    bufs: Vec<SharedBuf>,
    /// A collective timed out: its buffers are still lent to MPI.
    poisoned: bool,
    /// Of the last step: buckets started before the last gradient was ready, and buckets.
    overlap: (usize, usize),
    /// `Some` when the update is sharded.
    sharding: Option<Sharding>,
}

impl<'d, P: Params + Clone, O: Optimizer + Clone> DataParallel<'d, P, O> {
    /// Replicate rank 0's `params` and `opt` on every rank (collective: every rank calls it).
    pub fn new(dist: &'d Dist, params: P, opt: O, config: DataParallelConfig) -> Result<Self, DistError> {
        let bytes = if dist.is_root() {
            checkpoint::to_bytes(&(params.clone(), opt.clone()), &BTreeMap::new())?
        } else {
            Vec::new()
        };
        let bytes = dist.broadcast_bytes(&bytes)?;
        let (params, mut opt) = decode(Path::new("<broadcast>"), &bytes, &(params, opt))?;
        let leaves = params.leaves();
        let (w, r) = (dist.world_size(), dist.rank());
        let sharded = |t: &Tensor| config.shard_update && shardable(t.dtype(), t.shape(), w);
        // The buckets carry the leaves that are not sharded (all of them without sharding).
        let specs: Vec<(DType, usize)> =
            leaves.iter().map(|t| (if sharded(t) { DType::I64 } else { t.dtype() }, t.numel())).collect();
        let plan = BucketPlan::new(&specs, config.bucket_bytes);
        let bufs = plan.buckets.iter().map(|b| SharedBuf::zeros(b.dtype, b.len)).collect();
        // Byte offsets of the sharded leaves in a rank's gradient (and parameter) area.
        let mut area = 0;
        let at: Vec<usize> = leaves
            .iter()
            .map(|t| {
                let here = area;
                if sharded(t) {
                    area += (t.numel() * t.dtype().size_in_bytes()).div_ceil(64) * 64;
                }
                here
            })
            .collect();
        // Collective on every rank alike (the leaves' shapes are rank 0's).
        let shm = if config.shard_update && config.shared_memory && area > 0 {
            Segment::new(dist, 2 * area)?.map(|s| (s, area))
        } else {
            None
        };
        // With shared memory the ring buffers are not used.
        let on_shm = shm.is_some();
        let ring_len = |n: usize| if on_shm { 0 } else { n };
        let sharding = config.shard_update.then(|| {
            let slot: Vec<Option<ShardLeaf>> = leaves
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    sharded(t).then(|| {
                        let (rows, n) = (t.shape()[0], t.numel());
                        let row = n / rows;
                        let (lo, len) = row_range(rows, w, r);
                        let mut own_shape = t.shape().to_vec();
                        own_shape[0] = len;
                        ShardLeaf {
                            parts: (0..w).map(|q| row_range(rows, w, q).1 * row).collect(),
                            start: lo * row,
                            dtype: t.dtype(),
                            at: at[i],
                            own_shape,
                            grad: SharedBuf::zeros(t.dtype(), ring_len(n)),
                            param: [
                                SharedBuf::zeros(t.dtype(), ring_len(n)),
                                SharedBuf::zeros(t.dtype(), ring_len(n)),
                            ],
                        }
                    })
                })
                .collect();
            let order = (0..leaves.len()).rev().filter(|&i| slot[i].is_some()).collect();
            let mine = |t: &Tensor| {
                let (lo, len) = row_range(t.shape()[0], w, r);
                rows_of(t, lo, len)
            };
            let shard_leaves: Vec<Tensor> =
                leaves.iter().map(|t| if sharded(t) { mine(t) } else { t.clone() }).collect();
            // The optimizer's state tensors shaped like a sharded leaf keep this rank's rows.
            let shapes: Vec<&[usize]> = leaves.iter().filter(|t| sharded(t)).map(|t| t.shape()).collect();
            let mut opt_full = Vec::new();
            opt = opt.map_tensors(&mut |t| {
                let split = matches!(t.dtype(), DType::F32 | DType::F64) && shapes.contains(&t.shape());
                opt_full.push(split.then(|| t.shape().to_vec()));
                if split {
                    mine(t)
                } else {
                    t.clone()
                }
            });
            Sharding { slot, order, leaves: shard_leaves, opt_full, turn: 0, stale: false, flat: true, shm }
        });
        Ok(DataParallel {
            dist,
            params,
            opt,
            plan,
            accum: None,
            bufs,
            poisoned: false,
            overlap: (0, 0),
            sharding,
        })
    }
}

impl<P: Params, O: Optimizer> DataParallel<'_, P, O> {
    /// The current parameters (equal on every rank).
    pub fn params(&self) -> &P {
        &self.params
    }

    /// The optimizer (equal on every rank). With a sharded update
    /// ([`DataParallelConfig::shard_update`]), this rank's part: its state covers this rank's
    /// rows of the sharded leaves ([`full_optimizer`](Self::full_optimizer) gathers the whole).
    pub fn optimizer(&self) -> &O {
        &self.opt
    }

    /// Whether the optimizer update is sharded ([`DataParallelConfig::shard_update`]).
    pub fn is_sharded(&self) -> bool {
        self.sharding.is_some()
    }

    /// The optimizer, e.g. to set its learning rate from a schedule (do the same on every rank).
    pub fn optimizer_mut(&mut self) -> &mut O {
        &mut self.opt
    }

    /// The bucket plan.
    pub fn plan(&self) -> &BucketPlan {
        &self.plan
    }

    /// Of the last step: how many buckets started their allreduce before the last gradient
    /// leaf was ready, out of how many. With [`train_step`](Self::train_step) that is the
    /// communication that overlapped the backward sweep (all buckets but the last one, whose
    /// leaves the sweep finishes last, when the model has several).
    pub fn last_overlap(&self) -> (usize, usize) {
        self.overlap
    }

    /// The world.
    pub fn dist(&self) -> &Dist {
        self.dist
    }

    /// The parameters and optimizer, consumed. With a sharded update this gathers the whole
    /// optimizer ([`full_optimizer`](Self::full_optimizer): collective, and a failure stops
    /// the job with [`Dist::abort`]).
    pub fn into_parts(mut self) -> (P, O) {
        if self.sharding.is_some() {
            match self.full_optimizer() {
                Ok(full) => self.opt = full,
                Err(e) => self.dist.abort(&e),
            }
        }
        self.release_buffers();
        let mut me = std::mem::ManuallyDrop::new(self);
        // SAFETY: each field is read exactly once and `me` is never dropped.
        unsafe {
            let params = std::ptr::read(&me.params);
            let opt = std::ptr::read(&me.opt);
            std::ptr::drop_in_place(&mut me.plan);
            std::ptr::drop_in_place(&mut me.accum);
            std::ptr::drop_in_place(&mut me.bufs);
            std::ptr::drop_in_place(&mut me.sharding);
            (params, opt)
        }
    }

    /// Add this micro-batch's gradient to a local sum, without communication.
    #[track_caller]
    pub fn no_sync(&mut self, grads: &P) {
        self.accum = Some(match self.accum.take() {
            None => grads.map_tensors(&mut |t| t.clone()),
            Some(a) => adjoint_core::params::zip_map(&a, grads, |x, y| x + y),
        });
    }

    /// Average `grads` (plus any [`no_sync`](Self::no_sync) sum) over all ranks and apply the
    /// optimizer (collective). On an error (a peer died: a timeout) this replica is unusable;
    /// stop the job with [`Dist::abort`].
    ///
    /// With a sharded update on one node ([`DataParallelConfig::shard_update`] and
    /// [`shared_memory`](DataParallelConfig::shared_memory)) and an optimizer that has
    /// [`Optimizer::step_flat`] (Adam, AdamW, SGD), the mean gradient is never formed: each
    /// rank updates its rows of the parameters in place, reading every rank's gradient where
    /// it lies, and mirrors them into the shared segment for the others (the same bits as
    /// forming the mean; `step_with` and `train_step` form it, for their `f`, then update in
    /// place the same way).
    #[track_caller]
    pub fn step(&mut self, grads: &P) -> Result<(), DistError> {
        if self.sharding.as_ref().is_none_or(|sh| sh.shm.is_none()) {
            return self.step_with(grads, |g| g);
        }
        let leaves = grads.leaves();
        self.check_leaves(leaves.len());
        let mut round = self.begin_round()?;
        for i in (0..leaves.len()).rev() {
            self.leaf_ready(&mut round, i, &leaves[i]);
        }
        let (mut out, own) = self.finish_round(round, &leaves, false)?;
        if self.apply_flat(&out, Some(&own))? {
            return Ok(());
        }
        // No flat path: the mean gradient's rows, then the optimizer on tensors.
        self.shm_means(&own, &mut out);
        self.apply(&grads.with_leaves(&out))
    }

    /// With a sharded update on shared memory and an optimizer with a flat path: the update
    /// through [`flat_update`], in place in the parameters' own buffers (see `step`), from the
    /// gradients' parts (`own`: `step`) or from the mean gradient `means` (`step_with` and
    /// `train_step`, after their `f`). `false`, with nothing changed, where that path does not
    /// apply; an optimizer found without one is not asked again.
    fn apply_flat(&mut self, means: &[Tensor], own: Option<&[Option<Tensor>]>) -> Result<bool, DistError> {
        let Some(sh) = self.sharding.as_mut().filter(|sh| sh.shm.is_some() && sh.flat) else {
            return Ok(false);
        };
        if !flat_applicable(sh, &self.params.leaves(), means, own) {
            return Ok(false);
        }
        // The parameters' buffers, each held here only, to be updated in place: nothing else
        // may hold them, so `leaves` lets go of its whole leaves (it is rebuilt if needed).
        for t in sh.leaves.iter_mut() {
            *t = Tensor::scalar(0f32);
        }
        sh.stale = true;
        let placeholder = self.params.map_tensors(&mut |_| Tensor::scalar(0f32));
        let old = std::mem::replace(&mut self.params, placeholder).leaves();
        let mut arrays: Vec<Array> = old.into_iter().map(unique_array).collect();
        let done = flat_update(&mut self.opt, self.dist, &mut self.poisoned, sh, &mut arrays, means, own);
        let params: Vec<Tensor> = arrays.into_iter().map(Tensor::from_array).collect();
        self.params = self.params.with_leaves(&params);
        if !done? {
            sh.flat = false;
            return Ok(false);
        }
        Ok(true)
    }

    /// [`step`](Self::step) with `f` applied to the averaged gradient before the optimizer
    /// (gradient clipping must see the global gradient, not a rank's).
    #[track_caller]
    pub fn step_with(&mut self, grads: &P, f: impl FnOnce(P) -> P) -> Result<(), DistError> {
        let avg = f(self.reduce(grads)?);
        self.apply(&avg)
    }

    /// The mean of `grads` over all ranks (collective), bucket by bucket. With a sharded
    /// update the sharded leaves are averaged one allreduce each (this is not the step's
    /// path, which reduce-scatters them).
    pub fn allreduce_mean(&mut self, grads: &P) -> Result<P, DistError> {
        let mean = self.reduce(grads)?;
        let Some(sh) = &self.sharding else { return Ok(mean) };
        if self.poisoned {
            return Err(DistError::Poisoned);
        }
        let scale = 1.0 / self.dist.world_size() as f64;
        let leaves: Result<Vec<Tensor>, DistError> = grads
            .leaves()
            .iter()
            .zip(mean.leaves())
            .enumerate()
            .map(|(i, (g, m))| {
                if sh.slot[i].is_none() {
                    return Ok(m);
                }
                let g = match self.accum.as_ref() {
                    Some(a) => g + &a.leaves()[i],
                    None => g.clone(),
                };
                Ok(match g.dtype() {
                    DType::F32 => {
                        let mut v = g.to_vec::<f32>();
                        self.dist.allreduce_sum(&mut v)?;
                        Tensor::from_vec(v.iter().map(|x| x * scale as f32).collect::<Vec<f32>>(), g.shape())
                    }
                    _ => {
                        let mut v = g.to_vec::<f64>();
                        self.dist.allreduce_sum(&mut v)?;
                        Tensor::from_vec(v.iter().map(|x| x * scale).collect::<Vec<f64>>(), g.shape())
                    }
                })
            })
            .collect();
        Ok(grads.with_leaves(&leaves?))
    }

    /// The mean of `grads` (plus any `no_sync` sum) over all ranks; with a sharded update,
    /// this rank's rows of the sharded leaves.
    fn reduce(&mut self, grads: &P) -> Result<P, DistError> {
        let leaves = grads.leaves();
        self.check_leaves(leaves.len());
        let mut round = self.begin_round()?;
        // Reverse leaf order: the order of the bucket plan, so each bucket starts once packed.
        for i in (0..leaves.len()).rev() {
            self.leaf_ready(&mut round, i, &leaves[i]);
        }
        let (out, _) = self.finish_round(round, &leaves, true)?;
        Ok(grads.with_leaves(&out))
    }

    /// One training step with communication overlapping the backward pass: the gradient of
    /// `loss` (this rank's loss on its shard) is computed with
    /// [`value_and_grad_with_hook`](adjoint_core::value_and_grad_with_hook), and each bucket's
    /// allreduce starts as soon as the sweep has finished its leaves (the last layers' first),
    /// while the sweep goes on. Then the mean gradient (plus any [`no_sync`](Self::no_sync) sum)
    /// goes through `f` (clipping; `|g| g` for none) and the optimizer. Returns this rank's
    /// loss. Collective.
    #[track_caller]
    pub fn train_step(
        &mut self,
        loss: impl FnOnce(&P) -> Tensor,
        f: impl FnOnce(P) -> P,
    ) -> Result<Tensor, DistError>
    where
        P: Clone,
    {
        let params = self.params.clone();
        self.check_leaves(params.num_leaves());
        let mut round = self.begin_round()?;
        let (value, grads) = adjoint_core::value_and_grad_with_hook(loss, &params, &mut |i, g| {
            self.leaf_ready(&mut round, i, g)
        });
        // The parameters' only other holder goes, so the update can reuse their buffers.
        drop(params);
        let (out, _) = self.finish_round(round, &grads.leaves(), true)?;
        let avg = f(grads.with_leaves(&out));
        self.apply(&avg)?;
        Ok(value)
    }

    /// Apply the optimizer to the mean gradient `avg` (from [`reduce`](Self::reduce)); with a
    /// sharded update, to this rank's rows, then all-gather the updated rows.
    fn apply(&mut self, avg: &P) -> Result<(), DistError> {
        if self.apply_flat(&avg.leaves(), None)? {
            return Ok(());
        }
        let Some(sh) = self.sharding.as_mut() else {
            self.params = self.opt.step(&self.params, avg);
            return Ok(());
        };
        if sh.stale {
            // After `flat_update`: this rank's rows of the sharded leaves, the others whole.
            let w = self.dist.world_size();
            for (i, p) in self.params.leaves().into_iter().enumerate() {
                sh.leaves[i] = if sh.slot[i].is_some() {
                    let (lo, len) = row_range(p.shape()[0], w, self.dist.rank());
                    rows_of(&p, lo, len)
                } else {
                    p
                };
            }
            sh.stale = false;
        }
        let new = self.opt.step(&self.params.with_leaves(&sh.leaves), avg).leaves();
        let turn = sh.turn;
        sh.turn ^= 1;
        if let Some((seg, area)) = &sh.shm {
            // This rank's rows into its parameter area; after the barrier, every rank's.
            let rank = self.dist.rank();
            for &i in &sh.order {
                let l = sh.slot[i].as_ref().expect("a sharded leaf");
                let (at, n) = (area + l.at + l.start * l.dtype.size_in_bytes(), new[i].numel());
                // SAFETY: this rank's parameter area; the others read it only after the barrier
                // below, and finish before the next step's first barrier.
                unsafe {
                    match l.dtype {
                        DType::F32 => gather_into(seg.slice_mut::<f32>(rank, at, n), &new[i]),
                        _ => gather_into(seg.slice_mut::<f64>(rank, at, n), &new[i]),
                    }
                }
            }
            shm_barrier(self.dist, &mut self.poisoned, seg)?;
        } else {
            let deadline = Instant::now() + self.dist.timeout();
            let mut pending = Vec::new();
            let mut result = Ok(());
            for &i in &sh.order {
                let l = sh.slot[i].as_mut().expect("a sharded leaf");
                let buf = &mut l.param[turn];
                buf.pack(l.start, &new[i]);
                let what = format!("all-gather of parameter leaf {i}");
                // SAFETY: the buffer belongs to `self` and is not touched before the wait below;
                // after a failure `poisoned` leaks it.
                match unsafe { start_ring(self.dist, buf, Half::AllGather, &l.parts, &what) } {
                    Ok(p) => pending.push(p),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            settle(self.dist, &mut self.poisoned, pending, result, deadline)?;
        }
        let full: Vec<Tensor> = self
            .params
            .leaves()
            .iter()
            .enumerate()
            .map(|(i, p)| match (&sh.slot[i], &sh.shm) {
                (Some(l), Some((seg, area))) => match l.dtype {
                    DType::F32 => gather_rows::<f32>(seg, area + l.at, l, p.shape()),
                    _ => gather_rows::<f64>(seg, area + l.at, l, p.shape()),
                },
                (Some(l), None) => l.param[turn].view(0, p.shape()),
                (None, _) => new[i].clone(),
            })
            .collect();
        self.params = self.params.with_leaves(&full);
        sh.leaves = new;
        Ok(())
    }

    #[track_caller]
    fn check_leaves(&self, n: usize) {
        assert_eq!(
            n,
            self.plan.slot.len(),
            "adjoint-dist: DataParallel: {n} gradient leaves for a model of {}",
            self.plan.slot.len()
        );
    }

    fn begin_round(&mut self) -> Result<Round, DistError> {
        if self.poisoned {
            return Err(DistError::Poisoned);
        }
        Ok(Round {
            remaining: self.plan.buckets.iter().map(|b| b.leaves.len()).collect(),
            next: 0,
            pending: Vec::with_capacity(self.plan.buckets.len()),
            accum: self.accum.take().map(|a| a.leaves()),
            left: self.plan.slot.iter().filter(|s| s.is_some()).count(),
            own: vec![None; self.plan.slot.len()],
            early: 0,
            error: None,
            deadline: Instant::now() + self.dist.timeout(),
        })
    }

    /// Leaf `i`'s gradient `g` is final: pack it (plus the accumulated sum), start every
    /// bucket that is now complete, in plan order (all ranks must start collectives in the
    /// same order), and let MPI progress the ones on the wire.
    fn leaf_ready(&mut self, round: &mut Round, i: usize, g: &Tensor) {
        if let Some(sh) = self.sharding.as_mut().filter(|s| s.slot[i].is_some()) {
            // A sharded leaf's gradient, whole, into its ring buffer or this rank's gradient
            // area; its reduce-scatter starts after the sweep.
            let l = sh.slot[i].as_mut().expect("a sharded leaf");
            let summed;
            let g = match round.accum.as_ref() {
                Some(acc) => {
                    summed = g + &acc[i];
                    &summed
                }
                None => g,
            };
            match &sh.shm {
                // SAFETY: this rank's gradient area, which no rank reads before the barrier
                // in `finish_round`.
                Some((seg, _)) => unsafe {
                    let rank = self.dist.rank();
                    round.own[i] = match l.dtype {
                        DType::F32 => put_gradient::<f32>(seg, rank, l, g),
                        _ => put_gradient::<f64>(seg, rank, l, g),
                    };
                },
                None => l.grad.pack(0, g),
            }
            return;
        }
        let Some((k, pos)) = self.plan.slot[i] else { return };
        let b = &self.plan.buckets[k];
        assert!(
            g.dtype() == b.dtype,
            "adjoint-dist: DataParallel: gradient leaf {i} is {:?}, the parameter is {:?}",
            g.dtype(),
            b.dtype
        );
        match round.accum.as_ref() {
            Some(acc) => self.bufs[k].pack(b.offsets[pos], &(g + &acc[i])),
            None => self.bufs[k].pack(b.offsets[pos], g),
        }
        round.remaining[k] -= 1;
        round.left -= 1;
        let scale = 1.0 / self.dist.world_size() as f64;
        while round.error.is_none()
            && round.next < self.plan.buckets.len()
            && round.remaining[round.next] == 0
        {
            let k = round.next;
            let what = format!("allreduce of gradient bucket {k}");
            // SAFETY: the buffers belong to `self` and are neither touched nor freed before
            // `finish_round` has waited for them; after a failure `poisoned` leaks them.
            let started = unsafe {
                match self.bufs[k].unique() {
                    Storage::F32(v) => self.dist.start_ring_allreduce(v, scale, &what),
                    Storage::F64(v) => self.dist.start_ring_allreduce(v, scale, &what),
                    _ => unreachable!("bucket buffers are f32 or f64"),
                }
            };
            match started {
                Ok(p) => round.pending.push(p),
                Err(e) => round.error = Some(e),
            }
            round.next += 1;
            round.early += usize::from(round.left > 0);
        }
        // Open MPI moves a non-blocking collective forward only inside MPI calls.
        for p in &mut round.pending {
            if let Err(e) = self.dist.test(p) {
                round.error.get_or_insert(e);
            }
        }
    }

    /// Wait for every bucket and unpack the means (leaves not reduced keep `leaves`' value).
    /// With a sharded update on shared memory, the sharded leaves' means are formed only with
    /// `means` (else their entries are `leaves`' and [`flat_update`] reads the parts); the
    /// second result is this rank's own rows of their gradients, when kept ([`put_gradient`]).
    fn finish_round(
        &mut self,
        round: Round,
        leaves: &[Tensor],
        means: bool,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>), DistError> {
        self.overlap = (round.early, self.plan.buckets.len());
        let mut result = match round.error {
            Some(e) => Err(e),
            None if round.next < self.plan.buckets.len() => {
                Err(DistError::Mpi("the backward pass did not report every gradient".into()))
            }
            None => Ok(()),
        };
        let mut pending = round.pending;
        // The sharded leaves' reduce-scatters, once the backward sweep is over and after every
        // bucket (all ranks start them in the same order).
        let scale = 1.0 / self.dist.world_size() as f64;
        let ring = self.sharding.as_mut().filter(|sh| sh.shm.is_none());
        if let (Ok(()), Some(sh)) = (&result, ring) {
            for &i in &sh.order {
                let l = sh.slot[i].as_mut().expect("a sharded leaf");
                let what = format!("reduce-scatter of gradient leaf {i}");
                // SAFETY: as the buckets' allreduce.
                match unsafe {
                    start_ring(self.dist, &mut l.grad, Half::ReduceScatter(scale), &l.parts, &what)
                } {
                    Ok(p) => pending.push(p),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        settle(self.dist, &mut self.poisoned, pending, result, round.deadline)?;
        // Shared memory: every rank's gradients are in place after the barrier.
        if let Some(sh) = self.sharding.as_ref()
            && let Some((seg, _)) = &sh.shm
        {
            shm_barrier(self.dist, &mut self.poisoned, seg)?;
        }
        let mut out: Vec<Tensor> = leaves
            .iter()
            .enumerate()
            .map(|(i, g)| {
                match (self.plan.slot[i], self.sharding.as_ref().and_then(|s| s.slot[i].as_ref())) {
                    (Some((k, pos)), _) => {
                        // Already divided by the world size (in the ring's last sum).
                        self.bufs[k].view(self.plan.buckets[k].offsets[pos], g.shape())
                    }
                    // Shared memory: see `shm_means` below.
                    (None, Some(_)) if self.sharding.as_ref().is_some_and(|sh| sh.shm.is_some()) => g.clone(),
                    // Already divided by the world size (in the ring's last sum).
                    (None, Some(l)) => l.grad.view(l.start, &l.own_shape),
                    (None, None) => match round.accum.as_ref() {
                        Some(acc) => g + &acc[i],
                        None => g.clone(),
                    },
                }
            })
            .collect();
        if means {
            self.shm_means(&round.own, &mut out);
        }
        Ok((out, round.own))
    }

    /// With a sharded update on shared memory (else nothing): this rank's rows of each sharded
    /// leaf's mean gradient into `out`, summed from every rank's gradient area (and `own`, the
    /// rows this rank kept). Between the barrier that ends the backward pass and the next.
    fn shm_means(&self, own: &[Option<Tensor>], out: &mut [Tensor]) {
        let Some((sh, (seg, _))) = self.sharding.as_ref().and_then(|sh| sh.shm.as_ref().map(|s| (sh, s)))
        else {
            return;
        };
        let (rank, scale) = (self.dist.rank(), 1.0 / self.dist.world_size() as f64);
        for &i in &sh.order {
            let l = sh.slot[i].as_ref().expect("a sharded leaf");
            // SAFETY: every rank wrote its gradient area before the barrier, and none writes it
            // again before the next step's barrier, which this rank reaches after this read.
            out[i] = unsafe {
                match l.dtype {
                    DType::F32 => reduce_rows::<f32>(seg, rank, l, own[i].as_ref(), scale),
                    _ => reduce_rows::<f64>(seg, rank, l, own[i].as_ref(), scale),
                }
            };
        }
    }

    /// Leave empty buffers behind; after a timed-out collective, MPI may still write into the
    /// old ones, so they are leaked rather than freed.
    fn release_buffers(&mut self) {
        let buckets = std::mem::take(&mut self.bufs);
        let mut shards = Vec::new();
        if let Some(sh) = self.sharding.as_mut() {
            shards.extend(sh.slot.iter_mut().filter_map(Option::take));
            if let Some((seg, _)) = sh.shm.take() {
                seg.release(self.poisoned);
            }
        }
        if self.poisoned {
            shards.into_iter().for_each(std::mem::forget);
            buckets.into_iter().for_each(std::mem::forget);
        }
    }
}

impl<P: Params, O: Optimizer> Drop for DataParallel<'_, P, O> {
    fn drop(&mut self) {
        self.release_buffers();
    }
}

/// One gradient allreduce in progress.
struct Round {
    /// Leaves of each bucket not packed yet.
    remaining: Vec<usize>,
    /// The next bucket to start.
    next: usize,
    pending: Vec<Pending>,
    /// The `no_sync` sum, by leaf.
    accum: Option<Vec<Tensor>>,
    /// Reduced leaves not ready yet.
    left: usize,
    /// Buckets started while `left > 0`.
    early: usize,
    error: Option<DistError>,
    deadline: Instant,
    /// Shared memory: this rank's own rows of each sharded leaf's gradient, when they stay in
    /// the gradient ([`put_gradient`]) instead of its gradient area.
    own: Vec<Option<Tensor>>,
}
