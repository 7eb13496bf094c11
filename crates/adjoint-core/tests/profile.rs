//! The profiler: counts, bytes, call sites, levels, the backward label, the trace file, and that
//! nothing is recorded outside `profile`. No timing assertions.

use adjoint_core::profile::{Level, Profile};
use adjoint_core::{grad, jvp, profile, Tensor};

fn ones(n: usize) -> Tensor {
    Tensor::from_vec(vec![1.0f64; n], &[n])
}

fn rows_of<'a>(p: &'a Profile, op: &str) -> Vec<&'a adjoint_core::profile::Row> {
    p.rows().iter().filter(|r| r.op == op).collect()
}

#[test]
fn three_exps_are_three_calls_of_24_kb_at_this_line() {
    let x = ones(1000);
    let line = line!() + 1;
    let ((a, b, c), prof) = profile(|| (x.exp(), x.exp(), x.exp()));
    assert_eq!(prof.rows().len(), 1, "{prof}");
    let r = &prof.rows()[0];
    assert_eq!((r.op, r.calls, r.bytes, r.level, r.backward_of), ("exp", 3, 24_000, Level::Eager, None));
    assert_eq!((r.site.file(), r.site.line()), (file!(), line));
    assert_eq!(prof.events().len(), 3);
    assert!(prof
        .events()
        .iter()
        .all(|e| e.inputs == "f64[1000]" && e.outputs == "f64[1000]" && e.bytes == 8000));
    // The input and the three outputs are alive when the third exp returns (other tests' arrays
    // only add to the process-wide count).
    assert!(r.peak_live >= 4 * 8000, "{}", r.peak_live);
    assert!(prof.peak_live_bytes() >= 4 * 8000);
    assert!(prof.total_calls() == 3 && prof.bytes() == 24_000);
    drop((a, b, c));
}

#[test]
fn views_allocate_nothing() {
    let x = ones(1000);
    let (y, prof) = profile(|| x.reshape(&[10, 100]).transpose(0, 1));
    assert_eq!(y.shape(), &[100, 10]);
    assert!(prof.rows().len() >= 2, "{prof}");
    assert!(prof.rows().iter().all(|r| r.bytes == 0), "{prof}");
}

#[test]
fn nothing_is_recorded_outside_profile() {
    let x = ones(100);
    let _before = x.sin();
    let (_, empty) = profile(|| 1 + 1);
    assert!(empty.rows().is_empty() && empty.events().is_empty());
    let (_, one) = profile(|| x.cos());
    let _after = x.tanh();
    assert_eq!(one.events().len(), 1);
    assert_eq!(one.rows()[0].op, "cos");
}

#[test]
fn grad_records_vjp_levels_and_labels_the_backward_pass_with_the_forward_site() {
    let x = ones(1000);
    let line = line!() + 1;
    let (g, prof) = profile(|| grad(|x: &Tensor| x.exp().sum())(&x));
    assert!((g.to_vec::<f64>()[0] - std::f64::consts::E).abs() < 1e-12);
    // Forward: `exp` handled by the vjp level, holding the kernel's eager bind; both at this line.
    let exp = rows_of(&prof, "exp");
    let levels: Vec<Level> = exp.iter().filter(|r| r.backward_of.is_none()).map(|r| r.level).collect();
    assert!(levels.contains(&Level::Vjp) && levels.contains(&Level::Eager), "{prof}");
    assert!(exp.iter().all(|r| r.site.line() == line && r.site.file() == file!()), "{prof}");
    // The eager exp allocated the output; the vjp-level bind returns a tracer around it.
    let eager_exp = exp.iter().find(|r| r.level == Level::Eager).unwrap();
    assert_eq!(eager_exp.bytes, 8000);
    // Backward: the pullback of exp multiplies by its output; that `mul` is labelled and sited.
    let bwd: Vec<_> = prof.rows().iter().filter(|r| r.backward_of == Some("exp")).collect();
    assert!(!bwd.is_empty(), "{prof}");
    assert!(bwd.iter().all(|r| r.site.line() == line && r.site.file() == file!()), "{prof}");
    assert!(bwd.iter().any(|r| r.op == "mul"), "{prof}");
    // Self times add up: nested binds are not counted twice.
    let self_sum: std::time::Duration = prof.rows().iter().map(|r| r.self_time).sum();
    assert!(self_sum <= prof.wall());
}

#[test]
fn jvp_binds_are_jvp_level() {
    let x = ones(10);
    let (_, prof) = profile(|| jvp(|x: &Tensor| x.sin(), &x, &ones(10)));
    assert!(rows_of(&prof, "sin").iter().any(|r| r.level == Level::Jvp), "{prof}");
    // The tangent rule's ops (cos, mul) nest in the jvp bind: depth 1.
    assert!(prof.events().iter().any(|e| e.op == "cos" && e.depth >= 1), "{prof}");
}

#[test]
fn chrome_trace_parses_and_has_one_complete_event_per_bind() {
    let x = ones(1000);
    let (_, prof) = profile(|| grad(|x: &Tensor| (x.exp() * x).sum())(&x));
    let dir = std::env::temp_dir().join(format!("adjoint-profile-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.json");
    prof.write_chrome_trace(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let evs = v["traceEvents"].as_array().unwrap();
    let complete: Vec<_> = evs.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), prof.events().len());
    for (e, ours) in complete.iter().zip(prof.events()) {
        assert_eq!(e["name"], ours.op);
        assert!(e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0);
        assert!(e["pid"].is_u64() && e["tid"].is_u64());
        assert_eq!(e["args"]["bytes"].as_u64().unwrap() as usize, ours.bytes);
        if ours.op == "exp" {
            assert_eq!(e["args"]["site"].as_str().unwrap(), ours.site.to_string());
            assert!(ours.site.file().ends_with("profile.rs"));
        }
    }
    assert!(complete.iter().any(|e| e["args"]["backward_of"] == "exp" && e["cat"] == "eager,backward"));
    // Only the file is left: the temporary was renamed over it.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("trace.json")]);
    std::fs::remove_dir_all(&dir).ok();
    // The table names the columns and the op.
    let table = prof.to_string();
    assert!(table.contains("call site") && table.contains("exp") && table.contains("bwd(exp)"), "{table}");
}

#[test]
fn a_trace_to_a_missing_directory_is_an_error() {
    let (_, prof) = profile(|| ones(3).exp());
    assert!(prof.write_chrome_trace("/nonexistent-dir-adjoint/trace.json").is_err());
}

#[test]
#[should_panic(expected = "profiles do not nest")]
fn nested_profiles_panic() {
    let _ = profile(|| profile(|| ones(3).exp()));
}

#[test]
fn a_profile_ended_by_a_panic_leaves_no_state_behind() {
    let r = std::panic::catch_unwind(|| profile(|| -> Tensor { panic!("inside") }));
    assert!(r.is_err());
    // A new profile starts cleanly on this thread.
    let (_, prof) = profile(|| ones(3).exp());
    assert_eq!(prof.events().len(), 1);
}
