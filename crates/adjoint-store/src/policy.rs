//! The release policy and data access: per-model gates and monitoring bounds, data labels, and
//! which keys may record or export data of each label.
//!
//! The policy is a JSON document signed by a writer key (like the key policy) and stored as a
//! record of kind `policy`; the newest one is in force, and a copy of the signed envelope is
//! written to `<registry>/policy.json` for people to read (the database row is authoritative;
//! `verify` and [`Registry::policy`] refuse a copy that disagrees with it).
//!
//! ```json
//! {
//!   "models": {
//!     "forecast": {
//!       "thresholds": [{"metric": "mae", "max": 1.2}],
//!       "max_slice_regression": [{"metric": "mae", "max": 0.05, "higher_is_better": false}],
//!       "monitor": {"window": 20, "k": 3, "tolerance": 0.25, "auto_rollback": true}
//!     }
//!   },
//!   "data_access": {"restricted": ["<64-hex key id>"]}
//! }
//! ```
//!
//! Data labels are records of kind `data-label` about a data hash (owner and label, signed by a
//! writer; the newest wins). Unlabelled data is `public`. Data with any other label may be
//! recorded (by a run or an evaluation) or exported only by the keys `data_access` lists for
//! that label; anyone else gets [`StoreError::AccessDenied`] and nothing is written.
//!
//! ```
//! use adjoint_store::{DataLabel, Registry, Signer, StoreError};
//! # let tmp = tempfile::tempdir().unwrap();
//! # let data = tmp.path().join("patients.csv"); std::fs::write(&data, "x\n1\n").unwrap();
//! let reg = Registry::open(tmp.path().join("runs"))?;
//! let owner = Signer::generate();
//! reg.bootstrap(&owner)?;
//! let label = DataLabel { owner: "clinic".into(), label: "restricted".into() };
//! let sha = reg.label_data(data.to_str().unwrap(), &label, &owner)?;
//! let mut run = reg.start_run(&owner, "m", serde_json::json!({}), 0)?;
//! // The policy lists no key for "restricted": even the owner may not record it.
//! assert!(matches!(run.record_data_file(&data), Err(StoreError::AccessDenied { .. })));
//! assert!(reg.data_usage(&sha)?.runs.is_empty());
//! # Ok::<(), adjoint_store::StoreError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::fsutil;
use crate::keys::{self, Signer};
use crate::registry::Registry;

/// A bound on an overall metric of a candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Metric name (a key of the evaluation's overall metrics).
    pub metric: String,
    /// Smallest allowed value.
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest allowed value.
    #[serde(default)]
    pub max: Option<f64>,
}

/// The largest allowed per-slice regression of a metric against the version the alias points to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceRule {
    /// Metric name.
    pub metric: String,
    /// Largest allowed worsening (absolute, in the metric's units).
    pub max: f64,
    /// Whether larger is better for this metric.
    #[serde(default)]
    pub higher_is_better: bool,
}

/// When a monitored model raises an alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorPolicy {
    /// Observations per window (the rolling metric is each window's mean).
    pub window: usize,
    /// Consecutive breaching windows that raise an alert.
    pub k: usize,
    /// Absolute bound on a window's mean (breach above it).
    #[serde(default)]
    pub bound: Option<f64>,
    /// Relative margin over the frozen reference (breach above `reference · (1 + tolerance)`).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Roll the alias back automatically on an alert.
    #[serde(default)]
    pub auto_rollback: bool,
}

fn default_tolerance() -> f64 {
    0.25
}

/// The rules for one model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPolicy {
    /// Overall metric bounds.
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
    /// Per-slice regression limits against the current alias.
    #[serde(default)]
    pub max_slice_regression: Vec<SliceRule>,
    /// Online monitoring.
    #[serde(default)]
    pub monitor: Option<MonitorPolicy>,
}

