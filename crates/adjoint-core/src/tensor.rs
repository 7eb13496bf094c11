//! [`Tensor`]: a concrete array or a tracer of an active transform.

use std::fmt;
use std::sync::Arc;

use adjoint_tensor::layout::Shape;
use adjoint_tensor::{Array, DType, Element};

use crate::primitive::Aval;

/// An n-dimensional value that transforms can see through.
///
/// A `Tensor` is a cheap handle: either a concrete [`Array`] (shared storage, strided view) or
/// a *tracer* created by an active `grad`/`jvp`/`vjp`/`vmap` that carries the primal value plus the
/// transform's own payload (a tangent, or a tape position). Code written against `Tensor`
/// cannot tell which it has, which is what makes transforms compose. Tensors are `Send + Sync`.
///
/// ```
/// use adjoint_core::Tensor;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]);
/// let y = (&x * 2.0 + 1.0).exp().sum();
/// assert_eq!(y.shape(), &[] as &[usize]);
/// assert!((y.item() - (3f64.exp() + 5f64.exp() + 7f64.exp())).abs() < 1e-2);
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Repr);

#[derive(Clone)]
pub(crate) enum Repr {
    Concrete(Array),
    Tracer(Arc<Tracer>),
}

/// A value inside an active transform: its level on the transform stack, the id of the frame
/// that owns it (to detect use after the transform returned), and the payload.
pub(crate) struct Tracer {
    pub(crate) level: usize,
    pub(crate) frame: u64,
    pub(crate) payload: Payload,
}

pub(crate) enum Payload {
    /// Forward mode: primal and a non-zero tangent.
    Jvp { primal: Tensor, tangent: Tensor },
    /// Reverse mode: primal and the id of the tape value it is.
    Vjp { primal: Tensor, value: usize },
    /// Batching (`vmap`): the whole batch one level down, with the batch dimension at `axis`,
    /// and the shape of one example (what `shape()` reports inside the mapped function).
    Batch { value: Tensor, axis: usize, shape: Shape },
    /// Staging (`jit`): a variable of the program being recorded, with its abstract value.
    /// It has no value until the compiled program runs.
    Stage { var: usize, aval: Aval },
}

impl Payload {
    /// The value one level down of a differentiation tracer (`Jvp`/`Vjp`). Batch tracers have
    /// no single primal; callers handle them first.
    pub(crate) fn primal(&self) -> &Tensor {
        match self {
            Payload::Jvp { primal, .. } | Payload::Vjp { primal, .. } => primal,
            Payload::Batch { .. } | Payload::Stage { .. } => {
                unreachable!("adjoint: a batch or staging tracer has no primal")
            }
        }
    }
    pub(crate) fn transform_name(&self) -> &'static str {
        match self {
            Payload::Jvp { .. } => "jvp",
            Payload::Vjp { .. } => "grad/vjp",
            Payload::Batch { .. } => "vmap",
            Payload::Stage { .. } => "jit",
        }
    }
}

impl Tensor {
    // ---------------------------------------------------------------- construction

    /// Wrap a concrete array.
    #[inline]
    pub fn from_array(a: Array) -> Tensor {
        Tensor(Repr::Concrete(a))
    }

    pub(crate) fn tracer(level: usize, frame: u64, payload: Payload) -> Tensor {
        Tensor(Repr::Tracer(Arc::new(Tracer { level, frame, payload })))
    }

