//! Elementwise kernels (unary, binary, compare, select) against a naive reference over `f64`
//! index arithmetic, on random shapes (size 0 and 1 included), every kind of strided view,
//! broadcasting between ranks, both float widths, special values, and every misuse message.

use std::panic::{catch_unwind, UnwindSafe};

use adjoint_tensor::ops::binary::BinaryOp;
use adjoint_tensor::ops::compare::CompareOp;
use adjoint_tensor::ops::unary::UnaryOp;
use adjoint_tensor::special::erf_f64;
use adjoint_tensor::{Array, DType};
use proptest::prelude::*;

// ----------------------------------------------------------------------------- helpers

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Deterministic pseudo-random values suited to `dtype` (`nonzero` avoids 0 for divisors).
fn values(n: usize, seed: u64, dtype: DType, nonzero: bool) -> Vec<f64> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = s >> 33;
            let v = match dtype {
                DType::Bool => (r % 2) as f64,
                DType::I64 => (r % 11) as f64 - 5.0,
                _ => ((r % 6001) as f64 - 3000.0) / 1000.0,
            };
            if nonzero && v == 0.0 {
                1.0
            } else {
                v
            }
        })
        .collect()
}

/// An array of logical shape `shape` laid out as view kind `kind`: 0 contiguous, 1 transposed,
/// 2 every other element of the last axis, 3 flipped on every axis, 4 broadcast (stride 0).
fn make(shape: &[usize], kind: u8, seed: u64, dtype: DType, nonzero: bool) -> Array {
    let r = shape.len();
    let base = |sh: &[usize]| Array::from_vec(values(numel(sh), seed, dtype, nonzero), sh).cast(dtype);
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

/// NumPy broadcasting, written independently of the crate.
fn bshape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
            let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
            if da == 1 {
                db
            } else {
                da
            }
        })
        .collect()
}

/// Element of `vals` (row-major, shape `shape`) that broadcasts to `idx` of the output.
fn at(vals: &[f64], shape: &[usize], idx: &[usize]) -> f64 {
    let lead = idx.len() - shape.len();
    let mut flat = 0;
    for (d, &n) in shape.iter().enumerate() {
        let i = if n == 1 { 0 } else { idx[lead + d] };
        flat = flat * n + i;
    }
    vals[flat]
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}

fn close(got: f64, want: f64, rel: f64, abs: f64) -> bool {
    (got.is_nan() && want.is_nan()) || got == want || (got - want).abs() <= abs + rel * want.abs()
}

fn assert_close(got: &Array, want: &[f64], dtype: DType, what: &str) {
    let (rel, abs) = match dtype {
        DType::F32 => (2e-6, 1e-7),
        DType::F64 => (2e-14, 1e-300),
        _ => (0.0, 0.0),
    };
    let got_v = got.to_vec::<f64>();
    assert_eq!(got_v.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got_v.iter().zip(want).enumerate() {
        // The reference runs in f64; round it to the output type first.
        let w = if dtype == DType::F32 { w as f32 as f64 } else { w };
        assert!(close(g, w, rel, abs), "{what}: element {i}: got {g}, want {w}");
    }
}

/// Shape pairs that broadcast: each operand drops some leading dims and sets some to 1.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    (prop::collection::vec(0usize..5, 0..5), any::<u64>()).prop_map(|(out, bits)| {
        let derive = |shift: u32| {
            let drop = ((bits >> shift) as usize % (out.len() + 1)).min(out.len());
            out[drop..]
                .iter()
                .enumerate()
                .map(|(i, &d)| if (bits >> (shift + 8 + i as u32)) & 1 == 1 { 1 } else { d })
                .collect::<Vec<usize>>()
        };
        let (a, b) = (derive(0), derive(24));
        // Where both operands took 1 the result is 1, whatever `out` said.
        (bshape(&a, &b), a, b)
    })
}

fn panic_message<R>(f: impl FnOnce() -> R + UnwindSafe) -> String {
    let err = catch_unwind(f).err().expect("expected a panic");
    err.downcast_ref::<String>().cloned().unwrap_or_else(|| err.downcast_ref::<&str>().unwrap().to_string())
}

fn ref_unary(op: UnaryOp, x: f64) -> f64 {
    use UnaryOp::*;
    match op {
        Neg => -x,
        Abs => x.abs(),
        Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        }
        Exp => x.exp(),
        Exp2 => x.exp2(),
        Log => x.ln(),
        Log1p => x.ln_1p(),
        Expm1 => x.exp_m1(),
        Sqrt => x.sqrt(),
        Rsqrt => 1.0 / x.sqrt(),
        Sin => x.sin(),
        Cos => x.cos(),
        Tan => x.tan(),
        Tanh => x.tanh(),
        Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Erf => erf_f64(x),
        Floor => x.floor(),
        Ceil => x.ceil(),
        Round => x.round_ties_even(),
        Recip => 1.0 / x,
        Square => x * x,
        Relu => {
            if x <= 0.0 {
                0.0
            } else {
                x
            }
        }
    }
}

