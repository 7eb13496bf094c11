//! `argmax` / `argmin` along one axis, giving `i64` indices: no derivative.

use super::prelude::*;

/// The `argmax` (or, with `min`, `argmin`) primitive.
#[derive(Debug, Clone, Copy)]
pub struct ArgMinMax {
    /// Axis searched.
    pub axis: usize,
    /// Keep the axis with size 1.
    pub keepdim: bool,
    /// `argmin` instead of `argmax`.
    pub min: bool,
}

impl SimplePrimitive for ArgMinMax {
    fn name(&self) -> &'static str {
        if self.min {
            "argmin"
        } else {
            "argmax"
        }
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let op = SimplePrimitive::name(self);
        rules::axis(op, self.axis, &a[0]);
        if a[0].shape[self.axis] == 0 {
            misuse(op, format!("axis {} of shape {:?} is empty", self.axis, a[0].shape.as_slice()));
        }
        Aval { shape: rules::reduce(op, &[self.axis], self.keepdim, &a[0]), dtype: DType::I64 }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        if self.min {
            a[0].argmin(self.axis, self.keepdim)
        } else {
            a[0].argmax(self.axis, self.keepdim)
        }
    }
    fn jvp(&self, _p: &[&Tensor], _t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        None
    }
    fn vjp(&self, _p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new((), |_, _| grads![None])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        let b = axes[0].expect("the only operand is batched");
        let (ax, out) = reduce_axes(&[self.axis], b, self.keepdim);
        (bind(&ArgMinMax { axis: ax[0], ..*self }, &[a[0]]), Some(out))
    }
}
