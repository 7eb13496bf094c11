//! # adjoint-core
//!
//! Primitives with all their rules, and the composable transforms that interpret them:
//! `grad`, `value_and_grad`, `vjp`, `jvp`, `jacfwd`, `jacrev`, `hessian`, `hvp`, `vmap`, custom
//! rules, `checkpoint`, and `jit` (with `make_ir` to read the staged program). The `adjoint`
//! facade re-exports everything here.
//!
//! ## Design (after JAX's, with a tape for reverse mode)
//! - [`Tensor`] is a cheap handle: a concrete array, or a tracer of an active transform.
//! - Every op `bind`s a [`Primitive`](primitive::Primitive) (or `bind_multi`s one with
//!   several outputs, such as `split` and `max_pool2d`). `bind` first runs the primitive's
//!   shape rule on the arguments' abstract values ([`Aval`](primitive::Aval): shape and dtype),
//!   so misuse is caught with the op and the caller's line at every level, and output types
//!   are known without running a kernel (what a staging level needs). With no transform
//!   active, `bind` then goes straight to the kernel (one thread-local read). Otherwise the
//!   transform owning the highest-level argument unpacks its tracers and applies the
//!   primitive's rule using ops that bind again one level down — so transforms nest to any
//!   depth and never confuse their perturbations. There is one such path for every primitive;
//!   custom rules and `checkpoint` are primitives too ([`custom`]).
//! - Each primitive lives in one file under `prims/` with all its rules: shape, kernel call,
//!   JVP, VJP and batching; rules use differentiable ops only, which is what gives
//!   higher-order derivatives. The set is small; softmax, logsumexp, norms, average pooling
//!   and the like are composites. `docs/ARCHITECTURE.md` lists the files a new primitive
//!   touches.
//! - Reverse mode records a tape per `grad`/`vjp` call; a node keeps exactly the residuals its
//!   rule asked for, and a single-use reverse pass frees them as soon as the node is done
//!   ([`memory`] measures this). Zero tangents and cotangents are symbolic (`None`): never
//!   allocated, never multiplied.
//! - [`Params`] (derivable with `#[derive(Params)]`) lets transforms take and return any
//!   structure of tensors: the gradient of a model is a model-shaped value.
//! - Transforms are interpreters on a thread-local stack; `vmap` is one more level (a batching
//!   rule beside each primitive's other rules, see [`vmap`](mod@vmap) and [`batching`]), and
//!   so is staging: [`jit`](mod@jit) records every `bind` into a checked, optimised program
//!   ([`jit::Ir`]) once per input signature and replays it through `bind` on later calls, so
//!   it composes with every other transform in both orders. Primitives are `Clone + 'static`
//!   values holding their parameters, which is what lets a program keep them.

pub mod batching;
pub mod control;
pub mod custom;
pub mod debug;
pub mod jit;
pub mod memory;
pub mod numerics;
mod ops;
pub mod params;
pub mod primitive;
pub mod prims;
pub mod profile;
pub mod tensor;
pub mod testing;
pub mod trace;
pub mod transforms;
pub mod vmap;

pub use adjoint_derive::Params;
/// The old names of the convolution and pooling options.
#[allow(deprecated)]
pub use adjoint_tensor::ops::{
    conv::{Conv1dParams, Conv2dParams},
    pool::Pool2dParams,
};
pub use adjoint_tensor::{threads, Array, DType};
pub use control::{cond, fori_loop, fori_loop_t, scan, scan_with, while_loop, Checkpoint};
pub use custom::{checkpoint, custom_jvp, custom_vjp};
pub use jit::{jit, jit_donate, jit_stats, make_ir};
pub use ops::{Conv1dOptions, Conv2dOptions, Pool2dOptions};
pub use params::Params;
pub use profile::{profile, Profile};
pub use tensor::{Tensor, ValueError};
pub use transforms::{
    grad, hessian, hvp, jacfwd, jacrev, jvp, stop_gradient, value_and_grad, value_and_grad_with_aux,
    value_and_grad_with_hook, vjp,
};
pub use vmap::{vmap, vmap_axes, Axes};
