//! [`Dist`]: the MPI world of this process, with collectives that never hang.
//!
//! Every collective is started non-blocking (`MPI_Ibcast`, `MPI_Iallreduce`, `MPI_Ibarrier`)
//! and completed by polling `MPI_Test` against a deadline ([`Dist::set_timeout`]), so a rank
//! whose peer died or stopped calling collectives gets a [`DistError::Timeout`] instead of
//! blocking forever. Buffers handed to MPI are owned by the caller and must not be touched or
//! freed until the request completes; after a timeout they stay lent to MPI, so the caller
//! leaks them (see [`Pending`]) and should stop the job with [`Dist::abort`].

use std::ffi::c_int;
use std::time::{Duration, Instant};

use mpi::ffi;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::DistError;

/// Default deadline of one collective: long enough for a slow step on an oversubscribed
/// machine, short enough that a dead peer is reported within minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// This process's place in the MPI job.
pub struct Dist {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    timeout: Duration,
    // Finalizes MPI when dropped: declared last so the communicator goes first.
    _universe: mpi::environment::Universe,
}

/// Element types a collective can sum.
pub trait Reducible: Copy + Default + 'static {
    /// The MPI datatype.
    fn datatype() -> ffi::MPI_Datatype;
}

impl Reducible for f64 {
    fn datatype() -> ffi::MPI_Datatype {
        // SAFETY: a constant initialised by the MPI library.
        unsafe { ffi::RSMPI_DOUBLE }
    }
}

impl Reducible for f32 {
    fn datatype() -> ffi::MPI_Datatype {
        // SAFETY: as above.
        unsafe { ffi::RSMPI_FLOAT }
    }
}

impl Reducible for u8 {
    fn datatype() -> ffi::MPI_Datatype {
        // SAFETY: as above.
        unsafe { ffi::RSMPI_UINT8_T }
    }
}

/// A started non-blocking collective. Its buffers must stay put until [`Dist::wait`] returns
/// `Ok`; dropping a `Pending` that has not completed is a bug (it aborts the process, as MPI
/// may still write into the buffers).
#[must_use = "a started collective must be waited for"]
pub struct Pending {
    request: ffi::MPI_Request,
    what: String,
}

impl Drop for Pending {
    fn drop(&mut self) {
        // SAFETY: comparing handles.
        if self.request != unsafe { ffi::RSMPI_REQUEST_NULL } && !std::thread::panicking() {
            eprintln!("adjoint-dist: {} was dropped before it completed", self.what);
            std::process::abort();
        }
    }
}

fn check(rc: c_int, what: &str) -> Result<(), DistError> {
    // SAFETY: reading a constant.
    if rc == ffi::MPI_SUCCESS as c_int {
        Ok(())
    } else {
        Err(DistError::Mpi(format!("{what}: MPI error code {rc}")))
    }
}

