//! User-defined derivative rules (`custom_vjp`, `custom_jvp`) and rematerialisation
//! (`checkpoint`).
//!
//! Each call is one [`CustomCall`] primitive over the flattened leaves of its inputs and
//! outputs, bound like every other primitive: the same dispatch path finds the top level,
//! unpacks its tracers and applies the call's rules (see [`crate::trace`]). What differs from a
//! built-in primitive is only where the rules come from:
//! - **custom_vjp**: under reverse mode the forward pass runs the user's `fwd` (through the
//!   primitive's `vjp_with_forward` hook, as JAX's `process_custom_vjp_call`), keeping its
//!   residuals for `bwd`. **Forward mode through a custom VJP** (JAX refuses: "can't apply
//!   forward-mode to a custom_vjp function"): the VJP rule `c ↦ Jᵀc` is linear in `c`, so
//!   `J·t` is the gradient in `c` of `⟨bwd(c), t⟩`; adjoint computes it that way, with one
//!   reverse pass through the user's `bwd`. So `jvp`, `hessian` and `hvp` work on custom-VJP
//!   functions as long as `bwd` is written with adjoint ops.
//! - **custom_jvp**: forward mode runs the user's rule; reverse mode takes the gradient in `t`
//!   of `⟨jvp(x, t), c⟩` (the rule is linear in `t`).
//! - **checkpoint**: forward mode and batching see through it; reverse mode records only the
//!   inputs and recomputes the block in the backward pass.
//!
//! **Under `vmap`** the batching rule binds a new custom call one level down whose functions
//! are the user's functions under `vmap`, so the levels below still see the custom call, now
//! on whole batches. A cotangent for an input that was shared by every example is summed over
//! the batch.
//!
//! **Shapes.** A custom call's output shapes are found once per input signature (shapes and
//! dtypes) by running the function on example values, and cached with the function; they must
//! depend only on the inputs' shapes and dtypes (as under JAX's tracing). With no transform
//! active, or when no input is traced, the function is simply called.
//!
//! **Under `jit`** a custom call is staged as one equation holding the call (its functions are
//! `'static`, so the staged program can own them) and replayed through the same primitive, so
//! `grad(jit(f))` still follows the custom rule.
//!
//! **Closures.** A custom function that closes over a value traced by the transform that
//! differentiates it cannot have that dependence follow the custom rule; the dispatch detects
//! it and panics with a message that says to pass the value as an input.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use adjoint_tensor::Array;
use smallvec::SmallVec;

use crate::batching::{by_loop, move_axis};
use crate::params::Params;
use crate::primitive::{Aval, Grads, Outs, Primitive, Pullback, Residuals};
use crate::tensor::{Payload, Repr, Tensor};
use crate::trace::{bind_multi, depth, top_of};
use crate::transforms::{grad, jvp, vjp};
use crate::vmap::vmap_leaves;

/// A function of flattened leaves.
type FlatFn = Rc<dyn Fn(&[Tensor]) -> Vec<Tensor>>;
/// `fwd`: outputs and residuals.
type FwdFn = Rc<dyn Fn(&[Tensor]) -> (Vec<Tensor>, Vec<Tensor>)>;
/// `bwd(residuals, output cotangents) -> input cotangents`.
type BwdFn = Rc<dyn Fn(&[Tensor], &[Tensor]) -> Vec<Tensor>>;
/// `rule(primals, tangents) -> (outputs, output tangents)`.
type JvpFn = Rc<dyn Fn(&[Tensor], &[Tensor]) -> (Vec<Tensor>, Vec<Tensor>)>;

#[derive(Clone)]
enum Rule {
    Vjp {
        fwd: FwdFn,
        bwd: BwdFn,
    },
    Jvp {
        rule: JvpFn,
    },
    /// The block again, for the backward pass to recompute it.
    Remat {
        block: FlatFn,
    },
}

/// One call of a function with a custom rule, as a primitive over its flattened leaves.
#[derive(Clone)]
pub struct CustomCall {
    what: &'static str,
    f: FlatFn,
    rule: Rule,
    ins: Vec<Aval>,
    outs: Outs<Aval>,
}

