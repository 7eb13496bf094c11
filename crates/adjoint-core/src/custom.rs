//! User-defined derivative rules (`custom_vjp`, `custom_jvp`) and rematerialisation
//! (`checkpoint`).
//!
//! These are calls, not primitives: they see the transform stack directly. At the highest
//! active level they apply their own rule and recurse for the levels below, so a custom rule
//! is honoured under every nesting.
//!
//! **Forward mode through a custom VJP** (JAX refuses: "can't apply forward-mode to a
//! custom_vjp function"). The VJP rule `c ↦ Jᵀc` is linear in `c`, so `J·t` is the gradient
//! in `c` of `⟨bwd(c), t⟩`; adjoint computes it that way, with one reverse pass through the
//! user's `bwd`. So `jvp`, `hessian` and `hvp` work on custom-VJP functions as long as `bwd` is
//! written with adjoint ops. Symmetrically, reverse mode through a **custom JVP** takes the
//! gradient in `t` of `⟨jvp(x, t), c⟩`.
//!
//! **Under `vmap`** the custom rule is kept: the batch level peels its batch axis off the inputs
//! and records the mapped axes in a *context*; the user's functions (`f`, `fwd`, `bwd`, the JVP
//! rule, the checkpointed block) are then called through `vmap` with that context, so the
//! levels below still see the custom call, now on whole batches. A cotangent for an input that
//! was shared by every example is summed over the batch.

use std::marker::PhantomData;
use std::rc::Rc;

use smallvec::SmallVec;

use crate::batching::move_axis;
use crate::params::Params;
use crate::primitive::{Grads, Pullback, Residuals};
use crate::tensor::{Payload, Tensor};
use crate::trace::{batch_tracer, own_payload, record, top_of, Kind};
use crate::transforms::{grad, vjp};
use crate::vmap::vmap_leaves;

/// The batch levels peeled so far, outermost first: for each, the batch axis (0 or none) of
/// every input leaf.
type Ctx = [Vec<Option<usize>>];

/// Call `f` on values that carry the batch dimensions of `ctx` explicitly.
fn batched<A: Params, O: Params>(f: &dyn Fn(&A) -> O, ctx: &Ctx, x: &A) -> O {
    match ctx.split_last() {
        None => f(x),
        Some((axes, rest)) => vmap_leaves(|y: &A| batched(f, rest, y), x, axes),
    }
}

/// The context for a function of `(P, P)` (primals and tangents batched alike).
fn pair_ctx(ctx: &Ctx) -> Vec<Vec<Option<usize>>> {
    ctx.iter().map(|a| [a.as_slice(), a.as_slice()].concat()).collect()
}

fn clone_params<P: Params>(p: &P) -> P {
    p.map_tensors(&mut |t| t.clone())
}

/// A user's backward function under the batch levels of `ctx`: residuals and cotangent are
/// batched on axis 0 at every level; the cotangent of an input shared by every example of a
/// level is summed over that level's batch.
fn batched_bwd<P: Params, R: Params>(bwd: &dyn Fn(&R, &Tensor) -> P, ctx: &Ctx, r: &R, c: &Tensor) -> P {
    match ctx.split_last() {
        None => bwd(r, c),
        Some((axes, rest)) => {
            let rc = (clone_params(r), c.clone());
            let all = vec![Some(0); r.num_leaves() + 1];
            let g: P = vmap_leaves(|q: &(R, Tensor)| batched_bwd(bwd, rest, &q.0, &q.1), &rc, &all);
            let mut i = 0;
            g.map_tensors(&mut |t| {
                let shared = axes[i].is_none();
                i += 1;
                if shared {
                    t.sum_axes(&[0], false)
                } else {
                    t.clone()
                }
            })
        }
    }
}

/// Peel the batch level (`level`, `id`) off `p`: each batched leaf with its batch axis moved to
/// 0, and the axes (`Some(0)` or `None`) for the context.
fn unpack_batch<P: Params>(p: &P, level: usize, id: u64) -> (P, Vec<Option<usize>>) {
    let mut axes = Vec::new();
    let low = p.map_tensors(&mut |t| match own_payload(t, level, id) {
        Some(Payload::Batch { value, axis, .. }) => {
            axes.push(Some(0));
            move_axis(value, *axis, 0)
        }
        _ => {
            axes.push(None);
            t.clone()
        }
    });
    (low, axes)
}

fn push_ctx(ctx: &Ctx, axes: Vec<Option<usize>>) -> Vec<Vec<Option<usize>>> {
    let mut c = ctx.to_vec();
    c.push(axes);
    c
}

