//! Multi-process tests: each launches `mpirun --allow-run-as-root --oversubscribe -np N` on the
//! `adjoint-dist-worker` binary and checks what the ranks computed and wrote. With the `mpi`
//! feature on, a missing `mpirun` fails these tests (it is never a silent skip).
#![cfg(feature = "mpi")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WORKER: &str = env!("CARGO_BIN_EXE_adjoint-dist-worker");

/// The outcome of one launch.
struct Run {
    ok: bool,
    output: String,
    elapsed: Duration,
}

/// Run `command`, killing it after `limit` (a hang is a failure, not a stuck test).
fn run_limited(mut command: Command, limit: Duration) -> Run {
    let start = Instant::now();
    let out_path = std::env::temp_dir().join(format!("adjoint-dist-out-{}-{:?}", std::process::id(), start));
    let file = std::fs::File::create(&out_path).unwrap();
    let mut child = command
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .env("RAYON_NUM_THREADS", "1")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let Some(status) = status else {
        panic!("{command:?} still running after {limit:?} (a hang); output:\n{output}");
    };
    Run { ok: status.success(), output, elapsed }
}

fn mpirun(np: usize, args: &[&str]) -> Run {
    let found = Command::new("mpirun").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "`mpirun` not found: the mpi feature needs Open MPI (apt-get install openmpi-bin libopenmpi-dev)"
    );
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", &np.to_string(), WORKER]).args(args);
    run_limited(c, Duration::from_secs(300))
}

fn worker(args: &[&str]) -> Run {
    let mut c = Command::new(WORKER);
    c.args(args);
    run_limited(c, Duration::from_secs(300))
}

fn must(run: Run, what: &str) -> Run {
    assert!(run.ok, "{what} failed:\n{}", run.output);
    run
}

/// `(losses, params)` from a result file.
fn result(path: &Path) -> (Vec<f64>, Vec<f64>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let row = |name: &str| -> Vec<f64> {
        let line =
            text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
        line.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect()
    };
    (row("losses"), row("params"))
}

