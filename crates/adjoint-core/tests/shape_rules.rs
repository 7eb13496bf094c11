//! Every primitive's shape rule against its kernel: for each primitive, inputs of ordinary and
//! size-0 shapes; the rule's output shapes and dtypes (from abstract inputs only) must equal
//! those of the arrays the kernel actually returns. A completeness check fails when a file is
//! added under `src/prims/` without a row here.
//!
//! Misuse through a direct `bind` is caught by the rule, with the op's name and the caller's
//! line, exactly as through the op's method.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use adjoint_core::primitive::{Aval, Primitive};
use adjoint_core::prims::*;
use adjoint_core::trace::bind;
use adjoint_core::{Array, Conv2dOptions, DType, Pool2dOptions, Tensor};
use adjoint_tensor::ops::compare::CompareOp;
use adjoint_tensor::ops::unary::UnaryOp;

fn f(shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    Array::from_vec((0..n).map(|i| (i as f64 * 0.37).sin() + 1.5).collect::<Vec<f64>>(), shape)
}
fn idx(v: Vec<i64>, shape: &[usize]) -> Array {
    Array::from_vec(v, shape)
}
fn b(shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    Array::from_vec((0..n).map(|i| i % 2 == 0).collect::<Vec<bool>>(), shape)
}

/// One row: a module name (file under `src/prims/`), the primitive, and its inputs.
struct Row {
    module: &'static str,
    prim: Box<dyn Primitive>,
    args: Vec<Array>,
}

fn row(module: &'static str, prim: impl Primitive + 'static, args: Vec<Array>) -> Row {
    Row { module, prim: Box::new(prim), args }
}

