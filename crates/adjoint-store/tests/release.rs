//! Evaluation records, the release gate, monitoring, data access and audits, at the store level.

mod common;

use adjoint_store::{
    verify_audit_dir, Calibration, CalibrationBin, DataLabel, Evaluation, FeatureDistribution, Monitor,
    MonitorPolicy, Policy, Registry, Role, Signer, Slice, StoreError,
};
use common::{env, metrics, simple_run};
use rusqlite::Connection;

fn evaluation(checkpoint: &str, mae: f64, slices: &[(&str, f64)]) -> Evaluation {
    let mut e = Evaluation::new("test eval", "mae", false, metrics(&[("mae", mae)]));
    e.checkpoint = checkpoint.into();
    e.slices = slices
        .iter()
        .map(|(n, v)| Slice { name: n.to_string(), n: 10, metrics: metrics(&[("mae", *v)]) })
        .collect();
    e
}

const POLICY: &str = r#"{
  "models": {
    "m": {
      "thresholds": [{"metric": "mae", "max": 1.0}],
      "max_slice_regression": [{"metric": "mae", "max": 0.05}],
      "monitor": {"window": 10, "k": 3, "tolerance": 0.5, "auto_rollback": true}
    }
  }
}"#;

/// A registry with policy `POLICY`, version 1 of `m` promoted to `m@prod`, and a worse candidate.
fn gated() -> (common::Env, String, String) {
    let e = env();
    let reg = e.reg();
    let good = simple_run(&e, "good", 0.1, b"good weights", 0.5).checkpoints[0].sha256.clone();
    let bad = simple_run(&e, "bad", 0.2, b"bad weights", 0.9).checkpoints[0].sha256.clone();
    reg.record_evaluation(&evaluation(&good, 0.5, &[("stock=A", 0.4), ("stock=B", 0.6)]), &e.owner).unwrap();
    reg.promote(&good, "m@prod", &e.owner).unwrap(); // no policy yet: promotes as before
    reg.set_policy(&Policy::parse(POLICY, "policy").unwrap(), &e.owner).unwrap();
    // Worse overall (above the threshold) and on slice B (regression 0.3 > 0.05).
    reg.record_evaluation(&evaluation(&bad, 1.2, &[("stock=A", 0.41), ("stock=B", 0.9)]), &e.owner).unwrap();
    (e, good, bad)
}

#[test]
fn a_worse_candidate_is_refused_naming_each_failed_check_and_the_refusal_is_recorded() {
    let (e, _, bad) = gated();
    let reg = e.reg();
    let err = reg.promote(&bad, "m@prod", &e.owner).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::GateRefused { .. }), "{msg}");
    assert!(msg.contains("threshold mae <= 1"), "{msg}");
    assert!(msg.contains("slice stock=B mae regression <= 0.05"), "{msg}");
    assert!(!msg.contains("slice stock=A"), "slice A regressed by 0.01 only: {msg}");
    assert_eq!(reg.alias_version("m", "prod").unwrap(), 1, "the alias did not move");
    let ds = reg.gate_decisions(Some("m@prod")).unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].0.outcome, "refused");
    assert_eq!(ds[0].0.failed().len(), 2);
    assert_eq!(ds[0].1, e.owner.key_id());
}

#[test]
fn an_override_promotes_and_records_its_reason_and_signer() {
    let (e, _, bad) = gated();
    let reg = e.reg();
    let (v, d) = reg.promote_gated(&bad, "m@prod", &e.owner, Some("hotfix approved by risk")).unwrap();
    assert_eq!(v, 2);
    assert_eq!(reg.alias_version("m", "prod").unwrap(), 2);
    let d = d.unwrap();
    assert_eq!((d.outcome.as_str(), d.reason.as_deref()), ("override", Some("hotfix approved by risk")));
    let ds = reg.gate_decisions(Some("m@prod")).unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].0.reason.as_deref(), Some("hotfix approved by risk"));
    assert_eq!(ds[0].0.promoted_version, Some(2));
    assert_eq!(ds[0].1, e.owner.key_id(), "the signer is recorded");
    assert!(reg.verify().unwrap().ok());
}

#[test]
fn a_candidate_without_an_evaluation_is_refused_and_a_passing_one_is_promoted() {
    let (e, _, _) = gated();
    let reg = e.reg();
    let none = simple_run(&e, "none", 0.3, b"unevaluated", 0.4).checkpoints[0].sha256.clone();
    let msg = reg.promote(&none, "m@prod", &e.owner).unwrap_err().to_string();
    assert!(msg.contains("evaluation record"), "{msg}");
    let better = simple_run(&e, "better", 0.3, b"better weights", 0.3).checkpoints[0].sha256.clone();
    reg.record_evaluation(&evaluation(&better, 0.45, &[("stock=A", 0.42), ("stock=B", 0.5)]), &e.owner)
        .unwrap();
    let (v, d) = reg.promote_gated(&better, "m@prod", &e.owner, None).unwrap();
    assert_eq!((v, d.unwrap().outcome.as_str()), (2, "passed"));
}