/// Residuals held as a whole `Params` value.
struct Res<P>(P);
impl<P: Params + 'static> Residuals for Res<P> {
    fn residual_bytes(&self) -> usize {
        let mut b = 0;
        self.0.for_each_tensor(&mut |t| b += t.residual_bytes());
        b
    }
}

/// `Σ_leaves sum(a ⊙ b)` as a differentiable scalar.
fn inner<P: Params>(a: &P, b: &P) -> Tensor {
    let bl = b.leaves();
    let mut acc: Option<Tensor> = None;
    let mut i = 0;
    a.for_each_tensor(&mut |x| {
        let s = (x * &bl[i]).sum();
        i += 1;
        acc = Some(match acc.take() {
            None => s,
            Some(p) => p + s,
        });
    });
    acc.unwrap_or_else(|| Tensor::scalar(0.0f32))
}

/// Unpack the leaves of `p` at (`level`, `id`): the lower-level value, plus the tape value id
/// (reverse) or tangent (forward) of each leaf.
fn unpack<P: Params>(p: &P, level: usize, id: u64) -> (P, Vec<Option<usize>>, Vec<Option<Tensor>>) {
    let mut ids = Vec::new();
    let mut tans = Vec::new();
    let low = p.map_tensors(&mut |t| match own_payload(t, level, id) {
        Some(Payload::Vjp { primal, value }) => {
            ids.push(Some(*value));
            tans.push(None);
            primal.clone()
        }
        Some(Payload::Jvp { primal, tangent }) => {
            ids.push(None);
            tans.push(Some(tangent.clone()));
            primal.clone()
        }
        Some(Payload::Batch { .. }) => unreachable!("batch levels are peeled by unpack_batch"),
        None => {
            ids.push(None);
            tans.push(None);
            t.clone()
        }
    });
    (low, ids, tans)
}

fn materialise<P: Params>(low: &P, tans: Vec<Option<Tensor>>) -> P {
    let mut it = tans.into_iter();
    low.map_tensors(&mut |t| it.next().flatten().unwrap_or_else(|| t.zeros_like()))
}

// ------------------------------------------------------------------------ custom_vjp

struct CustomVjp<P, R, F, Fwd, Bwd> {
    f: F,
    fwd: Fwd,
    bwd: Rc<Bwd>,
    _types: PhantomData<fn(&P) -> R>,
}

impl<P, R, F, Fwd, Bwd> CustomVjp<P, R, F, Fwd, Bwd>
where
    P: Params + 'static,
    R: Params + 'static,
    F: Fn(&P) -> Tensor,
    Fwd: Fn(&P) -> (Tensor, R),
    Bwd: Fn(&R, &Tensor) -> P + 'static,
{
    fn apply(&self, p: &P, ctx: &Ctx) -> Tensor {
        let leaves = p.leaves();
        let refs: Vec<&Tensor> = leaves.iter().collect();
        let Some((level, id, kind)) = top_of(&refs) else { return batched(&self.f, ctx, p) };
        if kind == Kind::Batch {
            let (low, axes) = unpack_batch(p, level, id);
            let out = self.apply(&low, &push_ctx(ctx, axes));
            return batch_tracer(level, id, out, 0);
        }
        let (low, ids, tans) = unpack(p, level, id);
        let low_leaves = low.leaves();
        let low_refs: Vec<&Tensor> = low_leaves.iter().collect();
        let (out, res) = if top_of(&low_refs).is_none() {
            batched(&self.fwd, ctx, &low)
        } else {
            (self.apply(&low, ctx), batched(&self.fwd, ctx, &low).1)
        };
        match kind {
            Kind::Vjp => {
                if ids.iter().all(|i| i.is_none()) {
                    return out;
                }
                let bwd = self.bwd.clone();
                let ctx = ctx.to_vec();
                let pb = Pullback::multi(Res(res), move |r, cts| {
                    let c = cts[0].as_ref().expect("pullback runs only with a cotangent");
                    let g: Grads = batched_bwd(&*bwd, &ctx, &r.0, c).leaves().into_iter().map(Some).collect();
                    g
                });
                let parents: SmallVec<[Option<usize>; 3]> = ids.into_iter().collect();
                let value = record(level, parents, 1, pb);
                Tensor::tracer(level, id, Payload::Vjp { primal: out, value })
            }
            Kind::Jvp => {
                if tans.iter().all(|t| t.is_none()) {
                    return out;
                }
                let t = materialise(&low, tans);
                let bwd = &self.bwd;
                let tangent =
                    grad(|c: &Tensor| inner(&batched_bwd(&**bwd, ctx, &res, c), &t))(&out.zeros_like());
                Tensor::tracer(level, id, Payload::Jvp { primal: out, tangent })
            }
            Kind::Batch => unreachable!("handled above"),
        }
    }
}

