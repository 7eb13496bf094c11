//! The primitive tables under `jit`: every row of `grad_table.rs` and `vmap_table.rs` (their
//! row lists, `rows/*.rs`, included here) runs under `jit`, `jit∘grad`, `grad∘jit`,
//! `vmap∘jit` and `jvp∘jit`, and must agree with the eager computation bit for bit (the
//! staged program replays the same primitives in the same order). Each jitted function is
//! called twice, so the cached program runs too.

use adjoint_core::{grad, jit, jvp, vmap, DType, Tensor};
use adjoint_tensor::random::{uniform, Key};

fn rand(shape: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    Tensor::from_array(uniform(&Key::new(seed), shape, lo, hi, DType::F64))
}

/// Per-example shapes: rank 0 to 3, with size-0 and size-1 dims.
const SHAPES: [&[usize]; 7] = [&[], &[1], &[3], &[2, 0], &[2, 3], &[3, 1, 2], &[1, 2, 2]];

/// Shape pairs that broadcast, in both orders.
const PAIRS: [(&[usize], &[usize]); 6] =
    [(&[3], &[3]), (&[2, 3], &[3]), (&[], &[2]), (&[2, 1], &[1, 3]), (&[3, 1, 2], &[2]), (&[2, 2], &[1, 2])];

#[track_caller]
fn same(got: &Tensor, want: &Tensor, ctx: &str) {
    assert_eq!((got.shape(), got.dtype()), (want.shape(), want.dtype()), "{ctx}: shape or dtype");
    let (g, w) = (got.to_vec::<f64>(), want.to_vec::<f64>());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "{ctx}: element {i}: {a} vs eager {b}"
        );
    }
}

/// `f` with its float arguments replaced by `floats`.
fn with_floats(args: &[Tensor], floats: &[Tensor]) -> Vec<Tensor> {
    let mut it = floats.iter();
    args.iter()
        .map(|t| if t.dtype().is_float() { it.next().expect("float").clone() } else { t.clone() })
        .collect()
}

/// Every composition of `jit` against eager for one set of arguments.
fn check_jit(name: &str, args: Vec<Tensor>, f: &dyn Fn(&[Tensor]) -> Tensor) {
    let ctx = format!("row {name}, shapes {:?}", args.iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>());
    let eager = f(&args);
    let jf = jit(|a: &Vec<Tensor>| f(a));
    for call in 0..2 {
        same(&jf(&args), &eager, &format!("{ctx}: jit, call {call}"));
    }

    // vmap∘jit over 3 examples stacked on axis 0.
    let examples: Vec<Vec<Tensor>> = (0..3)
        .map(|e| {
            args.iter()
                .map(|t| if e == 0 || !t.dtype().is_float() { t.clone() } else { t.sin() * (e as f64) })
                .collect()
        })
        .collect();
    let stacked: Vec<Tensor> = (0..args.len())
        .map(|j| {
            let parts: Vec<&Tensor> = examples.iter().map(|ex| &ex[j]).collect();
            Tensor::stack(&parts, 0)
        })
        .collect();
    let batched = vmap(|a: &Vec<Tensor>| f(a))(&stacked);
    same(&vmap(|a: &Vec<Tensor>| jf(a))(&stacked), &batched, &format!("{ctx}: vmap∘jit"));

    if !eager.dtype().is_float() {
        return;
    }
    let floats: Vec<Tensor> = args.iter().filter(|t| t.dtype().is_float()).cloned().collect();
    let loss = |fl: &Vec<Tensor>| f(&with_floats(&args, fl)).sum();
    let g = grad(loss)(&floats);
    let jg = jit(grad(loss));
    let gj = grad(jit(loss));
    for call in 0..2 {
        let (a, b) = (jg(&floats), gj(&floats));
        for (k, want) in g.iter().enumerate() {
            same(&a[k], want, &format!("{ctx}: jit∘grad, input {k}, call {call}"));
            same(&b[k], want, &format!("{ctx}: grad∘jit, input {k}, call {call}"));
        }
    }
    let tangents: Vec<Tensor> = floats.iter().map(|t| t.cos()).collect();
    let (y, t) = jvp(|fl: &Vec<Tensor>| f(&with_floats(&args, fl)), &floats, &tangents);
    let fj = jit(|fl: &Vec<Tensor>| f(&with_floats(&args, fl)));
    let (yj, tj) = jvp(|fl: &Vec<Tensor>| fj(fl), &floats, &tangents);
    same(&yj, &y, &format!("{ctx}: jvp∘jit, primal"));
    same(&tj, &t, &format!("{ctx}: jvp∘jit, tangent"));
}

fn check_unary(name: &str, lo: f64, hi: f64, f: impl Fn(&Tensor) -> Tensor) {
    check_unary_on(&SHAPES, name, lo, hi, f)
}

fn check_unary_on(shapes: &[&[usize]], name: &str, lo: f64, hi: f64, f: impl Fn(&Tensor) -> Tensor) {
    for (i, s) in shapes.iter().enumerate() {
        check_jit(name, vec![rand(s, 17 + i as u64, lo, hi)], &|a: &[Tensor]| f(&a[0]));
    }
}

