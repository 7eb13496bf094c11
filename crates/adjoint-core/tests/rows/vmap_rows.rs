// The rows of the batching table, shared by `vmap_table.rs` (vmap against a loop) and
// `jit_table.rs` (jit and its compositions against eager): each includer defines the macros
// `unary!(name, lo, hi, f)` and `binary!(name, lo, hi, lo2, hi2, f)` first.

unary!(neg, -2.0, 2.0, |x: &Tensor| -x);
unary!(exp, -2.0, 2.0, |x: &Tensor| x.exp());
unary!(log, 0.5, 3.0, |x: &Tensor| x.log());
unary!(sin_cos_tan, -1.0, 1.0, |x: &Tensor| x.sin() + x.cos() * x.tan());
unary!(tanh_sigmoid, -2.0, 2.0, |x: &Tensor| x.tanh() * x.sigmoid());
unary!(sqrt, 0.5, 3.0, |x: &Tensor| x.sqrt());
unary!(erf_log1p_expm1, -0.5, 2.0, |x: &Tensor| x.erf() + x.log1p() * x.expm1());
unary!(abs_sign, -2.0, 2.0, |x: &Tensor| x.abs() + x.sign());
unary!(relu_relu_grad, -2.0, 2.0, |x: &Tensor| x.relu() * 2.0 + x.relu_grad(&(x * x)));
unary!(floor_ceil_round, -3.0, 3.0, |x: &Tensor| x.floor() + x.ceil() * 2.0 + x.round() * 4.0);
unary!(cast_f32_and_back, -2.0, 2.0, |x: &Tensor| x.cast(DType::F32).cast(DType::F64));
unary!(cast_to_int, -5.0, 5.0, |x: &Tensor| x.cast(DType::I64));
unary!(reduce_sum_all, -1.0, 1.0, |x: &Tensor| x.sum());
unary!(reduce_sum_keepdim, -1.0, 1.0, |x: &Tensor| {
    let axes: Vec<usize> = (0..x.rank()).step_by(2).collect();
    x.sum_axes(&axes, true)
});
unary!(reduce_sum_bool, -1.0, 1.0, |x: &Tensor| x.gt_scalar(0.0).sum_axes(&[0; 0], false).cast(DType::F64)
    + x.gt_scalar(0.0).sum());
unary!(reduce_prod, 0.5, 1.5, |x: &Tensor| {
    let axes: Vec<usize> = (0..x.rank()).filter(|a| a % 2 == 1).collect();
    x.prod_axes(&axes, false)
});
unary!(reduce_max_min, -3.0, 3.0, |x: &Tensor| {
    let axes: Vec<usize> = (0..x.rank()).rev().step_by(2).collect();
    x.max_axes(&axes, false) + x.min_axes(&axes, false)
});
unary!(argmax_argmin, -3.0, 3.0, |x: &Tensor| if x.rank() == 0 {
    x.cast(DType::I64)
} else {
    x.argmax(x.rank() - 1, false) * 10.0 + x.argmin(0, true).sum()
});
unary!(cumsum, -1.0, 1.0, |x: &Tensor| if x.rank() == 0 { x.clone() } else { x.cumsum(x.rank() - 1) });
unary!(reshape_flatten, -1.0, 1.0, |x: &Tensor| x.flatten());
unary!(reshape_split, -1.0, 1.0, |x: &Tensor| {
    let mut s = x.shape().to_vec();
    s.push(1);
    s.insert(0, 1);
    x.reshape(&s).reshape(&[x.numel(), 1])
});
unary!(split_parts, -1.0, 1.0, |x: &Tensor| if x.rank() == 0 {
    x.clone()
} else {
    let d = x.shape()[x.rank() - 1];
    let parts = x.split(x.rank() - 1, &[d / 2, d - d / 2]);
    Tensor::concat(&[&parts[1].exp(), &parts[0]], x.rank() - 1)
});
unary!(permute_reverse, -1.0, 1.0, |x: &Tensor| {
    let perm: Vec<usize> = (0..x.rank()).rev().collect();
    x.permute(&perm)
});
unary!(permute_rotate, -1.0, 1.0, |x: &Tensor| {
    let r = x.rank();
    let perm: Vec<usize> = (0..r).map(|i| (i + 1) % r.max(1)).collect();
    x.permute(&perm)
});
unary!(flip, -1.0, 1.0, |x: &Tensor| if x.rank() == 0 { x.clone() } else { x.flip(x.rank() - 1) });
unary!(slice_step, -1.0, 1.0, |x: &Tensor| {
    if x.rank() == 0 {
        return x.clone();
    }
    let d = x.shape()[0];
    x.slice(0, d.min(1), d, 2)
});
unary!(pad_constant, -1.0, 1.0, |x: &Tensor| {
    let pads: Vec<(usize, usize)> = (0..x.rank()).map(|i| (i % 2, 1)).collect();
    x.pad(&pads, 0.5)
});
unary!(broadcast_to, -1.0, 1.0, |x: &Tensor| {
    let mut s = vec![2];
    s.extend(x.shape().iter().map(|&d| if d == 1 { 3 } else { d }));
    x.broadcast_to(&s)
});
unary!(concat_with_itself, -1.0, 1.0, |x: &Tensor| if x.rank() == 0 {
    x.clone()
} else {
    Tensor::concat(&[x, &x.sin(), &(x * x)], x.rank() - 1)
});
unary!(softmax_logsumexp, -3.0, 3.0, |x: &Tensor| if x.rank() == 0 {
    x.exp()
} else {
    x.log_softmax(x.rank() - 1) + x.logsumexp(&[0], true)
});
unary!(stop_gradient_keeps_the_batch, -1.0, 1.0, |x: &Tensor| adjoint_core::stop_gradient(x) * 2.0);

