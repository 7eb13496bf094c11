//! odeint: step counts and solutions against SciPy's `solve_ivp(method="RK45")` (fixture
//! made by `fixtures/ode_scipy.py`), gradients of the three methods against each other and
//! finite differences on Lotka–Volterra and a damped pendulum, and the adjoint's memory.

use adjoint_core::{grad, memory, Tensor};
use adjoint_solvers::ode::{odeint, odeint_stats, AdjointNorm, FirstStep, GradMethod, Method, OdeOptions};

mod common;
use common::{lotka_volterra, lotka_volterra_real, v};

/// `[θ, ω]` with `p = [damping, g/L]`.
fn pendulum(z: &Tensor, _t: f64, p: &Tensor) -> Tensor {
    let (th, om) = (z.narrow(0, 0, 1), z.narrow(0, 1, 1));
    let dom = -(&om * p.narrow(0, 0, 1)) - th.sin() * p.narrow(0, 1, 1);
    Tensor::concat(&[&om, &dom], 0)
}

type Rhs = fn(&Tensor, f64, &Tensor) -> Tensor;

fn rhs_of(name: &str) -> Rhs {
    match name {
        "lotka_volterra" => lotka_volterra,
        "pendulum" => pendulum,
        _ => panic!("unknown problem {name}"),
    }
}

