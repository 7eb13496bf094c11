//! [`RunRecorder`]: what a demo or trainer calls while it runs.
//!
//! Each call writes through to the database at once (data fingerprints, epoch metrics, signed
//! checkpoint rows), so a run that crashes leaves a visible `running` record with everything it
//! logged; only [`RunRecorder::finish`] (or [`RunRecorder::fail`]) assembles and signs the
//! manifest.

use std::path::Path;

use rusqlite::params;
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::fsutil;
use crate::keys::Signer;
use crate::manifest::{
    metrics_to_json, CheckpointRecord, CodeVersion, DataRecord, DistributedRecord, EpochRecord, Metrics,
    RunManifest, RunStatus, SignedManifest, MANIFEST_FORMAT,
};
use crate::registry::Registry;

/// The message signed for each checkpoint row.
pub(crate) fn checkpoint_message(
    run_id: &str,
    seq: i64,
    label: &str,
    sha256: &str,
    bytes: u64,
    created_at: &str,
) -> Vec<u8> {
    format!("adjoint-checkpoint-v1\n{run_id}\n{seq}\n{label}\n{sha256}\n{bytes}\n{created_at}").into_bytes()
}

/// Records one run into a registry. Create it with [`Registry::start_run`].
///
/// ```
/// use adjoint_store::{Registry, Signer};
/// let dir = tempfile::tempdir().unwrap();
/// let reg = Registry::open(dir.path().join("runs")).unwrap();
/// let signer = Signer::generate();
/// let mut run = reg.start_run(&signer, "demo", serde_json::json!({"lr": 0.1}), 42).unwrap();
/// run.log_epoch_metrics(1, [("loss".to_string(), 0.5)].into_iter().collect()).unwrap();
/// let ckpt = dir.path().join("w.safetensors");
/// std::fs::write(&ckpt, b"weights").unwrap();
/// let hash = run.add_checkpoint(&ckpt, "final").unwrap();
/// let manifest = run.finish([("loss".to_string(), 0.25)].into_iter().collect()).unwrap();
/// assert_eq!(manifest.checkpoints[0].sha256, hash);
/// ```
#[derive(Debug)]
pub struct RunRecorder {
    reg: Registry,
    signer: Signer,
    manifest: RunManifest,
}

impl Registry {
    /// Starts recording a run signed by `signer`.
    ///
    /// On a registry with no trusted keys yet, `signer` becomes its first writer (trust on first
    /// use); otherwise `signer` must already be trusted, so that an unknown key cannot write runs
    /// that `verify` would later reject. Code version defaults to this crate's version plus the
    /// working directory's git commit; change it with [`RunRecorder::set_code_version`].
    pub fn start_run(&self, signer: &Signer, name: &str, config: Value, seed: u64) -> Result<RunRecorder> {
        self.bootstrap(signer)?;
        let key_id = signer.key_id();
        self.require_trusted(&key_id, &format!("new run {name:?}"))?;
        let (git_commit, git_dirty) = fsutil::git_state();
        let manifest = RunManifest {
            format: MANIFEST_FORMAT,
            run_id: fsutil::new_run_id(),
            name: name.to_string(),
            started_at: fsutil::now_rfc3339(),
            ended_at: None,
            status: RunStatus::Running,
            code: CodeVersion {
                package: env!("CARGO_PKG_NAME").into(),
                version: env!("CARGO_PKG_VERSION").into(),
                git_commit,
                git_dirty,
            },
            command: None,
            cwd: std::env::current_dir().ok().map(|p| p.display().to_string()),
            seed,
            config,
            data: Vec::new(),
            parent_checkpoint: None,
            epochs: Vec::new(),
            final_metrics: Metrics::new(),
            checkpoints: Vec::new(),
            distributed: None,
        };
        let m = &manifest;
        let code = serde_json::to_string(&m.code).expect("code version serialises");
        self.write_tx("start run", |tx| {
            tx.execute(
                "INSERT INTO runs(run_id, name, status, started_at, key_id, seed, config, code, cwd)
                 VALUES(?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    m.run_id,
                    m.name,
                    m.started_at,
                    key_id,
                    seed as i64,
                    m.config.to_string(),
                    code,
                    m.cwd
                ],
            )
        })?;
        Ok(RunRecorder { reg: Registry::open(&self.dir)?, signer: signer.clone(), manifest })
    }
}

