//! `adjoint demo imaging`: nuclei segmentation with a pipeline whose first stage is classical,
//! interpretable filtering with learnable parameters, followed by a small CNN, trained end to
//! end; and a quick CNN on the 8×8 digits.
//!
//! Stage 1 (every parameter has a meaning): a Gaussian blur of learnable scale σ_g, a
//! scale-normalised Laplacian-of-Gaussian of learnable scale σ_l (blob detector), and a soft
//! threshold `sigmoid((blur − t) / T)` with learnable level `t` and temperature `T`. Their
//! kernels are built from the parameters with ordinary tensor ops each step, so gradients flow
//! into σ_g, σ_l, t and T. Stage 2: three convolutions on [image, blur, −LoG, soft mask].
//!
//! The image is a single 512×512 field of view: it is cut into 64 tiles of 64×64; a fixed
//! quarter of them (a diagonal pattern) is held out for validation. Baselines on the same
//! validation tiles: Otsu's threshold after a Gaussian blur (σ = 2), and the same CNN on the raw
//! image alone.

use std::collections::BTreeMap;
use std::path::Path;

use adjoint_core::{value_and_grad, Params, Tensor};
use adjoint_nn::layers::{Conv2d, Flatten, Linear, MaxPool2d, Module, Relu};
use adjoint_nn::loss::{binary_cross_entropy_with_logits, cross_entropy, CrossEntropy, Reduction};
use adjoint_nn::optim::{Adam, AdamConfig};
use adjoint_nn::train::{Chart, Series};
use adjoint_tensor::random::{self, Key};
use serde::Serialize;
use serde_json::json;

use super::common::{self, metrics, Common, DemoError, MetricsLog, Outcome, RunDir};
use super::parallel::Replica;

const TILE: usize = 64;
const RADIUS: usize = 6;

/// Settings of the imaging demo (saved as `config.json`).
#[derive(Clone, Debug, Serialize)]
pub struct ImagingConfig {
    /// Epochs over the training tiles (segmentation).
    pub epochs: usize,
    /// Adam learning rate (segmentation).
    pub lr: f64,
    /// Tiles per batch.
    pub batch: usize,
    /// CNN width.
    pub width: usize,
    /// Epochs of the digits CNN.
    pub digits_epochs: usize,
    /// Seed.
    pub seed: u64,
}

impl ImagingConfig {
    /// The defaults, adjusted by the common flags.
    pub fn from_common(c: &Common) -> ImagingConfig {
        let mut cfg =
            ImagingConfig { epochs: 60, lr: 1e-2, batch: 8, width: 16, digits_epochs: 30, seed: c.seed };
        if let Some(e) = c.epochs {
            cfg.epochs = e;
        }
        if let Some(lr) = c.lr {
            cfg.lr = lr;
        }
        if c.quick {
            cfg.epochs = 1;
            cfg.digits_epochs = 1;
        }
        cfg
    }
}

/// Read a binary 8-bit PGM (`P5`) as `(width, height, bytes)` with adjoint-nn's reader.
pub fn read_pgm(path: &Path) -> Result<(usize, usize, Vec<u8>), String> {
    let img = adjoint_nn::data::pgm::read_pgm(path).map_err(|e| e.to_string())?;
    if img.maxval > 255 {
        return Err(format!("{}: maxval {} (only 8-bit images are supported)", path.display(), img.maxval));
    }
    Ok((img.width, img.height, img.pixels.iter().map(|&v| v as u8).collect()))
}

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

impl Filters {
    fn new() -> Filters {
        let s = |v: f32| Tensor::from_vec(vec![v], &[1]);
        Filters {
            log_sigma_blur: s(1.0f32.ln()),
            log_sigma_log: s(3.0f32.ln()),
            threshold: s(0.3),
            log_temperature: s(0.1f32.ln()),
        }
    }

