//! `jit_donate`: the jitted function takes its input by value and may write outputs into the
//! input's buffers. Donation must never change a result, nor touch a buffer someone else still
//! holds.

use adjoint_core::{grad, jit, jit_donate, Tensor};

type State = (Tensor, Tensor, Tensor);

/// An Adam-like update `state → state` whose outputs all have the inputs' shapes.
fn update(s: &State) -> State {
    let (p, g, m) = s;
    let m = m * 0.9 + g * 0.1;
    let p = p - (&m / (g.square() + 1e-3).sqrt()) * 0.01;
    (p, g.clone(), m)
}

fn state(n: usize) -> State {
    let v =
        |k: f64| Tensor::from_vec((0..n).map(|i| (i as f64 * 0.37 + k).sin()).collect::<Vec<f64>>(), &[n]);
    (v(0.0), v(1.0), v(2.0))
}

#[test]
fn donating_gives_the_results_of_jit_and_eager() {
    // Large enough for the fused kernels to run in blocks and across threads.
    for n in [5, 70_000] {
        let step = jit_donate(update);
        let plain = jit(update);
        let (mut a, mut b, mut c) = (state(n), state(n), state(n));
        for _ in 0..3 {
            a = step(a);
            b = plain(&b);
            c = update(&c);
        }
        for (x, (y, z)) in [a.0, a.1, a.2].iter().zip([b.0, b.1, b.2].iter().zip([c.0, c.1, c.2].iter())) {
            assert_eq!(x.to_vec::<f64>(), y.to_vec::<f64>(), "n = {n}: donated vs jit");
            assert_eq!(x.to_vec::<f64>(), z.to_vec::<f64>(), "n = {n}: donated vs eager");
        }
    }
}

#[test]
fn a_buffer_the_caller_still_holds_is_left_alone() {
    let step = jit_donate(update);
    let s = state(70_000);
    let kept = s.clone();
    let before: Vec<Vec<f64>> = [&kept.0, &kept.1, &kept.2].iter().map(|t| t.to_vec::<f64>()).collect();
    let out = step(s);
    let after: Vec<Vec<f64>> = [&kept.0, &kept.1, &kept.2].iter().map(|t| t.to_vec::<f64>()).collect();
    assert_eq!(before, after, "a donated input that the caller also held was overwritten");
    assert_eq!(out.0.to_vec::<f64>(), update(&kept).0.to_vec::<f64>());
}

#[test]
fn donated_functions_compose_with_transforms() {
    // Under `grad` the program is replayed through `bind`: donation has nothing to do there.
    let f = jit_donate(|x: &Tensor| (x.sin() * x).sum());
    let x = Tensor::from_vec(vec![0.5f64, 1.0, 2.0], &[3]);
    let g = grad(|x: &Tensor| f(x.clone()))(&x);
    let want = grad(|x: &Tensor| (x.sin() * x).sum())(&x);
    assert_eq!(g.to_vec::<f64>(), want.to_vec::<f64>());
}

/// The address of a tensor's first element.
fn data_ptr(t: &Tensor) -> *const f64 {
    t.value().as_slice::<f64>().expect("contiguous").as_ptr()
}

#[test]
fn a_donated_buffer_nobody_else_holds_receives_an_output() {
    // Large enough that the update is one fused kernel over blocks; the fused kernel reads `p`
    // last, so with `p` donated the new `p` (or `m`) is written into its buffer. With `jit`
    // (borrowed input) no output may sit in an input's buffer.
    let f = |s: &State| {
        let (p, g, m) = s;
        let m = m * 0.9 + g * 0.1;
        (p - &m * 0.01, g.clone(), m)
    };
    let step = jit_donate(f);
    let plain = jit(f);
    let _ = step(state(70_000)); // first call traces
    let s = state(70_000);
    let ins = [data_ptr(&s.0), data_ptr(&s.2)];
    let out = plain(&s);
    assert!(
        !ins.contains(&data_ptr(&out.0)) && !ins.contains(&data_ptr(&out.2)),
        "jit wrote into a borrowed input"
    );
    drop(out);
    let out = step(s);
    assert!(
        ins.contains(&data_ptr(&out.0)) || ins.contains(&data_ptr(&out.2)),
        "no output of the donated step was written into a donated buffer"
    );
}
