//! `jit` and `make_ir` as a user sees them: the printed program, the panic on reading a staged
//! value, the trace/hit counters, and compositions the tables do not cover (`hessian`,
//! `jit(vmap(f))`, custom rules, closures over tracers of an enclosing transform, nesting).

use adjoint_core::{
    checkpoint, custom_jvp, custom_vjp, grad, hessian, jit, jit_stats, jvp, make_ir, value_and_grad, vmap,
    Params, Tensor,
};

fn v(x: &[f64]) -> Tensor {
    Tensor::from_slice(x, &[x.len()])
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec::<f64>().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn make_ir_prints_a_readable_program() {
    let c = v(&[1.0, 2.0, 3.0]);
    let ir = make_ir(move |x: &Tensor| ((x * &c).exp().sum_axes(&[0], false), x.sin()))(&v(&[0.0; 3]));
    assert_eq!(
        ir.to_string(),
        "{ lambda b:f64[3]=[1, 2, 3] ; a:f64[3]. let\n    \
         c:f64[3] = mul a b\n    \
         d:f64[3] = exp c\n    \
         e:f64[] = reduce_sum[axes: [0], keepdim: false] d\n    \
         f:f64[3] = sin a\n  \
         in (e, f) }"
    );
    ir.check().unwrap();
}

#[test]
fn make_ir_of_a_gradient_stages_the_backward_pass() {
    let ir = make_ir(grad(|x: &Tensor| (x.sin() * x).sum()))(&v(&[0.5, 1.0]));
    let names: Vec<&str> = ir.eqns.iter().map(|e| e.prim.name()).collect();
    assert!(names.contains(&"sin") && names.contains(&"cos"), "{ir}");
    ir.check().unwrap();
}

#[test]
#[should_panic(expected = "adjoint: item: cannot read the value of a tensor inside `jit`")]
fn reading_a_staged_value_panics_naming_the_op() {
    jit(|x: &Tensor| if x.sum().item() > 0.0 { x.clone() } else { -x })(&v(&[1.0]));
}

#[test]
fn the_panic_names_the_line_and_the_way_out() {
    let line = line!() + 1;
    let f = jit(|x: &Tensor| Tensor::scalar(x.to_vec::<f64>()[0]));
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&v(&[1.0])))).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("adjoint: to_vec:") && msg.contains(&format!("tests/jit.rs:{line}:")), "{msg}");
    assert!(msg.contains("cond") && msg.contains("close over"), "{msg}");
}

#[test]
fn jit_stats_counts_traces_and_hits() {
    let f = jit(|x: &Tensor| x * 2.0 + 1.0);
    let line = line!() - 1;
    let stats = || {
        jit_stats().into_iter().find(|s| s.location.line() == line && s.location.file() == file!()).unwrap()
    };
    assert_eq!((stats().traces, stats().hits), (0, 0));
    f(&v(&[1.0, 2.0]));
    assert_eq!((stats().traces, stats().hits), (1, 0));
    f(&v(&[3.0, 4.0]));
    f(&v(&[5.0, 6.0]));
    assert_eq!((stats().traces, stats().hits), (1, 2));
    // A new shape, a new dtype: traced again; the old signature still hits.
    f(&v(&[1.0, 2.0, 3.0]));
    f(&Tensor::from_slice(&[1.0f32, 2.0], &[2]));
    f(&v(&[7.0, 8.0]));
    assert_eq!((stats().traces, stats().hits), (3, 3));
}

#[test]
fn a_new_tree_structure_is_traced_again() {
    let f = jit(|p: &Vec<Tensor>| p.iter().fold(Tensor::scalar(0.0f64), |a, x| a + x.sum()));
    let line = line!() - 1;
    assert_eq!(f(&vec![v(&[1.0])]).item(), 1.0);
    assert_eq!(f(&vec![v(&[1.0]), v(&[2.0])]).item(), 3.0);
    let s =
        jit_stats().into_iter().find(|s| s.location.line() == line && s.location.file() == file!()).unwrap();
    assert_eq!((s.traces, s.hits), (2, 0));
}

#[test]
fn hessian_and_value_and_grad_of_a_jitted_function() {
    let f = |x: &Tensor| (x.sin() * x * x).sum();
    let x = v(&[0.3, -1.2, 2.0]);
    assert_eq!(bits(&hessian(jit(f))(&x).flatten()), bits(&hessian(f)(&x).flatten()));
    assert_eq!(bits(&jit(hessian(f))(&x).flatten()), bits(&hessian(f)(&x).flatten()));
    let (y, g) = jit(value_and_grad(f))(&x);
    let (y0, g0) = value_and_grad(f)(&x);
    assert_eq!((bits(&y), bits(&g)), (bits(&y0), bits(&g0)));
}

