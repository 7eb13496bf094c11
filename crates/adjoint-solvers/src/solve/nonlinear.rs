//! Fixed points, roots and minimisers with implicit gradients.
//!
//! At a solution `x*(p)` of `F(x, p) = 0` the implicit function theorem gives
//! `∂x*/∂p = -(∂F/∂x)⁻¹ ∂F/∂p`, so the VJP is `w = (∂F/∂x)⁻ᵀ x̄`, `p̄ = -(∂F/∂p)ᵀ w`: one
//! transposed linear solve (GMRES or CG on vector-Jacobian products) and one VJP in `p`.
//! - fixed point `x = f(x, p)`: `F = f(x, p) - x`;
//! - root `f(x, p) = 0`: `F = f`;
//! - minimiser of `f(x, p)`: `F = ∇ₓf` (the Hessian is symmetric: CG);
//! - box-constrained minimiser: the same on the coordinates not at a bound (their derivative
//!   is zero where a bound is active, assuming strict complementarity).
//!
//! The starting point gets a zero cotangent: the solution does not depend on it.

use std::rc::Rc;

use adjoint_core::{grad, jvp, value_and_grad, vjp, Params, Tensor};

use super::krylov::{clone_params, iterate, linear_solver, Method};
use super::{implicit_solver, norm, not_converged, vdot, SolveOptions, Solver};

/// A function of `(x, p)`: the iteration map, the residual, the objective, or (for the
/// forward pass) the plain iterations from `x0`.
type Forward<P> = Rc<dyn Fn(&Tensor, &P) -> Tensor>;
/// `(x*, p, x̄) -> p̄`.
type Backward<P> = Rc<dyn Fn(&Tensor, &P, &Tensor) -> P>;

/// A solver of `(x0, p)` whose reverse rule is `backward`; `x0` gets a zero cotangent.
fn implicit<P: Params + 'static>(forward: Forward<P>, backward: Backward<P>) -> Solver<P> {
    implicit_solver(
        move |q: &(Tensor, P)| forward(&q.0, &q.1),
        move |x: &Tensor, p: &P, xbar: &Tensor| (x.zeros_like(), backward(x, p, xbar)),
    )
}

/// `w` with `(∂F/∂x)ᵀ w = x̄` given `v ↦ (∂F/∂x)ᵀ v` (GMRES, or CG when symmetric positive
/// definite), itself differentiable.
fn transposed_solve<P: Params + 'static>(
    m: Method,
    apply_t: impl Fn(&Tensor, &(Tensor, P)) -> Tensor + 'static,
    x: &Tensor,
    p: &P,
    xbar: &Tensor,
    o: SolveOptions,
) -> Tensor {
    let solver = linear_solver::<(Tensor, P)>(m, Rc::new(apply_t), o);
    solver(&(xbar.clone(), (x.clone(), clone_params(p))))
}

/// `p̄ = ∂⟨w, g(x, p)⟩/∂p` at fixed `x`.
fn param_vjp<P: Params>(g: &dyn Fn(&Tensor, &P) -> Tensor, x: &Tensor, p: &P, w: &Tensor) -> P {
    grad(|p: &P| (w * g(x, p)).sum())(p)
}

fn negate<P: Params>(p: P) -> P {
    p.map_tensors(&mut |t| -t)
}

/// `vᵀ ∂g/∂x` at `(x, p)`.
fn x_vjp<P: Params>(g: &dyn Fn(&Tensor, &P) -> Tensor, x: &Tensor, p: &P, v: &Tensor) -> Tensor {
    let (_, pb) = vjp(|y: &Tensor| g(y, p), x);
    pb(v)
}

// ------------------------------------------------------------------ fixed point

