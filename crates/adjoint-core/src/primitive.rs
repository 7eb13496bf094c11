//! The [`Primitive`] trait: one struct per primitive, holding all its rules.

use std::any::TypeId;
use std::fmt::Debug;
use std::rc::Rc;

use adjoint_tensor::layout::Shape;
use adjoint_tensor::{Array, DType};
use smallvec::SmallVec;

use crate::tensor::Tensor;

/// Cotangents or tangents for a primitive's inputs; `None` is a symbolic zero.
pub type Grads = SmallVec<[Option<Tensor>; 3]>;

/// One entry per output of a primitive (most have one, so it is stored inline).
pub type Outs<T> = SmallVec<[T; 1]>;

/// An *abstract value*: the shape and dtype of a tensor without its data — what a shape rule
/// sees, and what a staging level (jit) will know before anything runs.
///
/// ```
/// use adjoint_core::primitive::Aval;
/// use adjoint_core::{DType, Tensor};
/// let a = Aval::of(&Tensor::zeros(&[2, 3]));
/// assert_eq!((a.shape.as_slice(), a.dtype), (&[2usize, 3][..], DType::F32));
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Aval {
    /// Dimensions.
    pub shape: Shape,
    /// Element type.
    pub dtype: DType,
}

// By hand: the shape through `copy_dims` (every bind builds and copies these; see it).
impl Clone for Aval {
    #[inline]
    fn clone(&self) -> Aval {
        Aval::new(&self.shape, self.dtype)
    }
}

impl Aval {
    /// An abstract value of `shape` and `dtype`.
    #[inline]
    pub fn new(shape: &[usize], dtype: DType) -> Aval {
        Aval { shape: adjoint_tensor::layout::copy_dims(shape), dtype }
    }
    /// The abstract value of a tensor (for a `vmap` tracer: of one example).
    pub fn of(t: &Tensor) -> Aval {
        Aval::new(t.shape(), t.dtype())
    }
    /// The abstract value of a concrete array.
    pub fn of_array(a: &Array) -> Aval {
        Aval::new(a.shape(), a.dtype())
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

impl std::fmt::Display for Aval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?}", self.dtype, self.shape.as_slice())
    }
}

/// Panic for a misused primitive, naming it and the caller's location. Shape rules call this:
/// through `#[track_caller]` on the rule, `bind` and the op's front end, the location is the
/// user's line.
#[cold]
#[track_caller]
pub fn misuse(op: &str, msg: String) -> ! {
    let loc = std::panic::Location::caller();
    panic!("adjoint: {op}: {msg} (at {}:{}:{})", loc.file(), loc.line(), loc.column())
}

