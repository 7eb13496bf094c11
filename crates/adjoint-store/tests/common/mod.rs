//! Shared helpers: temporary registries, keys, and a tiny deterministic "training" program that a
//! test can run in-process or in a child process (the test binary re-executing itself).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use adjoint_store::{Metrics, Registry, RunManifest, Signer};

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub owner: Signer,
    pub owner_key: PathBuf,
}

/// A temporary registry whose owner (root writer) key is saved to `<tmp>/owner.key`.
pub fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("runs");
    let owner = Signer::from_seed([7; 32]);
    let owner_key = tmp.path().join("owner.key");
    owner.save(&owner_key).unwrap();
    let reg = Registry::open(&dir).unwrap();
    assert!(reg.bootstrap(&owner).unwrap());
    Env { tmp, dir, owner, owner_key }
}

impl Env {
    pub fn reg(&self) -> Registry {
        Registry::open(&self.dir).unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Writes `data.csv` with points of y = 2x + 1 (+ a fixed wiggle).
    pub fn data_file(&self) -> PathBuf {
        let p = self.path("data.csv");
        if !p.exists() {
            let mut s = String::from("x,y\n");
            for i in 0..32 {
                let x = i as f64 / 8.0 - 2.0;
                let y = 2.0 * x + 1.0 + 0.1 * ((i * 7919 % 13) as f64 / 13.0 - 0.5);
                s.push_str(&format!("{x},{y}\n"));
            }
            std::fs::write(&p, s).unwrap();
        }
        p
    }
}

pub fn metrics(pairs: &[(&str, f64)]) -> Metrics {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Records a simple finished run with one checkpoint whose bytes are `weights`.
pub fn simple_run(env: &Env, name: &str, lr: f64, weights: &[u8], loss: f64) -> RunManifest {
    let reg = env.reg();
    let mut run =
        reg.start_run(&env.owner, name, serde_json::json!({"lr": lr, "model": {"hidden": 8}}), 3).unwrap();
    run.record_data_file(env.data_file()).unwrap();
    run.log_epoch_metrics(1, metrics(&[("loss", loss * 2.0)])).unwrap();
    let ck = env.path(&format!("{name}-{}.safetensors", sha(weights)));
    std::fs::write(&ck, weights).unwrap();
    run.add_checkpoint(&ck, "final").unwrap();
    run.finish(metrics(&[("loss", loss)])).unwrap()
}

pub fn sha(b: &[u8]) -> String {
    adjoint_store::sha256_bytes(b)
}

/// Fits y = w x + b to a CSV by full-batch gradient descent: deterministic f64 arithmetic in a
/// fixed order, so reruns agree bit for bit. Writes the weights as a safetensors checkpoint.
pub fn tiny_train(
    reg_dir: &Path,
    key: &Path,
    data: &Path,
    lr: f64,
    epochs: u64,
    out: &Path,
    command: Vec<String>,
) -> RunManifest {
    let reg = Registry::open(reg_dir).unwrap();
    let signer = Signer::load(key).unwrap();
    let mut run =
        reg.start_run(&signer, "tiny", serde_json::json!({"lr": lr, "epochs": epochs}), 11).unwrap();
    run.set_command(command).unwrap();
    run.record_data_file(data).unwrap();
    let text = std::fs::read_to_string(data).unwrap();
    let pts: Vec<(f64, f64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let (a, b) = l.split_once(',').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    let (mut w, mut b) = (0.0f64, 0.0f64);
    let n = pts.len() as f64;
    let mut loss = 0.0;
    for epoch in 1..=epochs {
        let (mut gw, mut gb) = (0.0, 0.0);
        loss = 0.0;
        for &(x, y) in &pts {
            let r = w * x + b - y;
            loss += r * r / n;
            gw += 2.0 * r * x / n;
            gb += 2.0 * r / n;
        }
        w -= lr * gw;
        b -= lr * gb;
        run.log_epoch_metrics(epoch, metrics(&[("loss", loss), ("w", w)])).unwrap();
    }
    std::fs::create_dir_all(out).unwrap();
    let ck = out.join("tiny.safetensors");
    let (wb, bb) = (w.to_le_bytes(), b.to_le_bytes());
    let views: BTreeMap<String, safetensors::tensor::TensorView<'_>> = [
        (
            "w".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![1], &wb).unwrap(),
        ),
        (
            "b".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![1], &bb).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    safetensors::serialize_to_file(&views, None, &ck).unwrap();
    run.add_checkpoint(&ck, "final").unwrap();
    run.finish(metrics(&[("loss", loss), ("w", w), ("b", b)])).unwrap()
}

/// Arguments that make this test binary run only `child_entry`, plus `extra` words that
/// `child_entry` reads (libtest treats them as extra name filters, which match nothing).
pub fn child_args(extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> =
        ["child_entry", "--exact", "--nocapture", "--test-threads=1"].map(String::from).to_vec();
    v.extend(extra.iter().cloned());
    v
}

/// Runs this test binary as a child in `child_entry`'s mode `extra`.
pub fn spawn_child(extra: &[String], envs: &[(&str, &Path)]) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(child_args(extra));
    for (k, v) in envs {
        c.env(k, v);
    }
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    c.spawn().unwrap()
}

/// `key=value` words after `child:` in this process's arguments.
pub fn child_params() -> Option<BTreeMap<String, String>> {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.iter().find_map(|a| a.strip_prefix("child:"))?.to_string();
    let mut m: BTreeMap<String, String> = args
        .iter()
        .filter_map(|a| a.strip_prefix("p:")?.split_once('='))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    m.insert("mode".into(), mode);
    Some(m)
}
