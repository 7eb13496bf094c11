//! `adjoint demo forecast`: next-day volatility and 99% one-day Value-at-Risk of AAPL, IBM and
//! MSFT, with a model that keeps learning as each new day arrives.
//!
//! Volatility is compared with the next day's absolute log-return in percent,
//! `100·|ln(Pₜ₊₁/Pₜ)|` from the adjusted close (a noisy but unbiased realised-volatility proxy:
//! E|r| = c·σ). VaR99 is the 1% quantile of each method's predicted return distribution (its
//! scale times the standardised training residuals, see [`forecast_risk`]); a test day with a
//! return below −VaR is an exceedance, and Kupiec's test asks whether their rate is 1%.
//!
//! Methods, all fitted on the first 2,000 days and walked forward over the remaining ~1,270
//! (2008–2013): GARCH(1,1) by maximum likelihood (gradients from adjoint's scalar tape, L-BFGS);
//! an LSTM reading the last 30 days of returns and absolute returns of the three stocks,
//! trained by MSE on |return| and then frozen; the same LSTM with online updates by a policy
//! chosen on a validation walk inside the training years ([`forecast_online`]); a hybrid whose
//! GARCH parameters are modulated day by day by an LSTM, trained by Gaussian maximum
//! likelihood; and the cheap baselines persistence, training mean (its VaR is historical
//! simulation) and a linear AR(10) of |return|.

use std::collections::BTreeMap;
use std::path::Path;

use adjoint_core::{value_and_grad, DType, Params, Tensor};
use adjoint_nn::layers::{Linear, LinearConfig, Lstm, Module, RnnConfig};
use adjoint_nn::loss::{mse, Reduction};
use adjoint_nn::optim::{clip_grad_norm, Adam, AdamConfig};
use adjoint_tensor::random::{self, Key};
use serde::Serialize;
use serde_json::json;

use super::common::{self, metrics, Common, DemoError, MetricsLog, Outcome, RunDir};
use super::forecast_risk::{self, Garch};
use super::parallel::Replica;
use super::{forecast_online, forecast_report};

/// The stocks, in column order.
pub const TICKERS: [&str; 3] = ["AAPL", "IBM", "MSFT"];

/// Settings of the forecast demo (saved as `config.json`).
#[derive(Clone, Debug, Serialize)]
pub struct ForecastConfig {
    /// Days of history the model reads.
    pub window: usize,
    /// Days used for the initial training.
    pub train_days: usize,
    /// Epochs of initial training (each of the three trained models).
    pub epochs: usize,
    /// Adam learning rate (initial training).
    pub lr: f64,
    /// Batch size (initial training).
    pub batch: usize,
    /// LSTM hidden size.
    pub hidden: usize,
    /// Days at the end of the training period walked to choose the online policy (the policy's
    /// validation model is trained on the days before them).
    pub val_days: usize,
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
            val_days: 500,
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
            cfg.val_days = 20;
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
    /// An LSTM of `hidden` units over the 6 features, a head with `outputs` values.
    pub fn new(key: &Key, hidden: usize, outputs: usize) -> Forecaster {
        let (k1, k2) = key.split2();
        Forecaster {
            lstm: RnnConfig::new(6, hidden).init_lstm(&k1),
            head: LinearConfig::new(hidden, outputs).init(&k2),
        }
    }
    /// `x: [B, window, 6]` → `[B, outputs]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (_, (h, _)) = self.lstm.forward_state(x, None);
        let last = h.narrow(0, h.shape()[0] - 1, 1).squeeze(0);
        self.head.forward(&last)
    }
}

/// Inputs for the windows ending at days `ends` (exclusive) and the targets at those days.
pub struct Windows {
    /// `feat[t]` = the standardised features of day `t` (6 values).
    pub feat: Vec<[f32; 6]>,
    /// `target[t]` = `100·|r_t|` for the three stocks.
    pub target: Vec<[f32; 3]>,
    /// Days of history per window.
    pub window: usize,
}

