//! Recurrent layers: [`Lstm`] and [`Gru`], multi-layer, unidirectional, batch-first.
//!
//! ## Layout and names
//! Weights follow PyTorch exactly, so `state_dict`s load by name: layer `k` has
//! `weight_ih_l{k}` `[G·H, in]`, `weight_hh_l{k}` `[G·H, H]`, `bias_ih_l{k}` and
//! `bias_hh_l{k}` `[G·H]`, with the gates stacked in PyTorch's order — LSTM `(i, f, g, o)`,
//! GRU `(r, z, n)` — and every weight initialised `U(±1/√H)`. `Params` is implemented by hand
//! for these names (a derive would give `layers.0.weight_ih`).
//!
//! ## Evaluation
//! The input projection of **all** time steps is one matrix product `[T·B, in]·W_ihᵀ` over
//! time-major rows. An LSTM layer's recurrence is then one primitive,
//! [`Tensor::lstm_seq_bias`]: all steps forward in one kernel (per step one `h·W_hhᵀ` product
//! and the fused cell, which adds the biases — no pass of its own over the projection),
//! backpropagation through time in one kernel whose `W_hh` gradient is a single product over
//! all `T·B` rows; one tape node per layer. A GRU step is one fused primitive,
//! [`Tensor::gru_cell`], with the projected sequence cut into its `T` steps by one
//! multi-output `split` (time-major rows, so each step is a contiguous `[B, G·H]` view): under
//! reverse mode the derivative of a slice is a zero-padded tensor of the full size, and
//! slicing the `[T·B, G·H]` projection once per step would make backpropagation through time
//! cost `O(T²)`, whereas the split's derivative is one concat. All of these are primitives with
//! rules of every order, so `grad` backpropagates through time and higher derivatives, `vmap`
//! and `jit` work.

use adjoint_core::params::{join_name, Buffer};
use adjoint_core::{Params, Tensor};
use adjoint_tensor::random::Key;
use adjoint_tensor::DType;

use super::{setters, Ctx, Dropout, Module};
use crate::init;

/// The weights of one recurrent layer (PyTorch's `*_l{k}` tensors).
#[derive(Clone, Debug)]
pub struct RnnWeights {
    /// `[G·H, in]`.
    pub weight_ih: Tensor,
    /// `[G·H, H]`.
    pub weight_hh: Tensor,
    /// `[G·H]`, if any.
    pub bias_ih: Option<Tensor>,
    /// `[G·H]`, if any.
    pub bias_hh: Option<Tensor>,
}

