//! Algebraic simplification.
//!
//! Rewrites that keep every result bit for bit are always applied: `x · 1 → x`, `x − 0 → x`,
//! `x + (−0) → x` (but not `x + 0`, which turns `−0` into `+0`), `−(−x) → x`. One rewrite
//! changes the order of a sum, as XLA's does: a matrix product with a constant matrix whose
//! entries are all equal (the ones-cotangent of `Σ(A @ B)`, `W8_matmul_grad`) becomes a row
//! or column sum, `c · Σ_k B[k, j]` broadcast over rows — O(kn) instead of O(mkn); its
//! result agrees with the product to rounding, not bitwise.
//!
//! Two rewrites are about layout, not arithmetic: `(A @ B)ᵀ → Bᵀ @ Aᵀ` for rank-2 operands whose
//! product has no other reader, and `(Xᵀ)ᵀ → X`. The backward pass of `x @ Wᵀ` (every `Linear`)
//! forms the weight's gradient as `(xᵀ @ C̄)ᵀ`, a transposed view that an optimizer then reads
//! across its storage; as `C̄ᵀ @ x` it comes out row-major. The eager rule makes the same choice
//! from the operand's layout (`prims::matmul`); both orders sum over the same inner index in the
//! same order (bitwise equal on every shape `tests/prim_matmul.rs` checks).

use std::rc::Rc;

use adjoint_tensor::DType;
use smallvec::smallvec;

use crate::jit::ir::{Eqn, Ir, Var};
use crate::primitive::{Aval, Primitive};
use crate::prims;
use crate::tensor::{Repr, Tensor};

/// The value every element of a concrete constant `v` has, if they are all equal (as `f64`).
fn uniform(ir: &Ir, v: Var) -> Option<f64> {
    let (_, t) = ir.consts.iter().find(|(c, _)| *c == v)?;
    let Repr::Concrete(a) = &t.0 else { return None };
    if !matches!(a.dtype(), DType::F32 | DType::F64) || a.numel() == 0 {
        return None;
    }
    let xs: Vec<f64> = a.to_vec();
    let x0 = xs[0];
    xs.iter().all(|x| x.to_bits() == x0.to_bits()).then_some(x0)
}

/// Apply the rewrites of the [module docs](self) until none fires; unread equations are left
/// for [`dce`](super::dce).
///
/// ```
/// use adjoint_core::jit::{make_ir, passes::{dce, simplify}};
/// use adjoint_core::Tensor;
/// let ir = make_ir(|x: &Tensor| -(-(x * 1.0)))(&Tensor::zeros(&[3]));
/// assert_eq!((ir.eqns.len(), dce(simplify(ir)).eqns.len()), (3, 0));
/// ```
pub fn simplify(mut ir: Ir) -> Ir {
    let mut rename: Vec<Var> = (0..ir.avals.len()).collect();
    let eqns = std::mem::take(&mut ir.eqns);
    // How many equations (and outputs) read each variable, before any rewrite.
    let mut readers = vec![0usize; ir.avals.len()];
    for v in eqns.iter().flat_map(|e| e.ins.iter()).chain(&ir.outputs) {
        readers[*v] += 1;
    }
    // The producing equation of each (renamed) variable among those kept so far.
    let mut producer: Vec<Option<usize>> = vec![None; ir.avals.len()];
    for mut e in eqns {
        for v in e.ins.iter_mut() {
            *v = rename[*v];
        }
        match rewrite(&mut ir, &e, &producer, &readers) {
            Some(Rewrite::Alias(to)) => {
                rename[e.outs[0]] = to;
                // The dropped equation no longer reads `to`; its output's readers now do.
                readers[to] = readers[to].saturating_sub(1) + readers[e.outs[0]];
            }
            Some(Rewrite::Eqns(new)) => {
                producer.resize(ir.avals.len(), None);
                for n in new {
                    for &o in &n.outs {
                        producer[o] = Some(ir.eqns.len());
                    }
                    ir.eqns.push(n);
                }
            }
            None => {
                for &o in &e.outs {
                    producer[o] = Some(ir.eqns.len());
                }
                ir.eqns.push(e);
            }
        }
    }
    for v in ir.outputs.iter_mut() {
        *v = rename[*v];
    }
    ir
}

enum Rewrite {
    /// The equation's output is this variable.
    Alias(Var),
    /// The equation becomes these equations (the last defines its output).
    Eqns(Vec<Eqn>),
}

