//! Custom rules as primitives: how often the user's functions run, what checkpointing keeps,
//! second order through custom rules, integer inputs, and the refusal of closures over a
//! value traced by the differentiating transform.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use adjoint_core::testing::{check_grads, BOTH};
use adjoint_core::{checkpoint, custom_jvp, custom_vjp, grad, hessian, jvp, memory, vmap, DType, Tensor};

fn x3() -> Tensor {
    Tensor::from_vec(vec![0.3f64, -1.2, 0.7], &[3])
}

#[test]
fn reverse_mode_runs_fwd_once_and_never_f() {
    let (nf, nfwd) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (cf, cfwd) = (nf.clone(), nfwd.clone());
    let g = custom_vjp(
        move |x: &Tensor| {
            cf.set(cf.get() + 1);
            x.sin()
        },
        move |x: &Tensor| {
            cfwd.set(cfwd.get() + 1);
            (x.sin(), x.clone())
        },
        |x: &Tensor, c: &Tensor| c * x.cos(),
    );
    let df = grad(|x: &Tensor| g(x).sum());
    let x = x3();
    df(&x); // the first call per input signature also finds the output shapes
            // That search's output is not kept past the call: an eager call on the same input runs f.
    let before = nf.get();
    g(&x);
    assert_eq!(nf.get() - before, 1);
    let (f0, fwd0) = (nf.get(), nfwd.get());
    let d = df(&x3());
    assert_eq!((nf.get() - f0, nfwd.get() - fwd0), (0, 1), "one fwd per gradient, no f");
    assert!((d.to_vec::<f64>()[1] - (-1.2f64).cos()).abs() < 1e-15);
    // Eagerly, or with no traced input, the function is just called.
    let f1 = nf.get();
    g(&x3());
    assert_eq!(nf.get() - f1, 1);
}

/// A custom VJP whose `fwd` calls the function itself (every solver's pattern): the output the
/// first call computed to find the shapes is the forward value, not computed again; and it is
/// freed once that call returns (an eager call afterwards runs the function).
#[test]
fn the_shape_search_output_serves_the_forward_pass_once() {
    type Handle = Rc<std::cell::OnceCell<Rc<dyn Fn(&Tensor) -> Tensor>>>;
    let nf = Rc::new(Cell::new(0));
    let cf = nf.clone();
    let me: Handle = Rc::new(std::cell::OnceCell::new());
    let me2 = me.clone();
    let g: Rc<dyn Fn(&Tensor) -> Tensor> = Rc::new(custom_vjp(
        move |x: &Tensor| {
            cf.set(cf.get() + 1);
            x.sin()
        },
        move |x: &Tensor| {
            let y = me2.get().expect("set below")(x);
            (y, x.clone())
        },
        |x: &Tensor, c: &Tensor| c * x.cos(),
    ));
    me.set(g.clone()).ok().expect("set once");
    let df = {
        let g = g.clone();
        grad(move |x: &Tensor| g(x).sum())
    };
    let x = x3();
    let d = df(&x);
    assert_eq!(nf.get(), 1, "the shape search's output is the forward value");
    assert!((d.to_vec::<f64>()[1] - (-1.2f64).cos()).abs() < 1e-15);
    g(&x);
    assert_eq!(nf.get(), 2, "an eager call after the gradient runs the function");
    // Same signature, new values: the function runs for them (once, through fwd).
    let d2 = df(&(x3() * 2.0));
    assert_eq!(nf.get(), 3);
    assert!((d2.to_vec::<f64>()[1] - (-2.4f64).cos()).abs() < 1e-15);
}

