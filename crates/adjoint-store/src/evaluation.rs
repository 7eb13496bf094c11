//! Evaluation records: how a checkpoint did on which data, overall and per slice, with
//! calibration, input distributions (for drift) and attributions.
//!
//! An [`Evaluation`] is signed and stored as a record of kind `evaluation` whose subject is the
//! evaluated checkpoint's SHA-256 ([`Registry::record_evaluation`]); a model version therefore
//! carries the evaluations of its checkpoint. The data it was evaluated on is named by content
//! hash ([`DataRecord`]). The store does not compute metrics — the code that owns the model
//! does — but it owns the arithmetic that audits and gates compare: the population stability
//! index of each feature ([`FeatureDistribution::psi`]), slice ordering and gaps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::keys::Signer;
use crate::manifest::{metrics_serde, DataRecord, Metrics};
use crate::registry::Registry;

/// A named subset of the evaluation data (`stock=AAPL`, `year=2011`, `digit=7`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// `group=value`, e.g. `stock=AAPL`.
    pub name: String,
    /// Examples in the slice.
    pub n: u64,
    /// Metric values on the slice.
    #[serde(with = "metrics_serde")]
    pub metrics: Metrics,
}

/// One bin of a reliability diagram or interval check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// What the bin is (a group name for exceedances; empty for probability bins).
    #[serde(default)]
    pub label: String,
    /// Mean predicted probability (or nominal rate) in the bin.
    pub predicted: f64,
    /// Observed frequency in the bin.
    pub observed: f64,
    /// Examples in the bin.
    pub count: u64,
}

/// Calibration of a probability or interval output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// What is calibrated, e.g. `confidence` or `VaR 95% (AAPL)`.
    pub name: String,
    /// `reliability` (probability bins) or `var-exceedance` (interval misses).
    pub kind: String,
    /// Bins (reliability) or one row per group (exceedances: predicted = nominal rate).
    pub bins: Vec<CalibrationBin>,
    /// Expected calibration error: count-weighted mean |predicted − observed|.
    pub ece: f64,
}

impl Calibration {
    /// A calibration summary with its ECE computed from the bins.
    ///
    /// ```
    /// use adjoint_store::{Calibration, CalibrationBin};
    /// let bin = |p, o, n| CalibrationBin { label: String::new(), predicted: p, observed: o, count: n };
    /// let c = Calibration::new("confidence", "reliability", vec![bin(0.9, 0.8, 10), bin(0.5, 0.5, 30)]);
    /// assert!((c.ece - 0.025).abs() < 1e-12);
    /// ```
    pub fn new(name: &str, kind: &str, bins: Vec<CalibrationBin>) -> Calibration {
        let n: u64 = bins.iter().map(|b| b.count).sum();
        let ece = if n == 0 {
            0.0
        } else {
            bins.iter().map(|b| b.count as f64 * (b.predicted - b.observed).abs()).sum::<f64>() / n as f64
        };
        Calibration { name: name.into(), kind: kind.into(), bins, ece }
    }
}

/// One input feature's histogram on the training data and on the evaluation data, on the same
/// bin edges (deciles of the training values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureDistribution {
    /// Feature name.
    pub name: String,
    /// Inner bin edges (bins are `(-inf, e0], (e0, e1], …, (e_last, inf)`).
    pub edges: Vec<f64>,
    /// Training counts per bin.
    pub train: Vec<u64>,
    /// Evaluation counts per bin.
    pub eval: Vec<u64>,
}