impl RnnWeights {
    fn for_each(&self, f: &mut dyn FnMut(&'static str, &Tensor)) {
        f("weight_ih", &self.weight_ih);
        f("weight_hh", &self.weight_hh);
        if let Some(b) = &self.bias_ih {
            f("bias_ih", b);
        }
        if let Some(b) = &self.bias_hh {
            f("bias_hh", b);
        }
    }

    fn map(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> RnnWeights {
        RnnWeights {
            weight_ih: f(&self.weight_ih),
            weight_hh: f(&self.weight_hh),
            bias_ih: self.bias_ih.as_ref().map(&mut *f),
            bias_hh: self.bias_hh.as_ref().map(&mut *f),
        }
    }
}

/// Options of an [`Lstm`] or a [`Gru`].
#[derive(Clone, Debug)]
pub struct RnnConfig {
    /// Features per input time step.
    pub input_size: usize,
    /// Hidden state size.
    pub hidden_size: usize,
    /// Stacked layers (default 1).
    pub num_layers: usize,
    /// Biases (default true).
    pub bias: bool,
    /// Dropout on the outputs of every layer but the last, in training (default 0).
    pub dropout: f64,
    /// Parameter dtype (default `f32`).
    pub dtype: DType,
}
setters!(RnnConfig { num_layers: usize, bias: bool, dropout: f64, dtype: DType });

impl RnnConfig {
    /// One layer, biases, no dropout, `f32`.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RnnConfig { input_size, hidden_size, num_layers: 1, bias: true, dropout: 0.0, dtype: DType::F32 }
    }

    fn weights(&self, key: &Key, gates: usize) -> Vec<RnnWeights> {
        let h = self.hidden_size;
        let bound = 1.0 / (h as f64).sqrt();
        let u = |k: &Key, shape: &[usize]| init::uniform(k, shape, -bound, bound, self.dtype);
        (0..self.num_layers)
            .map(|l| {
                let k = key.fold_in(l as u64).split(4);
                let inp = if l == 0 { self.input_size } else { h };
                RnnWeights {
                    weight_ih: u(&k[0], &[gates * h, inp]),
                    weight_hh: u(&k[1], &[gates * h, h]),
                    bias_ih: self.bias.then(|| u(&k[2], &[gates * h])),
                    bias_hh: self.bias.then(|| u(&k[3], &[gates * h])),
                }
            })
            .collect()
    }

    /// An LSTM with PyTorch's init `U(±1/√hidden)`.
    pub fn init_lstm(&self, key: &Key) -> Lstm {
        Lstm { layers: self.weights(key, 4), hidden_size: self.hidden_size, dropout: self.dropout }
    }

    /// A GRU with PyTorch's init `U(±1/√hidden)`.
    pub fn init_gru(&self, key: &Key) -> Gru {
        Gru { layers: self.weights(key, 3), hidden_size: self.hidden_size, dropout: self.dropout }
    }
}

macro_rules! rnn_params {
    ($t:ident) => {
        impl Params for $t {
            fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
                self.layers.iter().for_each(|l| l.for_each(&mut |_, t| f(t)))
            }
            fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
                for (k, l) in self.layers.iter().enumerate() {
                    l.for_each(&mut |name, t| f(&join_name(prefix, &format!("{name}_l{k}")), t));
                }
            }
            fn for_each_buffer(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Buffer)) {}
            fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
                $t {
                    layers: self.layers.iter().map(|l| l.map(f)).collect(),
                    hidden_size: self.hidden_size,
                    dropout: self.dropout,
                }
            }
        }
    };
}

/// The rows `[T·B, F]` of a batch-first input `[B, T, F]`, time-major (step `t` is rows
/// `t·B..(t+1)·B`).
fn time_major(x: &Tensor) -> Tensor {
    let (b, t, f) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    x.permute(&[1, 0, 2]).reshape(&[t * b, f])
}

/// The input projections `x_t·W_ihᵀ + bias` of all time steps as one matrix product over the
/// time-major rows `[T·B, F]`.
fn project_rows(rows: &Tensor, w_ih: &Tensor, bias: Option<&Tensor>) -> Tensor {
    let p = rows.matmul(&w_ih.t());
    match bias {
        Some(bias) => p + bias,
        None => p,
    }
}

/// The input projections of all time steps (`[B, F]` each) as one matrix product, cut into
/// the steps again by one `split`. `steps` is either the list of steps or, for the first
/// layer, `[x]` with `x` of shape `[B, T, F]`.
fn project(steps: &[Tensor], w_ih: &Tensor, bias: Option<&Tensor>) -> Vec<Tensor> {
    let rows = if steps.len() == 1 && steps[0].rank() == 3 {
        time_major(&steps[0])
    } else {
        let refs: Vec<&Tensor> = steps.iter().collect();
        Tensor::concat(&refs, 0)
    };
    let t = if steps.len() == 1 && steps[0].rank() == 3 { steps[0].shape()[1] } else { steps.len() };
    let b = rows.shape()[0] / t.max(1);
    project_rows(&rows, w_ih, bias).split(0, &vec![b; t])
}

/// Inter-layer dropout on every time step (training only).
fn drop_steps(steps: Vec<Tensor>, p: f64, ctx: &mut Ctx) -> Vec<Tensor> {
    if p == 0.0 || !ctx.is_training() {
        return steps;
    }
    steps.iter().map(|s| Dropout { p }.forward_with(s, ctx)).collect()
}

fn sum_biases(w: &RnnWeights) -> Option<Tensor> {
    match (&w.bias_ih, &w.bias_hh) {
        (Some(a), Some(b)) => Some(a + b),
        (Some(a), None) | (None, Some(a)) => Some(a.clone()),
        (None, None) => None,
    }
}

#[track_caller]
fn check_input(layer: &str, x: &Tensor, input_size: usize) {
    if x.rank() != 3 || x.shape()[2] != input_size {
        panic!("adjoint-nn: {layer}: input must be [batch, time, {input_size}], got {:?}", x.shape());
    }
}

