//! The transform stack and `bind`, the one entry point every primitive goes through.
//!
//! Transforms are interpreters on a thread-local stack. A frame's index is its *level*. A
//! tracer records its level and the id of the frame that made it. `bind` checks the
//! primitive's shape rule, finds the highest live level among the arguments (none: run the
//! kernel), lets that frame's interpreter unpack its own tracers — lower-level arguments are
//! constants to it — and apply the primitive's rule with the unpacked values, whose ops bind
//! again one level down. That recursion is what makes `grad(grad(f))`, `jvp(grad(f))` and
//! `grad(jvp(f))` work without special cases, and why nested transforms never confuse their
//! perturbations.
//!
//! Four kinds of level exist: `Jvp` (forward mode: primal + tangent), `Vjp` (reverse mode:
//! primal + tape value), `Batch` (`vmap`: the whole batch one level down + its batch axis) and
//! `Stage` (`jit`: a variable of the program being recorded; see [`crate::jit`]).
//! A batch level calls the primitive's batching rule, which is written with ordinary ops on the
//! batched values — so it too nests under and over the differentiation levels.
//!
//! - [`frames`]: the stack, frame guards, and the ownership check ([`own_payload`]);
//! - [`dispatch`]: `bind` and the three interpreters, one path for every primitive, with
//!   any number of outputs;
//! - [`tape`]: the reverse-mode tape and its backward sweep.

mod dispatch;
mod frames;
mod tape;

pub(crate) use dispatch::{batch_tracer, bind_below};
pub use dispatch::{bind, bind_multi};
pub(crate) use frames::{depth, own_payload, push_frame, top_of, with_staged, FrameGuard, Kind};
pub(crate) use tape::Tape;
