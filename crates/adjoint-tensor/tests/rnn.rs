//! The fused recurrent cells (`ops::rnn`) against a naive reference written here with libm
//! (`1/(1+e^-x)`, `tanh`), on odd sizes (0 and 1 included), both float widths, strided
//! inputs, and a size large enough to take the parallel path. The reverse passes are checked
//! against central differences of the naive forward pass (a directional derivative), so no
//! expected value comes from the code under test.

use adjoint_tensor::ops::rnn;
use adjoint_tensor::{Array, DType};
use proptest::prelude::*;

fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) % 6001) as f64 / 3000.0 * scale - scale
        })
        .collect()
}

fn arr(v: &[f64], shape: &[usize], dtype: DType) -> Array {
    Array::from_vec(v.to_vec(), shape).cast(dtype)
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Naive LSTM step: (h', c') per element, rows of `[B, 4H]`.
fn lstm_ref(gx: &[f64], gh: &[f64], c: &[f64], b: usize, h: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut ho, mut co) = (vec![0.0; b * h], vec![0.0; b * h]);
    for r in 0..b {
        for j in 0..h {
            let a = |k: usize| gx[r * 4 * h + k * h + j] + gh[r * 4 * h + k * h + j];
            let cn = sig(a(1)) * c[r * h + j] + sig(a(0)) * a(2).tanh();
            co[r * h + j] = cn;
            ho[r * h + j] = sig(a(3)) * cn.tanh();
        }
    }
    (ho, co)
}

/// Naive GRU step (PyTorch's equations).
fn gru_ref(gx: &[f64], gh: &[f64], hp: &[f64], b: usize, h: usize) -> Vec<f64> {
    let mut ho = vec![0.0; b * h];
    for r in 0..b {
        for j in 0..h {
            let (x, y) = (|k: usize| gx[r * 3 * h + k * h + j], |k: usize| gh[r * 3 * h + k * h + j]);
            let (rg, z) = (sig(x(0) + y(0)), sig(x(1) + y(1)));
            let n = (x(2) + rg * y(2)).tanh();
            ho[r * h + j] = (1.0 - z) * n + z * hp[r * h + j];
        }
    }
    ho
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn plus(a: &[f64], v: &[f64], e: f64) -> Vec<f64> {
    a.iter().zip(v).map(|(x, y)| x + e * y).collect()
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{k}]: {g} vs {w}");
    }
}

fn check_lstm(b: usize, h: usize, seed: u64, dtype: DType) {
    let (gx, gh, c) =
        (values(b * 4 * h, seed, 3.0), values(b * 4 * h, seed ^ 1, 3.0), values(b * h, seed ^ 2, 2.0));
    let (dh, dc) = (values(b * h, seed ^ 3, 1.0), values(b * h, seed ^ 4, 1.0));
    let tol = if dtype == DType::F32 { 2e-6 } else { 1e-13 };
    let (ho, co) = rnn::lstm_cell(
        &arr(&gx, &[b, 4 * h], dtype),
        &arr(&gh, &[b, 4 * h], dtype),
        &arr(&c, &[b, h], dtype),
    );
    let (hr, cr) = lstm_ref(&gx, &gh, &c, b, h);
    assert_eq!((ho.shape(), ho.dtype(), co.shape()), (&[b, h][..], dtype, &[b, h][..]));
    close(&ho.to_vec::<f64>(), &hr, tol, "lstm h");
    close(&co.to_vec::<f64>(), &cr, tol, "lstm c");

    // Reverse pass: <dg, vx + vh> + <dc_prev, vc> = d/dε <dh, h'(·+εv)> + <dc, c'(·+εv)>.
    let (dg, dcp) = rnn::lstm_cell_grad(
        &arr(&gx, &[b, 4 * h], dtype),
        &arr(&gh, &[b, 4 * h], dtype),
        &arr(&c, &[b, h], dtype),
        &arr(&dh, &[b, h], dtype),
        &arr(&dc, &[b, h], dtype),
    );
    assert_eq!((dg.shape(), dcp.shape()), (&[b, 4 * h][..], &[b, h][..]));
    let (vx, vh, vc) =
        (values(b * 4 * h, seed ^ 5, 1.0), values(b * 4 * h, seed ^ 6, 1.0), values(b * h, seed ^ 7, 1.0));
    let l = |e: f64| {
        let (hh, cc) = lstm_ref(&plus(&gx, &vx, e), &plus(&gh, &vh, e), &plus(&c, &vc, e), b, h);
        dot(&dh, &hh) + dot(&dc, &cc)
    };
    let eps = 1e-5;
    let fd = (l(eps) - l(-eps)) / (2.0 * eps);
    let vg: Vec<f64> = vx.iter().zip(&vh).map(|(a, b)| a + b).collect();
    let got = dot(&dg.to_vec::<f64>(), &vg) + dot(&dcp.to_vec::<f64>(), &vc);
    let tol = if dtype == DType::F32 { 1e-4 } else { 1e-7 };
    assert!(
        (got - fd).abs() <= tol * (1.0 + fd.abs()) * (1.0 + (b * h) as f64).sqrt(),
        "lstm grad {got} vs {fd}"
    );
}

