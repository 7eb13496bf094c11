//! What the demos share: run folders, configuration and metrics files, progress bars, tables.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Options every demo takes (the `adjoint demo` flags).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Common {
    /// Root folder of run folders.
    pub out: PathBuf,
    /// Random seed: the same seed gives the same results.
    pub seed: u64,
    /// Override of the demo's number of epochs / iterations.
    pub epochs: Option<usize>,
    /// Override of the demo's learning rate.
    pub lr: Option<f64>,
    /// A few steps only (tests, smoke runs).
    pub quick: bool,
    /// No progress bars.
    pub quiet: bool,
    /// The MPI world of a `--distributed` run (one process otherwise).
    #[serde(skip)]
    pub parallel: super::parallel::Parallel,
}

/// What a finished demo hands to the run registry.
pub struct Outcome {
    /// Its run folder.
    pub dir: RunDir,
    /// Data files it read.
    pub data_files: Vec<PathBuf>,
    /// Per-epoch (or per-evaluation) metrics.
    pub epochs: Vec<(u64, BTreeMap<String, f64>)>,
    /// Final metrics (deterministic for a given seed: no wall-clock times).
    pub final_metrics: BTreeMap<String, f64>,
    /// Checkpoints written, with a label.
    pub checkpoints: Vec<(PathBuf, String)>,
    /// Evaluations of checkpoints, by checkpoint label (the registry fills in the hash and,
    /// when empty, the data hashes, and signs them).
    pub evaluations: Vec<(String, adjoint_store::Evaluation)>,
}

/// Why a demo stopped: a one-line message, and the metrics its run is recorded (as failed)
/// with. Any `String` error converts into one with no metrics.
#[derive(Debug)]
pub struct DemoError {
    /// What went wrong, and where.
    pub message: String,
    /// Metrics of the failed run (e.g. the step where training diverged).
    pub metrics: BTreeMap<String, f64>,
}

impl From<String> for DemoError {
    fn from(message: String) -> Self {
        DemoError { message, metrics: BTreeMap::new() }
    }
}

/// A training loss that is not finite stops the demo: the run is recorded as failed with the
/// step (`diverged_at_step`), and no checkpoint of it is recorded or promotable.
pub fn check_finite(what: &str, step: usize, loss: f64) -> Result<(), DemoError> {
    if loss.is_finite() {
        return Ok(());
    }
    Err(DemoError {
        message: format!(
            "{what} diverged at step {step}: the loss is {loss}; stopped, and the run is recorded as failed (try a lower --lr)"
        ),
        metrics: metrics([("diverged_at_step", step as f64)]),
    })
}

/// A failed [`adjoint_nn::train::train_step`] as a demo error: a non-finite loss or gradient
/// (the step's default policy stops there) becomes "`what` diverged at step N", recorded with
/// `diverged_at_step` like [`check_finite`]; any other error keeps its message.
pub fn step_error(what: &str, e: adjoint_nn::NnError) -> DemoError {
    match e {
        adjoint_nn::NnError::NonFinite { what: which, step, detail } => DemoError {
            message: format!(
                "{what} diverged at step {step}: non-finite {which} ({detail}); stopped, and the run is recorded as failed (try a lower --lr)"
            ),
            metrics: metrics([("diverged_at_step", step as f64)]),
        },
        e => e.to_string().into(),
    }
}

/// `[(name, value)]` as a metrics map.
pub fn metrics<const N: usize>(pairs: [(&str, f64); N]) -> BTreeMap<String, f64> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A demo's output folder `runs/<name>-<UTC timestamp>/`.
pub struct RunDir {
    /// The folder.
    pub path: PathBuf,
}

/// `YYYYmmdd-HHMMSS` in UTC for a Unix time.
pub fn utc_stamp(secs: u64) -> String {
    match i64::try_from(secs).ok().and_then(|s| jiff::Timestamp::from_second(s).ok()) {
        Some(t) => t.strftime("%Y%m%d-%H%M%S").to_string(),
        None => format!("t{secs}"),
    }
}

