//! `cumsum` along an axis: linear; its transpose is the reversed cumulative sum.

use super::prelude::*;

/// The `cumsum` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Cumsum {
    /// Axis accumulated along.
    pub axis: usize,
}

impl SimplePrimitive for Cumsum {
    fn name(&self) -> &'static str {
        "cumsum"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::axis("cumsum", self.axis, &a[0]);
        a[0].clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].cumsum(self.axis)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t.cumsum(self.axis))
    }
    fn vjp(&self, _p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let axis = self.axis;
        Pullback::new((), move |_, c| grads![Some(c.flip(axis).cumsum(axis).flip(axis))])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        let b = axes[0].expect("the only operand is batched");
        (bind(&Cumsum { axis: value_axis(self.axis, b) }, &[a[0]]), Some(b))
    }
}
