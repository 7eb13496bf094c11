//! The `adjoint runs …` and `adjoint keys …` commands, as clap-derive types the `adjoint` binary
//! mounts, and functions that run them and print to any writer (so tests capture the output).
//!
//! ```
//! use clap::Parser;
//! use adjoint_store::cli::{run_runs, RunsCommand, StoreArgs};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     store: StoreArgs,
//!     #[command(subcommand)]
//!     runs: RunsCommand,
//! }
//! let dir = tempfile::tempdir().unwrap();
//! let reg = dir.path().join("runs");
//! let cli = Cli::parse_from(["adjoint", "--registry", reg.to_str().unwrap(), "list"]);
//! let mut out = Vec::new();
//! assert_eq!(run_runs(&cli.runs, &cli.store, &mut out).unwrap(), 0);
//! assert!(String::from_utf8(out).unwrap().contains("no runs"));
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Result, StoreError};
use crate::keys::{self, Signer};
use crate::manifest::{Metrics, RunStatus};
use crate::registry::{Registry, Role};

/// Registry location and signing key, shared by all store commands.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct StoreArgs {
    /// Registry folder.
    #[arg(long, global = true, env = "ADJOINT_REGISTRY", default_value = "runs")]
    pub registry: PathBuf,
    /// Ed25519 secret key file used to sign (create one with `adjoint keys generate`).
    #[arg(long, global = true, env = "ADJOINT_KEY")]
    pub key: Option<PathBuf>,
}

impl StoreArgs {
    /// Opens (creating if needed) the registry: for commands that record runs.
    pub fn open_registry(&self) -> Result<Registry> {
        Registry::open(&self.registry)
    }

    /// Opens the registry only if it exists: for `runs …` commands.
    pub fn open_existing_registry(&self) -> Result<Registry> {
        Registry::open_existing(&self.registry)
    }

    /// The key a demo or trainer signs its runs with: `--key`/`$ADJOINT_KEY` if given, else
    /// [`keys::default_key_path`], generated (0600) on first use.
    pub fn recording_signer(&self) -> Result<Signer> {
        match &self.key {
            Some(p) => Signer::load(p),
            None => Signer::load_or_generate(&keys::default_key_path().ok_or_else(|| StoreError::NoKey {
                action: "recording a run (no home folder for a default key)".into(),
            })?),
        }
    }

    /// Loads the signing key, if one was given.
    pub fn signer(&self) -> Result<Option<Signer>> {
        self.key.as_deref().map(Signer::load).transpose()
    }

    /// Loads the signing key, or fails saying `action` needs one.
    pub fn require_signer(&self, action: &str) -> Result<Signer> {
        self.signer()?.ok_or_else(|| StoreError::NoKey { action: action.into() })
    }
}

/// The arguments to record with [`crate::RunRecorder::set_command`]: `args` (without the program
/// name) minus `--registry`/`--key` and any flags in `strip` (each with its value, as `--flag v`
/// or `--flag=v`), since `runs reproduce` supplies those locations itself.
///
/// ```
/// let argv = ["demo", "mnist", "--registry", "runs", "--epochs=3", "--key=k", "--out", "o"];
/// let rec = adjoint_store::cli::command_for_record(argv, &["--out"]);
/// assert_eq!(rec, ["demo", "mnist", "--epochs=3"]);
/// ```
pub fn command_for_record<I, S>(args: I, strip: &[&str]) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let drop_flag = |a: &str| {
        ["--registry", "--key"].iter().chain(strip).find_map(|f| {
            if a == *f {
                Some(true) // value follows
            } else if a.strip_prefix(f).is_some_and(|rest| rest.starts_with('=')) {
                Some(false)
            } else {
                None
            }
        })
    };
    let mut out = Vec::new();
    let mut skip_next = false;
    for a in args.into_iter().map(Into::into) {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        match drop_flag(&a) {
            Some(value_follows) => skip_next = value_follows,
            None => out.push(a),
        }
    }
    out
}

