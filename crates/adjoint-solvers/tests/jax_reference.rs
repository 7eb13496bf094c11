//! Derivatives against JAX (fixture made by `fixtures/jax_reference.py`): the gradient of a
//! fixed weighted sum of each linear-algebra op's outputs, and of a Lotka–Volterra loss through
//! `odeint` (JAX's `jax.experimental.ode.odeint`), in f64. The inputs and weights are the
//! script's closed forms, rebuilt here.

use adjoint_core::{grad, Tensor};
use adjoint_solvers::linalg::{
    cho_solve, cholesky, det, eigh, inv, lu, lu_factor, lu_solve, matrix_exp, matrix_norm, qr, slogdet,
    solve, svd, triangular_solve, vector_norm, MatrixNorm,
};
use adjoint_solvers::ode::{odeint, odeint_real, GradMethod, OdeOptions};

mod common;
use common::{lotka_volterra, lotka_volterra_real, v};

const N: usize = 4;

fn build(r: usize, c: usize, f: impl Fn(f64, f64) -> f64) -> Tensor {
    let v: Vec<f64> = (0..r * c).map(|k| f((k / c) as f64, (k % c) as f64)).collect();
    Tensor::from_vec(v, &[r, c])
}

fn mat(n: usize, seed: f64) -> Tensor {
    build(n, n, |i, j| (seed + 1.3 * i + 0.7 * j).sin() + if i == j { n as f64 } else { 0.0 })
}

fn weights(r: usize, c: usize, seed: f64) -> Tensor {
    build(r, c, |i, j| (seed + 0.3 * i + 0.5 * j).cos())
}

fn eye() -> Tensor {
    Tensor::eye(N, adjoint_core::DType::F64)
}

fn tril(a: &Tensor) -> Tensor {
    a * build(N, N, |i, j| if j <= i { 1.0 } else { 0.0 })
}

fn flipud(a: &Tensor) -> Tensor {
    let rows: Vec<Tensor> = (0..N).rev().map(|i| a.narrow(0, i, 1)).collect();
    Tensor::concat(&rows.iter().collect::<Vec<_>>(), 0)
}

fn spd(a: &Tensor) -> Tensor {
    a.matmul(&a.t()) + eye() * N as f64
}

