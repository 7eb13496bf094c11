//! # adjoint-bench
//!
//! adjoint's half of the side-by-side workload suite W1–W9 defined in `benches/WORKLOADS.md`;
//! `benches/python/workloads.py` is the PyTorch and JAX half, and `benches/run` runs all three
//! in one go and writes the ratio table into `BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release -p adjoint-bench -- [--quick] [WORKLOAD…]
//! ```
//!
//! A `WORKLOAD` argument selects every workload whose name equals it or starts with it followed
//! by `_` (`W7` selects both GMM workloads). Output: one JSON line per (workload, variant) on
//! stdout — `{"workload", "framework": "adjoint", "variant", "median_s", "p10_s", "p90_s",
//! "notes", …}` — and progress on stderr.
//!
//! Design choices:
//! - The definitions live in one table (`WORKLOADS.md`) that all three implementations follow;
//!   only W5's `check` values are deterministic and compared across frameworks.
//! - Timing is identical on both sides (see [`measure`]): 5 warm-ups, 20 samples of batches
//!   lasting ≥ 10 ms, median and 10th/90th percentiles. Nothing here asserts a duration.
//! - Two threads: the rayon pool is sized from `RAYON_NUM_THREADS`, 2 when unset.
//! - `ADJOINT_PROFILE=trace.json` profiles the run (`adjoint_core::profile::from_env`): the
//!   table per op and call site on stderr, a Chrome trace for Perfetto in the file. The timings
//!   printed then include the profiler's cost per op; use it to see where time goes, not for
//!   the ratios.

mod arm;
mod gmm_problem;
mod measure;
mod steps;
mod timing;
mod workloads;

use measure::Plan;

/// Every workload name, in output order.
const WORKLOADS: &[&str] = &[
    "W1_add",
    "W1_chain_fwd_bwd",
    "W2_mlp_step",
    "W3_cnn_step",
    "W4_lstm_step",
    "W5_arm_bptt",
    "W6_grad",
    "W6_hvp",
    "W7_gmm_obj",
    "W7_gmm_obj_grad",
    "W8_matmul_grad",
    "W9_ode_lv_grad",
];

/// Whether `name` is selected by the arguments (all when none). An argument that is a workload's
/// full name selects only that workload; any other selects the workloads it prefixes up to a `_`.
fn selected(name: &str, args: &[String]) -> bool {
    args.is_empty()
        || args.iter().any(|a| {
            name == a
                || (!WORKLOADS.contains(&a.as_str())
                    && name.starts_with(a.as_str())
                    && name[a.len()..].starts_with('_'))
        })
}

fn main() {
    let mut quick = false;
    let mut names = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--quick" => quick = true,
            "-h" | "--help" => {
                println!("usage: adjoint-bench [--quick] [WORKLOAD…]\nworkloads: {}", WORKLOADS.join(" "));
                return;
            }
            _ if a.starts_with('-') => {
                eprintln!("adjoint-bench: unknown option {a:?} (usage: adjoint-bench [--quick] [WORKLOAD…])");
                std::process::exit(2);
            }
            _ => {
                if !WORKLOADS.iter().any(|w| selected(w, std::slice::from_ref(&a))) {
                    eprintln!("adjoint-bench: no workload matches {a:?}; known: {}", WORKLOADS.join(" "));
                    std::process::exit(2);
                }
                names.push(a);
            }
        }
    }
    let threads = std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    if let Err(e) = adjoint_core::threads::init(threads) {
        eprintln!("adjoint-bench: {e}");
    }
    rayon::broadcast(|_| ());
    let plan = Plan::new(quick);
    let which = |w: &str| {
        let on = selected(w, &names);
        if on {
            eprintln!("== {w}");
        }
        on
    };
    // With ADJOINT_PROFILE=path, the whole run is profiled (table on stderr, trace at path).
    adjoint_core::profile::from_env(|| {
        workloads::w1(plan, &which);
        workloads::w2_w4(plan, &which);
        if which("W5_arm_bptt") {
            workloads::w5(plan);
        }
        workloads::w6(plan, &which);
        workloads::w7(plan, &which);
        if which("W8_matmul_grad") {
            workloads::w8(plan);
        }
        if which("W9_ode_lv_grad") {
            workloads::w9(plan);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::selected;

    #[test]
    fn selection_by_name_and_prefix() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(selected("W7_gmm_obj", &args(&[])));
        assert!(selected("W7_gmm_obj", &args(&["W7"])));
        assert!(selected("W7_gmm_obj_grad", &args(&["W7_gmm_obj_grad"])));
        assert!(!selected("W7_gmm_obj_grad", &args(&["W7_gmm_obj"])));
        assert!(selected("W1_chain_fwd_bwd", &args(&["W1"])));
        assert!(!selected("W1_chain_fwd_bwd", &args(&["W1_add"])));
        assert!(!selected("W10_x", &args(&["W1"])));
    }
}
