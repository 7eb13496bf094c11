//! The `cond` primitive: two branch programs over the same operands, one of which runs.
//!
//! Operands are `[pred, true-branch consts…, false-branch consts…, operands…]`; both branch
//! programs take all of them but the predicate (each ignores the other's constants), so every
//! rule treats the branches alike. The rules:
//! - `jvp`: a `cond` over `(operands, tangents)` of the branches' JVP programs;
//! - `vjp`: the residuals are the operands; the pullback is a `cond` of the branches' VJP
//!   programs (each recomputes its branch's forward pass), so it is made of primitives and
//!   second order works;
//! - `batch`: with an unbatched predicate, a `cond` of the branches under `vmap`; with a
//!   batched one, both batched branches run and `select` picks per example.

use std::fmt;

use adjoint_tensor::{Array, DType};

use super::body::{floats, jvp_body, pick, vjp_body, vmap_body, Body};
use super::scan::{materialise, Res};
use crate::batching::{move_axis, to_front};
use crate::jit::ir::Ir;
use crate::primitive::{Aval, Grads, Outs, Primitive, Pullback};
use crate::tensor::Tensor;
use crate::trace::bind_multi;

/// `branches[1](ops)` if the predicate is nonzero, else `branches[0](ops)`; bound by
/// [`cond`](crate::cond) under a transform.
///
/// ```
/// use adjoint_core::{cond, jit::make_ir, Tensor};
/// let f = |x: &Tensor| cond(&x.gt_scalar(0.0), |x: &Tensor| x.sin(), |x: &Tensor| x.cos(), x);
/// let ir = make_ir(f)(&Tensor::scalar(1.0f64));
/// assert_eq!(ir.eqns.last().map(|e| e.prim.name()), Some("cond"));
/// ```
#[derive(Clone)]
pub struct Cond {
    pub(crate) branches: [Body; 2],
}

impl fmt::Debug for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cond {{ operands: {}, outputs: {}, false_eqns: {}, true_eqns: {} }}",
            self.branches[0].ir().inputs.len(),
            self.branches[0].ir().outputs.len(),
            self.branches[0].len(),
            self.branches[1].len()
        )
    }
}

/// `ir` with `n` unused inputs of `avals` inserted at input position `at`.
fn pad_inputs(mut ir: Ir, at: usize, avals: &[Aval]) -> Ir {
    let new: Vec<usize> = avals.iter().map(|a| ir.new_var(a.clone())).collect();
    let tail = ir.inputs.split_off(at);
    ir.inputs.extend(new);
    ir.inputs.extend(tail);
    ir
}

impl Cond {
    /// Branches traced with `nt` and `nf` hoisted constants in front of the shared operands.
    pub(crate) fn new(on_true: Ir, nt: usize, on_false: Ir, nf: usize) -> Cond {
        let ins = |ir: &Ir, r: std::ops::Range<usize>| -> Vec<Aval> {
            ir.inputs[r].iter().map(|&v| ir.avals[v].clone()).collect()
        };
        let (ta, fa) = (ins(&on_true, 0..nt), ins(&on_false, 0..nf));
        let t = pad_inputs(on_true, nt, &fa);
        let f = pad_inputs(on_false, 0, &ta);
        Cond { branches: [Body::new(f), Body::new(t)] }
    }

    fn with(bodies: [Ir; 2]) -> Cond {
        let [f, t] = bodies;
        Cond { branches: [Body::new(f), Body::new(t)] }
    }
}

