//! Multi-process tests: two writers at once, and `runs reproduce`. Child processes are this test
//! binary re-executed so that it runs only `child_entry`, in a mode given by extra arguments.

mod common;

use std::path::PathBuf;

use adjoint_store::cli::{run_runs, RunsCommand, StoreArgs};
use adjoint_store::{Registry, RunStatus, Signer, ENV_KEY, ENV_OUT, ENV_REGISTRY};
use common::{child_params, env, metrics, sha, spawn_child, tiny_train};

/// Entry point for child processes. Without `child:` arguments (a normal test run) it has nothing
/// to do; the real assertions are in the parent tests below.
#[test]
fn child_entry() {
    let Some(p) = child_params() else { return };
    let reg_dir = PathBuf::from(std::env::var_os(ENV_REGISTRY).expect("ADJOINT_REGISTRY"));
    let key = PathBuf::from(std::env::var_os(ENV_KEY).expect("ADJOINT_KEY"));
    match p["mode"].as_str() {
        "register" => {
            let who = &p["who"];
            let n: usize = p["n"].parse().unwrap();
            let signer = Signer::load(&key).unwrap();
            let reg = Registry::open(&reg_dir).unwrap();
            let scratch = tempfile::tempdir().unwrap();
            for i in 0..n {
                let mut run = reg
                    .start_run(&signer, &format!("{who}-{i}"), serde_json::json!({"i": i}), i as u64)
                    .unwrap();
                run.record_dataset("shared", b"the same data for everyone").unwrap();
                for ep in 0..3 {
                    run.log_epoch_metrics(ep, metrics(&[("loss", 1.0 / (ep + 1) as f64)])).unwrap();
                }
                let shared = scratch.path().join("shared.bin");
                std::fs::write(&shared, b"identical weights in both processes").unwrap();
                run.add_checkpoint(&shared, "shared").unwrap();
                let own = scratch.path().join("own.bin");
                std::fs::write(&own, format!("weights of {who} run {i}")).unwrap();
                run.add_checkpoint(&own, "final").unwrap();
                let m = run.finish(metrics(&[("loss", i as f64)])).unwrap();
                // Both processes move the same alias; each move must land, in order.
                reg.promote(&m.run_id, "race@latest", &signer).unwrap();
            }
        }
        "train" => {
            let out = PathBuf::from(std::env::var_os(ENV_OUT).expect("ADJOINT_OUT"));
            let lr: f64 = p["lr"].parse().unwrap();
            let epochs: u64 = p["epochs"].parse().unwrap();
            let args: Vec<String> = std::env::args().skip(1).collect();
            tiny_train(&reg_dir, &key, &PathBuf::from(&p["data"]), lr, epochs, &out, args);
        }
        m => panic!("unknown child mode {m}"),
    }
}

