//! [`Sequential`]: a list of [`Layer`]s built at run time, named like `nn.Sequential`.
//!
//! For a fixed architecture a tuple `(Linear, Relu, Linear)` is a module too and is checked
//! by the compiler; `Sequential` is for models whose depth is chosen at run time. `Params` is
//! implemented by hand so that the enum adds nothing to the names: the parameters of the
//! third layer are `2.weight`, `2.bias`, exactly as in PyTorch.

use adjoint_core::params::{join_name, Buffer};
use adjoint_core::{Params, Tensor};

use super::*;

macro_rules! layer_enum {
    ($($v:ident),* $(,)?) => {
        /// One layer of a [`Sequential`]: any layer of this module.
        #[derive(Clone, Debug)]
        #[allow(missing_docs)]
        // Layers are built once per model and hold tensor handles (a few hundred bytes at
        // most); boxing the larger variants would buy nothing but indirection.
        #[allow(clippy::large_enum_variant)]
        pub enum Layer {
            $($v($v),)*
        }

        $(impl From<$v> for Layer {
            fn from(l: $v) -> Layer {
                Layer::$v(l)
            }
        })*

        impl Params for Layer {
            fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
                match self { $(Layer::$v(l) => l.for_each_tensor(f),)* }
            }
            fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
                match self { $(Layer::$v(l) => l.for_each_named(prefix, f),)* }
            }
            fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer)) {
                match self { $(Layer::$v(l) => l.for_each_buffer(prefix, f),)* }
            }
            fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
                match self { $(Layer::$v(l) => Layer::$v(l.map_tensors(f)),)* }
            }
        }

        impl Module for Layer {
            #[track_caller]
            fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
                match self { $(Layer::$v(l) => l.forward_with(x, ctx),)* }
            }
        }
    };
}

layer_enum!(
    Linear,
    Conv1d,
    Conv2d,
    MaxPool1d,
    MaxPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm,
    LayerNorm,
    RmsNorm,
    Dropout,
    Embedding,
    Lstm,
    Gru,
    MultiheadSelfAttention,
    TransformerEncoderLayer,
    Relu,
    LeakyRelu,
    Gelu,
    Silu,
    Tanh,
    Sigmoid,
    Softmax,
    LogSoftmax,
    Flatten,
    Sequential,
);

/// Layers applied in order (`nn.Sequential`).
///
/// ```
/// use adjoint_nn::layers::{Linear, Module, Relu, Sequential};
/// use adjoint_core::{Params, Tensor};
/// use adjoint_tensor::random::Key;
/// let k = Key::new(0).split(3);
/// let mut net = Sequential::new();
/// for (i, w) in [(4, 8), (8, 8), (8, 2)].into_iter().enumerate() {
///     net = net.add(Linear::new(w.0, w.1, &k[i]));
///     if i < 2 { net = net.add(Relu); }
/// }
/// assert_eq!(net.forward(&Tensor::ones(&[3, 4])).shape(), &[3, 2]);
/// assert_eq!(net.named_leaves()[2].0, "2.weight");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Sequential {
    /// The layers, in order.
    pub layers: Vec<Layer>,
}

impl Sequential {
    /// No layers (the identity).
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// This list with `layer` appended.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Into<Layer>) -> Sequential {
        self.layers.push(layer.into());
        self
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Params for Sequential {
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        self.layers.for_each_tensor(f)
    }
    fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        for (i, l) in self.layers.iter().enumerate() {
            l.for_each_named(&join_name(prefix, &i.to_string()), f)
        }
    }
    fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer)) {
        self.layers.for_each_buffer(prefix, f)
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        Sequential { layers: self.layers.map_tensors(f) }
    }
}

impl Module for Sequential {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
        self.layers.forward_with(x, ctx)
    }
}