impl fmt::Debug for CustomCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:?} -> {:?})", self.what, self.ins, self.outs)
    }
}

/// Residuals held as a list of tensors.
struct Res(Vec<Tensor>);
impl Residuals for Res {
    fn residual_bytes(&self) -> usize {
        self.0.iter().map(|t| t.residual_bytes()).sum()
    }
}

fn to_vec(ts: &[&Tensor]) -> Vec<Tensor> {
    ts.iter().map(|t| (*t).clone()).collect()
}

/// Output cotangents with symbolic zeros made concrete (user functions take tensors).
fn materialise(cts: &[Option<Tensor>], avals: &[Aval]) -> Vec<Tensor> {
    cts.iter()
        .zip(avals)
        .map(|(c, a)| c.clone().unwrap_or_else(|| Tensor::full_of(&a.shape, 0.0, a.dtype)))
        .collect()
}

/// `Σ_i sum(a_i ⊙ b_i)` over float pairs, as a differentiable scalar.
fn inner(a: &[Tensor], b: &[Tensor]) -> Tensor {
    let mut acc: Option<Tensor> = None;
    for (x, y) in a.iter().zip(b) {
        if !x.dtype().is_float() {
            continue;
        }
        let s = (x * y).sum();
        acc = Some(match acc.take() {
            None => s,
            Some(p) => p + s,
        });
    }
    acc.unwrap_or_else(|| Tensor::scalar(0.0f32))
}

impl CustomCall {
    /// The output avals when `ins` are batched (`size` examples on axis 0).
    fn batched_avals(avals: &[Aval], size: usize) -> Outs<Aval> {
        avals
            .iter()
            .map(|a| {
                let mut s = a.shape.clone();
                s.insert(0, size);
                Aval { shape: s, dtype: a.dtype }
            })
            .collect()
    }
}