fn close(got: &[f64], want: &serde_json::Value, tol: f64, what: &str) {
    let want: Vec<f64> = want.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    let err = got.iter().zip(&want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale;
    assert!(err <= tol, "{what}: relative difference {err:e} from JAX\n  got  {got:?}\n  want {want:?}");
}

fn fixture() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jax_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn linalg_gradients_match_jax() {
    let fx = fixture();
    assert_eq!(fx["n"].as_u64(), Some(N as u64));
    let a = mat(N, 0.5);
    let b = build(N, 2, |i, j| (1.5 + 0.9 * i - 0.4 * j).cos());
    let s = {
        let m = mat(N, 0.3) - eye() * N as f64;
        (&m + m.t()) * 0.5 + build(N, N, |i, j| if i == j { i } else { 0.0 })
    };
    let t = build(N + 2, N, |i, j| (0.7 + 0.8 * i - 1.1 * j).cos() + if i == j { 1.0 } else { 0.0 });
    let (w, wb, wt) = (weights(N, N, 0.1), weights(N, 2, 0.2), weights(N + 2, N, 0.4));
    let wv = weights(1, N, 0.6).reshape(&[N]);
    let sq = |x: &Tensor| x * x;
    type One = Box<dyn Fn(&Tensor) -> Tensor>;
    type Two = Box<dyn Fn(&Tensor, &Tensor) -> Tensor>;
    let (w1, wb1, wt1, wv1) = (w.clone(), wb.clone(), wt.clone(), wv.clone());
    let one: Vec<(&str, One, Tensor)> = vec![
        (
            "cholesky",
            Box::new({
                let w = w1.clone();
                move |a| (tril(&w) * cholesky(&spd(a))).sum()
            }),
            a.clone(),
        ),
        ("slogdet", Box::new(|a| slogdet(a).1), a.clone()),
        ("det", Box::new(|a| det(a)), a.clone()),
        (
            "inv",
            Box::new({
                let w = w1.clone();
                move |a| (&w * inv(a)).sum()
            }),
            a.clone(),
        ),
        (
            "lu",
            Box::new({
                let w = w1.clone();
                move |a| {
                    let (_, l, u) = lu(&flipud(a));
                    (&w * l).sum() + (w.t() * u).sum()
                }
            }),
            a.clone(),
        ),
        (
            "eigh",
            Box::new({
                let (w, wv) = (w1.clone(), wv1.clone());
                move |s| {
                    let (e, v) = eigh(s);
                    (&wv * e).sum() + (&w * sq(&v)).sum()
                }
            }),
            s.clone(),
        ),
        (
            "qr",
            Box::new({
                let (w, wt) = (w1.clone(), wt1.clone());
                move |t| {
                    let (q, r) = qr(t);
                    (&wt * sq(&q)).sum() + (&w * sq(&r)).sum()
                }
            }),
            t.clone(),
        ),
        (
            "svd",
            Box::new({
                let (w, wt, wv) = (w1.clone(), wt1.clone(), wv1.clone());
                move |t| {
                    let (u, s, vt) = svd(t);
                    (&wv * s).sum() + (&wt * sq(&u)).sum() + (&w * sq(&vt)).sum()
                }
            }),
            t.clone(),
        ),
        (
            "matrix_exp",
            Box::new({
                let w = w1.clone();
                move |a| (&w * matrix_exp(&(a * 0.4))).sum()
            }),
            a.clone(),
        ),
        ("norm_fro", Box::new(|a| matrix_norm(a, MatrixNorm::Fro)), a.clone()),
        ("norm_nuc", Box::new(|a| matrix_norm(a, MatrixNorm::Nuc)), a.clone()),
        ("norm_two", Box::new(|a| matrix_norm(a, MatrixNorm::Two)), a.clone()),
        ("vector_norm_3", Box::new(|x| vector_norm(x, 3.0)), a.narrow(0, 0, 1).reshape(&[N])),
    ];
    for (name, f, x) in one {
        let case = &fx["linalg"][name];
        close(&[f(&x).item()], &serde_json::json!([case["value"]]), 1e-10, &format!("{name} value"));
        close(
            &grad(|x: &Tensor| f(x))(&x).to_vec::<f64>(),
            &case["grads"][0],
            1e-8,
            &format!("{name} gradient"),
        );
    }
    let two: Vec<(&str, Two)> = vec![
        (
            "solve",
            Box::new({
                let wb = wb1.clone();
                move |a, b| (&wb * solve(a, b)).sum()
            }),
        ),
        (
            "triangular_lower_t",
            Box::new({
                let wb = wb1.clone();
                move |a, b| (&wb * triangular_solve(&tril(a), b, true, true)).sum()
            }),
        ),
        (
            "cho_solve",
            Box::new({
                let wb = wb1.clone();
                move |a, b| (&wb * cho_solve(&cholesky(&spd(a)), b)).sum()
            }),
        ),
        (
            "lu_solve",
            Box::new({
                let wb = wb1.clone();
                move |a, b| {
                    let (f, piv) = lu_factor(&flipud(a));
                    (&wb * lu_solve(&f, &piv, b, false)).sum()
                }
            }),
        ),
    ];
    for (name, f) in two {
        let case = &fx["linalg"][name];
        close(&[f(&a, &b).item()], &serde_json::json!([case["value"]]), 1e-10, &format!("{name} value"));
        let (ga, gb) = grad(|p: &(Tensor, Tensor)| f(&p.0, &p.1))(&(a.clone(), b.clone()));
        close(&ga.to_vec::<f64>(), &case["grads"][0], 1e-8, &format!("{name} gradient in a"));
        close(&gb.to_vec::<f64>(), &case["grads"][1], 1e-8, &format!("{name} gradient in b"));
    }
}

#[test]
fn odeint_gradients_match_jax() {
    let fx = &fixture()["odeint"];
    let (y0, p) = (v(&[33.0, 6.2]), v(&[0.55, 0.028, 0.80, 0.024]));
    let ts: Vec<f64> = (0..21).map(f64::from).collect();
    for g in [GradMethod::Direct, GradMethod::Adjoint, GradMethod::Backsolve] {
        let o = OdeOptions { rtol: 1e-11, atol: 1e-11, grad: g, ..OdeOptions::default() };
        let ts = ts.clone();
        let loss = move |q: &(Tensor, Tensor)| odeint(lotka_volterra, &q.0, &ts, &q.1, &o).log().sum();
        let l = loss(&(y0.clone(), p.clone())).item();
        close(&[l], &serde_json::json!([fx["loss"]]), 1e-9, &format!("{g:?} loss"));
        let (gy, gp) = grad(loss)(&(y0.clone(), p.clone()));
        close(&gy.to_vec::<f64>(), &fx["grad_y0"], 1e-6, &format!("{g:?} gradient in y0"));
        close(&gp.to_vec::<f64>(), &fx["grad_p"], 1e-6, &format!("{g:?} gradient in p"));
    }
    // The scalar tier.
    let o = OdeOptions { rtol: 1e-11, atol: 1e-11, ..OdeOptions::default() };
    let g = adjoint_scalar::gradient(
        |x: &[adjoint_scalar::Var]| {
            let ys = odeint_real(lotka_volterra_real, &x[..2], &ts, &x[2..], &o);
            ys.into_iter().flatten().map(adjoint_scalar::num_traits::Float::ln).sum()
        },
        &[33.0, 6.2, 0.55, 0.028, 0.80, 0.024],
    );
    close(&g[..2], &fx["grad_y0"], 1e-6, "scalar tier gradient in y0");
    close(&g[2..], &fx["grad_p"], 1e-6, "scalar tier gradient in p");
}
