//! `reduce_sum` over a set of axes: linear; the cotangent is broadcast back.

use adjoint_tensor::ops::reduce::ReduceOp;

use super::prelude::*;

/// The `reduce_sum` primitive.
#[derive(Debug, Clone)]
pub struct ReduceSum {
    /// Axes summed over (sorted, distinct).
    pub axes: Vec<usize>,
    /// Keep reduced axes with size 1.
    pub keepdim: bool,
}

impl SimplePrimitive for ReduceSum {
    fn name(&self) -> &'static str {
        "reduce_sum"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        if a[0].dtype == DType::Bool {
            misuse("reduce_sum", format!("cannot sum a bool tensor {} (cast it first)", a[0]));
        }
        Aval { shape: rules::reduce("reduce_sum", &self.axes, self.keepdim, &a[0]), dtype: a[0].dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].reduce(ReduceOp::Sum, &self.axes, self.keepdim)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t.sum_axes(&self.axes, self.keepdim))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let (shape, axes) = (adjoint_tensor::Shape::from_slice(p[0].shape()), self.axes.clone());
        Pullback::new((), move |_, c| grads![Some(expand_reduced(c, &shape, &axes))])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        let b = axes[0].expect("the only operand is batched");
        let (ax, out) = reduce_axes(&self.axes, b, self.keepdim);
        (bind(&ReduceSum { axes: ax, keepdim: self.keepdim }, &[a[0]]), Some(out))
    }
}
