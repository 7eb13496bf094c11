//! The one timing loop of adjoint's benchmarks: warm-ups (the fastest of them estimates one
//! call), then timed samples, each a batch of iterations sized to last at least
//! `min_sample`; median, 10th and 90th percentile of the per-iteration times. The workload
//! suite (`measure.rs`) and the examples `bench_suite`, `anomaly_overhead`, `train_bench` and
//! `linalg_bench` all use it (the examples include this file with `#[path]`, as `train_bench`
//! includes `steps.rs`), so every adjoint number is timed the same way. A figure judged as a
//! fraction of a reference run on the same machine (the 16M add and exp against a copy) is
//! timed alternately with that reference, [`measure_pair`], not seconds apart from it.
//! Standard library only.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How many warm-ups and samples to take.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Untimed iterations before the first sample.
    pub warmups: usize,
    /// Timed samples (each a batch of iterations).
    pub samples: usize,
    /// A batch lasts at least this long.
    pub min_sample: Duration,
}

impl Plan {
    /// 5 warm-ups and 20 samples of ≥ 10 ms; `quick`: 2 and 5.
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan { warmups: 2, samples: 5, min_sample: Duration::from_millis(10) }
        } else {
            Plan { warmups: 5, samples: 20, min_sample: Duration::from_millis(10) }
        }
    }
}

/// Median and spread of the per-unit time, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Median.
    pub median_s: f64,
    /// 10th percentile.
    pub p10_s: f64,
    /// 90th percentile.
    pub p90_s: f64,
    /// Iterations per sample.
    pub batch: usize,
    /// Timed samples.
    pub samples: usize,
}

/// The `q`-quantile of sorted values, interpolated linearly (NumPy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Times `f`; each call counts as `units` units (W1 reports seconds per op).
pub fn measure<R>(plan: Plan, units: f64, f: impl FnMut() -> R) -> Stats {
    measure_with(plan, units, f, || ()).0
}

/// [`measure`], calling `before_samples` after the warm-ups and right before the first timed
/// sample (to read memory or CPU counters over the samples only); returns its value and the
/// wall-clock seconds the samples took.
pub fn measure_with<R, T>(
    plan: Plan,
    units: f64,
    mut f: impl FnMut() -> R,
    before_samples: impl FnOnce() -> T,
) -> (Stats, T, f64) {
    let batch = warm_up(plan, &mut f);
    let before = before_samples();
    let wall = Instant::now();
    let per: Vec<f64> = (0..plan.samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                black_box(f());
            }
            t.elapsed().as_secs_f64() / batch as f64 / units
        })
        .collect();
    let wall = wall.elapsed().as_secs_f64();
    (stats(per, batch), before, wall)
}

/// Times `f` and `g` alternately — a batch of `f`, then a batch of `g`, per sample — so that
/// both see the machine in the same state. On a shared host the memory bandwidth drifts by 30%
/// and more within a minute (`benches/LOG.md`, 2026-12-08: a 16M copy on two threads 1.95 to
/// 2.57 ms in one minute), so a ratio of two figures timed seconds apart says as much about the
/// host as about the code; for a ratio to a reference (an op against a copy of the same bytes),
/// measure the pair with this. Returns the statistics of `f` and of `g`, each per call.
#[allow(dead_code)] // bench_suite includes this file and uses it; this crate's own binary does not
pub fn measure_pair<R, S>(plan: Plan, mut f: impl FnMut() -> R, mut g: impl FnMut() -> S) -> (Stats, Stats) {
    let (batch_f, batch_g) = (warm_up(plan, &mut f), warm_up(plan, &mut g));
    let (mut per_f, mut per_g) = (Vec::with_capacity(plan.samples), Vec::with_capacity(plan.samples));
    for _ in 0..plan.samples {
        let t = Instant::now();
        for _ in 0..batch_f {
            black_box(f());
        }
        per_f.push(t.elapsed().as_secs_f64() / batch_f as f64);
        let t = Instant::now();
        for _ in 0..batch_g {
            black_box(g());
        }
        per_g.push(t.elapsed().as_secs_f64() / batch_g as f64);
    }
    (stats(per_f, batch_f), stats(per_g, batch_g))
}

/// The warm-up calls of `f`; the fastest estimates one call, which sizes a sample's batch.
fn warm_up<R>(plan: Plan, f: &mut impl FnMut() -> R) -> usize {
    let mut one = Duration::MAX;
    for _ in 0..plan.warmups.max(1) {
        let t = Instant::now();
        black_box(f());
        one = one.min(t.elapsed());
    }
    (plan.min_sample.as_secs_f64() / one.as_secs_f64().max(1e-9)).ceil().clamp(1.0, 1e7) as usize
}

/// Median, percentiles and counts of per-unit sample times.
fn stats(mut per: Vec<f64>, batch: usize) -> Stats {
    per.sort_by(f64::total_cmp);
    Stats {
        median_s: quantile(&per, 0.5),
        p10_s: quantile(&per, 0.1),
        p90_s: quantile(&per, 0.9),
        batch,
        samples: per.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.1) - 1.4).abs() < 1e-12);
        assert!((quantile(&v, 0.9) - 4.6).abs() < 1e-12);
        assert_eq!(quantile(&[7.0], 0.9), 7.0);
    }

    #[test]
    fn measure_reports_per_unit_time_and_batches_short_work() {
        let plan = Plan { warmups: 1, samples: 3, min_sample: Duration::from_millis(2) };
        let s = measure(plan, 1.0, || std::thread::sleep(Duration::from_millis(1)));
        assert!(s.median_s >= 1e-3, "{s:?}");
        assert!(s.batch >= 1 && s.batch <= 3, "{s:?}");
        assert!(s.p10_s <= s.median_s && s.median_s <= s.p90_s);
    }

    #[test]
    fn measure_pair_alternates_and_times_each_side_alone() {
        let plan = Plan { warmups: 1, samples: 3, min_sample: Duration::from_millis(2) };
        let order = std::cell::RefCell::new(Vec::new());
        let (f, g) = measure_pair(
            plan,
            || {
                order.borrow_mut().push('f');
                std::thread::sleep(Duration::from_millis(1))
            },
            || {
                order.borrow_mut().push('g');
                std::thread::sleep(Duration::from_millis(3))
            },
        );
        assert!(f.median_s >= 1e-3, "{f:?}");
        assert!(g.median_s >= 3e-3, "{g:?}");
        assert_eq!((f.samples, g.samples), (3, 3));
        // After the warm-ups (f's, then g's), every sample is a batch of f and then one of g.
        let timed: String = order.borrow()[2..].iter().collect();
        let sample = "f".repeat(f.batch) + &"g".repeat(g.batch);
        assert_eq!(timed, sample.repeat(3));
    }
}
