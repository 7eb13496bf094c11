//! Audit reports: everything known about one model version, gathered from the registry,
//! written as a folder, signed, and stored linked to the checkpoint.
//!
//! [`Registry::audit_report`] gathers the facts: the newest evaluation of the checkpoint
//! (metrics per slice, worst first, and the best–worst gap; calibration; the population
//! stability index of each input feature between the training and evaluation data;
//! attributions), the lineage (data hashes, configuration, parent checkpoint, code version of
//! the run that wrote it), and a diff against the version the model's alias points to.
//! [`AuditReport::markdown`] and `serde_json` render it; the caller (the `adjoint` command, which
//! can draw) adds figures. [`Registry::record_audit`] then stores every file of the folder as a
//! blob, signs the list of `(file, sha256)` as an `audit` record about the checkpoint, and
//! writes `signature.json` into the folder, which [`verify_audit_dir`] checks on its own.
//!
//! ```
//! use adjoint_store::{verify_audit_dir, Evaluation, Registry, Signer, Slice};
//! # let tmp = tempfile::tempdir().unwrap();
//! # let ck = tmp.path().join("w"); std::fs::write(&ck, b"w").unwrap();
//! let reg = Registry::open(tmp.path().join("runs"))?;
//! let owner = Signer::generate();
//! let mut run = reg.start_run(&owner, "m", serde_json::json!({}), 0)?;
//! let hash = run.add_checkpoint(&ck, "final")?;
//! run.finish(Default::default())?;
//! let mut eval = Evaluation::new("test split", "acc", true, [("acc".to_string(), 0.9)].into());
//! eval.checkpoint = hash.clone();
//! let slice = |n: &str, acc| Slice { name: n.into(), n: 10, metrics: [("acc".to_string(), acc)].into() };
//! eval.slices = vec![slice("digit=1", 0.99), slice("digit=8", 0.81)];
//! reg.record_evaluation(&eval, &owner)?;
//! let report = reg.audit_report(&hash)?; // or a run id, a model, model@alias, model:version
//! assert_eq!(report.slices_worst_first, ["digit=8", "digit=1"]);
//! let dir = tmp.path().join("audit");
//! std::fs::create_dir(&dir).unwrap();
//! std::fs::write(dir.join("report.md"), report.markdown(&[])).unwrap();
//! reg.record_audit(&dir, &report, &owner)?;
//! verify_audit_dir(&dir, Some(&owner.key_id()))?;
//! # Ok::<(), adjoint_store::StoreError>(())
//! ```

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::evaluation::{Evaluation, SliceGap};
use crate::fsutil;
use crate::keys::{self, Signer};
use crate::manifest::{CodeVersion, DataRecord};
use crate::records::record_message;
use crate::registry::Registry;

/// Where the audited checkpoint came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditLineage {
    /// The run that wrote the checkpoint.
    pub run: Option<String>,
    /// Its training data, by content hash.
    pub data: Vec<DataRecord>,
    /// Its configuration.
    pub config: serde_json::Value,
    /// The checkpoint it was fine-tuned from.
    pub parent_checkpoint: Option<String>,
    /// The code that ran.
    pub code: Option<CodeVersion>,
    /// The lineage tree, rendered.
    pub tree: String,
}

/// The audited version against the version the alias points to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromotedDiff {
    /// `model@alias`.
    pub alias: String,
    /// Its version.
    pub version: u32,
    /// Its checkpoint.
    pub checkpoint: String,
    /// `(metric, audited, promoted)` for overall metrics both have.
    pub metrics: Vec<(String, f64, f64)>,
    /// `(slice, audited, promoted)` on the primary metric.
    pub slices: Vec<(String, f64, f64)>,
}

/// One feature's drift.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Feature.
    pub feature: String,
    /// Population stability index, training vs evaluation data.
    pub psi: f64,
    /// `stable` (< 0.1), `moderate` (< 0.25) or `major`.
    pub level: String,
}

