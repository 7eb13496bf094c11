//! Scalarised programs (`jit::small`): which programs qualify, and that a scalarised program
//! and a `scan` run on it agree with the array path — bit for bit on random programs of
//! elementwise ops, slices, pads, concatenations and broadcasts — and that gradients through a
//! small-bodied scan match the unrolled loop.

#[path = "common/pendulum.rs"]
mod pendulum;

use adjoint_core::jit::exec::replay_ir;
use adjoint_core::jit::passes::optimize;
use adjoint_core::jit::small::SmallPlan;
use adjoint_core::{grad, jit, make_ir, scan, value_and_grad, DType, Tensor};
use adjoint_tensor::random::{uniform, Key};
use adjoint_tensor::Array;
use pendulum::{pendulum, rollout};
use proptest::prelude::*;

fn rand(shape: &[usize], seed: u64, lo: f64, hi: f64, dtype: DType) -> Tensor {
    Tensor::from_array(uniform(&Key::new(seed), shape, lo, hi, dtype))
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec::<f64>().iter().map(|x| x.to_bits()).collect()
}

/// A random program on `[3]` vectors mixing elementwise ops with data movement.
fn random_program(steps: &[(u8, usize, usize)], x: &Tensor, y: &Tensor) -> Tensor {
    let mut vals = vec![x.clone(), y.clone()];
    for &(op, i, j) in steps {
        let (a, b) = (&vals[i % vals.len()], &vals[j % vals.len()]);
        let v = match op % 15 {
            0 => a + b,
            1 => a * b,
            2 => a - b,
            3 => a.tanh(),
            4 => a.sin(),
            5 => a.maximum(b),
            6 => a / &(b.abs() + 1.0),
            7 => Tensor::select(&a.greater(b), a, b),
            // Data movement: reverse by slices and concat, a pad, a broadcast sum.
            8 => Tensor::concat(&[&a.narrow(0, 2, 1), &a.narrow(0, 1, 1), &a.narrow(0, 0, 1)], 0),
            9 => a.narrow(0, 1, 2).pad(&[(1, 0)], 0.0) * b,
            10 => a + &b.narrow(0, 0, 1),
            11 => a.reshape(&[3, 1]).broadcast_to(&[3, 2]).reshape(&[6]).narrow(0, 1, 3) - b,
            // Signs and products under sums (the scalar program's negation and
            // multiply-add rewrites).
            12 => -a,
            13 => &(-a) - &(a * b),
            _ => &(-(a * 3.0)) + &(-b),
        };
        vals.push(v);
    }
    vals.last().unwrap().clone()
}

/// Runs the scalarised program in the interpreter and, compiled, as native code: the two
/// agree bit for bit (NaN payloads aside); returns the interpreter's result.
fn run_small(ir: &adjoint_core::jit::Ir, ins: &[Tensor]) -> Vec<Tensor> {
    let sp = SmallPlan::new(ir).unwrap_or_else(|| panic!("a small program qualifies: {ir}"));
    let arrays: Vec<Array> = ins.iter().map(|t| t.value().clone()).collect();
    let refs: Vec<&Array> = arrays.iter().collect();
    let shapes: Vec<Vec<usize>> = ir.outputs.iter().map(|&v| ir.avals[v].shape.to_vec()).collect();
    let interpreted: Vec<Tensor> = if sp.is_native() {
        // `ADJOINT_JIT_NATIVE=1`: compiled at its first run; interpret a fresh copy instead.
        let fresh = SmallPlan::new(ir).expect("qualifies");
        fresh.run(&refs, &shapes).into_iter().map(Tensor::from_array).collect()
    } else {
        sp.run(&refs, &shapes).into_iter().map(Tensor::from_array).collect()
    };
    #[cfg(feature = "native")]
    {
        assert!(sp.compile_native(), "Cranelift compiles every scalarised program");
        let native: Vec<Tensor> = sp.run(&refs, &shapes).into_iter().map(Tensor::from_array).collect();
        for (a, b) in interpreted.iter().zip(&native) {
            let same = a
                .to_vec::<f64>()
                .iter()
                .zip(b.to_vec::<f64>())
                .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()));
            assert!(same, "native {b:?} vs interpreted {a:?} for {ir}");
        }
    }
    interpreted
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn scalarised_programs_agree_with_replay_bit_for_bit(
        steps in proptest::collection::vec((0u8..15, 0usize..16, 0usize..16), 1..20),
        f32_ in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let dtype = if f32_ { DType::F32 } else { DType::F64 };
        let x = rand(&[3], seed, -2.0, 2.0, dtype);
        let y = rand(&[3], seed + 1, -2.0, 2.0, dtype);
        let f = |p: &(Tensor, Tensor)| random_program(&steps, &p.0, &p.1);
        for ir in [make_ir(f)(&(x.clone(), y.clone())), optimize(make_ir(f)(&(x.clone(), y.clone())))] {
            let ins = vec![x.clone(), y.clone()];
            let (a, b) = (run_small(&ir, &ins), replay_ir(&ir, &ins));
            prop_assert_eq!(bits(&a[0]), bits(&b[0]));
        }
        // The reverse pass (pads, sums of cotangents) scalarises too.
        let g = grad(|p: &(Tensor, Tensor)| random_program(&steps, &p.0, &p.1).sum());
        let ir = make_ir(&g)(&(x.clone(), y.clone()));
        let ins = vec![x.clone(), y.clone()];
        let (a, b) = (run_small(&ir, &ins), replay_ir(&ir, &ins));
        for (u, v) in a.iter().zip(&b) {
            let (u, v) = (u.to_vec::<f64>(), v.to_vec::<f64>());
            for (p, q) in u.iter().zip(&v) {
                // A reduce_sum adds in index order here; the array kernel may pair differently.
                prop_assert!((p - q).abs() <= 1e-5 * q.abs().max(1.0), "{} vs {}", p, q);
            }
        }
    }
}

