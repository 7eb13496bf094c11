//! Walk-forward with online updates for `adjoint demo forecast`, and the choice of the online
//! policy on a validation walk inside the training years.
//!
//! A [`Policy`] says what the walk does after each block of `every` days, once their truth is
//! known: `steps` Adam steps (through [`adjoint_nn::train::train_step`]: gradient health,
//! non-finite stop, clipping at norm 1) on the `recent` most recent windows plus `replay`
//! windows drawn uniformly from all older ones, with an L2 pull `l2·Σ(θ − θ₀)²` toward the
//! weights the walk started from; the optimizer either continues the training run's Adam
//! (moment estimates kept) or starts a fresh one. Between updates the model is fixed, so a
//! block's forecasts are one batched forward.
//!
//! Why these knobs: the original policy (fresh Adam, 2 steps every day on 32 overlapping recent
//! windows) took ~4× more steps than the whole initial training, on nearly identical batches,
//! with reset moment estimates — it drifted away from the trained weights and lost to the
//! frozen model. The candidates here bound the drift (fewer, smaller steps; replay; pull) and
//! the frozen model is itself a candidate (`lr = 0`), so the validation walk can say "don't".

use adjoint_core::{DType, Params};
use adjoint_nn::loss::{mse, Reduction};
use adjoint_nn::optim::{Adam, AdamConfig, Optimizer};
use adjoint_nn::train::{train_step, StepConfig};
use adjoint_tensor::random::Key;
use serde::Serialize;

use super::common::{metrics, DemoError};
use super::forecast::{errors, to_rows, Forecaster, Windows};

/// An online-update policy (see the module page).
#[derive(Clone, Debug, Serialize)]
pub struct Policy {
    /// Short name, as reported.
    pub name: String,
    /// Adam learning rate (0: never update, the frozen model).
    pub lr: f64,
    /// Update after every this many days.
    pub every: usize,
    /// Adam steps per update.
    pub steps: usize,
    /// Most recent windows in each update batch.
    pub recent: usize,
    /// Older windows drawn uniformly into each update batch (replay).
    pub replay: usize,
    /// Weight of the L2 pull toward the starting weights.
    pub l2: f64,
    /// Continue the training run's Adam state (else a fresh Adam).
    pub keep_adam: bool,
    /// Hypergradient rate κ of the learning rate (0: fixed lr); see [`walk`].
    pub hyper: f64,
}

/// The candidate policies compared on the validation walk; `quick` keeps the cheap ones.
pub fn candidates(quick: bool) -> Vec<Policy> {
    let p = |name: &str, lr, every, steps, recent, replay, l2, keep_adam| Policy {
        name: name.into(),
        lr,
        every,
        steps,
        recent,
        replay,
        l2,
        keep_adam,
        hyper: 0.0,
    };
    let mut v = vec![
        p("frozen (no updates)", 0.0, 1, 0, 0, 0, 0.0, false),
        p("keep Adam, lr 1e-4, every 5 days, 32 recent + 32 replay, L2 1e-3", 1e-4, 5, 1, 32, 32, 1e-3, true),
        p("keep Adam, lr 3e-4, every 5 days, 32 recent + 32 replay, L2 1e-3", 3e-4, 5, 1, 32, 32, 1e-3, true),
        p(
            "keep Adam, lr 3e-4, every 20 days, 2 steps, 32 recent + 96 replay",
            3e-4,
            20,
            2,
            32,
            96,
            0.0,
            true,
        ),
        Policy {
            hyper: 0.1,
            ..p(
                "keep Adam, hypergradient lr from 3e-4 (κ 0.1), every 5 days, 32 recent + 32 replay, L2 1e-3",
                3e-4,
                5,
                1,
                32,
                32,
                1e-3,
                true,
            )
        },
    ];
    if !quick {
        // The original policy, for the record.
        v.push(p(
            "fresh Adam, lr 5e-4, daily, 2 steps on 32 recent (original)",
            5e-4,
            1,
            2,
            32,
            0,
            0.0,
            false,
        ));
    }
    v
}

/// What a walk produced.
pub struct Walk {
    /// The model at the end.
    pub model: Forecaster,
    /// Forecasts, one row per day of the walk.
    pub pred: Vec<[f64; 3]>,
    /// `(day, loss, learning rate)` of each update.
    pub losses: Vec<(usize, f64, f64)>,
}

