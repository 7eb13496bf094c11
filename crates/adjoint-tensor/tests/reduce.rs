//! Reductions, argmax/argmin, logsumexp and scans against a naive reference over `f64` (or
//! wrapping `i64`) index arithmetic, on random shapes (size 0 and 1 included), every kind of
//! strided view, any set and order of axes, special values, and every misuse message.

use std::panic::{catch_unwind, UnwindSafe};

use adjoint_tensor::ops::reduce::ReduceOp;
use adjoint_tensor::{Array, DType};
use proptest::prelude::*;

// ----------------------------------------------------------------------------- helpers

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Value ranges: `Wide` is [-3, 3] in steps of 0.001 (small integers for int64, 0/1 for bool),
/// `NearOne` is [0.95, 1.05] so that long products neither overflow nor underflow in `f32`, even
/// when a broadcast view repeats one extreme value (1.05^1296 ≈ 2·10²⁷, 0.95^1296 ≈ 10⁻²⁹;
/// the groups reach 1,296 elements), `Ties` draws
/// from {0, 1, 2} so that maxima repeat.
#[derive(Clone, Copy, PartialEq)]
enum Range {
    Wide,
    NearOne,
    Ties,
}

fn values(n: usize, seed: u64, dtype: DType, range: Range) -> Vec<f64> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = s >> 33;
            match (dtype, range) {
                (DType::Bool, _) => (r % 2) as f64,
                (_, Range::Ties) => (r % 3) as f64,
                (DType::I64, _) => (r % 11) as f64 - 5.0,
                (_, Range::NearOne) => 0.95 + (r % 1001) as f64 / 10000.0,
                _ => ((r % 6001) as f64 - 3000.0) / 1000.0,
            }
        })
        .collect()
}

/// An array of logical shape `shape` laid out as view kind `kind`: 0 contiguous, 1 transposed,
/// 2 every other element of the last axis, 3 flipped on every axis, 4 broadcast (stride 0).
fn make(shape: &[usize], kind: u8, seed: u64, dtype: DType, range: Range) -> Array {
    let r = shape.len();
    let base = |sh: &[usize]| Array::from_vec(values(numel(sh), seed, dtype, range), sh).cast(dtype);
    if r == 0 {
        return base(shape);
    }
    match kind % 5 {
        1 => {
            let rev: Vec<usize> = shape.iter().rev().copied().collect();
            let perm: Vec<usize> = (0..r).rev().collect();
            base(&rev).permute(&perm)
        }
        2 => {
            let mut sh = shape.to_vec();
            sh[r - 1] *= 2;
            base(&sh).slice(r - 1, 0, sh[r - 1], 2)
        }
        3 => (0..r).fold(base(shape), |a, ax| a.flip(ax)),
        4 => {
            let sh: Vec<usize> = shape
                .iter()
                .enumerate()
                .map(|(i, &d)| if seed >> (i + 3) & 1 == 1 { 1 } else { d })
                .collect();
            base(&sh).broadcast_to(shape)
        }
        _ => base(shape),
    }
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// `(keepdim shape, squeezed shape)` of reducing `red` axes of `shape`.
fn out_shapes(shape: &[usize], red: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let keep = shape.iter().zip(red).map(|(&d, &r)| if r { 1 } else { d }).collect();
    let squeezed = shape.iter().zip(red).filter(|&(_, &r)| !r).map(|(&d, _)| d).collect();
    (keep, squeezed)
}

/// For each output (keepdim, row-major), the input values it reduces, in input order.
fn groups(vals: &[f64], shape: &[usize], red: &[bool]) -> Vec<Vec<f64>> {
    let (keep, _) = out_shapes(shape, red);
    let mut g = vec![Vec::new(); numel(&keep)];
    for (i, &v) in vals.iter().enumerate() {
        let mut idx = unravel(i, shape);
        for (d, &r) in red.iter().enumerate() {
            if r {
                idx[d] = 0;
            }
        }
        g[ravel(&idx, &keep)].push(v);
    }
    g
}

fn ref_float(op: ReduceOp, g: &[f64]) -> f64 {
    let nan = g.iter().any(|x| x.is_nan());
    match op {
        ReduceOp::Sum => g.iter().sum(),
        ReduceOp::Mean => g.iter().sum::<f64>() / g.len() as f64,
        ReduceOp::Prod => g.iter().product(),
        ReduceOp::Max if nan => f64::NAN,
        ReduceOp::Max => g.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ReduceOp::Min if nan => f64::NAN,
        ReduceOp::Min => g.iter().copied().fold(f64::INFINITY, f64::min),
    }
}

fn ref_int(op: ReduceOp, g: &[f64]) -> i64 {
    let g = g.iter().map(|&x| x as i64);
    match op {
        ReduceOp::Sum => g.fold(0i64, i64::wrapping_add),
        ReduceOp::Prod => g.fold(1i64, i64::wrapping_mul),
        ReduceOp::Max => g.max().unwrap(),
        ReduceOp::Min => g.min().unwrap(),
        ReduceOp::Mean => unreachable!(),
    }
}

fn close(got: f64, want: f64, tol: f64) -> bool {
    (got.is_nan() && want.is_nan()) || got == want || (got - want).abs() <= tol
}

/// Random axes: a subset of `0..rank` (from `bits`), in ascending or descending order.
fn pick_axes(rank: usize, bits: u64) -> (Vec<usize>, Vec<bool>) {
    let red: Vec<bool> = (0..rank).map(|d| bits >> d & 1 == 1).collect();
    let mut axes: Vec<usize> = (0..rank).filter(|&d| red[d]).collect();
    if bits >> 10 & 1 == 1 {
        axes.reverse();
    }
    (axes, red)
}

fn panic_message<R>(f: impl FnOnce() -> R + UnwindSafe) -> String {
    let err = catch_unwind(f).err().expect("expected a panic");
    err.downcast_ref::<String>().cloned().unwrap_or_else(|| err.downcast_ref::<&str>().unwrap().to_string())
}

const OPS: [ReduceOp; 5] = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min];

