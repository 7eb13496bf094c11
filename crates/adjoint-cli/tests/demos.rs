//! The `adjoint` binary end to end: each demo in its shortened mode writes a complete run
//! folder and a signed registry record; the command line reports misuse in one line, exit 2.

mod common;

use std::path::{Path, PathBuf};

use common::adjoint;

fn run_folder(root: &Path, name: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{name}-")))
        .collect();
    assert_eq!(found.len(), 1, "one {name} run folder in {}", root.display());
    found[0].clone()
}

#[test]
fn every_demo_writes_its_run_folder_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs");
    let reg = tmp.path().join("registry");
    let o = adjoint(
        tmp.path(),
        &["demo", "--quick", "--quiet", "--out", out.to_str().unwrap(), "--registry", reg.to_str().unwrap()],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&o.stderr));
    let expect: [(&str, &[&str]); 4] = [
        (
            "forecast",
            &[
                "model.safetensors",
                "forecast_vs_truth.png",
                "rolling_error.png",
                "var99.png",
                "evaluation_online-model.json",
            ],
        ),
        (
            "robot",
            &[
                "controller.safetensors",
                "learning_curves.png",
                "trajectory_xy.png",
                "trajectory_xz.png",
                "evaluation_controller.json",
            ],
        ),
        (
            "imaging",
            &[
                "pipeline.safetensors",
                "overlay.png",
                "digits.safetensors",
                "filters.json",
                "training_loss.png",
                "evaluation_segmentation-pipeline.json",
                "evaluation_digits-cnn.json",
            ],
        ),
        (
            "meta",
            &[
                "maml.safetensors",
                "sinusoid_fit.png",
                "fomaml.safetensors",
                "pretrained.safetensors",
                "training_loss.png",
                "mse_vs_steps.png",
                "evaluation_maml-init.json",
            ],
        ),
    ];
    for (name, files) in expect {
        let dir = run_folder(&out, name);
        for f in ["config.json", "metrics.jsonl", "results.md", "results.json"].iter().chain(files) {
            let p = dir.join(f);
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            assert!(len > 0, "{} missing or empty", p.display());
        }
        let png = std::fs::read(dir.join(files[1])).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: {} is a PNG", files[1]);
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["demo"], name);
        // `methods`: method name → metrics, with the names the demos' issue fixes.
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
        let want: &[(&str, &[&str])] = match name {
            "robot" => &[
                ("bptt", &["final_distance_cm", "train_time_s"]),
                ("cem", &["final_distance_cm", "train_time_s"]),
                ("bptt_adapted", &["final_distance_cm", "train_time_s"]),
                ("cem_new_payload", &["final_distance_cm", "train_time_s"]),
                ("sysid", &["payload_mass_error"]),
            ],
            "forecast" => &[
                ("garch", &["mae", "rmse", "var99_exceedance"]),
                ("lstm_frozen", &["mae", "rmse", "var99_exceedance"]),
                ("lstm_online", &["mae", "rmse", "var99_exceedance"]),
                ("hybrid", &["mae", "rmse", "var99_exceedance"]),
            ],
            "meta" => &[
                ("maml", &["mse_1_step", "mse_10_steps", "train_time_s"]),
                ("fomaml", &["mse_1_step", "mse_10_steps", "train_time_s"]),
                ("pretrained", &["mse_1_step", "mse_10_steps", "train_time_s"]),
            ],
            "imaging" => &[
                ("pipeline", &["dice_mean", "dice_std", "iou_mean", "iou_std"]),
                ("pipeline_frozen_filters", &["dice_mean", "dice_std", "iou_mean", "iou_std"]),
                ("cnn_alone", &["dice_mean", "dice_std", "iou_mean", "iou_std"]),
            ],
            _ => &[],
        };
        for (method, keys) in want {
            for k in *keys {
                assert!(
                    results["methods"][method][k].is_number(),
                    "{name}: methods.{method}.{k} in {results}"
                );
            }
        }
        assert!(stdout.contains(&format!("{name}: recorded as run")), "{name} recorded:\n{stdout}");
    }
    let list = adjoint(tmp.path(), &["runs", "list", "--registry", reg.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&list.stdout);
    for name in ["forecast", "robot", "imaging", "meta"] {
        assert!(text.contains(name), "runs list shows {name}:\n{text}");
    }
    let verify = adjoint(tmp.path(), &["runs", "verify", "--registry", reg.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    audit_each_demo(tmp.path(), &reg, &stdout);
}

/// `runs audit` on each demo's model (the imaging run has two: the pipeline and the digits
/// CNN): the report folder has its files, and its signature checks out and is recorded.
fn audit_each_demo(home: &Path, reg: &Path, demo_stdout: &str) {
    let key = home.join(".config/adjoint/signing.key");
    let signer = adjoint_store::Signer::load(&key).unwrap();
    let run_of = |name: &str| {
        let line = demo_stdout.lines().find(|l| l.starts_with(&format!("{name}: recorded as run "))).unwrap();
        line.split_whitespace().nth(4).unwrap().to_string()
    };
    let targets = [
        ("forecast", run_of("forecast"), &["attribution_0.png", "calibration_0.png"][..]),
        ("robot", run_of("robot"), &[][..]),
        (
            "imaging",
            format!("{}/segmentation-pipeline", run_of("imaging")),
            &["attribution_0.png", "calibration_0.png"][..],
        ),
        ("digits", run_of("imaging"), &["calibration_0.png"][..]),
    ];
    for (name, target, extra) in targets {
        let out = home.join(format!("audit-{name}"));
        let args = [
            "runs",
            "audit",
            &target,
            "--out",
            out.to_str().unwrap(),
            "--registry",
            reg.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ];
        let o = adjoint(home, &args);
        assert!(
            o.status.success(),
            "{name}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        for f in ["report.md", "audit.json", "signature.json", "slices.png", "drift.png"].iter().chain(extra)
        {
            let len = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
            assert!(len > 0, "{name}: {f} missing or empty in {}", out.display());
        }
        let png = std::fs::read(out.join("slices.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: slices.png is a PNG");
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        for section in [
            "## Slices (worst first",
            "gap between best slice",
            "## Input drift",
            "## Lineage",
            "## Against the promoted version",
        ] {
            assert!(report.contains(section), "{name}: report.md lacks {section:?}");
        }
        let audit: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("audit.json")).unwrap()).unwrap();
        assert!(!audit["slices_worst_first"].as_array().unwrap().is_empty(), "{name}: {audit}");
        let sig = adjoint_store::verify_audit_dir(&out, Some(&signer.key_id())).unwrap();
        assert!(sig.body.files.iter().any(|(f, _, _)| f == "report.md"), "{name}");
        let r = adjoint_store::Registry::open(reg).unwrap();
        let rec = r.records("audit", Some(&sig.body.checkpoint)).unwrap();
        assert!(rec.iter().any(|x| x.id == sig.record), "{name}: the audit is recorded in the registry");
    }
    let verify = adjoint(home, &["runs", "verify", "--registry", reg.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn misuse_gets_one_line_and_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["frobnicate"][..],
        &["demo", "--bogus"],
        &["demo", "weather"],
        &["demo", "--seed", "x"],
        &["demo", "forecast", "--lr", "nan"],
        &["demo", "forecast", "--lr", "inf"],
        &["demo", "forecast", "--lr", "-1"],
        &["demo", "forecast", "--epochs", "0"],
        &["runs", "promote"],
        &["runs", "audit"],
        &["runs", "lineage"],
        &["runs", "promote", "x", "m@a", "--override"],
    ] {
        let o = adjoint(tmp.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{err}");
        if args[0] == "runs" {
            // The missing arguments are named, not only announced.
            assert!(err.contains('<'), "{args:?}: {err}");
        }
    }
    let help = adjoint(tmp.path(), &["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for cmd in ["demo", "runs", "keys"] {
        assert!(text.contains(cmd), "--help lists {cmd}:\n{text}");
    }
}

#[test]
fn a_diverged_run_stops_and_is_recorded_as_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let (runs, reg) = (tmp.path().join("runs"), tmp.path().join("registry"));
    let (runs, reg) = (runs.to_str().unwrap(), reg.to_str().unwrap());
    let o = adjoint(
        tmp.path(),
        &["demo", "forecast", "--quick", "--quiet", "--lr", "1e300", "--out", runs, "--registry", reg],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("diverged at step"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let list = adjoint(tmp.path(), &["runs", "list", "--registry", reg]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("failed"), "the run is listed as failed:\n{text}");
    assert!(!text.contains("finished"), "{text}");
}
