// The LSTM-sequence functions of both row tables (`grad_rows.rs` and `vmap_rows.rs` include this
// file and name each function in a row): two steps on `[rows, d]` views of x. With weights made
// from x all three outputs are used; with shared constant weights only the states (no cotangent
// of the gates; under vmap the examples fold into the batch rows). The `_bias` forms pass the gate
// bias, x-dependent (batched under vmap: one call per example) or shared.

/// `x` as `[rows, d]`, `d`, and the first step's gate inputs `[rows, 4d]`.
fn lstm_seq_inputs(x: &Tensor) -> (Tensor, usize, Tensor) {
    let d = x.shape().last().copied().unwrap_or(1);
    let r: usize = x.shape().iter().rev().skip(1).product();
    let x2 = x.reshape(&[r, d]);
    let g0 = Tensor::concat(&[&x2, &x2.sin(), &(&x2 * &x2), &x2.cos()], 1);
    (x2, d, g0)
}

/// Recurrent weights `[4d, d]` made from x.
fn lstm_seq_weights(x2: &Tensor) -> Tensor {
    let m = x2.t().matmul(&(x2.exp() * 0.1));
    Tensor::concat(&[&m, &(&m * 0.3), &m.cos(), &-&m], 0)
}

/// Every output of a sequence, summed over its steps (gate `q`'s activations).
fn lstm_seq_all_outputs(x: &Tensor, (hs, cs, a): (Tensor, Tensor, Tensor), q: usize) -> Tensor {
    let d = x.shape().last().copied().unwrap_or(1);
    let y = hs.sum_axes(&[0], false) + (&cs * &cs).sum_axes(&[0], false) + a.narrow(2, q * d, d).sin().sum_axes(&[0], false);
    y.reshape(x.shape())
}

fn lstm_seq_row(x: &Tensor) -> Tensor {
    let (x2, _, g0) = lstm_seq_inputs(x);
    let g1 = Tensor::concat(&[&(&x2 * 0.25), &(&x2 * 0.5), &x2.tanh(), &-&x2], 1);
    let gx = Tensor::stack(&[&g0, &g1], 0);
    let out = Tensor::lstm_seq(&gx, &lstm_seq_weights(&x2), &(&x2 * 0.7).sin(), &(&x2 * 1.5));
    lstm_seq_all_outputs(x, out, 3)
}

fn lstm_seq_shared_weights_row(x: &Tensor) -> Tensor {
    let (x2, d, g0) = lstm_seq_inputs(x);
    let gx = Tensor::stack(&[&g0, &(&g0 * 0.5)], 0);
    let w = Tensor::full_of(&[4 * d, d], 0.3, x.dtype());
    let (hs, _, _) = Tensor::lstm_seq(&gx, &w, &(&x2 * 0.7).sin(), &(&x2 * 1.5));
    hs.narrow(0, 1, 1).reshape(x.shape())
}

fn lstm_seq_bias_row(x: &Tensor) -> Tensor {
    let (x2, _, g0) = lstm_seq_inputs(x);
    let gx = Tensor::stack(&[&g0, &(&g0 * -0.5)], 0);
    let s = (&x2 * 0.3).sum_axes(&[0], false);
    let bias = Tensor::concat(&[&s, &s.sin(), &-&s, &(&s * &s)], 0);
    let out = Tensor::lstm_seq_bias(&gx, &lstm_seq_weights(&x2), &(&x2 * 0.7).sin(), &(&x2 * 1.5), &bias);
    lstm_seq_all_outputs(x, out, 1)
}

fn lstm_seq_bias_shared_row(x: &Tensor) -> Tensor {
    let (x2, d, g0) = lstm_seq_inputs(x);
    let gx = Tensor::stack(&[&g0, &(&g0 * 0.5)], 0);
    let w = Tensor::full_of(&[4 * d, d], 0.3, x.dtype());
    let bias = Tensor::full_of(&[4 * d], -0.2, x.dtype());
    let (hs, _, _) = Tensor::lstm_seq_bias(&gx, &w, &(&x2 * 0.7).sin(), &(&x2 * 1.5), &bias);
    hs.narrow(0, 1, 1).reshape(x.shape())
}
