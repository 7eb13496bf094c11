//! Structured control flow over `Params` values: [`scan`] (and [`scan_with`], choosing a
//! [`Checkpoint`] policy), [`fori_loop`] / [`fori_loop_t`], [`while_loop`] and [`cond`], as
//! JAX's `lax` namesakes.
//!
//! ## Design
//! - **Eager when nothing is traced.** With no transform active the loops are plain Rust loops
//!   over ordinary ops (and `cond` calls one branch): no tracing cost, and the body may read
//!   values.
//! - **Staged once under a transform.** Otherwise the body is traced *once*, at one step's
//!   abstract values, into a program (`body.rs`, with `jit`'s staging level), and one
//!   primitive is bound: [`Scan`](scan::Scan), [`While`](while_loop::While) or
//!   [`Cond`](cond::Cond) (one file each, with all their rules). Under `jit` that is one
//!   equation, so compile time does not depend on the trip count; under `grad`, `jvp` and
//!   `vmap` the primitive's rules transform the body program once (the derived bodies are
//!   again programs of primitives, so second order and every nesting work). A staged body must
//!   not read values (`item()`) or branch on them in Rust, as under `jit`.
//! - **Closed-over tracers become operands.** Tracers of enclosing transforms that a body
//!   closes over are hoisted out of the body's constants into explicit operands, so
//!   `grad` with respect to a closed-over value follows the loop; concrete constants stay in
//!   the program.
//! - **Reverse mode through `scan`** stores residual carries according to a [`Checkpoint`]
//!   policy: every step's carry, or every `k`-th one (the steps of a segment are recomputed
//!   in the backward pass, as a nested scan), or every `⌈√N⌉`-th one.
//! - **Bodies are optimised and, when tiny, scalarised.** A body goes through `jit`'s passes
//!   when it is built (it runs once per trip). A body whose values all have at most
//!   [`SMALL_LIMIT`](crate::jit::small::SMALL_LIMIT) elements runs as one scalar register
//!   program for the whole loop ([`crate::jit::small`]): no allocation or reference count per
//!   step, data movement resolved to register aliases. For such bodies reverse mode also
//!   stores what the backward step reads of the forward step (JAX's partial evaluation of
//!   `scan`) instead of recomputing it, packed into one stacked vector (`body::split_residuals`);
//!   larger bodies store only the carries and recompute.
//! - **Reverse mode through `while_loop`** works when the trip count is known: the forward
//!   pass records it, then runs as a `scan` of that many steps (the loop body is computed
//!   twice). Under `jit(grad(…))` the count is unknown while staging and the call panics with
//!   a message saying so; `grad(jit(…))` works (JAX refuses both).
//! - **`fori_loop`** keeps its eager `Fn(usize, &C) -> C` signature (the body may use the index
//!   as a Rust integer, so it is not staged: `jit` unrolls it); [`fori_loop_t`] hands the body
//!   the index as a 0-d `i64` tensor and is a staged `scan`.

pub(crate) mod body;
pub mod cond;
pub mod scan;
pub mod while_loop;

use crate::params::Params;
use crate::primitive::Aval;
use crate::tensor::Tensor;
use crate::trace::{bind_multi, depth};

/// `f(hi - 1, … f(lo + 1, f(lo, init)))`: the body applied for `i` in `lo..hi` to a carried
/// value (JAX's `fori_loop`). An empty range returns `init`.
///
/// ```
/// use adjoint_core::{control::fori_loop, grad, Tensor};
/// // x ↦ x·2⁵, and its derivative 32.
/// let f = |x: &Tensor| fori_loop(0, 5, |_, y: &Tensor| y * 2.0, x.clone());
/// assert_eq!(f(&Tensor::scalar(1.5f64)).item(), 48.0);
/// assert_eq!(grad(f)(&Tensor::scalar(1.5f64)).item(), 32.0);
/// ```
pub fn fori_loop<C: Params>(lo: usize, hi: usize, f: impl Fn(usize, &C) -> C, init: C) -> C {
    let mut carry = init;
    for i in lo..hi {
        carry = f(i, &carry);
    }
    carry
}

