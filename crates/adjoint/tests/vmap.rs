//! `vmap` through the facade's prelude: per-example gradients of a derived model, and an
//! ensemble step, each against a loop.

use adjoint::prelude::*;

#[derive(Clone, Params)]
struct Lin {
    w: Tensor,
    b: Tensor,
}

fn loss(m: &Lin, x: &Tensor, y: &Tensor) -> Tensor {
    let d = (x.matmul(&m.w) + &m.b).tanh() - y;
    (&d * &d).sum()
}

fn t(v: &[f64], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s)
}

#[test]
fn per_example_gradients_match_a_loop() {
    let m = Lin { w: t(&[0.1, -0.2, 0.3, 0.4, -0.5, 0.6], &[3, 2]), b: t(&[0.05, -0.05], &[2]) };
    let xs = t(&[1.0, 2.0, 3.0, -1.0, 0.5, 0.0, 0.2, 0.2, -0.7, 1.5, -2.0, 0.1], &[4, 3]);
    let ys = t(&[0.5, -0.5, 0.1, 0.2, -0.3, 0.0, 0.9, 0.4], &[4, 2]);
    let per = vmap_axes(
        |a: &(Lin, Tensor, Tensor)| grad(|m: &Lin| loss(m, &a.1, &a.2))(&a.0),
        [None, Some(0), Some(0)],
        0,
    )(&(m.clone(), xs.clone(), ys.clone()));
    assert_eq!(per.w.shape(), &[4, 3, 2]);
    for i in 0..4 {
        let g = grad(|m: &Lin| loss(m, &xs.narrow(0, i, 1).squeeze(0), &ys.narrow(0, i, 1).squeeze(0)))(&m);
        let (a, b) = (per.w.narrow(0, i, 1).squeeze(0).to_vec::<f64>(), g.w.to_vec::<f64>());
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-12, "example {i}: {p} vs {q}");
        }
        let (a, b) = (per.b.narrow(0, i, 1).squeeze(0).to_vec::<f64>(), g.b.to_vec::<f64>());
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-12, "example {i}: {p} vs {q}");
        }
    }
}

#[test]
fn ensemble_step_matches_each_model_alone() {
    // Two models stacked on axis 0; shared data.
    let ens = Lin {
        w: t(&[0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 1.0, 0.0, 0.0, 1.0, 0.5, 0.5], &[2, 3, 2]),
        b: t(&[0.0, 0.1, 0.2, 0.3], &[2, 2]),
    };
    let x = t(&[1.0, 2.0, 3.0], &[3]);
    let y = t(&[0.5, -0.5], &[2]);
    let (losses, g) = vmap(|m: &Lin| value_and_grad(|m: &Lin| loss(m, &x, &y))(m))(&ens);
    for k in 0..2 {
        let mk = Lin { w: ens.w.narrow(0, k, 1).squeeze(0), b: ens.b.narrow(0, k, 1).squeeze(0) };
        let (l, gk) = value_and_grad(|m: &Lin| loss(m, &x, &y))(&mk);
        assert!((losses.narrow(0, k, 1).item() - l.item()).abs() < 1e-12);
        let (a, b) = (g.w.narrow(0, k, 1).squeeze(0).to_vec::<f64>(), gk.w.to_vec::<f64>());
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-12, "model {k}: {p} vs {q}");
        }
    }
}

#[test]
fn reading_a_value_inside_vmap_is_an_error_the_facade_can_name() {
    // `try_value` inside `vmap` returns an error a facade user can name and inspect; outside it
    // returns the array.
    let seen = std::cell::RefCell::new(None);
    let xs = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let _ = vmap(|x: &Tensor| {
        let e: Result<&adjoint::Array, adjoint::ValueError> = x.try_value();
        *seen.borrow_mut() = e.err();
        x * 2.0
    })(&xs);
    let e = seen.into_inner().expect("try_value inside vmap should fail");
    assert_eq!((e.shape.as_slice(), e.dtype), (&[2usize][..], DType::F64));
    assert!(e.to_string().contains("inside `vmap`") && e.to_string().contains("[2]"), "{e}");
    assert_eq!(xs.try_value().map(|a| a.shape().to_vec()), Ok(vec![2, 2]));
}
