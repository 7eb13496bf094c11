//! Concurrency: tensors and models are shared across threads; independent transforms on
//! several threads give exactly the single-threaded results; a tracer taken to another thread
//! is a clear error, never a silent mix-up of two threads' tapes; anomaly mode is per thread.

#![allow(clippy::result_large_err)] // `Anomaly` reports are returned by value on purpose

use std::sync::{mpsc, Arc, Barrier};

use adjoint_core::{debug, grad, hessian, jvp, vmap, Tensor};
use adjoint_tensor::random::{normal, Key};
use adjoint_tensor::DType;

fn assert_send_sync<X: Send + Sync>() {}

#[test]
fn tensors_are_send_and_sync() {
    assert_send_sync::<Tensor>();
    assert_send_sync::<Vec<Tensor>>();
}

struct Job {
    params: Vec<Tensor>,
    x: Tensor,
    y: Tensor,
}

fn job(seed: u64) -> Job {
    let n =
        |s: u64, shape: &[usize]| Tensor::from_array(normal(&Key::new(seed * 100 + s), shape, DType::F64));
    Job {
        params: vec![n(1, &[5, 8]), n(2, &[8]), n(3, &[8, 3]), n(4, &[3])],
        x: n(5, &[6, 5]),
        y: n(6, &[6, 3]),
    }
}

fn loss(p: &[Tensor], x: &Tensor, y: &Tensor) -> Tensor {
    let h = (x.matmul(&p[0]) + &p[1]).tanh();
    let o = h.matmul(&p[2]) + &p[3];
    let d = &o - y;
    (&d * &d).mean() + o.log_softmax(1).sum() * 0.01
}

type Outputs = Vec<Vec<f64>>;

/// Everything one worker computes: gradient, a Hessian, a JVP and per-example gradients.
fn work(j: &Job) -> Vec<Vec<f64>> {
    let g = grad(|p: &Vec<Tensor>| loss(p, &j.x, &j.y))(&j.params);
    let mut out: Vec<Vec<f64>> = g.iter().map(|t| t.to_vec::<f64>()).collect();
    let w0 = j.params[3].clone();
    let h = hessian(|b: &Tensor| {
        let mut p = j.params.clone();
        p[3] = b.clone();
        loss(&p, &j.x, &j.y)
    })(&w0);
    out.push(h.to_vec::<f64>());
    let (_, t) = jvp(|x: &Tensor| loss(&j.params, x, &j.y), &j.x, &j.x.ones_like());
    out.push(t.to_vec::<f64>());
    let per_example = vmap(|xy: &(Tensor, Tensor)| {
        grad(|p: &Vec<Tensor>| loss(p, &xy.0.reshape(&[1, 5]), &xy.1.reshape(&[1, 3])))(&j.params)[0].clone()
    })(&(j.x.clone(), j.y.clone()));
    out.push(per_example.to_vec::<f64>());
    out
}

#[test]
fn independent_gradients_on_threads_match_single_threaded() {
    let jobs: Vec<Arc<Job>> = (0..6).map(|s| Arc::new(job(s))).collect();
    let expected: Vec<Vec<Vec<f64>>> = jobs.iter().map(|j| work(j)).collect();
    // Different jobs on different threads, twice each, all at once; plus every thread also works
    // on job 0 through the *same* shared tensors.
    let results: Vec<(usize, Outputs, Outputs)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let j = jobs[i % jobs.len()].clone();
                let shared = jobs[0].clone();
                s.spawn(move || (i % 6, work(&j), work(&shared)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (k, got, got_shared) in results {
        assert_eq!(got, expected[k], "job {k} on a thread differs from the single-threaded result");
        assert_eq!(got_shared, expected[0]);
    }
}

fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_tracer_sent_to_another_thread_is_a_clear_error() {
    let (tx, rx) = mpsc::channel::<Tensor>();
    let (done_tx, done_rx) = mpsc::channel::<String>();
    let hold = Arc::new(Barrier::new(2));
    let hold2 = hold.clone();
    std::thread::scope(|s| {
        // Thread B: runs its own `grad` (so its stack also has a level-0 frame) and uses A's
        // tracer inside it, while A's transform is still active.
        s.spawn(move || {
            let leaked = rx.recv().unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                grad(|w: &Tensor| (w * &leaked).sum())(&Tensor::from_vec(vec![1.0f64, 2.0], &[2]))
            }));
            done_tx.send(r.err().map(panic_message).unwrap_or_else(|| "no error".into())).unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| leaked.exp()));
            done_tx.send(r.err().map(panic_message).unwrap_or_else(|| "no error".into())).unwrap();
            hold2.wait();
        });
        let x = Tensor::from_vec(vec![3.0f64, 4.0], &[2]);
        let g = grad(|x: &Tensor| {
            let y = x * 2.0;
            tx.send(y.clone()).unwrap();
            // Wait for B to have tried both uses while this transform is live.
            let m1 = done_rx.recv().unwrap();
            let m2 = done_rx.recv().unwrap();
            for m in [m1, m2] {
                assert!(m.contains("tracer of `grad/vjp`") && m.contains("another thread"), "{m}");
            }
            hold.wait();
            y.sum()
        })(&x);
        assert_eq!(g.to_vec::<f64>(), vec![2.0, 2.0], "thread A's own gradient is unaffected");
    });
}

#[test]
fn anomaly_mode_is_per_thread() {
    let barrier = Arc::new(Barrier::new(2));
    let b2 = barrier.clone();
    std::thread::scope(|s| {
        let a = s.spawn(move || {
            debug::detect_anomaly(|| {
                b2.wait(); // both threads inside their sections
                b2.wait();
                Tensor::from_vec(vec![0.0f32], &[1]).log()
            })
        });
        barrier.wait();
        if std::env::var(debug::ENV_VAR).map_or(true, |v| v != "1") {
            // This thread did not ask for anomaly checks: log(0) is just -inf.
            assert_eq!(Tensor::from_vec(vec![0.0f32], &[1]).log().to_vec::<f32>(), vec![f32::NEG_INFINITY]);
        }
        barrier.wait();
        assert_eq!(a.join().unwrap().unwrap_err().primitive, "log");
    });
}
