//! Native code for a scalarised program (see [`crate::jit::native`] for the mechanism, its
//! exactness and when it runs).
//!
//! The interpreter ([`SmallPlan::exec`](super::SmallPlan::exec)) pays per instruction a
//! dispatch, two or three loads from the register file and a store. The compiled function
//! `f(registers)` is straight-line code that loads each input and constant once at its first
//! read, keeps values in machine registers and stores only the outputs (what callers read
//! afterwards; the inputs and constants are in memory already). The arithmetic is `fadd`,
//! `fsub`, `fmul`, `fdiv`, `fneg` (the multiply-add forms a `fmul` and a separate `fadd` or
//! `fsub`); `sin`, `cos` and every other operation call the interpreter's own per-element
//! function.

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, Signature, Type, Value};
use cranelift_frontend::FunctionBuilder;

use super::{step, Code, Kind, SmallPlan};
use crate::jit::native::{self as jn, entry_block};
use adjoint_tensor::ops::block::BlockFloat;
use adjoint_tensor::ops::unary::UnaryOp;

/// A compiled program: `call(registers)` runs it on a register file whose inputs and
/// constants are filled, and writes the output registers.
#[derive(Debug)]
pub(super) struct Native {
    code: jn::Code,
    /// The operations of the `Other` instructions, which the code passes by address to
    /// [`other`]; boxed, so they stay put while the code lives.
    _codes: Box<[Code]>,
}

impl Native {
    /// Run the compiled program.
    ///
    /// # Safety
    /// `r` must hold at least the plan's register count of `T`, the plan's float type.
    pub(super) unsafe fn call<T>(&self, r: *mut T) {
        // SAFETY: compiled with exactly this signature (one pointer, no result) in the host's
        // C calling convention; the code only touches registers below the count.
        unsafe {
            let f = std::mem::transmute::<*const u8, unsafe extern "C" fn(*mut u8)>(self.code.entry());
            f(r.cast())
        }
    }
}

extern "C" fn sin<T: BlockFloat>(a: T) -> T {
    T::unary_one(UnaryOp::Sin, a)
}

extern "C" fn cos<T: BlockFloat>(a: T) -> T {
    T::unary_one(UnaryOp::Cos, a)
}

/// Any other instruction, through the interpreter's [`step`].
extern "C" fn other<T: BlockFloat>(code: *const Code, a: T, b: T, c: T) -> T {
    // SAFETY: `code` points into the `Native`'s boxed codes, alive while its code runs.
    let code = unsafe { *code };
    let v = [a, b, c];
    step(code, |k| v[k])
}

/// Compile `plan` for `T` (its float type).
pub(super) fn compile<T: BlockFloat>(plan: &SmallPlan) -> Result<Native, String> {
    let (ty, size): (Type, i64) =
        if std::mem::size_of::<T>() == 4 { (types::F32, 4) } else { (types::F64, 8) };
    let codes: Box<[Code]> = plan.instrs.iter().filter(|i| i.kind == Kind::Other).map(|i| i.code).collect();
    let ptr = types::I64;
    let code = jn::compile(&[ptr], |b: &mut FunctionBuilder<'_>, t| {
        let (ptr, cc) = (t.ptr, t.cc);
        let base = entry_block(b)[0];
        let mut one = Signature::new(cc);
        one.params.push(AbiParam::new(ty));
        one.returns.push(AbiParam::new(ty));
        let one = b.import_signature(one);
        let mut four = Signature::new(cc);
        four.params.extend([AbiParam::new(ptr), AbiParam::new(ty), AbiParam::new(ty), AbiParam::new(ty)]);
        four.returns.push(AbiParam::new(ty));
        let four = b.import_signature(four);
        let flags = MemFlagsData::trusted();
        let offset = |r: u32| i32::try_from(r as i64 * size).expect("register offsets fit in i32");

        // Each register's SSA value: loaded at its first read (inputs, constants) or the
        // instruction that computes it.
        let mut val: Vec<Option<Value>> = vec![None; plan.registers];
        let mut computed = vec![false; plan.registers];
        let mut other_k = 0;
        for ins in &plan.instrs {
            let mut a = [None; 3];
            for (k, slot) in a.iter_mut().enumerate().take(ins.code.arity()) {
                let r = ins.src[k];
                *slot =
                    Some(*val[r as usize].get_or_insert_with(|| b.ins().load(ty, flags, base, offset(r))));
            }
            let x = a[0].expect("every instruction has an operand");
            let (y, z) = (a[1].unwrap_or(x), a[2].unwrap_or(x));
            let call = |b: &mut FunctionBuilder, sig, f: usize, args: &[Value]| {
                let f = b.ins().iconst(ptr, f as i64);
                let c = b.ins().call_indirect(sig, f, args);
                b.inst_results(c)[0]
            };
            let v = match ins.kind {
                Kind::Add => b.ins().fadd(x, y),
                Kind::Sub => b.ins().fsub(x, y),
                Kind::Mul => b.ins().fmul(x, y),
                Kind::Div => b.ins().fdiv(x, y),
                Kind::Neg => b.ins().fneg(x),
                Kind::MulAdd => {
                    let p = b.ins().fmul(x, y);
                    b.ins().fadd(p, z)
                }
                Kind::MulSub => {
                    let p = b.ins().fmul(x, y);
                    b.ins().fsub(p, z)
                }
                Kind::SubMul => {
                    let p = b.ins().fmul(x, y);
                    b.ins().fsub(z, p)
                }
                Kind::Sin => call(b, one, sin::<T> as *const () as usize, &[x]),
                Kind::Cos => call(b, one, cos::<T> as *const () as usize, &[x]),
                Kind::Other => {
                    let code = b.ins().iconst(ptr, &codes[other_k] as *const Code as i64);
                    other_k += 1;
                    call(b, four, other::<T> as *const () as usize, &[code, x, y, z])
                }
            };
            val[ins.dst as usize] = Some(v);
            computed[ins.dst as usize] = true;
        }
        // Only the outputs leave the function; inputs and constants are in memory already.
        let mut stored = vec![false; plan.registers];
        for &r in plan.outputs.iter().flatten() {
            if computed[r as usize] && !std::mem::replace(&mut stored[r as usize], true) {
                let v = val[r as usize].expect("a computed register");
                b.ins().store(flags, v, base, offset(r));
            }
        }
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Native { code, _codes: codes })
}
