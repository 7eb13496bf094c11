//! The thread pool the kernels run on, and how a program sets it up: [`init`].
//!
//! Every parallel kernel in the workspace splits its work with `rayon` on rayon's global pool.
//! Left alone, that pool's threads are all separate from the thread that calls into adjoint. A
//! kernel called from `main` then hands *every* part of its work to the pool and puts `main` to
//! sleep on a lock and condition variable until the parts are done (rayon's "cold" path), so
//! each parallel kernel costs a sleep and a wake-up of the caller on top of the wake-ups of the
//! workers — a few microseconds each, paid some thirty times per training step.
//!
//! [`init`] builds the global pool with the calling thread as one of its threads (rayon's
//! `use_current_thread`): the way an OpenMP program's master thread is one of the team, and
//! PyTorch's intra-op pool's caller works on its own loops. A kernel's `join` then runs one half
//! on the caller and leaves the other to the pool's second thread, and a caller waiting for a
//! half does work-stealing instead of sleeping. A program calls it once, first thing in `main`,
//! before anything uses rayon; the binaries of this workspace (the CLI, the benchmarks, the
//! MPI worker) do.
//!
//! With one thread there is nothing to split and [`init`] keeps the caller out of the pool: a
//! pool whose only thread is the caller would never run work that another thread hands it
//! while the caller is busy elsewhere.
//!
//! Results never depend on this choice: the kernels cut their work at fixed sizes, whatever
//! thread runs each part.

use std::fmt;

/// Why [`init`] could not set the pool up (rayon's global pool already existed, most often
/// because something used rayon before `init` ran). The pool rayon built is then used as it is.
#[derive(Debug)]
pub struct InitError(rayon::ThreadPoolBuildError);

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "adjoint: could not set up the thread pool: {}", self.0)
    }
}

impl std::error::Error for InitError {}

/// The thread count [`init`] uses for `threads == 0`: `RAYON_NUM_THREADS` when it is a positive
/// number, otherwise the machine's available parallelism (rayon's own rule).
///
/// ```
/// assert!(adjoint_tensor::threads::default_threads() >= 1);
/// ```
pub fn default_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Build the global pool with `threads` threads (`0`: [`default_threads`]), the calling thread
/// being one of them when there are two or more (see the [module docs](self)). Returns the
/// pool's size. Call it once, at the start of `main`, before anything else uses rayon.
///
/// ```
/// // In a program's `main`:
/// let n = adjoint_tensor::threads::init(2).expect("the first use of rayon");
/// assert_eq!(n, rayon::current_num_threads());
/// assert_eq!(rayon::current_thread_index(), Some(0)); // the caller is one of the two
/// // Kernels called from here split their work with the pool's other thread.
/// ```
pub fn init(threads: usize) -> Result<usize, InitError> {
    let n = if threads == 0 { default_threads() } else { threads };
    let builder = rayon::ThreadPoolBuilder::new().num_threads(n);
    let builder = if n >= 2 { builder.use_current_thread() } else { builder };
    builder.build_global().map_err(InitError)?;
    Ok(n)
}

/// How long, by default, a pool thread keeps looking for work after a parallel kernel before it
/// may sleep: see [`keep_warm`].
pub const DEFAULT_WARM_US: u64 = 200;

/// Set while a [`keep_warm`] task is queued or running (at most one at a time).
static WARM_TASK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called by the parallel kernels when they finish: lets one pool thread other than the caller
/// keep looking for work (rayon's `yield_now`, which runs any job it finds) until
/// `ADJOINT_WARM_US` microseconds ([`DEFAULT_WARM_US`]; `0` turns it off) pass without one.
///
/// Rayon's own idle loop puts a thread to sleep after about 32 yields — a few microseconds on
/// an idle core — and the next kernel's split then waits for a futex wake-up of that thread
/// (on a VM, an inter-processor interrupt to a halted vCPU). A training step runs some twenty
/// parallel kernels with serial work between them, so that wait recurs: the W2 step used 1.64–1.79
/// cores of 2 and spent 6–8% of its samples in the scheduler. OpenMP's threads, which PyTorch
/// runs on, spin for a while after each parallel region for the same reason. Measured on the
/// W2 step (`train_bench --only mlp`, 2 threads, two sets of six interleaved pairs): medians
/// 2.67 → 2.23 ms and 3.02 → 2.78 ms with 200 µs. The cost is at most that long of one core
/// after each parallel kernel; the caller's thread never spins.
///
/// ```
/// adjoint_tensor::threads::keep_warm(); // a no-op on a one-thread pool or while one is running
/// ```
pub fn keep_warm() {
    use std::sync::atomic::Ordering;
    static WARM_US: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let us = *WARM_US.get_or_init(|| crate::env::knob("ADJOINT_WARM_US", DEFAULT_WARM_US));
    if us == 0 || rayon::current_num_threads() < 2 || WARM_TASK.swap(true, Ordering::AcqRel) {
        return;
    }
    rayon::spawn(move || {
        // Not on the pool's thread 0, which is the caller's after `init`: it would stall the
        // program (the task may reach it when the caller waits inside a join).
        if rayon::current_thread_index() != Some(0) {
            let budget = std::time::Duration::from_micros(us);
            let mut last = std::time::Instant::now();
            loop {
                match rayon::yield_now() {
                    Some(rayon::Yield::Executed) => last = std::time::Instant::now(),
                    _ if last.elapsed() > budget => break,
                    _ => std::hint::spin_loop(),
                }
            }
        }
        WARM_TASK.store(false, Ordering::Release);
    });
}

/// Whether a [`keep_warm`] task is queued or running (for tests: it ends by itself).
#[doc(hidden)]
pub fn warm_task_pending() -> bool {
    WARM_TASK.load(std::sync::atomic::Ordering::Acquire)
}
