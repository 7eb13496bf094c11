//! `adjoint demo imaging`: nuclei segmentation with a pipeline whose first stage is classical,
//! interpretable filtering with learnable parameters, followed by a small CNN, trained end to
//! end; and a quick CNN on the 8×8 digits.
//!
//! Stage 1 (every parameter has a meaning): a Gaussian blur of learnable scale σ_g, a
//! scale-normalised Laplacian-of-Gaussian of learnable scale σ_l (blob detector), and a soft
//! threshold `sigmoid((blur − t) / T)` with learnable level `t` and temperature `T`. Their
//! kernels are built from the parameters with ordinary tensor ops each step, so gradients flow
//! into σ_g, σ_l, t and T. Stage 2: three convolutions on [image, blur, −LoG, soft mask].
//! The models, training loop and scores are in [`seg`]; the digits CNN in [`digits`].
//!
//! The image is a single 512×512 field of view cut into 64 tiles of 64×64. Validation is a
//! **contiguous held-out region**, the bottom quarter of the image (the last two rows of tiles),
//! so no validation tile has a training tile as a neighbour on more than one side. The
//! evidence for the design, each trained with `seeds` seeds (reported as mean and sample
//! standard deviation):
//! - `pipeline`: filters + CNN trained end to end;
//! - `pipeline_frozen_filters`: the same with the filters frozen at their initial values (only
//!   the head trains), which isolates what learning the filters adds;
//! - `cnn_alone`: a CNN on the raw image with the pipeline's receptive field (19×19 pixels;
//!   [`seg::RECEPTIVE_FIELD`]), which isolates what the classical stage adds;
//! - and Otsu's threshold after a Gaussian blur (σ = 2), deterministic.
//!
//! The checkpoint, the overlay picture, the learned filters and the evaluation record are the
//! pipeline of the first seed (`--seed`).

mod digits;
pub mod seg;

use std::collections::BTreeMap;
use std::path::Path;

use adjoint_core::Tensor;
use adjoint_nn::train::{Chart, Series};
use adjoint_tensor::random::Key;
use serde::Serialize;
use serde_json::json;

use super::common::{self, metrics, Common, DemoError, MetricsLog, Outcome, RunDir};
use seg::{confusion, dice_iou, tiles, train_segmenter, CnnAlone, Filters, Head, Pipeline, RECEPTIVE_FIELD};

/// Side of a tile, pixels.
pub const TILE: usize = 64;

/// Settings of the imaging demo (saved as `config.json`).
#[derive(Clone, Debug, Serialize)]
pub struct ImagingConfig {
    /// Epochs over the training tiles (segmentation, each method and seed).
    pub epochs: usize,
    /// Adam learning rate (segmentation).
    pub lr: f64,
    /// Tiles per batch.
    pub batch: usize,
    /// CNN width.
    pub width: usize,
    /// Epochs of the digits CNN.
    pub digits_epochs: usize,
    /// Seeds per segmentation method: `seed`, `seed + 1`, ….
    pub seeds: usize,
    /// Seed.
    pub seed: u64,
}

