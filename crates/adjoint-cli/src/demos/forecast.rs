//! `adjoint demo forecast`: next-day volatility of AAPL, IBM and MSFT with a model that keeps
//! learning as each new day arrives.
//!
//! The target is the next day's absolute log-return in percent, `100·|ln(Pₜ₊₁/Pₜ)|` from the
//! adjusted close, a standard realised-volatility proxy (next-day returns themselves are close
//! to unpredictable, and the zero forecast is then all but unbeatable). An LSTM reads the last
//! 30 days of returns and absolute returns of the three stocks and predicts all three.
//!
//! It is trained on the first 2,000 days, then run walk-forward over the remaining ~1,270: each
//! day it forecasts, sees the truth, and takes a few Adam steps on the most recent windows.
//! Baselines on the same days: persistence (tomorrow = today), the training mean, a linear
//! AR(10) fitted by least squares on the training period, and the same LSTM frozen after the
//! initial training.

use std::collections::BTreeMap;
use std::path::Path;

use adjoint_core::{value_and_grad, DType, Tensor};
use adjoint_nn::layers::{Linear, LinearConfig, Lstm, Module, RnnConfig};
use adjoint_nn::loss::{mse, Reduction};
use adjoint_nn::optim::{clip_grad_norm, Adam, AdamConfig, Optimizer};
use adjoint_nn::train::{Chart, Series};
use adjoint_tensor::random::{self, Key};
use serde::Serialize;
use serde_json::json;

use super::common::{self, metrics, Common, DemoError, MetricsLog, Outcome, RunDir};
use super::parallel::Replica;

const TICKERS: [&str; 3] = ["AAPL", "IBM", "MSFT"];

/// Settings of the forecast demo (saved as `config.json`).
#[derive(Clone, Debug, Serialize)]
pub struct ForecastConfig {
    /// Days of history the model reads.
    pub window: usize,
    /// Days used for the initial training.
    pub train_days: usize,
    /// Epochs of initial training.
    pub epochs: usize,
    /// Adam learning rate (initial training).
    pub lr: f64,
    /// Batch size (initial training).
    pub batch: usize,
    /// LSTM hidden size.
    pub hidden: usize,
    /// Adam steps per new day in the walk-forward phase.
    pub online_steps: usize,
    /// Most recent windows each online step trains on.
    pub online_batch: usize,
    /// Learning rate of the online steps.
    pub online_lr: f64,
    /// AR order of the linear baseline.
    pub ar_order: usize,
    /// Walk-forward days evaluated (all when `None`).
    pub walk_days: Option<usize>,
    /// Seed.
    pub seed: u64,
}

impl ForecastConfig {
    /// The defaults, adjusted by the common flags.
    pub fn from_common(c: &Common) -> ForecastConfig {
        let mut cfg = ForecastConfig {
            window: 30,
            train_days: 2000,
            epochs: 20,
            lr: 2e-3,
            batch: 64,
            hidden: 32,
            online_steps: 2,
            online_batch: 32,
            online_lr: 5e-4,
            ar_order: 10,
            walk_days: None,
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
            cfg.walk_days = Some(20);
        }
        cfg
    }
}

/// Adjusted closes of the three tickers on their common dates, `[days][3]`.
pub fn load_prices(path: &Path) -> Result<(Vec<String>, Vec<[f64; 3]>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|l| l.1).unwrap_or("");
    let cols: Vec<&str> = header.split(',').collect();
    let find = |name: &str| {
        cols.iter()
            .position(|c| c.trim() == name)
            .ok_or_else(|| format!("{}:1: no `{name}` column", path.display()))
    };
    let (ct, cd, ca) = (find("Ticker")?, find("Date")?, find("Adj Close")?);
    let mut series: BTreeMap<&str, Vec<(String, f64)>> = BTreeMap::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != cols.len() {
            return Err(format!("{}:{}: {} fields, expected {}", path.display(), i + 1, f.len(), cols.len()));
        }
        if let Some(t) = TICKERS.iter().find(|t| **t == f[ct]) {
            let v: f64 = f[ca].trim().parse().map_err(|_| {
                format!("{}:{}:{}: `{}` is not a number", path.display(), i + 1, ca + 1, f[ca])
            })?;
            if !(v > 0.0 && v.is_finite()) {
                return Err(format!("{}:{}:{}: price {v} is not positive", path.display(), i + 1, ca + 1));
            }
            series.entry(t).or_default().push((f[cd].to_string(), v));
        }
    }
    let get = |t: &str| series.get(t).ok_or_else(|| format!("{}: no rows for {t}", path.display()));
    let (a, b, c) = (get(TICKERS[0])?, get(TICKERS[1])?, get(TICKERS[2])?);
    if a.len() != b.len()
        || a.len() != c.len()
        || a.iter().zip(b).zip(c).any(|((x, y), z)| x.0 != y.0 || x.0 != z.0)
    {
        return Err(format!("{}: the three tickers do not share the same dates", path.display()));
    }
    Ok((
        a.iter().map(|x| x.0.clone()).collect(),
        a.iter().zip(b).zip(c).map(|((x, y), z)| [x.1, y.1, z.1]).collect(),
    ))
}