/// Scan `f` over axis 0 of every leaf of `xs`, threading a carry: returns the last carry and
/// every step's `y`, each leaf stacked on a new axis 0 (JAX's `lax.scan`). All leaves of `xs`
/// must have the same length along axis 0. With zero steps, `f` is called once on zeros of one
/// step's shapes, only to learn the shapes of `y` (its leaves come back with length 0).
///
/// ```
/// use adjoint_core::{control::scan, Tensor};
/// // Running sums: carry the total, emit it at each step.
/// let xs = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]);
/// let (total, ys) = scan(|c: &Tensor, x: &Tensor| { let s = c + x; (s.clone(), s) }, &Tensor::scalar(0.0f64), &xs);
/// assert_eq!((total.item(), ys.to_vec::<f64>()), (6.0, vec![1.0, 3.0, 6.0]));
/// ```
///
/// Under a transform the body is staged once as a [`Scan`](scan::Scan) (see the module docs);
/// reverse mode stores every step's carry. [`scan_with`] chooses another [`Checkpoint`] policy.
#[track_caller]
pub fn scan<C: Params + Clone, X: Params, Y: Params>(
    f: impl Fn(&C, &X) -> (C, Y),
    init: &C,
    xs: &X,
) -> (C, Y) {
    scan_with(Checkpoint::Every, f, init, xs)
}

/// Which carries reverse mode through a [`scan`] stores for the backward pass.
///
/// `Every` stores all `N` (memory `N` carries, no recomputation); `EveryK(k)` stores the carry
/// at the start of each `k`-step segment and recomputes the segment's carries in the backward
/// pass (memory about `N/k + k` carries, one extra forward pass); `Sqrt` is `EveryK(⌈√N⌉)`
/// (memory about `2√N` carries). Forward mode, batching and evaluation ignore the policy.
///
/// ```
/// use adjoint_core::control::Checkpoint;
/// assert_eq!(Checkpoint::Sqrt.segment(10_000), Some(100));
/// assert_eq!(Checkpoint::Every.segment(10_000), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Checkpoint {
    /// Store every step's carry.
    #[default]
    Every,
    /// Store every `k`-th carry and recompute the others.
    EveryK(usize),
    /// Store every `⌈√N⌉`-th carry.
    Sqrt,
}

impl Checkpoint {
    /// The segment length for a scan of `n` steps, `None` when every carry is stored.
    pub fn segment(self, n: usize) -> Option<usize> {
        match self {
            Checkpoint::Every => None,
            Checkpoint::EveryK(k) => Some(k.max(1)),
            Checkpoint::Sqrt => Some(((n as f64).sqrt().ceil() as usize).max(1)),
        }
    }
}

