//! Training: the health-checked step (clipping, statistics, warnings, the non-finite policy
//! both ways), the Trainer (JSONL, early stopping, best checkpoint, plots, online steps) and
//! an end-to-end MLP on the digits data.

use std::path::{Path, PathBuf};

use adjoint_core::{DType, Params, Tensor};
use adjoint_nn::checkpoint;
use adjoint_nn::data::{random_split, read_csv, CsvOptions, DataLoader, Standardizer, TensorDataset};
use adjoint_nn::layers::{Linear, Module, Relu};
use adjoint_nn::loss::{cross_entropy, CrossEntropy};
use adjoint_nn::optim::{Adam, AdamConfig, Sgd, SgdConfig};
use adjoint_nn::train::{
    accuracy, evaluate, train_step, Goal, GradWarning, History, Metrics, NonFinitePolicy, StepConfig, Trainer,
};
use adjoint_nn::NnError;
use adjoint_tensor::random::Key;
use serde_json::Value;

fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("adjoint-nn-train").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sgd<P: Params>(p: &P, lr: f64) -> Sgd {
    Sgd::new(p, SgdConfig { lr, ..Default::default() })
}

#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
struct Two {
    a: Tensor,
    b: Tensor,
}

fn two(a: &[f64], b: &[f64]) -> Two {
    Two { a: Tensor::from_slice(a, &[a.len()]), b: Tensor::from_slice(b, &[b.len()]) }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

// loss = ½‖a‖² + ⟨b, c⟩: ∇a = a, ∇b = c.
fn quad(m: &Two) -> Tensor {
    let c = Tensor::from_vec(vec![0.5f64, -2.0], &[2]);
    (&m.a * &m.a).sum() * 0.5 + (&m.b * &c).sum()
}

// ------------------------------------------------------------------------------ train_step

#[test]
fn step_reports_norms_and_clips_by_global_norm() {
    let m = two(&[3.0, 4.0], &[1.0, 1.0]);
    let mut opt = sgd(&m, 1.0);
    let cfg = StepConfig { clip_grad_norm: Some(1.0), ..Default::default() };
    let out = train_step(&m, &mut opt, 1, &cfg, quad).unwrap();
    let s = &out.stats;
    let global = (25.0f64 + 0.25 + 4.0).sqrt();
    assert!((s.loss - (12.5 - 1.5)).abs() < 1e-12);
    assert!((s.grad_norm - global).abs() < 1e-12);
    assert_eq!(s.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert!((s.params[0].grad_norm - 5.0).abs() < 1e-12);
    assert!((s.params[1].grad_norm - norm(&[0.5, -2.0])).abs() < 1e-12);
    assert!(s.clipped && !s.skipped && s.lr == 1.0);
    // Clipped update: θ - g · 1/(‖g‖ + 1e-6).
    let k = 1.0 / (global + 1e-6);
    let a = out.model.a.to_vec::<f64>();
    assert!((a[0] - (3.0 - 3.0 * k)).abs() < 1e-12 && (a[1] - (4.0 - 4.0 * k)).abs() < 1e-12);
    let b = out.model.b.to_vec::<f64>();
    assert!((b[0] - (1.0 - 0.5 * k)).abs() < 1e-12 && (b[1] - (1.0 + 2.0 * k)).abs() < 1e-12);
    // Under the limit: no clipping.
    let cfg = StepConfig { clip_grad_norm: Some(100.0), ..Default::default() };
    assert!(!train_step(&m, &mut opt, 2, &cfg, quad).unwrap().stats.clipped);
}

#[test]
fn step_reports_update_to_weight_ratios_on_schedule() {
    let m = two(&[3.0, 4.0], &[2.0, 0.0]);
    let mut opt = sgd(&m, 0.1);
    let cfg = StepConfig { param_stats_every: 2, ..Default::default() };
    let s1 = train_step(&m, &mut opt, 1, &cfg, quad).unwrap().stats;
    assert!(!s1.has_param_stats && s1.params[0].update_ratio.is_none());
    let s2 = train_step(&m, &mut opt, 2, &cfg, quad).unwrap().stats;
    assert!(s2.has_param_stats);
    // SGD: ‖Δθ‖ = lr·‖g‖.
    assert!((s2.params[0].weight_norm.unwrap() - 5.0).abs() < 1e-12);
    assert!((s2.params[0].update_ratio.unwrap() - 0.1 * 5.0 / 5.0).abs() < 1e-12);
    assert!((s2.params[1].update_ratio.unwrap() - 0.1 * norm(&[0.5, -2.0]) / 2.0).abs() < 1e-12);
}

#[test]
fn step_warns_about_vanishing_and_exploding_gradients() {
    let m = two(&[1e-9, 0.0], &[0.0, 0.0]);
    let mut opt = sgd(&m, 0.1);
    let cfg =
        StepConfig { vanishing_threshold: Some(1e-6), exploding_threshold: Some(1.0), ..Default::default() };
    let w = train_step(&m, &mut opt, 5, &cfg, quad).unwrap().stats.warnings;
    assert_eq!(w.len(), 2);
    assert!(matches!(&w[0], GradWarning::Vanishing { param, .. } if param == "a"));
    assert!(matches!(&w[1], GradWarning::Exploding { param, .. } if param == "b"));
    assert_eq!(w[0].to_string(), "vanishing gradient: 'a' has gradient norm 1.000e-9 < 1.000e-6");
    assert_eq!(w[1].to_string(), "exploding gradient: 'b' has gradient norm 2.062e0 > 1.000e0");
}

// loss = ½‖a‖² + Σ√b: NaN for b < 0, infinite gradient at b = 0.
fn with_sqrt(m: &Two) -> Tensor {
    (&m.a * &m.a).sum() * 0.5 + m.b.sqrt().sum()
}

#[test]
fn non_finite_stop_names_the_step_and_the_largest_gradient() {
    let m = two(&[1.0, 2.0], &[4.0, -1.0]);
    let mut opt = sgd(&m, 0.1);
    let e = train_step(&m, &mut opt, 7, &StepConfig::default(), with_sqrt).err().unwrap();
    assert!(matches!(&e, NnError::NonFinite { step: 7, what, .. } if what == "loss"));
    assert_eq!(
        e.to_string(),
        "non-finite loss at step 7: loss = NaN; largest gradient: 'b' (norm NaN); non-finite gradients in: b"
    );
    // Finite loss, infinite gradient.
    let m = two(&[1.0, 2.0], &[0.0, 1.0]);
    let e = train_step(&m, &mut opt, 8, &StepConfig::default(), with_sqrt).err().unwrap();
    assert_eq!(
        e.to_string(),
        "non-finite gradient at step 8: loss = 3.5; largest gradient: 'b' (norm inf); non-finite gradients in: b"
    );
    assert_eq!(opt.steps_taken(), 0, "the optimizer never stepped");
}

#[test]
fn non_finite_skip_leaves_parameters_and_optimizer_untouched() {
    let m = two(&[1.0, 2.0], &[4.0, -1.0]);
    let mut opt = sgd(&m, 0.1);
    let cfg = StepConfig { non_finite: NonFinitePolicy::Skip, ..Default::default() };
    let out = train_step(&m, &mut opt, 3, &cfg, with_sqrt).unwrap();
    assert!(out.stats.skipped);
    assert_eq!(out.model.a.to_vec::<f64>(), vec![1.0, 2.0]);
    assert_eq!(out.model.b.to_vec::<f64>(), vec![4.0, -1.0]);
    assert_eq!(opt.steps_taken(), 0);
    assert_eq!(out.stats.warnings.len(), 1);
    assert_eq!(out.stats.warnings[0].key(), "non-finite");
    assert!(out.stats.warnings[0].to_string().contains("largest gradient: 'b'"));
}

// ---------------------------------------------------------------------------------- Trainer

#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
struct Lin {
    w: Tensor,
    b: Tensor,
}

fn lin0() -> Lin {
    Lin { w: Tensor::zeros(&[1, 1]), b: Tensor::zeros(&[1]) }
}

fn lin_loss(m: &Lin, (x, y): &(Tensor, Tensor)) -> Tensor {
    (x.matmul(&m.w) + &m.b - y).square().mean()
}

/// y = 3x - 1 on 32 points in [-1, 1].
fn line_data() -> (Tensor, Tensor) {
    let x = Tensor::linspace(-1.0, 1.0, 32).reshape(&[32, 1]);
    let y = &x * 3.0 - 1.0;
    (x, y)
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn trainer_writes_jsonl_records_and_plots() {
    let dir = out_dir("jsonl");
    let data = line_data();
    let mut loader = DataLoader::new(TensorDataset::new(data.clone()), 8).shuffle(0);
    let m = lin0();
    let mut opt = sgd(&m, 0.2);
    let mut t = Trainer::new()
        .epochs(2)
        .quiet(true)
        .log_jsonl(dir.join("run/metrics.jsonl"))
        .plots(dir.join("plots"))
        .param_stats_every(2);
    let val =
        |m: &Lin| Metrics::from([("val_loss".to_string(), lin_loss(m, &data).item()), ("r".into(), 0.5)]);
    let out = t.fit(m, &mut opt, &mut loader, lin_loss, val).unwrap();
    assert_eq!(out.steps, 8);

    let recs = read_jsonl(&dir.join("run/metrics.jsonl"));
    let steps: Vec<&Value> = recs.iter().filter(|r| r["kind"] == "step").collect();
    let epochs: Vec<&Value> = recs.iter().filter(|r| r["kind"] == "epoch").collect();
    assert_eq!((steps.len(), epochs.len(), recs.last().unwrap()["kind"].as_str()), (8, 2, Some("end")));
    let mut last_time = 0.0;
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["step"], i + 1);
        assert_eq!(s["epoch"], if i < 4 { 1 } else { 2 });
        assert_eq!(s["lr"], 0.2);
        assert_eq!(s["skipped"], false);
        assert!(s["loss"].as_f64().unwrap() >= 0.0 && s["grad_norm"].as_f64().unwrap() > 0.0);
        let time = s["time"].as_f64().unwrap();
        assert!(time >= last_time);
        last_time = time;
        // Per-parameter statistics on every second step.
        let p = &s["params"];
        if (i + 1) % 2 == 0 {
            for name in ["w", "b"] {
                assert!(p[name]["grad_norm"].as_f64().unwrap() >= 0.0);
                assert!(p[name]["update_ratio"].is_number() || p[name]["weight_norm"] == 0.0);
            }
        } else {
            assert!(p.is_null());
        }
    }
    // The step losses in the log are the history's (to JSON's decimal round trip), and the epoch
    // mean is train_loss.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-14 * a.abs().max(1.0);
    let h = t.history();
    for (s, r) in h.steps.iter().zip(&steps) {
        assert!(close(s.loss, r["loss"].as_f64().unwrap()));
    }
    let mean1: f64 = h.steps[..4].iter().map(|s| s.loss).sum::<f64>() / 4.0;
    assert!((epochs[0]["train_loss"].as_f64().unwrap() - mean1).abs() < 1e-12);
    assert_eq!(epochs[1]["r"], 0.5);
    assert_eq!(epochs[1]["step"], 8);
    assert!(epochs[1]["val_loss"].as_f64().unwrap() < epochs[0]["val_loss"].as_f64().unwrap());
    // The log reads back into the same history.
    let back = History::from_jsonl(dir.join("run/metrics.jsonl")).unwrap();
    assert_eq!((back.steps.len(), back.epochs.len()), (h.steps.len(), h.epochs.len()));
    for (a, b) in back.steps.iter().zip(&h.steps) {
        assert_eq!((a.step, a.epoch), (b.step, b.epoch));
        assert!(close(a.loss, b.loss) && close(a.lr, b.lr) && close(a.grad_norm, b.grad_norm));
    }
    for (a, b) in back.epochs.iter().zip(&h.epochs) {
        assert_eq!((a.epoch, a.step), (b.epoch, b.step));
        assert_eq!(a.metrics.keys().collect::<Vec<_>>(), b.metrics.keys().collect::<Vec<_>>());
        assert!(a.metrics.iter().all(|(k, v)| close(*v, b.metrics[k])));
    }

    // Plots: both formats of both charts; the PNG decodes to the chart size and is not blank.
    let names: Vec<String> =
        out.files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
    assert_eq!(names, ["loss.png", "loss.svg", "metrics.png", "metrics.svg"]);
    let dec = png::Decoder::new(std::fs::File::open(dir.join("plots/loss.png")).unwrap());
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (800, 500));
    let px = &buf[..info.buffer_size()];
    let dark = px.chunks(3).filter(|p| p.iter().all(|&c| c < 100)).count();
    assert!(dark > 500, "text and axes drawn ({dark} dark pixels)");
    let coloured = px.chunks(3).filter(|p| p == &[31, 119, 180]).count();
    assert!(coloured > 100, "the loss curve is drawn ({coloured} pixels of its colour)");
    let svg = std::fs::read_to_string(dir.join("plots/loss.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Loss") && svg.contains("<polyline"), "{}", &svg[..200]);
    let svg = std::fs::read_to_string(dir.join("plots/metrics.svg")).unwrap();
    assert!(svg.lines().any(|l| l.trim() == "r"), "metric 'r' in the legend");
}