impl FeatureDistribution {
    /// Histograms of `train` and `eval` on the `bins`-quantile edges of `train` (non-finite
    /// values are left out).
    ///
    /// ```
    /// use adjoint_store::FeatureDistribution;
    /// let train: Vec<f64> = (0..1000).map(|i| i as f64).collect();
    /// let same = FeatureDistribution::from_samples("x", &train, &train, 10);
    /// assert!(same.psi() < 1e-12);
    /// let shifted: Vec<f64> = train.iter().map(|x| x + 500.0).collect();
    /// assert!(FeatureDistribution::from_samples("x", &train, &shifted, 10).psi() > 1.0);
    /// ```
    pub fn from_samples(name: &str, train: &[f64], eval: &[f64], bins: usize) -> FeatureDistribution {
        let mut sorted: Vec<f64> = train.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = (1..bins.max(1))
            .filter_map(|k| sorted.get((k * sorted.len() / bins.max(1)).min(sorted.len().saturating_sub(1))))
            .copied()
            .collect();
        edges.dedup();
        let hist = |v: &[f64]| {
            let mut h = vec![0u64; edges.len() + 1];
            for x in v.iter().filter(|x| x.is_finite()) {
                h[edges.partition_point(|e| e < x)] += 1;
            }
            h
        };
        FeatureDistribution { name: name.into(), train: hist(train), eval: hist(eval), edges }
    }

    /// Population stability index `Σ (e − t)·ln(e / t)` over bins of the two distributions
    /// (proportions floored at 1e-4 so empty bins stay finite). Rule of thumb: < 0.1 stable,
    /// 0.1–0.25 moderate shift, > 0.25 major shift.
    pub fn psi(&self) -> f64 {
        let (nt, ne) = (self.train.iter().sum::<u64>() as f64, self.eval.iter().sum::<u64>() as f64);
        if nt == 0.0 || ne == 0.0 {
            return 0.0;
        }
        self.train
            .iter()
            .zip(&self.eval)
            .map(|(t, e)| {
                let (t, e) = ((*t as f64 / nt).max(1e-4), (*e as f64 / ne).max(1e-4));
                (e - t) * (e / t).ln()
            })
            .sum()
    }
}

/// A stored attribution map (values row-major with `shape`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// What it explains, e.g. `validation tile 3` or `per-feature over walk-forward days`.
    pub name: String,
    /// `integrated-gradients`, `gradient-x-input`, `smoothgrad`.
    pub method: String,
    /// Shape of `values`, e.g. `[64, 64]` or `[days, features]`.
    pub shape: Vec<usize>,
    /// Labels of the last axis (feature names), when it has them.
    pub labels: Vec<String>,
    /// Values, row-major.
    pub values: Vec<f32>,
    /// Largest integrated-gradients completeness error, when checked.
    pub completeness_error: Option<f64>,
}

/// The spread of one slice group on the primary metric ([`Evaluation::slice_gaps`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceGap {
    /// The group (`stock`, `year`, `digit`).
    pub group: String,
    /// Its worst slice.
    pub worst: String,
    /// Its best slice.
    pub best: String,
    /// `|best − worst|`.
    pub gap: f64,
}

/// An evaluation of one checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// SHA-256 of the evaluated checkpoint (filled in by [`Registry::record_evaluation`] callers).
    pub checkpoint: String,
    /// What was evaluated, e.g. `forecast walk-forward`.
    pub name: String,
    /// The evaluation data, by content hash (a name may describe the split).
    pub data: Vec<DataRecord>,
    /// The headline metric slices are ranked by, e.g. `mae`.
    pub primary_metric: String,
    /// Whether a larger primary metric is better (accuracy, Dice) or worse (error).
    pub higher_is_better: bool,
    /// Overall metrics.
    #[serde(with = "metrics_serde")]
    pub metrics: Metrics,
    /// Per-slice metrics.
    pub slices: Vec<Slice>,
    /// Calibration of probability or interval outputs.
    pub calibration: Vec<Calibration>,
    /// Input distributions, training vs evaluation.
    pub features: Vec<FeatureDistribution>,
    /// Attribution maps.
    pub attributions: Vec<Attribution>,
}

impl Evaluation {
    /// An evaluation with overall metrics only (add slices, calibration, … to the fields).
    pub fn new(name: &str, primary_metric: &str, higher_is_better: bool, metrics: Metrics) -> Evaluation {
        Evaluation {
            checkpoint: String::new(),
            name: name.into(),
            data: Vec::new(),
            primary_metric: primary_metric.into(),
            higher_is_better,
            metrics,
            slices: Vec::new(),
            calibration: Vec::new(),
            features: Vec::new(),
            attributions: Vec::new(),
        }
    }

