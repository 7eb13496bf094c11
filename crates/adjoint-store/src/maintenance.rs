//! Whole-registry operations: `verify`, `gc`, `export`, and deleting runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::params;

use crate::error::{Result, StoreError};
use crate::fsutil;
use crate::keys::{self, Signer};
use crate::manifest::SignedManifest;
use crate::registry::Registry;

/// What `verify` found. Every problem names the record or file it is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blobs whose content was hashed.
    pub blobs_checked: usize,
    /// Checkpoint rows whose signatures were checked.
    pub checkpoints_checked: usize,
    /// Finished runs whose manifests were checked.
    pub manifests_checked: usize,
    /// Model versions and alias histories checked.
    pub model_records_checked: usize,
    /// Signed records (evaluations, policy, gate decisions, alerts, audits, labels) checked.
    pub signed_records_checked: usize,
    /// Integrity or trust failures.
    pub problems: Vec<String>,
    /// Harmless findings (leftovers of interrupted writes that `gc` removes, unfinished runs).
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What `gc` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blob hashes no checkpoint or model version referenced (row and file removed).
    pub removed_blobs: Vec<String>,
    /// Other files removed: from the blob store (interrupted writes, blobs never registered) and
    /// from `manifests/` (a manifest file whose run never finished: a writer killed between
    /// writing it and committing the run, or an interrupted write's temp file).
    pub removed_files: Vec<PathBuf>,
    /// Bytes freed.
    pub freed_bytes: u64,
}

/// Files under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    for entry in rd {
        let p = entry.map_err(|e| StoreError::io("list", dir, e))?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

