//! `jit`: staging a function into a program once per input signature, optimising it, and
//! running the program on later calls.
//!
//! ## Design
//! - **Staging is one more level** on the transform stack ([`crate::trace`]). `jit` pushes a
//!   `Stage` frame and calls `f` on tracers that carry only an abstract value (shape and
//!   dtype); every `bind` on them appends an equation to an [`Ir`] instead of running a kernel,
//!   with the outputs' types from the primitive's shape rule. Ops whose arguments are all
//!   concrete still run eagerly while tracing: their results enter the program as constants,
//!   like every concrete tensor `f` closes over. A tracer of a transform *enclosing* the `jit`
//!   call that `f` closes over is also kept as a constant, as it is, so that transform still
//!   sees it when the program runs.
//! - **The IR is plain data** ([`ir`]): variables with their [`Aval`](crate::primitive::Aval),
//!   and equations holding an owned copy of their primitive value (parameters included: a
//!   primitive is `Clone + 'static`, see [`PrimitiveValue`](crate::primitive::PrimitiveValue))
//!   and their input variables. [`Ir::check`] re-runs every equation's shape rule; debug
//!   builds run it after staging and after every pass ([`passes`]: constant folding,
//!   algebraic simplification, common-subexpression elimination, dead-code elimination; then,
//!   for the fast plan only, fusion).
//! - **Two ways to run** ([`exec`]). With no transform active at call time (one thread-local
//!   read) the *fast plan* runs: the program after [`passes::fuse`], whose chains of
//!   elementwise ops of one shape are single [`fused::Fused`] kernels — a chunked vector
//!   interpreter over L1-sized blocks that calls the same per-element functions as the
//!   op-by-op kernels, so results are bit-identical — and whose other equations call their
//!   kernels (`eval`) directly on the arrays. Otherwise the program is *replayed through
//!   `bind`*: each equation's primitive is bound again on the values of its inputs, so a
//!   fused equation is never seen by a transform. Under an enclosing `grad`, `jvp` or `vmap`, the replayed binds go
//!   through that transform's level like any other op, so `grad(jit(f))`, `vmap(jit(f))` and
//!   `hessian(jit(f))` compose with no rules of their own and agree bitwise with the eager
//!   computation. `jit(grad(f))` stages the backward pass too, since it is made of ordinary
//!   ops. Custom rules and `checkpoint` are primitives, staged and replayed as such.
//! - **Caching**: the first call per signature — the input's tree structure (leaf names, see
//!   [`Params::for_each_named`]) and every leaf's shape and dtype — traces and optimises;
//!   later calls cost a hash lookup of the signature, then the replay. [`jit_stats`] counts
//!   traces and cache hits per jitted function; more than [`RETRACE_WARNING`] traces of one
//!   function print a warning once.
//!
//! Inside the function a staged tensor has no value: `item()`, `to_vec()` and anything else
//! that reads one panic, naming the accessor and the caller's line.
//!
//! **Limits of this version.** Non-tensor parts of the input (fields marked
//! `#[params(skip)]`) are not part of the signature: they are read once, when a signature is
//! first traced, and the result's non-tensor parts are those of that trace. A jitted
//! function holds `Rc`s (primitives may own user closures), so it is neither `Send` nor `Sync`.
//! Structured control flow is staged: [`scan`](crate::scan), [`fori_loop_t`](crate::fori_loop_t),
//! [`while_loop`](crate::while_loop) and [`cond`](crate::cond) each record one equation whose
//! primitive holds the body's program (see [`crate::control`]), so tracing cost does not
//! depend on the trip count; `fori_loop` (index as a Rust `usize`) and Rust `for`/`if` on
//! values are still unrolled or refused at trace time. `jit(grad(f))` through a `while_loop`
//! panics (the trip count reverse mode needs is unknown while staging; `grad(jit(f))` works).
//! Loop bodies get the same passes; a loop whose values are tiny runs as one scalar register
//! program ([`small`]), itself folded, de-duplicated and pruned per scalar element. Fusion
//! covers float elementwise ops whose operands broadcast to the group's shape, in any layout:
//! strided and broadcast inputs are read in place, block by block ([`strided`]). Reductions are
//! not fused into the group (a reduction's summation order would change). Intermediates are
//! dropped after their last reader and their buffers reused through the buffer cache; a fused
//! kernel may write an output into the buffer of an intermediate that dies at it (a single
//! large elementwise op, such as a bias add or ReLU's gradient, becomes a kernel for that).
//! The memory plan ([`memplan`]) lets intermediates of different sizes whose lifetimes do not
//! overlap share buffers, so the cache holds one buffer per planned object instead of one per
//! distinct size: on W3's training step the jitted peak RSS is 41 MB against eager's 51. [`jit`]
//! borrows its input, so the caller's buffers are never written; [`jit_donate`] takes it by
//! value (JAX's `donate_argnums`), and then an input buffer nobody else holds is dropped or
//! overwritten at its last reader — an optimizer step updates parameters and moments in place.
//! Hot programs run as machine code ([`native`], through Cranelift): a scalarised program as
//! straight-line scalar code (on `W5_arm_bptt` 2–3× faster than the scalar interpreter, which
//! spends a dispatch and a register-file load and store per instruction), a fused kernel of
//! exact operations as one vector pass per block (its interpreter makes one pass per op);
//! both give the interpreters' bits.

