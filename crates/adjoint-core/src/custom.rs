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

use std::marker::PhantomData;
use std::rc::Rc;

use smallvec::SmallVec;

use crate::params::Params;
use crate::primitive::{Grads, Pullback, Residuals};
use crate::tensor::{Payload, Tensor};
use crate::trace::{payload_at, record, top_of, Kind};
use crate::transforms::{grad, vjp};

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
    let low = p.map_tensors(&mut |t| match payload_at(t, level, id) {
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
    fn apply(&self, p: &P) -> Tensor {
        let leaves = p.leaves();
        let refs: Vec<&Tensor> = leaves.iter().collect();
        let Some((level, id, kind)) = top_of(&refs) else { return (self.f)(p) };
        let (low, ids, tans) = unpack(p, level, id);
        let low_leaves = low.leaves();
        let low_refs: Vec<&Tensor> = low_leaves.iter().collect();
        let (out, res) = if top_of(&low_refs).is_none() {
            (self.fwd)(&low)
        } else {
            (self.apply(&low), (self.fwd)(&low).1)
        };
        match kind {
            Kind::Vjp => {
                if ids.iter().all(|i| i.is_none()) {
                    return out;
                }
                let bwd = self.bwd.clone();
                let pb = Pullback::multi(Res(res), move |r, cts| {
                    let c = cts[0].as_ref().expect("pullback runs only with a cotangent");
                    let g: Grads = bwd(&r.0, c).leaves().into_iter().map(Some).collect();
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
                let tangent = grad(|c: &Tensor| inner(&bwd(&res, c), &t))(&out.zeros_like());
                Tensor::tracer(level, id, Payload::Jvp { primal: out, tangent })
            }
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
    move |p: &P| c.apply(p)
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
    fn apply(&self, p: &P) -> Tensor {
        let leaves = p.leaves();
        let refs: Vec<&Tensor> = leaves.iter().collect();
        let Some((level, id, kind)) = top_of(&refs) else { return (self.f)(p) };
        let (low, ids, tans) = unpack(p, level, id);
        match kind {
            Kind::Jvp => {
                if tans.iter().all(|t| t.is_none()) {
                    return self.apply(&low);
                }
                let t = materialise(&low, tans);
                let low_leaves = low.leaves();
                let low_refs: Vec<&Tensor> = low_leaves.iter().collect();
                let (out, tangent) = if top_of(&low_refs).is_none() {
                    (self.rule)(&low, &t)
                } else {
                    (self.apply(&low), (self.rule)(&low, &t).1)
                };
                Tensor::tracer(level, id, Payload::Jvp { primal: out, tangent })
            }
            Kind::Vjp => {
                let out = self.apply(&low);
                if ids.iter().all(|i| i.is_none()) {
                    return out;
                }
                let rule = self.rule.clone();
                let pb = Pullback::multi(Res(low), move |r, cts| {
                    let c = cts[0].as_ref().expect("pullback runs only with a cotangent");
                    let zeros = crate::params::zeros_like(&r.0);
                    let g = grad(|t: &P| (rule(&r.0, t).1 * c).sum())(&zeros);
                    g.leaves().into_iter().map(Some).collect()
                });
                let parents: SmallVec<[Option<usize>; 3]> = ids.into_iter().collect();
                let value = record(level, parents, 1, pb);
                Tensor::tracer(level, id, Payload::Vjp { primal: out, value })
            }
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
    move |p: &P| c.apply(p)
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
    fn apply(&self, p: &P) -> O {
        let leaves = p.leaves();
        let refs: Vec<&Tensor> = leaves.iter().collect();
        let Some((level, id, Kind::Vjp)) = top_of(&refs) else { return (self.f)(p) };
        let (low, ids, _) = unpack(p, level, id);
        // The forward pass runs at the levels below only: nothing is recorded on this tape
        // but one node holding the inputs.
        let out = self.apply(&low);
        if ids.iter().all(|i| i.is_none()) {
            return out;
        }
        let f = self.f.clone();
        let out_template = crate::params::zeros_like(&out);
        let pb = Pullback::multi(Res(low), move |r, cts| {
            let (_, pullback) = vjp(|q: &P| f(q), &r.0);
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
    move |p: &P| c.apply(p)
}