/// Walk forward over `days` from `model` (trained with `opt`): forecast each day, call
/// `observe(i, forecast)`, update by `policy`. `seed` draws the replay windows.
///
/// With `policy.hyper = κ > 0` the learning rate is learned online by hypergradient descent
/// (Baydin et al. 2018): the last update moved the weights by `d = θ_k − θ_{k−1}`, and Adam's
/// step is linear in its learning rate (the moments do not depend on it), so the derivative of
/// the new batch's loss through that step is exactly `∂L(θ_k)/∂lr = ∇L(θ_k)·d / lr` — no
/// differentiation through the optimizer is needed. The update is multiplicative and
/// normalised, `lr ← lr·exp(−κ·cos(∇L, d))`, clamped to [1e-6, 1e-2].
pub fn walk(
    model: &Forecaster,
    opt: &Adam,
    policy: &Policy,
    win: &Windows,
    days: &[usize],
    seed: &Key,
    observe: &mut dyn FnMut(usize, [f64; 3]) -> Result<(), DemoError>,
) -> Result<Walk, DemoError> {
    let anchor = model.clone();
    let mut model = model.clone();
    let mut opt = if policy.keep_adam {
        let mut o = opt.clone();
        o.set_lr(policy.lr);
        o
    } else {
        Adam::new(&model, AdamConfig { lr: policy.lr, ..Default::default() })
    };
    let step_cfg = StepConfig { clip_grad_norm: Some(1.0), ..Default::default() };
    let (mut pred, mut losses) = (Vec::with_capacity(days.len()), Vec::new());
    let mut i = 0;
    let mut step = 0;
    let mut lr = policy.lr;
    let mut last_move: Option<Vec<adjoint_core::Tensor>> = None;
    while i < days.len() {
        let k = if policy.lr > 0.0 { policy.every.min(days.len() - i) } else { days.len() - i };
        let block = &days[i..i + k];
        let (x, _) = win.batch(block);
        for (j, row) in to_rows(&model.forward(&x).cast(DType::F64)).into_iter().enumerate() {
            observe(i + j, row)?;
            pred.push(row);
        }
        i += k;
        if policy.lr == 0.0 {
            continue;
        }
        // Truth is known through day t: windows ending at or before t.
        let t = block[k - 1];
        let lo = (t + 1).saturating_sub(policy.recent).max(win.window);
        let mut ends: Vec<usize> = (lo..=t).collect();
        if lo > win.window && policy.replay > 0 {
            let span = (lo - win.window) as u64;
            ends.extend(
                seed.fold_in(t as u64)
                    .bits(policy.replay)
                    .iter()
                    .map(|&b| win.window + (b as u64 % span) as usize),
            );
        }
        let (xr, yr) = win.batch(&ends);
        let anchor_leaves = anchor.leaves();
        let loss_fn = |m: &Forecaster| {
            let fit = mse(&m.forward(&xr), &yr, Reduction::Mean);
            if policy.l2 == 0.0 {
                return fit;
            }
            let pull = m
                .leaves()
                .iter()
                .zip(&anchor_leaves)
                .map(|(p, a)| (p - a).square().sum())
                .reduce(|a, b| &a + &b)
                .expect("parameters");
            &fit + &(&pull * policy.l2)
        };
        if let (true, Some(d)) = (policy.hyper > 0.0, &last_move) {
            let (_, g) = adjoint_core::value_and_grad(loss_fn)(&model);
            let (mut gd, mut gg, mut dd) = (0.0, 0.0, 0.0);
            for (g, d) in g.leaves().iter().zip(d) {
                gd += (g * d).sum().item();
                gg += g.square().sum().item();
                dd += d.square().sum().item();
            }
            let cos = gd / (gg.sqrt() * dd.sqrt()).max(1e-30);
            lr = (lr * (-policy.hyper * cos).exp()).clamp(1e-6, 1e-2);
            opt.set_lr(lr);
        }
        let before = model.leaves();
        for _ in 0..policy.steps {
            step += 1;
            let out = train_step(&model, &mut opt, step, &step_cfg, loss_fn).map_err(|e| DemoError {
                message: format!("forecast online update diverged at step {step}: {e}"),
                metrics: metrics([("diverged_at_step", step as f64)]),
            })?;
            model = out.model;
            losses.push((t, out.stats.loss, lr));
        }
        last_move = Some(model.leaves().iter().zip(&before).map(|(a, b)| a - b).collect());
    }
    Ok(Walk { model, pred, losses })
}

/// Mean absolute error of `pred` against the targets of `days` over the three stocks.
pub fn mae(win: &Windows, days: &[usize], pred: &[[f64; 3]]) -> f64 {
    let truth: Vec<[f64; 3]> = days.iter().map(|&t| win.target[t].map(f64::from)).collect();
    errors(pred, &truth).0
}

/// The validation score of one candidate.
#[derive(Clone, Debug, Serialize)]
pub struct Scored {
    /// The policy.
    pub policy: Policy,
    /// Its MAE on the validation walk.
    pub mae: f64,
    /// Its updates on the validation walk.
    pub updates: usize,
    /// Its learning rate at the end of the validation walk (moves only with a hypergradient).
    pub final_lr: f64,
}

/// Run every candidate on the validation walk `days` from `model`/`opt` (trained on the days
/// before them) and return the scores, the lowest MAE first among equals in list order.
pub fn select(
    model: &Forecaster,
    opt: &Adam,
    win: &Windows,
    days: &[usize],
    seed: &Key,
    quick: bool,
) -> Result<(usize, Vec<Scored>), DemoError> {
    let mut scored = Vec::new();
    for policy in candidates(quick) {
        let w = walk(model, opt, &policy, win, days, seed, &mut |_, _| Ok(()))?;
        let final_lr = w.losses.last().map_or(policy.lr, |l| l.2);
        scored.push(Scored { mae: mae(win, days, &w.pred), updates: w.losses.len(), final_lr, policy });
    }
    let best = (0..scored.len()).fold(0, |b, i| if scored[i].mae < scored[b].mae { i } else { b });
    Ok((best, scored))
}