/// The registry's release and data policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Model name → its rules.
    #[serde(default)]
    pub models: BTreeMap<String, ModelPolicy>,
    /// Data label → key ids allowed to record and export data with that label.
    #[serde(default)]
    pub data_access: BTreeMap<String, Vec<String>>,
}

impl Policy {
    /// Parses and checks a policy document; `source` names it in errors.
    ///
    /// ```
    /// let p = adjoint_store::Policy::parse(r#"{"models": {"m": {"thresholds": [{"metric": "acc", "min": 0.9}]}}}"#, "p.json").unwrap();
    /// assert_eq!(p.models["m"].thresholds[0].min, Some(0.9));
    /// assert!(adjoint_store::Policy::parse(r#"{"modles": {}}"#, "p.json").unwrap_err().to_string().contains("p.json"));
    /// ```
    pub fn parse(text: &str, source: &str) -> Result<Policy> {
        let p: Policy = serde_json::from_str(text)
            .map_err(|e| StoreError::invalid("policy", format!("{source}: {e}")))?;
        for (m, mp) in &p.models {
            let bad = |d: String| Err(StoreError::invalid("policy", format!("{source}: model {m}: {d}")));
            if let Some(mon) = &mp.monitor {
                if mon.window == 0 || mon.k == 0 {
                    return bad("monitor.window and monitor.k must be at least 1".into());
                }
                if !(mon.tolerance >= 0.0 && mon.tolerance.is_finite()) {
                    return bad(format!("monitor.tolerance {} must be a finite number >= 0", mon.tolerance));
                }
            }
            for r in &mp.max_slice_regression {
                if r.max.is_nan() || r.max < 0.0 {
                    return bad(format!("max_slice_regression {}: max {} must be >= 0", r.metric, r.max));
                }
            }
        }
        for (label, ks) in &p.data_access {
            for k in ks {
                keys::validate_key_id(k).map_err(|e| {
                    StoreError::invalid("policy", format!("{source}: data_access.{label}: {k:?}: {e}"))
                })?;
            }
        }
        Ok(p)
    }
}

/// A data file's owner and label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLabel {
    /// Who owns the data (a person, team or source).
    pub owner: String,
    /// `public`, `restricted`, … (any name the policy's `data_access` uses).
    pub label: String,
}

/// Every use of one data version, for deletion requests (`runs lineage --data`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataUsage {
    /// The data hash.
    pub sha256: String,
    /// Its label, if one was set.
    pub label: Option<DataLabel>,
    /// Runs that read it directly, and runs fine-tuned from their checkpoints: `(run, name, how)`.
    pub runs: Vec<(String, String, String)>,
    /// Checkpoints derived from it.
    pub checkpoints: Vec<String>,
    /// Model versions whose checkpoint derives from it: `(model, version)`.
    pub model_versions: Vec<(String, u32)>,
    /// Checkpoints evaluated on it: `(checkpoint, evaluation name)`.
    pub evaluations: Vec<(String, String)>,
}

impl DataUsage {
    /// Human-readable listing.
    pub fn render(&self) -> String {
        let mut s = format!("data {}", self.sha256);
        match &self.label {
            Some(l) => s += &format!(" (label {}, owner {})\n", l.label, l.owner),
            None => s += " (label public: not labelled)\n",
        }
        let h = fsutil::short_hash;
        for (r, n, how) in &self.runs {
            s += &format!("  run {r} {n:?} ({how})\n");
        }
        for c in &self.checkpoints {
            s += &format!("  checkpoint {}\n", h(c));
        }
        for (m, v) in &self.model_versions {
            s += &format!("  model {m}:{v}\n");
        }
        for (c, n) in &self.evaluations {
            s += &format!("  evaluation {n:?} of checkpoint {}\n", h(c));
        }
        if self.runs.is_empty() && self.evaluations.is_empty() {
            s += "  used by no run, model or evaluation\n";
        }
        s
    }
}