/// Plain or Anderson-accelerated iteration of `x ↦ f(x, p)`.
fn fixed_point_iter(f: &dyn Fn(&Tensor) -> Tensor, x0: &Tensor, o: &SolveOptions) -> Tensor {
    let m = o.memory;
    let mut x = x0.clone();
    let (mut dxs, mut dgs): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (Vec::new(), Vec::new());
    let mut prev: Option<(Vec<f64>, Vec<f64>)> = None;
    let mut res = f64::INFINITY;
    for _ in 0..o.max_iter {
        let fx = f(&x);
        let g = &fx - &x;
        res = norm(&g);
        if res <= o.tol * (1.0 + norm(&x)) {
            return fx;
        }
        if m == 0 {
            x = fx;
            continue;
        }
        // Anderson (type II): x⁺ = x + g - (ΔX + ΔG) γ, γ = argmin ‖g - ΔG γ‖.
        let (xv, gv) = (x.to_vec::<f64>(), g.to_vec::<f64>());
        if let Some((px, pg)) = prev.take() {
            dxs.push(xv.iter().zip(&px).map(|(a, b)| a - b).collect());
            dgs.push(gv.iter().zip(&pg).map(|(a, b)| a - b).collect());
            if dxs.len() > m {
                dxs.remove(0);
                dgs.remove(0);
            }
        }
        prev = Some((xv.clone(), gv.clone()));
        let gamma = least_squares(&dgs, &gv);
        let next: Vec<f64> = (0..xv.len())
            .map(|i| {
                let corr: f64 = gamma.iter().enumerate().map(|(j, c)| c * (dxs[j][i] + dgs[j][i])).sum();
                xv[i] + gv[i] - corr
            })
            .collect();
        x = Tensor::from_vec(next, x.shape()).cast(x.dtype());
    }
    if o.strict {
        not_converged("fixed_point", o.max_iter, res);
    }
    f(&x)
}

/// `γ = argmin ‖g - Σ γⱼ colⱼ‖` by the (regularised) normal equations; small systems only.
fn least_squares(cols: &[Vec<f64>], g: &[f64]) -> Vec<f64> {
    let k = cols.len();
    if k == 0 {
        return Vec::new();
    }
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut a: Vec<Vec<f64>> = (0..k).map(|i| (0..k).map(|j| dot(&cols[i], &cols[j])).collect()).collect();
    let mut rhs: Vec<f64> = (0..k).map(|i| dot(&cols[i], g)).collect();
    let scale = (0..k).map(|i| a[i][i]).fold(0.0f64, f64::max).max(f64::MIN_POSITIVE);
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += 1e-12 * scale;
    }
    // Gaussian elimination with partial pivoting.
    for c in 0..k {
        let piv = (c..k).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap_or(c);
        a.swap(c, piv);
        rhs.swap(c, piv);
        if a[c][c] == 0.0 {
            continue;
        }
        for r in c + 1..k {
            let f = a[r][c] / a[c][c];
            let (top, bottom) = a.split_at_mut(r);
            for (x, y) in bottom[0][c..k].iter_mut().zip(&top[c][c..k]) {
                *x -= f * y;
            }
            rhs[r] -= f * rhs[c];
        }
    }
    let mut y = vec![0.0; k];
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|j| a[i][j] * y[j]).sum();
        y[i] = if a[i][i] == 0.0 { 0.0 } else { (rhs[i] - s) / a[i][i] };
    }
    y
}

/// The fixed point `x* = f(x*, params)`, iterated from `x0` (Anderson-accelerated with history
/// `opts.memory`; 0 for plain iteration). Differentiable in `params` implicitly:
/// `p̄ = (∂f/∂p)ᵀ w` with `(I - ∂f/∂x)ᵀ w = x̄` (GMRES).
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::solve::{fixed_point, SolveOptions};
/// // x = cos(a·x): d x*/da = -x sin(a x) / (1 + a sin(a x)).
/// let o = SolveOptions::default();
/// let f = |x: &Tensor, a: &Tensor| (x * a).cos();
/// let a = Tensor::scalar(0.5f64);
/// let x = fixed_point(f, &Tensor::scalar(0.0f64), &a, &o).item();
/// let g = grad(|a: &Tensor| fixed_point(f, &Tensor::scalar(0.0f64), a, &o))(&a).item();
/// let s = (0.5 * x).sin();
/// assert!((g + x * s / (1.0 + 0.5 * s)).abs() < 1e-8);
/// ```
pub fn fixed_point<P: Params + 'static>(
    f: impl Fn(&Tensor, &P) -> Tensor + 'static,
    x0: &Tensor,
    params: &P,
    opts: &SolveOptions,
) -> Tensor {
    let (f, o) = (Rc::new(f), *opts);
    let f1 = f.clone();
    let forward: Forward<P> =
        Rc::new(move |x0: &Tensor, p: &P| fixed_point_iter(&|x: &Tensor| f1(x, p), x0, &o));
    let backward: Backward<P> = Rc::new(move |x: &Tensor, p: &P, xbar: &Tensor| {
        let f2 = f.clone();
        let w = transposed_solve(
            Method::Gmres,
            move |v: &Tensor, q: &(Tensor, P)| v - x_vjp(&*f2, &q.0, &q.1, v),
            x,
            p,
            xbar,
            o,
        );
        param_vjp(&*f, x, p, &w)
    });
    implicit(forward, backward)(&(x0.clone(), clone_params(params)))
}

