//! Benchmarks (`benches/dist.sh` runs them): the allreduce sweep and the W2 step.

use std::time::Instant;

use adjoint_core::{value_and_grad, DType, Params, Tensor};
use adjoint_dist::{DataParallel, DataParallelConfig, Dist};
use adjoint_nn::layers::{Conv2d, Flatten, Linear, MaxPool2d, Module, Relu};
use adjoint_nn::loss::{cross_entropy, CrossEntropy};
use adjoint_nn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use adjoint_tensor::random::{normal, Key};

use crate::Opts;

fn median(v: Vec<f64>) -> f64 {
    quantile(v, 0.5)
}

/// The `q` quantile of `v` (nearest rank). `bench-step` prints the 10% quantile next to the
/// median: on a loaded machine it is the steps no other process interrupted.
fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

/// Time `f` `reps` times after one warm-up call, with a barrier before each so the ranks start
/// together; rank 0's median.
fn time_collective(dist: &Dist, reps: usize, mut f: impl FnMut()) -> Result<f64, String> {
    f();
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        dist.barrier().map_err(|e| e.to_string())?;
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

/// Allreduce of `f32` messages from 8 B to 64 MiB: `Dist`'s polled `MPI_Iallreduce` ("raw")
/// and `DataParallel::allreduce_mean` on a gradient of one leaf ("bucketed": packing, `Dist`'s
/// own ring allreduce with the division folded in, a view out).
pub fn allreduce(o: &Opts) -> Result<(), String> {
    let dist = Dist::init().map_err(|e| e.to_string())?;
    let e = |e: adjoint_dist::DistError| e.to_string();
    let max: usize = o.num("max-bytes", 64 << 20);
    if dist.is_root() {
        println!("# bytes raw_us bucketed_us raw_busbw_GBps (ranks {})", dist.world_size());
    }
    let mut bytes = 8usize;
    while bytes <= max {
        let n = bytes / 4;
        // The same repetitions as benches/dist/allreduce.c.
        let reps =
            o.num("reps", 0usize).max(if bytes <= 1 << 16 { 300 } else { (100 << 20) / bytes }.clamp(5, 300));
        let send = vec![1.0f32; n];
        let mut recv = vec![0.0f32; n];
        let raw = time_collective(&dist, reps, || {
            // SAFETY: both buffers outlive the wait; on error the job aborts.
            let p = unsafe { dist.start_allreduce(&send, &mut recv, "allreduce") };
            if let Err(err) = p.and_then(|p| dist.wait(p)) {
                dist.abort(&err);
            }
        })?;
        let leaf = vec![Tensor::from_vec(vec![1.0f32; n], &[n])];
        let opt = Sgd::new(&leaf, SgdConfig::default());
        let mut dp = DataParallel::new(&dist, leaf.clone(), opt, DataParallelConfig::default()).map_err(e)?;
        let bucketed = time_collective(&dist, reps, || {
            if let Err(err) = dp.allreduce_mean(&leaf) {
                dist.abort(&err);
            }
        })?;
        let w = dist.world_size() as f64;
        // Bus bandwidth as the OSU/NCCL tests define it for allreduce: 2(w-1)/w · bytes / time.
        let busbw = 2.0 * (w - 1.0) / w * bytes as f64 / raw / 1e9;
        if dist.is_root() {
            println!("{bytes} {:.2} {:.2} {busbw:.3}", raw * 1e6, bucketed * 1e6);
        }
        bytes *= 2;
    }
    Ok(())
}

fn w2_model() -> impl Module + Params + Clone {
    let k = Key::new(0).split(3);
    (Linear::new(784, 512, &k[0]), Relu, Linear::new(512, 512, &k[1]), Relu, Linear::new(512, 10, &k[2]))
}

fn w3_model() -> impl Module + Params + Clone {
    let k = Key::new(1).split(4);
    let conv = |i, o, key| Conv2d::config(i, o, [3, 3]).padding([1, 1]).init(key);
    (
        (conv(1, 32, &k[0]), Relu, MaxPool2d::new([2, 2])),
        (conv(32, 64, &k[1]), Relu, MaxPool2d::new([2, 2])),
        Flatten::default(),
        (Linear::new(3136, 128, &k[2]), Relu, Linear::new(128, 10, &k[3])),
    )
}

/// Rows `rows` of the workload's global batch of N(0, 1) inputs, labels `(7 i) mod 10`.
fn batch(shape: &[usize], rows: std::ops::Range<usize>) -> (Tensor, Tensor) {
    let x = Tensor::from_array(normal(&Key::new(0).fold_in(9), shape, DType::F32));
    let idx: Vec<usize> = rows.clone().collect();
    let x = adjoint_nn::data::take_rows(&x, &idx);
    let y = Tensor::from_vec(rows.map(|i| (7 * i as i64) % 10).collect::<Vec<i64>>(), &[idx.len()]);
    (x, y)
}

/// The W2 step (`--model w2`: MLP 784-512-512-10, Adam lr 1e-3) or the W3 step (`--model w3`:
/// the CNN of W3, SGD lr 0.01 momentum 0.9) at a global batch `--global-batch` (W2's 128 by
/// default): with `--plain` one process and no MPI; otherwise data-parallel, each rank
/// `G / world` rows (`--overlap`: `train_step`, else `value_and_grad` + `step`). Prints the
/// median step time in ms and, last, its 10% quantile (rank 0; data-parallel: the mean over
/// the ranks of their medians and quantiles).
pub fn step(o: &Opts) -> Result<(), String> {
    match o.get("model").unwrap_or("w2") {
        "w2" => {
            let m = w2_model();
            let opt = Adam::new(&m, AdamConfig { lr: 1e-3, ..Default::default() });
            step_of(o, m, opt, &[784])
        }
        "w3" => {
            let m = w3_model();
            let opt = Sgd::new(&m, SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() });
            step_of(o, m, opt, &[1, 28, 28])
        }
        other => Err(format!("--model: unknown model {other}")),
    }
}

