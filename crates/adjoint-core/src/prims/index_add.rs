//! `index_add(base, axis, index, src)`: adds slices of `src` at positions `index` along
//! `axis`. Linear in `base` and `src`; the source's cotangent is `index_select`ed back.

use super::prelude::*;

/// The `index_add` primitive; operands are `(base, index, src)`.
#[derive(Debug, Clone, Copy)]
pub struct IndexAdd(pub usize);

impl SimplePrimitive for IndexAdd {
    fn name(&self) -> &'static str {
        "index_add"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let (base, index, src) = (&a[0], &a[1], &a[2]);
        rules::axis("index_add", self.0, base);
        rules::index("index_add", index);
        let mut expect = base.shape.clone();
        if index.rank() == 1 {
            expect[self.0] = index.shape[0];
        }
        if index.rank() != 1 || src.shape != expect {
            misuse(
                "index_add",
                format!(
                    "src {:?} and index {:?} do not fit {:?} along axis {}",
                    src.shape.as_slice(),
                    index.shape.as_slice(),
                    base.shape.as_slice(),
                    self.0
                ),
            );
        }
        rules::same_dtype("index_add", base, src);
        base.clone()
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].index_add(self.0, a[1], a[2])
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        if t[0].is_none() && t[2].is_none() {
            return None;
        }
        let base = t[0].cloned().unwrap_or_else(|| out.zeros_like());
        let src = t[2].cloned().unwrap_or_else(|| p[2].zeros_like());
        Some(base.index_add(self.0, p[1], &src))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, wants: &[bool]) -> Pullback {
        let (axis, wb, ws) = (self.0, wants[0], wants[2]);
        Pullback::new(p[1].clone(), move |idx, c| {
            grads![wb.then(|| c.clone()), None, ws.then(|| c.index_select(axis, idx))]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], size: usize) -> (Tensor, Option<usize>) {
        let base = to_front(a[0], axes[0], size);
        let src = to_front(a[2], axes[2], size);
        match axes[1] {
            None => (bind(&IndexAdd(self.0 + 1), &[&base, a[1], &src]), Some(0)),
            Some(ib) => {
                // A different index per example: a scatter_add with the index broadcast (stride
                // 0) to the source's shape.
                let idx = move_axis(a[1], ib, 0);
                let mut lined = vec![1; src.rank()];
                lined[0] = size;
                lined[self.0 + 1] = idx.shape()[1];
                let idx = idx.reshape(&lined).broadcast_to(src.shape());
                (bind(&super::scatter_add::ScatterAdd(self.0 + 1), &[&base, &idx, &src]), Some(0))
            }
        }
    }
}
