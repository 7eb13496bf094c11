//! The user-facing transforms: `grad`, `value_and_grad`, `vjp`, `jvp`, `jacfwd`, `jacrev`,
//! `hessian`, `hvp` and `stop_gradient`. The Jacobians are one batched pass each: `vmap` over
//! the basis vectors rather than a loop.

use std::cell::RefCell;
use std::panic::Location;
use std::rc::Rc;

use adjoint_tensor::DType;

use crate::params::Params;
use crate::tensor::{Payload, Repr, Tensor};
use crate::trace::{push_frame, FrameGuard, Kind};
use crate::vmap::{vmap_call, Axes};

/// The location a transform was built (or, for direct calls such as `vjp`, called) at: its
/// misuse panics name it, not a line inside this file.
type Loc = &'static Location<'static>;

// Each public transform passes its own name (`what`) and location down to the helpers it is
// made of, so that `hessian` misuse says `hessian` and the user's line, not `grad` or `jvp`.

fn check_float(t: &Tensor, what: &str, loc: Loc) {
    if !t.dtype().is_float() {
        panic!(
            "adjoint: {what}: cannot differentiate with respect to a {} tensor of shape {:?}; only \
             f32/f64 inputs have derivatives (mark integer fields #[params(skip)] or pass them as \
             captured constants) (at {})",
            t.dtype(),
            t.shape(),
            loc
        );
    }
}

/// Strip this frame's tracers from a value (their primal stays).
fn strip<P: Params>(g: &FrameGuard, p: &P) -> P {
    p.map_tensors(&mut |t| match g.own(t) {
        Some(pl) => pl.primal().clone(),
        None => t.clone(),
    })
}

/// Run `f` under a new reverse-mode frame. Returns the outputs (primal), the value ids of the
/// outputs on the tape, the leaf value ids and the tape.
fn trace_vjp<P: Params, O: Params>(
    f: impl FnOnce(&P) -> O,
    primals: &P,
    what: &str,
    loc: Loc,
) -> (O, Vec<Option<usize>>, Vec<usize>, crate::trace::Tape) {
    let guard = push_frame(Kind::Vjp);
    let mut leaf_ids = Vec::new();
    let traced = primals.map_tensors(&mut |t| {
        check_float(t, what, loc);
        let v = guard.new_leaf();
        leaf_ids.push(v);
        guard.tracer(Payload::Vjp { primal: t.clone(), value: v })
    });
    let out = f(&traced);
    drop(traced);
    let mut out_ids = Vec::new();
    let out_primal = out.map_tensors(&mut |t| match guard.own(t) {
        Some(Payload::Vjp { primal, value }) => {
            out_ids.push(Some(*value));
            primal.clone()
        }
        _ => {
            out_ids.push(None);
            t.clone()
        }
    });
    drop(out);
    let tape = guard.pop();
    (out_primal, out_ids, leaf_ids, tape)
}

fn check_scalar(out: &Tensor, what: &str, loc: Loc) {
    if out.numel() != 1 {
        panic!(
            "adjoint: {what} needs a function with a scalar output (one element), but it returned \
             shape {:?}; use `vjp` or `jacrev` for non-scalar outputs (at {})",
            out.shape(),
            loc
        );
    }
    if !out.dtype().is_float() {
        panic!(
            "adjoint: {what} needs a float output, but the function returned {} (at {})",
            out.dtype(),
            loc
        );
    }
}

fn grads_from(
    primals: &[(Vec<usize>, DType)],
    cts: &mut [Option<Tensor>],
    leaf_ids: &[usize],
) -> Vec<Tensor> {
    leaf_ids
        .iter()
        .zip(primals)
        .map(|(&v, (shape, dtype))| cts[v].take().unwrap_or_else(|| Tensor::full_of(shape, 0.0, *dtype)))
        .collect()
}

fn shapes_of<P: Params>(p: &P) -> Vec<(Vec<usize>, DType)> {
    let mut v = Vec::new();
    p.for_each_tensor(&mut |t| v.push((t.shape().to_vec(), t.dtype())));
    v
}

