//! The transform stack and `bind`, the one entry point every primitive goes through.
//!
//! Transforms are interpreters on a thread-local stack. A frame's index is its *level*. A
//! tracer records its level and the id of the frame that made it. `bind` finds the highest
//! live level among the arguments (none: run the kernel), lets that frame's interpreter unpack
//! its own tracers — lower-level arguments are constants to it — and apply the primitive's rule
//! with the unpacked values, whose ops bind again one level down. That recursion is what makes
//! `grad(grad(f))`, `jvp(grad(f))` and `grad(jvp(f))` work without special cases, and why
//! nested transforms never confuse their perturbations.
//!
//! Three kinds of level exist: `Jvp` (forward mode: primal + tangent), `Vjp` (reverse mode:
//! primal + tape value) and `Batch` (`vmap`: the whole batch one level down + its batch axis).
//! A batch level calls the primitive's batching rule, which is written with ordinary ops on the
//! batched values — so it too nests under and over the differentiation levels.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

use adjoint_tensor::Array;
use smallvec::SmallVec;

use crate::debug;
use crate::primitive::{Grads, Primitive, Pullback};
use crate::tensor::{Payload, Repr, Tensor, Tracer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Jvp,
    Vjp,
    Batch,
}

pub(crate) struct Frame {
    pub(crate) id: u64,
    pub(crate) tape: Tape,
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Frame ids are unique across threads (not only within one), so a tracer taken to another
/// thread can never match a frame there — it is reported as dead instead of being confused
/// with that thread's own tracers of the same level.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Number of transforms active on this thread.
#[inline]
pub(crate) fn depth() -> usize {
    DEPTH.with(|d| d.get())
}

/// A pushed frame; pops itself on drop (also when the user's function panics).
pub(crate) struct FrameGuard {
    pub(crate) level: usize,
    pub(crate) id: u64,
    popped: bool,
}

pub(crate) fn push_frame(kind: Kind) -> FrameGuard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let level = STACK.with(|s| {
        let mut s = s.borrow_mut();
        let _ = kind;
        s.push(Frame { id, tape: Tape::default() });
        s.len() - 1
    });
    DEPTH.with(|d| d.set(level + 1));
    FrameGuard { level, id, popped: false }
}

impl FrameGuard {
    /// Pop this frame and return its tape.
    pub(crate) fn pop(mut self) -> Tape {
        self.popped = true;
        self.pop_inner()
    }

    fn pop_inner(&self) -> Tape {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            let f = s.pop().expect("adjoint: transform stack underflow");
            assert_eq!(f.id, self.id, "adjoint: transforms popped out of order");
            DEPTH.with(|d| d.set(s.len()));
            f.tape
        })
    }

    /// Register a new leaf value on this frame's tape.
    pub(crate) fn new_leaf(&self) -> usize {
        with_tape(self.level, |t| t.push(SmallVec::new(), 1, None))
    }

    /// Wrap `primal` as this frame's tracer.
    pub(crate) fn tracer(&self, payload: Payload) -> Tensor {
        Tensor::tracer(self.level, self.id, payload)
    }

    /// If `t` is this frame's tracer, its payload.
    pub(crate) fn own<'a>(&self, t: &'a Tensor) -> Option<&'a Payload> {
        match &t.0 {
            Repr::Tracer(tr) if tr.level == self.level && tr.frame == self.id => Some(&tr.payload),
            _ => None,
        }
    }
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        if !self.popped {
            // Unwinding out of a transform: drop the frame (and its tape) quietly.
            let _ = STACK.try_with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    if s.last().map(|f| f.id) == Some(self.id) {
                        s.pop();
                    }
                    DEPTH.with(|d| d.set(s.len()));
                }
            });
        }
    }
}

fn with_tape<R>(level: usize, f: impl FnOnce(&mut Tape) -> R) -> R {
    STACK.with(|s| f(&mut s.borrow_mut()[level].tape))
}

#[cold]
#[track_caller]
fn dead_tracer(t: &Tracer) -> ! {
    panic!(
        "adjoint: a tracer of `{}` (level {}) was used after its transform returned, or on \
         another thread than the one running the transform; values computed inside a transform \
         must be returned from the function, not kept in a capture, a static or sent to another \
         thread (use `stop_gradient` or `.to_array()` to keep a plain value) (at {})",
        t.payload.transform_name(),
        t.level,
        std::panic::Location::caller()
    )
}

