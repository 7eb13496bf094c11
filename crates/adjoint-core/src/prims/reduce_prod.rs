//! `reduce_prod` over a set of axes: `∂/∂xᵢ = Π_{j≠i} xⱼ`, computed as `prod / xᵢ` where
//! `xᵢ ≠ 0` and by the product of the others where exactly this element is zero (so a single
//! zero factor still gets the right derivative; several zeros give 0, which is also exact).

use adjoint_tensor::ops::reduce::ReduceOp;

use super::prelude::*;

/// The `reduce_prod` primitive.
#[derive(Debug, Clone)]
pub struct ReduceProd {
    /// Axes multiplied over (sorted, distinct).
    pub axes: Vec<usize>,
    /// Keep reduced axes with size 1.
    pub keepdim: bool,
}

impl ReduceProd {
    /// `Π_{j≠i} xⱼ` for every element, differentiably.
    fn others(&self, x: &Tensor) -> Tensor {
        let zero = x.eq_scalar(0.0);
        let one = Tensor::scalar_of(1.0, x.dtype());
        let safe = Tensor::select(&zero, &one, x);
        let nz_prod = safe.prod_axes(&self.axes, true);
        let zeros = zero.cast(x.dtype()).sum_axes(&self.axes, true);
        // No zero in the group: prod/x. One zero: at it, the product of the non-zeros; elsewhere 0.
        let none = zeros.eq_scalar(0.0);
        let single = zeros.eq_scalar(1.0);
        let z = Tensor::scalar_of(0.0, x.dtype());
        let at_zero = Tensor::select(&single, &nz_prod, &z);
        let generic = Tensor::select(&none, &(&nz_prod / &safe), &z);
        Tensor::select(&zero, &bcast(&at_zero, x.shape()), &generic)
    }
}

impl SimplePrimitive for ReduceProd {
    fn name(&self) -> &'static str {
        "reduce_prod"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        Aval { shape: rules::reduce("reduce_prod", &self.axes, self.keepdim, &a[0]), dtype: a[0].dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].reduce(ReduceOp::Prod, &self.axes, self.keepdim)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| (t * self.others(p[0])).sum_axes(&self.axes, self.keepdim))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let (shape, axes) = (adjoint_tensor::Shape::from_slice(p[0].shape()), self.axes.clone());
        Pullback::new(self.others(p[0]), move |o, c| grads![Some(expand_reduced(c, &shape, &axes) * o)])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        let b = axes[0].expect("the only operand is batched");
        let (ax, out) = reduce_axes(&self.axes, b, self.keepdim);
        (bind(&ReduceProd { axes: ax, keepdim: self.keepdim }, &[a[0]]), Some(out))
    }
}
