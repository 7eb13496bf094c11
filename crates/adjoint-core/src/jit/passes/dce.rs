//! Dead-code elimination.

use crate::jit::ir::{Ir, Var};

/// Drop every equation none of whose outputs is read (by a later equation or as a program
/// output), and every constant nothing reads, then renumber the variables that remain
/// densely, so that running the program allocates an environment of live variables only
/// (a traced `grad` of a 1,000-op chain that folds to one constant kept ~6,000 dead slots).
/// Primitives are pure, so nothing else is lost.
///
/// ```
/// use adjoint_core::jit::{make_ir, passes::dce};
/// use adjoint_core::Tensor;
/// let ir = make_ir(|x: &Tensor| {
///     let _unused = x.exp();
///     x.sin()
/// })(&Tensor::zeros(&[3]));
/// assert_eq!((ir.eqns.len(), dce(ir).eqns.len()), (2, 1));
/// ```
pub fn dce(mut ir: Ir) -> Ir {
    let mut live = vec![false; ir.avals.len()];
    for &v in &ir.outputs {
        live[v] = true;
    }
    let mut keep = vec![false; ir.eqns.len()];
    for (i, e) in ir.eqns.iter().enumerate().rev() {
        if e.outs.iter().any(|&v| live[v]) {
            keep[i] = true;
            for &v in &e.ins {
                live[v] = true;
            }
        }
    }
    let mut k = keep.into_iter();
    ir.eqns.retain(|_| k.next().unwrap_or(false));
    ir.consts.retain(|(v, _)| live[*v]);
    compact(ir)
}

/// Renumber the variables that are defined (inputs, constants, equation outputs) as
/// `0, 1, …` in definition order; every other abstract value is dropped.
fn compact(mut ir: Ir) -> Ir {
    let mut map: Vec<Option<Var>> = vec![None; ir.avals.len()];
    let mut avals = Vec::new();
    let mut def = |v: Var, map: &mut Vec<Option<Var>>| -> Var {
        *map[v].get_or_insert_with(|| {
            avals.push(ir.avals[v].clone());
            avals.len() - 1
        })
    };
    for v in ir.inputs.iter_mut() {
        *v = def(*v, &mut map);
    }
    for (v, _) in ir.consts.iter_mut() {
        *v = def(*v, &mut map);
    }
    for e in ir.eqns.iter_mut() {
        for v in e.ins.iter_mut() {
            *v = map[*v].expect("read after its definition (SSA)");
        }
        for v in e.outs.iter_mut() {
            *v = def(*v, &mut map);
        }
    }
    for v in ir.outputs.iter_mut() {
        *v = map[*v].expect("outputs are defined");
    }
    ir.avals = avals;
    ir
}
