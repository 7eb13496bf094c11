//! Crash safety of `checkpoint::save`: a writer process is killed with SIGKILL at random points
//! while it saves checkpoints in a loop, many times; after every kill the checkpoint on disk
//! must load intact — the last complete one, never a torn mixture.
//!
//! The writer is this test binary itself, started with `ADJOINT_CRASH_WRITER=<path>` and
//! filtered to the ignored test `crash_writer_child`, which saves generation after generation
//! to `<path>` until it is killed. Each generation `g` is a model whose every element is `g`
//! (two tensors of different dtypes, about 2 MB, so a save takes a while) plus the metadata
//! `generation = g`; a torn or mixed file shows up as a load error or as disagreeing values.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use adjoint_core::Tensor;
use adjoint_nn::checkpoint;
use adjoint_tensor::random::{uniform, Key};
use adjoint_tensor::DType;

const ENV: &str = "ADJOINT_CRASH_WRITER";
const ROWS: usize = 512;

type Model = (Tensor, Tensor);

fn generation(g: u64) -> (Model, BTreeMap<String, String>) {
    let m = (Tensor::full(&[ROWS, 512], g as f64), Tensor::full_of(&[ROWS, 128], g as f64, DType::F64));
    (m, BTreeMap::from([("generation".to_string(), g.to_string())]))
}

/// Load the checkpoint and check it is one whole generation; returns it.
fn check_intact(path: &Path) -> u64 {
    let template = generation(0).0;
    let (a, b) =
        checkpoint::load(path, &template).unwrap_or_else(|e| panic!("checkpoint does not load: {e}"));
    let meta = checkpoint::read_metadata(path).unwrap();
    let g: u64 = meta["generation"].parse().unwrap();
    assert!(a.to_vec::<f32>().iter().all(|&x| x == g as f32), "tensor 0 is not all {g}");
    assert!(b.to_vec::<f64>().iter().all(|&x| x == g as f64), "tensor 1 is not all {g}");
    g
}

#[test]
#[ignore = "the writer process of kill_writer_during_saves (started with ADJOINT_CRASH_WRITER)"]
fn crash_writer_child() {
    let Ok(path) = std::env::var(ENV) else { return };
    let start: u64 = std::env::var("ADJOINT_CRASH_START").unwrap().parse().unwrap();
    println!("READY");
    for g in start.. {
        let (m, meta) = generation(g);
        checkpoint::save(&path, &m, &meta).unwrap();
    }
}

#[test]
fn kill_writer_during_saves() {
    let dir = std::env::temp_dir().join(format!("adjoint-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let (m, meta) = generation(1);
    checkpoint::save(&path, &m, &meta).unwrap();
    let delays = uniform(&Key::new(2026), &[40], 0.0, 1.0, DType::F64).to_vec::<f64>();
    let mut last = check_intact(&path);
    let mut advanced = 0;
    for (round, u) in delays.iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_writer_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env(ENV, &path)
            .env("ADJOINT_CRASH_START", (last + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the writer runs, then kill it 0–40 ms into its saves.
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        while !line.contains("READY") {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "the writer exited before it started");
        }
        std::thread::sleep(Duration::from_micros((u * 40_000.0) as u64));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the writer was not killed");
        let g = check_intact(&path);
        assert!(g >= last, "round {round}: generation went back from {last} to {g}");
        advanced += usize::from(g > last);
        last = g;
    }
    // The kills landed at different points: some rounds completed saves, and the temporary files
    // left by killed writers never replaced the checkpoint.
    assert!(advanced > 0, "no save ever completed: the kill test did not exercise saving");
    let leftovers = std::fs::read_dir(&dir).unwrap().count() - 1;
    eprintln!(
        "{} rounds, {advanced} advanced the checkpoint, {leftovers} temporary files left",
        delays.len()
    );
    std::fs::remove_dir_all(&dir).ok();
}
