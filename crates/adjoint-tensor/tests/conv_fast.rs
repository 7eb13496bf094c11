//! The specialised convolution and pooling kernels against naive `f64` loops: Winograd
//! F(2×2, 3×3) for `f32` 3×3 stride-1 convolutions with at least 8 channels per group (forward,
//! input gradient and weight gradient, on odd sizes, every padding up to 2, groups, several
//! images), and the 2×2 max-pooling path (ties, NaNs, odd sizes).
//!
//! Tolerance: the reference is exact to `f64` rounding and both sides see the same inputs
//! (rounded to `f32` first). Winograd's error is bounded norm-wise, not per element: each
//! result is a ±1/±½ combination of 16 transformed products, so cancellation between taps of
//! one tile leaves an error of order `α · ε · max|terms|` even on an element whose own sum is
//! small (Barabasz et al., "Error analysis and improving the accuracy of Winograd convolution",
//! 2020: `α` is a few tens for F(2×2, 3×3)). We check every element against
//! `64 · ε_f32 · S`, with `S` the largest per-element sum of absolute products in the tensor
//! (computed by the naive loop): about `8e-6 · S`. A wrong tap, coefficient or tile offset
//! produces errors of the order of a single product, `~0.1 · S` or more, four orders of
//! magnitude above it.

use adjoint_tensor::ops::conv::{with_winograd_tile, Conv2dOptions};
use adjoint_tensor::{Array, DType};
use proptest::prelude::*;

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
            // Rounded to f32 so that both sides see the same inputs.
            ((z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 as f64
        })
        .collect()
}

/// Naive forward, input gradient and weight gradient of a stride-1, dilation-1 convolution,
/// each with its per-element sum of absolute terms (for the tolerance).
struct Reference {
    y: Vec<f64>,
    y_abs: Vec<f64>,
    dx: Vec<f64>,
    dx_abs: Vec<f64>,
    dw: Vec<f64>,
    dw_abs: Vec<f64>,
}

fn reference(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    gy: &[f64],
    p: &Conv2dOptions,
) -> Reference {
    let ([n, c, h, wd], [o, cg, kh, kw]) = (xs, ws);
    let og = o / p.groups;
    let (oh, ow) = (h + 2 * p.padding[0] + 1 - kh, wd + 2 * p.padding[1] + 1 - kw);
    let z = |len| vec![0.0; len];
    let mut r = Reference {
        y: z(n * o * oh * ow),
        y_abs: z(n * o * oh * ow),
        dx: z(x.len()),
        dx_abs: z(x.len()),
        dw: z(w.len()),
        dw_abs: z(w.len()),
    };
    for b in 0..n {
        for oc in 0..o {
            let gi = oc / og;
            for y in 0..oh {
                for xx in 0..ow {
                    let yi = ((b * o + oc) * oh + y) * ow + xx;
                    for ci in 0..cg {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let ih = (y + ki) as isize - p.padding[0] as isize;
                                let iw = (xx + kj) as isize - p.padding[1] as isize;
                                if ih < 0 || iw < 0 || ih as usize >= h || iw as usize >= wd {
                                    continue;
                                }
                                let xi = ((b * c + gi * cg + ci) * h + ih as usize) * wd + iw as usize;
                                let wi = ((oc * cg + ci) * kh + ki) * kw + kj;
                                r.y[yi] += x[xi] * w[wi];
                                r.y_abs[yi] += (x[xi] * w[wi]).abs();
                                r.dx[xi] += gy[yi] * w[wi];
                                r.dx_abs[xi] += (gy[yi] * w[wi]).abs();
                                r.dw[wi] += gy[yi] * x[xi];
                                r.dw_abs[wi] += (gy[yi] * x[xi]).abs();
                            }
                        }
                    }
                }
            }
        }
    }
    r
}

