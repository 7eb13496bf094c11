//! `train`: Adam (or `--optim rmsprop`) on a small f64 MLP or CNN, data-parallel (or
//! `--reference`: one process, no MPI), with checkpoints, resume and injected failures.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use adjoint_core::{value_and_grad, DType, Params, Tensor};
use adjoint_dist::{DataParallel, DataParallelConfig, Dist, DistError, DistributedSampler};
use adjoint_nn::data::{DataLoader, Dataset, TensorDataset};
use adjoint_nn::layers::{Conv2d, Flatten, Linear, MaxPool2d, Module, Relu};
use adjoint_nn::loss::{cross_entropy, CrossEntropy};
use adjoint_nn::optim::{Adam, AdamConfig, Optimizer, RmsProp, RmsPropConfig};
use adjoint_tensor::random::{normal, Key};

use crate::Opts;

/// Examples in the data set: 20 steps per epoch at a global batch of 16.
const N: usize = 320;
const SEED: u64 = 5;

type Data = TensorDataset<(Tensor, Tensor)>;

fn data(cnn: bool) -> Data {
    let shape: &[usize] = if cnn { &[N, 1, 8, 8] } else { &[N, 16] };
    let x = Tensor::from_array(normal(&Key::new(SEED).fold_in(1), shape, DType::F64));
    // A learnable class: which of the first four inputs is largest.
    let v = x.to_vec::<f64>();
    let per = v.len() / N;
    let label =
        |i: usize| (0..4).max_by(|&a, &b| v[i * per + a].total_cmp(&v[i * per + b])).unwrap_or(0) as i64;
    let y = Tensor::from_vec((0..N).map(label).collect::<Vec<i64>>(), &[N]);
    TensorDataset::new((x, y))
}

fn mlp() -> impl Module + Params + Clone {
    let k = Key::new(SEED).split(3);
    let lin = |i, o, key| Linear::config(i, o).dtype(DType::F64).init(key);
    (lin(16, 32, &k[0]), Relu, lin(32, 32, &k[1]), Relu, lin(32, 4, &k[2]))
}

fn cnn() -> impl Module + Params + Clone {
    let k = Key::new(SEED).split(3);
    let conv = Conv2d::config(1, 4, [3, 3]).padding([1, 1]).dtype(DType::F64).init(&k[0]);
    (
        conv,
        Relu,
        MaxPool2d::new([2, 2]),
        Flatten::default(),
        Linear::config(64, 4).dtype(DType::F64).init(&k[1]),
    )
}

pub fn run(o: &Opts) -> Result<(), String> {
    match o.get("model").unwrap_or("mlp") {
        "mlp" => with_optim(o, mlp(), false),
        "cnn" => with_optim(o, cnn(), true),
        m => Err(format!("--model: unknown model {m}")),
    }
}

fn loss_of<M: Module + Params>(m: &M, batch: &(Tensor, Tensor)) -> Tensor {
    cross_entropy(&m.forward(&batch.0), &batch.1, &CrossEntropy::default())
}

fn write_result(path: Option<&str>, losses: &[f64], params: &impl Params) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let values: Vec<f64> = params.leaves().iter().flat_map(|t| t.to_vec::<f64>()).collect();
    let line = |name: &str, v: &[f64]| {
        format!("{name} {}\n", v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(" "))
    };
    std::fs::write(path, line("losses", losses) + &line("params", &values))
        .map_err(|e| format!("{path}: {e}"))
}

/// `--optim adam` (the default) or `rmsprop` (an optimizer without `Optimizer::step_flat`, so
/// that the sharded update's tensor path runs too).
fn with_optim<M: Module + Params + Clone>(o: &Opts, model: M, cnn: bool) -> Result<(), String> {
    match o.get("optim").unwrap_or("adam") {
        "adam" => {
            let opt = Adam::new(&model, AdamConfig { lr: 1e-2, ..Default::default() });
            run_with(o, model, opt, cnn)
        }
        "rmsprop" => {
            let opt = RmsProp::new(&model, RmsPropConfig { lr: 1e-2, ..Default::default() });
            run_with(o, model, opt, cnn)
        }
        other => Err(format!("--optim: unknown optimizer {other}")),
    }
}

fn run_with<M: Module + Params + Clone, O: Optimizer + Clone>(
    o: &Opts,
    model: M,
    opt: O,
    cnn: bool,
) -> Result<(), String> {
    let ds = Arc::new(data(cnn));
    let batch: usize = o.num("batch", 8);
    let steps: usize = o.num("steps", 20);
    if o.flag("reference") {
        // One process, no MPI: the plain loop every distributed run must reproduce.
        let loader = DataLoader::from_arc(ds.clone(), batch).shuffle(SEED);
        let per_epoch = loader.num_batches();
        let (mut model, mut opt) = (model, opt);
        let mut losses = Vec::new();
        for step in 0..steps {
            let b = loader.epoch(step / per_epoch).nth(step % per_epoch).expect("a batch");
            let (loss, g) = value_and_grad(|m: &M| loss_of(m, &b))(&model);
            model = opt.step(&model, &g);
            losses.push(loss.item());
        }
        return write_result(o.get("out"), &losses, &model);
    }
    let mut dist = Dist::init().map_err(|e| e.to_string())?;
    dist.set_timeout(Duration::from_secs_f64(o.num("timeout", 120.0)));
    if let Err(e) = distributed(o, &dist, ds, model, opt, batch, steps) {
        dist.abort(&e);
    }
    Ok(())
}

