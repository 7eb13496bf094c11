//! `runs reproduce`: rerun a recorded run and compare what it produced with the original.
//!
//! A run records the arguments that rerun it ([`crate::RunRecorder::set_command`]). Reproducing
//! executes a program (the CLI passes `std::env::current_exe()`, i.e. the `adjoint` binary) with
//! those arguments, in the recorded working directory, with three environment variables that
//! redirect everything it writes into a fresh temporary folder:
//!
//! * `ADJOINT_REGISTRY` — a new, empty registry the rerun records into;
//! * `ADJOINT_KEY` — a throwaway signing key (the new registry trusts it on first use);
//! * `ADJOINT_OUT` — a folder for any other output (plots, checkpoints before registration);
//! * `ADJOINT_REPRODUCING` — the original run id, for information.
//!
//! The program must honour the first three (the `adjoint` binary does, via [`crate::cli::StoreArgs`]).
//! The rerun's manifest is then compared with the original: data fingerprints, configuration,
//! seed, per-epoch and final metrics (bit for bit, via `f64::to_bits`) and checkpoint hashes
//! (identical hashes = identical weights).
//!
//! What is deterministic: a seeded run on the same binary, machine and thread count reproduces bit
//! for bit when its kernels reduce in a fixed order. Anything that depends on thread scheduling
//! (a parallel reduction that splits by thread count) or on different hardware may differ in the
//! last bits; the report then gives each metric's difference instead of a bare "no".

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::diff::{diff_manifests, RunDiff};
use crate::error::{Result, StoreError};
use crate::keys::{Signer, ENV_KEY};
use crate::manifest::{RunManifest, RunStatus};
use crate::registry::{Registry, ENV_REGISTRY};

/// Environment variable naming the folder a rerun writes other output to.
pub const ENV_OUT: &str = "ADJOINT_OUT";
/// Environment variable holding the id of the run being reproduced (set only for reruns).
pub const ENV_REPRODUCING: &str = "ADJOINT_REPRODUCING";

/// One final metric, original vs rerun.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricComparison {
    /// Metric name.
    pub name: String,
    /// Original value.
    pub original: Option<f64>,
    /// Rerun value.
    pub reproduced: Option<f64>,
}

impl MetricComparison {
    /// Equal bit for bit.
    pub fn bitwise(&self) -> bool {
        matches!((self.original, self.reproduced), (Some(a), Some(b)) if a.to_bits() == b.to_bits())
    }
}

/// The outcome of [`Registry::reproduce`].
#[derive(Clone, Debug)]
pub struct ReproduceReport {
    /// The original manifest.
    pub original: RunManifest,
    /// The rerun's manifest.
    pub reproduced: RunManifest,
    /// Where the rerun's registry and output live (kept when a work folder was given).
    pub workdir: PathBuf,
    /// Final metrics, one row per name in either run.
    pub final_metrics: Vec<MetricComparison>,
    /// Everything that differs.
    pub diff: RunDiff,
}

impl ReproduceReport {
    /// Every final metric is present in both runs and equal bit for bit.
    pub fn metrics_match(&self) -> bool {
        !self.final_metrics.is_empty() && self.final_metrics.iter().all(MetricComparison::bitwise)
    }

    /// Per-epoch metrics equal bit for bit.
    pub fn epochs_match(&self) -> bool {
        self.original.epochs.len() == self.reproduced.epochs.len()
            && self.original.epochs.iter().zip(&self.reproduced.epochs).all(|(a, b)| {
                a.epoch == b.epoch
                    && a.metrics.len() == b.metrics.len()
                    && a.metrics
                        .iter()
                        .all(|(k, x)| b.metrics.get(k).is_some_and(|y| x.to_bits() == y.to_bits()))
            })
    }

    /// Checkpoint hashes equal (identical weights).
    pub fn checkpoints_match(&self) -> bool {
        let h = |m: &RunManifest| m.checkpoints.iter().map(|c| c.sha256.clone()).collect::<Vec<_>>();
        h(&self.original) == h(&self.reproduced)
    }