impl RunRecorder {
    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.manifest.run_id
    }

    /// The manifest as recorded so far.
    pub fn manifest(&self) -> &RunManifest {
        &self.manifest
    }

    fn update(&self, what: &str, sql: &str, value: &dyn rusqlite::ToSql) -> Result<()> {
        self.reg.write_tx(what, |tx| tx.execute(sql, params![value, self.manifest.run_id]).map(|_| ()))
    }

    /// Sets which package and version ran (the git commit is detected at start).
    pub fn set_code_version(&mut self, package: &str, version: &str) -> Result<()> {
        self.manifest.code.package = package.into();
        self.manifest.code.version = version.into();
        let code = serde_json::to_string(&self.manifest.code).expect("code version serialises");
        self.update("set code version", "UPDATE runs SET code=?1 WHERE run_id=?2", &code)
    }

    /// Records the arguments (without the program name, without registry/key/output locations)
    /// that rerun this run; `adjoint runs reproduce` executes the current binary with them.
    pub fn set_command<I, S>(&mut self, args: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let json = serde_json::to_string(&args).expect("strings serialise");
        self.manifest.command = Some(args);
        self.update("set command", "UPDATE runs SET command=?1 WHERE run_id=?2", &json)
    }

    /// Records that the run is data-parallel: its world size and each rank's data shard (part
    /// of the signed manifest; kept in memory until [`finish`](Self::finish) writes it).
    pub fn set_distributed(&mut self, record: DistributedRecord) {
        self.manifest.distributed = Some(record);
    }

    /// Records the checkpoint this run starts from (fine-tuning), given as any spec
    /// [`Registry::resolve`] accepts (`model@alias`, `model:3`, a hash prefix, a run id). The
    /// checkpoint is loaded and verified first. Returns its SHA-256.
    pub fn set_parent_checkpoint(&mut self, spec: &str) -> Result<String> {
        let hash = self.reg.load_checkpoint(spec)?.sha256;
        self.manifest.parent_checkpoint = Some(hash.clone());
        self.update("set parent checkpoint", "UPDATE runs SET parent=?1 WHERE run_id=?2", &hash)?;
        Ok(hash)
    }

    fn push_data(&mut self, rec: DataRecord) -> Result<String> {
        self.reg.check_data_access(&[rec.sha256.as_str()], &self.signer, "record")?;
        let seq = self.manifest.data.len() as i64;
        let (id, r) = (&self.manifest.run_id, &rec);
        self.reg.write_tx("record data", |tx| {
            tx.execute(
                "INSERT INTO run_data(run_id, seq, name, sha256, bytes) VALUES(?1, ?2, ?3, ?4, ?5)",
                params![id, seq, r.name, r.sha256, r.bytes as i64],
            )
        })?;
        let hash = rec.sha256.clone();
        self.manifest.data.push(rec);
        Ok(hash)
    }

    /// Fingerprints a data file the run reads (SHA-256, streamed). Returns the hash.
    pub fn record_data_file(&mut self, path: impl AsRef<Path>) -> Result<String> {
        let path = path.as_ref();
        let (sha256, bytes) = fsutil::sha256_file(path)?;
        self.push_data(DataRecord { name: path.display().to_string(), sha256, bytes })
    }

    /// Fingerprints an in-memory dataset (e.g. one generated from the seed) under `name`.
    pub fn record_dataset(&mut self, name: &str, content: &[u8]) -> Result<String> {
        let sha256 = fsutil::sha256_bytes(content);
        self.push_data(DataRecord { name: name.into(), sha256, bytes: content.len() as u64 })
    }

    /// Records the metrics at the end of `epoch`.
    pub fn log_epoch_metrics(&mut self, epoch: u64, metrics: Metrics) -> Result<()> {
        let seq = self.manifest.epochs.len() as i64;
        let json = metrics_to_json(&metrics).to_string();
        let id = &self.manifest.run_id;
        self.reg.write_tx("log epoch metrics", |tx| {
            tx.execute(
                "INSERT INTO epochs(run_id, seq, epoch, metrics) VALUES(?1, ?2, ?3, ?4)",
                params![id, seq, epoch as i64, json],
            )
        })?;
        self.manifest.epochs.push(EpochRecord { epoch, metrics });
        Ok(())
    }

    /// Copies a checkpoint file (e.g. written by `adjoint_nn::checkpoint::save`) into the blob
    /// store, signs its hash and records it under `label`. Returns its SHA-256.
    pub fn add_checkpoint(&mut self, path: impl AsRef<Path>, label: &str) -> Result<String> {
        let (sha256, bytes) = self.reg.put_blob_file(path.as_ref())?;
        let seq = self.manifest.checkpoints.len() as i64;
        let created_at = fsutil::now_rfc3339();
        let id = &self.manifest.run_id;
        let sig = self.signer.sign(&checkpoint_message(id, seq, label, &sha256, bytes, &created_at));
        let key_id = self.signer.key_id();
        self.reg.write_tx("add checkpoint", |tx| {
            tx.execute(
                "INSERT INTO checkpoints(run_id, seq, label, sha256, bytes, created_at, key_id, signature)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![id, seq, label, sha256, bytes as i64, created_at, key_id, sig],
            )
        })?;
        self.manifest.checkpoints.push(CheckpointRecord {
            label: label.into(),
            sha256: sha256.clone(),
            bytes,
        });
        Ok(sha256)
    }

    /// Ends the run: signs the manifest, writes `manifests/<run_id>.json` and marks it finished.
    pub fn finish(self, final_metrics: Metrics) -> Result<RunManifest> {
        self.close(RunStatus::Finished, final_metrics)
    }

    /// Ends the run as failed (e.g. the loss diverged), still signing what was recorded.
    pub fn fail(self, final_metrics: Metrics) -> Result<RunManifest> {
        self.close(RunStatus::Failed, final_metrics)
    }

    fn close(mut self, status: RunStatus, final_metrics: Metrics) -> Result<RunManifest> {
        self.manifest.final_metrics = final_metrics;
        self.manifest.status = status;
        self.manifest.ended_at = Some(fsutil::now_rfc3339());
        let signed = SignedManifest::sign(self.manifest.clone(), &self.signer);
        let m = &signed.manifest;
        fsutil::atomic_write(&self.reg.manifest_path(&m.run_id), signed.to_json_pretty().as_bytes())?;
        let manifest_json = serde_json::to_string(m).expect("manifest serialises");
        let fm = metrics_to_json(&m.final_metrics).to_string();
        self.reg.write_tx("finish run", |tx| {
            tx.execute(
                "UPDATE runs SET status=?1, ended_at=?2, final_metrics=?3, manifest=?4, signature=?5 WHERE run_id=?6",
                params![status.as_str(), m.ended_at, fm, manifest_json, signed.signature, m.run_id],
            )
        })?;
        Ok(signed.manifest)
    }
}

