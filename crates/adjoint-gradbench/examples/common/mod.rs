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