    /// Separable Gaussian blur of `x: [N, 1, H, W]` with scale `exp(log_sigma)`.
    fn blur(x: &Tensor, log_sigma: &Tensor) -> Tensor {
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
    fn forward(&self, x: &Tensor) -> Tensor {
        let b = Self::blur(x, &self.log_sigma_blur);
        let l = Self::log(x, &self.log_sigma_log);
        let soft = ((&b - &self.threshold) / self.log_temperature.exp()).sigmoid();
        Tensor::concat(&[x, &b, &-l, &soft], 1)
    }

    fn values(&self) -> serde_json::Value {
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
    fn new(key: &Key, cin: usize, width: usize) -> Head {
        let k = key.split(3);
        Head {
            c1: Conv2d::config(cin, width, [3, 3]).padding([1, 1]).init(&k[0]),
            c2: Conv2d::config(width, width, [3, 3]).padding([2, 2]).dilation([2, 2]).init(&k[1]),
            c3: Conv2d::config(width, 1, [1, 1]).init(&k[2]),
        }
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        self.c3.forward(&self.c2.forward(&self.c1.forward(x).relu()).relu())
    }
}

/// Filters followed by the CNN.
#[derive(Clone, adjoint_derive::Params)]
#[params(crate = adjoint_core)]
pub struct Pipeline {
    filters: Filters,
    head: Head,
}

/// `(TP, FP, FN)` pixel counts of `logits > 0` against `truth` (0/1).
fn confusion(logits: &Tensor, truth: &Tensor) -> (f64, f64, f64) {
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

fn dice_iou((tp, fp, fne): (f64, f64, f64)) -> (f64, f64) {
    (2.0 * tp / (2.0 * tp + fp + fne).max(1.0), tp / (tp + fp + fne).max(1.0))
}

/// Otsu's threshold of values in [0, 1] (256 bins).
fn otsu(values: &[f32]) -> f32 {
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
fn overlay_png(path: &Path, img: &[f32], logits: &[f32], truth: &[f32], size: usize) -> Result<(), String> {
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

/// The outcome of the demo, as printed and saved.
#[derive(Clone, Debug, Serialize)]
pub struct ImagingReport {
    /// Rows: method, Dice, IoU on the validation tiles.
    pub segmentation: Vec<(String, f64, f64)>,
    /// Learned filter parameters.
    pub filters: serde_json::Value,
    /// Digits CNN test accuracy.
    pub digits_test_accuracy: f64,
}

fn tiles(img: &[f32], width: usize, idx: &[(usize, usize)]) -> Tensor {
    let mut v = Vec::with_capacity(idx.len() * TILE * TILE);
    for &(ty, tx) in idx {
        for y in 0..TILE {
            let row = (ty * TILE + y) * width + tx * TILE;
            v.extend_from_slice(&img[row..row + TILE]);
        }
    }
    Tensor::from_vec(v, &[idx.len(), 1, TILE, TILE])
}

#[allow(clippy::too_many_arguments)]
fn train_segmenter<M: Params + Clone>(
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
        // Flip half of the epochs horizontally: the nuclei have no preferred orientation.
        let (xs, ys) = if epoch % 2 == 1 { (xs.flip(3), ys.flip(3)) } else { (xs, ys) };
        let mut total = 0.0;
        for s in 0..steps {
            let len = cfg.batch.min(n - s * cfg.batch);
            let (xb, yb) = (xs.narrow(0, s * cfg.batch, len), ys.narrow(0, s * cfg.batch, len));
            // Distributed: this rank's rows of the batch (all of them otherwise).
            let (xb, yb) = (par.shard(&xb), par.shard(&yb));
            let (loss, g) = value_and_grad(|m: &M| {
                binary_cross_entropy_with_logits(&forward(m, &xb), &yb, None, Reduction::Mean)
            })(replica.model());
            let loss = par.mean(loss.item(), len)?;
            common::check_finite(name, epoch * steps + s, loss)?;
            replica.step(par, &g, len, |g| g)?;
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

/// The configuration this demo runs with, as recorded.
pub fn config(common: &Common) -> serde_json::Value {
    json!(ImagingConfig::from_common(common))
}

/// The data files the demo reads: image, instance mask, digits (the registry's data access
/// policy is checked on them before a run is recorded).
pub fn data_files() -> [std::path::PathBuf; 3] {
    let data = common::data_dir();
    [
        data.join("imaging_nuclei_dsb2018_512x512.pgm"),
        data.join("imaging_nuclei_dsb2018_instances_512x512.pgm"),
        data.join("imaging_digits_8x8.csv"),
    ]
}

/// Run the demo.
pub fn run(common: &Common) -> Result<Outcome, DemoError> {
    let cfg = ImagingConfig::from_common(common);
    let [img_file, mask_file, digits_file] = data_files();
    let (w, h, img) = read_pgm(&img_file)?;
    let (mw, mh, mask) = read_pgm(&mask_file)?;
    if (w, h) != (mw, mh) || w % TILE != 0 || h % TILE != 0 {
        return Err(format!(
            "image {w}×{h} and mask {mw}×{mh} must agree and divide into {TILE}-pixel tiles"
        )
        .into());
    }
    let dir = RunDir::create(&common.out, "imaging")?;
    dir.write_json(
        "config.json",
        &json!({ "demo": "imaging", "config": cfg, "data": [img_file, mask_file, digits_file] }),
    )?;
    let mut log = MetricsLog::create(&dir)?;
    let img: Vec<f32> = img.iter().map(|&b| b as f32 / 255.0).collect();
    let fg: Vec<f32> = mask.iter().map(|&b| f32::from(b > 0)).collect();
    let grid: Vec<(usize, usize)> = (0..h / TILE).flat_map(|y| (0..w / TILE).map(move |x| (y, x))).collect();
    let (val_idx, train_idx): (Vec<_>, Vec<_>) = grid.iter().partition(|(y, x)| (y + x) % 4 == 0);
    let (xt, yt) = (tiles(&img, w, &train_idx), tiles(&fg, w, &train_idx));
    let (xv, yv) = (tiles(&img, w, &val_idx), tiles(&fg, w, &val_idx));
    let key = Key::new(cfg.seed);

    // Classical baseline: Otsu on the Gaussian-blurred training tiles.
    let sigma2 = Tensor::from_vec(vec![2.0f32.ln()], &[1]);
    let thr = otsu(&Filters::blur(&xt, &sigma2).to_vec::<f32>());
    let otsu_logits = Filters::blur(&xv, &sigma2) - thr as f64;
    let otsu_scores = dice_iou(confusion(&otsu_logits, &yv));

    let pipeline = Pipeline { filters: Filters::new(), head: Head::new(&key.fold_in(1), 4, cfg.width) };
    let fwd_pipe = |m: &Pipeline, x: &Tensor| m.head.forward(&m.filters.forward(x));
    let (pipeline, curve_pipe) =
        train_segmenter("pipeline", pipeline, fwd_pipe, (&xt, &yt), &cfg, common, &mut log, &key.fold_in(2))?;
    let cnn = Head::new(&key.fold_in(1), 1, cfg.width);
    let fwd_cnn = |m: &Head, x: &Tensor| m.forward(x);
    let (cnn, curve_cnn) =
        train_segmenter("cnn", cnn, fwd_cnn, (&xt, &yt), &cfg, common, &mut log, &key.fold_in(2))?;
    let curve_pipe_epochs = curve_pipe.clone();
    let pipe_logits = fwd_pipe(&pipeline, &xv);
    let pipe_scores = dice_iou(confusion(&pipe_logits, &yv));
    let cnn_scores = dice_iou(confusion(&cnn.forward(&xv), &yv));

    // Digits: a small CNN, 80/20 split.
    let (acc, mut digits_eval) = digits(&digits_file, &cfg, common, &mut log, &key.fold_in(3), &dir)?;
    log.finish()?;

    let report = ImagingReport {
        segmentation: vec![
            ("Otsu threshold after Gaussian blur (σ=2)".into(), otsu_scores.0, otsu_scores.1),
            ("CNN alone (raw image)".into(), cnn_scores.0, cnn_scores.1),
            ("learnable filters + CNN (end to end)".into(), pipe_scores.0, pipe_scores.1),
        ],
        filters: pipeline.filters.values(),
        digits_test_accuracy: acc,
    };
    let table = common::table(
        &["method", "Dice", "IoU"],
        &report
            .segmentation
            .iter()
            .map(|r| vec![r.0.clone(), format!("{:.4}", r.1), format!("{:.4}", r.2)])
            .collect::<Vec<_>>(),
    );
    let summary = format!(
        "Nuclei segmentation, {} held-out 64×64 tiles of the single 512×512 image ({} training tiles)\n\n{table}\nLearned filters: {}\n\nDigits 8×8 CNN: test accuracy {:.2}%\n",
        val_idx.len(),
        train_idx.len(),
        report.filters,
        acc * 100.0
    );
    dir.write("results.md", &summary)?;
    dir.write_json("results.json", &report)?;
    dir.write_json("filters.json", &report.filters)?;
    let mut meta = BTreeMap::new();
    meta.insert("demo".to_string(), "imaging".to_string());
    meta.insert("seed".to_string(), cfg.seed.to_string());
    adjoint_nn::checkpoint::save(dir.file("pipeline.safetensors"), &pipeline, &meta)
        .map_err(|e| e.to_string())?;

    // Show the validation tile with the most nuclei.
    let fg_per_tile = yv.sum_axes(&[1, 2, 3], false).to_vec::<f32>();
    let tile = (0..fg_per_tile.len()).max_by(|&a, &b| fg_per_tile[a].total_cmp(&fg_per_tile[b])).unwrap_or(0);
    let n = TILE * TILE;
    overlay_png(
        &dir.file("overlay.png"),
        &xv.narrow(0, tile, 1).to_vec::<f32>(),
        &pipe_logits.narrow(0, tile, 1).to_vec::<f32>()[..n],
        &yv.narrow(0, tile, 1).to_vec::<f32>(),
        TILE,
    )?;
    Chart::new("Segmentation training loss (BCE)")
        .x_label("epoch")
        .y_label("loss")
        .log_y(true)
        .series(Series::new("filters + CNN", curve_pipe))
        .series(Series::new("CNN alone", curve_cnn))
        .save(dir.file("training_loss"))
        .map_err(|e| e.to_string())?;
    println!("imaging: {summary}");
    println!("imaging: run folder {}", dir.path.display());
    let s = &report.segmentation;
    let final_metrics = metrics([
        ("otsu_dice", s[0].1),
        ("otsu_iou", s[0].2),
        ("cnn_dice", s[1].1),
        ("cnn_iou", s[1].2),
        ("pipeline_dice", s[2].1),
        ("pipeline_iou", s[2].2),
        ("digits_test_accuracy", acc),
    ]);
    let epochs =
        curve_pipe_epochs.iter().map(|&(e, l)| (e as u64, metrics([("pipeline_loss", l)]))).collect();
    let checkpoints = vec![
        (dir.file("pipeline.safetensors"), "segmentation-pipeline".to_string()),
        (dir.file("digits.safetensors"), "digits-cnn".to_string()),
    ];
    let tiles_of = |idx: &[(usize, usize)]| tile_stats(&img, &mask, w, idx);
    let mut seg_eval = segmentation_evaluation(
        &|x: &Tensor| fwd_pipe(&pipeline, x),
        (&xv, &yv, &pipe_logits),
        (&tiles_of(&train_idx), &tiles_of(&val_idx)),
    );
    let tiles_split = "validation tiles: (row + column) % 4 == 0";
    seg_eval.data = vec![
        super::evaluate::data_record(&img_file, tiles_split)?,
        super::evaluate::data_record(&mask_file, tiles_split)?,
    ];
    digits_eval.data =
        vec![super::evaluate::data_record(&digits_file, "test split: first 20% of a seeded permutation")?];
    Ok(Outcome {
        dir,
        data_files: vec![img_file, mask_file, digits_file],
        epochs,
        final_metrics,
        checkpoints,
        evaluations: vec![("segmentation-pipeline".into(), seg_eval), ("digits-cnn".into(), digits_eval)],
    })
}

/// `(mean intensity, mean nucleus area in pixels (0 without nuclei))` of a tile.
type TileStats = (f64, f64);

/// The [`TileStats`] of each tile.
fn tile_stats(img: &[f32], mask: &[u8], width: usize, idx: &[(usize, usize)]) -> Vec<TileStats> {
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
fn segmentation_evaluation(
    forward: &dyn Fn(&Tensor) -> Tensor,
    (xv, yv, logits): (&Tensor, &Tensor, &Tensor),
    (train, val): (&[TileStats], &[TileStats]),
) -> adjoint_store::Evaluation {
    use super::evaluate::{band, mean_slices, reliability, tertiles};
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

/// Read the digits CSV (`p0..p63,label`) as `[N, 1, 8, 8]` in [0, 1] and labels.
pub fn read_digits(path: &Path) -> Result<(Tensor, Vec<i64>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut px = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 65 {
            return Err(format!("{}:{}: {} fields, expected 65", path.display(), i + 1, f.len()));
        }
        for (j, v) in f.iter().enumerate() {
            let x: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{}:{}:{}: `{v}` is not a number", path.display(), i + 1, j + 1))?;
            if j < 64 {
                px.push((x / 16.0) as f32);
            } else if (0.0..10.0).contains(&x) && x.fract() == 0.0 {
                labels.push(x as i64);
            } else {
                return Err(format!("{}:{}:65: label `{v}` is not a digit", path.display(), i + 1));
            }
        }
    }
    let n = labels.len();
    Ok((Tensor::from_vec(px, &[n, 1, 8, 8]), labels))
}

fn digits(
    path: &Path,
    cfg: &ImagingConfig,
    common: &Common,
    log: &mut MetricsLog,
    key: &Key,
    dir: &RunDir,
) -> Result<(f64, adjoint_store::Evaluation), DemoError> {
    let (x, y) = read_digits(path)?;
    let n = y.len();
    let perm: Vec<usize> =
        random::permutation(&key.fold_in(0), n).to_vec::<i64>().iter().map(|&i| i as usize).collect();
    let n_test = n / 5;
    let pick = |ids: &[usize]| {
        let idx = Tensor::from_vec(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), &[ids.len()]);
        (
            x.index_select(0, &idx),
            Tensor::from_vec(ids.iter().map(|&i| y[i]).collect::<Vec<_>>(), &[ids.len()]),
        )
    };
    let (xte, yte) = pick(&perm[..n_test]);
    let (xtr, ytr) = pick(&perm[n_test..]);
    let k = key.split(4);
    let model = (
        Conv2d::config(1, 16, [3, 3]).padding([1, 1]).init(&k[0]),
        Relu,
        Conv2d::config(16, 32, [3, 3]).padding([1, 1]).init(&k[1]),
        Relu,
        MaxPool2d::new([2, 2]),
        Flatten::default(),
        Linear::new(32 * 16, 64, &k[2]),
        (Relu, Linear::new(64, 10, &k[3])),
    );
    let par = &common.parallel;
    let opt = Adam::new(&model, AdamConfig { lr: 2e-3, ..Default::default() });
    let mut replica = Replica::new(par, model, opt)?;
    let ntr = ytr.shape()[0];
    let batch = 64;
    let steps = ntr.div_ceil(batch);
    let pb = common::progress((cfg.digits_epochs * steps) as u64, "digits", common.quiet);
    let mut curve = Vec::new();
    for epoch in 0..cfg.digits_epochs {
        let perm = Tensor::from_array(random::permutation(&key.fold_in(10 + epoch as u64), ntr));
        let (xs, ys) = (xtr.index_select(0, &perm), ytr.index_select(0, &perm));
        let mut total = 0.0;
        for s in 0..steps {
            let len = batch.min(ntr - s * batch);
            let (xb, yb) = (xs.narrow(0, s * batch, len), ys.narrow(0, s * batch, len));
            let (xb, yb) = (par.shard(&xb), par.shard(&yb));
            let (loss, g) = value_and_grad(|m: &_| {
                cross_entropy(&Module::forward(m, &xb), &yb, &CrossEntropy::default())
            })(replica.model());
            let loss = par.mean(loss.item(), len)?;
            common::check_finite("digits", epoch * steps + s, loss)?;
            replica.step(par, &g, len, |g| g)?;
            total += loss * len as f64;
            pb.inc(1);
        }
        curve.push(((epoch + 1) as f64, total / ntr as f64));
        log.log(json!({"model": "digits", "epoch": epoch + 1, "loss": total / ntr as f64}))?;
    }
    pb.finish_and_clear();
    let model = replica.into_parts().0;
    let pred = Module::forward(&model, &xte).argmax(1, false).to_vec::<i64>();
    let correct = pred.iter().zip(yte.to_vec::<i64>()).filter(|(a, b)| **a == *b).count();
    let mut meta = BTreeMap::new();
    meta.insert("demo".to_string(), "imaging-digits".to_string());
    adjoint_nn::checkpoint::save(dir.file("digits.safetensors"), &model, &meta).map_err(|e| e.to_string())?;
    Chart::new("Digits CNN training loss")
        .x_label("epoch")
        .y_label("cross-entropy")
        .log_y(true)
        .series(Series::new("train", curve))
        .save(dir.file("digits_loss"))
        .map_err(|e| e.to_string())?;
    let acc = correct as f64 / n_test as f64;
    let probs = Module::forward(&model, &xte).softmax(1).cast(adjoint_core::DType::F64).to_vec::<f64>();
    Ok((acc, digits_evaluation(&probs, &yte.to_vec::<i64>(), (&xtr, &xte), acc)))
}

/// The digits CNN's evaluation record: accuracy per digit, a reliability diagram of its
/// confidence, and the drift of each image's mean ink between the training and test images.
fn digits_evaluation(
    probs: &[f64],
    labels: &[i64],
    (xtr, xte): (&Tensor, &Tensor),
    acc: f64,
) -> adjoint_store::Evaluation {
    use super::evaluate::{mean_slices, reliability};
    let mut ev = adjoint_store::Evaluation::new(
        "8×8 digits, test split",
        "accuracy",
        true,
        metrics([("accuracy", acc)]),
    );
    let mut rows = Vec::new();
    let (mut conf, mut hit) = (Vec::new(), Vec::new());
    for (p, &y) in probs.chunks(10).zip(labels) {
        let (k, top) =
            p.iter().enumerate().fold((0, f64::MIN), |a, (i, v)| if *v > a.1 { (i, *v) } else { a });
        rows.push((y.to_string(), vec![f64::from(u8::from(k as i64 == y))]));
        conf.push(top);
        hit.push(k as i64 == y);
    }
    ev.slices = mean_slices("digit", &["accuracy"], &rows);
    ev.calibration = vec![reliability("confidence (top softmax probability)", &conf, &hit, 10)];
    let ink = |x: &Tensor| x.mean_axes(&[1, 2, 3], false).cast(adjoint_core::DType::F64).to_vec::<f64>();
    ev.features =
        vec![adjoint_store::FeatureDistribution::from_samples("mean ink", &ink(xtr), &ink(xte), 10)];
    ev
}