/// What a staged program (`jit`) needs of a primitive besides its rules: an owned copy of it,
/// parameters included, and the identity of its type. Provided for every `Clone + 'static`
/// primitive, so implementations only derive `Clone`.
pub trait PrimitiveValue {
    /// An owned copy, kept by the equations of a staged program.
    fn to_rc(&self) -> Rc<dyn Primitive>;
    /// The primitive's type: primitives of different types never compare equal.
    fn type_key(&self) -> TypeId;
    /// The value as `Any`, so a pass can read the parameters of the primitives it rewrites
    /// (`jit`'s fusion and simplification downcast to the types they know).
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<T: Primitive + Clone + 'static> PrimitiveValue for T {
    fn to_rc(&self) -> Rc<dyn Primitive> {
        Rc::new(self.clone())
    }
    fn type_key(&self) -> TypeId {
        TypeId::of::<T>()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A primitive operation: the unit the transforms interpret; `bind` is its only entry point.
///
/// This is the general form, with any number of outputs (`split` has several, `max_pool2d`
/// returns values and indices). Most primitives have one output and implement
/// [`SimplePrimitive`] instead, which provides this trait. Each implementation lives in its
/// own file under `prims/` with every rule it has:
/// - `shape`: output shapes and dtypes from the inputs' [`Aval`]s and the parameters,
///   panicking through [`misuse`] on a caller bug. `bind` calls it at every level before
///   anything runs, so a direct `bind` is checked like the op's method, and `vmap` of an empty
///   batch and staging know the outputs without running a kernel;
/// - `eval`: the CPU kernel call on concrete arrays (already checked by `shape`);
/// - `jvp`: output tangents from input tangents (`None` = zero), written with differentiable
///   [`Tensor`] ops so that they can themselves be differentiated;
/// - `vjp`: a [`Pullback`] that keeps exactly the residuals it needs and maps output
///   cotangents to input cotangents, again with differentiable ops;
/// - `batch`: the batching rule for `vmap`, again with ordinary ops (on the batched values);
///   the default runs the primitive once per example and stacks the results, a correct but
///   slow fallback that every primitive of adjoint overrides.
///
/// A primitive is a `Clone + 'static` value holding its parameters (see [`PrimitiveValue`]):
/// `jit` keeps a copy in each staged equation and binds it again when the program runs.
pub trait Primitive: Debug + PrimitiveValue {
    /// Name shown in errors and traces, e.g. `"exp"`.
    fn name(&self) -> &'static str;

    /// A key that is equal for two primitives of one type exactly when they compute the same
    /// function of their inputs; `jit`'s common-subexpression elimination merges equations
    /// on it. The default is the `Debug` text, which a derived `Debug` makes hold every
    /// parameter; a primitive whose `Debug` leaves something out (a closure) returns `None`,
    /// and is never merged.
    fn cse_key(&self) -> Option<String> {
        Some(format!("{self:?}"))
    }

    /// Whether the outputs are views of the first input's storage (`reshape`, `permute`,
    /// `slice`…: no buffer of their own when the input's layout allows). `jit`'s memory plan
    /// ([`crate::jit`]) then keeps that storage alive as long as any view is read. The default
    /// is `false`: the outputs are new buffers.
    fn is_view(&self) -> bool {
        false
    }

    /// The shape rule: one [`Aval`] per output.
    #[track_caller]
    fn shape(&self, args: &[Aval]) -> Outs<Aval>;

    /// Evaluate on concrete arrays: one array per output.
    fn eval(&self, args: &[&Array]) -> Outs<Array>;

    /// Forward-mode rule: one tangent per output (`None` = zero). `outs` are the primal
    /// outputs, already computed.
    fn jvp(&self, primals: &[&Tensor], tangents: &[Option<&Tensor>], outs: &[Tensor])
        -> Outs<Option<Tensor>>;

    /// Reverse-mode rule. `wants[i]` says whether input `i` needs a cotangent. The pullback
    /// receives one cotangent per output (`None` = zero).
    fn vjp(&self, primals: &[&Tensor], outs: &[Tensor], wants: &[bool]) -> Pullback;

    /// The single output of a one-output primitive, or `None` (the default). `bind`'s eager
    /// fast path uses it to skip the output list; [`SimplePrimitive`]s provide it.
    #[doc(hidden)]
    fn eval_one(&self, args: &[&Array]) -> Option<Array> {
        let _ = args;
        None
    }

    /// Forward mode with its own forward computation, for a primitive whose tangent rule also
    /// computes the outputs (a user's custom JVP rule): outputs and their tangents, or `None`
    /// (the default) to bind the primitive one level down and then apply [`jvp`](Self::jvp).
    fn jvp_with_forward(
        &self,
        primals: &[&Tensor],
        tangents: &[Option<&Tensor>],
    ) -> Option<(Outs<Tensor>, Outs<Option<Tensor>>)> {
        let _ = (primals, tangents);
        None
    }

    /// Reverse mode with its own forward computation, for a primitive whose reverse rule needs
    /// a different forward pass than `eval` (a user's `fwd` returning residuals, as JAX's
    /// `process_custom_vjp_call`): the outputs and the pullback, or `None` (the default) to
    /// bind the primitive one level down and then apply [`vjp`](Self::vjp).
    fn vjp_with_forward(&self, primals: &[&Tensor], wants: &[bool]) -> Option<(Outs<Tensor>, Pullback)> {
        let _ = (primals, wants);
        None
    }

    /// Batching rule. `args` are the values one level down; `axes[i]` is the batch axis of
    /// argument `i` in them (`None`: the argument is the same for every example), `size` the
    /// number of examples. Returns the batched outputs and the batch axis of each (`None` when
    /// an output is the same for every example). See [`crate::batching`] for the helpers.
    fn batch(
        &self,
        args: &[&Tensor],
        axes: &[Option<usize>],
        size: usize,
    ) -> (Outs<Tensor>, Outs<Option<usize>>) {
        crate::batching::by_loop(self, args, axes, size)
    }
}

/// A primitive with one output: the same rules as [`Primitive`] with single values instead of
/// lists. Implementing it provides [`Primitive`].
pub trait SimplePrimitive: Debug + Clone + 'static {
    /// Name shown in errors and traces, e.g. `"exp"`.
    fn name(&self) -> &'static str;

    /// Whether the output is a view of the first input (see [`Primitive::is_view`]).
    fn is_view(&self) -> bool {
        false
    }

    /// The shape rule (see [`Primitive::shape`]).
    #[track_caller]
    fn shape(&self, args: &[Aval]) -> Aval;

    /// Evaluate on concrete arrays.
    fn eval(&self, args: &[&Array]) -> Array;

    /// Forward-mode rule. `out` is the primal output already computed.
    fn jvp(&self, primals: &[&Tensor], tangents: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor>;

    /// Reverse-mode rule. `wants[i]` says whether input `i` needs a cotangent.
    fn vjp(&self, primals: &[&Tensor], out: &Tensor, wants: &[bool]) -> Pullback;

    /// Batching rule (see [`Primitive::batch`]).
    fn batch(&self, args: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        let (mut o, mut a) = crate::batching::by_loop(self, args, axes, size);
        (o.swap_remove(0), a.swap_remove(0))
    }
}

impl<T: SimplePrimitive> Primitive for T {
    #[inline]
    fn name(&self) -> &'static str {
        SimplePrimitive::name(self)
    }
    #[inline]
    fn is_view(&self) -> bool {
        SimplePrimitive::is_view(self)
    }
    #[inline]
    #[track_caller]
    fn shape(&self, args: &[Aval]) -> Outs<Aval> {
        smallvec::smallvec![SimplePrimitive::shape(self, args)]
    }
    #[inline]
    fn eval(&self, args: &[&Array]) -> Outs<Array> {
        smallvec::smallvec![SimplePrimitive::eval(self, args)]
    }
    #[inline]
    fn eval_one(&self, args: &[&Array]) -> Option<Array> {
        Some(SimplePrimitive::eval(self, args))
    }
    #[inline]
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], outs: &[Tensor]) -> Outs<Option<Tensor>> {
        smallvec::smallvec![SimplePrimitive::jvp(self, p, t, &outs[0])]
    }
    #[inline]
    fn vjp(&self, p: &[&Tensor], outs: &[Tensor], wants: &[bool]) -> Pullback {
        SimplePrimitive::vjp(self, p, &outs[0], wants)
    }
    fn batch(
        &self,
        args: &[&Tensor],
        axes: &[Option<usize>],
        size: usize,
    ) -> (Outs<Tensor>, Outs<Option<usize>>) {
        let (o, a) = SimplePrimitive::batch(self, args, axes, size);
        (smallvec::smallvec![o], smallvec::smallvec![a])
    }
}

