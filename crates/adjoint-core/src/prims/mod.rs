//! The primitives: one file each, holding the kernel call, every derivative rule and the
//! batching rule for `vmap`.
//!
//! Rules are written with ordinary [`Tensor`](crate::Tensor) ops so that they are themselves
//! differentiable (that is what gives every order of derivative). Binary primitives accept
//! NumPy-broadcast operands; their reverse rules sum the cotangent back to each operand's shape
//! ([`unbroadcast`]).

pub(crate) mod prelude {
    pub use adjoint_tensor::{Array, DType};

    pub(crate) use super::pass_through;
    pub use super::rules;
    pub use super::{bcast, expand_reduced, sum_tangents, unbroadcast};
    pub use crate::batching::{elementwise, move_axis, reduce_axes, to_front, value_axis};
    pub use crate::grads;
    pub use crate::primitive::{misuse, Aval, Grads, Pullback, SimplePrimitive};
    pub use crate::tensor::Tensor;
    pub use crate::trace::bind;
}

/// Checks shared by the shape rules of several primitives. Each panics through
/// [`misuse`](crate::primitive::misuse) with the op's name and the caller's line.
pub mod rules {
    use adjoint_tensor::layout::Shape;
    use adjoint_tensor::{broadcast_shapes, DType};

    use crate::primitive::{misuse, Aval};

    /// A unary elementwise op: same shape and dtype; `float` ops reject integer and bool input.
    #[track_caller]
    pub fn unary(op: &str, a: &Aval, float: bool) -> Aval {
        float_if(op, a, float);
        a.clone()
    }

    /// `a` is a float tensor when `float` says so.
    #[track_caller]
    fn float_if(op: &str, a: &Aval, float: bool) {
        if float && !a.dtype.is_float() {
            misuse(op, format!("needs a float tensor, got {} of shape {:?}", a.dtype, a.shape.as_slice()));
        }
    }

    /// The broadcast shape of two operands (NumPy rules).
    #[track_caller]
    pub fn broadcast(op: &str, a: &Aval, b: &Aval) -> Shape {
        match broadcast_shapes(&a.shape, &b.shape) {
            Some(s) => s,
            None => misuse(
                op,
                format!("cannot broadcast shapes {:?} and {:?}", a.shape.as_slice(), b.shape.as_slice()),
            ),
        }
    }

    /// Operands of one dtype (front ends promote first).
    #[track_caller]
    pub fn same_dtype(op: &str, a: &Aval, b: &Aval) {
        if a.dtype != b.dtype {
            misuse(op, format!("dtypes differ: {a} and {b} (cast one operand)"));
        }
    }

    /// A binary elementwise op with broadcasting: operands of one dtype; `float` ops reject
    /// integer and bool input.
    #[track_caller]
    pub fn binary(op: &str, a: &Aval, b: &Aval, float: bool) -> Aval {
        let shape = broadcast(op, a, b);
        same_dtype(op, a, b);
        float_if(op, a, float);
        Aval { shape, dtype: a.dtype }
    }

    /// `axis` is a valid axis of `a`.
    #[track_caller]
    pub fn axis(op: &str, axis: usize, a: &Aval) {
        if axis >= a.rank() {
            misuse(op, format!("axis {axis} is out of range for shape {:?}", a.shape.as_slice()));
        }
    }

    /// A recurrent cell's operands: `gx`, `gh` of one float dtype and shape `[B, G·H]`
    /// (`gates` = G), then any number of `[B, H]` states or cotangents of that dtype.
    /// Returns `(B, H)`.
    #[track_caller]
    pub fn recurrent_cell(op: &str, gates: usize, a: &[Aval]) -> (usize, usize) {
        let s = a[0].shape.as_slice();
        let ok = s.len() == 2
            && s[1].is_multiple_of(gates)
            && a[1].shape.as_slice() == s
            && a[2..].iter().all(|x| x.shape.as_slice() == [s[0], s[1] / gates])
            && a.iter().all(|x| x.dtype == a[0].dtype)
            && a[0].dtype.is_float();
        if !ok {
            let got: Vec<String> = a.iter().map(|x| x.to_string()).collect();
            misuse(
                op,
                format!(
                    "needs float operands of one dtype, [B, {gates}·H] twice then [B, H] ({}), got {}",
                    a.len() - 2,
                    got.join(", ")
                ),
            );
        }
        (s[0], s[1] / gates)
    }

    /// `axes` are valid, sorted and distinct; the shape after reducing them.
    #[track_caller]
    pub fn reduce(op: &str, axes: &[usize], keepdim: bool, a: &Aval) -> Shape {
        for &x in axes {
            axis(op, x, a);
        }
        if axes.windows(2).any(|w| w[0] >= w[1]) {
            misuse(op, format!("axes {axes:?} must be sorted and distinct (shape {:?})", a.shape.as_slice()));
        }
        let mut out = Shape::new();
        for (i, &d) in a.shape.iter().enumerate() {
            if !axes.contains(&i) {
                out.push(d);
            } else if keepdim {
                out.push(1);
            }
        }
        out
    }

