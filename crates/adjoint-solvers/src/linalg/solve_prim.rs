//! `solve`: `X = A⁻¹ B` for `A [..., n, n]`, `B [..., n, k]` with equal batch dimensions (the
//! public [`solve`](super::solve) broadcasts them first). `dX = A⁻¹(dB - dA X)`; the transpose
//! is one more solve with `Aᵀ`: `B̄ = A⁻ᵀ X̄`, `Ā = -B̄ Xᵀ`.

use adjoint_core::grads;
use adjoint_core::primitive::{Aval, Grads, Pullback, SimplePrimitive};
use adjoint_core::trace::bind;
use adjoint_core::{Array, Tensor};

use super::{batch_front, check_rhs, check_square, kernels, mt};

/// The `solve` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Solve;

/// `A⁻¹ B` (one primitive call; operands already broadcast).
pub(crate) fn solve_raw(a: &Tensor, b: &Tensor) -> Tensor {
    bind(&Solve, &[a, b])
}

impl SimplePrimitive for Solve {
    fn name(&self) -> &'static str {
        "solve"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        check_square("solve", &a[0]);
        check_rhs("solve", &a[0], &a[1]);
        a[1].clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        kernels::solve(a[0], a[1])
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let rhs = match (t[0], t[1]) {
            (None, None) => return None,
            (Some(da), Some(db)) => db - da.matmul(out),
            (Some(da), None) => -(da.matmul(out)),
            (None, Some(db)) => db.clone(),
        };
        Some(solve_raw(p[0], &rhs))
    }
    fn vjp(&self, p: &[&Tensor], out: &Tensor, wants: &[bool]) -> Pullback {
        let wa = wants[0];
        Pullback::new((p[0].clone(), wa.then(|| out.clone())), move |(a, x), c| {
            let bbar = solve_raw(&mt(a), c);
            let abar = x.as_ref().map(|x| -(bbar.matmul(&mt(x))));
            let g: Grads = grads![abar, Some(bbar)];
            g
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        batch_front(self, a, axes, size)
    }
}
