//! [`Dist`]: the MPI world of this process, with collectives that never hang.
//!
//! Every collective is started non-blocking (`MPI_Ibcast`, `MPI_Iallreduce`, `MPI_Ibarrier`)
//! and completed by polling `MPI_Test` against a deadline ([`Dist::set_timeout`]), so a rank
//! whose peer died or stopped calling collectives gets a [`DistError::Timeout`] instead of
//! blocking forever. Buffers handed to MPI are owned by the caller and must not be touched or
//! freed until the request completes; after a timeout they stay lent to MPI, so the caller
//! leaks them (see [`Pending`]) and should stop the job with [`Dist::abort`].

use std::ffi::c_int;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mpi::ffi;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::DistError;

/// Polls of a wait before it starts yielding the core.
const SPINS: u32 = 200;

/// Default deadline of one collective: long enough for a slow step on an oversubscribed
/// machine, short enough that a dead peer is reported within minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// This process's place in the MPI job.
pub struct Dist {
    world: SimpleCommunicator,
    /// A duplicate of `world` for the point-to-point messages of [`start_ring_allreduce`]
    /// (Self::start_ring_allreduce), so they never match a user's messages on the world.
    ring_comm: SimpleCommunicator,
    /// Collectives started on `ring_comm` so far: the message tag of the next one (all ranks
    /// start them in the same order, so the counts agree), which keeps the messages of rings in
    /// flight at the same time apart.
    ring_seq: AtomicU32,
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

/// Floating-point element types: [`Dist::start_ring_allreduce`] sums and scales them itself.
pub trait Float: Reducible + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> {
    /// `x` rounded to this type.
    fn from_f64(x: f64) -> Self;
}

impl Float for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
}

impl Float for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
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
    /// The MPI request of a collective started in MPI (null for a ring).
    request: ffi::MPI_Request,
    /// `Some` for [`Dist::start_ring_allreduce`]: the steps still to do.
    ring: Option<Box<Ring>>,
    what: String,
}

impl Pending {
    fn new(request: ffi::MPI_Request, what: &str) -> Pending {
        Pending { request, ring: None, what: what.to_string() }
    }

    fn done(&self) -> bool {
        // SAFETY: comparing handles.
        self.request == unsafe { ffi::RSMPI_REQUEST_NULL } && self.ring.is_none()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done() && !std::thread::panicking() {
            eprintln!("adjoint-dist: {} was dropped before it completed", self.what);
            std::process::abort();
        }
    }
}

/// A ring in progress ([`Dist::start_ring_allreduce`], or one of its halves:
/// [`Dist::start_ring_reduce_scatter`], [`Dist::start_ring_allgather`]): steps of one send to
/// the right neighbour and one receive from the left, with the sums done here.
struct Ring {
    /// The caller's buffer (lent until the ring completes), and the element offsets of its `p`
    /// chunks (`p + 1` bounds).
    buf: *mut u8,
    bounds: Vec<usize>,
    /// Bytes per element, and the element type.
    elem: usize,
    datatype: ffi::MPI_Datatype,
    /// `dst[i] = (dst[i] + src[i]) * scale` over `n` elements, for the element type.
    add: unsafe fn(*mut u8, *const u8, usize, f64),
    scale: f64,
    /// Receives a chunk during the reduce-scatter (`f64` words: aligned for either type).
    tmp: Vec<f64>,
    rank: usize,
    size: usize,
    comm: ffi::MPI_Comm,
    tag: c_int,
    /// Chunk `c` of the schedule is chunk `(c + shift) mod p` of the buffer: 0 for the
    /// allreduce, `p − 1` for the reduce-scatter and all-gather, so that rank `r` finishes
    /// (and all-gathers from) block `r`.
    shift: usize,
    /// The step whose messages are in flight (`end` when done), its two requests (send,
    /// receive), and the step after the last one: `p − 1` for a reduce-scatter, `2 (p − 1)`
    /// otherwise (an all-gather starts at step `p − 1`).
    step: usize,
    end: usize,
    reqs: [ffi::MPI_Request; 2],
}

/// `dst = (dst + src) * scale`, elementwise, `n` elements of `T`.
///
/// # Safety
///
/// `dst` and `src` point to `n` valid, non-overlapping, aligned elements of `T`.
unsafe fn add_scaled<T: Float>(dst: *mut u8, src: *const u8, n: usize, scale: f64) {
    unsafe {
        let dst = std::slice::from_raw_parts_mut(dst.cast::<T>(), n);
        let src = std::slice::from_raw_parts(src.cast::<T>(), n);
        if scale == 1.0 {
            dst.iter_mut().zip(src).for_each(|(d, &s)| *d = *d + s);
        } else {
            let k = T::from_f64(scale);
            dst.iter_mut().zip(src).for_each(|(d, &s)| *d = (*d + s) * k);
        }
    }
}