fn value_and_grad_impl<P: Params, A: Params>(
    f: impl FnOnce(&P) -> (Tensor, A),
    p: &P,
    what: &str,
    loc: Loc,
) -> (Tensor, A, P) {
    let ((out, aux), out_ids, leaf_ids, mut tape) = trace_vjp(f, p, what, loc);
    check_scalar(&out, what, loc);
    let mut cts = match out_ids[0] {
        Some(v) => tape.backward(vec![(v, out.ones_like())], true),
        None => Vec::new(),
    };
    cts.resize(tape_values(&leaf_ids), None);
    let grads = grads_from(&shapes_of(p), &mut cts, &leaf_ids);
    (out, aux, p.with_leaves(&grads))
}

fn tape_values(leaf_ids: &[usize]) -> usize {
    leaf_ids.iter().max().map_or(0, |m| m + 1)
}

/// The gradient of a scalar function: `grad(f)(&p)` has the structure of `p`.
///
/// `f` is ordinary Rust: loops, branches on values (`x.item() > 0.0`), recursion and early
/// returns are differentiated along the path that executed.
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// let df = grad(|x: &Tensor| (x * x * x).sum());          // 3x²
/// let ddf = grad(move |x: &Tensor| df(x).sum());          // 6x
/// assert_eq!(ddf(&Tensor::scalar(2.0f64)).item(), 12.0);
/// ```
#[track_caller]
pub fn grad<P: Params, F: Fn(&P) -> Tensor>(f: F) -> impl Fn(&P) -> P {
    grad_at(f, "grad", Location::caller())
}

fn grad_at<P: Params, F: Fn(&P) -> Tensor>(f: F, what: &'static str, loc: Loc) -> impl Fn(&P) -> P {
    move |p: &P| value_and_grad_impl(|q| (f(q), ()), p, what, loc).2
}

/// `(f(p), grad(f)(p))` in one pass.
///
/// ```
/// use adjoint_core::{value_and_grad, Tensor};
/// let (v, g) = value_and_grad(|x: &Tensor| x.exp().sum())(&Tensor::scalar(0.0f64));
/// assert_eq!((v.item(), g.item()), (1.0, 1.0));
/// ```
#[track_caller]
pub fn value_and_grad<P: Params, F: Fn(&P) -> Tensor>(f: F) -> impl Fn(&P) -> (Tensor, P) {
    let loc = Location::caller();
    move |p: &P| {
        let (v, (), g) = value_and_grad_impl(|q| (f(q), ()), p, "value_and_grad", loc);
        (v, g)
    }
}

/// Like [`value_and_grad`] for `f` returning `(loss, aux)`; aux (metrics, predictions, new
/// state) comes back as plain values: `((loss, aux), grad)`.
///
/// ```
/// use adjoint_core::{value_and_grad_with_aux, Tensor};
/// let f = |x: &Tensor| { let y = x * 2.0; (y.sum(), y) };
/// let ((loss, aux), g) = value_and_grad_with_aux(f)(&Tensor::scalar(3.0f64));
/// assert_eq!((loss.item(), aux.item(), g.item()), (6.0, 6.0, 2.0));
/// ```
#[track_caller]
pub fn value_and_grad_with_aux<P: Params, A: Params, F: Fn(&P) -> (Tensor, A)>(
    f: F,
) -> impl Fn(&P) -> ((Tensor, A), P) {
    let loc = Location::caller();
    move |p: &P| {
        let (v, aux, g) = value_and_grad_impl(&f, p, "value_and_grad_with_aux", loc);
        ((v, aux), g)
    }
}

