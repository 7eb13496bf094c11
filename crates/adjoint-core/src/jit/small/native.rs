//! Native code for a scalarised program, through Cranelift.
//!
//! ## Why
//! The interpreter ([`SmallPlan::exec`](super::SmallPlan::exec)) pays per instruction a
//! dispatch, two or three loads from the register file and a store. Straight-line machine code
//! keeps values in machine registers, loads each input or constant once, and stores only the
//! registers a caller reads afterwards (the outputs). Cranelift (the code generator of
//! wasmtime) compiles a few hundred scalar instructions in well under a millisecond; XLA
//! compiles the same loop body in hundreds of milliseconds.
//!
//! ## Exactness
//! Every instruction becomes the IEEE operation the interpreter performs (`fadd`, `fsub`,
//! `fmul`, `fdiv`, `fneg`; the multiply-add forms are a `fmul` and a separate `fadd`/`fsub`,
//! never a fused multiply-add); everything else (`sin`, `cos`, the other unary and binary
//! functions, comparisons, `select`) calls the interpreter's own per-element function. So
//! native code and the interpreter agree bit for bit, and both agree with eager execution.
//!
//! ## When
//! [`SmallPlan`](super::SmallPlan) compiles a program once it is hot (see
//! `NATIVE_THRESHOLD` in the parent module): a one-off eager `scan` stays in the interpreter,
//! a jitted training loop's body is compiled during its first calls.

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, Signature, Type, Value};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Module};

use super::{step, Code, Kind, SmallPlan};
use adjoint_tensor::ops::block::BlockFloat;
use adjoint_tensor::ops::unary::UnaryOp;

/// A compiled program: `entry(registers)` runs it on a register file whose inputs and constants
/// are filled, and writes the output registers.
pub(super) struct Native {
    module: Option<JITModule>,
    entry: unsafe extern "C" fn(*mut u8),
    /// The operations of the `Other` instructions, which the code passes by address to
    /// [`other`]; boxed, so they stay put while the code lives.
    _codes: Box<[Code]>,
}

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Native(..)")
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the only pointer into the module's memory is `entry`, which dies with
            // `self` (callers borrow `self` for every call).
            unsafe { m.free_memory() };
        }
    }
}

impl Native {
    /// Run the compiled program.
    ///
    /// # Safety
    /// `r` must hold at least the plan's register count of `T`, the plan's float type.
    pub(super) unsafe fn call<T>(&self, r: *mut T) {
        // SAFETY: the caller's contract; the code only touches registers below the count.
        unsafe { (self.entry)(r.cast()) }
    }
}

/// The host's instruction set, set up once (optimised for speed; `None` on a host Cranelift
/// does not support, where programs stay interpreted).
fn isa() -> Option<OwnedTargetIsa> {
    static ISA: std::sync::OnceLock<Option<OwnedTargetIsa>> = std::sync::OnceLock::new();
    ISA.get_or_init(|| {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").ok()?;
        // Calls go through absolute addresses (the JIT's memory may be far from the host's).
        flags.set("use_colocated_libcalls", "false").ok()?;
        flags.set("is_pic", "false").ok()?;
        cranelift_native::builder().ok()?.finish(settings::Flags::new(flags)).ok()
    })
    .clone()
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
    let isa = isa().ok_or("Cranelift does not support this host")?;
    let (ty, size): (Type, i64) =
        if std::mem::size_of::<T>() == 4 { (types::F32, 4) } else { (types::F64, 8) };
    let mut module = JITModule::new(JITBuilder::with_isa(isa.clone(), default_libcall_names()));
    let ptr = module.target_config().pointer_type();
    let cc = isa.default_call_conv();
    let codes: Box<[Code]> = plan.instrs.iter().filter(|i| i.kind == Kind::Other).map(|i| i.code).collect();

    let mut ctx = module.make_context();
    ctx.func.signature.params.push(AbiParam::new(ptr));
    let id = module.declare_anonymous_function(&ctx.func.signature).map_err(|e| e.to_string())?;
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        b.seal_block(block);
        let base = b.block_params(block)[0];
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
            let [x, y, z] = a;
            let (x, y, z) = (x.expect("an operand"), y.unwrap_or(x.unwrap()), z.unwrap_or(x.unwrap()));
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
                Kind::Sin => call(&mut b, one, sin::<T> as *const () as usize, &[x]),
                Kind::Cos => call(&mut b, one, cos::<T> as *const () as usize, &[x]),
                Kind::Other => {
                    let code = b.ins().iconst(ptr, &codes[other_k] as *const Code as i64);
                    other_k += 1;
                    call(&mut b, four, other::<T> as *const () as usize, &[code, x, y, z])
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
        b.finalize(module.target_config());
    }
    module.define_function(id, &mut ctx).map_err(|e| format!("{e:?}"))?;
    module.clear_context(&mut ctx);
    module.finalize_definitions().map_err(|e| e.to_string())?;
    let code = module.get_finalized_function(id);
    // SAFETY: the function was declared with exactly this signature (one pointer, no result)
    // in the host's default calling convention, which is `extern "C"`.
    let entry = unsafe { std::mem::transmute::<*const u8, unsafe extern "C" fn(*mut u8)>(code) };
    Ok(Native { module: Some(module), entry, _codes: codes })
}
