//! The staged program: plain data (variables with their abstract values, equations naming a
//! primitive value and their inputs), its readable `Display`, and the checker.

use std::fmt;
use std::rc::Rc;

use smallvec::SmallVec;

use crate::primitive::{Aval, Primitive};
use crate::tensor::{Repr, Tensor};

/// A variable of an [`Ir`]: an index into [`Ir::avals`].
pub type Var = usize;

/// One equation: `outs = prim(ins)`. The primitive value holds its parameters (the axes of a
/// reduction, the shape of a reshape), so the equation needs nothing else to run again.
#[derive(Clone)]
pub struct Eqn {
    /// The primitive, parameters included.
    pub prim: Rc<dyn Primitive>,
    /// Input variables.
    pub ins: SmallVec<[Var; 3]>,
    /// Output variables, one per output of the primitive.
    pub outs: SmallVec<[Var; 1]>,
}

/// A staged program in SSA form, as [`make_ir`](crate::jit::make_ir) returns and `jit` runs.
///
/// Every variable is defined once: as an input, as a constant, or as an output of one
/// equation, before any equation reads it. Constants are values the function closed over:
/// concrete tensors (literals), or tracers of a transform enclosing the `jit` call (kept as
/// they are, so that transform still sees them when the program runs).
#[derive(Clone, Default)]
pub struct Ir {
    /// The abstract value (shape and dtype) of every variable.
    pub avals: Vec<Aval>,
    /// Input variables, one per leaf of the function's argument, in `Params` order.
    pub inputs: Vec<Var>,
    /// Constant variables and their values.
    pub consts: Vec<(Var, Tensor)>,
    /// Equations in execution order.
    pub eqns: Vec<Eqn>,
    /// Output variables, one per leaf of the function's result (an input or a constant may be
    /// an output too).
    pub outputs: Vec<Var>,
}

impl Ir {
    /// A new variable of abstract value `aval`.
    pub fn new_var(&mut self, aval: Aval) -> Var {
        self.avals.push(aval);
        self.avals.len() - 1
    }

    /// Check the program: every variable defined exactly once before it is read, constants of
    /// their declared type, and every equation's outputs exactly what its primitive's shape
    /// rule gives for its inputs' abstract values.
    pub fn check(&self) -> Result<(), String> {
        let mut defined = vec![false; self.avals.len()];
        let define = |defined: &mut Vec<bool>, v: Var, what: &str| -> Result<(), String> {
            match defined.get_mut(v) {
                None => Err(format!("{what} {} has no abstract value", name(v))),
                Some(true) => Err(format!("{what} {} is defined twice", name(v))),
                Some(d) => {
                    *d = true;
                    Ok(())
                }
            }
        };
        for &v in &self.inputs {
            define(&mut defined, v, "input")?;
        }
        for (v, t) in &self.consts {
            define(&mut defined, *v, "constant")?;
            if Aval::of(t) != self.avals[*v] {
                return Err(format!("constant {} is {}, declared {}", name(*v), Aval::of(t), self.avals[*v]));
            }
        }
        for (i, e) in self.eqns.iter().enumerate() {
            for &v in &e.ins {
                if !defined.get(v).copied().unwrap_or(false) {
                    return Err(format!(
                        "equation {i} ({}) reads {} before it is defined",
                        e.prim.name(),
                        name(v)
                    ));
                }
            }
            let ins: SmallVec<[Aval; 4]> = e.ins.iter().map(|&v| self.avals[v].clone()).collect();
            let want = e.prim.shape(&ins);
            let got: SmallVec<[Aval; 1]> = e.outs.iter().map(|&v| self.avals[v].clone()).collect();
            if want.as_slice() != got.as_slice() {
                return Err(format!(
                    "equation {i} ({}): the shape rule gives {want:?}, the program declares {got:?}",
                    e.prim.name()
                ));
            }
            for &v in &e.outs {
                define(&mut defined, v, "equation output")?;
            }
        }
        for &v in &self.outputs {
            if !defined.get(v).copied().unwrap_or(false) {
                return Err(format!("output {} is never defined", name(v)));
            }
        }
        Ok(())
    }

    /// Panic with the pass's name when [`check`](Self::check) fails (debug builds call this
    /// after every pass).
    #[track_caller]
    pub fn assert_valid(&self, after: &str) {
        if let Err(e) = self.check() {
            panic!("adjoint: internal error: invalid program after {after}: {e}\n{self}");
        }
    }
}

/// The readable name of a variable: `a`, `b`, …, `z`, `ba`, `bb`, … (as JAX prints them).
pub fn name(v: Var) -> String {
    let mut s = Vec::new();
    let mut n = v;
    loop {
        s.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

/// The parameters of a primitive as its `Debug` text shows them: the inside of `Name { … }` or
/// `Name(…)`, nothing for a unit struct.
fn params_text(p: &dyn Primitive) -> Option<String> {
    let d = format!("{p:?}");
    let open = d.find(['{', '('])?;
    let inner = d[open + 1..d.len() - 1].trim();
    (!inner.is_empty()).then(|| inner.to_string())
}

/// `a:f64[2,3]`: a variable with its dtype and shape, as JAX prints them.
fn typed(ir: &Ir, v: Var) -> String {
    let a = &ir.avals[v];
    let dims: Vec<String> = a.shape.iter().map(|d| d.to_string()).collect();
    let dtype = format!("{:?}", a.dtype).to_lowercase();
    format!("{}:{dtype}[{}]", name(v), dims.join(","))
}

/// A constant's value, when it is small enough to print.
fn literal(t: &Tensor) -> Option<String> {
    match &t.0 {
        Repr::Concrete(a) if a.numel() <= 4 => {
            let v: Vec<f64> = a.to_vec();
            let items: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
            Some(if a.rank() == 0 { items.join("") } else { format!("[{}]", items.join(", ")) })
        }
        Repr::Concrete(_) => None,
        Repr::Tracer(_) => Some("<outer tracer>".to_string()),
    }
}

/// `{ lambda a:f64[]=2 ; b:f64[3]. let c:f64[3] = mul b a; d:f64[] = reduce_sum[…] c in (d) }`:
/// constants (with their value when small) before `;`, inputs after, one equation per line.
impl fmt::Display for Ir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let consts: Vec<String> = self
            .consts
            .iter()
            .map(|(v, t)| match literal(t) {
                Some(l) => format!("{}={l}", typed(self, *v)),
                None => typed(self, *v),
            })
            .collect();
        let ins: Vec<String> = self.inputs.iter().map(|&v| typed(self, v)).collect();
        let consts = if consts.is_empty() { String::new() } else { consts.join(" ") + " " };
        write!(f, "{{ lambda {consts}; {}. let", ins.join(" "))?;
        for e in &self.eqns {
            let outs: Vec<String> = e.outs.iter().map(|&v| typed(self, v)).collect();
            let args: Vec<String> = e.ins.iter().map(|&v| name(v)).collect();
            let params = params_text(&*e.prim).map_or(String::new(), |p| format!("[{p}]"));
            write!(f, "\n    {} = {}{params} {}", outs.join(" "), e.prim.name(), args.join(" "))?;
        }
        let outs: Vec<String> = self.outputs.iter().map(|&v| name(v)).collect();
        write!(f, "\n  in ({}) }}", outs.join(", "))
    }
}

impl fmt::Debug for Ir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
