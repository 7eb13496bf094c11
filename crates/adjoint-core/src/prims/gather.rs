//! `gather` along an axis with an `i64` index tensor (`torch.gather`). Linear in the source;
//! its transpose is `scatter_add` into zeros. The index gets no derivative.

use super::prelude::*;

/// The `gather` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Gather(pub usize);

impl SimplePrimitive for Gather {
    fn name(&self) -> &'static str {
        "gather"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let (x, index) = (&a[0], &a[1]);
        rules::axis("gather", self.0, x);
        rules::index("gather", index);
        if index.rank() != x.rank() {
            misuse(
                "gather",
                format!(
                    "index shape {:?} must have the rank of shape {:?}",
                    index.shape.as_slice(),
                    x.shape.as_slice()
                ),
            );
        }
        Aval { shape: index.shape.clone(), dtype: x.dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].gather(self.0, a[1])
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t.gather(self.0, p[1]))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let (axis, shape, dtype) = (self.0, adjoint_tensor::Shape::from_slice(p[0].shape()), p[0].dtype());
        Pullback::new(p[1].clone(), move |idx, c| {
            grads![Some(Tensor::full_of(&shape, 0.0, dtype).scatter_add(axis, idx, c)), None]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        let x = to_front(a[0], axes[0], size);
        let i = to_front(a[1], axes[1], size);
        (bind(&Gather(self.0 + 1), &[&x, &i]), Some(0))
    }
}