/// A function with a user-supplied reverse-mode rule.
///
/// `f` computes the value; `fwd` computes it too and returns residuals; `bwd(residuals, ct)`
/// returns the cotangent of the inputs (same structure as `P`). Write `bwd` with adjoint ops
/// and the function also works under `jvp`, `hessian` and `grad ∘ grad` (see the module docs).
///
/// ```
/// use adjoint_core::{custom_vjp, grad, jvp, Tensor};
/// // log(1 + exp(x)) with a hand-written stable gradient sigmoid(x).
/// let softplus = custom_vjp(
///     |x: &Tensor| x.softplus(),
///     |x: &Tensor| (x.softplus(), x.clone()),
///     |x: &Tensor, ct: &Tensor| ct * x.sigmoid(),
/// );
/// let x = Tensor::scalar(0.0f64);
/// assert_eq!(grad(|x: &Tensor| softplus(x))(&x).item(), 0.5);
/// assert_eq!(jvp(|x: &Tensor| softplus(x), &x, &Tensor::scalar(2.0f64)).1.item(), 1.0);
/// ```
pub fn custom_vjp<P, R, F, Fwd, Bwd>(f: F, fwd: Fwd, bwd: Bwd) -> impl Fn(&P) -> Tensor
where
    P: Params + 'static,
    R: Params + 'static,
    F: Fn(&P) -> Tensor,
    Fwd: Fn(&P) -> (Tensor, R),
    Bwd: Fn(&R, &Tensor) -> P + 'static,
{
    let c = CustomVjp { f, fwd, bwd: Rc::new(bwd), _types: PhantomData };
    move |p: &P| c.apply(p, &[])
}

// ------------------------------------------------------------------------ custom_jvp

struct CustomJvp<P, F, J> {
    f: F,
    rule: Rc<J>,
    _types: PhantomData<fn(&P)>,
}

impl<P, F, J> CustomJvp<P, F, J>
where
    P: Params + 'static,
    F: Fn(&P) -> Tensor,
    J: Fn(&P, &P) -> (Tensor, Tensor) + 'static,
{
    fn apply(&self, p: &P, ctx: &Ctx) -> Tensor {
        let leaves = p.leaves();
        let refs: Vec<&Tensor> = leaves.iter().collect();
        let Some((level, id, kind)) = top_of(&refs) else { return batched(&self.f, ctx, p) };
        if kind == Kind::Batch {
            let (low, axes) = unpack_batch(p, level, id);
            let out = self.apply(&low, &push_ctx(ctx, axes));
            return batch_tracer(level, id, out, 0);
        }
        let (low, ids, tans) = unpack(p, level, id);
        match kind {
            Kind::Jvp => {
                if tans.iter().all(|t| t.is_none()) {
                    return self.apply(&low, ctx);
                }
                let t = materialise(&low, tans);
                let low_leaves = low.leaves();
                let low_refs: Vec<&Tensor> = low_leaves.iter().collect();
                let rule = |q: &(P, P)| (self.rule)(&q.0, &q.1);
                let pctx = pair_ctx(ctx);
                let pair = (clone_params(&low), t);
                let (out, tangent) = if top_of(&low_refs).is_none() {
                    batched(&rule, &pctx, &pair)
                } else {
                    (self.apply(&low, ctx), batched(&rule, &pctx, &pair).1)
                };
                Tensor::tracer(level, id, Payload::Jvp { primal: out, tangent })
            }
            Kind::Vjp => {
                let out = self.apply(&low, ctx);
                if ids.iter().all(|i| i.is_none()) {
                    return out;
                }
                let rule = self.rule.clone();
                let pctx = pair_ctx(ctx);
                let pb = Pullback::multi(Res(low), move |r, cts| {
                    let c = cts[0].as_ref().expect("pullback runs only with a cotangent");
                    let zeros = crate::params::zeros_like(&r.0);
                    let rule = |q: &(P, P)| rule(&q.0, &q.1);
                    let g = grad(|t: &P| {
                        (batched(&rule, &pctx, &(clone_params(&r.0), clone_params(t))).1 * c).sum()
                    })(&zeros);
                    g.leaves().into_iter().map(Some).collect()
                });
                let parents: SmallVec<[Option<usize>; 3]> = ids.into_iter().collect();
                let value = record(level, parents, 1, pb);
                Tensor::tracer(level, id, Payload::Vjp { primal: out, value })
            }
            Kind::Batch => unreachable!("handled above"),
        }
    }
}