    /// Human-readable report.
    pub fn render(&self) -> String {
        let yes = |b: bool, y: &str, n: &str| if b { y.to_string() } else { n.to_string() };
        let mut s = format!("reproduced run {} as {}\n", self.original.run_id, self.reproduced.run_id);
        let _ = writeln!(
            s,
            "  data:          {}",
            yes(
                self.diff.data.is_empty(),
                &format!("identical ({} inputs)", self.original.data.len()),
                "DIFFERENT"
            )
        );
        let _ =
            writeln!(s, "  config:        {}", yes(self.diff.config.is_empty(), "identical", "DIFFERENT"));
        let _ = writeln!(
            s,
            "  epoch metrics: {}",
            yes(
                self.epochs_match(),
                &format!("identical bit for bit ({} epochs)", self.original.epochs.len()),
                "DIFFERENT"
            )
        );
        let _ = writeln!(
            s,
            "  checkpoints:   {}",
            yes(self.checkpoints_match(), "identical weights (same SHA-256)", "DIFFERENT hashes")
        );
        s.push_str("  final metrics:\n");
        for m in &self.final_metrics {
            let v = |x: Option<f64>| x.map_or("(absent)".into(), |x| format!("{x:?}"));
            let verdict = match (m.original, m.reproduced) {
                _ if m.bitwise() => "bit for bit".to_string(),
                (Some(a), Some(b)) => format!("differs by {:e}", (b - a).abs()),
                _ => "missing".to_string(),
            };
            let _ = writeln!(s, "    {}: {} vs {} ({verdict})", m.name, v(m.original), v(m.reproduced));
        }
        if !self.diff.is_empty() {
            s.push_str("differences:\n");
            for line in self.diff.render(&self.original.run_id, &self.reproduced.run_id).lines().skip(2) {
                let _ = writeln!(s, "  {line}");
            }
        }
        let _ = writeln!(
            s,
            "result: {}",
            yes(self.metrics_match(), "REPRODUCED (final metrics bit for bit)", "NOT REPRODUCED")
        );
        s
    }
}

impl Registry {
    /// Reruns `run` by executing `program` with its recorded arguments (see the module docs) and
    /// compares the result. The rerun writes into `workdir` if given (kept afterwards), else into
    /// a temporary folder that is removed.
    pub fn reproduce(&self, run: &str, program: &Path, workdir: Option<&Path>) -> Result<ReproduceReport> {
        let original = self.load_manifest(run)?.manifest;
        let fail = |detail: String| StoreError::Reproduce { run: original.run_id.clone(), detail };
        let args = original.command.clone().ok_or_else(|| {
            fail("the run recorded no command line (RunRecorder::set_command), so it cannot be rerun".into())
        })?;
        let tmp;
        let work = match workdir {
            Some(w) => {
                crate::fsutil::ensure_private_dir(w)?;
                w.to_path_buf()
            }
            None => {
                tmp = tempfile::Builder::new()
                    .prefix("adjoint-reproduce-")
                    .tempdir()
                    .map_err(|e| StoreError::io("create temporary folder in", std::env::temp_dir(), e))?;
                tmp.path().to_path_buf()
            }
        };
        let (reg_dir, key, out) = (work.join("registry"), work.join("key"), work.join("out"));
        crate::fsutil::ensure_private_dir(&out)?;
        if !key.exists() {
            Signer::generate().save(&key)?;
        }
        let cwd = original.cwd.as_ref().map(PathBuf::from).filter(|p| p.is_dir());
        let mut cmd = Command::new(program);
        cmd.args(&args)
            .env(ENV_REGISTRY, &reg_dir)
            .env(ENV_KEY, &key)
            .env(ENV_OUT, &out)
            .env(ENV_REPRODUCING, &original.run_id);
        if let Some(c) = &cwd {
            cmd.current_dir(c);
        }
        let output = cmd.output().map_err(|e| fail(format!("cannot run {}: {e}", program.display())))?;
        if !output.status.success() {
            let err = String::from_utf8_lossy(&output.stderr);
            let tail: String = err
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            return Err(fail(format!(
                "`{} {}` exited with {}:\n{tail}",
                program.display(),
                args.join(" "),
                output.status
            )));
        }
        let rerun_reg = Registry::open(&reg_dir)?;
        let rerun =
            rerun_reg.list_runs()?.into_iter().find(|r| r.status != RunStatus::Running).ok_or_else(|| {
                fail(format!("the rerun recorded no finished run in {}", reg_dir.display()))
            })?;
        let reproduced = rerun_reg.load_manifest(&rerun.run_id)?.manifest;
        let names: std::collections::BTreeSet<&String> =
            original.final_metrics.keys().chain(reproduced.final_metrics.keys()).collect();
        let final_metrics = names
            .into_iter()
            .map(|n| MetricComparison {
                name: n.clone(),
                original: original.final_metrics.get(n).copied(),
                reproduced: reproduced.final_metrics.get(n).copied(),
            })
            .collect();
        let diff = diff_manifests(&original, &reproduced);
        Ok(ReproduceReport { original, reproduced, workdir: work, final_metrics, diff })
    }
}
