//! W7's problem, built once: the ADBench GMM objective with d = 10, K = 25, n = 10,000 in f64,
//! its constants and a fixed parameter point. `workloads::w7` times it; the `jit_probe` example
//! includes this file (`#[path]`) to A/B the same problem.

use adjoint_core::{DType, Tensor};
use adjoint_gradbench::evals::gmm;
use adjoint_tensor::random::{normal, Key};

/// W7's parameters: (alphas `[K]`, means `[K, d]`, q `[K, d]`, l `[K, d(d-1)/2]`).
pub type GmmParams = (Tensor, Tensor, Tensor, Tensor);

/// The constants (data and prior) and the parameter point of W7.
pub fn w7_problem() -> (gmm::Consts, GmmParams) {
    let (d, kk, n) = (10, 25, 10_000);
    let k = Key::new(7).split(5);
    let randn = |key: &Key, shape: &[usize]| Tensor::from_array(normal(key, shape, DType::F64));
    let x = randn(&k[0], &[n, d]);
    let consts = gmm::Consts::new(d, kk, n, 0.0, 1.0, x);
    let params = (
        randn(&k[1], &[kk]) * 0.1,
        randn(&k[2], &[kk, d]),
        randn(&k[3], &[kk, d]) * 0.1,
        randn(&k[4], &[kk, d * (d - 1) / 2]) * 0.1,
    );
    (consts, params)
}
