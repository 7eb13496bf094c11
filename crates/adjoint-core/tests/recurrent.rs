//! The fused recurrent cells (`lstm_cell`, `gru_cell`) and the LSTM sequence (`lstm_seq`) against their composite forms — the
//! op-by-op formulas (`lstm_composite`, `gru_composite`) — on odd sizes in f32 and f64: the
//! outputs, the reverse-mode gradients (the fused `*_cell_grad` kernels against `vjp` of the
//! composite) and the forward-mode tangents. The derivatives of every order are also checked
//! against finite differences by the primitive tables (`rows/grad_rows.rs`).

use adjoint_core::prims::gru_cell::gru_composite;
use adjoint_core::prims::lstm_cell::lstm_composite;
use adjoint_core::prims::lstm_seq::lstm_seq_composite;
use adjoint_core::{jvp, vjp, DType, Tensor};
use adjoint_tensor::random::{uniform, Key};
use proptest::prelude::*;

fn rand(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    Tensor::from_array(uniform(&Key::new(seed), shape, -2.0, 2.0, dtype))
}

fn close(got: &Tensor, want: &Tensor, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let (g, w) = (got.to_f64().to_vec::<f64>(), want.to_f64().to_vec::<f64>());
    for (k, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}[{k}]: fused {a} vs composite {b}");
    }
}

fn fused_lstm(p: &[Tensor]) -> Vec<Tensor> {
    let (h, c) = Tensor::lstm_cell(&p[0], &p[1], &p[2]);
    vec![h, c]
}

fn fused_lstm_seq(p: &[Tensor]) -> Vec<Tensor> {
    let (hs, cs, a) = Tensor::lstm_seq(&p[0], &p[1], &p[2], &p[3]);
    vec![hs, cs, a]
}

fn fused_lstm_seq_bias(p: &[Tensor]) -> Vec<Tensor> {
    let (hs, cs, a) = Tensor::lstm_seq_bias(&p[0], &p[1], &p[2], &p[3], &p[4]);
    vec![hs, cs, a]
}

fn fused_gru(p: &[Tensor]) -> Vec<Tensor> {
    vec![Tensor::gru_cell(&p[0], &p[1], &p[2])]
}

