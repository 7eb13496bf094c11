use adjoint_tensor::ops::conv::Conv2dParams;
use adjoint_tensor::{Array, DType};
use std::time::Instant;

fn cpu_ticks() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn time(f: impl Fn()) -> f64 {
    f();
    let mut best = f64::MAX;
    let c0 = cpu_ticks();
    let t0 = Instant::now();
    let reps = 20;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let cpu = (cpu_ticks() - c0) / reps as f64;
    let wall = t0.elapsed().as_secs_f64() / reps as f64;
    println!(
        "   [best wall {:.2} ms, mean wall {:.2} ms, mean cpu {:.2} ms]",
        best * 1e3,
        wall * 1e3,
        cpu * 1e3
    );
    best
}

#[test]
#[ignore]
fn timing() {
    let x = Array::ones(&[64, 32, 28, 28], DType::F32);
    let w = Array::ones(&[64, 32, 3, 3], DType::F32);
    let p = Conv2dParams { padding: [1, 1], ..Default::default() };
    let flops = 2.0 * 64.0 * 64.0 * 32.0 * 9.0 * 28.0 * 28.0;
    let t = time(|| {
        x.conv2d(&w, &p);
    });
    println!("conv2d fwd: {:.2} ms, {:.1} GFLOP/s", t * 1e3, flops / t / 1e9);
    let g = x.conv2d(&w, &p);
    let t = time(|| {
        Array::conv2d_input_grad(&g, &w, x.shape(), &p);
    });
    println!("conv2d input grad: {:.2} ms, {:.1} GFLOP/s", t * 1e3, flops / t / 1e9);
    let t = time(|| {
        Array::conv2d_weight_grad(&x, &g, w.shape(), &p);
    });
    println!("conv2d weight grad: {:.2} ms, {:.1} GFLOP/s", t * 1e3, flops / t / 1e9);
    for dt in [DType::F32, DType::F64] {
        let a = Array::ones(&[1024, 1024], dt);
        let t = time(|| {
            a.matmul(&a);
        });
        println!("matmul 1024 {dt}: {:.2} ms, {:.1} GFLOP/s", t * 1e3, 2.0 * 1024f64.powi(3) / t / 1e9);
        let t = time(|| {
            a.transpose(0, 1).matmul(&a);
        });
        println!(
            "matmul 1024 {dt} (lhs transposed): {:.2} ms, {:.1} GFLOP/s",
            t * 1e3,
            2.0 * 1024f64.powi(3) / t / 1e9
        );
    }
    let wm = Array::ones(&[64, 288], DType::F32);
    let cols = Array::ones(&[64, 288, 784], DType::F32);
    let t = time(|| {
        wm.matmul(&cols);
    });
    println!("gemm-only equivalent of conv: {:.2} ms, {:.1} GFLOP/s", t * 1e3, flops / t / 1e9);
    let a = Array::ones(&[512, 32, 32], DType::F32);
    let t = time(|| {
        a.matmul(&a);
    });
    println!(
        "batched 512x32x32x32 f32: {:.3} ms, {:.1} GFLOP/s",
        t * 1e3,
        2.0 * 512.0 * 32f64.powi(3) / t / 1e9
    );
}
