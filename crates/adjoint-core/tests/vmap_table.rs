//! The batching table: every primitive under `vmap`, checked against running the function on
//! each example and stacking the results. Each row runs several cases; in each case the batch
//! size, which arguments are batched (the others are shared, `in_axes = None`), the batch axis
//! of every batched argument and the output axis are drawn at random from the case's seed.
//! Every case also checks `vmap(grad(sum ∘ f))` against per-example gradients (so every
//! derivative rule is batched too), and is nested in a second `vmap` (two batch axes) with its
//! own random axes.

use adjoint_core::vmap::Axes;
use adjoint_core::{grad, vmap_axes, Conv2dOptions, DType, Pool2dOptions, Tensor};
use adjoint_tensor::random::{uniform, Key};

/// A small deterministic generator for the case parameters.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn rand(shape: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    Tensor::from_array(uniform(&Key::new(seed), shape, lo, hi, DType::F64))
}

fn randint(shape: &[usize], seed: u64, n: usize) -> Tensor {
    let k = Key::new(seed);
    let v: Vec<i64> =
        k.bits(shape.iter().product()).iter().map(|b| (*b as usize % n.max(1)) as i64).collect();
    Tensor::from_vec(v, shape)
}

fn as_f64(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f64>()
}

/// Check one row: `gen(shape_seed, data_seed)` makes the arguments of one example (their shapes
/// depend on `shape_seed` only).
fn check_row(
    name: &str,
    cases: u64,
    make: impl Fn(u64, u64) -> Vec<Tensor>,
    f: impl Fn(&[Tensor]) -> Tensor,
    tol: f64,
) {
    for case in 0..cases {
        let seed = 0x5eed_0000 + case * 7919 + name.len() as u64;
        let mut rng = Rng(seed | 1);
        let size = 1 + rng.below(4);
        let examples: Vec<Vec<Tensor>> = (0..size).map(|e| make(seed, seed * 31 + e as u64 + 1)).collect();
        let nargs = examples[0].len();
        // Which args are batched (at least one) and on which axis.
        let mut axes: Vec<Option<usize>> =
            (0..nargs).map(|j| (rng.below(3) != 0).then(|| rng.below(examples[0][j].rank() + 1))).collect();
        if axes.iter().all(|a| a.is_none()) {
            let j = rng.below(nargs);
            axes[j] = Some(rng.below(examples[0][j].rank() + 1));
        }
        let stack_inputs = |examples: &[Vec<Tensor>]| -> Vec<Tensor> {
            (0..nargs)
                .map(|j| match axes[j] {
                    Some(a) => {
                        let parts: Vec<&Tensor> = examples.iter().map(|ex| &ex[j]).collect();
                        Tensor::stack(&parts, a)
                    }
                    None => examples[0][j].clone(),
                })
                .collect()
        };
        let inputs = stack_inputs(&examples);
        let per: Vec<Tensor> = (0..size)
            .map(|e| {
                let args: Vec<Tensor> = (0..nargs)
                    .map(|j| if axes[j].is_some() { examples[e][j].clone() } else { examples[0][j].clone() })
                    .collect();
                f(&args)
            })
            .collect();
        let out_axis = rng.below(per[0].rank() + 1);
        let refs: Vec<&Tensor> = per.iter().collect();
        let expected = Tensor::stack(&refs, out_axis);
        let inner = vmap_axes(|a: &Vec<Tensor>| f(a), Axes::Leaves(axes.clone()), out_axis);
        let got = inner(&inputs);
        let ctx = format!(
            "row {name}, case {case}: {size} examples, in_axes {axes:?}, out_axis {out_axis}, \
             example shapes {:?}",
            examples[0].iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>()
        );
        assert_close(&got, &expected, tol, &ctx);

        // vmap∘grad: the derivative rules of the row, batched, against per-example gradients
        // (with respect to the float arguments).
        if expected.dtype().is_float() {
            let g = |a: &Vec<Tensor>| grads_of(&f, a);
            let per_g: Vec<Vec<Tensor>> = (0..size)
                .map(|e| {
                    let args: Vec<Tensor> =
                        (0..nargs)
                            .map(|j| {
                                if axes[j].is_some() {
                                    examples[e][j].clone()
                                } else {
                                    examples[0][j].clone()
                                }
                            })
                            .collect();
                    g(&args)
                })
                .collect();
            let got_g = vmap_axes(g, Axes::Leaves(axes.clone()), 0)(&inputs);
            for (k, gk) in got_g.iter().enumerate() {
                let parts: Vec<&Tensor> = per_g.iter().map(|v| &v[k]).collect();
                assert_close(
                    gk,
                    &Tensor::stack(&parts, 0),
                    tol.max(1e-12),
                    &format!("{ctx}; vmap(grad), input {k}"),
                );
            }
        }

        // Nested: an outer vmap (2 examples, its own random axes; shared args stay shared)
        // over the inner one, against stacking the inner vmap's results.
        let second: Vec<Vec<Tensor>> = (0..size).map(|e| make(seed, seed * 31 + e as u64 + 1001)).collect();
        let inputs2 = stack_inputs(&second);
        let outer_axes: Vec<Option<usize>> = (0..nargs)
            .map(|j| {
                if axes[j].is_some() && rng.below(4) != 0 {
                    Some(rng.below(inputs[j].rank() + 1))
                } else {
                    None
                }
            })
            .collect();
        if outer_axes.iter().any(|a| a.is_some()) {
            let outer_in: Vec<Tensor> = (0..nargs)
                .map(|j| match outer_axes[j] {
                    Some(a) => Tensor::stack(&[&inputs[j], &inputs2[j]], a),
                    None => inputs[j].clone(),
                })
                .collect();
            let second_in: Vec<Tensor> = (0..nargs)
                .map(|j| if outer_axes[j].is_some() { inputs2[j].clone() } else { inputs[j].clone() })
                .collect();
            let oo = rng.below(expected.rank() + 1);
            let expected2 = Tensor::stack(&[&got, &inner(&second_in)], oo);
            let got2 = vmap_axes(&inner, Axes::Leaves(outer_axes.clone()), oo)(&outer_in);
            assert_close(
                &got2,
                &expected2,
                tol,
                &format!("{ctx}; nested in vmap over {outer_axes:?} → {oo}"),
            );
        }
    }
}

