//! Matrix products, convolutions and pooling against naive loop implementations, gradient
//! kernels against the adjoint identity and finite differences, and every misuse message.

use std::panic::{catch_unwind, UnwindSafe};

use adjoint_tensor::ops::conv::{Conv1dOptions, Conv2dOptions};
use adjoint_tensor::ops::pool::{Pool1dOptions, Pool2dOptions};
use adjoint_tensor::{Array, DType};
use proptest::prelude::*;

// ------------------------------------------------------------------ helpers

/// Deterministic values in [-1, 1) from a seed (splitmix64).
fn rand_vec(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

fn rand_arr(seed: u64, shape: &[usize]) -> Array {
    Array::from_vec(rand_vec(seed, shape.iter().product()), shape)
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: element {i}: got {g}, want {w}");
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The panic message of `f`, which must panic.
fn panic_message<R>(f: impl FnOnce() -> R + UnwindSafe) -> String {
    let payload = catch_unwind(f).err().expect("expected a panic");
    payload.downcast_ref::<String>().cloned().expect("panic payload is a String")
}

/// The message names the op, each of `parts`, and this file as the caller's location.
fn assert_misuse(msg: &str, op: &str, parts: &[&str]) {
    assert!(msg.contains(op), "message does not name {op}: {msg}");
    assert!(msg.contains("linalg.rs"), "message does not name the caller: {msg}");
    for p in parts {
        assert!(msg.contains(p), "message does not mention {p}: {msg}");
    }
}

// ------------------------------------------------------------------ matmul

/// `[.., m, k] · [.., k, n]` for contiguous operands with equal batch shapes.
fn naive_matmul(a: &[f64], b: &[f64], batch: usize, m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; batch * m * n];
    for t in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for l in 0..k {
                    s += a[t * m * k + i * k + l] * b[t * k * n + l * n + j];
                }
                out[t * m * n + i * n + j] = s;
            }
        }
    }
    out
}

/// Reference for 2-D-or-more operands: broadcast batch dims by materialising, then loop.
fn reference_matmul(a: &Array, b: &Array) -> (Vec<usize>, Vec<f64>) {
    let (ra, rb) = (a.rank(), b.rank());
    let (m, k, n) = (a.shape()[ra - 2], a.shape()[ra - 1], b.shape()[rb - 1]);
    let batch = adjoint_tensor::broadcast_shapes(&a.shape()[..ra - 2], &b.shape()[..rb - 2]).unwrap();
    let full = |r, c| batch.iter().copied().chain([r, c]).collect::<Vec<_>>();
    let av = a.broadcast_to(&full(m, k)).to_vec::<f64>();
    let bv = b.broadcast_to(&full(k, n)).to_vec::<f64>();
    (full(m, n), naive_matmul(&av, &bv, batch.iter().product(), m, k, n))
}

fn check_matmul(a: &Array, b: &Array) {
    let (shape, want) = reference_matmul(a, b);
    let got = a.matmul(b);
    assert_eq!(got.shape(), shape.as_slice(), "matmul {:?} · {:?}", a.shape(), b.shape());
    assert_eq!(got.dtype(), DType::F64);
    assert_close(&got.to_vec::<f64>(), &want, 1e-12, "matmul f64");
    let got32 = a.cast(DType::F32).matmul(&b.cast(DType::F32));
    assert_eq!(got32.dtype(), DType::F32);
    assert_close(&got32.to_vec::<f64>(), &want, 1e-4, "matmul f32");
}

fn batch_dims() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..=3, 0..=2)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn matmul_matches_naive(
        ba in batch_dims(), bb in batch_dims(), m in 0usize..=6, k in 0usize..=6, n in 0usize..=6,
        mask in any::<u8>(), seed in any::<u64>(),
    ) {
        // Make the batch dims broadcastable: align right and put 1s where they differ.
        let len = ba.len().max(bb.len());
        let mut ba = ba;
        let mut bb = bb;
        for i in 0..len {
            let (ia, ib) = (i as isize - (len - ba.len()) as isize, i as isize - (len - bb.len()) as isize);
            if ia >= 0 && ib >= 0 && ba[ia as usize] != bb[ib as usize] {
                if mask >> (i % 8) & 1 == 1 { ba[ia as usize] = 1 } else { bb[ib as usize] = 1 }
            }
        }
        let sa: Vec<usize> = ba.iter().copied().chain([m, k]).collect();
        let sb: Vec<usize> = bb.iter().copied().chain([k, n]).collect();
        check_matmul(&rand_arr(seed, &sa), &rand_arr(seed ^ 7, &sb));
    }

    #[test]
    fn matmul_of_views_matches_copies(m in 1usize..=7, k in 1usize..=7, n in 1usize..=7, seed in any::<u64>()) {
        // Transposed lhs and rhs.
        let at = rand_arr(seed, &[k, m]).transpose(0, 1);
        let bt = rand_arr(seed + 1, &[n, k]).transpose(0, 1);
        check_matmul(&at, &bt);
        assert_close(&at.matmul(&bt).to_vec::<f64>(), &at.contiguous().matmul(&bt.contiguous()).to_vec::<f64>(), 1e-12, "transposed");
        // Sliced with a step in both dims, and flipped (negative strides).
        let big = rand_arr(seed + 2, &[2 * m, 3 * k]);
        let sl = big.slice(0, 0, 2 * m, 2).slice(1, 1, 3 * k, 3);
        assert_eq!(sl.shape(), &[m, k]);
        check_matmul(&sl, &bt);
        check_matmul(&sl.flip(0).flip(1), &bt.flip(1));
        // A broadcast row inside the matrix (stride 0 along a dim > 1).
        let row = rand_arr(seed + 3, &[1, k]).broadcast_to(&[m, k]);
        check_matmul(&row, &bt);
        // Stride-0 batch dims, on both sides.
        let b3 = rand_arr(seed + 4, &[k, n]).broadcast_to(&[4, k, n]);
        let a3 = rand_arr(seed + 5, &[3, 1, m, k]);
        check_matmul(&a3, &b3);
        check_matmul(&at.broadcast_to(&[2, m, k]), &b3.slice(0, 1, 3, 1));
    }
}

