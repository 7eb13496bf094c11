//! Recurrent cells: one fused primitive per LSTM or GRU step (see `prims::lstm_cell`).

use crate::prims::gru_cell::GruCell;
use crate::prims::lstm_cell::LstmCell;
use crate::prims::lstm_seq::LstmSeq;
use crate::tensor::Tensor;
use crate::trace::{bind, bind_multi};

impl Tensor {
    /// One LSTM step from the gates' input projection `gx` and hidden projection `gh`
    /// (`[B, 4H]` each, PyTorch's gate order `(i, f, g, o)`, biases in either) and the cell
    /// state `c` (`[B, H]`): returns `(h', c')` with `c' = σ(f)·c + σ(i)·tanh(g)`,
    /// `h' = σ(o)·tanh(c')`, where `(i, f, g, o)` are the parts of `gx + gh`. One fused
    /// kernel forward and one backward; differentiable to any order.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let (gx, gh) = (Tensor::zeros(&[2, 8]), Tensor::zeros(&[2, 8]));
    /// let (h, c) = Tensor::lstm_cell(&gx, &gh, &Tensor::ones(&[2, 2]));
    /// assert_eq!(c.to_vec::<f32>(), vec![0.5; 4]);
    /// assert_eq!(h.shape(), &[2, 2]);
    /// ```
    #[track_caller]
    pub fn lstm_cell(gx: &Tensor, gh: &Tensor, c: &Tensor) -> (Tensor, Tensor) {
        let mut o = bind_multi(&LstmCell, &[gx, gh, c]).into_iter();
        (o.next().expect("h"), o.next().expect("c"))
    }

    /// A whole LSTM layer's recurrence in one primitive: from the input projections `gx` of
    /// every step (`[T, B, 4H]`, time-major, biases included), the hidden weights `w_hh`
    /// (`[4H, H]`, PyTorch's layout) and the initial states `h0`, `c0` (`[B, H]`), runs the
    /// `T` steps of [`lstm_cell`](Self::lstm_cell) with `gh_t = h_{t-1}·w_hhᵀ` and returns
    /// `(hs, cs, a)`: every hidden and cell state (`[T, B, H]`) and every gate activation
    /// `(σ(i), σ(f), tanh(g), σ(o))` (`[T, B, 4H]`). One kernel forward, one backward (backpropagation through
    /// time with a single weight-gradient product); differentiable to any order.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let (gx, w) = (Tensor::zeros(&[3, 2, 8]), Tensor::zeros(&[8, 2]));
    /// let (hs, cs, a) = Tensor::lstm_seq(&gx, &w, &Tensor::zeros(&[2, 2]), &Tensor::ones(&[2, 2]));
    /// assert_eq!(cs.to_vec::<f32>()[8..], [0.125; 4]); // σ(0)³·c₀
    /// assert_eq!((hs.shape(), a.shape()), (&[3, 2, 2][..], &[3, 2, 8][..]));
    /// ```
    #[track_caller]
    pub fn lstm_seq(gx: &Tensor, w_hh: &Tensor, h0: &Tensor, c0: &Tensor) -> (Tensor, Tensor, Tensor) {
        let mut o = bind_multi(&LstmSeq, &[gx, w_hh, h0, c0]).into_iter();
        (o.next().expect("hs"), o.next().expect("cs"), o.next().expect("a"))
    }

    /// [`lstm_seq`](Self::lstm_seq) with the gate bias `[4H]` (`b_ih + b_hh` in PyTorch's
    /// terms) added to every step's pre-activations inside the kernel: `gx` then holds only the
    /// input products, and no pass over all `T·B·4H` values adds the bias. Same outputs as
    /// `lstm_seq(&(gx + bias), …)` (to rounding: the bias is added after the step's product).
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let (gx, w) = (Tensor::zeros(&[3, 2, 8]), Tensor::zeros(&[8, 2]));
    /// let (h0, c0) = (Tensor::zeros(&[2, 2]), Tensor::ones(&[2, 2]));
    /// let bias = Tensor::from_vec(vec![0.5f32, -1.0, 0.25, 2.0, 1.0, 0.0, -0.5, 0.75], &[8]);
    /// let (hs, cs, _) = Tensor::lstm_seq_bias(&gx, &w, &h0, &c0, &bias);
    /// let (hs2, cs2, _) = Tensor::lstm_seq(&(&gx + &bias), &w, &h0, &c0);
    /// let close = |a: &Tensor, b: &Tensor| a.to_vec::<f32>().iter().zip(b.to_vec::<f32>()).all(|(x, y)| (x - y).abs() < 1e-6);
    /// assert!(close(&hs, &hs2) && close(&cs, &cs2));
    /// ```
    #[track_caller]
    pub fn lstm_seq_bias(
        gx: &Tensor,
        w_hh: &Tensor,
        h0: &Tensor,
        c0: &Tensor,
        bias: &Tensor,
    ) -> (Tensor, Tensor, Tensor) {
        let mut o = bind_multi(&LstmSeq, &[gx, w_hh, h0, c0, bias]).into_iter();
        (o.next().expect("hs"), o.next().expect("cs"), o.next().expect("a"))
    }

    /// One GRU step with PyTorch's equations from the gates' input projection `gx` and hidden
    /// projection `gh` (`[B, 3H]` each, gates `(r, z, n)`, `b_hn` inside `gh`) and the hidden
    /// state `h` (`[B, H]`): `n = tanh(gx_n + r·gh_n)`, `h' = n + z·(h - n)`. One fused kernel
    /// forward and one backward; differentiable to any order.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let g = Tensor::zeros(&[1, 6]);
    /// assert_eq!(Tensor::gru_cell(&g, &g, &Tensor::ones(&[1, 2])).to_vec::<f32>(), vec![0.5; 2]);
    /// ```
    #[track_caller]
    pub fn gru_cell(gx: &Tensor, gh: &Tensor, h: &Tensor) -> Tensor {
        bind(&GruCell, &[gx, gh, h])
    }
}