/// The largest error of `got` in units of `ε_f32 · S` (see the module doc), after checking it
/// against `bound` such units.
fn check(got: &Array, want: &[f64], scale: &[f64], (what, bound): (&str, f64), case: &Case) -> f64 {
    let got = got.to_vec::<f64>();
    assert_eq!(got.len(), want.len(), "{what}: lengths differ ({case:?})");
    let unit = f32::EPSILON as f64 * scale.iter().fold(0.0f64, |m, &s| m.max(s));
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let e = (g - w).abs() / unit;
        assert!(
            e <= bound,
            "{what}: element {i}: got {g}, want {w} ({e:.1} > {bound} units of {unit:e}) {case:?}"
        );
        worst = worst.max(e);
    }
    worst
}

#[derive(Clone, Debug)]
struct Case {
    x: [usize; 4],
    w: [usize; 4],
    p: Conv2dOptions,
    seed: u64,
}

/// 3×3 stride-1 convolutions, 8–12 channels per group on both sides (the Winograd range), odd
/// and even sizes from a single output row or column to 18 (1 to 5 tile rows and columns,
/// up to 30 tile slots: every way the SIMD blocks of 16 and 8 tiles split a plane).
fn winograd_case() -> impl Strategy<Value = Case> {
    (
        1usize..=5,
        1usize..=2,
        8usize..=12,
        8usize..=12,
        0usize..=2,
        0usize..=2,
        1usize..=18,
        1usize..=18,
        any::<u64>(),
    )
        .prop_map(|(n, g, cg, og, ph, pw, eh, ew, seed)| {
            let h = (2 + eh).saturating_sub(2 * ph).max(1);
            let w = (2 + ew).saturating_sub(2 * pw).max(1);
            let p = Conv2dOptions { padding: [ph, pw], groups: g, ..Default::default() };
            Case { x: [n, g * cg, h, w], w: [g * og, cg, 3, 3], p, seed }
        })
        .prop_filter("kernel fits", |c| c.x[2] + 2 * c.p.padding[0] >= 3 && c.x[3] + 2 * c.p.padding[1] >= 3)
}

/// Error bounds in units of `ε_f32 · S`: F(2×2, 3×3) within 8, F(4×4, 3×3) within 32
/// (measured worst: about 1 and 11).
const BOUND_F23: f64 = 8.0;
const BOUND_F43: f64 = 32.0;

/// Run one case with both tiles; returns the worst errors (forward, input gradient and weight
/// gradient with F(4×4, 3×3), then the same with F(2×2, 3×3)) in units of `ε_f32 · S`.
fn run_case(c: &Case) -> [f64; 6] {
    let xv = rand_vec(c.seed, c.x.iter().product());
    let wv = rand_vec(c.seed ^ 1, c.w.iter().product());
    let (oh, ow) = (c.x[2] + 2 * c.p.padding[0] - 2, c.x[3] + 2 * c.p.padding[1] - 2);
    let ys = [c.x[0], c.w[0], oh + 3 - c.w[2], ow + 3 - c.w[3]];
    let gv = rand_vec(c.seed ^ 2, ys.iter().product());
    let r = reference(&xv, c.x, &wv, c.w, &gv, &c.p);
    let f32_arr = |v: &[f64], s: &[usize]| Array::from_slice(v, s).cast(DType::F32);
    let (x, w, gy) = (f32_arr(&xv, &c.x), f32_arr(&wv, &c.w), f32_arr(&gv, &ys));
    let mut worst = [0.0; 6];
    for (m, bound) in [(4, BOUND_F43), (2, BOUND_F23)] {
        let (y, dx, dw) = with_winograd_tile(m, || {
            (
                x.conv2d(&w, &c.p),
                Array::conv2d_input_grad(&gy, &w, &c.x, &c.p),
                Array::conv2d_weight_grad(&x, &gy, &c.w, &c.p),
            )
        });
        assert_eq!(y.shape(), &ys[..], "{c:?}");
        let at = if m == 4 { 0 } else { 3 };
        worst[at] = check(&y, &r.y, &r.y_abs, ("forward", bound), c);
        worst[at + 1] = check(&dx, &r.dx, &r.dx_abs, ("input grad", bound), c);
        worst[at + 2] = check(&dw, &r.dw, &r.dw_abs, ("weight grad", bound), c);
    }
    worst
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn winograd_matches_naive(c in winograd_case()) {
        run_case(&c);
    }
}

