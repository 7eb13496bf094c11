//! `reshape`: same elements, new shape (a view when the layout allows). Linear.

use super::prelude::*;

/// The `reshape` primitive.
#[derive(Debug, Clone)]
pub struct Reshape(pub Vec<usize>);

impl Primitive for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].reshape(&self.0)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t.reshape(&self.0))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let shape = adjoint_tensor::Shape::from_slice(p[0].shape());
        Pullback::new((), move |_, c| grads![Some(c.reshape(&shape))])
    }
}