fn rewrite(ir: &mut Ir, e: &Eqn, producer: &[Option<usize>], readers: &[usize]) -> Option<Rewrite> {
    if e.outs.len() != 1 {
        return None;
    }
    let a = e.prim.as_any();
    let out = ir.avals[e.outs[0]].clone();
    let same = |v: Var| ir.avals[v] == out;
    let is = |v: Var, x: f64| uniform(ir, v).is_some_and(|u| u.to_bits() == x.to_bits());
    if a.is::<prims::mul::Mul>() {
        let (x, y) = (e.ins[0], e.ins[1]);
        if same(x) && is(y, 1.0) {
            return Some(Rewrite::Alias(x));
        }
        if same(y) && is(x, 1.0) {
            return Some(Rewrite::Alias(y));
        }
    }
    if a.is::<prims::sub::Sub>() && same(e.ins[0]) && is(e.ins[1], 0.0) {
        return Some(Rewrite::Alias(e.ins[0]));
    }
    if a.is::<prims::add::Add>() {
        let (x, y) = (e.ins[0], e.ins[1]);
        if same(x) && is(y, -0.0) {
            return Some(Rewrite::Alias(x));
        }
        if same(y) && is(x, -0.0) {
            return Some(Rewrite::Alias(y));
        }
    }
    if a.is::<prims::neg::Neg>()
        && let Some(p) = producer[e.ins[0]]
    {
        let inner = &ir.eqns[p];
        if inner.prim.as_any().is::<prims::neg::Neg>() {
            return Some(Rewrite::Alias(inner.ins[0]));
        }
    }
    if a.is::<prims::matmul::Matmul>() {
        return matmul_uniform(ir, e);
    }
    if is_transpose(e) {
        let inner = producer[e.ins[0]].map(|p| &ir.eqns[p])?;
        if is_transpose(inner) {
            return Some(Rewrite::Alias(inner.ins[0]));
        }
        if inner.prim.as_any().is::<prims::matmul::Matmul>()
            && readers.get(e.ins[0]) == Some(&1)
            && ir.avals[inner.ins[0]].rank() == 2
            && ir.avals[inner.ins[1]].rank() == 2
        {
            return Some(transposed_product(ir, inner.ins[0], inner.ins[1], e.outs[0], producer));
        }
    }
    None
}

/// A rank-2 `permute([1, 0])`.
fn is_transpose(e: &Eqn) -> bool {
    e.prim.as_any().downcast_ref::<prims::permute::Permute>().is_some_and(|p| p.0 == [1, 0])
}

/// `out = (A @ B)ᵀ` as `Bᵀ @ Aᵀ`, an operand that is itself a transpose read through.
fn transposed_product(ir: &mut Ir, a: Var, b: Var, out: Var, producer: &[Option<usize>]) -> Rewrite {
    let mut eqns = Vec::new();
    let mut t = |ir: &mut Ir, v: Var| -> Var {
        if let Some(p) = producer.get(v).copied().flatten().filter(|&p| is_transpose(&ir.eqns[p])) {
            return ir.eqns[p].ins[0];
        }
        let s = &ir.avals[v];
        let tv = ir.new_var(Aval::new(&[s.shape[1], s.shape[0]], s.dtype));
        eqns.push(Eqn {
            prim: Rc::new(prims::permute::Permute(vec![1, 0])),
            ins: smallvec![v],
            outs: smallvec![tv],
        });
        tv
    };
    let (bt, at) = (t(ir, b), t(ir, a));
    eqns.push(Eqn { prim: Rc::new(prims::matmul::Matmul), ins: smallvec![bt, at], outs: smallvec![out] });
    Rewrite::Eqns(eqns)
}

/// `C @ B` with `C` uniformly `c` → `broadcast(c · Σ_rows B)`; `A @ C` → `broadcast(c · Σ_cols A)`
/// (rank-2 operands).
fn matmul_uniform(ir: &mut Ir, e: &Eqn) -> Option<Rewrite> {
    let (l, r) = (e.ins[0], e.ins[1]);
    let (sl, sr) = (ir.avals[l].shape.to_vec(), ir.avals[r].shape.to_vec());
    if sl.len() != 2 || sr.len() != 2 {
        return None;
    }
    let out = ir.avals[e.outs[0]].clone();
    let dtype = out.dtype;
    // Which operand is uniform, the other one, and the axis of the other to sum over.
    let (c, other, axis) = if let Some(c) = uniform(ir, l) {
        (c, r, 0)
    } else if let Some(c) = uniform(ir, r) {
        (c, l, 1)
    } else {
        return None;
    };
    let so = &ir.avals[other].shape;
    let mut reduced = so.to_vec();
    reduced[axis] = 1;
    let mut eqns = Vec::new();
    let mut push = |ir: &mut Ir, prim: Rc<dyn Primitive>, ins: &[Var], aval: Aval| -> Var {
        let v = ir.new_var(aval);
        eqns.push(Eqn { prim, ins: ins.iter().copied().collect(), outs: smallvec![v] });
        v
    };
    let sum = push(
        ir,
        Rc::new(prims::reduce_sum::ReduceSum { axes: vec![axis], keepdim: true }),
        &[other],
        Aval::new(&reduced, dtype),
    );
    let scaled = if c == 1.0 {
        sum
    } else {
        let cv = ir.new_var(Aval::new(&[], dtype));
        ir.consts.push((cv, Tensor::scalar_of(c, dtype)));
        push(ir, Rc::new(prims::mul::Mul), &[sum, cv], Aval::new(&reduced, dtype))
    };
    // The result keeps the original output variable.
    eqns.push(Eqn {
        prim: Rc::new(prims::broadcast::BroadcastTo(out.shape.to_vec())),
        ins: smallvec![scaled],
        outs: smallvec![e.outs[0]],
    });
    Some(Rewrite::Eqns(eqns))
}