impl Registry {
    fn column_strings(&self, what: &str, sql: &str) -> Result<Vec<String>> {
        self.query(what, |c| {
            let mut st = c.prepare(sql)?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Checks everything: SQLite's integrity check, the key policy's signature chain, every blob
    /// against its hash, every checkpoint, manifest (database row and file), model version and
    /// alias-move signature, and that signers are trusted.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut rep = VerifyReport::default();
        let integrity = self.column_strings("integrity check", "PRAGMA integrity_check")?;
        if integrity != ["ok"] {
            rep.problems.push(format!("database {}: {}", self.db_path().display(), integrity.join("; ")));
        }
        for key in self.column_strings("list keys", "SELECT key_id FROM keys ORDER BY key_id")? {
            if let Err(e) = self.key_role(&key) {
                rep.problems.push(e.to_string());
            }
        }
        let blobs = self.column_strings("list blobs", "SELECT sha256 FROM blobs ORDER BY sha256")?;
        for hash in &blobs {
            rep.blobs_checked += 1;
            if let Err(e) = self.check_blob(hash) {
                rep.problems.push(e.to_string());
            }
        }
        let known: BTreeSet<&String> = blobs.iter().collect();
        for hash in self
            .column_strings("list checkpoints", "SELECT DISTINCT sha256 FROM checkpoints ORDER BY sha256")?
        {
            rep.checkpoints_checked += 1;
            if !known.contains(&hash) {
                rep.problems.push(format!("checkpoint {hash} has no blob record"));
            }
            if let Err(e) = self.check_checkpoint_signed(&hash) {
                rep.problems.push(e.to_string());
            }
        }
        let runs: Vec<(String, String)> = self.query("list runs", |c| {
            let mut st = c.prepare("SELECT run_id, status FROM runs ORDER BY run_id")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let mut with_manifest = BTreeSet::new();
        for (run_id, status) in &runs {
            if status == "running" {
                rep.warnings.push(format!("run {run_id} never finished (still running, or it crashed)"));
                continue;
            }
            rep.manifests_checked += 1;
            with_manifest.insert(format!("{run_id}.json"));
            match self.load_manifest(run_id) {
                Ok(m) => {
                    for c in &m.manifest.checkpoints {
                        if !known.contains(&c.sha256) {
                            rep.problems
                                .push(format!("run {run_id}: checkpoint {} has no blob record", c.sha256));
                        }
                    }
                    if !self.manifest_path(run_id).exists() {
                        rep.warnings.push(format!(
                            "run {run_id}: manifest file is missing (the database copy is intact)"
                        ));
                    }
                }
                Err(e) => rep.problems.push(e.to_string()),
            }
        }
        let versions: Vec<(String, u32)> = self.query("list model versions", |c| {
            let mut st = c.prepare("SELECT model, version FROM model_versions ORDER BY model, version")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        for (m, v) in versions {
            rep.model_records_checked += 1;
            match self.model_version(&m, v) {
                Ok(mv) if !known.contains(&mv.sha256) => {
                    rep.problems.push(format!("model version {m}:{v}: blob {} has no record", mv.sha256))
                }
                Ok(_) => {}
                Err(e) => rep.problems.push(e.to_string()),
            }
        }
        match self.aliases() {
            Ok(a) => rep.model_records_checked += a.len(),
            Err(e) => rep.problems.push(e.to_string()),
        }
        let (n, problems) = self.verify_records()?;
        rep.signed_records_checked = n;
        rep.problems.extend(problems);
        // The readable policy.json copy must agree with the signed row.
        if let Err(e @ StoreError::BadSignature { .. }) = self.policy()
            && !rep.problems.contains(&e.to_string())
        {
            rep.problems.push(e.to_string());
        }
        let mut files = Vec::new();
        walk(&self.dir.join("blobs"), &mut files)?;
        for f in files {
            let name = blob_name_of(&self.dir, &f);
            if !name.as_ref().is_some_and(|n| known.contains(n)) {
                rep.warnings.push(format!(
                    "unregistered file {} (left by an interrupted write; gc removes it)",
                    f.display()
                ));
            }
        }
        let mut mfiles = Vec::new();
        walk(&self.dir.join("manifests"), &mut mfiles)?;
        for f in mfiles {
            let n = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !with_manifest.contains(&n) {
                rep.warnings.push(format!(
                    "manifest file {} belongs to no finished run (left by an interrupted finish; gc removes it)",
                    f.display()
                ));
            }
        }
        Ok(rep)
    }

    /// Removes blobs that no checkpoint, model version or signed record references, stray files in the blob
    /// store, and manifest files that belong to no finished run (a run's manifest file is written
    /// before the database commit that finishes it, so a writer killed in between leaves one; the
    /// database row is the record). Files modified within `grace` are kept, so a `gc` running
    /// beside a writer cannot delete a blob that is about to be registered or the manifest file of
    /// a run that is about to finish.
    pub fn gc(&self, grace: Duration) -> Result<GcReport> {
        let mut rep = GcReport::default();
        let fresh = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .map(|t| SystemTime::now().duration_since(t).unwrap_or_default() < grace)
                .unwrap_or(false)
        };
        let unreferenced = self.column_strings(
            "find unreferenced blobs",
            "SELECT sha256 FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM checkpoints)
             AND sha256 NOT IN (SELECT sha256 FROM model_versions)
             AND sha256 NOT IN (SELECT sha256 FROM record_blobs) ORDER BY sha256",
        )?;
        for hash in unreferenced {
            let path = self.blob_path(&hash);
            if fresh(&path) {
                continue;
            }
            let removed = self.write_tx("gc blob", |tx| {
                tx.execute(
                    "DELETE FROM blobs WHERE sha256=?1 AND sha256 NOT IN (SELECT sha256 FROM checkpoints)
                     AND sha256 NOT IN (SELECT sha256 FROM model_versions)
                     AND sha256 NOT IN (SELECT sha256 FROM record_blobs)",
                    [&hash],
                )
            })?;
            if removed == 1 {
                rep.freed_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("remove blob", path, e)),
                }
                rep.removed_blobs.push(hash);
            }
        }
        let known: BTreeSet<String> =
            self.column_strings("list blobs", "SELECT sha256 FROM blobs")?.into_iter().collect();
        let mut files = Vec::new();
        walk(&self.dir.join("blobs"), &mut files)?;
        for f in files {
            let registered = blob_name_of(&self.dir, &f).is_some_and(|n| known.contains(&n));
            if !registered && !fresh(&f) {
                rep.freed_bytes += std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(&f).map_err(|e| StoreError::io("remove", &f, e))?;
                rep.removed_files.push(f);
            }
        }
        let finished: BTreeSet<String> = self
            .column_strings("list finished runs", "SELECT run_id FROM runs WHERE status != 'running'")?
            .into_iter()
            .map(|id| format!("{id}.json"))
            .collect();
        let mut mfiles = Vec::new();
        walk(&self.dir.join("manifests"), &mut mfiles)?;
        for f in mfiles {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !finished.contains(&name) && !fresh(&f) {
                rep.freed_bytes += std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(&f).map_err(|e| StoreError::io("remove", &f, e))?;
                rep.removed_files.push(f);
            }
        }
        Ok(rep)
    }

    /// Deletes a run's records (not its blobs: `gc` frees those). Requires a writer key; refuses a
    /// run whose checkpoints are published model versions.
    pub fn delete_run(&self, run: &str, by: &Signer) -> Result<String> {
        let run_id = self.resolve_run_id(run)?;
        self.require_writer(&by.key_id(), &format!("delete run {run_id}"))?;
        self.write_tx_checked("delete run", |tx| {
            let db = |e| StoreError::Db { context: format!("delete run {run_id}"), source: e };
            let published: Option<String> = tx
                .query_row(
                    "SELECT model || ':' || version FROM model_versions
                     WHERE sha256 IN (SELECT sha256 FROM checkpoints WHERE run_id=?1) LIMIT 1",
                    [&run_id],
                    |r| r.get(0),
                )
                .ok();
            if let Some(mv) = published {
                return Err(StoreError::invalid(
                    "delete",
                    format!("run {run_id} produced model version {mv}"),
                ));
            }
            for t in ["runs", "run_data", "epochs", "checkpoints"] {
                tx.execute(&format!("DELETE FROM {t} WHERE run_id=?1"), params![run_id]).map_err(db)?;
            }
            Ok(())
        })?;
        let mf = self.manifest_path(&run_id);
        if mf.exists() {
            std::fs::remove_file(&mf).map_err(|e| StoreError::io("remove", &mf, e))?;
        }
        Ok(run_id)
    }

    /// Writes a self-contained copy of a run to `out`: `manifest.json` (the signed envelope),
    /// `signer.pub`, and `checkpoints/<n>-<label>.safetensors` for each checkpoint, every one read
    /// through the registry's checks. [`verify_export`] checks such a folder on its own.
    pub fn export(&self, run: &str, out: &Path) -> Result<SignedManifest> {
        self.export_as(run, out, None)
    }

    /// [`Registry::export`] by `by`: a run that read data labelled other than `public` is
    /// exported only by a key the policy's `data_access` lists for that label (with no key, or
    /// another key, nothing is written and [`StoreError::AccessDenied`] or
    /// [`StoreError::NoKey`] says why).
    pub fn export_as(&self, run: &str, out: &Path, by: Option<&Signer>) -> Result<SignedManifest> {
        let signed = self.load_manifest(run)?;
        let hashes: Vec<&str> = signed.manifest.data.iter().map(|d| d.sha256.as_str()).collect();
        let mut labelled = false;
        for h in &hashes {
            labelled |= self.data_label(h)?.is_some_and(|l| l.label != "public");
        }
        if labelled {
            let by = by.ok_or_else(|| StoreError::NoKey {
                action: format!("exporting run {} (it read labelled data)", signed.manifest.run_id),
            })?;
            self.check_data_access(&hashes, by, "export")?;
        }
        if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true) {
            return Err(StoreError::invalid(
                "export folder",
                format!("{} exists and is not empty", out.display()),
            ));
        }
        fsutil::ensure_private_dir(&out.join("checkpoints"))?;
        for (i, c) in signed.manifest.checkpoints.iter().enumerate() {
            let bytes = self.load_checkpoint(&c.sha256)?.bytes;
            fsutil::atomic_write(&out.join("checkpoints").join(export_name(i, &c.label)), &bytes)?;
        }
        fsutil::atomic_write(
            &out.join("signer.pub"),
            format!("adjoint-ed25519-public-v1 {}\n", signed.signer).as_bytes(),
        )?;
        fsutil::atomic_write(&out.join("manifest.json"), signed.to_json_pretty().as_bytes())?;
        Ok(signed)
    }
}

fn blob_name_of(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root.join("blobs").join("sha256")).ok()?;
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    (parts.len() == 2 && parts[0].len() == 2).then(|| parts.concat())
}

/// File name of the `i`-th checkpoint in an export.
pub fn export_name(i: usize, label: &str) -> String {
    let clean: String =
        label.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{i}-{clean}.safetensors")
}

/// Checks an exported folder without a registry: the manifest's signature, that it was signed by
/// `trusted_key` (a key id) when given, and each checkpoint file against its hash.
pub fn verify_export(dir: &Path, trusted_key: Option<&str>) -> Result<SignedManifest> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| StoreError::io("read", &path, e))?;
    let signed = SignedManifest::from_json(&text, &format!("manifest file {}", path.display()))?;
    signed.check_signature()?;
    if let Some(k) = trusted_key.filter(|k| *k != signed.signer) {
        return Err(StoreError::UntrustedKey {
            record: format!("export {} (expected key {})", dir.display(), keys::short_id(k)),
            key: signed.signer.clone(),
        });
    }
    for (i, c) in signed.manifest.checkpoints.iter().enumerate() {
        let f = dir.join("checkpoints").join(export_name(i, &c.label));
        let (actual, _) = fsutil::sha256_file(&f)?;
        if actual != c.sha256 {
            return Err(StoreError::BlobMismatch { hash: c.sha256.clone(), path: f, actual });
        }
    }
    Ok(signed)
}
