//! The damped pendulum the scan tests roll out (`jit_small.rs`, `jit_native.rs`).

use adjoint_core::{scan, Tensor};

/// A damped pendulum step on `[1]` values: `(θ, ω)` → next, driven by `u`.
pub fn pendulum(c: &(Tensor, Tensor), u: &Tensor) -> ((Tensor, Tensor), Tensor) {
    let (th, om) = c;
    let acc = &(&(th.sin() * -9.81) - &(om * 0.1)) + &u.narrow(0, 0, 1);
    let om = om + &(acc * 0.01);
    let th = th + &(&om * 0.01);
    let y = &th.cos() * &u.narrow(0, 1, 1);
    ((th, om), y)
}

/// `scan` of [`pendulum`] over the rows of `us` from `(0.3, 0.3)`: the final `θ·ω` plus the
/// sum of the outputs.
pub fn rollout(us: &Tensor) -> Tensor {
    let z = Tensor::full_of(&[1], 0.3, us.dtype());
    let ((th, om), ys) = scan(pendulum, &(z.clone(), z), us);
    (th * om).sum() + ys.sum()
}
