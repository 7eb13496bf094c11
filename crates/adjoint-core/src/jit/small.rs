//! Scalarised programs: a program whose every value is a tiny tensor, compiled to a flat list
//! of scalar instructions over one register file.
//!
//! ## Why
//! A loop body of scalar physics (`W5_arm_bptt`: 2 joints, 50–130 ops a step, every value a
//! `[1]` or `[2]` tensor) spends almost all of its time in per-op overhead when run as arrays:
//! an allocation per value, reference counts, a layout per op, and the loop's own slicing and
//! stacking. XLA compiles such a loop to straight-line scalar code. This is the interpreter
//! version of that: every element of every value gets a register (data movement — reshape,
//! slice, broadcast, pad, concat — is resolved at compile time into register aliases and
//! costs nothing at run time), and each arithmetic element is one [`Instr`] that calls the
//! same per-element function as the array kernels ([`BlockFloat`]), so results agree with
//! eager execution bit for bit, except that a `reduce_sum` adds its elements in index order.
//! The scalar program is then cleaned up once (`Builder::optimize`): instructions on constants
//! are folded by the interpreter's own step function, repeats on the same registers are
//! computed once, and instructions no output reads are dropped.
//!
//! ## Limits
//! A program qualifies when its inputs, outputs and constants are all of one float dtype,
//! every value has at most [`SMALL_LIMIT`] elements, and every equation is an elementwise op
//! the fusion pass knows ([`classify`]), `reshape`, `slice`, `pad`, `concat`, `reduce_sum`, or a
//! `cast` of a mask to the float type.
//! Otherwise [`SmallPlan::new`] gives `None` and the program runs as arrays.
//! [`Scan`](crate::control::scan::Scan) uses it to run a whole loop with no allocation per step.
//!
//! ## Native code
//! With the `native` feature (on by default) a plan that has run
//! [`NATIVE_THRESHOLD`](crate::jit::native::NATIVE_THRESHOLD) instructions in the interpreter
//! is compiled to machine code through Cranelift ([`crate::jit::native`]: the same IEEE
//! operations and per-element functions, so the same bits) and runs natively from then on.

use adjoint_tensor::ops::binary::BinaryOp;
use adjoint_tensor::ops::block::BlockFloat;
use adjoint_tensor::{Array, DType};

use super::fused::Op;
use super::ir::Ir;
use super::passes::classify;
use crate::prims;
use crate::tensor::Repr;

#[cfg(feature = "native")]
mod native;

/// Values with more elements than this are not scalarised.
pub const SMALL_LIMIT: usize = 256;
/// Programs with more instructions than this are not scalarised.
const INSTR_LIMIT: usize = 1 << 16;

/// An instruction's operation: the four arithmetic operators, negation and the fused
/// multiply-add forms inline, everything else through the kernels' per-element functions.
/// The fused forms round twice, exactly as the two instructions they replace
/// (`MulAdd`: `a·b + c`, `MulSub`: `a·b − c`, `SubMul`: `c − a·b`; no FMA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Code {
    Add,
    Sub,
    Mul,
    Div,
    Neg,
    MulAdd,
    MulSub,
    SubMul,
    Other(Op),
}

impl Code {
    fn of(op: Op) -> Code {
        use adjoint_tensor::ops::unary::UnaryOp;
        match op {
            Op::Binary(BinaryOp::Add) => Code::Add,
            Op::Binary(BinaryOp::Sub) => Code::Sub,
            Op::Binary(BinaryOp::Mul) => Code::Mul,
            Op::Binary(BinaryOp::Div) => Code::Div,
            Op::Unary(UnaryOp::Neg) => Code::Neg,
            op => Code::Other(op),
        }
    }

    fn arity(self) -> usize {
        match self {
            Code::Add | Code::Sub | Code::Mul | Code::Div => 2,
            Code::Neg => 1,
            Code::MulAdd | Code::MulSub | Code::SubMul => 3,
            Code::Other(op) => op.arity(),
        }
    }

