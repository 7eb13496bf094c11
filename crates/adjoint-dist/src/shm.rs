//! [`Segment`]: memory that every rank of a single-node world reads and writes directly
//! (`MPI_Win_allocate_shared`), for the sharded update's reduce-scatter and all-gather.
//!
//! Why: between processes on one node, a point-to-point message of a megabyte moves by a
//! kernel copy (Open MPI's `vader` transport with CMA), one message per leaf and direction,
//! and the sum is a second pass. With every rank's gradients in shared memory, a rank sums
//! its rows of every rank's gradient in one pass of plain loads, and copies the other ranks'
//! updated rows straight out of their segments: one user-space pass per byte, no message. W2's
//! sharded step on 2 ranks: benches/LOG.md, issue 20. Worlds that span nodes keep the ring
//! ([`Dist::start_ring_reduce_scatter`](crate::Dist::start_ring_reduce_scatter)); so does
//! [`DataParallelConfig::shared_memory`](crate::DataParallelConfig::shared_memory) `= false`,
//! to measure or test that path on one node.
//!
//! Synchronisation is the caller's: it writes its own segment, passes a
//! [`Dist::barrier`](crate::Dist::barrier) (non-blocking with a deadline, so a dead peer is a
//! timeout, not a hang) bracketed by [`Segment::sync`], and only then reads the others'.

use std::ffi::c_int;

use mpi::ffi;

use crate::comm::{check, Dist};
use crate::DistError;

/// One shared window over the ranks of a single-node world: `bytes` per rank.
pub(crate) struct Segment {
    win: ffi::MPI_Win,
    comm: ffi::MPI_Comm,
    /// Each rank's segment, in rank order.
    bases: Vec<*mut u8>,
    bytes: usize,
}

impl Segment {
    /// A segment of `bytes` per rank when every rank of `dist` shares this node's memory;
    /// `None` otherwise. Collective (blocking MPI calls: used once, when a `DataParallel` is
    /// built).
    pub(crate) fn new(dist: &Dist, bytes: usize) -> Result<Option<Segment>, DistError> {
        if dist.world_size() < 2 {
            return Ok(None);
        }
        // SAFETY: a constant initialised by the MPI library.
        let mut comm = unsafe { ffi::RSMPI_COMM_NULL };
        // SAFETY: MPI calls on live handles; every out-pointer is valid. All ranks take the
        // same branch: the node communicator's size is compared with the world's on every
        // rank, and a world that spans nodes has a smaller node communicator on all of them.
        unsafe {
            let rc = ffi::MPI_Comm_split_type(
                dist.world_raw(),
                ffi::RSMPI_COMM_TYPE_SHARED,
                dist.rank() as c_int,
                ffi::RSMPI_INFO_NULL,
                &mut comm,
            );
            check(rc, "MPI_Comm_split_type")?;
            let mut size: c_int = 0;
            check(ffi::MPI_Comm_size(comm, &mut size), "MPI_Comm_size")?;
            // Every rank must agree: a world split over nodes uses the ring everywhere.
            let mut all = [f64::from(size == dist.world_size() as c_int)];
            dist.allreduce_sum(&mut all)?;
            if all[0] != dist.world_size() as f64 {
                ffi::MPI_Comm_free(&mut comm);
                return Ok(None);
            }
            let mut base: *mut u8 = std::ptr::null_mut();
            let mut win = ffi::RSMPI_WIN_NULL;
            let rc = ffi::MPI_Win_allocate_shared(
                bytes.max(64) as ffi::MPI_Aint,
                1,
                ffi::RSMPI_INFO_NULL,
                comm,
                (&mut base as *mut *mut u8).cast(),
                &mut win,
            );
            check(rc, "MPI_Win_allocate_shared")?;
            let mut bases = Vec::with_capacity(dist.world_size());
            for q in 0..dist.world_size() {
                let (mut len, mut unit, mut ptr): (ffi::MPI_Aint, c_int, *mut u8) =
                    (0, 0, std::ptr::null_mut());
                let rc = ffi::MPI_Win_shared_query(
                    win,
                    q as c_int,
                    &mut len,
                    &mut unit,
                    (&mut ptr as *mut *mut u8).cast(),
                );
                check(rc, "MPI_Win_shared_query")?;
                bases.push(ptr);
            }
            // One passive-target epoch for the window's life: loads and stores are then legal
            // at any time, ordered by `sync` and the caller's barriers.
            check(ffi::MPI_Win_lock_all(ffi::MPI_MODE_NOCHECK as c_int, win), "MPI_Win_lock_all")?;
            Ok(Some(Segment { win, comm, bases, bytes }))
        }
    }

    /// Make this rank's stores visible and the others' visible to it (around a barrier).
    pub(crate) fn sync(&self) {
        // SAFETY: a live window inside its epoch.
        unsafe { ffi::MPI_Win_sync(self.win) };
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }

    /// `n` elements of `T` at byte `offset` of rank `q`'s segment.
    ///
    /// # Safety
    ///
    /// The range lies inside the segment, is aligned for `T`, and no other rank writes it
    /// while the slice lives (the caller's barriers order the phases).
    pub(crate) unsafe fn slice<T>(&self, q: usize, offset: usize, n: usize) -> &[T] {
        debug_assert!(offset + n * std::mem::size_of::<T>() <= self.bytes);
        unsafe { std::slice::from_raw_parts(self.bases[q].add(offset).cast::<T>(), n) }
    }

    /// `n` elements of `T` at byte `offset` of this rank's segment (`rank`), to write.
    ///
    /// # Safety
    ///
    /// As [`slice`](Self::slice), and no other rank reads the range while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut<T>(&self, rank: usize, offset: usize, n: usize) -> &mut [T] {
        debug_assert!(offset + n * std::mem::size_of::<T>() <= self.bytes);
        unsafe { std::slice::from_raw_parts_mut(self.bases[rank].add(offset).cast::<T>(), n) }
    }

    /// Free the window (collective) — or, after a failed collective, leave it: a peer may be
    /// gone, and freeing would wait for it.
    pub(crate) fn release(mut self, poisoned: bool) {
        if poisoned {
            return;
        }
        // SAFETY: live handles, freed once (`release` consumes the segment).
        unsafe {
            ffi::MPI_Win_unlock_all(self.win);
            ffi::MPI_Win_free(&mut self.win);
            ffi::MPI_Comm_free(&mut self.comm);
        }
    }
}
