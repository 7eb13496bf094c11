//! The fused kernel: a chain (or DAG) of elementwise ops of one shape and float dtype, run as a
//! small register program by a chunked vector interpreter.
//!
//! ## Design
//! - **Blocks in L1.** The elements are processed in blocks of [`BLOCK`] (a tensor smaller
//!   than that is one block of its own size). Each instruction applies one op to a whole block
//!   ([`adjoint_tensor::ops::block`], the same per-element functions as the op-by-op kernels,
//!   so results are bit-identical); intermediates live in a register file of
//!   `registers × BLOCK` elements that stays in L1, and registers are reused as soon as their
//!   value is dead (linear scan over the program), so a chain of 1,000 ops needs two.
//! - **Operands are slots**: an input that is a contiguous array of the program's shape is a
//!   pointer into it (no copy), an output is written straight into its result buffer, a
//!   scalar operand is one register filled once per call, and any other input — transposed,
//!   sliced, flipped, or broadcast along any axes (a bias row, a `[n, k, 1]` cotangent read
//!   as `[n, k, d]`) — is gathered per block through its strides into a register
//!   ([`super::strided`]). Until issue 16 such inputs were first copied out whole with
//!   `Array::contiguous`, which was most of `W7_gmm_obj_grad`'s jit time, and a
//!   `broadcast_to` along inner axes stopped fusion. Whether an input is read in place is
//!   decided per call from its layout: an input the plan expected contiguous that arrives
//!   strided gets a spare register.
//! - **Per-op cost on tiny tensors** is one `match` and a call over a slice of the block's
//!   length: a flat `Vec` of instructions, no allocation, no reference counting per op.
//! - **Large tensors** are cut into fixed chunks of [`CHUNK`] elements run in parallel
//!   (`rayon`) above [`PAR_THRESHOLD`]; the cut never depends on the thread count.
//! - **Masks** (comparisons) are kept as `1`/`0` in the float registers; a mask the rest of the
//!   program reads is converted to `bool` once at the end.
//! - **Prefetch.** A block reads its inputs and writes its outputs in bursts separated by
//!   its instructions, during which the hardware prefetcher sees no accesses and the memory
//!   system idles; so on AMD processors each block first asks for the cache lines of the block
//!   [`PREFETCH_BLOCKS`] further on, into L2 (issue 16, with the next point: W2's jitted step
//!   about 10% faster on a Zen 4, `jit_probe w2_jit` A/B on a loaded machine). On an Intel
//!   Xeon the same prefetch made the step 6% and the Adam update 35% slower, so elsewhere it
//!   is off by default ([`prefetch_blocks`], `ADJOINT_JIT_PREFETCH`).
//! - **Outputs in dead inputs' buffers.** The fast plan hands a kernel the inputs it is the
//!   last to read ([`Arg::Owned`]); when no other handle shares such a buffer and every
//!   instruction reading it precedes the one writing an output ([`Kernel::plan_reuse`]),
//!   that output is computed into it instead of a buffer from the cache: memory that is hot
//!   (a gradient the matmul just wrote) instead of one that must be fetched to be written,
//!   and a smaller working set. Inputs of a [`jit`](super::jit)ted function are never reused
//!   (the caller still holds them); those of a [`jit_donate`](super::jit_donate)d one are,
//!   when the caller gave up its last handle.
//!
//! - **Native code.** Once a kernel has done enough interpreted work
//!   ([`crate::jit::native`]), a kernel whose operations all have an exact native form
//!   (arithmetic, `sqrt`, reciprocals, `abs`, rounding, comparisons, `select`, `relu` and its
//!   gradient, NaN-propagating `maximum`/`minimum`) is compiled through Cranelift into one
//!   pass per block, with every intermediate in vector registers (`native.rs`); everything
//!   above — gathers, prefetch, parallel chunks, donated buffers — stays the same, and so do
//!   the bits. Kernels with `exp`, `tanh`, `log` and the like stay interpreted.
//!
//! A [`Fused`] equation exists only in the plan `jit` runs when no transform is active
//! ([`super::exec`]); transforms always see the original equations (replayed through `bind`),
//! so `Fused` has no derivative or batching rules of its own.