    /// The interpreter's dispatch byte: the common operations have their own arm, the rest
    /// go through [`step`].
    fn kind(self) -> Kind {
        use adjoint_tensor::ops::unary::UnaryOp;
        match self {
            Code::Add => Kind::Add,
            Code::Sub => Kind::Sub,
            Code::Mul => Kind::Mul,
            Code::Div => Kind::Div,
            Code::Neg => Kind::Neg,
            Code::MulAdd => Kind::MulAdd,
            Code::MulSub => Kind::MulSub,
            Code::SubMul => Kind::SubMul,
            Code::Other(Op::Unary(UnaryOp::Sin)) => Kind::Sin,
            Code::Other(Op::Unary(UnaryOp::Cos)) => Kind::Cos,
            Code::Other(_) => Kind::Other,
        }
    }
}

/// A flat, one-byte form of [`Code`] for the interpreter's `match` (one jump table, no
/// decoding of nested enums).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Add,
    Sub,
    Mul,
    Div,
    Neg,
    MulAdd,
    MulSub,
    SubMul,
    Sin,
    Cos,
    Other,
}

/// One instruction's result, its operands read by `get(k)`: the interpreter's step, also
/// used to fold instructions on constants at compile time (so folding is exact).
#[inline(always)]
fn step<T: BlockFloat>(code: Code, get: impl Fn(usize) -> T) -> T {
    use adjoint_tensor::ops::compare::CompareOp as C;
    let (zero, one) = (T::zero(), T::one());
    let a = get(0);
    match code {
        Code::Add => a + get(1),
        Code::Sub => a - get(1),
        Code::Mul => a * get(1),
        Code::Div => a / get(1),
        Code::Neg => -a,
        Code::MulAdd => a * get(1) + get(2),
        Code::MulSub => a * get(1) - get(2),
        Code::SubMul => get(2) - a * get(1),
        Code::Other(Op::Unary(u)) => T::unary_one(u, a),
        Code::Other(Op::Binary(bo)) => T::binary_one(bo, a, get(1)),
        Code::Other(Op::Compare(co)) => {
            let b = get(1);
            let c = match co {
                C::Eq => a == b,
                C::Ne => a != b,
                C::Lt => a < b,
                C::Le => a <= b,
                C::Gt => a > b,
                C::Ge => a >= b,
            };
            if c {
                one
            } else {
                zero
            }
        }
        Code::Other(Op::Select) => get(if a != zero { 1 } else { 2 }),
        Code::Other(Op::Copy) => a,
    }
}

/// One scalar instruction: `regs[dst] = op(regs[src…])`.
#[derive(Clone, Copy, Debug)]
pub struct Instr {
    kind: Kind,
    code: Code,
    dst: u32,
    src: [u32; 3],
}

/// A scalarised program (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct SmallPlan {
    /// The float type of every input, output and constant.
    pub dtype: DType,
    registers: usize,
    /// The registers of each input's elements (row-major), written before a run.
    inputs: Vec<Vec<u32>>,
    /// The registers each output's elements are read from after a run.
    outputs: Vec<Vec<u32>>,
    /// Constant registers and their values.
    consts: Vec<(u32, f64)>,
    instrs: Vec<Instr>,
    /// Whether each register is read (by an instruction or as an output).
    read: Vec<bool>,
    /// Instructions interpreted so far (towards the compile threshold).
    #[cfg(feature = "native")]
    hot: std::cell::Cell<u64>,
    /// The native code, once compiled (`None` inside when compiling failed).
    #[cfg(feature = "native")]
    native: std::cell::OnceCell<Option<std::rc::Rc<native::Native>>>,
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// The multi-index of element `i` of `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        idx[k] = i % shape[k];
        i /= shape[k];
    }
    idx
}

/// The element of an operand of shape `s` that element `idx` of the (broadcast) output reads.
fn broadcast_source(idx: &[usize], s: &[usize]) -> usize {
    let off = idx.len() - s.len();
    let st = strides(s);
    s.iter().enumerate().map(|(k, &d)| if d == 1 { 0 } else { idx[k + off] * st[k] }).sum()
}

struct Builder {
    registers: usize,
    instrs: Vec<Instr>,
    consts: Vec<(u32, f64)>,
}

