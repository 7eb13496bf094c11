//! The segmentation models of `adjoint demo imaging` and what they are scored with: the
//! learnable classical filters, the CNN head, the CNN-alone baseline with the pipeline's
//! receptive field, the training loop, Dice/IoU, Otsu's threshold, the overlay picture and
//! the evaluation record.

use std::path::Path;

use adjoint_core::{Params, Tensor};
use adjoint_nn::layers::{Conv2d, Module};
use adjoint_nn::loss::{binary_cross_entropy_with_logits, Reduction};
use adjoint_nn::optim::{Adam, AdamConfig};
use adjoint_tensor::random::{self, Key};
use serde_json::json;

use super::super::common::{self, metrics, Common, DemoError, MetricsLog};
use super::super::parallel::Replica;
use super::{ImagingConfig, TILE};

/// Half-width of the classical filters' kernels (13×13).
pub const RADIUS: usize = 6;

/// Receptive fields (pixels on a side) of the segmenters: the filters' 13×13 kernels followed
/// by the head's 3×3 and dilated 3×3 convolutions (13 + 2 + 4), and the CNN alone's four 3×3
/// convolutions with dilations 1, 2, 4, 2 (1 + 2 + 4 + 8 + 4). Checked by a test.
pub const RECEPTIVE_FIELD: usize = 19;

/// The learnable classical stage.
#[derive(Clone, adjoint_derive::Params)]
#[params(crate = adjoint_core)]
pub struct Filters {
    log_sigma_blur: Tensor,
    log_sigma_log: Tensor,
    threshold: Tensor,
    log_temperature: Tensor,
}

fn offsets() -> Tensor {
    Tensor::from_vec((0..=2 * RADIUS).map(|i| i as f32 - RADIUS as f32).collect(), &[2 * RADIUS + 1])
}

impl Default for Filters {
    fn default() -> Filters {
        Filters::new()
    }
}

impl Filters {
    /// The initial values: σ_blur = 1 px, σ_LoG = 3 px, threshold 0.3, temperature 0.1.
    pub fn new() -> Filters {
        let s = |v: f32| Tensor::from_vec(vec![v], &[1]);
        Filters {
            log_sigma_blur: s(1.0f32.ln()),
            log_sigma_log: s(3.0f32.ln()),
            threshold: s(0.3),
            log_temperature: s(0.1f32.ln()),
        }
    }

    /// Separable Gaussian blur of `x: [N, 1, H, W]` with scale `exp(log_sigma)`.
    pub fn blur(x: &Tensor, log_sigma: &Tensor) -> Tensor {
        let k = 2 * RADIUS + 1;
        let sigma = log_sigma.exp();
        let g = (offsets().square() / (sigma.square() * -2.0)).exp();
        let g = &g / &g.sum();
        let pad = [(0, 0), (0, 0), (RADIUS, RADIUS), (RADIUS, RADIUS)];
        let xp = x.pad_mode(&pad, adjoint_tensor::ops::pad::PadMode::Reflect);
        let p = adjoint_core::Conv2dOptions::default();
        xp.conv2d(&g.reshape(&[1, 1, k, 1]), &p).conv2d(&g.reshape(&[1, 1, 1, k]), &p)
    }

    /// Scale-normalised Laplacian of Gaussian, `σ² ∇²G_σ`, zero-sum kernel.
    fn log(x: &Tensor, log_sigma: &Tensor) -> Tensor {
        let k = 2 * RADIUS + 1;
        let o = offsets();
        let r2 = o.reshape(&[k, 1]).square() + o.reshape(&[1, k]).square();
        let s2 = log_sigma.exp().square();
        let g = (&r2 / &(&s2 * -2.0)).exp();
        let g = &g / &g.sum();
        let lap = &g * &((&r2 - &(&s2 * 2.0)) / &s2);
        let lap = &lap - &lap.mean();
        let pad = [(0, 0), (0, 0), (RADIUS, RADIUS), (RADIUS, RADIUS)];
        let xp = x.pad_mode(&pad, adjoint_tensor::ops::pad::PadMode::Reflect);
        xp.conv2d(&lap.reshape(&[1, 1, k, k]), &adjoint_core::Conv2dOptions::default())
    }