/// The model: an LSTM over the window, a linear head on its last hidden state.
#[derive(Clone, adjoint_derive::Params)]
#[params(crate = adjoint_core)]
pub struct Forecaster {
    lstm: Lstm,
    head: Linear,
}

impl Forecaster {
    fn new(key: &Key, hidden: usize) -> Forecaster {
        let (k1, k2) = key.split2();
        Forecaster {
            lstm: RnnConfig::new(6, hidden).init_lstm(&k1),
            head: LinearConfig::new(hidden, 3).init(&k2),
        }
    }
    /// `x: [B, window, 6]` → `[B, 3]`.
    fn forward(&self, x: &Tensor) -> Tensor {
        let (_, (h, _)) = self.lstm.forward_state(x, None);
        let last = h.narrow(0, h.shape()[0] - 1, 1).squeeze(0);
        self.head.forward(&last)
    }
}

/// Inputs for the windows ending at days `ends` (exclusive) and the targets at those days.
struct Windows {
    /// `feat[t]` = the standardised features of day `t` (6 values).
    feat: Vec<[f32; 6]>,
    /// `target[t]` = `100·|r_t|` for the three stocks.
    target: Vec<[f32; 3]>,
    window: usize,
}

impl Windows {
    fn batch(&self, ends: &[usize]) -> (Tensor, Tensor) {
        let w = self.window;
        let mut x = Vec::with_capacity(ends.len() * w * 6);
        let mut y = Vec::with_capacity(ends.len() * 3);
        for &e in ends {
            for t in e - w..e {
                x.extend_from_slice(&self.feat[t]);
            }
            y.extend_from_slice(&self.target[e]);
        }
        (Tensor::from_vec(x, &[ends.len(), w, 6]), Tensor::from_vec(y, &[ends.len(), 3]))
    }
}

// Index loops read like the linear algebra they implement.
#[allow(clippy::needless_range_loop)]
fn ar_fit(y: &[[f32; 3]], stock: usize, p: usize, end: usize) -> Vec<f64> {
    // Normal equations of y_t = c + Σ a_k y_{t-k}, solved by Gaussian elimination.
    let n = p + 1;
    let mut a = vec![vec![0.0f64; n + 1]; n];
    for t in p..end {
        let mut row = vec![1.0];
        row.extend((1..=p).map(|k| y[t - k][stock] as f64));
        for i in 0..n {
            for j in 0..n {
                a[i][j] += row[i] * row[j];
            }
            a[i][n] += row[i] * y[t][stock] as f64;
        }
    }
    for i in 0..n {
        let piv = (i..n).max_by(|&r, &s| a[r][i].abs().total_cmp(&a[s][i].abs())).expect("non-empty");
        a.swap(i, piv);
        for r in 0..n {
            if r != i {
                let f = a[r][i] / a[i][i];
                for c in i..=n {
                    a[r][c] -= f * a[i][c];
                }
            }
        }
    }
    (0..n).map(|i| a[i][n] / a[i][i]).collect()
}

/// MAE and RMSE of `pred` against `truth` over all stocks.
fn errors(pred: &[[f64; 3]], truth: &[[f64; 3]]) -> (f64, f64) {
    let n = (pred.len() * 3) as f64;
    let (mut ae, mut se) = (0.0, 0.0);
    for (p, t) in pred.iter().zip(truth) {
        for s in 0..3 {
            ae += (p[s] - t[s]).abs();
            se += (p[s] - t[s]).powi(2);
        }
    }
    (ae / n, (se / n).sqrt())
}