/// `adjoint runs …`
#[derive(clap::Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum RunsCommand {
    /// List runs, newest first.
    List,
    /// Show one run's manifest (id or unique prefix).
    Show {
        /// Run id or prefix.
        run: String,
        /// Print the signed manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Configuration, data and metric differences between two runs.
    Diff {
        /// First run.
        a: String,
        /// Second run.
        b: String,
    },
    /// Where a model, alias, checkpoint or run came from, as a tree; with `--data`, every run,
    /// checkpoint, model version and evaluation that used a data version.
    Lineage {
        /// `model`, `model@alias`, `model:version`, a checkpoint hash prefix or a run id.
        #[arg(required_unless_present = "data", conflicts_with = "data")]
        target: Option<String>,
        /// A data hash (or unique prefix, or a file, which is hashed): list what used it.
        #[arg(long, value_name = "HASH")]
        data: Option<String>,
    },
    /// List models with their versions and aliases.
    Models,
    /// Publish a checkpoint as a model version and point `model@alias` at it (writer key), if
    /// the release policy's checks pass; refusals are recorded.
    Promote {
        /// Checkpoint: hash prefix, `run/label`, run id (its last checkpoint), `model:version`.
        checkpoint: String,
        /// `model@alias`.
        target: String,
        /// Promote despite failed checks; the reason and the signer are recorded.
        #[arg(long = "override", value_name = "REASON")]
        override_reason: Option<String>,
    },
    /// The release gate's recorded decisions (passed, refused, override), oldest first.
    Gates {
        /// Only those for `model@alias`.
        target: Option<String>,
    },
    /// Monitoring alerts, oldest first.
    Alerts {
        /// Only those for `model@alias`.
        target: Option<String>,
    },
    /// The release and data policy: show it, or replace it from a JSON file (writer key).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Give a data version an owner and a label (writer key); labels other than `public` are
    /// recorded and exported only by keys the policy allows.
    Label {
        /// Data file, or hash (prefix) of recorded data.
        data: String,
        /// Owner of the data.
        #[arg(long)]
        owner: String,
        /// Label, e.g. `public` or `restricted`.
        #[arg(long)]
        label: String,
    },
    /// Point `model@alias` back at its previous version (writer key).
    Rollback {
        /// `model@alias`.
        target: String,
    },
    /// Check every blob, signature and record; exit 1 on any problem.
    Verify,
    /// Delete unreferenced blobs and leftovers of interrupted writes.
    Gc {
        /// Keep files younger than this many seconds (protects concurrent writers).
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
    },
    /// Write a self-contained folder: checkpoints as safetensors + signed manifest.
    Export {
        /// Run id or prefix.
        run: String,
        /// Output folder (must not exist or be empty).
        out: PathBuf,
    },
    /// Write a verified checkpoint to a file.
    Checkout {
        /// Checkpoint spec (`model@alias`, `model:3`, hash prefix, `run/label`, run id).
        checkpoint: String,
        /// Output file.
        out: PathBuf,
    },
    /// Delete a run's records (writer key); `gc` then frees its blobs.
    Delete {
        /// Run id or prefix.
        run: String,
    },
    /// Rerun a recorded run and report whether its metrics match (exit 1 if not bit for bit).
    Reproduce {
        /// Run id or prefix.
        run: String,
        /// Keep the rerun's registry and output in this folder.
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Program to run instead of the current executable (for tests).
        #[arg(long, hide = true)]
        program: Option<PathBuf>,
    },
}

/// `adjoint runs policy …`
#[derive(clap::Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum PolicyCommand {
    /// Print the policy in force (signature checked).
    Show,
    /// Replace the policy with a JSON file (see `adjoint_store::policy`), signed by a writer key.
    Set {
        /// The policy file.
        file: PathBuf,
    },
}

/// `adjoint keys …`
#[derive(clap::Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum KeysCommand {
    /// Write a new Ed25519 key pair: PATH (secret, 0600) and PATH.pub.
    Generate {
        /// Secret key file to create.
        path: PathBuf,
    },
    /// Trust a public key in the registry's policy (needs a writer key, except for the first key).
    Trust {
        /// Public key: 64 hex digits or a `.pub` file.
        public_key: String,
        /// A name for the key.
        #[arg(long)]
        name: Option<String>,
        /// Allow it to publish versions, move aliases and change the policy.
        #[arg(long)]
        writer: bool,
    },
    /// Remove a key from the policy (writer key).
    Untrust {
        /// Key id (64 hex digits) or `.pub` file.
        public_key: String,
    },
    /// List trusted keys.
    List,
}

fn out_err(e: std::io::Error) -> StoreError {
    StoreError::io("write output to", "<output>", e)
}

