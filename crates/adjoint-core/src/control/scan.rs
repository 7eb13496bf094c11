//! The `scan` primitive: a loop over axis 0 of its `xs` operands, threading a carry, with a
//! body staged once as a program. `fori_loop_t` and the reverse pass of `while_loop` are scans
//! too.
//!
//! Operands are `[consts…, init carry…, xs…]` (consts: the tracers the body closed over,
//! hoisted into explicit inputs), outputs `[final carry…, ys…]` (each `y` stacked on a new
//! axis 0). The rules:
//! - `eval`: the body program runs `length` times on concrete arrays (the eager fast path);
//! - `jvp`: one scan over `(primals, tangents)` whose body is the body's JVP program;
//! - `vjp`: a forward scan that also emits the residual carries, and a pullback that is a
//!   reverse scan whose body is the body's VJP program — made of primitives, so second order
//!   works. The [`Checkpoint`] policy decides which carries are stored (see `vjp_with_forward`);
//! - `batch`: one scan over the batched values whose body is the body under `vmap`; every carry
//!   is batched as soon as any operand is (the simplest fixpoint).
//!
//! Under `jit` a scan is one equation, whatever its length.

use std::fmt;

use adjoint_tensor::ops::block::BlockFloat;
use adjoint_tensor::Array;

use super::body::{
    floats, jvp_body, permute_inputs, permute_outputs, pick, ranges, vjp_body, vmap_body, Body,
};
use super::Checkpoint;
use crate::batching::{move_axis, to_front};
use crate::jit::small::SmallPlan;
use crate::primitive::{Aval, Grads, Outs, Primitive, Pullback, Residuals};
use crate::tensor::Tensor;
use crate::trace::bind_multi;

/// A loop over axis 0 of the `xs` operands (see the [module docs](self)); bound by
/// [`scan`](crate::scan) under a transform.
///
/// ```
/// use adjoint_core::{jit::make_ir, scan, Tensor};
/// // 10,000 steps, one equation.
/// let xs = Tensor::ones(&[10_000]).to_f64();
/// let ir = make_ir(|c: &Tensor| scan(|c: &Tensor, x: &Tensor| (c.sin() + x, ()), c, &xs).0)(&Tensor::scalar(0.0f64));
/// assert_eq!(ir.eqns.len(), 1);
/// assert!(ir.to_string().contains("scan[length: 10000"));
/// ```
#[derive(Clone)]
pub struct Scan {
    pub(crate) body: Body,
    pub(crate) consts: usize,
    pub(crate) carry: usize,
    pub(crate) length: usize,
    pub(crate) reverse: bool,
    pub(crate) policy: Checkpoint,
}

impl fmt::Debug for Scan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Scan {{ length: {}, consts: {}, carry: {}, xs: {}, reverse: {}, policy: {:?}, body_eqns: {} }}",
            self.length,
            self.consts,
            self.carry,
            self.n_xs(),
            self.reverse,
            self.policy,
            self.body.len()
        )
    }
}

/// Residuals held as a list of tensors.
pub(crate) struct Res(pub(crate) Vec<Tensor>);
impl Residuals for Res {
    fn residual_bytes(&self) -> usize {
        self.0.iter().map(|t| t.residual_bytes()).sum()
    }
}

/// `aval` with a leading axis of `n`.
pub(crate) fn stacked(a: &Aval, n: usize) -> Aval {
    let mut s = a.clone();
    s.shape.insert(0, n);
    s
}

/// Cotangents with symbolic zeros made concrete.
pub(crate) fn materialise(cts: &[Option<Tensor>], avals: &[Aval]) -> Vec<Tensor> {
    cts.iter()
        .zip(avals)
        .map(|(c, a)| c.clone().unwrap_or_else(|| Tensor::full_of(&a.shape, 0.0, a.dtype)))
        .collect()
}

