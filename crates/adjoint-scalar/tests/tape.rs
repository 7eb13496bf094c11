//! The `Var` tape: scopes, memory reuse, nesting, constants, and perturbation confusion.

use adjoint_scalar::preaccumulate;
use adjoint_scalar::prelude::*;

#[test]
fn scope_reclaims_nodes() {
    let outer = Tape::new();
    assert!(outer.is_empty());
    for _ in 0..3 {
        let t = Tape::new();
        let x = t.var(1.0);
        let mut y = x;
        for _ in 0..100 {
            y = y * x + 1.0;
        }
        assert_eq!(t.len(), 201);
        assert!(t.gradient(y).wrt(x) > 0.0);
        drop(t);
        // Everything recorded in the scope is gone.
        assert_eq!(outer.len(), 0);
    }
}

#[test]
fn constants_record_nothing() {
    let t = Tape::new();
    let c = Var::constant(2.0);
    let d = (c * c).sin() + c.exp() * 3.0;
    assert!(d.is_constant());
    assert_eq!(t.len(), 0);
    let x = t.var(1.0);
    let y = x * c;
    assert_eq!(t.len(), 2);
    let g = t.gradient(y);
    assert_eq!((g.wrt(x), g.wrt(c)), (2.0, 0.0));
}

#[test]
fn gradient_of_unrelated_and_of_constant_is_zero() {
    let t = Tape::new();
    let x = t.var(1.0);
    let y = t.var(2.0);
    let f = x.sin();
    let g = t.gradient(f);
    assert_eq!((g.wrt(x), g.wrt(y)), (1f64.cos(), 0.0));
    assert_eq!(t.gradient(Var::constant(3.0)).wrt(x), 0.0);
}

#[test]
fn repeated_sweeps_on_one_tape() {
    let t = Tape::new();
    let x = t.var(0.5);
    let a = x.exp();
    let b = x * x;
    let mut out = [0.0];
    t.gradient_into(a, &[x], &mut out);
    assert_eq!(out[0], 0.5f64.exp());
    t.gradient_into(b, &[x], &mut out);
    assert_eq!(out[0], 1.0);
}

#[test]
fn inner_scope_treats_outer_vars_as_constants() {
    let outer = Tape::new();
    let a = outer.var(3.0);
    let (inner_val, inner_grad) = {
        let inner = Tape::new();
        let x = inner.var(2.0);
        let f = x * x * a;
        let g = inner.gradient(f);
        assert_eq!(g.wrt(a), 0.0, "outer variable is a constant to the inner sweep");
        (f, g.wrt(x))
    };
    assert_eq!(inner_grad, 12.0);
    // The inner result is a node of the dropped scope: use its value, not the Var.
    let y = a * inner_val.value();
    assert_eq!(outer.gradient(y).wrt(a), 12.0);
}

#[test]
fn inner_optimisation_loop_inside_outer_gradient() {
    // Outer objective: F(p) = p * argmin_x (x - p)^2 found by 50 inner gradient steps.
    // Only values cross the boundary, so dF/dp = argmin = p (the inner result is treated as
    // data, as Stan's nested gradients do).
    let g = gradient(
        |p: &[Var]| {
            let mut x = 0.0;
            for _ in 0..50 {
                let inner = Tape::new();
                let xv = inner.var(x);
                let obj = (xv - p[0].value()).powi(2);
                x -= 0.25 * inner.gradient(obj).wrt(xv);
            }
            p[0] * x
        },
        &[2.0],
    );
    assert!((g[0] - 2.0).abs() < 1e-12);
}

#[test]
fn dropping_outer_scope_first_does_not_panic() {
    let outer = Tape::new();
    let inner = Tape::new();
    let x = inner.var(1.0);
    let _ = x * x;
    drop(outer);
    drop(inner);
    let fresh = Tape::new();
    assert_eq!(fresh.len(), 0);
    let y = fresh.var(2.0);
    assert_eq!(fresh.gradient(y * y).wrt(y), 4.0);
}

