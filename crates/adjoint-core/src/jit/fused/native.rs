//! Native code for a fused kernel (see [`crate::jit::native`] for the mechanism, its exactness
//! and when it runs).
//!
//! The interpreter ([`Kernel::run_range`](super::Kernel)) makes one pass over an L1 block per
//! instruction, storing every intermediate to its register block and loading it back. The
//! compiled function `f(slots, len)` makes a single pass over the block's `len` elements, a
//! vector of 128 bits at a time (then one element at a time for the rest), loading each input
//! once, keeping every intermediate in vector registers and storing only the outputs. The slot
//! pointers are those the interpreter would use for the same block (inputs in place, gathered
//! or scalar inputs in their register blocks, outputs in place), so everything around the
//! instructions — gathering, prefetching, parallel chunks, outputs in donated buffers — is
//! shared.
//!
//! Only programs of operations with an exact native form are compiled (arithmetic, `sqrt`,
//! reciprocals, `abs`, rounding, comparisons, `select`, `relu` and its gradient, NumPy's
//! NaN-propagating `maximum`/`minimum`, each written as the same comparisons as its Rust
//! function; see [`supported`]); a kernel with any other operation (`exp`, `tanh`, …)
//! stays interpreted.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

use super::{Kernel, Op, Slot};
use crate::jit::native::{self as jn, entry_block};
use adjoint_tensor::ops::binary::BinaryOp;
use adjoint_tensor::ops::compare::CompareOp;
use adjoint_tensor::ops::unary::UnaryOp;

/// Whether `op` has an exact native form: the same bits as its per-element function.
pub(super) fn supported(op: Op) -> bool {
    use UnaryOp as U;
    match op {
        Op::Unary(u) => matches!(
            u,
            U::Neg
                | U::Abs
                | U::Sqrt
                | U::Rsqrt
                | U::Recip
                | U::Square
                | U::Floor
                | U::Ceil
                | U::Round
                | U::Relu
        ),
        Op::Binary(b) => {
            use BinaryOp as B;
            matches!(b, B::Add | B::Sub | B::Mul | B::Div | B::Max | B::Min | B::ReluGrad)
        }
        Op::Copy | Op::Compare(_) | Op::Select => true,
    }
}

/// A compiled kernel body: `call(slots, len)` runs the program on elements `0..len` of every
/// slot's pointer.
#[derive(Debug)]
pub(super) struct Native {
    code: jn::Code,
}

impl Native {
    /// Run the compiled program on one block.
    ///
    /// # Safety
    /// `slots` holds one pointer per slot of the kernel, each valid for `len` elements of the
    /// kernel's float type wherever the program reads or writes that slot, and no output
    /// overlaps an input other than one it was allowed to reuse.
    pub(super) unsafe fn call<T>(&self, slots: *const *mut T, len: usize) {
        // SAFETY: compiled with exactly this signature (a pointer and a length, no result) in
        // the host's C calling convention; the caller's contract covers the memory.
        unsafe {
            let f =
                std::mem::transmute::<*const u8, unsafe extern "C" fn(*const *mut T, i64)>(self.code.entry());
            f(slots, len as i64)
        }
    }
}