impl Ring {
    /// Elements `(start, len)` of chunk `c` (chunk `c mod p`).
    fn chunk(&self, c: usize) -> (usize, usize) {
        let c = (c + self.shift) % self.size;
        (self.bounds[c], self.bounds[c + 1] - self.bounds[c])
    }

    /// Post the messages of step `self.step`. Reduce-scatter (steps `s < p − 1`): send chunk
    /// `r − s` (this rank's partial sum of it) and receive chunk `r − s − 1` into `tmp`; after
    /// `p − 1` steps this rank holds the whole sum of chunk `r + 1`. All-gather (steps
    /// `p − 1 + s`): send chunk `r + 1 − s` and receive chunk `r − s` in place.
    fn post(&mut self) -> c_int {
        let (p, r) = (self.size, self.rank);
        let (right, left) = (((r + 1) % p) as c_int, ((r + p - 1) % p) as c_int);
        let (send, recv, into_tmp) = if self.step < p - 1 {
            let s = self.step;
            (self.chunk(r + p - s), self.chunk(r + 2 * p - s - 1), true)
        } else {
            let s = self.step - (p - 1);
            (self.chunk(r + 1 + p - s), self.chunk(r + p - s), false)
        };
        let dst = if into_tmp {
            self.tmp.as_mut_ptr().cast::<u8>()
        } else {
            // SAFETY: `recv` lies inside the caller's buffer.
            unsafe { self.buf.add(recv.0 * self.elem) }
        };
        // SAFETY: the buffers stay lent until the ring completes (see `start_ring_allreduce`);
        // a send and a receive of the same step never overlap (different chunks, or `tmp`).
        unsafe {
            let rc = ffi::MPI_Irecv(
                dst.cast(),
                recv.1 as c_int,
                self.datatype,
                left,
                self.tag,
                self.comm,
                &mut self.reqs[1],
            );
            if rc != ffi::MPI_SUCCESS as c_int {
                return rc;
            }
            ffi::MPI_Isend(
                self.buf.add(send.0 * self.elem).cast(),
                send.1 as c_int,
                self.datatype,
                right,
                self.tag,
                self.comm,
                &mut self.reqs[0],
            )
        }
    }

    /// Move forward as far as the messages allow: `Ok(true)` once every step is done.
    fn advance(&mut self) -> Result<bool, c_int> {
        let (p, r) = (self.size, self.rank);
        while self.step < self.end {
            let mut flag: c_int = 0;
            // SAFETY: live requests (or null ones, which test as complete).
            let rc =
                unsafe { ffi::MPI_Testall(2, self.reqs.as_mut_ptr(), &mut flag, ffi::RSMPI_STATUSES_IGNORE) };
            if rc != ffi::MPI_SUCCESS as c_int {
                return Err(rc);
            }
            if flag == 0 {
                return Ok(false);
            }
            if self.step < p - 1 {
                // The chunk received into `tmp`; on the last reduce-scatter step it is whole
                // and is scaled on the way.
                let (lo, n) = self.chunk(r + 2 * p - self.step - 1);
                let scale = if self.step == p - 2 { self.scale } else { 1.0 };
                // SAFETY: `tmp` holds `n` received elements; the chunk is inside the buffer.
                unsafe { (self.add)(self.buf.add(lo * self.elem), self.tmp.as_ptr().cast(), n, scale) };
            }
            self.step += 1;
            if self.step < self.end {
                let rc = self.post();
                if rc != ffi::MPI_SUCCESS as c_int {
                    return Err(rc);
                }
            }
        }
        Ok(true)
    }
}

