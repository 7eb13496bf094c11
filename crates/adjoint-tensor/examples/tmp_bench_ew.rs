use adjoint_tensor::{Array, DType};
use std::time::Instant;
fn t<R>(name: &str, reps: usize, mut f: impl FnMut() -> R) {
    let _ = f();
    let mut best = f64::MAX;
    for _ in 0..reps {
        let s = Instant::now();
        std::hint::black_box(f());
        best = best.min(s.elapsed().as_secs_f64());
    }
    println!("{name:40} {:9.3} ms", best * 1e3);
}
fn main() {
    let n = 16 << 20;
    let a = Array::linspace(-5.0, 5.0, n, DType::F32);
    let b = Array::linspace(1.0, 2.0, n, DType::F32);
    let s = a.as_slice::<f32>().unwrap().to_vec();
    t("memcpy 16M f32 (to_vec)", 10, || s.to_vec());
    t("add 16M", 10, || a.add(&b));
    t("exp 16M", 10, || a.exp());
    t("sigmoid 16M", 10, || a.sigmoid());
    t("tanh 16M", 3, || a.tanh());
    let m = 1 << 20;
    let a1 = Array::linspace(-5.0, 5.0, m, DType::F32);
    let b1 = Array::linspace(1.0, 2.0, m, DType::F32);
    t("add 1M", 50, || a1.add(&b1));
    t("exp 1M", 50, || a1.exp());
    t("exp 1M f64", 50, || a1.cast(DType::F64).exp());
    t("mul scalar 1M", 50, || a1.mul(&Array::scalar(2.0f32)));
    let x = a.reshape(&[4096, 4096]);
    let r = Array::linspace(1.0, 2.0, 4096, DType::F32);
    t("add [4096,4096]+[4096]", 10, || x.add(&r));
    t("add x.T + x", 5, || x.transpose(0, 1).add(&x));
    t("sum last axis 4096^2", 10, || x.sum_axes(&[1], false));
    t("sum axis 0 4096^2", 10, || x.sum_axes(&[0], false));
    t("sum_all 16M", 10, || x.sum_all());
    t("max last axis 4096^2", 10, || x.max_axes(&[1], false));
    t("sum axis0 of x.T", 10, || x.transpose(0, 1).sum_axes(&[0], false));
    t("logsumexp last 4096^2", 5, || x.logsumexp(&[1], false));
    t("cumsum axis1 4096^2", 5, || x.cumsum(1));
    t("argmax axis1 4096^2", 5, || x.argmax(1, false));
}
