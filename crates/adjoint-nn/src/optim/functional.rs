//! Optimizer updates as pure functions of parameters, gradients and state, written with tensor
//! ops, so that an update can itself be differentiated: meta-gradients through inner steps
//! (MAML), hypergradients of the learning rate, unrolled optimisation inside `grad`, `vmap`.
//!
//! The stateful optimizers ([`Sgd`](super::Sgd), [`Adam`](super::Adam)) stay the fast path for
//! training: their fused kernels run on concrete values and are not differentiable. These
//! functions follow the same PyTorch update rules operation for operation, so a trajectory of
//! either kind is the same to rounding (tested step for step). The learning rate is a tensor
//! (a scalar) so it can be differentiated too; it is cast to each leaf's dtype.
//!
//! ```
//! use adjoint_core::{grad, Tensor};
//! use adjoint_nn::optim::functional::{adam, AdamState};
//! use adjoint_nn::optim::AdamConfig;
//! let loss = |w: &Tensor| (w - 3.0).square().sum();
//! let (mut w, mut st) = (Tensor::scalar(0.0f64), AdamState::new(&Tensor::scalar(0.0f64)));
//! for _ in 0..500 {
//!     let g = grad(loss)(&w);
//!     (w, st) = adam(&w, &g, &st, &Tensor::scalar(0.05f64), &AdamConfig::default());
//! }
//! assert!((w.item() - 3.0).abs() < 1e-2);
//! // The loss after two steps, differentiated with respect to the learning rate.
//! let after_two = |lr: &Tensor| {
//!     let w0 = Tensor::scalar(0.0f64);
//!     let (w1, s1) = adam(&w0, &grad(loss)(&w0), &AdamState::new(&w0), lr, &AdamConfig::default());
//!     let (w2, _) = adam(&w1, &grad(loss)(&w1), &s1, lr, &AdamConfig::default());
//!     loss(&w2)
//! };
//! assert!(grad(after_two)(&Tensor::scalar(0.1f64)).item() < 0.0); // a larger step helps here
//! ```

use adjoint_core::{Params, Tensor};

use super::{AdamConfig, SgdConfig};

/// `lr` as a scalar of `like`'s dtype.
fn lr_for(lr: &Tensor, like: &Tensor) -> Tensor {
    assert!(
        lr.numel() == 1,
        "adjoint-nn: functional optimizer: the learning rate must be a scalar (got {:?})",
        lr.shape()
    );
    lr.reshape(&[]).cast(like.dtype())
}

#[track_caller]
fn leaves_of<P: Params>(what: &str, params: &P, grads: &P) -> (Vec<Tensor>, Vec<Tensor>) {
    let (ps, gs) = (params.leaves(), grads.leaves());
    assert!(
        ps.len() == gs.len(),
        "adjoint-nn: {what}: {} parameter leaves but {} gradient leaves",
        ps.len(),
        gs.len()
    );
    for (i, (p, g)) in ps.iter().zip(&gs).enumerate() {
        assert!(
            p.shape() == g.shape(),
            "adjoint-nn: {what}: leaf {i}: parameter {:?} vs gradient {:?}",
            p.shape(),
            g.shape()
        );
    }
    (ps, gs)
}

/// Plain gradient descent, `θ ← θ − η g`.
#[track_caller]
pub fn sgd<P: Params>(params: &P, grads: &P, lr: &Tensor) -> P {
    let (ps, gs) = leaves_of("sgd", params, grads);
    let out: Vec<Tensor> = ps.iter().zip(&gs).map(|(p, g)| p - g * lr_for(lr, p)).collect();
    params.with_leaves(&out)
}

/// The state of [`momentum`]: the momentum buffer per leaf and the step count.
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct MomentumState {
    /// One buffer per parameter leaf.
    pub buf: Vec<Tensor>,
    /// Updates so far.
    #[params(skip)]
    pub step: u64,
}

impl MomentumState {
    /// Zero buffers shaped like `params`' leaves.
    pub fn new<P: Params>(params: &P) -> MomentumState {
        MomentumState { buf: params.leaves().iter().map(|l| l.zeros_like()).collect(), step: 0 }
    }
}

