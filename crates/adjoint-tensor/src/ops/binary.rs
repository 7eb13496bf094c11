//! Elementwise functions of two arrays, with NumPy broadcasting.
//!
//! ## Design choices
//! - **No type promotion.** Both operands must have the same dtype; a mismatch is a bug in the
//!   caller (as in JAX's `lax`), and promoting silently would hide costly copies. Cast first.
//! - **Three fast paths before the general one**: equal-shape contiguous operands zip two
//!   slices; an operand with one element is captured as a scalar; otherwise both are broadcast
//!   (stride-0 views, no copy) and walked together by [`Walk`], whose innermost runs again take
//!   the slice or scalar kernels when their strides are 1 or 0 (`[n, m] + [m]` is `n` slice
//!   kernels). All kernels are vectorized and dispatched to AVX2 at run time.
//! - **Integer semantics are Rust's**: `+ - *` wrap, `/` truncates toward zero, `%` takes the
//!   sign of the dividend; a zero divisor is an error found before any work is done.
//! - **`maximum`/`minimum` propagate NaN**, like NumPy's `maximum`/`minimum` (not `fmax`).
//! - **`rem` is `fmod`** (sign of the dividend, like C's `fmod` and `torch.fmod`), not NumPy's
//!   `mod`/`%` (sign of the divisor).

use std::mem::MaybeUninit;

use crate::array::Array;
use crate::dtype::{DType, Element};
use crate::error::{OrFail, Result, TensorError};
use crate::layout::broadcast_shapes;
use crate::ops::simd::{dispatch_simd, simd_builds};
use crate::ops::stream;
use crate::ops::unary::{build, FastFloat, Walk};

#[inline(always)]
fn zip_generic<A: Copy, B: Copy, U: Copy, F: Fn(A, B) -> U>(
    out: &mut [MaybeUninit<U>],
    a: &[A],
    b: &[B],
    f: &F,
    stream: bool,
) {
    stream::fill::<U, { stream::GROUP }>(
        out,
        stream,
        #[inline(always)]
        |part, s| {
            let (a, b) = (&a[s..s + part.len()], &b[s..s + part.len()]);
            for ((o, &x), &y) in part.iter_mut().zip(a).zip(b) {
                o.write(f(x, y));
            }
        },
    )
}

simd_builds!(zip_generic => zip_avx2, zip_avx512, [A: Copy, B: Copy, U: Copy, F: Fn(A, B) -> U], (out: &mut [MaybeUninit<U>], a: &[A], b: &[B], f: &F, stream: bool));

/// `out[i] = f(a[i], b[i])`, vectorized. All three have equal lengths. `stream`: write `out`
/// around the cache ([`stream::enabled`]).
#[inline]
pub(crate) fn zip<A: Copy, B: Copy, U: Copy, F: Fn(A, B) -> U>(
    out: &mut [MaybeUninit<U>],
    a: &[A],
    b: &[B],
    f: &F,
    stream: bool,
) {
    debug_assert!(out.len() == a.len() && out.len() == b.len());
    dispatch_simd!(zip_generic, zip_avx2, zip_avx512, (out, a, b, f, stream))
}

#[inline(always)]
fn scalar_rhs_generic<A: Copy, B: Copy, U: Copy, F: Fn(A, B) -> U>(
    out: &mut [MaybeUninit<U>],
    a: &[A],
    y: B,
    f: &F,
    stream: bool,
) {
    stream::fill::<U, { stream::GROUP }>(
        out,
        stream,
        #[inline(always)]
        |part, s| {
            let a = &a[s..s + part.len()];
            for (o, &x) in part.iter_mut().zip(a) {
                o.write(f(x, y));
            }
        },
    )
}

simd_builds!(scalar_rhs_generic => scalar_rhs_avx2, scalar_rhs_avx512, [A: Copy, B: Copy, U: Copy, F: Fn(A, B) -> U], (out: &mut [MaybeUninit<U>], a: &[A], y: B, f: &F, stream: bool));

/// `out[i] = f(a[i], y)`, vectorized.
#[inline]
fn scalar_rhs<A: Copy, B: Copy, U: Copy, F: Fn(A, B) -> U>(
    out: &mut [MaybeUninit<U>],
    a: &[A],
    y: B,
    f: &F,
    stream: bool,
) {
    dispatch_simd!(scalar_rhs_generic, scalar_rhs_avx2, scalar_rhs_avx512, (out, a, y, f, stream))
}

