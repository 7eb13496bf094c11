//! `flip`: reverse one axis (a negative-stride view). Its own transpose.

use super::prelude::*;

/// The `flip` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Flip(pub usize);

impl SimplePrimitive for Flip {
    fn name(&self) -> &'static str {
        "flip"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::axis("flip", self.0, &a[0]);
        a[0].clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].flip(self.0)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t.flip(self.0))
    }
    fn vjp(&self, _p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let axis = self.0;
        Pullback::new((), move |_, c| grads![Some(c.flip(axis))])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        let b = axes[0].expect("the only operand is batched");
        (bind(&Flip(value_axis(self.0, b)), &[a[0]]), Some(b))
    }
}
