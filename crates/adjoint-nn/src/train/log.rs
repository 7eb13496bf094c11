//! Metrics as JSON Lines, and the in-memory [`History`] the plots are drawn from.
//!
//! One JSON object per line, each with a `"kind"`: `"step"` records (step, epoch, loss, lr,
//! grad_norm, time in seconds since the run started, skipped, clipped; `params` with
//! per-parameter `grad_norm` and, on statistics steps, `weight_norm` and `update_ratio`; and
//! `warnings` when there were any), `"epoch"` records (epoch, step, time, then every metric:
//! `train_loss`, `val_loss`, …), and a final `"end"` record. JSON has no NaN or infinity: such
//! values are written as `null`. The format is append-only and line-buffered per epoch, so a
//! crashed run leaves a readable prefix.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::step::StepStats;
use crate::error::{NnError, Result};

/// Named scalar metrics of an epoch (`"val_loss"`, `"val_acc"`, …).
pub type Metrics = BTreeMap<String, f64>;

/// A JSON Lines file of training records.
pub struct JsonlLogger {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonlLogger {
    /// Create (truncate) `path`, creating its parent directories.
    pub fn create(path: impl AsRef<Path>) -> Result<JsonlLogger> {
        let path = path.as_ref().to_path_buf();
        let io = |source| NnError::Io { path: path.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let f = File::create(&path).map_err(io)?;
        Ok(JsonlLogger { path, out: BufWriter::new(f) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record.
    pub fn write(&mut self, record: &Value) -> Result<()> {
        let io = |source| NnError::Io { path: self.path.clone(), source };
        serde_json::to_writer(&mut self.out, record).map_err(|e| io(e.into()))?;
        self.out.write_all(b"\n").map_err(io)
    }

    /// Flush buffered records to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|source| NnError::Io { path: self.path.clone(), source })
    }
}

impl Drop for JsonlLogger {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// The JSON record of a step (`"kind": "step"`).
pub fn step_record(stats: &StepStats, epoch: usize, time: f64) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("step"));
    m.insert("step".into(), json!(stats.step));
    m.insert("epoch".into(), json!(epoch));
    m.insert("loss".into(), num(stats.loss));
    m.insert("lr".into(), num(stats.lr));
    m.insert("grad_norm".into(), num(stats.grad_norm));
    m.insert("time".into(), num(time));
    m.insert("skipped".into(), json!(stats.skipped));
    m.insert("clipped".into(), json!(stats.clipped));
    if stats.has_param_stats {
        let mut p = Map::new();
        for s in &stats.params {
            let mut e = Map::new();
            e.insert("grad_norm".into(), num(s.grad_norm));
            if let Some(w) = s.weight_norm {
                e.insert("weight_norm".into(), num(w));
            }
            if let Some(r) = s.update_ratio {
                e.insert("update_ratio".into(), num(r));
            }
            p.insert(s.name.clone(), Value::Object(e));
        }
        m.insert("params".into(), Value::Object(p));
    }
    if !stats.warnings.is_empty() {
        m.insert("warnings".into(), json!(stats.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>()));
    }
    Value::Object(m)
}

/// The JSON record of an epoch (`"kind": "epoch"`).
pub fn epoch_record(epoch: usize, step: usize, time: f64, metrics: &Metrics) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("epoch"));
    m.insert("epoch".into(), json!(epoch));
    m.insert("step".into(), json!(step));
    m.insert("time".into(), num(time));
    for (k, v) in metrics {
        m.insert(k.clone(), num(*v));
    }
    Value::Object(m)
}

fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// A step of the history.
#[derive(Clone, Debug, PartialEq)]
pub struct StepPoint {
    /// Global step (1-based).
    pub step: usize,
    /// Epoch (1-based).
    pub epoch: usize,
    /// Loss (NaN when it was not finite).
    pub loss: f64,
    /// Learning rate.
    pub lr: f64,
    /// Global gradient norm.
    pub grad_norm: f64,
}

/// The end of an epoch in the history.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochPoint {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Global step at the end of the epoch.
    pub step: usize,
    /// Seconds since the run started.
    pub time: f64,
    /// Metrics (`train_loss`, validation metrics, …).
    pub metrics: Metrics,
}

/// Loss and metric curves of a run: what the trainer recorded, or what a JSONL log holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Step records.
    pub steps: Vec<StepPoint>,
    /// Epoch records.
    pub epochs: Vec<EpochPoint>,
}

impl History {
    /// Read the step and epoch records of a JSONL log written by the trainer (other kinds of
    /// records are ignored). A line that is not a JSON object, or a step/epoch record with a
    /// missing or mistyped field, is a parse error naming the line.
    pub fn from_jsonl(path: impl AsRef<Path>) -> Result<History> {
        let path = path.as_ref();
        let f = File::open(path).map_err(|source| NnError::Io { path: path.to_path_buf(), source })?;
        let mut h = History::default();
        for (i, line) in BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|source| NnError::Io { path: path.to_path_buf(), source })?;
            let perr = |column: usize, message: String| NnError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                column,
                message,
            };
            if line.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(&line).map_err(|e| perr(e.column(), format!("invalid JSON: {e}")))?;
            let Some(obj) = v.as_object() else {
                return Err(perr(1, "expected a JSON object".into()));
            };
            let get_u = |k: &str| {
                obj.get(k)
                    .and_then(Value::as_u64)
                    .map(|x| x as usize)
                    .ok_or_else(|| perr(1, format!("field '{k}' is missing or not a non-negative integer")))
            };
            let get_f = |k: &str| obj.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
            match obj.get("kind").and_then(Value::as_str) {
                Some("step") => h.steps.push(StepPoint {
                    step: get_u("step")?,
                    epoch: get_u("epoch")?,
                    loss: get_f("loss"),
                    lr: get_f("lr"),
                    grad_norm: get_f("grad_norm"),
                }),
                Some("epoch") => {
                    let metrics = obj
                        .iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "kind" | "epoch" | "step" | "time"))
                        .filter_map(|(k, v)| {
                            if v.is_null() {
                                Some((k.clone(), f64::NAN))
                            } else {
                                v.as_f64().map(|x| (k.clone(), x))
                            }
                        })
                        .collect();
                    h.epochs.push(EpochPoint {
                        epoch: get_u("epoch")?,
                        step: get_u("step")?,
                        time: get_f("time"),
                        metrics,
                    })
                }
                _ => {}
            }
        }
        Ok(h)
    }

    /// `(epoch, value)` of metric `name` over the epochs that have it.
    pub fn metric(&self, name: &str) -> Vec<(f64, f64)> {
        self.epochs.iter().filter_map(|e| e.metrics.get(name).map(|&v| (e.epoch as f64, v))).collect()
    }

    /// Names of all epoch metrics, sorted.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.epochs.iter().flat_map(|e| e.metrics.keys().cloned()).collect();
        names.sort();
        names.dedup();
        names
    }
}
