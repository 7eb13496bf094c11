//! Conversion to and from [`ndarray`] (feature `ndarray`).
//!
//! ## Design choices
//! - Conversions copy: an [`Array`]'s storage is an `Arc`-shared typed `Vec` that views alias,
//!   while an `ndarray` owns or borrows its buffer with its own stride conventions. One
//!   row-major copy keeps both sides' invariants simple (and it is a single `memcpy` when the
//!   source is contiguous).
//! - `to_ndarray::<T>` converts the element type like [`Array::to_vec`] does (lossy where the
//!   types differ), so a caller can ask for the type it needs without a separate cast.
//!
//! ```
//! use adjoint_tensor::Array;
//! let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).transpose(0, 1);
//! let n = a.to_ndarray::<f32>();
//! assert_eq!(n.shape(), &[3, 2]);
//! assert_eq!(n[[2, 1]], 6.0);
//! let back = Array::from_ndarray(&n);
//! assert_eq!(back.to_vec::<f32>(), a.to_vec::<f32>());
//! ```

use ndarray::{ArrayD, Dimension, IxDyn};

use crate::array::Array;
use crate::dtype::Element;

impl Array {
    /// A row-major `ndarray` copy of the elements, converted to `T` (as [`to_vec`](Self::to_vec)).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![1i64, 2, 3], &[3]);
    /// assert_eq!(a.to_ndarray::<f64>().into_raw_vec_and_offset().0, vec![1.0, 2.0, 3.0]);
    /// ```
    pub fn to_ndarray<T: Element>(&self) -> ArrayD<T> {
        let data = if self.numel() == 0 { Vec::new() } else { self.to_vec::<T>() };
        ArrayD::from_shape_vec(IxDyn(self.shape()), data)
            .expect("to_vec yields exactly one element per position of the shape")
    }

    /// A contiguous [`Array`] with the elements of any `ndarray` (any strides, any order).
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let n = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 2]), vec![1.0f64, 2.0, 3.0, 4.0]).unwrap();
    /// let a = Array::from_ndarray(&n.t().to_owned());
    /// assert_eq!(a.to_vec::<f64>(), vec![1.0, 3.0, 2.0, 4.0]);
    /// ```
    pub fn from_ndarray<T: Element>(a: &ArrayD<T>) -> Array {
        from_any(a)
    }
}

fn from_any<T: Element, D: Dimension>(a: &ndarray::Array<T, D>) -> Array {
    let data: Vec<T> = match a.as_slice() {
        Some(s) => s.to_vec(),
        None => a.iter().copied().collect(),
    };
    Array::from_vec(data, a.shape())
}

impl<T: Element, D: Dimension> From<&ndarray::Array<T, D>> for Array {
    fn from(a: &ndarray::Array<T, D>) -> Array {
        from_any(a)
    }
}

impl<T: Element, D: Dimension> From<ndarray::Array<T, D>> for Array {
    fn from(a: ndarray::Array<T, D>) -> Array {
        from_any(&a)
    }
}

impl<T: Element> From<&Array> for ArrayD<T> {
    fn from(a: &Array) -> ArrayD<T> {
        a.to_ndarray()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    #[test]
    fn round_trips_every_dtype_and_layout() {
        let base = Array::arange(0.0, 24.0, 1.0, DType::F64).reshape(&[2, 3, 4]);
        let views =
            [base.clone(), base.permute(&[2, 0, 1]), base.slice(2, 1, 4, 2).flip(0), base.narrow(1, 0, 0)];
        for v in &views {
            for dtype in [DType::F32, DType::F64, DType::I64, DType::Bool] {
                let a = v.cast(dtype);
                let back = match dtype {
                    DType::F32 => Array::from_ndarray(&a.to_ndarray::<f32>()),
                    DType::F64 => Array::from_ndarray(&a.to_ndarray::<f64>()),
                    DType::I64 => Array::from_ndarray(&a.to_ndarray::<i64>()),
                    DType::Bool => Array::from_ndarray(&a.to_ndarray::<bool>()),
                };
                assert_eq!((back.dtype(), back.shape()), (dtype, a.shape()));
                assert!(back.is_contiguous());
                assert_eq!(back.to_vec::<f64>(), if a.numel() == 0 { vec![] } else { a.to_vec::<f64>() });
            }
        }
        let s = Array::scalar(2.5f32).to_ndarray::<f32>();
        assert_eq!((s.ndim(), s[ndarray::IxDyn(&[])]), (0, 2.5));
    }

    #[test]
    fn from_impls_take_any_dimension_and_strides() {
        let m = ndarray::Array2::from_shape_vec((2, 3), vec![1i64, 2, 3, 4, 5, 6]).unwrap();
        let a: Array = m.t().to_owned().into();
        assert_eq!((a.shape(), a.to_vec::<i64>()), (&[3usize, 2][..], vec![1, 4, 2, 5, 3, 6]));
        let rev = m.slice(ndarray::s![.., ..;-2]).to_owned();
        assert_eq!(Array::from(&rev).to_vec::<i64>(), vec![3, 1, 6, 4]);
        let back: ArrayD<f32> = (&a).into();
        assert_eq!(back.shape(), &[3, 2]);
        assert_eq!(back[[0, 1]], 4.0);
    }
}
