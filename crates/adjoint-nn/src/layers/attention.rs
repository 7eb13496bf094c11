//! [`MultiheadSelfAttention`] and [`TransformerEncoderLayer`], batch-first.
//!
//! ## Matching PyTorch
//! - Parameters carry `nn.MultiheadAttention`'s names and layout: a packed `in_proj_weight`
//!   `[3E, E]` (rows: query, key, value), `in_proj_bias` `[3E]`, and `out_proj.weight`/`.bias`;
//!   init as PyTorch: Xavier-uniform packed projection, zero biases, `Linear` default for
//!   `out_proj.weight`.
//! - Masks follow PyTorch's boolean convention: `true` means "may not attend". Masked scores
//!   are replaced (by `select`, so they receive exactly zero derivative) with a large negative
//!   finite number instead of `-inf`, which gives the same softmax whenever a row has at least
//!   one visible position and keeps every derivative finite.
//! - [`TransformerEncoderLayer`] has `nn.TransformerEncoderLayer`'s sub-modules and names
//!   (`self_attn`, `linear1`, `linear2`, `norm1`, `norm2`), ReLU by default, and both
//!   arrangements: post-norm (`norm_first = false`, PyTorch's default) and pre-norm.

use adjoint_core::{Params, Tensor};
use adjoint_tensor::random::Key;
use adjoint_tensor::DType;

use super::{setters, Ctx, Dropout, LayerNorm, LayerNormConfig, Linear, LinearConfig, Module};
use crate::init;

/// A `[t, t]` boolean mask that is `true` above the diagonal (position `i` may not attend to
/// `j > i`), PyTorch's causal mask in boolean form.
///
/// ```
/// use adjoint_nn::layers::causal_mask;
/// assert_eq!(causal_mask(3).to_vec::<bool>(), [false, true, true, false, false, true, false, false, false]);
/// ```
pub fn causal_mask(t: usize) -> Tensor {
    let v: Vec<bool> = (0..t * t).map(|k| k % t > k / t).collect();
    Tensor::from_vec(v, &[t, t])
}

/// Options of a [`MultiheadSelfAttention`].
#[derive(Clone, Debug)]
pub struct MultiheadSelfAttentionConfig {
    /// Model width `E`.
    pub embed_dim: usize,
    /// Heads; `E` must divide by it.
    pub num_heads: usize,
    /// Dropout on the attention weights, in training (default 0).
    pub dropout: f64,
    /// Biases on the projections (default true).
    pub bias: bool,
    /// Apply the causal mask on every call (default false).
    pub causal: bool,
    /// Parameter dtype (default `f32`).
    pub dtype: DType,
}
setters!(MultiheadSelfAttentionConfig { dropout: f64, bias: bool, causal: bool, dtype: DType });

impl MultiheadSelfAttentionConfig {
    /// Defaults: no dropout, biases, not causal, `f32`.
    pub fn new(embed_dim: usize, num_heads: usize) -> Self {
        MultiheadSelfAttentionConfig {
            embed_dim,
            num_heads,
            dropout: 0.0,
            bias: true,
            causal: false,
            dtype: DType::F32,
        }
    }

    /// A layer with PyTorch's init.
    #[track_caller]
    pub fn init(&self, key: &Key) -> MultiheadSelfAttention {
        let e = self.embed_dim;
        if self.num_heads == 0 || !e.is_multiple_of(self.num_heads) {
            panic!(
                "adjoint-nn: MultiheadSelfAttention: embed_dim {e} must divide by num_heads {}",
                self.num_heads
            );
        }
        let k = key.split(2);
        let mut out_proj = LinearConfig::new(e, e).bias(self.bias).dtype(self.dtype).init(&k[1]);
        out_proj.bias = out_proj.bias.map(|b| b.zeros_like());
        MultiheadSelfAttention {
            in_proj_weight: init::xavier_uniform(&k[0], &[3 * e, e], 1.0, self.dtype),
            in_proj_bias: self.bias.then(|| init::zeros(&[3 * e], self.dtype)),
            out_proj,
            num_heads: self.num_heads,
            dropout: self.dropout,
            causal: self.causal,
        }
    }
}