/// The live frame owning the highest-level tracer among `args`, if any.
#[track_caller]
fn top_frame(args: &[&Tensor]) -> Option<(usize, u64, Kind)> {
    let mut best: Option<(usize, u64, Kind)> = None;
    for a in args {
        if let Repr::Tracer(t) = &a.0 {
            if best.is_some_and(|b| b.0 >= t.level) {
                continue;
            }
            let live = STACK.with(|s| s.borrow().get(t.level).is_some_and(|f| f.id == t.frame));
            if !live {
                dead_tracer(t);
            }
            let kind = match t.payload {
                Payload::Jvp { .. } => Kind::Jvp,
                Payload::Vjp { .. } => Kind::Vjp,
                Payload::Batch { .. } => Kind::Batch,
            };
            best = Some((t.level, t.frame, kind));
        }
    }
    best
}

/// Apply a primitive to tensors: the heart of every op.
#[track_caller]
#[inline]
pub fn bind<P: Primitive + ?Sized>(p: &P, args: &[&Tensor]) -> Tensor {
    if debug::requested() {
        return bind_checked(p, args, std::panic::Location::caller());
    }
    bind_plain(p, args)
}

#[track_caller]
#[inline(always)]
fn bind_plain<P: Primitive + ?Sized>(p: &P, args: &[&Tensor]) -> Tensor {
    if depth() == 0 {
        return eval_concrete(p, args);
    }
    match top_frame(args) {
        None => eval_concrete(p, args),
        Some((level, id, Kind::Jvp)) => jvp_bind(p, args, level, id),
        Some((level, id, Kind::Vjp)) => vjp_bind(p, args, level, id),
        Some((level, id, Kind::Batch)) => batch_bind(p, args, level, id),
    }
}

/// `bind` in anomaly mode (see [`crate::debug`]): records the op's call site and checks every
/// concrete output for new NaNs and infinities.
#[cold]
#[inline(never)]
#[track_caller]
fn bind_checked<P: Primitive + ?Sized>(
    p: &P,
    args: &[&Tensor],
    at: &'static std::panic::Location<'static>,
) -> Tensor {
    if !debug::active() {
        return bind_plain(p, args);
    }
    let _site = debug::SiteGuard::enter(at);
    let top = if depth() == 0 { None } else { top_frame(args) };
    match top {
        None => {
            let out = eval_concrete(p, args);
            let arrs: SmallVec<[&Array; 4]> = args.iter().map(|a| a.value()).collect();
            debug::check(p.name(), &arrs, out.value());
            out
        }
        Some((level, id, Kind::Jvp)) => jvp_bind(p, args, level, id),
        Some((level, id, Kind::Vjp)) => vjp_bind(p, args, level, id),
        Some((level, id, Kind::Batch)) => batch_bind(p, args, level, id),
    }
}

/// The forward op being bound, when anomaly mode wants it remembered.
#[inline]
fn anomaly_origin<P: Primitive + ?Sized>(p: &P) -> Option<debug::Origin> {
    (debug::requested() && debug::active()).then(|| debug::origin(p.name()))
}

#[track_caller]
#[inline]
fn eval_concrete<P: Primitive + ?Sized>(p: &P, args: &[&Tensor]) -> Tensor {
    let mut arrs: SmallVec<[&Array; 4]> = SmallVec::new();
    for a in args {
        match &a.0 {
            Repr::Concrete(x) => arrs.push(x),
            Repr::Tracer(t) => dead_tracer(t),
        }
    }
    Tensor::from_array(p.eval(&arrs))
}

pub(crate) fn own_payload(t: &Tensor, level: usize, id: u64) -> Option<&Payload> {
    match &t.0 {
        Repr::Tracer(tr) if tr.level == level && tr.frame == id => Some(&tr.payload),
        _ => None,
    }
}

