//! Staged control flow (`scan`, `fori_loop_t`, `while_loop`, `cond`) against plain Rust-loop
//! references: value, `jvp`, `vjp`, second order, under `jit`, `grad∘jit`, `jit∘grad` and
//! `vmap∘jit`; checkpoint policies and their stored residuals; one staged equation whatever
//! the trip count.

use adjoint_core::testing::{check_grads, BOTH};
use adjoint_core::{
    cond, fori_loop, fori_loop_t, grad, hvp, jit, jvp, make_ir, memory, scan, scan_with, vjp, vmap,
    while_loop, Checkpoint, Tensor,
};

fn v(x: &[f64]) -> Tensor {
    Tensor::from_slice(x, &[x.len()])
}

/// `got` equals `want` in shape and, elementwise, to 1e-12 relative (the staged and the
/// unrolled computation may sum in another order).
#[track_caller]
fn close(got: &Tensor, want: &Tensor, ctx: &str) {
    assert_eq!(got.shape(), want.shape(), "{ctx}: shape");
    for (i, (a, b)) in got.to_vec::<f64>().iter().zip(want.to_vec::<f64>()).enumerate() {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{ctx}: element {i}: {a} vs reference {b}");
    }
}

type P3 = (Tensor, Tensor, Tensor);

fn p3() -> P3 {
    (
        v(&[0.7, -0.4, 1.1]),
        v(&[0.2, 0.5, -0.3]),
        Tensor::from_slice(
            &[0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8, 0.9, -1.0, 1.1, 0.2, -0.5, 0.3, 0.05],
            &[5, 3],
        ),
    )
}

/// An RNN-like scan: the weight `p.0` is closed over (so it is a hoisted operand), the
/// carry `p.1`, the scanned inputs `p.2`.
fn rnn_with(policy: Checkpoint, p: &P3) -> Tensor {
    let w = &p.0;
    let (c, ys) = scan_with(
        policy,
        |c: &Tensor, x: &Tensor| {
            let h = (c * w + x).tanh();
            (h.clone(), (&h * &h).sum())
        },
        &p.1,
        &p.2,
    );
    c.sum() + (&ys * &ys).sum()
}

fn rnn(p: &P3) -> Tensor {
    rnn_with(Checkpoint::Every, p)
}

/// The same computation as a Rust loop (under a transform: unrolled ops).
fn rnn_ref(p: &P3) -> Tensor {
    let mut c = p.1.clone();
    let mut ys = Vec::new();
    for i in 0..p.2.shape()[0] {
        let x = p.2.narrow(0, i, 1).squeeze(0);
        c = (&c * &p.0 + &x).tanh();
        ys.push((&c * &c).sum());
    }
    let ys = Tensor::stack(&ys.iter().collect::<Vec<_>>(), 0);
    c.sum() + (&ys * &ys).sum()
}

#[track_caller]
fn close3(got: &P3, want: &P3, ctx: &str) {
    close(&got.0, &want.0, &format!("{ctx} .0"));
    close(&got.1, &want.1, &format!("{ctx} .1"));
    close(&got.2, &want.2, &format!("{ctx} .2"));
}

fn dir() -> P3 {
    let p = p3();
    (p.0.cos(), p.1.sin() + 0.5, p.2.cos() * 0.3)
}