fn step_of<M: Module + Params + Clone, O: Optimizer + Clone>(
    o: &Opts,
    model: M,
    opt: O,
    example: &[usize],
) -> Result<(), String> {
    let g: usize = o.num("global-batch", 128);
    let steps: usize = o.num("steps", 50);
    let ce = CrossEntropy::default();
    let shape: Vec<usize> = std::iter::once(g).chain(example.iter().copied()).collect();
    let mut times = Vec::new();
    if o.flag("plain") {
        let (x, y) = batch(&shape, 0..g);
        let (mut model, mut opt) = (model, opt);
        let mut updates = Vec::new();
        for i in 0..steps + 3 {
            let t = Instant::now();
            let (_, grads) = value_and_grad(|m: &M| cross_entropy(&m.forward(&x), &y, &ce))(&model);
            let t1 = Instant::now();
            model = opt.step(&model, &grads);
            if i >= 3 {
                times.push(t.elapsed().as_secs_f64());
                updates.push(t1.elapsed().as_secs_f64());
            }
        }
        let p10 = quantile(times.clone(), 0.1);
        let (t, u) = (median(times), median(updates));
        println!(
            "plain batch={g} threads={} step_ms {:.3} (gradient {:.3}, update {:.3}) p10 {:.3}",
            rayon::current_num_threads(),
            t * 1e3,
            (t - u) * 1e3,
            u * 1e3,
            p10 * 1e3
        );
        return Ok(());
    }
    let dist = Dist::init().map_err(|e| e.to_string())?;
    let (r, w) = (dist.rank(), dist.world_size());
    let per = g / w;
    let (x, y) = batch(&shape, r * per..(r + 1) * per);
    let config = DataParallelConfig {
        shard_update: o.flag("shard"),
        shared_memory: !o.flag("ring"),
        ..Default::default()
    };
    let mut dp = DataParallel::new(&dist, model, opt, config).map_err(|e| e.to_string())?;
    let mut phases: Vec<[f64; 4]> = Vec::new();
    let split = o.flag("split");
    let unfused = o.flag("unfused");
    for i in 0..steps + 3 {
        dist.barrier().map_err(|e| e.to_string())?;
        let t = Instant::now();
        let loss = |m: &M| cross_entropy(&m.forward(&x), &y, &ce);
        let done = if o.flag("overlap") {
            dp.train_step(loss, |g| g).map(|_| ())
        } else {
            // The phases apart: the gradient, the mean over the ranks (packing, allreduce
            // including any wait for the other ranks, unpacking), the optimizer update.
            let (_, grads) = value_and_grad(loss)(dp.params());
            let t0 = Instant::now();
            // `--split`: a barrier between the gradient and the mean, so the mean phase is the
            // communication alone and the wait for the slower rank shows apart.
            if split {
                dist.barrier().map_err(|e| e.to_string())?;
            }
            let t1 = Instant::now();
            let mut t2 = t1;
            // `--unfused`: `step_with`, whose `f` sees the mean gradient (so the mean and the
            // update time apart); else `step`, which with `--shard` on one node fuses the two
            // (`Optimizer::step_flat`).
            let r = if unfused {
                dp.step_with(&grads, |g| {
                    t2 = Instant::now();
                    g
                })
            } else {
                dp.step(&grads)
            };
            if i >= 3 {
                let d = |a: Instant, b: Instant| (b - a).as_secs_f64();
                phases.push([d(t, t0), d(t0, t1), d(t1, t2), t2.elapsed().as_secs_f64()]);
            }
            r
        };
        if let Err(err) = done {
            dist.abort(&err);
        }
        if i >= 3 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let t = dist.mean(&[median(times.clone()), quantile(times, 0.1)]).map_err(|e| e.to_string())?;
    let (t, p10) = (t[0], t[1]);
    let phase = |k: usize| median(phases.iter().map(|p| p[k]).collect());
    let parts = if phases.is_empty() { vec![0.0; 4] } else { (0..4).map(phase).collect() };
    let parts = dist.mean(&parts).map_err(|e| e.to_string())?;
    if dist.is_root() {
        let how = if o.flag("overlap") {
            "train_step"
        } else if unfused {
            "step_with"
        } else {
            "step"
        };
        let how = if o.flag("shard") { format!("{how} sharded") } else { how.to_string() };
        print!("ranks={w} batch={g} threads={} {how} step_ms {:.3}", rayon::current_num_threads(), t * 1e3);
        if !phases.is_empty() {
            if split {
                print!(" (gradient {:.3}, wait {:.3}", parts[0] * 1e3, parts[1] * 1e3);
            } else {
                print!(" (gradient {:.3}", parts[0] * 1e3);
            }
            if unfused {
                print!(", mean over ranks {:.3}, update {:.3})", parts[2] * 1e3, parts[3] * 1e3);
            } else {
                print!(", mean over ranks and update {:.3})", (parts[2] + parts[3]) * 1e3);
            }
        }
        println!(" p10 {:.3}", p10 * 1e3);
    }
    Ok(())
}

/// Packing W2's gradient (batch 64: one rank's share) into a flat `f32` buffer, median ms:
/// `to_vec` then a copy (what `DataParallel` did before), [`adjoint_dist::gather_into`] (what it
/// does: 16 × 16 tiles straight into the buffer), and a `memcpy` of each leaf's storage (the
/// lower bound, in storage order, which is not row-major for the transposed weight gradients).
pub fn pack(o: &Opts) -> Result<(), String> {
    let m = w2_model();
    let ce = CrossEntropy::default();
    let (x, y) = batch(&[64, 784], 0..64);
    let gradient = || value_and_grad(|m: &_| cross_entropy(&Module::forward(m, &x), &y, &ce))(&m).1.leaves();
    let mut leaves = gradient();
    let n: usize = leaves.iter().map(|l| l.numel()).sum();
    let mut buf = vec![0.0f32; n];
    let reps: usize = o.num("reps", 200);
    // `--fresh`: a new gradient before each pack, as in a training step (the caches hold
    // what the backward pass left), instead of packing the same one over and over.
    let fresh = o.flag("fresh");
    let mut line = format!("pack W2 gradient ms{}:", if fresh { " (fresh gradient each time)" } else { "" });
    for (mode, name) in ["to_vec", "gather_into", "storage_memcpy"].iter().enumerate() {
        let mut ts = Vec::new();
        for _ in 0..reps {
            if fresh {
                leaves = gradient();
            }
            let t = Instant::now();
            let mut off = 0;
            for l in &leaves {
                let k = l.numel();
                let dst = &mut buf[off..off + k];
                match mode {
                    0 => dst.copy_from_slice(&l.to_vec::<f32>()),
                    1 => adjoint_dist::gather_into(dst, l),
                    _ => {
                        let a = l.value();
                        let o = a.layout().offset;
                        dst.copy_from_slice(&a.storage_slice::<f32>()[o..o + k]);
                    }
                }
                off += k;
            }
            ts.push(t.elapsed().as_secs_f64());
        }
        line += &format!(" {name} {:.3}", median(ts) * 1e3);
    }
    println!("{line}");
    Ok(())
}