    /// `[N, 1, H, W]` → `[N, 4, H, W]`: image, blur, −LoG, soft mask.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let b = Self::blur(x, &self.log_sigma_blur);
        let l = Self::log(x, &self.log_sigma_log);
        let soft = ((&b - &self.threshold) / self.log_temperature.exp()).sigmoid();
        Tensor::concat(&[x, &b, &-l, &soft], 1)
    }

    /// The parameters in their units (pixels, intensity).
    pub fn values(&self) -> serde_json::Value {
        json!({
            "gaussian_sigma_px": self.log_sigma_blur.exp().item(),
            "log_sigma_px": self.log_sigma_log.exp().item(),
            "threshold": self.threshold.item(),
            "temperature": self.log_temperature.exp().item(),
        })
    }
}

/// The CNN head: three 3×3 convolutions (the middle one dilated) and a 1×1 output.
#[derive(Clone, adjoint_derive::Params)]
#[params(crate = adjoint_core)]
pub struct Head {
    c1: Conv2d,
    c2: Conv2d,
    c3: Conv2d,
}

impl Head {
    /// A head on `cin` input channels.
    pub fn new(key: &Key, cin: usize, width: usize) -> Head {
        let k = key.split(3);
        Head {
            c1: Conv2d::config(cin, width, [3, 3]).padding([1, 1]).init(&k[0]),
            c2: Conv2d::config(width, width, [3, 3]).padding([2, 2]).dilation([2, 2]).init(&k[1]),
            c3: Conv2d::config(width, 1, [1, 1]).init(&k[2]),
        }
    }
    /// `[N, cin, H, W]` → logits `[N, 1, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.c3.forward(&self.c2.forward(&self.c1.forward(x).relu()).relu())
    }
}

/// Filters followed by the CNN.
#[derive(Clone, adjoint_derive::Params)]
#[params(crate = adjoint_core)]
pub struct Pipeline {
    /// The classical stage.
    pub filters: Filters,
    /// The CNN on its four channels.
    pub head: Head,
}

impl Pipeline {
    /// Logits `[N, 1, H, W]` of images `[N, 1, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.head.forward(&self.filters.forward(x))
    }
}

/// The CNN-alone baseline on the raw image, with the pipeline's receptive field
/// ([`RECEPTIVE_FIELD`]): four 3×3 convolutions with dilations 1, 2, 4, 2 and a 1×1 output.
#[derive(Clone, adjoint_derive::Params)]
#[params(crate = adjoint_core)]
pub struct CnnAlone {
    c1: Conv2d,
    c2: Conv2d,
    c3: Conv2d,
    c4: Conv2d,
    out: Conv2d,
}

impl CnnAlone {
    /// The baseline with `width` channels.
    pub fn new(key: &Key, width: usize) -> CnnAlone {
        let k = key.split(5);
        let conv = |k: &Key, cin: usize, d: usize| {
            Conv2d::config(cin, width, [3, 3]).padding([d, d]).dilation([d, d]).init(k)
        };
        CnnAlone {
            c1: conv(&k[0], 1, 1),
            c2: conv(&k[1], width, 2),
            c3: conv(&k[2], width, 4),
            c4: conv(&k[3], width, 2),
            out: Conv2d::config(width, 1, [1, 1]).init(&k[4]),
        }
    }

    /// Logits `[N, 1, H, W]` of images `[N, 1, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let h = [&self.c1, &self.c2, &self.c3, &self.c4].iter().fold(x.clone(), |h, c| c.forward(&h).relu());
        self.out.forward(&h)
    }
}