// ------------------------------------------------------------------ root

/// Newton's method with a backtracking line search on `‖f‖²`; the Newton step solved
/// matrix-free by GMRES on Jacobian-vector products.
fn newton_iter(f: &dyn Fn(&Tensor) -> Tensor, x0: &Tensor, o: &SolveOptions) -> Tensor {
    let mut x = x0.clone();
    let mut fx = f(&x);
    let mut res = norm(&fx);
    for _ in 0..o.max_iter {
        if res <= o.tol {
            return x;
        }
        let xc = x.clone();
        let jv = move |v: &Tensor| jvp(|y: &Tensor| f(y), &xc, v).1;
        let inner = SolveOptions { tol: 1e-3f64.min(res).max(o.tol * 1e-2), strict: false, ..*o };
        let d = iterate(Method::Gmres, &jv, &(-&fx), &inner);
        let mut t = 1.0;
        loop {
            let xn = &x + &d * t;
            let fn_ = f(&xn);
            let rn = norm(&fn_);
            if rn <= (1.0 - 1e-4 * t) * res || t < 1e-10 {
                x = xn;
                fx = fn_;
                res = rn;
                break;
            }
            t *= 0.5;
        }
    }
    if o.strict {
        not_converged("root", o.max_iter, res);
    }
    x
}

/// A root `f(x*, params) = 0` by Newton's method from `x0` (line search, Newton steps by
/// GMRES on Jacobian-vector products: no Jacobian is formed). Differentiable in `params`
/// implicitly: `p̄ = -(∂f/∂p)ᵀ w` with `(∂f/∂x)ᵀ w = x̄`.
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::solve::{root, SolveOptions};
/// // x² = a: x* = √a, dx*/da = 1/(2√a).
/// let o = SolveOptions::default();
/// let f = |x: &Tensor, a: &Tensor| x * x - a;
/// let a = Tensor::scalar(4.0f64);
/// assert!((root(f, &Tensor::scalar(1.0f64), &a, &o).item() - 2.0).abs() < 1e-10);
/// let g = grad(|a: &Tensor| root(f, &Tensor::scalar(1.0f64), a, &o))(&a).item();
/// assert!((g - 0.25).abs() < 1e-10);
/// ```
pub fn root<P: Params + 'static>(
    f: impl Fn(&Tensor, &P) -> Tensor + 'static,
    x0: &Tensor,
    params: &P,
    opts: &SolveOptions,
) -> Tensor {
    root_with(f, x0, params, RootSolvers::default(), opts)
}

/// A user's solver for [`root_with`]: `(g, b) ↦ x`. For `solve`, `g` is the residual
/// `x ↦ f(x, params)` and `b` the starting point, and it returns a root of `g`. For
/// `tangent_solve`, `g` is the linear map `v ↦ (∂f/∂x)ᵀ v` at the root and `b` the cotangent
/// `x̄`, and it returns `w` with `g(w) = b`.
pub type UserSolve = Rc<dyn Fn(&dyn Fn(&Tensor) -> Tensor, &Tensor) -> Tensor>;

/// The solvers [`root_with`] uses in place of its own (JAX's `custom_root`): `None` keeps
/// Newton (`solve`) or GMRES (`tangent_solve`).
#[derive(Clone, Default)]
pub struct RootSolvers {
    /// Finds the root (default: Newton with line search).
    pub solve: Option<UserSolve>,
    /// Solves the transposed linear system of the implicit gradient (default: GMRES on
    /// vector-Jacobian products). Write it with differentiable ops (e.g. a dense
    /// [`solve`](crate::linalg::solve) of the materialised Jacobian) if second derivatives
    /// are needed.
    pub tangent_solve: Option<UserSolve>,
}

