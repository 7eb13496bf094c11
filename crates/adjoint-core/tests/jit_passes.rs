//! The passes over staged programs: each fires on the pattern it targets, leaves the results
//! unchanged (bit for bit), and leaves a program the checker accepts. Also the checker itself.

use std::rc::Rc;

use adjoint_core::jit::passes::{cse, dce, fold_constants, optimize, simplify, FOLD_LIMIT};
use adjoint_core::jit::{Eqn, Ir};
use adjoint_core::primitive::Aval;
use adjoint_core::prims::{exp::Exp, mul::Mul, reduce_sum::ReduceSum};
use adjoint_core::{grad, jit, make_ir, DType, Tensor};
use smallvec::smallvec;

fn v(x: &[f64]) -> Tensor {
    Tensor::from_slice(x, &[x.len()])
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec::<f64>().iter().map(|x| x.to_bits()).collect()
}

fn names(ir: &Ir) -> Vec<&'static str> {
    ir.eqns.iter().map(|e| e.prim.name()).collect()
}

#[test]
fn dce_drops_unread_equations() {
    let f = |x: &Tensor| {
        let _unused = x.exp().sum();
        x.sin()
    };
    let x = v(&[0.5, 1.5]);
    let ir = make_ir(f)(&x);
    assert_eq!(names(&ir), ["exp", "reduce_sum", "sin"]);
    let out = dce(ir);
    out.check().unwrap();
    assert_eq!(names(&out), ["sin"]);
    assert_eq!(bits(&jit(f)(&x)), bits(&f(&x)));
}

#[test]
fn dce_fires_on_a_staged_gradient() {
    // The forward sum is not read by the backward pass of `grad`.
    let g = grad(|x: &Tensor| x.exp().sum());
    let x = v(&[0.5, 1.5]);
    let ir = make_ir(&g)(&x);
    assert!(names(&ir).contains(&"reduce_sum"), "{ir}");
    let out = dce(ir.clone());
    out.check().unwrap();
    assert!(!names(&out).contains(&"reduce_sum") && out.eqns.len() < ir.eqns.len(), "{out}");
    assert_eq!(bits(&jit(&g)(&x)), bits(&g(&x)));
}

#[test]
fn dce_renumbers_the_live_variables_densely() {
    // A gradient that folds to a constant: the trace defines thousands of variables, the
    // optimised program one input and one constant.
    let g = grad(|x: &Tensor| {
        let mut y = x.clone();
        for _ in 0..100 {
            y = &y * 1.5 + 0.25;
        }
        y.sum()
    });
    let x = v(&[2.0]);
    let ir = make_ir(&g)(&x);
    let out = optimize(ir.clone());
    out.check().unwrap();
    assert!(ir.avals.len() > 300, "{}", ir.avals.len());
    assert_eq!((out.eqns.len(), out.avals.len()), (0, 2), "{out}");
    assert_eq!(bits(&jit(&g)(&x)), bits(&g(&x)));
}

#[test]
fn cse_merges_repeated_work_only_when_the_parameters_agree() {
    let f = |x: &Tensor| {
        let a = x.exp().sum_axes(&[0], false) + x.exp().sum_axes(&[0], false);
        let b = x.exp().sum_axes(&[1], false).sum() + x.exp().sum_axes(&[0], true).sum();
        a.sum() + b
    };
    let x = Tensor::from_slice(&[0.1, 0.2, 0.3, 0.4], &[2, 2]);
    let ir = make_ir(f)(&x);
    let count = |ir: &Ir, n: &str| names(ir).iter().filter(|m| **m == n).count();
    assert_eq!(count(&ir, "exp"), 4);
    let out = cse(ir);
    out.check().unwrap();
    assert_eq!(count(&out, "exp"), 1, "{out}");
    // sum over axis 0 (twice, merged), axis 1, axis 0 keepdim: three distinct reductions
    // before the scalar sums.
    let sums: Vec<String> =
        out.eqns.iter().filter(|e| e.prim.name() == "reduce_sum").map(|e| format!("{:?}", e.prim)).collect();
    assert!(
        sums.iter().any(|s| s.contains("[1]")) && sums.iter().any(|s| s.contains("keepdim: true")),
        "{out}"
    );
    assert_eq!(bits(&jit(f)(&x)), bits(&f(&x)));
}

#[test]
fn cse_keeps_custom_calls_apart() {
    let a = adjoint_core::custom_jvp(|x: &Tensor| x * 2.0, |x: &Tensor, t: &Tensor| (x * 2.0, t * 2.0));
    let b = adjoint_core::custom_jvp(|x: &Tensor| x * 3.0, |x: &Tensor, t: &Tensor| (x * 3.0, t * 3.0));
    let f = move |x: &Tensor| a(x) + b(x);
    let x = v(&[1.0]);
    let out = cse(make_ir(&f)(&x));
    assert_eq!(names(&out).iter().filter(|n| **n == "custom_jvp").count(), 2, "{out}");
    assert_eq!(jit(f)(&x).item(), 5.0);
}