fn check_gru(b: usize, h: usize, seed: u64, dtype: DType) {
    let (gx, gh, hp) =
        (values(b * 3 * h, seed, 3.0), values(b * 3 * h, seed ^ 1, 3.0), values(b * h, seed ^ 2, 1.0));
    let dh = values(b * h, seed ^ 3, 1.0);
    let tol = if dtype == DType::F32 { 2e-6 } else { 1e-13 };
    let ins = (arr(&gx, &[b, 3 * h], dtype), arr(&gh, &[b, 3 * h], dtype), arr(&hp, &[b, h], dtype));
    let ho = rnn::gru_cell(&ins.0, &ins.1, &ins.2);
    assert_eq!((ho.shape(), ho.dtype()), (&[b, h][..], dtype));
    close(&ho.to_vec::<f64>(), &gru_ref(&gx, &gh, &hp, b, h), tol, "gru h");

    let (dx, dy, dhp) = rnn::gru_cell_grad(&ins.0, &ins.1, &ins.2, &arr(&dh, &[b, h], dtype));
    assert_eq!((dx.shape(), dy.shape(), dhp.shape()), (&[b, 3 * h][..], &[b, 3 * h][..], &[b, h][..]));
    let (vx, vy, vh) =
        (values(b * 3 * h, seed ^ 5, 1.0), values(b * 3 * h, seed ^ 6, 1.0), values(b * h, seed ^ 7, 1.0));
    let l = |e: f64| dot(&dh, &gru_ref(&plus(&gx, &vx, e), &plus(&gh, &vy, e), &plus(&hp, &vh, e), b, h));
    let eps = 1e-5;
    let fd = (l(eps) - l(-eps)) / (2.0 * eps);
    let got = dot(&dx.to_vec::<f64>(), &vx) + dot(&dy.to_vec::<f64>(), &vy) + dot(&dhp.to_vec::<f64>(), &vh);
    let tol = if dtype == DType::F32 { 1e-4 } else { 1e-7 };
    assert!(
        (got - fd).abs() <= tol * (1.0 + fd.abs()) * (1.0 + (b * h) as f64).sqrt(),
        "gru grad {got} vs {fd}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn cells_match_the_naive_reference(b in 0usize..6, h in 0usize..8, seed in any::<u64>(), f32_ in any::<bool>()) {
        let dtype = if f32_ { DType::F32 } else { DType::F64 };
        check_lstm(b, h, seed, dtype);
        check_gru(b, h, seed, dtype);
    }
}

#[test]
fn large_cells_take_the_parallel_path_and_agree() {
    // b·h·work ≥ PAR_THRESHOLD: the rows are split across rayon.
    check_lstm(67, 129, 11, DType::F32);
    check_gru(67, 129, 12, DType::F64);
}

#[test]
fn strided_inputs_are_read_through_their_layout() {
    // A transposed [4H, B] array viewed as [B, 4H]: same results as its contiguous copy.
    let (b, h) = (3, 5);
    let g = Array::from_vec(values(b * 4 * h, 9, 2.0), &[4 * h, b]).transpose(0, 1);
    let c = Array::from_vec(values(b * h, 10, 1.0), &[b, h]);
    let (h1, c1) = rnn::lstm_cell(&g, &g, &c);
    let gc = g.contiguous();
    let (h2, c2) = rnn::lstm_cell(&gc, &gc, &c);
    assert_eq!((h1.to_vec::<f64>(), c1.to_vec::<f64>()), (h2.to_vec::<f64>(), c2.to_vec::<f64>()));
}

#[test]
fn mismatched_operands_panic_with_the_op_and_shapes() {
    let g = Array::from_vec(vec![0.0f32; 8], &[2, 4]);
    let c = Array::from_vec(vec![0.0f32; 4], &[2, 2]);
    let err = std::panic::catch_unwind(|| rnn::lstm_cell(&g, &g, &c)).expect_err("H = 1 needs c [2, 1]");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("lstm_cell") && msg.contains("[2, 2]"), "{msg}");
}

/// At W4's size (B 32, H 128) each step's hidden units are split across two threads (forward
/// and reverse); every element is computed by the same operations in the same order either way,
/// so 1 and 2 threads agree bitwise, in f32 and f64, with and without a cotangent for `a`.
#[test]
fn lstm_seq_split_across_threads_matches_one_thread_bitwise() {
    let (t, b, h) = (6, 32, 128);
    for dtype in [DType::F32, DType::F64] {
        let r = |i: u64, s: &[usize], scale: f64| arr(&values(s.iter().product(), i, scale), s, dtype);
        let (gx, w) = (r(1, &[t, b, 4 * h], 1.0), r(2, &[4 * h, h], 0.15));
        let (h0, c0) = (r(3, &[b, h], 0.5), r(4, &[b, h], 0.5));
        let (dhs, dcs, da) = (r(5, &[t, b, h], 1.0), r(6, &[t, b, h], 1.0), r(7, &[t, b, 4 * h], 1.0));
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (hs, cs, a) = rnn::lstm_seq(&gx, &w, &h0, &c0);
                let g1 = rnn::lstm_seq_grad_bias(&w, &h0, &c0, &hs, &cs, &a, &dhs, &dcs, Some(&da));
                let g2 = rnn::lstm_seq_grad(&w, &h0, &c0, &hs, &cs, &a, &dhs, &dcs, None);
                // The bias cotangent is d_gx summed over steps and rows (in another order).
                let sum = g1.0.cast(DType::F64).sum_axes(&[0, 1], false).to_vec::<f64>();
                let tol = if dtype == DType::F32 { 1e-4 } else { 1e-12 };
                for (got, want) in g1.4.to_vec::<f64>().iter().zip(&sum) {
                    assert!(
                        (got - want).abs() <= tol * (1.0 + want.abs()),
                        "{dtype}: d_bias {got} against {want}"
                    );
                }
                let bits = |x: &Array| x.to_vec::<f64>().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                [&hs, &cs, &a, &g1.0, &g1.1, &g1.2, &g1.3, &g1.4, &g2.0, &g2.1, &g2.2, &g2.3].map(bits)
            })
        };
        let (one, two) = (run(1), run(2));
        for (i, (x, y)) in one.iter().zip(&two).enumerate() {
            assert!(x == y, "{dtype}: output {i} differs between 1 and 2 threads");
        }
    }
}
