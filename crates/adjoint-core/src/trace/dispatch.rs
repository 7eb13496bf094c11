//! `bind` and the interpreters of the three kinds of level: one dispatch path for every
//! primitive, whatever its number of outputs.

use adjoint_tensor::Array;
use smallvec::SmallVec;

use super::frames::{dead_tracer, depth, own_payload, top_of, with_tape, Kind};
use crate::debug;
use crate::primitive::{Aval, Outs, Primitive};
use crate::profile;
use crate::tensor::{Payload, Repr, Tensor};

/// Apply a one-output primitive to tensors: the heart of every op. See [`bind_multi`].
///
/// ```
/// use adjoint_core::{prims::exp::Exp, trace::bind, Tensor};
/// let y = bind(&Exp, &[&Tensor::scalar(0.0f64)]);
/// assert_eq!(y.item(), 1.0);
/// ```
#[track_caller]
#[inline]
pub fn bind<P: Primitive + ?Sized>(p: &P, args: &[&Tensor]) -> Tensor {
    let mut outs = if profile::requested() {
        profile::record(p, args, || bind_multi_unprofiled(p, args))
    } else {
        if let Some(out) = eval_fast(p, args, true) {
            return out;
        }
        bind_multi_unprofiled(p, args)
    };
    if outs.len() != 1 {
        several_outputs(p.name(), outs.len());
    }
    outs.swap_remove(0)
}

/// The eager fast path of a one-output primitive: no traced argument (at any depth) and no
/// anomaly checks — the shape rule, then the kernel, with no output list. `None` when it does
/// not apply.
///
/// `checked: false` skips the shape rule: for [`bind_below`], whose callers have already run
/// it on abstract values equal to these. Debug builds still compare the result with the rule.
#[track_caller]
#[inline]
fn eval_fast<P: Primitive + ?Sized>(p: &P, args: &[&Tensor], checked: bool) -> Option<Tensor> {
    if debug::requested() {
        return None;
    }
    let mut arrs: SmallVec<[&Array; 4]> = SmallVec::new();
    for a in args {
        match &a.0 {
            Repr::Concrete(x) => arrs.push(x),
            Repr::Tracer(_) => return None,
        }
    }
    // Not a closure: the rule's panic must point at the caller (`#[track_caller]`).
    let out_avals = if checked || cfg!(debug_assertions) {
        let mut avals: SmallVec<[Aval; 4]> = SmallVec::new();
        for a in &arrs {
            avals.push(Aval::of_array(a));
        }
        Some(p.shape(&avals))
    } else {
        None
    };
    let out = Tensor::from_array(p.eval_one(&arrs)?);
    if let Some(out_avals) = out_avals {
        debug_assert_rule(p, &out_avals, std::slice::from_ref(&out));
    }
    Some(out)
}

/// [`bind_multi`] one level down from an interpreter, through the fast path when it applies.
/// Only for arguments whose shape rule has already run: the primals of a differentiation rule
/// (same shapes and dtypes as the tracers just checked one level up) and the equations of a
/// `jit` program (checked when it was staged, replayed on inputs of the cached signature).
/// Concrete arguments skip the rule (see [`eval_fast`]).
#[track_caller]
#[inline]
pub(crate) fn bind_below<P: Primitive + ?Sized>(p: &P, args: &[&Tensor]) -> Outs<Tensor> {
    if profile::requested() {
        return profile::record(p, args, || bind_multi_unprofiled(p, args));
    }
    match eval_fast(p, args, false) {
        Some(out) => smallvec::smallvec![out],
        None => bind_multi_unprofiled(p, args),
    }
}

#[cold]
#[track_caller]
fn several_outputs(op: &str, n: usize) -> ! {
    crate::primitive::misuse(op, format!("has {n} outputs; call it with `bind_multi`"))
}

/// Apply a primitive to tensors, returning one tensor per output.
///
/// The shape rule runs first, at every level (so a direct `bind` is checked like the op's
/// method); then, with no transform active, the kernel runs (one thread-local read); otherwise
/// the frame owning the highest-level argument interprets the primitive. While a
/// [`profile`](crate::profile()) is running, each bind is recorded (one relaxed load when not).
///
/// ```
/// use adjoint_core::{prims::split::Split, trace::bind_multi, Tensor};
/// let x = Tensor::arange(5);
/// let parts = bind_multi(&Split { axis: 0, sizes: vec![2, 3] }, &[&x]);
/// assert_eq!(parts[1].to_vec::<f32>(), vec![2.0, 3.0, 4.0]);
/// ```
#[track_caller]
#[inline]
pub fn bind_multi<P: Primitive + ?Sized>(p: &P, args: &[&Tensor]) -> Outs<Tensor> {
    if profile::requested() {
        return profile::record(p, args, || bind_multi_unprofiled(p, args));
    }
    bind_multi_unprofiled(p, args)
}