impl Scan {
    fn n_xs(&self) -> usize {
        self.body.ir().inputs.len() - self.consts - self.carry
    }
    fn n_ys(&self) -> usize {
        self.body.ir().outputs.len() - self.carry
    }
    /// Same loop, another body and operand split.
    fn with(&self, body: Body, consts: usize, carry: usize) -> Scan {
        Scan { body, consts, carry, length: self.length, reverse: self.reverse, policy: self.policy }
    }
    /// Operand abstract values (full xs, not one step).
    fn operand_avals(&self) -> Vec<Aval> {
        let ins = self.body.in_avals();
        let k = self.consts + self.carry;
        ins.iter().enumerate().map(|(i, a)| if i < k { a.clone() } else { stacked(a, self.length) }).collect()
    }
    fn out_avals(&self) -> Vec<Aval> {
        let outs = self.body.out_avals();
        outs.iter()
            .enumerate()
            .map(|(i, a)| if i < self.carry { a.clone() } else { stacked(a, self.length) })
            .collect()
    }

    /// The loop on concrete tensors.
    fn run(&self, args: &[Tensor]) -> Vec<Tensor> {
        let (nk, nc) = (self.consts, self.carry);
        let mut ins: Vec<Tensor> = args[..nk + nc].to_vec();
        let xs = &args[nk + nc..];
        let mut ys: Vec<Vec<Tensor>> = vec![Vec::with_capacity(self.length); self.n_ys()];
        for step in 0..self.length {
            let i = if self.reverse { self.length - 1 - step } else { step };
            ins.truncate(nk + nc);
            ins.extend(xs.iter().map(|x| x.narrow(0, i, 1).squeeze(0)));
            let outs = self.body.run(&ins);
            let mut outs = outs.into_iter();
            for c in ins[nk..nk + nc].iter_mut() {
                *c = outs.next().expect("one output per carry");
            }
            for (y, o) in ys.iter_mut().zip(outs) {
                y.push(o);
            }
        }
        let out_avals = self.out_avals();
        let mut res: Vec<Tensor> = ins[nk..nk + nc].to_vec();
        for (mut y, a) in ys.into_iter().zip(&out_avals[nc..]) {
            if self.length == 0 {
                res.push(Tensor::full_of(&a.shape, 0.0, a.dtype));
                continue;
            }
            if self.reverse {
                y.reverse();
            }
            let refs: Vec<&Tensor> = y.iter().collect();
            res.push(Tensor::stack(&refs, 0));
        }
        res
    }

    /// The loop on a scalarised body ([`SmallPlan`]): one register file for the whole loop,
    /// each step's `x` read from the operands and each `y` written into its stacked result,
    /// with no allocation per step.
    fn run_small<T: BlockFloat>(&self, sp: &SmallPlan, args: &[&Array]) -> Outs<Array> {
        let (nk, nc) = (self.consts, self.carry);
        let mut r = sp.registers::<T>();
        for (k, a) in args[..nk + nc].iter().enumerate() {
            for (&i, x) in sp.input(k).iter().zip(a.to_vec::<T>()) {
                r[i as usize] = x;
            }
        }
        // Read in place when contiguous (the usual case); copied otherwise.
        let xs: Vec<std::borrow::Cow<'_, [T]>> = args[nk + nc..]
            .iter()
            .map(|a| a.as_slice::<T>().map_or_else(|| a.to_vec::<T>().into(), Into::into))
            .collect();
        let out_avals = self.out_avals();
        let mut ys: Vec<Vec<T>> =
            out_avals[nc..].iter().map(|a| vec![T::zero(); a.shape.iter().product()]).collect();
        // Per step, only the elements of `x` the body reads are written (a backward body often
        // ignores the stored carries its residuals replaced): (register, offset in the row).
        let xmap: Vec<(Vec<(u32, usize)>, usize)> = (0..xs.len())
            .map(|k| {
                let regs = sp.input(nk + nc + k);
                let read = regs.iter().enumerate().filter(|&(_, &r)| sp.is_read(r)).map(|(j, &r)| (r, j));
                (read.collect(), regs.len())
            })
            .collect();
        // The carry's moves from output to input registers; in place when no move reads a
        // register another one writes (else through a buffer).
        let moves: Vec<(u32, u32)> = (0..nc)
            .flat_map(|k| sp.output(k).iter().copied().zip(sp.input(nk + k).iter().copied()))
            .filter(|(o, i)| o != i)
            .collect();
        let in_place = moves.iter().all(|&(o, _)| moves.iter().all(|&(_, i)| i != o));
        let mut carry: Vec<T> = Vec::with_capacity(moves.len());
        for step in 0..self.length {
            let i = if self.reverse { self.length - 1 - step } else { step };
            for ((map, n), x) in xmap.iter().zip(&xs) {
                let row = &x[i * n..(i + 1) * n];
                for &(reg, j) in map {
                    r[reg as usize] = row[j];
                }
            }
            sp.exec(&mut r);
            // The ys first: one may be a carry input (a stored residual), overwritten next.
            for (j, y) in ys.iter_mut().enumerate() {
                let regs = sp.output(nc + j);
                let n = regs.len();
                for (d, &o) in y[i * n..(i + 1) * n].iter_mut().zip(regs) {
                    *d = r[o as usize];
                }
            }
            if in_place {
                for &(o, d) in &moves {
                    r[d as usize] = r[o as usize];
                }
            } else {
                carry.clear();
                carry.extend(moves.iter().map(|&(o, _)| r[o as usize]));
                for (&(_, d), &v) in moves.iter().zip(&carry) {
                    r[d as usize] = v;
                }
            }
        }
        let mut outs: Outs<Array> = Outs::new();
        for (k, a) in out_avals[..nc].iter().enumerate() {
            let v: Vec<T> = sp.input(nk + k).iter().map(|&i| r[i as usize]).collect();
            outs.push(Array::from_vec(v, &a.shape));
        }
        for (y, a) in ys.into_iter().zip(&out_avals[nc..]) {
            outs.push(Array::from_vec(y, &a.shape));
        }
        outs
    }