/// Compile `k` for its float type `T` (`size` bytes); `Err` when an operation is not
/// [`supported`] or Cranelift fails.
pub(super) fn compile(k: &Kernel, size: usize) -> Result<Native, String> {
    if let Some(i) = k.instrs.iter().find(|i| !supported(i.op)) {
        return Err(format!("{:?} has no exact native form", i.op));
    }
    let (scalar, vector, lanes) =
        if size == 4 { (types::F32, types::F32X4, 4) } else { (types::F64, types::F64X2, 2) };
    let code = jn::compile(&[types::I64, types::I64], |b: &mut FunctionBuilder<'_>, t| {
        let p = entry_block(b);
        let (slots, len) = (p[0], p[1]);
        // Pointers of the slots the program touches in memory: read before any instruction
        // writes them (inputs, gathered or scalar registers), or outputs.
        let mut in_memory = vec![false; k.slots.len()];
        let mut written = vec![false; k.slots.len()];
        for ins in &k.instrs {
            for &s in &ins.src[..ins.op.arity()] {
                if !written[s as usize] {
                    in_memory[s as usize] = true;
                }
            }
            written[ins.dst as usize] = true;
            if matches!(k.slots[ins.dst as usize], Slot::Output(_)) {
                in_memory[ins.dst as usize] = true;
            }
        }
        let ptrs: Vec<Option<Value>> = (0..k.slots.len())
            .map(|s| {
                in_memory[s].then(|| b.ins().load(t.ptr, MemFlagsData::trusted(), slots, (8 * s) as i32))
            })
            .collect();
        let vec_end = b.ins().band_imm_s(len, !(lanes as i64 - 1));
        let (vh, vb, sh, sb, exit) =
            (b.create_block(), b.create_block(), b.create_block(), b.create_block(), b.create_block());
        for blk in [vh, vb, sh, sb] {
            b.append_block_param(blk, types::I64);
        }
        let zero = b.ins().iconst(types::I64, 0);
        b.ins().jump(vh, &[zero.into()]);
        // Whole vectors.
        b.switch_to_block(vh);
        let i = b.block_params(vh)[0];
        let more = b.ins().icmp(IntCC::UnsignedLessThan, i, vec_end);
        b.ins().brif(more, vb, &[i.into()], sh, &[i.into()]);
        b.switch_to_block(vb);
        let i = b.block_params(vb)[0];
        body(b, k, &ptrs, i, vector, size, lanes);
        let next = b.ins().iadd_imm_s(i, lanes as i64);
        b.ins().jump(vh, &[next.into()]);
        // The remaining elements, one at a time.
        b.switch_to_block(sh);
        let i = b.block_params(sh)[0];
        let more = b.ins().icmp(IntCC::UnsignedLessThan, i, len);
        b.ins().brif(more, sb, &[i.into()], exit, &[]);
        b.switch_to_block(sb);
        let i = b.block_params(sb)[0];
        body(b, k, &ptrs, i, scalar, size, 1);
        let next = b.ins().iadd_imm_s(i, 1);
        b.ins().jump(sh, &[next.into()]);
        b.switch_to_block(exit);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        Ok(())
    })?;
    Ok(Native { code })
}