impl RunDir {
    /// Create a fresh run folder under `root` (a suffix keeps two runs in one second apart).
    pub fn create(root: &Path, name: &str) -> Result<RunDir, String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let base = format!("{name}-{}", utc_stamp(now));
        std::fs::create_dir_all(root).map_err(|e| format!("{}: cannot create: {e}", root.display()))?;
        for i in 0..1000 {
            let p = if i == 0 { root.join(&base) } else { root.join(format!("{base}-{i}")) };
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(RunDir { path: p }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("{}: cannot create: {e}", p.display())),
            }
        }
        Err(format!("{}: too many runs named {base}", root.display()))
    }

    /// `path/name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Write `text` to `name` atomically ([`adjoint_store::write_atomic`]: temp file, fsync,
    /// rename, fsync the folder; on failure the old file stays and no temporary remains).
    pub fn write(&self, name: &str, text: &str) -> Result<PathBuf, String> {
        let p = self.file(name);
        adjoint_store::write_atomic(&p, |f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("{}: cannot write: {e}", p.display()))?;
        Ok(p)
    }

    /// Write a value as pretty JSON.
    pub fn write_json(&self, name: &str, value: &impl serde::Serialize) -> Result<PathBuf, String> {
        let text = serde_json::to_string_pretty(value).map_err(|e| format!("{name}: {e}"))?;
        self.write(name, &(text + "\n"))
    }
}

/// Appends one JSON object per line to `metrics.jsonl`.
pub struct MetricsLog {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl MetricsLog {
    /// Open (create) `dir/metrics.jsonl`.
    pub fn create(dir: &RunDir) -> Result<MetricsLog, String> {
        let path = dir.file("metrics.jsonl");
        let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(MetricsLog { file: std::io::BufWriter::new(f), path })
    }

    /// Log one record.
    pub fn log(&mut self, value: serde_json::Value) -> Result<(), String> {
        writeln!(self.file, "{value}").map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Flush to disk.
    pub fn finish(mut self) -> Result<(), String> {
        self.file
            .flush()
            .and_then(|_| self.file.get_ref().sync_all())
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// A progress bar with a message slot, hidden when `quiet` or when stderr is not a terminal.
pub fn progress(len: u64, prefix: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if quiet {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_string());
    pb
}

/// A plain-text table with aligned columns (also valid Markdown).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = w[i])).collect();
        format!("| {} |\n", parts.join(" | "))
    };
    let mut s = line(headers.iter().map(|h| h.to_string()).collect());
    s += &line(w.iter().map(|n| "-".repeat(*n)).collect());
    for r in rows {
        s += &line(r.clone());
    }
    s
}

/// The repository's `data/` folder: `$ADJOINT_DATA` if set, else `data/` under the current
/// directory, else the one next to this crate's sources (so `cargo run` works from anywhere in
/// the checkout).
pub fn data_dir() -> PathBuf {
    if let Ok(d) = std::env::var("ADJOINT_DATA") {
        return PathBuf::from(d);
    }
    let cwd = PathBuf::from("data");
    if cwd.is_dir() {
        return cwd;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_798_761_599), "20261231-235959");
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_and_the_old_content() {
        let root = tempfile::tempdir().unwrap();
        let run = RunDir { path: root.path().to_path_buf() };
        run.write("report.txt", "old\n").unwrap();
        // The rename over a non-empty folder fails after the temporary was written.
        std::fs::create_dir(run.file("busy")).unwrap();
        std::fs::write(run.file("busy").join("keep"), "kept").unwrap();
        let e = run.write("busy", "new\n").unwrap_err();
        assert!(e.contains("busy: cannot write"), "{e}");
        let mut names: Vec<_> =
            std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["busy", "report.txt"], "a temporary was left");
        assert_eq!(std::fs::read_to_string(run.file("busy").join("keep")).unwrap(), "kept");
        assert_eq!(std::fs::read_to_string(run.file("report.txt")).unwrap(), "old\n");
    }
}