impl ImagingConfig {
    /// The defaults, adjusted by the common flags.
    pub fn from_common(c: &Common) -> ImagingConfig {
        let mut cfg = ImagingConfig {
            epochs: 30,
            lr: 1e-2,
            batch: 8,
            width: 16,
            digits_epochs: 30,
            seeds: 3,
            seed: c.seed,
        };
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

/// The outcome of the demo, as printed and saved.
#[derive(Clone, Debug, Serialize)]
pub struct ImagingReport {
    /// Method (`otsu`, `pipeline`, `pipeline_frozen_filters`, `cnn_alone`) → `dice_mean`,
    /// `dice_std`, `iou_mean`, `iou_std` over the seeds (sample standard deviation; 0 for one
    /// seed and for the deterministic Otsu), `seeds`, `receptive_field_px`.
    pub methods: BTreeMap<String, BTreeMap<String, f64>>,
    /// Method → `[seed, dice, iou]` of each seed.
    pub per_seed: BTreeMap<String, Vec<[f64; 3]>>,
    /// Learned filter parameters of each seed's pipeline.
    pub filters: Vec<serde_json::Value>,
    /// Validation: the tile rows held out, and the tile counts.
    pub validation: serde_json::Value,
    /// Digits CNN test accuracy.
    pub digits_test_accuracy: f64,
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

/// Mean and sample standard deviation (0 for fewer than two values).
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, 0.0);
    }
    (m, (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
}

/// The segmentation methods trained per seed, in report order.
const METHODS: [(&str, &str); 3] = [
    ("pipeline", "learnable filters + CNN (end to end)"),
    ("pipeline_frozen_filters", "filters frozen at initial values + CNN"),
    ("cnn_alone", "CNN alone (raw image, same receptive field)"),
];

/// Run the demo.
pub fn run(common: &Common) -> Result<Outcome, DemoError> {
    let cfg = ImagingConfig::from_common(common);
    let [img_file, mask_file, digits_file] = data_files();
    let (w, h, img) = read_pgm(&img_file)?;
    let (mw, mh, mask) = read_pgm(&mask_file)?;
    if (w, h) != (mw, mh) || w % TILE != 0 || h % (4 * TILE) != 0 {
        return Err(format!(
            "image {w}×{h} and mask {mw}×{mh} must agree, divide into {TILE}-pixel tiles and have a multiple of 4 rows of tiles"
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
    let rows = h / TILE;
    let grid: Vec<(usize, usize)> = (0..rows).flat_map(|y| (0..w / TILE).map(move |x| (y, x))).collect();
    // The bottom quarter of the image, contiguous, is held out.
    let first_val_row = rows - rows / 4;
    let (val_idx, train_idx): (Vec<_>, Vec<_>) = grid.iter().partition(|(y, _)| *y >= first_val_row);
    let (xt, yt) = (tiles(&img, w, &train_idx), tiles(&fg, w, &train_idx));
    let (xv, yv) = (tiles(&img, w, &val_idx), tiles(&fg, w, &val_idx));
    let fg_share = |y: &Tensor| y.mean().item();

    // Classical baseline: Otsu on the Gaussian-blurred training tiles.
    let sigma2 = Tensor::from_vec(vec![2.0f32.ln()], &[1]);
    let thr = seg::otsu(&Filters::blur(&xt, &sigma2).to_vec::<f32>());
    let otsu_scores = dice_iou(confusion(&(Filters::blur(&xv, &sigma2) - thr as f64), &yv));

    // The frozen filters' features do not change: computed once.
    let frozen = Filters::new();
    let (ft, fv) = (frozen.forward(&xt), frozen.forward(&xv));
    let mut per_seed: BTreeMap<String, Vec<[f64; 3]>> = BTreeMap::new();
    let mut filters = Vec::new();
    let mut first: Option<(Pipeline, Vec<(f64, f64)>)> = None;
    let mut curves = Vec::new();
    for s in 0..cfg.seeds {
        let seed = cfg.seed.wrapping_add(s as u64);
        let key = Key::new(seed);
        let tag = |m: &str| if cfg.seeds > 1 { format!("{m} s{s}") } else { m.to_string() };
        let mut score = |method: &str, logits: &Tensor| {
            let (d, iou) = dice_iou(confusion(logits, &yv));
            per_seed.entry(method.to_string()).or_default().push([seed as f64, d, iou]);
        };
        let pipe = Pipeline { filters: Filters::new(), head: Head::new(&key.fold_in(1), 4, cfg.width) };
        let data = (&xt, &yt);
        let shuffle = key.fold_in(2);
        let (pipe, c_pipe) = train_segmenter(
            &tag("pipeline"),
            pipe,
            |m: &Pipeline, x: &Tensor| m.forward(x),
            data,
            &cfg,
            common,
            &mut log,
            &shuffle,
        )?;
        score("pipeline", &pipe.forward(&xv));
        filters.push(pipe.filters.values());
        let head = Head::new(&key.fold_in(1), 4, cfg.width);
        let (head, c_frozen) = train_segmenter(
            &tag("frozen"),
            head,
            |m: &Head, f: &Tensor| m.forward(f),
            (&ft, &yt),
            &cfg,
            common,
            &mut log,
            &shuffle,
        )?;
        score("pipeline_frozen_filters", &head.forward(&fv));
        let cnn = CnnAlone::new(&key.fold_in(1), cfg.width);
        let (cnn, c_cnn) = train_segmenter(
            &tag("cnn"),
            cnn,
            |m: &CnnAlone, x: &Tensor| m.forward(x),
            data,
            &cfg,
            common,
            &mut log,
            &shuffle,
        )?;
        score("cnn_alone", &cnn.forward(&xv));
        if first.is_none() {
            curves = vec![c_pipe.clone(), c_frozen, c_cnn];
            first = Some((pipe, c_pipe));
        }
    }
    let (pipeline, curve_pipe) = first.ok_or_else(|| "imaging: at least one seed".to_string())?;
    let pipe_logits = pipeline.forward(&xv);

    // Digits: a small CNN, 80/20 split.
    let (acc, mut digits_eval) =
        digits::digits(&digits_file, &cfg, common, &mut log, &Key::new(cfg.seed).fold_in(3), &dir)?;
    log.finish()?;

    let mut methods = BTreeMap::new();
    let summary_of = |dice: (f64, f64), iou: (f64, f64), n: usize, rf: usize| {
        metrics([
            ("dice_mean", dice.0),
            ("dice_std", dice.1),
            ("iou_mean", iou.0),
            ("iou_std", iou.1),
            ("seeds", n as f64),
            ("receptive_field_px", rf as f64),
        ])
    };
    methods.insert(
        "otsu".to_string(),
        summary_of((otsu_scores.0, 0.0), (otsu_scores.1, 0.0), 1, 2 * seg::RADIUS + 1),
    );
    for (m, _) in METHODS {
        let runs = &per_seed[m];
        let d: Vec<f64> = runs.iter().map(|r| r[1]).collect();
        let i: Vec<f64> = runs.iter().map(|r| r[2]).collect();
        methods.insert(m.to_string(), summary_of(mean_std(&d), mean_std(&i), runs.len(), RECEPTIVE_FIELD));
    }
    let validation = json!({
        "held_out": format!("contiguous bottom quarter: tile rows {first_val_row}..{rows} of {rows}"),
        "validation_tiles": val_idx.len(),
        "training_tiles": train_idx.len(),
        "validation_foreground_share": fg_share(&yv),
        "training_foreground_share": fg_share(&yt),
    });
    let report = ImagingReport { methods, per_seed, filters, validation, digits_test_accuracy: acc };
    let pm = |v: &BTreeMap<String, f64>, k: &str| {
        format!("{:.4} ± {:.4}", v[&format!("{k}_mean")], v[&format!("{k}_std")])
    };
    let mut rows_md = vec![{
        let o = &report.methods["otsu"];
        vec![
            "Otsu threshold after Gaussian blur (σ=2)".to_string(),
            pm(o, "dice"),
            pm(o, "iou"),
            "13×13 (blur kernel)".into(),
            "1 (deterministic)".into(),
        ]
    }];
    for (m, label) in METHODS {
        let r = &report.methods[m];
        rows_md.push(vec![
            label.to_string(),
            pm(r, "dice"),
            pm(r, "iou"),
            format!("{RECEPTIVE_FIELD}×{RECEPTIVE_FIELD}"),
            format!("{}", cfg.seeds),
        ]);
    }
    let table = common::table(
        &["method", "Dice (mean ± std)", "IoU (mean ± std)", "receptive field", "seeds"],
        &rows_md,
    );
    let summary = format!(
        "Nuclei segmentation of the single 512×512 image: trained on {} 64×64 tiles (the top three \
         quarters), validated on the {} tiles of the contiguous bottom quarter (foreground {:.1}% of \
         validation pixels, {:.1}% of training pixels). {} epochs per training; mean and sample \
         standard deviation over seeds {}..{}.\n\n{table}\n\
         Receptive fields: the pipeline sees 19×19 pixels (13×13 filter kernels, then the head's 3×3 \
         and 3×3 dilation-2 convolutions); the CNN alone sees 19×19 too (3×3 convolutions with \
         dilations 1, 2, 4, 2).\n\nLearned filters (seed {}): {}\n\nDigits 8×8 CNN: test accuracy {:.2}%\n",
        train_idx.len(),
        val_idx.len(),
        100.0 * fg_share(&yv),
        100.0 * fg_share(&yt),
        cfg.epochs,
        cfg.seed,
        cfg.seed.wrapping_add(cfg.seeds as u64 - 1),
        cfg.seed,
        report.filters[0],
        acc * 100.0
    );
    dir.write("results.md", &summary)?;
    dir.write_json("results.json", &report)?;
    dir.write_json("filters.json", &report.filters[0])?;
    let mut meta = BTreeMap::new();
    meta.insert("demo".to_string(), "imaging".to_string());
    meta.insert("seed".to_string(), cfg.seed.to_string());
    adjoint_nn::checkpoint::save(dir.file("pipeline.safetensors"), &pipeline, &meta)
        .map_err(|e| e.to_string())?;

    // Show the validation tile with the most nuclei.
    let fg_per_tile = yv.sum_axes(&[1, 2, 3], false).to_vec::<f32>();
    let tile = (0..fg_per_tile.len()).max_by(|&a, &b| fg_per_tile[a].total_cmp(&fg_per_tile[b])).unwrap_or(0);
    let n = TILE * TILE;
    seg::overlay_png(
        &dir.file("overlay.png"),
        &xv.narrow(0, tile, 1).to_vec::<f32>(),
        &pipe_logits.narrow(0, tile, 1).to_vec::<f32>()[..n],
        &yv.narrow(0, tile, 1).to_vec::<f32>(),
        TILE,
    )?;
    let mut chart = Chart::new(format!("Segmentation training loss (BCE), seed {}", cfg.seed))
        .x_label("epoch")
        .y_label("loss")
        .log_y(true);
    for ((_, label), c) in METHODS.iter().zip(curves) {
        chart = chart.series(Series::new(*label, c));
    }
    chart.save(dir.file("training_loss")).map_err(|e| e.to_string())?;
    println!("imaging: {summary}");
    println!("imaging: run folder {}", dir.path.display());
    let mut final_metrics = metrics([("digits_test_accuracy", acc)]);
    for (m, r) in &report.methods {
        for k in ["dice_mean", "dice_std", "iou_mean", "iou_std"] {
            final_metrics.insert(format!("{m}_{k}"), r[k]);
        }
    }
    let epochs = curve_pipe.iter().map(|&(e, l)| (e as u64, metrics([("pipeline_loss", l)]))).collect();
    let checkpoints = vec![
        (dir.file("pipeline.safetensors"), "segmentation-pipeline".to_string()),
        (dir.file("digits.safetensors"), "digits-cnn".to_string()),
    ];
    let tiles_of = |idx: &[(usize, usize)]| seg::tile_stats(&img, &mask, w, idx);
    let mut seg_eval = seg::segmentation_evaluation(
        &|x: &Tensor| pipeline.forward(x),
        (&xv, &yv, &pipe_logits),
        (&tiles_of(&train_idx), &tiles_of(&val_idx)),
    );
    let tiles_split = format!("validation tiles: the bottom quarter, tile rows {first_val_row}..{rows}");
    seg_eval.data = vec![
        super::evaluate::data_record(&img_file, &tiles_split)?,
        super::evaluate::data_record(&mask_file, &tiles_split)?,
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