#[test]
fn history_from_jsonl_reports_bad_lines() {
    let dir = out_dir("badlog");
    let p = dir.join("m.jsonl");
    std::fs::write(&p, "{\"kind\":\"step\",\"step\":1,\"epoch\":1,\"loss\":0.5}\nnot json\n").unwrap();
    let e = History::from_jsonl(&p).unwrap_err().to_string();
    assert!(e.contains("m.jsonl:2:") && e.contains("invalid JSON"), "{e}");
    std::fs::write(&p, "{\"kind\":\"epoch\",\"step\":1}\n").unwrap();
    let e = History::from_jsonl(&p).unwrap_err().to_string();
    assert!(e.ends_with("m.jsonl:1:1: field 'epoch' is missing or not a non-negative integer"), "{e}");
}

/// A model whose validation "loss" follows a script, to test early stopping exactly.
fn scripted(
    values: &'static [f64],
    patience: usize,
    min_delta: f64,
    dir: &Path,
) -> (Trainer<Lin>, adjoint_nn::train::FitResult<Lin>) {
    let data = line_data();
    let mut loader = DataLoader::new(TensorDataset::new(data), 16);
    let m = lin0();
    let mut opt = sgd(&m, 0.1);
    let mut t = Trainer::new()
        .epochs(values.len())
        .quiet(true)
        .early_stopping(patience, min_delta)
        .checkpoint_best(dir.join("best.safetensors"));
    let mut i = 0;
    let out = t
        .fit(m, &mut opt, &mut loader, lin_loss, |_m: &Lin| {
            i += 1;
            Metrics::from([("val_loss".to_string(), values[i - 1])])
        })
        .unwrap();
    (t, out)
}