#[test]
fn matmul_promotes_vectors() {
    let v = Array::from_vec(vec![1.0f64, 2.0, 3.0], &[3]);
    let m = Array::from_vec((0..6).map(f64::from).collect(), &[3, 2]);
    let vv = v.matmul(&v);
    assert_eq!(vv.shape(), &[] as &[usize]);
    assert_eq!(vv.item::<f64>(), 14.0);
    let vm = v.matmul(&m);
    assert_eq!(vm.shape(), &[2]);
    assert_eq!(vm.to_vec::<f64>(), vec![16.0, 22.0]);
    let mv = m.transpose(0, 1).matmul(&v);
    assert_eq!(mv.shape(), &[2]);
    assert_eq!(mv.to_vec::<f64>(), vec![16.0, 22.0]);
    // Batched matrix times vector, vector times batched matrix.
    let bm = rand_arr(3, &[4, 2, 3]);
    let got = bm.matmul(&v);
    assert_eq!(got.shape(), &[4, 2]);
    let (_, want) = reference_matmul(&bm, &v.unsqueeze(1));
    assert_close(&got.to_vec::<f64>(), &want, 1e-12, "batched · vector");
    let got = Array::from_vec(vec![1.0f64, -1.0], &[2]).matmul(&bm);
    assert_eq!(got.shape(), &[4, 3]);
    let (_, want) = reference_matmul(&Array::from_vec(vec![1.0f64, -1.0], &[1, 2]), &bm);
    assert_close(&got.to_vec::<f64>(), &want, 1e-12, "vector · batched");
    // Empty inner dim gives zeros; empty outer dims give empty results.
    let z = Array::zeros(&[3, 0], DType::F32).matmul(&Array::zeros(&[0, 2], DType::F32));
    assert_eq!((z.shape(), z.to_vec::<f32>()), (&[3usize, 2][..], vec![0.0; 6]));
    assert_eq!(Array::zeros(&[0], DType::F64).matmul(&Array::zeros(&[0], DType::F64)).item::<f64>(), 0.0);
}

#[test]
fn matmul_large_and_many_small_agree_in_f32_and_f64() {
    // One product big enough for gemm's own threads.
    let a = rand_arr(11, &[70, 90]);
    let b = rand_arr(12, &[90, 80]).transpose(0, 1).contiguous().transpose(0, 1);
    check_matmul(&a, &b);
    // Many small products: one rayon task each.
    let a = rand_arr(13, &[80, 16, 16]);
    let b = rand_arr(14, &[16, 16]);
    check_matmul(&a, &b);
}

#[test]
fn matrix_vector_products_in_every_layout() {
    // Sizes on both sides of the thresholds at which a matrix-vector product is cut into pieces
    // (2^18 matrix elements; along k when the matrix is laid out along the output, up to 4
    // pieces whose partial sums are added in order), each with the output buffer NaN-filled
    // first: `A·x` and `x·Aᵀ` (rows are dot products), `g·A` and `Aᵀ·g` (columns summed).
    for (rows, cols) in [(600, 400), (700, 800), (2000, 1000), (37, 9000)] {
        let a = rand_arr(31, &[rows, cols]);
        let x = rand_arr(32, &[cols]);
        let g = rand_arr(33, &[rows]);
        let cases: [(Array, Array); 4] = [
            (a.clone(), x.unsqueeze(1)),
            (x.unsqueeze(0), a.transpose(0, 1)),
            (g.unsqueeze(0), a.clone()),
            (a.transpose(0, 1), g.unsqueeze(1)),
        ];
        for (l, r) in &cases {
            let out = l.shape()[0] * r.shape()[1];
            for _ in 0..4 {
                drop(Array::from_vec(vec![f64::NAN; out], &[out]));
                drop(Array::from_vec(vec![f32::NAN; out], &[out]));
            }
            check_matmul(l, r);
        }
        // The 1-D forms go through the same products.
        let want = a.matmul(&x.unsqueeze(1)).to_vec::<f64>();
        assert_eq!(a.matmul(&x).to_vec::<f64>(), want);
        let want = g.unsqueeze(0).matmul(&a).to_vec::<f64>();
        assert_eq!(g.matmul(&a).to_vec::<f64>(), want);
    }
}

#[test]
fn products_computed_column_major_match_the_naive_product() {
    // Lone products whose result gemm computes column-major and the output receives transposed
    // (`column_major_result` in ops/matmul.rs). A weight's `Wᵀ` on the right with fewer rows than
    // columns: one thread, split across threads (≥ 2²² multiply-adds: W2's first layer), and
    // the 512-element column distance that the aliasing copy would otherwise take; a square one
    // stays row-major. A narrow output with a column-major left operand (a classifier head's
    // weight gradient `xᵀ·g`), down to one column.
    let wt = |m: usize, k: usize, n: usize| (rand_arr(31, &[m, k]), rand_arr(32, &[n, k]).transpose(0, 1));
    for (a, b) in [wt(40, 300, 200), wt(128, 784, 512), wt(64, 512, 512), wt(96, 600, 400), wt(70, 50, 70)] {
        check_matmul(&a, &b);
    }
    let narrow =
        |k: usize, m: usize, n: usize| (rand_arr(33, &[k, m]).transpose(0, 1), rand_arr(34, &[k, n]));
    for (a, b) in [narrow(128, 512, 10), narrow(300, 100, 15), narrow(20, 64, 1)] {
        check_matmul(&a, &b);
    }
}

#[test]
fn matmul_writes_every_element_of_an_unzeroed_output() {
    // The output buffer is not zeroed before gemm writes it: free NaN-filled arrays of each
    // output's size first (the buffer cache hands such buffers out again), then compare with the
    // naive product. One thread, split across threads, batched, and a transposed operand.
    let cases: [(Vec<usize>, Vec<usize>, bool); 4] = [
        (vec![100, 7], vec![7, 90], false),
        (vec![300, 120], vec![120, 250], false),
        (vec![4, 60, 5], vec![5, 50], false),
        (vec![90, 200], vec![200, 110], true),
    ];
    for (sa, sb, transposed) in cases {
        let out: usize = sa[..sa.len() - 1].iter().product::<usize>() * sb[sb.len() - 1];
        for _ in 0..4 {
            drop(Array::from_vec(vec![f64::NAN; out], &[out]));
        }
        let a = rand_arr(21, &sa);
        let b = if transposed {
            let (k, n) = (sb[0], sb[1]);
            rand_arr(22, &[n, k]).transpose(0, 1)
        } else {
            rand_arr(22, &sb)
        };
        check_matmul(&a, &b);
    }
}