#[test]
fn scan_matches_the_loop_in_value_and_derivatives() {
    let p = p3();
    let want = rnn_ref(&p);
    close(&rnn(&p), &want, "eager");
    let jf = jit(rnn);
    close(&jf(&p), &want, "jit");
    close(&jf(&p), &want, "jit, cached");
    let g_ref = grad(rnn_ref)(&p);
    close3(&grad(rnn)(&p), &g_ref, "grad");
    close3(&grad(jit(rnn))(&p), &g_ref, "grad(jit)");
    close3(&jit(grad(rnn))(&p), &g_ref, "jit(grad)");
    let (y, t) = jvp(rnn, &p, &dir());
    let (yr, tr) = jvp(rnn_ref, &p, &dir());
    close(&y, &yr, "jvp value");
    close(&t, &tr, "jvp tangent");
    close(&jvp(jit(rnn), &p, &dir()).1, &tr, "jvp(jit)");
    let (_, pb) = vjp(rnn, &p);
    let (_, pbr) = vjp(rnn_ref, &p);
    let ct = Tensor::scalar(1.5f64);
    close3(&pb(&ct), &pbr(&ct), "vjp");
    // Second order: Hessian-vector products (forward over reverse), and grad of grad.
    close3(&hvp(rnn, &p, &dir()), &hvp(rnn_ref, &p, &dir()), "hvp");
    close3(&hvp(jit(rnn), &p, &dir()), &hvp(rnn_ref, &p, &dir()), "hvp(jit)");
    let gg = |f: fn(&P3) -> Tensor| grad(move |p: &P3| grad(f)(p).0.sum())(&p);
    close3(&gg(rnn), &gg(rnn_ref), "grad∘grad");
}

#[test]
fn scan_passes_check_grads() {
    check_grads(rnn, &p3(), 2, BOTH);
    check_grads(|p: &P3| rnn_with(Checkpoint::EveryK(2), p), &p3(), 2, BOTH);
}

#[test]
fn scan_under_vmap_matches_each_example() {
    let p = p3();
    let ws = Tensor::stack(&[&p.0, &(&p.0 * 0.5), &p.0.sin()], 0);
    let c0s = Tensor::stack(&[&p.1, &p.1.cos(), &(&p.1 * -1.0)], 0);
    let f = |q: &(Tensor, Tensor)| rnn(&(q.0.clone(), q.1.clone(), p3().2));
    let jf = jit(f);
    let got = vmap(&jf)(&(ws.clone(), c0s.clone()));
    let g = vmap(grad(f))(&(ws.clone(), c0s.clone()));
    for e in 0..3 {
        let q = (ws.narrow(0, e, 1).squeeze(0), c0s.narrow(0, e, 1).squeeze(0), p.2.clone());
        close(&got.narrow(0, e, 1).squeeze(0), &rnn_ref(&q), "vmap(jit)");
        let gr = grad(rnn_ref)(&q);
        close(&g.0.narrow(0, e, 1).squeeze(0), &gr.0, "vmap(grad) w");
        close(&g.1.narrow(0, e, 1).squeeze(0), &gr.1, "vmap(grad) c0");
    }
    // Batched scanned inputs (the batch axis is not the scan axis).
    let xs = Tensor::stack(&[&p.2, &p.2.sin()], 1);
    let h = vmap_axes_xs(&p, &xs);
    for e in 0..2 {
        let q = (p.0.clone(), p.1.clone(), xs.narrow(1, e, 1).squeeze(1));
        close(&h.narrow(0, e, 1).squeeze(0), &rnn_ref(&q), "vmap over xs axis 1");
    }
}

fn vmap_axes_xs(p: &P3, xs: &Tensor) -> Tensor {
    use adjoint_core::{vmap_axes, Axes};
    let (w, c) = (p.0.clone(), p.1.clone());
    jit(vmap_axes(
        move |x: &Tensor| rnn(&(w.clone(), c.clone(), x.clone())),
        Axes::All(Some(1)),
        Axes::All(Some(0)),
    ))(xs)
}

#[test]
fn checkpoint_policies_give_the_same_gradient() {
    let p = (
        v(&[0.7, -0.4, 1.1]),
        v(&[0.2, 0.5, -0.3]),
        Tensor::linspace(-1.0, 1.0, 33).to_f64().reshape(&[11, 3]),
    );
    let want = grad(rnn_ref)(&p);
    for policy in [
        Checkpoint::Every,
        Checkpoint::EveryK(1),
        Checkpoint::EveryK(3),
        Checkpoint::EveryK(4),
        Checkpoint::Sqrt,
    ] {
        let f = move |p: &P3| rnn_with(policy, p);
        close3(&grad(f)(&p), &want, &format!("{policy:?}"));
        close3(&jit(grad(f))(&p), &want, &format!("jit(grad) {policy:?}"));
        close3(&hvp(f, &p, &dir_of(&p)), &hvp(rnn_ref, &p, &dir_of(&p)), &format!("hvp {policy:?}"));
    }
}

