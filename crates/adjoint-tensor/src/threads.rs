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