impl Dist {
    /// Initialise MPI (once per process; `MPI_THREAD_FUNNELED`: only the calling thread talks to
    /// MPI, while the kernels use their own threads).
    pub fn init() -> Result<Dist, DistError> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| DistError::Mpi("MPI was already initialised in this process".into()))?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok(Dist { world, rank, size, timeout: DEFAULT_TIMEOUT, _universe: universe })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of processes.
    pub fn world_size(&self) -> usize {
        self.size
    }

    /// True on rank 0 (the one that writes checkpoints and records the run).
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// The deadline of one collective.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Set the deadline of one collective ([`DEFAULT_TIMEOUT`] by default).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Stop the whole job: print `adjoint-dist: rank R failed: <error>` on stderr and call
    /// `MPI_Abort`, which makes the launcher kill the other ranks (Open MPI's `mpirun` then
    /// reports that rank R called `MPI_ABORT`).
    pub fn abort(&self, error: &dyn std::fmt::Display) -> ! {
        eprintln!("adjoint-dist: rank {} failed: {error}", self.rank);
        self.world.abort(1)
    }

    /// Start summing `send` over all ranks into `recv` (same length).
    ///
    /// # Safety
    ///
    /// Neither buffer may be read, written, moved or freed until [`wait`](Self::wait) returns
    /// `Ok` for the returned request; after an error they must be leaked.
    #[track_caller]
    pub unsafe fn start_allreduce<T: Reducible>(
        &self,
        send: &[T],
        recv: &mut [T],
        what: &str,
    ) -> Result<Pending, DistError> {
        assert_eq!(send.len(), recv.len(), "adjoint-dist: allreduce: buffers of different lengths");
        let mut request = ffi::RSMPI_REQUEST_NULL;
        let rc = ffi::MPI_Iallreduce(
            send.as_ptr().cast(),
            recv.as_mut_ptr().cast(),
            count(send.len())?,
            T::datatype(),
            ffi::RSMPI_SUM,
            self.world.as_raw(),
            &mut request,
        );
        check(rc, what)?;
        Ok(Pending { request, what: what.to_string() })
    }

    /// Start summing `send` (`world_size` blocks of `recv.len()` elements) over all ranks and
    /// leaving block `rank` of the sum in `recv` (`MPI_Ireduce_scatter_block`).
    ///
    /// # Safety
    ///
    /// As [`start_allreduce`](Self::start_allreduce).
    #[track_caller]
    pub unsafe fn start_reduce_scatter<T: Reducible>(
        &self,
        send: &[T],
        recv: &mut [T],
        what: &str,
    ) -> Result<Pending, DistError> {
        assert_eq!(send.len(), recv.len() * self.size, "adjoint-dist: reduce-scatter: buffer lengths");
        let mut request = ffi::RSMPI_REQUEST_NULL;
        let rc = ffi::MPI_Ireduce_scatter_block(
            send.as_ptr().cast(),
            recv.as_mut_ptr().cast(),
            count(recv.len())?,
            T::datatype(),
            ffi::RSMPI_SUM,
            self.world.as_raw(),
            &mut request,
        );
        check(rc, what)?;
        Ok(Pending { request, what: what.to_string() })
    }

    /// Start gathering every rank's `send` into `recv` (`world_size` blocks of `send.len()`
    /// elements, in rank order; `MPI_Iallgather`).
    ///
    /// # Safety
    ///
    /// As [`start_allreduce`](Self::start_allreduce).
    #[track_caller]
    pub unsafe fn start_allgather<T: Reducible>(
        &self,
        send: &[T],
        recv: &mut [T],
        what: &str,
    ) -> Result<Pending, DistError> {
        assert_eq!(send.len() * self.size, recv.len(), "adjoint-dist: allgather: buffer lengths");
        let mut request = ffi::RSMPI_REQUEST_NULL;
        let rc = ffi::MPI_Iallgather(
            send.as_ptr().cast(),
            count(send.len())?,
            T::datatype(),
            recv.as_mut_ptr().cast(),
            count(send.len())?,
            T::datatype(),
            self.world.as_raw(),
            &mut request,
        );
        check(rc, what)?;
        Ok(Pending { request, what: what.to_string() })
    }

    /// Start broadcasting `buf` from rank 0.
    ///
    /// # Safety
    ///
    /// As [`start_allreduce`](Self::start_allreduce).
    pub unsafe fn start_broadcast<T: Reducible>(
        &self,
        buf: &mut [T],
        what: &str,
    ) -> Result<Pending, DistError> {
        let mut request = ffi::RSMPI_REQUEST_NULL;
        let rc = ffi::MPI_Ibcast(
            buf.as_mut_ptr().cast(),
            count(buf.len())?,
            T::datatype(),
            0,
            self.world.as_raw(),
            &mut request,
        );
        check(rc, what)?;
        Ok(Pending { request, what: what.to_string() })
    }

    /// Whether `pending` has completed (one `MPI_Test`, which also lets MPI move it forward).
    /// A completed request may still be passed to [`wait`](Self::wait), which returns at once.
    pub fn test(&self, pending: &mut Pending) -> Result<bool, DistError> {
        if pending.request == unsafe { ffi::RSMPI_REQUEST_NULL } {
            return Ok(true);
        }
        let mut flag: c_int = 0;
        // SAFETY: a live request; MPI sets it to MPI_REQUEST_NULL when it completes.
        let rc = unsafe { ffi::MPI_Test(&mut pending.request, &mut flag, ffi::RSMPI_STATUS_IGNORE) };
        check(rc, &pending.what)?;
        Ok(flag != 0)
    }

    /// Poll `pending` until it completes or the deadline passes (then [`DistError::Timeout`];
    /// its buffers stay lent to MPI: leak them).
    pub fn wait(&self, pending: Pending) -> Result<(), DistError> {
        self.wait_until(pending, Instant::now() + self.timeout)
    }

    /// [`wait`](Self::wait) with an explicit deadline (several requests share one).
    pub fn wait_until(&self, mut pending: Pending, deadline: Instant) -> Result<(), DistError> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            // SAFETY: comparing handles.
            if pending.request == unsafe { ffi::RSMPI_REQUEST_NULL } {
                return Ok(());
            }
            let mut flag: c_int = 0;
            // SAFETY: a live request; MPI sets it to MPI_REQUEST_NULL when it completes.
            let rc = unsafe { ffi::MPI_Test(&mut pending.request, &mut flag, ffi::RSMPI_STATUS_IGNORE) };
            if let Err(e) = check(rc, &pending.what) {
                std::mem::forget(pending);
                return Err(e);
            }
            if flag != 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let what = std::mem::take(&mut pending.what);
                std::mem::forget(pending);
                return Err(DistError::Timeout { what, rank: self.rank, waited: start.elapsed() });
            }
            // Spin briefly (latency), then yield the core to runnable processes (a peer rank on
            // an oversubscribed machine), and after 10 ms sleep between polls so a long wait
            // (a slow or dead peer) does not burn a core.
            spins += 1;
            if spins < 200 {
                std::hint::spin_loop();
            } else if start.elapsed() < Duration::from_millis(10) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }

    /// Sum `data` over all ranks, in place, within the deadline.
    pub fn allreduce_sum<T: Reducible>(&self, data: &mut [T]) -> Result<(), DistError> {
        let send = data.to_vec();
        // SAFETY: `send` and `data` live until the wait returns; leaked on error.
        let p = unsafe { self.start_allreduce(&send, data, "allreduce")? };
        let r = self.wait(p);
        if r.is_err() {
            std::mem::forget(send);
        }
        r
    }

    /// The mean of each value over all ranks (loss, accuracy, example counts…).
    pub fn mean(&self, values: &[f64]) -> Result<Vec<f64>, DistError> {
        let mut v = values.to_vec();
        self.allreduce_sum(&mut v)?;
        let n = self.size as f64;
        Ok(v.into_iter().map(|x| x / n).collect())
    }

    /// Rank 0's bytes on every rank (any length: the length goes first).
    pub fn broadcast_bytes(&self, bytes: &[u8]) -> Result<Vec<u8>, DistError> {
        let mut len = [if self.is_root() { bytes.len() as f64 } else { 0.0 }];
        // SAFETY: `len` lives until the wait returns; leaked on error.
        let p = unsafe { self.start_broadcast(&mut len, "broadcast of a length")? };
        self.wait(p)?;
        if len[0] == 0.0 {
            return Ok(Vec::new());
        }
        let mut buf = if self.is_root() { bytes.to_vec() } else { vec![0u8; len[0] as usize] };
        // SAFETY: as above.
        let p = unsafe { self.start_broadcast(&mut buf, "broadcast")? };
        match self.wait(p) {
            Ok(()) => Ok(buf),
            Err(e) => {
                std::mem::forget(buf);
                Err(e)
            }
        }
    }

    /// Wait for every rank, within the deadline.
    pub fn barrier(&self) -> Result<(), DistError> {
        let mut request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: no buffers.
        let rc = unsafe { ffi::MPI_Ibarrier(self.world.as_raw(), &mut request) };
        check(rc, "barrier")?;
        self.wait(Pending { request, what: "barrier".into() })
    }
}

fn count(len: usize) -> Result<c_int, DistError> {
    c_int::try_from(len)
        .map_err(|_| DistError::Mpi(format!("a message of {len} elements is too long for MPI")))
}