/// [`value_and_grad`] that hands each leaf's gradient to `on_ready(i, g)` during the backward
/// sweep, as soon as it is final (`i`: the leaf's index in [`Params::leaves`] order; a leaf the
/// output does not depend on gets zeros). A leaf read only early in `f` — the first layer of a
/// network — is final only at the end of the sweep, while the last layer's is final almost at
/// once, so the caller can start using those (data-parallel training starts their allreduce)
/// while the sweep goes on. Each leaf is reported exactly once; the full gradient is returned
/// as well.
///
/// ```
/// use adjoint_core::{value_and_grad_with_hook, Tensor};
/// let (a, b) = (Tensor::scalar(2.0f64), Tensor::scalar(3.0f64));
/// let mut order = Vec::new();
/// let f = |p: &(Tensor, Tensor)| ((&p.0 * 5.0).exp() * &p.1).sum();
/// let (_, g) = value_and_grad_with_hook(f, &(a, b), &mut |i, g| order.push((i, g.item())));
/// assert_eq!(order.len(), 2);
/// assert_eq!(order[0].0, 1); // b's gradient is final first: its reader is the last op
/// assert_eq!(order[1], (0, g.0.item()));
/// ```
#[track_caller]
pub fn value_and_grad_with_hook<P: Params, F: FnOnce(&P) -> Tensor>(
    f: F,
    p: &P,
    on_ready: &mut dyn FnMut(usize, &Tensor),
) -> (Tensor, P) {
    let (what, loc) = ("value_and_grad_with_hook", Location::caller());
    let (out, out_ids, leaf_ids, mut tape) = trace_vjp(f, p, what, loc);
    check_scalar(&out, what, loc);
    let shapes = shapes_of(p);
    let zeros = |i: usize| Tensor::full_of(&shapes[i].0, 0.0, shapes[i].1);
    let mut cts = match out_ids[0] {
        Some(v) => {
            tape.backward_watched(vec![(v, out.ones_like())], true, &leaf_ids, &mut |i, ct| match ct {
                Some(g) => on_ready(i, g),
                None => on_ready(i, &zeros(i)),
            })
        }
        None => {
            (0..leaf_ids.len()).for_each(|i| on_ready(i, &zeros(i)));
            Vec::new()
        }
    };
    cts.resize(tape_values(&leaf_ids), None);
    let grads = grads_from(&shapes, &mut cts, &leaf_ids);
    (out, p.with_leaves(&grads))
}

/// Reverse mode for any inputs and outputs: `(outputs, pullback)`, where `pullback(&ct)` maps a
/// cotangent shaped like the outputs to one shaped like the inputs. The pullback can be called
/// many times (the tape is kept until it is dropped).
///
/// ```
/// use adjoint_core::{vjp, Tensor};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
/// let (y, pb) = vjp(|x: &Tensor| x * x, &x);
/// let g = pb(&Tensor::from_vec(vec![1.0f64, 10.0], &[2]));
/// assert_eq!((y.to_vec::<f64>(), g.to_vec::<f64>()), (vec![1.0, 4.0], vec![2.0, 40.0]));
/// ```
#[track_caller]
pub fn vjp<P: Params, O: Params, F: FnOnce(&P) -> O>(
    f: F,
    primals: &P,
) -> (O, impl Fn(&O) -> P + use<P, O, F>) {
    vjp_at(f, primals, "vjp", Location::caller())
}

fn vjp_at<P: Params, O: Params, F: FnOnce(&P) -> O>(
    f: F,
    primals: &P,
    what: &'static str,
    loc: Loc,
) -> (O, impl Fn(&O) -> P + use<P, O, F>) {
    let (out, out_ids, leaf_ids, tape) = trace_vjp(f, primals, what, loc);
    // The inputs' structure for the cotangents (its leaves are replaced: no need to fill zeros
    // of every input's size, as this did once per `vjp`).
    let template = primals.map_tensors(&mut |_| Tensor::scalar(0.0f32));
    let shapes = shapes_of(primals);
    let out_shapes = shapes_of(&out);
    let tape = Rc::new(RefCell::new(tape));
    let pullback = move |ct: &O| {
        let cts_in = ct.leaves();
        assert_eq!(
            cts_in.len(),
            out_ids.len(),
            "adjoint: {what} pullback: cotangent has a different structure from the outputs ({what} at {loc})"
        );
        let mut seeds = Vec::new();
        for ((id, c), (shape, _)) in out_ids.iter().zip(cts_in).zip(&out_shapes) {
            assert_eq!(
                c.shape(),
                shape.as_slice(),
                "adjoint: {what} pullback: cotangent shape {:?} differs from output shape {:?} ({what} at {loc})",
                c.shape(),
                shape
            );
            if let Some(v) = id {
                seeds.push((*v, c));
            }
        }
        let mut cts = if seeds.is_empty() { Vec::new() } else { tape.borrow_mut().backward(seeds, false) };
        cts.resize(cts.len().max(tape_values(&leaf_ids)), None);
        template.with_leaves(&grads_from(&shapes, &mut cts, &leaf_ids))
    };
    (out, pullback)
}