impl Windows {
    /// Inputs `[B, window, 6]` and targets `[B, 3]` of the windows ending at `ends`.
    pub fn batch(&self, ends: &[usize]) -> (Tensor, Tensor) {
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
pub fn errors(pred: &[[f64; 3]], truth: &[[f64; 3]]) -> (f64, f64) {
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

/// A `[B, 3]` tensor as rows.
pub fn to_rows(t: &Tensor) -> Vec<[f64; 3]> {
    t.to_vec::<f64>().chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
}

/// The outcome of the demo, as printed and saved (`results.json`).
#[derive(Clone, Debug, Serialize)]
pub struct ForecastReport {
    /// Walk-forward (test) days evaluated.
    pub days: usize,
    /// First and last forecast date of the test walk.
    pub test_period: (String, String),
    /// Method name → metrics over the whole test walk: `mae`, `rmse` (volatility forecast vs
    /// realised |return|, percentage points), `var99_exceedance` (pooled over the stocks),
    /// `kupiec_p` (pooled), and per stock `mae_T`, `var99_exceedance_T`, `kupiec_p_T`.
    pub methods: BTreeMap<String, BTreeMap<String, f64>>,
    /// Year → method → the same metrics over that year's test days.
    pub per_year: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
    /// GARCH(1,1) fitted on the training days, per stock.
    pub garch: Vec<(String, Garch)>,
    /// The online policy chosen on the validation walk, and every candidate's score.
    pub online_policy: OnlineChoice,
}

/// The online policy's selection, as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct OnlineChoice {
    /// Name of the chosen policy.
    pub chosen: String,
    /// Validation walk (inside the training years): first and last forecast date.
    pub validation_period: (String, String),
    /// Each candidate's validation MAE.
    pub validation: Vec<forecast_online::Scored>,
}

/// One method's test-walk forecasts: volatility (|return|), 99% VaR and exceedances.
struct Method {
    key: &'static str,
    name: &'static str,
    vol: Vec<[f64; 3]>,
    var: Vec<[f64; 3]>,
    hit: Vec<[bool; 3]>,
}

fn col<T: Copy>(rows: &[[T; 3]], s: usize) -> Vec<T> {
    rows.iter().map(|x| x[s]).collect()
}

/// A method from its scale on the calibration (training) days and the test days: the VaR
/// takes the 1% quantile of the training residuals `r / scale` (see `forecast_risk`). `vol`
/// is its |return| forecast; `None`: the scale times the training mean of `|r| / scale`.
fn method(
    (key, name): (&'static str, &'static str),
    vol: Option<Vec<[f64; 3]>>,
    (r_cal, scale_cal): (&[[f64; 3]], &[[f64; 3]]),
    (r_test, scale_test): (&[[f64; 3]], &[[f64; 3]]),
) -> Method {
    let floor = |rows: &[[f64; 3]]| rows.iter().map(|x| x.map(|v| v.max(MIN_SCALE))).collect::<Vec<_>>();
    let (scale_cal, scale_test) = (floor(scale_cal), floor(scale_test));
    let mut var = vec![[0.0; 3]; r_test.len()];
    let mut hit = vec![[false; 3]; r_test.len()];
    let mut c = [0.0; 3];
    for s in 0..3 {
        let (v, h) =
            forecast_risk::var99(&col(r_cal, s), &col(&scale_cal, s), &col(r_test, s), &col(&scale_test, s));
        for i in 0..r_test.len() {
            (var[i][s], hit[i][s]) = (v[i], h[i]);
        }
        c[s] = r_cal.iter().zip(&scale_cal).map(|(r, x)| r[s].abs() / x[s]).sum::<f64>() / r_cal.len() as f64;
    }
    let vol = vol.unwrap_or_else(|| scale_test.iter().map(|x| [0, 1, 2].map(|s| c[s] * x[s])).collect());
    Method { key, name, vol, var, hit }
}

/// Smallest scale a forecast of |return| is taken to mean (percent), so that a zero or negative
/// forecast still gives a VaR.
const MIN_SCALE: f64 = 0.05;

/// Metrics of `m` over the test days `idx` (see [`ForecastReport::methods`]).
fn method_metrics(m: &Method, truth: &[[f64; 3]], idx: &[usize]) -> BTreeMap<String, f64> {
    let pick = |v: &[[f64; 3]]| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let (mae, rmse) = errors(&pick(&m.vol), &pick(truth));
    let mut out = metrics([("mae", mae), ("rmse", rmse)]);
    let n = idx.len();
    let mut total = 0;
    for (s, t) in TICKERS.iter().enumerate() {
        let x = idx.iter().filter(|&&i| m.hit[i][s]).count();
        total += x;
        let ae = idx.iter().map(|&i| (m.vol[i][s] - truth[i][s]).abs()).sum::<f64>() / n as f64;
        out.insert(format!("mae_{t}"), ae);
        out.insert(format!("var99_exceedance_{t}"), x as f64 / n as f64);
        out.insert(format!("kupiec_p_{t}"), forecast_risk::kupiec(n, x, 0.01).1);
    }
    out.insert("var99_exceedance".into(), total as f64 / (3 * n) as f64);
    out.insert("kupiec_p".into(), forecast_risk::kupiec(3 * n, total, 0.01).1);
    out
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

/// Minibatch training of `model` on the windows ending at `ends` with Adam; the batch's inputs
/// come from `inputs` (their rows sharded across ranks under `--distributed`) and `loss` maps
/// model and inputs to the batch loss. Returns the model and its Adam (moments kept for the
/// online phase). A non-finite loss stops the demo ("diverged at step").
#[allow(clippy::too_many_arguments)]
fn train<M: Params + Clone>(
    common: &Common,
    phase: &str,
    model: M,
    cfg: &ForecastConfig,
    ends: &[usize],
    key: &Key,
    inputs: &dyn Fn(&[usize]) -> Vec<Tensor>,
    loss_fn: &dyn Fn(&M, &[Tensor]) -> Tensor,
    log: &mut MetricsLog,
    history: &mut Vec<(u64, BTreeMap<String, f64>)>,
) -> Result<(M, Adam), DemoError> {
    let opt = Adam::new(&model, AdamConfig { lr: cfg.lr, ..Default::default() });
    // Distributed (`--distributed`): training is data-parallel; the walk-forward phases are
    // sequential by nature and run on every rank alike.
    let par = &common.parallel;
    let mut replica = Replica::new(par, model, opt)?;
    let steps_per_epoch = ends.len().div_ceil(cfg.batch);
    let pb = common::progress((cfg.epochs * steps_per_epoch) as u64, phase, common.quiet);
    let mut step = 0;
    for epoch in 0..cfg.epochs {
        let perm = random::permutation(&key.fold_in(100 + epoch as u64), ends.len()).to_vec::<i64>();
        let mut total = 0.0;
        for chunk in perm.chunks(cfg.batch) {
            let idx: Vec<usize> = chunk.iter().map(|&i| ends[i as usize]).collect();
            let xs: Vec<Tensor> = inputs(&idx).iter().map(|t| par.shard(t)).collect();
            let (loss, g) = value_and_grad(|m: &M| loss_fn(m, &xs))(replica.model());
            let loss = par.mean(loss.item(), idx.len())?;
            common::check_finite(&format!("forecast training ({phase})"), step, loss)?;
            // Clip the global gradient (after the mean over ranks), as one process would.
            replica.step(par, &g, idx.len(), |g| clip_grad_norm(&g, 1.0).0)?;
            total += loss * idx.len() as f64;
            step += 1;
            pb.inc(1);
            pb.set_message(format!("epoch {} loss {:.4}", epoch + 1, loss));
            log.log(json!({"phase": phase, "step": step, "epoch": epoch + 1, "loss": loss}))?;
        }
        let mean = total / ends.len() as f64;
        log.log(json!({"phase": format!("{phase}_epoch"), "epoch": epoch + 1, "loss": mean}))?;
        history.push(((epoch + 1) as u64, metrics([(&*format!("{phase}_loss"), mean)])));
    }
    pb.finish_and_clear();
    Ok(replica.into_parts())
}

/// The hybrid's variance `[B, 3]`: GARCH's `ω m_ω + α r²_{t−1} m_α + β h_{t−1} m_β` with the
/// fitted `ω, α, β`, the fitted GARCH's `h_{t−1}`, and multipliers `m = 2σ(LSTM)` in (0, 2).
/// `xs = [x, α r²_{t−1}, β h_{t−1}, …]` (`[B, 3]` each), `omega: [3]`.
fn hybrid_variance(m: &Forecaster, xs: &[Tensor], omega: &Tensor) -> Tensor {
    let mult = &m.forward(&xs[0]).sigmoid() * 2.0;
    let part = |k: usize| mult.narrow(1, 3 * k, 3);
    &(&(&part(0) * omega) + &(&xs[1] * &part(1))) + &(&xs[2] * &part(2))
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

    // Day t (t ≥ 1) has return r_t = ln(P_t / P_{t-1}); index days by return. Day t's forecast
    // is made from days before t (a window ending at t, exclusive); its date is dates[t + 1].
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
    let key = Key::new(cfg.seed);
    let mse_loss = |m: &Forecaster, xs: &[Tensor]| mse(&m.forward(&xs[0]), &xs[1], Reduction::Mean);
    let xy = |idx: &[usize]| {
        let (x, y) = win.batch(idx);
        vec![x, y]
    };
    let mut epochs = Vec::new();

    // 1. Online policy, chosen on a validation walk inside the training years: a model trained
    //    on the days before it, every candidate walked over it.
    let val_start = train_end - cfg.val_days.min(train_end - cfg.window - cfg.batch);
    let val_days: Vec<usize> = (val_start..train_end).collect();
    let val_ends: Vec<usize> = (cfg.window..val_start).collect();
    // The LSTM (MSE on |return|), trained the same way for validation and for the test.
    let train_lstm = |phase: &str, ends: &[usize], seed: &Key, log: &mut MetricsLog, history: &mut Vec<_>| {
        let model = Forecaster::new(&key.fold_in(1), cfg.hidden, 3);
        train(common, phase, model, &cfg, ends, seed, &xy, &mse_loss, log, history)
    };
    let (val_model, val_opt) =
        train_lstm("train_validation", &val_ends, &key.fold_in(2), &mut log, &mut Vec::new())?;
    let (best, scored) =
        forecast_online::select(&val_model, &val_opt, &win, &val_days, &key.fold_in(3), common.quick)?;
    for s in &scored {
        log.log(json!({"phase": "policy_validation", "policy": s.policy.name, "mae": s.mae,
            "updates": s.updates, "final_lr": s.final_lr}))?;
    }
    let policy = scored[best].policy.clone();

    // 2. The LSTM on all training days.
    let ends: Vec<usize> = (cfg.window..train_end).collect();
    let (frozen, train_opt) = train_lstm("train", &ends, &key, &mut log, &mut epochs)?;

    // 3. GARCH(1,1) per stock on the training days; its variance over all days.
    let mut garch = Vec::new();
    let mut h = vec![[0.0; 3]; days + 1];
    for (s, t) in TICKERS.iter().enumerate() {
        let rs = col(&r[..train_end], s);
        let (g, nll) = forecast_risk::fit(&rs);
        log.log(json!({"phase": "garch", "stock": t, "fit": g, "nll_per_day": nll}))?;
        for (i, v) in g.filter(&col(&r, s), forecast_risk::initial_variance(&rs)).into_iter().enumerate() {
            h[i][s] = v;
        }
        garch.push((t.to_string(), g));
    }

    // 4. The hybrid: an LSTM modulating GARCH's ω, α, β day by day, trained by Gaussian
    //    maximum likelihood from the fitted GARCH (multipliers near 1 at the start).
    let omega = Tensor::from_vec(garch.iter().map(|g| g.1.omega as f32).collect(), &[3]);
    let hybrid_inputs = |idx: &[usize]| {
        let f = |v: &dyn Fn(usize, usize) -> f64| {
            Tensor::from_vec(
                idx.iter().flat_map(|&e| [0, 1, 2].map(|s| v(e, s) as f32)).collect(),
                &[idx.len(), 3],
            )
        };
        vec![
            win.batch(idx).0,
            f(&|e, s| garch[s].1.alpha * r[e - 1][s].powi(2)),
            f(&|e, s| garch[s].1.beta * h[e - 1][s]),
            f(&|e, s| r[e][s].powi(2)),
        ]
    };
    let hybrid_loss = |m: &Forecaster, xs: &[Tensor]| {
        let v = hybrid_variance(m, xs, &omega);
        (&v.log() + &(&xs[3] / &v)).mean()
    };
    let mut hybrid_epochs = Vec::new();
    let (hybrid, _) = train(
        common,
        "train_hybrid",
        Forecaster::new(&key.fold_in(4), cfg.hidden, 9),
        &cfg,
        &ends,
        &key.fold_in(5),
        &hybrid_inputs,
        &hybrid_loss,
        &mut log,
        &mut hybrid_epochs,
    )?;
    for ((_, m), (_, hm)) in epochs.iter_mut().zip(hybrid_epochs) {
        m.extend(hm);
    }

    // 5. Walk-forward over the test days with the chosen policy.
    let last = cfg.walk_days.map_or(days, |n| (train_end + n).min(days));
    let walk: Vec<usize> = (train_end..last).collect();
    let frozen_pred = to_rows(&frozen.forward(&win.batch(&walk).0).cast(DType::F64));
    let pb = common::progress(walk.len() as u64, "walk", common.quiet);
    let w =
        forecast_online::walk(&frozen, &train_opt, &policy, &win, &walk, &key.fold_in(6), &mut |i, p| {
            let t = walk[i];
            let ae = |p: &[f64; 3]| (0..3).map(|s| (p[s] - truth(t)[s]).abs()).sum::<f64>() / 3.0;
            pb.inc(1);
            observe(ae(&p), ae(&frozen_pred[i])).map_err(DemoError::from)
        })?;
    pb.finish_and_clear();
    for (t, loss, lr) in &w.losses {
        log.log(json!({"phase": "walk", "day": dates[t + 1], "online_loss": loss, "lr": lr}))?;
    }
    let (model, online_pred) = (w.model, w.pred);
    log.finish()?;

    // 6. Every method's volatility and VaR on the test days, calibrated on the training days.
    let r_cal: Vec<[f64; 3]> = ends.iter().map(|&t| r[t]).collect();
    let r_test: Vec<[f64; 3]> = walk.iter().map(|&t| r[t]).collect();
    let truth_rows: Vec<[f64; 3]> = walk.iter().map(|&t| truth(t)).collect();
    let persistence = |d: &[usize]| d.iter().map(|&t| truth(t - 1)).collect::<Vec<_>>();
    let train_mean = [0, 1, 2].map(|s| (0..train_end).map(|t| truth(t)[s]).sum::<f64>() / train_end as f64);
    let coef: Vec<Vec<f64>> = (0..3).map(|s| ar_fit(&win.target, s, cfg.ar_order, train_end)).collect();
    let ar = |d: &[usize]| -> Vec<[f64; 3]> {
        d.iter()
            .map(|&t| {
                [0, 1, 2].map(|s| {
                    coef[s][0] + (1..=cfg.ar_order).map(|k| coef[s][k] * truth(t - k)[s]).sum::<f64>()
                })
            })
            .collect()
    };
    let sigma = |d: &[usize]| d.iter().map(|&t| h[t].map(f64::sqrt)).collect::<Vec<_>>();
    let hybrid_sigma =
        |d: &[usize]| to_rows(&hybrid_variance(&hybrid, &hybrid_inputs(d), &omega).sqrt().cast(DType::F64));
    let frozen_cal = to_rows(&frozen.forward(&win.batch(&ends).0).cast(DType::F64));
    // `direct`: the forecast is itself the |return| forecast (else scaled, see `method`).
    let mk = |key, name, direct: bool, cal: Vec<[f64; 3]>, test: Vec<[f64; 3]>| {
        method((key, name), direct.then(|| test.clone()), (&r_cal, &cal), (&r_test, &test))
    };
    let (n_cal, n_test) = (ends.len(), walk.len());
    let methods = [
        mk("persistence", "persistence (tomorrow = today)", true, persistence(&ends), persistence(&walk)),
        mk(
            "train_mean",
            "training mean (VaR: historical simulation)",
            true,
            vec![train_mean; n_cal],
            vec![train_mean; n_test],
        ),
        mk("ar", "AR(10) of |return|, least squares", true, ar(&ends), ar(&walk)),
        mk("garch", "GARCH(1,1), maximum likelihood (L-BFGS)", false, sigma(&ends), sigma(&walk)),
        mk("lstm_frozen", "LSTM, frozen after training", true, frozen_cal.clone(), frozen_pred.clone()),
        mk("lstm_online", "LSTM, online updates (chosen policy)", true, frozen_cal, online_pred.clone()),
        mk(
            "hybrid",
            "hybrid: GARCH modulated by an LSTM (max. likelihood)",
            false,
            hybrid_sigma(&ends),
            hybrid_sigma(&walk),
        ),
    ];
    let all: Vec<usize> = (0..walk.len()).collect();
    let by_method: BTreeMap<String, BTreeMap<String, f64>> =
        methods.iter().map(|m| (m.key.to_string(), method_metrics(m, &truth_rows, &all))).collect();
    let year = |i: usize| dates[walk[i] + 1].get(..4).unwrap_or("?").to_string();
    let mut years: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for i in 0..walk.len() {
        years.entry(year(i)).or_default().push(i);
    }
    let per_year = years
        .iter()
        .map(|(y, idx)| {
            (
                y.clone(),
                methods.iter().map(|m| (m.key.to_string(), method_metrics(m, &truth_rows, idx))).collect(),
            )
        })
        .collect();
    let report = ForecastReport {
        days: walk.len(),
        test_period: (dates[walk[0] + 1].clone(), dates[walk[walk.len() - 1] + 1].clone()),
        methods: by_method,
        per_year,
        garch,
        online_policy: OnlineChoice {
            chosen: policy.name.clone(),
            validation_period: (dates[val_start + 1].clone(), dates[train_end].clone()),
            validation: scored,
        },
    };
    let summary =
        forecast_report::summary(&report, &methods.iter().map(|m| (m.key, m.name)).collect::<Vec<_>>());
    dir.write("results.md", &summary)?;
    dir.write_json("results.json", &report)?;

    let mut meta = BTreeMap::new();
    meta.insert("demo".to_string(), "forecast".to_string());
    meta.insert("seed".to_string(), cfg.seed.to_string());
    adjoint_nn::checkpoint::save(dir.file("model.safetensors"), &model, &meta).map_err(|e| e.to_string())?;

    let series: Vec<forecast_report::MethodSeries> =
        methods.iter().map(|m| (m.name, m.vol.as_slice(), m.var.as_slice())).collect();
    forecast_report::plots(&dir, &truth_rows, &r_test, &series)?;
    println!("forecast: {summary}");
    println!("forecast: run folder {}", dir.path.display());
    let mut final_metrics = BTreeMap::new();
    for (k, m) in &report.methods {
        for (name, v) in m {
            final_metrics.insert(format!("{k}_{name}"), *v);
        }
    }
    let checkpoints = vec![(dir.file("model.safetensors"), "online-model".to_string())];
    let online = methods.iter().find(|m| m.key == "lstm_online").expect("online method");
    let mut eval =
        evaluation(&model, &win, &walk, &dates, (&online_pred, &truth_rows), &online.hit, train_end);
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

/// The online model's evaluation record: slices per stock and per year, 99% VaR exceedances
/// (`hits`, from the demo's VaR), drift of the six input features from the training
/// days to the walk-forward days, and integrated-gradients attributions per feature over the
/// walk-forward days.
fn evaluation(
    model: &Forecaster,
    win: &Windows,
    walk: &[usize],
    dates: &[String],
    (pred, truth): (&[[f64; 3]], &[[f64; 3]]),
    hits: &[[bool; 3]],
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
    for (((p, t), &day), hit) in pred.iter().zip(truth).zip(walk).zip(hits) {
        let year = dates[day + 1].get(..4).unwrap_or("?").to_string();
        let mut day_ae = 0.0;
        for s in 0..3 {
            let ae = (p[s] - t[s]).abs();
            by_stock.push((TICKERS[s].to_string(), vec![ae, ae * ae]));
            day_ae += ae / 3.0;
            var[s].0 += 1;
            var[s].1 += u64::from(hit[s]);
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
            predicted: 0.01,
            observed: k as f64 / n as f64,
            count: n,
        })
        .collect();
    ev.calibration = vec![adjoint_store::Calibration::new(
        "99% VaR exceedances (AAPL, IBM, MSFT)",
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