#[test]
fn a_tampered_policy_or_evaluation_record_is_refused_by_verify() {
    let (e, good, _) = gated();
    let reg = e.reg();
    assert!(reg.verify().unwrap().ok());
    let db = Connection::open(e.dir.join("registry.db")).unwrap();
    // Loosen the threshold in the stored policy.
    db.execute("UPDATE records SET body=replace(body, '\"max\":1.0', '\"max\":9.0') WHERE kind='policy'", [])
        .unwrap();
    let rep = reg.verify().unwrap();
    assert!(
        rep.problems.iter().any(|p| p.contains("policy record") && p.contains("signature")),
        "{:?}",
        rep.problems
    );
    assert!(reg.policy().is_err(), "a tampered policy is never used");
    // Improve the good version's evaluation.
    db.execute(
        "UPDATE records SET body=replace(body, '\"mae\":0.5', '\"mae\":0.1') WHERE kind='evaluation' AND subject=?1",
        [&good],
    )
    .unwrap();
    let rep = reg.verify().unwrap();
    assert!(rep.problems.iter().any(|p| p.contains("evaluation record")), "{:?}", rep.problems);
    assert!(reg.latest_evaluation(&good).is_err());
    // A row that is not even JSON is a named problem, not a panic.
    db.execute(
        "INSERT INTO records(kind, subject, created_at, body, key_id, signature) VALUES('alert', 'm@prod', 't', '{not json', 'k', 's')",
        [],
    )
    .unwrap();
    let rep = reg.verify().unwrap();
    assert!(rep.problems.iter().any(|p| p.contains("alert record")), "{:?}", rep.problems);
    assert!(reg.alerts(None).is_err());
}

#[test]
fn an_edited_policy_file_copy_is_refused() {
    let (e, _, _) = gated();
    let reg = e.reg();
    let p = e.dir.join("policy.json");
    let text = std::fs::read_to_string(&p).unwrap().replace("1.0", "9.0");
    std::fs::write(&p, text).unwrap();
    let msg = reg.policy().unwrap_err().to_string();
    assert!(msg.contains("policy.json") && msg.contains("differs"), "{msg}");
    let rep = reg.verify().unwrap();
    assert!(rep.problems.iter().any(|p| p.contains("policy.json")), "{:?}", rep.problems);
}

#[test]
fn policy_changes_need_a_writer_and_bad_documents_are_named() {
    let e = env();
    let reg = e.reg();
    let signer = Signer::from_seed([9; 32]);
    reg.trust_key(&signer.key_id(), "ci", Role::Signer, &e.owner).unwrap();
    let err = reg.set_policy(&Policy::default(), &signer).unwrap_err();
    assert!(matches!(err, StoreError::NotWriter { .. }), "{err}");
    let err =
        Policy::parse(r#"{"models": {"m": {"monitor": {"window": 0, "k": 1}}}}"#, "p.json").unwrap_err();
    assert!(err.to_string().contains("p.json: model m"), "{err}");
}

/// A deterministic stream: values around `mean` (uniform ± 0.5·mean) from a xorshift generator.
fn stream(seed: u64, n: usize, mean: impl Fn(usize) -> f64) -> Vec<f64> {
    let mut x = seed | 1;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            mean(i) * (0.5 + u)
        })
        .collect()
}

fn monitored() -> (common::Env, Registry) {
    let e = env();
    let reg = e.reg();
    for (name, w) in [("v1", b"v1".as_slice()), ("v2", b"v2")] {
        let h = simple_run(&e, name, 0.1, w, 0.5).checkpoints[0].sha256.clone();
        reg.promote(&h, "m@prod", &e.owner).unwrap();
    }
    reg.set_policy(&Policy::parse(POLICY, "policy").unwrap(), &e.owner).unwrap();
    (e, reg)
}

