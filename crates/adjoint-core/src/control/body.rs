//! Loop and branch bodies as programs: tracing a closure once into an [`Ir`] at abstract
//! values, hoisting the tracers it closes over into explicit inputs, running a body, and the
//! three body transforms (JVP, VJP, vmap) that the control-flow primitives' rules are built
//! from. Each transform traces "run the body under the transform" into a new program, so a
//! derived body is again made of primitives and can be transformed again (second order).

use std::rc::Rc;

use crate::jit::exec::Executable;
use crate::jit::ir::{Eqn, Ir, Var};
use crate::jit::stage;
use crate::primitive::Aval;
use crate::prims;
use crate::tensor::Tensor;
use crate::transforms::{jvp, vjp};
use crate::vmap::vmap_leaves;

/// A traced body, ready to run many times (its last-use table is computed once).
#[derive(Clone)]
pub(crate) struct Body(pub(crate) Rc<Executable>);

impl Body {
    /// The body after `jit`'s passes (folding, exact simplifications, CSE, DCE): a body is
    /// run once per trip, so a derived body's leftovers (`x · 1`, repeated `cos q`) cost
    /// every step.
    pub(crate) fn new(ir: Ir) -> Body {
        Body(Rc::new(Executable::new(crate::jit::passes::optimize(ir))))
    }
    /// The body scalarised, when its values are tiny (see [`crate::jit::small`]).
    pub(crate) fn small(&self) -> Option<&crate::jit::small::SmallPlan> {
        self.0.small()
    }
    pub(crate) fn ir(&self) -> &Ir {
        &self.0.ir
    }
    pub(crate) fn in_avals(&self) -> Vec<Aval> {
        self.ir().inputs.iter().map(|&v| self.ir().avals[v].clone()).collect()
    }
    pub(crate) fn out_avals(&self) -> Vec<Aval> {
        self.ir().outputs.iter().map(|&v| self.ir().avals[v].clone()).collect()
    }
    /// Run the body: its equations are bound again, so transforms active on `ins` apply.
    pub(crate) fn run(&self, ins: &[Tensor]) -> Vec<Tensor> {
        self.0.run(ins)
    }
    /// The number of equations (for `Debug`).
    pub(crate) fn len(&self) -> usize {
        self.ir().eqns.len()
    }
}

/// The shape rule's check of a loop primitive's operands against the avals its body was staged
/// at, panicking through [`misuse`](crate::primitive::misuse) with the op's name.
#[track_caller]
pub(crate) fn check_operands(op: &str, args: &[Aval], want: &[Aval]) {
    if args != want {
        crate::primitive::misuse(op, format!("operands {args:?} do not match the staged body's {want:?}"));
    }
}

/// A concrete placeholder of `aval` (tracing only reads its abstract value).
pub(crate) fn placeholder(a: &Aval) -> Tensor {
    Tensor::full_of(&a.shape, 0.0, a.dtype)
}

/// Trace `f` over flat leaves of abstract values `avals` into a body. Tracers of enclosing
/// transforms that `f` closes over are hoisted out of the program's constants: they become the
/// body's first inputs and are returned, to be passed as explicit operands (so those transforms
/// see the dependence). Concrete constants stay inside the program.
#[track_caller]
pub(crate) fn trace_flat(avals: &[Aval], f: impl FnOnce(&[Tensor]) -> Vec<Tensor>) -> (Ir, Vec<Tensor>) {
    let ph: Vec<Tensor> = avals.iter().map(placeholder).collect();
    let (mut ir, _) = stage::trace(|v: &Vec<Tensor>| f(v), &ph);
    let mut hoisted = Vec::new();
    let mut front = Vec::new();
    ir.consts.retain(|(v, t)| {
        if t.is_tracer() {
            front.push(*v);
            hoisted.push(t.clone());
            false
        } else {
            true
        }
    });
    front.extend_from_slice(&ir.inputs);
    ir.inputs = front;
    (ir, hoisted)
}

