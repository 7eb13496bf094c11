//! The three training steps of `benches/WORKLOADS.md` (W2–W4), written once. `adjoint-bench`
//! times them beside PyTorch and JAX; adjoint-nn's `examples/train_bench.rs` includes this file
//! (`#[path]`) and measures their memory as well. Each function builds the model, the data and
//! the optimizer and returns one full step (forward, loss, gradient, update) returning the loss.

use adjoint_core::{value_and_grad, DType, Tensor};
use adjoint_nn::layers::{Conv2d, Flatten, Linear, Lstm, MaxPool2d, Module, Relu};
use adjoint_nn::loss::{cross_entropy, mse, CrossEntropy, Reduction};
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
