//! Training-step benchmarks, adjoint's half (issue 5, "Performance"). Prints one JSON object per
//! line on stdout; `benches/python/peers.py --suite train` prints the same lines for PyTorch
//! eager and `benches/report.py` puts both side by side in `BENCHMARKS.md`. Run everything with
//! `benches/run.sh` (or `benches/run.sh --train-only`).
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p adjoint-nn --example train_bench -- [--quick] [--only mlp|cnn|lstm] [--jit]
//! ```
//!
//! `--jit` measures the jitted steps of the workload suite instead (`adjoint-bench`'s
//! `steps::*_jit`: the whole step, `value_and_grad` and the update, as one `jit`), with the same
//! timing and memory fields and names ending in `_jit`; `benches/run.sh` does not pass it. Run
//! one workload per process (`--only`) to compare the eager and jitted peaks: `peak_mb` is the
//! process's high-water mark.
//!
//! Workloads (f32), each a full step — forward, loss, gradient, optimizer update:
//! - `mlp`: 784-512-512-10, ReLU, batch 128, cross-entropy, Adam (lr 1e-3).
//! - `cnn`: `[64, 1, 28, 28]` → conv3x3 1→32 (padding 1), ReLU, maxpool 2 → conv3x3 32→64
//!   (padding 1), ReLU, maxpool 2 → flatten 3136 → linear 128, ReLU → linear 10;
//!   cross-entropy, SGD momentum 0.9 (lr 0.01).
//! - `lstm`: LSTM input 8, hidden 128, sequence 64, batch 32, linear head on the last hidden
//!   state, MSE, Adam (lr 1e-3).
//!
//! Timing: three warm-up steps, then `samples` samples of `inner` steps (a sample lasts at least
//! 100 ms, 30 ms with `--quick`); `sec` is the median over samples of the time per step — the
//! procedure `peers.py` uses too.
//!
//! Memory, measured the same way on both sides from the kernel's view of the process
//! (`/proc/self/status`), so allocator caches count as they would in production:
//! - `peak_mb`: peak RSS (`VmHWM`) over the whole run minus the RSS just before the model and
//!   data were built (after the thread pool — or `import torch` — was up): parameters,
//!   optimizer state, data, and the largest step's temporaries.
//! - `step_peak_mb`: after warm-up the peak is reset (`echo 5 > /proc/self/clear_refs`); the
//!   peak RSS during the timed steps minus the RSS at that moment: a step's transient memory
//!   beyond what the process already holds.
//! - `file_mb`: how much of the RSS growth since the baseline is file-backed (`RssFile`): pages
//!   of the binary and its libraries read in on first use — for `--jit`, about 3 MB of
//!   Cranelift's own machine code the first time it compiles (measured on 2026-12-06: the first
//!   compile grew `RssFile` by 2.9–3.0 MB and `RssAnon` by 64 KB). `peak_mb` includes them.
//!
//! RSS over a long run (`--rss-steps N`): instead of timing, each selected step runs `N` times
//! and one line after steps 1, 10, 100 and each tenth of the run reports the RSS and the mean
//! time per step since the previous line (`suite: "rss"`), with the buffer cache's counters (`adjoint_tensor::cache`); run it with
//! `ADJOINT_CACHE=0` for the same run without the cache.
//!
//! Profile (`ADJOINT_PROFILE=trace.json`, best with `--rss-steps 20`): the run under
//! `adjoint_core::profile::from_env`: the table per op and call site on stderr, the Chrome trace
//! in the file. Timings printed then include the profiler's cost.
//!
//! CPU use: `cpu_util` is (user + system CPU time of the process) / wall time over the timed
//! steps, from `/proc/self/stat`; with 2 threads a pool that really runs on both cores shows
//! close to 2.0.

use std::fs;

use std::time::Duration;

struct Cfg {
    quick: bool,
    only: Option<String>,
    rss_steps: Option<usize>,
    jit: bool,
}