fn jvp_bind<P: Primitive + ?Sized>(p: &P, args: &[&Tensor], level: usize, id: u64) -> Tensor {
    let mut primals: SmallVec<[Tensor; 4]> = SmallVec::new();
    let mut tangents: SmallVec<[Option<Tensor>; 4]> = SmallVec::new();
    for a in args {
        match own_payload(a, level, id) {
            Some(Payload::Jvp { primal, tangent }) => {
                primals.push(primal.clone());
                tangents.push(Some(tangent.clone()));
            }
            _ => {
                primals.push((*a).clone());
                tangents.push(None);
            }
        }
    }
    let prefs: SmallVec<[&Tensor; 4]> = primals.iter().collect();
    let out = bind(p, &prefs);
    if !out.dtype().is_float() {
        return out;
    }
    let trefs: SmallVec<[Option<&Tensor>; 4]> = tangents.iter().map(|t| t.as_ref()).collect();
    let rule = anomaly_origin(p).map(|o| debug::RuleGuard::enter(debug::RuleKind::Jvp, o));
    let tangent = p.jvp(&prefs, &trefs, &out);
    drop(rule);
    match tangent {
        Some(tangent) => {
            debug_assert_eq!(tangent.shape(), out.shape(), "jvp rule of {} gave a wrong shape", p.name());
            Tensor::tracer(level, id, Payload::Jvp { primal: out, tangent })
        }
        None => out,
    }
}

fn vjp_bind<P: Primitive + ?Sized>(p: &P, args: &[&Tensor], level: usize, id: u64) -> Tensor {
    let mut primals: SmallVec<[Tensor; 4]> = SmallVec::new();
    let mut parents: SmallVec<[Option<usize>; 3]> = SmallVec::new();
    for a in args {
        match own_payload(a, level, id) {
            Some(Payload::Vjp { primal, value }) => {
                primals.push(primal.clone());
                parents.push(Some(*value));
            }
            _ => {
                primals.push((*a).clone());
                parents.push(None);
            }
        }
    }
    let prefs: SmallVec<[&Tensor; 4]> = primals.iter().collect();
    let out = bind(p, &prefs);
    if !out.dtype().is_float() {
        return out;
    }
    let wants: SmallVec<[bool; 4]> = parents.iter().map(|p| p.is_some()).collect();
    let pb = p.vjp(&prefs, &out, &wants);
    let origin = anomaly_origin(p);
    let value = with_tape(level, |t| t.push_node(parents, 1, Some(pb), origin));
    Tensor::tracer(level, id, Payload::Vjp { primal: out, value })
}

#[track_caller]
fn batch_bind<P: Primitive + ?Sized>(p: &P, args: &[&Tensor], level: usize, id: u64) -> Tensor {
    let mut vals: SmallVec<[Tensor; 4]> = SmallVec::new();
    let mut axes: SmallVec<[Option<usize>; 4]> = SmallVec::new();
    let mut size: Option<usize> = None;
    for a in args {
        match own_payload(a, level, id) {
            Some(Payload::Batch { value, axis, .. }) => {
                let n = value.shape()[*axis];
                match size {
                    Some(s) if s != n => batch_size_mismatch(p.name(), s, n),
                    _ => size = Some(n),
                }
                vals.push(value.clone());
                axes.push(Some(*axis));
            }
            _ => {
                vals.push((*a).clone());
                axes.push(None);
            }
        }
    }
    let size = size.expect("the top frame owns one of the arguments");
    let refs: SmallVec<[&Tensor; 4]> = vals.iter().collect();
    let rule = anomaly_origin(p).map(|o| debug::RuleGuard::enter(debug::RuleKind::Batch, o));
    let (out, axis) = p.batch(&refs, &axes, size);
    drop(rule);
    match axis {
        Some(ax) => {
            debug_assert!(
                out.shape().get(ax) == Some(&size),
                "adjoint: batching rule of {} gave shape {:?} with batch axis {ax}, batch size {size}",
                p.name(),
                out.shape()
            );
            batch_tracer(level, id, out, ax)
        }
        None => out,
    }
}

#[cold]
#[track_caller]
fn batch_size_mismatch(op: &str, a: usize, b: usize) -> ! {
    panic!(
        "adjoint: {op}: vmap batch sizes disagree: {a} and {b} examples in one batch (at {})",
        std::panic::Location::caller()
    )
}