/// The program on the `lanes` elements at index `i`, in type `ty` (a float or a vector of
/// them): inputs loaded at their first read, outputs stored when computed.
fn body(
    b: &mut FunctionBuilder<'_>,
    k: &Kernel,
    ptrs: &[Option<Value>],
    i: Value,
    ty: Type,
    size: usize,
    lanes: usize,
) {
    let flags = MemFlagsData::new().with_notrap();
    let off = b.ins().imul_imm_s(i, size as i64);
    let addr = |b: &mut FunctionBuilder<'_>, s: usize| {
        let p = ptrs[s].expect("a slot in memory has a pointer");
        b.ins().iadd(p, off)
    };
    let constant = |b: &mut FunctionBuilder<'_>, c: f64| {
        let x = if size == 4 { b.ins().f32const(c as f32) } else { b.ins().f64const(c) };
        if lanes > 1 {
            b.ins().splat(ty, x)
        } else {
            x
        }
    };
    let one = |b: &mut FunctionBuilder<'_>| constant(b, 1.0);
    // `if x cc y { t } else { f }`, lane by lane: a `select` on scalars, a `bitselect` on the
    // comparison's lane mask for vectors.
    let pick = |b: &mut FunctionBuilder<'_>, cc: FloatCC, x: Value, y: Value, t: Value, f: Value| {
        let c = b.ins().fcmp(cc, x, y);
        if lanes > 1 {
            let m = b.ins().bitcast(ty, MemFlagsData::new(), c);
            b.ins().bitselect(m, t, f)
        } else {
            b.ins().select(c, t, f)
        }
    };
    let mut val: Vec<Option<Value>> = vec![None; k.slots.len()];
    for ins in &k.instrs {
        let mut a = [None; 3];
        for (j, slot) in a.iter_mut().enumerate().take(ins.op.arity()) {
            let s = ins.src[j] as usize;
            *slot = Some(match val[s] {
                Some(v) => v,
                None => {
                    let at = addr(b, s);
                    let v = b.ins().load(ty, flags, at, 0);
                    val[s] = Some(v);
                    v
                }
            });
        }
        let x = a[0].expect("every instruction has an operand");
        let y = a[1].unwrap_or(x);
        let z = a[2].unwrap_or(x);
        let v = match ins.op {
            Op::Unary(u) => match u {
                UnaryOp::Neg => b.ins().fneg(x),
                UnaryOp::Abs => b.ins().fabs(x),
                UnaryOp::Sqrt => b.ins().sqrt(x),
                UnaryOp::Rsqrt => {
                    let r = b.ins().sqrt(x);
                    let o = one(b);
                    b.ins().fdiv(o, r)
                }
                UnaryOp::Recip => {
                    let o = one(b);
                    b.ins().fdiv(o, x)
                }
                UnaryOp::Square => b.ins().fmul(x, x),
                UnaryOp::Floor => b.ins().floor(x),
                UnaryOp::Ceil => b.ins().ceil(x),
                UnaryOp::Round => b.ins().nearest(x),
                // `if x <= 0 { 0 } else { x }`: NaN passes, −0 becomes +0.
                UnaryOp::Relu => {
                    let zero = constant(b, 0.0);
                    pick(b, FloatCC::LessThanOrEqual, x, zero, zero, x)
                }
                u => unreachable!("unsupported {u:?} (checked by `supported`)"),
            },
            Op::Binary(BinaryOp::Add) => b.ins().fadd(x, y),
            Op::Binary(BinaryOp::Sub) => b.ins().fsub(x, y),
            Op::Binary(BinaryOp::Mul) => b.ins().fmul(x, y),
            Op::Binary(BinaryOp::Div) => b.ins().fdiv(x, y),
            // `if x > y { x } else if y >= x { y } else { x + y }` (NaN wins), and mirrored.
            Op::Binary(BinaryOp::Max) => {
                let s = b.ins().fadd(x, y);
                let t = pick(b, FloatCC::GreaterThanOrEqual, y, x, y, s);
                pick(b, FloatCC::GreaterThan, x, y, x, t)
            }
            Op::Binary(BinaryOp::Min) => {
                let s = b.ins().fadd(x, y);
                let t = pick(b, FloatCC::LessThanOrEqual, y, x, y, s);
                pick(b, FloatCC::LessThan, x, y, x, t)
            }
            // `if x > 0 { g } else { 0 }`.
            Op::Binary(BinaryOp::ReluGrad) => {
                let zero = constant(b, 0.0);
                pick(b, FloatCC::GreaterThan, x, zero, y, zero)
            }
            Op::Compare(c) => {
                let cc = match c {
                    CompareOp::Eq => FloatCC::Equal,
                    CompareOp::Ne => FloatCC::NotEqual,
                    CompareOp::Lt => FloatCC::LessThan,
                    CompareOp::Le => FloatCC::LessThanOrEqual,
                    CompareOp::Gt => FloatCC::GreaterThan,
                    CompareOp::Ge => FloatCC::GreaterThanOrEqual,
                };
                let (o, zero) = (one(b), constant(b, 0.0));
                pick(b, cc, x, y, o, zero)
            }
            // `if mask != 0 { a } else { b }` (a NaN mask selects `a`, as `!=` does).
            Op::Select => {
                let zero = constant(b, 0.0);
                pick(b, FloatCC::NotEqual, x, zero, y, z)
            }
            Op::Copy => x,
            op => unreachable!("unsupported {op:?} (checked by `supported`)"),
        };
        let d = ins.dst as usize;
        val[d] = Some(v);
        if matches!(k.slots[d], Slot::Output(_)) {
            let at = addr(b, d);
            b.ins().store(flags, v, at, 0);
        }
    }
}
