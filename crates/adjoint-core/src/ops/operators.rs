//! `+ - * /` and unary `-` between tensors (owned or borrowed) and with `f64` scalars (one scalar type only,
//! so that float literals infer without annotations).
//! A scalar takes the tensor's float type, so `x * 2.0` keeps `x` in `f32`.

use std::ops::{Add, Div, Mul, Neg, Sub};

use adjoint_tensor::DType;

use crate::tensor::Tensor;

fn scalar_for(t: &Tensor, x: f64) -> Tensor {
    let dtype = if t.dtype().is_float() || x.fract() == 0.0 { t.dtype() } else { DType::F32 };
    let dtype = if dtype == DType::Bool { DType::F32 } else { dtype };
    Tensor::scalar_of(x, dtype)
}

macro_rules! binop {
    ($tr:ident, $m:ident, $method:ident) => {
        impl $tr<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(self, rhs)
            }
        }
        impl $tr<Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: Tensor) -> Tensor {
                Tensor::$method(&self, &rhs)
            }
        }
        impl $tr<&Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(&self, rhs)
            }
        }
        impl $tr<Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: Tensor) -> Tensor {
                Tensor::$method(self, &rhs)
            }
        }
        binop!(@scalar $tr, $m, $method, f64);
    };
    (@scalar $tr:ident, $m:ident, $method:ident, $s:ty) => {
        impl $tr<$s> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: $s) -> Tensor {
                Tensor::$method(self, &scalar_for(self, rhs as f64))
            }
        }
        impl $tr<$s> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: $s) -> Tensor {
                Tensor::$method(&self, &scalar_for(&self, rhs as f64))
            }
        }
        impl $tr<&Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(&scalar_for(rhs, self as f64), rhs)
            }
        }
        impl $tr<Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: Tensor) -> Tensor {
                Tensor::$method(&scalar_for(&rhs, self as f64), &rhs)
            }
        }
    };
}

binop!(Add, add, add);
binop!(Sub, sub, sub);
binop!(Mul, mul, mul);
binop!(Div, div, div);

impl Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
