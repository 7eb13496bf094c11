//! A jitted scan whose bodies get hot is compiled to native code (counted by `native_stats`,
//! which is why this test is alone in its process: nothing else compiles meanwhile), and every
//! call gives the bits of the first, interpreted one.

#![cfg(feature = "native")]

#[path = "common/pendulum.rs"]
mod pendulum;

use adjoint_core::jit::native_stats;
use adjoint_core::{jit, value_and_grad, DType, Tensor};
use adjoint_tensor::random::{uniform, Key};
use pendulum::rollout;

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec::<f64>().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn a_hot_jitted_scan_runs_natively_with_the_bits_of_the_interpreter() {
    let policy = std::env::var("ADJOINT_JIT_NATIVE").unwrap_or_default();
    let us = Tensor::from_array(uniform(&Key::new(5), &[2000, 2], -1.0, 1.0, DType::F64));
    let f = jit(value_and_grad(rollout));
    let before = native_stats().compiles;
    let (l0, g0) = f(&us);
    if policy.is_empty() {
        assert_eq!(native_stats().compiles, before, "one call is far below the threshold");
    }
    let mut calls = 0;
    while calls < 400 {
        let (l, g) = f(&us);
        assert_eq!(l.item().to_bits(), l0.item().to_bits(), "call {calls}");
        assert_eq!(bits(&g), bits(&g0), "call {calls}");
        calls += 1;
        if policy != "0" && native_stats().compiles >= before + 2 {
            break;
        }
    }
    let compiled = native_stats().compiles - before;
    match policy.as_str() {
        "0" => assert_eq!(compiled, 0),
        // The forward and the backward scan bodies.
        _ => assert!(compiled >= 2 && calls < 400, "{compiled} compilations after {calls} calls"),
    }
    // A few more calls on the native code.
    for _ in 0..5 {
        let (l, g) = f(&us);
        assert_eq!(l.item().to_bits(), l0.item().to_bits());
        assert_eq!(bits(&g), bits(&g0));
    }
}
