//! The `while_loop` primitive: a condition program and a body program over a carry.
//!
//! Operands are `[cond consts…, body consts…, init carry…]` (the tracers each function closed
//! over), outputs `[final carry…, trips]` where `trips` (a 0-d `i64`) is the number of
//! iterations run; the front end drops it, reverse mode reads it. The rules:
//! - `jvp`: a while loop over `(carry, tangent)` whose body is the body's JVP program and
//!   whose condition reads the primal carry only;
//! - `vjp`: the forward loop records the trip count `n`; the outputs and the pullback are
//!   then those of a [`Scan`] of `n` steps of the body (storing every carry). The count must be
//!   a concrete value: under `jit(grad(…))` it is unknown while staging, and the call panics;
//! - `batch`: one loop that runs while *any* example's condition holds, each step keeping the
//!   carry of the examples whose condition is false (`select`).

use std::fmt;

use adjoint_tensor::{Array, DType};

use super::body::{floats, jvp_body, permute_inputs, pick, ranges, trace_closed, vmap_body, Body};
use super::scan::Scan;
use super::Checkpoint;
use crate::batching::{move_axis, to_front};
use crate::primitive::{Aval, Outs, Primitive, Pullback};
use crate::tensor::Tensor;
use crate::trace::bind_multi;

/// A loop `while cond(c) { c = body(c) }` (see the [module docs](self)); bound by
/// [`while_loop`](crate::while_loop) under a transform.
///
/// ```
/// use adjoint_core::{jit::make_ir, while_loop, Tensor};
/// let ir = make_ir(|x: &Tensor| while_loop(|y: &Tensor| y.lt_scalar(10.0), |y: &Tensor| y * 2.0, x.clone()))(&Tensor::scalar(1.0f64));
/// assert_eq!((ir.eqns.len(), ir.eqns[0].prim.name()), (1, "while_loop"));
/// ```
#[derive(Clone)]
pub struct While {
    pub(crate) cond: Body,
    pub(crate) body: Body,
    pub(crate) cconsts: usize,
    pub(crate) bconsts: usize,
}

impl fmt::Debug for While {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "While {{ cond_consts: {}, body_consts: {}, carry: {}, cond_eqns: {}, body_eqns: {} }}",
            self.cconsts,
            self.bconsts,
            self.n_carry(),
            self.cond.len(),
            self.body.len()
        )
    }
}

impl While {
    fn n_carry(&self) -> usize {
        self.body.ir().inputs.len() - self.bconsts
    }
    fn operand_avals(&self) -> Vec<Aval> {
        let mut a = self.cond.in_avals()[..self.cconsts].to_vec();
        a.extend(self.body.in_avals());
        a
    }

    fn run(&self, args: &[Tensor]) -> Vec<Tensor> {
        let (nk, nb) = (self.cconsts, self.bconsts);
        let cconsts = &args[..nk];
        let mut bins: Vec<Tensor> = args[nk..].to_vec();
        let mut trips = 0usize;
        loop {
            let mut cins = cconsts.to_vec();
            cins.extend_from_slice(&bins[nb..]);
            let p = self.cond.run(&cins).swap_remove(0);
            if p.item() == 0.0 {
                break;
            }
            trips += 1;
            if trips > super::WHILE_LOOP_MAX_ITERATIONS {
                panic!(
                    "adjoint: while_loop: more than {} iterations; the condition never became false",
                    super::WHILE_LOOP_MAX_ITERATIONS
                );
            }
            let next = self.body.run(&bins);
            bins.truncate(nb);
            bins.extend(next);
        }
        let mut out: Vec<Tensor> = bins.split_off(nb);
        out.push(Tensor::scalar(trips as i64));
        out
    }
}