#[test]
fn capacity_is_reused_between_gradients() {
    // Many gradients in a loop must not grow the tape.
    let f = |x: &[Var]| x.iter().map(|&v| v.sin() * v).sum::<Var>();
    let x = vec![0.3; 1000];
    let first = gradient(f, &x);
    for _ in 0..50 {
        assert_eq!(gradient(f, &x), first);
    }
    let t = Tape::new();
    assert_eq!(t.len(), 0);
}

#[test]
fn perturbation_confusion_classic() {
    // d/dx (x * d/dy (x + y)) = 1, not 2: the inner derivative lifts x as a constant.
    for x0 in [0.0, 1.0, -3.5] {
        let d = derivative(|x: Dual<f64>| x * derivative(|y: Dual<Dual<f64>>| Dual::constant(x) + y, x), x0);
        assert_eq!(d, 1.0);
    }
    // Generic code gets it right with no lifting by hand: the inner level is opened at T.
    fn inner<T: Real>(x: T) -> T {
        derivative(|y: Dual<T>| Dual::constant(x) * y + y, x)
    }
    // d/dx (x * inner(x)) where inner(x) = x + 1, so the answer is 2x + 1.
    assert_eq!(derivative(|x| x * inner(x), 2.0), 5.0);
    // The same in reverse over forward.
    assert_eq!(gradient(|v: &[Var]| v[0] * inner(v[0]), &[2.0]), vec![5.0]);
}

#[test]
fn real_api_on_var() {
    let t = Tape::new();
    let x = t.var(2.0);
    assert_eq!(x.value(), 2.0);
    assert_eq!(Real::value(&x), 2.0);
    assert_eq!(format!("{}", x * 2.0), "4");
    let s: Var = [x, x, x].into_iter().sum();
    assert_eq!(t.gradient(s).wrt(x), 3.0);
    let y = 1.0 - x / 4.0 + 2.0 / x;
    assert_eq!(t.gradient(y).wrt(x), -0.25 - 0.5);
}

/// `preaccumulate` records a linear combination with the same gradient as taping the function,
/// whatever mix of constants, enclosing-scope variables and repeated inputs it is given.
#[test]
fn preaccumulate_matches_direct_taping() {
    fn f(v: &[Var]) -> Var {
        (v[0] * v[1]).sin() * v[2].exp() + v[3] / (v[0] + 2.0) - v[1].powi(3) * v[3]
    }
    let outer = Tape::new();
    let z = outer.var(0.3);
    let direct_and_pre = |pre: bool| {
        let t = Tape::new();
        let x = t.vars(&[0.7, -1.2]);
        // x[0] twice, a constant, a variable of the enclosing scope.
        let args = [x[0], x[1] * x[0], Var::constant(0.5), z];
        let before = t.len();
        let y = if pre { preaccumulate(&args, f) } else { f(&args) };
        let recorded = t.len() - before;
        let g = t.gradient(y.sin());
        (y.value(), [g.wrt(x[0]), g.wrt(x[1])], recorded)
    };
    let (v1, g1, n1) = direct_and_pre(false);
    let (v2, g2, n2) = direct_and_pre(true);
    assert_eq!(v1, v2);
    for (a, b) in g1.iter().zip(&g2) {
        assert!((a - b).abs() <= 1e-14 * a.abs().max(1.0), "{g1:?} vs {g2:?}");
    }
    // Three non-constant inputs: one n-ary node (two payload slots and a header), against
    // every operation of `f`.
    assert_eq!(n2, 3);
    assert!(n1 >= 9, "{n1}");
    // The enclosing scope's variable gets its derivative through the outer sweep.
    let y = preaccumulate(&[z, z], |v| v[0] * v[1]);
    assert!((outer.gradient(y).wrt(z) - 0.6).abs() < 1e-15);
    // One input: one node; constants only: no node.
    let n = outer.len();
    let y = preaccumulate(&[z], |v| v[0].exp());
    assert_eq!(outer.len() - n, 1);
    assert!((outer.gradient(y).wrt(z) - 0.3f64.exp()).abs() < 1e-15);
    let c = preaccumulate(&[Var::constant(2.0)], |v| v[0] * v[0]);
    assert!(c.is_constant() && c.value() == 4.0);
}
