//! `vmap` composed with the other transforms, in both orders, each checked against a loop over
//! examples; custom rules and checkpoints under `vmap`; the batched Jacobians against the
//! basis-vector loop; and the error messages.

use adjoint_core::vmap::Axes;
use adjoint_core::{
    checkpoint, custom_jvp, custom_vjp, grad, hessian, jacfwd, jacrev, jvp, stop_gradient, vjp, vmap,
    vmap_axes, DType, Params, Tensor,
};
use adjoint_tensor::random::{uniform, Key};

fn rand(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_array(uniform(&Key::new(seed), shape, -1.0, 1.0, DType::F64))
}

#[track_caller]
fn close(a: &Tensor, b: &Tensor, tol: f64) {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    for (i, (x, y)) in a.to_vec::<f64>().iter().zip(b.to_vec::<f64>()).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "element {i}: {x} vs {y}");
    }
}

fn stack(ts: &[Tensor], axis: usize) -> Tensor {
    let refs: Vec<&Tensor> = ts.iter().collect();
    Tensor::stack(&refs, axis)
}

fn example(t: &Tensor, axis: usize, i: usize) -> Tensor {
    t.narrow(axis, i, 1).squeeze(axis)
}

#[derive(Clone, Params)]
#[params(crate = adjoint_core)]
struct Mlp {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
}

fn mlp() -> Mlp {
    Mlp { w1: rand(&[3, 4], 1), b1: rand(&[4], 2), w2: rand(&[4, 2], 3) }
}

/// Loss of one example `x` (shape [3]) with target `y` (shape [2]).
fn loss(m: &Mlp, x: &Tensor, y: &Tensor) -> Tensor {
    let h = (x.matmul(&m.w1) + &m.b1).tanh();
    let o = h.matmul(&m.w2);
    let d = &o - y;
    (&d * &d).sum() + o.log_softmax(0).sum()
}

#[test]
fn vmap_of_grad_gives_per_example_gradients() {
    let m = mlp();
    let (xs, ys) = (rand(&[5, 3], 4), rand(&[5, 2], 5));
    let per = vmap_axes(
        |a: &(Mlp, Tensor, Tensor)| grad(|m: &Mlp| loss(m, &a.1, &a.2))(&a.0),
        [None, Some(0), Some(0)],
        0,
    )(&(m.clone(), xs.clone(), ys.clone()));
    let loop_g: Vec<Mlp> =
        (0..5).map(|i| grad(|m: &Mlp| loss(m, &example(&xs, 0, i), &example(&ys, 0, i)))(&m)).collect();
    close(&per.w1, &stack(&loop_g.iter().map(|g| g.w1.clone()).collect::<Vec<_>>(), 0), 1e-12);
    close(&per.b1, &stack(&loop_g.iter().map(|g| g.b1.clone()).collect::<Vec<_>>(), 0), 1e-12);
    close(&per.w2, &stack(&loop_g.iter().map(|g| g.w2.clone()).collect::<Vec<_>>(), 0), 1e-12);
}

#[test]
fn grad_of_vmap_equals_the_sum_of_example_gradients() {
    let m = mlp();
    let (xs, ys) = (rand(&[3, 4], 6), rand(&[2, 4], 7)); // examples along axis 1
    let batched = |m: &Mlp| {
        let f = vmap_axes(|a: &(Mlp, Tensor, Tensor)| loss(&a.0, &a.1, &a.2), [None, Some(1), Some(1)], 0);
        f(&(m.clone(), xs.clone(), ys.clone())).sum()
    };
    let looped = |m: &Mlp| {
        let mut acc = Tensor::scalar(0.0f64);
        for i in 0..4 {
            acc = acc + loss(m, &example(&xs, 1, i), &example(&ys, 1, i));
        }
        acc
    };
    let (g1, g2) = (grad(batched)(&m), grad(looped)(&m));
    close(&g1.w1, &g2.w1, 1e-12);
    close(&g1.b1, &g2.b1, 1e-12);
    close(&g1.w2, &g2.w2, 1e-12);
    // Second order through vmap: the Hessian-vector product of the batched loss.
    let v = mlp();
    let h1 = adjoint_core::hvp(batched, &m, &v);
    let h2 = adjoint_core::hvp(looped, &m, &v);
    close(&h1.w1, &h2.w1, 1e-10);
}

