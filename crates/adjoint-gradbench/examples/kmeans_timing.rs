//! Times the `kmeans` eval's `cost` and `dir` at GradBench's small-k sizes (single thread:
//! `RAYON_NUM_THREADS=1 cargo run --release -p adjoint-gradbench --example kmeans_timing`);
//! `cost` is the nearest-centroid search alone, so `dir − cost` is the differentiated part.
//! With arguments `K N D`, only that size.
#[path = "common/mod.rs"]
mod common;
use adjoint_core::Tensor;
use adjoint_gradbench::evals::kmeans;
use common::{numbers, time, uniform};

fn main() {
    let mut rand = uniform();
    let args = numbers();
    let sizes = match args[..] {
        [k, n, d] => vec![(k, n, d)],
        _ => vec![(10, 1000, 8), (10, 10000, 8), (10, 10000, 16), (100, 10000, 16)],
    };
    for (k, n, d) in sizes {
        let p: Vec<f64> = (0..n * d).map(|_| rand()).collect();
        let c: Vec<f64> = (0..k * d).map(|_| rand()).collect();
        let ps: Vec<Tensor> =
            p.chunks(kmeans::CHUNK_POINTS * d).map(|b| Tensor::from_slice(b, &[b.len() / d, d])).collect();
        let ct = Tensor::from_slice(&c, &[k, d]);
        let tc = time(|| kmeans::cost(&p, &c, d));
        let td = time(|| kmeans::dir(&p, &ps, &c, &ct));
        println!("k={k:4} n={n:6} d={d:3}  cost {:8.3} ms  dir {:8.3} ms", tc * 1e3, td * 1e3);
        adjoint_core::profile::from_env(|| kmeans::dir(&p, &ps, &c, &ct));
    }
}