use std::fmt;
use std::rc::Rc;

use adjoint_tensor::ops::binary::BinaryOp;
use adjoint_tensor::ops::block::BlockFloat;
use adjoint_tensor::ops::compare::CompareOp;
use adjoint_tensor::ops::unary::UnaryOp;
use adjoint_tensor::{Array, DType};
use rayon::prelude::*;

#[cfg(feature = "native")]
mod native;

use super::strided::Strided;
use crate::primitive::{Aval, Outs, Primitive, Pullback};
use crate::tensor::Tensor;

/// Elements per block: 512 × 8 bytes = 4 KiB per f64 register, so a handful stay in L1.
pub const BLOCK: usize = 512;
/// Elements per parallel task.
pub const CHUNK: usize = 1 << 14;
/// Fewer elements than this (or a one-thread pool: [`adjoint_tensor::ops::parallel`]) run on the calling thread.
pub const PAR_THRESHOLD: usize = adjoint_tensor::ops::PAR_THRESHOLD;
/// How many blocks ahead the inputs and outputs in memory are prefetched (into L2) on AMD
/// processors, where it was measured to help; see [`prefetch_blocks`].
pub const PREFETCH_BLOCKS: usize = 2;

/// Blocks ahead that a kernel prefetches: `ADJOINT_JIT_PREFETCH` when set to a number (read
/// once; `0` turns prefetching off), otherwise [`PREFETCH_BLOCKS`] on AMD processors and none
/// elsewhere. Measured: on an AMD EPYC (Zen 4) the prefetch made W2's jitted step about 10%
/// faster; on an Intel Xeon (AVX-512, 260 MiB L3) it made it 6% slower (`jit_probe w2_jit`,
/// 2.51–2.59 ms with it against 2.32–2.48 without) and W2's Adam update 35% slower
/// (`jit_probe adam_jit`: 0.65 ms against 0.47–0.49): the `prefetcht1` instructions stall
/// once the line-fill buffers are full, and Intel's own stream prefetcher already follows the
/// block's sequential reads (benches/LOG.md).
///
/// ```
/// use adjoint_core::jit::fused::{prefetch_blocks, BLOCK};
/// // How far ahead of the block it computes a kernel asks for memory, in elements.
/// println!("prefetching {} elements ahead", prefetch_blocks() * BLOCK);
/// ```
pub fn prefetch_blocks() -> usize {
    static BLOCKS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BLOCKS.get_or_init(|| {
        adjoint_tensor::env::knob(
            "ADJOINT_JIT_PREFETCH",
            if adjoint_tensor::ops::simd::is_amd() { PREFETCH_BLOCKS } else { 0 },
        )
    })
}

/// One elementwise operation of a fused program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A unary function ([`Array::unary`]).
    Unary(UnaryOp),
    /// A binary function ([`Array::binary`]).
    Binary(BinaryOp),
    /// A comparison, giving a mask (`1`/`0`).
    Compare(CompareOp),
    /// `if mask { a } else { b }`.
    Select,
    /// The operand itself (a broadcast, a `stop_gradient`).
    Copy,
}

impl Op {
    /// Number of operands.
    pub fn arity(self) -> usize {
        match self {
            Op::Unary(_) | Op::Copy => 1,
            Op::Binary(_) | Op::Compare(_) => 2,
            Op::Select => 3,
        }
    }
}

/// How an input of a fused program is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Element `i` of the input (the input has the program's shape).
    Full,
    /// The input's only element, for every `i`.
    Scalar,
    /// The input's shape broadcasts to the program's (numpy rules: aligned to the right, each
    /// axis equal or 1): read through its strides, 0 along the broadcast axes.
    Broadcast,
}

/// Where an operand lives while a block runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Input `k`, read in place (a [`Load::Full`] input that needs no conversion).
    Input(usize),
    /// Output `k`, written in place.
    Output(usize),
    /// Register `r` of the register file.
    Reg(usize),
}

