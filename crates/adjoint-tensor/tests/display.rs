//! `Display for Array`: NumPy's `repr` layout (NumPy 2.2 defaults), with the dtype always shown.

use adjoint_tensor::{Array, DType};

fn f64s(v: &[f64], shape: &[usize]) -> Array {
    Array::from_vec(v.to_vec(), shape)
}

#[test]
fn small_float_arrays() {
    let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
    assert_eq!(a.to_string(), "array([[1., 2.],\n       [3., 4.]], dtype=float32)");
    assert_eq!(f64s(&[1.5, 2.25, -3.0], &[3]).to_string(), "array([ 1.5 ,  2.25, -3.  ], dtype=float64)");
    assert_eq!(Array::from_vec(vec![0.1f32, 0.2], &[2]).to_string(), "array([0.1, 0.2], dtype=float32)");
    assert_eq!(f64s(&[-0.0, 100.25], &[2]).to_string(), "array([ -0.  , 100.25], dtype=float64)");
}

#[test]
fn rank_zero() {
    assert_eq!(Array::scalar(3.5f32).to_string(), "array(3.5, dtype=float32)");
    assert_eq!(Array::scalar(1.0f64 / 3.0).to_string(), "array(0.33333333, dtype=float64)");
    assert_eq!(Array::scalar(-7i64).to_string(), "array(-7, dtype=int64)");
    assert_eq!(Array::scalar(true).to_string(), "array(True, dtype=bool)");
}

#[test]
fn bool_and_int_arrays() {
    assert_eq!(Array::from_vec(vec![true, false], &[2]).to_string(), "array([ True, False], dtype=bool)");
    assert_eq!(Array::arange(0.0, 5.0, 1.0, DType::I64).to_string(), "array([0, 1, 2, 3, 4], dtype=int64)");
    assert_eq!(Array::from_vec(vec![-10i64, 5], &[2]).to_string(), "array([-10,   5], dtype=int64)");
    let cube = Array::arange(0.0, 8.0, 1.0, DType::I64).reshape(&[2, 2, 2]);
    assert_eq!(
        cube.to_string(),
        "array([[[0, 1],\n        [2, 3]],\n\n       [[4, 5],\n        [6, 7]]], dtype=int64)"
    );
}

#[test]
fn scientific_and_non_finite() {
    assert_eq!(f64s(&[1e-5, 1.0], &[2]).to_string(), "array([1.e-05, 1.e+00], dtype=float64)");
    assert_eq!(f64s(&[1.5e-5, 1.0], &[2]).to_string(), "array([1.5e-05, 1.0e+00], dtype=float64)");
    assert_eq!(f64s(&[-1e10, 1.0], &[2]).to_string(), "array([-1.e+10,  1.e+00], dtype=float64)");
    assert_eq!(
        f64s(&[f64::NAN, 1.0, f64::NEG_INFINITY], &[3]).to_string(),
        "array([ nan,   1., -inf], dtype=float64)"
    );
    assert_eq!(f64s(&[f64::NAN, f64::INFINITY], &[2]).to_string(), "array([nan, inf], dtype=float64)");
}

#[test]
fn views_print_their_logical_order() {
    let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).transpose(0, 1).flip(0);
    assert_eq!(a.to_string(), "array([[3., 6.],\n       [2., 5.],\n       [1., 4.]], dtype=float32)");
}

#[test]
fn long_rows_wrap_at_75_columns() {
    let a = Array::arange(0.0, 30.0, 1.0, DType::F64);
    assert_eq!(
        a.to_string(),
        "array([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12.,\n       \
         13., 14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25.,\n       \
         26., 27., 28., 29.], dtype=float64)"
    );
    // The dtype moves to its own line when it would pass the width.
    assert_eq!(
        Array::arange(0.0, 13.0, 1.0, DType::F32).to_string(),
        "array([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12.],\n      dtype=float32)"
    );
}

#[test]
fn big_arrays_are_summarised() {
    assert_eq!(
        Array::arange(0.0, 2000.0, 1.0, DType::F64).to_string(),
        "array([0.000e+00, 1.000e+00, 2.000e+00, ..., 1.997e+03, 1.998e+03,\n       \
         1.999e+03], shape=(2000,), dtype=float64)"
    );
    assert_eq!(
        Array::arange(0.0, 10000.0, 1.0, DType::I64).to_string(),
        "array([   0,    1,    2, ..., 9997, 9998, 9999],\n      shape=(10000,), dtype=int64)"
    );
    let row = "[0., 0., 0., ..., 0., 0., 0.]";
    let expect = format!(
        "array([{row},\n       {row},\n       {row},\n       ...,\n       {row},\n       {row},\n       {row}], \
         shape=(40, 40), dtype=float32)"
    );
    assert_eq!(Array::zeros(&[40, 40], DType::F32).to_string(), expect);
    // Exactly 1000 elements are printed in full.
    assert!(!Array::zeros(&[1000], DType::F32).to_string().contains("..."));
    // Short dims of a big array are not summarised.
    let s = Array::zeros(&[2, 600], DType::Bool).to_string();
    assert!(s.starts_with("array([[False, False, False, ..., False, False, False],\n       [False,"), "{s}");
    assert!(s.ends_with("shape=(2, 600), dtype=bool)"), "{s}");
}

#[test]
fn empty_arrays() {
    assert_eq!(Array::zeros(&[0], DType::F32).to_string(), "array([], dtype=float32)");
    assert_eq!(Array::zeros(&[0, 3], DType::I64).to_string(), "array([], shape=(0, 3), dtype=int64)");
}

#[test]
fn precision_can_be_lowered() {
    assert_eq!(format!("{:.2}", f64s(&[1.0 / 3.0, 2.0], &[2])), "array([0.33, 2.  ], dtype=float64)");
}