impl Cfg {
    fn want(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| name.contains(o))
    }
}

/// A field of `/proc/self/status` in kB (`None` off Linux).
fn status_kb(field: &str) -> Option<f64> {
    let s = fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Reset the peak-RSS counter to the current RSS (Linux ≥ 4.0).
fn reset_peak() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// User + system CPU seconds of the whole process (all threads), from `/proc/self/stat`
/// (clock ticks of 1/100 s, the value of `CLK_TCK` on Linux).
fn cpu_seconds() -> Option<f64> {
    let s = fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (u, sy): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((u + sy) / 100.0)
}

fn mb(kb: Option<f64>) -> String {
    kb.map_or("null".into(), |v| format!("{:.1}", v / 1024.0))
}

/// Time `step` and print one result line. `base_kb` is the RSS before the model was built,
/// `base_file_kb` the file-backed part of it.
fn run(
    cfg: &Cfg,
    name: &str,
    size: &str,
    (base_kb, base_file_kb): (Option<f64>, Option<f64>),
    mut step: impl FnMut() -> f64,
) {
    let plan = if cfg.quick {
        timing::Plan { warmups: 3, samples: 3, min_sample: Duration::from_millis(30) }
    } else {
        timing::Plan { warmups: 3, samples: 7, min_sample: Duration::from_millis(100) }
    };
    let mut loss = 0.0;
    // Memory and CPU are read over the timed samples only (after the warm-ups).
    let (stats, (steady_kb, reset, c0), wall) = timing::measure_with(
        plan,
        1.0,
        || {
            loss = step();
            loss
        },
        || (status_kb("VmRSS:"), reset_peak(), cpu_seconds()),
    );
    let util = match (c0, cpu_seconds()) {
        (Some(a), Some(b)) => format!("{:.3}", (b - a) / wall),
        _ => "null".into(),
    };
    let hwm = status_kb("VmHWM:");
    let peak = match (hwm, base_kb) {
        (Some(h), Some(b)) => Some(h - b),
        _ => None,
    };
    let step_peak = match (hwm, steady_kb, reset) {
        (Some(h), Some(s), true) => Some(h - s),
        _ => None,
    };
    let file = match (status_kb("RssFile:"), base_file_kb) {
        (Some(f), Some(b)) => Some(f - b),
        _ => None,
    };
    println!(
        "{{\"lib\":\"adjoint\",\"suite\":\"train\",\"name\":\"{name}\",\"size\":\"{size}\",\"threads\":{},\
         \"pool_threads\":{},\"sec\":{:.9e},\"reps\":{},\"metric\":null,\"value\":null,\"cpu_util\":{util},\
         \"peak_mb\":{},\"step_peak_mb\":{},\"file_mb\":{},\"rss_mb\":{},\"loss\":{loss:.6}}}",
        std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).unwrap_or(0),
        rayon::current_num_threads(),
        stats.median_s,
        stats.batch * stats.samples,
        mb(peak),
        mb(step_peak),
        mb(file),
        mb(hwm),
    );
}

// The one timing loop of adjoint's benchmarks (see its module docs).
#[path = "../../adjoint-bench/src/timing.rs"]
#[allow(dead_code)] // each example uses part of it
mod timing;

// The three steps are defined once, in the workload suite (W2–W4 of `benches/WORKLOADS.md`).
// The jitted steps are measured with `--jit`.
#[path = "../../adjoint-bench/src/steps.rs"]
mod steps;

/// Build one step (after reading the baseline RSS) and time it, or follow its RSS.
fn bench<S: FnMut() -> f64>(cfg: &Cfg, name: &str, size: &str, build: impl FnOnce() -> S) {
    let base = (status_kb("VmRSS:"), status_kb("RssFile:"));
    match cfg.rss_steps {
        Some(n) => rss_run(name, n, build()),
        None => run(cfg, name, size, base, build()),
    }
}

