//! The `adjoint` command.

use std::path::PathBuf;
use std::process::ExitCode;

use adjoint_cli::demos::{self, common::Common, common::DemoError, common::Outcome};
use adjoint_store::cli::{self as store_cli, KeysCommand, RunsCommand, StoreArgs};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// adjoint: differentiable programming for Rust — demos on real data and the run registry.
#[derive(Parser)]
#[command(name = "adjoint", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an end-to-end demo (all four when no name is given) and write runs/<name>-<time>/;
    /// each run is recorded, signed, in the registry.
    Demo(DemoArgs),
    /// The run registry: list, show, diff, lineage, promote, rollback, verify, gc, export,
    /// reproduce; audits, release gates, alerts, policy and data labels.
    #[command(subcommand)]
    Runs(RunsCli),
    /// Signing keys and the registry's trust policy.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `adjoint runs …`: the store's commands plus `audit`, which draws figures.
#[derive(Subcommand)]
enum RunsCli {
    /// Write a signed audit report of a model version or run (report.md, PNG figures,
    /// audit.json) and store it in the registry linked to the model version.
    Audit {
        /// `model`, `model@alias`, `model:version`, a run id or a checkpoint spec.
        target: String,
        /// Report folder (must not exist or be empty); default `<registry>/audits/…`.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    #[command(flatten)]
    Store(RunsCommand),
}

#[derive(Clone, Copy, ValueEnum)]
enum DemoName {
    /// Stock volatility forecast with online (walk-forward) learning.
    Forecast,
    /// Puma 560 reaching controller trained through a differentiable simulator.
    Robot,
    /// Nuclei segmentation: learnable classical filters + CNN, and an 8×8 digits CNN.
    Imaging,
    /// Meta-learning (MAML, first-order MAML, pretrained) on sinusoid regression.
    Meta,
}

impl DemoName {
    fn name(self) -> &'static str {
        match self {
            DemoName::Forecast => "forecast",
            DemoName::Robot => "robot",
            DemoName::Imaging => "imaging",
            DemoName::Meta => "meta",
        }
    }
}

#[derive(Args)]
struct DemoArgs {
    /// Which demo; all four when left out.
    name: Option<DemoName>,
    /// Folder that receives the run folders ($ADJOINT_OUT overrides it).
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Random seed; a given seed gives the same results.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Epochs (forecast, imaging), optimisation iterations (robot) or meta-iterations (meta), at least 1; each demo has a
    /// default.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    epochs: Option<u64>,
    /// Learning rate (a positive finite number); each demo has a default.
    #[arg(long, value_parser = positive_finite)]
    lr: Option<f64>,
    /// A few steps only: checks the pipeline end to end in seconds.
    #[arg(long)]
    quick: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    /// Do not record the run in the registry.
    #[arg(long)]
    no_record: bool,
    /// Train data-parallel over MPI: run as `mpirun -np N adjoint demo imaging --distributed`
    /// (imaging, and forecast's training phase). Rank 0 writes the run folder and records the
    /// run. Needs a binary built with the `distributed` feature.
    #[arg(long)]
    distributed: bool,
}

/// `--lr`: a positive finite number.
fn positive_finite(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err("must be a positive finite number".into()),
        Err(e) => Err(format!("not a number ({e})")),
    }
}

/// A demo's entry point.
type DemoFn = fn(&Common) -> Result<Outcome, DemoError>;