/// An instruction: `dst = op(src…)`, slots being indices into [`Kernel::slots`].
#[derive(Clone, Copy, Debug)]
pub struct Instr {
    /// The operation.
    pub op: Op,
    /// The slot written; never one of the sources.
    pub dst: u32,
    /// The slots read (the first `op.arity()`).
    pub src: [u32; 3],
}

/// A compiled fused program (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The float type every value is computed in.
    pub dtype: DType,
    /// The shape of every value of the program.
    pub shape: Vec<usize>,
    /// The abstract value of each input (the program's dtype, or `bool` for a mask).
    pub inputs: Vec<Aval>,
    /// How each input is read; inputs that are not read in place get a register (`reg`).
    pub loads: Vec<(Load, Option<usize>)>,
    /// The dtype of each output (the program's, or `bool` for a mask).
    pub outputs: Vec<DType>,
    /// Every operand location.
    pub slots: Vec<Slot>,
    /// Registers in the register file.
    pub registers: usize,
    /// The program.
    pub instrs: Vec<Instr>,
    /// `(input, output)` pairs where the output may be written into the input's buffer when
    /// the caller hands that buffer over ([`Arg::Owned`]): see [`Kernel::plan_reuse`].
    pub reuse: Vec<(usize, usize)>,
    /// The kernel's native code, once hot.
    pub native: NativeState,
}

/// A kernel's native code (see [`crate::jit::native`]): the interpreted work so far, and the
/// code once compiled (`None` inside when the kernel has no exact native form). A clone starts
/// afresh.
#[derive(Default)]
pub struct NativeState {
    #[cfg(feature = "native")]
    hot: std::sync::atomic::AtomicU64,
    #[cfg(feature = "native")]
    code: std::sync::OnceLock<Option<native::Native>>,
}

impl Clone for NativeState {
    fn clone(&self) -> Self {
        NativeState::default()
    }
}

impl fmt::Debug for NativeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(feature = "native")]
        return write!(f, "NativeState {{ compiled: {} }}", matches!(self.code.get(), Some(Some(_))));
        #[cfg(not(feature = "native"))]
        f.write_str("NativeState")
    }
}

/// An argument of [`Kernel::run_args`]: borrowed, or handed over (the caller's last handle on
/// a value that dies here), so that an output may be written into its buffer.
pub enum Arg<'a> {
    /// Read only.
    Borrowed(&'a Array),
    /// Read, and its buffer reused for an output when [`Kernel::reuse`] allows and no other
    /// handle shares the storage.
    Owned(Array),
}

impl Arg<'_> {
    fn array(&self) -> &Array {
        match self {
            Arg::Borrowed(a) => a,
            Arg::Owned(a) => a,
        }
    }
}

/// A pointer that may cross to a `rayon` task: each task touches a disjoint range of elements.
#[derive(Clone, Copy)]
struct Ptr<T>(*mut T);
// SAFETY: tasks write disjoint element ranges of the outputs and only read the inputs.
unsafe impl<T> Send for Ptr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Ptr<T> {}