#[test]
fn early_stopping_with_patience_and_min_delta() {
    let dir = out_dir("early");
    let (t, out) = scripted(&[5.0, 4.0, 4.5, 4.2, 4.1, 3.0], 2, 0.0, &dir);
    assert!(out.stopped_early);
    assert_eq!(t.epochs_done(), 4, "two epochs without improvement after epoch 2");
    let best = out.best.as_ref().unwrap();
    assert_eq!((best.epoch, best.value), (2, 4.0));
    // The best model is the one at the end of epoch 2 (2 steps per epoch -> after step 4), and it
    // is the one saved to disk.
    assert_ne!(best.model.w.to_vec::<f32>(), out.model.w.to_vec::<f32>());
    let loaded = checkpoint::load(dir.join("best.safetensors"), &lin0()).unwrap();
    assert_eq!(loaded.w.to_vec::<f32>(), best.model.w.to_vec::<f32>());
    assert_eq!(loaded.b.to_vec::<f32>(), best.model.b.to_vec::<f32>());
    let meta = checkpoint::read_metadata(dir.join("best.safetensors")).unwrap();
    assert_eq!(
        (meta["epoch"].as_str(), meta["step"].as_str(), meta["monitor"].as_str()),
        ("2", "4", "val_loss")
    );

    // min_delta: 5.0 -> 4.8 is not an improvement of more than 0.5.
    let (t, out) = scripted(&[5.0, 4.8, 4.7, 4.0, 3.0], 2, 0.5, &dir);
    assert_eq!(t.epochs_done(), 3);
    assert_eq!(out.best.unwrap().epoch, 1);
    // Never stale long enough: runs to the end.
    let (t, out) = scripted(&[5.0, 6.0, 4.0, 7.0, 3.0], 2, 0.0, &dir);
    assert_eq!((t.epochs_done(), out.stopped_early, out.best.unwrap().epoch), (5, false, 5));
}

