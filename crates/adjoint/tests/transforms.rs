//! The transforms: control flow, nesting, custom rules, checkpointing, Params, errors.

use std::collections::BTreeMap;

use adjoint::testing::{check_grads, try_check_grads, Mode, BOTH};
use adjoint::*;

fn s(x: f64) -> Tensor {
    Tensor::scalar(x)
}

fn v(xs: &[f64]) -> Tensor {
    Tensor::from_vec(xs.to_vec(), &[xs.len()])
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs())))
}

#[test]
fn perturbation_confusion_is_avoided() {
    // d/dx [x · d/dy (x + y)] = 1 (the classic test: a confused implementation gives 2).
    let f = |x: &Tensor| {
        let x2 = x.clone();
        let inner = grad(move |y: &Tensor| (&x2 + y).sum())(&s(1.0));
        (x * inner).sum()
    };
    assert_eq!(grad(f)(&s(3.0)).item(), 1.0);
    // The same with forward mode inside reverse and reverse inside forward.
    let f2 = |x: &Tensor| {
        let x2 = x.clone();
        let (_, t) = jvp(move |y: &Tensor| &x2 + y, &s(1.0), &s(1.0));
        x * t
    };
    assert_eq!(grad(f2)(&s(3.0)).item(), 1.0);
    let (_, t) = jvp(|x: &Tensor| grad(|y: &Tensor| x * y)(&s(2.0)), &s(3.0), &s(1.0));
    assert_eq!(t.item(), 1.0);
}

#[test]
fn native_control_flow_differentiates_along_the_taken_path() {
    // Data-dependent loop: halve until below 1, counting; derivative is the product of factors.
    let f = |x: &Tensor| {
        let mut y = x.clone();
        while y.item() > 1.0 {
            y = &y * 0.5;
        }
        y
    };
    assert_eq!(grad(f)(&s(5.0)).item(), 0.125);
    // Branch on a value.
    let g = |x: &Tensor| if x.item() > 0.0 { x.sin() } else { x * x };
    assert!((grad(g)(&s(1.0)).item() - 1f64.cos()).abs() < 1e-12);
    assert_eq!(grad(g)(&s(-2.0)).item(), -4.0);
    // Recursion with early return: x^n by squaring.
    fn power(x: &Tensor, n: u32) -> Tensor {
        if n == 0 {
            return Tensor::scalar(1.0f64);
        }
        let h = power(x, n / 2);
        if n.is_multiple_of(2) {
            &h * &h
        } else {
            &h * &h * x
        }
    }
    assert_eq!(grad(|x: &Tensor| power(x, 7))(&s(2.0)).item(), 7.0 * 64.0);
    // Closures over captured tensors and user enums holding tensors.
    let w = s(3.0);
    #[derive(Clone, Params)]
    enum Act {
        Scale(Tensor),
        Shift { by: Tensor },
        Id,
    }
    let acts = vec![Act::Scale(s(2.0)), Act::Shift { by: s(1.0) }, Act::Id];
    let run = |acts: &Vec<Act>| {
        let mut y = w.clone();
        for a in acts {
            y = match a {
                Act::Scale(k) => &y * k,
                Act::Shift { by } => &y + by,
                Act::Id => y,
            };
        }
        y
    };
    let g = grad(run)(&acts);
    match (&g[0], &g[1]) {
        (Act::Scale(k), Act::Shift { by }) => assert_eq!((k.item(), by.item()), (3.0, 1.0)),
        _ => panic!("gradient lost its structure"),
    }
}

