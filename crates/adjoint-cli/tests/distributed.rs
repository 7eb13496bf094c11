//! `adjoint demo … --distributed`. With the `distributed` feature: the demos under
//! `mpirun --allow-run-as-root --oversubscribe -np 2` (a missing `mpirun` fails the test, it is
//! never skipped) reproduce the one-process run, rank 0 alone writes the run folder and records
//! the run with its world size and shards. Without the feature: the flag is a one-line usage
//! error.

use std::path::Path;
use std::process::Command;

fn data_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

#[cfg(not(feature = "distributed"))]
#[test]
fn without_the_feature_the_flag_is_a_usage_error() {
    let o = Command::new(env!("CARGO_BIN_EXE_adjoint"))
        .args(["demo", "imaging", "--distributed", "--quick", "--no-record"])
        .env("ADJOINT_DATA", data_dir())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("built without MPI support"), "{err}");
}

#[cfg(feature = "distributed")]
mod mpi {
    use super::*;
    use std::process::Output;

    /// `mpirun -np <np> adjoint <args>` (np 0: without mpirun), in a scratch HOME.
    fn launch(home: &Path, np: usize, args: &[&str]) -> Output {
        let exe = env!("CARGO_BIN_EXE_adjoint");
        let mut c = if np == 0 {
            Command::new(exe)
        } else {
            let found = Command::new("mpirun").arg("--version").output();
            assert!(
                found.is_ok_and(|o| o.status.success()),
                "`mpirun` not found: the distributed feature needs Open MPI (apt-get install openmpi-bin libopenmpi-dev)"
            );
            let mut c = Command::new("mpirun");
            c.args(["--allow-run-as-root", "--oversubscribe", "-np", &np.to_string(), exe]);
            c
        };
        c.args(args)
            .env("HOME", home)
            .env("RAYON_NUM_THREADS", "1")
            .env_remove("ADJOINT_KEY")
            .env_remove("ADJOINT_OUT")
            .env("ADJOINT_DATA", data_dir())
            .output()
            .expect("run adjoint")
    }

    fn ok(o: &Output) -> String {
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{text}");
        text
    }

    fn manifests(reg: &Path) -> Vec<serde_json::Value> {
        std::fs::read_dir(reg.join("manifests"))
            .unwrap()
            .map(|e| serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap())
            .collect()
    }

    fn demo_on_two_ranks_matches_one_process(name: &str) {
        let tmp = tempfile::tempdir().unwrap();
        let p = |n: &str| tmp.path().join(n);
        let (out1, reg1, out2, reg2) = (p("out1"), p("reg1"), p("out2"), p("reg2"));
        let s = |x: &std::path::PathBuf| x.to_str().unwrap().to_string();
        let base = ["demo", name, "--quick", "--quiet"];
        ok(&launch(tmp.path(), 0, &[&base[..], &["--out", &s(&out1), "--registry", &s(&reg1)]].concat()));
        let two = launch(
            tmp.path(),
            2,
            &[&base[..], &["--distributed", "--out", &s(&out2), "--registry", &s(&reg2)]].concat(),
        );
        let text = ok(&two);
        // Rank 0 alone writes a run folder and records one run.
        assert_eq!(std::fs::read_dir(&out2).unwrap().count(), 1, "{text}");
        let (one, two) = (manifests(&reg1), manifests(&reg2));
        assert_eq!((one.len(), two.len()), (1, 1), "{text}");
        let d = &two[0]["manifest"]["distributed"];
        assert_eq!(d["world_size"], 2, "{d}");
        assert_eq!(d["shards"][1]["examples"], "rows j of each global batch with j mod 2 = 1", "{d}");
        assert!(one[0]["manifest"].get("distributed").is_none());
        // Same training, up to the rounding of a different summation order.
        let (m1, m2) = (&one[0]["manifest"]["final_metrics"], &two[0]["manifest"]["final_metrics"]);
        for (k, v) in m1.as_object().unwrap() {
            let (a, b) = (v.as_f64().unwrap(), m2[k].as_f64().unwrap());
            if k.ends_with("time_s") {
                continue;
            }
            // An accuracy is a count over a held-out set (359 digits for imaging): a different
            // summation order may flip one borderline example, 1/359 = 2.8e-3.
            let tol = if k.contains("accuracy") { 3e-3 } else { 1e-3 };
            assert!((a - b).abs() <= tol * a.abs().max(1.0), "{name}: {k}: one process {a}, two ranks {b}");
        }
    }

    #[test]
    fn imaging_on_two_ranks_matches_one_process_and_rank_0_records_it() {
        demo_on_two_ranks_matches_one_process("imaging");
    }

    #[test]
    fn forecast_on_two_ranks_matches_one_process_and_rank_0_records_it() {
        demo_on_two_ranks_matches_one_process("forecast");
    }

    #[test]
    fn the_robot_demo_has_no_distributed_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let o = launch(tmp.path(), 0, &["demo", "robot", "--distributed", "--quick", "--no-record"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("--distributed applies to `demo imaging` and `demo forecast` only"), "{err}");
    }
}