#[test]
fn custom_rules_pass_check_grads_at_order_two() {
    // The rules agree with the true derivative, so finite differences check them.
    let softplus = custom_vjp(
        |x: &Tensor| x.softplus(),
        |x: &Tensor| (x.softplus(), x.clone()),
        |x: &Tensor, c: &Tensor| c * x.sigmoid(),
    );
    check_grads(move |x: &Tensor| softplus(x) * x, &x3(), 2, BOTH);
    let cube =
        Rc::new(custom_jvp(|x: &Tensor| x * x * x, |x: &Tensor, t: &Tensor| (x * x * x, x * x * t * 3.0)));
    let c2 = cube.clone();
    check_grads(move |x: &Tensor| c2(&x.sin()), &x3(), 2, BOTH);
    let block = checkpoint(|x: &Tensor| (x.exp() * x).tanh());
    check_grads(move |x: &Tensor| block(x) * x, &x3(), 2, BOTH);
    // The Hessian through a custom JVP follows the rule (here the true one).
    let h = hessian(|x: &Tensor| cube(x).sum())(&x3());
    let expect: Vec<f64> = x3().to_vec::<f64>().iter().map(|v| 6.0 * v).collect();
    for (i, e) in expect.iter().enumerate() {
        assert!((h.to_vec::<f64>()[i * 3 + i] - e).abs() < 1e-12);
    }
}

#[test]
fn checkpoint_keeps_only_its_inputs_and_takes_integer_leaves() {
    let x = Tensor::from_vec((0..4096).map(|i| (i as f64 * 0.001).sin()).collect::<Vec<_>>(), &[4096]);
    let body = |x: &Tensor| x.sin().exp().cos().tanh().sin();
    let block = checkpoint(body);
    // Residuals alive when the forward pass ends: the checkpoint node holds its input only.
    let held = |f: &dyn Fn(&Tensor) -> Tensor| {
        let live = Cell::new(0);
        grad(|x: &Tensor| {
            let y = f(x).sum();
            live.set(memory::live_residual_bytes());
            y
        })(&x);
        live.get()
    };
    let (plain, remat) = (held(&body), held(&|x: &Tensor| block(x)));
    assert_eq!(remat, 4096 * 8, "checkpointed: its input only (plain: {plain})");
    assert!(plain >= 4 * 4096 * 8, "plain {plain}");
    // Integer leaves are constants to every rule.
    let shift = checkpoint(|p: &(Tensor, Tensor)| (&p.0 * p.1.cast(DType::F64)).exp());
    let k = Tensor::from_vec(vec![2i64, 0, 1], &[3]);
    let g = grad(|x: &Tensor| shift(&(x.clone(), k.clone())).sum())(&x3());
    let (_, t) = jvp(|x: &Tensor| shift(&(x.clone(), k.clone())), &x3(), &Tensor::ones(&[3]).to_f64());
    for (i, k) in [2.0, 0.0, 1.0].into_iter().enumerate() {
        let e = k * (x3().to_vec::<f64>()[i] * k).exp();
        assert!((g.to_vec::<f64>()[i] - e).abs() < 1e-12 && (t.to_vec::<f64>()[i] - e).abs() < 1e-12);
    }
    let gv = vmap(grad(|x: &Tensor| shift(&(x.clone(), k.clone())).sum()))(&Tensor::ones(&[2, 3]).to_f64());
    assert_eq!(gv.shape(), &[2, 3]);
}

#[test]
fn a_custom_function_closing_over_a_traced_value_is_refused() {
    let w = Tensor::scalar(2.0f64);
    let err = catch_unwind(AssertUnwindSafe(|| {
        grad(|w: &Tensor| {
            // Custom functions are `'static` (a staged program may keep them): they capture
            // clones of the traced value.
            let (w1, w2) = (w.clone(), w.clone());
            let f = custom_vjp(
                move |x: &Tensor| x * &w1,
                move |x: &Tensor| (x * &w2, x.clone()),
                |_x: &Tensor, c: &Tensor| c.clone(),
            );
            f(&(w * 1.0)).sum()
        })(&w)
    }))
    .expect_err("should panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("custom_vjp") && msg.contains("closes over"), "{msg}");
}