/// Forward mode: `(f(primals), J·tangents)` for any inputs and outputs.
///
/// ```
/// use adjoint_core::{jvp, Tensor};
/// let (y, t) = jvp(|x: &Tensor| x.sin(), &Tensor::scalar(0.0f64), &Tensor::scalar(2.0f64));
/// assert_eq!((y.item(), t.item()), (0.0, 2.0));
/// ```
#[track_caller]
pub fn jvp<P: Params, O: Params, F: FnOnce(&P) -> O>(f: F, primals: &P, tangents: &P) -> (O, O) {
    jvp_at(f, primals, tangents, "jvp", Location::caller())
}

fn jvp_at<P: Params, O: Params, F: FnOnce(&P) -> O>(
    f: F,
    primals: &P,
    tangents: &P,
    what: &'static str,
    loc: Loc,
) -> (O, O) {
    let guard = push_frame(Kind::Jvp);
    let tl = tangents.leaves();
    assert_eq!(
        tl.len(),
        primals.num_leaves(),
        "adjoint: {what}: tangents have a different structure from primals (at {loc})"
    );
    let mut i = 0;
    let traced = primals.map_tensors(&mut |p| {
        let t = &tl[i];
        i += 1;
        check_float(p, what, loc);
        assert_eq!(
            p.shape(),
            t.shape(),
            "adjoint: {what}: tangent {} has shape {:?} but its primal has shape {:?} (at {loc})",
            i - 1,
            t.shape(),
            p.shape()
        );
        let t = if t.dtype() == p.dtype() { t.clone() } else { t.cast(p.dtype()) };
        guard.tracer(Payload::Jvp { primal: p.clone(), tangent: t })
    });
    let out = f(&traced);
    drop(traced);
    let out_t = out.map_tensors(&mut |t| match guard.own(t) {
        Some(Payload::Jvp { tangent, .. }) => tangent.clone(),
        _ => t.zeros_like(),
    });
    let out_p = strip(&guard, &out);
    drop(out);
    guard.pop();
    (out_p, out_t)
}

/// Jacobian by forward mode: one JVP per input element, all in one batched pass (`vmap` over
/// the basis of tangents). Output shape: `out.shape ++ in.shape`.
///
/// ```
/// use adjoint_core::{jacfwd, Tensor};
/// let j = jacfwd(|x: &Tensor| x * x)(&Tensor::from_vec(vec![1.0f64, 2.0], &[2]));
/// assert_eq!(j.to_vec::<f64>(), vec![2.0, 0.0, 0.0, 4.0]);
/// ```
#[track_caller]
pub fn jacfwd<F: Fn(&Tensor) -> Tensor>(f: F) -> impl Fn(&Tensor) -> Tensor {
    jacfwd_at(f, "jacfwd", Location::caller())
}

fn jacfwd_at<F: Fn(&Tensor) -> Tensor>(f: F, what: &'static str, loc: Loc) -> impl Fn(&Tensor) -> Tensor {
    move |x: &Tensor| {
        let n = x.numel();
        if n == 0 {
            let y = f(x);
            let mut shape = y.shape().to_vec();
            shape.extend_from_slice(x.shape());
            return Tensor::full_of(&shape, 0.0, y.dtype());
        }
        // Row i of the identity, shaped like x, is the tangent of example i.
        let mut bshape = vec![n];
        bshape.extend_from_slice(x.shape());
        let basis = Tensor::eye(n, x.dtype()).reshape(&bshape);
        // The primal output is the same for every tangent (unbatched); the tangents are [n, out...].
        let (y, cols) = vmap_call(
            |t: &Tensor| jvp_at(&f, x, t, what, loc),
            &basis,
            &Axes::All(Some(0)),
            &Axes::Leaves(vec![None, Some(0)]),
            loc,
        );
        let m = y.numel();
        let j = cols.reshape(&[n, m]).t();
        let mut shape = y.shape().to_vec();
        shape.extend_from_slice(x.shape());
        j.reshape(&shape)
    }
}

