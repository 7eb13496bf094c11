//! Looking things up: runs, checkpoints, named models with versions and aliases, and verified loads.
//!
//! A *checkpoint spec* names a checkpoint in any of these ways:
//!
//! | spec              | meaning                                                    |
//! |-------------------|------------------------------------------------------------|
//! | `forecast@prod`   | the version the alias `prod` of model `forecast` points to |
//! | `forecast:3`      | version 3 of model `forecast`                              |
//! | `<run>/<label>`   | the checkpoint a run recorded under that label             |
//! | `<hex prefix>`    | a checkpoint by (a unique prefix of, ≥ 6 digits) its SHA-256 |
//! | `<run id prefix>` | the last checkpoint that run recorded                      |
//!
//! Aliases have a signed, append-only history: each move or rollback is a row with a per-alias
//! sequence number, signed by a writer. Replaying the history as a stack (a move pushes a version,
//! a rollback pops one) gives the current version, so repeated rollbacks walk further back.

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::fsutil;
use crate::keys::Signer;
use crate::manifest::{metrics_from_json, Metrics, RunStatus};
use crate::recorder::checkpoint_message;
use crate::registry::{Registry, Role};

/// One row of `runs list`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Run name.
    pub name: String,
    /// Status.
    pub status: RunStatus,
    /// Start time (RFC 3339).
    pub started_at: String,
    /// Seed.
    pub seed: u64,
    /// Final metrics (empty while running).
    pub final_metrics: Metrics,
}

/// A checkpoint whose bytes were read through the registry and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// SHA-256 of `bytes` (hex).
    pub sha256: String,
    /// The checkpoint file's content (a safetensors file for adjoint-nn checkpoints).
    pub bytes: Vec<u8>,
}

/// A model version row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelVersion {
    /// Model name.
    pub model: String,
    /// Version number (1, 2, ...).
    pub version: u32,
    /// Checkpoint hash.
    pub sha256: String,
    /// When published.
    pub created_at: String,
    /// Publishing key.
    pub key_id: String,
}

pub(crate) fn version_message(model: &str, version: u32, sha256: &str, created_at: &str) -> Vec<u8> {
    format!("adjoint-model-version-v1\n{model}\n{version}\n{sha256}\n{created_at}").into_bytes()
}

pub(crate) fn alias_message(
    model: &str,
    alias: &str,
    seq: i64,
    kind: &str,
    version: u32,
    moved_at: &str,
) -> Vec<u8> {
    format!("adjoint-alias-v1\n{model}\n{alias}\n{seq}\n{kind}\n{version}\n{moved_at}").into_bytes()
}

fn check_name(what: &'static str, s: &str) -> Result<()> {
    let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(what, format!("{s:?} (use letters, digits, '-', '_', '.')")))
    }
}

/// Splits `model@alias`.
pub fn parse_alias_spec(spec: &str) -> Result<(&str, &str)> {
    let (m, a) = spec
        .split_once('@')
        .ok_or_else(|| StoreError::invalid("alias", format!("{spec:?} is not of the form model@alias")))?;
    check_name("model name", m)?;
    check_name("alias name", a)?;
    Ok((m, a))
}