fn f2(x: &Tensor) -> Tensor {
    let y = x.sin() * x.sum_axes(&[0], true) + x.exp().cumsum(1);
    y.matmul(&x.t()).tanh()
}

#[test]
fn jvp_of_vmap_and_vmap_of_jvp() {
    let xs = rand(&[4, 2, 3], 8);
    let ts = rand(&[4, 2, 3], 9);
    let (y, t) = jvp(|x: &Tensor| vmap(f2)(x), &xs, &ts);
    let (yl, tl): (Vec<Tensor>, Vec<Tensor>) =
        (0..4).map(|i| jvp(f2, &example(&xs, 0, i), &example(&ts, 0, i))).unzip();
    close(&y, &stack(&yl, 0), 1e-12);
    close(&t, &stack(&tl, 0), 1e-12);
    // vmap over the tangents only (primal shared), batch on axis 2.
    let x0 = example(&xs, 0, 0);
    let tt = ts.permute(&[1, 2, 0]);
    let (y2, t2) = vmap_axes(|t: &Tensor| jvp(f2, &x0, t), 2, Axes::Leaves(vec![None, Some(2)]))(&tt);
    close(&y2, &f2(&x0), 1e-12);
    let tl2: Vec<Tensor> = (0..4).map(|i| jvp(f2, &x0, &example(&ts, 0, i)).1).collect();
    close(&t2, &stack(&tl2, 2), 1e-12);
}

#[test]
fn vmap_of_vmap_maps_two_axes() {
    let xs = rand(&[2, 3, 4, 5], 10); // examples: axis 1 (outer, 3) and axis 3 (inner, 5)
    let g = |x: &Tensor| (x.softmax(1) * x.cos()).sum_axes(&[1], false);
    // Outer vmap over axis 1 → per-example [2, 4, 5]; inner over axis 2 of that → [2, 4].
    let inner = vmap_axes(g, 2, 0);
    let both = vmap_axes(inner, 1, 1);
    let out = both(&xs); // [5 (inner), 3 (outer), 2]
    let mut rows = Vec::new();
    for j in 0..5 {
        let cols: Vec<Tensor> = (0..3).map(|i| g(&example(&example(&xs, 3, j), 1, i))).collect();
        rows.push(stack(&cols, 0));
    }
    close(&out, &stack(&rows, 0), 1e-12);
    // And with grad inside both maps.
    let gg = vmap(vmap(grad(|x: &Tensor| (x * x * x).sum())));
    let z = rand(&[2, 3, 4], 11);
    close(&gg(&z), &(&z * &z * 3.0), 1e-12);
}

#[test]
fn batched_jacobians_match_the_basis_loop() {
    let x = rand(&[2, 3], 12);
    let f = |x: &Tensor| f2(x).sum_axes(&[0], false) * x.sum();
    let y = f(&x);
    // Reference: one VJP per output element, one JVP per input element.
    let (_, pb) = vjp(f, &x);
    let mut rows = Vec::new();
    for i in 0..y.numel() {
        let mut e = vec![0.0f64; y.numel()];
        e[i] = 1.0;
        rows.push(pb(&Tensor::from_vec(e, y.shape())).flatten());
    }
    let reference = stack(&rows, 0).reshape(&[2, 2, 3]);
    close(&jacrev(f)(&x), &reference, 1e-12);
    close(&jacfwd(f)(&x), &reference, 1e-12);
    // Hessian (batched jacfwd of grad) against the loop of HVPs.
    let s = |x: &Tensor| (f(x) * f(x)).sum();
    let h = hessian(s)(&x);
    let mut cols = Vec::new();
    for i in 0..6 {
        let mut e = vec![0.0f64; 6];
        e[i] = 1.0;
        cols.push(adjoint_core::hvp(s, &x, &Tensor::from_vec(e, &[2, 3])).flatten());
    }
    close(&h.reshape(&[6, 6]), &stack(&cols, 1), 1e-10);
    // Jacobians inside vmap, and vmap inside jacrev.
    let xs = rand(&[3, 2, 3], 13);
    let js = vmap(jacrev(f))(&xs);
    let jl: Vec<Tensor> = (0..3).map(|i| jacrev(f)(&example(&xs, 0, i))).collect();
    close(&js, &stack(&jl, 0), 1e-12);
    let jv = jacrev(vmap(f))(&xs); // [3, 2, 3, 2, 3]: block diagonal in the batch
    close(&jv.narrow(0, 1, 1).narrow(2, 1, 1).reshape(&[2, 2, 3]), &jl[1], 1e-12);
    assert_eq!(jv.narrow(0, 0, 1).narrow(2, 2, 1).abs().sum().item(), 0.0);
}