/// [`scan`] with a [`Checkpoint`] policy for reverse mode.
///
/// ```
/// use adjoint_core::{control::{scan_with, Checkpoint}, grad, Tensor};
/// // The gradient of Σ_i c_i with c_{i+1} = sin(c_i) + x_i, storing every 4th carry.
/// let xs = Tensor::linspace(0.0, 1.0, 10).to_f64();
/// let loss = |c0: &Tensor, policy| scan_with(policy, |c: &Tensor, x: &Tensor| { let n = c.sin() + x; (n.clone(), n) }, c0, &xs).1.sum();
/// let c0 = Tensor::scalar(0.3f64);
/// let a = grad(|c: &Tensor| loss(c, Checkpoint::Every))(&c0).item();
/// let b = grad(|c: &Tensor| loss(c, Checkpoint::EveryK(4)))(&c0).item();
/// assert!((a - b).abs() < 1e-12);
/// ```
#[track_caller]
pub fn scan_with<C: Params + Clone, X: Params, Y: Params>(
    policy: Checkpoint,
    f: impl Fn(&C, &X) -> (C, Y),
    init: &C,
    xs: &X,
) -> (C, Y) {
    let n = steps(xs);
    if depth() > 0 {
        return scan_staged(policy, f, init, xs, n);
    }
    let mut carry = init.clone();
    let mut ys: Vec<Y> = Vec::with_capacity(n);
    for i in 0..n {
        let x = xs.map_tensors(&mut |t| t.narrow(0, i, 1).squeeze(0));
        let (c, y) = f(&carry, &x);
        carry = c;
        ys.push(y);
    }
    let Some(first) = ys.first() else {
        let x = xs.map_tensors(&mut |t| Tensor::full_of(&t.shape()[1..], 0.0, t.dtype()));
        let y = f(&carry, &x).1;
        let empty = y.map_tensors(&mut |t| {
            let mut s = vec![0];
            s.extend_from_slice(t.shape());
            Tensor::full_of(&s, 0.0, t.dtype())
        });
        return (carry, empty);
    };
    let leaves: Vec<Vec<Tensor>> = ys.iter().map(|y| y.leaves()).collect();
    let mut k = 0;
    let stacked = first.map_tensors(&mut |_| {
        let parts: Vec<&Tensor> = leaves.iter().map(|l| &l[k]).collect();
        k += 1;
        Tensor::stack(&parts, 0)
    });
    (carry, stacked)
}

/// The common length along axis 0 of the leaves of `xs`.
#[track_caller]
fn steps<X: Params>(xs: &X) -> usize {
    let mut n: Option<usize> = None;
    xs.for_each_tensor(&mut |t| {
        let len = match t.shape().first() {
            Some(&d) => d,
            None => crate::primitive::misuse(
                "scan",
                "a leaf of xs is a scalar; every leaf needs an axis 0 to scan over".into(),
            ),
        };
        match n {
            Some(m) if m != len => crate::primitive::misuse(
                "scan",
                format!("the leaves of xs have different lengths along axis 0 ({m} and {len})"),
            ),
            _ => n = Some(len),
        }
    });
    n.unwrap_or_else(|| crate::primitive::misuse("scan", "xs has no tensor leaves to scan over".into()))
}

/// [`scan_with`] under a transform: the body traced once and bound as a [`scan::Scan`].
#[track_caller]
fn scan_staged<C: Params + Clone, X: Params, Y: Params>(
    policy: Checkpoint,
    f: impl Fn(&C, &X) -> (C, Y),
    init: &C,
    xs: &X,
    n: usize,
) -> (C, Y) {
    let init_l = init.leaves();
    let xs_l = xs.leaves();
    let nc = init_l.len();
    let c_avals: Vec<Aval> = init_l.iter().map(Aval::of).collect();
    let mut avals = c_avals.clone();
    avals.extend(xs_l.iter().map(|t| Aval::new(&t.shape()[1..], t.dtype())));
    let mut y_template: Option<Y> = None;
    let (ir, hoisted) = body::trace_flat(&avals, |v| {
        let c = init.with_leaves(&v[..nc]);
        let x = xs.with_leaves(&v[nc..]);
        let (c2, y) = f(&c, &x);
        let mut out = c2.leaves();
        out.extend(y.leaves());
        y_template = Some(y.map_tensors(&mut |_| Tensor::scalar(0.0f32)));
        out
    });
    let gives: Vec<Aval> = ir.outputs[..nc].iter().map(|&v| ir.avals[v].clone()).collect();
    scan::check_carry("scan", &c_avals, &gives);
    let prim = scan::Scan {
        body: body::Body::new(ir),
        consts: hoisted.len(),
        carry: nc,
        length: n,
        reverse: false,
        policy,
    };
    let mut ops: Vec<&Tensor> = hoisted.iter().collect();
    ops.extend(init_l.iter());
    ops.extend(xs_l.iter());
    let outs = bind_multi(&prim, &ops);
    let y = y_template.expect("the body ran").with_leaves(&outs[nc..]);
    (init.with_leaves(&outs[..nc]), y)
}

