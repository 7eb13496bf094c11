//! The primitive table: every differentiable primitive through `check_grads` (order 2, forward
//! and reverse) in f64, on random shapes with broadcasting and size-0/size-1 axes (proptest),
//! plus special points.

use adjoint_core::testing::{check_grads, try_check_grads, BOTH};
use adjoint_core::{DType, Tensor};
use adjoint_tensor::random::{uniform, Key};
use proptest::prelude::*;

fn rand(shape: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    Tensor::from_array(uniform(&Key::new(seed), shape, lo, hi, DType::F64))
}

/// Shapes of rank 0..=3 with dims in 0..=3 (size-0 and size-1 included).
fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4, 0..4)
}

/// A shape and a second shape that broadcasts against it (some dims set to 1, some leading
/// dims dropped).
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (prop::collection::vec(1usize..4, 0..4), prop::collection::vec(any::<bool>(), 4), 0usize..3).prop_map(
        |(a, ones, drop)| {
            let mut b: Vec<usize> = a.iter().zip(&ones).map(|(&d, &o)| if o { 1 } else { d }).collect();
            let drop = drop.min(b.len());
            b.drain(..drop);
            (a, b)
        },
    )
}

fn cfg() -> ProptestConfig {
    ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() }
}

macro_rules! unary_row {
    ($name:ident, $lo:expr_2021, $hi:expr_2021, $f:expr_2021) => {
        proptest! {
            #![proptest_config(cfg())]
            #[test]
            fn $name(s in shape(), seed in any::<u64>()) {
                let x = rand(&s, seed, $lo, $hi);
                if let Err(e) = try_check_grads($f, &x, 2, BOTH, seed) {
                    return Err(TestCaseError::fail(format!("shape {s:?}: {e}")));
                }
            }
        }
    };
}