    /// Reverse mode storing every step's carry (the `Every` policy).
    pub(crate) fn vjp_every(&self, primals: &[&Tensor]) -> (Outs<Tensor>, Pullback) {
        let (nk, nc, nx, ny) = (self.consts, self.carry, self.n_xs(), self.n_ys());
        // Forward: the body also emits its carry input, stacked into one residual per carry.
        let mut fir = self.body.ir().clone();
        let carry_in: Vec<usize> = fir.inputs[nk..nk + nc].to_vec();
        fir.outputs.extend(carry_in);
        let in_avals = self.body.in_avals();
        let out_avals = self.out_avals();
        let fin = floats(&in_avals);
        let fout = floats(&self.body.out_avals());
        let (fk, fc, _fx) = (
            fin[..nk].iter().filter(|&&m| m).count(),
            fin[nk..nk + nc].iter().filter(|&&m| m).count(),
            fin[nk + nc..].iter().filter(|&&m| m).count(),
        );
        // Backward body: [consts; ct_carry_f, acc_consts_f; carry_i, x_i, ct_y_f] ->
        // [g_carry_f, acc + g_consts_f; g_x_f].
        let vb = Body::new(vjp_body(&self.body));
        let fy = fout[nc..].iter().filter(|&&m| m).count();
        let mut bavals: Vec<Aval> = in_avals[..nk].to_vec();
        bavals.extend(pick(&in_avals[nk..nk + nc], &fin[nk..nk + nc]));
        bavals.extend(pick(&in_avals[..nk], &fin[..nk]));
        bavals.extend(in_avals[nk..].iter().cloned());
        bavals.extend(pick(&self.body.out_avals()[nc..], &fout[nc..]));
        let vb2 = vb.clone();
        let (bir, hoisted) = super::body::trace_flat(&bavals, move |v| {
            let consts = &v[..nk];
            let ct_c = &v[nk..nk + fc];
            let acc = &v[nk + fc..nk + fc + fk];
            let cx = &v[nk + fc + fk..nk + fc + fk + nc + nx];
            let ct_y = &v[nk + fc + fk + nc + nx..];
            let mut ins: Vec<Tensor> = consts.to_vec();
            ins.extend_from_slice(cx);
            ins.extend_from_slice(ct_c);
            ins.extend_from_slice(ct_y);
            let g = vb2.run(&ins);
            let (g_k, rest) = g.split_at(fk);
            let (g_c, g_x) = rest.split_at(fc);
            let mut r: Vec<Tensor> = g_c.to_vec();
            r.extend(acc.iter().zip(g_k).map(|(a, g)| a + g));
            r.extend_from_slice(g_x);
            r
        });
        debug_assert!(hoisted.is_empty());
        let _ = fy;
        // A small body stores what its backward pass reads of the forward computation
        // instead of recomputing it (see `split_residuals`).
        let mut nres = 0;
        let (fir, bir) = if self.body.small().is_some() {
            let known: Vec<(usize, usize)> =
                (0..nk).map(|i| (i, i)).chain((0..nc + nx).map(|m| (nk + fc + fk + m, nk + m))).collect();
            match super::body::split_residuals(&fir, &bir, &known) {
                Some((f, b, n)) => {
                    nres = n;
                    (f, b)
                }
                None => (fir, bir),
            }
        } else {
            (fir, bir)
        };
        let fwd = self.with(Body::new(fir), nk, nc);
        let mut outs = bind_multi(&fwd, primals);
        let rs: Vec<Tensor> = outs.drain(nc + ny + nc..).collect();
        let cs: Vec<Tensor> = outs.drain(nc + ny..).collect();
        let bwd = Scan {
            body: Body::new(bir),
            consts: nk,
            carry: fc + fk,
            length: self.length,
            reverse: !self.reverse,
            policy: Checkpoint::Every,
        };
        let mut res: Vec<Tensor> = primals[..nk].iter().map(|t| (*t).clone()).collect();
        res.extend(cs);
        res.extend(primals[nk + nc..].iter().map(|t| (*t).clone()));
        res.extend(rs);
        let op_avals = self.operand_avals();
        let pb = Pullback::multi(Res(res), move |r, cts| {
            let cts = materialise(cts, &out_avals);
            let consts = &r.0[..nk];
            let cs = &r.0[nk..nk + nc];
            let xs = &r.0[nk + nc..nk + nc + nx];
            let rs = &r.0[nk + nc + nx..];
            debug_assert_eq!(rs.len(), nres);
            let mut ops: Vec<Tensor> = consts.to_vec();
            ops.extend(pick(&cts[..nc], &fin[nk..nk + nc]));
            ops.extend(
                pick(&op_avals[..nk], &fin[..nk]).iter().map(|a| Tensor::full_of(&a.shape, 0.0, a.dtype)),
            );
            ops.extend_from_slice(cs);
            ops.extend_from_slice(xs);
            ops.extend(pick(&cts[nc..], &fout[nc..]));
            ops.extend_from_slice(rs);
            let refs: Vec<&Tensor> = ops.iter().collect();
            let g = bind_multi(&bwd, &refs);
            let (g_c, rest) = g.split_at(fc);
            let (g_k, g_x) = rest.split_at(fk);
            let (mut ik, mut ic, mut ix) = (g_k.iter(), g_c.iter(), g_x.iter());
            (0..nk + nc + nx)
                .map(|i| {
                    if !fin[i] {
                        None
                    } else if i < nk {
                        ik.next().cloned()
                    } else if i < nk + nc {
                        ic.next().cloned()
                    } else {
                        ix.next().cloned()
                    }
                })
                .collect::<Grads>()
        });
        (outs, pb)
    }

