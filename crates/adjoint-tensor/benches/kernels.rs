//! Criterion benchmarks of the hot kernels (`cargo bench -p adjoint-tensor`). Sample sizes are
//! small: the machines are shared and noisy, and the side-by-side numbers that count live in
//! `BENCHMARKS.md` (`benches/run.sh`). These are for quick before/after checks of a kernel.

use std::time::Duration;

use adjoint_tensor::ops::conv::Conv2dOptions;
use adjoint_tensor::random::{normal, Key};
use adjoint_tensor::{Array, DType};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn randn(seed: u64, shape: &[usize]) -> Array {
    normal(&Key::new(seed), shape, DType::F32)
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_f32");
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for n in [256usize, 1024] {
        let a = randn(1, &[n, n]);
        let b = randn(2, &[n, n]);
        g.throughput(Throughput::Elements((2 * n * n * n) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bch, _| bch.iter(|| a.matmul(&b)));
    }
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("elementwise_f32");
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for n in [1usize << 20, 1 << 24] {
        let a = randn(3, &[n]);
        let b = randn(4, &[n]);
        g.throughput(Throughput::Bytes((12 * n) as u64));
        g.bench_with_input(BenchmarkId::new("add", n), &n, |bch, _| bch.iter(|| a.add(&b)));
        g.throughput(Throughput::Bytes((8 * n) as u64));
        g.bench_with_input(BenchmarkId::new("exp", n), &n, |bch, _| bch.iter(|| a.exp()));
    }
    g.finish();
}

fn reduce(c: &mut Criterion) {
    let mut g = c.benchmark_group("sum_last_axis_f32");
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    let x = randn(5, &[4096, 4096]);
    g.throughput(Throughput::Bytes(4 * 4096 * 4096));
    g.bench_function("4096x4096", |bch| bch.iter(|| x.sum_axes(&[1], false)));
    g.finish();
}

fn conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d_f32");
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(3));
    let x = randn(6, &[64, 32, 28, 28]);
    let w = randn(7, &[64, 32, 3, 3]);
    let p = Conv2dOptions { padding: [1, 1], ..Default::default() };
    g.throughput(Throughput::Elements(2 * 64 * 64 * 28 * 28 * 32 * 9));
    g.bench_function("64x32x28x28_64x32x3x3_pad1", |bch| bch.iter(|| x.conv2d(&w, &p)));
    g.finish();
}

criterion_group!(kernels, matmul, elementwise, reduce, conv);
criterion_main!(kernels);
