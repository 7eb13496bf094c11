//! # adjoint
//!
//! The facade crate: `use adjoint::prelude::*` brings in the public API.

pub use adjoint_tensor as tensor;
pub use adjoint_tensor::{Array, DType};

/// Everything a typical program needs.
pub mod prelude {
    pub use adjoint_tensor::{Array, DType};
}