macro_rules! say {
    ($out:expr_2021, $($arg:tt)*) => { writeln!($out, $($arg)*).map_err(out_err)? };
}

fn fmt_metrics(m: &Metrics) -> String {
    m.iter().map(|(k, v)| format!("{k}={v:.6}")).collect::<Vec<_>>().join(" ")
}

/// Runs one `runs` subcommand; returns the process exit code (1 when `verify` finds problems or
/// `reproduce` does not match).
pub fn run_runs(cmd: &RunsCommand, args: &StoreArgs, out: &mut dyn Write) -> Result<i32> {
    if *cmd == RunsCommand::List && Registry::open_existing(&args.registry).is_err() {
        say!(out, "no runs in {} (no registry there yet)", args.registry.display());
        return Ok(0);
    }
    let reg = args.open_existing_registry()?;
    match cmd {
        RunsCommand::List => {
            let runs = reg.list_runs()?;
            if runs.is_empty() {
                say!(out, "no runs in {}", reg.dir().display());
                return Ok(0);
            }
            say!(
                out,
                "{:<27} {:<16} {:<9} {:<25} {:>6}  FINAL METRICS",
                "RUN ID",
                "NAME",
                "STATUS",
                "STARTED",
                "SEED"
            );
            for r in runs {
                say!(
                    out,
                    "{:<27} {:<16} {:<9} {:<25} {:>6}  {}",
                    r.run_id,
                    r.name,
                    r.status.as_str(),
                    r.started_at,
                    r.seed,
                    fmt_metrics(&r.final_metrics)
                );
            }
        }
        RunsCommand::Show { run, json } => show(&reg, run, *json, out)?,
        RunsCommand::Diff { a, b } => {
            let (ia, ib) = (reg.resolve_run_id(a)?, reg.resolve_run_id(b)?);
            let d = reg.diff_runs(&ia, &ib)?;
            out.write_all(d.render(&ia, &ib).as_bytes()).map_err(out_err)?;
        }
        RunsCommand::Lineage { target, data } => {
            let text = match (target, data) {
                (_, Some(d)) => reg.data_usage(d)?.render(),
                (Some(t), None) => reg.lineage(t)?.render(),
                (None, None) => return Err(StoreError::invalid("lineage", "give a target or --data HASH")),
            };
            out.write_all(text.as_bytes()).map_err(out_err)?;
        }
        RunsCommand::Gates { target } => {
            let ds = reg.gate_decisions(target.as_deref())?;
            if ds.is_empty() {
                say!(out, "no gate decisions");
            }
            for (d, key, at) in ds {
                let v = d.promoted_version.map_or(String::new(), |v| format!(" -> version {v}"));
                let why = d.reason.as_deref().map_or(String::new(), |r| format!(" reason {r:?}"));
                say!(
                    out,
                    "{at}  {}  {}  {}{v}{why}  signed by {}",
                    d.target,
                    d.outcome,
                    crate::fsutil::short_hash(&d.candidate),
                    keys::short_id(&key)
                );
                for c in &d.checks {
                    say!(out, "    {} {} ({})", if c.passed { "ok  " } else { "FAIL" }, c.check, c.detail);
                }
            }
        }
        RunsCommand::Alerts { target } => {
            let al = reg.alerts(target.as_deref())?;
            if al.is_empty() {
                say!(out, "no alerts");
            }
            for (a, key, at) in al {
                let rb = a
                    .rolled_back
                    .map_or("no rollback".to_string(), |(f, t)| format!("rolled back version {f} -> {t}"));
                say!(
                    out,
                    "{at}  {}  version {}  windows {}-{}: {}; {rb}  signed by {}",
                    a.target,
                    a.version,
                    a.windows.0,
                    a.windows.1,
                    a.reason,
                    keys::short_id(&key)
                );
            }
        }
        RunsCommand::Policy(PolicyCommand::Show) => {
            let p = reg.policy()?;
            say!(out, "{}", serde_json::to_string_pretty(&p).expect("policy serialises"));
        }
        RunsCommand::Policy(PolicyCommand::Set { file }) => {
            let signer = args.require_signer("changing the release policy")?;
            let text = std::fs::read_to_string(file).map_err(|e| StoreError::io("read", file, e))?;
            let p = crate::Policy::parse(&text, &file.display().to_string())?;
            reg.set_policy(&p, &signer)?;
            say!(
                out,
                "policy set from {} ({} model(s), {} data label(s))",
                file.display(),
                p.models.len(),
                p.data_access.len()
            );
        }
        RunsCommand::Label { data, owner, label } => {
            let signer = args.require_signer("labelling data")?;
            let l = crate::DataLabel { owner: owner.clone(), label: label.clone() };
            let sha = reg.label_data(data, &l, &signer)?;
            say!(out, "data {sha}: owner {owner}, label {label}");
        }
        RunsCommand::Models => {
            let aliases = reg.aliases()?;
            let models: Vec<String> = reg.query("list models", |c| {
                let mut st = c.prepare("SELECT DISTINCT model FROM model_versions ORDER BY model")?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect()
            })?;
            if models.is_empty() {
                say!(out, "no models");
            }
            for m in models {
                say!(out, "{m}");
                for v in reg.model_versions(&m)? {
                    let al: Vec<String> = aliases
                        .iter()
                        .filter(|(am, _, av)| *am == m && *av == v.version)
                        .map(|(_, a, _)| format!("@{a}"))
                        .collect();
                    say!(
                        out,
                        "  {}: {} {} {}",
                        v.version,
                        crate::fsutil::short_hash(&v.sha256),
                        v.created_at,
                        al.join(" ")
                    );
                }
            }
        }
        RunsCommand::Promote { checkpoint, target, override_reason } => {
            let signer = args.require_signer(&format!("promote to {target}"))?;
            let (v, d) = reg.promote_gated(checkpoint, target, &signer, override_reason.as_deref())?;
            say!(out, "{target} -> version {v} ({})", crate::fsutil::short_hash(&reg.resolve(target)?));
            if let Some(d) = d {
                match d.reason.as_deref() {
                    Some(r) => say!(
                        out,
                        "gate: OVERRIDE of {} failed check(s) by {}: {r:?} (recorded)",
                        d.failed().len(),
                        keys::short_id(&signer.key_id())
                    ),
                    None => say!(out, "gate: all {} check(s) passed", d.checks.len()),
                }
            }
        }
        RunsCommand::Rollback { target } => {
            let signer = args.require_signer(&format!("rollback of {target}"))?;
            let (from, to) = reg.rollback(target, &signer)?;
            say!(out, "{target}: version {from} -> version {to}");
        }
        RunsCommand::Verify => {
            let rep = reg.verify()?;
            for w in &rep.warnings {
                say!(out, "warning: {w}");
            }
            for p in &rep.problems {
                say!(out, "PROBLEM: {p}");
            }
            say!(
                out,
                "checked {} blobs, {} checkpoints, {} manifests, {} model records: {}",
                rep.blobs_checked,
                rep.checkpoints_checked,
                rep.manifests_checked,
                rep.model_records_checked,
                if rep.ok() {
                    "all intact".to_string()
                } else {
                    format!("{} problem(s)", rep.problems.len())
                }
            );
            return Ok(i32::from(!rep.ok()));
        }
        RunsCommand::Gc { grace_secs } => {
            let rep = reg.gc(Duration::from_secs(*grace_secs))?;
            for b in &rep.removed_blobs {
                say!(out, "removed blob {b}");
            }
            for f in &rep.removed_files {
                say!(out, "removed file {}", f.display());
            }
            say!(out, "freed {} bytes", rep.freed_bytes);
        }
        RunsCommand::Export { run, out: dir } => {
            let m = reg.export_as(run, dir, args.signer()?.as_ref())?;
            say!(
                out,
                "exported run {} ({} checkpoints) to {}",
                m.manifest.run_id,
                m.manifest.checkpoints.len(),
                dir.display()
            );
        }
        RunsCommand::Checkout { checkpoint, out: file } => {
            let h = reg.checkout(checkpoint, file)?;
            say!(out, "{} -> {} (sha256 {h})", checkpoint, file.display());
        }
        RunsCommand::Delete { run } => {
            let signer = args.require_signer("delete a run")?;
            let id = reg.delete_run(run, &signer)?;
            say!(out, "deleted run {id} (run `gc` to free its blobs)");
        }
        RunsCommand::Reproduce { run, keep, program } => {
            let program = match program {
                Some(p) => p.clone(),
                None => std::env::current_exe()
                    .map_err(|e| StoreError::io("locate", "the current executable", e))?,
            };
            let rep = reg.reproduce(run, &program, keep.as_deref())?;
            out.write_all(rep.render().as_bytes()).map_err(out_err)?;
            return Ok(i32::from(!rep.metrics_match()));
        }
    }
    Ok(0)
}

