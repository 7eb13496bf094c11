//! # adjoint-store: reproducible runs, a model registry, lineage, signing
//!
//! Teams that ship trained models must answer: which data, code and settings produced this
//! model; can we get back last Tuesday's; has anyone tampered with it; who may publish. This
//! crate answers them with an embedded SQLite database (bundled: nothing to install) in a
//! project folder, `runs/` by default.
//!
//! ## Recording a run
//!
//! A demo or trainer opens a [`Registry`], starts a [`RunRecorder`] and reports as it goes:
//!
//! ```
//! use adjoint_store::{Registry, Signer};
//! # let tmp = tempfile::tempdir().unwrap();
//! # let dir = tmp.path().join("runs");
//! # let data = tmp.path().join("train.csv"); std::fs::write(&data, "x,y\n1,2\n").unwrap();
//! # let ckpt = tmp.path().join("model.safetensors"); std::fs::write(&ckpt, b"weights").unwrap();
//! let reg = Registry::open(&dir)?;
//! let signer = Signer::generate(); // or Signer::load(path) / Signer::load_or_generate(path)
//! let mut run = reg.start_run(&signer, "forecast", serde_json::json!({"lr": 1e-3, "epochs": 2}), 7)?;
//! run.set_command(["demo", "forecast", "--epochs", "2"])?; // what `runs reproduce` reruns
//! run.record_data_file(&data)?;
//! run.log_epoch_metrics(1, [("loss".into(), 0.5)].into())?;
//! let hash = run.add_checkpoint(&ckpt, "final")?;            // copied into the blob store
//! let manifest = run.finish([("loss".into(), 0.25)].into())?; // signed, written, committed
//! reg.promote(&hash, "forecast@production", &signer)?;     // version 1, alias moved
//! let weights = reg.load_checkpoint("forecast@production")?; // hash + signatures checked
//! assert_eq!(weights.bytes, b"weights");
//! # Ok::<(), adjoint_store::StoreError>(())
//! ```
//!
//! ## Layout and schema
//!
//! See [`registry`] for the folder layout. Tables: `keys` (the trust policy), `runs` (one row
//! per run; the signed manifest JSON and signature once finished), `run_data`, `epochs`,
//! `checkpoints` (run, label, SHA-256, signature), `blobs` (content-addressed store: identical
//! weights are stored once), `model_versions` (model, version, SHA-256, writer signature),
//! `alias_moves` (append-only signed history of every alias move and rollback), and `records` /
//! `record_blobs` (signed evaluations, policy, gate decisions, monitoring, alerts, audits, data
//! labels; schema version 2, migrated from 1 on open). The lineage
//! graph (data → run → checkpoint → fine-tuned run → … → model version) is read from those rows,
//! see [`lineage`].
//!
//! ## Integrity and access
//!
//! Every record that matters is signed with Ed25519 ([`keys`]): manifests (canonical JSON, see
//! [`manifest`]), each checkpoint row (run, label, hash, size), each model version, each alias
//! move, and each entry of the key policy (by the writer that added it; the first key signs
//! itself and is pinned as root in `meta`). Loading through the registry
//! ([`Registry::load_checkpoint`], [`Registry::load_manifest`]) and [`Registry::verify`] check the
//! content hash, the signature, and that the signer is trusted; anything else is refused with an
//! error naming the record or file. Recording runs needs a trusted key; publishing versions,
//! moving aliases, deleting runs and changing the policy need a *writer* key. Reading needs no
//! key, only integrity. On a registry with no keys yet, the first key used becomes its writer
//! (trust on first use). Registry files are created 0600 in 0700 folders.
//!
//! Threat model, honestly: signatures catch edited blobs, manifests and rows, and keys the
//! policy does not list. Someone who can already write the database file *and* holds no writer
//! key can still delete rows (e.g. the latest alias move) — deletion is not signable without an
//! outside anchor; file permissions are the defence there.
//!
//! ## Evaluations, release gates, monitoring, audits, data access
//!
//! Everything that judges a model is a signed row of one append-only `records` table
//! ([`records`]): [`Evaluation`]s of a checkpoint (metrics overall and per slice, calibration,
//! input histograms for drift, attributions; [`evaluation`]), the release [`Policy`]
//! ([`policy`]: per-model thresholds, per-slice regression limits, monitoring rules, and which
//! keys may use data of each label), gate decisions ([`gate`]: [`Registry::promote`] refuses a
//! candidate that fails a check, naming it, and records the refusal; an override records its
//! reason and signer), monitoring windows and alerts ([`monitor`]: `k` breaching windows raise
//! an alert and may roll the alias back through the signed alias history), audits ([`audit`]:
//! a report folder whose files are stored as blobs and signed as a list), and data labels
//! (restricted data is recorded or exported only by the keys the policy allows;
//! [`Registry::data_usage`] lists every run and model that used a data version). The store
//! computes no model outputs: callers (the `adjoint` demos) build the evaluations.
//!
//! ```
//! use adjoint_store::{Evaluation, Policy, Registry, Signer};
//! # let tmp = tempfile::tempdir().unwrap();
//! # let ck = tmp.path().join("w"); std::fs::write(&ck, b"w").unwrap();
//! let reg = Registry::open(tmp.path().join("runs"))?;
//! let owner = Signer::generate();
//! let mut run = reg.start_run(&owner, "m", serde_json::json!({}), 0)?;
//! let hash = run.add_checkpoint(&ck, "final")?;
//! run.finish(Default::default())?;
//! reg.set_policy(&Policy::parse(r#"{"models": {"m": {"thresholds": [{"metric": "acc", "min": 0.9}]}}}"#, "policy")?, &owner)?;
//! let mut eval = Evaluation::new("test split", "acc", true, [("acc".to_string(), 0.8)].into());
//! eval.checkpoint = hash.clone();
//! reg.record_evaluation(&eval, &owner)?;
//! let refused = reg.promote(&hash, "m@prod", &owner).unwrap_err();
//! assert!(refused.to_string().contains("threshold acc >= 0.9"));
//! reg.promote_gated(&hash, "m@prod", &owner, Some("accepted for the pilot"))?;
//! assert!(reg.verify()?.ok());
//! # Ok::<(), adjoint_store::StoreError>(())
//! ```
//!
//! ## Robustness
//!
//! SQLite runs in WAL mode with `synchronous=FULL`; every multi-row write is one `BEGIN
//! IMMEDIATE` transaction with a 30 s busy timeout, so concurrent writers (two processes training
//! at once) serialise instead of corrupting anything. Blobs and manifest files are written
//! atomically (temp file, fsync, rename, fsync folder) *before* the rows that reference them
//! commit, so a crash leaves only unreferenced files, which [`Registry::gc`] removes.
//!
//! ## What is deterministic
//!
//! Manifest signing bytes (canonical JSON), content hashes, and metric values (floats round-trip
//! bit for bit through JSON; NaN/±inf are stored as strings). Whether a *run* is deterministic is
//! up to the code that ran: [`Registry::reproduce`] reruns it and reports which parts match bit
//! for bit (data, config, per-epoch and final metrics, checkpoint hashes); see [`reproduce`].
//!
//! ## Commands
//!
//! [`cli`] holds `adjoint runs …` / `adjoint keys …` as clap subcommands with runner functions
//! that print to any writer.
//!
//! ## Wiring into a binary (what `adjoint` does)
//!
//! * Flatten [`cli::StoreArgs`] into the top-level parser (`--registry`, env `ADJOINT_REGISTRY`,
//!   default `runs`; `--key`, env `ADJOINT_KEY`), and mount [`cli::RunsCommand`] /
//!   [`cli::KeysCommand`], dispatching to [`cli::run_runs`] / [`cli::run_keys`] with stdout and
//!   exiting with the returned code.
//! * A training demo: `let reg = store.open_registry()?; let signer = store.recording_signer()?;`
//!   `let mut run = reg.start_run(&signer, name, config_json, seed)?;`
//!   `run.set_command(cli::command_for_record(std::env::args().skip(1), &["--out"]))?;` then
//!   `record_data_file` / `record_dataset`, `log_epoch_metrics` each epoch, `add_checkpoint`
//!   after each `adjoint_nn::checkpoint::save`, and `finish(final_metrics)` (or `fail`).
//! * Reruns: the demo must write its other output under `$ADJOINT_OUT` when that is set
//!   ([`ENV_OUT`]); `runs reproduce` sets it, with `ADJOINT_REGISTRY` and `ADJOINT_KEY`, and
//!   reruns `std::env::current_exe()` with the recorded arguments.
//! * Loading a published model: `reg.load_checkpoint("forecast@production")?.bytes` (verified
//!   safetensors bytes) or `reg.checkout(spec, path)` and then `adjoint_nn::checkpoint::load`.