fn ref_binary(op: BinaryOp, x: f64, y: f64, int: bool) -> f64 {
    use BinaryOp::*;
    match op {
        Add => x + y,
        Sub => x - y,
        Mul => x * y,
        Div if int => (x / y).trunc(),
        Div => x / y,
        Pow => x.powf(y),
        Max if x.is_nan() || y.is_nan() => f64::NAN,
        Max => x.max(y),
        Min if x.is_nan() || y.is_nan() => f64::NAN,
        Min => x.min(y),
        Atan2 => x.atan2(y),
        Rem => x % y,
        ReluGrad if x > 0.0 => y,
        ReluGrad => 0.0,
    }
}

const FLOAT_BINARY: [BinaryOp; 10] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Pow,
    BinaryOp::Max,
    BinaryOp::Min,
    BinaryOp::Atan2,
    BinaryOp::Rem,
    BinaryOp::ReluGrad,
];
const COMPARES: [CompareOp; 6] =
    [CompareOp::Eq, CompareOp::Ne, CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge];

fn dtype_of(i: u8) -> DType {
    [DType::F32, DType::F64, DType::I64, DType::Bool][i as usize % 4]
}

// ----------------------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn unary_matches_reference(
        shape in prop::collection::vec(0usize..6, 0..5),
        kind in 0u8..5,
        seed in any::<u64>(),
        op in 0usize..UnaryOp::ALL.len(),
        f64_ in any::<bool>(),
    ) {
        let op = UnaryOp::ALL[op];
        let dtype = if f64_ { DType::F64 } else { DType::F32 };
        let a = make(&shape, kind, seed, dtype, false);
        let want: Vec<f64> = a.to_vec::<f64>().into_iter().map(|x| ref_unary(op, x)).collect();
        let got = a.unary(op);
        prop_assert_eq!(got.shape(), a.shape());
        prop_assert_eq!(got.dtype(), dtype);
        prop_assert!(got.is_contiguous());
        assert_close(&got, &want, dtype, op.name());
        // into_unary gives the same values, whether or not it can reuse the buffer.
        assert_close(&a.clone().into_unary(op), &want, dtype, op.name());
        let owned = Array::from_vec(a.to_vec::<f64>(), &shape).cast(dtype);
        assert_close(&owned.into_unary(op), &want, dtype, op.name());
    }

    #[test]
    fn int_unary_matches_reference(shape in prop::collection::vec(0usize..6, 0..5), kind in 0u8..5, seed in any::<u64>()) {
        let a = make(&shape, kind, seed, DType::I64, false);
        for op in UnaryOp::ALL.into_iter().filter(|op| op.supports_int()) {
            let got = a.unary(op);
            prop_assert_eq!(got.dtype(), DType::I64);
            let want: Vec<f64> = a.to_vec::<f64>().into_iter().map(|x| ref_unary(op, x)).collect();
            prop_assert_eq!(got.to_vec::<f64>(), want);
        }
    }

    #[test]
    fn binary_matches_reference(
        (out, sa, sb) in broadcast_pair(),
        ka in 0u8..5,
        kb in 0u8..5,
        seed in any::<u64>(),
        op in 0usize..FLOAT_BINARY.len(),
        dt in 0u8..3,
    ) {
        let dtype = dtype_of(dt);
        let op = FLOAT_BINARY[op];
        let int = dtype == DType::I64;
        if int && op.float_only() {
            return Ok(());
        }
        let nonzero = int && matches!(op, BinaryOp::Div | BinaryOp::Rem);
        let a = make(&sa, ka, seed, dtype, false);
        let b = make(&sb, kb, seed.rotate_left(17), dtype, nonzero);
        let got = a.binary(&b, op);
        prop_assert_eq!(got.shape(), &out[..]);
        let (av, bv) = (a.to_vec::<f64>(), b.to_vec::<f64>());
        let want: Vec<f64> = (0..numel(&out))
            .map(|i| {
                let idx = unravel(i, &out);
                ref_binary(op, at(&av, &sa, &idx), at(&bv, &sb, &idx), int)
            })
            .collect();
        if int {
            prop_assert_eq!(got.to_vec::<f64>(), want);
        } else {
            assert_close(&got, &want, dtype, op.name());
        }
        // Both orders of the operands broadcast to the same shape.
        let swapped = b.binary(&a, BinaryOp::Max);
        prop_assert_eq!(swapped.shape(), &out[..]);
    }

    #[test]
    fn compare_and_select_match_reference(
        (out, sa, sb) in broadcast_pair(),
        ka in 0u8..5,
        kb in 0u8..5,
        seed in any::<u64>(),
        dt in 0u8..4,
    ) {
        let dtype = dtype_of(dt);
        let a = make(&sa, ka, seed, dtype, false);
        let b = make(&sb, kb, seed.rotate_left(9), dtype, false);
        let (av, bv) = (a.to_vec::<f64>(), b.to_vec::<f64>());
        for op in COMPARES {
            let got = a.compare(&b, op);
            prop_assert_eq!(got.dtype(), DType::Bool);
            let want: Vec<bool> = (0..numel(&out))
                .map(|i| {
                    let idx = unravel(i, &out);
                    let (x, y) = (at(&av, &sa, &idx), at(&bv, &sb, &idx));
                    match op {
                        CompareOp::Eq => x == y,
                        CompareOp::Ne => x != y,
                        CompareOp::Lt => x < y,
                        CompareOp::Le => x <= y,
                        CompareOp::Gt => x > y,
                        CompareOp::Ge => x >= y,
                    }
                })
                .collect();
            prop_assert_eq!(got.to_vec::<bool>(), want);
        }
        // select: the condition broadcasts too (a third shape, from the same family).
        let cond = make(&sa, kb, seed ^ 0x55, DType::Bool, false);
        let cv = cond.to_vec::<f64>();
        let got = Array::select(&cond, &a, &b);
        prop_assert_eq!(got.shape(), &out[..]);
        prop_assert_eq!(got.dtype(), dtype);
        let want: Vec<f64> = (0..numel(&out))
            .map(|i| {
                let idx = unravel(i, &out);
                if at(&cv, &sa, &idx) != 0.0 { at(&av, &sa, &idx) } else { at(&bv, &sb, &idx) }
            })
            .collect();
        prop_assert_eq!(got.to_vec::<f64>(), want);
    }

    #[test]
    fn logical_ops_match_reference((out, sa, sb) in broadcast_pair(), ka in 0u8..5, kb in 0u8..5, seed in any::<u64>()) {
        let a = make(&sa, ka, seed, DType::Bool, false);
        let b = make(&sb, kb, seed.rotate_left(3), DType::Bool, false);
        let (av, bv) = (a.to_vec::<f64>(), b.to_vec::<f64>());
        let and = a.logical_and(&b).to_vec::<bool>();
        let or = a.logical_or(&b).to_vec::<bool>();
        for i in 0..numel(&out) {
            let idx = unravel(i, &out);
            let (x, y) = (at(&av, &sa, &idx) != 0.0, at(&bv, &sb, &idx) != 0.0);
            prop_assert_eq!(and[i], x && y);
            prop_assert_eq!(or[i], x || y);
        }
        let not: Vec<bool> = a.to_vec::<bool>().into_iter().map(|x| !x).collect();
        prop_assert_eq!(a.logical_not().to_vec::<bool>(), not);
    }
}

