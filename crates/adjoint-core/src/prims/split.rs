//! `split`: cut a tensor along one axis into consecutive parts of the given sizes, one output
//! per part (views). Linear: the tangents are the split tangent; the transpose is one
//! `concat` of the parts' cotangents (a missing one is zeros), instead of one pad-and-add per
//! part as separate `slice`s would cost.

use smallvec::SmallVec;

use super::prelude::*;
use crate::primitive::{Outs, Primitive};
use crate::trace::bind_multi;

/// The `split` primitive.
#[derive(Debug, Clone)]
pub struct Split {
    /// Axis cut.
    pub axis: usize,
    /// Size of each part along `axis`; they sum to the axis' length.
    pub sizes: Vec<usize>,
}

impl Primitive for Split {
    fn name(&self) -> &'static str {
        "split"
    }
    fn is_view(&self) -> bool {
        true // views of the input, one per part
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        rules::axis("split", self.axis, &a[0]);
        let d = a[0].shape[self.axis];
        if self.sizes.iter().sum::<usize>() != d {
            misuse(
                "split",
                format!(
                    "sizes {:?} do not add up to axis {} of shape {:?}",
                    self.sizes,
                    self.axis,
                    a[0].shape.as_slice()
                ),
            );
        }
        self.sizes
            .iter()
            .map(|&n| {
                let mut s = a[0].shape.clone();
                s[self.axis] = n;
                Aval { shape: s, dtype: a[0].dtype }
            })
            .collect()
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let mut start = 0;
        self.sizes
            .iter()
            .map(|&n| {
                start += n;
                a[0].slice(self.axis, start - n, start, 1)
            })
            .collect()
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], outs: &[Tensor]) -> Outs<Option<Tensor>> {
        match t[0] {
            Some(t) => bind_multi(self, &[t]).into_iter().map(Some).collect(),
            None => outs.iter().map(|_| None).collect(),
        }
    }
    fn vjp(&self, _p: &[&Tensor], outs: &[Tensor], _wants: &[bool]) -> Pullback {
        let shapes: Vec<(Vec<usize>, DType)> = outs.iter().map(|o| (o.shape().to_vec(), o.dtype())).collect();
        let axis = self.axis;
        Pullback::multi((), move |_, cts| {
            let parts: SmallVec<[Tensor; 4]> = cts
                .iter()
                .zip(&shapes)
                .map(|(c, (s, d))| c.clone().unwrap_or_else(|| Tensor::full_of(s, 0.0, *d)))
                .collect();
            let refs: SmallVec<[&Tensor; 4]> = parts.iter().collect();
            grads![Some(Tensor::concat(&refs, axis))]
        })
    }
    fn batch(
        &self,
        a: &[&Tensor],
        axes: &[Option<usize>],
        _size: usize,
    ) -> (Outs<Tensor>, Outs<Option<usize>>) {
        let b = axes[0].expect("the only operand is batched");
        let outs = bind_multi(&Split { axis: value_axis(self.axis, b), sizes: self.sizes.clone() }, &[a[0]]);
        let n = outs.len();
        (outs, std::iter::repeat_n(Some(b), n).collect())
    }
}
