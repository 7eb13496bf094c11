//! Element types and the traits that connect Rust scalars to [`DType`].

use std::fmt;

use crate::storage::Storage;

/// The element type of an [`Array`](crate::Array).
///
/// ```
/// use adjoint_tensor::DType;
/// assert!(DType::F32.is_float());
/// assert_eq!(DType::I64.size_in_bytes(), 8);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit IEEE float, the default.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 64-bit signed integer (indices, labels).
    I64,
    /// Boolean (masks, comparison results).
    Bool,
}

impl DType {
    /// True for `F32` and `F64`, the types that can be differentiated.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }

    /// Lower-case name as NumPy spells it (`float32`, `int64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I64 => "int64",
            DType::Bool => "bool",
        }
    }

    /// The type two operands are promoted to: floats win over ints and bools, wider floats win.
    pub fn promote(a: DType, b: DType) -> DType {
        use DType::*;
        match (a, b) {
            (F64, _) | (_, F64) => F64,
            (F32, _) | (_, F32) => F32,
            (I64, _) | (_, I64) => I64,
            (Bool, Bool) => Bool,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that can be stored in an [`Array`](crate::Array).
pub trait Element:
    Copy + Send + Sync + 'static + fmt::Debug + fmt::Display + PartialOrd + PartialEq + Default
{
    /// The matching runtime dtype.
    const DTYPE: DType;
    /// Borrow the storage as a slice of this type, or `None` if the dtype differs.
    fn slice(s: &Storage) -> Option<&[Self]>;
    /// Borrow the storage mutably.
    fn slice_mut(s: &mut Storage) -> Option<&mut [Self]>;
    /// Wrap a vector as storage.
    fn into_storage(v: Vec<Self>) -> Storage;
    /// Lossy conversion to `f64` (bool → 0/1).
    fn to_f64(self) -> f64;
    /// Lossy conversion from `f64` (bool: non-zero → true; ints truncate toward zero).
    fn from_f64(x: f64) -> Self;
}

/// A floating element type: `f32` or `f64`.
pub trait FloatElement: Element + num_traits::Float + num_traits::FloatConst + std::iter::Sum {
    /// Error function.
    fn erf(self) -> Self;
}

macro_rules! impl_element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            #[inline]
            fn slice(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            #[inline]
            fn slice_mut(s: &mut Storage) -> Option<&mut [Self]> {
                match s {
                    Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            #[inline]
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$variant(v).counted()
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
        }
    };
}
impl_element!(f32, F32);
impl_element!(f64, F64);
impl_element!(i64, I64);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    #[inline]
    fn slice(s: &Storage) -> Option<&[Self]> {
        match s {
            Storage::Bool(v) => Some(v),
            _ => None,
        }
    }
    #[inline]
    fn slice_mut(s: &mut Storage) -> Option<&mut [Self]> {
        match s {
            Storage::Bool(v) => Some(v),
            _ => None,
        }
    }
    #[inline]
    fn into_storage(v: Vec<Self>) -> Storage {
        Storage::Bool(v).counted()
    }
    #[inline]
    fn to_f64(self) -> f64 {
        if self {
            1.0
        } else {
            0.0
        }
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        x != 0.0
    }
}

impl FloatElement for f32 {
    #[inline]
    fn erf(self) -> Self {
        crate::special::erf_f64(self as f64) as f32
    }
}
impl FloatElement for f64 {
    #[inline]
    fn erf(self) -> Self {
        crate::special::erf_f64(self)
    }
}