// ----------------------------------------------------------------------------- fixed cases

#[test]
fn f32_and_f64_agree() {
    let x64 = Array::linspace(-6.0, 6.0, 1001, DType::F64);
    let x32 = x64.cast(DType::F32);
    for op in UnaryOp::ALL {
        let (a, b) =
            (x32.unary(op).to_vec::<f64>(), x64.cast(DType::F32).cast(DType::F64).unary(op).to_vec::<f64>());
        for (i, (&p, &q)) in a.iter().zip(&b).enumerate() {
            assert!(close(p, q, 3e-6, 1e-6), "{}: at {i}: f32 {p} vs f64 {q}", op.name());
        }
    }
}

#[test]
fn exp_is_accurate_over_its_whole_range() {
    // f32: a dense sweep of the normal range, within 1 ulp of the correctly rounded value.
    let xs: Vec<f32> = (0..200_001).map(|i| -87.0 + i as f32 * (175.0 / 200_000.0)).collect();
    let got = Array::from_vec(xs.clone(), &[xs.len()]).exp().to_vec::<f32>();
    for (&x, &y) in xs.iter().zip(&got) {
        let want = (x as f64).exp() as f32;
        let ulps = (y.to_bits() as i64 - want.to_bits() as i64).abs();
        assert!(ulps <= 1, "exp({x}) = {y}, want {want} ({ulps} ulp)");
    }
    let xs: Vec<f64> = (0..200_001).map(|i| -708.0 + i as f64 * (1417.0 / 200_000.0)).collect();
    let got = Array::from_vec(xs.clone(), &[xs.len()]).exp().to_vec::<f64>();
    for (&x, &y) in xs.iter().zip(&got) {
        let want = x.exp();
        assert!((y - want).abs() <= 4.0 * f64::EPSILON * want, "exp({x}) = {y}, want {want}");
    }
    // Ends of the range, infinities, NaN, subnormal results.
    let specials = [0.0f32, -0.0, 88.7, 88.8, 1e10, f32::INFINITY, -1e10, f32::NEG_INFINITY, -100.0, -104.0];
    let got = Array::from_vec(specials.to_vec(), &[specials.len()]).exp().to_vec::<f32>();
    for (x, y) in specials.iter().zip(&got) {
        let want = x.exp();
        assert!(y == &want || (y - want).abs() <= 2e-7 * want, "exp({x}) = {y}, want {want}");
    }
    assert!(Array::scalar(f32::NAN).exp().item::<f32>().is_nan());
    assert_eq!(Array::scalar(1e3f64).exp().item::<f64>(), f64::INFINITY);
    assert_eq!(Array::scalar(-1e3f64).exp().item::<f64>(), 0.0);
    assert_eq!(Array::scalar(10.0f32).exp2().item::<f32>(), 1024.0);
    assert_eq!(Array::scalar(-3.0f64).exp2().item::<f64>(), 0.125);
}