/// Gradient of `sum(f(args))` with respect to the float arguments.
fn grads_of(f: &impl Fn(&[Tensor]) -> Tensor, args: &[Tensor]) -> Vec<Tensor> {
    let floats: Vec<Tensor> = args.iter().filter(|t| t.dtype().is_float()).cloned().collect();
    grad(|fl: &Vec<Tensor>| {
        let mut it = fl.iter();
        let full: Vec<Tensor> = args
            .iter()
            .map(|t| if t.dtype().is_float() { it.next().expect("float").clone() } else { t.clone() })
            .collect();
        f(&full).sum()
    })(&floats)
}

#[track_caller]
fn assert_close(got: &Tensor, expected: &Tensor, tol: f64, ctx: &str) {
    assert_eq!(got.shape(), expected.shape(), "{ctx}: shape");
    assert_eq!(got.dtype(), expected.dtype(), "{ctx}: dtype");
    let (g, e) = (as_f64(got), as_f64(expected));
    for (i, (a, b)) in g.iter().zip(&e).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * (1.0 + b.abs());
        assert!(ok, "{ctx}: element {i}: vmap gave {a}, the reference {b}");
    }
}

/// Per-example shape of rank 0..=3 with dims 1..=3, from the shape seed.
fn shape_of(seed: u64, salt: u64) -> Vec<usize> {
    let mut r = Rng((seed ^ (salt * 0x9e37_79b9)) | 1);
    let rank = r.below(4);
    (0..rank).map(|_| 1 + r.below(3)).collect()
}

/// A shape that broadcasts against `s` (some dims 1, some leading dims dropped).
fn broadcast_partner(s: &[usize], seed: u64) -> Vec<usize> {
    let mut r = Rng(seed | 3);
    let mut b: Vec<usize> = s.iter().map(|&d| if r.below(3) == 0 { 1 } else { d }).collect();
    let drop = r.below(b.len() + 1);
    b.drain(..drop);
    b
}

const CASES: u64 = 10;

macro_rules! unary {
    ($name:ident, $lo:expr_2021, $hi:expr_2021, $f:expr_2021) => {
        #[test]
        fn $name() {
            check_row(
                stringify!($name),
                CASES,
                |s, d| vec![rand(&shape_of(s, 1), d, $lo, $hi)],
                |a: &[Tensor]| ($f)(&a[0]),
                1e-12,
            );
        }
    };
}

macro_rules! binary {
    ($name:ident, $lo:expr_2021, $hi:expr_2021, $lo2:expr_2021, $hi2:expr_2021, $f:expr_2021) => {
        #[test]
        fn $name() {
            check_row(
                stringify!($name),
                CASES,
                |s, d| {
                    let sa = shape_of(s, 2);
                    let sb = broadcast_partner(&sa, s);
                    let (sa, sb) = if s % 2 == 0 { (sa, sb) } else { (sb, sa) };
                    vec![rand(&sa, d, $lo, $hi), rand(&sb, d ^ 0x77, $lo2, $hi2)]
                },
                |a: &[Tensor]| ($f)(&a[0], &a[1]),
                1e-12,
            );
        }
    };
}

include!("rows/vmap_rows.rs");

#[test]
fn select_three_batched_operands() {
    check_row(
        "select3",
        CASES,
        |s, d| {
            let sa = shape_of(s, 3);
            vec![
                rand(&broadcast_partner(&sa, s ^ 5), d, -1.0, 1.0),
                rand(&sa, d ^ 1, -1.0, 1.0),
                rand(&broadcast_partner(&sa, s ^ 9), d ^ 2, -1.0, 1.0),
            ]
        },
        |a: &[Tensor]| Tensor::select(&a[0].gt_scalar(0.0), &a[1], &a[2]),
        0.0,
    );
}

