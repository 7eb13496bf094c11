//! `stop_gradient` as a primitive: the identity with zero derivatives. Eager code and the
//! differentiation levels never bind it ([`crate::transforms::stop_gradient`] strips their
//! tracers instead); `jit` stages it, so a staged program that a `grad` or `jvp` replays later
//! still cuts the derivative where the function asked.

use super::prelude::*;

/// The `stop_gradient` primitive.
#[derive(Debug, Clone, Copy)]
pub struct StopGradient;

impl SimplePrimitive for StopGradient {
    fn name(&self) -> &'static str {
        "stop_gradient"
    }
    fn is_view(&self) -> bool {
        true // the input itself
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::unary(SimplePrimitive::name(self), &a[0], false)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].clone()
    }
    fn jvp(&self, _p: &[&Tensor], _t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        None
    }
    fn vjp(&self, _p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new((), |_, _| grads![None])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        (crate::transforms::stop_gradient(a[0]), axes[0])
    }
}
