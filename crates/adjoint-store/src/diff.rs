//! `runs diff`: what differs between two runs' configuration, data, seed, code and metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::error::Result;
use crate::manifest::RunManifest;
use crate::registry::Registry;

/// Differences between two runs (`a` then `b` in each pair; `None` = absent).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunDiff {
    /// Configuration leaves that differ, by dotted path (`optimizer.lr`, `layers[1]`).
    pub config: Vec<(String, Option<Value>, Option<Value>)>,
    /// Data records that differ, by name: the SHA-256 on each side.
    pub data: Vec<(String, Option<String>, Option<String>)>,
    /// Final metrics that differ (compared bit for bit).
    pub final_metrics: Vec<(String, Option<f64>, Option<f64>)>,
    /// Other fields that differ (seed, code version, parent checkpoint, epochs), rendered.
    pub other: Vec<(String, String, String)>,
}

impl RunDiff {
    /// True when the runs agree on everything compared.
    pub fn is_empty(&self) -> bool {
        self.config.is_empty()
            && self.data.is_empty()
            && self.final_metrics.is_empty()
            && self.other.is_empty()
    }

    /// Human-readable report.
    pub fn render(&self, a: &str, b: &str) -> String {
        let mut s = format!("--- {a}\n+++ {b}\n");
        let opt = |v: &Option<Value>| v.as_ref().map_or("(absent)".to_string(), |v| v.to_string());
        let opth = |v: &Option<String>| {
            v.as_ref().map_or("(absent)".to_string(), |v| v[..v.len().min(12)].to_string())
        };
        let optf = |v: &Option<f64>| v.map_or("(absent)".to_string(), |v| format!("{v}"));
        if self.is_empty() {
            s.push_str("no differences\n");
        }
        if !self.config.is_empty() {
            s.push_str("config:\n");
            for (k, x, y) in &self.config {
                let _ = writeln!(s, "  {k}: {} -> {}", opt(x), opt(y));
            }
        }
        if !self.data.is_empty() {
            s.push_str("data:\n");
            for (k, x, y) in &self.data {
                let _ = writeln!(s, "  {k}: {} -> {}", opth(x), opth(y));
            }
        }
        if !self.final_metrics.is_empty() {
            s.push_str("final metrics:\n");
            for (k, x, y) in &self.final_metrics {
                let delta = match (x, y) {
                    (Some(x), Some(y)) => format!(" (delta {:+e})", y - x),
                    _ => String::new(),
                };
                let _ = writeln!(s, "  {k}: {} -> {}{delta}", optf(x), optf(y));
            }
        }
        for (k, x, y) in &self.other {
            let _ = writeln!(s, "{k}: {x} -> {y}");
        }
        s
    }
}

/// Flattens JSON into `path -> leaf` pairs.
pub(crate) fn flatten(v: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                flatten(x, &if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {
            out.insert(if path.is_empty() { "(root)".into() } else { path.into() }, v.clone());
        }
    }
}

fn union_diff<T: Clone + PartialEq>(
    a: &BTreeMap<String, T>,
    b: &BTreeMap<String, T>,
    same: impl Fn(&T, &T) -> bool,
) -> Vec<(String, Option<T>, Option<T>)> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if same(x, y) => None,
            (x, y) => Some((k.clone(), x.cloned(), y.cloned())),
        })
        .collect()
}

/// Compares two manifests.
pub fn diff_manifests(a: &RunManifest, b: &RunManifest) -> RunDiff {
    let (mut ca, mut cb) = (BTreeMap::new(), BTreeMap::new());
    flatten(&a.config, "", &mut ca);
    flatten(&b.config, "", &mut cb);
    let data = |m: &RunManifest| {
        m.data.iter().map(|d| (d.name.clone(), d.sha256.clone())).collect::<BTreeMap<_, _>>()
    };
    let mut other = Vec::new();
    let mut cmp = |k: &str, x: String, y: String| {
        if x != y {
            other.push((k.to_string(), x, y));
        }
    };
    cmp("seed", a.seed.to_string(), b.seed.to_string());
    cmp("code", format!("{:?}", a.code), format!("{:?}", b.code));
    cmp("parent checkpoint", format!("{:?}", a.parent_checkpoint), format!("{:?}", b.parent_checkpoint));
    cmp("epochs", a.epochs.len().to_string(), b.epochs.len().to_string());
    let ck = |m: &RunManifest| {
        m.checkpoints
            .iter()
            .map(|c| c.sha256.get(..12).unwrap_or(&c.sha256).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    cmp("checkpoints", ck(a), ck(b));
    RunDiff {
        config: union_diff(&ca, &cb, |x, y| x == y),
        data: union_diff(&data(a), &data(b), |x, y| x == y),
        final_metrics: union_diff(&a.final_metrics, &b.final_metrics, |x: &f64, y: &f64| {
            x.to_bits() == y.to_bits()
        }),
        other,
    }
}

impl Registry {
    /// Compares two finished runs (both manifests are signature-checked first).
    pub fn diff_runs(&self, a: &str, b: &str) -> Result<RunDiff> {
        let ma = self.load_manifest(a)?.manifest;
        let mb = self.load_manifest(b)?.manifest;
        Ok(diff_manifests(&ma, &mb))
    }
}