    /// A tensor owning `data` with the given shape (`f32`, `f64`, `i64` or `bool` data).
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]);
    /// assert_eq!(t.shape(), &[2, 2]);
    /// ```
    #[track_caller]
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Tensor {
        Tensor::from_array(Array::from_vec(data, shape))
    }

    /// Fallible [`from_vec`](Self::from_vec), for data from files.
    pub fn try_from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> adjoint_tensor::Result<Tensor> {
        Array::try_from_vec(data, shape).map(Tensor::from_array)
    }

    /// A tensor copied from a slice.
    #[track_caller]
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Tensor {
        Tensor::from_array(Array::from_slice(data, shape))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(x: T) -> Tensor {
        Tensor::from_array(Array::scalar(x))
    }

    /// A rank-0 tensor of `dtype`.
    pub fn scalar_of(x: f64, dtype: DType) -> Tensor {
        Tensor::from_array(Array::scalar_of(x, dtype))
    }

    /// `f32` zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full_of(shape, 0.0, DType::F32)
    }

    /// `f32` ones.
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full_of(shape, 1.0, DType::F32)
    }

    /// `f32` tensor filled with `value`.
    pub fn full(shape: &[usize], value: f64) -> Tensor {
        Tensor::full_of(shape, value, DType::F32)
    }

    /// Tensor of `dtype` filled with `value`.
    pub fn full_of(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        Tensor::from_array(Array::full(shape, value, dtype))
    }

    /// Zeros with this tensor's shape and dtype (a constant: never a tracer).
    pub fn zeros_like(&self) -> Tensor {
        Tensor::full_of(self.shape(), 0.0, self.dtype())
    }

    /// Ones with this tensor's shape and dtype (a constant).
    pub fn ones_like(&self) -> Tensor {
        Tensor::full_of(self.shape(), 1.0, self.dtype())
    }

    /// `0, 1, …, n-1` as `f32`.
    pub fn arange(n: usize) -> Tensor {
        Tensor::from_array(Array::arange(0.0, n as f64, 1.0, DType::F32))
    }

    /// `n` evenly spaced `f32` values from `start` to `end` inclusive.
    pub fn linspace(start: f64, end: f64, n: usize) -> Tensor {
        Tensor::from_array(Array::linspace(start, end, n, DType::F32))
    }

    /// The `n × n` identity of `dtype`.
    pub fn eye(n: usize, dtype: DType) -> Tensor {
        Tensor::from_array(Array::eye(n, dtype))
    }

    // ---------------------------------------------------------------- inspection

    /// Dimensions.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        match &self.0 {
            Repr::Concrete(a) => a.shape(),
            Repr::Tracer(t) => match &t.payload {
                Payload::Batch { shape, .. } => shape,
                Payload::Stage { aval, .. } => &aval.shape,
                p => p.primal().shape(),
            },
        }
    }

    /// Whether `self` and `other` are one value: the same tracer, or concrete views of the same
    /// storage with the same layout and dtype. `false` says nothing (equal values may differ).
    pub(crate) fn is_same(&self, other: &Tensor) -> bool {
        match (&self.0, &other.0) {
            (Repr::Tracer(a), Repr::Tracer(b)) => Arc::ptr_eq(a, b),
            (Repr::Concrete(a), Repr::Concrete(b)) => {
                Arc::ptr_eq(a.storage(), b.storage()) && a.layout() == b.layout() && a.dtype() == b.dtype()
            }
            _ => false,
        }
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    /// Number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        self.shape().iter().product()
    }

    /// Element type.
    #[inline]
    pub fn dtype(&self) -> DType {
        match &self.0 {
            Repr::Concrete(a) => a.dtype(),
            Repr::Tracer(t) => match &t.payload {
                Payload::Batch { value, .. } => value.dtype(),
                Payload::Stage { aval, .. } => aval.dtype,
                p => p.primal().dtype(),
            },
        }
    }

    /// True when this is a tracer of some transform (active or not).
    pub fn is_tracer(&self) -> bool {
        matches!(self.0, Repr::Tracer(_))
    }

    /// The concrete value underneath every transform (the primal of the primal …).
    /// Reading values is how native control flow branches on tensors inside transforms.
    ///
    /// Inside `vmap` a tensor stands for one example of many, so it has no single value: reading
    /// one panics (branch per example with [`Tensor::select`] instead). Inside `jit` a tensor is
    /// a variable of the program being staged and has no value yet: reading one panics too.
    #[track_caller]
    pub fn value(&self) -> &Array {
        self.value_for("value")
    }

    /// [`value`](Self::value) on behalf of the accessor `op`, which its panic names.
    #[track_caller]
    fn value_for(&self, op: &str) -> &Array {
        match self.try_value() {
            Ok(a) => a,
            Err(e) => no_value(op, e),
        }
    }

    /// The concrete value, or an error inside `vmap`, where a tensor stands for one example of
    /// many (see [`value`](Self::value)).
    ///
    /// ```
    /// use adjoint_core::{vmap, Tensor};
    /// assert!(Tensor::scalar(1.0f32).try_value().is_ok());
    /// let read = vmap(|x: &Tensor| {
    ///     assert!(x.try_value().unwrap_err().to_string().contains("inside `vmap`"));
    ///     x.clone()
    /// });
    /// read(&Tensor::zeros(&[2]));
    /// ```
    pub fn try_value(&self) -> Result<&Array, ValueError> {
        match &self.0 {
            Repr::Concrete(a) => Ok(a),
            Repr::Tracer(t) => match &t.payload {
                Payload::Batch { .. } => {
                    Err(ValueError { shape: self.shape().to_vec(), dtype: self.dtype(), transform: "vmap" })
                }
                Payload::Stage { .. } => {
                    Err(ValueError { shape: self.shape().to_vec(), dtype: self.dtype(), transform: "jit" })
                }
                p => p.primal().try_value(),
            },
        }
    }

    /// The concrete array (same as [`value`](Self::value), cloned).
    #[track_caller]
    pub fn to_array(&self) -> Array {
        self.value_for("to_array").clone()
    }

    /// The elements in row-major order converted to `T`.
    #[track_caller]
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        self.value_for("to_vec").to_vec()
    }

    /// The value of a one-element tensor as `f64`.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// assert_eq!(Tensor::scalar(2.5f32).item(), 2.5);
    /// ```
    #[track_caller]
    pub fn item(&self) -> f64 {
        self.value_for("item").item::<f64>()
    }
}

