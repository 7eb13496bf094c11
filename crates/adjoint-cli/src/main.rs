//! The `adjoint` command.

use std::path::PathBuf;
use std::process::ExitCode;

use adjoint_cli::demos::{self, common::Common};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// adjoint: differentiable programming for Rust — demos on real data and the run registry.
#[derive(Parser)]
#[command(name = "adjoint", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an end-to-end demo (all three when no name is given) and write runs/<name>-<time>/.
    Demo(DemoArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum DemoName {
    /// Stock log-returns forecast with online (walk-forward) learning.
    Forecast,
    /// Puma 560 reaching controller trained through a differentiable simulator.
    Robot,
    /// Nuclei segmentation: learnable classical filters + CNN, and an 8×8 digits CNN.
    Imaging,
}

#[derive(Args)]
struct DemoArgs {
    /// Which demo; all three when left out.
    name: Option<DemoName>,
    /// Folder that receives the run folders.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Random seed; a given seed gives the same results.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Epochs (forecast, imaging) or optimisation iterations (robot); each demo has a default.
    #[arg(long)]
    epochs: Option<usize>,
    /// Learning rate; each demo has a default.
    #[arg(long)]
    lr: Option<f64>,
    /// A few steps only: checks the pipeline end to end in seconds.
    #[arg(long)]
    quick: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

fn run_demo(a: DemoArgs) -> Result<(), String> {
    let common = Common { out: a.out, seed: a.seed, epochs: a.epochs, lr: a.lr, quick: a.quick, quiet: a.quiet };
    let all = a.name.is_none();
    if all || matches!(a.name, Some(DemoName::Forecast)) {
        demos::forecast::run(&common)?;
    }
    if all || matches!(a.name, Some(DemoName::Robot)) {
        demos::robot::run(&common)?;
    }
    if all || matches!(a.name, Some(DemoName::Imaging)) {
        demos::imaging::run(&common)?;
    }
    Ok(())
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
            // One line: clap's first line, without the usage block.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first} (see `adjoint --help`)");
            return ExitCode::from(2);
        }
    };
    let res = match cli.command {
        Command::Demo(a) => run_demo(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
