//! The error type of the `try_*` functions, and the panic helper of their panicking twins.

use std::panic::Location;

/// A misuse of an array operation: wrong shapes, axes out of range, wrong dtype.
///
/// The panicking functions (`reshape`, `matmul`, …) turn this into a panic that names the op,
/// the shapes involved and the caller's source line; the `try_*` twins return it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct TensorError {
    /// The operation that refused its arguments (`"reshape"`, `"matmul"`, …).
    pub op: &'static str,
    /// What was wrong, with the shapes and values involved.
    pub message: String,
}

impl TensorError {
    /// A new error for `op`.
    pub fn new(op: &'static str, message: impl Into<String>) -> Self {
        TensorError { op, message: message.into() }
    }
}

/// Shorthand for results of `try_*` functions.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

/// Panic with the error and the caller's location (`#[track_caller]` propagates it).
#[track_caller]
#[cold]
pub fn fail(e: TensorError) -> ! {
    let loc = Location::caller();
    panic!("adjoint: {e} (at {}:{}:{})", loc.file(), loc.line(), loc.column())
}

/// Unwrap a result, panicking with the caller's location on error.
pub trait OrFail<T> {
    /// The value, or a panic naming the op, shapes and the caller's line.
    fn or_fail(self) -> T;
}

impl<T> OrFail<T> for Result<T> {
    #[track_caller]
    #[inline]
    fn or_fail(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => fail(e),
        }
    }
}

/// Return early with a `TensorError` for `op` when `cond` is false.
#[macro_export]
#[doc(hidden)]
macro_rules! ensure {
    ($cond:expr_2021, $op:expr_2021, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::TensorError::new($op, format!($($fmt)+)));
        }
    };
}