#[test]
fn exp_groups_with_lanes_outside_the_quick_range_match_the_per_element_path() {
    // The contiguous exp kernel takes a quick path for groups of 32 in-range inputs and redoes a
    // group with any huge, tiny or NaN input element by element: both must give the same bits
    // as the per-element function, fresh or in place, wherever the odd lane sits (and for a
    // length that leaves a remainder).
    use adjoint_tensor::ops::block::BlockFloat;
    fn check<T: BlockFloat + Into<f64>>(dtype: DType, odd: &[f64]) {
        let n = 32 * 37 + 5;
        let mut xs: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 10.0 - 50.0).collect();
        // One odd lane per group of 32 (a group with two would hide the second), at a varying
        // position within it.
        assert!(odd.len() * 32 < n);
        for (k, &v) in odd.iter().enumerate() {
            xs[k * 32 + (k * 7 + 3) % 32] = v;
        }
        let a = Array::from_vec(xs, &[n]).cast(dtype);
        let per: Vec<u64> = a
            .to_vec::<T>()
            .iter()
            .map(|&x| Into::<f64>::into(T::unary_one(UnaryOp::Exp, x)).to_bits())
            .collect();
        let bits = |v: Vec<T>| v.into_iter().map(|x| Into::<f64>::into(x).to_bits()).collect::<Vec<u64>>();
        assert_eq!(bits(a.unary(UnaryOp::Exp).to_vec::<T>()), per, "{dtype:?} fresh");
        let owned = Array::from_vec(a.to_vec::<T>(), &[n]); // its buffer's only owner: updated in place
        assert_eq!(bits(owned.into_unary(UnaryOp::Exp).to_vec::<T>()), per, "{dtype:?} in place");
    }
    let odd = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        86.6,
        -86.6,
        88.5,
        -95.0,
        -104.0,
        1e3,
        -1e3,
        709.0,
        -720.0,
        // About the f32 check's edges (n = ±125 against ±126; n = 128 with a result above
        // f32::MAX), and inputs whose reduction leaves [2^23, 2^24) on either side (the f32
        // key is then negative or huge).
        86.98,
        -86.98,
        87.0,
        -87.0,
        88.75,
        -87.5,
        5e6,
        -5e6,
        -9e6,
        3e38,
    ];
    check::<f32>(DType::F32, &odd);
    check::<f64>(DType::F64, &odd);
}

#[test]
fn exp_of_an_array_larger_than_the_caches_matches_the_per_element_path() {
    // Outputs of 32 MiB and more are written with non-temporal stores after a head that
    // aligns the output to a cache line: every element (head, groups with odd lanes, the
    // remainder) must still be the per-element function's, for a source that starts anywhere.
    use adjoint_tensor::ops::block::BlockFloat;
    fn check<T: BlockFloat + Into<f64>>(dtype: DType, n: usize) {
        let mut xs: Vec<f64> = (0..n).map(|i| ((i * 7919) % 2000) as f64 / 20.0 - 50.0).collect();
        for (k, v) in [f64::NAN, f64::INFINITY, -1e3, 709.0, -720.0, 88.5, -104.0].into_iter().enumerate() {
            xs[(k * 1_000_003 + 5) % n] = v;
        }
        let a = Array::from_vec(xs, &[n]).cast(dtype);
        for start in [0, 3] {
            let v = a.narrow(0, start, n - start);
            let want: Vec<u64> = v
                .to_vec::<T>()
                .iter()
                .map(|&x| Into::<f64>::into(T::unary_one(UnaryOp::Exp, x)).to_bits())
                .collect();
            let got: Vec<u64> = v
                .unary(UnaryOp::Exp)
                .to_vec::<T>()
                .into_iter()
                .map(|x| Into::<f64>::into(x).to_bits())
                .collect();
            assert!(got == want, "{dtype:?} from {start}: streamed exp differs from the per-element path");
        }
    }
    check::<f32>(DType::F32, (9 << 20) + 29);
    check::<f64>(DType::F64, (5 << 20) + 13);
}

