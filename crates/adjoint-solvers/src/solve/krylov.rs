//! Krylov solvers for `A(params) x = b` on a user matvec, with the implicit VJP
//! `b̄ = A⁻ᵀ x̄`, `p̄ = -∂⟨b̄, A(params) x⟩/∂params` (one transposed solve, never through the
//! iterations).

use std::rc::Rc;

use adjoint_core::{grad, vjp, Params, Tensor};

use super::{implicit_solver, norm, not_converged, vdot, SolveOptions, Solver};

/// Which Krylov method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Cg,
    Gmres,
    BiCgStab,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Cg => "cg",
            Method::Gmres => "gmres",
            Method::BiCgStab => "bicgstab",
        }
    }
}

/// A matvec `v, params -> A(params) v`.
pub(crate) type MatVec<P> = Rc<dyn Fn(&Tensor, &P) -> Tensor>;

// ------------------------------------------------------------------ the iterations (plain values)

/// Conjugate gradients for a symmetric positive definite `A`.
fn cg_iter(a: &dyn Fn(&Tensor) -> Tensor, b: &Tensor, o: &SolveOptions) -> (Tensor, f64) {
    let bn = norm(b).max(f64::MIN_POSITIVE);
    let mut x = b.zeros_like();
    let mut r = b.clone();
    let mut p = r.clone();
    let mut rr = vdot(&r, &r);
    for _ in 0..o.max_iter {
        if rr.sqrt() <= o.tol * bn {
            return (x, rr.sqrt() / bn);
        }
        let ap = a(&p);
        let alpha = rr / vdot(&p, &ap);
        x = &x + &p * alpha;
        r = &r - ap * alpha;
        let rr_new = vdot(&r, &r);
        p = &r + p * (rr_new / rr);
        rr = rr_new;
    }
    (x, rr.sqrt() / bn)
}

/// Restarted GMRES (modified Gram–Schmidt Arnoldi, Givens rotations).
fn gmres_iter(a: &dyn Fn(&Tensor) -> Tensor, b: &Tensor, o: &SolveOptions) -> (Tensor, f64) {
    let bn = norm(b).max(f64::MIN_POSITIVE);
    let m = o.memory.max(1);
    let mut x = b.zeros_like();
    let mut done = 0;
    loop {
        let r = b - a(&x);
        let beta = norm(&r);
        if beta <= o.tol * bn || done >= o.max_iter {
            return (x, beta / bn);
        }
        let mut basis = vec![r / beta];
        let mut h = vec![vec![0.0f64; m]; m + 1]; // h[i][j]
        let (mut cs, mut sn) = (vec![0.0f64; m], vec![0.0f64; m]);
        let mut g = vec![0.0f64; m + 1];
        g[0] = beta;
        let mut k = 0;
        while k < m && done < o.max_iter {
            let mut w = a(&basis[k]);
            for (i, v) in basis.iter().enumerate() {
                h[i][k] = vdot(&w, v);
                w = w - v * h[i][k];
            }
            let wn = norm(&w);
            h[k + 1][k] = wn;
            for i in 0..k {
                let t = cs[i] * h[i][k] + sn[i] * h[i + 1][k];
                h[i + 1][k] = -sn[i] * h[i][k] + cs[i] * h[i + 1][k];
                h[i][k] = t;
            }
            let d = h[k][k].hypot(h[k + 1][k]).max(f64::MIN_POSITIVE);
            cs[k] = h[k][k] / d;
            sn[k] = h[k + 1][k] / d;
            h[k][k] = d;
            h[k + 1][k] = 0.0;
            g[k + 1] = -sn[k] * g[k];
            g[k] *= cs[k];
            basis.push(if wn > 0.0 { w / wn } else { w });
            k += 1;
            done += 1;
            if g[k].abs() <= o.tol * bn {
                break;
            }
        }
        // Back-substitution for the k coefficients, then the update.
        let mut y = vec![0.0f64; k];
        for i in (0..k).rev() {
            let s: f64 = (i + 1..k).map(|j| h[i][j] * y[j]).sum();
            y[i] = (g[i] - s) / h[i][i];
        }
        for (i, yi) in y.iter().enumerate() {
            x = &x + &basis[i] * *yi;
        }
    }
}