/// Largest difference relative to the largest magnitude (both vectors the same length).
fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().chain(b).fold(0.0f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn assert_close(a: &(Vec<f64>, Vec<f64>), b: &(Vec<f64>, Vec<f64>), what: &str) {
    let (dl, dp) = (rel_diff(&a.0, &b.0), rel_diff(&a.1, &b.1));
    assert!(dl <= 1e-6 && dp <= 1e-6, "{what}: losses differ by {dl:e}, parameters by {dp:e} (relative)");
}

/// 20 Adam steps on 2 ranks with batch 8 per rank (`extra` options) against one process with
/// batch 16, to 1e-6 relative in f64. Returns the 2-rank run's output.
fn equivalence(model: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let base = ["train", "--model", model, "--steps", "20"];
    // The reference uses the same optimizer.
    let optim: Vec<&str> =
        extra.windows(2).find(|w| w[0] == "--optim").map(|w| w.to_vec()).unwrap_or_default();
    must(
        worker(
            &[&base[..], &optim, &["--reference", "--batch", "16", "--out", one.to_str().unwrap()]].concat(),
        ),
        "reference",
    );
    let run = must(
        mpirun(2, &[&base[..], &["--batch", "8", "--out", two.to_str().unwrap()], extra].concat()),
        "2 ranks",
    );
    let (a, b) = (result(&one), result(&two));
    assert_eq!((a.0.len(), b.0.len()), (20, 20));
    // The runs really trained (a test that compares two untouched models proves nothing).
    assert!(a.0[19] < 0.9 * a.0[0], "{model}: the loss did not decrease: {:?}", a.0);
    assert_close(&a, &b, &format!("{model} {extra:?}: 2 ranks × batch 8 vs 1 process × batch 16"));
    run.output
}

#[test]
fn two_ranks_reproduce_one_rank_with_double_batch_mlp() {
    equivalence("mlp", &[]);
}

#[test]
fn two_ranks_reproduce_one_rank_with_double_batch_cnn() {
    equivalence("cnn", &[]);
}

#[test]
fn allreduce_overlapping_the_backward_pass_gives_the_same_steps() {
    equivalence("cnn", &["--overlap"]);
    // 256-byte buckets: each of the MLP's 6 leaves travels in its own bucket; all but the
    // first layer's weight start while the backward sweep still runs.
    let out = equivalence("mlp", &["--overlap", "--bucket-bytes", "256"]);
    let want = "rank 0: done, 20 steps; last step: 5 of 6 buckets started before the last gradient";
    assert!(out.contains(want), "{out}");
}

#[test]
fn no_sync_accumulation_gives_the_same_steps() {
    // Two micro-batches of 4 per rank, the first accumulated without communication.
    equivalence("mlp", &["--accum", "2"]);
    equivalence("cnn", &["--accum", "2", "--overlap", "--bucket-bytes", "512"]);
}

#[test]
fn only_rank_0_writes_and_a_run_saved_on_2_ranks_resumes_on_1_and_4() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let train = ["train", "--steps", "30"];
    must(mpirun(2, &[&train[..], &["--batch", "8", "--out", &p("full")]].concat()), "uninterrupted");
    let first = must(
        mpirun(
            2,
            &[
                "train",
                "--steps",
                "10",
                "--batch",
                "8",
                "--save-every",
                "5",
                "--ckpt",
                &p("ckpt"),
                "--out",
                &p("first"),
            ],
        ),
        "first part",
    );
    let wrote: Vec<&str> = first.output.lines().filter(|l| l.contains(" wrote ")).collect();
    assert_eq!(wrote.len(), 2, "two saves, by rank 0 only:\n{}", first.output);
    assert!(wrote.iter().all(|l| l.starts_with("rank 0: wrote")), "{}", first.output);
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["ckpt", "first", "full"], "only the checkpoint and rank 0's results, no temporaries");

    let full = result(Path::new(&p("full")));
    // 30 steps cross an epoch (20 steps of 16 examples): the resumed runs must rebuild it.
    for (np, batch) in [(1, "16"), (4, "4")] {
        let out = p(&format!("resumed{np}"));
        let r = must(
            mpirun(np, &[&train[..], &["--batch", batch, "--resume", &p("ckpt"), "--out", &out]].concat()),
            "resume",
        );
        assert!(r.output.contains(&format!("resumed at step 10 on {np} ranks (saved on 2)")), "{}", r.output);
        let resumed = result(Path::new(&out));
        assert_close(&(full.0[10..].to_vec(), full.1.clone()), &resumed, &format!("resumed on {np} ranks"));
    }
}

#[test]
fn the_ranks_shards_are_disjoint_and_cover_each_epoch() {
    // 10 examples: on 3 ranks padded to 12 (2 read twice) or truncated to 9 (drop_last).
    let cases: [(usize, &[&str], &str); 4] = [
        (2, &[], "unread 0 once 10 more 0 reads 10"),
        (3, &[], "unread 0 once 8 more 2 reads 12"),
        (3, &["--drop-last"], "unread 1 once 9 more 0 reads 9"),
        (4, &[], "unread 0 once 8 more 2 reads 12"),
    ];
    for (np, extra, want) in cases {
        let run =
            must(mpirun(np, &[&["shards", "--len", "10", "--epochs", "3"][..], extra].concat()), "shards");
        for epoch in 0..3 {
            let line = format!("epoch {epoch}: {want}");
            assert!(run.output.contains(&line), "{np} ranks {extra:?}: no `{line}` in\n{}", run.output);
        }
    }
}

