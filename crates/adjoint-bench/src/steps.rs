//! The three training steps of `benches/WORKLOADS.md` (W2–W4), written once. `adjoint-bench`
//! times them beside PyTorch and JAX; adjoint-nn's `examples/train_bench.rs` includes this file
//! (`#[path]`) and measures their memory as well. Each function builds the model, the data and
//! the optimizer and returns one full step (forward, loss, gradient, update) returning the loss.

use adjoint_core::{jit_donate, value_and_grad, DType, Params, Tensor};
use adjoint_nn::layers::{Conv2d, Flatten, Linear, Lstm, MaxPool2d, Module, Relu};
use adjoint_nn::loss::{cross_entropy, mse, CrossEntropy, Reduction};
use adjoint_nn::optim::functional::{momentum, MomentumState};
use adjoint_nn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use adjoint_tensor::random::{normal, Key};

/// N(0, 1) samples of the given shape and dtype.
pub fn randn(key: &Key, shape: &[usize], dtype: DType) -> Tensor {
    Tensor::from_array(normal(key, shape, dtype))
}

/// Class labels `(7 i) mod 10`.
fn labels(n: usize) -> Tensor {
    Tensor::from_vec((0..n as i64).map(|i| (7 * i) % 10).collect::<Vec<i64>>(), &[n])
}

/// The jitted variants (`jit`) run the whole step — `value_and_grad` and the optimizer update —
/// as one jitted function from (model, optimizer state) to (model, state, loss). Adam's bias
/// corrections depend on the step count, so they enter as a tensor input (`[1/(1-β₁ᵗ),
/// 1/√(1-β₂ᵗ)]`) rather than a constant of the first trace; the update is `functional::adam`'s,
/// op for op. The state is donated (`jit_donate`, as the JAX peer's `donate_argnums`), so the
/// parameters and moments are updated in their own buffers. Momentum starts from zero buffers at step 1, which PyTorch's rule makes equal to
/// its step-0 rule (`b = g`), so one trace serves every step.
type AdamJitState<M> = (M, Vec<Tensor>, Vec<Tensor>, Tensor);

/// Adam (as `functional::adam`) with the bias corrections `c = [1/bias1, 1/bias2_sqrt]` a tensor.
pub fn adam_update(
    ps: &[Tensor],
    gs: &[Tensor],
    m: &[Tensor],
    v: &[Tensor],
    c: &Tensor,
    cfg: &AdamConfig,
) -> [Vec<Tensor>; 3] {
    let (b1, b2) = cfg.betas;
    let (inv_bias1, inv_bias2_sqrt) = (c.narrow(0, 0, 1).reshape(&[]), c.narrow(0, 1, 1).reshape(&[]));
    let (mut out, mut m1, mut m2) = (Vec::new(), Vec::new(), Vec::new());
    for (((p, g), m), v) in ps.iter().zip(gs).zip(m).zip(v) {
        let m = m + (g - m) * (1.0 - b1);
        let v = v * b2 + g.square() * (1.0 - b2);
        let denom = v.sqrt() * &inv_bias2_sqrt + cfg.eps;
        out.push(p - (&m / denom) * cfg.lr * &inv_bias1);
        m1.push(m);
        m2.push(v);
    }
    [out, m1, m2]
}

/// A jitted Adam training step of `model` on `loss`; returns the step (loss per call) and
/// the first call's time (trace + compile + one step), in seconds.
fn adam_jit<M: Params + Clone + 'static>(
    model: M,
    cfg: AdamConfig,
    loss: impl Fn(&M) -> Tensor + 'static,
) -> impl FnMut() -> f64 {
    let step = jit_donate(move |s: &AdamJitState<M>| {
        let (l, g) = value_and_grad(&loss)(&s.0);
        let [p, m, v] = adam_update(&s.0.leaves(), &g.leaves(), &s.1, &s.2, &s.3, &cfg);
        (s.0.with_leaves(&p), m, v, l)
    });
    // Two sets of zero buffers, as the JAX peer's two `tree_map(jnp.zeros_like, params)`: one
    // set shared by both moments could not be donated at step 1 (it has two owners), so that
    // step would allocate both moments afresh beside it.
    let zeros = || -> Vec<Tensor> { model.leaves().iter().map(|l| l.zeros_like()).collect() };
    let (m0, v0) = (zeros(), zeros());
    let mut state = Some((model, m0, v0));
    let mut t = 0i32;
    move || {
        t += 1;
        let (b1, b2) = cfg.betas;
        let c = [1.0 / (1.0 - b1.powi(t)), 1.0 / (1.0 - b2.powi(t)).sqrt()];
        let c = Tensor::from_vec(c.iter().map(|&x| x as f32).collect::<Vec<f32>>(), &[2]);
        let (p, m, v) = state.take().expect("the state is put back after every step");
        let (p, m, v, l) = step((p, m, v, c));
        state = Some((p, m, v));
        l.item()
    }
}

/// W2 under `jit` (see [`adam_jit`]).
pub fn mlp_jit() -> impl FnMut() -> f64 {
    let k = Key::new(0).split(4);
    let model =
        (Linear::new(784, 512, &k[0]), Relu, Linear::new(512, 512, &k[1]), Relu, Linear::new(512, 10, &k[2]));
    let x = randn(&k[3], &[128, 784], DType::F32);
    let y = labels(128);
    let ce = CrossEntropy::default();
    adam_jit(model, AdamConfig { lr: 1e-3, ..Default::default() }, move |m: &_| {
        cross_entropy(&Module::forward(m, &x), &y, &ce)
    })
}

