// Temporary timing probe (deleted after use).
use adjoint_core::{value_and_grad, Tensor};
use adjoint_nn::layers::{Linear, Lstm, Module};
use adjoint_nn::loss::{mse, Reduction};
use adjoint_tensor::random::{normal, Key};
use adjoint_tensor::DType;
use std::time::Instant;

fn main() {
    let k = Key::new(0).split(4);
    let model = (Lstm::new(8, 128, &k[0]), Linear::new(128, 1, &k[1]));
    let x = Tensor::from_array(normal(&k[2], &[32, 64, 8], DType::F32));
    let y = Tensor::from_array(normal(&k[3], &[32, 64, 1], DType::F32));
    let step = |m: &(Lstm, Linear)| mse(&m.1.forward(&m.0.forward(&x)), &y, Reduction::Mean);
    for _ in 0..3 {
        value_and_grad(step)(&model);
    }
    let n = 20;
    let t = Instant::now();
    for _ in 0..n {
        value_and_grad(step)(&model);
    }
    println!("lstm value_and_grad: {:.3} ms/step", t.elapsed().as_secs_f64() * 1e3 / n as f64);
    let t = Instant::now();
    for _ in 0..n {
        model.1.forward(&model.0.forward(&x));
    }
    println!("lstm forward: {:.3} ms/step", t.elapsed().as_secs_f64() * 1e3 / n as f64);
}