mod atomic;
pub mod audit;
pub mod cli;
mod diff;
mod error;
pub mod evaluation;
mod fsutil;
pub mod gate;
pub mod keys;
pub mod lineage;
mod maintenance;
pub mod manifest;
mod models;
pub mod monitor;
pub mod policy;
mod recorder;
pub mod records;
pub mod registry;
pub mod reproduce;

pub use atomic::write_atomic;
pub use audit::{verify_audit_dir, AuditReport, AuditSignature};
pub use diff::{diff_manifests, RunDiff};
pub use error::{Result, StoreError};
pub use evaluation::{
    Attribution, Calibration, CalibrationBin, Evaluation, FeatureDistribution, Slice, SliceGap,
};
pub use fsutil::{sha256_bytes, sha256_file};
pub use gate::{GateCheck, GateDecision};
pub use keys::{Signer, ENV_KEY};
pub use lineage::LineageNode;
pub use maintenance::{export_name, verify_export, GcReport, VerifyReport};
pub use manifest::{
    CheckpointRecord, CodeVersion, DataRecord, DistributedRecord, EpochRecord, Metrics, RunManifest,
    RunStatus, ShardRecord, SignedManifest,
};
pub use models::{parse_alias_spec, ModelVersion, RunSummary, VerifiedCheckpoint};
pub use monitor::{Alert, Monitor, MonitorWindow};
pub use policy::{DataLabel, DataUsage, ModelPolicy, MonitorPolicy, Policy, SliceRule, Threshold};
pub use recorder::RunRecorder;
pub use records::Record;
pub use registry::{Registry, Role, TrustedKey, DEFAULT_REGISTRY_DIR, ENV_REGISTRY};
pub use reproduce::{MetricComparison, ReproduceReport, ENV_OUT, ENV_REPRODUCING};
