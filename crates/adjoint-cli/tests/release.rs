//! `adjoint runs policy/promote/gates/alerts/label/lineage --data` on a registry prepared with
//! the store's API, and the forecast demo's monitoring (alert and automatic rollback).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::adjoint;

use adjoint_store::{Evaluation, Registry, Signer, Slice};

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Setup {
    tmp: tempfile::TempDir,
    reg: PathBuf,
    key: PathBuf,
    owner: Signer,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let reg = tmp.path().join("registry");
        let key = tmp.path().join("owner.key");
        let owner = Signer::from_seed([4; 32]);
        owner.save(&key).unwrap();
        Registry::open(&reg).unwrap().bootstrap(&owner).unwrap();
        Setup { tmp, reg, key, owner }
    }

    /// A finished run reading `data`, with one checkpoint (returned) and, when `mae` is given,
    /// an evaluation with slices A and B.
    fn run(&self, name: &str, weights: &[u8], data: &Path, mae: Option<(f64, f64, f64)>) -> String {
        let reg = Registry::open(&self.reg).unwrap();
        let mut run = reg.start_run(&self.owner, name, serde_json::json!({"w": name}), 1).unwrap();
        run.record_data_file(data).unwrap();
        let ck = self.tmp.path().join(format!("{name}.bin"));
        std::fs::write(&ck, weights).unwrap();
        let h = run.add_checkpoint(&ck, "final").unwrap();
        run.finish(Default::default()).unwrap();
        if let Some((all, a, b)) = mae {
            let mut e = Evaluation::new("eval", "mae", false, [("mae".to_string(), all)].into());
            e.checkpoint = h.clone();
            e.slices = [("stock=A", a), ("stock=B", b)]
                .iter()
                .map(|(n, v)| Slice { name: n.to_string(), n: 5, metrics: [("mae".to_string(), *v)].into() })
                .collect();
            reg.record_evaluation(&e, &self.owner).unwrap();
        }
        h
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--registry", self.reg.to_str().unwrap(), "--key", self.key.to_str().unwrap()]);
        adjoint(self.tmp.path(), &a)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

#[test]
fn the_gate_refuses_a_worse_candidate_naming_the_checks_and_records_an_override() {
    let s = Setup::new();
    let data = s.write("data.csv", "x\n1\n");
    let good = s.run("good", b"good", &data, Some((0.5, 0.4, 0.6)));
    let bad = s.run("bad", b"bad", &data, Some((1.5, 0.4, 0.9)));
    let o = s.cmd(&["runs", "promote", &good, "m@production"]);
    assert!(o.status.success(), "{}", text(&o));
    let policy = s.write(
        "policy.json",
        r#"{"models": {"m": {"thresholds": [{"metric": "mae", "max": 1.0}],
            "max_slice_regression": [{"metric": "mae", "max": 0.1}]}}}"#,
    );
    let o = s.cmd(&["runs", "policy", "set", policy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = s.cmd(&["runs", "policy", "show"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("max_slice_regression"), "{}", text(&o));

    let o = s.cmd(&["runs", "promote", &bad, "m@production"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("threshold mae <= 1") && err.contains("slice stock=B mae regression <= 0.1"),
        "{err}"
    );
    assert!(!err.contains("slice stock=A"), "{err}");
    let o = s.cmd(&["runs", "gates", "m@production"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("refused") && out.contains("FAIL threshold mae <= 1"), "{out}");

    let o = s.cmd(&["runs", "promote", &bad, "m@production", "--override", "incident 42: known data issue"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("OVERRIDE"), "{}", text(&o));
    let o = s.cmd(&["runs", "gates", "m@production"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let short = adjoint_store::keys::short_id(&s.owner.key_id()).to_string();
    assert!(
        out.contains("override") && out.contains("incident 42: known data issue") && out.contains(&short),
        "{out}"
    );
    let o = s.cmd(&["runs", "models"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("2: "), "{}", text(&o));
    assert!(s.cmd(&["runs", "verify"]).status.success());
}

#[test]
fn restricted_data_labels_access_and_lineage_by_data() {
    let s = Setup::new();
    let data = s.write("patients.csv", "x\n1\n2\n");
    let h = s.run("m", b"weights", &data, None);
    let o = s.cmd(&["runs", "promote", &h, "m@production"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = s.cmd(&["runs", "label", data.to_str().unwrap(), "--owner", "clinic", "--label", "restricted"]);
    assert!(o.status.success(), "{}", text(&o));
    // A signer the policy does not list cannot record the data: clear error, nothing written.
    let analyst = s.tmp.path().join("analyst.key");
    Signer::from_seed([6; 32]).save(&analyst).unwrap();
    let pubkey = format!("{}.pub", analyst.display());
    assert!(s.cmd(&["keys", "trust", &pubkey, "--name", "analyst"]).status.success());
    let reg = Registry::open(&s.reg).unwrap();
    let mut run = reg.start_run(&Signer::from_seed([6; 32]), "r2", serde_json::json!({}), 1).unwrap();
    let err = run.record_data_file(&data).unwrap_err().to_string();
    assert!(err.contains("restricted") && err.contains("clinic"), "{err}");
    assert!(run.manifest().data.is_empty());
    // Export by a key the policy does not list is refused and writes nothing.
    let runs = String::from_utf8_lossy(&s.cmd(&["runs", "list"]).stdout).to_string();
    let run_id =
        runs.lines().find(|l| l.contains(" m ")).unwrap().split_whitespace().next().unwrap().to_string();
    let out = s.tmp.path().join("export");
    let o = s.cmd(&["runs", "export", &run_id, out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("may not export"), "{}", text(&o));
    assert!(!out.join("manifest.json").exists());
    // Deletion requests: every model that used the data version.
    let sha = adjoint_store::sha256_file(&data).unwrap().0;
    let o = s.cmd(&["runs", "lineage", "--data", &sha[..12]]);
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert!(listing.contains("label restricted, owner clinic") && listing.contains("model m:1"), "{listing}");
}

/// Sets a policy monitoring forecast@production (windows of 5, k = 2, auto-rollback, plus
/// `rule`) and runs the forecast demo (20 walk-forward days in `--quick`), which must succeed.
fn forecast_with_monitor(s: &Setup, rule: &str) -> Output {
    let monitor = format!(r#"{{"window": 5, "k": 2, "auto_rollback": true, {rule}}}"#);
    let policy =
        s.write("policy.json", &format!(r#"{{"models": {{"forecast": {{"monitor": {monitor}}}}}}}"#));
    assert!(s.cmd(&["runs", "policy", "set", policy.to_str().unwrap()]).status.success());
    let out = s.tmp.path().join("out");
    let o = s.cmd(&["demo", "forecast", "--quick", "--quiet", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    o
}

#[test]
fn the_forecast_demo_is_monitored_and_an_alert_rolls_production_back() {
    let s = Setup::new();
    let data = s.write("d.csv", "x\n1\n");
    for (n, w) in [("v1", b"v1".as_slice()), ("v2", b"v2")] {
        let h = s.run(n, w, &data, None);
        assert!(s.cmd(&["runs", "promote", &h, "forecast@production"]).status.success());
    }
    // Against the frozen model's error with a wide margin: windows recorded, no alert.
    let o = forecast_with_monitor(&s, r#""tolerance": 1000"#);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("monitored forecast@production over 4 windows, 0 alert(s)"),
        "{}",
        text(&o)
    );
    assert_eq!(Registry::open(&s.reg).unwrap().monitor_windows("forecast@production").unwrap().len(), 4);
    // A bound no model meets: every window breaches, so the first k windows raise an alert.
    let o = forecast_with_monitor(&s, r#""bound": 1e-9"#);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("ALERT on forecast@production") && stdout.contains("rolled back version 2 -> 1"),
        "{stdout}"
    );
    let o = s.cmd(&["runs", "alerts"]);
    let alerts = String::from_utf8_lossy(&o.stdout);
    assert!(
        alerts.contains("forecast@production") && alerts.contains("rolled back version 2 -> 1"),
        "{alerts}"
    );
    let o = s.cmd(&["runs", "models"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("@production"), "{}", text(&o));
    assert_eq!(Registry::open(&s.reg).unwrap().alias_version("forecast", "production").unwrap(), 1);
    assert!(s.cmd(&["runs", "verify"]).status.success());
}

#[test]
fn a_demo_on_restricted_data_with_a_key_the_policy_does_not_list_fails_and_writes_nothing() {
    let s = Setup::new();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/robot_arm_dynamics_params.json");
    let o = s.cmd(&["runs", "label", data.to_str().unwrap(), "--owner", "lab", "--label", "restricted"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = s.tmp.path().join("out");
    let o = s.cmd(&["demo", "robot", "--quick", "--quiet", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("may not record data") && err.contains("restricted") && err.contains("lab"),
        "{err}"
    );
    assert!(!out.exists(), "no run folder");
    let list = s.cmd(&["runs", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("no runs"), "{}", text(&list));
    // Once the policy lists the key, the same command records the run.
    let policy =
        s.write("p.json", &format!(r#"{{"data_access": {{"restricted": ["{}"]}}}}"#, s.owner.key_id()));
    assert!(s.cmd(&["runs", "policy", "set", policy.to_str().unwrap()]).status.success());
    let o = s.cmd(&["demo", "robot", "--quick", "--quiet", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&s.cmd(&["runs", "list"]).stdout).contains("robot"));
}
