//! The digits part of `adjoint demo imaging`: a small CNN on the 8×8 digits, its checkpoint,
//! loss chart and evaluation record.

use std::collections::BTreeMap;
use std::path::Path;

use adjoint_core::Tensor;
use adjoint_nn::layers::{Conv2d, Flatten, Linear, MaxPool2d, Module, Relu};
use adjoint_nn::loss::{cross_entropy, CrossEntropy};
use adjoint_nn::optim::{Adam, AdamConfig};
use adjoint_nn::train::{Chart, Series};
use adjoint_tensor::random::{self, Key};
use serde_json::json;

use super::super::common::{self, metrics, Common, DemoError, MetricsLog, RunDir};
use super::super::parallel::Replica;
use super::ImagingConfig;

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

/// Train and evaluate the digits CNN (80/20 split); writes `digits.safetensors` and
/// `digits_loss.png`. Returns the test accuracy and the evaluation record.
pub fn digits(
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
            let loss = replica.train_step(par, len, ("digits", epoch * steps + s), |m: &_| {
                cross_entropy(&Module::forward(m, &xb), &yb, &CrossEntropy::default())
            })?;
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
    use super::super::evaluate::{mean_slices, reliability};
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
