//! The elementwise kernels have a baseline, an AVX2 and an AVX-512 build (`dispatch_simd`),
//! chosen by the CPU at run time. They must give the same bits, or a program's results would
//! depend on the machine and on the path: a fused `jit` block runs the vector build, a
//! scalarised program calls the per-element function (`unary_one`/`binary_one`, one element,
//! no vector build at all). This compares both on inputs that reach every branch of the
//! polynomial kernels (clamps, the `tanh` switch at 0.625, subnormal results, ±inf, NaN).

use adjoint_tensor::ops::binary::BinaryOp;
use adjoint_tensor::ops::block::BlockFloat;
use adjoint_tensor::ops::unary::UnaryOp;

const UNARY: [UnaryOp; 21] = {
    use UnaryOp::*;
    [
        Neg, Abs, Sign, Exp, Exp2, Log, Log1p, Expm1, Sqrt, Rsqrt, Sin, Cos, Tan, Tanh, Sigmoid, Erf, Floor,
        Ceil, Round, Recip, Square,
    ]
};

const BINARY: [BinaryOp; 9] = {
    use BinaryOp::*;
    [Add, Sub, Mul, Div, Pow, Max, Min, Atan2, Rem]
};

fn inputs_f64() -> Vec<f64> {
    let mut v =
        vec![0.0, -0.0, 1.0, -1.0, 0.625, -0.625, 0.6249999, 88.7, 89.0, 104.0, -104.0, 709.0, 710.0, -745.0];
    v.extend([f64::INFINITY, f64::NEG_INFINITY, f64::NAN, f64::MIN_POSITIVE, 1e-310]);
    // A deterministic spread over many magnitudes (no RNG needed): x = ±1.37^k · frac.
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    for k in -120..120 {
        for _ in 0..7 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let frac = (s >> 11) as f64 / (1u64 << 53) as f64;
            let x = 1.37f64.powi(k) * (0.5 + frac);
            v.push(if s & 1 == 0 { x } else { -x });
        }
    }
    v
}

fn check<T: BlockFloat + std::fmt::Debug>(xs: &[T]) {
    // Same bits (f32 → f64 is exact and keeps the sign of zero), or both NaN.
    let bits = |v: T| v.to_f64().to_bits();
    let same = |a: T, b: T| bits(a) == bits(b) || (a.is_nan() && b.is_nan());
    let mut out = vec![T::zero(); xs.len()];
    for op in UNARY {
        T::unary_block(op, xs, &mut out);
        for (&x, &y) in xs.iter().zip(&out) {
            let one = T::unary_one(op, x);
            assert!(same(y, one), "{op:?}({x:?}): vector build {y:?}, per-element {one:?}");
        }
    }
    let ys: Vec<T> = xs.iter().rev().copied().collect();
    for op in BINARY {
        T::binary_block(op, xs, &ys, &mut out);
        for ((&a, &b), &y) in xs.iter().zip(&ys).zip(&out) {
            let one = T::binary_one(op, a, b);
            assert!(same(y, one), "{op:?}({a:?}, {b:?}): vector build {y:?}, per-element {one:?}");
        }
    }
}

#[test]
fn vector_builds_give_the_bits_of_the_per_element_function_f64() {
    check(&inputs_f64());
}

#[test]
fn vector_builds_give_the_bits_of_the_per_element_function_f32() {
    let xs: Vec<f32> = inputs_f64().into_iter().map(|x| x as f32).collect();
    check(&xs);
}