fn check_binary(name: &str, lo: f64, hi: f64, lo2: f64, hi2: f64, f: impl Fn(&Tensor, &Tensor) -> Tensor) {
    for (i, (sa, sb)) in PAIRS.iter().enumerate() {
        let (a, b) = (rand(sa, 31 + i as u64, lo, hi), rand(sb, 57 + i as u64, lo2, hi2));
        check_jit(name, vec![a.clone(), b.clone()], &|x: &[Tensor]| f(&x[0], &x[1]));
        // The broadcast operand first.
        let (a2, b2) = (rand(sb, 91 + i as u64, lo, hi), rand(sa, 7 + i as u64, lo2, hi2));
        check_jit(name, vec![a2, b2], &|x: &[Tensor]| f(&x[0], &x[1]));
    }
}

macro_rules! unary_row {
    ($name:ident, $lo:expr_2021, $hi:expr_2021, $f:expr_2021) => {
        #[test]
        fn $name() {
            check_unary(stringify!($name), $lo, $hi, $f);
        }
    };
}

macro_rules! binary_row {
    ($name:ident, $lo:expr_2021, $hi:expr_2021, $lo2:expr_2021, $hi2:expr_2021, $f:expr_2021) => {
        #[test]
        fn $name() {
            check_binary(stringify!($name), $lo, $hi, $lo2, $hi2, $f);
        }
    };
}

mod grad_rows {
    use super::*;
    include!("rows/grad_rows.rs");
}

mod vmap_rows {
    use super::*;
    // The batching table's rows assume non-empty dims (as its own shapes have).
    const NONEMPTY: [&[usize]; 5] = [&[], &[1], &[3], &[2, 3], &[3, 1, 2]];
    macro_rules! unary {
        ($name:ident, $lo:expr_2021, $hi:expr_2021, $f:expr_2021) => {
            #[test]
            fn $name() {
                check_unary_on(&NONEMPTY, stringify!($name), $lo, $hi, $f);
            }
        };
    }
    macro_rules! binary {
        ($($t:tt)*) => { binary_row!($($t)*); };
    }
    include!("rows/vmap_rows.rs");
}

// The rows the tables test outside their row lists.

#[test]
fn matmul() {
    let shapes: [(&[usize], &[usize]); 5] =
        [(&[2, 3], &[3, 4]), (&[3], &[3, 2]), (&[2, 3], &[3]), (&[3], &[3]), (&[2, 2, 3], &[3, 1])];
    for (i, (sa, sb)) in shapes.iter().enumerate() {
        let (a, b) = (rand(sa, i as u64, -1.0, 1.0), rand(sb, 100 + i as u64, -1.0, 1.0));
        check_jit("matmul", vec![a, b], &|x: &[Tensor]| x[0].matmul(&x[1]).sin());
    }
}

#[test]
fn gather_scatter_index() {
    let x = rand(&[4, 3], 5, -1.0, 1.0);
    let idx = Tensor::from_vec(vec![0i64, 3, 1, 2, 2, 0, 1, 1, 3, 0, 0, 2], &[4, 3]);
    let sel = Tensor::from_vec(vec![2i64, 0, 2], &[3]);
    check_jit("gather_scatter_index", vec![x, idx, sel], &|a: &[Tensor]| {
        let g = a[0].gather(0, &a[1]);
        let s = a[0].scatter_add(0, &a[1], &(&g * &g));
        let t = a[0].index_select(0, &a[2]);
        s.sum() + (&t * &t).sum() + a[0].index_add(0, &a[2], &t.sin()).sum()
    });
}

#[test]
fn conv2d_and_pools() {
    let x = rand(&[2, 2, 5, 5], 1, -1.0, 1.0);
    let w = rand(&[3, 2, 2, 2], 2, -1.0, 1.0);
    let p = adjoint_core::Conv2dOptions { stride: [2, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    check_jit("conv2d", vec![x.clone(), w], &move |a: &[Tensor]| a[0].conv2d(&a[1], &p).tanh());
    let pp = adjoint_core::Pool2dOptions { kernel: [2, 2], stride: [2, 2], padding: [0, 0] };
    check_jit("pools", vec![x], &move |a: &[Tensor]| a[0].avg_pool2d(&pp, true).exp() + a[0].max_pool2d(&pp));
}

#[test]
fn select_and_concat_of_three() {
    let (a, b, c) = (rand(&[2, 3], 1, -1.0, 1.0), rand(&[3], 2, -1.0, 1.0), rand(&[2, 3], 3, -1.0, 1.0));
    check_jit("select3", vec![a.clone(), b, c.clone()], &|x: &[Tensor]| {
        Tensor::select(&x[0].gt_scalar(0.0), &x[1], &x[2])
    });
    check_jit("concat3", vec![a.clone(), c, a], &|x: &[Tensor]| Tensor::concat(&[&x[0], &x[1], &x[2]], 1));
}
