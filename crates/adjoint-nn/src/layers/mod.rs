//! Layers: functional modules whose parameters are plain [`Tensor`] fields.
//!
//! ## Design choices
//! - **A layer is a value.** Each layer is a `#[derive(Params)]` struct of tensors (the
//!   parameters, named exactly as in PyTorch's `state_dict`: `weight`, `bias`,
//!   `weight_ih_l0`, `self_attn.in_proj_weight`, …) plus skipped configuration fields (stride,
//!   eps, …). Its gradient is a layer-shaped value; optimizers return a new layer. Nothing is
//!   mutated except [`Buffer`](adjoint_core::params::Buffer)s (batch-norm running statistics),
//!   which are shared cells that are not differentiated but are saved by checkpoints.
//! - **[`Module`] has one required method**, `forward_with(&self, x, ctx)`; `forward(x)` is
//!   `forward_with` in evaluation mode. The [`Ctx`] says whether we are training and carries
//!   the PRNG [`Key`] for dropout. Passing the mode explicitly (instead of a `training` flag
//!   stored in every layer, as PyTorch does) keeps layers immutable values, makes the same
//!   model usable for training and evaluation at once, and makes dropout reproducible: the
//!   `i`-th random draw of a forward pass uses `key.fold_in(i)`.
//! - **Construction**: `Layer::new(…, &key)` builds an `f32` layer with PyTorch's default
//!   initialisation; `LayerConfig::new(…).option(v)….dtype(DType::F64).init(&key)` exposes
//!   every option. Keys are split per parameter, so a seed fixes the whole model.
//! - **Composition**: tuples of modules (up to 8) are modules that apply their elements in
//!   order, with parameter names `0.weight`, `2.bias`, … exactly as `nn.Sequential`;
//!   `Vec<M>` is a homogeneous stack; [`Sequential`] holds a runtime list of [`Layer`]s.
//! - **Batch-first everywhere** (`[batch, time, features]` for recurrent and attention layers),
//!   the modern default; PyTorch fixtures use `batch_first=True`.
//!
//! ```
//! use adjoint_nn::layers::{Linear, Module, Relu};
//! use adjoint_core::Tensor;
//! use adjoint_tensor::random::Key;
//! let key = Key::new(0);
//! let ks = key.split(2);
//! let mlp = (Linear::new(4, 8, &ks[0]), Relu, Linear::new(8, 2, &ks[1]));
//! let y = mlp.forward(&Tensor::ones(&[3, 4]));
//! assert_eq!(y.shape(), &[3, 2]);
//! use adjoint_core::Params;
//! let names: Vec<String> = mlp.named_leaves().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
//! ```

use adjoint_core::Tensor;
use adjoint_tensor::random::Key;

mod activation;
mod attention;
mod conv;
mod linear;
mod norm;
mod rnn;
mod sequential;

pub use activation::{Flatten, Gelu, LeakyRelu, LogSoftmax, Relu, Sigmoid, Silu, Softmax, Tanh};
pub use attention::{
    causal_mask, MultiheadSelfAttention, MultiheadSelfAttentionConfig, TransformerEncoderLayer,
    TransformerEncoderLayerConfig,
};
pub use conv::{AvgPool1d, AvgPool2d, Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, MaxPool1d, MaxPool2d};
pub use linear::{Embedding, EmbeddingConfig, Linear, LinearConfig};
pub use norm::{
    BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig, Dropout, LayerNorm, LayerNormConfig, RmsNorm,
    RmsNormConfig,
};
pub use rnn::{Gru, Lstm, RnnConfig, RnnWeights};
pub use sequential::{Layer, Sequential};

/// Training or evaluation mode, and the randomness of a forward pass.
///
/// ```
/// use adjoint_nn::layers::Ctx;
/// use adjoint_tensor::random::Key;
/// let mut ctx = Ctx::train(Key::new(1));
/// assert!(ctx.is_training());
/// assert_ne!(ctx.next_key(), ctx.next_key());
/// assert!(!Ctx::eval().is_training());
/// ```
#[derive(Clone, Debug)]
pub struct Ctx {
    training: bool,
    key: Option<Key>,
    draws: u64,
}

impl Ctx {
    /// Evaluation mode: dropout is the identity, batch norm uses its running statistics.
    pub fn eval() -> Ctx {
        Ctx { training: false, key: None, draws: 0 }
    }

    /// Training mode with the key that dropout masks are drawn from.
    pub fn train(key: Key) -> Ctx {
        Ctx { training: true, key: Some(key), draws: 0 }
    }

    /// Whether this is a training pass.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// A fresh key for the next random draw of this pass (`key.fold_in(i)` for the `i`-th
    /// draw). Panics in evaluation mode, where no layer should need randomness.
    #[track_caller]
    pub fn next_key(&mut self) -> Key {
        let Some(key) = self.key else {
            panic!("adjoint-nn: Ctx::next_key: no key in evaluation mode (use Ctx::train(key) to train)")
        };
        let k = key.fold_in(self.draws);
        self.draws += 1;
        k
    }
}

/// A layer (or a whole model) that maps one tensor to one tensor.
pub trait Module {
    /// Apply the module in the mode given by `ctx`.
    fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor;

    /// Apply the module in evaluation mode.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, &mut Ctx::eval())
    }
}

impl<M: Module> Module for Vec<M> {
    fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
        let mut h = x.clone();
        for m in self {
            h = m.forward_with(&h, ctx);
        }
        h
    }
}

impl<M: Module> Module for Box<M> {
    fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
        (**self).forward_with(x, ctx)
    }
}

macro_rules! tuple_module {
    ($($n:ident $i:tt),+) => {
        impl<$($n: Module),+> Module for ($($n,)+) {
            fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
                let h = x.clone();
                $(let h = self.$i.forward_with(&h, ctx);)+
                h
            }
        }
    };
}
tuple_module!(A 0);
tuple_module!(A 0, B 1);
tuple_module!(A 0, B 1, C 2);
tuple_module!(A 0, B 1, C 2, D 3);
tuple_module!(A 0, B 1, C 2, D 3, E 4);
tuple_module!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_module!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_module!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// Chainable setters for the public fields of a config struct.
macro_rules! setters {
    ($cfg:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        impl $cfg {
            $(
                #[doc = concat!("Set `", stringify!($field), "`.")]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}
pub(crate) use setters;
