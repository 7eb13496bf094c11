//! Algebraic simplification.
//!
//! Rewrites that keep every result bit for bit are always applied: `x · 1 → x`, `x − 0 → x`,
//! `x + (−0) → x` (but not `x + 0`, which turns `−0` into `+0`), `−(−x) → x`. One rewrite
//! changes the order of a sum, as XLA's does: a matrix product with a constant matrix whose
//! entries are all equal (the ones-cotangent of `Σ(A @ B)`, `W8_matmul_grad`) becomes a row
//! or column sum, `c · Σ_k B[k, j]` broadcast over rows — O(kn) instead of O(mkn); its
//! result agrees with the product to rounding, not bitwise.

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
    // The producing equation of each (renamed) variable among those kept so far.
    let mut producer: Vec<Option<usize>> = vec![None; ir.avals.len()];
    for mut e in eqns {
        for v in e.ins.iter_mut() {
            *v = rename[*v];
        }
        match rewrite(&mut ir, &e, &producer) {
            Some(Rewrite::Alias(to)) => {
                rename[e.outs[0]] = to;
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

fn rewrite(ir: &mut Ir, e: &Eqn, producer: &[Option<usize>]) -> Option<Rewrite> {
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
    if a.is::<prims::neg::Neg>() {
        if let Some(p) = producer[e.ins[0]] {
            let inner = &ir.eqns[p];
            if inner.prim.as_any().is::<prims::neg::Neg>() {
                return Some(Rewrite::Alias(inner.ins[0]));
            }
        }
    }
    if a.is::<prims::matmul::Matmul>() {
        return matmul_uniform(ir, e);
    }
    None
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
