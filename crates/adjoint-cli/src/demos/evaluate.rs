//! What the demos' evaluation records share: slices by group, reliability diagrams, bands.

use std::collections::BTreeMap;

use std::path::Path;

use adjoint_store::{Calibration, CalibrationBin, DataRecord, Slice};

/// The evaluation data record of `path` (hashed) with the split described: the registry names
/// evaluation data by content hash.
pub fn data_record(path: &Path, split: &str) -> Result<DataRecord, String> {
    let (sha256, bytes) = adjoint_store::sha256_file(path).map_err(|e| e.to_string())?;
    Ok(DataRecord { name: format!("{} ({split})", path.display()), sha256, bytes })
}

/// Slices `group=key` from per-example `(key, values…)`, with each metric the mean of its
/// per-example values (`names` names them); ordered by key.
pub fn mean_slices(group: &str, names: &[&str], rows: &[(String, Vec<f64>)]) -> Vec<Slice> {
    let mut by: BTreeMap<&str, (u64, Vec<f64>)> = BTreeMap::new();
    for (k, vals) in rows {
        let e = by.entry(k.as_str()).or_insert_with(|| (0, vec![0.0; names.len()]));
        e.0 += 1;
        for (s, v) in e.1.iter_mut().zip(vals) {
            *s += v;
        }
    }
    by.into_iter()
        .map(|(k, (n, sums))| Slice {
            name: format!("{group}={k}"),
            n,
            metrics: names.iter().zip(&sums).map(|(m, s)| (m.to_string(), s / n as f64)).collect(),
        })
        .collect()
}

/// A reliability diagram of predicted probabilities against outcomes, `bins` equal-width
/// bins on [0, 1] (empty bins left out).
pub fn reliability(name: &str, probs: &[f64], hits: &[bool], bins: usize) -> Calibration {
    let mut acc = vec![(0.0, 0.0, 0u64); bins];
    for (p, h) in probs.iter().zip(hits) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        acc[b].0 += p;
        acc[b].1 += f64::from(u8::from(*h));
        acc[b].2 += 1;
    }
    let out = acc
        .into_iter()
        .enumerate()
        .filter(|(_, b)| b.2 > 0)
        .map(|(i, (p, o, n))| CalibrationBin {
            label: format!("{:.2}–{:.2}", i as f64 / bins as f64, (i + 1) as f64 / bins as f64),
            predicted: p / n as f64,
            observed: o / n as f64,
            count: n,
        })
        .collect();
    Calibration::new(name, "reliability", out)
}

/// The tertile cut points of `values`.
pub fn tertiles(values: &[f64]) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (0.0, 0.0);
    }
    (v[v.len() / 3], v[(2 * v.len()) / 3])
}

/// `names[0]` below the first cut, `names[1]` up to the second, else `names[2]`.
pub fn band(x: f64, (a, b): (f64, f64), names: [&str; 3]) -> &str {
    if x < a {
        names[0]
    } else if x < b {
        names[1]
    } else {
        names[2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_average_per_key_and_reliability_bins_count() {
        let rows =
            vec![("a".to_string(), vec![1.0]), ("b".to_string(), vec![3.0]), ("a".to_string(), vec![2.0])];
        let s = mean_slices("g", &["m"], &rows);
        assert_eq!((s[0].name.as_str(), s[0].n, s[0].metrics["m"]), ("g=a", 2, 1.5));
        let c = reliability("c", &[0.05, 0.95, 0.9], &[false, true, false], 10);
        assert_eq!(c.bins.len(), 2);
        assert_eq!(c.bins[1].count, 2);
        assert_eq!(c.bins[1].observed, 0.5);
        assert_eq!(c.bins[1].label, "0.90–1.00");
        assert_eq!(band(5.0, tertiles(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), ["lo", "mid", "hi"]), "hi");
    }
}
