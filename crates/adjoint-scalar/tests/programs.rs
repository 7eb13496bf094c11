//! Generic programs with loops, branches and recursion give the same derivatives in every mode.

use adjoint_scalar::prelude::*;
use proptest::prelude::*;

/// `√a` by Newton's method, iterating until converged (a data-dependent `while`).
fn newton_sqrt<T: Real>(a: T) -> T {
    let mut x = if a > T::one() { a } else { T::one() };
    let mut steps = 0;
    while (x * x - a).abs() > T::lit(1e-15) * a && steps < 100 {
        x = (x + a / x) * T::lit(0.5);
        steps += 1;
    }
    // One more step makes the tangent converge as well as the value.
    (x + a / x) * T::lit(0.5)
}

/// A root of `x³ - 2` in `[0, a]` by bisection: the result is `a·c` with `c` a branch-chosen
/// dyadic fraction, so `d/da = result / a` and the second derivative is zero.
fn bisect<T: Real>(a: T) -> T {
    let mut lo = T::zero();
    let mut hi = a;
    for _ in 0..40 {
        let mid = (lo + hi) * T::lit(0.5);
        match (mid * mid * mid - T::lit(2.0)).partial_cmp(&T::zero()) {
            Some(std::cmp::Ordering::Greater) => hi = mid,
            _ => lo = mid,
        }
    }
    (lo + hi) * T::lit(0.5)
}

/// `x^n` by recursive squaring.
fn rpow<T: Real>(x: T, n: u32) -> T {
    match n {
        0 => T::one(),
        _ if n.is_multiple_of(2) => {
            let h = rpow(x, n / 2);
            h * h
        }
        _ => x * rpow(x, n - 1),
    }
}

/// Explicit RK4 for `y' = -k y + sin(t)` with a branch on the state; parameters `(k, y0)`.
fn rk4<T: Real>(p: &[T]) -> T {
    let (k, mut y) = (p[0], p[1]);
    let h = T::lit(0.05);
    let f = |t: T, y: T| {
        let forcing = if y > T::zero() { t.sin() } else { t.cos() * T::lit(0.5) };
        -k * y + forcing
    };
    let mut t = T::zero();
    for _ in 0..40 {
        let k1 = f(t, y);
        let k2 = f(t + h * T::lit(0.5), y + h * T::lit(0.5) * k1);
        let k3 = f(t + h * T::lit(0.5), y + h * T::lit(0.5) * k2);
        let k4 = f(t + h, y + h * k3);
        y += h / T::lit(6.0) * (k1 + T::lit(2.0) * k2 + T::lit(2.0) * k3 + k4);
        t += h;
    }
    y * y
}

struct Rk4;
impl ScalarFn for Rk4 {
    fn eval<T: Real>(&self, x: &[T]) -> T {
        rk4(x)
    }
}

struct Scalar<F>(F);
impl<F: Fn(f64) -> f64> Scalar<F> {
    fn fd(&self, x: f64) -> (f64, f64) {
        let h = 1e-5 * (1.0 + x.abs());
        let f = &self.0;
        ((f(x + h) - f(x - h)) / (2.0 * h), (f(x + h) - 2.0 * f(x) + f(x - h)) / (h * h))
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// First and second derivative of a generic scalar program in every mode.
macro_rules! all_modes {
    ($f:ident, $x:expr_2021) => {{
        let x: f64 = $x;
        let dual = derivative(|v| $f(v), x);
        let dv = $f(DualVec::<f64, 2>::variable(x, 1)).eps[1];
        let var = gradient(|v: &[Var]| $f(v[0]), &[x])[0];
        let nested = derivative(|v: Dual<f64>| derivative(|w| $f(w), v), x);
        let rof = gradient(|v: &[Var]| $f(Dual::variable(v[0])).eps, &[x])[0];
        struct S;
        impl ScalarFn for S {
            fn eval<T: Real>(&self, v: &[T]) -> T {
                $f(v[0])
            }
        }
        let fov = hessian(&S, &[x])[(0, 0)];
        for (name, d) in [("DualVec", dv), ("Var", var)] {
            assert!(close(d, dual, 1e-13), "{} at {x}: {name} {d} vs Dual {dual}", stringify!($f));
        }
        for (name, d) in [("reverse-over-forward", rof), ("Dual<Var>", fov)] {
            assert!(close(d, nested, 1e-12), "{} at {x}: {name} {d} vs Dual<Dual> {nested}", stringify!($f));
        }
        (dual, nested)
    }};
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn newton_sqrt_in_every_mode(a in 0.05f64..50.0) {
        let (d1, d2) = all_modes!(newton_sqrt, a);
        prop_assert!(close(d1, 0.5 / a.sqrt(), 1e-12), "{} vs {}", d1, 0.5 / a.sqrt());
        prop_assert!(close(d2, -0.25 * a.powf(-1.5), 1e-9), "{} vs {}", d2, -0.25 * a.powf(-1.5));
    }

    #[test]
    fn bisection_in_every_mode(a in 1.5f64..10.0) {
        let (d1, d2) = all_modes!(bisect, a);
        let r = bisect(a);
        prop_assert!((r - 2f64.cbrt()).abs() < 1e-9);
        prop_assert!(close(d1, r / a, 1e-14) && d2 == 0.0);
    }

    #[test]
    fn recursive_power_in_every_mode(x in -2.0f64..2.0) {
        fn p13<T: Real>(x: T) -> T { rpow(x, 13) }
        let (d1, d2) = all_modes!(p13, x);
        prop_assert!(close(d1, 13.0 * x.powi(12), 1e-13));
        prop_assert!(close(d2, 156.0 * x.powi(11), 1e-13));
        let fd = Scalar(p13::<f64>).fd(x);
        prop_assert!(close(d1, fd.0, 1e-6) && close(d2, fd.1, 1e-3));
    }

    #[test]
    fn rk4_with_branches_in_every_mode(k in 0.1f64..2.0, y0 in -1.0f64..1.0) {
        let x = [k, y0];
        let rev = gradient(|v: &[Var]| rk4(v), &x);
        let fwd = rk4(&[DualVec::<f64, 2>::variable(k, 0), DualVec::variable(y0, 1)]).eps;
        let h = 1e-6;
        for i in 0..2 {
            let mut p = x;
            let mut m = x;
            p[i] += h;
            m[i] -= h;
            let fd = (rk4(&p) - rk4(&m)) / (2.0 * h);
            prop_assert!(close(rev[i], fwd[i], 1e-12), "d{}: Var {} vs DualVec {}", i, rev[i], fwd[i]);
            prop_assert!(close(rev[i], fd, 1e-5), "d{}: Var {} vs fd {}", i, rev[i], fd);
        }
        let hm = hessian(&Rk4, &x);
        let nested = |i: usize, j: usize| {
            let mut e = [Dual::constant(Dual::constant(k)), Dual::constant(Dual::constant(y0))];
            e[i].re.eps = 1.0;
            e[j].eps.re += 1.0;
            rk4(&e).eps.eps
        };
        for i in 0..2 {
            for j in 0..2 {
                prop_assert!(close(hm[(i, j)], nested(i, j), 1e-10), "H[{},{}] {} vs {}", i, j, hm[(i, j)], nested(i, j));
            }
        }
        prop_assert!(close(hm[(0, 1)], hm[(1, 0)], 1e-10));
    }
}
