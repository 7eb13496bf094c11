//! Differentiate a function written for plain `num_traits::Float` — no adjoint types in its
//! signature — in forward mode, reverse mode and to second order.
//!
//! Run: `cargo run -p adjoint-scalar --example float_generic`

use adjoint_scalar::prelude::*;

/// Library code that knows nothing about AD: the log-density of a Student-t distribution.
fn student_t_logpdf<F: Float>(x: F, nu: F) -> F {
    let one = F::one();
    let two = one + one;
    let half = one / two;
    let pi = F::from(std::f64::consts::PI).unwrap();
    let lg = |z: F| {
        // Stirling series for ln Γ(z), accurate for z > 3; shift small arguments up.
        let mut z = z;
        let mut shift = F::zero();
        while z < F::from(7.0).unwrap() {
            shift = shift - z.ln();
            z = z + one;
        }
        shift + (z - half) * z.ln() - z + half * (two * pi).ln() + one / (F::from(12.0).unwrap() * z)
    };
    lg((nu + one) * half)
        - lg(nu * half)
        - half * (nu * pi).ln()
        - (nu + one) * half * (one + x * x / nu).ln()
}

struct LogPdf;
impl ScalarFn for LogPdf {
    fn eval<T: Real>(&self, p: &[T]) -> T {
        student_t_logpdf(p[0], p[1])
    }
}

fn main() {
    let (x, nu) = (0.7, 4.0);
    // Forward mode: d/dx.
    let dx = derivative(|x| student_t_logpdf(x, Dual::constant(nu)), x);
    // Reverse mode: the full gradient in one sweep.
    let g = gradient(|p: &[Var]| student_t_logpdf(p[0], p[1]), &[x, nu]);
    // Second order by forward-over-reverse.
    let h = hessian(&LogPdf, &[x, nu]);
    println!("log p({x}; nu = {nu}) = {}", student_t_logpdf(x, nu));
    println!("d/dx (forward)     = {dx}");
    println!("gradient (reverse) = {g:?}");
    println!("Hessian            = [{:?}, {:?}]", h.row(0), h.row(1));
    // The closed form of d/dx is -(nu + 1) x / (nu + x²).
    assert!((dx - (-(nu + 1.0) * x / (nu + x * x))).abs() < 1e-12);
    assert!((g[0] - dx).abs() < 1e-12);
}