/// W4 under `jit` (see [`adam_jit`]).
pub fn lstm_jit() -> impl FnMut() -> f64 {
    let k = Key::new(2).split(4);
    let model = (Lstm::new(8, 128, &k[0]), Linear::new(128, 1, &k[1]));
    let x = randn(&k[2], &[32, 64, 8], DType::F32);
    let y = randn(&k[3], &[32, 1], DType::F32);
    adam_jit(model, AdamConfig { lr: 1e-3, ..Default::default() }, move |m: &(Lstm, Linear)| {
        let (_, (h, _)) = m.0.forward_state(&x, None);
        mse(&m.1.forward(&h.reshape(&[32, 128])), &y, Reduction::Mean)
    })
}

/// W3 under `jit`: (model, momentum buffers) → (model, buffers, loss), `functional::momentum`.
pub fn cnn_jit() -> impl FnMut() -> f64 {
    let k = Key::new(1).split(5);
    let conv = |i, o, key| Conv2d::config(i, o, [3, 3]).padding([1, 1]).init(key);
    let model = (
        (conv(1, 32, &k[0]), Relu, MaxPool2d::new([2, 2])),
        (conv(32, 64, &k[1]), Relu, MaxPool2d::new([2, 2])),
        Flatten::default(),
        (Linear::new(3136, 128, &k[2]), Relu, Linear::new(128, 10, &k[3])),
    );
    let x = randn(&k[4], &[64, 1, 28, 28], DType::F32);
    let y = labels(64);
    let ce = CrossEntropy::default();
    let cfg = SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() };
    momentum_jit(model, cfg, move |m: &_| cross_entropy(&Module::forward(m, &x), &y, &ce))
}

/// A jitted SGD-with-momentum training step of `model` on `loss` (`functional::momentum`).
fn momentum_jit<M: Params + Clone + 'static>(
    model: M,
    cfg: SgdConfig,
    loss: impl Fn(&M) -> Tensor + 'static,
) -> impl FnMut() -> f64 {
    let lr = Tensor::scalar(cfg.lr as f32);
    let step = jit_donate(move |s: &(M, MomentumState)| {
        let (l, g) = value_and_grad(&loss)(&s.0);
        let (p, st) = momentum(&s.0, &g, &s.1, &lr, &cfg);
        (p, st, l)
    });
    // Zero buffers at step 1: `b = 0.9·0 + g = g`, PyTorch's first step.
    let st = MomentumState { step: 1, ..MomentumState::new(&model) };
    let mut state = Some((model, st));
    move || {
        let (p, st, l) = step(state.take().expect("the state is put back after every step"));
        state = Some((p, st));
        l.item()
    }
}

/// W2: MLP 784-512-512-10 (ReLU), batch 128, cross-entropy, Adam (lr 1e-3).
pub fn mlp() -> impl FnMut() -> f64 {
    let k = Key::new(0).split(4);
    let mut model =
        (Linear::new(784, 512, &k[0]), Relu, Linear::new(512, 512, &k[1]), Relu, Linear::new(512, 10, &k[2]));
    let x = randn(&k[3], &[128, 784], DType::F32);
    let y = labels(128);
    let ce = CrossEntropy::default();
    let mut opt = Adam::new(&model, AdamConfig { lr: 1e-3, ..Default::default() });
    move || {
        let (loss, g) = value_and_grad(|m: &_| cross_entropy(&Module::forward(m, &x), &y, &ce))(&model);
        model = opt.step(&model, &g);
        loss.item()
    }
}

/// W3: `[64, 1, 28, 28]` → conv3x3 1→32 (padding 1), ReLU, maxpool 2 → conv3x3 32→64, ReLU,
/// maxpool 2 → flatten 3136 → linear 128, ReLU → linear 10; cross-entropy, SGD momentum 0.9
/// (lr 0.01).
pub fn cnn() -> impl FnMut() -> f64 {
    let k = Key::new(1).split(5);
    let conv = |i, o, key| Conv2d::config(i, o, [3, 3]).padding([1, 1]).init(key);
    let mut model = (
        (conv(1, 32, &k[0]), Relu, MaxPool2d::new([2, 2])),
        (conv(32, 64, &k[1]), Relu, MaxPool2d::new([2, 2])),
        Flatten::default(),
        (Linear::new(3136, 128, &k[2]), Relu, Linear::new(128, 10, &k[3])),
    );
    let x = randn(&k[4], &[64, 1, 28, 28], DType::F32);
    let y = labels(64);
    let ce = CrossEntropy::default();
    let mut opt = Sgd::new(&model, SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() });
    move || {
        let (loss, g) = value_and_grad(|m: &_| cross_entropy(&Module::forward(m, &x), &y, &ce))(&model);
        model = opt.step(&model, &g);
        loss.item()
    }
}

/// W4: LSTM (input 8, hidden 128) over `[32, 64, 8]`, linear head on the last hidden state,
/// MSE against N(0, 1) targets, Adam (lr 1e-3).
pub fn lstm() -> impl FnMut() -> f64 {
    let k = Key::new(2).split(4);
    let mut model = (Lstm::new(8, 128, &k[0]), Linear::new(128, 1, &k[1]));
    let x = randn(&k[2], &[32, 64, 8], DType::F32);
    let y = randn(&k[3], &[32, 1], DType::F32);
    let mut opt = Adam::new(&model, AdamConfig { lr: 1e-3, ..Default::default() });
    move || {
        let loss_fn = |m: &(Lstm, Linear)| {
            let (_, (h, _)) = m.0.forward_state(&x, None);
            mse(&m.1.forward(&h.reshape(&[32, 128])), &y, Reduction::Mean)
        };
        let (loss, g) = value_and_grad(loss_fn)(&model);
        model = opt.step(&model, &g);
        loss.item()
    }
}