fn rows() -> Vec<Row> {
    let conv = Conv2dOptions { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 2 };
    let pool = Pool2dOptions { kernel: [2, 2], stride: [2, 1], padding: [1, 0] };
    let mut r = Vec::new();
    for s in [&[2, 3][..], &[0, 3], &[]] {
        r.push(row("abs", abs::Abs, vec![f(s)]));
        r.push(row("relu", relu::Relu, vec![f(s)]));
        r.push(row("neg", neg::Neg, vec![f(s)]));
        r.push(row("sign", sign::Sign, vec![f(s)]));
        r.push(row("stop_gradient", stop_gradient::StopGradient, vec![f(s)]));
        r.push(row("exp", exp::Exp, vec![f(s)]));
        r.push(row("expm1", expm1::Expm1, vec![f(s)]));
        r.push(row("log", log::Log, vec![f(s)]));
        r.push(row("log1p", log1p::Log1p, vec![f(s)]));
        r.push(row("sin", sin::Sin, vec![f(s)]));
        r.push(row("cos", cos::Cos, vec![f(s)]));
        r.push(row("tan", tan::Tan, vec![f(s)]));
        r.push(row("tanh", tanh::Tanh, vec![f(s)]));
        r.push(row("sqrt", sqrt::Sqrt, vec![f(s)]));
        r.push(row("sigmoid", sigmoid::Sigmoid, vec![f(s)]));
        r.push(row("erf", erf::Erf, vec![f(s)]));
        r.push(row("rounding", rounding::Rounding(UnaryOp::Floor), vec![f(s)]));
        r.push(row("cast", cast::Cast(DType::I64), vec![f(s)]));
        r.push(row("cast", cast::Cast(DType::F32), vec![f(s)]));
        r.push(row("logical", logical::Logical(logical::LogicalOp::Not), vec![b(s)]));
    }
    // Binary ops with broadcasting, including a size-0 axis against a size-1 one.
    for (x, y) in [(&[2, 3][..], &[3][..]), (&[0, 1], &[1, 4]), (&[], &[2, 1])] {
        r.push(row("add", add::Add, vec![f(x), f(y)]));
        r.push(row("sub", sub::Sub, vec![f(x), f(y)]));
        r.push(row("mul", mul::Mul, vec![f(x), f(y)]));
        r.push(row("relu", relu::ReluGrad, vec![f(x), f(y)]));
        r.push(row("div", div::Div, vec![f(x), f(y)]));
        r.push(row("rem", rem::Rem, vec![f(x), f(y)]));
        r.push(row("pow", pow::Pow, vec![f(x), f(y)]));
        r.push(row("atan2", atan2::Atan2, vec![f(x), f(y)]));
        r.push(row("max_min", max_min::MaxMin { min: false }, vec![f(x), f(y)]));
        r.push(row("max_min", max_min::MaxMin { min: true }, vec![f(x), f(y)]));
        r.push(row("compare", compare::Compare(CompareOp::Lt), vec![f(x), f(y)]));
        r.push(row("logical", logical::Logical(logical::LogicalOp::And), vec![b(x), b(y)]));
        r.push(row("select", select::Select, vec![b(x), f(y), f(&[1])]));
    }
    for (x, y) in [(&[2, 3, 4][..], &[2, 4, 5][..]), (&[0, 3, 4], &[0, 4, 5]), (&[3, 0], &[0, 2])] {
        r.push(row("matmul", matmul::Matmul, vec![f(x), f(y)]));
    }
    for s in [&[2, 3, 4][..], &[2, 0, 4]] {
        r.push(row("reduce_sum", reduce_sum::ReduceSum { axes: vec![0, 2], keepdim: false }, vec![f(s)]));
        r.push(row("reduce_sum", reduce_sum::ReduceSum { axes: vec![1], keepdim: true }, vec![f(s)]));
        r.push(row("reduce_prod", reduce_prod::ReduceProd { axes: vec![1, 2], keepdim: true }, vec![f(s)]));
        r.push(row("reduce_max", reduce_max::ReduceMax { axes: vec![0, 2], keepdim: false }, vec![f(s)]));
        r.push(row("argminmax", argminmax::ArgMinMax { axis: 2, keepdim: false, min: true }, vec![f(s)]));
        r.push(row("argminmax", argminmax::ArgMinMax { axis: 0, keepdim: true, min: false }, vec![f(s)]));
        r.push(row("cumsum", cumsum::Cumsum { axis: 1 }, vec![f(s)]));
        r.push(row("flip", flip::Flip(2), vec![f(s)]));
        r.push(row("reshape", reshape::Reshape(vec![s[1], s[0] * s[2]]), vec![f(s)]));
        r.push(row("permute", permute::Permute(vec![2, 0, 1]), vec![f(s)]));
        r.push(row("broadcast", broadcast::BroadcastTo(vec![5, s[0], s[1], s[2]]), vec![f(s)]));
        r.push(row("slice", slice::Slice { axis: 2, start: 1, end: 4, step: 2 }, vec![f(s)]));
        r.push(row("slice", slice::Slice { axis: 1, start: 0, end: s[1], step: 3 }, vec![f(s)]));
        r.push(row("split", split::Split { axis: 2, sizes: vec![1, 0, 3] }, vec![f(s)]));
        r.push(row("pad", pad::Pad { pads: vec![(1, 0), (0, 2), (1, 1)], value: 0.5 }, vec![f(s)]));
        r.push(row("concat", concat::Concat(1), vec![f(s), f(&[s[0], 2, s[2]])]));
        r.push(row("gather", gather::Gather(2), vec![f(s), idx(vec![0; s[0] * s[1] * 2], &[s[0], s[1], 2])]));
        r.push(row("index_select", index_select::IndexSelect(2), vec![f(s), idx(vec![3, 0, 1], &[3])]));
        let src = f(&[s[0], s[1], 2]);
        r.push(row(
            "scatter_add",
            scatter_add::ScatterAdd(2),
            vec![f(s), idx(vec![1; s[0] * s[1] * 2], &[s[0], s[1], 2]), src.clone()],
        ));
        r.push(row("index_add", index_add::IndexAdd(2), vec![f(s), idx(vec![3, 0], &[2]), src]));
    }
    for b in [3, 0] {
        let (g4, g3, s) = (f(&[b, 8]), f(&[b, 6]), f(&[b, 2]));
        r.push(row("lstm_cell", lstm_cell::LstmCell, vec![g4.clone(), g4.clone(), s.clone()]));
        r.push(row(
            "lstm_cell",
            lstm_cell::LstmCellGrad,
            vec![g4.clone(), g4, s.clone(), s.clone(), s.clone()],
        ));
        r.push(row("gru_cell", gru_cell::GruCell, vec![g3.clone(), g3.clone(), s.clone()]));
        r.push(row("gru_cell", gru_cell::GruCellGrad, vec![g3.clone(), g3, s.clone(), s.clone()]));
        let (gs, w, hs) = (f(&[3, b, 8]), f(&[8, 2]), f(&[3, b, 2]));
        r.push(row("lstm_seq", lstm_seq::LstmSeq, vec![gs.clone(), w.clone(), s.clone(), s.clone()]));
        let ops = vec![w, s.clone(), s.clone(), hs.clone(), hs.clone(), gs.clone(), hs.clone(), hs];
        let mut with_da = ops.clone();
        with_da.push(gs);
        r.push(row("lstm_seq", lstm_seq::LstmSeqGrad { gates: false, bias: false }, ops.clone()));
        r.push(row("lstm_seq", lstm_seq::LstmSeqGrad { gates: true, bias: false }, with_da));
        r.push(row("lstm_seq", lstm_seq::LstmSeqGrad { gates: false, bias: true }, ops));
    }
    for n in [2, 0] {
        let x = f(&[n, 4, 7, 6]);
        let w = f(&[6, 2, 3, 2]);
        let out = adjoint_tensor::ops::conv::conv2d_output_shape(x.shape(), w.shape(), &conv).unwrap();
        r.push(row("conv", conv::Conv2d(conv), vec![x.clone(), w.clone()]));
        r.push(row(
            "conv",
            conv::Conv2dInputGrad { params: conv, input_shape: x.shape().to_vec() },
            vec![f(&out), w.clone()],
        ));
        r.push(row(
            "conv",
            conv::Conv2dWeightGrad { params: conv, weight_shape: w.shape().to_vec() },
            vec![x.clone(), f(&out)],
        ));
        r.push(row("max_pool2d", max_pool2d::MaxPool2d(pool), vec![x]));
    }
    r
}