fn dir_of(p: &P3) -> P3 {
    (p.0.cos(), p.1.sin(), p.2.cos())
}

/// One step of a long scan: a 64-wide carry, one scalar input per step.
fn long_loss(policy: Checkpoint, c0: &Tensor, xs: &Tensor) -> Tensor {
    let (c, _) = scan_with(policy, |c: &Tensor, x: &Tensor| ((c * 0.999 + x).sin(), ()), c0, xs);
    c.sum()
}

#[test]
fn ten_thousand_steps_store_fewer_residuals_with_checkpoints() {
    let n = 10_000;
    let xs = (Tensor::linspace(0.0, 1.0, n).to_f64() * 0.01).reshape(&[n]);
    let c0 = Tensor::linspace(-1.0, 1.0, 64).to_f64();
    let carry_bytes = 64 * 8;
    let mut peaks = Vec::new();
    let mut grads = Vec::new();
    for policy in [Checkpoint::Every, Checkpoint::EveryK(10), Checkpoint::Sqrt] {
        memory::reset_peak();
        let base = memory::live_residual_bytes();
        let g = grad(|c: &Tensor| long_loss(policy, c, &xs))(&c0);
        peaks.push(memory::peak_residual_bytes() - base);
        grads.push(g);
    }
    // Residuals on the tape (memory::peak_residual_bytes): Every stores all 10,000 carries,
    // EveryK(10) 1,000, Sqrt 100, each plus the scalar xs (80 KB). The k carries that one
    // segment's recomputation holds during the backward pass (10 or 100 here) are values of
    // the backward scan, not tape residuals, so they are not in these numbers.
    assert!(peaks[0] >= n * carry_bytes, "every step stores {} bytes, want ≥ {}", peaks[0], n * carry_bytes);
    assert!(peaks[1] < peaks[0] / 5, "every 10th: {} vs every: {}", peaks[1], peaks[0]);
    assert!(peaks[2] < peaks[1] / 2, "sqrt: {} vs every 10th: {}", peaks[2], peaks[1]);
    assert!(peaks[2] <= 200 * carry_bytes + 2 * n * 8, "sqrt stores {} bytes", peaks[2]);
    close(&grads[1], &grads[0], "every 10th vs every");
    close(&grads[2], &grads[0], "sqrt vs every");
    eprintln!("residual bytes stored for a 10,000-step scan (every, every 10th, sqrt): {peaks:?}");
}

fn eqns(ir: &adjoint_core::jit::Ir) -> usize {
    ir.eqns.len()
}

#[test]
fn staging_cost_does_not_depend_on_the_trip_count() {
    let short = make_ir(|c: &Tensor| {
        scan(|c: &Tensor, x: &Tensor| ((c * x).sin(), c * 2.0), c, &Tensor::ones(&[10]).to_f64())
    })(&Tensor::scalar(1.0f64));
    let long = make_ir(|c: &Tensor| {
        scan(|c: &Tensor, x: &Tensor| ((c * x).sin(), c * 2.0), c, &Tensor::ones(&[10_000]).to_f64())
    })(&Tensor::scalar(1.0f64));
    assert_eq!(eqns(&short), 1, "{short}");
    assert_eq!(eqns(&long), 1, "{long}");
    let f = |n: i64| {
        make_ir(move |x: &Tensor| fori_loop_t(0, n, |_, y: &Tensor| y.sin() * x, x.clone()))(&Tensor::scalar(
            0.5f64,
        ))
    };
    assert_eq!(eqns(&f(3)), eqns(&f(3000)));
    let w =
        make_ir(|x: &Tensor| while_loop(|y: &Tensor| y.lt_scalar(100.0), |y: &Tensor| y * 2.0, x.clone()))(
            &Tensor::scalar(1.0f64),
        );
    assert_eq!(eqns(&w), 1, "{w}");
    let g = make_ir(grad(|c: &Tensor| long_loss(Checkpoint::Every, c, &Tensor::ones(&[10_000]).to_f64())))(
        &Tensor::zeros(&[4]).to_f64(),
    );
    assert!(eqns(&g) < 20, "jit(grad(scan)) stages {} equations:\n{g}", eqns(&g));
}