/// Scalarising exposes work no output needs and repeats: elements of a vector only one of
/// which is read, a broadcast operand's elements computed once per copy. The scalar program
/// drops the first and computes the second once, with bit-identical results.
#[test]
fn scalarised_programs_drop_dead_elements_and_repeats() {
    for dtype in [DType::F32, DType::F64] {
        let x = rand(&[4], 3, -1.0, 1.0, dtype);
        // Four products, one read: one instruction.
        let ir = optimize(make_ir(|x: &Tensor| (x * 3.0).narrow(0, 1, 1))(&x));
        let sp = SmallPlan::new(&ir).expect("qualifies");
        assert_eq!(sp.len(), 1, "{ir}");
        let ins = [x.clone()];
        let (a, b) = (run_small(&ir, &ins), replay_ir(&ir, &ins));
        assert_eq!(bits(&a[0]), bits(&b[0]));
        // exp of a [3, 4] broadcast of x: four exps (not twelve), then the column sums.
        let ir = optimize(make_ir(|x: &Tensor| x.broadcast_to(&[3, 4]).exp().sum_axes(&[0], false))(&x));
        let sp = SmallPlan::new(&ir).expect("qualifies");
        assert_eq!(sp.len(), 4 + 4 * 2, "{ir}");
        let (a, b) = (run_small(&ir, &ins), replay_ir(&ir, &ins));
        assert_eq!(bits(&a[0]), bits(&b[0]));
    }
}

/// Negations are carried as signs and absorbed by sums, products and differences, and a
/// product read once by a sum is fused into it: fewer instructions, the same bits — signed
/// zeros included (`(−a) + (−b)` of `a = −b` is `+0`, which `−(a + b)` would not give).
#[test]
fn scalarised_signs_and_multiply_adds_are_exact() {
    let f = |p: &(Tensor, Tensor)| {
        let (a, b) = (&p.0, &p.1);
        let (na, nb) = (-a, -b);
        let s1 = &na + &nb;
        let s2 = &na - b;
        let s3 = &(&na * b) + &(a * 2.0);
        let s4 = a - &(&nb * &na);
        let s5 = -&(&(&na / b) - &nb);
        Tensor::concat(&[&s1, &s2, &s3, &s4, &s5, &na.sin()], 0)
    };
    for dtype in [DType::F32, DType::F64] {
        let a = Tensor::from_vec(vec![0.0, -0.0, 1.5, -2.25], &[4]).cast(dtype);
        let b = Tensor::from_vec(vec![-0.0, 0.0, -1.5, 0.75], &[4]).cast(dtype);
        let ir = optimize(make_ir(f)(&(a.clone(), b.clone())));
        let sp = SmallPlan::new(&ir).expect("qualifies");
        let ins = [a.clone(), b.clone()];
        let (x, y) = (run_small(&ir, &ins), replay_ir(&ir, &ins));
        assert_eq!(bits(&x[0]), bits(&y[0]), "{ir}");
        // Per element: `−a` once (for s1, s2 and the sin), s1 1, s2 1, s3 2 (`a·2` fused
        // into the difference with `a·b`), s4 1 (fused), s5 3 (the output's sign), sin 1 —
        // 10 instead of 15.
        assert_eq!(sp.len(), 4 * 10, "{ir}");
    }
}