impl Registry {
    /// All runs, newest first.
    pub fn list_runs(&self) -> Result<Vec<RunSummary>> {
        type Row = (String, String, String, String, i64, Option<String>);
        let rows: Vec<Row> = self.query("list runs", |c| {
            let mut st = c.prepare(
                "SELECT run_id, name, status, started_at, seed, final_metrics FROM runs ORDER BY started_at DESC, run_id DESC",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(run_id, name, status, started_at, seed, fm)| {
                let record = format!("run {run_id}");
                let status = RunStatus::parse(&status)
                    .ok_or_else(|| StoreError::corrupt(&record, format!("unknown status {status:?}")))?;
                let final_metrics = match fm {
                    None => Metrics::new(),
                    Some(t) => serde_json::from_str(&t)
                        .ok()
                        .and_then(|v| metrics_from_json(&v))
                        .ok_or_else(|| StoreError::corrupt(&record, "final_metrics is not a metrics map"))?,
                };
                Ok(RunSummary { run_id, name, status, started_at, seed: seed as u64, final_metrics })
            })
            .collect()
    }

    /// The full id of the run whose id starts with `prefix`.
    pub fn resolve_run_id(&self, prefix: &str) -> Result<String> {
        let like = format!("{}%", prefix.replace(['%', '_'], ""));
        let ids: Vec<String> = self.query("find run", |c| {
            let mut st = c.prepare("SELECT run_id FROM runs WHERE run_id LIKE ?1 ORDER BY run_id LIMIT 5")?;
            let rows = st.query_map([&like], |r| r.get(0))?;
            rows.collect()
        })?;
        match ids.len() {
            0 => Err(StoreError::NotFound(format!("run {prefix:?}"))),
            1 => Ok(ids.into_iter().next().expect("one id")),
            _ if ids.iter().any(|i| i == prefix) => Ok(prefix.to_string()),
            _ => {
                Err(StoreError::Ambiguous { what: "run id", prefix: prefix.into(), matches: ids.join(", ") })
            }
        }
    }

    fn hashes_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let like = format!("{}%", prefix.to_ascii_lowercase());
        self.query("find checkpoint", |c| {
            let mut st = c.prepare(
                "SELECT sha256 FROM checkpoints WHERE sha256 LIKE ?1
                 UNION SELECT sha256 FROM model_versions WHERE sha256 LIKE ?1 LIMIT 5",
            )?;
            let rows = st.query_map([&like], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Resolves a checkpoint spec (see the module docs) to a SHA-256, checking the signatures of
    /// the alias history and model version it goes through. Does not read the blob.
    pub fn resolve(&self, spec: &str) -> Result<String> {
        if spec.contains('@') {
            let (model, alias) = parse_alias_spec(spec)?;
            let version = self.alias_version(model, alias)?;
            return Ok(self.model_version(model, version)?.sha256);
        }
        if let Some((model, v)) = spec.split_once(':') {
            check_name("model name", model)?;
            let version: u32 = v
                .parse()
                .map_err(|_| StoreError::invalid("version", format!("{v:?} in {spec:?} is not a number")))?;
            return Ok(self.model_version(model, version)?.sha256);
        }
        if let Some((run, label)) = spec.split_once('/') {
            let run_id = self.resolve_run_id(run)?;
            let hash: Option<String> = self.query("find checkpoint by label", |c| {
                c.query_row(
                    "SELECT sha256 FROM checkpoints WHERE run_id=?1 AND label=?2 ORDER BY seq DESC LIMIT 1",
                    params![run_id, label],
                    |r| r.get(0),
                )
                .optional()
            })?;
            return hash.ok_or_else(|| StoreError::NotFound(format!("checkpoint {label:?} of run {run_id}")));
        }
        if spec.len() >= 6 && spec.chars().all(|c| c.is_ascii_hexdigit()) {
            let hashes = self.hashes_with_prefix(spec)?;
            match hashes.len() {
                1 => return Ok(hashes.into_iter().next().expect("one")),
                0 => {}
                _ => {
                    return Err(StoreError::Ambiguous {
                        what: "checkpoint hash",
                        prefix: spec.into(),
                        matches: hashes.join(", "),
                    })
                }
            }
        }
        let run_id = self.resolve_run_id(spec).map_err(|e| match e {
            StoreError::NotFound(_) => StoreError::NotFound(format!("checkpoint, model or run {spec:?}")),
            e => e,
        })?;
        let hash: Option<String> = self.query("find last checkpoint", |c| {
            c.query_row(
                "SELECT sha256 FROM checkpoints WHERE run_id=?1 ORDER BY seq DESC LIMIT 1",
                [&run_id],
                |r| r.get(0),
            )
            .optional()
        })?;
        hash.ok_or_else(|| StoreError::NotFound(format!("a checkpoint of run {run_id} (it recorded none)")))
    }

    /// Checks that at least one checkpoint row for `sha256` carries a valid signature by a trusted
    /// key; with none valid, returns the first failure.
    pub(crate) fn check_checkpoint_signed(&self, sha256: &str) -> Result<()> {
        type Row = (String, i64, String, i64, String, String, String);
        let rows: Vec<Row> = self.query("read checkpoint", |c| {
            let mut st = c.prepare(
                "SELECT run_id, seq, label, bytes, created_at, key_id, signature FROM checkpoints WHERE sha256=?1",
            )?;
            let rows = st.query_map([sha256], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?;
            rows.collect()
        })?;
        let mut first_err = None;
        for (run_id, seq, label, bytes, created_at, key_id, sig) in rows {
            let record =
                format!("checkpoint {label:?} ({}) of run {run_id}", &sha256[..12.min(sha256.len())]);
            let msg = checkpoint_message(&run_id, seq, &label, sha256, bytes as u64, &created_at);
            match self.check_signed(&record, &key_id, &msg, &sig, Role::Signer) {
                Ok(()) => return Ok(()),
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        Err(first_err
            .unwrap_or_else(|| StoreError::NotFound(format!("a signed checkpoint record for {sha256}"))))
    }

    /// Resolves `spec`, checks every signature on the way and the blob's hash, and returns the
    /// bytes. This is how demos should load weights from the registry.
    pub fn load_checkpoint(&self, spec: &str) -> Result<VerifiedCheckpoint> {
        let sha256 = self.resolve(spec)?;
        self.check_checkpoint_signed(&sha256)?;
        let bytes = self.read_blob(&sha256)?;
        Ok(VerifiedCheckpoint { sha256, bytes })
    }

    /// [`Registry::load_checkpoint`], then writes the bytes atomically to `dest` (e.g. for
    /// `adjoint_nn::checkpoint::load(dest)`). Returns the SHA-256.
    pub fn checkout(&self, spec: &str, dest: &std::path::Path) -> Result<String> {
        let c = self.load_checkpoint(spec)?;
        fsutil::atomic_write(dest, &c.bytes)?;
        Ok(c.sha256)
    }

    /// A model version, signature-checked (publisher must be a writer).
    pub fn model_version(&self, model: &str, version: u32) -> Result<ModelVersion> {
        type Row = (String, String, String, String);
        let row: Option<Row> = self.query("read model version", |c| {
            c.query_row(
                "SELECT sha256, created_at, key_id, signature FROM model_versions WHERE model=?1 AND version=?2",
                params![model, version],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
        })?;
        let (sha256, created_at, key_id, sig) =
            row.ok_or_else(|| StoreError::NotFound(format!("model version {model}:{version}")))?;
        let msg = version_message(model, version, &sha256, &created_at);
        self.check_signed(&format!("model version {model}:{version}"), &key_id, &msg, &sig, Role::Writer)?;
        Ok(ModelVersion { model: model.into(), version, sha256, created_at, key_id })
    }

    /// All versions of `model`, oldest first (signatures checked).
    pub fn model_versions(&self, model: &str) -> Result<Vec<ModelVersion>> {
        let vs: Vec<u32> = self.query("list model versions", |c| {
            let mut st = c.prepare("SELECT version FROM model_versions WHERE model=?1 ORDER BY version")?;
            let rows = st.query_map([model], |r| r.get(0))?;
            rows.collect()
        })?;
        vs.into_iter().map(|v| self.model_version(model, v)).collect()
    }

    /// Signed alias history replayed as a stack; returns `(stack, last seq)`.
    fn alias_stack(&self, model: &str, alias: &str) -> Result<(Vec<u32>, i64)> {
        type Row = (i64, String, u32, String, String, String);
        let rows: Vec<Row> = self.query("read alias history", |c| {
            let mut st = c.prepare(
                "SELECT seq, kind, version, moved_at, key_id, signature FROM alias_moves
                 WHERE model=?1 AND alias=?2 ORDER BY seq",
            )?;
            let rows = st.query_map(params![model, alias], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?;
            rows.collect()
        })?;
        let mut stack = Vec::new();
        let mut last = 0;
        for (seq, kind, version, moved_at, key_id, sig) in rows {
            let record = format!("alias {model}@{alias} move #{seq}");
            let msg = alias_message(model, alias, seq, &kind, version, &moved_at);
            self.check_signed(&record, &key_id, &msg, &sig, Role::Writer)?;
            if seq != last + 1 {
                return Err(StoreError::corrupt(record, format!("history has a gap after move #{last}")));
            }
            last = seq;
            match kind.as_str() {
                "move" => stack.push(version),
                "rollback" => {
                    stack.pop();
                    if stack.last() != Some(&version) {
                        return Err(StoreError::corrupt(
                            record,
                            "rollback target disagrees with the history",
                        ));
                    }
                }
                k => return Err(StoreError::corrupt(record, format!("unknown kind {k:?}"))),
            }
        }
        Ok((stack, last))
    }

    /// The version `model@alias` points to now.
    pub fn alias_version(&self, model: &str, alias: &str) -> Result<u32> {
        self.alias_stack(model, alias)?
            .0
            .last()
            .copied()
            .ok_or_else(|| StoreError::NotFound(format!("alias {model}@{alias}")))
    }

    /// All `(model, alias, version)` triples currently set.
    pub fn aliases(&self) -> Result<Vec<(String, String, u32)>> {
        let pairs: Vec<(String, String)> = self.query("list aliases", |c| {
            let mut st = c.prepare("SELECT DISTINCT model, alias FROM alias_moves ORDER BY model, alias")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let mut out = Vec::new();
        for (m, a) in pairs {
            if let Some(v) = self.alias_stack(&m, &a)?.0.last() {
                out.push((m, a, *v));
            }
        }
        Ok(out)
    }

    /// Publishes the checkpoint `spec` as a new version of `model` (or returns the existing version
    /// holding the same hash). Requires a writer key. Returns `(version, newly_created)`.
    pub fn publish(&self, spec: &str, model: &str, by: &Signer) -> Result<(u32, bool)> {
        check_name("model name", model)?;
        let key_id = by.key_id();
        self.require_writer(&key_id, &format!("publish a version of model {model}"))?;
        let sha256 = self.load_checkpoint(spec)?.sha256;
        // A checkpoint only failed runs produced (e.g. training diverged) is never a model.
        let statuses: Vec<String> = self.query("read the runs of a checkpoint", |c| {
            let mut st = c.prepare(
                "SELECT r.status FROM checkpoints c JOIN runs r ON r.run_id = c.run_id WHERE c.sha256 = ?1",
            )?;
            let rows = st.query_map([&sha256], |r| r.get(0))?;
            rows.collect()
        })?;
        if !statuses.is_empty() && statuses.iter().all(|s| s == RunStatus::Failed.as_str()) {
            return Err(StoreError::Invalid {
                what: "checkpoint to publish",
                detail: format!(
                    "{spec} comes only from failed runs; a failed run's checkpoints cannot be published"
                ),
            });
        }
        self.write_tx_checked("publish model version", |tx| {
            let db = |e| StoreError::Db { context: format!("publish {model}"), source: e };
            let existing: Option<u32> = tx
                .query_row(
                    "SELECT version FROM model_versions WHERE model=?1 AND sha256=?2 ORDER BY version LIMIT 1",
                    params![model, sha256],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            if let Some(v) = existing {
                return Ok((v, false));
            }
            let next: u32 = tx
                .query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model=?1", [model], |r| {
                    r.get(0)
                })
                .map_err(db)?;
            let created_at = fsutil::now_rfc3339();
            let sig = by.sign(&version_message(model, next, &sha256, &created_at));
            tx.execute(
                "INSERT INTO model_versions(model, version, sha256, created_at, key_id, signature) VALUES(?1,?2,?3,?4,?5,?6)",
                params![model, next, sha256, created_at, key_id, sig],
            )
            .map_err(db)?;
            Ok((next, true))
        })
    }

    /// Appends a signed alias move. The history is read and the row written in one `BEGIN
    /// IMMEDIATE` transaction (the stack is read through the same connection, inside it), so
    /// concurrent movers serialise; `decide` maps the current stack to `(kind, version)`.
    fn append_alias_move(
        &self,
        model: &str,
        alias: &str,
        by: &Signer,
        decide: impl FnOnce(&[u32]) -> Result<(&'static str, u32)>,
    ) -> Result<(Option<u32>, u32)> {
        let key_id = by.key_id();
        self.write_tx_checked("move alias", |tx| {
            let (stack, last) = self.alias_stack(model, alias)?;
            let (kind, version) = decide(&stack)?;
            let moved_at = fsutil::now_rfc3339();
            let seq = last + 1;
            let sig = by.sign(&alias_message(model, alias, seq, kind, version, &moved_at));
            tx.execute(
                "INSERT INTO alias_moves(model, alias, seq, kind, version, moved_at, key_id, signature)
                 VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                params![model, alias, seq, kind, version, moved_at, key_id, sig],
            )
            .map_err(|e| StoreError::Db { context: format!("move alias {model}@{alias}"), source: e })?;
            Ok((stack.last().copied(), version))
        })
    }

    /// Publishes `checkpoint` and moves the alias without the release gate (the gate's own last
    /// step; callers use [`Registry::promote`]). Requires a writer key. Returns the version.
    pub(crate) fn promote_unchecked(&self, checkpoint: &str, target: &str, by: &Signer) -> Result<u32> {
        let (model, alias) = parse_alias_spec(target)?;
        self.require_writer(&by.key_id(), &format!("move alias {target}"))?;
        let (version, _) = self.publish(checkpoint, model, by)?;
        self.append_alias_move(model, alias, by, |_| Ok(("move", version)))?;
        Ok(version)
    }

    /// Points `model@alias` back at the version it pointed to before its last move. Requires a
    /// writer key. Returns `(from, to)` versions.
    pub fn rollback(&self, target: &str, by: &Signer) -> Result<(u32, u32)> {
        let (model, alias) = parse_alias_spec(target)?;
        self.require_writer(&by.key_id(), &format!("move alias {target}"))?;
        let (from, to) = self.append_alias_move(model, alias, by, |stack| {
            let to = stack.len().checked_sub(2).map(|i| stack[i]).ok_or_else(|| {
                StoreError::NotFound(format!("an earlier version of {target} to roll back to"))
            })?;
            self.model_version(model, to)?;
            Ok(("rollback", to))
        })?;
        Ok((from.expect("a rollback target implies a current version"), to))
    }
}
