//! Methods on [`Tensor`](crate::Tensor): thin, checked front ends that `bind` primitives,
//! and composites built from them.
//!
//! Argument checks happen here, before anything runs, and panic with the op, the shapes and
//! the caller's line (`#[track_caller]`), so a mistake deep in a model points at the user's
//! code, not at a kernel.

mod activations;
mod elementwise;
mod linalg;
mod operators;
mod recurrent;
mod reduce;
mod shape;

pub use linalg::{Conv1dOptions, Conv2dOptions, Pool2dOptions};

pub(crate) use crate::primitive::misuse as fail;

/// Check that an axis is in range.
#[track_caller]
pub(crate) fn check_axis(op: &str, axis: usize, shape: &[usize]) {
    if axis >= shape.len() {
        fail(op, format!("axis {axis} is out of range for shape {shape:?}"));
    }
}

/// Check axes and return them sorted, rejecting duplicates.
#[track_caller]
pub(crate) fn norm_axes(op: &str, axes: &[usize], shape: &[usize]) -> Vec<usize> {
    let mut v = axes.to_vec();
    for &a in &v {
        check_axis(op, a, shape);
    }
    v.sort_unstable();
    if v.windows(2).any(|w| w[0] == w[1]) {
        fail(op, format!("axes {axes:?} repeat an axis (shape {shape:?})"));
    }
    v
}
