//! Fusion, algebraic simplification and the fast executor of `jit`: each pass fires on the
//! pattern it targets, leaves a program the checker accepts, and leaves the results unchanged
//! (bit for bit, except the matmul rewrite, which reorders a sum and is checked on integers,
//! where every order is exact); the fused plan agrees bit for bit with replay on random
//! elementwise programs.

use adjoint_core::jit::exec::{replay_ir, run_ir};
use adjoint_core::jit::passes::{dce, fuse, optimize, simplify};
use adjoint_core::jit::Ir;
use adjoint_core::{grad, jit, make_ir, value_and_grad, DType, Tensor};
use adjoint_tensor::random::{uniform, Key};
use proptest::prelude::*;

fn rand(shape: &[usize], seed: u64, lo: f64, hi: f64, dtype: DType) -> Tensor {
    Tensor::from_array(uniform(&Key::new(seed), shape, lo, hi, dtype))
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec::<f64>().iter().map(|x| x.to_bits()).collect()
}

#[track_caller]
fn same(a: &[Tensor], b: &[Tensor]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!((x.shape(), x.dtype()), (y.shape(), y.dtype()));
        assert_eq!(bits(x), bits(y));
    }
}

fn names(ir: &Ir) -> Vec<&'static str> {
    ir.eqns.iter().map(|e| e.prim.name()).collect()
}

#[test]
fn fuse_turns_an_elementwise_chain_into_one_kernel() {
    let f = |x: &Tensor| ((x * 1.5 + 0.25).sin().exp() - x).tanh().sum();
    for dtype in [DType::F32, DType::F64] {
        let x = rand(&[1000], 1, -2.0, 2.0, dtype);
        let ir = optimize(make_ir(f)(&x));
        let fused = fuse(ir.clone());
        fused.check().unwrap();
        assert_eq!(names(&fused), ["fused", "reduce_sum"], "{fused}");
        same(&run_ir(&fused, std::slice::from_ref(&x)), &replay_ir(&ir, std::slice::from_ref(&x)));
        assert_eq!(bits(&jit(f)(&x)), bits(&f(&x)));
    }
}

#[test]
fn fuse_handles_scalars_bias_rows_masks_and_several_outputs() {
    // relu(x @ w + b) (the relu primitive), a bias row broadcast along the leading axis, a
    // mask read outside the group, two values escaping.
    let f = |p: &(Tensor, Tensor, Tensor)| {
        let h = p.0.matmul(&p.1) + &p.2;
        let mask = h.gt_scalar(0.0);
        let r = h.relu() * 2.0;
        let s = (&r + 1.0).exp();
        (r.sum_axes(&[1], false), s, mask)
    };
    let p = (
        rand(&[4, 3], 2, -1.0, 1.0, DType::F64),
        rand(&[3, 5], 3, -1.0, 1.0, DType::F64),
        rand(&[5], 4, -1.0, 1.0, DType::F64),
    );
    let ir = optimize(make_ir(f)(&p));
    let fused = fuse(ir.clone());
    fused.check().unwrap();
    let n = names(&fused);
    assert_eq!(n.iter().filter(|&&x| x == "fused").count(), 1, "{fused}");
    assert!(!n.contains(&"relu") && !n.contains(&"exp"), "{fused}");
    let ins = vec![p.0.clone(), p.1.clone(), p.2.clone()];
    let (a, b) = (run_ir(&fused, &ins), replay_ir(&ir, &ins));
    assert_eq!(a[2].dtype(), DType::Bool);
    assert_eq!(a[2].to_vec::<f64>(), b[2].to_vec::<f64>());
    same(&a[..2], &b[..2]);
}

#[test]
fn fuse_takes_relu_and_its_backward() {
    // The reverse pass of relu(x)·x + 1 is relu_grad(y, c)·x + c·y: relu_grad joins the group.
    let f = |x: &Tensor| adjoint_core::grad(|x: &Tensor| (x.relu() * x + 1.0).sin().sum())(x);
    let x = rand(&[37, 5], 9, -1.0, 1.0, DType::F32);
    let ir = optimize(make_ir(f)(&x));
    let fused = fuse(ir.clone());
    fused.check().unwrap();
    let n = names(&fused);
    assert!(!n.contains(&"relu") && !n.contains(&"relu_grad"), "{fused}");
    same(&run_ir(&fused, std::slice::from_ref(&x)), &replay_ir(&ir, std::slice::from_ref(&x)));
    assert_eq!(bits(&jit(f)(&x)), bits(&f(&x)));
}