#[track_caller]
fn initial(layer: &str, s: Option<&Tensor>, layers: usize, b: usize, h: usize, dtype: DType) -> Tensor {
    match s {
        Some(s) if s.shape() == [layers, b, h] => s.clone(),
        Some(s) => {
            panic!("adjoint-nn: {layer}: initial state must be [{layers}, {b}, {h}], got {:?}", s.shape())
        }
        None => Tensor::full_of(&[layers, b, h], 0.0, dtype),
    }
}

/// Long short-term memory (`nn.LSTM` with `batch_first=True`): input `[B, T, in]`, output
/// `[B, T, H]` (the last layer's hidden states), final states `(h_n, c_n)`, each `[L, B, H]`.
///
/// ```
/// use adjoint_nn::layers::{Lstm, Module};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let lstm = Lstm::config(3, 5).num_layers(2).init_lstm(&Key::new(0));
/// let x = Tensor::ones(&[4, 7, 3]);
/// let (y, (h, c)) = lstm.forward_state(&x, None);
/// assert_eq!((y.shape(), h.shape(), c.shape()), (&[4, 7, 5][..], &[2, 4, 5][..], &[2, 4, 5][..]));
/// assert_eq!(lstm.forward(&x).shape(), &[4, 7, 5]);
/// ```
#[derive(Clone, Debug)]
pub struct Lstm {
    /// Per-layer weights.
    pub layers: Vec<RnnWeights>,
    /// Hidden size.
    pub hidden_size: usize,
    /// Dropout between layers (training only).
    pub dropout: f64,
}
rnn_params!(Lstm);

impl Lstm {
    /// A one-layer `f32` LSTM with PyTorch's init.
    pub fn new(input_size: usize, hidden_size: usize, key: &Key) -> Lstm {
        RnnConfig::new(input_size, hidden_size).init_lstm(key)
    }

    /// Options (finish with [`RnnConfig::init_lstm`]).
    pub fn config(input_size: usize, hidden_size: usize) -> RnnConfig {
        RnnConfig::new(input_size, hidden_size)
    }

    /// Run in evaluation mode from `state = (h_0, c_0)` (zeros if `None`); returns the output
    /// sequence and `(h_n, c_n)`.
    #[track_caller]
    pub fn forward_state(&self, x: &Tensor, state: Option<(&Tensor, &Tensor)>) -> (Tensor, (Tensor, Tensor)) {
        self.forward_state_with(x, state, &mut Ctx::eval())
    }

    /// [`forward_state`](Self::forward_state) in the mode of `ctx` (dropout between layers).
    #[track_caller]
    pub fn forward_state_with(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
        ctx: &mut Ctx,
    ) -> (Tensor, (Tensor, Tensor)) {
        let h = self.hidden_size;
        let nl = self.layers.len();
        check_input("Lstm", x, self.layers[0].weight_ih.shape()[1]);
        let b = x.shape()[0];
        let h0 = initial("Lstm", state.map(|s| s.0), nl, b, h, x.dtype());
        let c0 = initial("Lstm", state.map(|s| s.1), nl, b, h, x.dtype());
        let t = x.shape()[1];
        // Time-major rows [T·B, ·]: the input of each layer's projection, then its output.
        let mut rows = time_major(x);
        let (mut hn, mut cn) = (Vec::with_capacity(nl), Vec::with_capacity(nl));
        for (l, w) in self.layers.iter().enumerate() {
            if l > 0 && self.dropout > 0.0 && ctx.is_training() {
                rows = Dropout { p: self.dropout }.forward_with(&rows, ctx);
            }
            // The biases go into the recurrence's kernel, not a pass over the projection.
            let gx = project_rows(&rows, &w.weight_ih, None).reshape(&[t, b, 4 * h]);
            let h0l = h0.narrow(0, l, 1).reshape(&[b, h]);
            let c0l = c0.narrow(0, l, 1).reshape(&[b, h]);
            let (hs, cs, _) = match sum_biases(w) {
                Some(bias) => Tensor::lstm_seq_bias(&gx, &w.weight_hh, &h0l, &c0l, &bias),
                None => Tensor::lstm_seq(&gx, &w.weight_hh, &h0l, &c0l),
            };
            let last =
                |s: &Tensor, init: Tensor| if t == 0 { init } else { s.narrow(0, t - 1, 1).reshape(&[b, h]) };
            hn.push(last(&hs, h0l));
            cn.push(last(&cs, c0l));
            rows = hs.reshape(&[t * b, h]);
        }
        let seq = rows.reshape(&[t, b, h]).permute(&[1, 0, 2]);
        let hr: Vec<&Tensor> = hn.iter().collect();
        let cr: Vec<&Tensor> = cn.iter().collect();
        (seq, (Tensor::stack(&hr, 0), Tensor::stack(&cr, 0)))
    }
}

