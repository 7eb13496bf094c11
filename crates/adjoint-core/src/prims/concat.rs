//! `concat` along an axis (any number of operands). Its transpose slices the cotangent.

use super::prelude::*;

/// The `concat` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Concat(pub usize);

impl SimplePrimitive for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let Some(first) = a.first() else { misuse("concat", "needs at least one tensor".into()) };
        let axis = self.0;
        rules::axis("concat", axis, first);
        for t in a {
            let ok = t.rank() == first.rank()
                && t.shape.iter().zip(&first.shape).enumerate().all(|(i, (x, y))| i == axis || x == y);
            if !ok {
                let shapes: Vec<&[usize]> = a.iter().map(|t| t.shape.as_slice()).collect();
                misuse("concat", format!("shapes {shapes:?} differ outside axis {axis}"));
            }
            if t.dtype != first.dtype {
                misuse("concat", format!("dtypes differ: {} and {}", first.dtype, t.dtype));
            }
        }
        let mut shape = first.shape.clone();
        shape[axis] = a.iter().map(|t| t.shape[axis]).sum();
        Aval { shape, dtype: first.dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        Array::concat(a, self.0)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        if t.iter().all(|t| t.is_none()) {
            return None;
        }
        let parts: Vec<Tensor> =
            p.iter().zip(t).map(|(p, t)| t.cloned().unwrap_or_else(|| p.zeros_like())).collect();
        let refs: Vec<&Tensor> = parts.iter().collect();
        Some(Tensor::concat(&refs, self.0))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let axis = self.0;
        let sizes: Vec<usize> = p.iter().map(|t| t.shape()[axis]).collect();
        let wants = wants.to_vec();
        Pullback::new((), move |_, c| {
            let mut start = 0;
            let mut g = Grads::new();
            for (&n, &w) in sizes.iter().zip(&wants) {
                g.push(w.then(|| c.narrow(axis, start, n)));
                start += n;
            }
            g
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        // All operands need the batch axis in one place: the first batched operand's. Shared
        // operands get it as a stride-0 view (the kernel copies each element once anyway).
        let b = axes.iter().find_map(|a| *a).expect("one operand is batched");
        let parts: Vec<Tensor> = a
            .iter()
            .zip(axes)
            .map(|(t, ax)| match ax {
                Some(x) => move_axis(t, *x, b),
                None => {
                    let mut s = t.shape().to_vec();
                    s.insert(b, size);
                    t.unsqueeze(b).broadcast_to(&s)
                }
            })
            .collect();
        let refs: Vec<&Tensor> = parts.iter().collect();
        (bind(&Concat(value_axis(self.0, b)), &refs), Some(b))
    }
}
