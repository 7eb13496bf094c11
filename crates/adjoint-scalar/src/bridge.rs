//! Bridge to tensors: a generic scalar function applied elementwise becomes a differentiable
//! tensor op.
//!
//! `t.map_real(f)` is built with `adjoint_core::custom_jvp`: its value is `f` applied to each
//! element (in plain `f64`/`f32`), and its JVP rule is `t ↦ map_real(f′)(x) ⊙ t`, where `f′` is
//! computed elementwise with [`Dual`]. The rule is itself a `map_real` — of the derivative
//! function — so it is differentiable in turn, and higher orders use nested duals (`f″` with
//! `Dual<Dual<_>>`, …). Reverse mode comes from `custom_jvp` (it transposes the linear rule), so
//! `grad`, `hessian`, `jvp` of `grad` and so on all work.
//!
//! Each derivative order is its own type (`Nth<F, K>` below), so the nesting has to stop
//! somewhere for the compiler: derivatives up to order [`MAX_MAP_ORDER`] are supported, beyond
//! that the rule panics with a message. Rust closures cannot be generic, so the function is a
//! value implementing [`RealFn`].

use adjoint_core::{custom_jvp, DType, Tensor};

use crate::dual::Dual;
use crate::real::Real;

/// Highest derivative order `map_real` supports (nested duals are stacked this deep).
pub const MAX_MAP_ORDER: usize = 4;

/// A scalar function generic over the number type, for [`TensorMapReal::map_real`].
///
/// ```
/// use adjoint_scalar::{Real, RealFn};
/// #[derive(Clone)]
/// struct SoftSign;
/// impl RealFn for SoftSign {
///     fn call<T: Real>(&self, x: T) -> T { x / (T::one() + x.abs()) }
/// }
/// assert_eq!(SoftSign.call(1.0f64), 0.5);
/// ```
pub trait RealFn: Clone + 'static {
    /// Evaluate at `x`.
    fn call<T: Real>(&self, x: T) -> T;
}

/// The derivative of a [`RealFn`], itself a `RealFn` (forward mode with a fresh `Dual` level).
///
/// ```
/// use adjoint_scalar::{Deriv, Real, RealFn};
/// #[derive(Clone)]
/// struct Cube;
/// impl RealFn for Cube {
///     fn call<T: Real>(&self, x: T) -> T { x * x * x }
/// }
/// assert_eq!(Deriv(Cube).call(2.0), 12.0);
/// assert_eq!(Deriv(Deriv(Cube)).call(2.0), 12.0);
/// ```
#[derive(Clone, Debug)]
pub struct Deriv<F>(pub F);

impl<F: RealFn> RealFn for Deriv<F> {
    #[inline]
    fn call<T: Real>(&self, x: T) -> T {
        self.0.call(Dual::variable(x)).eps
    }
}

/// Type-level derivative order: `eval` is the `K`-th derivative.
trait Order: 'static {
    const K: usize;
    type Next: Order;
    fn eval<F: RealFn, T: Real>(f: &F, x: T) -> T;
}

struct O0;
struct O1;
struct O2;
struct O3;
struct O4;
/// Past the supported order: panics when evaluated.
struct OMax;

impl Order for O0 {
    const K: usize = 0;
    type Next = O1;
    fn eval<F: RealFn, T: Real>(f: &F, x: T) -> T {
        f.call(x)
    }
}
impl Order for O1 {
    const K: usize = 1;
    type Next = O2;
    fn eval<F: RealFn, T: Real>(f: &F, x: T) -> T {
        Deriv(f.clone()).call(x)
    }
}
impl Order for O2 {
    const K: usize = 2;
    type Next = O3;
    fn eval<F: RealFn, T: Real>(f: &F, x: T) -> T {
        Deriv(Deriv(f.clone())).call(x)
    }
}
impl Order for O3 {
    const K: usize = 3;
    type Next = O4;
    fn eval<F: RealFn, T: Real>(f: &F, x: T) -> T {
        Deriv(Deriv(Deriv(f.clone()))).call(x)
    }
}
impl Order for O4 {
    const K: usize = 4;
    type Next = OMax;
    fn eval<F: RealFn, T: Real>(f: &F, x: T) -> T {
        Deriv(Deriv(Deriv(Deriv(f.clone())))).call(x)
    }
}
impl Order for OMax {
    const K: usize = MAX_MAP_ORDER + 1;
    type Next = OMax;
    fn eval<F: RealFn, T: Real>(_: &F, _: T) -> T {
        panic!("map_real: derivatives of order above {MAX_MAP_ORDER} are not supported")
    }
}

/// Elementwise evaluation of the `O::K`-th derivative on a concrete tensor.
#[track_caller]
fn eval_concrete<F: RealFn, O: Order>(f: &F, x: &Tensor) -> Tensor {
    match x.dtype() {
        DType::F64 => {
            let v: Vec<f64> = x.to_vec::<f64>().into_iter().map(|e| O::eval(f, e)).collect();
            Tensor::from_vec(v, x.shape())
        }
        DType::F32 => {
            let v: Vec<f32> = x.to_vec::<f32>().into_iter().map(|e| O::eval(f, e)).collect();
            Tensor::from_vec(v, x.shape())
        }
        d => panic!("map_real: needs a float tensor (f32 or f64), got {d:?} of shape {:?}", x.shape()),
    }
}

fn map_order<F: RealFn, O: Order>(x: &Tensor, f: F) -> Tensor {
    if O::K > MAX_MAP_ORDER {
        panic!("map_real: derivatives of order above {MAX_MAP_ORDER} are not supported");
    }
    let fv = f.clone();
    let op = custom_jvp(
        move |x: &Tensor| eval_concrete::<F, O>(&fv, x),
        move |x: &Tensor, t: &Tensor| {
            (map_order::<F, O>(x, f.clone()), map_order::<F, O::Next>(x, f.clone()) * t)
        },
    );
    op(x)
}

/// `map_real` on tensors; see the module docs.
pub trait TensorMapReal {
    /// Apply `f` to every element; differentiable to order [`MAX_MAP_ORDER`] in every mode,
    /// with derivatives from [`Dual`].
    ///
    /// ```
    /// use adjoint_core::{grad, Tensor};
    /// use adjoint_scalar::{Real, RealFn, TensorMapReal};
    /// #[derive(Clone)]
    /// struct Swish;
    /// impl RealFn for Swish {
    ///     fn call<T: Real>(&self, x: T) -> T { x / (T::one() + (-x).exp()) }
    /// }
    /// let x = Tensor::from_vec(vec![0.0f64, 1.0], &[2]);
    /// let g = grad(|x: &Tensor| x.map_real(Swish).sum())(&x);
    /// assert_eq!(g.to_vec::<f64>()[0], 0.5);
    /// ```
    fn map_real<F: RealFn>(&self, f: F) -> Tensor;
}

impl TensorMapReal for Tensor {
    fn map_real<F: RealFn>(&self, f: F) -> Tensor {
        map_order::<F, O0>(self, f)
    }
}