/// A plan runs in the interpreter until it has run `NATIVE_THRESHOLD` instructions, then as
/// native code (unless `ADJOINT_JIT_NATIVE` says otherwise), with the same bits (the scan-level
/// version, which counts compilations, is `tests/jit_native.rs`: alone in its process).
#[cfg(feature = "native")]
#[test]
fn hot_plans_are_compiled_to_native_code_with_the_same_bits() {
    use adjoint_core::jit::NATIVE_THRESHOLD;
    let policy = std::env::var("ADJOINT_JIT_NATIVE").unwrap_or_default();
    let x = rand(&[8], 4, -1.0, 1.0, DType::F64);
    let ir = optimize(make_ir(|x: &Tensor| (x.sin() * x.cos() + x * 0.5).tanh())(&x));
    let sp = SmallPlan::new(&ir).expect("qualifies");
    let mut r = sp.registers::<f64>();
    for (&i, v) in sp.input(0).iter().zip(x.to_vec::<f64>()) {
        r[i as usize] = v;
    }
    let runs_to_compile = NATIVE_THRESHOLD / sp.len() as u64 + 1;
    let mut first: Option<Vec<u64>> = None;
    for k in 0..runs_to_compile + 2 {
        match policy.as_str() {
            "0" => assert!(!sp.is_native()),
            "1" => assert!(k == 0 || sp.is_native()),
            _ => assert_eq!(sp.is_native(), k >= runs_to_compile, "after {k} runs"),
        }
        sp.exec(&mut r);
        let out: Vec<u64> = sp.output(0).iter().map(|&o| r[o as usize].to_bits()).collect();
        assert_eq!(first.get_or_insert_with(|| out.clone()), &out, "run {k}");
    }
}

#[test]
fn only_small_single_dtype_programs_qualify() {
    let x = Tensor::zeros(&[4]).to_f64();
    assert!(SmallPlan::new(&make_ir(|x: &Tensor| (x.sin() * 2.0).sum())(&x)).is_some());
    // Too many elements (more than `SMALL_LIMIT`).
    let big = Tensor::zeros(&[257]).to_f64();
    assert!(SmallPlan::new(&make_ir(|x: &Tensor| x.sin())(&big)).is_none());
    // A matrix product is not scalarised.
    let m = Tensor::zeros(&[2, 2]).to_f64();
    assert!(SmallPlan::new(&make_ir(|x: &Tensor| x.matmul(x))(&m)).is_none());
    // Mixed dtypes are not.
    assert!(SmallPlan::new(&make_ir(|x: &Tensor| x.cast(DType::F32).sin())(&x)).is_none());
}

fn rollout_unrolled(us: &Tensor) -> Tensor {
    let z = Tensor::full_of(&[1], 0.3, us.dtype());
    let mut c = (z.clone(), z);
    let mut ys = Vec::new();
    for t in 0..us.shape()[0] {
        let (n, y) = pendulum(&c, &us.narrow(0, t, 1).reshape(&[2]));
        c = n;
        ys.push(y);
    }
    let refs: Vec<&Tensor> = ys.iter().collect();
    (&c.0 * &c.1).sum() + Tensor::stack(&refs, 0).sum()
}

#[test]
fn a_small_bodied_scan_matches_the_unrolled_loop_in_value_and_gradient() {
    let us = rand(&[50, 2], 3, -1.0, 1.0, DType::F64);
    let (l0, g0) = value_and_grad(rollout_unrolled)(&us);
    for (l, g) in [value_and_grad(rollout)(&us), jit(value_and_grad(rollout))(&us)] {
        assert!((l.item() - l0.item()).abs() <= 1e-13 * l0.item().abs().max(1.0));
        for (a, b) in g.to_vec::<f64>().iter().zip(g0.to_vec::<f64>()) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-3), "{a} vs {b}");
        }
    }
    // The eager scan (no transform: the body's scalarised plan) equals the unrolled value
    // bit for bit: same per-element functions, same order.
    assert_eq!(rollout(&us).item().to_bits(), rollout_unrolled(&us).item().to_bits());
    // Second order through the scalarised scan (its VJP body is again a small program).
    let h = grad(|u: &Tensor| grad(rollout)(u).sum());
    let h0 = grad(|u: &Tensor| grad(rollout_unrolled)(u).sum());
    for (a, b) in h(&us).to_vec::<f64>().iter().zip(h0(&us).to_vec::<f64>()) {
        assert!((a - b).abs() <= 1e-10 * b.abs().max(1e-3), "{a} vs {b}");
    }
}