#[test]
fn monitor_goal_maximize_and_missing_metric_error() {
    let data = line_data();
    let mut loader = DataLoader::new(TensorDataset::new(data), 16);
    let m = lin0();
    let mut opt = sgd(&m, 0.1);
    let mut t = Trainer::new().epochs(3).quiet(true).monitor("acc", Goal::Maximize);
    let accs = [0.5, 0.9, 0.7];
    let mut i = 0;
    let out = t
        .fit(m.clone(), &mut opt, &mut loader, lin_loss, |_: &Lin| {
            i += 1;
            Metrics::from([("acc".to_string(), accs[i - 1])])
        })
        .unwrap();
    assert_eq!(out.best.unwrap().epoch, 2);

    let mut t = Trainer::new().epochs(3).quiet(true).early_stopping(1, 0.0);
    let e = t.fit(m, &mut opt, &mut loader, lin_loss, |_: &Lin| Metrics::new()).err().unwrap();
    assert_eq!(
        e.to_string(),
        "Trainer: the monitored metric 'val_loss' is not among epoch 1's metrics (epoch_seconds, examples_per_sec, \
         train_loss); return it from validation or set Trainer::monitor"
    );
}

#[test]
fn trainer_non_finite_policies() {
    // Batch 2 of 4 holds a NaN input.
    let (x, y) = line_data();
    let mut xv = x.to_vec::<f32>();
    xv[9] = f32::NAN;
    let x = Tensor::from_vec(xv, &[32, 1]);
    let dir = out_dir("nan");

    // Stop: the error names the step, and the log ends with an error record.
    let mut loader = DataLoader::new(TensorDataset::new((x.clone(), y.clone())), 8);
    let m = lin0();
    let mut opt = sgd(&m, 0.1);
    let mut t = Trainer::new().epochs(2).quiet(true).log_jsonl(dir.join("stop.jsonl"));
    let e = t.fit(m.clone(), &mut opt, &mut loader, lin_loss, |_: &Lin| Metrics::new()).err().unwrap();
    assert_eq!(
        e.to_string(),
        "non-finite loss at step 2: loss = NaN; largest gradient: 'w' (norm NaN); non-finite gradients in: w, b"
    );
    let recs = read_jsonl(&dir.join("stop.jsonl"));
    let last = recs.last().unwrap();
    assert_eq!((last["kind"].as_str(), last["step"].as_u64()), (Some("error"), Some(2)));
    assert_eq!(last["message"].as_str().unwrap(), e.to_string());

    // Skip: training goes on; the skipped step is logged and counted; the model stays finite.
    let mut opt = sgd(&m, 0.1);
    let mut t = Trainer::new()
        .epochs(2)
        .quiet(true)
        .non_finite(NonFinitePolicy::Skip)
        .log_jsonl(dir.join("skip.jsonl"));
    let out = t.fit(m, &mut opt, &mut loader, lin_loss, |_: &Lin| Metrics::new()).unwrap();
    assert_eq!(out.steps, 8);
    assert_eq!(opt.steps_taken(), 6, "two of eight steps skipped");
    assert!(out.model.w.to_vec::<f32>()[0].is_finite());
    let recs = read_jsonl(&dir.join("skip.jsonl"));
    let skipped: Vec<u64> =
        recs.iter().filter(|r| r["skipped"] == true).map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(skipped, vec![2, 6]);
    assert!(recs.iter().any(|r| r["loss"].is_null()), "NaN is written as null");
    assert_eq!(recs.last().unwrap()["skipped_steps"], 2);
    // train_loss averages only the finite steps.
    let h = t.history();
    let finite: Vec<f64> = h.steps[..4].iter().map(|s| s.loss).filter(|l| l.is_finite()).collect();
    let mean = finite.iter().sum::<f64>() / 3.0;
    assert!((h.epochs[0].metrics["train_loss"] - mean).abs() < 1e-12);
}

