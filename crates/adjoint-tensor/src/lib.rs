//! # adjoint-tensor
//!
//! n-dimensional arrays with strided views, fast CPU kernels and a counter-based PRNG. This crate
//! knows nothing of differentiation: `adjoint-core` wraps [`Array`] in its `Tensor` and calls
//! these kernels from its primitives' evaluation rules, with no copying in between.
//!
//! ## Design choices
//! - **Layout is plain data** ([`Layout`]: shape, signed strides in elements, offset). Views are
//!   pure functions on layouts, so reshape (when possible), permute, broadcast, slice with step
//!   and flip never touch elements.
//! - **Storage is a typed flat `Vec` behind an `Arc`** ([`Storage`]); dtype dispatch happens
//!   once per kernel call, then the inner loops are monomorphic over `f32`/`f64`/`i64`/`bool`.
//! - **Kernels write contiguous output** and take a slice fast path for contiguous input; the
//!   strided path walks the innermost dimension as a plain loop. Above [`ops::PAR_THRESHOLD`]
//!   elements they split work with `rayon`, on the global pool that [`threads::init`] sets up with
//!   the calling thread as one of its threads.
//! - **Matrix products go through `gemm`**, which takes arbitrary row/column strides, so
//!   transposed views are multiplied without copying.
//! - **Randomness is counter-based** ([`random::Key`], Threefry-2x32 as in JAX): a key is split
//!   into independent keys, and every element's bits depend only on the key and the element's
//!   index, so results are identical whatever the thread count.
//! - **Errors**: misuse panics with the op, the shapes and the caller's line
//!   (`#[track_caller]`); each panicking function has a `try_*` twin returning [`TensorError`].

pub mod array;
pub mod cache;
pub mod display;
pub mod dtype;
pub mod env;
pub mod error;
pub mod layout;
#[cfg(feature = "ndarray")]
pub mod ndarray_interop;
pub mod ops;
pub mod random;
pub mod special;
pub mod storage;
pub mod threads;

pub use array::Array;
pub use dtype::{DType, Element, FloatElement};
pub use error::{OrFail, Result, TensorError};
pub use layout::{broadcast_shapes, Layout, Shape, Strides};
pub use storage::Storage;