#[test]
fn custom_vjp_rule_is_kept_under_vmap() {
    // A deliberately non-standard backward rule (3·ct·cos x instead of ct·cos x) shows which
    // rule ran.
    let f = custom_vjp(
        |x: &Tensor| x.sin(),
        |x: &Tensor| (x.sin(), x.clone()),
        |x: &Tensor, ct: &Tensor| ct * x.cos() * 3.0,
    );
    let xs = rand(&[4, 3], 14);
    let expect = xs.cos() * 3.0;
    close(&vmap(grad(|x: &Tensor| f(x).sum()))(&xs), &expect, 1e-12);
    close(&grad(|x: &Tensor| vmap(&f)(x).sum())(&xs), &expect, 1e-12);
    close(&vmap(&f)(&xs), &xs.sin(), 1e-12);
    // Forward mode through the custom VJP, batched.
    let (_, t) = jvp(|x: &Tensor| vmap(&f)(x), &xs, &Tensor::ones(&[4, 3]).to_f64());
    close(&t, &expect, 1e-12);
    // A shared input gets the sum of the per-example cotangents.
    let g = custom_vjp(
        |p: &(Tensor, Tensor)| &p.0 * &p.1,
        |p: &(Tensor, Tensor)| (&p.0 * &p.1, (p.0.clone(), p.1.clone())),
        |r: &(Tensor, Tensor), ct: &Tensor| (ct * &r.1 * 2.0, ct * &r.0 * 2.0),
    );
    let w = rand(&[3], 15);
    let gw = grad(|w: &Tensor| vmap_axes(&g, [None, Some(0)], 0)(&(w.clone(), xs.clone())).sum())(&w);
    close(&gw, &(xs.sum_axes(&[0], false) * 2.0), 1e-12);
    // Nested: vmap(vmap(grad)) through the custom rule.
    let x3 = rand(&[2, 4, 3], 16);
    close(&vmap(vmap(grad(|x: &Tensor| f(x).sum())))(&x3), &(x3.cos() * 3.0), 1e-12);
    close(&grad(|x: &Tensor| vmap(vmap(&f))(x).sum())(&x3), &(x3.cos() * 3.0), 1e-12);
}

#[test]
fn custom_jvp_and_checkpoint_under_vmap() {
    // Straight-through rounding: derivative 1 by the custom rule (the true one is 0).
    let ste = custom_jvp(|x: &Tensor| x.round(), |x: &Tensor, t: &Tensor| (x.round(), t * 2.0));
    let xs = rand(&[4, 3], 17) * 3.0;
    let two = Tensor::full_of(&[4, 3], 2.0, DType::F64);
    close(&vmap(&ste)(&xs), &xs.round(), 0.0);
    close(&vmap(grad(|x: &Tensor| ste(x).sum()))(&xs), &two, 0.0);
    close(&grad(|x: &Tensor| vmap(&ste)(x).sum())(&xs), &two, 0.0);
    let (_, t) = jvp(|x: &Tensor| vmap(&ste)(x), &xs, &Tensor::ones(&[4, 3]).to_f64());
    close(&t, &two, 0.0);
    let t2 = vmap(|x: &Tensor| jvp(&ste, x, &Tensor::ones(&[3]).to_f64()).1)(&xs);
    close(&t2, &two, 0.0);

    let block = checkpoint(|p: &(Tensor, Tensor)| (p.0.matmul(&p.1).tanh(), p.0.sin()));
    let w = rand(&[3, 3], 18);
    let plain = |p: &(Tensor, Tensor)| (p.0.matmul(&p.1).tanh(), p.0.sin());
    let lc = |w: &Tensor| {
        let (a, b) = vmap_axes(&block, [Some(0), None], 0)(&(xs.clone(), w.clone()));
        (a * 2.0).sum() + b.sum()
    };
    let lp = |w: &Tensor| {
        let (a, b) = vmap_axes(plain, [Some(0), None], 0)(&(xs.clone(), w.clone()));
        (a * 2.0).sum() + b.sum()
    };
    close(&grad(lc)(&w), &grad(lp)(&w), 1e-12);
    let pe = vmap_axes(
        |p: &(Tensor, Tensor)| grad(|w: &Tensor| block(&(p.0.clone(), w.clone())).0.sum())(&p.1),
        [Some(0), None],
        0,
    )(&(xs.clone(), w.clone()));
    let pl: Vec<Tensor> =
        (0..4).map(|i| grad(|w: &Tensor| plain(&(example(&xs, 0, i), w.clone())).0.sum())(&w)).collect();
    close(&pe, &stack(&pl, 0), 1e-12);
}