#[test]
fn second_order_compositions_agree() {
    let f = |x: &Tensor| (x.sin() * x.exp()).sum() + (x * x).sum().sqrt();
    let x = v(&[0.3, -0.7, 1.1]);
    let h = hessian(f)(&x);
    let h2 = jacfwd(jacrev(move |x: &Tensor| grad(f)(x)))(&x); // third-order shape check below
    assert_eq!(h2.shape(), &[3, 3, 3]);
    let jr = jacfwd(jacrev(f))(&x);
    let rr = jacrev(jacrev(f))(&x);
    let rf = jacrev(jacfwd(f))(&x);
    assert_eq!(h.shape(), &[3, 3]);
    for other in [&jr, &rr, &rf] {
        assert!(close(&h.to_vec::<f64>(), &other.to_vec::<f64>(), 1e-10));
    }
    // jvp∘grad (hvp) and grad∘jvp agree with the Hessian.
    let d = v(&[1.0, 2.0, -1.0]);
    let hv = hvp(f, &x, &d);
    let dd = d.clone();
    let gj = grad(move |x: &Tensor| jvp(f, x, &dd).1)(&x);
    let hd = h.matmul(&d);
    assert!(close(&hv.to_vec::<f64>(), &hd.to_vec::<f64>(), 1e-10));
    assert!(close(&gj.to_vec::<f64>(), &hd.to_vec::<f64>(), 1e-10));
    // grad∘grad of a scalar function.
    let g2 = grad(|x: &Tensor| grad(|y: &Tensor| (y * y * y).sum())(x).sum())(&s(2.0));
    assert_eq!(g2.item(), 12.0);
}

#[test]
fn third_order_derivative() {
    let d3 = grad(|x: &Tensor| grad(|y: &Tensor| grad(|z: &Tensor| z.sin())(y))(x))(&s(0.5));
    assert!((d3.item() + 0.5f64.cos()).abs() < 1e-12);
}