/// The reverse-mode closure of one tape node, with the residuals it keeps alive.
///
/// The residuals are explicit (`R`), so the tape can account for the bytes it holds: see
/// [`crate::memory`]. They are dropped as soon as the node has been processed in a
/// single-use reverse pass.
pub struct Pullback {
    pub(crate) bytes: usize,
    pub(crate) f: PullbackFn,
}

/// The boxed closure of a [`Pullback`]: output cotangents (`None` = zero) to input cotangents.
pub(crate) type PullbackFn = Box<dyn Fn(&[Option<Tensor>]) -> Grads>;

/// Values a pullback keeps for the reverse pass.
pub trait Residuals: 'static {
    /// Bytes of tensor data held (views count their own extent).
    fn residual_bytes(&self) -> usize;
}

impl Residuals for () {
    fn residual_bytes(&self) -> usize {
        0
    }
}
impl Residuals for Tensor {
    fn residual_bytes(&self) -> usize {
        self.numel() * self.dtype().size_in_bytes()
    }
}
impl<T: Residuals> Residuals for Vec<T> {
    fn residual_bytes(&self) -> usize {
        self.iter().map(|t| t.residual_bytes()).sum()
    }
}
impl<T: Residuals> Residuals for Option<T> {
    fn residual_bytes(&self) -> usize {
        self.as_ref().map_or(0, |t| t.residual_bytes())
    }
}
impl Residuals for Array {
    fn residual_bytes(&self) -> usize {
        self.numel() * self.dtype().size_in_bytes()
    }
}
macro_rules! tuple_residuals {
    ($($n:ident),+) => {
        impl<$($n: Residuals),+> Residuals for ($($n,)+) {
            #[allow(non_snake_case)]
            fn residual_bytes(&self) -> usize {
                let ($($n,)+) = self;
                0 $(+ $n.residual_bytes())+
            }
        }
    };
}
tuple_residuals!(A);
tuple_residuals!(A, B);
tuple_residuals!(A, B, C);
tuple_residuals!(A, B, C, D);

impl Pullback {
    /// A pullback for a single-output primitive: `f(residuals, cotangent)`.
    pub fn new<R: Residuals>(res: R, f: impl Fn(&R, &Tensor) -> Grads + 'static) -> Pullback {
        let bytes = res.residual_bytes();
        crate::memory::add(bytes);
        Pullback {
            bytes,
            f: Box::new(move |cts: &[Option<Tensor>]| match &cts[0] {
                Some(c) => f(&res, c),
                None => SmallVec::new(),
            }),
        }
    }

    /// A pullback for a multi-output call: receives every output's cotangent (`None` = zero).
    pub fn multi<R: Residuals>(res: R, f: impl Fn(&R, &[Option<Tensor>]) -> Grads + 'static) -> Pullback {
        let bytes = res.residual_bytes();
        crate::memory::add(bytes);
        Pullback { bytes, f: Box::new(move |cts: &[Option<Tensor>]| f(&res, cts)) }
    }
}

impl Drop for Pullback {
    fn drop(&mut self) {
        crate::memory::sub(self.bytes);
    }
}

/// Build a [`Grads`] list from options.
#[macro_export]
#[doc(hidden)]
macro_rules! grads {
    ($($e:expr_2021),* $(,)?) => { { let mut g: $crate::primitive::Grads = ::smallvec::SmallVec::new(); $(g.push($e);)* g } };
}
