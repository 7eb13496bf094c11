//! # adjoint-scalar
//!
//! Differentiate ordinary scalar Rust — physics steps, objectives over a few `f64`s, library
//! code written over `num_traits::Float` — at close to the speed of hand-written derivatives.
//! Tensor-level AD pays a fixed cost per op that dwarfs such work; here an operation costs a
//! few nanoseconds.
//!
//! Write the code once, generic over [`Real`] (or just `num_traits::Float`):
//!
//! ```
//! use adjoint_scalar::{derivative, gradient, Real, Var};
//! fn energy<T: Real>(x: &[T]) -> T {
//!     x.iter().map(|&v| v * v).sum::<T>().sqrt()
//! }
//! let g = gradient(|x: &[Var]| energy(x), &[3.0, 4.0]);
//! assert!((g[0] - 0.6).abs() < 1e-15 && (g[1] - 0.8).abs() < 1e-15);
//! assert_eq!(derivative(|t| energy(&[t, t + 1.0]), 0.0), 1.0);
//! ```
//!
//! ## The types
//!
//! - [`Dual<T>`]: forward mode, one tangent. Nests (`Dual<Dual<f64>>`) for higher
//!   derivatives; the nesting level is the perturbation's tag, so perturbations of nested
//!   derivatives cannot be confused (see [`dual`](crate::dual)).
//! - [`DualVec<T, N>`]: `N` tangents per pass — Jacobian columns in chunks.
//! - [`Var`]: reverse mode on a thread-local arena tape (Stan Math's design): nodes are 24-byte
//!   plain structs bump-allocated into a reused `Vec`, one backward sweep gives the gradient,
//!   and [`Tape`] scopes reclaim memory and nest (see [`tape`](crate::tape)). Fused operations
//!   of [`Real`] (`dot`, `sum_sq`, `log_sum_exp`, …) record one n-ary node per call, and
//!   [`Real::sum_sq_matvec_lit`] on a matrix made consecutive by [`Real::pack`] one dense block
//!   node whose outer-product partials are never written out term by term.
//! - Second order: `Dual<Var>` — a forward tangent whose arithmetic is recorded — so one sweep
//!   from the tangent output gives a Hessian-vector product.
//!
//! Every derivative rule is written once ([`chain`](crate::chain)): each type only says how it
//! applies the chain rule, and partials are computed in the type's own scalar, which is why
//! nesting any of these types inside another gives correct higher derivatives for free.
//!
//! ## Drivers
//!
//! [`derivative`], [`gradient`], [`value_and_gradient`], [`jacobian`] (forward or reverse by
//! shape), [`jacobian_coloured`] (known sparsity), [`hessian`], [`hessian_vector_product`].
//! Closures over one AD type where one type suffices; the [`ScalarFn`]/[`VectorFn`] traits
//! (generic `eval`) where the driver chooses the type.
//!
//! ## Tensors
//!
//! [`TensorMapReal::map_real`] turns a generic scalar function into a differentiable
//! elementwise tensor op with derivatives from [`Dual`], correct to any order used by
//! `adjoint_core`'s transforms (see [`bridge`](crate::bridge)).

pub mod bridge;
pub mod chain;
pub mod drivers;
pub mod dual;
pub mod real;
pub mod tape;

pub use bridge::{Deriv, RealFn, TensorMapReal, MAX_MAP_ORDER};
pub use drivers::{
    derivative, gradient, hessian, hessian_vector_product, jacobian, jacobian_coloured, jacobian_forward,
    jacobian_reverse, value_and_derivative, value_and_gradient, value_and_gradient_into, Matrix, ScalarFn,
    VectorFn, CHUNK,
};
pub use dual::{Dual, DualVec};
pub use real::Real;
pub use tape::{preaccumulate, Adjoints, Tape, Var};

pub use num_traits;

/// Everything for differentiating scalar code, plus the `num_traits` traits whose methods
/// (`sin`, `max`, …) concrete types such as `Var` need in scope.
///
/// ```
/// use adjoint_scalar::prelude::*;
/// assert_eq!(gradient(|x: &[Var]| x[0].max(x[1]), &[1.0, 2.0]), vec![0.0, 1.0]);
/// ```
pub mod prelude {
    pub use crate::{
        derivative, gradient, hessian, hessian_vector_product, jacobian, value_and_derivative,
        value_and_gradient, Dual, DualVec, Matrix, Real, RealFn, ScalarFn, Tape, TensorMapReal, Var,
        VectorFn,
    };
    pub use num_traits::{Float, FloatConst, FromPrimitive, One, Zero};
}