fn floats(j: &serde_json::Value) -> Vec<f64> {
    j.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn fixture() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ode_scipy.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn step_counts_and_solutions_match_scipy_rk45() {
    for case in fixture()["cases"].as_array().unwrap() {
        let name = case["problem"].as_str().unwrap();
        let (rtol, atol) = (case["rtol"].as_f64().unwrap(), case["atol"].as_f64().unwrap());
        let (y0, p, ts) = (v(&floats(&case["y0"])), v(&floats(&case["params"])), floats(&case["ts"]));
        let f = rhs_of(name);
        for method in [Method::Dopri5, Method::Tsit5] {
            let o = OdeOptions { method, rtol, atol, ..OdeOptions::default() };
            let s = odeint_stats(f, &y0, &[ts[0], *ts.last().unwrap()], &p, &o);
            let want = case["steps"].as_u64().unwrap() as f64;
            let ratio = s.accepted as f64 / want;
            println!("{name} rtol {rtol:e} {method:?}: {} steps vs SciPy {want} ({ratio:.3})", s.accepted);
            assert!((0.8..=1.2).contains(&ratio), "{name} rtol {rtol:e} {method:?}: {s:?} vs SciPy {want}");
            // The output times do not change the steps (dense output).
            assert_eq!(odeint_stats(f, &y0, &ts, &p, &o), s);
            let ys = odeint(f, &y0, &ts, &p, &o).to_vec::<f64>();
            let want: Vec<f64> = case["ys"].as_array().unwrap().iter().flat_map(floats).collect();
            let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let err = ys.iter().zip(&want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale;
            if method == Method::Dopri5 {
                // Same method, same steps: SciPy's numbers to rounding.
                assert!(err < 1e-9, "{name} rtol {rtol:e}: relative difference {err:e} from SciPy");
            } else {
                assert!(err < 300.0 * rtol, "{name} rtol {rtol:e} Tsit5: relative difference {err:e}");
            }
        }
    }
}

/// `FirstStep::Refined` from `y0 = 0` (the chain `y₀' = x₀`, `yᵢ' = xᵢ·yᵢ₋₁`, whose solution is
/// `yₖ(t) = x₀⋯xₖ·t^{k+1}/(k+1)!`): fewer steps than SciPy's rule, which ramps up from 10⁻⁴,
/// and the solution as accurate; on the SciPy fixtures (`y0 ≠ 0`) the same tolerance and about
/// the same steps; the gradients through both adjoints against the closed form.
#[test]
fn refined_first_step_skips_the_ramp_from_zero_and_keeps_the_accuracy() {
    let n = 12;
    let x: Vec<f64> = (0..n).map(|i| 1.0 + 0.1 * i as f64).collect();
    let chain = move |y: &Tensor, _t: f64, x: &Tensor| {
        x * Tensor::concat(&[&Tensor::from_vec(vec![1.0f64], &[1]), &y.narrow(0, 0, n - 1)], 0)
    };
    let exact: Vec<f64> = (0..n)
        .map(|k| {
            x[..=k].iter().product::<f64>() * 2f64.powi(k as i32 + 1) / (1..=k + 1).product::<usize>() as f64
        })
        .collect();
    let y0 = v(&vec![0.0; n]);
    for method in [Method::Dopri5, Method::Tsit5] {
        let o = |first_step| OdeOptions { method, first_step, ..OdeOptions::default() };
        let (scipy, refined) = (o(FirstStep::Scipy), o(FirstStep::Refined));
        let (s0, s1) = (
            odeint_stats(chain, &y0, &[0.0, 2.0], &v(&x), &scipy),
            odeint_stats(chain, &y0, &[0.0, 2.0], &v(&x), &refined),
        );
        assert!(s1.accepted + 2 <= s0.accepted, "{method:?}: {s1:?} vs SciPy's rule {s0:?}");
        for opts in [scipy, refined] {
            let y = odeint(chain, &y0, &[0.0, 2.0], &v(&x), &opts).to_vec::<f64>();
            for (k, (a, b)) in y[n..].iter().zip(&exact).enumerate() {
                assert!((a - b).abs() <= 1e-5 * b.abs() + 1e-8, "{method:?} {opts:?}: y_{k} {a} vs {b}");
            }
        }
        // ∂y_{n-1}(2)/∂x_i = y_{n-1}(2)/x_i, through both adjoints from the refined first step.
        for g in [GradMethod::Adjoint, GradMethod::Backsolve] {
            let og = OdeOptions { grad: g, ..refined };
            let gr = grad(|x: &Tensor| {
                odeint(chain, &y0, &[0.0, 2.0], x, &og).narrow(0, 1, 1).narrow(1, n - 1, 1).sum()
            })(&v(&x))
            .to_vec::<f64>();
            for (i, (a, xi)) in gr.iter().zip(&x).enumerate() {
                let want = exact[n - 1] / xi;
                assert!(
                    (a - want).abs() <= 1e-4 * want.abs() + 1e-9,
                    "{method:?} {g:?}: d/dx_{i} {a} vs {want}"
                );
            }
        }
    }
    for case in fixture()["cases"].as_array().unwrap() {
        let name = case["problem"].as_str().unwrap();
        let (rtol, atol) = (case["rtol"].as_f64().unwrap(), case["atol"].as_f64().unwrap());
        let (y0, p, ts) = (v(&floats(&case["y0"])), v(&floats(&case["params"])), floats(&case["ts"]));
        let o = OdeOptions { rtol, atol, first_step: FirstStep::Refined, ..OdeOptions::default() };
        let s = odeint_stats(rhs_of(name), &y0, &[ts[0], *ts.last().unwrap()], &p, &o);
        let want = case["steps"].as_u64().unwrap() as f64;
        assert!(
            (0.8..=1.2).contains(&(s.accepted as f64 / want)),
            "{name} rtol {rtol:e}: {s:?} vs SciPy {want}"
        );
        let ys = odeint(rhs_of(name), &y0, &ts, &p, &o).to_vec::<f64>();
        let want: Vec<f64> = case["ys"].as_array().unwrap().iter().flat_map(floats).collect();
        let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let err = ys.iter().zip(&want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale;
        assert!(err < 300.0 * rtol, "{name} rtol {rtol:e} refined: relative difference {err:e}");
    }
}

/// A scalar loss of every output state (weights fixed, plus a quadratic term).
fn loss(ys: &Tensor) -> Tensor {
    let n = ys.shape()[0];
    let w: Vec<f64> = (0..2 * n).map(|i| 1.0 + 0.1 * ((i * 7) % 5) as f64).collect();
    (ys * Tensor::from_vec(w, &[n, 2])).sum() + ys.square().sum() * 1e-3
}

/// Gradient of `loss(odeint(..))` in `(y0, p)`.
fn gradient(f: Rhs, y0: &Tensor, p: &Tensor, ts: &[f64], o: OdeOptions) -> Vec<f64> {
    let ts = ts.to_vec();
    let (gy, gp) =
        grad(move |q: &(Tensor, Tensor)| loss(&odeint(f, &q.0, &ts, &q.1, &o)))(&(y0.clone(), p.clone()));
    gy.to_vec::<f64>().into_iter().chain(gp.to_vec::<f64>()).collect()
}

/// Central differences of the same loss, solved at rtol = atol = 1e-13.
fn finite_differences(f: Rhs, y0: &Tensor, p: &Tensor, ts: &[f64]) -> Vec<f64> {
    let o = OdeOptions { rtol: 1e-13, atol: 1e-13, ..OdeOptions::default() };
    let x: Vec<f64> = y0.to_vec::<f64>().into_iter().chain(p.to_vec::<f64>()).collect();
    let ny = y0.shape()[0];
    let at = |x: &[f64]| loss(&odeint(f, &v(&x[..ny]), ts, &v(&x[ny..]), &o)).item();
    (0..x.len())
        .map(|i| {
            let h = 1e-5 * x[i].abs().max(1e-2);
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += h;
            b[i] -= h;
            (at(&a) - at(&b)) / (2.0 * h)
        })
        .collect()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}: {a:?} vs {b:?}");
    }
}

fn three_methods_agree(f: Rhs, y0: &Tensor, p: &Tensor, ts: &[f64]) {
    let fd = finite_differences(f, y0, p, ts);
    for method in [Method::Dopri5, Method::Tsit5] {
        let mut grads = Vec::new();
        for g in [GradMethod::Direct, GradMethod::Adjoint, GradMethod::Backsolve] {
            let o = OdeOptions { method, rtol: 1e-11, atol: 1e-11, grad: g, ..OdeOptions::default() };
            let gr = gradient(f, y0, p, ts, o);
            assert_close(&gr, &fd, 1e-6, &format!("{method:?} {g:?} vs finite differences"));
            grads.push(gr);
        }
        assert_close(&grads[1], &grads[0], 1e-6, &format!("{method:?} adjoint vs direct"));
        assert_close(&grads[2], &grads[0], 1e-6, &format!("{method:?} backsolve vs direct"));
        // The adjoints with p̄ in the error norm too (the default leaves it out, a seminorm).
        for g in [GradMethod::Adjoint, GradMethod::Backsolve] {
            let full = AdjointNorm::Full;
            let o = OdeOptions {
                method,
                rtol: 1e-11,
                atol: 1e-11,
                grad: g,
                adjoint_norm: full,
                ..OdeOptions::default()
            };
            assert_close(&gradient(f, y0, p, ts, o), &fd, 1e-6, &format!("{method:?} {g:?} full norm"));
        }
    }
}

fn yearly(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64).collect()
}