/// Everything an audit reports (also written as `audit.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// What was asked for.
    pub target: String,
    /// The audited checkpoint.
    pub checkpoint: String,
    /// `(model, version)` when the checkpoint is a published version.
    pub model_version: Option<(String, u32)>,
    /// Its newest evaluation.
    pub evaluation: Evaluation,
    /// Slice names, worst first on the primary metric.
    pub slices_worst_first: Vec<String>,
    /// Per slice group, worst and best slice and their gap on the primary metric.
    pub slice_gaps: Vec<SliceGap>,
    /// Input drift per feature, largest first.
    pub drift: Vec<Drift>,
    /// Lineage.
    pub lineage: AuditLineage,
    /// Diff against the promoted version (none when this is it, or nothing is promoted).
    pub promoted: Option<PromotedDiff>,
}

fn level(psi: f64) -> &'static str {
    if psi < 0.1 {
        "stable"
    } else if psi < 0.25 {
        "moderate"
    } else {
        "major"
    }
}

impl AuditReport {
    /// `report.md`; `figures` are `(caption, file name)` pairs placed in the folder by the caller.
    pub fn markdown(&self, figures: &[(String, String)]) -> String {
        let e = &self.evaluation;
        let mut s = String::new();
        let what = match &self.model_version {
            Some((m, v)) => format!("model {m}:{v}"),
            None => format!("checkpoint {}", fsutil::short_hash(&self.checkpoint)),
        };
        let _ = writeln!(s, "# Audit of {what}\n");
        let _ = writeln!(s, "- target: `{}`\n- checkpoint: `{}`", self.target, self.checkpoint);
        let _ = writeln!(
            s,
            "- evaluation: {} (primary metric `{}`, {} is better)",
            e.name,
            e.primary_metric,
            if e.higher_is_better { "higher" } else { "lower" }
        );
        for d in &e.data {
            let _ = writeln!(s, "- evaluated on `{}` (sha256 `{}`, {} bytes)", d.name, d.sha256, d.bytes);
        }
        let _ = writeln!(s, "\n## Overall metrics\n\n| metric | value |\n|---|---|");
        for (k, v) in &e.metrics {
            let _ = writeln!(s, "| {k} | {v:.6} |");
        }
        let _ = writeln!(s, "\n## Slices (worst first on `{}`)\n", e.primary_metric);
        for g in &self.slice_gaps {
            let _ = writeln!(
                s,
                "- {}: gap between best slice `{}` and worst slice `{}`: **{:.6}**",
                g.group, g.best, g.worst, g.gap
            );
        }
        s.push('\n');
        let names: Vec<&String> = e.slices.first().map(|x| x.metrics.keys().collect()).unwrap_or_default();
        if !names.is_empty() {
            let _ = writeln!(
                s,
                "| slice | n | {} |\n|---|---|{}",
                names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" | "),
                "---|".repeat(names.len())
            );
            let map = e.slice_map();
            for name in &self.slices_worst_first {
                let sl = e.slices.iter().find(|x| &x.name == name).expect("slice of this evaluation");
                let vals: Vec<String> = names
                    .iter()
                    .map(|k| map[name.as_str()].get(*k).map_or("-".into(), |v| format!("{v:.4}")))
                    .collect();
                let _ = writeln!(s, "| {name} | {} | {} |", sl.n, vals.join(" | "));
            }
        }
        let _ = writeln!(s, "\n## Calibration\n");
        if e.calibration.is_empty() {
            let _ = writeln!(
                s,
                "The model's outputs are neither probabilities nor intervals: nothing to calibrate."
            );
        }
        for c in &e.calibration {
            let _ = writeln!(s, "### {} ({})\n\nExpected calibration error {:.4}\n\n| bin | predicted | observed | count |\n|---|---|---|---|", c.name, c.kind, c.ece);
            for b in &c.bins {
                let _ = writeln!(s, "| {} | {:.4} | {:.4} | {} |", b.label, b.predicted, b.observed, b.count);
            }
            s.push('\n');
        }
        let _ = writeln!(s, "\n## Input drift (population stability index, training vs evaluation)\n");
        if self.drift.is_empty() {
            let _ = writeln!(s, "No input distributions were recorded.");
        } else {
            let _ = writeln!(s, "| feature | PSI | level |\n|---|---|---|");
            for d in &self.drift {
                let _ = writeln!(s, "| {} | {:.4} | {} |", d.feature, d.psi, d.level);
            }
        }
        let _ = writeln!(s, "\n## Attributions\n");
        for a in &e.attributions {
            let ce = a.completeness_error.map_or(String::new(), |c| format!(", completeness error {c:.3e}"));
            let _ = writeln!(s, "- {} ({}, shape {:?}{ce})", a.name, a.method, a.shape);
        }
        if e.attributions.is_empty() {
            let _ = writeln!(s, "None recorded.");
        }
        if !figures.is_empty() {
            let _ = writeln!(s, "\n## Figures\n");
            for (caption, file) in figures {
                let _ = writeln!(s, "![{caption}]({file})\n");
            }
        }
        let l = &self.lineage;
        let _ = writeln!(s, "\n## Lineage\n");
        if let Some(r) = &l.run {
            let _ = writeln!(s, "- written by run `{r}`");
        }
        if let Some(c) = &l.code {
            let _ = writeln!(
                s,
                "- code: {} {} commit {}{}",
                c.package,
                c.version,
                c.git_commit.as_deref().unwrap_or("unknown"),
                if c.git_dirty == Some(true) { " (uncommitted changes)" } else { "" }
            );
        }
        for d in &l.data {
            let _ = writeln!(s, "- training data `{}` sha256 `{}`", d.name, d.sha256);
        }
        if let Some(p) = &l.parent_checkpoint {
            let _ = writeln!(s, "- fine-tuned from checkpoint `{p}`");
        }
        let _ = writeln!(
            s,
            "\nConfiguration:\n\n```json\n{}\n```\n\n```text\n{}```",
            serde_json::to_string_pretty(&l.config).unwrap_or_default(),
            l.tree
        );
        let _ = writeln!(s, "\n## Against the promoted version\n");
        match &self.promoted {
            None => {
                let _ = writeln!(s, "This is the promoted version, or no version of the model is promoted.");
            }
            Some(p) => {
                let _ = writeln!(s, "`{}` = version {} (checkpoint `{}`)\n\n| metric | audited | promoted | change |\n|---|---|---|---|", p.alias, p.version, fsutil::short_hash(&p.checkpoint));
                for (k, a, b) in p.metrics.iter().chain(&p.slices) {
                    let _ = writeln!(s, "| {k} | {a:.6} | {b:.6} | {:+.6} |", a - b);
                }
            }
        }
        s
    }
}