/// `(TP, FP, FN)` pixel counts of `logits > 0` against `truth` (0/1).
pub fn confusion(logits: &Tensor, truth: &Tensor) -> (f64, f64, f64) {
    let p = logits.to_vec::<f32>();
    let t = truth.to_vec::<f32>();
    let (mut tp, mut fp, mut fne) = (0.0, 0.0, 0.0);
    for (a, b) in p.iter().zip(&t) {
        match (*a > 0.0, *b > 0.5) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fne += 1.0,
            _ => {}
        }
    }
    (tp, fp, fne)
}

/// Dice and IoU of `(TP, FP, FN)`.
pub fn dice_iou((tp, fp, fne): (f64, f64, f64)) -> (f64, f64) {
    (2.0 * tp / (2.0 * tp + fp + fne).max(1.0), tp / (tp + fp + fne).max(1.0))
}

/// Otsu's threshold of values in [0, 1] (256 bins).
pub fn otsu(values: &[f32]) -> f32 {
    let mut hist = [0f64; 256];
    for v in values {
        hist[((v.clamp(0.0, 1.0) * 255.0).round()) as usize] += 1.0;
    }
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, h)| i as f64 * h).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0.0, 0.0, -1.0, 0);
    for (t, h) in hist.iter().enumerate() {
        w0 += h;
        sum0 += t as f64 * h;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let between = w0 * w1 * (sum0 / w0 - (sum_all - sum0) / w1).powi(2);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    (best_t as f32 + 0.5) / 255.0
}