#[test]
fn a_change_point_raises_an_alert_within_k_windows_and_rolls_back_consistently() {
    let (e, reg) = monitored();
    assert_eq!(reg.alias_version("m", "prod").unwrap(), 2);
    // Error 1.0 for 300 steps, then 2.0 (the limit is 1.0 · 1.5).
    let change = 300;
    let values = stream(1, 600, |i| if i < change { 1.0 } else { 2.0 });
    let mut mon = reg.monitor("m@prod", Some(1.0), &e.owner).unwrap();
    let mut alert_at = None;
    for (i, v) in values.iter().enumerate() {
        if mon.observe(*v).unwrap().is_some() && alert_at.is_none() {
            alert_at = Some(i);
        }
    }
    let at = alert_at.expect("an alert");
    // k = 3 windows of 10 after the change point (the first full window after it is 30–39).
    assert!(at >= change && at < change + 3 * 10, "alert at step {at}");
    let alerts = reg.alerts(Some("m@prod")).unwrap();
    assert!(!alerts.is_empty());
    assert_eq!(alerts[0].0.rolled_back, Some((2, 1)));
    assert_eq!(alerts[0].1, e.owner.key_id());
    // Rolled back once, through the signed history: the alias is at 1 and the history verifies.
    assert_eq!(reg.alias_version("m", "prod").unwrap(), 1);
    assert!(alerts.iter().skip(1).all(|a| a.0.rolled_back.is_none()), "a monitor rolls back once");
    assert!(reg.verify().unwrap().ok(), "{:?}", reg.verify().unwrap().problems);
    assert_eq!(reg.monitor_windows("m@prod").unwrap().len(), 60);
    // A further promotion (gated: v2 has no evaluation, so by override) stacks on the history.
    reg.promote_gated("m:2", "m@prod", &e.owner, Some("fixed upstream")).unwrap();
    assert_eq!(reg.rollback("m@prod", &e.owner).unwrap(), (2, 1));
}

#[test]
fn a_per_observation_reference_is_compared_window_by_window() {
    let (e, reg) = monitored();
    let policy = MonitorPolicy { window: 10, k: 2, bound: None, tolerance: 0.25, auto_rollback: false };
    let mut mon = Monitor::new(&reg, "m@prod", None, policy.clone(), &e.owner).unwrap();
    // The frozen model degrades with the online one: no alert.
    for (i, v) in stream(3, 400, |i| if i < 200 { 1.0 } else { 3.0 }).into_iter().enumerate() {
        let frozen = if i < 200 { 1.0 } else { 3.0 };
        assert!(mon.observe_against(v * 1.05, Some(frozen)).unwrap().is_none());
    }
    // Only the online model degrades: an alert within k windows of the change.
    let mut mon = Monitor::new(&reg, "m@prod", None, policy.clone(), &e.owner).unwrap();
    let at = (0..400)
        .position(|i| mon.observe_against(if i < 200 { 1.0 } else { 2.0 }, Some(1.0)).unwrap().is_some())
        .unwrap();
    assert_eq!(at, 219, "the second breaching window closes at step 219");
    // Neither a bound nor a reference: the window cannot be judged, which is an error.
    let mut mon = Monitor::new(&reg, "m@prod", None, policy, &e.owner).unwrap();
    let err = (0..10).map(|_| mon.observe(1.0)).find_map(|r| r.err()).unwrap();
    assert!(err.to_string().contains("neither a bound nor a reference"), "{err}");
}

#[test]
fn a_stationary_stream_raises_no_alert_over_10000_steps() {
    let (e, reg) = monitored();
    let policy = MonitorPolicy { window: 50, k: 3, bound: None, tolerance: 0.25, auto_rollback: true };
    let mut mon = Monitor::new(&reg, "m@prod", Some(1.0), policy, &e.owner).unwrap();
    for v in stream(7, 10_000, |_| 1.0) {
        assert!(mon.observe(v).unwrap().is_none());
    }
    assert_eq!(mon.windows(), 200);
    assert!(reg.alerts(None).unwrap().is_empty());
    assert_eq!(reg.alias_version("m", "prod").unwrap(), 2);
}