#[test]
fn fuse_runs_large_tensors_in_parallel_blocks_bit_for_bit() {
    let f = |x: &Tensor| (x.sigmoid() * x + x.sqrt()).log();
    let x = rand(&[300_001], 5, 0.1, 3.0, DType::F32);
    let ir = optimize(make_ir(f)(&x));
    let fused = fuse(ir.clone());
    assert_eq!(names(&fused), ["fused"]);
    same(&run_ir(&fused, std::slice::from_ref(&x)), &[f(&x)]);
}

/// A fused kernel reads inputs of any layout in place, through their strides: transposed,
/// sliced with a step, flipped, and broadcast along inner axes (stride 0), on odd sizes, below
/// and above the parallel threshold, bit for bit as the eager ops compute them.
#[test]
fn fused_kernels_read_strided_transposed_and_broadcast_inputs() {
    let f = |p: &(Tensor, Tensor, Tensor)| {
        let h = (&p.0 * 1.5 + &p.1).sin() * &p.0;
        (h.exp() - &p.2, h.tanh())
    };
    for dtype in [DType::F32, DType::F64] {
        for (m, n) in [(7, 5), (37, 29), (301, 257)] {
            let a = rand(&[n, m], 10, -1.0, 1.0, dtype).t(); // transposed
            let b = rand(&[m, 2 * n + 1], 11, -1.0, 1.0, dtype).slice(1, 1, 2 * n + 1, 2); // step 2
            let c = rand(&[m, 1], 12, -1.0, 1.0, dtype).flip(0); // broadcast along the last axis
            let p = (a, b, c);
            assert!(!p.0.value().is_contiguous() && !p.1.value().is_contiguous());
            let ir = optimize(make_ir(f)(&p));
            let fused = fuse(ir.clone());
            fused.check().unwrap();
            assert_eq!(names(&fused), ["fused"], "{fused}");
            let ins = [p.0.clone(), p.1.clone(), p.2.clone()];
            same(&run_ir(&fused, &ins), &replay_ir(&ir, &ins));
            let ((x, y), (x0, y0)) = (jit(f)(&p), f(&p));
            assert_eq!((bits(&x), bits(&y)), (bits(&x0), bits(&y0)));
        }
    }
}

/// `broadcast_to` along inner axes joins the group (it used to stop fusion, and the
/// broadcast view was copied out before the next kernel): the GMM backward pattern
/// `c̄[n, k, 1] · diff[n, k, d]`.
#[test]
fn broadcast_along_inner_axes_joins_the_group() {
    let f = |p: &(Tensor, Tensor)| (p.0.broadcast_to(&[13, 5, 7]) * &p.1 + &p.1).exp();
    for dtype in [DType::F32, DType::F64] {
        let p = (rand(&[13, 5, 1], 13, -1.0, 1.0, dtype), rand(&[13, 5, 7], 14, -1.0, 1.0, dtype));
        let ir = optimize(make_ir(f)(&p));
        let fused = fuse(ir.clone());
        assert_eq!(names(&fused), ["fused"], "{fused}");
        let ins = [p.0.clone(), p.1.clone()];
        same(&run_ir(&fused, &ins), &replay_ir(&ir, &ins));
        assert_eq!(bits(&jit(f)(&p)), bits(&f(&p)));
        // The same with the broadcast input itself a strided view.
        let q = (rand(&[1, 5, 13], 15, -1.0, 1.0, dtype).permute(&[2, 1, 0]), p.1.clone());
        assert!(!q.0.value().is_contiguous());
        assert_eq!(bits(&jit(f)(&q)), bits(&f(&q)));
    }
}

#[test]
fn fuse_leaves_single_ops_and_other_shapes_alone() {
    let f = |x: &Tensor| x.exp().sum_axes(&[0], false).sin();
    let x = rand(&[3, 4], 6, -1.0, 1.0, DType::F64);
    let ir = optimize(make_ir(f)(&x));
    let fused = fuse(ir.clone());
    fused.check().unwrap();
    assert_eq!(names(&fused), names(&ir));
}

#[test]
fn jit_of_grad_uses_the_fused_plan_and_agrees_with_eager() {
    // W1_chain: the backward pass is a chain of 1,000 multiplications.
    let chain = |x: &Tensor| {
        let mut y = x.clone();
        for _ in 0..1000 {
            y = &y * 1.0001 + 0.0001;
        }
        y.sum()
    };
    for dtype in [DType::F32, DType::F64] {
        let x = Tensor::full_of(&[1], 1.0, dtype);
        // The gradient does not depend on x: tracing computes it on constants, and the
        // staged program is empty (its output is a constant).
        let g = grad(chain);
        assert!(optimize(make_ir(&g)(&x)).eqns.is_empty());
        let jg = jit(&g);
        for _ in 0..2 {
            assert_eq!(bits(&jg(&x)), bits(&g(&x)));
        }
        // value_and_grad: the forward pass (2,000 ops) is one fused kernel, then the sum.
        let vg = value_and_grad(chain);
        let ir = optimize(make_ir(&vg)(&x));
        let fused = fuse(ir.clone());
        fused.check().unwrap();
        assert_eq!(names(&fused), ["fused", "reduce_sum"]);
        let jvg = jit(&vg);
        for _ in 0..2 {
            let ((v, d), (v0, d0)) = (jvg(&x), vg(&x));
            assert_eq!((bits(&v), bits(&d)), (bits(&v0), bits(&d0)));
        }
    }
}

