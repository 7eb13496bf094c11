//! [`Linear`] and [`Embedding`].
//!
//! `Linear` applies to the last axis of inputs of any rank; inputs of rank > 2 are folded to
//! a matrix so that one matrix product runs (not a batched product over broadcast weights).

use adjoint_core::{Params, Tensor};
use adjoint_tensor::random::Key;
use adjoint_tensor::DType;

use super::{setters, Ctx, Module};
use crate::init;

/// Options of a [`Linear`] layer.
#[derive(Clone, Debug)]
pub struct LinearConfig {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Whether to add a bias (default true).
    pub bias: bool,
    /// Parameter dtype (default `f32`).
    pub dtype: DType,
}
setters!(LinearConfig { bias: bool, dtype: DType });

impl LinearConfig {
    /// Defaults: bias, `f32`.
    pub fn new(in_features: usize, out_features: usize) -> Self {
        LinearConfig { in_features, out_features, bias: true, dtype: DType::F32 }
    }

    /// A layer with PyTorch's default init: weight `U(±1/√in)` (kaiming_uniform, a = √5) and
    /// bias `U(±1/√in)`.
    pub fn init(&self, key: &Key) -> Linear {
        let (weight, bias) = init::torch_default_weight_bias(
            key,
            &[self.out_features, self.in_features],
            self.bias,
            self.dtype,
        );
        Linear { weight, bias }
    }
}

/// `y = x Wᵀ + b` over the last axis (`nn.Linear`): `weight` is `[out, in]`, `bias` `[out]`.
///
/// ```
/// use adjoint_nn::layers::{Linear, Module};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let lin = Linear::new(3, 2, &Key::new(0));
/// assert_eq!(lin.forward(&Tensor::ones(&[5, 7, 3])).shape(), &[5, 7, 2]);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Tensor,
    /// `[out_features]`, if any.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// An `f32` layer with bias and PyTorch's default init.
    pub fn new(in_features: usize, out_features: usize, key: &Key) -> Linear {
        LinearConfig::new(in_features, out_features).init(key)
    }

    /// Options for a layer.
    pub fn config(in_features: usize, out_features: usize) -> LinearConfig {
        LinearConfig::new(in_features, out_features)
    }
}

impl Module for Linear {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        let (out, inp) = (self.weight.shape()[0], self.weight.shape()[1]);
        if x.rank() == 0 || x.shape()[x.rank() - 1] != inp {
            panic!(
                "adjoint-nn: Linear: input shape {:?} does not end in in_features = {inp} (weight {:?})",
                x.shape(),
                self.weight.shape()
            );
        }
        let lead = &x.shape()[..x.rank() - 1];
        let x2 = if x.rank() == 2 { x.clone() } else { x.reshape(&[lead.iter().product(), inp]) };
        let mut y = x2.matmul(&self.weight.t());
        if let Some(b) = &self.bias {
            y = y + b;
        }
        if x.rank() == 2 {
            y
        } else {
            let mut shape = lead.to_vec();
            shape.push(out);
            y.reshape(&shape)
        }
    }
}

/// Options of an [`Embedding`].
#[derive(Clone, Debug)]
pub struct EmbeddingConfig {
    /// Vocabulary size.
    pub num_embeddings: usize,
    /// Vector size.
    pub embedding_dim: usize,
    /// A row that is initialised to zero and receives no gradient (default none).
    pub padding_idx: Option<usize>,
    /// Parameter dtype (default `f32`).
    pub dtype: DType,
}
setters!(EmbeddingConfig { padding_idx: Option<usize>, dtype: DType });

impl EmbeddingConfig {
    /// Defaults: no padding index, `f32`.
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Self {
        EmbeddingConfig { num_embeddings, embedding_dim, padding_idx: None, dtype: DType::F32 }
    }

    /// A table with PyTorch's default init `N(0, 1)` (the padding row zero).
    pub fn init(&self, key: &Key) -> Embedding {
        let mut w = init::normal(key, &[self.num_embeddings, self.embedding_dim], 0.0, 1.0, DType::F64)
            .to_vec::<f64>();
        if let Some(p) = self.padding_idx {
            assert!(
                p < self.num_embeddings,
                "adjoint-nn: Embedding: padding_idx {p} ≥ {}",
                self.num_embeddings
            );
            w[p * self.embedding_dim..(p + 1) * self.embedding_dim].fill(0.0);
        }
        let weight = Tensor::from_vec(w, &[self.num_embeddings, self.embedding_dim]).cast(self.dtype);
        Embedding { weight, padding_idx: self.padding_idx }
    }
}

/// A lookup table (`nn.Embedding`): integer indices of any shape `S` give vectors `S + [dim]`.
///
/// ```
/// use adjoint_nn::layers::{Embedding, Module};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let emb = Embedding::new(10, 4, &Key::new(0));
/// let ids = Tensor::from_vec(vec![1i64, 2, 3, 9, 0, 0], &[2, 3]);
/// assert_eq!(emb.forward(&ids).shape(), &[2, 3, 4]);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Tensor,
    /// Row that gets no gradient.
    #[params(skip)]
    pub padding_idx: Option<usize>,
}

impl Embedding {
    /// An `f32` table with `N(0, 1)` entries.
    pub fn new(num_embeddings: usize, embedding_dim: usize, key: &Key) -> Embedding {
        EmbeddingConfig::new(num_embeddings, embedding_dim).init(key)
    }

    /// Options for a table.
    pub fn config(num_embeddings: usize, embedding_dim: usize) -> EmbeddingConfig {
        EmbeddingConfig::new(num_embeddings, embedding_dim)
    }
}

impl Module for Embedding {
    #[track_caller]
    fn forward_with(&self, ids: &Tensor, _ctx: &mut Ctx) -> Tensor {
        if ids.dtype() != DType::I64 {
            panic!(
                "adjoint-nn: Embedding: indices must be i64, got {} of shape {:?}",
                ids.dtype(),
                ids.shape()
            );
        }
        let (n, dim) = (self.weight.shape()[0], self.weight.shape()[1]);
        let flat = ids.reshape(&[ids.numel()]);
        if let Some(bad) = flat.to_vec::<i64>().into_iter().find(|&i| i < 0 || i as usize >= n) {
            panic!("adjoint-nn: Embedding: index {bad} is out of range for {n} embeddings");
        }
        let mut rows = self.weight.index_select(0, &flat);
        if let Some(p) = self.padding_idx {
            // The padding row keeps its value but passes no derivative (as PyTorch).
            let is_pad = flat.eq_scalar(p as f64).unsqueeze(1);
            rows = Tensor::select(&is_pad, &adjoint_core::stop_gradient(&rows), &rows);
        }
        let mut shape = ids.shape().to_vec();
        shape.push(dim);
        rows.reshape(&shape)
    }
}
