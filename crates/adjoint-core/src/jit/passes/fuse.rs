//! Fusion of elementwise equations into [`Fused`] kernels.
//!
//! Equations are grouped greedily in program order: an elementwise equation (see
//! [`classify`]) joins the open group of its output's shape and float dtype, or opens one. A
//! group is closed — emitted as one `Fused` equation — just before the first equation outside
//! it reads one of its values, and at the end. Since every member's inputs are defined before
//! the member, and every outside reader comes after the close, the result stays in SSA order.
//! A group's outputs are its values read outside it or returned by the program; everything
//! else lives only in the kernel's registers. A group of one equation is left as it is, unless
//! its result could be written in place of a dying operand ([`alone_in_place`]).

use std::collections::HashMap;
use std::rc::Rc;

use adjoint_tensor::ops::binary::BinaryOp;
use adjoint_tensor::ops::unary::UnaryOp;
use adjoint_tensor::DType;
use smallvec::SmallVec;

use crate::jit::fused::{Fused, Instr, Kernel, Load, Op, Slot};
use crate::jit::ir::{Eqn, Ir, Var};
use crate::primitive::Primitive;
use crate::prims;

/// The elementwise operation an equation performs, if the fused kernel can run it: float
/// unary and binary functions, comparisons, `select`, `broadcast_to` and `stop_gradient`.
pub fn classify(p: &dyn Primitive) -> Option<Op> {
    let a = p.as_any();
    macro_rules! table {
        ($($ty:ty => $op:expr_2021),* $(,)?) => {
            $(if a.is::<$ty>() { return Some($op); })*
        };
    }
    table! {
        prims::add::Add => Op::Binary(BinaryOp::Add),
        prims::sub::Sub => Op::Binary(BinaryOp::Sub),
        prims::mul::Mul => Op::Binary(BinaryOp::Mul),
        prims::div::Div => Op::Binary(BinaryOp::Div),
        prims::pow::Pow => Op::Binary(BinaryOp::Pow),
        prims::atan2::Atan2 => Op::Binary(BinaryOp::Atan2),
        prims::rem::Rem => Op::Binary(BinaryOp::Rem),
        prims::neg::Neg => Op::Unary(UnaryOp::Neg),
        prims::abs::Abs => Op::Unary(UnaryOp::Abs),
        prims::sign::Sign => Op::Unary(UnaryOp::Sign),
        prims::exp::Exp => Op::Unary(UnaryOp::Exp),
        prims::log::Log => Op::Unary(UnaryOp::Log),
        prims::log1p::Log1p => Op::Unary(UnaryOp::Log1p),
        prims::expm1::Expm1 => Op::Unary(UnaryOp::Expm1),
        prims::sqrt::Sqrt => Op::Unary(UnaryOp::Sqrt),
        prims::sin::Sin => Op::Unary(UnaryOp::Sin),
        prims::cos::Cos => Op::Unary(UnaryOp::Cos),
        prims::tan::Tan => Op::Unary(UnaryOp::Tan),
        prims::tanh::Tanh => Op::Unary(UnaryOp::Tanh),
        prims::sigmoid::Sigmoid => Op::Unary(UnaryOp::Sigmoid),
        prims::erf::Erf => Op::Unary(UnaryOp::Erf),
        prims::relu::Relu => Op::Unary(UnaryOp::Relu),
        prims::relu::ReluGrad => Op::Binary(BinaryOp::ReluGrad),
        prims::select::Select => Op::Select,
        prims::broadcast::BroadcastTo => Op::Copy,
        prims::stop_gradient::StopGradient => Op::Copy,
    }
    if let Some(m) = a.downcast_ref::<prims::max_min::MaxMin>() {
        return Some(Op::Binary(if m.min { BinaryOp::Min } else { BinaryOp::Max }));
    }
    if let Some(r) = a.downcast_ref::<prims::rounding::Rounding>() {
        return Some(Op::Unary(r.0));
    }
    if let Some(c) = a.downcast_ref::<prims::compare::Compare>() {
        return Some(Op::Compare(c.0));
    }
    None
}

/// How an operand of shape `s` is read by a program of shape `out`, if it can be: `s` must
/// broadcast to `out` (numpy rules).
fn load_of(s: &[usize], out: &[usize]) -> Option<Load> {
    if s == out {
        return Some(Load::Full);
    }
    if s.iter().product::<usize>() == 1 {
        return Some(Load::Scalar);
    }
    let fits = s.len() <= out.len() && s.iter().rev().zip(out.iter().rev()).all(|(&a, &b)| a == b || a == 1);
    fits.then_some(Load::Broadcast)
}