/// [`bind_multi`] without the profiler's hook (the profiler calls it, and so do `bind` and
/// `bind_below` after their own hook).
#[track_caller]
#[inline]
fn bind_multi_unprofiled<P: Primitive + ?Sized>(p: &P, args: &[&Tensor]) -> Outs<Tensor> {
    let mut avals: SmallVec<[Aval; 4]> = SmallVec::new();
    for a in args {
        avals.push(Aval::of(a));
    }
    let out_avals = p.shape(&avals);
    if debug::requested() {
        return bind_checked(p, args, std::panic::Location::caller());
    }
    let outs = bind_plain(p, args);
    debug_assert_rule(p, &out_avals, &outs);
    outs
}

/// In debug builds (the tests), every result is compared with the shape rule's prediction.
#[inline]
fn debug_assert_rule<P: Primitive + ?Sized>(p: &P, avals: &[Aval], outs: &[Tensor]) {
    if cfg!(debug_assertions) {
        let got: SmallVec<[Aval; 1]> = outs.iter().map(Aval::of).collect();
        assert!(
            got.as_slice() == avals,
            "adjoint: internal error: the shape rule of `{}` predicted {avals:?}, the computation gave {got:?}",
            p.name()
        );
    }
}

#[track_caller]
#[inline(always)]
fn bind_plain<P: Primitive + ?Sized>(p: &P, args: &[&Tensor]) -> Outs<Tensor> {
    if depth() == 0 {
        return eval_concrete(p, args);
    }
    match top_of(args) {
        None => eval_concrete(p, args),
        Some((level, id, Kind::Jvp)) => jvp_bind(p, args, level, id),
        Some((level, id, Kind::Vjp)) => vjp_bind(p, args, level, id),
        Some((level, id, Kind::Batch)) => batch_bind(p, args, level, id),
        Some((level, id, Kind::Stage)) => crate::jit::stage::stage_bind(p, args, level, id),
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
) -> Outs<Tensor> {
    if !debug::active() {
        return bind_plain(p, args);
    }
    let _site = debug::SiteGuard::enter(at);
    let top = if depth() == 0 { None } else { top_of(args) };
    match top {
        None => {
            let outs = eval_concrete(p, args);
            let arrs: SmallVec<[&Array; 4]> = args.iter().map(|a| a.value()).collect();
            for o in &outs {
                debug::check(p.name(), &arrs, o.value());
            }
            outs
        }
        Some((level, id, Kind::Jvp)) => jvp_bind(p, args, level, id),
        Some((level, id, Kind::Vjp)) => vjp_bind(p, args, level, id),
        Some((level, id, Kind::Batch)) => batch_bind(p, args, level, id),
        Some((level, id, Kind::Stage)) => crate::jit::stage::stage_bind(p, args, level, id),
    }
}

/// The forward op being bound, when anomaly mode wants it remembered.
#[inline]
fn anomaly_origin<P: Primitive + ?Sized>(p: &P) -> Option<debug::Origin> {
    (debug::requested() && debug::active()).then(|| debug::origin(p.name()))
}

#[track_caller]
#[inline]
fn eval_concrete<P: Primitive + ?Sized>(p: &P, args: &[&Tensor]) -> Outs<Tensor> {
    let mut arrs: SmallVec<[&Array; 4]> = SmallVec::new();
    for a in args {
        match &a.0 {
            Repr::Concrete(x) => arrs.push(x),
            Repr::Tracer(t) => dead_tracer(t),
        }
    }
    let outs: Outs<Tensor> = p.eval(&arrs).into_iter().map(Tensor::from_array).collect();
    if outs.iter().any(|o| o.numel() >= adjoint_tensor::ops::PAR_THRESHOLD) {
        // Large enough that its kernel ran on the pool (see `threads::keep_warm`).
        adjoint_tensor::threads::keep_warm();
    }
    outs
}

/// A rule's results live one level down: a tracer of this level or above means the
/// computation closed over a value traced here (possible only in user-supplied functions,
/// i.e. custom rules) — which would confuse the levels, so it is refused.
#[inline]
fn below(op: &str, outs: &[Tensor], level: usize) {
    for o in outs {
        if let Repr::Tracer(t) = &o.0
            && t.level >= level
        {
            closes_over(op);
        }
    }
}

#[cold]
fn closes_over(op: &str) -> ! {
    panic!(
        "adjoint: {op}: the function closes over a value traced by the transform that is          differentiating or batching it; pass that value as an input of the {op} function instead"
    )
}

fn any_float(outs: &[Tensor]) -> bool {
    outs.iter().any(|o| o.dtype().is_float())
}

fn jvp_bind<P: Primitive + ?Sized>(p: &P, args: &[&Tensor], level: usize, id: u64) -> Outs<Tensor> {
    // Primals and tangents are borrowed from the arguments' payloads (no handle cloned).
    let mut prefs: SmallVec<[&Tensor; 4]> = SmallVec::new();
    let mut trefs: SmallVec<[Option<&Tensor>; 4]> = SmallVec::new();
    for a in args {
        match own_payload(a, level, id) {
            Some(Payload::Jvp { primal, tangent }) => {
                prefs.push(primal);
                trefs.push(Some(tangent));
            }
            _ => {
                prefs.push(a);
                trefs.push(None);
            }
        }
    }
    let rule = anomaly_origin(p).map(|o| debug::RuleGuard::enter(debug::RuleKind::Jvp, o));
    let (outs, touts) = match p.jvp_with_forward(&prefs, &trefs) {
        Some(both) => both,
        None => {
            let outs = bind_below(p, &prefs);
            if !any_float(&outs) {
                return outs;
            }
            let touts = p.jvp(&prefs, &trefs, &outs);
            (outs, touts)
        }
    };
    drop(rule);
    below(p.name(), &outs, level);
    outs.into_iter()
        .zip(touts)
        .map(|(out, tangent)| match tangent {
            Some(tangent) if out.dtype().is_float() => {
                debug_assert_eq!(tangent.shape(), out.shape(), "jvp rule of {} gave a wrong shape", p.name());
                Tensor::tracer(level, id, Payload::Jvp { primal: out, tangent })
            }
            _ => out,
        })
        .collect()
}

fn vjp_bind<P: Primitive + ?Sized>(p: &P, args: &[&Tensor], level: usize, id: u64) -> Outs<Tensor> {
    // The primals are borrowed from the arguments' payloads: no handle is cloned per operand.
    let mut prefs: SmallVec<[&Tensor; 4]> = SmallVec::new();
    let mut parents: SmallVec<[Option<usize>; 3]> = SmallVec::new();
    for a in args {
        match own_payload(a, level, id) {
            Some(Payload::Vjp { primal, value }) => {
                prefs.push(primal);
                parents.push(Some(*value));
            }
            _ => {
                prefs.push(a);
                parents.push(None);
            }
        }
    }
    let wants: SmallVec<[bool; 4]> = parents.iter().map(|p| p.is_some()).collect();
    let (outs, pb) = match p.vjp_with_forward(&prefs, &wants) {
        Some(both) => both,
        None => {
            let outs = bind_below(p, &prefs);
            if !any_float(&outs) {
                return outs;
            }
            let pb = p.vjp(&prefs, &outs, &wants);
            (outs, pb)
        }
    };
    below(p.name(), &outs, level);
    if !any_float(&outs) {
        return outs;
    }
    let origin = anomaly_origin(p);
    let first = with_tape(level, |t| t.push(parents, outs.len(), Some(pb), origin));
    if outs.len() == 1 {
        // One float output (checked above): wrapped where it lies, without an iterator's copies.
        let mut outs = outs;
        let out = outs.pop().expect("one output");
        outs.push(Tensor::tracer(level, id, Payload::Vjp { primal: out, value: first }));
        return outs;
    }
    outs.into_iter()
        .enumerate()
        .map(|(i, out)| {
            if out.dtype().is_float() {
                Tensor::tracer(level, id, Payload::Vjp { primal: out, value: first + i })
            } else {
                out
            }
        })
        .collect()
}

#[track_caller]
fn batch_bind<P: Primitive + ?Sized>(p: &P, args: &[&Tensor], level: usize, id: u64) -> Outs<Tensor> {
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
    let (outs, out_axes) = p.batch(&refs, &axes, size);
    drop(rule);
    below(p.name(), &outs, level);
    outs.into_iter()
        .zip(out_axes)
        .map(|(out, axis)| match axis {
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
        })
        .collect()
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