pub mod exec;
pub mod fused;
pub mod ir;
pub(crate) mod memplan;
pub mod native;
pub mod passes;
pub mod small;
pub(crate) mod stage;
pub mod strided;

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::Location;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub use ir::{Eqn, Ir, Var};
pub use native::{native_stats, NativeStats, NATIVE_THRESHOLD};

use crate::params::Params;
use crate::primitive::Aval;
use exec::Executable;

/// More traces than this for one jitted function print a warning (once): its inputs change
/// shape, dtype or structure from call to call, so it keeps recompiling.
pub const RETRACE_WARNING: usize = 8;

/// The program `f` stages at `p`'s signature, as traced (before any pass), for reading.
///
/// ```
/// use adjoint_core::{jit::make_ir, Tensor};
/// let ir = make_ir(|x: &Tensor| x.exp().sum())(&Tensor::zeros(&[3]).to_f64());
/// assert_eq!(ir.to_string(), "{ lambda ; a:f64[3]. let\n    b:f64[3] = exp a\n    \
///                             c:f64[] = reduce_sum[axes: [0], keepdim: false] b\n  in (c) }");
/// ```
#[track_caller]
pub fn make_ir<P: Params, O: Params, F: Fn(&P) -> O>(f: F) -> impl Fn(&P) -> Ir {
    move |p: &P| stage::trace(&f, p).0
}

/// Counters of one jitted function, as [`jit_stats`] reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitStats {
    /// Where `jit` was called.
    pub location: &'static Location<'static>,
    /// Calls that traced (a signature not seen before).
    pub traces: usize,
    /// Calls that ran a cached program.
    pub hits: usize,
}

struct Counters {
    location: &'static Location<'static>,
    traces: AtomicUsize,
    hits: AtomicUsize,
    warned: AtomicBool,
}

/// Every jitted function still alive, in creation order (dead ones are pruned on registration).
static REGISTRY: Mutex<Vec<Weak<Counters>>> = Mutex::new(Vec::new());

fn register(location: &'static Location<'static>) -> Arc<Counters> {
    let c = Arc::new(Counters {
        location,
        traces: AtomicUsize::new(0),
        hits: AtomicUsize::new(0),
        warned: AtomicBool::new(false),
    });
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.retain(|w| w.strong_count() > 0);
    r.push(Arc::downgrade(&c));
    c
}

/// Traces and cache hits of every jitted function still alive (on any thread), in the order
/// they were made.
///
/// ```
/// use adjoint_core::{jit::{jit, jit_stats}, Tensor};
/// let f = jit(|x: &Tensor| x * 2.0);
/// let line = line!() - 1;
/// f(&Tensor::zeros(&[2]));
/// f(&Tensor::ones(&[2]));
/// f(&Tensor::zeros(&[5])); // a new shape: traced again
/// let s = jit_stats().into_iter().find(|s| s.location.line() == line && s.location.file() == file!()).unwrap();
/// assert_eq!((s.traces, s.hits), (2, 1));
/// ```
pub fn jit_stats() -> Vec<JitStats> {
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.iter()
        .filter_map(|w| w.upgrade())
        .map(|c| JitStats {
            location: c.location,
            traces: c.traces.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
        })
        .collect()
}

/// What a compiled program is cached under: the input's tree structure (its leaf names) and
/// every leaf's abstract value.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Signature {
    names: String,
    avals: Vec<Aval>,
}

impl Signature {
    fn of<P: Params>(p: &P) -> Signature {
        let mut names = String::new();
        let mut avals = Vec::new();
        p.for_each_named("", &mut |n, t| {
            names.push_str(n);
            names.push('\0');
            avals.push(Aval::of(t));
        });
        Signature { names, avals }
    }
}

