//! `lu_pivots_to_permutation`: the row permutation `perm [..., n]` of LAPACK-style pivots
//! `piv [..., n]` (`i64`; row `i` interchanged with row `piv[i]`, in order), as JAX's primitive
//! of that name. Integer in, integer out: no derivative.

use adjoint_core::primitive::{misuse, Aval, Pullback, SimplePrimitive};
use adjoint_core::trace::bind;
use adjoint_core::{grads, Array, DType, Tensor};

use super::{batch_front, kernels};

/// The `lu_pivots_to_permutation` primitive.
#[derive(Debug, Clone, Copy)]
pub struct LuPivotsToPermutation;

/// The permutation of `piv` (one primitive call).
pub(crate) fn pivots_to_permutation(piv: &Tensor) -> Tensor {
    bind(&LuPivotsToPermutation, &[piv])
}

impl SimplePrimitive for LuPivotsToPermutation {
    fn name(&self) -> &'static str {
        "lu_pivots_to_permutation"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        if a[0].rank() == 0 || a[0].dtype != DType::I64 {
            misuse("lu_pivots_to_permutation", format!("needs i64 pivots [..., n], got {}", a[0]));
        }
        a[0].clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        kernels::pivots_to_permutation(a[0])
    }
    fn jvp(&self, _p: &[&Tensor], _t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        None
    }
    fn vjp(&self, _p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new((), |_, _| grads![None])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        batch_front(self, a, axes, size)
    }
}