/// Multi-head scaled dot-product self-attention over `[B, T, E]` (`nn.MultiheadAttention`
/// with `query = key = value`, `batch_first=True`).
///
/// ```
/// use adjoint_nn::layers::{Module, MultiheadSelfAttention};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let att = MultiheadSelfAttention::config(8, 2).causal(true).init(&Key::new(0));
/// assert_eq!(att.forward(&Tensor::ones(&[3, 5, 8])).shape(), &[3, 5, 8]);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct MultiheadSelfAttention {
    /// Packed query/key/value projection `[3E, E]`.
    pub in_proj_weight: Tensor,
    /// Packed projection bias `[3E]`.
    pub in_proj_bias: Option<Tensor>,
    /// Output projection.
    pub out_proj: Linear,
    /// Heads.
    #[params(skip)]
    pub num_heads: usize,
    /// Dropout on the attention weights (training only).
    #[params(skip)]
    pub dropout: f64,
    /// Whether every call is causally masked.
    #[params(skip)]
    pub causal: bool,
}

impl MultiheadSelfAttention {
    /// An `f32` layer with biases, not causal.
    pub fn new(embed_dim: usize, num_heads: usize, key: &Key) -> Self {
        MultiheadSelfAttentionConfig::new(embed_dim, num_heads).init(key)
    }

    /// Options for a layer.
    pub fn config(embed_dim: usize, num_heads: usize) -> MultiheadSelfAttentionConfig {
        MultiheadSelfAttentionConfig::new(embed_dim, num_heads)
    }

    /// Attention with an extra boolean `mask` (`[T, T]` or `[B, T, T]`, `true` = may not
    /// attend), combined with the causal mask when the layer is causal.
    #[track_caller]
    pub fn forward_masked(&self, x: &Tensor, mask: Option<&Tensor>, ctx: &mut Ctx) -> Tensor {
        let e = self.in_proj_weight.shape()[1];
        if x.rank() != 3 || x.shape()[2] != e {
            panic!(
                "adjoint-nn: MultiheadSelfAttention: input must be [batch, time, {e}], got {:?}",
                x.shape()
            );
        }
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let (nh, d) = (self.num_heads, e / self.num_heads);
        let mut qkv = x.reshape(&[b * t, e]).matmul(&self.in_proj_weight.t());
        if let Some(bias) = &self.in_proj_bias {
            qkv = qkv + bias;
        }
        // [B·T, 3E] → [3, B, H, T, D]
        let qkv = qkv.reshape(&[b, t, 3, nh, d]).permute(&[2, 0, 3, 1, 4]);
        let pick = |i: usize| qkv.narrow(0, i, 1).reshape(&[b, nh, t, d]);
        let (q, k, v) = (pick(0), pick(1), pick(2));
        let mut scores = (q * (1.0 / (d as f64).sqrt())).matmul(&k.transpose(2, 3));
        let mut full_mask = self.causal.then(|| causal_mask(t));
        if let Some(m) = mask {
            let ok = m.dtype() == DType::Bool
                && ((m.rank() == 2 && m.shape() == [t, t]) || (m.rank() == 3 && m.shape() == [b, t, t]));
            if !ok {
                panic!(
                    "adjoint-nn: MultiheadSelfAttention: mask must be bool [{t}, {t}] or [{b}, {t}, {t}], got {} {:?}",
                    m.dtype(),
                    m.shape()
                );
            }
            let m = if m.rank() == 3 { m.unsqueeze(1) } else { m.clone() };
            full_mask = Some(match full_mask {
                Some(c) => c.logical_or(&m),
                None => m,
            });
        }
        if let Some(m) = full_mask {
            scores = Tensor::select(&m, &Tensor::scalar_of(-1e30, scores.dtype()), &scores);
        }
        let mut attn = scores.softmax(3);
        attn = Dropout { p: self.dropout }.forward_with(&attn, ctx);
        let y = attn.matmul(&v).permute(&[0, 2, 1, 3]).reshape(&[b, t, e]);
        self.out_proj.forward(&y)
    }
}

impl Module for MultiheadSelfAttention {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
        self.forward_masked(x, None, ctx)
    }
}

/// Options of a [`TransformerEncoderLayer`].
#[derive(Clone, Debug)]
pub struct TransformerEncoderLayerConfig {
    /// Model width `E`.
    pub d_model: usize,
    /// Attention heads.
    pub nhead: usize,
    /// Hidden width of the feed-forward block (PyTorch's default 2048).
    pub dim_feedforward: usize,
    /// Dropout after attention, inside and after the feed-forward block (default 0.1).
    pub dropout: f64,
    /// GELU instead of ReLU in the feed-forward block (default false).
    pub gelu: bool,
    /// LayerNorm eps (default 1e-5).
    pub layer_norm_eps: f64,
    /// Pre-norm (`true`) or post-norm (`false`, PyTorch's default).
    pub norm_first: bool,
    /// Causal self-attention (default false).
    pub causal: bool,
    /// Parameter dtype (default `f32`).
    pub dtype: DType,
}
setters!(TransformerEncoderLayerConfig {
    dim_feedforward: usize,
    dropout: f64,
    gelu: bool,
    layer_norm_eps: f64,
    norm_first: bool,
    causal: bool,
    dtype: DType
});