/// `out[i] = f(x, b[i])`: [`scalar_rhs`] with the operands' roles swapped (one kernel for a
/// scalar on either side).
#[inline]
fn scalar_lhs<A: Copy, B: Copy, U: Copy, F: Fn(A, B) -> U>(
    out: &mut [MaybeUninit<U>],
    x: A,
    b: &[B],
    f: &F,
    stream: bool,
) {
    scalar_rhs(out, b, x, &|y: B, x: A| f(x, y), stream)
}

/// The broadcast shape of two operands, or an error naming `op` and both shapes.
pub(crate) fn broadcast_pair(op: &'static str, a: &Array, b: &Array) -> Result<crate::Shape> {
    broadcast_shapes(a.shape(), b.shape()).ok_or_else(|| {
        TensorError::new(op, format!("cannot broadcast shapes {:?} and {:?}", a.shape(), b.shape()))
    })
}

/// `f` applied to the broadcast pairs of elements of `a` and `b` (dtypes `A` and `B`, already
/// checked), into a fresh contiguous array of the broadcast shape.
pub(crate) fn map2<A: Element, B: Element, U: Element>(
    op: &'static str,
    a: &Array,
    b: &Array,
    f: impl Fn(A, B) -> U + Sync,
) -> Result<Array> {
    let shape = broadcast_pair(op, a, b)?;
    let n = crate::layout::numel(&shape);
    let (sa, sb) = (a.storage_slice::<A>(), b.storage_slice::<B>());
    let stream = stream::enabled(n * std::mem::size_of::<U>());
    let out = match (a.as_slice::<A>(), b.as_slice::<B>()) {
        (Some(x), Some(y)) if a.shape() == b.shape() => {
            build(n, |s, o| zip(o, &x[s..s + o.len()], &y[s..s + o.len()], &f, stream))
        }
        (Some(x), _) if b.numel() == 1 && a.numel() == n => {
            let y = sb[b.layout().offset];
            build(n, |s, o| scalar_rhs(o, &x[s..s + o.len()], y, &f, stream))
        }
        (_, Some(y)) if a.numel() == 1 && b.numel() == n => {
            let x = sa[a.layout().offset];
            build(n, |s, o| scalar_lhs(o, x, &y[s..s + o.len()], &f, stream))
        }
        _ => {
            let la = a.layout().broadcast_to(&shape).expect("shapes broadcast");
            let lb = b.layout().broadcast_to(&shape).expect("shapes broadcast");
            let walk = Walk::new([&la, &lb]);
            let [ia, ib] = walk.inner_strides();
            walk.build_with(|o: &mut [MaybeUninit<U>], [oa, ob]| {
                let len = o.len();
                let (ua, ub) = (oa as usize, ob as usize);
                match (ia, ib) {
                    (1, 1) => zip(o, &sa[ua..ua + len], &sb[ub..ub + len], &f, stream),
                    (1, 0) => scalar_rhs(o, &sa[ua..ua + len], sb[ub], &f, stream),
                    (0, 1) => scalar_lhs(o, sa[ua], &sb[ub..ub + len], &f, stream),
                    _ => {
                        for (i, y) in o.iter_mut().enumerate() {
                            let i = i as isize;
                            y.write(f(sa[(oa + i * ia) as usize], sb[(ob + i * ib) as usize]));
                        }
                    }
                }
            })
        }
    };
    Ok(Array::from_vec(out, &shape))
}