    /// Reverse mode storing every `k`-th carry: the first `q·k` steps run as a scan over `q`
    /// segments whose body is a `k`-step scan (the outer scan stores the `q` segment-start
    /// carries; its backward pass differentiates the inner scan, which recomputes the segment's
    /// `k` carries), the `r` remaining steps as a plain scan.
    fn vjp_segments(&self, primals: &[&Tensor], k: usize) -> (Outs<Tensor>, Pullback) {
        let (nk, nc, ny) = (self.consts, self.carry, self.n_ys());
        let (n, q) = (self.length, self.length / k);
        let r = n - q * k;
        let inner = Scan { length: k, policy: Checkpoint::Every, ..self.clone() };
        let in_avals = self.body.in_avals();
        let mut seg_avals: Vec<Aval> = in_avals[..nk + nc].to_vec();
        seg_avals.extend(in_avals[nk + nc..].iter().map(|a| stacked(a, k)));
        let (seg_ir, h) = super::body::trace_flat(&seg_avals, move |v| {
            let refs: Vec<&Tensor> = v.iter().collect();
            bind_multi(&inner, &refs).into_vec()
        });
        debug_assert!(h.is_empty());
        let outer = Scan { body: Body::new(seg_ir), length: q, policy: Checkpoint::Every, ..self.clone() };
        let rest = Scan { length: r, policy: Checkpoint::Every, ..self.clone() };
        let xs = &primals[nk + nc..];
        let xa: Vec<Tensor> = xs
            .iter()
            .map(|x| {
                let mut s = vec![q, k];
                s.extend_from_slice(&x.shape()[1..]);
                x.narrow(0, 0, q * k).reshape(&s)
            })
            .collect();
        let xb: Vec<Tensor> = xs.iter().map(|x| x.narrow(0, q * k, r)).collect();
        let mut a_ops: Vec<&Tensor> = primals[..nk + nc].to_vec();
        a_ops.extend(xa.iter());
        let (outs_a, pb_a) = outer.vjp_every(&a_ops);
        let mut b_ops: Vec<&Tensor> = primals[..nk].to_vec();
        b_ops.extend(outs_a[..nc].iter());
        b_ops.extend(xb.iter());
        let (outs_b, pb_b) = rest.vjp_every(&b_ops);
        let mut outs: Outs<Tensor> = outs_b[..nc].iter().cloned().collect();
        for j in 0..ny {
            let ya = &outs_a[nc + j];
            let mut s = vec![q * k];
            s.extend_from_slice(&ya.shape()[2..]);
            outs.push(Tensor::concat(&[&ya.reshape(&s), &outs_b[nc + j]], 0));
        }
        let out_avals = self.out_avals();
        let pb = Pullback::multi((), move |_, cts| {
            let cts = materialise(cts, &out_avals);
            let mut cb: Vec<Option<Tensor>> = cts[..nc].iter().cloned().map(Some).collect();
            let mut ca: Vec<Option<Tensor>> = Vec::new();
            for y in &cts[nc..] {
                cb.push(Some(y.narrow(0, q * k, r)));
                let mut s = vec![q, k];
                s.extend_from_slice(&y.shape()[1..]);
                ca.push(Some(y.narrow(0, 0, q * k).reshape(&s)));
            }
            let gb = (pb_b.f)(&cb);
            let mut ca_full: Vec<Option<Tensor>> = gb[nk..nk + nc].to_vec();
            ca_full.extend(ca);
            let ga = (pb_a.f)(&ca_full);
            let mut g: Grads = Grads::new();
            for i in 0..nk {
                g.push(match (&ga[i], &gb[i]) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.clone().or(b.clone()),
                });
            }
            for i in nk..nk + nc {
                g.push(ga[i].clone());
            }
            for i in nk + nc..ga.len() {
                g.push(match (&ga[i], &gb[i]) {
                    (Some(a), Some(b)) => {
                        let mut s = vec![q * k];
                        s.extend_from_slice(&a.shape()[2..]);
                        Some(Tensor::concat(&[&a.reshape(&s), b], 0))
                    }
                    _ => None,
                });
            }
            g
        });
        (outs, pb)
    }
}