/// SGD with momentum as [`Sgd`](super::Sgd) with `cfg` (PyTorch's rule: `b ← μ b + (1 − τ) g`,
/// the first buffer being `g`; Nesterov uses `g + μ b`; weight decay adds `λ θ` to `g`).
/// `cfg.lr` is not used: the learning rate is `lr`, a tensor, so it can be differentiated.
#[track_caller]
pub fn momentum<P: Params>(
    params: &P,
    grads: &P,
    state: &MomentumState,
    lr: &Tensor,
    cfg: &SgdConfig,
) -> (P, MomentumState) {
    assert!(!cfg.maximize, "adjoint-nn: functional momentum: maximize is not supported");
    let (ps, gs) = leaves_of("momentum", params, grads);
    assert!(
        state.buf.len() == ps.len(),
        "adjoint-nn: momentum: state for {} leaves, parameters have {}",
        state.buf.len(),
        ps.len()
    );
    let (mu, damp) = (cfg.momentum, cfg.dampening);
    let (mut out, mut bufs) = (Vec::with_capacity(ps.len()), Vec::with_capacity(ps.len()));
    for ((p, g), b) in ps.iter().zip(&gs).zip(&state.buf) {
        let g = if cfg.weight_decay != 0.0 { g + p * cfg.weight_decay } else { g.clone() };
        let b = if state.step == 0 { g.clone() } else { b * mu + &g * (1.0 - damp) };
        let d = if cfg.nesterov { &g + &b * mu } else { b.clone() };
        out.push(p - d * lr_for(lr, p));
        bufs.push(b);
    }
    (params.with_leaves(&out), MomentumState { buf: bufs, step: state.step + 1 })
}

/// The state of [`adam`]: first and second moments per leaf and the step count.
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct AdamState {
    /// First moment estimates.
    pub exp_avg: Vec<Tensor>,
    /// Second moment estimates.
    pub exp_avg_sq: Vec<Tensor>,
    /// Updates so far.
    #[params(skip)]
    pub step: u64,
}

impl AdamState {
    /// Zero moments shaped like `params`' leaves.
    pub fn new<P: Params>(params: &P) -> AdamState {
        let z: Vec<Tensor> = params.leaves().iter().map(|l| l.zeros_like()).collect();
        AdamState { exp_avg: z.clone(), exp_avg_sq: z, step: 0 }
    }
}

/// One Adam step as [`Adam`](super::Adam) with `cfg` (PyTorch's rule with bias correction;
/// L2 weight decay added to the gradient). `cfg.lr` is not used: the learning rate is `lr`, a
/// tensor, so it can be differentiated. AMSGrad and `maximize` are not supported.
#[track_caller]
pub fn adam<P: Params>(
    params: &P,
    grads: &P,
    state: &AdamState,
    lr: &Tensor,
    cfg: &AdamConfig,
) -> (P, AdamState) {
    assert!(
        !cfg.amsgrad && !cfg.maximize,
        "adjoint-nn: functional adam: amsgrad and maximize are not supported"
    );
    let (ps, gs) = leaves_of("adam", params, grads);
    assert!(
        state.exp_avg.len() == ps.len(),
        "adjoint-nn: adam: state for {} leaves, parameters have {}",
        state.exp_avg.len(),
        ps.len()
    );
    let t = state.step + 1;
    let (b1, b2) = cfg.betas;
    let bias1 = 1.0 - b1.powf(t as f64);
    let bias2_sqrt = (1.0 - b2.powf(t as f64)).sqrt();
    let (mut out, mut m1, mut m2) = (Vec::new(), Vec::new(), Vec::new());
    for (((p, g), m), v) in ps.iter().zip(&gs).zip(&state.exp_avg).zip(&state.exp_avg_sq) {
        let g = if cfg.weight_decay != 0.0 { g + p * cfg.weight_decay } else { g.clone() };
        let m = m + (&g - m) * (1.0 - b1);
        let v = v * b2 + g.square() * (1.0 - b2);
        let denom = v.sqrt() * (1.0 / bias2_sqrt) + cfg.eps;
        out.push(p - (&m / denom) * lr_for(lr, p) * (1.0 / bias1));
        m1.push(m);
        m2.push(v);
    }
    (params.with_leaves(&out), AdamState { exp_avg: m1, exp_avg_sq: m2, step: t })
}
