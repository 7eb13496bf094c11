//! Dense linear algebra: values against NumPy/SciPy (fixture made by
//! `tests/fixtures/linalg_reference.py`), derivatives by `check_grads` (order 2, forward and
//! reverse) in f64, `vmap` against a loop, broadcasting, and misuse messages — for `solve`,
//! `cholesky`, `triangular_solve`, `cho_solve`, `slogdet`, `det`, `inv`, then for the LU
//! functions (`lu_factor`, `lu`, `lu_solve`), `eigh`, `qr`, `matrix_exp` and the norms.

use adjoint_core::testing::{check_grads, BOTH};
use adjoint_core::{grad, jvp, vmap, vmap_axes, Tensor};
use adjoint_solvers::linalg::{
    cho_solve, cholesky, det, eigh, inv, lu, lu_factor, lu_solve, matrix_exp, matrix_norm, qr, slogdet,
    solve, svd, triangular_solve, vector_norm, MatrixNorm,
};

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

fn tall(m: usize, n: usize, seed: f64) -> Tensor {
    let v: Vec<f64> = (0..m * n)
        .map(|q| {
            let (i, j) = (q / n, q % n);
            (seed + 0.8 * i as f64 - 1.1 * j as f64).cos() + if i == j { 1.0 } else { 0.0 }
        })
        .collect();
    Tensor::from_vec(v, &[m, n])
}

/// Symmetric with distinct eigenvalues.
fn sym(n: usize, seed: f64) -> Tensor {
    let m = mat(n, seed) - Tensor::eye(n, adjoint_core::DType::F64) * n as f64;
    let d: Vec<f64> = (0..n * n).map(|k| if k / n == k % n { (k / n) as f64 } else { 0.0 }).collect();
    (&m + m.t()) * 0.5 + Tensor::from_vec(d, &[n, n])
}