#[test]
fn online_steps_without_a_loader() {
    // Forecasting-style online updates: one observation at a time.
    let m = lin0();
    let mut opt = sgd(&m, 0.1);
    let mut t = Trainer::<Lin>::new().quiet(true).grad_thresholds(None, Some(1e6));
    let mut model = m;
    for i in 0..200 {
        let x = Tensor::from_vec(vec![((i * 37) % 21) as f32 / 10.0 - 1.0], &[1, 1]);
        let y = &x * 3.0 - 1.0;
        model = t.step(&model, &mut opt, |m: &Lin| lin_loss(m, &(x.clone(), y.clone()))).unwrap().model;
    }
    let end = t.end_epoch(&model, Metrics::new()).unwrap();
    assert_eq!((t.global_step(), end.epoch), (200, 1));
    assert!(end.metrics.contains_key("train_loss"));
    assert!((model.w.item() - 3.0).abs() < 1e-2 && (model.b.item() + 1.0).abs() < 1e-2);
}

#[test]
fn accuracy_and_evaluate() {
    // Segmentation-shaped: [B, C, H, W] logits, [B, H, W] labels.
    let logits = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0], &[1, 2, 2, 2]);
    let labels = Tensor::from_vec(vec![0i64, 1, 1, 1], &[1, 2, 2]);
    assert_eq!(accuracy(&logits, &labels), 0.75);
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0], &[5, 1]);
    let loader = DataLoader::new(TensorDataset::new(x), 2);
    let m = evaluate(&(), &loader, |_, x: &Tensor| Metrics::from([("s".to_string(), x.sum().item())]));
    // batches (1,2), (3,4), (5): sums 3, 7, 5 weighted by 2, 2, 1 over 5 examples
    assert!((m["s"] - (3.0 * 2.0 + 7.0 * 2.0 + 5.0) / 5.0).abs() < 1e-12);
}

