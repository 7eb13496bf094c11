//! `vmap`: automatic batching. `vmap(f)` maps a function written for one example over a batch
//! axis, with no loop and no change to `f`.
//!
//! `vmap` pushes a *batch* level on the transform stack and hands `f` tracers that look like one
//! example (their `shape()` has no batch axis) but carry the whole batch. Every primitive `f`
//! runs is applied by its batching rule to the whole batch at once (see [`crate::batching`]).
//! Because the rules are written with ordinary ops, `vmap` composes with every transform in
//! both orders: `vmap(grad(f))` gives per-example gradients, `grad(vmap(f))` differentiates a
//! batched computation, and `vmap(vmap(f))` maps over two axes.
//!
//! Which axis is mapped is given per leaf of the input and output [`Params`] by [`Axes`].
//! Values that are not batched (`None`) are shared by all examples and never copied.
//!
//! Inside `f` a tensor is one example of many, so it has no single value: reading one
//! (`item()`, `to_vec()`) panics. Per-example branches are written with
//! [`Tensor::select`](crate::Tensor::select).

use std::panic::Location;

use crate::batching::move_axis;
use crate::params::Params;
use crate::tensor::Payload;
use crate::trace::{push_frame, Kind};

/// Which axis of each leaf `vmap` maps over (`in_axes`) or puts the batch on (`out_axes`).
/// `None` means "not batched": an input shared by every example, or an output that is the same
/// for every example.
///
/// Conversions: a `usize` or `Option<usize>` is [`Axes::All`]; an array `[Option<usize>; N]`
/// is [`Axes::Args`] (one entry per element of a tuple, `Vec` or array, as JAX's `in_axes`).
///
/// ```
/// use adjoint_core::vmap::Axes;
/// assert_eq!(Axes::from(1), Axes::All(Some(1)));
/// assert_eq!(Axes::from([None, Some(0)]), Axes::Args(vec![None, Some(0)]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Axes {
    /// The same axis for every leaf.
    All(Option<usize>),
    /// One axis per top-level element of a tuple (or `Vec`, array, map): every leaf under
    /// element `i` uses entry `i`.
    Args(Vec<Option<usize>>),
    /// One axis per leaf, in [`Params`] order.
    Leaves(Vec<Option<usize>>),
}

impl From<usize> for Axes {
    fn from(a: usize) -> Axes {
        Axes::All(Some(a))
    }
}

impl From<Option<usize>> for Axes {
    fn from(a: Option<usize>) -> Axes {
        Axes::All(a)
    }
}

impl<const N: usize> From<[Option<usize>; N]> for Axes {
    fn from(a: [Option<usize>; N]) -> Axes {
        Axes::Args(a.to_vec())
    }
}

impl Axes {
    /// The axis of every leaf of `p`.
    fn resolve<P: Params>(&self, p: &P, what: &str, loc: &Location<'_>) -> Vec<Option<usize>> {
        match self {
            Axes::All(a) => vec![*a; p.num_leaves()],
            Axes::Leaves(v) => {
                if v.len() != p.num_leaves() {
                    panic!(
                        "adjoint: vmap: {what} gives {} axes for a value with {} leaves (vmap at {loc})",
                        v.len(),
                        p.num_leaves()
                    );
                }
                v.clone()
            }
            Axes::Args(v) => p
                .named_leaves()
                .iter()
                .map(|(name, _)| {
                    let head = name.split('.').next().unwrap_or("");
                    let i = if head.is_empty() { Some(0) } else { head.parse::<usize>().ok() };
                    match i {
                        Some(i) if i < v.len() => v[i],
                        _ => panic!(
                            "adjoint: vmap: {what} gives {} per-argument axes, which do not cover leaf \
                             `{name}` (Axes::Args needs a tuple, Vec or array value; use Axes::Leaves \
                             otherwise) (vmap at {loc})",
                            v.len()
                        ),
                    }
                })
                .collect(),
        }
    }
}

/// Map `f` over axis 0 of every input leaf, stacking the outputs along axis 0.
///
/// ```
/// use adjoint_core::{vmap, Tensor};
/// // A function written for one vector, applied to each row of a matrix.
/// let norm = |x: &Tensor| (x * x).sum().sqrt();
/// let xs = Tensor::from_vec(vec![3.0f64, 4.0, 6.0, 8.0], &[2, 2]);
/// assert_eq!(vmap(norm)(&xs).to_vec::<f64>(), vec![5.0, 10.0]);
/// ```
#[track_caller]
pub fn vmap<P: Params, O: Params, F: Fn(&P) -> O>(f: F) -> impl Fn(&P) -> O {
    let loc = Location::caller();
    move |p: &P| vmap_call(&f, p, &Axes::All(Some(0)), &Axes::All(Some(0)), loc)
}

