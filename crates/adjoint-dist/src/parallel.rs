//! [`DataParallel`]: one model replica per rank, gradients averaged by bucketed non-blocking
//! allreduce, rank 0's parameters and optimizer state broadcast at the start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use adjoint_core::{Params, Tensor};
use adjoint_nn::checkpoint::{self, LoadOptions};
use adjoint_nn::optim::Optimizer;

use crate::bucket::{BucketPlan, Flat, DEFAULT_BUCKET_BYTES};
use crate::comm::{Dist, Pending};
use crate::DistError;

/// Options of [`DataParallel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataParallelConfig {
    /// Largest bucket of gradients sent in one allreduce (default 25 MiB, as DDP).
    pub bucket_bytes: usize,
}

impl Default for DataParallelConfig {
    fn default() -> Self {
        DataParallelConfig { bucket_bytes: DEFAULT_BUCKET_BYTES }
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
    send: Vec<Flat>,
    recv: Vec<Flat>,
    /// A collective timed out: its buffers are still lent to MPI.
    poisoned: bool,
    /// Of the last step: buckets started before the last gradient was ready, and buckets.
    overlap: (usize, usize),
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
        let (params, opt) = decode(Path::new("<broadcast>"), &bytes, &(params, opt))?;
        let plan = BucketPlan::for_leaves(&params.leaves(), config.bucket_bytes);
        let send = plan.buckets.iter().map(|b| Flat::zeros(b.dtype, b.len)).collect();
        let recv = plan.buckets.iter().map(|b| Flat::zeros(b.dtype, b.len)).collect();
        Ok(DataParallel {
            dist,
            params,
            opt,
            plan,
            accum: None,
            send,
            recv,
            poisoned: false,
            overlap: (0, 0),
        })
    }

    /// Resume from the checkpoint at `path` (written by [`save_checkpoint`](Self::save_checkpoint)
    /// on any number of ranks): rank 0 reads it and broadcasts it; `params` and `opt` are
    /// templates. Returns the checkpoint's metadata too.
    pub fn resume(
        dist: &'d Dist,
        path: &Path,
        params: P,
        opt: O,
        config: DataParallelConfig,
    ) -> Result<(Self, BTreeMap<String, String>), DistError> {
        // Rank 0 reads; its outcome (bytes or the error) reaches every rank.
        let mut packet = Vec::new();
        if dist.is_root() {
            match std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())).and_then(|b| {
                let meta = checkpoint::read_metadata(path).map_err(|e| e.to_string())?;
                Ok((b, meta))
            }) {
                Ok((b, meta)) => {
                    packet.push(0u8);
                    let meta_text: String = meta.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
                    packet.extend((meta_text.len() as u64).to_le_bytes());
                    packet.extend(meta_text.as_bytes());
                    packet.extend(b);
                }
                Err(e) => {
                    packet.push(1u8);
                    packet.extend(e.as_bytes());
                }
            }
        }
        let packet = dist.broadcast_bytes(&packet)?;
        if packet.first() != Some(&0) {
            let msg = String::from_utf8_lossy(packet.get(1..).unwrap_or_default()).into_owned();
            return Err(DistError::Resume(format!("rank 0 could not read the checkpoint: {msg}")));
        }
        let bad = || DistError::Resume(format!("{}: broadcast checkpoint is truncated", path.display()));
        let n = u64::from_le_bytes(packet.get(1..9).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
        let meta_text = std::str::from_utf8(packet.get(9..9 + n).ok_or_else(bad)?).map_err(|_| bad())?;
        let meta =
            meta_text.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.into(), v.into())).collect();
        let (params, opt) = decode(path, &packet[9 + n..], &(params, opt))?;
        // Every rank now holds the same values; `new` broadcasts them once more (cheap, and the
        // one code path that guarantees equal replicas).
        Ok((DataParallel::new(dist, params, opt, config)?, meta))
    }
}

fn decode<T: Params>(path: &Path, bytes: &[u8], template: &T) -> Result<T, DistError> {
    Ok(checkpoint::from_bytes_with(path, bytes, template, LoadOptions::default())?.0)
}

