//! `reshape`: same elements, new shape (a view when the layout allows). Linear.

use super::prelude::*;

/// The `reshape` primitive.
#[derive(Debug, Clone)]
pub struct Reshape(pub Vec<usize>);

impl SimplePrimitive for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn is_view(&self) -> bool {
        true // a view when the input is contiguous
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let (from, to) = (adjoint_tensor::layout::numel(&a[0].shape), adjoint_tensor::layout::numel(&self.0));
        if from != to {
            misuse(
                "reshape",
                format!(
                    "cannot reshape {:?} ({from} elements) to {:?} ({to} elements)",
                    a[0].shape.as_slice(),
                    self.0
                ),
            );
        }
        Aval::new(&self.0, a[0].dtype)
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
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        // Keep the batch axis in place when the dims before it are a prefix (by element count)
        // of the new shape — then the reshape is still a view; otherwise move it to the front.
        let (x, b) = (a[0], axes[0].expect("the only operand is batched"));
        let prefix: usize = x.shape()[..b].iter().product();
        let mut acc = 1;
        let mut pos = None;
        for i in 0..=self.0.len() {
            if acc == prefix {
                pos = Some(i);
                break;
            }
            if i < self.0.len() {
                acc *= self.0[i];
            }
        }
        let (x, pos) = match pos {
            Some(p) => (x.clone(), p),
            None => (move_axis(x, b, 0), 0),
        };
        let mut target = self.0.clone();
        target.insert(pos, size);
        (bind(&Reshape(target), &[&x]), Some(pos))
    }
}