#[test]
fn fori_loop_t_matches_fori_loop() {
    let body_u = |i: usize, y: &Tensor| (y * (i as f64 * 0.1 + 0.5)).sin() + 0.1;
    let body_t = |i: &Tensor, y: &Tensor| (y * (i.to_f64() * 0.1 + 0.5)).sin() + 0.1;
    let f = move |x: &Tensor| fori_loop_t(2, 7, body_t, x.clone());
    let r = move |x: &Tensor| fori_loop(2, 7, body_u, x.clone());
    let x = v(&[0.3, -0.8]);
    close(&f(&x), &r(&x), "value");
    close(&jit(f)(&x), &r(&x), "jit");
    close(&grad(move |x: &Tensor| f(x).sum())(&x), &grad(move |x: &Tensor| r(x).sum())(&x), "grad");
    close(&jit(grad(move |x: &Tensor| f(x).sum()))(&x), &grad(move |x: &Tensor| r(x).sum())(&x), "jit(grad)");
    check_grads(f, &x, 2, BOTH);
    assert_eq!(fori_loop_t(3, 3, body_t, x.clone()).to_vec::<f64>(), x.to_vec::<f64>());
}

/// Halve-and-square until below a threshold (a data-dependent trip count).
fn wl(p: &(Tensor, Tensor)) -> Tensor {
    let a = &p.1;
    while_loop(|c: &Tensor| c.sum().gt_scalar(0.5), |c: &Tensor| (c * a).sin() * 0.9, p.0.clone()).sum()
}

fn wl_ref(p: &(Tensor, Tensor)) -> Tensor {
    let mut c = p.0.clone();
    while c.sum().item() > 0.5 {
        c = (&c * &p.1).sin() * 0.9;
    }
    c.sum()
}

#[test]
fn while_loop_matches_the_loop() {
    let p = (v(&[1.3, 0.9]), v(&[0.8, 1.1]));
    let want = wl_ref(&p);
    close(&wl(&p), &want, "eager");
    close(&jit(wl)(&p), &want, "jit");
    let gr = grad(wl_ref)(&p);
    let g = grad(wl)(&p);
    close(&g.0, &gr.0, "grad c0");
    close(&g.1, &gr.1, "grad a (closed over)");
    let gj = grad(jit(wl))(&p);
    close(&gj.0, &gr.0, "grad(jit)");
    let d = (v(&[0.3, -0.2]), v(&[1.0, 0.5]));
    close(&jvp(wl, &p, &d).1, &jvp(wl_ref, &p, &d).1, "jvp");
    close(&jvp(jit(wl), &p, &d).1, &jvp(wl_ref, &p, &d).1, "jvp(jit)");
    close(&hvp(wl, &p, &d).0, &hvp(wl_ref, &p, &d).0, "hvp");
    check_grads(wl, &p, 2, BOTH);
    // vmap: each example its own trip count.
    let c0s = Tensor::from_slice(&[1.3, 0.9, 0.2, 0.1, 3.0, 2.0], &[3, 2]);
    let got = vmap(|c: &Tensor| wl(&(c.clone(), p.1.clone())))(&c0s);
    let gv = vmap(grad(|c: &Tensor| wl(&(c.clone(), p.1.clone()))))(&c0s);
    for e in 0..3 {
        let q = (c0s.narrow(0, e, 1).squeeze(0), p.1.clone());
        close(&got.narrow(0, e, 1).squeeze(0), &wl_ref(&q), "vmap");
        close(&gv.narrow(0, e, 1).squeeze(0), &grad(wl_ref)(&q).0, "vmap(grad)");
    }
    let gj = vmap(jit(|c: &Tensor| wl(&(c.clone(), p.1.clone()))))(&c0s);
    close(&gj, &got, "vmap(jit)");
}