/// [`root`] with the user's own solver and/or tangent solve ([`RootSolvers`]); the gradient is
/// the same implicit one, whichever solver found the root.
///
/// ```
/// use std::rc::Rc;
/// use adjoint_core::{grad, jacfwd, Tensor};
/// use adjoint_solvers::linalg::solve;
/// use adjoint_solvers::solve::{root_with, RootSolvers, SolveOptions};
/// // Dense Newton and a dense tangent solve, both by materialised Jacobians.
/// let dense = |g: &dyn Fn(&Tensor) -> Tensor, b: &Tensor| solve(&jacfwd(|v: &Tensor| g(v))(b), b);
/// let newton = |g: &dyn Fn(&Tensor) -> Tensor, x0: &Tensor| {
///     let mut x = x0.clone();
///     for _ in 0..30 {
///         x = &x - solve(&jacfwd(|y: &Tensor| g(y))(&x), &g(&x));
///     }
///     x
/// };
/// let s = RootSolvers { solve: Some(Rc::new(newton)), tangent_solve: Some(Rc::new(dense)) };
/// let f = |x: &Tensor, a: &Tensor| x * x * x - a; // x* = a^(1/3)
/// let a = Tensor::from_vec(vec![8.0f64, 27.0], &[2]);
/// let x0 = Tensor::from_vec(vec![1.0f64, 1.0], &[2]);
/// let g = grad(|a: &Tensor| root_with(f, &x0, a, s.clone(), &SolveOptions::default()).sum())(&a);
/// let want = [1.0 / 12.0, 1.0 / 27.0]; // (1/3) a^(-2/3)
/// assert!(g.to_vec::<f64>().iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12));
/// ```
pub fn root_with<P: Params + 'static>(
    f: impl Fn(&Tensor, &P) -> Tensor + 'static,
    x0: &Tensor,
    params: &P,
    solvers: RootSolvers,
    opts: &SolveOptions,
) -> Tensor {
    let (f, o) = (Rc::new(f), *opts);
    let f1 = f.clone();
    let user = solvers.solve;
    let forward: Forward<P> = Rc::new(move |x0: &Tensor, p: &P| {
        let g = |x: &Tensor| f1(x, p);
        match &user {
            Some(s) => s(&g, x0),
            None => newton_iter(&g, x0, &o),
        }
    });
    let tangent = solvers.tangent_solve;
    let backward: Backward<P> = Rc::new(move |x: &Tensor, p: &P, xbar: &Tensor| {
        let w = match &tangent {
            Some(t) => t(&|v: &Tensor| x_vjp(&*f, x, p, v), xbar),
            None => {
                let f2 = f.clone();
                transposed_solve(
                    Method::Gmres,
                    move |v: &Tensor, q: &(Tensor, P)| x_vjp(&*f2, &q.0, &q.1, v),
                    x,
                    p,
                    xbar,
                    o,
                )
            }
        };
        negate(param_vjp(&*f, x, p, &w))
    });
    implicit(forward, backward)(&(x0.clone(), clone_params(params)))
}

// ------------------------------------------------------------------ minimisation

/// `∇ₓ f(x, p)`.
fn gradient<P: Params>(f: &dyn Fn(&Tensor, &P) -> Tensor, x: &Tensor, p: &P) -> Tensor {
    grad(|y: &Tensor| f(y, p))(x)
}

/// Newton–CG with an Armijo line search (steepest descent where the Hessian is not positive
/// definite along the Newton direction), optionally projected onto a box.
fn minimise(
    f: &dyn Fn(&Tensor) -> Tensor,
    x0: &Tensor,
    bounds: Option<(f64, f64)>,
    o: &SolveOptions,
    what: &str,
) -> Tensor {
    let project = |x: &Tensor| match bounds {
        Some((lo, hi)) => {
            x.maximum(&Tensor::scalar_of(lo, x.dtype())).minimum(&Tensor::scalar_of(hi, x.dtype()))
        }
        None => x.clone(),
    };
    let g_of = |x: &Tensor| grad(|y: &Tensor| f(y))(x);
    let mut x = project(x0);
    let mut fx = f(&x).item();
    let mut res = f64::INFINITY;
    for _ in 0..o.max_iter {
        let g = g_of(&x);
        res = norm(&(&x - project(&(&x - &g))));
        if res <= o.tol {
            return x;
        }
        let d = match bounds {
            Some(_) => -&g,
            None => {
                let xc = x.clone();
                let hv = move |v: &Tensor| jvp(|y: &Tensor| g_of(y), &xc, v).1;
                let inner = SolveOptions { tol: 1e-3f64.min(res).max(o.tol * 1e-2), strict: false, ..*o };
                let d = iterate(Method::Cg, &hv, &(-&g), &inner);
                if vdot(&d, &g) < 0.0 && d.to_vec::<f64>().iter().all(|v| v.is_finite()) {
                    d
                } else {
                    -&g
                }
            }
        };
        let mut t = 1.0;
        loop {
            let xn = project(&(&x + &d * t));
            let fnew = f(&xn).item();
            if fnew <= fx + 1e-4 * vdot(&g, &(&xn - &x)) || t < 1e-12 {
                x = xn;
                fx = fnew;
                break;
            }
            t *= 0.5;
        }
    }
    if o.strict {
        not_converged(what, o.max_iter, res);
    }
    x
}