/// At a loose tolerance the two norms take different backward steps (so the option reaches the
/// step control), and both stay as accurate as the tolerance asks.
#[test]
fn seminorm_and_full_norm_adjoints_step_differently_and_both_hold_the_tolerance() {
    let (y0, p) = (v(&[33.0, 6.2]), v(&[0.55, 0.028, 0.80, 0.024]));
    let ts = yearly(21);
    let fd = finite_differences(lotka_volterra, &y0, &p, &ts);
    for g in [GradMethod::Adjoint, GradMethod::Backsolve] {
        let o = |adjoint_norm| OdeOptions {
            rtol: 1e-6,
            atol: 1e-6,
            grad: g,
            adjoint_norm,
            ..OdeOptions::default()
        };
        let semi = gradient(lotka_volterra, &y0, &p, &ts, o(AdjointNorm::Seminorm));
        let full = gradient(lotka_volterra, &y0, &p, &ts, o(AdjointNorm::Full));
        assert_ne!(semi, full, "{g:?}: the norm changed nothing");
        assert_close(&semi, &fd, 1e-3, &format!("{g:?} seminorm"));
        assert_close(&full, &fd, 1e-3, &format!("{g:?} full norm"));
    }
}

#[test]
fn gradients_lotka_volterra() {
    three_methods_agree(lotka_volterra, &v(&[33.0, 6.2]), &v(&[0.55, 0.028, 0.80, 0.024]), &yearly(21));
}