/// BiCGSTAB for a general nonsingular `A`.
fn bicgstab_iter(a: &dyn Fn(&Tensor) -> Tensor, b: &Tensor, o: &SolveOptions) -> (Tensor, f64) {
    let bn = norm(b).max(f64::MIN_POSITIVE);
    let mut x = b.zeros_like();
    let mut r = b.clone();
    let r0 = r.clone();
    let (mut rho, mut alpha, mut omega) = (1.0f64, 1.0f64, 1.0f64);
    let mut v = b.zeros_like();
    let mut p = b.zeros_like();
    for _ in 0..o.max_iter {
        let rn = norm(&r);
        if rn <= o.tol * bn {
            return (x, rn / bn);
        }
        let rho_new = vdot(&r0, &r);
        let beta = (rho_new / rho) * (alpha / omega);
        rho = rho_new;
        p = &r + (&p - &v * omega) * beta;
        v = a(&p);
        alpha = rho / vdot(&r0, &v);
        let s = &r - &v * alpha;
        if norm(&s) <= o.tol * bn {
            x = &x + &p * alpha;
            return (x, norm(&s) / bn);
        }
        let t = a(&s);
        omega = vdot(&t, &s) / vdot(&t, &t);
        x = &x + &p * alpha + &s * omega;
        r = s - t * omega;
    }
    let rn = norm(&r);
    (x, rn / bn)
}

pub(crate) fn iterate(m: Method, a: &dyn Fn(&Tensor) -> Tensor, b: &Tensor, o: &SolveOptions) -> Tensor {
    let (x, rel) = match m {
        Method::Cg => cg_iter(a, b, o),
        Method::Gmres => gmres_iter(a, b, o),
        Method::BiCgStab => bicgstab_iter(a, b, o),
    };
    if o.strict && (rel.is_nan() || rel > o.tol) {
        not_converged(m.name(), o.max_iter, rel);
    }
    x
}

// ------------------------------------------------------------------ the differentiable call

/// Clone a `Params` value (its leaves are cheap handles).
pub(crate) fn clone_params<P: Params>(p: &P) -> P {
    p.map_tensors(&mut |t| t.clone())
}

/// The solver of `A(params) x = b` as a custom-VJP function of `(b, params)`.
pub(crate) fn linear_solver<P: Params + 'static>(m: Method, mv: MatVec<P>, o: SolveOptions) -> Solver<P> {
    let mv1 = mv.clone();
    let iterate_ = move |q: &(Tensor, P)| iterate(m, &|v: &Tensor| mv1(v, &q.1), &q.0, &o);
    implicit_solver(iterate_, move |x: &Tensor, p: &P, xbar: &Tensor| {
        // w = A⁻ᵀ x̄: the same method on the transposed operator (A itself for CG).
        let w = match m {
            Method::Cg => linear_solver(m, mv.clone(), o)(&(xbar.clone(), clone_params(p))),
            _ => {
                let mv2 = mv.clone();
                let mvt: MatVec<P> = Rc::new(move |v: &Tensor, p: &P| transpose_apply(&*mv2, v, p));
                linear_solver(m, mvt, o)(&(xbar.clone(), clone_params(p)))
            }
        };
        let pbar = grad(|p: &P| (&w * mv(x, p)).sum())(p).map_tensors(&mut |g| -g);
        (w, pbar)
    })
}

/// `Aᵀ v` for a linear `A` given as a matvec: the VJP of `y ↦ A y` (at any point).
pub(crate) fn transpose_apply<P: Params>(mv: &dyn Fn(&Tensor, &P) -> Tensor, v: &Tensor, p: &P) -> Tensor {
    let (_, pb) = vjp(|y: &Tensor| mv(y, p), &v.zeros_like());
    pb(v)
}

