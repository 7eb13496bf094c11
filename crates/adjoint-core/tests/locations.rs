//! Every transform's misuse panics name the user's line: where the transform was built (for
//! the builders `grad`, `value_and_grad(_with_aux)`, `jacfwd`, `jacrev`, `hessian`, `vmap`) or
//! called (`vjp`, `jvp`, `hvp`), never a line inside adjoint; and they name the transform the
//! user called, not the one it is made of (`hessian`, not `grad` or `jvp`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use adjoint_core::{
    grad, hessian, hvp, jacfwd, jacrev, jvp, value_and_grad, value_and_grad_with_aux, vjp, vmap, DType,
    Tensor,
};

fn message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("should panic");
    err.downcast_ref::<String>()
        .cloned()
        .unwrap_or_else(|| err.downcast_ref::<&str>().unwrap_or(&"").to_string())
}

fn at(line: u32) -> String {
    format!("locations.rs:{line}:")
}

fn ints() -> Tensor {
    Tensor::from_vec(vec![1i64, 2], &[2])
}

fn vec2() -> Tensor {
    Tensor::from_vec(vec![1.0f64, 2.0], &[2])
}

#[test]
fn builders_report_the_line_they_were_built_at() {
    let line = line!() + 1;
    let g = grad(|x: &Tensor| x * 2.0);
    let msg = message(|| drop(g(&vec2())));
    assert!(msg.contains("scalar output") && msg.contains(&at(line)), "{msg}");

    let line = line!() + 1;
    let g = value_and_grad(|x: &Tensor| x.cast(DType::F64).sum());
    let msg = message(|| drop(g(&ints())));
    assert!(msg.contains("int64") && msg.contains(&at(line)), "{msg}");

    let line = line!() + 1;
    let g = value_and_grad_with_aux(|x: &Tensor| (x * 1.0, ()));
    let msg = message(|| drop(g(&vec2())));
    assert!(msg.contains("value_and_grad_with_aux") && msg.contains(&at(line)), "{msg}");

    let line = line!() + 1;
    let j = jacfwd(|x: &Tensor| x.cast(DType::F64) * 2.0);
    let msg = message(|| drop(j(&ints())));
    assert!(msg.contains("adjoint: jacfwd: cannot differentiate") && msg.contains(&at(line)), "{msg}");

    let line = line!() + 1;
    let j = jacrev(|x: &Tensor| x.cast(DType::F64) * 2.0);
    let msg = message(|| drop(j(&ints())));
    assert!(msg.contains("adjoint: jacrev: cannot differentiate") && msg.contains(&at(line)), "{msg}");

    let line = line!() + 1;
    let h = hessian(|x: &Tensor| x * x);
    let msg = message(|| drop(h(&vec2())));
    assert!(
        msg.contains("hessian needs a function with a scalar output") && msg.contains(&at(line)),
        "{msg}"
    );

    let line = line!() + 1;
    let h = hessian(|x: &Tensor| x.cast(DType::F64).sum());
    let msg = message(|| drop(h(&ints())));
    assert!(msg.contains("adjoint: hessian: cannot differentiate") && msg.contains(&at(line)), "{msg}");

    let line = line!() + 1;
    let m = vmap(|x: &Tensor| x.sum());
    let msg = message(|| drop(m(&Tensor::scalar(1.0f64))));
    assert!(msg.contains("vmap") && msg.contains(&at(line)), "{msg}");
}

#[test]
fn direct_calls_report_the_line_they_were_called_at() {
    let line = line!() + 1;
    let msg = message(|| drop(vjp(|x: &Tensor| x * 2.0, &ints())));
    assert!(msg.contains("vjp") && msg.contains(&at(line)), "{msg}");

    let (_, pb) = vjp(|x: &Tensor| x * 2.0, &vec2());
    let line = line!() - 1;
    let msg = message(|| drop(pb(&Tensor::ones(&[3]).to_f64())));
    assert!(msg.contains("cotangent shape") && msg.contains(&at(line)), "{msg}");

    let line = line!() + 1;
    let msg = message(|| drop(jvp(|x: &Tensor| x * 2.0, &vec2(), &Tensor::ones(&[3]).to_f64())));
    assert!(msg.contains("tangent 0 has shape [3]") && msg.contains(&at(line)), "{msg}");

    let line = line!() + 1;
    let msg = message(|| drop(hvp(|x: &Tensor| x * x, &vec2(), &vec2())));
    assert!(msg.contains("hvp needs a function with a scalar output") && msg.contains(&at(line)), "{msg}");
}