#[test]
fn binary_ops_on_arrays_larger_than_the_caches_match_the_per_element_result() {
    // Outputs of 32 MiB and more are written with non-temporal stores (a head to a cache-line
    // boundary, whole groups, a remainder): same shapes, a scalar on either side, a broadcast
    // row and a misaligned source must all give exactly the per-element results.
    let n = (9 << 20) + 29;
    let xs: Vec<f32> = (0..n).map(|i| ((i * 7919) % 2000) as f32 / 20.0 - 50.0).collect();
    let ys: Vec<f32> = (0..n).map(|i| ((i * 104_729) % 3000) as f32 / 30.0 + 0.5).collect();
    let (a, b) = (Array::from_vec(xs.clone(), &[n]), Array::from_vec(ys.clone(), &[n]));
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<u32>>();
    let want = |f: &dyn Fn(usize) -> f32, len: usize| (0..len).map(|i| f(i).to_bits()).collect::<Vec<u32>>();
    assert!(bits(a.binary(&b, BinaryOp::Add).to_vec()) == want(&|i| xs[i] + ys[i], n), "a + b");
    assert!(bits(a.binary(&b, BinaryOp::Div).to_vec()) == want(&|i| xs[i] / ys[i], n), "a / b");
    let two = Array::scalar(2.0f32);
    assert!(bits(a.binary(&two, BinaryOp::Sub).to_vec()) == want(&|i| xs[i] - 2.0, n), "a - 2");
    assert!(bits(two.binary(&b, BinaryOp::Mul).to_vec()) == want(&|i| 2.0 * ys[i], n), "2 · b");
    let (a3, b3) = (a.narrow(0, 3, n - 3), b.narrow(0, 0, n - 3));
    assert!(bits(a3.binary(&b3, BinaryOp::Add).to_vec()) == want(&|i| xs[i + 3] + ys[i], n - 3), "from 3");
    let rows = Array::from_vec(xs[..(9 << 20)].to_vec(), &[9 << 11, 1 << 9]);
    let row = Array::from_vec(ys[..1 << 9].to_vec(), &[1 << 9]);
    assert!(
        bits(rows.binary(&row, BinaryOp::Add).to_vec()) == want(&|i| xs[i] + ys[i % (1 << 9)], 9 << 20),
        "rows + row"
    );
    let xd: Vec<f64> = xs[..(5 << 20) + 7].iter().map(|&x| x as f64).collect();
    let yd: Vec<f64> = ys[..(5 << 20) + 7].iter().map(|&y| y as f64).collect();
    let got = Array::from_vec(xd.clone(), &[xd.len()])
        .binary(&Array::from_vec(yd.clone(), &[yd.len()]), BinaryOp::Max)
        .to_vec::<f64>();
    assert!(
        got.iter().zip(xd.iter().zip(&yd)).all(|(g, (x, y))| g.to_bits() == x.max(*y).to_bits()),
        "f64 max"
    );
}

#[test]
fn tanh_and_sigmoid_are_accurate_and_finite_at_extremes() {
    let xs: Vec<f64> = (0..20_001).map(|i| -20.0 + i as f64 * 0.002).collect();
    let a = Array::from_vec(xs.clone(), &[xs.len()]);
    for (dtype, tol) in [(DType::F64, 4e-16), (DType::F32, 4e-7)] {
        let (t, s) = (a.cast(dtype).tanh().to_vec::<f64>(), a.cast(dtype).sigmoid().to_vec::<f64>());
        let xs_t = a.cast(dtype).to_vec::<f64>();
        for i in 0..xs.len() {
            let x = xs_t[i];
            assert!(
                (t[i] - x.tanh()).abs() <= tol * x.tanh().abs().max(1e-30) * 2.0 + 1e-300,
                "tanh({x}) = {}",
                t[i]
            );
            let sw = 1.0 / (1.0 + (-x).exp());
            assert!((s[i] - sw).abs() <= 2.0 * tol * sw, "sigmoid({x}) = {}, want {sw}", s[i]);
        }
    }
    let big = Array::from_vec(vec![-1e4f32, -100.0, 100.0, 1e4, f32::INFINITY, f32::NEG_INFINITY], &[6]);
    assert_eq!(big.sigmoid().to_vec::<f32>(), vec![0.0, (-100f32).exp(), 1.0, 1.0, 1.0, 0.0]);
    assert_eq!(big.tanh().to_vec::<f32>(), vec![-1.0, -1.0, 1.0, 1.0, 1.0, -1.0]);
    assert!(Array::scalar(f64::NAN).sigmoid().item::<f64>().is_nan());
    assert!(Array::scalar(f64::NAN).tanh().item::<f64>().is_nan());
}

#[test]
fn special_values() {
    let a = Array::from_vec(vec![0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997], &[7]);
    assert_eq!(a.round().to_vec::<f32>(), vec![0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 0.0]);
    let x = Array::from_vec(vec![f64::NAN, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, -3.0], &[6]);
    let s = x.sign().to_vec::<f64>();
    assert!(s[0].is_nan());
    assert_eq!(&s[1..], &[-0.0, 0.0, 1.0, -1.0, -1.0]);
    let r = x.relu().to_vec::<f64>();
    assert!(r[0].is_nan());
    assert_eq!(&r[1..], &[0.0, 0.0, f64::INFINITY, 0.0, 0.0]);
    assert_eq!(x.recip().to_vec::<f64>()[1..3], [f64::NEG_INFINITY, f64::INFINITY]);
    assert_eq!(Array::scalar(0.0f64).log().item::<f64>(), f64::NEG_INFINITY);
    assert!(Array::scalar(-1.0f32).sqrt().item::<f32>().is_nan());

    // maximum/minimum propagate NaN from either side, like NumPy.
    let p = Array::from_vec(vec![f32::NAN, 1.0, 2.0, f32::INFINITY], &[4]);
    let q = Array::from_vec(vec![1.0f32, f32::NAN, f32::NEG_INFINITY, 3.0], &[4]);
    let mx = p.maximum(&q).to_vec::<f32>();
    let mn = p.minimum(&q).to_vec::<f32>();
    assert!(mx[0].is_nan() && mx[1].is_nan() && mn[0].is_nan() && mn[1].is_nan());
    assert_eq!(&mx[2..], &[2.0, f32::INFINITY]);
    assert_eq!(&mn[2..], &[f32::NEG_INFINITY, 3.0]);

    // Integer semantics: truncating division, remainder with the dividend's sign, wrapping.
    let n = Array::from_vec(vec![7i64, -7, 7, -7, i64::MIN], &[5]);
    let d = Array::from_vec(vec![2i64, 2, -2, -2, -1], &[5]);
    assert_eq!(n.div(&d).to_vec::<i64>(), vec![3, -3, -3, 3, i64::MIN]);
    assert_eq!(n.rem(&d).to_vec::<i64>(), vec![1, -1, 1, -1, 0]);
    assert_eq!(n.abs().to_vec::<i64>()[4], i64::MIN);
    assert_eq!(Array::scalar(i64::MAX).add(&Array::scalar(1i64)).item::<i64>(), i64::MIN);
    // Float remainder is fmod: sign of the dividend.
    let f = Array::from_vec(vec![5.5f64, -5.5, 5.5, -5.5], &[4]);
    let g = Array::from_vec(vec![2.0f64, 2.0, -2.0, -2.0], &[4]);
    assert_eq!(f.rem(&g).to_vec::<f64>(), vec![1.5, -1.5, 1.5, -1.5]);
    assert!(f.rem(&Array::scalar(0.0f64)).to_vec::<f64>()[0].is_nan());
}