// ----------------------------------------------------------------------------- end to end

type Mlp = (Linear, Relu, Linear);

#[test]
fn mlp_learns_the_digits() {
    let started = std::time::Instant::now();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/imaging_digits_8x8.csv");
    let table = read_csv(path, &CsvOptions::default()).unwrap();
    let x = table.data.narrow(1, 0, 64);
    let y = table.column("label").unwrap().cast(DType::I64);
    let split = random_split(table.rows(), 0.2, 0.0, 0);
    let ((x_tr, y_tr), (x_va, y_va), _) = split.apply(&(x, y));
    let scaler = Standardizer::fit(&x_tr).unwrap();
    let (x_tr, x_va) = (scaler.transform(&x_tr), scaler.transform(&x_va));

    let k = Key::new(0).split(2);
    let mlp: Mlp = (Linear::new(64, 64, &k[0]), Relu, Linear::new(64, 10, &k[1]));
    let mut opt = Adam::new(&mlp, AdamConfig { lr: 3e-3, ..Default::default() });
    let mut loader = DataLoader::new(TensorDataset::new((x_tr, y_tr)), 32).shuffle(1).prefetch(2);
    let dir = out_dir("digits");
    let mut trainer = Trainer::new()
        .epochs(12)
        .quiet(true)
        .monitor("val_acc", Goal::Maximize)
        .early_stopping(4, 0.0)
        .grad_thresholds(Some(1e-8), Some(1e3))
        .param_stats_every(50)
        .log_jsonl(dir.join("metrics.jsonl"))
        .checkpoint_best(dir.join("best.safetensors"))
        .plots(&dir);
    let ce = CrossEntropy::default();
    let out = trainer
        .fit(
            mlp.clone(),
            &mut opt,
            &mut loader,
            |m: &Mlp, (x, y): &(Tensor, Tensor)| cross_entropy(&m.forward(x), y, &ce),
            |m: &Mlp| {
                let logits = m.forward(&x_va);
                Metrics::from([
                    ("val_loss".to_string(), cross_entropy(&logits, &y_va, &ce).item()),
                    ("val_acc".to_string(), accuracy(&logits, &y_va)),
                ])
            },
        )
        .unwrap();
    let best = out.best.as_ref().unwrap();
    // Recompute the accuracy of the saved best model independently of the trainer.
    let saved: Mlp = checkpoint::load(dir.join("best.safetensors"), &mlp).unwrap();
    let acc = accuracy(&saved.forward(&x_va), &y_va);
    eprintln!(
        "digits MLP: best val_acc {:.4} at epoch {} of {} ({} steps, {:.2} s)",
        best.value,
        best.epoch,
        trainer.epochs_done(),
        out.steps,
        started.elapsed().as_secs_f64()
    );
    assert!(acc >= 0.90, "validation accuracy {acc}");
    assert_eq!(acc, best.value);
    assert!(
        out.history.epochs[0].metrics["val_loss"] > out.history.epochs.last().unwrap().metrics["val_loss"]
    );
    assert_eq!(out.files.len(), 4);
}

// ------------------------------------------------------------------------------- schedules

