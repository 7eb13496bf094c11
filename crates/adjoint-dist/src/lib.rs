//! Data-parallel training across processes and machines over MPI.
//!
//! One process per rank (`mpirun -np N program`), each holding a full replica of the model and
//! reading its own shard of every batch:
//!
//! - [`DistributedSampler`] gives each rank a disjoint shard of each epoch's permutation
//!   (strided, as PyTorch's `DistributedSampler`, padded or `drop_last`), deterministic for a
//!   seed and a world size, and the same permutation a one-process `DataLoader` uses — so W
//!   ranks with batch `b` see exactly the batches of one process with batch `W·b`.
//! - [`DataParallel`] (feature `mpi`) broadcasts rank 0's parameters and optimizer state,
//!   averages gradients by non-blocking allreduce in buckets ([`BucketPlan`], 25 MiB by default
//!   as DDP, last layers first; each bucket summed in place by a ring allreduce that `Dist`
//!   runs itself, [`Dist::start_ring_allreduce`]), started during the backward sweep as each
//!   bucket's gradients become final ([`DataParallel::train_step`]), accumulates micro-batches
//!   without communication (`no_sync`), and writes checkpoints on rank 0 only.
//! - [`Dist`] (feature `mpi`) is the world: rank, size, means of metrics across ranks, and
//!   collectives that never hang. Each is started non-blocking and completed by polling
//!   `MPI_Test` against a deadline, so a rank whose peer died gets [`DistError::Timeout`]
//!   instead of blocking forever; [`Dist::abort`] then stops the job, naming this rank, and the
//!   launcher reports the rank that died first (Open MPI: `process rank 1 … exited on signal
//!   9`).
//!
//! Why the MPI part is a feature: it needs Open MPI's headers and `libclang` at build time
//! (`apt-get install libopenmpi-dev openmpi-bin libclang-dev`), and the rest of the workspace
//! must build where they are missing. Without the feature this crate is the sampler and the
//! bucket plan only; the facade (`adjoint`, feature `dist`) and the CLI (feature
//! `distributed`) turn it on.
//!
//! Why every replica applies the optimizer itself rather than rank 0 broadcasting new
//! parameters: the averaged gradient is bit-identical on every rank (one allreduce result), so
//! identical updates keep identical replicas with no second collective — the same argument as
//! DDP's.
//!
//! Overlap with the backward pass: [`DataParallel::train_step`] computes the gradient with
//! adjoint-core's `value_and_grad_with_hook`, which reports each leaf's gradient as soon as the
//! tape's reverse sweep has run the last node that reads the leaf. A bucket is started the
//! moment its last leaf is reported (buckets start in plan order, the same on every rank, as
//! collectives must), and every report also calls `MPI_Test` on the buckets in flight, since
//! Open MPI moves a non-blocking collective forward only inside MPI calls. The last layers'
//! buckets are thus on the wire while the sweep computes the first layers' gradients; only the
//! bucket holding the first layer waits for the end of the sweep. [`DataParallel::step`] takes
//! an already computed gradient instead (any code that produced it), and overlaps only the
//! packing of later buckets with the wire.
//!
//! Failures: a rank that raises calls [`Dist::abort`] (`MPI_Abort`), so the launcher stops
//! every rank at once and reports the failed one; a rank killed outright is reported by the
//! launcher too (Open MPI: `mpirun noticed that process rank 1 … exited on signal 9`) and the
//! others are stopped; a rank that stops calling collectives without dying makes the others'
//! next collective time out ([`DistError::Timeout`], [`Dist::set_timeout`]). No path blocks
//! forever.

mod bucket;
#[cfg(feature = "mpi")]
mod comm;
#[cfg(feature = "mpi")]
mod parallel;
mod sampler;
#[cfg(feature = "mpi")]
mod shard;
#[cfg(feature = "mpi")]
mod shm;

pub use bucket::{gather_into, Bucket, BucketPlan, DEFAULT_BUCKET_BYTES};
#[cfg(feature = "mpi")]
pub use comm::{Dist, Float, Pending, Reducible, DEFAULT_TIMEOUT};
#[cfg(feature = "mpi")]
pub use parallel::{DataParallel, DataParallelConfig};
pub use sampler::{DistributedSampler, Shard};

/// Why a distributed operation failed (the environment, not a caller bug). One line each.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// An MPI call returned an error.
    #[error("MPI: {0}")]
    Mpi(String),
    /// A collective did not complete within the deadline: a peer rank died or stopped.
    #[error("rank {rank}: {what} did not complete within {:.1} s: a peer rank died or stopped calling collectives", waited.as_secs_f64())]
    Timeout {
        /// The collective.
        what: String,
        /// This rank.
        rank: usize,
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// An earlier collective timed out; this replica can no longer be used.
    #[error("an earlier collective timed out: this replica is no longer usable")]
    Poisoned,
    /// Saving a checkpoint failed (on rank 0; every rank gets the error).
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Reading the checkpoint to resume from failed.
    #[error("resume: {0}")]
    Resume(String),
    /// Encoding or decoding parameters.
    #[error(transparent)]
    Nn(#[from] adjoint_nn::NnError),
}
