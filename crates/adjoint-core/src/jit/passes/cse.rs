//! Common-subexpression elimination.

use std::any::TypeId;
use std::collections::HashMap;

use smallvec::SmallVec;

use crate::jit::ir::{Ir, Var};

/// What makes two equations the same computation: the primitive's type, its parameters'
/// key, and the (renamed) inputs.
type Key = (TypeId, String, SmallVec<[Var; 3]>);

/// Merge equations that apply the same primitive, with equal parameters, to the same inputs:
/// later ones are dropped and their outputs read from the first. Parameters are compared by
/// the primitive's type and [`cse_key`](crate::primitive::Primitive::cse_key) (its `Debug`
/// text by default); a primitive without a key (a custom call) is never merged.
///
/// ```
/// use adjoint_core::jit::{make_ir, passes::cse};
/// use adjoint_core::Tensor;
/// let ir = make_ir(|x: &Tensor| x.exp() + x.exp())(&Tensor::zeros(&[3]));
/// assert_eq!((ir.eqns.len(), cse(ir).eqns.len()), (3, 2));
/// ```
pub fn cse(mut ir: Ir) -> Ir {
    let mut rename: Vec<Var> = (0..ir.avals.len()).collect();
    let mut seen: HashMap<Key, SmallVec<[Var; 1]>> = HashMap::new();
    let eqns = std::mem::take(&mut ir.eqns);
    for mut e in eqns {
        for v in e.ins.iter_mut() {
            *v = rename[*v];
        }
        let Some(key) = e.prim.cse_key() else {
            ir.eqns.push(e);
            continue;
        };
        match seen.get(&(e.prim.type_key(), key.clone(), e.ins.clone())) {
            Some(first) => {
                for (&o, &f) in e.outs.iter().zip(first) {
                    rename[o] = f;
                }
            }
            None => {
                seen.insert((e.prim.type_key(), key, e.ins.clone()), e.outs.clone());
                ir.eqns.push(e);
            }
        }
    }
    for v in ir.outputs.iter_mut() {
        *v = rename[*v];
    }
    ir
}