/// `n` steps; one line at steps 1, 10 and 100 and at each tenth of the run: RSS, mean seconds
/// per step since the previous line, cache counters.
fn rss_run(name: &str, n: usize, mut step: impl FnMut() -> f64) {
    let block = (n / 10).max(1);
    let mut marks: Vec<usize> = [1, 10, 100].into_iter().filter(|&m| m < n).collect();
    marks.extend((1..=n / block).map(|i| i * block));
    marks.push(n);
    marks.sort_unstable();
    marks.dedup();
    let mut done = 0;
    for mark in marks {
        let k = mark - done;
        let t = std::time::Instant::now();
        let mut loss = 0.0;
        for _ in 0..k {
            loss = step();
        }
        let sec = t.elapsed().as_secs_f64() / k as f64;
        done += k;
        let c = adjoint_tensor::cache::stats();
        println!(
            "{{\"lib\":\"adjoint\",\"suite\":\"rss\",\"name\":\"{name}\",\"step\":{done},\"rss_mb\":{},\
             \"anon_mb\":{},\"live_mb\":{:.1},\"peak_live_mb\":{:.1},\"sec_per_step\":{sec:.6e},\"cache\":{},\"cache_hits\":{},\"cache_misses\":{},\"cache_released\":{},\
             \"cache_foreign\":{},\"cached_mb\":{:.1},\"loss\":{loss:.6}}}",
            mb(status_kb("VmRSS:")),
            mb(status_kb("RssAnon:")),
            adjoint_tensor::storage::live_bytes() as f64 / (1 << 20) as f64,
            adjoint_tensor::storage::peak_live_bytes() as f64 / (1 << 20) as f64,
            adjoint_tensor::cache::enabled(),
            c.hits,
            c.misses,
            c.released,
            c.foreign,
            c.cached_bytes as f64 / (1 << 20) as f64,
        );
    }
}

fn main() {
    // The kernels' pool, with this thread one of its threads (`adjoint_tensor::threads`).
    adjoint_tensor::threads::init(0).expect("nothing has used rayon yet");
    let mut cfg = Cfg { quick: false, only: None, rss_steps: None, jit: false };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => cfg.quick = true,
            "--jit" => cfg.jit = true,
            "--only" => cfg.only = args.next(),
            "--rss-steps" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) if n > 0 => cfg.rss_steps = Some(n),
                _ => {
                    eprintln!("train_bench: --rss-steps needs a positive number of steps");
                    std::process::exit(2);
                }
            },
            // Accepted for symmetry with bench_suite / peers.py.
            "--suite" => {
                args.next();
            }
            other => {
                eprintln!("train_bench: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    // Bring the rayon pool up before the baseline RSS is read (as `import torch` precedes it).
    rayon::broadcast(|_| ());
    // With ADJOINT_PROFILE=path, the run is profiled (table on stderr, trace at path).
    adjoint_core::profile::from_env(|| {
        let jit = cfg.jit;
        if cfg.want("mlp") {
            let size = "784-512-512-10, batch 128";
            if jit {
                bench(&cfg, "mlp_adam_jit", size, steps::mlp_jit)
            } else {
                bench(&cfg, "mlp_adam", size, steps::mlp)
            }
        }
        if cfg.want("cnn") {
            let size = "[64,1,28,28], 2 conv + 2 linear";
            if jit {
                bench(&cfg, "cnn_sgd_momentum_jit", size, steps::cnn_jit)
            } else {
                bench(&cfg, "cnn_sgd_momentum", size, steps::cnn)
            }
        }
        if cfg.want("lstm") {
            let size = "in 8, hidden 128, seq 64, batch 32";
            if jit {
                bench(&cfg, "lstm_adam_jit", size, steps::lstm_jit)
            } else {
                bench(&cfg, "lstm_adam", size, steps::lstm)
            }
        }
    });
}
