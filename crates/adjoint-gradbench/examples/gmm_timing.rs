//! Times the `gmm` eval's objective and jacobian on inputs written by GradBench's generator
//! (`evals/gmm/run.py`'s `generate`, saved as JSON files named `D_K_N.json`), through the same
//! `evaluate` entry point the binary uses, 0.5 s per function (`GMM_SECONDS`): the median of the
//! per-run timings (robust to other processes on a shared machine) and, in brackets, their mean
//! (what GradBench scores), and the mean thread CPU time per run (`cpu`, `getrusage`: what the
//! process itself spent, which waiting for a busy core does not inflate).
//!
//! ```sh
//! # inputs, with GradBench's Python package installed (a venv as in benches/GRADBENCH.md):
//! mkdir -p /tmp/gmmin && python -c 'import json; from gradbench.evals.gmm.run import generate
//! for d in [2, 10]:
//!     for k in [5, 10, 25, 50, 100]:
//!         json.dump(generate(seed=31337, d=d, k=k, n=1000, m=0, gamma=1.0), open(f"/tmp/gmmin/{d}_{k}_1000.json", "w"))'
//! # the tool's allocator settings (main.rs calls mallopt; glibc reads the same from the environment):
//! export MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864
//! RAYON_NUM_THREADS=1 taskset -c 1 cargo run --release -p adjoint-gradbench --example gmm_timing -- /tmp/gmmin/2_5_1000.json …
//! ```
use adjoint_gradbench::{evals::gmm, Limits};
use serde_json::Value;

fn main() {
    let limits = Limits::from_env().expect("limits");
    let secs: f64 = std::env::var("GMM_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(0.5);
    for path in std::env::args().skip(1) {
        let mut input: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        input["min_runs"] = 3.into();
        input["min_seconds"] = secs.into();
        let (mut med, mut mean, mut cpu) = ([0.0; 2], [0.0; 2], [0.0; 2]);
        for (i, f) in ["objective", "jacobian"].iter().enumerate() {
            let c0 = thread_cpu_ms();
            let mut t = gmm::evaluate(f, &input, &limits).expect("function").expect("evaluate").timings;
            cpu[i] = (thread_cpu_ms() - c0) / t.len() as f64;
            t.sort_unstable();
            med[i] = t[t.len() / 2] as f64 / 1e6;
            mean[i] = t.iter().sum::<u64>() as f64 / t.len() as f64 / 1e6;
        }
        let name = std::path::Path::new(&path).file_stem().unwrap().to_string_lossy().into_owned();
        println!(
            "{name:>12}  objective {:7.4} ({:7.4})  jacobian {:7.4} ({:7.4})  sum {:7.4} ({:7.4}) ms   cpu {:7.4} + {:7.4} = {:7.4} ms",
            med[0],
            mean[0],
            med[1],
            mean[1],
            med[0] + med[1],
            mean[0] + mean[1],
            cpu[0],
            cpu[1],
            cpu[0] + cpu[1]
        );
    }
}

/// User + system CPU time of the calling thread, in ms.
fn thread_cpu_ms() -> f64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: getrusage writes one plain struct.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
        let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
        ms(u.ru_utime) + ms(u.ru_stime)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    f64::NAN
}
