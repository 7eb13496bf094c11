//! Activation functions as parameter-free [`Module`]s, so they can sit in a `Sequential`.
//!
//! The functions themselves are [`Tensor`] methods (`relu`, `leaky_relu`, `gelu`, `silu`,
//! `tanh`, `sigmoid`, `softmax`, `log_softmax`); these unit structs only wrap them.

use adjoint_core::{Params, Tensor};

use super::{Ctx, Module};

macro_rules! unit_activation {
    ($(#[$doc:meta])* $name:ident, |$x:ident| $body:expr_2021) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, Params)]
        #[params(crate = adjoint_core)]
        pub struct $name;

        impl Module for $name {
            #[track_caller]
            fn forward_with(&self, $x: &Tensor, _ctx: &mut Ctx) -> Tensor {
                $body
            }
        }
    };
}

unit_activation!(
    /// `max(x, 0)`.
    Relu,
    |x| x.relu()
);
unit_activation!(
    /// GELU, exact erf form (PyTorch's default `approximate='none'`).
    Gelu,
    |x| x.gelu()
);
unit_activation!(
    /// `x·σ(x)`.
    Silu,
    |x| x.silu()
);
unit_activation!(
    /// Hyperbolic tangent.
    Tanh,
    |x| x.tanh()
);
unit_activation!(
    /// Logistic sigmoid.
    Sigmoid,
    |x| x.sigmoid()
);

/// Leaky ReLU with a negative slope (PyTorch's default 0.01).
#[derive(Clone, Copy, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct LeakyRelu {
    /// Slope for negative inputs.
    #[params(skip)]
    pub slope: f64,
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu { slope: 0.01 }
    }
}

impl Module for LeakyRelu {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        x.leaky_relu(self.slope)
    }
}

/// Softmax along `axis`.
#[derive(Clone, Copy, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Softmax {
    /// The axis that sums to one.
    #[params(skip)]
    pub axis: usize,
}

impl Module for Softmax {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        x.softmax(self.axis)
    }
}

/// Log-softmax along `axis`.
#[derive(Clone, Copy, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct LogSoftmax {
    /// The normalised axis.
    #[params(skip)]
    pub axis: usize,
}

impl Module for LogSoftmax {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        x.log_softmax(self.axis)
    }
}

/// Flatten every axis from `start` on into one (PyTorch's `nn.Flatten`, default `start = 1`).
///
/// ```
/// use adjoint_nn::layers::{Flatten, Module};
/// use adjoint_core::Tensor;
/// assert_eq!(Flatten::default().forward(&Tensor::zeros(&[2, 3, 4, 5])).shape(), &[2, 60]);
/// ```
#[derive(Clone, Copy, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Flatten {
    /// First axis to merge.
    #[params(skip)]
    pub start: usize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten { start: 1 }
    }
}

impl Module for Flatten {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        if self.start >= x.rank() {
            panic!(
                "adjoint-nn: Flatten: start axis {} is out of range for shape {:?}",
                self.start,
                x.shape()
            );
        }
        let mut shape = x.shape()[..self.start].to_vec();
        shape.push(x.shape()[self.start..].iter().product());
        x.reshape(&shape)
    }
}