fn to_rows(t: &Tensor) -> Vec<[f64; 3]> {
    t.to_vec::<f64>().chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
}

/// The outcome of the demo, as printed and saved.
#[derive(Clone, Debug, Serialize)]
pub struct ForecastReport {
    /// Walk-forward days evaluated.
    pub days: usize,
    /// Rows: method, MAE, RMSE (percentage points of absolute daily return).
    pub rows: Vec<(String, f64, f64)>,
    /// Method name → its metrics (`persistence`, `train_mean`, `ar`, `lstm_frozen`,
    /// `lstm_online`: `mae`, `rmse`).
    pub methods: BTreeMap<String, BTreeMap<String, f64>>,
}

/// The configuration this demo runs with, as recorded.
pub fn config(common: &Common) -> serde_json::Value {
    json!(ForecastConfig::from_common(common))
}

/// The data files the demo reads (the registry's data access policy is checked on them before
/// a run is recorded).
pub fn data_files() -> [std::path::PathBuf; 1] {
    [common::data_dir().join("finance_stocks_daily_2000_2013.csv")]
}

/// Run the demo.
pub fn run(common: &Common) -> Result<Outcome, DemoError> {
    run_with(common, &mut |_, _| Ok(()))
}

/// [`run`], calling `observe(online error, frozen error)` with each walk-forward day's absolute
/// error (mean over the three stocks) of the online model and of the frozen one as soon as the
/// day's truth is known; the `adjoint` command feeds a monitor of `forecast@production` with
/// them. An error from `observe` stops the demo.
pub fn run_with(
    common: &Common,
    observe: &mut dyn FnMut(f64, f64) -> Result<(), String>,
) -> Result<Outcome, DemoError> {
    let cfg = ForecastConfig::from_common(common);
    let [data_file] = data_files();
    let (dates, prices) = load_prices(&data_file)?;
    let dir = RunDir::create(&common.out, "forecast")?;
    dir.write_json("config.json", &json!({ "demo": "forecast", "config": cfg, "data": [data_file] }))?;
    let mut log = MetricsLog::create(&dir)?;

    // Day t (t ≥ 1) has return r_t = ln(P_t / P_{t-1}); index days by return.
    let r: Vec<[f64; 3]> =
        prices.windows(2).map(|w| [0, 1, 2].map(|s| 100.0 * (w[1][s] / w[0][s]).ln())).collect();
    let days = r.len();
    let train_end = cfg.train_days.min(days - 1);
    let mut mean = [0.0; 6];
    let mut sd = [0.0; 6];
    let raw = |t: usize, j: usize| if j < 3 { r[t][j] } else { r[t][j - 3].abs() };
    for j in 0..6 {
        mean[j] = (0..train_end).map(|t| raw(t, j)).sum::<f64>() / train_end as f64;
        sd[j] =
            ((0..train_end).map(|t| (raw(t, j) - mean[j]).powi(2)).sum::<f64>() / train_end as f64).sqrt();
    }
    let win = Windows {
        feat: (0..days).map(|t| [0, 1, 2, 3, 4, 5].map(|j| ((raw(t, j) - mean[j]) / sd[j]) as f32)).collect(),
        target: r.iter().map(|x| x.map(|v| v.abs() as f32)).collect(),
        window: cfg.window,
    };
    let truth = |t: usize| r[t].map(f64::abs);

    // Initial training on windows ending before train_end.
    let key = Key::new(cfg.seed);
    let model = Forecaster::new(&key.fold_in(1), cfg.hidden);
    let opt = Adam::new(&model, AdamConfig { lr: cfg.lr, ..Default::default() });
    // Distributed (`--distributed`): this training phase is data-parallel; the walk-forward
    // phase below is sequential by nature and runs on every rank alike.
    let par = &common.parallel;
    let mut replica = Replica::new(par, model, opt)?;
    let ends: Vec<usize> = (cfg.window..train_end).collect();
    let steps_per_epoch = ends.len().div_ceil(cfg.batch);
    let pb = common::progress((cfg.epochs * steps_per_epoch) as u64, "train", common.quiet);
    let loss_fn = |m: &Forecaster, x: &Tensor, y: &Tensor| mse(&m.forward(x), y, Reduction::Mean);
    let mut step = 0;
    let mut epochs = Vec::new();
    for epoch in 0..cfg.epochs {
        let perm = random::permutation(&key.fold_in(100 + epoch as u64), ends.len()).to_vec::<i64>();
        let mut total = 0.0;
        for chunk in perm.chunks(cfg.batch) {
            let idx: Vec<usize> = chunk.iter().map(|&i| ends[i as usize]).collect();
            let (x, y) = win.batch(&idx);
            let (x, y) = (par.shard(&x), par.shard(&y));
            let (loss, g) = value_and_grad(|m: &Forecaster| loss_fn(m, &x, &y))(replica.model());
            let loss = par.mean(loss.item(), idx.len())?;
            common::check_finite("forecast training", step, loss)?;
            // Clip the global gradient (after the mean over ranks), as one process would.
            replica.step(par, &g, idx.len(), |g| clip_grad_norm(&g, 1.0).0)?;
            total += loss * idx.len() as f64;
            step += 1;
            pb.inc(1);
            pb.set_message(format!("epoch {} loss {:.4}", epoch + 1, loss));
            log.log(json!({"phase": "train", "step": step, "epoch": epoch + 1, "loss": loss}))?;
        }
        log.log(json!({"phase": "train_epoch", "epoch": epoch + 1, "loss": total / ends.len() as f64}))?;
        epochs.push(((epoch + 1) as u64, metrics([("train_loss", total / ends.len() as f64)])));
    }
    pb.finish_and_clear();
    let mut model = replica.into_parts().0;
    let frozen = model.clone();

    // Walk-forward: forecast day t from the window ending at t, then learn from it.
    let last = cfg.walk_days.map_or(days, |n| (train_end + n).min(days));
    let walk: Vec<usize> = (train_end..last).collect();
    let (xw, _) = win.batch(&walk);
    let frozen_pred = to_rows(&frozen.forward(&xw).cast(DType::F64));
    let mut online_pred = Vec::with_capacity(walk.len());
    let mut online_opt = Adam::new(&model, AdamConfig { lr: cfg.online_lr, ..Default::default() });
    let pb = common::progress(walk.len() as u64, "walk", common.quiet);
    for (i, &t) in walk.iter().enumerate() {
        let (x, _) = win.batch(&[t]);
        online_pred.push(to_rows(&model.forward(&x).cast(DType::F64))[0]);
        let ae = |p: &[f64; 3]| (0..3).map(|s| (p[s] - truth(t)[s]).abs()).sum::<f64>() / 3.0;
        observe(ae(&online_pred[i]), ae(&frozen_pred[i]))?;
        // Day t's truth is now known: windows ending at t−k+1 … t have targets up to day t.
        let recent: Vec<usize> = ((t + 1).saturating_sub(cfg.online_batch).max(cfg.window)..=t).collect();
        let (xr, yr) = win.batch(&recent);
        let mut last_loss = 0.0;
        for _ in 0..cfg.online_steps {
            let (loss, g) = value_and_grad(|m: &Forecaster| loss_fn(m, &xr, &yr))(&model);
            common::check_finite("forecast online update", i, loss.item())?;
            let (g, _) = clip_grad_norm(&g, 1.0);
            model = online_opt.step(&model, &g);
            last_loss = loss.item();
        }
        pb.inc(1);
        if i % 20 == 0 {
            log.log(json!({"phase": "walk", "day": dates[t + 1], "online_loss": last_loss}))?;
        }
    }
    pb.finish_and_clear();
    log.finish()?;

    let truth_rows: Vec<[f64; 3]> = walk.iter().map(|&t| truth(t)).collect();
    let persistence: Vec<[f64; 3]> = walk.iter().map(|&t| truth(t - 1)).collect();
    let train_mean = [0, 1, 2].map(|s| (0..train_end).map(|t| truth(t)[s]).sum::<f64>() / train_end as f64);
    let mean_pred = vec![train_mean; walk.len()];
    let coef: Vec<Vec<f64>> = (0..3).map(|s| ar_fit(&win.target, s, cfg.ar_order, train_end)).collect();
    let ar_pred: Vec<[f64; 3]> = walk
        .iter()
        .map(|&t| {
            [0, 1, 2]
                .map(|s| coef[s][0] + (1..=cfg.ar_order).map(|k| coef[s][k] * truth(t - k)[s]).sum::<f64>())
        })
        .collect();
    let methods: Vec<(&str, &Vec<[f64; 3]>)> = vec![
        ("persistence (tomorrow = today)", &persistence),
        ("training mean", &mean_pred),
        ("AR(10), least squares on training days", &ar_pred),
        ("LSTM, frozen after training", &frozen_pred),
        ("LSTM, online updates (walk-forward)", &online_pred),
    ];
    let rows: Vec<(String, f64, f64)> = methods
        .iter()
        .map(|(n, p)| {
            let (mae, rmse) = errors(p, &truth_rows);
            (n.to_string(), mae, rmse)
        })
        .collect();
    let keys = ["persistence", "train_mean", "ar", "lstm_frozen", "lstm_online"];
    let by_method = keys
        .iter()
        .zip(&rows)
        .map(|(k, r)| (k.to_string(), metrics([("mae", r.1), ("rmse", r.2)])))
        .collect();
    let report = ForecastReport { days: walk.len(), rows, methods: by_method };
    let table = common::table(
        &["method", "MAE", "RMSE"],
        &report
            .rows
            .iter()
            .map(|r| vec![r.0.clone(), format!("{:.4}", r.1), format!("{:.4}", r.2)])
            .collect::<Vec<_>>(),
    );
    let best = report.rows.iter().min_by(|a, b| a.1.total_cmp(&b.1)).expect("rows");
    let online = report.rows.last().expect("rows");
    let verdict = if best.0 == online.0 {
        "The online LSTM has the lowest MAE of all methods on the walk-forward days.".to_string()
    } else {
        format!(
            "The online LSTM does NOT beat every baseline: the lowest MAE is {} ({:.4} vs {:.4}).",
            best.0, best.1, online.1
        )
    };
    let summary = format!(
        "Next-day |log-return| (%) of {}, walk-forward {} → {} ({} days), averaged over the three stocks\n\n{table}\n{verdict}\n",
        TICKERS.join(", "),
        dates[walk[0] + 1],
        dates[walk[walk.len() - 1] + 1],
        walk.len()
    );
    dir.write("results.md", &summary)?;
    dir.write_json("results.json", &report)?;

    let mut meta = BTreeMap::new();
    meta.insert("demo".to_string(), "forecast".to_string());
    meta.insert("seed".to_string(), cfg.seed.to_string());
    adjoint_nn::checkpoint::save(dir.file("model.safetensors"), &model, &meta).map_err(|e| e.to_string())?;

    // Plots: AAPL forecast vs truth (20-day rolling means), rolling 60-day MAE per method.
    let roll = |v: &[f64], k: usize| -> Vec<(f64, f64)> {
        (k..=v.len()).map(|i| (i as f64, v[i - k..i].iter().sum::<f64>() / k as f64)).collect()
    };
    let col = |p: &[[f64; 3]], s: usize| p.iter().map(|x| x[s]).collect::<Vec<f64>>();
    let k = 20.min(walk.len());
    Chart::new("AAPL next-day |return| (%), 20-day rolling mean")
        .x_label("walk-forward day")
        .y_label("|log-return| (%)")
        .series(Series::new("truth", roll(&col(&truth_rows, 0), k)))
        .series(Series::new("LSTM online", roll(&col(&online_pred, 0), k)))
        .series(Series::new("LSTM frozen", roll(&col(&frozen_pred, 0), k)))
        .series(Series::new("AR(10)", roll(&col(&ar_pred, 0), k)))
        .save(dir.file("forecast_vs_truth"))
        .map_err(|e| e.to_string())?;
    let mut chart = Chart::new("Rolling 60-day MAE, mean over AAPL, IBM, MSFT")
        .x_label("walk-forward day")
        .y_label("MAE (%)");
    let k = 60.min(walk.len());
    for (name, p) in &methods {
        let ae: Vec<f64> = p
            .iter()
            .zip(&truth_rows)
            .map(|(a, b)| (0..3).map(|s| (a[s] - b[s]).abs()).sum::<f64>() / 3.0)
            .collect();
        chart = chart.series(Series::new(*name, roll(&ae, k)));
    }
    chart.save(dir.file("rolling_error")).map_err(|e| e.to_string())?;
    println!("forecast: {summary}");
    println!("forecast: run folder {}", dir.path.display());
    let mut final_metrics = BTreeMap::new();
    for (k, r) in keys.iter().zip(&report.rows) {
        final_metrics.insert(format!("{k}_mae"), r.1);
        final_metrics.insert(format!("{k}_rmse"), r.2);
    }
    let checkpoints = vec![(dir.file("model.safetensors"), "online-model".to_string())];
    let mut eval = evaluation(&model, &win, &walk, &dates, (&online_pred, &truth_rows), train_end);
    eval.data = vec![super::evaluate::data_record(&data_file, "walk-forward days after the training days")?];
    Ok(Outcome {
        dir,
        data_files: vec![data_file],
        epochs,
        final_metrics,
        checkpoints,
        evaluations: vec![("online-model".into(), eval)],
    })
}