impl Builder {
    fn fresh(&mut self) -> u32 {
        self.registers += 1;
        (self.registers - 1) as u32
    }
    fn constant(&mut self, x: f64) -> u32 {
        let r = self.fresh();
        self.consts.push((r, x));
        r
    }
    fn push(&mut self, code: Code, dst: u32, src: [u32; 3]) {
        self.instrs.push(Instr { kind: code.kind(), code, dst, src });
    }
    fn emit(&mut self, op: Op, src: [u32; 3]) -> u32 {
        let dst = self.fresh();
        self.push(Code::of(op), dst, src);
        dst
    }

    /// Clean up the scalar program, in `T` (the plan's dtype): an instruction whose operands are
    /// all constants becomes a constant (computed by the interpreter's own [`step`], so exactly
    /// the value it would compute), a repeat of an earlier instruction on the same registers
    /// reads that one's result (every register is written once per run, so this is exact), and
    /// instructions no output depends on are dropped. Scalarising exposes much of this: the
    /// elements of a broadcast constant, a backward pass's products with constant partials,
    /// elements of a vector of which only one is read.
    fn optimize<T: BlockFloat>(&mut self, outputs: &mut [Vec<u32>]) {
        let n = self.registers;
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut known: Vec<Option<T>> = vec![None; n];
        for &(r, x) in &self.consts {
            known[r as usize] = Some(T::from_f64(x));
        }
        let mut seen: std::collections::HashMap<(Code, [u32; 3]), u32> = std::collections::HashMap::new();
        let mut kept: Vec<Instr> = Vec::with_capacity(self.instrs.len());
        for mut ins in std::mem::take(&mut self.instrs) {
            let arity = ins.code.arity();
            for (k, s) in ins.src.iter_mut().enumerate() {
                *s = if k < arity { alias[*s as usize] } else { 0 };
            }
            let dst = ins.dst as usize;
            if ins.src[..arity].iter().all(|&s| known[s as usize].is_some()) {
                let v = step(ins.code, |k| known[ins.src[k] as usize].expect("all known"));
                known[dst] = Some(v);
                self.consts.push((ins.dst, v.to_f64()));
                continue;
            }
            match seen.entry((ins.code, ins.src)) {
                std::collections::hash_map::Entry::Occupied(e) => alias[dst] = *e.get(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(ins.dst);
                    kept.push(ins);
                }
            }
        }
        for r in outputs.iter_mut().flatten() {
            *r = alias[*r as usize];
        }
        let mut live = vec![false; n];
        for &r in outputs.iter().flatten() {
            live[r as usize] = true;
        }
        let mut out: Vec<Instr> = Vec::with_capacity(kept.len());
        for ins in kept.into_iter().rev() {
            if live[ins.dst as usize] {
                for &s in &ins.src[..ins.code.arity()] {
                    live[s as usize] = true;
                }
                out.push(ins);
            }
        }
        out.reverse();
        self.instrs = out;
    }