#[test]
fn gradients_damped_pendulum() {
    let ts: Vec<f64> = (0..=20).map(|i| 0.5 * i as f64).collect();
    three_methods_agree(pendulum, &v(&[1.0, 0.0]), &v(&[0.3, 4.0]), &ts);
}

#[test]
fn rk4_gradients_agree() {
    let (y0, p, ts) = (v(&[1.0, 0.0]), v(&[0.3, 4.0]), yearly(6));
    let o = |g| OdeOptions { method: Method::Rk4 { dt: 1e-3 }, grad: g, ..OdeOptions::default() };
    let direct = gradient(pendulum, &y0, &p, &ts, o(GradMethod::Direct));
    let fd = finite_differences(pendulum, &y0, &p, &ts);
    assert_close(&direct, &fd, 1e-6, "rk4 direct vs finite differences");
    for g in [GradMethod::Adjoint, GradMethod::Backsolve] {
        assert_close(&gradient(pendulum, &y0, &p, &ts, o(g)), &direct, 1e-6, &format!("rk4 {g:?}"));
    }
}

/// Peak residual bytes of one gradient evaluation.
fn peak(o: OdeOptions) -> usize {
    let (y0, p, ts) = (v(&[33.0, 6.2]), v(&[0.55, 0.028, 0.80, 0.024]), yearly(11));
    memory::reset_peak();
    let _ = gradient(lotka_volterra, &y0, &p, &ts, o);
    memory::peak_residual_bytes()
}

#[test]
fn adjoint_memory_is_constant_in_the_step_count() {
    for g in [GradMethod::Adjoint, GradMethod::Backsolve] {
        let o = |dt| OdeOptions { method: Method::Rk4 { dt }, grad: g, ..OdeOptions::default() };
        let (few, many) = (peak(o(0.05)), peak(o(0.005)));
        println!("{g:?}: peak residual bytes {few} (200 steps) vs {many} (2000 steps)");
        assert_eq!(few, many, "{g:?}");
        let a = |rtol| OdeOptions { rtol, atol: rtol, grad: g, ..OdeOptions::default() };
        assert_eq!(peak(a(1e-4)), peak(a(1e-10)), "{g:?} adaptive");
    }
    // Differentiating through the steps does grow with them.
    let d = |dt| OdeOptions { method: Method::Rk4 { dt }, grad: GradMethod::Direct, ..OdeOptions::default() };
    assert!(peak(d(0.005)) > 5 * peak(d(0.05)));
}

#[test]
fn backward_in_time_and_repeated_times() {
    let o = OdeOptions { rtol: 1e-10, atol: 1e-12, ..OdeOptions::default() };
    let decay = |y: &Tensor, _t: f64, k: &Tensor| -(y * k);
    let ys = odeint(decay, &v(&[1.0]), &[1.0, 1.0, 0.0], &Tensor::scalar(0.5f64), &o).to_vec::<f64>();
    assert_eq!(ys[..2], [1.0, 1.0]);
    assert!((ys[2] - 0.5f64.exp()).abs() < 1e-9);
    let dk = grad(|k: &Tensor| odeint(decay, &v(&[1.0]), &[1.0, 0.0], k, &o).sum())(&Tensor::scalar(0.5f64));
    assert!((dk.item() - 0.5f64.exp()).abs() < 1e-8, "{}", dk.item());
}

/// Robertson's chemical kinetics, `k = [k1, k2, k3]`: stiff (rate constants 0.04 to 3·10⁷).
fn robertson(y: &Tensor, _t: f64, k: &Tensor) -> Tensor {
    let (a, b, c) = (y.narrow(0, 0, 1), y.narrow(0, 1, 1), y.narrow(0, 2, 1));
    let q = |i| k.narrow(0, i, 1);
    let r1 = &a * q(0);
    let r2 = b.square() * q(1);
    let r3 = &b * &c * q(2);
    Tensor::concat(&[&(&r3 - &r1), &(&r1 - &r3 - &r2), &r2], 0)
}