/// The signed copy of the policy written to `<registry>/policy.json`.
#[derive(Serialize, Deserialize)]
struct PolicyFile {
    policy: serde_json::Value,
    created_at: String,
    signer: String,
    signature: String,
}

impl Registry {
    fn policy_file(&self) -> std::path::PathBuf {
        self.dir.join("policy.json")
    }

    /// Replaces the policy (a writer key signs it). Returns the record id.
    pub fn set_policy(&self, policy: &Policy, by: &Signer) -> Result<i64> {
        self.require_writer(&by.key_id(), "change the release policy")?;
        let id = self.append_record("policy", "registry", policy, by, &[])?;
        self.write_policy_copy()?;
        Ok(id)
    }

    fn write_policy_copy(&self) -> Result<()> {
        let Some(rec) = self.latest_record("policy", "registry")? else { return Ok(()) };
        let (sig, created_at): (String, String) = self.query("read policy signature", |c| {
            c.query_row("SELECT signature, created_at FROM records WHERE id=?1", [rec.id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })?;
        let file = PolicyFile { policy: rec.body, created_at, signer: rec.key_id, signature: sig };
        let text = serde_json::to_string_pretty(&file).expect("policy serialises") + "\n";
        fsutil::atomic_write(&self.policy_file(), text.as_bytes())
    }

    /// The policy in force (signature and writer checked; the `policy.json` copy must agree),
    /// or an empty policy when none was set.
    pub fn policy(&self) -> Result<Policy> {
        let Some(rec) = self.latest_record("policy", "registry")? else { return Ok(Policy::default()) };
        let path = self.policy_file();
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| StoreError::io("read", &path, e))?;
            let same = serde_json::from_str::<PolicyFile>(&text).is_ok_and(|f| {
                f.policy == rec.body && f.signer == rec.key_id && f.created_at == rec.created_at
            });
            if !same {
                return Err(StoreError::BadSignature {
                    record: format!("policy file {}", path.display()),
                    detail: "differs from the signed policy in the database (edited?)".into(),
                });
            }
        }
        rec.parse()
    }

    /// Labels a data version (by hash or unique hash prefix of recorded data, or a file, which
    /// is hashed). Needs a writer key. Returns the full hash.
    pub fn label_data(&self, data: &str, label: &DataLabel, by: &Signer) -> Result<String> {
        self.require_writer(&by.key_id(), "label data")?;
        let sha = self.resolve_data(data)?;
        for (what, s) in [("data label", &label.label), ("data owner", &label.owner)] {
            if s.is_empty() || s.chars().any(char::is_control) {
                return Err(StoreError::invalid(what, format!("{s:?} must be non-empty printable text")));
            }
        }
        self.append_record("data-label", &sha, label, by, &[])?;
        Ok(sha)
    }

    /// The label of a data hash (`None`: unlabelled, treated as public).
    pub fn data_label(&self, sha256: &str) -> Result<Option<DataLabel>> {
        self.latest_record("data-label", sha256)?.map(|r| r.parse()).transpose()
    }