/// An elementwise function of two arrays; see [`Array::binary`].
///
/// ```
/// use adjoint_tensor::{Array, ops::binary::BinaryOp};
/// let a = Array::from_vec(vec![7i64, -7], &[2]);
/// let b = Array::scalar(2i64);
/// assert_eq!(a.binary(&b, BinaryOp::Div).to_vec::<i64>(), vec![3, -3]);
/// assert_eq!(a.binary(&b, BinaryOp::Rem).to_vec::<i64>(), vec![1, -1]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b` (int64 wraps).
    Add,
    /// `a - b` (int64 wraps).
    Sub,
    /// `a * b` (int64 wraps).
    Mul,
    /// `a / b`; int64 truncates toward zero, and a zero divisor is an error.
    Div,
    /// `a ^ b` (float only).
    Pow,
    /// Larger of the two; NaN if either is NaN (NumPy's `maximum`).
    Max,
    /// Smaller of the two; NaN if either is NaN (NumPy's `minimum`).
    Min,
    /// Four-quadrant `atan(a / b)` (float only).
    Atan2,
    /// Remainder with the sign of the dividend, `a - trunc(a / b) * b`: Rust's `%`, C's `fmod`,
    /// `torch.fmod` (not NumPy's `%`, which takes the sign of the divisor). A zero int64
    /// divisor is an error; a zero float divisor gives NaN.
    Rem,
    /// ReLU's derivative applied to a cotangent: `b` where `a > 0`, else `0` (float only).
    /// `a` may be ReLU's input or its output (positive at the same places); NaN in `a` gives 0.
    /// One pass, where `select(a > 0, b, 0)` takes two and a mask.
    ReluGrad,
}

impl BinaryOp {
    /// The op's name in error messages (the method name: `"add"`, `"maximum"`, …).
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Max => "maximum",
            BinaryOp::Min => "minimum",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Rem => "rem",
            BinaryOp::ReluGrad => "relu_grad",
        }
    }

    /// True for the ops defined on floats only (`pow`, `atan2`, `relu_grad`).
    pub fn float_only(self) -> bool {
        matches!(self, BinaryOp::Pow | BinaryOp::Atan2 | BinaryOp::ReluGrad)
    }
}

/// NumPy's `maximum`: NaN wins (falls through both comparisons to `a + b`).
#[inline(always)]
pub(crate) fn max_nan<T: num_traits::Float>(a: T, b: T) -> T {
    if a > b {
        a
    } else if b >= a {
        b
    } else {
        a + b
    }
}

/// NumPy's `minimum`: NaN wins.
#[inline(always)]
pub(crate) fn min_nan<T: num_traits::Float>(a: T, b: T) -> T {
    if a < b {
        a
    } else if b <= a {
        b
    } else {
        a + b
    }
}

/// Where a binary function sends its results: a fresh array (the operands broadcast), or a
/// block of a fused program ([`crate::ops::block`]).
pub(crate) trait Apply2<T> {
    type Out;
    fn apply2<F: Fn(T, T) -> T + Sync>(self, name: &'static str, f: F) -> Self::Out;
}

impl<T: Element> Apply2<T> for (&Array, &Array) {
    type Out = Result<Array>;
    fn apply2<F: Fn(T, T) -> T + Sync>(self, name: &'static str, f: F) -> Result<Array> {
        map2(name, self.0, self.1, f)
    }
}

pub(crate) fn float_binary<T: FastFloat, A: Apply2<T>>(a: A, op: BinaryOp) -> A::Out {
    let name = op.name();
    match op {
        BinaryOp::Add => a.apply2(name, |x: T, y: T| x + y),
        BinaryOp::Sub => a.apply2(name, |x: T, y: T| x - y),
        BinaryOp::Mul => a.apply2(name, |x: T, y: T| x * y),
        BinaryOp::Div => a.apply2(name, |x: T, y: T| x / y),
        BinaryOp::Pow => a.apply2(name, |x: T, y: T| x.powf(y)),
        BinaryOp::Max => a.apply2(name, max_nan::<T>),
        BinaryOp::Min => a.apply2(name, min_nan::<T>),
        BinaryOp::Atan2 => a.apply2(name, |x: T, y: T| x.atan2(y)),
        BinaryOp::Rem => a.apply2(name, |x: T, y: T| x % y),
        // A branch-free blend: vectorizes like the arithmetic ops.
        BinaryOp::ReluGrad => {
            let zero = T::zero();
            a.apply2(name, move |x: T, g: T| if x > zero { g } else { zero })
        }
    }
}

fn has_zero(a: &Array) -> bool {
    if let Some(s) = a.as_slice::<i64>() {
        return s.contains(&0);
    }
    let s = a.storage_slice::<i64>();
    let mut zero = false;
    a.layout().for_each_offset(|o| zero |= s[o] == 0);
    zero
}

fn int_binary(a: &Array, b: &Array, op: BinaryOp) -> Result<Array> {
    let name = op.name();
    if matches!(op, BinaryOp::Div | BinaryOp::Rem) {
        broadcast_pair(name, a, b)?;
        crate::ensure!(
            !(a.numel() > 0 && has_zero(b)),
            name,
            "int64 division by zero (divisor of shape {:?} holds a 0)",
            b.shape()
        );
    }
    match op {
        BinaryOp::Add => map2(name, a, b, |x: i64, y: i64| x.wrapping_add(y)),
        BinaryOp::Sub => map2(name, a, b, |x: i64, y: i64| x.wrapping_sub(y)),
        BinaryOp::Mul => map2(name, a, b, |x: i64, y: i64| x.wrapping_mul(y)),
        // Divisors were checked non-zero; the guard only keeps the kernel branch-free of panics.
        BinaryOp::Div => map2(name, a, b, |x: i64, y: i64| if y == 0 { 0 } else { x.wrapping_div(y) }),
        BinaryOp::Rem => map2(name, a, b, |x: i64, y: i64| if y == 0 { 0 } else { x.wrapping_rem(y) }),
        BinaryOp::Max => map2(name, a, b, |x: i64, y: i64| x.max(y)),
        BinaryOp::Min => map2(name, a, b, |x: i64, y: i64| x.min(y)),
        BinaryOp::Pow | BinaryOp::Atan2 | BinaryOp::ReluGrad => unreachable!("checked by try_binary"),
    }
}

/// Check that two operands share a dtype, naming both dtypes and shapes otherwise.
pub(crate) fn same_dtype(op: &'static str, a: &Array, b: &Array) -> Result<()> {
    crate::ensure!(
        a.dtype() == b.dtype(),
        op,
        "dtypes differ: {} {:?} vs {} {:?} (cast one operand first)",
        a.dtype(),
        a.shape(),
        b.dtype(),
        b.shape()
    );
    Ok(())
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        $(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self, rhs: &Array) -> Array {
                self.binary(rhs, BinaryOp::$op)
            }
        )*
    };
}