    /// Remove negations by carrying signs (after [`optimize`](Self::optimize)): each value is
    /// held as a register and a sign, `-x` costs nothing, products and quotients combine
    /// signs, and sums and differences absorb them (`a + (−b)` is `a − b`, `(−a) − (−b)` is
    /// `b − a`). Every rewrite is exact in IEEE arithmetic — the operators are symmetric under
    /// negation and `a − b` *is* `a + (−b)` — including the sign of a zero: the two cases where
    /// `−(a + b)` would give `−0` for `(−a) + (−b)`'s `+0` keep one negation instead. A value
    /// another operation (or an output) reads with its sign set is negated once, where first
    /// needed (a constant's sign is folded into a new constant).
    fn absorb_negations(&mut self, outputs: &mut [Vec<u32>]) {
        let n = self.registers;
        let mut val: Vec<(u32, bool)> = (0..n as u32).map(|r| (r, false)).collect();
        let konst: std::collections::HashMap<u32, f64> = self.consts.iter().copied().collect();
        let mut negated: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        let instrs = std::mem::take(&mut self.instrs);
        let mut materialise = |b: &mut Builder, (r, neg): (u32, bool)| -> u32 {
            if !neg {
                return r;
            }
            if let Some(&m) = negated.get(&r) {
                return m;
            }
            let m = match konst.get(&r) {
                Some(&x) => b.constant(-x),
                None => {
                    let m = b.fresh();
                    b.push(Code::Neg, m, [r, 0, 0]);
                    m
                }
            };
            negated.insert(r, m);
            m
        };
        for ins in instrs {
            let ar = ins.code.arity();
            let mut ops = [(0u32, false); 3];
            for k in 0..ar {
                ops[k] = val[ins.src[k] as usize];
            }
            let d = ins.dst;
            let [(a, s), (b, t), _] = ops;
            let sign = match ins.code {
                Code::Neg => {
                    val[d as usize] = (a, !s);
                    continue;
                }
                Code::Mul | Code::Div => {
                    self.push(ins.code, d, [a, b, 0]);
                    s ^ t
                }
                Code::Add | Code::Sub => {
                    let add = ins.code == Code::Add;
                    let (code, src) = match (add, s, t) {
                        (true, false, false) => (Code::Add, [a, b]),
                        (true, false, true) | (false, false, false) => (Code::Sub, [a, b]),
                        (true, true, false) | (false, true, true) => (Code::Sub, [b, a]),
                        (false, false, true) => (Code::Add, [a, b]),
                        // `(−a) + (−b)` and `(−a) − b`: negate `a`, then subtract `b`.
                        (_, true, _) => (Code::Sub, [materialise(self, (a, true)), b]),
                    };
                    self.push(code, d, [src[0], src[1], 0]);
                    false
                }
                _ => {
                    let mut src = [0u32; 3];
                    for k in 0..ar {
                        src[k] = materialise(self, ops[k]);
                    }
                    self.push(ins.code, d, src);
                    false
                }
            };
            val[d as usize] = (d, sign);
        }
        for r in outputs.iter_mut().flatten() {
            *r = materialise(self, val[*r as usize]);
        }
    }

    /// Fuse a product read only by one sum or difference into it (`MulAdd`, `MulSub`,
    /// `SubMul`): one dispatch and one register store fewer, the same two roundings.
    fn fuse_mul_add(&mut self, outputs: &[Vec<u32>]) {
        let n = self.registers;
        let mut uses = vec![0u32; n];
        for ins in &self.instrs {
            for &s in &ins.src[..ins.code.arity()] {
                uses[s as usize] += 1;
            }
        }
        for &r in outputs.iter().flatten() {
            uses[r as usize] += 2;
        }
        let mut def: Vec<Option<usize>> = vec![None; n];
        for (i, ins) in self.instrs.iter().enumerate() {
            if ins.code == Code::Mul && uses[ins.dst as usize] == 1 {
                def[ins.dst as usize] = Some(i);
            }
        }
        let mut dead = vec![false; self.instrs.len()];
        for i in 0..self.instrs.len() {
            let ins = self.instrs[i];
            if !matches!(ins.code, Code::Add | Code::Sub) {
                continue;
            }
            let product = |k: usize| def[ins.src[k] as usize].filter(|&j| !dead[j]);
            let (j, code, other) = match (ins.code, product(0), product(1)) {
                (Code::Add, Some(j), _) => (j, Code::MulAdd, ins.src[1]),
                // `c + a·b` is `a·b + c`: IEEE addition is commutative.
                (Code::Add, None, Some(j)) => (j, Code::MulAdd, ins.src[0]),
                (Code::Sub, Some(j), _) => (j, Code::MulSub, ins.src[1]),
                (Code::Sub, None, Some(j)) => (j, Code::SubMul, ins.src[0]),
                _ => continue,
            };
            dead[j] = true;
            let m = self.instrs[j];
            self.instrs[i] =
                Instr { kind: code.kind(), code, dst: ins.dst, src: [m.src[0], m.src[1], other] };
        }
        let mut k = 0;
        self.instrs.retain(|_| {
            k += 1;
            !dead[k - 1]
        });
    }
}