/// Trace a function of flat leaves that must not close over tracers (a body transform).
pub(crate) fn trace_closed(avals: &[Aval], f: impl FnOnce(&[Tensor]) -> Vec<Tensor>) -> Ir {
    let (ir, hoisted) = trace_flat(avals, f);
    assert!(hoisted.is_empty(), "adjoint: internal error: a derived loop body closes over a tracer");
    ir
}

/// Which entries are floating point (the differentiable ones).
pub(crate) fn floats(avals: &[Aval]) -> Vec<bool> {
    avals.iter().map(|a| a.dtype.is_float()).collect()
}

/// The entries of `xs` where `mask` holds.
pub(crate) fn pick<T: Clone>(xs: &[T], mask: &[bool]) -> Vec<T> {
    xs.iter().zip(mask).filter(|&(_, &m)| m).map(|(x, _)| x.clone()).collect()
}

/// `all` with its masked entries replaced by `new`, in order.
pub(crate) fn merge(all: &[Tensor], mask: &[bool], new: &[Tensor]) -> Vec<Tensor> {
    let mut it = new.iter();
    all.iter()
        .zip(mask)
        .map(|(x, &m)| if m { it.next().expect("one per masked entry").clone() } else { x.clone() })
        .collect()
}

/// Reorder a program's inputs: input `i` of the result is input `perm[i]` of `ir`.
pub(crate) fn permute_inputs(mut ir: Ir, perm: &[usize]) -> Ir {
    ir.inputs = perm.iter().map(|&i| ir.inputs[i]).collect();
    ir
}

/// Reorder a program's outputs: output `i` of the result is output `perm[i]` of `ir`.
pub(crate) fn permute_outputs(mut ir: Ir, perm: &[usize]) -> Ir {
    ir.outputs = perm.iter().map(|&i| ir.outputs[i]).collect();
    ir
}

/// Index permutation that interleaves groups: `groups` lists `(start, len)` ranges of the
/// original order, concatenated in the given order.
pub(crate) fn ranges(groups: &[(usize, usize)]) -> Vec<usize> {
    groups.iter().flat_map(|&(s, n)| s..s + n).collect()
}

/// The forward-mode body: inputs `[ins…, tangents of the float ins…]`, outputs
/// `[outs…, tangents of the float outs…]`.
pub(crate) fn jvp_body(body: &Body) -> Ir {
    let in_avals = body.in_avals();
    let fin = floats(&in_avals);
    let fout = floats(&body.out_avals());
    let n = in_avals.len();
    let mut avals = in_avals.clone();
    avals.extend(pick(&in_avals, &fin));
    let b = body.clone();
    trace_closed(&avals, move |v| {
        let (p, t) = v.split_at(n);
        let fp = pick(p, &fin);
        let (outs, touts) = jvp(|q: &Vec<Tensor>| b.run(&merge(p, &fin, q)), &fp, &t.to_vec());
        let mut r = outs;
        r.extend(pick(&touts, &fout));
        r
    })
}

/// The reverse-mode body: inputs `[ins…, cotangents of the float outs…]`, outputs the
/// cotangents of the float ins.
pub(crate) fn vjp_body(body: &Body) -> Ir {
    let in_avals = body.in_avals();
    let out_avals = body.out_avals();
    let fin = floats(&in_avals);
    let fout = floats(&out_avals);
    let n = in_avals.len();
    let mut avals = in_avals.clone();
    avals.extend(pick(&out_avals, &fout));
    let b = body.clone();
    trace_closed(&avals, move |v| {
        let (p, c) = v.split_at(n);
        let fp = pick(p, &fin);
        let fo = fout.clone();
        let (_, pb) = vjp(|q: &Vec<Tensor>| pick(&b.run(&merge(p, &fin, q)), &fo), &fp);
        pb(&c.to_vec())
    })
}