macro_rules! binary_row {
    ($name:ident, $lo:expr_2021, $hi:expr_2021, $lo2:expr_2021, $hi2:expr_2021, $f:expr_2021) => {
        proptest! {
            #![proptest_config(cfg())]
            #[test]
            fn $name((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
                let a = rand(&sa, seed, $lo, $hi);
                let b = rand(&sb, seed ^ 0x9e37, $lo2, $hi2);
                let r1 = try_check_grads(|p: &(Tensor, Tensor)| $f(&p.0, &p.1), &(a.clone(), b.clone()), 2, BOTH, seed);
                if let Err(e) = r1 {
                    return Err(TestCaseError::fail(format!("shapes {sa:?}, {sb:?}: {e}")));
                }
                // And with the operands swapped (the broadcast one first).
                let r2 = try_check_grads(|p: &(Tensor, Tensor)| $f(&p.1, &p.0), &(a, b), 2, BOTH, seed);
                if let Err(e) = r2 {
                    return Err(TestCaseError::fail(format!("swapped shapes {sb:?}, {sa:?}: {e}")));
                }
            }
        }
    };
}

include!("rows/grad_rows.rs");

proptest! {
    #![proptest_config(cfg())]
    #[test]
    fn matmul_batched((m, k, n, batch) in (0usize..4, 0usize..4, 0usize..4, 0usize..3), seed in any::<u64>()) {
        let a = rand(&[batch, m, k], seed, -1.0, 1.0);
        let b = rand(&[k, n], seed ^ 7, -1.0, 1.0);
        let r = try_check_grads(|p: &(Tensor, Tensor)| p.0.matmul(&p.1), &(a, b), 2, BOTH, seed);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        let v = rand(&[k], seed ^ 9, -1.0, 1.0);
        let b2 = rand(&[m, k], seed ^ 11, -1.0, 1.0);
        let r = try_check_grads(|p: &(Tensor, Tensor)| p.1.matmul(&p.0).sin(), &(v, b2), 2, BOTH, seed);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn gather_scatter_index(rows in 1usize..5, cols in 1usize..4, seed in any::<u64>()) {
        let x = rand(&[rows, cols], seed, -1.0, 1.0);
        let key = Key::new(seed);
        let idx: Vec<i64> = key.bits(rows * cols).iter().map(|b| (*b as usize % rows) as i64).collect();
        let idx = Tensor::from_vec(idx, &[rows, cols]);
        let sel: Vec<i64> = key.fold_in(1).bits(3).iter().map(|b| (*b as usize % rows) as i64).collect();
        let sel = Tensor::from_vec(sel, &[3]);
        let (i1, i2) = (idx.clone(), sel.clone());
        let r = try_check_grads(move |x: &Tensor| {
            let g = x.gather(0, &i1);
            let s = x.scatter_add(0, &i1, &(&g * &g));
            let t = x.index_select(0, &i2);
            s.sum() + (&t * &t).sum() + x.index_add(0, &i2, &t.sin()).sum()
        }, &x, 2, BOTH, seed);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn conv2d_and_pools(n in 1usize..3, c in 1usize..3, hw in 3usize..6, stride in 1usize..3, pad in 0usize..2, seed in any::<u64>()) {
        let x = rand(&[n, c, hw, hw], seed, -1.0, 1.0);
        let w = rand(&[2, c, 2, 2], seed ^ 3, -1.0, 1.0);
        let p = adjoint_core::Conv2dOptions { stride: [stride, 1], padding: [pad, 1], dilation: [1, 1], groups: 1 };
        let r = try_check_grads(move |q: &(Tensor, Tensor)| q.0.conv2d(&q.1, &p).tanh(), &(x.clone(), w), 2, BOTH, seed);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        let pp = adjoint_core::Pool2dOptions { kernel: [2, 2], stride: [stride, stride], padding: [0, 0] };
        // Max pooling has a kink wherever two values of a window tie: uniform draws can land
        // within the finite-difference step of each other (seed 13928417425469842737 drew
        // 0.72195488 and 0.72195434), so the pooled input is a random permutation of evenly
        // spaced values, at least 2/50 apart.
        let m = n * c * hw * hw;
        let order = rand(&[m], seed ^ 5, 0.0, 1.0).to_vec::<f64>();
        let mut idx: Vec<usize> = (0..m).collect();
        idx.sort_by(|a, b| order[*a].total_cmp(&order[*b]));
        let mut vals = vec![0.0f64; m];
        for (k, &i) in idx.iter().enumerate() {
            vals[i] = -1.0 + 2.0 * k as f64 / m as f64;
        }
        let x = Tensor::from_vec(vals, &[n, c, hw, hw]);
        let r = try_check_grads(move |x: &Tensor| x.avg_pool2d(&pp, true).exp() + x.max_pool2d(&pp), &x, 2, BOTH, seed);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

#[test]
fn cast_between_floats_passes_derivatives_through() {
    // Finite differences cannot see through f32 rounding, so the rule is checked exactly.
    use adjoint_core::{grad, jvp};
    let x = Tensor::from_vec(vec![0.5f64, -2.0], &[2]);
    let f = |x: &Tensor| (x.cast(DType::F32) * 3.0).cast(DType::F64).sum();
    assert_eq!(grad(f)(&x).to_vec::<f64>(), vec![3.0, 3.0]);
    let (_, t) = jvp(|x: &Tensor| x.cast(DType::F32), &x, &Tensor::from_vec(vec![1.0f64, 2.0], &[2]));
    assert_eq!((t.dtype(), t.to_vec::<f32>()), (DType::F32, vec![1.0, 2.0]));
    // Second order through the casts.
    let h = grad(|x: &Tensor| {
        grad(|y: &Tensor| (y.cast(DType::F32) * y.cast(DType::F32)).cast(DType::F64).sum())(x).sum()
    })(&x);
    assert_eq!(h.to_vec::<f64>(), vec![2.0, 2.0]);
}

#[test]
fn special_points_have_documented_derivatives() {
    use adjoint_core::grad;
    let z = Tensor::scalar(0.0f64);
    // |x| at 0: subgradient 0.
    assert_eq!(grad(|x: &Tensor| x.abs())(&z).item(), 0.0);
    // relu at 0: 0.
    assert_eq!(grad(|x: &Tensor| x.relu())(&z).item(), 0.0);
    // sqrt at 0: +inf (documented), norm at 0: 0.
    assert_eq!(grad(|x: &Tensor| x.sqrt())(&z).item(), f64::INFINITY);
    assert_eq!(grad(|x: &Tensor| x.norm())(&Tensor::zeros(&[2]).to_f64()).to_vec::<f64>(), vec![0.0, 0.0]);
    // max with ties: the derivative is shared equally.
    let t = Tensor::from_vec(vec![1.0f64, 3.0, 3.0], &[3]);
    assert_eq!(grad(|x: &Tensor| x.max())(&t).to_vec::<f64>(), vec![0.0, 0.5, 0.5]);
    let g = grad(|p: &(Tensor, Tensor)| p.0.maximum(&p.1).sum())(&(z.clone(), z.clone()));
    assert_eq!((g.0.item(), g.1.item()), (0.5, 0.5));
    // pow at a zero base with a positive exponent: finite.
    let g = grad(|p: &(Tensor, Tensor)| p.0.pow(&p.1))(&(z.clone(), Tensor::scalar(2.0f64)));
    assert_eq!((g.0.item(), g.1.item()), (0.0, 0.0));
    // prod with one zero factor: exact derivative.
    let v = Tensor::from_vec(vec![2.0f64, 0.0, 3.0], &[3]);
    assert_eq!(grad(|x: &Tensor| x.prod_axes(&[0], false))(&v).to_vec::<f64>(), vec![0.0, 6.0, 0.0]);
    // Large magnitudes keep finite second derivatives in softplus/logsumexp.
    let big = Tensor::from_vec(vec![-50.0f64, 50.0], &[2]);
    check_grads(|x: &Tensor| x.softplus().sum() + x.logsumexp(&[0], false), &big, 2, BOTH);
}

/// `Σ f(x, c)` as a function of `x` alone, with `c` held as a constant.
type ScalarFn = std::rc::Rc<dyn Fn(&Tensor) -> Tensor>;

fn with_const(c: &Tensor, f: fn(&Tensor, &Tensor) -> Tensor) -> ScalarFn {
    let c = c.clone();
    std::rc::Rc::new(move |x: &Tensor| f(x, &c).sum())
}

/// A constant `[2, 3]`, a constant row `[3]`, and points `[2, 3]` and `[3]`.
fn const_fixtures() -> (Tensor, Tensor, Tensor, Tensor) {
    (
        rand(&[2, 3], 5, -1.0, 1.0),
        rand(&[3], 6, -1.0, 1.0),
        rand(&[2, 3], 7, -1.0, 1.0),
        rand(&[3], 8, -1.0, 1.0),
    )
}

/// Each case's gradient against its expected values, then `check_grads` (order 2, both modes)
/// of its square.
fn check_const_cases(cases: Vec<(&str, ScalarFn, &Tensor, Vec<f64>)>) {
    use adjoint_core::grad;
    for (what, f, at, want) in cases {
        let g = grad(|x: &Tensor| f(x))(at).to_vec::<f64>();
        assert_eq!(g.len(), want.len(), "{what}");
        for (g, w) in g.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{what}: {g} vs {w}");
        }
        check_grads(move |x: &Tensor| f(x) * f(x), at, 2, BOTH);
    }
}

/// `add` and `sub` with one operand a constant (only the other differentiated), in every
/// placement: same shapes (the rules' capture-free pullbacks) and broadcast either way.
#[test]
fn add_sub_with_a_constant_operand() {
    let (c, row, x, xr) = const_fixtures();
    check_const_cases(vec![
        ("x + c", with_const(&c, |x, c| x + c), &x, vec![1.0; 6]),
        ("c + x", with_const(&c, |x, c| c + x), &x, vec![1.0; 6]),
        ("x - c", with_const(&c, |x, c| x - c), &x, vec![1.0; 6]),
        ("c - x", with_const(&c, |x, c| c - x), &x, vec![-1.0; 6]),
        ("x + 2", std::rc::Rc::new(|x: &Tensor| (x + 2.0).sum()), &x, vec![1.0; 6]),
        ("2 - x", std::rc::Rc::new(|x: &Tensor| (2.0 - x).sum()), &x, vec![-1.0; 6]),
        ("x[2,3] + c[3]", with_const(&row, |x, c| x + c), &x, vec![1.0; 6]),
        ("c[2,3] - x[3]", with_const(&c, |x, c| c - x), &xr, vec![-2.0; 3]),
        ("x[3] - c[2,3]", with_const(&c, |x, c| x - c), &xr, vec![2.0; 3]),
        ("x - x", std::rc::Rc::new(|x: &Tensor| (x - x).sum()), &x, vec![0.0; 6]),
    ]);
}

/// `mul` with one operand a constant, or both differentiated, in every placement: same shapes
/// (the rule's shape-free pullbacks), broadcast either way, and `x * x`.
#[test]
fn mul_with_a_constant_operand() {
    use adjoint_core::grad;
    let (c, row, x, xr) = const_fixtures();
    let (cv, rv, xv) = (c.to_vec::<f64>(), row.to_vec::<f64>(), x.to_vec::<f64>());
    let col_sums: Vec<f64> = (0..3).map(|j| cv[j] + cv[3 + j]).collect();
    check_const_cases(vec![
        ("x * c", with_const(&c, |x, c| x * c), &x, cv.clone()),
        ("c * x", with_const(&c, |x, c| c * x), &x, cv.clone()),
        ("x * 2", std::rc::Rc::new(|x: &Tensor| (x * 2.0).sum()), &x, vec![2.0; 6]),
        ("x[2,3] * c[3]", with_const(&row, |x, c| x * c), &x, [rv.clone(), rv].concat()),
        ("c[2,3] * x[3]", with_const(&c, |x, c| c * x), &xr, col_sums),
        ("x * x", std::rc::Rc::new(|x: &Tensor| (x * x).sum()), &x, xv.iter().map(|v| 2.0 * v).collect()),
    ]);
    // Both operands differentiated, same shapes: d(Σ a·b) = (b, a).
    let g = grad(|p: &(Tensor, Tensor)| (&p.0 * &p.1).sum())(&(x.clone(), c.clone()));
    assert_eq!((g.0.to_vec::<f64>(), g.1.to_vec::<f64>()), (cv, xv));
}