fn show(reg: &Registry, run: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let run_id = reg.resolve_run_id(run)?;
    let summary = reg.list_runs()?.into_iter().find(|r| r.run_id == run_id);
    if summary.as_ref().is_some_and(|s| s.status == RunStatus::Running) {
        say!(out, "run {run_id}: still running or crashed before finishing; no signed manifest yet");
        return Ok(());
    }
    let signed = reg.load_manifest(&run_id)?;
    if json {
        out.write_all(signed.to_json_pretty().as_bytes()).map_err(out_err)?;
        return Ok(());
    }
    let m = &signed.manifest;
    say!(out, "run       {}", m.run_id);
    say!(out, "name      {}", m.name);
    say!(out, "status    {}", m.status.as_str());
    say!(out, "started   {}", m.started_at);
    say!(out, "ended     {}", m.ended_at.as_deref().unwrap_or("-"));
    let commit = m.code.git_commit.as_deref().unwrap_or("unknown");
    let dirty = if m.code.git_dirty == Some(true) { " (uncommitted changes)" } else { "" };
    say!(out, "code      {} {} commit {commit}{dirty}", m.code.package, m.code.version);
    say!(out, "seed      {}", m.seed);
    if let Some(c) = &m.command {
        say!(out, "command   {}", c.join(" "));
    }
    if let Some(p) = &m.parent_checkpoint {
        say!(out, "parent    {p}");
    }
    let role = reg.key_role(&signed.signer)?.map_or("untrusted", Role::as_str);
    say!(out, "signed by {} ({role}); signature valid", keys::short_id(&signed.signer));
    say!(out, "data:");
    for d in &m.data {
        say!(out, "  {}  {} ({} bytes)", d.sha256, d.name, d.bytes);
    }
    say!(out, "config:");
    let cfg = serde_json::to_string_pretty(&m.config).unwrap_or_default();
    for line in cfg.lines() {
        say!(out, "  {line}");
    }
    say!(out, "epochs:");
    for e in &m.epochs {
        say!(out, "  {:>4}  {}", e.epoch, fmt_metrics(&e.metrics));
    }
    say!(out, "final:    {}", fmt_metrics(&m.final_metrics));
    say!(out, "checkpoints:");
    for c in &m.checkpoints {
        say!(out, "  {}  {} ({} bytes)", c.sha256, c.label, c.bytes);
    }
    Ok(())
}