/// The minimiser `x* = argmin_x f(x, params)` of a smooth scalar `f`, by Newton–CG from `x0`
/// (Hessian-vector products by forward-over-reverse; no Hessian is formed). Differentiable in
/// `params` implicitly (the stationarity condition `∇ₓf = 0`): `p̄ = -(∂∇ₓf/∂p)ᵀ w`,
/// `H w = x̄` by CG.
///
/// Newton–CG is the default because the implicit gradient is only as good as the stationarity
/// of `x*`, and Newton converges quadratically to `opts.tol`; any other minimiser (L-BFGS from
/// `adjoint-nn`, a solver of your own) plugs in through [`argmin_with`] with the same
/// implicit gradient.
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::solve::{argmin, SolveOptions};
/// // argmin (x - a)² + x⁴/4 … here simply (x - a)²: x* = a, dx*/da = 1.
/// let o = SolveOptions::default();
/// let f = |x: &Tensor, a: &Tensor| ((x - a) * (x - a)).sum();
/// let g = grad(|a: &Tensor| argmin(f, &Tensor::zeros(&[2]).to_f64(), a, &o).sum())(&Tensor::ones(&[2]).to_f64());
/// assert!((g.to_vec::<f64>()[0] - 1.0).abs() < 1e-10);
/// ```
pub fn argmin<P: Params + 'static>(
    f: impl Fn(&Tensor, &P) -> Tensor + 'static,
    x0: &Tensor,
    params: &P,
    opts: &SolveOptions,
) -> Tensor {
    argmin_impl(Rc::new(f), x0, params, None, None, opts, "argmin")
}

/// [`argmin`] over the box `lower ≤ x ≤ upper` (elementwise), by projected gradient with an
/// Armijo line search. The implicit gradient holds coordinates at an active bound fixed (their
/// derivative is zero) and differentiates the stationarity condition on the others.
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::solve::{argmin_box, SolveOptions};
/// // (x - a)² on [0, 1] with a = (0.5, 3): x* = (0.5, 1); the bound coordinate does not move.
/// let o = SolveOptions::default();
/// let f = |x: &Tensor, a: &Tensor| ((x - a) * (x - a)).sum();
/// let a = Tensor::from_vec(vec![0.5f64, 3.0], &[2]);
/// let g = grad(|a: &Tensor| argmin_box(f, &Tensor::zeros(&[2]).to_f64(), a, 0.0, 1.0, &o).sum())(&a);
/// assert!((g.to_vec::<f64>()[0] - 1.0).abs() < 1e-8 && g.to_vec::<f64>()[1].abs() < 1e-12);
/// ```
pub fn argmin_box<P: Params + 'static>(
    f: impl Fn(&Tensor, &P) -> Tensor + 'static,
    x0: &Tensor,
    params: &P,
    lower: f64,
    upper: f64,
    opts: &SolveOptions,
) -> Tensor {
    argmin_impl(Rc::new(f), x0, params, Some((lower, upper)), None, opts, "argmin_box")
}

/// The objective `x ↦ (f(x), ∇f(x))` on plain values, as a user's minimiser receives it.
pub type Objective<'a> = dyn Fn(&Tensor) -> (f64, Tensor) + 'a;