impl SmallPlan {
    /// Scalarise `ir`, or `None` when it does not qualify (see the [module docs](self)).
    pub fn new(ir: &Ir) -> Option<SmallPlan> {
        let dtype = ir.inputs.first().map(|&v| ir.avals[v].dtype)?;
        if !matches!(dtype, DType::F32 | DType::F64) {
            return None;
        }
        let float_ok = |v: usize| ir.avals[v].dtype == dtype;
        if !ir.inputs.iter().chain(&ir.outputs).all(|&v| float_ok(v)) {
            return None;
        }
        if ir.avals.iter().any(|a| a.shape.iter().product::<usize>() > SMALL_LIMIT) {
            return None;
        }
        let mut b = Builder { registers: 0, instrs: Vec::new(), consts: Vec::new() };
        let mut regs: Vec<Option<Vec<u32>>> = vec![None; ir.avals.len()];
        let numel = |v: usize| ir.avals[v].shape.iter().product::<usize>();
        let mut inputs = Vec::with_capacity(ir.inputs.len());
        for &v in &ir.inputs {
            let r: Vec<u32> = (0..numel(v)).map(|_| b.fresh()).collect();
            inputs.push(r.clone());
            regs[v] = Some(r);
        }
        for (v, t) in &ir.consts {
            let Repr::Concrete(a) = &t.0 else { return None };
            if a.dtype() != dtype {
                return None;
            }
            let xs: Vec<f64> = a.to_vec();
            regs[*v] = Some(xs.into_iter().map(|x| b.constant(x)).collect());
        }
        for e in &ir.eqns {
            if e.outs.len() != 1 {
                return None;
            }
            let out = e.outs[0];
            let oshape = &ir.avals[out].shape;
            let ins: Vec<&Vec<u32>> = e.ins.iter().map(|&v| regs[v].as_ref()).collect::<Option<_>>()?;
            let p = e.prim.as_any();
            let r: Vec<u32> = if let Some(op) = classify(&*e.prim) {
                // Operands: the plan's dtype, or masks (bool) for comparisons' results and
                // `select`'s condition.
                let ok = e.ins.iter().all(|&v| matches!(ir.avals[v].dtype, DType::Bool) || float_ok(v));
                if !ok || !(float_ok(out) || ir.avals[out].dtype == DType::Bool) {
                    return None;
                }
                (0..oshape.iter().product::<usize>())
                    .map(|i| {
                        let idx = unravel(i, oshape);
                        let mut src = [0u32; 3];
                        for (k, &v) in e.ins.iter().enumerate() {
                            src[k] = ins[k][broadcast_source(&idx, &ir.avals[v].shape)];
                        }
                        if op == Op::Copy {
                            src[0]
                        } else {
                            b.emit(op, src)
                        }
                    })
                    .collect()
            } else if p.is::<prims::reshape::Reshape>() {
                ins[0].clone()
            } else if let Some(c) = p.downcast_ref::<prims::cast::Cast>() {
                // A mask is already `1`/`0` in its registers; a cast to the same type is a copy.
                let from = ir.avals[e.ins[0]].dtype;
                if !(c.0 == dtype && (from == DType::Bool || from == dtype)) {
                    return None;
                }
                ins[0].clone()
            } else if let Some(s) = p.downcast_ref::<prims::slice::Slice>() {
                let ishape = &ir.avals[e.ins[0]].shape;
                let st = strides(ishape);
                (0..oshape.iter().product::<usize>())
                    .map(|i| {
                        let mut idx = unravel(i, oshape);
                        idx[s.axis] = s.start + idx[s.axis] * s.step;
                        ins[0][idx.iter().zip(&st).map(|(a, b)| a * b).sum::<usize>()]
                    })
                    .collect()
            } else if let Some(pd) = p.downcast_ref::<prims::pad::Pad>() {
                let ishape = &ir.avals[e.ins[0]].shape;
                let st = strides(ishape);
                let fill = b.constant(pd.value);
                (0..oshape.iter().product::<usize>())
                    .map(|i| {
                        let idx = unravel(i, oshape);
                        let mut at = 0;
                        for (k, &j) in idx.iter().enumerate() {
                            let (lo, _) = pd.pads[k];
                            if j < lo || j - lo >= ishape[k] {
                                return fill;
                            }
                            at += (j - lo) * st[k];
                        }
                        ins[0][at]
                    })
                    .collect()
            } else if let Some(c) = p.downcast_ref::<prims::concat::Concat>() {
                let axis = c.0;
                (0..oshape.iter().product::<usize>())
                    .map(|i| {
                        let mut idx = unravel(i, oshape);
                        let mut k = 0;
                        while idx[axis] >= ir.avals[e.ins[k]].shape[axis] {
                            idx[axis] -= ir.avals[e.ins[k]].shape[axis];
                            k += 1;
                        }
                        let st = strides(&ir.avals[e.ins[k]].shape);
                        ins[k][idx.iter().zip(&st).map(|(a, b)| a * b).sum::<usize>()]
                    })
                    .collect()
            } else if let Some(rs) = p.downcast_ref::<prims::reduce_sum::ReduceSum>() {
                if !float_ok(e.ins[0]) {
                    return None;
                }
                let ishape = &ir.avals[e.ins[0]].shape;
                let mut acc: Vec<Option<u32>> = vec![None; oshape.iter().product()];
                let ost = strides(oshape);
                for (i, &src) in ins[0].iter().enumerate() {
                    let idx = unravel(i, ishape);
                    let kept = idx.iter().enumerate().filter(|(k, _)| !rs.axes.contains(k));
                    let o: usize = if rs.keepdim {
                        idx.iter()
                            .enumerate()
                            .map(|(k, &j)| if rs.axes.contains(&k) { 0 } else { j * ost[k] })
                            .sum()
                    } else {
                        kept.zip(&ost).map(|((_, &j), s)| j * s).sum()
                    };
                    acc[o] = Some(match acc[o] {
                        None => src,
                        Some(a) => b.emit(Op::Binary(BinaryOp::Add), [a, src, 0]),
                    });
                }
                let zero = (acc.iter().any(Option::is_none)).then(|| b.constant(0.0));
                acc.into_iter().map(|a| a.or(zero).expect("zero for empty sums")).collect()
            } else {
                return None;
            };
            if b.instrs.len() > INSTR_LIMIT {
                return None;
            }
            regs[out] = Some(r);
        }
        let mut outputs = ir.outputs.iter().map(|&v| regs[v].clone()).collect::<Option<Vec<_>>>()?;
        match dtype {
            DType::F32 => b.optimize::<f32>(&mut outputs),
            _ => b.optimize::<f64>(&mut outputs),
        }
        b.absorb_negations(&mut outputs);
        b.fuse_mul_add(&outputs);
        let mut read = vec![false; b.registers];
        for ins in &b.instrs {
            for &s in &ins.src[..ins.code.arity()] {
                read[s as usize] = true;
            }
        }
        for &r in outputs.iter().flatten() {
            read[r as usize] = true;
        }
        Some(SmallPlan {
            dtype,
            registers: b.registers,
            inputs,
            outputs,
            consts: b.consts,
            instrs: b.instrs,
            read,
            #[cfg(feature = "native")]
            hot: std::cell::Cell::new(0),
            #[cfg(feature = "native")]
            native: std::cell::OnceCell::new(),
        })
    }