/// The signed body of an `audit` record (and of `signature.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditFiles {
    /// What was audited.
    pub target: String,
    /// The checkpoint.
    pub checkpoint: String,
    /// `(file name, sha256, bytes)` of every file of the report folder but `signature.json`.
    pub files: Vec<(String, String, u64)>,
}

/// `signature.json` of a report folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditSignature {
    /// The registry record id.
    pub record: i64,
    /// Signing time.
    pub created_at: String,
    /// Signing key id.
    pub signer: String,
    /// Ed25519 signature (hex) of the record message.
    pub signature: String,
    /// What was signed.
    pub body: AuditFiles,
}

/// Name of the signature file of a report folder.
pub const AUDIT_SIGNATURE_FILE: &str = "signature.json";

impl Registry {
    /// The checkpoint an audit target names: a run id (its last checkpoint with an
    /// evaluation), a model name (its newest version), or any checkpoint spec.
    fn audit_checkpoint(&self, target: &str) -> Result<String> {
        if let Ok(vs) = self.model_versions(target)
            && let Some(v) = vs.last()
        {
            return Ok(v.sha256.clone());
        }
        if !target.contains(['@', ':', '/'])
            && let Ok(run) = self.resolve_run_id(target)
        {
            let hashes: Vec<String> = self.query("run checkpoints", |c| {
                let mut st = c.prepare("SELECT sha256 FROM checkpoints WHERE run_id=?1 ORDER BY seq DESC")?;
                let rows = st.query_map([&run], |r| r.get(0))?;
                rows.collect()
            })?;
            for h in &hashes {
                if self.latest_record("evaluation", h)?.is_some() {
                    return Ok(h.clone());
                }
            }
        }
        self.resolve(target)
    }