#[test]
fn jit_of_vmap_and_vmap_of_jit() {
    let f = |x: &Tensor| (x.exp() * x).sum();
    let xs = Tensor::from_slice(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], &[2, 3]);
    let want = bits(&vmap(f)(&xs));
    assert_eq!(bits(&jit(vmap(f))(&xs)), want);
    assert_eq!(bits(&vmap(jit(f))(&xs)), want);
    assert_eq!(bits(&jit(vmap(grad(f)))(&xs).flatten()), bits(&vmap(grad(f))(&xs).flatten()));
}

#[test]
fn custom_rules_and_checkpoint_are_replayed_through_their_primitive() {
    // A custom VJP whose rule differs from the true derivative: grad∘jit must follow the rule.
    let f = custom_vjp(
        |x: &Tensor| x.sin(),
        |x: &Tensor| (x.sin(), x.clone()),
        |_x: &Tensor, ct: &Tensor| ct * 10.0,
    );
    let x = v(&[0.5, 1.0]);
    let loss = |x: &Tensor| f(x).sum();
    assert_eq!(grad(jit(loss))(&x).to_vec::<f64>(), vec![10.0, 10.0]);
    assert_eq!(jit(grad(loss))(&x).to_vec::<f64>(), vec![10.0, 10.0]);
    assert_eq!(bits(&jit(loss)(&x)), bits(&loss(&x)));
    let ir = make_ir(loss)(&x);
    assert!(ir.eqns.iter().any(|e| e.prim.name() == "custom_vjp"), "{ir}");

    let ste = custom_jvp(|x: &Tensor| x.round(), |x: &Tensor, t: &Tensor| (x.round(), t * 2.0));
    let l2 = |x: &Tensor| ste(x).sum();
    assert_eq!(grad(jit(l2))(&x).to_vec::<f64>(), vec![2.0, 2.0]);
    assert_eq!(jvp(jit(l2), &x, &v(&[1.0, 1.0])).1.item(), 4.0);

    let block = checkpoint(|x: &Tensor| (x.exp() * x).tanh());
    let l3 = |x: &Tensor| block(x).sum();
    assert_eq!(bits(&grad(jit(l3))(&x)), bits(&grad(l3)(&x)));
    assert_eq!(bits(&jit(grad(l3))(&x)), bits(&grad(l3)(&x)));
}

#[test]
fn a_closure_over_a_tracer_of_an_enclosing_transform_keeps_its_derivative() {
    // d/dy of jit(x ↦ x·y)(2) at y = 3, with y captured (a grad tracer) rather than passed in.
    let g = grad(|y: &Tensor| {
        let yc = y.clone();
        jit(move |x: &Tensor| x * &yc)(&Tensor::scalar(2.0f64))
    })(&Tensor::scalar(3.0f64));
    assert_eq!(g.item(), 2.0);
}

#[test]
fn nested_jit_inlines_the_inner_program() {
    let inner = jit(|x: &Tensor| x.sin() * 2.0);
    let outer = jit(|x: &Tensor| inner(x).exp());
    let x = v(&[0.25, 0.5]);
    assert_eq!(bits(&outer(&x)), bits(&((x.sin() * 2.0).exp())));
    let ir = make_ir(|x: &Tensor| inner(x).exp())(&x);
    assert_eq!(ir.eqns.iter().map(|e| e.prim.name()).collect::<Vec<_>>(), ["sin", "mul", "exp"], "{ir}");
}

#[derive(Clone, Params)]
#[params(crate = adjoint_core)]
struct Model {
    w: Tensor,
    b: Option<Tensor>,
}

#[test]
fn structured_inputs_and_outputs() {
    let m = Model { w: v(&[1.0, 2.0]), b: Some(Tensor::scalar(0.5f64)) };
    let f = |m: &Model| (&m.w * 3.0 + m.b.as_ref().unwrap()).sum();
    let gj = jit(grad(f))(&m);
    let g = grad(f)(&m);
    assert_eq!((bits(&gj.w), bits(gj.b.as_ref().unwrap())), (bits(&g.w), bits(g.b.as_ref().unwrap())));
}

#[test]
fn outputs_may_be_inputs_or_constants() {
    let c = Tensor::scalar(4.0f64);
    let f = jit(move |x: &Tensor| (x.clone(), c.clone(), x * 2.0));
    let (a, b, d) = f(&Tensor::scalar(1.5f64));
    assert_eq!((a.item(), b.item(), d.item()), (1.5, 4.0, 3.0));
}

#[test]
fn many_signatures_keep_working_past_the_retrace_warning() {
    // Each new length is a new signature: traced every time (a warning is printed once, past
    // `RETRACE_WARNING` traces), and every result still right.
    let f = jit(|x: &Tensor| x.sum());
    let line = line!() - 1;
    let n = adjoint_core::jit::RETRACE_WARNING + 3;
    for len in 1..=n {
        assert_eq!(f(&Tensor::ones(&[len])).item(), len as f64);
    }
    let s =
        jit_stats().into_iter().find(|s| s.location.line() == line && s.location.file() == file!()).unwrap();
    assert_eq!((s.traces, s.hits), (n, 0));
}