impl Kernel {
    fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Decide the `(input, output)` pairs whose buffers may be shared ([`reuse`](Self::reuse)):
    /// the input is read in place (a [`Load::Full`] input of the program's dtype), the output
    /// has the program's dtype, and every instruction reading the input comes strictly before
    /// the one writing the output — so within a block every element of the input is read before
    /// the output overwrites it, and blocks are disjoint. Each input and each output appears at
    /// most once.
    ///
    /// When the only late read is by the writing instruction itself (`m + (g − m)·c` writing
    /// `m`'s successor, or a single `x + b`), that instruction is redirected into a spare
    /// register and a [`Op::Copy`] to the output follows it, so the pair qualifies: the
    /// interpreter never hands one instruction a source and a destination that overlap, and
    /// native code keeps the value in a vector register anyway (the copy is one store). A
    /// kernel whose outputs all have partners then allocates nothing.
    pub fn plan_reuse(&mut self) {
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for j in 0..self.outputs.len() {
            if self.outputs[j] != self.dtype {
                continue;
            }
            let Some(slot) = self.slots.iter().position(|s| *s == Slot::Output(j)) else { continue };
            let Some(w) = self.instrs.iter().position(|i| i.dst as usize == slot) else { continue };
            let slots = &self.slots;
            let reads = |i: &Instr, k: usize| {
                i.src[..i.op.arity()].iter().any(|&s| slots[s as usize] == Slot::Input(k))
            };
            let candidate = |k: usize| {
                self.loads[k] == (Load::Full, None)
                    && self.inputs[k].dtype == self.dtype
                    && !pairs.iter().any(|p| p.0 == k)
            };
            let n = self.inputs.len();
            if let Some(k) = (0..n).find(|&k| candidate(k) && !self.instrs[w..].iter().any(|i| reads(i, k))) {
                pairs.push((k, j));
                continue;
            }
            let Some(k) = (0..n).find(|&k| candidate(k) && !self.instrs[w + 1..].iter().any(|i| reads(i, k)))
            else {
                continue;
            };
            self.slots.push(Slot::Reg(self.registers));
            self.registers += 1;
            let staged = (self.slots.len() - 1) as u32;
            self.instrs[w].dst = staged;
            self.instrs.insert(w + 1, Instr { op: Op::Copy, dst: slot as u32, src: [staged; 3] });
            pairs.push((k, j));
        }
        self.reuse = pairs;
    }

    /// Compile the kernel to native code now, whatever the policy; whether native code runs
    /// it from now on (`false` without the `native` feature, on a host Cranelift does not
    /// support, or when an operation has no exact native form).
    pub fn compile_native(&self) -> bool {
        #[cfg(feature = "native")]
        return self
            .native
            .code
            .get_or_init(|| native::compile(self, if self.dtype == DType::F32 { 4 } else { 8 }).ok())
            .is_some();
        #[cfg(not(feature = "native"))]
        false
    }

    /// Whether native code runs the kernel.
    pub fn is_native(&self) -> bool {
        #[cfg(feature = "native")]
        return matches!(self.native.code.get(), Some(Some(_)));
        #[cfg(not(feature = "native"))]
        false
    }

    /// The native code for a call on `n` elements, compiling it when the kernel gets hot.
    #[cfg(feature = "native")]
    fn native_for(&self, n: usize) -> Option<&native::Native> {
        if let Some(c) = self.native.code.get() {
            return c.as_ref();
        }
        let t = crate::jit::native::threshold()?;
        let work = (n * self.instrs.len()) as u64;
        let h = self.native.hot.fetch_add(work, std::sync::atomic::Ordering::Relaxed) + work;
        if h > t && self.compile_native() {
            return self.native.code.get().and_then(Option::as_ref);
        }
        None
    }

    /// Run on one array per input; returns one array per output.
    pub fn run(&self, args: &[&Array]) -> Outs<Array> {
        self.run_args(args.iter().map(|&a| Arg::Borrowed(a)).collect())
    }

    /// Run on one argument per input, writing outputs into the buffers of owned arguments
    /// where [`reuse`](Self::reuse) allows (the result is the same as [`run`](Self::run)'s).
    pub fn run_args(&self, args: Vec<Arg<'_>>) -> Outs<Array> {
        match self.dtype {
            DType::F32 => self.run_typed::<f32>(args),
            DType::F64 => self.run_typed::<f64>(args),
            dt => unreachable!("adjoint: jit: internal error: fused program of dtype {dt}"),
        }
    }