fn solve_with<P: Params + 'static>(
    m: Method,
    matvec: impl Fn(&Tensor, &P) -> Tensor + 'static,
    b: &Tensor,
    params: &P,
    opts: &SolveOptions,
) -> Tensor {
    linear_solver(m, Rc::new(matvec), *opts)(&(b.clone(), clone_params(params)))
}

/// Conjugate gradients: `x` with `A(params) x = b` for a symmetric positive definite `A` given
/// by `matvec(v, params)`. Differentiable in `b` and `params` by one more CG solve.
///
/// ```
/// use adjoint_core::{grad, Tensor};
/// use adjoint_solvers::solve::{cg, SolveOptions};
/// // A = diag(d): x = b / d, and d(Σx)/dd = -b / d².
/// let (b, d) = (Tensor::from_vec(vec![1.0f64, 2.0], &[2]), Tensor::from_vec(vec![2.0f64, 4.0], &[2]));
/// let o = SolveOptions::default();
/// let x = cg(|v: &Tensor, d: &Tensor| v * d, &b, &d, &o);
/// assert!((x.to_vec::<f64>()[1] - 0.5).abs() < 1e-12);
/// let gd = grad(|d: &Tensor| cg(|v: &Tensor, d: &Tensor| v * d, &b, d, &o).sum())(&d);
/// assert!((gd.to_vec::<f64>()[0] + 0.25).abs() < 1e-10);
/// ```
pub fn cg<P: Params + 'static>(
    matvec: impl Fn(&Tensor, &P) -> Tensor + 'static,
    b: &Tensor,
    params: &P,
    opts: &SolveOptions,
) -> Tensor {
    solve_with(Method::Cg, matvec, b, params, opts)
}

/// Restarted GMRES (restart length `opts.memory`) for a general nonsingular `A(params)`;
/// differentiable by one GMRES solve with `Aᵀ` (a vector-Jacobian product of the matvec).
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::solve::{gmres, SolveOptions};
/// let m = Tensor::from_vec(vec![2.0f64, 1.0, 0.0, 3.0], &[2, 2]);
/// let x = gmres(|v: &Tensor, m: &Tensor| m.matmul(v), &Tensor::from_vec(vec![3.0f64, 3.0], &[2]), &m, &SolveOptions::default());
/// assert!((x.to_vec::<f64>()[0] - 1.0).abs() < 1e-10 && (x.to_vec::<f64>()[1] - 1.0).abs() < 1e-10);
/// ```
pub fn gmres<P: Params + 'static>(
    matvec: impl Fn(&Tensor, &P) -> Tensor + 'static,
    b: &Tensor,
    params: &P,
    opts: &SolveOptions,
) -> Tensor {
    solve_with(Method::Gmres, matvec, b, params, opts)
}

/// BiCGSTAB for a general nonsingular `A(params)`; differentiable like [`gmres`].
///
/// ```
/// use adjoint_core::Tensor;
/// use adjoint_solvers::solve::{bicgstab, SolveOptions};
/// let m = Tensor::from_vec(vec![4.0f64, 1.0, 2.0, 3.0], &[2, 2]);
/// let x = bicgstab(|v: &Tensor, m: &Tensor| m.matmul(v), &Tensor::from_vec(vec![5.0f64, 5.0], &[2]), &m, &SolveOptions::default());
/// assert!((x.to_vec::<f64>()[0] - 1.0).abs() < 1e-10);
/// ```
pub fn bicgstab<P: Params + 'static>(
    matvec: impl Fn(&Tensor, &P) -> Tensor + 'static,
    b: &Tensor,
    params: &P,
    opts: &SolveOptions,
) -> Tensor {
    solve_with(Method::BiCgStab, matvec, b, params, opts)
}