#[test]
fn concat_of_shared_and_batched() {
    check_row(
        "concat3",
        CASES,
        |s, d| {
            let mut sa = shape_of(s, 4);
            if sa.is_empty() {
                sa.push(2);
            }
            let mut sb = sa.clone();
            sb[0] += 1;
            vec![rand(&sa, d, -1.0, 1.0), rand(&sb, d ^ 1, -1.0, 1.0), rand(&sa, d ^ 2, -1.0, 1.0)]
        },
        |a: &[Tensor]| Tensor::concat(&[&a[0], &a[1], &a[2]], 0),
        0.0,
    );
}

#[test]
fn matmul_shapes() {
    // (lhs shape, rhs shape) per-example pairs: matrices, vectors, batched stacks, broadcasting.
    let shapes: [(&[usize], &[usize]); 6] = [
        (&[2, 3], &[3, 4]),
        (&[3], &[3, 2]),
        (&[2, 3], &[3]),
        (&[3], &[3]),
        (&[2, 2, 3], &[3, 1]),
        (&[1, 3], &[3, 2]),
    ];
    for (i, (sa, sb)) in shapes.iter().enumerate() {
        check_row(
            &format!("matmul{i}"),
            CASES,
            |_, d| vec![rand(sa, d, -1.0, 1.0), rand(sb, d ^ 3, -1.0, 1.0)],
            |a: &[Tensor]| a[0].matmul(&a[1]),
            1e-12,
        );
    }
}

#[test]
fn gather_and_scatter_add() {
    check_row(
        "gather_scatter",
        CASES,
        |s, d| {
            let rows = 1 + (s % 3) as usize;
            vec![
                rand(&[rows, 3], d, -1.0, 1.0),
                randint(&[2, 3], d ^ 4, rows),
                rand(&[2, 3], d ^ 5, -1.0, 1.0),
            ]
        },
        |a: &[Tensor]| {
            let g = a[0].gather(0, &a[1]);
            a[0].scatter_add(0, &a[1], &(&g * &a[2]))
        },
        1e-12,
    );
}

#[test]
fn index_select_and_index_add() {
    check_row(
        "index",
        CASES,
        |s, d| {
            let rows = 1 + (s % 3) as usize;
            vec![rand(&[2, rows], d, -1.0, 1.0), randint(&[4], d ^ 4, rows), rand(&[2, 4], d ^ 5, -1.0, 1.0)]
        },
        |a: &[Tensor]| {
            let t = a[0].index_select(1, &a[1]);
            a[0].index_add(1, &a[1], &(&t * &a[2]))
        },
        1e-12,
    );
}

#[test]
fn conv2d_shared_and_batched_weights() {
    for groups in [1, 2] {
        let p = Conv2dOptions { stride: [2, 1], padding: [1, 0], dilation: [1, 1], groups };
        check_row(
            "conv2d",
            CASES,
            |_, d| {
                vec![
                    rand(&[2, 2 * groups, 5, 4], d, -1.0, 1.0),
                    rand(&[2 * groups, 2, 3, 2], d ^ 6, -1.0, 1.0),
                ]
            },
            |a: &[Tensor]| a[0].conv2d(&a[1], &p),
            1e-12,
        );
    }
}

#[test]
fn conv2d_transposes_through_grad() {
    // The convolution's input- and weight-gradient primitives, batched inside vmap(vjp).
    let p = Conv2dOptions { stride: [1, 2], padding: [1, 1], dilation: [1, 1], groups: 1 };
    check_row(
        "conv2d_grads",
        CASES,
        |_, d| {
            vec![
                rand(&[1, 2, 4, 5], d, -1.0, 1.0),
                rand(&[3, 2, 2, 3], d ^ 6, -1.0, 1.0),
                rand(&[1, 3, 5, 3], d ^ 7, -1.0, 1.0),
            ]
        },
        |a: &[Tensor]| {
            let (_, pb) =
                adjoint_core::vjp(|q: &(Tensor, Tensor)| q.0.conv2d(&q.1, &p), &(a[0].clone(), a[1].clone()));
            let (gx, gw) = pb(&a[2]);
            gx.sum()
                + gw.sum() * 3.0
                + gx.flatten().narrow(0, 0, 5).sum() * gw.flatten().narrow(0, 0, 5).sum()
        },
        1e-10,
    );
}

#[test]
fn pooling() {
    let pp = Pool2dOptions { kernel: [2, 2], stride: [1, 2], padding: [0, 0] };
    check_row(
        "pool",
        CASES,
        |_, d| vec![rand(&[2, 2, 4, 5], d, -1.0, 1.0)],
        |a: &[Tensor]| a[0].max_pool2d(&pp) + a[0].avg_pool2d(&pp, true),
        1e-12,
    );
}