#[test]
fn rosenbrock_solves_a_stiff_problem_in_few_steps() {
    let fx = &fixture()["stiff"];
    let (y0, k, ts) = (v(&floats(&fx["y0"])), v(&floats(&fx["params"])), floats(&fx["ts"]));
    let want: Vec<f64> = fx["ys"].as_array().unwrap().iter().flat_map(floats).collect();
    let counts = &fx["counts_rtol_1e-6_atol_1e-10"];
    let o = OdeOptions { method: Method::Rosenbrock23, rtol: 1e-6, atol: 1e-10, ..OdeOptions::default() };
    let s = odeint_stats(robertson, &y0, &[0.0, 100.0], &k, &o);
    let (rk45, radau) =
        (counts["RK45"]["steps"].as_u64().unwrap(), counts["Radau"]["steps"].as_u64().unwrap());
    println!("Robertson to t = 100, rtol 1e-6: Rosenbrock23 {s:?}; SciPy RK45 {rk45} steps, Radau {radau}");
    // An explicit method needs ~10⁵ steps (stability, not accuracy); the 2nd-order
    // Rosenbrock pair a few hundred.
    assert!(s.accepted < 1000 && (s.accepted as u64) * 100 < rk45, "{s:?}");
    let ys = odeint(robertson, &y0, &ts, &k, &o).to_vec::<f64>();
    for (i, (a, b)) in ys.iter().zip(&want).enumerate() {
        // Each component against its own scale (y2 is ~10⁻⁵).
        let scale = want.iter().skip(i % 3).step_by(3).fold(0.0f64, |m, x| m.max(x.abs()));
        assert!((a - b).abs() <= 1e-3 * scale, "component {i}: {a} vs Radau {b}");
    }
    // Tighter tolerance, closer to the reference.
    let tight = OdeOptions { rtol: 1e-9, atol: 1e-14, ..o };
    let ys = odeint(robertson, &y0, &ts, &k, &tight).to_vec::<f64>();
    for (i, (a, b)) in ys.iter().zip(&want).enumerate() {
        let scale = want.iter().skip(i % 3).step_by(3).fold(0.0f64, |m, x| m.max(x.abs()));
        assert!((a - b).abs() <= 1e-6 * scale, "rtol 1e-9, component {i}: {a} vs Radau {b}");
    }
}

#[test]
fn rosenbrock_gradients_agree() {
    // Robertson on a short span (stiff from the start), and Lotka–Volterra (non-stiff) through
    // the same method. Backsolve is left out on Robertson: integrating a stiff system backward
    // in time is unstable (its fast modes grow), the documented limit of that method.
    let rob = |y: &Tensor, t: f64, k: &Tensor| robertson(y, t, k);
    let all = [GradMethod::Direct, GradMethod::Adjoint, GradMethod::Backsolve];
    type Case<'a> = (Rhs, Tensor, Tensor, Vec<f64>, &'a [GradMethod]);
    let cases: [Case; 2] = [
        (rob, v(&[1.0, 0.0, 0.0]), v(&[0.04, 3e7, 1e4]), vec![0.0, 0.1, 0.5, 1.0], &all[..2]),
        (lotka_volterra, v(&[33.0, 6.2]), v(&[0.55, 0.028, 0.80, 0.024]), yearly(4), &all),
    ];
    for (f, y0, p, ts, methods) in cases {
        let loss = |ys: &Tensor| (ys * ys.ones_like().cumsum(1)).sum();
        let at = |o: OdeOptions, y0: &Tensor, p: &Tensor| loss(&odeint(f, y0, &ts, p, &o));
        let x: Vec<f64> = y0.to_vec::<f64>().into_iter().chain(p.to_vec::<f64>()).collect();
        let ny = y0.shape()[0];
        let fine =
            OdeOptions { method: Method::Rosenbrock23, rtol: 1e-11, atol: 1e-14, ..OdeOptions::default() };
        let fd: Vec<f64> = (0..x.len())
            .map(|i| {
                let h = 1e-6 * x[i].abs().max(1e-2);
                let (mut a, mut b) = (x.clone(), x.clone());
                a[i] += h;
                b[i] -= h;
                let e = |x: &[f64]| at(fine, &v(&x[..ny]), &v(&x[ny..])).item();
                (e(&a) - e(&b)) / (2.0 * h)
            })
            .collect();
        for &g in methods {
            let o = OdeOptions {
                method: Method::Rosenbrock23,
                rtol: 1e-9,
                atol: 1e-13,
                grad: g,
                ..OdeOptions::default()
            };
            let (gy, gp) = grad(|q: &(Tensor, Tensor)| at(o, &q.0, &q.1))(&(y0.clone(), p.clone()));
            let gr: Vec<f64> = gy.to_vec::<f64>().into_iter().chain(gp.to_vec::<f64>()).collect();
            // Sensitivities to relative changes (the rate constants span 10⁻² to 10⁷), against
            // the largest.
            let sc =
                |g: &[f64]| -> Vec<f64> { g.iter().zip(&x).map(|(g, x)| g * x.abs().max(1.0)).collect() };
            let (a, b) = (sc(&gr), sc(&fd));
            let top = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert!((a - b).abs() <= 1e-5 * top, "{g:?} entry {i}: {a} vs finite differences {b}");
            }
        }
    }
}