/// Fused against composite: outputs, `vjp` with random cotangents, `jvp` with random tangents.
fn compare(
    fused: fn(&[Tensor]) -> Vec<Tensor>,
    composite: fn(&[Tensor]) -> Vec<Tensor>,
    args: Vec<Tensor>,
    seed: u64,
    tol: f64,
    what: &str,
) {
    let (yf, pbf) = vjp(|p: &Vec<Tensor>| fused(p), &args);
    let (yc, pbc) = vjp(|p: &Vec<Tensor>| composite(p), &args);
    for (k, (a, b)) in yf.iter().zip(&yc).enumerate() {
        close(a, b, tol, &format!("{what} output {k}"));
    }
    let cts: Vec<Tensor> =
        yf.iter().enumerate().map(|(k, y)| rand(y.shape(), seed ^ (k as u64 + 10), y.dtype())).collect();
    for (k, (a, b)) in pbf(&cts).iter().zip(&pbc(&cts)).enumerate() {
        close(a, b, tol, &format!("{what} cotangent of input {k}"));
    }
    let tangents: Vec<Tensor> =
        args.iter().enumerate().map(|(k, a)| rand(a.shape(), seed ^ (k as u64 + 20), a.dtype())).collect();
    let (_, tf) = jvp(|p: &Vec<Tensor>| fused(p), &args, &tangents);
    let (_, tc) = jvp(|p: &Vec<Tensor>| composite(p), &args, &tangents);
    for (k, (a, b)) in tf.iter().zip(&tc).enumerate() {
        close(a, b, tol, &format!("{what} tangent of output {k}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn fused_cells_match_their_composite_forms(b in 0usize..6, h in 0usize..9, seed in any::<u64>(), f32_ in any::<bool>()) {
        let (dtype, tol) = if f32_ { (DType::F32, 2e-5) } else { (DType::F64, 1e-12) };
        let lstm = vec![rand(&[b, 4 * h], seed, dtype), rand(&[b, 4 * h], seed ^ 1, dtype), rand(&[b, h], seed ^ 2, dtype)];
        compare(fused_lstm, lstm_composite, lstm, seed, tol, "lstm_cell");
        let t = (seed % 4) as usize;
        let w = rand(&[4 * h, h], seed ^ 3, dtype) * 0.5;
        let seq = vec![rand(&[t, b, 4 * h], seed, dtype), w, rand(&[b, h], seed ^ 4, dtype), rand(&[b, h], seed ^ 5, dtype)];
        compare(fused_lstm_seq, lstm_seq_composite, seq.clone(), seed, tol, "lstm_seq");
        let mut biased = seq;
        biased.push(rand(&[4 * h], seed ^ 6, dtype));
        compare(fused_lstm_seq_bias, lstm_seq_composite, biased, seed, tol, "lstm_seq with a bias");
        let gru = vec![rand(&[b, 3 * h], seed, dtype), rand(&[b, 3 * h], seed ^ 1, dtype), rand(&[b, h], seed ^ 2, dtype)];
        compare(fused_gru, gru_composite, gru, seed, tol, "gru_cell");
    }
}

#[test]
fn an_unused_output_gets_no_cotangent_work() {
    // Only h' used: the cell's c' cotangent is a symbolic zero and the gradient still matches.
    let args = vec![rand(&[3, 8], 1, DType::F64), rand(&[3, 8], 2, DType::F64), rand(&[3, 2], 3, DType::F64)];
    let g = adjoint_core::grad(|p: &Vec<Tensor>| Tensor::lstm_cell(&p[0], &p[1], &p[2]).0.sum())(&args);
    let want = adjoint_core::grad(|p: &Vec<Tensor>| lstm_composite(p)[0].sum())(&args);
    for (a, b) in g.iter().zip(&want) {
        close(a, b, 1e-12, "h-only gradient");
    }
}

#[test]
fn lstm_seq_with_only_the_last_state_used_matches_its_composite() {
    // The layers' use: only h_T (a slice of hs) is used, so the pullback gets no cotangent
    // for cs and a; also the gradient of the gradient (the reverse pass's own rules).
    let args = vec![
        rand(&[5, 3, 8], 1, DType::F64),
        rand(&[8, 2], 2, DType::F64) * 0.5,
        rand(&[3, 2], 3, DType::F64),
        rand(&[3, 2], 4, DType::F64),
    ];
    let last = |hs: &Tensor| hs.narrow(0, 4, 1).sin().sum();
    let g =
        adjoint_core::grad(|p: &Vec<Tensor>| last(&Tensor::lstm_seq(&p[0], &p[1], &p[2], &p[3]).0))(&args);
    let want = adjoint_core::grad(|p: &Vec<Tensor>| last(&lstm_seq_composite(p)[0]))(&args);
    for (a, b) in g.iter().zip(&want) {
        close(a, b, 1e-12, "h_T-only gradient");
    }
    let gg = |fused: bool| {
        adjoint_core::grad(move |p: &Vec<Tensor>| {
            let g = adjoint_core::grad(move |q: &Vec<Tensor>| {
                let hs = if fused {
                    Tensor::lstm_seq(&q[0], &q[1], &q[2], &q[3]).0
                } else {
                    lstm_seq_composite(q)[0].clone()
                };
                last(&hs)
            })(p);
            g.iter().map(|t| (t * t).sum()).fold(Tensor::from(0.0).to_f64(), |a, b| a + b)
        })(&args)
    };
    for (a, b) in gg(true).iter().zip(&gg(false)) {
        close(a, b, 1e-10, "gradient of the squared gradient norm");
    }
}
