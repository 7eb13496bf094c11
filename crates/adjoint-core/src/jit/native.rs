//! Native code through Cranelift: what the two code generators share — the host's instruction
//! set, one function per module, its lifetime, the policy of when to compile, and statistics.
//!
//! ## Why
//! Two programs spend their time in an interpreter's dispatch: a scalarised program (one
//! scalar instruction at a time, [`super::small`]) and a fused elementwise kernel (one op over
//! an L1 block at a time, [`super::fused`]). Compiled to machine code, the first keeps its
//! values in machine registers and the second makes one pass over its data with every
//! intermediate in vector registers. Cranelift (the code generator of wasmtime) compiles such
//! a function in well under a millisecond; XLA takes hundreds.
//!
//! ## Exactness
//! Code generators emit only operations that IEEE arithmetic defines exactly as the
//! interpreters compute them (`fadd`, `fsub`, `fmul`, `fdiv`, `fneg`, `sqrt`, …; never a
//! fused multiply-add) and call the interpreters' own per-element functions for the rest, so
//! native and interpreted runs agree bit for bit.
//!
//! ## When
//! A program is compiled once it has done [`NATIVE_THRESHOLD`] units of interpreted work
//! (instructions × elements): a one-off eager `scan` or a jitted function called once never
//! pays for the compiler, a training loop's step is compiled during its first calls. The
//! environment variable `ADJOINT_JIT_NATIVE` overrides the policy: `0` never compiles (to
//! compare or debug), `1` compiles at the first run. [`native_stats`] counts compilations and
//! their time.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[cfg(feature = "native")]
pub(crate) use cranelift::*;

/// Units of interpreted work (instructions run × elements) before a program is compiled:
/// a few milliseconds of interpretation, about what compiling costs.
pub const NATIVE_THRESHOLD: u64 = 1 << 21;

/// Native compilations in this process (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NativeStats {
    /// Programs compiled.
    pub compiles: u64,
    /// Seconds spent compiling them.
    pub seconds: f64,
    /// Programs Cranelift could not compile (they stay interpreted).
    pub failures: u64,
}

static COMPILES: AtomicU64 = AtomicU64::new(0);
static NANOS: AtomicU64 = AtomicU64::new(0);
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Native compilations so far, of scalarised programs and fused kernels (all zero without the
/// `native` feature).
///
/// ```
/// let s = adjoint_core::jit::native_stats();
/// assert!(s.seconds >= 0.0);
/// ```
pub fn native_stats() -> NativeStats {
    NativeStats {
        compiles: COMPILES.load(Relaxed),
        seconds: NANOS.load(Relaxed) as f64 * 1e-9,
        failures: FAILURES.load(Relaxed),
    }
}

/// The Cranelift side (feature `native`).
#[cfg(feature = "native")]
mod cranelift {
    use super::{Relaxed, COMPILES, FAILURES, NANOS, NATIVE_THRESHOLD};
    use cranelift_codegen::ir::{AbiParam, Type, Value};
    use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
    use cranelift_codegen::settings::{self, Configurable};
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
    use cranelift_jit::{JITBuilder, JITModule};
    use cranelift_module::{default_libcall_names, Module};

    /// When to compile, from `ADJOINT_JIT_NATIVE` (read once): after this much interpreted work,
    /// `None` for never.
    pub(crate) fn threshold() -> Option<u64> {
        static T: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        *T.get_or_init(|| match std::env::var("ADJOINT_JIT_NATIVE").as_deref() {
            Err(_) | Ok("") => Some(NATIVE_THRESHOLD),
            Ok("0") => None,
            Ok("1") => Some(0),
            Ok(v) => {
                eprintln!("adjoint: ADJOINT_JIT_NATIVE={v:?} is neither 0 nor 1; using the default policy");
                Some(NATIVE_THRESHOLD)
            }
        })
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

    /// What a code generator needs besides the function builder.
    pub(crate) struct Target {
        /// The pointer type.
        pub ptr: Type,
        /// The host's C calling convention (for calls back into Rust).
        pub cc: CallConv,
    }

    /// One compiled function with no result; its machine code lives as long as this value.
    pub(crate) struct Code {
        module: Option<JITModule>,
        entry: *const u8,
    }

    // SAFETY: the machine code is immutable once finalised and reads nothing but its arguments
    // (and the constants its generator embedded, which the owner keeps alive and never mutates);
    // the module is touched again only by `Drop`.
    unsafe impl Send for Code {}
    // SAFETY: as above.
    unsafe impl Sync for Code {}

    impl std::fmt::Debug for Code {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Code({:p})", self.entry)
        }
    }

    impl Drop for Code {
        fn drop(&mut self) {
            if let Some(m) = self.module.take() {
                // SAFETY: the only pointer into the module's memory is `entry`, which dies with
                // `self` (callers borrow `self` for every call).
                unsafe { m.free_memory() };
            }
        }
    }

    impl Code {
        /// The entry point; its signature is the one [`compile`] was given.
        pub(crate) fn entry(&self) -> *const u8 {
            self.entry
        }
    }

    /// Compile one function of parameters `params` and no result: `body` fills in its code
    /// starting from an empty builder and the parameters (it creates and seals its own blocks,
    /// the first one created being the entry, and ends every block), and the time counts in
    /// [`native_stats`].
    pub(crate) fn compile(
        params: &[Type],
        body: impl FnOnce(&mut FunctionBuilder<'_>, &Target) -> Result<(), String>,
    ) -> Result<Code, String> {
        let t = std::time::Instant::now();
        let r = compile_inner(params, body);
        match &r {
            Ok(_) => {
                NANOS.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
                COMPILES.fetch_add(1, Relaxed);
            }
            Err(_) => {
                FAILURES.fetch_add(1, Relaxed);
            }
        }
        r
    }

    fn compile_inner(
        params: &[Type],
        body: impl FnOnce(&mut FunctionBuilder<'_>, &Target) -> Result<(), String>,
    ) -> Result<Code, String> {
        let isa = isa().ok_or("Cranelift does not support this host")?;
        // Owned by a `Code` from the start, so that its memory is freed on every error path too.
        let mut code = Code {
            module: Some(JITModule::new(JITBuilder::with_isa(isa.clone(), default_libcall_names()))),
            entry: std::ptr::null(),
        };
        let module = code.module.as_mut().expect("just set");
        let target = Target { ptr: module.target_config().pointer_type(), cc: isa.default_call_conv() };
        let mut ctx = module.make_context();
        ctx.func.signature.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        let id = module.declare_anonymous_function(&ctx.func.signature).map_err(|e| e.to_string())?;
        let mut fctx = FunctionBuilderContext::new();
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            body(&mut b, &target)?;
            b.finalize(module.target_config());
        }
        module.define_function(id, &mut ctx).map_err(|e| format!("{e:?}"))?;
        module.clear_context(&mut ctx);
        module.finalize_definitions().map_err(|e| e.to_string())?;
        code.entry = module.get_finalized_function(id);
        Ok(code)
    }

    /// The entry block with the function's parameters, switched to and sealed.
    pub(crate) fn entry_block(b: &mut FunctionBuilder<'_>) -> Vec<Value> {
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        b.seal_block(block);
        b.block_params(block).to_vec()
    }
}