#[test]
fn event_time_and_state_match_closed_form_and_finite_differences() {
    use adjoint_solvers::ode::odeint_event;
    // Ball thrown from height z0 at speed v under gravity g: lands at (v + √(v² + 2 g z0)) / g.
    let fall = |z: &Tensor, _t: f64, g: &Tensor| Tensor::concat(&[&z.narrow(0, 1, 1), &-g.reshape(&[1])], 0);
    let height = |z: &Tensor, _t: f64, _g: &Tensor| z.narrow(0, 0, 1).sum();
    let landing = |z0: f64, v: f64, g: f64| (v + (v * v + 2.0 * g * z0).sqrt()) / g;
    for method in [Method::Dopri5, Method::Tsit5, Method::Rk4 { dt: 0.01 }, Method::Rosenbrock23] {
        for gm in [GradMethod::Direct, GradMethod::Adjoint, GradMethod::Backsolve] {
            let o = OdeOptions { method, rtol: 1e-10, atol: 1e-12, grad: gm, ..OdeOptions::default() };
            let t_of = |q: &(Tensor, Tensor)| odeint_event(fall, &q.0, 0.0, 10.0, &q.1, height, &o).t;
            let q = (v(&[2.0, 3.0]), Tensor::scalar(9.81f64));
            let e = odeint_event(fall, &q.0, 0.0, 10.0, &q.1, height, &o);
            assert!(e.fired);
            assert!((e.t.item() - landing(2.0, 3.0, 9.81)).abs() < 1e-8, "{method:?}: {}", e.t.item());
            assert!(e.y.to_vec::<f64>()[0].abs() < 1e-8);
            let (gz, gg) = grad(t_of)(&q);
            let h = 1e-6;
            let fd = |a: [f64; 3], b: [f64; 3]| {
                (landing(a[0], a[1], a[2]) - landing(b[0], b[1], b[2])) / (2.0 * h)
            };
            let want = [
                fd([2.0 + h, 3.0, 9.81], [2.0 - h, 3.0, 9.81]),
                fd([2.0, 3.0 + h, 9.81], [2.0, 3.0 - h, 9.81]),
                fd([2.0, 3.0, 9.81 + h], [2.0, 3.0, 9.81 - h]),
            ];
            let got = [gz.to_vec::<f64>()[0], gz.to_vec::<f64>()[1], gg.item()];
            assert_close(&got, &want, 1e-6, &format!("{method:?} {gm:?} landing time"));
        }
    }
    // The pendulum's first pass through θ = 0 (non-linear, no closed form): the time and the
    // angular velocity there against finite differences of the located crossing.
    let o = OdeOptions { rtol: 1e-11, atol: 1e-12, ..OdeOptions::default() };
    let cross = |z: &Tensor, _t: f64, _p: &Tensor| z.narrow(0, 0, 1).sum();
    let out = |q: &(Tensor, Tensor)| {
        let e = odeint_event(pendulum, &q.0, 0.0, 10.0, &q.1, cross, &o);
        e.t + e.y.narrow(0, 1, 1).sum() * 0.5
    };
    let x = [1.0, 0.2, 0.3, 4.0];
    let q = |x: &[f64]| (v(&x[..2]), v(&x[2..]));
    let (gy, gp) = grad(out)(&q(&x));
    let got: Vec<f64> = gy.to_vec::<f64>().into_iter().chain(gp.to_vec::<f64>()).collect();
    let want: Vec<f64> = (0..4)
        .map(|i| {
            let h = 1e-6;
            let (mut a, mut b) = (x, x);
            a[i] += h;
            b[i] -= h;
            (out(&q(&a)).item() - out(&q(&b)).item()) / (2.0 * h)
        })
        .collect();
    assert_close(&got, &want, 1e-6, "pendulum crossing");
    // No crossing before t_max: the end state, not fired.
    let e = odeint_event(pendulum, &v(&[1.0, 0.0]), 0.0, 0.1, &v(&[0.3, 4.0]), cross, &o);
    assert!(!e.fired && e.t.item() == 0.1);
}

