//! Dead-code elimination.

use crate::jit::ir::Ir;

/// Drop every equation none of whose outputs is read (by a later equation or as a program
/// output), and every constant nothing reads. Primitives are pure, so nothing else is lost.
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
    ir
}
