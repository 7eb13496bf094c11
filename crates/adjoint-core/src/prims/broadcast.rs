//! `broadcast_to`: repeat along new leading axes and size-1 axes, as a stride-0 view.
//! Its transpose sums over the repeated axes.

use super::prelude::*;

/// The `broadcast_to` primitive.
#[derive(Debug, Clone)]
pub struct BroadcastTo(pub Vec<usize>);

impl SimplePrimitive for BroadcastTo {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }
    fn is_view(&self) -> bool {
        true // a view with zero strides
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let (s, t) = (&a[0].shape, &self.0);
        let ok = t.len() >= s.len() && s.iter().zip(&t[t.len() - s.len()..]).all(|(&d, &e)| d == e || d == 1);
        if !ok {
            misuse("broadcast_to", format!("cannot broadcast shape {:?} to {:?}", s.as_slice(), t));
        }
        Aval::new(t, a[0].dtype)
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].broadcast_to(&self.0)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t.broadcast_to(&self.0))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let shape = adjoint_tensor::Shape::from_slice(p[0].shape());
        Pullback::new((), move |_, c| grads![Some(unbroadcast(c.clone(), &shape))])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        // New axes are added on the left, so the batch axis shifts right by their number and
        // the value broadcasts as it is (still a stride-0 view).
        let (x, b) = (a[0], axes[0].expect("the only operand is batched"));
        let lead = self.0.len() + 1 - x.rank();
        let mut target = self.0.clone();
        target.insert(b + lead, x.shape()[b]);
        (bind(&BroadcastTo(target), &[x]), Some(b + lead))
    }
}