/// Why [`Tensor::try_value`] has no value to give: the tensor is one example of a `vmap` batch,
/// or a variable of a program being staged by `jit`.
///
/// ```
/// use adjoint_core::{vmap, DType, Tensor, ValueError};
/// let f = vmap(|x: &Tensor| {
///     let e: ValueError = x.try_value().unwrap_err();
///     assert_eq!((e.shape.as_slice(), e.dtype), (&[3usize][..], DType::F32));
///     x * 2.0
/// });
/// f(&Tensor::zeros(&[4, 3]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError {
    /// Shape of one example.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// The transform that holds the tensor: `"vmap"` or `"jit"`.
    pub transform: &'static str,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.transform == "jit" {
            return write!(
                f,
                "cannot read the value of a tensor inside `jit` (a staged value of shape {:?}, {}): \
                 it has no value until the compiled function runs",
                self.shape, self.dtype
            );
        }
        write!(
            f,
            "cannot read the value of a tensor inside `vmap` (one example of shape {:?}, {}): each \
             example has its own value",
            self.shape, self.dtype
        )
    }
}

impl std::error::Error for ValueError {}

#[cold]
#[track_caller]
fn no_value(op: &str, e: ValueError) -> ! {
    let at = std::panic::Location::caller();
    if e.transform == "jit" {
        panic!(
            "adjoint: {op}: {e}; branch on staged values with `cond`/`while_loop`-style ops \
             (`Tensor::select` for elementwise choices), or close over the value: compute it \
             outside the jitted function (at {at})"
        )
    }
    panic!(
        "adjoint: {op}: {e}; branch per example with `Tensor::select`, or read values outside the \
         mapped function (at {at})"
    )
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Concrete(a) => write!(f, "Tensor({a})"),
            Repr::Tracer(t) => write!(
                f,
                "Tracer<{}, level {}>(shape {:?}, {})",
                t.payload.transform_name(),
                t.level,
                self.shape(),
                self.dtype()
            ),
        }
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_value() {
            Ok(a) => fmt::Display::fmt(a, f),
            Err(_) => fmt::Debug::fmt(self, f),
        }
    }
}

impl From<Array> for Tensor {
    fn from(a: Array) -> Tensor {
        Tensor::from_array(a)
    }
}

impl From<f32> for Tensor {
    fn from(x: f32) -> Tensor {
        Tensor::scalar(x)
    }
}

impl From<f64> for Tensor {
    fn from(x: f64) -> Tensor {
        Tensor::scalar(x)
    }
}