impl Module for Lstm {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
        self.forward_state_with(x, None, ctx).0
    }
}

/// Gated recurrent unit (`nn.GRU` with `batch_first=True`): input `[B, T, in]`, output
/// `[B, T, H]`, final state `h_n` `[L, B, H]`. With PyTorch's equations
/// `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`, `h' = (1 - z) ⊙ n + z ⊙ h`.
///
/// ```
/// use adjoint_nn::layers::{Gru, Module};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let gru = Gru::new(3, 5, &Key::new(0));
/// let (y, h) = gru.forward_state(&Tensor::ones(&[2, 4, 3]), None);
/// assert_eq!((y.shape(), h.shape()), (&[2, 4, 5][..], &[1, 2, 5][..]));
/// ```
#[derive(Clone, Debug)]
pub struct Gru {
    /// Per-layer weights.
    pub layers: Vec<RnnWeights>,
    /// Hidden size.
    pub hidden_size: usize,
    /// Dropout between layers (training only).
    pub dropout: f64,
}
rnn_params!(Gru);

impl Gru {
    /// A one-layer `f32` GRU with PyTorch's init.
    pub fn new(input_size: usize, hidden_size: usize, key: &Key) -> Gru {
        RnnConfig::new(input_size, hidden_size).init_gru(key)
    }

    /// Options (finish with [`RnnConfig::init_gru`]).
    pub fn config(input_size: usize, hidden_size: usize) -> RnnConfig {
        RnnConfig::new(input_size, hidden_size)
    }

    /// Run in evaluation mode from `h_0` (zeros if `None`); returns the output and `h_n`.
    #[track_caller]
    pub fn forward_state(&self, x: &Tensor, h0: Option<&Tensor>) -> (Tensor, Tensor) {
        self.forward_state_with(x, h0, &mut Ctx::eval())
    }

    /// [`forward_state`](Self::forward_state) in the mode of `ctx`.
    #[track_caller]
    pub fn forward_state_with(&self, x: &Tensor, h0: Option<&Tensor>, ctx: &mut Ctx) -> (Tensor, Tensor) {
        let h = self.hidden_size;
        let nl = self.layers.len();
        check_input("Gru", x, self.layers[0].weight_ih.shape()[1]);
        let b = x.shape()[0];
        let h0 = initial("Gru", h0, nl, b, h, x.dtype());
        let mut steps = vec![x.clone()];
        let mut hn = Vec::with_capacity(nl);
        for (l, w) in self.layers.iter().enumerate() {
            if l > 0 {
                steps = drop_steps(steps, self.dropout, ctx);
            }
            // b_hn sits inside r ⊙ (W_hn h + b_hn), so the hidden projection keeps its bias.
            let gx = project(&steps, &w.weight_ih, w.bias_ih.as_ref());
            let whh_t = w.weight_hh.t();
            let mut hs = h0.narrow(0, l, 1).reshape(&[b, h]);
            steps = Vec::with_capacity(gx.len());
            for gx_t in &gx {
                let mut gh = hs.matmul(&whh_t);
                if let Some(bh) = &w.bias_hh {
                    gh = gh + bh;
                }
                hs = Tensor::gru_cell(gx_t, &gh, &hs);
                steps.push(hs.clone());
            }
            hn.push(hs);
        }
        let refs: Vec<&Tensor> = steps.iter().collect();
        let seq = Tensor::stack(&refs, 1);
        let hr: Vec<&Tensor> = hn.iter().collect();
        (seq, Tensor::stack(&hr, 0))
    }
}

impl Module for Gru {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, ctx: &mut Ctx) -> Tensor {
        self.forward_state_with(x, None, ctx).0
    }
}