/// The fault tests: the survivor must stop, with the failed rank named, well within 30 s.
fn assert_stopped(run: &Run, needle: &str) {
    assert!(!run.ok, "the job succeeded although a rank failed:\n{}", run.output);
    assert!(run.output.contains(needle), "no `{needle}` in the output:\n{}", run.output);
    assert!(
        run.elapsed < Duration::from_secs(30),
        "took {:?} to stop (bound: 30 s):\n{}",
        run.elapsed,
        run.output
    );
}

#[test]
fn a_killed_rank_stops_the_job_and_the_run_resumes_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let crash = mpirun(
        2,
        &["train", "--steps", "1000", "--batch", "8", "--save-every", "2", "--ckpt", &p("ckpt")]
            .iter()
            .chain(&["--fail-rank", "1", "--fail-step", "5", "--fail", "kill"])
            .copied()
            .collect::<Vec<_>>(),
    );
    assert_stopped(&crash, "rank 1");
    assert!(crash.output.contains("signal 9"), "{}", crash.output);
    // Saved after steps 2 and 4; step 5 never completed.
    must(
        mpirun(
            2,
            &["train", "--steps", "20", "--batch", "8", "--resume", &p("ckpt"), "--out", &p("resumed")],
        ),
        "resume",
    );
    must(mpirun(2, &["train", "--steps", "20", "--batch", "8", "--out", &p("full")]), "uninterrupted");
    let (full, resumed) = (result(Path::new(&p("full"))), result(Path::new(&p("resumed"))));
    assert_close(&(full.0[4..].to_vec(), full.1.clone()), &resumed, "resumed after the crash");
}

#[test]
fn a_rank_that_raises_stops_the_others_naming_it() {
    let run =
        mpirun(2, &["train", "--steps", "1000", "--fail-rank", "1", "--fail-step", "3", "--fail", "raise"]);
    assert_stopped(&run, "adjoint-dist: rank 1 failed: injected failure at step 3");
}

#[test]
fn a_stalled_rank_makes_the_others_time_out_instead_of_hanging() {
    let run = mpirun(
        2,
        &[
            "train",
            "--steps",
            "1000",
            "--timeout",
            "3",
            "--fail-rank",
            "1",
            "--fail-step",
            "3",
            "--fail",
            "stall",
        ],
    );
    assert_stopped(
        &run,
        "adjoint-dist: rank 0 failed: rank 0: allreduce of gradient bucket 0 did not complete within 3.0 s",
    );
}

#[test]
fn a_sharded_update_gives_the_same_steps() {
    // ZeRO-1: every leaf with at least 2 rows is reduce-scattered, updated by its owner and
    // all-gathered; with the backward overlap and with no_sync accumulation too.
    equivalence("mlp", &["--shard"]);
    equivalence("cnn", &["--shard", "--overlap", "--bucket-bytes", "256"]);
    equivalence("mlp", &["--shard", "--accum", "2"]);
    // 3 ranks split the MLP's rows unevenly: the sharded update, through shared memory and
    // through the ring, against the unsharded one on the same 3 ranks (the sampler's shards of
    // 3 ranks are not one process's batches, so this compares the update, not the data).
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let args =
            ["train", "--model", "mlp", "--steps", "20", "--batch", "8", "--out", out.to_str().unwrap()];
        must(mpirun(3, &[&args[..], extra].concat()), name);
        result(&out)
    };
    let whole = run("unsharded", &[]);
    assert!(whole.0[19] < 0.9 * whole.0[0], "the loss did not decrease: {:?}", whole.0);
    assert_close(&whole, &run("shared", &["--shard"]), "3 ranks, sharded through shared memory");
    assert_close(&whole, &run("ring", &["--shard", "--ring"]), "3 ranks, sharded through the ring");
}