// ----------------------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn float_reductions_match_reference(
        shape in prop::collection::vec(0usize..6, 0..5),
        kind in 0u8..5,
        seed in any::<u64>(),
        bits in any::<u64>(),
        keepdim in any::<bool>(),
        f64_ in any::<bool>(),
    ) {
        let dtype = if f64_ { DType::F64 } else { DType::F32 };
        let (axes, red) = pick_axes(shape.len(), bits);
        let (keep, squeezed) = out_shapes(&shape, &red);
        let reduced_empty = red.iter().zip(&shape).any(|(&r, &d)| r && d == 0);
        for op in OPS {
            let range = if op == ReduceOp::Prod { Range::NearOne } else { Range::Wide };
            let a = make(&shape, kind, seed, dtype, range);
            let got = a.try_reduce(op, &axes, keepdim);
            if reduced_empty && matches!(op, ReduceOp::Max | ReduceOp::Min) {
                prop_assert!(got.is_err());
                continue;
            }
            let got = got.unwrap();
            prop_assert_eq!(got.shape(), if keepdim { &keep[..] } else { &squeezed[..] });
            prop_assert_eq!(got.dtype(), dtype);
            let vals = a.to_vec::<f64>();
            let got_v = got.to_vec::<f64>();
            for (o, g) in groups(&vals, &shape, &red).iter().enumerate() {
                let want = ref_float(op, g);
                let scale: f64 = g.iter().map(|x| x.abs()).sum::<f64>().max(want.abs()) + 1e-30;
                let tol = if dtype == DType::F32 { 2e-6 * scale.max(1.0) * (g.len() as f64).sqrt().max(1.0) } else { 1e-13 * scale };
                prop_assert!(close(got_v[o], want, tol), "{} axes {:?} of {:?}: got {} want {}", op.name(), axes, shape, got_v[o], want);
            }
        }
    }

    /// Reduced axes on both sides of a block of kept ones, with rows long enough for the
    /// plan that folds them in place (a bias gradient, `[N, C, H, W]` to `[C]`).
    #[test]
    fn reductions_around_a_kept_block_match_reference(
        lead in prop::collection::vec(1usize..4, 1..3),
        mid in prop::collection::vec(1usize..5, 1..3),
        tail in prop::collection::vec(3usize..13, 2..3),
        kind in 0u8..5,
        seed in any::<u64>(),
        keepdim in any::<bool>(),
        f64_ in any::<bool>(),
    ) {
        let dtype = if f64_ { DType::F64 } else { DType::F32 };
        let shape: Vec<usize> = lead.iter().chain(&mid).chain(&tail).copied().collect();
        let red: Vec<bool> = (0..shape.len()).map(|d| d < lead.len() || d >= lead.len() + mid.len()).collect();
        let axes: Vec<usize> = (0..shape.len()).filter(|&d| red[d]).collect();
        let (keep, squeezed) = out_shapes(&shape, &red);
        for op in OPS {
            let range = if op == ReduceOp::Prod { Range::NearOne } else { Range::Wide };
            let a = make(&shape, kind, seed, dtype, range);
            let got = a.reduce(op, &axes, keepdim);
            prop_assert_eq!(got.shape(), if keepdim { &keep[..] } else { &squeezed[..] });
            let vals = a.to_vec::<f64>();
            let got_v = got.to_vec::<f64>();
            for (o, g) in groups(&vals, &shape, &red).iter().enumerate() {
                let want = ref_float(op, g);
                let scale: f64 = g.iter().map(|x| x.abs()).sum::<f64>().max(want.abs()) + 1e-30;
                let tol = if dtype == DType::F32 { 2e-6 * scale.max(1.0) * (g.len() as f64).sqrt() } else { 1e-13 * scale };
                prop_assert!(close(got_v[o], want, tol), "{} of {:?}: got {} want {}", op.name(), shape, got_v[o], want);
            }
        }
    }

    #[test]
    fn int_and_bool_reductions_match_reference(
        shape in prop::collection::vec(0usize..6, 0..5),
        kind in 0u8..5,
        seed in any::<u64>(),
        bits in any::<u64>(),
        keepdim in any::<bool>(),
    ) {
        let (axes, red) = pick_axes(shape.len(), bits);
        let reduced_empty = red.iter().zip(&shape).any(|(&r, &d)| r && d == 0);
        for dtype in [DType::I64, DType::Bool] {
            let a = make(&shape, kind, seed, dtype, Range::Wide);
            let g = groups(&a.to_vec::<f64>(), &shape, &red);
            for op in [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min] {
                if reduced_empty && matches!(op, ReduceOp::Max | ReduceOp::Min) {
                    prop_assert!(a.try_reduce(op, &axes, keepdim).is_err());
                    continue;
                }
                let got = a.reduce(op, &axes, keepdim);
                // int64 stays int64; bool sums and products count in int64, max/min are any/all.
                if dtype == DType::I64 || matches!(op, ReduceOp::Sum | ReduceOp::Prod) {
                    prop_assert_eq!(got.dtype(), DType::I64);
                    let want: Vec<i64> = g.iter().map(|g| ref_int(op, g)).collect();
                    prop_assert_eq!(got.to_vec::<i64>(), want);
                } else {
                    // max/min of bool: any/all.
                    prop_assert_eq!(got.dtype(), DType::Bool);
                    let want: Vec<bool> = g.iter().map(|g| ref_int(op, g) != 0).collect();
                    prop_assert_eq!(got.to_vec::<bool>(), want);
                }
            }
        }
    }

    #[test]
    fn argmax_argmin_match_reference(
        shape in prop::collection::vec(1usize..6, 1..5),
        kind in 0u8..5,
        seed in any::<u64>(),
        axis in 0usize..4,
        keepdim in any::<bool>(),
        nan_at in prop::option::of(0usize..1000),
        dt in 0u8..3,
    ) {
        let axis = axis % shape.len();
        let dtype = [DType::F32, DType::F64, DType::I64][dt as usize];
        let mut a = make(&shape, kind, seed, dtype, Range::Ties);
        if let (Some(i), true) = (nan_at, dtype.is_float()) {
            let mut v = a.to_vec::<f64>();
            let n = v.len();
            v[i % n] = f64::NAN;
            a = Array::from_vec(v, &shape).cast(dtype);
        }
        let vals = a.to_vec::<f64>();
        let red: Vec<bool> = (0..shape.len()).map(|d| d == axis).collect();
        for max in [true, false] {
            let got = if max { a.argmax(axis, keepdim) } else { a.argmin(axis, keepdim) };
            prop_assert_eq!(got.dtype(), DType::I64);
            let (keep, squeezed) = out_shapes(&shape, &red);
            prop_assert_eq!(got.shape(), if keepdim { &keep[..] } else { &squeezed[..] });
            let want: Vec<i64> = groups(&vals, &shape, &red)
                .iter()
                .map(|g| {
                    if let Some(p) = g.iter().position(|x| x.is_nan()) {
                        return p as i64;
                    }
                    let best = if max { g.iter().copied().fold(f64::MIN, f64::max) } else { g.iter().copied().fold(f64::MAX, f64::min) };
                    g.iter().position(|&x| x == best).unwrap() as i64
                })
                .collect();
            prop_assert_eq!(got.to_vec::<i64>(), want);
        }
    }

    #[test]
    fn logsumexp_matches_reference(
        shape in prop::collection::vec(0usize..6, 0..5),
        kind in 0u8..5,
        seed in any::<u64>(),
        bits in any::<u64>(),
        keepdim in any::<bool>(),
        f64_ in any::<bool>(),
    ) {
        let dtype = if f64_ { DType::F64 } else { DType::F32 };
        let (axes, red) = pick_axes(shape.len(), bits);
        let a = make(&shape, kind, seed, dtype, Range::Wide);
        let got = a.logsumexp(&axes, keepdim);
        let (keep, squeezed) = out_shapes(&shape, &red);
        prop_assert_eq!(got.shape(), if keepdim { &keep[..] } else { &squeezed[..] });
        let got_v = got.to_vec::<f64>();
        for (o, g) in groups(&a.to_vec::<f64>(), &shape, &red).iter().enumerate() {
            let want = if g.is_empty() { f64::NEG_INFINITY } else { g.iter().map(|x| x.exp()).sum::<f64>().ln() };
            let tol = if dtype == DType::F32 { 2e-6 * want.abs().max(1.0) } else { 1e-13 * want.abs().max(1.0) };
            prop_assert!(close(got_v[o], want, tol), "got {} want {}", got_v[o], want);
        }
    }

    #[test]
    fn scans_match_reference(
        shape in prop::collection::vec(0usize..6, 1..5),
        kind in 0u8..5,
        seed in any::<u64>(),
        axis in 0usize..4,
        dt in 0u8..4,
    ) {
        let axis = axis % shape.len();
        let dtype = [DType::F32, DType::F64, DType::I64, DType::Bool][dt as usize];
        for prod in [false, true] {
            let range = if prod { Range::NearOne } else { Range::Wide };
            let a = make(&shape, kind, seed, dtype, range);
            let got = if prod { a.cumprod(axis) } else { a.cumsum(axis) };
            prop_assert_eq!(got.shape(), &shape[..]);
            let out_dtype = if dtype == DType::Bool { DType::I64 } else { dtype };
            prop_assert_eq!(got.dtype(), out_dtype);
            let vals = a.to_vec::<f64>();
            let got_v = got.to_vec::<f64>();
            for (i, &g) in got_v.iter().enumerate() {
                let idx = unravel(i, &shape);
                let mut want = if prod { 1.0 } else { 0.0 };
                for j in 0..=idx[axis] {
                    let mut jdx = idx.clone();
                    jdx[axis] = j;
                    let v = vals[ravel(&jdx, &shape)];
                    want = if prod { want * v } else { want + v };
                }
                let tol = if out_dtype == DType::F32 { 1e-5 * want.abs().max(1.0) } else { 1e-12 * want.abs().max(1.0) };
                let name = if prod { "cumprod" } else { "cumsum" };
                prop_assert!(close(g, want, tol), "{} at {:?}: got {} want {}", name, idx, g, want);
            }
        }
    }
}

