//! Running a staged program: each equation's primitive is bound again on the values of its
//! inputs. With no transform active the binds take the eager fast path (the kernels, no tape);
//! under an enclosing `grad`, `jvp` or `vmap` they go through that transform's level like any
//! other op, which is what makes `grad(jit(f))` and `vmap(jit(f))` compose.

use smallvec::SmallVec;

use super::ir::{Ir, Var};
use crate::tensor::Tensor;
use crate::trace::bind_below;

/// A program ready to run: the IR and, per equation, the variables it is the last to read (so
/// intermediate values are dropped as soon as they are dead).
pub(crate) struct Executable {
    pub(crate) ir: Ir,
    frees: Vec<SmallVec<[Var; 2]>>,
}

impl Executable {
    pub(crate) fn new(ir: Ir) -> Executable {
        let n = ir.avals.len();
        let mut last = vec![usize::MAX; n];
        for (i, e) in ir.eqns.iter().enumerate() {
            for &v in &e.ins {
                last[v] = i;
            }
        }
        for &v in &ir.outputs {
            last[v] = usize::MAX;
        }
        let mut frees = vec![SmallVec::new(); ir.eqns.len()];
        for (v, &i) in last.iter().enumerate() {
            if i != usize::MAX && !frees[i].contains(&v) {
                frees[i].push(v);
            }
        }
        Executable { ir, frees }
    }

    /// Run the program on one tensor per input variable; returns one tensor per output.
    pub(crate) fn run(&self, inputs: &[Tensor]) -> Vec<Tensor> {
        let ir = &self.ir;
        assert_eq!(inputs.len(), ir.inputs.len(), "adjoint: jit: internal error: input count");
        let mut env: Vec<Option<Tensor>> = vec![None; ir.avals.len()];
        for (&v, t) in ir.inputs.iter().zip(inputs) {
            env[v] = Some(t.clone());
        }
        for (v, t) in &ir.consts {
            env[*v] = Some(t.clone());
        }
        for (e, frees) in ir.eqns.iter().zip(&self.frees) {
            let outs = {
                let args: SmallVec<[&Tensor; 4]> =
                    e.ins.iter().map(|&v| env[v].as_ref().expect("defined before use (checked)")).collect();
                bind_below(&*e.prim, &args)
            };
            for (&v, t) in e.outs.iter().zip(outs) {
                env[v] = Some(t);
            }
            for &v in frees {
                env[v] = None;
            }
        }
        ir.outputs.iter().map(|&v| env[v].clone().expect("outputs are defined (checked)")).collect()
    }
}

/// Run a program once on one tensor per input, as a jitted function's cached program runs:
/// for programs built or transformed by hand (a pass's test, a program from [`make_ir`]).
///
/// [`make_ir`]: crate::jit::make_ir
///
/// ```
/// use adjoint_core::{jit::{exec::run_ir, make_ir}, Tensor};
/// let x = Tensor::scalar(2.0f64);
/// let ir = make_ir(|x: &Tensor| x * x)(&x);
/// assert_eq!(run_ir(&ir, &[x])[0].item(), 4.0);
/// ```
pub fn run_ir(ir: &Ir, inputs: &[Tensor]) -> Vec<Tensor> {
    Executable::new(ir.clone()).run(inputs)
}