impl Array {
    /// `op` applied to the elements of `self` and `rhs`, broadcast together (NumPy rules).
    ///
    /// Both must have the same dtype (there is no promotion). `Pow`, `Atan2` and `ReluGrad` need floats;
    /// the others also take `int64`. Panics, naming the op, the dtypes and shapes and the
    /// caller's line, on mismatched dtypes or shapes, a float-only op on `int64`, or an `int64`
    /// division by zero; see [`try_binary`](Self::try_binary).
    ///
    /// ```
    /// use adjoint_tensor::{Array, ops::binary::BinaryOp};
    /// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// let b = Array::from_vec(vec![10.0f32, 20.0, 30.0], &[3]);
    /// let c = a.binary(&b, BinaryOp::Add);
    /// assert_eq!(c.shape(), &[2, 3]);
    /// assert_eq!(c.to_vec::<f32>(), vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    /// ```
    #[track_caller]
    pub fn binary(&self, rhs: &Array, op: BinaryOp) -> Array {
        self.try_binary(rhs, op).or_fail()
    }

    /// Fallible [`binary`](Self::binary).
    ///
    /// ```
    /// use adjoint_tensor::{Array, ops::binary::BinaryOp};
    /// let a = Array::from_vec(vec![1i64, 2], &[2]);
    /// let e = a.try_binary(&Array::from_vec(vec![1i64, 0], &[2]), BinaryOp::Div).unwrap_err();
    /// assert!(e.message.contains("division by zero"));
    /// let e = a.try_binary(&Array::zeros(&[3], adjoint_tensor::DType::I64), BinaryOp::Add);
    /// assert!(e.unwrap_err().message.contains("[2] and [3]"));
    /// ```
    pub fn try_binary(&self, rhs: &Array, op: BinaryOp) -> Result<Array> {
        let name = op.name();
        same_dtype(name, self, rhs)?;
        match self.dtype() {
            DType::F32 => float_binary::<f32, _>((self, rhs), op),
            DType::F64 => float_binary::<f64, _>((self, rhs), op),
            DType::I64 if !op.float_only() => int_binary(self, rhs, op),
            dt => Err(TensorError::new(
                name,
                format!(
                    "needs {} arrays, got {dt} {:?} and {dt} {:?}",
                    if op.float_only() { "float" } else { "float or int64" },
                    self.shape(),
                    rhs.shape()
                ),
            )),
        }
    }