/// Run one demo and record it (configuration, data fingerprints, metrics, checkpoints) in the
/// registry, signed.
fn run_one(name: DemoName, common: &Common, store: &StoreArgs, record: bool) -> Result<(), String> {
    // Distributed: only rank 0 records the run.
    let record = record && common.parallel.is_root();
    let (config, run, data): (serde_json::Value, DemoFn, Vec<PathBuf>) = match name {
        DemoName::Forecast => {
            (demos::forecast::config(common), demos::forecast::run, demos::forecast::data_files().to_vec())
        }
        DemoName::Robot => {
            (demos::robot::config(common), demos::robot::run, demos::robot::data_files().to_vec())
        }
        DemoName::Imaging => {
            (demos::imaging::config(common), demos::imaging::run, demos::imaging::data_files().to_vec())
        }
        DemoName::Meta => (demos::meta::config(common), demos::meta::run, demos::meta::data_files().to_vec()),
    };
    if !record {
        return run(common)
            .map_err(|e| e.message)
            .and_then(|out| write_evaluations(&out.dir, &out.evaluations));
    }
    let e = |e: adjoint_store::StoreError| e.to_string();
    let reg = store.open_registry().map_err(e)?;
    let signer = store.recording_signer().map_err(e)?;
    // Data the policy closes to this key: refuse before anything is run or written.
    let mut hashes = Vec::new();
    for f in &data {
        hashes.push(adjoint_store::sha256_file(f).map_err(e)?.0);
    }
    let hashes: Vec<&str> = hashes.iter().map(String::as_str).collect();
    reg.check_data_access(&hashes, &signer, "record").map_err(e)?;
    // The forecast's online errors feed a monitor of forecast@production day by day.
    let mut mon = match name {
        DemoName::Forecast => monitor(&reg, name.name(), &signer).map_err(e)?,
        _ => None,
    };
    let mut rec = reg.start_run(&signer, name.name(), config, common.seed).map_err(e)?;
    rec.set_code_version("adjoint-cli", env!("CARGO_PKG_VERSION")).map_err(e)?;
    let mut argv: Vec<String> =
        vec!["demo".into(), name.name().into(), "--seed".into(), common.seed.to_string()];
    if let Some(n) = common.epochs {
        argv.extend(["--epochs".into(), n.to_string()]);
    }
    if let Some(lr) = common.lr {
        argv.extend(["--lr".into(), lr.to_string()]);
    }
    if common.quick {
        argv.push("--quick".into());
    }
    argv.push("--quiet".into());
    rec.set_command(argv).map_err(e)?;
    let par = &common.parallel;
    if par.world_size() > 1 {
        let shards = (0..par.world_size())
            .map(|r| adjoint_store::ShardRecord { rank: r as u64, examples: par.shard_rule(r) })
            .collect();
        rec.set_distributed(adjoint_store::DistributedRecord { world_size: par.world_size() as u64, shards });
    }
    let result = match mon.as_mut() {
        Some(mon) => demos::forecast::run_with(common, &mut |online, frozen| {
            if let Some(a) = mon.observe_against(online, Some(frozen)).map_err(|e| e.to_string())? {
                let rb =
                    a.rolled_back.map_or(String::new(), |(f, t)| format!("; rolled back version {f} -> {t}"));
                println!("forecast: ALERT on {}: {}{rb}", a.target, a.reason);
            }
            Ok(())
        }),
        None => run(common),
    };
    if let Some(mon) = &mon {
        println!(
            "{}: monitored {}@production over {} windows, {} alert(s)",
            name.name(),
            name.name(),
            mon.windows(),
            mon.alerts().len()
        );
    }
    match result {
        Ok(out) => {
            for f in &out.data_files {
                rec.record_data_file(f).map_err(e)?;
            }
            for (epoch, m) in out.epochs {
                rec.log_epoch_metrics(epoch, m).map_err(e)?;
            }
            let mut checkpoint_hashes = std::collections::BTreeMap::new();
            for (path, label) in &out.checkpoints {
                checkpoint_hashes.insert(label.clone(), rec.add_checkpoint(path, label).map_err(e)?);
            }
            let data = rec.manifest().data.clone();
            let m = rec.finish(out.final_metrics).map_err(e)?;
            println!("{}: recorded as run {} in {}", name.name(), m.run_id, store.registry.display());
            write_evaluations(&out.dir, &out.evaluations)?;
            for (label, mut ev) in out.evaluations {
                let Some(h) = checkpoint_hashes.get(&label) else {
                    return Err(format!("{}: evaluation of unknown checkpoint {label:?}", name.name()));
                };
                ev.checkpoint = h.clone();
                if ev.data.is_empty() {
                    ev.data = data.clone();
                }
                let id = reg.record_evaluation(&ev, &signer).map_err(e)?;
                println!("{}: evaluation of {label} recorded (#{id})", name.name());
            }
            Ok(())
        }
        Err(err) => {
            let _ = rec.fail(err.metrics);
            Err(err.message)
        }
    }
}

/// Writes each evaluation into the run folder as `evaluation_<checkpoint label>.json` (the
/// registry keeps the signed copy).
fn write_evaluations(
    dir: &demos::common::RunDir,
    evaluations: &[(String, adjoint_store::Evaluation)],
) -> Result<(), String> {
    for (label, ev) in evaluations {
        dir.write_json(&format!("evaluation_{label}.json"), ev)?;
    }
    Ok(())
}

/// A monitor of `<model>@production` when the policy has a `monitor` entry for the model and
/// the alias exists (saying so when it does not).
fn monitor<'r>(
    reg: &'r adjoint_store::Registry,
    model: &str,
    signer: &adjoint_store::Signer,
) -> Result<Option<adjoint_store::Monitor<'r>>, adjoint_store::StoreError> {
    if reg.policy()?.models.get(model).and_then(|m| m.monitor.as_ref()).is_none() {
        return Ok(None);
    }
    if reg.alias_version(model, "production").is_err() {
        println!("{model}: the policy monitors {model}@production, which is not set; nothing monitored");
        return Ok(None);
    }
    reg.monitor(&format!("{model}@production"), None, signer).map(Some)
}