#[test]
fn matmul_i64_is_exact() {
    let a = Array::from_vec((0..6i64).collect(), &[2, 3]);
    let b = Array::from_vec((0..12i64).map(|v| v - 5).collect(), &[2, 3, 2]);
    let got = a.matmul(&b.transpose(1, 2).contiguous().transpose(1, 2));
    assert_eq!(got.dtype(), DType::I64);
    let (_, want) = reference_matmul(&a.cast(DType::F64), &b.cast(DType::F64));
    assert_eq!(got.to_vec::<i64>(), want.iter().map(|&v| v as i64).collect::<Vec<_>>());
}

#[test]
fn matmul_misuse_messages() {
    let a = Array::zeros(&[2, 3], DType::F32);
    let msg = panic_message(|| a.matmul(&Array::zeros(&[4, 5], DType::F32)));
    assert_misuse(&msg, "matmul", &["[2, 3]", "[4, 5]"]);
    let msg = panic_message(|| a.matmul(&Array::zeros(&[3, 2], DType::F64)));
    assert_misuse(&msg, "matmul", &["[2, 3]", "[3, 2]", "float32", "float64"]);
    let msg = panic_message(|| a.matmul(&Array::scalar(1.0f32)));
    assert_misuse(&msg, "matmul", &["[2, 3]", "[]"]);
    let msg =
        panic_message(|| Array::zeros(&[2, 2, 3], DType::F32).matmul(&Array::zeros(&[3, 3, 4], DType::F32)));
    assert_misuse(&msg, "matmul", &["[2, 2, 3]", "[3, 3, 4]", "broadcast"]);
    let msg = panic_message(|| Array::zeros(&[2], DType::Bool).matmul(&Array::zeros(&[2], DType::Bool)));
    assert_misuse(&msg, "matmul", &["bool"]);
    assert_eq!(a.try_matmul(&a).unwrap_err().op, "matmul");
}

// ------------------------------------------------------------------ convolution

#[derive(Clone, Debug)]
struct ConvCase {
    x: [usize; 4],
    w: [usize; 4],
    p: Conv2dOptions,
    seed: u64,
}

/// Output spatial size, PyTorch's formula.
fn conv_len(size: usize, k: usize, s: usize, p: usize, d: usize) -> usize {
    (size + 2 * p - d * (k - 1) - 1) / s + 1
}

/// Every tap of a direct seven-loop convolution: `f(o, x, w)` for each output element `o`,
/// input element `x` and weight element `w` with `out[o] += x[x]·w[w]` (padding skipped);
/// returns the output shape.
fn for_each_tap(
    xs: [usize; 4],
    ws: [usize; 4],
    p: &Conv2dOptions,
    mut f: impl FnMut(usize, usize, usize),
) -> [usize; 4] {
    let ([n, c, h, wd], [o, cg, kh, kw]) = (xs, ws);
    let og = o / p.groups;
    let oh = conv_len(h, kh, p.stride[0], p.padding[0], p.dilation[0]);
    let ow = conv_len(wd, kw, p.stride[1], p.padding[1], p.dilation[1]);
    for b in 0..n {
        for oc in 0..o {
            let gi = oc / og;
            for y in 0..oh {
                for xx in 0..ow {
                    let out = ((b * o + oc) * oh + y) * ow + xx;
                    for ci in 0..cg {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let ih =
                                    (y * p.stride[0] + ki * p.dilation[0]) as isize - p.padding[0] as isize;
                                let iw =
                                    (xx * p.stride[1] + kj * p.dilation[1]) as isize - p.padding[1] as isize;
                                if ih < 0 || iw < 0 || ih as usize >= h || iw as usize >= wd {
                                    continue;
                                }
                                let xi = ((b * c + gi * cg + ci) * h + ih as usize) * wd + iw as usize;
                                f(out, xi, ((oc * cg + ci) * kh + ki) * kw + kj);
                            }
                        }
                    }
                }
            }
        }
    }
    [n, o, oh, ow]
}

/// Direct seven-loop convolution.
fn naive_conv2d(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    p: &Conv2dOptions,
) -> (Vec<f64>, [usize; 4]) {
    let (oh, ow) = (
        conv_len(xs[2], ws[2], p.stride[0], p.padding[0], p.dilation[0]),
        conv_len(xs[3], ws[3], p.stride[1], p.padding[1], p.dilation[1]),
    );
    let mut out = vec![0.0; xs[0] * ws[0] * oh * ow];
    let os = for_each_tap(xs, ws, p, |o, xi, wi| out[o] += x[xi] * w[wi]);
    (out, os)
}

/// Both gradients of `⟨conv2d(x, w), g⟩` by the direct loop, each product added into the input
/// and weight elements it read.
fn naive_conv2d_grads(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    g: &[f64],
    p: &Conv2dOptions,
) -> (Vec<f64>, Vec<f64>) {
    let (mut dx, mut dw) = (vec![0.0; x.len()], vec![0.0; w.len()]);
    for_each_tap(xs, ws, p, |o, xi, wi| {
        dx[xi] += g[o] * w[wi];
        dw[wi] += g[o] * x[xi];
    });
    (dx, dw)
}

fn conv2d_case() -> impl Strategy<Value = ConvCase> {
    (
        (0usize..=2, 1usize..=3, 1usize..=3, 1usize..=3, any::<u64>()),
        (1usize..=3, 1usize..=3, 1usize..=3, 1usize..=3),
        (0usize..=2, 0usize..=2, 1usize..=2, 1usize..=2, 0usize..=5, 0usize..=5),
    )
        .prop_map(|((n, g, cg, og, seed), (kh, kw, sh, sw), (ph, pw, dh, dw, eh, ew))| {
            let h = ((kh - 1) * dh + 1 + eh).saturating_sub(2 * ph).max(1);
            let w = ((kw - 1) * dw + 1 + ew).saturating_sub(2 * pw).max(1);
            let p = Conv2dOptions { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw], groups: g };
            ConvCase { x: [n, g * cg, h, w], w: [g * og, cg, kh, kw], p, seed }
        })
}