#[test]
fn every_shape_rule_agrees_with_its_kernel() {
    for Row { module, prim, args } in rows() {
        let avals: Vec<Aval> = args.iter().map(Aval::of_array).collect();
        let predicted = prim.shape(&avals);
        let refs: Vec<&Array> = args.iter().collect();
        let got: Vec<Aval> = prim.eval(&refs).iter().map(Aval::of_array).collect();
        assert_eq!(predicted.as_slice(), got.as_slice(), "{module} ({}) on {avals:?}", prim.name());
    }
}

#[test]
fn every_primitive_file_has_a_row() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/prims");
    let files: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".rs") && n != "mod.rs")
        .map(|n| n.trim_end_matches(".rs").to_string())
        .collect();
    let covered: BTreeSet<String> = rows().iter().map(|r| r.module.to_string()).collect();
    let missing: Vec<&String> = files.difference(&covered).collect();
    assert!(missing.is_empty(), "primitives without a shape-rule row: {missing:?}");
}

fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("should panic");
    err.downcast_ref::<String>().cloned().unwrap_or_else(|| err.downcast_ref::<&str>().unwrap().to_string())
}

#[test]
fn a_direct_bind_is_checked_with_the_callers_line() {
    let ints = Tensor::from_vec(vec![1i64, 2], &[2]);
    let line = line!() + 1;
    let msg = panic_message(|| drop(bind(&exp::Exp, &[&ints])));
    assert!(msg.contains("exp: needs a float tensor, got int64"), "{msg}");
    assert!(msg.contains(&format!("shape_rules.rs:{line}:")), "{msg}");

    let (a, c) = (Tensor::zeros(&[2, 3]), Tensor::zeros(&[4]));
    let line = line!() + 1;
    let msg = panic_message(|| drop(bind(&add::Add, &[&a, &c])));
    assert!(msg.contains("add: cannot broadcast shapes [2, 3] and [4]"), "{msg}");
    assert!(msg.contains(&format!("shape_rules.rs:{line}:")), "{msg}");

    // Through the op's method the same rule speaks, pointing at the method's caller.
    let line = line!() + 1;
    let msg = panic_message(|| drop(a.reshape(&[5])));
    assert!(msg.contains("reshape: cannot reshape [2, 3] (6 elements) to [5] (5 elements)"), "{msg}");
    assert!(msg.contains(&format!("shape_rules.rs:{line}:")), "{msg}");

    let msg = panic_message(|| drop(a.split(1, &[1, 1])));
    assert!(msg.contains("split: sizes [1, 1] do not add up to axis 1 of shape [2, 3]"), "{msg}");
    let msg =
        panic_message(|| drop(a.sum_axes(&[0], false).max_axes(&[0], false).reshape(&[]).split(0, &[])));
    assert!(msg.contains("split: axis 0 is out of range"), "{msg}");
}