/// The online model's evaluation record: slices per stock and per year, 95% VaR exceedances
/// (the forecast |return| as a volatility), drift of the six input features from the training
/// days to the walk-forward days, and integrated-gradients attributions per feature over the
/// walk-forward days.
fn evaluation(
    model: &Forecaster,
    win: &Windows,
    walk: &[usize],
    dates: &[String],
    (pred, truth): (&[[f64; 3]], &[[f64; 3]]),
    train_end: usize,
) -> adjoint_store::Evaluation {
    use super::evaluate::mean_slices;
    use adjoint_nn::explain::{integrated_gradients, IgOptions, Target};
    let (mae, rmse) = errors(pred, truth);
    let mut ev = adjoint_store::Evaluation::new(
        "forecast walk-forward (online LSTM)",
        "mae",
        false,
        metrics([("mae", mae), ("rmse", rmse)]),
    );
    let mut by_stock = Vec::new();
    let mut by_year = Vec::new();
    let mut var = [(0u64, 0u64); 3];
    for ((p, t), &day) in pred.iter().zip(truth).zip(walk) {
        let year = dates[day + 1].get(..4).unwrap_or("?").to_string();
        let mut day_ae = 0.0;
        for s in 0..3 {
            let ae = (p[s] - t[s]).abs();
            by_stock.push((TICKERS[s].to_string(), vec![ae, ae * ae]));
            day_ae += ae / 3.0;
            // E|r| = σ·√(2/π) for a normal return: a 95% two-sided VaR is 1.96·σ.
            let sigma = p[s].max(0.0) * (std::f64::consts::PI / 2.0).sqrt();
            var[s].0 += 1;
            var[s].1 += u64::from(t[s] > 1.96 * sigma);
        }
        by_year.push((year, vec![day_ae]));
    }
    ev.slices = mean_slices("stock", &["mae", "mse"], &by_stock);
    ev.slices.extend(mean_slices("year", &["mae"], &by_year));
    let bins = var
        .iter()
        .zip(TICKERS)
        .map(|(&(n, k), t)| adjoint_store::CalibrationBin {
            label: t.to_string(),
            predicted: 0.05,
            observed: k as f64 / n as f64,
            count: n,
        })
        .collect();
    ev.calibration = vec![adjoint_store::Calibration::new(
        "95% VaR exceedances (AAPL, IBM, MSFT)",
        "var-exceedance",
        bins,
    )];
    let labels: Vec<String> =
        ["return", "|return|"].iter().flat_map(|k| TICKERS.iter().map(move |t| format!("{t} {k}"))).collect();
    ev.features = labels
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let train: Vec<f64> = (0..train_end).map(|t| win.feat[t][j] as f64).collect();
            let eval: Vec<f64> = walk.iter().map(|&t| win.feat[t][j] as f64).collect();
            adjoint_store::FeatureDistribution::from_samples(name, &train, &eval, 10)
        })
        .collect();
    let n = walk.len().min(24);
    let days: Vec<usize> = (0..n).map(|i| walk[i * walk.len() / n]).collect();
    let (x, _) = win.batch(&days);
    let f = |xi: &Tensor| model.forward(&xi.unsqueeze(0)).mean();
    let ig =
        integrated_gradients(&f, &x, None, Target::Scalar, &IgOptions { steps: 16, ..Default::default() });
    let per_day = ig.attributions.sum_axes(&[1], false).to_vec::<f32>();
    ev.attributions = vec![adjoint_store::Attribution {
        name: "mean forecast by input feature, sampled walk-forward days".into(),
        method: "integrated-gradients".into(),
        shape: vec![n, 6],
        labels,
        values: per_day,
        completeness_error: Some(ig.max_completeness_error()),
    }];
    ev
}