#[test]
fn stop_gradient_keeps_batching_and_stops_derivatives() {
    let xs = rand(&[4, 3], 19);
    let g = vmap(grad(|x: &Tensor| (x * stop_gradient(x)).sum()))(&xs);
    close(&g, &xs, 0.0);
    let g2 = grad(|x: &Tensor| vmap(|x: &Tensor| x * stop_gradient(&x.exp()))(x).sum())(&xs);
    close(&g2, &xs.exp(), 1e-12);
}

#[test]
fn args_axes_for_a_struct_and_a_batch() {
    let m = mlp();
    let (xs, ys) = (rand(&[6, 3], 20), rand(&[6, 2], 21));
    let losses = vmap_axes(|a: &(Mlp, Tensor, Tensor)| loss(&a.0, &a.1, &a.2), [None, Some(0), Some(0)], 0)(
        &(m.clone(), xs.clone(), ys.clone()),
    );
    let l: Vec<Tensor> = (0..6).map(|i| loss(&m, &example(&xs, 0, i), &example(&ys, 0, i))).collect();
    close(&losses, &stack(&l, 0), 1e-12);
    // Ensemble: stacked parameters (axis 0 of every leaf), shared data.
    let ms = Mlp { w1: rand(&[2, 3, 4], 22), b1: rand(&[2, 4], 23), w2: rand(&[2, 4, 2], 24) };
    let x0 = example(&xs, 0, 0);
    let y0 = example(&ys, 0, 0);
    let per_model = vmap(|m: &Mlp| loss(m, &x0, &y0))(&ms);
    for k in 0..2 {
        let mk = Mlp { w1: example(&ms.w1, 0, k), b1: example(&ms.b1, 0, k), w2: example(&ms.w2, 0, k) };
        close(&example(&per_model, 0, k), &loss(&mk, &x0, &y0), 1e-12);
    }
}

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let e = std::panic::catch_unwind(f).expect_err("should panic");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn errors_name_the_problem_and_the_caller() {
    let msg = panic_message(|| {
        let f = vmap(|p: &(Tensor, Tensor)| &p.0 + &p.1);
        f(&(Tensor::zeros(&[3, 2]), Tensor::zeros(&[4, 2])));
    });
    assert!(msg.contains("batch sizes disagree"), "{msg}");
    assert!(msg.contains("`0` has 3") && msg.contains("`1` has 4"), "{msg}");
    assert!(msg.contains("vmap_compose.rs"), "{msg}");

    let msg = panic_message(|| {
        vmap(|x: &Tensor| if x.sum().item() > 0.0 { x.clone() } else { -x })(&Tensor::zeros(&[3, 2]));
    });
    assert!(msg.contains("cannot read the value of a tensor inside `vmap`"), "{msg}");
    assert!(msg.contains("vmap_compose.rs"), "{msg}");

    let msg = panic_message(|| {
        vmap_axes(|x: &Tensor| x * 2.0, 0, None)(&Tensor::zeros(&[3, 2]));
    });
    assert!(msg.contains("differs between examples") && msg.contains("None"), "{msg}");

    let msg = panic_message(|| {
        vmap_axes(|x: &Tensor| x * 2.0, 2, 0)(&Tensor::zeros(&[3, 2]));
    });
    assert!(msg.contains("axis 2") && msg.contains("[3, 2]"), "{msg}");

    let msg = panic_message(|| {
        vmap_axes(|x: &Tensor| x * 2.0, None, 0)(&Tensor::zeros(&[3, 2]));
    });
    assert!(msg.contains("no input is batched"), "{msg}");

    // A batch tracer kept past its vmap is caught when used.
    let msg = panic_message(|| {
        let kept = std::cell::RefCell::new(None);
        vmap(|x: &Tensor| {
            *kept.borrow_mut() = Some(x.clone());
            x.clone()
        })(&Tensor::zeros(&[3, 2]));
        let _ = kept.into_inner().expect("set") * 2.0;
    });
    assert!(msg.contains("after its transform returned") && msg.contains("vmap"), "{msg}");
}

