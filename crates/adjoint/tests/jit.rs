//! `jit` through the facade: the prelude has it, and it composes with the other transforms.

use adjoint::prelude::*;

#[derive(Clone, Params)]
struct Mlp {
    w: Tensor,
    b: Tensor,
}

#[test]
fn a_jitted_training_step_matches_eager() {
    let x = Tensor::from_vec(vec![0.5f64, -1.0, 2.0, 0.25, 1.5, -0.5], &[3, 2]);
    let m = Mlp {
        w: Tensor::from_vec(vec![0.1f64, -0.2, 0.3, 0.4], &[2, 2]),
        b: Tensor::from_vec(vec![0.0f64, 0.1], &[2]),
    };
    let loss = |m: &Mlp| (x.matmul(&m.w) + &m.b).tanh().square().mean();
    let step = jit(value_and_grad(loss));
    let line = line!() - 1;
    for _ in 0..3 {
        let ((l, g), (l0, g0)) = (step(&m), value_and_grad(loss)(&m));
        assert_eq!(l.item().to_bits(), l0.item().to_bits());
        assert_eq!(g.w.to_vec::<f64>(), g0.w.to_vec::<f64>());
        assert_eq!(g.b.to_vec::<f64>(), g0.b.to_vec::<f64>());
    }
    let s =
        jit_stats().into_iter().find(|s| s.location.line() == line && s.location.file() == file!()).unwrap();
    assert_eq!((s.traces, s.hits), (1, 2));
    assert!(make_ir(loss)(&m).to_string().contains("matmul"));
}
