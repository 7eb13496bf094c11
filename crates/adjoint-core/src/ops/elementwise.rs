//! Elementwise methods: unary math, binary arithmetic with broadcasting and type promotion,
//! comparisons, `select` and `cast`.

use adjoint_tensor::ops::compare::CompareOp;
use adjoint_tensor::ops::unary::UnaryOp;
use adjoint_tensor::DType;

use crate::prims::logical::{Logical, LogicalOp};
use crate::prims::*;
use crate::tensor::Tensor;
use crate::trace::bind;

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $prim:expr_2021;)*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                #[track_caller]
                pub fn $name(&self) -> Tensor {
                    bind(&$prim, &[self])
                }
            )*
        }
    };
}

unary_methods! {
    /// `eˣ`.
    exp => exp::Exp;
    /// Natural logarithm.
    log => log::Log;
    /// Sine.
    sin => sin::Sin;
    /// Cosine.
    cos => cos::Cos;
    /// Tangent.
    tan => tan::Tan;
    /// Hyperbolic tangent.
    tanh => tanh::Tanh;
    /// Square root (derivative +∞ at 0; see [`Tensor::norm`] for a safe norm).
    sqrt => sqrt::Sqrt;
    /// Logistic sigmoid `1/(1+e^{-x})`, stable for large |x|.
    sigmoid => sigmoid::Sigmoid;
    /// Error function.
    erf => erf::Erf;
    /// `log(1+x)`, accurate near 0.
    log1p => log1p::Log1p;
    /// `eˣ-1`, accurate near 0.
    expm1 => expm1::Expm1;
    /// Absolute value (subgradient 0 at 0).
    abs => abs::Abs;
    /// −1, 0 or 1 (derivative 0).
    sign => sign::Sign;
    /// Round down (derivative 0).
    floor => rounding::Rounding(UnaryOp::Floor);
    /// Round up (derivative 0).
    ceil => rounding::Rounding(UnaryOp::Ceil);
    /// Round half to even (derivative 0).
    round => rounding::Rounding(UnaryOp::Round);
}

impl Tensor {
    /// Negation.
    #[track_caller]
    pub fn neg(&self) -> Tensor {
        bind(&neg::Neg, &[self])
    }

    /// Round toward zero (derivative 0).
    #[track_caller]
    pub fn trunc(&self) -> Tensor {
        self.sign() * self.abs().floor()
    }

    /// `1/x`.
    #[track_caller]
    pub fn recip(&self) -> Tensor {
        1.0 / self
    }

    /// `1/√x`.
    #[track_caller]
    pub fn rsqrt(&self) -> Tensor {
        self.sqrt().recip()
    }

    /// `x²`.
    #[track_caller]
    pub fn square(&self) -> Tensor {
        self * self
    }

    /// `2ˣ`.
    #[track_caller]
    pub fn exp2(&self) -> Tensor {
        (self * std::f64::consts::LN_2).exp()
    }

    /// `x^p` for a constant exponent.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// assert_eq!(Tensor::scalar(3.0f64).powf(2.0).item(), 9.0);
    /// ```
    #[track_caller]
    pub fn powf(&self, p: f64) -> Tensor {
        self.pow(&Tensor::scalar_of(p, self.dtype()))
    }

    /// `x^y` elementwise (broadcasting).
    #[track_caller]
    pub fn pow(&self, y: &Tensor) -> Tensor {
        binary_op(&pow::Pow, self, y)
    }

    /// Elementwise maximum (ties split the derivative equally).
    #[track_caller]
    pub fn maximum(&self, y: &Tensor) -> Tensor {
        binary_op(&max_min::MaxMin { min: false }, self, y)
    }

    /// Elementwise minimum (ties split the derivative equally).
    #[track_caller]
    pub fn minimum(&self, y: &Tensor) -> Tensor {
        binary_op(&max_min::MaxMin { min: true }, self, y)
    }

    /// `atan2(self, x)`: the angle of the point `(x, self)`.
    #[track_caller]
    pub fn atan2(&self, x: &Tensor) -> Tensor {
        binary_op(&atan2::Atan2, self, x)
    }

    /// Remainder with the sign of the dividend (`fmod`).
    #[track_caller]
    pub fn rem(&self, y: &Tensor) -> Tensor {
        binary_op(&rem::Rem, self, y)
    }

    /// Elementwise sum (broadcasting); also the `+` operator.
    #[track_caller]
    pub fn add(&self, y: &Tensor) -> Tensor {
        binary_op(&add::Add, self, y)
    }

    /// Elementwise difference; also `-`.
    #[track_caller]
    pub fn sub(&self, y: &Tensor) -> Tensor {
        binary_op(&sub::Sub, self, y)
    }

    /// Elementwise product; also `*`.
    #[track_caller]
    pub fn mul(&self, y: &Tensor) -> Tensor {
        binary_op(&mul::Mul, self, y)
    }