    /// Gathers an audit of `target` (see the module docs). Fails naming the checkpoint when it
    /// has no evaluation record.
    pub fn audit_report(&self, target: &str) -> Result<AuditReport> {
        let sha = self.audit_checkpoint(target)?;
        let evaluation = self.latest_evaluation(&sha)?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "an evaluation record of checkpoint {} ({target}); record one before auditing",
                fsutil::short_hash(&sha)
            ))
        })?;
        let mv: Option<(String, u32)> = self.query("versions of checkpoint", |c| {
            use rusqlite::OptionalExtension;
            c.query_row(
                "SELECT model, version FROM model_versions WHERE sha256=?1 ORDER BY model, version DESC LIMIT 1",
                [&sha],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        let run: Option<String> = self.query("checkpoint run", |c| {
            use rusqlite::OptionalExtension;
            c.query_row(
                "SELECT run_id FROM checkpoints WHERE sha256=?1 ORDER BY run_id LIMIT 1",
                [&sha],
                |r| r.get(0),
            )
            .optional()
        })?;
        let manifest = match &run {
            Some(r) => Some(self.load_manifest(r)?.manifest),
            None => None,
        };
        let lineage = AuditLineage {
            run: run.clone(),
            data: manifest.as_ref().map(|m| m.data.clone()).unwrap_or_default(),
            config: manifest.as_ref().map(|m| m.config.clone()).unwrap_or_default(),
            parent_checkpoint: manifest.as_ref().and_then(|m| m.parent_checkpoint.clone()),
            code: manifest.as_ref().map(|m| m.code.clone()),
            tree: self.lineage(&sha)?.render(),
        };
        let mut drift: Vec<Drift> = evaluation
            .features
            .iter()
            .map(|f| {
                let psi = f.psi();
                Drift { feature: f.name.clone(), psi, level: level(psi).into() }
            })
            .collect();
        drift.sort_by(|a, b| b.psi.total_cmp(&a.psi));
        let promoted = match &mv {
            Some((model, _)) => self.promoted_diff(model, &sha, &evaluation)?,
            None => None,
        };
        Ok(AuditReport {
            target: target.into(),
            checkpoint: sha,
            model_version: mv,
            slices_worst_first: evaluation.slices_worst_first().iter().map(|s| s.name.clone()).collect(),
            slice_gaps: evaluation.slice_gaps(),
            drift,
            lineage,
            promoted,
            evaluation,
        })
    }

    /// The diff against `model@production` (or the model's only or first alias), unless that
    /// is the audited checkpoint.
    fn promoted_diff(&self, model: &str, sha: &str, e: &Evaluation) -> Result<Option<PromotedDiff>> {
        let aliases: Vec<(String, u32)> =
            self.aliases()?.into_iter().filter(|(m, _, _)| m == model).map(|(_, a, v)| (a, v)).collect();
        let Some((alias, version)) =
            aliases.iter().find(|(a, _)| a == "production").or(aliases.first()).cloned()
        else {
            return Ok(None);
        };
        let checkpoint = self.model_version(model, version)?.sha256;
        if checkpoint == sha {
            return Ok(None);
        }
        let Some(other) = self.latest_evaluation(&checkpoint)? else {
            return Ok(Some(PromotedDiff {
                alias: format!("{model}@{alias}"),
                version,
                checkpoint,
                metrics: vec![],
                slices: vec![],
            }));
        };
        let metrics =
            e.metrics.iter().filter_map(|(k, v)| other.metrics.get(k).map(|o| (k.clone(), *v, *o))).collect();
        let theirs = other.slice_map();
        let slices = e
            .slices
            .iter()
            .filter_map(|s| {
                let a = s.metrics.get(&e.primary_metric)?;
                let b = theirs.get(s.name.as_str())?.get(&e.primary_metric)?;
                Some((format!("{} {}", s.name, e.primary_metric), *a, *b))
            })
            .collect();
        Ok(Some(PromotedDiff { alias: format!("{model}@{alias}"), version, checkpoint, metrics, slices }))
    }

    /// Stores every file of the report folder `dir` as a blob, signs their list as an `audit`
    /// record about the report's checkpoint, and writes `signature.json` into `dir`.
    pub fn record_audit(&self, dir: &Path, report: &AuditReport, by: &Signer) -> Result<AuditSignature> {
        self.require_trusted(&by.key_id(), &format!("audit of {}", report.target))?;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| StoreError::io("list", dir, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != AUDIT_SIGNATURE_FILE && !n.starts_with('.'))
            .collect();
        names.sort();
        let mut files = Vec::new();
        for n in &names {
            let (sha, bytes) = self.put_blob_file(&dir.join(n))?;
            files.push((n.clone(), sha, bytes));
        }
        let body = AuditFiles { target: report.target.clone(), checkpoint: report.checkpoint.clone(), files };
        let blobs: Vec<(String, String)> =
            body.files.iter().map(|(n, s, _)| (n.clone(), s.clone())).collect();
        let id = self.append_record("audit", &report.checkpoint, &body, by, &blobs)?;
        let rec = self
            .records("audit", Some(&report.checkpoint))?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("audit record #{id} just written")))?;
        let signature: String = self.query("read audit signature", |c| {
            c.query_row("SELECT signature FROM records WHERE id=?1", [id], |r| r.get(0))
        })?;
        let sig =
            AuditSignature { record: id, created_at: rec.created_at, signer: rec.key_id, signature, body };
        let text = serde_json::to_string_pretty(&sig).expect("signature serialises") + "\n";
        fsutil::atomic_write(&dir.join(AUDIT_SIGNATURE_FILE), text.as_bytes())?;
        Ok(sig)
    }
}

