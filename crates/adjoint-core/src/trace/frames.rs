//! The thread-local transform stack: frames, their guards, and which frame owns a tracer.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

use smallvec::SmallVec;

use super::tape::Tape;
use crate::tensor::{Payload, Repr, Tensor, Tracer};

/// What a frame interprets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Jvp,
    Vjp,
    Batch,
    Stage,
}

pub(crate) struct Frame {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) tape: Tape,
    /// The program being recorded, for a `Stage` frame.
    pub(crate) staged: Option<Box<crate::jit::stage::Builder>>,
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
    let staged = (kind == Kind::Stage).then(Box::default);
    let level = STACK.with(|s| {
        let mut s = s.borrow_mut();
        s.push(Frame { id, kind, tape: Tape::default(), staged });
        s.len() - 1
    });
    DEPTH.with(|d| d.set(level + 1));
    FrameGuard { level, id, popped: false }
}

impl FrameGuard {
    /// Pop this frame and return its tape.
    pub(crate) fn pop(self) -> Tape {
        self.pop_frame().tape
    }

    /// Pop this frame and return it.
    pub(crate) fn pop_frame(mut self) -> Frame {
        self.popped = true;
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            let f = s.pop().expect("adjoint: transform stack underflow");
            assert_eq!(f.id, self.id, "adjoint: transforms popped out of order");
            DEPTH.with(|d| d.set(s.len()));
            f
        })
    }

    /// Register a new leaf value on this frame's tape.
    pub(crate) fn new_leaf(&self) -> usize {
        with_tape(self.level, |t| t.push(SmallVec::new(), 1, None, None))
    }

    /// Wrap `primal` as this frame's tracer.
    pub(crate) fn tracer(&self, payload: Payload) -> Tensor {
        Tensor::tracer(self.level, self.id, payload)
    }

    /// If `t` is this frame's tracer, its payload.
    pub(crate) fn own<'a>(&self, t: &'a Tensor) -> Option<&'a Payload> {
        own_payload(t, self.level, self.id)
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

/// Run `f` on the tape of the frame at `level`.
pub(crate) fn with_tape<R>(level: usize, f: impl FnOnce(&mut Tape) -> R) -> R {
    STACK.with(|s| f(&mut s.borrow_mut()[level].tape))
}

/// Run `f` on the program recorded by the `Stage` frame at `level`.
pub(crate) fn with_staged<R>(level: usize, f: impl FnOnce(&mut crate::jit::stage::Builder) -> R) -> R {
    STACK.with(|s| f(s.borrow_mut()[level].staged.as_mut().expect("a Stage frame records a program")))
}

/// The ownership check, the one place it is written: the payload of `t` if it is a tracer of
/// frame (`level`, `id`); lower-level tracers and concrete values are constants to that frame.
#[inline]
pub(crate) fn own_payload(t: &Tensor, level: usize, id: u64) -> Option<&Payload> {
    match &t.0 {
        Repr::Tracer(tr) if tr.level == level && tr.frame == id => Some(&tr.payload),
        _ => None,
    }
}

#[cold]
#[track_caller]
pub(crate) fn dead_tracer(t: &Tracer) -> ! {
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

/// The live frame owning the highest-level tracer among `args`, if any: (level, id, kind).
/// A tracer whose frame is gone panics ([`dead_tracer`]).
#[track_caller]
pub(crate) fn top_of(args: &[&Tensor]) -> Option<(usize, u64, Kind)> {
    let mut best: Option<(usize, u64, Kind)> = None;
    for a in args {
        if let Repr::Tracer(t) = &a.0 {
            if best.is_some_and(|b| b.0 >= t.level) {
                continue;
            }
            let kind = STACK.with(|s| s.borrow().get(t.level).filter(|f| f.id == t.frame).map(|f| f.kind));
            match kind {
                Some(kind) => best = Some((t.level, t.frame, kind)),
                None => dead_tracer(t),
            }
        }
    }
    best
}
