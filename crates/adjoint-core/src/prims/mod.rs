//! The primitives: one file each, holding the kernel call, every derivative rule and the
//! batching rule for `vmap`.
//!
//! Rules are written with ordinary [`Tensor`](crate::Tensor) ops so that they are themselves
//! differentiable (that is what gives every order of derivative). Binary primitives accept
//! NumPy-broadcast operands; their reverse rules sum the cotangent back to each operand's shape
//! ([`unbroadcast`]).

pub(crate) mod prelude {
    pub use adjoint_tensor::{Array, DType};

    pub use super::{bcast, expand_reduced, sum_tangents, unbroadcast};
    pub use crate::batching::{elementwise, move_axis, reduce_axes, to_front, value_axis};
    pub use crate::grads;
    pub use crate::primitive::{Grads, Primitive, Pullback};
    pub use crate::tensor::Tensor;
    pub use crate::trace::bind;
}

use crate::tensor::Tensor;

/// Broadcast `t` to `shape` (no-op when it already has it).
pub fn bcast(t: &Tensor, shape: &[usize]) -> Tensor {
    if t.shape() == shape {
        t.clone()
    } else {
        t.broadcast_to(shape)
    }
}

/// Sum a cotangent of a broadcast result back to the operand's `shape`.
pub fn unbroadcast(g: Tensor, shape: &[usize]) -> Tensor {
    if g.shape() == shape {
        return g;
    }
    let lead = g.rank() - shape.len();
    let mut axes: Vec<usize> = (0..lead).collect();
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 && g.shape()[lead + i] != 1 {
            axes.push(lead + i);
        }
    }
    let s = if axes.is_empty() { g } else { g.sum_axes(&axes, false) };
    if s.shape() == shape {
        s
    } else {
        s.reshape(shape)
    }
}

pub mod abs;
pub mod add;
pub mod argminmax;
pub mod atan2;
pub mod broadcast;
pub mod cast;
pub mod compare;
pub mod concat;
pub mod conv;
pub mod cos;
pub mod cumsum;
pub mod div;
pub mod erf;
pub mod exp;
pub mod expm1;
pub mod flip;
pub mod gather;
pub mod index_add;
pub mod index_select;
pub mod log;
pub mod log1p;
pub mod logical;
pub mod matmul;
pub mod max;
pub mod min;
pub mod mul;
pub mod neg;
pub mod pad;
pub mod permute;
pub mod pow;
pub mod reduce_max;
pub mod reduce_prod;
pub mod reduce_sum;
pub mod rem;
pub mod reshape;
pub mod rounding;
pub mod scatter_add;
pub mod select;
pub mod sigmoid;
pub mod sign;
pub mod sin;
pub mod slice;
pub mod sqrt;
pub mod sub;
pub mod tan;
pub mod tanh;

/// Sum two optional tangents, broadcasting a lone one to the output shape.
pub fn sum_tangents(a: Option<Tensor>, b: Option<Tensor>, shape: &[usize]) -> Option<Tensor> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (Some(x), None) => Some(bcast(&x, shape)),
        (None, Some(y)) => Some(bcast(&y, shape)),
        (None, None) => None,
    }
}

/// The shape a reduction keeps when `keepdim` is set (reduced axes become 1).
pub fn kept_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect()
}

/// Bring a reduced cotangent back to the input's shape (through the keepdim shape).
pub fn expand_reduced(c: &Tensor, in_shape: &[usize], axes: &[usize]) -> Tensor {
    let kept = kept_shape(in_shape, axes);
    let c = if c.shape() == kept.as_slice() { c.clone() } else { c.reshape(&kept) };
    bcast(&c, in_shape)
}