impl TransformerEncoderLayerConfig {
    /// PyTorch's defaults (`dim_feedforward = 2048`, dropout 0.1, ReLU, post-norm).
    pub fn new(d_model: usize, nhead: usize) -> Self {
        TransformerEncoderLayerConfig {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            gelu: false,
            layer_norm_eps: 1e-5,
            norm_first: false,
            causal: false,
            dtype: DType::F32,
        }
    }

    /// A layer with PyTorch's init for each sub-module.
    pub fn init(&self, key: &Key) -> TransformerEncoderLayer {
        let k = key.split(3);
        let (e, f, dt) = (self.d_model, self.dim_feedforward, self.dtype);
        let norm = || LayerNormConfig::new(&[e]).eps(self.layer_norm_eps).dtype(dt).init(key);
        TransformerEncoderLayer {
            self_attn: MultiheadSelfAttentionConfig::new(e, self.nhead)
                .dropout(self.dropout)
                .causal(self.causal)
                .dtype(dt)
                .init(&k[0]),
            linear1: LinearConfig::new(e, f).dtype(dt).init(&k[1]),
            linear2: LinearConfig::new(f, e).dtype(dt).init(&k[2]),
            norm1: norm(),
            norm2: norm(),
            dropout: self.dropout,
            gelu: self.gelu,
            norm_first: self.norm_first,
        }
    }
}

/// A Transformer encoder block (`nn.TransformerEncoderLayer`, `batch_first=True`):
/// post-norm `x = norm1(x + sa(x)); x = norm2(x + ff(x))`, or pre-norm
/// `x = x + sa(norm1(x)); x = x + ff(norm2(x))`, with `ff(x) = linear2(dropout(act(linear1(x))))`.
///
/// ```
/// use adjoint_nn::layers::{Module, TransformerEncoderLayer};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let block = TransformerEncoderLayer::config(8, 2).dim_feedforward(16).norm_first(true).init(&Key::new(0));
/// assert_eq!(block.forward(&Tensor::ones(&[2, 5, 8])).shape(), &[2, 5, 8]);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct TransformerEncoderLayer {
    /// Self-attention.
    pub self_attn: MultiheadSelfAttention,
    /// Feed-forward expansion `E → F`.
    pub linear1: Linear,
    /// Feed-forward projection `F → E`.
    pub linear2: Linear,
    /// Norm around the attention block.
    pub norm1: LayerNorm,
    /// Norm around the feed-forward block.
    pub norm2: LayerNorm,
    /// Dropout probability (training only).
    #[params(skip)]
    pub dropout: f64,
    /// GELU (true) or ReLU (false).
    #[params(skip)]
    pub gelu: bool,
    /// Pre-norm (true) or post-norm (false).
    #[params(skip)]
    pub norm_first: bool,
}

impl TransformerEncoderLayer {
    /// An `f32` block with PyTorch's defaults.
    pub fn new(d_model: usize, nhead: usize, key: &Key) -> Self {
        TransformerEncoderLayerConfig::new(d_model, nhead).init(key)
    }

    /// Options for a block.
    pub fn config(d_model: usize, nhead: usize) -> TransformerEncoderLayerConfig {
        TransformerEncoderLayerConfig::new(d_model, nhead)
    }

    /// The block with an extra boolean attention mask (`true` = may not attend).
    #[track_caller]
    pub fn forward_masked(&self, x: &Tensor, mask: Option<&Tensor>, ctx: &mut Ctx) -> Tensor {
        let drop = Dropout { p: self.dropout };
        let sa = |x: &Tensor, ctx: &mut Ctx| {
            let y = self.self_attn.forward_masked(x, mask, ctx);
            drop.forward_with(&y, ctx)
        };
        let ff = |x: &Tensor, ctx: &mut Ctx| {
            let h = self.linear1.forward(x);
            let h = if self.gelu { h.gelu() } else { h.relu() };
            let h = drop.forward_with(&h, ctx);
            drop.forward_with(&self.linear2.forward(&h), ctx)
        };
        if self.norm_first {
            let x = x + sa(&self.norm1.forward(x), ctx);
            &x + ff(&self.norm2.forward(&x), ctx)
        } else {
            let x = self.norm1.forward(&(x + sa(x, ctx)));
            self.norm2.forward(&(&x + ff(&x, ctx)))
        }
    }
}

impl Module for TransformerEncoderLayer {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
        self.forward_masked(x, None, ctx)
    }
}