#[test]
fn large_arrays_take_the_parallel_and_tiled_paths() {
    // Above PAR_THRESHOLD, contiguous, scalar-broadcast, row-broadcast and transposed operands.
    let (r, c) = (300usize, 257usize);
    let base = Array::arange(0.0, (r * c) as f64, 1.0, DType::F64).reshape(&[r, c]);
    let t = Array::arange(0.0, (r * c) as f64, 1.0, DType::F64).reshape(&[c, r]).transpose(0, 1);
    let row = Array::arange(0.0, c as f64, 1.0, DType::F64);
    let (bv, tv) = (base.to_vec::<f64>(), t.to_vec::<f64>());
    let sum = base.add(&t).to_vec::<f64>();
    let bcast = base.mul(&row).to_vec::<f64>();
    let scal = base.sub(&Array::scalar(1.0f64)).to_vec::<f64>();
    let ut = t.neg().to_vec::<f64>();
    let sel = Array::select(&base.greater(&t), &base, &t).to_vec::<f64>();
    for i in 0..r * c {
        assert_eq!(sum[i], bv[i] + tv[i]);
        assert_eq!(bcast[i], bv[i] * (i % c) as f64);
        assert_eq!(scal[i], bv[i] - 1.0);
        assert_eq!(ut[i], -tv[i]);
        assert_eq!(sel[i], bv[i].max(tv[i]));
    }
    // Batched transposes (rank 3) and a flipped operand.
    let x = Array::arange(0.0, 2.0 * 40.0 * 50.0, 1.0, DType::F32).reshape(&[2, 40, 50]);
    let xt = x.permute(&[0, 2, 1]).contiguous().permute(&[0, 2, 1]);
    assert_eq!(x.sub(&xt).abs().max_all().item::<f32>(), 0.0);
    assert_eq!(x.flip(2).add(&x).to_vec::<f32>()[..3], [49.0, 49.0, 49.0]);
}

#[test]
fn into_unary_reuses_unique_buffers_only() {
    let a = Array::from_vec(vec![1.0f64, 4.0, 9.0], &[3]);
    let keep = a.clone(); // shared: must not be overwritten
    let r = a.into_unary(UnaryOp::Sqrt);
    assert_eq!(r.to_vec::<f64>(), vec![1.0, 2.0, 3.0]);
    assert_eq!(keep.to_vec::<f64>(), vec![1.0, 4.0, 9.0]);
    let big = Array::ones(&[1 << 17], DType::F32);
    let ptr = std::sync::Arc::as_ptr(big.storage());
    let out = big.into_unary(UnaryOp::Neg);
    assert_eq!(std::sync::Arc::as_ptr(out.storage()), ptr);
    assert!(out.to_vec::<f32>().iter().all(|&x| x == -1.0));
    // A strided view is never written in place.
    let m = Array::arange(0.0, 6.0, 1.0, DType::F32).reshape(&[2, 3]).transpose(0, 1);
    assert_eq!(m.into_unary(UnaryOp::Square).to_vec::<f32>(), vec![0.0, 9.0, 1.0, 16.0, 4.0, 25.0]);
}

#[test]
fn broadcast_views_and_size_zero() {
    let col = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3, 1]).broadcast_to(&[3, 4]);
    assert_eq!(col.exp().to_vec::<f32>()[..5], [1f32.exp(), 1f32.exp(), 1f32.exp(), 1f32.exp(), 2f32.exp()]);
    let e = Array::zeros(&[0, 3], DType::F64);
    assert_eq!(e.add(&Array::zeros(&[3], DType::F64)).shape(), &[0, 3]);
    assert_eq!(e.add(&Array::zeros(&[1, 1, 1], DType::F64)).shape(), &[1, 0, 3]);
    assert_eq!(e.sin().shape(), &[0, 3]);
    assert_eq!(Array::scalar(2.0f32).mul(&Array::scalar(3.0f32)).shape(), &[] as &[usize]);
}