impl Primitive for CustomCall {
    fn name(&self) -> &'static str {
        self.what
    }

    /// The user's functions are not comparable: a custom call is never merged with another.
    fn cse_key(&self) -> Option<String> {
        None
    }

    fn shape(&self, args: &[Aval]) -> Outs<Aval> {
        assert!(
            args == self.ins.as_slice(),
            "adjoint: internal error: {} bound on {args:?}, built for {:?}",
            self.what,
            self.ins
        );
        self.outs.clone()
    }

    fn eval(&self, args: &[&Array]) -> Outs<Array> {
        let xs: Vec<Tensor> = args.iter().map(|a| Tensor::from_array((*a).clone())).collect();
        (self.f)(&xs)
            .into_iter()
            .map(|t| match t.0 {
                Repr::Concrete(a) => a,
                Repr::Tracer(_) => closes_over_tracer(self.what),
            })
            .collect()
    }

    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], outs: &[Tensor]) -> Outs<Option<Tensor>> {
        let primals = to_vec(p);
        let tangents: Vec<Tensor> =
            t.iter().zip(p).map(|(t, p)| t.cloned().unwrap_or_else(|| p.zeros_like())).collect();
        let touts = match &self.rule {
            Rule::Vjp { fwd, bwd } => {
                // J·t = ∇_c ⟨bwd(res, c), t⟩ (bwd is linear in c).
                let res = fwd(&primals).1;
                let zeros: Vec<Tensor> = outs.iter().map(|o| o.zeros_like()).collect();
                let g = floats_grad(&zeros, |c| inner(&bwd(&res, c), &tangents));
                g.into_iter().zip(outs).map(|(g, o)| g.unwrap_or_else(|| o.zeros_like())).collect()
            }
            Rule::Jvp { rule } => rule(&primals, &tangents).1,
            Rule::Remat { .. } => jvp_floats(&*self.f, &primals, &tangents),
        };
        touts.into_iter().zip(outs).map(|(t, o)| o.dtype().is_float().then_some(t)).collect()
    }

    fn jvp_with_forward(
        &self,
        p: &[&Tensor],
        t: &[Option<&Tensor>],
    ) -> Option<(Outs<Tensor>, Outs<Option<Tensor>>)> {
        // A custom JVP rule computes the outputs too: run it once instead of `f`, then the rule.
        let Rule::Jvp { rule } = &self.rule else { return None };
        let primals = to_vec(p);
        let tangents: Vec<Tensor> =
            t.iter().zip(p).map(|(t, p)| t.cloned().unwrap_or_else(|| p.zeros_like())).collect();
        let (outs, touts) = rule(&primals, &tangents);
        let touts = touts.into_iter().zip(&outs).map(|(t, o)| o.dtype().is_float().then_some(t)).collect();
        Some((outs.into_iter().collect(), touts))
    }

    fn vjp(&self, p: &[&Tensor], _outs: &[Tensor], _wants: &[bool]) -> Pullback {
        let primals = to_vec(p);
        let avals = self.outs.clone();
        match &self.rule {
            Rule::Vjp { fwd, bwd } => {
                let res = fwd(&primals).1;
                let bwd = bwd.clone();
                Pullback::multi(Res(res), move |r, cts| {
                    bwd(&r.0, &materialise(cts, &avals)).into_iter().map(Some).collect()
                })
            }
            Rule::Jvp { rule } => {
                // ∇_t ⟨jvp(x, t).1, c⟩ (the rule is linear in t); integer inputs get none.
                let rule = rule.clone();
                Pullback::multi(Res(primals), move |r, cts| {
                    let cts = materialise(cts, &avals);
                    let zeros: Vec<Tensor> = r.0.iter().map(|x| x.zeros_like()).collect();
                    floats_grad(&zeros, |t| inner(&rule(&r.0, t).1, &cts))
                })
            }
            Rule::Remat { block } => {
                // Keep only the inputs; recompute the block in the backward pass.
                let block = block.clone();
                Pullback::multi(Res(primals), move |r, cts| {
                    let cts = materialise(cts, &avals);
                    let floats: Vec<bool> = r.0.iter().map(|x| x.dtype().is_float()).collect();
                    let xs: Vec<Tensor> = r.0.iter().filter(|x| x.dtype().is_float()).cloned().collect();
                    let (_, pb) = vjp(|xs: &Vec<Tensor>| block(&merge(&r.0, &floats, xs)), &xs);
                    let mut gs = pb(&cts).into_iter();
                    floats.iter().map(|&fl| if fl { gs.next() } else { None }).collect::<Grads>()
                })
            }
        }
    }

    fn vjp_with_forward(&self, p: &[&Tensor], _wants: &[bool]) -> Option<(Outs<Tensor>, Pullback)> {
        // A custom VJP runs the user's `fwd` for the outputs and the residuals, once.
        let Rule::Vjp { fwd, bwd } = &self.rule else { return None };
        let (outs, res) = fwd(&to_vec(p));
        let (bwd, avals) = (bwd.clone(), self.outs.clone());
        let pb = Pullback::multi(Res(res), move |r, cts| {
            bwd(&r.0, &materialise(cts, &avals)).into_iter().map(Some).collect()
        });
        Some((outs.into_iter().collect(), pb))
    }

    fn batch(
        &self,
        args: &[&Tensor],
        axes: &[Option<usize>],
        size: usize,
    ) -> (Outs<Tensor>, Outs<Option<usize>>) {
        if size == 0 {
            return by_loop(self, args, axes, size);
        }
        // Batch axes to the front; the functions one level down are the user's under vmap.
        let xs: Vec<Tensor> =
            args.iter().zip(axes).map(|(t, a)| a.map_or((*t).clone(), |a| move_axis(t, a, 0))).collect();
        let in_axes: Vec<Option<usize>> = axes.iter().map(|a| a.map(|_| 0)).collect();
        let f = self.f.clone();
        let ia = in_axes.clone();
        let bf: FlatFn = Rc::new(move |x: &[Tensor]| vmap_leaves(|y: &Vec<Tensor>| f(y), &x.to_vec(), &ia));
        let rule = match &self.rule {
            Rule::Vjp { fwd, bwd } => {
                let (fwd, ia) = (fwd.clone(), in_axes.clone());
                let bfwd: FwdFn =
                    Rc::new(move |x: &[Tensor]| vmap_leaves(|y: &Vec<Tensor>| fwd(y), &x.to_vec(), &ia));
                let (bwd, ia) = (bwd.clone(), in_axes.clone());
                let bbwd: BwdFn = Rc::new(move |r: &[Tensor], c: &[Tensor]| {
                    let all = vec![Some(0); r.len() + c.len()];
                    let rc = (r.to_vec(), c.to_vec());
                    let g: Vec<Tensor> =
                        vmap_leaves(|q: &(Vec<Tensor>, Vec<Tensor>)| bwd(&q.0, &q.1), &rc, &all);
                    // An input shared by every example gets the sum over the batch.
                    g.into_iter()
                        .zip(&ia)
                        .map(|(g, a)| if a.is_none() { g.sum_axes(&[0], false) } else { g })
                        .collect()
                });
                Rule::Vjp { fwd: bfwd, bwd: bbwd }
            }
            Rule::Jvp { rule } => {
                let (rule, ia) = (rule.clone(), in_axes.clone());
                let pair_axes: Vec<Option<usize>> = [ia.as_slice(), ia.as_slice()].concat();
                Rule::Jvp {
                    rule: Rc::new(move |x: &[Tensor], t: &[Tensor]| {
                        let q = (x.to_vec(), t.to_vec());
                        vmap_leaves(|q: &(Vec<Tensor>, Vec<Tensor>)| rule(&q.0, &q.1), &q, &pair_axes)
                    }),
                }
            }
            Rule::Remat { block } => {
                let (block, ia) = (block.clone(), in_axes.clone());
                Rule::Remat {
                    block: Rc::new(move |x: &[Tensor]| {
                        vmap_leaves(|y: &Vec<Tensor>| block(y), &x.to_vec(), &ia)
                    }),
                }
            }
        };
        let call = CustomCall {
            what: self.what,
            f: bf,
            rule,
            ins: xs.iter().map(Aval::of).collect(),
            outs: CustomCall::batched_avals(&self.outs, size),
        };
        let refs: Vec<&Tensor> = xs.iter().collect();
        let outs = bind_multi(&call, &refs);
        let n = outs.len();
        (outs, std::iter::repeat_n(Some(0), n).collect())
    }
}