impl Primitive for Cond {
    fn name(&self) -> &'static str {
        "cond"
    }

    fn cse_key(&self) -> Option<String> {
        None
    }

    #[track_caller]
    fn shape(&self, args: &[Aval]) -> Outs<Aval> {
        let want = self.branches[0].in_avals();
        if args.first().is_none_or(|p| p.rank() != 0) || args[1..] != want[..] {
            crate::primitive::misuse(
                "cond",
                format!("operands {args:?}: want a 0-d predicate, then {want:?}"),
            );
        }
        self.branches[0].out_avals().into_iter().collect()
    }

    fn eval(&self, args: &[&Array]) -> Outs<Array> {
        let ts: Vec<Tensor> = args[1..].iter().map(|a| Tensor::from_array((*a).clone())).collect();
        let p = Tensor::from_array(args[0].clone()).item() != 0.0;
        self.branches[p as usize].run(&ts).into_iter().map(|t| t.value().clone()).collect()
    }

    fn jvp(&self, _: &[&Tensor], _: &[Option<&Tensor>], _: &[Tensor]) -> Outs<Option<Tensor>> {
        unreachable!("cond: forward mode goes through jvp_with_forward")
    }

    fn jvp_with_forward(
        &self,
        primals: &[&Tensor],
        tangents: &[Option<&Tensor>],
    ) -> Option<(Outs<Tensor>, Outs<Option<Tensor>>)> {
        let fin = floats(&self.branches[0].in_avals());
        let fout = floats(&self.branches[0].out_avals());
        let c = Cond::with([jvp_body(&self.branches[0]), jvp_body(&self.branches[1])]);
        let tan: Vec<Tensor> = primals[1..]
            .iter()
            .zip(&tangents[1..])
            .zip(&fin)
            .filter(|&(_, &f)| f)
            .map(|((p, t), _)| t.cloned().unwrap_or_else(|| p.zeros_like()))
            .collect();
        let mut ops: Vec<&Tensor> = primals.to_vec();
        ops.extend(tan.iter());
        let res = bind_multi(&c, &ops);
        let m = fout.len();
        let outs: Outs<Tensor> = res[..m].iter().cloned().collect();
        let mut ts = res[m..].iter();
        let touts = fout.iter().map(|&f| if f { ts.next().cloned() } else { None }).collect();
        Some((outs, touts))
    }

    fn vjp(&self, _: &[&Tensor], _: &[Tensor], _: &[bool]) -> Pullback {
        unreachable!("cond: reverse mode goes through vjp_with_forward")
    }

    fn vjp_with_forward(&self, primals: &[&Tensor], _wants: &[bool]) -> Option<(Outs<Tensor>, Pullback)> {
        let outs = bind_multi(self, primals);
        let fin = floats(&self.branches[0].in_avals());
        let out_avals = self.branches[0].out_avals();
        let fout = floats(&out_avals);
        let back = Cond::with([vjp_body(&self.branches[0]), vjp_body(&self.branches[1])]);
        let res: Vec<Tensor> = primals.iter().map(|t| (*t).clone()).collect();
        let pb = Pullback::multi(Res(res), move |r, cts| {
            let cts = pick(&materialise(cts, &out_avals), &fout);
            let mut ops: Vec<&Tensor> = r.0.iter().collect();
            ops.extend(cts.iter());
            let g = bind_multi(&back, &ops);
            let mut gs = g.into_iter();
            let mut all: Grads = Grads::new();
            all.push(None);
            all.extend(fin.iter().map(|&f| if f { gs.next() } else { None }));
            all
        });
        Some((outs, pb))
    }

    fn batch(
        &self,
        args: &[&Tensor],
        axes: &[Option<usize>],
        size: usize,
    ) -> (Outs<Tensor>, Outs<Option<usize>>) {
        if size == 0 {
            return crate::batching::by_loop(self, args, axes, size);
        }
        let ops: Vec<Tensor> = args[1..]
            .iter()
            .zip(&axes[1..])
            .map(|(t, a)| a.map_or((*t).clone(), |a| move_axis(t, a, 0)))
            .collect();
        let oax: Vec<Option<usize>> = axes[1..].iter().map(|a| a.map(|_| 0)).collect();
        let any_op = oax.iter().any(|a| a.is_some());
        let m = self.branches[0].out_avals().len();
        if axes[0].is_none() {
            let c = Cond::with([
                vmap_body(&self.branches[0], &oax, size),
                vmap_body(&self.branches[1], &oax, size),
            ]);
            let mut refs: Vec<&Tensor> = vec![args[0]];
            refs.extend(ops.iter());
            return (bind_multi(&c, &refs), std::iter::repeat_n(Some(0), m).collect());
        }
        // A batched predicate: run both branches on the whole batch and select per example.
        let run = |b: &Body| -> Vec<Tensor> {
            if any_op {
                Body::new(vmap_body(b, &oax, size)).run(&ops)
            } else {
                b.run(&ops).iter().map(|t| to_front(t, None, size)).collect()
            }
        };
        let (of, ot) = (run(&self.branches[0]), run(&self.branches[1]));
        let p = move_axis(args[0], axes[0].expect("batched"), 0).cast(DType::F64).eq_scalar(0.0);
        let outs = of
            .iter()
            .zip(&ot)
            .map(|(f, t)| {
                let mut s = vec![size];
                s.extend(std::iter::repeat_n(1, f.rank() - 1));
                Tensor::select(&p.reshape(&s).broadcast_to(f.shape()), f, t)
            })
            .collect();
        (outs, std::iter::repeat_n(Some(0), m).collect())
    }
}