#[test]
fn restricted_data_is_recorded_only_by_allowed_keys_and_nothing_is_written_otherwise() {
    let e = env();
    let reg = e.reg();
    let data = e.data_file();
    let sha = reg
        .label_data(
            data.to_str().unwrap(),
            &DataLabel { owner: "risk team".into(), label: "restricted".into() },
            &e.owner,
        )
        .unwrap();
    let other = Signer::from_seed([5; 32]);
    reg.trust_key(&other.key_id(), "analyst", Role::Signer, &e.owner).unwrap();
    let mut run = reg.start_run(&other, "r", serde_json::json!({}), 1).unwrap();
    let err = run.record_data_file(&data).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::AccessDenied { .. }), "{msg}");
    assert!(msg.contains("restricted") && msg.contains("risk team") && msg.contains(&sha), "{msg}");
    assert!(run.manifest().data.is_empty());
    let db = Connection::open(e.dir.join("registry.db")).unwrap();
    let n: i64 = db.query_row("SELECT COUNT(*) FROM run_data", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0, "nothing was written");
    // The policy opens the label to the analyst's key: recording and exporting now work.
    let p = Policy::parse(&format!(r#"{{"data_access": {{"restricted": ["{}"]}}}}"#, other.key_id()), "p")
        .unwrap();
    reg.set_policy(&p, &e.owner).unwrap();
    run.record_data_file(&data).unwrap();
    let ck = e.path("w.bin");
    std::fs::write(&ck, b"restricted weights").unwrap();
    let h = run.add_checkpoint(&ck, "final").unwrap();
    let m = run.finish(metrics(&[])).unwrap();
    assert!(matches!(reg.export(&m.run_id, &e.path("ex1")).unwrap_err(), StoreError::NoKey { .. }));
    let err = reg.export_as(&m.run_id, &e.path("ex2"), Some(&e.owner)).unwrap_err();
    assert!(matches!(err, StoreError::AccessDenied { .. }), "{err}");
    assert!(!e.path("ex2").exists(), "nothing exported");
    reg.export_as(&m.run_id, &e.path("ex3"), Some(&other)).unwrap();
    // Lineage by data: the run, its checkpoint and the model version.
    reg.promote(&h, "r@prod", &e.owner).unwrap();
    let u = reg.data_usage(&sha[..10]).unwrap();
    assert_eq!(u.runs.len(), 1);
    assert_eq!(u.model_versions, vec![("r".to_string(), 1)]);
    assert!(u.render().contains("model r:1"), "{}", u.render());
}

#[test]
fn an_audit_folder_is_signed_stored_and_checked() {
    let (e, good, bad) = gated();
    let reg = e.reg();
    reg.promote_gated(&bad, "m@prod", &e.owner, Some("audit test")).unwrap();
    let mut ev = evaluation(&bad, 1.2, &[("stock=A", 0.41), ("stock=B", 0.9)]);
    let train: Vec<f64> = (0..500).map(|i| i as f64).collect();
    let eval: Vec<f64> = train.iter().map(|x| x + 250.0).collect();
    ev.features = vec![
        FeatureDistribution::from_samples("shifted", &train, &eval, 10),
        FeatureDistribution::from_samples("same", &train, &train, 10),
    ];
    let bin = |p, o, n| CalibrationBin { label: String::new(), predicted: p, observed: o, count: n };
    ev.calibration = vec![Calibration::new("confidence", "reliability", vec![bin(0.9, 0.7, 5)])];
    reg.record_evaluation(&ev, &e.owner).unwrap();
    // Audit version 1 against the promoted version 2.
    let rep = reg.audit_report("m:1").unwrap();
    assert_eq!(rep.checkpoint, good);
    assert_eq!(rep.slices_worst_first, ["stock=B", "stock=A"]);
    let rep2 = reg.audit_report("m@prod").unwrap();
    assert_eq!(rep2.slices_worst_first, ["stock=B", "stock=A"]);
    assert_eq!((rep2.slice_gaps[0].worst.as_str(), rep2.slice_gaps[0].best.as_str()), ("stock=B", "stock=A"));
    assert!((rep2.slice_gaps[0].gap - 0.49).abs() < 1e-12, "{:?}", rep2.slice_gaps);
    assert_eq!(rep2.drift[0].feature, "shifted");
    assert_eq!(rep2.drift[0].level, "major");
    assert!(rep2.drift[1].psi < 1e-12);
    let diff = rep.promoted.as_ref().expect("a diff against m@prod");
    assert_eq!(diff.version, 2);
    let dir = e.path("audit");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("report.md"), rep.markdown(&[])).unwrap();
    std::fs::write(dir.join("audit.json"), serde_json::to_string(&rep).unwrap()).unwrap();
    let sig = reg.record_audit(&dir, &rep, &e.owner).unwrap();
    assert_eq!(sig.body.files.len(), 2);
    verify_audit_dir(&dir, Some(&e.owner.key_id())).unwrap();
    assert!(reg.verify().unwrap().ok());
    assert!(reg.gc(std::time::Duration::ZERO).unwrap().removed_blobs.is_empty(), "gc keeps audit files");
    std::fs::write(dir.join("report.md"), "edited").unwrap();
    assert!(matches!(verify_audit_dir(&dir, None).unwrap_err(), StoreError::BlobMismatch { .. }));
    assert!(verify_audit_dir(&dir, Some(&Signer::from_seed([3; 32]).key_id())).is_err());
}

#[test]
fn a_version_1_registry_is_migrated_on_open() {
    let e = env();
    simple_run(&e, "old", 0.1, b"w", 0.5);
    {
        let db = Connection::open(e.dir.join("registry.db")).unwrap();
        db.execute_batch("DROP TABLE records; DROP TABLE record_blobs; UPDATE meta SET value='1' WHERE key='schema_version';")
            .unwrap();
    }
    let reg = Registry::open(&e.dir).unwrap();
    assert!(reg.verify().unwrap().ok());
    assert!(reg.alerts(None).unwrap().is_empty());
    let db = Connection::open(e.dir.join("registry.db")).unwrap();
    let v: String =
        db.query_row("SELECT value FROM meta WHERE key='schema_version'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, "2");
}