/// Forward mode of `f` in its float leaves (integer and bool leaves are constants).
fn jvp_floats(f: &dyn Fn(&[Tensor]) -> Vec<Tensor>, xs: &[Tensor], ts: &[Tensor]) -> Vec<Tensor> {
    let floats: Vec<bool> = xs.iter().map(|x| x.dtype().is_float()).collect();
    let px: Vec<Tensor> = xs.iter().filter(|x| x.dtype().is_float()).cloned().collect();
    let pt: Vec<Tensor> =
        xs.iter().zip(ts).filter(|(x, _)| x.dtype().is_float()).map(|(_, t)| t.clone()).collect();
    jvp(|q: &Vec<Tensor>| f(&merge(xs, &floats, q)), &px, &pt).1
}

/// `all` with its float leaves replaced by `floats_new`, in order.
fn merge(all: &[Tensor], floats: &[bool], floats_new: &[Tensor]) -> Vec<Tensor> {
    let mut it = floats_new.iter();
    all.iter()
        .zip(floats)
        .map(|(x, &fl)| if fl { it.next().cloned().unwrap_or_else(|| x.clone()) } else { x.clone() })
        .collect()
}

/// The gradient of `f` in the float entries of `at` (`None` for the others).
fn floats_grad(at: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor) -> Grads {
    let floats: Vec<bool> = at.iter().map(|x| x.dtype().is_float()).collect();
    let xs: Vec<Tensor> = at.iter().filter(|x| x.dtype().is_float()).cloned().collect();
    let mut gs = grad(|xs: &Vec<Tensor>| f(&merge(at, &floats, xs)))(&xs).into_iter();
    floats.iter().map(|&fl| if fl { gs.next() } else { None }).collect()
}