impl Registry {
    /// Path of a run's manifest file.
    pub fn manifest_path(&self, run_id: &str) -> std::path::PathBuf {
        self.dir.join("manifests").join(format!("{run_id}.json"))
    }

    /// Loads a finished run's manifest from the database, checking its signature and that the
    /// signer is trusted, and that the manifest file (if present) agrees with it.
    pub fn load_manifest(&self, run_id: &str) -> Result<SignedManifest> {
        let run_id = self.resolve_run_id(run_id)?;
        let record = format!("run {run_id}");
        type Row = (String, String, Option<String>, Option<String>);
        let (status, key_id, manifest, sig): Row = self.query("read run", |c| {
            c.query_row(
                "SELECT status, key_id, manifest, signature FROM runs WHERE run_id=?1",
                [&run_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        })?;
        let (Some(manifest), Some(signature)) = (manifest, sig) else {
            return Err(StoreError::NotFound(format!(
                "manifest of run {run_id} (status {status}: the run has not finished, or crashed)"
            )));
        };
        let manifest: RunManifest = serde_json::from_str(&manifest).map_err(|e| {
            StoreError::corrupt(&record, format!("manifest column is not a valid manifest: {e}"))
        })?;
        if manifest.run_id != run_id {
            return Err(StoreError::corrupt(&record, format!("manifest names run {}", manifest.run_id)));
        }
        let signed = SignedManifest { manifest, signer: key_id, signature };
        signed.check_signature()?;
        self.require_trusted(&signed.signer, &format!("manifest of run {run_id}"))?;
        let path = self.manifest_path(&run_id);
        if path.exists() {
            let text =
                std::fs::read_to_string(&path).map_err(|e| StoreError::io("read manifest", &path, e))?;
            let file = SignedManifest::from_json(&text, &format!("manifest file {}", path.display()))?;
            file.check_signature().map_err(|e| match e {
                StoreError::BadSignature { detail, .. } => {
                    StoreError::BadSignature { record: format!("manifest file {}", path.display()), detail }
                }
                e => e,
            })?;
            let same = file.signer == signed.signer
                && file.signature == signed.signature
                && file.manifest.signing_bytes() == signed.manifest.signing_bytes();
            if !same {
                return Err(StoreError::corrupt(
                    format!("manifest file {}", path.display()),
                    "differs from the signed manifest in the database",
                ));
            }
        }
        Ok(signed)
    }
}