    /// Number of scalar instructions (for tests and `Debug`).
    pub fn len(&self) -> usize {
        self.instrs.len()
    }

    /// Whether the program has no instruction (pure data movement).
    pub fn is_empty(&self) -> bool {
        self.instrs.is_empty()
    }

    /// A register file with the constants filled in.
    pub fn registers<T: BlockFloat>(&self) -> Vec<T> {
        let mut r = vec![T::zero(); self.registers];
        for &(i, x) in &self.consts {
            r[i as usize] = T::from_f64(x);
        }
        r
    }

    /// The registers of input `k`'s elements.
    pub fn input(&self, k: usize) -> &[u32] {
        &self.inputs[k]
    }

    /// Whether register `r` is read by an instruction or an output (an input element that is
    /// not need not be written).
    pub fn is_read(&self, r: u32) -> bool {
        self.read[r as usize]
    }

    /// The registers output `k` is read from.
    pub fn output(&self, k: usize) -> &[u32] {
        &self.outputs[k]
    }

    /// Compile the plan to native code now, whatever the policy (see the
    /// [module docs](self)); whether native code runs it from now on (`false` without the
    /// `native` feature, on a host Cranelift does not support, or if compiling failed).
    pub fn compile_native(&self) -> bool {
        #[cfg(feature = "native")]
        {
            self.native
                .get_or_init(|| {
                    let r = match self.dtype {
                        DType::F32 => native::compile::<f32>(self),
                        _ => native::compile::<f64>(self),
                    };
                    r.ok().map(std::rc::Rc::new)
                })
                .is_some()
        }
        #[cfg(not(feature = "native"))]
        false
    }

