//! Helpers shared by the timing examples.
use std::time::Instant;

/// Mean seconds per run, over at least 3 runs and 0.5 s.
pub fn time<T>(f: impl Fn() -> T) -> f64 {
    let t0 = Instant::now();
    let mut runs = 0;
    while runs < 3 || t0.elapsed().as_secs_f64() < 0.5 {
        std::hint::black_box(f());
        runs += 1;
    }
    t0.elapsed().as_secs_f64() / runs as f64
}

/// Uniform draws from `[0, 1)` by a fixed LCG (GradBench draws its inputs with numpy's
/// generator; this stands in for it, the same sequence on every run).
pub fn uniform() -> impl FnMut() -> f64 {
    let mut state = 31337u64;
    move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The command line's numeric arguments (others skipped).
pub fn numbers() -> Vec<usize> {
    std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect()
}
