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
pub mod transpose;
pub mod unary;

/// Element count above which elementwise kernels and reductions go parallel.
pub const PAR_THRESHOLD: usize = 1 << 16;
