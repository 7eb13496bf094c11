//! Elementwise comparisons of two arrays, giving `bool` arrays.
//!
//! ## Design choices
//! - Comparisons reuse the binary engine ([`map2`]): the same broadcasting, the same slice,
//!   scalar and strided fast paths, vectorized with AVX2 when the CPU has it.
//! - Operands must share a dtype (no promotion, as for arithmetic). Floats compare as IEEE
//!   does: every comparison with NaN is false except `not_equal`, which is true.
//! - `bool` arrays compare with `false < true`.

use crate::array::Array;
use crate::dtype::{DType, Element};
use crate::error::{OrFail, Result};
use crate::ops::binary::{map2, same_dtype};

/// An elementwise comparison; see [`Array::compare`].
///
/// ```
/// use adjoint_tensor::{Array, ops::compare::CompareOp};
/// let a = Array::from_vec(vec![1i64, 2, 3], &[3]);
/// let lt = a.compare(&Array::scalar(2i64), CompareOp::Lt);
/// assert_eq!(lt.to_vec::<bool>(), vec![true, false, false]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

impl CompareOp {
    /// The op's name in error messages (the method name: `"equal"`, `"less"`, …).
    pub fn name(self) -> &'static str {
        match self {
            CompareOp::Eq => "equal",
            CompareOp::Ne => "not_equal",
            CompareOp::Lt => "less",
            CompareOp::Le => "less_equal",
            CompareOp::Gt => "greater",
            CompareOp::Ge => "greater_equal",
        }
    }
}

fn compare_typed<T: Element>(a: &Array, b: &Array, op: CompareOp) -> Result<Array> {
    let name = op.name();
    match op {
        CompareOp::Eq => map2(name, a, b, |x: T, y: T| x == y),
        CompareOp::Ne => map2(name, a, b, |x: T, y: T| x != y),
        CompareOp::Lt => map2(name, a, b, |x: T, y: T| x < y),
        CompareOp::Le => map2(name, a, b, |x: T, y: T| x <= y),
        CompareOp::Gt => map2(name, a, b, |x: T, y: T| x > y),
        CompareOp::Ge => map2(name, a, b, |x: T, y: T| x >= y),
    }
}

macro_rules! compare_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        $(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self, rhs: &Array) -> Array {
                self.compare(rhs, CompareOp::$op)
            }
        )*
    };
}

impl Array {
    /// Compare `self` with `rhs` elementwise, broadcasting (NumPy rules), into a `bool` array.
    ///
    /// Both must have the same dtype. Panics, naming the op, the dtypes and shapes and the
    /// caller's line, otherwise or when the shapes do not broadcast.
    ///
    /// ```
    /// use adjoint_tensor::{Array, ops::compare::CompareOp};
    /// let a = Array::from_vec(vec![1.0f32, f32::NAN], &[2]);
    /// assert_eq!(a.compare(&a, CompareOp::Eq).to_vec::<bool>(), vec![true, false]);
    /// assert_eq!(a.compare(&a, CompareOp::Ne).to_vec::<bool>(), vec![false, true]);
    /// ```
    #[track_caller]
    pub fn compare(&self, rhs: &Array, op: CompareOp) -> Array {
        self.try_compare(rhs, op).or_fail()
    }

    /// Fallible [`compare`](Self::compare).
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType, ops::compare::CompareOp};
    /// let e = Array::zeros(&[2], DType::F32).try_compare(&Array::zeros(&[2], DType::I64), CompareOp::Lt);
    /// assert!(e.unwrap_err().message.contains("float32 [2] vs int64 [2]"));
    /// ```
    pub fn try_compare(&self, rhs: &Array, op: CompareOp) -> Result<Array> {
        same_dtype(op.name(), self, rhs)?;
        match self.dtype() {
            DType::F32 => compare_typed::<f32>(self, rhs, op),
            DType::F64 => compare_typed::<f64>(self, rhs, op),
            DType::I64 => compare_typed::<i64>(self, rhs, op),
            DType::Bool => compare_typed::<bool>(self, rhs, op),
        }
    }

    compare_methods! {
        /// `self == rhs` elementwise; see [`CompareOp::Eq`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// let a = Array::from_vec(vec![1i64, 2], &[2]);
        /// assert_eq!(a.equal(&Array::scalar(2i64)).to_vec::<bool>(), vec![false, true]);
        /// ```
        equal => Eq;
        /// `self != rhs` elementwise; see [`CompareOp::Ne`].
        not_equal => Ne;
        /// `self < rhs` elementwise; see [`CompareOp::Lt`].
        less => Lt;
        /// `self <= rhs` elementwise; see [`CompareOp::Le`].
        less_equal => Le;
        /// `self > rhs` elementwise; see [`CompareOp::Gt`].
        greater => Gt;
        /// `self >= rhs` elementwise; see [`CompareOp::Ge`].
        greater_equal => Ge;
    }
}