/// [`vmap`] with chosen axes: `in_axes` says which axis of each input leaf is mapped (`None`:
/// shared by all examples), `out_axes` where the batch axis goes in each output leaf.
///
/// ```
/// use adjoint_core::{vmap_axes, Tensor};
/// // x @ w for each column of xs (axis 1), w shared; results stacked as columns.
/// let w = Tensor::from_vec(vec![1.0f64, 10.0], &[2]);
/// let xs = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
/// let f = vmap_axes(|p: &(Tensor, Tensor)| &p.0 * &p.1, [Some(1), None], 1);
/// let y = f(&(xs, w));
/// assert_eq!(y.shape(), &[2, 3]);
/// assert_eq!(y.to_vec::<f64>(), vec![1.0, 2.0, 3.0, 40.0, 50.0, 60.0]);
/// ```
#[track_caller]
pub fn vmap_axes<P: Params, O: Params, F: Fn(&P) -> O>(
    f: F,
    in_axes: impl Into<Axes>,
    out_axes: impl Into<Axes>,
) -> impl Fn(&P) -> O {
    let loc = Location::caller();
    let (ia, oa) = (in_axes.into(), out_axes.into());
    move |p: &P| vmap_call(&f, p, &ia, &oa, loc)
}

#[cold]
fn size_mismatch<P: Params>(x: &P, axes: &[Option<usize>], loc: &Location<'_>) -> ! {
    let parts: Vec<String> = x
        .named_leaves()
        .iter()
        .zip(axes)
        .filter_map(|((name, t), a)| {
            a.map(|a| {
                let name = if name.is_empty() { "input" } else { name.as_str() };
                format!("`{name}` has {} along axis {a} (shape {:?})", t.shape()[a], t.shape())
            })
        })
        .collect();
    panic!("adjoint: vmap: batch sizes disagree: {} (vmap at {loc})", parts.join(", "))
}

/// Run `f` on `x` under a batch level. The workhorse of every `vmap` form.
pub(crate) fn vmap_call<P: Params, O: Params>(
    f: impl FnOnce(&P) -> O,
    x: &P,
    in_axes: &Axes,
    out_axes: &Axes,
    loc: &Location<'_>,
) -> O {
    let axes = in_axes.resolve(x, "in_axes", loc);
    let mut size = None;
    let mut i = 0;
    x.for_each_tensor(&mut |t| {
        if let Some(a) = axes[i] {
            if a >= t.rank() {
                let name = x.named_leaves().swap_remove(i).0;
                panic!(
                    "adjoint: vmap: in_axes maps axis {a} of input `{name}`, which has shape {:?} \
                     (vmap at {loc})",
                    t.shape()
                );
            }
            match size {
                Some(s) if s != t.shape()[a] => size_mismatch(x, &axes, loc),
                _ => size = Some(t.shape()[a]),
            }
        }
        i += 1;
    });
    let Some(size) = size else {
        panic!(
            "adjoint: vmap: no input is batched (every in_axes entry is None), so the batch size is \
             unknown (vmap at {loc})"
        )
    };
    let guard = push_frame(Kind::Batch);
    let mut i = 0;
    let traced = x.map_tensors(&mut |t| {
        let a = axes[i];
        i += 1;
        match a {
            Some(a) => crate::trace::batch_tracer(guard.level, guard.id, t.clone(), a),
            None => t.clone(),
        }
    });
    let out = f(&traced);
    drop(traced);
    let oaxes = out_axes.resolve(&out, "out_axes", loc);
    let mut i = 0;
    let res = out.map_tensors(&mut |t| {
        let o = oaxes[i];
        i += 1;
        if o.is_some_and(|o| o > t.rank()) {
            panic!(
                "adjoint: vmap: out_axes puts the batch at axis {} of output {} whose examples have \
                 shape {:?} (vmap at {loc})",
                o.unwrap_or(0),
                i - 1,
                t.shape()
            );
        }
        match (guard.own(t), o) {
            (Some(Payload::Batch { value, axis, .. }), Some(o)) => move_axis(value, *axis, o),
            (Some(Payload::Batch { .. }), None) => panic!(
                "adjoint: vmap: output {} differs between examples but its out_axes entry is None \
                 (vmap at {loc})",
                i - 1
            ),
            (_, Some(o)) => {
                let mut s = t.shape().to_vec();
                s.insert(o, size);
                t.unsqueeze(o).broadcast_to(&s)
            }
            (_, None) => t.clone(),
        }
    });
    drop(out);
    guard.pop();
    res
}

/// Batch `f` over `x` with per-leaf input axes and every output on axis 0 (for custom rules).
pub(crate) fn vmap_leaves<P: Params, O: Params>(f: impl FnOnce(&P) -> O, x: &P, axes: &[Option<usize>]) -> O {
    vmap_call(f, x, &Axes::Leaves(axes.to_vec()), &Axes::All(Some(0)), Location::caller())
}