impl<P: Params, O: Optimizer> DataParallel<'_, P, O> {
    /// The current parameters (equal on every rank).
    pub fn params(&self) -> &P {
        &self.params
    }

    /// The optimizer (equal on every rank).
    pub fn optimizer(&self) -> &O {
        &self.opt
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

    /// The parameters and optimizer, consumed.
    pub fn into_parts(mut self) -> (P, O) {
        self.release_buffers();
        let mut me = std::mem::ManuallyDrop::new(self);
        // SAFETY: each field is read exactly once and `me` is never dropped.
        unsafe {
            let params = std::ptr::read(&me.params);
            let opt = std::ptr::read(&me.opt);
            std::ptr::drop_in_place(&mut me.plan);
            std::ptr::drop_in_place(&mut me.accum);
            std::ptr::drop_in_place(&mut me.send);
            std::ptr::drop_in_place(&mut me.recv);
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
    #[track_caller]
    pub fn step(&mut self, grads: &P) -> Result<(), DistError> {
        self.step_with(grads, |g| g)
    }

    /// [`step`](Self::step) with `f` applied to the averaged gradient before the optimizer
    /// (gradient clipping must see the global gradient, not a rank's).
    #[track_caller]
    pub fn step_with(&mut self, grads: &P, f: impl FnOnce(P) -> P) -> Result<(), DistError> {
        let avg = f(self.allreduce_mean(grads)?);
        self.params = self.opt.step(&self.params, &avg);
        Ok(())
    }

    /// The mean of `grads` over all ranks (collective), bucket by bucket.
    pub fn allreduce_mean(&mut self, grads: &P) -> Result<P, DistError> {
        let leaves = grads.leaves();
        self.check_leaves(leaves.len());
        let mut round = self.begin_round()?;
        // Reverse leaf order: the order of the bucket plan, so each bucket starts once packed.
        for i in (0..leaves.len()).rev() {
            self.leaf_ready(&mut round, i, &leaves[i]);
        }
        let out = self.finish_round(round, &leaves)?;
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
        let out = self.finish_round(round, &grads.leaves())?;
        let avg = f(grads.with_leaves(&out));
        self.params = self.opt.step(&self.params, &avg);
        Ok(value)
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
            early: 0,
            error: None,
            deadline: Instant::now() + self.dist.timeout(),
        })
    }

    /// Leaf `i`'s gradient `g` is final: pack it (plus the accumulated sum), start every
    /// bucket that is now complete, in plan order (all ranks must start collectives in the
    /// same order), and let MPI progress the ones on the wire.
    fn leaf_ready(&mut self, round: &mut Round, i: usize, g: &Tensor) {
        let Some((k, pos)) = self.plan.slot[i] else { return };
        let b = &self.plan.buckets[k];
        assert!(
            g.dtype() == b.dtype,
            "adjoint-dist: DataParallel: gradient leaf {i} is {:?}, the parameter is {:?}",
            g.dtype(),
            b.dtype
        );
        match round.accum.as_ref() {
            Some(acc) => self.send[k].pack(b.offsets[pos], &(g + &acc[i])),
            None => self.send[k].pack(b.offsets[pos], g),
        }
        round.remaining[k] -= 1;
        round.left -= 1;
        while round.error.is_none()
            && round.next < self.plan.buckets.len()
            && round.remaining[round.next] == 0
        {
            let k = round.next;
            let what = format!("allreduce of gradient bucket {k}");
            // SAFETY: the buffers belong to `self` and are neither touched nor freed before
            // `finish_round` has waited for them; after a failure `poisoned` leaks them.
            let started = unsafe {
                match (&self.send[k], &mut self.recv[k]) {
                    (Flat::F32(s), Flat::F32(r)) => self.dist.start_allreduce(s, r, &what),
                    (Flat::F64(s), Flat::F64(r)) => self.dist.start_allreduce(s, r, &what),
                    _ => unreachable!("send and receive buffers share the bucket's dtype"),
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
    fn finish_round(&mut self, round: Round, leaves: &[Tensor]) -> Result<Vec<Tensor>, DistError> {
        self.overlap = (round.early, self.plan.buckets.len());
        let mut result = match round.error {
            Some(e) => Err(e),
            None if round.next < self.plan.buckets.len() => {
                Err(DistError::Mpi("the backward pass did not report every gradient".into()))
            }
            None => Ok(()),
        };
        for p in round.pending {
            if result.is_ok() {
                result = self.dist.wait_until(p, round.deadline);
            } else {
                std::mem::forget(p);
            }
        }
        if let Err(e) = result {
            self.poisoned = true;
            return Err(e);
        }
        let scale = 1.0 / self.dist.world_size() as f64;
        Ok(leaves
            .iter()
            .enumerate()
            .map(|(i, g)| match self.plan.slot[i] {
                Some((k, pos)) => self.recv[k].unpack(self.plan.buckets[k].offsets[pos], g.shape(), scale),
                None => match round.accum.as_ref() {
                    Some(acc) => g + &acc[i],
                    None => g.clone(),
                },
            })
            .collect())
    }

    /// Save `(params, optimizer)` with `metadata` to `path` on rank 0 only, then wait for every
    /// rank (collective). Returns the path on rank 0, `None` elsewhere. Rank 0's write error
    /// reaches every rank.
    pub fn save_checkpoint(
        &self,
        path: &Path,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Option<PathBuf>, DistError>
    where
        P: Clone,
        O: Clone,
    {
        let mut status = Vec::new();
        if self.dist.is_root() {
            if let Err(e) = checkpoint::save(path, &(self.params.clone(), self.opt.clone()), metadata) {
                status = e.to_string().into_bytes();
            }
        }
        let status = self.dist.broadcast_bytes(&status)?;
        if !status.is_empty() {
            return Err(DistError::Checkpoint(String::from_utf8_lossy(&status).into_owned()));
        }
        Ok(self.dist.is_root().then(|| path.to_path_buf()))
    }

    /// Leave empty buffers behind; after a timed-out collective, MPI may still write into the
    /// old ones, so they are leaked rather than freed.
    fn release_buffers(&mut self) {
        let bufs = std::mem::take(&mut self.send).into_iter().chain(std::mem::take(&mut self.recv));
        if self.poisoned {
            bufs.for_each(std::mem::forget);
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
}