/// The group key of a fusible equation (its computation's shape and float dtype), or `None`.
fn key_of(ir: &Ir, e: &Eqn) -> Option<(Op, Vec<usize>, DType)> {
    if e.outs.len() != 1 {
        return None;
    }
    let op = classify(&*e.prim)?;
    let out = &ir.avals[e.outs[0]];
    if out.shape.iter().product::<usize>() == 0 {
        return None;
    }
    // The computation dtype: the output's, or (a comparison) its operands'.
    let dt = match op {
        Op::Compare(_) => ir.avals[e.ins[0]].dtype,
        _ => out.dtype,
    };
    if !matches!(dt, DType::F32 | DType::F64) {
        return None;
    }
    for (i, &v) in e.ins.iter().enumerate() {
        let a = &ir.avals[v];
        let want = if op == Op::Select && i == 0 { DType::Bool } else { dt };
        if a.dtype != want || load_of(&a.shape, &out.shape).is_none() {
            return None;
        }
    }
    Some((op, out.shape.to_vec(), dt))
}

struct Group {
    members: Vec<usize>,
}

/// Whether a group of one equation becomes a kernel anyway: when its result is large enough
/// for the buffer cache and an operand of the same shape and dtype could hold it
/// ([`Kernel::plan_reuse`](crate::jit::fused::Kernel::plan_reuse)) — a bias added to a product,
/// ReLU's gradient applied to a cotangent — so that, when that operand dies there, the result
/// is written in place instead of into one more buffer of its size (the memory plan,
/// [`crate::jit::memplan`]). Copies (`broadcast_to` alone is a view) and masks stay as they are.
fn alone_in_place(ir: &Ir, e: &Eqn, key: &Option<(Op, Vec<usize>, DType)>) -> bool {
    let Some((op, shape, dt)) = key else { return false };
    let out = &ir.avals[e.outs[0]];
    *op != Op::Copy
        && out.dtype == *dt
        && shape.iter().product::<usize>() * dt.size_in_bytes() >= adjoint_tensor::cache::MIN_CACHED_BYTES
        && e.ins.iter().any(|&v| ir.avals[v] == *out)
}

/// Replace every group of two or more fusible equations by one [`Fused`] equation (see the
/// [module docs](self)). The result computes the same values, bit for bit: the kernel calls
/// the same per-element functions as the op-by-op kernels.
///
/// ```
/// use adjoint_core::jit::{make_ir, passes::fuse};
/// use adjoint_core::Tensor;
/// let ir = make_ir(|x: &Tensor| (x.exp() * 2.0 + 1.0).sum())(&Tensor::zeros(&[8]));
/// let fused = fuse(ir.clone());
/// assert_eq!((ir.eqns.len(), fused.eqns.len()), (4, 2)); // fused, reduce_sum
/// assert_eq!(fused.eqns[0].prim.name(), "fused");
/// ```
pub fn fuse(mut ir: Ir) -> Ir {
    let eqns = std::mem::take(&mut ir.eqns);
    let keys: Vec<Option<(Op, Vec<usize>, DType)>> = eqns.iter().map(|e| key_of(&ir, e)).collect();
    let mut producer: Vec<Option<usize>> = vec![None; ir.avals.len()];
    let mut readers: Vec<SmallVec<[usize; 2]>> = vec![SmallVec::new(); ir.avals.len()];
    for (i, e) in eqns.iter().enumerate() {
        for &v in &e.outs {
            producer[v] = Some(i);
        }
        for &v in &e.ins {
            readers[v].push(i);
        }
    }
    let mut is_output = vec![false; ir.avals.len()];
    for &v in &ir.outputs {
        is_output[v] = true;
    }
    // Group index of each equation (open or closed), and the open group of each key.
    let mut group_of: Vec<Option<usize>> = vec![None; eqns.len()];
    let mut groups: Vec<Group> = Vec::new();
    let mut open: HashMap<(Vec<usize>, DType), usize> = HashMap::new();
    let mut open_key: Vec<Option<(Vec<usize>, DType)>> = Vec::new();
    let mut out: Vec<Eqn> = Vec::with_capacity(eqns.len());

    let close = |g: usize,
                 groups: &mut Vec<Group>,
                 open: &mut HashMap<(Vec<usize>, DType), usize>,
                 open_key: &mut Vec<Option<(Vec<usize>, DType)>>,
                 out: &mut Vec<Eqn>,
                 group_of: &[Option<usize>]| {
        if let Some(k) = open_key[g].take() {
            open.remove(&k);
        }
        let members = std::mem::take(&mut groups[g].members);
        if members.len() == 1 && !alone_in_place(&ir, &eqns[members[0]], &keys[members[0]]) {
            out.push(eqns[members[0]].clone());
        } else {
            out.push(build(&ir, &eqns, &keys, &members, g, group_of, &readers, &is_output));
        }
    };

    for (i, e) in eqns.iter().enumerate() {
        let key = keys[i].as_ref().map(|(_, s, d)| (s.clone(), *d));
        let joins = key.as_ref().and_then(|k| open.get(k).copied());
        // Close every open group (other than the one this equation joins) it reads from.
        for &v in &e.ins {
            if let Some(g) = producer[v].and_then(|p| group_of[p])
                && Some(g) != joins
                && open_key[g].is_some()
            {
                close(g, &mut groups, &mut open, &mut open_key, &mut out, &group_of);
            }
        }
        match key {
            Some(k) => {
                // The group may have been closed above (this equation read from it).
                let g = match open.get(&k) {
                    Some(&g) => g,
                    None => {
                        groups.push(Group { members: Vec::new() });
                        open_key.push(Some(k.clone()));
                        open.insert(k, groups.len() - 1);
                        groups.len() - 1
                    }
                };
                groups[g].members.push(i);
                group_of[i] = Some(g);
            }
            None => out.push(e.clone()),
        }
    }
    let mut rest: Vec<usize> = open.values().copied().collect();
    rest.sort_unstable();
    for g in rest {
        close(g, &mut groups, &mut open, &mut open_key, &mut out, &group_of);
    }
    ir.eqns = out;
    ir
}

