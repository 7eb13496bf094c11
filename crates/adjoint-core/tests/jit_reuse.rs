//! Fused kernels writing an output into the buffer of an input that dies at the kernel
//! (`Kernel::reuse`, `Arg::Owned`): which pairs may share, that a handed-over buffer with no
//! other owner is reused and a shared one is not, and that results are bit for bit those of
//! replay and of eager code, on one block, several blocks and the parallel path.

use adjoint_core::jit::exec::{replay_ir, run_ir};
use adjoint_core::jit::fused::{Arg, Fused, Op, Slot};
use adjoint_core::jit::passes::{fuse, optimize};
use adjoint_core::{jit, make_ir, DType, Tensor};
use adjoint_tensor::random::{uniform, Key};
use adjoint_tensor::Array;

fn rand(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    Tensor::from_array(uniform(&Key::new(seed), shape, -1.0, 1.0, dtype))
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec::<f64>().iter().map(|x| x.to_bits()).collect()
}

/// The first fused equation of `f`'s fused program at `x`.
fn fused_of<F: Fn(&Tensor) -> Tensor>(f: F, x: &Tensor) -> Fused {
    let ir = fuse(optimize(make_ir(f)(x)));
    let e = ir.eqns.iter().find(|e| e.prim.name() == "fused").expect("a fused equation");
    e.prim.as_any().downcast_ref::<Fused>().expect("Fused").clone()
}

fn data_ptr(a: &Array) -> *const f32 {
    a.storage_slice::<f32>().as_ptr()
}

#[test]
fn reuse_pairs_need_every_read_before_the_write() {
    // `x·2 + 1`: x is read by the first instruction, the output written by the second.
    let k = fused_of(|x| x * 2.0 + 1.0, &rand(&[64], 1, DType::F32)).kernel;
    assert_eq!(k.reuse, [(0, 0)]);
    // `(x·2 + 1)·x`: x is read again by the instruction writing the output, so that
    // instruction writes a spare register and a copy to the output follows it.
    let k = fused_of(|x| (x * 2.0 + 1.0) * x, &rand(&[64], 1, DType::F32)).kernel;
    assert_eq!(k.reuse, [(0, 0)]);
    let last = k.instrs.last().expect("instructions");
    assert!(matches!(last.op, Op::Copy) && k.slots[last.dst as usize] == Slot::Output(0), "{:?}", k.instrs);
    // Without the copy: `x·2 + 1` has its output written by an instruction that reads no input.
    let k = fused_of(|x| x * 2.0 + 1.0, &rand(&[64], 1, DType::F32)).kernel;
    assert!(k.instrs.iter().all(|i| !matches!(i.op, Op::Copy)), "{:?}", k.instrs);
    // A mask output (bool) never shares a float buffer.
    let k = fused_of(|x| (x * 2.0).gt_scalar(0.0), &rand(&[64], 1, DType::F32)).kernel;
    assert!(k.reuse.is_empty(), "{:?}", k.reuse);
}

#[test]
fn a_single_large_elementwise_op_is_a_kernel_that_writes_in_place() {
    // One `exp` of a 64 KiB+ array: a kernel of its own (memplan), staged through a register.
    let n = 20_000;
    let x = rand(&[n], 3, DType::F32);
    let k = fused_of(|x| x.exp(), &x).kernel;
    assert_eq!((k.instrs.len(), k.reuse.as_slice()), (2, &[(0, 0)][..]));
    let want = x.exp().to_vec::<f32>();
    let a = Array::from_vec(x.to_vec::<f32>(), &[n]);
    let p = data_ptr(&a);
    let out = k.run_args(vec![Arg::Owned(a)]);
    assert_eq!(data_ptr(&out[0]), p);
    assert_eq!(out[0].to_vec::<f32>(), want);
    // A small one stays the op it was.
    let ir = fuse(optimize(make_ir(|x: &Tensor| x.exp())(&rand(&[100], 3, DType::F32))));
    assert_eq!(ir.eqns[0].prim.name(), "exp");
}

#[test]
fn an_owned_unshared_input_holds_the_output_and_a_shared_one_does_not() {
    for n in [100, 5000, 200_000] {
        let x = rand(&[n], 2, DType::F32);
        let f = |x: &Tensor| x.exp().sin();
        let k = fused_of(f, &x).kernel;
        let want = f(&x).to_vec::<f32>();
        // Shared: the caller keeps `x`, so a fresh buffer is used and `x` is unchanged.
        let a = x.to_array();
        let kept = a.clone();
        let out = k.run_args(vec![Arg::Owned(a)]);
        assert_ne!(data_ptr(&out[0]), data_ptr(&kept));
        assert_eq!(out[0].to_vec::<f32>(), want);
        assert_eq!(kept.to_vec::<f32>(), x.to_vec::<f32>());
        // Unshared: the output is written into the input's buffer.
        let a = Array::from_vec(x.to_vec::<f32>(), &[n]);
        let p = data_ptr(&a);
        let out = k.run_args(vec![Arg::Owned(a)]);
        assert_eq!(data_ptr(&out[0]), p);
        assert_eq!(out[0].to_vec::<f32>(), want);
    }
}

#[test]
fn jitted_programs_reusing_dead_intermediates_agree_with_replay_and_eager() {
    // An intermediate from a non-elementwise op (matmul) feeds a fused group and dies there; an
    // Adam-like update with three outputs reads it first and writes the parameter last.
    let f = |s: &(Tensor, Tensor, Tensor, Tensor)| {
        let (w, x, m, v) = s;
        let g = x.matmul(w) * 0.5;
        let m2 = m + (&g - m) * 0.1;
        let v2 = v * 0.999 + g.square() * 0.001;
        let w2 = w - (&m2 / (v2.sqrt() + 1e-8)) * 0.01;
        (w2, m2, v2)
    };
    for (dtype, d) in [(DType::F32, 8), (DType::F32, 300), (DType::F64, 300), (DType::F32, 600)] {
        let s = (
            rand(&[d, d], 3, dtype),
            rand(&[d, d], 4, dtype),
            rand(&[d, d], 5, dtype),
            rand(&[d, d], 6, dtype).abs(),
        );
        let ir = optimize(make_ir(f)(&s));
        let fused = fuse(ir.clone());
        assert!(
            fused.eqns.iter().any(|e| e
                .prim
                .as_any()
                .downcast_ref::<Fused>()
                .is_some_and(|f| !f.kernel.reuse.is_empty())),
            "{fused}"
        );
        let ins = [s.0.clone(), s.1.clone(), s.2.clone(), s.3.clone()];
        let (a, b) = (run_ir(&ir, &ins), replay_ir(&ir, &ins));
        let (j, e) = (jit(f)(&s), f(&s));
        for (k, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(bits(x), bits(y), "{dtype} {d}: output {k}");
        }
        for (x, y) in [(&j.0, &e.0), (&j.1, &e.1), (&j.2, &e.2)] {
            assert_eq!(bits(x), bits(y), "{dtype} {d}: jit against eager");
        }
        // The inputs are untouched (they were shared with the caller).
        assert_eq!(bits(&ins[0]), bits(&s.0));
    }
}
