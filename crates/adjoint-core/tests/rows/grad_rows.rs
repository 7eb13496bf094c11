// The rows of the primitive table, shared by `grad_table.rs` (check_grads), `jit_table.rs`
// (jit and its compositions against eager) and any other table that defines the two macros
// `unary_row!(name, lo, hi, f)` and `binary_row!(name, lo, hi, lo2, hi2, f)` before including
// this file.

unary_row!(neg, -2.0, 2.0, |x: &Tensor| -x);
unary_row!(exp, -2.0, 2.0, |x: &Tensor| x.exp());
unary_row!(log, 0.5, 3.0, |x: &Tensor| x.log());
unary_row!(sin, -3.0, 3.0, |x: &Tensor| x.sin());
unary_row!(cos, -3.0, 3.0, |x: &Tensor| x.cos());
unary_row!(tan, -1.0, 1.0, |x: &Tensor| x.tan());
unary_row!(tanh, -2.0, 2.0, |x: &Tensor| x.tanh());
unary_row!(sqrt, 0.5, 3.0, |x: &Tensor| x.sqrt());
unary_row!(sigmoid, -4.0, 4.0, |x: &Tensor| x.sigmoid());
unary_row!(erf, -2.0, 2.0, |x: &Tensor| x.erf());
unary_row!(log1p, -0.5, 2.0, |x: &Tensor| x.log1p());
unary_row!(expm1, -2.0, 2.0, |x: &Tensor| x.expm1());
unary_row!(abs_away_from_zero, 0.2, 2.0, |x: &Tensor| (x * -1.0).abs() + x.abs());
// relu and relu_grad away from the kink: z = ±1.5x, the sign alternating by element, |z| ≥ 0.3
// (not ±1: jit would drop `x · 1` and sum the cotangents in another order).
unary_row!(relu_away_from_zero, 0.2, 2.0, |x: &Tensor| {
    let signs: Vec<f64> = (0..x.numel()).map(|i| if i % 2 == 0 { 1.5 } else { -1.5 }).collect();
    let z = x * Tensor::from_vec(signs, x.shape());
    let r = z.relu();
    &r * &z + r.exp() + z.relu_grad(&(&z * x))
});
unary_row!(sign_floor_ceil_round_zero_derivative, 0.1, 0.4, |x: &Tensor| x.sign() * x
    + x.floor()
    + x.ceil() * x
    + x.round());
unary_row!(reduce_sum_all_axes, -1.0, 1.0, |x: &Tensor| (x * x).sum());
unary_row!(reduce_sum_keepdim, -1.0, 1.0, |x: &Tensor| {
    let axes: Vec<usize> = (0..x.rank()).step_by(2).collect();
    x.sin().sum_axes(&axes, true)
});
unary_row!(reduce_prod, 0.5, 1.5, |x: &Tensor| {
    let axes: Vec<usize> = (0..x.rank()).filter(|a| a % 2 == 1).collect();
    x.prod_axes(&axes, false)
});
unary_row!(reduce_max_distinct, -3.0, 3.0, |x: &Tensor| {
    if x.numel() == 0 {
        x.sum()
    } else {
        let all: Vec<usize> = (0..x.rank()).collect();
        x.max().exp() + x.min_axes(&all, false).exp() + x.min_axes(&all[..x.rank().min(1)], true).sum()
    }
});
unary_row!(cumsum, -1.0, 1.0, |x: &Tensor| if x.rank() == 0 {
    x.clone()
} else {
    (x * x).cumsum(x.rank() - 1)
});
unary_row!(reshape_flatten, -1.0, 1.0, |x: &Tensor| (x.flatten() * x.flatten()).reshape(x.shape()));
unary_row!(permute_reverse, -1.0, 1.0, |x: &Tensor| {
    let perm: Vec<usize> = (0..x.rank()).rev().collect();
    x.permute(&perm).sin()
});
unary_row!(flip, -1.0, 1.0, |x: &Tensor| if x.rank() == 0 { x * x } else { x.flip(0) * x });
unary_row!(slice_step, -1.0, 1.0, |x: &Tensor| {
    if x.rank() == 0 {
        return x * x;
    }
    let d = x.shape()[0];
    let end = d.saturating_sub(0);
    x.slice(0, d.min(1), end, 2).exp()
});
unary_row!(pad_constant, -1.0, 1.0, |x: &Tensor| {
    let pads: Vec<(usize, usize)> = (0..x.rank()).map(|i| (i % 2, 1)).collect();
    x.pad(&pads, 0.5).sin()
});
unary_row!(broadcast_to, -1.0, 1.0, |x: &Tensor| {
    let mut s = vec![2];
    s.extend_from_slice(x.shape());
    x.broadcast_to(&s).exp()
});
unary_row!(concat_with_itself, -1.0, 1.0, |x: &Tensor| {
    if x.rank() == 0 {
        x.clone()
    } else {
        Tensor::concat(&[x, &x.sin(), &(x * x)], 0)
    }
});
unary_row!(split_parts, -1.0, 1.0, |x: &Tensor| {
    if x.rank() == 0 {
        return x * x;
    }
    // Parts of sizes d/2 and d - d/2 (one of them size 0 for d ≤ 1); the second part unused
    // in one term so its cotangent is a symbolic zero.
    let d = x.shape()[0];
    let parts = x.split(0, &[d / 2, d - d / 2]);
    let mut y = parts[1].sin().sum() + parts[0].exp().sum();
    if d >= 2 {
        let again = x.split(0, &[1, d - 1]);
        y = y + again[0].sum() * 3.0;
    }
    y
});
unary_row!(logsumexp_softmax, -3.0, 3.0, |x: &Tensor| if x.rank() == 0 {
    x.exp()
} else {
    x.log_softmax(x.rank() - 1) + x.logsumexp(&[0], true)
});
unary_row!(softplus_gelu_silu, -3.0, 3.0, |x: &Tensor| x.softplus() + x.gelu() * x.silu());