    fn run_typed<T: BlockFloat>(&self, mut args: Vec<Arg<'_>>) -> Outs<Array> {
        let n = self.numel();
        // Outputs written into an owned input's buffer: that input is then read through the
        // same raw pointer the output is written through (never through a shared slice).
        let mut donated: Vec<Option<usize>> = vec![None; self.outputs.len()];
        let mut raw: Vec<Option<Ptr<T>>> = vec![None; args.len()];
        for &(k, j) in &self.reuse {
            if let Some(Arg::Owned(a)) = args.get_mut(k)
                && a.dtype() == self.dtype
                && a.shape() == self.shape.as_slice()
                && let Some(s) = a.try_unique_slice_mut::<T>()
            {
                raw[k] = Some(Ptr(s.as_mut_ptr()));
                donated[j] = Some(k);
            }
        }
        assert_eq!(
            args.len(),
            self.inputs.len(),
            "adjoint: jit: internal error: a fused kernel of {} inputs called on {}",
            self.inputs.len(),
            args.len()
        );
        // Inputs of another dtype (masks from outside) are converted once; every other input
        // is read where it lies, through its strides when it is not a plain slice.
        let cast: Vec<Option<Array>> = args
            .iter()
            .map(|a| (a.array().dtype() != self.dtype).then(|| a.array().cast(self.dtype)))
            .collect();
        let mut spill = self.registers;
        let ins: Vec<Input<'_, T>> = args
            .iter()
            .zip(&cast)
            .zip(&self.loads)
            .zip(&raw)
            .map(|(((a, c), &(load, reg)), raw)| {
                if let Some(p) = raw {
                    return Input { src: Src::Raw(*p), reg };
                }
                let a = c.as_ref().unwrap_or(a.array());
                let data = a.storage_slice::<T>();
                let src = if load == Load::Scalar {
                    Src::Scalar(data[a.layout().offset])
                } else {
                    match a.as_slice::<T>() {
                        Some(s) if a.numel() == n => Src::Slice(s),
                        _ => Src::Strided(data, Strided::new(a, &self.shape)),
                    }
                };
                // A slice input is read in place; anything else needs a register: its own,
                // or (read in place at compile time, strided now) a spare one.
                let reg = reg.or_else(|| {
                    (!matches!(src, Src::Slice(_))).then(|| {
                        spill += 1;
                        spill - 1
                    })
                });
                Input { src, reg }
            })
            .collect();
        let registers = spill;
        let mut outs: Vec<Vec<T>> = donated
            .iter()
            .map(|d| if d.is_some() { Vec::new() } else { adjoint_tensor::cache::take::<T>(n) })
            .collect();
        let out_ptrs: Vec<Ptr<T>> = outs
            .iter_mut()
            .zip(&donated)
            .map(|(v, d)| match d {
                Some(k) => raw[*k].expect("a donated input has a pointer"),
                None => Ptr(v.as_mut_ptr()),
            })
            .collect();
        #[cfg(feature = "native")]
        let code = self.native_for(n);
        #[cfg(not(feature = "native"))]
        let code = None;
        if adjoint_tensor::ops::parallel(n) {
            let tasks = n.div_ceil(CHUNK);
            (0..tasks).into_par_iter().for_each(|t| {
                let (lo, hi) = (t * CHUNK, ((t + 1) * CHUNK).min(n));
                self.run_range(&ins, registers, &out_ptrs, lo, hi, code);
            });
            adjoint_tensor::threads::keep_warm();
        } else {
            self.run_range(&ins, registers, &out_ptrs, 0, n, code);
        }
        for (v, d) in outs.iter_mut().zip(&donated) {
            if d.is_none() {
                // SAFETY: every instruction writing an output slot ran over every block of
                // `0..n` (each output is the destination of exactly one instruction).
                unsafe { v.set_len(n) };
            }
        }
        drop(ins);
        let mut args: Vec<Option<Arg<'_>>> = args.into_iter().map(Some).collect();
        outs.into_iter()
            .zip(&self.outputs)
            .zip(&donated)
            .map(|((v, &dt), d)| {
                if let Some(k) = d {
                    // The donated input's buffer, now holding the output (same shape).
                    match args[*k].take() {
                        Some(Arg::Owned(a)) => a,
                        _ => unreachable!("adjoint: jit: internal error: donated input missing"),
                    }
                } else if dt == DType::Bool {
                    let b: Vec<bool> = v.iter().map(|&x| x != T::zero()).collect();
                    adjoint_tensor::cache::give(v);
                    Array::from_vec(b, &self.shape)
                } else {
                    Array::from_vec(v, &self.shape)
                }
            })
            .collect()
    }