    /// Elementwise quotient; also `/`.
    #[track_caller]
    pub fn div(&self, y: &Tensor) -> Tensor {
        binary_op(&div::Div, self, y)
    }

    /// The same values as `dtype`.
    #[track_caller]
    pub fn cast(&self, dtype: DType) -> Tensor {
        if self.dtype() == dtype {
            return self.clone();
        }
        bind(&cast::Cast(dtype), &[self])
    }

    /// Elementwise `==` (bool result).
    #[track_caller]
    pub fn equal(&self, y: &Tensor) -> Tensor {
        compare_op(CompareOp::Eq, self, y)
    }
    /// Elementwise `!=`.
    #[track_caller]
    pub fn not_equal(&self, y: &Tensor) -> Tensor {
        compare_op(CompareOp::Ne, self, y)
    }
    /// Elementwise `<`.
    #[track_caller]
    pub fn less(&self, y: &Tensor) -> Tensor {
        compare_op(CompareOp::Lt, self, y)
    }
    /// Elementwise `<=`.
    #[track_caller]
    pub fn less_equal(&self, y: &Tensor) -> Tensor {
        compare_op(CompareOp::Le, self, y)
    }
    /// Elementwise `>`.
    #[track_caller]
    pub fn greater(&self, y: &Tensor) -> Tensor {
        compare_op(CompareOp::Gt, self, y)
    }
    /// Elementwise `>=`.
    #[track_caller]
    pub fn greater_equal(&self, y: &Tensor) -> Tensor {
        compare_op(CompareOp::Ge, self, y)
    }
    /// Elementwise `== value`.
    #[track_caller]
    pub fn eq_scalar(&self, value: f64) -> Tensor {
        self.equal(&Tensor::scalar_of(value, self.dtype()))
    }
    /// Elementwise `> value`.
    #[track_caller]
    pub fn gt_scalar(&self, value: f64) -> Tensor {
        self.greater(&Tensor::scalar_of(value, self.dtype()))
    }
    /// Elementwise `< value`.
    #[track_caller]
    pub fn lt_scalar(&self, value: f64) -> Tensor {
        self.less(&Tensor::scalar_of(value, self.dtype()))
    }

    /// Elementwise logical and of bool tensors.
    #[track_caller]
    pub fn logical_and(&self, y: &Tensor) -> Tensor {
        bind(&Logical(LogicalOp::And), &[self, y])
    }
    /// Elementwise logical or of bool tensors.
    #[track_caller]
    pub fn logical_or(&self, y: &Tensor) -> Tensor {
        bind(&Logical(LogicalOp::Or), &[self, y])
    }
    /// Elementwise logical not of a bool tensor.
    #[track_caller]
    pub fn logical_not(&self) -> Tensor {
        bind(&Logical(LogicalOp::Not), &[self])
    }

    /// `on_true` where `cond` holds, else `on_false` (NumPy's `where`; all three broadcast).
    /// The unselected branch receives exactly zero derivative.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let x = Tensor::from_vec(vec![-1.0f32, 2.0], &[2]);
    /// let r = Tensor::select(&x.gt_scalar(0.0), &x, &Tensor::scalar(0.0f32));
    /// assert_eq!(r.to_vec::<f32>(), vec![0.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn select(cond: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Tensor {
        let (a, b) = promote(on_true, on_false);
        bind(&select::Select, &[cond, &a, &b])
    }
}

/// Promote two tensors to a common dtype (float beats int beats bool; f64 beats f32). A
/// rank-0 constant adopts the other operand's float type, so `x * 2.0` stays `f32`.
pub(crate) fn promote(a: &Tensor, b: &Tensor) -> (Tensor, Tensor) {
    if a.dtype() == b.dtype() {
        return (a.clone(), b.clone());
    }
    let target = if a.rank() == 0 && !a.is_tracer() && b.dtype().is_float() {
        b.dtype()
    } else if b.rank() == 0 && !b.is_tracer() && a.dtype().is_float() {
        a.dtype()
    } else {
        DType::promote(a.dtype(), b.dtype())
    };
    (a.cast(target), b.cast(target))
}

/// Promote, then bind: the primitive's shape rule checks broadcasting and dtypes.
#[track_caller]
fn binary_op<P: crate::primitive::Primitive>(p: &P, a: &Tensor, b: &Tensor) -> Tensor {
    if a.dtype() == b.dtype() {
        return bind(p, &[a, b]);
    }
    let (a, b) = promote(a, b);
    bind(p, &[&a, &b])
}

#[track_caller]
fn compare_op(c: CompareOp, a: &Tensor, b: &Tensor) -> Tensor {
    let (a, b) = promote(a, b);
    bind(&compare::Compare(c), &[&a, &b])
}