// The recurrent cells on `[rows, d]` views of x (rank 0 → [1, 1]), both outputs used.
unary!(lstm_cell, -1.5, 1.5, |x: &Tensor| {
    let d = x.shape().last().copied().unwrap_or(1);
    let r: usize = x.shape().iter().rev().skip(1).product();
    let x2 = x.reshape(&[r, d]);
    let gx = Tensor::concat(&[&x2, &x2.sin(), &(&x2 * &x2), &x2.cos()], 1);
    // No subexpression shared with gx: jit's CSE would merge it and reorder the sums of
    // cotangents, which jit_table compares bitwise.
    let gh = Tensor::concat(&[&(&x2 * 0.25), &(&x2 * 0.5), &x2.tanh(), &-&x2], 1);
    let (h, c) = Tensor::lstm_cell(&gx, &gh, &(&x2 * 1.5));
    (h + &c * &c).reshape(x.shape())
});

// The LSTM sequence: the functions are shared with the other table (`lstm_seq_rows.rs`).
include!("lstm_seq_rows.rs");
unary!(lstm_seq, -1.5, 1.5, lstm_seq_row);
unary!(lstm_seq_shared_weights, -1.5, 1.5, lstm_seq_shared_weights_row);
unary!(lstm_seq_bias, -1.5, 1.5, lstm_seq_bias_row);
unary!(lstm_seq_bias_shared, -1.5, 1.5, lstm_seq_bias_shared_row);
unary!(gru_cell, -1.5, 1.5, |x: &Tensor| {
    let d = x.shape().last().copied().unwrap_or(1);
    let r: usize = x.shape().iter().rev().skip(1).product();
    let x2 = x.reshape(&[r, d]);
    let gx = Tensor::concat(&[&x2, &x2.sin(), &(&x2 * &x2)], 1);
    let gh = Tensor::concat(&[&x2.cos(), &-&x2, &(&x2 * 0.5)], 1);
    Tensor::gru_cell(&gx, &gh, &x2.tanh()).reshape(x.shape())
});

binary!(add, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| a + b);
binary!(sub, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| a - b);
binary!(relu_grad, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| a.relu_grad(b) + b.relu_grad(a));
binary!(mul, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| a * b);
binary!(div, 0.5, 2.0, 0.5, 2.0, |a: &Tensor, b: &Tensor| a / b);
binary!(pow, 0.5, 2.0, 0.5, 2.0, |a: &Tensor, b: &Tensor| a.pow(b));
binary!(maximum_minimum, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| a.maximum(b) + a.minimum(b) * 3.0);
binary!(atan2, 0.5, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| a.atan2(b));
binary!(rem, 2.1, 4.9, 1.0, 1.5, |a: &Tensor, b: &Tensor| a.rem(b));
binary!(compare, -1.0, 1.0, -1.0, 1.0, |a: &Tensor, b: &Tensor| a.less(b).cast(DType::F64)
    + a.greater_equal(b).cast(DType::F64) * 2.0
    + a.equal(&a.round()).cast(DType::F64) * 4.0);
binary!(logical, -1.0, 1.0, -1.0, 1.0, |a: &Tensor, b: &Tensor| {
    let (p, q) = (a.gt_scalar(0.0), b.gt_scalar(0.0));
    p.logical_and(&q).cast(DType::F64) + p.logical_or(&q).logical_not().cast(DType::F64) * 2.0
});
binary!(select, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| Tensor::select(
    &a.gt_scalar(0.0),
    &(a * b),
    &b.exp()
));