#[cold]
#[track_caller]
fn closes_over_tracer(what: &str) -> ! {
    panic!(
        "adjoint: {what}: the function returned a value traced by an enclosing transform, so it \
         closes over a traced value; pass that value as an input of the {what} function instead \
         (at {})",
        std::panic::Location::caller()
    )
}

// ------------------------------------------------------------------------ the call

/// A concrete stand-in for `t`: its value under every transform (for a `vmap` tracer, the
/// first example; zeros for an empty batch). Used to find a custom call's output shapes.
fn stand_in(t: &Tensor) -> Tensor {
    match &t.0 {
        Repr::Concrete(_) => t.clone(),
        Repr::Tracer(tr) => match &tr.payload {
            Payload::Batch { value, axis, shape } => {
                if value.shape()[*axis] == 0 {
                    Tensor::full_of(shape, 0.0, value.dtype())
                } else {
                    stand_in(&value.narrow(*axis, 0, 1).squeeze(*axis))
                }
            }
            // A staged value has no value yet: zeros of its type find the output shapes.
            Payload::Stage { aval, .. } => Tensor::full_of(&aval.shape, 0.0, aval.dtype),
            p => stand_in(p.primal()),
        },
    }
}

/// Input avals, output avals and an output template.
type CacheEntry<O> = (Vec<Aval>, Outs<Aval>, Rc<O>);

/// Output shapes and an output template per input signature, shared by every call of one
/// custom function.
///
/// Finding the shapes runs the function once on the inputs' stand-ins, which under `grad` and
/// `jvp` are the primal inputs themselves. That output is kept (`first`) until the call that
/// found it returns, so that the rule's own forward pass — a custom VJP's `fwd` that calls the
/// function, as every solver's does — takes it instead of computing the same value again: a
/// custom function called once (an `odeint` closure built per gradient, as GradBench's `ode`
/// does) otherwise ran its whole forward solve twice.
struct Cache<O> {
    entries: RefCell<Vec<CacheEntry<O>>>,
    first: RefCell<Option<(Vec<Tensor>, O)>>,
}

impl<O: Params> Cache<O> {
    fn new() -> Rc<Self> {
        Rc::new(Cache { entries: RefCell::new(Vec::new()), first: RefCell::new(None) })
    }

    fn get(&self, ins: &[Aval], leaves: &[Tensor], f: &dyn Fn(&[Tensor]) -> O) -> (Outs<Aval>, Rc<O>) {
        if let Some((_, o, t)) = self.entries.borrow().iter().find(|(i, _, _)| i.as_slice() == ins) {
            return (o.clone(), t.clone());
        }
        let examples: Vec<Tensor> = leaves.iter().map(stand_in).collect();
        let out = f(&examples);
        let mut avals = Outs::new();
        out.for_each_tensor(&mut |t| avals.push(Aval::of(t)));
        let template = Rc::new(out.map_tensors(&mut |_| Tensor::scalar(0.0f32)));
        self.entries.borrow_mut().push((ins.to_vec(), avals.clone(), template.clone()));
        *self.first.borrow_mut() = Some((examples, out));
        (avals, template)
    }

    /// The output the shape search computed, if it was computed on exactly these inputs (the
    /// same storage, layout and dtype: arrays are immutable while shared, so the same value).
    fn take_first(&self, leaves: &[Tensor]) -> Option<O> {
        let mut first = self.first.borrow_mut();
        let hit = first.as_ref().is_some_and(|(ins, _)| {
            ins.len() == leaves.len() && ins.iter().zip(leaves).all(|(a, b)| a.is_same(b))
        });
        hit.then(|| first.take().expect("checked").1)
    }
}