// ----------------------------------------------------------------------------- fixed cases

#[test]
fn large_reductions_take_every_plan() {
    // Integer-valued f64 sums are exact, so every plan (rows, columns, blocks, copies) and the
    // parallel paths must agree exactly with the reference.
    let shape = [6usize, 130, 7, 90];
    let n = numel(&shape);
    let vals: Vec<f64> = (0..n).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
    let a = Array::from_vec(vals.clone(), &shape);
    let views = [a.clone(), a.flip(1), a.permute(&[3, 2, 1, 0]).contiguous().permute(&[3, 2, 1, 0])];
    for v in &views {
        let vv = v.to_vec::<f64>();
        for axes in [&[3][..], &[0], &[1], &[1, 2], &[0, 2], &[0, 1, 3], &[3, 1], &[0, 1, 2, 3]] {
            let red: Vec<bool> = (0..4).map(|d| axes.contains(&d)).collect();
            let want: Vec<f64> = groups(&vv, &shape, &red).iter().map(|g| g.iter().sum()).collect();
            assert_eq!(v.sum_axes(axes, false).to_vec::<f64>(), want, "sum over {axes:?}");
            let want: Vec<f64> =
                groups(&vv, &shape, &red).iter().map(|g| ref_float(ReduceOp::Max, g)).collect();
            assert_eq!(v.max_axes(axes, true).to_vec::<f64>(), want, "max over {axes:?}");
        }
    }
    // Many short rows (fewer than 32 elements) above the parallel threshold: split into row
    // groups, every row folded whole (gmm's d = 2 sums at k = 50), also from an offset view.
    let m = 50_001;
    let vals: Vec<f64> = (0..3 * m).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
    let a = Array::from_vec(vals.clone(), &[m, 3]);
    let want: Vec<f64> = vals.chunks(3).map(|r| r.iter().sum()).collect();
    assert_eq!(a.sum_axes(&[1], false).to_vec::<f64>(), want, "short rows");
    let want: Vec<f64> = vals.chunks(3).map(|r| r[1] + r[2]).collect();
    assert_eq!(a.narrow(1, 1, 2).sum_axes(&[1], false).to_vec::<f64>(), want, "short rows of a view");
    // A long f32 sum is pairwise: 2^20 copies of 0.1 lose almost nothing.
    let ones = Array::full(&[1 << 20], 0.1, DType::F32);
    let s = ones.sum_all().item::<f64>();
    let want = (1u64 << 20) as f64 * 0.1f32 as f64;
    assert!((s - want).abs() < 1e-6 * want, "{s} vs {want}");
    // Deterministic: the same input always gives the same bits.
    let x = Array::linspace(-1.0, 1.0, 1 << 19, DType::F32).sin().reshape(&[512, 1024]);
    for axes in [&[0][..], &[1], &[0, 1]] {
        let r1 = x.sum_axes(axes, false).to_vec::<f32>();
        let r2 = x.sum_axes(axes, false).to_vec::<f32>();
        assert!(r1.iter().zip(&r2).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    // Column reductions and scans on big inputs (parallel paths).
    let c = Array::ones(&[3000, 40], DType::I64);
    assert!(c.sum_axes(&[0], false).to_vec::<i64>().iter().all(|&s| s == 3000));
    assert_eq!(c.cumsum(0).to_vec::<i64>()[2999 * 40], 3000);
    assert_eq!(c.cumsum(1).to_vec::<i64>()[2999 * 40 + 39], 40);
    assert_eq!(c.argmax(0, false).to_vec::<i64>(), vec![0; 40]);
}

#[test]
fn special_values_and_empty_axes() {
    let a = Array::from_vec(vec![1.0f32, f32::NAN, 3.0, -1.0, 2.0, f32::INFINITY], &[2, 3]);
    let mx = a.max_axes(&[1], false).to_vec::<f32>();
    assert!(mx[0].is_nan());
    assert_eq!(mx[1], f32::INFINITY);
    assert!(a.min_all().item::<f32>().is_nan());
    assert_eq!(a.argmax(1, false).to_vec::<i64>(), vec![1, 2]);
    assert_eq!(a.argmin(1, false).to_vec::<i64>(), vec![1, 0]);
    assert_eq!(a.argmax(0, false).to_vec::<i64>(), vec![0, 0, 1]);

    // Empty axes: nothing reduced, a contiguous copy (bool sums count as int64).
    let t = Array::arange(0.0, 6.0, 1.0, DType::F64).reshape(&[2, 3]).transpose(0, 1);
    let r = t.sum_axes(&[], false);
    assert!(r.is_contiguous());
    assert_eq!(r.to_vec::<f64>(), t.to_vec::<f64>());
    assert_eq!(Array::ones(&[2], DType::Bool).sum_axes(&[], true).dtype(), DType::I64);

    // Size-0 axes: sum 0, prod 1, mean NaN, logsumexp -inf.
    let e = Array::zeros(&[3, 0], DType::F64);
    assert_eq!(e.sum_axes(&[1], false).to_vec::<f64>(), vec![0.0; 3]);
    assert_eq!(e.prod_axes(&[1], false).to_vec::<f64>(), vec![1.0; 3]);
    assert!(e.mean_axes(&[1], false).to_vec::<f64>().iter().all(|x| x.is_nan()));
    assert_eq!(e.logsumexp(&[1], true).to_vec::<f64>(), vec![f64::NEG_INFINITY; 3]);
    assert_eq!(e.sum_axes(&[0], false).shape(), &[0]);
    assert_eq!(e.max_axes(&[0], false).shape(), &[0]);
    assert_eq!(e.sum_all().item::<f64>(), 0.0);
    assert_eq!(Array::scalar(5i64).sum_all().item::<i64>(), 5);

    // Rank-0 results.
    let x = Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]);
    assert_eq!(x.sum_all().shape(), &[] as &[usize]);
    assert_eq!(x.mean_all().item::<f64>(), 2.5);
    assert_eq!(x.max_all().item::<f64>(), 4.0);
    assert_eq!(x.min_all().item::<f64>(), 1.0);
    assert_eq!(x.prod_axes(&[0, 1], false).item::<f64>(), 24.0);
    // Negative zero survives a sum of negative zeros.
    assert!(Array::full(&[4], -0.0, DType::F32).sum_all().item::<f32>().is_sign_negative());
}