/// Random valid 1-D convolutions, as 2-D cases with `H = KH = 1`.
fn conv1d_case() -> impl Strategy<Value = ConvCase> {
    conv2d_case().prop_map(|mut c| {
        c.x[2] = 1;
        c.w[2] = 1;
        c.p.stride[0] = 1;
        c.p.padding[0] = 0;
        c.p.dilation[0] = 1;
        c
    })
}

fn to_1d(c: &ConvCase) -> ([usize; 3], [usize; 3], Conv1dOptions) {
    let p = Conv1dOptions {
        stride: c.p.stride[1],
        padding: c.p.padding[1],
        dilation: c.p.dilation[1],
        groups: c.p.groups,
    };
    ([c.x[0], c.x[1], c.x[3]], [c.w[0], c.w[1], c.w[3]], p)
}

/// Check forward against the naive loop and both gradient kernels against the adjoint identity
/// `⟨conv(x, w), g⟩ = ⟨x, x̄⟩ = ⟨w, w̄⟩`, in f64 and f32.
fn check_conv2d(c: &ConvCase) {
    let x = rand_arr(c.seed, &c.x);
    let w = rand_arr(c.seed ^ 1, &c.w);
    let (want, os) = naive_conv2d(&x.to_vec(), c.x, &w.to_vec(), c.w, &c.p);
    let y = x.conv2d(&w, &c.p);
    assert_eq!(y.shape(), &os, "{c:?}");
    assert_close(&y.to_vec::<f64>(), &want, 1e-12, "conv2d f64");
    let y32 = x.cast(DType::F32).conv2d(&w.cast(DType::F32), &c.p);
    assert_eq!(y32.dtype(), DType::F32);
    assert_close(&y32.to_vec::<f64>(), &want, 1e-4, "conv2d f32");

    let g = rand_arr(c.seed ^ 2, &os);
    let dx = Array::conv2d_input_grad(&g, &w, &c.x, &c.p);
    let dw = Array::conv2d_weight_grad(&x, &g, &c.w, &c.p);
    assert_eq!((dx.shape(), dw.shape()), (&c.x[..], &c.w[..]));
    let lhs = dot(&want, &g.to_vec());
    let tol = 1e-10 * (1.0 + lhs.abs());
    assert!((lhs - dot(&x.to_vec(), &dx.to_vec())).abs() < tol, "input grad identity, {c:?}");
    assert!((lhs - dot(&w.to_vec(), &dw.to_vec())).abs() < tol, "weight grad identity, {c:?}");
    let dx32 = Array::conv2d_input_grad(&g.cast(DType::F32), &w.cast(DType::F32), &c.x, &c.p);
    let dw32 = Array::conv2d_weight_grad(&x.cast(DType::F32), &g.cast(DType::F32), &c.w, &c.p);
    assert_close(&dx32.to_vec::<f64>(), &dx.to_vec::<f64>(), 1e-4, "input grad f32");
    assert_close(&dw32.to_vec::<f64>(), &dw.to_vec::<f64>(), 1e-4, "weight grad f32");
}

/// Central differences of `⟨conv2d(x, w), g⟩` at a few coordinates of `x` and `w`.
fn check_conv2d_finite_differences(c: &ConvCase) {
    let (xv, wv) = (rand_vec(c.seed, c.x.iter().product()), rand_vec(c.seed ^ 1, c.w.iter().product()));
    let os = naive_conv2d(&xv, c.x, &wv, c.w, &c.p).1;
    let g = rand_arr(c.seed ^ 2, &os);
    let f = |xv: &[f64], wv: &[f64]| {
        let y = Array::from_slice(xv, &c.x).conv2d(&Array::from_slice(wv, &c.w), &c.p);
        dot(&y.to_vec(), &g.to_vec())
    };
    let dx = Array::conv2d_input_grad(&g, &Array::from_slice(&wv, &c.w), &c.x, &c.p).to_vec::<f64>();
    let dw = Array::conv2d_weight_grad(&Array::from_slice(&xv, &c.x), &g, &c.w, &c.p).to_vec::<f64>();
    let eps = 1e-6;
    for j in (0..xv.len()).step_by(xv.len() / 5 + 1) {
        let (mut up, mut down) = (xv.clone(), xv.clone());
        up[j] += eps;
        down[j] -= eps;
        let fd = (f(&up, &wv) - f(&down, &wv)) / (2.0 * eps);
        assert!((fd - dx[j]).abs() < 1e-6, "d/dx[{j}]: fd {fd} vs {} ({c:?})", dx[j]);
    }
    for j in (0..wv.len()).step_by(wv.len() / 5 + 1) {
        let (mut up, mut down) = (wv.clone(), wv.clone());
        up[j] += eps;
        down[j] -= eps;
        let fd = (f(&xv, &up) - f(&xv, &down)) / (2.0 * eps);
        assert!((fd - dw[j]).abs() < 1e-6, "d/dw[{j}]: fd {fd} vs {} ({c:?})", dw[j]);
    }
}

