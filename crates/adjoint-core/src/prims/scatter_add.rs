//! `scatter_add(base, axis, index, src)`: `base` with `src` added at `index` along `axis`
//! (`torch.scatter_add`). Linear in `base` and `src`: the base's cotangent passes through,
//! the source's is gathered back.

use super::prelude::*;

/// The `scatter_add` primitive; operands are `(base, index, src)`.
#[derive(Debug, Clone, Copy)]
pub struct ScatterAdd(pub usize);

impl SimplePrimitive for ScatterAdd {
    fn name(&self) -> &'static str {
        "scatter_add"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let (base, index, src) = (&a[0], &a[1], &a[2]);
        rules::axis("scatter_add", self.0, base);
        rules::index("scatter_add", index);
        if index.shape != src.shape || index.rank() != base.rank() {
            misuse(
                "scatter_add",
                format!(
                    "index {:?} and src {:?} must have one shape, of the rank of {:?}",
                    index.shape.as_slice(),
                    src.shape.as_slice(),
                    base.shape.as_slice()
                ),
            );
        }
        rules::same_dtype("scatter_add", base, src);
        base.clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].scatter_add(self.0, a[1], a[2])
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        if t[0].is_none() && t[2].is_none() {
            return None;
        }
        let base = t[0].cloned().unwrap_or_else(|| out.zeros_like());
        let src = t[2].cloned().unwrap_or_else(|| p[2].zeros_like());
        Some(base.scatter_add(self.0, p[1], &src))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let (axis, wb, ws) = (self.0, wants[0], wants[2]);
        Pullback::new(p[1].clone(), move |idx, c| {
            grads![wb.then(|| c.clone()), None, ws.then(|| c.gather(axis, idx))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        let base = to_front(a[0], axes[0], size);
        let i = to_front(a[1], axes[1], size);
        let src = to_front(a[2], axes[2], size);
        (bind(&ScatterAdd(self.0 + 1), &[&base, &i, &src]), Some(0))
    }
}