#[test]
fn schedules_drive_the_learning_rate_per_step_and_per_epoch() {
    use adjoint_nn::schedule::{PlateauConfig, ReduceOnPlateau, StepLr, WarmupCosine};
    use adjoint_nn::train::Every;
    let data = line_data();
    let mut loader = DataLoader::new(TensorDataset::new(data), 8); // 4 steps per epoch
    let sched = WarmupCosine { base_lr: 0.1, warmup_steps: 3, total_steps: 12, ..Default::default() };
    let m = lin0();
    let mut opt = sgd(&m, 123.0);
    let mut t = Trainer::new().epochs(3).quiet(true).schedule(sched, Every::Step);
    let out = t.fit(m.clone(), &mut opt, &mut loader, lin_loss, |_: &Lin| Metrics::new()).unwrap();
    let lrs: Vec<f64> = out.history.steps.iter().map(|s| s.lr).collect();
    let want: Vec<f64> = (0..12).map(|k| adjoint_nn::schedule::Schedule::lr_at(&sched, k)).collect();
    assert_eq!(lrs, want, "step k (1-based) uses lr_at(k - 1)");
    assert_eq!(lrs[0], 0.0);

    let mut opt = sgd(&m, 123.0);
    let mut t = Trainer::new()
        .epochs(3)
        .quiet(true)
        .schedule(StepLr { base_lr: 0.1, step_size: 1, gamma: 0.5 }, Every::Epoch);
    let out = t.fit(m.clone(), &mut opt, &mut loader, lin_loss, |_: &Lin| Metrics::new()).unwrap();
    let lrs: Vec<f64> = out.history.steps.iter().map(|s| s.lr).collect();
    assert_eq!(lrs, [[0.1; 4], [0.05; 4], [0.025; 4]].concat());

    // Reduce on plateau is fed the monitored metric after each epoch.
    let plateau = ReduceOnPlateau::new(0.1, PlateauConfig { patience: 0, ..Default::default() });
    let mut opt = sgd(&m, 0.1);
    let mut t = Trainer::new().epochs(3).quiet(true).schedule(plateau, Every::Epoch);
    // The validation loss never improves after epoch 1.
    let flat = |_: &Lin| Metrics::from([("val_loss".to_string(), 1.0)]);
    let out = t.fit(m, &mut opt, &mut loader, lin_loss, flat).unwrap();
    let per_epoch: Vec<f64> = out.history.steps.iter().step_by(4).map(|s| s.lr).collect();
    assert!((per_epoch[0] - 0.1).abs() < 1e-15 && (per_epoch[1] - 0.1).abs() < 1e-15);
    assert!((per_epoch[2] - 0.01).abs() < 1e-15, "{per_epoch:?}");
}

#[test]
fn trainer_runs_with_progress_enabled_off_a_terminal() {
    // Under `cargo test` stderr is not a terminal: the bar hides itself, summaries still print.
    let data = line_data();
    let mut loader = DataLoader::new(TensorDataset::new(data.clone()), 8);
    let m = lin0();
    let mut opt = sgd(&m, 0.2);
    let mut t = Trainer::new().epochs(2).grad_thresholds(Some(1e-12), Some(1e-3));
    let out = t
        .fit(m, &mut opt, &mut loader, lin_loss, |m: &Lin| {
            Metrics::from([("val_loss".to_string(), lin_loss(m, &data).item())])
        })
        .unwrap();
    assert_eq!(out.steps, 8);
    assert!(out.best.is_some());
}

#[test]
fn fit_with_hands_each_step_its_number_epoch_and_key() {
    use adjoint_nn::train::StepInfo;
    use std::cell::RefCell;
    let seen: RefCell<Vec<StepInfo>> = RefCell::new(Vec::new());
    let mut loader = DataLoader::new(TensorDataset::new(line_data()), 16); // 2 steps per epoch
    let m = lin0();
    let mut opt = sgd(&m, 0.1);
    let mut t = Trainer::new().epochs(2).quiet(true).seed(9);
    let loss = |m: &Lin, b: &(Tensor, Tensor), info: &StepInfo| {
        seen.borrow_mut().push(*info);
        lin_loss(m, b)
    };
    t.fit_with(m, &mut opt, &mut loader, loss, |_: &Lin| Metrics::new()).unwrap();
    let seen = seen.into_inner();
    let got: Vec<(usize, usize)> = seen.iter().map(|i| (i.step, i.epoch)).collect();
    assert_eq!(got, [(1, 1), (2, 1), (3, 2), (4, 2)]);
    assert!(seen.iter().all(|i| i.key == Key::new(9).fold_in(i.step as u64)));
    assert_eq!(t.next_step_info().step, 5);
}