/// `Ok` for `MPI_SUCCESS`, else the error naming `what`.
pub(crate) fn check(rc: c_int, what: &str) -> Result<(), DistError> {
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
        let ring_comm = world.duplicate();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok(Dist {
            world,
            ring_comm,
            ring_seq: AtomicU32::new(0),
            rank,
            size,
            timeout: DEFAULT_TIMEOUT,
            _universe: universe,
        })
    }

    /// The world communicator's raw handle.
    pub(crate) fn world_raw(&self) -> ffi::MPI_Comm {
        self.world.as_raw()
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
        // One write of the whole line: `eprintln!` writes a formatted line in pieces, and
        // `mpirun`, which forwards stdout and stderr separately, then interleaved another line
        // of this rank into the middle of it ("adjoint-dist: rank rank 1: injecting …").
        use std::io::Write;
        let line = format!("adjoint-dist: rank {} failed: {error}\n", self.rank);
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().write_all(line.as_bytes());
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
        unsafe {
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
            Ok(Pending::new(request, what))
        }
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
        unsafe {
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
            Ok(Pending::new(request, what))
        }
    }

    /// Start summing `buf` over all ranks, in place, and multiplying the sum by `scale`, with
    /// a ring of point-to-point messages driven from here rather than MPI's own allreduce.
    ///
    /// The buffer is cut into `p` chunks; in `p − 1` reduce-scatter steps each rank sends a
    /// chunk to its right neighbour and adds the one it receives from its left into its own,
    /// so that rank `r` ends with the whole sum of chunk `r + 1` (scaled as it is finished);
    /// `p − 1` all-gather steps then pass the finished chunks round. Every rank sends and
    /// receives `2 (p − 1) / p` of the buffer and sums `(p − 1) / p` of it, all ranks at once,
    /// and each chunk is summed by one rank only, so the result is the same on every rank bit
    /// for bit.
    ///
    /// Why not `MPI_Iallreduce`: Open MPI's non-blocking allreduce (libnbc) runs a binomial
    /// tree below 4 ranks: rank 1 sends everything to rank 0, rank 0 sums, and sends the sum
    /// back, so each rank idles half the collective and the whole buffer crosses twice. For
    /// W2's 2.7 MB of gradients on 2 ranks, libnbc's own ring took 0.6–2.9 ms and its binomial
    /// tree 3.6–4.0 ms (medians under load 4.5–5: an idle rank that yields its core waits for
    /// the scheduler to give it back; benches/LOG.md, issue 20). Running the ring here does not
    /// depend on an Open MPI tuning parameter, and folds the mean's division into the last sum
    /// instead of a pass of its own.
    ///
    /// Progress: one step's messages move inside [`test`](Self::test) and
    /// [`wait`](Self::wait), which also post the next step.
    ///
    /// # Safety
    ///
    /// As [`start_allreduce`](Self::start_allreduce): `buf` may not be read, written, moved or
    /// freed until [`wait`](Self::wait) returns `Ok` for the returned request.
    pub unsafe fn start_ring_allreduce<T: Float>(
        &self,
        buf: &mut [T],
        scale: f64,
        what: &str,
    ) -> Result<Pending, DistError> {
        let (n, p) = (buf.len(), self.size);
        let bounds = (0..=p).map(|c| c * n / p).collect();
        // SAFETY: passed on to the caller.
        unsafe { self.start_ring(buf, bounds, scale, 0..2 * (p - 1), 0, what) }
    }

    /// Start the reduce-scatter half of [`start_ring_allreduce`](Self::start_ring_allreduce):
    /// `buf` is `world_size` consecutive parts, part `r` of `parts[r]` elements, and when the
    /// request completes part `rank` holds the sum over all ranks of their part `rank`,
    /// multiplied by `scale` (the other parts are left partly summed). Each rank sends and
    /// receives `(p − 1) / p` of the buffer. With
    /// [`start_ring_allgather`](Self::start_ring_allgather) after it, this is the sharded
    /// update's communication: the same volume as one allreduce.
    ///
    /// # Safety
    ///
    /// As [`start_ring_allreduce`](Self::start_ring_allreduce).
    #[track_caller]
    pub unsafe fn start_ring_reduce_scatter<T: Float>(
        &self,
        buf: &mut [T],
        parts: &[usize],
        scale: f64,
        what: &str,
    ) -> Result<Pending, DistError> {
        let (p, bounds) = (self.size, self.part_bounds(buf.len(), parts, "reduce-scatter"));
        // SAFETY: passed on to the caller.
        unsafe { self.start_ring(buf, bounds, scale, 0..p - 1, p - 1, what) }
    }

    /// Start the all-gather half of [`start_ring_allreduce`](Self::start_ring_allreduce):
    /// `buf` is `world_size` consecutive parts as in
    /// [`start_ring_reduce_scatter`](Self::start_ring_reduce_scatter), and when the request
    /// completes every part `r` holds rank `r`'s part `r`.
    ///
    /// # Safety
    ///
    /// As [`start_ring_allreduce`](Self::start_ring_allreduce).
    #[track_caller]
    pub unsafe fn start_ring_allgather<T: Float>(
        &self,
        buf: &mut [T],
        parts: &[usize],
        what: &str,
    ) -> Result<Pending, DistError> {
        let (p, bounds) = (self.size, self.part_bounds(buf.len(), parts, "all-gather"));
        // SAFETY: passed on to the caller.
        unsafe { self.start_ring(buf, bounds, 1.0, p - 1..2 * (p - 1), p - 1, what) }
    }

    /// The `p + 1` bounds of consecutive parts of `parts[r]` elements, which must cover `len`.
    #[track_caller]
    fn part_bounds(&self, len: usize, parts: &[usize], op: &str) -> Vec<usize> {
        assert!(
            parts.len() == self.size && parts.iter().sum::<usize>() == len,
            "adjoint-dist: {op}: parts {parts:?} for {} ranks do not cover a buffer of {len} elements",
            self.size
        );
        let mut bounds = vec![0];
        for &n in parts {
            bounds.push(bounds.last().copied().unwrap_or(0) + n);
        }
        bounds
    }

    /// Steps `steps` of the ring schedule over `buf` cut at `bounds` (see `Ring`).
    unsafe fn start_ring<T: Float>(
        &self,
        buf: &mut [T],
        bounds: Vec<usize>,
        scale: f64,
        steps: std::ops::Range<usize>,
        shift: usize,
        what: &str,
    ) -> Result<Pending, DistError> {
        unsafe {
            count(buf.len())?;
            // Every rank starts rings in the same order, so the sequence numbers agree; tags stay
            // below 2^15 (the least MPI_TAG_UB the standard allows).
            let tag = (self.ring_seq.fetch_add(1, Ordering::Relaxed) % (1 << 15)) as c_int;
            let p = self.size;
            if p == 1 {
                if scale != 1.0 {
                    let k = T::from_f64(scale);
                    buf.iter_mut().for_each(|x| *x = *x * k);
                }
                return Ok(Pending::new(ffi::RSMPI_REQUEST_NULL, what));
            }
            // Only the reduce-scatter steps receive into `tmp`.
            let largest = bounds.windows(2).map(|b| b[1] - b[0]).max().unwrap_or(0);
            let most = if steps.start < p - 1 { largest * std::mem::size_of::<T>() } else { 0 };
            let mut ring = Box::new(Ring {
                buf: buf.as_mut_ptr().cast(),
                bounds,
                elem: std::mem::size_of::<T>(),
                datatype: T::datatype(),
                add: add_scaled::<T>,
                scale,
                tmp: vec![0.0; most.div_ceil(8)],
                rank: self.rank,
                size: p,
                comm: self.ring_comm.as_raw(),
                tag,
                shift,
                step: steps.start,
                end: steps.end,
                reqs: [ffi::RSMPI_REQUEST_NULL; 2],
            });
            check(ring.post(), what)?;
            Ok(Pending { request: ffi::RSMPI_REQUEST_NULL, ring: Some(ring), what: what.to_string() })
        }
    }

    /// Move `pending` forward: `Ok(true)` once it has completed.
    fn progress(&self, pending: &mut Pending) -> Result<bool, DistError> {
        if let Some(ring) = pending.ring.as_mut() {
            return match ring.advance() {
                Ok(false) => Ok(false),
                Ok(true) => {
                    pending.ring = None;
                    Ok(true)
                }
                Err(rc) => Err(DistError::Mpi(format!("{}: MPI error code {rc}", pending.what))),
            };
        }
        // SAFETY: comparing handles.
        if pending.request == unsafe { ffi::RSMPI_REQUEST_NULL } {
            return Ok(true);
        }
        let mut flag: c_int = 0;
        // SAFETY: a live request; MPI sets it to MPI_REQUEST_NULL when it completes.
        let rc = unsafe { ffi::MPI_Test(&mut pending.request, &mut flag, ffi::RSMPI_STATUS_IGNORE) };
        check(rc, &pending.what)?;
        Ok(flag != 0)
    }

    /// Whether `pending` has completed (one `MPI_Test`, which also lets MPI move it forward).
    /// A completed request may still be passed to [`wait`](Self::wait), which returns at once.
    pub fn test(&self, pending: &mut Pending) -> Result<bool, DistError> {
        self.progress(pending)
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
            match self.progress(&mut pending) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    std::mem::forget(pending);
                    return Err(e);
                }
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
            if spins < SPINS {
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
        self.wait(Pending::new(request, "barrier"))
    }
}

fn count(len: usize) -> Result<c_int, DistError> {
    c_int::try_from(len)
        .map_err(|_| DistError::Mpi(format!("a message of {len} elements is too long for MPI")))
}

/// Wait for every started collective while `result` is `Ok`; after a failure, leak the rest
/// (their buffers may still be in MPI's hands), set `poisoned` and return the error.
pub(crate) fn settle(
    dist: &Dist,
    poisoned: &mut bool,
    pending: Vec<Pending>,
    mut result: Result<(), DistError>,
    deadline: Instant,
) -> Result<(), DistError> {
    for p in pending {
        if result.is_ok() {
            result = dist.wait_until(p, deadline);
        } else {
            std::mem::forget(p);
        }
    }
    if result.is_err() {
        *poisoned = true;
    }
    result
}