/// Compile one group into a `Fused` equation.
#[allow(clippy::too_many_arguments)]
fn build(
    ir: &Ir,
    eqns: &[Eqn],
    keys: &[Option<(Op, Vec<usize>, DType)>],
    members: &[usize],
    g: usize,
    group_of: &[Option<usize>],
    readers: &[SmallVec<[usize; 2]>],
    is_output: &[bool],
) -> Eqn {
    let (_, shape, dtype) = keys[members[0]].clone().expect("members are fusible");
    let in_group = |i: usize| group_of[i] == Some(g);
    let mut slots: Vec<Slot> = Vec::new();
    let mut slot_of: HashMap<Var, u32> = HashMap::new();
    let mut inputs: Vec<Var> = Vec::new();
    let mut loads: Vec<(Load, Option<usize>)> = Vec::new();
    let mut outputs: Vec<Var> = Vec::new();
    let mut out_dtypes: Vec<DType> = Vec::new();
    // Registers: a free list; those of loaded inputs are never shared (see below).
    let mut registers = 0usize;
    let mut free: Vec<usize> = Vec::new();
    let mut alloc = |free: &mut Vec<usize>| {
        free.pop().unwrap_or_else(|| {
            registers += 1;
            registers - 1
        })
    };
    // Last member reading each value inside the group.
    let mut last_read: HashMap<Var, usize> = HashMap::new();
    for (j, &i) in members.iter().enumerate() {
        for &v in &eqns[i].ins {
            last_read.insert(v, j);
        }
    }
    let mut produced: HashMap<Var, ()> = HashMap::new();
    let mut instrs: Vec<Instr> = Vec::new();
    let mut ops: Vec<&'static str> = Vec::new();
    for (j, &i) in members.iter().enumerate() {
        let e = &eqns[i];
        let op = keys[i].as_ref().expect("member").0;
        let mut src = [0u32; 3];
        for (k, &v) in e.ins.iter().enumerate() {
            let s = match slot_of.get(&v) {
                Some(&s) => s,
                None => {
                    // An input of the group.
                    let load = load_of(&ir.avals[v].shape, &shape).expect("checked by key_of");
                    let kidx = inputs.len();
                    inputs.push(v);
                    let direct = load == Load::Full && ir.avals[v].dtype == dtype;
                    let slot = if direct {
                        loads.push((load, None));
                        Slot::Input(kidx)
                    } else {
                        // A fresh register: loads happen before the block's first
                        // instruction (scalars once per call), so it may not share one.
                        let r = alloc(&mut Vec::new());
                        loads.push((load, Some(r)));
                        Slot::Reg(r)
                    };
                    slots.push(slot);
                    let s = (slots.len() - 1) as u32;
                    slot_of.insert(v, s);
                    s
                }
            };
            src[k] = s;
        }
        let v = e.outs[0];
        let escapes = is_output[v] || readers[v].iter().any(|&r| !in_group(r));
        let slot = if escapes {
            outputs.push(v);
            out_dtypes.push(ir.avals[v].dtype);
            // A mask output goes through a register of the program's dtype: it is written
            // into a float buffer, converted at the end.
            Slot::Output(outputs.len() - 1)
        } else {
            Slot::Reg(alloc(&mut free))
        };
        slots.push(slot);
        let dst = (slots.len() - 1) as u32;
        slot_of.insert(v, dst);
        produced.insert(v, ());
        instrs.push(Instr { op, dst, src });
        ops.push(e.prim.name());
        // Free the registers of values (produced in the group) read for the last time here.
        for &u in &e.ins {
            if last_read.get(&u) == Some(&j)
                && produced.contains_key(&u)
                && let Slot::Reg(r) = slots[slot_of[&u] as usize]
                && !free.contains(&r)
            {
                free.push(r);
            }
        }
        // A value never read again in the group (and not an output) frees its register too.
        if !escapes
            && !last_read.contains_key(&v)
            && let Slot::Reg(r) = slots[dst as usize]
        {
            free.push(r);
        }
    }
    let mut kernel = Kernel {
        reuse: Vec::new(),
        dtype,
        shape: shape.clone(),
        inputs: inputs.iter().map(|&v| ir.avals[v].clone()).collect(),
        loads,
        outputs: out_dtypes,
        slots,
        registers,
        instrs,
        native: Default::default(),
    };
    kernel.plan_reuse();
    let prim = Fused { kernel: Rc::new(kernel), ops: Rc::new(ops) };
    Eqn { prim: Rc::new(prim), ins: inputs.into_iter().collect(), outs: outputs.into_iter().collect() }
}
