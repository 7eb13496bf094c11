//! `adjoint-dist-worker`: the programs the tests and benchmarks of adjoint-dist run under
//! `mpirun` (a test cannot run itself as N MPI processes, so it launches this binary).
//!
//! ```text
//! adjoint-dist-worker train  --model mlp|cnn [--optim adam|rmsprop] --batch B --steps S
//!                            [--reference] [--out FILE]
//!                            [--accum K] [--overlap] [--unfused|--mix] [--bucket-bytes N] [--shard [--ring]]
//!                            [--ckpt FILE --save-every K] [--resume FILE]
//!                            [--fail-rank R --fail-step K --fail kill|raise|stall] [--timeout SECS]
//! adjoint-dist-worker shards --len N --epochs E [--drop-last]
//! adjoint-dist-worker bench-allreduce [--reps N]
//! adjoint-dist-worker bench-step [--model w2|w3] [--global-batch G] [--steps N] [--plain] [--overlap]
//!                                 [--split] [--unfused] [--shard [--ring]]
//! adjoint-dist-worker bench-pack [--reps N] [--fresh]
//! ```
//!
//! `train` runs Adam on a small f64 model, data sharded by `DistributedSampler`, `B` examples
//! per rank per step (`--reference`: no MPI at all, a plain one-process `DataLoader` loop with
//! batch `B`, the baseline of the equivalence tests). `--accum K` splits each rank's batch into
//! K micro-batches accumulated with `no_sync`; `--overlap` uses `DataParallel::train_step`
//! (allreduce during the backward sweep) instead of `value_and_grad` + `step`; `--unfused` calls
//! `step_with(g, |g| g)` instead of `step` (the mean gradient formed before the update), `--mix`
//! on odd steps only; `--shard` shards
//! the optimizer update (`DataParallelConfig::shard_update`), through shared memory on one node
//! unless `--ring` (`DataParallelConfig::shared_memory = false`). Rank 0 writes the losses and final
//! parameters as JSON to `--out`. Every line a rank prints starts with `rank R:`.

mod bench;
mod train;

use std::process::ExitCode;

fn main() -> ExitCode {
    // The kernels' pool (`RAYON_NUM_THREADS`), this thread one of its threads when there are two.
    let _ = adjoint_tensor::threads::init(0);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("usage: adjoint-dist-worker train|bench-allreduce|bench-step [options]");
        return ExitCode::from(2);
    };
    let opts = Opts::parse(&args[1..]);
    let res = match cmd.as_str() {
        "train" => train::run(&opts),
        "shards" => shards(&opts),
        "bench-allreduce" => bench::allreduce(&opts),
        "bench-step" => bench::step(&opts),
        "bench-pack" => bench::pack(&opts),
        other => Err(format!("unknown command {other}")),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `shards`: every rank takes its `DistributedSampler` shard of each epoch; the per-example
/// counts are summed over the ranks (an allreduce), and rank 0 prints, per epoch, how many
/// examples were read 0, 1 and 2+ times and how many reads there were in all.
fn shards(o: &Opts) -> Result<(), String> {
    let dist = adjoint_dist::Dist::init().map_err(|e| e.to_string())?;
    let n: usize = o.num("len", 10);
    for epoch in 0..o.num("epochs", 2usize) {
        let s = adjoint_dist::DistributedSampler::new(n, dist.world_size(), dist.rank())
            .shuffle(3)
            .drop_last(o.flag("drop-last"));
        let mut counts = vec![0.0f64; n];
        for i in s.indices(epoch) {
            counts[i] += 1.0;
        }
        dist.allreduce_sum(&mut counts).map_err(|e| e.to_string())?;
        let times = |k: f64| counts.iter().filter(|&&c| c == k).count();
        if dist.is_root() {
            let many = counts.iter().filter(|&&c| c >= 2.0).count();
            let reads: f64 = counts.iter().sum();
            println!("epoch {epoch}: unread {} once {} more {many} reads {reads}", times(0.0), times(1.0));
        }
    }
    Ok(())
}

/// `--name value` and `--flag` options.
pub struct Opts(Vec<(String, Option<String>)>);

impl Opts {
    fn parse(args: &[String]) -> Opts {
        let mut out = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let name = args[i].trim_start_matches("--").to_string();
            let value = args.get(i + 1).filter(|v| !v.starts_with("--")).cloned();
            i += 1 + value.is_some() as usize;
            out.push((name, value));
        }
        Opts(out)
    }

    /// The value of `--name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }

    /// Whether `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// `--name` parsed, or `default`.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.get(name)
            .map(|v| v.parse().unwrap_or_else(|_| panic!("--{name}: not a number: {v}")))
            .unwrap_or(default)
    }
}
