//! `matrix_exp`: `e^A` of `A [..., n, n]` by scaling and squaring with the degree-13 Padé
//! approximant (Higham 2005).
//!
//! The derivative is the Fréchet derivative `L(A, E)`, read off a block matrix:
//! `exp([[A, E], [0, A]]) = [[e^A, L(A, E)], [0, e^A]]` (Mathias 1996). The tangent is
//! `L(A, dA)` and, `L(A, ·)` having the adjoint `L(Aᵀ, ·)`, the cotangent is `L(Aᵀ, Ē)`:
//! both are this same primitive on a `2n × 2n` matrix, so derivatives of any order work.

use adjoint_core::primitive::{Aval, Pullback, SimplePrimitive};
use adjoint_core::trace::bind;
use adjoint_core::{grads, Array, Tensor};

use super::{batch_front, check_square, kernels, mt};

/// The `matrix_exp` primitive.
#[derive(Debug, Clone, Copy)]
pub struct MatrixExp;

/// `L(a, e)`: the top-right block of `exp([[a, e], [0, a]])`.
fn frechet(a: &Tensor, e: &Tensor) -> Tensor {
    let r = a.rank();
    let n = a.shape()[r - 1];
    let top = Tensor::concat(&[a, e], r - 1);
    let bottom = Tensor::concat(&[&a.zeros_like(), a], r - 1);
    let block = Tensor::concat(&[&top, &bottom], r - 2);
    bind(&MatrixExp, &[&block]).narrow(r - 2, 0, n).narrow(r - 1, n, n)
}

impl SimplePrimitive for MatrixExp {
    fn name(&self) -> &'static str {
        "matrix_exp"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        check_square("matrix_exp", &a[0]);
        a[0].clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        kernels::matrix_exp(a[0])
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|da| frechet(p[0], da))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new(p[0].clone(), |a, c| grads![Some(frechet(&mt(a), c))])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        batch_front(self, a, axes, size)
    }
}

/// The matrix exponential `e^A = Σ Aᵏ/k!` of `a [..., n, n]` (SciPy's
/// `scipy.linalg.expm`), differentiable to any order through its Fréchet derivative.
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::linalg::matrix_exp;
/// // A rotation generator: exp([[0, -t], [t, 0]]) = [[cos t, -sin t], [sin t, cos t]].
/// let e = matrix_exp(&Tensor::from_vec(vec![0.0f64, -0.5, 0.5, 0.0], &[2, 2])).to_vec::<f64>();
/// assert!((e[0] - 0.5f64.cos()).abs() < 1e-14 && (e[2] - 0.5f64.sin()).abs() < 1e-14);
/// ```
#[track_caller]
pub fn matrix_exp(a: &Tensor) -> Tensor {
    bind(&MatrixExp, &[a])
}