/// Jacobian by reverse mode: one VJP per output element, all in one batched pass (`vmap` of the
/// pullback over the basis of cotangents). Output shape: `out.shape ++ in.shape`.
///
/// ```
/// use adjoint_core::{jacrev, Tensor};
/// let j = jacrev(|x: &Tensor| x.sum_axes(&[0], false))(&Tensor::ones(&[2, 3]));
/// assert_eq!(j.shape(), &[3, 2, 3]);
/// ```
#[track_caller]
pub fn jacrev<F: Fn(&Tensor) -> Tensor>(f: F) -> impl Fn(&Tensor) -> Tensor {
    let loc = Location::caller();
    move |x: &Tensor| {
        let (y, pb) = vjp_at(&f, x, "jacrev", loc);
        let m = y.numel();
        let mut shape = y.shape().to_vec();
        shape.extend_from_slice(x.shape());
        if m == 0 || x.numel() == 0 {
            return Tensor::full_of(&shape, 0.0, x.dtype());
        }
        let mut bshape = vec![m];
        bshape.extend_from_slice(y.shape());
        let basis = Tensor::eye(m, y.dtype()).reshape(&bshape);
        let rows = vmap_call(|c: &Tensor| pb(c), &basis, &Axes::All(Some(0)), &Axes::All(Some(0)), loc);
        rows.reshape(&shape)
    }
}

/// The Hessian of a scalar function, forward-over-reverse: `jacfwd(grad(f))`.
///
/// ```
/// use adjoint_core::{hessian, Tensor};
/// let h = hessian(|x: &Tensor| (x * x).sum() * 0.5)(&Tensor::ones(&[3]).cast(adjoint_tensor::DType::F64));
/// assert_eq!(h.to_vec::<f64>(), vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
/// ```
#[track_caller]
pub fn hessian<F: Fn(&Tensor) -> Tensor>(f: F) -> impl Fn(&Tensor) -> Tensor {
    let loc = Location::caller();
    jacfwd_at(grad_at(f, "hessian", loc), "hessian", loc)
}

/// Hessian-vector product `∇²f(x)·v` by forward-over-reverse, without forming the Hessian.
///
/// ```
/// use adjoint_core::{hvp, Tensor};
/// let x = Tensor::scalar(3.0f64);
/// let hv = hvp(|x: &Tensor| (x * x * x).sum(), &x, &Tensor::scalar(1.0f64));
/// assert_eq!(hv.item(), 18.0);
/// ```
#[track_caller]
pub fn hvp<P: Params, F: Fn(&P) -> Tensor>(f: F, x: &P, v: &P) -> P {
    let loc = Location::caller();
    let g = grad_at(f, "hvp", loc);
    jvp_at(|p: &P| g(p), x, v, "hvp", loc).1
}

/// The same value with no derivative: every differentiation transform (`grad`, `vjp`, `jvp`)
/// sees a constant. Batching is kept: inside `vmap` the value still differs per example.
///
/// ```
/// use adjoint_core::{grad, stop_gradient, Tensor};
/// let g = grad(|x: &Tensor| (x * stop_gradient(x)).sum())(&Tensor::scalar(3.0f64));
/// assert_eq!(g.item(), 3.0);
/// ```
pub fn stop_gradient(t: &Tensor) -> Tensor {
    match &t.0 {
        Repr::Concrete(_) => t.clone(),
        Repr::Tracer(tr) => match &tr.payload {
            Payload::Batch { value, axis, shape } => Tensor::tracer(
                tr.level,
                tr.frame,
                Payload::Batch { value: stop_gradient(value), axis: *axis, shape: shape.clone() },
            ),
            // Staged as a primitive, so a transform replaying the program sees the cut.
            Payload::Stage { .. } => crate::trace::bind(&crate::prims::stop_gradient::StopGradient, &[t]),
            p => stop_gradient(p.primal()),
        },
    }
}