    binary_methods! {
        /// `self + rhs`, broadcasting; see [`BinaryOp::Add`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// let a = Array::from_vec(vec![1.0f64, 2.0], &[2, 1]);
        /// let b = Array::from_vec(vec![10.0f64, 20.0, 30.0], &[3]);
        /// assert_eq!(a.add(&b).to_vec::<f64>(), vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
        /// ```
        add => Add;
        /// `self - rhs`, broadcasting; see [`BinaryOp::Sub`].
        sub => Sub;
        /// `self * rhs`, broadcasting; see [`BinaryOp::Mul`].
        mul => Mul;
        /// `self / rhs`, broadcasting; see [`BinaryOp::Div`].
        div => Div;
        /// `self ^ rhs`, broadcasting (float only); see [`BinaryOp::Pow`].
        pow => Pow;
        /// Elementwise maximum, NaN-propagating; see [`BinaryOp::Max`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// let a = Array::from_vec(vec![1.0f32, f32::NAN], &[2]);
        /// let m = a.maximum(&Array::scalar(0.5f32)).to_vec::<f32>();
        /// assert_eq!(m[0], 1.0);
        /// assert!(m[1].is_nan());
        /// ```
        maximum => Max;
        /// Elementwise minimum, NaN-propagating; see [`BinaryOp::Min`].
        minimum => Min;
        /// Four-quadrant arctangent of `self / rhs` (float only); see [`BinaryOp::Atan2`].
        atan2 => Atan2;
        /// Remainder with the sign of the dividend (C's `fmod`); see [`BinaryOp::Rem`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// let a = Array::from_vec(vec![5.5f64, -5.5], &[2]);
        /// assert_eq!(a.rem(&Array::scalar(2.0f64)).to_vec::<f64>(), vec![1.5, -1.5]);
        /// ```
        rem => Rem;
        /// `rhs` where `self > 0`, else 0 (float only): ReLU's backward, `self` being ReLU's
        /// input or output and `rhs` the cotangent; see [`BinaryOp::ReluGrad`].
        ///
        /// ```
        /// use adjoint_tensor::Array;
        /// let y = Array::from_vec(vec![0.0f32, 2.0, -1.0], &[3]);
        /// let g = Array::from_vec(vec![5.0f32, 6.0, 7.0], &[3]);
        /// assert_eq!(y.relu_grad(&g).to_vec::<f32>(), vec![0.0, 6.0, 0.0]);
        /// ```
        relu_grad => ReluGrad;
    }

    /// Elementwise AND of two `bool` arrays, broadcasting.
    ///
    /// ```
    /// use adjoint_tensor::Array;
    /// let a = Array::from_vec(vec![true, true, false], &[3]);
    /// let b = Array::from_vec(vec![true, false, true], &[3]);
    /// assert_eq!(a.logical_and(&b).to_vec::<bool>(), vec![true, false, false]);
    /// assert_eq!(a.logical_or(&b).to_vec::<bool>(), vec![true, true, true]);
    /// ```
    #[track_caller]
    pub fn logical_and(&self, rhs: &Array) -> Array {
        self.try_logical("logical_and", rhs, true).or_fail()
    }

    /// Elementwise OR of two `bool` arrays, broadcasting.
    #[track_caller]
    pub fn logical_or(&self, rhs: &Array) -> Array {
        self.try_logical("logical_or", rhs, false).or_fail()
    }

    /// Fallible [`logical_and`](Self::logical_and).
    pub fn try_logical_and(&self, rhs: &Array) -> Result<Array> {
        self.try_logical("logical_and", rhs, true)
    }

    /// Fallible [`logical_or`](Self::logical_or).
    pub fn try_logical_or(&self, rhs: &Array) -> Result<Array> {
        self.try_logical("logical_or", rhs, false)
    }

    fn try_logical(&self, op: &'static str, rhs: &Array, and: bool) -> Result<Array> {
        crate::ensure!(
            self.dtype() == DType::Bool && rhs.dtype() == DType::Bool,
            op,
            "needs bool arrays, got {} {:?} and {} {:?}",
            self.dtype(),
            self.shape(),
            rhs.dtype(),
            rhs.shape()
        );
        if and {
            map2(op, self, rhs, |x: bool, y: bool| x & y)
        } else {
            map2(op, self, rhs, |x: bool, y: bool| x | y)
        }
    }
}