/// Wrap `value` (one level down, batch dimension at `axis`) as a batch tracer of frame
/// (`level`, `id`).
pub(crate) fn batch_tracer(level: usize, id: u64, value: Tensor, axis: usize) -> Tensor {
    let mut shape = adjoint_tensor::layout::Shape::from_slice(value.shape());
    shape.remove(axis);
    Tensor::tracer(level, id, Payload::Batch { value, axis, shape })
}

/// Record a multi-output node on the tape of frame (`level`, `id`); returns the first value id.
pub(crate) fn record(
    level: usize,
    parents: SmallVec<[Option<usize>; 3]>,
    n_out: usize,
    pb: Pullback,
) -> usize {
    with_tape(level, |t| t.push(parents, n_out, Some(pb)))
}

/// The highest live frame among the tensors (for calls that are not single primitives:
/// custom rules and checkpoints).
#[track_caller]
pub(crate) fn top_of(args: &[&Tensor]) -> Option<(usize, u64, Kind)> {
    if depth() == 0 {
        for a in args {
            if let Repr::Tracer(t) = &a.0 {
                dead_tracer(t);
            }
        }
        return None;
    }
    top_frame(args)
}

pub(crate) use own_payload as payload_at;

// -------------------------------------------------------------------- tape

struct Node {
    parents: SmallVec<[Option<usize>; 3]>,
    first_out: usize,
    n_out: usize,
    pullback: Option<Pullback>,
    /// The forward op and its call site, recorded in anomaly mode only.
    origin: Option<debug::Origin>,
}

/// A reverse-mode tape: nodes in execution order; each output is a numbered *value*.
#[derive(Default)]
pub(crate) struct Tape {
    nodes: Vec<Node>,
    n_values: usize,
}

impl Tape {
    fn push(
        &mut self,
        parents: SmallVec<[Option<usize>; 3]>,
        n_out: usize,
        pullback: Option<Pullback>,
    ) -> usize {
        self.push_node(parents, n_out, pullback, None)
    }

    fn push_node(
        &mut self,
        parents: SmallVec<[Option<usize>; 3]>,
        n_out: usize,
        pullback: Option<Pullback>,
        origin: Option<debug::Origin>,
    ) -> usize {
        let first_out = self.n_values;
        self.n_values += n_out;
        self.nodes.push(Node { parents, first_out, n_out, pullback, origin });
        first_out
    }

    /// The reverse sweep: seed cotangents of some values, run pullbacks in reverse order with
    /// ordinary (differentiable) ops, and return the cotangent of every value (leaves keep
    /// theirs). With `consume`, each node's pullback — and so its residuals — is dropped as
    /// soon as it has run.
    pub(crate) fn backward(&mut self, seeds: Vec<(usize, Tensor)>, consume: bool) -> Vec<Option<Tensor>> {
        let mut cts: Vec<Option<Tensor>> = vec![None; self.n_values];
        for (v, c) in seeds {
            accumulate(&mut cts[v], c);
        }
        for i in (0..self.nodes.len()).rev() {
            let node = &mut self.nodes[i];
            let Some(pb) = node.pullback.as_ref() else { continue };
            let range = node.first_out..node.first_out + node.n_out;
            if cts[range.clone()].iter().all(|c| c.is_none()) {
                if consume {
                    node.pullback = None;
                }
                continue;
            }
            let out_cts: SmallVec<[Option<Tensor>; 2]> = if consume {
                cts[range].iter_mut().map(|c| c.take()).collect()
            } else {
                cts[range].iter().cloned().collect()
            };
            let rule = node.origin.map(|o| debug::RuleGuard::enter(debug::RuleKind::Vjp, o));
            let grads: Grads = (pb.f)(&out_cts);
            drop(rule);
            drop(out_cts);
            if consume {
                node.pullback = None;
            }
            for (parent, g) in node.parents.iter().zip(grads) {
                if let (Some(p), Some(g)) = (parent, g) {
                    accumulate(&mut cts[*p], g);
                }
            }
        }
        cts
    }
}

fn accumulate(slot: &mut Option<Tensor>, g: Tensor) {
    *slot = Some(match slot.take() {
        None => g,
        Some(prev) => &prev + &g,
    });
}
