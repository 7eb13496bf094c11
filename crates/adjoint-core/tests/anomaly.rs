//! Anomaly mode: each kind of report (forward, backward rule, JVP rule, vmap), its source line,
//! its statistics, what is *not* reported, clean unwinding, and the environment variable.

#![allow(clippy::result_large_err)] // `Anomaly` reports are returned by value on purpose

use adjoint_core::debug::{self, Phase};
use adjoint_core::{grad, jvp, vmap, Tensor};

fn env_forces_anomaly() -> bool {
    std::env::var(debug::ENV_VAR).is_ok_and(|v| v == "1")
}

#[test]
fn forward_nan_names_primitive_shapes_stats_and_line() {
    let x = Tensor::from_vec(vec![-1.0f32, 4.0, 0.5], &[3]);
    let (r, line) = (debug::detect_anomaly(|| (&x * 2.0).sqrt().sum()), line!());
    let a = r.unwrap_err();
    assert_eq!(a.primitive, "sqrt");
    assert_eq!(a.phase, Phase::Forward);
    assert_eq!((a.at.file(), a.at.line()), (file!(), line));
    assert_eq!(a.inputs.len(), 1);
    assert_eq!(a.inputs[0].shape, vec![3]);
    assert_eq!((a.inputs[0].min, a.inputs[0].max, a.inputs[0].nan), (Some(-2.0), Some(8.0), 0));
    assert_eq!(a.output.nan, 1);
    let msg = a.to_string();
    assert!(msg.starts_with("adjoint anomaly: `sqrt` produced NaN in the forward pass"), "{msg}");
    assert!(msg.contains(&format!("{}:{line}:", file!())), "{msg}");
    assert!(
        msg.contains("input 0: shape [3], float32, finite min -2e0, max 8e0, 0 NaN, 0 +inf, 0 -inf"),
        "{msg}"
    );
    assert!(msg.contains("output: shape [3], float32, finite min"), "{msg}");
}

#[test]
fn forward_infinity_from_finite_inputs_is_reported() {
    let x = Tensor::from_vec(vec![1.0f32, 0.0, 2.0], &[3]);
    let y = Tensor::from_vec(vec![3e38f32, 1.0, 1.0], &[3]);
    let (r, line) = (debug::detect_anomaly(|| (&x / &x.abs().log().exp()) * &y), line!());
    // log(0) = -inf is the first new non-finite value (exp and div only propagate it).
    let a = r.unwrap_err();
    assert_eq!(a.primitive, "log");
    assert_eq!(a.at.line(), line);
    assert_eq!(a.output.neg_inf, 1);
    // Overflow of a product of finite numbers: mul.
    let a = debug::detect_anomaly(|| &y * &y).unwrap_err();
    assert_eq!(a.primitive, "mul");
    assert_eq!(a.output.pos_inf, 1);
    assert_eq!(a.inputs.len(), 2);
}

#[test]
fn propagated_values_are_not_reported_but_inf_minus_inf_is() {
    // -inf in the data (e.g. an attention mask) flowing through exp gives 0: no anomaly.
    let masked = Tensor::from_vec(vec![f32::NEG_INFINITY, 0.0, 1.0], &[3]);
    let s = debug::detect_anomaly(|| masked.exp().sum()).unwrap();
    assert!((s.item() - (1.0 + 1f64.exp())).abs() < 1e-5);
    // A NaN already in the input propagates silently…
    let nan_in = Tensor::from_vec(vec![f32::NAN, 1.0], &[2]);
    assert!(debug::detect_anomaly(|| nan_in.exp()).is_ok());
    // …but inf - inf creates a NaN from NaN-free inputs.
    let inf = Tensor::from_vec(vec![f32::INFINITY], &[1]);
    let a = debug::detect_anomaly(|| &inf - &inf).unwrap_err();
    assert_eq!(a.primitive, "sub");
    assert_eq!(a.inputs[0].pos_inf, 1);
    assert!(a.to_string().contains("produced NaN"), "{a}");
}

#[test]
fn backward_rule_reports_the_forward_op_and_its_line() {
    let x = Tensor::from_vec(vec![0.0f64, 1.0], &[2]);
    let loss = |x: &Tensor| {
        let y = x * 3.0;
        y.sqrt().sum() // the forward op whose rule will fail
    };
    let sqrt_line = line!() - 2;
    let a = debug::detect_anomaly(|| grad(loss)(&x)).unwrap_err();
    match a.phase {
        Phase::VjpRule { of, called_at } => {
            assert_eq!(of, "sqrt");
            let at = called_at.expect("the tape records the forward call site");
            assert_eq!((at.file(), at.line()), (file!(), sqrt_line));
        }
        other => panic!("expected a VJP-rule anomaly, got {other:?}: {a}"),
    }
    // The failing primitive inside the rule is the division c / (2·sqrt(x)), inside adjoint.
    assert_eq!(a.primitive, "div");
    assert!(a.at.file().contains("sqrt.rs"), "{}", a.at);
    let msg = a.to_string();
    assert!(msg.contains("in the backward (VJP) rule of `sqrt`"), "{msg}");
    assert!(msg.contains(&format!("forward op `sqrt` called at {}:{sqrt_line}:", file!())), "{msg}");
    // The forward pass itself was healthy: sqrt(0) = 0.
    assert!(debug::detect_anomaly(|| loss(&x)).is_ok());
}

