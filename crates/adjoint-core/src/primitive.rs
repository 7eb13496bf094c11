//! The [`Primitive`] trait: one struct per primitive, holding all its rules.

use std::fmt::Debug;

use adjoint_tensor::Array;
use smallvec::SmallVec;

use crate::tensor::Tensor;

/// Cotangents or tangents for a primitive's inputs; `None` is a symbolic zero.
pub type Grads = SmallVec<[Option<Tensor>; 3]>;

/// A primitive operation: the unit the transforms interpret.
///
/// Each implementation lives in its own file under `prims/` with every rule it has:
/// - `eval`: the CPU kernel call on concrete arrays (shapes were checked by the caller);
/// - `jvp`: the output tangent, from input tangents (`None` = zero), written with
///   differentiable [`Tensor`] ops so that it can itself be differentiated;
/// - `vjp`: a [`Pullback`] that keeps exactly the residuals it needs and maps the output
///   cotangent to input cotangents, again with differentiable ops;
/// - `batch`: the batching rule for `vmap`, again with ordinary ops (on the batched values);
///   the default runs the primitive once per example and stacks the results, a correct but
///   slow fallback that every primitive of adjoint overrides.
pub trait Primitive: Debug + 'static {
    /// Name shown in errors and traces, e.g. `"exp"`.
    fn name(&self) -> &'static str;

    /// Evaluate on concrete arrays.
    fn eval(&self, args: &[&Array]) -> Array;

    /// Forward-mode rule. `out` is the primal output already computed.
    fn jvp(&self, primals: &[&Tensor], tangents: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor>;

    /// Reverse-mode rule. `wants[i]` says whether input `i` needs a cotangent.
    fn vjp(&self, primals: &[&Tensor], out: &Tensor, wants: &[bool]) -> Pullback;

    /// Batching rule. `args` are the values one level down; `axes[i]` is the batch axis of
    /// argument `i` in them (`None`: the argument is the same for every example), `size` the
    /// number of examples. Returns the batched output and its batch axis (`None` when the
    /// output is the same for every example). See [`crate::batching`] for the helpers.
    fn batch(&self, args: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        crate::batching::by_loop(self, args, axes, size)
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
    ($($e:expr),* $(,)?) => { { let mut g: $crate::primitive::Grads = ::smallvec::SmallVec::new(); $(g.push($e);)* g } };
}
