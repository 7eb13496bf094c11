//! `index_select` along an axis with a 1-D `i64` index (rows of an embedding table, say).
//! Its transpose is `index_add` into zeros, which accumulates repeated indices correctly.

use super::prelude::*;

/// The `index_select` primitive.
#[derive(Debug, Clone, Copy)]
pub struct IndexSelect(pub usize);

impl SimplePrimitive for IndexSelect {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let (x, index) = (&a[0], &a[1]);
        rules::axis("index_select", self.0, x);
        rules::index("index_select", index);
        if index.rank() != 1 {
            misuse("index_select", format!("index must be 1-D, got shape {:?}", index.shape.as_slice()));
        }
        let mut shape = x.shape.clone();
        shape[self.0] = index.shape[0];
        Aval { shape, dtype: x.dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].index_select(self.0, a[1])
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t.index_select(self.0, p[1]))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let (axis, shape, dtype) = (self.0, adjoint_tensor::Shape::from_slice(p[0].shape()), p[0].dtype());
        Pullback::new(p[1].clone(), move |idx, c| {
            grads![Some(Tensor::full_of(&shape, 0.0, dtype).index_add(axis, idx, c)), None]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        match (axes[0], axes[1]) {
            (Some(b), None) => (bind(&IndexSelect(value_axis(self.0, b)), a), Some(b)),
            _ => {
                // A different index per example: a gather with the index broadcast (stride 0)
                // along the other axes.
                let x = to_front(a[0], axes[0], size);
                let idx = to_front(a[1], axes[1], size);
                let k = idx.shape()[1];
                let mut lined = vec![1; x.rank()];
                lined[0] = size;
                lined[self.0 + 1] = k;
                let mut full = x.shape().to_vec();
                full[self.0 + 1] = k;
                let idx = idx.reshape(&lined).broadcast_to(&full);
                (bind(&super::gather::Gather(self.0 + 1), &[&x, &idx]), Some(0))
            }
        }
    }
}