#[test]
fn the_fused_sharded_update_gives_the_bits_of_the_mean_then_the_update() {
    // On one node `step` updates each rank's rows in place from every rank's gradient where it
    // lies (`Optimizer::step_flat`, the ranks' parts summed in the kernel); `step_with`
    // (`--unfused`) forms this rank's rows of the mean first and updates from them. The same
    // bits, also alternating the two (`--mix`). On 5 ranks the `[4]` biases have fewer rows
    // than ranks and stay unsharded: updated from their bucket in the same call. (The tensor
    // path, `Optimizer::step`, is the RMSprop test's; `tests/step_flat.rs` in adjoint-nn
    // checks `step_flat` against it bit for bit.)
    let dir = tempfile::tempdir().unwrap();
    for (model, ranks) in [("mlp", 2), ("cnn", 2), ("mlp", 5)] {
        let run = |name: &str, extra: &[&str]| {
            let out = dir.path().join(format!("{model}-{ranks}-{name}"));
            let args = ["train", "--model", model, "--steps", "6", "--batch", "4", "--shard"];
            must(mpirun(ranks, &[&args[..], &["--out", out.to_str().unwrap()], extra].concat()), name);
            result(&out)
        };
        let fused = run("fused", &[]);
        assert!(fused.0[5] < fused.0[0], "{model} on {ranks}: the loss did not decrease: {:?}", fused.0);
        assert_eq!(fused, run("unfused", &["--unfused"]), "{model} on {ranks} ranks: fused against unfused");
        assert_eq!(fused, run("mixed", &["--mix"]), "{model} on {ranks} ranks: fused against alternating");
    }
}

#[test]
fn a_sharded_update_with_an_optimizer_without_a_flat_path_gives_the_same_steps() {
    // RMSprop has no `Optimizer::step_flat`: the first step finds that out and every step
    // forms the mean and updates tensors, with the same results as one process.
    equivalence("mlp", &["--optim", "rmsprop", "--shard"]);
}

#[test]
fn a_sharded_update_over_the_ring_gives_the_same_steps() {
    // `--ring`: the point-to-point reduce-scatter and all-gather of worlds that span nodes, in
    // place of the shared segment one node uses.
    equivalence("mlp", &["--shard", "--ring"]);
    equivalence("cnn", &["--shard", "--ring", "--overlap", "--bucket-bytes", "256"]);
}

#[test]
fn a_stalled_rank_makes_the_sharded_update_time_out_at_its_barrier() {
    let run = mpirun(
        2,
        &["train", "--steps", "1000", "--timeout", "3", "--shard"]
            .iter()
            .chain(&["--fail-rank", "1", "--fail-step", "3", "--fail", "stall"])
            .copied()
            .collect::<Vec<_>>(),
    );
    assert_stopped(&run, "adjoint-dist: rank 0 failed: rank 0: barrier did not complete within 3.0 s");
}

#[test]
fn a_sharded_run_checkpoints_the_whole_optimizer_and_resumes_unsharded_on_1_or_sharded_on_3() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let train = ["train", "--steps", "30"];
    must(mpirun(2, &[&train[..], &["--batch", "8", "--out", &p("full")]].concat()), "uninterrupted");
    let first =
        ["train", "--steps", "10", "--batch", "8", "--save-every", "5", "--ckpt", &p("ckpt"), "--shard"];
    must(mpirun(2, &first), "first part, sharded");
    let full = result(Path::new(&p("full")));
    // 3 ranks split the MLP's rows unevenly.
    for (np, batch, extra) in
        [(1, "16", &[][..]), (3, "5", &["--shard"][..]), (3, "5", &["--shard", "--ring"][..])]
    {
        let out = p(&format!("resumed{np}"));
        let r = must(
            mpirun(
                np,
                &[&train[..], &["--batch", batch, "--resume", &p("ckpt"), "--out", &out], extra].concat(),
            ),
            "resume",
        );
        assert!(r.output.contains(&format!("resumed at step 10 on {np} ranks (saved on 2)")), "{}", r.output);
        if np == 1 {
            let resumed = result(Path::new(&out));
            assert_close(&(full.0[10..].to_vec(), full.1.clone()), &resumed, "resumed unsharded on 1 rank");
        }
    }
}