#[test]
fn logsumexp_is_stable() {
    let a = Array::from_vec(vec![1e4f32, 1e4, -1e4, -1e4], &[2, 2]);
    let l = a.logsumexp(&[1], false).to_vec::<f32>();
    assert!((l[0] - (1e4 + 2f32.ln())).abs() < 1e-2 && (l[1] - (-1e4 + 2f32.ln())).abs() < 1e-2, "{l:?}");
    let inf = f64::INFINITY;
    let b = Array::from_vec(vec![-inf, -inf, inf, 0.0, f64::NAN, 0.0, inf, -inf], &[4, 2]);
    let l = b.logsumexp(&[1], false).to_vec::<f64>();
    assert_eq!(l[0], -inf);
    assert_eq!(l[1], inf);
    assert!(l[2].is_nan());
    assert_eq!(l[3], inf);
    let all = Array::from_vec(vec![0.0f64, 0.0, 0.0, 0.0], &[2, 2]).logsumexp(&[0, 1], false);
    assert!((all.item::<f64>() - 4f64.ln()).abs() < 1e-15);
}

// ----------------------------------------------------------------------------- misuse

#[test]
fn misuse_messages_name_op_axes_shapes_and_caller() {
    let f = Array::zeros(&[2, 3], DType::F32);
    let i = Array::zeros(&[2, 3], DType::I64);

    let m = panic_message(|| f.sum_axes(&[2], false));
    assert!(
        m.contains("sum") && m.contains("axis 2") && m.contains("[2, 3]") && m.contains("reduce.rs"),
        "{m}"
    );
    let m = panic_message(|| f.max_axes(&[1, 1], false));
    assert!(
        m.contains("max") && m.contains("[1, 1]") && m.contains("repeated") && m.contains("reduce.rs"),
        "{m}"
    );
    let m = panic_message(|| i.mean_axes(&[0], false));
    assert!(
        m.contains("mean") && m.contains("int64") && m.contains("[2, 3]") && m.contains("reduce.rs"),
        "{m}"
    );
    let m = panic_message(|| Array::zeros(&[2, 0], DType::F32).min_axes(&[1], true));
    assert!(
        m.contains("min") && m.contains("size 0") && m.contains("[2, 0]") && m.contains("reduce.rs"),
        "{m}"
    );
    let m = panic_message(|| Array::zeros(&[0], DType::F64).max_all());
    assert!(m.contains("max") && m.contains("[0]") && m.contains("reduce.rs"), "{m}");
    let m = panic_message(|| i.mean_all());
    assert!(m.contains("mean") && m.contains("reduce.rs"), "{m}");
    let m = panic_message(|| f.reduce(ReduceOp::Prod, &[5], false));
    assert!(m.contains("prod") && m.contains("axis 5") && m.contains("reduce.rs"), "{m}");

    let m = panic_message(|| f.argmax(2, false));
    assert!(
        m.contains("argmax") && m.contains("axis 2") && m.contains("[2, 3]") && m.contains("reduce.rs"),
        "{m}"
    );
    let m = panic_message(|| Array::zeros(&[2, 0], DType::F32).argmin(1, false));
    assert!(m.contains("argmin") && m.contains("[2, 0]") && m.contains("reduce.rs"), "{m}");
    assert_eq!(f.try_argmax(7, true).unwrap_err().op, "argmax");

    let m = panic_message(|| i.logsumexp(&[0], false));
    assert!(m.contains("logsumexp") && m.contains("int64") && m.contains("reduce.rs"), "{m}");
    let m = panic_message(|| f.logsumexp(&[0, 0], false));
    assert!(m.contains("logsumexp") && m.contains("repeated") && m.contains("reduce.rs"), "{m}");

    let m = panic_message(|| f.cumsum(2));
    assert!(
        m.contains("cumsum") && m.contains("axis 2") && m.contains("[2, 3]") && m.contains("reduce.rs"),
        "{m}"
    );
    let m = panic_message(|| Array::scalar(1.0f32).cumprod(0));
    assert!(m.contains("cumprod") && m.contains("[]") && m.contains("reduce.rs"), "{m}");
    assert_eq!(f.try_cumsum(9).unwrap_err().op, "cumsum");
}

#[test]
fn bias_gradient_sized_reduction_matches_the_transposed_copy() {
    // [N, C, H, W] summed to [C] (and kept as [1, C, 1, 1]), above the parallel threshold.
    let shape = [19usize, 7, 29, 31];
    let a = Array::from_vec(values(numel(&shape), 11, DType::F32, Range::Wide), &shape).cast(DType::F32);
    let want = a
        .permute(&[1, 0, 2, 3])
        .contiguous()
        .reshape(&[7, 19 * 29 * 31])
        .sum_axes(&[1], false)
        .to_vec::<f64>();
    let got = a.sum_axes(&[0, 2, 3], true);
    assert_eq!(got.shape(), &[1, 7, 1, 1]);
    for (g, w) in got.to_vec::<f64>().iter().zip(&want) {
        assert!((g - w).abs() <= 1e-3 * (1.0 + w.abs()), "{g} vs {w}");
    }
    let mx = a.max_axes(&[0, 2, 3], false).to_vec::<f64>();
    let want_mx = a.permute(&[1, 0, 2, 3]).contiguous().reshape(&[7, 19 * 29 * 31]).max_axes(&[1], false);
    assert_eq!(mx, want_mx.to_vec::<f64>());
}