/// The shapes of the W3 workload's second layer and the benchmark's layer, and a batch whose
/// last block of images is shorter than the others (7 images of 20 tiles: blocks of 6 and 1),
/// once each (the random cases are smaller than a tile row of these). Prints the worst errors.
#[test]
fn winograd_matches_naive_on_benchmark_shapes() {
    for (x, w) in [
        ([2, 32, 14, 14], [64, 32, 3, 3]),
        ([1, 32, 28, 28], [64, 32, 3, 3]),
        ([7, 16, 14, 14], [8, 16, 3, 3]),
    ] {
        let p = Conv2dOptions { padding: [1, 1], ..Default::default() };
        let e = run_case(&Case { x, w, p, seed: 7 });
        println!(
            "{x:?} * {w:?}: worst error in units of eps*S: F(4x4,3x3) forward {:.1}, input grad {:.1}, \
             weight grad {:.1}; F(2x2,3x3) forward {:.1}, input grad {:.1}, weight grad {:.1}",
            e[0], e[1], e[2], e[3], e[4], e[5]
        );
    }
}

/// Naive 2×2 stride-2 max pooling of `[n·c, h, w]` planes: value and flat index, the first NaN
/// in row-major window order winning, else the first maximum.
fn naive_max_2x2(x: &[f64], planes: usize, h: usize, w: usize) -> (Vec<f64>, Vec<i64>) {
    let (oh, ow) = (h / 2, w / 2);
    let (mut vals, mut idx) = (vec![], vec![]);
    for p in 0..planes {
        for i in 0..oh {
            for j in 0..ow {
                let window = [(2 * i, 2 * j), (2 * i, 2 * j + 1), (2 * i + 1, 2 * j), (2 * i + 1, 2 * j + 1)];
                let flat: Vec<usize> = window.iter().map(|&(r, c)| r * w + c).collect();
                let at = flat.iter().copied().find(|&k| x[p * h * w + k].is_nan()).unwrap_or_else(|| {
                    let mut best = flat[0];
                    for &k in &flat[1..] {
                        if x[p * h * w + k] > x[p * h * w + best] {
                            best = k;
                        }
                    }
                    best
                });
                vals.push(x[p * h * w + at]);
                idx.push(at as i64);
            }
        }
    }
    (vals, idx)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The 2×2 fast path of max pooling, with many ties and NaNs (values from {−1, 0, 1, NaN}),
    /// odd sizes (the last row/column dropped), rows of outputs both shorter and longer than the
    /// vectorised loop's minimum (8), in f32 and f64.
    #[test]
    fn max_pool_2x2_matches_naive_with_ties_and_nans(
        n in 1usize..=3, c in 1usize..=3, h in 2usize..=9, w in 2usize..=35, seed in any::<u64>()
    ) {
        let x: Vec<f64> = rand_vec(seed, n * c * h * w)
            .into_iter()
            .map(|v| match ((v + 1.0) * 4.0) as usize {
                0 => f64::NAN,
                1 | 2 => -1.0,
                3 | 4 => 0.0,
                _ => 1.0,
            })
            .collect();
        let (want, want_idx) = naive_max_2x2(&x, n * c, h, w);
        let p = adjoint_tensor::ops::pool::Pool2dOptions::new([2, 2]);
        for dt in [DType::F64, DType::F32] {
            let (y, idx) = Array::from_slice(&x, &[n, c, h, w]).cast(dt).max_pool2d_with_indices(&p);
            prop_assert_eq!(y.shape(), &[n, c, h / 2, w / 2]);
            let got = y.to_vec::<f64>();
            for (g, e) in got.iter().zip(&want) {
                prop_assert!(g == e || (g.is_nan() && e.is_nan()), "{dt:?}: got {g}, want {e}");
            }
            prop_assert_eq!(idx.to_vec::<i64>(), want_idx.clone());
        }
    }
}
