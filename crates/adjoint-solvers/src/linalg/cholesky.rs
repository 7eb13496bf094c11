//! `cholesky`: the lower factor `L` of `A = L Lᵀ` (the kernel reads `A`'s lower triangle; the
//! public [`cholesky`](super::cholesky) symmetrises its input first, as JAX does).
//! `dL = L Φ(L⁻¹ dA L⁻ᵀ)` with `Φ` the lower triangle with a halved diagonal (Murray 2016);
//! its transpose is `Ā = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹`, both written with triangular solves.

use adjoint_core::grads;
use adjoint_core::primitive::{Aval, Pullback, SimplePrimitive};
use adjoint_core::{Array, Tensor};

use super::triangular_solve::tri_solve;
use super::{batch_front, check_square, kernels, mt, tril};

/// The `cholesky` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Cholesky;

/// `Φ(S)`: the lower triangle of `S` with its diagonal halved.
fn phi(s: &Tensor) -> Tensor {
    tril(s, 0.5)
}

impl SimplePrimitive for Cholesky {
    fn name(&self) -> &'static str {
        "cholesky"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        check_square("cholesky", &a[0]);
        a[0].clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        kernels::cholesky(a[0])
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], l: &Tensor) -> Option<Tensor> {
        let da = t[0]?;
        // S = L⁻¹ dA L⁻ᵀ = (L⁻¹ (L⁻¹ dA)ᵀ)ᵀ.
        let y = tri_solve(l, da, true, false);
        let s = mt(&tri_solve(l, &mt(&y), true, false));
        Some(l.matmul(&phi(&s)))
    }
    fn vjp(&self, _p: &[&Tensor], l: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new(l.clone(), |l, c| {
            let p = phi(&mt(l).matmul(c));
            let z = tri_solve(l, &p, true, true);
            grads![Some(mt(&tri_solve(l, &mt(&z), true, true)))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        batch_front(self, a, axes, size)
    }
}