impl While {
    /// The body guarded by the condition: inputs `[cond consts, body consts, carry]`, output
    /// `cond(c) ? body(c) : c`.
    fn guarded(&self) -> crate::jit::ir::Ir {
        let (nk, nb) = (self.cconsts, self.bconsts);
        let mut avals = self.cond.in_avals()[..nk].to_vec();
        avals.extend(self.body.in_avals());
        let (cond, body) = (self.cond.clone(), self.body.clone());
        trace_closed(&avals, move |v| {
            let mut cins = v[..nk].to_vec();
            cins.extend_from_slice(&v[nk + nb..]);
            let done = cond.run(&cins).swap_remove(0).cast(DType::F64).eq_scalar(0.0);
            let next = body.run(&v[nk..]);
            next.iter()
                .zip(&v[nk + nb..])
                .map(|(n, old)| Tensor::select(&done.broadcast_to(old.shape()), old, n))
                .collect()
        })
    }
}

impl Primitive for While {
    fn name(&self) -> &'static str {
        "while_loop"
    }

    fn cse_key(&self) -> Option<String> {
        None
    }

    #[track_caller]
    fn shape(&self, args: &[Aval]) -> Outs<Aval> {
        super::body::check_operands("while_loop", args, &self.operand_avals());
        let mut o: Outs<Aval> = self.body.in_avals()[self.bconsts..].iter().cloned().collect();
        o.push(Aval::new(&[], DType::I64));
        o
    }

    fn eval(&self, args: &[&Array]) -> Outs<Array> {
        let ts: Vec<Tensor> = args.iter().map(|a| Tensor::from_array((*a).clone())).collect();
        self.run(&ts).into_iter().map(|t| t.value().clone()).collect()
    }

    fn jvp(&self, _: &[&Tensor], _: &[Option<&Tensor>], _: &[Tensor]) -> Outs<Option<Tensor>> {
        unreachable!("while_loop: forward mode goes through jvp_with_forward")
    }

    fn jvp_with_forward(
        &self,
        primals: &[&Tensor],
        tangents: &[Option<&Tensor>],
    ) -> Option<(Outs<Tensor>, Outs<Option<Tensor>>)> {
        let (nk, nb, nc) = (self.cconsts, self.bconsts, self.n_carry());
        let fin = floats(&self.body.in_avals());
        let cnt = |m: &[bool]| m.iter().filter(|&&b| b).count();
        let (fb, fc) = (cnt(&fin[..nb]), cnt(&fin[nb..]));
        let n = nb + nc;
        // jvp body inputs [bk, c, tbk, tc] -> [bk, tbk, c, tc]; outputs [c, tc] already.
        let jb = permute_inputs(jvp_body(&self.body), &ranges(&[(0, nb), (n, fb), (nb, nc), (n + fb, fc)]));
        // The condition reads the primal carry only.
        let mut cavals = self.cond.in_avals();
        cavals.extend(pick(&self.body.in_avals()[nb..], &fin[nb..]));
        let cond = self.cond.clone();
        let ncin = nk + nc;
        let jc = trace_closed(&cavals, move |v| cond.run(&v[..ncin]));
        let w = While { cond: Body::new(jc), body: Body::new(jb), cconsts: nk, bconsts: nb + fb };
        let tan: Vec<Tensor> = primals[nk..]
            .iter()
            .zip(&tangents[nk..])
            .zip(&fin)
            .filter(|&(_, &f)| f)
            .map(|((p, t), _)| t.cloned().unwrap_or_else(|| p.zeros_like()))
            .collect();
        let (tb, tc) = tan.split_at(fb);
        let mut ops: Vec<&Tensor> = primals[..nk + nb].to_vec();
        ops.extend(tb);
        ops.extend(&primals[nk + nb..]);
        ops.extend(tc);
        let res = bind_multi(&w, &ops);
        let mut outs: Outs<Tensor> = res[..nc].iter().cloned().collect();
        outs.push(res[nc + fc].clone());
        let mut tcs = res[nc..nc + fc].iter();
        let mut touts: Outs<Option<Tensor>> =
            fin[nb..].iter().map(|&f| if f { tcs.next().cloned() } else { None }).collect();
        touts.push(None);
        Some((outs, touts))
    }

    fn vjp(&self, _: &[&Tensor], _: &[Tensor], _: &[bool]) -> Pullback {
        unreachable!("while_loop: reverse mode goes through vjp_with_forward")
    }

    fn vjp_with_forward(&self, primals: &[&Tensor], _wants: &[bool]) -> Option<(Outs<Tensor>, Pullback)> {
        let (nk, nb, nc) = (self.cconsts, self.bconsts, self.n_carry());
        let outs = bind_multi(self, primals);
        let trips = &outs[nc];
        let n = match trips.try_value() {
            Ok(a) => Tensor::from_array(a.clone()).item() as usize,
            Err(_) => panic!(
                "adjoint: while_loop: reverse mode needs the trip count, which is not known while \
                 staging (jit of a gradient through a while_loop); take the gradient of the jitted \
                 function instead (grad(jit(f))), or use scan/fori_loop_t with a fixed length"
            ),
        };
        // A scan of `n` guarded steps, `c ← cond(c) ? body(c) : c`: for one loop the guard
        // always holds; under `vmap` `n` is the largest trip count and the guard stops the
        // examples that finished earlier, as the batched loop does.
        let scan = Scan {
            body: Body::new(self.guarded()),
            consts: nk + nb,
            carry: nc,
            length: n,
            reverse: false,
            policy: Checkpoint::Every,
        };
        let (mut souts, spb) = scan.vjp_every(primals);
        souts.push(trips.clone());
        let pb = Pullback::multi((), move |_, cts| (spb.f)(&cts[..nc]));
        Some((souts, pb))
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
        let (nk, nb, nc) = (self.cconsts, self.bconsts, self.n_carry());
        let mut ops: Vec<Tensor> = Vec::new();
        let mut bax: Vec<Option<usize>> = Vec::new();
        for (i, (t, ax)) in args.iter().zip(axes).enumerate() {
            if i < nk + nb {
                ops.push(ax.map_or((*t).clone(), |a| move_axis(t, a, 0)));
                bax.push(ax.map(|_| 0));
            } else {
                ops.push(to_front(t, *ax, size));
                bax.push(Some(0));
            }
        }
        let mut cax = bax[..nk].to_vec();
        cax.extend(std::iter::repeat_n(Some(0), nc));
        let cb = Body::new(vmap_body(&self.cond, &cax, size));
        let bb = Body::new(vmap_body(&self.body, &bax[nk..], size));
        // Condition: any example still running.
        let cb1 = cb.clone();
        let any = trace_closed(&cb.in_avals(), move |v| {
            let p = cb1.run(v).swap_remove(0).cast(DType::F64).abs();
            vec![p.max_axes(&[0], false).gt_scalar(0.0)]
        });
        // Body: step every example, keep the carry of the finished ones.
        let mut avals: Vec<Aval> = cb.in_avals()[..nk].to_vec();
        avals.extend(bb.in_avals());
        let sel = trace_closed(&avals, move |v| {
            let mut cins = v[..nk].to_vec();
            cins.extend_from_slice(&v[nk + nb..]);
            let done = cb.run(&cins).swap_remove(0).cast(DType::F64).eq_scalar(0.0);
            let next = bb.run(&v[nk..]);
            next.iter()
                .zip(&v[nk + nb..])
                .map(|(n, old)| {
                    let mut s = vec![size];
                    s.extend(std::iter::repeat_n(1, old.rank() - 1));
                    let m = done.reshape(&s).broadcast_to(old.shape());
                    Tensor::select(&m, old, n)
                })
                .collect()
        });
        let w = While { cond: Body::new(any), body: Body::new(sel), cconsts: nk, bconsts: nk + nb };
        let mut all: Vec<&Tensor> = ops[..nk].iter().collect();
        all.extend(ops.iter());
        let outs = bind_multi(&w, &all);
        let mut oaxes: Outs<Option<usize>> = std::iter::repeat_n(Some(0), nc).collect();
        oaxes.push(None);
        (outs, oaxes)
    }
}
