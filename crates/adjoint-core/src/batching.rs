//! Helpers for batching rules (the `batch` method of [`Primitive`]).
//!
//! A batching rule sees each argument one level down together with its batch axis (`None` for
//! an argument shared by every example) and returns the batched output with its batch axis. The
//! choices that keep `vmap` cheap:
//! - **The batch axis stays where it is** when the primitive allows it: a rule returns the axis
//!   its output has, so `vmap` over axis 2 of a reduction or an elementwise chain never moves
//!   data; only rules that need the batch dimension in a given place (matmul, reshape, conv)
//!   move it, and moving an axis is a strided view, not a copy.
//! - **Unbatched arguments are never copied per example.** Elementwise rules line an unbatched
//!   operand up with size-1 axes and let NumPy broadcasting repeat it; rules that need an
//!   explicit batch dimension (concat, gather, conv weights) get it as a stride-0
//!   `broadcast_to` view, and the kernel reads the one copy through stride 0.
//! - **Rules are written with ordinary ops**, like the derivative rules, so a batched value
//!   can itself be a tracer of a lower `grad`/`jvp`/`vmap` level: that is what makes
//!   `grad(vmap(f))` and `vmap(vmap(f))` work.

use smallvec::SmallVec;

use crate::primitive::{Aval, Outs, Primitive};
use crate::tensor::Tensor;
use crate::trace::{bind, bind_multi};

/// Move axis `from` of `t` to position `to` (a view).
///
/// ```
/// use adjoint_core::{batching::move_axis, Tensor};
/// assert_eq!(move_axis(&Tensor::zeros(&[2, 3, 4]), 2, 0).shape(), &[4, 2, 3]);
/// ```
pub fn move_axis(t: &Tensor, from: usize, to: usize) -> Tensor {
    if from == to {
        return t.clone();
    }
    let mut perm: Vec<usize> = (0..t.rank()).filter(|&i| i != from).collect();
    perm.insert(to, from);
    t.permute(&perm)
}

/// `t` with its batch dimension in front: a batched value has its axis moved there, an unbatched
/// one gets a new leading axis of `size` as a stride-0 view (no copy).
///
/// ```
/// use adjoint_core::{batching::to_front, Tensor};
/// assert_eq!(to_front(&Tensor::zeros(&[2, 5]), Some(1), 5).shape(), &[5, 2]);
/// assert_eq!(to_front(&Tensor::zeros(&[2]), None, 5).shape(), &[5, 2]);
/// ```
pub fn to_front(t: &Tensor, axis: Option<usize>, size: usize) -> Tensor {
    match axis {
        Some(a) => move_axis(t, a, 0),
        None => {
            let mut s = vec![size];
            s.extend_from_slice(t.shape());
            t.broadcast_to(&s)
        }
    }
}

/// Position in a batched value of the per-example axis `i`, the batch axis being `b`.
///
/// ```
/// use adjoint_core::batching::value_axis;
/// assert_eq!((value_axis(0, 1), value_axis(1, 1), value_axis(2, 1)), (0, 2, 3));
/// ```
pub fn value_axis(i: usize, b: usize) -> usize {
    if i >= b {
        i + 1
    } else {
        i
    }
}

/// For a reduction over per-example `axes` of a value batched at `b`: the axes to reduce in
/// the value and the batch axis of the result.
pub fn reduce_axes(axes: &[usize], b: usize, keepdim: bool) -> (Vec<usize>, usize) {
    let v = axes.iter().map(|&i| value_axis(i, b)).collect();
    let out = if keepdim { b } else { b - axes.iter().filter(|&&i| i < b).count() };
    (v, out)
}

fn per_example_rank(t: &Tensor, axis: Option<usize>) -> usize {
    t.rank() - usize::from(axis.is_some())
}

/// The batching rule of an elementwise primitive with NumPy broadcasting (any number of
/// operands): operands are lined up so that broadcasting does the batching, and the primitive
/// runs once on the whole batch.
///
/// The output keeps the batch axis of the first batched operand, so chains of elementwise ops
/// never move data. Other batched operands are permuted (a view) to match it; unbatched ones
/// get a size-1 axis (a view) where the batch axis falls inside their shape.
pub fn elementwise<P: Primitive + ?Sized>(
    p: &P,
    args: &[&Tensor],
    axes: &[Option<usize>],
) -> (Tensor, Option<usize>) {
    let ranks: SmallVec<[usize; 4]> = args.iter().zip(axes).map(|(t, a)| per_example_rank(t, *a)).collect();
    let r = ranks.iter().copied().max().unwrap_or(0);
    let Some(first) = axes.iter().position(|a| a.is_some()) else {
        return (bind(p, args), None);
    };
    let k = axes[first].expect("batched") + (r - ranks[first]);
    let mut aligned: SmallVec<[Tensor; 4]> = SmallVec::new();
    for ((t, ax), &ri) in args.iter().zip(axes).zip(&ranks) {
        let pad = r - ri;
        aligned.push(match *ax {
            Some(a) if a + pad == k => (*t).clone(),
            Some(a) if k >= pad => move_axis(t, a, k - pad),
            Some(a) => {
                // The batch axis falls left of this operand's dims: [B, 1 (pad - k times), s...].
                let front = move_axis(t, a, 0);
                let mut shape = vec![front.shape()[0]];
                shape.extend(std::iter::repeat_n(1, pad - k));
                shape.extend_from_slice(&front.shape()[1..]);
                front.reshape(&shape)
            }
            None if k <= pad => (*t).clone(),
            None => t.unsqueeze(k - pad),
        });
    }
    let refs: SmallVec<[&Tensor; 4]> = aligned.iter().collect();
    (bind(p, &refs), Some(k))
}

