//! Constant folding.

use std::collections::HashMap;

use adjoint_tensor::Array;
use smallvec::SmallVec;

use crate::jit::ir::{Eqn, Ir, Var};
use crate::tensor::{Repr, Tensor};

/// The most elements an equation's outputs may have, in all, to be folded: larger results
/// stay computed at run time rather than stored in the program.
pub const FOLD_LIMIT: usize = 1 << 16;

/// Evaluate at compile time every equation whose inputs are all concrete constants (literals)
/// and whose outputs hold at most [`FOLD_LIMIT`] elements; its outputs become constants.
/// Custom calls (user functions, see [`cse_key`](crate::primitive::Primitive::cse_key)) are
/// left to run. Constants left unread are removed by [`dce`](super::dce).
///
/// Staging already runs an op on concrete values eagerly, so this fires on programs other
/// passes (or a hand-built [`Ir`]) produce.
pub fn fold_constants(mut ir: Ir) -> Ir {
    let mut known: HashMap<Var, Array> = HashMap::new();
    for (v, t) in &ir.consts {
        if let Repr::Concrete(a) = &t.0 {
            known.insert(*v, a.clone());
        }
    }
    let eqns = std::mem::take(&mut ir.eqns);
    for e in eqns {
        match fold_one(&ir, &e, &known) {
            Some(values) => {
                for (&v, a) in e.outs.iter().zip(values) {
                    ir.consts.push((v, Tensor::from_array(a.clone())));
                    known.insert(v, a);
                }
            }
            None => ir.eqns.push(e),
        }
    }
    ir
}

fn fold_one(ir: &Ir, e: &Eqn, known: &HashMap<Var, Array>) -> Option<SmallVec<[Array; 1]>> {
    let size: usize = e.outs.iter().map(|&v| ir.avals[v].shape.iter().product::<usize>()).sum();
    if size > FOLD_LIMIT || e.prim.cse_key().is_none() {
        return None;
    }
    let args: Option<SmallVec<[&Array; 4]>> = e.ins.iter().map(|v| known.get(v)).collect();
    let outs = e.prim.eval(&args?);
    Some(outs.into_iter().collect())
}