// ----------------------------------------------------------------------------- misuse

#[test]
fn misuse_messages_name_op_shapes_and_caller() {
    let f = Array::zeros(&[2, 3], DType::F32);
    let i = Array::zeros(&[2, 3], DType::I64);
    let b = Array::zeros(&[4], DType::Bool);

    let m = panic_message(|| i.exp());
    assert!(
        m.contains("exp") && m.contains("int64") && m.contains("[2, 3]") && m.contains("elementwise.rs"),
        "{m}"
    );
    let m = panic_message(|| b.unary(UnaryOp::Neg));
    assert!(m.contains("neg") && m.contains("bool") && m.contains("elementwise.rs"), "{m}");
    let m = panic_message(|| i.clone().into_unary(UnaryOp::Sqrt));
    assert!(m.contains("sqrt") && m.contains("int64") && m.contains("elementwise.rs"), "{m}");
    let m = panic_message(|| f.logical_not());
    assert!(m.contains("logical_not") && m.contains("float32") && m.contains("elementwise.rs"), "{m}");

    let m = panic_message(|| f.add(&Array::zeros(&[4], DType::F32)));
    assert!(
        m.contains("add") && m.contains("[2, 3]") && m.contains("[4]") && m.contains("elementwise.rs"),
        "{m}"
    );
    let m = panic_message(|| f.mul(&i));
    assert!(m.contains("mul") && m.contains("float32 [2, 3]") && m.contains("int64 [2, 3]"), "{m}");
    assert!(m.contains("elementwise.rs"), "{m}");
    let m = panic_message(|| i.pow(&i));
    assert!(m.contains("pow") && m.contains("float") && m.contains("elementwise.rs"), "{m}");
    let m = panic_message(|| b.add(&b));
    assert!(m.contains("add") && m.contains("bool") && m.contains("elementwise.rs"), "{m}");
    let m = panic_message(|| Array::ones(&[3], DType::I64).div(&i.sum_axes(&[0], false)));
    assert!(m.contains("div") && m.contains("division by zero") && m.contains("elementwise.rs"), "{m}");
    let m = panic_message(|| Array::ones(&[3], DType::I64).rem(&Array::scalar(0i64)));
    assert!(m.contains("rem") && m.contains("division by zero"), "{m}");
    let e = i.try_binary(&i, BinaryOp::Atan2).unwrap_err();
    assert_eq!(e.op, "atan2");

    let m = panic_message(|| f.less(&Array::zeros(&[3, 2], DType::F32)));
    assert!(
        m.contains("less") && m.contains("[2, 3]") && m.contains("[3, 2]") && m.contains("elementwise.rs"),
        "{m}"
    );
    let m = panic_message(|| f.equal(&i));
    assert!(m.contains("equal") && m.contains("float32") && m.contains("int64"), "{m}");

    let m = panic_message(|| Array::select(&f, &f, &f));
    assert!(
        m.contains("select") && m.contains("bool") && m.contains("float32") && m.contains("elementwise.rs"),
        "{m}"
    );
    let c = Array::zeros(&[2, 3], DType::Bool);
    let m = panic_message(|| Array::select(&c, &f, &i));
    assert!(m.contains("select") && m.contains("float32 [2, 3]") && m.contains("int64 [2, 3]"), "{m}");
    let m = panic_message(|| Array::select(&c, &f, &Array::zeros(&[4], DType::F32)));
    assert!(
        m.contains("select") && m.contains("[2, 3], [2, 3] and [4]") && m.contains("elementwise.rs"),
        "{m}"
    );

    let m = panic_message(|| b.logical_and(&f));
    assert!(m.contains("logical_and") && m.contains("float32") && m.contains("elementwise.rs"), "{m}");
    let m = panic_message(|| b.logical_or(&Array::zeros(&[3], DType::Bool)));
    assert!(m.contains("logical_or") && m.contains("[4]") && m.contains("[3]"), "{m}");
}

#[test]
fn select_with_a_scalar_branch_matches_reference() {
    // `where(x > 0, x, 0)` and `where(x > 0, 0, x)`: one branch a broadcast scalar, at odd
    // sizes below and above the parallel threshold, contiguous and strided.
    for n in [1usize, 7, 33, 70_001] {
        let xs: Vec<f64> = (0..n).map(|i| ((i * 37 % 101) as f64 - 50.0) / 7.0).collect();
        for dtype in [DType::F32, DType::F64] {
            let x = Array::from_vec(xs.clone(), &[n]).cast(dtype);
            let z = Array::scalar(0.0f64).cast(dtype);
            let c = x.greater(&z);
            let xs = x.to_vec::<f64>(); // as rounded to the dtype
            let pos: Vec<f64> = xs.iter().map(|&v| if v > 0.0 { v } else { 0.0 }).collect();
            let neg: Vec<f64> = xs.iter().map(|&v| if v > 0.0 { 0.0 } else { v }).collect();
            assert_eq!(Array::select(&c, &x, &z).to_vec::<f64>(), pos);
            assert_eq!(Array::select(&c, &z, &x).to_vec::<f64>(), neg);
            // A [2, n] view with the scalar broadcast along both axes.
            let x2 = Array::from_vec([xs.clone(), xs.clone()].concat(), &[2, n]).cast(dtype);
            let c2 = x2.greater(&z);
            let got = Array::select(&c2, &x2, &z).to_vec::<f64>();
            assert_eq!(got, [pos.clone(), pos.clone()].concat());
        }
    }
}