/// [`argmin`] with the minimisation done by `minimiser(objective, x0)`, which must return a
/// stationary point to about `opts.tol` (the implicit gradient assumes `∇ₓf(x*) = 0`). The
/// gradient with respect to `params` is the same implicit one as [`argmin`]'s. For example
/// L-BFGS from `adjoint-nn`:
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_nn::optim::{Lbfgs, LbfgsConfig};
/// use adjoint_solvers::solve::{argmin_with, Objective, SolveOptions};
/// let lbfgs = |obj: &Objective, x0: &Tensor| {
///     let cfg = LbfgsConfig { line_search: true, max_iter: 200, tolerance_grad: 1e-12, tolerance_change: 0.0, ..Default::default() };
///     Lbfgs::new(x0, cfg).step(x0, |x| obj(x)).params
/// };
/// // argmin (x - a)² + x⁴: dx*/da = 1 / (2 + 12 x*²) / 2 · 2.
/// let f = |x: &Tensor, a: &Tensor| ((x - a).square() + x.square().square()).sum();
/// let a = Tensor::scalar(0.7f64);
/// let o = SolveOptions::default();
/// let x = argmin_with(f, &Tensor::scalar(0.0f64), &a, lbfgs, &o).item();
/// let g = grad(|a: &Tensor| argmin_with(f, &Tensor::scalar(0.0f64), a, lbfgs, &o))(&a).item();
/// assert!((2.0 * (x - 0.7) + 4.0 * x.powi(3)).abs() < 1e-10);
/// assert!((g - 2.0 / (2.0 + 12.0 * x * x)).abs() < 1e-8);
/// ```
pub fn argmin_with<P, M>(
    f: impl Fn(&Tensor, &P) -> Tensor + 'static,
    x0: &Tensor,
    params: &P,
    minimiser: M,
    opts: &SolveOptions,
) -> Tensor
where
    P: Params + 'static,
    M: Fn(&Objective, &Tensor) -> Tensor + 'static,
{
    let solver: Minimiser = Rc::new(move |obj: &dyn Fn(&Tensor) -> Tensor, x0: &Tensor| {
        minimiser(
            &|x: &Tensor| {
                let (v, g) = value_and_grad(|y: &Tensor| obj(y))(x);
                (v.item(), g)
            },
            x0,
        )
    });
    argmin_impl(Rc::new(f), x0, params, None, Some(solver), opts, "argmin_with")
}

/// A minimiser of an objective given as a tensor function, from a start.
type Minimiser = Rc<dyn Fn(&dyn Fn(&Tensor) -> Tensor, &Tensor) -> Tensor>;

fn argmin_impl<P: Params + 'static>(
    f: Forward<P>,
    x0: &Tensor,
    params: &P,
    bounds: Option<(f64, f64)>,
    solver: Option<Minimiser>,
    opts: &SolveOptions,
    what: &'static str,
) -> Tensor {
    let o = *opts;
    let f1 = f.clone();
    let solver: Minimiser = solver.unwrap_or_else(|| {
        Rc::new(move |obj: &dyn Fn(&Tensor) -> Tensor, x0: &Tensor| minimise(obj, x0, bounds, &o, what))
    });
    let forward: Forward<P> = Rc::new(move |x0: &Tensor, p: &P| solver(&|x: &Tensor| f1(x, p), x0));
    let backward: Backward<P> = Rc::new(move |x: &Tensor, p: &P, xbar: &Tensor| {
        // Free coordinates: strictly inside the box (all of them without bounds).
        let free = match bounds {
            Some((lo, hi)) => {
                let eps = 1e-9 * (1.0 + hi.abs().max(lo.abs()));
                x.gt_scalar(lo + eps).logical_and(&x.lt_scalar(hi - eps)).cast(x.dtype())
            }
            None => x.ones_like(),
        };
        let (f2, m2) = (f.clone(), free.clone());
        let w = transposed_solve(
            Method::Cg,
            move |v: &Tensor, q: &(Tensor, P)| {
                let hv = jvp(|y: &Tensor| gradient(&*f2, y, &q.1), &q.0, &(v * &m2)).1;
                &hv * &m2 + v * (1.0 - &m2)
            },
            x,
            p,
            &(xbar * &free),
            o,
        );
        let f3 = f.clone();
        negate(param_vjp(&move |y: &Tensor, p: &P| gradient(&*f3, y, p), x, p, &(w * free)))
    });
    implicit(forward, backward)(&(x0.clone(), clone_params(params)))
}
