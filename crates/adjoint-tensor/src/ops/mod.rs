//! CPU kernels. Each file holds one family of kernels as inherent methods on [`Array`](crate::Array).
//!
//! Kernels read any strided layout and write fresh contiguous output. Contiguous inputs take a
//! slice fast path (no per-element index arithmetic); large ones are split across `rayon`.

pub mod binary;
pub mod block;
pub mod cast;
pub mod compare;
pub mod concat;
pub mod conv;
pub mod cumulative;
mod fastmath;
pub mod index;
pub mod lincomb;
pub mod matmul;
mod packed;
pub mod pad;
pub mod pool;
pub mod reduce;
pub mod rnn;
pub mod select;
pub mod simd;
pub mod sort;
mod stream;
pub use stream::copy_slice;
pub mod transpose;
pub mod unary;

/// Element count above which elementwise kernels and reductions go parallel.
pub const PAR_THRESHOLD: usize = 1 << 16;

/// Whether a kernel touching `work` elements splits it across the pool: at [`PAR_THRESHOLD`]
/// and up, and only when the pool has a second thread. On a one-thread pool the split would
/// only hand the whole job to that thread and put the caller to sleep until it is done (rayon's
/// "cold" path from a thread outside the pool: a futex wake-up and a context switch each way,
/// 10–15% of GradBench's one-core `ode` gradient at `n = 10⁵`), so the kernel runs on the
/// caller instead. The result is the same either way: kernels cut their work at fixed sizes.
///
/// ```
/// use adjoint_tensor::ops::{parallel, PAR_THRESHOLD};
/// assert!(!parallel(PAR_THRESHOLD - 1));
/// assert_eq!(parallel(PAR_THRESHOLD), rayon::current_num_threads() > 1);
/// ```
#[inline]
pub fn parallel(work: usize) -> bool {
    work >= PAR_THRESHOLD && rayon::current_num_threads() > 1
}