/// `{ lambda a=[1, 2] b=[3, 4] ; c. let d = mul a b; e = exp d; f = mul c e in (f) }`, built by
/// hand: staging runs ops on constants eagerly, so the fold pattern comes from other passes
/// or from programs built as data.
fn constant_program(n: usize) -> Ir {
    let aval = Aval::new(&[n], DType::F64);
    let mut ir = Ir::default();
    let (a, b, c) = (ir.new_var(aval.clone()), ir.new_var(aval.clone()), ir.new_var(aval.clone()));
    let (d, e, f) = (ir.new_var(aval.clone()), ir.new_var(aval.clone()), ir.new_var(aval));
    let ramp: Vec<f64> = (0..n).map(|i| i as f64 / n as f64).collect();
    ir.consts = vec![(a, Tensor::from_slice(&ramp, &[n])), (b, Tensor::full_of(&[n], 0.5, DType::F64))];
    ir.inputs = vec![c];
    ir.eqns = vec![
        Eqn { prim: Rc::new(Mul), ins: smallvec![a, b], outs: smallvec![d] },
        Eqn { prim: Rc::new(Exp), ins: smallvec![d], outs: smallvec![e] },
        Eqn { prim: Rc::new(Mul), ins: smallvec![c, e], outs: smallvec![f] },
    ];
    ir.outputs = vec![f];
    ir.check().unwrap();
    ir
}

fn run(ir: &Ir, x: &Tensor) -> Tensor {
    adjoint_core::jit::exec::run_ir(ir, std::slice::from_ref(x)).remove(0)
}

#[test]
fn fold_constants_evaluates_literal_equations() {
    let ir = constant_program(2);
    let x = v(&[1.0, -2.0]);
    let want = run(&ir, &x);
    let folded = fold_constants(ir);
    folded.check().unwrap();
    assert_eq!(names(&folded), ["mul"]);
    assert_eq!(bits(&run(&folded, &x)), bits(&want));
    // The constants the folded equations read are left for dce.
    let clean = dce(folded);
    clean.check().unwrap();
    assert_eq!(clean.consts.len(), 1);
    assert_eq!(bits(&run(&clean, &x)), bits(&want));
}

#[test]
fn fold_constants_leaves_large_results_alone() {
    let ir = constant_program(FOLD_LIMIT + 1);
    let out = fold_constants(ir);
    assert_eq!(names(&out), ["mul", "exp", "mul"]);
}

#[test]
fn optimize_runs_every_pass_and_the_checker() {
    let x = v(&[0.5]);
    let out = optimize(make_ir(|x: &Tensor| (x.exp() + x.exp(), x.sin().sum()).0)(&x));
    assert_eq!(names(&out), ["exp", "add"]);
}

#[test]
fn the_checker_rejects_broken_programs() {
    let mut ir = constant_program(2);
    ir.eqns.swap(0, 1);
    assert!(ir.check().unwrap_err().contains("before it is defined"));
    let mut ir = constant_program(2);
    ir.eqns[1].prim = Rc::new(ReduceSum { axes: vec![0], keepdim: false });
    assert!(ir.check().unwrap_err().contains("shape rule"));
    let mut ir = constant_program(2);
    let out = ir.eqns[0].outs[0];
    ir.eqns[2].outs[0] = out;
    assert!(ir.check().unwrap_err().contains("defined twice"));
}

#[test]
fn simplify_transposes_a_product_instead_of_its_result() {
    // The weight gradient of x·Wᵀ is staged as (xᵀ·C̄)ᵀ; simplify turns it into C̄ᵀ·x (a
    // row-major result) and drops the double transpose of x. Same bits as eager (whose rule
    // makes the same choice from the layout) and as the plain order.
    let x = Tensor::from_vec((0..12).map(|i| (i as f64 * 0.37).sin()).collect::<Vec<_>>(), &[3, 4]);
    let r = Tensor::from_vec((0..15).map(|i| (i as f64 * 0.91).cos()).collect::<Vec<_>>(), &[3, 5]);
    let w = Tensor::from_vec((0..20).map(|i| i as f64 * 0.1 - 1.0).collect::<Vec<_>>(), &[5, 4]);
    let r2 = r.clone();
    // x is an input too, so the gradient is staged rather than folded to a constant.
    let g = move |p: &(Tensor, Tensor)| grad(|w: &Tensor| (p.0.matmul(&w.t()) * &r2).sum())(&p.1);
    let xw = (x.clone(), w.clone());
    let ir = make_ir(&g)(&xw);
    let permutes = |ir: &Ir| names(ir).iter().filter(|n| **n == "permute").count();
    let out = dce(simplify(ir.clone()));
    out.check().unwrap();
    // Before: Wᵀ (forward), xᵀ, the product's transpose; after: the forward's Wᵀ is dead (the
    // gradient does not read the forward product) and C̄ᵀ is the one transpose left.
    assert!(permutes(&out) < permutes(&ir), "{ir}\n=>\n{out}");
    let last = out.eqns.iter().rev().find(|e| e.prim.name() == "matmul").expect("a product");
    assert_eq!(out.avals[last.outs[0]].shape.as_slice(), &[5, 4]);
    let plain = x.value().transpose(0, 1).matmul(r.value()).transpose(0, 1);
    let want: Vec<u64> = plain.to_vec::<f64>().iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits(&jit(&g)(&xw)), want);
    assert_eq!(bits(&g(&xw)), want);
    assert!(jit(&g)(&xw).value().is_contiguous());
    // A product read twice is left alone (rewriting would compute it twice).
    let h = |a: &Tensor| {
        let p = a.matmul(a);
        &p.t() + &p
    };
    let ir = make_ir(h)(&w.narrow(0, 0, 4));
    let out = dce(simplify(ir.clone()));
    assert_eq!(names(&out).iter().filter(|n| **n == "matmul").count(), 1, "{out}");
}
