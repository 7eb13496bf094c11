//! Conversion between dtypes.

use std::sync::Arc;

use crate::array::Array;
use crate::dtype::DType;
use crate::layout::Layout;
use crate::storage::Storage;

impl Array {
    /// The same values converted to `dtype` (a cheap clone when the dtype already matches).
    /// Float → int truncates toward zero; anything → bool is `x != 0`.
    ///
    /// ```
    /// use adjoint_tensor::{Array, DType};
    /// let a = Array::from_vec(vec![1.7f32, -0.5, 0.0], &[3]);
    /// assert_eq!(a.cast(DType::I64).to_vec::<i64>(), vec![1, 0, 0]);
    /// assert_eq!(a.cast(DType::Bool).to_vec::<bool>(), vec![true, true, false]);
    /// ```
    pub fn cast(&self, dtype: DType) -> Array {
        if dtype == self.dtype() {
            return self.clone();
        }
        let storage = match dtype {
            DType::F32 => Storage::F32(self.to_vec()),
            DType::F64 => Storage::F64(self.to_vec()),
            DType::I64 => Storage::I64(self.to_vec()),
            DType::Bool => Storage::Bool(self.to_vec()),
        };
        Array::from_parts(Arc::new(storage.counted()), Layout::contiguous(self.shape()))
    }
}