#[test]
#[should_panic(expected = "adjoint: while_loop: reverse mode needs the trip count")]
fn jit_of_grad_through_while_loop_explains_itself() {
    jit(grad(wl))(&(v(&[1.3, 0.9]), v(&[0.8, 1.1])));
}

fn branchy(p: &(Tensor, Tensor)) -> Tensor {
    let k = &p.1;
    cond(
        &p.0.sum().gt_scalar(0.0),
        |x: &Tensor| (x * k).sin().sum(),
        |x: &Tensor| (x * x * k).sum() * 3.0,
        &p.0,
    )
}

fn branchy_ref(p: &(Tensor, Tensor)) -> Tensor {
    if p.0.sum().item() > 0.0 {
        (&p.0 * &p.1).sin().sum()
    } else {
        (&p.0 * &p.0 * &p.1).sum() * 3.0
    }
}

#[test]
fn cond_matches_the_branch() {
    for x in [v(&[0.4, 0.9]), v(&[-0.4, -0.9])] {
        let p = (x, v(&[1.5, -0.5]));
        let want = branchy_ref(&p);
        close(&branchy(&p), &want, "eager");
        close(&jit(branchy)(&p), &want, "jit");
        let gr = grad(branchy_ref)(&p);
        for (g, what) in [
            (grad(branchy)(&p), "grad"),
            (grad(jit(branchy))(&p), "grad(jit)"),
            (jit(grad(branchy))(&p), "jit(grad)"),
        ] {
            close(&g.0, &gr.0, what);
            close(&g.1, &gr.1, what);
        }
        let d = (v(&[0.3, -0.2]), v(&[1.0, 0.5]));
        close(&jvp(branchy, &p, &d).1, &jvp(branchy_ref, &p, &d).1, "jvp");
        close(&hvp(branchy, &p, &d).0, &hvp(branchy_ref, &p, &d).0, "hvp");
        check_grads(branchy, &p, 2, BOTH);
    }
    // vmap with a batched predicate: each example takes its own branch.
    let xs = Tensor::from_slice(&[0.4, 0.9, -0.4, -0.9, 2.0, -1.0], &[3, 2]);
    let k = v(&[1.5, -0.5]);
    let f = |x: &Tensor| branchy(&(x.clone(), k.clone()));
    let got = vmap(jit(f))(&xs);
    let g = vmap(grad(f))(&xs);
    for e in 0..3 {
        let q = (xs.narrow(0, e, 1).squeeze(0), k.clone());
        close(&got.narrow(0, e, 1).squeeze(0), &branchy_ref(&q), "vmap(jit)");
        close(&g.narrow(0, e, 1).squeeze(0), &grad(branchy_ref)(&q).0, "vmap(grad)");
    }
    // An unbatched predicate under vmap.
    let h = vmap(|kk: &Tensor| branchy(&(v(&[0.4, 0.9]), kk.clone())))(&xs);
    close(
        &h.narrow(0, 2, 1).squeeze(0),
        &branchy_ref(&(v(&[0.4, 0.9]), xs.narrow(0, 2, 1).squeeze(0))),
        "vmap, shared pred",
    );
}

#[test]
#[should_panic(expected = "adjoint: cond: on_true returns [float64[2]] but on_false returns [float64[]]")]
fn cond_refuses_branches_that_disagree() {
    jit(|x: &Tensor| cond(&x.sum().gt_scalar(0.0), |x: &Tensor| x.clone(), |x: &Tensor| x.sum(), x))(&v(&[
        1.0, 2.0,
    ]));
}

#[test]
#[should_panic(
    expected = "adjoint: scan: the body returns a carry of types [float64[2]] but takes [float64[]]"
)]
fn scan_refuses_a_carry_that_changes_shape() {
    jit(|c: &Tensor| scan(|c: &Tensor, x: &Tensor| (c * x, ()), c, &v(&[1.0, 2.0]).reshape(&[1, 2])).0)(
        &Tensor::scalar(1.0f64),
    );
}