#[test]
fn simplify_removes_identities_exactly() {
    let f = |x: &Tensor| -(-(x * 1.0 - 0.0)) + Tensor::scalar(-0.0f64);
    let x = Tensor::from_slice(&[-0.0f64, 1.5, f64::NAN, -3.0], &[4]);
    let ir = make_ir(f)(&x);
    let out = dce(simplify(ir.clone()));
    out.check().unwrap();
    assert!(out.eqns.is_empty(), "{out}");
    same(&run_ir(&out, std::slice::from_ref(&x)), &replay_ir(&ir, std::slice::from_ref(&x)));
    // `x + 0` is kept: it turns -0 into +0.
    let g = |x: &Tensor| x + 0.0;
    let out = dce(simplify(make_ir(g)(&x)));
    assert_eq!(names(&out), ["add"]);
    assert_eq!(bits(&jit(g)(&x)), bits(&g(&x)));
}

#[test]
fn simplify_turns_a_ones_cotangent_matmul_into_row_and_column_sums() {
    // W8: Σ(A @ B); its gradients are ones @ Bᵀ and Aᵀ @ ones.
    let vg = value_and_grad(|p: &(Tensor, Tensor)| p.0.matmul(&p.1).sum());
    let int = |shape: &[usize], seed| rand(shape, seed, -4.0, 4.0, DType::F64).round();
    let p = (int(&[5, 4], 7), int(&[4, 3], 8));
    let ir = make_ir(&vg)(&p);
    assert_eq!(names(&ir).iter().filter(|&&n| n == "matmul").count(), 3, "{ir}");
    let out = dce(simplify(ir.clone()));
    out.check().unwrap();
    assert_eq!(names(&out).iter().filter(|&&n| n == "matmul").count(), 1, "{out}");
    let ins = vec![p.0.clone(), p.1.clone()];
    same(&run_ir(&out, &ins), &replay_ir(&ir, &ins));
    let (v, (ga, gb)) = jit(&vg)(&p);
    let (v0, (ga0, gb0)) = vg(&p);
    assert_eq!((bits(&v), bits(&ga), bits(&gb)), (bits(&v0), bits(&ga0), bits(&gb0)));
    // A uniform constant other than 1 scales the sum.
    let h = |b: &Tensor| Tensor::full_of(&[2, 4], 3.0, DType::F64).matmul(b);
    let out = dce(simplify(make_ir(h)(&p.0.narrow(1, 0, 3).narrow(0, 0, 4))));
    assert_eq!(names(&out), ["reduce_sum", "mul", "broadcast_to"], "{out}");
}

/// A random program over `n` elementwise steps: each step applies an op to earlier values.
fn random_program(steps: &[(u8, usize, usize)], x: &Tensor, y: &Tensor) -> Tensor {
    let mut vals = vec![x.clone(), y.clone()];
    for &(op, i, j) in steps {
        let (a, b) = (&vals[i % vals.len()], &vals[j % vals.len()]);
        let v = match op % 10 {
            0 => a + b,
            1 => a * b,
            2 => a - b,
            3 => a.tanh(),
            4 => a.sin(),
            5 => a.maximum(b),
            6 => a * 0.5 + 1.0,
            7 => a.sigmoid(),
            8 => Tensor::select(&a.greater(b), a, b),
            _ => (a.abs() + 1.0).log(),
        };
        vals.push(v);
    }
    vals.last().unwrap().clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn fused_plan_agrees_with_replay_on_random_programs(
        steps in proptest::collection::vec((0u8..10, 0usize..16, 0usize..16), 1..24),
        n in prop_oneof![Just(1usize), 1usize..3000],
        f32_ in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let dtype = if f32_ { DType::F32 } else { DType::F64 };
        let x = rand(&[n], seed, -2.0, 2.0, dtype);
        let y = rand(&[n], seed + 1, -2.0, 2.0, dtype);
        let f = |p: &(Tensor, Tensor)| random_program(&steps, &p.0, &p.1);
        let ir = optimize(make_ir(f)(&(x.clone(), y.clone())));
        let fused = fuse(ir.clone());
        fused.check().unwrap();
        let ins = vec![x.clone(), y.clone()];
        let (a, b) = (run_ir(&fused, &ins), replay_ir(&ir, &ins));
        prop_assert_eq!(bits(&a[0]), bits(&b[0]));
        let g = grad(|p: &(Tensor, Tensor)| random_program(&steps, &p.0, &p.1).sum());
        let (ga, gb) = jit(&g)(&(x.clone(), y.clone()));
        let (ga0, gb0) = g(&(x, y));
        prop_assert_eq!(bits(&ga), bits(&ga0));
        prop_assert_eq!(bits(&gb), bits(&gb0));
    }
}

