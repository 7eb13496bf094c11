//! One module per GradBench eval. Each has `evaluate(function, input)`, which returns `None`
//! for a function the eval does not define.

pub mod ba;
pub mod det;
pub mod gd;
pub mod gmm;
pub mod hello;
pub mod ht;
pub mod kmeans;
pub mod llsq;
pub mod lse;
pub mod lstm;
pub mod ode;
pub mod particle;
pub mod saddle;

use adjoint_core::Tensor;

/// A concrete `f64` tensor of the given shape.
pub(crate) fn tensor(data: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape)
}
