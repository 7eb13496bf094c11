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
    /// Run an end-to-end demo (all three when no name is given) and write runs/<name>-<time>/;
    /// each run is recorded, signed, in the registry.
    Demo(DemoArgs),
    /// The run registry: list, show, diff, lineage, promote, rollback, verify, gc, export,
    /// reproduce.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Signing keys and the registry's trust policy.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Clone, Copy, ValueEnum)]
enum DemoName {
    /// Stock volatility forecast with online (walk-forward) learning.
    Forecast,
    /// Puma 560 reaching controller trained through a differentiable simulator.
    Robot,
    /// Nuclei segmentation: learnable classical filters + CNN, and an 8×8 digits CNN.
    Imaging,
}

impl DemoName {
    fn name(self) -> &'static str {
        match self {
            DemoName::Forecast => "forecast",
            DemoName::Robot => "robot",
            DemoName::Imaging => "imaging",
        }
    }
}

#[derive(Args)]
struct DemoArgs {
    /// Which demo; all three when left out.
    name: Option<DemoName>,
    /// Folder that receives the run folders ($ADJOINT_OUT overrides it).
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Random seed; a given seed gives the same results.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Epochs (forecast, imaging) or optimisation iterations (robot), at least 1; each demo has a
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
    let (config, run): (serde_json::Value, DemoFn) = match name {
        DemoName::Forecast => (demos::forecast::config(common), demos::forecast::run),
        DemoName::Robot => (demos::robot::config(common), demos::robot::run),
        DemoName::Imaging => (demos::imaging::config(common), demos::imaging::run),
    };
    if !record {
        return run(common).map(|_| ()).map_err(|e| e.message);
    }
    let e = |e: adjoint_store::StoreError| e.to_string();
    let reg = store.open_registry().map_err(e)?;
    let signer = store.recording_signer().map_err(e)?;
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
    match run(common) {
        Ok(out) => {
            for f in &out.data_files {
                rec.record_data_file(f).map_err(e)?;
            }
            for (epoch, m) in out.epochs {
                rec.log_epoch_metrics(epoch, m).map_err(e)?;
            }
            for (path, label) in &out.checkpoints {
                rec.add_checkpoint(path, label).map_err(e)?;
            }
            let m = rec.finish(out.final_metrics).map_err(e)?;
            println!("{}: recorded as run {} in {}", name.name(), m.run_id, store.registry.display());
            Ok(())
        }
        Err(err) => {
            let _ = rec.fail(err.metrics);
            Err(err.message)
        }
    }
}

fn run_demo(a: DemoArgs, store: &StoreArgs) -> Result<(), String> {
    let out = std::env::var_os(adjoint_store::ENV_OUT).map(PathBuf::from).unwrap_or(a.out);
    let epochs = a.epochs.map(|e| e as usize);
    let parallel = demos::parallel::Parallel::none();
    let mut common = Common { out, seed: a.seed, epochs, lr: a.lr, quick: a.quick, quiet: a.quiet, parallel };
    let names = match a.name {
        Some(n) => vec![n],
        None => vec![DemoName::Forecast, DemoName::Robot, DemoName::Imaging],
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
        Command::Runs(cmd) => store_cli::run_runs(cmd, &cli.store, &mut stdout).map_err(|e| e.to_string()),
        Command::Keys(cmd) => store_cli::run_keys(cmd, &cli.store, &mut stdout).map_err(|e| e.to_string()),
    };
    if let Command::Demo(a) = &cli.command {
        if let Some(msg) = distributed_usage_error(a) {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
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
