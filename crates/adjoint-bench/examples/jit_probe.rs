//! A quick A/B probe for the jitted workload variants and their eager counterparts: runs one
//! variant of W2, W4, W5 or W7 (as `adjoint-bench` defines them) for a number of steps and
//! prints the median and quartiles of the step time, and the buffer cache's hits and misses
//! over the timed steps.
//!
//! ```text
//! cargo run --release -p adjoint-bench --example jit_probe -- VARIANT [STEPS]
//! ```
//!
//! `VARIANT`: `w2_nn`, `w2_jit`, `w4_nn`, `w4_jit`, `w5_jit`, `w7_tensor`, `w7_jit`, `adam_nn`,
//! `adam_jit` (W2's Adam update alone), `adam_nn_small`, `adam_jit_small` (the same on 89 k
//! parameters, which stay in L2: the update's compute cost without its memory traffic). Nothing is
//! asserted about durations; use it to compare two builds interleaved on one machine.

#![allow(dead_code)]

#[path = "../src/arm.rs"]
mod arm;
#[path = "../src/gmm_problem.rs"]
mod gmm_problem;
#[path = "../src/steps.rs"]
mod steps;

use std::time::Instant;

use adjoint_core::{jit, value_and_grad, DType, Tensor};
use adjoint_gradbench::evals::gmm;
use adjoint_tensor::random::Key;
use steps::randn;

fn w7(jitted: bool) -> Box<dyn FnMut() -> f64> {
    let (consts, params) = gmm_problem::w7_problem();
    let vg = value_and_grad(move |p: &gmm_problem::GmmParams| gmm::objective_gemm(&consts, p));
    if jitted {
        let j = jit(vg);
        Box::new(move || j(&params).0.item())
    } else {
        Box::new(move || vg(&params).0.item())
    }
}

fn w5() -> Box<dyn FnMut() -> f64> {
    let tau32 = Tensor::from_slice(&arm::torques(), &[arm::STEPS, 2]).cast(DType::F32);
    let vg = jit(value_and_grad(arm::loss_scan));
    Box::new(move || vg(&tau32).0.item())
}

/// Only the Adam update of W2's parameters: `nn` (the optimizer's one-pass kernel) or `jit`
/// (the functional update the jitted step stages, jitted alone).
fn adam(jitted: bool, small: bool) -> Box<dyn FnMut() -> f64> {
    use adjoint_nn::optim::{Adam, AdamConfig, Optimizer};
    let k = Key::new(0).split(2);
    let shapes: [&[usize]; 6] = if small {
        [&[64, 784], &[512], &[64, 512], &[512], &[10, 512], &[10]]
    } else {
        [&[512, 784], &[512], &[512, 512], &[512], &[10, 512], &[10]]
    };
    let ps: Vec<Tensor> = shapes.iter().map(|s| randn(&k[0], s, DType::F32)).collect();
    let gs: Vec<Tensor> = shapes.iter().map(|s| randn(&k[1], s, DType::F32) * 0.01).collect();
    let cfg = AdamConfig { lr: 1e-3, ..Default::default() };
    if jitted {
        let step = jit(move |s: &(Vec<Tensor>, Vec<Tensor>, Vec<Tensor>, Vec<Tensor>, Tensor)| {
            let [out, m1, m2] = steps::adam_update(&s.0, &s.1, &s.2, &s.3, &s.4, &cfg);
            (out, m1, m2)
        });
        let zeros: Vec<Tensor> = ps.iter().map(|p| p.zeros_like()).collect();
        let mut st = (ps, gs, zeros.clone(), zeros, Tensor::from_vec(vec![10.0f32, 1.5], &[2]));
        Box::new(move || {
            let (p, m, v) = step(&st);
            st.0 = p;
            st.2 = m;
            st.3 = v;
            0.0
        })
    } else {
        let mut opt = Adam::new(&ps, cfg);
        let mut ps = ps;
        Box::new(move || {
            ps = opt.step(&ps, &gs);
            0.0
        })
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let variant = args.first().map(String::as_str).unwrap_or("w2_jit");
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let threads = std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    if let Err(e) = adjoint_tensor::threads::init(threads) {
        eprintln!("jit_probe: {e}");
        std::process::exit(2);
    }
    let mut step: Box<dyn FnMut() -> f64> = match variant {
        "w2_nn" => Box::new(steps::mlp()),
        "w2_jit" => Box::new(steps::mlp_jit()),
        "w4_nn" => Box::new(steps::lstm()),
        "w4_jit" => Box::new(steps::lstm_jit()),
        "w5_jit" => w5(),
        "adam_nn" => adam(false, false),
        "adam_jit" => adam(true, false),
        "adam_nn_small" => adam(false, true),
        "adam_jit_small" => adam(true, true),
        "w7_tensor" => w7(false),
        "w7_jit" => w7(true),
        v => {
            eprintln!("jit_probe: unknown variant {v:?}");
            std::process::exit(2);
        }
    };
    for _ in 0..5 {
        std::hint::black_box(step());
    }
    let c0 = adjoint_tensor::cache::stats();
    let mut t: Vec<f64> = (0..steps)
        .map(|_| {
            let s = Instant::now();
            std::hint::black_box(step());
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let c1 = adjoint_tensor::cache::stats();
    t.sort_by(f64::total_cmp);
    let q = |f: f64| t[((t.len() - 1) as f64 * f) as usize];
    println!(
        "{variant} median {:.3} ms  p25 {:.3}  p75 {:.3}  cache hits {} misses {}",
        q(0.5),
        q(0.25),
        q(0.75),
        c1.hits - c0.hits,
        c1.misses - c0.misses
    );
}