/// [`fori_loop`] with the index as a 0-d `i64` tensor, staged once under a transform (a
/// [`scan`] over `lo..hi` with no outputs), so `jit` records one equation whatever `hi - lo`.
///
/// ```
/// use adjoint_core::{control::fori_loop_t, grad, Tensor};
/// // Σ_{i<4} (i+1)·x by a loop: value 10x, derivative 10.
/// let f = |x: &Tensor| fori_loop_t(0, 4, |i, s: &Tensor| s + (i.to_f64() + 1.0) * x, Tensor::scalar(0.0f64));
/// assert_eq!(f(&Tensor::scalar(2.0f64)).item(), 20.0);
/// assert_eq!(grad(f)(&Tensor::scalar(2.0f64)).item(), 10.0);
/// ```
#[track_caller]
pub fn fori_loop_t<C: Params + Clone>(lo: i64, hi: i64, f: impl Fn(&Tensor, &C) -> C, init: C) -> C {
    if hi <= lo {
        return init;
    }
    let idx = Tensor::from_vec((lo..hi).collect::<Vec<i64>>(), &[(hi - lo) as usize]);
    scan(|c: &C, i: &Tensor| (f(i, c), ()), &init, &idx).0
}

/// Iterations after which an eagerly run [`while_loop`] gives up (a panic naming the loop).
pub const WHILE_LOOP_MAX_ITERATIONS: usize = 100_000_000;

/// `while cond(c) { c = body(c) }` on a carried value (JAX's `lax.while_loop`). `cond` returns
/// a 0-d tensor (bool, or any dtype: nonzero is true).
///
/// Under a transform both functions are staged once as a [`While`](while_loop::While):
/// forward mode and `vmap` work everywhere (under `vmap` the loop runs until every example is
/// done, finished examples keeping their carry); reverse mode records the trip count (see the
/// module docs). More than [`WHILE_LOOP_MAX_ITERATIONS`] iterations panic.
///
/// ```
/// use adjoint_core::{control::while_loop, grad, Tensor};
/// // Double x until it exceeds 10: 1.5 → 12 (three doublings), derivative 8.
/// let f = |x: &Tensor| while_loop(|y: &Tensor| y.lt_scalar(10.0), |y: &Tensor| y * 2.0, x.clone());
/// assert_eq!(f(&Tensor::scalar(1.5f64)).item(), 12.0);
/// assert_eq!(grad(f)(&Tensor::scalar(1.5f64)).item(), 8.0);
/// ```
#[track_caller]
pub fn while_loop<C: Params + Clone>(cond: impl Fn(&C) -> Tensor, body: impl Fn(&C) -> C, init: C) -> C {
    if depth() == 0 {
        let mut c = init;
        let mut n = 0usize;
        while truth("while_loop", &cond(&c)) {
            n += 1;
            if n > WHILE_LOOP_MAX_ITERATIONS {
                crate::primitive::misuse(
                    "while_loop",
                    format!(
                        "more than {WHILE_LOOP_MAX_ITERATIONS} iterations; the condition never became false"
                    ),
                );
            }
            c = body(&c);
        }
        return c;
    }
    let init_l = init.leaves();
    let c_avals: Vec<Aval> = init_l.iter().map(Aval::of).collect();
    let (cir, ch) = body::trace_flat(&c_avals, |v| vec![cond(&init.with_leaves(v))]);
    let pa = &cir.avals[cir.outputs[0]];
    if !pa.shape.is_empty() {
        crate::primitive::misuse("while_loop", format!("the condition returns {pa}, not a 0-d tensor"));
    }
    let (bir, bh) = body::trace_flat(&c_avals, |v| body(&init.with_leaves(v)).leaves());
    let gives: Vec<Aval> = bir.outputs.iter().map(|&v| bir.avals[v].clone()).collect();
    scan::check_carry("while_loop", &c_avals, &gives);
    let prim = while_loop::While {
        cond: body::Body::new(cir),
        body: body::Body::new(bir),
        cconsts: ch.len(),
        bconsts: bh.len(),
    };
    let mut ops: Vec<&Tensor> = ch.iter().collect();
    ops.extend(bh.iter());
    ops.extend(init_l.iter());
    let outs = bind_multi(&prim, &ops);
    init.with_leaves(&outs[..init_l.len()])
}