fn run_demo(a: DemoArgs, store: &StoreArgs) -> Result<(), String> {
    let out = std::env::var_os(adjoint_store::ENV_OUT).map(PathBuf::from).unwrap_or(a.out);
    let epochs = a.epochs.map(|e| e as usize);
    let parallel = demos::parallel::Parallel::none();
    let mut common = Common { out, seed: a.seed, epochs, lr: a.lr, quick: a.quick, quiet: a.quiet, parallel };
    let names = match a.name {
        Some(n) => vec![n],
        None => vec![DemoName::Forecast, DemoName::Robot, DemoName::Imaging, DemoName::Meta],
    };
    // Ranks other than 0 write their (identical) run folder into a private temporary folder,
    // removed when it is dropped: only rank 0 writes into --out and records the run.
    let _scratch = if a.distributed { Some(join_mpi(&mut common)?) } else { None };
    for n in names {
        if let Err(e) = run_one(n, &common, store, !a.no_record) {
            // Stop the other ranks too, naming this one (no-op when not distributed).
            common.parallel.fail(&e);
            return Err(e);
        }
    }
    Ok(())
}

/// `--distributed`: join the MPI job; on ranks other than 0, redirect the run folder to a
/// temporary folder and silence the progress bars.
#[cfg(feature = "distributed")]
fn join_mpi(common: &mut Common) -> Result<Option<tempfile::TempDir>, String> {
    common.parallel = demos::parallel::Parallel::init()?;
    if common.parallel.is_root() {
        return Ok(None);
    }
    let scratch = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    common.out = scratch.path().to_path_buf();
    common.quiet = true;
    Ok(Some(scratch))
}

#[cfg(not(feature = "distributed"))]
fn join_mpi(_: &mut Common) -> Result<Option<()>, String> {
    unreachable!("checked in main: --distributed needs the distributed feature")
}

/// Why `--distributed` cannot be used here (a usage error, exit 2), if it cannot.
fn distributed_usage_error(a: &DemoArgs) -> Option<String> {
    if !a.distributed {
        return None;
    }
    if !cfg!(feature = "distributed") {
        return Some(
            "--distributed: this adjoint binary was built without MPI support (rebuild with `cargo build --release -p adjoint-cli --features distributed`)".into(),
        );
    }
    match a.name {
        Some(DemoName::Imaging | DemoName::Forecast) => None,
        _ => Some("--distributed applies to `demo imaging` and `demo forecast` only".into()),
    }
}

fn main() -> ExitCode {
    // The kernels' pool, with this thread as one of its threads (`RAYON_NUM_THREADS` or every
    // core); nothing has used rayon yet, so this cannot fail but is harmless if it does.
    let _ = adjoint_tensor::threads::init(0);
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if matches!(e.kind(), ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
                let _ = e.print();
                return ExitCode::from(2);
            }
            // One line: clap's first line without the usage block, with the names of the
            // missing arguments (clap lists them on the lines after the first).
            let text = e.render().to_string();
            let mut first = text.lines().next().unwrap_or("error: invalid arguments").to_string();
            if matches!(e.kind(), ErrorKind::MissingRequiredArgument) {
                let names: Vec<&str> = text
                    .lines()
                    .skip(1)
                    .take_while(|l| l.starts_with(' '))
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                first = format!("{} {}", first.trim_end(), names.join(" "));
            }
            eprintln!("{first} (see `adjoint --help`)");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout();
    let res = match &cli.command {
        Command::Demo(_) => Ok(0),
        Command::Runs(RunsCli::Store(cmd)) => {
            store_cli::run_runs(cmd, &cli.store, &mut stdout).map_err(|e| e.to_string())
        }
        Command::Runs(RunsCli::Audit { target, out }) => {
            adjoint_cli::audit::run_audit(&cli.store, target, out.as_deref(), &mut stdout).map(|_| 0)
        }
        Command::Keys(cmd) => store_cli::run_keys(cmd, &cli.store, &mut stdout).map_err(|e| e.to_string()),
    };
    if let Command::Demo(a) = &cli.command
        && let Some(msg) = distributed_usage_error(a)
    {
        eprintln!("error: {msg}");
        return ExitCode::from(2);
    }
    let res = match cli.command {
        Command::Demo(a) => run_demo(a, &cli.store).map(|_| 0),
        _ => res,
    };
    match res {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