    /// An `i64` index operand.
    #[track_caller]
    pub fn index(op: &str, index: &Aval) {
        if index.dtype != DType::I64 {
            misuse(op, format!("index must be i64, got {index}"));
        }
    }
}

use crate::primitive::{Outs, Pullback};
use crate::tensor::Tensor;

/// Broadcast `t` to `shape` (no-op when it already has it).
pub fn bcast(t: &Tensor, shape: &[usize]) -> Tensor {
    if t.shape() == shape {
        t.clone()
    } else {
        t.broadcast_to(shape)
    }
}

/// The pullback of `a + b` (`NEG_B = false`) or `a - b` (`true`) when no broadcast has to be
/// undone — every wanted operand has the output's shape (a bias or residual add, a scalar
/// constant): the cotangent flows through as it is. Each closure captures nothing (the sign is a
/// const parameter), so boxing it allocates nothing; `None` when some wanted operand was
/// broadcast.
#[inline]
pub(crate) fn pass_through<const NEG_B: bool>(
    p: &[&Tensor],
    out: &Tensor,
    wants: &[bool],
) -> Option<Pullback> {
    let (wa, wb) = (wants[0], wants[1]);
    if (wa && p[0].shape() != out.shape()) || (wb && p[1].shape() != out.shape()) {
        return None;
    }
    let b_of = |c: &Tensor| if NEG_B { -c } else { c.clone() };
    Some(match (wa, wb) {
        (true, true) => Pullback::new((), move |_, c| crate::grads![Some(c.clone()), Some(b_of(c))]),
        (true, false) => Pullback::new((), |_, c| crate::grads![Some(c.clone()), None]),
        (false, true) => Pullback::new((), move |_, c| crate::grads![None, Some(b_of(c))]),
        (false, false) => Pullback::new((), |_, _| crate::grads![None, None]),
    })
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
pub mod gru_cell;
pub mod index_add;
pub mod index_select;
pub mod log;
pub mod log1p;
pub mod logical;
pub mod lstm_cell;
pub mod lstm_seq;
pub mod matmul;
pub mod max_min;
pub mod max_pool2d;
pub mod mul;
pub mod neg;
pub mod pad;
pub mod permute;
pub mod pow;
pub mod reduce_max;
pub mod reduce_prod;
pub mod reduce_sum;
pub mod relu;
pub mod rem;
pub mod reshape;
pub mod rounding;
pub mod scatter_add;
pub mod select;
pub mod sigmoid;
pub mod sign;
pub mod sin;
pub mod slice;
pub mod split;
pub mod sqrt;
pub mod stop_gradient;
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

/// A composite function of several tensors: the reference form of a fused primitive, written
/// with ordinary ops.
pub type Composite = fn(&[Tensor]) -> Vec<Tensor>;

/// Forward-mode rule of a fused primitive from its composite form: a nested `jvp` of `f` (a
/// missing tangent is zeros). Correct at any order because `f` is made of ordinary ops; used
/// where speed does not matter (the recurrent cells' tangents, their reverse passes' own
/// derivatives).
pub fn composite_jvp(f: Composite, p: &[&Tensor], t: &[Option<&Tensor>]) -> Outs<Option<Tensor>> {
    let primals: Vec<Tensor> = p.iter().map(|x| (*x).clone()).collect();
    let tangents: Vec<Tensor> =
        p.iter().zip(t).map(|(x, t)| t.map_or_else(|| x.zeros_like(), |t| t.clone())).collect();
    let (_, outs) = crate::transforms::jvp(|q: &Vec<Tensor>| f(q), &primals, &tangents);
    outs.into_iter().map(Some).collect()
}

/// Reverse-mode rule of a fused primitive from its composite form: the pullback runs a nested
/// `vjp` of `f` at the primals (a missing cotangent is zeros). See [`composite_jvp`].
pub fn composite_vjp(f: Composite, p: &[&Tensor], wants: &[bool]) -> Pullback {
    let primals: Vec<Tensor> = p.iter().map(|x| (*x).clone()).collect();
    let wants = wants.to_vec();
    Pullback::multi(primals, move |primals, cts| {
        let (outs, pb) = crate::transforms::vjp(|q: &Vec<Tensor>| f(q), primals);
        let cts: Vec<Tensor> =
            outs.iter().zip(cts).map(|(o, c)| c.clone().unwrap_or_else(|| o.zeros_like())).collect();
        pb(&cts).into_iter().zip(&wants).map(|(g, &w)| w.then_some(g)).collect()
    })
}