#[test]
fn jacobians_have_out_then_in_shape() {
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0f64], &[3, 2]);
    let a2 = a.clone();
    let jf = jacfwd(move |x: &Tensor| a2.matmul(x))(&v(&[1.0, 1.0]));
    let jr = jacrev(move |x: &Tensor| a.matmul(x))(&v(&[1.0, 1.0]));
    assert_eq!(jf.shape(), &[3, 2]);
    assert_eq!(jf.to_vec::<f64>(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(jr.to_vec::<f64>(), jf.to_vec::<f64>());
    let j = jacrev(|x: &Tensor| x * 2.0)(&Tensor::ones(&[2, 2]).to_f64());
    assert_eq!(j.shape(), &[2, 2, 2, 2]);
}

#[test]
fn vjp_and_jvp_over_params_structures() {
    let p = (v(&[1.0, 2.0]), s(3.0));
    let (out, pb) = vjp(|p: &(Tensor, Tensor)| (&p.0 * &p.1, p.1.exp()), &p);
    assert_eq!(out.0.to_vec::<f64>(), vec![3.0, 6.0]);
    let g = pb(&(v(&[1.0, 1.0]), s(0.0)));
    assert_eq!(g.0.to_vec::<f64>(), vec![3.0, 3.0]);
    assert_eq!(g.1.item(), 3.0);
    // Calling the pullback twice gives the same result.
    let g2 = pb(&(v(&[1.0, 1.0]), s(0.0)));
    assert_eq!(g2.1.item(), 3.0);
    let (y, t) = jvp(|p: &(Tensor, Tensor)| &p.0 * &p.1, &p, &(v(&[1.0, 0.0]), s(1.0)));
    assert_eq!((y.to_vec::<f64>(), t.to_vec::<f64>()), (vec![3.0, 6.0], vec![4.0, 2.0]));
}

#[derive(Clone, Params)]
struct Layer {
    w: Tensor,
    b: Option<Tensor>,
    #[params(skip)]
    name: String,
}

#[derive(Clone, Params)]
struct Pair(Tensor, #[params(skip)] usize, Vec<Tensor>);

#[derive(Clone, Params)]
struct Net<T> {
    layers: Vec<Layer>,
    extra: BTreeMap<String, T>,
    arr: [Tensor; 2],
    pair: Pair,
}

#[test]
fn params_derive_and_containers() {
    let net = Net {
        layers: vec![
            Layer { w: v(&[1.0, 2.0]), b: Some(s(0.5)), name: "a".into() },
            Layer { w: v(&[3.0]), b: None, name: "b".into() },
        ],
        extra: [("k".to_string(), s(2.0))].into_iter().collect(),
        arr: [s(1.0), s(-1.0)],
        pair: Pair(s(4.0), 7, vec![s(1.0)]),
    };
    assert_eq!(net.num_leaves(), 8);
    let loss = |n: &Net<Tensor>| {
        let mut acc = n.extra["k"].clone() * &n.arr[0] * &n.arr[1];
        for l in &n.layers {
            acc = acc + (&l.w * &l.w).sum();
            if let Some(b) = &l.b {
                acc = acc + b * 3.0;
            }
        }
        acc + &n.pair.0 * &n.pair.2[0]
    };
    let g = grad(loss)(&net);
    assert_eq!(g.layers[0].w.to_vec::<f64>(), vec![2.0, 4.0]);
    assert_eq!(g.layers[0].b.as_ref().unwrap().item(), 3.0);
    assert!(g.layers[1].b.is_none());
    assert_eq!((g.layers[1].name.as_str(), g.pair.1), ("b", 7));
    assert_eq!(g.extra["k"].item(), -1.0);
    assert_eq!((g.arr[0].item(), g.arr[1].item()), (-2.0, 2.0));
    assert_eq!((g.pair.0.item(), g.pair.2[0].item()), (1.0, 4.0));
}

#[test]
fn custom_vjp_is_used_and_works_under_forward_mode() {
    // A deliberately "wrong" rule (gradient 10·ct) proves the custom rule is what runs.
    let f =
        custom_vjp(|x: &Tensor| x * x, |x: &Tensor| (x * x, x.clone()), |_x: &Tensor, ct: &Tensor| ct * 10.0);
    assert_eq!(grad(&f)(&s(3.0)).item(), 10.0);
    // A correct rule for x³ written with differentiable ops: jvp, hessian and grad∘grad work.
    let cube = custom_vjp(
        |x: &Tensor| x * x * x,
        |x: &Tensor| (x * x * x, x.clone()),
        |x: &Tensor, ct: &Tensor| ct * x * x * 3.0,
    );
    let x = s(2.0);
    assert_eq!(jvp(&cube, &x, &s(1.0)).1.item(), 12.0);
    assert_eq!(grad(|x: &Tensor| grad(&cube)(x))(&x).item(), 12.0);
    assert_eq!(hessian(|x: &Tensor| cube(x).sum())(&v(&[2.0])).to_vec::<f64>(), vec![12.0]);
    check_grads(move |x: &Tensor| cube(x), &v(&[0.5, -1.5]), 2, BOTH);
}

#[test]
fn custom_jvp_is_used_in_both_modes() {
    let ste = custom_jvp(|x: &Tensor| x.round(), |x: &Tensor, t: &Tensor| (x.round(), t * 2.0));
    assert_eq!(grad(&ste)(&s(0.3)).item(), 2.0);
    assert_eq!(jvp(&ste, &s(0.3), &s(1.0)).1.item(), 2.0);
    let sq = custom_jvp(|x: &Tensor| x * x, |x: &Tensor, t: &Tensor| (x * x, t * x * 2.0));
    check_grads(move |x: &Tensor| sq(x), &v(&[0.5, -1.5]), 2, BOTH);
}

#[test]
fn checkpoint_matches_and_cuts_tape_memory_over_5x() {
    let steps = 1000;
    let w = Tensor::from_vec(vec![0.999f64; 256], &[256]);
    let step = |x: &Tensor, w: &Tensor| (x * w).sin() + x * 0.5;
    let plain = |x: &Tensor| {
        let mut y = x.clone();
        for _ in 0..steps {
            y = step(&y, &w);
        }
        y.sum()
    };
    let w2 = w.clone();
    let block = checkpoint(move |x: &Tensor| {
        let mut y = x.clone();
        for _ in 0..50 {
            y = step(&y, &w2);
        }
        y
    });
    let ckpt = |x: &Tensor| {
        let mut y = x.clone();
        for _ in 0..steps / 50 {
            y = block(&y);
        }
        y.sum()
    };
    let x = Tensor::from_vec(vec![0.1f64; 256], &[256]);
    memory::reset_peak();
    let g1 = grad(plain)(&x);
    let peak_plain = memory::peak_residual_bytes();
    memory::reset_peak();
    let g2 = grad(ckpt)(&x);
    let peak_ckpt = memory::peak_residual_bytes();
    assert!(close(&g1.to_vec::<f64>(), &g2.to_vec::<f64>(), 1e-12));
    let ratio = peak_plain as f64 / peak_ckpt as f64;
    println!("tape peak: plain {peak_plain} B, checkpointed {peak_ckpt} B, ratio {ratio:.1}x");
    assert!(ratio >= 5.0, "checkpoint saved only {ratio:.2}x ({peak_plain} vs {peak_ckpt} bytes)");
    assert_eq!(memory::live_residual_bytes(), 0);
}

#[test]
fn stop_gradient_and_aux() {
    let f = |x: &Tensor| {
        let y = x * x;
        ((&y * stop_gradient(x)).sum(), y)
    };
    let ((loss, aux), g) = value_and_grad_with_aux(f)(&s(3.0));
    assert_eq!((loss.item(), aux.item(), g.item()), (27.0, 9.0, 18.0));
    assert!(!aux.is_tracer());
}

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

#[test]
fn escaped_tracer_is_a_clear_error() {
    let msg = panic_message(|| {
        let leak = std::cell::RefCell::new(None);
        let _ = grad(|x: &Tensor| {
            *leak.borrow_mut() = Some(x.clone());
            x.sum()
        })(&s(1.0));
        let t = leak.borrow().clone().unwrap();
        let _ = &t + &s(1.0);
    });
    let line = line!() - 2;
    assert!(msg.contains("grad/vjp") && msg.contains("after its transform returned"), "{msg}");
    assert!(msg.contains(&format!("tests/transforms.rs:{line}:")), "caller location missing: {msg}");
}

#[test]
fn grad_of_non_scalar_and_of_integers_are_clear_errors() {
    // Both name the line that built the `grad` (not a line inside adjoint).
    let msg = panic_message(|| {
        let _ = grad(|x: &Tensor| x * 2.0)(&v(&[1.0, 2.0]));
    });
    let line = line!() - 2;
    assert!(msg.contains("scalar output") && msg.contains("[2]"), "{msg}");
    assert!(msg.contains(&format!("tests/transforms.rs:{line}:")), "caller location missing: {msg}");
    let msg = panic_message(|| {
        let _ = grad(|x: &Tensor| x.cast(DType::F64).sum())(&Tensor::from_vec(vec![1i64, 2], &[2]));
    });
    let line = line!() - 2;
    assert!(msg.contains("int64") && msg.contains("only"), "{msg}");
    assert!(msg.contains(&format!("tests/transforms.rs:{line}:")), "caller location missing: {msg}");
}

#[test]
fn misuse_names_op_shapes_and_line() {
    let msg = panic_message(|| {
        let _ = v(&[1.0, 2.0]) + v(&[1.0, 2.0, 3.0]);
    });
    let line = line!() - 2;
    assert!(
        msg.contains("add")
            && msg.contains("[2]")
            && msg.contains("[3]")
            && msg.contains(&format!("tests/transforms.rs:{line}:")),
        "{msg}"
    );
    let msg = panic_message(|| {
        let _ = Tensor::ones(&[2, 3]).matmul(&Tensor::ones(&[2, 3]));
    });
    assert!(msg.contains("matmul") && msg.contains("[2, 3]"), "{msg}");
    let msg = panic_message(|| {
        let _ = Tensor::ones(&[2, 3]).sum_axes(&[2], false);
    });
    assert!(msg.contains("sum_axes") && msg.contains("axis 2"), "{msg}");
}

#[test]
fn stable_composites_stay_finite_in_f32_at_1e4() {
    let x = Tensor::from_vec(vec![-1e4f32, -1.0, 0.0, 1.0, 1e4], &[5]);
    let finite = |t: &Tensor| t.to_vec::<f32>().iter().all(|v| v.is_finite());
    for (name, f) in [
        ("logsumexp", Box::new(|x: &Tensor| x.logsumexp(&[0], false)) as Box<dyn Fn(&Tensor) -> Tensor>),
        ("log_softmax", Box::new(|x: &Tensor| x.log_softmax(0).sum())),
        ("softplus", Box::new(|x: &Tensor| x.softplus().sum())),
        ("sigmoid", Box::new(|x: &Tensor| x.sigmoid().sum())),
        ("log1p", Box::new(|x: &Tensor| (x.abs()).log1p().sum())),
        ("xlogy", Box::new(|x: &Tensor| x.abs().xlogy(&x.abs()).sum())),
    ] {
        let (val, g) = value_and_grad(&f)(&x);
        assert!(val.item().is_finite(), "{name} value not finite");
        assert!(finite(&g), "{name} gradient not finite: {:?}", g.to_vec::<f32>());
    }
}

#[test]
fn gradient_accumulates_over_reuse_and_zeros_for_unused() {
    let g = grad(|p: &(Tensor, Tensor)| (&p.0 * &p.0 + &p.0).sum())(&(s(2.0), s(5.0)));
    assert_eq!((g.0.item(), g.1.item()), (5.0, 0.0));
    // A constant function: all-zero gradient of the right shape.
    let g = grad(|_x: &Tensor| Tensor::scalar(1.0f64))(&v(&[1.0, 2.0]));
    assert_eq!(g.to_vec::<f64>(), vec![0.0, 0.0]);
}

#[test]
fn check_grads_catches_wrong_rules_in_each_mode_and_order() {
    let x = v(&[0.3, 0.7]);
    // A reverse rule off by 1%: caught in reverse mode, and in forward mode (which goes
    // through the same rule).
    let wrong_vjp = custom_vjp(
        |x: &Tensor| x.sin(),
        |x: &Tensor| (x.sin(), x.clone()),
        |x: &Tensor, c: &Tensor| c * x.cos() * 1.01,
    );
    let f = std::rc::Rc::new(wrong_vjp);
    let (f1, f2) = (f.clone(), f.clone());
    assert!(try_check_grads(move |x: &Tensor| f1(x), &x, 1, &[Mode::Rev], 0).is_err());
    assert!(try_check_grads(move |x: &Tensor| f2(x), &x, 1, &[Mode::Fwd], 0).is_err());
    // A forward rule off by 1%: caught in forward mode.
    let wrong_jvp = custom_jvp(|x: &Tensor| x.exp(), |x: &Tensor, t: &Tensor| (x.exp(), t * x.exp() * 0.99));
    let err = try_check_grads(move |x: &Tensor| wrong_jvp(x), &x, 1, &[Mode::Fwd], 0).unwrap_err();
    assert!(err.to_string().contains("finite differences"), "{err}");
    // Right first derivative, wrong second (the rule hides x from differentiation): order 1
    // passes, order 2 fails in both modes.
    let frozen = std::rc::Rc::new(custom_vjp(
        |x: &Tensor| x.sin(),
        |x: &Tensor| (x.sin(), x.clone()),
        |x: &Tensor, c: &Tensor| c * stop_gradient(x).cos(),
    ));
    let (a, b, c) = (frozen.clone(), frozen.clone(), frozen.clone());
    assert!(try_check_grads(move |x: &Tensor| a(x), &x, 1, BOTH, 0).is_ok());
    assert!(try_check_grads(move |x: &Tensor| b(x), &x, 2, &[Mode::Rev], 0).is_err());
    assert!(try_check_grads(move |x: &Tensor| c(x), &x, 2, &[Mode::Fwd], 0).is_err());
}
