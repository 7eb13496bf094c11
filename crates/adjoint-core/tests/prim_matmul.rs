//! The matmul rule's layout choice: the gradient of a transposed operand (`Wᵀ` in `x·Wᵀ`, as
//! `Linear` multiplies) comes out in the weight's own row-major layout, with the same values as
//! the plain rule `xᵀ·C̄` (bitwise: both orders sum over the same inner index in order).
//! Weights of at most 4096 elements (the rule's `SMALL_MATRIX`) take the plain order, whatever
//! the layout; their values are checked all the same.

use adjoint_core::{grad, DType, Tensor};
use adjoint_tensor::random::{normal, Key};

fn randn(seed: u64, shape: &[usize], dtype: DType) -> Tensor {
    Tensor::from_array(normal(&Key::new(seed), shape, dtype))
}

#[test]
fn the_gradient_of_a_transposed_operand_is_row_major_and_equals_the_plain_rule() {
    for dtype in [DType::F32, DType::F64] {
        for (b, i, o) in
            [(128, 784, 512), (128, 512, 512), (32, 128, 512), (7, 33, 17), (300, 64, 10), (2, 2, 3)]
        {
            let x = randn(1, &[b, i], dtype);
            let w = randn(2, &[o, i], dtype);
            let r = randn(3, &[b, o], dtype);
            // L = Σ (x·Wᵀ) ⊙ r, so ∂L/∂W = rᵀ·x and ∂L/∂x = r·W.
            let gw = grad(|w: &Tensor| (x.matmul(&w.t()) * &r).sum())(&w);
            let gx = grad(|x: &Tensor| (x.matmul(&w.t()) * &r).sum())(&x);
            let large = o * i > 4096;
            assert!(
                !large || gw.value().is_contiguous(),
                "{dtype} {b}x{i}x{o}: weight gradient layout {:?}",
                gw.value().layout()
            );
            let plain = x.value().transpose(0, 1).matmul(r.value()).transpose(0, 1);
            let bits =
                |t: &adjoint_tensor::Array| t.to_vec::<f64>().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(gw.value()), bits(&plain), "{dtype} {b}x{i}x{o}: ∂L/∂W differs from xᵀ·r");
            assert_eq!(bits(gx.value()), bits(&r.value().matmul(w.value())), "{dtype} {b}x{i}x{o}: ∂L/∂x");
            // A transposed left operand: L = Σ (Wᵀ·y) ⊙ s with W [k, m].
            let y = randn(4, &[o, b], dtype);
            let s = randn(5, &[i, b], dtype);
            let wl = randn(6, &[o, i], dtype);
            let g = grad(|w: &Tensor| (w.t().matmul(&y) * &s).sum())(&wl);
            assert!(
                !large || g.value().is_contiguous(),
                "{dtype} lhs {b}x{i}x{o}: layout {:?}",
                g.value().layout()
            );
            let plain = s.value().matmul(&y.value().transpose(0, 1)).transpose(0, 1);
            assert_eq!(bits(g.value()), bits(&plain), "{dtype} lhs {b}x{i}x{o}: ∂L/∂W differs from s·yᵀ");
        }
    }
}