/// The batched body: input `i` has a batch axis 0 of `size` where `axes[i]` is set; every
/// output has a batch axis 0 (unbatched ones are broadcast).
pub(crate) fn vmap_body(body: &Body, axes: &[Option<usize>], size: usize) -> Ir {
    let avals: Vec<Aval> = body
        .in_avals()
        .into_iter()
        .zip(axes)
        .map(|(mut a, ax)| {
            if ax.is_some() {
                a.shape.insert(0, size);
            }
            a
        })
        .collect();
    let b = body.clone();
    let axes = axes.to_vec();
    trace_closed(&avals, move |v| vmap_leaves(|q: &Vec<Tensor>| b.run(q), &v.to_vec(), &axes))
}

/// Partial evaluation of a reverse-mode loop body, as JAX does for `scan`: the equations of
/// the backward body `bir` that read only values known in the forward pass (the loop's
/// constants, the step's carry and `x`, literals) move into the forward body `fir`, which
/// emits the ones the rest of the backward body reads as extra `ys` (residuals, stacked by the
/// forward scan); the backward body takes them as extra `xs` at the end of its inputs instead
/// of recomputing them. `known` pairs an input index of `bir` with the input index of `fir`
/// holding the same value.
///
/// Only small residuals are stored (at most [`SMALL_LIMIT`](crate::jit::small::SMALL_LIMIT)
/// elements, float): a larger or non-float value is recomputed in the backward body. Returns
/// `None` when nothing moves. The forward body's duplicate work (the moved equations repeat
/// its own) is merged by CSE when the body is built ([`Body::new`]).
pub(crate) fn split_residuals(fir: &Ir, bir: &Ir, known: &[(usize, usize)]) -> Option<(Ir, Ir, usize)> {
    use crate::jit::small::SMALL_LIMIT;
    let n = bir.avals.len();
    let mut forced = vec![false; bir.eqns.len()];
    let mut producer: Vec<Option<usize>> = vec![None; n];
    for (i, e) in bir.eqns.iter().enumerate() {
        for &o in &e.outs {
            producer[o] = Some(i);
        }
    }
    let (keq, res) = loop {
        let mut kn = vec![false; n];
        for &(bi, _) in known {
            kn[bir.inputs[bi]] = true;
        }
        for (v, _) in &bir.consts {
            kn[*v] = true;
        }
        let mut keq = vec![false; bir.eqns.len()];
        for (i, e) in bir.eqns.iter().enumerate() {
            keq[i] = !forced[i] && e.ins.iter().all(|&v| kn[v]);
            for &o in &e.outs {
                kn[o] = keq[i];
            }
        }
        // Residuals: values of moved equations read by a remaining one or returned.
        let mut wanted = vec![false; n];
        for (i, e) in bir.eqns.iter().enumerate() {
            if !keq[i] {
                e.ins.iter().for_each(|&v| wanted[v] = true);
            }
        }
        bir.outputs.iter().for_each(|&v| wanted[v] = true);
        let res: Vec<Var> = (0..n).filter(|&v| wanted[v] && producer[v].is_some_and(|p| keq[p])).collect();
        let mut changed = false;
        for &v in &res {
            let a = &bir.avals[v];
            if !a.dtype.is_float() || a.shape.iter().product::<usize>() > SMALL_LIMIT {
                forced[producer[v].expect("a residual has a producer")] = true;
                changed = true;
            }
        }
        if !changed {
            break (keq, res);
        }
    };
    if !keq.iter().any(|&k| k) {
        return None;
    }
    // The forward body, extended.
    let mut fwd = fir.clone();
    let mut fmap: Vec<Option<Var>> = vec![None; n];
    for &(bi, fi) in known {
        fmap[bir.inputs[bi]] = Some(fir.inputs[fi]);
    }
    for (v, t) in &bir.consts {
        // Reuse an equal literal of the forward body, so CSE can merge the repeated work.
        let same = fwd.consts.iter().find(|(_, u)| {
            crate::primitive::Aval::of(u) == bir.avals[*v]
                && matches!((&u.0, &t.0), (crate::tensor::Repr::Concrete(a), crate::tensor::Repr::Concrete(b))
                    if a.to_vec::<f64>().iter().map(|x| x.to_bits()).eq(b.to_vec::<f64>().iter().map(|x| x.to_bits())))
        });
        fmap[*v] = Some(match same {
            Some((u, _)) => *u,
            None => {
                let u = fwd.new_var(bir.avals[*v].clone());
                fwd.consts.push((u, t.clone()));
                u
            }
        });
    }
    for (i, e) in bir.eqns.iter().enumerate() {
        if !keq[i] {
            continue;
        }
        let ins = e.ins.iter().map(|&v| fmap[v].expect("a moved equation reads known values")).collect();
        let outs = e
            .outs
            .iter()
            .map(|&o| {
                let u = fwd.new_var(bir.avals[o].clone());
                fmap[o] = Some(u);
                u
            })
            .collect();
        fwd.eqns.push(Eqn { prim: e.prim.clone(), ins, outs });
    }
    // The residuals travel packed into one vector (one stacked `y`, one `x` of the backward
    // scan): reshapes, a concat and slices, which a scalarised body resolves to register
    // aliases, so a step copies one contiguous run instead of one per residual.
    let dtype = bir.avals[res[0]].dtype;
    let sizes: Vec<usize> = res.iter().map(|&v| bir.avals[v].shape.iter().product()).collect();
    let total: usize = sizes.iter().sum();
    let packable = total <= SMALL_LIMIT && res.iter().all(|&v| bir.avals[v].dtype == dtype);
    let mut bwd = bir.clone();
    bwd.eqns.clear();
    if packable {
        let flat: Vec<Var> = res
            .iter()
            .zip(&sizes)
            .map(|(&v, &k)| {
                let u = fwd.new_var(Aval::new(&[k], dtype));
                let src = fmap[v].expect("residuals are computed");
                fwd.eqns.push(Eqn {
                    prim: Rc::new(prims::reshape::Reshape(vec![k])),
                    ins: [src].into_iter().collect(),
                    outs: [u].into_iter().collect(),
                });
                u
            })
            .collect();
        let packed = fwd.new_var(Aval::new(&[total], dtype));
        fwd.eqns.push(Eqn {
            prim: Rc::new(prims::concat::Concat(0)),
            ins: flat.into_iter().collect(),
            outs: [packed].into_iter().collect(),
        });
        fwd.outputs.push(packed);
        let pin = bwd.new_var(Aval::new(&[total], dtype));
        bwd.inputs.push(pin);
        let mut at = 0;
        for (&v, &k) in res.iter().zip(&sizes) {
            let piece = bwd.new_var(Aval::new(&[k], dtype));
            bwd.eqns.push(Eqn {
                prim: Rc::new(prims::slice::Slice { axis: 0, start: at, end: at + k, step: 1 }),
                ins: [pin].into_iter().collect(),
                outs: [piece].into_iter().collect(),
            });
            bwd.eqns.push(Eqn {
                prim: Rc::new(prims::reshape::Reshape(bir.avals[v].shape.to_vec())),
                ins: [piece].into_iter().collect(),
                outs: [v].into_iter().collect(),
            });
            at += k;
        }
    } else {
        fwd.outputs.extend(res.iter().map(|&v| fmap[v].expect("residuals are computed")));
        bwd.inputs.extend(res.iter().copied());
    }
    // The backward body, without the moved equations.
    bwd.eqns.extend(bir.eqns.iter().zip(&keq).filter(|&(_, &k)| !k).map(|(e, _)| e.clone()));
    Some((fwd, bwd, if packable { 1 } else { res.len() }))
}