/// A function with a user-supplied forward-mode rule `rule(primals, tangents) -> (out, t_out)`.
/// Reverse mode uses the rule too (by reverse-differentiating its tangent output, which is
/// linear in the tangents), so `grad` and `hessian` follow the custom derivative.
///
/// ```
/// use adjoint_core::{custom_jvp, grad, Tensor};
/// // A straight-through rounding: value rounded, derivative 1.
/// let ste = custom_jvp(|x: &Tensor| x.round(), |x: &Tensor, t: &Tensor| (x.round(), t.clone()));
/// assert_eq!(grad(|x: &Tensor| ste(x))(&Tensor::scalar(0.4f64)).item(), 1.0);
/// ```
pub fn custom_jvp<P, F, J>(f: F, rule: J) -> impl Fn(&P) -> Tensor
where
    P: Params + 'static,
    F: Fn(&P) -> Tensor,
    J: Fn(&P, &P) -> (Tensor, Tensor) + 'static,
{
    let c = CustomJvp { f, rule: Rc::new(rule), _types: PhantomData };
    move |p: &P| c.apply(p, &[])
}

// ------------------------------------------------------------------------ checkpoint

struct Checkpoint<P, O, F> {
    f: Rc<F>,
    _types: PhantomData<fn(&P) -> O>,
}

impl<P, O, F> Checkpoint<P, O, F>
where
    P: Params + 'static,
    O: Params + 'static,
    F: Fn(&P) -> O + 'static,
{
    fn apply(&self, p: &P, ctx: &Ctx) -> O {
        let leaves = p.leaves();
        let refs: Vec<&Tensor> = leaves.iter().collect();
        let (level, id) = match top_of(&refs) {
            Some((level, id, Kind::Vjp)) => (level, id),
            Some((level, id, Kind::Batch)) => {
                let (low, axes) = unpack_batch(p, level, id);
                let out = self.apply(&low, &push_ctx(ctx, axes));
                return out.map_tensors(&mut |t| batch_tracer(level, id, t.clone(), 0));
            }
            _ => return batched(&*self.f, ctx, p),
        };
        let (low, ids, _) = unpack(p, level, id);
        // The forward pass runs at the levels below only: nothing is recorded on this tape
        // but one node holding the inputs.
        let out = self.apply(&low, ctx);
        if ids.iter().all(|i| i.is_none()) {
            return out;
        }
        let f = self.f.clone();
        let ctx = ctx.to_vec();
        let out_template = crate::params::zeros_like(&out);
        let pb = Pullback::multi(Res(low), move |r, cts| {
            let (_, pullback) = vjp(|q: &P| batched(&*f, &ctx, q), &r.0);
            let mut it = cts.iter();
            let ct =
                out_template.map_tensors(&mut |z| it.next().cloned().flatten().unwrap_or_else(|| z.clone()));
            pullback(&ct).leaves().into_iter().map(Some).collect()
        });
        let parents: SmallVec<[Option<usize>; 3]> = ids.into_iter().collect();
        let n_out = out.num_leaves();
        let first = record(level, parents, n_out, pb);
        let mut k = 0;
        out.map_tensors(&mut |t| {
            let v = first + k;
            k += 1;
            if t.dtype().is_float() {
                Tensor::tracer(level, id, Payload::Vjp { primal: t.clone(), value: v })
            } else {
                t.clone()
            }
        })
    }
}

/// Rematerialisation: under reverse mode, `checkpoint(f)` records only its inputs and
/// recomputes `f`'s intermediate values during the backward pass, trading compute for memory.
///
/// ```
/// use adjoint_core::{checkpoint, grad, Tensor};
/// let block = checkpoint(|x: &Tensor| x.sin().exp());
/// let g = grad(|x: &Tensor| block(x).sum())(&Tensor::scalar(0.0f64));
/// assert!((g.item() - 1.0).abs() < 1e-12);
/// ```
pub fn checkpoint<P, O, F>(f: F) -> impl Fn(&P) -> O
where
    P: Params + 'static,
    O: Params + 'static,
    F: Fn(&P) -> O + 'static,
{
    let c = Checkpoint { f: Rc::new(f), _types: PhantomData };
    move |p: &P| c.apply(p, &[])
}