#[test]
fn two_processes_register_at_once() {
    let e = env();
    let n = 8;
    let children: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|who| {
            let extra = ["child:register".to_string(), format!("p:who={who}"), format!("p:n={n}")];
            spawn_child(&extra, &[(ENV_REGISTRY, &e.dir), (ENV_KEY, &e.owner_key)])
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let reg = e.reg();
    let runs = reg.list_runs().unwrap();
    assert_eq!(runs.len(), 2 * n);
    assert!(runs.iter().all(|r| r.status == RunStatus::Finished));
    // Diagnostic only (timing-dependent): how the two writers' runs interleaved.
    let order: Vec<&str> = runs.iter().rev().map(|r| &r.name[..2]).collect();
    eprintln!("start order: {}", order.join(" "));
    for who in ["p1", "p2"] {
        for i in 0..n {
            let r = runs.iter().find(|r| r.name == format!("{who}-{i}")).unwrap();
            let m = reg.load_manifest(&r.run_id).unwrap().manifest;
            assert_eq!(m.epochs.len(), 3);
            assert_eq!(m.checkpoints[1].sha256, sha(format!("weights of {who} run {i}").as_bytes()));
            assert_eq!(m.final_metrics["loss"], i as f64);
        }
    }
    let rep = reg.verify().unwrap();
    assert!(rep.ok() && rep.warnings.is_empty(), "{rep:?}");
    // 2n distinct final checkpoints + the shared one, stored once.
    assert_eq!(rep.blobs_checked, 2 * n + 1);
    // Every promotion landed as its own version and alias move, in one gap-free history.
    assert_eq!(reg.model_versions("race").unwrap().len(), 2 * n);
    let c = rusqlite::Connection::open(e.dir.join("registry.db")).unwrap();
    let seqs: Vec<i64> = {
        let mut st = c.prepare("SELECT seq FROM alias_moves ORDER BY seq").unwrap();
        st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(seqs, (1..=2 * n as i64).collect::<Vec<_>>());
    assert!(reg.load_checkpoint("race@latest").is_ok());
}

#[test]
fn a_writer_killed_mid_write_leaves_the_registry_consistent() {
    let e = env();
    let extra = ["child:register".to_string(), "p:who=victim".to_string(), "p:n=100000".to_string()];
    let mut child = spawn_child(&extra, &[(ENV_REGISTRY, &e.dir), (ENV_KEY, &e.owner_key)]);
    let reg = e.reg();
    let t0 = std::time::Instant::now();
    // Let it get a few runs in, then kill it (SIGKILL: no destructors, no cleanup).
    while reg.list_runs().unwrap().len() < 4 {
        assert!(t0.elapsed().as_secs() < 60, "child made no progress");
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let reg = Registry::open(&e.dir).unwrap();
    let rep = reg.verify().unwrap();
    assert!(rep.ok(), "{:?}", rep.problems);
    for r in reg.list_runs().unwrap() {
        if r.status == RunStatus::Finished {
            let m = reg.load_manifest(&r.run_id).unwrap().manifest;
            assert_eq!(m.checkpoints.len(), 2);
            assert!(reg.load_checkpoint(&m.checkpoints[1].sha256).is_ok());
        }
    }
    reg.gc(std::time::Duration::ZERO).unwrap();
    let rep = reg.verify().unwrap();
    assert!(rep.ok(), "{:?}", rep.problems);
    assert!(rep.warnings.iter().all(|w| w.contains("never finished")), "{:?}", rep.warnings);
    // And the registry keeps working.
    common::simple_run(&e, "after", 0.1, b"after the crash", 0.5);
    assert!(reg.verify().unwrap().ok());
}

fn train_args(e: &common::Env, lr: f64, epochs: u64) -> Vec<String> {
    common::child_args(&[
        "child:train".to_string(),
        format!("p:lr={lr}"),
        format!("p:epochs={epochs}"),
        format!("p:data={}", e.data_file().display()),
    ])
}

#[test]
fn reproduce_matches_bit_for_bit() {
    let e = env();
    let args = train_args(&e, 0.05, 6);
    let orig = tiny_train(&e.dir, &e.owner_key, &e.data_file(), 0.05, 6, &e.path("out"), args);
    let keep = e.path("rerun");
    let program = std::env::current_exe().unwrap();
    let store = StoreArgs { registry: e.dir.clone(), key: None };
    let cmd =
        RunsCommand::Reproduce { run: orig.run_id.clone(), keep: Some(keep.clone()), program: Some(program) };
    let mut out = Vec::new();
    let code = run_runs(&cmd, &store, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("data:          identical (1 inputs)"), "{text}");
    assert!(text.contains("epoch metrics: identical bit for bit (6 epochs)"), "{text}");
    assert!(text.contains("checkpoints:   identical weights (same SHA-256)"), "{text}");
    assert!(text.contains("result: REPRODUCED (final metrics bit for bit)"), "{text}");
    // The rerun really ran in its own registry, not the original.
    let rerun = Registry::open(keep.join("registry")).unwrap();
    let rr = rerun.list_runs().unwrap();
    assert_eq!(rr.len(), 1);
    assert_ne!(rr[0].run_id, orig.run_id);
    assert_eq!(e.reg().list_runs().unwrap().len(), 1);
    let m = rerun.load_manifest(&rr[0].run_id).unwrap().manifest;
    assert_eq!(m.checkpoints[0].sha256, orig.checkpoints[0].sha256);
}

#[test]
fn reproduce_reports_a_mismatch() {
    let e = env();
    // The recorded command trains with lr 0.05, but the recorded metrics came from lr 0.06:
    // as if the run had been non-deterministic.
    let args = train_args(&e, 0.05, 4);
    let orig = tiny_train(&e.dir, &e.owner_key, &e.data_file(), 0.06, 4, &e.path("out"), args);
    let rep = e.reg().reproduce(&orig.run_id, &std::env::current_exe().unwrap(), None).unwrap();
    assert!(!rep.metrics_match() && !rep.epochs_match() && !rep.checkpoints_match());
    let text = rep.render();
    assert!(text.contains("result: NOT REPRODUCED"), "{text}");
    assert!(text.contains("config:        DIFFERENT"), "{text}");
    assert!(text.contains("lr: 0.06 -> 0.05"), "{text}");
    let loss = rep.final_metrics.iter().find(|m| m.name == "loss").unwrap();
    assert!(loss.original.unwrap() != loss.reproduced.unwrap());
    assert!(!rep.workdir.exists(), "a temporary work folder is removed");
    // A command that fails is reported with its exit status.
    let mut bad = e.reg().start_run(&e.owner, "bad", serde_json::json!({}), 0).unwrap();
    bad.set_command(common::child_args(&["child:nosuchmode".to_string()])).unwrap();
    let bad = bad.finish(metrics(&[("loss", 1.0)])).unwrap();
    let err = e.reg().reproduce(&bad.run_id, &std::env::current_exe().unwrap(), None).unwrap_err();
    assert!(err.to_string().contains("exited with"), "{err}");
}