impl Primitive for Scan {
    fn name(&self) -> &'static str {
        "scan"
    }

    fn cse_key(&self) -> Option<String> {
        // The body's constants are not in the `Debug` text: never merge two scans.
        None
    }

    #[track_caller]
    fn shape(&self, args: &[Aval]) -> Outs<Aval> {
        super::body::check_operands("scan", args, &self.operand_avals());
        self.out_avals().into_iter().collect()
    }

    fn eval(&self, args: &[&Array]) -> Outs<Array> {
        if let Some(sp) = self.body.small() {
            return match sp.dtype {
                adjoint_tensor::DType::F32 => self.run_small::<f32>(sp, args),
                _ => self.run_small::<f64>(sp, args),
            };
        }
        let ts: Vec<Tensor> = args.iter().map(|a| Tensor::from_array((*a).clone())).collect();
        self.run(&ts).into_iter().map(|t| t.value().clone()).collect()
    }

    fn jvp(&self, _: &[&Tensor], _: &[Option<&Tensor>], _: &[Tensor]) -> Outs<Option<Tensor>> {
        unreachable!("scan: forward mode goes through jvp_with_forward")
    }

    fn jvp_with_forward(
        &self,
        primals: &[&Tensor],
        tangents: &[Option<&Tensor>],
    ) -> Option<(Outs<Tensor>, Outs<Option<Tensor>>)> {
        let (nk, nc, nx, ny) = (self.consts, self.carry, self.n_xs(), self.n_ys());
        let fin = floats(&self.body.in_avals());
        let fout = floats(&self.body.out_avals());
        let cnt = |m: &[bool]| m.iter().filter(|&&b| b).count();
        let (fk, fc, fx) = (cnt(&fin[..nk]), cnt(&fin[nk..nk + nc]), cnt(&fin[nk + nc..]));
        let fy = cnt(&fout[nc..]);
        let n = nk + nc + nx;
        // jvp body inputs [k, c, x, tk, tc, tx] -> [k, tk, c, tc, x, tx].
        let jb = jvp_body(&self.body);
        let jb = permute_inputs(
            jb,
            &ranges(&[(0, nk), (n, fk), (nk, nc), (n + fk, fc), (nk + nc, nx), (n + fk + fc, fx)]),
        );
        // outputs [c, y, tc, ty] -> [c, tc, y, ty].
        let m = nc + ny;
        let jb = permute_outputs(jb, &ranges(&[(0, nc), (m, fc), (nc, ny), (m + fc, fy)]));
        let scan = self.with(Body::new(jb), nk + fk, nc + fc);
        let tan: Vec<Tensor> = primals
            .iter()
            .zip(tangents)
            .zip(&fin)
            .filter(|&(_, &f)| f)
            .map(|((p, t), _)| t.cloned().unwrap_or_else(|| p.zeros_like()))
            .collect();
        let (tk, rest) = tan.split_at(fk);
        let (tc, tx) = rest.split_at(fc);
        let mut ops: Vec<&Tensor> = primals[..nk].to_vec();
        ops.extend(tk);
        ops.extend(&primals[nk..nk + nc]);
        ops.extend(tc);
        ops.extend(&primals[nk + nc..]);
        ops.extend(tx);
        let res = bind_multi(&scan, &ops);
        let mut outs: Outs<Tensor> = res[..nc].iter().cloned().collect();
        outs.extend(res[nc + fc..nc + fc + ny].iter().cloned());
        let mut tcs = res[nc..nc + fc].iter();
        let mut tys = res[nc + fc + ny..].iter();
        let touts: Outs<Option<Tensor>> = (0..nc + ny)
            .map(|i| {
                if !fout[i] {
                    None
                } else if i < nc {
                    tcs.next().cloned()
                } else {
                    tys.next().cloned()
                }
            })
            .collect();
        Some((outs, touts))
    }

    fn vjp(&self, _: &[&Tensor], _: &[Tensor], _: &[bool]) -> Pullback {
        unreachable!("scan: reverse mode goes through vjp_with_forward")
    }

    fn vjp_with_forward(&self, primals: &[&Tensor], _wants: &[bool]) -> Option<(Outs<Tensor>, Pullback)> {
        let k = self.policy.segment(self.length);
        Some(match k {
            Some(k) if !self.reverse && k >= 1 && self.length / k >= 2 => self.vjp_segments(primals, k),
            _ => self.vjp_every(primals),
        })
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
        let (nk, nc) = (self.consts, self.carry);
        let mut ops: Vec<Tensor> = Vec::with_capacity(args.len());
        let mut body_axes: Vec<Option<usize>> = Vec::with_capacity(args.len());
        for (i, (t, ax)) in args.iter().zip(axes).enumerate() {
            if i < nk {
                ops.push(ax.map_or((*t).clone(), |a| move_axis(t, a, 0)));
                body_axes.push(ax.map(|_| 0));
            } else if i < nk + nc {
                ops.push(to_front(t, *ax, size));
                body_axes.push(Some(0));
            } else {
                // The scan axis stays at 0, the batch goes to 1.
                ops.push(ax.map_or((*t).clone(), |a| move_axis(t, a, 1)));
                body_axes.push(ax.map(|_| 0));
            }
        }
        let vb = vmap_body(&self.body, &body_axes, size);
        let scan = self.with(Body::new(vb), nk, nc);
        let refs: Vec<&Tensor> = ops.iter().collect();
        let outs = bind_multi(&scan, &refs);
        let oaxes = (0..outs.len()).map(|i| Some(if i < nc { 0 } else { 1 })).collect();
        (outs, oaxes)
    }
}

/// Check that a body returns a carry of exactly the carry's types.
#[track_caller]
pub(crate) fn check_carry(op: &str, takes: &[Aval], gives: &[Aval]) {
    if takes != gives {
        let show = |v: &[Aval]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
        crate::primitive::misuse(
            op,
            format!(
                "the body returns a carry of types [{}] but takes [{}]; the carry must keep its shapes and dtypes",
                show(gives),
                show(takes)
            ),
        );
    }
}
