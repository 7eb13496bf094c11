//! Problems shared by the ODE tests.

use adjoint_core::Tensor;

/// A 1-D f64 tensor.
pub fn v(x: &[f64]) -> Tensor {
    Tensor::from_vec(x.to_vec(), &[x.len()])
}

/// Lotka–Volterra on tensors: `[hare, lynx]` with `p = [α, β, γ, δ]`,
/// `u' = (α − βv)u`, `v' = (δu − γ)v`.
pub fn lotka_volterra(z: &Tensor, _t: f64, p: &Tensor) -> Tensor {
    let (u, w) = (z.narrow(0, 0, 1), z.narrow(0, 1, 1));
    let q = |i| p.narrow(0, i, 1);
    Tensor::concat(&[&((q(0) - q(1) * &w) * &u), &((q(3) * &u - q(2)) * &w)], 0)
}

/// The same over any scalar.
pub fn lotka_volterra_real<T: adjoint_scalar::Real>(z: &[T], _t: f64, p: &[T]) -> Vec<T> {
    vec![(p[0] - p[1] * z[1]) * z[0], (p[3] * z[0] - p[2]) * z[1]]
}