    /// Run elements `lo..hi`, block by block, with a register file of `registers` registers of
    /// its own (the program's, then the spare ones of strided inputs).
    fn run_range<T: BlockFloat>(
        &self,
        ins: &[Input<'_, T>],
        registers: usize,
        outs: &[Ptr<T>],
        lo: usize,
        hi: usize,
        code: Option<&NativeCode>,
    ) {
        #[cfg(not(feature = "native"))]
        let _ = code;
        let blk = BLOCK.min(hi - lo);
        let prefetch_ahead = prefetch_blocks() * blk;
        let mut regs: Vec<T> = vec![T::zero(); registers * blk];
        let base = regs.as_mut_ptr();
        let reg_ptr = |r: usize| {
            debug_assert!(r < registers);
            // SAFETY: `r < registers`, so the block lies inside `regs`.
            unsafe { base.add(r * blk) }
        };
        let mut ptrs: Vec<*mut T> = self
            .slots
            .iter()
            .map(|s| match *s {
                Slot::Reg(r) => reg_ptr(r),
                // Read through a register when not a slice (fixed for the whole range).
                Slot::Input(k) => ins[k].reg.map_or(std::ptr::null_mut(), reg_ptr),
                Slot::Output(_) => std::ptr::null_mut(),
            })
            .collect();
        // Scalars: filled once.
        for input in ins {
            if let (Src::Scalar(x), Some(r)) = (&input.src, input.reg) {
                // SAFETY: register `r`'s block of `blk` elements lies inside `regs`.
                unsafe { std::slice::from_raw_parts_mut(reg_ptr(r), blk) }.fill(*x);
            }
        }
        let mut start = lo;
        while start < hi {
            let len = blk.min(hi - start);
            for (p, s) in ptrs.iter_mut().zip(&self.slots) {
                match *s {
                    // SAFETY: `start + len <= n`, the length of every slice input and output.
                    Slot::Input(k) => match ins[k].src {
                        Src::Slice(x) => *p = unsafe { x.as_ptr().add(start) as *mut T },
                        Src::Raw(x) => *p = unsafe { x.0.add(start) },
                        _ => {}
                    },
                    Slot::Output(k) => *p = unsafe { outs[k].0.add(start) },
                    Slot::Reg(_) => {}
                }
            }
            // Blocks further on, in memory: start fetching them while this one computes (the
            // hardware prefetcher sees no accesses while a block runs its instructions).
            let (a, b) = (start + prefetch_ahead, (start + prefetch_ahead + blk).min(hi));
            if a < b && prefetch_ahead > 0 {
                for input in ins {
                    match input.src {
                        Src::Slice(x) => prefetch(x[a..b].as_ptr(), b - a),
                        // SAFETY: `a < b <= hi <= n`: inside the buffer.
                        Src::Raw(x) => prefetch(unsafe { x.0.add(a) }, b - a),
                        _ => {}
                    }
                }
                for o in outs {
                    // SAFETY: as above, `a..b` lies inside every output.
                    prefetch(unsafe { o.0.add(a) }, b - a);
                }
            }
            for input in ins {
                let Some(r) = input.reg else { continue };
                // SAFETY: register `r`'s block of `blk >= len` elements lies inside `regs`, and
                // no other live reference points into it.
                let dst = unsafe { std::slice::from_raw_parts_mut(reg_ptr(r), len) };
                match &input.src {
                    Src::Slice(x) => dst.copy_from_slice(&x[start..start + len]),
                    Src::Strided(data, view) => view.gather(data, start, dst),
                    Src::Scalar(_) | Src::Raw(_) => {}
                }
            }
            #[cfg(feature = "native")]
            if let Some(c) = code {
                // SAFETY: as for the interpreter below: every slot the program touches points
                // at `len` valid elements, and outputs overlap only inputs they may reuse.
                unsafe { c.call(ptrs.as_ptr(), len) };
                start += len;
                continue;
            }
            for ins in &self.instrs {
                // SAFETY: every slot points at `len` valid elements (a register block, or
                // the block's range of an input or output); the destination is never one of
                // the sources (the allocator guarantees it), and inputs are only read.
                unsafe {
                    let s = |i: usize| std::slice::from_raw_parts(ptrs[ins.src[i] as usize] as *const T, len);
                    let d = std::slice::from_raw_parts_mut(ptrs[ins.dst as usize], len);
                    match ins.op {
                        Op::Unary(u) => T::unary_block(u, s(0), d),
                        Op::Binary(b) => T::binary_block(b, s(0), s(1), d),
                        Op::Compare(c) => T::compare_block(c, s(0), s(1), d),
                        Op::Select => T::select_block(s(0), s(1), s(2), d),
                        Op::Copy => d.copy_from_slice(s(0)),
                    }
                }
            }
            start += len;
        }
        drop(ptrs);
        drop(regs);
    }
}

#[cfg(feature = "native")]
use native::Native as NativeCode;
/// No native code without the `native` feature.
#[cfg(not(feature = "native"))]
enum NativeCode {}

/// Ask for the cache lines of `len` elements at `p` to be brought into L2 (a hint: it never
/// faults, and does nothing off x86-64).
#[inline]
fn prefetch<T>(p: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let bytes = len * std::mem::size_of::<T>();
        let p = p as *const i8;
        let mut o = 0;
        while o < bytes {
            // SAFETY: a prefetch is a hint that never faults; the address lies in the range.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(o)) };
            o += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// Where an input's elements come from during one call.
enum Src<'a, T> {
    /// A contiguous array of the program's shape: element `i` is `x[i]`.
    Slice(&'a [T]),
    /// An owned input whose buffer an output is written into: element `i` is `*x.add(i)`, read
    /// through the same pointer the output is written through.
    Raw(Ptr<T>),
    /// The input's single element.
    Scalar(T),
    /// Any other layout: the storage and the view read through it.
    Strided(&'a [T], Strided),
}

/// One input of a call: its elements and the register it is loaded into per block (`None`: a
/// slice read in place).
struct Input<'a, T> {
    src: Src<'a, T>,
    reg: Option<usize>,
}

/// A fused group of elementwise equations as one primitive (see the [module docs](self)).
#[derive(Clone)]
pub struct Fused {
    /// The compiled program.
    pub kernel: Rc<Kernel>,
    /// The names of the ops it runs, in order (for printing).
    pub ops: Rc<Vec<&'static str>>,
}

impl fmt::Debug for Fused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.kernel;
        let mut ops = self.ops.iter().take(6).copied().collect::<Vec<_>>().join(",");
        if self.ops.len() > 6 {
            ops.push_str(",…");
        }
        write!(f, "Fused {{ n: {}, registers: {}, ops: {ops} }}", k.instrs.len(), k.registers)
    }
}

#[cold]
fn no_rule(what: &str) -> ! {
    panic!(
        "adjoint: jit: internal error: a fused equation reached a {what}; fused equations exist \
         only in the plan jit runs with no transform active"
    )
}

impl Primitive for Fused {
    fn name(&self) -> &'static str {
        "fused"
    }
    fn cse_key(&self) -> Option<String> {
        None
    }
    fn shape(&self, args: &[Aval]) -> Outs<Aval> {
        let k = &self.kernel;
        if args != k.inputs.as_slice() {
            crate::primitive::misuse("fused", format!("expects inputs {:?}, got {args:?}", k.inputs));
        }
        k.outputs.iter().map(|&dt| Aval::new(&k.shape, dt)).collect()
    }
    fn eval(&self, args: &[&Array]) -> Outs<Array> {
        self.kernel.run(args)
    }
    fn jvp(&self, _: &[&Tensor], _: &[Option<&Tensor>], _: &[Tensor]) -> Outs<Option<Tensor>> {
        no_rule("jvp")
    }
    fn vjp(&self, _: &[&Tensor], _: &[Tensor], _: &[bool]) -> Pullback {
        no_rule("vjp")
    }
    fn batch(&self, _: &[&Tensor], _: &[Option<usize>], _: usize) -> (Outs<Tensor>, Outs<Option<usize>>) {
        no_rule("vmap")
    }
}