#[test]
fn recurrent_cells_name_their_operands() {
    let (g, c) = (Tensor::zeros(&[2, 8]), Tensor::zeros(&[2, 3]));
    let line = line!() + 1;
    let msg = panic_message(|| drop(Tensor::lstm_cell(&g, &g, &c)));
    assert!(
        msg.contains("lstm_cell: needs float operands of one dtype, [B, 4·H] twice then [B, H] (1)"),
        "{msg}"
    );
    assert!(msg.contains("got float32[2, 8], float32[2, 8], float32[2, 3]"), "{msg}");
    assert!(msg.contains(&format!("shape_rules.rs:{line}:")), "{msg}");
    let msg = panic_message(|| drop(Tensor::gru_cell(&g, &g.to_f64(), &c)));
    assert!(msg.contains("gru_cell: needs float operands"), "{msg}");
}

#[test]
fn rules_are_checked_inside_transforms_too() {
    // Under grad and vmap, the rule sees the per-example shapes and reports the user's line.
    let x = Tensor::zeros(&[4, 3]).to_f64();
    let line = line!() + 1;
    let msg = panic_message(|| drop(adjoint_core::vmap(|r: &Tensor| r.reshape(&[4]))(&x)));
    assert!(msg.contains("reshape: cannot reshape [3] (3 elements) to [4]"), "{msg}");
    assert!(msg.contains(&format!("shape_rules.rs:{line}:")), "{msg}");
    let msg = panic_message(|| drop(adjoint_core::grad(|r: &Tensor| r.matmul(r).sum())(&x)));
    assert!(msg.contains("matmul: inner dimensions differ"), "{msg}");
}

#[test]
fn every_primitive_maps_over_an_empty_batch() {
    // vmap over zero examples of the first input (the others shared): no kernel runs on an
    // example, and every output is `[0, per-example shape…]` as the shape rule says.
    use adjoint_core::trace::bind_multi;
    use adjoint_core::vmap::{vmap_axes, Axes};
    for Row { module, prim, args } in rows() {
        let avals: Vec<Aval> = args.iter().map(Aval::of_array).collect();
        let expect = prim.shape(&avals);
        let mut inputs: Vec<Tensor> = args.iter().map(|a| Tensor::from_array(a.clone())).collect();
        let mut empty = vec![0];
        empty.extend_from_slice(args[0].shape());
        inputs[0] = Tensor::full_of(&empty, 0.0, args[0].dtype());
        let mut axes = vec![None; inputs.len()];
        axes[0] = Some(0);
        let outs: Vec<Tensor> = vmap_axes(
            |xs: &Vec<Tensor>| {
                let refs: Vec<&Tensor> = xs.iter().collect();
                bind_multi(&*prim, &refs).into_vec()
            },
            Axes::Leaves(axes),
            0,
        )(&inputs);
        assert_eq!(outs.len(), expect.len(), "{module}");
        for (o, e) in outs.iter().zip(&expect) {
            let mut s = vec![0];
            s.extend_from_slice(&e.shape);
            assert_eq!((o.shape(), o.dtype()), (s.as_slice(), e.dtype), "{module} ({})", prim.name());
        }
    }
}