/// Checks a report folder on its own: the signature in `signature.json` (by `trusted_key` when
/// given) and every listed file against its hash, and that no listed file is missing.
pub fn verify_audit_dir(dir: &Path, trusted_key: Option<&str>) -> Result<AuditSignature> {
    let path = dir.join(AUDIT_SIGNATURE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| StoreError::io("read", &path, e))?;
    let sig: AuditSignature = serde_json::from_str(&text).map_err(|e| {
        StoreError::corrupt(path.display().to_string(), format!("not an audit signature: {e}"))
    })?;
    let body = serde_json::to_value(&sig.body).expect("serialises");
    keys::verify_hex(
        &sig.signer,
        &record_message("audit", &sig.body.checkpoint, &sig.created_at, &body),
        &sig.signature,
    )
    .map_err(|detail| StoreError::BadSignature { record: path.display().to_string(), detail })?;
    if let Some(k) = trusted_key.filter(|k| !k.eq_ignore_ascii_case(&sig.signer)) {
        return Err(StoreError::UntrustedKey {
            record: format!("audit {} (expected key {})", dir.display(), keys::short_id(k)),
            key: sig.signer,
        });
    }
    for (name, sha, _) in &sig.body.files {
        let f = dir.join(name);
        let (actual, _) = fsutil::sha256_file(&f)?;
        if &actual != sha {
            return Err(StoreError::BlobMismatch { hash: sha.clone(), path: f, actual });
        }
    }
    Ok(sig)
}