    /// Whether native code runs the plan.
    pub fn is_native(&self) -> bool {
        #[cfg(feature = "native")]
        return matches!(self.native.get(), Some(Some(_)));
        #[cfg(not(feature = "native"))]
        false
    }

    /// Run the instructions on a register file whose inputs are filled: natively once the plan
    /// is compiled, else in the interpreter (counting towards compilation).
    ///
    /// # Panics
    /// If `r` is shorter than the plan's register count, or `T` is not the plan's float type.
    #[inline]
    pub fn exec<T: BlockFloat>(&self, r: &mut [T]) {
        assert!(r.len() >= self.registers, "adjoint: small plan: register file too short");
        assert_eq!(
            std::mem::size_of::<T>(),
            if self.dtype == DType::F32 { 4 } else { 8 },
            "adjoint: small plan: a {:?} program run on another float type",
            self.dtype
        );
        #[cfg(feature = "native")]
        {
            if let Some(Some(n)) = self.native.get() {
                // SAFETY: `r` holds the plan's registers (checked above) of its float type.
                unsafe { n.call(r.as_mut_ptr()) };
                return;
            }
            if let Some(t) = crate::jit::native::threshold() {
                let h = self.hot.get() + self.instrs.len() as u64;
                self.hot.set(h);
                if h > t && self.compile_native() {
                    self.exec(r);
                    return;
                }
            }
        }
        self.interpret(r)
    }

    /// The interpreter.
    fn interpret<T: BlockFloat>(&self, r: &mut [T]) {
        use adjoint_tensor::ops::unary::UnaryOp;
        for ins in &self.instrs {
            // SAFETY: every register index of an instruction is below `self.registers`
            // (`Builder::fresh` hands them out), and `r` has at least that many (checked above).
            let get = |k: usize| unsafe { *r.get_unchecked(ins.src[k] as usize) };
            let v = match ins.kind {
                Kind::Add => get(0) + get(1),
                Kind::Sub => get(0) - get(1),
                Kind::Mul => get(0) * get(1),
                Kind::Div => get(0) / get(1),
                Kind::Neg => -get(0),
                Kind::MulAdd => get(0) * get(1) + get(2),
                Kind::MulSub => get(0) * get(1) - get(2),
                Kind::SubMul => get(2) - get(0) * get(1),
                Kind::Sin => T::unary_one(UnaryOp::Sin, get(0)),
                Kind::Cos => T::unary_one(UnaryOp::Cos, get(0)),
                Kind::Other => step(ins.code, get),
            };
            // SAFETY: as above.
            unsafe { *r.get_unchecked_mut(ins.dst as usize) = v };
        }
    }

    /// Run once on arrays (one per input, of the declared shapes): for tests and one-off calls.
    pub fn run(&self, args: &[&Array], out_shapes: &[Vec<usize>]) -> Vec<Array> {
        match self.dtype {
            DType::F32 => self.run_typed::<f32>(args, out_shapes),
            _ => self.run_typed::<f64>(args, out_shapes),
        }
    }

    fn run_typed<T: BlockFloat>(&self, args: &[&Array], out_shapes: &[Vec<usize>]) -> Vec<Array> {
        let mut r = self.registers::<T>();
        for (k, a) in args.iter().enumerate() {
            for (&i, x) in self.inputs[k].iter().zip(a.to_vec::<T>()) {
                r[i as usize] = x;
            }
        }
        self.exec(&mut r);
        self.outputs
            .iter()
            .zip(out_shapes)
            .map(|(o, s)| Array::from_vec(o.iter().map(|&i| r[i as usize]).collect::<Vec<T>>(), s))
            .collect()
    }
}