/// A scan over a random body (optionally with a `cond` inside) and the same steps as a Rust
/// loop; the loss sums the final carry and the stacked outputs.
fn scan_loss(steps: &[(u8, usize, usize)], with_cond: bool, xs: &Tensor, staged: bool) -> Tensor {
    let body = |c: &Tensor, x: &Tensor| {
        let v = random_program(steps, c, x);
        let v = if with_cond {
            adjoint_core::cond(&v.sum().gt_scalar(0.0), |v: &Tensor| v * 0.5, |v: &Tensor| v.sin(), &v)
        } else {
            v
        };
        (v.tanh(), v.sum())
    };
    let init = Tensor::full_of(&[3], 0.1, xs.dtype());
    if staged {
        let (c, ys) = scan(body, &init, xs);
        c.sum() + ys.sum()
    } else {
        let mut c = init;
        let mut total = Tensor::full_of(&[], 0.0, xs.dtype());
        for t in 0..xs.shape()[0] {
            let (n, y) = body(&c, &xs.narrow(0, t, 1).reshape(&[3]));
            c = n;
            total = total + y;
        }
        c.sum() + total
    }
}

fn close(a: &Tensor, b: &Tensor, tol: f64) -> Result<(), TestCaseError> {
    for (p, q) in a.to_vec::<f64>().iter().zip(b.to_vec::<f64>()) {
        prop_assert!((p - q).abs() <= tol * q.abs().max(1.0), "{} vs {}", p, q);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    /// Random bodies through `scan` (and `cond`), eagerly, under `jit`, `grad`, `jit∘grad`
    /// and `grad∘jit`, against the Rust loop: the scalarised path, the stored residuals and
    /// the array path (a body with `cond` is not scalarised) all agree.
    #[test]
    fn scan_and_cond_of_random_bodies_agree_with_the_rust_loop(
        steps in proptest::collection::vec((0u8..15, 0usize..16, 0usize..16), 1..12),
        n in 1usize..6,
        with_cond in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let xs = rand(&[n, 3], seed, -1.0, 1.0, DType::F64);
        let staged = |x: &Tensor| scan_loss(&steps, with_cond, x, true);
        let looped = |x: &Tensor| scan_loss(&steps, with_cond, x, false);
        let want = looped(&xs);
        close(&jit(staged)(&xs), &want, 1e-12)?;
        let g0 = grad(looped)(&xs);
        close(&grad(staged)(&xs), &g0, 1e-9)?;
        close(&jit(grad(staged))(&xs), &g0, 1e-9)?;
        close(&grad(jit(staged))(&xs), &g0, 1e-9)?;
    }
}

/// The scalarised scan's per-step moves: a carry whose outputs are other carries' inputs
/// (a swap, moved through a buffer), a carry passed through unchanged, and an `x` of which
/// the body reads one element. Under `jit` (the scalarised loop) the values equal the Rust
/// loop's bit for bit, and so do the gradients of this sign-and-sum body.
#[test]
fn scalarised_scan_moves_swapped_carries_and_skips_unread_x() {
    type C = (Tensor, Tensor, Tensor);
    let body = |c: &C, x: &Tensor| {
        let (a, b, k) = c;
        let y = -&(a * &x.narrow(0, 1, 1));
        ((b.clone(), &(-a) + &(&x.narrow(0, 1, 1) * 0.5), k.clone()), y)
    };
    let staged = |xs: &Tensor| {
        let init = (
            Tensor::from_vec(vec![0.25f32], &[1]),
            Tensor::from_vec(vec![-1.5f32], &[1]),
            xs.narrow(0, 0, 1).reshape(&[2]),
        );
        let ((a, b, k), ys) = scan(body, &init, xs);
        &(&(&a * 3.0) + &b) + &(&k.sum() + &ys.sum())
    };
    let looped = |xs: &Tensor| {
        let mut c = (
            Tensor::from_vec(vec![0.25f32], &[1]),
            Tensor::from_vec(vec![-1.5f32], &[1]),
            xs.narrow(0, 0, 1).reshape(&[2]),
        );
        let mut ys = Vec::new();
        for t in 0..xs.shape()[0] {
            let (n, y) = body(&c, &xs.narrow(0, t, 1).reshape(&[2]));
            c = n;
            ys.push(y);
        }
        let refs: Vec<&Tensor> = ys.iter().collect();
        &(&(&c.0 * 3.0) + &c.1) + &(&c.2.sum() + &Tensor::stack(&refs, 0).sum())
    };
    let xs = rand(&[7, 2], 11, -1.0, 1.0, DType::F32);
    assert_eq!(bits(&jit(staged)(&xs)), bits(&looped(&xs)));
    let (g, g0) = (jit(grad(staged))(&xs), grad(looped)(&xs));
    assert_eq!(bits(&g), bits(&g0));
}
