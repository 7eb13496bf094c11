//! The staging level: `bind` at a `Stage` frame appends an equation to the program being
//! recorded instead of running a kernel.

use std::collections::HashMap;

use smallvec::SmallVec;

use super::ir::{Eqn, Ir, Var};
use crate::params::Params;
use crate::primitive::{Aval, Outs, Primitive};
use crate::tensor::{Payload, Repr, Tensor};
use crate::trace::{own_payload, push_frame, with_staged, Kind};

/// The program being recorded by one `Stage` frame.
#[derive(Default)]
pub(crate) struct Builder {
    ir: Ir,
    /// Constants already in the program, by the identity of the value they hold, so a value
    /// read by many equations is one constant.
    const_of: HashMap<ConstKey, Var>,
}

/// The identity of a constant: a concrete array's storage and view, or a tracer's allocation.
#[derive(Clone, PartialEq, Eq, Hash)]
enum ConstKey {
    Array { storage: usize, offset: usize, shape: Vec<usize>, strides: Vec<isize> },
    Tracer(usize),
}

impl ConstKey {
    fn of(t: &Tensor) -> ConstKey {
        match &t.0 {
            Repr::Concrete(a) => ConstKey::Array {
                storage: std::sync::Arc::as_ptr(a.storage()) as usize,
                offset: a.layout().offset,
                shape: a.shape().to_vec(),
                strides: a.layout().strides.to_vec(),
            },
            Repr::Tracer(tr) => ConstKey::Tracer(std::sync::Arc::as_ptr(tr) as usize),
        }
    }
}

impl Builder {
    /// The variable standing for a value this frame does not own (a closed-over constant).
    fn constant(&mut self, t: &Tensor) -> Var {
        let key = ConstKey::of(t);
        if let Some(&v) = self.const_of.get(&key) {
            return v;
        }
        let v = self.ir.new_var(Aval::of(t));
        self.ir.consts.push((v, t.clone()));
        self.const_of.insert(key, v);
        v
    }
}

/// The variable of `t` in the frame (`level`, `id`): its own tracer's, or a new constant.
fn var_of(b: &mut Builder, t: &Tensor, level: usize, id: u64) -> Var {
    match own_payload(t, level, id) {
        Some(Payload::Stage { var, .. }) => *var,
        _ => b.constant(t),
    }
}

fn tracer(level: usize, id: u64, var: Var, aval: Aval) -> Tensor {
    Tensor::tracer(level, id, Payload::Stage { var, aval })
}

/// `bind` at a `Stage` frame: record `outs = p(args)` with the outputs' abstract values from
/// the shape rule (already checked by `bind`), and return the outputs as this frame's tracers.
#[track_caller]
pub(crate) fn stage_bind<P: Primitive + ?Sized>(
    p: &P,
    args: &[&Tensor],
    level: usize,
    id: u64,
) -> Outs<Tensor> {
    let avals: SmallVec<[Aval; 4]> = args.iter().map(|a| Aval::of(a)).collect();
    let out_avals = p.shape(&avals);
    let prim = p.to_rc();
    with_staged(level, |b| {
        let ins: SmallVec<[Var; 3]> = args.iter().map(|a| var_of(b, a, level, id)).collect();
        let outs: SmallVec<[Var; 1]> = out_avals.iter().map(|a| b.ir.new_var(a.clone())).collect();
        b.ir.eqns.push(Eqn { prim, ins, outs: outs.clone() });
        outs.into_iter().zip(out_avals).map(|(v, a)| tracer(level, id, v, a)).collect()
    })
}

/// Trace `f` at `p`'s abstract values into a program: a `Stage` frame is pushed, `f` receives
/// one tracer per leaf of `p`, and every `bind` it makes on them is recorded. Returns the
/// program and `f`'s result with its leaves replaced by placeholders (its structure, for
/// rebuilding results).
#[track_caller]
pub(crate) fn trace<P: Params, O: Params>(f: impl FnOnce(&P) -> O, p: &P) -> (Ir, O) {
    let guard = push_frame(Kind::Stage);
    let (level, id) = (guard.level, guard.id);
    let traced = p.map_tensors(&mut |t| {
        let aval = Aval::of(t);
        let var = with_staged(level, |b| {
            let v = b.ir.new_var(aval.clone());
            b.ir.inputs.push(v);
            v
        });
        tracer(level, id, var, aval)
    });
    let out = f(&traced);
    drop(traced);
    let outputs: Vec<Var> = with_staged(level, |b| {
        let mut vs = Vec::new();
        out.for_each_tensor(&mut |t| vs.push(var_of(b, t, level, id)));
        vs
    });
    let template = out.map_tensors(&mut |_| Tensor::scalar(0.0f32));
    drop(out);
    let mut ir = guard.pop_frame().staged.expect("a Stage frame records a program").ir;
    ir.outputs = outputs;
    if cfg!(debug_assertions) {
        ir.assert_valid("staging");
    }
    (ir, template)
}