/// `on_true(operands)` if `pred` (a 0-d tensor, nonzero is true) else `on_false(operands)`
/// (JAX's `lax.cond`). Both branches must return the same structure, shapes and dtypes.
///
/// Under a transform both branches are staged once as a [`Cond`](cond::Cond) and only one
/// runs; under `vmap` with a batched predicate both run and the results are selected per
/// example.
///
/// ```
/// use adjoint_core::{control::cond, grad, Tensor};
/// let f = |x: &Tensor| cond(&x.gt_scalar(0.0), |x: &Tensor| x * x, |x: &Tensor| -x, x);
/// assert_eq!((f(&Tensor::scalar(3.0f64)).item(), f(&Tensor::scalar(-3.0f64)).item()), (9.0, 3.0));
/// assert_eq!(grad(f)(&Tensor::scalar(3.0f64)).item(), 6.0);
/// assert_eq!(grad(f)(&Tensor::scalar(-3.0f64)).item(), -1.0);
/// ```
#[track_caller]
pub fn cond<O: Params, R: Params>(
    pred: &Tensor,
    on_true: impl Fn(&O) -> R,
    on_false: impl Fn(&O) -> R,
    operands: &O,
) -> R {
    if pred.rank() != 0 {
        crate::primitive::misuse(
            "cond",
            format!("the predicate has shape {:?}, not a 0-d tensor", pred.shape()),
        );
    }
    let leaves = operands.leaves();
    let mut refs: Vec<&Tensor> = vec![pred];
    refs.extend(leaves.iter());
    if depth() == 0 || crate::trace::top_of(&refs).is_none() {
        return if truth("cond", pred) { on_true(operands) } else { on_false(operands) };
    }
    let avals: Vec<Aval> = leaves.iter().map(Aval::of).collect();
    let mut template: Option<R> = None;
    let (tir, th) = body::trace_flat(&avals, |v| {
        let r = on_true(&operands.with_leaves(v));
        template = Some(r.map_tensors(&mut |_| Tensor::scalar(0.0f32)));
        r.leaves()
    });
    let (fir, fh) = body::trace_flat(&avals, |v| on_false(&operands.with_leaves(v)).leaves());
    let ta: Vec<Aval> = tir.outputs.iter().map(|&v| tir.avals[v].clone()).collect();
    let fa: Vec<Aval> = fir.outputs.iter().map(|&v| fir.avals[v].clone()).collect();
    if ta != fa {
        let show = |v: &[Aval]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
        crate::primitive::misuse(
            "cond",
            format!(
                "on_true returns [{}] but on_false returns [{}]; both branches must agree",
                show(&ta),
                show(&fa)
            ),
        );
    }
    let prim = cond::Cond::new(tir, th.len(), fir, fh.len());
    let mut ops: Vec<&Tensor> = vec![pred];
    ops.extend(th.iter());
    ops.extend(fh.iter());
    ops.extend(leaves.iter());
    let outs = bind_multi(&prim, &ops);
    template.expect("the branch ran").with_leaves(&outs)
}

/// The truth of a concrete 0-d predicate.
#[track_caller]
fn truth(op: &str, p: &Tensor) -> bool {
    if p.rank() != 0 {
        crate::primitive::misuse(op, format!("the condition has shape {:?}, not a 0-d tensor", p.shape()));
    }
    p.item() != 0.0
}