    /// A data hash from a file path, a full hash, or a unique prefix of a recorded data hash.
    pub fn resolve_data(&self, data: &str) -> Result<String> {
        let p = std::path::Path::new(data);
        if p.is_file() {
            return Ok(fsutil::sha256_file(p)?.0);
        }
        if data.len() == 64 && data.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(data.to_ascii_lowercase());
        }
        if data.len() < 6 || !data.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::invalid(
                "data",
                format!("{data:?} is neither a file nor a hash prefix (6+ hex digits)"),
            ));
        }
        let like = format!("{}%", data.to_ascii_lowercase());
        let found: Vec<String> = self.query("find data", |c| {
            let mut st = c.prepare("SELECT DISTINCT sha256 FROM run_data WHERE sha256 LIKE ?1 LIMIT 5")?;
            let rows = st.query_map([&like], |r| r.get(0))?;
            rows.collect()
        })?;
        match found.len() {
            0 => Err(StoreError::NotFound(format!("recorded data {data:?}"))),
            1 => Ok(found.into_iter().next().expect("one")),
            _ => Err(StoreError::Ambiguous {
                what: "data hash",
                prefix: data.into(),
                matches: found.join(", "),
            }),
        }
    }

    /// Errors with [`StoreError::AccessDenied`] unless `by` may `action` every data hash given
    /// (public data: any key; other labels: the keys the policy lists for them).
    pub fn check_data_access(&self, hashes: &[&str], by: &Signer, action: &str) -> Result<()> {
        let mut policy = None;
        for sha in hashes {
            let Some(label) = self.data_label(sha)? else { continue };
            if label.label == "public" {
                continue;
            }
            if policy.is_none() {
                policy = Some(self.policy()?);
            }
            let allowed = policy.as_ref().and_then(|p| p.data_access.get(&label.label));
            if !allowed.is_some_and(|ks| ks.iter().any(|k| k.eq_ignore_ascii_case(&by.key_id()))) {
                return Err(StoreError::AccessDenied {
                    key: keys::short_id(&by.key_id()).into(),
                    action: action.into(),
                    data: sha.to_string(),
                    label: label.label,
                    owner: label.owner,
                });
            }
        }
        Ok(())
    }

    /// Every run, checkpoint, model version and evaluation that used a data version, following
    /// fine-tuning downstream (`runs lineage --data`).
    pub fn data_usage(&self, data: &str) -> Result<DataUsage> {
        let sha = self.resolve_data(data)?;
        let mut u = DataUsage { label: self.data_label(&sha)?, sha256: sha.clone(), ..Default::default() };
        let direct: Vec<(String, String)> = self.query("data users", |c| {
            let mut st = c.prepare(
                "SELECT DISTINCT r.run_id, r.name FROM run_data d JOIN runs r ON r.run_id=d.run_id
                 WHERE d.sha256=?1 ORDER BY r.run_id",
            )?;
            let rows = st.query_map([&sha], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let mut queue: Vec<(String, String, String)> =
            direct.into_iter().map(|(r, n)| (r, n, "read it".to_string())).collect();
        let mut seen_runs = BTreeSet::new();
        let mut seen_ckpts = BTreeSet::new();
        while let Some((run, name, how)) = queue.pop() {
            if !seen_runs.insert(run.clone()) {
                continue;
            }
            u.runs.push((run.clone(), name, how));
            let ckpts: Vec<String> = self.query("run checkpoints", |c| {
                let mut st = c.prepare("SELECT DISTINCT sha256 FROM checkpoints WHERE run_id=?1")?;
                let rows = st.query_map([&run], |r| r.get(0))?;
                rows.collect()
            })?;
            for ck in ckpts {
                if !seen_ckpts.insert(ck.clone()) {
                    continue;
                }
                let children: Vec<(String, String)> = self.query("fine-tuned runs", |c| {
                    let mut st = c.prepare("SELECT run_id, name FROM runs WHERE parent=?1")?;
                    let rows = st.query_map([&ck], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect()
                })?;
                for (r, n) in children {
                    queue.push((r, n, format!("fine-tuned from checkpoint {}", fsutil::short_hash(&ck))));
                }
            }
        }
        u.runs.sort();
        for ck in &seen_ckpts {
            let vs: Vec<(String, u32)> = self.query("versions of checkpoint", |c| {
                let mut st = c.prepare("SELECT model, version FROM model_versions WHERE sha256=?1")?;
                let rows = st.query_map(params![ck], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })?;
            u.model_versions.extend(vs);
        }
        u.model_versions.sort();
        u.checkpoints = seen_ckpts.into_iter().collect();
        for rec in self.records("evaluation", None)? {
            let e: crate::Evaluation = rec.parse()?;
            if e.data.iter().any(|d| d.sha256 == sha) {
                u.evaluations.push((e.checkpoint, e.name));
            }
        }
        Ok(u)
    }
}
