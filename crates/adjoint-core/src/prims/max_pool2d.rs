//! `max_pool2d`: 2-D max pooling over `[N, C, H, W]` with two outputs, the maxima and the
//! `i64` position of each (flat within its `H·W` plane; the first maximum of a window, as
//! PyTorch). The derivative flows to that position: the tangent is a `gather` of the input's
//! tangent at the indices, the cotangent a `scatter_add` into zeros — both differentiable, so
//! pooling differentiates to any order. The indices have no derivative.

use adjoint_tensor::ops::pool::{pool2d_output_shape, Pool2dOptions};

use super::prelude::*;
use crate::batching::by_loop;
use crate::primitive::{Outs, Primitive};
use crate::trace::bind_multi;

/// The `max_pool2d` primitive: `x -> (values, indices)`.
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d(pub Pool2dOptions);

/// `t [N, C, H, W]` picked at the flat plane positions `idx [N, C, OH, OW]`.
fn pick(t: &Tensor, idx: &Tensor) -> Tensor {
    let (s, o) = (t.shape(), idx.shape());
    let flat = idx.reshape(&[o[0], o[1], o[2] * o[3]]);
    t.reshape(&[s[0], s[1], s[2] * s[3]]).gather(2, &flat).reshape(o)
}

impl Primitive for MaxPool2d {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }
    fn shape(&self, a: &[Aval]) -> Outs<Aval> {
        let x = &a[0];
        if x.rank() != 4 {
            misuse("max_pool2d", format!("needs [N, C, H, W], got {:?}", x.shape.as_slice()));
        }
        if x.dtype == DType::Bool {
            misuse("max_pool2d", format!("needs a numeric tensor, got {x}"));
        }
        let out = match pool2d_output_shape(&x.shape, &self.0) {
            Ok(s) => s,
            Err(e) => misuse("max_pool2d", e.message),
        };
        smallvec::smallvec![Aval::new(&out, x.dtype), Aval::new(&out, DType::I64)]
    }
    fn eval(&self, a: &[&Array]) -> Outs<Array> {
        let (v, i) = a[0].max_pool2d_with_indices(&self.0);
        smallvec::smallvec![v, i]
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], outs: &[Tensor]) -> Outs<Option<Tensor>> {
        smallvec::smallvec![t[0].map(|t| pick(t, &outs[1])), None]
    }
    fn vjp(&self, p: &[&Tensor], outs: &[Tensor], _wants: &[bool]) -> Pullback {
        let shape = adjoint_tensor::Shape::from_slice(p[0].shape());
        Pullback::multi(outs[1].clone(), move |idx, cts| {
            let Some(c) = &cts[0] else { return grads![None] };
            let (s, o) = (&shape, idx.shape());
            let flat_idx = idx.reshape(&[o[0], o[1], o[2] * o[3]]);
            let flat_c = c.reshape(&[o[0], o[1], o[2] * o[3]]);
            // A broadcast zero, not a filled buffer: scatter_add then writes its output once.
            let zeros = Tensor::scalar_of(0.0, c.dtype()).broadcast_to(&[s[0], s[1], s[2] * s[3]]);
            grads![Some(zeros.scatter_add(2, &flat_idx, &flat_c).reshape(s))]
        })
    }
    fn batch(
        &self,
        a: &[&Tensor],
        axes: &[Option<usize>],
        size: usize,
    ) -> (Outs<Tensor>, Outs<Option<usize>>) {
        if size == 0 {
            return by_loop(self, a, axes, size);
        }
        // Fold the batch into N: one pooling over B·N images.
        let x = move_axis(a[0], axes[0].expect("the only operand is batched"), 0);
        let s = x.shape().to_vec();
        let outs = bind_multi(self, &[&x.reshape(&[s[0] * s[1], s[2], s[3], s[4]])]);
        let outs: Outs<Tensor> = outs
            .iter()
            .map(|o| {
                let os = o.shape();
                o.reshape(&[s[0], s[1], os[1], os[2], os[3]])
            })
            .collect();
        (outs, smallvec::smallvec![Some(0), Some(0)])
    }
}