/// A cached program and the structure of its result.
struct Compiled<O> {
    exe: Executable,
    template: O,
}

/// Compile `f`: the returned function has the same signature and results, and runs a program
/// staged once per input signature (tree structure, shapes, dtypes). It composes with every
/// transform, in both orders: `jit(grad(f))` stages the backward pass too, and `grad(jit(f))`,
/// `jvp`, `hessian` and `vmap(jit(f))` transform the staged program as it runs. See the
/// [module docs](self) for the design and its limits.
///
/// ```
/// use adjoint_core::{grad, jit::jit, Tensor};
/// let f = |x: &Tensor| (x.sin() * x).sum();
/// let x = Tensor::from_vec(vec![0.5f64, 1.0, 2.0], &[3]);
/// assert_eq!(jit(f)(&x).item(), f(&x).item());
/// assert_eq!(jit(grad(f))(&x).to_vec::<f64>(), grad(f)(&x).to_vec::<f64>());
/// assert_eq!(grad(jit(f))(&x).to_vec::<f64>(), grad(f)(&x).to_vec::<f64>());
/// ```
#[track_caller]
pub fn jit<P: Params, O: Params, F: Fn(&P) -> O>(f: F) -> impl Fn(&P) -> O {
    let cache = Cache::new(f, Location::caller());
    move |p: &P| {
        let compiled = cache.compiled(p);
        let outs = compiled.exe.run(&p.leaves());
        compiled.template.with_leaves(&outs)
    }
}

/// [`jit`] for a function whose input the caller gives up: the returned function takes `P` by
/// value, and the compiled program may write its outputs into the input's buffers — JAX's
/// `donate_argnums` for every argument. An optimizer step `state → state` then updates its
/// parameters and moments in place instead of holding two copies during the call. A buffer is
/// reused only when nothing else holds it (a clone kept by the caller, a constant of the
/// program): donation never changes results, only where they are written.
///
/// ```
/// use adjoint_core::{jit::jit_donate, Tensor};
/// let step = jit_donate(|s: &(Tensor, Tensor)| (&s.0 - &s.1 * 0.5, s.1.clone()));
/// let mut state = (Tensor::from_vec(vec![1.0f64, 2.0], &[2]), Tensor::from_vec(vec![2.0f64, 2.0], &[2]));
/// for _ in 0..2 {
///     state = step(state);
/// }
/// assert_eq!(state.0.to_vec::<f64>(), vec![-1.0, 0.0]);
/// ```
#[track_caller]
pub fn jit_donate<P: Params, O: Params, F: Fn(&P) -> O>(f: F) -> impl Fn(P) -> O {
    let cache = Cache::new(f, Location::caller());
    move |p: P| {
        let compiled = cache.compiled(&p);
        let leaves = p.leaves();
        drop(p);
        let outs = compiled.exe.run_owned(leaves);
        compiled.template.with_leaves(&outs)
    }
}

/// A jitted function's programs, one per input signature, and its counters.
struct Cache<P, O, F> {
    f: F,
    counters: Arc<Counters>,
    programs: RefCell<HashMap<Signature, Rc<Compiled<O>>>>,
    _input: std::marker::PhantomData<fn(&P)>,
}

impl<P: Params, O: Params, F: Fn(&P) -> O> Cache<P, O, F> {
    fn new(f: F, location: &'static Location<'static>) -> Self {
        Cache {
            f,
            counters: register(location),
            programs: RefCell::new(HashMap::new()),
            _input: std::marker::PhantomData,
        }
    }

    /// The program for `p`'s signature: cached, or traced and optimised now.
    fn compiled(&self, p: &P) -> Rc<Compiled<O>> {
        let sig = Signature::of(p);
        let hit = self.programs.borrow().get(&sig).cloned();
        if let Some(c) = hit {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return c;
        }
        let (ir, template) = stage::trace(&self.f, p);
        let c = Rc::new(Compiled { exe: Executable::new(passes::optimize(ir)), template });
        self.programs.borrow_mut().insert(sig, c.clone());
        let n = self.counters.traces.fetch_add(1, Ordering::Relaxed) + 1;
        if n > RETRACE_WARNING && !self.counters.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "adjoint: jit: the function jitted at {} has been traced {n} times (once per \
                 new input shape, dtype or structure); calls with varying shapes recompile \
                 every time",
                self.counters.location
            );
        }
        c
    }
}