/// Batches large enough (`N·O·OH·OW·C·KH·KW ≥ 2²²` multiply-adds) that the kernels give whole
/// images to the pool's threads, each writing its images' chunk of a fresh, unzeroed output
/// (the proptest cases above are all below that size): 3×3 padded, strided with groups, and
/// pointwise with groups (no unroll). `f64`, whose only path is im2col, element by element
/// against the direct loops; run twice, so the second call's outputs come from the buffer
/// cache holding the first call's values.
#[test]
fn conv2d_batches_split_across_images_match_naive() {
    let cases = [
        ([8, 16, 24, 24], [16, 16, 3, 3], Conv2dOptions { padding: [1, 1], ..Default::default() }),
        (
            [9, 16, 25, 23],
            [32, 8, 3, 3],
            Conv2dOptions { stride: [2, 1], padding: [1, 0], groups: 2, ..Default::default() },
        ),
        ([8, 64, 20, 20], [64, 32, 1, 1], Conv2dOptions { groups: 2, ..Default::default() }),
    ];
    for (seed, (xs, ws, p)) in cases.into_iter().enumerate() {
        let seed = seed as u64;
        let (x, w) = (rand_arr(seed, &xs), rand_arr(seed ^ 1, &ws));
        let (want, os) = naive_conv2d(&x.to_vec(), xs, &w.to_vec(), ws, &p);
        let g = rand_arr(seed ^ 2, &os);
        let (want_dx, want_dw) = naive_conv2d_grads(&x.to_vec(), xs, &w.to_vec(), ws, &g.to_vec(), &p);
        for _ in 0..2 {
            assert_close(&x.conv2d(&w, &p).to_vec::<f64>(), &want, 1e-12, "conv2d");
            let dx = Array::conv2d_input_grad(&g, &w, &xs, &p);
            assert_close(&dx.to_vec::<f64>(), &want_dx, 1e-12, "input grad");
            let dw = Array::conv2d_weight_grad(&x, &g, &ws, &p);
            assert_close(&dw.to_vec::<f64>(), &want_dw, 1e-12, "weight grad");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn conv2d_matches_naive_and_grads_are_adjoint(c in conv2d_case()) {
        check_conv2d(&c);
    }

    #[test]
    fn conv2d_grads_match_finite_differences(c in conv2d_case()) {
        prop_assume!(c.x[0] > 0);
        check_conv2d_finite_differences(&c);
    }

    #[test]
    fn conv1d_matches_conv2d_with_unit_height(c in conv1d_case()) {
        let (xs, ws, p) = to_1d(&c);
        let x = rand_arr(c.seed, &xs);
        let w = rand_arr(c.seed ^ 1, &ws);
        let (want, os) = naive_conv2d(&x.to_vec(), c.x, &w.to_vec(), c.w, &c.p);
        let y = x.conv1d(&w, &p);
        prop_assert_eq!(y.shape(), &[os[0], os[1], os[3]]);
        assert_close(&y.to_vec::<f64>(), &want, 1e-12, "conv1d");
        let g = rand_arr(c.seed ^ 2, y.shape());
        let dx = Array::conv1d_input_grad(&g, &w, &xs, &p);
        let dw = Array::conv1d_weight_grad(&x, &g, &ws, &p);
        prop_assert_eq!((dx.shape(), dw.shape()), (&xs[..], &ws[..]));
        let g4 = g.reshape(&os);
        let dx2 = Array::conv2d_input_grad(&g4, &w.reshape(&c.w), &c.x, &c.p);
        let dw2 = Array::conv2d_weight_grad(&x.reshape(&c.x), &g4, &c.w, &c.p);
        assert_close(&dx.to_vec::<f64>(), &dx2.to_vec::<f64>(), 1e-12, "conv1d input grad");
        assert_close(&dw.to_vec::<f64>(), &dw2.to_vec::<f64>(), 1e-12, "conv1d weight grad");
        let lhs = dot(&want, &g.to_vec());
        prop_assert!((lhs - dot(&x.to_vec(), &dx.to_vec())).abs() < 1e-10 * (1.0 + lhs.abs()));
    }
}

#[test]
fn conv2d_batch_parallel_pointwise_and_strided_inputs() {
    // Big enough for the image-parallel path (and the per-thread weight-gradient sums).
    let p = Conv2dOptions { padding: [1, 1], ..Default::default() };
    check_conv2d(&ConvCase { x: [5, 8, 12, 12], w: [16, 8, 3, 3], p, seed: 1 });
    let p = Conv2dOptions { stride: [2, 1], padding: [1, 2], dilation: [2, 1], groups: 2 };
    check_conv2d(&ConvCase { x: [4, 6, 13, 11], w: [8, 3, 3, 4], p, seed: 2 });
    // A single image large enough for gemm's own threads.
    check_conv2d(&ConvCase { x: [1, 16, 20, 20], w: [32, 16, 3, 3], p: Conv2dOptions::default(), seed: 3 });
    // Pointwise (1×1, stride 1, no padding) skips the unroll, with and without groups.
    check_conv2d(&ConvCase { x: [3, 6, 5, 7], w: [4, 6, 1, 1], p: Conv2dOptions::default(), seed: 4 });
    let p = Conv2dOptions { groups: 3, ..Default::default() };
    check_conv2d(&ConvCase { x: [6, 6, 9, 9], w: [9, 2, 1, 1], p, seed: 5 });
    // Non-contiguous input and weight give the same result as contiguous copies.
    let x = rand_arr(6, &[3, 2, 5, 4]).permute(&[0, 1, 3, 2]);
    let w = rand_arr(7, &[4, 2, 2, 3]).flip(3);
    let p = Conv2dOptions { padding: [1, 0], ..Default::default() };
    let want = x.contiguous().conv2d(&w.contiguous(), &p);
    assert_close(&x.conv2d(&w, &p).to_vec::<f64>(), &want.to_vec::<f64>(), 0.0, "strided conv2d");
}

#[test]
fn conv_misuse_messages() {
    let x = Array::zeros(&[2, 4, 8, 8], DType::F32);
    let w = Array::zeros(&[6, 4, 3, 3], DType::F32);
    let d = Conv2dOptions::default();
    let msg = panic_message(|| x.conv2d(&Array::zeros(&[6, 3, 3, 3], DType::F32), &d));
    assert_misuse(&msg, "conv2d", &["[2, 4, 8, 8]", "[6, 3, 3, 3]", "channels"]);
    let g2 = Conv2dOptions { groups: 3, ..d };
    let msg = panic_message(|| x.conv2d(&Array::zeros(&[6, 1, 3, 3], DType::F32), &g2));
    assert_misuse(&msg, "conv2d", &["[2, 4, 8, 8]", "[6, 1, 3, 3]", "groups"]);
    let msg = panic_message(|| x.conv2d(&w, &Conv2dOptions { stride: [0, 1], ..d }));
    assert_misuse(&msg, "conv2d", &["[2, 4, 8, 8]", "stride"]);
    let msg = panic_message(|| x.conv2d(&Array::zeros(&[6, 4, 9, 3], DType::F32), &d));
    assert_misuse(&msg, "conv2d", &["[2, 4, 8, 8]", "[6, 4, 9, 3]", "larger"]);
    let msg = panic_message(|| Array::zeros(&[4, 8, 8], DType::F32).conv2d(&w, &d));
    assert_misuse(&msg, "conv2d", &["[4, 8, 8]", "[N, C, H, W]"]);
    let msg = panic_message(|| x.conv2d(&w.cast(DType::F64), &d));
    assert_misuse(&msg, "conv2d", &["float32", "float64", "[6, 4, 3, 3]"]);
    let msg = panic_message(|| x.cast(DType::I64).conv2d(&w.cast(DType::I64), &d));
    assert_misuse(&msg, "conv2d", &["int64"]);
    let g = Array::zeros(&[2, 6, 5, 5], DType::F32);
    let msg = panic_message(|| Array::conv2d_input_grad(&g, &w, &[2, 4, 8, 8], &d));
    assert_misuse(&msg, "conv2d_input_grad", &["[2, 6, 5, 5]", "[2, 6, 6, 6]"]);
    let msg = panic_message(|| Array::conv2d_weight_grad(&x, &g, &[6, 4, 3, 3], &d));
    assert_misuse(&msg, "conv2d_weight_grad", &["[2, 6, 5, 5]", "[6, 4, 3, 3]"]);
    // 1-D messages speak of 1-D shapes.
    let x1 = Array::zeros(&[2, 4, 5], DType::F64);
    let msg = panic_message(|| x1.conv1d(&Array::zeros(&[3, 4, 7], DType::F64), &Conv1dOptions::default()));
    assert_misuse(&msg, "conv1d", &["[2, 4, 5]", "[3, 4, 7]"]);
    let msg = panic_message(|| x1.conv1d(&Array::zeros(&[3, 2, 3], DType::F64), &Conv1dOptions::default()));
    assert_misuse(&msg, "conv1d", &["[2, 4, 5]", "[3, 2, 3]"]);
    let msg = panic_message(|| {
        Array::conv1d_input_grad(
            &Array::zeros(&[2, 3, 9], DType::F64),
            &Array::zeros(&[3, 4, 3], DType::F64),
            &[2, 4, 5],
            &Conv1dOptions::default(),
        )
    });
    assert_misuse(&msg, "conv1d_input_grad", &["[2, 3, 9]", "[2, 3, 3]"]);
    let msg = panic_message(|| {
        Array::conv1d_weight_grad(
            &x1,
            &Array::zeros(&[2, 3, 9], DType::F64),
            &[3, 4, 3],
            &Conv1dOptions::default(),
        )
    });
    assert_misuse(&msg, "conv1d_weight_grad", &["[2, 3, 9]"]);
    assert_eq!(x.try_conv2d(&Array::zeros(&[6, 5, 3, 3], DType::F32), &d).unwrap_err().op, "conv2d");
    assert_eq!(
        x1.try_conv1d(&x1, &Conv1dOptions { groups: 0, ..Default::default() }).unwrap_err().op,
        "conv1d"
    );
}

// ------------------------------------------------------------------ pooling

#[derive(Clone, Debug)]
struct PoolCase {
    x: [usize; 4],
    p: Pool2dOptions,
    seed: u64,
}

/// Max values, argmax indices, averages (padding counted / not counted) and output shape.
type NaivePool = (Vec<f64>, Vec<i64>, Vec<f64>, Vec<f64>, [usize; 4]);

/// Naive pooling: per window, max (first on ties, flat index) and average with both divisors.
fn naive_pool(x: &[f64], xs: [usize; 4], p: &Pool2dOptions) -> NaivePool {
    let [n, c, h, w] = xs;
    let oh = (h + 2 * p.padding[0] - p.kernel[0]) / p.stride[0] + 1;
    let ow = (w + 2 * p.padding[1] - p.kernel[1]) / p.stride[1] + 1;
    let (mut mx, mut ix, mut avg_in, mut avg_ex) = (vec![], vec![], vec![], vec![]);
    for plane in 0..n * c {
        for y in 0..oh {
            for xx in 0..ow {
                let (mut best, mut bi, mut s, mut cnt) = (f64::NEG_INFINITY, -1i64, 0.0, 0);
                for ki in 0..p.kernel[0] {
                    for kj in 0..p.kernel[1] {
                        let ih = (y * p.stride[0] + ki) as isize - p.padding[0] as isize;
                        let iw = (xx * p.stride[1] + kj) as isize - p.padding[1] as isize;
                        if ih < 0 || iw < 0 || ih as usize >= h || iw as usize >= w {
                            continue;
                        }
                        let j = ih as usize * w + iw as usize;
                        let v = x[plane * h * w + j];
                        if v > best {
                            (best, bi) = (v, j as i64);
                        }
                        s += v;
                        cnt += 1;
                    }
                }
                mx.push(best);
                ix.push(bi);
                avg_in.push(s / (p.kernel[0] * p.kernel[1]) as f64);
                avg_ex.push(s / cnt as f64);
            }
        }
    }
    (mx, ix, avg_in, avg_ex, [n, c, oh, ow])
}

fn pool2d_case() -> impl Strategy<Value = PoolCase> {
    (
        0usize..=2,
        1usize..=3,
        1usize..=4,
        1usize..=4,
        1usize..=3,
        1usize..=3,
        0usize..=2,
        0usize..=2,
        0usize..=4,
        0usize..=4,
        any::<u64>(),
    )
        .prop_map(|(n, c, kh, kw, sh, sw, ph, pw, eh, ew, seed)| {
            let (ph, pw) = (ph.min(kh / 2), pw.min(kw / 2));
            let h = (kh + eh).saturating_sub(2 * ph).max(1);
            let w = (kw + ew).saturating_sub(2 * pw).max(1);
            PoolCase {
                x: [n, c, h, w],
                p: Pool2dOptions { kernel: [kh, kw], stride: [sh, sw], padding: [ph, pw] },
                seed,
            }
        })
}

/// Distinct values (a shuffled grid with spacing 0.1), so max pooling has no ties and finite
/// differences never cross one.
fn distinct_arr(seed: u64, shape: &[usize]) -> Array {
    let r = rand_vec(seed, shape.iter().product());
    let mut order: Vec<usize> = (0..r.len()).collect();
    order.sort_by(|&a, &b| r[a].total_cmp(&r[b]));
    let mut v = vec![0.0; r.len()];
    for (rank, &i) in order.iter().enumerate() {
        v[i] = rank as f64 * 0.1 - 1.0;
    }
    Array::from_vec(v, shape)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn pool2d_matches_naive(c in pool2d_case()) {
        let x = rand_arr(c.seed, &c.x);
        let (mx, ix, avg_in, avg_ex, os) = naive_pool(&x.to_vec(), c.x, &c.p);
        let (y, i) = x.max_pool2d_with_indices(&c.p);
        prop_assert_eq!(y.shape(), &os);
        prop_assert_eq!(i.dtype(), DType::I64);
        prop_assert_eq!(y.to_vec::<f64>(), mx.clone());
        prop_assert_eq!(i.to_vec::<i64>(), ix);
        prop_assert_eq!(x.max_pool2d(&c.p).to_vec::<f64>(), mx.clone());
        assert_close(&x.avg_pool2d(&c.p, true).to_vec::<f64>(), &avg_in, 1e-12, "avg_pool2d incl. pad");
        assert_close(&x.avg_pool2d(&c.p, false).to_vec::<f64>(), &avg_ex, 1e-12, "avg_pool2d excl. pad");
        let x32 = x.cast(DType::F32);
        assert_close(&x32.max_pool2d(&c.p).to_vec::<f64>(), &mx, 1e-6, "max_pool2d f32");
        assert_close(&x32.avg_pool2d(&c.p, false).to_vec::<f64>(), &avg_ex, 1e-5, "avg_pool2d f32");
    }

    #[test]
    fn pool2d_backward_matches_identity_and_finite_differences(c in pool2d_case(), incl in any::<bool>()) {
        prop_assume!(c.x[0] > 0);
        let x = distinct_arr(c.seed, &c.x);
        let (y, idx) = x.max_pool2d_with_indices(&c.p);
        let g = rand_arr(c.seed ^ 3, y.shape());
        let f_max = |xv: &[f64]| dot(&Array::from_slice(xv, &c.x).max_pool2d(&c.p).to_vec(), &g.to_vec());
        let f_avg = |xv: &[f64]| dot(&Array::from_slice(xv, &c.x).avg_pool2d(&c.p, incl).to_vec(), &g.to_vec());
        let dmax = Array::max_pool2d_backward(&g, &idx, &c.x).to_vec::<f64>();
        let davg = Array::avg_pool2d_backward(&g, &c.x, &c.p, incl).to_vec::<f64>();
        let xv = x.to_vec::<f64>();
        // Average pooling is linear: ⟨avg(x), g⟩ = ⟨x, avg_backwardᵀ(g)⟩.
        let lhs = f_avg(&xv);
        prop_assert!((lhs - dot(&xv, &davg)).abs() < 1e-10 * (1.0 + lhs.abs()));
        let eps = 1e-6;
        for j in 0..xv.len() {
            let (mut up, mut down) = (xv.clone(), xv.clone());
            up[j] += eps;
            down[j] -= eps;
            let fd = (f_max(&up) - f_max(&down)) / (2.0 * eps);
            prop_assert!((fd - dmax[j]).abs() < 1e-6, "max d/dx[{}]: fd {} vs {}", j, fd, dmax[j]);
            let fd = (f_avg(&up) - f_avg(&down)) / (2.0 * eps);
            prop_assert!((fd - davg[j]).abs() < 1e-6, "avg d/dx[{}]: fd {} vs {}", j, fd, davg[j]);
        }
        let d32 = Array::avg_pool2d_backward(&g.cast(DType::F32), &c.x, &c.p, incl);
        prop_assert_eq!(d32.dtype(), DType::F32);
        assert_close(&d32.to_vec::<f64>(), &davg, 1e-5, "avg backward f32");
    }

    #[test]
    fn pool1d_matches_pool2d_with_unit_height(c in pool2d_case(), incl in any::<bool>()) {
        let [n, ch, _, l] = c.x;
        let p = Pool1dOptions { kernel: c.p.kernel[1], stride: c.p.stride[1], padding: c.p.padding[1] };
        let p2 = Pool2dOptions { kernel: [1, p.kernel], stride: [1, p.stride], padding: [0, p.padding] };
        let x = distinct_arr(c.seed, &[n, ch, l]);
        let x4 = x.reshape(&[n, ch, 1, l]);
        let (mx, ix, avg_in, avg_ex, os) = naive_pool(&x.to_vec(), [n, ch, 1, l], &p2);
        let (y, i) = x.max_pool1d_with_indices(&p);
        prop_assert_eq!(y.shape(), &[os[0], os[1], os[3]]);
        prop_assert_eq!(y.to_vec::<f64>(), mx.clone());
        prop_assert_eq!(i.to_vec::<i64>(), ix);
        prop_assert_eq!(x.max_pool1d(&p).to_vec::<f64>(), mx);
        let avg = x.avg_pool1d(&p, incl).to_vec::<f64>();
        assert_close(&avg, if incl { &avg_in } else { &avg_ex }, 1e-12, "avg_pool1d");
        let g = rand_arr(c.seed ^ 5, y.shape());
        let g4 = g.reshape(&os);
        let d1 = Array::avg_pool1d_backward(&g, &[n, ch, l], &p, incl);
        let d2 = Array::avg_pool2d_backward(&g4, &[n, ch, 1, l], &p2, incl);
        prop_assert_eq!(d1.shape(), &[n, ch, l]);
        prop_assert_eq!(d1.to_vec::<f64>(), d2.to_vec::<f64>());
        let (_, i4) = x4.max_pool2d_with_indices(&p2);
        let m1 = Array::max_pool1d_backward(&g, &i, &[n, ch, l]);
        let m2 = Array::max_pool2d_backward(&g4, &i4, &[n, ch, 1, l]);
        prop_assert_eq!(m1.to_vec::<f64>(), m2.to_vec::<f64>());
    }
}

#[test]
fn max_pool_ties_nan_and_large_inputs() {
    // Ties: the first maximum in the window wins.
    let x = Array::ones(&[1, 1, 3, 3], DType::F32);
    let p = Pool2dOptions { kernel: [2, 2], stride: [1, 1], padding: [1, 1] };
    let (_, i) = x.max_pool2d_with_indices(&p);
    assert_eq!(i.to_vec::<i64>(), vec![0, 0, 1, 2, 0, 0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8]);
    // NaN propagates.
    let x = Array::from_vec(vec![1.0f64, f64::NAN, 3.0, 0.0], &[1, 1, 2, 2]);
    let (y, i) = x.max_pool2d_with_indices(&Pool2dOptions::new([2, 2]));
    assert!(y.item::<f64>().is_nan());
    assert_eq!(i.to_vec::<i64>(), vec![1]);
    // A large input takes the parallel path and agrees with the naive loop.
    let c = PoolCase {
        x: [4, 16, 33, 31],
        p: Pool2dOptions { kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
        seed: 9,
    };
    let x = rand_arr(c.seed, &c.x);
    let (mx, ix, avg_in, _, _) = naive_pool(&x.to_vec(), c.x, &c.p);
    let (y, i) = x.max_pool2d_with_indices(&c.p);
    assert_eq!((y.to_vec::<f64>(), i.to_vec::<i64>()), (mx, ix));
    assert_close(&x.avg_pool2d(&c.p, true).to_vec::<f64>(), &avg_in, 1e-12, "large avg");
    let g = rand_arr(10, y.shape());
    let dx = Array::avg_pool2d_backward(&g, &c.x, &c.p, true);
    let lhs = dot(&avg_in, &g.to_vec());
    assert!((lhs - dot(&x.to_vec(), &dx.to_vec())).abs() < 1e-9 * (1.0 + lhs.abs()));
    // Strided input views give the same result as contiguous copies.
    let v = x.permute(&[0, 1, 3, 2]);
    assert_eq!(v.max_pool2d(&c.p).to_vec::<f64>(), v.contiguous().max_pool2d(&c.p).to_vec::<f64>());
}

#[test]
fn pool_misuse_messages() {
    let x = Array::zeros(&[2, 3, 6, 6], DType::F32);
    let p = Pool2dOptions::new([2, 2]);
    let msg = panic_message(|| Array::zeros(&[3, 6, 6], DType::F32).max_pool2d(&p));
    assert_misuse(&msg, "max_pool2d", &["[3, 6, 6]", "[N, C, H, W]"]);
    let msg = panic_message(|| x.max_pool2d(&Pool2dOptions { stride: [0, 2], ..p }));
    assert_misuse(&msg, "max_pool2d", &["stride", "[2, 3, 6, 6]"]);
    let msg = panic_message(|| x.avg_pool2d(&Pool2dOptions { padding: [2, 0], ..p }, true));
    assert_misuse(&msg, "avg_pool2d", &["padding", "half", "[2, 3, 6, 6]"]);
    let msg = panic_message(|| x.max_pool2d_with_indices(&Pool2dOptions::new([7, 2])));
    assert_misuse(&msg, "max_pool2d_with_indices", &["larger", "[2, 3, 6, 6]"]);
    let msg = panic_message(|| x.cast(DType::I64).max_pool2d(&p));
    assert_misuse(&msg, "max_pool2d", &["int64"]);
    let msg = panic_message(|| {
        Array::avg_pool2d_backward(&Array::zeros(&[2, 3, 2, 2], DType::F32), &[2, 3, 6, 6], &p, false)
    });
    assert_misuse(&msg, "avg_pool2d_backward", &["[2, 3, 2, 2]", "[2, 3, 3, 3]"]);
    let (y, i) = x.max_pool2d_with_indices(&p);
    let msg = panic_message(|| Array::max_pool2d_backward(&y, &i.cast(DType::F32), &[2, 3, 6, 6]));
    assert_misuse(&msg, "max_pool2d_backward", &["int64", "[2, 3, 3, 3]"]);
    let msg = panic_message(|| Array::max_pool2d_backward(&y, &i, &[2, 4, 6, 6]));
    assert_misuse(&msg, "max_pool2d_backward", &["[2, 3, 3, 3]", "[2, 4, 6, 6]"]);
    let msg = panic_message(|| Array::max_pool2d_backward(&y, &i, &[2, 3, 2, 2]));
    assert_misuse(&msg, "max_pool2d_backward", &["outside", "[2, 3, 2, 2]"]);
    // 1-D.
    let x1 = Array::zeros(&[2, 3, 5], DType::F64);
    let msg = panic_message(|| x1.max_pool1d(&Pool1dOptions::new(6)));
    assert_misuse(&msg, "max_pool1d", &["[2, 3, 5]", "larger"]);
    let msg = panic_message(|| x1.avg_pool1d(&Pool1dOptions { kernel: 2, stride: 1, padding: 2 }, true));
    assert_misuse(&msg, "avg_pool1d", &["[2, 3, 5]", "padding"]);
    let msg =
        panic_message(|| x1.max_pool1d_with_indices(&Pool1dOptions { kernel: 2, stride: 0, padding: 0 }));
    assert_misuse(&msg, "max_pool1d_with_indices", &["[2, 3, 5]", "stride"]);
    let msg = panic_message(|| Array::zeros(&[2, 3, 5, 1], DType::F64).max_pool1d(&Pool1dOptions::new(2)));
    assert_misuse(&msg, "max_pool1d", &["[2, 3, 5, 1]", "[N, C, L]"]);
    let msg = panic_message(|| Array::avg_pool1d_backward(&x1, &[2, 3, 5], &Pool1dOptions::new(2), true));
    assert_misuse(&msg, "avg_pool1d_backward", &["[2, 3, 5]", "[2, 3, 2]"]);
    let msg = panic_message(|| Array::max_pool1d_backward(&x1, &x1.cast(DType::I64), &[2, 3, 5, 5]));
    assert_misuse(&msg, "max_pool1d_backward", &["[2, 3, 5, 5]"]);
    assert_eq!(x1.try_avg_pool1d(&Pool1dOptions::new(0), true).unwrap_err().op, "avg_pool1d");
}
