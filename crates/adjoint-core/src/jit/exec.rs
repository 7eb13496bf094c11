//! Running a staged program, two ways.
//!
//! - **Replay through `bind`** when a transform is active (or anomaly mode is on): each
//!   equation's primitive is bound again on the values of its inputs, so under an enclosing
//!   `grad`, `jvp` or `vmap` the binds go through that transform's level like any other op,
//!   which is what makes `grad(jit(f))` and `vmap(jit(f))` compose.
//! - **The fast plan** when no transform is active (one thread-local read) and every input and
//!   constant is concrete: the program after [`fuse`](super::passes::fuse) (elementwise chains
//!   as [`Fused`](super::fused::Fused) kernels), run straight on the arrays — each equation's
//!   `eval`, no `Tensor` wrapping, no shape rule re-checked per call (the checker validated
//!   the plan once). Intermediates are dropped after their last reader, so their buffers go
//!   back to the buffer cache (`adjoint_tensor::cache`) and the next kernel of that size
//!   takes them: buffer reuse by liveness, without a separate arena. A fused kernel is
//!   handed the inputs it is the last to read, and may write an output into one of their
//!   buffers ([`Kernel::reuse`](super::fused::Kernel::reuse)). Intermediates of different
//!   sizes whose lifetimes do not overlap share buffers through the memory plan
//!   ([`memplan`](super::memplan)): each is allocated at the capacity of the object it was
//!   assigned, so that the cache keeps one buffer per object rather than one per size.

use smallvec::SmallVec;

use super::fused::{Arg, Fused};
use super::ir::{Eqn, Ir, Var};
use super::small::SmallPlan;
use crate::primitive::Outs;
use crate::tensor::{Repr, Tensor};
use crate::trace::{bind_below, depth};
use adjoint_tensor::Array;

/// For each equation, the variables it is the last to read (dropped right after it).
fn last_reads(ir: &Ir) -> Vec<SmallVec<[Var; 2]>> {
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
    frees
}

/// The transform-free plan: the fused program with its constants as arrays.
struct Plan {
    ir: Ir,
    consts: Vec<(Var, Array)>,
    frees: Vec<SmallVec<[Var; 2]>>,
    /// Per equation, the capacities its outputs are allocated at ([`memplan`](super::memplan)).
    hints: super::memplan::Hints,
}

impl Plan {
    /// `None` when a constant is a tracer of an enclosing transform (then replay is needed).
    fn new(ir: &Ir) -> Option<Plan> {
        let consts = ir
            .consts
            .iter()
            .map(|(v, t)| match &t.0 {
                Repr::Concrete(a) => Some((*v, a.clone())),
                Repr::Tracer(_) => None,
            })
            .collect::<Option<Vec<_>>>()?;
        let ir = super::passes::fuse(ir.clone());
        if cfg!(debug_assertions) {
            ir.assert_valid("fuse");
        }
        let frees = last_reads(&ir);
        let hints = super::memplan::plan(&ir);
        Some(Plan { ir, consts, frees, hints })
    }

    /// Run on concrete inputs, taken by value so that a buffer nobody else holds can be
    /// written in place by the kernels that read it last (see [`jit_donate`]). `Err` gives the
    /// inputs back when one is a tracer (then the program must be replayed).
    ///
    /// [`jit_donate`]: super::jit_donate
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, Vec<Tensor>> {
        if inputs.iter().any(|t| matches!(t.0, Repr::Tracer(_))) {
            return Err(inputs);
        }
        let ir = &self.ir;
        let mut env: Vec<Option<Array>> = vec![None; ir.avals.len()];
        for (&v, t) in ir.inputs.iter().zip(inputs) {
            if let Repr::Concrete(a) = t.0 {
                env[v] = Some(a);
            }
        }
        for (v, a) in &self.consts {
            env[*v] = Some(a.clone());
        }
        for ((e, frees), hints) in ir.eqns.iter().zip(&self.frees).zip(&self.hints) {
            let fused = e.prim.as_any().downcast_ref::<Fused>().filter(|f| !f.kernel.reuse.is_empty());
            let mut eval = || {
                if let Some(f) = fused {
                    run_fused(f, e, frees, &mut env)
                } else {
                    let args: SmallVec<[&Array; 4]> = e
                        .ins
                        .iter()
                        .map(|&v| env[v].as_ref().expect("defined before use (checked)"))
                        .collect();
                    e.prim.eval(&args)
                }
            };
            let outs = if hints.is_empty() { eval() } else { adjoint_tensor::cache::with_hints(hints, eval) };
            if cfg!(debug_assertions) {
                for (&v, a) in e.outs.iter().zip(&outs) {
                    let want = &ir.avals[v];
                    assert!(
                        a.shape() == want.shape.as_slice() && a.dtype() == want.dtype,
                        "adjoint: jit: internal error: `{}` gave {:?} {}, the plan declares {want}",
                        e.prim.name(),
                        a.shape(),
                        a.dtype()
                    );
                }
            }
            for (&v, a) in e.outs.iter().zip(outs) {
                env[v] = Some(a);
            }
            for &v in frees {
                env[v] = None;
            }
        }
        Ok(ir
            .outputs
            .iter()
            .map(|&v| Tensor::from_array(env[v].clone().expect("outputs are defined (checked)")))
            .collect())
    }
}

