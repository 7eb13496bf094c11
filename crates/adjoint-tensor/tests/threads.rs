//! `threads::init` on the main thread (`harness = false`: libtest would run it on a thread of its
//! own, which then exits while being one of the pool's threads).

use std::sync::mpsc;
use std::time::Duration;

use adjoint_tensor::{threads, Array};

/// A product big enough to be split across threads, matrix-vector products in both layouts (cut
/// into pieces by shape), and an elementwise op above the parallel threshold.
fn work() -> (Vec<f32>, Vec<f64>) {
    let a = Array::from_vec((0..256 * 300).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect(), &[256, 300]);
    let b = Array::from_vec((0..300 * 512).map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0).collect(), &[512, 300]);
    let mut p = a.matmul(&b.transpose(0, 1)).to_vec::<f32>();
    let m =
        Array::from_vec((0..2000 * 1000).map(|i| ((i * 3 % 17) as f32 - 8.0) / 9.0).collect(), &[2000, 1000]);
    let v = Array::from_vec((0..2000).map(|i| ((i % 7) as f32 - 3.0) / 5.0).collect(), &[2000]);
    p.extend(v.matmul(&m).to_vec::<f32>());
    p.extend(m.matmul(&v.narrow(0, 0, 1000)).to_vec::<f32>());
    let x = Array::from_vec((0..1 << 18).map(|i| i as f64 / 1000.0).collect(), &[1 << 18]);
    (p, x.exp().to_vec::<f64>())
}

fn main() {
    // Reference first, on a separate one-thread pool (the global pool does not exist yet).
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let reference = one.install(work);
    drop(one);

    let n = threads::init(2).expect("nothing has used the global pool yet");
    assert_eq!(n, 2);
    assert_eq!(rayon::current_num_threads(), 2);
    assert_eq!(rayon::current_thread_index(), Some(0), "the caller is the pool's thread 0");
    assert!(threads::init(2).is_err(), "a second init reports the existing pool");

    // Kernels called from the caller split their work across both threads, with the same
    // results as on one thread.
    let threads_seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    rayon::broadcast(|c| threads_seen.lock().unwrap().insert(c.index()));
    assert_eq!(threads_seen.into_inner().unwrap().len(), 2);
    for _ in 0..3 {
        assert!(work() == reference, "two threads with the caller gave a different result");
    }

    // Another thread's parallel work still runs (the pool's second thread takes it) while the
    // caller is busy outside rayon.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(work()).unwrap());
    let spin = std::time::Instant::now();
    while spin.elapsed() < Duration::from_millis(50) {
        std::hint::spin_loop();
    }
    let theirs = rx.recv_timeout(Duration::from_secs(60)).expect("another thread's kernels finished");
    assert!(theirs == reference);

    // The parallel kernels above left the pool's other thread polling for work for a while
    // (`keep_warm`); that task ends by itself once no work comes.
    threads::keep_warm();
    let waited = std::time::Instant::now();
    while threads::warm_task_pending() {
        assert!(waited.elapsed() < Duration::from_secs(30), "the keep-warm task never ended");
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("threads: ok (2 threads, the caller one of them; same results as one thread)");
}