#[test]
fn scalar_tier_matches_the_tensor_solver() {
    use adjoint_scalar::{derivative, gradient, Dual, Var};
    use adjoint_solvers::ode::odeint_real;
    let (y0, p, ts) = ([33.0, 6.2], [0.55, 0.028, 0.80, 0.024], yearly(21));
    for method in [Method::Dopri5, Method::Tsit5, Method::Rk4 { dt: 0.05 }] {
        let o =
            OdeOptions { method, rtol: 1e-8, atol: 1e-10, grad: GradMethod::Direct, ..OdeOptions::default() };
        // Same steps, same values (to rounding: the stage sums associate differently).
        let tensor = odeint(lotka_volterra, &v(&y0), &ts, &v(&p), &o).to_vec::<f64>();
        let real: Vec<f64> = odeint_real(lotka_volterra_real, &y0, &ts, &p, &o).concat();
        assert_close(&real, &tensor, 1e-11, &format!("{method:?} values"));
        // Reverse mode on the Var tape = the tensor solver's Direct gradient.
        let loss_t = |q: &(Tensor, Tensor)| loss(&odeint(lotka_volterra, &q.0, &ts, &q.1, &o));
        let (gy, gp) = grad(loss_t)(&(v(&y0), v(&p)));
        let want: Vec<f64> = gy.to_vec::<f64>().into_iter().chain(gp.to_vec::<f64>()).collect();
        let loss_r = |x: &[Var]| {
            let ys = odeint_real(lotka_volterra_real, &x[..2], &ts, &x[2..], &o);
            let flat: Vec<f64> = (0..2 * ts.len()).map(|i| 1.0 + 0.1 * ((i * 7) % 5) as f64).collect();
            let mut acc = Var::constant(0.0);
            for (y, w) in ys.concat().into_iter().zip(flat) {
                acc = acc + y * w + y * y * 1e-3;
            }
            acc
        };
        let x: Vec<f64> = y0.iter().chain(&p).copied().collect();
        assert_close(&gradient(loss_r, &x), &want, 1e-9, &format!("{method:?} Var gradient"));
        // Forward mode: d/dα of the last hare count, against the reverse-mode tensor gradient.
        let last_hare = |a: Dual<f64>| {
            let c = Dual::constant;
            odeint_real(lotka_volterra_real, &[c(33.0), c(6.2)], &ts, &[a, c(0.028), c(0.80), c(0.024)], &o)
                [20][0]
        };
        let ga = grad(|q: &Tensor| {
            odeint(lotka_volterra, &v(&y0), &ts, q, &o).narrow(0, 20, 1).narrow(1, 0, 1).sum()
        })(&v(&p));
        assert_close(
            &[derivative(last_hare, 0.55)],
            &ga.to_vec::<f64>()[..1],
            1e-9,
            &format!("{method:?} Dual"),
        );
    }
}