/// Call `f` on `p` as the custom call built by `make` (or directly when nothing is traced).
fn call<P: Params, O: Params>(
    what: &'static str,
    p: &P,
    cache: &Cache<O>,
    f: &dyn Fn(&[Tensor]) -> O,
    flat: FlatFn,
    rule: Rule,
) -> O {
    let leaves = p.leaves();
    let refs: Vec<&Tensor> = leaves.iter().collect();
    if depth() == 0 || top_of(&refs).is_none() {
        return cache.take_first(&leaves).unwrap_or_else(|| f(&leaves));
    }
    let ins: Vec<Aval> = leaves.iter().map(Aval::of).collect();
    let (outs, template) = cache.get(&ins, &leaves, f);
    let c = CustomCall { what, f: flat, rule, ins, outs };
    let out: SmallVec<[Tensor; 1]> = bind_multi(&c, &refs);
    // Not taken by the rule (or found on stand-ins that are not the inputs): free it now.
    cache.first.borrow_mut().take();
    template.with_leaves(&out)
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
    F: Fn(&P) -> Tensor + 'static,
    Fwd: Fn(&P) -> (Tensor, R) + 'static,
    Bwd: Fn(&R, &Tensor) -> P + 'static,
{
    let (f, fwd, bwd) = (Rc::new(f), Rc::new(fwd), Rc::new(bwd));
    let cache = Cache::<Tensor>::new();
    move |p: &P| {
        let tp = Rc::new(p.map_tensors(&mut |t| t.clone()));
        let (f1, t1) = (f.clone(), tp.clone());
        let direct = move |x: &[Tensor]| f1(&t1.with_leaves(x));
        let (f2, t2) = (f.clone(), tp.clone());
        let flat: FlatFn = Rc::new(move |x: &[Tensor]| vec![f2(&t2.with_leaves(x))]);
        let (fw, t3) = (fwd.clone(), tp.clone());
        // Residual structure is known once `fwd` has run: keep it for `bwd`.
        let rtemplate: Rc<RefCell<Option<R>>> = Rc::new(RefCell::new(None));
        let rt = rtemplate.clone();
        let flat_fwd: FwdFn = Rc::new(move |x: &[Tensor]| {
            let (o, r) = fw(&t3.with_leaves(x));
            let leaves = r.leaves();
            *rt.borrow_mut() = Some(r.map_tensors(&mut |_| Tensor::scalar(0.0f32)));
            (vec![o], leaves)
        });
        let bw = bwd.clone();
        let flat_bwd: BwdFn = Rc::new(move |r: &[Tensor], c: &[Tensor]| {
            let rs = rtemplate.borrow().as_ref().expect("fwd ran before bwd").with_leaves(r);
            let g = bw(&rs, &c[0]);
            g.leaves()
        });
        call("custom_vjp", p, &cache, &direct, flat, Rule::Vjp { fwd: flat_fwd, bwd: flat_bwd })
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
    F: Fn(&P) -> Tensor + 'static,
    J: Fn(&P, &P) -> (Tensor, Tensor) + 'static,
{
    let (f, rule) = (Rc::new(f), Rc::new(rule));
    let cache = Cache::<Tensor>::new();
    move |p: &P| {
        let tp = Rc::new(p.map_tensors(&mut |t| t.clone()));
        let (f1, t1) = (f.clone(), tp.clone());
        let direct = move |x: &[Tensor]| f1(&t1.with_leaves(x));
        let (f2, t2) = (f.clone(), tp.clone());
        let flat: FlatFn = Rc::new(move |x: &[Tensor]| vec![f2(&t2.with_leaves(x))]);
        let (r, t3) = (rule.clone(), tp.clone());
        let flat_rule: JvpFn = Rc::new(move |x: &[Tensor], t: &[Tensor]| {
            let (o, to) = r(&t3.with_leaves(x), &t3.with_leaves(t));
            (vec![o], vec![to])
        });
        call("custom_jvp", p, &cache, &direct, flat, Rule::Jvp { rule: flat_rule })
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
    let f = Rc::new(f);
    let cache = Cache::<O>::new();
    move |p: &P| {
        let tp = Rc::new(p.map_tensors(&mut |t| t.clone()));
        let (f1, t1) = (f.clone(), tp.clone());
        let direct = move |x: &[Tensor]| f1(&t1.with_leaves(x));
        let (f2, t2) = (f.clone(), tp.clone());
        let block: FlatFn = Rc::new(move |x: &[Tensor]| f2(&t2.with_leaves(x)).leaves());
        call("checkpoint", p, &cache, &direct, block.clone(), Rule::Remat { block })
    }
}
