//! Dense linear algebra: values against NumPy/SciPy (fixture made by
//! `tests/fixtures/linalg_reference.py`), derivatives by `check_grads` (order 2, forward and
//! reverse) in f64, `vmap` against a loop, broadcasting, and misuse messages.

use adjoint_core::testing::{check_grads, BOTH};
use adjoint_core::{grad, vmap, vmap_axes, Tensor};
use adjoint_solvers::linalg::{cho_solve, cholesky, det, inv, slogdet, solve, triangular_solve};

fn mat(n: usize, seed: f64) -> Tensor {
    let v: Vec<f64> = (0..n * n)
        .map(|k| {
            let (i, j) = ((k / n) as f64, (k % n) as f64);
            (seed + 1.3 * i + 0.7 * j).sin() + if k / n == k % n { n as f64 } else { 0.0 }
        })
        .collect();
    Tensor::from_vec(v, &[n, n])
}

fn rhs(n: usize, k: usize, seed: f64) -> Tensor {
    let v: Vec<f64> =
        (0..n * k).map(|q| (seed + 0.9 * (q / k) as f64 - 0.4 * (q % k) as f64).cos()).collect();
    Tensor::from_vec(v, &[n, k])
}

fn spd(a: &Tensor) -> Tensor {
    let n = a.shape()[0];
    a.matmul(&a.t()) + Tensor::eye(n, a.dtype()) * n as f64
}

fn tril(a: &Tensor) -> Tensor {
    let n = a.shape()[0];
    let m: Vec<f64> = (0..n * n).map(|k| if k % n <= k / n { 1.0 } else { 0.0 }).collect();
    a * Tensor::from_vec(m, &[n, n])
}

fn close(got: &Tensor, want: &[f64], tol: f64, what: &str) {
    let g = got.to_vec::<f64>();
    assert_eq!(g.len(), want.len(), "{what}");
    for (x, y) in g.iter().zip(want) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}: {g:?} vs {want:?}");
    }
}

fn nums(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn values_match_numpy_and_scipy() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/linalg_reference.json"))
            .unwrap();
    let refs: serde_json::Value = serde_json::from_str(&text).unwrap();
    for n in [1usize, 3, 5] {
        let r = &refs[n.to_string()];
        let (a, b) = (mat(n, 0.5), rhs(n, 2, 1.5));
        let s = spd(&a);
        close(&solve(&a, &b), &nums(&r["solve"]), 1e-12, "solve");
        close(&cholesky(&s), &nums(&r["cholesky"]), 1e-12, "cholesky");
        close(
            &triangular_solve(&tril(&a), &b, true, true),
            &nums(&r["triangular_lower_t"]),
            1e-12,
            "tri lower T",
        );
        close(
            &triangular_solve(&a, &b, false, false),
            &nums(&r["triangular_upper"]),
            1e-12,
            "tri upper (reads the upper triangle only)",
        );
        close(&cho_solve(&cholesky(&s), &b), &nums(&r["cho_solve"]), 1e-12, "cho_solve");
        close(&inv(&a), &nums(&r["inv"]), 1e-12, "inv");
        close(&det(&a), &[r["det"].as_f64().unwrap()], 1e-12, "det");
        let (sg, l) = slogdet(&a);
        close(&sg, &[r["sign"].as_f64().unwrap()], 0.0, "sign");
        close(&l, &[r["logabsdet"].as_f64().unwrap()], 1e-12, "logabsdet");
    }
}

#[test]
fn derivatives_pass_check_grads_at_order_two() {
    let (a, b) = (mat(3, 0.2), rhs(3, 2, 0.9));
    let b2 = b.clone();
    check_grads(move |p: &(Tensor, Tensor)| solve(&p.0, &p.1), &(a.clone(), b.clone()), 2, BOTH);
    check_grads(move |a: &Tensor| solve(a, &b2.narrow(1, 0, 1).flatten()), &a, 2, BOTH);
    check_grads(|a: &Tensor| cholesky(&spd(a)), &a, 2, BOTH);
    check_grads(
        |p: &(Tensor, Tensor)| triangular_solve(&p.0, &p.1, true, false),
        &(a.clone(), b.clone()),
        2,
        BOTH,
    );
    check_grads(
        |p: &(Tensor, Tensor)| triangular_solve(&p.0, &p.1, false, true),
        &(a.clone(), b.clone()),
        2,
        BOTH,
    );
    check_grads(
        |p: &(Tensor, Tensor)| cho_solve(&cholesky(&spd(&p.0)), &p.1),
        &(a.clone(), b.clone()),
        2,
        BOTH,
    );
    check_grads(|a: &Tensor| slogdet(a).1, &a, 2, BOTH);
    check_grads(|a: &Tensor| det(a), &a, 2, BOTH);
    check_grads(|a: &Tensor| inv(a), &a, 2, BOTH);
    // The gradient of log det of an SPD matrix is its inverse (symmetric).
    let s = spd(&a);
    let g = grad(|s: &Tensor| slogdet(s).1)(&s);
    close(&g, &inv(&s).to_vec::<f64>(), 1e-12, "d logdet / dA = A⁻ᵀ");
}