/// The fallback batching rule: run the primitive once per example and stack the results along
/// axis 0. Correct for any primitive, but pays the per-op cost `size` times. An empty batch
/// runs nothing: the outputs' shapes come from the primitive's shape rule.
pub fn by_loop<P: Primitive + ?Sized>(
    p: &P,
    args: &[&Tensor],
    axes: &[Option<usize>],
    size: usize,
) -> (Outs<Tensor>, Outs<Option<usize>>) {
    if size == 0 {
        let avals: SmallVec<[Aval; 4]> = args
            .iter()
            .zip(axes)
            .map(|(t, a)| {
                let mut shape = adjoint_tensor::layout::Shape::from_slice(t.shape());
                if let Some(a) = a {
                    shape.remove(*a);
                }
                Aval { shape, dtype: t.dtype() }
            })
            .collect();
        return p
            .shape(&avals)
            .into_iter()
            .map(|o| {
                let mut shape = vec![0];
                shape.extend_from_slice(&o.shape);
                (Tensor::full_of(&shape, 0.0, o.dtype), Some(0))
            })
            .unzip();
    }
    let mut per_out: Vec<Vec<Tensor>> = Vec::new();
    for i in 0..size {
        let ex: SmallVec<[Tensor; 4]> = args
            .iter()
            .zip(axes)
            .map(|(t, a)| match a {
                Some(a) => t.narrow(*a, i, 1).squeeze(*a),
                None => (*t).clone(),
            })
            .collect();
        let refs: SmallVec<[&Tensor; 4]> = ex.iter().collect();
        let outs = bind_multi(p, &refs);
        per_out.resize_with(outs.len(), Vec::new);
        for (k, o) in outs.into_iter().enumerate() {
            per_out[k].push(o);
        }
    }
    per_out
        .iter()
        .map(|outs| {
            let refs: Vec<&Tensor> = outs.iter().collect();
            (Tensor::stack(&refs, 0), Some(0))
        })
        .unzip()
}

/// [`by_loop`] for an empty batch of a one-output primitive: the output comes from the shape
/// rule (rules whose batching trick needs at least one example use this for `size == 0`).
pub fn by_loop1<P: Primitive + ?Sized>(
    p: &P,
    args: &[&Tensor],
    axes: &[Option<usize>],
) -> (Tensor, Option<usize>) {
    let (mut o, mut a) = by_loop(p, args, axes, 0);
    (o.swap_remove(0), a.swap_remove(0))
}

/// The batching rule of a row-wise primitive (every argument and output `[rows, features]`,
/// each row computed independently, like the recurrent cells): the batch axis is folded into
/// the rows (`[size, rows, f] → [size·rows, f]`), the primitive runs once, and its outputs are
/// unfolded with the batch axis in front. Unbatched arguments are broadcast first (the fold
/// then copies them once).
///
/// ```
/// use adjoint_core::{batching::by_rows, prims::gru_cell::GruCell, Tensor};
/// let (g, h) = (Tensor::zeros(&[2, 6]), Tensor::ones(&[4, 2, 2]));
/// let (outs, axes) = by_rows(&GruCell, &[&g, &g, &h], &[None, None, Some(0)], 4);
/// assert_eq!((outs[0].shape(), axes[0]), (&[4, 2, 2][..], Some(0)));
/// ```
pub fn by_rows<P: Primitive + ?Sized>(
    p: &P,
    args: &[&Tensor],
    axes: &[Option<usize>],
    size: usize,
) -> (Outs<Tensor>, Outs<Option<usize>>) {
    let mut rows = 0;
    let folded: SmallVec<[Tensor; 6]> = args
        .iter()
        .zip(axes)
        .map(|(t, a)| {
            let t = to_front(t, *a, size);
            let s = t.shape();
            rows = s[1];
            t.reshape(&[s[0] * s[1], s[2]])
        })
        .collect();
    let refs: SmallVec<[&Tensor; 6]> = folded.iter().collect();
    bind_multi(p, &refs)
        .into_iter()
        .map(|o| {
            let f = o.shape()[1];
            (o.reshape(&[size, rows, f]), Some(0))
        })
        .unzip()
}