    /// Slices that have the primary metric, worst first (ties by name).
    pub fn slices_worst_first(&self) -> Vec<&Slice> {
        let key = |s: &Slice| s.metrics.get(&self.primary_metric).copied().unwrap_or(f64::NAN);
        let mut v: Vec<&Slice> = self.slices.iter().filter(|s| key(s).is_finite()).collect();
        v.sort_by(|a, b| {
            let o = key(a).total_cmp(&key(b));
            (if self.higher_is_better { o } else { o.reverse() }).then_with(|| a.name.cmp(&b.name))
        });
        v
    }

    /// Per slice group (the part of a slice name before `=`: `stock`, `year`), the worst and
    /// best slice and the gap `|best − worst|` on the primary metric, in group name order.
    ///
    /// ```
    /// use adjoint_store::{Evaluation, Slice, SliceGap};
    /// let s = |n: &str, v| Slice { name: n.into(), n: 1, metrics: [("mae".to_string(), v)].into() };
    /// let mut e = Evaluation::new("e", "mae", false, Default::default());
    /// e.slices = vec![s("stock=A", 1.0), s("stock=B", 3.0), s("year=2008", 2.0)];
    /// assert_eq!(e.slice_gaps(), vec![SliceGap { group: "stock".into(), worst: "stock=B".into(), best: "stock=A".into(), gap: 2.0 },
    ///                                 SliceGap { group: "year".into(), worst: "year=2008".into(), best: "year=2008".into(), gap: 0.0 }]);
    /// ```
    pub fn slice_gaps(&self) -> Vec<SliceGap> {
        let m = &self.primary_metric;
        let mut groups: BTreeMap<&str, Vec<&Slice>> = BTreeMap::new();
        for s in self.slices_worst_first() {
            groups.entry(s.name.split_once('=').map_or(s.name.as_str(), |(g, _)| g)).or_default().push(s);
        }
        groups
            .into_iter()
            .map(|(g, v)| {
                let (w, b) = (v[0], v[v.len() - 1]);
                SliceGap {
                    group: g.into(),
                    worst: w.name.clone(),
                    best: b.name.clone(),
                    gap: (b.metrics[m] - w.metrics[m]).abs(),
                }
            })
            .collect()
    }

    /// Per-slice metric values by slice name.
    pub fn slice_map(&self) -> BTreeMap<&str, &Metrics> {
        self.slices.iter().map(|s| (s.name.as_str(), &s.metrics)).collect()
    }
}

impl Registry {
    /// Signs and stores `eval` as an evaluation of its checkpoint (which must be a checkpoint
    /// of this registry). Data it names must be readable by `by` (see [`Registry::check_data_access`]).
    /// Returns the record id.
    pub fn record_evaluation(&self, eval: &Evaluation, by: &Signer) -> Result<i64> {
        self.require_trusted(&by.key_id(), &format!("evaluation of {}", eval.checkpoint))?;
        self.check_checkpoint_signed(&eval.checkpoint).map_err(|e| match e {
            StoreError::NotFound(_) => {
                StoreError::NotFound(format!("checkpoint {} to attach an evaluation to", eval.checkpoint))
            }
            e => e,
        })?;
        let hashes: Vec<&str> = eval.data.iter().map(|d| d.sha256.as_str()).collect();
        self.check_data_access(&hashes, by, "record an evaluation on")?;
        self.append_record("evaluation", &eval.checkpoint, eval, by, &[])
    }

    /// The newest evaluation of the checkpoint `spec` resolves to (`None` when it has none).
    pub fn latest_evaluation(&self, spec: &str) -> Result<Option<Evaluation>> {
        let sha = self.resolve(spec)?;
        let Some(rec) = self.latest_record("evaluation", &sha)? else { return Ok(None) };
        let e: Evaluation = rec.parse()?;
        if e.checkpoint != sha {
            return Err(StoreError::corrupt(
                format!("evaluation record #{}", rec.id),
                format!("names checkpoint {} but is filed under {sha}", e.checkpoint),
            ));
        }
        Ok(Some(e))
    }
}
