//! `reduce_max` over a set of axes. The derivative goes to the maximal elements; with **ties**
//! it is shared equally among them (as JAX), so it is well defined and sums to the right total.
//! `reduce_min` is the composite `-reduce_max(-x)`.

use adjoint_tensor::ops::reduce::ReduceOp;

use super::prelude::*;

/// The `reduce_max` primitive.
#[derive(Debug, Clone)]
pub struct ReduceMax {
    /// Axes reduced over (sorted, distinct).
    pub axes: Vec<usize>,
    /// Keep reduced axes with size 1.
    pub keepdim: bool,
}

impl ReduceMax {
    /// Weights: 1/(number of maxima) at each maximum, 0 elsewhere. Built from the values only,
    /// so it is a constant to every transform.
    fn weights(&self, x: &Tensor, out: &Tensor) -> Tensor {
        let outk = expand_reduced(&crate::stop_gradient(out), x.shape(), &self.axes);
        let mask = crate::stop_gradient(x).equal(&outk).cast(x.dtype());
        let count = mask.sum_axes(&self.axes, true);
        mask / count
    }
}

impl SimplePrimitive for ReduceMax {
    fn name(&self) -> &'static str {
        "reduce_max"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let shape = rules::reduce("reduce_max", &self.axes, self.keepdim, &a[0]);
        if let Some(&ax) = self.axes.iter().find(|&&ax| a[0].shape[ax] == 0) {
            misuse(
                "reduce_max",
                format!(
                    "cannot take the maximum over axis {ax} of size 0 (shape {:?})",
                    a[0].shape.as_slice()
                ),
            );
        }
        Aval { shape, dtype: a[0].dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].reduce(ReduceOp::Max, &self.axes, self.keepdim)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        let w = self.weights(p[0], out);
        t[0].map(|t| (t * w).sum_axes(&self.axes, self.keepdim))
    }
    fn vjp(&self, p: &[&Tensor], out: &Tensor, _wants: &[bool]) -> Pullback {
        let (shape, axes) = (adjoint_tensor::Shape::from_slice(p[0].shape()), self.axes.clone());
        Pullback::new(self.weights(p[0], out), move |w, c| grads![Some(expand_reduced(c, &shape, &axes) * w)])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        let b = axes[0].expect("the only operand is batched");
        let (ax, out) = reduce_axes(&self.axes, b, self.keepdim);
        (bind(&ReduceMax { axes: ax, keepdim: self.keepdim }, &[a[0]]), Some(out))
    }
}