#[test]
fn second_order_backward_anomaly_is_found() {
    // d/dx x^1.5 = 1.5 x^0.5 is finite at 0; d²/dx² = 0.75 x^-0.5 is not.
    let x = Tensor::from_vec(vec![0.0f64], &[1]);
    let d1 = |x: &Tensor| grad(|x: &Tensor| x.powf(1.5).sum())(x).sum();
    assert!(debug::detect_anomaly(|| grad(|x: &Tensor| x.powf(1.5).sum())(&x)).is_ok());
    let a = debug::detect_anomaly(|| grad(d1)(&x)).unwrap_err();
    assert!(a.phase.rule_of().is_some(), "{a}");
    assert!(a.output.pos_inf + a.output.neg_inf + a.output.nan > 0);
}

#[test]
fn jvp_rule_anomaly() {
    let x = Tensor::from_vec(vec![0.0f64, 4.0], &[2]);
    let t = Tensor::ones_like(&x);
    let (r, line) = (debug::detect_anomaly(|| jvp(|x: &Tensor| x.sqrt(), &x, &t)), line!());
    let a = r.unwrap_err();
    assert_eq!(a.phase.rule_of(), Some("sqrt"));
    assert!(matches!(a.phase, Phase::JvpRule { .. }));
    assert_eq!(a.phase.rule_called_at().map(|l| l.line()), Some(line));
}

#[test]
fn vmap_anomaly_reports_the_user_line() {
    let xs = Tensor::from_vec(vec![1.0f32, 2.0, 0.0, 3.0], &[2, 2]);
    let (r, line) = (debug::detect_anomaly(|| vmap(|x: &Tensor| x.log().sum())(&xs)), line!());
    let a = r.unwrap_err();
    assert_eq!(a.primitive, "log");
    assert_eq!(a.at.line(), line);
    assert_eq!(a.inputs[0].shape, vec![2, 2], "the whole batch, one level down");
}

#[test]
fn transforms_unwind_cleanly_and_other_panics_pass_through() {
    let x = Tensor::from_vec(vec![0.0f64, 1.0], &[2]);
    for _ in 0..3 {
        assert!(debug::detect_anomaly(|| grad(|x: &Tensor| x.sqrt().sum())(&x)).is_err());
    }
    // The transform stack is empty again: a fresh gradient works and is right.
    let y = Tensor::from_vec(vec![2.0f64, 3.0], &[2]);
    let g = grad(|x: &Tensor| (x * x).sum())(&y).to_vec::<f64>();
    assert_eq!(g, vec![4.0, 6.0]);
    let caught = std::panic::catch_unwind(|| debug::detect_anomaly(|| panic!("not an anomaly")));
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"not an anomaly"));
}

#[test]
fn off_outside_the_scope_and_nesting() {
    if env_forces_anomaly() {
        return;
    }
    assert!(!debug::anomaly_enabled());
    let x = Tensor::from_vec(vec![0.0f32], &[1]);
    assert_eq!(x.log().to_vec::<f32>(), vec![f32::NEG_INFINITY]);
    let inner = debug::detect_anomaly(|| debug::detect_anomaly(|| x.log()).is_err()).unwrap();
    assert!(inner);
    assert!(!debug::anomaly_enabled());
}

/// Run by `environment_variable_switches_it_on` in a child process.
#[test]
#[ignore = "run as a child process by environment_variable_switches_it_on"]
fn child_program_making_a_nan() {
    let x = Tensor::from_vec(vec![0.0f32, 1.0], &[2]);
    let y = (&x / &x).sum(); // 0/0 in an ordinary program
    println!("CHILD FINISHED {}", y.item());
}

#[test]
fn environment_variable_switches_it_on() {
    let run = |value: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_program_making_a_nan", "--ignored", "--nocapture", "--test-threads=1"])
            .env(debug::ENV_VAR, value)
            .output()
            .unwrap()
    };
    let on = run("1");
    let stderr = String::from_utf8_lossy(&on.stderr);
    let stdout = String::from_utf8_lossy(&on.stdout);
    assert!(!on.status.success(), "the child should fail: {stdout}\n{stderr}");
    assert!(!stdout.contains("CHILD FINISHED"), "{stdout}");
    assert!(stderr.contains("adjoint anomaly: `div` produced NaN in the forward pass"), "{stderr}");
    assert!(stderr.contains(&format!("called at {}:", file!())), "{stderr}");
    let off = run("0");
    assert!(off.status.success(), "{}", String::from_utf8_lossy(&off.stderr));
    assert!(String::from_utf8_lossy(&off.stdout).contains("CHILD FINISHED NaN"));
}