/// Run a fused equation whose kernel may write outputs into input buffers
/// ([`Kernel::reuse`](super::fused::Kernel::reuse)): each such input read for the last time
/// here (and only once by the equation) is handed over, so that when its buffer has no other
/// owner the output is computed in place of it, in memory that is hot in cache, rather than in
/// a buffer taken from the cache.
fn run_fused(f: &Fused, e: &Eqn, frees: &[Var], env: &mut [Option<Array>]) -> Outs<Array> {
    let give = |k: usize| {
        let v = e.ins[k];
        f.kernel.reuse.iter().any(|p| p.0 == k)
            && frees.contains(&v)
            && e.ins.iter().filter(|&&u| u == v).count() == 1
    };
    let mut owned: SmallVec<[Option<Array>; 4]> =
        (0..e.ins.len()).map(|k| if give(k) { env[e.ins[k]].take() } else { None }).collect();
    let args: Vec<Arg<'_>> = e
        .ins
        .iter()
        .zip(owned.iter_mut())
        .map(|(&v, o)| match o.take() {
            Some(a) => Arg::Owned(a),
            None => Arg::Borrowed(env[v].as_ref().expect("defined before use (checked)")),
        })
        .collect();
    f.kernel.run_args(args)
}

/// A program ready to run: the IR for replay, with, per equation, the variables it is the
/// last to read (so intermediate values are dropped as soon as they are dead), and the fast
/// plan for calls with no transform active.
pub(crate) struct Executable {
    pub(crate) ir: Ir,
    frees: Vec<SmallVec<[Var; 2]>>,
    plan: Option<Plan>,
    /// The scalarised program, built on first request (loop bodies ask for it).
    small: std::cell::OnceCell<Option<SmallPlan>>,
}

impl Executable {
    pub(crate) fn new(ir: Ir) -> Executable {
        let plan = Plan::new(&ir);
        let frees = last_reads(&ir);
        Executable { ir, frees, plan, small: std::cell::OnceCell::new() }
    }

    /// The program scalarised ([`SmallPlan`]), when every value is tiny and every op supported.
    pub(crate) fn small(&self) -> Option<&SmallPlan> {
        self.small.get_or_init(|| SmallPlan::new(&self.ir)).as_ref()
    }

    /// Run the program on one tensor per input variable; returns one tensor per output. With
    /// no transform active, the fast plan; otherwise replay through `bind`.
    pub(crate) fn run(&self, inputs: &[Tensor]) -> Vec<Tensor> {
        self.run_owned(inputs.to_vec())
    }

    /// [`run`](Self::run) on inputs given up by the caller: the fast plan may write outputs
    /// into buffers that only these inputs hold ([`jit_donate`](super::jit_donate)).
    pub(crate) fn run_owned(&self, inputs: Vec<Tensor>) -> Vec<Tensor> {
        assert_eq!(inputs.len(), self.ir.inputs.len(), "adjoint: jit: internal error: input count");
        let inputs = match &self.plan {
            Some(plan) if depth() == 0 && !crate::debug::requested() => match plan.run(inputs) {
                Ok(outs) => return outs,
                Err(inputs) => inputs,
            },
            _ => inputs,
        };
        self.replay(&inputs)
    }

    /// Replay the program through `bind` (see the [module docs](self)).
    pub(crate) fn replay(&self, inputs: &[Tensor]) -> Vec<Tensor> {
        let ir = &self.ir;
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

/// Run a program once by replaying it through `bind`, never through the fused plan: the
/// reference the fast path is tested against.
///
/// ```
/// use adjoint_core::{jit::{exec::{replay_ir, run_ir}, make_ir}, Tensor};
/// let x = Tensor::from_vec(vec![0.5f64, 2.0], &[2]);
/// let ir = make_ir(|x: &Tensor| (x.exp() * x).sin())(&x);
/// assert_eq!(replay_ir(&ir, &[x.clone()])[0].to_vec::<f64>(), run_ir(&ir, &[x])[0].to_vec::<f64>());
/// ```
pub fn replay_ir(ir: &Ir, inputs: &[Tensor]) -> Vec<Tensor> {
    Executable::new(ir.clone()).replay(inputs)
}