fn distributed<M: Module + Params + Clone, O: Optimizer + Clone>(
    o: &Opts,
    dist: &Dist,
    ds: Arc<Data>,
    model: M,
    opt: O,
    batch: usize,
    steps: usize,
) -> Result<(), String> {
    let (rank, world) = (dist.rank(), dist.world_size());
    let e = |e: DistError| e.to_string();
    let sampler = DistributedSampler::new(ds.len(), world, rank).shuffle(SEED);
    let per_epoch = sampler.num_samples() / batch;
    let config = DataParallelConfig {
        bucket_bytes: o.num("bucket-bytes", DataParallelConfig::default().bucket_bytes),
        shard_update: o.flag("shard"),
        shared_memory: !o.flag("ring"),
    };
    let (mut dp, start) = match o.get("resume") {
        Some(path) => {
            let (dp, meta) = DataParallel::resume(dist, Path::new(path), model, opt, config).map_err(e)?;
            let start = meta.get("step").and_then(|s| s.parse().ok()).ok_or("the checkpoint has no step")?;
            println!(
                "rank {rank}: resumed at step {start} on {world} ranks (saved on {})",
                meta["world_size"]
            );
            (dp, start)
        }
        None => (DataParallel::new(dist, model, opt, config).map_err(e)?, 0),
    };
    let fail_rank: Option<usize> = o.get("fail-rank").map(|r| r.parse().expect("--fail-rank"));
    let fail_step: usize = o.num("fail-step", usize::MAX);
    let save_every: usize = o.num("save-every", 0);
    let accum: usize = o.num("accum", 1);
    let overlap = o.flag("overlap");
    let (unfused, mix) = (o.flag("unfused"), o.flag("mix"));
    assert!(accum > 0 && batch.is_multiple_of(accum), "--accum must divide --batch");
    let mut losses = Vec::new();
    let mut epoch_batches: (usize, Vec<(Tensor, Tensor)>) = (usize::MAX, Vec::new());
    for step in start..steps {
        let epoch = step / per_epoch;
        if epoch_batches.0 != epoch {
            epoch_batches = (epoch, sampler.loader(ds.clone(), epoch, batch).epoch(0).collect());
        }
        let b = &epoch_batches.1[step % per_epoch];
        // `--accum K`: K micro-batches, the first K-1 accumulated without communication
        // (`no_sync`), each gradient divided by K so that the sum is the batch mean's.
        let mut loss = 0.0;
        for k in 0..accum {
            let micro = (
                b.0.narrow(0, k * batch / accum, batch / accum),
                b.1.narrow(0, k * batch / accum, batch / accum),
            );
            let micro_loss = |m: &M| loss_of(m, &micro) / accum as f64;
            if fail_rank == Some(rank) && step == fail_step && k + 1 == accum {
                inject(o.get("fail").unwrap_or("kill"), rank, step)?;
            }
            if k + 1 == accum && overlap {
                // Allreduce overlapping the backward sweep.
                loss += dp.train_step(micro_loss, |g| g).map_err(e)?.item();
                continue;
            }
            let (l, g) = value_and_grad(micro_loss)(dp.params());
            loss += l.item();
            if k + 1 < accum {
                dp.no_sync(&g);
            } else if unfused || (mix && step % 2 == 1) {
                // `step_with` forms the mean gradient (for its `f`); `step` may fuse the mean
                // into the update (the sharded update on one node): the same bits.
                dp.step_with(&g, |g| g).map_err(e)?;
            } else {
                dp.step(&g).map_err(e)?;
            }
        }
        losses.push(dist.mean(&[loss]).map_err(e)?[0]);
        if save_every > 0 && (step + 1) % save_every == 0 {
            let path = o.get("ckpt").ok_or("--save-every needs --ckpt")?;
            let meta = BTreeMap::from([
                ("step".to_string(), (step + 1).to_string()),
                ("world_size".to_string(), world.to_string()),
            ]);
            if let Some(p) = dp.save_checkpoint(Path::new(path), &meta).map_err(e)? {
                println!("rank {rank}: wrote {} at step {}", p.display(), step + 1);
            }
        }
    }
    let (early, buckets) = dp.last_overlap();
    println!("rank {rank}: done, {} steps; last step: {early} of {buckets} buckets started before the last gradient", losses.len());
    if dist.is_root() {
        write_result(o.get("out"), &losses, dp.params())?;
    }
    dist.barrier().map_err(e)
}

/// A failure of this rank in the middle of a step (before the gradient allreduce of the
/// step's last micro-batch; the other ranks are already in it or about to be).
fn inject(how: &str, rank: usize, step: usize) -> Result<(), String> {
    println!("rank {rank}: injecting `{how}` at step {step}");
    match how {
        "kill" => {
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
            std::thread::sleep(Duration::from_secs(3600));
            Ok(())
        }
        "raise" => Err(format!("injected failure at step {step}")),
        "stall" => {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(())
        }
        other => Err(format!("--fail: unknown failure {other}")),
    }
}