fn fixture() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/linalg_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Eigenvectors with the sign that makes each column's largest entry positive (as the fixture).
fn sign_fixed(v: &Tensor) -> Vec<f64> {
    let n = v.shape()[0];
    let mut x = v.to_vec::<f64>();
    for j in 0..n {
        let big = (0..n).map(|i| x[i * n + j]).fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
        for i in 0..n {
            x[i * n + j] *= big.signum();
        }
    }
    x
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
    let refs = fixture();
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

// ---- LU, eigh, qr, matrix_exp, norms

#[test]
fn decompositions_match_numpy_and_scipy() {
    let refs = fixture();
    for n in [1usize, 3, 5] {
        let r = &refs[n.to_string()];
        let (a, b) = (mat(n, 0.5), rhs(n, 2, 1.5));
        let f = a.flip(0);
        let (lu_, piv) = lu_factor(&f);
        close(&lu_, &nums(&r["lu"]), 1e-12, "lu_factor");
        let want: Vec<i64> = r["piv"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
        assert_eq!(piv.to_vec::<i64>(), want, "pivots");
        let (p, l, u) = lu(&f);
        close(&p, &nums(&r["p"]), 0.0, "lu p");
        close(&l, &nums(&r["l"]), 1e-12, "lu l");
        close(&u, &nums(&r["u"]), 1e-12, "lu u");
        close(&lu_solve(&lu_, &piv, &b, false), &nums(&r["lu_solve"]), 1e-12, "lu_solve");
        close(&lu_solve(&lu_, &piv, &b, true), &nums(&r["lu_solve_t"]), 1e-12, "lu_solve trans");
        let (w, v) = eigh(&sym(n, 0.3));
        close(&w, &nums(&r["eigh_w"]), 1e-12, "eigh w");
        close(&Tensor::from_vec(sign_fixed(&v), &[n, n]), &nums(&r["eigh_v"]), 1e-10, "eigh v");
        let (q, rr) = qr(&tall(n + 2, n, 0.7));
        close(&q, &nums(&r["qr_q"]), 1e-12, "qr q");
        close(&rr, &nums(&r["qr_r"]), 1e-12, "qr r");
        close(&matrix_exp(&(&a * 0.4)), &nums(&r["expm"]), 1e-13, "expm");
        close(&matrix_exp(&(&a * 3.0)), &nums(&r["expm_big"]), 1e-12, "expm (scaled and squared)");
        let off = &a - Tensor::eye(n, adjoint_core::DType::F64) * n as f64;
        close(&matrix_norm(&a, MatrixNorm::Fro), &[r["norm_fro"].as_f64().unwrap()], 1e-14, "fro");
        close(&matrix_norm(&off, MatrixNorm::One), &[r["norm_1"].as_f64().unwrap()], 1e-14, "norm 1");
        close(&matrix_norm(&off, MatrixNorm::Inf), &[r["norm_inf"].as_f64().unwrap()], 1e-14, "norm inf");
        let col = b.narrow(1, 0, 1).flatten();
        let got: Vec<f64> = [2.0, 1.0, f64::INFINITY, f64::NEG_INFINITY, 3.0]
            .iter()
            .map(|&o| vector_norm(&col, o).item())
            .collect();
        close(&Tensor::from_vec(got, &[5]), &nums(&r["vnorm"]), 1e-14, "vector norms");
        close(&matrix_norm(&a, MatrixNorm::Two), &[r["norm_2"].as_f64().unwrap()], 1e-13, "norm 2");
        close(&matrix_norm(&a, MatrixNorm::Nuc), &[r["norm_nuc"].as_f64().unwrap()], 1e-13, "norm nuc");
        let svds = r["svd"].as_array().unwrap();
        for (x, want) in [tall(n + 2, n, 0.7), tall(n, n + 2, 0.7), a.clone()].iter().zip(svds) {
            let (u, sv, vt) = svd(x);
            close(&u, &nums(&want["u"]), 1e-10, "svd u");
            close(&sv, &nums(&want["s"]), 1e-12, "svd s");
            close(&vt, &nums(&want["vt"]), 1e-10, "svd vt");
        }
    }
    // solve: batch dimensions broadcast as NumPy's, and one matrix against batched right sides.
    let a4 = Tensor::stack(&[&mat(3, 0.1), &mat(3, 0.9)], 0).unsqueeze(1);
    let b4 = Tensor::stack(&[&rhs(3, 2, 0.2), &rhs(3, 2, 0.4), &rhs(3, 2, 0.6), &rhs(3, 2, 0.8)], 0);
    let x = solve(&a4, &b4);
    assert_eq!(x.shape(), &[2, 4, 3, 2]);
    close(&x, &nums(&refs["solve_broadcast"]), 1e-12, "solve broadcast");
    close(&solve(&mat(3, 0.1), &b4), &nums(&refs["solve_shared"]), 1e-12, "solve shared matrix");
}

#[test]
fn decompositions_pass_check_grads_at_order_two() {
    let (a, b) = (mat(3, 0.2), rhs(3, 2, 0.9));
    let f = a.flip(0);
    check_grads(|a: &Tensor| lu_factor(a).0, &f, 2, BOTH);
    check_grads(
        |a: &Tensor| {
            let (_, l, u) = lu(a);
            (l, u)
        },
        &f,
        2,
        BOTH,
    );
    let (lu_, piv) = lu_factor(&f);
    for transpose in [false, true] {
        let piv = piv.clone();
        check_grads(
            move |p: &(Tensor, Tensor)| lu_solve(&p.0, &piv, &p.1, transpose),
            &(lu_.clone(), b.clone()),
            2,
            BOTH,
        );
    }
    // solve and inv through the factor-once primitive, with a shared matrix and batched rhs.
    let b3 = Tensor::stack(&[&b, &(&b * 2.0 + 1.0)], 0);
    check_grads(|p: &(Tensor, Tensor)| solve(&p.0, &p.1), &(a.clone(), b3), 2, BOTH);
    check_grads(|a: &Tensor| inv(a).matmul(a).sum() + inv(a).sum(), &a, 2, BOTH);
    check_grads(|s: &Tensor| eigh(s), &sym(4, 0.3), 2, BOTH);
    check_grads(|s: &Tensor| eigh(s).0, &sym(3, 1.1), 2, BOTH);
    check_grads(|t: &Tensor| qr(t), &tall(5, 3, 0.7), 2, BOTH);
    check_grads(|t: &Tensor| qr(t), &tall(3, 3, 0.2), 2, BOTH);
    check_grads(|a: &Tensor| matrix_exp(a), &(&a * 0.3), 2, BOTH);
    check_grads(|a: &Tensor| matrix_exp(a), &(&a * 2.0), 2, BOTH); // with squarings
    for ord in [2.0, 1.0, 3.0, f64::INFINITY] {
        check_grads(move |x: &Tensor| vector_norm(x, ord), &b, 2, BOTH);
    }
    let off = &a - Tensor::eye(3, adjoint_core::DType::F64) * 2.5;
    for x in [tall(5, 3, 0.7), tall(3, 5, 0.4), mat(3, 0.8)] {
        check_grads(|a: &Tensor| svd(a), &x, 2, BOTH);
    }
    for ord in [MatrixNorm::Fro, MatrixNorm::One, MatrixNorm::Inf, MatrixNorm::Two, MatrixNorm::Nuc] {
        check_grads(move |a: &Tensor| matrix_norm(a, ord), &off, 2, BOTH);
    }
}

#[test]
fn known_derivatives() {
    // d λ / dA = v vᵀ; d exp(A) / dA along a commuting direction is exp(A) · dA.
    let s = sym(3, 0.3);
    let (_, v) = eigh(&s);
    let g = grad(|s: &Tensor| eigh(s).0.narrow(0, 2, 1).sum())(&s);
    let top = v.narrow(1, 2, 1);
    close(&g, &top.matmul(&top.t()).to_vec::<f64>(), 1e-10, "d λ_max / dA");
    let a = mat(3, 0.4) * 0.3;
    let (e, de) = jvp(|a: &Tensor| matrix_exp(a), &a, &a);
    close(&de, &e.matmul(&a).to_vec::<f64>(), 1e-12, "d exp(A)[A] = exp(A) A");
    // Forward mode through solve: dX = -A⁻¹ dA X.
    let b = rhs(3, 1, 0.0);
    let (x, dx) = jvp(|a: &Tensor| solve(a, &b), &a, &a);
    close(&dx, &(-&x).to_vec::<f64>(), 1e-12, "d solve along A");
}

#[test]
fn degenerate_and_singular_cases() {
    // Repeated eigenvalues: eigenvalue-only derivatives stay finite and right (the identity
    // matrix: d tr / dA = I); derivatives through the eigenvectors are not finite (documented).
    let id = Tensor::eye(3, adjoint_core::DType::F64);
    let g = grad(|s: &Tensor| eigh(s).0.sum())(&id);
    close(&g, &id.to_vec::<f64>(), 1e-12, "d Σλ / dA at a degenerate point");
    let gv = grad(|s: &Tensor| eigh(s).1.sum())(&id);
    assert!(gv.to_vec::<f64>().iter().any(|x| !x.is_finite()), "{:?}", gv.to_vec::<f64>());
    let g = grad(|a: &Tensor| svd(a).1.sum())(&(&id * 2.0));
    close(&g, &id.to_vec::<f64>(), 1e-12, "d Σσ / dA at repeated singular values");
    // slogdet's reverse rule on batched input (no vmap): A⁻ᵀ per matrix.
    let s2 = Tensor::stack(&[&sym(3, 0.3), &(sym(3, 0.9) + &id * 3.0)], 0);
    let g = grad(|a: &Tensor| slogdet(a).1.sum())(&s2);
    close(&g, &inv(&s2).permute(&[0, 2, 1]).to_vec::<f64>(), 1e-10, "batched d logdet");
    // A singular matrix: non-finite values, no panic.
    let z = Tensor::zeros(&[2, 2]).to_f64();
    assert!(solve(&z, &Tensor::ones(&[2]).to_f64()).to_vec::<f64>().iter().any(|x| !x.is_finite()));
    assert!(inv(&z).to_vec::<f64>().iter().any(|x| !x.is_finite()));
}

#[test]
fn decompositions_vmap_agrees_with_a_loop() {
    let mats: Vec<Tensor> = [0.1, 0.6, 1.7, 2.2].iter().map(|&s| mat(3, s).flip(0)).collect();
    let a3 = Tensor::stack(&mats.iter().collect::<Vec<_>>(), 0);
    let syms: Vec<Tensor> = [0.1, 0.6, 1.7, 2.2].iter().map(|&s| sym(3, s)).collect();
    let s3 = Tensor::stack(&syms.iter().collect::<Vec<_>>(), 0);
    let talls: Vec<Tensor> = [0.1, 0.6, 1.7, 2.2].iter().map(|&s| tall(4, 3, s)).collect();
    let t3 = Tensor::stack(&talls.iter().collect::<Vec<_>>(), 0);
    let b3 = Tensor::stack(&[&rhs(3, 2, 0.3), &rhs(3, 2, 0.8), &rhs(3, 2, 1.1), &rhs(3, 2, 2.5)], 0);
    type Op = fn(&Tensor, &Tensor) -> Tensor;
    let ops: [(&str, &Tensor, Op); 13] = [
        ("lu_factor", &a3, |a, _| lu_factor(a).0),
        ("lu pivots", &a3, |a, _| lu_factor(a).1.to_f64()),
        ("lu l", &a3, |a, _| lu(a).1),
        ("lu p", &a3, |a, _| lu(a).0),
        ("lu_solve", &a3, |a, b| {
            let (f, piv) = lu_factor(a);
            lu_solve(&f, &piv, b, false) + lu_solve(&f, &piv, b, true)
        }),
        ("solve", &a3, |a, b| solve(a, b)),
        ("eigh", &s3, |a, _| eigh(a).1.matmul(&eigh(a).0.unsqueeze(1))),
        ("qr", &t3, |a, _| qr(a).0.sum_axes(&[0], false) + qr(a).1.sum_axes(&[1], false)),
        ("matrix_exp", &a3, |a, _| matrix_exp(&(a * 0.2))),
        ("vector_norm", &a3, |a, _| vector_norm(a, 3.0)),
        ("matrix_norm", &a3, |a, _| matrix_norm(a, MatrixNorm::Fro) + matrix_norm(a, MatrixNorm::One)),
        ("svd", &t3, |a, _| {
            let (u, s, vt) = svd(a);
            u.sum_axes(&[0], false) + s + vt.sum_axes(&[1], false)
        }),
        ("svd (wide)", &t3, |a, _| {
            let (u, s, vt) = svd(&a.t());
            u.sum_axes(&[1], false) + s + vt.sum_axes(&[1], false)
        }),
    ];
    for (name, x3, op) in ops {
        let looped: Vec<Tensor> =
            (0..4).map(|i| op(&x3.narrow(0, i, 1).squeeze(0), &b3.narrow(0, i, 1).squeeze(0))).collect();
        let looped = Tensor::stack(&looped.iter().collect::<Vec<_>>(), 0).to_vec::<f64>();
        let mapped = vmap(|p: &(Tensor, Tensor)| op(&p.0, &p.1))(&(x3.clone(), b3.clone()));
        close(&mapped, &looped, 1e-12, name);
        // The batch on another axis than the first.
        let moved = vmap_axes(|p: &(Tensor, Tensor)| op(&p.0, &p.1), [Some(2), Some(1)], 0)(&(
            x3.permute(&[1, 2, 0]),
            b3.permute(&[1, 0, 2]),
        ));
        close(&moved, &looped, 1e-12, name);
    }
    // One matrix shared by every example (the factor-once path folds the batch into columns).
    let shared = vmap_axes(|p: &(Tensor, Tensor)| solve(&p.0, &p.1), [None, Some(2)], 0)(&(
        mats[0].clone(),
        b3.permute(&[1, 2, 0]),
    ));
    let looped: Vec<Tensor> = (0..4).map(|i| solve(&mats[0], &b3.narrow(0, i, 1).squeeze(0))).collect();
    close(&shared, &Tensor::stack(&looped.iter().collect::<Vec<_>>(), 0).to_vec::<f64>(), 1e-12, "shared");
    // Per-example gradients through lu_solve and eigh.
    let g = vmap(grad(|a: &Tensor| {
        let (f, piv) = lu_factor(a);
        lu_solve(&f, &piv, &rhs(3, 1, 0.0), false).sum()
    }))(&a3);
    let want: Vec<Tensor> =
        mats.iter().map(|a| grad(|a: &Tensor| solve(a, &rhs(3, 1, 0.0)).sum())(a)).collect();
    close(
        &g,
        &Tensor::stack(&want.iter().collect::<Vec<_>>(), 0).to_vec::<f64>(),
        1e-10,
        "vmap(grad(lu_solve))",
    );
    let g = vmap(grad(|s: &Tensor| eigh(s).0.narrow(0, 2, 1).sum()))(&s3);
    assert_eq!(g.shape(), &[4, 3, 3]);
}

#[test]
fn decomposition_misuse_names_the_op_and_the_shapes() {
    let msg = |f: Box<dyn Fn()>| {
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("should panic");
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    let rect = Tensor::zeros(&[2, 3]).to_f64();
    let m = msg(Box::new(move || drop(lu_factor(&rect))));
    assert!(m.contains("lu: needs float square matrices") && m.contains("[2, 3]"), "{m}");
    let m = msg(Box::new(|| drop(qr(&Tensor::zeros(&[2, 3]).to_f64()))));
    assert!(m.contains("qr: needs float matrices [..., m, n] with m ≥ n") && m.contains("[2, 3]"), "{m}");
    let m = msg(Box::new(|| drop(eigh(&Tensor::zeros(&[3]).to_f64()))));
    assert!(m.contains("eigh"), "{m}");
    let m = msg(Box::new(|| drop(matrix_exp(&Tensor::zeros(&[2, 3]).to_f64()))));
    assert!(m.contains("matrix_exp: needs float square matrices"), "{m}");
    let (f, piv) = lu_factor(&mat(3, 0.0));
    let m =
        msg(Box::new(move || drop(lu_solve(&f, &piv.narrow(0, 0, 2), &Tensor::ones(&[3]).to_f64(), false))));
    assert!(m.contains("lu_solve: pivots [2]"), "{m}");
    let m = msg(Box::new(|| drop(vector_norm(&Tensor::ones(&[3]).to_f64(), -1.0))));
    assert!(m.contains("vector_norm: ord must be positive"), "{m}");
    let m = msg(Box::new(|| drop(svd(&Tensor::ones(&[3]).to_f64()))));
    assert!(m.contains("svd: needs float matrices [..., m, n]") && m.contains("[3]"), "{m}");
    let m = msg(Box::new(|| drop(matrix_norm(&Tensor::ones(&[3]).to_f64(), MatrixNorm::Fro))));
    assert!(m.contains("matrix_norm: needs float matrices"), "{m}");
    let m = msg(Box::new(|| drop(solve(&mat(3, 0.0), &Tensor::ones(&[2, 4, 2]).to_f64()))));
    assert!(m.contains("solve: right-hand side"), "{m}");
}