/// Write a side-by-side picture: image | prediction over image (green TP, red FP, blue FN).
pub fn overlay_png(
    path: &Path,
    img: &[f32],
    logits: &[f32],
    truth: &[f32],
    size: usize,
) -> Result<(), String> {
    use plotters::prelude::*;
    let scale = 4;
    let (w, h) = ((2 * size + 4) * scale, size * scale);
    let root = BitMapBackend::new(path, (w as u32, h as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    for y in 0..size {
        for x in 0..size {
            let i = y * size + x;
            let g = (img[i].clamp(0.0, 1.0) * 255.0) as u8;
            let over = match (logits[i] > 0.0, truth[i] > 0.5) {
                (true, true) => RGBColor(40, 200, 60),
                (true, false) => RGBColor(230, 40, 40),
                (false, true) => RGBColor(40, 90, 240),
                _ => RGBColor(g / 2, g / 2, g / 2),
            };
            for (panel, c) in [(0, RGBColor(g, g, g)), (1, over)] {
                let x0 = (panel * (size + 4) + x) * scale;
                let y0 = y * scale;
                root.draw(&Rectangle::new(
                    [(x0 as i32, y0 as i32), ((x0 + scale) as i32, (y0 + scale) as i32)],
                    c.filled(),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
    }
    root.present().map_err(|e| format!("{}: {e}", path.display()))
}

/// The 64×64 tiles `idx` (tile row, tile column) of an image, as `[N, 1, 64, 64]`.
pub fn tiles(img: &[f32], width: usize, idx: &[(usize, usize)]) -> Tensor {
    let mut v = Vec::with_capacity(idx.len() * TILE * TILE);
    for &(ty, tx) in idx {
        for y in 0..TILE {
            let row = (ty * TILE + y) * width + tx * TILE;
            v.extend_from_slice(&img[row..row + TILE]);
        }
    }
    Tensor::from_vec(v, &[idx.len(), 1, TILE, TILE])
}

/// Train a segmenter with Adam on `(images or features, masks)`, horizontally flipping every
/// other epoch (the nuclei have no preferred orientation; the frozen filters' features are
/// flip-equivariant — symmetric kernels, reflect padding, pointwise mask — so flipping them is
/// flipping the image). Returns the model and the mean training loss per epoch.
#[allow(clippy::too_many_arguments)]
pub fn train_segmenter<M: Params + Clone>(
    name: &str,
    model: M,
    forward: impl Fn(&M, &Tensor) -> Tensor,
    data: (&Tensor, &Tensor),
    cfg: &ImagingConfig,
    common: &Common,
    log: &mut MetricsLog,
    key: &Key,
) -> Result<(M, Vec<(f64, f64)>), DemoError> {
    let (x, y) = data;
    let n = x.shape()[0];
    let par = &common.parallel;
    let opt = Adam::new(&model, AdamConfig { lr: cfg.lr, ..Default::default() });
    let mut replica = Replica::new(par, model, opt)?;
    let steps = n.div_ceil(cfg.batch);
    let pb = common::progress((cfg.epochs * steps) as u64, name, common.quiet);
    let mut curve = Vec::new();
    for epoch in 0..cfg.epochs {
        let perm = random::permutation(&key.fold_in(epoch as u64), n);
        let perm = Tensor::from_array(perm);
        let (xs, ys) = (x.index_select(0, &perm), y.index_select(0, &perm));
        let (xs, ys) = if epoch % 2 == 1 { (xs.flip(3), ys.flip(3)) } else { (xs, ys) };
        let mut total = 0.0;
        for s in 0..steps {
            let len = cfg.batch.min(n - s * cfg.batch);
            let (xb, yb) = (xs.narrow(0, s * cfg.batch, len), ys.narrow(0, s * cfg.batch, len));
            // Distributed: this rank's rows of the batch (all of them otherwise).
            let (xb, yb) = (par.shard(&xb), par.shard(&yb));
            let loss = replica.train_step(par, len, (name, epoch * steps + s), |m: &M| {
                binary_cross_entropy_with_logits(&forward(m, &xb), &yb, None, Reduction::Mean)
            })?;
            total += loss * len as f64;
            pb.inc(1);
            pb.set_message(format!("epoch {} loss {:.4}", epoch + 1, loss));
        }
        let mean = total / n as f64;
        curve.push(((epoch + 1) as f64, mean));
        log.log(json!({"model": name, "epoch": epoch + 1, "loss": mean}))?;
    }
    pb.finish_and_clear();
    Ok((replica.into_parts().0, curve))
}

/// `(mean intensity, mean nucleus area in pixels (0 without nuclei))` of a tile.
pub type TileStats = (f64, f64);

/// The [`TileStats`] of each tile.
pub fn tile_stats(img: &[f32], mask: &[u8], width: usize, idx: &[(usize, usize)]) -> Vec<TileStats> {
    idx.iter()
        .map(|&(ty, tx)| {
            let (mut sum, mut fg) = (0.0f64, 0usize);
            let mut ids = std::collections::BTreeSet::new();
            for y in 0..TILE {
                let row = (ty * TILE + y) * width + tx * TILE;
                for i in row..row + TILE {
                    sum += img[i] as f64;
                    if mask[i] > 0 {
                        fg += 1;
                        ids.insert(mask[i]);
                    }
                }
            }
            let size = if ids.is_empty() { 0.0 } else { fg as f64 / ids.len() as f64 };
            (sum / (TILE * TILE) as f64, size)
        })
        .collect()
}

/// The segmentation pipeline's evaluation record: Dice per validation tile sliced by tile
/// intensity band and nucleus size band (tertiles of the training tiles), a per-pixel
/// reliability diagram, drift of tile intensity and nucleus size, and integrated-gradients
/// maps of each validation tile's mean logit.
pub fn segmentation_evaluation(
    forward: &dyn Fn(&Tensor) -> Tensor,
    (xv, yv, logits): (&Tensor, &Tensor, &Tensor),
    (train, val): (&[TileStats], &[TileStats]),
) -> adjoint_store::Evaluation {
    use super::super::evaluate::{band, mean_slices, reliability, tertiles};
    use adjoint_nn::explain::{integrated_gradients, IgOptions, Target};
    let n = xv.shape()[0];
    let dice: Vec<f64> =
        (0..n).map(|i| dice_iou(confusion(&logits.narrow(0, i, 1), &yv.narrow(0, i, 1))).0).collect();
    let (d, iou) = dice_iou(confusion(logits, yv));
    let mut ev = adjoint_store::Evaluation::new(
        "nuclei segmentation, validation tiles (filters + CNN)",
        "dice",
        true,
        metrics([("dice", d), ("iou", iou)]),
    );
    let col =
        |v: &[(f64, f64)], j: usize| v.iter().map(|t| if j == 0 { t.0 } else { t.1 }).collect::<Vec<f64>>();
    let cut_i = tertiles(&col(train, 0));
    let sizes: Vec<f64> = col(train, 1).into_iter().filter(|s| *s > 0.0).collect();
    let cut_s = tertiles(&sizes);
    let by_int: Vec<(String, Vec<f64>)> = val
        .iter()
        .zip(&dice)
        .map(|(t, d)| (band(t.0, cut_i, ["low", "medium", "high"]).to_string(), vec![*d]))
        .collect();
    let by_size: Vec<(String, Vec<f64>)> = val
        .iter()
        .zip(&dice)
        .map(|(t, d)| {
            let b = if t.1 == 0.0 { "none" } else { band(t.1, cut_s, ["small", "medium", "large"]) };
            (b.to_string(), vec![*d])
        })
        .collect();
    ev.slices = mean_slices("intensity", &["dice"], &by_int);
    ev.slices.extend(mean_slices("nucleus_size", &["dice"], &by_size));
    let probs: Vec<f64> = logits.sigmoid().to_vec::<f32>().iter().map(|p| *p as f64).collect();
    let hits: Vec<bool> = yv.to_vec::<f32>().iter().map(|t| *t > 0.5).collect();
    ev.calibration = vec![reliability("per-pixel nucleus probability", &probs, &hits, 10)];
    ev.features = vec![
        adjoint_store::FeatureDistribution::from_samples(
            "tile mean intensity",
            &col(train, 0),
            &col(val, 0),
            4,
        ),
        adjoint_store::FeatureDistribution::from_samples(
            "mean nucleus area (px)",
            &col(train, 1),
            &col(val, 1),
            4,
        ),
    ];
    let f = |x: &Tensor| forward(&x.unsqueeze(0)).mean();
    let ig =
        integrated_gradients(&f, xv, None, Target::Scalar, &IgOptions { steps: 8, ..Default::default() });
    ev.attributions = vec![adjoint_store::Attribution {
        name: "mean logit per pixel, validation tiles".into(),
        method: "integrated-gradients".into(),
        shape: vec![n, TILE, TILE],
        labels: vec![],
        values: ig.attributions.to_vec::<f32>(),
        completeness_error: Some(ig.max_completeness_error()),
    }];
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Side of the square of input pixels that the centre output pixel depends on: the
    /// non-zero support of its gradient with respect to the input.
    fn support(forward: &dyn Fn(&Tensor) -> Tensor) -> usize {
        let n = 41;
        let x = Tensor::from_array(random::uniform(
            &Key::new(3),
            &[1, 1, n, n],
            0.0,
            1.0,
            adjoint_core::DType::F32,
        ));
        let g = adjoint_core::grad(|x: &Tensor| forward(x).narrow(2, n / 2, 1).narrow(3, n / 2, 1).sum())(&x);
        let g = g.to_vec::<f32>();
        let hit: Vec<(usize, usize)> = (0..n * n).filter(|i| g[*i] != 0.0).map(|i| (i / n, i % n)).collect();
        let side = |f: fn(&(usize, usize)) -> usize| {
            hit.iter().map(f).max().unwrap_or(0) - hit.iter().map(f).min().unwrap_or(0) + 1
        };
        assert_eq!(side(|p| p.0), side(|p| p.1));
        side(|p| p.0)
    }

    #[test]
    fn the_pipeline_and_the_cnn_alone_see_the_same_19_by_19_pixels() {
        let key = Key::new(0);
        let pipe = Pipeline { filters: Filters::new(), head: Head::new(&key, 4, 8) };
        assert_eq!(support(&|x| pipe.forward(x)), RECEPTIVE_FIELD);
        let cnn = CnnAlone::new(&key, 8);
        assert_eq!(support(&|x| cnn.forward(x)), RECEPTIVE_FIELD);
        assert_eq!(RECEPTIVE_FIELD, 2 * RADIUS + 1 + 2 + 4);
    }
}