/// A random program of the operations fused kernels compile to native code, on values with
/// NaNs, infinities and signed zeros among them.
#[cfg(feature = "native")]
fn native_program(steps: &[(u8, usize, usize)], x: &Tensor, y: &Tensor) -> Tensor {
    let mut vals = vec![x.clone(), y.clone()];
    for &(op, i, j) in steps {
        let (a, b) = (&vals[i % vals.len()], &vals[j % vals.len()]);
        let v = match op % 13 {
            0 => a + b,
            1 => a * b,
            2 => a - b,
            3 => a / b,
            4 => a.maximum(b),
            5 => a.minimum(b),
            6 => Tensor::select(&a.greater(b), a, b),
            7 => a.relu(),
            8 => a.abs().sqrt() + a.square(),
            9 => -a + &b.narrow(0, 0, 1),
            10 => a.floor() - a.ceil() + a.round(),
            11 => Tensor::select(&a.less_equal(b), &a.recip(), &a.rsqrt()),
            _ => a * 0.5 + 1.0,
        };
        vals.push(v);
    }
    vals.last().unwrap().clone()
}

/// Inputs with the special values every comparison and rounding must treat as Rust does.
#[cfg(feature = "native")]
fn special(n: usize, seed: u64, dtype: DType) -> Tensor {
    let mut v = rand(&[n], seed, -3.0, 3.0, DType::F64).to_vec::<f64>();
    let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, 2.5, -2.5, 1e-310];
    for (k, x) in v.iter_mut().enumerate() {
        if (k as u64 + seed).is_multiple_of(5) {
            *x = specials[(k / 5 + seed as usize) % specials.len()];
        }
    }
    Tensor::from_vec(v, &[n]).cast(dtype)
}

/// Compile every fused kernel of `ir` to native code; whether all compiled.
#[cfg(feature = "native")]
fn compile_all(ir: &Ir) -> bool {
    use adjoint_core::jit::fused::Fused;
    ir.eqns.iter().filter_map(|e| e.prim.as_any().downcast_ref::<Fused>()).all(|f| f.kernel.compile_native())
}

#[cfg(feature = "native")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Fused kernels compiled to native code (whole vectors, then single elements, in
    /// parallel chunks above the threshold; scalar and broadcast operands) agree bit for bit
    /// with replay, NaN payloads aside, on values with NaNs, infinities and signed zeros.
    #[test]
    fn native_fused_kernels_agree_with_replay_bit_for_bit(
        steps in proptest::collection::vec((0u8..13, 0usize..16, 0usize..16), 1..20),
        n in prop_oneof![Just(1usize), 1usize..40, Just(70_001usize)],
        f32_ in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let dtype = if f32_ { DType::F32 } else { DType::F64 };
        let (x, y) = (special(n, seed, dtype), special(n, seed + 7, dtype));
        let f = |p: &(Tensor, Tensor)| native_program(&steps, &p.0, &p.1);
        let ir = optimize(make_ir(f)(&(x.clone(), y.clone())));
        let fused = fuse(ir.clone());
        prop_assert!(compile_all(&fused), "every kernel compiles: {}", fused);
        let ins = vec![x, y];
        let (a, b) = (run_ir(&fused, &ins)[0].to_vec::<f64>(), replay_ir(&ir, &ins)[0].to_vec::<f64>());
        for (k, (p, q)) in a.iter().zip(&b).enumerate() {
            prop_assert!(p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()), "element {}: {} vs {}", k, p, q);
        }
    }
}

/// A kernel with an operation that has no exact native form (`exp`) stays interpreted.
#[cfg(feature = "native")]
#[test]
fn kernels_with_inexact_operations_stay_interpreted() {
    let x = rand(&[64], 1, -1.0, 1.0, DType::F32);
    let fused = fuse(optimize(make_ir(|x: &Tensor| (x * 2.0).exp() + 1.0)(&x)));
    assert!(!compile_all(&fused), "{fused}");
    let fused = fuse(optimize(make_ir(|x: &Tensor| (x * 2.0).relu() + 1.0)(&x)));
    assert!(compile_all(&fused), "{fused}");
}