#[test]
fn vmap_and_batch_dimensions_agree_with_a_loop() {
    let a3 = Tensor::stack(&[&mat(3, 0.1), &mat(3, 0.6), &mat(3, 1.7), &mat(3, 2.2)], 0);
    let b3 = Tensor::stack(&[&rhs(3, 2, 0.3), &rhs(3, 2, 0.8), &rhs(3, 2, 1.1), &rhs(3, 2, 2.5)], 0);
    let s3 = vmap(|a: &Tensor| spd(a))(&a3);
    type Op = fn(&Tensor, &Tensor) -> Tensor;
    let ops: [(&str, Op); 6] = [
        ("solve", |a, b| solve(a, b)),
        ("triangular_solve", |a, b| triangular_solve(a, b, true, false)),
        ("cho_solve", |a, b| cho_solve(&cholesky(a), b)),
        ("inv", |a, _| inv(a)),
        ("slogdet", |a, _| slogdet(a).1),
        ("det", |a, _| det(a)),
    ];
    for (name, op) in ops {
        let looped: Vec<Tensor> =
            (0..4).map(|i| op(&s3.narrow(0, i, 1).squeeze(0), &b3.narrow(0, i, 1).squeeze(0))).collect();
        let looped = Tensor::stack(&looped.iter().collect::<Vec<_>>(), 0);
        let mapped = vmap(|p: &(Tensor, Tensor)| op(&p.0, &p.1))(&(s3.clone(), b3.clone()));
        close(&mapped, &looped.to_vec::<f64>(), 1e-12, name);
        // Leading batch dimensions directly (solve and the rest broadcast them).
        if name == "solve" || name == "inv" || name == "det" {
            close(&op(&s3, &b3), &looped.to_vec::<f64>(), 1e-12, name);
        }
        // A matrix shared by every example (unbatched), the right-hand sides batched.
        let shared = vmap_axes(|p: &(Tensor, Tensor)| op(&p.0, &p.1), [None, Some(0)], 0)(&(
            s3.narrow(0, 0, 1).squeeze(0),
            b3.clone(),
        ));
        assert_eq!(shared.shape()[0], 4, "{name}");
    }
    // Per-example gradients through a solve.
    let g = vmap(grad(|a: &Tensor| solve(a, &rhs(3, 1, 0.0)).sum()))(&s3);
    assert_eq!(g.shape(), &[4, 3, 3]);
    // Broadcasting: one matrix against a batch of right-hand sides, and a vector.
    close(
        &solve(&s3.narrow(0, 0, 1), &b3),
        &vmap_axes(|p: &(Tensor, Tensor)| solve(&p.0, &p.1), [None, Some(0)], 0)(&(
            s3.narrow(0, 0, 1).squeeze(0),
            b3.clone(),
        ))
        .to_vec::<f64>(),
        1e-12,
        "broadcast",
    );
    assert_eq!(solve(&s3, &Tensor::ones(&[3]).to_f64()).shape(), &[4, 3]);
}

#[test]
fn misuse_names_the_op_and_the_shapes() {
    let msg = |f: Box<dyn Fn()>| {
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("should panic");
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    let m = msg(Box::new(|| drop(solve(&Tensor::zeros(&[2, 3]).to_f64(), &Tensor::ones(&[2]).to_f64()))));
    assert!(m.contains("solve: needs float square matrices") && m.contains("[2, 3]"), "{m}");
    let m = msg(Box::new(|| drop(solve(&mat(3, 0.0), &Tensor::ones(&[4]).to_f64()))));
    assert!(m.contains("solve: right-hand side"), "{m}");
    let m = msg(Box::new(|| drop(cholesky(&Tensor::zeros(&[3]).to_f64()))));
    assert!(m.contains("cholesky"), "{m}");
    // Not positive definite: NaN, not a panic; singular: sign 0 and -inf.
    assert!(cholesky(&(mat(2, 0.0) * -1.0)).to_vec::<f64>().iter().all(|v| v.is_nan()));
    let (s, l) = slogdet(&Tensor::zeros(&[2, 2]).to_f64());
    assert_eq!((s.item(), l.item()), (0.0, f64::NEG_INFINITY), "{:?}", (s.item(), l.item()));
}