// The recurrent cells on `[rows, d]` views of x (rank 0 → [1, 1]), both outputs used.
unary_row!(lstm_cell, -1.5, 1.5, |x: &Tensor| {
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
unary_row!(lstm_seq, -1.5, 1.5, lstm_seq_row);
unary_row!(lstm_seq_shared_weights, -1.5, 1.5, lstm_seq_shared_weights_row);
unary_row!(lstm_seq_bias, -1.5, 1.5, lstm_seq_bias_row);
unary_row!(lstm_seq_bias_shared, -1.5, 1.5, lstm_seq_bias_shared_row);
unary_row!(gru_cell, -1.5, 1.5, |x: &Tensor| {
    let d = x.shape().last().copied().unwrap_or(1);
    let r: usize = x.shape().iter().rev().skip(1).product();
    let x2 = x.reshape(&[r, d]);
    let gx = Tensor::concat(&[&x2, &x2.sin(), &(&x2 * &x2)], 1);
    let gh = Tensor::concat(&[&x2.cos(), &-&x2, &(&x2 * 0.5)], 1);
    Tensor::gru_cell(&gx, &gh, &x2.tanh()).reshape(x.shape())
});

binary_row!(add, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| a + b);
binary_row!(sub, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| a - b);
binary_row!(mul, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| a * b);
// One operand twice: the rule hands one product `c·x` to both.
unary_row!(mul_self, -2.0, 2.0, |x: &Tensor| x * x);
// A broadcast difference squared (the GMM's `‖Q(x − μ)‖²`): sub's negated sum, then `d·d`.
binary_row!(mul_self_of_difference, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| {
    let d = a - b;
    &d * &d
});
binary_row!(div, 0.5, 2.0, 0.5, 2.0, |a: &Tensor, b: &Tensor| a / b);
binary_row!(pow, 0.5, 2.0, 0.5, 2.0, |a: &Tensor, b: &Tensor| a.pow(b));
binary_row!(maximum_distinct, -2.0, -0.1, 0.1, 2.0, |a: &Tensor, b: &Tensor| a.maximum(b) * a);
binary_row!(minimum_distinct, -2.0, -0.1, 0.1, 2.0, |a: &Tensor, b: &Tensor| a.minimum(b) * b);
binary_row!(atan2, 0.5, 2.0, 0.5, 2.0, |a: &Tensor, b: &Tensor| a.atan2(b));
// rem jumps where a / (0.7·b) crosses an integer: with b in [1, 1.01], a in [2.2, 2.7] keeps the
// quotient within (3.1, 3.9) (2.1..2.9 reached 3 and 4, and the finite differences then failed
// whenever a sample fell within a step of the jump); swapped, it stays below 1.
binary_row!(rem, 2.2, 2.7, 1.0, 1.01, |a: &Tensor, b: &Tensor| a.rem(&(b * 0.7)) * a);
binary_row!(select_by_sign, -2.0, 2.0, -2.0, 2.0, |a: &Tensor, b: &Tensor| {
    Tensor::select(&a.gt_scalar(0.0), &(a * b), &b.exp())
});

// Control flow (`crate::control`): staged as one primitive under every transform.
unary_row!(scan_over_axis_0, -1.0, 1.0, |x: &Tensor| {
    let xs = if x.rank() == 0 { x.reshape(&[1]) } else { x.clone() };
    let init = xs.sum_axes(&[0], false) * 0.1;
    let (c, ys) = adjoint_core::scan(
        |c: &Tensor, xi: &Tensor| {
            let h = (c * 0.5 + xi).sin();
            (h.clone(), &h * xi)
        },
        &init,
        &xs,
    );
    ys.sum_axes(&[0], false) + c
});
unary_row!(scan_every_2nd_carry_stored, -1.0, 1.0, |x: &Tensor| {
    let xs = if x.rank() == 0 { x.reshape(&[1]) } else { x.clone() };
    let init = xs.sum_axes(&[0], false).cos();
    let step = |c: &Tensor, xi: &Tensor| ((c * xi).sin() + xi, c * 2.0);
    let (c, ys) = adjoint_core::scan_with(adjoint_core::Checkpoint::EveryK(2), step, &init, &xs);
    ys.sum_axes(&[0], false) * c
});
// (while_loop is not a row: jit∘grad through it is refused, see tests/control_flow.rs.)
unary_row!(cond_both_branches, 0.2, 1.0, |x: &Tensor| {
    // Nonempty inputs take the true branch, empty ones (sum 0) the false one.
    adjoint_core::cond(&x.sum().gt_scalar(0.0), |x: &Tensor| (x * x).sin(), |x: &Tensor| x.exp() * 2.0, x)
});