/// Runs one `keys` subcommand; returns the exit code.
pub fn run_keys(cmd: &KeysCommand, args: &StoreArgs, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        KeysCommand::Generate { path } => {
            let s = Signer::generate();
            let pubp = s.save(path)?;
            say!(out, "wrote secret key {} (0600) and public key {}", path.display(), pubp.display());
            say!(out, "key id {}", s.key_id());
        }
        KeysCommand::Trust { public_key, name, writer } => {
            let id = keys::read_public_key(public_key)?;
            let signer = args.require_signer("changing the key policy")?;
            let role = if *writer { Role::Writer } else { Role::Signer };
            let reg = args.open_registry()?; // may set up a fresh registry's first key
            reg.trust_key(&id, name.as_deref().unwrap_or(keys::short_id(&id)), role, &signer)?;
            say!(out, "trusted {} as {}", keys::short_id(&id), role.as_str());
        }
        KeysCommand::Untrust { public_key } => {
            let id = keys::read_public_key(public_key)?;
            let signer = args.require_signer("changing the key policy")?;
            args.open_existing_registry()?.untrust_key(&id, &signer)?;
            say!(out, "removed {}", keys::short_id(&id));
        }
        KeysCommand::List => {
            let ks = args.open_existing_registry()?.trusted_keys()?;
            if ks.is_empty() {
                say!(out, "no trusted keys (the first key to record a run becomes the owner)");
            }
            for k in ks {
                say!(
                    out,
                    "{}  {:<6}  {}  added {} by {}",
                    k.key_id,
                    k.role.as_str(),
                    k.name,
                    k.added_at,
                    keys::short_id(&k.added_by)
                );
            }
        }
    }
    Ok(0)
}