#[test]
fn unbatched_outputs_are_broadcast_and_shared_inputs_stay_shared() {
    let w = rand(&[3], 25);
    let xs = rand(&[4, 3], 26);
    // The second output does not depend on the example: broadcast along the batch axis.
    let (a, b) = vmap_axes(|p: &(Tensor, Tensor)| (&p.0 * &p.1, p.1.exp()), [Some(0), None], 0)(&(
        xs.clone(),
        w.clone(),
    ));
    close(&a, &(&xs * &w), 0.0);
    close(&b, &w.exp().unsqueeze(0).broadcast_to(&[4, 3]), 0.0);
    // out_axes None for an output that is the same for every example.
    let c = vmap_axes(|p: &(Tensor, Tensor)| p.1.sin(), [Some(0), None], None)(&(xs, w.clone()));
    close(&c, &w.sin(), 0.0);
}

/// A user-defined primitive without a batching rule: `vmap` falls back to one call per example.
#[derive(Debug, Clone)]
struct Cube;

impl adjoint_core::primitive::SimplePrimitive for Cube {
    fn name(&self) -> &'static str {
        "cube"
    }
    fn shape(&self, a: &[adjoint_core::primitive::Aval]) -> adjoint_core::primitive::Aval {
        a[0].clone()
    }
    fn eval(&self, a: &[&adjoint_core::Array]) -> adjoint_core::Array {
        use adjoint_tensor::ops::binary::BinaryOp;
        a[0].binary(a[0], BinaryOp::Mul).binary(a[0], BinaryOp::Mul)
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t * p[0] * p[0] * 3.0)
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> adjoint_core::primitive::Pullback {
        adjoint_core::primitive::Pullback::new(p[0].clone(), |x, c| {
            let mut g = adjoint_core::primitive::Grads::new();
            g.push(Some(c * x * x * 3.0));
            g
        })
    }
}

#[test]
fn primitives_without_a_batching_rule_fall_back_to_a_loop() {
    let cube = |x: &Tensor| adjoint_core::trace::bind(&Cube, &[x]);
    let xs = rand(&[3, 4], 27);
    let ys = vmap_axes(cube, 1, 0)(&xs);
    close(&ys, &(&xs * &xs * &xs).t(), 1e-12);
    let g = vmap(grad(|x: &Tensor| cube(x).sum()))(&xs);
    close(&g, &(&xs * &xs * 3.0), 1e-12);
    // An empty batch runs nothing: the output's shape comes from the shape rule.
    let empty = vmap(cube)(&Tensor::zeros(&[0, 4]).to_f64());
    assert_eq!((empty.shape(), empty.dtype()), (&[0, 4][..], adjoint_core::DType::F64));
}

#[test]
fn an_empty_batch_gives_empty_results() {
    let xs = Tensor::zeros(&[0, 3]).to_f64();
    let y = vmap(|x: &Tensor| {
        (x.exp() * 2.0).sum_axes(&[0], false) + x.matmul(&Tensor::ones(&[3, 2]).to_f64()).sum()
    })(&xs);
    assert_eq!(y.shape(), &[0]);
    let g = vmap(grad(|x: &Tensor| (x * x).sum()))(&xs);
    assert_eq!(g.shape(), &[0, 3]);
}
