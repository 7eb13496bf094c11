//! `triangular_solve`: `X = op(A)⁻¹ B` for a triangular `A` (only its `lower` or upper
//! triangle is read; `op(A) = Aᵀ` with `transpose`). `dX = op(A)⁻¹ (dB - op(tri(dA)) X)`; the
//! transpose solves with the other `op`: `B̄ = op(A)⁻ᵀ X̄`, `Ā = -tri(B̄ Xᵀ)` (or
//! `-tri(X B̄ᵀ)` when transposed).

use adjoint_core::grads;
use adjoint_core::primitive::{Aval, Pullback, SimplePrimitive};
use adjoint_core::trace::bind;
use adjoint_core::{Array, Tensor};

use super::{batch_front, check_rhs, check_square, kernels, mt, tril, triu};

/// The `triangular_solve` primitive.
#[derive(Debug, Clone, Copy)]
pub struct TriangularSolve {
    /// `A` is lower triangular (else upper).
    pub lower: bool,
    /// Solve with `Aᵀ`.
    pub transpose: bool,
}

/// `op(A)⁻¹ B` (one primitive call; operands already broadcast).
pub(crate) fn tri_solve(a: &Tensor, b: &Tensor, lower: bool, transpose: bool) -> Tensor {
    bind(&TriangularSolve { lower, transpose }, &[a, b])
}

/// The triangle of `m` that the kernel reads.
fn tri(m: &Tensor, lower: bool) -> Tensor {
    if lower {
        tril(m, 1.0)
    } else {
        triu(m)
    }
}

impl SimplePrimitive for TriangularSolve {
    fn name(&self) -> &'static str {
        "triangular_solve"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        check_square("triangular_solve", &a[0]);
        check_rhs("triangular_solve", &a[0], &a[1]);
        a[1].clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        kernels::triangular_solve(a[0], a[1], self.lower, self.transpose)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], x: &Tensor) -> Option<Tensor> {
        let op = |m: Tensor| if self.transpose { mt(&m) } else { m };
        let rhs = match (t[0], t[1]) {
            (None, None) => return None,
            (Some(da), Some(db)) => db - op(tri(da, self.lower)).matmul(x),
            (Some(da), None) => -(op(tri(da, self.lower)).matmul(x)),
            (None, Some(db)) => db.clone(),
        };
        Some(tri_solve(p[0], &rhs, self.lower, self.transpose))
    }
    fn vjp(&self, p: &[&Tensor], x: &Tensor, wants: &[bool]) -> Pullback {
        let (lower, transpose) = (self.lower, self.transpose);
        Pullback::new((p[0].clone(), wants[0].then(|| x.clone())), move |(a, x), c| {
            let bbar = tri_solve(a, c, lower, !transpose);
            let abar = x.as_ref().map(|x| {
                let g = if transpose { x.matmul(&mt(&bbar)) } else { bbar.matmul(&mt(x)) };
                -tri(&g, lower)
            });
            grads![abar, Some(bbar)]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        batch_front(self, a, axes, size)
    }
}
