//! `matmul` of operands of rank ≥ 2 with equal batch dimensions (the `Tensor::matmul` method
//! handles 1-D operands and broadcasts batch dims first, so this rule never has to).
//! `d(AB) = dA·B + A·dB`; the transpose rules are `C̄·Bᵀ` and `Aᵀ·C̄`, transposes being views
//! that `gemm` reads through their strides without copying.

use super::prelude::*;

/// The `matmul` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Matmul;

fn mt(t: &Tensor) -> Tensor {
    let r = t.rank();
    t.transpose(r - 2, r - 1)
}

/// Elements up to which [`transposed_matrix`] takes the plain order (W2's smallest weight has
/// 5,120).
const SMALL_MATRIX: usize = 4096;

/// True when `t` has a value that is the transpose of a contiguous matrix (strides `(1, rows)`),
/// as `Wᵀ` of a row-major weight is in `Linear`'s `x·Wᵀ`. Its cotangent is then computed as the
/// transpose of the product in the other order (`(C̄ᵀ·A)ᵀ` for `Aᵀ·C̄`), so that it has the
/// operand's layout and the weight's gradient comes out contiguous after the transpose's own
/// rule: an optimizer then reads it in storage order (Adam on W2's transposed gradients took
/// 2.1–2.4 ms a step against 1.0 ms on contiguous ones). Both orders sum over the same inner
/// index in the same order, so the values are the same (bitwise on every shape checked in
/// `tests/prim_matmul.rs`); a staged tensor (no value) takes the plain order. So does a matrix
/// of at most [`SMALL_MATRIX`] elements: its gradient is read as fast in either layout, and the
/// plain order can be the faster product (W7's `Xᵀ·C̄` for `[10, 250]` from `[10000, ·]`
/// operands: 1.47–1.49 ms against 2.0–2.1 ms for `(C̄ᵀ·X)ᵀ`, two threads).
fn transposed_matrix(t: &Tensor) -> bool {
    let Ok(v) = t.try_value() else { return false };
    let l = v.layout();
    l.rank() == 2
        && l.shape[0] * l.shape[1] > SMALL_MATRIX
        && l.shape[0] > 1
        && l.shape[1] > 1
        && l.strides[0] == 1
        && l.strides[1] == l.shape[0] as isize
}

impl SimplePrimitive for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let (x, y) = (&a[0], &a[1]);
        let (r, ry) = (x.rank(), y.rank());
        if r < 2 || r != ry || x.shape[..r - 2] != y.shape[..r - 2] {
            misuse(
                "matmul",
                format!(
                    "the primitive needs operands of one rank ≥ 2 with equal batch dimensions, got {:?} and {:?}",
                    x.shape.as_slice(),
                    y.shape.as_slice()
                ),
            );
        }
        rules::same_dtype("matmul", x, y);
        let (k, k2) = (x.shape[r - 1], y.shape[r - 2]);
        if k != k2 {
            misuse(
                "matmul",
                format!(
                    "inner dimensions differ: {:?} @ {:?} ({k} vs {k2})",
                    x.shape.as_slice(),
                    y.shape.as_slice()
                ),
            );
        }
        let mut shape = x.shape.clone();
        shape[r - 1] = y.shape[r - 1];
        Aval { shape, dtype: x.dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].matmul(a[1])
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let ta = t[0].map(|x| x.matmul(p[1]));
        let tb = t[1].map(|y| p[0].matmul(y));
        sum_tangents(ta, tb, out.shape())
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let (wa, wb) = (wants[0], wants[1]);
        let (a_t, b_t) = (transposed_matrix(p[0]), transposed_matrix(p[1]));
        Pullback::new((wb.then(|| p[0].clone()), wa.then(|| p[1].clone())), move |(a, b), c| {
            grads![
                b.as_ref().map(|b| if a_t { mt(&b.matmul(&mt(c))) } else { c.matmul(&mt(b)) }),
                a.as_ref().map(|a| if b_t { mt(&mt(c).matmul(a)) } else { mt(a).matmul(c) })
            ]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        let (x, y) = (a[0], a[1]);
        match (axes[0], axes[1]) {
            // One shared matrix: fold the batch into the rows (or columns) of the other and
            // run one large product instead of `size` small ones.
            (Some(b), None) if x.rank() == 3 => {
                let (x, b) = if b == 2 { (move_axis(x, 2, 0), 0) } else { (x.clone(), b) };
                let (s0, s1, k) = (x.shape()[0], x.shape()[1], x.shape()[2]);
                let out = bind(self, &[&x.reshape(&[s0 * s1, k]), y]);
                (out.reshape(&[s0, s1, y.shape()[1]]), Some(b))
            }
            (None, Some(b)) if y.rank() == 3 => {
                let (y, b) = if b == 0 { (move_axis(y, 0, 1), 1) } else { (y.clone(), b) };
                let (k, s1, s2) = (y.shape()[0], y.shape()[1], y.shape()[2]);
                let out = bind(self, &[x, &y.reshape(&[k, s1 * s2])]);
                (out.reshape(&[x.shape()[0], s1, s2]), Some(b))
            }
            _ => {
                let x = to_front(x, axes[0], size);
                let y = to_front(y, axes[1], size);
                if x.rank() == 3 && x.shape()[2] == 1 {
                    // Outer products per example (k = 1): one broadcast multiply, not `size`
                    // rank-1 gemms.
                    return (&x * &y, Some(0));
                }
                (bind(self, &[&x, &y]), Some(0))
            }
        }
    }
}