#[test]
fn every_path_gives_the_same_bits() {
    // The fused multiply-adds of exp/tanh/sigmoid are one instruction in the SIMD builds and a
    // libm call elsewhere; the contiguous kernel, a strided view, the per-element path of the
    // scalarised jit and a fused block must still agree bit for bit.
    use adjoint_tensor::ops::block::BlockFloat;
    fn bits<T: BlockFloat + Into<f64>>(v: &[T]) -> Vec<u64> {
        v.iter().map(|&x| Into::<f64>::into(x).to_bits()).collect()
    }
    fn check<T: BlockFloat + Into<f64>>(dtype: DType) {
        let grid = Array::linspace(-30.0, 30.0, 2 * 1531, DType::F64).cast(dtype).reshape(&[1531, 2]);
        let col = grid.transpose(0, 1).narrow(0, 1, 1).reshape(&[1531]); // stride 2
        let dense = col.contiguous();
        let xs = dense.to_vec::<T>();
        for op in [UnaryOp::Exp, UnaryOp::Exp2, UnaryOp::Tanh, UnaryOp::Sigmoid] {
            let want = bits(&dense.unary(op).to_vec::<T>());
            assert_eq!(bits(&col.unary(op).to_vec::<T>()), want, "{} strided", op.name());
            let one: Vec<T> = xs.iter().map(|&x| T::unary_one(op, x)).collect();
            assert_eq!(bits(&one), want, "{} per element", op.name());
            let mut block = vec![T::zero(); xs.len()];
            T::unary_block(op, &xs, &mut block);
            assert_eq!(bits(&block), want, "{} block", op.name());
        }
    }
    check::<f32>(DType::F32);
    check::<f64>(DType::F64);
}

#[test]
fn copy_slice_copies_every_element_streamed_or_not_on_any_pool() {
    // Below 32 MiB a plain copy; from there non-temporal stores after a head to a cache-line
    // boundary, whole groups and a remainder; past 64 Ki elements split over the pool. A
    // misaligned destination and source (offsets 1 and 3) exercise the head and remainder.
    let n = (9 << 20) + 37;
    let src: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.0).collect();
    for (len, d0, s0) in [(17, 0, 0), (100_003, 1, 3), (n - 3, 1, 3), (n, 0, 0)] {
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut dst = vec![f32::NAN; len + d0];
            pool.install(|| adjoint_tensor::ops::copy_slice(&mut dst[d0..], &src[s0..s0 + len]));
            assert!(dst[..d0].iter().all(|v| v.is_nan()), "{len} on {threads}: wrote before the destination");
            assert!(dst[d0..] == src[s0..s0 + len], "{len} elements from {s0} on {threads} threads");
        }
    }
}

#[test]
fn copy_slice_copies_at_every_distance_of_the_page_aliasing_window() {
    // A destination 1–63 bytes after its source modulo 4 KiB takes an explicit vector loop
    // (glibc's `rep movsb` is slow there on AMD Zen 4), other distances `memcpy`: every byte
    // distance from 0 to 80 and a few beyond, lengths around the loop's 2 KiB threshold and
    // its 128- and 32-byte steps, and a tail.
    fn check<T: Copy + PartialEq + std::fmt::Debug + Send + Sync>(make: impl Fn(usize) -> T) {
        let size = std::mem::size_of::<T>();
        let src: Vec<T> = (0..40_000).map(&make).collect();
        for len in [2047 / size, 2048 / size, 2048 / size + 1, 5000 / size + 3, 30_000] {
            for gap in (0..81).chain([4032, 4088, 4095]).filter(|g| g % size == 0) {
                let mut dst: Vec<T> = vec![make(usize::MAX); len + 4096 / size + 1];
                let have = (dst.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize) % 4096;
                let d0 = ((gap + 4096 - have) % 4096) / size;
                let (before, rest) = dst.split_at_mut(d0);
                adjoint_tensor::ops::copy_slice(&mut rest[..len], &src[..len]);
                assert!(rest[..len] == src[..len], "{len} elements of {size} bytes at distance {gap}");
                assert!(
                    rest[len..].iter().chain(before.iter()).all(|v| *v == make(usize::MAX)),
                    "wrote outside"
                );
            }
        }
    }
    check(|i| i as u8);
    check(|i| i as f32);
    check(|i| i as f64 * 0.25);
}

#[test]
#[should_panic(expected = "lengths differ")]
fn copy_slice_refuses_slices_of_different_lengths() {
    adjoint_tensor::ops::copy_slice(&mut [0.0f32; 3], &[1.0f32; 4]);
}
